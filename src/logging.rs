//! A `log` backend writing Barman's log line format to `log_file` (or to
//! stderr when none is configured, as Barman does):
//! `2026-11-24 22:04:40,847 [8800] barman.wal_archiver INFO: message`.
//!
//! Own code rather than env_logger: the exact bytes are a contract with the
//! log parsers sites already run, and `log_format` is Python %-style.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

pub const DEFAULT_FORMAT: &str = "%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s";

struct Logger {
    sink: Mutex<Sink>,
    format: String,
    level: LevelFilter,
}

enum Sink {
    File(File),
    Stderr,
    /// The log lives in a missing barman_home: every command that could
    /// log stops with one error line saying so, which is all to be said.
    Nowhere,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // A conninfo in a message must not leave its password in the log.
        let line = crate::output::redact_passwords(&render(&self.format, record));
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = match &mut *sink {
            Sink::File(f) => f.write_all(line.as_bytes()),
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::Nowhere => Ok(()),
        };
    }

    fn flush(&self) {
        if let Sink::File(f) = &mut *self.sink.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = f.flush();
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

/// The logger name Barman would show: module path with dots.
fn logger_name(target: &str) -> String {
    target.replace("::", ".")
}

fn asctime() -> String {
    let now = jiff::ZonedDateTime::now();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// Expands Python logging's `%(key)s` fields; unknown fields stay as typed.
fn render(format: &str, record: &Record) -> String {
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(p) = rest.find("%(") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let Some(close) = after.find(')') else {
            out.push_str(&rest[p..]);
            rest = "";
            break;
        };
        let key = &after[..close];
        // Skip the conversion spec (`s`, `d`, `-8s`...) up to its letter.
        let spec_end = after[close + 1..]
            .find(|c: char| c.is_ascii_alphabetic())
            .map(|i| close + 1 + i + 1)
            .unwrap_or(close + 1);
        let value = match key {
            "asctime" => asctime(),
            "process" => std::process::id().to_string(),
            "name" => logger_name(record.target()),
            "levelname" => level_name(record.level()).to_string(),
            "message" => record.args().to_string(),
            "module" => record
                .module_path()
                .unwrap_or("")
                .rsplit("::")
                .next()
                .unwrap_or("")
                .to_string(),
            "lineno" => record.line().unwrap_or(0).to_string(),
            _ => rest[p..p + 2 + spec_end].to_string(),
        };
        out.push_str(&value);
        rest = &after[spec_end..];
    }
    out.push_str(&rest.replace("%%", "%"));
    out.push('\n');
    out
}

/// Python's `parse_log_level`: an int or a level name.
pub fn parse_level(text: &str) -> Option<LevelFilter> {
    let n = match text.trim().parse::<i64>() {
        Ok(n) => n,
        Err(_) => match text.trim().to_uppercase().as_str() {
            "CRITICAL" | "FATAL" => 50,
            "ERROR" => 40,
            "WARNING" | "WARN" => 30,
            "INFO" => 20,
            "DEBUG" => 10,
            "NOTSET" => 0,
            _ => return None,
        },
    };
    Some(match n {
        n if n >= 50 => LevelFilter::Error,
        n if n >= 40 => LevelFilter::Error,
        n if n >= 30 => LevelFilter::Warn,
        n if n >= 20 => LevelFilter::Info,
        _ => LevelFilter::Debug,
    })
}

/// Installs the logger. Returns a warning to print when the file could not
/// be opened (Barman then logs to stderr). The log's directory is created
/// as Barman does, except inside a missing `home` (barman_home is never
/// created: see `catalog`).
pub fn init(
    log_file: Option<&Path>,
    level: LevelFilter,
    format: Option<&str>,
    home: &Path,
) -> Option<String> {
    let mut warning = None;
    let sink = match log_file {
        None => Sink::Stderr,
        Some(path) if path.starts_with(home) && !home.is_dir() => Sink::Nowhere,
        Some(path) => {
            let opened = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| OpenOptions::new().create(true).append(true).open(path));
            match opened {
                Ok(f) => Sink::File(f),
                Err(_) => {
                    warning = Some(
                        "Failed opening the requested log file. Using standard error instead."
                            .to_string(),
                    );
                    Sink::Stderr
                }
            }
        }
    };
    let logger = Logger {
        sink: Mutex::new(sink),
        format: format.unwrap_or(DEFAULT_FORMAT).to_string(),
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_barman_line() {
        let rec = Record::builder()
            .args(format_args!("hello"))
            .level(Level::Warn)
            .target("barman::commands::check")
            .build();
        let line = render(DEFAULT_FORMAT, &rec);
        let pid = std::process::id();
        assert!(
            line.ends_with(&format!(" [{pid}] barman.commands.check WARNING: hello\n")),
            "{line}"
        );
        assert_eq!(line.as_bytes()[4], b'-');
        assert_eq!(line.as_bytes()[19], b',');
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("debug"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("30"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("LOUD"), None);
    }
}
