//! What a local sandbox is made of, worked out by pure functions: the bubblewrap argument
//! list, the paths each tier's Landlock rules allow, the identity files. `LocalSandbox::create`
//! measures the host ([`HostLayout::measure`]), stages the sandbox's own /etc
//! ([`stage_etc`]), calls these, and carries out the result; the tests below read the
//! results directly.

use crate::hardening::{Hardening, Limits};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the workspace appears inside a namespaces-tier sandbox by default.
pub const INNER_WORKSPACE: &str = "/workspace";
/// Where the supervisor binary appears inside a namespaces-tier sandbox.
pub const INNER_SUPERVISOR: &str = "/.cordon/supervisor";
/// The unprivileged uid and gid inside a namespaces-tier sandbox.
pub const INNER_ID: &str = "1000";
/// Entries of /etc a sandbox sees; the rest of /etc (shadow, the host's configuration) it
/// does not.
pub const ETC_ENTRIES: &[&str] = &[
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
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/ptmx",
    "/dev/pts",
];
/// The top-level directories that hold programs and libraries: links on merged-/usr hosts,
/// directories elsewhere.
pub const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// One of [`SYSTEM_DIRS`] as this host has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemDir {
    /// A symbolic link to this target (recreated inside as the same link).
    Link(PathBuf),
    /// A real directory (bound read-only).
    Dir,
    /// Absent.
    Missing,
}

/// The facts about this host that the bubblewrap arguments depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLayout {
    /// Each of [`SYSTEM_DIRS`], in order.
    pub system_dirs: Vec<(&'static str, SystemDir)>,
    /// The [`ETC_ENTRIES`] that are directories here: bound one by one. The others are
    /// files, copied into the sandbox's own /etc (see [`stage_etc`]): one mount instead of
    /// one each, which saves bubblewrap a few milliseconds.
    pub etc_dirs: Vec<&'static str>,
}

impl HostLayout {
    /// Looks at this host (a handful of `readlink` calls).
    pub fn measure() -> HostLayout {
        let system_dirs = SYSTEM_DIRS
            .iter()
            .map(|dir| {
                let kind = match std::fs::read_link(dir) {
                    Ok(target) => SystemDir::Link(target),
                    Err(_) if Path::new(dir).is_dir() => SystemDir::Dir,
                    Err(_) => SystemDir::Missing,
                };
                (*dir, kind)
            })
            .collect();
        let etc_dirs = ETC_ENTRIES
            .iter()
            .copied()
            .filter(|e| Path::new("/etc").join(e).is_dir())
            .collect();
        HostLayout {
            system_dirs,
            etc_dirs,
        }
    }
}

/// The sandbox's own /etc in its state directory, bound read-only as /etc.
pub fn staged_etc(state: &Path) -> PathBuf {
    state.join("etc")
}

/// The largest /etc file copied into a sandbox; a bigger one is left out.
const MAX_ETC_FILE: u64 = 4 << 20;

/// Fills the sandbox's own /etc ([`staged_etc`]) from the host's (`host_etc`, `/etc` but
/// in tests): a copy of each file among [`ETC_ENTRIES`] that anyone on the host may read
/// (links followed), an empty mount point for each directory among them, and the identity
/// files.
pub fn stage_etc(
    host_etc: &Path,
    state: &Path,
    host: &HostLayout,
    identity: (&str, &str),
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let etc = staged_etc(state);
    std::fs::create_dir(&etc)?;
    for entry in ETC_ENTRIES {
        let target = etc.join(entry);
        if host.etc_dirs.contains(entry) {
            std::fs::create_dir(&target)?;
            continue;
        }
        let source = host_etc.join(entry);
        let Ok(meta) = std::fs::metadata(&source) else {
            continue;
        };
        let readable_by_all = meta.permissions().mode() & 0o004 != 0;
        if meta.is_file() && readable_by_all && meta.len() <= MAX_ETC_FILE {
            std::fs::copy(&source, &target)?;
        }
    }
    std::fs::write(etc.join("passwd"), identity.0)?;
    std::fs::write(etc.join("group"), identity.1)?;
    Ok(())
}

/// The workspace directories above the read-only and hidden entries, shallowest first (so
/// each is mounted before what lies inside it).
fn pinned_dirs(plan: &MountPlan<'_>) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for (_, rel) in plan.read_only_entries.iter().chain(plan.hidden_entries) {
        let mut above = Path::new(rel).parent();
        while let Some(dir) = above.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.display().to_string());
            above = dir.parent();
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| (d.matches('/').count(), d.clone()));
    dirs
}

