//! Downloading a backup's files into a directory, each checked against its
//! size and SHA-256; and the scratch paths a restore builds in.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use super::{crypto, io_err, sha256, BackupFile, BackupManifest, Encoding, Target, PARALLEL};
use crate::error::{Error, Result};
use crate::fs::hex;

impl Target {
    /// Files downloaded at once: from a local target a restore is bound by
    /// the CPU (hashing, copying into the page cache), so one stream per
    /// core (measured: 2 streams on 2 cores restore ~15% faster than 4);
    /// from a remote one by latency, so [`PARALLEL`] or more.
    fn download_streams(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.is_local() {
            cores
        } else {
            PARALLEL.max(cores)
        }
    }

    /// Copy a raw object into `path`, hashing on the way; its size and
    /// SHA-256 must match the manifest's.
    async fn stream_to_file(&self, f: &BackupFile, path: &Path) -> Result<u64> {
        use object_store::GetResultPayload;
        use std::io::Read;
        let object = f.object();
        let r = self
            .store
            .get(&self.path(&object))
            .await
            .map_err(|e| self.err(&format!("reading {object}"), e))?;
        check_stored_size(f, r.meta.size)?;
        let path = path.to_path_buf();
        let task_failed =
            |e: tokio::task::JoinError| Error::internal(format!("restore task failed: {e}"));
        let out = match r.payload {
            // A local target: read the file object_store opened, through
            // one reused buffer.
            GetResultPayload::File(mut file, _) => tokio::task::spawn_blocking(move || {
                let mut out = HashingFile::create(path)?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let got = file.read(&mut buf).map_err(io_err(out.path.display()))?;
                    if got == 0 {
                        return Ok::<_, Error>(out);
                    }
                    out.write(&buf[..got])?;
                }
            })
            .await
            .map_err(task_failed)??,
            // A remote target: chunks as they arrive, written by a
            // blocking task.
            GetResultPayload::Stream(mut s) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
                let writer = tokio::task::spawn_blocking(move || {
                    let mut out = HashingFile::create(path)?;
                    while let Some(chunk) = rx.blocking_recv() {
                        out.write(&chunk)?;
                    }
                    Ok::<_, Error>(out)
                });
                while let Some(chunk) = s
                    .try_next()
                    .await
                    .map_err(|e| self.err(&format!("reading {object}"), e))?
                {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                drop(tx);
                writer.await.map_err(task_failed)??
            }
        };
        check_content(f, out.bytes, &hex(&out.hash.finalize()))?;
        Ok(out.bytes)
    }

    /// Download a backup's files into `dir` (created, must be empty),
    /// checking each against its SHA-256. Raw unencrypted objects (SSTs)
    /// stream through a small buffer, hashed as they are written (a file
    /// whose SHA-256 does not match fails the download, and the caller
    /// removes the directory); others are decoded whole, then written.
    /// Each file's fsync starts as soon as it is written and runs beside the
    /// next downloads (the disk writes back while the CPU hashes); all are
    /// awaited, then the directory is fsynced.
    pub async fn download(&self, m: &BackupManifest, dir: &Path) -> Result<u64> {
        fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
        self.progress.phase(
            "downloading",
            m.files.len() as u64,
            m.files.iter().map(|f| f.size).sum(),
        );
        let fsync = |path: PathBuf, n: u64| {
            let synced = tokio::task::spawn_blocking(move || {
                fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(path.display()))
            });
            (synced, n)
        };
        // After a failure no new file starts, and every file already
        // started (and its fsync) finishes before this returns: nothing
        // writes into `dir` once the caller sees the error and removes it.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        let results: Vec<Result<Option<_>>> = stream::iter(m.files.iter().cloned())
            .map(|f| async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(None);
                }
                let r = self.download_file(f, dir, fsync).await;
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                r.map(Some)
            })
            .buffer_unordered(self.download_streams())
            .collect()
            .await;
        let mut total = 0;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(Some((synced, n))) => match synced.await {
                    Ok(Ok(())) => total += n,
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => {
                        first_error
                            .get_or_insert(Error::internal(format!("fsync task failed: {e}")));
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        crate::fs::fsync_dir(dir)?;
        Ok(total)
    }

    /// One file of [`Target::download`]: written, its fsync started.
    async fn download_file<T>(
        &self,
        f: BackupFile,
        dir: &Path,
        fsync: impl Fn(PathBuf, u64) -> T,
    ) -> Result<T> {
        let path = dir.join(&f.name);
        if f.key.is_none() && f.encoding == Encoding::Raw {
            let n = self.stream_to_file(&f, &path).await?;
            self.progress.advance(n);
            return Ok(fsync(path, n));
        }
        let body = self.get_object(&f.object()).await?;
        let (path, n) = tokio::task::spawn_blocking(move || {
            let data = decode_object(&f, body)?;
            fs::write(&path, &data).map_err(io_err(path.display()))?;
            Ok::<_, Error>((path, data.len() as u64))
        })
        .await
        .map_err(|e| Error::internal(format!("restore task failed: {e}")))??;
        self.progress.advance(n);
        Ok(fsync(path, n))
    }
}

