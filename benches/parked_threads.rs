//! Memory held for parked threads: 64 threads each rent `DEPTH` buffers of every bucket size of
//! a pool (16 B up to its `max_len()`, 1 MiB by default) at once and return them, then park
//! (they block on a `Barrier`, alive). The main thread records the pool's `held_bytes` and
//! `held_buffers` and the process's resident set (`parked`); tops up the partitions (below) and
//! records the pool's gauges again (`topped_up`); then it releases the threads, joins them (a
//! thread's magazines move to the partitions at thread exit, and what finds no room is freed)
//! and records the same again (`joined`). Done for the shared pool and for a builder pool up to
//! 1 MiB with `.thread_cache(true)`; each pool's `thread_cache_bytes` and `per_bucket` are read
//! from its `Debug` output, so they are the pool's real values (the shared pool's budget comes
//! from `ARRAYPOOL_SHARED_THREAD_CACHE_BYTES`).
//!
//! This is the memory side of a thread tier: what threads that used every size once and then
//! went idle keep out of reach of the others. `held_bytes` counts thread tiers and partitions
//! together, and what the thread tiers hold alone is not observable, so it is derived:
//! `topped_up − joined`. The top-up makes that exact. A fresh thread rents `per_bucket` buffers
//! of every size at once (taking whatever the partitions hold, then allocating) and returns
//! them all, and once it has exited (its own magazines flushed) every bucket's partitions are
//! full. At join the parked threads' magazines find no room, so every byte they held is freed
//! and the partitions stay full: `joined` is the full partitions alone (`joined.held_buffers`
//! is `per_bucket × sizes`, printed as a check) and `topped_up − joined` is what the thread tiers
//! held. Without the top-up, `parked − joined` would be only what was freed at exit: a thread
//! keeps its own returns in its magazines, so while parked the partitions of the sizes it caches
//! hold next to nothing, and at exit they take a share of the magazines before the rest is
//! freed (in the first run, 2.1 MiB for the shared pool against 8.0 MiB in its thread tiers).
//!
//! The figures go to stdout and to `<criterion dir>/parked_threads/memory.json`, which
//! `tools/bench_report.py` puts in `docs/benchmarks.md`; nothing is asserted. Each pool is
//! measured the first time its benchmark runs, before criterion times anything with it; a
//! binary of its own, so that the shared pool holds nothing else. What criterion then times
//! (group `short_lived_thread`) is small: one fresh thread renting and returning one buffer of
//! every size, then exiting, against the same thread making and dropping a
//! `Vec::with_capacity` of each size.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use arraypool::{ArrayPool, MIN_BUCKET_LEN};
use common::{config, criterion_dir};
use criterion::{criterion_group, criterion_main, Criterion};

/// As many threads as a server's worker pool might park: far more than the 2 cores here, so
/// the figure is about idle threads, not about parallelism.
const THREADS: usize = 64;
/// Buffers of each size rented at once by each thread: more than one, so that a thread tier
/// holding several buffers per bucket (the coming magazine tier) shows what it keeps.
const DEPTH: usize = 2;
/// The builder pool's bound: the shared pool's default maximum length.
const BUILDER_MAX_LEN: usize = 1 << 20;

/// Every bucket size of `pool`: 16 B, 32 B, … `pool.max_len()`.
fn bucket_sizes(pool: &ArrayPool) -> Vec<usize> {
    std::iter::successors(Some(MIN_BUCKET_LEN), |&len| len.checked_mul(2))
        .take_while(|&len| len <= pool.max_len())
        .collect()
}

/// Rents `D` buffers of every size of `sizes` at once, writes a byte into each (as a user
/// would), and returns them all. An array, not a `Vec`, so that holding them allocates nothing.
fn use_every_size<const D: usize>(pool: &ArrayPool, sizes: &[usize]) {
    for &len in sizes {
        let mut held: [Vec<u8>; D] = std::array::from_fn(|_| pool.rent(len));
        for buffer in &mut held {
            buffer[0] = 1;
        }
        for buffer in held {
            pool.return_(black_box(buffer));
        }
    }
}

