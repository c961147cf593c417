//! PostgreSQL 17+ incremental backups, Barman's way: the parent named by
//! `--incremental`, the four checks Barman makes before anything is
//! written, the parent's `children_backup_ids`, and the warning for a
//! chain that mixes data checksum settings. pg_basebackup does the copy
//! (`--incremental=<parent>/data/backup_manifest`).

use std::path::PathBuf;
use std::time::Duration;

use crate::catalog::backup_info::BackupInfo;
use crate::catalog::{backups, ServerCatalog};
use crate::config::ServerConfig;
use crate::postgres::session::Session;

/// Why an incremental backup cannot start.
#[derive(Debug)]
pub enum Refusal {
    /// One of Barman's checks (printed `ERROR: failed to start backup: …`).
    Invalid(String),
    /// PostgreSQL cannot be asked at all: Barman lets the connection error
    /// escape as an `EXCEPTION:`.
    Exception(String),
}

/// Barman's `_validate_incremental_backup_configs`, in its order.
pub fn validate(cfg: &ServerConfig, parent_id: &str) -> Result<(), Refusal> {
    let conninfo = cfg.get_str("conninfo").unwrap_or_default();
    let session = Session::open(conninfo, Duration::from_secs(30))
        .map_err(|e| Refusal::Exception(e.to_string().lines().next().unwrap_or("").to_string()))?;
    if session.version < 170000 {
        return Err(Refusal::Invalid(
            "Postgres version 17 or greater is required for incremental backups using the Postgres backup method".into(),
        ));
    }
    if cfg.get_str("backup_method") != Some("postgres") {
        return Err(Refusal::Invalid(
            "Backup using the `--incremental` flag is available only for 'backup_method = postgres'. \
             Check Barman's documentation for more help on this topic."
                .into(),
        ));
    }
    if session.show("summarize_wal").ok().flatten().as_deref() != Some("on") {
        return Err(Refusal::Invalid(
            "'summarize_wal' option has to be enabled in the Postgres server to perform an \
             incremental backup using the Postgres backup method"
                .into(),
        ));
    }
    let cat = ServerCatalog::new(cfg);
    let parent = read(&cat, parent_id);
    if parent.as_ref().and_then(|p| p.get("summarize_wal")) != Some("on") {
        return Err(Refusal::Invalid(format!(
            "Backup ID {parent_id} is not eligible as a parent for an incremental backup because \
             WAL summaries were not enabled when that backup was taken."
        )));
    }
    Ok(())
}

/// The parent's manifest pg_basebackup starts from (a tar parent keeps its
/// `backup_manifest` beside `base.tar*` in `data/` too).
pub fn parent_manifest(cat: &ServerCatalog, parent_id: &str) -> PathBuf {
    cat.basebackups_directory
        .join(parent_id)
        .join("data")
        .join("backup_manifest")
}

/// Whether the parent's metadata is readable and not EMPTY.
pub fn parent_exists(cat: &ServerCatalog, id: &str) -> bool {
    read(cat, id).is_some()
}

/// A backup's metadata as on disk now (None when missing, unreadable or
/// EMPTY, as Barman's `get_parent_backup_info`).
fn read(cat: &ServerCatalog, id: &str) -> Option<BackupInfo> {
    let text = std::fs::read_to_string(backups::info_path(cat, id)).ok()?;
    BackupInfo::parse(&text)
        .ok()
        .filter(|i| i.status() != "EMPTY")
}

/// Appends `child` to the parent's `children_backup_ids` (comma-joined,
/// no duplicate check, as Barman) and saves the parent durably.
pub fn register_child(cat: &ServerCatalog, parent_id: &str, child: &str) -> Result<(), String> {
    let Some(mut info) = read(cat, parent_id) else {
        return Ok(());
    };
    let children = match info.get("children_backup_ids") {
        Some(c) if !c.is_empty() && c != "None" => format!("{c},{child}"),
        _ => child.to_string(),
    };
    info.set("children_backup_ids", Some(children));
    backups::save_info(cat, parent_id, &info)
        .map_err(|e| format!("{}: {e}", backups::info_path(cat, parent_id).display()))
}

/// Printed after a backup whose chain mixes checksum settings.
pub const CHECKSUM_WARNING: &str = "This is an incremental backup taken with `data_checksums = on` \
whereas some previous backups in the chain were taken with `data_checksums = off`. This can lead \
to potential recovery issues. Consider taking a new full backup to avoid having inconsistent backup chains.";

/// Barman's `is_checksum_consistent`: false only for an incremental with
/// checksums on whose ancestors (as on disk) include one with them off.
pub fn checksum_consistent(cat: &ServerCatalog, info: &BackupInfo) -> bool {
    if info.get("data_checksums") != Some("on") {
        return true;
    }
    let mut seen = Vec::new();
    let mut next = info.get("parent_backup_id").map(str::to_string);
    while let Some(id) = next.filter(|id| !seen.contains(id)) {
        let Some(parent) = read(cat, &id) else {
            break;
        };
        if parent.get("data_checksums") == Some("off") {
            return false;
        }
        next = parent.get("parent_backup_id").map(str::to_string);
        seen.push(id);
    }
    true
}
