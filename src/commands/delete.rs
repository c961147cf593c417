//! `barman delete SERVER BACKUP`, and the deletion cron runs for retention.
//!
//! Order (Barman's, with one change for crash safety): the `delete_this`
//! marker is written first and removed last, after the metadata; so an
//! interrupted deletion leaves marker + metadata behind, and the next cron
//! treats the backup as OBSOLETE and finishes the job (Barman removes the
//! marker before the backup directory and metadata, so a crash there leaves
//! an "orphan" only a human can clean). WAL files go before xlog.db is
//! rewritten, so a rerun finds the same entries again and completes.

use std::path::Path;

use super::{Ctx, Inactive};
use crate::catalog::backup_ext::neighbours;
use crate::catalog::backups::{self, Backup};
use crate::catalog::delete as del;
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::wal_removal::{self, WalError};
use crate::catalog::ServerCatalog;
use crate::config::types::Value;
use crate::config::ServerConfig;
use crate::hooks::{AbortStop, Hooks};
use crate::output::{ctime, human_duration, Output};

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str) {
    // Barman deletes backups of inactive servers, not of disabled ones.
    let Some(cfg) = ctx.server(server, Inactive::Serve) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    let b = match backups::resolve(&list, &cfg.name, backup_id) {
        Ok(b) => b.clone(),
        Err(e) => return ctx.out.error(&e),
    };
    let config_file = ctx.config.file.clone();
    let lock_dir = ctx.config.lock_directory.clone();
    let env = Env {
        cfg: &cfg,
        cat: &cat,
        config_file: &config_file,
        lock_dir: &lock_dir,
    };
    match request(&mut ctx.out, &env, &list, &b) {
        Outcome::Deleted | Outcome::Aborted => {}
        Outcome::Refused => ctx.out.error(&format!(
            "Cannot delete backup ({} {})",
            cfg.name,
            b.info.python_repr()
        )),
    }
}

/// What a deletion needs to know about its server.
pub struct Env<'a> {
    pub cfg: &'a ServerConfig,
    pub cat: &'a ServerCatalog,
    pub config_file: &'a Path,
    pub lock_dir: &'a Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// Refused or failed: Barman then says "Cannot delete backup".
    Refused,
    /// A pre hook asked to stop (reported as Barman's exception).
    Aborted,
}

/// Barman's `Server.delete_backup`: refusals (keep request, minimum
/// redundancy), then under the server's backup lock the backup and every
/// incremental backup depending on it, children first.
fn request(out: &mut Output, env: &Env, list: &[Backup], b: &Backup) -> Outcome {
    let name = &env.cfg.name;
    if b.keep.is_some() {
        out.warning(&format!(
            "Skipping delete of backup {} for server {name} as it has a current keep request. If you really want to delete this backup please remove the keep and try again.",
            b.id
        ));
        return Outcome::Refused;
    }
    let redundancy = del::full_done_count(list);
    let minimum = env.cfg.minimum_redundancy();
    if b.info.status() == "DONE"
        && b.info.get("parent_backup_id").is_none()
        && minimum >= redundancy as i64
    {
        out.warning(&format!(
            "Skipping delete of backup {} for server {name} due to minimum redundancy requirements (minimum redundancy = {minimum}, current redundancy = {redundancy})",
            b.id
        ));
        return Outcome::Refused;
    }
    if b.info.get("children_backup_ids").is_some() {
        out.warning(&format!(
            "Backup {} has incremental backups which depend on it. Deleting all backups in the tree",
            b.id
        ));
    }
    let _backup_lock = match lock::acquire(&LockNames { dir: env.lock_dir }.backup(name), false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            out.error(&format!(
                "Another process in running on server {name}. Impossible to delete the backup."
            ));
            return Outcome::Refused;
        }
        Err(e) => {
            out.error(&e.to_string());
            return Outcome::Refused;
        }
    };
    let mut outcome = Outcome::Refused;
    for id in tree(list, b) {
        // Each deletion changes the neighbours of the next: reload.
        let current = match backups::load(env.cat) {
            Ok(l) => l,
            Err(e) => {
                out.error(&e.to_string());
                return Outcome::Refused;
            }
        };
        let Some(target) = current.iter().find(|x| x.id == id) else {
            continue;
        };
        outcome = perform(out, env, &current, target);
        if outcome != Outcome::Deleted && id != b.id {
            out.error(
                "Failed to delete one of its incremental backups. Make sure all its dependent backups are deletable and try again.",
            );
            break;
        }
    }
    outcome
}

