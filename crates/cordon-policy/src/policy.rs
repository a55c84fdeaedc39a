//! A policy, made of one or more files, and its decisions on tool calls, command lines,
//! paths and network requests.

use crate::classify::{classify, runs_other_code};
use crate::command::{self, SimpleCommand};
use crate::file::{self, PolicyError, PolicyFile, Source, location};
use crate::rules::{CommandRule, NetworkRule, PathRule, ToolRule};
use crate::{Decision, Reason, RiskClass, Verdict};
use sha2::Digest as _;
use std::path::Path;

/// A rule and where it is written.
#[derive(Debug, Clone)]
struct Located<T> {
    rule: T,
    at: Option<String>,
}

/// The policy a run is under: every file's rules, in order, and the merged defaults.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    description: Option<String>,
    sources: Vec<Source>,
    unknown: Verdict,
    network_default: Verdict,
    network_isolation: crate::file::NetworkIsolation,
    classes: [Verdict; 5],
    tools: Vec<Located<ToolRule>>,
    commands: Vec<Located<CommandRule>>,
    paths: Vec<(Located<PathRule>, globset::GlobMatcher)>,
    network: Vec<Located<NetworkRule>>,
    credentials: Vec<Located<crate::rules::CredentialRule>>,
}

/// A network request, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The HTTP method (`None`: a tunnel, whose requests are not seen).
    pub method: Option<String>,
}

impl Request {
    /// The request a URL describes (`https://host[:port]/path`), with `method`. The URL is
    /// read as browsers and most HTTP clients read it (the WHATWG URL standard): `\\` after
    /// the host is `/`, `127.1` and `0x7f000001` are `127.0.0.1`, full-width dots are dots.
    pub fn from_url(text: &str, method: Option<&str>) -> Result<Request, String> {
        let bad = |why: &str| format!("'{text}' is not a URL: {why}");
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let port = match url.scheme() {
            "https" | "wss" | "http" | "ws" | "ftp" => url.port_or_known_default(),
            "ssh" | "git+ssh" => url.port().or(Some(22)),
            "git" => url.port().or(Some(9418)),
            other => return Err(bad(&format!("the scheme {other} is not one cordon judges"))),
        };
        // Schemes the standard does not know keep their host as written: read it as a
        // special scheme's host would be.
        let host = match url.host_str().map(host) {
            Some(Ok(h)) if !h.is_empty() => h,
            Some(Err(e)) => return Err(bad(&e)),
            _ => return Err(bad("it names no host")),
        };
        Ok(Request {
            host,
            port: port.unwrap_or(0),
            method: Some(method.unwrap_or("GET").to_ascii_uppercase()),
        })
    }
}

/// A host as rules and requests are compared: lowercase, no final dot, no brackets, and an
/// address in one spelling (`127.1`, `2130706433` and `[::ffff:127.0.0.1]` are all
/// `127.0.0.1`). Text the URL standard cannot read as a host is kept, lowercased.
pub fn canonical_host(written: &str) -> String {
    let plain = written.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = plain.trim_start_matches('[').trim_end_matches(']');
    let read = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => host(&plain)
            .ok()
            .and_then(|h| h.parse::<std::net::IpAddr>().ok()),
    };
    match read {
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Some(ip) => ip.to_string(),
        None => host(&plain).unwrap_or(plain),
    }
}

/// A host a person names (for `cordon approve --host`) as requests name it: a lowercase
/// ASCII name without a final dot, an IPv4 address in dotted form, or an IPv6 address without
/// brackets. A port, a path or a scheme is refused.
pub fn normalize_host(written: &str) -> Result<String, String> {
    let written = written.trim();
    let bare = written.starts_with('[')
        || !written.contains(':')
        || written.parse::<std::net::Ipv6Addr>().is_ok();
    if written.contains('*') {
        return Err(format!(
            "'{written}' is a pattern: a person allows one host at a time (patterns belong in the policy's [[network]] rules)"
        ));
    }
    if written.trim_end_matches('.').split('.').any(str::is_empty) && !written.contains(':') {
        return Err(format!("'{written}' is not a host: it has an empty label"));
    }
    if written.is_empty() || written.contains('/') || written.contains('@') || !bare {
        return Err(format!(
            "'{written}' is not a host: give a name or an address alone (pypi.org, 10.0.0.5), without a scheme, port or path"
        ));
    }
    let bracketed = match written.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{written}]"),
        Err(_) => written.to_string(),
    };
    host(&bracketed)
        .map_err(|e| format!("'{written}' is not a host: {e}"))
        .and_then(|h| match h.is_empty() {
            true => Err(format!("'{written}' is not a host")),
            false => Ok(canonical_host(&h)),
        })
}

/// A host as the standard reads it: an IPv4 address in dotted form, an IPv6 address without
/// brackets, or a lowercase ASCII name.
fn host(written: &str) -> Result<String, String> {
    let inner = written
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .map(|h| format!("[{h}]"));
    match url::Host::parse(inner.as_deref().unwrap_or(written)).map_err(|e| e.to_string())? {
        url::Host::Ipv4(a) => Ok(a.to_string()),
        url::Host::Ipv6(a) => Ok(a.to_string()),
        url::Host::Domain(d) => Ok(d.trim_end_matches('.').to_string()),
    }
}

impl Policy {
    /// The policy of a run that names none: everything runs, as the agent file's
    /// `[approvals]` (see [`Policy::with_approvals`]) do not say otherwise.
    pub fn permissive() -> Policy {
        Policy {
            name: "none".into(),
            description: None,
            sources: Vec::new(),
            unknown: Verdict::Allow,
            network_default: Verdict::Allow,
            network_isolation: crate::file::NetworkIsolation::Any,
            classes: [Verdict::Allow; 5],
            tools: Vec::new(),
            commands: Vec::new(),
            paths: Vec::new(),
            network: Vec::new(),
            credentials: Vec::new(),
        }
    }

