//! Taking a snapshot of a directory.

use super::{Entry, Kind, Snapshot, SnapshotError, SnapshotStore, io};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What taking a snapshot cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TakeStats {
    /// Files read and hashed (the others were unchanged since the previous snapshot).
    pub files_read: u64,
    /// Bytes read and hashed.
    pub bytes_read: u64,
    /// Contents the store did not have yet.
    pub objects_written: u64,
}

impl SnapshotStore {
    /// Snapshots `dir`, leaving out the workspace-relative paths in `exclude` (ephemeral
    /// entries, mounted storage) and anything that is not a file, directory or link. Files
    /// unchanged since `previous` (same size, modification time and inode) are not re-read.
    pub fn take(
        &self,
        dir: &Path,
        exclude: &[String],
        previous: Option<&Snapshot>,
    ) -> Result<(Snapshot, TakeStats), SnapshotError> {
        self.scan(dir, exclude, previous, true)
    }

    /// Whether `dir` holds exactly what `snapshot` recorded, storing nothing. Files that look
    /// unchanged since it (size, modification time, inode) are not read.
    pub fn matches(
        &self,
        dir: &Path,
        exclude: &[String],
        snapshot: &Snapshot,
    ) -> Result<bool, SnapshotError> {
        Ok(self.scan(dir, exclude, Some(snapshot), false)?.0.id == snapshot.id)
    }

    /// Lists `dir` into a snapshot; with `write`, stores new contents and the listing.
    fn scan(
        &self,
        dir: &Path,
        exclude: &[String],
        previous: Option<&Snapshot>,
        write: bool,
    ) -> Result<(Snapshot, TakeStats), SnapshotError> {
        let known: HashMap<&str, &Entry> = previous
            .map(|p| {
                p.entries
                    .iter()
                    .filter(|e| e.kind == Kind::File)
                    .map(|e| (e.path.as_str(), e))
                    .collect()
            })
            .unwrap_or_default();
        let mut stats = TakeStats::default();
        let mut entries = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((abs, rel)) = stack.pop() {
            let listing = std::fs::read_dir(&abs).map_err(|e| io(abs.display(), e))?;
            for item in listing {
                let item = item.map_err(|e| io(abs.display(), e))?;
                let name = item.file_name().to_string_lossy().into_owned();
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if exclude
                    .iter()
                    .any(|x| path == *x || path.starts_with(&format!("{x}/")))
                {
                    continue;
                }
                let meta = std::fs::symlink_metadata(item.path()).map_err(|e| io(&path, e))?;
                let mode = meta.permissions().mode() & 0o777;
                let ft = meta.file_type();
                if ft.is_dir() {
                    entries.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
                        mode,
                        hash: None,
                        size: 0,
                        target: None,
                        mtime_ns: 0,
                        ino: 0,
                    });
                    stack.push((item.path(), path));
                } else if ft.is_symlink() {
                    let target = std::fs::read_link(item.path()).map_err(|e| io(&path, e))?;
                    entries.push(Entry {
                        path,
                        kind: Kind::Symlink,
                        mode: 0o777,
                        hash: None,
                        size: 0,
                        target: Some(target.to_string_lossy().into_owned()),
                        mtime_ns: 0,
                        ino: 0,
                    });
                } else if ft.is_file() {
                    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
                    let unchanged = known.get(path.as_str()).filter(|k| {
                        k.size == meta.len() && k.mtime_ns == mtime_ns && k.ino == meta.ino()
                    });
                    let hash = match unchanged {
                        Some(k) => k.hash.clone().unwrap_or_default(),
                        None => {
                            let bytes = std::fs::read(item.path()).map_err(|e| io(&path, e))?;
                            stats.files_read += 1;
                            stats.bytes_read += bytes.len() as u64;
                            if write {
                                self.store_object(&bytes, &mut stats)?
                            } else {
                                blake3::hash(&bytes).to_hex().to_string()
                            }
                        }
                    };
                    entries.push(Entry {
                        path,
                        kind: Kind::File,
                        mode,
                        hash: Some(hash),
                        size: meta.len(),
                        target: None,
                        mtime_ns,
                        ino: meta.ino(),
                    });
                }
                // Devices, fifos and sockets are never captured.
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let mut id = blake3::Hasher::new();
        for e in &entries {
            id.update(
                format!(
                    "{}\0{:?}\0{:o}\0{}\0{}\n",
                    e.path,
                    e.kind,
                    e.mode,
                    e.hash.as_deref().unwrap_or(""),
                    e.target.as_deref().unwrap_or("")
                )
                .as_bytes(),
            );
        }
        let snapshot = Snapshot {
            id: id.finalize().to_hex().to_string(),
            created: now(),
            entries,
        };
        if !write {
            return Ok((snapshot, stats));
        }
        self.write_listing(&snapshot)?;
        Ok((snapshot, stats))
    }

    /// Stores a snapshot's listing (under a temporary name, then renamed).
    pub(crate) fn write_listing(&self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        let path = self.snapshot_path(&snapshot.id);
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec(snapshot).map_err(|e| SnapshotError::Io(e.to_string()))?,
        )
        .map_err(|e| io(tmp.display(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(path.display(), e))
    }

    /// Stores compressed content under its hash, synced, via a temporary name: a crash never
    /// leaves half an object.
    pub(crate) fn put_packed(&self, hash: &str, packed: &[u8]) -> Result<(), SnapshotError> {
        let path = self.object_path(hash);
        let shard = path.parent().expect("objects have a shard directory");
        std::fs::create_dir_all(shard).map_err(|e| io(shard.display(), e))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(tmp.display(), e))?;
        f.write_all(packed).map_err(|e| io(tmp.display(), e))?;
        f.sync_all().map_err(|e| io(tmp.display(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(path.display(), e))
    }

    /// Stores content under its hash unless the store has it already; returns the hash.
    fn store_object(&self, bytes: &[u8], stats: &mut TakeStats) -> Result<String, SnapshotError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = self.object_path(&hash);
        if !path.exists() {
            let packed = zstd::encode_all(bytes, 3).map_err(|e| io("compress", e))?;
            self.put_packed(&hash, &packed)?;
            stats.objects_written += 1;
        }
        Ok(hash)
    }
}

fn now() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    let t = time::OffsetDateTime::now_utc();
    t.format(FORMAT).unwrap_or_default()
}
