//! Counters that never share a cache line on the fast path, and the [`PoolStats`] snapshot.
//!
//! A pool keeps its counts in shards, each on its own cache line:
//! - one shard per thread (for thread-cache hits), written only by its owner with a plain
//!   relaxed load and store: no `lock`-prefixed instruction, no line that another core writes.
//!   It counts per bucket the buffers taken from and kept in the cache, one count per
//!   operation, from which `stats()` derives rents, returns and both gauges ([`ThreadCounts`]);
//! - one shard per partition, written with relaxed `fetch_add` on the slow paths, right after
//!   the thread has taken (or instead of taking) that partition's lock.
//!
//! `stats()` sums all shards. Following mimalloc, monotonic counters (rents, allocations, drops)
//! are kept apart from gauges (what the pool holds now); a gauge is the sum of signed per-shard
//! deltas, kept as wrapping `u64`s so that a shard can go "negative" when a buffer enters the
//! pool through one shard and leaves through another.

use std::fmt;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::bucket::{bucket_len, MAX_BUCKETS};
use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// What a counter counts. The discriminant indexes [`Counters`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Rented,
    Allocated,
    AllocatedOverMax,
    Returned,
    DroppedFull,
    DroppedForeign,
    /// Gauge delta: buffers the pool holds.
    HeldBuffers,
    /// Gauge delta: bytes (capacity) of the buffers the pool holds.
    HeldBytes,
}

const COUNTERS: usize = Counter::HeldBytes as usize + 1;

/// One shard of counts.
#[derive(Default)]
pub(crate) struct Counters {
    values: [AtomicU64; COUNTERS],
}

impl Counters {
    /// Adds `delta` (wrapping) to a shard that several threads may write.
    #[inline]
    pub(crate) fn add_shared(&self, counter: Counter, delta: u64) {
        self.values[counter as usize].fetch_add(delta, Ordering::Relaxed);
    }

    /// Adds this shard's values into `total`.
    pub(crate) fn sum_into(&self, total: &mut [u64; COUNTERS]) {
        for (sum, value) in total.iter_mut().zip(&self.values) {
            *sum = sum.wrapping_add(value.load(Ordering::Relaxed));
        }
    }
}

/// A thread's counts of its own thread-cache hits, per bucket: one relaxed load and store per
/// rent or return instead of three (a rent counted `rented`, `held_buffers` and `held_bytes`
/// one by one).
///
/// Every buffer in a thread cache's slot `i` has capacity `bucket_len(i)`, so the per-bucket
/// counts of buffers taken from and kept in the cache determine all four figures the fast path
/// moves: `rented` and `returned` are their sums, `held_buffers` the sum of the differences, and
/// `held_bytes` the differences weighted by bucket length ([`sum_into`](Self::sum_into)). A
/// bucket's two counts share a cache line, so a rent+return touches one line.
pub(crate) struct ThreadCounts {
    /// `[taken, kept]` per bucket.
    buckets: [[AtomicU64; 2]; MAX_BUCKETS],
}

const TAKEN: usize = 0;
const KEPT: usize = 1;

impl Default for ThreadCounts {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl ThreadCounts {
    /// A buffer of bucket `index` left the thread cache for a renter. Owner thread only.
    #[inline]
    pub(crate) fn count_taken(&self, index: usize) {
        add_owned(&self.buckets[index][TAKEN], 1);
    }

    /// A returned buffer of bucket `index` went into the thread cache. Owner thread only.
    #[inline]
    pub(crate) fn count_kept(&self, index: usize) {
        add_owned(&self.buckets[index][KEPT], 1);
    }

    /// Adds what these counts mean into `total`: rents and returns, and the gauge deltas.
    pub(crate) fn sum_into(&self, total: &mut [u64; COUNTERS]) {
        for (index, [taken, kept]) in self.buckets.iter().enumerate() {
            let (taken, kept) = (taken.load(Ordering::Relaxed), kept.load(Ordering::Relaxed));
            add_taken_and_kept(total, index, taken, kept);
        }
    }
}

/// Adds what `taken` rents from and `kept` returns into one tier of bucket `index` mean: rents
/// and returns, and the gauge deltas (every buffer of a bucket has the same capacity).
pub(crate) fn add_taken_and_kept(total: &mut [u64; COUNTERS], index: usize, taken: u64, kept: u64) {
    // Wrapping, as every gauge delta: a buffer kept in one tier may leave through another.
    let held = kept.wrapping_sub(taken);
    let mut add = |counter: Counter, value: u64| {
        let sum = &mut total[counter as usize];
        *sum = sum.wrapping_add(value);
    };
    add(Counter::Rented, taken);
    add(Counter::Returned, kept);
    add(Counter::HeldBuffers, held);
    add(
        Counter::HeldBytes,
        held.wrapping_mul(bucket_len(index) as u64),
    );
}

/// The single writer's add: a relaxed load and store, which compile to ordinary moves.
#[inline]
fn add_owned(value: &AtomicU64, delta: u64) {
    value.store(
        value.load(Ordering::Relaxed).wrapping_add(delta),
        Ordering::Relaxed,
    );
}

/// A thread's counts on cache lines of their own, shared between their writer and the registry
/// that sums them.
pub(crate) type Shard = Arc<CachePadded<ThreadCounts>>;

/// Every per-thread shard a pool has handed out, and the ones free for reuse.
///
/// A thread checks a shard out on its first fast-path operation and back in when it exits, so
/// a program that starts 10,000 short-lived threads still has only as many shards as it ever
/// had threads alive at once, and no count is lost. The mutex hand-over orders one owner's last
/// write before the next owner's first, which keeps each shard single-writer.
#[derive(Default)]
pub(crate) struct ShardRegistry {
    shards: Mutex<Shards>,
}

#[derive(Default)]
struct Shards {
    all: Vec<Shard>,
    free: Vec<Shard>,
}

impl ShardRegistry {
    /// A shard for the calling thread to write alone until it checks it back in.
    pub(crate) fn check_out(&self) -> Shard {
        let mut shards = lock(&self.shards);
        if let Some(shard) = shards.free.pop() {
            return shard;
        }
        let shard = Shard::default();
        shards.all.push(Arc::clone(&shard));
        shard
    }

