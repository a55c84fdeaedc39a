//! `cordon doctor --agent FILE`: what an agent file's MCP servers and skills will be, checked
//! before a run: where each server runs, whether those outside the sandbox start and list
//! their tools, and which skills are found.

use cordon_mcp::{McpServer, Place, Runs};
use cordon_session::AgentSpec;
use serde_json::{Value, json};
use std::path::Path;

/// What the check found: lines for people, an object for `--json`, and whether all is well.
pub struct Checked {
    /// The text report.
    pub lines: Vec<String>,
    /// The same as JSON.
    pub json: Value,
    /// No server failed to start.
    pub ok: bool,
}

/// Reads the agent file (its declarations checked as a run would) and tries its servers.
pub async fn check(path: &Path) -> anyhow::Result<Checked> {
    let spec = AgentSpec::load(path)?;
    let mut lines = vec![format!("agent {} ({})", spec.name, path.display())];
    let mut servers = Vec::new();
    let mut ok = true;
    for (name, server) in &spec.mcp_servers {
        let runs = server.runs();
        let (place, transport) = match runs {
            Runs::Sandbox => ("in each run's sandbox", "stdio"),
            Runs::Host => ("ON THE HOST (trusted)", "stdio"),
            Runs::Remote => ("remote", "http"),
        };
        let outcome = match runs {
            // It needs the run's sandbox and workspace: a run starts it, or says why not.
            Runs::Sandbox => Ok(None),
            Runs::Host | Runs::Remote => match server.resolve(name, &|v| std::env::var(v).ok()) {
                Err(e) => Err(e.problem),
                Ok(resolved) => {
                    // What a failure says may echo what the server was given.
                    let mut redactor = cordon_core::Redactor::new();
                    for (secret, value) in resolved.secrets(server) {
                        redactor.add(&secret, &value);
                    }
                    match McpServer::start(name, server.clone(), resolved, Place::default()).await {
                        Ok(started) => {
                            let info = started.info();
                            started.stop().await;
                            Ok(info)
                        }
                        Err(e) => Err(redactor.redact(&e)),
                    }
                }
            },
        };
        let summary = match &outcome {
            Ok(None) => "not started here: it starts with a run, inside its sandbox".to_string(),
            Ok(Some(info)) => {
                let mut s = format!(
                    "started (protocol {}): {} tools: {}",
                    info.protocol,
                    info.tools.len(),
                    info.tools.join(", ")
                );
                if !info.withheld.is_empty() {
                    s.push_str(&format!("; withheld: {}", info.withheld.join(", ")));
                }
                s
            }
            Err(e) => {
                ok = false;
                format!("DOES NOT START: {e}")
            }
        };
        lines.push(format!("mcp {name:<12} {place} · {transport} · {summary}"));
        servers.push(json!({
            "server": name,
            "runs": runs.as_str(),
            "transport": transport,
            "started": matches!(outcome, Ok(Some(_))),
            "tools": outcome.as_ref().ok().and_then(Option::as_ref).map(|i| i.tools.clone()),
            "error": outcome.as_ref().err(),
        }));
    }
    let mut skills = Vec::new();
    if let Some(section) = &spec.skills {
        let base = spec.skills_base.clone().unwrap_or_else(|| ".".into());
        for (folder, name, description) in cordon_session::skills::from_host(section, &base)? {
            lines.push(format!(
                "skill {name:<11} {} ({})",
                description,
                folder.display()
            ));
            skills.push(json!({ "name": name, "description": description, "path": folder }));
        }
        let dir = cordon_session::skills::checked_dir(section)?;
        lines.push(format!(
            "skills go to {dir} in a run's workspace (with any a manifest entry puts there)"
        ));
    }
    Ok(Checked {
        lines,
        json: json!({ "name": spec.name, "mcp_servers": servers, "skills": skills }),
        ok,
    })
}