/// Rents `count` buffers of every size of `sizes` at once and returns them all (on a fresh
/// thread, joined, so its own magazines are flushed too): with `count` the pool's `per_bucket`,
/// every bucket's partitions are full afterwards. The pool hands out what the partitions hold
/// before it allocates, so this thread takes all of it and gives back `count` of each size;
/// the parked threads take nothing meanwhile.
fn top_up_partitions(pool: &ArrayPool, sizes: &[usize], count: usize) {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                for &len in sizes {
                    let held: Vec<Vec<u8>> = (0..count).map(|_| pool.rent(len)).collect();
                    for buffer in held {
                        pool.return_(black_box(buffer));
                    }
                }
            })
            .join()
            .expect("the top-up thread panicked");
    });
}

/// The unsigned integer after `field: ` in a `Debug` output, e.g. `thread_cache_bytes: 131072`.
fn debug_field(debug: &str, field: &str) -> Option<u64> {
    let key = format!("{field}: ");
    let rest = &debug[debug.find(&key)? + key.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// One point of the measurement: the pool's gauges and the process's resident set.
#[derive(Clone, Copy)]
struct Snapshot {
    held_buffers: u64,
    held_bytes: u64,
    rss_bytes: Option<u64>,
}

impl Snapshot {
    fn take(pool: &ArrayPool) -> Self {
        let stats = pool.stats();
        Self {
            held_buffers: stats.held_buffers,
            held_bytes: stats.held_bytes,
            rss_bytes: resident_set_bytes(),
        }
    }
}

/// The process's resident set: `/proc/self/statm`'s second field (pages) × 4096, the page size
/// of the x86-64 and most aarch64 Linux machines this is run on.
#[cfg(target_os = "linux")]
fn resident_set_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Not measured off Linux.
#[cfg(not(target_os = "linux"))]
fn resident_set_bytes() -> Option<u64> {
    None
}

/// The figures for one pool.
struct Figures {
    pool: &'static str,
    max_len: usize,
    sizes: usize,
    /// The pool's per-thread budget, from its `Debug` output.
    thread_cache_bytes: u64,
    /// What the partitions of one bucket hold at most, from its `Debug` output.
    per_bucket: u64,
    before: Snapshot,
    parked: Snapshot,
    topped_up: Snapshot,
    joined: Snapshot,
}

impl Figures {
    /// The bytes in the thread tiers while parked (see the file's docs).
    fn thread_tier_bytes(&self) -> i128 {
        i128::from(self.topped_up.held_bytes) - i128::from(self.joined.held_bytes)
    }
}

/// `THREADS` threads use every size `DEPTH` deep and park; snapshot; top up the partitions;
/// snapshot; release, join; snapshot.
fn measure(name: &'static str, pool: &ArrayPool) -> Figures {
    let sizes = bucket_sizes(pool);
    let debug = format!("{pool:?}");
    let field = |name| debug_field(&debug, name).unwrap_or_else(|| panic!("no {name} in {debug}"));
    let (thread_cache_bytes, per_bucket) = (field("thread_cache_bytes"), field("per_bucket"));
    let before = Snapshot::take(pool);
    let parked_barrier = Barrier::new(THREADS + 1);
    let release = Barrier::new(THREADS + 1);
    let (parked, topped_up) = thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    use_every_size::<DEPTH>(pool, &sizes);
                    parked_barrier.wait();
                    release.wait();
                })
            })
            .collect();
        // Every thread has used every size and is blocked, alive, on `release`.
        parked_barrier.wait();
        let parked = Snapshot::take(pool);
        let count = usize::try_from(per_bucket).expect("per_bucket fits a usize");
        top_up_partitions(pool, &sizes, count);
        let topped_up = Snapshot::take(pool);
        release.wait();
        // `join` waits for the thread to have exited, its thread-local destructors (the exit
        // flush) included; the end of the scope alone waits only for the closures to return.
        for thread in threads {
            thread.join().expect("a parked thread panicked");
        }
        (parked, topped_up)
    });
    let joined = Snapshot::take(pool);
    let figures = Figures {
        pool: name,
        max_len: pool.max_len(),
        sizes: sizes.len(),
        thread_cache_bytes,
        per_bucket,
        before,
        parked,
        topped_up,
        joined,
    };
    print_figures(&figures);
    figures
}

