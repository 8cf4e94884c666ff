//! Maintenance of the live store, run by the compaction actor one job at a
//! time: today the integrity check (`check [--verify-integrity]`).
//! Compaction, GC, vacuum and quotas join it here.

pub mod integrity;
pub mod params;
mod service;

pub use service::Service;
