//! `cordon sandbox exec` and `cordon doctor`, through the real binary.

use crate::common;

use assert_cmd::Command;

fn cordon(dir: &std::path::Path) -> Command {
    let mut c = common::cordon(dir);
    // These tests use the home itself as the workspace: cordon's store lives elsewhere, as no
    // workspace may hold it.
    c.env("CORDON_SECRET_IN_HARNESS", "do-not-leak")
        .env("CORDON_STORE", "/nonexistent/cordon-test/runs.db")
        .env("CORDON_SNAPSHOTS", "/nonexistent/cordon-test/snapshots");
    c
}

#[test]
fn exec_runs_in_the_workspace_and_returns_the_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), "from the host").unwrap();
    let out = cordon(dir.path())
        .args(["sandbox", "exec", "--workspace"])
        .arg(dir.path())
        .args([
            "--",
            "sh",
            "-c",
            "cat note.txt; echo; pwd; id -u; env; echo made > new.txt; exit 7",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("from the host")
            && stdout.contains("/workspace")
            && stdout.contains("1000"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("do-not-leak"),
        "the harness environment leaked: {stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "made\n"
    );
}

#[test]
fn read_only_workspaces_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = cordon(dir.path())
        .args(["sandbox", "exec", "--read-only", "--workspace"])
        .arg(dir.path())
        .args(["--", "sh", "-c", "echo x > f"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!dir.path().join("f").exists());
}

#[test]
fn timeouts_kill_the_group_and_exit_124() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = cordon(dir.path())
        .args(["sandbox", "exec", "--timeout", "1", "--workspace"])
        .arg(dir.path())
        .args(["--", "sh", "-c", "sleep 60 & sleep 60"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the background sleep was killed too"
    );
}

#[test]
fn a_missing_workspace_or_tier_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = cordon(dir.path())
        .args([
            "sandbox",
            "exec",
            "--workspace",
            "/nonexistent/dir",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/dir") && stderr.contains("--workspace"),
        "{stderr}"
    );
}

#[test]
fn doctor_reports_each_tier() {
    let dir = tempfile::tempdir().unwrap();
    let out = cordon(dir.path())
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["auto"], "namespaces", "{v}");
    assert!(
        v["supervisor"]
            .as_str()
            .unwrap()
            .ends_with("/cordon-supervisor"),
        "the small supervisor beside cordon is the one used: {v}"
    );
    let tiers = v["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
    for t in tiers {
        assert_eq!(t["works"], true, "{t}");
        assert_eq!(t["confinement"]["seccomp"], true);
        assert!(
            t["confinement"]["landlock_abi"].as_u64().unwrap() >= 6,
            "{t}"
        );
        assert!(
            t["confinement"]["landlock"]
                .as_str()
                .unwrap()
                .starts_with("enforced")
                || t["confinement"]["landlock"]
                    .as_str()
                    .unwrap()
                    .starts_with("fully"),
            "{t}"
        );
    }
    assert!(
        !tiers[1]["limits"].as_array().unwrap().is_empty(),
        "the landlock tier states its limits"
    );
}

#[test]
fn tty_runs_under_a_terminal_fed_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = cordon(dir.path())
        .args(["sandbox", "exec", "--tty", "--workspace"])
        .arg(dir.path())
        .args(["--", "sh"])
        .write_stdin("tty; echo $((6*7)); exit 4\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("/dev/pts/") && stdout.contains("42"),
        "{stdout}"
    );
}
