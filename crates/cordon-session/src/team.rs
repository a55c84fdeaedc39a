//! Teams: the agents an agent file reaches through `[[handoffs]]` (they take over the
//! conversation in the same run) and `[[agent_tools]]` (they run as sub-agents, each in a
//! run of its own, when the model calls them as tools).
//!
//! ```toml
//! [[handoffs]]
//! agent = "billing.toml"          # relative to this file
//! description = "Questions about invoices and refunds."
//! history = "last_turns"          # all (default), none, or last_turns with `turns`
//! turns = 2
//!
//! [[agent_tools]]
//! agent = "reviewer.toml"
//! name = "review"                 # the tool's name (default: the agent's name)
//! description = "Reviews a change and answers with findings."
//! workspace = "copy"              # shared (default), copy, or give `manifest`
//! patch = true                    # with copy: its changes come back as a patch
//! ```
//!
//! The other agents of a team declare what they are (name, model, instructions, max_turns,
//! tools, model settings, output schema, guardrails, and handoffs); what the run is under
//! (policy, approvals, budgets, compaction, MCP servers, skills, checkpoints) is the entry
//! agent's, for all of them, and a sub-agent's budgets are shared with the whole tree.

use crate::SessionError;
use crate::agent::AgentSpec;
use cordon_harness::{Handoff, History};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The most sub-agents that run at once, unless the agent file says.
pub const DEFAULT_MAX_PARALLEL_AGENTS: u32 = 4;

/// An agent file's `[[handoffs]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffSection {
    /// The receiving agent's file, relative to this one.
    pub agent: String,
    /// When to hand off to it, as the model reads it.
    #[serde(default)]
    pub description: String,
    /// What of the conversation it sees: `all` (default), `none`, `last_turns`.
    #[serde(default)]
    pub history: Option<String>,
    /// With `history = "last_turns"`: how many of the model's last answers it sees.
    #[serde(default)]
    pub turns: Option<u32>,
}

/// Where a sub-agent works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// In the parent's workspace and sandbox.
    #[default]
    Shared,
    /// In a sandbox of its own, over a copy of the parent's workspace at its last
    /// checkpoint.
    Copy,
    /// In a sandbox of its own, over a workspace built from its own manifest.
    Manifest,
}

impl WorkspaceMode {
    /// As events show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkspaceMode::Shared => "shared",
            WorkspaceMode::Copy => "copy",
            WorkspaceMode::Manifest => "manifest",
        }
    }
}

/// An agent file's `[[agent_tools]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentToolSection {
    /// The agent's file, relative to this one.
    pub agent: String,
    /// The tool's name (default: the agent's name).
    #[serde(default)]
    pub name: Option<String>,
    /// What the tool is for, as the model reads it.
    #[serde(default)]
    pub description: String,
    /// `shared` (default) or `copy`.
    #[serde(default)]
    pub workspace: Option<WorkspaceMode>,
    /// A manifest its own workspace is built from (relative to this file).
    #[serde(default)]
    pub manifest: Option<String>,
    /// With `workspace = "copy"`: its workspace changes come back as a patch for
    /// `apply_patch`.
    #[serde(default)]
    pub patch: bool,
}

/// An agent tool, resolved: what a run records (so a resume offers it again) and builds
/// the tool from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentTool {
    /// The tool's name.
    pub name: String,
    /// What the tool is for.
    pub description: String,
    /// Where the sub-agent works.
    pub workspace: WorkspaceMode,
    /// Its manifest's path (read again when a sub-agent starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// Whether its changes come back as a patch.
    #[serde(default)]
    pub patch: bool,
    /// The most sub-agents of the run that work at once.
    pub max_parallel: u32,
    /// The agent, as recorded.
    pub agent: cordon_core::AgentInfo,
}

/// What an agent of a team other than the entry agent may not declare: the run's
/// settings are the entry agent's (and a handoff target's turns are the run's).
fn member_problem(spec: &AgentSpec, handoff: bool) -> Option<&'static str> {
    let checks = [
        (handoff && spec.max_turns.is_some(), "max_turns"),
        (!spec.mcp_servers.is_empty(), "[mcp_servers]"),
        (spec.skills.is_some(), "[skills]"),
        (spec.compaction.is_some(), "[compaction]"),
        (!spec.budgets.is_empty(), "[budgets]"),
        (!spec.approvals.is_empty(), "[approvals]"),
        (spec.policy_name.is_some(), "policy"),
        (!spec.checkpoints.is_empty(), "[checkpoints]"),
        (!spec.agent_tool_sections.is_empty(), "[[agent_tools]]"),
        (spec.max_parallel_agents.is_some(), "max_parallel_agents"),
    ];
    checks
        .into_iter()
        .find_map(|(set, what)| set.then_some(what))
}

