//! One MCP server for one run: started, its tools listed and offered, called, listed again
//! when it says its tools changed, started again when it died, stopped at the end.

use crate::http::HttpClient;
use crate::spec::{Resolved, Runs, ServerSpec};
use crate::transport::{self, Exit, Stopper};
use cordon_core::ToolSpec;
use cordon_sandbox::Sandbox;
use cordon_tools::{Effects, RefreshFuture, Tool, ToolContext, ToolError, ToolFuture, ToolSource};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, Peer, RoleClient, RunningService};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// Where a run's servers can run: its sandbox, if it has one (a trusted server runs on the
/// host, where cordon runs unless its `cwd` says otherwise).
#[derive(Clone, Default)]
pub struct Place {
    /// The run's sandbox.
    pub sandbox: Option<Arc<dyn Sandbox>>,
}

/// What is recorded about a server once it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerInfo {
    /// The server's name in the agent file.
    pub server: String,
    /// Where it runs.
    pub runs: Runs,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The protocol version agreed.
    pub protocol: String,
    /// The server's own name and version, as it gave them.
    pub implementation: Option<String>,
    /// The tools offered, as the model calls them.
    pub tools: Vec<String>,
    /// The server's tools that its allow and deny lists hold back.
    pub withheld: Vec<String>,
}

/// Tells the server that its tool list changed.
struct Handler {
    changed: Arc<AtomicBool>,
}

impl rmcp::ClientHandler for Handler {
    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.changed.store(true, Ordering::SeqCst);
        std::future::ready(())
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("cordon", cordon_core::VERSION),
        )
    }
}

/// A live connection.
struct Connection {
    service: RunningService<RoleClient, Handler>,
    stop: Option<Stopper>,
}

/// An MCP server for one run. Its tools are a [`ToolSource`].
pub struct McpServer {
    name: String,
    spec: ServerSpec,
    resolved: Resolved,
    place: Place,
    connection: tokio::sync::Mutex<Option<Connection>>,
    /// A clone of the live connection's peer, for calls that go on at once.
    peer: RwLock<Option<Peer<RoleClient>>>,
    /// The stderr tail and end of the newest stdio process.
    exit: Mutex<Option<Arc<Mutex<Exit>>>>,
    changed: Arc<AtomicBool>,
    tools: RwLock<Vec<Arc<dyn Tool>>>,
    info: Mutex<Option<ServerInfo>>,
    me: Weak<McpServer>,
}

impl McpServer {
    /// Starts the server called `name` and lists its tools, within its startup timeout.
    /// `resolved` holds what its declaration takes from the host
    /// ([`ServerSpec::resolve`]).
    pub async fn start(
        name: &str,
        spec: ServerSpec,
        resolved: Resolved,
        place: Place,
    ) -> Result<Arc<McpServer>, String> {
        spec.check(name).map_err(|e| e.problem)?;
        if spec.runs() == Runs::Sandbox && place.sandbox.is_none() {
            return Err(
                "it runs in the run's sandbox, and this run has none: give the run a workspace, or mark the server `trusted = true` to run it on the host".into(),
            );
        }
        let server = Arc::new_cyclic(|me| McpServer {
            name: name.to_string(),
            spec,
            resolved,
            place,
            connection: tokio::sync::Mutex::new(None),
            peer: RwLock::new(None),
            exit: Mutex::new(None),
            changed: Arc::new(AtomicBool::new(false)),
            tools: RwLock::new(Vec::new()),
            info: Mutex::new(None),
            me: me.clone(),
        });
        let timeout = server.spec.startup_timeout();
        let started = async {
            server.connect().await?;
            server.list().await
        };
        match tokio::time::timeout(timeout, started).await {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => {
                server.stop().await;
                Err(e)
            }
            Err(_) => {
                let why = server.exit_note();
                server.stop().await;
                Err(format!(
                    "it did not start within {} s{why}; raise startup_timeout_secs if it is slow to start",
                    timeout.as_secs()
                ))
            }
        }
    }

