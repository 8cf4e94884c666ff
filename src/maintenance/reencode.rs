//! The re-encode job of a collection whose quantization changed (see
//! `engine::vectors::reencode` for why every step is crash-safe): steps of
//! [`BATCH`] vectors until done, with progress, stopping between steps
//! when cancelled (it resumes later from where it stopped).

use serde::Serialize;

use crate::backup::progress::Progress;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::quant::Quantization;

/// Vectors per step (one WriteBatch, the schema lock held for it).
pub const BATCH: usize = 512;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub collection: String,
    pub from: Quantization,
    pub to: Quantization,
    pub reencoded: u64,
    pub vectors: u64,
    pub elapsed_ms: u64,
}

/// Run `collection`'s re-encode to its end.
pub fn run(
    engine: &Engine,
    collection: &str,
    progress: &Progress,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let info = engine
        .collection_get(collection)?
        .ok_or_else(|| Error::not_found(format!("collection {collection:?} does not exist")))?;
    let Some(marker) = info.reencode.clone() else {
        // Finished already (by a resume, or an earlier call).
        return Ok(Report {
            collection: collection.to_string(),
            from: info.quantization,
            to: info.quantization,
            reencoded: 0,
            vectors: engine.collection_vectors(collection)?,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    };
    let total = engine.collection_vectors(collection)?;
    progress.phase(
        &format!(
            "re-encoding {collection} from {} to {}",
            marker.from, info.quantization
        ),
        total,
        0,
    );
    let mut reencoded = 0;
    loop {
        if cancelled() {
            return Err(Error::cancelled(format!(
                "the re-encode of {collection:?} stopped after {} vectors; every vector is \
                 readable, and it resumes when the daemon restarts or the same command runs again",
                marker.done + reencoded
            )));
        }
        let step = engine.reencode_step(collection, BATCH)?;
        reencoded += step.reencoded;
        progress.advance_items(step.seen);
        if step.finished {
            break;
        }
    }
    Ok(Report {
        collection: collection.to_string(),
        from: marker.from,
        to: info.quantization,
        reencoded: marker.done + reencoded,
        vectors: engine.collection_vectors(collection)?,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::{Storage, VectorFormat, VectorInput};
    use crate::error::ErrorKind;

    #[test]
    fn a_cancelled_job_stops_between_steps_and_a_later_run_finishes_it() {
        let (_dir, e) = crate::engine::testutil::open_temp(ManualClock::new(0));
        e.collection_create_with("c", 8, crate::engine::Metric::Cosine, Storage::default())
            .unwrap();
        let items: Vec<VectorInput> = (0..(BATCH * 3))
            .map(|i| {
                let v: Vec<f32> = (0..8)
                    .map(|d| ((i * 7 + d * 3) % 11) as f32 / 11.0)
                    .collect();
                serde_json::from_value(serde_json::json!({"id": format!("v{i:05}"), "vector": v}))
                    .unwrap()
            })
            .collect();
        e.vector_upsert("c", &items).unwrap();
        e.reencode_start("c", Quantization::F16, false).unwrap();
        let progress = Progress::default();
        // Cancelled once the first step is done.
        let calls = std::cell::Cell::new(0);
        let err = run(&e, "c", &progress, &|| {
            calls.set(calls.get() + 1);
            calls.get() > 1
        })
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled, "{err}");
        let marker = e.collection_get("c").unwrap().unwrap().reencode.unwrap();
        assert_eq!(marker.done, BATCH as u64);
        let report = run(&e, "c", &progress, &|| false).unwrap();
        assert_eq!(report.reencoded, (BATCH * 3) as u64);
        assert!(e.collection_get("c").unwrap().unwrap().reencode.is_none());
        let ids: Vec<String> = (0..BATCH * 3).map(|i| format!("v{i:05}")).collect();
        let (found, _) = e.vector_get("c", &ids, true, VectorFormat::Floats).unwrap();
        assert_eq!(found.len(), BATCH * 3);
    }
}
