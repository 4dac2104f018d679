//! The thread tier: per thread and per pool, one magazine (a small LIFO of buffers) per bucket,
//! under a byte budget, trading with the partitions in batches.
//!
//! This is the magazine layer of Bonwick and Adams' "Magazines and Vmem" (USENIX 2001), as in
//! jemalloc's tcache and tcmalloc's per-thread caches: a rent pops from this thread's
//! magazine and a return pushes onto it, with no lock and no atomic read-modify-write. Only when
//! a magazine is empty (rent) does it take a batch from the partitions, and only when it is full
//! (return) does it move a batch down, each under one partition lock. So a thread that holds
//! several buffers of one size at once, or a producer that rents what a consumer returns, pays a
//! fraction of a lock per buffer.
//!
//! **The budget.** A thread's cache for one pool never holds more than `thread_cache_bytes`
//! (the pool's budget), whatever sizes it used: a return that would pass it goes to the
//! partitions instead. A bucket's magazine holds at most [`magazine_capacity`] buffers, half
//! the budget's worth and at most [`MAGAZINE_MAX`]; buckets of which not even one fits in half
//! the budget skip the thread tier and go straight to the partitions (one lock is nothing next
//! to filling a buffer that large). A batch is half a magazine.
//!
//! A pool has one of three [`ThreadTier`]s:
//! - [`SharedTier`], the shared pool's: its caches live in a `thread_local!` (the fastest storage
//!   Rust has), flushed into the shared pool's partitions when the thread exits. Only one
//!   `SharedTier` can ever exist, so no other pool can be wired to that thread-local.
//! - [`PerPoolTier`], a custom pool's (opt-in): one cache per thread in a
//!   `thread_local::ThreadLocal` owned by the pool, so that dropping the pool frees what every
//!   thread had cached; a thread's cache is flushed into the partitions when the thread exits.
//! - `Off`: every rent and return goes to the partitions, and `per_bucket` bounds the pool.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use thread_local::ThreadLocal;

use crate::accounting::Flow;
use crate::accounting::ThreadShard;
use crate::bucket::{bucket_len, MAX_BUCKETS};
use crate::partitions::{Moved, Refusal};
use crate::pool_state::{Caller, PoolState};
use crate::sys::current_cpu;

/// The most buffers one magazine holds: deep enough that a hand-off between two threads takes
/// a lock once per 16 buffers (a batch is half a magazine), shallow enough that a magazine's
/// storage is 768 bytes.
pub(crate) const MAGAZINE_MAX: usize = 32;

/// How many buffers of `bucket` a thread's magazine holds under `budget` bytes: half the
/// budget's worth, at most [`MAGAZINE_MAX`]. 0 means the bucket skips the thread tier.
pub(crate) const fn magazine_capacity(budget: usize, bucket: usize) -> usize {
    let fit = budget / bucket_len(bucket) / 2;
    if fit < MAGAZINE_MAX {
        fit
    } else {
        MAGAZINE_MAX
    }
}

/// How many buffers one refill takes or one flush moves: half a magazine, at least one.
const fn batch(capacity: usize) -> usize {
    if capacity < 2 {
        1
    } else {
        capacity / 2
    }
}

/// One thread's cache for one pool.
pub(crate) struct ThreadCache {
    magazines: RefCell<Magazines>,
}

struct Magazines {
    /// Per bucket, buffers in the order they arrived (the newest last). A magazine's storage
    /// (its `capacity`) is what it may hold: the fast path pushes only below it, and only slow
    /// paths change it, within the budget. Storage starts empty (capacity 0: full and empty at
    /// once, so the first rent and return of a size take the slow path).
    buffers: [Vec<Vec<u8>>; MAX_BUCKETS],
    /// Bytes the magazines may hold: the sum over buckets of capacity × bucket length. Never
    /// above `budget`, so what the cache holds never is either.
    reserved: usize,
    /// The budget; 0 while the cache is closed (never opened, or flushed at thread exit),
    /// which sends every rent and return to the slow path.
    budget: usize,
    /// This cache's share of the pool's counts; set when the cache is first opened.
    ledger: Option<ThreadShard>,
    /// The pool's trim epoch when this cache last released everything: a slow path that finds
    /// it changed (another thread called `trim()`) releases what the cache holds.
    seen_epoch: u64,
    /// Per bucket, its activity (rents and returns its magazine served, from the ledger) when
    /// the cache was opened or the budget last stood in a magazine's way: a magazine whose
    /// activity has not moved since is idle, and the next such time releases it (`grow`).
    marks: [u64; MAX_BUCKETS],
}

/// What a slow path left to count and report once the cache's borrow is released (a listener
/// may use the pool): buffers freed per bucket, for want of room, for want of budget, and by
/// trimming.
struct Aftermath {
    full: [usize; MAX_BUCKETS],
    over_budget: [usize; MAX_BUCKETS],
    trimmed: [usize; MAX_BUCKETS],
    /// Whether any count above is non-zero: almost every slow path frees nothing, and then
    /// reporting must cost nothing (walking the buckets took 400 ns on each slow path).
    any: bool,
}

impl Aftermath {
    const fn new() -> Self {
        Self {
            full: [0; MAX_BUCKETS],
            over_budget: [0; MAX_BUCKETS],
            trimmed: [0; MAX_BUCKETS],
            any: false,
        }
    }

    /// Records what a move down did with `count` buffers of `bucket`.
    fn moved(&mut self, bucket: usize, count: usize, moved: Moved) {
        if moved.moved < count {
            self.over_budget[bucket] += moved.over_budget;
            self.full[bucket] += count - moved.moved - moved.over_budget;
            self.any = true;
        }
    }

    /// Records `count` buffers of `bucket` freed by trimming.
    fn trimmed(&mut self, bucket: usize, count: usize) {
        if count > 0 {
            self.trimmed[bucket] += count;
            self.any = true;
        }
    }