    /// The server's name in the agent file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What is known about it since it answered.
    pub fn info(&self) -> Option<ServerInfo> {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ends the session and stops the server's process.
    pub async fn stop(&self) {
        *self.peer.write().unwrap_or_else(|e| e.into_inner()) = None;
        let connection = self.connection.lock().await.take();
        if let Some(c) = connection {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.service.cancel()).await;
            if let Some(stop) = c.stop {
                stop.kill().await;
                // Its end is seen (or two seconds pass) before stop returns.
                let exit = self.exit.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(exit) = exit {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                    while transport::why_ended(&exit).is_none()
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }

    /// ", which exited …" when the server's process ended, to add to an error.
    fn exit_note(&self) -> String {
        let exit = self.exit.lock().unwrap_or_else(|e| e.into_inner()).clone();
        exit.and_then(|e| transport::why_ended(&e))
            .map(|why| format!(" ({why})"))
            .unwrap_or_default()
    }

    /// Starts the server and its session.
    async fn connect(&self) -> Result<(), String> {
        let handler = Handler {
            changed: self.changed.clone(),
        };
        let spec = &self.spec;
        let argv = || {
            let mut argv = vec![spec.command.clone().unwrap_or_default()];
            argv.extend(spec.args.iter().cloned());
            argv
        };
        let env = || -> Vec<(String, String)> {
            spec.env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(self.resolved.env.iter().cloned())
                .collect()
        };
        let (service, stop) = match spec.runs() {
            Runs::Sandbox | Runs::Host => {
                let pipe = if spec.runs() == Runs::Sandbox {
                    let sandbox = self.place.sandbox.clone().ok_or("the run has no sandbox")?;
                    transport::in_sandbox(
                        sandbox,
                        argv(),
                        spec.cwd.clone().unwrap_or_else(|| ".".into()),
                        env(),
                    )
                    .await?
                } else {
                    transport::on_host(argv(), spec.cwd.as_ref().map(PathBuf::from), env())?
                };
                let exit = pipe.exit.clone();
                let stop = pipe.stop.clone();
                // Kept before the handshake, so a failure can say how the process ended.
                *self.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit.clone());
                let served = handler.serve((pipe.read, pipe.write)).await;
                match served {
                    Ok(service) => (service, Some(stop)),
                    Err(e) => {
                        // Give a dying process a moment to say why.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let why = transport::why_ended(&exit)
                            .map(|w| format!(" ({w})"))
                            .unwrap_or_default();
                        stop.kill().await;
                        return Err(format!("the MCP handshake failed: {e}{why}"));
                    }
                }
            }
            Runs::Remote => {
                let url = self.resolved.url.clone().unwrap_or_default();
                // No redirects (headers and the URL's query would follow them to another
                // origin) and no Referer.
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .referer(false)
                    .build()
                    .map_err(|e| format!("no HTTP client: {e}"))?;
                let mut config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url);
                if let Some(token) = &self.resolved.bearer {
                    config = config.auth_header(token.clone());
                }
                let mut headers = std::collections::HashMap::new();
                for (k, v) in &self.resolved.headers {
                    let name = http::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("'{k}' is not a header name"))?;
                    let value = http::HeaderValue::from_str(v).map_err(|_| {
                        format!("the value for header '{k}' cannot be sent in a header")
                    })?;
                    headers.insert(name, value);
                }
                config = config.custom_headers(headers);
                let transport = rmcp::transport::StreamableHttpClientTransport::with_client(
                    HttpClient(client),
                    config,
                );
                let service = handler
                    .serve(transport)
                    .await
                    .map_err(|e| format!("the MCP handshake failed: {e}"))?;
                (service, None)
            }
        };
        *self.peer.write().unwrap_or_else(|e| e.into_inner()) = Some(service.peer().clone());
        *self.connection.lock().await = Some(Connection { service, stop });
        Ok(())
    }

