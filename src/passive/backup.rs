//! `barman sync-backup SERVER BACKUP_ID`: copies one backup of the primary
//! (as listed in `primary.info`) into the local catalog.
//!
//! Order on disk, Barman's: `meta/<ID>-backup.info` with status SYNCING
//! first, then the files (rsync of `base/<ID>/` from the primary), then
//! DONE. barman-rs fsyncs every file and directory copied before it writes
//! DONE, so a crash leaves a SYNCING or FAILED backup (retried by the next
//! cron), never a DONE one with data still in the page cache.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Map, Value as J};

use super::info::info_from_json;
use super::{load_primary_info, require_passive, PrimaryInfo, SyncError};
use crate::catalog::backups::{self, Backup};
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::pylit::PyValue;
use crate::catalog::retention;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;

/// What `check_sync_required` decided.
pub enum Required {
    Sync,
    /// Nothing to do; the message is printed (INFO).
    Nothing(String),
    /// Absent on the primary, FAILED here: purge the local copy.
    Purge(String),
}

/// Barman's `check_sync_required`, in its order.
pub fn check_sync_required(
    cfg: &ServerConfig,
    id: &str,
    primary: &PrimaryInfo,
    local: &[Backup],
) -> Result<Required, SyncError> {
    let name = &cfg.name;
    let mine = local.iter().find(|b| b.id == id);
    let remote = primary.backup(id);
    let Some(remote) = remote else {
        return match mine.map(|b| b.info.status()) {
            None => Err(SyncError(format!("Backup {id} is absent on {name} server"))),
            Some("FAILED") => Ok(Required::Purge(format!(
                "Backup {id} is absent on {name} server and is incomplete locally, purging local backup"
            ))),
            Some("DONE") => Ok(Required::Nothing(format!(
                "Backup {id} is absent on {name} server, but present locally (local copy only)"
            ))),
            Some(other) => Err(SyncError(format!(
                "Backup {id} is absent on {name} server and is {other} locally"
            ))),
        };
    };
    if mine.is_some_and(|b| b.info.status() == "DONE") {
        return Ok(Required::Nothing(format!(
            "Backup {id} is already synced with {name} server"
        )));
    }
    if locally_obsolete(cfg, id, remote, local) {
        return Ok(Required::Nothing(format!(
            "Remote backup {}/{id} is obsolete for local retention policies.",
            primary.name
        )));
    }
    Ok(Required::Sync)
}

/// Barman's `is_backup_locally_obsolete`: the remote backup, added to the
/// local ones, would be OBSOLETE under the local retention policy.
fn locally_obsolete(
    cfg: &ServerConfig,
    id: &str,
    remote: &Map<String, J>,
    local: &[Backup],
) -> bool {
    let Some(policy) = cfg.retention_policy() else {
        return false;
    };
    if cfg.get_str("retention_policy_mode").unwrap_or("auto") != "auto" {
        return false;
    }
    let mut list: Vec<Backup> = local
        .iter()
        .filter(|b| b.info.status() != "EMPTY")
        .filter(|b| b.id != id)
        .cloned()
        .collect();
    let mut info = info_from_json(remote, &cfg.name);
    info.set("status", Some("DONE".into()));
    list.push(Backup {
        id: id.to_string(),
        info,
        keep: None,
    });
    let report = retention::report(
        &list,
        policy,
        cfg.minimum_redundancy(),
        jiff::Timestamp::now(),
    );
    report.get(id).copied() == Some(retention::OBSOLETE)
}

/// Barman's `CommandFailedException` text: `{'ret': N, 'out': '…', 'err': '…'}`.
pub fn failed_repr(code: i32, out: &str, err: &str) -> String {
    PyValue::Dict(vec![
        (PyValue::Str("ret".into()), PyValue::Int(code.into())),
        (PyValue::Str("out".into()), PyValue::Str(out.into())),
        (PyValue::Str("err".into()), PyValue::Str(err.into())),
    ])
    .repr()
}

/// rsync's `-e`, bandwidth and compression options for this server.
pub fn rsync_base(cfg: &ServerConfig) -> Vec<String> {
    let mut args = vec![
        "-e".to_string(),
        cfg.get_str("primary_ssh_command")
            .unwrap_or_default()
            .to_string(),
    ];
    if cfg.get_bool("network_compression") {
        args.push("-z".into());
    }
    if let Some(bw) = cfg.get_int("bandwidth_limit").filter(|b| *b > 0) {
        args.push(format!("--bwlimit={bw}"));
    }
    args
}

/// Runs rsync; Err is Barman's failure text (the dict repr).
pub fn rsync(args: &[String], stdin: Option<&str>, accept_vanished: bool) -> Result<(), String> {
    log::debug!("Command: rsync {}", args.join(" "));
    let mut cmd = Command::new("rsync");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("Unable to execute rsync: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rsync: {e}"))?;
    let code = out.status.code().unwrap_or(255);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let vanished = code == 24
        || (code == 23
            && stderr
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("rsync error:"))
                .all(|l| l.contains("vanished")));
    if code == 0 || (accept_vanished && vanished) {
        Ok(())
    } else {
        Err(failed_repr(
            code,
            &String::from_utf8_lossy(&out.stdout),
            &stderr,
        ))
    }
}

