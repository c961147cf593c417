//! The INI dialect of Python's `configparser` as Barman configures it
//! (`ConfigParser(strict=False)`, basic interpolation), pure over `&str`.
//!
//! Why not rust-ini: its parser diverges from configparser exactly where a
//! drop-in cannot: a line without `=`/`:` silently swallows the next line into
//! a key name (configparser rejects the line), an indented `#` comment inside a
//! continued value becomes part of the value (configparser skips it), and it
//! records no line numbers, which our one-line errors need. This module is a
//! line-for-line reading of configparser's `_read` instead, and is fuzzed.
//!
//! What it keeps: sections in file order (a repeated header appends a second
//! [`Section`] with the same name; merging is the caller's business), option
//! names lower-cased (configparser's `optionxform`), values stripped, indented
//! continuation lines joined with `\n`, full-line `#`/`;` comments only.

use std::fmt;

/// One `[section]` occurrence in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// One `key = value` (or `key: value`) option, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-cased, as configparser's `optionxform` does.
    pub key: String,
    pub value: String,
    /// 1-based line where the option starts.
    pub line: usize,
}

/// Why a file is not valid INI. Carries the line; the caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    /// The section the bad line is in, if any.
    pub section: Option<String>,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// An option before any `[section]` header.
    NoSectionHeader(String),
    /// A line that is neither a header, an option, a comment nor a
    /// continuation.
    Garbage(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::NoSectionHeader(l) => write!(
                f,
                "line {}: option outside any [section]: '{}'",
                self.line, l
            ),
            ParseErrorKind::Garbage(l) => write!(
                f,
                "line {}{}: expected 'key = value', '[section]' or a comment, found '{}'",
                self.line,
                self.section
                    .as_ref()
                    .map(|s| format!(" in [{s}]"))
                    .unwrap_or_default(),
                l
            ),
        }
    }
}

/// Parses a whole file's text. Like configparser, it stops at the first
/// structural error (configparser collects them and raises at the end; the
/// first is what a user needs to see).
pub fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections: Vec<Section> = Vec::new();
    // The option currently open for continuation lines, and its indent.
    let mut open: Option<(usize, usize)> = None; // (entry index, indent)
                                                 // Continuation values are collected as lines and joined at the end, so
                                                 // that trailing blank lines can be dropped as configparser's rstrip does.
    let mut pieces: Vec<Vec<Vec<String>>> = Vec::new();

    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let stripped = line.trim();
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        if is_comment {
            continue;
        }
        if stripped.is_empty() {
            // Blank lines may belong to a continued value (configparser's
            // empty_lines_in_values); trailing ones are trimmed on join.
            if let (Some((e, _)), Some(sec)) = (open, pieces.last_mut()) {
                sec[e].push(String::new());
            }
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if let Some((e, open_indent)) = open {
            if indent > open_indent {
                if let Some(sec) = pieces.last_mut() {
                    sec[e].push(stripped.to_string());
                }
                continue;
            }
        }
        if let Some(name) = section_header(stripped) {
            sections.push(Section {
                name: name.to_string(),
                line: lineno,
                entries: Vec::new(),
            });
            pieces.push(Vec::new());
            open = None;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(ParseError {
                line: lineno,
                section: None,
                kind: ParseErrorKind::NoSectionHeader(stripped.to_string()),
            });
        };
        match split_option(stripped) {
            Some((key, value)) => {
                section.entries.push(Entry {
                    key: key.to_lowercase(),
                    value: String::new(),
                    line: lineno,
                });
                let sec_pieces = pieces.last_mut().expect("pieces follow sections");
                sec_pieces.push(vec![value.to_string()]);
                open = Some((section.entries.len() - 1, indent));
            }
            None => {
                return Err(ParseError {
                    line: lineno,
                    section: Some(section.name.clone()),
                    kind: ParseErrorKind::Garbage(stripped.to_string()),
                })
            }
        }
    }

    for (section, sec_pieces) in sections.iter_mut().zip(pieces) {
        for (entry, lines) in section.entries.iter_mut().zip(sec_pieces) {
            entry.value = lines.join("\n").trim_end().to_string();
        }
    }
    Ok(sections)
}

/// configparser's `SECTCRE` is `\[(?P<header>.+)\]` applied with `match`:
/// anchored at the start only, greedy, so `[a] x` is section `a` and
/// `[a]b]` is section `a]b`.
fn section_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

/// configparser's `OPTCRE`: `(?P<option>.*?)\s*(?P<vi>[=:])\s*(?P<value>.*)$`
/// — the first `=` or `:` splits; an empty option name is an error.
fn split_option(line: &str) -> Option<(&str, &str)> {
    let pos = line.find(['=', ':'])?;
    let key = line[..pos].trim_end();
    if key.is_empty() {
        return None;
    }
    Some((key, line[pos + 1..].trim()))
}

