//! What a data directory must look like before the store opens: the store
//! lives in `<data-dir>/db`. A RocksDB store sitting where the data
//! directory itself should be (its `CURRENT`, `MANIFEST-*`, `*.sst` at the
//! top level, e.g. a backup restored by hand into the wrong directory) is
//! refused, so the daemon never starts an empty store next to data.

use std::path::Path;

use crate::error::{Error, Result};

/// The files of a RocksDB store directory.
fn is_store_file(name: &str) -> bool {
    name == "CURRENT"
        || name == "IDENTITY"
        || name.starts_with("MANIFEST-")
        || name.starts_with("OPTIONS-")
        || name.ends_with(".sst")
        || name.ends_with(".log")
        || name.ends_with(".blob")
}

/// Refuse a data directory holding a store at its top level, naming what
/// was found and how to fix it.
pub fn check_data_dir(data_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::io(format!(
                "cannot read the data dir {}: {e}",
                data_dir.display()
            )))
        }
    };
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_store_file(n))
        .collect();
    if !found
        .iter()
        .any(|n| n == "CURRENT" || n.starts_with("MANIFEST-"))
    {
        return Ok(());
    }
    found.sort();
    let shown: Vec<&str> = found.iter().take(6).map(String::as_str).collect();
    let more = found.len().saturating_sub(shown.len());
    let d = data_dir.display();
    Err(Error::invalid(format!(
        "the data dir {d} holds a RocksDB store at its top level ({}{}), but the store \
         belongs in {d}/db; refusing to start (an empty store would be served next to \
         that data). To serve that store: mkdir {d}/db and move those files into it; or \
         pass a data dir whose db/ holds the store (`backup restore --to DIR` makes one)",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_store_at_the_top_is_refused_and_a_proper_layout_accepted() {
        let dir = tempfile::tempdir().unwrap();
        check_data_dir(dir.path()).expect("empty dir");
        check_data_dir(&dir.path().join("missing")).expect("missing dir");
        std::fs::create_dir(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("db/CURRENT"), "MANIFEST-000005\n").unwrap();
        std::fs::write(dir.path().join("ruvector-storage.toml"), "").unwrap();
        check_data_dir(dir.path()).expect("the store in db/");
        for name in ["CURRENT", "MANIFEST-000005", "000007.sst", "000008.sst"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let e = check_data_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(
            e.message.contains("CURRENT")
                && e.message.contains("MANIFEST-000005")
                && e.message.contains("/db"),
            "{e}"
        );
        // Stray SST files alone (no CURRENT/MANIFEST) are not a store.
        std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
        std::fs::remove_file(dir.path().join("MANIFEST-000005")).unwrap();
        check_data_dir(dir.path()).expect("no store at the top");
    }
}
