//! Confinement the supervisor applies to itself before it runs anything, so that every
//! command inherits it: Landlock (the best ABI the kernel has), a seccomp filter, rlimits.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to confine, sent by the harness in the first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardening {
    /// Paths the sandbox may read and execute.
    pub read_only: Vec<String>,
    /// Paths the sandbox may read, write and execute.
    pub read_write: Vec<String>,
    /// Refuse every TCP bind and connect (for tiers without a network namespace).
    pub block_tcp: bool,
    /// Resource limits.
    pub limits: Limits,
}

/// Resource limits applied with `setrlimit`, inherited by every command.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Processes the sandbox's user may have (`RLIMIT_NPROC`).
    pub max_processes: u64,
    /// Address space of one process, in bytes (`RLIMIT_AS`).
    pub address_space: u64,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Memory for the whole sandbox, in bytes (cgroup, where available).
    pub memory: u64,
    /// Size of the sandbox's private /tmp (a tmpfs, so held in memory), in bytes.
    pub tmp_size: u64,
    /// Free space to keep on the workspace's filesystem, in bytes: below it, the supervisor
    /// kills every command (there are no quotas to stop a fill of many files otherwise).
    pub disk_reserve: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: 512,
            address_space: 4 << 30,
            file_size: 1 << 30,
            open_files: 1024,
            cpu_seconds: 3600,
            memory: 4 << 30,
            tmp_size: 512 << 20,
            disk_reserve: 1 << 30,
        }
    }
}

/// What confinement took effect, reported back and recorded in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// `fully enforced`, `partially enforced` or `not enforced`, with the kernel's ABI.
    pub landlock: String,
    /// The Landlock ABI in effect (0: none).
    #[serde(default)]
    pub landlock_abi: u32,
    /// Whether the seccomp filter is installed.
    pub seccomp: bool,
    /// Whether the rlimits are set (core dumps off included).
    pub rlimits: bool,
    /// Whether every capability is dropped (effective, permitted, inheritable, ambient and
    /// bounding sets).
    #[serde(default)]
    pub capabilities_dropped: bool,
    /// Whether the securebits that keep them dropped are locked and the bounding set is
    /// cleared (neither can be, nor need be, for a supervisor that never had a capability
    /// or a root uid: it runs with no_new_privs).
    #[serde(default)]
    pub securebits_locked: bool,
    /// The cgroup limits on the whole sandbox, if the host allowed them.
    #[serde(default)]
    pub cgroups: Option<String>,
}

impl Applied {
    /// Nothing applied: the unconfined mode a user asked for by name.
    pub fn none() -> Self {
        Applied {
            landlock: "not applied (unconfined)".into(),
            landlock_abi: 0,
            seccomp: false,
            rlimits: false,
            capabilities_dropped: false,
            securebits_locked: false,
            cgroups: None,
        }
    }
}

/// Applies everything to the calling process. Call it while single-threaded, before any
/// runtime starts, so every later thread and child inherits it.
pub fn apply(h: &Hardening) -> Result<Applied, String> {
    set_limits(&h.limits)?;
    let securebits_locked = drop_capabilities()?;
    let (landlock, landlock_abi) = landlock(h)?;
    install_seccomp()?;
    Ok(Applied {
        landlock,
        landlock_abi,
        seccomp: true,
        rlimits: true,
        capabilities_dropped: true,
        securebits_locked,
        cgroups: None,
    })
}

/// The securebits locked on: root gets no capabilities from exec or from a uid change, and
/// ambient capabilities cannot be raised; locked, so nothing inside can turn them off.
fn locked_securebits() -> capctl::prctl::Secbits {
    use capctl::prctl::Secbits;
    Secbits::NOROOT
        | Secbits::NOROOT_LOCKED
        | Secbits::NO_SETUID_FIXUP
        | Secbits::NO_SETUID_FIXUP_LOCKED
        | Secbits::KEEP_CAPS_LOCKED
        | Secbits::NO_CAP_AMBIENT_RAISE
        | Secbits::NO_CAP_AMBIENT_RAISE_LOCKED
}

