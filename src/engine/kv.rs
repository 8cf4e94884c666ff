//! Key/value operations on the `kv` column family.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};
use serde::Serialize;

use super::{Cf, Engine};
use crate::codec::{self, Codec};
use crate::error::{Error, Result};

/// Most entries one scan page may return.
pub const MAX_SCAN_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
}

/// One page of a prefix scan; pass `next_cursor` back to continue.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScanPage {
    pub prefix: String,
    pub entries: Vec<KvEntry>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

impl Engine {
    fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key must not be empty"));
        }
        if key.len() > self.limits().max_key_bytes {
            return Err(Error::invalid(format!(
                "key is {} bytes, the limit is {} (limits.max-key-bytes)",
                key.len(),
                self.limits().max_key_bytes
            )));
        }
        Ok(())
    }

    /// Write several key/value pairs atomically (all or nothing).
    pub fn kv_put_many(&self, entries: &[(String, String)]) -> Result<()> {
        if entries.is_empty() {
            return Err(Error::invalid("nothing to write: give a key and value"));
        }
        let max = self.limits().max_value_bytes;
        for (i, (k, v)) in entries.iter().enumerate() {
            let what = if entries.len() == 1 {
                format!("key {k:?}")
            } else {
                format!("entries[{i}] (key {k:?})")
            };
            self.check_key(k).map_err(|e| e.context(&what))?;
            if v.len() > max {
                return Err(Error::invalid(format!(
                    "{what}: value is {} bytes, the limit is {max} (limits.max-value-bytes)",
                    v.len()
                )));
            }
        }
        let cf = self.cf(Cf::Kv);
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put_cf(cf, k.as_bytes(), codec::encode(Codec::Raw, v.as_bytes()));
        }
        self.write(batch)
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>> {
        self.check_key(key)
            .map_err(|e| e.context(format!("key {key:?}")))?;
        self.get_with(Cf::Kv, key.as_bytes(), |bytes| {
            let payload =
                codec::expect(bytes, Codec::Raw).map_err(|e| e.context(format!("key {key:?}")))?;
            std::str::from_utf8(payload)
                .map(str::to_owned)
                .map_err(|_| Error::corruption(format!("key {key:?}: value is not UTF-8")))
        })
    }

    /// Delete keys atomically; returns how many existed.
    pub fn kv_delete(&self, keys: &[String]) -> Result<usize> {
        if keys.is_empty() {
            return Err(Error::invalid("nothing to delete: give a key"));
        }
        for k in keys {
            self.check_key(k)
                .map_err(|e| e.context(format!("key {k:?}")))?;
        }
        let cf = self.cf(Cf::Kv);
        let mut existed = 0;
        let mut batch = WriteBatch::default();
        for k in keys {
            if self.db().get_pinned_cf(cf, k.as_bytes())?.is_some() {
                existed += 1;
            }
            batch.delete_cf(cf, k.as_bytes());
        }
        self.write(batch)?;
        Ok(existed)
    }

    /// Keys starting with `prefix`, in key order, after `cursor` (exclusive).
    pub fn kv_scan(&self, prefix: &str, limit: usize, cursor: Option<&str>) -> Result<ScanPage> {
        if limit == 0 || limit > MAX_SCAN_LIMIT {
            return Err(Error::invalid(format!(
                "limit {limit} is out of range 1..={MAX_SCAN_LIMIT}"
            )));
        }
        let start: Vec<u8> = match cursor {
            Some(c) if !c.starts_with(prefix) => {
                return Err(Error::invalid(format!(
                    "cursor {c:?} does not belong to prefix {prefix:?}; pass the next_cursor of the previous page"
                )))
            }
            Some(c) => {
                let mut s = c.as_bytes().to_vec();
                s.push(0); // first key strictly after the cursor
                s
            }
            None => prefix.as_bytes().to_vec(),
        };
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        let iter = self.db().iterator_cf_opt(
            self.cf(Cf::Kv),
            ro,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut entries = Vec::new();
        let mut more = false;
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            let key = String::from_utf8(k.to_vec())
                .map_err(|_| Error::corruption("a stored key is not UTF-8"))?;
            let payload =
                codec::expect(&v, Codec::Raw).map_err(|e| e.context(format!("key {key:?}")))?;
            let value = String::from_utf8_lossy(payload).into_owned();
            entries.push(KvEntry { key, value });
        }
        let next_cursor = if more {
            entries.last().map(|e| e.key.clone())
        } else {
            None
        };
        Ok(ScanPage {
            prefix: prefix.to_string(),
            count: entries.len(),
            entries,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::ManualClock;
    use crate::engine::testutil::open_temp;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn put_get_delete_scan() {
        let (_d, e) = open_temp(ManualClock::new(0));
        e.kv_put_many(&[kv("vector:123", "[0.1, 0.2]")]).unwrap();
        assert_eq!(
            e.kv_get("vector:123").unwrap().as_deref(),
            Some("[0.1, 0.2]")
        );
        for i in 0..25 {
            e.kv_put_many(&[kv(&format!("p:{i:03}"), &i.to_string())])
                .unwrap();
        }
        e.kv_put_many(&[kv("q:1", "x")]).unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = e.kv_scan("p:", 10, cursor.as_deref()).unwrap();
            seen.extend(page.entries.iter().map(|x| x.key.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = (0..25).map(|i| format!("p:{i:03}")).collect();
        assert_eq!(seen, want);
        assert_eq!(e.kv_delete(&["p:000".into(), "nope".into()]).unwrap(), 1);
        assert_eq!(e.kv_get("p:000").unwrap(), None);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let (_d, e) = open_temp(ManualClock::new(0));
        let big = "x".repeat(e.limits().max_key_bytes + 1);
        let err = e
            .kv_put_many(&[kv("good", "1"), kv(&big, "2")])
            .unwrap_err();
        assert!(err.message.contains("entries[1]"), "{err}");
        assert_eq!(
            e.kv_get("good").unwrap(),
            None,
            "batch must be all-or-nothing"
        );
        assert!(e
            .kv_put_many(&[kv("", "1")])
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(e.kv_scan("p", 0, None).is_err());
        assert!(e
            .kv_scan("p", 5, Some("q"))
            .unwrap_err()
            .message
            .contains("cursor"));
    }
}
