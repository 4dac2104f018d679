//! The op-sequence model of a custom `ArrayPool`, shared by two harnesses:
//! `tests/model.rs` (proptest, in the normal suite) and `fuzz/fuzz_targets/model.rs`
//! (`cargo fuzz`), which includes this file with `#[path]`. Each harness uses half of it
//! (proptest builds [`Op`]s directly, the fuzzer decodes them from bytes), hence the
//! `dead_code` allowance.
//!
//! [`run`] drives a real pool through a sequence of [`Op`]s on up to three threads and, after
//! every step, checks the pool against a model of what the contract (src/pool.rs) says it
//! holds:
//! - every rented buffer has the promised `len` and capacity;
//! - its contents are exactly what earlier renters left within the length they returned the
//!   buffer with, and zero everywhere else: a byte nobody wrote reads as zero (each write uses
//!   a fresh stamp, so the model also knows who wrote every byte);
//! - no buffer is handed out twice: a rented pointer is never one that is still out, and a hit
//!   is always the very buffer the model says the pool hands out next;
//! - an outstanding buffer's contents change only through its owner;
//! - `stats()` equals the model's counters and gauges exactly, and the gauges stay within the
//!   documented bound (per bucket, `per_bucket` in the partitions; per live thread, its
//!   budget in bytes, and at most each magazine's limit in buffers);
//! - with `Drain`, the pool gives a thread exactly as many buffers of a size as the model says
//!   it can without allocating, then allocates.
//!
//! Custom pools keep the model exact: a small `max_len`, a small `per_bucket`, and no other
//! user. What the model restates, from src/thread_cache.rs, src/partitions.rs and
//! src/stack.rs:
//! - **The partitions**: per bucket, one bounded LIFO stack per partition (`min(partitions,
//!   per_bucket)` of them, bounds as even as possible, adding up to `per_bucket`). A pop takes
//!   the top of the first non-empty stack in probe order (the home partition, then the others
//!   round-robin), a push goes onto the first with room, a batch refill moves the newest
//!   `min(want, len)` of the first non-empty stack, in stack order, and a batch move down pushes
//!   the given buffers, oldest first, onto the stacks with room in probe order, and frees
//!   (counts `dropped_full`) what none has room for.
//! - **The thread tier** (configs with a budget, [`BUDGETS`]): per thread, per bucket a
//!   magazine (a LIFO whose capacity starts at 0 and only slow paths change), under the
//!   thread's byte budget: limits (`min(32, budget / len / 2)`, 0 meaning the size skips the
//!   tier), slow-start growth, releasing the magazines of other sizes idle since the budget last
//!   stood in the way (largest first, ties to the higher bucket) when it stands in the way of a
//!   growth, refills of half a magazine, moving
//!   the oldest half down when full at its limit, and flushing everything at thread exit.
//!   Moves between the tiers are not counted; a buffer the partitions had no room for on a move
//!   down is (`dropped_full`, and it leaves `held`). A pool without a thread tier is modelled
//!   as one whose budget is 0: every magazine's limit is 0, so every rent and return goes to
//!   the partitions, exactly as a size that skips the tier does.
//!
//! **Nondeterminism, and how the model handles it.** A thread's home partition is the CPU it
//! runs on (`sched_getcpu`, cached for a few calls), which the model cannot know. So the model
//! keeps every partition's stack exactly and, at every probe of the partitions (pop, push,
//! refill, move down), branches over where the probe can stop: each stack that qualifies (has a
//! buffer, or room) is the first one for the home equal to itself, and that is all the home
//! changes. It assumes nothing about a thread keeping its home from one probe to the next, nor
//! about how `per_bucket` is split over the partitions beyond "as even as possible" (with every
//! home tried, rotating the bounds only relabels the partitions, and with at most 3 partitions
//! every even split is a rotation of any other). The model keeps the set of states the pool
//! may be in ([`Model`]), deduplicated, drops those an observation contradicts (every rented
//! pointer and its bytes, `stats()` after every step), and fails when none is left. A refill
//! is resolved at once by the buffer it hands out (the top of the stack it came from); a move
//! down stays open until rents reveal where it went, or for good.
//!
//! Sizes without a magazine (all of them, without a thread tier) are factored out: their
//! buffers move only on their own rents and returns, one at a time, every state agrees on which
//! ones they hold, and how those are spread over the partitions decides nothing but which
//! buffer each of their rents gets. So a state keeps them as one pile (which buffers), and
//! [`Model::spreads`] keeps, per such size, every way they may be spread over the stacks,
//! checked on each of its rents. Kept in the states, those spreads would multiply over the
//! sizes: before this split the largest runs held over 100,000 states.
//!
//! And states that differ only by a rotation of one size's stacks that keeps every stack's
//! bound (all of them, when the bounds are equal) are one state: rotating the stacks only
//! relabels the homes, and the model tries every home ([`canonical`]).
//!
//! This is the first of the two ways the magazine tier's model could go (the other: one
//! partition for thread-cached pools). It keeps multi-partition coverage with a thread tier,
//! adds a check of LIFO order per partition for every config, and stays small. Measured over
//! `PROPTEST_CASES=2000` runs of each property (`MODEL_STATES=1` prints each run's maxima):
//! without a thread tier a run always holds one state and at most 12 spreads of a size; with
//! one, half the runs never hold more than one state, 99% at most 12 (at most 70 under load,
//! the property that keeps to two sizes and up to 6 buffers per bucket), the largest 147 (900
//! under load: two sizes each spread over three stacks of 2, 90 ways each, 30 after
//! rotation). Without factoring out the sizes that skip the tier the largest runs held over
//! 100,000 states, and without the rotations 8,100 under load. Each property's 2000 release
//! runs take 1 to 5 seconds.
//!
//! Threads are no source of nondeterminism any more: a thread's exit flushes its whole cache
//! into the partitions (bucket by bucket, oldest first) before `Restart`'s join returns, and a
//! later thread that the `thread_local` crate gives the same slot finds it empty and closed,
//! so every new thread starts with an empty cache, like the model's.
#![allow(dead_code)]

use std::collections::{BTreeSet, TryReserveError};
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::sync::mpsc;
use std::thread;

use arraypool::{ArrayPool, PoolStats, DEFAULT_THREAD_CACHE_BYTES};

/// Threads that act on the pool: 0 is the harness's own thread; 1 and 2 are workers that can be
/// restarted.
pub const THREADS: usize = 3;
/// At most this many buffers are out at once (more rents are skipped), to keep a run small.
pub const MAX_OUTSTANDING: usize = 24;
/// Worker restarts after this many are ignored: each exit flush is a batch move down whose
/// destination the model branches over, and a run needs only a few.
pub const MAX_RESTARTS: usize = 4;
/// Longest op sequence a byte string decodes to.
pub const MAX_OPS: usize = 200;

/// The pool under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Passed to the builder; the pool rounds it up to a power of two, at least 16.
    pub max_len: usize,
    pub per_bucket: usize,
    pub partitions: usize,
    /// The thread tier's budget per thread, in bytes (one of [`BUDGETS`]), or `None` for a
    /// pool without a thread tier.
    pub thread_cache: Option<usize>,
}

/// `max_len` values to choose from: powers of two and values the pool must round up.
pub const MAX_LENS: [usize; 6] = [1, 16, 100, 300, 1024, 4096];

