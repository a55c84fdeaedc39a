//! Skills through the real binary: placed in the workspace from the agent file and from a
//! manifest entry, listed in the instructions, opened by the model; read from the host by
//! `read_skill` when the agent has no sandbox; malformed ones refused before the run.

use crate::common;
use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    common::json_lines(&out.stdout)
}

const REVIEW: &str = "---\nname: review\ndescription: Reviews a change against the team's checklist.\n---\n# Review\nRead checklist.md, then check each item.\n";

#[tokio::test]
async fn skills_are_placed_listed_and_opened_in_the_sandbox() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    write(&h.join("skills/review/SKILL.md"), REVIEW);
    write(&h.join("skills/review/checklist.md"), "- tests pass\n");
    write(
        &h.join("more/notes/SKILL.md"),
        "---\nname: notes\ndescription: Keeps meeting notes.\n---\nWrite notes.\n",
    );
    write(
        &h.join("agent.toml"),
        "name = \"reviewer\"\ninstructions = \"Review things.\"\ntools = [\"exec_command\"]\n\n[skills]\npaths = [\"skills\"]\n",
    );
    // Any manifest entry can bring a skill: here a local folder.
    write(
        &h.join("m.toml"),
        "[entries.\".agents/skills/notes\"]\ntype = \"local_dir\"\nsource = \"more/notes\"\n",
    );
    write(
        &h.join("s.toml"),
        "[[turns]]\ntool_calls = [{ name = \"exec_command\", arguments = { cmd = \"cat .agents/skills/review/SKILL.md .agents/skills/review/checklist.md\" } }]\n[[turns]]\ntext = \"reviewed\"\n",
    );
    let model = format!("scripted:{}", h.join("s.toml").display());
    let agent = h.join("agent.toml").display().to_string();
    let manifest = h.join("m.toml").display().to_string();
    common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--manifest",
            &manifest,
            "--model",
            &model,
            "review it",
        ],
        0,
    )
    .await;
    let events = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let started = &events.iter().find(|e| e["kind"] == "run_started").unwrap()["payload"]["agent"];
    let instructions = started["instructions"].as_str().unwrap();
    assert!(instructions.contains("## Skills"), "{instructions}");
    assert!(
        instructions.contains("- review: Reviews a change against the team's checklist. (.agents/skills/review/SKILL.md)"),
        "{instructions}"
    );
    assert!(
        instructions.contains("- notes: Keeps meeting notes. (.agents/skills/notes/SKILL.md)"),
        "{instructions}"
    );
    // Only the listing is in the instructions; the body waits until the model opens it.
    assert!(
        !instructions.contains("Read checklist.md"),
        "{instructions}"
    );
    assert_eq!(started["skills"][0]["name"], "notes");
    let result = events.iter().find(|e| e["kind"] == "tool_result").unwrap();
    let output = result["payload"]["output"].as_str().unwrap();
    assert!(
        output.contains("Read checklist.md") && output.contains("- tests pass"),
        "{output}"
    );
}

#[tokio::test]
async fn without_a_sandbox_read_skill_reads_the_host_folder_and_nothing_else() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    write(&h.join("skills/review/SKILL.md"), REVIEW);
    write(&h.join("skills/review/checklist.md"), "- tests pass\n");
    write(&h.join("host-secret.txt"), "not for the model");
    write(
        &h.join("agent.toml"),
        "name = \"reviewer\"\ntools = [\"calculator\"]\n\n[skills]\npaths = [\"skills/review\"]\n",
    );
    write(
        &h.join("s.toml"),
        "[[turns]]\ntool_calls = [{ call_id = \"a\", name = \"read_skill\", arguments = { name = \"review\" } }, { call_id = \"b\", name = \"read_skill\", arguments = { name = \"review\", file = \"checklist.md\" } }, { call_id = \"c\", name = \"read_skill\", arguments = { name = \"review\", file = \"../../host-secret.txt\" } }]\n[[turns]]\ntext = \"done\"\n",
    );
    let model = format!("scripted:{}", h.join("s.toml").display());
    let agent = h.join("agent.toml").display().to_string();
    common::expect(
        h,
        &["run", "--agent", &agent, "--model", &model, "review"],
        0,
    )
    .await;
    let events = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let started = &events.iter().find(|e| e["kind"] == "run_started").unwrap()["payload"]["agent"];
    assert!(
        started["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "read_skill")
    );
    assert!(
        started["instructions"]
            .as_str()
            .unwrap()
            .contains("with the read_skill tool")
    );
    let output = |id: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == id)
            .map(|e| e["payload"]["output"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(output("a").contains("Read checklist.md"), "{}", output("a"));
    assert_eq!(output("b"), "- tests pass\n");
    assert!(output("c").contains("without '..'") && !output("c").contains("not for the model"));
}

#[tokio::test]
async fn malformed_and_duplicate_skills_are_refused_before_the_run() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    write(&h.join("s.toml"), "[[turns]]\ntext = \"never\"\n");
    let model = format!("scripted:{}", h.join("s.toml").display());
    let agent = h.join("agent.toml").display().to_string();
    let cases = [
        ("bad/x/SKILL.md", "---\nname: x\n", "no closing '---'"),
        (
            "bad/x/SKILL.md",
            "---\nname: X Y\ndescription: d\n---\n",
            "lowercase letters",
        ),
        (
            "bad/x/SKILL.md",
            "no front matter",
            "does not start with front matter",
        ),
    ];
    for (file, text, says) in cases {
        let _ = std::fs::remove_dir_all(h.join("bad"));
        write(&h.join(file), text);
        write(
            &h.join("agent.toml"),
            "name = \"a\"\n[skills]\npaths = [\"bad\"]\n",
        );
        let out = common::expect(h, &["run", "--agent", &agent, "--model", &model, "go"], 2).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.contains("SKILL.md"),
            "{says}: {err}"
        );
    }
    write(
        &h.join("one/dup/SKILL.md"),
        "---\nname: dup\ndescription: one\n---\n",
    );
    write(
        &h.join("two/dup/SKILL.md"),
        "---\nname: dup\ndescription: two\n---\n",
    );
    write(
        &h.join("agent.toml"),
        "name = \"a\"\n[skills]\npaths = [\"one\", \"two\"]\n",
    );
    let out = common::expect(h, &["run", "--agent", &agent, "--model", &model, "go"], 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("two skills are named 'dup'"));
    write(
        &h.join("agent.toml"),
        "name = \"a\"\n[skills]\npaths = [\"one\"]\ndir = \"../outside\"\n",
    );
    let out = common::expect(h, &["run", "--agent", &agent, "--model", &model, "go"], 2).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder inside the workspace"));
}

