//! Deleting a backup from the catalog, step by step, as Barman's
//! `BackupManager.delete_backup` does: which WAL files may go with it
//! (`should_remove_wals`, `get_timelines_to_protect`,
//! `remove_wal_before_backup`), removing them (a hash directory whole when
//! every file in it goes), the backup's data, its directory and metadata.
//! The command (commands/delete.rs) orders the steps, holds the locks and
//! runs the hooks.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use super::backup_ext::{neighbours, wal_path};
use super::backups::Backup;
use super::xlogdb::Entry;
use super::ServerCatalog;
use crate::wal::name::{Kind, WalName};

/// The annotation that marks a deletion in progress: written first, removed
/// last, so an interrupted deletion is finished by the next cron.
pub fn delete_marker(cat: &ServerCatalog, id: &str) -> PathBuf {
    cat.meta_directory().join(format!("{id}-delete_this"))
}

/// Barman's `should_remove_wals`: WAL may be removed with `backup` only when
/// no older backup needs it for point-in-time recovery, i.e. every older
/// (copy-done) backup is kept `standalone` (and only with
/// `!skip_if_standalone`, retention's case). Returns the inclusive
/// begin..end ranges those standalone backups still need, or None when no
/// WAL may be removed.
pub fn should_remove_wals(
    list: &[Backup],
    backup: &Backup,
    skip_if_standalone: bool,
) -> Option<Vec<(String, String)>> {
    let mut protect = Vec::new();
    let mut prev = neighbours(list, &backup.id).0;
    while let Some(p) = prev {
        if p.keep.as_deref() != Some("standalone") || skip_if_standalone {
            return None;
        }
        protect.push((
            p.info.get("begin_wal").unwrap_or_default().to_string(),
            p.info.get("end_wal").unwrap_or_default().to_string(),
        ));
        prev = neighbours(list, &p.id).0;
    }
    Some(protect)
}

/// Barman's `get_timelines_to_protect`: the timelines of every other backup
/// that may still need WAL (STARTED, WAITING_FOR_WALS, DONE, SYNCING),
/// except the timeline of `remove_until`; nothing without `remove_until`.
pub fn timelines_to_protect(
    list: &[Backup],
    remove_until: Option<&Backup>,
    deleted: &Backup,
) -> HashSet<i64> {
    let Some(until) = remove_until else {
        return HashSet::new();
    };
    let mut set: HashSet<i64> = list
        .iter()
        .filter(|b| b.id != deleted.id)
        .filter(|b| {
            matches!(
                b.info.status(),
                "STARTED" | "WAITING_FOR_WALS" | "DONE" | "SYNCING"
            )
        })
        .filter_map(|b| b.info.get_int("timeline"))
        .collect();
    if let Some(t) = until.info.get_int("timeline") {
        set.remove(&t);
    }
    set
}

/// The xlog.db split the way Barman's `remove_wal_before_backup` splits it.
#[derive(Debug, Default)]
pub struct WalSelection {
    /// Entries that stay, in xlog.db order (the new xlog.db).
    pub keep: Vec<Entry>,
    /// Entries to delete, in xlog.db order.
    pub remove: Vec<Entry>,
    /// Lines whose name is no WAL name: dropped from xlog.db, file left
    /// alone, reported as Barman reports them.
    pub invalid: Vec<String>,
}

/// Everything before `until_begin` (the begin_wal of the backup the WAL is
/// removed up to; None: everything) goes, except history files, files of
/// `timelines` and files inside a protected range (a `.backup` file counts
/// as its segment).
pub fn select_wal(
    entries: Vec<Entry>,
    until_begin: Option<&str>,
    timelines: &HashSet<i64>,
    ranges: &[(String, String)],
) -> WalSelection {
    let mut sel = WalSelection::default();
    for e in entries {
        let Some(name) = WalName::parse(&e.name) else {
            sel.invalid.push(e.name);
            continue;
        };
        let mut keep = name.kind == Kind::History;
        keep |= timelines.contains(&i64::from(name.tli));
        let seg = if name.kind == Kind::Backup {
            &e.name[..24]
        } else {
            e.name.as_str()
        };
        keep |= ranges
            .iter()
            .any(|(b, end)| seg >= b.as_str() && seg <= end.as_str());
        keep |= until_begin.is_some_and(|b| e.name.as_str() >= b);
        if keep {
            sel.keep.push(e);
        } else {
            sel.remove.push(e);
        }
    }
    sel
}

