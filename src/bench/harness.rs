//! What every measurement shares: the scratch directory, the store
//! configuration both sides use, daemon child processes (with their RSS and
//! CPU time), thread fan-out, and timing external programs between `sync`s.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::client::{read_daemon_info, Client};
use crate::config::Config;
use crate::error::{Error, Result};

use super::BenchArgs;

/// The configuration of an in-process store at `dir`: the daemons' defaults
/// with the run's compression and the given durability.
pub(super) fn bench_config(dir: &Path, args: &BenchArgs, sync: &str) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        sync: sync.to_string(),
        ..Config::default()
    };
    c.rocksdb.compression = args.compression.clone();
    c
}

/// A daemon child process for the benchmark.
pub(super) struct Daemon {
    pub(super) child: std::process::Child,
    pub(super) client: Client,
    pub(super) ready: Duration,
}

impl Daemon {
    pub(super) async fn start(dir: &Path, args: &BenchArgs, sync: &str) -> Result<Daemon> {
        Self::start_env(dir, args, sync, &[]).await
    }

    pub(super) async fn start_env(
        dir: &Path,
        args: &BenchArgs,
        sync: &str,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let exe = std::env::current_exe().map_err(|e| Error::io(e.to_string()))?;
        std::fs::create_dir_all(dir)?;
        let t0 = Instant::now();
        let mut child = std::process::Command::new(exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sync",
                sync,
                "--log-level",
                "warn",
                "--data-dir",
            ])
            .arg(dir)
            .env("RUVECTOR_STORAGE__ROCKSDB__COMPRESSION", &args.compression)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("starting the daemon: {e}")))?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::unavailable(format!(
                    "bench daemon in {} exited at start: {status}",
                    dir.display()
                )));
            }
            if let Ok(Some(info)) = read_daemon_info(dir) {
                let client = match Client::new(&info.url, Duration::from_secs(120)) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(e);
                    }
                };
                if client.health().await.is_ok() {
                    return Ok(Daemon {
                        child,
                        client,
                        ready: t0.elapsed(),
                    });
                }
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::unavailable(
                    "bench daemon did not become ready in 30 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(super) fn rss_mb(&self) -> f64 {
        crate::alloc::rss_of(self.child.id()).map_or(0.0, |b| b as f64 / 1048576.0)
    }

    /// User + system CPU seconds the daemon has used.
    pub(super) fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        match (f.get(11), f.get(12)) {
            (Some(u), Some(s)) => (u + s) / hz,
            _ => 0.0,
        }
    }

    /// SIGTERM and wait for the daemon to exit.
    pub(super) fn stop(self) {
        drop(self);
    }
}

/// A daemon is stopped on every path, also when a measurement fails.
impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Worker `c` of `n`'s part of `0..total`: contiguous, and together they
/// cover every index once (a remainder is spread, not dropped).
pub(super) fn share(c: usize, n: usize, total: usize) -> std::ops::Range<usize> {
    c * total / n..(c + 1) * total / n
}

pub(super) fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// `f(i)` for every `i` in `0..total`, on `n` threads, each taking its
/// share (`share`); returns the elapsed time.
pub(super) fn threads<F>(n: usize, total: usize, f: F) -> Result<Duration>
where
    F: Fn(usize) -> Result<()> + Sync,
{
    let t = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|c| {
                let f = &f;
                s.spawn(move || share(c, n, total).try_for_each(f))
            })
            .collect();
        hs.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::internal("bench thread panicked")))
        })
    })?;
    Ok(t.elapsed())
}

/// Write every dirty page to disk (`sync`): (h) starts each timed step
/// from a clean page cache state and ends it with its data on disk, so a
/// tool that does not fsync is not measured against one that does.
pub(super) fn flush_all() -> Result<()> {
    let st = std::process::Command::new("sync")
        .status()
        .map_err(|e| Error::io(format!("sync: {e}")))?;
    if !st.success() {
        return Err(Error::io("sync failed"));
    }
    Ok(())
}

/// [`timed`], between two [`flush_all`]s, the second one timed.
pub(super) fn timed_synced(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Option<Duration>> {
    flush_all()?;
    let t = Instant::now();
    let ran = timed(program, args, env)?;
    flush_all()?;
    Ok(ran.map(|_| t.elapsed()))
}

/// Run a command, timed; None when the program is missing.
pub(super) fn timed(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Option<Duration>> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(Some(t.elapsed())),
        Ok(o) => Err(Error::io(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("{program}: {e}"))),
    }
}

/// A scratch directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn tempfile_dir() -> Result<TempDir> {
    let p = std::env::temp_dir().join(format!("ruvector-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}
