//! Evidence through the real binary: artifacts collected and exported, signed heads, and a
//! bundle checked in a directory with no store.

use crate::common;
use serde_json::Value;
use std::path::Path;

/// A manifest with an output directory and a required output file, and a script whose
/// command makes the files `makes` names.
fn project(home: &Path, makes: &str) -> (String, String) {
    std::fs::write(home.join("config.toml"), "").unwrap();
    std::fs::write(
        home.join("m.toml"),
        r#"outputs = ["out", { path = "review_summary.md", required = true }]

[entries."notes.txt"]
type = "file"
content = "review the notes"
"#,
    )
    .unwrap();
    std::fs::write(
        home.join("s.toml"),
        format!(
            "[[turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = {} }} }}]\n[[turns]]\ntext = \"reviewed\"\n",
            serde_json::to_string(makes).unwrap()
        ),
    )
    .unwrap();
    (
        home.join("m.toml").display().to_string(),
        format!("scripted:{}", home.join("s.toml").display()),
    )
}

const MAKES_BOTH: &str = "mkdir -p out/deep && printf 'a,b\\n' > out/deep/t.csv && printf '# Review\\nfine\\n' > review_summary.md";

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
    )
}

#[tokio::test]
async fn outputs_are_collected_exported_and_a_missing_required_one_fails_the_run() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (manifest, model) = project(h, MAKES_BOTH);
    let ws = h.join("ws");
    let ws_arg = ws.display().to_string();
    let args = [
        "run",
        "--manifest",
        &manifest,
        "--workspace",
        &ws_arg,
        "--model",
        &model,
        "review",
    ];
    common::expect(h, &args, 0).await;

    let out = common::expect(h, &["artifacts", "last", "--json"], 0).await;
    let listed = common::json_lines(&out.stdout);
    let paths: Vec<&str> = listed.iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["out/deep/t.csv", "review_summary.md"]);
    assert_eq!(listed[1]["media_type"], "text/markdown");
    assert_eq!(listed[1]["bytes"], 14);
    assert_eq!(listed[1]["sha256"], sha256(&ws.join("review_summary.md")));
    let shown = common::expect(h, &["show", "last"], 0).await;
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("artifacts   2 files"), "{shown}");

    // Exported from the workspace; then, with the file changed there, from the checkpoint.
    common::expect(h, &["artifacts", "last", "--export", "a1"], 0).await;
    assert_eq!(
        std::fs::read_to_string(h.join("a1/review_summary.md")).unwrap(),
        "# Review\nfine\n"
    );
    std::fs::write(ws.join("review_summary.md"), "edited after the run").unwrap();
    let out = common::expect(h, &["artifacts", "last", "--export", "a2", "--json"], 0).await;
    let written = common::json_lines(&out.stdout);
    assert_eq!(written[1]["source"]["from"], "snapshot", "{written:?}");
    assert_eq!(
        std::fs::read_to_string(h.join("a2/review_summary.md")).unwrap(),
        "# Review\nfine\n"
    );
    let again = common::expect(h, &["artifacts", "last", "--export", "a2"], 2).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    // A run that does not make its required output fails, saying which.
    let (manifest, model) = project(h, "mkdir -p out && echo x > out/x.txt");
    let args = ["run", "--manifest", &manifest, "--model", &model, "review"];
    let out = common::expect(h, &args, 1).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without the output it must produce: review_summary.md"),
        "{stderr}"
    );
    let out = common::expect(h, &["show", "last", "--json"], 0).await;
    let kinds: Vec<Value> = common::json_lines(&out.stdout)
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds[kinds.len() - 2], "artifacts_collected");
    assert_eq!(kinds[kinds.len() - 1], "run_failed");
}

