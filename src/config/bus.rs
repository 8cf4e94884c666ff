//! Where else the daemon's records go: `[[bus.external]]` targets.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BusConfig {
    /// Other agents' memory servers that also receive the records.
    pub external: Vec<ExternalTarget>,
}

/// One `[[bus.external]]` target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExternalTarget {
    /// A label for logs and `stats`.
    pub name: String,
    /// A JSON-RPC endpoint (`http://…` or `https://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An MCP server reached over streamable HTTP (`http://…/mcp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_url: Option<String>,
    /// An MCP server to spawn and talk to over stdio: program and arguments.
    pub command: Vec<String>,
    /// Tool / method to call: `memory_store` (v3) or `memory_usage` (v2).
    /// Default: `memory_store` if the MCP server lists it, else `memory_usage`;
    /// `memory_store` for JSON-RPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Which namespaces to forward (patterns as in `[auth]`). Default: all.
    pub namespaces: Vec<String>,
    /// Environment variable holding a bearer token for `url` or `mcp-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

impl ExternalTarget {
    pub fn validate(&self, at: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid(format!("{at}: name is required")));
        }
        let given = [
            self.url.is_some(),
            self.mcp_url.is_some(),
            !self.command.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(Error::invalid(format!(
                "{at}: give exactly one of url (JSON-RPC), mcp-url (MCP over streamable HTTP) \
                 or command (MCP over stdio)"
            )));
        }
        for (field, u) in [("url", &self.url), ("mcp-url", &self.mcp_url)] {
            if let Some(u) = u.as_ref().filter(|u| {
                !(u.starts_with("http://") || u.starts_with("https://"))
                    || url::Url::parse(u).is_err()
            }) {
                return Err(Error::invalid(format!(
                    "{at}: {field} {u:?} must be an http:// or https:// URL"
                )));
            }
        }
        if let Some(t) = &self.tool {
            if t != "memory_store" && t != "memory_usage" {
                return Err(Error::invalid(format!(
                    "{at}: tool {t:?} must be memory_store or memory_usage"
                )));
            }
        }
        Ok(())
    }
}
