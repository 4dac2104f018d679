//! [`PoolStats`] and [`BucketStats`]: snapshots of a pool's counters and gauges, whole and per
//! bucket. How they are counted is `accounting.rs`.

use std::fmt;

/// A snapshot of a pool's counters and gauges, from [`ArrayPool::stats`](crate::ArrayPool::stats).
///
/// Counters only grow. Each field is read with a relaxed load, so while other threads are
/// renting the snapshot is a close approximation, not an instant; once they are quiet (joined,
/// or synchronized with the reader) it is exact.
///
/// A healthy steady state shows `allocated`, `allocated_over_max`, `dropped_full` and
/// `dropped_foreign` flat while `rented` and `returned` climb. A growing `allocated_over_max`
/// means requests above [`ArrayPool::max_len`](crate::ArrayPool::max_len): give them a custom
/// pool. A growing `dropped_full` means more buffers are in flight than the pool keeps.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// let pool = ArrayPool::create(1 << 16, 4);
/// let buf = pool.rent(1000);
/// pool.return_(buf);
/// let again = pool.rent(1000);
///
/// let stats = pool.stats();
/// assert_eq!(stats.rented, 2);
/// assert_eq!(stats.allocated, 1, "the second rent reused the first buffer");
/// assert_eq!(stats.returned, 1);
/// assert_eq!(stats.held_buffers, 0, "the only buffer is rented out again");
/// # drop(again);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Rents of one byte or more (rents of zero bytes allocate nothing and are not counted).
    pub rented: u64,
    /// Fresh allocations for lengths within the pool's range: the pool had nothing to give.
    pub allocated: u64,
    /// Fresh allocations for lengths above the pool's maximum length.
    pub allocated_over_max: u64,
    /// Returned buffers the pool kept.
    pub returned: u64,
    /// Buffers freed because every place that could hold them was full.
    pub dropped_full: u64,
    /// Returned buffers freed because their capacity is not one of the pool's bucket sizes
    /// (grown, shrunk, above the maximum, or from elsewhere).
    pub dropped_foreign: u64,
    /// Buffers released by trimming: [`ArrayPool::trim`](crate::ArrayPool::trim), the idle
    /// timeout, or memory pressure.
    pub trimmed: u64,
    /// `BytesMut`s given to `return_bytes_mut` (feature `bytes`) whose buffer was still shared
    /// with other `BytesMut` or `Bytes` handles (from `split_to`, `split_off` or `freeze`), so
    /// that the pool could not take it back: the buffer stays with those handles and is freed
    /// by the last of them. Reported as
    /// [`DropReason::StillShared`](crate::DropReason::StillShared). Always 0 without the
    /// feature.
    pub dropped_shared: u64,
    /// Gauge: buffers the pool holds now, in thread caches and partitions.
    pub held_buffers: u64,
    /// Gauge: total capacity in bytes of the buffers the pool holds now.
    pub held_bytes: u64,
}

impl PoolStats {
    /// Rents served from the pool without allocating.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::create(4096, 2);
    /// let first = pool.rent(4000); // allocated
    /// pool.return_(first);
    /// let second = pool.rent(4000); // a hit
    /// drop(pool.rent(8000)); // over the maximum: allocated
    /// assert_eq!(pool.stats().hits(), 1);
    /// # drop(second);
    /// ```
    #[must_use]
    pub fn hits(&self) -> u64 {
        self.rented
            .saturating_sub(self.allocated + self.allocated_over_max)
    }
}

/// A two-column table, for logs and the tour.
impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("rented", self.rented),
            ("  served from the pool", self.hits()),
            ("  allocated (pool exhausted)", self.allocated),
            ("  allocated (over max length)", self.allocated_over_max),
            ("returned and kept", self.returned),
            ("dropped (pool full)", self.dropped_full),
            ("dropped (not a bucket size)", self.dropped_foreign),
            ("dropped (still shared)", self.dropped_shared),
            ("trimmed", self.trimmed),
            ("held now: buffers", self.held_buffers),
            ("held now: bytes", self.held_bytes),
        ];
        for (name, value) in rows {
            writeln!(f, "{name:<32}{value:>16}")?;
        }
        Ok(())
    }
}

/// One bucket's share of a pool's figures, from
/// [`ArrayPool::bucket_stats`](crate::ArrayPool::bucket_stats): what a user needs to size
/// `per_bucket`, `thread_cache_bytes` and `max_retained_bytes`.
///
/// The same rules as [`PoolStats`]: counters only grow, gauges are exact once other threads
/// are quiet.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// let pool = ArrayPool::create(4096, 4);
/// let (a, b) = (pool.rent(3000), pool.rent(3000));
/// pool.return_(a);
/// pool.return_(b);
/// let four_k = pool.bucket_stats().into_iter().find(|b| b.len == 4096).unwrap();
/// assert_eq!((four_k.rented, four_k.allocated), (2, 2));
/// assert_eq!((four_k.held_buffers, four_k.held_bytes), (2, 8192));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketStats {
    /// The capacity of this bucket's buffers, in bytes.
    pub len: usize,
    /// Gauge: this bucket's buffers the pool holds now, in thread caches and partitions.
    pub held_buffers: u64,
    /// Gauge: their total capacity in bytes.
    pub held_bytes: u64,
    /// Rents served from this bucket, from the pool or freshly allocated.
    pub rented: u64,
    /// Fresh allocations for this bucket: rents the pool had no buffer for.
    pub allocated: u64,
    /// Buffers of this bucket freed because every place that could hold them was full (or the
    /// budget was spent).
    pub dropped_full: u64,
    /// Buffers of this bucket released by trimming.
    pub trimmed: u64,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_figure() {
        let stats = PoolStats {
            rented: 10,
            allocated: 2,
            returned: 7,
            ..PoolStats::default()
        };
        let table = stats.to_string();
        assert!(table.contains("served from the pool"));
        assert!(table
            .lines()
            .any(|l| l.starts_with("rented") && l.ends_with("10")));
        assert!(table
            .lines()
            .any(|l| l.contains("served") && l.ends_with('8')));
    }
}
