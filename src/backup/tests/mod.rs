//! Unit tests of the backup module. `target` tests the calls on a location
//! (upload, verify, download, encryption); the others test one workflow
//! each through [`Service`], as the backup actor runs it, against the real
//! local object store — and against the same store behind [`Flaky`], which
//! fails or silently drops calls on demand.

mod archiver;
mod copy;
mod create;
mod damage;
mod drill;
mod prune;
mod restore;
mod target;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{json, Value};

use super::{Service, StoreLayer};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::engine::{Engine, EngineSlot};
use crate::error::Result;
use crate::snapshot::SnapshotStore;
use crate::status::StatusBoard;

/// What [`Flaky`] does wrong, shared by every store it wraps. All off
/// (`usize::MAX`, `None`) until a test turns one on.
#[derive(Debug)]
pub(super) struct Faults {
    puts: AtomicUsize,
    /// Fail every put after this many.
    fail_puts_after: AtomicUsize,
    /// Acknowledge the put with this index without storing it.
    drop_put_at: AtomicUsize,
    /// Acknowledge without storing every put whose path contains this.
    drop_puts_matching: Mutex<Option<String>>,
    gets: AtomicUsize,
    /// Fail every read (a head is not a read) after this many.
    fail_gets_after: AtomicUsize,
    deletes: AtomicUsize,
    /// Fail every delete after this many.
    fail_deletes_after: AtomicUsize,
}

impl Faults {
    pub(super) fn new() -> Arc<Faults> {
        Arc::new(Faults {
            puts: AtomicUsize::new(0),
            fail_puts_after: AtomicUsize::new(usize::MAX),
            drop_put_at: AtomicUsize::new(usize::MAX),
            drop_puts_matching: Mutex::new(None),
            gets: AtomicUsize::new(0),
            fail_gets_after: AtomicUsize::new(usize::MAX),
            deletes: AtomicUsize::new(0),
            fail_deletes_after: AtomicUsize::new(usize::MAX),
        })
    }

    /// `n` more puts succeed, then every one fails.
    pub(super) fn fail_puts_after(&self, n: usize) {
        self.fail_puts_after
            .store(self.puts.load(SeqCst) + n, SeqCst);
    }

    /// The next put is acknowledged and not stored.
    pub(super) fn drop_next_put(&self) {
        self.drop_put_at.store(self.puts.load(SeqCst), SeqCst);
    }

    /// Puts to paths containing `part` are acknowledged and not stored.
    pub(super) fn drop_puts_matching(&self, part: &str) {
        *self.drop_puts_matching.lock().unwrap() = Some(part.to_string());
    }

    /// `n` more reads succeed, then every one fails.
    pub(super) fn fail_gets_after(&self, n: usize) {
        self.fail_gets_after
            .store(self.gets.load(SeqCst) + n, SeqCst);
    }

    /// `n` more deletes succeed, then every one fails.
    pub(super) fn fail_deletes_after(&self, n: usize) {
        self.fail_deletes_after
            .store(self.deletes.load(SeqCst) + n, SeqCst);
    }

    /// Everything works again.
    pub(super) fn heal(&self) {
        self.fail_puts_after.store(usize::MAX, SeqCst);
        self.drop_put_at.store(usize::MAX, SeqCst);
        *self.drop_puts_matching.lock().unwrap() = None;
        self.fail_gets_after.store(usize::MAX, SeqCst);
        self.fail_deletes_after.store(usize::MAX, SeqCst);
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "injected failure".into(),
    }
}

