//! Content-addressed snapshots on a real directory tree.

use cordon_store::snapshot::{Kind, SnapshotError, SnapshotStore};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/nested")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.join("src/nested/copy.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/main.rs", dir.join("link")).unwrap();
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::fs::write(dir.join("cache/big.bin"), "ephemeral").unwrap();
}

/// Every path under `dir` with its kind, mode and content (or link target).
fn describe(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {:o}", m.permissions().mode() & 0o777));
                stack.push(p);
            } else {
                out.push(format!(
                    "{rel} {:o} {}",
                    m.permissions().mode() & 0o777,
                    std::fs::read_to_string(&p).unwrap()
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_snapshot_restores_the_same_tree_and_stores_contents_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, store_dir) = (tmp.path().join("ws"), tmp.path().join("store"));
    tree(&ws);
    let store = SnapshotStore::open(&store_dir).unwrap();
    let (snap, stats) = store.take(&ws, &["cache".into()], None).unwrap();
    assert_eq!(stats.files_read, 3);
    assert_eq!(
        stats.objects_written, 2,
        "the two identical files share one object"
    );
    assert!(
        snap.entries.iter().all(|e| !e.path.starts_with("cache")),
        "excluded paths are left out"
    );
    assert!(
        snap.entries
            .iter()
            .any(|e| e.path == "link" && e.kind == Kind::Symlink)
    );

    let back = tmp.path().join("back");
    store.restore(&snap, &back).unwrap();
    let mut expected = describe(&ws);
    expected.retain(|l| !l.starts_with("cache"));
    assert_eq!(describe(&back), expected);
    assert_eq!(
        store.load(&snap.id[..8]).unwrap(),
        snap,
        "loaded by id prefix"
    );
    assert!(
        matches!(store.restore(&snap, &back), Err(SnapshotError::Unsafe(m)) if m.contains("not empty"))
    );
}

#[test]
fn a_second_snapshot_reads_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    tree(&ws);
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (first, _) = store.take(&ws, &[], None).unwrap();
    let (same, stats) = store.take(&ws, &[], Some(&first)).unwrap();
    assert_eq!((stats.files_read, stats.objects_written), (0, 0));
    assert_eq!(same.id, first.id, "same content, same id");
    std::fs::write(ws.join("src/main.rs"), "fn main() { println!(); }\n").unwrap();
    let (changed, stats) = store.take(&ws, &[], Some(&same)).unwrap();
    assert_eq!((stats.files_read, stats.objects_written), (1, 1));
    assert_ne!(changed.id, first.id);
    // Both stay restorable; after gc of nothing-referenced objects too.
    let (removed, _) = store.gc().unwrap();
    assert_eq!(removed, 0);
    store.restore(&first, &tmp.path().join("r1")).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("r1/src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
}

#[test]
fn gc_removes_contents_no_snapshot_refers_to() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    tree(&ws);
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (snap, _) = store.take(&ws, &[], None).unwrap();
    std::fs::remove_file(
        tmp.path()
            .join("store/snapshots")
            .join(format!("{}.json", snap.id)),
    )
    .unwrap();
    let (removed, bytes) = store.gc().unwrap();
    assert_eq!(removed, 3);
    assert!(bytes > 0);
}

#[test]
fn restore_refuses_tampered_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    tree(&ws);
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (snap, _) = store.take(&ws, &[], None).unwrap();
    let tamper = |f: &dyn Fn(&mut cordon_store::Snapshot)| {
        let mut s = snap.clone();
        f(&mut s);
        s
    };
    let cases: Vec<(&str, cordon_store::Snapshot)> = vec![
        (
            "escaping path",
            tamper(&|s| s.entries[0].path = "../escaped".into()),
        ),
        (
            "absolute path",
            tamper(&|s| s.entries[0].path = "/tmp/escaped".into()),
        ),
        (
            "link out",
            tamper(&|s| {
                s.entries
                    .iter_mut()
                    .find(|e| e.kind == Kind::Symlink)
                    .unwrap()
                    .target = Some("../../../etc/passwd".into())
            }),
        ),
        (
            "setuid",
            tamper(&|s| {
                s.entries
                    .iter_mut()
                    .find(|e| e.path == "run.sh")
                    .unwrap()
                    .mode = 0o4755
            }),
        ),
        (
            "bad hash",
            tamper(&|s| {
                s.entries
                    .iter_mut()
                    .find(|e| e.path == "run.sh")
                    .unwrap()
                    .hash = Some("zz".into())
            }),
        ),
    ];
    for (what, bad) in cases {
        let to = tmp.path().join(format!("to-{}", what.replace(' ', "-")));
        let err = store.restore(&bad, &to).unwrap_err();
        assert!(matches!(err, SnapshotError::Unsafe(_)), "{what}: {err}");
        assert!(!tmp.path().join("escaped").exists(), "{what}");
    }
    // A link as a parent: an entry written "through" it.
    let mut through = snap.clone();
    through.entries.push(cordon_store::snapshot::Entry {
        path: "link/inside".into(),
        kind: Kind::File,
        mode: 0o644,
        hash: snap
            .entries
            .iter()
            .find(|e| e.path == "run.sh")
            .unwrap()
            .hash
            .clone(),
        size: 1,
        target: None,
        mtime_ns: 0,
        ino: 0,
    });
    through.entries.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(matches!(
        store.restore(&through, &tmp.path().join("to-through")),
        Err(SnapshotError::Unsafe(_))
    ));
    // Stored content that was changed is caught by its hash.
    let hash = snap
        .entries
        .iter()
        .find(|e| e.path == "run.sh")
        .unwrap()
        .hash
        .clone()
        .unwrap();
    let obj = tmp
        .path()
        .join("store/objects")
        .join(&hash[..2])
        .join(format!("{hash}.zst"));
    std::fs::write(
        &obj,
        zstd::encode_all(&b"#!/bin/sh\nrm -rf ~\n"[..], 3).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        store.restore(&snap, &tmp.path().join("to-corrupt")),
        Err(SnapshotError::Corrupt(_))
    ));
}
