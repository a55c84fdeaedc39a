//! Gives the supervisor an identity: a hash of this crate's sources, which every binary that
//! embeds the supervisor carries. The harness compares it with the supervisor's own, so a
//! `cordon-supervisor` left over from another build is never used by mistake.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let mut all = Vec::new();
    files(Path::new("src"), &mut all);
    all.push(PathBuf::from("Cargo.toml"));
    all.sort();
    // SipHash with fixed keys: the same sources give the same identity on every machine.
    let mut h = std::hash::DefaultHasher::new();
    for p in &all {
        p.hash(&mut h);
        std::fs::read(p).unwrap_or_default().hash(&mut h);
    }
    println!(
        "cargo:rustc-env=CORDON_SANDBOX_BUILD={}-{:016x}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        h.finish()
    );
}
