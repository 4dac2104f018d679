//! [`ArrayPool`]: `shared()`, `create()`, `rent()`, `return_()`, `stats()`: the public contract.
//!
//! The tiers, from fastest to slowest (see `docs/design.md`):
//! 1. the thread cache: one buffer per bucket per thread, no lock, no atomic instruction;
//! 2. the partitions: per bucket, one bounded [`LockedStack`](crate::stack) per CPU, home first;
//! 3. the allocator.

use std::collections::TryReserveError;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

use crate::bucket::{bucket_index, bucket_len, bucket_of_capacity, MAX_POOLED_LEN, MIN_BUCKET_LEN};
use crate::builder::ArrayPoolBuilder;
use crate::cpu::current_cpu;
use crate::env::SharedSettings;
use crate::event::{AllocReason, DropReason, Listener, ListenerFn, PoolEvent};
use crate::per_cpu::PerCpuStacks;
use crate::stack::Arrival;
use crate::stats::{
    add_taken_and_kept, negative, Counter, Counters, PoolStats, Shard, ShardRegistry,
};
use crate::tls::{with_per_pool_access, PerPoolThreadState, ThreadCache, SHARED_THREAD};

/// A pool of `Vec<u8>` buffers in power-of-two size classes.
///
/// Rent with [`rent`](Self::rent), give back with [`return_`](Self::return_). Use
/// [`ArrayPool::shared`] for everyday buffers up to 1 MiB, and [`ArrayPool::create`] (or
/// [`ArrayPool::builder`]) for larger buffers or bounded memory.
///
/// `ArrayPool` is `Send + Sync`; share it by reference or in an `Arc`. Its `Debug` output takes
/// no lock.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// let pool = ArrayPool::shared();
/// let mut buf = pool.rent(1500);
/// assert_eq!(buf.len(), 1500);
/// assert_eq!(buf.capacity(), 2048);
/// buf[0] = 0x7e;
/// pool.return_(buf);
/// ```
pub struct ArrayPool {
    /// The largest pooled length: a power of two in `16 ..= MAX_POOLED_LEN`.
    max_len: usize,
    /// One slot per bucket; a bucket's partitions are created the first time a buffer of that
    /// size is returned, so sizes a program never uses cost nothing.
    buckets: Box<[OnceLock<PerCpuStacks>]>,
    /// How many buffers each partition of a bucket keeps.
    partition_capacities: Box<[usize]>,
    tier: ThreadTier,
    /// Counter shards written by the thread-cache fast path, one per thread.
    shards: ShardRegistry,
    /// Counter shards written on slow paths, one per partition.
    partition_counters: Box<[CachePadded<Counters>]>,
    listener: Listener,
}

/// Which thread cache a pool has.
enum ThreadTier {
    /// The shared pool's: a `thread_local!`, flushed into the partitions at thread exit.
    Shared,
    /// A custom pool's: owned by the pool, so dropping the pool frees every thread's slots.
    PerPool(Box<ThreadLocal<PerPoolThreadState>>),
    /// None: every rent and return goes to the partitions, and `per_bucket` bounds the pool.
    Off,
}

/// [`ThreadTier`] without its storage, as the builder chooses it.
pub(crate) enum ThreadTierKind {
    Shared,
    PerPool,
    Off,
}

/// Everything a pool is built from; checked by the builder or the environment parser.
pub(crate) struct Layout {
    pub(crate) max_len: usize,
    pub(crate) partition_capacities: Box<[usize]>,
    pub(crate) tier: ThreadTierKind,
    pub(crate) listener: Option<ListenerFn>,
}

static SHARED: OnceLock<ArrayPool> = OnceLock::new();

