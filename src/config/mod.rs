//! Configuration: built-in defaults → TOML file (`--config`) →
//! `RUVECTOR_STORAGE__*` environment → command-line flags, validated once
//! at start-up so a bad value fails fast with a message naming the key.
//!
//! Environment keys map to config keys by lower-casing, `__` for nesting and
//! `_` for `-`: `RUVECTOR_STORAGE__ROCKSDB__BLOCK_CACHE_MB=256` sets
//! `rocksdb.block-cache-mb`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod access;
mod bus;
mod compression;

pub use compression::{
    Algorithm, CompressionConfig, CompressionSpec, StoreCompression, DEFAULT_ZSTD_LEVEL,
    DICT_BYTES, DICT_TRAIN_BYTES, ZSTD_LEVELS,
};

pub use access::{AuthConfig, Secret, TlsConfig, TokenConfig, MIN_TOKEN_CHARS};
pub use bus::{BusConfig, ExternalTarget};

/// Default JSON-RPC address (HTTP and WebSocket on one port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./ruvector-data";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Directory holding the RocksDB store, `daemon.json` and `daemon.log`.
    pub data_dir: PathBuf,
    /// JSON-RPC listen address (HTTP + WebSocket). Port 0 picks a free port.
    pub listen: String,
    /// WAL durability: `always` (fsync before acknowledging; concurrent
    /// writers share fsyncs), `interval:<ms>` (fsync every <ms>), `never`.
    pub sync: String,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `ruvector_storage=debug`.
    pub log_level: String,
    /// Seconds between status records published to the memory bus.
    pub status_interval_secs: u64,
    /// How long the metrics history (a point per status tick, `stats
    /// --history`) is kept, seconds; whole hour chunks are deleted.
    pub metrics_history_retention_secs: u64,
    /// Upper bound in seconds for a graceful shutdown.
    pub shutdown_timeout_secs: u64,
    /// Cron jobs file (see `schedules/`). Unset: the built-in copy of
    /// `schedules/default.toml`. SIGHUP reloads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_file: Option<PathBuf>,
    /// Threads of the persistence actor (blocking RocksDB calls). Concurrent
    /// durable writes beyond this number queue; RocksDB groups the fsyncs of
    /// the ones in flight.
    pub persistence_threads: usize,
    /// RocksDB tuning.
    pub rocksdb: RocksdbConfig,
    /// Request limits.
    pub limits: Limits,
    /// Change data capture: how long the WAL is kept.
    pub cdc: CdcConfig,
    /// Bearer tokens and their namespace grants. Required to listen on
    /// anything but loopback.
    pub auth: AuthConfig,
    /// TLS 1.3 for the JSON-RPC port (HTTPS and WSS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The memory bus: where else the daemon's records are published.
    pub bus: BusConfig,
    /// Backups to object storage.
    pub backup: BackupConfig,
    /// Block compression of each data type (when `rocksdb.compression =
    /// "per-type"`); `compress` changes it at runtime.
    pub compression: CompressionConfig,
    /// Maintenance I/O (`[maintenance]`).
    pub maintenance: MaintenanceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupConfig {
    /// Default target URL. Unset: `<data-dir>/backups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Ship committed WAL batches to the destination continuously (PITR).
    pub archive_wal: bool,
    /// How often the archiver ships, milliseconds. A batch waits at most
    /// one interval plus one pass, so the default 500 keeps the RPO ≤ 1 s.
    pub archive_interval_ms: u64,
    /// `backup prune` keeps every point of this window restorable.
    pub pitr_window_secs: u64,
    /// Encrypt every new backup (AES-256-GCM), not only `--encrypt` ones.
    pub encrypt: bool,
    /// A second destination: every backup made to the default destination
    /// is then copied there (incrementally), e.g. another region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<String>,
    /// The key-encryption keys (JSON, mode 0600). Unset:
    /// `<data-dir>/backup-keyring.json`, created on the first encrypted backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            destination: None,
            archive_wal: false,
            archive_interval_ms: 500,
            pitr_window_secs: 86_400,
            encrypt: false,
            copy_to: None,
            keyring: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CdcConfig {
    /// Keep WAL files this long after they are obsolete, so change
    /// subscribers can resume from older sequences.
    pub wal_retention_secs: u64,
    /// ... but at most this many MiB of them (oldest deleted first).
    pub wal_retention_mb: u64,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            wal_retention_secs: 86_400,
            wal_retention_mb: 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RocksdbConfig {
    /// Block compression of SST files: `per-type` (each column family as
    /// `[compression]` says) or one spec for all (`zstd`, `zstd:9`, `lz4`,
    /// `snappy`, `none`).
    pub compression: String,
    /// zstd level (1..=19) when `compression = "zstd"` names no level.
    pub zstd_level: i32,
    /// Memtable size per column family, MiB.
    pub write_buffer_size_mb: usize,
    /// Memtables per column family before writes stall.
    pub max_write_buffer_number: i32,
    /// Shared LRU block cache, MiB.
    pub block_cache_mb: usize,
    /// SST block size, KiB.
    pub block_size_kb: usize,
    /// Bloom filter bits per key (0 disables).
    pub bloom_bits_per_key: f64,
    /// Target SST file size, MiB.
    pub target_file_size_mb: u64,
    /// Background flush + compaction threads.
    pub max_background_jobs: i32,
}

/// `[maintenance]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MaintenanceConfig {
    /// RocksDB's rate limiter on flush and compaction writes (`compact`,
    /// `compress --rewrite` and RocksDB's own compactions), MB/s; 0: none.
    pub max_mb_per_sec: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// The daemon's memory budget, MiB: the block cache (at most half of
    /// it, with the memtables charged to the cache) and everything else the
    /// process holds. RSS above it by 25% is reported as an error.
    pub memory_mb: usize,
    /// Largest JSON-RPC request body, bytes.
    pub max_request_bytes: u32,
    /// Most vectors in one `vector_upsert` / ids in one get/delete.
    pub max_batch: usize,
    /// Longest key/value key, bytes.
    pub max_key_bytes: usize,
    /// Largest key/value or memory value, bytes.
    pub max_value_bytes: usize,
    /// Longest vector id, bytes.
    pub max_id_bytes: usize,
    /// Largest vector dimension.
    pub max_dimension: usize,
    /// Largest metadata object (serialised), bytes.
    pub max_metadata_bytes: usize,
    /// How often free heap pages are handed back to the kernel, ms (0:
    /// only after long jobs).
    pub trim_interval_ms: u64,
    /// In-memory copies of collections for `vector_search`, MiB in all
    /// (part of `memory-mb`); a collection larger is refused, not scanned.
    pub search_cache_mb: usize,
    /// Free space kept on the filesystem of the data directory, MiB:
    /// below it writes are refused (`disk_full`, retryable) before RocksDB
    /// itself runs out. Unset: max(1 GiB, 2% of the filesystem); 0: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_reserve_mb: Option<u64>,
}

const fn default_max_request_bytes() -> u32 {
    64 * 1024 * 1024
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN.to_string(),
            sync: "always".to_string(),
            log_level: "info".to_string(),
            status_interval_secs: 10,
            metrics_history_retention_secs: 604_800,
            shutdown_timeout_secs: 10,
            schedule_file: None,
            persistence_threads: 32,
            rocksdb: RocksdbConfig::default(),
            limits: Limits::default(),
            cdc: CdcConfig::default(),
            auth: Default::default(),
            tls: None,
            bus: BusConfig::default(),
            backup: BackupConfig::default(),
            compression: CompressionConfig::default(),
            maintenance: MaintenanceConfig::default(),
        }
    }
}

