//! Guardrails an agent file declares (`[[guardrails]]`): a command in the run's sandbox, or
//! a check by the run's model, on the task, the final answer, tool calls or their results.
//!
//! ```toml
//! [[guardrails]]
//! name = "no-private-keys"
//! on = ["output", "tool_result"]
//! command = ["sh", "-c", "! grep -q 'BEGIN .*PRIVATE KEY'"]   # text on stdin; exit 0 passes
//!
//! [[guardrails]]
//! name = "no-deletes"
//! on = ["tool_call"]
//! tools = ["exec_command"]
//! model_check = "The command must not delete files."
//! ```

use crate::SessionError;
use cordon_harness::guardrail::{CheckFuture, Guardrail, Stage};
use cordon_model::{ModelClient, ModelRequest};
use cordon_sandbox::Sandbox;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The longest a check may be given (a day).
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// How long a check may take by default.
const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The most of a text a model check reads (tokens, its middle cut).
const MODEL_CHECK_TOKENS: usize = 20_000;

/// What the model is told when it checks a text.
pub const MODEL_CHECK_INSTRUCTIONS: &str = "You check text from an AI agent's run against a rule. Answer with one JSON object and nothing else: {\"pass\": true} when the text keeps to the rule, or {\"pass\": false, \"reason\": \"...\"} saying briefly how it breaks it.";

/// One `[[guardrails]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    /// Its name, as events and errors show it.
    pub name: String,
    /// What it judges: `input`, `output`, `tool_call`, `tool_result`.
    pub on: Vec<Stage>,
    /// For the tool stages, the tools it judges (globs; all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// A command run in the sandbox with the text on stdin: exit 0 passes; otherwise what
    /// it printed is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// A rule the run's model checks the text against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_check: Option<String>,
    /// Seconds a check may take (default 60); one that takes longer trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

impl GuardrailSpec {
    /// What is wrong with the declaration, if anything.
    pub fn problem(&self) -> Option<String> {
        let name = &self.name;
        if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control)
        {
            return Some(
                "a guardrail's name is 1 to 64 characters, with no control characters".into(),
            );
        }
        if self.on.is_empty() {
            return Some(format!(
                "guardrail '{name}': `on` names no stage (input, output, tool_call, tool_result)"
            ));
        }
        match (&self.command, &self.model_check) {
            (Some(c), None) if !c.is_empty() && !c[0].is_empty() => {}
            (None, Some(rule)) if !rule.trim().is_empty() => {}
            _ => {
                return Some(format!(
                    "guardrail '{name}': give exactly one of `command` (a non-empty list) and `model_check` (a rule)"
                ));
            }
        }
        for g in &self.tools {
            if let Err(e) = globset::Glob::new(g) {
                return Some(format!(
                    "guardrail '{name}': tools: '{g}' is not a glob: {e}"
                ));
            }
        }
        if let Some(t) = self.timeout_secs
            && !(1..=MAX_TIMEOUT_SECS).contains(&t)
        {
            return Some(format!(
                "guardrail '{name}': timeout_secs is {t}; give 1 to {MAX_TIMEOUT_SECS}"
            ));
        }
        None
    }

    fn applies(&self, stage: Stage, tool: Option<&str>) -> bool {
        self.on.contains(&stage)
            && match tool {
                Some(t) if !self.tools.is_empty() => self
                    .tools
                    .iter()
                    .any(|g| globset::Glob::new(g).is_ok_and(|g| g.compile_matcher().is_match(t))),
                _ => true,
            }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }
}

