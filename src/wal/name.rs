//! WAL file names as PostgreSQL writes them and Barman files them: segments
//! `TTTTTTTTLLLLLLLLSSSSSSSS`, `<segment>.OOOOOOOO.backup`,
//! `<segment>.partial` and `TTTTTTTT.history` (hex in either case).
//! Pure string logic, no I/O.

use std::fmt;

/// What kind of WAL-family file a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Segment,
    Partial,
    Backup,
    History,
}

/// A parsed WAL-family file name. `name` keeps the caller's spelling (Barman
/// files a lowercase name under its own spelling, in an uppercase hash dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalName {
    pub name: String,
    pub kind: Kind,
    pub tli: u32,
    /// `(log, seg)` for everything but history files.
    pub position: Option<(u32, u32)>,
}

fn hex8(s: &str) -> Option<u32> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

impl WalName {
    /// Parses a bare file name (no directory), as Barman's `_xlog_re`.
    pub fn parse(name: &str) -> Option<WalName> {
        let (stem, kind) = if let Some(s) = name.strip_suffix(".history") {
            let tli = hex8(s)?;
            return Some(WalName {
                name: name.to_string(),
                kind: Kind::History,
                tli,
                position: None,
            });
        } else if let Some(s) = name.strip_suffix(".partial") {
            (s, Kind::Partial)
        } else if let Some(s) = name.strip_suffix(".backup") {
            let (seg, off) = s.split_at_checked(s.len().checked_sub(9)?)?;
            if !off.starts_with('.') || hex8(&off[1..]).is_none() {
                return None;
            }
            (seg, Kind::Backup)
        } else {
            (name, Kind::Segment)
        };
        if stem.len() != 24 || !stem.is_ascii() {
            return None;
        }
        Some(WalName {
            name: name.to_string(),
            kind,
            tli: hex8(&stem[0..8])?,
            position: Some((hex8(&stem[8..16])?, hex8(&stem[16..24])?)),
        })
    }

    /// The directory under `wals/` Barman files this name in: `TTTTTTTTLLLLLLLL`
    /// in uppercase, or "" for history files.
    pub fn hash_dir(&self) -> String {
        match self.position {
            Some((log, _)) => format!("{:08X}{:08X}", self.tli, log),
            None => String::new(),
        }
    }

    /// The 24-character segment this file belongs to (None for history).
    pub fn segment(&self) -> Option<String> {
        self.position
            .map(|(log, seg)| format!("{:08X}{:08X}{:08X}", self.tli, log, seg))
    }

    /// The LSN at which this file's segment starts, for a given segment size.
    pub fn start_lsn(&self, seg_size: u64) -> Option<u64> {
        let (log, seg) = self.position?;
        let per_log = 0x1_0000_0000u64 / seg_size;
        Some((u64::from(log) * per_log + u64::from(seg)) * seg_size)
    }
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Barman's `is_any_xlog_file` over a bare name.
pub fn is_wal_family(name: &str) -> bool {
    WalName::parse(name).is_some()
}

/// The `(log, seg)` after this one (Barman's `next_segment_name`).
pub fn next_segment(log: u32, seg: u32, seg_size: u64) -> (u32, u32) {
    let last = (0xFFFF_FFFFu64 / seg_size) as u32;
    if seg >= last {
        (log + 1, 0)
    } else {
        (log, seg + 1)
    }
}

/// `%X/%X` → u64 (Barman's `parse_lsn`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    // PostgreSQL's pg_lsn_in: each half 1 to 8 hex digits (a wider half
    // used to overflow the sum, a panic in debug builds; found by fuzzing).
    let half = |h: &str| -> Option<u64> {
        if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(h, 16).ok()
    };
    let (hi, lo) = text.split_once('/')?;
    Some((half(hi)? << 32) | half(lo)?)
}

/// u64 → `%X/%X`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Barman's `location_to_xlogfile_name_offset`: the segment holding `lsn`
/// on `tli`, and the offset inside it.
pub fn segment_of(lsn: u64, tli: u32, seg_size: u64) -> (String, u64) {
    let log = (lsn >> 32) as u32;
    let seg = ((lsn & 0xFFFF_FFFF) / seg_size) as u32;
    (format!("{tli:08X}{log:08X}{seg:08X}"), lsn & (seg_size - 1))
}

/// The segment before `name` (16 MiB segments assumed only for the wrap,
/// as Barman's `previous_segment_name` with the default size).
pub fn previous_segment(name: &str) -> Option<String> {
    let w = WalName::parse(name)?;
    let (log, seg) = w.position?;
    let (log, seg) = if seg == 0 {
        (log.checked_sub(1)?, (0xFFFF_FFFFu64 / (16 << 20)) as u32)
    } else {
        (log, seg - 1)
    };
    Some(format!("{:08X}{log:08X}{seg:08X}", w.tli))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsn_helpers_match_barman() {
        assert_eq!(parse_lsn("0/7000100"), Some(0x7000100));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_lsn("1/FFFFFFFFFFFFFFFF"), None);
        assert_eq!(parse_lsn("1/"), None);
        assert_eq!(parse_lsn("+1/2"), None);
        assert_eq!(format_lsn(0x1_0700_0100), "1/7000100");
        assert_eq!(
            segment_of(0x7000100, 1, 16 << 20),
            ("000000010000000000000007".into(), 0x100)
        );
        assert_eq!(
            previous_segment("000000010000000100000000").as_deref(),
            Some("0000000100000000000000FF")
        );
    }

    use super::*;

    #[test]
    fn parses_every_kind() {
        let s = WalName::parse("00000001000000A2000000FE").unwrap();
        assert_eq!(s.kind, Kind::Segment);
        assert_eq!(s.hash_dir(), "00000001000000A2");
        assert_eq!(s.position, Some((0xA2, 0xFE)));
        let p = WalName::parse("0000000200000000000000ab.partial").unwrap();
        assert_eq!((p.kind, p.tli), (Kind::Partial, 2));
        assert_eq!(p.hash_dir(), "0000000200000000");
        let b = WalName::parse("000000010000000000000006.00000028.backup").unwrap();
        assert_eq!(b.kind, Kind::Backup);
        assert_eq!(b.segment().unwrap(), "000000010000000000000006");
        let h = WalName::parse("0000000A.history").unwrap();
        assert_eq!(
            (h.kind, h.tli, h.hash_dir()),
            (Kind::History, 10, String::new())
        );
    }

    #[test]
    fn rejects_near_misses() {
        for bad in [
            "",
            "garbage.txt",
            "00000001000000000000000",
            "0000000100000000000000001",
            "00000001000000000000000G",
            "000000010000000000000006.0000028.backup",
            "000000010000000000000006.backup",
            "00000001.partial",
            "0000001.history",
            "000000010000000000000001.tmp",
            "ééééééééééééééééééééééé",
        ] {
            assert!(WalName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lsn_of_segment_start() {
        let s = WalName::parse("000000010000000100000002").unwrap();
        assert_eq!(s.start_lsn(16 << 20), Some(0x1_0200_0000));
        assert_eq!(next_segment(0, 0xFF, 16 << 20), (1, 0));
        assert_eq!(next_segment(0, 0xFE, 16 << 20), (0, 0xFF));
    }
}
