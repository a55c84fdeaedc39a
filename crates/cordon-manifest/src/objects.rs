//! `object_store` entries: a prefix of an S3, GCS, Azure Blob or R2 bucket copied into the
//! workspace. Credentials are the harness's (its environment: AWS_*, AZURE_STORAGE_*,
//! GOOGLE_*), used here and never written into the sandbox. Object keys are untrusted: each
//! becomes a workspace path only after the same checks as any other path.

use crate::materialize::EntryError;
use cordon_sandbox::Sandbox;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How many objects are fetched at once.
const PARALLEL_OBJECTS: usize = 16;

/// Where the objects are.
pub struct Location<'a> {
    /// `s3`, `gcs`, `azure` or `r2`.
    pub provider: &'a str,
    /// Bucket or container.
    pub bucket: &'a str,
    /// Key prefix.
    pub prefix: &'a str,
    /// A custom endpoint (an S3-compatible server, an emulator, R2's account URL).
    pub endpoint: Option<&'a str>,
    /// Region.
    pub region: Option<&'a str>,
}

/// Connects to the bucket `loc` names, with the harness's credentials from its environment.
pub fn store(loc: &Location<'_>) -> Result<Arc<dyn ObjectStore>, EntryError> {
    let err = |source| EntryError::Object {
        what: "open",
        location: format!("{} bucket {}", loc.provider, loc.bucket),
        source,
    };
    Ok(match loc.provider {
        "s3" | "r2" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(loc.bucket);
            if let Some(e) = loc.endpoint {
                b = b
                    .with_endpoint(e)
                    .with_allow_http(e.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(r) = loc.region {
                b = b.with_region(r);
            } else if loc.provider == "r2" {
                b = b.with_region("auto");
            }
            Arc::new(b.build().map_err(err)?)
        }
        "azure" => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(loc.bucket);
            if let Some(e) = loc.endpoint {
                b = b
                    .with_endpoint(e.to_string())
                    .with_allow_http(e.starts_with("http://"));
            }
            Arc::new(b.build().map_err(err)?)
        }
        "gcs" => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(loc.bucket);
            if let Some(e) = loc.endpoint {
                b = b.with_url(e);
            }
            Arc::new(b.build().map_err(err)?)
        }
        other => return Err(EntryError::UnknownProvider(other.to_string())),
    })
}

/// Copies every object under the prefix into `dest`; returns (digest, bytes, files).
pub async fn copy_prefix(
    sandbox: &dyn Sandbox,
    dest: &str,
    loc: &Location<'_>,
) -> Result<(String, u64, u64), EntryError> {
    let store = store(loc)?;
    let prefix = loc.prefix.trim_matches('/');
    let prefix_path = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let metas: Vec<object_store::ObjectMeta> = store
        .list(prefix_path.as_ref())
        .try_collect()
        .await
        .map_err(|source| EntryError::Object {
            what: "list",
            location: format!("{}://{}/{prefix}", loc.provider, loc.bucket),
            source,
        })?;
    sandbox.make_dir(dest, None).await?;
    let copied: Vec<(String, String, u64)> = futures::stream::iter(metas.into_iter().map(|meta| {
        let store = store.clone();
        async move {
            let key = meta.location.to_string();
            let rel = key
                .strip_prefix(prefix)
                .unwrap_or(&key)
                .trim_start_matches('/')
                .to_string();
            if rel.is_empty()
                || rel
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(EntryError::UnsafeKey(key));
            }
            let get = |source| EntryError::Object {
                what: "get",
                location: key.clone(),
                source,
            };
            let bytes = store
                .get(&meta.location)
                .await
                .map_err(get)?
                .bytes()
                .await
                .map_err(|source| EntryError::Object {
                    what: "get",
                    location: key.clone(),
                    source,
                })?;
            sandbox
                .write_file(&format!("{dest}/{rel}"), &bytes, None)
                .await
                .map_err(|source| EntryError::InSandbox {
                    path: rel.clone(),
                    source,
                })?;
            Ok::<_, EntryError>((rel, hex::encode(Sha256::digest(&bytes)), bytes.len() as u64))
        }
    }))
    .buffer_unordered(PARALLEL_OBJECTS)
    .try_collect()
    .await?;
    let mut listing: Vec<String> = copied
        .iter()
        .map(|(rel, d, _)| format!("{rel}\0{d}"))
        .collect();
    listing.sort();
    let digest = hex::encode(Sha256::digest(listing.join("\n").as_bytes()));
    Ok((
        digest,
        copied.iter().map(|c| c.2).sum(),
        copied.len() as u64,
    ))
}