/// A restored file being written, hashed as it goes.
struct HashingFile {
    out: fs::File,
    path: PathBuf,
    hash: Sha256,
    bytes: u64,
}

impl HashingFile {
    fn create(path: PathBuf) -> Result<HashingFile> {
        Ok(HashingFile {
            out: fs::File::create(&path).map_err(io_err(path.display()))?,
            path,
            hash: Sha256::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        use std::io::Write;
        self.hash.update(b);
        self.out.write_all(b).map_err(io_err(self.path.display()))?;
        self.bytes += b.len() as u64;
        Ok(())
    }
}

/// An object's stored size against its manifest entry.
fn check_stored_size(f: &BackupFile, stored: u64) -> Result<()> {
    if stored != f.stored_size {
        return Err(Error::corruption(format!(
            "{}: object is {stored} bytes, the manifest says {}",
            f.name, f.stored_size
        )));
    }
    Ok(())
}

/// A file's restored size and SHA-256 against its manifest entry.
fn check_content(f: &BackupFile, size: u64, sha: &str) -> Result<()> {
    if size != f.size {
        return Err(Error::corruption(format!(
            "{}: {size} bytes, the manifest says {}",
            f.name, f.size
        )));
    }
    if sha != f.sha256 {
        return Err(Error::corruption(format!(
            "{}: SHA-256 {sha} does not match the manifest's {}",
            f.name, f.sha256
        )));
    }
    Ok(())
}

/// Decode an object's bytes into the file, checking size and SHA-256.
pub(super) fn decode_object(f: &BackupFile, body: Bytes) -> Result<Bytes> {
    check_stored_size(f, body.len() as u64)?;
    let body = match &f.key {
        None => body,
        Some(k) => {
            let key: [u8; 32] = crypto::decode_b64(k, &f.name)?.try_into().map_err(|_| {
                Error::corruption(format!("{}: object key is not 32 bytes", f.name))
            })?;
            Bytes::from(crypto::open(&key, f.sha256.as_bytes(), &body, &f.name)?)
        }
    };
    let data = match f.encoding {
        Encoding::Raw => body,
        Encoding::Zstd => Bytes::from(
            zstd::bulk::decompress(&body, f.size as usize + 1)
                .map_err(|e| Error::corruption(format!("{}: zstd: {e}", f.name)))?,
        ),
    };
    check_content(f, data.len() as u64, &sha256(&data))?;
    Ok(data)
}

/// Is `dir` absent or an empty directory?
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(format!("{}: {e}", dir.display()))),
    }
}

/// A sibling scratch path for building `dest` before it is renamed in.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "restore".into());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}
