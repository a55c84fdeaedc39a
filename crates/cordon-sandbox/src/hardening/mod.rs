//! Confinement the supervisor applies to itself before it runs anything, so that every
//! command inherits it: every capability dropped ([`caps`]), Landlock ([`landlock`]), a
//! seccomp filter ([`seccomp`]), rlimits.
//!
//! What to apply is worked out by pure functions (the Landlock plan, the seccomp rules), so
//! that tests can read them; [`apply`] only carries them out.

pub mod caps;
pub mod landlock;
pub mod seccomp;

use serde::{Deserialize, Serialize};

/// What to confine, sent by the harness in the first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardening {
    /// Paths the sandbox may read and execute.
    pub read_only: Vec<String>,
    /// Paths the sandbox may read, write and execute.
    pub read_write: Vec<String>,
    /// Refuse every TCP bind and connect (for tiers without a network namespace).
    pub block_tcp: bool,
    /// With `block_tcp`, the one port TCP may still connect to (the egress proxy's, on the
    /// host's loopback).
    #[serde(default)]
    pub tcp_connect: Option<u16>,
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

/// Why the supervisor could not confine itself (it then runs nothing).
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    /// An rlimit could not be set.
    #[error("setrlimit {name}: {source}")]
    Rlimit {
        /// The limit.
        name: &'static str,
        /// What the kernel said.
        source: nix::Error,
    },
    /// The Landlock ruleset could not be made or applied.
    #[error("landlock: {0}")]
    Landlock(#[from] ::landlock::RulesetError),
    /// The seccomp filter could not be built.
    #[error("seccomp: {0}")]
    SeccompBuild(#[from] seccompiler::BackendError),
    /// The seccomp filter could not be installed.
    #[error("seccomp: {0}")]
    SeccompInstall(#[from] seccompiler::Error),
    /// A capability operation failed.
    #[error("capabilities: {what}: {source}")]
    Capabilities {
        /// What was being done.
        what: &'static str,
        /// What the kernel said.
        source: capctl::Error,
    },
    /// Capabilities remained after dropping them all.
    #[error("capabilities: some remain after dropping them all ({0})")]
    CapabilitiesLeft(String),
}

/// Applies everything to the calling process. Call it while single-threaded, before any
/// runtime starts, so every later thread and child inherits it.
pub fn apply(h: &Hardening) -> Result<Applied, HardeningError> {
    set_limits(&h.limits)?;
    let securebits_locked = caps::drop_all()?;
    let (landlock, landlock_abi) = landlock::apply(&landlock::plan(h))?;
    seccomp::install(&seccomp::rules())?;
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

/// The rlimits to set: (name, resource, value), in order.
pub fn rlimits(l: &Limits) -> Vec<(&'static str, nix::sys::resource::Resource, u64)> {
    use nix::sys::resource::Resource;
    vec![
        ("core", Resource::RLIMIT_CORE, 0),
        ("nproc", Resource::RLIMIT_NPROC, l.max_processes),
        ("as", Resource::RLIMIT_AS, l.address_space),
        ("fsize", Resource::RLIMIT_FSIZE, l.file_size),
        ("nofile", Resource::RLIMIT_NOFILE, l.open_files),
        ("cpu", Resource::RLIMIT_CPU, l.cpu_seconds),
    ]
}

fn set_limits(l: &Limits) -> Result<(), HardeningError> {
    for (name, resource, value) in rlimits(l) {
        nix::sys::resource::setrlimit(resource, value, value)
            .map_err(|source| HardeningError::Rlimit { name, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_are_off_and_every_limit_is_set() {
        let l = Limits::default();
        let set = rlimits(&l);
        assert_eq!(
            set[0],
            ("core", nix::sys::resource::Resource::RLIMIT_CORE, 0)
        );
        assert_eq!(set.len(), 6);
        assert!(
            set.iter()
                .any(|(n, _, v)| *n == "nproc" && *v == l.max_processes)
        );
    }
}
