//! The shared pool's environment knobs take effect. One test in this file: the shared pool
//! reads the environment once per process, at its first use, so the variables are set before
//! anything touches it, and no other test may race that first use.

use arraypool::ArrayPool;

#[test]
fn the_shared_pool_reads_its_knobs_at_first_use() {
    // Edition 2021: `set_var` is safe, and no other thread of this process reads the
    // environment while it runs (the only test here has not started any).
    std::env::set_var("ARRAYPOOL_SHARED_MAX_LEN", "100000"); // rounded up to 2^17
    std::env::set_var("ARRAYPOOL_SHARED_PARTITIONS", "2");
    std::env::set_var("ARRAYPOOL_SHARED_PER_PARTITION", " 3 ");
    let pool = ArrayPool::shared();
    assert_eq!(pool.max_len(), 1 << 17);

    // Read once: later changes do nothing.
    std::env::set_var("ARRAYPOOL_SHARED_MAX_LEN", "4096");
    assert_eq!(ArrayPool::shared().max_len(), 1 << 17);

    let top = pool.rent(1 << 17);
    assert_eq!(top.capacity(), 1 << 17, "2^17 is a bucket");
    let over = pool.rent((1 << 17) + 1);
    assert_eq!(over.capacity(), (1 << 17) + 1, "above the maximum: exact");
    pool.return_(top);
    pool.return_(over);

    // 2 partitions of 3 buffers each, plus this thread's cache slot: 7 kept of 20 returned.
    for i in 0..20u8 {
        let mut buf = Vec::with_capacity(4096);
        buf.push(i);
        pool.return_(buf);
    }
    let stats = pool.stats();
    let four_k_kept = stats.held_buffers - 1; // less the 2^17 buffer
    assert_eq!(four_k_kept, 2 * 3 + 1, "{stats:?}");
    assert_eq!(stats.dropped_full, 20 - 7, "{stats:?}");
    assert_eq!(stats.dropped_foreign, 1, "the over-max buffer: {stats:?}");

    // All seven come back, and then the pool allocates.
    let rented: Vec<_> = (0..8).map(|_| pool.rent(4096)).collect();
    let stats = pool.stats();
    assert_eq!(stats.hits(), 7, "{stats:?}");
    assert_eq!(
        stats.allocated, 2,
        "the 2^17 rent and the eighth: {stats:?}"
    );
    drop(rented);
}