/// Drops every capability from every set, after locking the securebits (which needs
/// CAP_SETPCAP, so it comes first), then checks that nothing is left; returns whether the
/// securebits are locked and the bounding set cleared. A supervisor started by root in the
/// landlock tier holds every capability until here.
///
/// A supervisor started without privilege and without a user namespace holds no capability
/// and no root uid, and may neither lock securebits nor clear its bounding set. With
/// no_new_privs (set here) it can never gain a capability or root, which is what those
/// would guard; its effective, permitted, inheritable and ambient sets are still emptied.
pub fn drop_capabilities() -> Result<bool, String> {
    use capctl::{CapState, ambient, bounding, prctl};
    let err = |what: &str, e: capctl::Error| format!("capabilities: {what}: {e}");
    prctl::set_no_new_privs().map_err(|e| err("set no_new_privs", e))?;
    let current = CapState::get_current().map_err(|e| err("read", e))?;
    let privileged = any_root_uid() || !current.permitted.is_empty();
    if privileged {
        let want = locked_securebits();
        let have = prctl::get_securebits().map_err(|e| err("read securebits", e))?;
        if !have.contains(want) {
            prctl::set_securebits(have | want).map_err(|e| err("lock securebits", e))?;
        }
        bounding::clear().map_err(|e| err("clear the bounding set", e))?;
        bounding::clear_unknown().map_err(|e| err("clear the bounding set", e))?;
    }
    ambient::clear().map_err(|e| err("clear the ambient set", e))?;
    CapState::empty()
        .set_current()
        .map_err(|e| err("clear the effective, permitted and inheritable sets", e))?;
    let now = CapState::get_current().map_err(|e| err("read back", e))?;
    let bounding_left = bounding::probe();
    if !now.effective.is_empty()
        || !now.permitted.is_empty()
        || !now.inheritable.is_empty()
        || (privileged && !bounding_left.is_empty())
        || ambient::probe().is_some_and(|a| !a.is_empty())
    {
        return Err(format!(
            "capabilities: some remain after dropping them all ({now:?}, bounding {bounding_left:?})"
        ));
    }
    Ok(privileged)
}

/// Whether any of the real, effective or saved uids is root.
fn any_root_uid() -> bool {
    let r = nix::unistd::getresuid();
    r.map_or(true, |u| {
        u.real.is_root() || u.effective.is_root() || u.saved.is_root()
    })
}

fn set_limits(l: &Limits) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    let set = |r: Resource, v: u64, name: &str| {
        setrlimit(r, v, v).map_err(|e| format!("setrlimit {name}: {e}"))
    };
    set(Resource::RLIMIT_CORE, 0, "core")?;
    set(Resource::RLIMIT_NPROC, l.max_processes, "nproc")?;
    set(Resource::RLIMIT_AS, l.address_space, "as")?;
    set(Resource::RLIMIT_FSIZE, l.file_size, "fsize")?;
    set(Resource::RLIMIT_NOFILE, l.open_files, "nofile")?;
    set(Resource::RLIMIT_CPU, l.cpu_seconds, "cpu")?;
    Ok(())
}

fn landlock(h: &Hardening) -> Result<(String, u32), String> {
    // The newest ABI this crate knows: best-effort mode keeps what the kernel supports, so a
    // newer kernel gets its newer rules (UDP, for one) without a change here.
    let abi = ABI::V10;
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let existing = |paths: &[String]| -> Vec<String> {
        paths
            .iter()
            .filter(|p| std::path::Path::new(p).exists())
            .cloned()
            .collect()
    };
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?;
    if h.block_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(err)?;
    }
    let status = ruleset
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(
            existing(&h.read_only),
            AccessFs::from_read(abi),
        ))
        .map_err(err)?
        .add_rules(path_beneath_rules(
            existing(&h.read_write),
            // Everything but making device nodes: a block device for the host's disk would
            // be one mknod away.
            AccessFs::from_all(abi) & !(AccessFs::MakeChar | AccessFs::MakeBlock),
        ))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    let effective = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        _ => 0,
    };
    let how = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        // Rights newer than the kernel are left out: everything it supports is enforced.
        RulesetStatus::PartiallyEnforced => "enforced with every right this kernel has",
        RulesetStatus::NotEnforced => "not enforced (no Landlock in this kernel)",
    };
    Ok((format!("{how} (ABI {effective})"), effective))
}

/// Namespace-creating flags refused to `clone`.
const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Syscalls refused outright: debugging other processes, mounts, namespaces, kernel keyrings,
/// BPF, perf, module and kexec loading, io_uring (which would bypass this filter), and others
/// no command needs.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_syslog,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Host-wide administration: the clock, names, port I/O, roots, other processes' files.
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_chroot,
    libc::SYS_vhangup,
    libc::SYS_pidfd_getfd,
    libc::SYS_fanotify_init,
    libc::SYS_mount_setattr,
    libc::SYS_quotactl_fd,
    libc::SYS_lookup_dcookie,
    libc::SYS_uselib,
];

