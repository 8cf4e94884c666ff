//! File-system helpers every layer uses: atomic writes, directory fsync,
//! file checksums and sizes, advisory locks, hex and random bytes, and the crash points of
//! the fault-injection build. Ground floor: knows nothing of the store.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::invalid(format!("{} has no parent directory", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io(format!("creating {}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("renaming {} into place: {e}", path.display())))?;
    fsync_dir(dir)
}

/// Take an exclusive, non-blocking `flock` on `path`, held until the file
/// closes. `Ok(None)` when another process holds it; `create` makes the
/// file when it is missing (otherwise a missing file is `NotFound`).
pub fn try_lock(path: &Path, create: bool) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(create)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; no memory is shared.
    let busy = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0;
    Ok((!busy).then_some(file))
}

/// fsync a directory (so renames and new entries in it are durable).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}: {e}", dir.display())))
}

/// CRC32C of a file, reading in 1 MiB chunks (hardware CRC with SSE4.2).
pub fn crc32c_file(path: &Path) -> std::io::Result<(u32, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok((crc, n));
        }
        crc = crc32c::crc32c_append(crc, &buf[..r]);
        n += r as u64;
    }
}

/// Bytes used by the files under `path`, subdirectories included (not
/// following symlinks).
pub fn tree_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => tree_size(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes used by the files directly in `path` (RocksDB keeps a flat directory).
pub fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Lower-case hex of some bytes.
pub fn hex(d: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(d.len() * 2);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `N` bytes from the system's secure random generator.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    Ok(b)
}

/// Fault injection for crash tests: with the `fault-injection` feature,
/// `RUVECTOR_STORAGE_CRASH_AT=<point>` makes the process SIGKILL itself
/// when it reaches that point. A release build has no such variable.
#[cfg(feature = "fault-injection")]
pub fn crash_point(point: &str) {
    if std::env::var("RUVECTOR_STORAGE_CRASH_AT").as_deref() == Ok(point) {
        tracing::warn!(point, "crash injection: SIGKILL");
        // SAFETY: raising SIGKILL on ourselves; no memory is touched.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Without the `fault-injection` feature crash points do nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn crash_point(_point: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file is left behind: {names:?}");
        assert_eq!(crc32c_file(&p).unwrap(), (crc32c::crc32c(b"two!"), 4));
        assert_eq!(dir_size(dir.path()), 4);
    }

    #[test]
    fn hex_and_random() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_ne!(random::<16>().unwrap(), random::<16>().unwrap());
    }
}
