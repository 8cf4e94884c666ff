//! BM25 relevance for `memory_search` (v3), normalised to 0..=1 so the
//! `threshold` parameter means the same thing for every store size.
//!
//! Each query term contributes `idf · tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))`;
//! the score is the sum divided by `Σ idf` over the query terms, i.e. 1.0
//! for a document of average length that contains every query term once,
//! and capped at 1.0.

use std::collections::{HashMap, HashSet};

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Lower-cased alphanumeric tokens (`swarm/storage/status` → swarm, storage, status).
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
        .collect()
}

/// Score every document against the query; returns (doc index, raw, normalised).
pub fn rank(query: &str, docs: &[Vec<String>]) -> Vec<(usize, f64, f64)> {
    let terms: Vec<String> = {
        let mut seen = HashSet::new();
        tokenize(query)
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect()
    };
    if terms.is_empty() || docs.is_empty() {
        return Vec::new();
    }
    let n = docs.len() as f64;
    let avgdl = (docs.iter().map(|d| d.len()).sum::<usize>() as f64 / n).max(1.0);
    let df: Vec<f64> = terms
        .iter()
        .map(|t| docs.iter().filter(|d| d.iter().any(|w| w == t)).count() as f64)
        .collect();
    // BM25+ style idf that stays positive even for terms in every document.
    let idf: Vec<f64> = df
        .iter()
        .map(|df| ((n - df + 0.5) / (df + 0.5) + 1.0).ln())
        .collect();
    let idf_sum: f64 = idf.iter().sum();
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let mut tf: HashMap<&str, f64> = HashMap::new();
        for w in doc {
            *tf.entry(w.as_str()).or_default() += 1.0;
        }
        let dl = doc.len() as f64;
        let mut raw = 0.0;
        for (t, idf) in terms.iter().zip(&idf) {
            if let Some(f) = tf.get(t.as_str()) {
                raw += idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * dl / avgdl));
            }
        }
        if raw > 0.0 {
            out.push((i, raw, (raw / idf_sum).min(1.0)));
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_relevant_first_and_ignores_unrelated() {
        let docs: Vec<Vec<String>> = [
            "rocksdb compaction schedule nightly",
            "the weather is lovely today",
            "rocksdb snapshot backup to s3",
            "compaction compaction compaction of rocksdb levels",
        ]
        .iter()
        .map(|d| tokenize(d))
        .collect();
        let r = rank("rocksdb compaction", &docs);
        let order: Vec<usize> = r.iter().map(|x| x.0).collect();
        assert!(!order.contains(&1), "unrelated doc must not match");
        assert_eq!(order.len(), 3);
        assert!(order[..2].contains(&0) && order[..2].contains(&3), "{r:?}");
        assert_eq!(order[2], 2, "one term only ranks last: {r:?}");
        assert!(r.iter().all(|x| x.2 > 0.0 && x.2 <= 1.0));
        assert!(rank("", &docs).is_empty());
    }

    #[test]
    fn tokenizer_splits_paths() {
        assert_eq!(
            tokenize("swarm/storage/Status"),
            vec!["swarm", "storage", "status"]
        );
    }
}