/// `ioctl` requests that change the host's terminals or network interfaces, refused
/// outright. Reading an interface's settings stays allowed.
const DENIED_IOCTLS: &[u64] = &[
    libc::TIOCSTI,   // push characters into a terminal's input
    libc::TIOCLINUX, // console tricks
    0x541D,          // TIOCCONS: take over the console's output
    0x890B,          // SIOCADDRT: routes
    0x890C,          // SIOCDELRT
    0x8911,          // SIOCSIFLINK
    0x8914,          // SIOCSIFFLAGS: bring interfaces up or down
    0x8916,          // SIOCSIFADDR
    0x8918,          // SIOCSIFDSTADDR
    0x891A,          // SIOCSIFBRDADDR
    0x891C,          // SIOCSIFNETMASK
    0x891E,          // SIOCSIFMETRIC
    0x8922,          // SIOCSIFMTU
    0x8923,          // SIOCSIFNAME
    0x8924,          // SIOCSIFHWADDR
    0x8931,          // SIOCADDMULTI
    0x8932,          // SIOCDELMULTI
    0x8934,          // SIOCSIFPFLAGS
    0x8936,          // SIOCDIFADDR
    0x8937,          // SIOCSIFHWBROADCAST
    0x8943,          // SIOCSIFTXQLEN
    0x8946,          // SIOCETHTOOL
    0x8949,          // SIOCSMIIREG
    0x8953,          // SIOCDARP
    0x8955,          // SIOCSARP
    0x8962,          // SIOCSRARP
    0x8971,          // SIOCSIFMAP
    0x89A0,          // SIOCBRADDBR
    0x89A1,          // SIOCBRDELBR
    0x89A2,          // SIOCBRADDIF
    0x89A3,          // SIOCBRDELIF
];

fn install_seccomp() -> Result<(), String> {
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
            .map_err(|e| format!("seccomp: {e}"))
    };
    let rule =
        |conds: Vec<SeccompCondition>| SeccompRule::new(conds).map_err(|e| format!("seccomp: {e}"));
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|s| (*s, Vec::new())).collect();
    // Raw packets and kernel interfaces over sockets.
    rules.insert(
        libc::SYS_socket,
        vec![
            rule(vec![cond(0, SeccompCmpOp::Eq, libc::AF_NETLINK as u64)?])?,
            rule(vec![cond(0, SeccompCmpOp::Eq, libc::AF_PACKET as u64)?])?,
            rule(vec![cond(
                1,
                SeccompCmpOp::MaskedEq(0xf),
                libc::SOCK_RAW as u64,
            )?])?,
        ],
    );
    // Typing into a terminal that is not ours, console tricks, changing interfaces.
    rules.insert(
        libc::SYS_ioctl,
        DENIED_IOCTLS
            .iter()
            .map(|r| rule(vec![cond(1, SeccompCmpOp::Eq, *r)?]))
            .collect::<Result<Vec<_>, String>>()?,
    );
    // Device nodes: mknod of a character or block device (fifos and sockets stay allowed).
    let device = |arg: u8| -> Result<Vec<SeccompRule>, String> {
        [libc::S_IFCHR, libc::S_IFBLK]
            .iter()
            .map(|kind| {
                rule(vec![cond(
                    arg,
                    SeccompCmpOp::MaskedEq(libc::S_IFMT as u64),
                    *kind as u64,
                )?])
            })
            .collect()
    };
    rules.insert(libc::SYS_mknod, device(1)?);
    rules.insert(libc::SYS_mknodat, device(2)?);
    // New namespaces through clone's flags.
    let clone_rules = NS_FLAGS
        .iter()
        .map(|f| rule(vec![cond(0, SeccompCmpOp::MaskedEq(*f), *f)?]))
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e}"))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let program: seccompiler::BpfProgram =
        filter.try_into().map_err(|e| format!("seccomp: {e}"))?;
    // clone3 passes its flags in memory the filter cannot read: answer ENOSYS so that libc
    // falls back to clone, whose flags the filter above checks.
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let clone3: seccompiler::BpfProgram = clone3.try_into().map_err(|e| format!("seccomp: {e}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))?;
    seccompiler::apply_filter(&clone3).map_err(|e| format!("seccomp: {e}"))?;
    Ok(())
}
