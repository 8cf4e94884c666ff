//! Block compression per column family, changeable while the store serves:
//! the spec each family uses (its `[compression]` default, or the one a
//! `compress` command chose, kept in `sys` under `compression/<family>` so
//! it survives a restart), the RocksDB options that carry it, and what the
//! table files say it achieved.
//!
//! A spec is applied with `SetOptions`: it governs the table files written
//! from then on. Files already there keep their blocks until a compaction
//! rewrites them (`compress --rewrite`).

use std::collections::HashMap;
use std::sync::RwLock;

use rocksdb::{DBCompressionType, Options, WriteBatch};
use serde::Serialize;

use super::{Cf, Engine};
use crate::config::{Algorithm, CompressionSpec, Config, DICT_BYTES, DICT_TRAIN_BYTES};
use crate::error::{Error, Result};

/// A compressed block is kept only when it is at most this many bytes per
/// KiB of the raw block (saves ≥ 1/64); RocksDB's default (896) stores
/// raw any block that saves less than 12.5%, which is every block of
/// quantized codes and of f32 vectors.
pub const MAX_COMPRESSED_BYTES_PER_KB: u32 = 1008;

/// Levels RocksDB has (its default `num_levels`).
const LEVELS: usize = 7;

/// Where a family's spec comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `[compression]` (or `rocksdb.compression`).
    Config,
    /// A `compress` command (kept in `sys`).
    Runtime,
}

/// The spec of every family, and the configured one.
#[derive(Debug)]
pub(crate) struct Specs {
    current: RwLock<[(CompressionSpec, Source); Cf::ALL.len()]>,
    configured: [CompressionSpec; Cf::ALL.len()],
}

impl Specs {
    pub(crate) fn from_config(config: &Config) -> Specs {
        let configured = Cf::ALL.map(|cf| config.compression_of(cf.name()));
        Specs {
            current: RwLock::new(configured.map(|s| (s, Source::Config))),
            configured,
        }
    }
}

/// The column family of a data type named by a user (`compress --type`):
/// a family's name, or `vector`/`index`, the seed's singulars.
pub fn family_of_type(name: &str) -> Result<Cf> {
    let name = match name {
        "vector" => "vectors",
        "index" => "indexes",
        n => n,
    };
    Cf::ALL
        .into_iter()
        .find(|cf| cf.name() == name)
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown data type {name:?}: expected one of {}",
                Cf::ALL.map(Cf::name).join(", ")
            ))
        })
}

fn sys_key(cf: Cf) -> String {
    format!("compression/{}", cf.name())
}

fn type_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Zstd => "kZSTD",
        Algorithm::Lz4 => "kLZ4Compression",
        Algorithm::Snappy => "kSnappyCompression",
        Algorithm::None => "kNoCompression",
    }
}

fn db_type(a: Algorithm) -> DBCompressionType {
    match a {
        Algorithm::Zstd => DBCompressionType::Zstd,
        Algorithm::Lz4 => DBCompressionType::Lz4,
        Algorithm::Snappy => DBCompressionType::Snappy,
        Algorithm::None => DBCompressionType::None,
    }
}

/// RocksDB's "use the library's default level".
const DEFAULT_LEVEL: i32 = 32767;

/// The column family options a spec stands for, as `SetOptions` takes
/// them: level 0 uncompressed, the algorithm below, and with a dictionary
/// zstd with a trained dictionary on the bottommost level.
pub(crate) fn option_strings(spec: &CompressionSpec) -> Vec<(&'static str, String)> {
    let algo = type_name(spec.algorithm);
    let per_level = std::iter::once(type_name(Algorithm::None))
        .chain(std::iter::repeat_n(algo, LEVELS - 1))
        .collect::<Vec<_>>()
        .join(":");
    let opts = |level: i32, dict: bool| {
        let (dict_bytes, train) = if dict {
            (DICT_BYTES, DICT_TRAIN_BYTES)
        } else {
            (0, 0)
        };
        format!(
            "{{window_bits=-14;level={level};strategy=0;max_dict_bytes={dict_bytes};\
             zstd_max_train_bytes={train};enabled={dict};\
             max_compressed_bytes_per_kb={MAX_COMPRESSED_BYTES_PER_KB}}}"
        )
    };
    vec![
        ("compression", algo.to_string()),
        ("compression_per_level", per_level),
        (
            "compression_opts",
            opts(spec.level.unwrap_or(DEFAULT_LEVEL), false),
        ),
        (
            "bottommost_compression",
            if spec.dictionary {
                type_name(Algorithm::Zstd).to_string()
            } else {
                "kDisableCompressionOption".to_string()
            },
        ),
        (
            "bottommost_compression_opts",
            opts(spec.dictionary_level(), spec.dictionary),
        ),
    ]
}

