//! The rules of a policy file, and how each matches what it judges.

use crate::Verdict;
use crate::command::SimpleCommand;
use serde::Deserialize;

/// A value given as one string or a list of alternatives (`"git"` or `["git", "hg"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Alternatives: any of them matches.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The alternatives.
    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `[[tool]]`: a decision on every call of the tools it names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// The rule's key in the log and in approvals (default `tool:NAME`).
    #[serde(default)]
    pub id: Option<String>,
    /// Tool names; `*` matches any text (`github__*`, an MCP server's tools).
    pub name: OneOrMany,
    /// What calls of these tools get.
    pub decision: Verdict,
    /// Why, as people and the model are told.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who may approve (empty: anyone).
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl ToolRule {
    /// Whether the rule names tool `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.name.values().iter().any(|p| wildcard(p, name))
    }

    /// The rule's key.
    pub fn key(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("tool:{}", self.name.values().join("|")))
    }
}

/// `[[command]]`: a decision on simple commands that start with a program and arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRule {
    /// The rule's key in the log and in approvals (default `command:PROGRAM ARGS...`).
    #[serde(default)]
    pub id: Option<String>,
    /// The program (its name without directory), or alternatives.
    #[serde(default)]
    pub program: Option<OneOrMany>,
    /// Patterns the first arguments must match, in order (more arguments may follow).
    /// Each is a pattern (`*` any text, `?` one character) or a list of alternatives.
    #[serde(default)]
    pub args: Vec<OneOrMany>,
    /// With `args`: the command has exactly these arguments, no more (for rules that allow:
    /// `rm -rf build` without `exact` also matches `rm -rf build ../../etc`).
    #[serde(default)]
    pub exact: bool,
    /// Instead of `program` and `args`: a pattern the whole simple command (or the whole
    /// command line) must match, as the agent file's `[approvals] commands` are written.
    #[serde(default)]
    pub pattern: Option<String>,
    /// What matching commands get.
    pub decision: Verdict,
    /// Why, as people and the model are told.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who may approve (empty: anyone).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Command lines this rule must match: checked by `cordon policy check`.
    #[serde(default, rename = "match")]
    pub must_match: Vec<String>,
    /// Command lines this rule must not match: checked by `cordon policy check`.
    #[serde(default)]
    pub not_match: Vec<String>,
}

impl CommandRule {
    /// What is wrong with the rule's shape, if anything.
    pub fn problem(&self) -> Option<String> {
        match (&self.program, &self.pattern) {
            (None, None) => Some("a [[command]] rule needs `program` or `pattern`".into()),
            (Some(_), Some(_)) => {
                Some("a [[command]] rule has `program` or `pattern`, not both".into())
            }
            (None, Some(_)) if !self.args.is_empty() || self.exact => {
                Some("`args` and `exact` go with `program`, not with `pattern`".into())
            }
            _ => None,
        }
    }

    /// Whether the rule matches `command`, one simple command of `line`.
    pub fn matches(&self, command: &SimpleCommand, line: &str) -> bool {
        if let Some(pattern) = &self.pattern {
            return wildcard(pattern, &command.text()) || wildcard(pattern, line.trim());
        }
        let Some(program) = &self.program else {
            return false;
        };
        if !program
            .values()
            .iter()
            .any(|p| wildcard(p, command.program()))
        {
            return false;
        }
        let args = command.rule_args();
        // A word only known when the command runs (`$x`) may be anything: rules that ask or
        // deny count it as matching, rules that allow never do.
        let restrictive = self.decision != Verdict::Allow;
        (self.args.len() == args.len() || !self.exact && self.args.len() < args.len())
            && self.args.iter().zip(args).all(|(want, got)| {
                want.values().iter().any(|p| wildcard(p, got))
                    || (got.contains('$') && (restrictive || want.values().contains(&"*")))
            })
    }

    /// The rule's key.
    pub fn key(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        if let Some(p) = &self.pattern {
            return format!("command:{p}");
        }
        let mut parts = vec![
            self.program
                .as_ref()
                .map(|p| p.values().join("|"))
                .unwrap_or_default(),
        ];
        parts.extend(self.args.iter().map(|a| a.values().join("|")));
        format!("command:{}", parts.join(" "))
    }
}

/// `[[path]]`: decisions on reading and writing workspace paths that match a glob.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// The rule's key (default `path:GLOB`).
    #[serde(default)]
    pub id: Option<String>,
    /// A glob relative to the workspace (`secrets/**`, `**/*.pem`).
    pub glob: String,
    /// What reading a matching path gets (unset: this rule says nothing about reads).
    #[serde(default)]
    pub read: Option<Verdict>,
    /// What writing a matching path gets (unset: this rule says nothing about writes).
    #[serde(default)]
    pub write: Option<Verdict>,
    /// Why, as people and the model are told.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who may approve (empty: anyone).
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl PathRule {
    /// The rule's key.
    pub fn key(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("path:{}", self.glob))
    }
}

