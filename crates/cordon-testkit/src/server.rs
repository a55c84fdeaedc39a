//! The scripted model server: an axum app serving `POST /v1/responses` and
//! `POST /v1/chat/completions` from a [`Script`], recording every request it receives.

use crate::frame::Frame;
use crate::script::{Fault, Script, Turn, TurnFrom};
use crate::{chat, responses};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the server received, as tests see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RecordedRequest {
    /// Position among all requests, from 0.
    pub index: usize,
    /// The request path (`/v1/responses` or `/v1/chat/completions`).
    pub path: String,
    /// The JSON body.
    pub body: Value,
    /// The `Authorization` header as sent, if any.
    pub authorization: Option<String>,
    /// What the server answered: `turn N`, `fault ...` or `exhausted`.
    pub served: String,
}

/// A request as kept: its body as the bytes that came (parsed only when someone asks to see
/// it), so serving a long conversation costs a scan, not a parse into a tree.
#[derive(Debug, Clone)]
struct Kept {
    path: &'static str,
    raw: Bytes,
    authorization: Option<String>,
    served: String,
}

impl Kept {
    fn recorded(&self, index: usize) -> RecordedRequest {
        RecordedRequest {
            index,
            path: self.path.to_string(),
            body: serde_json::from_slice(&self.raw).unwrap_or(Value::Null),
            authorization: self.authorization.clone(),
            served: self.served.clone(),
        }
    }
}

/// What the server reads from a request body: only what choosing and shaping the answer
/// needs; the rest is skipped without being built.
#[derive(Debug, Default, serde::Deserialize)]
struct Peek<'a> {
    #[serde(default)]
    model: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    input: Option<Vec<ItemPeek<'a>>>,
    #[serde(default, borrow)]
    messages: Option<Vec<ItemPeek<'a>>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptionsPeek>,
}

/// A body's fields when the items do not matter: present or not, never built.
#[derive(Debug, Default, serde::Deserialize)]
struct Presence {
    #[serde(default)]
    model: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    input: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    messages: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptionsPeek>,
}

