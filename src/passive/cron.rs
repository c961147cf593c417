//! What `barman cron` does for a passive server instead of archiving
//! (Barman's `sync_cron`): ask the primary, start at most one
//! `sync-backup` and one `sync-wals`, in the background.

use std::path::Path;

use super::backup::{check_sync_required, Required};
use super::{load_sync_wals_info, remote};
use crate::catalog::backups;
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;
use crate::streaming::process::spawn_barman;

pub fn sync_cron(
    out: &mut Output,
    cfg: &ServerConfig,
    lock_dir: &Path,
    config_file: &Path,
    keep_descriptors: bool,
) {
    let name = &cfg.name;
    let cat = ServerCatalog::new(cfg);
    let fetched = load_sync_wals_info(&cat).and_then(|(wal, pos)| {
        remote::primary_node_info(out, cfg, config_file, wal.as_deref(), pos)
    });
    let primary = match fetched {
        Ok((p, _)) => p,
        Err(e) => {
            return out.error(&format!("Failed to retrieve the primary node status: {e}"));
        }
    };
    let locks = LockNames { dir: lock_dir };
    let spawn = |out: &mut Output, args: &[&str]| {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        match spawn_barman(config_file, &all, keep_descriptors) {
            Ok(pid) => log::debug!("BarmanSubProcess: subprocess started. pid: {pid}"),
            Err(e) => out.error(&format!("Cannot start {} for server {name}: {e}", args[0])),
        }
    };

    if primary.backups.is_empty() {
        out.info(&format!(
            "No backup synchronisation required for server {name}"
        ));
    } else {
        let local = backups::load(&cat).unwrap_or_default();
        let done: Vec<&str> = local
            .iter()
            .filter(|b| matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS"))
            .map(|b| b.id.as_str())
            .collect();
        for (id, _) in primary
            .backups
            .iter()
            .filter(|(id, _)| !done.contains(&id.as_str()))
        {
            match check_sync_required(cfg, id, &primary, &local) {
                Ok(Required::Sync) => {}
                Ok(_) => continue,
                Err(e) => {
                    out.error(&format!("Unexpected state: {e}"));
                    break;
                }
            }
            match lock::acquire(&locks.sync_backup(name, id), false) {
                Ok(held) => {
                    out.info(&format!("Starting copy of backup {id} for server {name}"));
                    drop(held);
                    spawn(out, &["sync-backup", name, id]);
                }
                Err(LockError::Busy { .. }) => out.info(&format!(
                    "A synchronisation process for backup {id} on server {name} is already in progress"
                )),
                Err(e) => out.error(&e.to_string()),
            }
            // One backup per cron run, as Barman.
            break;
        }
    }

    if primary.wals.is_empty() {
        out.info(&format!(
            "No WAL synchronisation required for server {name}"
        ));
        return;
    }
    // Barman waits here for a sync-wals that is running.
    match lock::acquire(&locks.sync_wal(name), true) {
        Ok(held) => {
            out.info(&format!("Started copy of WAL files for server {name}"));
            drop(held);
            spawn(out, &["sync-wals", name]);
        }
        Err(e) => out.error(&e.to_string()),
    }
}
