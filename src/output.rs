//! What the user sees: Barman's console, JSON and Nagios writers, and the
//! error bookkeeping that decides the exit status.
//!
//! Console: INFO on stdout (dropped by `-q`), `WARNING: `/`ERROR: `/
//! `EXCEPTION: `/`DEBUG: ` on stderr, passwords redacted. JSON: every message
//! and result collected into one object printed at exit with sorted keys, in
//! Python's `json.dumps` spelling (`", "` and `": "`, ASCII escapes), so
//! scripts parsing Barman's JSON keep working byte for byte. Nagios: only
//! the plugin summary at exit. Every user-visible message is logged too.

use std::io::Write;

use serde_json::{Map, Value as J};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Console,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Console,
    /// Collects check results, prints nothing (Barman's `CheckStrategy`).
    Silent,
    /// Keeps console lines for later (one server of several run at once).
    Buffer,
    Json,
    Nagios,
}

/// One check line, kept for the Nagios summary and the exit status.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub server: String,
    pub check: String,
    pub ok: bool,
    pub hint: Option<String>,
    pub perfdata: Option<u64>,
}

pub struct Output {
    writer: Writer,
    quiet: bool,
    debug: bool,
    color: bool,
    error_occurred: bool,
    exit_code: i32,
    json: Map<String, J>,
    checks: Vec<CheckResult>,
    /// Lines kept by the Buffer writer: (stderr?, text).
    buffer: std::cell::RefCell<Vec<(bool, String)>>,
    /// Whether the server being checked is active (failures of inactive
    /// servers do not fail the command).
    check_active: bool,
}

impl Output {
    pub fn new(format: Format, quiet: bool, debug: bool, color: bool) -> Output {
        Output {
            writer: match format {
                Format::Console => Writer::Console,
                Format::Json => Writer::Json,
            },
            quiet,
            debug,
            color,
            error_occurred: false,
            exit_code: 1,
            json: Map::new(),
            checks: Vec::new(),
            buffer: Default::default(),
            check_active: true,
        }
    }

    /// An output that prints nothing and keeps check results, for the
    /// checks a backup runs first.
    pub fn silent() -> Output {
        let mut o = Output::new(Format::Console, true, false, false);
        o.writer = Writer::Silent;
        o
    }

    /// An output that keeps its console lines, to be replayed in order
    /// into the real one with [`Output::replay_into`].
    pub fn buffered(&self) -> Output {
        let mut o = Output::new(Format::Console, self.quiet, self.debug, self.color);
        o.writer = Writer::Buffer;
        o
    }

    /// Prints what a buffered output kept (not logged again) and carries
    /// its error state over.
    pub fn replay_into(self, main: &mut Output) {
        for (is_err, line) in self.buffer.into_inner() {
            if is_err {
                main.err(&line);
            } else {
                main.out(&line);
            }
        }
        if self.error_occurred {
            main.error_occurred = true;
            if self.exit_code != 1 {
                main.exit_code = self.exit_code;
            }
        }
    }

    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// `check --nagios` replaces whatever writer was chosen.
    pub fn set_nagios(&mut self) {
        self.writer = Writer::Nagios;
    }

