//! Maintenance of the live store, run by the compaction actor one job at a
//! time: the integrity check (`check [--verify-integrity]`) and
//! compression (`compress`, `analyze-compression`), and compaction
//! (`compact --full | --incremental`). GC, vacuum and quotas join it here.

pub mod compaction;
pub mod compression;
pub mod integrity;
pub mod params;
pub mod reencode;
mod service;

pub use service::Service;
