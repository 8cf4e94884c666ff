//! The filesystem and block device holding the data directory: space as
//! `df` counts it, and I/O counters from `/proc/diskstats`. Read through
//! [`Disk`], so tests can put in readings of their own.

use std::path::Path;

/// Where disk readings come from.
pub trait Disk: Send + Sync {
    /// Space of the filesystem holding `path`; `None` when unknown.
    fn space(&self, path: &Path) -> Option<DiskSpace>;
    /// Counters of the block device holding `path`; `None` when it is not
    /// on one the kernel accounts for.
    fn io(&self, path: &Path) -> Option<DiskIo>;
}

/// The machine's own disks (statvfs and `/proc/diskstats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostDisk;

impl Disk for HostDisk {
    fn space(&self, path: &Path) -> Option<DiskSpace> {
        disk_space(path)
    }
    fn io(&self, path: &Path) -> Option<DiskIo> {
        disk_io(path)
    }
}

/// Bytes of a filesystem as `df` counts them (blocks reserved for root are
/// neither used nor available).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub used: u64,
    pub available: u64,
}

impl DiskSpace {
    pub fn total(&self) -> u64 {
        self.used + self.available
    }

    /// Used fraction, 0..1 (df's Use%); 0 for an empty filesystem.
    pub fn usage(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.used as f64 / total as f64,
        }
    }
}

/// The space of the filesystem holding `path` (statvfs).
pub fn disk_space(path: &Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some(DiskSpace {
        used: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize,
        available: st.f_bavail as u64 * frsize,
    })
}

/// The free space writes must leave on the filesystem of the data
/// directory (`limits.disk-reserve-mb`).
pub struct DiskReserve {
    path: std::path::PathBuf,
    /// Bytes; `None`: max(1 GiB, 2% of the filesystem).
    configured: Option<u64>,
    disk: Box<dyn Disk>,
}

impl DiskReserve {
    pub fn new(path: &Path, reserve_mb: Option<u64>, disk: Box<dyn Disk>) -> Self {
        DiskReserve {
            path: path.to_path_buf(),
            configured: reserve_mb.map(|mb| mb.saturating_mul(1 << 20)),
            disk,
        }
    }

    /// The reserve of a filesystem of this size, bytes: as configured, or
    /// max(1 GiB, 2%) — but at most a tenth of the filesystem, so a small
    /// one (a 1 GiB volume, a tmpfs) is not refused from the first write.
    pub fn bytes(&self, space: &DiskSpace) -> u64 {
        self.configured.unwrap_or_else(|| {
            let total = space.total();
            (1u64 << 30).max(total / 50).min(total / 10)
        })
    }

    /// Refuse a write while the filesystem is below the reserve (one
    /// statvfs; unknown space lets it through). Checked before the write,
    /// so requests in flight together may take up to their own sizes more.
    pub fn check(&self) -> crate::error::Result<()> {
        let Some(space) = self.disk.space(&self.path) else {
            return Ok(());
        };
        let reserve = self.bytes(&space);
        if reserve == 0 || space.available >= reserve {
            return Ok(());
        }
        let mb = |b: u64| b as f64 / (1u64 << 20) as f64;
        Err(crate::error::Error::disk_full(format!(
            "the filesystem holding {} has {:.1} MiB free, under its reserve of {:.1} MiB \
             (limits.disk-reserve-mb): writes are refused until space is freed — delete \
             data and run `compact --full`, or delete snapshots; reads and deletes still work",
            self.path.display(),
            mb(space.available),
            mb(reserve)
        )))
    }
}

/// The disk a daemon checks its reserve against: the host's, or — with the
/// `fault-injection` feature and `RUVECTOR_STORAGE_DISK_LIMIT_BYTES=N` —
/// a filesystem of N bytes holding only the data directory (for tests that
/// cannot mount a small filesystem).
pub fn reserve_disk(data_dir: &Path) -> Box<dyn Disk> {
    #[cfg(feature = "fault-injection")]
    if let Some(limit) = std::env::var("RUVECTOR_STORAGE_DISK_LIMIT_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tracing::warn!(
            limit,
            "fault injection: the data directory's filesystem is simulated"
        );
        return Box::new(SizedDir {
            dir: data_dir.to_path_buf(),
            limit,
        });
    }
    let _ = data_dir;
    Box::new(HostDisk)
}

