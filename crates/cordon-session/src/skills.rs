//! Skills in the Agent Skills layout: a folder holding `SKILL.md`, whose YAML front matter
//! gives the skill's `name` and `description`, beside any files it uses.
//!
//! ```toml
//! [skills]
//! paths = ["skills"]          # host folders, relative to the agent file: a skill, or a folder of skills
//! dir = ".agents/skills"      # where they are placed in the workspace (the default)
//! ```
//!
//! With a sandbox, the skills of `paths` are copied into the workspace's skills folder,
//! beside any a manifest entry put there (a git repository, an object store prefix, a local
//! folder); every skill found there is listed. Without one, `read_skill` reads them from the
//! host folders. Either way the instructions list each skill's name, description and where
//! it is, and the model opens `SKILL.md` when a task needs it (progressive disclosure).

use crate::SessionError;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The name of the tool that reads skills from the host.
pub const READ_SKILL: &str = "read_skill";
/// Where skills are placed in the workspace by default.
pub const DEFAULT_DIR: &str = ".agents/skills";
/// The largest `SKILL.md` read.
const MAX_SKILL_MD: u64 = 256 << 10;
/// The most files one skill may hold.
const MAX_FILES: usize = 2_000;
/// The most bytes one skill may hold.
const MAX_BYTES: u64 = 64 << 20;

/// The `[skills]` section of an agent file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillsSection {
    /// Host folders (relative to the agent file): each a skill, or a folder of skills.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Where skills are in the workspace (workspace-relative; default `.agents/skills`).
    #[serde(default)]
    pub dir: Option<String>,
}

/// One skill, as listed to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// Its name (front matter `name`, the same as its folder's).
    pub name: String,
    /// What it is for and when to use it (front matter `description`).
    pub description: String,
    /// Its folder: workspace-relative when placed in a workspace, else the host folder.
    pub path: String,
}

/// The front matter fields cordon reads; others (license, metadata, …) are left alone.
#[derive(Deserialize)]
struct FrontMatter {
    name: Option<serde_yaml_ng::Value>,
    description: Option<serde_yaml_ng::Value>,
}

fn bad(what: String) -> SessionError {
    SessionError::bad_input(
        what,
        "a skill is a folder holding SKILL.md, which starts with YAML front matter between --- lines giving `name` (the folder's name: lowercase letters, digits and single hyphens, at most 64) and `description` (at most 1024 characters)",
    )
}

/// Reads and checks a skill folder's `SKILL.md`.
pub fn read_skill(dir: &Path) -> Result<(String, String), SessionError> {
    let file = dir.join("SKILL.md");
    let shown = file.display();
    let meta = std::fs::symlink_metadata(&file).map_err(|e| {
        bad(format!(
            "skill {}: cannot read SKILL.md: {e}",
            dir.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(bad(format!(
            "{shown} is not a plain file (links are not followed)"
        )));
    }
    if meta.len() > MAX_SKILL_MD {
        return Err(bad(format!("{shown} is over {} KiB", MAX_SKILL_MD >> 10)));
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| bad(format!("{shown}: cannot read it as UTF-8 text: {e}")))?;
    let (name, description) = front_matter(&text).map_err(|why| bad(format!("{shown}: {why}")))?;
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != folder {
        return Err(bad(format!(
            "{shown}: its name '{name}' is not its folder's name '{folder}'"
        )));
    }
    Ok((name, description))
}

/// The `name` and `description` of a `SKILL.md`'s front matter, checked.
fn front_matter(text: &str) -> Result<(String, String), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err("it does not start with front matter (a line '---')".into());
    }
    let mut yaml = String::new();
    let mut closed = false;
    for line in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        yaml.push_str(line);
    }
    if !closed {
        return Err("its front matter has no closing '---' line".into());
    }
    let fm: FrontMatter = serde_yaml_ng::from_str(&yaml)
        .map_err(|e| format!("its front matter is not valid YAML: {e}"))?;
    let text_of = |field: &str, v: Option<serde_yaml_ng::Value>| match v {
        Some(serde_yaml_ng::Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(format!("front matter `{field}` must be non-empty text")),
        None => Err(format!("front matter has no `{field}`")),
    };
    let name = text_of("name", fm.name)?;
    let description = text_of("description", fm.description)?;
    let valid = name.len() <= 64
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "front matter `name` '{}' must be lowercase letters, digits and single hyphens (at most 64, not starting or ending with one)",
            name.chars().take(80).collect::<String>()
        ));
    }
    if description.chars().count() > 1024 {
        return Err("front matter `description` is over 1024 characters".into());
    }
    Ok((name, description))
}

