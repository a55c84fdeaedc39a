//! The local backend: bubblewrap (or Landlock alone) around the supervisor, on this host.

use crate::hardening::{Applied, Hardening, Limits};
use crate::protocol::{self, PROTOCOL_VERSION, Reply, Request, Stream};
use crate::tier::{self, Tier, TierChoice};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// The oldest Landlock ABI the landlock tier accepts.
const MIN_LANDLOCK_ABI: u32 = 6;
/// Where the workspace appears inside a namespaces-tier sandbox.
pub const INNER_WORKSPACE: &str = "/workspace";
/// Where the supervisor binary appears inside a namespaces-tier sandbox.
const INNER_SUPERVISOR: &str = "/.cordon/supervisor";
/// The unprivileged uid and gid inside a namespaces-tier sandbox.
const INNER_ID: &str = "1000";
/// Entries of /etc a sandbox sees; the rest of /etc (shadow, the host's configuration) it does not.
const ETC_ENTRIES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "localtime",
    "nsswitch.conf",
    "hosts",
    "mime.types",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "profile",
    "profile.d",
    "terminfo",
    "inputrc",
    "magic",
    "magic.mime",
    "protocols",
    "services",
    "python3",
    "python3.11",
];
/// Devices a Landlock-tier sandbox may use.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/ptmx",
    "/dev/pts",
];

/// How to start the supervisor: a program and its arguments (the `cordon` binary with
/// `__supervisor`, or the crate's own `cordon-supervisor`).
#[derive(Debug, Clone)]
pub struct SupervisorCommand {
    /// The executable, on the host.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
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
        }
    }
}

/// Why a sandbox could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No tier that isolates works here.
    #[error("no isolation tier works on this host: {0}")]
    NoTier(String),
    /// The supervisor did not start or confine itself.
    #[error("the sandbox did not start: {0}")]
    Start(String),
    /// The workspace is unusable.
    #[error("workspace {path}: {message}")]
    Workspace {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The channel to the supervisor broke.
    #[error("the sandbox's supervisor is gone: {0}")]
    Gone(String),
    /// A request was refused inside the sandbox.
    #[error("{0}")]
    Refused(String),
}

/// What happens to a process, in order: started, output, exited (or failed).
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    /// It started with this pid (inside the sandbox).
    Started(u32),
    /// Output.
    Output(Stream, Vec<u8>),
    /// It ended; all its output came before this.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if one killed it.
        signal: Option<i32>,
    },
    /// It could not start, or the sandbox broke.
    Failed(String),
}

struct Inner {
    stdin: tokio::sync::Mutex<ChildStdin>,
    procs: Mutex<HashMap<u64, UnboundedSender<ProcessEvent>>>,
    /// File requests waiting for their one reply.
    pending: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<Reply>>>,
    next_id: AtomicU64,
}

impl Inner {
    async fn send(&self, req: &Request) -> Result<(), SandboxError> {
        let mut stdin = self.stdin.lock().await;
        protocol::write_frame(&mut *stdin, req)
            .await
            .map_err(|e| SandboxError::Gone(e.to_string()))
    }
}

