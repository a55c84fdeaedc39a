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
        !self.matching(call).is_empty()
    }

    /// The rules `call` matches, as recorded keys: `tool:NAME` for a tool rule,
    /// `command:PATTERN` for an `exec_command` pattern. An "always" approval covers exactly
    /// these, never the whole tool.
    pub fn matching(&self, call: &ToolCall) -> Vec<String> {
        let mut out = Vec::new();
        if self.tools.contains(&call.name) {
            out.push(format!("tool:{}", call.name));
        }
        if call.name == "exec_command" && !self.commands.is_empty() {
            let cmd = serde_json::from_str::<serde_json::Value>(&call.input)
                .ok()
                .and_then(|v| v["cmd"].as_str().map(str::to_string));
            match cmd {
                Some(cmd) => out.extend(
                    self.commands
                        .iter()
                        .filter(|p| wildcard(p, cmd.trim()))
                        .map(|p| format!("command:{p}")),
                ),
                // Arguments that cannot be read cannot be judged: a person looks at them.
                None => out.push("command:(unreadable arguments)".into()),
            }
        }
        out
    }
}

/// A rule key as people read it: `the tool apply_patch`, `commands matching 'rm -rf *'`.
pub fn describe_rule(key: &str) -> String {
    match key.split_once(':') {
        Some(("tool", name)) => format!("every call of the tool {name}"),
        Some(("command", pattern)) => format!("commands matching '{pattern}'"),
        _ => key.to_string(),
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
        assert_eq!(r.matching(&exec("rm -rf build")), ["command:rm -rf *"]);
        assert_eq!(r.matching(&patch), ["tool:apply_patch"]);
        let mut garbled = exec("");
        garbled.input = "{not json".into();
        assert!(
            r.needs(&garbled),
            "unreadable arguments are never waved through"
        );
    }
}
