//! The local provider: bubblewrap (or Landlock alone) around the supervisor, on this host.
//!
//! - [`layout`]: the bubblewrap arguments and each tier's Landlock paths, built by pure
//!   functions.
//! - [`LocalSandbox::create`]: checks what the sandbox may reach, measures the host, builds
//!   the command from the layout and starts the supervisor, which confines itself.
//! - [`LocalProvider`]: the [`SandboxProvider`](crate::SandboxProvider) over all that.

pub mod layout;
mod provider;
mod reach;
mod state;

pub use layout::INNER_WORKSPACE;
pub use provider::LocalProvider;
pub use reach::grant_refusal;

use crate::cgroup::SandboxCgroups;
use crate::client::Client;
use crate::error::SandboxError;
use crate::hardening::{Applied, Hardening, Limits};
use crate::protocol::{self, PROTOCOL_VERSION, Reply, Request};
use crate::provider::Isolation;
use crate::tier::{self, Tier, TierChoice};
use layout::{HostLayout, INNER_SUPERVISOR, MountPlan};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// Why a sandbox did not start: its supervisor is another build than this harness (it said
/// which), or anything else.
enum StartError {
    Stale(String),
    Other(SandboxError),
}

impl From<SandboxError> for StartError {
    fn from(e: SandboxError) -> Self {
        StartError::Other(e)
    }
}

impl StartError {
    fn into_error(self, supervisor: &SupervisorCommand) -> SandboxError {
        match self {
            StartError::Other(e) => e,
            StartError::Stale(found) => SandboxError::Start(format!(
                "the supervisor {} is another build ({}) than this cordon ({}): build or install cordon and cordon-supervisor together",
                supervisor.program.display(),
                if found.is_empty() {
                    "an older one"
                } else {
                    &found
                },
                crate::supervisor::BUILD
            )),
        }
    }
}

/// The oldest Landlock ABI the landlock tier accepts.
const MIN_LANDLOCK_ABI: u32 = 6;

/// How to start the supervisor: a program and its arguments (the `cordon` binary with
/// `__supervisor`, or the small `cordon-supervisor` binary beside it).
#[derive(Debug, Clone)]
pub struct SupervisorCommand {
    /// The executable, on the host.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// What to start instead when this one turns out to be another build than the harness
    /// (a `cordon-supervisor` left from an older install).
    pub fallback: Option<Box<SupervisorCommand>>,
}

/// The small supervisor binary's name, looked for beside the harness's own.
pub const SUPERVISOR_BINARY: &str = "cordon-supervisor";

impl SupervisorCommand {
    /// The supervisor a `cordon` install comes with: the small [`SUPERVISOR_BINARY`] beside
    /// this program (it starts in a fraction of the time a large harness binary takes, and
    /// every command's shim is started from it too), with this program itself as the
    /// fallback; this program alone when there is no such file.
    pub fn installed() -> std::io::Result<Self> {
        let this = Self::this_program()?;
        let sibling = this.program.with_file_name(SUPERVISOR_BINARY);
        let usable = std::fs::metadata(&sibling).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if !usable || sibling == this.program {
            return Ok(this);
        }
        Ok(SupervisorCommand {
            program: sibling,
            args: Vec::new(),
            fallback: Some(Box::new(this)),
        })
    }

    /// This very program, re-executed with [`crate::supervisor::SUPERVISOR_ARG`]: its `main`
    /// must call [`crate::supervisor::main_if_asked`] first thing.
    pub fn this_program() -> std::io::Result<Self> {
        Ok(SupervisorCommand {
            program: std::env::current_exe()?,
            args: vec![crate::supervisor::SUPERVISOR_ARG.to_string()],
            fallback: None,
        })
    }
}

