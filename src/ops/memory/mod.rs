//! The memory tools' parameters and result objects, shared by JSON-RPC and
//! MCP: `memory_usage` (claude-flow v2) and `memory_store`, `memory_retrieve`,
//! `memory_search`, `memory_delete`, `memory_list`, `memory_stats` (v3).
//! Field names follow INTEROP.md; every result carries `timestamp`.

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{schema, Blocking, Store};
use crate::auth::Access;
use crate::bus::{rank, tokenize, Entry, MemoryStore, NewEntry, OnExisting, DEFAULT_NAMESPACE};
use crate::clock::iso_ms;
use crate::engine::Cf;
use crate::error::{Error, Result};

const V2_LIST_MAX: usize = 100;
const V2_SEARCH_MAX: usize = 50;
const V3_LIST_MAX: usize = 10_000;

/// claude-flow v2 memory tool: store, retrieve, list, delete or search (substring) entries of a namespace in the durable swarm memory. TTL in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryUsageParams {
    #[arg(long)]
    #[schemars(extend("enum" = ["store", "retrieve", "list", "delete", "search"]))]
    pub action: String,
    #[serde(default)]
    #[arg(long)]
    pub key: Option<String>,
    // The value to store, or the pattern of a search. (Fields of the v2
    // tool carry no doc comment: its schema is claude-flow's, verbatim.)
    #[serde(default)]
    #[arg(long, value_parser = text_value, help = "The value to store, or the pattern of a search")]
    #[schemars(with = "Option<String>")]
    pub value: Option<Value>,
    #[serde(default = "default_namespace", deserialize_with = "namespace_or_null")]
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    // Time to live, seconds.
    #[serde(default)]
    #[arg(long, help = "Time to live, seconds")]
    pub ttl: Option<f64>,
}

impl MemoryUsageParams {
    /// Only store adds data (refused when the disk is under its reserve).
    pub fn adds_data(&self) -> bool {
        self.action == "store"
    }

    /// store and delete write; the other actions read.
    pub fn access(&self) -> Access {
        match self.action.as_str() {
            "store" | "delete" => Access::write(&self.namespace),
            _ => Access::read(&self.namespace),
        }
    }
}

/// Store a value under a key in a namespace. Storing an existing key is an error unless upsert is true.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryStoreParams {
    /// Entry key.
    #[arg(long)]
    pub key: String,
    /// Value: a string or a JSON object.
    #[arg(long, value_parser = text_value)]
    #[schemars(schema_with = "schema::string_or_object")]
    pub value: Value,
    #[serde(default = "default_namespace", deserialize_with = "namespace_or_null")]
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Tags (CLI: comma-separated).
    #[serde(default)]
    #[arg(long, value_delimiter = ',')]
    pub tags: Option<Vec<String>>,
    /// Time to live in seconds.
    #[serde(default)]
    #[arg(long)]
    pub ttl: Option<f64>,
    /// Overwrite an existing key.
    #[serde(default)]
    #[arg(long)]
    pub upsert: bool,
}

/// Read one entry by key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryRetrieveParams {
    #[arg(long)]
    pub key: String,
    #[serde(default = "default_namespace", deserialize_with = "namespace_or_null")]
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
}

/// Delete one entry by key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryDeleteParams {
    #[arg(long)]
    pub key: String,
    #[serde(default = "default_namespace", deserialize_with = "namespace_or_null")]
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
}

/// Rank entries by relevance to a query (BM25 over the words of key and value, scores 0..1). Without namespace, searches all namespaces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemorySearchParams {
    #[arg(long)]
    pub query: String,
    #[serde(default)]
    #[arg(long)]
    pub namespace: Option<String>,
    /// Results at most (an integer in 1..=1000).
    #[serde(default = "default_search_limit")]
    #[arg(long, default_value_t = default_search_limit())]
    pub limit: Number,
    /// Lowest score returned.
    #[serde(default = "default_threshold")]
    #[arg(long, default_value_t = default_threshold())]
    #[schemars(range(min = 0, max = 1))]
    pub threshold: f64,
}

/// List entries, newest first; filter by namespace and by tags (an entry must carry all of them).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryListParams {
    #[serde(default)]
    #[arg(long)]
    pub namespace: Option<String>,
    /// Entries at most (an integer in 1..=10000).
    #[serde(default = "default_list_limit")]
    #[arg(long, default_value_t = default_list_limit())]
    pub limit: Number,
    /// Only entries carrying all of these (CLI: comma-separated).
    #[serde(default)]
    #[arg(long, value_delimiter = ',')]
    pub tags: Option<Vec<String>>,
}

