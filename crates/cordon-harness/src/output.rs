//! Structured final output: parse the answer as JSON and check it against a schema.

use crate::AgentError;
use serde_json::Value;
use std::sync::Arc;

/// A compiled output schema.
#[derive(Clone)]
pub(crate) struct OutputValidator {
    schema: Value,
    validator: Arc<jsonschema::Validator>,
}

impl OutputValidator {
    pub(crate) fn new(schema: Value) -> Result<Self, AgentError> {
        let validator =
            jsonschema::validator_for(&schema).map_err(|e| AgentError::BadSchema(e.to_string()))?;
        Ok(OutputValidator {
            schema,
            validator: Arc::new(validator),
        })
    }

    pub(crate) fn schema(&self) -> &Value {
        &self.schema
    }

    /// The answer as JSON, or what is wrong with it, in words for the model.
    pub(crate) fn check(&self, text: &str) -> Result<Value, Mismatch> {
        let trimmed = strip_fence(text.trim());
        let value: Value =
            serde_json::from_str(trimmed).map_err(|e| Mismatch(format!("it is not JSON ({e})")))?;
        let problems: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(Mismatch(problems.join("; ")))
        }
    }
}

/// How a final answer fails its schema, in words the model is shown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Mismatch(pub String);

/// Removes a Markdown code fence around the answer, which models often add.
fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let rest = rest.split_once('\n').map_or(rest, |(_, body)| body);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_schema() {
        let v = OutputValidator::new(serde_json::json!({
            "type": "object", "required": ["answer"], "properties": { "answer": { "type": "integer" } }
        }))
        .unwrap();
        assert_eq!(
            v.check("```json\n{\"answer\": 4}\n```").unwrap()["answer"],
            4
        );
        assert!(
            v.check("{\"answer\": \"four\"}")
                .unwrap_err()
                .0
                .contains("/answer")
        );
        assert!(v.check("four").unwrap_err().0.contains("not JSON"));
        assert!(OutputValidator::new(serde_json::json!({"type": 12})).is_err());
    }
}
