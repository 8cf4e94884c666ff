//! Helpers for integration tests: a real daemon process on an ephemeral
//! loopback port, found through its daemon.json, driven by real clients.
#![allow(dead_code)]

pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ruvector_storage::client::{read_daemon_info, Client};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_ruvector-storage");

pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub url: String,
}

pub fn start_with(dir: &Path, extra_env: &[(&str, &str)], extra_args: &[&str]) -> Daemon {
    start_full(dir, extra_env, extra_args, &[], Stdio::inherit())
}

/// `global_args` go before `serve` (e.g. `--config FILE`).
pub fn start_full(
    dir: &Path,
    extra_env: &[(&str, &str)],
    extra_args: &[&str],
    global_args: &[&str],
    stderr: Stdio,
) -> Daemon {
    let _ = std::fs::remove_file(dir.join("daemon.json"));
    let mut cmd = Command::new(BIN);
    cmd.args(global_args);
    cmd.stderr(stderr);
    cmd.arg("serve");
    if !extra_args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    if !extra_args.contains(&"--log-level") {
        cmd.args(["--log-level", "warn"]);
    }
    cmd.arg("--data-dir")
        .arg(dir)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn daemon");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("daemon exited early: {status}");
        }
        if let Ok(Some(info)) = read_daemon_info(dir) {
            if info.pid == child.id() {
                return Daemon {
                    child,
                    dir: dir.to_path_buf(),
                    url: info.url,
                };
            }
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn start(dir: &Path) -> Daemon {
    start_with(dir, &[], &[])
}

impl Daemon {
    pub fn client(&self) -> Client {
        Client::new(&self.url, Duration::from_secs(60)).expect("client")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let status = wait_timeout(&mut self.child, Duration::from_secs(30))
            .expect("daemon did not exit after SIGTERM");
        std::mem::forget(self);
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Call and unwrap a successful result.
pub async fn ok(c: &Client, method: &str, params: Value) -> Value {
    match c.call(method, params.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{method}({params}) failed: {e}"),
    }
}

/// Call and return (code, message) of the expected error.
pub async fn err(c: &Client, method: &str, params: Value) -> (i32, String) {
    match c.call(method, params.clone()).await {
        Ok(v) => panic!("{method}({params}) unexpectedly succeeded: {v}"),
        Err(ruvector_storage::client::CallError::Remote(r)) => (r.code, r.error.message),
        Err(e) => panic!("{method}: transport error {e}"),
    }
}

/// Run a CLI command; returns (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    cli_env(&[], args)
}

/// Run a CLI command with extra environment.
pub fn cli_env(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start a daemon whose config file holds `toml` (written beside `dir`).
pub fn start_with_config(dir: &Path, toml: &str) -> Daemon {
    let cfg = dir.with_extension("toml");
    std::fs::write(&cfg, toml).expect("write config");
    let cfg = cfg.to_str().expect("utf-8 path").to_string();
    start_full(dir, &[], &[], &["--config", &cfg], Stdio::inherit())
}

/// Start a daemon backing up to `<tmp>/backups` (returned), data in
/// `<tmp>/data`, with more `[backup]` settings from `extra` (TOML lines).
pub fn start_backing_up(tmp: &Path, extra: &str) -> (Daemon, PathBuf) {
    let backups = tmp.join("backups");
    let d = start_with_config(
        &tmp.join("data"),
        &format!(
            "[backup]\ndestination = \"file://{}\"\n{extra}",
            backups.display()
        ),
    );
    (d, backups)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Every key/value pair, in key order, page by page.
pub async fn dump(c: &Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = json!({"prefix": "", "limit": 1000});
        if let Some(cur) = &cursor {
            p["cursor"] = json!(cur);
        }
        let page = ok(c, "storage_scan", p).await;
        for e in page["entries"].as_array().expect("entries") {
            out.push((
                e["key"].as_str().expect("key").to_string(),
                e["value"].as_str().expect("value").to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => return out,
        }
    }
}
