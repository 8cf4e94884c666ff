//! Who may connect: bearer tokens with namespace grants, and TLS. Plain
//! data; `auth` turns it into the checks requests go through.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    pub token_file: Option<PathBuf>,
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

impl AuthConfig {
    /// What can be checked without reading secrets: names, one source per
    /// token, no empty pattern. `auth::Authenticator` resolves and
    /// checks the secrets themselves at start-up.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = t.at(i);
            if t.name.trim().is_empty() {
                return Err(Error::invalid(format!(
                    "auth.tokens[{i}]: name is required"
                )));
            }
            if !names.insert(t.name.as_str()) {
                return Err(Error::invalid(format!("{at}: the name is used twice")));
            }
            let sources = [
                t.token.is_some(),
                t.token_file.is_some(),
                t.token_env.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(Error::invalid(format!(
                    "{at}: give exactly one of token, token-file, token-env"
                )));
            }
            if t.read.iter().chain(&t.write).any(|p| p.is_empty()) {
                return Err(Error::invalid(format!(
                    "{at}: an empty pattern grants nothing; remove it"
                )));
            }
        }
        Ok(())
    }
}

impl TokenConfig {
    /// How messages name this entry.
    pub fn at(&self, i: usize) -> String {
        format!("auth.tokens[{i}] ({:?})", self.name)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}
