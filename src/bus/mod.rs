//! The swarm memory bus: namespaced entries with TTL and tags in the
//! `memory` column family, served with the exact shapes of claude-flow's v2
//! `memory_usage` tool and the v3 `memory_*` tools (see INTEROP.md).
//!
//! Keys are `namespace \0 key`, so a namespace is a key prefix that ends in a
//! NUL: `a` never matches entries of `ab`. Expired entries are skipped by
//! every read at once (against the injected [`Clock`]) and removed
//! physically by the `memory` column family's compaction filter.

mod search;

pub use search::{rank, tokenize};

use std::sync::{Mutex, MutexGuard};

use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::engine::{composite_key, group_prefix, Cf, Engine};
use crate::error::{Error, Result};

pub const DEFAULT_NAMESPACE: &str = "default";
const MAX_NAMESPACE_BYTES: usize = 256;
const MAX_TAGS: usize = 64;
const LOCK_STRIPES: usize = 64;
/// Longest TTL accepted: 100 years.
const MAX_TTL_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// The stored body of an entry (after the codec byte and expiry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EntryBody {
    pub id: String,
    pub value: String,
    /// The value was given as a JSON object/array (v3) rather than a string.
    #[serde(default)]
    pub structured: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub ttl: Option<f64>,
}

/// A live entry as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub namespace: String,
    pub key: String,
    pub body: EntryBody,
    /// Milliseconds since epoch, 0 = never.
    pub expires_at: i64,
}

/// The value and attributes of an entry being stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEntry {
    pub value: String,
    /// Given as a JSON object/array rather than a string (v3).
    pub structured: bool,
    pub tags: Vec<String>,
    /// Seconds to live; `None` or 0 = forever.
    pub ttl: Option<f64>,
}

impl NewEntry {
    pub fn text(value: String) -> Self {
        NewEntry {
            value,
            ..Default::default()
        }
    }
}

/// What to do when the key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExisting {
    Overwrite,
    Fail,
}

/// Striped per-key write locks, shared by every [`MemoryStore`] view: writes
/// to one key are serialised (so create-only and createdAt are exact);
/// different keys proceed in parallel and share fsyncs.
#[derive(Debug)]
pub struct KeyLocks(Vec<Mutex<()>>);

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect())
    }
}

/// The memory store: a view over the engine and the shared key locks.
#[derive(Debug, Clone, Copy)]
pub struct MemoryStore<'a> {
    engine: &'a Engine,
    locks: &'a KeyLocks,
}

/// Does `ns` fall under a namespace pattern (`a/b` exact, `a/` or `a/*` prefix, `*` all)?
pub fn namespace_matches(pattern: &str, ns: &str) -> bool {
    if let Some(p) = pattern.strip_suffix('*') {
        ns.starts_with(p)
    } else if pattern.ends_with('/') {
        ns.starts_with(pattern)
    } else {
        ns == pattern
    }
}

pub fn check_namespace(ns: &str) -> Result<()> {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_BYTES {
        return Err(Error::invalid(format!(
            "namespace {ns:?} must be 1..={MAX_NAMESPACE_BYTES} bytes"
        )));
    }
    if ns.contains('\0') {
        return Err(Error::invalid("namespace must not contain NUL"));
    }
    Ok(())
}

fn access_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = b"ctr/access/".to_vec();
    k.extend_from_slice(&composite_key(ns, key));
    k
}

impl<'a> MemoryStore<'a> {
    pub fn new(engine: &'a Engine, locks: &'a KeyLocks) -> Self {
        MemoryStore { engine, locks }
    }

