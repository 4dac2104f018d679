//! What every bench binary shares: the sizes, the criterion settings, the "real cycle" touch,
//! the thread-local floor, the pool that serves a size and where criterion writes.
//!
//! Each bench binary uses a different subset of this module.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use arraypool::ArrayPool;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use zeropool::ZeroPool;

/// Powers of two from 16 B to 16 MiB, plus the sizes of .NET's classic `ArrayPool` benchmark
/// (100 B, 1000 B, 10 KB, 100 KB, 1 MB, 10 MB), in ascending order.
pub const SIZES: [usize; 27] = [
    16,
    32,
    64,
    100,
    128,
    256,
    512,
    1000,
    1 << 10,
    1 << 11,
    1 << 12,
    10_000,
    1 << 13,
    1 << 14,
    1 << 15,
    1 << 16,
    100_000,
    1 << 17,
    1 << 18,
    1 << 19,
    1_000_000,
    1 << 20,
    1 << 21,
    1 << 22,
    10_000_000,
    1 << 23,
    1 << 24,
];

/// The largest size benched; the custom pool for sizes above the shared maximum reaches it.
pub const LARGEST: usize = 1 << 24;

/// The page size the real cycle writes to: one byte per page, as a user filling the buffer
/// would fault in (or touch in cache) every page.
pub const PAGE: usize = 4096;

/// Short warm-up and measurement so that a full `cargo bench` stays under ten minutes on a
/// 2-core machine (issue 3); 10,000 bootstrap resamples instead of 100,000 because criterion
/// runs without rayon here (default features off), and the medians do not need the tighter
/// intervals.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(120))
        .measurement_time(Duration::from_millis(250))
        .sample_size(20)
        .nresamples(10_000)
        .configure_from_args()
}

/// Sizes whose one iteration takes milliseconds get flat sampling and fewer samples, so they
/// fit the measurement time instead of stretching it (criterion's linear sampling would need
/// 1 + 2 + … + 20 = 210 iterations).
pub fn fit_group_to_size<M: criterion::measurement::Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    size: usize,
) {
    if size >= 1 << 20 {
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
    } else {
        group.sampling_mode(SamplingMode::Auto).sample_size(20);
    }
}

/// The user's real cycle on a rented buffer: one byte per page and the last byte.
#[inline]
pub fn touch(buffer: &mut [u8]) {
    let len = buffer.len();
    for i in (0..len).step_by(PAGE) {
        buffer[i] = 1;
    }
    if len > 0 {
        buffer[len - 1] = 1;
    }
}

/// The same for a buffer of `MaybeUninit<u8>` (zeropool's `alloc_uninit`).
#[inline]
pub fn touch_uninit(buffer: &mut [std::mem::MaybeUninit<u8>]) {
    let len = buffer.len();
    for i in (0..len).step_by(PAGE) {
        buffer[i].write(1);
    }
    if len > 0 {
        buffer[len - 1].write(1);
    }
}

/// The pool a user would rent `size` bytes from: the shared pool up to its maximum, above it a
/// custom pool made for large buffers.
pub fn pool_for(size: usize, large: &'static ArrayPool) -> &'static ArrayPool {
    let shared = ArrayPool::shared();
    if size <= shared.max_len() {
        shared
    } else {
        large
    }
}

/// The custom pool for sizes above the shared maximum: up to 16 MiB, 4 buffers per bucket, with
/// the builder's thread cache, the configuration for a thread that rents and returns large
/// frames itself. (`ArrayPool::create` leaves the thread cache off, so every rent and return
/// takes a partition lock: `create_pool_for_large` below, benched as `arraypool_create`.)
pub fn large_pool() -> &'static ArrayPool {
    static LARGE: std::sync::OnceLock<ArrayPool> = std::sync::OnceLock::new();
    LARGE.get_or_init(|| {
        ArrayPool::builder()
            .max_len(LARGEST)
            .per_bucket(4)
            .thread_cache(true)
            .build()
            .expect("a valid configuration")
    })
}

