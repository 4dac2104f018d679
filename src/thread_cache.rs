//! The thread tier: per thread, one cached buffer per bucket, touched with no lock and no
//! atomic read-modify-write.
//!
//! A pool has one of three [`ThreadTier`]s:
//! - [`SharedTier`], the shared pool's: its cache lives in a `thread_local!` (the fastest
//!   storage Rust has) and is flushed into the shared pool's partitions when the thread exits,
//!   so cached buffers are neither leaked nor lost. Only one `SharedTier` can ever exist, so no
//!   other pool can be wired to that thread-local.
//! - [`PerPoolTier`], a custom pool's (opt-in): one cache per thread in a
//!   `thread_local::ThreadLocal` owned by the pool, so that dropping the pool frees what every
//!   thread had cached.
//! - `Off`: every rent and return goes to the partitions, and `per_bucket` bounds the pool.
//!
//! A return keeps the newest buffer in the cache and moves the one it displaces down to the
//! partitions (LIFO locality, as in .NET).

use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicBool, Ordering};

use thread_local::ThreadLocal;

use crate::accounting::ThreadShard;
use crate::bucket::MAX_BUCKETS;
use crate::pool_state::{Caller, PoolState};

/// One slot per bucket. `Cell<Option<Vec<u8>>>` moves the buffer in and out without a borrow
/// flag; only the owner thread can reach it.
pub(crate) struct ThreadCache {
    slots: [Cell<Option<Vec<u8>>>; MAX_BUCKETS],
}

impl ThreadCache {
    const fn new() -> Self {
        Self {
            slots: [const { Cell::new(None) }; MAX_BUCKETS],
        }
    }

    /// Takes the buffer cached for `bucket`, if any.
    #[inline]
    fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        self.slots[bucket].take()
    }

    /// Caches `buffer` for `bucket` and hands back the buffer it displaces.
    #[inline]
    fn put(&self, bucket: usize, buffer: Vec<u8>) -> Option<Vec<u8>> {
        self.slots[bucket].replace(Some(buffer))
    }

    /// Empties every slot, handing each buffer and its bucket to `f`.
    fn drain(&self, mut f: impl FnMut(usize, Vec<u8>)) {
        for (bucket, slot) in self.slots.iter().enumerate() {
            if let Some(buffer) = slot.take() {
                f(bucket, buffer);
            }
        }
    }
}

/// Which thread tier a pool has.
pub(crate) enum ThreadTier {
    Shared(SharedTier),
    PerPool(Box<PerPoolTier>),
    Off,
}

impl ThreadTier {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::Shared(_) => "shared thread-local",
            Self::PerPool(_) => "per-pool thread-local",
            Self::Off => "none",
        }
    }
}

// ----- the shared pool's tier --------------------------------------------------------------

/// The shared pool's thread tier: a handle on the process-wide `thread_local!` below, bound to
/// the shared pool's state. [`SharedTier::claim`] hands out one in the life of the process, so
/// the thread-local can belong to no other pool.
pub(crate) struct SharedTier {
    state: &'static PoolState,
}

impl SharedTier {
    /// The shared tier, for `state`; `None` after the first call.
    pub(crate) fn claim(state: &'static PoolState) -> Option<Self> {
        static CLAIMED: AtomicBool = AtomicBool::new(false);
        (!CLAIMED.swap(true, Ordering::Relaxed)).then_some(Self { state })
    }

    /// Takes this thread's cached buffer of `bucket`, counting the rent.
    #[inline(always)]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        shared::take(self.state, bucket)
    }

    /// Keeps a returned buffer of `bucket`: in this thread's cache, moving the one it displaces
    /// down to the partitions, or (once this thread's cache is destroyed) in the partitions.
    #[inline(always)]
    pub(crate) fn put(&self, bucket: usize, buffer: Vec<u8>) {
        match shared::put(self.state, bucket, buffer) {
            Ok(None) => {}
            Ok(Some(displaced)) => self.state.move_down(bucket, displaced, Caller::User),
            Err(buffer) => self.state.keep(bucket, buffer),
        }
    }
}

