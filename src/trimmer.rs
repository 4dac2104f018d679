//! The trimmer: one process-wide thread, `arraypool-trim`, that gives back what pools hold
//! but nobody uses, with no call from the user and no clock read on the rent/return path.
//!
//! - **When it runs.** It starts the first time a pool with an idle timeout holds a buffer in
//!   its partitions (the pool registers then, once). It wakes about every quarter of the
//!   shortest timeout among the pools that hold buffers, and no more than 5 s apart, so that
//!   memory pressure is noticed within seconds. When no registered pool holds anything it
//!   sleeps until a return puts a buffer in some partition again.
//! - **What it does, per pool and tick.** It reads the memory pressure (the pool's own source,
//!   or the process's, `pressure.rs`). At `High` it releases every buffer in the partitions; at
//!   `Medium` it uses a quarter of the timeout; otherwise it releases the buffers that have sat
//!   in the partitions longer than the timeout, oldest first (`ages.rs`). It takes each
//!   partition's lock only while it moves cold buffers out, and frees them after.
//! - **What it holds.** Pools weakly: a pool dropped by its user is dropped, and the trimmer
//!   forgets it at its next tick. It is a plain thread, so it never keeps the process from
//!   exiting.
//! - **What it costs.** A tick allocates nothing (its scratch space and the memory source are
//!   set up before the thread starts), so the zero-allocation tests hold with it running.
//!   The rent/return path pays, on a return that reaches the partitions, two relaxed loads of
//!   flags that change only when the trimmer starts, falls asleep or wakes.
//!
//! Threads' magazines are not the trimmer's to touch (they are reached with no lock): each is
//! bounded by `thread_cache_bytes`, and goes when its thread exits, or at its next slow path
//! after an explicit [`trim`](crate::ArrayPool::trim).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::pool_state::{PoolState, SCRATCH};
use crate::pressure::MemorySource;
use crate::sys;

/// The longest the trimmer sleeps while some pool holds buffers.
const MAX_TICK: Duration = Duration::from_secs(5);
/// The shortest tick, whatever the timeout: a zero timeout does not spin.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Milliseconds on the trimmer's clock: since the first call, plus one (so that 0 is never a
/// time). Only slow paths and the trimmer read it.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).map_or(u64::MAX, |ms| ms + 1)
}

/// The trimmer's registry: every pool that ever held a buffer with an idle timeout.
struct Trimmer {
    pools: Mutex<Registry>,
    wake: Condvar,
    /// Whether the trimmer sleeps with no timeout (no pool held anything at its last tick):
    /// a return that puts a buffer in a partition must then wake it.
    sleeping: AtomicBool,
}

struct Registry {
    pools: Vec<Weak<PoolState>>,
    started: bool,
}

static TRIMMER: Trimmer = Trimmer {
    pools: Mutex::new(Registry {
        pools: Vec::new(),
        started: false,
    }),
    wake: Condvar::new(),
    sleeping: AtomicBool::new(false),
};

fn registry() -> MutexGuard<'static, Registry> {
    TRIMMER.pools.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A buffer just entered `state`'s partitions: registers the pool with the trimmer the first
/// time (starting it if need be), and wakes it if it sleeps. Cheap when neither is needed.
#[inline]
pub(crate) fn noticed(state: &PoolState) {
    if !state.trimmed_by_clock() {
        return;
    }
    if !state.registered.load(Ordering::Relaxed) {
        register(state);
        return;
    }
    // No fence is needed: see `sleep`.
    if TRIMMER.sleeping.load(Ordering::Relaxed) {
        wake();
    }
}

#[cold]
fn register(state: &PoolState) {
    let mut registry = registry();
    if state.registered.swap(true, Ordering::Relaxed) {
        return; // another thread registered it meanwhile
    }
    registry.pools.push(state.weak());
    if !registry.started {
        registry.started = start();
    }
    TRIMMER.sleeping.store(false, Ordering::Relaxed);
    TRIMMER.wake.notify_all();
}

/// `state` is being dropped: takes it out of the registry, so that its memory goes now, not
/// at the trimmer's next tick (which may never come if it sleeps). The caller must not hold
/// the registry's lock, which is why the trimmer never drops a pool while it holds it.
#[cold]
pub(crate) fn forget(state: &Weak<PoolState>) {
    registry().pools.retain(|weak| !weak.ptr_eq(state));
}