/// What a sandbox is made of.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The host directory the sandbox works in.
    pub workspace: PathBuf,
    /// Mount the workspace read-only.
    pub read_only: bool,
    /// Variables added to the fixed environment (PATH, HOME, LANG, TERM).
    pub env: Vec<(String, String)>,
    /// Which isolation tier.
    pub tier: TierChoice,
    /// How to start the supervisor.
    pub supervisor: SupervisorCommand,
    /// Resource limits.
    pub limits: Limits,
    /// Where the workspace appears inside (namespaces tier; the landlock tier sees the host
    /// path).
    pub root: String,
    /// Host paths made visible at the same path inside, and whether writable.
    pub grants: Vec<(PathBuf, bool)>,
    /// Workspace-relative paths mounted read-only over a writable workspace (namespaces tier;
    /// Landlock cannot take back a right it granted on the workspace).
    pub read_only_paths: Vec<String>,
    /// Workspace-relative paths covered by an empty stand-in no one may open (namespaces
    /// tier; Landlock cannot take back a right it granted on the workspace).
    pub hidden_paths: Vec<String>,
    /// Host paths the sandbox must never reach (cordon's run store, snapshots, state): no
    /// grant may cover them or lie inside them, and the workspace may not hold them.
    pub protected: Vec<PathBuf>,
    /// The run's egress proxy, the sandbox's one way out; `None`: no network at all.
    pub egress: Option<crate::Egress>,
}

impl SandboxConfig {
    /// A sandbox over `workspace` with the best tier and default limits.
    pub fn new(workspace: &Path, supervisor: SupervisorCommand) -> Self {
        SandboxConfig {
            workspace: workspace.to_path_buf(),
            read_only: false,
            env: Vec::new(),
            tier: TierChoice::Auto,
            supervisor,
            limits: Limits::default(),
            root: INNER_WORKSPACE.to_string(),
            grants: Vec::new(),
            read_only_paths: Vec::new(),
            hidden_paths: Vec::new(),
            protected: Vec::new(),
            egress: None,
        }
    }
}

/// A running sandbox on this host. Dropping it kills everything inside.
pub struct LocalSandbox {
    client: Client,
    child: tokio::sync::Mutex<Option<Child>>,
    tier: Tier,
    confinement: Applied,
    isolation: Isolation,
    cgroups: std::sync::Mutex<Option<SandboxCgroups>>,
    supervisor: PathBuf,
    _state: tempfile::TempDir,
}

/// The command that starts a sandbox's supervisor, what it is told to confine, and where the
/// workspace is inside.
struct Launch {
    command: Command,
    hardening: Option<Hardening>,
    inner_workspace: String,
}

impl LocalSandbox {
    /// Builds the sandbox and starts its supervisor, which confines itself before answering.
    pub async fn create(config: SandboxConfig) -> Result<LocalSandbox, SandboxError> {
        let workspace =
            std::fs::canonicalize(&config.workspace).map_err(|e| SandboxError::Workspace {
                path: config.workspace.clone(),
                message: e.to_string(),
            })?;
        if !workspace.is_dir() {
            return Err(SandboxError::Workspace {
                path: workspace,
                message: "not a directory".into(),
            });
        }
        let grants = reach::check_reach(&config, &workspace)?;
        let config = SandboxConfig { grants, ..config };
        match Self::start_any_tier(&config, &workspace).await {
            Err(StartError::Stale(found)) => match &config.supervisor.fallback {
                Some(fallback) => {
                    // Quietly: `cargo run` rebuilds only `cordon`, leaving an older
                    // `cordon-supervisor` beside it; `cordon doctor` says which is used.
                    tracing::debug!(
                        supervisor = %config.supervisor.program.display(),
                        %found,
                        expected = crate::supervisor::BUILD,
                        "the supervisor beside cordon is from another build; using cordon itself"
                    );
                    let config = SandboxConfig {
                        supervisor: (**fallback).clone(),
                        ..config
                    };
                    Self::start_any_tier(&config, &workspace)
                        .await
                        .map_err(|e| e.into_error(&config.supervisor))
                }
                None => Err(StartError::Stale(found).into_error(&config.supervisor)),
            },
            other => other.map_err(|e| e.into_error(&config.supervisor)),
        }
    }

    /// Starts a sandbox of the tier `config` asks for (for `auto`, namespaces if they work).
    async fn start_any_tier(
        config: &SandboxConfig,
        workspace: &Path,
    ) -> Result<LocalSandbox, StartError> {
        match config.tier {
            TierChoice::Exactly(t) => Self::start(config, workspace, t).await,
            TierChoice::Auto if tier::namespaces_known_unavailable() => {
                Self::start(config, workspace, Tier::Landlock).await
            }
            // Namespaces first, without probing: the probe costs a bubblewrap run. Only when
            // they fail does the probe say whether this host lacks them (then the landlock
            // tier) or something else went wrong (then that error).
            TierChoice::Auto => match Self::start(config, workspace, Tier::Namespaces).await {
                Ok(sb) => Ok(sb),
                Err(StartError::Stale(found)) => Err(StartError::Stale(found)),
                Err(e) => match tier::probe_namespaces().await {
                    Ok(()) => Err(e),
                    Err(why) => {
                        tracing::warn!(%why, "namespaces tier unavailable; using the landlock tier");
                        Self::start(config, workspace, Tier::Landlock).await
                    }
                },
            },
        }
    }

