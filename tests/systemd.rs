//! Running under systemd: the unit file passes `systemd-analyze verify`, and
//! the daemon speaks the notify protocol (READY, STATUS, watchdog pings at
//! half WATCHDOG_USEC, STOPPING) to a NOTIFY_SOCKET the test provides.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::BIN;

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is required (Debian package systemd); scripts/deps.sh installs it");
    };
    assert!(out.status.success());
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/ruvector-storage.service"
    ))
    .unwrap();
    assert!(
        unit.contains("Type=notify") && unit.contains("WatchdogSec=") && unit.contains("[Install]")
    );
    assert!(
        unit.contains("ProtectSystem=strict")
            && unit.contains("ReadWritePaths=/var/lib/ruvector-storage")
    );
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ruvector-storage.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ruvector-storage", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("ruvector-storage.service:"),
        "warnings about the unit:\n{stderr}"
    );
}

fn recv_until(sock: &UnixDatagram, deadline: Instant, want: &str, seen: &mut Vec<String>) -> bool {
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn notify_protocol_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let data = dir.path().join("data");
    let sock_env = sock_path.to_str().unwrap();
    let mut d = common::start_with(
        &data,
        &[("NOTIFY_SOCKET", sock_env), ("WATCHDOG_USEC", "400000")],
        &[],
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    assert!(
        recv_until(&sock, deadline, "READY=1", &mut seen),
        "no READY=1: {seen:?}"
    );
    let ready = seen.last().unwrap().clone();
    assert!(ready.contains("STATUS=serving on 127.0.0.1:"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", d.child.id())),
        "{ready}"
    );
    assert!(
        data.join("daemon.json").exists(),
        "READY only once the API listens"
    );
    // Pings every 200 ms: count them over a few periods.
    let mut pings = 0;
    for _ in 0..3 {
        if recv_until(
            &sock,
            Instant::now() + Duration::from_secs(5),
            "WATCHDOG=1",
            &mut seen,
        ) {
            pings += 1;
        }
    }
    assert_eq!(pings, 3, "watchdog pings: {seen:?}");
    d.signal(libc::SIGTERM);
    assert!(
        recv_until(
            &sock,
            Instant::now() + Duration::from_secs(10),
            "STOPPING=1",
            &mut seen
        ),
        "{seen:?}"
    );
    let status = common::wait_timeout(&mut d.child, Duration::from_secs(20)).expect("exits");
    assert!(status.success());
}