/// The same at open, before `SetOptions` can run (flushes of the WAL's
/// memtables during recovery use these).
pub(crate) fn set_open_options(opts: &mut Options, spec: &CompressionSpec) {
    opts.set_compression_type(db_type(spec.algorithm));
    let mut per_level = vec![DBCompressionType::None];
    per_level.extend(std::iter::repeat_n(db_type(spec.algorithm), LEVELS - 1));
    opts.set_compression_per_level(&per_level);
    if let Some(level) = spec.level {
        opts.set_compression_options(-14, level, 0, 0);
    }
    if spec.dictionary {
        opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        opts.set_bottommost_compression_options(
            -14,
            spec.dictionary_level(),
            0,
            DICT_BYTES as i32,
            true,
        );
        opts.set_bottommost_zstd_max_train_bytes(DICT_TRAIN_BYTES as i32, true);
    }
}

/// What a family's table files hold, from RocksDB's aggregated table
/// properties (live files only; the memtables are not compressed).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    pub entries: u64,
    /// Deletion tombstones among the entries.
    pub deletions: u64,
    /// Keys (internal, with their 8-byte sequence) and values as written.
    pub raw_bytes: u64,
    /// The values alone.
    pub raw_value_bytes: u64,
    /// Data blocks before compression (keys prefix-shared, with restarts).
    pub block_bytes: u64,
    /// Data blocks as stored.
    pub stored_bytes: u64,
    pub data_blocks: u64,
    /// Blocks stored raw because compressing did not save enough.
    pub blocks_rejected: u64,
}

impl Figures {
    /// Raw over stored (1 when empty).
    pub fn ratio(&self) -> f64 {
        if self.stored_bytes == 0 {
            1.0
        } else {
            self.raw_bytes as f64 / self.stored_bytes as f64
        }
    }

    /// Data blocks before over after compression: what the algorithm did.
    pub fn block_ratio(&self) -> f64 {
        if self.stored_bytes == 0 {
            1.0
        } else {
            self.block_bytes as f64 / self.stored_bytes as f64
        }
    }

    fn parse(props: &str) -> Figures {
        let map: HashMap<&str, u64> = props
            .split(';')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.trim(), v.trim().parse().ok()?))
            })
            .collect();
        let get = |k: &str| map.get(k).copied().unwrap_or(0);
        Figures {
            entries: get("# entries"),
            deletions: get("# deletions"),
            raw_bytes: get("raw key size") + get("raw value size"),
            raw_value_bytes: get("raw value size"),
            block_bytes: get("data uncompressed size"),
            stored_bytes: get("data block size"),
            data_blocks: get("# data blocks"),
            blocks_rejected: get("# data blocks compression rejected"),
        }
    }
}

impl Engine {
    /// Read the specs chosen at runtime and apply every family's spec.
    pub(crate) fn apply_compression(&self) -> Result<()> {
        for cf in Cf::ALL {
            if let Some(raw) = self.get(Cf::Sys, sys_key(cf).as_bytes())? {
                let text = String::from_utf8_lossy(&raw);
                // A choice this build cannot read or apply must not keep
                // the store from opening: the configured one serves.
                match CompressionSpec::parse(&text) {
                    Ok(spec) => self.set_spec(cf, spec, Source::Runtime),
                    Err(e) => tracing::warn!(
                        family = cf.name(), stored = %text, error = %e,
                        "ignoring the stored compression choice; using the configured one"
                    ),
                }
            }
            if let Err(e) = self.apply_options(cf, &self.compression_of(cf).0) {
                let configured = self.compression.configured[cf as usize];
                tracing::warn!(family = cf.name(), error = %e,
                    "the compression was refused; using the configured one");
                self.set_spec(cf, configured, Source::Config);
                self.apply_options(cf, &configured)?;
            }
        }
        Ok(())
    }

    fn set_spec(&self, cf: Cf, spec: CompressionSpec, source: Source) {
        let mut specs = match self.compression.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        specs[cf as usize] = (spec, source);
    }

    fn apply_options(&self, cf: Cf, spec: &CompressionSpec) -> Result<()> {
        let strings = option_strings(spec);
        let pairs: Vec<(&str, &str)> = strings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.db
            .set_options_cf(self.cf(cf), &pairs)
            .map_err(|e| Error::internal(format!("setting the compression of {}: {e}", cf.name())))
    }