/// Thread-tier budgets to choose from. Small ones make magazine limits, releases of other
/// sizes' magazines, moves down and sizes that skip the tier common: 64 bytes gives 16-byte
/// buffers a magazine of 2 and 32-byte ones of 1, and nothing else; 1000 is no power of two;
/// the default (built with `thread_cache(true)`, the others with `thread_cache_bytes`) gives
/// every size up to 4096 a magazine of 16 or 32.
pub const BUDGETS: [usize; 5] = [64, 256, 1000, 4096, DEFAULT_THREAD_CACHE_BYTES];

/// The most buffers one magazine holds (src/thread_cache.rs, documented on the builder).
const MAGAZINE_MAX: usize = 32;

impl Config {
    /// The `max_len` the pool must report.
    pub fn rounded_max_len(&self) -> usize {
        self.max_len.next_power_of_two().max(16)
    }

    fn buckets(&self) -> usize {
        bucket_index(self.rounded_max_len()) + 1
    }

    /// How many buffers each partition of a bucket keeps: never more partitions than
    /// `per_bucket`, bounds as even as possible, adding up to `per_bucket`.
    fn partition_bounds(&self) -> Vec<usize> {
        let partitions = self.partitions.min(self.per_bucket);
        let (each, extra) = (self.per_bucket / partitions, self.per_bucket % partitions);
        (0..partitions)
            .map(|i| each + usize::from(i < extra))
            .collect()
    }

    /// Each thread's budget in bytes; 0 without a thread tier.
    fn budget(&self) -> usize {
        self.thread_cache.unwrap_or(0)
    }

    /// The most buffers `bucket`'s magazine may hold: half the budget's worth, at most
    /// [`MAGAZINE_MAX`]; 0 when the size skips the thread tier (or there is none).
    fn magazine_limit(&self, bucket: usize) -> usize {
        (self.budget() / bucket_len(bucket) / 2).min(MAGAZINE_MAX)
    }

    fn build(&self) -> ArrayPool {
        let builder = ArrayPool::builder()
            .max_len(self.max_len)
            .per_bucket(self.per_bucket)
            .partitions(self.partitions);
        match self.thread_cache {
            None => builder.thread_cache(false),
            Some(DEFAULT_THREAD_CACHE_BYTES) => builder.thread_cache(true),
            Some(budget) => builder.thread_cache_bytes(budget),
        }
        .build()
        .expect("the model only builds valid pools")
    }
}

/// A requested length, resolved against the pool's `max_len` so that every choice means the
/// same thing for every configuration.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    Zero,
    /// 1 ..= 256.
    Small(u8),
    /// A bucket length (`16 << bucket`, bucket taken modulo the bucket count + 1) plus
    /// `delta` in -1 ..= 1.
    Edge {
        bucket: u8,
        delta: i8,
    },
    /// 1 ..= max_len.
    InRange(u16),
    /// max_len + 1 ..= 3 × max_len.
    OverMax(u16),
}

impl Size {
    pub fn resolve(self, max_len: usize) -> usize {
        match self {
            Size::Zero => 0,
            Size::Small(n) => usize::from(n) + 1,
            Size::Edge { bucket, delta } => {
                let buckets = bucket_index(max_len) + 2;
                let len = 16usize << (usize::from(bucket) % buckets);
                len.saturating_add_signed(isize::from(delta.clamp(-1, 1)))
            }
            Size::InRange(n) => 1 + usize::from(n) % max_len,
            Size::OverMax(n) => max_len + 1 + usize::from(n) % (2 * max_len),
        }
    }
}

/// Lengths no allocator can serve: above `isize::MAX`, so `try_rent` must refuse them without
/// asking the allocator (the fuzzer's malloc limit would flag an attempt).
pub const ABSURD_LENS: [usize; 4] = [
    usize::MAX,
    usize::MAX - 15,
    isize::MAX as usize + 1,
    (isize::MAX as usize + 1) | (1 << 20),
];

/// What the caller does to a rented buffer before giving it back.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    AsRented,
    /// `truncate` to `n % (len + 1)`: same capacity, shorter initialized part.
    Truncate(u16),
    /// `truncate`, then write `MaybeUninit::uninit()` over the whole spare capacity (safe
    /// code): the pool must never read those bytes.
    TruncateAndDeinit(u16),
    /// Push bytes up to at most the capacity: no reallocation.
    ExtendWithinCapacity(u16),
    /// Push one byte past the capacity: `Vec` doubles it, into the next bucket.
    GrowByPush,
    /// `reserve_exact` past the capacity by 1 ..= n + 1 bytes: rarely a bucket size.
    GrowExact(u16),
    /// `truncate` to `n % (len + 1)`, then `shrink_to` that: a smaller (often odd) capacity.
    Shrink(u16),
    /// `clear` + `shrink_to_fit`: capacity 0.
    ShrinkToNothing,
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Op {
    Rent {
        thread: u8,
        size: Size,
        zeroed: bool,
    },
    TryRent {
        thread: u8,
        size: Size,
    },
    TryRentAbsurd {
        thread: u8,
        which: u8,
    },
    /// Write fresh stamp bytes into outstanding buffer `slot` (modulo the count).
    Write {
        slot: u8,
        start: u16,
        len: u16,
    },
    Return {
        thread: u8,
        slot: u8,
        how: Mutation,
    },
    /// Return a `Vec::with_capacity(capacity)` that never came from the pool, `fill` bytes long.
    ReturnForeign {
        thread: u8,
        capacity: Size,
        fill: u16,
    },
    /// Drop an outstanding buffer instead of returning it.
    Forget {
        slot: u8,
    },
    /// Rent one more buffer of this size than the model says the pool can give this thread
    /// without allocating, then return them all: proves the pool holds no more than the model.
    Drain {
        thread: u8,
        size: Size,
    },
    /// Read `stats()` on a worker thread (the harness reads them after every step anyway).
    Stats {
        thread: u8,
    },
    /// End a worker thread and start a new one in its place.
    Restart {
        thread: u8,
    },
}

// ----- decoding ops from bytes (the fuzzer's input) ------------------------------------------

/// Reads fixed-size fields from the front of a byte string; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn size(&mut self) -> Size {
        let tag = self.u8();
        match tag % 8 {
            0 => Size::Zero,
            1 | 2 => Size::Small(self.u8()),
            3 | 4 => Size::Edge {
                bucket: self.u8(),
                delta: (tag >> 3) as i8 % 3 - 1,
            },
            5 | 6 => Size::InRange(self.u16()),
            _ => Size::OverMax(self.u16()),
        }
    }

    fn mutation(&mut self) -> Mutation {
        let tag = self.u8();
        match tag % 10 {
            0..=2 => Mutation::AsRented,
            3 => Mutation::Truncate(self.u16()),
            4 => Mutation::TruncateAndDeinit(self.u16()),
            5 => Mutation::ExtendWithinCapacity(self.u16()),
            6 => Mutation::GrowByPush,
            7 => Mutation::GrowExact(self.u16()),
            8 => Mutation::Shrink(self.u16()),
            _ => Mutation::ShrinkToNothing,
        }
    }
}