/// The skill folders a host path names: itself when it holds `SKILL.md`, else its
/// sub-folders that do.
pub fn folders(path: &Path) -> Result<Vec<PathBuf>, SessionError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| bad(format!("skills: cannot read {}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Err(bad(format!("skills: {} is not a folder", path.display())));
    }
    if path.join("SKILL.md").exists() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(path)
        .map_err(|e| bad(format!("skills: cannot list {}: {e}", path.display())))?;
    for entry in entries.flatten() {
        let p = entry.path();
        let real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if real_dir && p.join("SKILL.md").exists() {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(bad(format!(
            "skills: {} holds no SKILL.md, and no folder in it does",
            path.display()
        )));
    }
    Ok(found)
}

/// The workspace-relative skills folder, checked: relative, inside the workspace.
pub fn checked_dir(section: &SkillsSection) -> Result<String, SessionError> {
    let dir = section.dir.as_deref().unwrap_or(DEFAULT_DIR);
    let p = Path::new(dir);
    let inside = !dir.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(SessionError::bad_input(
            format!("skills.dir '{dir}' is not a folder inside the workspace"),
            "give a workspace-relative path without '..', like .agents/skills",
        ));
    }
    Ok(dir.trim_end_matches('/').to_string())
}

/// The skills a section's host `paths` name (relative to `base`), each read and checked:
/// (host folder, name, description).
pub fn from_host(
    section: &SkillsSection,
    base: &Path,
) -> Result<Vec<(PathBuf, String, String)>, SessionError> {
    let mut out: Vec<(PathBuf, String, String)> = Vec::new();
    for p in &section.paths {
        for folder in folders(&base.join(p))? {
            let (name, description) = read_skill(&folder)?;
            if let Some((other, ..)) = out.iter().find(|(_, n, _)| *n == name) {
                return Err(bad(format!(
                    "two skills are named '{name}': {} and {}",
                    other.display(),
                    folder.display()
                )));
            }
            out.push((folder, name, description));
        }
    }
    Ok(out)
}

