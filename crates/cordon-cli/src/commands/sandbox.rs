//! `cordon sandbox exec` and `cordon doctor`.

use crate::cli::{SandboxArgs, TierArg};
use crate::exit::Failure;
use cordon_sandbox::{
    LocalSandbox, ProcessEvent, SandboxConfig, Stream, SupervisorCommand, Tier, TierChoice,
};
use std::io::Write;
use std::path::Path;
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

/// Builds the sandbox the arguments describe.
pub async fn create(args: &SandboxArgs) -> anyhow::Result<LocalSandbox> {
    let workspace = match &args.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir()?,
    };
    let mut config = SandboxConfig::new(&workspace, supervisor()?);
    config.read_only = args.read_only;
    config.tier = match args.sandbox {
        TierArg::Auto => TierChoice::Auto,
        TierArg::Namespaces => TierChoice::Exactly(Tier::Namespaces),
        TierArg::Landlock => TierChoice::Exactly(Tier::Landlock),
        TierArg::Unconfined => {
            eprintln!(
                "warning: --sandbox unconfined: commands run with all of this user's access to files, network and processes"
            );
            TierChoice::Exactly(Tier::Unconfined)
        }
    };
    LocalSandbox::create(config).await.map_err(|e| {
        anyhow::Error::new(Failure {
            code: SANDBOX_FAILED,
            message: e.to_string(),
            hint: Some(
                "`cordon doctor` shows which isolation tiers work here and what is missing".into(),
            ),
        })
    })
}

/// `cordon sandbox exec`: one command in a fresh sandbox, output streamed, its status returned.
pub async fn exec(
    args: &SandboxArgs,
    timeout: u64,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let sandbox = create(args).await?;
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
                        "cordon: the command ran past --timeout {timeout}s; its process group was killed"
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
                        "{:<11} yes: landlock {}; seccomp {}; rlimits {}",
                        tier.as_str(),
                        c.landlock,
                        yes(c.seccomp),
                        yes(c.rlimits)
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
