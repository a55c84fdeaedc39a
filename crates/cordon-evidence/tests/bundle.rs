//! Bundles from a real store and real snapshots: one verifies with no store, and changing
//! any single byte of it fails, naming where.

use cordon_core::{EventPayload, RunId};
use cordon_evidence::bundle::{export, verify};
use cordon_store::{SnapshotStore, Store};
use std::collections::BTreeMap;

/// A store with one run: a start, a checkpoint of a real workspace, some input, an end.
async fn recorded() -> (
    tempfile::TempDir,
    Store,
    RunId,
    BTreeMap<String, cordon_store::Snapshot>,
) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::os::unix::fs::symlink("main.rs", ws.join("src/link")).unwrap();
    let snaps = SnapshotStore::open(&dir.path().join("snaps")).unwrap();
    let (snap, _) = snaps.take(&ws, &[], None).unwrap();
    let store = Store::open(&dir.path().join("runs.db")).await.unwrap();
    let run = RunId::new();
    let mut log = store.create_run(&run).await.unwrap();
    for p in [
        EventPayload::UserInput {
            text: "line one\nand \"two\" \u{1}é".into(),
        },
        EventPayload::Checkpoint {
            snapshot_id: snap.id.clone(),
            files_read: 1,
            bytes_read: 13,
            skipped: vec![],
            skipped_count: 0,
        },
        EventPayload::RunCompleted {
            output: "done".into(),
            structured: None,
        },
    ] {
        log.append(&p).await.unwrap();
    }
    let listings = BTreeMap::from([(snap.id.clone(), snap)]);
    (dir, store, run, listings)
}

#[tokio::test]
async fn a_bundle_verifies_without_a_store_and_any_changed_byte_is_caught() {
    let (dir, store, run, listings) = recorded().await;
    let key = store.public_key().unwrap().unwrap();
    let bytes = export(&store, &run, &listings).await.unwrap();
    drop(store);
    drop(dir);

    let report = verify(&bytes, Some(&key));
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, 3);
    assert_eq!(report.snapshots, 1);
    assert_eq!(report.signed_by, Some(key.to_text()));
    assert!(report.key_trusted);

    for at in 0..bytes.len() {
        for changed in [bytes[at] ^ 1, b'0', b' '] {
            if changed == bytes[at] {
                continue;
            }
            let mut b = bytes.clone();
            b[at] = changed;
            let report = verify(&b, None);
            assert!(
                !report.ok(),
                "byte {at} ({:?} -> {:?}) changed and the bundle still verified",
                bytes[at] as char,
                changed as char
            );
        }
    }

    // A change inside an event names it.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let at = text.find("line one").unwrap();
    let mut b = bytes.clone();
    b[at] = b'L';
    let p = verify(&b, None).problems[0].to_string();
    assert_eq!(
        p.split(':').next().unwrap(),
        "line 2 (event 0, user_input)",
        "{p}"
    );

    // An edited position names the line it is on, not the position it claims.
    let at = text.find("\"seq\":1,").unwrap() + 6;
    let mut b = bytes.clone();
    b[at] = b'9';
    let p = verify(&b, None).problems[0].to_string();
    assert!(p.starts_with("line 3 (event 9, checkpoint)"), "{p}");

    // Someone trusting another key refuses it.
    let other = tempfile::tempdir().unwrap();
    let other = cordon_store::signing::KeyFile::load_or_create(&other.path().join("k.pem"))
        .map(|k| cordon_store::signing::HeadSigner::public_key(&k))
        .unwrap();
    let p = verify(&bytes, Some(&other)).problems[0].to_string();
    assert!(p.contains("not by the key you trust"), "{p}");
}

#[tokio::test]
async fn a_checkpoint_whose_listing_is_gone_is_named_and_a_tampered_run_is_not_exported() {
    let (dir, store, run, _) = recorded().await;
    let bytes = export(&store, &run, &BTreeMap::new()).await.unwrap();
    let report = verify(&bytes, None);
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.missing_snapshots.len(), 1);

    // The store edited under it: export refuses to vouch for it.
    assert!(edit_first_payload(&dir.path().join("runs.db")));
    let err = export(&store, &run, &BTreeMap::new()).await.unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// Rewrites the first stored payload with Python's sqlite3, as someone with the file would.
fn edit_first_payload(db: &std::path::Path) -> bool {
    let sql = "DROP TRIGGER events_append_only_update; \
               UPDATE events SET payload = '{\"text\":\"forged\"}' WHERE seq = 0;";
    std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
        ])
        .arg(db)
        .arg(sql)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
