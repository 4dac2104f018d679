//! dhat: after warm-up, rent/return cycles on custom pools, with and without a thread cache,
//! make no heap allocation.
//!
//! One test per file: dhat is this binary's global allocator and counts every allocation in
//! the process, so nothing else may run beside it.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[path = "support/steady_state.rs"]
mod steady_state;

use arraypool::ArrayPool;

const LENGTHS: [usize; 5] = [16, 700, 4096, 100_000, 8 << 20];

/// One cycle: each length rented and returned once, plus three 4 KiB buffers held together, so
/// that some go through the partitions even with a thread cache.
fn cycle(pool: &ArrayPool, i: usize) {
    for n in LENGTHS {
        let mut buf = pool.rent(n);
        buf[n - 1] = i as u8;
        pool.return_(buf);
    }
    let held = [pool.rent(4096), pool.rent(4000), pool.rent(3000)];
    for buf in held {
        pool.return_(buf);
    }
}

#[test]
#[cfg_attr(miri, ignore = "dhat's allocator is not for Miri")]
fn rent_and_return_on_custom_pools_allocate_nothing_in_steady_state() {
    let _profiler = steady_state::profiler("zero_alloc_custom");
    let plain = ArrayPool::create(8 << 20, 4);
    let cached = ArrayPool::builder()
        .max_len(8 << 20)
        .per_bucket(4)
        .thread_cache(true)
        .build()
        .unwrap();

    for (name, pool) in [("no thread cache", &plain), ("thread cache", &cached)] {
        steady_state::assert_no_allocation_in_steady_state(name, 100_000, |i| cycle(pool, i));
        let stats = pool.stats();
        // One buffer for each of four buckets, three for the 4 KiB bucket held three at once.
        assert_eq!(stats.allocated, 4 + 3, "{name}: {stats:?}");
        assert_eq!(
            stats.dropped_full + stats.dropped_foreign,
            0,
            "{name}: {stats:?}"
        );
    }
}
