//! Isolation tiers: which one to use, and what each promises.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How a sandbox is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// bubblewrap: user, mount, pid, network, IPC and UTS namespaces, an unprivileged uid,
    /// no capabilities; then Landlock, seccomp and rlimits inside.
    Namespaces,
    /// Landlock, seccomp, rlimits and a scrubbed environment, without namespaces: for hosts
    /// that refuse user namespaces. No pid or network namespace.
    Landlock,
    /// No isolation at all: only when asked for by name.
    Unconfined,
}

impl Tier {
    /// The tier's name, as given to `--sandbox`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Namespaces => "namespaces",
            Tier::Landlock => "landlock",
            Tier::Unconfined => "unconfined",
        }
    }

    /// What the tier cannot promise, said plainly: everything it may lack, before it is
    /// known what a sandbox got (see [`Tier::gaps`]).
    pub fn limits(&self) -> &'static [&'static str] {
        match self {
            Tier::Namespaces => &[],
            Tier::Landlock => &[
                "no pid namespace: /proc is not readable at all (so tools that need it, like ps, fail); signals to outside processes are blocked by Landlock scoping",
                "no network namespace: TCP is blocked by Landlock (but for the egress proxy's port, under a policy that lets requests out); UDP is not (this kernel's Landlock has no UDP rules), so UDP needs no proxy: a policy can require the namespaces tier for network access (network_isolation = \"namespaces\")",
                "Unix sockets on the host can be connected to by path (Landlock has no rule for it on this kernel): keep sockets that grant power (docker.sock) away from cordon's user",
                "same uid as cordon: inside the allowed paths, the sandbox can read whatever cordon's user can",
                "read_only manifest entries are not enforced: Landlock cannot take back a right it granted on the workspace",
                "/tmp is not writable: TMPDIR names a private directory instead",
                SECUREBITS_GAP,
                CGROUPS_GAP,
            ],
            Tier::Unconfined => {
                &["no isolation: commands run as cordon's user, with its files and network"]
            }
        }
    }

    /// What a sandbox of this tier that got `applied` cannot promise: [`Tier::limits`] but
    /// for what it did get (locked securebits, cgroups).
    pub fn gaps(&self, applied: &crate::hardening::Applied) -> Vec<&'static str> {
        self.limits()
            .iter()
            .copied()
            .filter(|g| !(*g == SECUREBITS_GAP && applied.securebits_locked))
            .filter(|g| !(*g == CGROUPS_GAP && applied.cgroups.is_some()))
            .collect()
    }
}

/// The landlock tier's gap when started without root.
const SECUREBITS_GAP: &str = "started without root, the bounding set cannot be cleared nor securebits locked: no_new_privs keeps every capability out instead";
/// The landlock tier's gap without cgroups.
const CGROUPS_GAP: &str = "without cgroups (cordon not root), a fork bomb is stopped by RLIMIT_NPROC, which counts all of cordon's user's processes";

/// Which tier to use: the best that works, or one by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierChoice {
    /// Namespaces where user namespaces work, else Landlock; never unconfined.
    Auto,
    /// Exactly this tier, or an error saying why it cannot be had.
    Exactly(Tier),
}

/// The result of probing the host, for `cordon doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The bubblewrap binary, if found.
    pub bwrap: Option<PathBuf>,
    /// Whether bubblewrap could build the namespaces, and why not if not.
    pub namespaces: Result<(), TierUnavailable>,
}

/// Why a tier cannot be had here, in words for `cordon doctor`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct TierUnavailable(pub String);

/// Finds `bwrap` on PATH (or in /usr/bin).
pub fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
}

/// What [`probe_namespaces`] found, once a process.
static NAMESPACES: std::sync::OnceLock<Result<(), TierUnavailable>> = std::sync::OnceLock::new();

/// Whether this process has already found that the namespaces tier cannot work here.
pub fn namespaces_known_unavailable() -> bool {
    NAMESPACES.get().is_some_and(Result::is_err)
}

/// Whether bubblewrap can build the namespaces tier's namespaces here: probed once a process
/// (it runs bubblewrap), off the async runtime's threads.
pub async fn probe_namespaces() -> Result<(), TierUnavailable> {
    if let Some(known) = NAMESPACES.get() {
        return known.clone();
    }
    let found = tokio::task::spawn_blocking(|| probe().namespaces)
        .await
        .unwrap_or_else(|e| Err(TierUnavailable(format!("the probe failed: {e}"))));
    NAMESPACES.get_or_init(|| found).clone()
}

/// Checks whether bubblewrap can build the namespaces the namespaces tier needs (blocking:
/// it runs bubblewrap).
pub fn probe() -> Probe {
    let bwrap = find_bwrap();
    let namespaces = match &bwrap {
        None => Err(TierUnavailable(
            "bubblewrap is not installed (apt-get install bubblewrap)".to_string(),
        )),
        Some(b) => try_namespaces(b),
    };
    Probe { bwrap, namespaces }
}

fn try_namespaces(bwrap: &Path) -> Result<(), TierUnavailable> {
    let out = Command::new(bwrap)
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
        ])
        .args(["--disable-userns", "--die-with-parent", "--cap-drop", "ALL"])
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| TierUnavailable(format!("cannot run {}: {e}", bwrap.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TierUnavailable(format!(
            "bubblewrap cannot create namespaces here ({}): user namespaces are probably not allowed",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardening::Applied;

    #[test]
    fn gaps_leave_out_what_the_sandbox_got() {
        let mut applied = Applied::none();
        let all = Tier::Landlock.gaps(&applied);
        assert_eq!(all, Tier::Landlock.limits());
        applied.securebits_locked = true;
        applied.cgroups = Some("cgroup v1: pids, memory".into());
        let got = Tier::Landlock.gaps(&applied);
        assert_eq!(got.len(), all.len() - 2);
        assert!(
            !got.iter()
                .any(|g| g.contains("securebits") || g.contains("cgroups"))
        );
        assert!(Tier::Namespaces.gaps(&applied).is_empty());
    }
}
