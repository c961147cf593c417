//! Recovery targets as Barman reads them (`_set_pitr_targets`,
//! `parse_target_tli`, `get_required_xlog_files`): what makes a restore a
//! point-in-time recovery, the line Barman prints about it, and which
//! archived WAL files the destination needs. Pure: no I/O.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::ZonedDateTime as Zoned;

use crate::catalog::xlogdb::Entry;
use crate::wal::name::{parse_lsn, segment_of, Kind, WalName};

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub time: Option<String>,
    pub xid: Option<String>,
    pub lsn: Option<String>,
    pub name: Option<String>,
    pub immediate: bool,
    /// `current`, `latest` or a number, as typed.
    pub tli: Option<String>,
    pub exclusive: bool,
    pub action: Option<String>,
}

/// A target time parsed, with whether the user gave a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTime {
    pub at: Zoned,
    pub naive: bool,
}

impl Targets {
    /// Barman's PITR detection (`_set_pitr_targets`), for PostgreSQL ≥ 10.
    pub fn is_pitr(&self) -> bool {
        self.time.is_some()
            || self.xid.is_some()
            || self.tli.is_some()
            || self.name.is_some()
            || self.immediate
            || self.lsn.is_some()
    }

    /// The `Doing PITR. Recovery target …` details: `time: '…', xid: '…'`,
    /// in Barman's order, values as Python's `repr()` of their `str()`.
    pub fn describe(&self, time: Option<&str>, tli: Option<u32>) -> String {
        let mut parts = Vec::new();
        if let Some(t) = time {
            parts.push(format!("time: {}", py_str_repr(t)));
        }
        if let Some(x) = &self.xid {
            parts.push(format!("xid: {}", py_str_repr(x)));
        }
        if let Some(l) = &self.lsn {
            parts.push(format!("lsn: {}", py_str_repr(l)));
        }
        if let Some(t) = tli {
            parts.push(format!("timeline: {}", py_str_repr(&t.to_string())));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name: {}", py_str_repr(n)));
        }
        if self.immediate {
            parts.push("immediate: True".to_string());
        }
        parts.join(", ")
    }
}

/// Python's `repr()` of a str: single quotes unless the text holds one and
/// no double quote.
pub fn py_str_repr(s: &str) -> String {
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
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Parses a target time the way users type it for Barman (dateutil):
/// `2026-11-25 10:00:00`, `2026-11-25T10:00:00.5`, `2026-11-25`, with an
/// optional `Z`, `UTC`/`GMT`, `+HH`, `+HHMM` or `+HH:MM` zone. A time
/// without zone is taken in `local` (Barman: the Barman host's zone).
pub fn parse_time(text: &str, local: &TimeZone) -> Result<TargetTime, String> {
    let t = text.trim();
    let (civil, offset) = split_zone(t).ok_or_else(|| format!("Unknown string format: {t}"))?;
    let civil = parse_civil(civil).ok_or_else(|| format!("Unknown string format: {t}"))?;
    let (at, naive) = match offset {
        Some(off) => (civil.to_zoned_datetime(TimeZone::fixed(off)), false),
        None => (civil.to_zoned_datetime(local.clone()), true),
    };
    let at = at.map_err(|e| format!("{t}: {e}"))?;
    Ok(TargetTime { at, naive })
}

fn parse_civil(s: &str) -> Option<DateTime> {
    let s = s.trim();
    if let Ok(d) = s.parse::<DateTime>() {
        return Some(d);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return Some(d.to_datetime(jiff::civil::Time::midnight()));
    }
    // jiff wants seconds; dateutil accepts `HH:MM`.
    for fmt in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d",
    ] {
        if let Ok(d) = DateTime::strptime(fmt, s) {
            return Some(d);
        }
        if let Ok(d) = jiff::civil::Date::strptime(fmt, s) {
            return Some(d.to_datetime(jiff::civil::Time::midnight()));
        }
    }
    None
}