impl Default for RocksdbConfig {
    fn default() -> Self {
        RocksdbConfig {
            compression: "per-type".to_string(),
            zstd_level: 3,
            write_buffer_size_mb: 64,
            max_write_buffer_number: 4,
            block_cache_mb: 128,
            block_size_kb: 16,
            bloom_bits_per_key: 10.0,
            target_file_size_mb: 64,
            max_background_jobs: 2,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: 512,
            max_request_bytes: default_max_request_bytes(),
            max_batch: 10_000,
            max_key_bytes: 4096,
            max_value_bytes: 16 * 1024 * 1024,
            max_id_bytes: 512,
            max_dimension: 65_536,
            max_metadata_bytes: 64 * 1024,
            trim_interval_ms: 1000,
            search_cache_mb: 64,
            disk_reserve_mb: None,
        }
    }
}

/// When the WAL is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before a write is acknowledged (group commit under load).
    Always,
    /// fsync by a background thread every interval.
    Interval(Duration),
    /// Leave it to the OS (a crash of the machine may lose recent writes).
    Never,
}

impl SyncPolicy {
    pub fn parse(s: &str) -> Result<SyncPolicy> {
        match s.trim() {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.trim().parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "sync = {other:?}: expected \"always\", \"never\" or \"interval:<ms>\" with ms > 0"
                        ))
                    })?;
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Never => f.write_str("never"),
            SyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

