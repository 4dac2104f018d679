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
use crate::bucket::bucket_len;
use crate::stack::LockedStack;
use crate::sync::{AtomicU64, Ordering};

/// Every bucket's partitions. A bucket's stacks are created on the first push of that size,
/// so sizes a program never returns cost nothing.
pub(crate) struct Partitions {
    buckets: Box<[OnceLock<Box<[LockedStack]>>]>,
    /// How many buffers each partition of a bucket keeps.
    bounds: Box<[usize]>,
    /// The pool's byte budget for everything in the partitions, if it has one.
    retained: Option<Retained>,
}

/// Why the partitions refused a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every partition of the bucket was full.
    Full,
    /// Keeping it would have taken the partitions above the pool's `max_retained_bytes`.
    OverBudget,
}

/// What a batch push did: how many buffers moved, and how many of those left behind the
/// budget refused (the rest of those left behind found every partition full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub(crate) moved: usize,
    pub(crate) over_budget: usize,
}

/// `max_retained_bytes`: the bytes the partitions hold, against the most they may.
///
/// One counter for the whole pool, changed once per push, pop or batch: a shared line, on
/// paths that take a partition lock anyway. A push reserves before it pushes, so the bound
/// holds whatever the interleaving (a racing push may be refused while another undoes its
/// reservation; the bound is never passed).
struct Retained {
    max: u64,
    bytes: AtomicU64,
}

impl Retained {
    /// Reserves room for `count` buffers of `len` bytes; returns how many fit.
    fn reserve(&self, len: usize, count: usize) -> usize {
        let len = len as u64;
        let want = len.saturating_mul(count as u64);
        let before = self.bytes.fetch_add(want, Ordering::Relaxed);
        let room = self.max.saturating_sub(before) / len;
        let granted = count.min(usize::try_from(room).unwrap_or(usize::MAX));
        if granted < count {
            self.release(len as usize, count - granted);
        }
        granted
    }

    fn release(&self, len: usize, count: usize) {
        if count > 0 {
            self.bytes
                .fetch_sub(len as u64 * count as u64, Ordering::Relaxed);
        }
    }
}

impl Partitions {
    /// `buckets` buckets, each split into one partition per entry of `bounds` (at least one),
    /// each holding at most its entry, all of them together at most `max_retained_bytes`.
    pub(crate) fn new(
        buckets: usize,
        bounds: Box<[usize]>,
        max_retained_bytes: Option<u64>,
    ) -> Self {
        debug_assert!(!bounds.is_empty());
        Self {
            buckets: (0..buckets).map(|_| OnceLock::new()).collect(),
            bounds,
            retained: max_retained_bytes.map(|max| Retained {
                max,
                bytes: AtomicU64::new(0),
            }),
        }
    }

    /// How many buckets there are.
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The budget for what the partitions hold together, if any.
    pub(crate) fn max_retained_bytes(&self) -> Option<u64> {
        self.retained.as_ref().map(|retained| retained.max)
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
                self.released(bucket, 1);
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
    ) -> Result<(), (Vec<u8>, Refusal)> {
        if let Some(retained) = &self.retained {
            if retained.reserve(bucket_len(bucket), 1) == 0 {
                return Err((buffer, Refusal::OverBudget));
            }
        }
        let stacks = self.stacks(bucket);
        let mut probe = Probe::new(stacks.len(), home);
        while let Some(stack) = stacks.get(probe.at) {
            match stack.try_push(buffer) {
                Ok(()) => return Ok(()),
                Err(refused) => buffer = refused,
            }
            if probe.next().is_none() {
                break;
            }
        }
        self.released(bucket, 1);
        Err((buffer, Refusal::Full))
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
                self.released(bucket, moved);
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
    ) -> Moved {
        let granted = match &self.retained {
            Some(retained) => retained.reserve(bucket_len(bucket), count),
            None => count,
        };
        let mut moved = 0;
        if granted > 0 {
            let stacks = self.stacks(bucket);
            let mut probe = Probe::new(stacks.len(), home);
            loop {
                moved += stacks[probe.at].push_batch(from, granted - moved);
                if moved == granted || probe.next().is_none() {
                    break;
                }
            }
        }
        self.released(bucket, granted - moved);
        Moved {
            moved,
            over_budget: count - granted,
        }
    }

    /// Releases (moves into `into`, which must have room for `max` more) up to `max` buffers of
    /// `bucket` that have sat in the partitions since `cutoff` or before, oldest first, after
    /// noting that every buffer there now is there at `now`; with `cutoff` at `u64::MAX`,
    /// whatever their age. Returns how many; the caller frees them, with no lock held.
    pub(crate) fn release_cold(
        &self,
        bucket: usize,
        now: u64,
        cutoff: u64,
        into: &mut Vec<Vec<u8>>,
        max: usize,
    ) -> usize {
        let Some(stacks) = self.buckets[bucket].get() else {
            return 0;
        };
        let mut released = 0;
        for stack in stacks.iter() {
            if released == max {
                break;
            }
            released += stack.release_cold(now, cutoff, into, max - released);
        }
        self.released(bucket, released);
        released
    }

