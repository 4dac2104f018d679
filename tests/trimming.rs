//! Giving memory back: `trim()`, the idle trimmer, memory pressure and `max_retained_bytes`,
//! through the public API and the real `arraypool-trim` thread.
//!
//! Waits on the trimmer poll the pool's counts with a generous deadline: they assert what
//! happens, never how fast.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arraypool::{ArrayPool, DropReason, MemoryPressure, PoolEvent, TrimReason};

/// Far beyond any tick of the trimmer (at most 5 s apart): only a broken trimmer waits it out.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `done` every few milliseconds until it holds; panics naming `what` after
/// [`DEADLINE`].
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "never happened: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A trim event's reason, and the name of the thread that raised it.
type Seen = (TrimReason, Option<String>);

/// The trim events a pool raises.
#[derive(Clone, Default)]
struct Trims(Arc<Mutex<Vec<Seen>>>);

impl Trims {
    fn listener(&self) -> impl Fn(&PoolEvent) + Send + Sync + 'static {
        let seen = Arc::clone(&self.0);
        move |event| {
            if let PoolEvent::Trimmed { reason, .. } = event {
                let name = thread::current().name().map(str::to_owned);
                seen.lock().unwrap().push((*reason, name));
            }
        }
    }

    fn reasons(&self) -> Vec<TrimReason> {
        self.0.lock().unwrap().iter().map(|(r, _)| *r).collect()
    }

    fn threads(&self) -> Vec<Option<String>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }
}

fn give_back(pool: &ArrayPool, count: usize, len: usize) {
    let buffers: Vec<_> = (0..count).map(|_| pool.rent(len)).collect();
    for buffer in buffers {
        pool.return_(buffer);
    }
}

#[test]
fn trim_releases_the_partitions_and_this_threads_cache() {
    let trims = Trims::default();
    let pool = ArrayPool::builder()
        .thread_cache(true)
        .idle_timeout(None)
        .listener(trims.listener())
        .build()
        .unwrap();
    give_back(&pool, 40, 4096); // more than a 4 KiB magazine holds: some reach the partitions
    give_back(&pool, 3, 100);
    let before = pool.stats();
    assert_eq!(before.held_buffers, 43);
    pool.trim();
    let after = pool.stats();
    assert_eq!((after.held_buffers, after.held_bytes), (0, 0), "{after:?}");
    assert_eq!(after.trimmed, 43);
    assert_eq!(trims.reasons(), vec![TrimReason::Explicit; 43]);
    let per_bucket: u64 = pool.bucket_stats().iter().map(|b| b.trimmed).sum();
    assert_eq!(per_bucket, 43, "bucket_stats agrees with stats");
    // The pool still works, and a rent after a trim allocates afresh.
    let buffer = pool.rent(4096);
    assert_eq!(pool.stats().allocated, before.allocated + 1);
    pool.return_(buffer);
}

#[test]
fn another_threads_cache_releases_at_its_next_slow_path() {
    let pool = Arc::new(
        ArrayPool::builder()
            .thread_cache(true)
            .idle_timeout(None)
            .build()
            .unwrap(),
    );
    let (to_worker, orders) = mpsc::channel::<()>();
    let (to_main, done) = mpsc::channel::<()>();
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            give_back(&pool, 2, 4096); // stays in this thread's magazine
            to_main.send(()).unwrap();
            orders.recv().unwrap();
            // A size this thread never used: its magazine is empty, a slow path.
            let other = pool.rent(1000);
            pool.return_(other);
            to_main.send(()).unwrap();
            orders.recv().unwrap();
        })
    };
    done.recv().unwrap();
    assert_eq!(pool.stats().held_buffers, 2);
    pool.trim();
    assert_eq!(
        pool.stats().held_buffers,
        2,
        "another thread's cache is not reachable from here"
    );
    to_worker.send(()).unwrap();
    done.recv().unwrap();
    let stats = pool.stats();
    assert_eq!(stats.trimmed, 2, "{stats:?}");
    assert_eq!(
        stats.held_buffers, 1,
        "only the 1 KiB buffer returned after the trim"
    );
    to_worker.send(()).unwrap();
    worker.join().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "Miri runs no trimmer thread")]
fn the_trimmer_releases_idle_buffers_on_its_own_thread_and_wakes_for_more() {
    let trims = Trims::default();
    let pool = ArrayPool::builder()
        .idle_timeout(Duration::from_millis(20))
        .listener(trims.listener())
        .build()
        .unwrap();
    give_back(&pool, 5, 2000);
    eventually("five idle buffers released", || pool.stats().trimmed == 5);
    assert_eq!(pool.stats().held_bytes, 0);
    // With nothing held the trimmer may sleep until a return wakes it.
    give_back(&pool, 1, 70_000);
    eventually("a later buffer released too", || pool.stats().trimmed == 6);
    // The trimmer counts a release before it reports it: wait for the events as well.
    eventually("six trim events", || trims.reasons().len() == 6);
    assert_eq!(trims.reasons(), vec![TrimReason::Idle; 6]);
    assert!(
        trims
            .threads()
            .iter()
            .all(|name| name.as_deref() == Some("arraypool-trim")),
        "{:?}",
        trims.threads()
    );
}

