//! The counting rule, and where each count lives.
//!
//! **The rule.** A pool counts a buffer when it enters the pool (a return it keeps) and when it
//! leaves (a rent it serves from what it holds, or a held buffer it frees). Moving a buffer
//! between tiers (a thread cache and the partitions) is not counted: the buffer never left the
//! pool. Every figure of [`PoolStats`] derives from these [`Flow`]s, per bucket
//! ([`Totals::stats`]):
//!
//! - `rented` = hits + allocations + allocations over the maximum;
//! - `returned` = kept;
//! - `dropped_full` = refused (a return that found no room) + evicted (a held buffer that found
//!   no room when it moved down a tier);
//! - `trimmed` = buffers released by trimming;
//! - `dropped_shared` = `BytesMut`s returned while their buffer was still shared (no bucket:
//!   the pool never saw the buffer whole);
//! - `held_buffers` = kept − hits − evicted − trimmed, per bucket, and `held_bytes` the same
//!   weighted by the bucket's length. Each term only grows, so a gauge read while other threads work can
//!   only be off by the operations in flight, and is exact once they are quiet.
//!
//! **Where counts live**, so that the fast path never writes a cache line another core writes:
//! - a [`ThreadLedger`] per thread, for its thread-cache hits and keeps: only that thread writes
//!   it, with a relaxed load and store (plain moves, no `lock`-prefixed instruction); a
//!   [`ShardRegistry`] hands ledgers out and takes them back at thread exit, so counts are never
//!   lost and short-lived threads do not pile up ledgers;
//! - each partition stack, for the hits and keeps of the partitions: plain adds under the lock
//!   the operation holds anyway (`stack.rs`);
//! - a [`SlowLedger`] per partition, for everything else (allocations, drops): relaxed
//!   `fetch_add`s, on paths that already pay for an allocation, a free or a lock.
//!
//! `stats()` adds them all into one [`Totals`].

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::bucket::{bucket_len, MAX_BUCKETS};
use crate::stats::{BucketStats, PoolStats};
use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// A buffer entering or leaving one bucket of a pool. The discriminant indexes a bucket's
/// counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A rent served from a buffer the pool held: the buffer leaves.
    Hit,
    /// A rent the pool could not serve from what it held: a fresh buffer, never held.
    Allocated,
    /// A returned buffer the pool kept: the buffer enters.
    Kept,
    /// A returned buffer freed because no place had room: it never entered.
    Refused,
    /// A held buffer freed because the tier it moved down to had no room: it leaves.
    Evicted,
    /// A held buffer released by trimming (`trim()`, idleness or memory pressure): it leaves.
    Trimmed,
}

const FLOWS: usize = Flow::Trimmed as usize + 1;

impl Flow {
    /// Every flow, in discriminant order.
    const ALL: [Flow; FLOWS] = [
        Flow::Hit,
        Flow::Allocated,
        Flow::Kept,
        Flow::Refused,
        Flow::Evicted,
        Flow::Trimmed,
    ];
}

/// A flow that belongs to no bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnpooledFlow {
    /// A rent above the pool's maximum length: allocated exactly, never held.
    AllocatedOverMax,
    /// A returned buffer whose capacity is none of the pool's bucket sizes: freed.
    Foreign,
    /// A returned `BytesMut` that still shared its buffer with other `bytes` handles: the pool
    /// could not take the buffer, which stays with them (`return_bytes_mut`).
    StillShared,
}

const UNPOOLED_FLOWS: usize = UnpooledFlow::StillShared as usize + 1;

impl UnpooledFlow {
    /// Every flow, in discriminant order.
    const ALL: [UnpooledFlow; UNPOOLED_FLOWS] = [
        UnpooledFlow::AllocatedOverMax,
        UnpooledFlow::Foreign,
        UnpooledFlow::StillShared,
    ];
}

/// Every count of a pool added up, by bucket; from this, [`Totals::stats`] derives the
/// figures.
#[derive(Clone, Debug)]
pub(crate) struct Totals {
    buckets: [[u64; FLOWS]; MAX_BUCKETS],
    unpooled: [u64; UNPOOLED_FLOWS],
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            buckets: [[0; FLOWS]; MAX_BUCKETS],
            unpooled: [0; UNPOOLED_FLOWS],
        }
    }
}

impl Totals {
    /// Adds `count` buffers of `flow` in `bucket`.
    #[inline]
    pub(crate) fn add(&mut self, bucket: usize, flow: Flow, count: u64) {
        let sum = &mut self.buckets[bucket][flow as usize];
        *sum = sum.wrapping_add(count);
    }

