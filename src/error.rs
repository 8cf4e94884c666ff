//! The one public error of the crate: a kind (what class of failure, and
//! whether retrying can help) plus a message that says what failed and why.
//!
//! What each kind becomes at every door is in one table, [`KINDS`]: its
//! JSON-RPC error code, its CLI exit code and whether a retry can help.
//! MCP reports every kind as a tool error (`isError: true`) whose text
//! starts with the kind; only an unknown tool is a protocol error.

use std::fmt;

/// Classes of failure a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or violates a limit; nothing was changed.
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// The thing exists already and the request asked not to overwrite it.
    AlreadyExists,
    /// The daemon or one of its actors is not running (stopped, starting,
    /// shutting down); retry against the next instance.
    Unavailable,
    /// The store is paused for a moment (a restore is swapping it); the
    /// daemon is healthy and the same request will succeed shortly.
    Paused,
    /// Stored bytes failed a check (unknown codec, bad checksum, truncation).
    Corruption,
    /// The operating system or RocksDB failed an I/O operation.
    Io,
    /// A bug or an unexpected state; the message says where.
    Internal,
    /// The caller's token does not grant this (or no valid token was given).
    PermissionDenied,
    /// A running job was cancelled (by a request or by shutdown).
    Cancelled,
    /// The filesystem holding the data is below its reserve: writes are
    /// refused (reads, deletes and space-reclaiming jobs still run); retry
    /// once space is freed.
    DiskFull,
}

/// One row of the door mapping.
#[derive(Debug, Clone, Copy)]
pub struct KindRow {
    pub kind: ErrorKind,
    pub name: &'static str,
    /// JSON-RPC error code.
    pub rpc_code: i32,
    /// Exit code of a CLI command that fails with this kind.
    pub exit_code: u8,
    /// Whether the same request may succeed if simply retried.
    pub retryable: bool,
}

const fn row(
    kind: ErrorKind,
    name: &'static str,
    rpc_code: i32,
    exit_code: u8,
    retryable: bool,
) -> KindRow {
    KindRow {
        kind,
        name,
        rpc_code,
        exit_code,
        retryable,
    }
}

/// Every kind and what it becomes at each door (README lists the exit codes).
pub const KINDS: [KindRow; 11] = [
    row(ErrorKind::InvalidInput, "invalid_input", -32001, 2, false),
    row(ErrorKind::NotFound, "not_found", -32004, 3, false),
    row(ErrorKind::AlreadyExists, "already_exists", -32009, 1, false),
    row(ErrorKind::Unavailable, "unavailable", -32003, 4, true),
    row(ErrorKind::Paused, "paused", -32005, 4, true),
    row(ErrorKind::Corruption, "corruption", -32010, 5, false),
    row(ErrorKind::Io, "io", -32011, 1, true),
    row(ErrorKind::Internal, "internal", -32603, 1, false),
    row(
        ErrorKind::PermissionDenied,
        "permission_denied",
        -32013,
        6,
        false,
    ),
    row(ErrorKind::Cancelled, "cancelled", -32006, 7, false),
    row(ErrorKind::DiskFull, "disk_full", -32014, 8, true),
];

/// JSON-RPC's own codes for a request that is not even understood.
pub const RPC_METHOD_NOT_FOUND: i32 = -32601;
pub const RPC_INVALID_PARAMS: i32 = -32602;

impl ErrorKind {
    /// Its row of [`KINDS`] (the match makes a new kind need a row).
    fn row(self) -> &'static KindRow {
        use ErrorKind::*;
        &KINDS[match self {
            InvalidInput => 0,
            NotFound => 1,
            AlreadyExists => 2,
            Unavailable => 3,
            Paused => 4,
            Corruption => 5,
            Io => 6,
            Internal => 7,
            PermissionDenied => 8,
            Cancelled => 9,
            DiskFull => 10,
        }]
    }

    /// Whether the same request may succeed if simply retried.
    pub fn is_retryable(self) -> bool {
        self.row().retryable
    }

    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    pub fn rpc_code(self) -> i32 {
        self.row().rpc_code
    }

    pub fn exit_code(self) -> u8 {
        self.row().exit_code
    }

    /// The kind of a JSON-RPC error code (the protocol's own codes for
    /// malformed requests are invalid input; unknown codes are internal).
    pub fn from_rpc_code(code: i32) -> ErrorKind {
        match code {
            RPC_METHOD_NOT_FOUND | RPC_INVALID_PARAMS | -32600 | -32700 => ErrorKind::InvalidInput,
            c => KINDS
                .iter()
                .find(|r| r.rpc_code == c)
                .map_or(ErrorKind::Internal, |r| r.kind),
        }
    }
}

/// An error with a kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    pub fn paused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Paused, message)
    }
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled, message)
    }
    pub fn disk_full(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DiskFull, message)
    }

    /// Prefix the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        let kind = match e.kind() {
            rocksdb::ErrorKind::Corruption => ErrorKind::Corruption,
            rocksdb::ErrorKind::InvalidArgument | rocksdb::ErrorKind::NotSupported => {
                ErrorKind::InvalidInput
            }
            rocksdb::ErrorKind::Busy
            | rocksdb::ErrorKind::TimedOut
            | rocksdb::ErrorKind::TryAgain
            | rocksdb::ErrorKind::Incomplete => ErrorKind::Unavailable,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("rocksdb: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_and_round_trips() {
        for (i, r) in KINDS.iter().enumerate() {
            assert_eq!(r.kind.row().kind, r.kind, "{} is in the wrong row", r.name);
            assert_eq!(ErrorKind::from_rpc_code(r.rpc_code), r.kind);
            assert!(
                KINDS[i + 1..]
                    .iter()
                    .all(|o| o.kind != r.kind && o.rpc_code != r.rpc_code),
                "{} appears twice or shares its code",
                r.name
            );
            let json = serde_json::to_value(r.kind).unwrap();
            assert_eq!(json, r.name, "serde name and table name agree");
        }
        assert_eq!(
            ErrorKind::from_rpc_code(RPC_INVALID_PARAMS),
            ErrorKind::InvalidInput
        );
        assert_eq!(ErrorKind::from_rpc_code(-1), ErrorKind::Internal);
        assert!(ErrorKind::Paused.is_retryable());
        assert_ne!(
            ErrorKind::Paused.rpc_code(),
            ErrorKind::Unavailable.rpc_code()
        );
    }
}
