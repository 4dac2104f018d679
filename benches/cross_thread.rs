//! Buffers that change threads, arraypool against plain `Vec`s (and zeropool) in the same run:
//!
//! - `cross_thread_handoff`: the buffer-pool workload "fill, get, send to another thread, which
//!   drops it": a producer rents and fills each buffer and sends it over a bounded channel; the
//!   consumer reads it and returns (or drops) it.
//! - `cross_thread_pipeline`: two stages. Stage 1 rents and fills an input buffer and sends it
//!   to stage 2, which rents an output buffer, transforms the input into it, returns the input
//!   and sends the output back; stage 1 reads and returns the outputs. Both threads rent and
//!   both return buffers that the other one rented.
//!
//! - `spin_handoff`: the hand-off without a channel's blocking: a producer rents and fills
//!   buffers of lengths cycling through a fixed sequence in 200–3200 B and pushes each into a
//!   bounded `crossbeam_queue::ArrayQueue`, spinning while it is full; a consumer pops
//!   (spinning while empty), reads a byte and returns the buffer. Against plain `Vec`s and
//!   three floors, each a step from the queue alone towards a pool: the queue carrying a `u64`
//!   (`u64_floor`: what the queue itself costs per message), carrying a 24-byte `[u64; 3]`, the
//!   size of a `Vec` (`item24_floor`: what moving a buffer handle costs by itself; its 32-byte
//!   slots take more cache-line traffic between the two cores), and a perfect recycler
//!   (`ring_floor`: the producer takes its buffer back from a second queue that the consumer
//!   pushes returned buffers into, so every buffer is filled as the pool's is and none is
//!   allocated in steady state, with no size classes, bound or counters).
//!
//! Each measurement covers `iters` buffers flowing end to end, both threads started inside it
//! (`iter_custom`), so the figure is the cost per buffer of the whole flow. The spin hand-off
//! times from the barrier that releases both threads to the consumer's last pop, so thread
//! start-up is left out.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::hint::{black_box, spin_loop};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use arraypool::ArrayPool;
use common::{config, zeropool};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use crossbeam_queue::ArrayQueue;
use zeropool::ZeroPool;

/// How many buffers may be in flight between the threads: deep enough that the two threads
/// rarely wait on each other, as in a real pipeline with a queue between stages.
const IN_FLIGHT: usize = 64;

const SIZES: [usize; 3] = [4096, 65536, 1 << 20];

/// A buffer source and sink, so that each workload is written once for every contender. Each
/// contender makes a filled or copied buffer its own cheapest safe way (a plain `Vec` writes
/// each byte once, with no zeroing first).
trait Source: Sync {
    type Buffer: Send + AsRef<[u8]>;
    fn filled(&self, len: usize, byte: u8) -> Self::Buffer;
    fn copied(&self, from: &[u8]) -> Self::Buffer;
    fn put(&self, buffer: Self::Buffer);
}

struct Pool(&'static ArrayPool);

impl Source for Pool {
    type Buffer = Vec<u8>;
    #[inline]
    fn filled(&self, len: usize, byte: u8) -> Vec<u8> {
        let mut buffer = self.0.rent(len);
        buffer.fill(byte);
        buffer
    }
    #[inline]
    fn copied(&self, from: &[u8]) -> Vec<u8> {
        let mut buffer = self.0.rent(from.len());
        buffer.copy_from_slice(from);
        buffer
    }
    #[inline]
    fn put(&self, buffer: Vec<u8>) {
        self.0.return_(buffer);
    }
}

/// Plain `Vec`s: allocated where they are filled, freed where they are dropped.
struct PlainVec;

impl Source for PlainVec {
    type Buffer = Vec<u8>;
    #[inline]
    fn filled(&self, len: usize, byte: u8) -> Vec<u8> {
        vec![byte; len]
    }
    #[inline]
    fn copied(&self, from: &[u8]) -> Vec<u8> {
        from.to_vec()
    }
    #[inline]
    fn put(&self, buffer: Vec<u8>) {
        drop(buffer);
    }
}

/// zeropool's `Buf` (zeroed on allocation, returned to the pool on drop). Its `alloc_uninit`
/// cannot be filled and read in safe code, so the zeroing is part of its cost here.
struct Zero(&'static ZeroPool);

impl Source for Zero {
    type Buffer = zeropool::Buf<'static>;
    #[inline]
    fn filled(&self, len: usize, byte: u8) -> Self::Buffer {
        let mut buffer = self.0.alloc(len);
        buffer.fill(byte);
        buffer
    }
    #[inline]
    fn copied(&self, from: &[u8]) -> Self::Buffer {
        let mut buffer = self.0.alloc(from.len());
        buffer.copy_from_slice(from);
        buffer
    }
    #[inline]
    fn put(&self, buffer: Self::Buffer) {
        drop(buffer);
    }
}

/// The perfect recycler, the spin hand-off's `ring_floor`: buffers go back to the producer
/// through a second `ArrayQueue`, which the consumer pushes returned buffers into. The producer
/// takes one from it, or makes a `Vec::with_capacity(4096)` (room for any length of the
/// hand-off) only when it is empty, and clears it and resizes it to the length, filled with the
/// byte: the same bytes written as the pool's `rent` + `fill`, and no allocation in steady
/// state. Only one producer and one consumer, one size, no bound on what it keeps but the
/// queue's: the least a pool could do to move buffers between two threads.
struct Ring {
    returned: ArrayQueue<Vec<u8>>,
}

impl Ring {
    /// Room for every buffer that can exist at once, so the consumer's push never fails: the
    /// producer makes one only when `returned` is empty, when at most `IN_FLIGHT` are in the
    /// hand-off queue and one in each thread's hands.
    fn new() -> Self {
        Self {
            returned: ArrayQueue::new(2 * IN_FLIGHT),
        }
    }
}

impl Source for Ring {
    type Buffer = Vec<u8>;
    #[inline]
    fn filled(&self, len: usize, byte: u8) -> Vec<u8> {
        let mut buffer = self
            .returned
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(4096));
        buffer.clear();
        buffer.resize(len, byte);
        buffer
    }
    #[inline]
    fn copied(&self, from: &[u8]) -> Vec<u8> {
        let mut buffer = self
            .returned
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(4096));
        buffer.clear();
        buffer.extend_from_slice(from);
        buffer
    }
    #[inline]
    fn put(&self, buffer: Vec<u8>) {
        // Never full (see `new`); a buffer it had no room for would simply be freed.
        drop(self.returned.push(buffer));
    }
}

