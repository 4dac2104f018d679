//! `Ages`: how long the buffers of one partition stack have sat there, known to the trimmer's
//! resolution without a clock read or any per-buffer stamp on the rent/return path.
//!
//! A stack only changes at its top, so its buffers are ordered by age: the bottom ones arrived
//! first. The trimmer, on each tick, records "the first `len` buffers were all here by `now`"
//! (a *generation*), as .NET's partitions stamp their time on the trimmer's first sighting.
//! A pop can take buffers a generation covers and a later push can put new ones in their
//! place between two ticks, so the stack keeps a *low-water mark*, the least length it had
//! since the last tick (tcmalloc's and jemalloc's caches use the same mark): at the tick, every
//! generation is clamped to it first. The cost on the rent path is one comparison and store
//! under the lock the pop holds anyway; a push costs nothing.
//!
//! Times are milliseconds on the trimmer's clock (`trimmer.rs`), passed in, so that tests can
//! drive ages deterministically.

/// How many generations a stack remembers. Buffers are released after about four ticks
/// (a tick is a quarter of the idle timeout), so eight leave room; when they run out, the two
/// oldest merge and take the younger time, so a buffer can only look younger than it is,
/// never older: it may be released late, never early.
const GENERATIONS: usize = 8;

/// The ages of one stack's buffers.
#[derive(Debug, Default)]
pub(crate) struct Ages {
    /// `(len, seen)`: the bottom `len` buffers were all in the stack at `seen`. Lengths and
    /// times both increase along the array; `count` are in use.
    generations: [(usize, u64); GENERATIONS],
    count: usize,
    /// The least length the stack had since the last sighting.
    low_water: usize,
}

impl Ages {
    /// The stack shrank to `len` (a pop, or a batch taken).
    #[inline]
    pub(crate) fn popped_to(&mut self, len: usize) {
        if len < self.low_water {
            self.low_water = len;
        }
    }

    /// The trimmer sees the stack at length `len` at time `now`: every buffer there now was
    /// there at `now`, and the generations below the low-water mark are still true.
    pub(crate) fn sight(&mut self, len: usize, now: u64) {
        let low = self.low_water.min(len);
        let mut kept = 0;
        for i in 0..self.count {
            let (gen_len, seen) = self.generations[i];
            let gen_len = gen_len.min(low);
            if gen_len == 0 || (kept > 0 && gen_len == self.generations[kept - 1].0) {
                continue; // emptied, or now the same buffers as the generation below
            }
            self.generations[kept] = (gen_len, seen);
            kept += 1;
        }
        self.count = kept;
        let covered = if kept > 0 {
            self.generations[kept - 1].0
        } else {
            0
        };
        if len > covered {
            if self.count == GENERATIONS {
                // Merge the two oldest into one with the younger time.
                self.generations[0] = self.generations[1];
                self.generations.copy_within(2..GENERATIONS, 1);
                self.count -= 1;
            }
            self.generations[self.count] = (len, now);
            self.count += 1;
        }
        self.low_water = len;
    }

    /// How many of the bottom buffers were seen at or before `cutoff`.
    pub(crate) fn seen_by(&self, cutoff: u64) -> usize {
        self.generations[..self.count]
            .iter()
            .take_while(|&&(_, seen)| seen <= cutoff)
            .last()
            .map_or(0, |&(len, _)| len)
    }

    /// The bottom `count` buffers left the stack (released by the trimmer).
    pub(crate) fn removed_bottom(&mut self, count: usize) {
        let mut kept = 0;
        for i in 0..self.count {
            let (len, seen) = self.generations[i];
            if len > count {
                self.generations[kept] = (len - count, seen);
                kept += 1;
            }
        }
        self.count = kept;
        self.low_water = self.low_water.saturating_sub(count);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buffers_age_from_the_first_sighting() {
        let mut ages = Ages::default();
        ages.sight(3, 100);
        assert_eq!(ages.seen_by(99), 0, "not seen before 100");
        assert_eq!(ages.seen_by(100), 3);
        ages.sight(5, 200); // two more arrived between the ticks
        assert_eq!(ages.seen_by(150), 3, "the new two are younger");
        assert_eq!(ages.seen_by(200), 5);
    }

    #[test]
    fn a_pop_and_a_push_between_ticks_make_a_buffer_young() {
        let mut ages = Ages::default();
        ages.sight(4, 100);
        ages.popped_to(2); // two rented...
                           // ...and two others returned in their place, before the next tick.
        ages.sight(4, 200);
        assert_eq!(
            ages.seen_by(100),
            2,
            "only the bottom two are still from 100"
        );
        assert_eq!(ages.seen_by(200), 4);
    }

    #[test]
    fn releasing_the_bottom_shifts_the_generations() {
        let mut ages = Ages::default();
        ages.sight(2, 100);
        ages.sight(5, 200);
        ages.removed_bottom(2);
        assert_eq!(ages.seen_by(150), 0);
        assert_eq!(ages.seen_by(200), 3);
        ages.removed_bottom(3);
        assert_eq!(ages.seen_by(u64::MAX), 0);
    }

    #[test]
    fn when_generations_run_out_buffers_look_younger_never_older() {
        let mut ages = Ages::default();
        for tick in 1..=20u64 {
            ages.sight(tick as usize, tick * 10);
        }
        // The oldest generations merged toward younger times: the bottom buffer arrived at
        // 10, and may look younger, never older.
        for cutoff in [5, 10, 100, 150, 200] {
            let seen = ages.seen_by(cutoff);
            assert!(seen as u64 <= cutoff / 10, "cutoff {cutoff}: {seen}");
        }
        assert_eq!(ages.seen_by(200), 20);
    }
}