    /// Counts and reports everything, with no borrow held.
    fn report(&self, state: &PoolState, caller: Caller) {
        if self.any {
            self.report_all(state, caller);
        }
    }

    #[cold]
    fn report_all(&self, state: &PoolState, caller: Caller) {
        let home = current_cpu();
        for bucket in 0..MAX_BUCKETS {
            state.note_dropped(
                home,
                bucket,
                Flow::Evicted,
                Refusal::Full,
                self.full[bucket],
                caller,
            );
            state.note_dropped(
                home,
                bucket,
                Flow::Evicted,
                Refusal::OverBudget,
                self.over_budget[bucket],
                caller,
            );
            state.note_cache_trimmed(bucket, self.trimmed[bucket], caller);
        }
    }
}

/// What a slow path did that the pool must still count or report, after the cache's borrow
/// is released (a listener may use the pool).
#[must_use]
enum Spill {
    /// Nothing more to do.
    Done,
    /// The buffer does not belong in this cache: keep it in the partitions.
    ToPartitions(Vec<u8>),
}

impl ThreadCache {
    const fn new() -> Self {
        Self {
            magazines: RefCell::new(Magazines {
                buffers: [const { Vec::new() }; MAX_BUCKETS],
                reserved: 0,
                budget: 0,
                ledger: None,
                seen_epoch: 0,
                marks: [0; MAX_BUCKETS],
            }),
        }
    }

    /// Pops this thread's newest buffer of `bucket`, counting the rent; `None` when the
    /// magazine is empty or this cache is in use further up the stack.
    #[inline]
    fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        let mut magazines = self.magazines.try_borrow_mut().ok()?;
        let magazines = &mut *magazines;
        let buffer = magazines.buffers.get_mut(bucket)?.pop()?;
        if let Some(ledger) = &magazines.ledger {
            ledger.hit(bucket);
        }
        Some(buffer)
    }

    /// Pops this thread's newest buffer of `bucket` if it holds at least `n` initialized bytes,
    /// truncated to `n`, counting the rent; `None` sends the caller to the slow path (an empty
    /// magazine, a buffer to zero-extend, or this cache in use further up the stack).
    ///
    /// Only what needs no call is done here, and every field of the buffer is read on its own
    /// (its length and capacity are checked, and `mem::take` leaves the slot empty rather than
    /// `pop` copying it out whole): a `Vec` copied whole through memory is moved in 16- and
    /// 8-byte pieces that need not line up with how it was written, and a read that spans two
    /// writes stalls store forwarding. On the hot pair that was 27 ns against 9
    /// (`docs/benchmarks.md`).
    #[inline(always)]
    fn take_fitting(&self, bucket: usize, n: usize) -> Option<Vec<u8>> {
        let mut magazines = self.magazines.try_borrow_mut().ok()?;
        let magazines = &mut *magazines;
        let magazine = magazines.buffers.get_mut(bucket)?;
        let top = magazine.last_mut()?;
        if top.len() < n || top.capacity() != bucket_len(bucket) {
            return None;
        }
        let mut buffer = std::mem::take(top);
        // The empty `Vec` left in the slot owns no memory: forgetting it skips a drop check.
        std::mem::forget(magazine.pop());
        buffer.truncate(n);
        if let Some(ledger) = &magazines.ledger {
            ledger.hit(bucket);
        }
        Some(buffer)
    }

    /// Pushes a returned buffer of `bucket`, counting the return, or hands it back when the
    /// magazine is full or the cache closed (the caller takes the slow path).
    #[inline(always)]
    fn put(&self, bucket: usize, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        let Ok(mut magazines) = self.magazines.try_borrow_mut() else {
            return Err(buffer);
        };
        let magazines = &mut *magazines;
        let Some(magazine) = magazines.buffers.get_mut(bucket) else {
            return Err(buffer);
        };
        // `len` is never above the capacity, which is the bucket length; checking it reads the
        // length on its own, as `take_fitting` explains.
        if magazine.len() == magazine.capacity() || buffer.len() > bucket_len(bucket) {
            return Err(buffer);
        }
        magazine.push(buffer);
        if let Some(ledger) = &magazines.ledger {
            ledger.kept(bucket);
        }
        Ok(())
    }

    /// Whether the cache is open: bound to a budget, not yet flushed at thread exit.
    fn is_open(&self) -> bool {
        self.magazines
            .try_borrow()
            .is_ok_and(|magazines| magazines.budget > 0)
    }

    /// Opens the cache with `state`'s budget, checking a ledger out of its registry the first
    /// time.
    fn open(&self, state: &PoolState) {
        if let Ok(mut magazines) = self.magazines.try_borrow_mut() {
            magazines.budget = state.thread_cache_bytes;
            magazines.seen_epoch = state.trim_epoch.load(Ordering::Relaxed);
            if magazines.ledger.is_none() {
                magazines.ledger = Some(state.accounting.threads().check_out());
            }
            // A new thread (or one inheriting an exited thread's cache and ledger) starts with
            // every size idle: only what it does from now on keeps a magazine.
            if let Some(ledger) = &magazines.ledger {
                magazines.marks = std::array::from_fn(|bucket| ledger.activity(bucket));
            }
        }
    }

    /// A rent that found its magazine empty: takes a batch of `bucket` from the partitions
    /// under one lock (home partition first), keeps all but one in the magazine and hands that
    /// one out, counting the rent. `None` when the partitions have none either.
    #[cold]
    fn refill(&self, state: &PoolState, bucket: usize) -> Option<Vec<u8>> {
        let mut after = Aftermath::new();
        let buffer = match self.magazines.try_borrow_mut() {
            Ok(mut magazines) => {
                magazines.notice_trim(state, &mut after);
                magazines.refill(state, bucket, &mut after)
            }
            Err(_) => return state.take(bucket),
        };
        after.report(state, Caller::User);
        buffer
    }

    /// A return that found its magazine full (it grows, or moves its oldest batch down to the
    /// partitions, then pushes), or the cache closed or the size not cached (the buffer goes
    /// to the partitions).
    #[cold]
    fn put_slow(&self, state: &PoolState, bucket: usize, buffer: Vec<u8>) {
        let mut after = Aftermath::new();
        let spill = match self.magazines.try_borrow_mut() {
            Ok(mut magazines) => {
                magazines.notice_trim(state, &mut after);
                magazines.put_slow(state, bucket, buffer, &mut after)
            }
            Err(_) => Spill::ToPartitions(buffer),
        };
        // The borrow is released: counting and events may run a listener, which may use the
        // pool.
        after.report(state, Caller::User);
        if let Spill::ToPartitions(buffer) = spill {
            state.keep(bucket, buffer);
        }
    }

    /// Moves every buffer down to the partitions and closes the cache (its storage freed), at
    /// thread exit. Buffers the partitions have no room for are freed and counted.
    fn close(&self, state: &PoolState) {
        let Ok(mut magazines) = self.magazines.try_borrow_mut() else {
            return;
        };
        let mut after = Aftermath::new();
        for bucket in 0..MAX_BUCKETS {
            magazines.release(state, bucket, &mut after);
        }
        magazines.budget = 0;
        drop(magazines);
        after.report(state, Caller::Contained);
    }

    /// `trim()` on this thread: frees every buffer the cache holds (counted as trimmed); the
    /// magazines keep their storage.
    fn trim(&self, state: &PoolState) {
        let mut after = Aftermath::new();
        if let Ok(mut magazines) = self.magazines.try_borrow_mut() {
            magazines.trim(&mut after);
            magazines.seen_epoch = state.trim_epoch.load(Ordering::Relaxed);
        }
        after.report(state, Caller::User);
    }

    /// This cache's ledger, for a shared-pool thread to check back in at exit.
    fn take_ledger(&self) -> Option<ThreadShard> {
        self.magazines.try_borrow_mut().ok()?.ledger.take()
    }
}

