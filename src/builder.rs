//! [`ArrayPoolBuilder`]: every option of a custom pool, checked by [`ArrayPoolBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::bucket::MAX_POOLED_LEN;
use crate::event::{ListenerFn, PoolEvent};
use crate::pool::ArrayPool;
use crate::pool_state::{Idle, PressureFn, DEFAULT_NAME};
use crate::pressure::MemoryPressure;
use crate::sys::available_cpus;

/// The most buffers a pool keeps per bucket: 2^20.
///
/// The cap keeps a typo from configuring a pool whose bookkeeping alone could not fit in
/// memory; no real pool comes near it (a million 16-byte buffers is 16 MiB of buffers, a
/// million 4 KiB ones 4 GiB). A partition's slot vector grows only as buffers arrive, so the
/// cap costs nothing.
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, BuildError, MAX_PER_BUCKET};
///
/// let err = ArrayPool::builder().per_bucket(MAX_PER_BUCKET + 1).build().unwrap_err();
/// assert_eq!(err, BuildError::PerBucketTooLarge { per_bucket: MAX_PER_BUCKET + 1 });
/// ```
pub const MAX_PER_BUCKET: usize = 1 << 20;

/// The most partitions a bucket is split into: 1024, beyond any machine's CPU count that
/// would still profit from one lock each (each partition costs a cache-padded lock per
/// bucket).
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, BuildError, MAX_PARTITIONS};
///
/// let err = ArrayPool::builder().partitions(MAX_PARTITIONS + 1).build().unwrap_err();
/// assert_eq!(err, BuildError::TooManyPartitions { partitions: MAX_PARTITIONS + 1 });
/// ```
pub const MAX_PARTITIONS: usize = 1024;

/// Everything a pool is built from, already checked (by [`ArrayPoolBuilder::build`] or the
/// shared pool's environment parser).
pub(crate) struct Layout {
    /// The pool's name, for tracing, metrics and `Debug`.
    pub(crate) name: &'static str,
    pub(crate) max_len: usize,
    /// How many buffers each partition of a bucket keeps; one entry per partition.
    pub(crate) partition_bounds: Box<[usize]>,
    pub(crate) tier: TierChoice,
    /// Each thread's budget in the thread tier (ignored with `TierChoice::Off`).
    pub(crate) thread_cache_bytes: usize,
    pub(crate) listeners: Vec<ListenerFn>,
    /// Idle trimming, if any.
    pub(crate) idle: Option<Idle>,
    /// The byte budget of the partitions, if any.
    pub(crate) max_retained_bytes: Option<u64>,
}

/// The default idle timeout of every pool: 60 s, .NET's partition threshold
/// (`SharedArrayPool`'s trim after 60 s without use).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default per-thread budget of a thread tier: 128 KiB (`docs/design.md` has the
/// measurements). It keeps a thread's magazines deep enough for nested rents and batched
/// hand-offs of buffers up to 4 KiB (16 each) and caches sizes up to 64 KiB, and keeps 512
/// threads under 64 MiB of thread-tier memory per pool.
pub const DEFAULT_THREAD_CACHE_BYTES: usize = 128 << 10;

/// Which thread tier the pool gets.
pub(crate) enum TierChoice {
    /// The shared pool's `thread_local!`; only `ArrayPool::shared` asks for it.
    Shared,
    /// A custom pool's own, with [`ArrayPoolBuilder::thread_cache`].
    PerPool,
    /// None: every rent and return goes to the partitions.
    Off,
}

/// Builds a custom [`ArrayPool`] with options beyond [`ArrayPool::create`].
///
/// Defaults: `max_len` 2^20 bytes, `per_bucket` 50 (the defaults of .NET's
/// `ArrayPool<T>.Create()`), one partition per CPU, no thread cache, no listener.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// let pool = ArrayPool::builder()
///     .max_len(8 << 20)
///     .per_bucket(4)
///     .partitions(2)
///     .build()?;
/// assert_eq!(pool.max_len(), 8 << 20);
/// # Ok::<(), arraypool::BuildError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ArrayPoolBuilder {
    name: &'static str,
    max_len: usize,
    per_bucket: usize,
    partitions: Option<usize>,
    /// The thread tier's per-thread budget; `None` for no thread tier.
    thread_cache_bytes: Option<usize>,
    listeners: Vec<ListenerFn>,
    idle_timeout: Option<Duration>,
    pressure: Option<Arc<dyn Fn() -> MemoryPressure + Send + Sync>>,
    max_retained_bytes: Option<u64>,
}

impl Default for ArrayPoolBuilder {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME,
            max_len: 1 << 20,
            per_bucket: 50,
            partitions: None,
            thread_cache_bytes: None,
            listeners: Vec::new(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            pressure: None,
            max_retained_bytes: None,
        }
    }
}

