//! `cordon sandbox exec` and `cordon doctor`.

use crate::cli::{SandboxArgs, TierArg};
use crate::exit::Failure;
use cordon_core::{EnvVar, GrantSpec, SandboxSpec};
use cordon_sandbox::Sandbox as _;
use cordon_sandbox::{
    LocalSandbox, ProcessEvent, SandboxConfig, Stream, SupervisorCommand, Tier, TierChoice,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The hidden first argument that makes `cordon` the in-sandbox supervisor.
pub const SUPERVISOR_ARG: &str = "__supervisor";

/// Exit status when the sandbox itself could not start.
const SANDBOX_FAILED: u8 = 125;
/// Exit status when the timeout killed the command (as `timeout(1)`).
const TIMED_OUT: u8 = 124;

/// The supervisor: this very binary, re-executed in its hidden mode.
pub fn supervisor() -> anyhow::Result<SupervisorCommand> {
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the cordon binary to run as supervisor: {e}"))?;
    Ok(SupervisorCommand {
        program,
        args: vec![SUPERVISOR_ARG.to_string()],
    })
}

/// A sandbox ready for work, and the manifest it was built from, if any.
pub struct Prepared {
    /// The sandbox.
    pub sandbox: LocalSandbox,
    /// The workspace's directory on this host (absolute).
    pub workspace: std::path::PathBuf,
    /// What the sandbox is made of, as recorded in the run so a resume rebuilds it.
    pub spec: SandboxSpec,
    /// The manifest's digest and the receipts of what it put in the workspace.
    pub materialized: Option<(String, Vec<cordon_manifest::Receipt>)>,
    /// Secret values handed to the sandbox (`from_host` environment), by name: redacted from
    /// everything the run records or prints.
    pub secrets: Vec<(String, String)>,
}

/// Loads a manifest, turning its problems into one bad-input error.
pub fn load_manifest(path: &Path) -> anyhow::Result<cordon_manifest::Manifest> {
    cordon_manifest::load(path).map_err(|e| {
        anyhow::Error::new(Failure {
            code: crate::exit::BAD_INPUT,
            message: format!("the manifest is not valid:\n{e}"),
            hint: None,
        })
    })
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

/// Builds the sandbox the arguments describe; with a manifest, in a fresh workspace that is
/// then materialized. `protected` are host paths the sandbox must never reach.
pub async fn create(args: &SandboxArgs, protected: &[PathBuf]) -> anyhow::Result<Prepared> {
    let manifest = args.manifest.as_deref().map(load_manifest).transpose()?;
    let workspace = match (&args.workspace, &manifest) {
        (Some(w), None) => w.clone(),
        (None, None) => std::env::current_dir()?,
        (Some(w), Some(_)) => {
            std::fs::create_dir_all(w)?;
            if std::fs::read_dir(w)?.next().is_some() {
                return Err(Failure::bad_input(
                    format!(
                        "--workspace {} is not empty, and a manifest builds a fresh workspace",
                        w.display()
                    ),
                    "give an empty or new directory, or leave --workspace out",
                ));
            }
            w.clone()
        }
        (None, Some(_)) => {
            let state = cordon_store::default_store_path()?;
            let dir = state
                .parent()
                .unwrap_or(Path::new("."))
                .join("workspaces")
                .join(cordon_core::RunId::new().to_string());
            std::fs::create_dir_all(&dir)?;
            eprintln!("workspace: {}", dir.display());
            dir
        }
    };
    let workspace = std::fs::canonicalize(&workspace).map_err(|e| {
        Failure::bad_input(
            format!("the workspace {}: {e}", workspace.display()),
            "give an existing directory with --workspace",
        )
    })?;
    if args.sandbox == TierArg::Unconfined {
        eprintln!(
            "warning: --sandbox unconfined: commands run with all of this user's access to files, network and processes"
        );
    }
    let mut spec = SandboxSpec {
        tier: tier_name(args.sandbox).to_string(),
        read_only: args.read_only && manifest.is_none(),
        root: cordon_sandbox::local::INNER_WORKSPACE.to_string(),
        ..SandboxSpec::default()
    };
    if let Some(m) = &manifest {
        spec.root = m.root.clone();
        spec.grants = m
            .grants
            .iter()
            .map(|g| GrantSpec {
                path: g.path.clone(),
                writable: g.mode == "rw",
            })
            .collect();
        spec.env = m
            .env
            .iter()
            .map(|(name, value)| match value {
                cordon_manifest::schema::EnvValue::Literal(v) => EnvVar {
                    name: name.clone(),
                    value: Some(v.clone()),
                    from_host: None,
                },
                cordon_manifest::schema::EnvValue::FromHost { from_host } => EnvVar {
                    name: name.clone(),
                    value: None,
                    from_host: Some(from_host.clone()),
                },
            })
            .collect();
        spec.ephemeral = m
            .entries
            .iter()
            .filter(|e| e.ephemeral)
            .map(|e| e.path.clone())
            .collect();
    }
    let read_only: Vec<String> = manifest
        .iter()
        .flat_map(|m| {
            m.entries
                .iter()
                .filter(|e| e.read_only)
                .map(|e| e.path.clone())
        })
        .collect();
    let (mut sandbox, secrets) = build(&spec, &workspace, protected).await?;
    let materialized = match &manifest {
        None => None,
        Some(m) => {
            let receipts = cordon_manifest::materialize(m, &sandbox)
                .await
                .map_err(|e| {
                    anyhow::Error::new(Failure {
                        code: crate::exit::RUN_FAILED,
                        message: format!("cannot build the workspace: {e}"),
                        hint: None,
                    })
                })?;
            Some((m.digest.clone(), receipts))
        }
    };
    if !read_only.is_empty() {
        // Read-only entries are mounted when a sandbox starts, and they exist only now: the
        // sandbox that built them steps aside for one that mounts them read-only.
        sandbox.stop().await;
        spec.read_only_paths = read_only;
        sandbox = build(&spec, &workspace, protected).await?.0;
    }
    Ok(Prepared {
        sandbox,
        workspace,
        spec,
        materialized,
        secrets,
    })
}

/// Starts a sandbox as `spec` describes, over `workspace`. Variables taken from the host are
/// read now (a resumed run reads them again); their values come back as secrets.
pub async fn build(
    spec: &SandboxSpec,
    workspace: &Path,
    protected: &[PathBuf],
) -> anyhow::Result<(LocalSandbox, Vec<(String, String)>)> {
    let mut config = SandboxConfig::new(workspace, supervisor()?);
    config.read_only = spec.read_only;
    config.tier = match spec.tier.as_str() {
        "auto" => TierChoice::Auto,
        "namespaces" => TierChoice::Exactly(Tier::Namespaces),
        "landlock" => TierChoice::Exactly(Tier::Landlock),
        "unconfined" => TierChoice::Exactly(Tier::Unconfined),
        other => {
            return Err(Failure::bad_input(
                format!("unknown sandbox tier '{other}'"),
                "tiers are auto, namespaces, landlock and unconfined",
            ));
        }
    };
    config.root = spec.root.clone();
    config.grants = spec
        .grants
        .iter()
        .map(|g| (PathBuf::from(&g.path), g.writable))
        .collect();
    config.read_only_paths = spec.read_only_paths.clone();
    config.protected = protected.to_vec();
    let mut secrets = Vec::new();
    for var in &spec.env {
        let value = match (&var.value, &var.from_host) {
            (Some(v), _) => v.clone(),
            (None, Some(host)) => {
                let v = std::env::var(host).map_err(|_| {
                    Failure::bad_input(
                        format!(
                            "the sandbox's variable {} comes from the host variable {host}, which is not set",
                            var.name
                        ),
                        format!("export {host}=... before running cordon"),
                    )
                })?;
                secrets.push((format!("env {}", var.name), v.clone()));
                v
            }
            (None, None) => String::new(),
        };
        config.env.push((var.name.clone(), value));
    }
    let sandbox = LocalSandbox::create(config).await.map_err(|e| {
        let (code, hint) = match &e {
            cordon_sandbox::SandboxError::Config(_) => (
                crate::exit::BAD_INPUT,
                "change the grant or the workspace; see the README's section on manifests",
            ),
            _ => (
                SANDBOX_FAILED,
                "`cordon doctor` shows which isolation tiers work here and what is missing",
            ),
        };
        anyhow::Error::new(Failure {
            code,
            message: e.to_string(),
            hint: Some(hint.into()),
        })
    })?;
    Ok((sandbox, secrets))
}

/// `cordon sandbox exec`: one command in a fresh sandbox, output streamed, its status returned.
pub async fn exec(
    args: &SandboxArgs,
    protected: &[PathBuf],
    timeout: u64,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let sandbox = create(args, protected).await?.sandbox;
    tracing::info!(tier = sandbox.tier().as_str(), confinement = ?sandbox.confinement(), "sandbox ready");
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
pub async fn doctor(json: bool) -> anyhow::Result<ExitCode> {
    let probe = cordon_sandbox::tier::probe();
    let scratch = tempfile::tempdir()?;
    let mut report = Vec::new();
    for tier in [Tier::Namespaces, Tier::Landlock] {
        let result = try_tier(tier, scratch.path()).await;
        report.push((tier, result));
    }
    let auto = report.iter().find(|(_, r)| r.is_ok()).map(|(t, _)| *t);
    if json {
        let tiers: Vec<serde_json::Value> = report
            .iter()
            .map(|(t, r)| match r {
                Ok(c) => serde_json::json!({ "tier": t.as_str(), "works": true, "confinement": c, "limits": t.limits() }),
                Err(e) => serde_json::json!({ "tier": t.as_str(), "works": false, "reason": e, "limits": t.limits() }),
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "bwrap": probe.bwrap, "tiers": tiers, "auto": auto.map(|t| t.as_str()) })
        );
    } else {
        match &probe.bwrap {
            Some(p) => println!("bubblewrap: {}", p.display()),
            None => println!("bubblewrap: not installed (apt-get install bubblewrap)"),
        }
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
                        Some(cg) => println!("{:<11}     whole-sandbox limits: {cg}", ""),
                        None => println!(
                            "{:<11}     no cgroup limits: a fork bomb is only slowed by rlimits",
                            ""
                        ),
                    }
                }
                Err(e) => println!("{:<11} no: {e}", tier.as_str()),
            }
            for limit in tier.limits() {
                println!("{:<11}     limit: {limit}", "");
            }
        }
        match auto {
            Some(t) => println!("auto picks: {}", t.as_str()),
            None => println!(
                "auto picks: nothing: cordon will refuse to run commands (install bubblewrap, or use a kernel with Landlock)"
            ),
        }
    }
    Ok(if auto.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(SANDBOX_FAILED)
    })
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Starts a sandbox of `tier` and runs `true` in it.
async fn try_tier(
    tier: Tier,
    workspace: &Path,
) -> Result<cordon_sandbox::hardening::Applied, String> {
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
    Ok(sandbox.confinement().clone())
}
