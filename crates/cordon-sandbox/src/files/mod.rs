//! File requests, served by the supervisor inside the sandbox: paths stay in the workspace,
//! and nothing is read or written through a link.

mod commit;

pub use commit::{Change, Step, commit, commit_with};

use crate::protocol::{self, DirEntry, Reply};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a file request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path leaves the workspace, has a `..`, or would go through a link.
    #[error("'{path}' {reason}")]
    Refused {
        /// The path as given.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The path as given.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The request itself does not make sense (content that is not base64, a path changed
    /// twice in one commit).
    #[error("{0}")]
    Malformed(String),
    /// A commit failed, and undoing it failed too.
    #[error("{cause}; undoing it also failed, so these may have changed: {}", .left.join(", "))]
    UndoFailed {
        /// Why the commit failed.
        cause: Box<FileError>,
        /// What could not be put back.
        left: Vec<String>,
    },
}

impl FileError {
    fn refused(path: &str, reason: impl Into<String>) -> Self {
        FileError::Refused {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    fn io(action: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> FileError {
        let path = path.to_string();
        move |source| FileError::Io {
            action,
            path,
            source,
        }
    }
}

/// `path` inside `workspace`: no `..` anywhere, absolute only under the workspace, its
/// parent directory resolved through symlinks and still inside, and the last component not
/// a symlink (so a link cannot send a read or write elsewhere).
pub fn resolve(workspace: &Path, path: &str) -> Result<PathBuf, FileError> {
    resolve_existing(workspace, path)?
        .ok_or_else(|| FileError::refused(path, "is in a directory that does not exist"))
}

/// Like [`resolve`], but `None` when a directory on the way does not exist (so neither
/// does the file).
pub fn resolve_existing(workspace: &Path, path: &str) -> Result<Option<PathBuf>, FileError> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(FileError::refused(
            path,
            "has a '..' component; give a path inside the workspace",
        ));
    }
    let rel = if p.is_absolute() {
        p.strip_prefix(workspace).map_err(|_| {
            FileError::refused(
                path,
                format!("is outside the workspace {}", workspace.display()),
            )
        })?
    } else {
        p
    };
    let root = std::fs::canonicalize(workspace).map_err(FileError::io(
        "open the workspace",
        &workspace.display().to_string(),
    ))?;
    let full = root.join(rel);
    let name = match full.file_name() {
        Some(n) if full != root => n.to_owned(),
        _ => return Ok(Some(root)),
    };
    let parent = full.parent().unwrap_or(&root);
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::io("open the directory of", path)(e)),
    };
    if !parent.starts_with(&root) {
        return Err(FileError::refused(
            path,
            "leads outside the workspace through a symlink",
        ));
    }
    let resolved = parent.join(name);
    if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(FileError::refused(
            path,
            "is a symlink; cordon does not follow links for file requests",
        ));
    }
    Ok(Some(resolved))
}

/// Serves one file request.
pub fn serve(workspace: &Path, request: FileRequest) -> Reply {
    let id = request.id();
    let result = match request {
        FileRequest::Read { path, .. } => read(workspace, &path).map(|data| Reply::File {
            id,
            data: data.map(|d| protocol::encode(&d)),
        }),
        FileRequest::Write {
            path, data, mode, ..
        } => write(workspace, &path, &data, mode).map(|()| Reply::Done { id }),
        FileRequest::MakeDir { path, mode, .. } => {
            make_dir(workspace, &path, mode).map(|()| Reply::Done { id })
        }
        FileRequest::Symlink { path, target, .. } => {
            symlink(workspace, &path, &target).map(|()| Reply::Done { id })
        }
        FileRequest::Commit { changes, .. } => changes
            .into_iter()
            .map(|c| {
                let data = c
                    .data
                    .map(|d| protocol::decode(&d).map_err(|e| FileError::Malformed(e.to_string())))
                    .transpose()?;
                Ok(Change {
                    path: c.path,
                    data,
                    mode: c.mode,
                })
            })
            .collect::<Result<Vec<_>, FileError>>()
            .and_then(|changes| commit(workspace, &changes))
            .map(|()| Reply::Done { id }),
        FileRequest::List { path, .. } => resolve(workspace, &path)
            .and_then(|p| list(&p, &path).map(|entries| Reply::Entries { id, entries })),
        FileRequest::Remove {
            path, recursive, ..
        } => remove(workspace, &path, recursive).map(|()| Reply::Done { id }),
    };
    result.unwrap_or_else(|e| Reply::Error {
        id: Some(id),
        message: e.to_string(),
    })
}