#[tokio::test]
async fn a_bundle_verifies_with_no_store_and_a_changed_byte_is_named() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (manifest, model) = project(h, MAKES_BOTH);
    common::expect(
        h,
        &["run", "--manifest", &manifest, "--model", &model, "go"],
        0,
    )
    .await;
    let out = common::expect(h, &["verify", "last"], 0).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(", signed by ed25519:"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let key = h.join("runs.db.signing-key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the private key is its owner's alone");

    common::expect(h, &["export", "last", "--bundle", "run.bundle"], 0).await;
    let again = common::expect(h, &["export", "last", "--bundle", "run.bundle"], 2).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let pem = common::expect(h, &["key"], 0).await.stdout;
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN PUBLIC KEY-----"));
    let bundle = std::fs::read(h.join("run.bundle")).unwrap();
    let text = String::from_utf8_lossy(&bundle);
    assert!(
        text.contains("review the notes"),
        "the manifest's text is in it"
    );
    assert!(text.contains("review_summary.md") && text.contains("artifacts_collected"));

    // Elsewhere: a fresh directory, no store, no state.
    let away = tempfile::tempdir().unwrap();
    let a = away.path();
    std::fs::write(a.join("run.bundle"), &bundle).unwrap();
    std::fs::write(a.join("store.pub.pem"), &pem).unwrap();
    let check = |file: &str, key: Option<&str>| {
        let mut c = common::cordon_std(a);
        c.args(["verify", "--bundle", file]);
        if let Some(k) = key {
            c.args(["--key", k]);
        }
        c.output().unwrap()
    };
    let ok = check("run.bundle", Some("store.pub.pem"));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("the key you trust"), "{stdout}");
    assert!(
        !a.join("runs.db").exists(),
        "verifying a bundle makes no store"
    );

    // One byte of the final answer changed.
    let at = text.find("\"output\":\"reviewed\"").unwrap() + 10;
    let mut changed = bundle.clone();
    changed[at] = b'R';
    std::fs::write(a.join("changed.bundle"), &changed).unwrap();
    let bad = check("changed.bundle", Some("store.pub.pem"));
    assert_eq!(bad.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("run_completed"),
        "names the event: {stderr}"
    );

    // Another key than the store's.
    let other = h.join("other.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let bad = check("run.bundle", Some(other.to_str().unwrap()));
    assert_eq!(bad.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not by the key you trust"));

    // A store signing with a key made by OpenSSL, given with --signing-key.
    let signed = common::expect(
        h,
        &[
            "--signing-key",
            other.to_str().unwrap(),
            "run",
            "--model",
            &model,
            "--manifest",
            &manifest,
            "again",
        ],
        0,
    )
    .await;
    drop(signed);
    common::expect(h, &["verify", "last", "--key", other.to_str().unwrap()], 0).await;
    let wrong = common::expect(h, &["verify", "last"], 4).await;
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not by the trusted key"));
}

/// A home whose agent `careful` asks a person before `echo a*`, with a script that runs one
/// such command and then answers "done".
async fn careful_home() -> (cordon_testkit::ScriptedServer, tempfile::TempDir) {
    let (server, home) = common::scripted_home(
        r#"
            [[turns]]
            tool_calls = [{ name = "exec_command", arguments = { cmd = "echo a > a.txt" } }]
            [[turns]]
            text = "done"
            "#,
    )
    .await;
    std::fs::write(
        home.path().join("agent.toml"),
        "name = \"careful\"\ntools = [\"exec_command\"]\n[approvals]\ncommands = [\"echo a*\"]\n",
    )
    .unwrap();
    std::fs::create_dir(home.path().join("ws")).unwrap();
    (server, home)
}

/// Runs `careful` in its workspace (it stops to wait for approval).
const CAREFUL_RUN: [&str; 8] = [
    "run",
    "--agent",
    "agent.toml",
    "--model",
    "s:m",
    "--workspace",
    "ws",
    "go",
];

/// The id of the first call waiting for approval.
async fn waiting_call(h: &Path) -> String {
    let waiting = common::expect(h, &["approvals", "--json"], 0).await;
    common::json_lines(&waiting.stdout)[0]["call_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_and_the_fleet_figures_come_from_the_log() {
    let (_server, home) = careful_home().await;
    let h = home.path();
    common::expect(h, &CAREFUL_RUN, 5).await;
    let call = waiting_call(h).await;
    common::expect(h, &["approve", "last", &call, "--as", "ana"], 0).await;
    common::expect(h, &["resume", "last"], 0).await;

    let out = common::expect(h, &["trace", "last", "--json"], 0).await;
    let spans = common::json_lines(&out.stdout);
    let of = |kind: &str| -> Vec<&Value> { spans.iter().filter(|s| s["kind"] == kind).collect() };
    assert_eq!(spans[0]["name"], "invoke_agent careful");
    assert_eq!(spans[0]["attributes"]["cordon.run.status"], "completed");
    assert_eq!(of("model").len(), 2, "{spans:?}");
    assert_eq!(
        of("model")[0]["attributes"]["gen_ai.operation.name"],
        "chat"
    );
    assert!(of("model")[0]["attributes"]["gen_ai.usage.input_tokens"].as_u64() > Some(0));
    let tool = of("tool")[0];
    assert_eq!(tool["attributes"]["gen_ai.tool.name"], "exec_command");
    assert_eq!(tool["attributes"]["gen_ai.tool.call.id"], call.as_str());
    let approval = of("approval")[0];
    assert_eq!(approval["attributes"]["cordon.approval.by"], "ana");
    // The call ran after the person approved it.
    assert!(
        approval["end_ms"].as_i64().unwrap() <= tool["start_ms"].as_i64().unwrap() + 1,
        "{approval} then {tool}"
    );
    let shown = common::expect(h, &["trace", "last"], 0).await;
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("approval exec_command · approved by ana"),
        "{shown}"
    );
    assert!(shown.contains("execute_tool exec_command"), "{shown}");

    // A second run, of another agent, that fails.
    let (manifest, model) = project(h, "true");
    common::expect(
        h,
        &["run", "--manifest", &manifest, "--model", &model, "go"],
        1,
    )
    .await;
    let out = common::expect(h, &["stats", "--json"], 0).await;
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["runs"], 2);
    assert_eq!(s["completion_rate"], 0.5);
    assert_eq!(s["approvals_requested"], 1);
    assert_eq!(s["runs_with_intervention"], 1);
    assert_eq!(
        s["failures"]["the run ended without the output it must produce"], 1,
        "{s}"
    );
    let careful = common::expect(h, &["stats", "--agent", "careful", "--json"], 0).await;
    let careful: Value = serde_json::from_slice(&careful.stdout).unwrap();
    assert_eq!(
        (
            careful["runs"].as_u64(),
            careful["completion_rate"].as_f64()
        ),
        (Some(1), Some(1.0))
    );
    let text = common::expect(h, &["stats", "--since", "1h"], 0).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("2 runs in the last 1h"), "{text}");
}

