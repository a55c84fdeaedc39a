//! `cordon sandbox exec` and `cordon doctor`.

use crate::cli::{SandboxArgs, TierArg};
use crate::exit::Failure;
use cordon_sandbox::Sandbox as _;
use cordon_sandbox::{
    LocalProvider, LocalSandbox, ProcessEvent, SandboxConfig, Stream, SupervisorCommand, Tier,
    TierChoice,
};
use cordon_session::SandboxOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit status when the sandbox itself could not start.
const SANDBOX_FAILED: u8 = 125;
/// Exit status when the timeout killed the command (as `timeout(1)`).
const TIMED_OUT: u8 = 124;

/// The supervisor: this very binary, re-executed in its hidden mode.
pub fn supervisor() -> anyhow::Result<SupervisorCommand> {
    SupervisorCommand::installed()
        .map_err(|e| anyhow::anyhow!("cannot find the cordon binary to run as supervisor: {e}"))
}

/// The tier a `--sandbox` argument names, as recorded.
pub fn tier_name(t: TierArg) -> &'static str {
    match t {
        TierArg::Auto => "auto",
        TierArg::Namespaces => "namespaces",
        TierArg::Landlock => "landlock",
        TierArg::Unconfined => "unconfined",
    }
}

/// The sandbox the arguments describe, made by the local provider: over --workspace (by
/// default the current directory), or a fresh workspace built from --manifest. `protected`
/// are host paths it must never reach.
pub async fn create(
    args: &SandboxArgs,
    protected: &[PathBuf],
) -> anyhow::Result<cordon_session::PreparedSandbox> {
    let manifest = args
        .manifest
        .as_deref()
        .map(cordon_session::load_manifest)
        .transpose()?;
    let workspace = match (&args.workspace, &manifest) {
        (None, None) => Some(std::env::current_dir()?),
        (w, _) => w.clone(),
    };
    let fresh = workspace.is_none();
    if args.sandbox == TierArg::Unconfined {
        eprintln!(
            "warning: --sandbox unconfined: commands run with all of this user's access to files, network and processes"
        );
    }
    let options = SandboxOptions {
        manifest,
        workspace,
        isolation: tier_name(args.sandbox).to_string(),
        read_only: args.read_only,
        command_timeout_secs: cordon_session::DEFAULT_COMMAND_TIMEOUT,
    };
    let provider = LocalProvider::new(supervisor()?);
    let workspaces = super::state_dir()?.join("workspaces");
    let prepared = cordon_session::prepare_sandbox(
        &provider,
        &options,
        &workspaces,
        protected,
        crate::progress::Bars::for_stderr().as_ref(),
    )
    .await?;
    if fresh {
        eprintln!("workspace: {}", prepared.workspace.display());
    }
    Ok(prepared)
}

/// `cordon sandbox exec`: one command in a fresh sandbox, output streamed, its status returned.
pub async fn exec(
    args: &SandboxArgs,
    protected: &[PathBuf],
    timeout: u64,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let sandbox = create(args, protected).await?.sandbox;
    tracing::info!(isolation = ?sandbox.isolation(), "sandbox ready");
    let result = run_one(sandbox.as_ref(), timeout, command).await;
    // The output is out; now the sandbox goes, and its cgroups with it.
    let _ = sandbox.stop().await;
    result
}

