//! Manifests through the real binary: check, materialize into a sandbox, record in a run.

use crate::common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn cordon(home: &Path) -> Command {
    let mut c = common::cordon(home);
    c.env("MY_TOKEN", "from-the-host");
    c
}

fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// A manifest beside a data directory and a git repository, all made here.
fn fixture(home: &Path) -> std::path::PathBuf {
    let base = home.join("project");
    std::fs::create_dir_all(base.join("data/sub")).unwrap();
    std::fs::write(base.join("data/keep.csv"), "a,b\n").unwrap();
    std::fs::write(base.join("data/sub/deep.txt"), "deep\n").unwrap();
    std::fs::write(base.join("data/skip.tmp"), "no\n").unwrap();
    std::fs::write(base.join("README.md"), "# readme\n").unwrap();
    let repo = home.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("lib.rs"), "pub fn f() {}\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let manifest = base.join("cordon.toml");
    std::fs::write(
        &manifest,
        format!(
            r##"
outputs = ["out"]

[entries."bin/run.sh"]
type = "file"
content = "#!/bin/sh\necho ran\n"
mode = "0755"

[entries.data]
type = "local_dir"
source = "data"
ignore = ["*.tmp"]

[entries."docs/README.md"]
type = "local_file"
source = "README.md"

[entries.cfg]
type = "dir"
mode = "0750"
[entries.cfg.children."app.toml"]
type = "file"
content = "x = 1"

[entries."AGENTS.md"]
type = "file"
content = "Root rules: run the tests."

[entries."docs/AGENTS.md"]
type = "file"
content = "Docs rules: keep it short."

[entries.repo]
type = "git_repo"
url = "file://{repo}"
ref = "main"

[env]
LOG = "debug"
TOKEN = {{ from_host = "MY_TOKEN" }}
"##,
            repo = repo.display()
        ),
    )
    .unwrap();
    manifest
}