impl ArrayPool {
    /// The process-wide pool, created on first use.
    ///
    /// It keeps buffers of up to 2^20 bytes (1 MiB) in 17 buckets, each split into one
    /// partition per CPU of 32 buffers, behind a per-thread cache of one buffer per bucket.
    /// Larger rents are allocated exactly, counted in
    /// [`allocated_over_max`](PoolStats::allocated_over_max), reported to the listener, and
    /// dropped on return: give such sizes a custom pool.
    ///
    /// Three environment variables, read once on first use, tune it. Each must be plain decimal
    /// digits (spaces around are ignored) within its range; any other value, including 0, means
    /// the default:
    ///
    /// | variable | meaning | range | default |
    /// |---|---|---|---|
    /// | `ARRAYPOOL_SHARED_MAX_LEN` | largest pooled length, rounded up to a power of two | 1 ..= 2^30 | 2^20 |
    /// | `ARRAYPOOL_SHARED_PARTITIONS` | partitions per bucket | 1 ..= 1024 | CPUs available |
    /// | `ARRAYPOOL_SHARED_PER_PARTITION` | buffers per partition per bucket | 1 ..= 65536 | 32 |
    ///
    /// The shared pool holds at most, per bucket, `partitions × per_partition` buffers plus one
    /// per live thread that has returned a buffer of that size. When a thread exits, its cached
    /// buffers move to the partitions (or are freed if those are full).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// assert!(std::ptr::eq(ArrayPool::shared(), ArrayPool::shared()));
    /// assert_eq!(ArrayPool::shared().max_len(), 1 << 20); // unless ARRAYPOOL_SHARED_MAX_LEN says otherwise
    /// ```
    #[inline]
    pub fn shared() -> &'static ArrayPool {
        SHARED.get_or_init(|| {
            let settings = SharedSettings::from_env();
            Self::from_layout(Layout {
                max_len: settings.max_len,
                partition_capacities: vec![settings.per_partition; settings.partitions].into(),
                tier: ThreadTierKind::Shared,
                listener: None,
            })
        })
    }

    /// A custom pool keeping buffers of up to `max_len` bytes, at most `per_bucket` of each
    /// size.
    ///
    /// `max_len` is rounded up to a power of two, at least 16; above
    /// [`MAX_POOLED_LEN`](crate::MAX_POOLED_LEN) (2^30) it is lowered to that cap, as .NET's
    /// `ArrayPool.Create` does ([`ArrayPool::builder`] refuses it instead). The pool keeps at
    /// most `per_bucket` buffers per bucket, split over one partition per CPU, and exactly
    /// `per_bucket` when that many come back: a return whose home partition is full tries the
    /// others before dropping the buffer. It has no thread cache (the builder can add one).
    /// Dropping the pool frees every buffer it holds. Buffers rented from it stay valid: they are
    /// ordinary `Vec`s.
    ///
    /// # Panics
    ///
    /// If `max_len` or `per_bucket` is 0, with a message naming the argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// // Frames of up to 8 MiB, at most 4 of each size kept.
    /// let pool = ArrayPool::create(8 << 20, 4);
    /// let frame = pool.rent(6_000_000);
    /// assert_eq!(frame.capacity(), 8 << 20);
    /// pool.return_(frame);
    /// assert_eq!(pool.stats().held_buffers, 1);
    /// ```
    #[must_use]
    pub fn create(max_len: usize, per_bucket: usize) -> ArrayPool {
        assert!(
            max_len != 0,
            "ArrayPool::create: `max_len` must be at least 1, got 0"
        );
        assert!(
            per_bucket != 0,
            "ArrayPool::create: `per_bucket` must be at least 1, got 0"
        );
        match Self::builder()
            .max_len(max_len.min(MAX_POOLED_LEN))
            .per_bucket(per_bucket)
            .build()
        {
            Ok(pool) => pool,
            Err(err) => unreachable!("create checked its arguments: {err}"),
        }
    }

    /// A builder for a custom pool with more options: partitions, a thread cache, a listener.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::builder().max_len(1 << 16).thread_cache(true).build().unwrap();
    /// assert_eq!(pool.rent(70_000).capacity(), 70_000, "over the maximum: exact size");
    /// ```
    pub fn builder() -> ArrayPoolBuilder {
        ArrayPoolBuilder::default()
    }

    pub(crate) fn from_layout(layout: Layout) -> Self {
        let max_len = layout.max_len.next_power_of_two().max(MIN_BUCKET_LEN);
        debug_assert!(max_len <= MAX_POOLED_LEN);
        let bucket_count = bucket_index(max_len) + 1;
        let partitions = layout.partition_capacities.len();
        Self {
            max_len,
            buckets: (0..bucket_count).map(|_| OnceLock::new()).collect(),
            partition_capacities: layout.partition_capacities,
            tier: match layout.tier {
                ThreadTierKind::Shared => ThreadTier::Shared,
                ThreadTierKind::PerPool => ThreadTier::PerPool(Box::default()),
                ThreadTierKind::Off => ThreadTier::Off,
            },
            shards: ShardRegistry::default(),
            partition_counters: (0..partitions).map(|_| CachePadded::default()).collect(),
            listener: Listener::new(layout.listener),
        }
    }

    /// The largest length this pool keeps: a power of two. Rents above it are allocated with
    /// exactly the requested capacity and dropped when returned.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(arraypool::ArrayPool::create(100, 1).max_len(), 128);
    /// ```
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Rents a buffer of length `n`.
    ///
    /// - `1 <= n <= max_len()`: the capacity is exactly the bucket size, the smallest power of
    ///   two at least `max(n, 16)`. The buffer comes from this thread's cache, else the current
    ///   CPU's partition, else the other partitions, else a fresh allocation (counted in
    ///   [`allocated`](PoolStats::allocated) and reported as
    ///   [`AllocReason::PoolExhausted`]).
    /// - `n > max_len()`: a fresh buffer of capacity `n`, counted in
    ///   [`allocated_over_max`](PoolStats::allocated_over_max) and reported as
    ///   [`AllocReason::OverMaxLength`].
    /// - `n == 0`: `Vec::new()`; no allocation, not counted.
    ///
    /// **Contents.** Bytes that nobody ever wrote read as zero. Bytes that an earlier renter
    /// wrote (within the length it returned the buffer with) may still be there, as with .NET's
    /// `ArrayPool`: do not rely on them, and do not return buffers holding secrets without
    /// clearing them. Use [`rent_zeroed`](Self::rent_zeroed) for all-zero contents.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX` ("capacity overflow", as `Vec` does). Like `Vec`, a failed
    /// allocation aborts; [`try_rent`](Self::try_rent) returns an error for both instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::shared();
    /// let buf = pool.rent(100);
    /// assert_eq!((buf.len(), buf.capacity()), (100, 128));
    /// pool.return_(buf);
    /// assert_eq!(pool.rent(0).capacity(), 0);
    /// ```
    ///
    /// Dropping the buffer instead of returning it is allowed (it is freed), but the rent's
    /// whole point is to give it back:
    ///
    /// ```compile_fail
    /// #![deny(unused_must_use)]
    /// arraypool::ArrayPool::shared().rent(10);
    /// ```
    #[inline(always)]
    #[must_use = "a rented buffer should be used and then given back with `return_`"]
    pub fn rent(&self, n: usize) -> Vec<u8> {
        // One comparison rejects both 0 (which wraps to usize::MAX) and n > max_len.
        if n.wrapping_sub(1) < self.max_len {
            let index = bucket_index(n);
            // The shared pool's thread-cache hit is the only path inlined into the caller: kept
            // this small, the buffer comes back in registers instead of through memory (which
            // cost a store-forwarding stall per call, docs/benchmarks.md).
            if let ThreadTier::Shared = self.tier {
                if let Some(buffer) = take_shared_cached(index) {
                    return fit_len(buffer, n);
                }
            }
            self.rent_pooled(n, index)
        } else {
            self.rent_unpooled(n)
        }
    }

    /// Rents a buffer of length `n` whose bytes are all zero.
    ///
    /// The same as [`rent`](Self::rent) in every other respect; clearing costs one `memset` of
    /// `n` bytes when the buffer comes from the pool.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX`, as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(4096, 1);
    /// pool.return_(vec![0xff; 4096]);
    /// let buf = pool.rent_zeroed(4000);
    /// assert!(buf.iter().all(|&b| b == 0));
    /// ```
    #[must_use = "a rented buffer should be used and then given back with `return_`"]
    pub fn rent_zeroed(&self, n: usize) -> Vec<u8> {
        if n.wrapping_sub(1) >= self.max_len {
            return self.rent_unpooled(n); // zeroed by the allocator
        }
        let index = bucket_index(n);
        match self.take_held(index) {
            Some(mut buffer) => {
                buffer.clear();
                buffer.resize(n, 0);
                buffer
            }
            None => self.allocate_bucket(n, index),
        }
    }

    /// Rents a buffer of length `n`, returning an error instead of panicking or aborting when
    /// the memory cannot be had.
    ///
    /// # Errors
    ///
    /// [`TryReserveError`] when `n` is above `isize::MAX` or the allocator refuses the
    /// allocation. Pool hits never fail.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::shared();
    /// assert!(pool.try_rent(usize::MAX).is_err());
    /// assert_eq!(pool.try_rent(10).unwrap().len(), 10);
    /// ```
    pub fn try_rent(&self, n: usize) -> Result<Vec<u8>, TryReserveError> {
        if n.wrapping_sub(1) < self.max_len {
            let index = bucket_index(n);
            if let Some(buffer) = self.take_held(index) {
                return Ok(fit_len(buffer, n));
            }
            let buffer = try_alloc(bucket_len(index), n)?;
            self.note_allocated(
                n,
                bucket_len(index),
                Counter::Allocated,
                AllocReason::PoolExhausted,
            );
            Ok(buffer)
        } else if n == 0 {
            Ok(Vec::new())
        } else {
            let buffer = try_alloc(n, n)?;
            self.note_allocated(n, n, Counter::AllocatedOverMax, AllocReason::OverMaxLength);
            Ok(buffer)
        }
    }

    /// Gives a buffer back to the pool. Never panics.
    ///
    /// - Capacity 0: nothing happens.
    /// - Capacity exactly one of this pool's bucket sizes (16, 32, … `max_len()`): kept, in this
    ///   thread's cache first (for pools that have one; the buffer it displaces moves to the
    ///   partitions), else the current CPU's partition, else the others. If all are full a
    ///   buffer is freed, counted in [`dropped_full`](PoolStats::dropped_full) and reported as
    ///   [`DropReason::Full`].
    /// - Any other capacity (grown past its bucket, shrunk, over the maximum, never a bucket
    ///   size): freed, counted in [`dropped_foreign`](PoolStats::dropped_foreign) and reported as
    ///   [`DropReason::NotBucketSize`].
    ///
    /// Any `Vec<u8>` whose capacity fits a bucket is welcome, wherever it came from: another
    /// pool, or `Vec::with_capacity(4096)`. Its length says how much of it is initialized and
    /// is kept; the next renter sees those bytes (up to its own length) and zeros past them.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(4096, 8);
    /// pool.return_(Vec::with_capacity(4096)); // kept: 4096 is a bucket size
    /// pool.return_(Vec::with_capacity(1000)); // dropped: not a bucket size
    /// let stats = pool.stats();
    /// assert_eq!((stats.returned, stats.dropped_foreign), (1, 1));
    /// ```
    #[inline(always)]
    pub fn return_(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        match bucket_of_capacity(capacity) {
            // As in `rent`, only the shared pool's thread-cache path is inlined.
            Some(index) if index < self.buckets.len() => match self.tier {
                ThreadTier::Shared => match put_shared_cached(index, buffer) {
                    Ok(None) => {}
                    Ok(Some(displaced)) => self.push_down(index, displaced),
                    // This thread's cache is already destroyed (a return from another
                    // thread-local's destructor): straight to the partitions.
                    Err(buffer) => self.push_returned(index, buffer),
                },
                _ => self.keep(index, buffer),
            },
            _ if capacity == 0 => {}
            _ => self.drop_foreign(buffer),
        }
    }

    /// A snapshot of this pool's counters and gauges; see [`PoolStats`]. It briefly locks the
    /// registry of per-thread counter shards (never touched by the rent/return fast path) and,
    /// one at a time, each partition, whose counts live under its lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(1024, 4);
    /// drop(pool.rent(2048)); // over the maximum
    /// assert_eq!(pool.stats().allocated_over_max, 1);
    /// ```
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let mut totals = Default::default();
        self.shards.sum_into(&mut totals);
        for (index, bucket) in self.buckets.iter().enumerate() {
            if let Some(partitions) = bucket.get() {
                let (taken, kept) = partitions.counts();
                add_taken_and_kept(&mut totals, index, taken, kept);
            }
        }
        self.partition_counters
            .iter()
            .for_each(|shard| shard.sum_into(&mut totals));
        PoolStats::from_totals(&totals)
    }

    /// Installs `listener` for this pool's [`PoolEvent`]s, replacing any earlier one. This is how
    /// the shared pool gets a listener; custom pools can also set one on the builder.
    ///
    /// With no listener, each slow-path event costs one relaxed load. The listener runs on the
    /// thread that caused the event, with no pool lock held.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::{ArrayPool, PoolEvent};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ArrayPool::create(1024, 1);
    /// let events = Arc::new(AtomicUsize::new(0));
    /// let count = Arc::clone(&events);
    /// pool.set_listener(move |_: &PoolEvent| { count.fetch_add(1, Ordering::Relaxed); });
    /// drop(pool.rent(4096)); // over the maximum: one event
    /// pool.clear_listener();
    /// drop(pool.rent(4096));
    /// assert_eq!(events.load(Ordering::Relaxed), 1);
    /// ```
    pub fn set_listener(&self, listener: impl Fn(&PoolEvent) + Send + Sync + 'static) {
        self.listener.set(Some(Arc::new(listener)));
    }

    /// Removes this pool's listener, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// arraypool::ArrayPool::create(64, 1).clear_listener();
    /// ```
    pub fn clear_listener(&self) {
        self.listener.set(None);
    }

    // ----- the thread cache -------------------------------------------------------------

    /// Takes this thread's cached buffer for bucket `index`, counting the rent, if the pool has
    /// a thread cache and the slot is full.
    #[inline]
    fn take_cached(&self, index: usize) -> Option<Vec<u8>> {
        match &self.tier {
            ThreadTier::Shared => take_shared_cached(index),
            ThreadTier::PerPool(states) => with_per_pool_access(|| {
                let state = states.get()?;
                let buffer = state.cache.take(index)?;
                state.shard.count_taken(index);
                Some(buffer)
            })
            .flatten(),
            ThreadTier::Off => None,
        }
    }

    /// Keeps a returned buffer of bucket `index` in a custom pool: in this thread's cache if the
    /// pool has one (pushing the buffer it displaces down to the partitions), else in the
    /// partitions. (The shared pool's cache is handled inline in `return_`.)
    #[inline(never)]
    fn keep(&self, index: usize, buffer: Vec<u8>) {
        let mut incoming = Some(buffer);
        let displaced = match &self.tier {
            ThreadTier::PerPool(states) => with_per_pool_access(|| {
                let state = states.get_or(|| PerPoolThreadState {
                    cache: ThreadCache::new(),
                    shard: self.shards.check_out(),
                });
                let buffer = incoming.take()?;
                state.shard.count_kept(index);
                state.cache.put(index, buffer)
            })
            .flatten(),
            ThreadTier::Shared | ThreadTier::Off => None,
        };
        match incoming {
            // No thread cache, or this thread may no longer use its cache (a return from
            // another thread-local's destructor): straight to the partitions.
            Some(buffer) => self.push_returned(index, buffer),
            None => {
                if let Some(older) = displaced {
                    self.push_down(index, older);
                }
            }
        }
    }

    // ----- the partitions -----------------------------------------------------------------

    /// Everything but the shared pool's cache hit: a custom pool's thread cache, then the
    /// partitions, then the allocator.
    #[inline(never)]
    fn rent_pooled(&self, n: usize, index: usize) -> Vec<u8> {
        match self.take_held(index) {
            Some(buffer) => fit_len(buffer, n),
            None => self.allocate_bucket(n, index),
        }
    }

    /// A buffer of bucket `index` the pool holds, from this thread's cache or the partitions,
    /// counting the rent. (After `rent`'s inline miss on the shared cache this looks at the
    /// same empty slot once more: one thread-local read on a path that then takes a lock.)
    fn take_held(&self, index: usize) -> Option<Vec<u8>> {
        self.take_cached(index).or_else(|| self.take_pooled(index))
    }

    /// A fresh buffer of bucket `index` with length `n`, zero-filled.
    #[inline(never)]
    fn allocate_bucket(&self, n: usize, index: usize) -> Vec<u8> {
        let capacity = bucket_len(index);
        self.note_allocated(n, capacity, Counter::Allocated, AllocReason::PoolExhausted);
        let mut buffer = Vec::with_capacity(capacity);
        buffer.resize(n, 0);
        buffer
    }

    /// Pops a buffer of bucket `index` from the partitions, home first, counting the rent.
    fn take_pooled(&self, index: usize) -> Option<Vec<u8>> {
        let home = current_cpu();
        // Counted by the stack, under its lock.
        self.buckets[index].get()?.pop(home)
    }

    /// A buffer the pool already held (displaced from a thread cache) moves to the partitions,
    /// or is freed if they are full.
    #[inline(never)]
    fn push_down(&self, index: usize, buffer: Vec<u8>) {
        let home = current_cpu();
        if let Err(refused) = self
            .partitions(index)
            .push(home, buffer, Arrival::MovedDown)
        {
            let counters = self.partition_counters(home);
            counters.add_shared(Counter::HeldBuffers, negative(1));
            counters.add_shared(Counter::HeldBytes, negative(refused.capacity() as u64));
            self.note_dropped_full(home, refused);
        }
    }

    /// A buffer coming back from a renter goes to the partitions, or is freed if they are full.
    #[inline(never)]
    fn push_returned(&self, index: usize, buffer: Vec<u8>) {
        let home = current_cpu();
        // Counted by the stack, under its lock, when kept.
        if let Err(refused) = self.partitions(index).push(home, buffer, Arrival::Returned) {
            self.note_dropped_full(home, refused);
        }
    }

    fn partitions(&self, index: usize) -> &PerCpuStacks {
        self.buckets[index].get_or_init(|| PerCpuStacks::new(&self.partition_capacities))
    }

    fn partition_counters(&self, home: usize) -> &Counters {
        &self.partition_counters[home % self.partition_counters.len()]
    }

    // ----- the allocator ------------------------------------------------------------------

    #[inline(never)]
    fn rent_unpooled(&self, n: usize) -> Vec<u8> {
        if n == 0 {
            return Vec::new();
        }
        assert!(
            n <= isize::MAX as usize,
            "ArrayPool::rent: capacity overflow: `n` = {n} is above isize::MAX"
        );
        self.note_allocated(n, n, Counter::AllocatedOverMax, AllocReason::OverMaxLength);
        // `vec!` of zeros asks the allocator for zeroed memory (calloc), which for large sizes
        // is fresh pages the kernel has already zeroed.
        vec![0; n]
    }

    fn note_allocated(&self, len: usize, capacity: usize, counter: Counter, reason: AllocReason) {
        let counters = self.partition_counters(current_cpu());
        counters.add_shared(Counter::Rented, 1);
        counters.add_shared(counter, 1);
        self.listener.raise(|| PoolEvent::Allocated {
            len,
            capacity,
            reason,
        });
    }

    #[inline(never)]
    fn note_dropped_full(&self, home: usize, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        drop(buffer);
        self.partition_counters(home)
            .add_shared(Counter::DroppedFull, 1);
        self.listener.raise(|| PoolEvent::Dropped {
            capacity,
            reason: DropReason::Full,
        });
    }

    #[inline(never)]
    fn drop_foreign(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        drop(buffer);
        self.partition_counters(current_cpu())
            .add_shared(Counter::DroppedForeign, 1);
        self.listener.raise(|| PoolEvent::Dropped {
            capacity,
            reason: DropReason::NotBucketSize,
        });
    }
}