/// `workspace`/`dir`, made when missing, with no link on the way: a link there could carry
/// the skills out of the workspace onto the host.
fn folder_inside(workspace: &Path, dir: &str) -> Result<PathBuf, SessionError> {
    let mut at = workspace.to_path_buf();
    for part in Path::new(dir).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(bad_place(format!(
                    "skills: {} in the workspace is a link, which could lead out of it; skills are not placed through links",
                    at.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(bad_place(format!(
                    "skills: {} in the workspace is not a folder",
                    at.display()
                )));
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir(&at)
                .map_err(|e| bad_place(format!("skills: cannot make {}: {e}", at.display())))?,
        }
    }
    Ok(at)
}

/// A problem with where skills go (not with a skill itself).
fn bad_place(what: String) -> SessionError {
    SessionError::bad_input(
        what,
        "skills go to `dir` (default .agents/skills) inside the workspace, a plain folder",
    )
}

/// Copies a skill folder into `to` (made new): plain files and folders only. A link is an
/// error: it could point anywhere on the host, and the workspace would then hold that.
pub fn copy_skill(from: &Path, to: &Path) -> Result<(), SessionError> {
    if std::fs::symlink_metadata(to).is_ok() {
        // An earlier run on this workspace placed it: the same files are fine as they are.
        if same_files(from, to) {
            return Ok(());
        }
        return Err(bad_place(format!(
            "skills: {} is in the workspace already, with other files than {} (changed since an earlier run placed it, or put there by a manifest entry); cordon does not overwrite it: remove it, or leave the skill out of `paths`",
            to.display(),
            from.display()
        )));
    }
    let mut files = 0usize;
    let mut bytes = 0u64;
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry =
            entry.map_err(|e| bad(format!("skills: cannot read {}: {e}", from.display())))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        let kind = entry.file_type();
        let io = |e: std::io::Error| {
            bad(format!(
                "skills: cannot copy {}: {e}",
                entry.path().display()
            ))
        };
        if kind.is_symlink() {
            return Err(bad(format!(
                "skills: {} is a link; skills are copied without links (it could point outside the skill)",
                entry.path().display()
            )));
        } else if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io)?;
        } else if kind.is_file() {
            files += 1;
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if files > MAX_FILES || bytes > MAX_BYTES {
                return Err(bad(format!(
                    "skills: {} is over {MAX_FILES} files or {} MiB",
                    from.display(),
                    MAX_BYTES >> 20
                )));
            }
            std::fs::copy(entry.path(), &target).map_err(io)?;
        }
    }
    Ok(())
}

/// Whether two folders hold the same plain files and folders, byte for byte (no links).
fn same_files(a: &Path, b: &Path) -> bool {
    fn listing(root: &Path) -> Option<Vec<(PathBuf, bool)>> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.ok()?;
            let kind = entry.file_type();
            if kind.is_symlink() || out.len() > MAX_FILES {
                return None;
            }
            let rel = entry.path().strip_prefix(root).ok()?.to_path_buf();
            out.push((rel, kind.is_dir()));
        }
        Some(out)
    }
    let (Some(left), Some(right)) = (listing(a), listing(b)) else {
        return false;
    };
    left == right
        && left.iter().filter(|(_, dir)| !dir).all(|(rel, _)| {
            matches!(
                (std::fs::read(a.join(rel)), std::fs::read(b.join(rel))),
                (Ok(x), Ok(y)) if x == y
            )
        })
}

/// Every skill in the workspace's skills folder (`workspace`/`dir`), read and checked. A
/// skill folder that is a link, or a `SKILL.md` that is one, is an error: it could lead
/// out of the workspace.
pub fn in_workspace(workspace: &Path, dir: &str) -> Result<Vec<Skill>, SessionError> {
    let root = workspace.join(dir);
    let Ok(meta) = std::fs::symlink_metadata(&root) else {
        return Ok(Vec::new());
    };
    if !meta.is_dir() {
        return Err(bad(format!(
            "skills: {dir} in the workspace is not a folder (or is a link, which could lead out of the workspace)"
        )));
    }
    let mut skills: Vec<Skill> = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .map_err(|e| bad(format!("skills: cannot list {dir}: {e}")))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| bad(format!("skills: {dir}/{name}: {e}")))?;
        if kind.is_symlink() {
            return Err(bad(format!(
                "skills: {dir}/{name} is a link, which could lead out of the workspace"
            )));
        }
        if !kind.is_dir() {
            continue;
        }
        let (skill, description) = read_skill(&entry.path())?;
        if skills.iter().any(|s| s.name == skill) {
            return Err(bad(format!("two skills are named '{skill}' in {dir}")));
        }
        skills.push(Skill {
            name: skill,
            description,
            path: format!("{dir}/{name}"),
        });
    }
    Ok(skills)
}

