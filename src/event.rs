//! [`PoolEvent`] and its reasons, and the listener hook that receives them.
//!
//! Events mirror the slow-path events of .NET's `ArrayPoolEventSource`
//! (`BufferAllocated` with `OverMaximumSize` / `PoolExhausted`, `BufferDropped` with `Full` /
//! `OverMaximumSize`). Rents and returns that hit the pool raise no event: they are counted in
//! [`PoolStats`](crate::PoolStats) instead, which costs far less than a callback per call.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::sync::{AtomicBool, AtomicU64, Ordering, RwLock};

/// Something worth knowing happened on a pool's slow path.
///
/// Delivered to the listeners added with
/// [`ArrayPoolBuilder::listener`](crate::ArrayPoolBuilder::listener) or
/// [`ArrayPool::add_listener`](crate::ArrayPool::add_listener). Each variant is
/// `#[non_exhaustive]`, so that later versions can add fields: match with `..`.
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
/// assert!(matches!(
///     seen.lock().unwrap()[0],
///     PoolEvent::Allocated { len: 5000, capacity: 5000, reason: AllocReason::OverMaxLength, .. },
/// ));
/// # drop(big);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolEvent {
    /// The pool allocated a fresh buffer.
    #[non_exhaustive]
    Allocated {
        /// The length the caller asked for.
        len: usize,
        /// The capacity allocated: the bucket size, or `len` above the maximum length.
        capacity: usize,
        /// Why the pool could not serve it from what it holds.
        reason: AllocReason,
    },
    /// The pool freed a buffer instead of keeping it.
    #[non_exhaustive]
    Dropped {
        /// The capacity of the buffer that was freed.
        capacity: usize,
        /// Why it was not kept.
        reason: DropReason,
    },
    /// The pool released a buffer it held, to give memory back (.NET's `BufferTrimmed`).
    #[non_exhaustive]
    Trimmed {
        /// The capacity of the buffer that was released.
        capacity: usize,
        /// What asked for it.
        reason: TrimReason,
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
/// pool.add_listener(move |e: &PoolEvent| {
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
/// pool.add_listener(move |e: &PoolEvent| {
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
    /// Keeping it would have taken the partitions above the pool's
    /// [`max_retained_bytes`](crate::ArrayPoolBuilder::max_retained_bytes).
    OverBudget,
    /// A `BytesMut` given to `return_bytes_mut` (feature `bytes`) still shared its buffer with
    /// other `BytesMut` or `Bytes` handles, so the pool could not take it back; the event's
    /// `capacity` is that handle's. The buffer stays with the other handles and is freed by
    /// the last of them, not by the pool. Counted in
    /// [`PoolStats::dropped_shared`](crate::PoolStats::dropped_shared).
    StillShared,
}

/// Why a pool released buffers it held ([`PoolEvent::Trimmed`]).
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, PoolEvent, TrimReason};
/// use std::sync::{Arc, Mutex};
///
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&reasons);
/// let pool = ArrayPool::create(1024, 4);
/// pool.add_listener(move |e: &PoolEvent| {
///     if let PoolEvent::Trimmed { reason, .. } = e {
///         sink.lock().unwrap().push(*reason);
///     }
/// });
/// pool.return_(vec![0; 1024]);
/// pool.trim();
/// assert_eq!(*reasons.lock().unwrap(), [TrimReason::Explicit]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrimReason {
    /// [`ArrayPool::trim`](crate::ArrayPool::trim) was called (on this thread, or on another
    /// thread and this thread's cache noticed).
    Explicit,
    /// The buffer sat in the partitions longer than the pool's
    /// [`idle_timeout`](crate::ArrayPoolBuilder::idle_timeout).
    Idle,
    /// The memory-pressure source reported [`High`](crate::MemoryPressure::High).
    Pressure,
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
            Self::Trimmed { capacity, reason } => {
                write!(f, "trimmed a buffer of {capacity} bytes: {reason:?}")
            }
        }
    }
}

impl PoolEvent {
    pub(crate) fn allocated(len: usize, capacity: usize, reason: AllocReason) -> Self {
        Self::Allocated {
            len,
            capacity,
            reason,
        }
    }

    pub(crate) fn dropped(capacity: usize, reason: DropReason) -> Self {
        Self::Dropped { capacity, reason }
    }

    pub(crate) fn trimmed(capacity: usize, reason: TrimReason) -> Self {
        Self::Trimmed { capacity, reason }
    }
}

/// The reasons in snake case, as the `tracing` events' `reason` field spells them.
#[cfg(feature = "tracing")]
impl AllocReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::PoolExhausted => "pool_exhausted",
            Self::OverMaxLength => "over_max_length",
        }
    }
}

#[cfg(feature = "tracing")]
impl DropReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::NotBucketSize => "not_bucket_size",
            Self::OverBudget => "over_budget",
            Self::StillShared => "still_shared",
        }
    }
}

#[cfg(feature = "tracing")]
impl TrimReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::Idle => "idle",
            Self::Pressure => "pressure",
        }
    }
}

