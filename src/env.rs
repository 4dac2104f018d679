//! The shared pool's environment knobs, read once when [`ArrayPool::shared`] first runs.
//!
//! The parse is strict, following .NET's `SharedArrayPoolStatics`: after trimming spaces the
//! value must be 1 to 10 ASCII digits, nothing else, and within the knob's range. Anything else
//! (empty, signs, `0x`, units, out of range, not UTF-8) means the default. A bad value never
//! fails the program: a pool knob is not worth a crash at first use.
//!
//! [`ArrayPool::shared`]: crate::ArrayPool::shared

use crate::bucket::MAX_POOLED_LEN;
use crate::builder::{DEFAULT_THREAD_CACHE_BYTES, MAX_PARTITIONS, MAX_PER_BUCKET};
use crate::sys::available_cpus;

/// `ARRAYPOOL_SHARED_MAX_LEN`: the shared pool's maximum length in bytes, `16 ..= 2^30` after
/// rounding up to a power of two. Default 2^20 (1 MiB).
pub(crate) const MAX_LEN_VAR: &str = "ARRAYPOOL_SHARED_MAX_LEN";
/// `ARRAYPOOL_SHARED_PARTITIONS`: partitions per bucket, `1 ..= 1024`. Default: the number of
/// CPUs this process may use.
pub(crate) const PARTITIONS_VAR: &str = "ARRAYPOOL_SHARED_PARTITIONS";
/// `ARRAYPOOL_SHARED_PER_PARTITION`: buffers kept per partition per bucket, `1 ..= 65536`.
/// Default 32.
pub(crate) const PER_PARTITION_VAR: &str = "ARRAYPOOL_SHARED_PER_PARTITION";
/// `ARRAYPOOL_SHARED_THREAD_CACHE_BYTES`: each thread's budget in the thread tier,
/// `1 ..= 2^30`. Default [`DEFAULT_THREAD_CACHE_BYTES`].
pub(crate) const THREAD_CACHE_BYTES_VAR: &str = "ARRAYPOOL_SHARED_THREAD_CACHE_BYTES";

/// The shared pool's default maximum length: 2^20, as in .NET before PR #55621, so that large
/// buffers go to custom pools sized for them.
pub(crate) const DEFAULT_MAX_LEN: usize = 1 << 20;
/// The shared pool's default partition depth: 32 since .NET 8 (dotnet/runtime PR #87905,
/// +10-15 % RPS in YARP over the earlier 8).
pub(crate) const DEFAULT_PER_PARTITION: usize = 32;
/// Above this depth one bucket of 1 MiB buffers would pin 64 GiB per partition.
pub(crate) const MAX_PER_PARTITION: usize = 1 << 16;

/// The shared pool's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SharedSettings {
    pub(crate) max_len: usize,
    pub(crate) partitions: usize,
    pub(crate) per_partition: usize,
    pub(crate) thread_cache_bytes: usize,
}

impl SharedSettings {
    /// Reads the three knobs from the process environment.
    pub(crate) fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var_os(name).and_then(|v| v.into_string().ok()))
    }

    /// Reads the knobs through `lookup` (the environment, or a test's map).
    ///
    /// Two valid knobs can still ask too much together: `per_partition` is lowered so that
    /// `partitions × per_partition` stays within [`MAX_PER_BUCKET`].
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let knob = |name, max| lookup(name).as_deref().and_then(|v| parse_knob(v, max));
        let partitions = knob(PARTITIONS_VAR, MAX_PARTITIONS)
            .unwrap_or_else(|| available_cpus().min(MAX_PARTITIONS));
        let per_partition =
            knob(PER_PARTITION_VAR, MAX_PER_PARTITION).unwrap_or(DEFAULT_PER_PARTITION);
        Self {
            max_len: knob(MAX_LEN_VAR, MAX_POOLED_LEN).unwrap_or(DEFAULT_MAX_LEN),
            partitions,
            per_partition: per_partition.min(MAX_PER_BUCKET / partitions),
            thread_cache_bytes: knob(THREAD_CACHE_BYTES_VAR, MAX_POOLED_LEN)
                .unwrap_or(DEFAULT_THREAD_CACHE_BYTES),
        }
    }
}

/// Parses one knob: spaces trimmed, then 1 to 10 ASCII digits, in `1 ..= max`.
pub(crate) fn parse_knob(value: &str, max: usize) -> Option<usize> {
    let digits = value.trim_matches(' ');
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parsed: u64 = digits.parse().ok()?;
    let parsed = usize::try_from(parsed).ok()?;
    (1..=max).contains(&parsed).then_some(parsed)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_digits_with_spaces_around() {
        assert_eq!(parse_knob("8", 100), Some(8));
        assert_eq!(parse_knob("  64 ", 100), Some(64));
        assert_eq!(parse_knob("0000000100", 100), Some(100));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "", " ", "0", "-1", "+1", "1.5", "1e3", "0x10", "12k", "\t8", "8\n", "1 000",
        ] {
            assert_eq!(parse_knob(bad, 1 << 30), None, "{bad:?}");
        }
        assert_eq!(parse_knob("101", 100), None, "above the range");
        assert_eq!(
            parse_knob("12345678901", usize::MAX),
            None,
            "more than ten digits"
        );
    }

    #[test]
    fn unset_or_invalid_knobs_mean_the_defaults() {
        let defaults = SharedSettings::from_lookup(|_| None);
        assert_eq!(defaults.max_len, DEFAULT_MAX_LEN);
        assert_eq!(defaults.per_partition, DEFAULT_PER_PARTITION);
        assert_eq!(defaults.partitions, available_cpus());
        assert_eq!(defaults.thread_cache_bytes, DEFAULT_THREAD_CACHE_BYTES);
        let garbage = SharedSettings::from_lookup(|_| Some("lots".to_owned()));
        assert_eq!(garbage, defaults);
        let too_big = SharedSettings::from_lookup(|_| Some("9999999999".to_owned()));
        assert_eq!(too_big, defaults);
    }

    /// Regression (review B2): 1024 partitions of 65536 slots each were accepted, 1.5 GiB of
    /// slot vectors per bucket at its first return.
    #[test]
    fn the_knobs_product_is_capped() {
        let settings = SharedSettings::from_lookup(|name| match name {
            PARTITIONS_VAR => Some("1024".to_owned()),
            PER_PARTITION_VAR => Some("65536".to_owned()),
            _ => None,
        });
        assert_eq!(settings.partitions, 1024);
        assert_eq!(settings.per_partition, MAX_PER_BUCKET / 1024);
        assert!(settings.partitions * settings.per_partition <= MAX_PER_BUCKET);
    }

    #[test]
    fn valid_knobs_are_taken() {
        let settings = SharedSettings::from_lookup(|name| {
            let value = match name {
                MAX_LEN_VAR => "4194304",
                PARTITIONS_VAR => "3",
                PER_PARTITION_VAR => " 7 ",
                THREAD_CACHE_BYTES_VAR => "65536",
                _ => unreachable!(),
            };
            Some(value.to_owned())
        });
        assert_eq!(
            settings,
            SharedSettings {
                max_len: 1 << 22,
                partitions: 3,
                per_partition: 7,
                thread_cache_bytes: 65536,
            }
        );
    }
}