/// The part of the instructions that lists the skills.
pub fn instructions(skills: &[Skill], sandboxed: bool) -> String {
    let how = if sandboxed {
        "read its SKILL.md (and then the files it points to) before you act"
    } else {
        "read its SKILL.md with the read_skill tool (and then the files it points to) before you act"
    };
    let mut text = format!(
        "## Skills\n\nSkills are folders of instructions, scripts and resources for particular tasks. When a task matches a skill's description, {how}. Paths in a skill are relative to its folder.\n"
    );
    for s in skills {
        let one_line = s
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        text.push_str(&format!("\n- {}: {one_line} ({}/SKILL.md)", s.name, s.path));
    }
    text
}

/// The skills listed to a run's model, and the tool that reads them from the host.
pub(crate) type RunSkills = (Vec<Skill>, Option<std::sync::Arc<dyn cordon_tools::Tool>>);

/// A run's skills: those listed to the model, and the `read_skill` tool when they are read
/// from the host. A new run places the agent's skills in its workspace (when it has one)
/// and finds every skill there; a resumed run has them as it recorded them.
pub(crate) fn for_run(
    agent: &crate::AgentSpec,
    workspace: Option<(&Path, bool)>,
    new_run: bool,
    origin: &str,
) -> Result<RunSkills, SessionError> {
    let with_origin = |e: SessionError| {
        SessionError::bad_input(
            format!("{origin}: {}", e.message()),
            e.hint_text().unwrap_or_default().to_string(),
        )
    };
    let host_tool = |skills: &[Skill]| {
        (!skills.is_empty()).then(|| {
            read_skill_tool(
                skills
                    .iter()
                    .map(|s| (s.name.clone(), PathBuf::from(&s.path)))
                    .collect(),
            )
        })
    };
    if !new_run {
        let placed = agent.placed_skills.clone().unwrap_or_default();
        let tool = match workspace {
            Some(_) => None,
            None => host_tool(&placed),
        };
        return Ok((placed, tool));
    }
    // An agent without `[skills]` has none: a workspace's own folders are not read.
    let Some(section) = agent.skills.clone() else {
        return Ok((Vec::new(), None));
    };
    let base = agent
        .skills_base
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let from_host = from_host(&section, &base).map_err(with_origin)?;
    match workspace {
        Some((ws, read_only)) => {
            let dir = checked_dir(&section).map_err(with_origin)?;
            if !from_host.is_empty() {
                if read_only {
                    return Err(SessionError::bad_input(
                        format!(
                            "{origin}: skills cannot be placed in a read-only workspace ({dir})"
                        ),
                        "put them in the workspace yourself, or with a manifest entry at .agents/skills/NAME, and leave out `paths`",
                    ));
                }
                let root = folder_inside(ws, &dir).map_err(with_origin)?;
                for (folder, name, _) in &from_host {
                    copy_skill(folder, &root.join(name)).map_err(with_origin)?;
                }
            }
            Ok((in_workspace(ws, &dir).map_err(with_origin)?, None))
        }
        None => {
            let skills: Vec<Skill> = from_host
                .into_iter()
                .map(|(folder, name, description)| Skill {
                    name,
                    description,
                    path: std::path::absolute(&folder)
                        .unwrap_or(folder)
                        .display()
                        .to_string(),
                })
                .collect();
            let tool = host_tool(&skills);
            Ok((skills, tool))
        }
    }
}

/// The arguments of `read_skill`.
#[derive(Deserialize, schemars::JsonSchema)]
struct ReadSkill {
    /// The skill's name, as listed in the instructions.
    name: String,
    /// A file in the skill's folder, relative to it (default `SKILL.md`); a folder is listed.
    #[serde(default)]
    file: Option<String>,
}

