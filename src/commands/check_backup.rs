//! `barman check-backup SERVER BACKUP`: promotes a WAITING_FOR_WALS backup
//! to DONE once its WAL is archived, or marks it FAILED when a WAL file it
//! needs is missing for good (Barman runs it after backups and from cron).

use super::{Ctx, Inactive};
use crate::catalog::backups::{self, Backup};
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::wal_check;
use crate::catalog::ServerCatalog;
use crate::output::Output;

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    match backups::resolve(&list, &cfg.name, backup_id) {
        Ok(b) => check(&mut ctx.out, &cat, &ctx.config.lock_directory, b),
        Err(e) => ctx.out.error(&e),
    }
}

/// Barman's `Server.check_backup` on one backup, reporting through `out`.
pub fn check(out: &mut Output, cat: &ServerCatalog, lock_dir: &std::path::Path, b: &Backup) {
    let server = &cat.name;
    out.debug(&format!("Checking backup {} of server {server}", b.id));
    if b.info.status() == "FAILED" {
        // Checking it could turn a backup that failed copying into DONE.
        return out.error("The validity of a failed backup cannot be checked");
    }
    let path = LockNames { dir: lock_dir }.backup_id(server, &b.id);
    let _lock = match lock::acquire(&path, false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            // Not an error: another process is checking it.
            return out.info(&format!(
                "Another process is holding the lock for backup {} of server {server}.",
                b.id
            ));
        }
        Err(e) => return out.error(&e.to_string()),
    };
    let orig = b.info.status().to_string();
    let Some((status, error)) = wal_check::verdict(&cat.wals_directory, &b.info) else {
        return;
    };
    if status != orig || error.is_some() {
        let mut info = b.info.clone();
        info.set("status", Some(status.to_string()));
        if let Some(e) = &error {
            info.set("error", Some(e.clone()));
        }
        if let Err(e) = backups::save_info(cat, &b.id, &info) {
            return out.error(&format!("Cannot update backup {}: {e}", b.id));
        }
    }
    if let Some(e) = error {
        out.error(&format!(
            "This backup has been marked as FAILED due to the following reason: {e}"
        ));
    }
    if status == orig {
        out.debug(&format!(
            "Check finished: the status of backup {} of server {server} remains {status}",
            b.id
        ));
    } else {
        out.debug(&format!(
            "Check finished: the status of backup {} of server {server} changed from {orig} to {status}",
            b.id
        ));
    }
}

/// Cron's step: the oldest WAITING_FOR_WALS backup of `cat`, if its ID lock
/// is free (Barman's `cron_check_backup` announces it, then checks it in a
/// child process).
pub fn cron_candidate(cat: &ServerCatalog, lock_dir: &std::path::Path) -> Option<Backup> {
    let list = backups::load(cat).ok()?;
    let b = list
        .into_iter()
        .find(|b| b.info.status() == "WAITING_FOR_WALS")?;
    let path = LockNames { dir: lock_dir }.backup_id(&cat.name, &b.id);
    lock::acquire(&path, false).ok().map(|_| b)
}
