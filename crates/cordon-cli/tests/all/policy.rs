//! The policy gateway through the real binary: a run under a policy file, whose every
//! decision is in the log; who may approve; a changed policy file on resume; `policy check`
//! and `policy explain`.

use crate::common;

use serde_json::Value;
use std::path::Path;

use common::expect;

async fn events(home: &Path) -> Vec<cordon_core::Event> {
    let store = cordon_store::Store::open_read_only(&home.join("runs.db"))
        .await
        .unwrap();
    let runs = store.list_runs(None, 1).await.unwrap();
    store.events(&runs[0].run_id).await.unwrap()
}

fn of_kind<'a>(events: &'a [cordon_core::Event], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| &e.payload)
        .collect()
}

const TEAM: &str = r#"name = "team"
extends = "base"

[classes]
destructive = "deny"

[[command]]
id = "push"
program = "git"
args = ["push"]
decision = "ask"
approvers = ["alice"]
reason = "publishes work"
match = ["git push origin main"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_a_policy_is_denied_asked_and_recorded() {
    let (_server, home) = common::scripted_home(
        r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "rm -rf data" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo ok > ok.txt && git push origin main" } }]
            [[turns]]
            text = "Done."
            "#,
    )
    .await;
    let h = home.path();
    std::fs::write(h.join("team.toml"), TEAM).unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"worker\"\ntools = [\"exec_command\"]\npolicy = \"team.toml\"\n",
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::write(ws.join("data/keep.txt"), "keep").unwrap();
    let wss = ws.to_str().unwrap();

    let out = expect(
        h,
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            wss,
            "go",
        ],
        5,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the policy refused"), "{stderr}");
    assert!(
        stderr.contains("under policy team (builtin:base < /"),
        "{stderr}"
    );
    assert!(
        ws.join("data/keep.txt").exists(),
        "the denied command never ran"
    );
    assert!(
        !ws.join("ok.txt").exists(),
        "the asked command waits, all of it"
    );

    let evs = events(h).await;
    let started = of_kind(&evs, "run_started")[0];
    assert_eq!(started["policy"]["name"], "team");
    let files: Vec<&str> = started["policy"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["origin"].as_str().unwrap())
        .collect();
    assert_eq!(files[0], "builtin:base");
    assert!(files[1].ends_with("team.toml"), "{files:?}");
    assert_eq!(started["policy"]["files"][1]["text"], TEAM);
    assert_eq!(started["policy_digest"], started["policy"]["digest"]);
    let decisions = of_kind(&evs, "policy_decision");
    assert_eq!(decisions[0]["verdict"], "deny");
    assert_eq!(decisions[0]["rules"][0], "class:destructive");
    assert_eq!(decisions[1]["verdict"], "ask");
    assert_eq!(decisions[1]["rules"][0], "push");
    let refused = of_kind(&evs, "tool_result")[0];
    assert_eq!(refused["not_run"], true);
    assert!(
        refused["output"]
            .as_str()
            .unwrap()
            .contains("class:destructive"),
        "the model is told which rule refused: {refused}"
    );
    let asked = of_kind(&evs, "approval_requested")[0];
    assert_eq!(asked["approvers"][0], "alice");
    assert_eq!(asked["rules"][0], "push");

    let pending = expect(h, &["approvals", "--json"], 0).await;
    let pending = common::json_lines(&pending.stdout);
    assert_eq!(pending[0]["approvers"][0], "alice");
    let listed = expect(h, &["approvals"], 0).await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("only alice may approve"), "{listed}");

    // Another policy given on resume judges new calls; it does not approve a waiting one.
    std::fs::write(
        h.join("lax.toml"),
        "extends = \"base\"\n[classes]\nnetwork = \"allow\"\ndestructive = \"allow\"\n",
    )
    .unwrap();
    let lax = h.join("lax.toml");
    let lax = lax.to_str().unwrap();
    expect(h, &["resume", "last", "--policy", lax], 5).await;
    assert!(
        !ws.join("ok.txt").exists(),
        "a waiting call waits under any policy"
    );

    // Only the named approver may approve.
    let refused = expect(h, &["approve", "last", "--as", "bob"], 2).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("only alice"), "{stderr}");
    expect(h, &["approve", "last", "--as", "alice"], 0).await;

    // A policy file changed under a waiting run stops the resume, until a person says which
    // rules the run goes on under.
    std::fs::write(lax, "extends = \"base\"\n# loosened\n").unwrap();
    let changed = expect(h, &["resume", "last"], 2).await;
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(stderr.contains("has changed since run"), "{stderr}");
    assert!(stderr.contains("--policy"), "{stderr}");
    expect(h, &["resume", "last", "--policy", lax], 0).await;
    assert_eq!(std::fs::read_to_string(ws.join("ok.txt")).unwrap(), "ok\n");

    let evs = events(h).await;
    let resumed = of_kind(&evs, "run_resumed");
    assert_eq!(resumed.len(), 2);
    let last = &resumed[1]["policy"]["files"][1]["text"];
    assert!(last.as_str().unwrap().contains("# loosened"), "{last}");
    let state = cordon_core::RunState::fold(&evs).unwrap();
    assert!(state.policy.unwrap().files[1].text.contains("# loosened"));
    let shown = expect(h, &["show", "last"], 0).await;
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("policy team"), "{shown}");
    assert!(shown.contains("under another policy"), "{shown}");
}

