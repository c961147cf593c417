//! Whether every WAL file a backup needs has been archived (Barman's
//! `BackupManager.check_backup`): WAITING_FOR_WALS becomes DONE once
//! begin..end are all in the archive, FAILED when one is missing although
//! a later one of the same timeline is there (it will never arrive).

use std::collections::HashMap;
use std::path::Path;

use super::backup_ext::{required_segments, wal_path};
use super::backup_info::BackupInfo;
use crate::wal::name::{Kind, WalName};

/// The newest archived segment of each timeline (8 hex digits, as the hash
/// directory spells it), scanning `wals/` as Barman's
/// `get_latest_archived_wals_info` does: hash directories newest first,
/// the first plain segment found in each timeline's newest one wins.
pub fn latest_archived(wals: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(wals) else {
        return out;
    };
    let mut dirs: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    for dir in dirs.iter().rev() {
        let Some(tli) = dir.get(..8).filter(|t| u32::from_str_radix(t, 16).is_ok()) else {
            continue;
        };
        if out.contains_key(tli) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(wals.join(dir)) else {
            continue;
        };
        let mut files: Vec<(String, bool)> = rd
            .flatten()
            .map(|e| {
                let is_dir = e.path().is_dir();
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect();
        files.sort();
        if let Some((name, _)) = files.iter().rev().find(|(name, is_dir)| {
            !is_dir && WalName::parse(name).is_some_and(|n| n.kind == Kind::Segment)
        }) {
            out.insert(tli.to_string(), name.clone());
        }
    }
    out
}

/// The status `info` should have now (None: leave it as it is: no end yet),
/// and for FAILED the error Barman records.
pub fn verdict(wals: &Path, info: &BackupInfo) -> Option<(&'static str, Option<String>)> {
    let end = info.get("end_wal")?;
    let begin = info.get("begin_wal").unwrap_or_default();
    let timeline = begin.get(..8).unwrap_or_default();
    let latest = latest_archived(wals);
    let Some(last) = latest.get(timeline) else {
        return Some(("WAITING_FOR_WALS", None));
    };
    if last.as_str() < begin {
        return Some(("WAITING_FOR_WALS", None));
    }
    let seg = info.get_int("xlog_segment_size").unwrap_or(16 << 20) as u64;
    for wal in required_segments(begin, end, seg, info.get_int("version")) {
        if wal.as_str() > last.as_str() {
            break;
        }
        if !wal_path(wals, &wal).exists() {
            return Some((
                "FAILED",
                Some(format!(
                    "At least one WAL file is missing. The first missing WAL file is {wal}"
                )),
            ));
        }
    }
    Some(if end <= last.as_str() {
        ("DONE", None)
    } else {
        ("WAITING_FOR_WALS", None)
    })
}

/// Applies [`verdict`] to `info`; returns the FAILED message Barman prints.
pub fn apply(wals: &Path, info: &mut BackupInfo) -> Option<String> {
    let (status, error) = verdict(wals, info)?;
    info.set("status", Some(status.to_string()));
    let error = error?;
    info.set("error", Some(error.clone()));
    Some(format!(
        "This backup has been marked as FAILED due to the following reason: {error}"
    ))
}
