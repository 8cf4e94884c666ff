//! Block compression of the column families, by data type: the spec
//! (`zstd:3`, `lz4+dict`, `snappy`, `none`) and the `[compression]` table
//! of defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A block compression algorithm RocksDB is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    None,
    Snappy,
    Lz4,
    Zstd,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Zstd,
        Algorithm::Lz4,
        Algorithm::Snappy,
        Algorithm::None,
    ];

    pub fn parse(s: &str) -> Result<Algorithm> {
        match s {
            "zstd" => Ok(Algorithm::Zstd),
            "lz4" => Ok(Algorithm::Lz4),
            "snappy" => Ok(Algorithm::Snappy),
            "none" => Ok(Algorithm::None),
            other => Err(Error::invalid(format!(
                "unknown compression algorithm {other:?}: expected zstd, lz4, snappy or none"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Lz4 => "lz4",
            Algorithm::Snappy => "snappy",
            Algorithm::None => "none",
        }
    }
}

/// zstd levels accepted (RocksDB takes up to 22; above 19 is zstd's
/// "ultra" mode, slow and memory-hungry for a few percent).
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;
/// The zstd level when none is given.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// zstd dictionary size of `+dict` specs (bytes, per SST file).
pub const DICT_BYTES: u32 = 16 * 1024;
/// Sample bytes RocksDB trains each dictionary on (zstd's advice: ~100×).
pub const DICT_TRAIN_BYTES: u32 = 100 * DICT_BYTES;

/// How one column family's blocks are compressed: the algorithm of levels
/// 1 and below (level 0 is never compressed: it is rewritten soon), its
/// level (zstd only) and, with `dictionary`, zstd with a trained
/// dictionary on the bottommost level (where most of the data rests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSpec {
    pub algorithm: Algorithm,
    /// zstd level; `None` for the other algorithms.
    pub level: Option<i32>,
    pub dictionary: bool,
}

impl CompressionSpec {
    pub const NONE: CompressionSpec = CompressionSpec {
        algorithm: Algorithm::None,
        level: None,
        dictionary: false,
    };

    pub fn zstd(level: i32) -> CompressionSpec {
        CompressionSpec {
            algorithm: Algorithm::Zstd,
            level: Some(level),
            dictionary: false,
        }
    }

    pub fn of(algorithm: Algorithm) -> CompressionSpec {
        match algorithm {
            Algorithm::Zstd => Self::zstd(DEFAULT_ZSTD_LEVEL),
            a => CompressionSpec {
                algorithm: a,
                level: None,
                dictionary: false,
            },
        }
    }

    /// Build one from its parts (the `compress` command's flags), checking
    /// that they fit together.
    pub fn new(algorithm: Algorithm, level: Option<i32>, dictionary: bool) -> Result<Self> {
        let level = match (algorithm, level) {
            (Algorithm::Zstd, None) => Some(DEFAULT_ZSTD_LEVEL),
            (Algorithm::Zstd, Some(l)) if ZSTD_LEVELS.contains(&l) => Some(l),
            (Algorithm::Zstd, Some(l)) => {
                return Err(Error::invalid(format!(
                    "zstd level {l} is out of range: expected {} to {}",
                    ZSTD_LEVELS.start(),
                    ZSTD_LEVELS.end()
                )))
            }
            (a, Some(l)) => {
                return Err(Error::invalid(format!(
                    "a level ({l}) applies to zstd only, not to {}",
                    a.as_str()
                )))
            }
            (_, None) => None,
        };
        if dictionary && algorithm == Algorithm::None {
            return Err(Error::invalid(
                "a dictionary needs compression: use e.g. \"lz4+dict\" or \"zstd:3+dict\", not \"none+dict\"",
            ));
        }
        Ok(CompressionSpec {
            algorithm,
            level,
            dictionary,
        })
    }

    /// `zstd`, `zstd:9`, `lz4`, `lz4+dict`, `snappy`, `none`.
    pub fn parse(s: &str) -> Result<Self> {
        let (body, dictionary) = match s.strip_suffix("+dict") {
            Some(b) => (b, true),
            None => (s, false),
        };
        let (name, level) = match body.split_once(':') {
            Some((n, l)) => {
                let level = l.parse::<i32>().map_err(|_| {
                    Error::invalid(format!(
                        "compression {s:?}: the level {l:?} is not an integer (e.g. \"zstd:3\")"
                    ))
                })?;
                (n, Some(level))
            }
            None => (body, None),
        };
        let algorithm = Algorithm::parse(name)
            .map_err(|e| Error::invalid(format!("compression {s:?}: {}", e.message)))?;
        Self::new(algorithm, level, dictionary)
            .map_err(|e| Error::invalid(format!("compression {s:?}: {}", e.message)))
    }

    /// The zstd level of the dictionary-compressed bottommost level.
    pub fn dictionary_level(&self) -> i32 {
        self.level.unwrap_or(DEFAULT_ZSTD_LEVEL)
    }
}

impl std::fmt::Display for CompressionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.algorithm.as_str())?;
        if let Some(l) = self.level {
            write!(f, ":{l}")?;
        }
        if self.dictionary {
            f.write_str("+dict")?;
        }
        Ok(())
    }
}