    fn add_unpooled(&mut self, flow: UnpooledFlow, count: u64) {
        let sum = &mut self.unpooled[flow as usize];
        *sum = sum.wrapping_add(count);
    }

    /// The buffers of `bucket` the pool holds: what entered minus what left. Counts read at
    /// slightly different moments can make it transiently "negative"; that reads as 0.
    fn held(&self, bucket: usize) -> u64 {
        let counts = &self.buckets[bucket];
        let left = counts[Flow::Hit as usize]
            .wrapping_add(counts[Flow::Evicted as usize])
            .wrapping_add(counts[Flow::Trimmed as usize]);
        let held = counts[Flow::Kept as usize].wrapping_sub(left);
        if (held as i64) < 0 {
            0
        } else {
            held
        }
    }

    /// The figures of [`BucketStats`] for each of the first `buckets` buckets.
    pub(crate) fn bucket_stats(&self, buckets: usize) -> Vec<BucketStats> {
        (0..buckets.min(MAX_BUCKETS))
            .map(|bucket| {
                let counts = &self.buckets[bucket];
                let get = |flow: Flow| counts[flow as usize];
                let held = self.held(bucket);
                BucketStats {
                    len: bucket_len(bucket),
                    held_buffers: held,
                    held_bytes: held * bucket_len(bucket) as u64,
                    rented: get(Flow::Hit).wrapping_add(get(Flow::Allocated)),
                    allocated: get(Flow::Allocated),
                    dropped_full: get(Flow::Refused).wrapping_add(get(Flow::Evicted)),
                    trimmed: get(Flow::Trimmed),
                }
            })
            .collect()
    }

    /// The figures of [`PoolStats`], derived by the rule in this module's docs.
    pub(crate) fn stats(&self) -> PoolStats {
        let sum = |flow: Flow| {
            self.buckets
                .iter()
                .fold(0u64, |sum, counts| sum.wrapping_add(counts[flow as usize]))
        };
        let over_max = self.unpooled[UnpooledFlow::AllocatedOverMax as usize];
        let (held_buffers, held_bytes) = (0..MAX_BUCKETS)
            .map(|bucket| (self.held(bucket), bucket_len(bucket) as u64))
            .fold((0u64, 0u64), |(buffers, bytes), (held, len)| {
                (buffers + held, bytes + held * len)
            });
        PoolStats {
            rented: sum(Flow::Hit)
                .wrapping_add(sum(Flow::Allocated))
                .wrapping_add(over_max),
            allocated: sum(Flow::Allocated),
            allocated_over_max: over_max,
            returned: sum(Flow::Kept),
            dropped_full: sum(Flow::Refused).wrapping_add(sum(Flow::Evicted)),
            dropped_foreign: self.unpooled[UnpooledFlow::Foreign as usize],
            dropped_shared: self.unpooled[UnpooledFlow::StillShared as usize],
            trimmed: sum(Flow::Trimmed),
            held_buffers,
            held_bytes,
        }
    }
}

/// The single writer's add: a relaxed load and store, which compile to ordinary moves.
#[inline]
fn add_owned(value: &AtomicU64, delta: u64) {
    value.store(
        value.load(Ordering::Relaxed).wrapping_add(delta),
        Ordering::Relaxed,
    );
}

/// A thread's counts of its own thread-cache hits and keeps, per bucket.
///
/// Only its thread writes it ([`add_owned`]); `stats()` reads it from any thread. A bucket's
/// two counts sit side by side, so a rent and a return of one size touch one cache line.
pub(crate) struct ThreadLedger {
    /// `[hits, kept]` per bucket.
    buckets: [[AtomicU64; 2]; MAX_BUCKETS],
}

impl Default for ThreadLedger {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl ThreadLedger {
    /// A buffer of `bucket` left the thread cache for a renter ([`Flow::Hit`]). Owner only.
    #[inline]
    pub(crate) fn hit(&self, bucket: usize) {
        add_owned(&self.buckets[bucket][0], 1);
    }

    /// A returned buffer of `bucket` went into the thread cache ([`Flow::Kept`]). Owner only.
    #[inline]
    pub(crate) fn kept(&self, bucket: usize) {
        add_owned(&self.buckets[bucket][1], 1);
    }

    /// How many rents and returns of `bucket` this thread's cache has served (wrapping): a
    /// magazine whose activity has not changed between two looks has been idle. Owner only.
    pub(crate) fn activity(&self, bucket: usize) -> u64 {
        let [hits, kept] = &self.buckets[bucket];
        hits.load(Ordering::Relaxed)
            .wrapping_add(kept.load(Ordering::Relaxed))
    }