/// Entries, namespaces in use, bytes on disk and backend of the memory store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, Args)]
pub struct MemoryStatsParams {}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

/// A namespace given as `null` is the default one (as when absent).
fn namespace_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(default_namespace))
}

const fn default_search_limit() -> Number {
    Number(10.0)
}

const fn default_threshold() -> f64 {
    0.3
}

const fn default_list_limit() -> Number {
    Number(100.0)
}

/// A JSON number as claude-flow sends it (`10` or `10.0`), written back as
/// an integer when it is whole; its schema is `{"type": "number"}`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct Number(pub f64);

impl Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Number {
    type Err = std::num::ParseFloatError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.parse().map(Number)
    }
}

/// A CLI value is stored as the string it is.
fn text_value(s: &str) -> std::result::Result<Value, String> {
    Ok(Value::String(s.to_string()))
}

fn now_iso(store: &MemoryStore) -> String {
    iso_ms(store.engine().clock().now_ms())
}

/// A stored string that is JSON comes back parsed (v2 semantics).
fn parse_if_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// The value as the v3 caller stored it: an object stays an object, a string a string.
fn v3_value(e: &Entry) -> Value {
    if e.body.structured {
        parse_if_json(&e.body.value)
    } else {
        Value::String(e.body.value.clone())
    }
}

fn value_to_string(v: Value) -> (String, bool) {
    match v {
        Value::String(s) => (s, false),
        other => (other.to_string(), true),
    }
}

/// Most recently updated first; ties by key.
fn newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.body
            .updated_at
            .cmp(&a.body.updated_at)
            .then(a.key.cmp(&b.key))
    });
}

/// claude-flow sends limits as JSON numbers: they must be whole.
fn limit_of(Number(l): Number, max: usize) -> Result<usize> {
    if l.is_finite() && l >= 1.0 && l.fract() == 0.0 && l <= max as f64 {
        Ok(l as usize)
    } else {
        Err(Error::invalid(format!(
            "limit {l} must be an integer in 1..={max}"
        )))
    }
}

fn metadata(e: &Entry) -> Value {
    let mut m = Map::new();
    m.insert("tags".into(), json!(e.body.tags));
    m.insert("id".into(), json!(e.body.id));
    if let Some(ttl) = e.body.ttl {
        m.insert("ttl".into(), json!(ttl));
        m.insert("expiresAt".into(), json!(iso_ms(e.expires_at)));
    }
    Value::Object(m)
}

