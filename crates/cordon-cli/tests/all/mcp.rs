//! MCP servers through the real binary: the reference filesystem server inside the run's
//! sandbox (it cannot read what the sandbox hides, whatever directories it is allowed), the
//! reference "everything" server trusted on the host, their calls in the log and the view.
//!
//! `scripts/test` installs the servers from npm under `target/peers/node_modules` and sets
//! CORDON_REQUIRE_PEERS=1, which makes a missing server a failure rather than a skip.

use crate::common;
use std::path::{Path, PathBuf};

/// Where the npm peers are, or `None` (a failure under CORDON_REQUIRE_PEERS).
fn peers() -> Option<PathBuf> {
    cordon_testkit::peers::mcp_servers()
}

/// An agent with the filesystem server in the sandbox (allowed the workspace and `/tmp`,
/// where the tests' host files are: only the sandbox keeps it from them) and the everything
/// server on the host.
fn agent(h: &Path, peers: &Path) -> String {
    let text = format!(
        r#"name = "mcp-user"
instructions = "Use the MCP tools."

[mcp_servers.files]
command = "node"
args = ["{fs}", "/workspace", "/tmp"]

[mcp_servers.everything]
command = "node"
args = ["{everything}", "stdio"]
trusted = true
allow_tools = ["echo", "get-sum"]
"#,
        fs = peers
            .join("@modelcontextprotocol/server-filesystem/dist/index.js")
            .display(),
        everything = peers
            .join("@modelcontextprotocol/server-everything/dist/index.js")
            .display(),
    );
    std::fs::write(h.join("agent.toml"), text).unwrap();
    h.join("agent.toml").display().to_string()
}

#[tokio::test]
async fn servers_in_the_sandbox_and_on_the_host_serve_a_scripted_run() {
    let Some(peers) = peers() else { return };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    // A file beside the workspace on the host: the sandboxed server must not reach it.
    let secret = h.join("host-secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    std::fs::write(
        h.join("m.toml"),
        format!(
            "grants = [{{ path = \"{}\" }}]\n\n[entries.\"notes.txt\"]\ntype = \"file\"\ncontent = \"notes for the agent\"\n",
            peers.display()
        ),
    )
    .unwrap();
    let call = |id: &str, name: &str, args: serde_json::Value| {
        format!(
            "{{ call_id = \"{id}\", name = \"{name}\", arguments = {} }}",
            toml_inline(&args)
        )
    };
    let script = format!(
        "[[turns]]\ntool_calls = [{}, {}, {}, {}, {}]\n\n[[turns]]\ntext = \"done\"\n",
        call(
            "read",
            "files__read_text_file",
            serde_json::json!({"path": "/workspace/notes.txt"})
        ),
        call(
            "steal",
            "files__read_text_file",
            serde_json::json!({"path": secret.display().to_string()})
        ),
        call(
            "write",
            "files__write_file",
            serde_json::json!({"path": "/workspace/from-mcp.txt", "content": "written by the server"})
        ),
        call(
            "echo",
            "everything__echo",
            serde_json::json!({"message": "hello host"})
        ),
        call("env", "everything__get-env", serde_json::json!({})),
    );
    std::fs::write(h.join("s.toml"), script).unwrap();
    let agent = agent(h, &peers);
    let ws = h.join("ws");
    let model = format!("scripted:{}", h.join("s.toml").display());
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--manifest",
            &h.join("m.toml").display().to_string(),
            "--workspace",
            &ws.display().to_string(),
            "--model",
            &model,
            "use the servers",
        ],
        0,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mcp server files in the sandbox"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mcp server everything ON THE HOST (trusted)"),
        "{stderr}"
    );

    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["kind"] == kind).collect()
    };
    let started = of("mcp_server_started");
    assert_eq!(started.len(), 2, "{started:?}");
    let files = started
        .iter()
        .find(|e| e["payload"]["server"] == "files")
        .unwrap();
    assert_eq!(files["payload"]["runs"], "sandbox");
    assert!(
        files["payload"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "files__write_file")
    );
    let everything = started
        .iter()
        .find(|e| e["payload"]["server"] == "everything")
        .unwrap();
    assert_eq!(everything["payload"]["runs"], "host");
    assert_eq!(
        everything["payload"]["tools"],
        serde_json::json!(["everything__echo", "everything__get-sum"])
    );
    let results: std::collections::BTreeMap<String, (String, bool)> = of("tool_result")
        .iter()
        .map(|e| {
            let p = &e["payload"];
            (
                p["call_id"].as_str().unwrap().to_string(),
                (
                    p["output"].as_str().unwrap().to_string(),
                    p["is_error"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(results["read"], ("notes for the agent".to_string(), false));
    let (stolen, failed) = &results["steal"];
    assert!(*failed && !stolen.contains("the host's secret"), "{stolen}");
    // The server allowed the path; the sandbox has no such file.
    assert!(stolen.contains("ENOENT"), "{stolen}");
    assert!(!results["write"].1, "{:?}", results["write"]);
    assert_eq!(
        std::fs::read_to_string(ws.join("from-mcp.txt")).unwrap(),
        "written by the server"
    );
    assert_eq!(results["echo"], ("Echo: hello host".to_string(), false));
    // A tool the allow list holds back is not there to call.
    assert!(
        results["env"].1 && results["env"].0.contains("no tool named"),
        "{:?}",
        results["env"]
    );
    // The workspace write is an external effect (not read-only): its intent is on disk first.
    let decisions = of("policy_decision");
    assert!(
        decisions
            .iter()
            .any(|d| d["payload"]["tool"] == "files__write_file")
    );

    let shown =
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout).to_string();
    assert!(
        shown.contains("server everything ON THE HOST (trusted) · stdio"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_server_that_does_not_start_is_named_before_the_run() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    std::fs::write(h.join("s.toml"), "[[turns]]\ntext = \"never\"\n").unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[mcp_servers.broken]\ncommand = \"/no/such/server\"\ntrusted = true\n",
    )
    .unwrap();
    let model = format!("scripted:{}", h.join("s.toml").display());
    let agent = h.join("agent.toml").display().to_string();
    let out = common::expect(h, &["run", "--agent", &agent, "--model", &model, "go"], 2).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the MCP server 'broken' did not start"),
        "{err}"
    );
    assert!(err.contains("/no/such/server"), "{err}");
    // A sandboxed server given host secrets is refused when the agent file is read.
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[mcp_servers.leaky]\ncommand = \"node\"\nenv_from_host = { TOKEN = \"HOME\" }\n",
    )
    .unwrap();
    let out = common::expect(h, &["run", "--agent", &agent, "--model", &model, "go"], 2).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mcp_servers.leaky") && err.contains("no host secrets"),
        "{err}"
    );
}

fn toml_inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", serde_json::to_string(k).unwrap(), toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The README's example of an MCP server, a skill and a long run that compacts, run as the
/// README says (from the repository's root).
#[tokio::test]
async fn the_readme_long_run_example_works() {
    if peers().is_none() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let mut c = common::cordon_std(h);
    c.current_dir(&root)
        .env("CORDON_CONFIG", h.join("none.toml"))
        .args([
            "run",
            "--agent",
            "examples/long-run/agent.toml",
            "--manifest",
            "examples/long-run/manifest.toml",
            "--model",
            "scripted:examples/long-run/script.toml",
            "Write the release notes.",
        ]);
    std::fs::write(h.join("none.toml"), "").unwrap();
    let out = common::output(c).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("## Release notes"));
    assert!(
        stderr.contains("mcp server everything ON THE HOST (trusted)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cat .agents/skills/release-notes/SKILL.md"),
        "{stderr}"
    );
    assert!(stderr.contains("The sum of 2 and 1 is 3."), "{stderr}");
    assert!(stderr.contains("compacted before turn"), "{stderr}");
}

