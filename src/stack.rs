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
pub(crate) struct LockedStack {
    buffers: CachePadded<Mutex<Vec<Vec<u8>>>>,
    capacity: usize,
}

impl LockedStack {
    /// An empty stack that will hold at most `capacity` buffers. The slot vector is reserved
    /// here, once, so pushes never allocate.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buffers: CachePadded::new(Mutex::new(Vec::with_capacity(capacity))),
            capacity,
        }
    }

    /// Pushes `buffer`, or hands it back when the stack is full.
    #[inline]
    pub(crate) fn try_push(&self, buffer: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut buffers = lock(&self.buffers);
        if buffers.len() < self.capacity {
            buffers.push(buffer);
            Ok(())
        } else {
            Err(buffer)
        }
    }

    /// Pops the most recently pushed buffer.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Vec<u8>> {
        lock(&self.buffers).pop()
    }

    /// How many buffers the stack holds now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.buffers).len()
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
}
