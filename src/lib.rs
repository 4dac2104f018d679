//! A size-class bucketed byte-buffer pool, modeled on .NET's `ArrayPool<T>.Shared` and
//! `ArrayPool<T>.Create`.
//!
//! [`ArrayPool::shared()`](ArrayPool::shared)`.rent(n)` hands out a `Vec<u8>` of length `n`;
//! [`return_`](ArrayPool::return_) gives it back. Buffers live in power-of-two buckets from 16
//! bytes to the pool's maximum length. In front of them each thread keeps a few buffers of each
//! size it uses (a magazine), so that a rent and a return on one thread take no lock, no atomic
//! read-modify-write and no shared cache line; buffers move between a thread and the shared
//! partitions in batches.
//!
//! ```
//! use arraypool::ArrayPool;
//!
//! let pool = ArrayPool::shared();
//! let mut buf = pool.rent(4000);          // len 4000, capacity 4096
//! buf[..5].copy_from_slice(b"hello");
//! pool.return_(buf);                       // back in this thread's magazine
//!
//! let again = pool.rent(4096);             // the same allocation, no allocator call
//! assert_eq!(again.capacity(), 4096);
//! pool.return_(again);
//! ```
//!
//! # When to use it
//!
//! A pool pays off where buffers churn: network servers, parsers, codecs and image pipelines
//! that rent a buffer per message or frame. It pays most for large buffers (glibc serves 128 KiB
//! and up with `mmap`, so every fresh one costs page faults and kernel zeroing) and makes the
//! cost independent of the allocator. It also puts a bound on the memory held and tells you,
//! through [`stats`](ArrayPool::stats) and events, when the bound is wrong.
//!
//! # Which pool
//!
//! - [`ArrayPool::shared`]: one process-wide pool for buffers up to 1 MiB (tunable through
//!   environment variables), with a per-thread cache in front of per-CPU partitions.
//! - [`ArrayPool::create`]`(max_len, per_bucket)`: a pool of your own, for larger buffers (up to
//!   [`MAX_POOLED_LEN`], 1 GiB) or for a hard bound on what a subsystem keeps. It keeps at most
//!   `per_bucket` buffers of each size, and dropping it frees them all.
//! - [`ArrayPool::builder`]: the same with partitions, a thread cache, a byte budget, an idle
//!   timeout, a pressure source and listeners to choose.
//!
//! # The contract
//!
//! | call | outcome |
//! |---|---|
//! | `rent(n)`, `1 <= n <= max_len` | `len == n`, `capacity` = smallest power of two `>= max(n, 16)` |
//! | `rent(n)`, `n > max_len` | fresh `Vec` of capacity `n`; counted, reported as an event |
//! | `rent(0)` | `Vec::new()`: no allocation, not counted |
//! | `rent(n)`, `n > isize::MAX` | panics ("capacity overflow"); [`try_rent`](ArrayPool::try_rent) returns `Err` |
//! | `return_(buf)`, capacity a bucket size | kept; if all is full, freed and counted in `dropped_full` |
//! | `return_(buf)`, other capacity | freed, counted in `dropped_foreign`, reported as an event |
//! | `return_(buf)`, capacity 0 | nothing |
//! | `rent_with_capacity(n)`, `1 <= n <= max_len` | `len == 0`, `capacity` the bucket size, as `rent(n)`; counted as a rent |
//! | `rent_with_capacity(n)`, `n > max_len` / `n == 0` | empty, capacity exactly `n`, counted and reported / `Vec::new()`, not counted |
//! | `lease(n)`, `lease_with_capacity(n)` | as `rent(n)` / `rent_with_capacity(n)`, in a guard that returns the buffer when dropped |
//!
//! **Contents.** Bytes nobody ever wrote read as zero. Bytes an earlier renter wrote may still be
//! there (as in .NET), so treat a rented buffer like any `Vec` you did not fill yourself, or use
//! [`rent_zeroed`](ArrayPool::rent_zeroed). The pool never exposes uninitialized memory: a
//! returned buffer's length is what it trusts as initialized, and it zero-fills beyond that.
//!
//! **Ownership.** A rented buffer is an ordinary `Vec<u8>`: you own it, so the pool cannot hand
//! it to anyone else until you return it, and dropping it instead of returning it simply frees
//! it. There is no double return to guard against: `return_` takes the `Vec` by value.
//!
//! # Leases: buffers that return themselves
//!
//! [`ArrayPool::lease`] rents as `rent` does, in a [`Lease`] that returns the buffer when it
//! drops: at the end of the scope, on an early `?`, while a panic unwinds. It derefs to the
//! `Vec<u8>`, costs nothing beyond the rent (it borrows the pool: no allocation, no reference
//! count), and [`Lease::into_vec`] takes the buffer out for good. On the shared pool a lease is
//! `Lease<'static>`, `Send` and `Sync`, so it can be held across `.await` and moved into
//! `tokio::spawn`. For a custom pool in an `Arc`, [`ArrayPool::lease_owned`] gives an
//! [`OwnedLease`] that holds the `Arc`: the pair follows tokio's `Semaphore::acquire` and
//! `acquire_owned`.
//!
//! ```
//! use arraypool::ArrayPool;
//!
//! fn checksum(pool: &ArrayPool, frame: &[u8]) -> Result<u32, &'static str> {
//!     let mut scratch = pool.lease(frame.len());
//!     scratch.copy_from_slice(frame);
//!     if scratch.is_empty() {
//!         return Err("empty frame"); // returned to the pool here too
//!     }
//!     Ok(scratch.iter().map(|&b| u32::from(b)).sum())
//! }
//!
//! let pool = ArrayPool::create(1 << 16, 8);
//! assert_eq!(checksum(&pool, &[1, 2, 3]), Ok(6));
//! assert!(checksum(&pool, &[]).is_err());
//! let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
//!     let _lease = pool.lease(100);
//!     panic!("a parser bug");
//! }));
//! assert!(unwound.is_err());
//! assert_eq!(pool.stats().returned, 2, "on `Ok` and on unwinding");
//! ```
//!
//! # Writing into a rented buffer
//!
//! `rent(n)` hands out a buffer whose `len` is already `n`, to be written by index or by
//! `copy_from_slice`. Anything that *appends* (`extend_from_slice`, `push`, `io::Write` for
//! `Vec<u8>`, `bytes::BufMut`, tokio's `AsyncReadExt::read_buf`) writes after those `n`
//! bytes, so the `Vec` reallocates: the pooled buffer is freed by the reallocation, and what
//! comes back is a buffer one bucket up (when `Vec` doubled it) or, when it grew by more or
//! past the pool's maximum, one of a capacity no bucket keeps, which the pool frees and counts
//! in [`dropped_foreign`](PoolStats::dropped_foreign). For appending, rent an *empty* buffer with
//! room: [`rent_with_capacity`](ArrayPool::rent_with_capacity) (the pool's
//! `Vec::with_capacity`) or [`lease_with_capacity`](ArrayPool::lease_with_capacity), and with
//! the `bytes` feature `rent_bytes_mut` (the pool's
//! `BytesMut::with_capacity`). Filled within their capacity, they come back to their bucket.
//!
//! ```
//! use arraypool::ArrayPool;
//! use std::io::Write;
//!
//! let pool = ArrayPool::create(4096, 4);
//!
//! let mut trap = pool.rent(4096);             // len 4096 already
//! trap.extend_from_slice(b"appended");         // reallocated to 8192
//! pool.return_(trap);                          // above this pool's maximum: freed
//! assert_eq!(pool.stats().dropped_foreign, 1);
//!
//! let mut body = pool.lease_with_capacity(4096); // len 0, capacity 4096
//! write!(&mut *body, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 12)?;
//! body.extend_from_slice(b"hello, world");
//! drop(body);                                  // kept
//! assert_eq!(pool.stats().returned, 1);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Features: `bytes`, `tracing`, `metrics`
//!
//! All off by default; each adds one optional dependency.
//!
//! - **`bytes`** (bytes ≥ 1.9): `Lease::into_bytes` and `OwnedLease::into_bytes` hand the
//!   buffer to a `bytes::Bytes` without copying (`Bytes::from_owner`), and the buffer goes
//!   back to the pool when the last clone or slice drops, on any thread: a pooled hyper,
//!   axum or tonic body. `ArrayPool::rent_bytes_mut` and `ArrayPool::return_bytes_mut`
//!   lend the pool's buffers as `BytesMut`, without copying either way. The one case that
//!   cannot come back, a `BytesMut` whose buffer other handles still share, is counted in
//!   [`PoolStats::dropped_shared`]; what each conversion costs is in the docs of each.
//! - **`tracing`**: every [`PoolEvent`] is also a `tracing` event, target `arraypool`, at
//!   INFO: `buffer_allocated` (fields `pool`, `len`, `capacity`, `reason`), `buffer_dropped`
//!   and `buffer_trimmed` (`pool`, `capacity`, `reason`); `pool` is the pool's name and
//!   `reason` the reason in snake case (`pool_exhausted`, `not_bucket_size`, …). .NET's
//!   `ArrayPoolEventSource` sets the levels: its allocation, drop and trim events are
//!   Informational, its rent and return events Verbose; here rents and returns are no events
//!   at all (they are counted). Events come from slow paths only; quiet them with
//!   `RUST_LOG=info,arraypool=warn`.
//! - **`metrics`**: `ArrayPool::publish_metrics` sets counters and gauges in the `metrics`
//!   facade (`arraypool_rented_total`, `arraypool_held_bytes`, …, labelled
//!   `pool` = [`ArrayPool::name`]; the list is in its docs) from a [`stats`](ArrayPool::stats)
//!   snapshot, when you call it: before a scrape or from a timer. The fast path writes nothing
//!   for it.
//!
//! [`ArrayPoolBuilder::name`] names a pool for both (the shared pool is `shared`).
//!
#![cfg_attr(
    feature = "bytes",
    doc = r##"
