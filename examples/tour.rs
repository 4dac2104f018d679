//! A tour of `arraypool`: `cargo run --release --example tour`.
//!
//! 1. the shared pool at work;
//! 2. a custom pool for 8 MiB frames;
//! 3. a request over the maximum, counted and reported to a listener;
//! 4. the statistics as a table;
//! 5. dhat's heap statistics: a million rent/return cycles after warm-up allocate nothing,
//!    where a million plain `Vec`s allocate a million times;
//! 6. memory that comes back: after a burst, with `trim()`; by itself, after an idle timeout;
//!    and at once, under memory pressure; with the resident set before and after, and the
//!    per-bucket table.

// dhat counts every heap allocation the process makes, which is what part 5 reports.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arraypool::{ArrayPool, MemoryPressure, PoolEvent};

const MIB: usize = 1 << 20;
const CYCLES: u64 = 1_000_000;

fn main() {
    // Testing mode gives us `HeapStats` without writing a `dhat-heap.json` when we exit.
    let _profiler = dhat::Profiler::builder().testing().build();

    shared_pool_at_work();
    custom_pool_for_frames();
    over_max_reported();
    zero_allocations();
    memory_comes_back();
}

fn heading(title: &str) {
    println!("\n== {title}");
}

fn shared_pool_at_work() {
    heading("1. The shared pool: ArrayPool::shared()");
    let pool = ArrayPool::shared();
    println!(
        "max_len {} bytes; buckets are powers of two from 16 up",
        pool.max_len()
    );
    println!("{:>12} {:>8} {:>10}", "rent(n)", "len", "capacity");
    for n in [1, 100, 1500, 4097, 65_000, MIB] {
        let buf = pool.rent(n);
        println!("{n:>12} {:>8} {:>10}", buf.len(), buf.capacity());
        pool.return_(buf);
    }

    let mut request = pool.rent(1500);
    request[..4].copy_from_slice(b"GET ");
    let address = request.as_ptr();
    pool.return_(request);
    let next = pool.rent(2000);
    println!(
        "rent(1500), return, rent(2000): the same buffer again? {}",
        if next.as_ptr() == address {
            "yes"
        } else {
            "no"
        }
    );
    pool.return_(next);
}

fn custom_pool_for_frames() {
    heading("2. A custom pool for 8 MiB frames: ArrayPool::create(8 << 20, 4)");
    let frames = ArrayPool::create(8 * MIB, 4);
    let before = dhat::HeapStats::get();
    for i in 0..100 {
        // Video frames of varying size, all in the 8 MiB bucket.
        let mut frame = frames.rent(6 * MIB + i * 10_000);
        frame[0] = i as u8;
        frames.return_(frame);
    }
    let after = dhat::HeapStats::get();
    let stats = frames.stats();
    println!(
        "100 frames of 6 to 7 MiB: {} allocated, {} reused; {} MiB taken from the heap \
         (plain Vecs would take {} MiB)",
        stats.allocated,
        stats.hits(),
        (after.total_bytes - before.total_bytes) / MIB as u64,
        (0..100).map(|i| 6 * MIB + i * 10_000).sum::<usize>() / MIB,
    );
    print!("{stats}");
}

fn over_max_reported() {
    heading("3. Over the maximum: counted, and reported to a listener");
    let pool = ArrayPool::shared();
    let listener = pool.add_listener(|event: &PoolEvent| println!("  listener: {event}"));
    let big = pool.rent(3 * MIB);
    println!(
        "rent(3 MiB) on a pool whose max_len is 1 MiB: capacity {}",
        big.capacity()
    );
    pool.return_(big);
    pool.remove_listener(listener);

    heading("4. The shared pool's statistics");
    print!("{}", pool.stats());
    println!("A steady `allocated (over max length)` says: give that size a custom pool.");
}

fn zero_allocations() {
    heading("5. dhat: heap allocations in a million cycles of a 4 KiB buffer");
    let pool = ArrayPool::shared();
    pool.return_(pool.rent(4096)); // warm-up: the first 4 KiB buffer

    let pooled = count_allocations(|| {
        for i in 0..CYCLES {
            let mut buf = pool.rent(4096);
            buf[0] = i as u8;
            pool.return_(black_box(buf));
        }
    });
    let plain = count_allocations(|| {
        for i in 0..CYCLES {
            let mut buf = Vec::<u8>::with_capacity(4096);
            buf.push(i as u8);
            drop(black_box(buf));
        }
    });

    println!("{:<46}{:>14}{:>16}", "", "allocations", "bytes");
    println!(
        "{:<46}{:>14}{:>16}",
        "ArrayPool::shared() rent + return_", pooled.0, pooled.1
    );
    println!(
        "{:<46}{:>14}{:>16}",
        "Vec::with_capacity(4096) + drop", plain.0, plain.1
    );
    assert_eq!(pooled.0, 0, "the pool allocates nothing in steady state");
    assert_eq!(plain.0, CYCLES, "each plain Vec allocates once");
    println!(
        "After warm-up the pool made {} heap allocations; plain Vecs made {}.",
        pooled.0, plain.0
    );
}