/// Why `%`-interpolation failed; the caller adds file, section and option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `%(key)s` names a key found neither in the section nor in `[DEFAULT]`.
    MissingKey(String),
    /// A `%` not followed by `%` or `(name)s`.
    Syntax(String),
    /// More than configparser's 10 levels of nesting (a reference loop).
    TooDeep,
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolationError::MissingKey(k) => {
                write!(f, "the interpolation key '{k}' is not a valid option name")
            }
            InterpolationError::Syntax(rest) => {
                write!(f, "'%' must be followed by '%' or '(', found: '{rest}'")
            }
            InterpolationError::TooDeep => {
                write!(f, "interpolation nested too deeply (recursive reference?)")
            }
        }
    }
}

/// configparser's `BasicInterpolation`: `%%` is `%`, `%(name)s` is the raw
/// value of `name` looked up by `lookup` (interpolated in turn).
pub fn interpolate(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(raw.len());
    interpolate_into(raw, lookup, &mut out, 1)?;
    Ok(out)
}

fn interpolate_into(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    depth: usize,
) -> Result<(), InterpolationError> {
    if depth > 10 {
        return Err(InterpolationError::TooDeep);
    }
    let mut rest = raw;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(r) = rest.strip_prefix("%%") {
            out.push('%');
            rest = r;
        } else if rest.starts_with("%(") {
            let close = rest
                .find(")s")
                .filter(|&c| c > 2 && !rest[2..c].contains(')'))
                .ok_or_else(|| {
                    InterpolationError::Syntax(format!(
                        "bad interpolation variable reference '{rest}'"
                    ))
                })?;
            let name = rest[2..close].to_lowercase();
            let value =
                lookup(&name).ok_or_else(|| InterpolationError::MissingKey(name.clone()))?;
            if value.contains('%') {
                interpolate_into(&value, lookup, out, depth + 1)?;
            } else {
                out.push_str(&value);
            }
            rest = &rest[close + 2..];
        } else {
            return Err(InterpolationError::Syntax(rest.to_string()));
        }
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()[0]
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    #[test]
    fn options_comments_and_case() {
        let got = one("[pg]\n# c\n  ; c2\nCompression = gzip ; not a comment\nkey: v\n");
        assert_eq!(
            got,
            vec![
                ("compression".into(), "gzip ; not a comment".into()),
                ("key".into(), "v".into())
            ]
        );
    }

    #[test]
    fn continuation_lines_join_and_skip_comments() {
        let got = one("[pg]\na = one\n  two\n  # skipped\n\n  three\n\nb = x\n");
        assert_eq!(got[0].1, "one\ntwo\n\nthree");
        assert_eq!(got[1].1, "x");
    }

    #[test]
    fn header_quirks() {
        let s = parse("[a] trailing\nk=v\n[b]c]\n").unwrap();
        assert_eq!(s[0].name, "a");
        assert_eq!(s[1].name, "b]c");
    }

    #[test]
    fn garbage_and_missing_header() {
        let e = parse("[pg]\ngarbage\nk = v\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(matches!(e.kind, ParseErrorKind::Garbage(ref l) if l == "garbage"));
        let e = parse("k = v\n").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::NoSectionHeader(_)));
        assert!(parse("[pg]\n= v\n").is_err());
    }

    #[test]
    fn first_delimiter_splits() {
        assert_eq!(one("[s]\nk = a=b:c\n")[0].1, "a=b:c");
        assert_eq!(one("[s]\nk: a=b\n")[0].1, "a=b");
    }

    #[test]
    fn interpolation() {
        let look = |k: &str| match k {
            "home" => Some("/var/lib/barman".to_string()),
            "nested" => Some("%(home)s/x".to_string()),
            "loop" => Some("%(loop)s".to_string()),
            _ => None,
        };
        assert_eq!(
            interpolate("%(HOME)s/pg 100%%", &look).unwrap(),
            "/var/lib/barman/pg 100%"
        );
        assert_eq!(
            interpolate("%(nested)s", &look).unwrap(),
            "/var/lib/barman/x"
        );
        assert_eq!(
            interpolate("%(name)s", &look),
            Err(InterpolationError::MissingKey("name".into()))
        );
        assert!(matches!(
            interpolate("50%", &look),
            Err(InterpolationError::Syntax(_))
        ));
        assert_eq!(
            interpolate("%(loop)s", &look),
            Err(InterpolationError::TooDeep)
        );
    }
}
