//! Test support for cordon: a scripted model server that speaks the real OpenAI wire
//! protocols (Responses API and Chat Completions, SSE streaming included), so tests run the
//! production client code against it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cordon_testkit::{Script, ScriptedServer};
//! let script: Script = toml::from_str("[[turns]]\ntext = \"Hello!\"\n").unwrap();
//! let server = ScriptedServer::start(script).await?;
//! println!("point a client at {}", server.base_url());
//! // ... run the client ...
//! assert_eq!(server.requests().len(), 1);
//! # Ok(()) }
//! ```
//!
//! [`Upstream`]s stand for the hosts an egress test reaches through cordon's proxy.
//!
//! It depends on nothing else in the workspace, so the `cordon` binary can embed it for
//! `--model scripted:FILE`.

pub mod chat;
pub mod frame;
pub mod peers;
pub mod responses;
pub mod script;
pub mod server;
pub mod upstream;

pub use script::{ChatQuirks, Fault, Reply, Script, ScriptedCall, Thread, Turn, TurnFrom};
pub use server::{RecordedRequest, ScriptedServer};
pub use upstream::Upstream;
