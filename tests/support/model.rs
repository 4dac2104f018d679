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
//!   is always a buffer the model says the pool holds;
//! - an outstanding buffer's contents change only through its owner;
//! - `stats()` equals the model's counters and gauges exactly, and the gauges stay within the
//!   documented bound.
//!
//! Custom pools keep the model exact: a small `max_len`, a small `per_bucket`, and no other user.
//! One thing is not deterministic: with a thread cache, a thread that starts after another
//! exited may inherit the exited thread's cache slots (the `thread_local` crate recycles thread
//! ids; which thread gets which id depends on every thread in the process). The model keeps
//! every possible state and drops those the observations contradict; it fails when none is left.
#![allow(dead_code)]

use std::collections::TryReserveError;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::sync::mpsc;
use std::thread;

use arraypool::{ArrayPool, PoolStats};

/// Threads that act on the pool: 0 is the harness's own thread; 1 and 2 are workers that can be
/// restarted.
pub const THREADS: usize = 3;
/// At most this many buffers are out at once (more rents are skipped), to keep a run small.
pub const MAX_OUTSTANDING: usize = 24;
/// Worker restarts after this many are ignored: each one can multiply the model's states.
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
    pub thread_cache: bool,
}

/// `max_len` values to choose from: powers of two and values the pool must round up.
pub const MAX_LENS: [usize; 6] = [1, 16, 100, 300, 1024, 4096];

impl Config {
    /// The `max_len` the pool must report.
    pub fn rounded_max_len(&self) -> usize {
        self.max_len.next_power_of_two().max(16)
    }

    fn buckets(&self) -> usize {
        bucket_index(self.rounded_max_len()) + 1
    }

