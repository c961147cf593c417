//! JSON as Python's `json` module sees it, for config-update: objects keep
//! their key order (a duplicate key keeps its first place and its last
//! value), values print as Python's `repr` in messages, and files are
//! written as `json.dump(indent=2)` writes them (ASCII only, no trailing
//! newline).

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    List(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub fn parse(text: &str) -> Result<J, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python's type name, for the errors Barman's code raises on it.
    pub fn type_name(&self) -> &'static str {
        match self {
            J::Null => "NoneType",
            J::Bool(_) => "bool",
            J::Num(n) if n.is_f64() => "float",
            J::Num(_) => "int",
            J::Str(_) => "str",
            J::List(_) => "list",
            J::Obj(_) => "dict",
        }
    }

    /// Python's `repr()`.
    pub fn repr(&self) -> String {
        match self {
            J::Null => "None".into(),
            J::Bool(true) => "True".into(),
            J::Bool(false) => "False".into(),
            J::Num(n) => n.to_string(),
            J::Str(s) => py_str_repr(s),
            J::List(v) => format!("[{}]", v.iter().map(J::repr).collect::<Vec<_>>().join(", ")),
            J::Obj(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{}: {}", py_str_repr(k), v.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Python's `%s`: strings bare, everything else as repr.
    pub fn display(&self) -> String {
        match self {
            J::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    /// `json.dumps(self, indent=2)`.
    pub fn dump_indent2(&self) -> String {
        let mut out = String::new();
        self.dump(&mut out, 0);
        out
    }

    fn dump(&self, out: &mut String, level: usize) {
        let pad = |out: &mut String, l: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(l));
        };
        match self {
            J::List(v) if v.is_empty() => out.push_str("[]"),
            J::Obj(m) if m.is_empty() => out.push_str("{}"),
            J::List(v) => {
                out.push('[');
                for (i, item) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    item.dump(out, level + 1);
                }
                pad(out, level);
                out.push(']');
            }
            J::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    json_str(out, k);
                    out.push_str(": ");
                    v.dump(out, level + 1);
                }
                pad(out, level);
                out.push('}');
            }
            J::Str(s) => json_str(out, s),
            other => out.push_str(&other.scalar_json()),
        }
    }

    fn scalar_json(&self) -> String {
        match self {
            J::Null => "null".into(),
            J::Bool(b) => b.to_string(),
            J::Num(n) => n.to_string(),
            _ => unreachable!("scalars only"),
        }
    }
}

/// A JSON string with `ensure_ascii`.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(str)`: single quotes unless the text has one and no
/// double quote.
fn py_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<J, E> {
                serde_json::Number::from_f64(n)
                    .map(J::Num)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::List(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut m: Vec<(String, J)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, J>()? {
                    match m.iter_mut().find(|(old, _)| *old == k) {
                        Some(slot) => slot.1 = v,
                        None => m.push((k, v)),
                    }
                }
                Ok(J::Obj(m))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_duplicates_and_repr_are_pythons() {
        let j = J::parse(r#"{"k": "v", "n": true, "x": null, "k": "w", "l": ["a", 1.5]}"#).unwrap();
        assert_eq!(
            j.repr(),
            "{'k': 'w', 'n': True, 'x': None, 'l': ['a', 1.5]}"
        );
        assert_eq!(J::Str("it's".into()).repr(), "\"it's\"");
    }

    #[test]
    fn dump_is_json_dump_indent_2() {
        let j = J::parse(r#"[{"section": "pg", "changes_set": [{"key": "a", "value": "é"}]}]"#)
            .unwrap();
        assert_eq!(
            j.dump_indent2(),
            "[\n  {\n    \"section\": \"pg\",\n    \"changes_set\": [\n      {\n        \"key\": \"a\",\n        \"value\": \"\\u00e9\"\n      }\n    ]\n  }\n]"
        );
        assert_eq!(J::List(vec![]).dump_indent2(), "[]");
    }
}