/// Where Debian and its kin keep the system's trusted certificates, one file.
pub const SYSTEM_TRUST_STORE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// An empty file and an empty directory in the sandbox's state directory, with no
/// permissions at all: bound over entries the sandbox may neither read nor write, they can be
/// seen but not opened (the sandbox holds no capability that would override that).
pub fn stage_stand_ins(state: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let (file, dir) = (state.join("hidden-file"), state.join("hidden-dir"));
    if !file.exists() {
        std::fs::write(&file, b"")?;
        std::fs::create_dir(&dir)?;
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000))?;
    Ok((file, dir))
}

/// Everything the namespaces tier's bubblewrap command is built from, already checked and
/// resolved (grants and read-only entries are real paths).
#[derive(Debug, Clone)]
pub struct MountPlan<'a> {
    /// The workspace on the host (resolved).
    pub workspace: &'a Path,
    /// Where it appears inside.
    pub root: &'a str,
    /// Whether it is mounted read-only.
    pub read_only: bool,
    /// Read-only entries: the resolved host path and the workspace-relative path.
    pub read_only_entries: &'a [(PathBuf, String)],
    /// Hidden entries: the stand-in to bind (see [`stage_stand_ins`]) and the
    /// workspace-relative path it covers.
    pub hidden_entries: &'a [(PathBuf, String)],
    /// Granted host paths (resolved) and whether writable.
    pub grants: &'a [(PathBuf, bool)],
    /// The sandbox's state directory (identity files).
    pub state: &'a Path,
    /// The supervisor program on the host.
    pub supervisor: &'a Path,
    /// Its arguments.
    pub supervisor_args: &'a [String],
    /// Resource limits (the size of /tmp).
    pub limits: &'a Limits,
    /// The egress proxy's Unix socket on the host, bound at
    /// [`crate::egress::INNER_SOCKET`]; `None`: no way out.
    pub egress_socket: Option<&'a Path>,
    /// The certificate bundle the sandbox trusts when the proxy adds credentials, bound at
    /// [`crate::egress::INNER_CA_BUNDLE`].
    pub ca_bundle: Option<&'a Path>,
}

