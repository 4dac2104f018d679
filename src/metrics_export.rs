//! With the `metrics` feature: [`ArrayPool::publish_metrics`], a pool's [`PoolStats`] through
//! the `metrics` facade.
//!
//! Values flow on demand, never from the rent/return path: `publish_metrics` takes the same
//! snapshot as [`ArrayPool::stats`] (the per-thread ledgers and each partition's counts, read
//! under their short locks) and sets each counter to its absolute value (`Counter::absolute`)
//! and each gauge to its level. The pool's counting stays what it is, a plain add on memory
//! only the thread's own, so the fast path has no shared write, no atomic read-modify-write
//! and no clock read, whether a recorder is installed or not. Call it where the numbers are
//! wanted: before each scrape, or every few seconds from a timer. It allocates (the
//! facade's keys), so it is not for a zero-allocation loop.

use metrics::Unit;

use crate::pool::ArrayPool;
use crate::stats::PoolStats;

/// One counter series: its name, its `reason` label if it has one, and the description the
/// recorder gets (given once per name).
struct Series {
    name: &'static str,
    reason: Option<&'static str>,
    description: &'static str,
}

const fn series(
    name: &'static str,
    reason: Option<&'static str>,
    description: &'static str,
) -> Series {
    Series {
        name,
        reason,
        description,
    }
}

/// Every counter series, in the order `publish_metrics` sets them. Counter names end in
/// `_total`, as Prometheus names them.
const COUNTERS: [Series; 8] = [
    series(
        "arraypool_rented_total",
        None,
        "Rents of one byte or more, served from the pool or allocated.",
    ),
    series(
        "arraypool_allocated_total",
        Some("pool_exhausted"),
        "Fresh allocations: the pool had no buffer of the size (pool_exhausted) or the length was above its maximum (over_max_length).",
    ),
    series("arraypool_allocated_total", Some("over_max_length"), ""),
    series("arraypool_returned_total", None, "Returned buffers the pool kept."),
    series(
        "arraypool_dropped_total",
        Some("full"),
        "Buffers the pool freed or could not take: no room or budget (full), a capacity that is no bucket size (not_bucket_size), a BytesMut still shared (still_shared).",
    ),
    series("arraypool_dropped_total", Some("not_bucket_size"), ""),
    series("arraypool_dropped_total", Some("still_shared"), ""),
    series(
        "arraypool_trimmed_total",
        None,
        "Buffers released by trim(), the idle timeout or memory pressure.",
    ),
];

/// The counters' values, in the order of [`COUNTERS`].
fn counter_values(stats: &PoolStats) -> [u64; 8] {
    [
        stats.rented,
        stats.allocated,
        stats.allocated_over_max,
        stats.returned,
        stats.dropped_full,
        stats.dropped_foreign,
        stats.dropped_shared,
        stats.trimmed,
    ]
}

impl ArrayPool {
    /// Publishes this pool's [`stats`](Self::stats) through the `metrics` facade, labelled
    /// `pool` = [`name`](Self::name), to the recorder in effect (the global one, or a
    /// `metrics::with_local_recorder` scope). Without a recorder it does nothing visible.
    ///
    /// | metric | kind | labels | from |
    /// |---|---|---|---|
    /// | `arraypool_rented_total` | counter | `pool` | [`PoolStats::rented`] |
    /// | `arraypool_allocated_total` | counter | `pool`, `reason` = `pool_exhausted` / `over_max_length` | [`allocated`](PoolStats::allocated) / [`allocated_over_max`](PoolStats::allocated_over_max) |
    /// | `arraypool_returned_total` | counter | `pool` | [`returned`](PoolStats::returned) |
    /// | `arraypool_dropped_total` | counter | `pool`, `reason` = `full` / `not_bucket_size` / `still_shared` | [`dropped_full`](PoolStats::dropped_full) / [`dropped_foreign`](PoolStats::dropped_foreign) / [`dropped_shared`](PoolStats::dropped_shared) |
    /// | `arraypool_trimmed_total` | counter | `pool` | [`trimmed`](PoolStats::trimmed) |
    /// | `arraypool_held_buffers` | gauge | `pool` | [`held_buffers`](PoolStats::held_buffers) |
    /// | `arraypool_held_bytes` | gauge (bytes) | `pool` | [`held_bytes`](PoolStats::held_bytes) |
    ///
    /// Counters are set to their absolute values (`Counter::absolute`), so publishing twice
    /// counts nothing twice, and a pool's series never go backwards. The hit ratio is
    /// `1 - sum(rate(arraypool_allocated_total)) / rate(arraypool_rented_total)`.
    ///
    /// Nothing is published by the pool on its own: the rent/return path writes no shared
    /// memory for metrics and reads no clock. Call this where the values are wanted, e.g.
    /// in the handler of the scrape endpoint, or from a timer every few seconds. It takes the
    /// same snapshot as `stats()` and allocates (the facade's keys). Give each pool you publish
    /// a name of its own ([`ArrayPoolBuilder::name`](crate::ArrayPoolBuilder::name)); two pools
    /// of one name overwrite each other's series.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::builder().name("frames").build()?;
    /// pool.return_(pool.rent(1000));
    /// // With a recorder installed (metrics-exporter-prometheus, say), this sets
    /// // arraypool_rented_total{pool="frames"} 1, arraypool_held_bytes{pool="frames"} 1024, ...
    /// pool.publish_metrics();
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn publish_metrics(&self) {
        let stats = self.stats();
        let pool = self.name();
        describe();
        for (series, value) in COUNTERS.iter().zip(counter_values(&stats)) {
            let counter = match series.reason {
                Some(reason) => metrics::counter!(
                    target: "arraypool", series.name, "pool" => pool, "reason" => reason
                ),
                None => metrics::counter!(target: "arraypool", series.name, "pool" => pool),
            };
            counter.absolute(value);
        }
        metrics::gauge!(target: "arraypool", "arraypool_held_buffers", "pool" => pool)
            .set(stats.held_buffers as f64);
        metrics::gauge!(target: "arraypool", "arraypool_held_bytes", "pool" => pool)
            .set(stats.held_bytes as f64);
    }
}

/// Gives the recorder each metric's unit and description. Every call: a recorder installed
/// after the first publication would not have them otherwise, and recorders keep the last.
fn describe() {
    for series in COUNTERS
        .iter()
        .filter(|series| !series.description.is_empty())
    {
        metrics::describe_counter!(series.name, Unit::Count, series.description);
    }
    metrics::describe_gauge!(
        "arraypool_held_buffers",
        Unit::Count,
        "Buffers the pool holds now, in thread caches and partitions."
    );
    metrics::describe_gauge!(
        "arraypool_held_bytes",
        Unit::Bytes,
        "Total capacity of the buffers the pool holds now."
    );
}
