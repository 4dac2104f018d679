//! `PerCpuStacks`: one [`LockedStack`] per partition for one size class; the home partition
//! first, then the others round-robin.
//!
//! A thread starts at the partition of the CPU it runs on, so threads on different CPUs take
//! different locks. Only when its home stack is empty (on rent) or full (on return) does it
//! visit the others, as .NET's `SharedArrayPool` does. Visiting all of them before giving up is
//! what lets a custom pool keep exactly `per_bucket` buffers when that many come back.

use crate::stack::{Arrival, LockedStack};

/// The partitions of one bucket.
pub(crate) struct PerCpuStacks {
    stacks: Box<[LockedStack]>,
}

impl PerCpuStacks {
    /// One stack per entry of `capacities`, each bounded by its entry.
    pub(crate) fn new(capacities: &[usize]) -> Self {
        debug_assert!(!capacities.is_empty());
        Self {
            stacks: capacities.iter().map(|&c| LockedStack::new(c)).collect(),
        }
    }

    /// Pops a buffer, trying partition `home % len` first and then each other one once.
    #[inline]
    pub(crate) fn pop(&self, home: usize) -> Option<Vec<u8>> {
        self.probe(home, |stack| stack.pop())
    }

    /// Pushes `buffer` into the first partition with room, starting at `home % len`; hands it
    /// back when every partition is full.
    #[inline]
    pub(crate) fn push(
        &self,
        home: usize,
        buffer: Vec<u8>,
        arrival: Arrival,
    ) -> Result<(), Vec<u8>> {
        let mut buffer = Some(buffer);
        let pushed = self.probe(home, |stack| {
            match stack.try_push(buffer.take()?, arrival) {
                Ok(()) => Some(()),
                Err(refused) => {
                    buffer = Some(refused);
                    None
                }
            }
        });
        match (pushed, buffer) {
            (Some(()), None) => Ok(()),
            (None, Some(refused)) => Err(refused),
            _ => unreachable!("a buffer is either pushed once or handed back"),
        }
    }

    /// Rents served and returns kept by all partitions so far, each read under its lock.
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.stacks
            .iter()
            .map(LockedStack::counts)
            .fold((0, 0), |(t, k), (taken, kept)| (t + taken, k + kept))
    }

    #[cfg(test)]
    /// How many buffers all partitions hold now (each partition read under its lock; the sum
    /// is a moment-by-moment approximation while other threads push and pop).
    pub(crate) fn len(&self) -> usize {
        self.stacks.iter().map(LockedStack::len).sum()
    }

    /// Visits the partitions from `home % len` round-robin until `f` returns `Some`.
    #[inline]
    fn probe<T>(&self, home: usize, mut f: impl FnMut(&LockedStack) -> Option<T>) -> Option<T> {
        let count = self.stacks.len();
        let start = home % count;
        (start..count)
            .chain(0..start)
            .find_map(|i| f(&self.stacks[i]))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_full_home_spills_into_the_other_partitions() {
        let stacks = PerCpuStacks::new(&[1, 1, 1]);
        for i in 0..3 {
            assert!(
                stacks.push(7, vec![i], Arrival::Returned).is_ok(),
                "push {i}"
            );
        }
        assert_eq!(
            stacks.push(7, vec![3], Arrival::Returned),
            Err(vec![3]),
            "all partitions are full"
        );
        assert_eq!(stacks.len(), 3);
        let mut popped: Vec<u8> = (0..3).map(|_| stacks.pop(2).unwrap()[0]).collect();
        popped.sort_unstable();
        assert_eq!(popped, [0, 1, 2]);
        assert_eq!(stacks.pop(0), None);
    }

    #[test]
    fn the_home_partition_is_tried_first() {
        let stacks = PerCpuStacks::new(&[4, 4]);
        stacks.push(0, vec![0], Arrival::Returned).unwrap();
        stacks.push(1, vec![1], Arrival::Returned).unwrap();
        assert_eq!(stacks.pop(1), Some(vec![1]));
        assert_eq!(stacks.pop(1), Some(vec![0]), "then the other partition");
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A thread whose home partition is empty probes the other one while a third thread pushes
    /// there: the buffer is either found by the probe or still in the stacks afterwards.
    #[test]
    fn probing_races_a_push() {
        loom::model(|| {
            let stacks = Arc::new(PerCpuStacks::new(&[1, 1]));
            let pusher = {
                let stacks = Arc::clone(&stacks);
                thread::spawn(move || stacks.push(1, vec![42], Arrival::Returned).is_ok())
            };
            let found = stacks.pop(0);
            assert!(pusher.join().unwrap(), "one buffer always fits");
            let left = stacks.len();
            match found {
                Some(buffer) => assert_eq!((buffer, left), (vec![42], 0)),
                None => assert_eq!(left, 1, "missed by the probe, so still pooled"),
            }
        });
    }

    /// Two returns race for the last free slot: exactly one is kept, the other handed back.
    #[test]
    fn two_pushes_race_for_the_last_slot() {
        loom::model(|| {
            let stacks = Arc::new(PerCpuStacks::new(&[1, 0]));
            let other = {
                let stacks = Arc::clone(&stacks);
                thread::spawn(move || stacks.push(1, vec![1], Arrival::Returned).is_ok())
            };
            let mine = stacks.push(0, vec![0], Arrival::Returned).is_ok();
            let theirs = other.join().unwrap();
            assert!(mine ^ theirs, "exactly one push wins");
            assert_eq!(stacks.len(), 1);
        });
    }
}
