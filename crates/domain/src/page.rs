//! Cursor pagination: `{"items": [...], "next_cursor": "..." | null}`.

use serde::Serialize;
use utoipa::openapi::schema::{Array, ArrayBuilder};
use utoipa::openapi::Ref;
use utoipa::ToSchema;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// A validated page request: at most `limit` items past the row whose id is `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<i64>,
}

impl PageRequest {
    /// Stores fetch one row more than asked to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    #[schema(schema_with = items::<T>)]
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The items refer to their own schema: utoipa would inline it into every page otherwise, and
/// clients generated from the document would get a copy of the item type per page.
fn items<T: ToSchema>() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(T::name()))
        .build()
}

impl<T> Page<T> {
    /// Builds a page from up to `fetch_limit()` rows; `id` gives the cursor position of a row.
    pub fn from_rows(mut rows: Vec<T>, request: PageRequest, id: impl Fn(&T) -> i64) -> Self {
        let more = rows.len() as i64 > request.limit;
        rows.truncate(request.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(id(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// A cursor is the position of the last row of a page: its id in decimal. Every string of this
/// pattern is accepted (the OpenAPI document states it), the empty one meaning the first page.
pub const CURSOR_PATTERN: &str = "^[0-9]{0,19}$";

pub fn encode_cursor(id: i64) -> String {
    id.to_string()
}

/// 1 to 19 ASCII digits; positions past the largest id read as the largest id.
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    if cursor.is_empty() || cursor.len() > 19 || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let position: u64 = cursor.parse().ok()?;
    Some(i64::try_from(position).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor("-3"), None);
        assert_eq!(decode_cursor("+3"), None);
        assert_eq!(decode_cursor("bm9wZQ"), None);
        assert_eq!(decode_cursor("12345678901234567890"), None);
        assert_eq!(decode_cursor("9999999999999999999"), Some(i64::MAX));
        assert_eq!(decode_cursor("0"), Some(0));
    }

    #[test]
    fn a_full_page_has_a_cursor_and_the_last_page_has_none() {
        let request = PageRequest {
            limit: 2,
            after: None,
        };
        let page = Page::from_rows(vec![1, 2, 3], request, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref().and_then(decode_cursor), Some(2));
        let last = Page::from_rows(vec![3], request, |n| *n);
        assert_eq!(last.next_cursor, None);
    }
}