    pub fn engine(&self) -> &'a Engine {
        self.engine
    }

    fn now(&self) -> i64 {
        self.engine.clock().now_ms()
    }

    fn lock(&self, ns: &str, key: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ns, key).hash(&mut h);
        let stripe = &self.locks.0[(h.finish() as usize) % LOCK_STRIPES];
        // A poisoned stripe only means another writer panicked; the data is in RocksDB.
        stripe.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_key(&self, key: &str) -> Result<()> {
        let max = self.engine.limits().max_key_bytes;
        if key.is_empty() {
            return Err(Error::invalid("key must not be empty"));
        }
        if key.len() > max {
            return Err(Error::invalid(format!(
                "key is {} bytes, the limit is {max} (limits.max-key-bytes)",
                key.len()
            )));
        }
        if key.contains('\0') {
            return Err(Error::invalid("key must not contain NUL"));
        }
        Ok(())
    }

    fn decode(&self, ns: &str, key: &str, bytes: &[u8]) -> Result<(i64, EntryBody)> {
        let (exp, body) = codec::decode_memory(bytes)
            .map_err(|e| e.context(format!("memory entry {ns}/{key}")))?;
        let body: EntryBody = serde_json::from_slice(body)
            .map_err(|e| Error::corruption(format!("memory entry {ns}/{key}: {e}")))?;
        Ok((exp, body))
    }

    fn live(&self, exp: i64, now: i64) -> bool {
        exp == 0 || exp > now
    }

    /// Store a value. Returns the entry and whether it was newly created.
    pub fn put(
        &self,
        ns: &str,
        key: &str,
        new: NewEntry,
        on_existing: OnExisting,
    ) -> Result<(Entry, bool)> {
        let NewEntry {
            value,
            structured,
            tags,
            ttl,
        } = new;
        check_namespace(ns)?;
        self.check_key(key)?;
        let max = self.engine.limits().max_value_bytes;
        if value.len() > max {
            return Err(Error::invalid(format!(
                "value is {} bytes, the limit is {max} (limits.max-value-bytes)",
                value.len()
            )));
        }
        if tags.len() > MAX_TAGS {
            return Err(Error::invalid(format!(
                "{} tags given, at most {MAX_TAGS}",
                tags.len()
            )));
        }
        let ttl = match ttl {
            None => None,
            Some(t) if t.is_finite() && t == 0.0 => None,
            Some(t) if t.is_finite() && t > 0.0 && t <= MAX_TTL_SECS => Some(t),
            Some(t) => {
                return Err(Error::invalid(format!(
                    "ttl {t} is not a number of seconds in 0..={MAX_TTL_SECS} (0 = no expiry)"
                )))
            }
        };
        let _guard = self.lock(ns, key);
        let now = self.now();
        let dbkey = composite_key(ns, key);
        let existing = match self.engine.get(Cf::Memory, &dbkey)? {
            Some(b) => {
                let (exp, body) = self.decode(ns, key, &b)?;
                self.live(exp, now).then_some(body)
            }
            None => None,
        };
        if existing.is_some() && on_existing == OnExisting::Fail {
            return Err(Error::exists(format!(
                "key {key:?} already exists in namespace {ns:?}; pass upsert: true to overwrite"
            )));
        }
        let created = existing.is_none();
        let body = EntryBody {
            id: existing
                .as_ref()
                .map(|b| b.id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            value,
            structured,
            tags,
            created_at: existing.as_ref().map(|b| b.created_at).unwrap_or(now),
            updated_at: now,
            ttl,
        };
        let expires_at = ttl
            .map(|t| now.saturating_add((t * 1000.0).ceil() as i64))
            .unwrap_or(0);
        let json = serde_json::to_vec(&body).map_err(|e| Error::internal(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.engine.cf(Cf::Memory),
            &dbkey,
            codec::encode_memory(expires_at, &json),
        );
        if created {
            batch.delete_cf(self.engine.cf(Cf::Sys), access_key(ns, key));
        }
        self.engine.write(batch)?;
        Ok((
            Entry {
                namespace: ns.to_string(),
                key: key.to_string(),
                body,
                expires_at,
            },
            created,
        ))
    }

    /// Read a live entry and count the access.
    pub fn get(&self, ns: &str, key: &str) -> Result<Option<(Entry, i64)>> {
        check_namespace(ns)?;
        self.check_key(key)?;
        let Some(bytes) = self.engine.get(Cf::Memory, &composite_key(ns, key))? else {
            return Ok(None);
        };
        let (exp, body) = self.decode(ns, key, &bytes)?;
        if !self.live(exp, self.now()) {
            return Ok(None);
        }
        let ak = access_key(ns, key);
        let mut batch = WriteBatch::default();
        batch.merge_cf(self.engine.cf(Cf::Sys), &ak, 1i64.to_le_bytes());
        self.engine.write_relaxed(batch)?;
        let count = self.engine.counter(&ak)?;
        Ok(Some((
            Entry {
                namespace: ns.to_string(),
                key: key.to_string(),
                body,
                expires_at: exp,
            },
            count,
        )))
    }

    /// Delete; true if a live entry existed.
    pub fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        check_namespace(ns)?;
        self.check_key(key)?;
        let _guard = self.lock(ns, key);
        let dbkey = composite_key(ns, key);
        let existed = match self.engine.get(Cf::Memory, &dbkey)? {
            Some(b) => self.live(self.decode(ns, key, &b)?.0, self.now()),
            None => false,
        };
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.engine.cf(Cf::Memory), &dbkey);
        batch.delete_cf(self.engine.cf(Cf::Sys), access_key(ns, key));
        self.engine.write(batch)?;
        Ok(existed)
    }

    pub fn access_count(&self, ns: &str, key: &str) -> Result<i64> {
        self.engine.counter(&access_key(ns, key))
    }

    /// Live entries of one namespace, or of all namespaces when `None`.
    pub fn entries(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        let now = self.now();
        let prefix = match ns {
            Some(ns) => {
                check_namespace(ns)?;
                group_prefix(ns)
            }
            None => Vec::new(),
        };
        let iter = self.engine.db().iterator_cf(
            self.engine.cf(Cf::Memory),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let Some(split) = k.iter().position(|b| *b == 0) else {
                return Err(Error::corruption("memory key without namespace separator"));
            };
            let namespace = String::from_utf8_lossy(&k[..split]).into_owned();
            let key = String::from_utf8_lossy(&k[split + 1..]).into_owned();
            let (exp, body) = self.decode(&namespace, &key, &v)?;
            if self.live(exp, now) {
                out.push(Entry {
                    namespace,
                    key,
                    body,
                    expires_at: exp,
                });
            }
        }
        Ok(out)
    }

    /// Entries stored but expired (awaiting compaction).
    pub fn expired_pending(&self) -> Result<u64> {
        let now = self.now();
        let mut n = 0;
        for item in self
            .engine
            .db()
            .iterator_cf(self.engine.cf(Cf::Memory), IteratorMode::Start)
        {
            let (_, v) = item?;
            if let Some(exp) = codec::memory_expiry(&v) {
                if !self.live(exp, now) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Publish a JSON record (the daemon's own status records).
    pub fn publish(&self, ns: &str, key: &str, value: &serde_json::Value) -> Result<()> {
        self.put(
            ns,
            key,
            NewEntry::text(value.to_string()),
            OnExisting::Overwrite,
        )
        .map(|_| ())
    }
}