/// claude-flow v2 `memory_usage`.
pub fn memory_usage(store: &MemoryStore, p: MemoryUsageParams) -> Result<Value> {
    let ns = p.namespace.clone();
    let need_key = |action: &str| {
        p.key
            .clone()
            .ok_or_else(|| Error::invalid(format!("memory_usage action {action:?} needs a key")))
    };
    let ts = now_iso(store);
    match p.action.as_str() {
        "store" => {
            let key = need_key("store")?;
            let value = p
                .value
                .clone()
                .ok_or_else(|| Error::invalid("memory_usage action \"store\" needs a value"))?;
            let (value, _) = value_to_string(value);
            let size = value.len();
            let new = NewEntry {
                ttl: p.ttl,
                ..NewEntry::text(value)
            };
            let (entry, _) = store.put(&ns, &key, new, OnExisting::Overwrite)?;
            Ok(
                json!({"success": true, "action": "store", "key": key, "namespace": ns,
                "stored": true, "size": size, "id": entry.body.id, "timestamp": ts}),
            )
        }
        "retrieve" => {
            let key = need_key("retrieve")?;
            let found = store.get(&ns, &key)?;
            let value = found
                .as_ref()
                .map(|(e, _)| parse_if_json(&e.body.value))
                .unwrap_or(Value::Null);
            Ok(
                json!({"success": true, "action": "retrieve", "key": key, "value": value,
                "found": found.is_some(), "namespace": ns, "timestamp": ts}),
            )
        }
        "list" => {
            let mut entries = store.entries(Some(&ns))?;
            newest_first(&mut entries);
            entries.truncate(V2_LIST_MAX);
            let mut out = Vec::with_capacity(entries.len());
            for e in &entries {
                out.push(
                    json!({"key": e.key, "value": e.body.value, "namespace": e.namespace,
                    "metadata": metadata(e), "createdAt": iso_ms(e.body.created_at),
                    "updatedAt": iso_ms(e.body.updated_at),
                    "accessCount": store.access_count(&e.namespace, &e.key)?}),
                );
            }
            Ok(
                json!({"success": true, "action": "list", "namespace": ns, "entries": out,
                "count": out.len(), "timestamp": ts}),
            )
        }
        "delete" => {
            let key = need_key("delete")?;
            let deleted = store.delete(&ns, &key)?;
            Ok(
                json!({"success": true, "action": "delete", "key": key, "namespace": ns,
                "deleted": deleted, "timestamp": ts}),
            )
        }
        "search" => {
            let pattern = match p.value.clone() {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => p.key.clone().unwrap_or_default(),
            };
            let needle = pattern.to_lowercase();
            let mut hits: Vec<(f64, Entry)> = store
                .entries(Some(&ns))?
                .into_iter()
                .filter_map(|e| {
                    if e.key.to_lowercase().contains(&needle) {
                        Some((1.0, e))
                    } else if e.body.value.to_lowercase().contains(&needle) {
                        Some((0.5, e))
                    } else {
                        None
                    }
                })
                .collect();
            hits.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then(b.1.body.updated_at.cmp(&a.1.body.updated_at))
            });
            hits.truncate(V2_SEARCH_MAX);
            let results: Vec<Value> = hits
                .iter()
                .map(|(score, e)| {
                    json!({"key": e.key, "value": e.body.value, "namespace": e.namespace,
                    "score": score, "updatedAt": iso_ms(e.body.updated_at)})
                })
                .collect();
            Ok(
                json!({"success": true, "action": "search", "pattern": pattern, "namespace": ns,
                "results": results, "count": results.len(), "timestamp": ts}),
            )
        }
        other => Ok(
            json!({"success": false, "error": format!("Unknown memory action: {other}"),
            "timestamp": ts}),
        ),
    }
}

/// v3 `memory_store`: storing an existing key without `upsert` is an error.
pub fn memory_store(store: &MemoryStore, p: MemoryStoreParams) -> Result<Value> {
    let ns = p.namespace.clone();
    let (value, structured) = value_to_string(p.value);
    let size = value.len();
    let on_existing = if p.upsert {
        OnExisting::Overwrite
    } else {
        OnExisting::Fail
    };
    let tags = p.tags.unwrap_or_default();
    let new = NewEntry {
        value,
        structured,
        tags,
        ttl: p.ttl,
    };
    let (entry, created) = store.put(&ns, &p.key, new, on_existing)?;
    Ok(
        json!({"success": true, "key": p.key, "namespace": ns, "stored": true,
        "id": entry.body.id, "size": size, "created": created, "updated": !created,
        "tags": entry.body.tags, "ttl": entry.body.ttl,
        "expiresAt": (entry.expires_at > 0).then(|| iso_ms(entry.expires_at)),
        "timestamp": now_iso(store)}),
    )
}

pub fn memory_retrieve(store: &MemoryStore, p: MemoryRetrieveParams) -> Result<Value> {
    let ns = p.namespace.clone();
    let ts = now_iso(store);
    Ok(match store.get(&ns, &p.key)? {
        None => json!({"success": true, "key": p.key, "namespace": ns, "found": false,
            "value": null, "timestamp": ts}),
        Some((e, count)) => json!({"success": true, "key": p.key, "namespace": ns, "found": true,
            "value": v3_value(&e), "tags": e.body.tags, "id": e.body.id,
            "createdAt": iso_ms(e.body.created_at), "updatedAt": iso_ms(e.body.updated_at),
            "accessCount": count,
            "expiresAt": (e.expires_at > 0).then(|| iso_ms(e.expires_at)), "timestamp": ts}),
    })
}

pub fn memory_delete(store: &MemoryStore, p: MemoryDeleteParams) -> Result<Value> {
    let ns = p.namespace.clone();
    let deleted = store.delete(&ns, &p.key)?;
    Ok(
        json!({"success": true, "key": p.key, "namespace": ns, "deleted": deleted,
        "timestamp": now_iso(store)}),
    )
}