/// Runs `command` in `sandbox`, streaming its output, to its exit status.
async fn run_one(
    sandbox: &dyn cordon_sandbox::Sandbox,
    timeout: u64,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let mut process = sandbox.spawn(command, ".", &[], None).await?;
    process.close_stdin().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut timed_out = false;
    loop {
        let event = match tokio::time::timeout_at(deadline, process.next_event()).await {
            Ok(e) => e,
            Err(_) => {
                timed_out = true;
                process.kill().await?;
                tokio::time::timeout(Duration::from_secs(5), process.next_event())
                    .await
                    .ok()
                    .flatten()
            }
        };
        match event {
            Some(ProcessEvent::Started(_)) => {}
            Some(ProcessEvent::Output(Stream::Stderr, data)) => {
                let _ = std::io::stderr().write_all(&data);
            }
            Some(ProcessEvent::Output(_, data)) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Some(ProcessEvent::Exited { code, signal }) => {
                if timed_out {
                    eprintln!(
                        "cordon: the command ran past --timeout {timeout}s; it and every process it started were killed"
                    );
                    return Ok(ExitCode::from(TIMED_OUT));
                }
                return Ok(ExitCode::from(match (code, signal) {
                    (Some(c), _) => c.clamp(0, 255) as u8,
                    (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
                    (None, None) => 1,
                }));
            }
            Some(ProcessEvent::Failed(why)) => {
                return Err(Failure::bad_input(
                    why,
                    "check the command's name and path inside the sandbox",
                ));
            }
            None => return Err(anyhow::anyhow!("the sandbox ended before the command did")),
        }
    }
}

/// A command under a pseudo-terminal wired to this one: keystrokes in (raw mode, when this
/// is a terminal), output out, window size followed; exits with the command's status.
pub async fn interactive(
    args: &SandboxArgs,
    protected: &[PathBuf],
    timeout: u64,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let sandbox = create(args, protected).await?.sandbox;
    let (rows, cols) = terminal_size().unwrap_or((24, 80));
    let mut process = sandbox.spawn(command, ".", &[], Some((rows, cols))).await?;
    let mut events = process.take_events();
    let process = std::sync::Arc::new(process);
    let raw = RawMode::enable();
    let input = process.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 || input.write(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let resizer = process.clone();
    tokio::spawn(async move {
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some((r, c)) = terminal_size() {
                let _ = resizer.resize(r, c).await;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(e) => e,
            Err(_) => {
                process.kill().await?;
                break TIMED_OUT;
            }
        };
        match event {
            Some(ProcessEvent::Output(_, data)) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Some(ProcessEvent::Exited { code, signal }) => {
                break match (code, signal) {
                    (Some(c), _) => c.clamp(0, 255) as u8,
                    (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
                    (None, None) => 1,
                };
            }
            Some(ProcessEvent::Failed(why)) => {
                drop(raw);
                return Err(Failure::bad_input(
                    why,
                    "check the command's name and path inside the sandbox",
                ));
            }
            Some(ProcessEvent::Started(_)) => {}
            None => break 1,
        }
    };
    drop(raw);
    Ok(ExitCode::from(status))
}

/// This terminal's size, from `stty size` (rows, columns).
fn terminal_size() -> Option<(u16, u16)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// This terminal in raw mode (keys go straight to the sandbox), restored when dropped.
/// Nothing changes when stdin is not a terminal.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enable() -> RawMode {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode(None);
        }
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// `cordon doctor`: tries each tier for real and says what works.
pub async fn doctor(json: bool, agent: Option<&Path>) -> anyhow::Result<ExitCode> {
    let checked = match agent {
        Some(path) => Some(crate::commands::agent_check::check(path).await?),
        None => None,
    };
    // The probe runs bubblewrap: off the runtime's threads.
    let probe = tokio::task::spawn_blocking(cordon_sandbox::tier::probe).await?;
    let scratch = tempfile::tempdir()?;
    let mut report = Vec::new();
    for tier in [Tier::Namespaces, Tier::Landlock] {
        let result = try_tier(tier, scratch.path()).await;
        report.push((tier, result));
    }
    let auto = report.iter().find(|(_, r)| r.is_ok()).map(|(t, _)| *t);
    // The supervisor that answered a real start (a stale `cordon-supervisor` gives way).
    let answered = report
        .iter()
        .find_map(|(_, r)| r.as_ref().ok().map(|(_, p)| p.clone()));
    let supervisor = answered.unwrap_or(supervisor()?.program);
    let supervisor_shown = format!(
        "{}{}",
        supervisor.display(),
        if supervisor.ends_with(cordon_sandbox::local::SUPERVISOR_BINARY) {
            ""
        } else {
            " (cordon itself: no cordon-supervisor of the same build beside it, so each start and command takes longer)"
        }
    );
    let report: Vec<(Tier, Result<cordon_sandbox::hardening::Applied, String>)> = report
        .into_iter()
        .map(|(t, r)| (t, r.map(|(applied, _)| applied)))
        .collect();
    if json {
        let tiers: Vec<serde_json::Value> = report
            .iter()
            .map(|(t, r)| match r {
                Ok(c) => serde_json::json!({ "tier": t.as_str(), "works": true, "confinement": c, "limits": t.gaps(c) }),
                Err(e) => serde_json::json!({ "tier": t.as_str(), "works": false, "reason": e, "limits": t.limits() }),
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "bwrap": probe.bwrap, "supervisor": supervisor,
                "supervisor_build": cordon_sandbox::supervisor::BUILD,
                "tiers": tiers, "auto": auto.map(|t| t.as_str()),
                "agent": checked.as_ref().map(|c| &c.json),
            })
        );
    } else {
        match &probe.bwrap {
            Some(p) => println!("bubblewrap: {}", p.display()),
            None => println!("bubblewrap: not installed (apt-get install bubblewrap)"),
        }
        println!("supervisor: {supervisor_shown}");
        for (tier, result) in &report {
            match result {
                Ok(c) => {
                    println!(
                        "{:<11} yes: landlock {}; seccomp {}; rlimits {}; capabilities {}",
                        tier.as_str(),
                        c.landlock,
                        yes(c.seccomp),
                        yes(c.rlimits),
                        match (c.capabilities_dropped, c.securebits_locked) {
                            (true, true) => "all dropped, securebits locked",
                            (true, false) =>
                                "none held (no_new_privs; an unprivileged start cannot lock securebits)",
                            _ => "NOT dropped",
                        }
                    );
                    match &c.cgroups {
                        Some(cg) => println!("{:<11} whole-sandbox limits: {cg}", ""),
                        None => println!(
                            "{:<11} no cgroup limits: a fork bomb is only slowed by rlimits",
                            ""
                        ),
                    }
                }
                Err(e) => println!("{:<11} no: {e}", tier.as_str()),
            }
            let limits = match result {
                Ok(c) => tier.gaps(c),
                Err(_) => tier.limits().to_vec(),
            };
            for limit in limits {
                println!("{:<11} limit: {limit}", "");
            }
        }
        match auto {
            Some(t) => println!("auto picks: {}", t.as_str()),
            None => println!(
                "auto picks: nothing: cordon will refuse to run commands (install bubblewrap, or use a kernel with Landlock)"
            ),
        }
        if let Some(c) = &checked {
            for line in &c.lines {
                println!("{line}");
            }
        }
    }
    Ok(if auto.is_none() {
        ExitCode::from(SANDBOX_FAILED)
    } else if checked.is_some_and(|c| !c.ok) {
        ExitCode::from(crate::exit::BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Starts a sandbox of `tier` and runs `true` in it.
async fn try_tier(
    tier: Tier,
    workspace: &Path,
) -> Result<(cordon_sandbox::hardening::Applied, PathBuf), String> {
    let mut config = SandboxConfig::new(workspace, supervisor().map_err(|e| e.to_string())?);
    config.tier = TierChoice::Exactly(tier);
    let sandbox = LocalSandbox::create(config)
        .await
        .map_err(|e| e.to_string())?;
    let out = sandbox
        .run(&["/bin/true".to_string()], ".", Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    if out.code != Some(0) {
        return Err(format!(
            "a command could not run: {}",
            out.stderr_text().trim()
        ));
    }
    Ok((
        sandbox.confinement().clone(),
        sandbox.supervisor().to_path_buf(),
    ))
}
