//! `Partitions`: the pool's middle tier. Per bucket, one [`LockedStack`] per partition; a
//! thread starts at its home partition and visits the others round-robin.
//!
//! The shared pool has one partition per CPU, and a thread's home is the CPU it runs on
//! (`sys::current_cpu`), so threads on different CPUs take different locks. A custom pool
//! splits its `per_bucket` bound over `min(CPUs, per_bucket)` partitions, or as many as the
//! builder says. Only when its home stack is empty (on rent) or full (on return) does a thread
//! visit the others, as .NET's `SharedArrayPool` does. Visiting all of them before giving up is
//! what lets a custom pool keep exactly `per_bucket` buffers when that many come back.

use std::sync::OnceLock;

use crate::accounting::Totals;
use crate::stack::{Arrival, LockedStack};

/// Every bucket's partitions. A bucket's stacks are created on the first push of that size,
/// so sizes a program never returns cost nothing.
pub(crate) struct Partitions {
    buckets: Box<[OnceLock<Box<[LockedStack]>>]>,
    /// How many buffers each partition of a bucket keeps.
    bounds: Box<[usize]>,
}

impl Partitions {
    /// `buckets` buckets, each split into one partition per entry of `bounds` (at least one),
    /// each holding at most its entry.
    pub(crate) fn new(buckets: usize, bounds: Box<[usize]>) -> Self {
        debug_assert!(!bounds.is_empty());
        Self {
            buckets: (0..buckets).map(|_| OnceLock::new()).collect(),
            bounds,
        }
    }

    /// How many partitions each bucket has.
    pub(crate) fn count(&self) -> usize {
        self.bounds.len()
    }

    /// The most buffers one bucket's partitions hold together.
    pub(crate) fn per_bucket(&self) -> usize {
        self.bounds.iter().sum()
    }

    /// Pops a buffer of `bucket` for a renter, trying partition `home % count` first and then
    /// each other one once.
    #[inline]
    pub(crate) fn pop(&self, bucket: usize, home: usize) -> Option<Vec<u8>> {
        let stacks = self.buckets[bucket].get()?;
        probe_order(stacks.len(), home).find_map(|i| stacks[i].pop())
    }

    /// Pushes `buffer` of `bucket` into the first partition with room, starting at
    /// `home % count`; hands it back when every partition is full.
    #[inline]
    pub(crate) fn push(
        &self,
        bucket: usize,
        home: usize,
        mut buffer: Vec<u8>,
        arrival: Arrival,
    ) -> Result<(), Vec<u8>> {
        let stacks = self.stacks(bucket);
        for i in probe_order(stacks.len(), home) {
            match stacks[i].try_push(buffer, arrival) {
                Ok(()) => return Ok(()),
                Err(refused) => buffer = refused,
            }
        }
        Err(buffer)
    }

    /// Adds every stack's counts into `totals`, each read under its lock.
    pub(crate) fn sum_into(&self, totals: &mut Totals) {
        for (bucket, stacks) in self.buckets.iter().enumerate() {
            for stack in stacks.get().into_iter().flatten() {
                stack.sum_into(bucket, totals);
            }
        }
    }

    /// How many buffers of `bucket` all partitions hold now (each read under its lock; a
    /// moment-by-moment approximation while other threads push and pop).
    #[cfg(test)]
    pub(crate) fn len(&self, bucket: usize) -> usize {
        self.buckets[bucket]
            .get()
            .map_or(0, |stacks| stacks.iter().map(LockedStack::len).sum())
    }

    fn stacks(&self, bucket: usize) -> &[LockedStack] {
        self.buckets[bucket]
            .get_or_init(|| self.bounds.iter().map(|&b| LockedStack::new(b)).collect())
    }
}

/// The partitions in the order a thread at `home` visits them: its own, then round-robin.
#[inline]
fn probe_order(count: usize, home: usize) -> impl Iterator<Item = usize> {
    let start = home % count;
    (start..count).chain(0..start)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_full_home_spills_into_the_other_partitions() {
        let partitions = Partitions::new(1, vec![1, 1, 1].into());
        for i in 0..3 {
            assert!(
                partitions.push(0, 7, vec![i], Arrival::Returned).is_ok(),
                "push {i}"
            );
        }
        assert_eq!(
            partitions.push(0, 7, vec![3], Arrival::Returned),
            Err(vec![3]),
            "all partitions are full"
        );
        assert_eq!(partitions.len(0), 3);
        let mut popped: Vec<u8> = (0..3).map(|_| partitions.pop(0, 2).unwrap()[0]).collect();
        popped.sort_unstable();
        assert_eq!(popped, [0, 1, 2]);
        assert_eq!(partitions.pop(0, 0), None);
    }

    #[test]
    fn the_home_partition_is_tried_first() {
        let partitions = Partitions::new(1, vec![4, 4].into());
        partitions.push(0, 0, vec![0], Arrival::Returned).unwrap();
        partitions.push(0, 1, vec![1], Arrival::Returned).unwrap();
        assert_eq!(partitions.pop(0, 1), Some(vec![1]));
        assert_eq!(
            partitions.pop(0, 1),
            Some(vec![0]),
            "then the other partition"
        );
    }

    #[test]
    fn buckets_are_apart_and_created_on_first_push() {
        let partitions = Partitions::new(3, vec![2].into());
        assert_eq!(partitions.pop(2, 0), None, "never pushed: nothing to pop");
        partitions.push(2, 0, vec![9], Arrival::Returned).unwrap();
        assert_eq!(partitions.pop(1, 0), None);
        assert_eq!(partitions.pop(2, 0), Some(vec![9]));
        assert_eq!((partitions.count(), partitions.per_bucket()), (1, 2));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A thread whose home partition is empty probes the other one while a second thread
    /// pushes there: the buffer is either found by the probe or still in the partitions.
    #[test]
    fn probing_races_a_push() {
        loom::model(|| {
            let partitions = Arc::new(Partitions::new(1, vec![1, 1].into()));
            partitions.push(0, 0, vec![0], Arrival::Returned).unwrap();
            assert_eq!(
                partitions.pop(0, 0),
                Some(vec![0]),
                "both partitions exist now"
            );
            let pusher = {
                let partitions = Arc::clone(&partitions);
                thread::spawn(move || partitions.push(0, 1, vec![42], Arrival::Returned).is_ok())
            };
            let found = partitions.pop(0, 0);
            assert!(pusher.join().unwrap(), "one buffer always fits");
            let left = partitions.len(0);
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
            let partitions = Arc::new(Partitions::new(1, vec![1, 0].into()));
            let other = {
                let partitions = Arc::clone(&partitions);
                thread::spawn(move || partitions.push(0, 1, vec![1], Arrival::Returned).is_ok())
            };
            let mine = partitions.push(0, 0, vec![0], Arrival::Returned).is_ok();
            let theirs = other.join().unwrap();
            assert!(mine ^ theirs, "exactly one push wins");
            assert_eq!(partitions.len(0), 1);
        });
    }
}
