use super::*;
use crate::clock::ManualClock;
use crate::engine::testutil::open_temp;
use serde_json::json;

fn input(v: Value) -> Vec<VectorInput> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn upsert_get_delete_round_trip() {
    let (_d, e) = open_temp(ManualClock::new(0));
    e.collection_create("docs", 3, Metric::Cosine).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(&[4.0, 5.0, 6.0]));
    let n = e
        .vector_upsert(
            "docs",
            &input(json!([
                {"id": "a", "vector": [1, 2, 3], "metadata": {"t": "x"}},
                {"id": "b", "vector_b64": b64}
            ])),
        )
        .unwrap();
    assert_eq!(n, 2);
    let (found, missing) = e
        .vector_get(
            "docs",
            &["a".into(), "b".into(), "zz".into()],
            true,
            super::VectorFormat::Floats,
        )
        .unwrap();
    assert_eq!(found[0].vector.as_deref(), Some(&[1.0, 2.0, 3.0][..]));
    assert_eq!(found[0].metadata, Some(json!({"t": "x"})));
    assert_eq!(found[1].vector.as_deref(), Some(&[4.0, 5.0, 6.0][..]));
    assert_eq!(missing, vec!["zz".to_string()]);
    assert_eq!(e.collection_list().unwrap()[0].vectors, Some(2));
    assert_eq!(
        e.vector_delete("docs", &["a".into(), "nope".into()])
            .unwrap(),
        1
    );
    assert_eq!(e.vector_count().unwrap(), 1);
}

#[test]
fn each_bad_item_is_named_and_nothing_is_written() {
    let (_d, e) = open_temp(ManualClock::new(0));
    e.collection_create("c", 2, Metric::Dot).unwrap();
    let nan_b64 =
        base64::engine::general_purpose::STANDARD.encode(codec::f32_to_le(&[1.0, f32::NAN]));
    let long = "i".repeat(e.limits().max_id_bytes + 1);
    let cases = [
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "bad", "vector": [1, 2, 3]}]),
            "vectors[1]",
            "dimension 3",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "n", "vector_b64": nan_b64}]),
            "vectors[1]",
            "NaN",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "big", "vector": [1, 1e39]}]),
            "vectors[1]",
            "finite",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "", "vector": [1, 2]}]),
            "vectors[1]",
            "empty",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": long, "vector": [1, 2]}]),
            "vectors[1]",
            "limit",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "m", "vector": [1, 2], "metadata": [1]}]),
            "vectors[1]",
            "object",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "s", "vector": [1, null]}]),
            "vectors[1]",
            "element 1",
        ),
        (
            json!([{"id": "ok", "vector": [1, 2]}, {"id": "ok", "vector": [1, 2]}]),
            "vectors[1]",
            "twice",
        ),
    ];
    for (items, who, why) in cases {
        let err = e.vector_upsert("c", &input(items.clone())).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::InvalidInput);
        assert!(
            err.message.contains(who) && err.message.contains(why),
            "{items}: {err}"
        );
        assert_eq!(
            e.vector_count().unwrap(),
            0,
            "nothing of a bad batch is written: {items}"
        );
    }
    let too_many: Vec<VectorInput> = (0..=e.limits().max_batch)
        .map(|i| VectorInput {
            id: i.to_string(),
            vector_b64: Some(String::new()),
            ..Default::default()
        })
        .collect();
    assert!(e
        .vector_upsert("c", &too_many)
        .unwrap_err()
        .message
        .contains("max-batch"));
    assert_eq!(
        e.vector_upsert("nope", &input(json!([{"id": "a", "vector": [1, 2]}])))
            .unwrap_err()
            .kind,
        crate::error::ErrorKind::NotFound
    );
    assert!(e.collection_create("a/b", 2, Metric::Dot).is_err());
    assert!(e.collection_create("c", 3, Metric::Dot).is_err());
    assert!(!e.collection_create("c", 2, Metric::Dot).unwrap().1);
}
