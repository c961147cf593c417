//! What Barman derives about one backup from the rest of the catalog
//! (`Server.get_backup_ext_info`, `get_wal_info`,
//! `get_wal_until_next_backup`, `get_children_timelines`): its neighbours,
//! the WAL it needs and the WAL archived until the next backup, the
//! timelines forked after it, its chain of incremental parents, and the
//! WAL segments a backup needs. Shared by show-backup, list-backups,
//! list-files, delete and check-backup.

use std::path::Path;

use super::backups::Backup;
use super::pylit::{self, PyValue};
use super::xlogdb::Entry;
use super::ServerCatalog;
use crate::compression::{self, Codec, CustomFilters};
use crate::wal::name::{parse_lsn, Kind, WalName};

/// Barman's `STATUS_COPY_DONE`: the statuses its default filter accepts.
pub fn copy_done(b: &Backup) -> bool {
    matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS")
}

/// The nearest copy-done backups before and after `id` in `list` (sorted by
/// ID), whatever the status of `id` itself (Barman's
/// `get_previous_backup`/`get_next_backup`).
pub fn neighbours<'a>(list: &'a [Backup], id: &str) -> (Option<&'a Backup>, Option<&'a Backup>) {
    let Some(pos) = list.iter().position(|b| b.id == id) else {
        return (None, None);
    };
    let prev = list[..pos].iter().rev().find(|b| copy_done(b));
    let next = list[pos + 1..].iter().find(|b| copy_done(b));
    (prev, next)
}

/// The xlog.db entries from the backup's begin_wal to the next backup's
/// end_wal (Barman's `get_wal_until_next_backup`): segments of the backup's
/// timeline or older, in xlog.db order, stopping at the first one past
/// `next_end`; history files (any age) only when `include_history`.
pub fn wal_until_next<'a>(
    backup: &Backup,
    next_end: Option<&str>,
    entries: &'a [Entry],
    include_history: bool,
) -> Vec<&'a Entry> {
    let Some(begin) = backup.info.get("begin_wal") else {
        return Vec::new();
    };
    let Some(begin_tli) = WalName::parse(begin).map(|n| n.tli) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let Some(name) = WalName::parse(&e.name) else {
            continue;
        };
        if name.kind == Kind::History {
            if include_history {
                out.push(e);
            }
            continue;
        }
        if e.name.as_str() < begin || name.tli > begin_tli || name.kind != Kind::Segment {
            continue;
        }
        if next_end.is_some_and(|n| e.name.as_str() > n) {
            break;
        }
        out.push(e);
    }
    out
}

/// Barman's `get_wal_info` for one backup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalInfo {
    /// Segments begin..=end and their bytes.
    pub wal_num: u64,
    pub wal_size: u64,
    /// Segments after end until the next backup.
    pub until_next_num: u64,
    pub until_next_size: u64,
    pub compression_ratio: f64,
    pub until_next_compression_ratio: f64,
    pub wal_last: Option<String>,
    pub wals_per_second: f64,
}

pub fn wal_info(backup: &Backup, next_end: Option<&str>, entries: &[Entry]) -> WalInfo {
    let begin = backup.info.get("begin_wal").unwrap_or_default();
    let end = backup.info.get("end_wal").unwrap_or_default();
    let mut w = WalInfo::default();
    let mut first_time = None;
    let mut last_time = None;
    for e in wal_until_next(backup, next_end, entries, false) {
        if e.name == begin {
            first_time = Some(e.time);
        }
        if e.name.as_str() <= end {
            w.wal_num += 1;
            w.wal_size += e.size;
        } else {
            w.until_next_num += 1;
            w.until_next_size += e.size;
        }
        w.wal_last = Some(e.name.clone());
        last_time = Some(e.time);
    }
    // Statistics only when the backup's first WAL is archived (Barman: "the
    // required WAL files could be missing").
    if let (Some(first), Some(last)) = (first_time, last_time) {
        let total = last - first;
        if total > 0.0 {
            w.wals_per_second = (w.wal_num + w.until_next_num) as f64 / total;
        }
        let seg = backup.info.get_int("xlog_segment_size").unwrap_or(16 << 20) as f64;
        let ratio = |size: u64, num: u64| {
            let theoretical = num as f64 * seg;
            if theoretical == 0.0 {
                0.0
            } else {
                1.0 - size as f64 / theoretical
            }
        };
        w.compression_ratio = ratio(w.wal_size, w.wal_num);
        w.until_next_compression_ratio = ratio(w.until_next_size, w.until_next_num);
    }
    w
}

/// One line of a timeline history file, for the timeline it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub tli: u32,
    pub parent_tli: u32,
    pub switchpoint: u64,
}

