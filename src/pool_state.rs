//! `PoolState`: what every thread of one pool shares below its thread cache (the partitions,
//! the accounting, the listeners and the trimming settings), and the operations that touch
//! more than one of them.
//!
//! Each operation here applies the counting rule of `accounting.rs` and raises the matching
//! [`PoolEvent`] after the buffer has moved, with no lock held.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::accounting::{Accounting, Flow, Totals, UnpooledFlow};
use crate::bucket::bucket_len;
use crate::event::{AllocReason, DropReason, Listeners, PoolEvent, TrimReason};
use crate::fill;
use crate::partitions::{Moved, Partitions, Refusal};
use crate::pressure::MemoryPressure;
use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crate::sys::{self, current_cpu};
use crate::thread_cache::magazine_capacity;
use crate::trimmer;

/// How many buffers the trimmer (and `trim()`) moves out of the partitions per lock: its
/// scratch space, allocated once.
pub(crate) const SCRATCH: usize = 64;

/// How a slow path that may run where a panic must not escape raises its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A rent, a return or `trim()`: a listener's panic reaches its caller.
    User,
    /// A thread's exit flush (a panic would abort the process) or the trimmer thread (a panic
    /// would end it): a listener's panic is caught.
    Contained,
}

/// A pool-wide memory-pressure source, from the builder.
pub(crate) type PressureFn = Box<dyn Fn() -> MemoryPressure + Send + Sync>;

/// When the trimmer releases a pool's idle buffers.
pub(crate) struct Idle {
    /// Buffers that sat in the partitions this long are released.
    pub(crate) timeout: Duration,
    /// Replaces the process's memory pressure for this pool.
    pub(crate) pressure: Option<PressureFn>,
}

/// What one trimmer tick did to one pool.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tick {
    /// Bytes released.
    pub(crate) released: usize,
    /// When the pool wants its next tick; `None` when its partitions hold nothing.
    pub(crate) next: Option<Duration>,
}

pub(crate) struct PoolState {
    /// The pool's name ([`ArrayPoolBuilder::name`](crate::ArrayPoolBuilder::name)): the `pool`
    /// field of its `tracing` events and the `pool` label of its metrics.
    pub(crate) name: &'static str,
    pub(crate) partitions: Partitions,
    pub(crate) accounting: Accounting,
    pub(crate) listeners: Listeners,
    /// The most bytes one thread's cache holds for this pool (`thread_cache.rs`); 0 for a pool
    /// without a thread tier.
    pub(crate) thread_cache_bytes: usize,
    /// The buckets below this one have a magazine in each thread's cache; those from it on
    /// (not even one buffer fits in half the budget) skip the thread tier.
    cached_buckets: usize,
    /// Idle trimming; `None`: the trimmer never looks at this pool.
    pub(crate) idle: Option<Idle>,
    /// Whether this pool is in the trimmer's registry.
    pub(crate) registered: AtomicBool,
    /// Bumped by every `trim()`: a thread cache that sees it change (on a slow path) releases
    /// what it holds.
    pub(crate) trim_epoch: AtomicU64,
    /// This state, for the trimmer's registry (which holds pools weakly).
    me: Weak<PoolState>,
}

/// The name of a pool built without [`ArrayPoolBuilder::name`](crate::ArrayPoolBuilder::name).
pub(crate) const DEFAULT_NAME: &str = "custom";

impl PoolState {
    /// A pool state called [`DEFAULT_NAME`], for the unit tests.
    #[cfg(test)]
    pub(crate) fn new(
        partitions: Partitions,
        listeners: Listeners,
        thread_cache_bytes: usize,
        idle: Option<Idle>,
    ) -> Arc<Self> {
        Self::named(
            DEFAULT_NAME,
            partitions,
            listeners,
            thread_cache_bytes,
            idle,
        )
    }