/// Heap allocations (blocks, bytes) that `f` makes, from dhat's counters.
fn count_allocations(f: impl FnOnce()) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    f();
    let after = dhat::HeapStats::get();
    (
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

fn memory_comes_back() {
    heading("6. Memory that comes back");
    let pool = ArrayPool::shared();
    // The scenario, scaled to this demo: 16 threads each use every size up to 1 MiB
    // and exit (their magazines move down to the partitions), then a burst of 200 rents of
    // 1 MiB held at once is returned.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let buffers: Vec<_> = (4..=20).map(|shift| pool.rent(1 << shift)).collect();
                for buffer in buffers {
                    pool.return_(buffer);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let burst: Vec<_> = (0..200).map(|_| pool.rent(MIB)).collect();
    for buffer in burst {
        pool.return_(buffer);
    }
    println!("after 16 threads used every size and a burst of 200 x 1 MiB:");
    println!("  held {}, resident {}", held(pool), resident());
    println!(
        "  {:>9} {:>6} {:>10} {:>8} {:>9} {:>8}",
        "bucket", "held", "bytes", "rented", "allocated", "dropped"
    );
    for bucket in pool.bucket_stats().iter().filter(|b| b.rented > 0) {
        println!(
            "  {:>9} {:>6} {:>10} {:>8} {:>9} {:>8}",
            bucket.len,
            bucket.held_buffers,
            bucket.held_bytes,
            bucket.rented,
            bucket.allocated,
            bucket.dropped_full
        );
    }
    pool.trim();
    println!("trim():  held {}, resident {}", held(pool), resident());

    // By itself: a pool whose buffers are released after 200 ms idle.
    let idle = ArrayPool::builder()
        .max_len(MIB)
        .per_bucket(64)
        .idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let burst: Vec<_> = (0..64).map(|_| idle.rent(MIB)).collect();
    for buffer in burst {
        idle.return_(buffer);
    }
    println!(
        "idle_timeout(200 ms), 64 x 1 MiB returned: held {}, resident {}",
        held(&idle),
        resident()
    );
    let waited = wait_until_empty(&idle);
    println!(
        "  {waited:?} later, with no call: held {}, resident {}, {} trimmed",
        held(&idle),
        resident(),
        idle.stats().trimmed
    );

    // Under pressure: the trimmer empties the partitions at its next look (the idle timeout
    // here is an hour; the pool's own pressure source stands in for the cgroup's).
    let squeezed = Arc::new(AtomicBool::new(false));
    let signal = Arc::clone(&squeezed);
    let pressed = ArrayPool::builder()
        .max_len(MIB)
        .per_bucket(64)
        .idle_timeout(Duration::from_secs(3600))
        .pressure(move || match signal.load(Ordering::Relaxed) {
            true => MemoryPressure::High,
            false => MemoryPressure::Low,
        })
        .build()
        .unwrap();
    let burst: Vec<_> = (0..64).map(|_| pressed.rent(MIB)).collect();
    for buffer in burst {
        pressed.return_(buffer);
    }
    println!(
        "idle_timeout(1 h), 64 x 1 MiB returned: held {}, resident {}",
        held(&pressed),
        resident()
    );
    squeezed.store(true, Ordering::Relaxed);
    let waited = wait_until_empty(&pressed);
    println!(
        "  pressure High, {waited:?} later: held {}, resident {}",
        held(&pressed),
        resident()
    );
}

/// Polls `pool` until it holds nothing (the trimmer looks at least every 5 s); returns how
/// long that took.
fn wait_until_empty(pool: &ArrayPool) -> Duration {
    let started = Instant::now();
    while pool.stats().held_bytes > 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

fn held(pool: &ArrayPool) -> String {
    format!("{:.1} MiB", pool.stats().held_bytes as f64 / MIB as f64)
}

/// The process's resident set, from `/proc/self/statm` (Linux; 4 KiB pages).
fn resident() -> String {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("n/a".into(), |pages| {
            format!("{:.1} MiB", (pages * 4096) as f64 / MIB as f64)
        })
}
