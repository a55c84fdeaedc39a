//! Run heads: each run's event count and last hash, kept in a small file beside the store.
//!
//! The hash chain shows that no stored event was changed, but not that none is missing at
//! the end, nor that a forged event was not appended with a recomputed hash. A head kept
//! apart from the events table closes that gap: an edit of the events alone (a deletion at
//! the end, a whole run deleted, an appended event, a WAL truncated, a chain re-hashed end
//! to end) no longer matches it. Whoever can edit both the events and the heads is caught
//! only by a signature over the head, which a later version adds (the record has room).
//!
//! Each append writes the head twice: before the insert, the head as it is plus the event
//! about to be appended (`pending`); after it, the new head. A crash between the two leaves a
//! pending record that says exactly which one event may or may not be stored, so a crash is
//! never mistaken for tampering. Appends to one run from several processes are serialised
//! by a lock on the file.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The size of a head file: one fixed-size record, written in place with one `pwrite`.
const RECORD: usize = 1024;
/// The first line of every head record.
const MAGIC: &str = "cordon-head 2";
/// The size and first line of the records written before heads were signed; still read.
const RECORD_V1: usize = 256;
const MAGIC_V1: &str = "cordon-head 1";
/// How long an append waits for another process's append to the same run.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A run's head, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    /// How many events the run has.
    pub count: u64,
    /// The hash of its last event (the genesis hash when it has none).
    pub last_hash: String,
    /// An append that had begun and may or may not have been stored: its new count and hash.
    pub pending: Option<(u64, String)>,
    /// The signature of the pending append's count and hash (hex, by the head's key), so
    /// the events it adds are covered too should it land and the head not follow.
    pub pending_signature: Option<String>,
    /// The signature of `count` and `last_hash` (see [`crate::signing`]), when the store
    /// signs.
    pub signature: Option<HeadSignature>,
}

/// A head's signature, and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadSignature {
    /// The public key, `ed25519:HEX`.
    pub key: String,
    /// The Ed25519 signature of the head's message, as hex.
    pub signature: String,
}

impl Head {
    /// Whether a run whose stored events number `count` and end with `last_hash` agrees
    /// with this head (a pending append may or may not have landed).
    pub fn agrees(&self, count: u64, last_hash: &str) -> bool {
        self.at_head(count, last_hash) || self.at_pending(count, last_hash)
    }

    /// Whether the stored events end exactly at the head.
    pub fn at_head(&self, count: u64, last_hash: &str) -> bool {
        count == self.count && last_hash == self.last_hash
    }

    /// Whether the stored events end at the pending append (which adds events: its count
    /// is past the head's).
    pub fn at_pending(&self, count: u64, last_hash: &str) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|(c, h)| *c == count && *c > self.count && h == last_hash)
    }

    fn encode(&self) -> Vec<u8> {
        let pending = match (&self.pending, &self.pending_signature) {
            (Some((c, h)), Some(sig)) => format!("{c} {h} {sig}"),
            (Some((c, h)), None) => format!("{c} {h}"),
            (None, _) => "-".to_string(),
        };
        let (key, signature) = match &self.signature {
            Some(s) => (s.key.as_str(), s.signature.as_str()),
            None => ("-", "-"),
        };
        let mut text = format!(
            "{MAGIC}\ncount {}\nhash {}\npending {pending}\nkey {key}\nsig {signature}\n",
            self.count, self.last_hash
        )
        .into_bytes();
        text.resize(RECORD - 1, b' ');
        text.push(b'\n');
        text
    }

    fn decode(bytes: &[u8]) -> Result<Head, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not text")?;
        let mut lines = text.lines();
        let signed = match lines.next() {
            Some(MAGIC) if bytes.len() == RECORD => true,
            Some(MAGIC_V1) if bytes.len() == RECORD_V1 => false,
            _ => return Err("it does not start with the head marker for its size"),
        };
        let mut field = |name: &str, missing: &'static str| -> Result<String, &'static str> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(|v| v.trim_end().to_string())
                .ok_or(missing)
        };
        let count = field("count", "its count line is missing")?
            .parse()
            .map_err(|_| "its count is not a number")?;
        let last_hash = field("hash", "its hash line is missing")?;
        check_hash(&last_hash)?;
        let mut pending_signature = None;
        let pending = match field("pending", "its pending line is missing")?.as_str() {
            "-" => None,
            p => {
                let mut parts = p.split(' ');
                let (Some(c), Some(h)) = (parts.next(), parts.next()) else {
                    return Err("its pending line is malformed");
                };
                check_hash(h)?;
                if let Some(sig) = parts.next() {
                    if !signed || sig.len() != 128 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err("its pending line's signature is malformed");
                    }
                    pending_signature = Some(sig.to_string());
                }
                if parts.next().is_some() {
                    return Err("its pending line is malformed");
                }
                Some((
                    c.parse().map_err(|_| "its pending count is not a number")?,
                    h.to_string(),
                ))
            }
        };
        let signature = if signed {
            let key = field("key", "its key line is missing")?;
            let signature = field("sig", "its signature line is missing")?;
            match (key.as_str(), signature.as_str()) {
                ("-", "-") => None,
                (k, s)
                    if k.len() == 72
                        && k.starts_with("ed25519:")
                        && s.len() == 128
                        && s.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    Some(HeadSignature { key, signature })
                }
                _ => return Err("its key or signature line is malformed"),
            }
        } else {
            None
        };
        Ok(Head {
            count,
            last_hash,
            pending,
            pending_signature,
            signature,
        })
    }
}