    /// [`PoolState::new`], for a pool called `name`.
    pub(crate) fn named(
        name: &'static str,
        partitions: Partitions,
        listeners: Listeners,
        thread_cache_bytes: usize,
        idle: Option<Idle>,
    ) -> Arc<Self> {
        let cached_buckets = (0..partitions.buckets())
            .take_while(|&bucket| magazine_capacity(thread_cache_bytes, bucket) > 0)
            .count();
        Arc::new_cyclic(|me| Self {
            name,
            accounting: Accounting::new(partitions.count()),
            cached_buckets,
            partitions,
            listeners,
            thread_cache_bytes,
            idle,
            registered: AtomicBool::new(false),
            trim_epoch: AtomicU64::new(0),
            me: me.clone(),
        })
    }

    /// A weak handle on this state.
    pub(crate) fn weak(&self) -> Weak<PoolState> {
        self.me.clone()
    }

    /// Whether threads' caches hold buffers of `bucket`: a rent or return of a size they do not
    /// goes straight to the partitions, past the cache's slow path.
    #[inline]
    pub(crate) fn caches(&self, bucket: usize) -> bool {
        bucket < self.cached_buckets
    }

    /// Whether the trimmer releases this pool's idle buffers.
    pub(crate) fn trimmed_by_clock(&self) -> bool {
        self.idle.is_some()
    }

