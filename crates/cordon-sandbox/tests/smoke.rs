//! A sandbox starts, runs commands, and keeps its processes between calls.

use cordon_sandbox::{LocalSandbox, SandboxConfig, SupervisorCommand, Tier, TierChoice};
use std::time::Duration;

fn supervisor() -> SupervisorCommand {
    SupervisorCommand {
        program: env!("CARGO_BIN_EXE_cordon-supervisor").into(),
        args: vec![],
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

#[tokio::test]
async fn commands_run_inside_with_a_clean_environment() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("hello.txt"), "hi from the host\n").unwrap();
    let mut config = SandboxConfig::new(ws.path(), supervisor());
    config.tier = TierChoice::Exactly(Tier::Namespaces);
    let sb = LocalSandbox::create(config).await.unwrap();
    println!("confinement: {:?}", sb.confinement());
    let out = sb
        .run(
            &sh("cat hello.txt; id -u; pwd; env | sort; echo err >&2; exit 3"),
            ".",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    println!("{}\n{}", out.stdout_text(), out.stderr_text());
    assert_eq!(out.code, Some(3));
    let text = out.stdout_text();
    assert!(text.contains("hi from the host"));
    assert!(text.contains("/workspace"));
    assert_eq!(out.stderr_text(), "err\n");
}
