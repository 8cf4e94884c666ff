//! Who may do what: bearer tokens, each with read/write grants over
//! namespace patterns and an admin flag.
//!
//! Without `[[auth.tokens]]` the API is open, and then it may only listen on
//! loopback (checked at start-up). With tokens every request — JSON-RPC
//! over HTTP or WebSocket, and `GET /metrics` — must carry
//! `Authorization: Bearer <token>`. Tokens are compared as SHA-256 digests
//! in constant time against every configured token; they are never logged
//! (the config types redact them in `Debug`).
//!
//! A pattern names what a grant covers: `agents/a` (exactly that), `agents/a/`
//! or `agents/a*` (everything starting so), `*` (everything). It is matched
//! against the memory namespace of memory tools, the key of key/value
//! methods, the collection of vector methods, and what a change stream
//! delivers. Snapshots, restores and WAL checkpoints need `admin = true`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cdc::{namespace_matches, ChangeEvent};
use crate::error::{Error, Result};
use crate::ops::Op;

/// A secret string: serialised as-is, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Shortest token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenConfig {
    /// Who this token is (shown in logs and errors; the token never is).
    pub name: String,
    /// The token itself (prefer `token-file` or `token-env`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A file holding the token (trailing whitespace ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<std::path::PathBuf>,
    /// An environment variable holding the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Patterns this token may read.
    pub read: Vec<String>,
    /// Patterns this token may write (writing implies reading).
    pub write: Vec<String>,
    /// Snapshots, restores, checkpoints.
    pub admin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// Bearer tokens. None: the API is open (loopback only).
    pub tokens: Vec<TokenConfig>,
}

/// What a valid token may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub name: String,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub admin: bool,
}

/// The grant of the token a request came with (a request extension).
#[derive(Debug, Clone)]
pub struct Identity(pub Arc<Grant>);

fn covers(patterns: &[String], target: &str) -> bool {
    patterns.iter().any(|p| namespace_matches(p, target))
}

impl Grant {
    pub fn can_read(&self, target: &str) -> bool {
        covers(&self.read, target) || covers(&self.write, target)
    }
    pub fn can_write(&self, target: &str) -> bool {
        covers(&self.write, target)
    }
    fn reads_everything(&self) -> bool {
        self.read.iter().chain(&self.write).any(|p| p == "*")
    }

    /// May this token run `op`? The error names the token, the target and
    /// what it would need.
    pub fn check(&self, op: &Op) -> Result<()> {
        use Op::*;
        let ns = |n: &Option<String>| {
            n.clone()
                .unwrap_or_else(|| crate::bus::DEFAULT_NAMESPACE.to_string())
        };
        let deny = |what: &str, target: &str| {
            Err(Error::permission_denied(format!(
                "token {:?} may not {what} {target:?}; grant it in [[auth.tokens]] {}",
                self.name,
                if what == "write" {
                    "write"
                } else {
                    "read or write"
                }
            )))
        };
        let need_read = |target: &str| {
            if self.can_read(target) {
                Ok(())
            } else {
                deny("read", target)
            }
        };
        let need_write = |target: &str| {
            if self.can_write(target) {
                Ok(())
            } else {
                deny("write", target)
            }
        };
        let need_all = |what: &str| {
            if self.reads_everything() {
                Ok(())
            } else {
                Err(Error::permission_denied(format!(
                    "token {:?} may not {what} across all namespaces; pass a namespace it may read",
                    self.name
                )))
            }
        };
        let need_admin = || {
            if self.admin {
                Ok(())
            } else {
                Err(Error::permission_denied(format!(
                    "token {:?} may not run {}: it needs admin = true",
                    self.name,
                    op.method()
                )))
            }
        };
        match op {
            StorageWrite(p) => {
                let keys = p
                    .key
                    .iter()
                    .cloned()
                    .chain(p.entries.iter().flatten().map(|e| e.key.clone()));
                keys.into_iter().try_for_each(|k| need_write(&k))
            }
            StorageDelete(p) => p
                .key
                .iter()
                .chain(p.keys.iter().flatten())
                .try_for_each(|k| need_write(k)),
            StorageRead(p) => need_read(&p.key),
            StorageScan(p) => {
                if self.reads_everything()
                    || self.read.iter().chain(&self.write).any(|pat| {
                        let base = pat.strip_suffix('*').unwrap_or(pat);
                        (pat.ends_with('*') || pat.ends_with('/')) && p.prefix.starts_with(base)
                    })
                {
                    Ok(())
                } else {
                    deny("scan", &p.prefix)
                }
            }
            CollectionCreate(p) => need_write(&p.name),
            VectorUpsert(p) => need_write(&p.collection),
            VectorDelete(p) => need_write(&p.collection),
            VectorGet(p) => need_read(&p.collection),
            IndexUpload(p) => need_write(&p.name),
            IndexCommit(p) => need_write(&p.name),
            IndexDelete(p) => need_write(&p.name),
            IndexRead(p) => need_read(&p.name),
            MemoryUsage(p) => match p.action.as_str() {
                "store" | "delete" => need_write(&ns(&p.namespace)),
                _ => need_read(&ns(&p.namespace)),
            },
            MemoryStore(p) => need_write(&ns(&p.namespace)),
            MemoryDelete(p) => need_write(&ns(&p.namespace)),
            MemoryRetrieve(p) => need_read(&ns(&p.namespace)),
            MemorySearch(p) => match &p.namespace {
                Some(n) => need_read(n),
                None => need_all("search"),
            },
            MemoryList(p) => match &p.namespace {
                Some(n) => need_read(n),
                None => need_all("list"),
            },
            MemoryStats(_) => need_all("count entries"),
            StorageStats(_) | SystemHealth(_) | CollectionList(_) | SnapshotList(_)
            | ScheduleList(_) => Ok(()),
            IndexList(_) => need_all("list indexes"),
            WalCheckpoint(_) | SnapshotCreate(_) | SnapshotRestore(_) | SnapshotDelete(_)
            | SnapshotVerify(_) | SnapshotPrune(_) => need_admin(),
            BackupCreate(_) | BackupList(_) | BackupVerify(_) | BackupRestore(_)
            | BackupPrune(_) | BackupCopy(_) | BackupDrill(_) | BackupStatus(_) | WalArchive(_)
            | WalReplay(_) => need_admin(),
        }
    }

