//! An MCP server as an agent file declares it.
//!
//! ```toml
//! [mcp_servers.files]                  # stdio, inside the run's sandbox
//! command = "node"
//! args = ["/opt/mcp/server-filesystem/dist/index.js", "/workspace"]
//!
//! [mcp_servers.tickets]                # stdio, on the host: it sees what the host sees
//! command = "tickets-mcp"
//! trusted = true
//! env_from_host = { TICKETS_TOKEN = "TICKETS_TOKEN" }
//!
//! [mcp_servers.docs]                   # streamable HTTP, reached by the harness
//! url = "https://mcp.example.com/mcp"
//! bearer_token_from_host = "DOCS_MCP_TOKEN"
//! deny_tools = ["delete_*"]
//! call_timeout_secs = 60
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a server has to start and answer `initialize` and `tools/list`, by default.
pub const DEFAULT_STARTUP_TIMEOUT_SECS: u64 = 30;
/// How long one tool call may take, by default.
pub const DEFAULT_CALL_TIMEOUT_SECS: u64 = 120;
/// The longest server name: with `__` and a tool's name it must fit the providers' 64.
pub const MAX_SERVER_NAME: usize = 24;

/// One `[mcp_servers.NAME]` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// A stdio server's program (found on the sandbox's `PATH`, or the host's when trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables given to a stdio server, as written (recorded: no secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Environment variables a trusted server gets from the host's (`NAME = "HOST_VAR"`):
    /// their values are secrets, kept out of the log.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_from_host: BTreeMap<String, String>,
    /// Where a stdio server starts: workspace-relative in the sandbox (default its root); on
    /// the host, relative to where cordon runs (default there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// A streamable HTTP server's URL (no credentials in it: it is recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The host variable holding the URL instead (kept out of the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from_host: Option<String>,
    /// The host variable holding a bearer token for an HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_from_host: Option<String>,
    /// Headers for an HTTP server, from host variables (`Header-Name = "HOST_VAR"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_host: BTreeMap<String, String>,
    /// Run a stdio server on the host instead of in the sandbox.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    /// Seconds the server has to start (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_secs: Option<u64>,
    /// Seconds one call may take (default 120); a call that takes longer is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout_secs: Option<u64>,
    /// Offer only the tools whose names match one of these globs (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_tools: Vec<String>,
    /// Never offer the tools whose names match one of these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_tools: Vec<String>,
}

/// Where a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runs {
    /// A stdio server inside the run's sandbox.
    Sandbox,
    /// A trusted stdio server on the host.
    Host,
    /// An HTTP server elsewhere, reached by the harness.
    Remote,
}

impl Runs {
    /// As people read it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Runs::Sandbox => "sandbox",
            Runs::Host => "host",
            Runs::Remote => "remote",
        }
    }
}

/// What is wrong with a server's declaration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mcp_servers.{server}: {problem}")]
pub struct SpecError {
    /// The server's name.
    pub server: String,
    /// What is wrong, and what to write instead.
    pub problem: String,
}

impl ServerSpec {
    /// Where the server runs.
    pub fn runs(&self) -> Runs {
        match (self.command.is_some(), self.trusted) {
            (false, _) => Runs::Remote,
            (true, true) => Runs::Host,
            (true, false) => Runs::Sandbox,
        }
    }

