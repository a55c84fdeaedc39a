//! Agent files: what people write to define an agent.
//!
//! ```toml
//! name = "arithmetic"
//! model = "openai:gpt-5-mini"            # optional; --model overrides it
//! instructions = "Use the calculator for every sum."
//! max_turns = 10
//! tools = ["calculator", "current_time"]
//!
//! [model_settings]                       # optional: temperature, top_p, max_output_tokens,
//! temperature = 0.2                      # parallel_tool_calls, reasoning_effort, tool_choice,
//!                                        # store, extra
//! [output]                               # optional: the final answer must match a schema
//! schema = { type = "object", required = ["answer"], properties = { answer = { type = "number" } } }
//! # or: schema_file = "answer.schema.json" (relative to this file)
//! ```

use crate::exit::Failure;
use cordon_harness::Agent;
use cordon_model::ModelSettings;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// The instructions of the agent used when no agent file is given.
const DEFAULT_INSTRUCTIONS: &str =
    "You are a careful assistant. Use the tools when they help, and answer concisely.";

/// The tools that work in a sandbox (commands, file edits), and so need one.
pub const SANDBOX_TOOLS: [&str; 4] = ["exec_command", "write_stdin", "apply_patch", "view_image"];

/// An agent file's contents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub instructions: String,
    #[serde(default)]
    pub max_turns: Option<u32>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub model_settings: ModelSettings,
    #[serde(default)]
    pub output: Option<OutputSection>,
    #[serde(default)]
    pub budgets: cordon_harness::Budgets,
    #[serde(default)]
    pub approvals: cordon_harness::ApprovalRules,
}

/// The `[output]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    schema_file: Option<String>,
}

impl AgentFile {
    /// The agent used without `--agent`: every tool, the shell tools included.
    pub fn default_agent() -> AgentFile {
        AgentFile {
            name: "cordon".into(),
            model: None,
            instructions: DEFAULT_INSTRUCTIONS.into(),
            max_turns: None,
            tools: cordon_tools::builtin::NAMES
                .iter()
                .chain(SANDBOX_TOOLS.iter())
                .map(|s| s.to_string())
                .collect(),
            model_settings: ModelSettings::default(),
            output: None,
            budgets: cordon_harness::Budgets::default(),
            approvals: cordon_harness::ApprovalRules::default(),
        }
    }

    /// Reads and checks an agent file.
    pub fn load(path: &Path) -> anyhow::Result<(AgentFile, Option<Value>)> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::bad_input(
                format!("cannot read the agent file {shown}: {e}"),
                "check the path given to --agent",
            )
        })?;
        let file: AgentFile = toml::from_str(&text).map_err(|e| {
            Failure::bad_input(
                format!(
                    "the agent file {shown} is not valid: {}",
                    e.to_string().trim_end()
                ),
                "see examples/agent.toml for a working agent file",
            )
        })?;
        let schema = match &file.output {
            None => None,
            Some(OutputSection {
                schema: Some(s),
                schema_file: None,
            }) => Some(s.clone()),
            Some(OutputSection {
                schema: None,
                schema_file: Some(f),
            }) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(f);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    Failure::bad_input(
                        format!(
                            "{shown}: cannot read output.schema_file {}: {e}",
                            p.display()
                        ),
                        "schema_file is relative to the agent file",
                    )
                })?;
                Some(serde_json::from_str(&text).map_err(|e| {
                    Failure::bad_input(
                        format!("{}: not JSON: {e}", p.display()),
                        "the schema file must hold a JSON schema",
                    )
                })?)
            }
            Some(_) => {
                return Err(Failure::bad_input(
                    format!("{shown}: [output] needs exactly one of schema and schema_file"),
                    "write the schema inline, or name a JSON file holding it",
                ));
            }
        };
        Ok((file, schema))
    }

    /// Whether the agent uses tools that run commands.
    pub fn needs_sandbox(&self) -> bool {
        self.tools
            .iter()
            .any(|t| SANDBOX_TOOLS.contains(&t.as_str()))
    }

    /// Builds the agent for `model` (`PROVIDER:MODEL`) and the provider's `model_name`;
    /// `sandbox_tools` are the tools over the run's sandbox, when it has one.
    pub fn into_agent(
        self,
        schema: Option<Value>,
        model: &str,
        model_name: &str,
        origin: &str,
        sandbox_tools: &[std::sync::Arc<dyn cordon_tools::Tool>],
        price: Option<cordon_harness::Price>,
    ) -> anyhow::Result<Agent> {
        let mut agent = Agent::new(&self.name, model, model_name)
            .instructions(&self.instructions)
            .settings(self.model_settings)
            .budgets(self.budgets, price)
            .approvals(self.approvals);
        if let Some(n) = self.max_turns {
            agent = agent.max_turns(n);
        }
        for name in &self.tools {
            let from_sandbox = sandbox_tools
                .iter()
                .find(|t| t.spec().name == *name)
                .cloned();
            let tool = from_sandbox
                .or_else(|| cordon_tools::builtin::by_name(name))
                .ok_or_else(|| {
                    let mut known = cordon_tools::builtin::NAMES.to_vec();
                    known.extend(SANDBOX_TOOLS);
                    Failure::bad_input(
                        format!("{origin}: unknown tool '{name}'"),
                        format!("the tools available are: {}", known.join(", ")),
                    )
                })?;
            agent = agent.tool(tool);
        }
        if let Some(s) = schema {
            agent = agent.output_schema(s).map_err(|e| {
                Failure::bad_input(format!("{origin}: {e}"), "fix the schema in [output]")
            })?;
        }
        agent.check().map_err(|e| {
            Failure::bad_input(
                format!("{origin}: {e}"),
                format!("list each tool once; prices go in the config file as [prices.\"{model_name}\"] with input_per_mtok and output_per_mtok"),
            )
        })?;
        Ok(agent)
    }
}