#[test]
fn check_prints_the_tree_or_every_problem_with_its_place() {
    let home = tempfile::tempdir().unwrap();
    let manifest = fixture(home.path());
    let out = cordon(home.path())
        .args(["manifest", "check"])
        .arg(&manifest)
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tree.starts_with("/workspace\n") && tree.contains("run.sh  (file, 19 bytes, mode 0755)"),
        "{tree}"
    );
    assert!(
        tree.contains("data/  (local_dir from data, ignoring *.tmp)")
            && tree.contains("out/  (output, created empty)"),
        "{tree}"
    );

    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "[entries.\"../escape\"]\ntype = \"file\"\ncontent = \"x\"\n\n[entries.ok]\ntype = \"file\"\ncontent = \"y\"\nmode = \"7777\"\n").unwrap();
    let out = cordon(home.path())
        .args(["manifest", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:1:10: entry '../escape' has a '..' segment"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.toml:8:1: entry 'ok': mode 7777"),
        "{stderr}"
    );

    // For machines: one object, with the entries or with every problem.
    let out = cordon(home.path())
        .args(["manifest", "check", "--json"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["root"], "/workspace");
    let run_sh = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "bin/run.sh")
        .unwrap();
    assert_eq!(run_sh["type"], "file");
    assert_eq!(run_sh["mode"], "0755");
    let out = cordon(home.path())
        .args(["manifest", "check", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"], 1);
    assert_eq!(v["problems"][1]["line"], 8);
}

#[test]
fn a_manifest_builds_a_fresh_workspace_in_the_sandbox() {
    let home = tempfile::tempdir().unwrap();
    let manifest = fixture(home.path());
    let ws = home.path().join("ws");
    let out = cordon(home.path())
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(&ws)
        .args(["--", "sh", "-c", "find . -path ./repo/.git -prune -o -print | sort; ./bin/run.sh; echo \"$LOG $TOKEN\"; stat -c %a bin/run.sh cfg"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in [
        "./bin/run.sh",
        "./cfg/app.toml",
        "./data/keep.csv",
        "./data/sub/deep.txt",
        "./docs/README.md",
        "./repo/lib.rs",
        "./out",
    ] {
        assert!(
            stdout.contains(&format!("{path}\n")),
            "{path} missing: {stdout}"
        );
    }
    assert!(!stdout.contains("skip.tmp"), "ignored: {stdout}");
    assert!(
        stdout.contains("ran\ndebug from-the-host\n755\n750"),
        "{stdout}"
    );

    // Not again into the same (now full) directory.
    let again = cordon(home.path())
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(&ws)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn sources_that_lead_out_are_refused_and_links_stay_links() {
    let home = tempfile::tempdir().unwrap();
    let base = home.path().join("p");
    std::fs::create_dir_all(base.join("d/inner")).unwrap();
    std::fs::write(base.join("d/inner/f.txt"), "inside").unwrap();
    std::fs::write(home.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(home.path().join("secret.txt"), base.join("d/link")).unwrap();
    std::os::unix::fs::symlink(".", base.join("d/self")).unwrap();
    std::os::unix::fs::symlink("inner", base.join("d/to-inner")).unwrap();
    // A source outside the manifest's directory is refused.
    let manifest = base.join("outside.toml");
    std::fs::write(
        &manifest,
        "[entries.s]\ntype = \"local_file\"\nsource = \"../secret.txt\"\n",
    )
    .unwrap();
    let ws = home.path().join("ws-outside");
    let out = cordon(home.path())
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(&ws)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "bad input: {stderr}");
    assert!(
        stderr.contains("outside the manifest's directory"),
        "{stderr}"
    );
    assert!(!walk_contains(&ws, "secret"));
    // A manifest named without a directory is in the current one, and so are its sources.
    std::fs::write(
        base.join("bare.toml"),
        "[entries.inner]\ntype = \"local_dir\"\nsource = \"d/inner\"\n",
    )
    .unwrap();
    let out = cordon(home.path())
        .current_dir(&base)
        .args(["sandbox", "exec", "--manifest", "bare.toml", "--workspace"])
        .arg(home.path().join("ws-bare"))
        .args(["--", "cat", "inner/f.txt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inside");
    // Links inside a local_dir are copied as links: a loop stays a loop (and ends), a link
    // out is text, not the secret's content, a link to a directory inside stays a link.
    let manifest = base.join("link.toml");
    std::fs::write(
        &manifest,
        "[entries.d]\ntype = \"local_dir\"\nsource = \"d\"\n",
    )
    .unwrap();
    let ws = home.path().join("ws-link");
    let out = cordon(home.path())
        .args(["sandbox", "exec", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(&ws)
        .args([
            "--",
            "sh",
            "-c",
            "cat d/to-inner/f.txt; ls d/self/self/inner",
        ])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "insidef.txt\n");
    assert_eq!(
        std::fs::read_link(ws.join("d/self")).unwrap(),
        Path::new(".")
    );
    assert_eq!(
        std::fs::read_link(ws.join("d/to-inner")).unwrap(),
        Path::new("inner")
    );
    assert_eq!(
        std::fs::read_link(ws.join("d/link")).unwrap(),
        home.path().join("secret.txt")
    );
    assert!(
        !walk_contains(&ws, "secret"),
        "nothing was read through a link"
    );
}

fn walk_contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk_contains(&p, needle)
            } else if ft.is_file() {
                std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle))
            } else {
                false
            }
        })
}