/// A running sandbox on this host. Dropping it kills everything inside.
pub struct LocalSandbox {
    inner: Arc<Inner>,
    child: Child,
    tier: Tier,
    confinement: Applied,
    inner_workspace: String,
    env: Vec<(String, String)>,
    cgroups: Option<crate::cgroup::SandboxCgroups>,
    _state: tempfile::TempDir,
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
        let tier = match config.tier {
            TierChoice::Exactly(t) => t,
            TierChoice::Auto => match tier::probe().namespaces {
                Ok(()) => Tier::Namespaces,
                Err(why) => {
                    tracing::warn!(%why, "namespaces tier unavailable; using the landlock tier");
                    Tier::Landlock
                }
            },
        };
        let state = tempfile::Builder::new()
            .prefix("cordon-sandbox-")
            .tempdir()
            .map_err(|e| {
                SandboxError::Start(format!("cannot make the sandbox's state directory: {e}"))
            })?;
        let (mut command, hardening, inner_workspace) = match tier {
            Tier::Namespaces => namespaces_command(&config, &workspace, state.path())?,
            Tier::Landlock => landlock_command(&config, &workspace, state.path())?,
            Tier::Unconfined => {
                tracing::warn!(
                    "running an UNCONFINED sandbox, as asked: commands have this user's full access"
                );
                let mut c = Command::new(&config.supervisor.program);
                c.args(&config.supervisor.args)
                    .env_clear()
                    .current_dir(&workspace);
                (c, None, workspace.display().to_string())
            }
        };
        let name = state.path().file_name().map_or_else(
            || "sandbox".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let cgroups = match tier {
            Tier::Unconfined => None,
            _ => crate::cgroup::SandboxCgroups::create(
                &name,
                config.limits.max_processes,
                config.limits.memory,
            ),
        };
        if let Some(cg) = &cgroups {
            command = join_cgroups_first(command, &cg.procs_files());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SandboxError::Start(format!("cannot start {tier:?} sandbox: {e}")))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| SandboxError::Start("no stdin".into()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| SandboxError::Start("no stdout".into()))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| SandboxError::Start("no stderr".into()))?;
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            hardening,
            workspace: inner_workspace.clone(),
            disk_reserve: config.limits.disk_reserve,
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
            }))) if version == PROTOCOL_VERSION => confinement,
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
                return Err(SandboxError::Start(format!("{what}: {}", why.trim())));
            }
        };
        // Without namespaces, Landlock carries the tier: it needs TCP rules (ABI 4) and
        // signal scoping (ABI 6) to keep its promises.
        if tier == Tier::Landlock && confinement.landlock_abi < MIN_LANDLOCK_ABI {
            return Err(SandboxError::NoTier(format!(
                "the landlock tier needs Landlock ABI {MIN_LANDLOCK_ABI} or newer, and this kernel has {} ({})",
                confinement.landlock_abi, confinement.landlock
            )));
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
        let inner = Arc::new(Inner {
            stdin: tokio::sync::Mutex::new(stdin),
            procs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(route_replies(stdout, inner.clone()));
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
        env.extend(config.env.iter().cloned());
        Ok(LocalSandbox {
            inner,
            child,
            tier,
            confinement,
            inner_workspace,
            env,
            cgroups,
            _state: state,
        })
    }

    /// The tier in force.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// What confinement the supervisor reported.
    pub fn confinement(&self) -> &Applied {
        &self.confinement
    }

    /// The workspace's path as commands see it.
    pub fn workspace(&self) -> &str {
        &self.inner_workspace
    }

    /// Starts a command. `cwd` is relative to the workspace (or absolute inside it); `env`
    /// adds to the sandbox's environment.
    pub async fn spawn(
        &self,
        argv: &[String],
        cwd: &str,
        env: &[(String, String)],
        tty: Option<(u16, u16)>,
    ) -> Result<Process, SandboxError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.inner.procs.lock().expect("procs lock").insert(id, tx);
        let mut full_env = self.env.clone();
        full_env.extend(env.iter().cloned());
        let req = Request::Exec {
            id,
            argv: argv.to_vec(),
            cwd: cwd.to_string(),
            env: full_env,
            tty,
        };
        if let Err(e) = self.inner.send(&req).await {
            self.inner.procs.lock().expect("procs lock").remove(&id);
            return Err(e);
        }
        Ok(Process {
            id,
            events: rx,
            inner: self.inner.clone(),
        })
    }

    /// Runs a command to its end (or `timeout`, when its whole process group is killed)
    /// and collects its output.
    pub async fn run(
        &self,
        argv: &[String],
        cwd: &str,
        timeout: Duration,
    ) -> Result<Output, SandboxError> {
        let p = self.spawn(argv, cwd, &[], None).await?;
        p.close_stdin().await?;
        p.collect(timeout).await
    }

    /// Sends a file request and waits for its reply.
    async fn file_request(&self, make: impl FnOnce(u64) -> Request) -> Result<Reply, SandboxError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("pending lock")
            .insert(id, tx);
        self.inner.send(&make(id)).await?;
        match rx.await {
            Ok(Reply::Error { message, .. }) => Err(SandboxError::Refused(message)),
            Ok(reply) => Ok(reply),
            Err(_) => Err(SandboxError::Gone(
                "the supervisor ended during a file request".into(),
            )),
        }
    }

    /// Reads a file in the workspace (workspace-relative path).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        match self
            .file_request(|id| Request::ReadFile {
                id,
                path: path.into(),
            })
            .await?
        {
            Reply::File { data, .. } => {
                protocol::decode(&data).map_err(|e| SandboxError::Gone(e.to_string()))
            }
            other => Err(SandboxError::Gone(format!("unexpected reply {other:?}"))),
        }
    }

    /// Writes a file in the workspace, creating its directories.
    pub async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
    ) -> Result<(), SandboxError> {
        let data = protocol::encode(data);
        self.file_request(|id| Request::WriteFile {
            id,
            path: path.into(),
            data,
            mode,
        })
        .await
        .map(|_| ())
    }

    /// Lists a directory in the workspace.
    pub async fn list_dir(&self, path: &str) -> Result<Vec<protocol::DirEntry>, SandboxError> {
        match self
            .file_request(|id| Request::ListDir {
                id,
                path: path.into(),
            })
            .await?
        {
            Reply::Entries { entries, .. } => Ok(entries),
            other => Err(SandboxError::Gone(format!("unexpected reply {other:?}"))),
        }
    }

    /// Removes a file, or a directory (with `recursive`, and everything in it).
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), SandboxError> {
        self.file_request(|id| Request::Remove {
            id,
            path: path.into(),
            recursive,
        })
        .await
        .map(|_| ())
    }

    /// The workspace as a tar archive, made inside the sandbox.
    pub async fn archive(&self) -> Result<Vec<u8>, SandboxError> {
        let argv: Vec<String> = ["tar", "-C", &self.inner_workspace, "-cf", "-", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = self.run(&argv, ".", Duration::from_secs(3600)).await?;
        if out.code != Some(0) {
            return Err(SandboxError::Refused(format!(
                "archive failed: {}",
                out.stderr_text().trim()
            )));
        }
        Ok(out.stdout)
    }

    /// Unpacks a tar archive into the workspace, inside the sandbox (so an archive with
    /// hostile paths can do no more than a command could).
    pub async fn restore(&self, tar: &[u8]) -> Result<(), SandboxError> {
        let argv: Vec<String> = [
            "tar",
            "-C",
            &self.inner_workspace,
            "--no-same-owner",
            "-xf",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = self.spawn(&argv, ".", &[], None).await?;
        for chunk in tar.chunks(1 << 20) {
            p.write(chunk).await?;
        }
        p.close_stdin().await?;
        let out = p.collect(Duration::from_secs(3600)).await?;
        if out.code != Some(0) {
            return Err(SandboxError::Refused(format!(
                "restore failed: {}",
                out.stderr_text().trim()
            )));
        }
        Ok(())
    }

    /// Stops the sandbox and everything in it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        drop(self.cgroups.take());
    }
}

