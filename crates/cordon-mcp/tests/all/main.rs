//! cordon's MCP client against real servers: the reference servers from npm
//! (`@modelcontextprotocol/server-everything` over stdio and streamable HTTP) and a small
//! server on the official SDK whose tool list changes and whose calls can hang.
//!
//! `scripts/test` installs them under `target/peers/node_modules` and sets
//! CORDON_REQUIRE_PEERS=1, which makes a missing server a failure rather than a skip.

use cordon_mcp::{McpServer, Place, ServerSpec};
use cordon_tools::{Tool, ToolContext, ToolError, ToolSource};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the npm peers are, or `None` (a failure under CORDON_REQUIRE_PEERS).
fn peers() -> Option<PathBuf> {
    cordon_testkit::peers::mcp_servers()
}

fn everything(peers: &std::path::Path) -> String {
    peers
        .join("@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

fn trusted(args: Vec<String>, env: &[(&str, &str)]) -> ServerSpec {
    ServerSpec {
        command: Some("node".into()),
        args,
        trusted: true,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

async fn start(name: &str, spec: ServerSpec) -> Arc<McpServer> {
    let resolved = spec.resolve(name, &|v| std::env::var(v).ok()).unwrap();
    McpServer::start(name, spec, resolved, Place::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tool(server: &McpServer, name: &str) -> Arc<dyn Tool> {
    server
        .tools()
        .into_iter()
        .find(|t| t.spec().name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

async fn call(
    server: &McpServer,
    name: &str,
    args: &str,
) -> Result<cordon_tools::ToolOutput, ToolError> {
    let ctx = ToolContext {
        run_id: cordon_core::RunId::new(),
        call_id: "c1".into(),
        idempotency_key: "k".into(),
    };
    tool(server, name).call(&ctx, args).await
}

#[tokio::test]
async fn the_reference_server_over_stdio_on_the_host() {
    let Some(peers) = peers() else { return };
    // cordon's own environment (cargo's variables here) must not reach a trusted server.
    let ours = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let server = start(
        "everything",
        trusted(
            vec![everything(&peers), "stdio".into()],
            &[("GIVEN", "yes")],
        ),
    )
    .await;
    let info = server.info().unwrap();
    assert_eq!(info.transport, "stdio");
    assert!(info.protocol.starts_with("20"), "{info:?}");
    assert!(
        info.tools.contains(&"everything__echo".to_string()),
        "{info:?}"
    );
    let echo = tool(&server, "everything__echo");
    assert_eq!(echo.effects(), cordon_tools::Effects::None, "readOnlyHint");
    assert_eq!(
        tool(&server, "everything__toggle-simulated-logging").effects(),
        cordon_tools::Effects::External
    );
    match echo.spec().kind {
        cordon_core::ToolKind::Function { parameters, .. } => {
            assert_eq!(parameters["properties"]["message"]["type"], "string")
        }
        other => panic!("{other:?}"),
    }
    let out = call(&server, "everything__echo", r#"{"message":"hi there"}"#)
        .await
        .unwrap();
    assert_eq!(out.text, "Echo: hi there");
    let sum = call(&server, "everything__get-sum", r#"{"a":2,"b":3}"#)
        .await
        .unwrap();
    assert!(sum.text.contains('5'), "{sum:?}");
    let image = call(&server, "everything__get-tiny-image", "{}")
        .await
        .unwrap();
    assert!(
        image.images[0].starts_with("data:image/png;base64,"),
        "{image:?}"
    );
    let structured = call(
        &server,
        "everything__get-structured-content",
        r#"{"location":"New York"}"#,
    )
    .await
    .unwrap();
    assert!(structured.text.contains("temperature"), "{structured:?}");
    let env = call(&server, "everything__get-env", "{}").await.unwrap();
    assert!(env.text.contains("GIVEN"), "{}", env.text);
    assert!(
        !env.text.contains("CARGO_MANIFEST_DIR") && !env.text.contains(&ours),
        "{}",
        env.text
    );
    let bad = call(&server, "everything__get-sum", r#"{"a":"two"}"#)
        .await
        .unwrap_err();
    assert!(matches!(bad, ToolError::Failed(_)), "{bad:?}");
    let not_object = call(&server, "everything__echo", "[1]").await.unwrap_err();
    assert!(matches!(not_object, ToolError::InvalidArguments(_)));
    server.stop().await;
}

#[tokio::test]
async fn the_reference_server_over_streamable_http() {
    let Some(peers) = peers() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new("node")
        .args([everything(&peers), "streamableHttp".into()])
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let spec = ServerSpec {
        url_from_host: Some("CORDON_TEST_MCP_URL".into()),
        bearer_token_from_host: Some("CORDON_TEST_MCP_TOKEN".into()),
        deny_tools: vec!["get-env".into()],
        ..Default::default()
    };
    let host = |v: &str| match v {
        "CORDON_TEST_MCP_URL" => Some(url.clone()),
        "CORDON_TEST_MCP_TOKEN" => Some("token-123".to_string()),
        _ => None,
    };
    let resolved = spec.resolve("remote", &host).unwrap();
    let secrets: Vec<String> = resolved
        .secrets(&spec)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert!(secrets.contains(&"token-123".to_string()));
    assert!(secrets.contains(&url), "the URL is a secret");
    let server = McpServer::start("remote", spec, resolved, Place::default())
        .await
        .unwrap();
    let info = server.info().unwrap();
    assert_eq!(info.transport, "http");
    assert!(info.withheld.contains(&"get-env".to_string()), "{info:?}");
    assert!(!info.tools.iter().any(|t| t.contains("get-env")));
    let out = call(&server, "remote__echo", r#"{"message":"over http"}"#)
        .await
        .unwrap();
    assert_eq!(out.text, "Echo: over http");
    let long = call(
        &server,
        "remote__trigger-long-running-operation",
        r#"{"duration":1,"steps":2}"#,
    )
    .await
    .unwrap();
    assert!(long.text.contains("completed"), "{long:?}");
    server.stop().await;
    child.kill().await.ok();
}

fn changing(peers: &std::path::Path) -> ServerSpec {
    let mut spec = trusted(
        vec![format!(
            "{}/tests/fixtures/changing-server.cjs",
            env!("CARGO_MANIFEST_DIR")
        )],
        &[],
    );
    spec.env
        .insert("NODE_PATH".into(), peers.display().to_string());
    spec
}

#[tokio::test]
async fn a_changed_tool_list_is_listed_again() {
    let Some(peers) = peers() else { return };
    let server = start("changing", changing(&peers)).await;
    assert_eq!(server.refresh().await, Ok(None), "nothing changed yet");
    assert!(
        !server
            .info()
            .unwrap()
            .tools
            .contains(&"changing__added".to_string())
    );
    call(&server, "changing__add_tool", "{}").await.unwrap();
    let mut changed = None;
    for _ in 0..50 {
        changed = server.refresh().await.unwrap();
        if changed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let names = changed.expect("the server said its tools changed");
    assert!(names.contains(&"changing__added".to_string()), "{names:?}");
    let out = call(&server, "changing__added", r#"{"n":7}"#)
        .await
        .unwrap();
    assert_eq!(out.text, "added 7");
    server.stop().await;
}

#[tokio::test]
async fn a_server_killed_mid_call_fails_the_call_and_starts_again() {
    let Some(peers) = peers() else { return };
    let server = start("changing", changing(&peers)).await;
    let pid: i32 = call(&server, "changing__pid", "{}")
        .await
        .unwrap()
        .text
        .parse()
        .unwrap();
    let hanging = {
        let server = server.clone();
        tokio::spawn(async move { call(&server, "changing__hang", "{}").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!hanging.is_finished());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), hanging)
        .await
        .expect("the call ends when its server dies")
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("'changing' stopped during the call"),
        "{text}"
    );
    assert!(text.contains("signal 9"), "{text}");
    // The next call starts the server again.
    let again: i32 = call(&server, "changing__pid", "{}")
        .await
        .unwrap()
        .text
        .parse()
        .unwrap();
    assert_ne!(again, pid);
    server.stop().await;
}

#[tokio::test]
async fn a_call_past_its_timeout_is_cancelled() {
    let Some(peers) = peers() else { return };
    let mut spec = changing(&peers);
    spec.call_timeout_secs = Some(1);
    let server = start("changing", spec).await;
    let err = call(&server, "changing__hang", "{}").await.unwrap_err();
    assert!(
        err.to_string().contains("did not answer within 1 s"),
        "{err}"
    );
    // The server is still there for the next call.
    call(&server, "changing__pid", "{}").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn startup_failures_name_what_went_wrong() {
    let missing = ServerSpec {
        command: Some("/nonexistent/mcp-server".into()),
        trusted: true,
        ..Default::default()
    };
    let err = McpServer::start("gone", missing, Default::default(), Place::default())
        .await
        .err()
        .unwrap();
    assert!(err.contains("could not be started on the host"), "{err}");
    let dies = trusted(
        vec![
            "-e".into(),
            "console.error('bad config: no token'); process.exit(3)".into(),
        ],
        &[],
    );
    let err = McpServer::start("dies", dies, Default::default(), Place::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("exited with code 3") && err.contains("bad config: no token"),
        "{err}"
    );
    let sandboxed = ServerSpec {
        command: Some("node".into()),
        ..Default::default()
    };
    let err = McpServer::start("s", sandboxed, Default::default(), Place::default())
        .await
        .err()
        .unwrap();
    assert!(err.contains("this run has none"), "{err}");
}

/// The supervisor a test sandbox runs: `CORDON_TEST_SUPERVISOR`, else the one the workspace's
/// build put beside the test binaries.
fn supervisor() -> Option<cordon_sandbox::SupervisorCommand> {
    let program = std::env::var_os("CORDON_TEST_SUPERVISOR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            let dir = exe.parent()?.parent()?;
            ["cordon-supervisor", "cordon-test-supervisor"]
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.exists())
        });
    let Some(program) = program else {
        cordon_testkit::peers::missing(
            "no sandbox supervisor was built (cargo test --workspace builds it)",
        );
        return None;
    };
    Some(cordon_sandbox::SupervisorCommand {
        program,
        args: vec![],
        fallback: None,
    })
}

/// The reference filesystem server inside a real sandbox, allowed the workspace and `/tmp`:
/// it reads and writes the workspace, and a host file under `/tmp` it would allow stays out
/// of its reach, because the sandbox has its own `/tmp`. (scripts/test runs this as an
/// unprivileged user too.)
#[tokio::test]
async fn sandboxed_filesystem_server_reaches_the_workspace_and_nothing_else() {
    let Some(peers) = peers() else { return };
    let Some(supervisor) = supervisor() else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("notes.txt"), "inside").unwrap();
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let mut config = cordon_sandbox::SandboxConfig::new(ws.path(), supervisor);
    config.grants = vec![(peers.clone(), false)];
    let sandbox = Arc::new(cordon_sandbox::LocalSandbox::create(config).await.unwrap());
    let spec = ServerSpec {
        command: Some("node".into()),
        args: vec![
            peers
                .join("@modelcontextprotocol/server-filesystem/dist/index.js")
                .display()
                .to_string(),
            "/workspace".into(),
            "/tmp".into(),
        ],
        ..Default::default()
    };
    let place = Place {
        sandbox: Some(sandbox.clone() as Arc<dyn cordon_sandbox::Sandbox>),
    };
    let server = McpServer::start("files", spec, Default::default(), place)
        .await
        .unwrap();
    assert_eq!(server.info().unwrap().runs, cordon_mcp::Runs::Sandbox);
    let read = call(
        &server,
        "files__read_text_file",
        r#"{"path":"/workspace/notes.txt"}"#,
    )
    .await
    .unwrap();
    assert_eq!(read.text, "inside");
    let stolen = call(
        &server,
        "files__read_text_file",
        &serde_json::json!({ "path": secret.display().to_string() }).to_string(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        stolen.contains("ENOENT") && !stolen.contains("the host's secret"),
        "{stolen}"
    );
    call(
        &server,
        "files__write_file",
        r#"{"path":"/workspace/made.txt","content":"by the server"}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(ws.path().join("made.txt")).unwrap(),
        "by the server"
    );
    // Stopping the server ends its process in the sandbox.
    server.stop().await;
    let ps = cordon_sandbox::Sandbox::run(
        sandbox.as_ref(),
        &[
            "/bin/sh".into(),
            "-c".into(),
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' '".into(),
        ],
        ".",
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        !ps.stdout_text().contains("server-filesystem"),
        "{}",
        ps.stdout_text()
    );
    sandbox.stop().await;
}

/// An HTTP server that restarts (and forgets the session) is given a new session: calls go on
/// working rather than waiting out their timeout.
#[tokio::test]
async fn an_http_server_that_restarted_gets_a_new_session() {
    let Some(peers) = peers() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let serve = || {
        tokio::process::Command::new("node")
            .args([everything(&peers), "streamableHttp".into()])
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let up = || async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the server did not listen");
    };
    let mut first = serve();
    up().await;
    let spec = ServerSpec {
        url: Some(format!("http://127.0.0.1:{port}/mcp")),
        call_timeout_secs: Some(20),
        ..Default::default()
    };
    let server = start("remote", spec).await;
    call(&server, "remote__echo", r#"{"message":"one"}"#)
        .await
        .unwrap();
    first.kill().await.unwrap();
    first.wait().await.unwrap();
    let _second = serve();
    up().await;
    let started = std::time::Instant::now();
    let mut answer = call(&server, "remote__echo", r#"{"message":"two"}"#).await;
    if answer.is_err() {
        // At most the call that found the session gone fails; the next one works.
        answer = call(&server, "remote__echo", r#"{"message":"two"}"#).await;
    }
    assert_eq!(answer.unwrap().text, "Echo: two");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}