/// `[[network]]`: decisions on requests to hosts and ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRule {
    /// The rule's key (default `network:HOST`).
    #[serde(default)]
    pub id: Option<String>,
    /// Host names; `*.example.com` matches every subdomain (not `example.com` itself), `*`
    /// every host. An address (`10.1.2.3`) names exactly that address.
    pub host: OneOrMany,
    /// Ports (empty: any).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// HTTP methods (empty: any).
    #[serde(default)]
    pub methods: Vec<String>,
    /// What matching requests get.
    pub decision: Verdict,
    /// The most requests per host, as `N/s`, `N/min` or `N/h`.
    #[serde(default)]
    pub rate: Option<String>,
    /// Why, as people and the model are told.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who may approve (empty: anyone).
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl NetworkRule {
    /// Whether the rule covers a request to `host`:`port` with `method` (`None`: not known,
    /// as for a tunnel).
    pub fn matches(&self, host: &str, port: u16, method: Option<&str>) -> bool {
        let host = crate::canonical_host(host);
        self.host.values().iter().any(|h| host_matches(h, &host))
            && (self.ports.is_empty() || self.ports.contains(&port))
            && (self.methods.is_empty()
                || method.is_some_and(|m| self.methods.iter().any(|x| x.eq_ignore_ascii_case(m))))
    }

    /// Whether the rule names `host` itself (not through `*`), in any spelling.
    pub fn names(&self, host: &str) -> bool {
        let host = crate::canonical_host(host);
        self.host
            .values()
            .iter()
            .any(|h| !h.starts_with('*') && crate::canonical_host(h) == host)
    }

    /// Whether the rule covers `port` (a rule without ports covers every port).
    pub fn covers_port(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }

    /// The rule's key.
    pub fn key(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("network:{}", self.host.values().join("|")))
    }
}

/// A credential the egress proxy adds to requests, so that it never enters the sandbox:
/// the sandbox sees the placeholder `cordon-credential:NAME` (in the variable `env`), and
/// the proxy puts the real value in its place only in requests to `host` that the policy
/// allows. The value itself is never in a policy file: it is read when a run starts, from
/// `from_env`, `from_file` or `from_command`, on the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRule {
    /// The credential's name (letters, digits, `-`, `_`, `.`): its placeholder is
    /// `cordon-credential:NAME`.
    pub name: String,
    /// The hosts it may be sent to; `*.example.com` is every subdomain. Never `*`.
    pub host: OneOrMany,
    /// The sandbox variable that holds the placeholder (`GITHUB_TOKEN`).
    #[serde(default)]
    pub env: Option<String>,
    /// The header the value goes in (`Authorization`): the placeholder in it is replaced,
    /// and the header is set when the request lacks it.
    #[serde(default)]
    pub header: Option<String>,
    /// How that header's value is written, `{}` standing for the credential (`Bearer {}`).
    #[serde(default)]
    pub format: Option<String>,
    /// A query parameter whose value may hold the placeholder (`access_token`).
    #[serde(default)]
    pub query: Option<String>,
    /// Read the value from this host environment variable.
    #[serde(default)]
    pub from_env: Option<String>,
    /// Read the value from this file (relative to the policy file), trimmed.
    #[serde(default)]
    pub from_file: Option<String>,
    /// Run this program with these arguments (no shell) and take what it prints, trimmed.
    #[serde(default)]
    pub from_command: Option<Vec<String>>,
}

impl CredentialRule {
    /// The text the sandbox sees instead of the value.
    pub fn placeholder(&self) -> String {
        format!("cordon-credential:{}", self.name)
    }

    /// Whether requests to `host` may carry the credential.
    pub fn covers(&self, host: &str) -> bool {
        let host = crate::canonical_host(host);
        self.host
            .values()
            .iter()
            .any(|h| *h != "*" && host_matches(h, &host))
    }

