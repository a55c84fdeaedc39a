//! Tampering with a real store file, the way someone with the file would: each edit must
//! be caught by `verify_run`, and none may make reading the store panic.

use cordon_core::event::{Event, GENESIS_HASH, canonical_json};
use cordon_core::{EventPayload, RunId};
use cordon_store::verify::verify_run;
use cordon_store::{Store, StoreErrorKind, StoredRow};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};

struct Lab {
    dir: tempfile::TempDir,
    runs: Vec<RunId>,
}

impl Lab {
    fn db(&self) -> PathBuf {
        self.dir.path().join("runs.db")
    }
}

/// A store with two runs of five events each.
async fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("runs.db")).await.unwrap();
    let mut runs = Vec::new();
    for r in 0..2 {
        let id = RunId::new();
        let mut log = store.create_run(&id).await.unwrap();
        for i in 0..5 {
            log.append(&EventPayload::UserInput {
                text: format!("run {r} event {i}"),
            })
            .await
            .unwrap();
        }
        runs.push(id);
    }
    store.close().await;
    Lab { dir, runs }
}

/// A raw connection with the append-only triggers dropped, as an attacker would.
async fn raw(db: &Path) -> SqlitePool {
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for t in ["events_append_only_update", "events_append_only_delete"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool
}

async fn verdict(lab: &Lab, run: &RunId) -> cordon_store::verify::Verdict {
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    verify_run(&store, run).await.unwrap()
}

async fn all_rows(
    pool: &SqlitePool,
    run: &RunId,
) -> Vec<(i64, String, String, String, String, String)> {
    sqlx::query_as(
        "SELECT seq, ts, kind, payload, prev_hash, hash FROM events WHERE run_id = ? ORDER BY seq",
    )
    .bind(run.as_str())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_untouched_store_verifies_with_its_heads() {
    let lab = lab().await;
    for run in &lab.runs {
        let v = verdict(&lab, run).await;
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.events, 5);
        assert!(v.head_expected && v.head.is_some());
    }
}

#[tokio::test]
async fn deleting_events_at_the_end_is_caught() {
    let lab = lab().await;
    let pool = raw(&lab.db()).await;
    sqlx::query("DELETE FROM events WHERE run_id = ? AND seq >= 3")
        .bind(lab.runs[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let v = verdict(&lab, &lab.runs[0]).await;
    assert!(!v.ok());
    assert!(
        v.problems[0].reason.contains("5 events were recorded"),
        "{:?}",
        v.problems
    );
    assert!(
        verdict(&lab, &lab.runs[1]).await.ok(),
        "the other run is untouched"
    );
}

#[tokio::test]
async fn deleting_a_whole_run_or_its_first_event_is_caught() {
    let lab = lab().await;
    let pool = raw(&lab.db()).await;
    sqlx::query("DELETE FROM events WHERE run_id = ?")
        .bind(lab.runs[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE run_id = ? AND seq = 0")
        .bind(lab.runs[1].as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    for run in &lab.runs {
        let found = store.resolve(run.as_str()).await.unwrap();
        assert_eq!(&found, run, "the run is still found through its head");
        let v = verify_run(&store, run).await.unwrap();
        assert!(!v.ok(), "{run}");
    }
    let v = verify_run(&store, &lab.runs[0]).await.unwrap();
    assert!(
        v.problems[0].reason.contains("the run was deleted"),
        "{:?}",
        v.problems
    );
    assert_eq!(store.run_ids().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_appended_forged_event_is_caught_even_with_a_valid_hash() {
    let lab = lab().await;
    let pool = raw(&lab.db()).await;
    let rows = all_rows(&pool, &lab.runs[0]).await;
    let last_hash = rows.last().unwrap().5.clone();
    let forged = Event::new(
        &lab.runs[0],
        5,
        "2026-12-01T00:00:00.000Z".into(),
        &EventPayload::RunCompleted {
            output: "forged".into(),
            structured: None,
        },
        &last_hash,
    );
    insert(&pool, &forged).await;
    pool.close().await;
    let v = verdict(&lab, &lab.runs[0]).await;
    assert!(!v.ok());
    assert!(
        v.problems[0].reason.contains("added outside cordon"),
        "{:?}",
        v.problems
    );
}

async fn insert(pool: &SqlitePool, e: &Event) {
    sqlx::query("INSERT INTO events (run_id, seq, ts, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(e.run_id.as_str())
        .bind(e.seq as i64)
        .bind(&e.ts)
        .bind(&e.kind)
        .bind(canonical_json(&e.payload))
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_moved_to_another_run_is_caught_in_both() {
    let lab = lab().await;
    let pool = raw(&lab.db()).await;
    sqlx::query("UPDATE events SET run_id = ?, seq = 5 WHERE run_id = ? AND seq = 4")
        .bind(lab.runs[1].as_str())
        .bind(lab.runs[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(
        !verdict(&lab, &lab.runs[0]).await.ok(),
        "the source lost its last event"
    );
    assert!(
        !verdict(&lab, &lab.runs[1]).await.ok(),
        "the target gained one"
    );
}

#[tokio::test]
async fn a_chain_rehashed_end_to_end_is_caught() {
    let lab = lab().await;
    let run = &lab.runs[0];
    rewrite_run(&lab, run).await;
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    cordon_core::verify_chain(&store.events(run).await.unwrap())
        .expect("the rewritten chain is internally consistent");
    let v = verify_run(&store, run).await.unwrap();
    assert!(!v.ok());
    assert!(
        v.problems[0].reason.contains("rewritten"),
        "{:?}",
        v.problems
    );
}

#[tokio::test]
async fn a_truncated_wal_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let store = Store::open(&db).await.unwrap();
    let run = RunId::new();
    let mut log = store.create_run(&run).await.unwrap();
    for i in 0..6 {
        log.append(&EventPayload::UserInput {
            text: format!("event {i} {}", "x".repeat(2000)),
        })
        .await
        .unwrap();
    }
    // While the writer is still open (as after a crash), copy the database, its WAL and
    // the heads; then cut the WAL copy short, losing its last transactions.
    let copy = copy_live_store(dir.path());
    let wal = copy.join("live.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    assert!(len > 8192, "the events are in the WAL ({len} bytes)");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 6000)
        .unwrap();
    let copied = Store::open_read_only(&copy.join("live.db")).await.unwrap();
    let v = verify_run(&copied, &run).await.unwrap();
    assert!(v.events < 6, "the WAL cut lost events ({})", v.events);
    assert!(!v.ok(), "and verify notices: {v:?}");
    drop(log);
}

/// A store left with a WAL by a writer that stopped, where SQLite cannot make the `-shm`
/// file it reads a WAL with (a full disk; here a FIFO stands in the file's place, which
/// opens but cannot be sized, as on a full disk): reading still works, and sees what the WAL
/// holds.
#[tokio::test]
async fn a_wal_is_read_where_no_shared_memory_file_can_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let store = Store::open(&db).await.unwrap();
    let run = RunId::new();
    let mut log = store.create_run(&run).await.unwrap();
    for i in 0..3 {
        log.append(&EventPayload::UserInput {
            text: format!("event {i}"),
        })
        .await
        .unwrap();
    }
    let copy = copy_live_store(dir.path());
    let fifo = std::process::Command::new("mkfifo")
        .arg(copy.join("live.db-shm"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let copied = Store::open_read_only(&copy.join("live.db"))
        .await
        .expect("a WAL store opens for reading without its -shm file");
    let v = verify_run(&copied, &run).await.unwrap();
    assert_eq!(v.events, 3, "the WAL's events are read: {v:?}");
    drop(log);
}

/// Copies `dir`'s `live.db`, its WAL and its heads (but not the `-shm` file) into
/// `dir/copy`, as a writer that is still open (or crashed) left them.
fn copy_live_store(dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("copy");
    std::fs::create_dir(&copy).unwrap();
    for name in ["live.db", "live.db-wal"] {
        std::fs::copy(dir.join(name), copy.join(name)).unwrap();
    }
    copy_dir(&dir.join("live.db.heads"), &copy.join("live.db.heads"));
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test]
async fn bad_bytes_in_stored_rows_are_damage_not_a_panic() {
    let lab = lab().await;
    let pool = raw(&lab.db()).await;
    // Invalid UTF-8 in a payload and in a timestamp, and a payload that is not JSON.
    sqlx::query("UPDATE events SET payload = CAST(X'7B22746578745F223A2022FF227D' AS TEXT) WHERE run_id = ? AND seq = 1")
        .bind(lab.runs[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET ts = CAST(X'32303236FE' AS TEXT) WHERE run_id = ? AND seq = 2")
        .bind(lab.runs[0].as_str())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET payload = 'not json' WHERE run_id = ? AND seq = 3")
        .bind(lab.runs[1].as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let listed = store.list_runs(None, 10).await.unwrap();
    assert_eq!(listed.len(), 2, "both runs are still listed");
    let rows = store.rows(&lab.runs[0]).await.unwrap();
    assert_eq!(rows.len(), 5);
    let damaged: Vec<u64> = rows
        .iter()
        .filter_map(|r| match r {
            StoredRow::Damaged { seq, .. } => *seq,
            StoredRow::Event(_) => None,
        })
        .collect();
    assert_eq!(damaged, [1, 2]);
    let err = store.events(&lab.runs[0]).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Damaged, "{err}");
    for run in &lab.runs {
        let v = verify_run(&store, run).await.unwrap();
        assert!(!v.ok());
    }
    let v = verify_run(&store, &lab.runs[1]).await.unwrap();
    assert!(
        v.problems[0].reason.contains("not JSON"),
        "{:?}",
        v.problems
    );
}

#[tokio::test]
async fn a_truncated_or_foreign_file_is_refused_not_taken_for_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for result in [
        Store::open(&empty).await.err(),
        Store::open_read_only(&empty).await.err(),
    ] {
        let err = result.expect("refused");
        assert_eq!(err.kind(), StoreErrorKind::Damaged, "{err}");
        assert!(err.to_string().contains("0 bytes"), "{err}");
    }
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
    let err = Store::open_read_only(&garbage)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), StoreErrorKind::Damaged, "{err}");
    let missing = Store::open_read_only(&dir.path().join("missing.db"))
        .await
        .err()
        .expect("refused");
    assert_eq!(missing.kind(), StoreErrorKind::BadInput);
    assert!(
        !dir.path().join("missing.db").exists(),
        "reading created nothing"
    );
}

#[tokio::test]
async fn reading_a_store_changes_nothing_in_it() {
    let lab = lab().await;
    // The writer's connections close in the background; its last one folds the WAL in.
    let wal = lab.dir.path().join("runs.db-wal");
    for _ in 0..200 {
        if std::fs::metadata(&wal).map_or(true, |m| m.len() == 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = std::fs::read(lab.db()).unwrap();
    // Read-only in the sense that matters: nothing about the file changes.
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    assert_eq!(store.list_runs(None, 10).await.unwrap().len(), 2);
    assert!(store.create_run(&RunId::new()).await.is_err());
    store.close().await;
    assert_eq!(std::fs::read(lab.db()).unwrap(), before);
}

/// Rewrites a run's head record as someone with the files would: a consistent count and
/// last hash, and whatever key and signature lines they choose.
fn forge_head(lab: &Lab, run: &RunId, count: u64, last_hash: &str, key: &str, sig: &str) {
    forge_head_pending(lab, run, count, last_hash, "-", key, sig);
}

/// [`forge_head`] with a pending line of one's choosing.
fn forge_head_pending(
    lab: &Lab,
    run: &RunId,
    count: u64,
    last_hash: &str,
    pending: &str,
    key: &str,
    sig: &str,
) {
    let mut text = format!(
        "cordon-head 2\ncount {count}\nhash {last_hash}\npending {pending}\nkey {key}\nsig {sig}\n"
    )
    .into_bytes();
    text.resize(1023, b' ');
    text.push(b'\n');
    let path = lab.dir.path().join("runs.db.heads").join(run.as_str());
    std::fs::write(path, text).unwrap();
}

/// The run's events rewritten and re-hashed end to end; returns the new last hash.
async fn rewrite_run(lab: &Lab, run: &RunId) -> String {
    let pool = raw(&lab.db()).await;
    let rows = all_rows(&pool, run).await;
    sqlx::query("DELETE FROM events WHERE run_id = ?")
        .bind(run.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let mut prev = GENESIS_HASH.to_string();
    for (seq, ts, ..) in rows {
        let e = Event::new(
            run,
            seq as u64,
            ts,
            &EventPayload::UserInput {
                text: format!("forged {seq}"),
            },
            &prev,
        );
        prev = e.hash.clone();
        insert(&pool, &e).await;
    }
    pool.close().await;
    prev
}

#[tokio::test]
async fn heads_are_signed_and_a_consistent_rewrite_of_events_and_head_is_caught() {
    use cordon_store::signing::{HeadSigner, KeyFile, PublicKey, head_message};
    let lab = lab().await;
    let run = &lab.runs[0];
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let key = store.public_key().unwrap().expect("the store made a key");
    let v = verify_run(&store, run).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.signed_by, Some(key.to_text()));
    let old = v.head.unwrap().signature.unwrap();

    // A third party checks the head with OpenSSL alone.
    let dir = lab.dir.path();
    std::fs::write(
        dir.join("head.json"),
        head_message(run.as_str(), v.events, v.last_hash.as_deref().unwrap()),
    )
    .unwrap();
    std::fs::write(dir.join("head.sig"), hex::decode(&old.signature).unwrap()).unwrap();
    std::fs::write(dir.join("pub.pem"), key.to_pem()).unwrap();
    let openssl = |sig: &str| {
        std::process::Command::new("openssl")
            .args([
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
            ])
            .args(["-in", "head.json", "-sigfile", sig])
            .current_dir(dir)
            .output()
            .expect("openssl is installed by scripts/test")
    };
    assert!(openssl("head.sig").status.success());
    // The store's own key file is one OpenSSL reads (PKCS#8 v1), and its public half is the
    // store's key.
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(lab.dir.path().join("runs.db.signing-key.pem"))
        .output()
        .unwrap();
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
    assert_eq!(
        PublicKey::parse(&String::from_utf8_lossy(&public.stdout)).unwrap(),
        key
    );
    let mut bad = hex::decode(&old.signature).unwrap();
    bad[0] ^= 1;
    std::fs::write(dir.join("bad.sig"), bad).unwrap();
    assert!(!openssl("bad.sig").status.success());

    // Events and head rewritten together, the old signature kept.
    let last = rewrite_run(&lab, run).await;
    forge_head(&lab, run, 5, &last, &old.key, &old.signature);
    let problems = |v: cordon_store::verify::Verdict| {
        assert!(!v.ok());
        v.problems
            .iter()
            .map(|p| p.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let p = problems(verify_run(&store, run).await.unwrap());
    assert!(p.contains("signature does not verify"), "{p}");

    // The signature removed.
    forge_head(&lab, run, 5, &last, "-", "-");
    let p = problems(verify_run(&store, run).await.unwrap());
    assert!(p.contains("not signed"), "{p}");

    // Signed with the forger's own key: valid, but not the store's.
    let theirs = KeyFile::load_or_create(&dir.join("theirs.pem")).unwrap();
    let sig = theirs
        .sign(head_message(run.as_str(), 5, &last).as_bytes())
        .unwrap();
    forge_head(
        &lab,
        run,
        5,
        &last,
        &theirs.public_key().to_text(),
        &hex::encode(sig),
    );
    let p = problems(verify_run(&store, run).await.unwrap());
    assert!(p.contains("not by the trusted key"), "{p}");
    // Someone trusting the forger's key would accept it: the trust is in the key.
    let forged = cordon_store::verify::verify_run_with(&store, run, Some(&theirs.public_key()))
        .await
        .unwrap();
    assert!(forged.ok(), "{:?}", forged.problems);

    // The untouched run, checked against another key, is refused.
    let other = PublicKey::parse(&theirs.public_key().to_text()).unwrap();
    let p = problems(
        cordon_store::verify::verify_run_with(&store, &lab.runs[1], Some(&other))
            .await
            .unwrap(),
    );
    assert!(p.contains("not by the trusted key"), "{p}");
}

#[tokio::test]
async fn a_rewrite_that_pretends_the_run_predates_signing_is_caught() {
    let lab = lab().await;
    let run = &lab.runs[0];
    let last = rewrite_run(&lab, run).await;
    // Everything in the store that could say "this run is older than signing": the meta
    // markers moved past it, the head replaced by an unsigned one of the old format, or gone.
    let pool = SqlitePool::connect(&format!("sqlite://{}", lab.db().display()))
        .await
        .unwrap();
    sqlx::query("UPDATE meta SET value = 'ffffffff' WHERE key IN ('heads_since', 'signed_since')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let head = lab.dir.path().join("runs.db.heads").join(run.as_str());
    let mut v1 = format!("cordon-head 1\ncount 5\nhash {last}\npending -\n").into_bytes();
    v1.resize(256, b' ');
    std::fs::write(&head, &v1).unwrap();
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let v = verify_run(&store, run).await.unwrap();
    let p = format!("{:?}", v.problems);
    assert!(!v.ok() && p.contains("not signed"), "{p}");
    std::fs::remove_file(&head).unwrap();
    let v = verify_run(&store, run).await.unwrap();
    let p = format!("{:?}", v.problems);
    assert!(!v.ok() && p.contains("no head record"), "{p}");
    assert!(
        verify_run(&store, &lab.runs[1]).await.unwrap().ok(),
        "the other run is intact"
    );
}

#[tokio::test]
async fn runs_recorded_before_the_store_had_a_key_are_signed_when_it_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    // A store whose runs were written before heads and keys: events only.
    let store = Store::open(&db).await.unwrap();
    store.close().await;
    let pool = raw(&db).await;
    sqlx::query("DELETE FROM meta")
        .execute(&pool)
        .await
        .unwrap();
    let old: Vec<RunId> = (0..2).map(|_| RunId::new()).collect();
    for run in &old {
        let mut prev = GENESIS_HASH.to_string();
        for seq in 0..3 {
            let e = Event::new(
                run,
                seq,
                "2026-01-01T00:00:00.000Z".into(),
                &EventPayload::UserInput {
                    text: format!("old {seq}"),
                },
                &prev,
            );
            prev = e.hash.clone();
            insert(&pool, &e).await;
        }
    }
    pool.close().await;
    let store = Store::open(&db).await.unwrap();
    for run in &old {
        let v = verify_run(&store, run).await.unwrap();
        assert!(
            v.ok() && v.signed_by.is_none(),
            "no key yet: {:?}",
            v.problems
        );
    }
    assert!(store.public_key().unwrap().is_none());
    // The first append makes the key, and signs the earlier runs' heads as they are.
    let mut log = store.open_run(&old[0]).await.unwrap();
    log.append(&EventPayload::UserInput { text: "new".into() })
        .await
        .unwrap();
    let key = store.public_key().unwrap().expect("made").to_text();
    for run in &old {
        let v = verify_run(&store, run).await.unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.signed_by.as_deref(), Some(key.as_str()));
    }
}

#[tokio::test]
async fn events_past_the_signed_head_need_a_signed_pending_append() {
    let lab = lab().await;
    let run = &lab.runs[0];
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let old = verify_run(&store, run).await.unwrap();
    let head = old.head.clone().unwrap();
    let sig = head.signature.clone().unwrap();
    // A whole rewrite, its new last hash put in the pending line beside the old signature.
    let last = rewrite_run(&lab, run).await;
    forge_head_pending(
        &lab,
        run,
        head.count,
        &head.last_hash,
        &format!("{} {last}", head.count),
        &sig.key,
        &sig.signature,
    );
    let v = verify_run(&store, run).await.unwrap();
    assert!(!v.ok(), "a rewrite is not a pending append");

    // An event appended outside cordon, named as a pending append: not signed, so refused,
    // by verify and by a resume alike.
    let lab = self::lab().await;
    let run = &lab.runs[0];
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let head = verify_run(&store, run).await.unwrap().head.unwrap();
    let sig = head.signature.clone().unwrap();
    let pool = raw(&lab.db()).await;
    let e = Event::new(
        run,
        head.count,
        "2026-12-01T00:00:00.000Z".into(),
        &EventPayload::UserInput {
            text: "forged".into(),
        },
        &head.last_hash,
    );
    insert(&pool, &e).await;
    pool.close().await;
    forge_head_pending(
        &lab,
        run,
        head.count,
        &head.last_hash,
        &format!("{} {}", head.count + 1, e.hash),
        &sig.key,
        &sig.signature,
    );
    let v = verify_run(&store, run).await.unwrap();
    let p = format!("{:?}", v.problems);
    assert!(!v.ok() && p.contains("no signature covers them"), "{p}");
    let writable = Store::open(&lab.db()).await.unwrap();
    let err = writable.open_run(run).await.err().expect("refused");
    assert!(
        err.to_string().contains("no signature covers them"),
        "{err}"
    );

    // A crash after the insert, before the head moved, is a pending append cordon signed:
    // it verifies and a resume settles it.
    let lab = self::lab().await;
    let run = &lab.runs[0];
    let writable = Store::open(&lab.db()).await.unwrap();
    let mut log = writable.open_run(run).await.unwrap();
    log.append(&EventPayload::UserInput { text: "six".into() })
        .await
        .unwrap();
    let after = writable.head(run).unwrap().unwrap();
    assert!(verify_run(&writable, run).await.unwrap().ok());
    // Put the head back to where it was before that append, with the append pending.
    let signer = writable.signer().unwrap();
    let message =
        cordon_store::signing::head_message(run.as_str(), 5, &head_hash_at(&lab, run, 4).await);
    let old_sig = hex::encode(signer.sign(message.as_bytes()).unwrap());
    forge_head_pending(
        &lab,
        run,
        5,
        &head_hash_at(&lab, run, 4).await,
        &format!(
            "6 {} {}",
            after.last_hash,
            after.signature.as_ref().unwrap().signature
        ),
        &signer.public_key().to_text(),
        &old_sig,
    );
    let v = verify_run(&writable, run).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    writable
        .open_run(run)
        .await
        .expect("a signed pending append settles");
}

/// The hash of event `seq` of `run`.
async fn head_hash_at(lab: &Lab, run: &RunId, seq: i64) -> String {
    let pool = SqlitePool::connect(&format!("sqlite://{}", lab.db().display()))
        .await
        .unwrap();
    let rows = all_rows(&pool, run).await;
    pool.close().await;
    rows.into_iter().find(|r| r.0 == seq).unwrap().5
}

#[tokio::test]
async fn stored_text_must_be_what_the_hash_covers_and_a_lost_key_is_not_replaced() {
    let lab = lab().await;
    let run = &lab.runs[0];
    // A duplicate key: the parsed value (last key wins) still hashes right, but a reader of
    // the file may take the first.
    let pool = raw(&lab.db()).await;
    sqlx::query(
        "UPDATE events SET payload = '{\"text\":\"rm -rf /\",\"text\":\"run 0 event 2\"}' WHERE run_id = ? AND seq = 2",
    )
    .bind(run.as_str())
    .execute(&pool)
    .await
    .unwrap();
    // An emptied run, with a head that says it never began.
    sqlx::query("DELETE FROM events WHERE run_id = ?")
        .bind(lab.runs[1].as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let genesis = GENESIS_HASH;
    let mut empty =
        format!("cordon-head 2\ncount 0\nhash {genesis}\npending -\nkey -\nsig -\n").into_bytes();
    empty.resize(1024, b' ');
    std::fs::write(
        lab.dir
            .path()
            .join("runs.db.heads")
            .join(lab.runs[1].as_str()),
        &empty,
    )
    .unwrap();
    let store = Store::open_read_only(&lab.db()).await.unwrap();
    let v = verify_run(&store, run).await.unwrap();
    let p = format!("{:?}", v.problems);
    assert!(
        !v.ok() && p.contains("not stored as cordon writes it"),
        "{p}"
    );
    let v = verify_run(&store, &lab.runs[1]).await.unwrap();
    let p = format!("{:?}", v.problems);
    assert!(!v.ok() && p.contains("not signed"), "{p}");

    // The key files removed: no new key is made to sign what the store now holds.
    std::fs::remove_file(lab.dir.path().join("runs.db.signing-key.pem")).unwrap();
    std::fs::remove_file(lab.dir.path().join("runs.db.signing-key.pem.pub")).unwrap();
    let writable = Store::open(&lab.db()).await.unwrap();
    let err = writable.ready_to_sign().await.unwrap_err().to_string();
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
    assert!(!lab.dir.path().join("runs.db.signing-key.pem").exists());
}
