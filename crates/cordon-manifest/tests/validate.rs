//! Every validation rule, with where it points.

use cordon_manifest::{EntryKind, ManifestError, parse};
use std::path::Path;

fn check(text: &str) -> Result<cordon_manifest::Manifest, ManifestError> {
    parse(text, "m.toml", Path::new("/base"))
}

fn problem(text: &str) -> (usize, usize, String, String) {
    let e = check(text).unwrap_err();
    let p = &e.problems[0];
    (p.line, p.column, p.message.clone(), p.hint.clone())
}

#[test]
fn a_full_manifest_resolves_in_path_order() {
    let m = check(
        r#"
root = "/workspace"
outputs = ["out"]

[entries."src/main.py"]
type = "file"
content = "print('hi')\n"
mode = "0755"

[entries.data]
type = "local_dir"
source = "data"
ignore = ["*.tmp"]

[entries.out]
type = "dir"

[entries.cfg]
type = "dir"
description = "configuration"
[entries.cfg.children."app.toml"]
type = "file"
base64 = "eD0xCg=="

[entries.repo]
type = "git_repo"
url = "file:///tmp/repo"
ref = "main"
depth = 1

[env]
LOG = "debug"
TOKEN = { from_host = "MY_TOKEN" }
"#,
    )
    .unwrap();
    let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["cfg", "cfg/app.toml", "data", "out", "repo", "src/main.py"]
    );
    assert_eq!(m.entries[1].kind, EntryKind::File(b"x=1\n".to_vec()));
    assert_eq!(m.entries[5].mode, Some(0o755));
    assert_eq!(
        m.entries[2].kind,
        EntryKind::LocalDir {
            source: "/base/data".into(),
            ignore: vec!["*.tmp".into()]
        }
    );
    let tree = cordon_manifest::tree::render(&m);
    assert!(
        tree.contains("  src/\n    main.py  (file, 12 bytes, mode 0755)"),
        "{tree}"
    );
    assert!(tree.contains("out/  (dir, output)"), "{tree}");
}