/// v3 `memory_search`: BM25 over the tokens of key and value, best first.
/// Without a namespace it searches every namespace (each result names its own).
pub fn memory_search(store: &MemoryStore, p: MemorySearchParams) -> Result<Value> {
    let limit = limit_of(p.limit, 1000)?;
    let threshold = p.threshold;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::invalid(format!(
            "threshold {threshold} must be in 0..=1"
        )));
    }
    if p.query.trim().is_empty() {
        return Err(Error::invalid("query must not be empty"));
    }
    let entries = store.entries(p.namespace.as_deref())?;
    let docs: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut t = tokenize(&e.key);
            t.extend(tokenize(&e.body.value));
            t
        })
        .collect();
    let results: Vec<Value> = rank(&p.query, &docs)
        .into_iter()
        .filter(|(_, _, score)| *score >= threshold)
        .take(limit)
        .map(|(i, _, score)| {
            let e = &entries[i];
            json!({"key": e.key, "namespace": e.namespace, "value": v3_value(e),
                "score": (score * 10_000.0).round() / 10_000.0, "tags": e.body.tags,
                "updatedAt": iso_ms(e.body.updated_at)})
        })
        .collect();
    Ok(
        json!({"success": true, "query": p.query, "namespace": p.namespace,
        "results": results, "count": results.len(), "threshold": threshold,
        "searchType": "bm25", "timestamp": now_iso(store)}),
    )
}

/// v3 `memory_list`: newest first; `tags` keeps entries carrying all of them.
pub fn memory_list(store: &MemoryStore, p: MemoryListParams) -> Result<Value> {
    let limit = limit_of(p.limit, V3_LIST_MAX)?;
    let want_tags = p.tags.unwrap_or_default();
    let mut entries: Vec<Entry> = store
        .entries(p.namespace.as_deref())?
        .into_iter()
        .filter(|e| want_tags.iter().all(|t| e.body.tags.contains(t)))
        .collect();
    let total = entries.len();
    newest_first(&mut entries);
    entries.truncate(limit);
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        out.push(
            json!({"key": e.key, "namespace": e.namespace, "value": v3_value(e),
            "tags": e.body.tags, "createdAt": iso_ms(e.body.created_at),
            "updatedAt": iso_ms(e.body.updated_at),
            "accessCount": store.access_count(&e.namespace, &e.key)?,
            "expiresAt": (e.expires_at > 0).then(|| iso_ms(e.expires_at))}),
        );
    }
    Ok(
        json!({"success": true, "namespace": p.namespace, "tags": want_tags, "entries": out,
        "count": out.len(), "total": total, "timestamp": now_iso(store)}),
    )
}

pub fn memory_stats(store: &MemoryStore, _p: MemoryStatsParams) -> Result<Value> {
    let entries = store.entries(None)?;
    let mut namespaces = Map::new();
    for e in &entries {
        let n = namespaces
            .entry(e.namespace.clone())
            .or_insert(json!(0))
            .as_u64()
            .unwrap_or(0);
        namespaces.insert(e.namespace.clone(), json!(n + 1));
    }
    let stats = store.engine().stats();
    let bytes: u64 = stats
        .column_families
        .iter()
        .filter(|c| c.name == Cf::Memory.name())
        .map(|c| c.sst_bytes + c.memtable_bytes)
        .sum();
    Ok(
        json!({"success": true, "totalEntries": entries.len(), "namespaceCount": namespaces.len(),
        "namespaces": namespaces, "bytesOnDisk": bytes, "expiredPending": store.expired_pending()?,
        "backend": "rocksdb", "storePath": stats.path, "timestamp": now_iso(store)}),
    )
}

/// The memory tools run on the persistence actor's threads.
macro_rules! on_memory {
    ($( $params:ty => $tool:ident; )*) => {
        $( impl Blocking<Store> for $params {
            fn run(self, s: &Store) -> Result<Value> {
                let engine = s.engine.get()?;
                $tool(&MemoryStore::new(&engine, &s.locks), self)
            }
        } )*
    };
}

on_memory! {
    MemoryUsageParams => memory_usage;
    MemoryStoreParams => memory_store;
    MemoryRetrieveParams => memory_retrieve;
    MemoryDeleteParams => memory_delete;
    MemorySearchParams => memory_search;
    MemoryListParams => memory_list;
    MemoryStatsParams => memory_stats;
}

#[cfg(test)]
mod tests;