impl ArrayPoolBuilder {
    /// Names the pool: the `pool` label of its metrics (feature `metrics`), the `pool` field
    /// of its `tracing` events (feature `tracing`), and its `Debug` output. Default `"custom"`;
    /// the shared pool is `"shared"`.
    ///
    /// Give every pool whose metrics you publish a name of its own: two pools of one name
    /// publish to the same series, each overwriting the other's values.
    ///
    /// # Examples
    ///
    /// ```
    /// let frames = arraypool::ArrayPool::builder().name("frames").build()?;
    /// assert_eq!(frames.name(), "frames");
    /// assert!(format!("{frames:?}").contains(r#"name: "frames""#));
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The largest length the pool keeps, rounded up to a power of two, at least 16 and at most
    /// [`MAX_POOLED_LEN`](crate::MAX_POOLED_LEN). Longer rents are allocated exactly and dropped
    /// when returned.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder().max_len(3000).build().unwrap();
    /// assert_eq!(pool.max_len(), 4096);
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The most buffers the pool keeps per bucket, across all partitions (plus, with a
    /// [`thread_cache`](Self::thread_cache), what live threads cache within their budget). At
    /// most [`MAX_PER_BUCKET`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder().max_len(64).per_bucket(2).build().unwrap();
    /// for _ in 0..3 {
    ///     pool.return_(vec![0; 64]);
    /// }
    /// assert_eq!(pool.stats().held_buffers, 2);
    /// assert_eq!(pool.stats().dropped_full, 1);
    /// ```
    pub fn per_bucket(mut self, per_bucket: usize) -> Self {
        self.per_bucket = per_bucket;
        self
    }

    /// How many partitions (locked stacks) each bucket is split into, at most
    /// [`MAX_PARTITIONS`]. Default: the number of CPUs the process may use. Never more than
    /// `per_bucket`, so that each holds at least one.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder().partitions(4).per_bucket(2).build().unwrap();
    /// assert!(format!("{pool:?}").contains("partitions: 2"));
    /// ```
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Puts a thread tier in front of the partitions, as the shared pool has: per thread, a
    /// magazine of buffers per bucket, within a budget of [`DEFAULT_THREAD_CACHE_BYTES`] per
    /// thread ([`thread_cache_bytes`](Self::thread_cache_bytes) sets another). Rents and returns
    /// on one thread then take no lock, and buffers move to and from the partitions in batches.
    ///
    /// The pool may then hold, beyond `per_bucket` per bucket, up to the budget per live
    /// thread that has used it. When a thread exits, its cached buffers move to the partitions
    /// (or are freed if those are full); dropping the pool frees every thread's cache.
    /// `thread_cache(false)` (the default) removes the tier; `thread_cache(true)` keeps a budget
    /// set earlier with [`thread_cache_bytes`](Self::thread_cache_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder().thread_cache(true).build().unwrap();
    /// let buf = pool.rent(100);
    /// let addr = buf.as_ptr();
    /// pool.return_(buf);
    /// let again = pool.rent(100);
    /// assert_eq!(again.as_ptr(), addr, "served from this thread's magazine");
    /// ```
    pub fn thread_cache(mut self, enabled: bool) -> Self {
        self.thread_cache_bytes = if enabled {
            Some(
                self.thread_cache_bytes
                    .unwrap_or(DEFAULT_THREAD_CACHE_BYTES),
            )
        } else {
            None
        };
        self
    }

    /// Puts a thread tier in front of the partitions (as [`thread_cache`](Self::thread_cache)
    /// does) whose caches hold at most `bytes` per thread, counted by buffer capacity; 0 removes
    /// the tier.
    ///
    /// A bucket's magazine holds at most half the budget's worth of buffers (and at most 32);
    /// sizes of which not even one fits in half the budget skip the thread tier and go to the
    /// partitions. A larger budget caches larger sizes and deeper batches; the pool's bound
    /// grows by the budget for each live thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// // Each thread caches up to 1 MiB: sizes up to 512 KiB get a magazine.
    /// let pool = ArrayPool::builder().max_len(4 << 20).thread_cache_bytes(1 << 20).build()?;
    /// let (a, b) = (pool.rent(300_000), pool.rent(300_000)); // two 512 KiB buffers
    /// pool.return_(a); // this thread's magazine holds it: half the budget
    /// pool.return_(b); // the magazine is full: the older one moves to the partitions
    /// assert_eq!(pool.stats().held_buffers, 2);
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn thread_cache_bytes(mut self, bytes: usize) -> Self {
        self.thread_cache_bytes = (bytes > 0).then_some(bytes);
        self
    }

    /// Releases buffers that have sat in the partitions longer than `timeout`, oldest first,
    /// with no call from the user; `None` turns idle release (and pressure trimming) off.
    /// Default [`DEFAULT_IDLE_TIMEOUT`] (60 s), for every pool.
    ///
    /// One process-wide thread, `arraypool-trim`, does it: it starts the first time such a
    /// pool holds a buffer, wakes about every `timeout / 4` (and at least every 5 s while a pool
    /// holds buffers), and sleeps while none does. A buffer is released between `timeout` and
    /// `timeout` plus two such wake-ups after it arrived. Each released buffer is counted in
    /// [`PoolStats::trimmed`](crate::PoolStats::trimmed) and reported as
    /// [`PoolEvent::Trimmed`] with [`TrimReason::Idle`](crate::TrimReason::Idle); events raised
    /// by the trimmer run the listeners on its thread, where a listener's panic is caught.
    /// Threads' caches are not touched: each holds at most
    /// [`thread_cache_bytes`](Self::thread_cache_bytes) and empties when its thread exits.
    ///
    /// The convention of reqwest's `pool_idle_timeout`: a `Duration`, or `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let eager = arraypool::ArrayPool::builder().idle_timeout(Duration::from_secs(5)).build()?;
    /// let never = arraypool::ArrayPool::builder().idle_timeout(None).build()?;
    /// # drop((eager, never));
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Replaces the process's memory pressure, for this pool, with what `source` says. The
    /// trimmer calls it on each wake-up (on its own thread; a panic counts as
    /// [`MemoryPressure::Low`]): at [`High`](MemoryPressure::High) it releases every buffer in
    /// the partitions at once, at [`Medium`](MemoryPressure::Medium) it quarters the idle
    /// timeout. Without it, the pressure is the process's cgroup (v2, else v1) `memory.current`
    /// against `memory.max`, else the machine's `MemAvailable` against `MemTotal`. It has no
    /// effect with `idle_timeout(None)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::{ArrayPool, MemoryPressure};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let squeezed = Arc::new(AtomicBool::new(false));
    /// let signal = Arc::clone(&squeezed);
    /// let pool = ArrayPool::builder()
    ///     .pressure(move || {
    ///         if signal.load(Ordering::Relaxed) { MemoryPressure::High } else { MemoryPressure::Low }
    ///     })
    ///     .build()?;
    /// squeezed.store(true, Ordering::Relaxed); // the trimmer empties the partitions within 5 s
    /// # drop(pool);
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn pressure(mut self, source: impl Fn() -> MemoryPressure + Send + Sync + 'static) -> Self {
        self.pressure = Some(Arc::new(source));
        self
    }

    /// The most bytes the partitions hold together (by buffer capacity): a return that would
    /// take them above it is freed, counted in
    /// [`dropped_full`](crate::PoolStats::dropped_full) and reported as
    /// [`DropReason::OverBudget`](crate::DropReason::OverBudget). With it, the pool holds at
    /// most `max_retained_bytes` plus `thread_cache_bytes` per live thread; exactly
    /// `max_retained_bytes` without a thread cache.
    ///
    /// The partitions share one byte counter, changed once per push, pop or batch: a shared
    /// cache line on paths that take a partition lock anyway, never on the thread tier's.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder()
    ///     .max_len(1 << 20)
    ///     .max_retained_bytes(2 << 20)
    ///     .build()?;
    /// for _ in 0..3 {
    ///     pool.return_(vec![0; 1 << 20]);
    /// }
    /// assert_eq!(pool.stats().held_bytes, 2 << 20);
    /// assert_eq!(pool.stats().dropped_full, 1);
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn max_retained_bytes(mut self, bytes: u64) -> Self {
        self.max_retained_bytes = Some(bytes);
        self
    }

    /// Calls `listener` for every [`PoolEvent`]: allocations because the pool was exhausted or
    /// the length was over the maximum, and buffers dropped because the pool was full or the
    /// capacity was not a bucket size. The listener runs on the thread that caused the event,
    /// with no pool lock held, and should not panic (see
    /// [`ArrayPool::add_listener`](crate::ArrayPool::add_listener), which adds one later).
    /// Called more than once, it adds each listener.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::{ArrayPool, DropReason, PoolEvent};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let pool = ArrayPool::builder()
    ///     .listener(move |e: &PoolEvent| tx.lock().unwrap().send(*e).unwrap())
    ///     .build()
    ///     .unwrap();
    /// pool.return_(Vec::with_capacity(1000));
    /// assert!(matches!(
    ///     rx.try_recv().unwrap(),
    ///     PoolEvent::Dropped { capacity: 1000, reason: DropReason::NotBucketSize, .. },
    /// ));
    /// ```
    pub fn listener(mut self, listener: impl Fn(&PoolEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Builds the pool.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the option when `max_len`, `per_bucket` or `partitions` is zero,
    /// or above its cap: [`MAX_POOLED_LEN`](crate::MAX_POOLED_LEN), [`MAX_PER_BUCKET`],
    /// [`MAX_PARTITIONS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::{ArrayPool, BuildError};
    ///
    /// let err = ArrayPool::builder().per_bucket(0).build().unwrap_err();
    /// assert_eq!(err, BuildError::ZeroPerBucket);
    /// ```
    pub fn build(self) -> Result<ArrayPool, BuildError> {
        if self.max_len == 0 {
            return Err(BuildError::ZeroMaxLen);
        }
        if self.max_len > MAX_POOLED_LEN {
            return Err(BuildError::MaxLenTooLarge {
                max_len: self.max_len,
            });
        }
        if self.per_bucket == 0 {
            return Err(BuildError::ZeroPerBucket);
        }
        if self.per_bucket > MAX_PER_BUCKET {
            return Err(BuildError::PerBucketTooLarge {
                per_bucket: self.per_bucket,
            });
        }
        let partitions = match self.partitions {
            Some(0) => return Err(BuildError::ZeroPartitions),
            Some(p) if p > MAX_PARTITIONS => {
                return Err(BuildError::TooManyPartitions { partitions: p })
            }
            Some(p) => p,
            None => available_cpus().min(MAX_PARTITIONS),
        }
        .min(self.per_bucket);
        // Split `per_bucket` as evenly as possible; the first `per_bucket % partitions`
        // partitions take one more, so the capacities add up to exactly `per_bucket`.
        let (each, extra) = (self.per_bucket / partitions, self.per_bucket % partitions);
        let partition_bounds = (0..partitions)
            .map(|i| each + usize::from(i < extra))
            .collect();
        let tier = match self.thread_cache_bytes {
            Some(_) => TierChoice::PerPool,
            None => TierChoice::Off,
        };
        Ok(ArrayPool::from_layout(Layout {
            name: self.name,
            max_len: self.max_len,
            partition_bounds,
            tier,
            thread_cache_bytes: self.thread_cache_bytes.unwrap_or(0),
            listeners: self.listeners,
            idle: self.idle_timeout.map(|timeout| Idle {
                timeout,
                pressure: self
                    .pressure
                    .map(|source| -> PressureFn { Box::new(move || source()) }),
            }),
            max_retained_bytes: self.max_retained_bytes,
        }))
    }
}

impl fmt::Debug for ArrayPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayPoolBuilder")
            .field("name", &self.name)
            .field("max_len", &self.max_len)
            .field("per_bucket", &self.per_bucket)
            .field("partitions", &self.partitions)
            .field("thread_cache_bytes", &self.thread_cache_bytes)
            .field("idle_timeout", &self.idle_timeout)
            .field("pressure", &self.pressure.is_some())
            .field("max_retained_bytes", &self.max_retained_bytes)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Why [`ArrayPoolBuilder::build`] refused its options.
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, BuildError};
///
/// let err = ArrayPool::builder().max_len(1 << 31).build().unwrap_err();
/// assert_eq!(err, BuildError::MaxLenTooLarge { max_len: 1 << 31 });
/// assert!(err.to_string().contains("max_len"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_len` was 0: a pool must keep at least one size.
    ZeroMaxLen,
    /// `max_len` was above [`MAX_POOLED_LEN`](crate::MAX_POOLED_LEN).
    MaxLenTooLarge {
        /// The length asked for.
        max_len: usize,
    },
    /// `per_bucket` was 0: a pool must keep at least one buffer per bucket.
    ZeroPerBucket,
    /// `per_bucket` was above [`MAX_PER_BUCKET`].
    PerBucketTooLarge {
        /// The bound asked for.
        per_bucket: usize,
    },
    /// `partitions` was 0.
    ZeroPartitions,
    /// `partitions` was above [`MAX_PARTITIONS`].
    TooManyPartitions {
        /// The count asked for.
        partitions: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroMaxLen => f.write_str("max_len must be at least 1"),
            Self::MaxLenTooLarge { max_len } => {
                write!(
                    f,
                    "max_len {max_len} is above the largest pooled length {MAX_POOLED_LEN}"
                )
            }
            Self::ZeroPerBucket => f.write_str("per_bucket must be at least 1"),
            Self::PerBucketTooLarge { per_bucket } => write!(
                f,
                "per_bucket {per_bucket} is above the largest bound {MAX_PER_BUCKET}"
            ),
            Self::ZeroPartitions => f.write_str("partitions must be at least 1"),
            Self::TooManyPartitions { partitions } => write!(
                f,
                "partitions {partitions} is above the largest count {MAX_PARTITIONS}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