/// How one removed WAL file went, for the wal_delete hooks.
pub enum WalEvent<'a> {
    /// About to delete this file (pre hooks); Err stops the removal.
    Before(&'a Entry, &'a Path),
    /// Deleted, or failed with the message (post hooks).
    After(&'a Entry, &'a Path, Option<&'a str>),
}

/// Deletes the files of `remove` (Barman's `delete_wals`): per hash
/// directory, in order of first appearance, the whole directory when every
/// file in it is to go (or 256 of them), else file by file, removing the
/// directory once empty. A file already gone counts as deleted (a rerun
/// after a crash). Other failures are reported through `warn` and the file
/// still counts, as in Barman. Returns the names deleted, in order; stops
/// early (returning what went so far) when a pre hook asks to stop.
pub fn delete_wal_files<E>(
    server: &str,
    wals: &Path,
    remove: &[Entry],
    warn: &mut dyn FnMut(&str),
    hooks: &mut dyn FnMut(WalEvent) -> Result<(), E>,
) -> (Vec<String>, Option<E>) {
    let mut groups: Vec<(PathBuf, Vec<&Entry>)> = Vec::new();
    for e in remove {
        let path = wal_path(wals, &e.name);
        let dir = path.parent().unwrap_or(wals).to_path_buf();
        match groups.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, list)) => list.push(e),
            None => groups.push((dir, vec![e])),
        }
    }
    let mut deleted = Vec::new();
    for (dir, list) in groups {
        let names: HashSet<&str> = list.iter().map(|e| e.name.as_str()).collect();
        // History files live in wals/ itself, which is never removed whole.
        let whole = dir != wals
            && (list.len() >= 256
                || std::fs::read_dir(&dir).is_ok_and(|rd| {
                    rd.flatten()
                        .all(|f| names.contains(f.file_name().to_string_lossy().as_ref()))
                }));
        if whole {
            for e in &list {
                if let Err(stop) = hooks(WalEvent::Before(e, &wal_path(wals, &e.name))) {
                    return (deleted, Some(stop));
                }
            }
            let err = match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Some(e.to_string()),
                _ => None,
            };
            if let Some(e) = &err {
                warn(&format!("Cannot remove directory {}: {e}", dir.display()));
            }
            for e in &list {
                let _ = hooks(WalEvent::After(e, &wal_path(wals, &e.name), err.as_deref()));
                deleted.push(e.name.clone());
            }
        } else {
            for e in &list {
                let path = wal_path(wals, &e.name);
                if let Err(stop) = hooks(WalEvent::Before(e, &path)) {
                    return (deleted, Some(stop));
                }
                let error = match std::fs::remove_file(&path) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => {
                        Some(super::strerror(&err))
                    }
                    _ => {
                        if dir != wals {
                            // Fails while the directory holds other files.
                            let _ = std::fs::remove_dir(&dir);
                        }
                        None
                    }
                };
                let error = error.map(|why| {
                    let msg = format!(
                        "Ignoring deletion of WAL file {} for server {}: {why}",
                        e.name, server
                    );
                    warn(&msg);
                    msg
                });
                let _ = hooks(WalEvent::After(e, &path, error.as_deref()));
                deleted.push(e.name.clone());
            }
        }
    }
    (deleted, None)
}

/// Barman's `delete_backup_data`: the tablespace directories stored with
/// the backup, then its PGDATA copy (`data/`, legacy `pgdata/`).
pub fn delete_backup_data(base_dir: &Path, backup: &Backup) -> io::Result<()> {
    let legacy = base_dir.join("pgdata").exists();
    if let Some(Ok(super::pylit::PyValue::List(tbs))) =
        backup.info.get("tablespaces").map(super::pylit::parse)
    {
        for t in tbs {
            if let super::pylit::PyValue::Tuple(v) | super::pylit::PyValue::List(v) = t {
                let Some(oid) = v.get(1).map(|o| match o {
                    super::pylit::PyValue::Str(s) => s.clone(),
                    other => other.repr(),
                }) else {
                    continue;
                };
                let dir = if legacy {
                    base_dir.join("pgdata/pg_tblspc").join(oid)
                } else {
                    base_dir.join(oid)
                };
                remove_tree(&dir)?;
            }
        }
    }
    remove_tree(&base_dir.join(if legacy { "pgdata" } else { "data" }))
}

