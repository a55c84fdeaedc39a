//! `cordon snapshot take|list|show|restore|gc` through the real binary.

use crate::common;

use common::cordon;

#[test]
fn snapshots_are_taken_listed_shown_restored_and_collected() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/a.txt"), "one").unwrap();
    std::fs::write(ws.join("skip.log"), "noise").unwrap();

    let take = |extra: &[&str]| {
        let out = cordon(home.path())
            .args(["snapshot", "take", "--json"])
            .arg(&ws)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = take(&["--exclude", "skip.log"]);
    assert_eq!(first["files"], 1);
    let again = take(&["--exclude", "skip.log"]);
    assert_eq!(
        again["stats"]["files_read"], 0,
        "incremental against the newest snapshot"
    );
    std::fs::write(ws.join("src/a.txt"), "two").unwrap();
    let second = take(&["--exclude", "skip.log"]);
    assert_eq!(second["stats"]["files_read"], 1);

    let list = cordon(home.path())
        .args(["snapshot", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 2);
    let id = first["id"].as_str().unwrap();
    let show = cordon(home.path())
        .args(["snapshot", "show", &id[..10]])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("src/a.txt  (3 bytes)"));

    let to = home.path().join("back");
    let out = cordon(home.path())
        .args(["snapshot", "restore", id, "--to"])
        .arg(&to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(to.join("src/a.txt")).unwrap(),
        "one",
        "the first state comes back"
    );
    let again = cordon(home.path())
        .args(["snapshot", "restore", id, "--to"])
        .arg(&to)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "not into a non-empty directory"
    );

    let missing = cordon(home.path())
        .args(["snapshot", "show", "ffffffff"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let gc = cordon(home.path())
        .args(["snapshot", "gc"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&gc.stdout).contains("removed 0"),
        "both snapshots still refer to their contents"
    );
}

/// `cordon snapshot show ID | head -1`: the reader goes away; cordon stops quietly with
/// 141, as a closed pipe stops other tools, and does not panic.
#[test]
fn a_reader_that_goes_away_ends_cordon_quietly() {
    use std::io::Read;
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    for i in 0..3000 {
        std::fs::write(ws.join(format!("file-{i:05}.txt")), i.to_string()).unwrap();
    }
    let out = cordon(home.path())
        .args(["snapshot", "take", "--json"])
        .arg(&ws)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let taken: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = taken["id"].as_str().unwrap().to_string();
    let mut child = common::cordon_std(home.path())
        .args(["snapshot", "show", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(141), "{stderr}");
}
