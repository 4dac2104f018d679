//! The shared pool's environment knobs, read once when [`ArrayPool::shared`] first runs.
//!
//! The parse is strict, following .NET's `SharedArrayPoolStatics`: after trimming spaces the
//! value must be ASCII digits (1 to 10 of them; 20 for a byte budget), nothing else, and within
//! the knob's range. Anything else (empty, signs, `0x`, units, out of range, not UTF-8) means
//! the default. A bad value never fails the program: a pool knob is not worth a crash at first
//! use.
//!
//! [`ArrayPool::shared`]: crate::ArrayPool::shared

use std::time::Duration;

use crate::bucket::MAX_POOLED_LEN;
use crate::builder::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_THREAD_CACHE_BYTES, MAX_PARTITIONS, MAX_PER_BUCKET,
};
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
/// `ARRAYPOOL_SHARED_IDLE_TIMEOUT_MS`: the idle timeout in milliseconds, `0 ..= 2^32 - 1`;
/// 0 turns idle release (and pressure trimming) off. Default 60,000.
pub(crate) const IDLE_TIMEOUT_MS_VAR: &str = "ARRAYPOOL_SHARED_IDLE_TIMEOUT_MS";
/// `ARRAYPOOL_SHARED_MAX_RETAINED_BYTES`: the partitions' byte budget, `1 ..= 2^64 - 1`.
/// Default: none.
pub(crate) const MAX_RETAINED_BYTES_VAR: &str = "ARRAYPOOL_SHARED_MAX_RETAINED_BYTES";

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
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_retained_bytes: Option<u64>,
}

impl SharedSettings {
    /// Reads the knobs from the process environment.
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
            idle_timeout: match lookup(IDLE_TIMEOUT_MS_VAR)
                .as_deref()
                .and_then(|v| parse_digits(v, 10))
                .filter(|&ms| ms <= u64::from(u32::MAX))
            {
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
                None => Some(DEFAULT_IDLE_TIMEOUT),
            },
            max_retained_bytes: lookup(MAX_RETAINED_BYTES_VAR)
                .as_deref()
                .and_then(|v| parse_digits(v, 20))
                .filter(|&bytes| bytes > 0),
        }
    }
}

/// Parses one knob: spaces trimmed, then 1 to 10 ASCII digits, in `1 ..= max`.
pub(crate) fn parse_knob(value: &str, max: usize) -> Option<usize> {
    let parsed = usize::try_from(parse_digits(value, 10)?).ok()?;
    (1..=max).contains(&parsed).then_some(parsed)
}

/// Spaces trimmed, then 1 to `max_digits` ASCII digits that fit a `u64`, or `None`.
fn parse_digits(value: &str, max_digits: usize) -> Option<u64> {
    let digits = value.trim_matches(' ');
    if digits.is_empty() || digits.len() > max_digits || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
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
        assert_eq!(defaults.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(defaults.max_retained_bytes, None);
        let garbage = SharedSettings::from_lookup(|_| Some("lots".to_owned()));
        assert_eq!(garbage, defaults);
        let mut too_big = SharedSettings::from_lookup(|_| Some("9999999999".to_owned()));
        assert_eq!(
            too_big.max_retained_bytes,
            Some(9_999_999_999),
            "a valid byte budget"
        );
        too_big.max_retained_bytes = None;
        assert_eq!(too_big, defaults, "every other knob is out of its range");
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
    fn an_idle_timeout_of_zero_turns_trimming_off() {
        let settings = SharedSettings::from_lookup(|name| match name {
            IDLE_TIMEOUT_MS_VAR => Some("0".to_owned()),
            _ => None,
        });
        assert_eq!(settings.idle_timeout, None);
        for bad in ["-1", "1e3", "4294967296", "60 s"] {
            let settings = SharedSettings::from_lookup(|name| match name {
                IDLE_TIMEOUT_MS_VAR | MAX_RETAINED_BYTES_VAR => Some(bad.to_owned()),
                _ => None,
            });
            assert_eq!(settings.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT), "{bad:?}");
        }
        let zero_budget = SharedSettings::from_lookup(|name| match name {
            MAX_RETAINED_BYTES_VAR => Some("0".to_owned()),
            _ => None,
        });
        assert_eq!(zero_budget.max_retained_bytes, None, "0 means the default");
    }

    #[test]
    fn valid_knobs_are_taken() {
        let settings = SharedSettings::from_lookup(|name| {
            let value = match name {
                MAX_LEN_VAR => "4194304",
                PARTITIONS_VAR => "3",
                PER_PARTITION_VAR => " 7 ",
                THREAD_CACHE_BYTES_VAR => "65536",
                IDLE_TIMEOUT_MS_VAR => "1500",
                MAX_RETAINED_BYTES_VAR => "68719476736",
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
                idle_timeout: Some(Duration::from_millis(1500)),
                max_retained_bytes: Some(64 << 30),
            }
        );
    }
}
