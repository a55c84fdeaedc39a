//! Request bodies that do not re-encode the whole conversation on every call: a long run
//! sends the same items turn after turn, so each item's JSON text is kept beside a copy of
//! the item, and a request whose items start with the same ones reuses their text. Only the
//! new items are encoded; the body is the rest of the request with the conversation spliced
//! in.

use cordon_core::Item;
use serde_json::{Map, Value};

/// Encoded conversation items, in order, with the items they came from.
#[derive(Default)]
pub(crate) struct InputCache {
    /// What the encoding depended on besides the item (the Responses `store` setting).
    variant: Option<bool>,
    items: Vec<(Item, Option<String>)>,
}

impl InputCache {
    /// The JSON text of each item (`None`: the item is not sent), from the cache where the
    /// item is the one encoded before, else from `encode`.
    fn texts(
        &mut self,
        items: &[Item],
        variant: bool,
        encode: impl Fn(&Item) -> Option<Value>,
    ) -> Vec<Option<String>> {
        if self.variant != Some(variant) {
            self.items.clear();
            self.variant = Some(variant);
        }
        let same = self
            .items
            .iter()
            .zip(items)
            .take_while(|((cached, _), item)| cached == *item)
            .count();
        self.items.truncate(same);
        for item in &items[same..] {
            let text = encode(item).map(|v| v.to_string());
            self.items.push((item.clone(), text));
        }
        self.items.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The request body: `rest` with `key` holding the encoded `items`.
    pub(crate) fn body(
        &mut self,
        rest: Map<String, Value>,
        key: &str,
        items: &[Item],
        variant: bool,
        encode: impl Fn(&Item) -> Option<Value>,
    ) -> String {
        let texts = self.texts(items, variant, encode);
        splice(key, texts.iter().flatten().map(String::as_str), rest)
    }
}

/// A JSON object's text: `key` holding an array of already-encoded `elements`, then the
/// members of `rest` (whose own `key`, if any, the caller removed).
pub(crate) fn splice<'a>(
    key: &str,
    elements: impl Iterator<Item = &'a str> + Clone,
    rest: Map<String, Value>,
) -> String {
    let rest = Value::Object(rest).to_string();
    let size: usize = elements.clone().map(|t| t.len() + 1).sum();
    let mut out = String::with_capacity(size + rest.len() + key.len() + 8);
    out.push('{');
    out.push_str(&Value::String(key.to_string()).to_string());
    out.push_str(":[");
    for (i, t) in elements.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(t);
    }
    out.push(']');
    // `rest` is an object's text: `{}` or `{"k":...}`; its members follow ours.
    if rest.len() > 2 {
        out.push(',');
        out.push_str(&rest[1..]);
    } else {
        out.push('}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::{Content, Role};
    use serde_json::json;

    fn msg(text: &str) -> Item {
        Item::Message {
            role: Role::User,
            content: vec![Content::Text { text: text.into() }],
            id: None,
        }
    }

    #[test]
    fn bodies_equal_the_whole_encoding_and_reuse_what_they_can() {
        let encode = |i: &Item| match i {
            Item::Message { .. } => Some(json!({ "m": i.message_text() })),
            _ => None,
        };
        let mut cache = InputCache::default();
        let mut rest = Map::new();
        rest.insert("model".into(), json!("m1"));
        let items = vec![msg("a"), msg("b\"quoted\"")];
        let body: Value =
            serde_json::from_str(&cache.body(rest.clone(), "input", &items, false, encode))
                .unwrap();
        assert_eq!(
            body,
            json!({ "model": "m1", "input": [{ "m": "a" }, { "m": "b\"quoted\"" }] })
        );
        // A changed item, and everything after it, is encoded again.
        let changed = vec![msg("a"), msg("c"), msg("d")];
        let body: Value =
            serde_json::from_str(&cache.body(Map::new(), "input", &changed, false, encode))
                .unwrap();
        assert_eq!(
            body,
            json!({ "input": [{ "m": "a" }, { "m": "c" }, { "m": "d" }] })
        );
        assert_eq!(cache.items.len(), 3);
        // Another variant starts over.
        cache.body(Map::new(), "input", &changed[..1], true, encode);
        assert_eq!(cache.items.len(), 1);
    }
}
