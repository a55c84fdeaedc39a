//! What the CLI's end-to-end tests share: the real `cordon` binary in a private home.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// `cordon` with a private home: an empty environment but for PATH and HOME, the run store and
/// snapshot store under `home`, run from `home`. Tests add what else they need.
pub fn cordon_std(home: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("cordon"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CORDON_STORE", home.join("runs.db"))
        .env("CORDON_SNAPSHOTS", home.join("snaps"))
        .current_dir(home);
    c
}

/// The same, for assert_cmd, stopped after a minute if it hangs.
pub fn cordon(home: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(cordon_std(home));
    c.timeout(Duration::from_secs(60));
    c
}

/// Runs a command off the async runtime's threads, so a scripted server in this test process
/// keeps serving while it runs.
pub async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// A command's standard output as JSON Lines.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// A private home whose config file names the scripted server, started on `script`, as
/// provider `s`. The server stops when dropped.
pub async fn scripted_home(script: &str) -> (cordon_testkit::ScriptedServer, tempfile::TempDir) {
    let server = cordon_testkit::ScriptedServer::start(
        cordon_testkit::Script::from_toml(script).expect("the test's script is valid"),
    )
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    (server, home)
}

/// `cordon` in `home` as the user `tester`, with the home's config file.
pub fn as_tester(home: &Path) -> Command {
    let mut c = cordon_std(home);
    c.env("USER", "tester")
        .env("CORDON_CONFIG", home.join("config.toml"));
    c
}

/// Runs `cordon ARGS` as [`as_tester`] and checks its exit code, showing stderr when it
/// differs.
pub async fn expect(home: &Path, args: &[&str], code: i32) -> Output {
    let mut c = as_tester(home);
    c.args(args);
    let out = output(c).await;
    assert_eq!(
        out.status.code(),
        Some(code),
        "cordon {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
