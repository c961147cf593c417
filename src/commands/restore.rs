//! `barman restore` (alias `recover`): the checks Barman's `cli.restore`
//! makes, in its order (targets, backup, status, tablespace rules,
//! destination, options), then [`crate::restore::run`].

use std::collections::BTreeMap;

use super::Ctx;
use crate::catalog::backup_ext::{self, copy_done};
use crate::catalog::backups::{self, Backup};
use crate::catalog::xlogdb;
use crate::catalog::ServerCatalog;
use crate::cli::Restore;
use crate::restore::targets::{self, Targets};
use crate::restore::{self as rs, Request};
use crate::wal::name::parse_lsn;

pub fn run(ctx: &mut Ctx, a: Restore) {
    let Some(cfg) = ctx.server_lenient(&a.server_name) else {
        return;
    };
    let given = [
        a.target_time.is_some(),
        a.target_xid.is_some(),
        a.target_lsn.is_some(),
        a.target_name.is_some(),
        a.target_immediate,
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return ctx
            .out
            .error("You cannot specify multiple targets for the recovery operation");
    }
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    let backup: Backup = if a.backup_id == "auto" {
        match auto_backup(ctx, &cat, &list, &a) {
            Some(b) => b,
            None => return,
        }
    } else {
        match backups::resolve(&list, &cfg.name, &a.backup_id) {
            Ok(b) => b.clone(),
            Err(e) => return ctx.out.error(&e),
        }
    };
    for (opt, v) in [
        ("staging path", &a.staging_path),
        ("recovery staging path", &a.recovery_staging_path),
        ("local staging path", &a.local_staging_path),
    ] {
        if let Some(p) = v.as_deref().filter(|p| !p.starts_with('/')) {
            return ctx.out.error(&format!(
                "Cannot parse {opt}: Invalid value : '{p}' (must be an absolute path)"
            ));
        }
    }
    if a.staging_location.as_deref() == Some("remote") && a.remote_ssh_command.is_none() {
        return ctx
            .out
            .error("--staging-location as remote requires --remote-ssh-command to be set");
    }
    if !copy_done(&backup) {
        return ctx.out.error(&format!(
            "Cannot restore from backup '{}' of server '{}': backup status is not DONE",
            a.backup_id, cfg.name
        ));
    }
    let compressed = backup
        .info
        .get("compression")
        .is_some_and(|c| c != "None" && !c.is_empty());
    if compressed
        && cfg.get_str("staging_path").is_none()
        && a.staging_path.is_none()
        && (a.recovery_staging_path.is_some()
            || cfg.get_str("recovery_staging_path").is_some()
            || a.local_staging_path.is_some()
            || cfg.get_str("local_staging_path").is_some())
    {
        ctx.out.warning(
            "recovery_staging_path and local_staging_path, and their equivalent CLI options \
             --recovery-staging-path and --local-staging-path, are deprecated and will be removed \
             in a future release. Please use staging_path and staging_location, and their \
             equivalent CLI options --staging-path and --staging-location, instead.",
        );
    }
    let mut relocate = BTreeMap::new();
    for rule in &a.tablespace {
        match rule.split_once(':') {
            Some((n, l)) => {
                relocate.insert(n.to_string(), l.to_string());
            }
            None => {
                return ctx.out.error(&format!(
                    "Invalid tablespace relocation rule '{rule}'\nHINT: The valid syntax for a \
                     relocation rule is NAME:LOCATION"
                ))
            }
        }
    }
    let names: Vec<String> = backup_ext::tablespaces(&backup.info)
        .into_iter()
        .map(|t| t.name)
        .collect();
    if let Some(bad) = relocate.keys().find(|n| !names.contains(n)) {
        return ctx.out.error(&format!(
            "Invalid tablespace name '{bad}'\nHINT: Please use any of the following tablespaces: {}",
            names.join(", ")
        ));
    }
    if a.destination_directory.contains(':') {
        return ctx.out.error(
            "The destination directory parameter cannot contain the ':' character\nHINT: If you \
             want to do a remote recovery you have to use the --remote-ssh-command option",
        );
    }
    let options = cfg.get("recovery_options").to_string();
    let mut get_wal = options.contains("get-wal");
    if a.get_wal {
        get_wal = true;
    } else if a.no_get_wal {
        get_wal = false;
    }
    if a.network_compression && a.remote_ssh_command.is_none() {
        return ctx.out.error(
            "Network compression can only be used with remote recovery.\nHINT: If you want to \
             do a remote recovery you have to use the --remote-ssh-command option",
        );
    }
    let mut delta = options.contains("delta-restore");
    if a.delta_restore {
        delta = true;
    } else if a.no_delta_restore {
        delta = false;
    }
    let staging_location = a
        .staging_location
        .clone()
        .or_else(|| cfg.get_str("staging_location").map(str::to_string));
    if delta {
        if a.remote_ssh_command.is_none() {
            if compressed
                || backup
                    .info
                    .get("parent_backup_id")
                    .is_some_and(|p| p != "None")
            {
                return ctx.out.error(
                    "Cannot restore a backup locally with delta mode when the backup is not plain.",
                );
            }
        } else if staging_location.as_deref() == Some("remote") {
            return ctx.out.error(
                "Cannot restore a backup remotely with delta mode when 'staging_location=remote'.",
            );
        }
    }
    if backup
        .info
        .get("snapshots_info")
        .is_none_or(|s| s == "None")
    {
        if a.snapshot_recovery_instance.is_some() {
            return ctx.out.error(&format!(
                "Backup {} is not a snapshot backup but the following snapshot arguments have \
                 been used: --snapshot-recovery-instance",
                backup.id
            ));
        }
    } else {
        return ctx.out.error(&format!(
            "Backup {} is a snapshot backup: barman-rs does not restore snapshot backups",
            backup.id
        ));
    }
    let jobs = a
        .jobs
        .map(|j| j as usize)
        .or_else(|| cfg.get_int("parallel_jobs").map(|j| j.max(1) as usize))
        .unwrap_or(1);
    let targets = Targets {
        time: a.target_time.clone(),
        xid: a.target_xid.clone(),
        lsn: a.target_lsn.clone(),
        name: a.target_name.clone(),
        immediate: a.target_immediate,
        tli: a.target_tli.clone(),
        exclusive: a.exclusive,
        action: a.target_action.clone(),
    };
    let request = Request {
        cfg: &cfg,
        config_file: &ctx.config.file,
        lock_dir: &ctx.config.lock_directory,
        barman_user: &ctx.config.barman_user,
        list: &list,
        backup: &backup,
        dest: a.destination_directory.clone(),
        wal_dest: a.staging_wal_directory.clone(),
        relocate,
        remote: a.remote_ssh_command.clone(),
        targets,
        standby: a.standby_mode,
        recovery_conf_filename: a.recovery_conf_filename.clone(),
        recovery_option_port: a.recovery_option_port.clone(),
        custom_restore_command: a.restore_command.clone(),
        copy_partial: a.partial_wal,
        get_wal,
        delta,
        jobs,
        staging: std::path::PathBuf::from(
            a.staging_path
                .clone()
                .or_else(|| cfg.get_str("staging_path").map(str::to_string))
                .or_else(|| a.local_staging_path.clone())
                .or_else(|| cfg.get_str("local_staging_path").map(str::to_string))
                .unwrap_or_else(|| "/tmp".into()),
        ),
    };
    rs::run(&mut ctx.out, &request);
}

