//! (j) an index file stored and read back through the daemon (`index put`
//! and `index get`, the CLI over JSON-RPC) against `cp` of the same file.

use std::path::Path;

use crate::error::{Error, Result};

use super::harness::{timed_synced, Daemon};
use super::{BenchArgs, Report};

/// Measure (j) with a daemon of its own.
pub(super) async fn run(dir: &Path, args: &BenchArgs, r: &mut Report) -> Result<()> {
    let id = Daemon::start(&dir.join("daemon-index"), args, &args.sync).await?;
    let (put, get, copy) = index_bench(dir, &dir.join("daemon-index"), args.index_mib << 20)?;
    id.stop();
    r.add(
        "index_put_mb_s",
        &format!(
            "(j) index put, {} MiB (chunked upload + SHA-256 commit)",
            args.index_mib
        ),
        put,
        "MB/s",
    );
    r.add("index_get_mb_s", "(j) index get to a file", get, "MB/s");
    r.add("index_cp_mb_s", "(j) cp of the same file", copy, "MB/s");
    r.add("index_put_vs_cp", "(j) index put ÷ cp", put / copy, "x");
    r.add("index_get_vs_cp", "(j) index get ÷ cp", get / copy, "x");

    Ok(())
}

/// (j): MB/s of `index put` and `index get` (the CLI, over JSON-RPC, each
/// step ending with a timed `sync`) and of `cp` of the same file, synced
/// the same way: the cost of keeping an index in the store instead of
/// beside it.
fn index_bench(scratch: &Path, data_dir: &Path, bytes: usize) -> Result<(f64, f64, f64)> {
    let file = scratch.join("index-bench.idx");
    // Incompressible, like a graph of float vectors and neighbour ids.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let body: Vec<u8> = (0..bytes / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&file, &body).map_err(|e| Error::io(format!("{}: {e}", file.display())))?;
    drop(body);
    let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
    let exe = exe.to_string_lossy().into_owned();
    let (f, d) = (file.to_string_lossy(), data_dir.to_string_lossy());
    let got = scratch.join("index-bench.out");
    let copied = scratch.join("index-bench.cp");
    let (g, c) = (got.to_string_lossy(), copied.to_string_lossy());
    let none = || Error::internal("(j) a program is missing");
    let put = timed_synced(
        &exe,
        &[
            "index",
            "put",
            "--name",
            "bench",
            "--type",
            "hnsw",
            "--file",
            &f,
            "--data-dir",
            &d,
        ],
        &[],
    )?
    .ok_or_else(none)?;
    let get = timed_synced(
        &exe,
        &[
            "index",
            "get",
            "--name",
            "bench",
            "-o",
            &g,
            "--data-dir",
            &d,
        ],
        &[],
    )?
    .ok_or_else(none)?;
    let cp = timed_synced("cp", &[&f, &c], &[])?.ok_or_else(none)?;
    if std::fs::read(&got)? != std::fs::read(&file)? {
        return Err(Error::corruption("(j) index get returned other bytes"));
    }
    for p in [&file, &got, &copied] {
        let _ = std::fs::remove_file(p);
    }
    let mb = bytes as f64 / 1e6;
    Ok((
        mb / put.as_secs_f64(),
        mb / get.as_secs_f64(),
        mb / cp.as_secs_f64(),
    ))
}