impl Presence {
    fn into_peek(self) -> Peek<'static> {
        Peek {
            model: self.model,
            input: self.input.map(|_| Vec::new()),
            messages: self.messages.map(|_| Vec::new()),
            stream: self.stream,
            stream_options: self.stream_options,
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ItemPeek<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    role: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct StreamOptionsPeek {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl Peek<'static> {
    /// The fields a body of any shape has, read from its tree (for a body whose fields have
    /// types the quick read does not expect).
    fn from_value(v: &Value) -> Peek<'static> {
        // A key that is there counts as given, whatever its type (a plain-text `input`).
        let items = |key: &str| {
            v.get(key).map(|x| {
                x.as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| ItemPeek {
                        kind: i["type"].as_str().map(|t| t.to_string().into()),
                        role: i["role"].as_str().map(|r| r.to_string().into()),
                    })
                    .collect()
            })
        };
        Peek {
            model: v.get("model").map(|_| serde::de::IgnoredAny),
            input: items("input"),
            messages: items("messages"),
            stream: v.get("stream").and_then(Value::as_bool),
            stream_options: Some(StreamOptionsPeek {
                include_usage: v
                    .pointer("/stream_options/include_usage")
                    .and_then(Value::as_bool),
            }),
        }
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Action {
    Fault(Fault),
    Reply(Turn),
    Serve { turn: usize, malformed: bool },
    Exhausted,
}

#[derive(Default)]
struct Cursor {
    turn: usize,
    fault: usize,
    replies: usize,
}

struct Shared {
    script: Script,
    cursor: Mutex<Cursor>,
    requests: Mutex<Vec<Kept>>,
    log: Option<Mutex<std::fs::File>>,
}

impl Shared {
    fn next_action(&self, body: &Peek<'_>, raw: &[u8]) -> Action {
        let mut c = self.cursor.lock().expect("cursor lock");
        let holds = |needle: &str| {
            !needle.is_empty() && raw.windows(needle.len()).any(|w| w == needle.as_bytes())
        };
        if let Some(reply) = self
            .script
            .replies
            .iter()
            .find(|r| holds(&r.when_body_contains))
        {
            let n = c.replies;
            c.replies += 1;
            return Action::Reply(Turn {
                text: Some(reply.text.replace("{n}", &n.to_string())),
                usage: reply.usage,
                ..Turn::default()
            });
        }
        if let Some(thread) = self
            .script
            .threads
            .iter()
            .find(|t| holds(&t.when_body_contains))
        {
            return match thread.turns.get(answers_in(body)) {
                Some(turn) => Action::Reply(turn.clone()),
                None => Action::Exhausted,
            };
        }
        if self.script.turn_from == TurnFrom::Conversation {
            let turn = answers_in(body);
            if turn != c.turn {
                *c = Cursor {
                    turn,
                    fault: 0,
                    replies: c.replies,
                };
            }
        }
        let Some(turn) = self.script.turns.get(c.turn) else {
            return Action::Exhausted;
        };
        let faults: Vec<&Fault> = turn
            .faults
            .iter()
            .filter(|f| **f != Fault::Malformed)
            .collect();
        if let Some(f) = faults.get(c.fault) {
            c.fault += 1;
            return Action::Fault((*f).clone());
        }
        let action = Action::Serve {
            turn: c.turn,
            malformed: turn.faults.contains(&Fault::Malformed),
        };
        if self.script.turn_from == TurnFrom::Requests {
            c.turn += 1;
            c.fault = 0;
        }
        action
    }

    /// Records a request and returns its index.
    fn record(
        &self,
        path: &'static str,
        raw: &Bytes,
        headers: &HeaderMap,
        served: String,
    ) -> usize {
        let mut reqs = self.requests.lock().expect("requests lock");
        let index = reqs.len();
        let kept = Kept {
            path,
            raw: raw.clone(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            served,
        };
        if let Some(log) = &self.log {
            let mut f = log.lock().expect("log lock");
            let line = serde_json::to_string(&kept.recorded(index)).unwrap_or_default();
            let _ = writeln!(f, "{line}");
        }
        reqs.push(kept);
        index
    }

    /// Every request so far, as tests see them.
    fn recorded(&self) -> Vec<RecordedRequest> {
        let reqs = self.requests.lock().expect("requests lock");
        reqs.iter()
            .enumerate()
            .map(|(i, k)| k.recorded(i))
            .collect()
    }
}

/// How many model answers a request's conversation holds: assistant messages for Chat
/// Completions; for Responses, runs of consecutive model output items (messages, reasoning,
/// tool calls), since one answer can hold several.
fn answers_in(body: &Peek<'_>) -> usize {
    if let Some(messages) = &body.messages {
        return messages
            .iter()
            .filter(|m| m.role.as_deref() == Some("assistant"))
            .count();
    }
    let Some(items) = &body.input else {
        return 0;
    };
    let from_model = |i: &ItemPeek| {
        i.role.as_deref() == Some("assistant")
            || matches!(
                i.kind.as_deref(),
                Some("function_call" | "custom_tool_call" | "reasoning")
            )
    };
    let mut answers = 0;
    let mut inside = false;
    for item in items {
        let model = from_model(item);
        if model && !inside {
            answers += 1;
        }
        inside = model;
    }
    answers
}

/// A running scripted server. Dropping it stops the server.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ScriptedServer {
    /// Starts serving `script` on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        Self::bind(script, "127.0.0.1:0".parse().expect("valid address"), None).await
    }

    /// Starts serving `script` on `addr`, appending each request as a JSON line to
    /// `requests_log` when given.
    pub async fn bind(
        script: Script,
        addr: SocketAddr,
        requests_log: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let log = match requests_log {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        let shared = Arc::new(Shared {
            script,
            cursor: Mutex::new(Cursor::default()),
            requests: Mutex::new(Vec::new()),
            log,
        });
        let app = Router::new()
            .route("/v1/responses", post(handle_responses))
            .route("/v1/chat/completions", post(handle_chat))
            .route("/v1/responses/compact", post(handle_compact))
            .route("/_testkit/requests", get(handle_requests))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(ScriptedServer {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn handle_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.recorded()).into_response()
}

async fn handle_responses(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, headers, body, Protocol::Responses).await
}

/// `responses/compact`, as the Responses API answers it: the user's messages kept, then an
/// "encrypted" compaction item (here `compacted-N:` and how many items it replaced), with
/// usage from the sizes.
async fn handle_compact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            shared.record("/v1/responses/compact", &body, &headers, "rejected".into());
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("body is not JSON: {e}"),
                None,
            );
        }
    };
    let Some(input) = parsed["input"].as_array() else {
        shared.record("/v1/responses/compact", &body, &headers, "rejected".into());
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required parameter: 'input'.",
            None,
        );
    };
    let n = {
        let mut c = shared.cursor.lock().expect("cursor lock");
        c.replies += 1;
        c.replies - 1
    };
    shared.record("/v1/responses/compact", &body, &headers, "compact".into());
    let mut output: Vec<Value> = input
        .iter()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .cloned()
        .collect();
    output.push(serde_json::json!({
        "type": "compaction",
        "id": format!("cmp_{n}"),
        "encrypted_content": format!("compacted-{n}:{}", input.len()),
    }));
    axum::Json(serde_json::json!({
        "id": format!("resp_compact_{n}"),
        "object": "response.compaction",
        "created_at": crate::frame::now_secs(),
        "output": output,
        "usage": { "input_tokens": (body.len() / 4).max(1), "output_tokens": 64, "total_tokens": (body.len() / 4).max(1) + 64 },
    }))
    .into_response()
}

