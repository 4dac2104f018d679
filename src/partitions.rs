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
use crate::stack::LockedStack;

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
        let stacks = self.buckets.get(bucket)?.get()?;
        let mut probe = Probe::new(stacks.len(), home);
        loop {
            if let Some(buffer) = stacks.get(probe.at)?.pop() {
                return Some(buffer);
            }
            probe.next()?;
        }
    }

    /// Pushes a renter's returned `buffer` of `bucket` into the first partition with room,
    /// starting at `home % count`; hands it back when every partition is full.
    #[inline]
    pub(crate) fn push(
        &self,
        bucket: usize,
        home: usize,
        mut buffer: Vec<u8>,
    ) -> Result<(), Vec<u8>> {
        let stacks = self.stacks(bucket);
        let mut probe = Probe::new(stacks.len(), home);
        loop {
            let Some(stack) = stacks.get(probe.at) else {
                return Err(buffer);
            };
            match stack.try_push(buffer) {
                Ok(()) => return Ok(()),
                Err(refused) => buffer = refused,
            }
            if probe.next().is_none() {
                return Err(buffer);
            }
        }
    }

    /// Moves up to `max` buffers of `bucket` onto the end of `into` (a thread cache's refill),
    /// from the first partition in probe order that has any: one lock taken when the home
    /// partition has them. Returns how many moved.
    pub(crate) fn pop_batch(
        &self,
        bucket: usize,
        home: usize,
        into: &mut Vec<Vec<u8>>,
        max: usize,
    ) -> usize {
        let Some(stacks) = self.buckets[bucket].get() else {
            return 0;
        };
        let mut probe = Probe::new(stacks.len(), home);
        loop {
            let moved = stacks[probe.at].pop_batch(into, max);
            if moved > 0 || probe.next().is_none() {
                return moved;
            }
        }
    }

    /// Moves `count` buffers of `bucket` from the front of `from` (a thread cache's flush of its
    /// oldest) into the partitions, home first, each partition under one lock. Returns how many
    /// moved; the rest, when every partition is full, stay at the front of `from`.
    pub(crate) fn push_batch(
        &self,
        bucket: usize,
        home: usize,
        from: &mut Vec<Vec<u8>>,
        count: usize,
    ) -> usize {
        let stacks = self.stacks(bucket);
        let mut probe = Probe::new(stacks.len(), home);
        let mut moved = 0;
        loop {
            moved += stacks[probe.at].push_batch(from, count - moved);
            if moved == count || probe.next().is_none() {
                return moved;
            }
        }
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

/// The partitions in the order a thread at `home` visits them: its own (`home % count`), then
/// the others round-robin, each once.
struct Probe {
    at: usize,
    count: usize,
    left: usize,
}

impl Probe {
    #[inline]
    fn new(count: usize, home: usize) -> Self {
        // A CPU number is almost always below the partition count (one partition per CPU):
        // a comparison, not a division, in the common case.
        let at = if home < count {
            home
        } else {
            home % count.max(1)
        };
        Self {
            at,
            count,
            left: count.saturating_sub(1),
        }
    }

    /// Moves to the next partition; `None` once every one was visited.
    #[inline]
    fn next(&mut self) -> Option<()> {
        self.left = self.left.checked_sub(1)?;
        self.at += 1;
        if self.at == self.count {
            self.at = 0;
        }
        Some(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_full_home_spills_into_the_other_partitions() {
        let partitions = Partitions::new(1, vec![1, 1, 1].into());
        for i in 0..3 {
            assert!(partitions.push(0, 7, vec![i]).is_ok(), "push {i}");
        }
        assert_eq!(
            partitions.push(0, 7, vec![3]),
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
        partitions.push(0, 0, vec![0]).unwrap();
        partitions.push(0, 1, vec![1]).unwrap();
        assert_eq!(partitions.pop(0, 1), Some(vec![1]));
        assert_eq!(
            partitions.pop(0, 1),
            Some(vec![0]),
            "then the other partition"
        );
    }

    #[test]
    fn a_batch_flush_fills_home_then_the_others_and_hands_back_the_rest() {
        let partitions = Partitions::new(1, vec![2, 1].into());
        let mut magazine: Vec<Vec<u8>> = (0..5).map(|i| vec![i]).collect();
        assert_eq!(partitions.push_batch(0, 1, &mut magazine, 4), 3);
        assert_eq!(
            magazine,
            [vec![3], vec![4]],
            "the one that did not fit, and the kept one"
        );
        assert_eq!(partitions.len(0), 3);
    }

    #[test]
    fn a_refill_takes_from_the_first_partition_that_has_buffers() {
        let partitions = Partitions::new(1, vec![4, 4].into());
        let mut magazine = Vec::with_capacity(8);
        assert_eq!(
            partitions.pop_batch(0, 0, &mut magazine, 3),
            0,
            "never created"
        );
        partitions.push(0, 1, vec![1]).unwrap();
        partitions.push(0, 1, vec![2]).unwrap();
        assert_eq!(
            partitions.pop_batch(0, 0, &mut magazine, 3),
            2,
            "home empty: the other"
        );
        assert_eq!(magazine, [vec![1], vec![2]]);
    }

    #[test]
    fn buckets_are_apart_and_created_on_first_push() {
        let partitions = Partitions::new(3, vec![2].into());
        assert_eq!(partitions.pop(2, 0), None, "never pushed: nothing to pop");
        partitions.push(2, 0, vec![9]).unwrap();
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
            partitions.push(0, 0, vec![0]).unwrap();
            assert_eq!(
                partitions.pop(0, 0),
                Some(vec![0]),
                "both partitions exist now"
            );
            let pusher = {
                let partitions = Arc::clone(&partitions);
                thread::spawn(move || partitions.push(0, 1, vec![42]).is_ok())
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
                thread::spawn(move || partitions.push(0, 1, vec![1]).is_ok())
            };
            let mine = partitions.push(0, 0, vec![0]).is_ok();
            let theirs = other.join().unwrap();
            assert!(mine ^ theirs, "exactly one push wins");
            assert_eq!(partitions.len(0), 1);
        });
    }
}
