//! `backup_label`, as PostgreSQL writes it and Barman reads it: the start
//! location and file (`START WAL LOCATION: 0/3000028 (file 0000…03)`), the
//! start time and timeline. Pure over text; fuzzed.

use crate::wal::name::{parse_lsn, WalName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub start_lsn_text: String,
    pub start_lsn: u64,
    pub start_wal: String,
    pub timeline: u32,
    pub start_time: String,
}

/// None when a line Barman needs is missing or malformed (Barman's
/// "Failure parsing backup_label").
pub fn parse(text: &str) -> Option<Label> {
    let mut wal = None;
    let mut time = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("START WAL LOCATION: ") {
            let (lsn, file) = rest.split_once(" (file ")?;
            let file = file.strip_suffix(')')?;
            wal = Some((lsn.to_string(), file.to_string()));
        } else if let Some(rest) = line.strip_prefix("START TIME: ") {
            time = Some(rest.to_string());
        }
    }
    let (lsn_text, file) = wal?;
    let start_lsn = parse_lsn(&lsn_text)?;
    let name = WalName::parse(&file)?;
    Some(Label {
        start_lsn_text: lsn_text,
        start_lsn,
        timeline: name.tli,
        start_wal: file,
        start_time: time?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_postgresql_labels() {
        let l = parse(
            "START WAL LOCATION: 0/18000028 (file 000000010000000000000018)\nCHECKPOINT LOCATION: 0/18000060\n\
             BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 22:11:18 UTC\n\
             LABEL: pg_basebackup base backup\nSTART TIMELINE: 1\n",
        )
        .unwrap();
        assert_eq!(l.start_lsn, 0x18000028);
        assert_eq!(l.start_wal, "000000010000000000000018");
        assert_eq!(l.timeline, 1);
        assert!(parse("START TIME: x\n").is_none());
        assert!(
            parse("START WAL LOCATION: zz (file 000000010000000000000018)\nSTART TIME: x\n")
                .is_none()
        );
    }
}
