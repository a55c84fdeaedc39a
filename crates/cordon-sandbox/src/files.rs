//! File requests, served by the supervisor inside the sandbox: paths stay in the workspace.

use crate::protocol::{self, DirEntry, Reply};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// `path` inside `workspace`: no `..` anywhere, absolute only under the workspace, its
/// parent directory resolved through symlinks and still inside, and the last component not
/// a symlink (so a link cannot send a read or write elsewhere).
pub fn resolve(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    resolve_existing(workspace, path)?
        .ok_or_else(|| format!("'{path}': its directory does not exist"))
}

/// Like [`resolve`], but `None` when a directory on the way does not exist (so neither
/// does the file).
pub fn resolve_existing(workspace: &Path, path: &str) -> Result<Option<PathBuf>, String> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "'{path}' has a '..' component; give a path inside the workspace"
        ));
    }
    let rel = if p.is_absolute() {
        p.strip_prefix(workspace)
            .map_err(|_| format!("'{path}' is outside the workspace {}", workspace.display()))?
    } else {
        p
    };
    let root = std::fs::canonicalize(workspace).map_err(|e| format!("workspace: {e}"))?;
    let full = root.join(rel);
    let name = match full.file_name() {
        Some(n) if full != root => n.to_owned(),
        _ => return Ok(Some(root)),
    };
    let parent = full.parent().unwrap_or(&root);
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("'{path}': its directory: {e}")),
    };
    if !parent.starts_with(&root) {
        return Err(format!(
            "'{path}' leads outside the workspace through a symlink"
        ));
    }
    let resolved = parent.join(name);
    if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "'{path}' is a symlink; cordon does not follow links for file requests"
        ));
    }
    Ok(Some(resolved))
}

/// Serves one file request.
pub fn serve(workspace: &Path, request: FileRequest) -> Reply {
    let id = request.id();
    let result = match request {
        FileRequest::Read { path, .. } => {
            resolve_existing(workspace, &path).and_then(|p| match p.map(std::fs::read) {
                Some(Ok(data)) => Ok(Reply::File {
                    id,
                    data: Some(protocol::encode(&data)),
                }),
                None => Ok(Reply::File { id, data: None }),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Reply::File { id, data: None })
                }
                Some(Err(e)) => Err(format!("read '{path}': {e}")),
            })
        }
        FileRequest::Write {
            path, data, mode, ..
        } => write(workspace, &path, &data, mode).map(|()| Reply::Done { id }),
        FileRequest::MakeDir { path, mode, .. } => {
            make_dir(workspace, &path, mode).map(|()| Reply::Done { id })
        }
        FileRequest::List { path, .. } => resolve(workspace, &path)
            .and_then(|p| list(&p).map(|entries| Reply::Entries { id, entries })),
        FileRequest::Remove {
            path, recursive, ..
        } => resolve(workspace, &path).and_then(|p| {
            if p == std::fs::canonicalize(workspace).unwrap_or_default() {
                return Err("refusing to remove the workspace itself".into());
            }
            let meta =
                std::fs::symlink_metadata(&p).map_err(|e| format!("remove '{path}': {e}"))?;
            let done = if meta.is_dir() && recursive {
                std::fs::remove_dir_all(&p)
            } else if meta.is_dir() {
                std::fs::remove_dir(&p)
            } else {
                std::fs::remove_file(&p)
            };
            done.map(|_| Reply::Done { id })
                .map_err(|e| format!("remove '{path}': {e}"))
        }),
    };
    result.unwrap_or_else(|message| Reply::Error {
        id: Some(id),
        message,
    })
}

fn write(workspace: &Path, path: &str, data: &str, mode: Option<u32>) -> Result<(), String> {
    let bytes = protocol::decode(data).map_err(|e| e.to_string())?;
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    std::fs::write(&p, bytes).map_err(|e| format!("write '{path}': {e}"))?;
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(|e| format!("chmod '{path}': {e}"))?;
    }
    Ok(())
}

fn make_dir(workspace: &Path, path: &str, mode: Option<u32>) -> Result<(), String> {
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    if !p.is_dir() {
        std::fs::create_dir(&p).map_err(|e| format!("make directory '{path}': {e}"))?;
    }
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(|e| format!("chmod '{path}': {e}"))?;
    }
    Ok(())
}

/// Creates the directories above `path` one at a time, each resolved (so no symlink can
/// send them elsewhere) before it is made.
pub fn make_parents(workspace: &Path, path: &str) -> Result<(), String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(workspace).unwrap_or(p)
    } else {
        p
    };
    let mut prefix = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        prefix.push(c);
        let dir = resolve(workspace, &prefix.to_string_lossy())?;
        if !dir.is_dir() {
            std::fs::create_dir(&dir)
                .map_err(|e| format!("write '{path}': make {}: {e}", prefix.display()))?;
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<DirEntry>, String> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("list '{}': {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let meta = e.path().symlink_metadata().map_err(|e| e.to_string())?;
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        entries.push(DirEntry {
            name: e.file_name().to_string_lossy().into_owned(),
            kind: kind.into(),
            size: meta.size(),
            mode: meta.mode() & 0o7777,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The file requests, taken out of [`crate::protocol::Request`].
pub enum FileRequest {
    /// Read.
    Read {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
    },
    /// Write.
    Write {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Base64 content.
        data: String,
        /// Mode.
        mode: Option<u32>,
    },
    /// Make a directory.
    MakeDir {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Mode.
        mode: Option<u32>,
    },
    /// List.
    List {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
    },
    /// Remove.
    Remove {
        /// Request id.
        id: u64,
        /// Path.
        path: String,
        /// Recursively.
        recursive: bool,
    },
}

impl FileRequest {
    fn id(&self) -> u64 {
        match self {
            FileRequest::Read { id, .. }
            | FileRequest::Write { id, .. }
            | FileRequest::MakeDir { id, .. }
            | FileRequest::List { id, .. }
            | FileRequest::Remove { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("pw")).unwrap();
        assert_eq!(resolve(&root, "d/x").unwrap(), root.join("d/x"));
        assert_eq!(
            resolve(&root, &root.join("d").display().to_string()).unwrap(),
            root.join("d")
        );
        for bad in ["../x", "d/../../x", "/etc/passwd", "etc/passwd", "pw"] {
            assert!(resolve(&root, bad).is_err(), "{bad} was accepted");
        }
    }
}