impl Magazines {
    fn refill(
        &mut self,
        state: &PoolState,
        bucket: usize,
        after: &mut Aftermath,
    ) -> Option<Vec<u8>> {
        if self.buffers[bucket].is_empty() {
            // Slow start: a thread that keeps running dry takes bigger batches.
            if !self.grow(state, bucket, after) && self.buffers[bucket].capacity() == 0 {
                return state.take(bucket); // a size that skips the tier, or a closed cache
            }
            let magazine = &mut self.buffers[bucket];
            let want = batch(magazine.capacity());
            state
                .partitions
                .pop_batch(bucket, current_cpu(), magazine, want);
        }
        let buffer = self.buffers[bucket].pop()?;
        if let Some(ledger) = &self.ledger {
            ledger.hit(bucket);
        }
        Some(buffer)
    }

    fn put_slow(
        &mut self,
        state: &PoolState,
        bucket: usize,
        buffer: Vec<u8>,
        after: &mut Aftermath,
    ) -> Spill {
        let magazine = &self.buffers[bucket];
        if magazine.len() == magazine.capacity() && !self.grow(state, bucket, after) {
            if self.buffers[bucket].capacity() == 0 {
                return Spill::ToPartitions(buffer); // a size that skips the tier, or closed
            }
            // Full at its limit: the oldest batch moves down, under one lock per partition.
            let count = batch(self.buffers[bucket].len());
            self.move_down(state, bucket, count, after);
        }
        self.buffers[bucket].push(buffer);
        if let Some(ledger) = &self.ledger {
            ledger.kept(bucket);
        }
        Spill::Done
    }

    /// Doubles `bucket`'s magazine (from one slot) toward its limit, within the budget;
    /// `false` if it cannot grow.
    ///
    /// Each magazine grows a few times in a thread's life, to the depth its thread's pattern
    /// needs (tcmalloc's "slow start"): a thread that rents and returns one buffer keeps one,
    /// and a thread that runs many short-lived tasks does not hoard batches it will never use.
    ///
    /// When the budget stands in the way, the magazines of sizes the thread has not used since
    /// the budget last stood in the way are released (their buffers moved down, their storage
    /// freed), the largest first (the fewest locks for the most bytes); then the magazine grows
    /// into what is free. So a thread's budget follows the sizes it uses now, not every size it
    /// ever used once, and sizes in use together never take slots from each other in turn.
    #[cold]
    fn grow(&mut self, state: &PoolState, bucket: usize, after: &mut Aftermath) -> bool {
        let limit = magazine_capacity(self.budget, bucket);
        let capacity = self.buffers[bucket].capacity();
        if capacity >= limit {
            return false;
        }
        let len = bucket_len(bucket);
        let wanted = (capacity * 2).clamp(1, limit);
        if self.reserved + (wanted - capacity) * len > self.budget {
            self.release_idle(state, bucket, (wanted - capacity) * len, after);
        }
        let free = (self.budget.saturating_sub(self.reserved)) / len;
        let target = wanted.min(capacity + free);
        if target <= capacity {
            return false;
        }
        let magazine = &mut self.buffers[bucket];
        magazine.reserve_exact(target - magazine.len()); // warm-up: a few times per size
        self.reserved += (magazine.capacity() - capacity) * len;
        true
    }

