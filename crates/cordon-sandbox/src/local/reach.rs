//! What a local sandbox may reach: the workspace and the grants are checked, with links
//! resolved, against the host's own directories and cordon's records before anything starts.

use super::SandboxConfig;
use crate::error::SandboxError;
use std::path::{Path, PathBuf};

/// Host directories no grant may be or lie under: their contents are the host's processes,
/// devices and kernel settings.
const HOST_ONLY: &[&str] = &["/proc", "/sys", "/dev", "/run", "/boot"];

/// Why a grant of `path` is refused, if it is: the whole host, or a directory that belongs
/// to the host. Taken as written (`.` and `..` folded, links not followed): a manifest is
/// checked with this before anything exists, and a sandbox again with links resolved.
pub fn grant_refusal(path: &Path) -> Option<String> {
    use std::path::Component;
    let mut folded = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => folded.push(n),
            Component::ParentDir => {
                folded.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if folded == Path::new("/") {
        return Some(
            "would show the sandbox the whole host: grant the directories the task needs".into(),
        );
    }
    HOST_ONLY.iter().find(|h| folded.starts_with(h)).map(|h| {
        format!(
            "is inside {h}, which belongs to the host (processes, devices, kernel settings) and is never granted"
        )
    })
}

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
pub(super) fn check_reach(
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
        if let Some(why) = grant_refusal(&real) {
            return Err(SandboxError::Config(format!("grant {shown} {why}")));
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

#[cfg(test)]
mod tests {
    use super::grant_refusal;
    use std::path::Path;

    #[test]
    fn grants_of_the_host_are_refused_as_written() {
        for refused in [
            "/",
            "/.",
            "/opt/..",
            "//",
            "/proc",
            "/proc/1",
            "/sys/kernel",
            "/dev",
            "/opt/../run/x",
        ] {
            assert!(grant_refusal(Path::new(refused)).is_some(), "{refused}");
        }
        for allowed in ["/opt/data", "/home/u/project", "/procfiles", "/srv/dev"] {
            assert_eq!(grant_refusal(Path::new(allowed)), None, "{allowed}");
        }
    }
}