/// `barman sync-backup`: Ok(()) when the backup is synced or nothing was
/// to do; the error is printed by the caller.
pub fn sync_backup(
    out: &mut Output,
    cfg: &ServerConfig,
    lock_dir: &Path,
    config_file: &Path,
    id: &str,
) -> Result<(), SyncError> {
    require_passive(cfg)?;
    let name = &cfg.name;
    let cat = ServerCatalog::new(cfg);
    log::info!("Synchronising with server {name} backup {id}: step 1/3: parse server information");
    let primary = load_primary_info(&cat)?;
    let local = backups::load(&cat).map_err(|e| SyncError(e.to_string()))?;
    match check_sync_required(cfg, id, &primary, &local)? {
        Required::Nothing(msg) => {
            out.info(&msg);
            return Ok(());
        }
        Required::Purge(msg) => {
            out.warning(&msg);
            let b = local
                .iter()
                .find(|b| b.id == id)
                .expect("a local backup to purge");
            let env = crate::commands::delete::Env {
                cfg,
                cat: &cat,
                config_file,
                lock_dir,
            };
            crate::commands::delete::delete_backup(out, &env, &local, b, true);
            return Ok(());
        }
        Required::Sync => {}
    }
    let _lock = match lock::acquire(&LockNames { dir: lock_dir }.sync_backup(name, id), false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            return Err(SyncError(format!(
            "Another synchronisation process for backup {id} of server {name} is already running."
        )))
        }
        Err(e) => return Err(SyncError(e.to_string())),
    };
    let remote = primary.backup(id).expect("checked by check_sync_required");
    let mut info = info_from_json(remote, name);
    info.set("status", Some("SYNCING".into()));
    let save = |info: &crate::catalog::backup_info::BackupInfo| {
        backups::save_info(&cat, id, info)
            .map_err(|e| SyncError(format!("{}: {e}", backups::info_path(&cat, id).display())))
    };
    save(&info)?;

    log::info!("Synchronising with server {name} backup {id}: step 2/3: file copy");
    let dest = cat.basebackups_directory.join(id);
    let copied = std::fs::create_dir_all(&dest)
        .map_err(|e| format!("{}: {e}", dest.display()))
        .and_then(|_| copy_files(cfg, &cat, &primary, remote, id, &local))
        .and_then(|_| {
            crate::catalog::delete::backup_sizes(&dest, true)
                .map_err(|e| format!("{}: {e}", dest.display()))
        });
    match copied {
        Ok(_) => {
            log::info!("Synchronising with server {name} backup {id}: step 3/3: finalise sync");
            info.set("status", Some("DONE".into()));
            info.set("error", None);
            save(&info)
        }
        Err(e) => {
            let msg = format!("failure syncing server {name} backup {id}: {e}");
            info.set("status", Some("FAILED".into()));
            info.set("error", Some(msg.clone()));
            save(&info)?;
            Err(SyncError(msg))
        }
    }
}

/// rsync of the primary's `base/<ID>/` (its `data/` and tablespace
/// directories; the tablespace links and Barman's own files excluded),
/// hard-linking unchanged files to the previous local backup when
/// `reuse_backup = link`.
fn copy_files(
    cfg: &ServerConfig,
    cat: &ServerCatalog,
    primary: &PrimaryInfo,
    remote: &Map<String, J>,
    id: &str,
    local: &[Backup],
) -> Result<(), String> {
    let mut args = rsync_base(cfg);
    let mut excluded = vec!["/backup.info".to_string(), "/.backup.lock".to_string()];
    for t in remote
        .get("tablespaces")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(oid) = t.as_array().and_then(|t| t.get(1)) {
            excluded.push(format!("/data/pg_tblspc/{oid}"));
        }
    }
    for e in &excluded {
        args.push(format!("--exclude={e}"));
        args.push(format!("--filter=P_{e}"));
    }
    args.push("-rLKpts".into());
    args.push("--delete-excluded".into());
    args.push("--delete".into());
    let previous = local
        .iter()
        .rfind(|b| b.id.as_str() < id && matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS"));
    if let (Some("link"), Some(prev)) = (cfg.get_str("reuse_backup"), previous) {
        args.push(format!(
            "--link-dest={}",
            cat.basebackups_directory.join(&prev.id).display()
        ));
    }
    // Barman's ` :path`: rsync takes the blank as the host name and runs
    // `<primary_ssh_command> ' ' rsync --server ...`, the host being in
    // the ssh command already.
    args.push(format!(" :{}/{id}/", primary.basebackups_directory));
    args.push(format!("{}/", cat.basebackups_directory.join(id).display()));
    rsync(&args, None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_barmans() {
        assert_eq!(
            failed_repr(255, "", "fake: reset\n"),
            "{'ret': 255, 'out': '', 'err': 'fake: reset\\n'}"
        );
    }
}
