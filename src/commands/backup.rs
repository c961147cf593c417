//! `barman backup SERVER...|all`: Barman's `Server.backup` around the
//! backup proper ([`crate::backup::take`]): the silent pre-flight check,
//! the directories, identity.json, the backup lock; afterwards an intake
//! pass, the WAL check of the new backup, and the purge of WAL older than a
//! first backup.

use std::io::IsTerminal;

use super::{check, Ctx};
use crate::backup::{self, Host, Options};
use crate::catalog::backup_ext::neighbours;
use crate::catalog::backups;
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::{wal_check, wal_removal, ServerCatalog};
use crate::cli::Backup;
use crate::config::ServerConfig;
use crate::output::Output;
use crate::wal::archiver::drive;

/// Checks whose failure does not stop a backup (Barman's
/// `CheckStrategy.NON_CRITICAL_CHECKS`).
const NON_CRITICAL: &[&str] = &[
    "minimum redundancy requirements",
    "backup maximum age",
    "backup minimum size",
    "failed backups",
    "archiver errors",
    "empty incoming directory",
    "empty streaming directory",
    "incoming WALs directory",
    "streaming WALs directory",
    "wal maximum age",
    "PostgreSQL server is standby",
];

pub fn run(ctx: &mut Ctx, args: Backup) {
    let options = Options {
        name: args.name.clone(),
        wait: args.wait,
        wait_timeout: args.wait_timeout,
        immediate_checkpoint: if args.immediate_checkpoint {
            Some(true)
        } else if args.no_immediate_checkpoint {
            Some(false)
        } else {
            None
        },
        reuse_backup: args.reuse_backup.clone(),
        jobs: args.jobs.map(|j| j as usize),
        bwlimit: args.bwlimit,
        retry_times: if args.no_retry {
            Some(0)
        } else {
            args.retry_times.map(|n| n as i64)
        },
        retry_sleep: args.retry_sleep.map(|n| n as i64),
        keepalive_interval: args.keepalive_interval.map(|n| n as i64),
        manifest: if args.manifest {
            Some(true)
        } else if args.no_manifest {
            Some(false)
        } else {
            None
        },
        progress: !ctx.out.is_quiet() && !ctx.out.is_json() && std::io::stdout().is_terminal(),
    };
    let servers = ctx.active_servers(&args.servers.server_name);
    for mut cfg in servers {
        if let Some(t) = args.check_timeout {
            cfg.set("check_timeout", crate::config::types::Value::Int(t as i64));
        }
        if args.incremental.is_some() {
            ctx.out.error(&format!(
                "failed to start backup: barman-rs does not support incremental backups yet (server {})",
                cfg.name
            ));
            continue;
        }
        let lock_dir = ctx.config.lock_directory.clone();
        let config_file = ctx.config.file.clone();
        let host = Host {
            lock_dir: &lock_dir,
            config_file: &config_file,
        };
        one_server(&mut ctx.out, host, &cfg, &options);
    }
}

/// The critical checks that failed, logged as Barman's CheckStrategy does.
fn preflight(cfg: &ServerConfig, host: Host<'_>) -> bool {
    let mut silent = Output::silent();
    check::check_server(&mut silent, cfg, host.lock_dir, host.config_file);
    let mut ok = true;
    for c in silent.checks().iter().filter(|c| !c.ok) {
        if NON_CRITICAL.contains(&c.check.as_str()) {
            log::info!(
                "Ignoring failed check '{}' for server '{}'",
                c.check,
                cfg.name
            );
        } else {
            log::error!(
                "Check '{}' failed for server '{}'{}",
                c.check,
                cfg.name,
                c.hint
                    .as_ref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            );
            ok = false;
        }
    }
    ok
}

/// identity.json, once, as Barman's `write_identity_file`.
fn write_identity(cat: &ServerCatalog, systemid: &str, version: i64) {
    let path = cat.identity_file();
    if path.exists() {
        return;
    }
    let text = format!(
        "{{\n    \"systemid\": \"{systemid}\",\n    \"version\": \"{}\"\n}}\n",
        version / 10000
    );
    if let Err(e) = crate::durable::write_replace(&path, text.as_bytes(), 0o644) {
        log::error!(
            "Cannot write system Id file for server \"{}\": {e}",
            cat.name
        );
    }
}

pub fn one_server(out: &mut Output, host: Host<'_>, cfg: &ServerConfig, options: &Options) {
    if !preflight(cfg, host) {
        out.error(&format!(
            "Impossible to start the backup. Check the log for more details, or run 'barman check {}'",
            cfg.name
        ));
        return;
    }
    let cat = ServerCatalog::new(cfg);
    if let Err(e) = cat.create_directories(cfg.get_bool("streaming_archiver")) {
        out.error(&e);
        return;
    }
    let conninfo = cfg.get_str("conninfo").unwrap_or_default();
    let systemid =
        match crate::postgres::session::Session::open(conninfo, std::time::Duration::from_secs(30))
            .and_then(|s| s.metadata())
        {
            Ok(m) => {
                if let Some(id) = &m.systemid {
                    write_identity(&cat, id, m.version);
                }
                m.systemid
            }
            Err(_) => None,
        };
    let lock_path = LockNames { dir: host.lock_dir }.backup(&cfg.name);
    let info = {
        let _lock = match lock::acquire(&lock_path, false) {
            Ok(l) => l,
            Err(LockError::Busy { .. }) => {
                out.error("Another backup process is running");
                return;
            }
            Err(e) => {
                out.error(&e.to_string());
                return;
            }
        };
        match backup::take(out, host, cfg, options, systemid) {
            Some(taken) => taken,
            None => return,
        }
    };
    let (id, mut info) = info;
    drive::archive_once(out, host.lock_dir, host.config_file, cfg, false);
    if info.status() == "WAITING_FOR_WALS" {
        if let Some(msg) = wal_check::apply(&cat.wals_directory, &mut info) {
            out.error(&msg);
        }
        if let Err(e) = backups::save_info(&cat, &id, &info) {
            out.error(&format!("{}: {e}", backups::info_path(&cat, &id).display()));
        }
    }
    let list = backups::load(&cat).unwrap_or_default();
    if neighbours(&list, &id).0.is_none() && !cfg.get_bool("worm_mode") {
        if let Some(begin) = info.get("begin_wal") {
            let mut quiet = Output::silent();
            if let Err(e) = wal_removal::remove_wal(
                &mut quiet,
                cfg,
                &cat,
                host.lock_dir,
                host.config_file,
                Some(begin),
                &Default::default(),
                &[],
            ) {
                out.error(&e.to_string());
            }
        }
    }
    if info.status() == "WAITING_FOR_WALS" {
        out.warning(
            "IMPORTANT: this backup is classified as WAITING_FOR_WALS, meaning that Barman has not received yet all the required WAL files for the backup consistency.\n\
             This is a common behaviour in concurrent backup scenarios, and Barman automatically set the backup as DONE once all the required WAL files have been archived.\n\
             Hint: execute the backup command with '--wait'",
        );
    }
}
