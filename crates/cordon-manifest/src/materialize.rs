//! Putting a manifest's entries into a sandbox's workspace: in parallel with a bound, each
//! with a receipt (digest, size) for the run log.

use crate::validate::{Entry, EntryKind, Manifest};
use cordon_core::Progress;
use cordon_sandbox::Sandbox;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many entries are materialized at once.
const PARALLEL_ENTRIES: usize = 8;
/// How many files of one directory are written at once.
const PARALLEL_FILES: usize = 16;
/// The longest a git clone may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// What one entry put in the workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    /// The entry's workspace path.
    pub path: String,
    /// The entry's type.
    pub kind: String,
    /// SHA-256 of the content (for a directory: of its sorted paths, modes and file digests).
    pub digest: String,
    /// Bytes written.
    pub bytes: u64,
    /// Files written.
    pub files: u64,
}

/// Why materialization stopped.
#[derive(Debug, thiserror::Error)]
#[error("entry '{path}': {source}")]
pub struct MaterializeError {
    /// The entry.
    pub path: String,
    /// What went wrong.
    pub source: EntryError,
}

impl MaterializeError {
    /// Whether the manifest asked for something that cannot be (a source outside what it
    /// may read, or one that does not exist, a bad ignore pattern), as opposed to a failure
    /// on the way (a sandbox request, a clone, a download).
    pub fn is_bad_input(&self) -> bool {
        match &self.source {
            EntryError::Outside { .. } | EntryError::Glob(_) => true,
            EntryError::Host { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// What went wrong with one entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// A host file or directory could not be read.
    #[error("{what} {path}: {source}")]
    Host {
        /// What was being done.
        what: &'static str,
        /// The host path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A source lies outside the manifest's directory and every grant.
    #[error(
        "source {given} resolves to {real}, outside the manifest's directory {base} and every grant"
    )]
    Outside {
        /// The source as given.
        given: PathBuf,
        /// Where it resolves.
        real: PathBuf,
        /// The manifest's directory.
        base: PathBuf,
    },
    /// The sandbox refused or failed a request.
    #[error(transparent)]
    Sandbox(#[from] cordon_sandbox::SandboxError),
    /// The sandbox refused or failed a request about this path.
    #[error("{path}: {source}")]
    InSandbox {
        /// The path inside the entry.
        path: String,
        /// What the sandbox said.
        source: cordon_sandbox::SandboxError,
    },
    /// An ignore pattern is not a glob.
    #[error("ignore pattern: {0}")]
    Glob(#[from] globset::Error),
    /// A directory could not be walked.
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
    /// A name is not UTF-8.
    #[error("{0}: the name is not UTF-8, which a workspace path must be")]
    NotUtf8(PathBuf),
    /// git failed (its own message).
    #[error("git: {0}")]
    Git(String),
    /// Object storage failed.
    #[error("{what} {location}: {source}")]
    Object {
        /// What was being done.
        what: &'static str,
        /// Where.
        location: String,
        /// What the store said.
        source: object_store::Error,
    },
    /// The object store provider is not one cordon knows.
    #[error("unknown provider '{0}'")]
    UnknownProvider(String),
    /// An object's key cannot be a workspace path.
    #[error("object key '{0}' does not make a safe workspace path")]
    UnsafeKey(String),
    /// A background task failed.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Wraps a sandbox error with the path inside the entry it was about.
fn inside(rel: &str) -> impl FnOnce(cordon_sandbox::SandboxError) -> EntryError {
    let path = rel.to_string();
    move |source| EntryError::InSandbox { path, source }
}

impl EntryError {
    fn host(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EntryError {
        let path = path.to_path_buf();
        move |source| EntryError::Host { what, path, source }
    }
}

/// Writes every entry of `manifest` into `sandbox`, and the outputs' directories.
pub async fn materialize(
    manifest: &Manifest,
    sandbox: &dyn Sandbox,
    progress: &dyn Progress,
) -> Result<Vec<Receipt>, MaterializeError> {
    progress.begin("building the workspace", None);
    let built = build(manifest, sandbox, progress).await;
    progress.end();
    built
}

/// [`materialize`], telling `progress` of each file written.
async fn build(
    manifest: &Manifest,
    sandbox: &dyn Sandbox,
    progress: &dyn Progress,
) -> Result<Vec<Receipt>, MaterializeError> {
    // Directories first, so entries nested in them find them with their modes.
    for e in manifest.entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        sandbox
            .make_dir(&e.path, e.mode)
            .await
            .map_err(|err| fail(&e.path, err))?;
    }
    for o in manifest.outputs.iter().filter(|o| o.made) {
        sandbox
            .make_dir(&o.path, None)
            .await
            .map_err(|err| fail(&o.path, err))?;
    }
    // Made before they are streamed: a lazy map would keep a closure in this future that
    // stops it from being sent between threads in some callers (a sub-agent's run).
    let jobs: Vec<_> = manifest
        .entries
        .iter()
        .map(|e| entry(manifest, sandbox, e, progress))
        .collect();
    let mut receipts: Vec<Receipt> = futures::stream::iter(jobs)
        .buffer_unordered(PARALLEL_ENTRIES)
        .try_collect()
        .await?;
    receipts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(receipts)
}

fn fail(path: &str, err: impl Into<EntryError>) -> MaterializeError {
    MaterializeError {
        path: path.to_string(),
        source: err.into(),
    }
}

async fn entry(
    m: &Manifest,
    sandbox: &dyn Sandbox,
    e: &Entry,
    progress: &dyn Progress,
) -> Result<Receipt, MaterializeError> {
    let receipt = |digest: String, bytes: u64, files: u64| Receipt {
        path: e.path.clone(),
        kind: e.kind.name().into(),
        digest,
        bytes,
        files,
    };
    match &e.kind {
        EntryKind::Dir => Ok(receipt(hex::encode(Sha256::digest(b"")), 0, 0)),
        EntryKind::File(bytes) => {
            sandbox
                .write_file(&e.path, bytes, e.mode)
                .await
                .map_err(|err| fail(&e.path, err))?;
            progress.advance(1);
            Ok(receipt(
                hex::encode(Sha256::digest(bytes)),
                bytes.len() as u64,
                1,
            ))
        }
        EntryKind::LocalFile { source } => {
            let source = allowed_source(m, source).map_err(|err| fail(&e.path, err))?;
            let bytes = tokio::fs::read(&source)
                .await
                .map_err(|err| fail(&e.path, EntryError::host("read", &source)(err)))?;
            let mode = e.mode.or_else(|| {
                std::fs::metadata(&source)
                    .ok()
                    .map(|md| md.permissions().mode() & 0o777)
            });
            sandbox
                .write_file(&e.path, &bytes, mode)
                .await
                .map_err(|err| fail(&e.path, err))?;
            progress.advance(1);
            Ok(receipt(
                hex::encode(Sha256::digest(&bytes)),
                bytes.len() as u64,
                1,
            ))
        }
        EntryKind::LocalDir { source, ignore } => {
            let source = allowed_source(m, source).map_err(|err| fail(&e.path, err))?;
            let (digest, bytes, files) = copy_dir(sandbox, &source, &e.path, ignore, progress)
                .await
                .map_err(|err| fail(&e.path, err))?;
            Ok(receipt(digest, bytes, files))
        }
        EntryKind::GitRepo {
            url,
            git_ref,
            commit,
            subpath,
            depth,
        } => {
            let clone = clone(url, git_ref.as_deref(), commit.as_deref(), *depth)
                .await
                .map_err(|err| fail(&e.path, err))?;
            let from = match subpath {
                Some(sub) => clone.path().join(sub),
                None => clone.path().to_path_buf(),
            };
            let (digest, bytes, files) = copy_dir(sandbox, &from, &e.path, &[], progress)
                .await
                .map_err(|err| fail(&e.path, err))?;
            Ok(receipt(digest, bytes, files))
        }
        EntryKind::ObjectStore {
            provider,
            bucket,
            prefix,
            endpoint,
            region,
        } => {
            let loc = crate::objects::Location {
                provider,
                bucket,
                prefix,
                endpoint: endpoint.as_deref(),
                region: region.as_deref(),
            };
            let (digest, bytes, files) = crate::objects::copy_prefix(sandbox, &e.path, &loc)
                .await
                .map_err(|err| fail(&e.path, err))?;
            progress.advance(files);
            Ok(receipt(digest, bytes, files))
        }
    }
}

/// `source`, resolved through symlinks, if it lies under the manifest's directory or a grant.
fn allowed_source(m: &Manifest, source: &Path) -> Result<PathBuf, EntryError> {
    let real = std::fs::canonicalize(source).map_err(EntryError::host("source", source))?;
    if crate::validate::source_allowed(m, &real) {
        Ok(real)
    } else {
        Err(EntryError::Outside {
            given: source.to_path_buf(),
            real,
            base: m.base_dir.clone(),
        })
    }
}

/// What a source directory holds: its directories (with modes), files and links.
struct Listing {
    dirs: Vec<(String, u32)>,
    files: Vec<Found>,
    /// (path, target): links, copied as links.
    links: Vec<(String, String)>,
}

/// One file found under a source directory.
struct Found {
    rel: String,
    path: PathBuf,
    mode: u32,
}

/// Copies a host directory into the sandbox at `dest`; returns (digest, bytes, files).
async fn copy_dir(
    sandbox: &dyn Sandbox,
    source: &Path,
    dest: &str,
    ignore: &[String],
    progress: &dyn Progress,
) -> Result<(String, u64, u64), EntryError> {
    let mut globs = globset::GlobSetBuilder::new();
    for g in ignore {
        globs.add(globset::Glob::new(g.trim_end_matches('/'))?);
    }
    let globs = globs.build()?;
    let root = std::fs::canonicalize(source).map_err(EntryError::host("open", source))?;
    let walk_root = root.clone();
    let Listing { dirs, files, links } =
        tokio::task::spawn_blocking(move || walk(&walk_root, &globs)).await??;
    sandbox.make_dir(dest, None).await?;
    for (rel, mode) in &dirs {
        sandbox
            .make_dir(&format!("{dest}/{rel}"), Some(*mode))
            .await
            .map_err(inside(rel))?;
    }
    for (rel, target) in &links {
        sandbox
            .symlink(&format!("{dest}/{rel}"), target)
            .await
            .map_err(inside(rel))?;
    }
    let written: Vec<(String, String, u32, u64)> =
        futures::stream::iter(files.into_iter().map(|f| async move {
            let bytes = tokio::fs::read(&f.path)
                .await
                .map_err(EntryError::host("read", &f.path))?;
            sandbox
                .write_file(&format!("{dest}/{}", f.rel), &bytes, Some(f.mode))
                .await
                .map_err(inside(&f.rel))?;
            progress.advance(1);
            Ok::<_, EntryError>((
                f.rel,
                hex::encode(Sha256::digest(&bytes)),
                f.mode,
                bytes.len() as u64,
            ))
        }))
        .buffer_unordered(PARALLEL_FILES)
        .try_collect()
        .await?;
    let mut listing: Vec<String> = written
        .iter()
        .map(|(rel, d, mode, _)| format!("{rel}\0{mode:o}\0{d}"))
        .collect();
    listing.extend(dirs.iter().map(|(rel, mode)| format!("{rel}/\0{mode:o}")));
    listing.extend(links.iter().map(|(rel, t)| format!("{rel}\0link\0{t}")));
    listing.sort();
    let digest = hex::encode(Sha256::digest(listing.join("\n").as_bytes()));
    Ok((
        digest,
        written.iter().map(|w| w.3).sum(),
        written.len() as u64,
    ))
}

/// Every directory, file and link under `root` that no glob ignores. Links are never
/// followed: each is copied as a link, verbatim (so a link to `.` cannot loop, and nothing
/// is read through one). Devices, fifos and sockets are left out.
fn walk(root: &Path, ignore: &globset::GlobSet) -> Result<Listing, EntryError> {
    let mut listing = Listing {
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
    };
    let entries = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            !(ignore.is_match(rel) || ignore.is_match(e.file_name()))
        });
    for entry in entries {
        let entry = entry?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_str()
            .ok_or_else(|| EntryError::NotUtf8(entry.path().to_path_buf()))?
            .to_string();
        let ft = entry.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(EntryError::host("read the link", entry.path()))?;
            let target = target
                .to_str()
                .ok_or_else(|| EntryError::NotUtf8(target.clone()))?
                .to_string();
            listing.links.push((rel, target));
        } else if ft.is_dir() {
            let mode = entry.metadata()?.permissions().mode() & 0o777;
            listing.dirs.push((rel, mode));
        } else if ft.is_file() {
            let mode = entry.metadata()?.permissions().mode() & 0o777;
            listing.files.push(Found {
                rel,
                path: entry.path().to_path_buf(),
                mode,
            });
        }
    }
    Ok(listing)
}

/// Clones a repository on the host: hooks off, no prompts, bounded in time.
async fn clone(
    url: &str,
    git_ref: Option<&str>,
    commit: Option<&str>,
    depth: Option<u32>,
) -> Result<tempfile::TempDir, EntryError> {
    let dir = tempfile::Builder::new()
        .prefix("cordon-git-")
        .tempdir()
        .map_err(EntryError::host(
            "make a directory in",
            &std::env::temp_dir(),
        ))?;
    let git = |args: Vec<String>| {
        let mut c = tokio::process::Command::new("git");
        c.args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
        c
    };
    let mut args: Vec<String> = vec!["clone".into(), "--no-tags".into(), "--quiet".into()];
    if let (Some(d), None) = (depth, commit) {
        args.extend(["--depth".into(), d.to_string()]);
    }
    if let Some(r) = git_ref {
        args.extend(["--branch".into(), r.into()]);
    }
    args.extend(["--".into(), url.into(), dir.path().display().to_string()]);
    run_git(git(args)).await?;
    if let Some(c) = commit {
        run_git(git(vec![
            "-C".into(),
            dir.path().display().to_string(),
            "checkout".into(),
            "--quiet".into(),
            "--detach".into(),
            c.into(),
        ]))
        .await?;
    }
    Ok(dir)
}

async fn run_git(mut cmd: tokio::process::Command) -> Result<(), EntryError> {
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| EntryError::Git(format!("it took longer than {}s", GIT_TIMEOUT.as_secs())))?
        .map_err(EntryError::host("run", Path::new("git")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EntryError::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
