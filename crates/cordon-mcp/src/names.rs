//! The names MCP tools are offered under: `server__tool`, within what every provider
//! accepts (`^[a-zA-Z0-9_-]{1,64}$`).

use sha2::Digest;

/// The longest tool name the providers accept.
pub const MAX_TOOL_NAME: usize = 64;

/// The name the model calls a server's tool by. Characters the providers refuse become
/// `_`; a name too long, or changed that way, ends in a short hash of the original so that
/// two tools never share a name.
pub fn namespaced(server: &str, tool: &str) -> String {
    let joined = format!("{server}__{tool}");
    let clean: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == joined && clean.len() <= MAX_TOOL_NAME {
        return clean;
    }
    let hash = hex::encode(&sha2::Sha256::digest(joined.as_bytes())[..4]);
    let keep = MAX_TOOL_NAME - hash.len() - 1;
    let head: String = clean.chars().take(keep).collect();
    format!("{head}_{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_providers_and_stay_distinct() {
        assert_eq!(namespaced("everything", "echo"), "everything__echo");
        let odd = namespaced("fs", "read.file");
        assert!(odd.starts_with("fs__read_file_"), "{odd}");
        assert_ne!(odd, namespaced("fs", "read/file"));
        let long = namespaced("s", &"t".repeat(100));
        assert_eq!(long.len(), MAX_TOOL_NAME);
        assert_ne!(long, namespaced("s", &"t".repeat(101)));
        for n in [odd, long] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
        }
    }
}