/// `shutil.rmtree` of a path that may not exist.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The backup WAL is removed up to (Barman: the next copy-done backup, or
/// with none left the deleted backup itself under concurrent backup, or
/// nothing, meaning every WAL file).
pub fn remove_until<'a>(
    list: &'a [Backup],
    backup: &'a Backup,
    concurrent: bool,
) -> Option<&'a Backup> {
    match neighbours(list, &backup.id).1 {
        Some(next) => Some(next),
        None if concurrent => Some(backup),
        None => None,
    }
}

/// Barman's `is_orphan`: metadata left without the backup directory (or a
/// legacy directory holding nothing but backup.info): an interrupted delete.
pub fn is_orphan(cat: &ServerCatalog, backup: &Backup) -> bool {
    if backup.info.status() == "EMPTY" {
        return false;
    }
    let dir = cat.basebackups_directory.join(&backup.id);
    let meta = cat
        .meta_directory()
        .join(format!("{}-backup.info", backup.id));
    if meta.exists() {
        return !dir.exists();
    }
    match std::fs::read_dir(&dir) {
        Ok(rd) => {
            let names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
            names.len() == 1 && names[0] == "backup.info"
        }
        Err(_) => false,
    }
}

/// The backups minimum_redundancy counts: DONE and not incremental.
pub fn full_done_count(list: &[Backup]) -> usize {
    list.iter()
        .filter(|b| b.info.status() == "DONE" && b.info.get("parent_backup_id").is_none())
        .count()
}

/// Barman's `_set_backup_sizes`: bytes of every file under `dir`, and of
/// those not hard-linked elsewhere (link count 1); with `fsync`, every file
/// and directory is fsynced on the way (the end of a backup).
pub fn backup_sizes(dir: &Path, fsync: bool) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut size, mut dedup) = (0u64, 0u64);
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(io::Error::other)?;
        let path = entry.path();
        if entry.file_type().is_dir() {
            if fsync {
                crate::durable::sync_dir(path)?;
            }
            continue;
        }
        // os.walk lists symlinks among files; stat follows them.
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if fsync && meta.is_file() {
            std::fs::File::open(path)?.sync_all()?;
        }
        size += meta.len();
        if meta.nlink() == 1 {
            dedup += meta.len();
        }
    }
    Ok((size, dedup))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::backup_info::BackupInfo;

    fn b(id: &str, begin: &str, end: &str, keep: Option<&str>) -> Backup {
        Backup {
            id: id.into(),
            info: BackupInfo::parse(&format!(
                "status=DONE\ntimeline=1\nbegin_wal={begin}\nend_wal={end}\n"
            ))
            .unwrap(),
            keep: keep.map(str::to_string),
        }
    }

    fn e(name: &str) -> Entry {
        Entry {
            name: name.into(),
            size: 1,
            time: 1.0,
            compression: None,
            encryption: None,
        }
    }

    #[test]
    fn wal_goes_only_when_no_older_backup_needs_it() {
        let list = vec![
            b(
                "20260101T000000",
                "000000010000000000000002",
                "000000010000000000000002",
                Some("standalone"),
            ),
            b(
                "20260102T000000",
                "000000010000000000000004",
                "000000010000000000000004",
                None,
            ),
            b(
                "20260103T000000",
                "000000010000000000000006",
                "000000010000000000000006",
                None,
            ),
        ];
        assert_eq!(should_remove_wals(&list, &list[0], true), Some(vec![]));
        assert_eq!(should_remove_wals(&list, &list[2], true), None);
        // Behind only a standalone backup: manual delete keeps the WAL,
        // retention removes it but protects the standalone range.
        assert_eq!(should_remove_wals(&list, &list[1], true), None);
        assert_eq!(
            should_remove_wals(&list, &list[1], false),
            Some(vec![(
                "000000010000000000000002".into(),
                "000000010000000000000002".into()
            )])
        );
        let sel = select_wal(
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "000000010000000000000002.00000028.backup",
                "00000002.history",
                "000000010000000000000003",
                "000000020000000000000003",
                "000000010000000000000006",
                "garbage",
            ]
            .map(e)
            .to_vec(),
            Some("000000010000000000000006"),
            &[2].into(),
            &[(
                "000000010000000000000002".into(),
                "000000010000000000000002".into(),
            )],
        );
        let names = |v: &[Entry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&sel.remove),
            ["000000010000000000000001", "000000010000000000000003"]
        );
        assert_eq!(sel.keep.len(), 5);
        assert_eq!(sel.invalid, ["garbage"]);
    }
}
