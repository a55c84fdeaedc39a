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
        Some(2),
        "not into a non-empty directory: bad input"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    let file = home.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let onto_file = cordon(home.path())
        .args(["snapshot", "restore", id, "--to"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(onto_file.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&onto_file.stderr).contains("is not a directory"));
    let under_file = cordon(home.path())
        .args(["snapshot", "restore", id, "--to"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(
        under_file.status.code(),
        Some(2),
        "a file in the way is bad input"
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

/// Checkpoint rules from the agent file leave build output out and say so; snapshots list
/// with their runs; retention and delete keep what unfinished runs need.
#[test]
fn checkpoints_leave_out_what_rules_say_and_retention_keeps_what_runs_need() {
    let home = tempfile::tempdir().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let script = home.path().join("s.toml");
    std::fs::write(
        &script,
        "[[turns]]\ntool_calls = [{ name = \"exec_command\", arguments = { cmd = \"echo b > src/b && mkdir -p target && echo new > target/new\" } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .unwrap();
    let agent = home.path().join("agent.toml");
    std::fs::write(
        &agent,
        "name = \"builder\"\ntools = [\"exec_command\"]\n[checkpoints]\nexclude = [\"target/\"]\ngitignore = true\n",
    )
    .unwrap();
    let asking = home.path().join("asking.toml");
    std::fs::write(
        &asking,
        "name = \"asker\"\ntools = [\"exec_command\"]\n[approvals]\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    let workspace = |name: &str| {
        let ws = home.path().join(name);
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(ws.join("node_modules/pkg")).unwrap();
        std::fs::create_dir_all(ws.join("target")).unwrap();
        std::fs::write(ws.join("src/a"), name).unwrap();
        std::fs::write(ws.join("node_modules/pkg/index.js"), "x").unwrap();
        std::fs::write(ws.join("target/big"), "y".repeat(10_000)).unwrap();
        std::fs::write(ws.join(".gitignore"), "node_modules/\n").unwrap();
        ws
    };
    let run = |agent: &std::path::Path, ws: &std::path::Path| {
        let out = cordon(home.path())
            .args(["run", "--json", "--agent"])
            .arg(agent)
            .arg("--workspace")
            .arg(ws)
            .arg("--model")
            .arg(format!("scripted:{}", script.display()))
            .arg("build")
            .output()
            .unwrap();
        let events = common::json_lines(&out.stdout);
        (out, events)
    };

    // A pattern that is not one is refused where it is written.
    let bad = home.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"b\"\ntools = [\"exec_command\"]\n[checkpoints]\nexclude = [\"ok/\", \"[z-a]\"]\n",
    )
    .unwrap();
    let (out, _) = run(&bad, &workspace("ws-bad"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.toml:4:19: checkpoints.exclude '[z-a]' is not a pattern"),
        "{}",
        text(&out.stderr)
    );

    // A run under the rules: both checkpoints leave out target/ and node_modules/.
    let (out, events) = run(&agent, &workspace("ws-a"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run_a = events[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        events[0]["payload"]["sandbox"]["spec"]["checkpoints"],
        serde_json::json!({ "exclude": ["target/"], "gitignore": true }),
        "the rules are recorded, so a resume uses them"
    );
    let checkpoints: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "checkpoint")
        .collect();
    assert_eq!(checkpoints.len(), 2);
    for c in &checkpoints {
        assert_eq!(
            c["payload"]["skipped"],
            serde_json::json!(["node_modules/", "target/"]),
            "{c}"
        );
    }
    let show = cordon(home.path()).args(["show", &run_a]).output().unwrap();
    let shown = text(&show.stdout);
    assert!(
        shown.contains("left out 2 paths") && shown.contains("left out: node_modules/, target/"),
        "{shown}"
    );
    let snap_a1 = checkpoints[1]["payload"]["snapshot_id"].as_str().unwrap();
    let listing = cordon(home.path())
        .args(["snapshot", "show", snap_a1])
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("src/b")
            && !listing.contains("target")
            && !listing.contains("node_modules")
    );

    // A run waiting for approval: its only checkpoint is what its resume needs.
    let (out, events) = run(&asking, &workspace("ws-b"));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let run_b = events[0]["run_id"].as_str().unwrap().to_string();
    let snap_b0 =
        events.iter().find(|e| e["kind"] == "checkpoint").unwrap()["payload"]["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();

    // The list names each snapshot's run, under headers.
    let list = text(
        &cordon(home.path())
            .args(["snapshot", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    let mut lines = list.lines();
    assert!(lines.next().unwrap().starts_with("SNAPSHOT "), "{list}");
    assert_eq!(list.lines().count(), 4, "three snapshots: {list}");
    assert!(
        list.lines().any(|l| l.starts_with(&snap_b0[..16])
            && l.contains(&format!("{run_b} (its resume needs it)"))),
        "{list}"
    );
    assert_eq!(list.matches(&run_a).count(), 2, "{list}");

    // The same content taken again later (a snapshot is its content) is still A's first
    // checkpoint: a run's checkpoints rank by when it recorded them, not by the listing's time.
    let copy = workspace("ws-copy");
    std::fs::write(copy.join("src/a"), "ws-a").unwrap();
    let again = cordon(home.path())
        .args([
            "snapshot",
            "take",
            "--json",
            "--gitignore",
            "--exclude-pattern",
            "target/",
        ])
        .arg(&copy)
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["id"], checkpoints[0]["payload"]["snapshot_id"],
        "the same content, the same snapshot"
    );

    // Keep the newest checkpoint of each run: A's first goes, B's stays (it is needed).
    let dry = cordon(home.path())
        .args(["snapshot", "gc", "--keep-last", "1", "--dry-run", "--json"])
        .output()
        .unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let doomed: Vec<&str> = verdict["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["delete"] == true)
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let snap_a0 = checkpoints[0]["payload"]["snapshot_id"].as_str().unwrap();
    assert_eq!(doomed, [snap_a0], "{verdict}");
    assert_eq!(
        verdict["deleted"],
        serde_json::json!([]),
        "a dry run deletes nothing"
    );
    assert_eq!(verdict["would_delete"], serde_json::json!([snap_a0]));
    let gc = cordon(home.path())
        .args(["snapshot", "gc", "--older-than", "1h"])
        .output()
        .unwrap();
    assert!(
        text(&gc.stdout).contains("deleted 0 snapshots of 3"),
        "{}",
        text(&gc.stdout)
    );
    let gc = cordon(home.path())
        .args(["snapshot", "gc", "--keep-last", "1"])
        .output()
        .unwrap();
    let said = text(&gc.stdout);
    assert!(
        said.contains(&format!("deleted snapshot {}", &snap_a0[..16]))
            && said.contains("deleted 1 snapshot of 3; kept 1 that unfinished runs need"),
        "{said}"
    );
    let list = text(
        &cordon(home.path())
            .args(["snapshot", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!list.contains(&snap_a0[..16]), "{list}");

    // Delete refuses what a resume needs, unless forced; a completed run's snapshot goes.
    let refused = cordon(home.path())
        .args(["snapshot", "delete", &snap_b0[..12]])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains(&format!(
            "last checkpoint of run {run_b}, which can still be resumed"
        )),
        "{}",
        text(&refused.stderr)
    );
    let deleted = cordon(home.path())
        .args(["snapshot", "delete", snap_a1, "--json"])
        .output()
        .unwrap();
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let said: serde_json::Value = serde_json::from_slice(&deleted.stdout).unwrap();
    assert_eq!(said["deleted"], serde_json::json!([snap_a1]));
    assert!(
        said["freed"][0]["contents_removed"].as_u64().unwrap() > 0,
        "{said}"
    );
    let forced = cordon(home.path())
        .args(["snapshot", "delete", &snap_b0, "--force"])
        .output()
        .unwrap();
    assert!(forced.status.success());
    // The run that needed it says plainly that it cannot go on, and why.
    let resume = cordon(home.path())
        .args(["resume", &run_b])
        .output()
        .unwrap();
    assert_eq!(resume.status.code(), Some(2), "{}", text(&resume.stderr));
    assert!(
        text(&resume.stderr).contains(&format!(
            "run {run_b} cannot go on: its last checkpoint, snapshot {}",
            &snap_b0[..16]
        )) && text(&resume.stderr).contains("cordon snapshot delete --force"),
        "{}",
        text(&resume.stderr)
    );
    let list = cordon(home.path())
        .args(["snapshot", "list"])
        .output()
        .unwrap();
    assert!(
        text(&list.stderr).contains("no snapshots"),
        "{}",
        text(&list.stdout)
    );
}

/// On a terminal, long work draws a progress bar on stderr; piped, it draws nothing.
#[test]
fn long_work_shows_progress_on_a_terminal_only() {
    use std::io::Read;
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    for f in 0..300 {
        std::fs::write(ws.join(format!("f{f:03}")), "the same").unwrap();
    }
    // stderr on a terminal (the slave side of a pty), read from the master side.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut c = common::cordon_std(home.path());
    c.args(["snapshot", "take"])
        .arg(&ws)
        .env("TERM", "xterm")
        // Drawn from the first file on: this directory is quick to snapshot.
        .env("CORDON_PROGRESS_AFTER_MS", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(pty.slave));
    let mut child = c.spawn().unwrap();
    drop(c); // the parent's copy of the slave, so the master sees the end
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let _ = master.read_to_end(&mut seen); // ends with EIO once the child is gone
        String::from_utf8_lossy(&seen).into_owned()
    });
    assert!(child.wait().unwrap().success());
    let drawn = reader.join().unwrap();
    assert!(
        drawn.contains("taking a snapshot") && drawn.contains("files"),
        "a bar was drawn: {drawn:?}"
    );
    // Piped: nothing but what the command says.
    let out = cordon(home.path())
        .args(["snapshot", "take"])
        .arg(&ws)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("taking a snapshot"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