/// `ArrayPool::create(16 MiB, 4)`: the same bound, no thread cache.
pub fn create_pool_for_large() -> &'static ArrayPool {
    static LARGE: std::sync::OnceLock<ArrayPool> = std::sync::OnceLock::new();
    LARGE.get_or_init(|| ArrayPool::create(LARGEST, 4))
}

/// One zeropool for each bench binary: zeropool binds each thread's cache to one pool instance
/// and clears it when another instance is used, so a pool per size would defeat its cache.
pub fn zeropool() -> &'static ZeroPool {
    static POOL: std::sync::OnceLock<ZeroPool> = std::sync::OnceLock::new();
    POOL.get_or_init(ZeroPool::new)
}

std::thread_local! {
    /// The floor: the least a pool could do, a bare thread-local stack of buffers with no size
    /// classes, no bound, no counters and no cross-thread story.
    static FLOOR: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Pops a buffer from the floor stack, or makes one of `size` zeroed bytes.
#[inline]
pub fn floor_rent(size: usize) -> Vec<u8> {
    FLOOR
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| vec![0; size])
}

/// Pushes a buffer onto the floor stack.
#[inline]
pub fn floor_return(buffer: Vec<u8>) {
    FLOOR.with_borrow_mut(|stack| stack.push(buffer));
}

/// Empties the floor stack, so that the next size starts with no buffer of another size.
pub fn floor_reset() {
    FLOOR.with_borrow_mut(Vec::clear);
}

/// `D` buffers of `n` bytes held at once, then all given back in the order they were rented
/// (`D == 1` is the hot pair): one loop for every contender, which brings only its own way to
/// get a buffer (`rent`) and to give it back (`give_back`, `drop` for a pool whose buffer
/// returns itself), so that each does exactly the same work. The contender is warmed first
/// with the same `D` rents and returns, as a steady-state user has it.
pub fn bench_held<const D: usize, M: criterion::measurement::Measurement, T>(
    group: &mut BenchmarkGroup<'_, M>,
    id: BenchmarkId,
    n: usize,
    rent: impl Fn(usize) -> T,
    give_back: impl Fn(T),
) {
    use std::hint::black_box;

    // Written out per depth, not as an array loop: `array::from_fn` and an array's `IntoIter`
    // cost the bare stack floor several times its own work (64 ns for 4 × 4 KiB against 11 ns
    // written out), which would flatter every contender's ratio to it.
    let cycle = || match D {
        1 => {
            let a = rent(black_box(n));
            give_back(black_box(a));
        }
        2 => {
            let (a, b) = (rent(black_box(n)), rent(black_box(n)));
            give_back(black_box(a));
            give_back(black_box(b));
        }
        4 => {
            let (a, b) = (rent(black_box(n)), rent(black_box(n)));
            let (c, d) = (rent(black_box(n)), rent(black_box(n)));
            give_back(black_box(a));
            give_back(black_box(b));
            give_back(black_box(c));
            give_back(black_box(d));
        }
        _ => unimplemented!("depth {D}: add it here, written out"),
    };
    cycle();
    group.bench_function(id, |b| b.iter(cycle));
}

/// How a single-thread benchmark uses the buffer between rent and return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rent and return only: what the pool (or allocator) itself costs.
    Overhead,
    /// Rent, write one byte per page and the last byte, return: what a user pays, page faults
    /// and zeroing included.
    RealCycle,
}

impl Mode {
    pub const BOTH: [Mode; 2] = [Mode::Overhead, Mode::RealCycle];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Overhead => "overhead",
            Mode::RealCycle => "real_cycle",
        }
    }
}

