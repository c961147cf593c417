//! Passive nodes (Barman's geographical redundancy): a server with
//! `primary_ssh_command` never talks to PostgreSQL; its catalog is filled by
//! pulling from another Barman (or barman-rs), the primary, over ssh.
//!
//! ```text
//!  cron ─ssh─▶ primary: `barman sync-info <srv> [last_wal [pos]]` ─▶ primary.info
//!    ├─ spawns `sync-backup <srv> <ID>` (one per run): rsync of base/<ID>/,
//!    │    backup.info SYNCING first, DONE once every file is fsynced
//!    └─ spawns `sync-wals <srv>`: rsync of the listed WAL files, sizes
//!         checked, fsynced, then xlog.db lines, then sync-wals.info
//! ```
//!
//! Layout: `info` is the primary's side (the sync-info document), `remote`
//! runs it on the primary and keeps `primary.info`, `backup` and `wals` are
//! the two workers, `cron` is what `barman cron` does for a passive server.
//! The wire format (sync-info's JSON) and the state files are Barman
//! 3.19.1's, so either tool can be primary or passive for the other.
//!
//! Where barman-rs is stricter than Barman, the formats are unchanged:
//! WAL files are not copied `--inplace` (a killed rsync leaves no partial
//! file under a WAL's name), their sizes are checked against the primary's
//! xlog.db before they are recorded, everything copied is fsynced before it
//! is recorded, names already in xlog.db are not appended twice, state files
//! are written durably, a backup synced again no longer keeps an old
//! `error`, and a last position of 0 (which Barman's own primary refuses)
//! is not sent.

pub mod backup;
pub mod cron;
pub mod info;
pub mod remote;
pub mod wals;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as J};

use crate::catalog::xlogdb::Entry;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;

/// A synchronisation that cannot go on; the text is Barman's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyncError(pub String);

/// Whether the server is a passive node.
pub fn is_passive(cfg: &ServerConfig) -> bool {
    cfg.get_str("primary_ssh_command")
        .is_some_and(|c| !c.trim().is_empty())
}

/// `ERROR: server <s> is not passive` for the sync commands.
pub fn require_passive(cfg: &ServerConfig) -> Result<(), SyncError> {
    if is_passive(cfg) {
        Ok(())
    } else {
        Err(SyncError(format!("server {} is not passive", cfg.name)))
    }
}

/// Python's `str(OSError)` with its path.
fn os_error(e: &std::io::Error, path: &Path) -> String {
    match e.raw_os_error() {
        Some(n) => format!(
            "[Errno {n}] {}: '{}'",
            crate::catalog::strerror(e),
            path.display()
        ),
        None => e.to_string(),
    }
}

/// What the primary said in its last sync-info (`primary.info`).
#[derive(Debug, Clone)]
pub struct PrimaryInfo {
    /// Backup ID → its JSON, in the primary's order.
    pub backups: Vec<(String, Map<String, J>)>,
    pub wals: Vec<Entry>,
    pub last_name: String,
    pub last_position: u64,
    /// The primary's server name, compression and directories.
    pub name: String,
    pub compression: Option<String>,
    pub basebackups_directory: String,
    pub wals_directory: String,
}

impl PrimaryInfo {
    /// Reads a sync-info document.
    pub fn parse(text: &str) -> Result<PrimaryInfo, String> {
        let doc: J = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let obj = doc.as_object().ok_or("not a JSON object")?;
        let config = obj
            .get("config")
            .and_then(J::as_object)
            .ok_or("no 'config' object")?;
        let text_of =
            |m: &Map<String, J>, k: &str| m.get(k).and_then(J::as_str).map(str::to_string);
        let mut backups = Vec::new();
        if let Some(b) = obj.get("backups").and_then(J::as_object) {
            for (id, v) in b {
                let m = v
                    .as_object()
                    .ok_or_else(|| format!("backup {id} is not an object"))?;
                backups.push((id.clone(), m.clone()));
            }
        }
        backups.sort_by(|a, b| a.0.cmp(&b.0));
        let mut wals = Vec::new();
        for w in obj.get("wals").and_then(J::as_array).into_iter().flatten() {
            let m = w.as_object().ok_or("a WAL entry is not an object")?;
            wals.push(Entry {
                name: text_of(m, "name").ok_or("a WAL entry has no name")?,
                size: m.get("size").and_then(J::as_u64).unwrap_or(0),
                time: m.get("time").and_then(J::as_f64).unwrap_or(0.0),
                compression: text_of(m, "compression"),
                encryption: text_of(m, "encryption"),
            });
        }
        Ok(PrimaryInfo {
            backups,
            wals,
            last_name: text_of(obj, "last_name").unwrap_or_default(),
            last_position: obj.get("last_position").and_then(J::as_u64).unwrap_or(0),
            name: text_of(config, "name").unwrap_or_default(),
            compression: text_of(config, "compression"),
            basebackups_directory: text_of(config, "basebackups_directory")
                .ok_or("no config.basebackups_directory")?,
            wals_directory: text_of(config, "wals_directory").ok_or("no config.wals_directory")?,
        })
    }