    /// Reads a policy file and what it extends.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let first = file::read_file(path)?;
        Policy::from_parsed(file::read_chain(first, path.parent())?)
    }

    /// A pack built into cordon (`base`, `dev`, `stage`, `prod`), or `None`.
    pub fn builtin(name: &str) -> Option<Result<Policy, PolicyError>> {
        let (n, text) = file::PACKS.iter().find(|(n, _)| *n == name)?;
        let first = Source {
            origin: format!("builtin:{n}"),
            text: text.to_string(),
        };
        Some(file::read_chain(first, None).and_then(Policy::from_parsed))
    }

    /// The policy made of these files, base first, as a run recorded them. `extends` is
    /// not followed again: the recorded files are the whole policy.
    pub fn from_sources(sources: Vec<Source>) -> Result<Policy, PolicyError> {
        let parsed = sources
            .into_iter()
            .map(|s| file::parse(&s).map(|f| (s, f)))
            .collect::<Result<Vec<_>, _>>()?;
        Policy::from_parsed(parsed)
    }

    /// The policy made of these files, base first, each as read and as parsed.
    fn from_parsed(files: Vec<(Source, PolicyFile)>) -> Result<Policy, PolicyError> {
        // A file's defaults: the stricter, as a base starts.
        let mut policy = Policy {
            name: String::new(),
            description: None,
            sources: Vec::new(),
            unknown: Verdict::Ask,
            network_default: Verdict::Deny,
            network_isolation: crate::file::NetworkIsolation::Any,
            classes: [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Ask,
                Verdict::Ask,
                Verdict::Ask,
            ],
            tools: Vec::new(),
            commands: Vec::new(),
            paths: Vec::new(),
            network: Vec::new(),
            credentials: Vec::new(),
        };
        for (source, parsed) in files {
            policy.add(&source, parsed)?;
            policy.sources.push(source);
        }
        policy.check_ids()?;
        Ok(policy)
    }

    /// Refuses a rule `id` that another rule's key also is: an "always" approval of one
    /// would cover the other's calls.
    fn check_ids(&self) -> Result<(), PolicyError> {
        let keys: Vec<(String, bool, Option<String>)> = self
            .tools
            .iter()
            .map(|r| (r.rule.key(), r.rule.id.is_some(), r.at.clone()))
            .chain(
                self.commands
                    .iter()
                    .map(|r| (r.rule.key(), r.rule.id.is_some(), r.at.clone())),
            )
            .chain(
                self.paths
                    .iter()
                    .map(|(r, _)| (r.rule.key(), r.rule.id.is_some(), r.at.clone())),
            )
            .chain(
                self.network
                    .iter()
                    .map(|r| (r.rule.key(), r.rule.id.is_some(), r.at.clone())),
            )
            .collect();
        for (i, (key, explicit, at)) in keys.iter().enumerate() {
            if !explicit {
                continue;
            }
            const MADE_UP: [&str; 5] = [
                "class:",
                "unknown:",
                "network:private-address",
                "network:default",
                "host:",
            ];
            if MADE_UP.iter().any(|m| key.starts_with(m)) {
                return Err(PolicyError {
                    at: at.clone().unwrap_or_default(),
                    message: format!("the id '{key}' is one cordon gives its own decisions"),
                    hint: "give the rule an id of its own".into(),
                });
            }
            if let Some((_, _, other)) = keys
                .iter()
                .enumerate()
                .find(|(j, (k, _, _))| *j != i && k == key)
                .map(|(_, k)| k)
            {
                return Err(PolicyError {
                    at: at.clone().unwrap_or_default(),
                    message: format!(
                        "the id '{key}' is also the key of the rule at {}: an \"always\" approval of one would cover the other",
                        other.as_deref().unwrap_or("another rule")
                    ),
                    hint: "give every rule its own id".into(),
                });
            }
        }
        Ok(())
    }

    fn add(&mut self, source: &Source, file: PolicyFile) -> Result<(), PolicyError> {
        let at = |offset: usize| Some(location(&source.origin, &source.text, offset));
        if let Some(name) = file.name {
            self.name = name;
        } else if self.name.is_empty() {
            self.name = source.origin.clone();
        }
        if file.description.is_some() {
            self.description = file.description;
        }
        if let Some(v) = file.defaults.unknown {
            self.unknown = v;
        }
        if let Some(v) = file.defaults.network {
            self.network_default = v;
        }
        if let Some(v) = file.defaults.network_isolation {
            self.network_isolation = v;
        }
        let c = &file.classes;
        for (i, v) in [
            c.read_only,
            c.workspace_write,
            c.network,
            c.credential_use,
            c.destructive,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = v {
                self.classes[i] = v;
            }
        }
        for r in file.tools {
            let at = at(r.span().start);
            self.tools.push(Located {
                rule: r.into_inner(),
                at,
            });
        }
        for r in file.commands {
            let at = at(r.span().start);
            self.commands.push(Located {
                rule: r.into_inner(),
                at,
            });
        }
        for r in file.paths {
            let at = at(r.span().start);
            let rule = r.into_inner();
            let matcher = globset::GlobBuilder::new(&rule.glob)
                .literal_separator(true)
                .build()
                .map_err(|e| PolicyError {
                    at: at.clone().unwrap_or_default(),
                    message: format!("glob '{}' is not a pattern: {}", rule.glob, e.kind()),
                    hint: "globs look like secrets/** or **/*.pem".into(),
                })?
                .compile_matcher();
            self.paths.push((Located { rule, at }, matcher));
        }
        for r in file.network {
            let at = at(r.span().start);
            self.network.push(Located {
                rule: r.into_inner(),
                at,
            });
        }
        for r in file.credentials {
            let at = at(r.span().start);
            let rule = r.into_inner();
            let problem = rule.problem().or_else(|| {
                self.credentials
                    .iter()
                    .any(|c| c.rule.name == rule.name)
                    .then(|| format!("credential {} is declared twice", rule.name))
            });
            if let Some(message) = problem {
                return Err(PolicyError {
                    at: at.unwrap_or_default(),
                    message,
                    hint: "a credential looks like: name = \"github\", host = \"api.github.com\", env = \"GITHUB_TOKEN\", header = \"Authorization\", format = \"Bearer {}\", from_env = \"GITHUB_TOKEN\"".into(),
                });
            }
            self.credentials.push(Located { rule, at });
        }
        Ok(())
    }

    /// Adds the agent file's `[approvals]`, as rules that ask: `tool:NAME` for each tool,
    /// `command:PATTERN` for each command pattern (matched against each simple command and
    /// the whole command line). With command patterns, a command that cannot be judged
    /// asks too: it might be one of them.
    pub fn with_approvals(mut self, tools: &[String], commands: &[String]) -> Policy {
        if !commands.is_empty() {
            self.unknown = self.unknown.max(Verdict::Ask);
        }
        for name in tools {
            self.tools.push(Located {
                rule: ToolRule {
                    id: Some(format!("tool:{name}")),
                    name: crate::rules::OneOrMany::One(name.clone()),
                    decision: Verdict::Ask,
                    reason: None,
                    approvers: Vec::new(),
                },
                at: Some("the agent file's [approvals]".into()),
            });
        }
        for pattern in commands {
            self.commands.push(Located {
                rule: CommandRule {
                    id: Some(format!("command:{pattern}")),
                    program: None,
                    args: Vec::new(),
                    exact: false,
                    pattern: Some(pattern.clone()),
                    decision: Verdict::Ask,
                    reason: None,
                    approvers: Vec::new(),
                    must_match: Vec::new(),
                    not_match: Vec::new(),
                },
                at: Some("the agent file's [approvals]".into()),
            });
        }
        self
    }

    /// The policy as a run records it (`None` for [`Policy::permissive`]).
    pub fn record(&self) -> Option<cordon_core::PolicyRecord> {
        Some(cordon_core::PolicyRecord {
            name: self.name.clone(),
            digest: self.digest()?,
            files: self.sources.clone(),
        })
    }

    /// The policy a run recorded.
    pub fn from_record(record: &cordon_core::PolicyRecord) -> Result<Policy, PolicyError> {
        Policy::from_sources(record.files.clone())
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the policy says it is for.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The files it is made of, base first (empty for [`Policy::permissive`]).
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// SHA-256 over every file's origin and text, as `sha256:HEX` (`None` without files).
    pub fn digest(&self) -> Option<String> {
        if self.sources.is_empty() {
            return None;
        }
        let mut h = sha2::Sha256::new();
        for s in &self.sources {
            h.update((s.origin.len() as u64).to_le_bytes());
            h.update(s.origin.as_bytes());
            h.update((s.text.len() as u64).to_le_bytes());
            h.update(s.text.as_bytes());
        }
        Some(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The decision for a class of calls no rule names.
    pub fn class_default(&self, class: RiskClass) -> Verdict {
        self.classes[RiskClass::ALL.iter().position(|c| *c == class).unwrap_or(0)]
    }

    /// The decision on a tool call: `tool` with its argument text `input`; `class` is what
    /// the tool declares of itself (used for tools the policy cannot look into).
    pub fn decide_call(&self, tool: &str, input: &str, class: RiskClass) -> Decision {
        let mut reasons: Vec<Reason> = self
            .tools
            .iter()
            .filter(|t| t.rule.matches(tool))
            .map(|t| Reason {
                rule: t.rule.key(),
                verdict: t.rule.decision,
                subject: format!("the tool {tool}"),
                why: t.rule.reason.clone(),
                approvers: t.rule.approvers.clone(),
                at: t.at.clone(),
            })
            .collect();
        let named = !reasons.is_empty();
        // Read only for the tools whose arguments are looked into.
        let args = std::cell::OnceCell::new();
        let field = |name: &str| {
            args.get_or_init(|| serde_json::from_str::<serde_json::Value>(input).ok())
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let mut classes = Vec::new();
        match tool {
            "exec_command" => match field("cmd") {
                Some(cmd) => {
                    let d = self.decide_command(&cmd);
                    classes.push(d.class);
                    reasons.extend(d.reasons);
                }
                None => reasons.push(self.unknown_reason("arguments that cannot be read")),
            },
            // Keystrokes into a running session are commands to whatever reads them.
            "write_stdin" => match field("chars") {
                // Waiting for output, or keys that only signal (Ctrl-C, Ctrl-D).
                Some(chars)
                    if chars
                        .chars()
                        .all(|c| c.is_whitespace() || (c.is_control() && c != '\x1b')) =>
                {
                    classes.push(RiskClass::ReadOnly)
                }
                // A line typed in pieces is judged by no piece: each one asks.
                Some(chars) if !chars.ends_with(['\n', '\r']) => {
                    reasons.push(self.unknown_reason("keystrokes that do not end a line"))
                }
                // A terminal acts on control keys (Ctrl-U erases the line, a carriage return
                // ends one) before a program reads what is left.
                Some(chars)
                    if chars
                        .trim_end_matches(['\n', '\r'])
                        .chars()
                        .any(|c| c.is_control() && c != '\t') =>
                {
                    reasons.push(self.unknown_reason("control keys, which a terminal acts on"))
                }
                Some(chars) => {
                    let d = self.decide_command(&chars);
                    classes.push(d.class);
                    reasons.extend(d.reasons);
                }
                None => reasons.push(self.unknown_reason("arguments that cannot be read")),
            },
            "apply_patch" => {
                let patch = field("input")
                    .or_else(|| field("patch"))
                    .unwrap_or(input.to_string());
                classes.push(RiskClass::WorkspaceWrite);
                for path in patch_paths(&patch) {
                    reasons.extend(self.path_reasons(&path, true));
                }
                if !named {
                    reasons.push(self.class_reason(RiskClass::WorkspaceWrite, tool));
                }
            }
            "view_image" => {
                classes.push(RiskClass::ReadOnly);
                match field("path") {
                    Some(path) => reasons.extend(self.path_reasons(&path, false)),
                    None => reasons.push(self.unknown_reason("arguments that cannot be read")),
                }
                if !named {
                    reasons.push(self.class_reason(RiskClass::ReadOnly, tool));
                }
            }
            _ => {
                classes.push(class);
                if !named {
                    reasons.push(self.class_reason(class, tool));
                }
            }
        }
        let class = classes.into_iter().max().unwrap_or(class);
        Decision::from_reasons(reasons, class)
    }

    /// The decision on a shell command line: each simple command by the command rules
    /// that match it, or by its class when none does; what cannot be judged by the
    /// policy's `unknown` default.
    pub fn decide_command(&self, line: &str) -> Decision {
        let parsed = command::parse(line);
        let mut reasons = Vec::new();
        let mut class = RiskClass::ReadOnly;
        for why in &parsed.unknown {
            reasons.push(self.unknown_reason(why));
            class = class.max(RiskClass::WorkspaceWrite);
        }
        for cmd in &parsed.commands {
            if let Some(why) = runs_other_code(cmd) {
                reasons.push(self.unknown_reason(&why));
            }
            let c = classify(cmd);
            class = class.max(c);
            let matched: Vec<Reason> = self
                .commands
                .iter()
                .filter(|r| r.rule.matches(cmd, line))
                .map(|r| Reason {
                    rule: r.rule.key(),
                    verdict: r.rule.decision,
                    subject: cmd.text(),
                    why: r.rule.reason.clone(),
                    approvers: r.rule.approvers.clone(),
                    at: r.at.clone(),
                })
                .collect();
            if matched.is_empty() {
                reasons.push(self.class_reason(c, &cmd.text()));
            }
            reasons.extend(matched);
            for path in &cmd.writes {
                reasons.extend(self.path_reasons(path, true));
            }
            // The URLs a command names are judged as the requests they are (under a policy
            // file; without one, everything runs).
            if !self.sources.is_empty() {
                for arg in command_urls(cmd) {
                    let Ok(request) = Request::from_url(&arg, None) else {
                        reasons.push(self.unknown_reason("a URL that cannot be read"));
                        continue;
                    };
                    {
                        let request = Request {
                            method: None,
                            ..request
                        };
                        reasons.extend(self.decide_request(&request).reasons);
                    }
                }
            }
        }
        if parsed.commands.is_empty() && parsed.unknown.is_empty() {
            reasons.push(self.class_reason(RiskClass::ReadOnly, "an empty command"));
        }
        Decision::from_reasons(reasons, class)
    }

    /// The decision on reading (or, with `write`, writing) a workspace path.
    pub fn decide_path(&self, path: &str, write: bool) -> Decision {
        let class = if write {
            RiskClass::WorkspaceWrite
        } else {
            RiskClass::ReadOnly
        };
        let mut reasons = self.path_reasons(path, write);
        if reasons.is_empty() {
            reasons.push(self.class_reason(class, path));
        }
        Decision::from_reasons(reasons, class)
    }

    /// Whether a path rule denies reading (`write` false) or writing workspace path `path`:
    /// what the sandbox's mounts enforce (asks are left to the file tools, where a person
    /// can answer them).
    pub fn path_denied(&self, path: &str, write: bool) -> bool {
        self.path_reasons(path, write)
            .iter()
            .any(|r| r.verdict == Verdict::Deny)
    }

    /// The decision on a network request. Private, loopback and link-local addresses are
    /// denied unless a rule names them exactly; a host no rule covers gets `[defaults]
    /// network`.
    pub fn decide_request(&self, request: &Request) -> Decision {
        let host = canonical_host(&request.host);
        let mut reasons: Vec<Reason> = self
            .network
            .iter()
            .filter(|r| {
                r.rule
                    .matches(&host, request.port, request.method.as_deref())
            })
            .map(|r| Reason {
                rule: r.rule.key(),
                verdict: r.rule.decision,
                subject: format!("{host}:{}", request.port),
                why: r.rule.reason.clone(),
                approvers: r.rule.approvers.clone(),
                at: r.at.clone(),
            })
            .collect();
        if is_private(&host) && !self.names_host(&host, request.port) {
            reasons.push(Reason {
                rule: "network:private-address".into(),
                verdict: Verdict::Deny,
                subject: host.clone(),
                why: Some(
                    "private, loopback and link-local addresses are reached only when a rule names them"
                        .into(),
                ),
                approvers: Vec::new(),
                at: None,
            });
        }
        if reasons.is_empty() {
            reasons.push(Reason {
                rule: "network:default".into(),
                verdict: self.network_default,
                subject: format!("{host}:{}", request.port),
                why: Some("no [[network]] rule names this host".into()),
                approvers: Vec::new(),
                at: None,
            });
        }
        Decision::from_reasons(reasons, RiskClass::Network)
    }

    /// Whether any request could be allowed: a network rule that allows or asks, or a
    /// default for unnamed hosts that is not `deny`. When none can, a run needs no egress
    /// proxy and its sandbox stays off the network.
    pub fn may_reach_network(&self) -> bool {
        self.network_default != Verdict::Deny
            || self
                .network
                .iter()
                .any(|r| r.rule.decision != Verdict::Deny)
    }

    /// The credentials the egress proxy adds to requests, each with where it is declared
    /// (`FILE:LINE:COL`; a file's `from_file` is relative to that file).
    pub fn credentials(
        &self,
    ) -> impl Iterator<Item = (&crate::rules::CredentialRule, Option<&str>)> {
        self.credentials.iter().map(|c| (&c.rule, c.at.as_deref()))
    }

    /// Whether requests may go out only from a sandbox with a network namespace of its
    /// own (`[defaults] network_isolation = "namespaces"`).
    pub fn network_needs_namespaces(&self) -> bool {
        self.network_isolation == crate::file::NetworkIsolation::Namespaces
    }

    /// Whether a rule that does not deny names `host` itself (not through `*`, in any
    /// spelling) for `port`: only such a rule lets a request reach a private or loopback
    /// address there, by name or once resolved.
    pub fn names_host(&self, host: &str, port: u16) -> bool {
        self.network.iter().any(|r| {
            r.rule.decision != Verdict::Deny && r.rule.covers_port(port) && r.rule.names(host)
        })
    }

    /// The rule that denies connections to `address` on `port` by naming the address, if
    /// any: a name that resolves to a denied address is refused too.
    pub fn denies_address(&self, address: std::net::IpAddr, port: u16) -> Option<String> {
        let address = canonical_host(&address.to_string());
        self.network
            .iter()
            .find(|r| {
                r.rule.decision == Verdict::Deny
                    && r.rule.covers_port(port)
                    && r.rule.names(&address)
            })
            .map(|r| r.rule.key())
    }

    /// The rate limits of the rules that apply to `request`: each rule's key and its rate.
    pub fn rates(&self, request: &Request) -> Vec<(String, crate::rules::Rate)> {
        let host = canonical_host(&request.host);
        self.network
            .iter()
            .filter(|r| {
                r.rule
                    .matches(&host, request.port, request.method.as_deref())
            })
            .filter_map(|r| {
                let rate = crate::rules::Rate::parse(r.rule.rate.as_deref()?).ok()?;
                Some((r.rule.key(), rate))
            })
            .collect()
    }

    /// The rules' own examples, checked like unit tests: every `match` must match and no
    /// `not_match` may. Returns what failed.
    pub fn check_examples(&self) -> Vec<PolicyError> {
        let mut failures = Vec::new();
        for r in &self.commands {
            let matches = |line: &str| {
                let parsed = command::parse(line);
                parsed
                    .commands
                    .iter()
                    .any(|c: &SimpleCommand| r.rule.matches(c, line))
            };
            let at = r.at.clone().unwrap_or_default();
            for example in &r.rule.must_match {
                if !matches(example) {
                    failures.push(PolicyError {
                        at: at.clone(),
                        message: format!(
                            "rule {} should match '{example}' but does not",
                            r.rule.key()
                        ),
                        hint: "fix the rule or the example".into(),
                    });
                }
            }
            for example in &r.rule.not_match {
                if matches(example) {
                    failures.push(PolicyError {
                        at: at.clone(),
                        message: format!(
                            "rule {} should not match '{example}' but does",
                            r.rule.key()
                        ),
                        hint: "fix the rule or the example".into(),
                    });
                }
            }
        }
        failures
    }

    /// How many rules of each kind the policy has: tools, commands, paths, network.
    pub fn rule_counts(&self) -> [usize; 4] {
        [
            self.tools.len(),
            self.commands.len(),
            self.paths.len(),
            self.network.len(),
        ]
    }

    fn path_reasons(&self, path: &str, write: bool) -> Vec<Reason> {
        let candidates = path_candidates(path);
        let clean = candidates.first().cloned().unwrap_or_default();
        self.paths
            .iter()
            .filter(|(_, m)| candidates.iter().any(|c| m.is_match(c)))
            .filter_map(|(r, _)| {
                let verdict = if write { r.rule.write } else { r.rule.read }?;
                Some(Reason {
                    rule: r.rule.key(),
                    verdict,
                    subject: format!("{} {clean}", if write { "writing" } else { "reading" }),
                    why: r.rule.reason.clone(),
                    approvers: r.rule.approvers.clone(),
                    at: r.at.clone(),
                })
            })
            .collect()
    }

    fn class_reason(&self, class: RiskClass, subject: &str) -> Reason {
        Reason {
            rule: format!("class:{class}"),
            verdict: self.class_default(class),
            subject: subject.to_string(),
            why: None,
            approvers: Vec::new(),
            at: None,
        }
    }

    fn unknown_reason(&self, why: &str) -> Reason {
        Reason {
            rule: format!("unknown:{why}"),
            verdict: self.unknown,
            subject: why.to_string(),
            why: Some("cannot be judged without running it".into()),
            approvers: Vec::new(),
            at: None,
        }
    }
}

/// The workspace-relative forms a path may take, for matching path rules: `.` and `..`
/// resolved as text; and, for a path that is absolute, holds a variable, or climbs out of
/// where it starts, every tail of it (`/work/ws/secrets/a` is matched as `secrets/a` too),
/// since where the workspace is cannot be known here.
fn path_candidates(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = Vec::new();
    let mut climbed = false;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    climbed = true;
                }
            }
            p => parts.push(p),
        }
    }
    let mut out = vec![parts.join("/")];
    if path.starts_with('/') || path.starts_with('~') || path.contains('$') || climbed {
        for i in 1..parts.len() {
            out.push(parts[i..].join("/"));
        }
    }
    out
}