/// An OTLP/HTTP receiver: decodes each protobuf export and keeps its spans.
async fn http_collector() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
) {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        keep.lock().unwrap().extend(ss.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_over_grpc_and_again_over_http() {
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
        .await
        .unwrap();
    let (_server, home) = careful_home().await;
    let h = home.path();
    let endpoint = collector.endpoint();
    let traced = |args: &[&str]| {
        let mut c = common::as_tester(h);
        c.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .args(args);
        c
    };
    let out = common::output(traced(&CAREFUL_RUN)).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = collector
        .exported_spans(2, std::time::Duration::from_secs(20))
        .await;
    let names = |spans: &[fake_opentelemetry_collector::ExportedSpan]| -> Vec<String> {
        let mut v: Vec<String> = spans.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&first),
        ["chat m", "checkpoint", "create sandbox"],
        "the run is not over: no run span, no approval yet"
    );
    let sandbox = first.iter().find(|s| s.name == "create sandbox").unwrap();
    assert!(sandbox.end_time_unix_nano > sandbox.start_time_unix_nano);

    let call = waiting_call(h).await;
    common::expect(h, &["approve", "last", &call, "--as", "ana"], 0).await;
    let out = common::output(traced(&["resume", "last"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("trace: "));
    let second = collector
        .exported_spans(5, std::time::Duration::from_secs(20))
        .await;
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();

    // The same spans `cordon trace` derives, each sent once.
    let derived = common::expect(h, &["trace", "last", "--json"], 0).await;
    let mut want: Vec<String> = common::json_lines(&derived.stdout)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(names(&all), want);
    let ids: std::collections::BTreeSet<&str> = all.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "no span sent twice");

    // One trace, whose id is the run's; every span under the run's.
    let run_id =
        common::json_lines(&common::expect(h, &["runs", "--json"], 0).await.stdout)[0]["run_id"]
            .as_str()
            .unwrap()
            .replace('-', "");
    let root = all.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    assert!(all.iter().all(|s| s.trace_id == run_id));
    assert!(
        all.iter()
            .filter(|s| s.span_id != root.span_id)
            .all(|s| s.parent_span_id == root.span_id)
    );
    let attr = |s: &fake_opentelemetry_collector::ExportedSpan, k: &str| {
        s.attributes.get(k).cloned().unwrap_or_default()
    };
    let named = |n: &str| all.iter().find(|s| s.name == n).unwrap();
    assert_eq!(root.name, "invoke_agent careful");
    assert!(attr(root, "gen_ai.operation.name").contains("\"invoke_agent\""));
    assert!(attr(root, "gen_ai.agent.name").contains("\"careful\""));
    assert!(attr(root, "cordon.run.status").contains("\"completed\""));
    let chat = named("chat m");
    assert_eq!(chat.kind, "SPAN_KIND_CLIENT");
    assert!(attr(chat, "gen_ai.request.model").contains("\"m\""));
    assert!(attr(chat, "gen_ai.usage.input_tokens").contains("IntValue("));
    assert!(attr(chat, "gen_ai.usage.output_tokens").contains("IntValue("));
    let tool = named("execute_tool exec_command");
    assert!(attr(tool, "gen_ai.tool.name").contains("\"exec_command\""));
    assert!(attr(tool, "gen_ai.tool.call.id").contains(&format!("\"{call}\"")));
    assert!(
        attr(tool, "cordon.policy.verdict").contains("\"ask\""),
        "{tool:?}"
    );
    assert!(
        !tool.attributes.contains_key("gen_ai.tool.call.arguments"),
        "content is opt-in"
    );
    let approval = named("approval exec_command");
    assert!(attr(approval, "cordon.approval.by").contains("\"ana\""));
    assert!(attr(approval, "cordon.wait_ms").contains("IntValue("));
    assert!(approval.end_time_unix_nano <= tool.start_time_unix_nano + 1_000_000);
    assert!(root.start_time_unix_nano <= chat.start_time_unix_nano);
    assert!(root.end_time_unix_nano >= tool.end_time_unix_nano);

    // Sent again after the fact, over HTTP, with content: the same ids.
    let (url, got) = http_collector().await;
    let mut c = common::as_tester(h);
    c.env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        .args(["trace", "last", "--otlp"]);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resent = got.lock().unwrap().clone();
    let again: std::collections::BTreeSet<String> =
        resent.iter().map(|s| hex::encode(&s.span_id)).collect();
    assert_eq!(again, ids.iter().map(|s| s.to_string()).collect());
    let tool = resent
        .iter()
        .find(|s| s.name == "execute_tool exec_command")
        .unwrap();
    let args = tool
        .attributes
        .iter()
        .find(|kv| kv.key == "gen_ai.tool.call.arguments")
        .expect("content was asked for");
    assert!(format!("{:?}", args.value).contains("echo a"), "{args:?}");

    // A collector that takes the connection and never answers: the export gives up at the
    // timeout, says so, and the process ends.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let mut c = common::cordon(h);
    c.env("USER", "tester")
        .env("CORDON_CONFIG", h.join("config.toml"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &silent_url)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")
        .args(["trace", "last", "--otlp"])
        .timeout(std::time::Duration::from_secs(30));
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: the collector at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A collector that is not there is reported, and the run is not failed for it.
    std::fs::write(h.join("hi.toml"), "[[turns]]\ntext = \"hi\"\n").unwrap();
    let model = format!("scripted:{}", h.join("hi.toml").display());
    let mut c = common::as_tester(h);
    c.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .args(["run", "--model", &model, "--workspace", "ws", "again"]);
    let out = common::output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cordon trace"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Chromium, which scripts/test installs: a failure under CORDON_REQUIRE_PEERS, else a skip.
fn chromium() -> Option<std::path::PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let msg = "chromium is not installed: run scripts/test, which installs it";
        assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let script = format!(
        "[[turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = {} }} }}]\n\
         [[turns]]\ntool_calls = [{{ name = \"apply_patch\", input = \"*** Begin Patch\\n*** Update File: review_summary.md\\n@@\\n # Review\\n-fine\\n+fine </b><script>alert(2)</script>\\n*** End Patch\\n\" }}]\n\
         [[turns]]\ntext = \"reviewed\"\n",
        serde_json::to_string(&format!("{MAKES_BOTH}; echo '<script>alert(1)</script>'")).unwrap()
    );
    let (_server, home) = common::scripted_home(&script).await;
    let h = home.path();
    std::fs::write(
        h.join("m.toml"),
        "outputs = [\"out\", { path = \"review_summary.md\", required = true }]\n",
    )
    .unwrap();
    let manifest = h.join("m.toml").display().to_string();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"reviewer\"\ntools = [\"exec_command\", \"apply_patch\"]\n[approvals]\ncommands = [\"mkdir*\"]\n",
    )
    .unwrap();
    let model = "s:m".to_string();
    let args = [
        "run",
        "--agent",
        "agent.toml",
        "--manifest",
        &manifest,
        "--model",
        &model,
        "review",
    ];
    common::expect(h, &args, 5).await;
    let call = waiting_call(h).await;
    common::expect(h, &["approve", "last", &call, "--as", "ana"], 0).await;
    common::expect(h, &["resume", "last"], 0).await;
    common::expect(h, &["report", "last", "--html", "report.html"], 0).await;
    let spans = common::json_lines(
        &common::expect(h, &["trace", "last", "--json"], 0)
            .await
            .stdout,
    );

    let page = format!("file://{}", h.join("report.html").display());
    let chrome = |extra: &[&str]| {
        let out = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", h.join("chrome").display()))
            .args(extra)
            .arg(&page)
            .env("HOME", h)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // What Chromium rendered, after the page's script drew the chart.
    let dom = chrome(&["--dump-dom"]);
    let bars = dom.matches("<rect").count();
    assert_eq!(bars, spans.len(), "one bar per span: {dom}");
    assert!(dom.contains("class=\"span approval\""), "{dom}");
    assert!(dom.contains("id=\"verification\" class=\"ok\""), "{dom}");
    assert!(dom.contains("<td>approval exec_command <code>"), "{dom}");
    assert!(dom.contains("<td>ana</td>"), "{dom}");
    assert!(dom.contains("<span class=\"del\">-fine</span>"), "{dom}");
    assert!(
        dom.contains(
            "<span class=\"add\">+fine &lt;/b&gt;&lt;script&gt;alert(2)&lt;/script&gt;</span>"
        ),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(
        !dom.contains("<script>alert"),
        "nothing from the run became markup"
    );
    assert!(dom.contains("<code>review_summary.md</code>"), "{dom}");

    // A picture of it, kept beside the build for people to look at.
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&kept).unwrap();
    let shot = kept.join("report.png");
    let _ = std::fs::remove_file(&shot);
    chrome(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1200,2400",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[tokio::test]
async fn secrets_in_file_names_and_contents_stay_out_of_reports_and_bundles() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    let token = "tok-Canary-4c1e9a77d2";
    let github = "ghp_CanaryCanaryCanaryCanaryCanary012345";
    std::fs::write(
        h.join("m.toml"),
        "outputs = [\"out\"]\n[env]\nTOKEN = { from_host = \"HOST_TOKEN\" }\n",
    )
    .unwrap();
    let cmd = format!(
        "mkdir -p out && echo \"$TOKEN\" > out/f.txt && touch \"out/$TOKEN\" \"out/{github}\" && echo plain > out/ok.txt"
    );
    std::fs::write(
        h.join("s.toml"),
        format!(
            "[[turns]]\ntool_calls = [{{ name = \"exec_command\", arguments = {{ cmd = {} }} }}]\n[[turns]]\ntext = \"done\"\n",
            serde_json::to_string(&cmd).unwrap()
        ),
    )
    .unwrap();
    let model = format!("scripted:{}", h.join("s.toml").display());
    let run = |args: &[&str]| {
        let mut c = common::as_tester(h);
        c.env("HOST_TOKEN", token).args(args);
        c.output().unwrap()
    };
    let out = run(&["run", "--manifest", "m.toml", "--model", &model, "go"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = run(&["report", "last", "--html", "r.html"]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let export = run(&["export", "last", "--bundle", "b.jsonl"]);
    let said = String::from_utf8_lossy(&export.stdout);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(
        said.contains("left out: a file name in them holds a secret"),
        "{said}"
    );
    let verified = run(&["verify", "--bundle", "b.jsonl"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    for file in ["r.html", "b.jsonl"] {
        let text = std::fs::read_to_string(h.join(file)).unwrap();
        for secret in [token, github] {
            assert!(!text.contains(secret), "{secret} in {file}");
        }
    }
    let page = std::fs::read_to_string(h.join("r.html")).unwrap();
    assert!(
        page.contains("[redacted: env TOKEN]"),
        "the diff and the name show the placeholder"
    );

    // Where the host variable the secret came from is not set, nothing from the snapshots
    // can be cleared of it: the bundle leaves every listing out, the report the changes.
    let bare = |args: &[&str]| {
        let mut c = common::as_tester(h);
        c.args(args);
        c.output().unwrap()
    };
    let export = bare(&["export", "last", "--bundle", "b2.jsonl"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let said = String::from_utf8_lossy(&export.stdout);
    assert!(
        said.contains("came from HOST_TOKEN, which is not set here"),
        "{said}"
    );
    let report = bare(&["report", "last", "--html", "r2.html"]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    for file in ["r2.html", "b2.jsonl"] {
        let text = std::fs::read_to_string(h.join(file)).unwrap();
        for secret in [token, github] {
            assert!(!text.contains(secret), "{secret} in {file}");
        }
    }
    assert!(
        std::fs::read_to_string(h.join("r2.html"))
            .unwrap()
            .contains("changes are not shown")
    );

    // An artifact whose name held a secret is said not to be written; the rest are.
    let exported = run(&["artifacts", "last", "--export", "a"]);
    assert_eq!(exported.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(stderr.contains("its name held a secret"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(h.join("a/out/ok.txt")).unwrap(),
        "plain\n"
    );
}