/// Splits `civil[zone]`; `None` zone: naive. `None` overall: a zone that
/// does not parse.
fn split_zone(t: &str) -> Option<(&str, Option<Offset>)> {
    for name in [" UTC", " GMT", "UTC", "GMT", "Z", "z"] {
        if let Some(c) = t.strip_suffix(name) {
            if c.len() >= 10 {
                return Some((c, Some(Offset::UTC)));
            }
        }
    }
    // A sign after the time part (position > 10 skips the date's dashes).
    let Some(i) = t.rfind(['+', '-']).filter(|&i| i > 10) else {
        return Some((t, None));
    };
    let (civil, zone) = (&t[..i], &t[i..]);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m, s) = match digits.len() {
        2 => (digits[..2].parse::<i32>().ok()?, 0, 0),
        4 => (digits[..2].parse().ok()?, digits[2..4].parse().ok()?, 0),
        6 => (
            digits[..2].parse().ok()?,
            digits[2..4].parse().ok()?,
            digits[4..].parse().ok()?,
        ),
        _ => return None,
    };
    let secs = sign * (h * 3600 + m * 60 + s);
    Some((civil.trim_end(), Some(Offset::from_seconds(secs).ok()?)))
}

/// Python's `str()` of a tz-aware datetime: `2026-11-25 10:00:00+01:00`,
/// microseconds only when not zero.
pub fn python_aware(z: &Zoned) -> String {
    let us = z.subsec_nanosecond() / 1000;
    let mut s = z.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if us != 0 {
        s.push_str(&format!(".{us:06}"));
    }
    let off = z.offset().seconds();
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    s.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a / 60) % 60));
    if a % 60 != 0 {
        s.push_str(&format!(":{:02}", a % 60));
    }
    s
}

/// Barman's `parse_target_tli` for a given backup: `current` is the
/// backup's timeline, `latest` the highest timeline in the archive.
pub fn resolve_tli(tli: &str, backup_tli: u32, latest_archived: Option<u32>) -> Option<u32> {
    match tli {
        "current" => Some(backup_tli),
        "latest" => latest_archived,
        n => n.parse().ok(),
    }
}

/// The highest timeline among the archive's WAL segments (Barman's
/// `get_latest_archived_wals_info` keys).
pub fn latest_timeline(entries: &[Entry]) -> Option<u32> {
    entries
        .iter()
        .filter_map(|e| WalName::parse(&e.name))
        .filter(|n| n.kind != Kind::History)
        .map(|n| n.tli)
        .max()
}

/// What `get_required_xlog_files` needs to know.
pub struct Required<'a> {
    pub begin_wal: &'a str,
    pub end_wal: &'a str,
    pub segment_size: u64,
    /// The timeline asked for (already resolved), if any.
    pub target_tli: Option<u32>,
    pub target_lsn: Option<&'a str>,
    pub immediate: bool,
    pub include_partial: bool,
    /// PostgreSQL ≥ 12 (its default target timeline is `latest`).
    pub pg12: bool,
}

