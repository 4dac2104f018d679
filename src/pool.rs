//! [`ArrayPool`]: the public contract, and the dispatch of each call between the tiers.
//!
//! A rent tries, in order: this thread's cache (`thread_cache.rs`), the partitions
//! (`partitions.rs`, through `pool_state.rs`), the allocator. A return goes to the first of
//! the two tiers with room, or is freed and counted.

use std::collections::TryReserveError;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::bucket::{bucket_index, bucket_len, bucket_of_capacity, pooled_bucket, MIN_BUCKET_LEN};
use crate::builder::{ArrayPoolBuilder, Layout, TierChoice};
use crate::env::SharedSettings;
use crate::event::{ListenerId, Listeners, PoolEvent};
use crate::fill;
use crate::partitions::Partitions;
use crate::pool_state::{Idle, PoolState};
use crate::stats::{BucketStats, PoolStats};
use crate::thread_cache::{PerPoolTier, SharedTier, ThreadTier};

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
    /// The largest pooled length: a power of two in `16 ..= MAX_POOLED_LEN`. Kept here, beside
    /// the tier, so that the shared pool's fast path reads nothing behind the `Arc`.
    max_len: usize,
    tier: ThreadTier,
    state: Arc<PoolState>,
}

static SHARED: OnceLock<ArrayPool> = OnceLock::new();

