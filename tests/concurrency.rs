//! Stress tests: 8 threads on however many cores there are (2 on CI), renting and returning
//! buffers of mixed sizes, with returns on other threads and threads that come and go.
//!
//! Two independent checks catch a buffer handed to two renters at once:
//! - canary bytes: each renter fills its buffer with its own tag and stamps both ends with a
//!   number unique to that rent, and checks them all just before returning it;
//! - a set of the addresses of every buffer currently rented: a rent must find its address
//!   absent, a return present.
//!
//! The shared pool is process-wide and these tests run in parallel, so each test that uses it
//! keeps to sizes no other test in this file uses where it matters (see `FLUSH_LEN`).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;

use arraypool::{ArrayPool, PoolStats};

const THREADS: usize = 8;

/// Buffer lengths the stress tests rent (none in the bucket `FLUSH_LEN` owns).
fn lengths() -> &'static [usize] {
    if cfg!(miri) {
        &[1, 15, 16, 17, 100, 1000, 4096]
    } else {
        &[1, 15, 16, 17, 100, 1000, 4096, 4097, 30_000, 65_536]
    }
}

/// The addresses of every buffer rented and not yet returned.
#[derive(Default)]
struct LiveBuffers(Mutex<HashSet<usize>>);

impl LiveBuffers {
    fn rented(&self, buf: &[u8]) {
        let fresh = self.0.lock().unwrap().insert(buf.as_ptr() as usize);
        assert!(
            fresh,
            "buffer {:p} handed to two renters at once",
            buf.as_ptr()
        );
    }

    fn returning(&self, buf: &[u8]) {
        let was_live = self.0.lock().unwrap().remove(&(buf.as_ptr() as usize));
        assert!(was_live, "buffer {:p} was not rented", buf.as_ptr());
    }
}

/// A rented buffer marked as its renter's: filled with the renter's `tag`, both ends stamped
/// with a number unique to this rent.
struct Marked {
    buf: Vec<u8>,
    tag: u8,
    stamp: u64,
}

impl Marked {
    fn new(mut buf: Vec<u8>, tag: u8, stamp: u64) -> Self {
        buf.fill(tag);
        let bytes = stamp.to_le_bytes();
        let head = buf.len().min(8);
        buf[..head].copy_from_slice(&bytes[..head]);
        if buf.len() >= 16 {
            let tail = buf.len() - 8;
            buf[tail..].copy_from_slice(&bytes);
        }
        Self { buf, tag, stamp }
    }

    /// Panics unless every byte is still as this renter left it.
    fn check(&self, tags: &[u8]) {
        let (buf, bytes) = (&self.buf, self.stamp.to_le_bytes());
        let head = buf.len().min(8);
        let body = if buf.len() >= 16 {
            assert_eq!(
                buf[buf.len() - 8..],
                bytes,
                "tail canary of {:p}",
                buf.as_ptr()
            );
            &buf[8..buf.len() - 8]
        } else {
            &buf[head..]
        };
        assert_eq!(
            buf[..head],
            bytes[..head],
            "head canary of {:p}",
            buf.as_ptr()
        );
        // `tags` is a run of this renter's tag at least as long as any buffer: a memcmp.
        assert!(
            body == &tags[..body.len()],
            "body of {:p} overwritten (tag {})",
            buf.as_ptr(),
            self.tag
        );
    }

    fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the threads of one stress run did, to compare with the pool's counters.
#[derive(Default)]
struct Tally {
    rents: AtomicU64,
    over_max_rents: AtomicU64,
    returns: AtomicU64,
}

/// `THREADS` threads rent and return on `pool`, each holding up to three buffers at a time,
/// checking canaries and the live set on every return.
fn hammer(pool: &ArrayPool, iterations: usize) -> Tally {
    let live = LiveBuffers::default();
    let tally = Tally::default();
    let start = Barrier::new(THREADS);
    let max_len = pool.max_len();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (live, tally, start) = (&live, &tally, &start);
            s.spawn(move || {
                let tag = t as u8 + 1;
                let tags = vec![tag; if cfg!(miri) { 4096 } else { 1 << 17 }];
                let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut held: VecDeque<Marked> = VecDeque::new();
                start.wait();
                for i in 0..iterations {
                    // Now and then a length over a custom pool's maximum (not under Miri,
                    // where filling 32 KiB byte by byte takes too long).
                    let over_max = i % 64 == 63 && max_len < 1 << 16 && !cfg!(miri);
                    let n = if over_max {
                        max_len + 1 + t
                    } else {
                        lengths()[rng.below(lengths().len())]
                    };
                    let buf = pool.rent(n);
                    assert_eq!(buf.len(), n);
                    live.rented(&buf);
                    tally.rents.fetch_add(1, Ordering::Relaxed);
                    if n > max_len {
                        tally.over_max_rents.fetch_add(1, Ordering::Relaxed);
                    }
                    held.push_back(Marked::new(buf, tag, (t as u64) << 32 | i as u64));
                    if i % 16 == 0 {
                        thread::yield_now();
                    }
                    while held.len() > rng.below(4) {
                        let marked = held.pop_front().unwrap();
                        marked.check(&tags);
                        let buf = marked.into_inner();
                        live.returning(&buf);
                        pool.return_(buf);
                        tally.returns.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for marked in held {
                    marked.check(&tags);
                    live.returning(&marked.buf);
                    pool.return_(marked.into_inner());
                    tally.returns.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    tally
}

fn iterations() -> usize {
    if cfg!(miri) {
        30
    } else {
        20_000
    }
}

/// After a stress run on a custom pool, its counters add up exactly: sharded counting loses
/// nothing under concurrency.
fn assert_counts_add_up(stats: &PoolStats, tally: &Tally, thread_cache: bool) {
    let rents = tally.rents.load(Ordering::Relaxed);
    let returns = tally.returns.load(Ordering::Relaxed);
    let over_max = tally.over_max_rents.load(Ordering::Relaxed);
    assert_eq!(rents, returns, "every rent was returned");
    assert_eq!(stats.rented, rents, "{stats:?}");
    assert_eq!(stats.allocated_over_max, over_max, "{stats:?}");
    assert_eq!(stats.dropped_foreign, over_max, "{stats:?}");
    if thread_cache {
        // Every in-range return is kept (in a thread cache); dropped_full counts buffers later
        // displaced from a cache into full partitions.
        assert_eq!(stats.returned + stats.dropped_foreign, returns, "{stats:?}");
        assert_eq!(
            stats.held_buffers,
            stats.returned - stats.hits() - stats.dropped_full,
            "{stats:?}"
        );
    } else {
        assert_eq!(
            stats.returned + stats.dropped_full + stats.dropped_foreign,
            returns,
            "{stats:?}"
        );
        assert_eq!(
            stats.held_buffers,
            stats.returned - stats.hits(),
            "{stats:?}"
        );
    }
}

#[test]
fn eight_threads_never_share_a_buffer_from_the_shared_pool() {
    let tally = hammer(ArrayPool::shared(), iterations());
    assert_eq!(
        tally.rents.load(Ordering::Relaxed),
        tally.returns.load(Ordering::Relaxed)
    );
}

#[test]
fn eight_threads_never_share_a_buffer_from_a_thread_cache_pool() {
    let pool = ArrayPool::builder()
        .max_len(1 << 15)
        .per_bucket(4)
        .partitions(2)
        .thread_cache(true)
        .build()
        .unwrap();
    let tally = hammer(&pool, iterations());
    assert_counts_add_up(&pool.stats(), &tally, true);
}

#[test]
fn eight_threads_never_share_a_buffer_from_a_small_partitioned_pool() {
    let pool = ArrayPool::builder()
        .max_len(1 << 15)
        .per_bucket(5)
        .partitions(3)
        .build()
        .unwrap();
    let tally = hammer(&pool, iterations());
    let stats = pool.stats();
    assert_counts_add_up(&stats, &tally, false);
    // 16, 32, 128, 1024, 4096, 8192 and 32768 bytes; 65536 is over the maximum.
    let buckets_used = 7;
    assert!(stats.held_buffers <= 5 * buckets_used, "{stats:?}");
}

// ----- returns on another thread ----------------------------------------------------------

/// Two producers rent and stamp buffers and send them over bounded channels to two consumers,
/// which check them, hold a few a while, and return them on their own thread. Returns a count
/// of the buffers that went through.
fn hand_off(pool: &ArrayPool, len: usize, per_producer: usize) -> u64 {
    let live = LiveBuffers::default();
    thread::scope(|s| {
        for p in 0..2u8 {
            let (tx, rx) = mpsc::sync_channel::<Marked>(4);
            let live = &live;
            s.spawn(move || {
                for i in 0..per_producer {
                    let buf = pool.rent(len);
                    live.rented(&buf);
                    tx.send(Marked::new(buf, p + 1, u64::from(p) << 32 | i as u64))
                        .unwrap();
                }
            });
            s.spawn(move || {
                let tags = vec![p + 1; len];
                let mut held = VecDeque::new();
                for marked in rx {
                    marked.check(&tags);
                    held.push_back(marked);
                    if held.len() > 2 {
                        let marked = held.pop_front().unwrap();
                        marked.check(&tags);
                        live.returning(&marked.buf);
                        pool.return_(marked.into_inner());
                    }
                }
                for marked in held {
                    marked.check(&tags);
                    live.returning(&marked.buf);
                    pool.return_(marked.into_inner());
                }
            });
        }
    });
    assert!(live.0.lock().unwrap().is_empty());
    2 * per_producer as u64
}

/// At most this many buffers are out at once in `hand_off`: per pair, one being filled, four in
/// the channel, three held by the consumer.
const IN_FLIGHT: u64 = 2 * (1 + 4 + 3);

#[test]
fn buffers_returned_on_another_thread_are_reused() {
    let per_producer = if cfg!(miri) { 40 } else { 20_000 };
    for thread_cache in [false, true] {
        // Room for every buffer the hand-off can ever have made (see `allocated` below), so
        // that nothing is dropped when the threads' magazines flush at exit.
        let pool = ArrayPool::builder()
            .max_len(4096)
            .per_bucket(128)
            .thread_cache(thread_cache)
            .build()
            .unwrap();
        let total = hand_off(&pool, 3000, per_producer);
        let stats = pool.stats();
        assert_eq!((stats.rented, stats.returned), (total, total), "{stats:?}");
        assert_eq!(
            stats.dropped_full, 0,
            "the bound is above what is in flight"
        );
        // Producers never return, so they rent what consumers returned. A producer allocates
        // only when its magazine and the partitions are empty, so every buffer is then in
        // flight or in another thread's magazine (at most half the budget's worth of 4 KiB
        // buffers each: two consumers and the other producer).
        let magazine = if thread_cache {
            (arraypool::DEFAULT_THREAD_CACHE_BYTES / 4096 / 2) as u64
        } else {
            0
        };
        assert!(
            stats.allocated <= IN_FLIGHT + 3 * magazine + 1,
            "thread cache {thread_cache}: {stats:?}"
        );
        assert_eq!(stats.hits(), total - stats.allocated);
    }
}

#[test]
fn buffers_cross_threads_through_the_shared_pool_intact() {
    let per_producer = if cfg!(miri) { 40 } else { 20_000 };
    assert_eq!(
        hand_off(ArrayPool::shared(), 20_000, per_producer),
        2 * per_producer as u64
    );
}

// ----- threads that come and go -----------------------------------------------------------

/// The length the thread-exit test rents: no other test here rents from its bucket (2^18, or
/// 2^13 under Miri, which zero-fills fresh buffers byte by byte).
const FLUSH_LEN: usize = if cfg!(miri) { 6000 } else { 200_000 };

/// Many short-lived threads, in waves of eight, each rent a buffer of `FLUSH_LEN` (all eight
/// at once, so eight distinct buffers), mark it with their number, return it to their thread
/// cache and exit. Exiting must move the cached buffer to the shared partitions: each wave
/// rents what the previous one left, and afterwards this thread finds exactly the last wave's
/// eight buffers, marks and all, and then nothing more.
#[test]
fn buffers_cached_by_exited_threads_are_reused() {
    let pool = ArrayPool::shared();
    assert!(pool.max_len() >= FLUSH_LEN, "needs the default max_len");
    let (waves, width) = if cfg!(miri) { (3, 4) } else { (25, 8) };
    let live = Arc::new(LiveBuffers::default());
    let mut numbers = 1u32..; // 0 would read like a fresh buffer
    let mut last_wave = HashSet::new();
    for wave in 0..waves {
        let all_rented = Arc::new(Barrier::new(width));
        last_wave.clear();
        let handles: Vec<_> = (0..width)
            .map(|_| {
                let number = numbers.next().unwrap();
                last_wave.insert(number);
                let (live, all_rented) = (Arc::clone(&live), Arc::clone(&all_rented));
                thread::spawn(move || {
                    let mut buf = pool.rent(FLUSH_LEN);
                    live.rented(&buf);
                    all_rented.wait();
                    let found = u32::from_le_bytes(buf[..4].try_into().unwrap());
                    buf[..4].copy_from_slice(&number.to_le_bytes());
                    live.returning(&buf);
                    pool.return_(buf);
                    found
                })
            })
            .collect();
        let found: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        if wave > 0 {
            // Fresh buffers are zeroed, so a zero mark means an allocation: every thread of a
            // later wave must have found a marked buffer from an earlier wave.
            assert!(
                found
                    .iter()
                    .all(|&mark| mark != 0 && mark <= width as u32 * wave),
                "wave {wave} found {found:?}"
            );
        }
    }

    let reused: Vec<Vec<u8>> = (0..width).map(|_| pool.rent(FLUSH_LEN)).collect();
    let marks: HashSet<u32> = reused
        .iter()
        .map(|b| u32::from_le_bytes(b[..4].try_into().unwrap()))
        .collect();
    assert_eq!(marks, last_wave, "the last wave's buffers, each once");
    let next = pool.rent(FLUSH_LEN);
    assert_eq!(
        next[..4],
        [0; 4],
        "only those were pooled: this one is fresh"
    );
    pool.return_(next);
    for buf in reused {
        pool.return_(buf);
    }
}
