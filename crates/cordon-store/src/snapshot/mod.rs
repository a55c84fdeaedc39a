//! Content-addressed workspace snapshots.
//!
//! A snapshot lists every path of a workspace with its kind, mode, and (for files) the BLAKE3
//! hash of its content; contents are stored once each, zstd-compressed, under their hash. A
//! snapshot taken after a small change costs in proportion to the change: files whose size,
//! modification time and inode match the previous snapshot are not read again.

mod capture;
mod exclude;
mod remote;
mod restore;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use capture::TakeStats;
pub use exclude::Exclusions;
pub use remote::RemoteSnapshots;
pub use restore::RestoreReport;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// One path of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Workspace-relative, `/`-separated. A name that is not UTF-8 shows here with
    /// replacement characters, and its exact bytes are in `path_hex`.
    pub path: String,
    /// The path's exact bytes, hex-encoded, when they are not UTF-8: what restore uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// File, directory or link.
    pub kind: Kind,
    /// Permission bits (cordon never records setuid, setgid or sticky bits; a listing that
    /// asks for them is restored without them).
    pub mode: u32,
    /// Files: BLAKE3 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Files: size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Links: where they point (see `target_hex` for a target that is not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Links: the target's exact bytes, hex-encoded, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    /// Files: modification time (ns) and inode when taken, so the next snapshot can skip the
    /// file if neither changed. Not part of the snapshot's identity.
    #[serde(default)]
    pub mtime_ns: i128,
    /// See `mtime_ns`.
    #[serde(default)]
    pub ino: u64,
}

impl Entry {
    /// The path's exact bytes.
    pub fn path_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        exact(&self.path, self.path_hex.as_deref())
    }

    /// A link's target's exact bytes.
    pub fn target_bytes(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        self.target
            .as_deref()
            .map(|t| exact(t, self.target_hex.as_deref()))
            .transpose()
    }
}

/// Text as recorded, with its exact bytes when they are not UTF-8.
pub(crate) fn encode_bytes(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(hex::encode(bytes)),
        ),
    }
}

/// The exact bytes of recorded text: its hex form when there is one (which must agree with
/// the text shown), else the text's.
fn exact(text: &str, hex_form: Option<&str>) -> Result<Vec<u8>, SnapshotError> {
    match hex_form {
        None => Ok(text.as_bytes().to_vec()),
        Some(h) => {
            let bytes = hex::decode(h).map_err(|_| {
                SnapshotError::Unsafe(format!("'{text}' has exact bytes that are not hex"))
            })?;
            if String::from_utf8_lossy(&bytes) != text {
                return Err(SnapshotError::Unsafe(format!(
                    "'{text}' does not match its exact bytes"
                )));
            }
            Ok(bytes)
        }
    }
}

/// A workspace at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// BLAKE3 of the listing (paths, kinds, modes, hashes, targets).
    pub id: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: String,
    /// Every path, sorted.
    pub entries: Vec<Entry>,
}

impl Snapshot {
    /// The id of a listing of `entries` (in their order, sorted by exact path): BLAKE3 over
    /// each entry's exact path, kind, mode, content hash and link target. Sizes, times and
    /// inodes are not part of it.
    pub fn id_of(entries: &[Entry]) -> Result<String, SnapshotError> {
        let mut id = blake3::Hasher::new();
        for e in entries {
            let target = e.target_bytes()?.unwrap_or_default();
            id.update(&e.path_bytes()?);
            id.update(
                format!(
                    "\0{:?}\0{:o}\0{}\0",
                    e.kind,
                    e.mode,
                    e.hash.as_deref().unwrap_or("")
                )
                .as_bytes(),
            );
            id.update(&target);
            id.update(b"\n");
        }
        Ok(id.finalize().to_hex().to_string())
    }

    /// Total bytes of file content.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// How many files.
    pub fn files(&self) -> usize {
        self.entries.iter().filter(|e| e.kind == Kind::File).count()
    }
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// No snapshot has this id (or prefix), or more than one does.
    #[error("{0}")]
    NotFound(String),
    /// A snapshot asked for something unsafe; nothing past it was restored.
    #[error("refusing to restore: {0}")]
    Unsafe(String),
    /// Stored content does not match its hash.
    #[error("object {0} is corrupt: its content does not match its hash")]
    Corrupt(String),
}

pub(crate) fn io(what: impl std::fmt::Display, e: std::io::Error) -> SnapshotError {
    SnapshotError::Io(format!("{what}: {e}"))
}

