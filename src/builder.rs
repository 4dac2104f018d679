//! [`ArrayPoolBuilder`]: every option of a custom pool, checked by [`ArrayPoolBuilder::build`].

use std::fmt;
use std::sync::Arc;

use crate::bucket::MAX_POOLED_LEN;
use crate::env::available_cpus;
use crate::event::{ListenerFn, PoolEvent};
use crate::pool::{ArrayPool, Layout, ThreadTierKind};

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
    max_len: usize,
    per_bucket: usize,
    partitions: Option<usize>,
    thread_cache: bool,
    listener: Option<ListenerFn>,
}

impl Default for ArrayPoolBuilder {
    fn default() -> Self {
        Self {
            max_len: 1 << 20,
            per_bucket: 50,
            partitions: None,
            thread_cache: false,
            listener: None,
        }
    }
}

impl ArrayPoolBuilder {
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

    /// The most buffers the pool keeps per bucket, across all partitions (plus one per thread
    /// per bucket when [`thread_cache`](Self::thread_cache) is on).
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

    /// How many partitions (locked stacks) each bucket is split into. Default: the number of
    /// CPUs the process may use. Never more than `per_bucket`, so that each holds at least one.
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

    /// Puts a per-thread cache of one buffer per bucket in front of the partitions, as the
    /// shared pool has. Faster for same-thread rent/return pairs; the pool may then keep up to
    /// one more buffer per bucket per thread that has used it, beyond `per_bucket`. A thread's
    /// slots outlive the thread: the next thread to start reuses them, and dropping the pool
    /// frees them.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::builder().thread_cache(true).build().unwrap();
    /// let buf = pool.rent(100);
    /// let addr = buf.as_ptr();
    /// pool.return_(buf);
    /// assert_eq!(pool.rent(100).as_ptr(), addr, "served from this thread's slot");
    /// ```
    pub fn thread_cache(mut self, enabled: bool) -> Self {
        self.thread_cache = enabled;
        self
    }

    /// Calls `listener` for every [`PoolEvent`]: allocations because the pool was exhausted or
    /// the length was over the maximum, and buffers dropped because the pool was full or the
    /// capacity was not a bucket size. The listener runs on the thread that caused the event,
    /// with no pool lock held.
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
    /// assert_eq!(
    ///     rx.try_recv().unwrap(),
    ///     PoolEvent::Dropped { capacity: 1000, reason: DropReason::NotBucketSize },
    /// );
    /// ```
    pub fn listener(mut self, listener: impl Fn(&PoolEvent) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Builds the pool.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the option when `max_len`, `per_bucket` or `partitions` is zero,
    /// or `max_len` is above [`MAX_POOLED_LEN`](crate::MAX_POOLED_LEN).
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
        let partitions = match self.partitions {
            Some(0) => return Err(BuildError::ZeroPartitions),
            Some(p) => p,
            None => available_cpus(),
        }
        .min(self.per_bucket);
        // Split `per_bucket` as evenly as possible; the first `per_bucket % partitions`
        // partitions take one more, so the capacities add up to exactly `per_bucket`.
        let (each, extra) = (self.per_bucket / partitions, self.per_bucket % partitions);
        let capacities = (0..partitions)
            .map(|i| each + usize::from(i < extra))
            .collect();
        let tier = if self.thread_cache {
            ThreadTierKind::PerPool
        } else {
            ThreadTierKind::Off
        };
        Ok(ArrayPool::from_layout(Layout {
            max_len: self.max_len,
            partition_capacities: capacities,
            tier,
            listener: self.listener,
        }))
    }
}

impl fmt::Debug for ArrayPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayPoolBuilder")
            .field("max_len", &self.max_len)
            .field("per_bucket", &self.per_bucket)
            .field("partitions", &self.partitions)
            .field("thread_cache", &self.thread_cache)
            .field("listener", &self.listener.is_some())
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
    /// `partitions` was 0.
    ZeroPartitions,
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
            Self::ZeroPartitions => f.write_str("partitions must be at least 1"),
        }
    }
}

impl std::error::Error for BuildError {}