/// A simulated filesystem of `limit` bytes holding only `dir`.
#[cfg(feature = "fault-injection")]
struct SizedDir {
    dir: std::path::PathBuf,
    limit: u64,
}

#[cfg(feature = "fault-injection")]
impl Disk for SizedDir {
    fn space(&self, _path: &Path) -> Option<DiskSpace> {
        let used = crate::fs::tree_size(&self.dir);
        Some(DiskSpace {
            used,
            available: self.limit.saturating_sub(used),
        })
    }
    fn io(&self, path: &Path) -> Option<DiskIo> {
        disk_io(path)
    }
}

/// Cumulative I/O counters of the block device holding a path, from
/// `/proc/diskstats` (the line whose major:minor is the path's `st_dev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskIo {
    pub device: String,
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Milliseconds the device had I/O in flight (`io_ticks`): its rate
    /// over an interval is the device's utilisation, 0..1.
    pub io_time_ms: u64,
}

/// The counters of the block device holding `path`; `None` when the path
/// is not on a block device the kernel accounts for (tmpfs, overlayfs, …).
pub fn disk_io(path: &Path) -> Option<DiskIo> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    parse_diskstats(&text, libc::major(dev), libc::minor(dev))
}

/// Find `major minor` in `/proc/diskstats` text (fields per
/// Documentation/admin-guide/iostats.rst; sectors are 512 bytes).
pub fn parse_diskstats(text: &str, major: u32, minor: u32) -> Option<DiskIo> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || f[0].parse::<u32>().ok()? != major || f[1].parse::<u32>().ok()? != minor
        {
            return None;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        Some(DiskIo {
            device: f[2].to_string(),
            reads: n(3)?,
            read_bytes: n(5)? * 512,
            writes: n(7)?,
            written_bytes: n(9)? * 512,
            io_time_ms: n(12)?,
        })
    })
}

/// Utilisation of a device between two readings `secs` apart, 0..1.
pub fn io_utilisation(before: &DiskIo, after: &DiskIo, secs: f64) -> f64 {
    if before.device != after.device || secs <= 0.0 {
        return 0.0;
    }
    (after.io_time_ms.saturating_sub(before.io_time_ms) as f64 / (secs * 1000.0)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 3728721 41198 100966082 8040852 2759874 418362 1193274624 4033060 0 580628 12220287 247878 22 2261331304 114312 767446 32061
 254       1 vda1 10 80 20 160
";

    #[test]
    fn diskstats_line_of_the_device_is_parsed() {
        let io = parse_diskstats(DISKSTATS, 254, 0).expect("vda");
        assert_eq!(io.device, "vda");
        assert_eq!(io.reads, 3_728_721);
        assert_eq!(io.read_bytes, 100_966_082 * 512);
        assert_eq!(io.writes, 2_759_874);
        assert_eq!(io.written_bytes, 1_193_274_624 * 512);
        assert_eq!(io.io_time_ms, 580_628);
        // A partition line in the pre-2.6.25 short form has no io_ticks.
        assert_eq!(parse_diskstats(DISKSTATS, 254, 1), None);
        assert_eq!(parse_diskstats(DISKSTATS, 8, 0), None);
    }

    #[test]
    fn utilisation_is_busy_time_over_elapsed_time() {
        let a = parse_diskstats(DISKSTATS, 254, 0).unwrap();
        let mut b = a.clone();
        b.io_time_ms += 250;
        assert!((io_utilisation(&a, &b, 1.0) - 0.25).abs() < 1e-9);
        b.io_time_ms += 10_000;
        assert_eq!(io_utilisation(&a, &b, 1.0), 1.0, "clamped");
        b.device = "sdb".into();
        assert_eq!(io_utilisation(&a, &b, 1.0), 0.0, "another device");
    }

    #[test]
    fn usage_is_used_over_used_plus_available() {
        let d = DiskSpace {
            used: 80,
            available: 20,
        };
        assert_eq!(d.total(), 100);
        assert!((d.usage() - 0.8).abs() < 1e-12);
        let empty = DiskSpace {
            used: 0,
            available: 0,
        };
        assert_eq!(empty.usage(), 0.0);
    }
}