    /// A family's spec and where it comes from.
    pub fn compression_of(&self, cf: Cf) -> (CompressionSpec, Source) {
        match self.compression.current.read() {
            Ok(g) => g[cf as usize],
            Err(p) => p.into_inner()[cf as usize],
        }
    }

    /// Compress a family's new table files with `spec` from now on, and
    /// after a restart. RocksDB takes the options first: a spec it refuses
    /// is not kept.
    pub fn set_compression(&self, cf: Cf, spec: CompressionSpec) -> Result<()> {
        self.apply_options(cf, &spec)?;
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(Cf::Sys), sys_key(cf), spec.to_string());
        self.write(b)?;
        self.set_spec(cf, spec, Source::Runtime);
        Ok(())
    }

    /// Back to the configured spec: the runtime choice is removed.
    pub fn reset_compression(&self, cf: Cf) -> Result<CompressionSpec> {
        let configured = self.compression.configured[cf as usize];
        self.apply_options(cf, &configured)?;
        let mut b = WriteBatch::default();
        b.delete_cf(self.cf(Cf::Sys), sys_key(cf));
        self.write(b)?;
        self.set_spec(cf, configured, Source::Config);
        Ok(configured)
    }

    /// What a family's live table files hold.
    pub fn compression_figures(&self, cf: Cf) -> Figures {
        self.db
            .property_value_cf(self.cf(cf), "rocksdb.aggregated-table-properties")
            .ok()
            .flatten()
            .map(|s| Figures::parse(&s))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_chosen_spec_is_applied_kept_across_a_restart_and_shows_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            sync: "never".into(),
            ..Config::default()
        };
        let text = "the quick brown fox jumps over the lazy dog; ".repeat(40);
        {
            let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
            assert_eq!(
                e.compression_of(Cf::Kv),
                (config.compression_of("kv"), Source::Config)
            );
            e.set_compression(Cf::Kv, CompressionSpec::zstd(9)).unwrap();
            let mut b = WriteBatch::default();
            for i in 0..2000 {
                b.put_cf(e.cf(Cf::Kv), format!("k{i:05}"), format!("{text}{i}"));
            }
            e.write(b).unwrap();
            e.flush().unwrap();
            e.compact(Cf::Kv);
            let f = e.compression_figures(Cf::Kv);
            assert_eq!(f.entries, 2000);
            assert!(f.raw_bytes > 2000 * text.len() as u64, "{f:?}");
            // Repetitive text: zstd shrinks it many times over; stored raw
            // (the spec not applied) it would be about 1.
            assert!(f.ratio() > 10.0, "{f:?}");
        }
        let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
        assert_eq!(
            e.compression_of(Cf::Kv),
            (CompressionSpec::zstd(9), Source::Runtime)
        );
        let f = e.compression_figures(Cf::Kv);
        assert_eq!(f.entries, 2000);
        // Reset: the configured one again, and after a restart too.
        assert_eq!(
            e.reset_compression(Cf::Kv).unwrap(),
            config.compression_of("kv")
        );
        drop(e);
        let e = Engine::open(&config, std::sync::Arc::new(ManualClock::new(0))).unwrap();
        assert_eq!(
            e.compression_of(Cf::Kv),
            (config.compression_of("kv"), Source::Config)
        );
    }

    #[test]
    fn every_spec_is_accepted_by_rocksdb() {
        let (_dir, e) = crate::engine::testutil::open_temp(ManualClock::new(0));
        for s in [
            "zstd:1",
            "zstd:19+dict",
            "lz4",
            "lz4+dict",
            "snappy",
            "none",
        ] {
            let spec = CompressionSpec::parse(s).unwrap();
            e.set_compression(Cf::Metadata, spec).unwrap();
            assert_eq!(e.compression_of(Cf::Metadata).0, spec);
        }
    }

    #[test]
    fn table_properties_parse() {
        let f = Figures::parse(
            "# data blocks=3; # data blocks compression rejected=1; # entries=10; \
             raw key size=200; raw value size=800; data block size=250; \
             data uncompressed size=1100; index block size (user-key? 0)=40",
        );
        assert_eq!(f.entries, 10);
        assert_eq!(f.raw_bytes, 1000);
        assert_eq!(f.stored_bytes, 250);
        assert_eq!(f.block_bytes, 1100);
        assert_eq!(f.blocks_rejected, 1);
        assert_eq!(f.ratio(), 4.0);
    }
}
