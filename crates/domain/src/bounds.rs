//! Bounds on request fields, each stated once: the validators check them and the OpenAPI
//! document is built from them (`#[schema(schema_with = ...)]`), so the two cannot disagree.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::Object;

/// Names (of products and coupons) are at most this many characters (Unicode scalar values,
/// which is also how JSON Schema's `maxLength` counts).
pub const MAX_NAME_CHARS: usize = 200;

/// The blank characters a name may not consist of only: Rust's `char::is_whitespace` less the
/// control characters, which a name may not contain at all. Listed as ranges so that the
/// OpenAPI pattern is built from the same list (a unit test checks it matches the standard).
const BLANKS: &[(char, char)] = &[
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// U+0000 to U+001F and U+007F.
fn is_forbidden_control(c: char) -> bool {
    c <= '\u{1f}' || c == '\u{7f}'
}

/// A product or coupon name: 1..=200 characters, not blank, no control characters. Checked
/// before any database call, so both backends give the same answer.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.chars().any(is_forbidden_control) {
        return Err("name must not contain control characters (U+0000 to U+001F, U+007F)".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().all(char::is_whitespace) {
        return Err("name must not be blank".into());
    }
    Ok(())
}

/// The pattern `check_name` enforces besides the length, in ECMA-262 syntax: no control
/// character anywhere and at least one character that is neither control nor blank.
pub fn name_pattern() -> String {
    let blanks: String = BLANKS
        .iter()
        .map(|&(from, to)| {
            if from == to {
                escape(from)
            } else {
                format!("{}-{}", escape(from), escape(to))
            }
        })
        .collect();
    format!(r"^[^\x00-\x1F\x7F]*[^\x00-\x1F\x7F{blanks}][^\x00-\x1F\x7F]*$")
}

fn escape(c: char) -> String {
    if c == ' ' {
        " ".into()
    } else {
        format!(r"\u{:04X}", c as u32)
    }
}

/// A name's schema.
pub fn name() -> Object {
    name_builder().build()
}

fn name_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(name_pattern()))
}

/// An integer in `MIN..=MAX`.
pub fn int<const MIN: i64, const MAX: i64>() -> Object {
    int_builder(MIN, MAX).build()
}

/// An integer in `MIN..=MAX`, or `null`.
pub fn int_or_null<const MIN: i64, const MAX: i64>() -> Object {
    int_builder(MIN, MAX)
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .build()
}

fn int_builder(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
}

/// `schema` with a description (a field given by `schema_with` loses its doc comment).
pub fn described(mut schema: Object, description: &str) -> Object {
    schema.description = Some(description.to_owned());
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blank_list_is_rusts_whitespace_less_controls() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let listed = BLANKS.iter().any(|&(from, to)| (from..=to).contains(&c));
            let expected = c.is_whitespace() && !is_forbidden_control(c);
            assert_eq!(listed, expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("Wireless earbuds").is_ok());
        assert!(check_name(" 무선 이어폰 ").is_ok());
        assert!(check_name(&"가".repeat(MAX_NAME_CHARS)).is_ok());
        for bad in [
            String::new(),
            " ".into(),
            "\u{3000}\u{a0}".into(),
            "a\u{0}b".into(),
            "tab\there".into(),
            "del\u{7f}".into(),
            "line\nbreak".into(),
            "가".repeat(MAX_NAME_CHARS + 1),
        ] {
            assert!(check_name(&bad).is_err(), "{bad:?} accepted");
        }
    }
}