    pub fn is_json(&self) -> bool {
        self.writer == Writer::Json
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    pub fn error_occurred(&self) -> bool {
        self.error_occurred
    }

    fn paint(&self, text: String, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    }

    fn out(&self, text: &str) {
        if self.writer == Writer::Buffer {
            self.buffer.borrow_mut().push((false, text.to_string()));
        }
        if self.writer == Writer::Console {
            let mut so = std::io::stdout().lock();
            let _ = writeln!(so, "{}", redact_passwords(text));
            let _ = so.flush();
        }
    }

    fn err(&self, text: &str) {
        if self.writer == Writer::Buffer {
            self.buffer.borrow_mut().push((true, text.to_string()));
        }
        if self.writer == Writer::Console {
            let mut se = std::io::stderr().lock();
            let _ = writeln!(se, "{}", redact_passwords(text));
        }
    }

    fn push_field(&mut self, field: &str, msg: &str) {
        let list = self
            .json
            .entry(field.to_string())
            .or_insert_with(|| J::Array(Vec::new()));
        if let J::Array(a) = list {
            a.push(J::String(msg.to_string()));
        }
    }

    /// An informational line (stdout), unless quiet.
    pub fn info(&mut self, msg: &str) {
        log::info!("{msg}");
        self.info_nolog(msg);
    }

    /// An informational line that is not logged (results, lists).
    pub fn info_nolog(&mut self, msg: &str) {
        if self.quiet {
            return;
        }
        match self.writer {
            Writer::Json => self.push_field("_INFO", msg),
            _ => self.out(msg),
        }
    }

    pub fn warning(&mut self, msg: &str) {
        log::warn!("{msg}");
        match self.writer {
            Writer::Json => self.push_field("_WARNING", msg),
            _ => {
                let line = self.paint(format!("WARNING: {msg}"), "33");
                self.err(&line)
            }
        }
    }

    pub fn error(&mut self, msg: &str) {
        log::error!("{msg}");
        self.error_occurred = true;
        match self.writer {
            Writer::Json => self.push_field("_ERROR", msg),
            _ => {
                let line = self.paint(format!("ERROR: {msg}"), "31");
                self.err(&line)
            }
        }
    }

    /// An error with a specific exit status (get-wal's 3).
    pub fn error_with_code(&mut self, msg: &str, code: i32) {
        self.exit_code = code;
        self.error(msg);
    }

    pub fn exception(&mut self, msg: &str) {
        log::error!("{msg}");
        self.error_occurred = true;
        match self.writer {
            Writer::Json => self.push_field("_EXCEPTION", msg),
            _ => {
                let line = self.paint(format!("EXCEPTION: {msg}"), "31");
                self.err(&line)
            }
        }
    }

    pub fn debug(&mut self, msg: &str) {
        log::debug!("{msg}");
        if !self.debug {
            return;
        }
        match self.writer {
            Writer::Json => self.push_field("_DEBUG", msg),
            _ => self.err(&format!("DEBUG: {msg}")),
        }
    }

    /// Sets a key of the JSON result object (ignored by the console writer).
    pub fn json_set(&mut self, key: &str, value: J) {
        self.json.insert(key.to_string(), value);
    }

    pub fn json_entry(&mut self, key: &str) -> &mut Map<String, J> {
        let v = self
            .json
            .entry(key.to_string())
            .or_insert_with(|| J::Object(Map::new()));
        if !v.is_object() {
            *v = J::Object(Map::new());
        }
        v.as_object_mut().expect("just made an object")
    }

    // ---- check --------------------------------------------------------

    pub fn init_check(&mut self, server: &str, active: bool, disabled: bool) {
        self.check_active = active;
        match self.writer {
            Writer::Json => {
                self.json.insert(server.to_string(), J::Object(Map::new()));
            }
            _ => {
                let mut name = server.to_string();
                if !active {
                    name.push_str(" (inactive)");
                } else if disabled {
                    name.push_str(" (WARNING: disabled)");
                }
                self.info_nolog(&format!("Server {name}:"));
            }
        }
    }

    pub fn result_check(
        &mut self,
        server: &str,
        check: &str,
        ok: bool,
        hint: Option<&str>,
        perfdata: Option<u64>,
    ) {
        self.checks.push(CheckResult {
            server: server.to_string(),
            check: check.to_string(),
            ok,
            hint: hint.map(str::to_string),
            perfdata,
        });
        if !ok && self.check_active {
            self.error_occurred = true;
        }
        match self.writer {
            Writer::Json => {
                let key = check
                    .to_lowercase()
                    .replace([' ', '-'], "_")
                    .replace('.', "");
                let entry = self.json_entry(server);
                let mut m = Map::new();
                m.insert(
                    "hint".into(),
                    hint.map_or(J::String(String::new()), |h| J::String(h.into())),
                );
                m.insert(
                    "status".into(),
                    J::String(if ok { "OK" } else { "FAILED" }.into()),
                );
                entry.insert(key, J::Object(m));
            }
            _ => {
                let verdict = if ok {
                    self.paint("OK".into(), "32")
                } else {
                    self.paint("FAILED".into(), "31")
                };
                let line = match hint {
                    Some(h) if !h.is_empty() => format!("\t{check}: {verdict} ({h})"),
                    _ => format!("\t{check}: {verdict}"),
                };
                self.info_nolog(&line);
            }
        }
    }

    /// Prints what the writer collected and returns the exit status.
    pub fn close(&mut self) -> i32 {
        match self.writer {
            Writer::Json => {
                if !self.quiet {
                    let text = python_json(&J::Object(std::mem::take(&mut self.json)));
                    let mut so = std::io::stdout().lock();
                    let _ = so.write_all(text.as_bytes());
                    let _ = so.flush();
                }
            }
            Writer::Nagios => self.close_nagios(),
            Writer::Console | Writer::Silent | Writer::Buffer => {}
        }
        if self.error_occurred {
            self.exit_code
        } else {
            0
        }
    }

    fn close_nagios(&mut self) {
        let mut servers: Vec<&str> = Vec::new();
        let mut issues: Vec<&str> = Vec::new();
        let mut perf = Vec::new();
        for c in &self.checks {
            if !servers.contains(&c.server.as_str()) {
                servers.push(&c.server);
            }
            if !c.ok && !issues.contains(&c.server.as_str()) {
                issues.push(&c.server);
            }
            match (c.check.as_str(), c.perfdata) {
                ("backup minimum size", Some(p)) => perf.push(format!("{}={}B", c.server, p)),
                ("wal size", Some(p)) => perf.push(format!("{}_wals={}B", c.server, p)),
                _ => {}
            }
        }
        let perf = if perf.is_empty() {
            String::new()
        } else {
            format!("|{}", perf.join(" "))
        };
        let mut lines = Vec::new();
        if issues.is_empty() && self.error_occurred {
            lines.push("BARMAN CRITICAL - Global configuration errors".to_string());
            self.exit_code = 2;
        } else if !issues.is_empty() && self.error_occurred {
            let mut summary = Vec::new();
            let mut details = Vec::new();
            for s in &issues {
                let failed: Vec<&CheckResult> = self
                    .checks
                    .iter()
                    .filter(|c| c.server == *s && !c.ok)
                    .collect();
                summary.push(format!(
                    "{s} FAILED: {}",
                    failed
                        .iter()
                        .map(|c| c.check.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for c in failed {
                    match &c.hint {
                        Some(h) if !h.is_empty() => {
                            details.push(format!("{s}.{}: FAILED ({h})", c.check))
                        }
                        _ => details.push(format!("{s}.{}: FAILED", c.check)),
                    }
                }
            }
            if servers.len() == 1 {
                lines.push(format!(
                    "BARMAN CRITICAL - server {} has issues * {}{perf}",
                    servers[0],
                    summary.join(" * ")
                ));
            } else {
                lines.push(format!(
                    "BARMAN CRITICAL - {} server out of {} have issues * {}{perf}",
                    issues.len(),
                    servers.len(),
                    summary.join(" * ")
                ));
            }
            lines.extend(details);
            self.exit_code = 2;
        } else {
            let ignoring: String = issues.iter().map(|i| format!(" * IGNORING: {i}")).collect();
            let good: Vec<&str> = servers
                .iter()
                .filter(|s| !issues.contains(s))
                .copied()
                .collect();
            lines.push(match good.len() {
                0 => format!("BARMAN OK - No server configured{ignoring}"),
                1 => format!("BARMAN OK - Ready to serve the Espresso backup for {}{ignoring}{perf}", good[0]),
                n => format!(
                    "BARMAN OK - Ready to serve the Espresso backup for {n} servers * {}{ignoring}{perf}",
                    good.join(" * ")
                ),
            });
        }
        let mut so = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(so, "{l}");
        }
    }
}

/// Barman's `redact_passwords`: `password=...` in key/value strings and the
/// password part of `postgresql://user:pass@` URIs.
pub fn redact_passwords(text: &str) -> String {
    if !text.contains("password=") && !text.contains("postgresql://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find("password=") {
        out.push_str(&rest[..p + "password=".len()]);
        rest = &rest[p + "password=".len()..];
        let end = if let Some(q) = rest.strip_prefix('\'') {
            // a quoted value: up to the closing quote, honouring \'
            let mut i = 0;
            let b = q.as_bytes();
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            (i + 2).min(rest.len())
        } else {
            rest.find([' ', '\'', '"']).unwrap_or(rest.len())
        };
        out.push_str("*REDACTED*");
        rest = &rest[end..];
    }
    out.push_str(rest);
    let text = out;
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(p) = rest.find("postgresql://") {
        let start = p + "postgresql://".len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let auth_end = rest
            .find([' ', '@'])
            .filter(|&i| rest.as_bytes()[i] == b'@');
        if let Some(at) = auth_end {
            if let Some(colon) = rest[..at].find(':') {
                out.push_str(&rest[..colon + 1]);
                out.push_str("*REDACTED*@");
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Python's `json.dumps(obj, sort_keys=True)` spelling.
pub fn python_json(v: &J) -> String {
    let mut s = String::new();
    write_json(v, &mut s);
    s
}

fn write_json(v: &J, s: &mut String) {
    match v {
        J::Null => s.push_str("null"),
        J::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                s.push_str(&python_float_repr(f));
            } else {
                s.push_str(&n.to_string());
            }
        }
        J::String(t) => {
            s.push('"');
            for c in t.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    '\u{8}' => s.push_str("\\b"),
                    '\u{c}' => s.push_str("\\f"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            s.push_str(&format!("\\u{:04x}", u));
                        }
                    }
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        J::Array(a) => {
            s.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_json(x, s);
            }
            s.push(']');
        }
        J::Object(m) => {
            s.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_json(&J::String(k.clone()), s);
                s.push_str(": ");
                write_json(&m[k], s);
            }
            s.push('}');
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, always with a `.`
/// or an exponent (`1795558090.0`, `1e+16`). Rust's `{}` of f64 gives the
/// same shortest digits; only the spelling differs.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python switches to exponent notation outside [1e-4, 1e16).
        let e = format!("{f:e}");
        let (mant, exp) = e.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Barman's `pretty_size` (base 1024): `512 B`, `35.2 MiB`.
pub fn pretty_size(size: f64) -> String {
    const SUFFIXES: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        if size.abs() < 1024.0 || i == SUFFIXES.len() - 1 {
            return if i == 0 {
                format!("{} {suffix}", size.trunc() as i64)
            } else {
                format!("{size:.1} {suffix}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the last suffix always returns")
}

/// Barman's `human_readable_timedelta`: `2 days, 1 hour, 3 seconds`, or
/// `less than one second`.
pub fn human_duration(secs: f64) -> String {
    let secs = secs.abs();
    let days = (secs / 86400.0).floor() as i64;
    let rem = (secs - days as f64 * 86400.0).floor() as i64;
    let parts = [
        (days, "day"),
        (rem / 3600, "hour"),
        ((rem / 60) % 60, "minute"),
        (rem % 60, "second"),
    ];
    let list: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| {
            if *n == 1 {
                format!("{n} {u}")
            } else {
                format!("{n} {u}s")
            }
        })
        .collect();
    if list.is_empty() {
        "less than one second".into()
    } else {
        list.join(", ")
    }
}

/// Python's `ctime()`: `Tue Nov 24 22:07:58 2026` (day space-padded).
pub fn ctime(z: &jiff::ZonedDateTime) -> String {
    z.strftime("%a %b %e %H:%M:%S %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_passwords("host=x password=secret user=y"),
            "host=x password=*REDACTED* user=y"
        );
        assert_eq!(
            redact_passwords("postgresql://bob:pw@host/db"),
            "postgresql://bob:*REDACTED*@host/db"
        );
        assert_eq!(redact_passwords("nothing here"), "nothing here");
    }

    #[test]
    fn python_json_spelling() {
        let v: J = serde_json::json!({"b": [1, "x"], "a": {"k": null, "u": "é"}});
        assert_eq!(
            python_json(&v),
            r#"{"a": {"k": null, "u": "\u00e9"}, "b": [1, "x"]}"#
        );
    }

    #[test]
    fn floats_like_python() {
        assert_eq!(python_float_repr(1795558090.0), "1795558090.0");
        assert_eq!(python_float_repr(1795558090.0905082), "1795558090.0905082");
        assert_eq!(python_float_repr(0.5), "0.5");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(pretty_size(0.0), "0 B");
        assert_eq!(pretty_size(1023.0), "1023 B");
        assert_eq!(pretty_size(36975251.0), "35.3 MiB");
        assert_eq!(human_duration(0.4), "less than one second");
        assert_eq!(human_duration(172.0), "2 minutes, 52 seconds");
        assert_eq!(human_duration(90061.0), "1 day, 1 hour, 1 minute, 1 second");
    }
}
