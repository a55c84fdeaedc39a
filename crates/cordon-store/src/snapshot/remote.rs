//! Snapshot stores on object storage: S3, GCS, Azure Blob, R2, or anything else
//! `object_store` reaches. The layout is the local store's (`objects/<2>/<hash>.zst`,
//! `snapshots/<id>.json`) under a prefix, so any machine with the credentials can resume
//! from it.
//!
//! Snapshots are still taken into a local store, which serves as the working copy and the
//! cache, and then pushed: contents first, the listing last, so a listing on the remote
//! never names content that is not there. Loading pulls a listing and whatever contents the
//! local cache lacks; restoring then checks every content against its hash as usual.

use super::{Snapshot, SnapshotError, SnapshotStore, SnapshotSummary, io};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Contents sent or fetched at once.
const PARALLEL: usize = 8;

/// A snapshot store on object storage.
#[derive(Debug, Clone)]
pub struct RemoteSnapshots {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    shown: String,
}

fn remote(what: impl std::fmt::Display, e: object_store::Error) -> SnapshotError {
    SnapshotError::Io(format!("{what}: {e}"))
}

impl RemoteSnapshots {
    /// Snapshots under `prefix` in `store`; `shown` names the place in messages (a URL).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, shown: &str) -> RemoteSnapshots {
        RemoteSnapshots {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            shown: shown.to_string(),
        }
    }

    /// Where the store is, as given.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn key(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn object_key(hash: &str) -> String {
        format!("objects/{}/{hash}.zst", &hash[..2])
    }

    /// Sends `snapshot` (taken into `local`) and the contents the remote lacks; returns how
    /// many contents were sent.
    pub async fn push(
        &self,
        local: &SnapshotStore,
        snapshot: &Snapshot,
    ) -> Result<u64, SnapshotError> {
        let hashes: BTreeSet<&str> = snapshot
            .entries
            .iter()
            .filter_map(|e| e.hash.as_deref())
            .collect();
        let jobs: Vec<(ObjectPath, std::path::PathBuf)> = hashes
            .into_iter()
            .map(|h| (self.key(&Self::object_key(h)), local.object_path(h)))
            .collect();
        let sent: Vec<bool> = futures::stream::iter(jobs)
            .map(|(key, path)| {
                let this = self.clone();
                async move { this.send(key, path).await }
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let listing = serde_json::to_vec(snapshot).map_err(|e| SnapshotError::Io(e.to_string()))?;
        let key = self.key(&format!("snapshots/{}.json", snapshot.id));
        self.store
            .put(&key, listing.into())
            .await
            .map_err(|e| remote(format!("{} {key}", self.shown), e))?;
        Ok(sent.into_iter().filter(|s| *s).count() as u64)
    }

    /// Sends one local content file unless the remote has it; says whether it sent it.
    async fn send(&self, key: ObjectPath, path: std::path::PathBuf) -> Result<bool, SnapshotError> {
        match self.store.head(&key).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(format!("{} {key}", self.shown), e)),
        }
        let packed = tokio::fs::read(&path)
            .await
            .map_err(|e| io(path.display(), e))?;
        self.store
            .put(&key, packed.into())
            .await
            .map_err(|e| remote(format!("{} {key}", self.shown), e))?;
        Ok(true)
    }

    /// The ids of every snapshot on the remote.
    async fn ids(&self) -> Result<Vec<String>, SnapshotError> {
        let prefix = self.key("snapshots");
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| remote(&self.shown, e))?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect())
    }

    /// One object's bytes.
    async fn fetch(&self, key: &ObjectPath) -> Result<Vec<u8>, SnapshotError> {
        let failed = |e| remote(format!("{} {key}", self.shown), e);
        let got = self.store.get(key).await.map_err(failed)?;
        Ok(got.bytes().await.map_err(failed)?.to_vec())
    }

    async fn fetch_listing(&self, id: &str) -> Result<Snapshot, SnapshotError> {
        let key = self.key(&format!("snapshots/{id}.json"));
        let bytes = self.fetch(&key).await?;
        serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Io(format!("{key}: {e}")))
    }

    /// Fetches the snapshot with this id (or the only one whose id starts with it) into
    /// `local`, with the contents `local` lacks, and returns it.
    pub async fn pull(&self, local: &SnapshotStore, id: &str) -> Result<Snapshot, SnapshotError> {
        let mut matches: Vec<String> = self
            .ids()
            .await?
            .into_iter()
            .filter(|s| s.starts_with(id))
            .collect();
        let id = match matches.len() {
            1 => matches.remove(0),
            0 => {
                return Err(SnapshotError::NotFound(format!(
                    "no snapshot in {} matches '{id}'",
                    self.shown
                )));
            }
            n => {
                return Err(SnapshotError::NotFound(format!(
                    "'{id}' matches {n} snapshots in {}; give more of the id",
                    self.shown
                )));
            }
        };
        let snapshot = self.fetch_listing(&id).await?;
        let missing: BTreeSet<String> = snapshot
            .entries
            .iter()
            .filter_map(|e| e.hash.as_deref())
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .filter(|h| !local.object_path(h).exists())
            .map(str::to_string)
            .collect();
        futures::stream::iter(missing)
            .map(|hash| {
                let (this, local) = (self.clone(), local.clone());
                async move {
                    let packed = this.fetch(&this.key(&Self::object_key(&hash))).await?;
                    local.put_packed(&hash, &packed)
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        local.write_listing(&snapshot)?;
        Ok(snapshot)
    }

    /// Every snapshot on the remote, newest first.
    pub async fn list(&self) -> Result<Vec<SnapshotSummary>, SnapshotError> {
        let mut out = Vec::new();
        for id in self.ids().await? {
            let s = self.fetch_listing(&id).await?;
            out.push(SnapshotSummary {
                files: s.files(),
                bytes: s.bytes(),
                id: s.id,
                created: s.created,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Deletes the listing of snapshot `id` (a full id) from the remote; its contents stay
    /// until [`RemoteSnapshots::gc`]. A listing that is not there is not an error.
    pub async fn delete(&self, id: &str) -> Result<(), SnapshotError> {
        let key = self.key(&format!("snapshots/{id}.json"));
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(&key, e)),
        }
    }

    /// Deletes contents on the remote that no snapshot there refers to; returns how many and
    /// their compressed bytes.
    pub async fn gc(&self) -> Result<(usize, u64), SnapshotError> {
        let mut live = BTreeSet::new();
        for id in self.ids().await? {
            let s = self.fetch_listing(&id).await?;
            live.extend(s.entries.into_iter().filter_map(|e| e.hash));
        }
        let objects: Vec<_> = self
            .store
            .list(Some(&self.key("objects")))
            .try_collect()
            .await
            .map_err(|e| remote(&self.shown, e))?;
        let (mut removed, mut bytes) = (0, 0);
        for meta in objects {
            let hash = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".zst"))
                .unwrap_or_default();
            if !live.contains(hash) {
                self.store
                    .delete(&meta.location)
                    .await
                    .map_err(|e| remote(&meta.location, e))?;
                removed += 1;
                bytes += meta.size;
            }
        }
        Ok((removed, bytes))
    }
}
