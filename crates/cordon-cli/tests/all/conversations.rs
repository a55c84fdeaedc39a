//! Conversations across runs: `--conversation NAME` and `--continue RUN` start a run from an
//! ended run's history, the link is recorded in both, and a run that has not ended is not
//! continued.

use crate::common;
use serde_json::Value;

fn events(out: &std::process::Output) -> Vec<Value> {
    common::json_lines(&out.stdout)
}

fn run_id(events: &[Value]) -> String {
    events[0]["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_conversation_is_continued_twice_and_linked_both_ways() {
    let (server, home) = common::scripted_home(
        "[[turns]]\ntext = \"answer one\"\n[[turns]]\ntext = \"answer two\"\n[[turns]]\ntext = \"answer three\"\n[[turns]]\ntool_calls = [{ name = \"calculator\", arguments = { expression = \"1 + 1\" } }]\n",
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("agent.toml"),
        "name = \"chat\"\ntools = [\"calculator\"]\n[approvals]\ntools = [\"calculator\"]\n",
    )
    .unwrap();
    let agent = h.join("agent.toml").display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--agent", agent.as_str(), "--model", "s:m"];
        all.extend_from_slice(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let a = run(&["--conversation", "notes", "first"]);
    let out = common::expect(h, &a.iter().map(String::as_str).collect::<Vec<_>>(), 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "answer one");
    let first = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let first_id = run_id(&first);

    let b = run(&["--conversation", "notes", "second"]);
    common::expect(h, &b.iter().map(String::as_str).collect::<Vec<_>>(), 0).await;
    let second = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let second_id = run_id(&second);
    let carried = second
        .iter()
        .find(|e| e["kind"] == "conversation_continued")
        .unwrap();
    assert_eq!(carried["payload"]["from"], first_id.as_str());
    assert_eq!(carried["payload"]["conversation"], "notes");

    let c = run(&["--continue", "last", "third"]);
    let out = common::expect(h, &c.iter().map(String::as_str).collect::<Vec<_>>(), 0).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "answer three");
    let third = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let carried = third
        .iter()
        .find(|e| e["kind"] == "conversation_continued")
        .unwrap();
    assert_eq!(carried["payload"]["from"], second_id.as_str());
    assert_eq!(
        carried["payload"]["conversation"], "notes",
        "the name is passed on"
    );

    // The third request held the whole conversation, in order.
    let requests = server.requests();
    let said: Vec<(String, String)> = requests[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("user", "first"),
        ("assistant", "answer one"),
        ("user", "second"),
        ("assistant", "answer two"),
        ("user", "third"),
    ];
    assert_eq!(
        said,
        expected
            .iter()
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .collect::<Vec<_>>()
    );
    // Each earlier run records who carried it on, and still verifies.
    for (id, by) in [(&first_id, &second_id), (&second_id, &run_id(&third))] {
        let shown = events(&common::expect(h, &["show", id, "--json"], 0).await);
        let link = shown.iter().find(|e| e["kind"] == "continued_by").unwrap();
        assert_eq!(link["payload"]["run"], by.as_str());
        let text =
            String::from_utf8_lossy(&common::expect(h, &["show", id], 0).await.stdout).to_string();
        assert!(text.contains(&format!("by run {by}")), "{text}");
    }
    common::expect(h, &["verify", "--all"], 0).await;

    // A run waiting for a person is resumed, not continued.
    let d = run(&["--continue", "last", "add"]);
    common::expect(h, &d.iter().map(String::as_str).collect::<Vec<_>>(), 5).await;
    let e = run(&["--continue", "last", "more"]);
    let out = common::expect(h, &e.iter().map(String::as_str).collect::<Vec<_>>(), 2).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("awaiting_approval") && err.contains("cordon resume"),
        "{err}"
    );
    // A conversation's name must be one it has.
    let f = run(&["--continue", &first_id, "--conversation", "other", "x"]);
    let out = common::expect(h, &f.iter().map(String::as_str).collect::<Vec<_>>(), 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to the conversation 'notes'"));
}