/// The filter a `[[handoffs]]` entry names.
fn history(h: &HandoffSection, shown: &str) -> Result<History, SessionError> {
    let bad = |what: String| {
        SessionError::bad_input(
            format!("{shown}: [[handoffs]] agent = \"{}\": {what}", h.agent),
            "history is \"all\" (the default), \"none\", or \"last_turns\" with turns = N",
        )
    };
    match (h.history.as_deref(), h.turns) {
        (None | Some("all"), None) => Ok(History::All),
        (Some("none"), None) => Ok(History::None),
        (Some("last_turns"), Some(n)) if n > 0 => Ok(History::LastTurns(n)),
        (Some("last_turns"), _) => Err(bad("last_turns needs turns = N (1 or more)".into())),
        (None | Some("all" | "none"), Some(_)) => {
            Err(bad("turns is only for history = \"last_turns\"".into()))
        }
        (Some(other), _) => Err(bad(format!("unknown history '{other}'"))),
    }
}

/// Checks a name (`what`: an agent's, a tool's): it is a tool name's part and shown in
/// events.
fn check_name(what: &str, name: &str, shown: &str) -> Result<(), SessionError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    Err(SessionError::bad_input(
        format!(
            "{shown}: the {what} name '{}' cannot name a handoff or a tool",
            name.escape_debug()
        ),
        "names in a team are at most 48 letters, digits, '_' or '-'",
    ))
}

/// Reads the team of the agent file at `path` (already loaded as `root`): every agent its
/// handoffs reach (and theirs), and its agent tools.
pub(crate) fn load(root: &mut AgentSpec, path: &Path) -> Result<(), SessionError> {
    let has_team = !root.handoff_sections.is_empty() || !root.agent_tool_sections.is_empty();
    let shown = path.display().to_string();
    if root.max_parallel_agents.is_some() && root.agent_tool_sections.is_empty() {
        return Err(SessionError::bad_input(
            format!("{shown}: max_parallel_agents is set, and the agent has no [[agent_tools]]"),
            "it bounds how many sub-agents work at once: leave it out, or add an agent tool",
        ));
    }
    if !has_team {
        return Ok(());
    }
    check_name("agent", &root.name, &shown)?;
    if root.max_parallel_agents == Some(0) {
        return Err(SessionError::bad_input(
            format!("{shown}: max_parallel_agents is 0"),
            "at least one sub-agent must be able to run",
        ));
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    // Each agent file once, by where it is; the entry agent is index 0.
    let mut files: Vec<PathBuf> = vec![canonical(path)];
    let mut specs: Vec<AgentSpec> = vec![std::mem::replace(root, AgentSpec::new("", ""))];
    let mut next = 0;
    while next < specs.len() {
        let dir = files[next].parent().unwrap_or(Path::new(".")).to_path_buf();
        let from = files[next].display().to_string();
        let mut handoffs = Vec::new();
        for h in specs[next].handoff_sections.clone() {
            let filter = history(&h, &from)?;
            let file = canonical(&dir.join(&h.agent));
            let index = match files.iter().position(|f| *f == file) {
                Some(i) => i,
                None => {
                    let member = read_agent(&file, &from, &h.agent, Role::Handoff)?;
                    if specs.iter().any(|s| s.name == member.name) {
                        return Err(SessionError::bad_input(
                            format!(
                                "{}: another agent of the team is named '{}' already",
                                file.display(),
                                member.name
                            ),
                            "agents of a team have different names",
                        ));
                    }
                    files.push(file);
                    specs.push(member);
                    specs.len() - 1
                }
            };
            handoffs.push(Handoff {
                agent: specs[index].name.clone(),
                description: h.description.clone(),
                history: filter,
            });
        }
        specs[next].handoffs = handoffs;
        next += 1;
    }
    let mut specs = specs.into_iter();
    *root = specs.next().expect("the entry agent");
    root.members = specs.collect();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tools: Vec<AgentTool> = Vec::new();
    for t in root.agent_tool_sections.clone() {
        let mut tool = agent_tool(&t, dir, &shown)?;
        tool.max_parallel = root
            .max_parallel_agents
            .unwrap_or(DEFAULT_MAX_PARALLEL_AGENTS);
        if tools.iter().any(|o| o.name == tool.name) || root.tools.contains(&tool.name) {
            return Err(SessionError::bad_input(
                format!("{shown}: two tools are named '{}'", tool.name),
                "give the agent tool another `name`",
            ));
        }
        tools.push(tool);
    }
    root.agent_tools = tools;
    Ok(())
}

/// How a team's agent is reached: by a handoff, or as a tool.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Handoff,
    Tool,
}

