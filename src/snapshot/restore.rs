//! Swapping a snapshot in as the live store, crash-safely.
//!
//! 1. `prepare`: build `<data>/db.restore-tmp` from the snapshot — SST
//!    files hard-linked (immutable), everything else copied — and fsync it.
//! 2. `swap`: `renameat2(RENAME_EXCHANGE)` atomically exchanges `db` and
//!    `db.restore-tmp`, then the directory is fsynced. `db` is therefore
//!    always one complete store: the old one before the exchange, the new
//!    one after. The previous state is kept as an undo snapshot *before*
//!    step 1, so nothing is lost either way.
//! 3. `recover` (at every start): whatever `db.restore-tmp` holds — a half
//!    prepared new store, or the old store after an exchange — is removed.
//!
//! For crash tests, `RUVECTOR_STORAGE_CRASH_AT=<point>` makes the process
//! SIGKILL itself at that point of a restore (fault injection only).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const LIVE_DIR: &str = "db";
pub const RESTORE_TMP: &str = "db.restore-tmp";

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(format!("{what}: {e}"))
}

use crate::fs::fsync_dir;

/// Remove leftovers of an interrupted restore. Called before the store opens.
pub fn recover(data_dir: &Path) -> Result<()> {
    let tmp = data_dir.join(RESTORE_TMP);
    if tmp.exists() {
        tracing::warn!(dir = %tmp.display(), "removing leftover of an interrupted restore");
        fs::remove_dir_all(&tmp).map_err(io_err(format!("removing {}", tmp.display())))?;
        fsync_dir(data_dir)?;
    }
    Ok(())
}

/// Step 1: a complete, fsynced copy of the snapshot at `db.restore-tmp`.
pub fn prepare(data_dir: &Path, snapshot_dir: &Path, files: &[String]) -> Result<PathBuf> {
    recover(data_dir)?;
    let tmp = data_dir.join(RESTORE_TMP);
    fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    for name in files {
        let src = snapshot_dir.join(name);
        let dst = tmp.join(name);
        if name.ends_with(".sst") {
            fs::hard_link(&src, &dst).map_err(io_err(format!("linking {}", src.display())))?;
        } else {
            fs::copy(&src, &dst).map_err(io_err(format!("copying {}", src.display())))?;
            fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(io_err(format!("syncing {}", dst.display())))?;
        }
    }
    fsync_dir(&tmp)?;
    fsync_dir(data_dir)?;
    Ok(tmp)
}

/// Step 2: atomically exchange `db` and `db.restore-tmp`. Once the
/// exchange succeeded the restore has happened, so a failing directory
/// fsync afterwards is only logged (a power loss could then bring back the
/// old, equally complete store).
pub fn swap(data_dir: &Path) -> Result<()> {
    let a = data_dir.join(LIVE_DIR);
    let b = data_dir.join(RESTORE_TMP);
    exchange(&a, &b)?;
    if let Err(e) = fsync_dir(data_dir) {
        tracing::warn!(error = %e, "the exchange is done but the directory fsync failed");
    }
    Ok(())
}

fn exchange(a: &Path, b: &Path) -> Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("{} contains NUL", a.display())))?;
    let cb = CString::new(b.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("{} contains NUL", b.display())))?;
    // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::io(format!(
            "atomically exchanging {} and {} failed ({e}); the filesystem must support renameat2(RENAME_EXCHANGE) (ext4, xfs, btrfs, tmpfs)",
            a.display(),
            b.display()
        )));
    }
    Ok(())
}

/// Step 3 after a successful swap: drop the replaced store (the undo
/// snapshot holds it).
pub fn discard_replaced(data_dir: &Path) -> Result<()> {
    let tmp = data_dir.join(RESTORE_TMP);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(format!("removing {}", tmp.display())))?;
        fsync_dir(data_dir)?;
    }
    Ok(())
}
