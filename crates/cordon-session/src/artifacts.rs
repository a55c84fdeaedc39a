//! A run's artifacts: the files under its outputs, read from the workspace on this host when
//! the run gives its final answer, each with its size, SHA-256 and media type.
//!
//! The workspace is the sandbox's, so what is in it is untrusted: links are never followed
//! (an output that is a link, or lies under one, is noted and not read), special files are
//! skipped, and at most [`MAX_ARTIFACTS`] files are collected.

use cordon_core::{Artifact, OutputSpec};
use cordon_harness::{ArtifactCollector, Collected};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

/// The most files one run's outputs yield; the rest are counted in a note.
pub const MAX_ARTIFACTS: usize = 10_000;

/// Collects the outputs of a workspace directory on this host.
pub struct WorkspaceOutputs {
    /// The workspace's directory.
    pub dir: PathBuf,
    /// The outputs the run declared.
    pub outputs: Vec<OutputSpec>,
}

impl ArtifactCollector for WorkspaceOutputs {
    fn collect(&self) -> Pin<Box<dyn Future<Output = Result<Collected, String>> + Send + '_>> {
        let dir = self.dir.clone();
        let outputs = self.outputs.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || collect(&dir, &outputs))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Reads the files under `outputs` in the workspace `dir`.
pub fn collect(dir: &Path, outputs: &[OutputSpec]) -> Collected {
    let mut found = Collected::default();
    let mut skipped = 0usize;
    let mut seen = std::collections::HashSet::new();
    for output in outputs {
        let path = output.path.trim_end_matches('/');
        let start = match walk_start(dir, path) {
            Ok(Some(p)) => p,
            Ok(None) => {
                if output.required {
                    found.missing.push(path.to_string());
                }
                continue;
            }
            Err(why) => {
                found.notes.push(format!("{path}: {why}; not collected"));
                if output.required {
                    found.missing.push(format!("{path} ({why})"));
                }
                continue;
            }
        };
        let walk = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    found.notes.push(format!("{path}: {e}"));
                    continue;
                }
            };
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type();
            if kind.is_dir() {
                continue;
            }
            if kind.is_symlink() {
                found
                    .notes
                    .push(format!("{rel} is a link: links are not followed"));
                continue;
            }
            if !kind.is_file() {
                found
                    .notes
                    .push(format!("{rel} is not a regular file: not collected"));
                continue;
            }
            // Outputs may nest (`out` and `out/sub`): a file is collected once.
            if !seen.insert(rel.clone()) {
                continue;
            }
            if found.artifacts.len() >= MAX_ARTIFACTS {
                skipped += 1;
                continue;
            }
            match digest(entry.path()) {
                Ok((bytes, sha256)) => found.artifacts.push(Artifact {
                    media_type: media_type(&rel),
                    path: rel,
                    bytes,
                    sha256,
                }),
                Err(e) => found.notes.push(format!("{rel}: cannot read it: {e}")),
            }
        }
    }
    if skipped > 0 {
        found.notes.push(format!(
            "{skipped} more files were not collected: a run collects at most {MAX_ARTIFACTS}"
        ));
    }
    found
}

/// Where an output's walk starts: `None` when it does not exist; an error when it or a
/// directory above it is a link, or it escapes the workspace.
fn walk_start(dir: &Path, path: &str) -> Result<Option<PathBuf>, String> {
    let mut at = dir.to_path_buf();
    for part in Path::new(path).components() {
        match part {
            std::path::Component::Normal(name) => at.push(name),
            _ => return Err("it is not a plain workspace-relative path".into()),
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a link, and links are not followed",
                    at.strip_prefix(dir).unwrap_or(&at).display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot look at it: {e}")),
        }
    }
    Ok(Some(at))
}

/// A file's size and `sha256:HEX`, read without following a link put in its place.
pub fn digest(path: &Path) -> std::io::Result<(u64, String)> {
    read_hashing(path, None)
}

/// [`digest`], writing what it reads to `copy` too: one read both copies and checks.
fn read_hashing(
    path: &Path,
    mut copy: Option<&mut std::fs::File>,
) -> std::io::Result<(u64, String)> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
        if let Some(out) = copy.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
    }
    Ok((bytes, format!("sha256:{}", hex::encode(hasher.finalize()))))
}

/// The media type a file's name suggests.
fn media_type(path: &str) -> String {
    if path.ends_with(".md") || path.ends_with(".markdown") {
        // mime_guess knows it as text/x-markdown; RFC 7763 registered text/markdown.
        return "text/markdown".into();
    }
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// The artifacts a run recorded: those of its last collection (`None` when it collected
/// none), read from its events.
pub fn recorded(events: &[cordon_core::Event]) -> Option<Vec<Artifact>> {
    events.iter().rev().find_map(|e| {
        match cordon_core::EventPayload::from_parts(&e.kind, &e.payload) {
            Ok(cordon_core::EventPayload::ArtifactsCollected { artifacts, .. }) => Some(artifacts),
            _ => None,
        }
    })
}

/// Where an exported artifact's content came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "id")]
pub enum Source {
    /// The run's workspace, where the file still has the recorded content.
    Workspace,
    /// A snapshot one of the run's checkpoints took.
    Snapshot(String),
}

/// One artifact written by [`export`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    /// The artifact as recorded.
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Where its content came from.
    pub source: Source,
}

/// What [`export`] did: the artifacts it wrote, and those it could not, with why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportReport {
    /// Written, each checked against its recorded digest.
    pub written: Vec<Exported>,
    /// Not written: (recorded path, why).
    pub not_written: Vec<(String, String)>,
}

