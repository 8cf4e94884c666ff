//! The actix actors: thin shells that own state and receive typed messages,
//! driving the plain modules (`engine`, `bus`, `status`). Later actors
//! (snapshot, backup, compaction, tiering, scheduler) are started by
//! [`crate::daemon`] next to these and talk to them the same way.

mod persistence;
mod status_actor;

pub use persistence::{Execute, Flush, Persistence, PersistenceHandle, Publish};
pub use status_actor::{StatusActor, VectorStorageRecord};