/// The xlog.db entries a recovery copies, in xlog.db order: every history
/// file, and the segments from the backup's first one on timelines up to the
/// target, stopping after the backup's last one for `immediate`, after the
/// target LSN's segment for `lsn`. Barman ignores time/xid/name targets
/// here (it copies everything up to the timeline).
pub fn required_wals<'e>(entries: &'e [Entry], r: &Required<'_>) -> Vec<&'e Entry> {
    let pitr = r.target_tli.is_some() || r.target_lsn.is_some() || r.immediate;
    let end_tli = WalName::parse(r.end_wal).map_or(1, |n| n.tli);
    let tli = match r.target_tli {
        Some(t) => t,
        None if pitr && r.pg12 => latest_timeline(entries).unwrap_or(1),
        None => end_tli,
    };
    let target_wal = r
        .target_lsn
        .and_then(parse_lsn)
        .map(|l| segment_of(l, tli, r.segment_size).0);
    let mut end = r.end_wal.to_string();
    let mut out = Vec::new();
    let mut stopped = false;
    for e in entries {
        let Some(name) = WalName::parse(&e.name) else {
            continue;
        };
        if name.kind == Kind::History {
            out.push(e);
            continue;
        }
        if stopped || e.name.as_str() < r.begin_wal || name.tli > tli {
            continue;
        }
        if e.name > end {
            if r.immediate || target_wal.as_ref().is_some_and(|t| e.name > *t) {
                stopped = true;
                continue;
            }
            end = e.name.clone();
        }
        if !r.include_partial && name.kind == Kind::Partial {
            continue;
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            size: 1,
            time: 0.0,
            compression: None,
            encryption: None,
        }
    }

    fn names(v: &[&Entry]) -> Vec<String> {
        v.iter().map(|e| e.name.clone()).collect()
    }

    #[test]
    fn times_parse_like_dateutil() {
        let utc = TimeZone::UTC;
        let t = parse_time("2026-11-25 10:00:00+01:00", &utc).unwrap();
        assert!(!t.naive);
        assert_eq!(python_aware(&t.at), "2026-11-25 10:00:00+01:00");
        let t = parse_time("2026-11-25T10:00:00.5Z", &utc).unwrap();
        assert_eq!(python_aware(&t.at), "2026-11-25 10:00:00.500000+00:00");
        let t = parse_time("2026-11-25 10:00:00", &utc).unwrap();
        assert!(t.naive);
        assert_eq!(python_aware(&t.at), "2026-11-25 10:00:00+00:00");
        let t = parse_time("2026-11-25 10:00:00.123456-0530", &utc).unwrap();
        assert_eq!(python_aware(&t.at), "2026-11-25 10:00:00.123456-05:30");
        let t = parse_time("2026-11-25", &utc).unwrap();
        assert_eq!(python_aware(&t.at), "2026-11-25 00:00:00+00:00");
        assert!(parse_time("yesterday", &utc).is_err());
        assert!(parse_time("2026-11-25 10:00:00+xx", &utc).is_err());
    }

    #[test]
    fn pitr_line_is_barmans() {
        let t = Targets {
            xid: Some("1234".into()),
            tli: Some("latest".into()),
            ..Default::default()
        };
        assert_eq!(t.describe(None, Some(2)), "xid: '1234', timeline: '2'");
        let t = Targets {
            immediate: true,
            ..Default::default()
        };
        assert_eq!(t.describe(None, None), "immediate: True");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
    }

    #[test]
    fn required_wals_follow_barman() {
        let e: Vec<Entry> = [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "00000002.history",
            "000000020000000000000004",
            "000000020000000000000005",
        ]
        .iter()
        .map(|n| entry(n))
        .collect();
        let base = Required {
            begin_wal: "000000010000000000000002",
            end_wal: "000000010000000000000002",
            segment_size: 16 << 20,
            target_tli: None,
            target_lsn: None,
            immediate: false,
            include_partial: false,
            pg12: true,
        };
        // Not PITR: the backup's timeline, everything after begin.
        assert_eq!(
            names(&required_wals(&e, &base)),
            [
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004",
                "00000002.history"
            ]
        );
        // Immediate: stop at the backup's end.
        let r = Required {
            immediate: true,
            ..base
        };
        assert_eq!(
            names(&required_wals(&e, &r)),
            ["000000010000000000000002", "00000002.history"]
        );
        // Latest timeline (PITR on 12+ without a tli): timeline 2 too.
        let r = Required {
            target_tli: Some(2),
            ..base
        };
        assert_eq!(required_wals(&e, &r).len(), 6);
        // LSN 0/3000010 lives in segment 3 (on timeline 1 here; Barman
        // compares names, so on timeline 2 the cut comes later).
        let r = Required {
            target_lsn: Some("0/3000010"),
            target_tli: Some(1),
            ..base
        };
        assert_eq!(
            names(&required_wals(&e, &r)),
            [
                "000000010000000000000002",
                "000000010000000000000003",
                "00000002.history"
            ]
        );
    }
}