/// Reads the agent file `written` (at `file`) that `from` names for `role`, checked: its
/// name, and no setting that is the entry agent's.
fn read_agent(
    file: &Path,
    from: &str,
    written: &str,
    role: Role,
) -> Result<AgentSpec, SessionError> {
    let section = match role {
        Role::Handoff => "[[handoffs]]",
        Role::Tool => "[[agent_tools]]",
    };
    if !file.is_file() {
        return Err(SessionError::bad_input(
            format!(
                "{from}: {section} agent = \"{written}\": there is no file {}",
                file.display()
            ),
            "the path is relative to the agent file that names it",
        ));
    }
    let spec = AgentSpec::load_one(file)?;
    let shown = file.display().to_string();
    check_name("agent", &spec.name, &shown)?;
    if let Some(what) = member_problem(&spec, role == Role::Handoff) {
        let reached = match role {
            Role::Handoff => "an agent reached by a handoff",
            Role::Tool => "an agent used as a tool",
        };
        return Err(SessionError::bad_input(
            format!("{shown}: {reached} cannot set {what}"),
            "the run's turns, policy, approvals, budgets, compaction, MCP servers, skills and agent tools are the entry agent's: set them there",
        ));
    }
    Ok(spec)
}

/// Resolves one `[[agent_tools]]` entry: its agent's file read and checked.
fn agent_tool(t: &AgentToolSection, dir: &Path, shown: &str) -> Result<AgentTool, SessionError> {
    let file = dir.join(&t.agent);
    let spec = read_agent(&file, shown, &t.agent, Role::Tool)?;
    let at = file.display().to_string();
    if !spec.handoff_sections.is_empty() {
        return Err(SessionError::bad_input(
            format!("{at}: an agent used as a tool cannot hand off"),
            "give it the tools it needs instead; it answers the agent that called it",
        ));
    }
    let name = t.name.clone().unwrap_or_else(|| spec.name.clone());
    check_name("tool", &name, shown)?;
    if name.starts_with("transfer_to_") {
        return Err(SessionError::bad_input(
            format!(
                "{shown}: [[agent_tools]] {name}: names starting with transfer_to_ are the handoffs'"
            ),
            "give the agent tool another `name`",
        ));
    }
    let workspace = match (t.workspace, &t.manifest) {
        (None, Some(_)) => WorkspaceMode::Manifest,
        (Some(_), Some(_)) => {
            return Err(SessionError::bad_input(
                format!(
                    "{shown}: [[agent_tools]] {name}: give `workspace` or `manifest`, not both"
                ),
                "a manifest builds the sub-agent's own workspace",
            ));
        }
        (Some(WorkspaceMode::Manifest), None) => {
            return Err(SessionError::bad_input(
                format!(
                    "{shown}: [[agent_tools]] {name}: workspace = \"manifest\" needs `manifest`"
                ),
                "name the manifest file: manifest = \"worker.manifest.toml\"",
            ));
        }
        (w, None) => w.unwrap_or_default(),
    };
    if t.patch && workspace != WorkspaceMode::Copy {
        return Err(SessionError::bad_input(
            format!("{shown}: [[agent_tools]] {name}: patch = true needs workspace = \"copy\""),
            "a patch is what the sub-agent changed in its copy of the parent's workspace",
        ));
    }
    let manifest = match &t.manifest {
        Some(m) => {
            let p = std::path::absolute(dir.join(m)).unwrap_or_else(|_| dir.join(m));
            crate::workspace::load_manifest(&p).map_err(|e| {
                SessionError::bad_input(
                    format!(
                        "{shown}: [[agent_tools]] {name}: manifest = \"{m}\": {}",
                        e.message()
                    ),
                    e.hint_text()
                        .unwrap_or("the path is relative to the agent file that names it")
                        .to_string(),
                )
            })?;
            Some(p)
        }
        None => None,
    };
    let model = spec.model.clone().unwrap_or_default();
    Ok(AgentTool {
        name,
        description: t.description.clone(),
        workspace,
        manifest,
        patch: t.patch,
        max_parallel: DEFAULT_MAX_PARALLEL_AGENTS,
        agent: info(&spec, &model),
    })
}

