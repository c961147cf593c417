//! Typed configuration values and their parsers, with Barman's accepted
//! spellings and error texts. Every parser is pure over `&str`.
//!
//! [`Value`] is what one option holds once parsed. Its `Display` is Python's
//! `str()` of the object Barman keeps for that option, because `show-servers`
//! prints exactly that, and sites grep it.

use std::collections::BTreeSet;
use std::fmt;

/// A parsed option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    /// Seconds; shown as Python's `timedelta`.
    Interval(i64),
    /// A comma-separated set option (`backup_options`, `recovery_options`):
    /// the Python class name and its members.
    Csv(&'static str, BTreeSet<String>),
    /// A list (`snapshot_disks`).
    List(Vec<String>),
    /// `REDUNDANCY n` / `RECOVERY WINDOW OF ...` once the server parsed it.
    Retention(RetentionPolicy),
    /// The WAL retention policy object (`MAIN`).
    WalRetentionMain,
}

impl Value {
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The JSON Barman's `-f json` writers print for this value: ints, strs,
    /// bools, lists and None natively, anything else as its `str()`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::None => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().cloned().map(J::String).collect()),
            other => J::String(other.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
            Value::Interval(secs) => f.write_str(&python_timedelta(*secs)),
            Value::Csv(class, set) => {
                if set.is_empty() {
                    write!(f, "{class}()")
                } else {
                    let items: Vec<String> = set.iter().map(|s| python_repr_str(s)).collect();
                    write!(f, "{class}({{{}}})", items.join(", "))
                }
            }
            Value::List(items) => {
                let items: Vec<String> = items.iter().map(|s| python_repr_str(s)).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Value::Retention(rp) => write!(f, "{rp}"),
            Value::WalRetentionMain => f.write_str("MAIN"),
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text contains a
/// single quote and no double quote.
pub fn python_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str(timedelta(seconds=secs))`: `14 days, 0:00:00`, `2:00:00`.
pub fn python_timedelta(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let hms = format!("{}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    match days {
        0 => hms,
        1 | -1 => format!("{days} day, {hms}"),
        _ => format!("{days} days, {hms}"),
    }
}

/// `true t yes 1 on` / `false f no 0 off`, any case.
pub fn parse_boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" | "on" => Ok(true),
        "false" | "f" | "no" | "0" | "off" => Ok(false),
        _ => Err("Invalid boolean representation (must be one in: \
                  true|t|yes|1|on | false|f|no|0|off)"
            .to_string()),
    }
}

/// Python's `int()` on a config string: surrounding blanks, a sign, digits
/// (underscores between digits allowed, as Python allows).
pub fn parse_int(v: &str) -> Result<i64, String> {
    let t = v.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(format!("invalid literal for int() with base 10: '{v}'"));
    }
    t.replace('_', "")
        .parse::<i64>()
        .map_err(|_| format!("invalid literal for int() with base 10: '{v}'"))
}

/// `N day(s)|week(s)|month(s)|hour(s)`, month = 31 days. Returns seconds.
pub fn parse_time_interval(v: &str) -> Result<i64, String> {
    let err = || format!("Invalid value for a time interval {v}");
    let mut parts = v.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err());
    };
    if !n.chars().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let n: i64 = n.parse().map_err(|_| err())?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    let per = match unit {
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 31 * 86_400,
        "hour" => 3600,
        _ => return Err(err()),
    };
    n.checked_mul(per).ok_or_else(err)
}

/// `N[k|Ki|M|Mi|G|Gi|T|Ti]` (k = 1000, Ki = 1024), digits first, as
/// Barman's `re.match` of `(\d+)\s*(k|Ki|...)?\s*$` requires.
pub fn parse_si_suffix(v: &str) -> Result<i64, String> {
    let err = || format!("Invalid value for a number {v}");
    let digits_end = v
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    if digits_end == 0 {
        return Err(err());
    }
    let n: i64 = v[..digits_end].parse().map_err(|_| err())?;
    let unit = v[digits_end..].trim();
    let mul: i64 = match unit {
        "" => 1,
        "k" => 1000,
        "Ki" => 1024,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        _ => return Err(err()),
    };
    n.checked_mul(mul).ok_or_else(err)
}

/// A lower-cased value that must be one of `allowed`.
pub fn parse_choice(
    v: &str,
    allowed: &[&str],
    why: impl Fn(&str) -> String,
) -> Result<String, String> {
    let l = v.to_lowercase();
    if allowed.contains(&l.as_str()) {
        Ok(l)
    } else {
        Err(why(v))
    }
}

/// Barman's `CsvOption`: comma list, each item trimmed and lower-cased, must
/// be in `allowed`; `conflicts` pairs may not both appear.
pub fn parse_csv(
    v: &str,
    key: &str,
    source: &str,
    allowed: &[&str],
    conflicts: &[(&str, &str)],
) -> Result<BTreeSet<String>, String> {
    let mut set = BTreeSet::new();
    if v.is_empty() {
        return Ok(set);
    }
    let mut items: Vec<&str> = v.split(',').collect();
    items.sort_unstable();
    for item in items {
        let item = item.trim().to_lowercase();
        if !allowed.contains(&item.as_str()) {
            return Err(format!(
                "Invalid configuration value '{item}' for key {key} in {source}: Unknown option"
            ));
        }
        for (a, b) in conflicts {
            if item == *a && set.contains(*b) {
                return Err(format!(
                    "Invalid configuration value '{item}' for key {key} in {source}: \
                     cannot contain both '{a}' and '{b}'.Configuration directive ignored."
                ));
            }
        }
        set.insert(item);
    }
    Ok(set)
}

/// WAL compression algorithms Barman knows (its `compression_registry`).
pub const COMPRESSIONS: &[&str] = &[
    "gzip", "bzip2", "pygzip", "pybzip2", "pigz", "xz", "zstd", "lz4", "snappy", "custom",
];

/// `compression_level`: `low|medium|high` or an integer (negatives for zstd).
pub fn parse_compression_level(v: &str) -> Result<Value, String> {
    let l = v.to_lowercase();
    let digits = l.trim_start_matches('-');
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        return parse_int(&l).map(Value::Int);
    }
    if ["low", "medium", "high"].contains(&l.as_str()) {
        return Ok(Value::Str(l));
    }
    Err(format!(
        "Invalid value: '{l}' (must be one in [low, medium, high] or an acceptable integer)"
    ))
}

/// A retention policy as Barman prints and enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPolicy {
    Redundancy(u32),
    RecoveryWindow { value: u32, unit: WindowUnit },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    Days,
    Weeks,
    Months,
}

impl WindowUnit {
    pub fn days(self) -> i64 {
        match self {
            WindowUnit::Days => 1,
            WindowUnit::Weeks => 7,
            WindowUnit::Months => 31,
        }
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPolicy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            RetentionPolicy::RecoveryWindow { value, unit } => {
                let kw = match unit {
                    WindowUnit::Days => "DAYS",
                    WindowUnit::Weeks => "WEEKS",
                    WindowUnit::Months => "MONTHS",
                };
                write!(f, "RECOVERY WINDOW OF {value} {kw}")
            }
        }
    }
}

/// `REDUNDANCY n` or `RECOVERY WINDOW OF n DAY[S]|WEEK[S]|MONTH[S]`, any
/// case and spacing.
pub fn parse_retention_policy(v: &str) -> Result<RetentionPolicy, String> {
    let words: Vec<String> = v.split_whitespace().map(|w| w.to_uppercase()).collect();
    let err = || {
        format!(
            "cannot parse '{v}' (expected 'REDUNDANCY <n>' or \
             'RECOVERY WINDOW OF <n> DAYS|WEEKS|MONTHS')"
        )
    };
    let num = |s: &str| -> Result<u32, String> {
        if s.chars().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["REDUNDANCY", n] => Ok(RetentionPolicy::Redundancy(num(n)?)),
        ["RECOVERY", "WINDOW", "OF", n, unit] => {
            let unit = match *unit {
                "DAY" | "DAYS" => WindowUnit::Days,
                "WEEK" | "WEEKS" => WindowUnit::Weeks,
                "MONTH" | "MONTHS" => WindowUnit::Months,
                _ => return Err(err()),
            };
            Ok(RetentionPolicy::RecoveryWindow {
                value: num(n)?,
                unit,
            })
        }
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_of_values() {
        assert_eq!(Value::Bool(true).to_string(), "True");
        assert_eq!(Value::None.to_string(), "None");
        assert_eq!(Value::Interval(14 * 86400).to_string(), "14 days, 0:00:00");
        assert_eq!(Value::Interval(86400).to_string(), "1 day, 0:00:00");
        assert_eq!(Value::Interval(7200).to_string(), "2:00:00");
        let set: BTreeSet<String> = ["concurrent_backup".to_string()].into();
        assert_eq!(
            Value::Csv("BackupOptions", set).to_string(),
            "BackupOptions({'concurrent_backup'})"
        );
        assert_eq!(
            Value::Csv("RecoveryOptions", BTreeSet::new()).to_string(),
            "RecoveryOptions()"
        );
        assert_eq!(python_repr_str("it's"), "\"it's\"");
        assert_eq!(python_repr_str("a\nb"), "'a\\nb'");
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_boolean("YES"), Ok(true));
        assert!(parse_boolean("maybe").is_err());
        assert_eq!(parse_int(" 42 "), Ok(42));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert!(parse_int("4x").is_err());
        assert_eq!(parse_time_interval("2 weeks"), Ok(14 * 86400));
        assert_eq!(parse_time_interval("1 Month"), Ok(31 * 86400));
        assert_eq!(parse_time_interval("3 hours"), Ok(3 * 3600));
        assert!(parse_time_interval("3 years").is_err());
        assert_eq!(parse_si_suffix("1Gi"), Ok(1 << 30));
        assert_eq!(parse_si_suffix("5 k"), Ok(5000));
        assert!(parse_si_suffix("lots").is_err());
        assert_eq!(parse_compression_level("-5"), Ok(Value::Int(-5)));
        assert_eq!(
            parse_compression_level("HIGH"),
            Ok(Value::Str("high".into()))
        );
        assert!(parse_compression_level("max").is_err());
    }

    #[test]
    fn retention_policies() {
        assert_eq!(
            parse_retention_policy("redundancy 2"),
            Ok(RetentionPolicy::Redundancy(2))
        );
        let rw = parse_retention_policy("RECOVERY  WINDOW OF 1 week").unwrap();
        assert_eq!(rw.to_string(), "RECOVERY WINDOW OF 1 WEEKS");
        assert!(parse_retention_policy("KEEP 2").is_err());
        assert!(parse_retention_policy("REDUNDANCY -1").is_err());
    }

    #[test]
    fn csv_options() {
        let ok = parse_csv(
            "concurrent_backup, external_configuration",
            "k",
            "s",
            &[
                "concurrent_backup",
                "exclusive_backup",
                "external_configuration",
            ],
            &[
                ("exclusive_backup", "concurrent_backup"),
                ("concurrent_backup", "exclusive_backup"),
            ],
        );
        assert_eq!(ok.unwrap().len(), 2);
        assert!(parse_csv("bogus", "k", "s", &["a"], &[]).is_err());
        let both = parse_csv(
            "exclusive_backup,concurrent_backup",
            "k",
            "s",
            &["concurrent_backup", "exclusive_backup"],
            &[
                ("exclusive_backup", "concurrent_backup"),
                ("concurrent_backup", "exclusive_backup"),
            ],
        );
        assert!(both.is_err());
    }
}
