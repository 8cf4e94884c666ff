//! The agent card users copy into `.claude/agents/`: its front matter parses
//! and every `mcp__ruvector-storage__*` tool it names exists in the MCP
//! server's tools/list.

mod common;

use rmcp::ServiceExt;

fn front_matter() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/agents/storage-agent.md"
    ))
    .unwrap();
    let rest = text
        .strip_prefix("---\n")
        .expect("front matter starts the file");
    let (fm, body) = rest.split_once("\n---\n").expect("front matter is closed");
    assert!(
        body.contains("snapshot_restore"),
        "the body tells the agent how to use the daemon"
    );
    fm.lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_card_names_only_tools_the_server_has() {
    let fm = front_matter();
    let get = |k: &str| {
        fm.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("front matter lacks {k}"))
    };
    assert_eq!(get("name"), "storage-agent");
    assert_eq!(get("type"), "specialist");
    assert!(get("description").len() > 40);
    let _ = get("capabilities");
    let named: Vec<String> = get("tools")
        .split(',')
        .map(|t| t.trim().to_string())
        .collect();
    let ours: Vec<&str> = named
        .iter()
        .filter_map(|t| t.strip_prefix("mcp__ruvector-storage__"))
        .collect();
    assert!(
        ours.len() >= 10 && ours.contains(&"memory_usage") && ours.contains(&"snapshot_create"),
        "{named:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(common::BIN);
    cmd.arg("mcp").arg("--data-dir").arg(dir.path());
    let client = ().serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let listed: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for tool in &ours {
        assert!(
            listed.iter().any(|l| l == tool),
            "agent card names {tool}, which tools/list does not offer"
        );
    }
    client.cancel().await.unwrap();
    if let Ok(Some(info)) = ruvector_storage::client::read_daemon_info(dir.path()) {
        unsafe {
            libc::kill(info.pid as i32, libc::SIGTERM);
        }
    }
}