#[test]
fn each_bad_entry_is_refused_where_it_is_written() {
    let (line, col, msg, _) =
        problem("[entries.\"/etc/passwd\"]\ntype = \"file\"\ncontent = \"x\"\n");
    assert_eq!((line, col), (1, 10));
    assert!(msg.contains("is absolute"), "{msg}");

    let (line, _, msg, _) = problem(
        "[entries.a]\ntype = \"dir\"\n\n[entries.\"a/../b\"]\ntype = \"file\"\ncontent = \"x\"\n",
    );
    assert_eq!(line, 4);
    assert!(
        msg.contains("'..' segment (even one that stays inside"),
        "{msg}"
    );

    let (_, _, msg, hint) =
        problem("[entries.f]\ntype = \"file\"\ncontent = \"x\"\nsource = \"y\"\n");
    assert!(
        msg.contains("field 'source' does not apply to type 'file'"),
        "{msg}"
    );
    assert!(hint.contains("content, base64"), "{hint}");

    let (line, _, msg, _) =
        problem("[entries.f]\ntype = \"file\"\ncontent = \"x\"\nmode = \"4755\"\n");
    assert_eq!(line, 4);
    assert!(msg.contains("setuid"), "{msg}");
    let (_, _, msg, _) = problem("[entries.f]\ntype = \"file\"\ncontent = \"x\"\nmode = \"89\"\n");
    assert!(msg.contains("not octal"), "{msg}");

    let (_, _, msg, _) = problem(
        "[entries.f]\ntype = \"file\"\ncontent = \"x\"\n[entries.\"f/g\"]\ntype = \"file\"\ncontent = \"y\"\n",
    );
    assert!(msg.contains("lies inside entry 'f'"), "{msg}");

    let (_, _, msg, _) = problem("[entries.f]\ntype = \"local_file\"\n");
    assert!(msg.contains("needs 'source'"), "{msg}");

    // Grants of the whole host or of its own directories, however written.
    let (line, _, msg, _) = problem("[[grants]]\npath = \"/opt/..\"\nmode = \"ro\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("the whole host"), "{msg}");
    let (_, _, msg, _) = problem("[[grants]]\npath = \"/proc/self\"\nmode = \"ro\"\n");
    assert!(msg.contains("inside /proc"), "{msg}");
    assert!(check("[[grants]]\npath = \"/opt/data\"\nmode = \"ro\"\n").is_ok());
}

#[test]
fn unknown_fields_and_types_come_from_the_parser_with_their_place() {
    let (line, _, msg, _) =
        problem("[entries.f]\ntype = \"file\"\ncontent = \"x\"\ncolour = \"red\"\n");
    assert_eq!(line, 4, "toml points at the unknown field itself");
    assert!(msg.contains("colour"), "{msg}");
    let (_, _, msg, _) = problem("[entries.f]\ntype = \"symlink\"\n");
    assert!(
        msg.contains("symlink") && msg.contains("local_dir"),
        "{msg}"
    );
    let (_, _, msg, _) = problem("rooot = \"/w\"\n");
    assert!(msg.contains("rooot"), "{msg}");
}

#[test]
fn json_and_yaml_are_accepted_and_located() {
    let ok = parse(
        r#"{"entries": {"a.txt": {"type": "file", "content": "x"}}}"#,
        "m.json",
        Path::new("/b"),
    )
    .unwrap();
    assert_eq!(ok.entries[0].path, "a.txt");
    let yaml = parse(
        "entries:\n  b.txt:\n    type: file\n    content: y\n",
        "m.yaml",
        Path::new("/b"),
    )
    .unwrap();
    assert_eq!(yaml.entries[0].path, "b.txt");
    let e = parse(
        "entries:\n  ../c:\n    type: file\n    content: y\n",
        "m.yml",
        Path::new("/b"),
    )
    .unwrap_err();
    assert_eq!(e.problems[0].line, 2, "{e}");
    let e = parse(
        "{\"entries\": {\"x\": {\"type\": \"file\", \"content\": 3}}}",
        "m.json",
        Path::new("/b"),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("m.json:1:"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = check("[entries.\"/a\"]\ntype = \"dir\"\n[entries.\"b/..\"]\ntype = \"dir\"\n[env]\n\"1BAD\" = \"x\"\n").unwrap_err();
    assert_eq!(e.problems.len(), 3, "{e}");
    assert!(e.to_string().contains("m.toml:"), "{e}");
}

#[test]
fn checkpoint_rules_are_read_and_bad_patterns_pointed_at() {
    let m = check("[checkpoints]\nexclude = [\"target/\"]\ngitignore = true\n").unwrap();
    assert_eq!(m.checkpoints.exclude, ["target/"]);
    assert!(m.checkpoints.gitignore);
    assert!(
        cordon_manifest::tree::render(&m)
            .contains("checkpoints leave out: target/, what .gitignore files ignore"),
        "the tree says it"
    );
    let (line, _, msg, hint) = problem("[checkpoints]\nexclude = [\"ok/\", \"[z-a]\"]\n");
    assert_eq!(line, 2);
    assert!(
        msg.contains("checkpoints.exclude '[z-a]' is not a pattern"),
        "{msg}"
    );
    assert!(hint.contains("gitignore-style"), "{hint}");
    let e = check("[checkpoints]\nexclud = [\"x\"]\n").unwrap_err();
    assert!(e.problems[0].message.contains("unknown field"), "{e}");
}

#[test]
fn outputs_are_directories_made_empty_or_paths_the_run_must_make() {
    let m = check(
        r#"outputs = ["out/", { path = "review_summary.md", required = true }, { path = "maybe" }]"#,
    )
    .unwrap();
    let got: Vec<_> = m
        .outputs
        .iter()
        .map(|o| (o.path.as_str(), o.required, o.made))
        .collect();
    assert_eq!(
        got,
        [
            ("out", false, true),
            ("review_summary.md", true, false),
            ("maybe", false, false)
        ]
    );
    let tree = cordon_manifest::tree::render(&m);
    assert!(
        tree.contains("review_summary.md  (output the run must make)"),
        "{tree}"
    );
    let (_, _, message, _) = problem(r#"outputs = ["out", "out"]"#);
    assert!(message.contains("listed twice"), "{message}");
    let (_, _, message, hint) = problem(r#"outputs = [{ path = "../x", required = true }]"#);
    assert!(message.contains("output '../x'"), "{message}");
    assert!(hint.contains("required = true"), "{hint}");
    let e = check(r#"outputs = [{ path = "x", needed = true }]"#).unwrap_err();
    assert!(!e.problems.is_empty());
}
