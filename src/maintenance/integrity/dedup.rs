//! The dedup part of the deep check: in a dedup collection every id holds a
//! reference, every reference names a stored vector, every stored vector
//! is referred to, and every count in `sys` equals the references to it.

use std::collections::{HashMap, HashSet};

use super::Findings;
use crate::engine::{decode_count, decode_ref, Cf};

#[derive(Default)]
pub(super) struct Tally {
    /// The collections that deduplicate (from their descriptors).
    pub collections: HashSet<String>,
    /// (collection, hash hex) → what was seen of it.
    entries: HashMap<(String, String), Entry>,
}

#[derive(Default)]
struct Entry {
    refs: u64,
    count: Option<u64>,
    content: bool,
}

impl Tally {
    fn entry(&mut self, collection: &str, hash: &str) -> &mut Entry {
        self.entries
            .entry((collection.to_string(), hash.to_string()))
            .or_default()
    }

    /// A `sys` key `dedup/<collection>/<hash>` (`rest` after `dedup/`).
    pub fn count(&mut self, rest: &[u8], v: &[u8], k: &[u8], found: &mut Findings) {
        let rest = String::from_utf8_lossy(rest);
        let Some((collection, hash)) = rest.rsplit_once('/') else {
            found.add(Cf::Sys, k, "reference count key has no hash");
            return;
        };
        match decode_count(v) {
            Ok(n) => self.entry(collection, hash).count = Some(n),
            Err(e) => found.add(Cf::Sys, k, e.message),
        }
    }

    /// A `vectors` key of `collection` (`content`: `\x01 <hash>`, `rest`
    /// after the separator). Returns whether `v` is a vector to check.
    pub fn vector(
        &mut self,
        collection: &str,
        content: bool,
        rest: &[u8],
        v: &[u8],
        k: &[u8],
        found: &mut Findings,
    ) -> bool {
        let dedup = self.collections.contains(collection);
        let problem = match (decode_ref(v), content) {
            (Err(e), _) => e.message,
            (Ok(Some(_)), true) => "a stored vector of a dedup collection holds a reference".into(),
            (Ok(Some(h)), false) if dedup => {
                self.entry(collection, &crate::fs::hex(&h)).refs += 1;
                return false;
            }
            (Ok(Some(_)), false) => {
                format!("a reference, but collection {collection:?} does not deduplicate")
            }
            (Ok(None), true) if dedup => {
                self.entry(collection, &String::from_utf8_lossy(rest))
                    .content = true;
                return true;
            }
            (Ok(None), true) => {
                format!("a content key, but collection {collection:?} does not deduplicate")
            }
            (Ok(None), false) if dedup => format!(
                "collection {collection:?} deduplicates, but the id holds a vector, not a reference"
            ),
            (Ok(None), false) => return true,
        };
        found.add(Cf::Vectors, k, problem);
        false
    }

    /// After the `vectors` family: references, stored vectors and counts
    /// agree.
    pub fn settle(&mut self, found: &mut Findings) {
        let mut entries: Vec<_> = self.entries.drain().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for ((collection, hash), e) in entries {
            let content_key = format!("{collection}\x01{hash}");
            if e.refs > 0 && !e.content {
                found.add(
                    Cf::Vectors,
                    content_key.as_bytes(),
                    format!("{} ids refer to this vector, which is missing", e.refs),
                );
            }
            if e.content && e.refs == 0 {
                found.add(
                    Cf::Vectors,
                    content_key.as_bytes(),
                    "no id refers to this stored vector (garbage)",
                );
            }
            let count = e.count.unwrap_or(0);
            if count != e.refs {
                found.add(
                    Cf::Sys,
                    format!("dedup/{collection}/{hash}").as_bytes(),
                    format!("reference count is {count}, {} ids refer to it", e.refs),
                );
            }
        }
    }
}
