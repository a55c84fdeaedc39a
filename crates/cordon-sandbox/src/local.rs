//! The local backend: bubblewrap (or Landlock alone) around the supervisor, on this host.

use crate::client::Client;
use crate::error::SandboxError;
use crate::hardening::{Applied, Hardening, Limits};
use crate::protocol::{self, PROTOCOL_VERSION, Reply, Request};
use crate::tier::{self, Tier, TierChoice};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

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
    /// Where the workspace appears inside (namespaces tier; the landlock tier sees the host
    /// path).
    pub root: String,
    /// Host paths made visible at the same path inside, and whether writable.
    pub grants: Vec<(PathBuf, bool)>,
    /// Workspace-relative paths mounted read-only over a writable workspace (namespaces tier;
    /// Landlock cannot take back a right it granted on the workspace).
    pub read_only_paths: Vec<String>,
    /// Host paths the sandbox must never reach (cordon's run store, snapshots, state): no
    /// grant may cover them or lie inside them, and the workspace may not hold them.
    pub protected: Vec<PathBuf>,
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
            protected: Vec::new(),
        }
    }
}

/// Host directories no grant may be or lie under: their contents are the host's processes,
/// devices and kernel settings.
const HOST_ONLY: &[&str] = &["/proc", "/sys", "/dev", "/run", "/boot"];

/// A path with its links resolved, or with its longest existing ancestor resolved (for a
/// protected path that does not exist yet).
fn resolved(p: &Path) -> PathBuf {
    if let Ok(r) = std::fs::canonicalize(p) {
        return r;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => resolved(parent).join(name),
        _ => p.to_path_buf(),
    }
}

/// Checks the workspace and the grants against what a sandbox may never see, with links
/// resolved; returns the grants as resolved paths.
fn check_reach(
    config: &SandboxConfig,
    workspace: &Path,
) -> Result<Vec<(PathBuf, bool)>, SandboxError> {
    let protected: Vec<PathBuf> = config.protected.iter().map(|p| resolved(p)).collect();
    if workspace == Path::new("/") || HOST_ONLY.iter().any(|h| workspace.starts_with(h)) {
        return Err(SandboxError::Config(format!(
            "the workspace {} would give the sandbox the host's own files: work in a project directory",
            workspace.display()
        )));
    }
    if let Some(p) = protected.iter().find(|p| p.starts_with(workspace)) {
        return Err(SandboxError::Config(format!(
            "the workspace {} holds {}, which is cordon's own record: the sandbox could read and change it. Work in a project directory (--workspace DIR), or keep cordon's store elsewhere (--store, --snapshots)",
            workspace.display(),
            p.display()
        )));
    }
    let program = std::fs::canonicalize(&config.supervisor.program).ok();
    let mut grants = Vec::new();
    for (path, writable) in &config.grants {
        let real = std::fs::canonicalize(path)
            .map_err(|e| SandboxError::Config(format!("grant {}: {e}", path.display())))?;
        let shown = if real == *path {
            path.display().to_string()
        } else {
            format!("{} (which resolves to {})", path.display(), real.display())
        };
        if real == Path::new("/") {
            return Err(SandboxError::Config(format!(
                "grant {shown} would show the sandbox the whole host: grant the directories the task needs"
            )));
        }
        if let Some(h) = HOST_ONLY.iter().find(|h| real.starts_with(h)) {
            return Err(SandboxError::Config(format!(
                "grant {shown} is inside {h}, which belongs to the host (processes, devices, kernel settings) and is never granted"
            )));
        }
        if let Some(p) = protected
            .iter()
            .find(|p| p.starts_with(&real) || real.starts_with(p))
        {
            return Err(SandboxError::Config(format!(
                "grant {shown} reaches {}, cordon's own record: the sandbox could read and change it",
                p.display()
            )));
        }
        if *writable && program.as_ref().is_some_and(|p| p.starts_with(&real)) {
            return Err(SandboxError::Config(format!(
                "grant {shown} is writable and holds cordon's own program: the sandbox could replace what runs outside it; grant it read-only"
            )));
        }
        grants.push((real, *writable));
    }
    Ok(grants)
}