/// A process in a sandbox.
pub struct Process {
    id: u64,
    events: UnboundedReceiver<ProcessEvent>,
    inner: Arc<Inner>,
}

impl Process {
    /// Takes the process's event stream, to read it elsewhere while this handle still
    /// writes, signals and kills (`next_event` and `collect` see nothing afterwards).
    pub fn take_events(&mut self) -> UnboundedReceiver<ProcessEvent> {
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        std::mem::replace(&mut self.events, empty)
    }
}

/// A finished command's output.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output (or the terminal's output).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if one ended it.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl Output {
    /// Standard output as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Process {
    /// The next thing that happened to the process; `None` once it has ended.
    pub async fn next_event(&mut self) -> Option<ProcessEvent> {
        self.events.recv().await
    }

    /// Writes to its standard input.
    pub async fn write(&self, data: &[u8]) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Write {
                id: self.id,
                data: protocol::encode(data),
            })
            .await
    }

    /// Closes its standard input.
    pub async fn close_stdin(&self) -> Result<(), SandboxError> {
        self.inner.send(&Request::CloseStdin { id: self.id }).await
    }

    /// Resizes its terminal (PTY sessions only).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Resize {
                id: self.id,
                rows,
                cols,
            })
            .await
    }

    /// Kills its whole process group.
    pub async fn kill(&self) -> Result<(), SandboxError> {
        self.inner
            .send(&Request::Signal {
                id: self.id,
                signal: libc::SIGKILL,
            })
            .await
    }

    /// Collects everything until it ends, killing its process group at `timeout`.
    pub async fn collect(mut self, timeout: Duration) -> Result<Output, SandboxError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Output::default();
        loop {
            let event = match tokio::time::timeout_at(deadline, self.next_event()).await {
                Ok(e) => e,
                Err(_) => {
                    out.timed_out = true;
                    self.kill().await?;
                    // Keep reading: the kill brings the exit and the last output.
                    match tokio::time::timeout(Duration::from_secs(5), self.next_event()).await {
                        Ok(e) => e,
                        Err(_) => {
                            return Err(SandboxError::Gone(
                                "the process did not die after SIGKILL".into(),
                            ));
                        }
                    }
                }
            };
            match event {
                Some(ProcessEvent::Started(_)) => {}
                Some(ProcessEvent::Output(Stream::Stderr, data)) => out.stderr.extend(data),
                Some(ProcessEvent::Output(_, data)) => out.stdout.extend(data),
                Some(ProcessEvent::Exited { code, signal }) => {
                    out.code = code;
                    out.signal = signal;
                    out.duration = started.elapsed();
                    return Ok(out);
                }
                Some(ProcessEvent::Failed(why)) => return Err(SandboxError::Refused(why)),
                None => return Err(SandboxError::Gone("the process's events stopped".into())),
            }
        }
    }
}

