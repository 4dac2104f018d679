//! [`PoolEvent`] and its reasons, and the listener hook that receives them.
//!
//! Events mirror the slow-path events of .NET's `ArrayPoolEventSource`
//! (`BufferAllocated` with `OverMaximumSize` / `PoolExhausted`, `BufferDropped` with `Full` /
//! `OverMaximumSize`). Rents and returns that hit the pool raise no event: they are counted in
//! [`PoolStats`](crate::PoolStats) instead, which costs far less than a callback per call.

use std::fmt;
use std::sync::Arc;

use crate::sync::{AtomicBool, Ordering, RwLock};

/// Something worth knowing happened on a pool's slow path.
///
/// Delivered to the listener set with
/// [`ArrayPoolBuilder::listener`](crate::ArrayPoolBuilder::listener) or
/// [`ArrayPool::set_listener`](crate::ArrayPool::set_listener).
///
/// # Examples
///
/// ```
/// use arraypool::{AllocReason, ArrayPool, PoolEvent};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let pool = ArrayPool::builder()
///     .max_len(1024)
///     .listener(move |event: &PoolEvent| sink.lock().unwrap().push(*event))
///     .build()
///     .unwrap();
///
/// let big = pool.rent(5000);
/// assert_eq!(
///     seen.lock().unwrap()[0],
///     PoolEvent::Allocated { len: 5000, capacity: 5000, reason: AllocReason::OverMaxLength },
/// );
/// # drop(big);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolEvent {
    /// The pool allocated a fresh buffer.
    Allocated {
        /// The length the caller asked for.
        len: usize,
        /// The capacity allocated: the bucket size, or `len` above the maximum length.
        capacity: usize,
        /// Why the pool could not serve it from what it holds.
        reason: AllocReason,
    },
    /// The pool freed a buffer instead of keeping it.
    Dropped {
        /// The capacity of the buffer that was freed.
        capacity: usize,
        /// Why it was not kept.
        reason: DropReason,
    },
}

/// Why a pool allocated ([`PoolEvent::Allocated`]).
///
/// # Examples
///
/// ```
/// use arraypool::{AllocReason, ArrayPool, PoolEvent};
/// use std::sync::{Arc, Mutex};
///
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&reasons);
/// let pool = ArrayPool::create(1024, 1);
/// pool.set_listener(move |e: &PoolEvent| {
///     if let PoolEvent::Allocated { reason, .. } = e {
///         sink.lock().unwrap().push(*reason);
///     }
/// });
/// let (small, big) = (pool.rent(10), pool.rent(10_000));
/// assert_eq!(*reasons.lock().unwrap(), [AllocReason::PoolExhausted, AllocReason::OverMaxLength]);
/// # drop((small, big));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocReason {
    /// The length is within the pool's range, but the bucket had no buffer to give (every
    /// buffer of that size is rented out, or none was ever returned). Normal while a pool warms
    /// up; a steady stream means more buffers are in flight than the pool keeps.
    PoolExhausted,
    /// The length is above the pool's maximum length; the buffer has exactly that capacity and
    /// will be dropped when returned. A steady stream means this size wants a custom pool.
    OverMaxLength,
}

/// Why a pool dropped a buffer ([`PoolEvent::Dropped`]).
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, DropReason, PoolEvent};
/// use std::sync::{Arc, Mutex};
///
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&reasons);
/// let pool = ArrayPool::builder().max_len(64).per_bucket(1).partitions(1).build().unwrap();
/// pool.set_listener(move |e: &PoolEvent| {
///     if let PoolEvent::Dropped { reason, .. } = e {
///         sink.lock().unwrap().push(*reason);
///     }
/// });
/// pool.return_(vec![0; 64]); // kept
/// pool.return_(vec![0; 64]); // no room left
/// pool.return_(vec![0; 65]); // not a bucket size
/// assert_eq!(*reasons.lock().unwrap(), [DropReason::Full, DropReason::NotBucketSize]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Every place that could hold a buffer of this size was full.
    Full,
    /// The returned buffer's capacity is not one of this pool's bucket sizes: it grew past its
    /// bucket, was shrunk, is above the maximum length, or was never a pool buffer.
    NotBucketSize,
}

impl fmt::Display for PoolEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allocated {
                len,
                capacity,
                reason,
            } => {
                write!(
                    f,
                    "allocated {capacity} bytes for a rent of {len}: {reason:?}"
                )
            }
            Self::Dropped { capacity, reason } => {
                write!(f, "dropped a buffer of {capacity} bytes: {reason:?}")
            }
        }
    }
}

/// The type listeners are stored as.
pub(crate) type ListenerFn = Arc<dyn Fn(&PoolEvent) + Send + Sync>;

/// A pool's listener slot. With no listener, raising an event costs one relaxed load.
#[derive(Default)]
pub(crate) struct Listener {
    installed: AtomicBool,
    listener: RwLock<Option<ListenerFn>>,
}

impl Listener {
    pub(crate) fn new(listener: Option<ListenerFn>) -> Self {
        Self {
            installed: AtomicBool::new(listener.is_some()),
            listener: RwLock::new(listener),
        }
    }

    pub(crate) fn set(&self, listener: Option<ListenerFn>) {
        let installed = listener.is_some();
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = listener;
        self.installed.store(installed, Ordering::Release);
    }

    pub(crate) fn is_installed(&self) -> bool {
        self.installed.load(Ordering::Relaxed)
    }

    /// Delivers `event` to the listener, if one is installed. The listener runs with no pool
    /// lock held, so it may itself use the pool or replace the listener.
    #[inline]
    pub(crate) fn raise(&self, event: impl FnOnce() -> PoolEvent) {
        if self.installed.load(Ordering::Relaxed) {
            self.raise_slow(event());
        }
    }

    #[cold]
    fn raise_slow(&self, event: PoolEvent) {
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(listener) = listener {
            listener(&event);
        }
    }
}
