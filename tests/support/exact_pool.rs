//! A small pool whose figures a test can predict, shared by the lease and bytes tests.

use arraypool::{ArrayPool, PoolStats};

/// A pool without a thread cache and one partition, so that `stats()` is exact and a rent
/// after a return gets the very buffer back; no idle timeout, so no trimmer touches it.
pub fn pool() -> ArrayPool {
    ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(8)
        .partitions(1)
        .idle_timeout(None)
        .build()
        .unwrap()
}

/// (rented, returned, held) of `stats`.
pub fn flows(stats: PoolStats) -> (u64, u64, u64) {
    (stats.rented, stats.returned, stats.held_buffers)
}