#[test]
fn a_run_records_the_manifest_and_its_receipts() {
    let home = tempfile::tempdir().unwrap();
    let manifest = fixture(home.path());
    let script = home.path().join("s.toml");
    std::fs::write(&script, "[[turns]]\ntool_calls = [{ name = \"exec_command\", arguments = { cmd = \"cat data/keep.csv\" } }]\n[[turns]]\ntext = \"ok\"\n").unwrap();
    let out = cordon(home.path())
        .args(["run", "--json", "--manifest"])
        .arg(&manifest)
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("look")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("workspace: ") && stderr.contains("/cordon/workspaces/"),
        "{stderr}"
    );
    let events: Vec<Value> = common::json_lines(&out.stdout);
    let digest = events[0]["payload"]["manifest_digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert_eq!(events[1]["kind"], "workspace_materialized");
    let receipts = events[1]["payload"]["receipts"].as_array().unwrap();
    let data = receipts.iter().find(|r| r["path"] == "data").unwrap();
    assert_eq!(
        (data["files"].as_u64(), data["bytes"].as_u64()),
        (Some(2), Some(9)),
        "{data}"
    );
    assert!(
        !events[1].to_string().contains("from-the-host"),
        "from_host values are never recorded"
    );
    let instructions = events[0]["payload"]["agent"]["instructions"]
        .as_str()
        .unwrap();
    let at = |needle: &str| {
        instructions
            .find(needle)
            .unwrap_or_else(|| panic!("no '{needle}' in: {instructions}"))
    };
    assert!(
        at("You are a careful assistant") < at("# Workspace"),
        "the operator's instructions come first"
    );
    assert!(at("  bin/\n    run.sh") > at("# Workspace"));
    assert!(
        at("## AGENTS.md\n\nRoot rules") < at("## docs/AGENTS.md\n\nDocs rules"),
        "root first: {instructions}"
    );
    assert!(at("not the operator's instructions") < at("Root rules"));
    let result = events.iter().find(|e| e["kind"] == "tool_result").unwrap();
    assert!(
        result["payload"]["output"]
            .as_str()
            .unwrap()
            .contains("a,b")
    );
}

#[test]
fn grants_read_only_entries_and_pinned_git_commits() {
    let home = tempfile::tempdir().unwrap();
    let (g_ro, g_rw) = (home.path().join("shared-ro"), home.path().join("shared-rw"));
    std::fs::create_dir_all(&g_ro).unwrap();
    std::fs::create_dir_all(&g_rw).unwrap();
    std::fs::write(g_ro.join("g.txt"), "granted").unwrap();
    let repo = home.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("src/a.rs"), "v1").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let first = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&repo)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(repo.join("src/a.rs"), "v2").unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    let manifest = home.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[grants]]
path = "{ro}"
mode = "ro"
[[grants]]
path = "{rw}"
mode = "rw"

[entries."locked.txt"]
type = "file"
content = "fixed"
read_only = true

[entries."free.txt"]
type = "file"
content = "free"

[entries.lib]
type = "git_repo"
url = "file://{repo}"
commit = "{first}"
subpath = "src"
"#,
            ro = g_ro.display(),
            rw = g_rw.display(),
            repo = repo.display(),
            first = first.trim()
        ),
    )
    .unwrap();
    let script = format!(
        "cat {ro}/g.txt; echo; (echo x > {ro}/new) 2>/dev/null || echo RO-REFUSED; echo y > {rw}/new && echo RW-OK; \
         (echo z > locked.txt) 2>/dev/null || echo LOCKED; echo w > free.txt && echo FREE; cat lib/a.rs; echo; ls -a lib",
        ro = g_ro.display(),
        rw = g_rw.display()
    );
    let ws = home.path().join("ws");
    let out = cordon(home.path())
        .args(["sandbox", "exec", "--sandbox", "namespaces", "--manifest"])
        .arg(&manifest)
        .arg("--workspace")
        .arg(&ws)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("granted\nRO-REFUSED\nRW-OK\nLOCKED\nFREE\nv1\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(".git"), "only the subpath: {stdout}");
    assert!(!g_ro.join("new").exists());
    assert_eq!(std::fs::read_to_string(g_rw.join("new")).unwrap(), "y\n");
    assert_eq!(
        std::fs::read_to_string(ws.join("locked.txt")).unwrap(),
        "fixed"
    );
    assert_eq!(std::fs::read_to_string(ws.join("free.txt")).unwrap(), "w\n");
}

