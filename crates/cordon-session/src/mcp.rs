//! The MCP servers of a run: read from the agent's declaration, what they take from the
//! host resolved (secrets, kept out of the log), started beside the run's sandbox, stopped
//! with it.

use crate::{AgentSpec, SessionError};
use cordon_core::EventPayload;
use cordon_mcp::{McpServer, Place, Resolved, ServerSpec};
use std::sync::Arc;

/// A declared server with what it takes from the host.
pub(crate) struct Declared {
    name: String,
    spec: ServerSpec,
    resolved: Resolved,
}

impl Declared {
    /// The values to keep out of the log.
    pub(crate) fn secrets(&self) -> Vec<(String, String)> {
        self.resolved.secrets(&self.spec)
    }
}

/// Reads what each of the agent's servers takes from the host's environment.
pub(crate) fn resolve(agent: &AgentSpec, origin: &str) -> Result<Vec<Declared>, SessionError> {
    agent
        .mcp_servers
        .iter()
        .map(|(name, spec)| {
            spec.check(name)
                .and_then(|()| spec.resolve(name, &|v| std::env::var(v).ok()))
                .map(|resolved| Declared {
                    name: name.clone(),
                    spec: spec.clone(),
                    resolved,
                })
                .map_err(|e| {
                    SessionError::bad_input(
                        format!("{origin}: {e}"),
                        "see `[mcp_servers]` in the README for how servers are declared",
                    )
                })
        })
        .collect()
}

/// Starts every declared server (all at once); when one fails, the others are stopped and
/// the error names it and what went wrong.
pub(crate) async fn start(
    declared: Vec<Declared>,
    place: Place,
    origin: &str,
) -> Result<Vec<Arc<McpServer>>, SessionError> {
    // What a failure says may echo what the server was given (its stderr, a 401's body).
    let mut redactor = cordon_core::Redactor::new();
    for d in &declared {
        for (name, value) in d.secrets() {
            redactor.add(&name, &value);
        }
    }
    let starts = declared.into_iter().map(|d| {
        let place = place.clone();
        async move {
            let name = d.name.clone();
            McpServer::start(&d.name, d.spec, d.resolved, place)
                .await
                .map_err(|e| (name, e))
        }
    });
    let mut started = Vec::new();
    let mut failed = None;
    for result in futures::future::join_all(starts).await {
        match result {
            Ok(s) => started.push(s),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some((name, why)) = failed {
        stop(&started).await;
        let why = redactor.redact(&why);
        return Err(SessionError::bad_input(
            format!("{origin}: the MCP server '{name}' did not start: {why}"),
            "check its command or URL by hand; `trusted = true` servers run on the host, others in the run's sandbox",
        ));
    }
    Ok(started)
}

/// Stops every server.
pub(crate) async fn stop(servers: &[Arc<McpServer>]) {
    futures::future::join_all(servers.iter().map(|s| s.stop())).await;
}

/// What the run records about a server that started.
pub(crate) fn started_event(server: &McpServer) -> Option<EventPayload> {
    let info = server.info()?;
    Some(EventPayload::McpServerStarted {
        server: info.server,
        runs: info.runs.as_str().to_string(),
        transport: info.transport.to_string(),
        protocol: info.protocol,
        implementation: info.implementation,
        tools: info.tools,
        withheld: info.withheld,
    })
}