impl ArrayPool {
    /// The process-wide pool, created on first use.
    ///
    /// It keeps buffers of up to 2^20 bytes (1 MiB) in 17 buckets, each split into one
    /// partition per CPU of 32 buffers, behind a thread tier: per thread, a magazine of buffers
    /// per size, within a budget of [`DEFAULT_THREAD_CACHE_BYTES`](crate::DEFAULT_THREAD_CACHE_BYTES)
    /// (128 KiB) per thread (sizes up to 64 KiB; larger ones go straight to the partitions).
    /// Larger rents are allocated exactly, counted in
    /// [`allocated_over_max`](PoolStats::allocated_over_max), reported to the listeners, and
    /// dropped on return: give such sizes a custom pool.
    ///
    /// Six environment variables, read once on first use, tune it. Each must be plain decimal
    /// digits (spaces around are ignored) within its range; any other value means the default,
    /// and so does 0, except for the idle timeout, where 0 turns idle release off:
    ///
    /// | variable | meaning | range | default |
    /// |---|---|---|---|
    /// | `ARRAYPOOL_SHARED_MAX_LEN` | largest pooled length, rounded up to a power of two | 1 ..= 2^30 | 2^20 |
    /// | `ARRAYPOOL_SHARED_PARTITIONS` | partitions per bucket | 1 ..= 1024 | CPUs available |
    /// | `ARRAYPOOL_SHARED_PER_PARTITION` | buffers per partition per bucket | 1 ..= 65536 | 32 |
    /// | `ARRAYPOOL_SHARED_THREAD_CACHE_BYTES` | each thread's budget in the thread tier | 1 ..= 2^30 | 131072 |
    /// | `ARRAYPOOL_SHARED_IDLE_TIMEOUT_MS` | [idle timeout](crate::ArrayPoolBuilder::idle_timeout), ms; 0: off | 0 ..= 2^32 - 1 | 60000 |
    /// | `ARRAYPOOL_SHARED_MAX_RETAINED_BYTES` | [byte budget](crate::ArrayPoolBuilder::max_retained_bytes) of the partitions | 1 ..= 2^64 - 1 | none |
    ///
    /// When `partitions × per_partition` would exceed [`MAX_PER_BUCKET`](crate::MAX_PER_BUCKET),
    /// `per_partition` is lowered to fit.
    ///
    /// The shared pool holds at most `partitions × per_partition` buffers per bucket in its
    /// partitions (and at most the byte budget, if set), plus `thread_cache_bytes` per live
    /// thread across all sizes. When a thread exits, its cached buffers move to the partitions
    /// (or are freed if those are full). Buffers idle in the partitions for the idle timeout
    /// are released ([`trim`](Self::trim) releases them at once).
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
                name: "shared",
                max_len: settings.max_len,
                partition_bounds: vec![settings.per_partition; settings.partitions].into(),
                tier: TierChoice::Shared,
                thread_cache_bytes: settings.thread_cache_bytes,
                listeners: Vec::new(),
                idle: settings.idle_timeout.map(|timeout| Idle {
                    timeout,
                    pressure: None,
                }),
                max_retained_bytes: settings.max_retained_bytes,
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
    /// If `max_len` or `per_bucket` is 0, or `per_bucket` is above
    /// [`MAX_PER_BUCKET`](crate::MAX_PER_BUCKET), with a message naming the argument.
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
        assert!(
            per_bucket <= crate::MAX_PER_BUCKET,
            "ArrayPool::create: `per_bucket` must be at most {}, got {per_bucket}",
            crate::MAX_PER_BUCKET
        );
        match Self::builder()
            .max_len(max_len.min(crate::MAX_POOLED_LEN))
            .per_bucket(per_bucket)
            .build()
        {
            Ok(pool) => pool,
            Err(err) => unreachable!("create checked its arguments: {err}"),
        }
    }

    /// A builder for a custom pool with more options: partitions, a thread cache, listeners.
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

    /// Builds a pool from a checked layout (the builder's, or the shared pool's settings).
    pub(crate) fn from_layout(layout: Layout) -> Self {
        let max_len = layout.max_len.next_power_of_two().max(MIN_BUCKET_LEN);
        debug_assert!(max_len <= crate::MAX_POOLED_LEN);
        let partitions = Partitions::new(
            bucket_index(max_len) + 1,
            layout.partition_bounds,
            layout.max_retained_bytes,
        );
        let thread_cache_bytes = match layout.tier {
            TierChoice::Off => 0,
            TierChoice::Shared | TierChoice::PerPool => layout.thread_cache_bytes,
        };
        let state = PoolState::named(
            layout.name,
            partitions,
            Listeners::new(layout.listeners),
            thread_cache_bytes,
            layout.idle,
        );
        let tier = match layout.tier {
            TierChoice::Shared => {
                // The shared pool lives for the whole process; its tier's thread-local holds a
                // `&'static` to this state, which this handle in a static keeps alive (reachable,
                // so no leak checker calls it lost).
                static FOREVER: OnceLock<Arc<PoolState>> = OnceLock::new();
                let forever: &'static PoolState = FOREVER.get_or_init(|| Arc::clone(&state));
                match SharedTier::claim(forever) {
                    Some(tier) => ThreadTier::Shared(tier),
                    None => unreachable!("only the shared pool's one initialization asks"),
                }
            }
            TierChoice::PerPool => ThreadTier::PerPool(PerPoolTier::register(Arc::clone(&state))),
            TierChoice::Off => ThreadTier::Off,
        };
        Self {
            max_len,
            tier,
            state,
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

    /// This pool's name: `"shared"` for [`ArrayPool::shared`], else what
    /// [`ArrayPoolBuilder::name`] set (`"custom"` by default). It labels the pool's metrics and
    /// `tracing` events.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// assert_eq!(ArrayPool::shared().name(), "shared");
    /// assert_eq!(ArrayPool::create(64, 1).name(), "custom");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.state.name
    }

    /// Rents a buffer of length `n`.
    ///
    /// - `1 <= n <= max_len()`: the capacity is exactly the bucket size, the smallest power of
    ///   two at least `max(n, 16)`. The buffer comes from this thread's cache, else the current
    ///   CPU's partition, else the other partitions, else a fresh allocation (counted in
    ///   [`allocated`](PoolStats::allocated) and reported as
    ///   [`AllocReason::PoolExhausted`](crate::AllocReason::PoolExhausted)).
    /// - `n > max_len()`: a fresh buffer of capacity `n`, counted in
    ///   [`allocated_over_max`](PoolStats::allocated_over_max) and reported as
    ///   [`AllocReason::OverMaxLength`](crate::AllocReason::OverMaxLength).
    /// - `n == 0`: `Vec::new()`; no allocation, not counted.
    ///
    /// **Contents.** Bytes that nobody ever wrote read as zero. Bytes that an earlier renter
    /// wrote (within the length it returned the buffer with) may still be there, as with .NET's
    /// `ArrayPool`: do not rely on them, and do not return buffers holding secrets without
    /// clearing them. Use [`rent_zeroed`](Self::rent_zeroed) for all-zero contents. A buffer
    /// returned after `clear()` makes the next renter's `rent(n)` zero-fill `n` bytes.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX` ("capacity overflow", as `Vec` does). Like `Vec`, a failed
    /// allocation aborts; [`try_rent`](Self::try_rent) returns an error for both instead. A
    /// listener's panic propagates (see [`add_listener`](Self::add_listener)).
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
        let Some(bucket) = pooled_bucket(n, self.max_len) else {
            return self.rent_unpooled(n);
        };
        // A thread-cache hit is the only path inlined into the caller, and it calls nothing:
        // kept this small, the buffer comes back in registers (docs/benchmarks.md). A buffer
        // that must be zero-extended takes the slow path.
        let hit = match &self.tier {
            ThreadTier::Shared(tier) => tier.take_fitting(bucket, n),
            ThreadTier::PerPool(tier) => tier.take_fitting(bucket, n),
            ThreadTier::Off => None,
        };
        match hit {
            Some(buffer) => buffer,
            None => self.rent_pooled(n, bucket),
        }
    }

    /// Rents an empty buffer with room for at least `n` bytes: `len() == 0`, and `capacity()`
    /// the bucket size, as [`rent`](Self::rent) would give for `n`.
    ///
    /// This is the buffer to fill by appending: `extend_from_slice`, `io::Write` for
    /// `Vec<u8>`, `bytes::BufMut`, tokio's `AsyncReadExt::read_buf`. They all write past `len`,
    /// so a buffer from `rent(n)` (whose `len` is already `n`) would be reallocated out of its
    /// bucket: into the next one up when `Vec` doubles it, else to a capacity the pool drops
    /// when it is returned ([`DropReason::NotBucketSize`](crate::DropReason::NotBucketSize)).
    /// Filled within its capacity, this one keeps its bucket, and [`return_`](Self::return_)
    /// keeps it. It is the pool's `Vec::with_capacity(n)`, and
    /// [`lease_with_capacity`](Self::lease_with_capacity) its guard that returns itself.
    ///
    /// - `1 <= n <= max_len()`: capacity exactly the bucket size (the smallest power of two at
    ///   least `max(n, 16)`), from the same tiers as `rent`; counted as a rent (and as an
    ///   allocation when the pool had none).
    /// - `n > max_len()`: a fresh buffer of capacity exactly `n`, counted in
    ///   [`allocated_over_max`](PoolStats::allocated_over_max) and reported, as `rent`.
    /// - `n == 0`: `Vec::new()`; no allocation, not counted.
    ///
    /// Nothing in the spare capacity can be read without writing it first, so this one
    /// never zero-fills.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX` ("capacity overflow"), as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    /// use std::io::Write;
    ///
    /// let pool = ArrayPool::create(4096, 4);
    /// let mut buf = pool.rent_with_capacity(3000);
    /// assert_eq!((buf.len(), buf.capacity()), (0, 4096));
    /// write!(buf, "HTTP/1.1 200 OK\r\n")?;
    /// buf.extend_from_slice(&[b'x'; 4000]);
    /// assert_eq!(buf.capacity(), 4096, "filled within its capacity: still its bucket");
    /// pool.return_(buf);
    /// assert_eq!(pool.stats().returned, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "a rented buffer should be used and then given back with `return_`"]
    pub fn rent_with_capacity(&self, n: usize) -> Vec<u8> {
        let Some(bucket) = pooled_bucket(n, self.max_len) else {
            return self.rent_unpooled_empty(n);
        };
        match self.take_held(bucket) {
            Some(mut buffer) => {
                buffer.clear();
                buffer
            }
            None => self.state.allocate_empty(bucket, n),
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
        let Some(bucket) = pooled_bucket(n, self.max_len) else {
            return self.rent_unpooled(n); // zeroed by the allocator
        };
        match self.take_held(bucket) {
            Some(buffer) => fill::zeroed(buffer, n),
            None => self.state.allocate(bucket, n),
        }
    }

    /// Rents a buffer of length `n`, returning an error instead of panicking or aborting when
    /// the memory cannot be had.
    ///
    /// Above the maximum length this writes the `n` zeros itself (`std` has no fallible zeroed
    /// allocation), where [`rent`](Self::rent) gets fresh zeroed pages from the allocator.
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
        match pooled_bucket(n, self.max_len) {
            Some(bucket) => {
                if let Some(buffer) = self.take_held(bucket) {
                    return Ok(fill::fit_len(buffer, n));
                }
                let buffer = fill::try_fresh(bucket_len(bucket), n)?;
                self.state.note_allocated(bucket, n);
                Ok(buffer)
            }
            None if n == 0 => Ok(Vec::new()),
            None => {
                let buffer = fill::try_fresh(n, n)?;
                self.state.note_allocated_over_max(n);
                Ok(buffer)
            }
        }
    }

    /// Gives a buffer back to the pool. Never panics, except by a listener's panic (see
    /// [`add_listener`](Self::add_listener)).
    ///
    /// - Capacity 0: nothing happens.
    /// - Capacity exactly one of this pool's bucket sizes (16, 32, … `max_len()`): kept, in this
    ///   thread's magazine of that size first (for pools that have one; a full magazine moves
    ///   its oldest half down to the partitions), else the current CPU's partition, else the
    ///   others. A buffer that finds them all full is freed, counted in
    ///   [`dropped_full`](PoolStats::dropped_full) and reported as
    ///   [`DropReason::Full`](crate::DropReason::Full); one the byte budget refuses, as
    ///   [`DropReason::OverBudget`](crate::DropReason::OverBudget).
    /// - Any other capacity (grown past its bucket, shrunk, over the maximum, never a bucket
    ///   size): freed, counted in [`dropped_foreign`](PoolStats::dropped_foreign) and reported as
    ///   [`DropReason::NotBucketSize`](crate::DropReason::NotBucketSize).
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
        // As in `rent`, only the thread-cache path is inlined; every other case takes the
        // buffer by value into a call, so that the inlined path keeps it in registers.
        if let Some(bucket) = bucket_of_capacity(buffer.capacity(), self.max_len) {
            match &self.tier {
                ThreadTier::Shared(tier) => return tier.put(bucket, buffer),
                ThreadTier::PerPool(tier) => return tier.put(bucket, buffer),
                ThreadTier::Off => {}
            }
        }
        self.return_elsewhere(buffer);
    }

    /// A snapshot of this pool's counters and gauges; see [`PoolStats`]. It briefly locks the
    /// registry of per-thread ledgers (never touched by the rent/return fast path) and, one at
    /// a time, each partition, whose counts live under its lock.
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
        self.state.totals().stats()
    }

    /// Per bucket, from 16 bytes up to [`max_len`](Self::max_len): the buffers and bytes the
    /// pool holds, its rents, allocations, drops and trims. What a user needs to size
    /// `per_bucket`, `thread_cache_bytes` and `max_retained_bytes`; it reads the same counts as
    /// [`stats`](Self::stats).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(1 << 16, 8);
    /// pool.return_(pool.rent(60_000));
    /// for bucket in pool.bucket_stats().iter().filter(|b| b.held_buffers > 0) {
    ///     println!("{:>8} B: {} held, {} rented", bucket.len, bucket.held_buffers, bucket.rented);
    /// }
    /// assert_eq!(pool.bucket_stats().len(), 13, "16 B to 64 KiB");
    /// ```
    #[must_use]
    pub fn bucket_stats(&self) -> Vec<BucketStats> {
        self.state
            .totals()
            .bucket_stats(self.state.partitions.buckets())
    }

    /// Gives memory back: releases every buffer in the partitions and every buffer in this
    /// thread's cache, then asks the allocator to return freed memory to the system (glibc's
    /// `malloc_trim`, so that the resident set really falls).
    ///
    /// Each released buffer is counted in [`PoolStats::trimmed`] and reported as
    /// [`PoolEvent::Trimmed`] with [`TrimReason::Explicit`](crate::TrimReason::Explicit).
    /// Other threads' caches hold at most `thread_cache_bytes` each and are not reachable
    /// from here (they take no lock): each releases what it holds the next time its thread
    /// reaches a slow path of this pool (a magazine that runs dry or fills up), or when the
    /// thread exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(1 << 16, 64);
    /// let burst: Vec<_> = (0..32).map(|_| pool.rent(60_000)).collect();
    /// for buffer in burst {
    ///     pool.return_(buffer);
    /// }
    /// assert_eq!(pool.stats().held_bytes, 32 << 16);
    /// pool.trim();
    /// let stats = pool.stats();
    /// assert_eq!((stats.held_bytes, stats.trimmed), (0, 32));
    /// ```
    pub fn trim(&self) {
        match &self.tier {
            ThreadTier::Shared(tier) => tier.trim_own(),
            ThreadTier::PerPool(tier) => tier.trim_own(),
            ThreadTier::Off => {}
        }
        self.state.trim();
    }

    /// Adds `listener` for this pool's [`PoolEvent`]s, beside any others, and returns its id
    /// for [`remove_listener`](Self::remove_listener).
    ///
    /// A pool keeps any number of listeners, so that two libraries sharing the process-wide
    /// pool never replace each other's. With none, each slow-path event costs one relaxed load.
    /// Listeners run on the thread that caused the event, one after another, with no pool lock
    /// held, so a listener may use the pool and add or remove listeners.
    ///
    /// **A listener should not panic.** A panic propagates out of the `rent` or `return_` that
    /// raised the event (the pool's state is already consistent by then) and the listeners
    /// after it miss that event. During a thread's exit flush, where a panic would abort the
    /// process, it is caught instead; the panic hook still reports it.
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
    /// let id = pool.add_listener(move |_: &PoolEvent| {
    ///     count.fetch_add(1, Ordering::Relaxed);
    /// });
    /// drop(pool.rent(4096)); // over the maximum: one event
    /// pool.remove_listener(id);
    /// drop(pool.rent(4096));
    /// assert_eq!(events.load(Ordering::Relaxed), 1);
    /// ```
    pub fn add_listener(
        &self,
        listener: impl Fn(&PoolEvent) + Send + Sync + 'static,
    ) -> ListenerId {
        self.state.listeners.add(Arc::new(listener))
    }

    /// Removes the listener `id` names; `false` if this pool has no such listener (already
    /// removed, or added to another pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::create(64, 1);
    /// let id = pool.add_listener(|_| {});
    /// assert!(pool.remove_listener(id));
    /// assert!(!pool.remove_listener(id));
    /// ```
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.state.listeners.remove(id)
    }

    // ----- the slow paths -------------------------------------------------------------------

    /// Everything but the shared pool's cache hit: a custom pool's thread cache, then the
    /// partitions, then the allocator.
    #[inline(never)]
    fn rent_pooled(&self, n: usize, bucket: usize) -> Vec<u8> {
        match self.take_held(bucket) {
            Some(buffer) => fill::fit_len(buffer, n),
            None => self.state.allocate(bucket, n),
        }
    }

    /// A buffer of `bucket` the pool holds, from this thread's magazine (refilled from the
    /// partitions when empty) or the partitions, counting the rent. (After `rent`'s inline miss
    /// on the shared cache this looks at the same empty magazine once more: one thread-local
    /// read on a path that then takes a lock.)
    fn take_held(&self, bucket: usize) -> Option<Vec<u8>> {
        match &self.tier {
            ThreadTier::Shared(tier) => tier.take(bucket).or_else(|| tier.refill(bucket)),
            ThreadTier::PerPool(tier) => tier.take(bucket).or_else(|| tier.refill(bucket)),
            ThreadTier::Off => self.state.take(bucket),
        }
    }

    /// Every return but a shared pool's kept one: a custom pool's, a size no bucket keeps, or
    /// capacity 0.
    #[inline(never)]
    fn return_elsewhere(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        match bucket_of_capacity(capacity, self.max_len) {
            Some(bucket) => match &self.tier {
                ThreadTier::Shared(tier) => tier.put(bucket, buffer),
                ThreadTier::PerPool(tier) => tier.put(bucket, buffer),
                ThreadTier::Off => self.state.keep(bucket, buffer),
            },
            None if capacity == 0 => {}
            None => self.state.drop_foreign(buffer),
        }
    }

    /// A `rent_with_capacity` of 0 bytes or above the maximum.
    #[inline(never)]
    fn rent_unpooled_empty(&self, n: usize) -> Vec<u8> {
        if n == 0 {
            return Vec::new();
        }
        self.allocate_over_max("rent_with_capacity", n, 0)
    }

    /// For `rent_bytes_mut(n)`, `1 <= n`: a buffer of the capacity `rent(n)` would have, with
    /// as many bytes initialized as the pool knows of. A held buffer keeps the length it was
    /// returned with; a fresh one is zeroed to its whole capacity, which `vec![0; len]` gets
    /// from the allocator's zeroed memory (for large sizes, pages the kernel zeroed). A buffer
    /// initialized to its capacity converts to a `BytesMut` with no allocation.
    #[cfg(feature = "bytes")]
    pub(crate) fn rent_initialized(&self, n: usize) -> Vec<u8> {
        let Some(bucket) = pooled_bucket(n, self.max_len) else {
            return self.allocate_over_max("rent_bytes_mut", n, n);
        };
        match self.take_held(bucket) {
            Some(buffer) => buffer,
            None => {
                let buffer = fill::fresh(bucket_len(bucket), bucket_len(bucket));
                self.state.note_allocated(bucket, n);
                buffer
            }
        }
    }

    /// Counts and reports a `BytesMut` returned while other handles still shared its buffer.
    #[cfg(feature = "bytes")]
    pub(crate) fn note_still_shared(&self, capacity: usize) {
        self.state.note_still_shared(capacity);
    }

    /// A rent of 0 bytes or above the maximum.
    #[inline(never)]
    fn rent_unpooled(&self, n: usize) -> Vec<u8> {
        if n == 0 {
            return Vec::new();
        }
        self.allocate_over_max("rent", n, n)
    }

    /// A fresh buffer of capacity exactly `n`, above the maximum, with its first `len` bytes
    /// zeroed, counted and reported as an allocation over the maximum. Panics naming `method`
    /// (and `n`) if `n` is above `isize::MAX`, as `Vec` would ("capacity overflow").
    fn allocate_over_max(&self, method: &str, n: usize, len: usize) -> Vec<u8> {
        assert!(
            n <= isize::MAX as usize,
            "ArrayPool::{method}: capacity overflow: `n` = {n} is above isize::MAX"
        );
        self.state.note_allocated_over_max(n);
        fill::fresh(n, len)
    }
}

impl Drop for ArrayPool {
    fn drop(&mut self) {
        if let ThreadTier::PerPool(tier) = &self.tier {
            tier.retire(); // exiting threads stop looking for it; its caches go with it
        }
    }
}

impl fmt::Debug for ArrayPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let partitions = &self.state.partitions;
        f.debug_struct("ArrayPool")
            .field("name", &self.state.name)
            .field("max_len", &self.max_len)
            .field("buckets", &(bucket_index(self.max_len) + 1))
            .field("partitions", &partitions.count())
            .field("per_bucket", &partitions.per_bucket())
            .field("thread_cache", &self.tier.describe())
            .field("thread_cache_bytes", &self.state.thread_cache_bytes)
            .field(
                "idle_timeout",
                &self.state.idle.as_ref().map(|idle| idle.timeout),
            )
            .field(
                "max_retained_bytes",
                &self.state.partitions.max_retained_bytes(),
            )
            .field("listeners", &self.state.listeners.any())
            .finish_non_exhaustive()
    }
}
