//! `backup drill`: restore the newest backup into a scratch directory,
//! open it and read every key, check the rest of the location as `backup
//! verify` does (sizes), report, and delete the scratch.

use std::time::Instant;

use serde_json::{json, Value};

use super::build::build;
use super::restore::plan_restore;
use super::service::{blocking, target, Ctx};
use crate::backup;
use crate::clock::{iso_ms, Clock, SystemClock};
use crate::error::{Error, Result};

/// Restore the newest backup into a scratch directory, open it and read
/// every key, then delete the scratch.
pub(super) async fn drill(c: &Ctx) -> Result<Value> {
    let started = Instant::now();
    let t = target(c, None)?;
    let m = t.resolve(None).await?;
    let plan = plan_restore(&t, m.clone(), None).await?;
    let scratch = std::path::absolute(
        c.config
            .data_dir
            .join(format!("drill-{}", SystemClock.now_ms())),
    )
    .map_err(|e| Error::io(e.to_string()))?;
    // Outside the data dir check: the drill is the daemon's own scratch.
    let partial = backup::partial_path(&scratch);
    let result = async {
        let built = build(&c.config, &t, &plan, &partial).await?;
        let (config, dir) = (c.config.clone(), partial.clone());
        let keys = blocking(move || crate::engine::read_all_read_only(&dir, &config)).await?;
        Ok::<_, Error>((built, keys))
    }
    .await;
    let _ = std::fs::remove_dir_all(&partial);
    let (built, keys) = result?;
    // The same check as `backup verify` (sizes; the restore above read the
    // newest backup's data): the rest of the location and the archive.
    let audit = t.audit(None, 0.0).await?;
    if !audit.ok {
        let first = &audit.bad[0];
        return Err(Error::corruption(format!(
            "the newest backup {} restored ({keys} keys), but the location has {} problem(s), \
             e.g. {}: {} ({}); run backup verify --read-data",
            m.name,
            audit.bad.len(),
            first.object,
            first.problem,
            first.breaks
        )));
    }
    Ok(
        json!({"ok": true, "backup": m.name, "sequence": m.sequence, "keys": keys,
        "backups_checked": audit.backups.len(), "segments": audit.archive.segments,
        "bytes": built.bytes, "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "at": iso_ms(SystemClock.now_ms())}),
    )
}
