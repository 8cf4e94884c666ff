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

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bus::namespace_matches;
use crate::cdc::ChangeEvent;
pub use crate::config::{AuthConfig, Secret, TokenConfig, MIN_TOKEN_CHARS};
use crate::error::{Error, Result};

/// What an operation needs from a token (each operation declares it in
/// the operation table of `ops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Any valid token (health, stats, lists of names).
    Open,
    /// Read every one of these targets (keys, namespaces, collections).
    Read(Vec<String>),
    /// Write every one of these targets.
    Write(Vec<String>),
    /// Read the keys starting with this prefix.
    ReadPrefix(String),
    /// Read across every namespace; says what for.
    ReadAll(&'static str),
    /// Snapshots, backups, restores, checkpoints.
    Admin,
}

impl Access {
    pub fn read(target: &str) -> Access {
        Access::Read(vec![target.to_string()])
    }
    pub fn write(target: &str) -> Access {
        Access::Write(vec![target.to_string()])
    }
    /// One namespace, or (none given) all of them.
    pub fn read_namespace_or_all(namespace: &Option<String>, what: &'static str) -> Access {
        match namespace {
            Some(ns) => Access::read(ns),
            None => Access::ReadAll(what),
        }
    }
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

    /// May this token do what `access` needs (for `method`)? The error
    /// names the token, the target and what it would need.
    pub fn allows(&self, access: &Access, method: &str) -> Result<()> {
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
        match access {
            Access::Open => Ok(()),
            Access::Read(targets) => targets.iter().try_for_each(|t| {
                if self.can_read(t) {
                    Ok(())
                } else {
                    deny("read", t)
                }
            }),
            Access::Write(targets) => targets.iter().try_for_each(|t| {
                if self.can_write(t) {
                    Ok(())
                } else {
                    deny("write", t)
                }
            }),
            Access::ReadPrefix(prefix) => {
                if self.reads_everything()
                    || self.read.iter().chain(&self.write).any(|pat| {
                        let base = pat.strip_suffix('*').unwrap_or(pat);
                        (pat.ends_with('*') || pat.ends_with('/')) && prefix.starts_with(base)
                    })
                {
                    Ok(())
                } else {
                    deny("scan", prefix)
                }
            }
            Access::ReadAll(what) => {
                if self.reads_everything() {
                    Ok(())
                } else {
                    Err(Error::permission_denied(format!(
                        "token {:?} may not {what} across all namespaces; pass a namespace it may read",
                        self.name
                    )))
                }
            }
            Access::Admin => {
                if self.admin {
                    Ok(())
                } else {
                    Err(Error::permission_denied(format!(
                        "token {:?} may not run {method}: it needs admin = true",
                        self.name
                    )))
                }
            }
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
        c.validate()?;
        let mut tokens = Vec::new();
        for (i, t) in c.tokens.iter().enumerate() {
            let at = t.at(i);
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