#[test]
fn policy_check_points_at_problems_and_failing_examples() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("bad.toml"),
        "name = \"bad\"\n\n[[command]]\nprogram = \"git\"\nargs = [\"push\"]\ndecision = \"ask\"\nmatch = [\"git status\"]\n",
    )
    .unwrap();
    std::fs::write(h.join("typo.toml"), "[classes]\nnetwrok = \"ask\"\n").unwrap();
    let out = common::cordon(h)
        .args(["policy", "check", "bad.toml"])
        .current_dir(h)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr
            .contains("bad.toml:3:1: rule command:git push should match 'git status' but does not"),
        "{stderr}"
    );
    let out = common::cordon(h)
        .args(["policy", "check", "typo.toml", "--json"])
        .current_dir(h)
        .assert()
        .code(2);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(
        v["problems"][0]["at"]
            .as_str()
            .unwrap()
            .ends_with("/typo.toml:2:1"),
        "{v}"
    );
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("netwrok")
    );
    let out = common::cordon(h)
        .args(["policy", "check", "prod", "--json"])
        .assert()
        .code(0);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        v["files"],
        serde_json::json!(["builtin:base", "builtin:prod"])
    );
    let out = common::cordon(h)
        .args(["policy", "check", "nosuch"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("base, dev, stage, prod"), "{stderr}");
}

