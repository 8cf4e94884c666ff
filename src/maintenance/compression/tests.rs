use std::sync::Arc;

use rocksdb::WriteBatch;
use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::engine::{composite_key, Metric, Storage, VectorInput};
use crate::quant::Quantization;

fn open(dir: &std::path::Path) -> Arc<Engine> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        sync: "never".into(),
        ..Config::default()
    };
    Engine::open(&config, Arc::new(ManualClock::new(0))).unwrap()
}

/// The dev set's texts as metadata records, the shape the daemon stores.
fn load_texts(e: &Engine) -> usize {
    let texts = std::fs::read_to_string(crate::npy::minilm_dev().join("base.txt")).unwrap();
    let mut b = WriteBatch::default();
    let mut n = 0;
    for (i, t) in texts.lines().enumerate() {
        let v = json!({"text": t, "source": "pypi", "row": i});
        b.put_cf(
            e.cf(Cf::Metadata),
            composite_key("docs", &format!("doc-{i:06}")),
            v.to_string(),
        );
        n += 1;
    }
    e.write(b).unwrap();
    e.flush().unwrap();
    n
}

fn scope(family: Cf) -> Scope<'static> {
    Scope {
        family: Some(family),
        collection: None,
        sample_bytes: 64 << 20,
    }
}

#[test]
fn the_ratio_after_a_rewrite_is_within_10_percent_of_the_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let n = load_texts(&e);
    assert!(n >= 10_000, "{n}");
    let progress = Progress::default();
    let report = analyze(&e, &scope(Cf::Metadata), &progress, &|| false).unwrap();
    let family = &report.families[0];
    assert_eq!(family.sample.as_ref().unwrap().entries, n as u64);
    let predicted = |name: &str| {
        family
            .candidates
            .iter()
            .find(|c| c.compression == name)
            .unwrap()
            .predicted_ratio
    };
    // What each spec actually stores differs (none < lz4 < zstd:9), so a
    // prediction that ignored the spec could not pass for all of them.
    assert!(predicted("none") < predicted("lz4") && predicted("lz4") < predicted("zstd:9"));
    for name in ["none", "lz4", "snappy", "zstd:3", "zstd:9", "lz4+dict"] {
        e.set_compression(Cf::Metadata, CompressionSpec::parse(name).unwrap())
            .unwrap();
        let r = rewrite(&e, Cf::Metadata, &progress, &|| false).unwrap();
        assert_eq!(r.compression, name);
        let actual = e.compression_figures(Cf::Metadata);
        assert_eq!(actual.entries, n as u64, "{name}: every entry in the files");
        let error = actual.ratio() / predicted(name) - 1.0;
        eprintln!(
            "metadata {name}: predicted {:.3} actual {:.3} ({:+.1}%), encode {:?} MB/s",
            predicted(name),
            actual.ratio(),
            error * 100.0,
            family
                .candidates
                .iter()
                .find(|c| c.compression == name)
                .unwrap()
                .encode_mb_s
        );
        assert!(
            error.abs() < 0.10,
            "{name}: actual {:.3} vs predicted {:.3} ({:+.1}%)",
            actual.ratio(),
            predicted(name),
            error * 100.0
        );
    }
    // The dictionary pays on the dev set's texts (short, alike records),
    // and is what the analysis recommends for them.
    assert!(predicted("lz4+dict") > predicted("zstd:3") * 1.03);
    let recommended = family.recommended.clone().unwrap_or_default();
    assert!(recommended.ends_with("+dict"), "{family:?}");
}

#[test]
fn near_random_values_are_predicted_and_stored_raw() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut b = WriteBatch::default();
    for i in 0..3000 {
        let v = blocks::noise(&mut x, 1536);
        b.put_cf(e.cf(Cf::Kv), format!("k{i:06}"), v);
    }
    e.write(b).unwrap();
    let progress = Progress::default();
    let report = analyze(&e, &scope(Cf::Kv), &progress, &|| false).unwrap();
    let lz4 = report.families[0]
        .candidates
        .iter()
        .find(|c| c.compression == "lz4")
        .unwrap()
        .clone();
    assert!(lz4.blocks_stored_raw > 0, "{lz4:?}");
    e.set_compression(Cf::Kv, CompressionSpec::parse("lz4").unwrap())
        .unwrap();
    rewrite(&e, Cf::Kv, &progress, &|| false).unwrap();
    let f = e.compression_figures(Cf::Kv);
    assert!(f.blocks_rejected > 0, "{f:?}");
    assert!(
        (f.ratio() / lz4.predicted_ratio - 1.0).abs() < 0.10,
        "{f:?} vs {lz4:?}"
    );
}

#[test]
fn quantization_candidates_trade_size_for_recall_on_real_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let base = crate::npy::load(&crate::npy::minilm_dev().join("base.npy")).unwrap();
    e.collection_create_with("docs", base.dim, Metric::Cosine, Storage::default())
        .unwrap();
    let items: Vec<VectorInput> = (0..1500)
        .map(|i| {
            serde_json::from_value(json!({"id": format!("v{i:05}"), "vector": base.row(i)}))
                .unwrap()
        })
        .collect();
    e.vector_upsert("docs", &items).unwrap();
    let progress = Progress::default();
    let report = analyze(&e, &scope(Cf::Vectors), &progress, &|| false).unwrap();
    let c = &report.collections[0];
    assert_eq!((c.collection.as_str(), c.vectors_sampled), ("docs", 1500));
    let get = |q: Quantization| c.candidates.iter().find(|x| x.quantization == q).unwrap();
    let (none, int8, int4, binary) = (
        get(Quantization::None),
        get(Quantization::Int8),
        get(Quantization::Int4),
        get(Quantization::Binary),
    );
    assert_eq!(none.recall_at_10, 1.0);
    assert!((none.predicted_ratio - 1.0).abs() < 0.01, "{none:?}");
    assert!(int8.recall_at_10 >= 0.97, "{int8:?}");
    assert!(
        int8.predicted_ratio > 3.5 && int8.predicted_ratio < 4.2,
        "{int8:?}"
    );
    assert!(
        int4.predicted_ratio > int8.predicted_ratio * 1.6,
        "{int4:?}"
    );
    assert!(int4.recall_at_10 < int8.recall_at_10, "{int4:?} {int8:?}");
    assert!(binary.recall_at_10 < int4.recall_at_10, "{binary:?}");
}

#[test]
fn a_cancelled_rewrite_stops_and_leaves_every_value_readable() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let n = load_texts(&e);
    e.set_compression(Cf::Metadata, CompressionSpec::zstd(9))
        .unwrap();
    let err = rewrite(&e, Cf::Metadata, &Progress::default(), &|| true).unwrap_err();
    assert_eq!(err.kind, crate::error::ErrorKind::Cancelled, "{err}");
    let mut it = e
        .db()
        .iterator_cf(e.cf(Cf::Metadata), rocksdb::IteratorMode::Start);
    let mut count = 0;
    for kv in &mut it {
        let (_, v) = kv.unwrap();
        serde_json::from_slice::<serde_json::Value>(&v).unwrap();
        count += 1;
    }
    assert_eq!(count, n);
}
