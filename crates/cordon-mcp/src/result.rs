//! What an MCP tool call's result becomes for the model: text blocks as text, images as
//! images (shown to the model on both wire protocols), embedded resources as their text,
//! structured content as JSON, an error result as a tool error with its text.
//!
//! The result is read as JSON, so a block of a kind this client does not know is described
//! rather than dropped, and nothing a server sends can make it panic.

use cordon_tools::truncate::{DEFAULT_MAX_TOKENS, truncate_middle};
use cordon_tools::{ToolError, ToolOutput};
use serde_json::Value;

/// The most image data one result may carry (base64 characters, all images together).
pub const MAX_IMAGE_BYTES: usize = 16 << 20;

/// The model's view of a `tools/call` result.
pub fn to_output(result: &Value) -> Result<ToolOutput, ToolError> {
    let mut texts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut image_bytes = 0usize;
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for block in blocks {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let str_of = |key: &str| block.get(key).and_then(Value::as_str);
        match kind {
            "text" => texts.push(str_of("text").unwrap_or_default().to_string()),
            "image" => {
                let mime = str_of("mimeType").unwrap_or("image/png");
                let data = str_of("data").unwrap_or_default();
                if mime.starts_with("image/") && image_bytes + data.len() <= MAX_IMAGE_BYTES {
                    image_bytes += data.len();
                    images.push(format!("data:{mime};base64,{data}"));
                } else {
                    texts.push(format!(
                        "[an image ({mime}, {} bytes of base64) was left out: too large or not an image]",
                        data.len()
                    ));
                }
            }
            "audio" => texts.push(format!(
                "[audio ({}, {} bytes of base64) cannot be shown to the model]",
                str_of("mimeType").unwrap_or("?"),
                str_of("data").map_or(0, str::len)
            )),
            "resource" => {
                let r = block.get("resource").cloned().unwrap_or_default();
                let uri = r.get("uri").and_then(Value::as_str).unwrap_or("?");
                match r.get("text").and_then(Value::as_str) {
                    Some(text) => texts.push(format!("[resource {uri}]\n{text}")),
                    None => texts.push(format!(
                        "[resource {uri} ({}): {} bytes of base64, not shown]",
                        r.get("mimeType")
                            .and_then(Value::as_str)
                            .unwrap_or("binary"),
                        r.get("blob").and_then(Value::as_str).map_or(0, str::len)
                    )),
                }
            }
            "resource_link" => texts.push(format!(
                "[resource link: {} {}]",
                str_of("name").unwrap_or_default(),
                str_of("uri").unwrap_or_default()
            )),
            other => texts.push(format!(
                "[a content block of type '{}' this client does not show]",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
    // Structured content is shown as JSON, unless the text blocks already say it: one is
    // its JSON, or every value in it is in them (servers send both, for older clients).
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        let joined = texts.join("\n");
        let said = texts
            .iter()
            .any(|t| serde_json::from_str::<Value>(t).ok().as_ref() == Some(structured))
            || (!joined.is_empty() && leaves_in(structured, &joined));
        if !said {
            texts.push(structured.to_string());
        }
    }
    let text = truncate_middle(&texts.join("\n"), DEFAULT_MAX_TOKENS);
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = if text.is_empty() {
            "the tool reported an error and said nothing more".to_string()
        } else {
            text
        };
        return Err(ToolError::Failed(text));
    }
    Ok(ToolOutput { text, images })
}

/// Whether every string and number in `v` appears in `text`.
fn leaves_in(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => text.contains(s.as_str()),
        Value::Number(n) => text.contains(&n.to_string()),
        Value::Array(a) => a.iter().all(|v| leaves_in(v, text)),
        Value::Object(m) => m.values().all(|v| leaves_in(v, text)),
        Value::Bool(_) | Value::Null => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_of_block_reaches_the_model() {
        let out = to_output(&json!({"content": [
            {"type": "text", "text": "Echo: hi"},
            {"type": "image", "mimeType": "image/png", "data": "iVBORw0KGgo="},
            {"type": "resource", "resource": {"uri": "test://1", "text": "body"}},
            {"type": "resource", "resource": {"uri": "test://2", "blob": "AAAA", "mimeType": "application/pdf"}},
            {"type": "resource_link", "name": "r", "uri": "test://3"},
            {"type": "audio", "mimeType": "audio/wav", "data": "AAAA"},
            {"type": "hologram"}
        ]}))
        .unwrap();
        assert_eq!(out.images, ["data:image/png;base64,iVBORw0KGgo="]);
        for part in [
            "Echo: hi",
            "[resource test://1]\nbody",
            "[resource test://2 (application/pdf): 4 bytes",
            "[resource link: r test://3]",
            "[audio (audio/wav, 4 bytes",
            "type 'hologram'",
        ] {
            assert!(out.text.contains(part), "{part}: {}", out.text);
        }
    }

    #[test]
    fn structured_content_is_shown_once_and_errors_are_errors() {
        let s = json!({"sum": 5});
        let both = to_output(
            &json!({"content": [{"type": "text", "text": "{\"sum\":5}"}], "structuredContent": s}),
        )
        .unwrap();
        assert_eq!(both.text, "{\"sum\":5}");
        let echoed = to_output(&json!({"content": [{"type": "text", "text": "the file's text"}], "structuredContent": {"content": "the file's text"}})).unwrap();
        assert_eq!(echoed.text, "the file's text");
        let more = to_output(&json!({"content": [{"type": "text", "text": "see data"}], "structuredContent": {"rows": 3}})).unwrap();
        assert_eq!(more.text, "see data\n{\"rows\":3}");
        let only = to_output(&json!({"content": [], "structuredContent": s})).unwrap();
        assert_eq!(only.text, "{\"sum\":5}");
        let err = to_output(
            &json!({"content": [{"type": "text", "text": "no such file"}], "isError": true}),
        );
        assert_eq!(err, Err(ToolError::Failed("no such file".into())));
        assert!(to_output(&json!({"isError": true})).is_err());
        assert_eq!(to_output(&json!("nonsense")).unwrap().text, "");
    }
}