    /// Starts a sandbox of exactly `tier`.
    async fn start(
        config: &SandboxConfig,
        workspace: &Path,
        tier: Tier,
    ) -> Result<LocalSandbox, StartError> {
        // A cordon that was killed could not remove its sandboxes' state: clear those once a
        // process (as its cgroups are), off the runtime's threads.
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            std::thread::spawn(|| state::sweep_state_dirs(&std::env::temp_dir()));
        });
        let state = tempfile::Builder::new()
            .prefix(&format!("{}{}-", state::STATE_PREFIX, std::process::id()))
            .tempdir()
            .map_err(|e| {
                SandboxError::Start(format!("cannot make the sandbox's state directory: {e}"))
            })?;
        let Launch {
            mut command,
            hardening,
            inner_workspace,
        } = match tier {
            Tier::Namespaces => namespaces_launch(config, workspace, state.path())?,
            Tier::Landlock => {
                if !config.read_only_paths.is_empty() || !config.hidden_paths.is_empty() {
                    tracing::warn!(
                        read_only = ?config.read_only_paths,
                        hidden = ?config.hidden_paths,
                        "the landlock tier cannot keep entries read-only or unreadable inside a writable workspace: commands can reach them"
                    );
                }
                landlock_launch(config, workspace, state.path())?
            }
            Tier::Unconfined => {
                tracing::warn!(
                    "running an UNCONFINED sandbox, as asked: commands have this user's full access"
                );
                let mut c = Command::new(&config.supervisor.program);
                c.args(&config.supervisor.args)
                    .env_clear()
                    .current_dir(workspace);
                Launch {
                    command: c,
                    hardening: None,
                    inner_workspace: workspace.display().to_string(),
                }
            }
        };
        let name = state.path().file_name().map_or_else(
            || "sandbox".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let cgroups = match tier {
            Tier::Unconfined => None,
            _ => SandboxCgroups::create(&name, config.limits.max_processes, config.limits.memory),
        };
        // Its own process group: a terminal's Ctrl-C reaches cordon, which decides, and not
        // the sandbox directly.
        command.process_group(0);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Stopping lets the supervisor end what runs inside first (see `stop`, `Drop`).
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| SandboxError::Start(format!("cannot start {tier:?} sandbox: {e}")))?;
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Start(
                "the supervisor's standard streams are missing".into(),
            )
            .into());
        };
        let program = match tier {
            Tier::Namespaces => INNER_SUPERVISOR.to_string(),
            Tier::Landlock | Tier::Unconfined => config.supervisor.program.display().to_string(),
        };
        // The sandbox's processes move into its cgroups while the supervisor confines
        // itself: it starts nothing until asked, and nothing is asked before both are done.
        let admission = match (cgroups, child.id()) {
            (Some(cg), Some(leader)) => {
                // Below bubblewrap, the supervisor is found by name; in the landlock tier
                // the leader is the supervisor.
                let below = (tier == Tier::Namespaces).then_some(INNER_SUPERVISOR);
                Some(tokio::task::spawn_blocking(move || {
                    admit_to_cgroups(&cg, leader, below).map(|()| cg)
                }))
            }
            // No cgroups here, or the sandbox is gone already (its hello says why).
            _ => None,
        };
        let shim: Vec<String> = std::iter::once(program)
            .chain(config.supervisor.args.iter().cloned())
            .chain(std::iter::once(crate::shim::SHIM_ARG.to_string()))
            .collect();
        // Below bubblewrap, the supervisor opens the way to the proxy's socket.
        let egress = config
            .egress
            .as_ref()
            .filter(|_| tier == Tier::Namespaces)
            .map(|_| {
                (
                    crate::egress::INNER_PORT,
                    crate::egress::INNER_SOCKET.to_string(),
                )
            });
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            hardening,
            workspace: inner_workspace.clone(),
            disk_reserve: config.limits.disk_reserve,
            shim: Some(shim),
            egress,
        };
        let started = async {
            protocol::write_frame(&mut stdin, &hello).await?;
            protocol::read_frame::<_, Reply>(&mut stdout).await
        };
        let first = tokio::time::timeout(Duration::from_secs(20), started).await;
        let mut confinement = match first {
            Ok(Ok(Some(Reply::Hello {
                version,
                confinement,
                build,
            }))) if version == PROTOCOL_VERSION => {
                if build != crate::supervisor::BUILD {
                    let _ = child.kill().await;
                    return Err(StartError::Stale(build));
                }
                confinement
            }
            other => {
                let mut why = String::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut why))
                        .await;
                let what = match other {
                    Err(_) => "no answer within 20 s".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(None)) => "it exited".to_string(),
                    Ok(Ok(Some(r))) => format!("unexpected first reply {r:?}"),
                };
                let _ = child.kill().await;
                return Err(SandboxError::Start(format!("{what}: {}", why.trim())).into());
            }
        };
        let admitted = match admission {
            None => Ok(None),
            Some(task) => match task.await {
                Ok(moved) => moved.map(Some),
                Err(e) => Err(SandboxError::Start(e.to_string())),
            },
        };
        let cgroups = match admitted {
            Ok(cgroups) => cgroups,
            Err(e) => {
                let _ = child.kill().await;
                return Err(e.into());
            }
        };
        // Without namespaces, Landlock carries the tier: it needs TCP rules (ABI 4) and
        // signal scoping (ABI 6) to keep its promises.
        if tier == Tier::Landlock && confinement.landlock_abi < MIN_LANDLOCK_ABI {
            return Err(SandboxError::NoTier(format!(
                "the landlock tier needs Landlock ABI {MIN_LANDLOCK_ABI} or newer, and this kernel has {} ({})",
                confinement.landlock_abi, confinement.landlock
            ))
            .into());
        }
        confinement.cgroups = cgroups.as_ref().map(|c| c.describe());
        // The supervisor's stderr is for diagnostics only.
        tokio::spawn(async move {
            let mut buf = String::new();
            let _ = stderr.read_to_string(&mut buf).await;
            if !buf.trim().is_empty() {
                tracing::debug!(stderr = %buf.trim(), "sandbox supervisor said");
            }
        });
        let mut env = vec![
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
            ("HOME".to_string(), inner_workspace.clone()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TERM".to_string(), "xterm-256color".to_string()),
        ];
        if tier == Tier::Landlock {
            env.push((
                "TMPDIR".to_string(),
                state.path().join("tmp").display().to_string(),
            ));
        }
        if let Some(egress) = &config.egress {
            let user = egress
                .token
                .as_ref()
                .map_or_else(String::new, |t| format!("cordon:{t}@"));
            let url = match tier {
                Tier::Namespaces => {
                    format!("http://{user}127.0.0.1:{}", crate::egress::INNER_PORT)
                }
                Tier::Landlock | Tier::Unconfined => format!("http://{user}{}", egress.tcp),
            };
            env.extend(crate::egress::proxy_env(&url));
            if let Some(bundle) = &egress.ca_bundle {
                let inside = match tier {
                    Tier::Namespaces => crate::egress::INNER_CA_BUNDLE.to_string(),
                    Tier::Landlock | Tier::Unconfined => bundle.display().to_string(),
                };
                env.extend(crate::egress::ca_env(&inside));
            }
            env.extend(egress.env.iter().cloned());
        }
        env.extend(config.env.iter().cloned());
        let writable_grants = config.grants.iter().any(|(_, writable)| *writable);
        let isolation = provider::isolation(
            tier,
            &confinement,
            writable_grants,
            config.egress.is_some(),
            config.limits,
        );
        Ok(LocalSandbox {
            client: Client::start(stdin, stdout, env, inner_workspace),
            child: tokio::sync::Mutex::new(Some(child)),
            tier,
            confinement,
            isolation,
            cgroups: std::sync::Mutex::new(cgroups),
            supervisor: config.supervisor.program.clone(),
            _state: state,
        })
    }

    /// The supervisor program that answered (after a fallback, the fallback).
    pub fn supervisor(&self) -> &Path {
        &self.supervisor
    }

    /// The tier in force.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// What this sandbox guarantees, as every provider reports it.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// What confinement the supervisor reported.
    pub fn confinement(&self) -> &Applied {
        &self.confinement
    }

    /// The client that talks to this sandbox's supervisor.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stops the sandbox and everything in it: the supervisor is told (it ends every process
    /// in the sandbox, whatever session or group it moved to, and exits), killed if it has
    /// not gone within 2 s, and the sandbox's cgroups are emptied and removed (off
    /// the runtime's threads).
    pub async fn stop(&self) {
        self.client.close().await;
        if let Some(mut child) = self.child.lock().await.take()
            && tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
        {
            tracing::warn!(
                "the sandbox's supervisor did not stop within {STOP_GRACE:?}; killed it"
            );
            let _ = child.kill().await;
        }
        let cgroups = self.cgroups.lock().ok().and_then(|mut c| c.take());
        if let Some(cg) = cgroups {
            let _ = tokio::task::spawn_blocking(move || cg.remove()).await;
        }
    }
}

