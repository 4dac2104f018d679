//! `LockedStack`: a bounded LIFO of buffers behind its own cache-padded lock.
//!
//! Why a lock and not a lock-free queue: the stack is per CPU, so its lock is almost always
//! uncontended, and an uncontended futex lock/unlock is two atomic operations on a line this
//! core already owns. A LIFO hands back the most recently returned (cache-warm) buffer, which
//! a FIFO ring such as `crossbeam_queue::ArrayQueue` cannot. .NET's `SharedArrayPool` makes the
//! same choice (one `Monitor` per partition); we add the padding it never had, so that two
//! CPUs' stacks never share a cache line.

use crossbeam_utils::CachePadded;

use crate::sync::{lock, Mutex};

/// A bounded stack of buffers of one size class. All buffers in one stack have the same
/// capacity; the stack does not check that, the pool does before pushing.
///
/// It also counts the rents it served and the returns it kept. Those counts live under the
/// lock the operation holds anyway, so counting costs two plain adds on a line already owned,
/// where a separate atomic counter would cost a `lock`-prefixed instruction per figure (six per
/// rent+return of a pool without a thread cache, before this).
pub(crate) struct LockedStack {
    state: CachePadded<Mutex<StackState>>,
    capacity: usize,
}

struct StackState {
    buffers: Vec<Vec<u8>>,
    /// Buffers popped for a renter.
    taken: u64,
    /// Buffers pushed by a renter's return (not those moved down from a thread cache, which
    /// the cache already counted).
    kept: u64,
}

/// Whether a push is a renter's return (counted as kept) or a buffer the pool already held,
/// moved down from a thread cache (not counted again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    Returned,
    MovedDown,
}

impl LockedStack {
    /// An empty stack that will hold at most `capacity` buffers. The slot vector is reserved
    /// here, once, so pushes never allocate.
    pub(crate) fn new(capacity: usize) -> Self {
        let state = StackState {
            buffers: Vec::with_capacity(capacity),
            taken: 0,
            kept: 0,
        };
        Self {
            state: CachePadded::new(Mutex::new(state)),
            capacity,
        }
    }

    /// Pushes `buffer`, or hands it back when the stack is full.
    #[inline]
    pub(crate) fn try_push(&self, buffer: Vec<u8>, arrival: Arrival) -> Result<(), Vec<u8>> {
        let mut state = lock(&self.state);
        if state.buffers.len() < self.capacity {
            state.buffers.push(buffer);
            state.kept += u64::from(arrival == Arrival::Returned);
            Ok(())
        } else {
            Err(buffer)
        }
    }

    /// Pops the most recently pushed buffer for a renter.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        let buffer = state.buffers.pop()?;
        state.taken += 1;
        Some(buffer)
    }

    /// How many buffers this stack has served to renters and kept from returns, so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.taken, state.kept)
    }

    /// How many buffers the stack holds now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).buffers.len()
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
        assert_eq!(stack.counts(), (1, 1), "one rent served, one return kept");
        stack.try_push(vec![3], Arrival::Returned).unwrap();
        stack.try_push(vec![4], Arrival::Returned).unwrap();
        stack.try_push(vec![5], Arrival::Returned).unwrap();
        assert!(stack.try_push(vec![6], Arrival::Returned).is_err());
        assert_eq!(stack.counts(), (1, 4), "a refused push is not kept");
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