With `bytes`, a body rendered into a leased buffer and handed to a framework as `Bytes`:

```
use arraypool::ArrayPool;
use std::io::Write;

let pool = ArrayPool::shared();
let mut body = pool.lease_with_capacity(16 * 1024);
write!(&mut *body, r#"{{"items": [{}]}}"#, "1, 2, 3")?;
let before = pool.stats().returned;

let bytes: bytes::Bytes = body.into_bytes(); // no copy
let for_the_log = bytes.slice(..9);
std::thread::spawn(move || drop(bytes)).join().unwrap(); // the framework writes it out
assert_eq!(&for_the_log[..], br#"{"items":"#);
drop(for_the_log); // the last handle: the buffer is back
assert!(pool.stats().returned > before);
# Ok::<(), std::io::Error>(())
```
"##
)]
#![cfg_attr(
    feature = "tracing",
    doc = r##"
With `tracing`, a subscriber (tracing-subscriber's `fmt`, say) shows the pool's slow paths:

```
use arraypool::ArrayPool;

let pool = ArrayPool::builder().name("frames").max_len(1024).build()?;
// INFO arraypool: buffer allocated pool="frames" len=5000 capacity=5000 reason="over_max_length"
let big = pool.rent(5000);
// INFO arraypool: buffer dropped pool="frames" capacity=5000 reason="not_bucket_size"
pool.return_(big);
assert_eq!(pool.stats().dropped_foreign, 1);
# Ok::<(), arraypool::BuildError>(())
```
"##
)]
#![cfg_attr(
    feature = "metrics",
    doc = r##"