    /// A budget decision for `bucket`, which needs `needed` more bytes than are free: releases
    /// the magazines of other sizes with no rent or return since the last decision, the
    /// largest first, until `needed` is free or none is left, and starts a new period.
    fn release_idle(
        &mut self,
        state: &PoolState,
        bucket: usize,
        needed: usize,
        after: &mut Aftermath,
    ) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        // Moving buffers down is not a rent or a return: activity stands still meanwhile.
        let activity: [u64; MAX_BUCKETS] = std::array::from_fn(|other| ledger.activity(other));
        while self.budget.saturating_sub(self.reserved) < needed {
            let idle = (0..MAX_BUCKETS)
                .filter(|&other| other != bucket && self.buffers[other].capacity() > 0)
                .filter(|&other| activity[other] == self.marks[other])
                .max_by_key(|&other| self.buffers[other].capacity() * bucket_len(other));
            let Some(victim) = idle else {
                break;
            };
            self.release(state, victim, after);
        }
        self.marks = activity;
    }

    /// Moves every buffer of `bucket` down and frees its magazine's storage.
    fn release(&mut self, state: &PoolState, bucket: usize, after: &mut Aftermath) {
        let count = self.buffers[bucket].len();
        if count > 0 {
            self.move_down(state, bucket, count, after);
        }
        self.reserved -= self.buffers[bucket].capacity() * bucket_len(bucket);
        self.buffers[bucket] = Vec::new();
    }

    /// Moves the `count` oldest buffers of `bucket`'s magazine down to the partitions, each
    /// partition under one lock, and frees those that find no room (recorded in `after`).
    fn move_down(&mut self, state: &PoolState, bucket: usize, count: usize, after: &mut Aftermath) {
        let magazine = &mut self.buffers[bucket];
        let moved = state.move_down(bucket, magazine, count);
        // What found no room is at the front now.
        magazine.drain(..count - moved.moved);
        after.moved(bucket, count, moved);
    }

    /// Frees every buffer held (trimmed); the storage stays.
    fn trim(&mut self, after: &mut Aftermath) {
        for (bucket, magazine) in self.buffers.iter_mut().enumerate() {
            after.trimmed(bucket, magazine.len());
            magazine.clear();
        }
    }

    /// If another thread called `trim()` since this cache last looked, frees what it holds.
    fn notice_trim(&mut self, state: &PoolState, after: &mut Aftermath) {
        let epoch = state.trim_epoch.load(Ordering::Relaxed);
        if epoch != self.seen_epoch {
            self.seen_epoch = epoch;
            self.trim(after);
        }
    }
}

/// Which thread tier a pool has.
pub(crate) enum ThreadTier {
    Shared(SharedTier),
    PerPool(Arc<PerPoolTier>),
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

    /// Pops this thread's newest cached buffer of `bucket`, counting the rent.
    #[inline(always)]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        shared::take(bucket)
    }

    /// The fast path of a rent: this thread's newest cached buffer of `bucket`, if it needs no
    /// zero-filling to reach `n` bytes, truncated to `n`.
    #[inline(always)]
    pub(crate) fn take_fitting(&self, bucket: usize, n: usize) -> Option<Vec<u8>> {
        shared::take_fitting(bucket, n)
    }

    /// A rent the fast path could not serve: a refill from the partitions.
    pub(crate) fn refill(&self, bucket: usize) -> Option<Vec<u8>> {
        shared::refill(self.state, bucket)
    }

    /// `trim()` on this thread: frees what this thread's cache holds.
    pub(crate) fn trim_own(&self) {
        shared::trim(self.state);
    }

    /// Keeps a returned buffer of `bucket`: in this thread's magazine, else (full, budget spent,
    /// or this thread's cache already destroyed) through the slow path.
    #[inline(always)]
    pub(crate) fn put(&self, bucket: usize, buffer: Vec<u8>) {
        if let Err(buffer) = shared::put(bucket, buffer) {
            shared::put_slow(self.state, bucket, buffer);
        }
    }
}

/// The thread-local behind [`SharedTier`], apart so that the loom models can bind it to a pool
/// state of their own and drive its real thread-exit flush.
mod shared {
    use super::*;

    /// What each thread keeps for the shared pool.
    #[repr(align(64))]
    pub(super) struct SharedThreadState {
        cache: ThreadCache,
        /// The pool state this thread's cache flushes into at exit, bound on the first slow
        /// path; it stays bound after the flush, so later slow paths find the cache closed.
        bound: Cell<Option<&'static PoolState>>,
    }

    impl SharedThreadState {
        const fn new() -> Self {
            Self {
                cache: ThreadCache::new(),
                bound: Cell::new(None),
            }
        }

        /// This thread's cache, bound to `state` and opened on the first call; `None` when
        /// this thread is past its exit flush and never bound (its cache must stay empty).
        #[inline]
        fn bind(&self, state: &'static PoolState) -> Option<&ThreadCache> {
            if self.bound.get().is_none() {
                if !storage::arm_exit_flush() {
                    return None;
                }
                self.bound.set(Some(state));
                self.cache.open(state);
            }
            Some(&self.cache)
        }

        /// Thread exit: the cached buffers go down to the partitions, the cache closes, and
        /// the ledger goes back for a later thread.
        fn exit_flush(&self) {
            if let Some(state) = self.bound.get() {
                self.cache.close(state);
                if let Some(ledger) = self.cache.take_ledger() {
                    state.accounting.threads().check_in(ledger);
                }
            }
        }
    }

    /// With `std`, the state sits in a `const` thread-local without a destructor
    /// (`ManuallyDrop`), so that every access is a plain thread-local address with no "alive?"
    /// check, and a separate guard with a destructor runs the exit flush. The guard is armed on
    /// the thread's first slow path, before anything is cached, so a thread that never cached
    /// registers no destructor, and a thread-local destructor that runs after the flush finds
    /// the cache closed (and never leaks: nothing can enter a closed cache).
    #[cfg(not(all(test, loom)))]
    mod storage {
        use super::SharedThreadState;
        use std::mem::ManuallyDrop;

        std::thread_local! {
            static SHARED_THREAD: ManuallyDrop<SharedThreadState> =
                const { ManuallyDrop::new(SharedThreadState::new()) };
            static EXIT_FLUSH: ExitFlush = const { ExitFlush };
        }

        struct ExitFlush;

        impl Drop for ExitFlush {
            fn drop(&mut self) {
                let _ = SHARED_THREAD.try_with(|thread| thread.exit_flush());
            }
        }