/// The IDs of `b`'s incremental descendants, leaves first, then `b`
/// (Barman's `walk_backups_tree`).
fn tree(list: &[Backup], b: &Backup) -> Vec<String> {
    fn walk(list: &[Backup], b: &Backup, out: &mut Vec<String>) {
        if let Some(children) = b.info.get("children_backup_ids") {
            for id in children.split(',') {
                if let Some(child) = list.iter().find(|x| x.id == id) {
                    if !out.contains(&child.id) && child.id != b.id {
                        walk(list, child, out);
                    }
                }
            }
        }
        out.push(b.id.clone());
    }
    let mut out = Vec::new();
    walk(list, b, &mut out);
    out
}

/// Barman's `perform_delete_backup`: under the backup's ID lock; the lock
/// file goes with the backup.
fn perform(out: &mut Output, env: &Env, list: &[Backup], b: &Backup) -> Outcome {
    let path = LockNames { dir: env.lock_dir }.backup_id(&env.cfg.name, &b.id);
    let id_lock = match lock::acquire(&path, false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            out.error(&format!(
                "Another process is holding the lock for backup {} of server {}.",
                b.id, env.cfg.name
            ));
            return Outcome::Refused;
        }
        Err(e) => {
            out.error(&e.to_string());
            return Outcome::Refused;
        }
    };
    let outcome = delete_backup(out, env, list, b, true);
    if outcome == Outcome::Deleted {
        let _ = std::fs::remove_file(&path);
    }
    drop(id_lock);
    outcome
}

fn aborted(out: &mut Output, phase: &str, name: &str, stop: &AbortStop) {
    out.exception(&format!(
        "Abort '{phase}_{name}' retry hook script ({}, exit code: {})\nSee log file for more details.",
        stop.script,
        crate::hooks::EXIT_ABORT_STOP
    ));
}

