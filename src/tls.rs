//! `ThreadCache`: the thread-local tier, one buffer per bucket per thread, touched with no lock
//! and no atomic instruction.
//!
//! The shared pool's cache lives in a `thread_local!` (the fastest storage Rust has) and is
//! flushed into the shared pool's partitions when the thread exits, so cached buffers are
//! neither leaked nor lost. A custom pool built with a thread cache keeps one `ThreadCache` per
//! thread in a `thread_local::ThreadLocal` owned by the pool, so that dropping the pool frees
//! what every thread had cached (see `pool.rs`).

use std::cell::{Cell, OnceCell};

use thread_local::ThreadLocal;

use crate::bucket::MAX_BUCKETS;
use crate::stats::{Shard, ShardRegistry, ThreadCounts};

/// One slot per bucket. `Cell<Option<Vec<u8>>>` moves the buffer in and out without a borrow
/// flag; the owner thread is the only one that can reach it.
pub(crate) struct ThreadCache {
    slots: [Cell<Option<Vec<u8>>>; MAX_BUCKETS],
}

impl ThreadCache {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { Cell::new(None) }; MAX_BUCKETS],
        }
    }

    /// Takes the buffer cached for bucket `index`, if any.
    #[inline]
    pub(crate) fn take(&self, index: usize) -> Option<Vec<u8>> {
        self.slots[index].take()
    }

    /// Caches `buffer` for bucket `index` and hands back the buffer it displaces.
    #[inline]
    pub(crate) fn put(&self, index: usize, buffer: Vec<u8>) -> Option<Vec<u8>> {
        self.slots[index].replace(Some(buffer))
    }

    /// Empties every slot, handing each buffer and its bucket to `f`.
    pub(crate) fn drain(&self, mut f: impl FnMut(usize, Vec<u8>)) {
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(buffer) = slot.take() {
                f(index, buffer);
            }
        }
    }
}

/// What each thread keeps for the shared pool: its cache, and the counter shard it writes.
pub(crate) struct SharedThreadState {
    pub(crate) cache: ThreadCache,
    shard: OnceCell<Shard>,
}

impl SharedThreadState {
    /// This thread's counter shard, checked out of `registry` on first use.
    #[inline]
    pub(crate) fn shard(&self, registry: impl FnOnce() -> &'static ShardRegistry) -> &ThreadCounts {
        self.shard.get_or_init(|| registry().check_out())
    }
}

impl Drop for SharedThreadState {
    /// Thread exit: the cached buffers go down to the shared pool's partitions, and the counter
    /// shard goes back for a later thread.
    fn drop(&mut self) {
        crate::pool::flush_shared_thread(&self.cache, self.shard.take());
    }
}

std::thread_local! {
    pub(crate) static SHARED_THREAD: SharedThreadState = const {
        SharedThreadState { cache: ThreadCache::new(), shard: OnceCell::new() }
    };
}

/// What each thread keeps for a custom pool with a thread cache, in the pool's `ThreadLocal`.
pub(crate) struct PerPoolThreadState {
    pub(crate) cache: ThreadCache,
    pub(crate) shard: Shard,
}

/// Whether this thread may still use the `thread_local` crate.
///
/// `ThreadLocal::get_or` panics when called from a thread-local destructor that runs after the
/// crate's own per-thread guard was destroyed (it tries to register a new one). A buffer held
/// in a user's thread-local and returned from its destructor would hit exactly that. So before
/// a thread first uses a custom pool's `ThreadLocal`, it [`arm`]s a sentinel of ours registered
/// *after* the crate's guard; destructors run in reverse order of registration, so the
/// sentinel dies first and flips this state to `Dead`, and from then on the thread bypasses its
/// cache and uses the partitions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PerPoolAccess {
    Unarmed,
    Armed,
    Dead,
}

std::thread_local! {
    /// No destructor, so it stays readable for the whole thread exit.
    static PER_POOL_ACCESS: Cell<PerPoolAccess> = const { Cell::new(PerPoolAccess::Unarmed) };
    static SENTINEL: Sentinel = const { Sentinel };
}

