//! What a policy decides, and why: a verdict, the risk class of what was judged, and the
//! rules that made the decision.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Allow, ask a person, or deny. Ordered by strictness: when several rules apply, the
/// strictest wins (`deny` > `ask` > `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The call runs.
    Allow,
    /// The call waits for a person's approval.
    Ask,
    /// The call does not run; the model is told which rule refused it.
    Deny,
}

impl Verdict {
    /// The word used in policy files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How risky a call is, whatever rule names it. A policy gives each class a default
/// verdict for calls no rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskClass {
    /// Only reads (`ls`, `cat`, `git status`, `view_image`).
    ReadOnly,
    /// Changes the workspace, which checkpoints capture (`apply_patch`, a build).
    WorkspaceWrite,
    /// Reaches the network (`curl`, `git clone`, `pip install`).
    Network,
    /// Uses credentials (`gh`, `aws`, `kubectl`).
    CredentialUse,
    /// Destroys what a checkpoint may not bring back, or acts beyond the workspace
    /// (`rm -rf`, `git push --force`, `dd`, `kill`).
    Destructive,
}

impl RiskClass {
    /// Every class, mildest first.
    pub const ALL: [RiskClass; 5] = [
        RiskClass::ReadOnly,
        RiskClass::WorkspaceWrite,
        RiskClass::Network,
        RiskClass::CredentialUse,
        RiskClass::Destructive,
    ];

    /// The name used in policy files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskClass::ReadOnly => "read_only",
            RiskClass::WorkspaceWrite => "workspace_write",
            RiskClass::Network => "network",
            RiskClass::CredentialUse => "credential_use",
            RiskClass::Destructive => "destructive",
        }
    }
}

impl fmt::Display for RiskClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule that applied to a call, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule's key: its `id`, or one made from what it matches (`tool:apply_patch`,
    /// `command:git push`, `path:secrets/**`, `class:network`, `unknown:command
    /// substitution`). An "always" approval covers exactly these keys.
    pub rule: String,
    /// What this rule said.
    pub verdict: Verdict,
    /// What it was applied to: a simple command, a path, a host, the tool.
    pub subject: String,
    /// The rule's `reason`, as its author wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Who may approve (empty: anyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Where the rule is written (`FILE:LINE:COL`), when it came from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A policy's decision on one call, command or request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The strictest verdict of all that applied.
    pub verdict: Verdict,
    /// The riskiest class among what was judged.
    pub class: RiskClass,
    /// Every rule that applied, in the order they were found.
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// The rules that made the verdict (those that said what the decision says).
    pub fn deciding(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().filter(|r| r.verdict == self.verdict)
    }

    /// The keys of the deciding rules: what an "always" approval of an asked call covers.
    pub fn deciding_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.deciding().map(|r| r.rule.clone()).collect();
        keys.dedup();
        keys
    }

    /// Who may approve an asked call: everyone the deciding rules name (empty: anyone).
    /// A rule that names approvers binds even beside rules that name none.
    pub fn approvers(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .deciding()
            .flat_map(|r| r.approvers.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// One line for a person or the model: the verdict and the rules that made it.
    pub fn summary(&self) -> String {
        let rules: Vec<String> = self
            .deciding()
            .map(|r| match &r.why {
                Some(why) => format!("{} ({why})", r.rule),
                None => r.rule.clone(),
            })
            .collect();
        format!("{} by {}", self.verdict, rules.join(", "))
    }

    /// Combines decisions: the strictest verdict, the riskiest class, every reason.
    pub(crate) fn from_reasons(reasons: Vec<Reason>, class: RiskClass) -> Decision {
        let verdict = reasons
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        Decision {
            verdict,
            class,
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(rule: &str, verdict: Verdict, approvers: &[&str]) -> Reason {
        Reason {
            rule: rule.into(),
            verdict,
            subject: "x".into(),
            why: None,
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            at: None,
        }
    }

    #[test]
    fn the_strictest_verdict_wins_and_names_its_rules() {
        let d = Decision::from_reasons(
            vec![
                reason("a", Verdict::Allow, &[]),
                reason("b", Verdict::Ask, &["alice"]),
                reason("c", Verdict::Ask, &["bob"]),
            ],
            RiskClass::Network,
        );
        assert_eq!(d.verdict, Verdict::Ask);
        assert_eq!(d.deciding_keys(), ["b", "c"]);
        assert_eq!(d.approvers(), ["alice", "bob"]);
        assert_eq!(d.summary(), "ask by b, c");
        let d = Decision::from_reasons(
            vec![
                reason("a", Verdict::Ask, &[]),
                reason("b", Verdict::Ask, &["alice"]),
            ],
            RiskClass::Network,
        );
        assert_eq!(
            d.approvers(),
            ["alice"],
            "a rule that names approvers binds"
        );
        assert_eq!(d.summary(), "ask by a, b");
        let d = Decision::from_reasons(
            vec![
                reason("a", Verdict::Deny, &[]),
                reason("b", Verdict::Ask, &[]),
            ],
            RiskClass::ReadOnly,
        );
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(Verdict::Deny > Verdict::Ask && Verdict::Ask > Verdict::Allow);
    }
}