/// Decodes a fuzzer input: one byte of configuration (two with a thread tier: the second picks
/// the budget), then ops until the bytes run out.
pub fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut bytes = Bytes(data);
    let head = bytes.u8();
    let thread_cache = (head & 1 == 1).then(|| BUDGETS[usize::from(bytes.u8()) % BUDGETS.len()]);
    let config = Config {
        thread_cache,
        max_len: MAX_LENS[usize::from(head >> 1 & 7) % MAX_LENS.len()],
        per_bucket: 1 + usize::from(head >> 4 & 3),
        partitions: 1 + usize::from(head >> 6) % 3,
    };
    let mut ops = Vec::new();
    while !bytes.0.is_empty() && ops.len() < MAX_OPS {
        let tag = bytes.u8();
        // Three steps in four run on the harness thread; the top bits pick a worker for the
        // rest (a step on a worker costs two context switches, which dominate a run).
        let thread = [0, 0, 0, 0, 0, 0, 1, 2][usize::from(tag >> 5)];
        let op = match tag & 15 {
            0..=3 => Op::Rent {
                thread,
                size: bytes.size(),
                zeroed: tag & 16 != 0,
            },
            4 => Op::TryRent {
                thread,
                size: bytes.size(),
            },
            5 => Op::TryRentAbsurd {
                thread,
                which: bytes.u8(),
            },
            6 | 7 => Op::Write {
                slot: bytes.u8(),
                start: bytes.u16(),
                len: bytes.u16(),
            },
            8..=10 => Op::Return {
                thread,
                slot: bytes.u8(),
                how: bytes.mutation(),
            },
            11 => Op::ReturnForeign {
                thread,
                capacity: bytes.size(),
                fill: bytes.u16(),
            },
            12 => Op::Forget { slot: bytes.u8() },
            13 => Op::Drain {
                thread,
                size: bytes.size(),
            },
            14 => Op::Stats { thread },
            _ => Op::Restart { thread },
        };
        ops.push(op);
    }
    (config, ops)
}

/// Decodes and runs a fuzzer input.
pub fn run_bytes(data: &[u8]) {
    let (config, ops) = decode(data);
    run(config, &ops);
}

// ----- bucket arithmetic, restated independently of src/bucket.rs ----------------------------

fn bucket_index(n: usize) -> usize {
    debug_assert!(n >= 1);
    let len = n.next_power_of_two().max(16);
    (len.trailing_zeros() - 4) as usize
}

fn bucket_len(index: usize) -> usize {
    16 << index
}

// ----- the model ---------------------------------------------------------------------------

/// A buffer that entered the pool (a kept return): where it lives and the initialized bytes it
/// keeps. A buffer does not change while the pool holds it, so states name it by its index in
/// [`Spec::pooled`], which each kept return extends.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pooled {
    ptr: usize,
    contents: Vec<u8>,
}

/// An index into [`Spec::pooled`].
type Id = usize;

/// One bucket's magazine in one thread's cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Magazine {
    /// Oldest first: the top is the last.
    buffers: Vec<Id>,
    /// What it may hold (its storage): only slow paths change it.
    capacity: usize,
}

/// One thread's cache: a magazine per bucket, and the bytes they reserve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cache {
    magazines: Vec<Magazine>,
    /// The sum over buckets of capacity × bucket length; never above the budget.
    reserved: usize,
    /// Per bucket, whether its magazine served a rent or a return since the thread started or
    /// the budget last stood in a magazine's way (the ledger's activity against its mark).
    active: Vec<bool>,
}

impl Cache {
    /// A new thread's cache, and an exited thread's once flushed.
    fn empty(buckets: usize) -> Self {
        Self {
            magazines: vec![Magazine::default(); buckets],
            reserved: 0,
            active: vec![false; buckets],
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Counts {
    rented: u64,
    allocated: u64,
    allocated_over_max: u64,
    returned: u64,
    dropped_full: u64,
    dropped_foreign: u64,
    held_buffers: u64,
    held_bytes: u64,
}

impl Counts {
    /// A return the pool kept, in a magazine or a partition.
    fn kept(&mut self, capacity: usize) {
        self.returned += 1;
        self.held_buffers += 1;
        self.held_bytes += capacity as u64;
    }

    /// A held buffer that left: rented out (a hit), or freed on a move down.
    fn left(&mut self, capacity: usize) {
        self.held_buffers -= 1;
        self.held_bytes -= capacity as u64;
    }

    fn matches(&self, stats: &PoolStats) -> bool {
        (
            self.rented,
            self.allocated,
            self.allocated_over_max,
            self.returned,
            self.dropped_full,
            self.dropped_foreign,
            self.held_buffers,
            self.held_bytes,
        ) == (
            stats.rented,
            stats.allocated,
            stats.allocated_over_max,
            stats.returned,
            stats.dropped_full,
            stats.dropped_foreign,
            stats.held_buffers,
            stats.held_bytes,
        )
    }
}

/// What every state shares: the configuration and every buffer that ever entered the pool.
struct Spec {
    config: Config,
    /// Per partition, how many buffers of one bucket it keeps.
    bounds: Vec<usize>,
    pooled: Vec<Pooled>,
}

impl Spec {
    /// Whether `bucket` has a magazine in each thread's cache (else it skips the thread tier).
    fn cached(&self, bucket: usize) -> bool {
        self.config.magazine_limit(bucket) > 0
    }
}

/// What one bucket's partitions hold, in one state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Shelf {
    /// A size with a magazine: each partition's stack, oldest first (the top last). Its
    /// refills and moves down depend on which partition holds what.
    Stacks(Vec<Vec<Id>>),
    /// A size without one (every size, without a thread tier): its buffers, oldest first.
    /// Only its own rents and returns move them, one at a time, and which partition holds
    /// which decides nothing but which buffer a rent gets: [`Model::spreads`] tracks that.
    Pile(Vec<Id>),
}

impl Shelf {
    fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        let (stacks, pile): (&[Vec<Id>], &[Id]) = match self {
            Shelf::Stacks(stacks) => (stacks, &[]),
            Shelf::Pile(pile) => (&[], pile),
        };
        stacks.iter().flatten().chain(pile).copied()
    }

    fn len(&self) -> usize {
        self.ids().count()
    }
}

/// One possible state of the pool.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PoolState {
    /// Per bucket.
    partitions: Vec<Shelf>,
    /// Per thread (all empty, never used, without a thread tier).
    caches: Vec<Cache>,
    counts: Counts,
}

/// The answers to the questions a transition asks that the model cannot know: at which
/// partition each probe stopped. [`branch`] runs a transition once per sequence of answers,
/// depth first: the same answers make a transition ask the same questions, so a run that replays the
/// answers before the one that changed reaches that one again.
#[derive(Default)]
struct Choices {
    /// `(answer, options)` per question asked so far in this run.
    answers: Vec<(usize, usize)>,
    asked: usize,
}

impl Choices {
    /// Which of `options` (at least 1) possibilities happened.
    fn pick(&mut self, options: usize) -> usize {
        debug_assert!(options > 0);
        if options == 1 {
            return 0;
        }
        if self.asked == self.answers.len() {
            self.answers.push((0, options));
        }
        let (answer, asked_with) = self.answers[self.asked];
        debug_assert_eq!(asked_with, options, "a replay asked another question");
        self.asked += 1;
        answer
    }

    /// Moves to the next sequence of answers; `false` once every one was run.
    fn advance(&mut self) -> bool {
        debug_assert_eq!(self.asked, self.answers.len());
        self.asked = 0;
        while let Some((answer, options)) = self.answers.pop() {
            if answer + 1 < options {
                self.answers.push((answer + 1, options));
                return true;
            }
        }
        false
    }
}