/// A local directory of snapshots and their contents.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

/// A stored snapshot, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSummary {
    /// Its id.
    pub id: String,
    /// When it was taken.
    pub created: String,
    /// How many files.
    pub files: usize,
    /// Bytes of file content.
    pub bytes: u64,
}

impl SnapshotStore {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapshotError> {
        for sub in ["objects", "snapshots"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(dir.join(sub).display(), e))?;
        }
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn object_path(&self, hash: &str) -> PathBuf {
        self.dir
            .join("objects")
            .join(&hash[..2])
            .join(format!("{hash}.zst"))
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.dir.join("snapshots").join(format!("{id}.json"))
    }

    /// The snapshot with this id, or the only one whose id starts with it.
    pub fn load(&self, id: &str) -> Result<Snapshot, SnapshotError> {
        let mut matches: Vec<String> = std::fs::read_dir(self.dir.join("snapshots"))
            .map_err(|e| io("snapshots", e))?
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .filter(|s| s.starts_with(id))
            .collect();
        match matches.len() {
            0 => Err(SnapshotError::NotFound(format!(
                "no snapshot matches '{id}'"
            ))),
            1 => {
                let p = self.snapshot_path(&matches.remove(0));
                let text = std::fs::read(&p).map_err(|e| io(p.display(), e))?;
                serde_json::from_slice(&text)
                    .map_err(|e| SnapshotError::Io(format!("{}: {e}", p.display())))
            }
            n => Err(SnapshotError::NotFound(format!(
                "'{id}' matches {n} snapshots; give more of the id"
            ))),
        }
    }

    /// Every stored snapshot, each read once, newest first.
    fn load_all(&self) -> Result<Vec<Snapshot>, SnapshotError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("snapshots")).map_err(|e| io("snapshots", e))? {
            let p = e.map_err(|e| io("snapshots", e))?.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read(&p).map_err(|e| io(p.display(), e))?;
            out.push(
                serde_json::from_slice::<Snapshot>(&text)
                    .map_err(|e| SnapshotError::Io(format!("{}: {e}", p.display())))?,
            );
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Every stored snapshot, newest first.
    pub fn list(&self) -> Result<Vec<SnapshotSummary>, SnapshotError> {
        Ok(self
            .load_all()?
            .into_iter()
            .map(|s| SnapshotSummary {
                files: s.files(),
                bytes: s.bytes(),
                id: s.id,
                created: s.created,
            })
            .collect())
    }

    /// The newest stored snapshot, if any.
    pub fn newest(&self) -> Result<Option<Snapshot>, SnapshotError> {
        Ok(self.load_all()?.into_iter().next())
    }

    /// Deletes the listing of snapshot `id` (a full id); its contents stay until
    /// [`SnapshotStore::gc`]. A listing that is not there is not an error.
    pub fn delete(&self, id: &str) -> Result<(), SnapshotError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SnapshotError::NotFound(format!(
                "'{id}' is not a snapshot id"
            )));
        }
        let path = self.snapshot_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(path.display(), e)),
        }
    }

    /// Deletes stored contents that no snapshot refers to; returns how many and their bytes.
    pub fn gc(&self) -> Result<(usize, u64), SnapshotError> {
        let live: std::collections::HashSet<String> = self
            .load_all()?
            .into_iter()
            .flat_map(|s| s.entries)
            .filter_map(|e| e.hash)
            .collect();
        let (mut removed, mut bytes) = (0, 0);
        for shard in std::fs::read_dir(self.dir.join("objects")).map_err(|e| io("objects", e))? {
            let shard = shard.map_err(|e| io("objects", e))?.path();
            for obj in std::fs::read_dir(&shard).map_err(|e| io(shard.display(), e))? {
                let obj = obj.map_err(|e| io(shard.display(), e))?.path();
                let hash = obj
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                if !live.contains(&hash) {
                    bytes += obj.metadata().map(|m| m.len()).unwrap_or(0);
                    std::fs::remove_file(&obj).map_err(|e| io(obj.display(), e))?;
                    removed += 1;
                }
            }
        }
        Ok((removed, bytes))
    }
}

/// A suffix for a temporary name no other writer uses at the same time: this process's id
/// and a count of the names it made (runs of one process, sub-agents, write the same
/// content-addressed objects at once).
pub(crate) fn unique_suffix() -> String {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}
