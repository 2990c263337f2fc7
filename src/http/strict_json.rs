//! Request bodies read strictly, before they are typed: a key repeated in an object (at any
//! depth) is refused, and a number counts as an integer only when its text denotes one exactly.
//!
//! serde_json checks the syntax and hands each value over as its raw text (`RawValue`), so
//! numbers are judged as written: `15.0` and `1e3` are integers, `100.0000000000000001` is not
//! (as an `f64` it would be 100). serde_json's `arbitrary_precision` would keep the text too, but
//! it switches every crate in the build to it, and breaks floats inside untagged enums and
//! flattened structs (serde-rs/json#721, #1108), which async-nats' JetStream replies use.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Request bodies nest a few levels; a container is re-read once per level that encloses it,
/// so the depth is bounded to keep that cheap (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 32;

/// The body as a `Value`, with every number that is exactly an integer (within 64 bits) an
/// integer. The error names where the body is refused (`items[0].quantity`).
pub fn read(raw: &RawValue) -> Result<Value, String> {
    value(raw, &mut String::new(), 0)
}

fn value(raw: &RawValue, path: &mut String, depth: usize) -> Result<Value, String> {
    let text = raw.get();
    let at = |message: &str, path: &str| {
        if path.is_empty() {
            message.to_owned()
        } else {
            format!("{path}: {message}")
        }
    };
    match text.as_bytes().first() {
        Some(b'{' | b'[') if depth >= MAX_DEPTH => {
            Err(at(&format!("nested deeper than {MAX_DEPTH} levels"), path))
        }
        Some(b'{') => {
            let Entries(entries) = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let mut object = Map::new();
            for (key, raw) in entries {
                if object.contains_key(&key) {
                    return Err(at(&format!("duplicate key `{key}`"), path));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                let item = value(raw, path, depth + 1)?;
                path.truncate(len);
                object.insert(key, item);
            }
            Ok(Value::Object(object))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let mut array = Vec::with_capacity(items.len());
            for (index, raw) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                array.push(value(raw, path, depth + 1)?);
                path.truncate(len);
            }
            Ok(Value::Array(array))
        }
        _ => match exact_integer(text) {
            Some(integer) => Ok(Value::from(integer)),
            // Strings, literals, and numbers that are not integers (typed as such, they are
            // refused where an integer is expected).
            None => serde_json::from_str(text).map_err(|e| at(&e.to_string(), path)),
        },
    }
}

/// An object's members in the order written, duplicates kept (a map would keep only the last).
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> Visitor<'de> for Members {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(Members)
    }
}

/// The integer a JSON number's text denotes exactly, if it is one within 64 bits: `15.0`,
/// `1e3` and `1500e-2` are, `15.5` and `100.0000000000000001` are not. Anything else (a string,
/// a literal) is `None`.
fn exact_integer(text: &str) -> Option<i64> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent),
        None => (text, "0"),
    };
    let (negative, unsigned) = match mantissa.strip_prefix('-') {
        Some(unsigned) => (true, unsigned),
        None => (false, mantissa),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The value is `kept` × 10^scale, `kept` without the zeros at either end.
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let kept = significant.trim_end_matches('0');
    if kept.is_empty() {
        return Some(0);
    }
    // An exponent beyond i64 is a fraction or far past 64 bits: `None` either way.
    let scale = exponent.parse::<i64>().ok()? - fraction.len() as i64
        + (significant.len() - kept.len()) as i64;
    // 19 digits: past them no value fits in 64 bits, and below them no i128 overflows.
    if scale < 0 || kept.len() as i64 + scale > 19 {
        return None;
    }
    let magnitude = kept.parse::<i128>().ok()? * 10_i128.pow(scale as u32);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> Result<Value, String> {
        read(&serde_json::from_str::<Box<RawValue>>(text).expect("valid JSON"))
    }

    #[test]
    fn integers_as_written_are_integers() {
        for (text, integer) in [
            ("15", 15),
            ("15.0", 15),
            ("1e3", 1000),
            ("1E+3", 1000),
            ("1500e-2", 15),
            ("-2.50e1", -25),
            ("0.0", 0),
            ("-0", 0),
            ("0e99999999999999999999", 0),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
            ("9.223372036854775807e18", i64::MAX),
            // A fast float parser once read this one 0.5 too low.
            ("4087302775057682.0", 4_087_302_775_057_682),
            // Past 2^53, where an f64 cannot tell it from its neighbours.
            ("9007199254740993.0", 9_007_199_254_740_993),
        ] {
            assert_eq!(exact_integer(text), Some(integer), "{text}");
        }
    }

    #[test]
    fn other_numbers_are_not_integers() {
        for text in [
            "15.5",
            "100.0000000000000001",
            "1e-1",
            "1e19",
            "9223372036854775808",
            "-9223372036854775809",
            "1e99999999999999999999",
            "1e-99999999999999999999",
            "\"15\"",
            "true",
        ] {
            assert_eq!(exact_integer(text), None, "{text}");
        }
    }

    #[test]
    fn a_body_is_read_with_exact_integers() {
        let value = read_str(r#"{"a": 15.0, "b": [1.5, -2.0, 1e3], "c": 1e19, "d": "2.0"}"#);
        assert_eq!(
            value,
            Ok(serde_json::json!({"a": 15, "b": [1.5, -2, 1000], "c": 1e19, "d": "2.0"}))
        );
        let inexact = read_str(r#"{"amount": 100.0000000000000001}"#).unwrap();
        assert!(inexact["amount"].is_f64());
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert_eq!(
            read_str(r#"{"amount": 1, "amount": 2}"#),
            Err("duplicate key `amount`".into())
        );
        assert_eq!(
            read_str(r#"{"items": [{"product_id": 1}, {"quantity": 1, "quantity": 2}]}"#),
            Err("items[1]: duplicate key `quantity`".into())
        );
        // The same key in two objects is no repetition; escapes are compared decoded.
        assert!(read_str(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
        assert!(read_str(r#"{"a": 1, "\u0061": 2}"#).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(read_str(&nested(MAX_DEPTH)).is_ok());
        assert!(read_str(&nested(MAX_DEPTH + 1))
            .unwrap_err()
            .contains("nested deeper"));
    }
}