    /// Gives a shard back for a later thread; its counts stay in the totals.
    pub(crate) fn check_in(&self, shard: Shard) {
        lock(&self.shards).free.push(shard);
    }

    /// Adds every shard's values into `total`.
    pub(crate) fn sum_into(&self, total: &mut [u64; COUNTERS]) {
        lock(&self.shards)
            .all
            .iter()
            .for_each(|shard| shard.sum_into(total));
    }
}

/// Adds a signed change to a gauge delta: `-1` is `u64::MAX` in wrapping arithmetic.
#[inline]
pub(crate) const fn negative(amount: u64) -> u64 {
    amount.wrapping_neg()
}

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

    pub(crate) fn from_totals(totals: &[u64; COUNTERS]) -> Self {
        let get = |c: Counter| totals[c as usize];
        // A gauge's shards may be read at slightly different moments, so the sum can be a
        // transient "negative"; report that as zero rather than as 2^64 - 1.
        let gauge = |c: Counter| {
            let v = get(c);
            if (v as i64) < 0 {
                0
            } else {
                v
            }
        };
        Self {
            rented: get(Counter::Rented),
            allocated: get(Counter::Allocated),
            allocated_over_max: get(Counter::AllocatedOverMax),
            returned: get(Counter::Returned),
            dropped_full: get(Counter::DroppedFull),
            dropped_foreign: get(Counter::DroppedForeign),
            held_buffers: gauge(Counter::HeldBuffers),
            held_bytes: gauge(Counter::HeldBytes),
        }
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
            ("held now: buffers", self.held_buffers),
            ("held now: bytes", self.held_bytes),
        ];
        for (name, value) in rows {
            writeln!(f, "{name:<32}{value:>16}")?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn gauges_sum_signed_deltas_across_shards() {
        let (a, b) = (Counters::default(), Counters::default());
        a.add_shared(Counter::HeldBuffers, 3);
        b.add_shared(Counter::HeldBuffers, negative(2));
        let mut totals = [0; COUNTERS];
        a.sum_into(&mut totals);
        b.sum_into(&mut totals);
        assert_eq!(PoolStats::from_totals(&totals).held_buffers, 1);
    }

    #[test]
    fn a_transiently_negative_gauge_reads_as_zero() {
        let shard = Counters::default();
        shard.add_shared(Counter::HeldBytes, negative(64));
        let mut totals = [0; COUNTERS];
        shard.sum_into(&mut totals);
        assert_eq!(PoolStats::from_totals(&totals).held_bytes, 0);
    }

    #[test]
    fn thread_counts_derive_rents_returns_and_both_gauges() {
        let (here, there) = (ThreadCounts::default(), ThreadCounts::default());
        // Bucket 8 (4096 bytes): kept three times here, taken twice here and once elsewhere.
        for _ in 0..3 {
            here.count_kept(8);
        }
        here.count_taken(8);
        here.count_taken(8);
        there.count_taken(8);
        // Bucket 0 (16 bytes): kept once.
        here.count_kept(0);
        let mut totals = [0; COUNTERS];
        here.sum_into(&mut totals);
        there.sum_into(&mut totals);
        let stats = PoolStats::from_totals(&totals);
        assert_eq!((stats.rented, stats.returned), (3, 4));
        assert_eq!(stats.held_buffers, 1, "one 16-byte buffer left");
        assert_eq!(stats.held_bytes, 16);
    }

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

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A reader sums while the owner writes: it sees each count at some value the owner stored
    /// (never a torn or invented one), and the final sum is exact.
    #[test]
    fn thread_counts_summed_while_being_written() {
        loom::model(|| {
            let shard = Arc::new(ThreadCounts::default());
            let writer = {
                let shard = Arc::clone(&shard);
                thread::spawn(move || {
                    shard.count_kept(8);
                    shard.count_taken(8);
                    shard.count_kept(8);
                })
            };
            let mut seen = [0; COUNTERS];
            shard.sum_into(&mut seen);
            assert!(seen[Counter::Returned as usize] <= 2);
            assert!(seen[Counter::Rented as usize] <= 1);
            writer.join().unwrap();
            let mut done = [0; COUNTERS];
            shard.sum_into(&mut done);
            assert_eq!(done[Counter::Returned as usize], 2);
            assert_eq!(done[Counter::Rented as usize], 1);
            assert_eq!(done[Counter::HeldBytes as usize], 4096);
        });
    }

    /// A shard that several threads write with `fetch_add` loses no update.
    #[test]
    fn shared_counters_summed_while_being_written() {
        loom::model(|| {
            let shard = Arc::new(Counters::default());
            let writer = {
                let shard = Arc::clone(&shard);
                thread::spawn(move || shard.add_shared(Counter::Returned, 1))
            };
            shard.add_shared(Counter::Returned, 1);
            writer.join().unwrap();
            let mut done = [0; COUNTERS];
            shard.sum_into(&mut done);
            assert_eq!(done[Counter::Returned as usize], 2);
        });
    }
}
