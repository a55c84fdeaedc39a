//! The run log in a real SQLite file.

use cordon_core::{EventPayload, RunId, RunState, RunStatus, verify_chain};
use cordon_store::{Store, StoreError};

fn input(text: &str) -> EventPayload {
    EventPayload::UserInput { text: text.into() }
}

#[tokio::test]
async fn appended_events_chain_survive_reopening_and_fold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/cordon.db");
    let run = RunId::new();
    {
        let store = Store::open(&path).await.unwrap();
        let mut log = store.create_run(&run).await.unwrap();
        log.append(&input("first")).await.unwrap();
        log.append(&input("second")).await.unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    let mut log = store.open_run(&run).await.unwrap();
    assert_eq!(log.next_seq(), 2);
    log.append(&EventPayload::RunFailed {
        error: "boom".into(),
    })
    .await
    .unwrap();
    let events = store.events(&run).await.unwrap();
    assert_eq!(events.len(), 3);
    verify_chain(&events).unwrap();
    let state = RunState::fold(&events).unwrap();
    assert_eq!(state.items.len(), 2);
    assert_eq!(state.status, RunStatus::Failed);
}

#[tokio::test]
async fn the_log_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let run = RunId::new();
    store
        .create_run(&run)
        .await
        .unwrap()
        .append(&input("x"))
        .await
        .unwrap();
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
    for sql in ["UPDATE events SET payload = '{}'", "DELETE FROM events"] {
        let err = sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn two_writers_on_one_run_conflict_instead_of_forking_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let run = RunId::new();
    store
        .create_run(&run)
        .await
        .unwrap()
        .append(&input("x"))
        .await
        .unwrap();
    let mut a = store.open_run(&run).await.unwrap();
    let mut b = store.open_run(&run).await.unwrap();
    a.append(&input("a")).await.unwrap();
    assert!(matches!(
        b.append(&input("b")).await,
        Err(StoreError::Conflict { seq: 1, .. })
    ));
    verify_chain(&store.events(&run).await.unwrap()).unwrap();
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_resolved_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let (r1, r2) = (RunId::from("aaaa-1"), RunId::from("aabb-2"));
    for (run, end) in [(&r1, true), (&r2, false)] {
        let mut log = store.create_run(run).await.unwrap();
        log.append(&input("task")).await.unwrap();
        if end {
            log.append(&EventPayload::RunCompleted {
                output: "done".into(),
                structured: None,
            })
            .await
            .unwrap();
        }
    }
    let runs = store.list_runs(None, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["aabb-2", "aaaa-1"]
    );
    assert_eq!(runs[1].status, RunStatus::Completed);
    assert_eq!(runs[0].task, "task");
    let done = store
        .list_runs(Some(RunStatus::Completed), 10)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(store.resolve("aab").await.unwrap(), r2);
    assert!(matches!(
        store.resolve("aa").await,
        Err(StoreError::Ambiguous { .. })
    ));
    assert!(matches!(
        store.resolve("zz").await,
        Err(StoreError::NoSuchRun(_))
    ));
}

#[tokio::test]
async fn runs_are_named_by_last_or_any_unique_piece_of_their_random_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r.db")).await.unwrap();
    assert!(matches!(
        store.resolve("last").await,
        Err(StoreError::NoSuchRun(_))
    ));
    let ids = [
        "01a23300-0000-7000-8000-00000000beef",
        "01a23300-0001-7000-8000-00000000cafe",
        "01a23300-0002-7000-8000-0000000ecafe",
    ];
    for id in ids {
        let mut log = store.create_run(&RunId::from(id)).await.unwrap();
        log.append(&EventPayload::UserInput { text: "t".into() })
            .await
            .unwrap();
    }
    assert_eq!(store.resolve("last").await.unwrap().as_str(), ids[2]);
    assert_eq!(store.resolve("beef").await.unwrap().as_str(), ids[0]);
    assert_eq!(store.resolve("ecafe").await.unwrap().as_str(), ids[2]);
    assert_eq!(
        store.resolve("01a23300-0001").await.unwrap().as_str(),
        ids[1]
    );
    // The time part is shared by every run of the same moment: only the start matches it.
    assert!(matches!(
        store.resolve("a233").await,
        Err(StoreError::NoSuchRun(_))
    ));
    match store.resolve("cafe").await {
        Err(StoreError::Ambiguous {
            count, candidates, ..
        }) => {
            assert_eq!(count, 2);
            assert_eq!(candidates, [ids[2], ids[1]], "newest first");
        }
        other => panic!("{other:?}"),
    }
    let err = store.resolve("01a233").await.unwrap_err().to_string();
    assert!(
        err.contains("matches 3 runs") && err.contains(ids[0]),
        "{err}"
    );
}

#[tokio::test]
async fn pushed_events_are_stored_together_by_a_flush_and_chain_as_appended_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let run = RunId::new();
    let mut log = store.create_run(&run).await.unwrap();
    log.append(&input("first")).await.unwrap();
    for i in 0..3 {
        log.push(&input(&format!("buffered {i}")));
    }
    assert_eq!(log.pending(), 3);
    assert_eq!(
        store.events(&run).await.unwrap().len(),
        1,
        "not stored before a flush"
    );
    assert_eq!(store.head(&run).unwrap().unwrap().count, 1);
    log.flush().await.unwrap();
    assert_eq!(log.pending(), 0);
    let events = store.events(&run).await.unwrap();
    assert_eq!(events.len(), 4);
    verify_chain(&events).unwrap();
    let head = store.head(&run).unwrap().unwrap();
    assert_eq!(
        (head.count, head.last_hash.as_str(), head.pending),
        (4, events[3].hash.as_str(), None)
    );
    assert!(
        cordon_store::verify::verify_run(&store, &run)
            .await
            .unwrap()
            .ok()
    );

    // More than one statement's worth goes in one transaction.
    for i in 0..1000 {
        log.push(&input(&format!("many {i}")));
    }
    log.flush().await.unwrap();
    let events = store.events(&run).await.unwrap();
    assert_eq!(events.len(), 1004);
    verify_chain(&events).unwrap();
    assert!(
        cordon_store::verify::verify_run(&store, &run)
            .await
            .unwrap()
            .ok()
    );
}

#[tokio::test]
async fn a_flush_after_another_writer_appended_is_a_conflict_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let run = RunId::new();
    let mut mine = store.create_run(&run).await.unwrap();
    mine.append(&input("first")).await.unwrap();
    let mut theirs = store.open_run(&run).await.unwrap();
    mine.push(&input("mine"));
    theirs.append(&input("theirs")).await.unwrap();
    let err = mine.flush().await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        mine.pending(),
        1,
        "nothing pushed is dropped by a failed flush"
    );
    let events = store.events(&run).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        cordon_store::verify::verify_run(&store, &run)
            .await
            .unwrap()
            .ok()
    );
}
