//! `index put` and `index get`: move an index file to and from the daemon
//! in chunks (`index_upload` … `index_commit`, `index_read`), checking its
//! SHA-256 end to end.

use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Conn;
use crate::client::Client;
use crate::error::{Error, Result};

/// Bytes per `index_upload` call (the daemon takes up to 8 MiB).
const CHUNK: usize = 4 << 20;

/// Store an index file (HNSW, IVF, …) in the daemon; replaces an index of
/// the same name atomically once every byte arrived and checked.
#[derive(Debug, Args)]
pub struct IndexPut {
    #[arg(long)]
    pub name: String,
    /// The index file to store.
    #[arg(long)]
    pub file: PathBuf,
    /// Index type, e.g. hnsw or ivf.
    #[arg(long = "type", value_name = "TYPE")]
    pub index_type: String,
    /// The index's parameters as a JSON object (dimension, M, ef, …).
    #[arg(long)]
    pub metadata: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Write a stored index to a file (checked against its SHA-256).
#[derive(Debug, Args)]
pub struct IndexGet {
    #[arg(long)]
    pub name: String,
    /// Where to write it (replaced only once complete and checked).
    #[arg(long, short)]
    pub output: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

async fn call(client: &Client, method: &str, params: Value) -> Result<Value> {
    client
        .call(method, params)
        .await
        .map_err(|e| e.into_error())
}

pub async fn put(cmd: &IndexPut) -> Result<String> {
    let metadata: Option<Value> = match &cmd.metadata {
        None => None,
        Some(m) => Some(
            serde_json::from_str(m)
                .map_err(|e| Error::invalid(format!("--metadata is not a JSON object: {e}")))?,
        ),
    };
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(Error::invalid("--metadata must be a JSON object"));
    }
    let mut file = std::fs::File::open(&cmd.file)
        .map_err(|e| Error::invalid(format!("cannot open {}: {e}", cmd.file.display())))?;
    let client = Client::connect(&cmd.conn.target()).await?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    let mut upload_id: Option<String> = None;
    loop {
        let n = read_full(&mut file, &mut buf)
            .map_err(|e| Error::io(format!("reading {}: {e}", cmd.file.display())))?;
        if n == 0 && upload_id.is_some() {
            break;
        }
        hash.update(&buf[..n]);
        let mut params = json!({"name": cmd.name, "offset": offset,
            "data": base64::engine::general_purpose::STANDARD.encode(&buf[..n])});
        if let Some(id) = &upload_id {
            params["upload_id"] = json!(id);
        }
        let r = call(&client, "index_upload", params).await?;
        upload_id = r["upload_id"].as_str().map(str::to_owned);
        offset += n as u64;
        if n < buf.len() {
            break;
        }
    }
    let Some(upload_id) = upload_id else {
        return Err(Error::internal("the daemon returned no upload id"));
    };
    let sha = crate::fs::hex(&hash.finalize());
    let r = call(
        &client,
        "index_commit",
        json!({"name": cmd.name, "upload_id": upload_id, "index_type": cmd.index_type,
            "size": offset, "sha256": sha, "metadata": metadata,
            "source": std::path::absolute(&cmd.file).ok().map(|p| p.display().to_string())}),
    )
    .await?;
    if cmd.conn.json {
        return Ok(r.to_string());
    }
    Ok(format!(
        "stored index {:?} ({}, {offset} bytes, sha256 {sha}){}",
        cmd.name,
        cmd.index_type,
        if r["replaced"].is_null() {
            ""
        } else {
            ", replacing the previous content"
        }
    ))
}

/// Fill `buf` unless the file ends first; returns the bytes read.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub async fn get(cmd: &IndexGet) -> Result<String> {
    let client = Client::connect(&cmd.conn.target()).await?;
    let dir = match cmd.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| Error::io(format!("cannot write in {}: {e}", dir.display())))?;
    let mut hash = Sha256::new();
    let mut offset = 0u64;
    let mut pinned: Option<String> = None;
    let (size, sha) = loop {
        let mut params = json!({"name": cmd.name, "offset": offset});
        if let Some(sha) = &pinned {
            params["sha256"] = json!(sha);
        }
        let r = call(&client, "index_read", params).await?;
        if pinned.is_none() {
            pinned = r["sha256"].as_str().map(str::to_owned);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .map_err(|e| Error::corruption(format!("index_read returned bad base64: {e}")))?;
        hash.update(&bytes);
        tmp.write_all(&bytes)
            .map_err(|e| Error::io(format!("writing {}: {e}", cmd.output.display())))?;
        offset += bytes.len() as u64;
        if r["eof"] == true || bytes.is_empty() {
            break (
                r["size_bytes"].as_u64().unwrap_or(0),
                r["sha256"].as_str().unwrap_or_default().to_string(),
            );
        }
    };
    let got = crate::fs::hex(&hash.finalize());
    if offset != size || got != sha {
        return Err(Error::corruption(format!(
            "index {:?}: read {offset} bytes with SHA-256 {got}, the daemon records {size} bytes \
             with {sha} (was it replaced while reading?); {} was not written",
            cmd.name,
            cmd.output.display()
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(format!("syncing {}: {e}", cmd.output.display())))?;
    tmp.persist(&cmd.output)
        .map_err(|e| Error::io(format!("cannot write {}: {e}", cmd.output.display())))?;
    Ok(format!(
        "wrote index {:?} to {} ({size} bytes, sha256 {sha})",
        cmd.name,
        cmd.output.display()
    ))
}
