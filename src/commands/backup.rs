//! `barman backup SERVER...|all`: Barman's `Server.backup` around the
//! backup proper ([`crate::backup::take`]): the silent pre-flight check,
//! the directories, identity.json, the backup lock; afterwards an intake
//! pass, the WAL check of the new backup, and the purge of WAL older than a
//! first backup.

use std::io::IsTerminal;

use super::{check, Ctx};
use crate::backup::incremental;
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
        parents: Default::default(),
    };
    let mut options = options;
    let mut servers = Vec::new();
    for mut cfg in ctx.active_servers(&args.servers.server_name) {
        if crate::passive::is_passive(&cfg) {
            ctx.out
                .info(&format!("Skipping passive server '{}'", cfg.name));
            continue;
        }
        if let Some(t) = args.check_timeout {
            cfg.set("check_timeout", crate::config::types::Value::Int(t as i64));
        }
        if let Some(reference) = &args.incremental {
            // Barman's parse_backup_id: an unknown parent ends the whole
            // command (close_and_exit), servers already listed still run.
            let list = backups::load(&ServerCatalog::new(&cfg)).unwrap_or_default();
            match backups::resolve(&list, &cfg.name, reference) {
                Ok(parent) => {
                    options.parents.insert(cfg.name.clone(), parent.id.clone());
                }
                Err(e) => {
                    ctx.out.error(&e);
                    break;
                }
            }
        }
        servers.push(cfg);
    }
    let lock_dir = ctx.config.lock_directory.clone();
    let config_file = ctx.config.file.clone();
    let host = Host {
        lock_dir: &lock_dir,
        config_file: &config_file,
    };
    if servers.len() <= 1 || ctx.out.is_json() {
        for cfg in &servers {
            one_server(&mut ctx.out, host, cfg, &options);
        }
        return;
    }
    let summary = options.progress;
    let options = Options {
        progress: false,
        ..options
    };
    let results = concurrently(&mut ctx.out, host, &servers, &options);
    if summary {
        ctx.out.info_nolog("Backup summary:");
        for (cfg, (ok, id)) in servers.iter().zip(results) {
            let what = match (ok, id) {
                (true, Some(id)) => format!("backup {id} taken"),
                (false, Some(id)) => format!("backup {id} FAILED"),
                (_, None) => "no backup taken".to_string(),
            };
            ctx.out.info_nolog(&format!("\t{}: {what}", cfg.name));
        }
    }
}

/// Several servers at once: each runs with its own buffered output; at
/// most `bound` copy workers run across all of them (a server waits until
/// its `parallel_jobs` fit). Outputs are printed in server order, each as
/// soon as it and every server before it are done, so the console reads
/// as Barman's one-after-the-other run. Returns (no error, backup ID) per
/// server.
fn concurrently(
    out: &mut Output,
    host: Host<'_>,
    servers: &[ServerConfig],
    options: &Options,
) -> Vec<(bool, Option<String>)> {
    use std::sync::{Condvar, Mutex};
    let jobs_of = |cfg: &ServerConfig| {
        options
            .jobs
            .unwrap_or_else(|| cfg.get_int("parallel_jobs").unwrap_or(1).max(1) as usize)
    };
    let bound = servers
        .iter()
        .map(jobs_of)
        .max()
        .unwrap_or(1)
        .max(crate::pipeline::cores());
    let free = (Mutex::new(bound), Condvar::new());
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut results = vec![(true, None); servers.len()];
    std::thread::scope(|scope| {
        for (i, cfg) in servers.iter().enumerate() {
            let (tx, free) = (tx.clone(), &free);
            let mut buf = out.buffered();
            scope.spawn(move || {
                let need = jobs_of(cfg).min(bound);
                {
                    let mut n = free.0.lock().unwrap_or_else(|p| p.into_inner());
                    while *n < need {
                        n = free.1.wait(n).unwrap_or_else(|p| p.into_inner());
                    }
                    *n -= need;
                }
                let id = one_server(&mut buf, host, cfg, options);
                *free.0.lock().unwrap_or_else(|p| p.into_inner()) += need;
                free.1.notify_all();
                let _ = tx.send((i, buf, id));
            });
        }
        drop(tx);
        let mut ready: Vec<Option<Output>> = (0..servers.len()).map(|_| None).collect();
        let mut next = 0;
        for (i, buf, id) in rx {
            results[i] = (!buf.error_occurred(), id);
            ready[i] = Some(buf);
            while next < ready.len() {
                let Some(b) = ready[next].take() else { break };
                b.replay_into(out);
                next += 1;
            }
        }
    });
    results
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

/// One server's backup, as Barman's `Server.backup`; returns the ID of the
/// backup taken (or attempted).
pub fn one_server(
    out: &mut Output,
    host: Host<'_>,
    cfg: &ServerConfig,
    options: &Options,
) -> Option<String> {
    if let Some(parent) = options.parents.get(&cfg.name) {
        match incremental::validate(cfg, parent) {
            Ok(()) => {}
            Err(incremental::Refusal::Exception(e)) => {
                out.exception(&format!("{e}\nSee log file for more details."));
                return None;
            }
            Err(incremental::Refusal::Invalid(msg)) => {
                out.error(&format!("failed to start backup: {msg}"));
                return None;
            }
        }
    }
    if !preflight(cfg, host) {
        out.error(&format!(
            "Impossible to start the backup. Check the log for more details, or run 'barman check {}'",
            cfg.name
        ));
        return None;
    }
    let cat = ServerCatalog::new(cfg);
    if let Err(e) = cat.create_directories(cfg.get_bool("streaming_archiver")) {
        out.error(&e);
        return None;
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
                return None;
            }
            Err(e) => {
                out.error(&e.to_string());
                return None;
            }
        };
        backup::take(out, host, cfg, options, systemid)?
    };
    let (id, mut info) = info;
    drive::archive_once(
        out,
        host.lock_dir,
        host.config_file,
        cfg,
        drive::Voice::Muted,
    );
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
    if !incremental::checksum_consistent(&cat, &info) {
        out.warning(incremental::CHECKSUM_WARNING);
    }
    if info.status() == "WAITING_FOR_WALS" {
        out.warning(
            "IMPORTANT: this backup is classified as WAITING_FOR_WALS, meaning that Barman has not received yet all the required WAL files for the backup consistency.\n\
             This is a common behaviour in concurrent backup scenarios, and Barman automatically set the backup as DONE once all the required WAL files have been archived.\n\
             Hint: execute the backup command with '--wait'",
        );
    }
    Some(id)
}