#[test]
#[cfg_attr(miri, ignore = "Miri runs no trimmer thread")]
fn a_pool_without_an_idle_timeout_keeps_its_buffers() {
    let idle = ArrayPool::builder()
        .idle_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let kept = ArrayPool::builder().idle_timeout(None).build().unwrap();
    give_back(&idle, 3, 512);
    give_back(&kept, 3, 512);
    // Once the trimmer has released the first pool's buffers it has ticked past the second
    // pool at least once too, had it been registered.
    eventually("the zero-timeout pool emptied", || {
        idle.stats().trimmed == 3
    });
    thread::sleep(Duration::from_millis(50));
    let stats = kept.stats();
    assert_eq!((stats.held_buffers, stats.trimmed), (3, 0));
}

#[test]
#[cfg_attr(miri, ignore = "Miri runs no trimmer thread")]
fn high_pressure_from_the_builder_releases_everything_at_once() {
    let squeezed = Arc::new(AtomicBool::new(false));
    let signal = Arc::clone(&squeezed);
    let trims = Trims::default();
    let pool = ArrayPool::builder()
        .idle_timeout(Duration::from_secs(3600))
        .pressure(move || {
            if signal.load(Ordering::Relaxed) {
                MemoryPressure::High
            } else {
                MemoryPressure::Low
            }
        })
        .listener(trims.listener())
        .build()
        .unwrap();
    give_back(&pool, 4, 8000);
    squeezed.store(true, Ordering::Relaxed);
    eventually("released under pressure", || pool.stats().trimmed == 4);
    // The trimmer counts a release before it reports it: wait for the events as well.
    eventually("four trim events", || trims.reasons().len() == 4);
    assert_eq!(trims.reasons(), vec![TrimReason::Pressure; 4]);
}

#[test]
fn max_retained_bytes_bounds_the_partitions_under_concurrent_returns() {
    const MAX: u64 = 64 << 10;
    let drops = Arc::new(Mutex::new(0u64));
    let sink = Arc::clone(&drops);
    let pool = Arc::new(
        ArrayPool::builder()
            .per_bucket(1000)
            .max_retained_bytes(MAX)
            .idle_timeout(None)
            .listener(move |event| {
                if let PoolEvent::Dropped {
                    reason: DropReason::OverBudget,
                    ..
                } = event
                {
                    *sink.lock().unwrap() += 1;
                }
            })
            .build()
            .unwrap(),
    );
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                for round in 0..if cfg!(miri) { 6 } else { 200 } {
                    let len = [4096, 1000, 16_000][round % 3];
                    give_back(&pool, 8, len);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let stats = pool.stats();
    assert!(stats.held_bytes <= MAX, "{stats:?}");
    assert!(stats.dropped_full > 0, "the budget refused some: {stats:?}");
    assert_eq!(*drops.lock().unwrap(), stats.dropped_full);
    assert_eq!(
        stats.returned,
        stats.held_buffers + stats.hits() + stats.trimmed,
        "every kept buffer is held or was rented again: {stats:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "Miri runs no trimmer thread")]
fn pools_dropped_while_the_trimmer_ticks_are_forgotten() {
    // Each pool registers with the trimmer and is dropped soon after, some while a tick is
    // looking at them; the trimmer keeps working for the pools that remain.
    for round in 0..200 {
        let pool = ArrayPool::builder()
            .idle_timeout(Duration::from_millis(round % 3))
            .build()
            .unwrap();
        give_back(&pool, 2, 64);
        if round % 10 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    let survivor = ArrayPool::builder()
        .idle_timeout(Duration::ZERO)
        .build()
        .unwrap();
    give_back(&survivor, 1, 64);
    eventually("the survivor trimmed", || survivor.stats().trimmed == 1);
}

/// The child of `the_process_exits_cleanly_while_the_trimmer_works`: exits with buffers held
/// and the trimmer mid-work.
#[test]
#[ignore = "run by the_process_exits_cleanly_while_the_trimmer_works in a child process"]
fn child_exits_with_the_trimmer_busy() {
    if std::env::var_os("ARRAYPOOL_TRIM_CHILD").is_none() {
        return;
    }
    let pools: Vec<_> = (0..8)
        .map(|_| {
            ArrayPool::builder()
                .idle_timeout(Duration::ZERO)
                .build()
                .unwrap()
        })
        .collect();
    for pool in &pools {
        give_back(pool, 64, 4096);
    }
    // Leave the pools alive, with buffers in them, as the process exits.
    std::mem::forget(pools);
    std::process::exit(0);
}

#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn the_process_exits_cleanly_while_the_trimmer_works() {
    for _ in 0..5 {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "child_exits_with_the_trimmer_busy",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("ARRAYPOOL_TRIM_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
        let stdout = String::from_utf8_lossy(&status.stdout);
        assert!(stdout.contains("running 1 test"), "the child ran: {stdout}");
    }
}
