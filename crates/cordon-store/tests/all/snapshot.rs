//! Content-addressed snapshots on a real directory tree.

use cordon_store::snapshot::{Exclusions, Kind, SnapshotError, SnapshotStore};
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
        assert!(
            !to.exists(),
            "{what}: a failed restore leaves nothing behind"
        );
    }
    // A link as a parent: an entry written "through" it.
    let mut through = snap.clone();
    through.entries.push(cordon_store::snapshot::Entry {
        path: "link/inside".into(),
        path_hex: None,
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
        target_hex: None,
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

fn entry(
    path: &str,
    kind: Kind,
    target: Option<&str>,
    hash: Option<String>,
) -> cordon_store::snapshot::Entry {
    cordon_store::snapshot::Entry {
        path: path.into(),
        path_hex: None,
        kind,
        mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
        hash,
        size: 1,
        target: target.map(str::to_string),
        target_hex: None,
        mtime_ns: 0,
        ino: 0,
    }
}

#[test]
fn links_are_restored_verbatim_but_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("venv/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", ws.join("venv/bin/python")).unwrap();
    std::os::unix::fs::symlink("python", ws.join("venv/bin/python3")).unwrap();
    std::os::unix::fs::symlink("../../../../outside", ws.join("venv/bin/far")).unwrap();
    std::fs::write(ws.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (snap, _) = store.take(&ws, &[], None).unwrap();
    let back = tmp.path().join("back");
    store.restore(&snap, &back).unwrap();
    assert_eq!(
        std::fs::read_link(back.join("venv/bin/python")).unwrap(),
        Path::new("/usr/bin/python3"),
        "an absolute link is data: restored as it was"
    );
    assert_eq!(
        std::fs::read_link(back.join("venv/bin/far")).unwrap(),
        Path::new("../../../../outside")
    );
    let hash = snap
        .entries
        .iter()
        .find(|e| e.kind == Kind::File)
        .unwrap()
        .hash
        .clone();
    // Crafted listings: each tries to write through a link it made first.
    let crafted: Vec<(&str, Vec<cordon_store::snapshot::Entry>)> = vec![
        (
            "x -> . then y -> x/.. then a file under y",
            vec![
                entry("x", Kind::Symlink, Some("."), None),
                entry("y", Kind::Symlink, Some("x/.."), None),
                entry("y/evil", Kind::File, None, hash.clone()),
            ],
        ),
        (
            "a link to /tmp, then a file under it",
            vec![
                entry("t", Kind::Symlink, Some("/tmp"), None),
                entry("t/cordon-evil", Kind::File, None, hash.clone()),
            ],
        ),
        (
            "a link, then a file of the same name",
            vec![
                entry("f", Kind::Symlink, Some("/tmp/cordon-evil"), None),
                entry("f", Kind::File, None, hash.clone()),
            ],
        ),
        (
            "a file before its directory",
            vec![entry("d/f", Kind::File, None, hash.clone())],
        ),
    ];
    for (what, entries) in crafted {
        let bad = cordon_store::Snapshot {
            id: "crafted".into(),
            created: String::new(),
            entries,
        };
        let to = tmp.path().join("crafted");
        let err = store.restore(&bad, &to).unwrap_err();
        assert!(matches!(err, SnapshotError::Unsafe(_)), "{what}: {err}");
        assert!(!to.exists(), "{what}: nothing restored");
        assert!(!tmp.path().join("evil").exists(), "{what}");
        assert!(!Path::new("/tmp/cordon-evil").exists(), "{what}");
    }
}

#[test]
fn set_id_bits_are_dropped_and_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    tree(&ws);
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (mut snap, _) = store.take(&ws, &[], None).unwrap();
    snap.entries
        .iter_mut()
        .find(|e| e.path == "run.sh")
        .unwrap()
        .mode = 0o4755;
    let back = tmp.path().join("back");
    let report = store.restore(&snap, &back).unwrap();
    assert_eq!(report.dropped_mode_bits, [("run.sh".to_string(), 0o4755)]);
    let mode = std::fs::metadata(back.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert!(report.notes()[0].contains("run.sh"));
}

#[test]
fn a_restore_that_fails_at_any_entry_leaves_nothing_and_the_next_one_works() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    tree(&ws);
    std::fs::create_dir(ws.join("ro")).unwrap();
    std::fs::write(ws.join("ro/f"), "f").unwrap();
    std::fs::set_permissions(ws.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (snap, _) = store.take(&ws, &[], None).unwrap();
    let to = tmp.path().join("run-resumed-7");
    for k in 0..snap.entries.len() {
        let err = store
            .restore_with(&snap, &to, &mut |i| {
                if i == k {
                    Err(std::io::Error::other("injected"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert!(!to.exists(), "failing at entry {k} left the target");
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("restoring"))
            .collect();
        assert!(left.is_empty(), "failing at entry {k} left {left:?}");
    }
    // A staging directory left by a killed restore does not block the next one.
    let stale = tmp.path().join(".run-resumed-7.restoring-999999999-0");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("half"), "x").unwrap();
    store.restore(&snap, &to).unwrap();
    assert!(!stale.exists(), "the killed restore's leftovers are swept");
    assert_eq!(std::fs::read(to.join("ro/f")).unwrap(), b"f");
    std::fs::set_permissions(to.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(ws.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn names_that_are_not_utf8_come_back_as_the_same_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    // Latin-1 "café" and its UTF-8 spelling: two different names that a lossy listing
    // would merge or rename.
    let latin1 = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(ws.join(latin1), "latin-1\n").unwrap();
    std::fs::write(ws.join("café.txt"), "utf-8\n").unwrap();
    std::fs::create_dir(ws.join(OsStr::from_bytes(b"d\xff"))).unwrap();
    std::fs::write(ws.join(OsStr::from_bytes(b"d\xff/in")), "deep\n").unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9.txt"), ws.join("to-latin1")).unwrap();
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let (snap, _) = store.take(&ws, &[], None).unwrap();
    assert_eq!(snap.entries.len(), 5, "{:?}", snap.entries);
    let odd = snap.entries.iter().find(|e| e.path_hex.is_some()).unwrap();
    assert!(
        odd.path.contains('\u{fffd}'),
        "shown with a replacement character"
    );
    assert!(store.matches(&ws, &Exclusions::default(), &snap).unwrap());

    let to = tmp.path().join("restored");
    store.restore(&snap, &to).unwrap();
    assert_eq!(
        std::fs::read_to_string(to.join(latin1)).unwrap(),
        "latin-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("café.txt")).unwrap(),
        "utf-8\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join(OsStr::from_bytes(b"d\xff/in"))).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(to.join("to-latin1"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"caf\xe9.txt"
    );
    assert!(
        store.matches(&to, &Exclusions::default(), &snap).unwrap(),
        "the restore is exact"
    );

    // A listing whose exact bytes disagree with the name it shows is refused.
    let mut forged = snap.clone();
    for e in &mut forged.entries {
        if e.path_hex.is_some() && e.kind == Kind::File {
            e.path_hex = Some(hex_of(b"../escaped"));
        }
    }
    let err = store
        .restore(&forged, &tmp.path().join("forged"))
        .unwrap_err();
    assert!(matches!(err, SnapshotError::Unsafe(_)), "{err}");
    assert!(!tmp.path().join("escaped").exists());
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rules_and_gitignore_files_leave_paths_out_and_say_which() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, store_dir) = (tmp.path().join("ws"), tmp.path().join("store"));
    let write = |rel: &str, text: &str| {
        let p = ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("src/main.rs", "fn main() {}");
    write("target/debug/app", "binary");
    write("build.log", "log");
    write("keep.log", "kept by an exception");
    write("ephemeral/x", "declared");
    write(".gitignore", "node_modules/\n*.tmp\n");
    write("node_modules/a/index.js", "js");
    write("sub/.gitignore", "!wanted.tmp\nlocal/\n");
    write("sub/wanted.tmp", "a deeper file takes it back");
    write("sub/other.tmp", "still ignored");
    write("sub/local/x", "ignored below sub");
    write("local/x", "not ignored at the top");
    // A .gitignore that is a link is not followed (it could read anything on the host).
    std::fs::create_dir_all(ws.join("linked")).unwrap();
    write("elsewhere.txt", "*\n");
    std::os::unix::fs::symlink(ws.join("elsewhere.txt"), ws.join("linked/.gitignore")).unwrap();
    write("linked/f", "kept");

    let store = SnapshotStore::open(&store_dir).unwrap();
    let rules = cordon_core::CheckpointRules {
        exclude: vec!["target/".into(), "*.log".into(), "!keep.log".into()],
        gitignore: true,
    };
    let ex = Exclusions {
        paths: vec!["ephemeral".into()],
        rules,
    };
    let counter = Counter::default();
    let (snap, stats) = store.take_excluding(&ws, &ex, None, &counter).unwrap();
    assert_eq!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst),
        snap.entries.len() as u64,
        "progress is told of every path listed"
    );
    let paths: Vec<&str> = snap.entries.iter().map(|e| e.path.as_str()).collect();
    for kept in [
        "src/main.rs",
        "keep.log",
        "sub/wanted.tmp",
        "local/x",
        "linked/f",
        ".gitignore",
    ] {
        assert!(paths.contains(&kept), "{kept} is kept: {paths:?}");
    }
    for gone in [
        "target",
        "build.log",
        "ephemeral",
        "node_modules",
        "sub/other.tmp",
        "sub/local",
    ] {
        assert!(
            !paths
                .iter()
                .any(|p| *p == gone || p.starts_with(&format!("{gone}/"))),
            "{gone} is left out: {paths:?}"
        );
    }
    assert_eq!(
        stats.skipped,
        [
            "build.log",
            "node_modules/",
            "sub/local/",
            "sub/other.tmp",
            "target/"
        ],
        "what rules left out is named; declared paths are not"
    );
    assert_eq!(stats.skipped_count, 5);
    assert!(
        store.matches(&ws, &ex, &snap).unwrap(),
        "the same rules see the same workspace"
    );
    assert!(
        !store.matches(&ws, &Exclusions::default(), &snap).unwrap(),
        "without them it differs"
    );

    // Without the gitignore option, .gitignore files mean nothing.
    let ex = Exclusions::default();
    let (snap, stats) = store
        .take_excluding(&ws, &ex, None, &cordon_core::NoProgress)
        .unwrap();
    assert!(
        snap.entries
            .iter()
            .any(|e| e.path == "node_modules/a/index.js")
    );
    assert_eq!(stats.skipped_count, 0);
    assert!(cordon_core::CheckpointRules::check_pattern("target/").is_ok());
    assert!(cordon_core::CheckpointRules::check_pattern("  ").is_err());
    assert!(cordon_core::CheckpointRules::check_pattern("[z-a]").is_err());
}

/// Counts the units of progress it is told of.
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicU64);

impl cordon_core::Progress for Counter {
    fn begin(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }
    fn end(&self) {}
}

/// Runs of one process (sub-agents on copies of one workspace) take the same snapshot at
/// once: each write of the same listing and objects succeeds.
#[test]
fn identical_snapshots_taken_at_once_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&tmp.path().join("store")).unwrap();
    let dirs: Vec<std::path::PathBuf> = (0..4)
        .map(|i| {
            let ws = tmp.path().join(format!("ws{i}"));
            std::fs::create_dir_all(ws.join("src")).unwrap();
            std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
            std::fs::write(ws.join("README"), "same everywhere\n").unwrap();
            ws
        })
        .collect();
    for _ in 0..20 {
        let ids: Vec<String> = std::thread::scope(|s| {
            let takers: Vec<_> = dirs
                .iter()
                .map(|ws| s.spawn(|| store.take(ws, &[], None).map(|(snap, _)| snap.id)))
                .collect();
            takers
                .into_iter()
                .map(|t| t.join().unwrap().expect("every take succeeds"))
                .collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
    }
}
