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
    // 16 KiB per thread: a 4 KiB magazine holds two.
    std::env::set_var("ARRAYPOOL_SHARED_THREAD_CACHE_BYTES", "16384");
    std::env::set_var("ARRAYPOOL_SHARED_IDLE_TIMEOUT_MS", "0"); // never trimmed by the clock
                                                                // The 2^17 buffer and four of 4 KiB.
    std::env::set_var("ARRAYPOOL_SHARED_MAX_RETAINED_BYTES", "147456");
    let pool = ArrayPool::shared();
    assert_eq!(pool.max_len(), 1 << 17);
    let debug = format!("{pool:?}");
    for field in [
        "thread_cache_bytes: 16384",
        "idle_timeout: None",
        "max_retained_bytes: Some(147456)",
    ] {
        assert!(debug.contains(field), "{field} in {debug}");
    }

    // Read once: later changes do nothing.
    std::env::set_var("ARRAYPOOL_SHARED_MAX_LEN", "4096");
    assert_eq!(ArrayPool::shared().max_len(), 1 << 17);

    let top = pool.rent(1 << 17);
    assert_eq!(top.capacity(), 1 << 17, "2^17 is a bucket");
    let over = pool.rent((1 << 17) + 1);
    assert_eq!(over.capacity(), (1 << 17) + 1, "above the maximum: exact");
    pool.return_(top);
    pool.return_(over);

    // Two 4 KiB buffers stay in this thread's magazine; each later return moves the oldest
    // down. The partitions' 2 × 3 slots would take six, but the byte budget takes four.
    for i in 0..20u8 {
        let mut buf = Vec::with_capacity(4096);
        buf.push(i);
        pool.return_(buf);
    }
    let stats = pool.stats();
    let four_k_kept = stats.held_buffers - 1; // less the 2^17 buffer
    assert_eq!(four_k_kept, 2 + 4, "{stats:?}");
    assert_eq!(stats.dropped_full, 20 - 6, "{stats:?}");
    assert_eq!(stats.dropped_foreign, 1, "the over-max buffer: {stats:?}");

    // All six come back, and then the pool allocates.
    let rented: Vec<_> = (0..7).map(|_| pool.rent(4096)).collect();
    let stats = pool.stats();
    assert_eq!(stats.hits(), 6, "{stats:?}");
    assert_eq!(
        stats.allocated, 2,
        "the 2^17 rent and the seventh: {stats:?}"
    );
    drop(rented);
}