/// Barman's `get_children_timelines`: for timelines tli+1, tli+2, ... while
/// `wals/<TLI>.history` exists, the history lines whose parent is `tli` and
/// whose switch point is not before `forked_after`. History files may be
/// compressed (archived like any WAL file).
pub fn children_timelines(
    wals: &Path,
    tli: u32,
    forked_after: Option<u64>,
    custom: &CustomFilters,
) -> Vec<HistoryLine> {
    let mut out = Vec::new();
    let mut child = tli;
    loop {
        child += 1;
        let path = wals.join(format!("{child:08X}.history"));
        let Ok(raw) = std::fs::read(&path) else {
            break;
        };
        let text = match Codec::detect(&raw, custom.magic.as_deref()) {
            Some(codec) => {
                let mut plain = Vec::new();
                if compression::decompress(codec, &raw, custom, &mut plain).is_err() {
                    log::warn!("cannot decompress {}", path.display());
                    continue;
                }
                plain
            }
            None => raw,
        };
        for line in String::from_utf8_lossy(&text).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(parent), Some(switch)) = (fields.next(), fields.next()) else {
                continue;
            };
            let (Ok(parent_tli), Some(switchpoint)) =
                (parent.trim().parse(), parse_lsn(switch.trim()))
            else {
                continue;
            };
            if parent_tli != tli || forked_after.is_some_and(|f| switchpoint < f) {
                continue;
            }
            out.push(HistoryLine {
                tli: child,
                parent_tli,
                switchpoint,
            });
        }
    }
    out
}

/// The backup and its parents up to the root, nearest first (Barman's
/// `walk_to_root`; a parent whose metadata is missing ends the walk).
pub fn chain_to_root<'a>(list: &'a [Backup], backup: &'a Backup) -> Vec<&'a Backup> {
    let mut chain = vec![backup];
    let mut cur = backup;
    while let Some(parent) = cur.info.get("parent_backup_id") {
        match list.iter().find(|b| b.id == parent) {
            // Guard against a corrupt catalog looping on itself.
            Some(p) if !chain.iter().any(|c| c.id == p.id) => {
                chain.push(p);
                cur = p;
            }
            _ => break,
        }
    }
    chain
}

/// Barman's `deduplication_ratio`: how much of the cluster (rsync: of the
/// backup's own size) the backup did not need to store.
pub fn deduplication_ratio(b: &Backup) -> f64 {
    let rsync = b.info.get("mode").is_some_and(|m| m.starts_with("rsync"));
    let size = if rsync {
        b.info.get_int("size")
    } else {
        b.info.get_int("cluster_size")
    };
    match (size, b.info.get_int("deduplicated_size")) {
        (Some(size), Some(dedup)) if size != 0 && dedup != 0 => 1.0 - dedup as f64 / size as f64,
        _ => 0.0,
    }
}

/// The WAL segments from `begin` to `end` of one timeline (Barman's
/// `generate_segment_names`; before PostgreSQL 9.3 the last segment of each
/// log file does not exist).
pub fn required_segments(
    begin: &str,
    end: &str,
    seg_size: u64,
    version: Option<i64>,
) -> Vec<String> {
    let (Some(b), Some(e)) = (WalName::parse(begin), WalName::parse(end)) else {
        return Vec::new();
    };
    let (Some((mut log, mut seg)), Some((end_log, end_seg))) = (b.position, e.position) else {
        return Vec::new();
    };
    let per_file = (0xFFFF_FFFFu64 / seg_size.max(1)) as u32;
    let skip_last = version.is_some_and(|v| v < 90300);
    let mut out = Vec::new();
    while log < end_log || (log == end_log && seg <= end_seg) {
        out.push(format!("{:08X}{log:08X}{seg:08X}", b.tli));
        seg += 1;
        if seg > per_file || (skip_last && seg == per_file) {
            seg = 0;
            log += 1;
        }
    }
    out
}

/// Where Barman files an archived WAL name under `wals/`.
pub fn wal_path(wals: &Path, name: &str) -> std::path::PathBuf {
    match WalName::parse(name) {
        Some(n) if n.kind != Kind::History => wals.join(n.hash_dir()).join(name),
        _ => wals.join(name),
    }
}

/// Barman's `backup_type` label: `snapshot`, `rsync`, `incremental`, `full`.
pub fn backup_type(b: &Backup) -> &'static str {
    let mode = b.info.get("mode").unwrap_or_default();
    if mode.starts_with("snapshot") {
        "snapshot"
    } else if mode.starts_with("rsync") {
        "rsync"
    } else if b.info.get("parent_backup_id").is_some() {
        "incremental"
    } else {
        "full"
    }
}

/// Everything `show-backup` prints beyond backup.info itself, for a
/// backup whose copy is done (Barman's `get_backup_ext_info`).
#[derive(Debug, Clone)]
pub struct ExtInfo {
    pub previous_id: Option<String>,
    pub next_id: Option<String>,
    pub wal: WalInfo,
    pub children_timelines: Vec<HistoryLine>,
    /// From copy_stats: copy time when > 0, analysis time when >= 1 s.
    pub copy_time: Option<f64>,
    pub analysis_time: Option<f64>,
    /// deduplicated_size / copy_time, when both are > 0.
    pub estimated_throughput: Option<f64>,
    /// copy_stats' number_of_workers when > 1, else 1.
    pub number_of_workers: i64,
    pub root_id: String,
    pub chain_size: usize,
    pub deduplication_ratio: f64,
    pub est_dedup_size: f64,
}

