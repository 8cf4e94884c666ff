//! Small marker files of a location (`wal/HISTORY`, `wal/START`,
//! `wal/END`, `wal/ENCRYPTED`, `backups/CATALOG`): a value followed by its
//! SHA-256, so that any damage — a flipped bit, a truncation — is an error
//! naming the file, never a misread value.

use super::sha256;
use crate::error::{Error, Result};

/// A marker's body: its value and the value's SHA-256, so that any damage
/// (a flipped bit, a truncation) is detected instead of misread.
pub fn seal(value: &str) -> String {
    format!("{value}\nsha256:{}\n", sha256(value.as_bytes()))
}

pub fn open(object: &str, body: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::corruption(format!("{object} is damaged: not UTF-8")))?;
    let damaged = || Error::corruption(format!("{object} is damaged: its checksum does not match"));
    let (value, sum) = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once("\nsha256:"))
        .ok_or_else(damaged)?;
    if sha256(value.as_bytes()) != sum {
        return Err(damaged());
    }
    Ok(value.to_string())
}
