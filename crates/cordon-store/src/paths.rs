//! Where the store lives by default.

use crate::StoreError;
use std::path::PathBuf;

/// `$XDG_STATE_HOME/cordon/cordon.db`, falling back to `~/.local/state/cordon/cordon.db`.
pub fn default_store_path() -> Result<PathBuf, StoreError> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let state = non_empty("XDG_STATE_HOME")
        .or_else(|| non_empty("HOME").map(|h| h.join(".local/state")))
        .ok_or(StoreError::NoHome)?;
    Ok(state.join("cordon").join("cordon.db"))
}

/// `$XDG_STATE_HOME/cordon/snapshots`, beside the default run store.
pub fn default_snapshot_dir() -> Result<PathBuf, StoreError> {
    Ok(default_store_path()?.with_file_name("snapshots"))
}
