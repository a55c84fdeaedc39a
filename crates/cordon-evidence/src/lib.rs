//! Evidence that travels: a run exported as one file that anyone can check on another
//! machine, with no store, against the key they trust.
//!
//! A bundle ([`bundle`]) holds the run's events exactly as stored (the manifest's text, the
//! policy and the collected artifacts' digests are in them), its signed head, and the
//! listings of the snapshots its checkpoints name. [`bundle::verify`] checks every byte of
//! it: the hash chain, the head's signature, each listing against its id.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = cordon_store::Store::open_read_only(std::path::Path::new("cordon.db")).await?;
//! let run = store.resolve("last").await?;
//! let bytes = cordon_evidence::bundle::export(&store, &run, &std::collections::BTreeMap::new()).await?;
//! let report = cordon_evidence::bundle::verify(&bytes, None);
//! assert!(report.ok());
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod otlp;
pub mod report;
pub mod stats;
pub mod trace;
