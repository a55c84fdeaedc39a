//! End to end: the real `cordon` binary against the scripted server (started here, or
//! built into cordon with `scripted:`), with a real SQLite run store.

use crate::common;

use assert_cmd::Command;
use cordon_testkit::{Script, ScriptedServer};
use serde_json::Value;
use std::path::{Path, PathBuf};

const KEY: &str = "sk-e2e-secret-4f1c9a7d2b";

/// A private home for one test: its store, its config, and a clean environment.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Commands run in a project directory of their own: the home holds the run store,
        // which no sandbox's workspace may hold.
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Env { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("runs.db")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config whose providers `resp` and `chat` point at `server`.
    fn config_for(&self, server: &ScriptedServer) -> PathBuf {
        let text = format!(
            r#"
            [providers.resp]
            api = "responses"
            base_url = "{url}"
            api_key_env = "E2E_KEY"
            retry_initial_ms = 20
            idle_timeout_secs = 1

            [providers.chat]
            api = "chat"
            base_url = "{url}"
            api_key_env = "E2E_KEY"
            retry_initial_ms = 20
            idle_timeout_secs = 1

            [providers.resp-whole]
            api = "responses"
            base_url = "{url}"
            api_key_env = "E2E_KEY"
            stream = false

            [providers.chat-whole]
            api = "chat"
            base_url = "{url}"
            api_key_env = "E2E_KEY"
            stream = false
            "#,
            url = server.base_url()
        );
        self.write("config.toml", &text)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cordon(&self) -> Command {
        let mut c = common::cordon(self.dir.path());
        c.env("E2E_KEY", KEY)
            .current_dir(self.dir.path().join("work"));
        c
    }

    fn cordon_with(&self, config: &Path) -> Command {
        let mut c = self.cordon();
        c.env("CORDON_CONFIG", config);
        c
    }

    /// The events of the newest run, via `cordon show --json`.
    fn last_run_events(&self) -> Vec<Value> {
        let runs = self.cordon().args(["runs", "--json"]).output().unwrap();
        let first: Value =
            serde_json::from_slice(runs.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
        let id = first["run_id"].as_str().unwrap().to_string();
        let out = self
            .cordon()
            .args(["show", "--json", &id])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn serve(script: &str) -> ScriptedServer {
    ScriptedServer::start(Script::from_toml(script).unwrap())
        .await
        .unwrap()
}

const MULTI_TURN: &str = r#"
[[turns]]
reasoning = "Two products first, then their sum."
text = "Computing both at once."
tool_calls = [
  { name = "calculator", arguments = { expression = "17 * 23" } },
  { name = "calculator", arguments = { expression = "2 ^ 10" } },
]
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "391 + 1024" } }]
[[turns]]
text = "The total is 1415."
"#;

/// Runs the blocking `cordon` process off the runtime, so the server keeps serving.
async fn run(mut cmd: Command, args: &[&str]) -> std::process::Output {
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_run_with_parallel_tool_calls_on_both_protocols() {
    for provider in ["resp", "chat"] {
        let env = Env::new();
        let server = serve(MULTI_TURN).await;
        let config = env.config_for(&server);
        let model = format!("{provider}:scripted-model");
        let out = run(
            env.cordon_with(&config),
            &["run", "--model", &model, "Add 17*23 and 2^10"],
        )
        .await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{provider}: {stderr}");
        // stdout holds the final answer only; what the model said on the way is not it.
        assert!(
            !stdout.contains("Computing both at once.") && stdout.contains("The total is 1415."),
            "{stdout}"
        );
        assert!(
            stderr.contains("→ calculator")
                && stderr.contains("← calculator call_0001_0 391")
                && stderr.contains("← calculator call_0001_1 1024"),
            "{stderr}"
        );
        assert!(
            stderr.contains("completed · 3 turns · 3 tool calls"),
            "{stderr}"
        );
        // Reasoning (a summary on the Responses API, reasoning_content on Chat Completions)
        // is shown beside the calls, and recorded.
        assert!(
            stderr.contains("∴ Two products first, then their sum."),
            "{provider}: {stderr}"
        );
        assert!(!stdout.contains("Two products"), "{stdout}");

        let reqs = server.requests();
        assert_eq!(reqs.len(), 3, "{provider}");
        assert!(
            reqs.iter()
                .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}")))
        );
        let second = reqs[1].body.to_string();
        assert!(
            second.contains("391") && second.contains("1024"),
            "both results fed back: {second}"
        );

        let events = env.last_run_events();
        let k = kinds(&events);
        assert_eq!(k.iter().filter(|k| *k == "model_response").count(), 3);
        assert_eq!(k.iter().filter(|k| *k == "tool_result").count(), 3);
        assert_eq!(k.last().unwrap(), "run_completed");
        let response = events
            .iter()
            .find(|e| e["kind"] == "model_response")
            .unwrap();
        assert!(
            response["payload"]["response"]["items"]
                .as_array()
                .unwrap()
                .len()
                >= 3,
            "responses recorded whole"
        );

        let verify = run(
            env.cordon(),
            &["verify", events[0]["run_id"].as_str().unwrap()],
        )
        .await;
        assert!(verify.status.success());
        assert!(String::from_utf8_lossy(&verify.stdout).contains("hash chain intact"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_is_recovered_and_recorded() {
    for provider in ["resp", "chat"] {
        let env = Env::new();
        let server = serve(
            r#"
            [[turns]]
            text = "Checking."
            tool_calls = [{ name = "calculator", arguments = { expression = "6 * 7" } }]
            faults = [{ kind = "status", status = 429, retry_after = 1 }, { kind = "status", status = 500 }]
            [[turns]]
            text = "It is 42, said with many words so the stream has room for a malformed event."
            faults = [{ kind = "disconnect", after_events = 3 }, { kind = "malformed" }]
            "#,
        )
        .await;
        let config = env.config_for(&server);
        let model = format!("{provider}:m");
        let out = run(
            env.cordon_with(&config),
            &["run", "--model", &model, "6*7?"],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{provider}: {stderr}");
        assert!(
            stderr.contains("retrying in 1.0s"),
            "Retry-After shown: {stderr}"
        );
        // The attempt cut mid-answer is not on stdout: a script gets the final answer only.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "It is 42, said with many words so the stream has room for a malformed event.\n",
            "{provider}"
        );
        assert_eq!(
            server.requests().len(),
            5,
            "2 faults + turn + disconnect + turn"
        );

        let events = env.last_run_events();
        let retries: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "model_retry")
            .collect();
        assert_eq!(retries.len(), 3, "{provider}: {:?}", kinds(&events));
        assert!(
            retries[0]["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("429")
        );
        assert_eq!(retries[0]["payload"]["delay_ms"], 1000);
        assert!(
            retries[1]["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("500")
        );
        assert!(
            retries[2]["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("ended before")
        );
        let last_response = events
            .iter()
            .rev()
            .find(|e| e["kind"] == "model_response")
            .unwrap();
        let unknown = &last_response["payload"]["response"]["unknown_events"];
        assert!(
            unknown.to_string().contains("garbled"),
            "the malformed event is kept: {unknown}"
        );
    }
}

/// A refused key is not retried, and the hint names the variable the key came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_names_the_variable_it_came_from() {
    let env = Env::new();
    let server = serve(
        r#"
        [[turns]]
        text = "never"
        faults = [{ kind = "status", status = 401, message = "bad key" }]
        "#,
    )
    .await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--model", "chat:m", "hello"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint: the provider 'chat' refused the API key cordon read from E2E_KEY"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_keeps_failing_is_reported_and_the_run_kept() {
    let env = Env::new();
    let server = serve(&format!(
        r#"
        [[turns]]
        text = "never"
        faults = [
          {{ kind = "status", status = 503, message = "overloaded (key {KEY})" }},
          {{ kind = "status", status = 503, message = "overloaded (key {KEY})" }},
          {{ kind = "status", status = 503, message = "overloaded (key {KEY})" }},
          {{ kind = "status", status = 503, message = "overloaded (key {KEY})" }},
        ]
        "#
    ))
    .await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--model", "resp:m", "hello"],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("resp answered HTTP 503") && stderr.contains("overloaded (key ***)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gave up after 4 attempts") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(KEY) && !stdout.contains(KEY),
        "the key never shows"
    );

    let failed = run(env.cordon(), &["runs", "--status", "failed", "--json"]).await;
    assert_eq!(
        String::from_utf8_lossy(&failed.stdout).lines().count(),
        1,
        "the failed run is listed"
    );
    let k = kinds(&env.last_run_events());
    assert_eq!(k.iter().filter(|k| *k == "model_retry").count(), 3);
    assert_eq!(k.last().unwrap(), "run_failed");
    let db = std::fs::read(env.store()).unwrap();
    let wal = std::fs::read(env.store().with_extension("db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is not in the store"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_is_always_cut_short_fails_clearly() {
    let env = Env::new();
    let cut = "{ kind = \"disconnect\", after_events = 2 }";
    let server = serve(&format!(
        "[[turns]]\ntext = \"x\"\nfaults = [{cut}, {cut}, {cut}, {cut}]\n"
    ))
    .await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--model", "chat:m", "hi"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stream ended before the response was complete"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cordon show"),
        "points at the recorded run: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_the_event_stream() {
    let env = Env::new();
    let server = serve(MULTI_TURN).await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--json", "--model", "resp:m", "go"],
    )
    .await;
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.first().unwrap()["kind"], "run_started");
    assert_eq!(lines.last().unwrap()["kind"], "run_completed");
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, e)| e["seq"] == i && e["hash"].as_str().unwrap().len() == 64)
    );
    assert_eq!(
        lines,
        env.last_run_events(),
        "--json prints exactly what is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_event_that_was_edited() {
    let env = Env::new();
    let server = serve(MULTI_TURN).await;
    let config = env.config_for(&server);
    assert!(
        run(
            env.cordon_with(&config),
            &["run", "--model", "resp:m", "go"]
        )
        .await
        .status
        .success()
    );
    let events = env.last_run_events();
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let victim = events.iter().find(|e| e["kind"] == "tool_result").unwrap()["seq"]
        .as_u64()
        .unwrap();

    // The attacker has the file: drops the append-only trigger and rewrites a tool result.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", env.store().display()))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER events_append_only_update")
        .execute(&pool)
        .await
        .unwrap();
    let changed = sqlx::query(
        "UPDATE events SET payload = replace(payload, '391', '392') WHERE run_id = ? AND seq = ?",
    )
    .bind(&run_id)
    .bind(victim as i64)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    let out = run(env.cordon(), &["verify", &run_id]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("event {victim} (tool_result)")),
        "{stderr}"
    );
    let out = run(env.cordon(), &["verify", "--json", &run_id]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["bad_seq"].as_u64()),
        (Some(false), Some(victim))
    );
    // `show` prints what is stored, and says that it cannot be trusted.
    let out = run(env.cordon(), &["show", &run_id]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("TAMPERED"), "{stderr}");
    assert!(
        stderr.contains(&format!("event {victim} (tool_result)")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_exits_with_the_budget_code() {
    let env = Env::new();
    let server = serve(MULTI_TURN).await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--max-turns", "1", "--model", "resp:m", "go"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the max_turns budget ran out (limit 1, used 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("--max-turns 2"), "the exact flag: {stderr}");
}

#[test]
fn the_readme_example_runs_with_the_built_in_scripted_server() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for model in [
        "scripted:examples/script.toml",
        "scripted-chat:examples/script.toml",
    ] {
        let out = env
            .cordon()
            .current_dir(&root)
            .args([
                "run",
                "--agent",
                "examples/agent.toml",
                "--model",
                model,
                "What is 17 * 23 + 4, and what time is it?",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{model}: {stderr}");
        assert!(stderr.contains(" 395 ("), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("= 395"));
    }
}

#[test]
fn bad_input_gets_one_clear_message_and_exit_code_2() {
    let env = Env::new();
    let bad_agent = env.write(
        "agent.toml",
        "name = \"x\"\ntools = [\"calculator\"]\nmax_turn = 3\n",
    );
    let unknown_tool = env.write("tool.toml", "name = \"x\"\ntools = [\"rm_rf\"]\n");
    let zero_turns = env.write("zero.toml", "name = \"x\"\nmax_turns = 0\n");
    let free = env.write(
        "free.toml",
        "name = \"x\"\n[budgets]\nmax_cost_usd = -1.0\n",
    );
    let negative = env.write("neg.toml", "name = \"x\"\n[budgets]\nmax_tool_calls = -3\n");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["run", "--agent", zero_turns.to_str().unwrap(), "t"],
            vec!["max_turns is 0"],
        ),
        (
            vec!["run", "--agent", free.to_str().unwrap(), "t"],
            vec!["budgets.max_cost_usd is -1"],
        ),
        (
            vec!["run", "--agent", negative.to_str().unwrap(), "t"],
            vec!["neg.toml is not valid", "max_tool_calls"],
        ),
        (
            vec!["run", "--max-turns", "0", "t"],
            vec!["--max-turns", "0"],
        ),
        (
            vec![
                "run",
                "--agent",
                bad_agent.to_str().unwrap(),
                "--model",
                "ollama:m",
                "t",
            ],
            vec!["agent.toml is not valid", "line 3", "max_turn", "hint:"],
        ),
        (
            vec![
                "run",
                "--agent",
                unknown_tool.to_str().unwrap(),
                "--model",
                "ollama:m",
                "t",
            ],
            vec!["unknown tool 'rm_rf'", "calculator"],
        ),
        (
            vec!["run", "--agent", "/nonexistent/agent.toml", "t"],
            vec!["cannot read the agent file"],
        ),
        (
            vec!["run", "--model", "nope:gpt", "t"],
            vec!["unknown provider 'nope'", "known providers: openai"],
        ),
        (
            vec!["run", "--model", "gpt-5", "t"],
            vec!["does not name its provider", "openai:gpt-5"],
        ),
        (
            vec!["run", "--model", "openai:gpt-5-mini", "t"],
            vec!["OPENAI_API_KEY is not set", "export OPENAI_API_KEY"],
        ),
        (
            vec!["run", "--model", "scripted:/nonexistent.toml", "t"],
            vec!["cannot read script /nonexistent.toml"],
        ),
        (
            vec!["show", "no-such-run"],
            vec!["no run matches 'no-such-run'", "cordon runs"],
        ),
    ];
    for (args, expected) in cases {
        let out = env.cordon().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{args:?}: expected '{e}' in: {stderr}");
        }
        assert_eq!(stderr.matches("error:").count(), 1, "one message: {stderr}");
    }
}

#[test]
fn an_unreachable_base_url_fails_with_the_address_and_a_hint() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.write(
        "c.toml",
        &format!("[providers.local]\napi = \"chat\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmax_retries = 1\nretry_initial_ms = 10\n"),
    );
    let out = env
        .cordon_with(&config)
        .args(["run", "--model", "local:m", "hi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach local at http://127.0.0.1:{port}/v1")),
        "{stderr}"
    );
    assert!(stderr.contains("is the server running"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_is_the_final_answer_whether_streamed_or_not_and_after_a_rejected_answer() {
    for provider in ["resp", "chat", "resp-whole", "chat-whole"] {
        let env = Env::new();
        let server = serve(
            r#"
            [[turns]]
            text = "Let me compute."
            tool_calls = [{ name = "calculator", arguments = { expression = "6 * 7" } }]
            [[turns]]
            text = "forty-two, as prose"
            [[turns]]
            text = "{\"answer\": 42}"
            "#,
        )
        .await;
        let config = env.config_for(&server);
        let agent = env.write(
            "agent.toml",
            "name = \"a\"\ntools = [\"calculator\"]\n[output]\nschema = { type = \"object\", properties = { answer = { type = \"integer\" } }, required = [\"answer\"] }\n",
        );
        let model = format!("{provider}:m");
        let out = run(
            env.cordon_with(&config),
            &[
                "run",
                "--agent",
                agent.to_str().unwrap(),
                "--model",
                &model,
                "6*7?",
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{provider}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "{\"answer\":42}\n",
            "{provider}: only the final JSON object; stderr: {stderr}"
        );
        assert!(
            stderr.contains("does not match the output schema"),
            "{provider}: the rejected answer is reported on stderr: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_off_at_the_output_limit_is_incomplete_not_completed() {
    for provider in ["resp", "chat", "resp-whole", "chat-whole"] {
        let env = Env::new();
        let server = serve(
            r#"
            [[turns]]
            text = "The three causes are: first, the"
            cut_off = true
            [[turns]]
            text = "cache, the lock and the clock."
            "#,
        )
        .await;
        let config = env.config_for(&server);
        let model = format!("{provider}:m");
        let out = run(
            env.cordon_with(&config),
            &["run", "--model", &model, "why?"],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{provider}: {stderr}");
        assert!(
            stderr.contains("incomplete") && stderr.contains("cut off"),
            "{provider}: says why: {stderr}"
        );
        assert!(stderr.contains("max_output_tokens"), "{provider}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "{provider}: no final answer"
        );
        let events = env.last_run_events();
        assert!(
            !events.iter().any(|e| e["kind"] == "run_completed"),
            "{provider}: {:?}",
            kinds(&events)
        );
        // It stays resumable: the model is asked to go on.
        let run_id = events[0]["run_id"].as_str().unwrap().to_string();
        let resumed = run(
            env.cordon_with(&config),
            &["resume", &run_id, "--input", "Continue."],
        )
        .await;
        assert!(
            resumed.status.success(),
            "{provider}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&resumed.stdout),
            "cache, the lock and the clock.\n"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_keeps_the_answer_byte_for_byte() {
    // Views escape control characters; the answer a script captures is left as it came.
    let env = Env::new();
    let server = serve("[[turns]]\ntext = \"a\\tb\\u001b[1mc\"\n").await;
    let config = env.config_for(&server);
    let out = run(
        env.cordon_with(&config),
        &["run", "--model", "resp:m", "go"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"a\tb\x1b[1mc\n");
}
