//! Function tools built from typed closures.

use crate::{Effects, Tool, ToolContext, ToolError, ToolFuture, ToolOutput};
use cordon_core::ToolSpec;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::marker::PhantomData;

/// A tool whose JSON arguments deserialize into `A`; its parameter schema is `A`'s. The
/// closure returns text (a `String`) or a [`ToolOutput`] with images.
pub struct FunctionTool<A, F> {
    spec: ToolSpec,
    f: F,
    effects: Effects,
    args: PhantomData<fn(A)>,
}

impl<A, F, Fut, O> FunctionTool<A, F>
where
    A: JsonSchema + DeserializeOwned + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: Into<ToolOutput>,
{
    /// Says what the tool's calls can change (by default nothing): checkpoints follow calls
    /// that change the workspace, and resume re-runs only calls confined to it.
    pub fn with_effects(mut self, effects: Effects) -> Self {
        self.effects = effects;
        self
    }

    /// A function tool named `name` that runs `f` on the parsed arguments.
    pub fn new(name: &str, description: &str, f: F) -> Self {
        FunctionTool {
            spec: ToolSpec::function(name, description, parameters_schema::<A>()),
            f,
            effects: Effects::None,
            args: PhantomData,
        }
    }
}

impl<A, F, Fut, O> Tool for FunctionTool<A, F>
where
    A: JsonSchema + DeserializeOwned + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: Into<ToolOutput>,
{
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn effects(&self) -> Effects {
        self.effects
    }

    fn call<'a>(&'a self, _ctx: &'a ToolContext, input: &'a str) -> ToolFuture<'a> {
        let input = if input.trim().is_empty() { "{}" } else { input };
        match serde_json::from_str::<A>(input) {
            Ok(args) => {
                let fut = (self.f)(args);
                Box::pin(async move { fut.await.map(Into::into) })
            }
            Err(e) => {
                let msg = format!(
                    "{e}; the arguments must be a JSON object matching the tool's parameters"
                );
                Box::pin(async move { Err(ToolError::InvalidArguments(msg)) })
            }
        }
    }
}

/// `A`'s JSON schema as a tool's parameters: an object schema, without the `$schema` and
/// `title` keys that providers do not want.
pub(crate) fn parameters_schema<A: JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(A).to_value();
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::ToolKind;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    struct Args {
        /// A number.
        n: i64,
    }

    fn ctx() -> ToolContext {
        ToolContext {
            run_id: "r".into(),
            call_id: "c".into(),
            idempotency_key: "r/c".into(),
        }
    }

    #[tokio::test]
    async fn arguments_are_parsed_and_bad_ones_explained() {
        let t = FunctionTool::new("double", "Doubles.", |a: Args| async move {
            Ok((a.n * 2).to_string())
        });
        match t.spec().kind {
            ToolKind::Function { parameters, .. } => {
                assert_eq!(parameters["properties"]["n"]["type"], "integer");
                assert!(parameters.get("$schema").is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.call(&ctx(), r#"{"n": 21}"#).await.unwrap().text, "42");
        let err = t.call(&ctx(), r#"{"n": "x"}"#).await.unwrap_err();
        assert!(
            matches!(err, ToolError::InvalidArguments(ref m) if m.contains("invalid type")),
            "{err}"
        );
        assert!(t.call(&ctx(), "{not json").await.is_err());
    }
}
