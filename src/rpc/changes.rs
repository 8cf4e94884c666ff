//! `storage_subscribeChanges`: change data capture over a JSON-RPC
//! WebSocket subscription. Each notification (`storage_change`) is one
//! [`ChangeEvent`]; a client that reconnects passes the last `sequence` it
//! saw as `from_sequence` and gets every later change exactly once, also
//! after a daemon restart (within the WAL retention window).

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionSink};
use serde::Deserialize;

use crate::cdc::{self, Filter};
use crate::engine::EngineSlot;
use crate::error::{Error, Result};

pub const SUBSCRIBE: &str = "storage_subscribeChanges";
pub const NOTIFICATION: &str = "storage_change";
pub const UNSUBSCRIBE: &str = "storage_unsubscribeChanges";

/// Events read per WAL pass.
const PAGE: usize = 1024;
/// How often a caught-up subscription looks for new writes.
const POLL: Duration = Duration::from_millis(25);

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Stream changes after this sequence (the last one you saw). Default:
    /// only changes from now on.
    #[serde(default)]
    pub from_sequence: Option<u64>,
    #[serde(flatten)]
    pub filter: Filter,
}

async fn read(slot: &Arc<EngineSlot>, after: u64, filter: &Filter) -> Result<cdc::Page> {
    let slot = slot.clone();
    let filter = filter.clone();
    tokio::task::spawn_blocking(move || {
        let engine = slot.get()?;
        cdc::read_changes(&engine, after, PAGE, &filter)
    })
    .await
    .map_err(|e| Error::internal(format!("change reader task failed: {e}")))?
}

/// Validate, accept and stream until the client goes away.
pub async fn serve(
    slot: Arc<EngineSlot>,
    params: SubscribeParams,
    allowed: impl Fn(&cdc::ChangeEvent) -> bool + Send + 'static,
    pending: PendingSubscriptionSink,
) -> std::result::Result<(), SubscriptionError> {
    let generation = slot.generation();
    let start = match params.from_sequence {
        Some(s) => s,
        None => match slot.get() {
            Ok(e) => e.db().latest_sequence_number(),
            Err(e) => {
                pending.reject(super::error::to_rpc(&e)).await;
                return Ok(());
            }
        },
    };
    // The first page proves the start point is still retained; an error
    // here is a rejected subscription, not a stream that ends at once.
    let first = match read(&slot, start, &params.filter).await {
        Ok(page) => page,
        Err(e) => {
            pending.reject(super::error::to_rpc(&e)).await;
            return Ok(());
        }
    };
    let sink = match pending.accept().await {
        Ok(sink) => sink,
        Err(_) => return Ok(()),
    };
    stream(&slot, generation, first, &params.filter, allowed, &sink)
        .await
        .map_err(|e| SubscriptionError::from(e.message))
}

async fn stream(
    slot: &Arc<EngineSlot>,
    generation: u64,
    mut page: cdc::Page,
    filter: &Filter,
    allowed: impl Fn(&cdc::ChangeEvent) -> bool,
    sink: &SubscriptionSink,
) -> Result<()> {
    loop {
        for event in page.events.iter().filter(|e| allowed(e)) {
            let msg = serde_json::value::to_raw_value(event)
                .map_err(|e| Error::internal(format!("encoding a change event: {e}")))?;
            if sink.send(msg).await.is_err() {
                return Ok(()); // the client went away
            }
        }
        let after = page.next_sequence;
        if page.events.is_empty() || after >= page.latest_sequence {
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        if slot.generation() != generation {
            return Err(Error::unavailable(format!(
                "the store was restored or closed after sequence {after}; \
                 its history changed, so resubscribe (from a sequence of the new history)"
            )));
        }
        page = match read(slot, after, filter).await {
            Ok(p) => p,
            // Restore in progress: wait for the generation check above.
            Err(e) if e.kind == crate::error::ErrorKind::Unavailable => cdc::Page {
                events: Vec::new(),
                next_sequence: after,
                latest_sequence: after,
            },
            Err(e) => return Err(e),
        };
    }
}