    /// Pops a buffer of `bucket` from the partitions for a renter, home first (a
    /// [`Flow::Hit`], counted by the stack).
    #[inline]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        self.partitions.pop(bucket, current_cpu())
    }

    /// Keeps a renter's returned buffer of `bucket` in the partitions ([`Flow::Kept`], counted
    /// by the stack), or frees it if they are full or the budget is spent ([`Flow::Refused`]).
    #[inline]
    pub(crate) fn keep(&self, bucket: usize, buffer: Vec<u8>) {
        let home = current_cpu();
        match self.partitions.push(bucket, home, buffer) {
            Ok(()) => trimmer::noticed(self),
            Err((refused, why)) => {
                drop(refused);
                self.note_dropped(home, bucket, Flow::Refused, why, 1, Caller::User);
            }
        }
    }

    /// Moves the `count` oldest buffers at the front of a thread cache's magazine `from` down
    /// to the partitions (no flow); those that find no room stay at its front, for the caller
    /// to free and report.
    pub(crate) fn move_down(&self, bucket: usize, from: &mut Vec<Vec<u8>>, count: usize) -> Moved {
        let moved = self
            .partitions
            .push_batch(bucket, current_cpu(), from, count);
        if moved.moved > 0 {
            trimmer::noticed(self);
        }
        moved
    }

    /// A fresh zeroed buffer of `bucket` with length `n`, for a rent the pool could not serve
    /// ([`Flow::Allocated`]).
    #[inline(never)]
    pub(crate) fn allocate(&self, bucket: usize, n: usize) -> Vec<u8> {
        let buffer = fill::fresh(bucket_len(bucket), n);
        self.note_allocated(bucket, n);
        buffer
    }

    /// A fresh empty buffer of `bucket`'s capacity, for a `rent_with_capacity(n)` the pool
    /// could not serve ([`Flow::Allocated`]).
    #[inline(never)]
    pub(crate) fn allocate_empty(&self, bucket: usize, n: usize) -> Vec<u8> {
        let buffer = fill::fresh(bucket_len(bucket), 0);
        self.note_allocated(bucket, n);
        buffer
    }

    /// Counts and reports a fresh buffer of `bucket` made for a rent of `n` bytes.
    pub(crate) fn note_allocated(&self, bucket: usize, n: usize) {
        self.accounting
            .record(current_cpu(), bucket, Flow::Allocated, 1);
        self.raise(Caller::User, || {
            PoolEvent::allocated(n, bucket_len(bucket), AllocReason::PoolExhausted)
        });
    }

    /// Counts and reports a fresh buffer of exactly `n` bytes, above the pool's maximum.
    pub(crate) fn note_allocated_over_max(&self, n: usize) {
        self.accounting
            .record_unpooled(current_cpu(), UnpooledFlow::AllocatedOverMax);
        self.raise(Caller::User, || {
            PoolEvent::allocated(n, n, AllocReason::OverMaxLength)
        });
    }

    /// Frees a returned buffer whose capacity is none of the pool's bucket sizes.
    #[inline(never)]
    pub(crate) fn drop_foreign(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        drop(buffer);
        self.accounting
            .record_unpooled(current_cpu(), UnpooledFlow::Foreign);
        self.raise(Caller::User, || {
            PoolEvent::dropped(capacity, DropReason::NotBucketSize)
        });
    }

    /// Counts and reports a returned `BytesMut` of `capacity` whose buffer other handles still
    /// share, so that it never reached the pool.
    #[cfg(feature = "bytes")]
    #[cold]
    pub(crate) fn note_still_shared(&self, capacity: usize) {
        self.accounting
            .record_unpooled(current_cpu(), UnpooledFlow::StillShared);
        self.raise(Caller::User, || {
            PoolEvent::dropped(capacity, DropReason::StillShared)
        });
    }

    /// Counts and reports `count` buffers of `bucket` freed for want of room or budget: a
    /// return refused ([`Flow::Refused`]) or a held buffer moved down to full partitions
    /// ([`Flow::Evicted`]); one event each.
    #[cold]
    pub(crate) fn note_dropped(
        &self,
        home: usize,
        bucket: usize,
        flow: Flow,
        why: Refusal,
        count: usize,
        caller: Caller,
    ) {
        if count == 0 {
            return;
        }
        self.accounting.record(home, bucket, flow, count as u64);
        let reason = match why {
            Refusal::Full => DropReason::Full,
            Refusal::OverBudget => DropReason::OverBudget,
        };
        for _ in 0..count {
            self.raise(caller, || PoolEvent::dropped(bucket_len(bucket), reason));
        }
    }

    /// Counts and reports `count` buffers of `bucket` that a thread cache released by trimming
    /// (the partitions' own trimmed buffers are counted by their stacks).
    #[cold]
    pub(crate) fn note_cache_trimmed(&self, bucket: usize, count: usize, caller: Caller) {
        if count == 0 {
            return;
        }
        self.accounting
            .record(current_cpu(), bucket, Flow::Trimmed, count as u64);
        for _ in 0..count {
            self.raise(caller, || {
                PoolEvent::trimmed(bucket_len(bucket), TrimReason::Explicit)
            });
        }
    }

    /// Every event of the pool goes through here: to the listeners and, with the `tracing`
    /// feature, to `tracing` (`tracing_events.rs`), where a panic is contained as a
    /// listener's is.
    fn raise(&self, caller: Caller, event: impl FnOnce() -> PoolEvent) {
        #[cfg(feature = "tracing")]
        let event = {
            let event = event();
            crate::tracing_events::emit(self.name, &event, caller);
            move || event
        };
        match caller {
            Caller::User => self.listeners.raise(event),
            Caller::Contained => self.listeners.raise_contained(event),
        }
    }

    /// `trim()`: releases every buffer in the partitions, tells every thread cache (through
    /// the trim epoch) to release its own at its next slow path, and asks the allocator to give
    /// freed memory back to the system. The caller releases its own thread's cache.
    pub(crate) fn trim(&self) -> usize {
        self.trim_epoch.fetch_add(1, Ordering::Relaxed);
        let mut scratch = Vec::with_capacity(SCRATCH);
        let released = self.release_partitions(
            trimmer::now_ms(),
            u64::MAX,
            TrimReason::Explicit,
            Caller::User,
            &mut scratch,
        );
        if released > 0 {
            sys::release_free_memory();
        }
        released
    }

    /// One trimmer tick at time `now` (ms on the trimmer's clock), with `system` the process's
    /// memory pressure: releases what has been idle too long, or everything under `High`
    /// pressure. `scratch` must have room for [`SCRATCH`] buffers.
    pub(crate) fn idle_tick(
        &self,
        now: u64,
        system: MemoryPressure,
        scratch: &mut Vec<Vec<u8>>,
    ) -> Tick {
        let Some(idle) = &self.idle else {
            return Tick {
                released: 0,
                next: None,
            };
        };
        let pressure = match &idle.pressure {
            // A source that panics (on the trimmer's thread) counts as no pressure.
            Some(source) => {
                panic::catch_unwind(AssertUnwindSafe(source)).unwrap_or(MemoryPressure::Low)
            }
            None => system,
        };
        let timeout = match pressure {
            MemoryPressure::Medium => idle.timeout / 4,
            _ => idle.timeout,
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let (cutoff, reason) = match pressure {
            MemoryPressure::High => (u64::MAX, TrimReason::Pressure),
            _ => (now.saturating_sub(timeout_ms), TrimReason::Idle),
        };
        let released = self.release_partitions(now, cutoff, reason, Caller::Contained, scratch);
        let next = (!self.partitions.is_empty()).then_some(timeout / 4);
        Tick { released, next }
    }

    /// Releases the buffers that have sat in the partitions since `cutoff` or before (all of
    /// them with `u64::MAX`), oldest first, `SCRATCH` per lock; frees them with no lock held
    /// and reports each. Returns the bytes released.
    fn release_partitions(
        &self,
        now: u64,
        cutoff: u64,
        reason: TrimReason,
        caller: Caller,
        scratch: &mut Vec<Vec<u8>>,
    ) -> usize {
        let mut released = 0;
        for bucket in 0..self.partitions.buckets() {
            loop {
                scratch.clear();
                let count = self
                    .partitions
                    .release_cold(bucket, now, cutoff, scratch, SCRATCH);
                scratch.clear(); // frees them: no lock is held here
                released += count * bucket_len(bucket);
                for _ in 0..count {
                    self.raise(caller, || PoolEvent::trimmed(bucket_len(bucket), reason));
                }
                if count < SCRATCH {
                    break;
                }
            }
        }
        released
    }

    /// Every count of the pool added up.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.accounting.sum_into(&mut totals);
        self.partitions.sum_into(&mut totals);
        totals
    }
}