fn drain<S: Source>(source: &S, outputs: &Receiver<S::Buffer>) {
    while let Ok(output) = outputs.try_recv() {
        black_box(output.as_ref()[0]);
        source.put(output);
    }
}

/// Producer fills, consumer reads one byte and returns.
fn handoff<S: Source>(source: &S, len: usize, iters: u64) -> Duration {
    let start = Instant::now();
    thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<S::Buffer>(IN_FLIGHT);
        scope.spawn(move || {
            for buffer in receiver {
                black_box(buffer.as_ref()[len - 1]);
                source.put(buffer);
            }
        });
        for i in 0..iters {
            let buffer = source.filled(len, i as u8);
            sender
                .send(buffer)
                .expect("the consumer outlives the producer");
        }
    });
    start.elapsed()
}

/// Stage 1 (this thread) fills inputs and recycles outputs; stage 2 transforms.
fn pipeline<S: Source>(source: &S, len: usize, iters: u64) -> Duration {
    let start = Instant::now();
    thread::scope(|scope| {
        let (to_stage2, inputs) = sync_channel::<S::Buffer>(IN_FLIGHT);
        let (to_stage1, outputs) = sync_channel::<S::Buffer>(IN_FLIGHT);
        scope.spawn(move || {
            for input in inputs {
                let output = source.copied(input.as_ref());
                source.put(input);
                if to_stage1.send(output).is_err() {
                    break;
                }
            }
        });
        for i in 0..iters {
            drain(source, &outputs);
            let input = source.filled(len, i as u8);
            to_stage2.send(input).expect("stage 2 outlives stage 1");
        }
        drop(to_stage2);
        for output in outputs {
            black_box(output.as_ref()[0]);
            source.put(output);
        }
    });
    start.elapsed()
}

fn cross_thread(c: &mut Criterion) {
    for (name, run) in [
        ("cross_thread_handoff", Workload::Handoff),
        ("cross_thread_pipeline", Workload::Pipeline),
    ] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for size in SIZES {
            let pool = Pool(common::pool_for(size, common::large_pool()));
            group.bench_with_input(BenchmarkId::new("arraypool", size), &size, |b, &n| {
                b.iter_custom(|iters| run.run(&pool, n, iters))
            });
            group.bench_with_input(BenchmarkId::new("vec", size), &size, |b, &n| {
                b.iter_custom(|iters| run.run(&PlainVec, n, iters))
            });
            let zero = Zero(zeropool());
            group.bench_with_input(BenchmarkId::new("zeropool_alloc", size), &size, |b, &n| {
                b.iter_custom(|iters| run.run(&zero, n, iters))
            });
        }
        group.finish();
    }
}

/// What the spin hand-off carries: made by the producer, consumed by the consumer.
trait Message: Sync {
    type Item: Send;
    fn make(&self, len: usize, byte: u8) -> Self::Item;
    fn consume(&self, item: Self::Item);
}