/// Reads the supervisor's replies and hands each to its process.
async fn route_replies(mut stdout: tokio::process::ChildStdout, inner: Arc<Inner>) {
    let why = loop {
        let reply: Reply = match protocol::read_frame(&mut stdout).await {
            Ok(Some(r)) => r,
            Ok(None) => break "the supervisor exited".to_string(),
            Err(e) => break e.to_string(),
        };
        let waiting = match &reply {
            Reply::File { id, .. }
            | Reply::Entries { id, .. }
            | Reply::Done { id }
            | Reply::Error { id: Some(id), .. } => {
                inner.pending.lock().expect("pending lock").remove(id)
            }
            _ => None,
        };
        if let Some(tx) = waiting {
            let _ = tx.send(reply);
            continue;
        }
        let (id, event, last) = match reply {
            Reply::Started { id, pid } => (id, ProcessEvent::Started(pid), false),
            Reply::Output { id, stream, data } => match protocol::decode(&data) {
                Ok(bytes) => (id, ProcessEvent::Output(stream, bytes), false),
                Err(e) => (id, ProcessEvent::Failed(e.to_string()), true),
            },
            Reply::Exited { id, code, signal } => (id, ProcessEvent::Exited { code, signal }, true),
            Reply::Error {
                id: Some(id),
                message,
            } => (id, ProcessEvent::Failed(message), true),
            Reply::Error { id: None, message } => {
                tracing::warn!(%message, "sandbox supervisor reported an error");
                continue;
            }
            Reply::Hello { .. }
            | Reply::File { .. }
            | Reply::Entries { .. }
            | Reply::Done { .. } => continue,
        };
        let mut procs = inner.procs.lock().expect("procs lock");
        if let Some(tx) = procs.get(&id) {
            let _ = tx.send(event);
        }
        if last {
            procs.remove(&id);
        }
    };
    inner.pending.lock().expect("pending lock").clear();
    for (_, tx) in inner.procs.lock().expect("procs lock").drain() {
        let _ = tx.send(ProcessEvent::Failed(format!("the sandbox broke: {why}")));
    }
}

