//! Removing archived WAL no backup needs (Barman's
//! `remove_wal_before_backup`), for deletions, retention and the purge
//! before a server's first backup: xlog.db read under its lock (rebuilt
//! from `wals/` when missing), the files deleted with the wal_delete hooks,
//! then xlog.db rewritten durably without them. A crash in between leaves
//! records of files already gone, which a rerun deletes again (a missing
//! file counts as deleted); never a file no record names.

use std::collections::HashSet;
use std::path::Path;

use super::delete::{self, WalEvent};
use super::xlogdb::XlogDb;
use super::ServerCatalog;
use crate::config::ServerConfig;
use crate::hooks::{AbortStop, Hooks};
use crate::output::Output;

/// Why WAL removal stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{0}")]
    Failed(String),
    #[error("WAL removal stopped by the wal_delete retry hook script: {}", .0.script)]
    Aborted(AbortStop),
}

/// Barman's `remove_wal_before_backup` under the xlog.db lock: the files
/// first, then xlog.db rewritten without them (durably).
#[allow(clippy::too_many_arguments)]
pub fn remove_wal(
    out: &mut Output,
    cfg: &ServerConfig,
    cat: &ServerCatalog,
    lock_dir: &Path,
    config_file: &Path,
    until_begin: Option<&str>,
    timelines: &HashSet<i64>,
    ranges: &[(String, String)],
) -> Result<Vec<String>, WalError> {
    let mut db = XlogDb::lock(cat, lock_dir).map_err(|e| WalError::Failed(e.to_string()))?;
    let entries = if db.path().exists() {
        db.entries().map_err(|e| WalError::Failed(e.to_string()))?
    } else {
        // Barman rebuilds a missing xlog.db from wals/ on access; an empty
        // one written here would hide every archived file from it.
        let custom = crate::wal::archiver::custom_filters(cfg).map_err(WalError::Failed)?;
        let unidentified = (cfg.get_str("compression") == Some("custom") && custom.magic.is_none())
            .then_some("custom");
        crate::catalog::xlogdb::scan_archive(&cat.wals_directory, &custom, unidentified)
            .map_err(|e| WalError::Failed(format!("{}: {e}", cat.wals_directory.display())))?
    };
    let sel = delete::select_wal(entries.clone(), until_begin, timelines, ranges);
    for name in &sel.invalid {
        out.error(&format!(
            "invalid WAL segment name {}\nHINT: Please run \"barman rebuild-xlogdb {}\" to solve this issue",
            crate::catalog::pylit::repr_str(name),
            cfg.name
        ));
    }
    let hooks = Hooks::new(cfg, config_file, "wal_delete");
    let mut warnings = Vec::new();
    let (deleted, stop) = delete::delete_wal_files(
        &cfg.name,
        &cat.wals_directory,
        &sel.remove,
        &mut |w: &str| warnings.push(w.to_string()),
        &mut |ev: WalEvent| {
            if hooks.is_empty() {
                return Ok(());
            }
            let (e, path, phase, error) = match ev {
                WalEvent::Before(e, p) => (e, p, "pre", None),
                WalEvent::After(e, p, err) => (e, p, "post", err),
            };
            let vars = vec![
                ("BARMAN_SEGMENT", e.name.clone()),
                ("BARMAN_FILE", path.display().to_string()),
                ("BARMAN_SIZE", e.size.to_string()),
                ("BARMAN_TIMESTAMP", crate::output::python_float_repr(e.time)),
                (
                    "BARMAN_COMPRESSION",
                    e.compression.clone().unwrap_or_default(),
                ),
                ("BARMAN_ERROR", error.unwrap_or_default().to_string()),
            ];
            hooks.run(phase, "wal_delete", &vars, None)
        },
    );
    for w in warnings {
        out.warning(&w);
    }
    // xlog.db keeps its order, less what is gone (all of `sel.remove`
    // unless a hook stopped us) and the invalid lines.
    let keep: Vec<_> = entries
        .into_iter()
        .filter(|e| !deleted.contains(&e.name) && !sel.invalid.contains(&e.name))
        .collect();
    db.rewrite(&keep)
        .map_err(|e| WalError::Failed(e.to_string()))?;
    match stop {
        Some(s) => Err(WalError::Aborted(s)),
        None => Ok(deleted),
    }
}