/// Writes the artifacts a run recorded into `to` (a new or empty directory), each checked
/// against its recorded SHA-256: from the run's workspace when the file there is unchanged,
/// else from the newest checkpoint snapshot that holds it. An artifact that cannot be
/// written (its content is gone, or its name held a secret and was redacted in the record)
/// is reported and the others are written.
pub async fn export(
    events: &[cordon_core::Event],
    snapshots: &crate::Snapshots,
    to: &Path,
) -> Result<ExportReport, crate::SessionError> {
    use crate::SessionError;
    let artifacts = recorded(events).ok_or_else(|| {
        SessionError::bad_input(
            "the run collected no artifacts",
            "a run collects the manifest's `outputs` when it completes; declare them in the manifest",
        )
    })?;
    match std::fs::read_dir(to).map(|mut entries| entries.next().is_some()) {
        Ok(true) => {
            return Err(SessionError::bad_input(
                format!("{} is not empty", to.display()),
                "give a new or empty directory, so no file of yours is overwritten",
            ));
        }
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(SessionError::bad_input(
                format!("cannot use {}: {e}", to.display()),
                "give a new or empty directory",
            ));
        }
    }
    let failed = |m: String| SessionError::new(crate::ErrorKind::Failed, m);
    std::fs::create_dir_all(to)
        .map_err(|e| failed(format!("cannot create {}: {e}", to.display())))?;
    let workspace = crate::last_workspace(events);
    let checkpoints: Vec<String> = events
        .iter()
        .rev()
        .filter_map(
            |e| match cordon_core::EventPayload::from_parts(&e.kind, &e.payload) {
                Ok(cordon_core::EventPayload::Checkpoint { snapshot_id, .. }) => Some(snapshot_id),
                _ => None,
            },
        )
        .collect();
    let mut listings = Vec::new();
    let mut out = ExportReport::default();
    for artifact in artifacts {
        if artifact.path.contains("[redacted: ") {
            out.not_written.push((
                artifact.path.clone(),
                "its name held a secret, which the record replaced, so where it was is not known"
                    .into(),
            ));
            continue;
        }
        // A stored row is untrusted: the path must stay inside `to`.
        let rel = Path::new(&artifact.path);
        if artifact.path.is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(failed(format!(
                "the recorded artifact path '{}' is not a plain relative path: the record is damaged",
                artifact.path
            )));
        }
        let target = to.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        let in_workspace = workspace
            .as_ref()
            .and_then(|dir| walk_start(dir, &artifact.path).ok().flatten());
        if let Some(path) = in_workspace {
            let mut dst = std::fs::File::create(&target)
                .map_err(|e| failed(format!("cannot write {}: {e}", target.display())))?;
            // Copied and hashed in one read: what is written is what was checked.
            let copied = read_hashing(&path, Some(&mut dst));
            if copied.map(|(_, s)| s).ok().as_deref() == Some(artifact.sha256.as_str()) {
                out.written.push(Exported {
                    artifact,
                    source: Source::Workspace,
                });
                continue;
            }
        }
        if listings.is_empty() {
            for id in &checkpoints {
                if let Ok(s) = snapshots.load(id).await {
                    listings.push(s);
                }
            }
        }
        let mut found = None;
        for snap in &listings {
            let Some(entry) = snap
                .entries
                .iter()
                .find(|e| e.path == artifact.path && e.kind == cordon_store::snapshot::Kind::File)
            else {
                continue;
            };
            let Some(bytes) = entry
                .hash
                .as_deref()
                .and_then(|h| snapshots.local.read_content(h).ok())
            else {
                continue;
            };
            let sha = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            if sha == artifact.sha256 {
                found = Some((snap.id.clone(), bytes));
                break;
            }
        }
        let Some((id, bytes)) = found else {
            let _ = std::fs::remove_file(&target);
            out.not_written.push((
                artifact.path.clone(),
                format!(
                    "neither the workspace nor any of the run's checkpoints holds the content it had ({}): it changed after the run, and no checkpoint took it",
                    artifact.sha256
                ),
            ));
            continue;
        };
        std::fs::write(&target, bytes)
            .map_err(|e| failed(format!("cannot write {}: {e}", target.display())))?;
        out.written.push(Exported {
            artifact,
            source: Source::Snapshot(id),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_read_without_following_links_and_required_ones_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("out/sub")).unwrap();
        std::fs::write(ws.join("out/report.md"), "# hi\n").unwrap();
        std::fs::write(ws.join("out/sub/data.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "host secret").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", ws.join("out/leak")).unwrap();
        std::os::unix::fs::symlink(ws.join("out"), ws.join("linked")).unwrap();
        let spec = |path: &str, required| OutputSpec {
            path: path.into(),
            required,
        };
        let c = collect(
            ws,
            &[
                spec("out", false),
                spec("out/sub", false),
                spec("summary.md", true),
                spec("linked", true),
                spec("../secret", false),
            ],
        );
        let paths: Vec<_> = c.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["out/report.md", "out/sub/data.json"]);
        assert_eq!(c.artifacts[0].media_type, "text/markdown");
        assert_eq!(c.artifacts[1].media_type, "application/json");
        assert_eq!(c.artifacts[0].bytes, 5);
        assert_eq!(
            c.artifacts[0].sha256,
            format!("sha256:{}", hex::encode(Sha256::digest(b"# hi\n")))
        );
        assert_eq!(c.missing[0], "summary.md");
        assert!(
            c.missing[1].starts_with("linked (linked is a link"),
            "{:?}",
            c.missing
        );
        let notes = c.notes.join("\n");
        assert!(notes.contains("out/leak is a link"), "{notes}");
        assert!(notes.contains("linked is a link"), "{notes}");
        assert!(notes.contains("../secret: it is not a plain"), "{notes}");
    }
}