/// The files a patch (in the `apply_patch` format) adds, changes, deletes or moves to.
fn patch_paths(patch: &str) -> Vec<String> {
    const HEADERS: [&str; 4] = [
        "*** Add File: ",
        "*** Update File: ",
        "*** Delete File: ",
        "*** Move to: ",
    ];
    // As loosely as the tool reads them: spaces around, any space after the colon.
    patch
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            HEADERS
                .iter()
                .find_map(|h| l.strip_prefix(h.trim_end()))
                .map(|p| p.trim().to_string())
        })
        .collect()
}

/// The URLs a command names: `http(s)://` arguments of any command, and for the programs
/// that take a URL (`curl`, `wget`), their other arguments as `http://` URLs too
/// (`curl 169.254.169.254/latest`).
fn command_urls(cmd: &SimpleCommand) -> Vec<String> {
    let valued: &[&str] = match cmd.program() {
        "curl" => CURL_VALUED,
        "wget" => WGET_VALUED,
        _ => &[],
    };
    let takes_urls = !valued.is_empty();
    let mut urls = Vec::new();
    let mut value_next = false;
    for arg in cmd.argv.iter().skip(1) {
        // An option's value (`-o page.html`, `-H 'Accept: x'`) is no address; a URL in
        // one (`--referer https://…`) is still judged below.
        let is_value = std::mem::take(&mut value_next);
        if takes_urls && !is_value && arg.starts_with('-') && arg != "--url" {
            value_next = option_takes_value(arg, valued);
        }
        let arg = arg.strip_prefix("--url=").unwrap_or(arg);
        let lower = arg.to_ascii_lowercase();
        if lower.contains("://") {
            urls.push(arg.to_string());
        } else if takes_urls && !is_value && !arg.starts_with('-') && !arg.is_empty() {
            urls.push(format!("http://{arg}"));
        }
    }
    urls
}

