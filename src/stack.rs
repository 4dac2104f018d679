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
    /// [`Flow::Kept`]s: buffers pushed by a renter's return (not those moved down from a
    /// thread cache, which the cache counted when it kept them).
    kept: u64,
}

/// Whether a push is a renter's return (a [`Flow::Kept`]) or a buffer the pool already held,
/// moved down from a thread cache (no flow: it never left the pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    Returned,
    MovedDown,
}

impl LockedStack {
    /// An empty stack that will hold at most `bound` buffers.
    pub(crate) fn new(bound: usize) -> Self {
        let state = StackState {
            buffers: Vec::new(),
            hits: 0,
            kept: 0,
        };
        Self {
            state: CachePadded::new(Mutex::new(state)),
            bound,
        }
    }

    /// Pushes `buffer`, or hands it back when the stack is full (or, for a stack that has never
    /// held this many, when its slot vector cannot grow).
    #[inline]
    pub(crate) fn try_push(&self, buffer: Vec<u8>, arrival: Arrival) -> Result<(), Vec<u8>> {
        let mut state = lock(&self.state);
        let len = state.buffers.len();
        if len >= self.bound || (len == state.buffers.capacity() && !state.grow(self.bound)) {
            return Err(buffer);
        }
        state.buffers.push(buffer);
        state.kept += u64::from(arrival == Arrival::Returned);
        Ok(())
    }

    /// Pops the most recently pushed buffer for a renter.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        let buffer = state.buffers.pop()?;
        state.hits += 1;
        Some(buffer)
    }

    /// Adds this stack's counts, as flows of `bucket`, into `totals`.
    pub(crate) fn sum_into(&self, bucket: usize, totals: &mut Totals) {
        let state = lock(&self.state);
        totals.add(bucket, Flow::Hit, state.hits);
        totals.add(bucket, Flow::Kept, state.kept);
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
        let len = self.buffers.len();
        let wanted = len.saturating_mul(2).max(4).min(bound) - len;
        self.buffers.try_reserve_exact(wanted).is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pops_in_lifo_order_and_refuses_when_full() {
        let stack = LockedStack::new(2);
        assert!(stack.try_push(vec![1], Arrival::Returned).is_ok());
        assert!(stack.try_push(vec![2], Arrival::Returned).is_ok());
        assert_eq!(stack.try_push(vec![3], Arrival::Returned), Err(vec![3]));
        assert_eq!(stack.len(), 2);
        assert_eq!(stack.pop(), Some(vec![2]));
        assert_eq!(stack.pop(), Some(vec![1]));
        assert_eq!(stack.pop(), None);
    }

    #[test]
    fn counts_rents_and_returns_but_not_moves() {
        let stack = LockedStack::new(4);
        stack.try_push(vec![1], Arrival::Returned).unwrap();
        stack.try_push(vec![2], Arrival::MovedDown).unwrap();
        assert!(stack.pop().is_some());
        let counted = |stack: &LockedStack| {
            let mut totals = Totals::default();
            stack.sum_into(0, &mut totals);
            let stats = totals.stats();
            (stats.rented, stats.returned)
        };
        assert_eq!(counted(&stack), (1, 1), "one rent served, one return kept");
        stack.try_push(vec![3], Arrival::Returned).unwrap();
        stack.try_push(vec![4], Arrival::Returned).unwrap();
        stack.try_push(vec![5], Arrival::Returned).unwrap();
        assert!(stack.try_push(vec![6], Arrival::Returned).is_err());
        assert_eq!(counted(&stack), (1, 4), "a refused push is not kept");
    }

    /// Regression (review B2): a bound far beyond any memory used to reserve its whole slot
    /// vector at the first push, which panicked ("capacity overflow") or aborted.
    #[test]
    fn a_huge_bound_reserves_only_what_is_held() {
        for bound in [usize::MAX, 1 << 40] {
            let stack = LockedStack::new(bound);
            for i in 0..100 {
                stack.try_push(vec![i], Arrival::Returned).unwrap();
            }
            assert_eq!(stack.len(), 100);
            assert!(lock(&stack.state).buffers.capacity() < 1000);
        }
    }

    #[test]
    fn the_slot_vector_never_grows_past_the_bound() {
        for bound in [1, 2, 5] {
            let stack = LockedStack::new(bound);
            for i in 0..bound {
                stack.try_push(vec![i as u8], Arrival::Returned).unwrap();
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
                    thread::spawn(move || {
                        stack
                            .try_push(vec![i], Arrival::Returned)
                            .err()
                            .map(|b| b[0])
                    })
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
}
