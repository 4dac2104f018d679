//! Invalid values of the shared pool's environment knobs mean the defaults. One test in this
//! file: the shared pool reads the environment once per process, at its first use.

use arraypool::ArrayPool;

#[test]
fn invalid_knobs_mean_the_defaults() {
    // Each would mean something else to a lenient parser: 0x10000 = 65536, +2 = 2, 70000 is
    // above the per-partition range (65536).
    std::env::set_var("ARRAYPOOL_SHARED_MAX_LEN", "0x10000");
    std::env::set_var("ARRAYPOOL_SHARED_PARTITIONS", "+2");
    std::env::set_var("ARRAYPOOL_SHARED_PER_PARTITION", "70000");
    // 2^30 + 1 is above the budget's range, 2^32 above the timeout's, 2^64 above a u64.
    std::env::set_var("ARRAYPOOL_SHARED_THREAD_CACHE_BYTES", "1073741825");
    std::env::set_var("ARRAYPOOL_SHARED_IDLE_TIMEOUT_MS", "4294967296");
    std::env::set_var(
        "ARRAYPOOL_SHARED_MAX_RETAINED_BYTES",
        "18446744073709551616",
    );
    let pool = ArrayPool::shared();
    assert_eq!(pool.max_len(), 1 << 20, "the default maximum, 1 MiB");
    let debug = format!("{pool:?}");
    for field in [
        "thread_cache_bytes: 131072",
        "idle_timeout: Some(60s)",
        "max_retained_bytes: None",
    ] {
        assert!(debug.contains(field), "{field} in {debug}");
    }

    // The default bound of the partitions: one partition per available CPU, 32 buffers each.
    // Returned on a thread that then exits, everything its cache held moves down to them, and
    // what finds no room is freed.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound = cpus * 32;
    std::thread::spawn(move || {
        for _ in 0..bound + 40 {
            pool.return_(Vec::with_capacity(64));
        }
    })
    .join()
    .unwrap();
    let stats = pool.stats();
    assert_eq!(stats.held_buffers, bound as u64, "{stats:?}");
    assert_eq!(stats.dropped_full, 40, "{stats:?}");
}