/// What is recorded of a team agent (see [`AgentSpec::recorded`] for the way back).
pub(crate) fn info(spec: &AgentSpec, model: &str) -> cordon_core::AgentInfo {
    cordon_core::AgentInfo {
        name: spec.name.clone(),
        instructions: spec.instructions.clone(),
        model: model.to_string(),
        api: String::new(),
        settings: serde_json::to_value(&spec.model_settings).unwrap_or_default(),
        tools: spec.tools.clone(),
        max_turns: spec.max_turns.unwrap_or(cordon_harness::DEFAULT_MAX_TURNS),
        output_schema: spec.output_schema.clone(),
        budgets: None,
        approvals: None,
        mcp_servers: None,
        skills: None,
        compaction: None,
        guardrails: (!spec.guardrails.is_empty())
            .then(|| serde_json::to_value(&spec.guardrails).unwrap_or_default()),
        handoffs: None,
        members: Vec::new(),
        agent_tools: None,
    }
}

/// The harness's agents for the team's other members (`root.members`, taken), built for the
/// run: their tools over the run's sandbox, their guardrails, the entry agent's policy and
/// approvals, and the workspace's description when the run is new. A member's model is
/// the entry agent's, or another of the same provider (the run has one model client).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_members(
    session: &crate::Session,
    root: &mut AgentSpec,
    model: &str,
    model_name: &str,
    env: &cordon_tools::ToolEnv,
    sandbox: Option<std::sync::Arc<dyn cordon_sandbox::Sandbox>>,
    client: &std::sync::Arc<cordon_model::ModelClient>,
    context: Option<&str>,
    origin: &str,
) -> Result<Vec<cordon_harness::Agent>, SessionError> {
    let mut built = Vec::new();
    for mut member in std::mem::take(&mut root.members) {
        let shown = format!("{origin}: the agent '{}'", member.name);
        let (m_model, m_name) = match member.model.as_deref() {
            None => (model.to_string(), model_name.to_string()),
            Some(m) if m == model => (model.to_string(), model_name.to_string()),
            Some(m) => {
                let provider = model.split_once(':').map(|(p, _)| p);
                match m.split_once(':') {
                    Some((p, name)) if Some(p) == provider && !name.is_empty() => {
                        (m.to_string(), name.to_string())
                    }
                    _ => {
                        return Err(SessionError::bad_input(
                            format!(
                                "{shown} uses the model {m}, at another provider than the run's ({model})"
                            ),
                            "the agents one run hands off between use one provider: give them models of the same provider, or leave `model` out",
                        ));
                    }
                }
            }
        };
        let tools = session.tools.build(&member.tools, env).map_err(|e| {
            SessionError::bad_input(format!("{shown}: {e}"), "name tools the registry has")
        })?;
        if sandbox.is_none() && session.tools.needs_sandbox(&member.tools).unwrap_or(false) {
            return Err(SessionError::bad_input(
                format!("{shown}: its tools run commands, and the run has no sandbox"),
                "give the run a workspace or a manifest",
            ));
        }
        let guardrails = crate::guardrails::build(
            &member.guardrails,
            sandbox.clone(),
            client.clone(),
            &m_name,
            &shown,
        )?;
        member.policy = root.policy.clone();
        member.approvals = root.approvals.clone();
        member.budgets = root.budgets.clone();
        let handoffs = std::mem::take(&mut member.handoffs);
        let price = session.models.price(&m_name);
        let mut agent = member.into_agent(&m_model, &m_name, &shown, tools, price)?;
        for g in guardrails {
            agent = agent.guardrail(g);
        }
        agent.handoffs = handoffs;
        if let Some(context) = context {
            agent.instructions = format!("{}\n\n{context}", agent.instructions);
        }
        built.push(agent);
    }
    Ok(built)
}