/// Fault injection on top of a real store (the local one here): fails or
/// silently drops calls as its [`Faults`] say.
#[derive(Debug)]
pub(super) struct Flaky {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl Flaky {
    pub(super) fn over(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> Arc<Flaky> {
        Arc::new(Flaky { inner, faults })
    }

    /// Wraps every store a service opens.
    pub(super) fn layer(faults: Arc<Faults>) -> StoreLayer {
        Arc::new(move |inner| Flaky::over(inner, faults.clone()) as Arc<dyn ObjectStore>)
    }
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &ObjPath,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        let n = self.faults.puts.fetch_add(1, SeqCst);
        if n >= self.faults.fail_puts_after.load(SeqCst) {
            return Err(injected());
        }
        let matching = self
            .faults
            .drop_puts_matching
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|m| location.as_ref().contains(m.as_str()));
        if n == self.faults.drop_put_at.load(SeqCst) || matching {
            return Ok(object_store::PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjPath,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &ObjPath,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        if !options.head {
            let n = self.faults.gets.fetch_add(1, SeqCst);
            if n >= self.faults.fail_gets_after.load(SeqCst) {
                return Err(injected());
            }
        }
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<ObjPath>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjPath>> {
        let (inner, faults) = (self.inner.clone(), self.faults.clone());
        locations
            .then(move |location| {
                let (inner, faults) = (inner.clone(), faults.clone());
                async move {
                    let location = location?;
                    let n = faults.deletes.fetch_add(1, SeqCst);
                    if n >= faults.fail_deletes_after.load(SeqCst) {
                        return Err(injected());
                    }
                    inner.delete(&location).await.map(|()| location)
                }
            })
            .boxed()
    }
    fn list(
        &self,
        prefix: Option<&ObjPath>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjPath>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &ObjPath,
        to: &ObjPath,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A backup service as the daemon wires it (without the actors): a store
/// in `<tmp>/data`, backups to `<tmp>/backups`, every store it opens
/// behind one [`Flaky`] (inert until a test turns a fault on).
pub(super) struct Svc {
    pub(super) dir: tempfile::TempDir,
    pub(super) config: Arc<Config>,
    pub(super) slot: Arc<EngineSlot>,
    pub(super) board: Arc<StatusBoard>,
    pub(super) service: Arc<Service>,
    /// The default destination's directory, and its URL.
    pub(super) backups: PathBuf,
    pub(super) url: String,
    pub(super) faults: Arc<Faults>,
}

pub(super) fn svc() -> Svc {
    svc_with(|_| {})
}

pub(super) fn svc_with(change: impl FnOnce(&mut Config)) -> Svc {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let url = format!("file://{}", backups.display());
    let mut config = Config {
        data_dir: dir.path().join("data"),
        sync: "never".into(),
        ..Config::default()
    };
    config.backup.destination = Some(url.clone());
    change(&mut config);
    let config = Arc::new(config);
    let engine = Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap();
    let slot = Arc::new(EngineSlot::new(engine));
    let board = Arc::new(StatusBoard::new());
    // As the backup actor does on start: its errors land on its entry.
    board.set_state("backup", "running");
    let faults = Faults::new();
    let service = Arc::new(
        new_service(&slot, &config, &board).with_store_layer(Flaky::layer(faults.clone())),
    );
    Svc {
        dir,
        config,
        slot,
        board,
        service,
        backups,
        url,
        faults,
    }
}

fn new_service(slot: &Arc<EngineSlot>, config: &Arc<Config>, board: &Arc<StatusBoard>) -> Service {
    let snapshots = Arc::new(crate::snapshot::Service::new(
        Arc::new(SnapshotStore::open(&config.data_dir).unwrap()),
        slot.clone(),
        config.clone(),
        board.clone(),
        Arc::new(crate::clock::SystemClock),
    ));
    Service::new(slot.clone(), config.clone(), board.clone(), snapshots)
}

/// Typed params from JSON, as a door would parse them.
pub(super) fn params<P: serde::de::DeserializeOwned>(v: Value) -> P {
    serde_json::from_value(v).unwrap()
}

/// Values that do not compress (so WAL and file sizes are what is written).
pub(super) fn noise(seed: usize, len: usize) -> String {
    let mut x = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdefghijklmnopqrstuv"[(x % 32) as usize])
        })
        .collect()
}

impl Svc {
    /// Write keys `k<i>` for `range`, each with `bytes` of noise.
    pub(super) fn put(&self, range: std::ops::Range<usize>, tag: &str, bytes: usize) {
        let entries: Vec<(String, String)> = range
            .map(|i| (format!("k{i:05}"), format!("{tag}-{}", noise(i, bytes))))
            .collect();
        self.slot.get().unwrap().kv_put_many(&entries).unwrap();
    }

    /// Every key and value of the live store.
    pub(super) fn live(&self) -> Vec<(String, String)> {
        let engine = self.slot.get().unwrap();
        let (mut out, mut cursor) = (Vec::new(), None);
        loop {
            let page = engine.kv_scan("", 10_000, cursor.as_deref()).unwrap();
            out.extend(page.entries.into_iter().map(|x| (x.key, x.value)));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    pub(super) fn sequence(&self) -> u64 {
        self.slot.get().unwrap().db().latest_sequence_number()
    }

    /// A second service over the same store and board (as after a
    /// restart: no archiver cursor), without faults.
    pub(super) fn fresh_service(&self) -> Arc<Service> {
        Arc::new(new_service(&self.slot, &self.config, &self.board))
    }

    pub(super) async fn create(&self, p: Value) -> Result<Value> {
        self.service.clone().create(params(p)).await
    }

    /// The names `backup list` shows, oldest first.
    pub(super) async fn names(&self) -> Vec<String> {
        self.names_at(json!({})).await
    }

    /// The names `backup list` shows for `location` (`{}`: the default).
    pub(super) async fn names_at(&self, location: Value) -> Vec<String> {
        let l = self.service.clone().list(params(location)).await.unwrap();
        l["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `backup verify --read-data` of one backup.
    pub(super) async fn verify(&self, name: &str) -> Value {
        self.service
            .clone()
            .verify(params(json!({"name": name, "read_data": true})))
            .await
            .unwrap()
    }

    /// The last error the backup service put on the board.
    pub(super) fn last_error(&self) -> String {
        self.board
            .snapshot()
            .get("backup")
            .and_then(|a| a.last_error.clone())
            .unwrap_or_default()
    }

    /// The `backup` status record.
    pub(super) fn record(&self) -> Value {
        self.board
            .records()
            .to_json()
            .into_iter()
            .find(|(name, _)| name == "backup")
            .map_or(Value::Null, |(_, v)| v)
    }

    /// Object files under the destination's `dir` (e.g. `objects`, `wal`).
    pub(super) fn stored(&self, dir: &str) -> Vec<PathBuf> {
        walk(&self.backups.join(dir))
    }
}

/// Every key and value of a store directory, read-only.
pub(super) fn read_store(dir: &Path, config: &Config) -> Vec<(String, String)> {
    let (mut opts, cfs) = crate::engine::descriptors(config);
    opts.create_if_missing(false);
    let db = rocksdb::DB::open_cf_descriptors_read_only(&opts, dir, cfs, false).unwrap();
    let cf = db.cf_handle("kv").unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|r| {
            let (k, v) = r.unwrap();
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v[1..]).into_owned(),
            )
        })
        .collect()
}

/// Every file under `dir` (none if it does not exist).
pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