        /// Registers the exit flush; `false` if this thread's exit flush has already run.
        pub(super) fn arm_exit_flush() -> bool {
            EXIT_FLUSH.try_with(|_| ()).is_ok()
        }

        #[inline(always)]
        pub(super) fn with<R>(f: impl FnOnce(&SharedThreadState) -> R) -> Option<R> {
            SHARED_THREAD.try_with(|thread| f(thread)).ok()
        }

        /// The fast path of a rent.
        ///
        /// `try_with`, not `with`: `with` is not `#[inline]`, and the 24-byte `Vec` then
        /// crosses a call through memory, written in 8-byte halves and read back 16 bytes at a
        /// time, which stalls store forwarding (measured: 26 ns against 11 ns per hot pair).
        /// This thread-local has no destructor, so `try_with` cannot fail.
        #[inline(always)]
        pub(super) fn take(bucket: usize) -> Option<Vec<u8>> {
            SHARED_THREAD
                .try_with(|thread| thread.cache.take(bucket))
                .unwrap_or(None)
        }

        #[inline(always)]
        pub(super) fn take_fitting(bucket: usize, n: usize) -> Option<Vec<u8>> {
            SHARED_THREAD
                .try_with(|thread| thread.cache.take_fitting(bucket, n))
                .unwrap_or(None)
        }

        /// The fast path of a return: the buffer moves straight into the closure. (`try_with`
        /// cannot fail here, see `take`; the `Ok(())` for its error arm is never taken.)
        #[inline(always)]
        pub(super) fn put(bucket: usize, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
            SHARED_THREAD
                .try_with(move |thread| thread.cache.put(bucket, buffer))
                .unwrap_or(Ok(()))
        }
    }

    /// Under loom, whose thread-locals all become unreachable before any of them is dropped,
    /// the state's own destructor runs the same exit flush.
    #[cfg(all(test, loom))]
    mod storage {
        use super::SharedThreadState;

        impl Drop for SharedThreadState {
            fn drop(&mut self) {
                self.exit_flush();
            }
        }

        loom::thread_local! {
            static SHARED_THREAD: SharedThreadState = SharedThreadState::new();
        }

        pub(super) fn arm_exit_flush() -> bool {
            true
        }

        pub(super) fn with<R>(f: impl FnOnce(&SharedThreadState) -> R) -> Option<R> {
            SHARED_THREAD.try_with(|thread| f(thread)).ok()
        }

        pub(super) fn take(bucket: usize) -> Option<Vec<u8>> {
            with(|thread| thread.cache.take(bucket)).flatten()
        }

        pub(super) fn take_fitting(bucket: usize, n: usize) -> Option<Vec<u8>> {
            with(|thread| thread.cache.take_fitting(bucket, n)).flatten()
        }

        pub(super) fn put(bucket: usize, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
            let mut buffer = Some(buffer);
            let put = with(|thread| match buffer.take() {
                Some(buffer) => thread.cache.put(bucket, buffer),
                None => Ok(()),
            });
            match (put, buffer) {
                (Some(put), _) => put,
                (None, Some(buffer)) => Err(buffer),
                (None, None) => Ok(()),
            }
        }
    }

    #[inline(always)]
    pub(crate) fn take(bucket: usize) -> Option<Vec<u8>> {
        storage::take(bucket)
    }

    #[inline(always)]
    pub(crate) fn take_fitting(bucket: usize, n: usize) -> Option<Vec<u8>> {
        storage::take_fitting(bucket, n)
    }

    /// `Err(buffer)` sends the caller to [`put_slow`].
    #[inline(always)]
    pub(crate) fn put(bucket: usize, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        storage::put(bucket, buffer)
    }

    #[cold]
    pub(crate) fn refill(state: &'static PoolState, bucket: usize) -> Option<Vec<u8>> {
        if !state.caches(bucket) {
            return state.take(bucket);
        }
        match storage::with(|thread| thread.bind(state).map(|cache| cache.refill(state, bucket))) {
            Some(Some(buffer)) => buffer,
            // Past this thread's exit flush (a rent from another thread-local's destructor).
            Some(None) | None => state.take(bucket),
        }
    }

    #[cold]
    pub(crate) fn trim(state: &'static PoolState) {
        storage::with(|thread| {
            if thread.bound.get().is_some() {
                thread.cache.trim(state);
            }
        });
    }

    #[cold]
    pub(crate) fn put_slow(state: &'static PoolState, bucket: usize, buffer: Vec<u8>) {
        if !state.caches(bucket) {
            return state.keep(bucket, buffer);
        }
        let mut buffer = Some(buffer);
        storage::with(|thread| {
            if let Some(cache) = thread.bind(state) {
                if let Some(buffer) = buffer.take() {
                    cache.put_slow(state, bucket, buffer);
                }
            }
        });
        if let Some(buffer) = buffer {
            state.keep(bucket, buffer); // past this thread's exit flush
        }
    }
}

// ----- a custom pool's tier ----------------------------------------------------------------

/// A custom pool's thread tier: one cache per thread, owned by the pool.
///
/// A thread's cache is flushed into the partitions when the thread exits (by the sentinel
/// below, which finds the tier through [`LIVE_TIERS`]); the `thread_local` crate then hands the
/// emptied cache, with its ledger, to the next thread it gives that thread's id. Dropping the
/// pool frees every cache.
pub(crate) struct PerPoolTier {
    threads: ThreadLocal<ThreadCache>,
    state: Arc<PoolState>,
    /// This tier's key in [`LIVE_TIERS`].
    id: u64,
}

/// Every live custom pool's tier, by id, so that an exiting thread can flush its caches into
/// them. A pool registers its tier when built and removes it when dropped; threads keep only
/// ids, so a thread that outlives a pool holds nothing of it.
static LIVE_TIERS: Mutex<Vec<(u64, Arc<PerPoolTier>)>> = Mutex::new(Vec::new());