/// `[compression]`: the compression of each data type (column family).
/// Defaults follow what `analyze-compression` measured on real MiniLM
/// embeddings and texts (see README): lz4 and snappy save nothing on f32
/// vectors or quantized codes, zstd's entropy coding saves 8% on f32 and
/// 10% on int8 codes (zstd:3 for vectors, zstd:1 for the rarely read
/// originals: the same ratio, twice as fast); indexes zstd:3; metadata and
/// memory (JSON and text) lz4 with a zstd dictionary on the bottommost
/// level (+9% over zstd:3 alone, +50% over lz4, on the dev set's texts).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompressionConfig {
    pub vectors: String,
    /// The f32 vectors quantized collections keep.
    pub originals: String,
    pub metadata: String,
    pub kv: String,
    pub memory: String,
    pub indexes: String,
    /// Counters, descriptors, calibrations.
    pub sys: String,
    /// The metrics history (already delta-encoded: lz4 is enough).
    pub series: String,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            vectors: "zstd:3".into(),
            originals: "zstd:1".into(),
            metadata: "lz4+dict".into(),
            kv: "lz4".into(),
            memory: "lz4+dict".into(),
            indexes: "zstd:3".into(),
            sys: "lz4".into(),
            series: "lz4".into(),
        }
    }
}

impl CompressionConfig {
    /// The data types, by column family name.
    pub const TYPES: [&'static str; 8] = [
        "vectors",
        "originals",
        "metadata",
        "kv",
        "memory",
        "indexes",
        "sys",
        "series",
    ];

    /// The configured spec of a data type (column family name).
    pub fn raw(&self, family: &str) -> Option<&str> {
        Some(match family {
            "vectors" => &self.vectors,
            "originals" => &self.originals,
            "metadata" => &self.metadata,
            "kv" => &self.kv,
            "memory" => &self.memory,
            "indexes" => &self.indexes,
            "sys" => &self.sys,
            "series" => &self.series,
            _ => return None,
        })
    }

    pub fn validate(&self) -> Result<()> {
        for t in Self::TYPES {
            let raw = self.raw(t).unwrap_or_default();
            CompressionSpec::parse(raw)
                .map_err(|e| Error::invalid(format!("compression.{t}: {}", e.message)))?;
        }
        Ok(())
    }
}

/// What `rocksdb.compression` says: each type its own (`per-type`, the
/// default) or one spec for every column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCompression {
    PerType,
    All(CompressionSpec),
}

impl StoreCompression {
    /// `zstd` alone takes `rocksdb.zstd-level`.
    pub fn parse(s: &str, zstd_level: i32) -> Result<Self> {
        if s == "per-type" {
            return Ok(StoreCompression::PerType);
        }
        let spec = CompressionSpec::parse(s).map_err(|e| {
            Error::invalid(format!(
                "rocksdb.compression: {} (or \"per-type\": the [compression] table)",
                e.message
            ))
        })?;
        if s == "zstd" {
            return CompressionSpec::new(Algorithm::Zstd, Some(zstd_level), false)
                .map(StoreCompression::All)
                .map_err(|e| Error::invalid(format!("rocksdb.zstd-level: {}", e.message)));
        }
        Ok(StoreCompression::All(spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_ones_name_the_allowed_values() {
        for s in [
            "zstd:3",
            "zstd:19+dict",
            "lz4",
            "lz4+dict",
            "snappy",
            "none",
        ] {
            assert_eq!(CompressionSpec::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            CompressionSpec::parse("zstd").unwrap().to_string(),
            "zstd:3"
        );
        for (bad, says) in [
            ("brotli", "expected zstd, lz4, snappy or none"),
            ("zstd:0", "expected 1 to 19"),
            ("zstd:20", "expected 1 to 19"),
            ("zstd:x", "not an integer"),
            ("lz4:3", "zstd only"),
            ("none+dict", "needs compression"),
        ] {
            let e = CompressionSpec::parse(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn every_default_type_is_valid_and_a_bad_one_is_named() {
        CompressionConfig::default().validate().unwrap();
        let c = CompressionConfig {
            kv: "gzip".into(),
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.message.contains("compression.kv"), "{e}");
        assert_eq!(
            StoreCompression::parse("zstd", 9).unwrap(),
            StoreCompression::All(CompressionSpec::zstd(9))
        );
        assert_eq!(
            StoreCompression::parse("per-type", 3).unwrap(),
            StoreCompression::PerType
        );
        assert!(StoreCompression::parse("zstd", 40).is_err());
    }
}
