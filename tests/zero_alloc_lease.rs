//! dhat: after warm-up, leases on the shared pool (`lease`, `lease_with_capacity`, and a
//! lease ended by `?`) make no heap allocation: the guard is the buffer and a reference.
//!
//! One test per file: dhat is this binary's global allocator and counts every allocation in
//! the process, so nothing else may run beside it.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[path = "support/steady_state.rs"]
mod steady_state;

use arraypool::ArrayPool;

/// Lengths in several buckets, from the smallest to the shared pool's largest (1 MiB skips the
/// thread tier: its leases go through the partitions).
const LENGTHS: [usize; 6] = [1, 100, 1500, 8000, 60_000, 1 << 20];

fn fallible(pool: &'static ArrayPool, i: usize) -> Result<usize, usize> {
    let mut lease = pool.lease_with_capacity(4000);
    lease.extend_from_slice(&[i as u8; 64]);
    let parity = if i % 2 == 0 { Ok(lease.len()) } else { Err(i) };
    let len = parity?; // half the leases end here
    Ok(len + lease.capacity())
}

/// One cycle: a lease of each length, an empty lease filled by appending, two 4 KiB leases
/// held together (one through the thread cache, one through the partitions) and a lease
/// ended early by `?`.
fn cycle(pool: &'static ArrayPool, i: usize) {
    for n in LENGTHS {
        let mut lease = pool.lease(n);
        lease[0] = i as u8;
    }
    let mut body = pool.lease_with_capacity(2000);
    body.extend_from_slice(&[i as u8; 1000]);
    let (a, b) = (pool.lease(4000), pool.lease(4000));
    drop((a, b));
    let _ = std::hint::black_box(fallible(pool, i));
}

#[test]
#[cfg_attr(miri, ignore = "dhat's allocator is not for Miri")]
fn leases_on_the_shared_pool_allocate_nothing_in_steady_state() {
    let _profiler = steady_state::profiler("zero_alloc_lease");
    let pool = ArrayPool::shared();
    assert!(pool.max_len() >= 1 << 20, "needs the default max_len");

    steady_state::assert_no_allocation_in_steady_state("leases on the shared pool", 100_000, |i| {
        cycle(pool, i)
    });
    let stats = pool.stats();
    assert!(
        stats.hits() >= 100_000 * 10,
        "every lease came from the pool: {stats:?}"
    );
    assert_eq!(stats.dropped_foreign, 0, "no lease left its bucket");
}
