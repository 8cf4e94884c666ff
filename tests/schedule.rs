//! Cron jobs firing inside a running daemon (the scheduler actor on the
//! wall clock, not the injected clock of the unit tests): a
//! `snapshot.create` job every second leaves snapshots named after its
//! prefix, `schedule_list` shows its runs and last result, and a
//! `snapshot.prune` job keeps exactly its policy (and only among the kind
//! it names) once the creating job is gone.
//!
//! No assertion is about time: each wait polls until what it waits for
//! holds, and fails after a generous deadline saying what it waited for.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ruvector_storage::client::Client;
use serde_json::{json, Value};

/// How long any one wait may take: generous, since the machine is shared.
const WAIT: Duration = Duration::from_secs(120);

const CREATE_JOB: &str = r#"
[[job]]
name = "tick"
cron = "* * * * * *"
action = "snapshot.create"
args = { prefix = "tick" }
"#;

const PRUNE_JOB: &str = r#"
[[job]]
name = "trim"
cron = "*/2 * * * * *"
action = "snapshot.prune"
args = { kind = "scheduled", keep-last = 3 }
"#;

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The job named `name` in `schedule_list`.
async fn job(c: &Client, name: &str) -> Option<Value> {
    let l = ok(c, "schedule_list", json!({})).await;
    l["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["name"] == name)
        .cloned()
}

/// A job that has started at least `n` times and whose last run finished
/// and succeeded.
async fn ran_ok(c: &Client, name: &str, n: u64) -> Option<Value> {
    let j = job(c, name).await?;
    (j["runs"].as_u64()? >= n && j["running"] == false && j["last_result"]["ok"] == true)
        .then_some(j)
}

/// (name, kind) of every snapshot, oldest first.
async fn snapshots(c: &Client) -> Vec<(String, String)> {
    ok(c, "snapshot_list", json!({})).await["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["kind"].as_str().expect("kind").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_jobs_fire_in_the_daemon_and_prune_keeps_its_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("jobs.toml");
    std::fs::write(&file, format!("{CREATE_JOB}{PRUNE_JOB}")).unwrap();
    let d = start_with(
        &tmp.path().join("data"),
        &[("RUVECTOR_STORAGE__SCHEDULE_FILE", file.to_str().unwrap())],
        &[],
    );
    let c = d.client();
    // A manual snapshot: the prune job names kind = "scheduled", so it
    // must never touch this one.
    ok(&c, "snapshot_create", json!({"name": "mine"})).await;

    // The create job fires every second: runs counted, a last result that
    // names the snapshot it made, and snapshots with its prefix appear.
    let tick = wait_for(
        "the every-second snapshot.create job to finish 6 runs",
        async || ran_ok(&c, "tick", 6).await,
    )
    .await;
    assert_eq!(tick["action"], "snapshot.create", "{tick}");
    assert_eq!(tick["cron"], "* * * * * *", "{tick}");
    assert!(tick["last_run"].is_string(), "{tick}");
    assert!(tick["next_run"].is_string(), "{tick}");
    let message = tick["last_result"]["message"].as_str().unwrap();
    assert!(message.contains("\"name\":\"tick-"), "{tick}");
    assert!(tick["last_result"]["finished_at"].is_string(), "{tick}");
    let list = snapshots(&c).await;
    let ticks: Vec<&(String, String)> = list
        .iter()
        .filter(|(n, _)| n.starts_with("tick-"))
        .collect();
    assert!(!ticks.is_empty(), "no tick- snapshot listed: {list:?}");
    assert!(
        ticks.iter().all(|(_, k)| k == "scheduled"),
        "a cron snapshot is of kind scheduled: {list:?}"
    );
    let (code, out, err) = cli(&["schedule", "list", "--connect", &d.url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tick") && out.contains("trim"), "{out}");

    // The prune job runs too, and succeeds.
    wait_for("the snapshot.prune job to finish a run", async || {
        ran_ok(&c, "trim", 1).await
    })
    .await;

    // Take the create job away (SIGHUP with only the prune job); once the
    // prune job has run twice more, exactly its policy is left: the 3
    // newest scheduled snapshots, and the manual one.
    std::fs::write(&file, PRUNE_JOB).unwrap();
    d.signal(libc::SIGHUP);
    wait_for("the reload to drop the create job", async || {
        let l = ok(&c, "schedule_list", json!({})).await;
        (l["count"] == 1 && l["jobs"][0]["name"] == "trim").then_some(())
    })
    .await;
    // Every tick- snapshot made so far (a create in flight at the reload
    // may add one more), and how often the prune job has started.
    let before = snapshots(&c).await;
    let runs_at_reload = job(&c, "trim").await.expect("trim is listed")["runs"]
        .as_u64()
        .expect("runs");
    let trim = wait_for(
        "two more runs of the prune job after the reload",
        async || ran_ok(&c, "trim", runs_at_reload + 2).await,
    )
    .await;
    let message = trim["last_result"]["message"].as_str().unwrap();
    assert!(message.contains("\"keep\":3"), "{trim}");
    let list = snapshots(&c).await;
    let scheduled: Vec<&str> = list
        .iter()
        .filter(|(_, k)| k == "scheduled")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        scheduled.len(),
        3,
        "keep-last = 3 among scheduled snapshots: {list:?}"
    );
    assert!(scheduled.iter().all(|n| n.starts_with("tick-")), "{list:?}");
    // The create job made at least 6, so some were pruned; the newest are
    // the ones kept: no tick- snapshot seen at the reload is newer than the
    // oldest one kept and yet gone.
    let oldest_kept = scheduled.iter().min().unwrap();
    for (n, _) in before.iter().filter(|(n, _)| n.starts_with("tick-")) {
        if n.as_str() > *oldest_kept {
            assert!(
                scheduled.contains(&n.as_str()),
                "{n} is newer than a kept snapshot but was pruned: {list:?}"
            );
        }
    }
    assert!(
        list.iter().any(|(n, k)| n == "mine" && k == "manual"),
        "the manual snapshot is outside the prune job's kind: {list:?}"
    );
}
