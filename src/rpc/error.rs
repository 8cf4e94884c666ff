//! Errors as JSON-RPC error objects. The codes come from the one table in
//! [`crate::error::KINDS`]; `data` carries `{"kind", "retryable"}` so
//! clients need not parse messages.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

use crate::error::{Error, RPC_INVALID_PARAMS, RPC_METHOD_NOT_FOUND};
use crate::ops::ParseError;

pub fn to_rpc(e: &Error) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        e.kind.rpc_code(),
        e.message.clone(),
        Some(json!({"kind": e.kind.as_str(), "retryable": e.kind.is_retryable()})),
    )
}

pub fn parse_to_rpc(e: &ParseError) -> ErrorObjectOwned {
    match e {
        ParseError::UnknownMethod(m) => ErrorObjectOwned::owned(
            RPC_METHOD_NOT_FOUND,
            format!("unknown method {m:?}"),
            None::<()>,
        ),
        ParseError::Params(msg) => ErrorObjectOwned::owned(
            RPC_INVALID_PARAMS,
            msg.clone(),
            Some(json!({"kind": "invalid_input", "retryable": false})),
        ),
    }
}