With `metrics`, publish a pool's figures where your exporter wants them, e.g. before each
scrape:

```
use arraypool::ArrayPool;

let pool = ArrayPool::builder().name("frames").build()?;
pool.return_(pool.rent(4096));
// arraypool_rented_total{pool="frames"} 1, arraypool_held_bytes{pool="frames"} 4096, ...
pool.publish_metrics();
ArrayPool::shared().publish_metrics(); // the same series with pool="shared"
# Ok::<(), arraypool::BuildError>(())
```
"##
)]
//!
//! # Observing a pool
//!
//! [`ArrayPool::stats`] returns a [`PoolStats`] snapshot: rents, allocations (pool exhausted or
//! over the maximum), returns kept, drops (full, over budget, or not a bucket size), trims, and
//! gauges of the buffers and bytes held; [`ArrayPool::bucket_stats`] gives the same per bucket. Counting costs the fast path no shared cache line: each thread counts in a
//! ledger of its own. Listeners ([`ArrayPool::add_listener`], or
//! [`ArrayPoolBuilder::listener`]) receive each [`PoolEvent`] with its reason, as .NET's
//! `ArrayPoolEventSource` does; with no listener an event costs one relaxed load, on slow paths
//! only. A pool keeps any number of listeners, so libraries sharing the process-wide pool do
//! not replace each other's. A listener should not panic: its panic reaches the caller of the
//! `rent` or `return_` that raised the event, except during a thread's exit flush, where it is
//! caught (unwinding out of a thread-local destructor would abort the process).
//!
//! # Threads
//!
//! Returning a buffer on a thread other than the renter's is fine: it lands in the returning
//! thread's magazine or the partitions, and a producer thread that only rents and a consumer
//! that only returns trade through the partitions in batches of up to 16. When a thread exits,
//! its magazines move to the partitions (or are freed when those are full), for the shared pool
//! and for custom pools alike; they are neither leaked nor lost. A custom pool's thread caches
//! (opt-in) belong to the pool: dropping the pool frees them all, even those of threads still
//! alive.
//!
//! # Memory: bounds, and giving it back
//!
//! What a pool may hold:
//!
//! - The shared pool holds at most `partitions × per_partition` buffers per bucket in its
//!   partitions (by default one partition per CPU and 32 per partition; see
//!   [`ArrayPool::shared`] for the knobs), plus at most `thread_cache_bytes` (by default
//!   [`DEFAULT_THREAD_CACHE_BYTES`], 128 KiB) per live thread, whatever sizes it used.
//! - A custom pool built with a thread cache holds at most `per_bucket` buffers per bucket in
//!   its partitions plus `thread_cache_bytes` per live thread.
//! - A custom pool without a thread cache ([`ArrayPool::create`]) holds at most `per_bucket`
//!   buffers per bucket, exactly.
//! - With [`max_retained_bytes`](ArrayPoolBuilder::max_retained_bytes) (or
//!   `ARRAYPOOL_SHARED_MAX_RETAINED_BYTES`), the partitions hold at most that many bytes
//!   together, so the pool holds at most `max_retained_bytes + live threads ×
//!   thread_cache_bytes`; exactly `max_retained_bytes` without a thread cache.
//!
//! How it comes back, each released buffer counted in [`PoolStats::trimmed`] and reported as
//! [`PoolEvent::Trimmed`]:
//!
//! - [`ArrayPool::trim`] releases every buffer in the partitions and in the calling thread's
//!   cache at once; other threads' caches release theirs at their next slow path of the pool, or
//!   when they exit.
//! - By itself: a buffer that sat in the partitions longer than the pool's
//!   [`idle_timeout`](ArrayPoolBuilder::idle_timeout) ([`DEFAULT_IDLE_TIMEOUT`], 60 s, for every
//!   pool) is released by one process-wide thread, `arraypool-trim`, with no clock read on the
//!   rent/return path.
//! - Under memory pressure (the process's cgroup, else the machine's available memory; see
//!   [`MemoryPressure`]): at `Medium` the timeout is quartered, at `High` the partitions are
//!   emptied within seconds.
//!
//! After releasing, the pool asks glibc to return freed memory to the system (`malloc_trim`),
//! so that the resident set falls, not just the pool's counts. [`ArrayPool::bucket_stats`]
//! shows, per size, what is held and how it is used.
//!
//! # Checking "zero allocations in steady state"
//!
//! Wrap a warm loop in a `dhat` heap profiler (see `examples/dhat_counters.rs`): a million
//! rent/return cycles after warm-up make no heap allocation.
//!
//! # How the source is laid out
//!
//! One concept per module, in the order a call travels through them:
//!
//! | module | what it holds |
//! |---|---|
//! | `pool` | [`ArrayPool`]: the public contract, and which tier serves each call |
//! | `thread_cache` | the thread tier: the shared pool's `thread_local!` and custom pools' per-thread caches, flushed at thread exit |
//! | `pool_state` | what one pool's threads share below the thread tier: partitions, accounting, listeners, and the slow paths that touch them |
//! | `partitions` | per bucket, one locked stack per partition; home first, then the others |
//! | `stack` | `LockedStack`: a bounded LIFO behind its own cache-padded lock |
//! | `accounting` | the counting rule (every [`PoolStats`] figure from flows in and out of the pool) and where counts live |
//! | `trimmer`, `ages`, `pressure` | the thread that releases idle buffers; how long a stack's buffers have sat there; memory pressure |
//! | `bucket` | size classes: a length's bucket, a bucket's length |
//! | `fill` | setting a buffer's length without exposing uninitialized bytes |
//! | `lease` | [`Lease`] and [`OwnedLease`]: buffers that return themselves when dropped |
//! | `bytes_interop`, `tracing_events`, `metrics_export` | the `bytes`, `tracing` and `metrics` features |
//! | `builder`, `env` | a custom pool's options; the shared pool's environment knobs |
//! | `event`, `stats` | [`PoolEvent`] and listeners; the [`PoolStats`] snapshot |
//! | `sync`, `sys` | `std` or loom types; the only platform code and the only `unsafe` |
//!
//! `docs/design.md` in the repository explains each tier and why it is built that way.
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounting;
mod ages;
mod bucket;
mod builder;
mod env;
mod event;
mod fill;
mod lease;
mod partitions;
mod pool;
mod pool_state;
mod pressure;
mod stack;
mod stats;
mod sync;
mod sys;
mod thread_cache;
mod trimmer;

#[cfg(feature = "bytes")]
mod bytes_interop;
#[cfg(feature = "metrics")]
mod metrics_export;
#[cfg(feature = "tracing")]
mod tracing_events;

pub use bucket::{MAX_POOLED_LEN, MIN_BUCKET_LEN};
pub use builder::{
    ArrayPoolBuilder, BuildError, DEFAULT_IDLE_TIMEOUT, DEFAULT_THREAD_CACHE_BYTES, MAX_PARTITIONS,
    MAX_PER_BUCKET,
};
pub use event::{AllocReason, DropReason, ListenerId, PoolEvent, TrimReason};
pub use lease::{Lease, OwnedLease};
pub use pool::ArrayPool;
pub use pressure::MemoryPressure;
pub use stats::{BucketStats, PoolStats};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