/// What a rent handed out.
struct Rented<'a> {
    ptr: usize,
    len: usize,
    capacity: usize,
    contents: &'a [u8],
    /// False for `rent_zeroed`, which clears whatever the buffer held.
    kept_contents: bool,
}

impl<'a> Rented<'a> {
    fn of(buffer: &'a Vec<u8>, kept_contents: bool) -> Self {
        Self {
            ptr: buffer.as_ptr() as usize,
            len: buffer.len(),
            capacity: buffer.capacity(),
            contents: buffer,
            kept_contents,
        }
    }
}

type Check = Result<(), String>;

/// How many buffers one refill takes or one move down of a full magazine moves: half a
/// magazine, at least one.
fn batch(capacity: usize) -> usize {
    (capacity / 2).max(1)
}

/// Where a probe of `stacks` from an unknown home stops, among the stacks `fits` accepts:
/// each of them is the first in probe order from the home equal to itself. `None` if none
/// fits.
fn probe(
    choices: &mut Choices,
    stacks: &[Vec<Id>],
    fits: impl Fn(usize, &Vec<Id>) -> bool,
) -> Option<usize> {
    let candidates: Vec<usize> = (0..stacks.len()).filter(|&i| fits(i, &stacks[i])).collect();
    if candidates.is_empty() {
        return None;
    }
    Some(candidates[choices.pick(candidates.len())])
}

/// Rotates `stacks` to the least of the rotations that keep every stack's bound, so that states
/// which differ only by such a rotation become one. They are the same state to every future:
/// the model tries every home at every probe, and rotating the stacks only relabels the homes.
fn canonical(stacks: &mut [Vec<Id>], bounds: &[usize]) {
    let count = stacks.len();
    let view: &[Vec<Id>] = stacks;
    let rotated = |by: usize| (0..count).map(move |i| &view[(i + by) % count]);
    let least = (1..count)
        .filter(|&by| (0..count).all(|i| bounds[(i + by) % count] == bounds[i]))
        .fold(0, |least, by| {
            if rotated(by).lt(rotated(least)) {
                by
            } else {
                least
            }
        });
    stacks.rotate_left(least);
}

impl PoolState {
    fn new(spec: &Spec) -> Self {
        let buckets = spec.config.buckets();
        Self {
            partitions: (0..buckets)
                .map(|bucket| match spec.cached(bucket) {
                    true => Shelf::Stacks(vec![Vec::new(); spec.bounds.len()]),
                    false => Shelf::Pile(Vec::new()),
                })
                .collect(),
            caches: vec![Cache::empty(buckets); THREADS],
            counts: Counts::default(),
        }
    }

    /// Each size's stacks in their [`canonical`] rotation.
    fn canonicalize(&mut self, spec: &Spec) {
        for shelf in &mut self.partitions {
            if let Shelf::Stacks(stacks) = shelf {
                canonical(stacks, &spec.bounds);
            }
        }
    }

    fn holds(&self, spec: &Spec, ptr: usize) -> bool {
        let partitions = self.partitions.iter().flat_map(Shelf::ids);
        let caches = self.caches.iter().flat_map(|cache| &cache.magazines);
        partitions
            .chain(caches.flat_map(|magazine| magazine.buffers.iter().copied()))
            .any(|id| spec.pooled[id].ptr == ptr)
    }

    // ----- the partitions (src/partitions.rs, src/stack.rs) ----------------------------------

    /// A renter's pop from a size without a magazine, which handed out the buffer at `ptr`:
    /// one of those the partitions hold (which one, [`Model::spreads`] checks), or `None` when
    /// they hold none (the pool allocates).
    fn pop(&mut self, spec: &Spec, bucket: usize, ptr: usize) -> Result<Option<Id>, String> {
        let Shelf::Pile(pile) = &mut self.partitions[bucket] else {
            unreachable!("a size with a magazine moves buffers in batches");
        };
        if pile.is_empty() {
            return Ok(None);
        }
        match pile.iter().position(|&id| spec.pooled[id].ptr == ptr) {
            Some(i) => Ok(Some(pile.remove(i))),
            None => Err(format!(
                "a rent gave {ptr:#x}, but the partitions hold {} other buffer(s) of {} bytes \
                 that it should have handed out",
                pile.len(),
                bucket_len(bucket)
            )),
        }
    }

    /// A returned buffer of a size without a magazine: kept if a partition has room.
    fn push(&mut self, spec: &Spec, bucket: usize, id: Id) -> bool {
        let Shelf::Pile(pile) = &mut self.partitions[bucket] else {
            unreachable!("a size with a magazine moves buffers in batches");
        };
        // Ids grow with time, so pushing keeps the pile oldest first.
        pile.len() < spec.config.per_bucket && {
            pile.push(id);
            true
        }
    }

    /// The stacks of a size with a magazine.
    fn stacks(&mut self, bucket: usize) -> &mut Vec<Vec<Id>> {
        match &mut self.partitions[bucket] {
            Shelf::Stacks(stacks) => stacks,
            Shelf::Pile(_) => unreachable!("a size without a magazine moves one buffer at a time"),
        }
    }

    /// A refill's one move: the newest `min(want, len)` buffers of the first non-empty stack,
    /// in stack order (its newest last).
    fn pop_batch(&mut self, bucket: usize, want: usize, choices: &mut Choices) -> Vec<Id> {
        let stacks = self.stacks(bucket);
        let Some(at) = probe(choices, stacks, |_, stack| !stack.is_empty()) else {
            return Vec::new();
        };
        let stack = &mut stacks[at];
        stack.split_off(stack.len() - want.min(stack.len()))
    }

    /// A renter's return of a size with a magazine, which has no slot for it: onto the first
    /// stack in probe order with room; `false` when none has.
    fn push_one(&mut self, spec: &Spec, bucket: usize, id: Id, choices: &mut Choices) -> bool {
        let stacks = self.stacks(bucket);
        match probe(choices, stacks, |i, stack| stack.len() < spec.bounds[i]) {
            Some(at) => {
                stacks[at].push(id);
                true
            }
            None => false,
        }
    }

    /// A move down of `moving` (oldest first): onto the stacks with room, in probe order, each
    /// taking as many as its bound allows; what none has room for is freed and counted.
    fn move_down(&mut self, spec: &Spec, bucket: usize, moving: Vec<Id>, choices: &mut Choices) {
        if moving.is_empty() {
            return;
        }
        let stacks = self.stacks(bucket);
        let mut moving = moving.into_iter().peekable();
        if let Some(start) = probe(choices, stacks, |i, stack| stack.len() < spec.bounds[i]) {
            for step in 0..stacks.len() {
                let at = (start + step) % stacks.len();
                let room = spec.bounds[at] - stacks[at].len();
                stacks[at].extend(moving.by_ref().take(room));
                if moving.peek().is_none() {
                    return;
                }
            }
        }
        for _ in moving {
            self.counts.dropped_full += 1;
            self.counts.left(bucket_len(bucket));
        }
    }

    // ----- the thread tier (src/thread_cache.rs) ---------------------------------------------

