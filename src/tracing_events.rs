//! With the `tracing` feature: every [`PoolEvent`] is also a `tracing` event.
//!
//! | event name | when | fields |
//! |---|---|---|
//! | `buffer_allocated` | [`PoolEvent::Allocated`] | `pool`, `len`, `capacity`, `reason` |
//! | `buffer_dropped` | [`PoolEvent::Dropped`] | `pool`, `capacity`, `reason` |
//! | `buffer_trimmed` | [`PoolEvent::Trimmed`] | `pool`, `capacity`, `reason` |
//!
//! Target `arraypool`, level [`LEVEL`] (INFO) for all three. `pool` is the pool's
//! [name](crate::ArrayPoolBuilder::name); `len` (allocations only) the length asked for;
//! `capacity` the buffer's; `reason` the reason in snake case (`pool_exhausted`,
//! `over_max_length`, `full`, `not_bucket_size`, `over_budget`, `still_shared`, `explicit`,
//! `idle`, `pressure`).
//!
//! Events are raised on slow paths only (an allocation, a drop, a trim: each already pays for
//! an allocator call, a free or a lock), never on a thread-cache hit or keep; so this adds
//! nothing to the fast path. Without the feature this module is not compiled.

use std::panic::{self, AssertUnwindSafe};

use tracing::Level;

use crate::event::PoolEvent;
use crate::pool_state::Caller;

/// The level of every event, chosen as .NET's `ArrayPoolEventSource` chooses: its
/// `BufferAllocated`, `BufferDropped` and `BufferTrimmed` are `Informational`, so they are INFO
/// here; its `BufferRented` and `BufferReturned` are `Verbose`, and here are not events at all
/// (a rent or return that hits the pool is counted in [`PoolStats`](crate::PoolStats), which
/// costs far less than an event per call). A healthy pool raises them while it warms up and
/// when it trims, and rarely otherwise; a steady stream is a finding (see [`PoolEvent`]). To
/// quiet them, filter the target: `RUST_LOG=info,arraypool=warn`.
pub(crate) const LEVEL: Level = Level::INFO;

/// Emits `event` of the pool called `pool`. Where a panic must not escape (a thread's exit
/// flush, the trimmer's thread), a subscriber's panic is caught, as a listener's is: a
/// subscriber that uses a thread-local during thread exit may panic there.
pub(crate) fn emit(pool: &'static str, event: &PoolEvent, caller: Caller) {
    match caller {
        Caller::User => emit_now(pool, event),
        Caller::Contained => {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| emit_now(pool, event)));
        }
    }
}

#[cold]
fn emit_now(pool: &'static str, event: &PoolEvent) {
    match *event {
        PoolEvent::Allocated {
            len,
            capacity,
            reason,
        } => tracing::event!(
            name: "buffer_allocated",
            target: "arraypool",
            LEVEL,
            pool,
            len,
            capacity,
            reason = reason.label(),
            "buffer allocated"
        ),
        PoolEvent::Dropped { capacity, reason } => tracing::event!(
            name: "buffer_dropped",
            target: "arraypool",
            LEVEL,
            pool,
            capacity,
            reason = reason.label(),
            "buffer dropped"
        ),
        PoolEvent::Trimmed { capacity, reason } => tracing::event!(
            name: "buffer_trimmed",
            target: "arraypool",
            LEVEL,
            pool,
            capacity,
            reason = reason.label(),
            "buffer trimmed"
        ),
    }
}