/// curl's options that take a value in the next argument (a URL option, `--url`, does not
/// count: its value is judged as a URL).
const CURL_VALUED: &[&str] = &[
    "-o",
    "--output",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-urlencode",
    "--data-ascii",
    "-F",
    "--form",
    "--form-string",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-K",
    "--config",
    "-X",
    "--request",
    "-x",
    "--proxy",
    "-U",
    "--proxy-user",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "-T",
    "--upload-file",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "-r",
    "--range",
    "-E",
    "--cert",
    "--key",
    "--cacert",
    "--capath",
    "--resolve",
    "--connect-to",
    "-D",
    "--dump-header",
    "--output-dir",
    "-C",
    "--continue-at",
    "--limit-rate",
    "-Y",
    "--speed-limit",
    "-y",
    "--speed-time",
    "-z",
    "--time-cond",
    "--interface",
    "--json",
    "--url-query",
    "--oauth2-bearer",
    "--proto",
    "--proto-redir",
    "--max-redirs",
    "--max-filesize",
    "-P",
    "--ftp-port",
    "-Q",
    "--quote",
    "-t",
    "--telnet-option",
    "--stderr",
    "--trace",
    "--trace-ascii",
    "--unix-socket",
    "--abstract-unix-socket",
    "--variable",
    "--expand-url",
];