/// Builds the guardrails of a run: commands need its sandbox, model checks its model.
pub(crate) fn build(
    specs: &[GuardrailSpec],
    sandbox: Option<Arc<dyn Sandbox>>,
    client: Arc<ModelClient>,
    model_name: &str,
    origin: &str,
) -> Result<Vec<Arc<dyn Guardrail>>, SessionError> {
    let mut out: Vec<Arc<dyn Guardrail>> = Vec::new();
    for spec in specs {
        if let Some(problem) = spec.problem() {
            return Err(SessionError::bad_input(
                format!("{origin}: {problem}"),
                "see [[guardrails]] in the README",
            ));
        }
        if spec.command.is_some() {
            let Some(sandbox) = sandbox.clone() else {
                return Err(SessionError::bad_input(
                    format!(
                        "{origin}: guardrail '{}' runs a command in the sandbox, and this run has none",
                        spec.name
                    ),
                    "give the run a workspace, or check with `model_check`",
                ));
            };
            out.push(Arc::new(CommandCheck {
                spec: spec.clone(),
                sandbox,
            }));
        } else {
            out.push(Arc::new(ModelCheck {
                spec: spec.clone(),
                client: client.clone(),
                model: model_name.to_string(),
            }));
        }
    }
    Ok(out)
}

/// A command in the sandbox judges the text.
struct CommandCheck {
    spec: GuardrailSpec,
    sandbox: Arc<dyn Sandbox>,
}

impl Guardrail for CommandCheck {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn applies(&self, stage: Stage, tool: Option<&str>) -> bool {
        self.spec.applies(stage, tool)
    }

    fn check<'a>(&'a self, stage: Stage, tool: Option<&'a str>, text: &'a str) -> CheckFuture<'a> {
        Box::pin(async move {
            let argv = self.spec.command.clone().unwrap_or_default();
            let env = vec![
                (
                    "CORDON_GUARDRAIL_STAGE".to_string(),
                    stage.as_str().to_string(),
                ),
                (
                    "CORDON_GUARDRAIL_TOOL".to_string(),
                    tool.unwrap_or("").to_string(),
                ),
            ];
            let process = self
                .sandbox
                .spawn(&argv, ".", &env, None)
                .await
                .map_err(|e| format!("it could not start: {e}"))?;
            // A command that does not read its input still gets to answer; the writing is
            // bounded by the check's time too.
            let timeout = self.spec.timeout();
            let fed = tokio::time::timeout(timeout, async {
                let _ = process.write(text.as_bytes()).await;
                let _ = process.close_stdin().await;
            })
            .await;
            if fed.is_err() {
                let _ = process.kill().await;
                return Err(format!("it took longer than {} s", timeout.as_secs()));
            }
            let out = process
                .collect(self.spec.timeout())
                .await
                .map_err(|e| format!("it failed: {e}"))?;
            if out.timed_out {
                return Err(format!(
                    "it took longer than {} s",
                    self.spec.timeout().as_secs()
                ));
            }
            if out.code == Some(0) {
                return Ok(None);
            }
            let said = format!("{}{}", out.stdout_text(), out.stderr_text());
            let said: String = said.trim().chars().take(500).collect();
            Ok(Some(if said.is_empty() {
                match out.code {
                    Some(c) => format!("the check exited with {c}"),
                    None => "the check was killed".into(),
                }
            } else {
                said
            }))
        })
    }
}

/// The run's model judges the text against a rule.
struct ModelCheck {
    spec: GuardrailSpec,
    client: Arc<ModelClient>,
    model: String,
}

impl Guardrail for ModelCheck {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn applies(&self, stage: Stage, tool: Option<&str>) -> bool {
        self.spec.applies(stage, tool)
    }