impl Config {
    /// Load all layers and validate.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config> {
        Self::load_from(file, overrides, Env::prefixed("RUVECTOR_STORAGE__"))
    }

    fn load_from(file: Option<&Path>, overrides: &Overrides, env: Env) -> Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::invalid(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        let env = env.map(|k| k.as_str().replace("__", ".").replace('_', "-").into());
        fig = fig.merge(env).merge(Serialized::defaults(overrides));
        let config: Config = fig
            .extract()
            .map_err(|e| Error::invalid(format!("invalid configuration: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Check every value that can be wrong; the message names the key.
    pub fn validate(&self) -> Result<()> {
        SyncPolicy::parse(&self.sync)?;
        self.store_compression()?;
        self.compression.validate()?;
        let addr = self.listen.parse::<std::net::SocketAddr>().map_err(|e| {
            Error::invalid(format!(
                "listen = {:?}: not a socket address HOST:PORT ({e})",
                self.listen
            ))
        })?;
        for (i, t) in self.bus.external.iter().enumerate() {
            t.validate(&format!("bus.external[{i}]"))?;
        }
        self.auth.validate()?;
        if !addr.ip().is_loopback() && self.auth.tokens.is_empty() {
            return Err(Error::invalid(format!(
                "listen = {:?} is not a loopback address: configure [[auth.tokens]] \
                 (refusing to serve an unauthenticated API beyond this machine)",
                self.listen
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::invalid("data-dir must not be empty"));
        }
        let checks: [(bool, &str); 12] = [
            (
                self.status_interval_secs > 0,
                "status-interval-secs must be > 0",
            ),
            (
                (3600..=10 * 365 * 86_400).contains(&self.metrics_history_retention_secs),
                "metrics-history-retention-secs must be from 3600 (an hour) to 315360000 (10 years)",
            ),
            (
                self.shutdown_timeout_secs > 0,
                "shutdown-timeout-secs must be > 0",
            ),
            (
                self.maintenance.max_mb_per_sec <= 1_000_000,
                "maintenance.max-mb-per-sec must be at most 1000000 (0: no limit)",
            ),
            (
                (1..=1024).contains(&self.persistence_threads),
                "persistence-threads must be in 1..=1024",
            ),
            (
                (1..=19).contains(&self.rocksdb.zstd_level),
                "rocksdb.zstd-level must be in 1..=19",
            ),
            (
                self.rocksdb.write_buffer_size_mb >= 1,
                "rocksdb.write-buffer-size-mb must be >= 1",
            ),
            (
                self.rocksdb.max_write_buffer_number >= 2,
                "rocksdb.max-write-buffer-number must be >= 2",
            ),
            (
                self.rocksdb.block_size_kb >= 1,
                "rocksdb.block-size-kb must be >= 1",
            ),
            (
                (0.0..=64.0).contains(&self.rocksdb.bloom_bits_per_key),
                "rocksdb.bloom-bits-per-key must be in 0..=64",
            ),
            (
                self.limits.max_batch >= 1 && self.limits.max_dimension >= 1,
                "limits.max-batch and limits.max-dimension must be >= 1",
            ),
            (
                self.limits.max_request_bytes >= 1024,
                "limits.max-request-bytes must be >= 1024",
            ),
        ];
        for (ok, msg) in checks {
            if !ok {
                return Err(Error::invalid(format!("invalid configuration: {msg}")));
            }
        }
        let (budget, cache) = (self.limits.memory_mb, self.rocksdb.block_cache_mb);
        if !(64..=1 << 24).contains(&budget) || cache > budget / 2 {
            return Err(Error::invalid(format!(
                "invalid configuration: limits.memory-mb is {budget} and rocksdb.block-cache-mb {cache}: \
                 the budget must be 64 MiB to 16 TiB and the block cache (which also holds the \
                 memtables) at most half of it; the rest is for table readers, requests and jobs"
            )));
        }
        Ok(())
    }

    pub fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy::parse(&self.sync).unwrap_or(SyncPolicy::Always)
    }

    fn store_compression(&self) -> Result<StoreCompression> {
        StoreCompression::parse(&self.rocksdb.compression, self.rocksdb.zstd_level)
    }

    /// The configured compression of a column family: `rocksdb.compression`
    /// when it names one spec for all, else its `[compression]` entry
    /// (validated at load; an invalid one falls back to lz4).
    pub fn compression_of(&self, family: &str) -> CompressionSpec {
        match self.store_compression() {
            Ok(StoreCompression::All(spec)) => spec,
            _ => self
                .compression
                .raw(family)
                .and_then(|s| CompressionSpec::parse(s).ok())
                .unwrap_or(CompressionSpec::of(Algorithm::Lz4)),
        }
    }

    /// A commented example configuration (written by `init`).
    pub fn example_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# ruvector-storage configuration. Every key is optional; these are the defaults.\n\
             # Environment overrides: RUVECTOR_STORAGE__<KEY> (e.g. RUVECTOR_STORAGE__SYNC=never).\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_none() -> Env {
        Env::prefixed("RUVECTOR_STORAGE_TEST_NONE__")
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = Config::load_from(None, &Overrides::default(), env_none()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.data_dir, PathBuf::from("./ruvector-data"));
        assert_eq!(c.sync_policy(), SyncPolicy::Always);
        let parsed: Config = toml::from_str(&Config::example_toml()).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ruvector-storage.example.toml");
        let c = Config::load_from(Some(&p), &Overrides::default(), env_none()).unwrap();
        assert_eq!(c.rocksdb, RocksdbConfig::default());
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.compression, CompressionConfig::default());
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "sync = \"never\"\nlisten = \"127.0.0.1:1\"\n[rocksdb]\nblock-cache-mb = 7\n",
        )
        .unwrap();
        // SAFETY: test-local variable names with a unique prefix.
        unsafe {
            std::env::set_var("RVS_LAYER_TEST__LISTEN", "127.0.0.1:2");
            std::env::set_var("RVS_LAYER_TEST__ROCKSDB__ZSTD_LEVEL", "5");
        }
        let flags = Overrides {
            sync: Some("interval:250".into()),
            ..Default::default()
        };
        let c = Config::load_from(Some(&file), &flags, Env::prefixed("RVS_LAYER_TEST__")).unwrap();
        assert_eq!(
            c.sync_policy(),
            SyncPolicy::Interval(Duration::from_millis(250))
        );
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.rocksdb.block_cache_mb, 7);
        assert_eq!(c.rocksdb.zstd_level, 5);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, needle) in [
            ("sync = \"sometimes\"", "sync"),
            ("listen = \"nowhere\"", "listen"),
            ("bogus-key = 1", "bogus-key"),
            ("[rocksdb]\ncompression = \"brotli\"", "compression"),
            ("[rocksdb]\nzstd-level = 40", "zstd-level"),
            ("sync = \"interval:0\"", "interval"),
            ("[limits]\nmemory-mb = 32", "limits.memory-mb is 32"),
            (
                "metrics-history-retention-secs = 60",
                "metrics-history-retention-secs must be from 3600",
            ),
            (
                "[limits]\nmemory-mb = 200\n[rocksdb]\nblock-cache-mb = 128",
                "at most half",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("c.toml");
            std::fs::write(&file, text).unwrap();
            let err =
                Config::load_from(Some(&file), &Overrides::default(), env_none()).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {err}");
        }
        let err = Config::load_from(
            Some(Path::new("/nonexistent.toml")),
            &Overrides::default(),
            env_none(),
        )
        .unwrap_err();
        assert!(err.message.contains("does not exist"));
    }
}