/// wget's options that take a value in the next argument.
const WGET_VALUED: &[&str] = &[
    "-O",
    "--output-document",
    "-o",
    "--output-file",
    "-a",
    "--append-output",
    "-P",
    "--directory-prefix",
    "-U",
    "--user-agent",
    "--header",
    "--post-data",
    "--post-file",
    "--body-data",
    "--body-file",
    "--method",
    "-i",
    "--input-file",
    "-B",
    "--base",
    "-e",
    "--execute",
    "-t",
    "--tries",
    "-T",
    "--timeout",
    "--user",
    "--password",
    "--http-user",
    "--http-password",
    "--ca-certificate",
    "--certificate",
    "--private-key",
    "-Q",
    "--quota",
    "-w",
    "--wait",
    "-l",
    "--level",
    "-A",
    "--accept",
    "-R",
    "--reject",
    "-D",
    "--domains",
    "-X",
    "--exclude-directories",
    "-I",
    "--include-directories",
    "--load-cookies",
    "--save-cookies",
    "--limit-rate",
    "--referer",
];

/// Whether option `arg` (`-o`, `--output`, or short options run together, `-sSLo`) takes
/// its value from the next argument: a long option written without `=`, or a run of short
/// options that ends in one taking a value.
fn option_takes_value(arg: &str, valued: &[&str]) -> bool {
    if arg.starts_with("--") {
        return !arg.contains('=') && valued.contains(&arg);
    }
    let letters: Vec<char> = arg.chars().skip(1).collect();
    for (i, c) in letters.iter().enumerate() {
        if valued.contains(&format!("-{c}").as_str()) {
            // The rest of the run is its value, or, when it is last, the next argument.
            return i + 1 == letters.len();
        }
    }
    false
}

/// Whether an address a name resolved to must be named to be reached: loopback, private,
/// link-local, unspecified, multicast, reserved, or an IPv6 form carrying such an IPv4
/// address.
pub fn is_private_address(address: std::net::IpAddr) -> bool {
    is_private(&address.to_string())
}