    fn check<'a>(&'a self, stage: Stage, tool: Option<&'a str>, text: &'a str) -> CheckFuture<'a> {
        Box::pin(async move {
            let what = match (stage, tool) {
                (Stage::Input, _) => "the task given to the agent".to_string(),
                (Stage::Output, _) => "the agent's final answer".to_string(),
                (Stage::ToolCall, t) => {
                    format!("the arguments of a call of the tool {}", t.unwrap_or("?"))
                }
                (Stage::ToolResult, t) => {
                    format!("the result of a call of the tool {}", t.unwrap_or("?"))
                }
            };
            let request = ModelRequest {
                model: self.model.clone(),
                instructions: Some(MODEL_CHECK_INSTRUCTIONS.to_string()),
                input: vec![cordon_core::Item::text(
                    cordon_core::Role::User,
                    format!(
                        "The rule: {}\n\nThe text is {what}:\n\n{}",
                        self.spec.model_check.as_deref().unwrap_or_default(),
                        cordon_tools::truncate::truncate_middle(text, MODEL_CHECK_TOKENS)
                    ),
                )],
                tools: Vec::new(),
                settings: Default::default(),
                output_schema: None,
            };
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let answer =
                tokio::time::timeout(self.spec.timeout(), self.client.respond(&request, &tx))
                    .await
                    .map_err(|_| {
                        format!(
                            "the model took longer than {} s",
                            self.spec.timeout().as_secs()
                        )
                    })?
                    .map_err(|e| format!("the model call failed: {e}"))?;
            verdict(&answer.text())
        })
    }
}

/// The model's verdict: `{"pass": bool, "reason": ...}` somewhere in its answer.
fn verdict(answer: &str) -> Result<Option<String>, String> {
    let start = answer.find('{');
    let end = answer.rfind('}');
    let parsed = match (start, end) {
        // A verdict that says `pass` twice is not read (JSON parsers keep the last).
        (Some(s), Some(e)) if s < e && answer[s..=e].matches("\"pass\"").count() == 1 => {
            serde_json::from_str::<serde_json::Value>(&answer[s..=e]).ok()
        }
        _ => None,
    };
    match parsed.as_ref().and_then(|v| v["pass"].as_bool()) {
        Some(true) => Ok(None),
        Some(false) => Ok(Some(
            parsed
                .as_ref()
                .and_then(|v| v["reason"].as_str())
                .unwrap_or("the model said it breaks the rule")
                .chars()
                .take(500)
                .collect(),
        )),
        None => Err(format!(
            "the model's answer is not a verdict: {}",
            answer.chars().take(200).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_and_anything_else_fails_closed() {
        assert_eq!(verdict(r#"{"pass": true}"#), Ok(None));
        assert_eq!(
            verdict("Here: {\"pass\": false, \"reason\": \"deletes files\"}"),
            Ok(Some("deletes files".into()))
        );
        assert!(verdict("looks fine to me").is_err());
        assert!(verdict(r#"{"pass": "yes"}"#).is_err());
        assert!(verdict(r#"{"pass": false, "pass": true}"#).is_err());
    }

    #[test]
    fn declarations_are_checked() {
        let spec = |t: &str| -> GuardrailSpec { toml::from_str(t).unwrap() };
        assert_eq!(
            spec("name = \"a\"\non = [\"output\"]\nmodel_check = \"r\"").problem(),
            None
        );
        for (t, says) in [
            ("name = \"a\"\non = []\nmodel_check = \"r\"", "no stage"),
            ("name = \"a\"\non = [\"output\"]", "exactly one"),
            (
                "name = \"a\"\non = [\"output\"]\nmodel_check = \"r\"\ncommand = [\"true\"]",
                "exactly one",
            ),
            (
                "name = \"a\"\non = [\"output\"]\ncommand = []",
                "exactly one",
            ),
            (
                "name = \"a\"\non = [\"tool_call\"]\ncommand = [\"true\"]\ntools = [\"[\"]",
                "not a glob",
            ),
        ] {
            assert!(spec(t).problem().unwrap().contains(says), "{t}");
        }
        let s =
            spec("name = \"a\"\non = [\"tool_call\"]\ncommand = [\"true\"]\ntools = [\"exec_*\"]");
        assert!(s.applies(Stage::ToolCall, Some("exec_command")));
        assert!(!s.applies(Stage::ToolCall, Some("apply_patch")));
        assert!(!s.applies(Stage::Output, None));
    }
}