/// Barman's `BackupManager.delete_backup`: one backup, no refusal checks
/// (the caller made them, or retention chose it). `skip_if_standalone`:
/// keep WAL when only standalone-kept backups precede (manual delete);
/// retention passes false and removes all but their ranges.
pub fn delete_backup(
    out: &mut Output,
    env: &Env,
    list: &[Backup],
    b: &Backup,
    skip_if_standalone: bool,
) -> Outcome {
    let cat = env.cat;
    let name = &env.cfg.name;
    let marker = del::delete_marker(cat, &b.id);
    let marked = std::fs::create_dir_all(cat.meta_directory())
        .and_then(|_| crate::durable::write_replace(&marker, b"delete", 0o644));
    if let Err(e) = marked {
        out.error(&format!("{}: {e}", marker.display()));
        return Outcome::Refused;
    }
    let start = jiff::ZonedDateTime::now();
    let clock = std::time::Instant::now();
    let hooks = Hooks::new(env.cfg, env.config_file, "delete");
    let hook_env = crate::catalog::backup_ext::hook_env(env.cat, list, b);
    let hook_env_ref: Vec<(&str, String)> = hook_env.iter().map(|(k, v)| (*k, v.clone())).collect();
    if let Err(stop) = hooks.run("pre", "delete", &hook_env_ref, None) {
        // Nothing is deleted yet: no deletion to finish later (Barman
        // leaves the marker, and the next cron deletes the backup anyway).
        let _ = std::fs::remove_file(&marker);
        aborted(out, "pre", "delete_retry_script", &stop);
        return Outcome::Aborted;
    }
    out.info(&format!("Deleting backup {} for server {name}", b.id));
    let remove_wals = del::should_remove_wals(list, b, skip_if_standalone);
    let next = neighbours(list, &b.id).1;
    let base_dir = cat.basebackups_directory.join(&b.id);
    if let Err(e) = del::delete_backup_data(&base_dir, b) {
        out.error(&format!(
            "Failure deleting backup {} for server {name}.\n{e}",
            b.id
        ));
        return Outcome::Refused;
    }
    if let Some(ranges) = remove_wals {
        let concurrent = matches!(env.cfg.get("backup_options"),
            Value::Csv(_, set) if set.contains("concurrent_backup"));
        let until = del::remove_until(list, b, concurrent);
        let timelines = del::timelines_to_protect(list, until, b);
        out.info("Delete associated WAL segments:");
        match remove_wal(out, env, until, &timelines, &ranges) {
            Ok(names) => {
                for n in names {
                    out.info(&format!("\t{n}"));
                }
            }
            Err(WalError::Failed(e)) => {
                out.error(&e);
                return Outcome::Refused;
            }
            Err(WalError::Aborted(stop)) => {
                aborted(out, "pre", "wal_delete_retry_script", &stop);
                return Outcome::Aborted;
            }
        }
    }
    if let Err(e) = del::remove_tree(&base_dir) {
        out.error(&format!(
            "Failure deleting backup {} for server {name}.\n{e}\nPlease manually remove the '{}' directory",
            b.id,
            base_dir.display()
        ));
        return Outcome::Refused;
    }
    let info = cat.meta_directory().join(format!("{}-backup.info", b.id));
    match std::fs::remove_file(&info) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            out.error(&format!(
                "Failure deleting file {} for server {name}.\n{e}\nPlease manually remove the file",
                info.display()
            ));
            return Outcome::Refused;
        }
        _ => {}
    }
    // The metadata is gone for good before the marker goes.
    let _ = crate::durable::sync_dir(&cat.meta_directory());
    let _ = std::fs::remove_file(&marker);
    let _ = crate::durable::sync_dir(&cat.meta_directory());
    out.info(&format!(
        "Deleted backup {} (start time: {}, elapsed time: {})",
        b.id,
        ctime(&start),
        human_duration(clock.elapsed().as_secs_f64())
    ));
    after_delete(out, env, list, b, next);
    let _ = std::fs::remove_file(
        env.lock_dir
            .join(format!(".{name}-{}-sync-backup.lock", b.id)),
    );
    let _ = hooks.run("post", "delete", &hook_env_ref, None);
    Outcome::Deleted
}

/// What Barman updates once a backup is gone: its parent's list of
/// children, and the sizes of the next rsync backup (its hard links to the
/// deleted one's files are now its own).
fn after_delete(out: &mut Output, env: &Env, list: &[Backup], b: &Backup, next: Option<&Backup>) {
    if let Some(parent_id) = b.info.get("parent_backup_id") {
        if let Some(parent) = list.iter().find(|p| p.id == parent_id) {
            let mut info = parent.info.clone();
            let children: Vec<&str> = info
                .get("children_backup_ids")
                .unwrap_or_default()
                .split(',')
                .filter(|c| !c.is_empty() && *c != b.id)
                .collect();
            let joined = (!children.is_empty()).then(|| children.join(","));
            info.set("children_backup_ids", joined);
            if let Err(e) = backups::save_info(env.cat, &parent.id, &info) {
                out.error(&format!("Cannot update backup {}: {e}", parent.id));
            }
        }
    }
    if let Some(next) = next.filter(|n| crate::catalog::backup_ext::backup_type(n) == "rsync") {
        let (size, dedup) = del::backup_sizes(&env.cat.basebackups_directory.join(&next.id), false)
            .unwrap_or((0, 0));
        let mut info = next.info.clone();
        info.set("size", Some(size.to_string()));
        info.set("deduplicated_size", Some(dedup.to_string()));
        if let Err(e) = backups::save_info(env.cat, &next.id, &info) {
            out.error(&format!("Cannot update backup {}: {e}", next.id));
        }
    }
}