/// bubblewrap's arguments for a namespaces-tier sandbox, in order.
pub fn bwrap_args(host: &HostLayout, plan: &MountPlan<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    push(&["--unshare-user", "--uid", INNER_ID, "--gid", INNER_ID]);
    push(&[
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    // Every capability goes but CAP_SETPCAP (in the sandbox's own user namespace), which the
    // supervisor needs to lock its securebits before it drops that one too.
    push(&[
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CAP_SETPCAP",
    ]);
    push(&["--hostname", "cordon"]);
    push(&["--ro-bind", "/usr", "/usr"]);
    for (dir, kind) in &host.system_dirs {
        match kind {
            SystemDir::Link(target) => {
                a.push("--symlink".into());
                a.push(target.into());
                a.push(dir.into());
            }
            SystemDir::Dir => a.extend(["--ro-bind", dir, dir].map(OsString::from)),
            SystemDir::Missing => {}
        }
    }
    a.extend([
        "--ro-bind".into(),
        staged_etc(plan.state).into(),
        "/etc".into(),
    ]);
    for dir in &host.etc_dirs {
        let p = format!("/etc/{dir}");
        a.extend(["--ro-bind".into(), p.clone().into(), p.into()]);
    }
    a.extend(["--proc", "/proc", "--dev", "/dev"].map(OsString::from));
    a.extend([
        "--size".into(),
        plan.limits.tmp_size.to_string().into(),
        "--tmpfs".into(),
        "/tmp".into(),
    ]);
    a.extend([
        "--ro-bind".into(),
        plan.supervisor.into(),
        INNER_SUPERVISOR.into(),
    ]);
    if let Some(socket) = plan.egress_socket {
        a.extend([
            "--ro-bind".into(),
            socket.into(),
            crate::egress::INNER_SOCKET.into(),
        ]);
    }
    if let Some(bundle) = plan.ca_bundle {
        a.extend([
            "--ro-bind".into(),
            bundle.into(),
            crate::egress::INNER_CA_BUNDLE.into(),
        ]);
        // Programs that read the system's trust store by its usual path trust it too.
        if host.etc_dirs.contains(&"ssl") && Path::new(SYSTEM_TRUST_STORE).is_file() {
            a.extend(["--ro-bind".into(), bundle.into(), SYSTEM_TRUST_STORE.into()]);
        }
    }
    let bind = if plan.read_only {
        "--ro-bind"
    } else {
        "--bind"
    };
    a.extend([bind.into(), plan.workspace.into(), plan.root.into()]);
    // The directories above a protected entry are mounted onto themselves first: a mount
    // point cannot be renamed or removed, so the entry stays at the path its rule names.
    for rel in pinned_dirs(plan) {
        a.extend([
            bind.into(),
            plan.workspace.join(&rel).into(),
            format!("{}/{rel}", plan.root).into(),
        ]);
    }
    for (real, rel) in plan.read_only_entries {
        a.extend([
            "--ro-bind".into(),
            real.into(),
            format!("{}/{rel}", plan.root).into(),
        ]);
    }
    for (stand_in, rel) in plan.hidden_entries {
        a.extend([
            "--ro-bind".into(),
            stand_in.into(),
            format!("{}/{rel}", plan.root).into(),
        ]);
    }
    for (path, writable) in plan.grants {
        let bind = if *writable { "--bind" } else { "--ro-bind" };
        a.extend([bind.into(), path.into(), path.into()]);
    }
    a.extend(["--chdir", plan.root, "--clearenv", "--", INNER_SUPERVISOR].map(OsString::from));
    a.extend(plan.supervisor_args.iter().map(OsString::from));
    a
}

/// The Landlock rules (and limits) of a namespaces-tier supervisor: inside its own mount
/// namespace, only what bubblewrap mounted.
pub fn namespaces_hardening(
    root: &str,
    read_only: bool,
    grants: &[(PathBuf, bool)],
    limits: Limits,
) -> Hardening {
    let mut ro: Vec<String> = ["/usr", "/etc", "/proc", "/.cordon"]
        .map(String::from)
        .into();
    let mut rw: Vec<String> = ["/tmp", "/dev"].map(String::from).into();
    if read_only {
        ro.push(root.to_string());
    } else {
        rw.push(root.to_string());
    }
    add_grants(grants, &mut ro, &mut rw);
    Hardening {
        read_only: ro,
        read_write: rw,
        block_tcp: false,
        tcp_connect: None,
        limits,
    }
}

/// The Landlock rules (and limits) of a landlock-tier supervisor, which sees the host's
/// file tree: the system directories, the /etc entries, its own program, the devices, a
/// private tmp, the workspace and the grants. TCP is blocked: there is no network
/// namespace; only the egress proxy's port, when given, may be connected to.
pub fn landlock_hardening(
    workspace: &Path,
    read_only: bool,
    tmp: &Path,
    supervisor: &Path,
    grants: &[(PathBuf, bool)],
    egress: Option<&crate::Egress>,
    limits: Limits,
) -> Hardening {
    let mut ro: Vec<String> = ["/usr", "/bin", "/sbin", "/lib", "/lib64"]
        .map(String::from)
        .into();
    ro.extend(ETC_ENTRIES.iter().map(|e| format!("/etc/{e}")));
    ro.push(supervisor.display().to_string());
    ro.extend(
        egress
            .and_then(|e| e.ca_bundle.as_ref())
            .map(|b| b.display().to_string()),
    );
    let mut rw: Vec<String> = DEVICES.iter().map(|s| s.to_string()).collect();
    rw.push(tmp.display().to_string());
    let ws = workspace.display().to_string();
    if read_only {
        ro.push(ws);
    } else {
        rw.push(ws);
    }
    add_grants(grants, &mut ro, &mut rw);
    Hardening {
        read_only: ro,
        read_write: rw,
        block_tcp: true,
        tcp_connect: egress.map(|e| e.tcp.port()),
        limits,
    }
}

/// Granted host paths join the Landlock rules, read-only or read-write as granted.
fn add_grants(grants: &[(PathBuf, bool)], ro: &mut Vec<String>, rw: &mut Vec<String>) {
    for (path, writable) in grants {
        let p = path.display().to_string();
        if *writable { rw.push(p) } else { ro.push(p) }
    }
}

/// `/etc/passwd` and `/etc/group` naming only the sandbox's user, so no host account names
/// leak in.
pub fn identity_files(home: &str) -> (String, String) {
    (
        format!(
            "cordon:x:{INNER_ID}:{INNER_ID}:cordon sandbox:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        format!("cordon:x:{INNER_ID}:\nnogroup:x:65534:\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn merged_usr() -> HostLayout {
        HostLayout {
            system_dirs: vec![
                ("/bin", SystemDir::Link("usr/bin".into())),
                ("/sbin", SystemDir::Link("usr/sbin".into())),
                ("/lib", SystemDir::Link("usr/lib".into())),
                ("/lib32", SystemDir::Missing),
                ("/lib64", SystemDir::Dir),
                ("/libx32", SystemDir::Missing),
            ],
            etc_dirs: vec!["ssl", "profile.d"],
        }
    }

    #[test]
    fn bwrap_arguments_match_the_golden_list() {
        let limits = Limits::default();
        let ro_entries = vec![(PathBuf::from("/w/ref"), "ref".to_string())];
        let grants = vec![
            (PathBuf::from("/opt/data"), false),
            (PathBuf::from("/srv/out"), true),
        ];
        let plan = MountPlan {
            workspace: Path::new("/w"),
            root: "/project",
            read_only: false,
            read_only_entries: &ro_entries,
            hidden_entries: &[],
            grants: &grants,
            state: Path::new("/tmp/state"),
            supervisor: Path::new("/usr/local/bin/cordon"),
            supervisor_args: &["__supervisor".to_string()],
            limits: &limits,
            egress_socket: Some(Path::new("/tmp/run/egress.sock")),
            ca_bundle: None,
        };
        let mut golden: Vec<String> = [
            "--unshare-user",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETPCAP",
            "--hostname",
            "cordon",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--ro-bind",
            "/lib64",
            "/lib64",
        ]
        .map(String::from)
        .into();
        golden.extend(
            [
                "--ro-bind",
                "/tmp/state/etc",
                "/etc",
                "--ro-bind",
                "/etc/ssl",
                "/etc/ssl",
                "--ro-bind",
                "/etc/profile.d",
                "/etc/profile.d",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--size",
                "536870912",
                "--tmpfs",
                "/tmp",
                "--ro-bind",
                "/usr/local/bin/cordon",
                "/.cordon/supervisor",
                "--ro-bind",
                "/tmp/run/egress.sock",
                "/.cordon/egress.sock",
                "--bind",
                "/w",
                "/project",
                "--ro-bind",
                "/w/ref",
                "/project/ref",
                "--ro-bind",
                "/opt/data",
                "/opt/data",
                "--bind",
                "/srv/out",
                "/srv/out",
                "--chdir",
                "/project",
                "--clearenv",
                "--",
                "/.cordon/supervisor",
                "__supervisor",
            ]
            .map(String::from),
        );
        assert_eq!(strings(&bwrap_args(&merged_usr(), &plan)), golden);
    }

    #[test]
    fn a_read_only_workspace_is_bound_read_only_and_nothing_unshared_is_dropped() {
        let limits = Limits::default();
        let plan = MountPlan {
            workspace: Path::new("/w"),
            root: "/workspace",
            read_only: true,
            read_only_entries: &[],
            hidden_entries: &[],
            grants: &[],
            state: Path::new("/s"),
            supervisor: Path::new("/c"),
            supervisor_args: &[],
            limits: &limits,
            egress_socket: None,
            ca_bundle: None,
        };
        let args = strings(&bwrap_args(&merged_usr(), &plan));
        let i = args.iter().position(|a| a == "/w").unwrap();
        assert_eq!(&args[i - 1..=i + 1], ["--ro-bind", "/w", "/workspace"]);
        assert!(!args.iter().any(|a| a == "--bind"), "{args:?}");
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--disable-userns",
            "--die-with-parent",
            "--clearenv",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing");
        }
        // The host's root is never bound, nor /home, nor all of /etc.
        for a in args.windows(2) {
            assert!(
                !(a[0].contains("bind") && matches!(a[1].as_str(), "/" | "/etc" | "/home")),
                "{a:?}"
            );
        }
    }

    #[test]
    fn each_tier_allows_only_its_own_paths() {
        let grants = vec![
            (PathBuf::from("/data"), false),
            (PathBuf::from("/out"), true),
        ];
        let ns = namespaces_hardening("/project", false, &grants, Limits::default());
        assert_eq!(ns.read_only, ["/usr", "/etc", "/proc", "/.cordon", "/data"]);
        assert_eq!(ns.read_write, ["/tmp", "/dev", "/project", "/out"]);
        assert!(
            !ns.block_tcp,
            "the network namespace already has no network"
        );

        let ro = namespaces_hardening("/project", true, &[], Limits::default());
        assert!(ro.read_only.contains(&"/project".to_string()));
        assert!(!ro.read_write.contains(&"/project".to_string()));

        let ll = landlock_hardening(
            Path::new("/home/u/proj"),
            false,
            Path::new("/tmp/st/tmp"),
            Path::new("/usr/bin/cordon"),
            &grants,
            Some(&crate::Egress {
                socket: PathBuf::from("/run/e.sock"),
                tcp: "127.0.0.1:4711".parse().unwrap(),
                ca_bundle: Some(PathBuf::from("/run/ca.pem")),
                env: Vec::new(),
                token: None,
            }),
            Limits::default(),
        );
        assert_eq!(ll.tcp_connect, Some(4711), "the proxy's port stays open");
        assert!(ll.read_only.contains(&"/run/ca.pem".to_string()));
        assert!(
            ll.block_tcp,
            "no network namespace: TCP is blocked by Landlock"
        );
        assert!(ll.read_write.contains(&"/home/u/proj".to_string()));
        assert!(ll.read_write.contains(&"/tmp/st/tmp".to_string()));
        assert!(ll.read_write.contains(&"/out".to_string()));
        assert!(ll.read_only.contains(&"/data".to_string()));
        assert!(ll.read_only.contains(&"/etc/ssl".to_string()));
        for never in ["/", "/etc", "/home", "/home/u", "/tmp", "/proc", "/root"] {
            assert!(
                !ll.read_only
                    .iter()
                    .chain(&ll.read_write)
                    .any(|p| p == never),
                "{never} must not be allowed"
            );
        }
        assert!(
            ll.read_write.iter().all(|p| p.starts_with("/dev/")
                || p.starts_with("/tmp/st")
                || p == "/home/u/proj"
                || p == "/out"),
            "{:?}",
            ll.read_write
        );
    }

    #[test]
    fn identity_files_name_only_the_sandbox_user() {
        let (passwd, group) = identity_files("/project");
        assert!(passwd.starts_with("cordon:x:1000:1000:cordon sandbox:/project:"));
        assert_eq!(passwd.lines().count(), 2);
        assert!(!passwd.contains("root"));
        assert_eq!(group.lines().count(), 2);
    }

    #[test]
    fn the_staged_etc_holds_readable_files_mount_points_and_identities_only() {
        use std::os::unix::fs::PermissionsExt;
        let host_etc = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let h = host_etc.path();
        std::fs::write(h.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(h.join("os-release.real"), "ID=test\n").unwrap();
        std::os::unix::fs::symlink("os-release.real", h.join("os-release")).unwrap();
        std::fs::write(h.join("services"), "secret\n").unwrap();
        std::fs::set_permissions(h.join("services"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::create_dir(h.join("ssl")).unwrap();
        std::fs::write(h.join("shadow"), "root:x\n").unwrap();
        let host = HostLayout {
            system_dirs: vec![],
            etc_dirs: vec!["ssl"],
        };
        stage_etc(h, state.path(), &host, ("cordon:x\n", "cordon:x\n")).unwrap();
        let etc = staged_etc(state.path());
        let mut names: Vec<String> = std::fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // Not the file only its owner may read, not what is not listed (shadow).
        assert_eq!(names, ["group", "hosts", "os-release", "passwd", "ssl"]);
        assert_eq!(
            std::fs::read_to_string(etc.join("os-release")).unwrap(),
            "ID=test\n"
        );
        assert!(etc.join("ssl").is_dir());
        assert_eq!(std::fs::read_dir(etc.join("ssl")).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_to_string(etc.join("passwd")).unwrap(),
            "cordon:x\n"
        );
    }

    #[test]
    fn the_directories_above_a_protected_entry_are_pinned_first() {
        let limits = Limits::default();
        let ro = vec![(
            PathBuf::from("/w/config/ro.txt"),
            "config/ro.txt".to_string(),
        )];
        let hidden = vec![(
            PathBuf::from("/s/hidden-file"),
            "data/deep/secrets/key".to_string(),
        )];
        let plan = MountPlan {
            workspace: Path::new("/w"),
            root: "/workspace",
            read_only: false,
            read_only_entries: &ro,
            hidden_entries: &hidden,
            grants: &[],
            state: Path::new("/s"),
            supervisor: Path::new("/c"),
            supervisor_args: &[],
            limits: &limits,
            egress_socket: None,
            ca_bundle: None,
        };
        assert_eq!(
            pinned_dirs(&plan),
            ["config", "data", "data/deep", "data/deep/secrets"]
        );
        let args = strings(&bwrap_args(&merged_usr(), &plan));
        let at = |needle: &str| args.iter().position(|a| a == needle).unwrap();
        assert!(at("/w/data/deep") < at("/workspace/data/deep/secrets/key"));
        assert!(at("/w/config") < at("/w/config/ro.txt"));
    }
}
