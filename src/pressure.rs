//! [`MemoryPressure`], and where the trimmer reads it: the process's cgroup (v2, else v1), else
//! the machine's `/proc/meminfo`.
//!
//! The levels are .NET's (`Utilities.GetMemoryPressure`): `High` at 90 % of the limit in use
//! or more, `Medium` at 70 %. The files are found once, when the trimmer starts; a reading
//! then opens two short files and parses them from a buffer on the stack, so a trimmer tick
//! allocates nothing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How short of memory the process is, for the trimmer: the pool's
/// [`pressure`](crate::ArrayPoolBuilder::pressure) source, or the process's cgroup limit or
/// the machine's available memory.
///
/// - `High` (90 % of the limit in use or more): the trimmer releases every buffer in the
///   partitions at once, whatever its age.
/// - `Medium` (70 % or more): buffers count as idle after a quarter of the idle timeout.
/// - `Low`: the idle timeout as configured.
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, MemoryPressure};
///
/// // An embedder that knows better than the cgroup: its own signal drives the pool.
/// let pool = ArrayPool::builder()
///     .pressure(|| MemoryPressure::Low)
///     .build()?;
/// # drop(pool);
/// # Ok::<(), arraypool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MemoryPressure {
    /// Below 70 % of the limit in use.
    Low,
    /// 70 % of the limit in use or more.
    Medium,
    /// 90 % of the limit in use or more.
    High,
}

impl MemoryPressure {
    /// The level for `used` bytes out of `limit`.
    pub(crate) fn of(used: u64, limit: u64) -> Self {
        if limit == 0 {
            return Self::Low;
        }
        // Integer percentages: used × 100 ≥ limit × 90, without overflow for any u64.
        let used = u128::from(used) * 100;
        let limit = u128::from(limit);
        if used >= limit * 90 {
            Self::High
        } else if used >= limit * 70 {
            Self::Medium
        } else {
            Self::Low
        }
    }
}

/// A cgroup v1 limit at or above this means "no limit" (the kernel reports 2^63 rounded down
/// to a page).
const V1_UNLIMITED: u64 = 1 << 60;

/// Where this process's memory use and limit are read.
#[derive(Debug)]
pub(crate) enum MemorySource {
    /// cgroup v2: `memory.current` against `memory.max` of the nearest cgroup with a limit.
    CgroupV2 { current: PathBuf, max: PathBuf },
    /// cgroup v1: `memory.usage_in_bytes` against `memory.limit_in_bytes`.
    CgroupV1 { usage: PathBuf, limit: PathBuf },
    /// The machine: `MemTotal - MemAvailable` against `MemTotal`.
    MemInfo,
    /// Nothing readable (not Linux, or no `/proc`): always `Low`.
    None,
}

impl MemorySource {
    /// Finds the source for this process: its cgroup's limit if it has one, else the machine.
    /// Reads `/proc/self/cgroup` and walks up the hierarchy; allocates, so it runs once.
    pub(crate) fn discover() -> Self {
        if cfg!(miri) {
            return Self::None; // Miri isolates the file system: opening a file would stop it
        }
        let Some(cgroups) = read_to_string("/proc/self/cgroup") else {
            return if Path::new("/proc/meminfo").exists() {
                Self::MemInfo
            } else {
                Self::None
            };
        };
        for line in cgroups.lines() {
            if let Some(path) = line.strip_prefix("0::") {
                if let Some(source) = v2_limit(Path::new("/sys/fs/cgroup"), path) {
                    return source;
                }
            }
        }
        for line in cgroups.lines() {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
            if let (Some(controllers), Some(path)) = (controllers, path) {
                if controllers.split(',').any(|c| c == "memory") {
                    if let Some(source) = v1_limit(Path::new("/sys/fs/cgroup/memory"), path) {
                        return source;
                    }
                }
            }
        }
        Self::MemInfo
    }

    /// The pressure now. Allocates nothing; an unreadable file reads as `Low`.
    pub(crate) fn read(&self) -> MemoryPressure {
        let (used, limit) = match self {
            Self::CgroupV2 { current, max } => match (read_u64(current), read_u64(max)) {
                (Some(used), Some(limit)) => (used, limit),
                _ => return MemoryPressure::Low,
            },
            Self::CgroupV1 { usage, limit } => match (read_u64(usage), read_u64(limit)) {
                (Some(used), Some(limit)) => (used, limit),
                _ => return MemoryPressure::Low,
            },
            Self::MemInfo => {
                let mut buffer = [0u8; 512];
                let Some(text) = read_into("/proc/meminfo", &mut buffer) else {
                    return MemoryPressure::Low;
                };
                match parse_meminfo(text) {
                    Some((total, available)) => (total.saturating_sub(available), total),
                    None => return MemoryPressure::Low,
                }
            }
            Self::None => return MemoryPressure::Low,
        };
        MemoryPressure::of(used, limit)
    }
}