/// Thread exit: moves the shared pool's buffers cached by this thread into its partitions and
/// gives its counter shard back. Called from the thread-local's destructor (`tls.rs`).
pub(crate) fn flush_shared_thread(cache: &ThreadCache, shard: Option<Shard>) {
    // No shared pool yet means nothing was ever cached or counted.
    if let Some(pool) = SHARED.get() {
        cache.drain(|index, buffer| pool.push_down(index, buffer));
        if let Some(shard) = shard {
            pool.shards.check_in(shard);
        }
    }
}

/// Takes this thread's cached buffer of bucket `index` for the shared pool, counting the rent.
#[inline(always)]
fn take_shared_cached(index: usize) -> Option<Vec<u8>> {
    SHARED_THREAD
        .try_with(|state| {
            let buffer = state.cache.take(index)?;
            state.shard(shared_shards).count_taken(index);
            Some(buffer)
        })
        .ok()
        .flatten()
}

/// Caches `buffer` of bucket `index` in this thread's cache for the shared pool, counting the
/// return: `Ok` with the buffer it displaces, or `Err(buffer)` if this thread's cache is gone.
#[inline(always)]
fn put_shared_cached(index: usize, buffer: Vec<u8>) -> Result<Option<Vec<u8>>, Vec<u8>> {
    // Check first, then move the buffer in: a closure that borrowed an `Option<Vec>` to hand
    // the buffer back on failure kept `try_with` from being inlined and sent the buffer
    // through memory several times per return.
    if SHARED_THREAD.try_with(|_| ()).is_err() {
        return Err(buffer);
    }
    // Cannot fail now (nothing ran on this thread since the check); `unwrap_or` rather than
    // `with` keeps the panic machinery out of the inlined path.
    Ok(SHARED_THREAD
        .try_with(move |state| {
            state.shard(shared_shards).count_kept(index);
            state.cache.put(index, buffer)
        })
        .unwrap_or(None))
}

