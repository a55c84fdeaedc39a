//! `scripted:FILE` and `scripted-chat:FILE`: cordon's scripted model server
//! (`cordon-testkit`), started in this process on a free loopback port, for trying cordon and
//! running examples without a model API. Behind the `scripted` feature.

use crate::{ModelResolver, Models, ResolveFuture, ResolvedModel, SessionError};
use cordon_model::{Api, ProviderConfig};
use cordon_testkit::{Script, ScriptedServer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Resolves `scripted:FILE` (Responses) and `scripted-chat:FILE` (Chat Completions).
struct Scripted;

impl ModelResolver for Scripted {
    fn resolve<'a>(&'a self, provider: &'a str, file: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let script = Script::load(Path::new(file)).map_err(|e| {
                SessionError::bad_input(
                    e.to_string(),
                    "scripted:FILE takes a script file; see examples/ for one",
                )
            })?;
            let model_name = script.model_name().to_string();
            let server = ScriptedServer::start(script).await?;
            let api = if provider == "scripted" {
                Api::Responses
            } else {
                Api::Chat
            };
            let mut p = ProviderConfig::new(provider, api, &server.base_url(), None);
            p.retry_initial = Duration::from_millis(100);
            Ok(ResolvedModel {
                provider: p,
                model_name,
                keep_alive: Some(Box::new(server)),
            })
        })
    }

    /// The script's path made absolute, so a resume from another directory finds it.
    fn recorded(&self, file: &str) -> String {
        match std::path::absolute(file) {
            Ok(abs) if !Path::new(file).is_absolute() => abs.display().to_string(),
            _ => file.to_string(),
        }
    }
}

/// Adds the scripted providers to `models`.
pub fn register(models: &mut Models) {
    models.register("scripted", Arc::new(Scripted));
    models.register("scripted-chat", Arc::new(Scripted));
}
