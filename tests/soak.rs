//! Soak: 16 threads (on however few cores) rent, fill, hand off and return buffers of mixed
//! sizes for a while, against the shared pool and a thread-cached custom pool at once.
//!
//! Ignored by default. `ARRAYPOOL_SOAK_SECS` sets how long (default 5 s); CI runs
//! `ARRAYPOOL_SOAK_SECS=60 cargo test --release --test soak -- --ignored`.
//!
//! Every buffer is filled with a canary byte unique to its renter and rent, and checked whole
//! before it is handed to another thread, when it arrives, and before it goes back: a buffer
//! owned twice would show a foreign canary. A rented buffer must read as some earlier renter's
//! canary followed by zeros, never anything else. Every epoch (a quarter second) all threads
//! stop at a barrier and the pool's gauges, exact while nobody moves, must be within the
//! documented memory bound (partitions plus each thread's cache budget).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use arraypool::{ArrayPool, PoolStats, DEFAULT_THREAD_CACHE_BYTES};

const THREADS: usize = 16;
const EPOCH: Duration = Duration::from_millis(250);
/// A thread keeps at most this many buffers at once.
const KEEP: usize = 8;

fn soak_duration() -> Duration {
    let secs = std::env::var("ARRAYPOOL_SOAK_SECS")
        .ok()
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .expect("ARRAYPOOL_SOAK_SECS is a number of seconds")
        })
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs)
}

/// xorshift64*: reproducible per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A length from a mix: mostly small, some up to the maximum, a few over it, a few zero.
fn mixed_len(rng: &mut Rng, max_len: usize) -> usize {
    match rng.below(100) {
        0..=1 => 0,
        2..=49 => 1 + rng.below(256) as usize,
        50..=84 => 1 + rng.below(4096) as usize,
        85..=96 => 1 + rng.below(max_len as u64) as usize,
        _ => max_len + 1 + rng.below(max_len as u64) as usize,
    }
}

/// A buffer in a thread's hands, filled with `canary`.
struct Held {
    buffer: Vec<u8>,
    canary: u8,
}

impl Held {
    fn check(&self, when: &str) {
        if let Some(i) = self.buffer.iter().position(|&b| b != self.canary) {
            panic!(
                "{when}: byte {i} of a {}-byte buffer is {}, not its owner's canary {}",
                self.buffer.len(),
                self.buffer[i],
                self.canary
            );
        }
    }
}

/// Rents `n` and checks what the contract promises: the length, the capacity, and contents
/// that are one earlier renter's canary followed by zeros.
fn rent_checked(pool: &ArrayPool, n: usize) -> Vec<u8> {
    let buffer = pool.rent(n);
    assert_eq!(buffer.len(), n);
    let expected_capacity = match n {
        0 => 0,
        n if n <= pool.max_len() => n.next_power_of_two().max(16),
        n => n,
    };
    assert_eq!(buffer.capacity(), expected_capacity, "rent({n})");
    let leftover = buffer.iter().position(|&b| b == 0).unwrap_or(n);
    let old = buffer.first().copied().unwrap_or(0);
    assert!(
        buffer[..leftover].iter().all(|&b| b == old) && buffer[leftover..].iter().all(|&b| b == 0),
        "rent({n}) shows bytes that are neither one earlier renter's nor zero"
    );
    buffer
}

/// The most a pool may hold, per the docs: per bucket, `per_bucket` in the partitions, plus
/// for each thread that has a cache at most `budget` bytes, and per bucket at most its
/// magazine's limit (half the budget's worth, at most 32).
fn bound(max_len: usize, per_bucket: u64, cached_threads: u64, budget: u64) -> (u64, u64) {
    let buckets = (max_len.trailing_zeros() - 4 + 1) as u64;
    let lens = (0..buckets).map(|b| 16u64 << b);
    let magazine = |len: u64| (budget / len / 2).min(32);
    let buffers = buckets * per_bucket + cached_threads * lens.clone().map(magazine).sum::<u64>();
    let bytes = lens.map(|len| len * per_bucket).sum::<u64>() + cached_threads * budget;
    (buffers, bytes)
}

/// Whether `stats` is within `ceiling`; the reason if not.
fn check_ceiling(stats: &PoolStats, ceiling: (u64, u64), name: &str) -> Result<(), String> {
    if stats.held_buffers <= ceiling.0 && stats.held_bytes <= ceiling.1 {
        Ok(())
    } else {
        Err(format!(
            "{name} holds more than its bound {ceiling:?}: {stats:?}"
        ))
    }
}

