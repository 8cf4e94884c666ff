//! Backups to object storage (`object_store`): a checkpoint's files go up
//! as content-addressed objects, then a manifest, last.
//!
//! Layout under the destination URL:
//!
//! | object                         | what                                             |
//! |--------------------------------|--------------------------------------------------|
//! | `objects/<h2>/<sha256>`        | one file's bytes; SSTs raw (already compressed), others zstd |
//! | `backups/<name>.json`          | the manifest: every file with size, SHA-256, object; written last |
//! | `wal/<first>-<last>.seg`       | archived WAL batches ([`wal`]); `.eseg` when encrypted |
//!
//! An object is named by the SHA-256 of the file it holds, so a file
//! already in the target (from an earlier backup, or an interrupted one) is
//! never uploaded again: every backup is incremental and deduplicated, and
//! every manifest is complete on its own (restore needs no chain walk). A
//! backup is visible only once its manifest exists; the manifest carries its
//! own SHA-256, so a damaged manifest is detected, not trusted.
//!
//! An incremental backup is one of two kinds, whichever is smaller:
//! - *files*: the checkpoint's files, of which only the new ones are
//!   uploaded (compaction rewrites SSTs, so after scattered updates most
//!   of the store is new files);
//! - *WAL*: no files; the archived WAL segments from a `base` backup (one
//!   with files) up to this backup's sequence. Restoring it is a
//!   point-in-time restore of the base to exactly that sequence.
//!
//! # Layout
//!
//! What a location holds, and the calls on it ([`Target`]):
//!
//! | module | its one job |
//! |---|---|
//! | [`target`] | a URL resolved to an object store and a prefix; put, get, delete, head, list |
//! | [`manifest`] | the manifest format: files, parent, base, sequences, its own checksum |
//! | `upload` | a checkpoint's files as objects, then the manifest; a WAL-based backup's manifest |
//! | `catalog` | which backups a location holds, their manifests (checked, opened) |
//! | `verify` | every object present with its size; read-data checks every SHA-256 |
//! | `download` | a backup's files into a directory, each checked as written |
//! | [`wal`] | the WAL archive: segments, one archiving pass, reading and replaying |
//! | [`crypto`] | AES-256-GCM, the keyring, data keys |
//! | [`prune`] | the PITR-safe keep-* plan, and applying it |
//! | [`progress`] | the running operation's phase and counters (`backup_status`) |
//! | [`params`] | what each operation takes |
//!
//! The workflows, behind [`Service`] (one method per operation):
//!
//! | module | its one job |
//! |---|---|
//! | `service` | the service's state, how a location becomes a target, the `backup` record |
//! | `create` | `backup create`: checkpoint, upload, or a WAL-based incremental |
//! | `incremental` | a WAL-based incremental, and when `auto` takes it |
//! | `restore` | choose a backup or a point in time, plan, put the result in place |
//! | `build` | download a base and replay the WAL onto it (restore and drill) |
//! | `archiver` | one archiving pass (the continuous archiver, `wal archive`); `wal replay` |
//! | `copy` | `backup copy` to a second location |
//! | `drill` | `backup drill`: a restore into scratch, read whole, reported |

mod archiver;
pub mod audit;
mod build;
mod catalog;
mod copy;
mod create;
pub mod crypto;
mod download;
mod drill;
mod incremental;
pub mod locations;
pub mod manifest;
pub mod marker;
pub mod offline;
pub mod params;
pub mod progress;
pub mod prune;
mod restore;
mod service;
pub mod target;
mod upload;
mod verify;
pub mod wal;

use sha2::{Digest, Sha256};

pub use download::{is_empty_dir, partial_path};
pub use locations::{default_destination, Locations, StoreLayer};
pub use manifest::{BackupFile, BackupManifest, Encoding, EncryptionInfo, FORMAT_VERSION};
pub use service::Service;
pub use target::Target;
pub use upload::{UploadSpec, UploadStats, WalBackupSpec};
pub use verify::{BadObject, VerifyReport};

use crate::error::Error;
use crate::fs::hex;

/// Files uploaded or downloaded at once.
const PARALLEL: usize = 4;

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