    /// Seconds the server has to start.
    pub fn startup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.startup_timeout_secs
                .unwrap_or(DEFAULT_STARTUP_TIMEOUT_SECS),
        )
    }

    /// Seconds one call may take.
    pub fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.call_timeout_secs.unwrap_or(DEFAULT_CALL_TIMEOUT_SECS))
    }

    /// Checks the declaration of the server called `name`.
    pub fn check(&self, name: &str) -> Result<(), SpecError> {
        let fail = |problem: String| {
            Err(SpecError {
                server: name.chars().take(80).collect(),
                problem,
            })
        };
        if name.is_empty()
            || name.len() > MAX_SERVER_NAME
            || name.contains("__")
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return fail(format!(
                "a server's name is 1 to {MAX_SERVER_NAME} letters, digits, '-' or '_' (no '__': it separates server and tool in the tools' names)"
            ));
        }
        let urls = [self.url.is_some(), self.url_from_host.is_some()];
        match (self.command.is_some(), urls.iter().filter(|u| **u).count()) {
            (true, 0) | (false, 1) => {}
            (false, 0) => {
                return fail(
                    "give `command` (a stdio server) or `url` / `url_from_host` (a streamable HTTP server)".into(),
                );
            }
            _ => {
                return fail("give exactly one of `command`, `url` and `url_from_host`".into());
            }
        }
        if self.command.as_deref() == Some("") {
            return fail("`command` is empty".into());
        }
        let http_only = self.bearer_token_from_host.is_some() || !self.headers_from_host.is_empty();
        if self.command.is_some() && http_only {
            return fail(
                "`bearer_token_from_host` and `headers_from_host` are for HTTP servers; a stdio server takes `env` (or `env_from_host` when trusted)".into(),
            );
        }
        if self.command.is_none()
            && (!self.args.is_empty()
                || !self.env.is_empty()
                || !self.env_from_host.is_empty()
                || self.cwd.is_some()
                || self.trusted)
        {
            return fail(
                "`args`, `env`, `env_from_host`, `cwd` and `trusted` are for stdio servers (with `command`)".into(),
            );
        }
        if self.runs() == Runs::Sandbox && !self.env_from_host.is_empty() {
            return fail(
                "a server in the sandbox gets no host secrets (`env_from_host`): credentials never enter the sandbox. Declare them in the policy for the egress proxy to add, or mark the server `trusted = true` to run it on the host".into(),
            );
        }
        if let Some(url) = &self.url
            && let Err(problem) = check_url(url)
        {
            return fail(problem);
        }
        for (what, globs) in [
            ("allow_tools", &self.allow_tools),
            ("deny_tools", &self.deny_tools),
        ] {
            for g in globs {
                if let Err(e) = globset::Glob::new(g) {
                    return fail(format!("{what}: '{g}' is not a glob: {e}"));
                }
            }
        }
        for (what, secs) in [
            ("startup_timeout_secs", self.startup_timeout_secs),
            ("call_timeout_secs", self.call_timeout_secs),
        ] {
            if secs == Some(0) {
                return fail(format!("{what} is 0; give a number of seconds"));
            }
        }
        for name in self.env.keys().chain(self.env_from_host.keys()) {
            if name.is_empty() || name.contains(['=', '\0']) {
                return fail(format!(
                    "'{name}' is not an environment variable's name (empty, or holding '=')"
                ));
            }
        }
        if self.bearer_token_from_host.is_some()
            && self
                .headers_from_host
                .keys()
                .any(|h| h.eq_ignore_ascii_case("authorization"))
        {
            return fail(
                "both `bearer_token_from_host` and an Authorization header in `headers_from_host`: give one".into(),
            );
        }
        for header in self.headers_from_host.keys() {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return fail(format!(
                    "headers_from_host: '{header}' is not a header name"
                ));
            }
        }
        Ok(())
    }

    /// Whether a tool of this server, by its own name, is offered.
    pub fn offers(&self, tool: &str) -> bool {
        let matches = |globs: &[String]| {
            globs
                .iter()
                .any(|g| globset::Glob::new(g).is_ok_and(|g| g.compile_matcher().is_match(tool)))
        };
        (self.allow_tools.is_empty() || matches(&self.allow_tools)) && !matches(&self.deny_tools)
    }
}

/// What a declaration takes from the host when its run starts: secrets, never recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The HTTP server's URL (from `url` or `url_from_host`).
    pub url: Option<String>,
    /// The bearer token.
    pub bearer: Option<String>,
    /// Header values by name.
    pub headers: Vec<(String, String)>,
    /// A trusted server's variables from the host.
    pub env: Vec<(String, String)>,
}

impl Resolved {
    /// The values to keep out of the log (everything read from the host), each with the
    /// name of where it came from (`FIELD VAR`), as the log's redaction notes name them.
    pub fn secrets(&self, spec: &ServerSpec) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let (Some(var), Some(url)) = (&spec.url_from_host, &self.url) {
            out.push((format!("url_from_host {var}"), url.clone()));
            // Its parts too: a model or a server may echo a key without the rest.
            if let Ok(parsed) = reqwest::Url::parse(url) {
                let parts = parsed
                    .query_pairs()
                    .map(|(_, v)| v.into_owned())
                    .chain(parsed.password().map(str::to_string))
                    .chain(Some(parsed.username().to_string()));
                for part in parts.filter(|p| p.len() >= 8) {
                    out.push((format!("url_from_host {var}"), part));
                }
            }
        }
        if let (Some(var), Some(token)) = (&spec.bearer_token_from_host, &self.bearer) {
            out.push((format!("bearer_token_from_host {var}"), token.clone()));
        }
        for (header, value) in &self.headers {
            let var = spec
                .headers_from_host
                .get(header)
                .cloned()
                .unwrap_or_default();
            out.push((format!("headers_from_host {var}"), value.clone()));
        }
        for (key, value) in &self.env {
            let var = spec.env_from_host.get(key).cloned().unwrap_or_default();
            out.push((format!("env_from_host {var}"), value.clone()));
        }
        out.retain(|(_, v)| !v.is_empty());
        out
    }
}