async fn handle_chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, headers, body, Protocol::Chat).await
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Responses,
    Chat,
}

async fn handle(
    shared: Arc<Shared>,
    headers: HeaderMap,
    raw: Bytes,
    protocol: Protocol,
) -> Response {
    let path = match protocol {
        Protocol::Responses => "/v1/responses",
        Protocol::Chat => "/v1/chat/completions",
    };
    // The quick read skips what it does not need (the conversation's items too, unless the
    // turn is chosen from them); a body it cannot read that way (a field of another type) is
    // parsed whole, and one that is not JSON is refused.
    let quick =
        if shared.script.turn_from == TurnFrom::Conversation || !shared.script.threads.is_empty() {
            serde_json::from_slice::<Peek<'_>>(&raw)
        } else {
            serde_json::from_slice::<Presence>(&raw).map(Presence::into_peek)
        };
    let body: Peek<'_> = match quick {
        Ok(p) => p,
        Err(_) => match serde_json::from_slice::<Value>(&raw) {
            Ok(v) if v.is_object() => Peek::from_value(&v),
            Ok(_) => Peek::default(),
            Err(e) => {
                shared.record(path, &raw, &headers, "rejected".into());
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("body is not JSON: {e}"),
                    None,
                );
            }
        },
    };
    let missing = match protocol {
        _ if body.model.is_none() => Some("model"),
        Protocol::Responses if body.input.is_none() => Some("input"),
        Protocol::Chat if body.messages.is_none() => Some("messages"),
        _ => None,
    };
    if let Some(missing) = missing {
        shared.record(path, &raw, &headers, "rejected".into());
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("Missing required parameter: '{missing}'."),
            None,
        );
    }
    let action = shared.next_action(&body, &raw);
    let served = match &action {
        Action::Fault(f) => format!("fault {f:?}"),
        Action::Reply(_) => "reply".into(),
        Action::Serve { turn, .. } => format!("turn {turn}"),
        Action::Exhausted => "exhausted".into(),
    };
    let stream = body.stream.unwrap_or(false);
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let request = shared.record(path, &raw, &headers, served);

    let mut reply = None;
    let (turn_index, malformed, fault) = match action {
        Action::Reply(turn) => {
            reply = Some(turn);
            (0, false, None)
        }
        Action::Exhausted => {
            let n = shared.script.turns.len();
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("scripted server: the script has no turn left (it has {n})"),
                None,
            );
        }
        Action::Fault(Fault::Status {
            status,
            retry_after,
            retry_after_ms,
            message,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status == 429 {
                "rate_limit_error"
            } else {
                "server_error"
            };
            let message = message.unwrap_or_else(|| format!("scripted fault: HTTP {status}"));
            let mut resp = api_error(code, kind, &message, None);
            for (name, value) in [
                ("retry-after", retry_after),
                ("retry-after-ms", retry_after_ms),
            ] {
                if let Some(v) = value.and_then(|v| v.text().parse().ok()) {
                    resp.headers_mut().insert(name, v);
                }
            }
            return resp;
        }
        Action::Fault(f) => (
            shared.cursor.lock().expect("cursor lock").turn,
            false,
            Some(f),
        ),
        Action::Serve { turn, malformed } => (turn, malformed, None),
    };
    let Some(turn) = reply.as_ref().or(shared.script.turns.get(turn_index)) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "scripted server: no turn",
            None,
        );
    };
    let model = shared.script.model_name();
    let n = turn_index as u64 + 1;
    let (mut frames, whole) = match protocol {
        Protocol::Responses => responses::render(turn, model, n, request, raw.len()),
        Protocol::Chat => chat::render(
            turn,
            model,
            n,
            request,
            raw.len(),
            include_usage,
            shared.script.chat_quirks,
        ),
    };
    if turn.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(turn.delay_ms)).await;
    }
    if !stream && fault.is_none() {
        return axum::Json(whole).into_response();
    }
    if malformed {
        let at = frames.len() / 2;
        let event = frames[at].event.clone();
        frames.insert(
            at,
            Frame {
                event,
                data: "{\"type\": \"garbled".into(),
            },
        );
    }
    let mut steps = Vec::new();
    match fault {
        Some(Fault::Disconnect { after_events }) => {
            frames.truncate(after_events);
            steps.extend(frames.iter().map(|f| Step::Send(f.to_wire())));
            // Let what was sent reach the client before the drop, as on a real network.
            steps.push(Step::Sleep(50));
            steps.push(Step::Fail);
        }
        Some(Fault::Stall { ms }) => {
            frames.truncate(1);
            steps.extend(frames.iter().map(|f| Step::Send(f.to_wire())));
            steps.push(Step::Sleep(ms));
            steps.push(Step::Fail);
        }
        // Without delays between them, the events go out together, as a fast server's
        // do (and a client must take several events in one read).
        _ if turn.chunk_delay_ms == 0 => {
            steps.push(Step::Send(frames.iter().map(Frame::to_wire).collect()));
        }
        _ => {
            for f in &frames {
                steps.push(Step::Sleep(turn.chunk_delay_ms));
                steps.push(Step::Send(f.to_wire()));
            }
        }
    }
    sse_response(steps)
}

enum Step {
    Send(String),
    Sleep(u64),
    Fail,
}

fn sse_response(mut steps: Vec<Step>) -> Response {
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    // All of it at once: one body of known length.
    if let [Step::Send(_)] = steps.as_slice()
        && let Some(Step::Send(whole)) = steps.pop()
    {
        return builder.body(Body::from(whole)).expect("valid response");
    }
    let stream = futures::stream::unfold(steps.into_iter(), |mut it| async move {
        loop {
            match it.next()? {
                Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Step::Send(s) => return Some((Ok(Bytes::from(s)), it)),
                Step::Fail => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "scripted disconnect",
                    );
                    return Some((Err(e), it));
                }
            }
        }
    });
    builder
        .body(Body::from_stream(stream))
        .expect("valid response")
}

fn api_error(status: StatusCode, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits are a valid header"),
        );
    }
    resp
}