    fn sum_into(&self, totals: &mut Totals) {
        for (bucket, [hits, kept]) in self.buckets.iter().enumerate() {
            totals.add(bucket, Flow::Hit, hits.load(Ordering::Relaxed));
            totals.add(bucket, Flow::Kept, kept.load(Ordering::Relaxed));
        }
    }
}

/// A thread's ledger on cache lines of its own, shared between its writer and the registry
/// that sums it.
pub(crate) type ThreadShard = Arc<CachePadded<ThreadLedger>>;

/// Every per-thread ledger a pool has handed out, and the ones free for reuse.
///
/// A thread checks a ledger out on its first thread-cache operation and back in when it exits,
/// so a program that starts 10,000 short-lived threads still has only as many ledgers as it
/// ever had threads alive at once, and no count is lost. The mutex hand-over orders one owner's
/// last write before the next owner's first, which keeps each ledger single-writer.
#[derive(Default)]
pub(crate) struct ShardRegistry {
    shards: Mutex<Shards>,
}

#[derive(Default)]
struct Shards {
    all: Vec<ThreadShard>,
    free: Vec<ThreadShard>,
    /// How many check-ins there were, for the loom models to wait on a thread's exit flush.
    #[cfg(all(test, loom))]
    checked_in: usize,
}

impl ShardRegistry {
    /// A ledger for the calling thread to write alone until it checks it back in.
    pub(crate) fn check_out(&self) -> ThreadShard {
        let mut shards = lock(&self.shards);
        if let Some(shard) = shards.free.pop() {
            return shard;
        }
        let shard = ThreadShard::default();
        shards.all.push(Arc::clone(&shard));
        shard
    }

    /// Gives a ledger back for a later thread; its counts stay in the totals.
    pub(crate) fn check_in(&self, shard: ThreadShard) {
        let mut shards = lock(&self.shards);
        shards.free.push(shard);
        #[cfg(all(test, loom))]
        {
            shards.checked_in += 1;
        }
    }

    fn sum_into(&self, totals: &mut Totals) {
        for shard in &lock(&self.shards).all {
            shard.sum_into(totals);
        }
    }

    /// How many times a ledger was checked in.
    #[cfg(all(test, loom))]
    pub(crate) fn checked_in(&self) -> usize {
        lock(&self.shards).checked_in
    }
}

/// Counts of slow-path flows that several threads may write, with relaxed `fetch_add`.
struct SlowLedger {
    buckets: [[AtomicU64; FLOWS]; MAX_BUCKETS],
    unpooled: [AtomicU64; UNPOOLED_FLOWS],
}

impl Default for SlowLedger {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Default::default()),
            unpooled: Default::default(),
        }
    }
}

impl SlowLedger {
    fn sum_into(&self, totals: &mut Totals) {
        for (bucket, counts) in self.buckets.iter().enumerate() {
            for (flow, count) in Flow::ALL.into_iter().zip(counts) {
                totals.add(bucket, flow, count.load(Ordering::Relaxed));
            }
        }
        for (flow, count) in UnpooledFlow::ALL.into_iter().zip(&self.unpooled) {
            totals.add_unpooled(flow, count.load(Ordering::Relaxed));
        }
    }
}

/// A pool's counts that live outside its partition stacks: the per-thread ledgers, and one
/// slow-path ledger per partition (so that threads on different CPUs add to different lines).
pub(crate) struct Accounting {
    threads: ShardRegistry,
    slow: Box<[CachePadded<SlowLedger>]>,
}

impl Accounting {
    /// Accounting for a pool with `partitions` partitions (at least one).
    pub(crate) fn new(partitions: usize) -> Self {
        Self {
            threads: ShardRegistry::default(),
            slow: (0..partitions.max(1))
                .map(|_| CachePadded::default())
                .collect(),
        }
    }

    /// The registry of this pool's per-thread ledgers.
    pub(crate) fn threads(&self) -> &ShardRegistry {
        &self.threads
    }

    /// Records `count` buffers of `flow` in `bucket`, on a slow path of a thread whose home
    /// partition is `home`.
    #[inline]
    pub(crate) fn record(&self, home: usize, bucket: usize, flow: Flow, count: u64) {
        self.slow_ledger(home).buckets[bucket][flow as usize].fetch_add(count, Ordering::Relaxed);
    }