    /// Lists the server's tools and offers those its lists allow.
    async fn list(&self) -> Result<(), String> {
        let peer = self.live_peer().map_err(|e| e.to_string())?;
        let listed = peer
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}{}", self.exit_note()))?;
        let mut offered: Vec<Arc<dyn Tool>> = Vec::new();
        let mut withheld = Vec::new();
        let mut names = Vec::new();
        for tool in listed {
            let own = tool.name.to_string();
            if !self.spec.offers(&own) {
                withheld.push(own);
                continue;
            }
            let json = serde_json::to_value(&tool).unwrap_or(Value::Null);
            let built = McpTool::new(&self.name, own, &json, self.me.clone());
            if names.contains(&built.spec.name) {
                continue;
            }
            names.push(built.spec.name.clone());
            offered.push(Arc::new(built));
        }
        *self.tools.write().unwrap_or_else(|e| e.into_inner()) = offered;
        let peer_info = peer.peer_info();
        let info = ServerInfo {
            server: self.name.clone(),
            runs: self.spec.runs(),
            transport: if self.spec.runs() == Runs::Remote {
                "http"
            } else {
                "stdio"
            },
            protocol: peer_info
                .as_ref()
                .map(|i| i.protocol_version.to_string())
                .unwrap_or_default(),
            implementation: peer_info.as_ref().and_then(|i| {
                i.server_info
                    .as_ref()
                    .map(|s| format!("{} {}", s.name, s.version))
            }),
            tools: names,
            withheld,
        };
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
        Ok(())
    }

    /// The live session's peer, or why there is none.
    fn live_peer(&self) -> Result<Peer<RoleClient>, ToolError> {
        let peer = self.peer.read().unwrap_or_else(|e| e.into_inner()).clone();
        match peer {
            Some(peer) if !peer.is_transport_closed() => Ok(peer),
            _ => Err(ToolError::Failed(format!(
                "the MCP server '{}' is not running{}",
                self.name,
                self.exit_note()
            ))),
        }
    }

    /// The session to call, started again (once) when the server died since the last call.
    async fn peer_for_call(&self) -> Result<Peer<RoleClient>, ToolError> {
        if let Ok(peer) = self.live_peer() {
            return Ok(peer);
        }
        let before = self.exit_note();
        self.stop().await;
        let again = async {
            self.connect().await?;
            self.list().await
        };
        match tokio::time::timeout(self.spec.startup_timeout(), again).await {
            Ok(Ok(())) => {
                // Its tools may differ now: the runner lists them again before the next turn.
                self.changed.store(true, Ordering::SeqCst);
                self.live_peer()
            }
            Ok(Err(e)) => Err(ToolError::Failed(format!(
                "the MCP server '{}' stopped{before} and could not be started again: {e}",
                self.name
            ))),
            Err(_) => Err(ToolError::Failed(format!(
                "the MCP server '{}' stopped{before} and did not start again within {} s",
                self.name,
                self.spec.startup_timeout().as_secs()
            ))),
        }
    }

    /// Calls the server's tool `tool` with the model's argument text.
    async fn call(&self, tool: &str, input: &str) -> Result<cordon_tools::ToolOutput, ToolError> {
        let arguments =
            match serde_json::from_str::<Value>(if input.trim().is_empty() { "{}" } else { input })
            {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(ToolError::InvalidArguments(
                        "the arguments must be a JSON object".into(),
                    ));
                }
                Err(e) => return Err(ToolError::InvalidArguments(format!("not JSON: {e}"))),
            };
        let peer = self.peer_for_call().await?;
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(arguments);
        let timeout = self.spec.call_timeout();
        // Dropping the call on a timeout sends the server `notifications/cancelled`.
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => Err(ToolError::Failed(format!(
                "the MCP server '{}' did not answer within {} s; the call was cancelled (raise call_timeout_secs if it needs longer)",
                self.name,
                timeout.as_secs()
            ))),
            Ok(Err(e)) => {
                // Let a dying process's end be seen before saying why the call failed.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let ended = self.exit_note();
                Err(ToolError::Failed(if ended.is_empty() {
                    format!(
                        "the MCP server '{}' failed the call: {}",
                        self.name,
                        describe(&e)
                    )
                } else {
                    format!(
                        "the MCP server '{}' stopped during the call{ended}; it is started again for the next call",
                        self.name
                    )
                }))
            }
            Ok(Ok(result)) => {
                crate::result::to_output(&serde_json::to_value(&result).unwrap_or(Value::Null))
            }
        }
    }
}

