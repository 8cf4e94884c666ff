//! The daemon's figures: one [`Sample`] per tick of the metrics actor
//! (storage size, throughput counters, compression ratio, WAL sync latency,
//! compaction, snapshots, block cache, memory, disk space and I/O, backup
//! age and WAL archive lag), and what is made of it:
//!
//! - [`exposition`]: the metric families, encoded with `prometheus-client`
//!   for `GET /metrics` (`promtool check metrics` accepts it) and as JSON
//!   for `storage_stats {detailed}`;
//! - [`tick`]: rates between samples, the 80% disk alert and the memory
//!   alert (RSS over the budget by 25%), the records to publish;
//! - [`records`]: those records, in the fields agents read (INTEROP.md §3);
//! - [`history`]: the figures of each tick kept in the metrics history,
//!   and what `stats --history` makes of them.

pub mod disk;
pub mod exposition;
pub mod history;
pub mod records;
mod sample;
pub mod tick;

pub use disk::{
    disk_io, disk_space, io_utilisation, parse_diskstats, Disk, DiskIo, DiskSpace, HostDisk,
};
pub use sample::{Latest, MemoryFigures, Sample, VectorFigures, WalSync};

/// Disk usage at or above this fraction raises the alert.
pub const DISK_ALERT_RATIO: f64 = 0.8;

/// A resident set above the memory budget by this factor raises the alert.
pub const MEMORY_ALERT_RATIO: f64 = 1.25;