#[cold]
fn wake() {
    let _registry = registry();
    TRIMMER.sleeping.store(false, Ordering::Relaxed);
    TRIMMER.wake.notify_all();
}

/// Starts the trimmer thread; `false` if the system refused a thread (the next registration
/// tries again). Returns once the thread runs: starting a thread allocates on the new thread
/// too (std records its name there), and that must happen now, while the caller warms up, not
/// later in the middle of someone's steady state.
fn start() -> bool {
    if cfg!(miri) {
        // Miri fails a test whose process ends with a thread still running, and this one runs
        // for good. Its ticks are checked under Miri by the unit tests that call
        // `PoolState::idle_tick` directly; the thread itself under ThreadSanitizer.
        return false;
    }
    // Everything a tick needs is made here, on the registering thread, not in a tick.
    let source = MemorySource::discover();
    let scratch = Vec::with_capacity(SCRATCH);
    let _ = now_ms();
    let running = Arc::new(Barrier::new(2));
    let started = Arc::clone(&running);
    let spawned = std::thread::Builder::new()
        .name("arraypool-trim".into())
        .spawn(move || {
            started.wait();
            drop(started);
            run(source, scratch)
        });
    if spawned.is_err() {
        return false;
    }
    running.wait();
    true
}

fn run(source: MemorySource, mut scratch: Vec<Vec<u8>>) -> ! {
    loop {
        let now = now_ms();
        let system = source.read();
        let mut next: Option<Duration> = None;
        let mut released_any = false;
        let mut i = 0;
        loop {
            let weak = match registry().pools.get(i) {
                Some(weak) => weak.clone(),
                None => break,
            };
            let Some(state) = weak.upgrade() else {
                let mut registry = registry();
                if i < registry.pools.len() && registry.pools[i].ptr_eq(&weak) {
                    registry.pools.swap_remove(i);
                }
                continue; // dropped by its user: forget it
            };
            let tick = state.idle_tick(now, system, &mut scratch);
            released_any |= tick.released > 0;
            if let Some(interval) = tick.next {
                next = Some(next.map_or(interval, |n| n.min(interval)));
            }
            drop(state);
            i += 1;
        }
        if released_any {
            sys::release_free_memory();
        }
        sleep(next);
    }
}

/// Whether any registered pool holds a buffer in its partitions. Takes the registry's lock
/// only to read each entry: dropping the last handle on a pool (which takes it) happens
/// outside.
fn any_pool_holds() -> bool {
    let mut i = 0;
    loop {
        let weak = match registry().pools.get(i) {
            Some(weak) => weak.clone(),
            None => return false,
        };
        if weak
            .upgrade()
            .is_some_and(|state| !state.partitions.is_empty())
        {
            return true;
        }
        i += 1;
    }
}

/// Sleeps until the next tick, or, when no pool holds anything, until a return wakes it.
fn sleep(next: Option<Duration>) {
    let registry = registry();
    match next {
        Some(interval) => {
            let interval = interval.clamp(MIN_TICK, MAX_TICK);
            let _ = TRIMMER.wake.wait_timeout(registry, interval);
        }
        None => {
            // Check once more with the flag up. A return puts its buffer in a partition stack
            // under that stack's lock and reads the flag after; the check reads every stack
            // under its lock. If the check locked the stack first, the flag was up before it
            // unlocked, so the return (which locked after) sees it up and wakes us; otherwise
            // the check sees the buffer. The stack's mutex orders the two, so no fence is
            // needed on the return path.
            TRIMMER.sleeping.store(true, Ordering::Relaxed);
            drop(registry);
            if any_pool_holds() {
                TRIMMER.sleeping.store(false, Ordering::Relaxed);
                return;
            }
            // A return after the check finds the flag up and wakes us; one between the check
            // and this lock has already put the flag down, so the loop does not wait.
            let mut registry = self::registry();
            while TRIMMER.sleeping.load(Ordering::Relaxed) {
                registry = TRIMMER
                    .wake
                    .wait(registry)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}
