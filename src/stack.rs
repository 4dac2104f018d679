//! `LockedStack`: a bounded LIFO of buffers behind its own cache-padded lock.
//!
//! Why a lock and not a lock-free queue: a stack is one partition's, and threads start at the
//! partition of the CPU they run on, so its lock is almost always uncontended, and an
//! uncontended futex lock/unlock is two atomic operations on a line this core already owns. A
//! LIFO hands back the most recently returned (cache-warm) buffer, which a FIFO ring such as
//! `crossbeam_queue::ArrayQueue` cannot. .NET's `SharedArrayPool` makes the same choice (one
//! `Monitor` per partition); the padding, which .NET never had, keeps two CPUs' stacks off
//! each other's cache lines.

use crossbeam_utils::CachePadded;

use crate::accounting::{Flow, Totals};
use crate::ages::Ages;
use crate::sync::{lock, Mutex};

/// A bounded stack of buffers of one size class. All buffers in one stack have the same
/// capacity; the stack does not check that, the pool does before pushing.
///
/// It also counts the rents it served and the returns it kept (the partitions' share of the
/// pool's flows, `accounting.rs`), under the lock the operation holds anyway.
pub(crate) struct LockedStack {
    state: CachePadded<Mutex<StackState>>,
    bound: usize,
}

struct StackState {
    /// Grows on demand up to `bound` (with `try_reserve`, so a push never panics or aborts):
    /// a pool configured for a million buffers per bucket costs nothing until it holds them.
    buffers: Vec<Vec<u8>>,
    /// [`Flow::Hit`]s: buffers popped for a renter.
    hits: u64,
    /// [`Flow::Kept`]s: buffers pushed by a renter's return (not those moved down in a batch
    /// from a thread cache, which the cache counted when it kept them).
    kept: u64,
    /// [`Flow::Trimmed`]s: buffers the trimmer or `trim()` released.
    trimmed: u64,
    /// How long the buffers have been here, for idle trimming.
    ages: Ages,
}

/// Slots every stack reserves when its bucket is first used, so that a thread which moves to
/// another CPU does not allocate on its first return there: the zero-allocation promise would
/// otherwise depend on the scheduler (a warm-up that never ran on that CPU).
const FIRST_SLOTS: usize = 4;

impl LockedStack {
    /// An empty stack that will hold at most `bound` buffers, with room for the first few.
    pub(crate) fn new(bound: usize) -> Self {
        let mut buffers = Vec::new();
        // Fallible, like every growth of the slot vector: without room it grows on demand.
        let _ = buffers.try_reserve_exact(bound.min(FIRST_SLOTS));
        let state = StackState {
            buffers,
            hits: 0,
            kept: 0,
            trimmed: 0,
            ages: Ages::default(),
        };
        Self {
            state: CachePadded::new(Mutex::new(state)),
            bound,
        }
    }

    /// Pushes a renter's returned `buffer` (a [`Flow::Kept`]), or hands it back when the stack is
    /// full (or, for a stack that has never held this many, when its slot vector cannot grow).
    #[inline]
    pub(crate) fn try_push(&self, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut state = lock(&self.state);
        let len = state.buffers.len();
        if len >= self.bound || (len == state.buffers.capacity() && !state.grow(self.bound)) {
            return Err(buffer);
        }
        state.buffers.push(buffer);
        state.kept += 1;
        Ok(())
    }

    /// Pops the most recently pushed buffer for a renter.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        let buffer = state.buffers.pop()?;
        state.hits += 1;
        let len = state.buffers.len();
        state.ages.popped_to(len);
        Some(buffer)
    }

    /// Moves up to `max` of the most recently pushed buffers onto the end of `into`, in the
    /// order they were pushed (so the newest ends on top), under one lock; returns how many.
    /// A refill of a thread cache: no flow, the buffers stay in the pool.
    ///
    /// `into` must have room for `max` more without growing.
    pub(crate) fn pop_batch(&self, into: &mut Vec<Vec<u8>>, max: usize) -> usize {
        debug_assert!(into.capacity() - into.len() >= max);
        let mut state = lock(&self.state);
        let len = state.buffers.len();
        let count = max.min(len);
        into.extend(state.buffers.drain(len - count..));
        state.ages.popped_to(len - count);
        count
    }

    /// Moves up to `count` buffers from the front of `from` (its oldest) onto this stack, under
    /// one lock, as far as the bound allows; returns how many moved. A flush from a thread
    /// cache: no flow, the buffers stay in the pool.
    pub(crate) fn push_batch(&self, from: &mut Vec<Vec<u8>>, count: usize) -> usize {
        let mut state = lock(&self.state);
        let len = state.buffers.len();
        let mut room = self.bound.saturating_sub(len).min(count);
        let spare = state.buffers.capacity() - len;
        if spare < room && !state.grow_for(room, self.bound) {
            room = spare;
        }
        state.buffers.extend(from.drain(..room));
        room
    }

    /// Releases (moves into `into`, which must have room for `max` more without growing) up
    /// to `max` of the oldest buffers that have sat here since `cutoff` or before, after
    /// noting that every buffer here now is here at `now`; returns how many. With `cutoff` at
    /// `u64::MAX`, releases the oldest `max` whatever their age. Counted as [`Flow::Trimmed`].
    ///
    /// The lock is held only while the buffers move; the caller frees them after.
    pub(crate) fn release_cold(
        &self,
        now: u64,
        cutoff: u64,
        into: &mut Vec<Vec<u8>>,
        max: usize,
    ) -> usize {
        debug_assert!(into.capacity() - into.len() >= max);
        let mut state = lock(&self.state);
        let len = state.buffers.len();
        state.ages.sight(len, now);
        let cold = if cutoff == u64::MAX {
            len
        } else {
            state.ages.seen_by(cutoff)
        };
        let count = cold.min(max);
        into.extend(state.buffers.drain(..count));
        state.ages.removed_bottom(count);
        state.trimmed += count as u64;
        count
    }

    /// Whether the stack holds no buffer.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.state).buffers.is_empty()
    }

    /// Adds this stack's counts, as flows of `bucket`, into `totals`.
    pub(crate) fn sum_into(&self, bucket: usize, totals: &mut Totals) {
        let state = lock(&self.state);
        totals.add(bucket, Flow::Hit, state.hits);
        totals.add(bucket, Flow::Kept, state.kept);
        totals.add(bucket, Flow::Trimmed, state.trimmed);
    }

    /// How many buffers the stack holds now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).buffers.len()
    }
}