/// `list` is the whole catalog sorted by ID, `entries` the xlog.db.
pub fn ext_info(
    list: &[Backup],
    backup: &Backup,
    entries: &[Entry],
    wals: &Path,
    custom: &CustomFilters,
) -> ExtInfo {
    let (prev, next) = neighbours(list, &backup.id);
    let wal = wal_info(backup, next.and_then(|n| n.info.get("end_wal")), entries);
    let tli = backup.info.get_int("timeline").unwrap_or(0).max(0) as u32;
    let forked_after = backup.info.get("end_xlog").and_then(parse_lsn);
    let children = children_timelines(wals, tli, forked_after, custom);
    let stats = backup
        .info
        .get("copy_stats")
        .and_then(|t| pylit::parse(t).ok());
    let stat = |key: &str| -> Option<f64> {
        match &stats {
            Some(PyValue::Dict(items)) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .and_then(|(_, v)| match v {
                    PyValue::Int(n) => Some(*n as f64),
                    PyValue::Float(f) => Some(*f),
                    _ => None,
                }),
            _ => None,
        }
    };
    let copy_time = stat("copy_time").filter(|t| *t > 0.0);
    let dedup = backup.info.get_int("deduplicated_size").unwrap_or(0);
    let estimated_throughput = copy_time.filter(|_| dedup > 0).map(|t| dedup as f64 / t);
    let workers = stat("number_of_workers").unwrap_or(1.0) as i64;
    let chain = chain_to_root(list, backup);
    let ratio = deduplication_ratio(backup);
    let base = backup
        .info
        .get_int("cluster_size")
        .filter(|s| *s != 0)
        .or_else(|| backup.info.get_int("size"))
        .unwrap_or(0);
    ExtInfo {
        previous_id: prev.map(|b| b.id.clone()),
        next_id: next.map(|b| b.id.clone()),
        wal,
        children_timelines: children,
        copy_time,
        analysis_time: stat("analysis_time").filter(|t| *t >= 1.0),
        estimated_throughput,
        number_of_workers: if copy_time.is_some() && dedup > 0 && workers > 1 {
            workers
        } else {
            1
        },
        root_id: chain.last().map(|b| b.id.clone()).unwrap_or_default(),
        chain_size: chain.len(),
        deduplication_ratio: ratio,
        est_dedup_size: base as f64 * ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cross_log_files_as_barman_counts_them() {
        let segs = required_segments(
            "0000000100000000000000FE",
            "000000010000000100000001",
            16 << 20,
            Some(150000),
        );
        assert_eq!(
            segs,
            [
                "0000000100000000000000FE",
                "0000000100000000000000FF",
                "000000010000000100000000",
                "000000010000000100000001"
            ]
        );
        let old = required_segments(
            "0000000100000000000000FE",
            "000000010000000100000000",
            16 << 20,
            Some(90200),
        );
        assert_eq!(
            old,
            ["0000000100000000000000FE", "000000010000000100000000"]
        );
    }
}

/// Hook environment for a backup (Barman's `env_from_backup_info`).
pub fn hook_env(cat: &ServerCatalog, list: &[Backup], b: &Backup) -> Vec<(&'static str, String)> {
    let (prev, next) = neighbours(list, &b.id);
    vec![
        (
            "BARMAN_BACKUP_DIR",
            cat.basebackups_directory.join(&b.id).display().to_string(),
        ),
        (
            "BARMAN_BACKUP_INFO_PATH",
            super::backups::info_path(cat, &b.id).display().to_string(),
        ),
        ("BARMAN_BACKUP_ID", b.id.clone()),
        (
            "BARMAN_PREVIOUS_ID",
            prev.map(|p| p.id.clone()).unwrap_or_default(),
        ),
        (
            "BARMAN_NEXT_ID",
            next.map(|n| n.id.clone()).unwrap_or_default(),
        ),
        ("BARMAN_STATUS", b.info.status().to_string()),
        (
            "BARMAN_ERROR",
            b.info.get("error").unwrap_or_default().to_string(),
        ),
    ]
}

/// A tablespace as backup.info lists it.
#[derive(Debug, Clone)]
pub struct Tablespace {
    pub name: String,
    /// As Python prints it (an int, normally).
    pub oid: PyValue,
    pub location: String,
}

/// The `tablespaces` of a backup.info (empty when None or unreadable).
pub fn tablespaces(info: &super::backup_info::BackupInfo) -> Vec<Tablespace> {
    let Some(Ok(PyValue::List(items))) = info.get("tablespaces").map(pylit::parse) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|t| match t {
            PyValue::Tuple(v) | PyValue::List(v) if v.len() >= 3 => Some(Tablespace {
                name: py_str(&v[0]),
                oid: v[1].clone(),
                location: py_str(&v[2]),
            }),
            _ => None,
        })
        .collect()
}

/// Python's `str()` of a literal.
pub fn py_str(v: &PyValue) -> String {
    match v {
        PyValue::Str(s) => s.clone(),
        other => other.repr(),
    }
}