/// Whether `host` is an address that must be named to be reached: loopback, private,
/// link-local, unspecified, or `localhost`.
fn is_private(host: &str) -> bool {
    const METADATA: [&str; 2] = ["metadata", "instance-data"];
    if host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".internal")
        || METADATA.contains(&host)
    {
        return true;
    }
    // Every form an address may be written in (`127.1`, `2130706433`, `0x7f000001`), read
    // as the standard reads it; a host that cannot be read is not reached.
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(_) => host.to_string(),
        Err(_) => match self::host(host) {
            Ok(h) => h,
            Err(_) => return true,
        },
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let [o0, o1, o2, _] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o0 == 0
                || o0 >= 240
                || (o0 == 198 && (o1 & 0xfe) == 18)
                || (o0 == 192 && o1 == 0 && o2 == 0)
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first & 0xff00) == 0xff00
                // 6to4 (`2002:AABB:CCDD::`) carries an IPv4 address.
                || (first == 0x2002
                    && is_private(
                        &std::net::Ipv4Addr::from(
                            (u32::from(a.segments()[1]) << 16) | u32::from(a.segments()[2]),
                        )
                        .to_string(),
                    ))
                // IPv4-translated (`::ffff:0:a.b.c.d`) and NAT64 local-use (`64:ff9b:1::/48`).
                || a.segments()[..6] == [0, 0, 0, 0, 0xffff, 0]
                || (first == 0x64 && a.segments()[1] == 0xff9b)
                || a
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(&v4.to_string()))
                // IPv4-compatible (`::127.0.0.1`) and NAT64 (`64:ff9b::/96`) addresses.
                || ((a.segments()[..6] == [0; 6]
                    || a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
                    && is_private(
                        &std::net::Ipv4Addr::from(
                            (u32::from(a.segments()[6]) << 16) | u32::from(a.segments()[7]),
                        )
                        .to_string(),
                    ))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::from_sources(vec![Source {
            origin: "p.toml".into(),
            text: text.into(),
        }])
        .unwrap()
    }

    const SAMPLE: &str = r#"
[classes]
network = "ask"
destructive = "deny"

[[tool]]
name = "mcp__*"
decision = "ask"
approvers = ["alice"]

[[command]]
program = "git"
args = ["push"]
decision = "ask"
reason = "publishes work"

[[command]]
program = "curl"
args = ["*example.com*"]
decision = "allow"

[[path]]
glob = "secrets/**"
read = "deny"
write = "deny"