#[test]
fn policy_explain_says_which_rules_decided() {
    let home = tempfile::tempdir().unwrap();
    let explain = |args: &[&str]| {
        let out = common::cordon(home.path())
            .args(["policy", "explain"])
            .args(args)
            .assert()
            .code(0);
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    };
    insta::assert_snapshot!(
        "explain_command",
        explain(&[
            "--policy",
            "stage",
            "--",
            "cargo test && git push origin main"
        ])
    );
    insta::assert_snapshot!(
        "explain_words",
        explain(&[
            "--policy",
            "prod",
            "--",
            "sh",
            "-c",
            "rm -rf / ; echo $(id)"
        ])
    );
    insta::assert_snapshot!(
        "explain_url",
        explain(&[
            "--policy",
            "dev",
            "--url",
            "http://169.254.169.254/latest/meta-data"
        ])
    );
    insta::assert_snapshot!(
        "explain_tool",
        explain(&[
            "--policy",
            "base",
            "--tool",
            "view_image",
            "--args",
            r#"{"path":"certs/server.pem"}"#
        ])
    );
    let json: Value =
        serde_json::from_str(&explain(&["--policy", "stage", "--json", "--", "git push"])).unwrap();
    assert_eq!(json["verdict"], "ask");
    assert_eq!(json["deciding"][0], "git-push");
    assert_eq!(json["reasons"][0]["at"], "builtin:stage:14:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_approval_does_not_release_a_call_waiting_under_another_rule() {
    let (_server, home) = common::scripted_home(
        r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "touch a" } }]
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "touch deployed" } }]
            [[turns]]
            text = "Done."
            "#,
    )
    .await;
    let h = home.path();
    let strict = "extends = \"base\"\n[classes]\nworkspace_write = \"ask\"\n";
    std::fs::write(
        h.join("p1.toml"),
        format!("{strict}[[command]]\nid = \"deploys\"\nprogram = \"touch\"\nargs = [\"deployed\"]\ndecision = \"ask\"\n"),
    )
    .unwrap();
    std::fs::write(h.join("p2.toml"), strict).unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"worker\"\ntools = [\"exec_command\"]\n",
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir(&ws).unwrap();
    let wss = ws.to_str().unwrap();
    let p1 = h.join("p1.toml");
    let p2 = h.join("p2.toml");
    let run = [
        "run",
        "--agent",
        "agent.toml",
        "--model",
        "s:m",
        "--workspace",
        wss,
        "--policy",
        p1.to_str().unwrap(),
        "go",
    ];
    expect(h, &run, 5).await;
    // Approving ordinary writes for the rest of the run...
    expect(h, &["approve", "last", "--always"], 0).await;
    // ...does not approve the deploy, which waits under its own rule...
    expect(h, &["resume", "last"], 5).await;
    assert!(ws.join("a").exists());
    assert!(!ws.join("deployed").exists());
    // ...not even under a policy in which only the approved rule asks for it.
    expect(h, &["resume", "last", "--policy", p2.to_str().unwrap()], 5).await;
    assert!(
        !ws.join("deployed").exists(),
        "a waiting call needs its own approval"
    );
    expect(h, &["approve", "last"], 0).await;
    expect(h, &["resume", "last"], 0).await;
    assert!(ws.join("deployed").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_out_through_the_proxy_are_recorded_and_a_person_can_allow_a_host() {
    let up = cordon_testkit::Upstream::http().await.unwrap();
    let port = up.port;
    // The second command's address is in a file the command judge cannot read: the proxy
    // judges it when the request is made.
    let (_server, home) = common::scripted_home(&format!(
        r#"
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "NO_PROXY= no_proxy= curl -sS http://127.0.0.1:{port}/hello" }} }}]
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "curl -sS -K fetch.cfg" }} }}]
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "rm -rf old" }} }}]
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "curl -sS -K fetch.cfg" }} }}]
            [[turns]]
            text = "Done."
            "#
    ))
    .await;
    let h = home.path();
    std::fs::write(
        h.join("net.toml"),
        format!(
            r#"name = "net"
extends = "base"

[classes]
network = "allow"

[[network]]
host = "127.0.0.1"
ports = [{port}]
decision = "allow"

[[network]]
host = "example.com"
decision = "ask"
reason = "new hosts are reviewed"

[[network]]
host = "evil.example"
decision = "deny"
"#
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"fetcher\"\ntools = [\"exec_command\"]\npolicy = \"net.toml\"\n",
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir_all(ws.join("old")).unwrap();
    std::fs::write(ws.join("fetch.cfg"), "url = \"http://example.com/data\"\n").unwrap();
    let wss = ws.to_str().unwrap();
    let args = [
        "run",
        "--agent",
        "agent.toml",
        "--model",
        "s:m",
        "--workspace",
        wss,
        "go",
    ];
    // The destructive command waits for a person.
    expect(h, &args, 5).await;
    let evs = events(h).await;
    let run_id = evs[0].run_id.to_string();
    assert_eq!(
        of_kind(&evs, "host_requested")[0]["hosts"][0],
        "example.com"
    );
    let requests = of_kind(&evs, "network_request");
    assert_eq!(
        requests.len(),
        2,
        "{requests:?} {:?}",
        of_kind(&evs, "tool_result")
    );
    assert_eq!(
        (
            &requests[0]["method"],
            &requests[0]["path"],
            &requests[0]["verdict"],
            &requests[0]["status"]
        ),
        (
            &Value::from("GET"),
            &Value::from("/hello"),
            &Value::from("allow"),
            &Value::from(200)
        ),
    );
    assert_eq!(requests[1]["host"], "example.com");
    assert_eq!(requests[1]["verdict"], "ask");
    assert_eq!(requests[1]["status"], 403);
    let results = of_kind(&evs, "tool_result");
    assert!(
        results[0]["output"]
            .as_str()
            .unwrap()
            .ends_with("Output:\nhello from /hello\n"),
        "{}",
        results[0]["output"]
    );
    let refused = results[1]["output"].as_str().unwrap();
    assert!(
        refused.contains("refused GET example.com:80")
            && refused.contains("new hosts are reviewed")
            && refused.contains(&format!("cordon approve {run_id} --host example.com")),
        "{refused}"
    );
    // The host waits where people look for what waits.
    let listed = expect(h, &["approvals", "--json"], 0).await;
    let listed = common::json_lines(&listed.stdout);
    assert!(
        listed
            .iter()
            .any(|l| l["host"] == "example.com" && l["run_id"] == run_id.as_str()),
        "{listed:?}"
    );
    // A grant cannot override a rule's deny, nor reach a private address no rule names.
    let denied = expect(h, &["approve", &run_id, "--host", "evil.example"], 2).await;
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("cannot override a rule's deny"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    expect(h, &["approve", &run_id, "--host", "10.0.0.1"], 2).await;
    expect(h, &["approve", &run_id, "--host", "example.com:443"], 2).await;
    expect(h, &["approve", &run_id, "--host", "*.com"], 2).await;
    let granted = expect(
        h,
        &["approve", &run_id, "--host", "Example.COM", "--json"],
        0,
    )
    .await;
    let granted: Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(granted["host"], "example.com");
    assert_eq!(granted["by"], "tester");
    expect(h, &["approve", &run_id, "--host", "example.com"], 2).await;
    // On: the destructive command waits for a person in turn.
    expect(h, &["resume", &run_id], 5).await;
    expect(h, &["approve", &run_id], 0).await;
    expect(h, &["resume", &run_id], 0).await;
    let evs = events(h).await;
    assert_eq!(of_kind(&evs, "host_granted")[0]["host"], "example.com");
    let after = of_kind(&evs, "network_request");
    let last = after.last().unwrap();
    // Allowed now; this machine cannot resolve the name, which the record says.
    assert_eq!(last["verdict"], "allow", "{last}");
    assert!(
        last["rules"]
            .as_array()
            .unwrap()
            .contains(&Value::from("host:example.com")),
        "{last}"
    );
    assert_eq!(last["status"], 502, "{last}");
    assert!(!ws.join("old").exists(), "the approved command ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_reaches_its_host_and_never_the_sandbox_or_the_record() {
    const SECRET: &str = "ghp_cordonTestValue0123456789abcdef";
    let up = cordon_testkit::Upstream::https().await.unwrap();
    let (port, upstream_ca) = (up.port, up.ca_pem.clone().unwrap());
    let (_server, home) = common::scripted_home(&format!(
        r#"
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "NO_PROXY= no_proxy= curl -sS -H \"Authorization: Bearer $GITHUB_TOKEN\" https://127.0.0.1:{port}/user; NO_PROXY= no_proxy= env -u CURL_CA_BUNDLE -u SSL_CERT_FILE curl -sS https://127.0.0.1:{port}/system-store" }} }}]
            [[turns]]
            tool_calls = [{{ name = "exec_command", arguments = {{ cmd = "echo \"token: $GITHUB_TOKEN\" > token.txt; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ghp_; grep -c ghp_ token.txt; cat token.txt" }} }}]
            [[turns]]
            text = "Done."
            "#
    ))
    .await;
    let h = home.path();
    std::fs::write(h.join("upstream-ca.pem"), upstream_ca).unwrap();
    std::fs::write(
        h.join("gh.toml"),
        format!(
            r#"name = "gh"
extends = "base"

[classes]
network = "allow"
workspace_write = "allow"

[[network]]
host = "127.0.0.1"
ports = [{port}]
decision = "allow"

[[credential]]
name = "github"
host = "127.0.0.1"
env = "GITHUB_TOKEN"
header = "Authorization"
format = "Bearer {{}}"
from_env = "TEST_GITHUB_TOKEN"
"#
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"gh\"\ntools = [\"exec_command\"]\npolicy = \"gh.toml\"\n",
    )
    .unwrap();
    let ws = h.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut c = common::as_tester(h);
    c.env("TEST_GITHUB_TOKEN", SECRET)
        // The proxy verifies the upstream against this host's trust store.
        .env("SSL_CERT_FILE", h.join("upstream-ca.pem"))
        .args([
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws.to_str().unwrap(),
            "go",
        ]);
    let out = common::output(c).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains(SECRET));
    // The real value arrived where it was declared for…
    let head = up.heads().remove(0);
    assert!(
        head.contains(&format!("authorization: Bearer {SECRET}")),
        "{head}"
    );
    // …and the sandbox saw the placeholder only: in its files, its processes' environment.
    let evs = events(h).await;
    let results = of_kind(&evs, "tool_result");
    let first = results[0]["output"].as_str().unwrap();
    // The second request trusted the run's authority through the system's store alone.
    assert!(first.ends_with("Output:\nok\nok\n"), "{first}");
    let second = results[1]["output"].as_str().unwrap();
    assert!(
        second.ends_with("Output:\n0\n0\ntoken: cordon-credential:github\n"),
        "{second}"
    );
    let requests = of_kind(&evs, "network_request");
    assert!(
        requests.iter().any(|r| r["summary"]
            .as_str()
            .unwrap()
            .contains("credentials added: github")),
        "{requests:?}"
    );
    // Nothing cordon keeps holds it: the store, its journal, the snapshots.
    for entry in walkdir(h) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the credential",
            entry.display()
        );
    }
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                all.push(p);
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rules_that_deny_are_kept_by_the_sandbox_mounts_too() {
    // cat and cp open their files themselves: the command judge allows them (read-only and
    // workspace-write programs), and the mounts keep the path rules.
    let (_server, home) = common::scripted_home(
        r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "cat secrets/key.txt; echo rc=$?; cp notes/x.txt secrets/new.txt; cat ro/a.txt; cp notes/x.txt ro/a.txt; echo rc=$?; cat notes/x.txt; mv data d2; cat d2/secrets/cred.txt data/secrets/cred.txt" } }]
            [[turns]]
            text = "Done."
            "#,
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("paths.toml"),
        r#"name = "paths"