/// The `read_skill` tool for agents without a sandbox: reads a skill's files from its host
/// folder, and nothing outside it (no `..`, no links followed, at most 256 KiB).
pub fn read_skill_tool(skills: Vec<(String, PathBuf)>) -> std::sync::Arc<dyn cordon_tools::Tool> {
    use cordon_tools::ToolError;
    let skills = std::sync::Arc::new(skills);
    std::sync::Arc::new(cordon_tools::FunctionTool::new(
        READ_SKILL,
        "Reads a skill's SKILL.md, or another file of the skill (a folder is listed). Skills are listed in your instructions.",
        move |a: ReadSkill| {
            let skills = skills.clone();
            async move {
                let Some((_, root)) = skills.iter().find(|(n, _)| *n == a.name) else {
                    let names: Vec<&str> = skills.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(ToolError::Failed(format!(
                        "there is no skill named '{}'; the skills are: {}",
                        a.name.chars().take(80).collect::<String>(),
                        names.join(", ")
                    )));
                };
                let rel = a.file.unwrap_or_else(|| "SKILL.md".into());
                let rel_path = Path::new(&rel);
                if !rel_path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    return Err(ToolError::InvalidArguments(
                        "file is a path inside the skill's folder, without '..' or a leading '/'"
                            .into(),
                    ));
                }
                // Every step is checked, so a link cannot lead out of the folder.
                let mut at = root.clone();
                for part in rel_path.components() {
                    at.push(part);
                    let meta = std::fs::symlink_metadata(&at)
                        .map_err(|e| ToolError::Failed(format!("{rel}: {e}")))?;
                    if meta.file_type().is_symlink() {
                        return Err(ToolError::Failed(format!("{rel}: links are not followed")));
                    }
                }
                let meta =
                    std::fs::metadata(&at).map_err(|e| ToolError::Failed(format!("{rel}: {e}")))?;
                if meta.is_dir() {
                    let mut names: Vec<String> = std::fs::read_dir(&at)
                        .map_err(|e| ToolError::Failed(format!("{rel}: {e}")))?
                        .flatten()
                        .map(|e| {
                            let dir = e.file_type().is_ok_and(|t| t.is_dir());
                            format!(
                                "{}{}",
                                e.file_name().to_string_lossy(),
                                if dir { "/" } else { "" }
                            )
                        })
                        .collect();
                    names.sort();
                    return Ok(names.join("\n"));
                }
                if !meta.is_file() {
                    return Err(ToolError::Failed(format!("{rel} is not a plain file")));
                }
                if meta.len() > MAX_SKILL_MD {
                    return Err(ToolError::Failed(format!(
                        "{rel} is over {} KiB",
                        MAX_SKILL_MD >> 10
                    )));
                }
                std::fs::read_to_string(&at)
                    .map_err(|e| ToolError::Failed(format!("{rel}: not readable as text: {e}")))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(root: &Path, folder: &str, md: &str) -> PathBuf {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("SKILL.md"), md).unwrap();
        dir
    }

    #[test]
    fn front_matter_is_read_and_checked() {
        let ok =
            "---\nname: pdf-forms\ndescription: >\n  Fills PDF forms.\nlicense: MIT\n---\n# How\n";
        assert_eq!(
            front_matter(ok).unwrap(),
            ("pdf-forms".into(), "Fills PDF forms.".into())
        );
        for (text, says) in [
            ("# no front matter", "does not start"),
            ("---\nname: a\n", "no closing"),
            ("---\nname: [a\n---\n", "not valid YAML"),
            ("---\ndescription: d\n---\n", "no `name`"),
            ("---\nname: a\n---\n", "no `description`"),
            ("---\nname: Bad_Name\ndescription: d\n---\n", "lowercase"),
            ("---\nname: a--b\ndescription: d\n---\n", "single hyphens"),
            ("---\nname: a\ndescription: [1]\n---\n", "non-empty text"),
        ] {
            let err = front_matter(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        let long = format!("---\nname: a\ndescription: {}\n---\n", "x".repeat(1025));
        assert!(front_matter(&long).unwrap_err().contains("1024"));
    }

    #[test]
    fn host_paths_name_skills_and_duplicates_are_refused() {
        let t = tempfile::tempdir().unwrap();
        skill(
            t.path(),
            "set/review",
            "---\nname: review\ndescription: Reviews.\n---\n",
        );
        skill(
            t.path(),
            "set/notes",
            "---\nname: notes\ndescription: Notes.\n---\n",
        );
        skill(
            t.path(),
            "one/review",
            "---\nname: review\ndescription: Again.\n---\n",
        );
        skill(
            t.path(),
            "named/wrong",
            "---\nname: other\ndescription: x\n---\n",
        );
        let section = |paths: &[&str]| SkillsSection {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            dir: None,
        };
        let found = from_host(&section(&["set"]), t.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(names, ["notes", "review"]);
        let err = from_host(&section(&["set", "one/review"]), t.path()).unwrap_err();
        assert!(
            err.to_string().contains("two skills are named 'review'"),
            "{err}"
        );
        let err = from_host(&section(&["named/wrong"]), t.path()).unwrap_err();
        assert!(err.to_string().contains("not its folder's name"), "{err}");
        let err = from_host(&section(&["missing"]), t.path()).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn links_never_carry_a_skill_out_of_its_folder() {
        let t = tempfile::tempdir().unwrap();
        let src = skill(
            t.path(),
            "src/leaky",
            "---\nname: leaky\ndescription: d\n---\n",
        );
        std::fs::write(t.path().join("host-secret"), "secret").unwrap();
        std::os::unix::fs::symlink(t.path().join("host-secret"), src.join("data")).unwrap();
        let err = copy_skill(&src, &t.path().join("ws/.agents/skills/leaky")).unwrap_err();
        assert!(err.to_string().contains("is a link"), "{err}");
        // A skill folder in the workspace that is a link out of it is refused too.
        let ws = t.path().join("ws2");
        std::fs::create_dir_all(ws.join(".agents/skills")).unwrap();
        std::os::unix::fs::symlink(t.path().join("src/leaky"), ws.join(".agents/skills/leaky"))
            .unwrap();
        let err = in_workspace(&ws, DEFAULT_DIR).unwrap_err();
        assert!(err.to_string().contains("is a link"), "{err}");
        // Nor does the host tool read through a link or a '..'.
        let tool = read_skill_tool(vec![("leaky".into(), src.clone())]);
        let ctx = cordon_tools::ToolContext {
            run_id: cordon_core::RunId::new(),
            call_id: "c".into(),
            idempotency_key: "k".into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for args in [
            r#"{"name":"leaky","file":"data"}"#,
            r#"{"name":"leaky","file":"../../host-secret"}"#,
        ] {
            let err = rt.block_on(tool.call(&ctx, args)).unwrap_err();
            assert!(!err.to_string().contains("secret\""), "{err}");
            assert!(
                err.to_string().contains("links are not followed")
                    || err.to_string().contains("without '..'"),
                "{err}"
            );
        }
        let md = rt.block_on(tool.call(&ctx, r#"{"name":"leaky"}"#)).unwrap();
        assert!(md.text.contains("name: leaky"));
        // A skill placed by an earlier run is left as it is; one changed since is refused.
        let plain = skill(
            t.path(),
            "src/plain",
            "---\nname: plain\ndescription: d\n---\n",
        );
        let placed = t.path().join("ws3/.agents/skills/plain");
        copy_skill(&plain, &placed).unwrap();
        copy_skill(&plain, &placed).unwrap();
        std::fs::write(
            placed.join("SKILL.md"),
            "---\nname: plain\ndescription: edited\n---\n",
        )
        .unwrap();
        let err = copy_skill(&plain, &placed).unwrap_err();
        assert!(err.to_string().contains("does not overwrite"), "{err}");
        for dir in ["../out", "/abs", ""] {
            let s = SkillsSection {
                paths: vec![],
                dir: Some(dir.into()),
            };
            assert!(checked_dir(&s).is_err(), "{dir}");
        }
    }
}