[[network]]
host = "*.example.com"
ports = [443]
decision = "allow"
"#;

    fn exec(cmd: &str) -> String {
        serde_json::json!({ "cmd": cmd }).to_string()
    }

    #[test]
    fn commands_are_judged_one_simple_command_at_a_time() {
        let p = policy(SAMPLE);
        let call = |cmd: &str| p.decide_call("exec_command", &exec(cmd), RiskClass::Network);
        let d = call("ls && git status");
        assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
        assert_eq!(d.class, RiskClass::ReadOnly);
        let d = call("make && git push origin main");
        assert_eq!(d.verdict, Verdict::Ask);
        assert_eq!(d.deciding_keys(), ["command:git push"]);
        assert_eq!(d.summary(), "ask by command:git push (publishes work)");
        let d = call("rm -rf build");
        assert_eq!(
            (d.verdict, d.class),
            (Verdict::Deny, RiskClass::Destructive)
        );
        assert_eq!(d.deciding_keys(), ["class:destructive"]);
        // A rule overrides its command's class: this curl is allowed; the URLs a command
        // names are judged as requests too.
        assert_eq!(
            call("curl https://api.example.com/x").verdict,
            Verdict::Allow
        );
        let d = call("curl https://other.org");
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.deciding_keys(), ["network:default"]);
        let d = call("wget -q http://169.254.169.254/latest/meta-data");
        assert_eq!(d.deciding_keys(), ["network:private-address"]);
        // Paths are judged however they are written.
        for path in [
            "x/../secrets/t",
            "/work/ws/secrets/t",
            "$PWD/secrets/t",
            "./secrets/t",
        ] {
            let d = call(&format!("echo x > {path}"));
            assert_eq!(d.verdict, Verdict::Deny, "{path}");
        }
        // Keystrokes that do not end a line ask; signals alone do not.
        let stdin = |chars: &str| {
            p.decide_call(
                "write_stdin",
                &serde_json::json!({ "session_id": 1, "chars": chars }).to_string(),
                RiskClass::WorkspaceWrite,
            )
            .verdict
        };
        assert_eq!(stdin("echo pwned > secr"), Verdict::Ask);
        assert_eq!(stdin("echo x\u{15}git push\n"), Verdict::Ask);
        assert_eq!(stdin("ls\rgit push\n"), Verdict::Ask);
        // A word known only when it runs matches rules that ask or deny.
        assert_eq!(call("x=push; git $x origin").verdict, Verdict::Ask);
        assert_eq!(call("git $'\\x70ush' origin").verdict, Verdict::Ask);
        // Programs that run code their words do not show cannot be judged.
        let d = call("echo x | sed 'e touch X'");
        assert_eq!(
            d.deciding_keys(),
            ["unknown:sed's e command, which runs its text"]
        );
        // Options' values are no addresses, whichever way they are written; the URL is.
        for line in [
            "curl -sSL -o page.html https://other.org/x",
            "curl -sSLo page.html https://other.org/x",
            "curl -H 'Accept: text/html' --output=page.html https://other.org/x",
            "wget -O page.html https://other.org/x",
        ] {
            let d = call(line);
            assert_eq!(
                d.deciding_keys(),
                ["network:default"],
                "{line}: {}",
                d.summary()
            );
            let subjects: Vec<&str> = d
                .reasons
                .iter()
                .filter(|r| r.rule.starts_with("network:"))
                .map(|r| r.subject.as_str())
                .collect();
            assert!(
                subjects.iter().all(|s| s.starts_with("other.org")),
                "{line}: {subjects:?}"
            );
        }
        // curl's URLs need no scheme to be judged.
        let d = call("curl 169.254.169.254/latest/meta-data/");
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(stdin("\u{3}"), Verdict::Allow);
        assert_eq!(stdin("ls\n"), Verdict::Allow);
        // What cannot be judged asks, with the reason.
        let d = call("echo $(cat secrets/key)");
        assert_eq!(d.verdict, Verdict::Ask);
        assert_eq!(d.deciding_keys(), ["unknown:command substitution"]);
        // Redirections are writes, judged by the path rules.
        let d = call("echo x > secrets/token");
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.deciding_keys(), ["path:secrets/**"]);
        let d = p.decide_call("exec_command", "{not json", RiskClass::Network);
        assert_eq!(d.verdict, Verdict::Ask);
    }

    #[test]
    fn tools_and_files_are_judged_by_their_rules() {
        let p = policy(SAMPLE);
        let d = p.decide_call("mcp__github__create_issue", "{}", RiskClass::Network);
        assert_eq!(d.verdict, Verdict::Ask);
        assert_eq!(d.approvers(), ["alice"]);
        let patch = "*** Begin Patch\n*** Update File: secrets/a.txt\n@@\n-a\n+b\n*** End Patch";
        let d = p.decide_call("apply_patch", patch, RiskClass::WorkspaceWrite);
        assert_eq!(d.verdict, Verdict::Deny);
        for header in [" *** Add File: secrets/t", "*** Add File:\tsecrets/t"] {
            let patch = format!("*** Begin Patch\n{header}\n+x\n*** End Patch");
            let d = p.decide_call("apply_patch", &patch, RiskClass::WorkspaceWrite);
            assert_eq!(d.verdict, Verdict::Deny, "{header:?}");
        }
        let patch = "*** Begin Patch\n*** Add File: src/a.rs\n+x\n*** End Patch";
        let d = p.decide_call("apply_patch", patch, RiskClass::WorkspaceWrite);
        assert_eq!(d.verdict, Verdict::Allow);
        let d = p.decide_call(
            "view_image",
            r#"{"path":"./secrets/shot.png"}"#,
            RiskClass::ReadOnly,
        );
        assert_eq!(d.verdict, Verdict::Deny);
        let d = p.decide_call("update_plan", "{}", RiskClass::ReadOnly);
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(d.deciding_keys(), ["class:read_only"]);
        let d = p.decide_call(
            "write_stdin",
            r#"{"session_id":1,"chars":""}"#,
            RiskClass::WorkspaceWrite,
        );
        assert_eq!(d.verdict, Verdict::Allow);
        let d = p.decide_call(
            "write_stdin",
            r#"{"session_id":1,"chars":"git push\n"}"#,
            RiskClass::WorkspaceWrite,
        );
        assert_eq!(d.verdict, Verdict::Ask);
    }

    #[test]
    fn requests_are_judged_by_host_port_and_address() {
        let p = policy(SAMPLE);
        let req = |url: &str| p.decide_request(&Request::from_url(url, None).unwrap());
        assert_eq!(req("https://api.example.com/v1").verdict, Verdict::Allow);
        assert_eq!(req("http://api.example.com/v1").verdict, Verdict::Deny);
        let d = req("https://pypi.org/simple");
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.deciding_keys(), ["network:default"]);
        for private in [
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://localhost/",
            "http://[::ffff:192.168.0.1]/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://metadata.google.internal/",
            "http://instance-data.ec2.internal/",
            "http://169.254.169.254\\@evil.com/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://224.0.0.1/",
            "http://198.18.0.1/",
            "http://127\u{3002}0\u{3002}0\u{3002}1/",
            "ftp://10.0.0.1/",
        ] {
            let d = req(private);
            assert_eq!(d.verdict, Verdict::Deny, "{private}");
            assert!(
                d.deciding_keys()
                    .contains(&"network:private-address".to_string())
            );
        }
        let named =
            policy("[[network]]\nhost = \"127.0.0.1\"\nports = [8080]\ndecision = \"allow\"\n");
        let d = named.decide_request(&Request::from_url("http://127.0.0.1:8080/", None).unwrap());
        assert_eq!(d.verdict, Verdict::Allow);
        let wildcard = policy("[[network]]\nhost = \"*\"\ndecision = \"allow\"\n");
        let public = Request::from_url("http://[2001:4860::8888]/", None).unwrap();
        assert_eq!(wildcard.decide_request(&public).verdict, Verdict::Allow);
        let d = wildcard.decide_request(&Request::from_url("http://10.0.0.1/", None).unwrap());
        assert_eq!(
            d.verdict,
            Verdict::Deny,
            "a wildcard does not name a private address"
        );
        assert!(Request::from_url("gopher://x", None).is_err());
        assert!(Request::from_url("http://127.0.0.1:80:80/", None).is_err());
        assert!(Request::from_url("http://[fe80::1%25lo]/", None).is_err());
        // What cannot be read as a URL in a command cannot be judged.
        let d = policy("").decide_command("curl 'http://[fe80::1%25lo]/'");
        assert!(
            d.deciding_keys()
                .contains(&"unknown:a URL that cannot be read".to_string())
        );
        assert!(Request::from_url("https://:443", None).is_err());
        assert_eq!(
            Request::from_url("https://u:p@Host.org:8443/x?y", Some("post")).unwrap(),
            Request {
                host: "host.org".into(),
                port: 8443,
                method: Some("POST".into())
            }
        );
    }

    #[test]
    fn approvals_translate_to_rules_with_their_old_keys() {
        let p = Policy::permissive().with_approvals(
            &["apply_patch".into()],
            &["git push*".into(), "rm -rf *".into()],
        );
        let call = |cmd: &str| p.decide_call("exec_command", &exec(cmd), RiskClass::Network);
        assert_eq!(call("git status").verdict, Verdict::Allow);
        assert_eq!(
            call("git push origin main").deciding_keys(),
            ["command:git push*"]
        );
        assert_eq!(call("rm -rf build").deciding_keys(), ["command:rm -rf *"]);
        // Stricter than the old whole-line match: the second command of a list is seen.
        assert_eq!(call("cd repo && git push").verdict, Verdict::Ask);
        assert_eq!(call("echo rm -rf x").verdict, Verdict::Allow);
        let d = p.decide_call("apply_patch", "x", RiskClass::WorkspaceWrite);
        assert_eq!(d.deciding_keys(), ["tool:apply_patch"]);
        assert!(p.digest().is_none());
    }

    #[test]
    fn the_packs_load_and_their_examples_hold() {
        for (name, _) in file::PACKS {
            let p = Policy::builtin(name).unwrap().unwrap();
            assert!(
                p.check_examples().is_empty(),
                "{name}: {:?}",
                p.check_examples()
            );
            assert!(p.digest().is_some());
        }
        let prod = Policy::builtin("prod").unwrap().unwrap();
        assert_eq!(prod.sources().len(), 2, "prod extends base");
        let d = prod.decide_call("exec_command", &exec("touch x"), RiskClass::Network);
        assert_eq!(d.verdict, Verdict::Ask, "prod is read-only until approved");
        let d = prod.decide_call("exec_command", &exec("rm -rf /"), RiskClass::Network);
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(Policy::builtin("nope").is_none());
    }

    #[test]
    fn an_id_that_another_rule_has_is_refused() {
        let e = Policy::from_sources(vec![Source {
            origin: "p.toml".into(),
            text: "[[command]]\nid = \"x\"\nprogram = \"touch\"\ndecision = \"ask\"\n\n[[command]]\nid = \"x\"\nprogram = \"chmod\"\ndecision = \"ask\"\n".into(),
        }])
        .unwrap_err();
        assert!(
            e.message.contains("also the key of the rule at p.toml:"),
            "{e}"
        );
        let e = Policy::from_sources(vec![Source {
            origin: "p.toml".into(),
            text: "[[command]]\nid = \"class:workspace_write\"\nprogram = \"rm\"\ndecision = \"ask\"\n".into(),
        }])
        .unwrap_err();
        assert!(e.message.contains("cordon gives its own decisions"), "{e}");
        let e = Policy::from_sources(vec![Source {
            origin: "p.toml".into(),
            text: "extends = \"stage\"\n[[tool]]\nid = \"git-push\"\nname = \"x\"\ndecision = \"allow\"\n".into(),
        }]);
        assert!(e.is_ok(), "from_sources does not follow extends");
    }

    #[test]
    fn bad_files_are_pointed_at_by_line_and_column() {
        let err = |text: &str| {
            Policy::from_sources(vec![Source {
                origin: "p.toml".into(),
                text: text.into(),
            }])
            .unwrap_err()
        };
        let e = err("[[command]]\nprogram = \"git\"\ndecision = \"maybe\"\n");
        assert!(e.at.starts_with("p.toml:3:"), "{e}");
        let e = err("[classes]\nnetwrk = \"ask\"\n");
        assert_eq!(e.at, "p.toml:2:1", "{e}");
        assert!(e.message.contains("netwrk"), "{e}");
        let e = err("name = \"p\"\n\n[[command]]\ndecision = \"ask\"\n");
        assert!(
            e.to_string().contains("needs `program` or `pattern`"),
            "{e}"
        );
        assert!(e.at.starts_with("p.toml:3:"), "{e}");
        let e = err("[[path]]\nglob = \"a/[\"\nread = \"deny\"\n");
        assert!(e.message.contains("is not a pattern"), "{e}");
        let e = err("[[network]]\nhost = \"x.org\"\ndecision = \"allow\"\nrate = \"fast\"\n");
        assert!(e.message.contains("60/min"), "{e}");
        let failures = policy(
            "[[command]]\nprogram = \"git\"\nargs = [\"push\"]\ndecision = \"ask\"\nmatch = [\"git status\"]\nnot_match = [\"git push\"]\n",
        )
        .check_examples();
        assert_eq!(failures.len(), 2);
        assert!(
            failures[0]
                .to_string()
                .starts_with("p.toml:1:1: rule command:git push should match 'git status'")
        );
    }

    #[test]
    fn extends_follows_files_and_refuses_circles() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&a, "extends = \"b.toml\"\n[classes]\nnetwork = \"deny\"\n").unwrap();
        std::fs::write(&b, "extends = \"base\"\n[classes]\nnetwork = \"allow\"\n").unwrap();
        let p = Policy::load(&a).unwrap();
        let origins: Vec<&str> = p.sources().iter().map(|s| s.origin.as_str()).collect();
        assert_eq!(origins[0], "builtin:base");
        assert!(origins[2].ends_with("a.toml"));
        assert_eq!(
            p.class_default(RiskClass::Network),
            Verdict::Deny,
            "the later file wins"
        );
        let rebuilt = Policy::from_sources(p.sources().to_vec()).unwrap();
        assert_eq!(rebuilt.digest(), p.digest());
        std::fs::write(&b, "extends = \"./a.toml\"\n").unwrap();
        let e = Policy::load(&a).unwrap_err();
        assert!(e.message.contains("in a circle"), "{e}");
        std::fs::write(&b, "extends = \"nowhere\"\n").unwrap();
        // A bare name is a pack, never a file that happens to be there.
        std::fs::write(dir.path().join("nowhere"), "").unwrap();
        let e = Policy::load(&a).unwrap_err();
        assert!(e.message.contains("no built-in pack is called that"), "{e}");
        assert!(e.at.ends_with("b.toml:1:11"), "{e}");
    }

    #[test]
    fn addresses_are_one_host_however_written_and_naming_one_opens_only_its_ports() {
        let p = policy(
            r#"
[defaults]
network = "allow"
[[network]]
host = "203.0.113.80"
decision = "deny"
[[network]]
host = "127.0.0.1"
ports = [8000]
decision = "allow"
[[network]]
host = "10.0.0.9"
decision = "deny"
"#,
        );
        let req = |host: &str, port: u16| Request {
            host: host.into(),
            port,
            method: None,
        };
        for spelling in [
            "203.0.113.80",
            "3405803856",
            "0xcb007150",
            "203.0.29008",
            "0313.0.0161.0120",
            "[::ffff:203.0.113.80]",
            "[::ffff:cb00:7150]",
            "::ffff:cb00:7150",
        ] {
            let d = p.decide_request(&req(spelling, 443));
            assert_eq!(d.verdict, Verdict::Deny, "{spelling}: {}", d.summary());
            assert_eq!(d.deciding_keys(), ["network:203.0.113.80"], "{spelling}");
        }
        assert_eq!(
            p.decide_request(&req("127.1", 8000)).verdict,
            Verdict::Allow
        );
        let other_port = p.decide_request(&req("127.0.0.1", 8001));
        assert_eq!(other_port.verdict, Verdict::Deny);
        assert_eq!(other_port.deciding_keys(), ["network:private-address"]);
        assert!(p.names_host("127.0.0.1", 8000) && !p.names_host("127.0.0.1", 8001));
        assert!(!p.names_host("10.0.0.9", 80), "a deny rule lifts no guard");
        assert_eq!(
            p.denies_address("203.0.113.80".parse().unwrap(), 443)
                .as_deref(),
            Some("network:203.0.113.80")
        );
        assert_eq!(canonical_host("[::FFFF:127.0.0.1]"), "127.0.0.1");
        assert_eq!(canonical_host("Example.COM."), "example.com");
        assert_eq!(normalize_host("::1").as_deref(), Ok("::1"));
        assert!(normalize_host("*").is_err() && normalize_host("*.org").is_err());
        assert!(normalize_host("a..b").is_err());
    }

    #[test]
    fn a_credential_goes_to_named_hosts_only() {
        let load = |host: &str, place: &str| {
            Policy::from_sources(vec![Source {
                origin: "/c.toml".into(),
                text: format!(
                    "[[credential]]\nname = \"c\"\nhost = \"{host}\"\n{place}\nfrom_env = \"X\"\n"
                ),
            }])
        };
        for wide in ["*", "*.", "*..", "*.com", "a*b.example", "", "*.*.example"] {
            let e = load(wide, "header = \"Authorization\"").unwrap_err();
            assert!(
                e.message.contains("never to every host"),
                "{wide}: {}",
                e.message
            );
        }
        let e = load("api.example.com", "").unwrap_err();
        assert!(
            e.message.contains("neither header nor query"),
            "{}",
            e.message
        );
        let p = load("*.example.com", "query = \"token\"").unwrap();
        let (c, _) = p.credentials().next().unwrap();
        assert!(c.covers("api.example.com") && c.covers("API.example.com."));
        assert!(!c.covers("example.com") && !c.covers("evil.com"));
    }
}
