//! `ThreadCache`: the thread-local tier, one buffer per bucket per thread, touched with no lock
//! and no atomic instruction.
//!
//! The shared pool's cache lives in a `thread_local!` (the fastest storage Rust has) and is
//! flushed into the shared pool's partitions when the thread exits, so cached buffers are
//! neither leaked nor lost. A custom pool built with a thread cache keeps one `ThreadCache` per
//! thread in a `thread_local::ThreadLocal` owned by the pool, so that dropping the pool frees
//! what every thread had cached (see `pool.rs`).

use std::cell::Cell;

use crate::bucket::MAX_BUCKETS;
use crate::stats::Counters;

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

/// What each thread keeps for the shared pool: its cache, and a handle to its own counter shard
/// (looked up once, then reached without going through the `ThreadLocal` again).
pub(crate) struct SharedThreadState {
    pub(crate) cache: ThreadCache,
    counters: Cell<Option<&'static Counters>>,
}

impl SharedThreadState {
    /// This thread's counter shard in the shared pool, looked up on first use with `lookup`.
    #[inline]
    pub(crate) fn counters(&self, lookup: impl FnOnce() -> &'static Counters) -> &'static Counters {
        match self.counters.get() {
            Some(counters) => counters,
            None => {
                let counters = lookup();
                self.counters.set(Some(counters));
                counters
            }
        }
    }
}

impl Drop for SharedThreadState {
    /// Thread exit: the cached buffers go down to the shared pool's partitions.
    fn drop(&mut self) {
        crate::pool::flush_shared_thread_cache(&self.cache);
    }
}

std::thread_local! {
    pub(crate) static SHARED_THREAD: SharedThreadState = const {
        SharedThreadState { cache: ThreadCache::new(), counters: Cell::new(None) }
    };
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
                self.cache
                    .drain(|_, buffer| stacks.push(0, buffer).expect("room for it"));
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
