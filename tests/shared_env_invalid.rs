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
    let pool = ArrayPool::shared();
    assert_eq!(pool.max_len(), 1 << 20, "the default maximum, 1 MiB");

    // The default bound: one partition per available CPU, 32 buffers each, plus this thread's
    // cache slot.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bound = cpus * 32 + 1;
    for _ in 0..bound + 5 {
        pool.return_(Vec::with_capacity(64));
    }
    let stats = pool.stats();
    assert_eq!(stats.held_buffers, bound as u64, "{stats:?}");
    assert_eq!(stats.dropped_full, 5, "{stats:?}");
}