    fn build(&self) -> ArrayPool {
        ArrayPool::builder()
            .max_len(self.max_len)
            .per_bucket(self.per_bucket)
            .partitions(self.partitions)
            .thread_cache(self.thread_cache)
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

/// Decodes a fuzzer input: one byte of configuration, then ops until the bytes run out.
pub fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut bytes = Bytes(data);
    let head = bytes.u8();
    let config = Config {
        thread_cache: head & 1 == 1,
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

/// A buffer the model says the pool holds: where it lives and the initialized bytes it keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pooled {
    ptr: usize,
    contents: Vec<u8>,
}

/// One thread-cache: a slot per bucket.
type Cache = Vec<Option<Pooled>>;

/// Which cache a thread uses, in a pool with a thread cache.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CacheOf {
    /// The thread has no `thread_local` id yet: it finds nothing cached, and may later inherit
    /// an orphaned cache. The model does not assume when a thread gets its id, only that it
    /// has one by its first kept return.
    Unresolved,
    Cache(Cache),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    fn hold(&mut self, capacity: usize) {
        self.held_buffers += 1;
        self.held_bytes += capacity as u64;
    }

    fn release(&mut self, capacity: usize) {
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

/// One possible state of the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PoolState {
    /// Per bucket, what the partitions hold, sorted by pointer (which partition does not
    /// matter to a single caller: rents and returns probe them all).
    partitions: Vec<Vec<Pooled>>,
    /// Per thread (with a thread cache).
    caches: Vec<CacheOf>,
    /// Caches of exited threads, which a later thread may inherit; sorted, never empty.
    orphans: Vec<Cache>,
    counts: Counts,
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

impl PoolState {
    fn new(config: &Config) -> Self {
        let buckets = config.buckets();
        Self {
            partitions: vec![Vec::new(); buckets],
            // Even the harness thread may have no `thread_local` id yet, and then it may
            // inherit the cache of a worker that exited.
            caches: vec![CacheOf::Unresolved; THREADS],
            orphans: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn holds(&self, ptr: usize) -> bool {
        let cached = |cache: &Cache| cache.iter().flatten().any(|p| p.ptr == ptr);
        self.partitions.iter().flatten().any(|p| p.ptr == ptr)
            || self.caches.iter().any(|c| match c {
                CacheOf::Cache(cache) => cached(cache),
                CacheOf::Unresolved => false,
            })
            || self.orphans.iter().any(cached)
    }

    /// A rent of `n` on `thread`, which handed out `got`.
    fn rent(&mut self, config: &Config, thread: usize, n: usize, got: &Rented<'_>) -> Check {
        let max_len = config.rounded_max_len();
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
            self.fresh(got)?;
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
        let cached = match &mut self.caches[thread] {
            CacheOf::Cache(cache) if config.thread_cache => cache[bucket].take(),
            _ => None,
        };
        let pooled = match cached {
            Some(pooled) => {
                expect(pooled.ptr == got.ptr, || {
                    format!(
                        "rent({n}) on thread {thread} should hit its cache ({:#x}), got {:#x}",
                        pooled.ptr, got.ptr
                    )
                })?;
                pooled
            }
            None => {
                let stack = &mut self.partitions[bucket];
                match stack.iter().position(|p| p.ptr == got.ptr) {
                    Some(i) => stack.remove(i),
                    None if stack.is_empty() => {
                        self.fresh(got)?;
                        self.counts.allocated += 1;
                        return Ok(());
                    }
                    None => {
                        return Err(format!(
                            "rent({n}) gave {:#x}, but the pool holds {} other buffer(s) of \
                             {capacity} bytes that it should have handed out",
                            got.ptr,
                            stack.len()
                        ))
                    }
                }
            }
        };
        self.counts.release(capacity);
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
    fn fresh(&self, got: &Rented<'_>) -> Check {
        expect(!self.holds(got.ptr), || {
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

    /// A return on `thread` of a buffer at `ptr` with `capacity` and initialized `contents`.
    fn give_back(
        &mut self,
        config: &Config,
        thread: usize,
        ptr: usize,
        capacity: usize,
        contents: &[u8],
    ) {
        if capacity == 0 {
            return;
        }
        let max_len = config.rounded_max_len();
        if !(capacity.is_power_of_two() && (16..=max_len).contains(&capacity)) {
            self.counts.dropped_foreign += 1;
            return;
        }
        let bucket = bucket_index(capacity);
        let incoming = Pooled {
            ptr,
            contents: contents.to_vec(),
        };
        if !config.thread_cache {
            self.push(config, bucket, incoming, false);
            return;
        }
        self.counts.returned += 1;
        self.counts.hold(capacity);
        let CacheOf::Cache(cache) = &mut self.caches[thread] else {
            unreachable!("resolved by `branch_caches` before a return");
        };
        if let Some(displaced) = cache[bucket].replace(incoming) {
            self.push(config, bucket, displaced, true);
        }
    }

    /// Pushes into the partitions: kept if there is room, else freed.
    fn push(&mut self, config: &Config, bucket: usize, buffer: Pooled, already_held: bool) {
        let capacity = bucket_len(bucket);
        let stack = &mut self.partitions[bucket];
        if stack.len() < config.per_bucket {
            let at = stack.partition_point(|p| p.ptr < buffer.ptr);
            stack.insert(at, buffer);
            if !already_held {
                self.counts.returned += 1;
                self.counts.hold(capacity);
            }
        } else {
            self.counts.dropped_full += 1;
            if already_held {
                self.counts.release(capacity);
            }
        }
    }

    /// How many buffers of `bucket` a rent on `thread` can get without allocating.
    fn available(&self, config: &Config, thread: usize, bucket: usize) -> usize {
        let cached = match &self.caches[thread] {
            CacheOf::Cache(cache) if config.thread_cache => usize::from(cache[bucket].is_some()),
            _ => 0,
        };
        cached + self.partitions[bucket].len()
    }

    fn exit(&mut self, thread: usize) {
        if let CacheOf::Cache(cache) =
            std::mem::replace(&mut self.caches[thread], CacheOf::Unresolved)
        {
            if cache.iter().any(Option::is_some) {
                self.orphans.push(cache);
                self.orphans.sort_by_key(cache_key);
            }
        }
    }

    /// The states this one can be in once `thread` may have a cache: a fresh one, any orphan,
    /// or (if `may_stay_unresolved`) still none.
    fn branch_caches(
        self,
        config: &Config,
        thread: usize,
        may_stay_unresolved: bool,
        into: &mut Vec<PoolState>,
    ) {
        if !matches!(self.caches[thread], CacheOf::Unresolved) {
            into.push(self);
            return;
        }
        if may_stay_unresolved {
            into.push(self.clone());
        }
        for adopt in (0..self.orphans.len()).map(Some).chain([None]) {
            let mut state = self.clone();
            state.caches[thread] = CacheOf::Cache(match adopt {
                Some(i) => state.orphans.remove(i),
                None => vec![None; config.buckets()],
            });
            into.push(state);
        }
    }

    fn check_stats(&self, stats: &PoolStats) -> Check {
        expect(self.counts.matches(stats), || {
            format!(
                "stats disagree with the model\n  pool:  {stats:?}\n  model: {:?}",
                self.counts
            )
        })
    }
}

fn cache_key(cache: &Cache) -> Vec<usize> {
    cache.iter().flatten().map(|p| p.ptr).collect()
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
    config: Config,
    states: Vec<PoolState>,
}

impl Model {
    /// Applies an observation to every state, keeping those it fits; fails if none does.
    fn observe(&mut self, mut step: impl FnMut(&mut PoolState) -> Check) -> Check {
        if let [state] = self.states.as_mut_slice() {
            return step(state);
        }
        let mut first_error = None;
        self.states.retain_mut(|state| match step(state) {
            Ok(()) => true,
            Err(e) => {
                first_error.get_or_insert(e);
                false
            }
        });
        match first_error {
            Some(e) if self.states.is_empty() => Err(e),
            _ => {
                self.dedup();
                Ok(())
            }
        }
    }

    /// Before an operation that may give `thread` its `thread_local` id (a rent within the
    /// buckets may; a kept return must), branch on which cache it gets.
    fn resolve_cache(&mut self, thread: usize, must_resolve: bool) {
        if !self.config.thread_cache {
            return;
        }
        let mut states = Vec::with_capacity(self.states.len());
        for state in self.states.drain(..) {
            state.branch_caches(&self.config, thread, !must_resolve, &mut states);
        }
        self.states = states;
        self.dedup();
    }

    fn dedup(&mut self) {
        let mut unique: Vec<PoolState> = Vec::with_capacity(self.states.len());
        for state in self.states.drain(..) {
            if !unique.contains(&state) {
                unique.push(state);
            }
        }
        self.states = unique;
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
    /// Threads that may have a cache slot in the pool (the harness's and every worker's).
    threads_seen: usize,
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
        self.before_rent(thread, n);
        let Reply::Buffer(buffer) = self.call(thread, Request::Rent(n, zeroed)) else {
            unreachable!()
        };
        self.accept(thread, n, buffer, zeroed)
    }

    fn before_rent(&mut self, thread: usize, n: usize) {
        if (1..=self.model.config.rounded_max_len()).contains(&n) {
            self.model.resolve_cache(thread, false);
        }
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
        let config = self.model.config;
        self.model
            .observe(|state| state.rent(&config, thread, n, &got))?;
        let expected = buffer.clone();
        self.outstanding.push(Outstanding { buffer, expected });
        Ok(())
    }

    fn give_back(&mut self, thread: usize, buffer: Vec<u8>) -> Check {
        let (ptr, capacity) = (buffer.as_ptr() as usize, buffer.capacity());
        let contents = buffer.clone();
        let config = self.model.config;
        let kept =
            capacity.is_power_of_two() && (16..=config.rounded_max_len()).contains(&capacity);
        if kept {
            self.model.resolve_cache(thread, true);
        }
        self.call(thread, Request::Return(buffer));
        self.model.observe(|state| {
            state.give_back(&config, thread, ptr, capacity, &contents);
            Ok(())
        })
    }

    fn slot(&self, slot: u8) -> Option<usize> {
        (!self.outstanding.is_empty()).then(|| usize::from(slot) % self.outstanding.len())
    }

    fn step(&mut self, op: &Op) -> Check {
        let max_len = self.model.config.rounded_max_len();
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
                    self.before_rent(thread, n);
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
                    let config = self.model.config;
                    let most = self
                        .model
                        .states
                        .iter()
                        .map(|s| s.available(&config, thread, bucket))
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
                            .all(|s| s.available(&config, thread, bucket) == 0),
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
                self.model.observe(|state| state.check_stats(&stats))?;
            }
            Op::Restart { thread } => {
                let thread = 1 + usize::from(thread) % (THREADS - 1);
                if self.restarts < MAX_RESTARTS {
                    if let Some(worker) = self.workers[thread].take() {
                        self.restarts += 1;
                        self.threads_seen += 1;
                        drop(worker.requests);
                        worker.handle.join().expect("worker exits cleanly");
                        for state in &mut self.model.states {
                            state.exit(thread);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// After every step: stats match, the gauges are within the documented bound, and every
    /// outstanding buffer still holds what its owner put there.
    fn check(&mut self) -> Check {
        let stats = self.pool.stats();
        self.model.observe(|state| state.check_stats(&stats))?;
        let config = self.model.config;
        // Per bucket: `per_bucket` in the partitions, plus one per thread that ever had a cache.
        let per_bucket = config.per_bucket as u64
            + if config.thread_cache {
                self.threads_seen as u64
            } else {
                0
            };
        let buckets = config.buckets();
        let bound_bytes: u64 = (0..buckets)
            .map(|b| bucket_len(b) as u64 * per_bucket)
            .sum();
        expect(
            stats.held_buffers <= per_bucket * buckets as u64 && stats.held_bytes <= bound_bytes,
            || format!("the pool holds more than its bound: {stats:?}"),
        )?;
        for state in &self.model.states {
            for (bucket, stack) in state.partitions.iter().enumerate() {
                expect(stack.len() <= config.per_bucket, || {
                    format!("model bucket {bucket} holds {} buffers", stack.len())
                })?;
            }
        }
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
            model: Model {
                config,
                states: vec![PoolState::new(&config)],
            },
            outstanding: Vec::new(),
            next_stamp: 0,
            restarts: 0,
            threads_seen: THREADS,
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