/// A buffer: filled by the producer; the consumer reads its last byte and returns it.
impl<S: Source> Message for S {
    type Item = S::Buffer;
    #[inline]
    fn make(&self, len: usize, byte: u8) -> S::Buffer {
        self.filled(len, byte)
    }
    #[inline]
    fn consume(&self, buffer: S::Buffer) {
        let bytes = buffer.as_ref();
        black_box(bytes[bytes.len() - 1]);
        self.put(buffer);
    }
}

/// The floor: the queue carrying an integer (the length and the byte) instead of a buffer, so
/// what is left is the queue's own cost and the two threads' cache-line traffic.
struct Integer;

impl Message for Integer {
    type Item = u64;
    #[inline]
    fn make(&self, len: usize, byte: u8) -> u64 {
        (len as u64) << 8 | u64::from(byte)
    }
    #[inline]
    fn consume(&self, item: u64) {
        black_box(item);
    }
}

/// The queue carrying a 24-byte item, the size of a `Vec<u8>` (pointer, capacity, length),
/// built from the same length and byte as the `u64` floor's: what moving a buffer's handle
/// through the queue costs, with no buffer behind it. `ArrayQueue` slots are the item plus a
/// stamp, 32 bytes here against 16 for a `u64`, so two slots share a cache line instead of four.
struct Item24;

impl Message for Item24 {
    type Item = [u64; 3];
    #[inline]
    fn make(&self, len: usize, byte: u8) -> [u64; 3] {
        let len = len as u64;
        [len, u64::from(byte), len << 8 | u64::from(byte)]
    }
    #[inline]
    fn consume(&self, item: [u64; 3]) {
        black_box(item);
    }
}

/// The spin hand-off's lengths: a fixed pseudo-random sequence (xorshift64), uniform over
/// 200 ..= 3200 B, so every contender sends the same mix (buckets 256 B to 4 KiB).
fn spin_lengths() -> [usize; 64] {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    std::array::from_fn(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        200 + (state % 3001) as usize
    })
}

/// `iters` messages from a producer thread to a consumer thread through a bounded
/// `ArrayQueue`, both spinning (`spin_loop`) while it is full or empty. The calling thread only
/// spawns and joins, so on two cores it does not compete with the two spinning threads; both
/// start on a `Barrier` (which blocks, it does not spin), and the time runs from the
/// producer's release to the consumer's last message.
fn spin_handoff<M: Message>(message: &M, lengths: &[usize; 64], iters: u64) -> Duration {
    let queue = ArrayQueue::<M::Item>::new(IN_FLIGHT);
    let barrier = Barrier::new(2);
    thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            barrier.wait();
            for _ in 0..iters {
                let item = loop {
                    match queue.pop() {
                        Some(item) => break item,
                        None => spin_loop(),
                    }
                };
                message.consume(item);
            }
            Instant::now()
        });
        let producer = scope.spawn(|| {
            barrier.wait();
            let start = Instant::now();
            for i in 0..iters {
                let len = lengths[i as usize % lengths.len()];
                // Never 0: `vec![0; n]` would take the allocator's zeroed path instead of a fill.
                let mut item = message.make(len, i as u8 | 1);
                while let Err(back) = queue.push(item) {
                    item = back;
                    spin_loop();
                }
            }
            start
        });
        let start = producer.join().expect("the producer panicked");
        let end = consumer.join().expect("the consumer panicked");
        end.saturating_duration_since(start)
    })
}

fn spin_handoff_group(c: &mut Criterion) {
    let lengths = spin_lengths();
    let mut group = c.benchmark_group("spin_handoff");
    group.sample_size(10);
    let pool = Pool(ArrayPool::shared());
    group.bench_function("arraypool", |b| {
        b.iter_custom(|iters| spin_handoff(&pool, &lengths, iters))
    });
    group.bench_function("vec", |b| {
        b.iter_custom(|iters| spin_handoff(&PlainVec, &lengths, iters))
    });
    group.bench_function("u64_floor", |b| {
        b.iter_custom(|iters| spin_handoff(&Integer, &lengths, iters))
    });
    group.bench_function("item24_floor", |b| {
        b.iter_custom(|iters| spin_handoff(&Item24, &lengths, iters))
    });
    // One recycler for the whole benchmark, so it stays warm between measurements as the
    // shared pool does.
    let ring = Ring::new();
    group.bench_function("ring_floor", |b| {
        b.iter_custom(|iters| spin_handoff(&ring, &lengths, iters))
    });
    group.finish();
}

#[derive(Clone, Copy)]
enum Workload {
    Handoff,
    Pipeline,
}

impl Workload {
    fn run<S: Source>(self, source: &S, len: usize, iters: u64) -> Duration {
        match self {
            Workload::Handoff => handoff(source, len, iters),
            Workload::Pipeline => pipeline(source, len, iters),
        }
    }
}

criterion_group! {
    name = benches;
    config = config().measurement_time(Duration::from_millis(600));
    targets = cross_thread, spin_handoff_group
}
criterion_main!(benches);
