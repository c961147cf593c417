//! The backups of one server as Barman lists them: `meta/<ID>-backup.info`
//! (Barman ≥ 3.13.2), else the legacy `base/<ID>/backup.info`, plus the keep
//! annotations `meta/<ID>-keep`. Read-only; IDs sort as Barman sorts them.

use std::collections::BTreeMap;
use std::path::Path;

use super::backup_info::{BackupInfo, InfoError};
use super::ServerCatalog;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Info { path: String, source: InfoError },
}

/// One backup in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub id: String,
    pub info: BackupInfo,
    /// `full` or `standalone` when a keep request is recorded.
    pub keep: Option<String>,
}

/// Every backup of `cat`, oldest first.
pub fn load(cat: &ServerCatalog) -> Result<Vec<Backup>, CatalogError> {
    let mut found: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    // Legacy location first: meta/ wins when both exist.
    for entry in read_dir(&cat.basebackups_directory)? {
        let file = entry.join("backup.info");
        if file.is_file() {
            if let Some(id) = entry.file_name().map(|n| n.to_string_lossy().into_owned()) {
                found.insert(id, file);
            }
        }
    }
    for entry in read_dir(&cat.meta_directory())? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(id) = name.strip_suffix("-backup.info") {
            found.insert(id.to_string(), entry);
        }
    }
    let mut out = Vec::new();
    for (id, path) in found {
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let info = BackupInfo::parse(&text).map_err(|source| CatalogError::Info {
            path: path.display().to_string(),
            source,
        })?;
        let keep = std::fs::read_to_string(cat.meta_directory().join(format!("{id}-keep")))
            .ok()
            .map(|k| k.trim().to_string());
        out.push(Backup { id, info, keep });
    }
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, CatalogError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CatalogError::Io {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// Writes a backup's metadata where Barman ≥ 3.13.2 writes it,
/// `meta/<ID>-backup.info`, durably (staged, fsynced, renamed).
pub fn save_info(cat: &ServerCatalog, id: &str, info: &BackupInfo) -> std::io::Result<()> {
    std::fs::create_dir_all(cat.meta_directory())?;
    let path = cat.meta_directory().join(format!("{id}-backup.info"));
    crate::durable::write_replace(&path, info.render().as_bytes(), 0o644)
}

/// The metadata file Barman reads for `id`: meta/, else the legacy one.
pub fn info_path(cat: &ServerCatalog, id: &str) -> std::path::PathBuf {
    let meta = cat.meta_directory().join(format!("{id}-backup.info"));
    let legacy = cat.basebackups_directory.join(id).join("backup.info");
    if meta.exists() || !legacy.exists() {
        meta
    } else {
        legacy
    }
}

/// Statuses Barman's default filter accepts (`STATUS_COPY_DONE`).
fn copy_done(b: &Backup) -> bool {
    matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS")
}

/// `YYYYMMDDTHHMMSS`.
pub fn is_backup_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15 && b[8] == b'T' && b[..8].iter().chain(&b[9..]).all(u8::is_ascii_digit)
}

/// Barman's `parse_backup_id` over `list` (oldest first): the shortcuts
/// `latest`/`last`, `oldest`/`first`, `last-failed` (any substring of it,
/// as Barman's `in ("last-failed")` string test accepts), `latest-full`/
/// `last-full`, an ID, or a backup name. `Err` is Barman's message.
pub fn resolve<'a>(list: &'a [Backup], server: &str, text: &str) -> Result<&'a Backup, String> {
    let id: Option<String> = match text {
        "latest" | "last" => list
            .iter()
            .rev()
            .find(|b| copy_done(b))
            .map(|b| b.id.clone()),
        "oldest" | "first" => list.iter().find(|b| copy_done(b)).map(|b| b.id.clone()),
        t if "last-failed".contains(t) => list
            .iter()
            .rev()
            .find(|b| b.info.status() == "FAILED")
            .map(|b| b.id.clone()),
        "latest-full" | "last-full" => list
            .iter()
            .rev()
            .find(|b| copy_done(b) && b.info.get("parent_backup_id").is_none())
            .map(|b| b.id.clone()),
        t if is_backup_id(t) => Some(t.to_string()),
        name => {
            let named: Vec<&Backup> = list
                .iter()
                .filter(|b| copy_done(b) && b.info.get("backup_name") == Some(name))
                .collect();
            if named.len() > 1 {
                let ids: Vec<&str> = named.iter().map(|b| b.id.as_str()).collect();
                return Err(format!(
                    "Multiple backups found matching name '{name}' (try using backup ID instead): {}",
                    ids.join(" ")
                ));
            }
            named.first().map(|b| b.id.clone())
        }
    };
    id.and_then(|id| list.iter().find(|b| b.id == id))
        .ok_or_else(|| format!("Unknown backup '{text}' for server '{server}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, status: &str, name: Option<&str>) -> Backup {
        let mut text = format!("status={status}\n");
        if let Some(n) = name {
            text.push_str(&format!("backup_name={n}\n"));
        }
        Backup {
            id: id.into(),
            info: BackupInfo::parse(&text).unwrap(),
            keep: None,
        }
    }

    #[test]
    fn shortcuts_ids_and_names_resolve_as_barman() {
        let list = vec![
            b("20260101T000000", "FAILED", None),
            b("20260102T000000", "DONE", Some("first")),
            b("20260103T000000", "DONE", Some("twin")),
            b("20260104T000000", "DONE", Some("twin")),
            b("20260105T000000", "FAILED", None),
        ];
        let id = |t: &str| resolve(&list, "pg", t).map(|b| b.id.clone());
        assert_eq!(id("latest").unwrap(), "20260104T000000");
        assert_eq!(id("oldest").unwrap(), "20260102T000000");
        assert_eq!(id("last-failed").unwrap(), "20260105T000000");
        // Barman tests `shortcut in ("last-failed")`: a substring test.
        assert_eq!(id("fail").unwrap(), "20260105T000000");
        assert_eq!(
            id("first").unwrap(),
            "20260102T000000",
            "a shortcut wins over a name"
        );
        assert_eq!(id("20260101T000000").unwrap(), "20260101T000000");
        assert!(id("twin")
            .unwrap_err()
            .starts_with("Multiple backups found matching name 'twin'"));
        assert_eq!(
            id("nosuch").unwrap_err(),
            "Unknown backup 'nosuch' for server 'pg'"
        );
        assert_eq!(
            id("20991231T000000").unwrap_err(),
            "Unknown backup '20991231T000000' for server 'pg'"
        );
    }
}