fn check_hash(h: &str) -> Result<(), &'static str> {
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("a hash in it is not 64 hex digits")
    }
}

/// Why a head record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The file could not be read.
    #[error("cannot read its head record {path}: {source}")]
    Read {
        /// The head file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not the size every head record has.
    #[error(
        "its head record {path} is {len} bytes, not {RECORD} (or {RECORD_V1}, before heads were signed): it was damaged"
    )]
    Size {
        /// The head file.
        path: PathBuf,
        /// Its size.
        len: usize,
    },
    /// The file's contents are not a head record.
    #[error("its head record {path} is damaged: {why}")]
    Malformed {
        /// The head file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
}

impl HeadError {
    /// Whether the record is damaged (rather than unreadable for a system reason).
    pub fn is_damage(&self) -> bool {
        !matches!(self, HeadError::Read { .. })
    }
}

/// Where a store keeps its heads: a directory beside the database file.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".heads");
    db.with_file_name(name)
}

/// A run id usable as a file name (cordon's ids are UUIDs; anything else has no head file).
pub(crate) fn file_name(run_id: &str) -> Option<&str> {
    (!run_id.is_empty()
        && run_id.len() <= 64
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then_some(run_id)
}

/// The file whose existence asks a run to pause (see `Store::request_pause`).
pub(crate) fn pause_marker(dir: &Path, run_id: &str) -> Option<PathBuf> {
    file_name(run_id).map(|name| dir.join(format!("{name}.pause")))
}

/// Reads a run's head; `Ok(None)` when it has no head file.
pub(crate) fn read(dir: &Path, run_id: &str) -> Result<Option<Head>, HeadError> {
    let Some(name) = file_name(run_id) else {
        return Ok(None);
    };
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(HeadError::Read { path, source }),
    };
    if bytes.len() != RECORD && bytes.len() != RECORD_V1 {
        return Err(HeadError::Size {
            path,
            len: bytes.len(),
        });
    }
    Head::decode(&bytes)
        .map(Some)
        .map_err(|why| HeadError::Malformed { path, why })
}

/// The ids of every run that has a head file.
pub(crate) fn list(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| file_name(n).is_some())
        .collect()
}

/// One run's head file, open for appending.
pub(crate) struct HeadFile {
    file: std::fs::File,
    path: PathBuf,
}

/// The lock on a head file; released when dropped.
pub(crate) struct Locked(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl HeadFile {
    /// Opens (with `create`, creating) the head file of `run_id` in `dir`.
    pub(crate) fn open(dir: &Path, run_id: &str, create: bool) -> io::Result<Option<HeadFile>> {
        let Some(name) = file_name(run_id) else {
            return Ok(None);
        };
        if create {
            std::fs::create_dir_all(dir)?;
        }
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&path);
        match file {
            Ok(file) => Ok(Some(HeadFile { file, path })),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock, waiting (without blocking the runtime) while another append holds it.
    pub(crate) async fn lock(&self) -> io::Result<Locked> {
        use nix::fcntl::{Flock, FlockArg};
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match Flock::lock(self.file.try_clone()?, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(Locked(l)),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(io::Error::other(format!(
                            "another process has held {} for {}s",
                            self.path.display(),
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((_, e)) => return Err(io::Error::from(e)),
            }
        }
    }

    /// The head as recorded; `Ok(None)` for a new, empty file.
    pub(crate) fn read(&self) -> Result<Option<Head>, HeadError> {
        let mut buf = vec![0u8; RECORD + 1];
        let n = self
            .file
            .read_at(&mut buf, 0)
            .map_err(|source| HeadError::Read {
                path: self.path.clone(),
                source,
            })?;
        match n {
            0 => Ok(None),
            RECORD | RECORD_V1 => {
                Head::decode(&buf[..n])
                    .map(Some)
                    .map_err(|why| HeadError::Malformed {
                        path: self.path.clone(),
                        why,
                    })
            }
            len => Err(HeadError::Size {
                path: self.path.clone(),
                len,
            }),
        }
    }

    /// Writes the head in place.
    pub(crate) fn write(&self, head: &Head) -> io::Result<()> {
        self.file.write_all_at(&head.encode(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_and_damage_is_named() {
        let h = Head {
            count: 3,
            last_hash: "a".repeat(64),
            pending: Some((4, "b".repeat(64))),
            pending_signature: Some("e".repeat(128)),
            signature: Some(HeadSignature {
                key: format!("ed25519:{}", "c".repeat(64)),
                signature: "d".repeat(128),
            }),
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), RECORD);
        assert_eq!(Head::decode(&bytes).unwrap(), h);
        assert!(h.agrees(3, &"a".repeat(64)) && h.agrees(4, &"b".repeat(64)));
        assert!(!h.agrees(2, &"a".repeat(64)) && !h.agrees(5, &"b".repeat(64)));
        let mut bad = bytes.clone();
        bad[20] = 0xff;
        assert!(Head::decode(&bad).is_err());
        assert!(Head::decode(b"cordon-head 1\ncount x\n").is_err());
        // A record from before heads were signed still reads.
        let mut v1 = format!(
            "cordon-head 1\ncount 2\nhash {}\npending -\n",
            "e".repeat(64)
        )
        .into_bytes();
        v1.resize(RECORD_V1, b' ');
        let old = Head::decode(&v1).unwrap();
        assert_eq!((old.count, old.signature), (2, None));
        assert_eq!(file_name("../x"), None);
        assert_eq!(file_name(""), None);
    }
}
