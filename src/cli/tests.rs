//! The generated command line: every operation has its subcommand, and the
//! flags of each become params the daemon accepts.

use serde_json::{json, Value};

use super::*;

fn params_of(args: &[&str]) -> (&'static str, Value) {
    let argv = std::iter::once("ruvector-storage").chain(args.iter().copied());
    match parse_from(argv) {
        Ok((_, Parsed::Op { op, params, .. })) => (op.method, params),
        Ok((_, Parsed::Other(c))) => panic!("{args:?} is not an operation: {:?}", c.command),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

#[test]
fn the_command_tree_is_consistent() {
    command().debug_assert();
}

/// One command line per operation; each parses into params the daemon's
/// own parser accepts, and together they cover the whole table.
#[test]
fn every_operation_has_a_command_whose_flags_the_daemon_accepts() {
    let cases: &[&[&str]] = &[
        &["write", "--key", "k", "--value", "v"],
        &["read", "--key", "k"],
        &["delete", "--key", "k"],
        &["scan", "--prefix", "p"],
        &["stats", "--detailed"],
        &[
            "stats",
            "--history",
            "--since",
            "24h",
            "--metric",
            "write_iops",
            "--points",
            "40",
        ],
        &["collection", "create", "--name", "c", "--dimension", "3"],
        &[
            "collection",
            "create",
            "--name",
            "q",
            "--dimension",
            "8",
            "--quantization",
            "int4",
            "--originals",
            "drop",
            "--calibration-sample",
            "100",
            "--dedup",
        ],
        &[
            "vector",
            "search",
            "--collection",
            "c",
            "--vector=-1,0.5,2",
            "--k",
            "3",
            "--rescore",
            "--include-metadata",
        ],
        &["collection", "list"],
        &[
            "vector",
            "upsert",
            "--collection",
            "c",
            "--vector",
            r#"{"id":"a","vector":[1,2,3]}"#,
        ],
        &[
            "vector",
            "get",
            "--collection",
            "c",
            "--id",
            "a",
            "--encoding",
            "base64",
        ],
        &[
            "vector",
            "delete",
            "--collection",
            "c",
            "--id",
            "a",
            "--id",
            "b",
        ],
        &["memory", "usage", "--action", "list"],
        &[
            "memory", "store", "--key", "k", "--value", "v", "--tags", "a,b", "--upsert",
        ],
        &["memory", "retrieve", "--key", "k"],
        &["memory", "search", "--query", "q", "--limit", "5"],
        &["memory", "delete", "--key", "k", "--namespace", "n"],
        &["memory", "list", "--namespace", "n"],
        &["memory", "stats"],
        &["health"],
        &["wal", "checkpoint"],
        &["index", "upload", "--name", "i", "--data", ""],
        &[
            "index",
            "commit",
            "--name",
            "i",
            "--upload-id",
            "u",
            "--index-type",
            "hnsw",
        ],
        &["index", "read", "--name", "i"],
        &["index", "list"],
        &["index", "delete", "--name", "i"],
        &["snapshot", "create", "--verify"],
        &["snapshot", "list", "--with-size"],
        &["snapshot", "restore", "--name", "n"],
        &["snapshot", "delete", "--name", "n", "--confirm"],
        &["snapshot", "verify"],
        &[
            "snapshot",
            "prune",
            "--keep-last",
            "3",
            "--dry-run",
            "--kind",
            "scheduled",
        ],
        &["backup", "create", "--method", "wal", "--encrypt"],
        &["backup", "list"],
        &["backup", "verify", "--read-data-subset", "10%"],
        &["backup", "restore", "--to-sequence", "7", "--to", "/tmp/x"],
        &["backup", "prune", "--keep-daily", "7"],
        &["backup", "copy", "--to", "s3://bucket/p"],
        &["backup", "drill"],
        &["backup", "status"],
        &["wal", "archive"],
        &["wal", "replay", "--from-sequence", "3"],
        &["schedule", "list"],
        &["check", "--verify-integrity"],
        &[
            "compress",
            "--type",
            "kv",
            "--algorithm",
            "zstd",
            "--level",
            "9",
            "--dictionary",
            "--rewrite",
        ],
        &[
            "analyze-compression",
            "--show-ratio",
            "--type",
            "vectors",
            "--collection",
            "c",
            "--sample-mb",
            "8",
        ],
        &["maintenance", "status"],
        &["maintenance", "cancel"],
        &[
            "compress",
            "--collection",
            "c",
            "--quantization",
            "int8",
            "--wait",
        ],
        &["compress", "--collection", "c", "--recalibrate"],
        &["compress", "--type", "kv", "--reset"],
        &[
            "compact",
            "--incremental",
            "--threshold",
            "0.4",
            "--dry-run",
        ],
        &["compact", "--full"],
        &["cache-config", "--size", "256MB", "--write-buffer", "32MB"],
    ];
    let mut seen = std::collections::BTreeSet::new();
    for args in cases {
        let (method, params) = params_of(args);
        crate::ops::Op::parse(method, Some(&params.to_string()))
            .unwrap_or_else(|e| panic!("{args:?} → {params}: {e}"));
        seen.insert(method);
    }
    let all: std::collections::BTreeSet<_> = crate::ops::methods().collect();
    assert_eq!(seen, all, "every operation has a command line here");
}

#[test]
fn flags_become_the_methods_params() {
    assert_eq!(
        params_of(&["memory", "store", "--key", "k", "--value", "v", "--tags", "a,b"]).1,
        json!({"key": "k", "value": "v", "namespace": "default", "tags": ["a", "b"],
            "ttl": null, "upsert": false})
    );
    let (_, prune) = params_of(&["snapshot", "prune", "--keep-last", "3", "--dry-run"]);
    assert_eq!(prune["dry-run"], true);
    assert_eq!(prune["keep-last"], 3);
    assert_eq!(params_of(&["scan", "--prefix", "p"]).1["limit"], 100);
    // A relative path is made absolute against the caller's directory.
    let (_, r) = params_of(&["backup", "restore", "--to", "restored"]);
    let to = r["to"].as_str().unwrap();
    assert!(to.starts_with('/') && to.ends_with("/restored"), "{to}");
}

#[test]
fn a_file_url_with_a_host_is_refused() {
    let argv = [
        "ruvector-storage",
        "backup",
        "create",
        "--destination",
        "file://relative/path",
    ];
    let e = parse_from(argv).err().expect("refused");
    assert!(e.to_string().contains("file:///"), "{e}");
    params_of(&["backup", "create", "--destination", "file:///abs/path"]);
}

#[test]
fn fixed_commands_still_parse() {
    let argv = ["ruvector-storage", "wal", "tail", "--limit", "2"];
    assert!(matches!(
        parse_from(argv).unwrap().1,
        Parsed::Other(Cli {
            command: Command::Wal(WalCmd::Tail(_)),
            ..
        })
    ));
    let argv = [
        "ruvector-storage",
        "--config",
        "c.toml",
        "serve",
        "--listen",
        "127.0.0.1:0",
    ];
    let (config, parsed) = parse_from(argv).unwrap();
    assert_eq!(config.as_deref(), Some(std::path::Path::new("c.toml")));
    assert!(matches!(parsed, Parsed::Other(_)));
}

#[test]
fn stats_history_flags_parse_as_typed_and_need_history() {
    let (method, p) = params_of(&[
        "stats",
        "--history",
        "--since",
        "24h",
        "--metric",
        "write_iops",
    ]);
    assert_eq!(method, "storage_stats");
    assert_eq!(p["history"], true);
    assert_eq!(p["since"], "24h");
    assert_eq!(p["metric"], "write_iops");
    let argv = ["ruvector-storage", "stats", "--since", "24h"];
    let e = parse_from(argv).err().expect("--since alone is refused");
    assert!(e.to_string().contains("--history"), "{e}");
}

#[test]
fn a_sparkline_scales_between_min_and_max() {
    use super::output::sparkline;
    let v = [Some(0.0), Some(3.5), Some(7.0), None, Some(1.0)];
    assert_eq!(sparkline(&v, 0.0, 7.0), "▁▅█ ▂");
    assert_eq!(sparkline(&[Some(2.0), Some(2.0)], 2.0, 2.0), "▁▁");
}