impl PerPoolTier {
    /// A tier for `state`, registered among the live tiers until [`PerPoolTier::retire`].
    pub(crate) fn register(state: Arc<PoolState>) -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let tier = Arc::new(Self {
            threads: ThreadLocal::new(),
            state,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        live_tiers().push((tier.id, Arc::clone(&tier)));
        tier
    }

    /// Removes this tier from the live tiers: its pool is being dropped.
    pub(crate) fn retire(&self) {
        let retired = {
            let mut live = live_tiers();
            live.iter()
                .position(|(id, _)| *id == self.id)
                .map(|at| live.swap_remove(at))
        };
        drop(retired); // outside the lock: it may be the tier's last handle
    }

    /// Pops this thread's newest cached buffer of `bucket`, counting the rent.
    ///
    /// `ThreadLocal::get` reads the `thread_local` crate's thread id from a thread-local with
    /// no destructor, so it is safe at any point of thread exit: once the crate's guard has
    /// released the id, it finds no cache.
    #[inline]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        self.threads.get()?.take(bucket)
    }

    /// The fast path of a rent: this thread's newest cached buffer of `bucket`, if it needs no
    /// zero-filling to reach `n` bytes, truncated to `n`.
    #[inline(always)]
    pub(crate) fn take_fitting(&self, bucket: usize, n: usize) -> Option<Vec<u8>> {
        self.threads.get()?.take_fitting(bucket, n)
    }

    /// `trim()` on this thread: frees what this thread's cache holds.
    pub(crate) fn trim_own(&self) {
        if let Some(cache) = self.threads.get() {
            cache.trim(&self.state);
        }
    }

    /// A rent the fast path could not serve: a refill, or the partitions when this thread may
    /// no longer use its cache.
    #[inline(never)]
    pub(crate) fn refill(&self, bucket: usize) -> Option<Vec<u8>> {
        if !self.state.caches(bucket) {
            return self.state.take(bucket);
        }
        match self.open_cache() {
            Some(cache) => cache.refill(&self.state, bucket),
            None => self.state.take(bucket),
        }
    }

    /// Keeps a returned buffer of `bucket`: in this thread's magazine, else through the slow
    /// path.
    #[inline(always)]
    pub(crate) fn put(&self, bucket: usize, buffer: Vec<u8>) {
        match self.threads.get() {
            Some(cache) => {
                if let Err(buffer) = cache.put(bucket, buffer) {
                    self.put_slow(bucket, buffer);
                }
            }
            None => self.put_slow(bucket, buffer),
        }
    }

    #[inline(never)]
    fn put_slow(&self, bucket: usize, buffer: Vec<u8>) {
        if !self.state.caches(bucket) {
            return self.state.keep(bucket, buffer);
        }
        match self.open_cache() {
            Some(cache) => cache.put_slow(&self.state, bucket, buffer),
            None => self.state.keep(bucket, buffer),
        }
    }

    /// This thread's cache, opened (and its exit flush registered) if this thread may use it:
    /// `None` in a thread-local destructor that runs after the exit flush.
    fn open_cache(&self) -> Option<&ThreadCache> {
        with_per_pool_access(|| {
            let cache = self.threads.get_or(ThreadCache::new);
            if !cache.is_open() {
                // A new thread, or one that inherited the emptied cache of an exited thread.
                cache.open(&self.state);
                flush_at_exit(self.id);
            }
            cache
        })
    }
}

/// Whether this thread may still use the `thread_local` crate, and its exit flush.
///
/// `ThreadLocal::get_or` panics when called from a thread-local destructor that runs after the
/// crate's own per-thread guard was destroyed (it tries to register a new one). A buffer held
/// in a user's thread-local and returned from its destructor would hit exactly that. So before
/// a thread first opens a custom pool's cache, it [`arm`]s a sentinel of ours registered
/// *after* the crate's guard; destructors run in reverse order of registration, so the
/// sentinel dies first: it flushes this thread's caches while their ids are still valid, and
/// flips this state to `Dead`, and from then on the thread bypasses its caches.
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
    static SENTINEL: Sentinel = const { Sentinel { tiers: RefCell::new(Vec::new()) } };
}

/// Flushes this thread's caches at its exit: the ids of the tiers it opened a cache in.
struct Sentinel {
    tiers: RefCell<Vec<u64>>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        for id in self.tiers.take() {
            let tier = live_tiers()
                .iter()
                .find(|(live, _)| *live == id)
                .map(|(_, tier)| Arc::clone(tier));
            // `get` still finds this thread's cache: the sentinel dies before the
            // `thread_local` crate's guard releases the thread's id.
            if let Some(tier) = tier {
                if let Some(cache) = tier.threads.get() {
                    cache.close(&tier.state);
                }
            } // A pool dropped since: its caches went with it.
        }
        let _ = PER_POOL_ACCESS.try_with(|access| access.set(PerPoolAccess::Dead));
    }
}

/// [`LIVE_TIERS`], locked. Nothing panics under this lock, so poison is ignored.
fn live_tiers() -> std::sync::MutexGuard<'static, Vec<(u64, Arc<PerPoolTier>)>> {
    LIVE_TIERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers tier `id` for this thread's exit flush. Called from `with_per_pool_access`, so the