fn print_figures(f: &Figures) {
    let rss = |s: &Snapshot| s.rss_bytes.map_or("n/a".to_owned(), |b| b.to_string());
    println!(
        "parked_threads/{}: {THREADS} threads x {DEPTH} x {} sizes up to {} B, \
         thread_cache_bytes {}, per_bucket {}; parked: held {} buffers, {} bytes, RSS {}; \
         partitions topped up: held {} buffers, {} bytes; after join: held {} buffers \
         (full partitions: {}), {} bytes, RSS {}; RSS before {}",
        f.pool,
        f.sizes,
        f.max_len,
        f.thread_cache_bytes,
        f.per_bucket,
        f.parked.held_buffers,
        f.parked.held_bytes,
        rss(&f.parked),
        f.topped_up.held_buffers,
        f.topped_up.held_bytes,
        f.joined.held_buffers,
        f.per_bucket * f.sizes as u64,
        f.joined.held_bytes,
        rss(&f.joined),
        rss(&f.before),
    );
    println!(
        "parked_threads/{}: bytes in thread tiers while parked = topped up - after join = \
         {} - {} = {}; bound {THREADS} x thread_cache_bytes = {}",
        f.pool,
        f.topped_up.held_bytes,
        f.joined.held_bytes,
        f.thread_tier_bytes(),
        THREADS as u64 * f.thread_cache_bytes,
    );
}

/// Writes every pool measured in this run to `<criterion dir>/parked_threads/memory.json`
/// (nothing if no pool was: the benchmarks were filtered out).
fn write_json(figures: &[Figures]) {
    if figures.is_empty() {
        return;
    }
    let snapshot = |s: &Snapshot| {
        let rss = s.rss_bytes.map_or("null".to_owned(), |b| b.to_string());
        format!(
            "{{\"held_buffers\": {}, \"held_bytes\": {}, \"rss_bytes\": {rss}}}",
            s.held_buffers, s.held_bytes
        )
    };
    let mut json = String::from("[\n");
    for (i, f) in figures.iter().enumerate() {
        let _ = writeln!(
            json,
            "  {{\"pool\": \"{}\", \"threads\": {THREADS}, \"depth\": {DEPTH}, \
             \"max_len\": {}, \"sizes\": {}, \"thread_cache_bytes\": {}, \
             \"per_bucket\": {}, \"before\": {}, \"parked\": {}, \"topped_up\": {}, \
             \"joined\": {}}}{}",
            f.pool,
            f.max_len,
            f.sizes,
            f.thread_cache_bytes,
            f.per_bucket,
            snapshot(&f.before),
            snapshot(&f.parked),
            snapshot(&f.topped_up),
            snapshot(&f.joined),
            if i + 1 < figures.len() { "," } else { "" },
        );
    }
    json.push(']');
    let dir = criterion_dir().join("parked_threads");
    if let Err(err) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("memory.json"), json))
    {
        eprintln!("could not write {}: {err}", dir.display());
    }
}

/// `iters` fresh threads one after the other, each doing `work` and exiting; joined, so that
/// each thread's exit (the flush of its thread tier) is in the time.
fn short_lived_threads(iters: u64, work: impl Fn() + Sync) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        thread::scope(|scope| {
            scope
                .spawn(&work)
                .join()
                .expect("a short-lived thread panicked");
        });
    }
    start.elapsed()
}

fn parked_threads(c: &mut Criterion) {
    let shared = ArrayPool::shared();
    let builder = ArrayPool::builder()
        .max_len(BUILDER_MAX_LEN)
        .thread_cache(true)
        .build()
        .expect("a valid configuration");
    let sizes = bucket_sizes(shared);
    let mut figures = Vec::new();

    let mut group = c.benchmark_group("short_lived_thread");
    group.sample_size(10);
    for (name, pool) in [
        ("arraypool_shared", shared),
        ("arraypool_builder_thread_cache", &builder),
    ] {
        let mut measured = false;
        group.bench_function(name, |b| {
            if !measured {
                figures.push(measure(name, pool));
                measured = true;
            }
            let sizes = bucket_sizes(pool);
            b.iter_custom(|iters| short_lived_threads(iters, || use_every_size::<1>(pool, &sizes)))
        });
    }
    group.bench_function("vec_with_capacity", |b| {
        b.iter_custom(|iters| {
            short_lived_threads(iters, || {
                for &len in &sizes {
                    let mut buffer: Vec<u8> = Vec::with_capacity(black_box(len));
                    buffer.push(1);
                    drop(black_box(buffer));
                }
            })
        })
    });
    group.finish();
    write_json(&figures);
}

criterion_group! {
    name = benches;
    config = config();
    targets = parked_threads
}
criterion_main!(benches);
