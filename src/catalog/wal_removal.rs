//! Which archived WAL the backups still need: removing what precedes the
//! first backup (Barman's `remove_wal_before_backup`) and judging whether a
//! backup's own WAL range is complete (Barman's `check_backup`).
//!
//! Crash order: xlog.db is rewritten first (staged, fsynced, renamed), then
//! the files go. A crash in between leaves files no record names, which
//! `rebuild-xlogdb` recovers; never a record for a file that is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::backup_info::BackupInfo;
use super::xlogdb::{Entry, XlogDb};
use super::ServerCatalog;
use crate::wal::name::{segment_range, Kind, WalName};

/// What to keep besides history files and everything from `begin` on.
#[derive(Debug, Clone, Default)]
pub struct Protect {
    pub timelines: Vec<u32>,
    /// Inclusive (begin_wal, end_wal) ranges.
    pub ranges: Vec<(String, String)>,
}

/// Removes archived WAL before `begin` (all of it when None), keeping
/// history files and what `protect` names. Returns the removed names in
/// Barman's order (grouped by hash directory, first seen first).
pub fn remove_before(
    cat: &ServerCatalog,
    lock_dir: &Path,
    begin: Option<&str>,
) -> Result<Vec<String>, String> {
    remove_before_protecting(cat, lock_dir, begin, &Protect::default())
}

pub fn remove_before_protecting(
    cat: &ServerCatalog,
    lock_dir: &Path,
    begin: Option<&str>,
    protect: &Protect,
) -> Result<Vec<String>, String> {
    let mut db = XlogDb::lock(cat, lock_dir).map_err(|e| e.to_string())?;
    let entries = db.entries().map_err(|e| e.to_string())?;
    let mut keep: Vec<Entry> = Vec::new();
    let mut doomed: Vec<(PathBuf, Vec<Entry>)> = Vec::new();
    for e in entries {
        let Some(w) = WalName::parse(&e.name) else {
            // Barman reports and drops such a line; keeping it is safer.
            keep.push(e);
            continue;
        };
        let seg = if w.kind == Kind::Backup {
            &e.name[..24]
        } else {
            e.name.as_str()
        };
        let kept = w.kind == Kind::History
            || protect.timelines.contains(&w.tli)
            || protect
                .ranges
                .iter()
                .any(|(b, end)| seg >= b.as_str() && seg <= end.as_str())
            || begin.is_some_and(|b| e.name.as_str() >= b);
        if kept {
            keep.push(e);
            continue;
        }
        let dir = cat.wals_directory.join(w.hash_dir());
        match doomed.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, list)) => list.push(e),
            None => doomed.push((dir, vec![e])),
        }
    }
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    db.rewrite(&keep).map_err(|e| e.to_string())?;
    let mut removed = Vec::new();
    for (dir, list) in doomed {
        for e in list {
            let path = dir.join(&e.name);
            if let Err(err) = std::fs::remove_file(&path) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    log::warn!(
                        "Ignoring deletion of WAL file {} for server {}: {err}",
                        e.name,
                        cat.name
                    );
                }
            }
            removed.push(e.name);
        }
        // Only an empty hash directory goes.
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}

/// The newest archived file of each timeline (Barman's
/// `get_latest_archived_wals_info`), from the archive directory itself.
pub fn latest_per_timeline(cat: &ServerCatalog) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(&cat.wals_directory) else {
        return out;
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.len() != 16 || !d.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            let Some(w) = WalName::parse(&n) else {
                continue;
            };
            if w.kind != Kind::Segment {
                continue;
            }
            let tli = n[..8].to_string();
            let slot = out.entry(tli).or_default();
            if n > *slot {
                *slot = n;
            }
        }
    }
    out
}

/// Barman's `check_backup` on one backup.info (updated in place). Returns
/// the error to print when the backup was just marked FAILED.
pub fn check_backup_wals(cat: &ServerCatalog, info: &mut BackupInfo) -> Option<String> {
    let (Some(begin), Some(end)) = (
        info.get("begin_wal").map(str::to_string),
        info.get("end_wal").map(str::to_string),
    ) else {
        return None;
    };
    let latest = latest_per_timeline(cat);
    let Some(last) = latest.get(&begin[..8.min(begin.len())]) else {
        info.set("status", Some("WAITING_FOR_WALS".into()));
        return None;
    };
    if last.as_str() < begin.as_str() {
        info.set("status", Some("WAITING_FOR_WALS".into()));
        return None;
    }
    let seg_size = info
        .get_int("xlog_segment_size")
        .map_or(16 << 20, |n| n as u64);
    for wal in segment_range(&begin, &end, seg_size) {
        if wal.as_str() > last.as_str() {
            break;
        }
        let exists = WalName::parse(&wal)
            .is_some_and(|w| cat.wals_directory.join(w.hash_dir()).join(&wal).exists());
        if !exists {
            let error =
                format!("At least one WAL file is missing. The first missing WAL file is {wal}");
            info.set("error", Some(error.clone()));
            info.set("status", Some("FAILED".into()));
            return Some(format!(
                "This backup has been marked as FAILED due to the following reason: {error}"
            ));
        }
    }
    let status = if end.as_str() <= last.as_str() {
        "DONE"
    } else {
        "WAITING_FOR_WALS"
    };
    info.set("status", Some(status.into()));
    None
}
