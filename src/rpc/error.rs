//! The one place where errors become JSON-RPC error objects and back.
//!
//! | kind            | code   |
//! |-----------------|--------|
//! | unknown method  | -32601 |
//! | malformed params| -32602 |
//! | invalid_input   | -32001 |
//! | not_found       | -32004 |
//! | already_exists  | -32009 |
//! | unavailable     | -32003 |
//! | corruption      | -32010 |
//! | io              | -32011 |
//! | internal        | -32603 |
//! | permission_denied | -32013 |
//!
//! `data` carries `{"kind", "retryable"}` so clients need not parse messages.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

use crate::error::{Error, ErrorKind};
use crate::ops::ParseError;

pub const METHOD_NOT_FOUND: i32 = -32601;
pub const INVALID_PARAMS: i32 = -32602;

pub fn code_of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidInput => -32001,
        ErrorKind::NotFound => -32004,
        ErrorKind::AlreadyExists => -32009,
        ErrorKind::Unavailable => -32003,
        ErrorKind::Corruption => -32010,
        ErrorKind::Io => -32011,
        ErrorKind::Internal => -32603,
        ErrorKind::PermissionDenied => -32013,
    }
}

pub fn kind_of(code: i32) -> ErrorKind {
    match code {
        -32001 | METHOD_NOT_FOUND | INVALID_PARAMS | -32600 | -32700 => ErrorKind::InvalidInput,
        -32004 => ErrorKind::NotFound,
        -32009 => ErrorKind::AlreadyExists,
        -32003 => ErrorKind::Unavailable,
        -32010 => ErrorKind::Corruption,
        -32011 => ErrorKind::Io,
        -32013 => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    }
}

pub fn to_rpc(e: &Error) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        code_of(e.kind),
        e.message.clone(),
        Some(json!({"kind": e.kind.as_str(), "retryable": e.kind.is_retryable()})),
    )
}

pub fn parse_to_rpc(e: &ParseError) -> ErrorObjectOwned {
    match e {
        ParseError::UnknownMethod(m) => ErrorObjectOwned::owned(
            METHOD_NOT_FOUND,
            format!("unknown method {m:?}"),
            None::<()>,
        ),
        ParseError::Params(msg) => ErrorObjectOwned::owned(
            INVALID_PARAMS,
            msg.clone(),
            Some(json!({"kind": "invalid_input", "retryable": false})),
        ),
    }
}

/// An error as a client received it.
#[derive(Debug, Clone)]
pub struct RemoteError {
    pub code: i32,
    pub error: Error,
}

impl RemoteError {
    /// The request itself was malformed (unknown method or bad params shape).
    pub fn is_protocol(&self) -> bool {
        self.code == METHOD_NOT_FOUND || self.code == INVALID_PARAMS
    }
}

pub fn from_rpc(obj: &jsonrpsee::types::ErrorObject<'_>) -> RemoteError {
    RemoteError {
        code: obj.code(),
        error: Error::new(kind_of(obj.code()), obj.message().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Unavailable,
            ErrorKind::Corruption,
            ErrorKind::Io,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_of(code_of(kind)), kind);
        }
    }
}