/// The nearest cgroup v2 with a numeric `memory.max`, from `path` up to the root under `mount`.
fn v2_limit(mount: &Path, path: &str) -> Option<MemorySource> {
    let mut dir = mount.join(path.trim_start_matches('/'));
    loop {
        let max = dir.join("memory.max");
        if let Some(text) = read_to_string(&max) {
            if text.trim().parse::<u64>().is_ok() {
                return Some(MemorySource::CgroupV2 {
                    current: dir.join("memory.current"),
                    max,
                });
            }
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            return None;
        }
    }
}

/// The nearest cgroup v1 memory cgroup with a real limit, from `path` up under `mount`.
fn v1_limit(mount: &Path, path: &str) -> Option<MemorySource> {
    let mut dir = mount.join(path.trim_start_matches('/'));
    loop {
        let limit = dir.join("memory.limit_in_bytes");
        if let Some(value) = read_to_string(&limit).and_then(|t| t.trim().parse::<u64>().ok()) {
            if value < V1_UNLIMITED {
                return Some(MemorySource::CgroupV1 {
                    usage: dir.join("memory.usage_in_bytes"),
                    limit,
                });
            }
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            return None;
        }
    }
}

/// `(MemTotal, MemAvailable)` in bytes, from the start of `/proc/meminfo`.
fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib.saturating_mul(1024))
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

fn read_to_string(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Reads the start of a short file into `buffer`, without allocating.
fn read_into(path: impl AsRef<Path>, buffer: &mut [u8]) -> Option<&str> {
    let mut file = File::open(path).ok()?;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buffer[..filled]).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    let mut buffer = [0u8; 64];
    read_into(path, &mut buffer)?.trim().parse().ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_levels_are_dotnets() {
        assert_eq!(MemoryPressure::of(0, 100), MemoryPressure::Low);
        assert_eq!(MemoryPressure::of(69, 100), MemoryPressure::Low);
        assert_eq!(MemoryPressure::of(70, 100), MemoryPressure::Medium);
        assert_eq!(MemoryPressure::of(89, 100), MemoryPressure::Medium);
        assert_eq!(MemoryPressure::of(90, 100), MemoryPressure::High);
        assert_eq!(MemoryPressure::of(150, 100), MemoryPressure::High);
        assert_eq!(MemoryPressure::of(u64::MAX, u64::MAX), MemoryPressure::High);
        assert_eq!(
            MemoryPressure::of(5, 0),
            MemoryPressure::Low,
            "no limit known"
        );
    }

    #[test]
    fn meminfo_gives_total_and_available() {
        let text = "MemTotal:       24683584 kB\nMemFree:        21618680 kB\n\
                    MemAvailable:   24231200 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some((24_683_584 * 1024, 24_231_200 * 1024))
        );
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri isolates the file system")]
    fn cgroup_limits_are_found_up_the_hierarchy() {
        let root = std::env::temp_dir().join(format!("arraypool-cgroup-{}", std::process::id()));
        let leaf = root.join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.join("a/memory.max"), "1000\n").unwrap();
        std::fs::write(root.join("a/memory.current"), "950\n").unwrap();
        let source = v2_limit(&root, "/a/b").expect("the parent has a limit");
        assert_eq!(source.read(), MemoryPressure::High);
        std::fs::write(root.join("a/memory.current"), "100\n").unwrap();
        assert_eq!(source.read(), MemoryPressure::Low);
        assert!(v2_limit(&root, "/nowhere").is_none());

        std::fs::write(leaf.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(root.join("a/memory.limit_in_bytes"), "1000\n").unwrap();
        std::fs::write(root.join("a/memory.usage_in_bytes"), "750\n").unwrap();
        let source = v1_limit(&root, "/a/b").expect("the parent has a limit");
        assert_eq!(source.read(), MemoryPressure::Medium);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri isolates the file system")]
    fn this_machine_has_a_source_that_reads() {
        let source = MemorySource::discover();
        let _ = source.read();
    }
    #[test]
    #[cfg_attr(miri, ignore = "Miri isolates the file system")]
    fn unreadable_or_malformed_files_read_as_low() {
        let root = std::env::temp_dir().join(format!("arraypool-bad-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let garbage = root.join("garbage");
        std::fs::write(&garbage, "-12 kB\n").unwrap();
        let huge = root.join("huge");
        std::fs::write(&huge, "x".repeat(10_000)).unwrap();
        let missing = root.join("missing");
        for (used, limit) in [(&missing, &huge), (&garbage, &huge), (&huge, &garbage)] {
            let v2 = MemorySource::CgroupV2 {
                current: used.clone(),
                max: limit.clone(),
            };
            let v1 = MemorySource::CgroupV1 {
                usage: used.clone(),
                limit: limit.clone(),
            };
            assert_eq!(
                (v2.read(), v1.read()),
                (MemoryPressure::Low, MemoryPressure::Low)
            );
        }
        assert_eq!(MemorySource::None.read(), MemoryPressure::Low);
        assert_eq!(parse_meminfo("MemTotal: lots\nMemAvailable: 1 kB\n"), None);
        assert_eq!(parse_meminfo(""), None);
        let absurd = "MemTotal: 18446744073709551615 kB\nMemAvailable: 0 kB\n";
        assert_eq!(
            parse_meminfo(absurd),
            Some((u64::MAX, 0)),
            "saturates, never overflows"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
