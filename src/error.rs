//! The one public error of the crate: a kind (what class of failure, and
//! whether retrying can help) plus a message that says what failed and why.
//! Mapping to JSON-RPC / MCP error codes lives in `rpc::error`, nowhere else.

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
    /// The daemon is not reachable, starting or shutting down; retry later.
    Unavailable,
    /// Stored bytes failed a check (unknown codec, bad checksum, truncation).
    Corruption,
    /// The operating system or RocksDB failed an I/O operation.
    Io,
    /// A bug or an unexpected state; the message says where.
    Internal,
    /// The caller's token does not grant this (or no valid token was given).
    PermissionDenied,
}

impl ErrorKind {
    /// Whether the same request may succeed if simply retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Io)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Io => "io",
            ErrorKind::Internal => "internal",
            ErrorKind::PermissionDenied => "permission_denied",
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
