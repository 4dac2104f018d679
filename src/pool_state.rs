//! `PoolState`: what every thread of one pool shares below its thread cache (the partitions,
//! the accounting and the listeners), and the operations that touch more than one of them.
//!
//! Each operation here applies the counting rule of `accounting.rs` and raises the matching
//! [`PoolEvent`] after the buffer has moved, with no lock held.

use crate::accounting::{Accounting, Flow, Totals, UnpooledFlow};
use crate::bucket::bucket_len;
use crate::event::{AllocReason, DropReason, Listeners, PoolEvent};
use crate::fill;
use crate::partitions::Partitions;
use crate::sys::current_cpu;

/// How a slow path that may run inside a thread-local destructor raises its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A rent or return: a listener's panic reaches its caller.
    User,
    /// A thread's exit flush: a listener's panic would abort the process, so it is caught.
    ThreadExit,
}

pub(crate) struct PoolState {
    pub(crate) partitions: Partitions,
    pub(crate) accounting: Accounting,
    pub(crate) listeners: Listeners,
    /// The most bytes one thread's cache holds for this pool (`thread_cache.rs`); 0 for a pool
    /// without a thread tier.
    pub(crate) thread_cache_bytes: usize,
}

impl PoolState {
    pub(crate) fn new(
        partitions: Partitions,
        listeners: Listeners,
        thread_cache_bytes: usize,
    ) -> Self {
        Self {
            accounting: Accounting::new(partitions.count()),
            partitions,
            listeners,
            thread_cache_bytes,
        }
    }

    /// Pops a buffer of `bucket` from the partitions for a renter, home first (a
    /// [`Flow::Hit`], counted by the stack).
    #[inline]
    pub(crate) fn take(&self, bucket: usize) -> Option<Vec<u8>> {
        self.partitions.pop(bucket, current_cpu())
    }

    /// Keeps a renter's returned buffer of `bucket` in the partitions ([`Flow::Kept`], counted
    /// by the stack), or frees it if they are full ([`Flow::Refused`]).
    #[inline]
    pub(crate) fn keep(&self, bucket: usize, buffer: Vec<u8>) {
        let home = current_cpu();
        if let Err(refused) = self.partitions.push(bucket, home, buffer) {
            self.drop_full(home, bucket, refused, Flow::Refused, Caller::User);
        }
    }

    /// A fresh zeroed buffer of `bucket` with length `n`, for a rent the pool could not serve
    /// ([`Flow::Allocated`]).
    #[inline(never)]
    pub(crate) fn allocate(&self, bucket: usize, n: usize) -> Vec<u8> {
        let buffer = fill::fresh(bucket_len(bucket), n);
        self.note_allocated(bucket, n);
        buffer
    }

    /// Counts and reports a fresh buffer of `bucket` made for a rent of `n` bytes.
    pub(crate) fn note_allocated(&self, bucket: usize, n: usize) {
        self.accounting
            .record(current_cpu(), bucket, Flow::Allocated, 1);
        self.listeners
            .raise(|| PoolEvent::allocated(n, bucket_len(bucket), AllocReason::PoolExhausted));
    }

    /// Counts and reports a fresh buffer of exactly `n` bytes, above the pool's maximum.
    pub(crate) fn note_allocated_over_max(&self, n: usize) {
        self.accounting
            .record_unpooled(current_cpu(), UnpooledFlow::AllocatedOverMax);
        self.listeners
            .raise(|| PoolEvent::allocated(n, n, AllocReason::OverMaxLength));
    }

    /// Frees a returned buffer whose capacity is none of the pool's bucket sizes.
    #[inline(never)]
    pub(crate) fn drop_foreign(&self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        drop(buffer);
        self.accounting
            .record_unpooled(current_cpu(), UnpooledFlow::Foreign);
        self.listeners
            .raise(|| PoolEvent::dropped(capacity, DropReason::NotBucketSize));
    }

    /// Counts and reports `count` buffers of `bucket` that a thread cache's flush found no room
    /// for in the partitions and freed ([`Flow::Evicted`]).
    #[cold]
    pub(crate) fn note_evicted(&self, bucket: usize, count: usize, caller: Caller) {
        self.note_dropped_full(current_cpu(), bucket, Flow::Evicted, count, caller);
    }

    #[cold]
    fn drop_full(&self, home: usize, bucket: usize, buffer: Vec<u8>, flow: Flow, caller: Caller) {
        drop(buffer);
        self.note_dropped_full(home, bucket, flow, 1, caller);
    }

    /// Counts `count` buffers of `bucket` freed for want of room, and raises one event each.
    fn note_dropped_full(
        &self,
        home: usize,
        bucket: usize,
        flow: Flow,
        count: usize,
        caller: Caller,
    ) {
        self.accounting.record(home, bucket, flow, count as u64);
        for _ in 0..count {
            let event = || PoolEvent::dropped(bucket_len(bucket), DropReason::Full);
            match caller {
                Caller::User => self.listeners.raise(event),
                Caller::ThreadExit => self.listeners.raise_contained(event),
            }
        }
    }

    /// Every count of the pool added up.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.accounting.sum_into(&mut totals);
        self.partitions.sum_into(&mut totals);
        totals
    }
}
