//! The safe API against a real daemon: bearer tokens (missing or wrong →
//! 401), per-token namespace grants (refused elsewhere, nothing written),
//! change streams limited to what a token may read, tokens never logged,
//! TLS 1.3 with a certificate made here, plaintext refused, and no
//! unauthenticated listener beyond loopback.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ruvector_storage::client::{CallError, Client, Credentials};
use ruvector_storage::rpc::changes::{SUBSCRIBE, UNSUBSCRIBE};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-5b0c1f7e9a4d2c68";
const AGENT_A: &str = "agent-a-token-91e4c7d2b3f5a608";

fn config(dir: &Path, tls: Option<(&Path, &Path)>) -> std::path::PathBuf {
    let mut text = format!(
        r#"
[[auth.tokens]]
name = "admin"
token = "{ADMIN}"
read = ["*"]
write = ["*"]
admin = true

[[auth.tokens]]
name = "agent-a"
token-env = "RVS_TEST_AGENT_A_TOKEN"
read = ["shared/"]
write = ["agents/a/"]
"#
    );
    if let Some((cert, key)) = tls {
        text.push_str(&format!(
            "\n[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn client(url: &str, token: Option<&str>, ca: Option<&Path>) -> Client {
    Client::with_credentials(
        url,
        Duration::from_secs(30),
        Credentials {
            token: token.map(str::to_string),
            ca_cert: ca.map(Path::to_path_buf),
        },
    )
    .unwrap()
}

fn rejected_401(r: Result<Value, CallError>) -> bool {
    matches!(r, Err(CallError::Transport(e)) if e.message.contains("401"))
}

/// Raw HTTP/1.1 GET on the port; returns the status line.
fn raw_get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    // A TLS port may close the connection before the request is written.
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_namespace_grants() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), None);
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let d = start_full(
        &data,
        &[("RVS_TEST_AGENT_A_TOKEN", AGENT_A)],
        &["--log-level", "trace"],
        &["--config", cfg.to_str().unwrap()],
        Stdio::from(log),
    );
    let addr = d.url.trim_start_matches("http://").to_string();

    // Missing or wrong token: 401 before any method runs.
    assert!(rejected_401(
        client(&d.url, None, None)
            .call("system_health", json!({}))
            .await
    ));
    assert!(rejected_401(
        client(&d.url, Some("admin-token-5b0c1f7e9a4d2c6X"), None)
            .call("memory_store", json!({"key": "k", "value": "v"}))
            .await
    ));
    assert!(raw_get(&addr, "/metrics", None).contains("401"));
    assert!(raw_get(&addr, "/metrics", Some(ADMIN)).contains("200"));

    let admin = client(&d.url, Some(ADMIN), None);
    let a = client(&d.url, Some(AGENT_A), None);
    // Agent A writes its own namespace...
    ok(
        &a,
        "memory_store",
        json!({"key": "plan", "value": "mine", "namespace": "agents/a/work"}),
    )
    .await;
    // ...but not another agent's, nor one it may only read: refused, nothing written.
    for ns in ["agents/b/work", "shared/notes", "default"] {
        let (code, msg) = err(
            &a,
            "memory_store",
            json!({"key": "plan", "value": "x", "namespace": ns}),
        )
        .await;
        assert_eq!(code, -32013, "{msg}");
        assert!(msg.contains("agent-a") && msg.contains(ns), "{msg}");
    }
    let r = ok(
        &admin,
        "memory_retrieve",
        json!({"key": "plan", "namespace": "agents/b/work"}),
    )
    .await;
    assert_eq!(r["found"], false, "a refused write changed nothing: {r}");
    ok(
        &admin,
        "memory_store",
        json!({"key": "n", "value": "hello", "namespace": "shared/notes"}),
    )
    .await;
    let r = ok(
        &a,
        "memory_retrieve",
        json!({"key": "n", "namespace": "shared/notes"}),
    )
    .await;
    assert_eq!(r["value"], "hello");
    let (code, _) = err(
        &a,
        "memory_retrieve",
        json!({"key": "plan", "namespace": "agents/b/work"}),
    )
    .await;
    assert_eq!(code, -32013);
    let (code, msg) = err(&a, "snapshot_create", json!({})).await;
    assert!(code == -32013 && msg.contains("admin"), "{msg}");
    // Index names are grant targets too; listing all of them needs "*".
    let (code, msg) = err(
        &a,
        "index_upload",
        json!({"name": "agents/b/hnsw", "data": "AAAA"}),
    )
    .await;
    assert!(code == -32013 && msg.contains("agents/b/hnsw"), "{msg}");
    let up = ok(
        &a,
        "index_upload",
        json!({"name": "agents/a/hnsw", "data": "AAAA"}),
    )
    .await;
    ok(
        &a,
        "index_commit",
        json!({"name": "agents/a/hnsw", "upload_id": up["upload_id"], "index_type": "hnsw"}),
    )
    .await;
    let (code, _) = err(&a, "index_list", json!({})).await;
    assert_eq!(code, -32013);
    let up = ok(
        &admin,
        "index_upload",
        json!({"name": "agents/b/hnsw", "data": "AAAA"}),
    )
    .await;
    let (code, _) = err(
        &a,
        "index_delete",
        json!({"name": "agents/b/hnsw", "upload_id": up["upload_id"]}),
    )
    .await;
    assert_eq!(code, -32013, "another agent's upload cannot be aborted");
    let (code, _) = err(&a, "index_read", json!({"name": "agents/b/hnsw"})).await;
    assert_eq!(code, -32013);
    assert_eq!(
        ok(&admin, "index_list", json!({})).await["uploads"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (code, _) = err(
        &a,
        "storage_write",
        json!({"entries": [
        {"key": "agents/a/1", "value": "v"}, {"key": "agents/b/1", "value": "v"}]}),
    )
    .await;
    assert_eq!(code, -32013);
    assert_eq!(
        ok(&admin, "storage_read", json!({"key": "agents/a/1"})).await["found"],
        false
    );
    ok(&admin, "snapshot_create", json!({"name": "by-admin"})).await;

    // A change stream shows a token only what it may read.
    let mut sub = a
        .subscribe(SUBSCRIBE, json!({}), UNSUBSCRIBE)
        .await
        .expect("subscribe as agent-a");
    ok(
        &admin,
        "memory_store",
        json!({"key": "secret", "value": "b's", "namespace": "agents/b/work"}),
    )
    .await;
    ok(
        &admin,
        "memory_store",
        json!({"key": "visible", "value": "x", "namespace": "shared/notes"}),
    )
    .await;
    let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event")
        .expect("open")
        .unwrap();
    assert_eq!(
        (ev["namespace"].as_str(), ev["key"].as_str()),
        (Some("shared/notes"), Some("visible"))
    );
    assert!(client(&d.url, None, None)
        .subscribe(SUBSCRIBE, json!({}), UNSUBSCRIBE)
        .await
        .unwrap_err()
        .message
        .contains("401"));

    // The CLI takes its token from the environment; a refusal exits 6.
    let (code, _, e) = cli_env(
        &[("RUVECTOR_STORAGE_TOKEN", AGENT_A)],
        &[
            "memory",
            "store",
            "--connect",
            &d.url,
            "--key",
            "k",
            "--value",
            "v",
            "--namespace",
            "agents/b/x",
        ],
    );
    assert_eq!(code, 6, "{e}");
    let (code, _, e) = cli_env(
        &[("RUVECTOR_STORAGE_TOKEN", AGENT_A)],
        &[
            "memory",
            "store",
            "--connect",
            &d.url,
            "--key",
            "k",
            "--value",
            "v",
            "--namespace",
            "agents/a/x",
        ],
    );
    assert_eq!(code, 0, "{e}");

    d.terminate();
    let logged = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(logged.contains("request refused"), "refusals are logged");
    for secret in [ADMIN, AGENT_A, "admin-token-5b0c1f7e9a4d2c6X"] {
        let line = logged.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "a token appeared in the log: {line:?}");
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed by scripts/deps.sh");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and a leaf for localhost/127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_serves_https_and_wss_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let cfg = config(
        dir.path(),
        Some((&dir.path().join("cert.pem"), &dir.path().join("key.pem"))),
    );
    let d = start_full(
        &dir.path().join("data"),
        &[("RVS_TEST_AGENT_A_TOKEN", AGENT_A)],
        &[],
        &["--config", cfg.to_str().unwrap()],
        Stdio::inherit(),
    );
    assert!(d.url.starts_with("https://"), "{}", d.url);
    let ca = dir.path().join("ca.pem");
    let c = client(&d.url, Some(ADMIN), Some(&ca));
    ok(
        &c,
        "storage_write",
        json!({"key": "over-tls", "value": "1"}),
    )
    .await;
    assert_eq!(
        ok(&c, "storage_read", json!({"key": "over-tls"})).await["value"],
        "1"
    );
    let mut sub = c
        .subscribe(SUBSCRIBE, json!({"prefixes": ["over-tls"]}), UNSUBSCRIBE)
        .await
        .expect("wss subscription");
    ok(
        &c,
        "storage_write",
        json!({"key": "over-tls", "value": "2"}),
    )
    .await;
    let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev["op"], "update");

    // Without trusting the CA the handshake fails; plaintext gets no HTTP answer.
    let untrusted = client(&d.url, Some(ADMIN), None);
    assert!(untrusted.call("system_health", json!({})).await.is_err());
    let addr = d.url.trim_start_matches("https://").to_string();
    let plain = client(&format!("http://{addr}"), Some(ADMIN), None);
    assert!(plain.call("system_health", json!({})).await.is_err());
    assert!(!raw_get(&addr, "/metrics", Some(ADMIN)).starts_with("HTTP/1.1 200"));
    // The CLI trusts the CA named in the environment.
    let (code, out, e) = cli_env(
        &[
            ("RUVECTOR_STORAGE_TOKEN", ADMIN),
            ("RUVECTOR_STORAGE_CA_CERT", ca.to_str().unwrap()),
        ],
        &["read", "--connect", &d.url, "--key", "over-tls", "--json"],
    );
    assert_eq!(code, 0, "{e}");
    assert!(out.contains("\"2\""), "{out}");
}

#[test]
fn no_unauthenticated_listener_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("not a loopback address") && e.contains("auth.tokens"),
        "{e}"
    );
    assert!(
        !dir.path().join("data").join("db").exists(),
        "refused before opening the store"
    );
}
