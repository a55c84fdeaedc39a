//! Taking a snapshot of a directory.

use super::exclude::{Exclusions, Left, Matcher};
use super::{Entry, Kind, Snapshot, SnapshotError, SnapshotStore, encode_bytes, io};
use cordon_core::Progress;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The most left-out paths a snapshot names (it counts them all).
const SKIPPED_NAMED: usize = 50;

/// What taking a snapshot cost, and what it left out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TakeStats {
    /// Files read and hashed (the others were unchanged since the previous snapshot).
    pub files_read: u64,
    /// Bytes read and hashed.
    pub bytes_read: u64,
    /// Contents the store did not have yet.
    pub objects_written: u64,
    /// Paths left out by patterns or `.gitignore` files (a directory stands for all it
    /// holds), the first 50 of them by name.
    pub skipped: Vec<String>,
    /// How many paths were left out that way in all.
    pub skipped_count: u64,
    /// Exclusion rules that could not be used (an unreadable or oversized `.gitignore`).
    pub notes: Vec<String>,
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
        self.scan(
            dir,
            &Exclusions::paths(exclude),
            previous,
            true,
            &cordon_core::NoProgress,
        )
    }

    /// [`SnapshotStore::take`], leaving out what `exclude` says (paths, patterns, and what
    /// `.gitignore` files ignore), and telling `progress` of each path it lists.
    pub fn take_excluding(
        &self,
        dir: &Path,
        exclude: &Exclusions,
        previous: Option<&Snapshot>,
        progress: &dyn Progress,
    ) -> Result<(Snapshot, TakeStats), SnapshotError> {
        progress.begin("taking a snapshot", None);
        let taken = self.scan(dir, exclude, previous, true, progress);
        progress.end();
        taken
    }

    /// Whether `dir` holds exactly what `snapshot` recorded, storing nothing. Files that look
    /// unchanged since it (size, modification time, inode) are not read.
    pub fn matches(
        &self,
        dir: &Path,
        exclude: &Exclusions,
        snapshot: &Snapshot,
    ) -> Result<bool, SnapshotError> {
        Ok(self
            .scan(
                dir,
                exclude,
                Some(snapshot),
                false,
                &cordon_core::NoProgress,
            )?
            .0
            .id
            == snapshot.id)
    }

    /// Lists `dir` into a snapshot; with `write`, stores new contents and the listing.
    fn scan(
        &self,
        dir: &Path,
        exclude: &Exclusions,
        previous: Option<&Snapshot>,
        write: bool,
        progress: &dyn Progress,
    ) -> Result<(Snapshot, TakeStats), SnapshotError> {
        let known: HashMap<Vec<u8>, &Entry> = previous
            .map(|p| {
                p.entries
                    .iter()
                    .filter(|e| e.kind == Kind::File)
                    .filter_map(|e| Some((e.path_bytes().ok()?, e)))
                    .collect()
            })
            .unwrap_or_default();
        let mut matcher = Matcher::new(dir, exclude)?;
        let mut skipped: Vec<String> = Vec::new();
        let mut skipped_count = 0u64;
        let relative = |p: &Path| -> Vec<u8> {
            p.strip_prefix(dir)
                .unwrap_or(p)
                .as_os_str()
                .as_bytes()
                .to_vec()
        };
        let mut stats = TakeStats::default();
        let mut entries = Vec::new();
        // Names are kept as the bytes they are: a name that is not UTF-8 is restored as it was.
        let walk = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                let rel = relative(e.path());
                let left = matcher.excluded(e.path(), &rel, e.file_type().is_dir());
                if left == Some(Left::ByRule) {
                    skipped_count += 1;
                    if skipped.len() < SKIPPED_NAMED {
                        let shown = String::from_utf8_lossy(&rel).into_owned();
                        skipped.push(if e.file_type().is_dir() {
                            format!("{shown}/")
                        } else {
                            shown
                        });
                    }
                }
                left.is_none()
            });
        for item in walk {
            let item = item.map_err(|e| {
                let shown = e.path().unwrap_or(dir).display().to_string();
                match e.into_io_error() {
                    Some(err) => io(shown, err),
                    None => SnapshotError::Io(format!("{shown}: a directory loop")),
                }
            })?;
            progress.advance(1);
            let rel = relative(item.path());
            let (path, path_hex) = encode_bytes(&rel);
            let meta = item
                .metadata()
                .map_err(|e| SnapshotError::Io(format!("{path}: {e}")))?;
            let mode = meta.permissions().mode() & 0o777;
            let ft = meta.file_type();
            let mut entry = Entry {
                path,
                path_hex,
                kind: Kind::Dir,
                mode,
                hash: None,
                size: 0,
                target: None,
                target_hex: None,
                mtime_ns: 0,
                ino: 0,
            };
            if ft.is_dir() {
                entries.push((rel, entry));
            } else if ft.is_symlink() {
                let target = std::fs::read_link(item.path()).map_err(|e| io(&entry.path, e))?;
                let (target, target_hex) = encode_bytes(target.as_os_str().as_bytes());
                entry.kind = Kind::Symlink;
                entry.mode = 0o777;
                entry.target = Some(target);
                entry.target_hex = target_hex;
                entries.push((rel, entry));
            } else if ft.is_file() {
                let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
                let unchanged = known.get(&rel).filter(|k| {
                    k.size == meta.len() && k.mtime_ns == mtime_ns && k.ino == meta.ino()
                });
                let hash = match unchanged {
                    Some(k) => k.hash.clone().unwrap_or_default(),
                    None => {
                        let bytes = std::fs::read(item.path()).map_err(|e| io(&entry.path, e))?;
                        stats.files_read += 1;
                        stats.bytes_read += bytes.len() as u64;
                        if write {
                            self.store_object(&bytes, &mut stats)?
                        } else {
                            blake3::hash(&bytes).to_hex().to_string()
                        }
                    }
                };
                entry.kind = Kind::File;
                entry.hash = Some(hash);
                entry.size = meta.len();
                entry.mtime_ns = mtime_ns;
                entry.ino = meta.ino();
                entries.push((rel, entry));
            }
            // Devices, fifos and sockets are never captured.
        }
        stats.notes = std::mem::take(&mut matcher.notes);
        skipped.sort();
        stats.skipped = skipped;
        stats.skipped_count = skipped_count;
        // In byte order of the exact paths (for UTF-8 names, the order of the text).
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
        let snapshot = Snapshot {
            id: Snapshot::id_of(&entries)?,
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
        let tmp = path.with_extension(format!("json.tmp{}", super::unique_suffix()));
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
        let tmp = path.with_extension(format!("tmp{}", super::unique_suffix()));
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