/// How long a supervisor told to stop has to end what runs inside and exit.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Waits, blocking, until process `pid` has exited (gone, or a zombie), for at most `limit`;
/// whether it did.
fn wait_exited(pid: u32, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    loop {
        if !is_running(pid) {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The namespaces tier: bubblewrap around the supervisor, as [`layout::bwrap_args`] lays out.
fn namespaces_launch(
    config: &SandboxConfig,
    workspace: &Path,
    state: &Path,
) -> Result<Launch, SandboxError> {
    let bwrap = tier::find_bwrap().ok_or_else(|| {
        SandboxError::NoTier("bubblewrap is not installed (apt-get install bubblewrap)".into())
    })?;
    let host = host_layout();
    let (passwd, group) = layout::identity_files(&config.root);
    layout::stage_etc(Path::new("/etc"), state, &host, (&passwd, &group))
        .map_err(|e| SandboxError::Start(format!("cannot make the sandbox's /etc: {e}")))?;
    // Only read-only entries that resolve inside the workspace: a link must not pick the
    // mount point.
    let mut read_only_entries = Vec::new();
    for rel in &config.read_only_paths {
        match std::fs::canonicalize(workspace.join(rel)) {
            Ok(real) if real.starts_with(workspace) => read_only_entries.push((real, rel.clone())),
            _ => {
                return Err(SandboxError::Workspace {
                    path: workspace.join(rel),
                    message: "a read-only entry is missing or leads out of the workspace".into(),
                });
            }
        }
    }
    // Hidden entries: each covered by an empty file or directory no one may open, at its
    // real place in the workspace (a link must not pick the mount point either).
    let mut hidden_entries = Vec::new();
    if !config.hidden_paths.is_empty() {
        let stand_ins = layout::stage_stand_ins(state).map_err(|e| {
            SandboxError::Start(format!("cannot make the sandbox's stand-ins: {e}"))
        })?;
        for rel in &config.hidden_paths {
            let real = std::fs::canonicalize(workspace.join(rel))
                .ok()
                .filter(|r| r.starts_with(workspace) && r != workspace);
            let Some(real) = real else {
                return Err(SandboxError::Workspace {
                    path: workspace.join(rel),
                    message: "an entry to hide is missing or leads out of the workspace".into(),
                });
            };
            let inside = real
                .strip_prefix(workspace)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let stand_in = if real.is_dir() {
                stand_ins.1.clone()
            } else {
                stand_ins.0.clone()
            };
            hidden_entries.push((stand_in, inside));
        }
    }
    let plan = MountPlan {
        workspace,
        root: &config.root,
        read_only: config.read_only,
        read_only_entries: &read_only_entries,
        hidden_entries: &hidden_entries,
        grants: &config.grants,
        state,
        supervisor: &config.supervisor.program,
        supervisor_args: &config.supervisor.args,
        limits: &config.limits,
        egress_socket: config.egress.as_ref().map(|e| e.socket.as_path()),
        ca_bundle: config.egress.as_ref().and_then(|e| e.ca_bundle.as_deref()),
    };
    let mut command = Command::new(bwrap);
    command.args(layout::bwrap_args(&host, &plan)).env_clear();
    Ok(Launch {
        command,
        hardening: Some(layout::namespaces_hardening(
            &config.root,
            config.read_only,
            &config.grants,
            config.limits,
        )),
        inner_workspace: config.root.clone(),
    })
}

/// This host's layout, measured once a process.
fn host_layout() -> HostLayout {
    static LAYOUT: std::sync::OnceLock<HostLayout> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(HostLayout::measure).clone()
}

/// The landlock tier: the supervisor alone, confining itself to the paths
/// [`layout::landlock_hardening`] lists.
fn landlock_launch(
    config: &SandboxConfig,
    workspace: &Path,
    state: &Path,
) -> Result<Launch, SandboxError> {
    let tmp = state.join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| SandboxError::Start(format!("cannot make the sandbox's tmp: {e}")))?;
    let mut command = Command::new(&config.supervisor.program);
    command
        .args(&config.supervisor.args)
        .env_clear()
        .current_dir(workspace);
    Ok(Launch {
        command,
        hardening: Some(layout::landlock_hardening(
            workspace,
            config.read_only,
            &tmp,
            &config.supervisor.program,
            &config.grants,
            config.egress.as_ref(),
            config.limits,
        )),
        inner_workspace: workspace.display().to_string(),
    })
}

/// Moves a sandbox that has just started into its cgroups before it is told to begin:
/// `leader` (the process cordon started) and every process below it, until the supervisor
/// is among them. The supervisor waits for its hello and bubblewrap starts nothing else, so
/// nothing in the sandbox can fork outside the limits; and the kernel's wait for the first
/// move (see [`SandboxCgroups::admit`]) overlaps bubblewrap building the sandbox instead of
/// coming before it. Returns when the supervisor is in, or when the leader has ended (the
/// hello then fails and says why).
fn admit_to_cgroups(
    cgroups: &SandboxCgroups,
    leader: u32,
    supervisor: Option<&str>,
) -> Result<(), SandboxError> {
    let cannot = |e: std::io::Error| {
        SandboxError::Start(format!("cannot move the sandbox into its cgroups: {e}"))
    };
    cgroups.admit(leader).map_err(cannot)?;
    let Some(supervisor) = supervisor else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let mut admitted = vec![leader];
    loop {
        if !is_running(leader) {
            return Ok(());
        }
        let mut found = false;
        let mut pending = vec![leader];
        while let Some(pid) = pending.pop() {
            if !admitted.contains(&pid) {
                // Gone already: nothing to move.
                if let Err(e) = cgroups.admit(pid)
                    && is_running(pid)
                {
                    return Err(cannot(e));
                }
                admitted.push(pid);
            }
            found |= argv0(pid).as_deref() == Some(supervisor);
            pending.extend(children(pid));
        }
        if found {
            return Ok(());
        }
        if started.elapsed() > ADMIT_LIMIT {
            return Err(SandboxError::Start(format!(
                "the supervisor did not start within {ADMIT_LIMIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// How long a sandbox may take to reach its supervisor.
const ADMIT_LIMIT: Duration = Duration::from_secs(20);

/// The children of process `pid`: from its threads' `children` lists, or, on a kernel
/// built without them, from every process's parent.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(list) => all.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return children_by_parent(pid),
            Err(_) => {}
        }
    }
    all
}

/// The processes whose parent is `pid`, found by reading every process's status.
fn children_by_parent(pid: u32) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // The parent is the second field after the command name's parenthesis.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// The program process `pid` runs, as its first argument names it.
fn argv0(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|b| *b == 0).next()?;
    String::from_utf8(first.to_vec()).ok()
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
    }
}

impl Drop for LocalSandbox {
    fn drop(&mut self) {
        // As `stop`, without waiting here: the supervisor is told, and a thread of its own
        // kills it if it does not go, then empties and removes the cgroups.
        self.client.close_now();
        let child = self.child.get_mut().take();
        let cgroups = self.cgroups.get_mut().ok().and_then(|c| c.take());
        if child.is_none() && cgroups.is_none() {
            return;
        }
        std::thread::spawn(move || {
            if let Some(child) = child
                && let Some(pid) = child.id()
                && !wait_exited(pid, STOP_GRACE)
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if let Some(cg) = cgroups {
                cg.remove();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_found_below_its_parent_both_ways() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let found = children(me);
        let by_parent = children_by_parent(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(by_parent.contains(&child.id()), "{by_parent:?}");
        assert!(argv0(me).is_some());
        assert!(!is_running(child.id()));
    }
}