/// An MCP call waits for a person like any call; the resume starts the server again and runs
/// it.
#[tokio::test]
async fn an_approved_mcp_call_runs_after_a_resume_that_starts_the_server_again() {
    let Some(peers) = peers() else { return };
    let (_server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ call_id = \"e\", name = \"everything__echo\", arguments = { message = \"approved\" } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        format!(
            "name = \"a\"\n[approvals]\ntools = [\"everything__echo\"]\n\n[mcp_servers.everything]\ncommand = \"node\"\nargs = [\"{}\", \"stdio\"]\ntrusted = true\n",
            peers
                .join("@modelcontextprotocol/server-everything/dist/index.js")
                .display()
        ),
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    common::expect(h, &["run", "--agent", &agent, "--model", "s:m", "echo"], 5).await;
    common::expect(h, &["approve", "last", "--as", "alice"], 0).await;
    let out = common::expect(h, &["resume", "last"], 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let started = events
        .iter()
        .filter(|e| e["kind"] == "mcp_server_started")
        .count();
    assert_eq!(started, 2, "started for the run and again for its resume");
    let result = events.iter().find(|e| e["kind"] == "tool_result").unwrap();
    assert_eq!(result["payload"]["output"], "Echo: approved");
    assert_eq!(result["payload"]["tool"], "everything__echo");
}

/// A server that adds a tool mid-run says so; the next request offers it, the change is
/// recorded, and the model can call it.
#[tokio::test]
async fn a_tool_a_server_adds_mid_run_is_offered_on_the_next_turn() {
    let Some(peers) = peers() else { return };
    let (server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ name = \"changing__add_tool\", arguments = {} }]\n[[turns]]\ntool_calls = [{ call_id = \"n\", name = \"changing__added\", arguments = { n = 3 } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .await;
    let h = home.path();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cordon-mcp/tests/fixtures/changing-server.cjs")
        .canonicalize()
        .unwrap();
    std::fs::write(
        h.join("agent.toml"),
        format!(
            "name = \"a\"\n[mcp_servers.changing]\ncommand = \"node\"\nargs = [\"{}\"]\ntrusted = true\nenv = {{ NODE_PATH = \"{}\" }}\n",
            fixture.display(),
            peers.display()
        ),
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let out = common::expect(h, &["run", "--agent", &agent, "--model", "s:m", "go"], 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let offered = |i: usize| -> Vec<String> {
        server.requests()[i].body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!offered(0).contains(&"changing__added".to_string()));
    assert!(
        offered(1).contains(&"changing__added".to_string()),
        "{:?}",
        offered(1)
    );
    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let changed = events
        .iter()
        .find(|e| e["kind"] == "tools_changed")
        .unwrap();
    assert_eq!(changed["payload"]["source"], "changing");
    assert!(
        changed["payload"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "changing__added")
    );
    let result = events
        .iter()
        .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == "n")
        .unwrap();
    assert_eq!(result["payload"]["output"], "added 3");
}

/// `cordon doctor --agent` says where each server runs, starts those outside the sandbox, and
/// lists the skills; a server that does not start makes it exit 2.
#[tokio::test]
async fn doctor_checks_an_agents_servers_and_skills() {
    if peers().is_none() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let mut c = common::cordon_std(h);
    c.current_dir(&root).args([
        "doctor",
        "--json",
        "--agent",
        "examples/long-run/agent.toml",
    ]);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let agent = &report["agent"];
    assert_eq!(agent["mcp_servers"][0]["runs"], "host");
    assert_eq!(agent["mcp_servers"][0]["started"], true);
    assert_eq!(
        agent["mcp_servers"][0]["tools"],
        serde_json::json!(["everything__echo", "everything__get-sum"])
    );
    assert_eq!(agent["skills"][0]["name"], "release-notes");

    std::fs::write(
        h.join("agent.toml"),
        "name = \"x\"\n[mcp_servers.gone]\ncommand = \"/no/such/server\"\ntrusted = true\n[mcp_servers.boxed]\ncommand = \"node\"\n",
    )
    .unwrap();
    let out = common::expect(h, &["doctor", "--agent", "agent.toml"], 2).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mcp gone") && text.contains("DOES NOT START"),
        "{text}"
    );
    assert!(
        text.contains("mcp boxed") && text.contains("in each run's sandbox"),
        "{text}"
    );
}

/// An agent whose only sandboxed part is an MCP server gets a sandbox, on `run` with a
/// workspace and on its resume.
#[tokio::test]
async fn a_sandboxed_server_alone_gets_the_run_a_sandbox_and_its_resume_too() {
    let Some(peers) = peers() else { return };
    let (_server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ call_id = \"r\", name = \"files__read_text_file\", arguments = { path = \"/workspace/n.txt\" } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("m.toml"),
        format!(
            "grants = [{{ path = \"{}\" }}]\n[entries.\"n.txt\"]\ntype = \"file\"\ncontent = \"in the workspace\"\n",
            peers.display()
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("agent.toml"),
        format!(
            "name = \"a\"\ntools = [\"calculator\"]\n[approvals]\ntools = [\"files__read_text_file\"]\n[mcp_servers.files]\ncommand = \"node\"\nargs = [\"{}\", \"/workspace\"]\n",
            peers
                .join("@modelcontextprotocol/server-filesystem/dist/index.js")
                .display()
        ),
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let m = h.join("m.toml").display().to_string();
    common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--manifest",
            &m,
            "--model",
            "s:m",
            "go",
        ],
        5,
    )
    .await;
    common::expect(h, &["approve", "last"], 0).await;
    common::expect(h, &["resume", "last"], 0).await;
    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let read = events
        .iter()
        .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == "r")
        .unwrap();
    assert_eq!(read["payload"]["output"], "in the workspace");
}

/// A trusted server that fails at start with its secret on stderr: the error names the
/// failure, not the secret.
#[tokio::test]
async fn a_startup_failure_does_not_print_the_servers_secrets() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    std::fs::write(h.join("s.toml"), "[[turns]]\ntext = \"never\"\n").unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[mcp_servers.leaky]\ncommand = \"sh\"\nargs = [\"-c\", \"echo token is $T >&2; exit 1\"]\ntrusted = true\nenv_from_host = { T = \"MCP_TEST_TOKEN\" }\n",
    )
    .unwrap();
    let mut c = common::as_tester(h);
    c.env("MCP_TEST_TOKEN", "sk-startup-secret-98765").args([
        "run",
        "--agent",
        &h.join("agent.toml").display().to_string(),
        "--model",
        &format!("scripted:{}", h.join("s.toml").display()),
        "go",
    ]);
    let out = common::output(c).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("exited with code 1") && err.contains("token is"),
        "{err}"
    );
    assert!(!err.contains("sk-startup-secret-98765"), "{err}");
}
