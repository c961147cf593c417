//! Barman's retention report (`_backup_report` of its REDUNDANCY and
//! RECOVERY WINDOW policies): the status of every backup, newest first,
//! over DONE non-incremental backups; incremental ones inherit their root's.
//! Pure: the caller passes the catalog, the policy and the clock.

use std::collections::HashMap;

use super::backups::Backup;
use crate::config::types::RetentionPolicy;

pub const VALID: &str = "VALID";
pub const OBSOLETE: &str = "OBSOLETE";
pub const POTENTIALLY_OBSOLETE: &str = "OBSOLETE*";
pub const KEEP_FULL: &str = "KEEP:FULL";
pub const KEEP_STANDALONE: &str = "KEEP:STANDALONE";
pub const NONE: &str = "-";

/// `end_time` as Barman loads it: with its offset, or local time if naive.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = text.replacen(' ', "T", 1).parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    let civil: jiff::civil::DateTime = text.replacen(' ', "T", 1).parse().ok()?;
    civil
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .ok()
        .map(|z| z.timestamp())
}

fn keep_status(b: &Backup) -> Option<&'static str> {
    match b.keep.as_deref() {
        Some("standalone") => Some(KEEP_STANDALONE),
        Some(_) => Some(KEEP_FULL),
        None => None,
    }
}

/// The status of every backup of `backups` (any order) under `policy`.
pub fn report(
    backups: &[Backup],
    policy: RetentionPolicy,
    minimum_redundancy: i64,
    now: jiff::Timestamp,
) -> HashMap<String, &'static str> {
    let mut report: HashMap<String, &'static str> = HashMap::new();
    let mut sorted: Vec<&Backup> = backups.iter().collect();
    sorted.sort_by(|a, b| b.id.cmp(&a.id));
    let min = minimum_redundancy.max(0) as usize;
    let mut i = 0usize; // REDUNDANCY: DONE backups seen
    let mut valid = 0usize; // WINDOW: backups kept as valid
    let mut found = false; // WINDOW: first backup outside the window seen
    for b in &sorted {
        if b.info.get("parent_backup_id").is_some() {
            continue;
        }
        let status = if b.info.status() != "DONE" {
            NONE
        } else {
            match policy {
                RetentionPolicy::Redundancy(n) => {
                    let n = (n as usize).max(min);
                    let s = match keep_status(b) {
                        Some(k) => k,
                        None if i < n => VALID,
                        None => OBSOLETE,
                    };
                    i += 1;
                    s
                }
                RetentionPolicy::RecoveryWindow { value, unit } => {
                    let keep = keep_status(b);
                    if found {
                        if valid < min {
                            valid += 1;
                            keep.unwrap_or(POTENTIALLY_OBSOLETE)
                        } else {
                            keep.unwrap_or(OBSOLETE)
                        }
                    } else {
                        valid += 1;
                        let point = now
                            - jiff::SignedDuration::from_hours(24 * i64::from(value) * unit.days());
                        if b.info
                            .get("end_time")
                            .and_then(parse_time)
                            .is_some_and(|t| t < point)
                        {
                            found = true;
                        }
                        keep.unwrap_or(VALID)
                    }
                }
            }
        };
        report.insert(b.id.clone(), status);
        if b.info.get("children_backup_ids").is_some() {
            let inherited = match status {
                KEEP_STANDALONE => match policy {
                    RetentionPolicy::Redundancy(n) if i > (n as usize).max(min) => OBSOLETE,
                    RetentionPolicy::RecoveryWindow { .. } if found => OBSOLETE,
                    _ => VALID,
                },
                KEEP_FULL => VALID,
                s => s,
            };
            propagate(backups, b, inherited, &mut report);
        }
    }
    for b in backups {
        report.entry(b.id.clone()).or_insert(NONE);
    }
    report
}

fn propagate(
    backups: &[Backup],
    root: &Backup,
    status: &'static str,
    report: &mut HashMap<String, &'static str>,
) {
    let Some(children) = root.info.get("children_backup_ids") else {
        return;
    };
    for id in children.split(',').map(str::trim) {
        if let Some(child) = backups.iter().find(|b| b.id == id) {
            report.insert(child.id.clone(), status);
            propagate(backups, child, status, report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::backup_info::BackupInfo;
    use crate::config::types::WindowUnit;

    fn backup(id: &str, status: &str, end: &str, keep: Option<&str>) -> Backup {
        Backup {
            id: id.into(),
            info: BackupInfo::parse(&format!("status={status}\nend_time={end}\n")).unwrap(),
            keep: keep.map(str::to_string),
        }
    }

    #[test]
    fn redundancy_keeps_the_newest_n_done_backups() {
        let list = vec![
            backup("20260101T000000", "DONE", "2026-01-01 00:10:00+00:00", None),
            backup(
                "20260102T000000",
                "DONE",
                "2026-01-02 00:10:00+00:00",
                Some("standalone"),
            ),
            backup("20260103T000000", "FAILED", "None", None),
            backup("20260104T000000", "DONE", "2026-01-04 00:10:00+00:00", None),
            backup("20260105T000000", "DONE", "2026-01-05 00:10:00+00:00", None),
        ];
        let r = report(
            &list,
            RetentionPolicy::Redundancy(2),
            1,
            jiff::Timestamp::now(),
        );
        assert_eq!(r["20260105T000000"], VALID);
        assert_eq!(r["20260104T000000"], VALID);
        assert_eq!(r["20260103T000000"], NONE);
        assert_eq!(r["20260102T000000"], KEEP_STANDALONE);
        assert_eq!(r["20260101T000000"], OBSOLETE);
        // minimum_redundancy raises a lower redundancy.
        let r = report(
            &list,
            RetentionPolicy::Redundancy(1),
            3,
            jiff::Timestamp::now(),
        );
        assert_eq!(r["20260101T000000"], OBSOLETE);
        assert_eq!(r["20260104T000000"], VALID);
    }

    #[test]
    fn window_marks_older_backups_obsolete_beyond_minimum_redundancy() {
        let now: jiff::Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let list = vec![
            backup("20260101T000000", "DONE", "2026-01-01 00:10:00+00:00", None),
            backup("20260102T000000", "DONE", "2026-01-02 00:10:00+00:00", None),
            backup("20260103T000000", "DONE", "2026-01-03 00:10:00+00:00", None),
            backup("20260109T000000", "DONE", "2026-01-09 00:10:00+00:00", None),
        ];
        let window = RetentionPolicy::RecoveryWindow {
            value: 2,
            unit: WindowUnit::Days,
        };
        let r = report(&list, window, 3, now);
        // Newest inside; the first outside (03) is still VALID (the point of
        // recoverability needs it); then OBSOLETE* up to minimum redundancy.
        assert_eq!(r["20260109T000000"], VALID);
        assert_eq!(r["20260103T000000"], VALID);
        assert_eq!(r["20260102T000000"], POTENTIALLY_OBSOLETE);
        assert_eq!(r["20260101T000000"], OBSOLETE);
    }
}