/// `auto`: the backup Barman picks for the targets given.
fn auto_backup(ctx: &mut Ctx, cat: &ServerCatalog, list: &[Backup], a: &Restore) -> Option<Backup> {
    let done: Vec<&Backup> = list.iter().filter(|b| copy_done(b)).collect();
    let tli = match a.target_tli.as_deref() {
        Some("current") => {
            ctx.out.exception(
                "'current' is not a valid timeline keyword when recovering without a backup_id\n\
                 See log file for more details.",
            );
            return None;
        }
        Some("latest") => {
            let entries = xlogdb::read_entries(&cat.xlogdb_file()).unwrap_or_default();
            targets::latest_timeline(&entries)
        }
        Some(n) => n.parse().ok(),
        None => None,
    };
    let option = if a.target_immediate {
        Some("target_immediate")
    } else if a.target_xid.is_some() {
        Some("target_xid")
    } else if a.target_name.is_some() {
        Some("target_name")
    } else {
        None
    };
    if let Some(o) = option {
        ctx.out.error(&format!(
            "For PITR without a backup_id, the only possible recovery targets are target_time \
             and target_lsn. '{o}' recovery target is not allowed without a backup_id."
        ));
        return None;
    }
    let timeline = |b: &Backup| b.info.get_int("timeline").map(|t| t as u32);
    let tli_ok = |b: &Backup| tli.is_none() || timeline(b) == tli;
    let found = if let Some(text) = &a.target_time {
        let at = match targets::parse_time(text, &jiff::tz::TimeZone::system()) {
            Ok(t) => t.at,
            Err(e) => {
                ctx.out.exception(&format!(
                    "Unable to parse the target time parameter {}: {e}\nSee log file for more \
                     details.",
                    targets::py_str_repr(text)
                ));
                return None;
            }
        };
        done.iter().rev().find(|b| {
            b.info
                .get("end_time")
                .and_then(|e| targets::parse_time(e, &jiff::tz::TimeZone::UTC).ok())
                .is_some_and(|e| e.at.timestamp() <= at.timestamp())
                && tli_ok(b)
        })
    } else if let Some(lsn) = a.target_lsn.as_deref().and_then(parse_lsn) {
        done.iter().rev().find(|b| {
            b.info
                .get("end_xlog")
                .and_then(parse_lsn)
                .is_some_and(|e| e <= lsn)
                && tli_ok(b)
        })
    } else if tli.is_some() {
        done.iter().rev().find(|b| tli_ok(b))
    } else {
        done.last()
    };
    match found {
        Some(b) => Some((*b).clone()),
        None => {
            ctx.out
                .error("Cannot find any candidate backup for recovery.");
            None
        }
    }
}