/// What a failed request says, in words for the model and people (rmcp's own names its
/// transport's types).
fn describe(e: &rmcp::ServiceError) -> String {
    match e {
        rmcp::ServiceError::McpError(m) => format!("{} (error {})", m.message, m.code.0),
        rmcp::ServiceError::TransportSend(t) => {
            format!("the request could not be sent: {}", t.error)
        }
        rmcp::ServiceError::TransportClosed => "the connection to it closed".into(),
        other => other.to_string(),
    }
}

impl ToolSource for McpServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn refresh(&self) -> RefreshFuture<'_> {
        Box::pin(async move {
            // rmcp hands notifications to the handler in tasks of their own: let one that
            // came with the last result run first.
            tokio::task::yield_now().await;
            if !self.changed.swap(false, Ordering::SeqCst) {
                return Ok(None);
            }
            let before = self.info().map(|i| i.tools);
            let listed = tokio::time::timeout(self.spec.startup_timeout(), self.list()).await;
            match listed {
                Ok(Ok(())) => {
                    let now = self.info().map(|i| i.tools);
                    Ok((now != before).then(|| now.unwrap_or_default()))
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err("tools/list took longer than the startup timeout".into()),
            }
        })
    }
}

/// One of a server's tools, as the model sees it.
struct McpTool {
    /// The tool's name at the server.
    own: String,
    spec: ToolSpec,
    effects: Effects,
    server: Weak<McpServer>,
}

impl McpTool {
    fn new(server_name: &str, own: String, listed: &Value, server: Weak<McpServer>) -> McpTool {
        let text = |k: &str| listed.get(k).and_then(Value::as_str).unwrap_or("");
        let description = match (text("description"), text("title")) {
            ("", "") => format!("The tool '{own}' of the MCP server '{server_name}'."),
            ("", title) => title.to_string(),
            (d, _) => d.to_string(),
        };
        let mut schema = listed
            .get("inputSchema")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        // Providers want an object schema with properties, even an empty one.
        if let Some(map) = schema.as_object_mut() {
            map.entry("type").or_insert_with(|| "object".into());
            map.entry("properties")
                .or_insert_with(|| Value::Object(Default::default()));
        }
        // Only a tool that says it reads only is treated as reading only; anything else may
        // act outside the workspace, so a resume never runs it twice.
        let read_only = listed
            .pointer("/annotations/readOnlyHint")
            .and_then(Value::as_bool)
            == Some(true);
        McpTool {
            spec: ToolSpec::function(
                &crate::names::namespaced(server_name, &own),
                &description,
                schema,
            ),
            own,
            effects: if read_only {
                Effects::None
            } else {
                Effects::External
            },
            server,
        }
    }
}

impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn effects(&self) -> Effects {
        self.effects
    }

    fn call<'a>(&'a self, _ctx: &'a ToolContext, input: &'a str) -> ToolFuture<'a> {
        Box::pin(async move {
            let server = self.server.upgrade().ok_or_else(|| {
                ToolError::Failed("the MCP server was stopped with its run".into())
            })?;
            server.call(&self.own, input).await
        })
    }
}
