//! `cordon-testkit serve` as a program: prints its base URL, serves the script over
//! HTTP, and logs each request as a JSON line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// Sends one HTTP/1.1 request and returns the whole answer (head and body).
fn post(addr: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A `cordon-testkit serve` serving `script` (TOML), logging requests: the child, its
/// address (`127.0.0.1:PORT`), the base URL it printed, and the temporary directory holding
/// `requests.jsonl`.
fn serve(script: &str) -> (Child, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon-testkit"))
        .args(["serve", "--port", "0", "--script"])
        .arg(&path)
        .arg("--requests-log")
        .arg(dir.path().join("requests.jsonl"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    (child, addr, base, dir)
}

/// What the server answered each logged request with.
fn served(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["served"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn the_server_binary_serves_a_script_and_logs_requests() {
    let (mut child, addr, base, dir) =
        serve("[[turns]]\ntext = \"hello from the binary\"\n[[turns]]\ntext = \"second\"\n");
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{base}"
    );

    let chat = post(
        &addr,
        "/v1/chat/completions",
        r#"{"model":"m","messages":[],"stream":true}"#,
    );
    assert!(chat.starts_with("HTTP/1.1 200"), "{chat}");
    assert!(
        chat.contains("text/event-stream")
            && chat.contains("hello from")
            && chat.contains("data: [DONE]"),
        "{chat}"
    );

    let whole = post(&addr, "/v1/responses", r#"{"model":"m","input":"hi"}"#);
    assert!(
        whole.contains(r#""object":"response""#) && whole.contains("second"),
        "{whole}"
    );

    let bad = post(&addr, "/v1/responses", r#"{"input":"hi"}"#);
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("Missing required parameter: 'model'"),
        "{bad}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(served(&dir), ["turn 0", "turn 1", "rejected"]);
}

#[test]
fn conversation_mode_answers_the_same_conversation_with_the_same_turn() {
    let (mut child, addr, _, dir) = serve(
        "turn_from = \"conversation\"\n[[turns]]\ntext = \"first\"\n[[turns]]\ntext = \"second\"\n",
    );
    let fresh = r#"{"model":"m","input":[{"role":"user","content":"hi"}]}"#;
    // One answer (a message and a call from the same response count once) so far.
    let answered = r#"{"model":"m","input":[{"role":"user","content":"hi"},
        {"type":"message","role":"assistant","content":"x"},
        {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
        {"type":"function_call_output","call_id":"c","output":"ok"}]}"#;
    let a = post(&addr, "/v1/responses", fresh);
    let b = post(&addr, "/v1/responses", fresh);
    let c = post(&addr, "/v1/responses", answered);
    let chat = post(
        &addr,
        "/v1/chat/completions",
        r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x"}]}"#,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(a.contains("first") && b.contains("first"), "{a}\n{b}");
    assert!(c.contains("second"), "{c}");
    assert!(chat.contains("second"), "{chat}");
    // Every response has an id of its own, even for the same turn.
    let id = |s: &str| {
        let body: serde_json::Value =
            serde_json::from_str(s.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        body["id"].as_str().unwrap().to_string()
    };
    assert_ne!(id(&a), id(&b));
    assert_eq!(served(&dir), ["turn 0", "turn 0", "turn 1", "turn 1"]);
}