extends = "base"

[[path]]
glob = "secrets/**"
read = "deny"
write = "deny"

[[path]]
glob = "ro/*"
write = "deny"

[[path]]
glob = "data/secrets/**"
read = "deny"
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"reader\"\ntools = [\"exec_command\"]\npolicy = \"paths.toml\"\n",
    )
    .unwrap();
    let ws = h.join("ws");
    for (path, text) in [
        ("secrets/key.txt", "TOP-SECRET-KEY"),
        ("ro/a.txt", "read me"),
        ("notes/x.txt", "notes"),
        ("data/secrets/cred.txt", "NESTED-SECRET"),
    ] {
        std::fs::create_dir_all(ws.join(path).parent().unwrap()).unwrap();
        std::fs::write(ws.join(path), text).unwrap();
    }
    expect(
        h,
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "--workspace",
            ws.to_str().unwrap(),
            "--sandbox",
            "namespaces",
            "go",
        ],
        0,
    )
    .await;
    let evs = events(h).await;
    let out = of_kind(&evs, "tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!out.contains("TOP-SECRET-KEY"), "{out}");
    // The directory above a protected entry cannot be renamed to step around its rule.
    assert!(!out.contains("NESTED-SECRET"), "{out}");
    assert!(out.contains("Device or resource busy"), "{out}");
    assert!(ws.join("data/secrets/cred.txt").exists());
    assert!(out.contains("Permission denied"), "{out}");
    assert!(
        out.contains("read me"),
        "reading what is only write-denied works: {out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(
        std::fs::read_to_string(ws.join("ro/a.txt")).unwrap(),
        "read me"
    );
    assert!(
        !ws.join("secrets/new.txt").exists(),
        "nothing new is made in a denied directory"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("secrets/key.txt")).unwrap(),
        "TOP-SECRET-KEY",
        "the file itself is untouched"
    );
}