    pub fn backup(&self, id: &str) -> Option<&Map<String, J>> {
        self.backups.iter().find(|(b, _)| b == id).map(|(_, m)| m)
    }
}

pub fn primary_info_path(cat: &ServerCatalog) -> PathBuf {
    cat.backup_directory.join("primary.info")
}

pub fn sync_wals_info_path(cat: &ServerCatalog) -> PathBuf {
    cat.wals_directory.join("sync-wals.info")
}

/// Loads `primary.info` (Barman's `load_primary_info`).
pub fn load_primary_info(cat: &ServerCatalog) -> Result<PrimaryInfo, SyncError> {
    let path = primary_info_path(cat);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        SyncError(format!(
            "Cannot open primary.info file for server {}: {}",
            cat.name,
            os_error(&e, &path)
        ))
    })?;
    PrimaryInfo::parse(&text).map_err(|why| {
        SyncError(format!(
            "Cannot read primary.info file for server {}: {why}",
            cat.name
        ))
    })
}

/// `sync-wals.info`: the last WAL synced and its position in the
/// primary's xlog.db (None, None when missing).
pub fn load_sync_wals_info(
    cat: &ServerCatalog,
) -> Result<(Option<String>, Option<u64>), SyncError> {
    let path = sync_wals_info_path(cat);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => {
            return Err(SyncError(format!(
                "Cannot open sync-wals.info file for server {}: {}",
                cat.name,
                os_error(&e, &path)
            )))
        }
    };
    let line = text.lines().next().unwrap_or("");
    let (name, pos) = line.split_once('\t').ok_or_else(|| {
        SyncError(format!(
            "Cannot read sync-wals.info file for server {}: '{line}' is not <wal>\\t<position>",
            cat.name
        ))
    })?;
    Ok((Some(name.trim().to_string()), pos.trim().parse().ok()))
}

/// Writes `sync-wals.info` as Barman does (`name\tpos`, no newline), durably.
pub fn save_sync_wals_info(cat: &ServerCatalog, name: &str, pos: u64) -> Result<(), SyncError> {
    let path = sync_wals_info_path(cat);
    crate::durable::write_replace(&path, format!("{name}\t{pos}").as_bytes(), 0o644).map_err(|e| {
        SyncError(format!(
            "Unable to write sync-wals.info file for server {}: {}",
            cat.name,
            os_error(&e, &path)
        ))
    })
}

/// `sync-info` as a command: the primary's side.
pub use info::sync_status;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_info_document_is_read() {
        let text = r#"{"last_position": 338, "last_name": "000000010000000000000006",
            "backups": {"20260102T100000": {"status": "DONE"}, "20260101T100000": {"status": "DONE"}},
            "wals": [{"compression": "gzip", "encryption": null, "name": "000000010000000000000003", "size": 32, "time": 1767265200.5}],
            "version": "3.19.1",
            "config": {"name": "pg", "compression": "gzip", "basebackups_directory": "/p/base", "wals_directory": "/p/wals"}}"#;
        let p = PrimaryInfo::parse(text).unwrap();
        assert_eq!(p.backups[0].0, "20260101T100000");
        assert_eq!(p.wals[0].compression.as_deref(), Some("gzip"));
        assert_eq!(p.wals[0].time, 1767265200.5);
        assert_eq!(p.last_position, 338);
        assert_eq!(p.wals_directory, "/p/wals");
        assert!(PrimaryInfo::parse("Welcome to host\n{}").is_err());
    }
}
