//! Guardrails through the real binary: commands in the sandbox stopping a call and
//! withholding a result, and model checks stopping a run on its task or its answer.

use crate::common;
use serde_json::Value;

fn events(out: &std::process::Output) -> Vec<Value> {
    common::json_lines(&out.stdout)
}

#[tokio::test]
async fn command_guardrails_stop_a_call_and_withhold_a_result() {
    let (_server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ call_id = \"rm\", name = \"exec_command\", arguments = { cmd = \"rm -rf notes.txt\" } }, { call_id = \"key\", name = \"exec_command\", arguments = { cmd = \"printf -- '-----BEGIN PRIVATE KEY-----'\" } }, { call_id = \"ok\", name = \"exec_command\", arguments = { cmd = \"cat notes.txt\" } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(h.join("ws/notes.txt"), "keep me").unwrap();
    std::fs::write(
        h.join("agent.toml"),
        r#"name = "careful"
tools = ["exec_command"]

[[guardrails]]
name = "no-rm"
on = ["tool_call"]
tools = ["exec_*"]
command = ["sh", "-c", "if grep -q 'rm -rf'; then echo 'deletes files'; exit 1; fi"]

[[guardrails]]
name = "no-keys"
on = ["tool_result"]
command = ["sh", "-c", "! grep -q 'PRIVATE KEY'"]
"#,
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--workspace",
            "ws",
            "--model",
            "s:m",
            "go",
        ],
        0,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    assert_eq!(
        std::fs::read_to_string(h.join("ws/notes.txt")).unwrap(),
        "keep me",
        "rm never ran"
    );
    let events = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let result = |id: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == id)
            .unwrap()["payload"]
            .clone()
    };
    assert_eq!(result("rm")["not_run"], true);
    assert!(
        result("rm")["output"]
            .as_str()
            .unwrap()
            .contains("'no-rm' refused this call: deletes files")
    );
    assert!(
        events
            .iter()
            .all(|e| !(e["kind"] == "tool_call_intent" && e["payload"]["call_id"] == "rm"))
    );
    let key = result("key");
    assert_eq!(key["is_error"], true);
    assert!(
        !key["output"]
            .as_str()
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert!(
        key["output"]
            .as_str()
            .unwrap()
            .contains("'no-keys' withheld its result")
    );
    assert!(result("ok")["output"].as_str().unwrap().contains("keep me"));
    let tripped: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "guardrail_tripped")
        .map(|e| {
            (
                e["payload"]["guardrail"].as_str().unwrap(),
                e["payload"]["stage"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tripped,
        [("no-rm", "tool_call"), ("no-keys", "tool_result")]
    );
}

const CHECK: &str = "You check text from an AI agent";

#[tokio::test]
async fn a_model_check_on_the_answer_stops_the_run_with_its_own_exit_code() {
    let (server, home) = common::scripted_home(&format!(
        "[[replies]]\nwhen_body_contains = \"{CHECK}\"\ntext = '{{\"pass\": false, \"reason\": \"it promises a refund\"}}'\n\n[[turns]]\ntext = \"We will refund you in full.\"\n"
    ))
    .await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"support\"\n[[guardrails]]\nname = \"no-promises\"\non = [\"output\"]\nmodel_check = \"The answer must not promise refunds.\"\n",
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let out = common::expect(h, &["run", "--agent", &agent, "--model", "s:m", "help"], 6).await;
    assert!(
        out.stdout.is_empty(),
        "the refused answer is not printed as the answer"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stopped by a guardrail") && err.contains("it promises a refund"),
        "{err}"
    );
    let check = server
        .requests()
        .into_iter()
        .find(|r| r.served == "reply")
        .unwrap();
    let asked = check.body["messages"][1]["content"].as_str().unwrap();
    assert!(
        asked.contains("The rule: The answer must not promise refunds.")
            && asked.contains("We will refund you in full."),
        "{asked}"
    );
    let events = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "guardrail_tripped" && e["payload"]["stage"] == "output")
    );
    assert!(events.iter().all(|e| e["kind"] != "run_completed"));
}

#[tokio::test]
async fn a_model_check_on_the_task_stops_the_run_before_the_agent_starts() {
    let (server, home) = common::scripted_home(&format!(
        "[[replies]]\nwhen_body_contains = \"{CHECK}\"\ntext = '{{\"pass\": false, \"reason\": \"asks for credentials\"}}'\n\n[[turns]]\ntext = \"never\"\n"
    ))
    .await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[[guardrails]]\nname = \"no-creds\"\non = [\"input\"]\nmodel_check = \"No asking for passwords.\"\n",
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--model",
            "s:m",
            "tell me the root password",
        ],
        6,
    )
    .await;
    let served: Vec<String> = server.requests().into_iter().map(|r| r.served).collect();
    assert_eq!(served, ["reply"], "the agent's model was never asked");
    // An agent whose only sandboxed part is a command guardrail gets a sandbox.
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[[guardrails]]\nname = \"x\"\non = [\"output\"]\ncommand = [\"true\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--workspace",
            "ws",
            "--model",
            "s:m",
            "go",
        ],
        0,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "never");
    // A bad declaration is named.
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\n[[guardrails]]\nname = \"x\"\non = [\"output\"]\n",
    )
    .unwrap();
    let out = common::expect(h, &["run", "--agent", &agent, "--model", "s:m", "go"], 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly one of `command`"));
}

/// A run a guardrail stopped is neither resumed nor continued; `resume --input` text is judged
/// like a task; an agent whose only sandboxed part is a command guardrail gets a sandbox.
#[tokio::test]
async fn a_stopped_run_stays_stopped_and_new_input_is_judged() {
    let (_server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ name = \"calculator\", arguments = { expression = \"1 + 1\" } }]\n[[turns]]\ntext = \"two\"\n",
    )
    .await;
    let h = home.path();
    std::fs::create_dir_all(h.join("ws")).unwrap();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"a\"\ntools = [\"calculator\"]\n[approvals]\ntools = [\"calculator\"]\n[[guardrails]]\nname = \"no-forbidden\"\non = [\"input\"]\ncommand = [\"sh\", \"-c\", \"if grep -q forbidden; then echo 'a forbidden task'; exit 1; fi\"]\ntimeout_secs = 5\n",
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let run = |task: &'static str| {
        vec![
            "run",
            "--agent",
            agent.as_str(),
            "--workspace",
            "ws",
            "--model",
            "s:m",
            task,
        ]
    };
    common::expect(h, &run("this is forbidden"), 6).await;
    let out = common::expect(h, &["resume", "last"], 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("a guardrail stopped run"));
    let mut cont = run("more");
    cont.extend(["--continue", "last"]);
    let out = common::expect(h, &cont, 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not carried on"));
    // A fine task waits for approval; the text a resume adds is judged.
    common::expect(h, &run("add one and one"), 5).await;
    common::expect(h, &["approve", "last"], 0).await;
    common::expect(
        h,
        &["resume", "last", "--input", "now something forbidden"],
        6,
    )
    .await;
    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "guardrail_tripped" && e["payload"]["stage"] == "input")
    );
}
