//! Every lock, atomic and thread-local the pool shares between threads: from `std`, or from
//! `loom` when this crate's own unit tests are built with `--cfg loom`.
//!
//! The gate is `all(test, loom)`, as in bytes' `src/loom.rs`: a downstream crate that builds
//! its own loom tests with `RUSTFLAGS="--cfg loom"` compiles this crate as a plain dependency
//! (not under `test`), so it gets `std` types and a pool that works outside a loom model
//! (`tests/downstream_loom.rs`). The shared thread tier's thread-local switches to loom's under
//! the same gate (`thread_cache.rs`), so that the loom models drive its real thread-exit flush.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

/// Locks `mutex`, ignoring poison.
///
/// No user code runs under a pool lock: listeners are called, and dropped, with no lock held
/// (`event.rs`), and what the pool does under its own locks (moving buffers between vectors,
/// adding to counters, a fallible `try_reserve`) cannot panic. A poisoned pool lock would need
/// a panic that cannot happen; were it to happen anyway, the data it guards is a list of
/// buffers that is consistent between any two statements, so the pool keeps using it.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