/// Runs the soak against `pool` and returns the number of buffers its threads rented.
fn soak(pool: &ArrayPool, name: &str, ceiling: (u64, u64), seed: u64) -> u64 {
    let deadline = Instant::now() + soak_duration();
    let stop = AtomicBool::new(false);
    // The threads plus this one, which checks the gauges while they wait.
    let (paused, resumed) = (Barrier::new(THREADS + 1), Barrier::new(THREADS + 1));
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
    let rented = thread::scope(|scope| {
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(t, inbox)| {
                let next = senders[(t + 1) % THREADS].clone();
                let (stop, paused, resumed) = (&stop, &paused, &resumed);
                scope.spawn(move || {
                    let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    let mut held: Vec<Held> = Vec::new();
                    let mut rents = 0u64;
                    loop {
                        let epoch_end = Instant::now() + EPOCH;
                        while Instant::now() < epoch_end {
                            // Buffers handed over by the previous thread: check, keep or return.
                            while let Ok(arrived) = inbox.try_recv() {
                                let arrived: Held = arrived;
                                arrived.check("after a hand-off");
                                pool.return_(arrived.buffer);
                            }
                            let n = mixed_len(&mut rng, pool.max_len());
                            let mut buffer = rent_checked(pool, n);
                            rents += 1;
                            let canary = (rents as u8 | 1).wrapping_add(t as u8 * 2);
                            let canary = if canary == 0 { 1 } else { canary };
                            buffer.fill(canary);
                            held.push(Held { buffer, canary });
                            if held.len() > KEEP || rng.below(3) == 0 {
                                let i = rng.below(held.len() as u64) as usize;
                                let out = held.swap_remove(i);
                                out.check("before giving it up");
                                match rng.below(10) {
                                    // Another thread returns it.
                                    0..=2 => next.send(out).expect("neighbour alive"),
                                    // Shorter, so the next renter must see zeros past it.
                                    3 => {
                                        let mut buffer = out.buffer;
                                        let keep = rng.below(buffer.len() as u64 + 1) as usize;
                                        buffer.truncate(keep);
                                        pool.return_(buffer);
                                    }
                                    // Grown past its bucket, or never a bucket size.
                                    4 => {
                                        let mut buffer = out.buffer;
                                        buffer.push(out.canary);
                                        buffer.shrink_to_fit();
                                        pool.return_(buffer);
                                    }
                                    _ => pool.return_(out.buffer),
                                }
                            }
                        }
                        for out in held.drain(..) {
                            out.check("at the end of an epoch");
                            pool.return_(out.buffer);
                        }
                        paused.wait();
                        resumed.wait();
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    // Hand-offs sent in the last epoch arrive here; the neighbour stopped
                    // sending before the barrier.
                    for arrived in inbox.try_iter() {
                        arrived.check("after a hand-off");
                        pool.return_(arrived.buffer);
                    }
                    rents
                })
            })
            .collect();
        drop(senders);
        let mut epochs = 0;
        let mut over = Ok(());
        loop {
            paused.wait();
            // Everyone is parked: the gauges are exact. A failed check stops the workers at
            // this epoch's end (a panic here would leave them waiting at the barrier).
            over = over.and(check_ceiling(&pool.stats(), ceiling, name));
            epochs += 1;
            let done = Instant::now() >= deadline || over.is_err();
            stop.store(done, Ordering::Relaxed);
            resumed.wait();
            if done {
                break;
            }
        }
        let rented = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        if let Err(why) = over {
            panic!("{why}");
        }
        assert!(epochs >= 1);
        rented
    });
    let stats = pool.stats();
    if let Err(why) = check_ceiling(&stats, ceiling, name) {
        panic!("{why}");
    }
    assert!(
        stats.rented <= rented && stats.hits() > 0,
        "{name}: rents are counted (those of 0 bytes are not) and the pool was used: {stats:?}"
    );
    eprintln!("{name}: {rented} rents in {:?}\n{stats}", soak_duration());
    rented
}

#[test]
#[ignore = "a soak: run with --ignored (ARRAYPOOL_SOAK_SECS sets the duration)"]
fn soak_the_shared_pool() {
    let pool = ArrayPool::shared();
    // Defaults (no environment knobs in CI): 32 per partition, one partition per CPU, plus a
    // thread cache for each live thread (16 workers, this one, and the test harness's).
    let partitions = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let budget = DEFAULT_THREAD_CACHE_BYTES as u64;
    let ceiling = bound(pool.max_len(), 32 * partitions, THREADS as u64 + 2, budget);
    soak(pool, "shared pool", ceiling, 0x5eed_0001);
}

#[test]
#[ignore = "a soak: run with --ignored (ARRAYPOOL_SOAK_SECS sets the duration)"]
fn soak_a_thread_cached_custom_pool() {
    let pool = ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(8)
        .partitions(2)
        .thread_cache(true)
        .build()
        .unwrap();
    // Every thread that may have used it: the workers and this one.
    let budget = DEFAULT_THREAD_CACHE_BYTES as u64;
    let ceiling = bound(pool.max_len(), 8, THREADS as u64 + 1, budget);
    soak(&pool, "thread-cached custom pool", ceiling, 0x5eed_0002);
}