/// The `thread_local!` behind [`SharedTier`], apart so that the loom models can bind it to a
/// pool state of their own and drive its real thread-exit flush.
mod shared {
    use super::*;

    /// What each thread keeps for the shared pool.
    pub(super) struct SharedThreadState {
        cache: ThreadCache,
        /// This thread's ledger, checked out of the bound pool's registry on first use.
        ledger: OnceCell<ThreadShard>,
        /// The pool state this thread's cache flushes into at exit: bound together with the
        /// ledger, before the first buffer is cached.
        bound: Cell<Option<&'static PoolState>>,
    }

    impl SharedThreadState {
        #[inline]
        fn ledger(&self, state: &'static PoolState) -> &ThreadShard {
            self.ledger.get_or_init(|| {
                self.bound.set(Some(state));
                state.accounting.threads().check_out()
            })
        }
    }

    impl Drop for SharedThreadState {
        /// Thread exit: the cached buffers go down to the partitions, and the ledger goes back
        /// for a later thread.
        fn drop(&mut self) {
            let Some(state) = self.bound.take() else {
                return; // this thread never cached a buffer
            };
            self.cache.drain(|bucket, buffer| {
                state.move_down(bucket, buffer, Caller::ThreadExit);
            });
            if let Some(ledger) = self.ledger.take() {
                state.accounting.threads().check_in(ledger);
            }
        }
    }

    crate::sync::const_thread_local! {
        static SHARED_THREAD: SharedThreadState = SharedThreadState {
            cache: ThreadCache::new(),
            ledger: OnceCell::new(),
            bound: Cell::new(None),
        };
    }

    /// Takes this thread's cached buffer of `bucket`, counting the rent.
    #[inline(always)]
    pub(crate) fn take(state: &'static PoolState, bucket: usize) -> Option<Vec<u8>> {
        SHARED_THREAD
            .try_with(|thread| {
                let buffer = thread.cache.take(bucket)?;
                thread.ledger(state).hit(bucket);
                Some(buffer)
            })
            .ok()
            .flatten()
    }