/// The shared pool's registry of per-thread counter shards.
fn shared_shards() -> &'static ShardRegistry {
    &ArrayPool::shared().shards
}

/// Sets a pooled buffer's length to `n` without exposing a byte the pool has not seen
/// initialized: the buffer's own length is what a safe `Vec` guarantees initialized, so keep
/// (truncate) within it and zero-fill beyond it.
#[inline]
fn fit_len(mut buffer: Vec<u8>, n: usize) -> Vec<u8> {
    if n <= buffer.len() {
        buffer.truncate(n);
        buffer
    } else {
        zero_extend(buffer, n)
    }
}

/// `fit_len`'s growing side, out of line: a `memset` call has no place in the inlined path.
#[inline(never)]
fn zero_extend(mut buffer: Vec<u8>, n: usize) -> Vec<u8> {
    buffer.resize(n, 0);
    buffer
}

/// A fresh zeroed buffer of length `n` and capacity exactly `capacity`, or the allocator's no.
fn try_alloc(capacity: usize, n: usize) -> Result<Vec<u8>, TryReserveError> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(capacity)?;
    buffer.resize(n, 0);
    Ok(buffer)
}

impl fmt::Debug for ArrayPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tier = match self.tier {
            ThreadTier::Shared => "shared thread-local",
            ThreadTier::PerPool(_) => "per-pool thread-local",
            ThreadTier::Off => "none",
        };
        f.debug_struct("ArrayPool")
            .field("max_len", &self.max_len)
            .field("buckets", &self.buckets.len())
            .field("partitions", &self.partition_capacities.len())
            .field(
                "per_bucket",
                &self.partition_capacities.iter().sum::<usize>(),
            )
            .field("thread_cache", &tier)
            .field("listener", &self.listener.is_installed())
            .finish_non_exhaustive()
    }
}
