//! Where tests find the real servers `scripts/test` installs, and what they do when one is
//! missing: fail under `CORDON_REQUIRE_PEERS` (as `scripts/test` and CI run), else skip.

use std::path::PathBuf;

/// The npm folder holding the MCP reference servers (`CORDON_MCP_PEERS`, else the
/// repository's `target/peers/node_modules`), or `None` when they are not installed (a
/// panic under `CORDON_REQUIRE_PEERS`).
pub fn mcp_servers() -> Option<PathBuf> {
    let dir = std::env::var_os("CORDON_MCP_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/node_modules")
        });
    let wanted = ["server-everything", "server-filesystem"];
    if wanted
        .iter()
        .all(|w| dir.join("@modelcontextprotocol").join(w).is_dir())
    {
        return Some(dir.canonicalize().unwrap_or(dir));
    }
    missing(&format!(
        "the MCP reference servers are not installed in {} (scripts/test installs them)",
        dir.display()
    ));
    None
}

/// A peer is missing: a failure under `CORDON_REQUIRE_PEERS`, else a note that the test
/// skipped.
pub fn missing(what: &str) {
    assert!(std::env::var_os("CORDON_REQUIRE_PEERS").is_none(), "{what}");
    eprintln!("skipped: {what}");
}