/// sentinel is armed.
fn flush_at_exit(id: u64) {
    let _ = SENTINEL.try_with(|sentinel| {
        let mut tiers = sentinel.tiers.borrow_mut();
        if tiers.contains(&id) {
            return;
        }
        if tiers.len() == tiers.capacity() {
            // Before growing, forget the tiers whose pools were dropped.
            let live = live_tiers();
            tiers.retain(|id| live.iter().any(|(live, _)| live == id));
        }
        tiers.push(id);
    });
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::Listeners;
    use crate::partitions::Partitions;

    fn state(budget: usize, bounds: &[usize]) -> std::sync::Arc<PoolState> {
        PoolState::new(
            Partitions::new(13, bounds.into(), None),
            Listeners::new(Vec::new()),
            budget,
            None,
        )
    }

    #[test]
    fn magazines_hold_half_the_budget_at_most_magazine_max() {
        let budget = 128 << 10;
        assert_eq!(magazine_capacity(budget, 0), MAGAZINE_MAX, "16 B");
        assert_eq!(magazine_capacity(budget, 8), 16, "4 KiB: 64 KiB of 128");
        assert_eq!(magazine_capacity(budget, 12), 1, "64 KiB");
        assert_eq!(magazine_capacity(budget, 13), 0, "128 KiB skips the tier");
        assert_eq!(magazine_capacity(0, 0), 0, "a closed cache holds nothing");
        assert_eq!((batch(0), batch(1), batch(16)), (1, 1, 8));
    }

    #[test]
    fn a_full_magazine_moves_its_oldest_half_down() {
        let state = state(1 << 20, &[64]);
        let cache = ThreadCache::new();
        cache.open(&state);
        let capacity = magazine_capacity(1 << 20, 8);
        for i in 0..capacity {
            let buffer = vec![i as u8; 4096];
            if let Err(buffer) = cache.put(8, buffer) {
                cache.put_slow(&state, 8, buffer);
            }
        }
        assert_eq!(state.partitions.len(8), 0, "all fit in the magazine");
        let one_more = vec![0xff; 4096];
        let one_more = cache.put(8, one_more).expect_err("full");
        cache.put_slow(&state, 8, one_more);
        assert_eq!(
            state.partitions.len(8),
            batch(capacity),
            "one batch moved down"
        );
        assert_eq!(cache.take(8).unwrap()[0], 0xff, "the newest stays on top");
        let stats = state.totals().stats();
        assert_eq!(stats.returned, capacity as u64 + 1);
        assert_eq!(stats.held_buffers, capacity as u64, "moves are not flows");
    }

    #[test]
    fn refills_start_small_and_grow_to_half_a_magazine() {
        let state = state(1 << 20, &[64]);
        for i in 0..64 {
            state.keep(8, vec![i; 4096]);
        }
        let cache = ThreadCache::new();
        cache.open(&state);
        let limit = magazine_capacity(1 << 20, 8);
        // Each refill takes half the (doubled) magazine: 1, 1, 2, 4, 8, 16, 16, ...
        let mut taken = Vec::new();
        for _ in 0..7 {
            let before = state.partitions.len(8);
            let first = cache
                .refill(&state, 8)
                .expect("the partitions have buffers");
            assert_eq!(
                first[0] as usize,
                before - 1,
                "the partitions' newest comes out"
            );
            taken.push(before - state.partitions.len(8));
            while cache.take(8).is_some() {}
        }
        assert_eq!(taken, [1, 1, 2, 4, 8, limit / 2, limit / 2]);
        let stats = state.totals().stats();
        assert_eq!(stats.rented, 64 - state.partitions.len(8) as u64);
        assert_eq!(stats.hits(), stats.rented, "every rent a hit");
        assert_eq!(stats.held_buffers, state.partitions.len(8) as u64);
    }

    #[test]
    fn the_budget_bounds_what_a_thread_holds_whatever_the_sizes() {
        let budget = 64 << 10;
        let state = state(budget, &[1024]);
        let cache = ThreadCache::new();
        cache.open(&state);
        for bucket in 0..12 {
            for _ in 0..40 {
                let buffer = Vec::with_capacity(bucket_len(bucket));
                if let Err(buffer) = cache.put(bucket, buffer) {
                    cache.put_slow(&state, bucket, buffer);
                }
                let magazines = cache.magazines.borrow();
                let held: usize = (0..MAX_BUCKETS)
                    .map(|b| magazines.buffers[b].len() * bucket_len(b))
                    .sum();
                assert!(held <= magazines.reserved && magazines.reserved <= budget);
            }
        }
        let stats = state.totals().stats();
        assert_eq!(stats.returned, 12 * 40, "every buffer kept somewhere");
    }

    /// Returns `buffer` of `bucket` as `return_` does: the fast path, else the slow path.
    fn give(cache: &ThreadCache, state: &PoolState, bucket: usize, buffer: Vec<u8>) {
        if let Err(buffer) = cache.put(bucket, buffer) {
            cache.put_slow(state, bucket, buffer);
        }
    }

    #[test]
    fn the_budget_goes_to_sizes_in_use_releasing_idle_ones_largest_first() {
        let budget = 16 << 10;
        let state = state(budget, &[8]);
        let cache = ThreadCache::new();
        cache.open(&state);
        for _ in 0..2 {
            give(&cache, &state, 8, vec![8; 4096]); // 4 KiB: a magazine of 2, 8 KiB reserved
        }
        for _ in 0..4 {
            give(&cache, &state, 7, vec![7; 2048]); // 2 KiB: grows to 4 within what is free
        }
        assert_eq!(
            cache.magazines.borrow().reserved,
            budget,
            "the budget is spent"
        );
        // A new size finds the budget spent. Both others were used since the start: neither
        // is idle yet, so the new size skips the tier for now.
        give(&cache, &state, 6, vec![6; 1024]);
        assert_eq!(state.partitions.len(6), 1, "1 KiB went to the partitions");
        assert_eq!(cache.magazines.borrow().buffers[6].capacity(), 0);
        // The 2 KiB size is used again, the 4 KiB one is not: at the next decision the 4 KiB
        // magazine is idle and is released to the partitions.
        let two = cache.take(7).expect("a 2 KiB buffer");
        give(&cache, &state, 7, two);
        give(&cache, &state, 6, vec![6; 1024]);
        let magazines = cache.magazines.borrow();
        assert_eq!(state.partitions.len(8), 2, "both 4 KiB buffers moved down");
        assert_eq!(magazines.buffers[8].capacity(), 0, "and its storage freed");
        assert_eq!(
            magazines.buffers[7].len(),
            4,
            "the 2 KiB magazine is untouched"
        );
        assert_eq!(magazines.buffers[6].len(), 1, "1 KiB has its first slot");
        assert!(magazines.reserved <= budget);
        drop(magazines);
        let stats = state.totals().stats();
        assert_eq!(
            (stats.returned, stats.held_buffers, stats.dropped_full),
            (9, 8, 0)
        );
    }

    #[test]
    fn a_size_used_once_long_ago_gives_its_budget_to_the_one_in_use() {
        // What `nested_4` met: a thread that once used every size, then holds four 4 KiB
        // buffers at once, must get a 4 KiB magazine of four.
        let budget = 128 << 10;
        let state = state(budget, &[64]);
        let cache = ThreadCache::new();
        cache.open(&state);
        for bucket in 0..=12 {
            give(&cache, &state, bucket, vec![0; bucket_len(bucket)]);
        }
        for _ in 0..4 {
            let held: Vec<_> = (0..4)
                .map(|_| match cache.take(8) {
                    Some(buffer) => buffer,
                    None => cache.refill(&state, 8).unwrap_or_else(|| vec![0; 4096]),
                })
                .collect();
            for buffer in held {
                give(&cache, &state, 8, buffer);
            }
        }
        let magazines = cache.magazines.borrow();
        assert!(
            magazines.buffers[8].capacity() >= 4,
            "4 KiB grew to hold four"
        );
        assert_eq!(
            magazines.buffers[12].capacity(),
            0,
            "the idle 64 KiB magazine went"
        );
        assert!(magazines.reserved <= budget);
    }

    #[test]
    fn sizes_used_together_share_the_budget_without_releasing_each_other() {
        let budget = 16 << 10;
        let state = state(budget, &[64]);
        let cache = ThreadCache::new();
        cache.open(&state);
        // 4 KiB and 2 KiB, two of each held at once: both magazines grow until they reach
        // their limits or the budget is spent, and then stay as they are.
        for _ in 0..50 {
            let held: Vec<_> = [8, 8, 7, 7]
                .into_iter()
                .map(|bucket| {
                    (
                        bucket,
                        cache
                            .take(bucket)
                            .unwrap_or_else(|| vec![0; bucket_len(bucket)]),
                    )
                })
                .collect();
            for (bucket, buffer) in held {
                give(&cache, &state, bucket, buffer);
            }
        }
        assert_eq!(
            state.partitions.len(8) + state.partitions.len(7),
            0,
            "nothing was ever moved down"
        );
        assert!(cache.magazines.borrow().reserved <= budget);
    }

    #[test]
    fn closing_moves_everything_down_and_frees_the_storage() {
        let state = state(1 << 20, &[2]);
        let cache = ThreadCache::new();
        cache.open(&state);
        for _ in 0..3 {
            let buffer = vec![1; 256];
            if let Err(buffer) = cache.put(4, buffer) {
                cache.put_slow(&state, 4, buffer);
            }
        }
        cache.close(&state);
        assert!(!cache.is_open());
        assert_eq!(state.partitions.len(4), 2);
        let stats = state.totals().stats();
        assert_eq!(
            (stats.held_buffers, stats.dropped_full),
            (2, 1),
            "one found no room"
        );
        assert_eq!(cache.magazines.borrow().buffers[4].capacity(), 0);
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
        let state = PoolState::new(
            Partitions::new(4, bounds.into(), None),
            Listeners::new(Vec::new()),
            1 << 10,
            None,
        );
        Box::leak(Box::new(state))
    }

    /// Waits until `threads` finished threads' thread-locals are destroyed: loom's `join`
    /// returns before that (std's does not), and the real flush checks the ledger in last.
    fn wait_for_exit_flush(state: &PoolState, threads: usize) {
        while state.accounting.threads().checked_in() < threads {
            thread::yield_now();
        }
    }

    /// Caches `buffer` in this thread's real shared-tier magazine, as `return_` does.
    fn cache(state: &'static PoolState, bucket: usize, buffer: Vec<u8>) {
        if let Err(buffer) = shared::put(bucket, buffer) {
            shared::put_slow(state, bucket, buffer);
        }
    }

    /// A thread caches a buffer in the real shared-tier thread-local and exits; its real
    /// destructor flushes into the partitions while another thread rents from them. The
    /// buffer is rented exactly once or still pooled, and the counts are exact.
    #[test]
    fn the_real_thread_exit_flush_races_a_rent() {
        loom::model(|| {
            let state = leaked_state(&[1, 1]);
            let exiting = thread::spawn(move || cache(state, 3, vec![7; 4]));
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
            let exiting = thread::spawn(move || cache(state, 2, vec![1; 3]));
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

    /// A thread refills its magazine with a batch while another thread's exit flush moves its
    /// magazine into the same partition: every buffer ends up rented once, cached or pooled,
    /// never lost or duplicated.
    #[test]
    fn a_batch_refill_races_an_exit_flush() {
        loom::model(|| {
            let state = leaked_state(&[4]);
            state.keep(2, vec![0; 3]);
            let exiting = thread::spawn(move || {
                cache(state, 2, vec![1; 3]);
                cache(state, 2, vec![2; 3]);
            });
            let rented = shared::take(2).or_else(|| shared::refill(state, 2));
            exiting.join().unwrap();
            wait_for_exit_flush(state, 1);
            let mut seen: Vec<u8> = rented.into_iter().map(|buffer| buffer[0]).collect();
            let mine = std::iter::from_fn(|| shared::take(2)).count() as u64;
            seen.extend(std::iter::from_fn(|| state.take(2)).map(|buffer| buffer[0]));
            assert_eq!(seen.len() as u64 + mine, 3, "each buffer exactly once");
            let stats = state.totals().stats();
            assert_eq!(stats.held_buffers, 0, "all rented back: {stats:?}");
        });
    }
}
