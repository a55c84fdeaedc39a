//! Canonical JSON, as the run log hashes and signs it: RFC 8785 (the JSON Canonicalization
//! Scheme), so anyone can recompute an event's hash or check a signed head with a standard
//! JCS library and SHA-256.
//!
//! RFC 8785 in short: no white space; object members sorted by their names' UTF-16 code
//! units; strings with the minimal escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
//! control characters as lowercase `\u00xx`, everything else as itself in UTF-8); numbers as
//! ECMAScript writes them (`1.0` is `1`, `1e21` is `1e+21`). cordon's integers are written as
//! they are; every one it records is below 2^53, where that is the same text.
//!
//! Logs written before cordon followed RFC 8785 sorted names by their UTF-8 bytes and wrote
//! fractional numbers as Rust does (`1.0`, `1e21`); [`legacy_json`] writes that form so
//! such logs still verify. The two differ only for numbers that are not integers and for
//! names with characters beyond U+FFFF.

use serde_json::Value;

/// `v` as RFC 8785 canonical JSON.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, Form::Jcs);
    out
}

/// `v` in the canonical form cordon wrote before it followed RFC 8785 (names sorted by
/// their UTF-8 bytes, fractional numbers as Rust writes them).
pub fn legacy_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, Form::Legacy);
    out
}

/// Whether `v` holds anything the two forms write differently.
pub fn forms_differ(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(forms_differ),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.chars().any(|c| c > '\u{ffff}') || forms_differ(v)),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Form {
    Jcs,
    Legacy,
}

pub(crate) fn write(v: &Value, out: &mut String, form: Form) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            match form {
                Form::Jcs => keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16())),
                Form::Legacy => keys.sort(),
            }
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write(&map[k], out, form);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out, form);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        Value::Number(n) => match (form, n.as_f64()) {
            (Form::Jcs, Some(f)) if n.is_f64() => out.push_str(&es_number(f)),
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// A string with RFC 8785's escapes (serde_json writes exactly those).
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push_str(&Value::String(s.to_string()).to_string());
}

/// A finite number as ECMAScript's `Number.prototype.toString` writes it (RFC 8785 §3.2.2.3).
fn es_number(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return "0".into();
    }
    // Rust's `{:e}` gives the shortest digits that read back as the same number.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let lead = if k == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!("{lead}e{sign}{}", e.abs())
    };
    if f < 0.0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_as_ecmascript_writes_them() {
        // The examples of RFC 8785 appendix B, and a few of our own.
        for (f, want) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (123456789012345680000.0, "123456789012345680000"),
            (9.007199254740994e15, "9007199254740994"),
            (333333333.3333333, "333333333.3333333"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.0, "0"),
            (2.5e-5, "0.000025"),
            (1.25e22, "1.25e+22"),
        ] {
            assert_eq!(es_number(f), want, "{f}");
        }
    }

    #[test]
    fn names_sort_by_utf16_units_and_strings_keep_their_characters() {
        // U+1F600 is D83D DE00 in UTF-16, which sorts before U+FB33; in UTF-8 it is after.
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2, "a": "é\n\u{1}", "b": [1.0, 2]});
        assert_eq!(
            canonical_json(&v),
            "{\"a\":\"é\\n\\u0001\",\"b\":[1,2],\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
        assert_eq!(
            legacy_json(&v),
            "{\"a\":\"é\\n\\u0001\",\"b\":[1.0,2],\"\u{fb33}\":1,\"\u{1f600}\":2}"
        );
        assert!(forms_differ(&v));
        assert!(!forms_differ(&json!({"a": [1, "x", null, {"b": true}]})));
    }
}
