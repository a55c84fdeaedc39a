//! What a local sandbox may reach: the workspace and the grants are checked, with links
//! resolved, against the host's own directories and cordon's records before anything starts.

use super::SandboxConfig;
use crate::error::SandboxError;
use std::path::{Path, PathBuf};

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