    /// Grows `thread`'s magazine of `bucket` on a slow path (doubling from one slot, within
    /// its limit and the budget); when the budget stands in the way, first releases the
    /// magazines of other sizes idle since the last such time, the largest first, until the
    /// growth fits or none is left, and starts a new period. `false` if it cannot grow.
    fn grow(&mut self, spec: &Spec, thread: usize, bucket: usize, choices: &mut Choices) -> bool {
        let (budget, limit) = (spec.config.budget(), spec.config.magazine_limit(bucket));
        let len = bucket_len(bucket);
        let capacity = self.caches[thread].magazines[bucket].capacity;
        if capacity >= limit {
            return false;
        }
        let wanted = (capacity * 2).clamp(1, limit);
        let needed = (wanted - capacity) * len;
        if self.caches[thread].reserved + needed > budget {
            while budget - self.caches[thread].reserved < needed {
                // The largest idle other magazine by bytes; of equals, the highest bucket
                // (`Iterator::max_by_key` keeps the last maximum).
                let cache = &self.caches[thread];
                let mut victim = None;
                let mut most = 0;
                for (other, magazine) in cache.magazines.iter().enumerate() {
                    let bytes = magazine.capacity * bucket_len(other);
                    let idle = !cache.active[other];
                    if other != bucket && magazine.capacity > 0 && idle && bytes >= most {
                        (victim, most) = (Some(other), bytes);
                    }
                }
                let Some(victim) = victim else {
                    break;
                };
                self.release(spec, thread, victim, choices);
            }
            self.caches[thread].active.fill(false);
        }
        let cache = &mut self.caches[thread];
        let free = (budget - cache.reserved) / len;
        let target = wanted.min(capacity + free);
        if target <= capacity {
            return false;
        }
        cache.reserved += (target - capacity) * len;
        cache.magazines[bucket].capacity = target;
        true
    }

    /// Moves every buffer of `thread`'s magazine of `bucket` down and frees its storage.
    fn release(&mut self, spec: &Spec, thread: usize, bucket: usize, choices: &mut Choices) {
        let cache = &mut self.caches[thread];
        let magazine = std::mem::take(&mut cache.magazines[bucket]);
        cache.reserved -= magazine.capacity * bucket_len(bucket);
        self.move_down(spec, bucket, magazine.buffers, choices);
    }

    /// A rent whose magazine is empty, which handed out the buffer at `ptr`: grow the
    /// magazine, then take a batch from the partitions and pop its top; a size without a
    /// magazine pops from the partitions instead. `None`: the pool allocates.
    fn refill(
        &mut self,
        spec: &Spec,
        thread: usize,
        bucket: usize,
        ptr: usize,
        choices: &mut Choices,
    ) -> Result<Option<Id>, String> {
        let grew = self.grow(spec, thread, bucket, choices);
        let capacity = self.caches[thread].magazines[bucket].capacity;
        if !grew && capacity == 0 {
            if !spec.cached(bucket) {
                return self.pop(spec, bucket, ptr);
            }
            // A size with a magazine that the budget keeps at no slot for now: one buffer
            // from the first stack in probe order that has one.
            return Ok(self.pop_batch(bucket, 1, choices).pop());
        }
        let taken = self.pop_batch(bucket, batch(capacity), choices);
        let cache = &mut self.caches[thread];
        cache.magazines[bucket].buffers.extend(taken);
        let served = cache.magazines[bucket].buffers.pop();
        cache.active[bucket] |= served.is_some();
        Ok(served)
    }

    /// `thread` exits: every magazine is released, bucket by bucket.
    fn exit(&mut self, spec: &Spec, thread: usize, choices: &mut Choices) {
        for bucket in 0..spec.config.buckets() {
            self.release(spec, thread, bucket, choices);
        }
        // The next thread to open this cache starts with every size idle.
        self.caches[thread].active.fill(false);
        debug_assert_eq!(self.caches[thread], Cache::empty(spec.config.buckets()));
    }

    // ----- the operations ----------------------------------------------------------------

    /// A rent of `n` on `thread`, which handed out `got`.
    fn rent(
        &mut self,
        spec: &Spec,
        thread: usize,
        n: usize,
        got: &Rented<'_>,
        choices: &mut Choices,
    ) -> Check {
        let max_len = spec.config.rounded_max_len();
        if n == 0 {
            return expect(got.capacity == 0 && got.len == 0, || {
                format!("rent(0) gave len {} capacity {}", got.len, got.capacity)
            });
        }
        expect(got.len == n, || format!("rent({n}) gave len {}", got.len))?;
        if n > max_len {
            expect(got.capacity == n, || {
                format!("over-max rent({n}) gave capacity {}", got.capacity)
            })?;
            self.fresh(spec, got)?;
            self.counts.rented += 1;
            self.counts.allocated_over_max += 1;
            return Ok(());
        }
        let bucket = bucket_index(n);
        let capacity = bucket_len(bucket);
        expect(got.capacity == capacity, || {
            format!("rent({n}) gave capacity {}, not {capacity}", got.capacity)
        })?;
        self.counts.rented += 1;
        // The fast path and the slow one both pop the magazine's top when it has one.
        let (from, id) = match self.caches[thread].magazines[bucket].buffers.pop() {
            Some(id) => {
                self.caches[thread].active[bucket] = true;
                ("its magazine", Some(id))
            }
            None => (
                "the partitions",
                self.refill(spec, thread, bucket, got.ptr, choices)?,
            ),
        };
        let Some(id) = id else {
            self.fresh(spec, got)?;
            self.counts.allocated += 1;
            return Ok(());
        };
        let pooled = &spec.pooled[id];
        expect(pooled.ptr == got.ptr, || {
            format!(
                "rent({n}) on thread {thread} should get {:#x} from {from}, got {:#x}",
                pooled.ptr, got.ptr
            )
        })?;
        self.counts.left(capacity);
        if !got.kept_contents {
            return Ok(());
        }
        let keep = n.min(pooled.contents.len());
        let expected = pooled.contents[..keep]
            .iter()
            .copied()
            .chain(std::iter::repeat(0));
        for (i, (actual, expected)) in got.contents.iter().zip(expected).enumerate() {
            if *actual != expected {
                return Err(format!(
                    "rent({n}) reused {:#x}: byte {i} is {actual}, expected {expected} (the \
                     buffer came back with {} initialized bytes)",
                    got.ptr,
                    pooled.contents.len()
                ));
            }
        }
        Ok(())
    }

    /// A freshly allocated buffer must be all zeros and must not be one the pool holds.
    fn fresh(&self, spec: &Spec, got: &Rented<'_>) -> Check {
        expect(!self.holds(spec, got.ptr), || {
            format!(
                "allocated {:#x}, which the pool still holds: handed out twice",
                got.ptr
            )
        })?;
        match got.contents.iter().position(|&b| b != 0) {
            Some(i) => Err(format!(
                "a fresh buffer of len {} has byte {i} = {}, not zero",
                got.len, got.contents[i]
            )),
            None => Ok(()),
        }
    }

    /// A return on `thread` of a buffer with `capacity`: `kept` names it when the capacity is
    /// a bucket size (the pool keeps it, or has no room), else it is foreign (or capacity 0).
    fn give_back(
        &mut self,
        spec: &Spec,
        thread: usize,
        capacity: usize,
        kept: Option<Id>,
        choices: &mut Choices,
    ) {
        if capacity == 0 {
            return;
        }
        let Some(id) = kept else {
            self.counts.dropped_foreign += 1;
            return;
        };
        let bucket = bucket_index(capacity);
        let magazine = &self.caches[thread].magazines[bucket];
        // Full (capacity 0 included): the slow path.
        if magazine.buffers.len() == magazine.capacity && !self.grow(spec, thread, bucket, choices)
        {
            let magazine = &mut self.caches[thread].magazines[bucket];
            if magazine.capacity == 0 {
                // A size without a magazine, or one the budget keeps at no slot for now:
                // straight to the partitions.
                let pushed = match spec.cached(bucket) {
                    false => self.push(spec, bucket, id),
                    true => self.push_one(spec, bucket, id, choices),
                };
                if pushed {
                    self.counts.kept(capacity);
                } else {
                    self.counts.dropped_full += 1;
                }
                return;
            }
            // Full at its limit: the oldest batch moves down.
            let count = batch(magazine.buffers.len());
            let oldest = magazine.buffers.drain(..count).collect();
            self.move_down(spec, bucket, oldest, choices);
        }
        self.caches[thread].magazines[bucket].buffers.push(id);
        self.caches[thread].active[bucket] = true;
        self.counts.kept(capacity);
    }