    /// What is wrong with the declaration, if anything.
    pub fn problem(&self) -> Option<String> {
        let good_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !good_name {
            return Some(format!(
                "credential name '{}' must be 1 to 64 letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        let wide = |h: &str| {
            let h = h.trim_end_matches('.');
            h.is_empty()
                || h == "*"
                || (h.contains('*')
                    && !h
                        .strip_prefix("*.")
                        .is_some_and(|d| !d.is_empty() && !d.contains('*') && d.contains('.')))
        };
        if self.host.values().iter().any(|h| wide(h)) {
            return Some(format!(
                "credential {} names '*', an empty host, or a pattern wider than *.domain.tld: a credential goes to the hosts it names, never to every host",
                self.name
            ));
        }
        if self.header.is_none() && self.query.is_none() {
            return Some(format!(
                "credential {} says neither header nor query: where the value goes must be declared",
                self.name
            ));
        }
        let sources = [
            self.from_env.is_some(),
            self.from_file.is_some(),
            self.from_command.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Some(format!(
                "credential {} needs exactly one of from_env, from_file and from_command",
                self.name
            ));
        }
        if self.from_command.as_ref().is_some_and(|c| c.is_empty()) {
            return Some(format!("credential {}'s from_command is empty", self.name));
        }
        if let Some(f) = &self.format
            && !f.contains("{}")
        {
            return Some(format!(
                "credential {}'s format '{f}' has no {{}} for the value",
                self.name
            ));
        }
        None
    }
}

/// A rate limit: at most `count` requests per `per_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in each period.
    pub count: u32,
    /// The period, in seconds.
    pub per_secs: u32,
}

impl Rate {
    /// Reads `N/s`, `N/min` or `N/h`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("rate '{text}' is not N/s, N/min or N/h (for example 60/min)");
        let (n, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let per_secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!(
                "rate '{text}' allows nothing: use decision = \"deny\""
            ));
        }
        Ok(Rate { count, per_secs })
    }
}

/// Whether rule host `pattern` covers `host` (already canonical, see
/// [`crate::canonical_host`]): `*`, `*.domain` for every subdomain, or the host itself in
/// any spelling of it (`127.1` is `127.0.0.1`).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => crate::canonical_host(&pattern) == host,
    }
}

/// Whether `text` matches `pattern` (`*` any run of characters, `?` one character).
pub fn wildcard(pattern: &str, text: &str) -> bool {
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
    use crate::command::parse;

    fn rule(program: &str, args: &[&[&str]]) -> CommandRule {
        CommandRule {
            id: None,
            program: Some(OneOrMany::One(program.into())),
            args: args
                .iter()
                .map(|a| OneOrMany::Many(a.iter().map(|s| s.to_string()).collect()))
                .collect(),
            exact: false,
            pattern: None,
            decision: Verdict::Ask,
            reason: None,
            approvers: Vec::new(),
            must_match: Vec::new(),
            not_match: Vec::new(),
        }
    }

    #[test]
    fn command_rules_match_program_and_argument_prefixes() {
        let push = rule("git", &[&["push"]]);
        let first = |line: &str| parse(line).commands[0].clone();
        assert!(push.matches(&first("git push origin main"), ""));
        assert!(push.matches(&first("/usr/bin/git push"), ""));
        assert!(!push.matches(&first("git status"), ""));
        assert!(!push.matches(&first("git"), ""));
        assert!(push.matches(&first("git -C . -c a=b --no-pager push x"), ""));
        let exact = CommandRule {
            exact: true,
            ..rule("rm", &[&["-rf"], &["build"]])
        };
        assert!(exact.matches(&first("rm -rf build"), ""));
        assert!(!exact.matches(&first("rm -rf build ../../etc"), ""));
        let install = rule("pip", &[&["install", "download"], &["-r", "*.txt"]]);
        assert!(install.matches(&first("pip download req.txt"), ""));
        assert!(install.matches(&first("pip install -r x"), ""));
        assert!(!install.matches(&first("pip list -r"), ""));
        assert_eq!(install.key(), "command:pip install|download -r|*.txt");
        let whole = CommandRule {
            pattern: Some("rm -rf *".into()),
            program: None,
            args: Vec::new(),
            ..rule("x", &[])
        };
        assert!(whole.matches(&first("rm -rf build"), "rm -rf build"));
        assert!(!whole.matches(&first("echo rm -rf x"), "echo rm -rf x"));
        assert_eq!(whole.key(), "command:rm -rf *");
    }

    #[test]
    fn hosts_match_exactly_or_by_subdomain() {
        let r = NetworkRule {
            id: None,
            host: OneOrMany::Many(vec!["*.github.com".into(), "pypi.org".into()]),
            ports: vec![443],
            methods: vec!["GET".into()],
            decision: Verdict::Allow,
            rate: None,
            reason: None,
            approvers: Vec::new(),
        };
        assert!(r.matches("api.github.com", 443, Some("get")));
        assert!(r.matches("PyPI.org.", 443, Some("GET")));
        assert!(!r.matches("github.com", 443, Some("GET")));
        assert!(!r.matches("evilgithub.com", 443, Some("GET")));
        assert!(!r.matches("pypi.org", 80, Some("GET")));
        assert!(!r.matches("pypi.org", 443, Some("POST")));
        assert!(
            !r.matches("pypi.org", 443, None),
            "a method rule needs a method"
        );
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(
            Rate::parse("60/min"),
            Ok(Rate {
                count: 60,
                per_secs: 60
            })
        );
        assert_eq!(Rate::parse("5/s").map(|r| r.per_secs), Ok(1));
        assert!(Rate::parse("lots").is_err());
        assert!(Rate::parse("0/min").unwrap_err().contains("deny"));
    }
}
