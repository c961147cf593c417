//! `barman sync-wals SERVER`: copies the WAL files `primary.info` lists
//! after the last one synced, records them, then moves `sync-wals.info`.
//!
//! Crash protocol: rsync writes each file under a temporary name and
//! renames it (no `--inplace`, unlike Barman), so a WAL's name never holds
//! a partial copy. Each copied file must have the size the primary's
//! xlog.db gives it; then files and their directories are fsynced, then
//! the xlog.db lines are appended (fsynced), then `sync-wals.info` is
//! replaced durably. A crash before the last step re-offers the same WAL
//! files next time: they are copied again (identical) and not recorded
//! twice.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::backup::{rsync, rsync_base};
use super::{
    load_primary_info, load_sync_wals_info, require_passive, save_sync_wals_info, SyncError,
};
use crate::catalog::backups;
use crate::catalog::lock::{self, LockNames};
use crate::catalog::xlogdb::{Entry, XlogDb};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;
use crate::wal::name::{Kind, WalName};

/// A WAL file's path below `wals/` (history files at the top).
fn relpath(name: &str) -> String {
    match WalName::parse(name) {
        Some(w) if w.kind != Kind::History => format!("{}/{name}", w.hash_dir()),
        _ => name.to_string(),
    }
}

/// Whether `name` is a plain segment (not history, backup or partial).
fn is_segment(name: &str) -> bool {
    WalName::parse(name).is_some_and(|w| w.kind == Kind::Segment)
}

pub fn sync_wals(out: &mut Output, cfg: &ServerConfig, lock_dir: &Path) -> Result<(), SyncError> {
    require_passive(cfg)?;
    let name = &cfg.name;
    let _lock = lock::acquire(&LockNames { dir: lock_dir }.sync_wal(name), true).map_err(|_| {
        SyncError(format!(
            "Another sync-wal operation is running for server {name} "
        ))
    })?;
    let failed_with = |e: SyncError| {
        SyncError(format!(
            "WAL synchronisation for server {name} failed with: {e}\n"
        ))
    };
    let cat = ServerCatalog::new(cfg);
    let (last_wal, _) = load_sync_wals_info(&cat).map_err(failed_with)?;
    let primary = load_primary_info(&cat).map_err(failed_with)?;
    let local_compression = cfg.get_str("compression").map(str::to_string);
    if primary.compression != local_compression {
        let show = |c: &Option<String>| c.clone().unwrap_or_else(|| "None".into());
        return Err(failed_with(SyncError(format!(
            "Compression method on server {name} ({}) does not match local compression method ({}) ",
            show(&primary.compression),
            show(&local_compression)
        ))));
    }
    let Some(first_remote) = primary.wals.iter().find(|w| is_segment(&w.name)) else {
        out.info(&format!(
            "No WAL synchronisation required for server {name}"
        ));
        return Ok(());
    };
    let local = backups::load(&cat).map_err(|e| failed_with(SyncError(e.to_string())))?;
    let Some(first_backup) = local
        .iter()
        .find(|b| matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS"))
    else {
        out.warning(&format!("No base backup for server {name}"));
        return Ok(());
    };
    if first_backup.info.get("begin_wal").unwrap_or("") > first_remote.name.as_str() {
        out.warning(&format!(
            "Skipping WAL synchronisation for server {name}: no available local backup for {}",
            first_remote.name
        ));
        return Ok(());
    }
    let todo: Vec<&Entry> = primary
        .wals
        .iter()
        .filter(|w| last_wal.as_deref().is_none_or(|l| w.name.as_str() > l))
        .collect();
    if !todo.is_empty() {
        copy(cfg, &cat, &primary.wals_directory, &todo)
            .map_err(|e| SyncError(format!("WAL synchronisation for server {name} failed: {e}")))?;
        let mut db =
            XlogDb::lock(&cat, lock_dir).map_err(|e| failed_with(SyncError(e.to_string())))?;
        let known: HashSet<String> = db
            .entries()
            .map_err(|e| failed_with(SyncError(e.to_string())))?
            .into_iter()
            .map(|e| e.name)
            .collect();
        let new: Vec<Entry> = todo
            .iter()
            .filter(|e| !known.contains(&e.name))
            .map(|e| (*e).clone())
            .collect();
        db.append(&new)
            .map_err(|e| failed_with(SyncError(e.to_string())))?;
    }
    save_sync_wals_info(&cat, &primary.last_name, primary.last_position).map_err(failed_with)
}

/// rsync of `todo` from the primary's wals directory, then the sizes
/// checked and everything fsynced.
fn copy(
    cfg: &ServerConfig,
    cat: &ServerCatalog,
    remote_wals: &str,
    todo: &[&Entry],
) -> Result<(), String> {
    std::fs::create_dir_all(&cat.wals_directory)
        .map_err(|e| format!("{}: {e}", cat.wals_directory.display()))?;
    let list: String = todo.iter().map(|e| relpath(&e.name) + "\n").collect();
    let mut args = rsync_base(cfg);
    args.extend(
        [
            "--recursive",
            "--perms",
            "--times",
            "--protect-args",
            "--files-from=-",
        ]
        .map(String::from),
    );
    args.push(format!(" :{remote_wals}/"));
    args.push(format!("{}/", cat.wals_directory.display()));
    rsync(&args, Some(&list), false)?;
    let mut dirs = BTreeSet::new();
    for e in todo {
        let path = cat.wals_directory.join(relpath(&e.name));
        let meta = std::fs::metadata(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        if meta.len() != e.size {
            return Err(format!(
                "{} has {} bytes, the primary's xlog.db says {}: not recorded",
                path.display(),
                meta.len(),
                e.size
            ));
        }
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|err| format!("{}: {err}", path.display()))?;
        dirs.insert(crate::durable::parent(&path).to_path_buf());
    }
    dirs.insert(cat.wals_directory.clone());
    for d in dirs {
        crate::durable::sync_dir(&d).map_err(|err| format!("{}: {err}", d.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_files_live_where_barman_puts_them() {
        assert_eq!(
            relpath("000000010000000000000003"),
            "0000000100000000/000000010000000000000003"
        );
        assert_eq!(
            relpath("000000010000000000000003.00000028.backup"),
            "0000000100000000/000000010000000000000003.00000028.backup"
        );
        assert_eq!(relpath("00000002.history"), "00000002.history");
        assert!(is_segment("000000010000000000000003"));
        assert!(!is_segment("00000002.history"));
        assert!(!is_segment("000000010000000000000003.partial"));
    }
}
