//! Python literals as Barman writes them into backup.info with `repr()` and
//! reads them back with `ast.literal_eval`: strings (both quote styles and
//! Python's escapes), ints, floats, None, booleans, lists, tuples, dicts.
//! Pure over `&str`; rendering follows `repr()` so values round-trip.

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Python literal at character {at}: {what}")]
pub struct PyLitError {
    pub at: usize,
    pub what: &'static str,
}

/// Parses one literal (surrounding blanks allowed).
pub fn parse(text: &str) -> Result<PyValue, PyLitError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let v = p.value()?;
    p.blanks();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> PyLitError {
        PyLitError { at: self.i, what }
    }

    fn blanks(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<PyValue, PyLitError> {
        self.blanks();
        match self.peek().ok_or_else(|| self.err("end of text"))? {
            b'\'' | b'"' => self.string().map(PyValue::Str),
            b'[' => self.seq(b']').map(PyValue::List),
            b'(' => {
                let start = self.i;
                let items = self.seq(b')')?;
                // `(x)` is x, `(x,)` a one-item tuple.
                let one_without_comma = items.len() == 1
                    && !self.text[start..self.i]
                        .trim_end_matches(')')
                        .trim_end()
                        .ends_with(',');
                Ok(if one_without_comma {
                    items.into_iter().next().expect("one item")
                } else {
                    PyValue::Tuple(items)
                })
            }
            b'{' => self.dict(),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<PyValue>, PyLitError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.blanks();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            self.blanks();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err("expected ',' or a closing bracket")),
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, PyLitError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.blanks();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(PyValue::Dict(items));
            }
            let k = self.value()?;
            self.blanks();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            let v = self.value()?;
            items.push((k, v));
            self.blanks();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn atom(&mut self) -> Result<PyValue, PyLitError> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"+-._".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let word = &self.text[start..self.i];
        match word {
            "None" => Ok(PyValue::None),
            "True" => Ok(PyValue::Bool(true)),
            "False" => Ok(PyValue::Bool(false)),
            "" => Err(self.err("expected a value")),
            _ => {
                let digits = word.replace('_', "");
                if let Ok(n) = digits.parse::<i64>() {
                    Ok(PyValue::Int(n))
                } else if let Ok(f) = digits.parse::<f64>() {
                    Ok(PyValue::Float(f))
                } else {
                    self.i = start;
                    Err(self.err("not a literal"))
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, PyLitError> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.text[self.i..]
                .chars()
                .next()
                .ok_or_else(|| self.err("unterminated string"))?;
            self.i += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Ok(out),
                '\\' => {
                    let e = self.text[self.i..]
                        .chars()
                        .next()
                        .ok_or_else(|| self.err("unterminated escape"))?;
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, PyLitError> {
        let digits = self
            .text
            .get(self.i..self.i + n)
            .ok_or_else(|| self.err("short escape"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.err("bad escape"))?;
        self.i += n;
        char::from_u32(v).ok_or_else(|| self.err("bad code point"))
    }
}

/// Python's `repr()` of a string (shared with `show-servers`).
pub use crate::config::types::python_repr_str as repr_str;

impl PyValue {
    /// `repr()` of the value.
    pub fn repr(&self) -> String {
        match self {
            PyValue::None => "None".into(),
            PyValue::Bool(true) => "True".into(),
            PyValue::Bool(false) => "False".into(),
            PyValue::Int(n) => n.to_string(),
            PyValue::Float(f) => crate::output::python_float_repr(*f),
            PyValue::Str(s) => repr_str(s),
            PyValue::List(v) => format!("[{}]", join(v)),
            PyValue::Tuple(v) if v.len() == 1 => format!("({},)", v[0].repr()),
            PyValue::Tuple(v) => format!("({})", join(v)),
            PyValue::Dict(items) => format!(
                "{{{}}}",
                items
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.repr(), v.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn join(v: &[PyValue]) -> String {
    v.iter().map(PyValue::repr).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barmans_backup_info_values_round_trip() {
        for text in [
            "'START WAL LOCATION: 0/18000028 (file 000000010000000000000018)\\nCHECKPOINT LOCATION: 0/18000060\\nBACKUP METHOD: streamed\\n'",
            "[('tbs1', 16394, '/srv/tbs1')]",
            "{'copy_time': 2.149341, 'total_time': 2.149341}",
            "None",
            "['/etc/postgresql/15/main/conf.d/a.conf']",
            "\"it's\"",
            "{'number_of_workers': 2, 'analysis_time_per_item': {'data': 0.5}, 'ok': True}",
            "(1,)",
            "()",
        ] {
            let v = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(v.repr(), text);
        }
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(
            parse(r"'a\tb\x41\u00e9\\'").unwrap(),
            PyValue::Str("a\tbAé\\".into())
        );
        assert_eq!(parse("(5)").unwrap(), PyValue::Int(5));
        assert_eq!(parse("-1.5").unwrap(), PyValue::Float(-1.5));
        assert!(parse("'open").is_err());
        assert!(parse("[1, 2").is_err());
        assert!(parse("os.system('x')").is_err());
        assert!(parse("1 2").is_err());
        assert_eq!(repr_str("both ' and \""), "'both \\' and \"'");
    }
}
