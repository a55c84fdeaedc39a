//! Where snapshots are kept: a local directory (the default), or object storage given as a
//! URL, with a local directory as its cache.
//!
//! URLs: `s3://BUCKET/PREFIX`, `r2://BUCKET/PREFIX`, `gs://BUCKET/PREFIX` or
//! `az://CONTAINER/PREFIX`, optionally followed by `?endpoint=URL&region=NAME` (an
//! S3-compatible server, an emulator, R2's account endpoint). Credentials come from cordon's
//! environment (AWS_*, GOOGLE_*, AZURE_STORAGE_*), as for manifest `object_store` entries.

use crate::SessionError;
use cordon_store::snapshot::{RemoteSnapshots, Snapshot, SnapshotError, SnapshotStore};
use std::path::PathBuf;

/// A snapshot store as a session uses it.
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// Where snapshots are taken, and the cache of a remote store.
    pub local: SnapshotStore,
    /// The object-storage store, when one was given.
    pub remote: Option<RemoteSnapshots>,
}

impl Snapshots {
    /// Opens the store `arg` names (a directory or a URL); by default the local directory
    /// under cordon's state directory.
    pub fn open(arg: Option<&str>) -> Result<Snapshots, SessionError> {
        let Some(url) = arg.filter(|a| a.contains("://")) else {
            let dir = match arg {
                Some(d) => PathBuf::from(d),
                None => cordon_store::default_snapshot_dir()?,
            };
            return Ok(Snapshots {
                local: SnapshotStore::open(&dir)?,
                remote: None,
            });
        };
        let (provider, bucket, prefix, endpoint, region) = parse_url(url)?;
        let store = cordon_manifest::objects::store(&cordon_manifest::objects::Location {
            provider,
            bucket: &bucket,
            prefix: &prefix,
            endpoint: endpoint.as_deref(),
            region: region.as_deref(),
        })
        .map_err(|e| {
            SessionError::bad_input(
                format!("--snapshots {url}: {e}"),
                "check the URL and the credentials in the environment",
            )
        })?;
        let cache_name: String = format!("{provider}-{bucket}-{prefix}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let cache = cordon_store::default_snapshot_dir()?
            .with_file_name("snapshot-cache")
            .join(cache_name);
        Ok(Snapshots {
            local: SnapshotStore::open(&cache)?,
            remote: Some(RemoteSnapshots::new(store, &prefix, url)),
        })
    }

    /// The snapshot with this id (or id prefix): from the local store, else fetched from the
    /// remote one.
    pub async fn load(&self, id: &str) -> Result<Snapshot, SnapshotError> {
        match (self.local.load(id), &self.remote) {
            (Ok(s), _) => Ok(s),
            (Err(_), Some(remote)) => remote.pull(&self.local, id).await,
            (Err(e), None) => Err(e),
        }
    }

    /// Where the snapshots are, for messages: the remote store's URL, or the local directory.
    pub fn shown(&self) -> String {
        match &self.remote {
            Some(r) => r.shown().to_string(),
            None => self.local.dir().display().to_string(),
        }
    }

    /// Sends a snapshot taken into the local store to the remote one, if there is one.
    pub async fn push(&self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        if let Some(remote) = &self.remote {
            remote.push(&self.local, snapshot).await?;
        }
        Ok(())
    }
}

/// (provider, bucket, prefix, endpoint, region).
type Parsed<'a> = (&'static str, String, String, Option<String>, Option<String>);

/// `SCHEME://BUCKET/PREFIX?endpoint=..&region=..` → (provider, bucket, prefix, endpoint,
/// region).
fn parse_url(url: &str) -> Result<Parsed<'_>, SessionError> {
    let bad = |what: &str| {
        SessionError::bad_input(
            format!("--snapshots {url}: {what}"),
            "give a directory, or s3://BUCKET/PREFIX, r2://, gs:// or az://CONTAINER/PREFIX, optionally with ?endpoint=URL&region=NAME",
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    let provider = match scheme {
        "s3" => "s3",
        "r2" => "r2",
        "gs" | "gcs" => "gcs",
        "az" | "azure" => "azure",
        other => return Err(bad(&format!("unknown scheme '{other}'"))),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    let (mut endpoint, mut region) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", v)) => endpoint = Some(v.to_string()),
            Some(("region", v)) => region = Some(v.to_string()),
            _ => {
                return Err(bad(&format!(
                    "unknown option '{pair}' (endpoint and region are known)"
                )));
            }
        }
    }
    Ok((
        provider,
        bucket.to_string(),
        prefix.trim_matches('/').to_string(),
        endpoint,
        region,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_provider_bucket_prefix_and_options() {
        let (p, b, pre, e, r) =
            parse_url("s3://snaps/team/a/?endpoint=http://127.0.0.1:9000&region=eu-west-1")
                .unwrap();
        assert_eq!(
            (p, b.as_str(), pre.as_str(), e.as_deref(), r.as_deref()),
            (
                "s3",
                "snaps",
                "team/a",
                Some("http://127.0.0.1:9000"),
                Some("eu-west-1")
            )
        );
        assert_eq!(parse_url("az://c").unwrap().0, "azure");
        for bad in ["ftp://x/y", "s3:///p", "s3://b/p?colour=red"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