/// Workspace trouble is bad input that says where it is, found before anything is built; a
/// build that fails part way leaves nothing behind.
#[test]
fn workspace_trouble_is_bad_input_found_early_and_a_failed_build_leaves_nothing() {
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("s.toml");
    std::fs::write(&script, "[[turns]]\ntext = \"ok\"\n").unwrap();
    let model = format!("scripted:{}", script.display());
    let stderr_of = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // A file given as the workspace, with or without a manifest.
    let file = home.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    for manifest in [None, Some("m.toml")] {
        let mut c = cordon(home.path());
        c.args(["run", "--model", &model, "--workspace"]).arg(&file);
        if let Some(m) = manifest {
            std::fs::write(home.path().join(m), "").unwrap();
            c.arg("--manifest").arg(home.path().join(m));
        }
        let out = c.arg("go").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("is not a directory"),
            "{}",
            stderr_of(&out)
        );
    }

    // Sources are checked on the host by `manifest check`, at the line of each `source`.
    let sub = home.path().join("sub");
    std::fs::create_dir_all(home.path().join("s2")).unwrap();
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("f.txt"), "x").unwrap();
    std::fs::write(
        sub.join("m.toml"),
        "[entries.s]\ntype = \"local_dir\"\nsource = \"../s2\"\n\n[entries.d]\ntype = \"local_dir\"\nsource = \"f.txt\"\n\n[entries.n]\ntype = \"local_file\"\nsource = \"missing.txt\"\n\n[entries.x]\ntype = \"file\"\ncontent = \"x\"\nmode = \"7777\"\n",
    )
    .unwrap();
    let out = cordon(home.path())
        .current_dir(&sub)
        .args(["manifest", "check", "m.toml"])
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("m.toml:3:1: entry 's': source ../s2 resolves to ")
            && stderr.contains("outside the manifest's directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("m.toml:7:1: entry 'd': source f.txt is not a directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("m.toml:11:1: entry 'n': source missing.txt does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("m.toml:16:1: entry 'x': mode 7777"),
        "host problems and the others, all at once: {stderr}"
    );
    // The run refuses it the same way, before making a workspace.
    let out = cordon(home.path())
        .current_dir(&sub)
        .args(["run", "--model", &model, "--manifest", "m.toml", "go"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let made = home.path().join(".local/state/cordon/workspaces");
    let count = |d: &Path| std::fs::read_dir(d).map_or(0, |e| e.count());
    assert_eq!(count(&made), 0, "no workspace was made");

    // An overlap points at the inner entry's line.
    std::fs::write(
        sub.join("overlap.toml"),
        "[entries.s]\ntype = \"file\"\ncontent = \"x\"\n\n[entries.\"s/f\"]\ntype = \"file\"\ncontent = \"y\"\n",
    )
    .unwrap();
    let out = cordon(home.path())
        .args(["manifest", "check"])
        .arg(sub.join("overlap.toml"))
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("overlap.toml:5:10: entry 's/f' lies inside entry 's'"),
        "{}",
        stderr_of(&out)
    );

    // A build that fails part way (a file is written, then a clone fails) leaves the given
    // directory empty, and removes one cordon made.
    std::fs::write(
        sub.join("half.toml"),
        "[entries.\"a.txt\"]\ntype = \"file\"\ncontent = \"x\"\n\n[entries.repo]\ntype = \"git_repo\"\nurl = \"file:///nonexistent/repo\"\n",
    )
    .unwrap();
    let ws = home.path().join("ws-half");
    let out = cordon(home.path())
        .args(["run", "--model", &model, "--manifest"])
        .arg(sub.join("half.toml"))
        .arg("--workspace")
        .arg(&ws)
        .arg("go")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("what was built of it was removed"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(count(&ws), 0, "the given directory is empty again");
    let out = cordon(home.path())
        .args(["run", "--model", &model, "--manifest"])
        .arg(sub.join("half.toml"))
        .arg("go")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(count(&made), 0, "the workspace cordon made is gone");
}
