//! A minimal JSON object writer: keys in insertion order, one line, no
//! dependencies. Values are strings (escaped), integers, booleans, fixed
//! decimal numbers, or nested JSON produced by this module.

use std::fmt::Write as _;

/// One JSON object being written.
#[derive(Debug)]
pub struct Obj {
    s: String,
    empty: bool,
}

impl Default for Obj {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `v` as a JSON string literal.
pub fn push_str_lit(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Obj {
            s: String::from("{"),
            empty: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.empty {
            self.s.push(',');
        }
        self.empty = false;
        push_str_lit(&mut self.s, k);
        self.s.push(':');
    }

    /// `"k":"v"`.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str_lit(&mut self.s, v);
        self
    }

    /// `"k":"<Display of v>"`.
    pub fn display(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.str(k, &v.to_string())
    }

    /// `"k":<integer>`.
    pub fn num(&mut self, k: &str, v: impl Into<u64>) -> &mut Self {
        self.key(k);
        let _ = write!(self.s, "{}", v.into());
        self
    }

    /// `"k":<usize>`.
    pub fn len(&mut self, k: &str, v: usize) -> &mut Self {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self
    }

    /// `"k":true|false`.
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.s.push_str(if v { "true" } else { "false" });
        self
    }

    /// `"k":<int>.<frac>` with exactly six decimals (seconds + microseconds).
    pub fn secs_micros(&mut self, k: &str, secs: u64, micros: u32) -> &mut Self {
        self.key(k);
        let _ = write!(self.s, "{secs}.{micros:06}");
        self
    }

    /// `"k":<raw>`: `raw` must be valid JSON (an [`Obj`] or an array of them).
    pub fn raw(&mut self, k: &str, raw: &str) -> &mut Self {
        self.key(k);
        self.s.push_str(raw);
        self
    }

    /// `"k":"<lower-case hex>"`.
    pub fn hex(&mut self, k: &str, bytes: &[u8]) -> &mut Self {
        self.str(k, &hex::encode(bytes))
    }

    /// The finished object text.
    pub fn finish(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

/// A JSON array of already-rendered values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut s = String::from("[");
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&it);
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_order() {
        let mut o = Obj::new();
        o.num("n", 7u32)
            .str("s", "a\"b\\c\n\u{1}")
            .bool("b", false)
            .secs_micros("t", 3, 42)
            .raw("a", &array([String::from("1"), String::from("{}")]));
        let s = o.finish();
        assert_eq!(
            s,
            r#"{"n":7,"s":"a\"b\\c\n\u0001","b":false,"t":3.000042,"a":[1,{}]}"#
        );
    }

    #[test]
    fn empty_object() {
        assert_eq!(Obj::new().finish(), "{}");
        assert_eq!(array(Vec::new()), "[]");
    }
}