impl StackState {
    /// Makes room for one more slot, doubling as `Vec` does but never past `bound`; `false`
    /// when the allocator refuses.
    #[cold]
    fn grow(&mut self, bound: usize) -> bool {
        self.grow_for(1, bound)
    }

    /// Makes room for `more` slots (`len + more <= bound`), doubling as `Vec` does but never
    /// past `bound`; `false` when the allocator refuses.
    #[cold]
    fn grow_for(&mut self, more: usize, bound: usize) -> bool {
        let len = self.buffers.len();
        debug_assert!(len + more <= bound);
        let target = len.saturating_mul(2).max(len + more).max(4).min(bound);
        self.buffers.try_reserve_exact(target - len).is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pops_in_lifo_order_and_refuses_when_full() {
        let stack = LockedStack::new(2);
        assert!(stack.try_push(vec![1]).is_ok());
        assert!(stack.try_push(vec![2]).is_ok());
        assert_eq!(stack.try_push(vec![3]), Err(vec![3]));
        assert_eq!(stack.len(), 2);
        assert_eq!(stack.pop(), Some(vec![2]));
        assert_eq!(stack.pop(), Some(vec![1]));
        assert_eq!(stack.pop(), None);
    }

    #[test]
    fn counts_rents_and_returns_but_not_batch_moves() {
        let stack = LockedStack::new(4);
        stack.try_push(vec![1]).unwrap();
        stack.push_batch(&mut vec![vec![2]], 1);
        assert!(stack.pop().is_some());
        let counted = |stack: &LockedStack| {
            let mut totals = Totals::default();
            stack.sum_into(0, &mut totals);
            let stats = totals.stats();
            (stats.rented, stats.returned)
        };
        assert_eq!(counted(&stack), (1, 1), "one rent served, one return kept");
        stack.try_push(vec![3]).unwrap();
        stack.try_push(vec![4]).unwrap();
        stack.try_push(vec![5]).unwrap();
        assert!(stack.try_push(vec![6]).is_err());
        assert_eq!(counted(&stack), (1, 4), "a refused push is not kept");
    }

    /// Regression (review B2): a bound far beyond any memory used to reserve its whole slot
    /// vector at the first push, which panicked ("capacity overflow") or aborted.
    #[test]
    fn a_huge_bound_reserves_only_what_is_held() {
        for bound in [usize::MAX, 1 << 40] {
            let stack = LockedStack::new(bound);
            for i in 0..100 {
                stack.try_push(vec![i]).unwrap();
            }
            assert_eq!(stack.len(), 100);
            assert!(lock(&stack.state).buffers.capacity() < 1000);
        }
    }

    #[test]
    fn batches_move_the_newest_up_and_the_oldest_down() {
        let stack = LockedStack::new(5);
        let mut magazine: Vec<Vec<u8>> = vec![vec![1], vec![2], vec![3]];
        assert_eq!(stack.push_batch(&mut magazine, 2), 2, "the two oldest");
        assert_eq!(magazine, [vec![3]]);
        stack.try_push(vec![9]).unwrap();
        let mut refill = Vec::with_capacity(4);
        assert_eq!(stack.pop_batch(&mut refill, 2), 2);
        assert_eq!(refill, [vec![2], vec![9]], "in push order: the newest last");
        assert_eq!(stack.pop(), Some(vec![1]));
        assert_eq!(stack.pop_batch(&mut refill, 2), 0, "empty");
    }

    #[test]
    fn a_batch_push_stops_at_the_bound() {
        let stack = LockedStack::new(3);
        stack.try_push(vec![0]).unwrap();
        let mut magazine: Vec<Vec<u8>> = (1..=4).map(|i| vec![i]).collect();
        assert_eq!(stack.push_batch(&mut magazine, 4), 2);
        assert_eq!(magazine, [vec![3], vec![4]], "what did not fit stays");
        assert_eq!(stack.len(), 3);
        let counted = {
            let mut totals = Totals::default();
            stack.sum_into(0, &mut totals);
            totals.stats()
        };
        assert_eq!(
            (counted.rented, counted.returned),
            (0, 1),
            "moves are not flows"
        );
    }

    #[test]
    fn release_cold_takes_the_oldest_once_they_outlived_the_cutoff() {
        let stack = LockedStack::new(8);
        for i in 0..3 {
            stack.try_push(vec![i]).unwrap();
        }
        let mut out = Vec::with_capacity(64);
        assert_eq!(
            stack.release_cold(100, 99, &mut out, 8),
            0,
            "first seen at 100"
        );
        stack.try_push(vec![3]).unwrap(); // arrives after the sighting at 100
        assert_eq!(
            stack.release_cold(200, 100, &mut out, 2),
            2,
            "at most `max`"
        );
        assert_eq!(out, [vec![0], vec![1]], "the oldest, from the bottom");
        assert_eq!(
            stack.release_cold(200, 100, &mut out, 8),
            1,
            "the last one seen at 100"
        );
        assert_eq!(stack.pop(), Some(vec![3]), "the young one stays");
        stack.try_push(vec![4]).unwrap();
        assert_eq!(
            stack.release_cold(300, u64::MAX, &mut out, 8),
            1,
            "u64::MAX: any age"
        );
        let mut totals = Totals::default();
        stack.sum_into(0, &mut totals);
        assert_eq!(totals.stats().trimmed, 4);
    }

    #[test]
    fn a_rent_between_sightings_makes_the_returned_buffer_young() {
        let stack = LockedStack::new(8);
        stack.try_push(vec![0]).unwrap();
        stack.try_push(vec![1]).unwrap();
        let mut out = Vec::with_capacity(8);
        stack.release_cold(100, 0, &mut out, 8); // sighting at 100: two buffers
        let rented = stack.pop().unwrap();
        stack.try_push(rented).unwrap(); // back, but it left the stack after 100
        assert_eq!(
            stack.release_cold(500, 100, &mut out, 8),
            1,
            "only the bottom one"
        );
        assert_eq!(out, [vec![0]]);
    }

    #[test]
    fn the_slot_vector_never_grows_past_the_bound() {
        for bound in [1, 2, 5] {
            let stack = LockedStack::new(bound);
            for i in 0..bound {
                stack.try_push(vec![i as u8]).unwrap();
            }
            assert_eq!(lock(&stack.state).buffers.capacity(), bound);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads push while a third pops: no buffer is lost, duplicated or pushed past the
    /// bound, whatever the interleaving.
    #[test]
    fn push_and_pop_from_three_threads() {
        loom::model(|| {
            let stack = Arc::new(LockedStack::new(1));
            let pushers: Vec<_> = (0..2u8)
                .map(|i| {
                    let stack = Arc::clone(&stack);
                    thread::spawn(move || stack.try_push(vec![i]).err().map(|b| b[0]))
                })
                .collect();
            let popped = stack.pop().map(|b| b[0]);
            let refused: Vec<u8> = pushers
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect();
            let remaining = stack.pop().map(|b| b[0]);
            assert_eq!(stack.pop(), None, "the bound is one buffer");
            let mut all: Vec<u8> = refused;
            all.extend(popped);
            all.extend(remaining);
            all.sort_unstable();
            assert_eq!(all, [0, 1], "every buffer is accounted for exactly once");
        });
    }
    /// The trimmer releases cold buffers while a renter pops and a returner pushes: every
    /// buffer is released, rented or still held exactly once, and none above the bound.
    #[test]
    fn release_cold_races_a_pop_and_a_push() {
        loom::model(|| {
            let stack = Arc::new(LockedStack::new(2));
            stack.try_push(vec![0]).unwrap();
            stack.try_push(vec![1]).unwrap();
            let mut out = Vec::with_capacity(2);
            stack.release_cold(1, 0, &mut out, 2); // first sighting: nothing is cold yet
            let renter = {
                let stack = Arc::clone(&stack);
                thread::spawn(move || {
                    let rented = stack.pop();
                    let refused = stack.try_push(vec![2]).err();
                    (rented.map(|b| b[0]), refused.map(|b| b[0]))
                })
            };
            let released = stack.release_cold(10, 1, &mut out, 2);
            let (rented, refused) = renter.join().unwrap();
            assert_eq!(released, out.len());
            let mut all: Vec<u8> = out.iter().map(|b| b[0]).collect();
            assert!(
                !all.contains(&2),
                "a buffer pushed after the sighting is not cold"
            );
            all.extend(rented);
            all.extend(refused);
            while let Some(buffer) = stack.pop() {
                all.push(buffer[0]);
            }
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2], "every buffer is accounted for exactly once");
        });
    }
}
