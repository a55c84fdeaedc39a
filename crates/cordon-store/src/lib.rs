//! cordon's run log: every run is an append-only, hash-chained sequence of events in a
//! SQLite file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cordon_store::StoreError> {
//! use cordon_core::{EventPayload, RunId};
//! let store = cordon_store::Store::open(std::path::Path::new("/tmp/cordon.db")).await?;
//! let mut log = store.create_run(&RunId::new()).await?;
//! log.append(&EventPayload::UserInput { text: "hello".into() }).await?;
//! let events = store.events(log.run_id()).await?;
//! cordon_core::verify_chain(&events).expect("untouched");
//! # Ok(()) }
//! ```
//!
//! The file is in WAL mode with `synchronous = NORMAL`: an appended event survives the
//! process being killed at any point (not necessarily a power cut). Triggers refuse
//! `UPDATE` and `DELETE` on events; the hash chain catches whoever goes around them, and each
//! run's head record (its count and last hash, kept beside the file) catches events removed
//! from or added to the end ([`verify::verify_run`]). The store's key signs every head
//! ([`signing`]), so whoever edits both still cannot make them agree.

mod error;
mod head;
mod owner;
mod paths;
mod runlog;
pub mod signing;
pub mod snapshot;
mod store;
pub mod verify;

pub use error::{StoreError, StoreErrorKind};
pub use head::{Head, HeadError, HeadSignature};
pub use owner::RunOwner;
pub use paths::{default_snapshot_dir, default_store_path};
pub use runlog::{Pushed, RunLog};
pub use snapshot::{Snapshot, SnapshotError, SnapshotStore};
pub use store::{CheckpointRef, RunSummary, Store, StoredRow};