/// A file's content; `None` if there is no such file.
fn read(workspace: &Path, path: &str) -> Result<Option<Vec<u8>>, FileError> {
    match resolve_existing(workspace, path)?.map(std::fs::read) {
        None => Ok(None),
        Some(Ok(data)) => Ok(Some(data)),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Some(Err(e)) => Err(FileError::io("read", path)(e)),
    }
}

fn remove(workspace: &Path, path: &str, recursive: bool) -> Result<(), FileError> {
    let p = resolve(workspace, path)?;
    if std::fs::canonicalize(workspace).is_ok_and(|w| w == p) {
        return Err(FileError::refused(
            path,
            "is the workspace itself, which stays",
        ));
    }
    let meta = std::fs::symlink_metadata(&p).map_err(FileError::io("remove", path))?;
    let done = if meta.is_dir() && recursive {
        std::fs::remove_dir_all(&p)
    } else if meta.is_dir() {
        std::fs::remove_dir(&p)
    } else {
        std::fs::remove_file(&p)
    };
    done.map_err(FileError::io("remove", path))
}

fn write(workspace: &Path, path: &str, data: &str, mode: Option<u32>) -> Result<(), FileError> {
    let bytes = protocol::decode(data).map_err(|e| FileError::Malformed(e.to_string()))?;
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    std::fs::write(&p, bytes).map_err(FileError::io("write", path))?;
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(FileError::io("chmod", path))?;
    }
    Ok(())
}

/// Makes a link at `path` (its directories made first) pointing at `target` as given.
fn symlink(workspace: &Path, path: &str, target: &str) -> Result<(), FileError> {
    if target.is_empty() || target.contains('\0') {
        return Err(FileError::refused(
            path,
            "is a link whose target is empty or not text",
        ));
    }
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    std::os::unix::fs::symlink(target, &p).map_err(FileError::io("make the link", path))
}

fn make_dir(workspace: &Path, path: &str, mode: Option<u32>) -> Result<(), FileError> {
    make_parents(workspace, path)?;
    let p = resolve(workspace, path)?;
    if !p.is_dir() {
        std::fs::create_dir(&p).map_err(FileError::io("make the directory", path))?;
    }
    if let Some(m) = mode {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o777))
            .map_err(FileError::io("chmod", path))?;
    }
    Ok(())
}

/// Creates the directories above `path` one at a time, each resolved (so no symlink can
/// send them elsewhere) before it is made.
pub fn make_parents(workspace: &Path, path: &str) -> Result<(), FileError> {
    make_parents_with(workspace, path, &mut |dir, shown| {
        std::fs::create_dir(dir).map_err(FileError::io("make the directory", shown))
    })
}

/// [`make_parents`], making each missing directory with `make` (given its resolved path and
/// its path as given).
pub(crate) fn make_parents_with(
    workspace: &Path,
    path: &str,
    make: &mut dyn FnMut(&Path, &str) -> Result<(), FileError>,
) -> Result<(), FileError> {
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
        let shown = prefix.to_string_lossy().into_owned();
        let dir = resolve(workspace, &shown)?;
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(FileError::refused(
                    &shown,
                    format!("exists and is not a directory, so '{path}' cannot be made"),
                ));
            }
            Err(_) => make(&dir, &shown)?,
        }
    }
    Ok(())
}

fn list(dir: &Path, shown: &str) -> Result<Vec<DirEntry>, FileError> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(FileError::io("list", shown))? {
        let e = e.map_err(FileError::io("list", shown))?;
        let meta = e
            .path()
            .symlink_metadata()
            .map_err(FileError::io("list", shown))?;
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
    /// Make a symbolic link.
    Symlink {
        /// Request id.
        id: u64,
        /// Path of the link.
        path: String,
        /// Its target, verbatim.
        target: String,
    },
    /// Apply changes all or nothing.
    Commit {
        /// Request id.
        id: u64,
        /// The changes, their content in base64.
        changes: Vec<protocol::FileChange>,
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
            | FileRequest::Commit { id, .. }
            | FileRequest::Symlink { id, .. }
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