    /// Caches `buffer` of `bucket`, counting the return: `Ok` with the buffer it displaces, or
    /// `Err(buffer)` if this thread's cache is already destroyed (a return from another
    /// thread-local's destructor).
    #[inline(always)]
    pub(crate) fn put(
        state: &'static PoolState,
        bucket: usize,
        buffer: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Vec<u8>> {
        // Check first, then move the buffer in: a closure that borrowed an `Option<Vec>` to
        // hand the buffer back on failure kept `try_with` from being inlined.
        if SHARED_THREAD.try_with(|_| ()).is_err() {
            return Err(buffer);
        }
        // Cannot fail now (nothing ran on this thread since the check); `unwrap_or` rather
        // than `with` keeps the panic machinery out of the inlined path.
        Ok(SHARED_THREAD
            .try_with(move |thread| {
                thread.ledger(state).kept(bucket);
                thread.cache.put(bucket, buffer)
            })
            .unwrap_or(None))
    }
}

// ----- a custom pool's tier ----------------------------------------------------------------

/// A custom pool's thread tier: one cache per thread, owned by the pool.
///
/// A thread's cache outlives the thread: the `thread_local` crate hands its id, and with it the
/// cache, to the next thread it starts, and dropping the pool frees every cache.
#[derive(Default)]
pub(crate) struct PerPoolTier {
    threads: ThreadLocal<PerPoolThreadState>,
}

/// What each thread keeps for a custom pool.
struct PerPoolThreadState {
    cache: ThreadCache,
    ledger: ThreadShard,
}

impl PerPoolTier {
    /// Takes this thread's cached buffer of `bucket`, counting the rent.
    #[inline]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        with_per_pool_access(|| {
            let thread = self.threads.get()?;
            let buffer = thread.cache.take(bucket)?;
            thread.ledger.hit(bucket);
            Some(buffer)
        })
        .flatten()
    }

    /// Keeps a returned buffer of `bucket`: in this thread's cache (moving the one it displaces
    /// down to the partitions), or in the partitions when this thread may no longer use its
    /// cache (a return from a thread-local destructor).
    #[inline(never)]
    pub(crate) fn put(&self, state: &PoolState, bucket: usize, buffer: Vec<u8>) {
        let mut incoming = Some(buffer);
        let displaced = with_per_pool_access(|| {
            let thread = self.threads.get_or(|| PerPoolThreadState {
                cache: ThreadCache::new(),
                ledger: state.accounting.threads().check_out(),
            });
            let buffer = incoming.take()?;
            thread.ledger.kept(bucket);
            thread.cache.put(bucket, buffer)
        })
        .flatten();
        match (incoming, displaced) {
            (Some(buffer), _) => state.keep(bucket, buffer),
            (None, Some(older)) => state.move_down(bucket, older, Caller::User),
            (None, None) => {}
        }
    }
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
///
/// These thread-locals are `std`'s even under loom: they guard the `thread_local` crate, which
/// loom cannot model, and no loom model uses a custom pool's thread tier.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PerPoolAccess {
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
fn with_per_pool_access<R>(use_thread_local: impl FnOnce() -> R) -> Option<R> {
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
/// guard gone (regression tests: `tests/thread_local_destructors.rs`).
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
    use crate::event::Listeners;
    use crate::partitions::Partitions;
    use loom::thread;

    /// A pool state for one model run. Leaked, because the shared tier binds `&'static`
    /// state, as the real shared pool's is.
    fn leaked_state(bounds: &[usize]) -> &'static PoolState {
        Box::leak(Box::new(PoolState::new(
            Partitions::new(4, bounds.into()),
            Listeners::new(Vec::new()),
        )))
    }

    /// Waits until a finished thread's thread-locals are destroyed: loom's `join` returns
    /// before that (std's does not), and the real flush checks the ledger in last.
    fn wait_for_exit_flush(state: &PoolState, threads: usize) {
        while state.accounting.threads().free() < threads {
            thread::yield_now();
        }
    }

    /// A thread caches a buffer in the real shared-tier thread-local and exits; its real
    /// destructor flushes into the partitions while another thread rents from them. The
    /// buffer is rented exactly once or still pooled, and the counts are exact.
    #[test]
    fn the_real_thread_exit_flush_races_a_rent() {
        loom::model(|| {
            let state = leaked_state(&[1, 1]);
            let exiting = thread::spawn(move || {
                assert_eq!(shared::put(state, 3, vec![7; 4]), Ok(None));
            });
            let rented = state.take(3);
            exiting.join().unwrap();
            wait_for_exit_flush(state, 1);
            let stats = state.totals().stats();
            assert_eq!(stats.returned, 1);
            match rented {
                Some(buffer) => {
                    assert_eq!(buffer, [7; 4]);
                    assert_eq!((stats.rented, stats.held_buffers), (1, 0));
                }
                None => assert_eq!(
                    (stats.held_buffers, state.partitions.len(3)),
                    (1, 1),
                    "flushed, not lost"
                ),
            }
        });
    }

    /// A thread's exit flush and another thread's return race for the one free slot: one
    /// buffer is pooled and the other freed and counted as dropped, whatever the order.
    #[test]
    fn an_exit_flush_and_a_return_race_for_the_last_slot() {
        loom::model(|| {
            let state = leaked_state(&[1]);
            let exiting = thread::spawn(move || {
                assert_eq!(shared::put(state, 2, vec![1; 3]), Ok(None));
            });
            state.keep(2, vec![2; 3]);
            exiting.join().unwrap();
            wait_for_exit_flush(state, 1);
            let stats = state.totals().stats();
            let pooled = state.take(2).expect("one buffer is pooled");
            // The thread cache counted its buffer kept when it cached it; the direct return is
            // counted kept only if it found the slot free.
            let kept_directly = pooled[0] == 2;
            assert_eq!(stats.returned, 1 + u64::from(kept_directly));
            assert_eq!((stats.dropped_full, stats.held_buffers), (1, 1));
        });
    }
}