/// What the user does with the buffer: nothing (`REAL == false`, overhead only) or the real
/// cycle's writes. A const parameter rather than a runtime flag, so that the measured loops
/// carry no branch that no user would have (a runtime flag changed how the compiler laid out
/// every contender's loop).
#[inline]
pub fn use_buffer<const REAL: bool>(buffer: &mut [u8]) {
    if REAL {
        touch(buffer);
    }
}

/// arraypool and the allocator baselines for one size, in both binaries (glibc and mimalloc):
/// `rent`+`return_`, `Vec::with_capacity`+drop, `vec![0; n]`+drop, and the thread-local floor.
pub fn bench_pool_and_allocator<M: criterion::measurement::Measurement, const REAL: bool>(
    group: &mut BenchmarkGroup<'_, M>,
    size: usize,
) {
    use criterion::BenchmarkId;
    use std::hint::black_box;

    let pool = pool_for(size, large_pool());
    // Warm the pool's tier for this size, as a steady-state user has.
    pool.return_(pool.rent(size));
    group.bench_with_input(BenchmarkId::new("arraypool", size), &size, |b, &n| {
        b.iter(|| {
            let mut buffer = pool.rent(black_box(n));
            use_buffer::<REAL>(&mut buffer);
            pool.return_(black_box(buffer));
        })
    });
    if size > ArrayPool::shared().max_len() {
        let create = create_pool_for_large();
        create.return_(create.rent(size));
        group.bench_with_input(
            BenchmarkId::new("arraypool_create", size),
            &size,
            |b, &n| {
                b.iter(|| {
                    let mut buffer = create.rent(black_box(n));
                    use_buffer::<REAL>(&mut buffer);
                    create.return_(black_box(buffer));
                })
            },
        );
    }

    floor_reset();
    group.bench_with_input(BenchmarkId::new("tls_stack_floor", size), &size, |b, &n| {
        b.iter(|| {
            let mut buffer = floor_rent(black_box(n));
            use_buffer::<REAL>(&mut buffer);
            floor_return(black_box(buffer));
        })
    });
    floor_reset();

    group.bench_with_input(
        BenchmarkId::new("vec_with_capacity", size),
        &size,
        |b, &n| {
            b.iter(|| {
                let mut buffer: Vec<u8> = Vec::with_capacity(black_box(n));
                if REAL {
                    // The cheapest safe real cycle on a fresh Vec: write the same bytes into its
                    // spare capacity, with no zeroing (page faults are still paid).
                    touch_uninit(&mut buffer.spare_capacity_mut()[..n]);
                }
                drop(black_box(buffer));
            })
        },
    );

    group.bench_with_input(BenchmarkId::new("vec_zeroed", size), &size, |b, &n| {
        b.iter(|| {
            let mut buffer = vec![0u8; black_box(n)];
            use_buffer::<REAL>(&mut buffer);
            drop(black_box(buffer));
        })
    });
}

/// Where criterion writes its results, by criterion 0.5's own rule, so that the figures a bench
/// writes itself (`retention.json` and the like) sit beside criterion's and
/// `tools/bench_report.py` finds them: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else the `target_directory` that `cargo metadata` reports, plus `criterion`. Cargo runs a
/// bench with the bench package's directory (`benches/`) as the working directory, so a
/// relative `target/criterion` would miss the workspace's `target/`; the last resort is the
/// workspace's `target/criterion`, found from this package's manifest directory.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    if let Some(target) = cargo_metadata_target_dir() {
        return target.join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

/// `target_directory` from `$CARGO metadata`, as criterion asks it (`$CARGO` is set when cargo
/// runs the bench). The one string is picked out of the JSON by hand: the benches have no JSON
/// parser, and a path needs only `\\` and `\"` unescaped.
fn cargo_metadata_target_dir() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO")?;
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let json = String::from_utf8(output.stdout).ok()?;
    let key = "\"target_directory\":\"";
    let rest = &json[json.find(key)? + key.len()..];
    let mut path = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => path.push(chars.next()?),
            c => path.push(c),
        }
    }
    Some(PathBuf::from(path))
}
