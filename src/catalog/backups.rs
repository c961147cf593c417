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
