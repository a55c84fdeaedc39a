//! The agent file's `[approvals]`: tools and command patterns that wait for a person. They
//! join the run's policy as rules that ask (see [`cordon_policy::Policy::with_approvals`]).

use serde::{Deserialize, Serialize};

/// Approval rules from the agent file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    /// Tools whose every call needs approval.
    #[serde(default)]
    pub tools: Vec<String>,
    /// `exec_command` commands that need approval, as patterns (`*` any text, `?` one
    /// character), matched against each simple command of a command line and against the
    /// whole line.
    #[serde(default)]
    pub commands: Vec<String>,
}

impl ApprovalRules {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.commands.is_empty()
    }
}

/// The risk class a tool's calls have by what the tool says they can change (its
/// `Tool::judged_as`; `None`: a tool the run does not have, taken as reaching outside).
pub fn risk_class(effects: Option<cordon_tools::Effects>) -> cordon_policy::RiskClass {
    use cordon_policy::RiskClass;
    use cordon_tools::Effects;
    match effects {
        Some(Effects::None) => RiskClass::ReadOnly,
        Some(Effects::Workspace) => RiskClass::WorkspaceWrite,
        Some(Effects::External) | None => RiskClass::Network,
    }
}

/// A rule key as people read it: `every call of the tool apply_patch`, `commands matching
/// 'rm -rf *'`, `the class network`.
pub fn describe_rule(key: &str) -> String {
    match key.split_once(':') {
        Some(("tool", name)) => format!("every call of the tool {name}"),
        Some(("command", pattern)) => format!("commands matching '{pattern}'"),
        Some(("path", glob)) => format!("paths matching '{glob}'"),
        Some(("class", class)) => format!("the policy's default for {}", class.replace('_', " ")),
        Some(("unknown", why)) => format!("{why}, which cannot be judged without running it"),
        Some(("network", host)) => format!("requests to {host}"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_policy::{Policy, RiskClass, Verdict};

    #[test]
    fn approvals_ask_through_the_policy_with_their_keys() {
        let r = ApprovalRules {
            tools: vec!["apply_patch".into()],
            commands: vec!["git push*".into(), "rm -rf *".into()],
        };
        let gate = Policy::permissive().with_approvals(&r.tools, &r.commands);
        let exec = |cmd: &str| {
            gate.decide_call(
                "exec_command",
                &serde_json::json!({ "cmd": cmd }).to_string(),
                RiskClass::WorkspaceWrite,
            )
        };
        assert_eq!(exec("git push origin main").verdict, Verdict::Ask);
        assert_eq!(exec("rm -rf build").deciding_keys(), ["command:rm -rf *"]);
        assert_eq!(exec("git status").verdict, Verdict::Allow);
        assert_eq!(exec("echo rm -rf x").verdict, Verdict::Allow);
        assert_eq!(
            gate.decide_call("exec_command", "{not json", RiskClass::WorkspaceWrite)
                .verdict,
            Verdict::Ask,
            "arguments that cannot be read are never waved through"
        );
        assert_eq!(exec("echo $(git push)").verdict, Verdict::Ask);
        assert_eq!(
            describe_rule("command:rm -rf *"),
            "commands matching 'rm -rf *'"
        );
        assert_eq!(
            describe_rule("class:workspace_write"),
            "the policy's default for workspace write"
        );
    }
}
