//! Every lock and atomic the pool shares between threads, from `std` normally and from `loom`
//! under `--cfg loom`, so that the loom models in this crate check the real code paths.
//!
//! The pattern is sharded-slab's `src/sync.rs`. Thread-locals are declared where they live
//! (`tls.rs`), each with a loom twin behind the same `cfg`.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

/// Locks `mutex`, ignoring poison.
///
/// Nothing the pool runs under its locks can panic (pushes and pops on vectors whose capacity
/// was reserved up front), so a poisoned lock can only mean a panic elsewhere that reached us
/// through a user's listener; the protected data is still consistent, so keep going.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