impl Drop for PoolState {
    fn drop(&mut self) {
        if self.registered.load(Ordering::Relaxed) {
            trimmer::forget(&self.me);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<PoolEvent>>>;

    /// A pool of 4 buckets, one partition of 16, without a thread tier, trimmed after
    /// `timeout`, under `pressure` if given; and the events it raises.
    fn idle_pool(timeout: Duration, pressure: Option<PressureFn>) -> (Arc<PoolState>, Seen) {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let listener: crate::event::ListenerFn =
            Arc::new(move |event: &PoolEvent| sink.lock().unwrap().push(*event));
        let state = PoolState::new(
            Partitions::new(4, vec![16].into(), None),
            Listeners::new(vec![listener]),
            0,
            Some(Idle { timeout, pressure }),
        );
        keep_the_trimmer_away(&state);
        (state, seen)
    }

    /// Marks `state` as registered with the trimmer, so that it never is: these tests drive
    /// its ticks with their own clock, and the real trimmer thread must not tick it too.
    fn keep_the_trimmer_away(state: &PoolState) {
        state.registered.store(true, Ordering::Relaxed);
    }

    fn tick(state: &PoolState, now: u64, system: MemoryPressure) -> Tick {
        let mut scratch = Vec::with_capacity(SCRATCH);
        state.idle_tick(now, system, &mut scratch)
    }

    #[test]
    fn an_idle_tick_releases_only_what_outlived_the_timeout() {
        let (state, seen) = idle_pool(Duration::from_millis(1000), None);
        for _ in 0..3 {
            state.keep(2, vec![0; 64]);
        }
        let low = MemoryPressure::Low;
        let quarter = Some(Duration::from_millis(250));
        assert_eq!(
            tick(&state, 100, low),
            Tick {
                released: 0,
                next: quarter
            }
        );
        state.keep(2, vec![0; 64]);
        state.keep(3, vec![0; 128]);
        assert_eq!(tick(&state, 600, low).released, 0, "none is 1000 ms old");
        assert_eq!(tick(&state, 1099, low).released, 0, "1 ms short");
        assert_eq!(
            tick(&state, 1100, low),
            Tick {
                released: 3 * 64,
                next: quarter
            },
            "the three first seen at 100, not the two first seen at 600"
        );
        assert_eq!(
            tick(&state, 1600, low),
            Tick {
                released: 64 + 128,
                next: None
            }
        );
        assert!(state.partitions.is_empty());
        let stats = state.totals().stats();
        assert_eq!(
            (stats.trimmed, stats.held_buffers, stats.returned),
            (5, 0, 5)
        );
        let events = seen.lock().unwrap();
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| matches!(
            e,
            PoolEvent::Trimmed {
                reason: TrimReason::Idle,
                ..
            }
        )));
    }