fn namespaces_command(
    config: &SandboxConfig,
    workspace: &Path,
    state: &Path,
) -> Result<(Command, Option<Hardening>, String), SandboxError> {
    let bwrap = tier::find_bwrap().ok_or_else(|| {
        SandboxError::NoTier("bubblewrap is not installed (apt-get install bubblewrap)".into())
    })?;
    write_identity_files(state)?;
    let mut c = Command::new(bwrap);
    c.args(["--unshare-user", "--uid", INNER_ID, "--gid", INNER_ID]);
    c.args([
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    c.args([
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]);
    c.args(["--hostname", "cordon"]);
    c.args(["--ro-bind", "/usr", "/usr"]);
    for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        match std::fs::read_link(dir) {
            Ok(target) => {
                c.arg("--symlink").arg(target).arg(dir);
            }
            Err(_) if Path::new(dir).is_dir() => {
                c.args(["--ro-bind", dir, dir]);
            }
            Err(_) => {}
        }
    }
    for entry in ETC_ENTRIES {
        let p = format!("/etc/{entry}");
        c.args(["--ro-bind-try", &p, &p]);
    }
    c.arg("--ro-bind")
        .arg(state.join("passwd"))
        .arg("/etc/passwd");
    c.arg("--ro-bind")
        .arg(state.join("group"))
        .arg("/etc/group");
    c.args(["--proc", "/proc", "--dev", "/dev"]);
    c.arg("--size")
        .arg(config.limits.tmp_size.to_string())
        .args(["--tmpfs", "/tmp"]);
    c.arg("--ro-bind")
        .arg(&config.supervisor.program)
        .arg(INNER_SUPERVISOR);
    let bind = if config.read_only {
        "--ro-bind"
    } else {
        "--bind"
    };
    c.arg(bind).arg(workspace).arg(INNER_WORKSPACE);
    c.args(["--chdir", INNER_WORKSPACE, "--clearenv", "--"]);
    c.arg(INNER_SUPERVISOR).args(&config.supervisor.args);
    c.env_clear();
    let (mut ro, mut rw) = (
        vec![
            "/usr".to_string(),
            "/etc".to_string(),
            "/proc".to_string(),
            "/.cordon".to_string(),
        ],
        vec!["/tmp".to_string(), "/dev".to_string()],
    );
    if config.read_only {
        ro.push(INNER_WORKSPACE.into());
    } else {
        rw.push(INNER_WORKSPACE.into());
    }
    let hardening = Hardening {
        read_only: ro,
        read_write: rw,
        block_tcp: false,
        limits: config.limits,
    };
    Ok((c, Some(hardening), INNER_WORKSPACE.to_string()))
}

fn landlock_command(
    config: &SandboxConfig,
    workspace: &Path,
    state: &Path,
) -> Result<(Command, Option<Hardening>, String), SandboxError> {
    let tmp = state.join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| SandboxError::Start(format!("cannot make the sandbox's tmp: {e}")))?;
    let mut ro: Vec<String> = ["/usr", "/bin", "/sbin", "/lib", "/lib64"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ro.extend(ETC_ENTRIES.iter().map(|e| format!("/etc/{e}")));
    ro.push(config.supervisor.program.display().to_string());
    let mut rw: Vec<String> = DEVICES.iter().map(|s| s.to_string()).collect();
    rw.push(tmp.display().to_string());
    let ws = workspace.display().to_string();
    if config.read_only {
        ro.push(ws.clone());
    } else {
        rw.push(ws.clone());
    }
    let mut c = Command::new(&config.supervisor.program);
    c.args(&config.supervisor.args)
        .env_clear()
        .current_dir(workspace);
    // A session of its own: no controlling terminal to type into.
    c.process_group(0);
    let hardening = Hardening {
        read_only: ro,
        read_write: rw,
        block_tcp: true,
        limits: config.limits,
    };
    Ok((c, Some(hardening), ws))
}

/// Wraps `command` in a shell that first moves itself into the sandbox's cgroups, then
/// execs the command: nothing the sandbox starts can fork before the limits apply.
fn join_cgroups_first(command: Command, procs_files: &[PathBuf]) -> Command {
    let inner = command.as_std();
    let mut script = String::new();
    for f in procs_files {
        script.push_str(&format!("echo $$ > '{}' || exit 97; ", f.display()));
    }
    script.push_str("exec \"$@\"");
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script).arg("cordon-sandbox");
    c.arg(inner.get_program()).args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        c.current_dir(dir);
    }
    c.env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c
}

/// A passwd and group naming only the sandbox's user, so no host account names leak in.
fn write_identity_files(state: &Path) -> Result<(), SandboxError> {
    let err = |e: std::io::Error| {
        SandboxError::Start(format!("cannot write the sandbox's identity files: {e}"))
    };
    std::fs::write(
        state.join("passwd"),
        format!("cordon:x:{INNER_ID}:{INNER_ID}:cordon sandbox:{INNER_WORKSPACE}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
    )
    .map_err(err)?;
    std::fs::write(
        state.join("group"),
        format!("cordon:x:{INNER_ID}:\nnogroup:x:65534:\n"),
    )
    .map_err(err)
}
