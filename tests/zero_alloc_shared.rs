//! dhat: after warm-up, rent/return cycles on the shared pool make no heap allocation.
//!
//! One test per file: dhat is this binary's global allocator and counts every allocation in
//! the process, so nothing else may run beside it.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[path = "support/steady_state.rs"]
mod steady_state;

use arraypool::ArrayPool;

/// Lengths in several buckets, from the smallest to the shared pool's largest.
const LENGTHS: [usize; 6] = [1, 100, 1500, 4096, 60_000, 1 << 20];

/// One cycle: each length rented and returned once, plus two 4 KiB buffers held together, so
/// that one goes through the thread cache and the other through the partitions.
fn cycle(pool: &ArrayPool, i: usize) {
    for n in LENGTHS {
        let mut buf = pool.rent(n);
        buf[0] = i as u8;
        pool.return_(buf);
    }
    let (a, b) = (pool.rent(4000), pool.rent(4000));
    pool.return_(a);
    pool.return_(b);
}

#[test]
#[cfg_attr(miri, ignore = "dhat's allocator is not for Miri")]
fn rent_and_return_on_the_shared_pool_allocate_nothing_in_steady_state() {
    let _profiler = steady_state::profiler("zero_alloc_shared");
    let pool = ArrayPool::shared();
    assert!(pool.max_len() >= 1 << 20, "needs the default max_len");

    // Warm-up (the first buffer of each size, this thread's ledger, the partitions), then
    // 100,000 cycles that allocate nothing.
    steady_state::assert_no_allocation_in_steady_state("the shared pool", 100_000, |i| {
        cycle(pool, i)
    });
    // The buffers are real: what the pool holds is on the heap.
    let stats = pool.stats();
    assert!(
        stats.held_bytes
            >= LENGTHS
                .iter()
                .map(|n| n.next_power_of_two() as u64)
                .sum::<u64>()
    );
    assert!(stats.hits() >= 100_000 * 8);
}
