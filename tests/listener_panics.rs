//! What a listener's panic does: it reaches the caller of the `rent` or `return_` that raised
//! the event, leaving the pool consistent; and during a thread's exit flush, where unwinding
//! out of a thread-local destructor would abort the process, it is caught.

use std::panic;
use std::thread;

use arraypool::{ArrayPool, DropReason, PoolEvent};

/// Regression (review B5): the shared pool's exit flush ran listeners inside a thread-local
/// destructor, so a panicking listener aborted the whole process.
#[test]
fn a_panicking_listener_during_a_thread_exit_flush_does_not_abort() {
    let shared = ArrayPool::shared();
    // A size nothing else in this binary uses, so that its partitions are ours to fill, and
    // small enough for the thread tier (a magazine holds half the budget's worth).
    let len = 32 << 10;
    assert!(arraypool::DEFAULT_THREAD_CACHE_BYTES / len / 2 >= 1);
    let bound = shared_bound_per_bucket(shared, len);
    let filler: Vec<Vec<u8>> = (0..bound + 8).map(|_| shared.rent(len)).collect();
    for buffer in filler {
        shared.return_(buffer); // fills this thread's magazine and every partition
    }
    let listener = shared.add_listener(|event| {
        let exiting = thread::current().name() == Some("exiting");
        if exiting
            && matches!(
                event,
                PoolEvent::Dropped {
                    reason: DropReason::Full,
                    ..
                }
            )
        {
            panic!("a listener that panics");
        }
    });
    let before = shared.stats().dropped_full;
    thread::Builder::new()
        .name("exiting".into())
        .spawn(move || {
            // Cached in this thread's magazine; at exit the flush finds the partitions full.
            shared.return_(vec![1; len]);
        })
        .unwrap()
        .join()
        .expect("the thread exits cleanly");
    shared.remove_listener(listener);
    assert_eq!(
        shared.stats().dropped_full,
        before + 1,
        "the flushed buffer was dropped and counted before the listener ran"
    );
}

/// How many buffers of `len` the shared pool's partitions hold (from its `Debug` output).
fn shared_bound_per_bucket(shared: &ArrayPool, len: usize) -> usize {
    assert!(len.is_power_of_two() && len <= shared.max_len());
    let debug = format!("{shared:?}");
    let field = debug
        .split("per_bucket: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .expect("the Debug output names per_bucket");
    field.parse().unwrap()
}

#[test]
fn a_listeners_panic_reaches_the_caller_and_leaves_the_pool_consistent() {
    let pool = ArrayPool::create(64, 1);
    pool.add_listener(|event| {
        if let PoolEvent::Allocated { len: 1000, .. } = event {
            panic!("a listener that panics");
        }
    });
    let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| pool.rent(1000)));
    assert!(caught.is_err(), "the panic reaches the caller");
    let stats = pool.stats();
    assert_eq!(
        (stats.rented, stats.allocated_over_max),
        (1, 1),
        "counted before the listener ran"
    );
    pool.return_(pool.rent(10));
    assert_eq!(pool.stats().returned, 1, "the pool still works");
}