    /// Records one buffer of `flow`, which belongs to no bucket.
    #[inline]
    pub(crate) fn record_unpooled(&self, home: usize, flow: UnpooledFlow) {
        self.slow_ledger(home).unpooled[flow as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds every count kept here into `totals`.
    pub(crate) fn sum_into(&self, totals: &mut Totals) {
        self.threads.sum_into(totals);
        for ledger in self.slow.iter() {
            ledger.sum_into(totals);
        }
    }

    fn slow_ledger(&self, home: usize) -> &SlowLedger {
        &self.slow[home % self.slow.len()]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_figures_follow_the_rule() {
        let mut totals = Totals::default();
        // Bucket 8 (4096 bytes): 5 kept, 2 hits, 1 evicted, 3 allocated, 1 refused.
        totals.add(8, Flow::Kept, 5);
        totals.add(8, Flow::Hit, 2);
        totals.add(8, Flow::Evicted, 1);
        totals.add(8, Flow::Allocated, 3);
        totals.add(8, Flow::Refused, 1);
        // Bucket 0 (16 bytes): one kept.
        totals.add(0, Flow::Kept, 1);
        totals.add_unpooled(UnpooledFlow::AllocatedOverMax, 4);
        totals.add_unpooled(UnpooledFlow::Foreign, 6);
        let stats = totals.stats();
        assert_eq!(stats.rented, 2 + 3 + 4);
        assert_eq!(stats.hits(), 2);
        assert_eq!((stats.allocated, stats.allocated_over_max), (3, 4));
        assert_eq!(stats.returned, 6);
        assert_eq!((stats.dropped_full, stats.dropped_foreign), (2, 6));
        assert_eq!(stats.held_buffers, 2 + 1);
        assert_eq!(stats.held_bytes, 2 * 4096 + 16);
    }

    #[test]
    fn a_transiently_negative_gauge_reads_as_zero() {
        let mut totals = Totals::default();
        totals.add(3, Flow::Hit, 1); // the hit was read, the keep before it not yet
        let stats = totals.stats();
        assert_eq!((stats.held_buffers, stats.held_bytes), (0, 0));
    }

    #[test]
    fn thread_and_slow_ledgers_add_up() {
        let accounting = Accounting::new(2);
        let shard = accounting.threads().check_out();
        shard.kept(8);
        shard.kept(8);
        shard.hit(8);
        accounting.record(0, 8, Flow::Allocated, 1);
        accounting.record(1, 8, Flow::Evicted, 1);
        accounting.record_unpooled(5, UnpooledFlow::Foreign);
        accounting.threads().check_in(shard);
        let mut totals = Totals::default();
        accounting.sum_into(&mut totals);
        let stats = totals.stats();
        assert_eq!((stats.rented, stats.returned), (2, 2));
        assert_eq!((stats.dropped_full, stats.dropped_foreign), (1, 1));
        assert_eq!(stats.held_buffers, 0);
    }

    #[test]
    fn a_checked_in_ledger_is_reused_and_keeps_its_counts() {
        let registry = ShardRegistry::default();
        let first = registry.check_out();
        first.kept(1);
        let address = Arc::as_ptr(&first);
        registry.check_in(first);
        let second = registry.check_out();
        assert_eq!(Arc::as_ptr(&second), address, "reused, not a new ledger");
        let mut totals = Totals::default();
        registry.sum_into(&mut totals);
        assert_eq!(totals.stats().returned, 1);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::thread;

    /// A reader sums while the owner writes: it sees each count at some value the owner stored
    /// (never a torn or invented one), and the final sum is exact.
    #[test]
    fn a_thread_ledger_summed_while_being_written() {
        loom::model(|| {
            let shard = ThreadShard::default();
            let writer = {
                let shard = Arc::clone(&shard);
                thread::spawn(move || {
                    shard.kept(8);
                    shard.hit(8);
                    shard.kept(8);
                })
            };
            let mut seen = Totals::default();
            shard.sum_into(&mut seen);
            assert!(seen.stats().returned <= 2);
            assert!(seen.stats().rented <= 1);
            writer.join().unwrap();
            let mut done = Totals::default();
            shard.sum_into(&mut done);
            let stats = done.stats();
            assert_eq!((stats.returned, stats.rented), (2, 1));
            assert_eq!(stats.held_bytes, 4096);
        });
    }

    /// A slow ledger that several threads write with `fetch_add` loses no update.
    #[test]
    fn slow_ledgers_lose_no_update() {
        loom::model(|| {
            let accounting = Arc::new(Accounting::new(1));
            let writer = {
                let accounting = Arc::clone(&accounting);
                thread::spawn(move || accounting.record(0, 2, Flow::Refused, 1))
            };
            accounting.record(1, 2, Flow::Refused, 1);
            writer.join().unwrap();
            let mut done = Totals::default();
            accounting.sum_into(&mut done);
            assert_eq!(done.stats().dropped_full, 2);
        });
    }
}
