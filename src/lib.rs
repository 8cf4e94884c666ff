//! ruvector-storage: the persistence specialist of RuVector agent swarms.
//!
//! # Layout
//!
//! One daemon (`serve`) owns a RocksDB store; the CLI and the MCP server are
//! its JSON-RPC clients. Plain modules do the work; actors are thin shells.
//!
//! | module      | its one job                                                          |
//! |-------------|----------------------------------------------------------------------|
//! | [`auth`]    | bearer tokens, namespace grants, constant-time token checks          |
//! | [`backup`]  | backups to object storage: content-addressed objects, manifests, verify, restore |
//! | [`config`]  | layered configuration (defaults → TOML → env → flags), validation    |
//! | [`error`]   | the public error: kind, retryability, message                        |
//! | [`clock`]   | time as a dependency (TTL tests use a manual clock)                   |
//! | [`codec`]   | the codec byte every stored value starts with, and the encodings     |
//! | [`engine`]  | RocksDB: column families, durability policy, kv and vector ops       |
//! | [`bus`]     | the swarm memory bus: namespaces, TTL, claude-flow v2/v3 tools, BM25 |
//! | [`cdc`]     | change data capture: WAL batches → change events, commit marks       |
//! | [`snapshot`] | checkpoints + manifests, verify, retention plans, crash-safe restore |
//! | [`schedule`] | cron jobs: parsing `schedules/*.toml`, which jobs are due when       |
//! | [`ops`]     | the table of operations (method name ↔ params ↔ route ↔ execution)   |
//! | [`status`]  | the status board: actor states, restarts, last errors                |
//! | [`actors`]  | actix actors: persistence (SyncArbiter), snapshot, scheduler, status; the router |
//! | [`daemon`]  | the supervisor: start-up, `daemon.json`, the one shutdown path       |
//! | [`rpc`]     | JSON-RPC server (jsonrpsee), client, the error-code mapping          |
//! | [`mcp`]     | MCP stdio server (rmcp) forwarding tools to the daemon               |
//! | [`cli`]     | clap commands and their output                                       |
//! | [`bench`]   | `ruvector-storage bench`: ratios measured in one run                 |
//! | [`metrics`] | Prometheus exposition (`GET /metrics`) of the storage metrics        |
//! | [`npy`]     | reading `.npy` float32 matrices for benchmarks                       |
//! | [`notify`]  | systemd's notify protocol: READY, STATUS, STOPPING, WATCHDOG         |
//! | [`telemetry`] | tracing setup (human on a terminal, JSON otherwise)                |

pub mod actors;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod bus;
pub mod cdc;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod mcp;
pub mod metrics;
pub mod notify;
pub mod npy;
pub mod ops;
pub mod rpc;
pub mod schedule;
pub mod snapshot;
pub mod status;
pub mod telemetry;
