//! Model clients for cordon: the OpenAI Responses API and Chat Completions (any compatible
//! server: Ollama, vLLM, llama.cpp, LM Studio), both streamed over SSE.
//!
//! A [`ModelClient`] sends a [`ModelRequest`] and returns the whole
//! [`ModelResponse`](cordon_core::ModelResponse), passing [`StreamEvent`]s (text as it
//! arrives, tool calls as they start, retries) to a channel on the way. It retries 408, 409,
//! 429 and 5xx answers, failed connections and streams that end early, with exponential
//! backoff and jitter, honouring `Retry-After`. Stream decoding is tolerant: events and
//! fields it does not know are kept in the response's `unknown_events`, never a crash.

mod chat;
mod client;
mod encoded;
mod error;
mod provider;
mod request;
mod responses;
mod stream;
mod tokens;

pub use chat::JsonOutput;
pub use client::ModelClient;
pub use error::ModelError;
pub use provider::{Api, ProviderConfig, Secret};
pub use request::{ModelRequest, ModelSettings, OutputSchema};
pub use stream::StreamEvent;