struct Sentinel;

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = PER_POOL_ACCESS.try_with(|access| access.set(PerPoolAccess::Dead));
    }
}

/// Runs `use_thread_local` if this thread may still use the `thread_local` crate (arming the
/// sentinel first, on its first call), else returns `None`.
#[inline]
pub(crate) fn with_per_pool_access<R>(use_thread_local: impl FnOnce() -> R) -> Option<R> {
    let mut access = PER_POOL_ACCESS.try_with(Cell::get).ok()?;
    if access == PerPoolAccess::Unarmed {
        access = arm();
        let _ = PER_POOL_ACCESS.try_with(|state| state.set(access));
    }
    (access == PerPoolAccess::Armed).then(use_thread_local)
}

/// Registers the `thread_local` crate's guard for this thread, then our sentinel after it.
///
/// The guard must come first even when the thread's first use of a pool is a rent, which only
/// calls `ThreadLocal::get` (that allocates no thread id, so registers no guard): otherwise a
/// later first return would register the guard *after* the sentinel, the guard would die
/// first, and a thread-local destructor running between the two would call `get_or` with the
/// guard gone (regression tests: `tests/regression_thread_local_guard_order.rs`).
///
/// Giving the thread its id can itself panic, in the same way, when this is the thread's first
/// use of any thread-cached custom pool and it happens in a thread-local destructor after the
/// crate's guard (registered by another `ThreadLocal` user) is gone. Nothing can tell that
/// moment apart beforehand, so the panic is caught (the panic hook still prints it) and the
/// thread never uses its cache. Built with `panic = "abort"`, that one case still aborts.
#[cold]
fn arm() -> PerPoolAccess {
    static THREAD_ID: ThreadLocal<()> = ThreadLocal::new();
    let give_id = || {
        THREAD_ID.get_or(|| ());
    };
    if std::panic::catch_unwind(give_id).is_err() {
        return PerPoolAccess::Dead;
    }
    match SENTINEL.try_with(|_| ()) {
        Ok(()) => PerPoolAccess::Armed,
        Err(_) => PerPoolAccess::Dead,
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::per_cpu::PerCpuStacks;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;
    use loom::thread;
    use std::cell::RefCell;

    /// A thread cache that flushes into `stacks` when its (loom) thread exits, as the shared
    /// pool's does. It raises `flushed` when done: loom's `join` returns before a thread's
    /// locals are destroyed (std's does not), so the checker waits for the flag instead.
    struct Flushing {
        cache: ThreadCache,
        target: RefCell<Option<(Arc<PerCpuStacks>, Arc<AtomicBool>)>>,
    }

    impl Drop for Flushing {
        fn drop(&mut self) {
            if let Some((stacks, flushed)) = self.target.borrow_mut().take() {
                self.cache.drain(|_, buffer| {
                    stacks
                        .push(0, buffer, crate::stack::Arrival::MovedDown)
                        .expect("room for it")
                });
                flushed.store(true, Ordering::Release);
            }
        }
    }

    loom::thread_local! {
        static CACHE: Flushing = Flushing { cache: ThreadCache::new(), target: RefCell::new(None) };
    }

    /// One thread caches a buffer and exits (its cache flushes into the partitions) while
    /// another rents from the partitions: the buffer is rented exactly once or still pooled.
    #[test]
    fn thread_exit_flush_races_a_rent() {
        loom::model(|| {
            let stacks = Arc::new(PerCpuStacks::new(&[1, 1]));
            let flushed = Arc::new(AtomicBool::new(false));
            let target = (Arc::clone(&stacks), Arc::clone(&flushed));
            thread::spawn(move || {
                CACHE.with(|c| {
                    *c.target.borrow_mut() = Some(target);
                    assert!(c.cache.put(3, vec![7; 4]).is_none());
                });
            });
            let rented = stacks.pop(1);
            while !flushed.load(Ordering::Acquire) {
                thread::yield_now();
            }
            let pooled = stacks.len();
            match rented {
                Some(buffer) => assert_eq!((buffer, pooled), (vec![7; 4], 0)),
                None => assert_eq!(pooled, 1, "flushed, not lost"),
            }
        });
    }
}