/// Names a listener added with [`ArrayPool::add_listener`](crate::ArrayPool::add_listener), so
/// that [`ArrayPool::remove_listener`](crate::ArrayPool::remove_listener) can take away that
/// one and no other.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// let pool = ArrayPool::create(64, 1);
/// let id = pool.add_listener(|_| {});
/// assert!(pool.remove_listener(id));
/// assert!(!pool.remove_listener(id), "already removed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// The type listeners are stored as.
pub(crate) type ListenerFn = Arc<dyn Fn(&PoolEvent) + Send + Sync>;

/// The listeners of one pool, as an immutable list replaced whole on every change: raising an
/// event clones the list's `Arc` under the read lock and calls the listeners after releasing
/// it, so a listener may use its pool, add or remove listeners, and never runs under a lock.
pub(crate) struct Listeners {
    /// Whether the list is non-empty: one relaxed load, so that raising an event with no
    /// listener costs nothing more. Written only under the write lock, so that it always
    /// matches the list the last writer left.
    installed: AtomicBool,
    list: RwLock<Arc<[(ListenerId, ListenerFn)]>>,
    next_id: AtomicU64,
}

impl Listeners {
    pub(crate) fn new(initial: Vec<ListenerFn>) -> Self {
        let empty: Arc<[(ListenerId, ListenerFn)]> = Arc::new([]);
        let listeners = Self {
            installed: AtomicBool::new(false),
            list: RwLock::new(empty),
            next_id: AtomicU64::new(0),
        };
        for listener in initial {
            listeners.add(listener);
        }
        listeners
    }

    pub(crate) fn add(&self, listener: ListenerFn) -> ListenerId {
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.replace(|list| list.iter().cloned().chain([(id, listener)]).collect());
        id
    }

    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut found = false;
        self.replace(|list| {
            found = list.iter().any(|(other, _)| *other == id);
            list.iter()
                .filter(|(other, _)| *other != id)
                .cloned()
                .collect()
        });
        found
    }

    /// Swaps in the list `change` builds from the current one. The old list is dropped after
    /// the write lock is released: a listener's captured state may run arbitrary code in its
    /// `Drop`, even `add_listener` on this pool.
    fn replace(
        &self,
        change: impl FnOnce(&[(ListenerId, ListenerFn)]) -> Arc<[(ListenerId, ListenerFn)]>,
    ) {
        let old = {
            let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
            let new = change(&list);
            self.installed.store(!new.is_empty(), Ordering::Relaxed);
            std::mem::replace(&mut *list, new)
        };
        drop(old);
    }

    /// Whether any listener is installed, read without a lock.
    pub(crate) fn any(&self) -> bool {
        self.installed.load(Ordering::Relaxed)
    }

    /// Delivers `event` to every listener, if any is installed. A listener's panic propagates
    /// to the caller (the pool's state is already consistent when events are raised); the
    /// listeners after it miss that event.
    #[inline]
    pub(crate) fn raise(&self, event: impl FnOnce() -> PoolEvent) {
        if self.installed.load(Ordering::Relaxed) {
            self.raise_slow(&event());
        }
    }

    /// The same, where a panic must not escape: in a thread-local destructor (a thread's exit
    /// flush), where unwinding aborts the process. The panic hook has already reported the
    /// panic; the listeners after it miss that event.
    pub(crate) fn raise_contained(&self, event: impl FnOnce() -> PoolEvent) {
        if self.installed.load(Ordering::Relaxed) {
            let event = event();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| self.raise_slow(&event)));
        }
    }

    #[cold]
    fn raise_slow(&self, event: &PoolEvent) {
        let list = Arc::clone(&self.list.read().unwrap_or_else(|p| p.into_inner()));
        for (_, listener) in list.iter() {
            listener(event);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn noop() -> ListenerFn {
        Arc::new(|_: &PoolEvent| {})
    }

    #[test]
    fn the_flag_follows_the_list() {
        let listeners = Listeners::new(Vec::new());
        assert!(!listeners.any());
        let (a, b) = (listeners.add(noop()), listeners.add(noop()));
        assert_ne!(a, b);
        assert!(listeners.remove(a));
        assert!(listeners.any(), "one is left");
        assert!(listeners.remove(b));
        assert!(!listeners.any());
        assert!(!listeners.remove(b));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    /// Regression (review B3): the `installed` flag was stored after the write lock was
    /// released, so a removal racing an addition could leave a listener in the list with the
    /// flag off, and every event skipped it. Whatever the interleaving, the flag matches the
    /// list, and an event raised afterwards reaches the listener that remains.
    #[test]
    fn an_addition_racing_a_removal_leaves_the_flag_true() {
        loom::model(|| {
            let listeners = Arc::new(Listeners::new(Vec::new()));
            let first = listeners.add(Arc::new(|_: &PoolEvent| {}));
            let calls = Arc::new(AtomicUsize::new(0));
            let adder = {
                let (listeners, calls) = (Arc::clone(&listeners), Arc::clone(&calls));
                thread::spawn(move || {
                    listeners.add(Arc::new(move |_: &PoolEvent| {
                        calls.fetch_add(1, Ordering::Relaxed);
                    }));
                })
            };
            assert!(listeners.remove(first));
            adder.join().unwrap();
            assert!(listeners.any(), "the added listener is installed");
            listeners.raise(|| PoolEvent::dropped(16, DropReason::Full));
            assert_eq!(calls.load(Ordering::Relaxed), 1);
        });
    }
}
