//! ruvector-storage: the persistence specialist of RuVector agent swarms.
//!
//! # Layout
//!
//! One daemon (`serve`) owns a RocksDB store; the CLI and the MCP server are
//! its JSON-RPC clients. The top-level modules form layers: a module uses
//! only modules of its own layer or below, never above (checked with
//! `python3 ../shared/tools/module-graph.py`; the graph has no cycle).
//!
//! | layer | module | its one job |
//! |---|---|---|
//! | ground | [`error`] | the public error: kind, retryability, message; the one table of what each kind becomes at each door |
//! | | [`clock`] | time as a dependency (TTL and cron tests use a manual clock) |
//! | | [`codec`] | the codec byte every stored value starts with, and the encodings |
//! | | [`series`] | the metrics history's encoding: chunks of delta-of-delta timestamps and fixed-point delta varints |
//! | | [`fs`] | atomic writes, directory fsync, checksums, hex, random bytes, crash points |
//! | | [`alloc`] | the global allocator (glibc or mimalloc), RSS and the allocators' figures, handing free pages back |
//! | | [`tls`] | the rustls crypto provider (installed once) and the TLS server config |
//! | | [`npy`] | reading `.npy` float32 matrices for benchmarks |
//! | | [`notify`] | systemd's notify protocol: READY, STATUS, STOPPING, WATCHDOG |
//! | | [`telemetry`] | tracing setup (human on a terminal, JSON otherwise) |
//! | config | [`config`] | plain, validated configuration (defaults → TOML → env → flags) |
//! | | [`client`] | the JSON-RPC client and `daemon.json` discovery |
//! | engine | [`engine`] | RocksDB: column families, write batches and commit marks, the slot and its gate, history ids |
//! | | [`status`] | the status board: actor states, restarts, last errors, typed summary records |
//! | domain | [`bus`] | the swarm memory bus: namespaces, TTL, BM25 |
//! | | [`cdc`] | change data capture: WAL batches → change events |
//! | | [`auth`] | bearer tokens, grants, and what an operation needs ([`auth::Access`]) |
//! | | [`snapshot`] | checkpoints, manifests, verify, retention, restore; its service |
//! | | [`backup`] | backups to object storage, WAL archive, PITR, prune, copy, drill; its service |
//! | | [`maintenance`] | jobs on the live store: the integrity check (compaction, GC and quotas join it) |
//! | | [`schedule`] | cron jobs: parsing `schedules/*.toml`, which jobs are due when |
//! | | [`metrics`] | one sample of the store's figures per tick; its exposition (prometheus-client); rates, the disk and memory alerts and the records published about the store |
//! | | [`external`] | the external bus: records relayed to other agents' memory servers |
//! | operations | [`ops`] | every operation declared once: params, route, effect, access, implementation |
//! | actors | [`actors`] | actix mailboxes: persistence (SyncArbiter), snapshot, backup, scheduler, metrics; the router; job tracking |
//! | doors | [`rpc`] | JSON-RPC server (jsonrpsee): methods generated from the table, auth, TLS, `/metrics`, change streams |
//! | | [`mcp`] | MCP server (rmcp; stdio and streamable HTTP): tools generated from the table |
//! | daemon | [`daemon`] | the supervisor: start-up, `daemon.json`, the one shutdown path |
//! | top | [`cli`] | clap: commands generated from the table, plus serve, mcp, init, bench |
//! | | [`bench`] | `ruvector-storage bench`: ratios measured in one run |

pub mod actors;
pub mod alloc;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod bus;
pub mod cdc;
pub mod cli;
pub mod client;
pub mod clock;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod external;
pub mod fs;
pub mod maintenance;
pub mod mcp;
pub mod metrics;
pub mod notify;
pub mod npy;
pub mod ops;
pub mod quant;
pub mod rpc;
pub mod schedule;
pub mod series;
pub mod snapshot;
pub mod status;
pub mod telemetry;
pub mod tls;