    /// How many buffers of `bucket` a rent on `thread` can get without allocating.
    fn available(&self, thread: usize, bucket: usize) -> usize {
        let cached = self.caches[thread].magazines[bucket].buffers.len();
        cached + self.partitions[bucket].len()
    }

    fn check_stats(&self, stats: &PoolStats) -> Check {
        expect(self.counts.matches(stats), || {
            format!(
                "stats disagree with the model\n  pool:  {stats:?}\n  model: {:?}",
                self.counts
            )
        })
    }

    /// The model's own invariants: the bounds the library documents, and counts that agree
    /// with what the state holds.
    fn check_invariants(&self, spec: &Spec) -> Check {
        let config = &spec.config;
        let (mut buffers, mut bytes) = (0u64, 0u64);
        for (bucket, shelf) in self.partitions.iter().enumerate() {
            match shelf {
                Shelf::Stacks(stacks) => {
                    for (i, stack) in stacks.iter().enumerate() {
                        expect(stack.len() <= spec.bounds[i], || {
                            format!("model bucket {bucket} partition {i} holds {}", stack.len())
                        })?;
                    }
                }
                Shelf::Pile(pile) => expect(pile.len() <= config.per_bucket, || {
                    format!("model bucket {bucket} holds {}", pile.len())
                })?,
            }
            let held = shelf.len() as u64;
            buffers += held;
            bytes += held * bucket_len(bucket) as u64;
        }
        for (thread, cache) in self.caches.iter().enumerate() {
            let mut reserved = 0;
            for (bucket, magazine) in cache.magazines.iter().enumerate() {
                let limit = config.magazine_limit(bucket);
                expect(
                    magazine.buffers.len() <= magazine.capacity && magazine.capacity <= limit,
                    || {
                        format!(
                            "model thread {thread} bucket {bucket}: {} buffers, capacity {}, \
                             limit {limit}",
                            magazine.buffers.len(),
                            magazine.capacity
                        )
                    },
                )?;
                reserved += magazine.capacity * bucket_len(bucket);
                buffers += magazine.buffers.len() as u64;
                bytes += (magazine.buffers.len() * bucket_len(bucket)) as u64;
            }
            expect(
                reserved == cache.reserved && reserved <= config.budget(),
                || format!("model thread {thread} reserves {}", cache.reserved),
            )?;
        }
        expect(
            (buffers, bytes) == (self.counts.held_buffers, self.counts.held_bytes),
            || format!("the model holds {buffers} buffers of {bytes} bytes, counts say otherwise"),
        )
    }
}

