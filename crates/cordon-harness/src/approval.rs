//! Which tool calls need a person's approval before they run.

use cordon_core::ToolCall;
use serde::{Deserialize, Serialize};

/// Approval rules from the agent file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    /// Tools whose every call needs approval.
    #[serde(default)]
    pub tools: Vec<String>,
    /// `exec_command` commands that need approval, as patterns (`*` any text, `?` one
    /// character), matched against the whole command.
    #[serde(default)]
    pub commands: Vec<String>,
}

impl ApprovalRules {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.commands.is_empty()
    }

    /// Whether `call` needs approval.
    pub fn needs(&self, call: &ToolCall) -> bool {
        if self.tools.contains(&call.name) {
            return true;
        }
        if call.name != "exec_command" || self.commands.is_empty() {
            return false;
        }
        let cmd = serde_json::from_str::<serde_json::Value>(&call.input)
            .ok()
            .and_then(|v| v["cmd"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.commands.iter().any(|p| wildcard(p, cmd.trim()))
    }
}

/// Whether `text` matches `pattern` (`*` any run of characters, `?` one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cmd: &str) -> ToolCall {
        ToolCall {
            call_id: "c".into(),
            name: "exec_command".into(),
            kind: Default::default(),
            input: serde_json::json!({ "cmd": cmd }).to_string(),
            id: None,
        }
    }

    #[test]
    fn tools_and_command_patterns_need_approval() {
        let r = ApprovalRules {
            tools: vec!["apply_patch".into()],
            commands: vec!["git push*".into(), "rm -rf *".into()],
        };
        assert!(r.needs(&exec("git push origin main")));
        assert!(r.needs(&exec("rm -rf build")));
        assert!(!r.needs(&exec("git status")));
        assert!(
            !r.needs(&exec("echo rm -rf x")),
            "patterns match the whole command"
        );
        let mut patch = exec("");
        patch.name = "apply_patch".into();
        assert!(r.needs(&patch));
        assert!(wildcard("a?c*", "abcdef") && !wildcard("a?c", "abcd"));
    }
}