    /// Whether the partitions hold no buffer at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets
            .iter()
            .filter_map(OnceLock::get)
            .all(|stacks| stacks.iter().all(LockedStack::is_empty))
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

    /// `count` buffers of `bucket` left the partitions: their bytes no longer count against
    /// the budget.
    #[inline]
    fn released(&self, bucket: usize, count: usize) {
        if let Some(retained) = &self.retained {
            retained.release(bucket_len(bucket), count);
        }
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
        let partitions = Partitions::new(1, vec![1, 1, 1].into(), None);
        for i in 0..3 {
            assert!(partitions.push(0, 7, vec![i]).is_ok(), "push {i}");
        }
        assert_eq!(
            partitions.push(0, 7, vec![3]),
            Err((vec![3], Refusal::Full)),
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
        let partitions = Partitions::new(1, vec![4, 4].into(), None);
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
        let partitions = Partitions::new(1, vec![2, 1].into(), None);
        let mut magazine: Vec<Vec<u8>> = (0..5).map(|i| vec![i]).collect();
        let moved = partitions.push_batch(0, 1, &mut magazine, 4);
        assert_eq!((moved.moved, moved.over_budget), (3, 0));
        assert_eq!(
            magazine,
            [vec![3], vec![4]],
            "the one that did not fit, and the kept one"
        );
        assert_eq!(partitions.len(0), 3);
    }

    #[test]
    fn a_refill_takes_from_the_first_partition_that_has_buffers() {
        let partitions = Partitions::new(1, vec![4, 4].into(), None);
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
    fn the_byte_budget_bounds_the_partitions_and_frees_up_as_they_empty() {
        // 100 bytes: three 32-byte buffers fit, a fourth does not.
        let partitions = Partitions::new(2, vec![8, 8].into(), Some(100));
        for i in 0..3 {
            partitions.push(1, i, vec![0; 32]).unwrap();
        }
        let refused = partitions.push(1, 0, vec![0; 32]).unwrap_err();
        assert_eq!(refused.1, Refusal::OverBudget);
        let mut magazine: Vec<Vec<u8>> = (0..3).map(|_| Vec::with_capacity(16)).collect();
        let moved = partitions.push_batch(0, 0, &mut magazine, 3);
        assert_eq!(
            (moved.moved, moved.over_budget),
            (0, 3),
            "4 bytes left: no 16 fit"
        );
        assert!(partitions.pop(1, 0).is_some());
        let moved = partitions.push_batch(0, 0, &mut magazine, 3);
        assert_eq!(
            (moved.moved, moved.over_budget),
            (2, 1),
            "a pop freed 32 bytes"
        );
        let mut out = Vec::with_capacity(8);
        assert_eq!(partitions.release_cold(1, 0, u64::MAX, &mut out, 8), 2);
        assert!(
            partitions.push(1, 0, vec![0; 32]).is_ok(),
            "a trim frees budget too"
        );
        // A full partition set refuses as `Full`, and gives its reservation back.
        let tiny = Partitions::new(1, vec![1].into(), Some(1 << 20));
        tiny.push(0, 0, vec![0; 16]).unwrap();
        assert_eq!(tiny.push(0, 0, vec![1; 16]).unwrap_err().1, Refusal::Full);
        assert_eq!(tiny.pop(0, 0), Some(vec![0; 16]));
        assert!(tiny.push(0, 0, vec![2; 16]).is_ok());
    }

    #[test]
    fn is_empty_sees_every_bucket_and_partition() {
        let partitions = Partitions::new(3, vec![2, 2].into(), None);
        assert!(partitions.is_empty(), "no bucket created");
        partitions.push(2, 1, vec![0]).unwrap();
        assert!(!partitions.is_empty());
        partitions.pop(2, 0).unwrap();
        assert!(partitions.is_empty());
    }

    #[test]
    fn buckets_are_apart_and_created_on_first_push() {
        let partitions = Partitions::new(3, vec![2].into(), None);
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
            let partitions = Arc::new(Partitions::new(1, vec![1, 1].into(), None));
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
            let partitions = Arc::new(Partitions::new(1, vec![1, 0].into(), None));
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
    /// Two returns race for the last bytes of the budget: exactly one is kept, and the
    /// counter ends where what is held says.
    #[test]
    fn two_pushes_race_for_the_last_of_the_budget() {
        loom::model(|| {
            let partitions = Arc::new(Partitions::new(1, vec![4, 4].into(), Some(16)));
            let other = {
                let partitions = Arc::clone(&partitions);
                thread::spawn(move || partitions.push(0, 1, vec![1; 16]).map_err(|e| e.1))
            };
            let mine = partitions.push(0, 0, vec![0; 16]).map_err(|e| e.1);
            let theirs = other.join().unwrap();
            assert!(mine.is_ok() ^ theirs.is_ok(), "exactly one push wins");
            assert_eq!(mine.err().or(theirs.err()), Some(Refusal::OverBudget));
            assert_eq!(partitions.len(0), 1);
            partitions.pop(0, 0).unwrap();
            assert!(
                partitions.push(0, 0, vec![2; 16]).is_ok(),
                "all the budget is back"
            );
        });
    }
}