/// A running sandbox on this host. Dropping it kills everything inside.
pub struct LocalSandbox {
    client: Client,
    child: Child,
    tier: Tier,
    confinement: Applied,
    cgroups: Option<crate::cgroup::SandboxCgroups>,
    writable_grants: bool,
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
        let grants = check_reach(&config, &workspace)?;
        let config = SandboxConfig { grants, ..config };
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
        // A cordon that was killed could not remove its sandboxes' state: clear those once a
        // process (as its cgroups are).
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            sweep_state_dirs(&std::env::temp_dir());
        });
        let state = tempfile::Builder::new()
            .prefix(&format!("{STATE_PREFIX}{}-", std::process::id()))
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
        // Its own process group: a terminal's Ctrl-C reaches cordon, which decides, and not
        // the sandbox directly.
        command.process_group(0);
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
        let program = match tier {
            Tier::Namespaces => INNER_SUPERVISOR.to_string(),
            Tier::Landlock | Tier::Unconfined => config.supervisor.program.display().to_string(),
        };
        let shim: Vec<String> = std::iter::once(program)
            .chain(config.supervisor.args.iter().cloned())
            .chain(std::iter::once(crate::shim::SHIM_ARG.to_string()))
            .collect();
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            hardening,
            workspace: inner_workspace.clone(),
            disk_reserve: config.limits.disk_reserve,
            shim: Some(shim),
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
            client: Client::start(stdin, stdout, env, inner_workspace),
            child,
            tier,
            confinement,
            cgroups,
            writable_grants: config.grants.iter().any(|(_, writable)| *writable),
            _state: state,
        })
    }

    /// The tier in force.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Whether commands can change nothing but the workspace: a network namespace of their
    /// own and no host path granted writable. Only then can a command run again, after the
    /// workspace is restored, without doing anything twice.
    pub fn confined_to_workspace(&self) -> bool {
        self.tier == Tier::Namespaces && !self.writable_grants
    }

    /// What confinement the supervisor reported.
    pub fn confinement(&self) -> &Applied {
        &self.confinement
    }

    /// The client that talks to this sandbox's supervisor.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stops the sandbox and everything in it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        drop(self.cgroups.take());
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
    write_identity_files(state, &config.root)?;
    let mut c = Command::new(bwrap);
    c.args(["--unshare-user", "--uid", INNER_ID, "--gid", INNER_ID]);
    c.args([
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    // Every capability goes but CAP_SETPCAP (in the sandbox's own user namespace), which the
    // supervisor needs to lock its securebits before it drops that one too.
    c.args([
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CAP_SETPCAP",
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
    c.arg(bind).arg(workspace).arg(&config.root);
    for rel in &config.read_only_paths {
        // Only paths that resolve inside the workspace: a link must not pick the mount point.
        match std::fs::canonicalize(workspace.join(rel)) {
            Ok(real) if real.starts_with(workspace) => {
                c.arg("--ro-bind")
                    .arg(&real)
                    .arg(format!("{}/{rel}", config.root));
            }
            _ => {
                return Err(SandboxError::Workspace {
                    path: workspace.join(rel),
                    message: "a read-only entry is missing or leads out of the workspace".into(),
                });
            }
        }
    }
    for (path, writable) in &config.grants {
        c.arg(if *writable { "--bind" } else { "--ro-bind" })
            .arg(path)
            .arg(path);
    }
    c.args(["--chdir", &config.root, "--clearenv", "--"]);
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
        ro.push(config.root.clone());
    } else {
        rw.push(config.root.clone());
    }
    add_grants(config, &mut ro, &mut rw);
    let hardening = Hardening {
        read_only: ro,
        read_write: rw,
        block_tcp: false,
        limits: config.limits,
    };
    Ok((c, Some(hardening), config.root.clone()))
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
    add_grants(config, &mut ro, &mut rw);
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

/// The start of a sandbox's state directory's name, followed by the owning process's id.
const STATE_PREFIX: &str = "cordon-sandbox-";

/// Removes the state directories of sandboxes whose cordon process is gone; returns how many.
/// Directories named before the pid was part of the name go once a week old.
fn sweep_state_dirs(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(STATE_PREFIX) else {
            continue;
        };
        let owner: Option<i32> = rest.split_once('-').and_then(|(pid, _)| pid.parse().ok());
        let stale = match owner {
            Some(pid) if pid == std::process::id() as i32 => false,
            Some(pid) => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(nix::errno::Errno::ESRCH)
            }
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(7 * 24 * 3600)),
        };
        if stale
            && e.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(
            removed,
            "removed state directories left behind by killed sandboxes"
        );
    }
    removed
}

/// Granted host paths join the Landlock rules, read-only or read-write as granted.
fn add_grants(config: &SandboxConfig, ro: &mut Vec<String>, rw: &mut Vec<String>) {
    for (path, writable) in &config.grants {
        let p = path.display().to_string();
        if *writable { rw.push(p) } else { ro.push(p) }
    }
}

/// A passwd and group naming only the sandbox's user, so no host account names leak in.
fn write_identity_files(state: &Path, home: &str) -> Result<(), SandboxError> {
    let err = |e: std::io::Error| {
        SandboxError::Start(format!("cannot write the sandbox's identity files: {e}"))
    };
    std::fs::write(
        state.join("passwd"),
        format!("cordon:x:{INNER_ID}:{INNER_ID}:cordon sandbox:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
    )
    .map_err(err)?;
    std::fs::write(
        state.join("group"),
        format!("cordon:x:{INNER_ID}:\nnogroup:x:65534:\n"),
    )
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_left_by_dead_processes_is_swept_and_live_state_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid that cannot be running (above the kernel's limit) and this process's own.
        let dead = tmp.path().join(format!("{STATE_PREFIX}99999999-abc"));
        let mine = tmp
            .path()
            .join(format!("{STATE_PREFIX}{}-def", std::process::id()));
        let legacy = tmp.path().join(format!("{STATE_PREFIX}Xy12Ab"));
        for d in [&dead, &mine, &legacy] {
            std::fs::create_dir_all(d.join("tmp")).unwrap();
            std::fs::write(d.join("passwd"), "x").unwrap();
        }
        assert_eq!(sweep_state_dirs(tmp.path()), 1);
        assert!(!dead.exists(), "a dead cordon's state goes");
        assert!(mine.exists(), "a live one's stays");
        assert!(
            legacy.exists(),
            "an unnamed one stays until it is a week old"
        );
    }
}
