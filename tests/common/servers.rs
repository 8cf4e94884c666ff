//! Object-store servers for the tests, started on loopback on a port the
//! kernel picks: S3 (`moto_server`), GCS's XML API (moto again) and Azure
//! Blob (Azurite). Each is killed when its `Server` drops.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process killed on drop.
pub struct Server(pub Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if !code.is_empty() && code != "000" {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start a server on port 0 (the kernel picks a free one; nothing can take
/// it between our choice and its bind) and read the port from the line
/// where it says it listens: `http://127.0.0.1:PORT`. Its output is drained
/// to the end, so it never blocks on a full pipe.
pub fn spawn_on_port_0(program: &str, args: &[&str], listening: &str) -> (Server, u16) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is required (scripts/deps.sh installs it): {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let outputs: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for out in outputs {
        let (tx, listening) = (tx.clone(), listening.to_string());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
                if let Some(port) = line.contains(&listening).then(|| port_in(&line)).flatten() {
                    let _ = tx.send(port);
                }
            }
        });
    }
    drop(tx);
    let server = Server(child);
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{program} did not say where it listens ({listening:?})"));
    (server, port)
}

/// The port of the first `http://127.0.0.1:PORT` in a line.
pub fn port_in(line: &str) -> Option<u16> {
    const AT: &str = "http://127.0.0.1:";
    let rest = &line[line.find(AT)? + AT.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn moto() -> (Server, Vec<(String, String)>, String) {
    // werkzeug prints " * Running on http://127.0.0.1:PORT" (on stderr).
    let (s, port) = spawn_on_port_0(
        "moto_server",
        &["-H", "127.0.0.1", "-p", "0"],
        "Running on http://",
    );
    wait_http(&format!("http://127.0.0.1:{port}/moto-api/"));
    let st = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            &format!("http://127.0.0.1:{port}/backups"),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "create bucket");
    let env = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    (
        s,
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        "s3://backups/store-1".into(),
    )
}

/// `gs://` through object_store's GCS client, served by moto: GCS's XML API
/// (what object_store speaks for objects and listings) is S3's, path-style.
/// No GCS emulator in the package registries accepts object_store's puts
/// (gcp-storage-emulator answers 501 to HEAD, list and multipart;
/// fake-gcs-server takes only signed-URL puts).
pub fn gcs_on_moto() -> (Server, Vec<(String, String)>, String) {
    let (s, env, _) = moto();
    let base = env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    let env = [
        ("GOOGLE_BASE_URL", base),
        ("GOOGLE_BEARER_TOKEN", "testing".into()),
        ("GOOGLE_ALLOW_HTTP", "true".into()),
    ];
    (
        s,
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        "gs://backups/store-1".into(),
    )
}

pub fn azurite(dir: &Path) -> (Server, Vec<(String, String)>, String) {
    let loc = dir.join("azurite");
    std::fs::create_dir_all(&loc).unwrap();
    // Azurite 3.35 prints "Azurite Blob service successfully listens on
    // http://127.0.0.1:PORT" (on stdout; "... is starting on 127.0.0.1:0"
    // before, which has no URL).
    let (s, port) = spawn_on_port_0(
        "azurite-blob",
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--location",
            loc.to_str().unwrap(),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        "Azurite Blob service",
    );
    wait_http(&format!(
        "http://127.0.0.1:{port}/devstoreaccount1?comp=list"
    ));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/azurite-mkcontainer.sh");
    let st = Command::new("bash")
        .arg(script)
        .args([&port.to_string(), "backups"])
        .status()
        .unwrap();
    assert!(st.success(), "create container");
    let env = vec![
        ("AZURE_STORAGE_USE_EMULATOR".to_string(), "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    (s, env, "az://backups/store-1".into())
}