    #[test]
    fn a_buffer_rented_and_returned_between_ticks_starts_its_wait_again() {
        let (state, _) = idle_pool(Duration::from_millis(1000), None);
        state.keep(1, vec![0; 32]);
        tick(&state, 100, MemoryPressure::Low);
        let buffer = state.take(1).unwrap();
        state.keep(1, buffer);
        tick(&state, 900, MemoryPressure::Low);
        assert_eq!(
            tick(&state, 1100, MemoryPressure::Low).released,
            0,
            "in use at 900"
        );
        assert_eq!(tick(&state, 1900, MemoryPressure::Low).released, 32);
    }

    #[test]
    fn pressure_shortens_the_timeout_or_releases_everything() {
        let (state, seen) = idle_pool(Duration::from_millis(1000), None);
        state.keep(0, vec![0; 16]);
        state.keep(1, vec![0; 32]);
        tick(&state, 100, MemoryPressure::Low);
        assert_eq!(
            tick(&state, 350, MemoryPressure::Medium).released,
            16 + 32,
            "Medium: a quarter of the timeout"
        );
        state.keep(3, vec![0; 128]);
        assert_eq!(
            tick(&state, 351, MemoryPressure::High),
            Tick {
                released: 128,
                next: None
            },
            "High: everything, whatever its age"
        );
        let reasons: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                PoolEvent::Trimmed { reason, .. } => *reason,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [TrimReason::Idle, TrimReason::Idle, TrimReason::Pressure]
        );
    }

    #[test]
    fn a_pools_own_pressure_source_replaces_the_systems_and_may_panic() {
        let high: PressureFn = Box::new(|| MemoryPressure::High);
        let (state, _) = idle_pool(Duration::from_secs(3600), Some(high));
        state.keep(2, vec![0; 64]);
        assert_eq!(
            tick(&state, 1, MemoryPressure::Low).released,
            64,
            "its source says High"
        );

        let panics: PressureFn = Box::new(|| panic!("a broken pressure source"));
        let (state, _) = idle_pool(Duration::from_secs(3600), Some(panics));
        state.keep(2, vec![0; 64]);
        assert_eq!(
            tick(&state, 1, MemoryPressure::High).released,
            0,
            "a panicking source counts as Low, not as the system's High"
        );
    }

    #[test]
    fn a_listener_that_panics_in_a_tick_is_contained() {
        let listener: crate::event::ListenerFn = Arc::new(|_: &PoolEvent| panic!("listener"));
        let state = PoolState::new(
            Partitions::new(4, vec![16].into(), None),
            Listeners::new(vec![listener]),
            0,
            Some(Idle {
                timeout: Duration::ZERO,
                pressure: None,
            }),
        );
        keep_the_trimmer_away(&state);
        state.keep(0, vec![0; 16]);
        state.keep(0, vec![0; 16]);
        assert_eq!(tick(&state, 5, MemoryPressure::Low).released, 32);
        assert_eq!(state.totals().stats().trimmed, 2);
    }

    #[test]
    fn trim_releases_everything_in_batches_and_bumps_the_epoch() {
        let state = PoolState::new(
            Partitions::new(2, vec![100, 100].into(), None),
            Listeners::new(Vec::new()),
            0,
            None,
        );
        for i in 0..150 {
            state.partitions.push(1, i % 2, vec![0; 32]).unwrap();
        }
        assert_eq!(state.trim(), 150 * 32, "more than one scratch's worth");
        assert!(state.partitions.is_empty());
        assert_eq!(state.trim_epoch.load(Ordering::Relaxed), 1);
        assert_eq!(state.trim(), 0);
    }

    #[test]
    fn a_pool_without_an_idle_timeout_is_never_ticked_away() {
        let state = PoolState::new(
            Partitions::new(2, vec![4].into(), None),
            Listeners::new(Vec::new()),
            0,
            None,
        );
        state.keep(1, vec![0; 32]);
        assert_eq!(
            tick(&state, u64::MAX, MemoryPressure::High),
            Tick {
                released: 0,
                next: None
            }
        );
        assert_eq!(state.partitions.len(1), 1);
    }
}
