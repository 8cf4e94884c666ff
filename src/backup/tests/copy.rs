//! `backup copy` to a second location.

use serde_json::{json, Value};

use super::{params, svc, walk, Svc};

async fn copy(s: &Svc, to: &str) -> crate::error::Result<Value> {
    s.service.clone().copy(params(json!({"to": to}))).await
}

async fn names_in(s: &Svc, location: &str) -> Vec<String> {
    s.names_at(json!({"location": location})).await
}

/// Two backups: one with files, one WAL-based on it.
async fn two_backups(s: &Svc) {
    for round in 0..2 {
        s.put(round * 400..round * 400 + 400, "a", 200);
        s.slot.get().unwrap().flush().unwrap();
    }
    s.create(json!({"name": "b0"})).await.unwrap();
    s.put(0..5, "b", 100);
    let b1 = s.create(json!({"name": "b1"})).await.unwrap();
    assert_eq!(b1["method"], "wal", "{b1}");
}

#[tokio::test]
async fn copies_what_the_second_location_lacks_and_then_nothing() {
    let s = svc();
    two_backups(&s).await;
    let second = s.dir.path().join("second");
    let to = format!("file://{}", second.display());
    let r = copy(&s, &to).await.unwrap();
    assert_eq!(r["copied_backups"], json!(["b0", "b1"]), "{r}");
    assert!(r["copied_segments"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(names_in(&s, &to).await, ["b0", "b1"]);
    for name in ["b0", "b1"] {
        let v = s
            .service
            .clone()
            .verify(params(
                json!({"location": to, "name": name, "read_data": true}),
            ))
            .await
            .unwrap();
        assert_eq!(v["ok"], true, "{v}");
    }
    // The copy restores on its own, WAL-based backup included.
    let out = s.dir.path().join("r/db");
    s.service
        .clone()
        .restore(params(
            json!({"from": to, "name": "b1", "to": out.display().to_string()}),
        ))
        .await
        .unwrap();
    assert_eq!(super::read_store(&out.join("db"), &s.config), s.live());
    let again = copy(&s, &to).await.unwrap();
    assert_eq!(
        (
            &again["copied_backups"],
            &again["copied_objects"],
            &again["copied_bytes"]
        ),
        (&json!([]), &json!(0), &json!(0)),
        "{again}"
    );
}

#[tokio::test]
async fn an_interrupted_copy_shows_no_backup_there_and_the_next_one_completes() {
    let s = svc();
    two_backups(&s).await;
    let second = s.dir.path().join("second");
    let to = format!("file://{}", second.display());
    let objects = s.stored("objects").len();
    assert!(objects > 3, "{objects}");
    // wal/HISTORY, then two objects; then every put fails.
    s.faults.fail_puts_after(3);
    let e = copy(&s, &to).await.unwrap_err();
    assert!(e.message.contains("injected"), "{e}");
    assert!(names_in(&s, &to).await.is_empty(), "manifests go last");
    assert!(walk(&second.join("backups")).is_empty());
    assert_eq!(walk(&second.join("objects")).len(), 2);

    s.faults.heal();
    let r = copy(&s, &to).await.unwrap();
    assert_eq!(r["copied_backups"], json!(["b0", "b1"]), "{r}");
    assert_eq!(
        r["copied_objects"].as_u64(),
        Some(objects as u64 - 2),
        "{r}"
    );
    assert_eq!(names_in(&s, &to).await, ["b0", "b1"]);
    let v = s
        .service
        .clone()
        .verify(params(
            json!({"location": to, "name": "b1", "read_data": true}),
        ))
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
