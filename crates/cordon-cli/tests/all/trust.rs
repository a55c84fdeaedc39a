//! The promises a user relies on, tried as an attacker or a bad day would try them, through
//! the real binary: a tampered record is refused, stored bytes never make cordon panic, a
//! full disk or a damaged file gets the right exit code, hostile `Retry-After` values are
//! survived, and secrets never reach the record or the screen.

use crate::common;

use cordon_testkit::{Script, ScriptedServer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "sk-trust-7d1e4b9c2a5f";

/// A private home with a scripted server behind provider `s` (Chat Completions, keyed).
struct Home {
    dir: tempfile::TempDir,
    server: ScriptedServer,
}

impl Home {
    async fn new(script: &str) -> Home {
        let server = ScriptedServer::start(Script::from_toml(script).unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\napi_key_env = \"TRUST_KEY\"\nretry_initial_ms = 20\n",
                server.base_url()
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        Home { dir, server }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> PathBuf {
        self.path().join("runs.db")
    }

    fn cordon(&self) -> Command {
        let mut c = common::cordon_std(self.path());
        c.env("CORDON_CONFIG", self.path().join("config.toml"))
            .env("TRUST_KEY", KEY)
            .env("USER", "tester");
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cordon();
        c.args(args);
        common::output(c).await
    }

    /// `cordon run` with the given agent file text, in the home's workspace.
    async fn run_agent(&self, agent: &str, task: &str) -> Output {
        std::fs::write(self.path().join("agent.toml"), agent).unwrap();
        let ws = self.path().join("ws");
        self.run(&[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws.to_str().unwrap(),
            task,
        ])
        .await
    }

    async fn only_run_id(&self) -> String {
        let out = self.run(&["runs", "--json"]).await;
        let lines = common::json_lines(&out.stdout);
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines[0]["run_id"].as_str().unwrap().to_string()
    }

    /// A raw connection to the store with its append-only triggers dropped.
    async fn tamper(&self, sql: &str, run_id: &str) {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.db().display()))
            .await
            .unwrap();
        for t in ["events_append_only_update", "events_append_only_delete"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER IF EXISTS {t}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(run_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const AWAIT: &str = r#"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "touch ran.txt" } }]
[[turns]]
text = "done"
"#;
const AWAIT_AGENT: &str =
    "name = \"a\"\ntools = [\"exec_command\"]\n[approvals]\ncommands = [\"touch *\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_record_was_tampered_with_is_never_continued() {
    let home = Home::new(AWAIT).await;
    let out = home.run_agent(AWAIT_AGENT, "go").await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let run_id = home.only_run_id().await;
    home.tamper(
        "UPDATE events SET payload = '{\"text\":\"do something else\"}' WHERE run_id = ? AND kind = 'user_input'",
        &run_id,
    )
    .await;
    for args in [
        vec!["approve", run_id.as_str()],
        vec!["resume", run_id.as_str()],
    ] {
        let out = home.run(&args).await;
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("does not verify"), "{}", text(&out));
    }
    assert!(!home.path().join("ws/ran.txt").exists());
    assert_eq!(
        home.server.requests().len(),
        1,
        "no model call after the tamper"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deleted_at_the_end_of_a_completed_run_are_caught() {
    let home = Home::new("[[turns]]\ntext = \"all done\"\n").await;
    let out = home.run_agent("name = \"a\"\n", "go").await;
    assert!(out.status.success(), "{}", text(&out));
    let run_id = home.only_run_id().await;
    let ok = home.run(&["verify", &run_id]).await;
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("head record matches"), "{}", text(&ok));
    home.tamper(
        "DELETE FROM events WHERE run_id = ?1 AND seq = (SELECT max(seq) FROM events WHERE run_id = ?1)",
        &run_id,
    )
    .await;
    let out = home.run(&["verify", &run_id]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("deleted or lost"), "{}", text(&out));
    let out = home.run(&["verify", "--all", "--json"]).await;
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(common::json_lines(&out.stdout)[0]["ok"], false);
    let out = home.run(&["resume", &run_id]).await;
    assert_eq!(out.status.code(), Some(4), "not resumable: {}", text(&out));
    // The whole run deleted: it is still found, and reported.
    home.tamper("DELETE FROM events WHERE run_id = ?", &run_id)
        .await;
    let out = home.run(&["verify", &run_id[..8]]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("the run was deleted"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_in_the_store_are_reported_never_a_panic() {
    let home = Home::new("[[turns]]\ntext = \"fine\"\n[[turns]]\ntext = \"also fine\"\n").await;
    for task in ["first", "second"] {
        let out = home.run_agent("name = \"a\"\n", task).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let runs = common::json_lines(&home.run(&["runs", "--json"]).await.stdout);
    let (bad, good) = (
        runs[0]["run_id"].as_str().unwrap().to_string(),
        runs[1]["run_id"].as_str().unwrap().to_string(),
    );
    home.tamper(
        "UPDATE events SET payload = CAST(X'7B2274657874223A2022FF227D' AS TEXT) WHERE run_id = ? AND seq = 1",
        &bad,
    )
    .await;
    home.tamper(
        "UPDATE events SET ts = CAST(X'32303236FE' AS TEXT) WHERE run_id = ? AND seq = 2",
        &bad,
    )
    .await;
    home.tamper(
        "UPDATE events SET payload = 'not json at all' WHERE run_id = ? AND seq = 1",
        &good,
    )
    .await;
    for args in [
        vec!["runs"],
        vec!["show", bad.as_str()],
        vec!["verify", bad.as_str()],
        vec!["verify", good.as_str()],
        vec!["resume", bad.as_str()],
        vec!["resume", good.as_str()],
    ] {
        let out = home.run(&args).await;
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
    }
    let listed = home.run(&["runs"]).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("DAMAGED"),
        "{}",
        text(&listed)
    );
    let shown = home.run(&["show", &bad]).await;
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.contains("started     agent a"),
        "the readable events are shown: {stdout}"
    );
    assert!(
        stdout.contains("DAMAGED: its payload is not UTF-8"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_truncated_store_file_gets_exit_4_and_a_missing_one_is_empty() {
    let home = Home::new("[[turns]]\ntext = \"x\"\n").await;
    std::fs::write(home.db(), b"").unwrap();
    for args in [
        vec!["runs"],
        vec!["verify", "--all"],
        vec!["run", "--model", "s:m", "hi"],
    ] {
        let out = home.run(&args).await;
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("0 bytes"), "{}", text(&out));
    }
    std::fs::write(home.db(), vec![7u8; 10_000]).unwrap();
    let out = home.run(&["runs"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("damaged"), "{}", text(&out));
    std::fs::remove_file(home.db()).unwrap();
    let out = home.run(&["runs"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no runs yet"), "{}", text(&out));
    let out = home.run(&["show", "0123"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!home.db().exists(), "reading creates no store");
}

/// `script` in a private mount namespace, where a 1 MiB tmpfs is mounted at `dir` (works as
/// root and, where user namespaces are allowed, as anyone). `CORDON` in it is the binary.
fn in_small_tmpfs(home: &Home, dir: &Path, script: &str) -> Command {
    let cordon = assert_cmd::cargo::cargo_bin("cordon");
    let full = format!(
        "set -e; mount -t tmpfs -o size=1m tmpfs '{}'; set +e; {}",
        dir.display(),
        script.replace("CORDON", &cordon.display().to_string())
    );
    let mut sh = Command::new("unshare");
    sh.args(["--user", "--map-root-user", "--mount", "sh", "-c", &full])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("CORDON_CONFIG", home.path().join("config.toml"))
        .env("TRUST_KEY", KEY)
        .current_dir(home.path());
    sh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_leaves_reading_working_and_a_run_failing_once_and_clearly() {
    let big = "word ".repeat(60_000);
    let home = Home::new(&format!(
        "[[turns]]\ntext = \"small\"\n[[turns]]\ntext = \"{big}\"\n"
    ))
    .await;
    let disk = home.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let script = format!(
        "S='{d}/runs.db'; CORDON --store \"$S\" run --workspace ws --model s:m first >/dev/null 2>&1; \
         dd if=/dev/zero of='{d}/fill' bs=4k 2>/dev/null; \
         echo '== runs'; CORDON --store \"$S\" runs; echo \"runs=$?\"; \
         echo '== verify'; CORDON --store \"$S\" verify --all; echo \"verify=$?\"; \
         rm '{d}/fill'; dd if=/dev/zero of='{d}/fill' bs=1k count=700 2>/dev/null; \
         echo '== run'; CORDON --store \"$S\" run --workspace ws --model s:m second 2>&1 >/dev/null; echo \"run=$?\"; \
         rm '{d}/fill'; echo '== after'; CORDON --store \"$S\" runs --json",
        d = disk.display()
    );
    let out = common::output(in_small_tmpfs(&home, &disk, &script)).await;
    let all = text(&out);
    assert!(
        all.contains("runs=0") && all.contains("verify=0"),
        "reading works on a full disk: {all}"
    );
    assert!(all.contains("run=1"), "the run fails: {all}");
    assert!(
        all.contains("disk holding the run store is full"),
        "with the hint: {all}"
    );
    let section = all
        .split("== run\n")
        .nth(1)
        .unwrap()
        .split("== after")
        .next()
        .unwrap();
    assert_eq!(section.matches("error:").count(), 1, "said once: {section}");
    assert!(
        all.contains("\"status\":\"failed\""),
        "and recorded as failed: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_retry_after_values_neither_panic_nor_hang() {
    let home = Home::new(
        r#"
        [[turns]]
        text = "survived"
        faults = [
            { kind = "status", status = 429, retry_after = "inf" },
            { kind = "status", status = 429, retry_after_ms = "1e300" },
        ]
        "#,
    )
    .await;
    let out = home
        .run(&["run", "--workspace", "ws", "--model", "s:m", "one"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("asked to wait") && t.contains("max_retry_after_secs"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
    let runs = common::json_lines(&home.run(&["runs", "--json"]).await.stdout);
    assert_eq!(
        runs[0]["status"], "failed",
        "the run is recorded as failed, not running"
    );
    assert_eq!(
        home.server.requests().len(),
        2,
        "'inf' was ignored (backoff), '1e300' refused"
    );

    let home = Home::new(
        r#"
        [[turns]]
        text = "later"
        faults = [{ kind = "status", status = 503, retry_after = 3600 }]
        "#,
    )
    .await;
    let started = std::time::Instant::now();
    let out = home
        .run(&["run", "--workspace", "ws", "--model", "s:m", "two"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("3600 s (60 min)"), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_by_the_model_or_a_command_are_never_stored_or_printed() {
    const GITHUB: &str = "ghp_CanaryCanaryCanaryCanaryCanary012345";
    let home = Home::new(&format!(
        r#"
        [[turns]]
        text = "I see your key {KEY} and will check the token."
        tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "echo token=$TOKEN; printf 'AKIA%s\\n' IOSFODNN7CANARY1" }} }}]
        [[turns]]
        text = "The key was {KEY}; the file had {GITHUB}."
        "#
    ))
    .await;
    std::fs::write(
        home.path().join("manifest.toml"),
        "[env]\nTOKEN = { from_host = \"HOST_TOKEN\" }\n",
    )
    .unwrap();
    let token = "tok-9f8e7d6c5b4a";
    let mut c = home.cordon();
    c.env("HOST_TOKEN", token)
        .args(["run", "--model", "s:m", "--manifest", "manifest.toml", "go"]);
    let out = common::output(c).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains(KEY) && !shown.contains(token), "{shown}");
    assert!(shown.contains("[redacted: s API key]"), "{shown}");
    let run_id = home.only_run_id().await;
    let events = home.run(&["show", "--json", &run_id]).await;
    let all = String::from_utf8_lossy(&events.stdout);
    assert!(!all.contains(KEY) && !all.contains(token), "{all}");
    assert!(all.contains("token=[redacted: env TOKEN]"), "{all}");
    // Tokens no one declared, found by the detectors.
    assert!(all.contains("[redacted: AWS access key id]"), "{all}");
    assert!(all.contains("[redacted: GitHub token]"), "{all}");
    let notes: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "secrets_redacted")
        .collect();
    let named = |name: &str| {
        notes
            .iter()
            .any(|n| n["payload"]["found"][name].as_u64() >= Some(1))
    };
    assert!(
        named("env TOKEN")
            && named("AWS access key id")
            && named("GitHub token")
            && named("s API key"),
        "{notes:?}"
    );
    let verified = home.run(&["verify", &run_id]).await;
    assert!(verified.status.success(), "{}", text(&verified));
    let full = home.run(&["show", "--full", &run_id]).await;
    let exported = home
        .run(&["export", &run_id, "--bundle", "run.bundle"])
        .await;
    assert!(exported.status.success(), "{}", text(&exported));
    let traced = home.run(&["trace", "--json", &run_id]).await;
    let reported = home
        .run(&["report", &run_id, "--html", "report.html"])
        .await;
    assert!(reported.status.success(), "{}", text(&reported));
    let canaries = [KEY, token, "AKIAIOSFODNN7CANARY1", GITHUB];
    let printed = [
        text(&out),
        text(&full),
        text(&exported),
        all.to_string(),
        text(&traced),
    ];
    for (secret, shown) in canaries
        .iter()
        .flat_map(|c| printed.iter().map(move |p| (c, p)))
    {
        assert!(!shown.contains(secret), "{secret} printed: {shown}");
    }
    // Every file cordon wrote: the store, its WAL, the heads, the bundle, and every
    // snapshot listing and (decompressed) content.
    let mut files = 0;
    for entry in walkdir::WalkDir::new(home.path()) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() || entry.path().ends_with("config.toml") {
            continue;
        }
        files += 1;
        let raw = std::fs::read(entry.path()).unwrap();
        let unpacked = zstd::decode_all(&raw[..]).unwrap_or_default();
        for bytes in [&raw, &unpacked] {
            for secret in canaries {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} in {}",
                    entry.path().display()
                );
            }
        }
    }
    assert!(
        files > 5,
        "the store, heads, snapshots, bundle and report were searched"
    );
    assert!(home.path().join("report.html").exists());
    let second = home.server.requests()[1].body.to_string();
    assert!(
        !second.contains(token),
        "the model is not sent the secret either"
    );
    let _: Value = serde_json::from_str(all.lines().next().unwrap()).unwrap();
}

/// A script that records, at each turn, where it runs and what it sees.
const PROBE: &str = r#"
turn_from = "conversation"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo pwd=$(pwd) lit=${LIT:-unset} tok=${TOK:+set} > one.txt" } }]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo pwd=$(pwd) lit=${LIT:-unset} tok=${TOK:+set} > two.txt" } }]
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "echo pwd=$(pwd) lit=${LIT:-unset} tok=${TOK:+set} > three.txt" } }]
[[turns]]
text = "done"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_keeps_the_manifests_root_env_and_grants() {
    let home = Home::new(PROBE).await;
    let h = home.path();
    std::fs::create_dir(h.join("data")).unwrap();
    std::fs::write(h.join("data/x"), "x").unwrap();
    std::fs::write(
        h.join("manifest.toml"),
        format!(
            "root = \"/project\"\n[env]\nLIT = \"plain-value\"\nTOK = {{ from_host = \"HOST_TOK\" }}\n[[grants]]\npath = \"{}\"\nmode = \"ro\"\n",
            h.join("data").display()
        ),
    )
    .unwrap();
    let ws = h.join("built");
    let mut c = home.cordon();
    c.env("HOST_TOK", "tok-value-1234").args([
        "run",
        "--model",
        "s:m",
        "--max-turns",
        "1",
        "--sandbox",
        "namespaces",
        "--manifest",
        "manifest.toml",
        "--workspace",
        ws.to_str().unwrap(),
        "probe",
    ]);
    let out = common::output(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let expected = "pwd=/project lit=plain-value tok=set\n";
    assert_eq!(
        std::fs::read_to_string(ws.join("one.txt")).unwrap(),
        expected
    );
    let run_id = home.only_run_id().await;

    // In place (the workspace is as the checkpoint left it).
    let mut c = home.cordon();
    c.env("HOST_TOK", "tok-value-1234")
        .args(["resume", &run_id, "--max-turns", "2"]);
    let out = common::output(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("two.txt")).unwrap(),
        expected
    );

    // A host variable the run takes must be there again, and is said so when missing.
    let out = home.run(&["resume", &run_id, "--max-turns", "3"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("HOST_TOK"), "{}", text(&out));

    // Restored into another directory: still the same sandbox configuration.
    let other = h.join("elsewhere");
    let mut c = home.cordon();
    c.env("HOST_TOK", "tok-value-1234").args([
        "resume",
        &run_id,
        "--max-turns",
        "3",
        "--workspace",
        other.to_str().unwrap(),
    ]);
    let out = common::output(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(other.join("three.txt")).unwrap(),
        expected
    );
    assert!(other.join("one.txt").exists() && other.join("two.txt").exists());
    let events = common::json_lines(&home.run(&["show", "--json", &run_id]).await.stdout);
    let resumed: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "run_resumed")
        .collect();
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0]["payload"]["restored"], Value::Null, "in place");
    assert_eq!(resumed[1]["payload"]["restored"], true);
    assert_eq!(
        resumed[1]["payload"]["workspace"].as_str().unwrap(),
        std::fs::canonicalize(&other).unwrap().to_str().unwrap()
    );
    let all = events.iter().map(|e| e.to_string()).collect::<String>();
    assert!(
        !all.contains("tok-value-1234"),
        "the host value is never recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_are_recorded_absolute_and_a_fork_is_followed() {
    let home = Home::new("").await;
    let h = home.path();
    std::fs::write(h.join("script.toml"), PROBE).unwrap();
    std::fs::create_dir(h.join("ws3")).unwrap();
    std::fs::create_dir(h.join("elsewhere")).unwrap();
    let mut c = home.cordon();
    c.args([
        "run",
        "--model",
        "scripted-chat:script.toml",
        "--max-turns",
        "1",
        "--workspace",
        "ws3",
        "probe",
    ]);
    let out = common::output(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let run_id = home.only_run_id().await;
    let started = &common::json_lines(&home.run(&["show", "--json", &run_id]).await.stdout)[0];
    let ws3 = std::fs::canonicalize(h.join("ws3")).unwrap();
    assert_eq!(
        started["payload"]["sandbox"]["host_workspace"]
            .as_str()
            .unwrap(),
        ws3.to_str().unwrap()
    );
    assert!(
        started["payload"]["agent"]["model"]
            .as_str()
            .unwrap()
            .starts_with("scripted-chat:/")
    );

    // From another directory, the run goes on in its own workspace, with its own script.
    let mut c = home.cordon();
    c.current_dir(h.join("elsewhere"))
        .args(["resume", &run_id, "--max-turns", "2"]);
    let out = common::output(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(ws3.join("two.txt").exists(), "{}", text(&out));

    // The workspace no longer matches the checkpoint (as after a crash): a fresh one.
    std::fs::write(ws3.join("stray.txt"), "changed behind the run's back").unwrap();
    let out = home.run(&["resume", &run_id, "--max-turns", "3"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let fork = text(&out)
        .lines()
        .find_map(|l| l.split(" into ").nth(1).map(str::trim).map(PathBuf::from))
        .unwrap_or_else(|| panic!("the new place is named: {}", text(&out)));
    assert!(fork.join("three.txt").exists());
    assert!(
        !ws3.join("three.txt").exists(),
        "the user's directory is left alone"
    );

    // A later resume follows the fork instead of forking again.
    let out = home.run(&["resume", &run_id, "--max-turns", "4"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("restored from checkpoint"),
        "{}",
        text(&out)
    );
    let shown = String::from_utf8_lossy(&home.run(&["show", &run_id]).await.stdout).into_owned();
    assert!(shown.contains(&format!("in {}", fork.display())), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_that_reach_the_host_or_cordons_records_are_refused() {
    let home = Home::new("[[turns]]\ntext = \"x\"\n").await;
    let h = home.path();
    std::os::unix::fs::symlink("/", h.join("root-link")).unwrap();
    std::fs::create_dir(h.join("ok")).unwrap();
    let cases = [
        ("/".to_string(), "ro", "whole host"),
        (
            h.join("root-link").display().to_string(),
            "ro",
            "whole host",
        ),
        (h.display().to_string(), "ro", "cordon's own record"),
        ("/proc/self".to_string(), "ro", "belongs to the host"),
        (
            std::path::Path::new(&assert_cmd::cargo::cargo_bin("cordon"))
                .parent()
                .unwrap()
                .display()
                .to_string(),
            "rw",
            "cordon's own program",
        ),
    ];
    for tier in ["namespaces", "landlock"] {
        for (path, mode, why) in &cases {
            std::fs::write(
                h.join("manifest.toml"),
                format!("[[grants]]\npath = \"{path}\"\nmode = \"{mode}\"\n"),
            )
            .unwrap();
            let ws = h.join(format!("ws-{tier}-{}", path.len()));
            let out = home
                .run(&[
                    "sandbox",
                    "exec",
                    "--sandbox",
                    tier,
                    "--manifest",
                    "manifest.toml",
                    "--workspace",
                    ws.to_str().unwrap(),
                    "--",
                    "cat",
                    "/etc/shadow",
                ])
                .await;
            assert_eq!(out.status.code(), Some(2), "{tier} {path}: {}", text(&out));
            assert!(text(&out).contains(why), "{tier} {path}: {}", text(&out));
            assert!(!String::from_utf8_lossy(&out.stdout).contains("root:"));
        }
    }
    // A workspace that holds the run store is refused too.
    let out = home
        .run(&[
            "sandbox",
            "exec",
            "--workspace",
            h.to_str().unwrap(),
            "--",
            "true",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // An ordinary grant works.
    std::fs::write(
        h.join("manifest.toml"),
        format!(
            "[[grants]]\npath = \"{}\"\nmode = \"ro\"\n",
            h.join("ok").display()
        ),
    )
    .unwrap();
    let ws = h.join("ws-ok");
    let out = home
        .run(&[
            "sandbox",
            "exec",
            "--manifest",
            "manifest.toml",
            "--workspace",
            ws.to_str().unwrap(),
            "--",
            "ls",
            h.join("ok").to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
}

/// The peak resident memory of a running process, polled until it exits.
fn peak_rss_kib(child: &mut std::process::Child) -> u64 {
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            peak = peak.max(hwm);
        }
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordons_memory_stays_bounded_whatever_a_command_prints() {
    let home = Home::new(
        r#"
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "head -c 300000000 /dev/zero | tr '\\0' a; echo; echo END", yield_time_ms = 120000 } }]
        [[turns]]
        tool_calls = [{ name = "exec_command", arguments = { cmd = "yes & sleep 4; kill %1", yield_time_ms = 60000 } }]
        [[turns]]
        text = "done"
        "#,
    )
    .await;
    let ws = home.path().join("ws");
    let mut c = home.cordon();
    c.args([
        "run",
        "--json",
        "--model",
        "s:m",
        "--workspace",
        ws.to_str().unwrap(),
        "print",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let (peak, out) = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut s).unwrap();
            s
        });
        let peak = peak_rss_kib(&mut child);
        (peak, reader.join().unwrap())
    })
    .await
    .unwrap();
    assert!(peak > 0, "the peak was read");
    assert!(
        peak < 200 * 1024,
        "cordon's resident memory reached {} MiB",
        peak / 1024
    );
    let events = common::json_lines(&out);
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .collect();
    assert_eq!(results.len(), 2, "{events:?}");
    let first = results[0]["payload"]["output"].as_str().unwrap();
    assert!(
        first.contains("Output bytes dropped: 29"),
        "{}",
        &first[..300.min(first.len())]
    );
    assert!(first.contains("END"), "the end of the output is kept");
    assert!(first.len() < 100_000, "the model gets a bounded answer");
}