fn expect(ok: bool, why: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// Every state the pool may be in, given what has been observed.
struct Model {
    spec: Spec,
    states: Vec<PoolState>,
    /// Per size without a magazine, every way its buffers may be spread over the partitions
    /// (each partition's stack, oldest first); nothing for the other sizes.
    ///
    /// Such a size's buffers move only on its own rents and returns, one at a time, and every
    /// state agrees on which buffers it holds (a push is kept when the partitions have room
    /// in total, a rent reveals the buffer it took), so how they are spread is independent of
    /// everything else and decides nothing but which buffer each of its rents gets. Kept in
    /// the states, those spreads would multiply over the sizes.
    spreads: Vec<Vec<Vec<Vec<Id>>>>,
    /// The most states held at once in this run, and the most spreads of one size.
    most_states: usize,
    most_spreads: usize,
}

impl Model {
    fn new(config: Config) -> Self {
        let spec = Spec {
            config,
            bounds: config.partition_bounds(),
            pooled: Vec::new(),
        };
        let spreads = (0..config.buckets())
            .map(|bucket| match spec.cached(bucket) {
                true => Vec::new(),
                false => vec![vec![Vec::new(); spec.bounds.len()]],
            })
            .collect();
        Self {
            states: vec![PoolState::new(&spec)],
            spec,
            spreads,
            most_states: 1,
            most_spreads: 1,
        }
    }

    /// Names a buffer that is about to enter the pool.
    fn admit(&mut self, ptr: usize, contents: &[u8]) -> Id {
        self.spec.pooled.push(Pooled {
            ptr,
            contents: contents.to_vec(),
        });
        self.spec.pooled.len() - 1
    }

    /// Applies `transition` to every state, once per way its probes of the partitions can go,
    /// keeping the distinct outcomes it accepts; fails (with the first rejection) if none does.
    fn step(
        &mut self,
        mut transition: impl FnMut(&mut PoolState, &Spec, &mut Choices) -> Check,
    ) -> Check {
        let spec = &self.spec;
        let states = std::mem::take(&mut self.states);
        self.states = branch(states, |state, choices| {
            transition(state, spec, choices)?;
            state.canonicalize(spec);
            Ok(())
        })?;
        self.most_states = self.most_states.max(self.states.len());
        Ok(())
    }

    /// A rent of a size without a magazine handed out the buffer at `ptr`: the top of the
    /// first non-empty stack, in each spread that fits (else the pool allocated).
    fn rent_from_spread(&mut self, bucket: usize, ptr: usize) -> Check {
        let spec = &self.spec;
        let spreads = std::mem::take(&mut self.spreads[bucket]);
        self.spreads[bucket] = branch(spreads, |stacks, choices| {
            let Some(at) = probe(choices, stacks, |_, stack| !stack.is_empty()) else {
                return Ok(());
            };
            let top = stacks[at].pop().expect("not empty");
            expect(spec.pooled[top].ptr == ptr, || {
                format!(
                    "a rent gave {ptr:#x}, which is on top of no partition's stack (one has \
                     {:#x})",
                    spec.pooled[top].ptr
                )
            })?;
            canonical(stacks, &spec.bounds);
            Ok(())
        })?;
        Ok(())
    }

    /// A returned buffer of a size without a magazine: onto the first stack with room, if any.
    fn return_to_spread(&mut self, bucket: usize, id: Id) {
        let bounds = &self.spec.bounds;
        let spreads = std::mem::take(&mut self.spreads[bucket]);
        self.spreads[bucket] = branch(spreads, |stacks, choices| {
            if let Some(at) = probe(choices, stacks, |i, stack| stack.len() < bounds[i]) {
                stacks[at].push(id);
            }
            canonical(stacks, bounds);
            Ok(())
        })
        .expect("a return fits every spread");
        self.most_spreads = self.most_spreads.max(self.spreads[bucket].len());
    }

    /// Every spread of a size holds the buffers every state says it holds.
    fn check_spreads(&self) -> Check {
        for (bucket, spreads) in self.spreads.iter().enumerate() {
            for state in &self.states {
                let held: Vec<Id> = state.partitions[bucket].ids().collect();
                for stacks in spreads {
                    let mut spread: Vec<Id> = stacks.iter().flatten().copied().collect();
                    spread.sort_unstable();
                    expect(spread == held, || {
                        format!("model bucket {bucket}: spread {stacks:?}, state {held:?}")
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Applies `transition` to each of `states`, once per way its probes of the partitions can go
/// (each sequence of [`Choices`]), and returns the distinct outcomes it accepts; the first
/// rejection if it accepts none.
fn branch<S: Clone + Ord>(
    states: Vec<S>,
    mut transition: impl FnMut(&mut S, &mut Choices) -> Check,
) -> Result<Vec<S>, String> {
    let mut accepted = BTreeSet::new();
    let mut first_error = None;
    for state in states {
        let mut choices = Choices::default();
        loop {
            let mut branch = state.clone();
            match transition(&mut branch, &mut choices) {
                Ok(()) => {
                    accepted.insert(branch);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            if !choices.advance() {
                break;
            }
        }
    }
    match first_error {
        Some(e) if accepted.is_empty() => Err(e),
        _ => Ok(accepted.into_iter().collect()),
    }
}

// ----- the harness -------------------------------------------------------------------------

enum Request {
    Rent(usize, bool),
    TryRent(usize),
    Return(Vec<u8>),
    Stats,
}

enum Reply {
    Buffer(Vec<u8>),
    TryBuffer(Result<Vec<u8>, TryReserveError>),
    Stats(PoolStats),
    Done,
}

fn serve(pool: &ArrayPool, request: Request) -> Reply {
    match request {
        Request::Rent(n, false) => Reply::Buffer(pool.rent(n)),
        Request::Rent(n, true) => Reply::Buffer(pool.rent_zeroed(n)),
        Request::TryRent(n) => Reply::TryBuffer(pool.try_rent(n)),
        Request::Return(buffer) => {
            pool.return_(buffer);
            Reply::Done
        }
        Request::Stats => Reply::Stats(pool.stats()),
    }
}

struct Worker<'scope> {
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Reply>,
    handle: thread::ScopedJoinHandle<'scope, ()>,
}

/// A buffer the harness holds, with what it must contain.
struct Outstanding {
    buffer: Vec<u8>,
    expected: Vec<u8>,
}

struct Harness<'scope, 'env> {
    pool: &'env ArrayPool,
    scope: &'scope thread::Scope<'scope, 'env>,
    workers: Vec<Option<Worker<'scope>>>,
    model: Model,
    outstanding: Vec<Outstanding>,
    next_stamp: u8,
    restarts: usize,
}

impl<'scope, 'env> Harness<'scope, 'env> {
    fn call(&mut self, thread: usize, request: Request) -> Reply {
        if thread == 0 {
            return serve(self.pool, request);
        }
        let pool = self.pool;
        let worker = self.workers[thread].get_or_insert_with(|| {
            let (requests, inbox) = mpsc::channel();
            let (outbox, replies) = mpsc::channel();
            let handle = self.scope.spawn(move || {
                for request in inbox {
                    if outbox.send(serve(pool, request)).is_err() {
                        break;
                    }
                }
            });
            Worker {
                requests,
                replies,
                handle,
            }
        });
        worker.requests.send(request).expect("worker alive");
        worker.replies.recv().expect("worker replies")
    }

    fn stamp(&mut self) -> u8 {
        // Stamps run 1..=255: zero is what unwritten bytes read as.
        self.next_stamp = self.next_stamp % 255 + 1;
        self.next_stamp
    }

    fn rent(&mut self, thread: usize, n: usize, zeroed: bool) -> Check {
        let Reply::Buffer(buffer) = self.call(thread, Request::Rent(n, zeroed)) else {
            unreachable!()
        };
        self.accept(thread, n, buffer, zeroed)
    }

    /// Checks a rented buffer against the model and takes it into the outstanding set.
    fn accept(&mut self, thread: usize, n: usize, buffer: Vec<u8>, zeroed: bool) -> Check {
        let got = Rented::of(&buffer, !zeroed);
        if got.capacity != 0 {
            if let Some(other) = self
                .outstanding
                .iter()
                .position(|o| o.buffer.as_ptr() as usize == got.ptr)
            {
                return Err(format!(
                    "rent({n}) handed out {:#x}, which outstanding buffer {other} still owns",
                    got.ptr
                ));
            }
        }
        if zeroed {
            expect(got.contents.iter().all(|&b| b == 0), || {
                format!("rent_zeroed({n}) has a non-zero byte")
            })?;
        }
        self.model
            .step(|state, spec, choices| state.rent(spec, thread, n, &got, choices))?;
        if (1..=self.model.spec.config.rounded_max_len()).contains(&n)
            && !self.model.spec.cached(bucket_index(n))
        {
            self.model.rent_from_spread(bucket_index(n), got.ptr)?;
        }
        let expected = buffer.clone();
        self.outstanding.push(Outstanding { buffer, expected });
        Ok(())
    }

    fn give_back(&mut self, thread: usize, buffer: Vec<u8>) -> Check {
        let (ptr, capacity) = (buffer.as_ptr() as usize, buffer.capacity());
        let max_len = self.model.spec.config.rounded_max_len();
        let kept = (capacity.is_power_of_two() && (16..=max_len).contains(&capacity))
            .then(|| self.model.admit(ptr, &buffer));
        self.call(thread, Request::Return(buffer));
        self.model.step(|state, spec, choices| {
            state.give_back(spec, thread, capacity, kept, choices);
            Ok(())
        })?;
        if let Some(id) = kept {
            if !self.model.spec.cached(bucket_index(capacity)) {
                self.model.return_to_spread(bucket_index(capacity), id);
            }
        }
        Ok(())
    }

    fn slot(&self, slot: u8) -> Option<usize> {
        (!self.outstanding.is_empty()).then(|| usize::from(slot) % self.outstanding.len())
    }

    fn step(&mut self, op: &Op) -> Check {
        let max_len = self.model.spec.config.rounded_max_len();
        match *op {
            Op::Rent {
                thread,
                size,
                zeroed,
            } => {
                if self.outstanding.len() < MAX_OUTSTANDING {
                    self.rent(usize::from(thread), size.resolve(max_len), zeroed)?;
                }
            }
            Op::TryRent { thread, size } => {
                let thread = usize::from(thread);
                let n = size.resolve(max_len);
                if self.outstanding.len() < MAX_OUTSTANDING {
                    let Reply::TryBuffer(result) = self.call(thread, Request::TryRent(n)) else {
                        unreachable!()
                    };
                    let buffer = result.map_err(|e| format!("try_rent({n}) failed: {e}"))?;
                    self.accept(thread, n, buffer, false)?;
                }
            }
            Op::TryRentAbsurd { thread, which } => {
                let n = ABSURD_LENS[usize::from(which) % ABSURD_LENS.len()];
                let Reply::TryBuffer(result) = self.call(usize::from(thread), Request::TryRent(n))
                else {
                    unreachable!()
                };
                // Refused, and not counted: the model's counters are unchanged.
                expect(result.is_err(), || format!("try_rent({n}) succeeded"))?;
            }
            Op::Write { slot, start, len } => {
                if let Some(i) = self.slot(slot) {
                    let stamp = self.stamp();
                    let held = &mut self.outstanding[i];
                    let size = held.buffer.len();
                    if size > 0 {
                        let start = usize::from(start) % size;
                        let end = start + (usize::from(len) % (size - start) + 1);
                        held.buffer[start..end].fill(stamp);
                        held.expected[start..end].fill(stamp);
                    }
                }
            }
            Op::Return { thread, slot, how } => {
                if let Some(i) = self.slot(slot) {
                    let Outstanding {
                        mut buffer,
                        expected,
                    } = self.outstanding.swap_remove(i);
                    expect(buffer == expected, || {
                        "a buffer changed while its owner held it".to_owned()
                    })?;
                    let stamp = self.stamp();
                    mutate(&mut buffer, how, stamp);
                    self.give_back(usize::from(thread), buffer)?;
                }
            }
            Op::ReturnForeign {
                thread,
                capacity,
                fill,
            } => {
                let capacity = capacity.resolve(max_len);
                let mut buffer = Vec::with_capacity(capacity);
                let stamp = self.stamp();
                buffer.resize(usize::from(fill) % (capacity + 1), stamp);
                self.give_back(usize::from(thread), buffer)?;
            }
            Op::Forget { slot } => {
                if let Some(i) = self.slot(slot) {
                    drop(self.outstanding.swap_remove(i));
                }
            }
            Op::Drain { thread, size } => {
                let thread = usize::from(thread);
                let n = size.resolve(max_len);
                if (1..=max_len).contains(&n) {
                    let bucket = bucket_index(n);
                    let most = self
                        .model
                        .states
                        .iter()
                        .map(|s| s.available(thread, bucket))
                        .max()
                        .unwrap_or(0);
                    let first = self.outstanding.len();
                    for _ in 0..=most {
                        self.rent(thread, n, false)?;
                    }
                    expect(
                        self.model
                            .states
                            .iter()
                            .all(|s| s.available(thread, bucket) == 0),
                        || {
                            format!(
                                "drained {} buffers, yet the model says more are pooled",
                                most + 1
                            )
                        },
                    )?;
                    for held in self.outstanding.split_off(first).into_iter().rev() {
                        self.give_back(thread, held.buffer)?;
                    }
                }
            }
            Op::Stats { thread } => {
                let Reply::Stats(stats) = self.call(usize::from(thread), Request::Stats) else {
                    unreachable!()
                };
                self.model.step(|state, _, _| state.check_stats(&stats))?;
            }
            Op::Restart { thread } => {
                let thread = 1 + usize::from(thread) % (THREADS - 1);
                if self.restarts < MAX_RESTARTS {
                    if let Some(worker) = self.workers[thread].take() {
                        self.restarts += 1;
                        drop(worker.requests);
                        // The join waits for the thread's exit flush too (its thread-local
                        // destructors run before it ends).
                        worker.handle.join().expect("worker exits cleanly");
                        self.model.step(|state, spec, choices| {
                            state.exit(spec, thread, choices);
                            Ok(())
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// After every step: stats match, the gauges are within the documented bound, the model's
    /// own invariants hold, and every outstanding buffer still holds what its owner put there.
    fn check(&mut self) -> Check {
        let stats = self.pool.stats();
        self.model.step(|state, _, _| state.check_stats(&stats))?;
        let spec = &self.model.spec;
        let config = &spec.config;
        // The partitions keep at most `per_bucket` per bucket; each live thread's cache at most
        // its budget in bytes, and per bucket at most the magazine's limit.
        let live = 1 + self.workers.iter().flatten().count() as u64;
        let buckets = 0..config.buckets();
        let per_bucket = config.per_bucket as u64;
        let bound_buffers: u64 = buckets
            .clone()
            .map(|b| per_bucket + live * config.magazine_limit(b) as u64)
            .sum();
        let bound_bytes: u64 = buckets
            .map(|b| bucket_len(b) as u64 * per_bucket)
            .sum::<u64>()
            + live * config.budget() as u64;
        expect(
            stats.held_buffers <= bound_buffers && stats.held_bytes <= bound_bytes,
            || format!("the pool holds more than its bound: {stats:?}"),
        )?;
        for state in &self.model.states {
            state.check_invariants(spec)?;
        }
        self.model.check_spreads()?;
        for (i, held) in self.outstanding.iter().enumerate() {
            expect(held.buffer == held.expected, || {
                format!("outstanding buffer {i} changed while its owner held it")
            })?;
        }
        Ok(())
    }
}
/// Applies `how` to a buffer about to be returned; new bytes get `stamp`.
fn mutate(buffer: &mut Vec<u8>, how: Mutation, stamp: u8) {
    let len = buffer.len();
    match how {
        Mutation::AsRented => {}
        Mutation::Truncate(n) => buffer.truncate(usize::from(n) % (len + 1)),
        Mutation::TruncateAndDeinit(n) => {
            buffer.truncate(usize::from(n) % (len + 1));
            for byte in buffer.spare_capacity_mut() {
                *byte = MaybeUninit::uninit();
            }
        }
        Mutation::ExtendWithinCapacity(n) => {
            let room = buffer.capacity() - len;
            buffer.resize(len + usize::from(n) % (room + 1), stamp);
        }
        Mutation::GrowByPush => {
            let capacity = buffer.capacity();
            buffer.resize(capacity, stamp);
            buffer.push(stamp);
        }
        Mutation::GrowExact(n) => {
            let past = buffer.capacity() - len + 1 + usize::from(n) % 64;
            buffer.reserve_exact(past);
        }
        Mutation::Shrink(n) => {
            let keep = usize::from(n) % (len + 1);
            buffer.truncate(keep);
            buffer.shrink_to(keep);
        }
        Mutation::ShrinkToNothing => {
            buffer.clear();
            buffer.shrink_to_fit();
        }
    }
}

/// Runs `ops` against a fresh pool built from `config`, panicking with a description of the
/// first disagreement between the pool and the model.
pub fn run(config: Config, ops: &[Op]) {
    let pool = config.build();
    assert_eq!(pool.max_len(), config.rounded_max_len(), "{config:?}");
    let mut kept_out = Vec::new();
    thread::scope(|scope| {
        let mut harness = Harness {
            pool: &pool,
            scope,
            workers: (0..THREADS).map(|_| None).collect(),
            model: Model::new(config),
            outstanding: Vec::new(),
            next_stamp: 0,
            restarts: 0,
        };
        for (i, op) in ops.iter().enumerate() {
            if let Err(why) = harness.step(op).and_then(|()| harness.check()) {
                let mut trace = String::new();
                for (j, op) in ops.iter().enumerate().take(i + 1) {
                    let _ = writeln!(trace, "  {j:3}: {op:?}");
                }
                panic!("{config:?}\nstep {i} ({op:?}): {why}\nops so far:\n{trace}");
            }
        }
        for worker in harness.workers.iter_mut().filter_map(Option::take) {
            drop(worker.requests);
            worker.handle.join().expect("worker exits cleanly");
        }
        if std::env::var_os("MODEL_STATES").is_some() {
            eprintln!(
                "model: {config:?}, {} ops: at most {} states, {} spreads of a size",
                ops.len(),
                harness.model.most_states,
                harness.model.most_spreads
            );
        }
        kept_out = harness.outstanding;
    });
    // Dropping the pool while its buffers are out leaves them valid, ordinary `Vec`s.
    drop(pool);
    for held in &mut kept_out {
        assert!(
            held.buffer == held.expected,
            "a buffer changed when its pool was dropped"
        );
        held.buffer.fill(0xa5);
        held.buffer.push(1);
    }
}