    /// May this token see a change event?
    pub fn may_see(&self, e: &ChangeEvent) -> bool {
        let target = match e.kind.as_str() {
            "memory" => e.namespace.as_deref(),
            "kv" | "index" => e.key.as_deref(),
            _ => e.collection.as_deref(),
        };
        target.is_some_and(|t| self.can_read(t))
    }
}

/// Checks presented tokens.
pub struct Authenticator {
    tokens: Vec<([u8; 32], Arc<Grant>)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(_, g)| g.name.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("tokens", &names)
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// Resolve every token (files, environment) and validate; None when
    /// no tokens are configured.
    pub fn from_config(c: &AuthConfig) -> Result<Option<Authenticator>> {
        if c.tokens.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, t) in c.tokens.iter().enumerate() {
            let at = format!("auth.tokens[{i}] ({:?})", t.name);
            if t.name.trim().is_empty() {
                return Err(Error::invalid(format!(
                    "auth.tokens[{i}]: name is required"
                )));
            }
            if !names.insert(t.name.clone()) {
                return Err(Error::invalid(format!("{at}: the name is used twice")));
            }
            let secret = match (&t.token, &t.token_file, &t.token_env) {
                (Some(s), None, None) => s.0.clone(),
                (None, Some(f), None) => std::fs::read_to_string(f)
                    .map_err(|e| Error::invalid(format!("{at}: token-file {}: {e}", f.display())))?
                    .trim_end()
                    .to_string(),
                (None, None, Some(var)) => std::env::var(var)
                    .map_err(|_| Error::invalid(format!("{at}: token-env {var} is not set")))?,
                _ => {
                    return Err(Error::invalid(format!(
                        "{at}: give exactly one of token, token-file, token-env"
                    )))
                }
            };
            if secret.chars().count() < MIN_TOKEN_CHARS {
                return Err(Error::invalid(format!(
                    "{at}: the token is shorter than {MIN_TOKEN_CHARS} characters"
                )));
            }
            for p in t.read.iter().chain(&t.write) {
                if p.is_empty() {
                    return Err(Error::invalid(format!(
                        "{at}: an empty pattern grants nothing; remove it"
                    )));
                }
            }
            let d = digest(&secret);
            if tokens.iter().any(|(x, _): &([u8; 32], _)| *x == d) {
                return Err(Error::invalid(format!(
                    "{at}: the same token is configured twice"
                )));
            }
            tokens.push((
                d,
                Arc::new(Grant {
                    name: t.name.clone(),
                    read: t.read.clone(),
                    write: t.write.clone(),
                    admin: t.admin,
                }),
            ));
        }
        Ok(Some(Authenticator { tokens }))
    }

    /// The grant of a presented token. Every configured token is compared,
    /// in constant time, whatever matches.
    pub fn check(&self, presented: &str) -> Option<Arc<Grant>> {
        let d = digest(presented);
        let mut found = None;
        for (want, grant) in &self.tokens {
            if bool::from(want.ct_eq(&d)) {
                found = Some(grant.clone());
            }
        }
        found
    }

    /// The grant for an `Authorization` header value, or why not.
    pub fn authorize(&self, header: Option<&str>) -> std::result::Result<Arc<Grant>, &'static str> {
        let h = header.ok_or("missing Authorization: Bearer <token> header")?;
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .ok_or("the Authorization header is not a Bearer token")?;
        self.check(token.trim()).ok_or("invalid token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(read: &[&str], write: &[&str]) -> Grant {
        Grant {
            name: "t".into(),
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
            admin: false,
        }
    }

    fn op(method: &str, params: serde_json::Value) -> Op {
        Op::parse(method, Some(&params.to_string())).unwrap()
    }

    #[test]
    fn namespace_grants() {
        let g = grant(&["shared/*"], &["agents/a/"]);
        use serde_json::json;
        assert!(g
            .check(&op(
                "memory_store",
                json!({"key": "k", "value": "v", "namespace": "agents/a/plan"})
            ))
            .is_ok());
        let e = g
            .check(&op(
                "memory_store",
                json!({"key": "k", "value": "v", "namespace": "agents/b/plan"}),
            ))
            .unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::PermissionDenied);
        assert!(
            e.message.contains("agents/b/plan") && e.message.contains("write"),
            "{e}"
        );
        assert!(g
            .check(&op(
                "memory_retrieve",
                json!({"key": "k", "namespace": "shared/x"})
            ))
            .is_ok());
        assert!(g
            .check(&op(
                "memory_store",
                json!({"key": "k", "value": "v", "namespace": "shared/x"})
            ))
            .is_err());
        // No namespace means "default" for a store, "all" for a search.
        assert!(g
            .check(&op("memory_store", json!({"key": "k", "value": "v"})))
            .is_err());
        assert!(g
            .check(&op("memory_search", json!({"query": "q"})))
            .is_err());
        assert!(g
            .check(&op(
                "memory_search",
                json!({"query": "q", "namespace": "agents/a/x"})
            ))
            .is_ok());
        // Every key of a batch must be writable.
        assert!(g.check(&op("storage_write", json!({"entries": [{"key": "agents/a/1", "value": "v"}, {"key": "x", "value": "v"}]}))).is_err());
        assert!(g
            .check(&op("storage_scan", json!({"prefix": "agents/a/p"})))
            .is_ok());
        assert!(g
            .check(&op("storage_scan", json!({"prefix": "agents/"})))
            .is_err());
        assert!(g.check(&op("snapshot_create", json!({}))).is_err());
        assert!(g.check(&op("system_health", json!({}))).is_ok());
    }

    #[test]
    fn tokens_are_checked_and_never_printed() {
        let cfg = AuthConfig {
            tokens: vec![TokenConfig {
                name: "a".into(),
                token: Some(Secret("0123456789abcdef-secret".into())),
                read: vec!["*".into()],
                ..Default::default()
            }],
        };
        assert!(!format!("{cfg:?}").contains("secret"));
        let auth = Authenticator::from_config(&cfg).unwrap().unwrap();
        assert!(!format!("{auth:?}").contains("secret"));
        assert_eq!(
            auth.authorize(Some("Bearer 0123456789abcdef-secret"))
                .unwrap()
                .name,
            "a"
        );
        assert!(auth
            .authorize(Some("Bearer 0123456789abcdef-secreT"))
            .is_err());
        assert!(auth.authorize(Some("Basic abc")).is_err());
        assert!(auth.authorize(None).is_err());
        let short = AuthConfig {
            tokens: vec![TokenConfig {
                name: "s".into(),
                token: Some(Secret("short".into())),
                ..Default::default()
            }],
        };
        assert!(Authenticator::from_config(&short)
            .unwrap_err()
            .message
            .contains("shorter"));
        let two = AuthConfig {
            tokens: vec![TokenConfig {
                name: "s".into(),
                token: Some(Secret("x".repeat(20))),
                token_env: Some("X".into()),
                ..Default::default()
            }],
        };
        assert!(Authenticator::from_config(&two)
            .unwrap_err()
            .message
            .contains("exactly one"));
    }
}