impl ServerSpec {
    /// Reads what the declaration names from the host (`read` gives a host variable's
    /// value): a variable that is not set is an error naming it.
    pub fn resolve(
        &self,
        name: &str,
        read: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, SpecError> {
        let get = |field: &str, var: &str| {
            read(var).ok_or_else(|| SpecError {
                server: name.to_string(),
                problem: format!(
                    "{field} names the host variable {var}, which is not set: set it where cordon runs"
                ),
            })
        };
        let url = match (&self.url, &self.url_from_host) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(var)) => {
                let u = get("url_from_host", var)?;
                if reqwest::Url::parse(&u).is_err() {
                    return Err(SpecError {
                        server: name.to_string(),
                        problem: format!(
                            "url_from_host: the host variable {var} does not hold a URL"
                        ),
                    });
                }
                Some(u)
            }
            (None, None) => None,
        };
        Ok(Resolved {
            url,
            bearer: self
                .bearer_token_from_host
                .as_deref()
                .map(|v| get("bearer_token_from_host", v))
                .transpose()?,
            headers: self
                .headers_from_host
                .iter()
                .map(|(h, v)| Ok((h.clone(), get("headers_from_host", v)?)))
                .collect::<Result<_, SpecError>>()?,
            env: self
                .env_from_host
                .iter()
                .map(|(k, v)| Ok((k.clone(), get("env_from_host", v)?)))
                .collect::<Result<_, SpecError>>()?,
        })
    }
}

/// A literal URL is recorded, so it may not carry credentials.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url '{url}' is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "url '{url}': only http and https servers are supported"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return Err(
            "the url holds credentials or a query, and a literal url is recorded in the run log: put it in a host variable and name it in `url_from_host`, or pass a token with `bearer_token_from_host`".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ServerSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn where_a_server_runs_and_what_is_refused() {
        assert_eq!(spec(r#"command = "node""#).runs(), Runs::Sandbox);
        assert_eq!(
            spec("command = \"node\"\ntrusted = true").runs(),
            Runs::Host
        );
        assert_eq!(
            spec(r#"url = "http://127.0.0.1:3001/mcp""#).runs(),
            Runs::Remote
        );
        let bad = [
            ("", "give `command`"),
            ("command = \"a\"\nurl = \"http://x/mcp\"", "exactly one"),
            (
                "command = \"a\"\nenv_from_host = { T = \"T\" }",
                "no host secrets",
            ),
            ("url = \"https://u:p@x/mcp\"", "credentials"),
            ("url = \"https://x/mcp?key=1\"", "credentials"),
            ("url = \"ftp://x/mcp\"", "only http"),
            (
                "command = \"a\"\nbearer_token_from_host = \"T\"",
                "for HTTP servers",
            ),
            (
                "url = \"http://x/mcp\"\ntrusted = true",
                "for stdio servers",
            ),
            ("command = \"a\"\ndeny_tools = [\"[\"]", "not a glob"),
            ("command = \"a\"\ncall_timeout_secs = 0", "is 0"),
            (
                "command = \"a\"\nenv = { \"A=B\" = \"x\" }",
                "environment variable",
            ),
            (
                "url = \"http://x/mcp\"\nbearer_token_from_host = \"T\"\nheaders_from_host = { Authorization = \"U\" }",
                "give one",
            ),
        ];
        for (text, says) in bad {
            let err = spec(text).check("s").unwrap_err().to_string();
            assert!(
                err.contains(says) && err.starts_with("mcp_servers.s: "),
                "{text}: {err}"
            );
        }
        for name in ["", "a__b", "with space", "x".repeat(25).as_str()] {
            assert!(spec(r#"command = "a""#).check(name).is_err(), "{name}");
        }
        assert!(spec(r#"command = "a""#).check("files-1_x").is_ok());
    }

    #[test]
    fn allow_and_deny_lists_pick_the_tools() {
        let s = spec(
            "command = \"a\"\nallow_tools = [\"get-*\", \"echo\"]\ndeny_tools = [\"get-env\"]",
        );
        assert!(s.offers("echo") && s.offers("get-sum"));
        assert!(!s.offers("get-env") && !s.offers("add"));
        assert!(spec(r#"command = "a""#).offers("anything"));
    }
}