/// Barman's `remove_wal_before_backup` for this deletion.
fn remove_wal(
    out: &mut Output,
    env: &Env,
    until: Option<&Backup>,
    timelines: &std::collections::HashSet<i64>,
    ranges: &[(String, String)],
) -> Result<Vec<String>, WalError> {
    wal_removal::remove_wal(
        out,
        env.cfg,
        env.cat,
        env.lock_dir,
        env.config_file,
        until.and_then(|u| u.info.get("begin_wal")),
        timelines,
        ranges,
    )
}

/// Barman's `cron_retention_policy` for one server (mode `auto`): backups
/// with a leftover `delete_this` marker (an interrupted deletion) count as
/// OBSOLETE; every OBSOLETE backup is deleted under its ID lock, WAL
/// included even when only standalone-kept backups precede it.
pub fn enforce_retention(out: &mut Output, env: &Env) {
    let Some(policy) = env.cfg.retention_policy() else {
        return;
    };
    if env.cfg.get_str("retention_policy_mode").unwrap_or("auto") != "auto" {
        return;
    }
    let cat = env.cat;
    let list = match backups::load(cat) {
        Ok(l) => l,
        Err(e) => return out.error(&e.to_string()),
    };
    let mut report = crate::catalog::retention::report(
        &list,
        policy,
        env.cfg.minimum_redundancy(),
        jiff::Timestamp::now(),
    );
    for b in &list {
        let marker = del::delete_marker(cat, &b.id);
        if marker.exists() {
            report.insert(b.id.clone(), crate::catalog::retention::OBSOLETE);
            let _ = std::fs::remove_file(&marker);
        } else if del::is_orphan(cat, b) {
            out.warning(&format!(
                "Backup '{}' is an orphan backup, this is possibly the result of an incomplete delete operation. Please manually delete the following files or directories if present:\n* {} \n* {} \n",
                b.id,
                cat.basebackups_directory.join(&b.id).display(),
                backups::info_path(cat, &b.id).display()
            ));
        }
    }
    sweep_stale_markers(cat, &list);
    let mut obsolete: Vec<&String> = report
        .iter()
        .filter(|(_, s)| **s == crate::catalog::retention::OBSOLETE)
        .map(|(id, _)| id)
        .collect();
    obsolete.sort();
    for id in obsolete {
        let path = LockNames { dir: env.lock_dir }.backup_id(&env.cfg.name, id);
        let id_lock = match lock::acquire(&path, false) {
            Ok(l) => l,
            Err(LockError::Busy { .. }) => {
                out.warning(&format!(
                    "Another action is in progress for the backup {id} of server {}, skipping retention policy application",
                    env.cfg.name
                ));
                continue;
            }
            Err(e) => {
                out.error(&e.to_string());
                continue;
            }
        };
        // Earlier deletions changed the catalog: read it again.
        let current = match backups::load(cat) {
            Ok(l) => l,
            Err(e) => return out.error(&e.to_string()),
        };
        let Some(b) = current.iter().find(|b| &b.id == id) else {
            continue;
        };
        if del::is_orphan(cat, b) {
            out.debug(&format!(
                "Skipping deletion of orphan backup: '{}' at '{}'.",
                b.id,
                cat.basebackups_directory.join(&b.id).display()
            ));
            continue;
        }
        out.info(&format!(
            "Enforcing retention policy: removing backup {id} for server {}",
            env.cfg.name
        ));
        if delete_backup(out, env, &current, b, false) == Outcome::Deleted {
            let _ = std::fs::remove_file(&path);
        }
        drop(id_lock);
    }
}

/// Markers whose backup metadata is gone: a deletion that crashed after
/// removing the metadata (our order removes the marker last). Nothing is
/// left to finish.
fn sweep_stale_markers(cat: &ServerCatalog, list: &[Backup]) {
    let Ok(rd) = std::fs::read_dir(cat.meta_directory()) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix("-delete_this") {
            if !list.iter().any(|b| b.id == id) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