/// Skills and a user's own workspace: placed once and left for the next run, never through a
/// link out of it; a workspace's folders are not read for an agent with no `[skills]`.
#[tokio::test]
async fn skills_in_a_users_workspace_run_again_and_never_leave_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("config.toml"), "").unwrap();
    write(&h.join("skills/review/SKILL.md"), REVIEW);
    write(
        &h.join("agent.toml"),
        "name = \"r\"\ntools = [\"exec_command\"]\n[skills]\npaths = [\"skills\"]\n",
    );
    write(&h.join("s.toml"), "[[turns]]\ntext = \"ok\"\n");
    let model = format!("scripted:{}", h.join("s.toml").display());
    let agent = h.join("agent.toml").display().to_string();
    std::fs::create_dir_all(h.join("proj")).unwrap();
    for _ in 0..2 {
        common::expect(
            h,
            &[
                "run",
                "--agent",
                &agent,
                "--workspace",
                "proj",
                "--model",
                &model,
                "go",
            ],
            0,
        )
        .await;
    }
    assert!(h.join("proj/.agents/skills/review/SKILL.md").exists());
    // A link on the way to the skills folder: refused, and nothing written where it leads.
    std::fs::create_dir_all(h.join("proj2")).unwrap();
    std::fs::create_dir_all(h.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(h.join("elsewhere"), h.join("proj2/.agents")).unwrap();
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--workspace",
            "proj2",
            "--model",
            &model,
            "go",
        ],
        2,
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a link"));
    assert_eq!(std::fs::read_dir(h.join("elsewhere")).unwrap().count(), 0);
    // A read-only workspace gets no skills copied into it.
    let out = common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--workspace",
            "proj",
            "--read-only",
            "--model",
            &model,
            "go",
        ],
        2,
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only workspace"));
    // An agent without [skills] runs in a repository whose skills folder it would refuse.
    write(
        &h.join("proj3/.agents/skills/other/README.md"),
        "not a skill",
    );
    write(
        &h.join("plain.toml"),
        "name = \"p\"\ntools = [\"exec_command\"]\n",
    );
    let plain = h.join("plain.toml").display().to_string();
    common::expect(
        h,
        &[
            "run",
            "--agent",
            &plain,
            "--workspace",
            "proj3",
            "--model",
            &model,
            "go",
        ],
        0,
    )
    .await;
}

/// A run that reads skills from the host waits for an approval and resumes with `read_skill`.
#[tokio::test]
async fn a_run_with_host_skills_resumes() {
    let (_server, home) = common::scripted_home(
        "[[turns]]\ntool_calls = [{ name = \"calculator\", arguments = { expression = \"1 + 1\" } }]\n[[turns]]\ntool_calls = [{ call_id = \"r\", name = \"read_skill\", arguments = { name = \"review\" } }]\n[[turns]]\ntext = \"done\"\n",
    )
    .await;
    let h = home.path();
    write(&h.join("skills/review/SKILL.md"), REVIEW);
    write(
        &h.join("agent.toml"),
        "name = \"r\"\ntools = [\"calculator\"]\n[approvals]\ntools = [\"calculator\"]\n[skills]\npaths = [\"skills\"]\n",
    );
    let agent = h.join("agent.toml").display().to_string();
    common::expect(h, &["run", "--agent", &agent, "--model", "s:m", "go"], 5).await;
    common::expect(h, &["approve", "last"], 0).await;
    common::expect(h, &["resume", "last"], 0).await;
    let events = events(&common::expect(h, &["show", "last", "--json"], 0).await);
    let read = events
        .iter()
        .find(|e| e["kind"] == "tool_result" && e["payload"]["call_id"] == "r")
        .unwrap();
    assert!(
        read["payload"]["output"]
            .as_str()
            .unwrap()
            .contains("Read checklist.md")
    );
}
