//! The resolved workspace as a tree, for `cordon manifest check`.

use crate::validate::{EntryKind, Manifest};
use std::collections::BTreeSet;

/// The workspace a manifest declares, one line per path, indented by depth.
pub fn render(m: &Manifest) -> String {
    let outputs: BTreeSet<&str> = m.outputs.iter().map(|o| o.path.as_str()).collect();
    let mut out = format!("{}\n", m.root);
    // Directories that are only implied by deeper entries get a line of their own.
    let mut shown = BTreeSet::new();
    for e in &m.entries {
        let parts: Vec<&str> = e.path.split('/').collect();
        for depth in 0..parts.len() - 1 {
            let dir = parts[..=depth].join("/");
            if shown.insert(dir.clone()) && !m.entries.iter().any(|x| x.path == dir) {
                out.push_str(&format!("{}{}/\n", "  ".repeat(depth + 1), parts[depth]));
            }
        }
        shown.insert(e.path.clone());
        let name = parts[parts.len() - 1];
        let slash = if matches!(e.kind, EntryKind::File(_) | EntryKind::LocalFile { .. }) {
            ""
        } else {
            "/"
        };
        let mut what = describe(&e.kind, m);
        if let Some(mode) = e.mode {
            what.push_str(&format!(", mode {mode:04o}"));
        }
        for (flag, on) in [
            ("read-only", e.read_only),
            ("ephemeral", e.ephemeral),
            ("output", outputs.contains(e.path.as_str())),
        ] {
            if on {
                what.push_str(&format!(", {flag}"));
            }
        }
        if let Some(d) = &e.description {
            what.push_str(&format!(" — {d}"));
        }
        out.push_str(&format!(
            "{}{name}{slash}  ({what})\n",
            "  ".repeat(parts.len())
        ));
    }
    for o in &m.outputs {
        if m.entries.iter().any(|e| e.path == o.path) {
            continue;
        }
        let p = &o.path;
        match (o.made, o.required) {
            (true, _) => out.push_str(&format!("  {p}/  (output, created empty)\n")),
            (false, true) => out.push_str(&format!("  {p}  (output the run must make)\n")),
            (false, false) => out.push_str(&format!("  {p}  (output, if the run makes it)\n")),
        }
    }
    if !m.env.is_empty() {
        out.push_str(&format!(
            "env: {}\n",
            m.env.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for g in &m.grants {
        out.push_str(&format!("grant: {} ({})\n", g.path, g.mode));
    }
    if !m.checkpoints.is_empty() {
        let mut what = m.checkpoints.exclude.clone();
        if m.checkpoints.gitignore {
            what.push("what .gitignore files ignore".into());
        }
        out.push_str(&format!("checkpoints leave out: {}\n", what.join(", ")));
    }
    out
}

fn describe(kind: &EntryKind, m: &Manifest) -> String {
    let rel = |p: &std::path::Path| {
        p.strip_prefix(&m.base_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    match kind {
        EntryKind::File(bytes) => format!("file, {} bytes", bytes.len()),
        EntryKind::Dir => "dir".into(),
        EntryKind::LocalFile { source } => format!("local_file from {}", rel(source)),
        EntryKind::LocalDir { source, ignore } if ignore.is_empty() => {
            format!("local_dir from {}", rel(source))
        }
        EntryKind::LocalDir { source, ignore } => format!(
            "local_dir from {}, ignoring {}",
            rel(source),
            ignore.join(" ")
        ),
        EntryKind::GitRepo {
            url,
            git_ref,
            commit,
            ..
        } => {
            format!(
                "git_repo {url}{}",
                git_ref
                    .as_ref()
                    .or(commit.as_ref())
                    .map(|r| format!(" @ {r}"))
                    .unwrap_or_default()
            )
        }
        EntryKind::ObjectStore {
            provider,
            bucket,
            prefix,
            ..
        } => format!("object_store {provider}://{bucket}/{prefix}"),
    }
}
