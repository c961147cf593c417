//! `barman cron`: per server (sorted, active, enabled), under its cron lock,
//! WAL intake and retention enforcement (commands/delete.rs). Barman
//! spawns one background `archive-wal` per server; we run the intake of
//! every server in this process through one shared pipeline, under the same
//! archive-wal locks, so a busy host drains all its servers with one bounded
//! pool instead of one interpreter per server. As with Barman's quiet
//! children, per-file lines go to the log only; refused files and failures
//! are reported as errors.

use super::{check_backup, delete, Ctx};
use crate::catalog::lock::{self, Lock, LockError, LockNames};
use crate::output::Output;
use crate::wal::archiver::{self, Report, ServerIntake};

struct Logged<'a>(&'a mut Output);

impl Report for Logged<'_> {
    fn line(&mut self, text: &str) {
        log::info!("{}", text.trim_start());
    }
    fn error(&mut self, text: &str) {
        self.0.error(text);
    }
    fn warning(&mut self, text: &str) {
        self.0.warning(text);
    }
}

pub fn run(ctx: &mut Ctx, keep_descriptors: bool) {
    super::config_update::from_cron(ctx);
    let Some(names) = ctx.select(None) else {
        return;
    };
    let lock_dir = ctx.config.lock_directory.clone();
    let locks = LockNames { dir: &lock_dir };
    // Barman reports skipped servers while it builds the list, first.
    let mut servers = Vec::new();
    for name in names {
        let Some(cfg) = ctx.config.servers.get(&name).cloned() else {
            continue;
        };
        if !cfg.active() {
            ctx.out.info(&format!("Skipping inactive server '{name}'"));
        } else if cfg.disabled() {
            ctx.out
                .info(&format!("Skipping temporarily disabled server '{name}'"));
        } else {
            servers.push(cfg);
        }
    }
    let mut held: Vec<Lock> = Vec::new();
    let mut cron_locks: Vec<Lock> = Vec::new();
    let mut checks = Vec::new();
    let mut intakes = Vec::new();
    for cfg in servers {
        let name = cfg.name.clone();
        let cron_lock = match lock::acquire(&locks.cron(&name), false) {
            Ok(l) => l,
            Err(LockError::Busy { .. }) => {
                ctx.out.info(&format!(
                    "Another cron process is already running on server {name}. Skipping to the next server"
                ));
                continue;
            }
            Err(e) => {
                ctx.out.error(&e.to_string());
                continue;
            }
        };
        if crate::passive::is_passive(&cfg) {
            // A passive node pulls from its primary instead of archiving.
            crate::passive::cron::sync_cron(
                &mut ctx.out,
                &cfg,
                &lock_dir,
                &ctx.config.file,
                keep_descriptors,
            );
        } else {
            archive_and_stream(
                ctx,
                &cfg,
                &lock_dir,
                keep_descriptors,
                &mut intakes,
                &mut held,
            );
        }
        let cat = crate::catalog::ServerCatalog::new(&cfg);
        // Barman announces the check and runs it in a child, concurrently
        // with archiving; we run it once this run's WAL is archived.
        if let Some(b) = check_backup::cron_candidate(&cat, &lock_dir) {
            ctx.out.info_nolog(&format!(
                "Starting check-backup for backup {} of server {name}",
                b.id
            ));
            checks.push((cat.clone(), b));
        }
        // Retention runs whether or not archive-wal could start, under the
        // cron lock, as Barman's does (it also keeps it in-process).
        let env = delete::Env {
            cfg: &cfg,
            cat: &cat,
            config_file: &ctx.config.file,
            lock_dir: &lock_dir,
        };
        delete::enforce_retention(&mut ctx.out, &env);
        cron_locks.push(cron_lock);
    }
    let jobs = intakes.iter().map(|i| i.jobs).max().unwrap_or(1);
    // --keep-descriptors only lets Barman's quiet (-q) children print their
    // warnings and errors; ours always reach the terminal.
    let _ = keep_descriptors;
    archiver::run(&intakes, jobs, false, &mut Logged(&mut ctx.out));
    drop(held);
    for (cat, b) in checks {
        // Barman's child runs with its output discarded (logged only): a
        // JSON writer that is never closed prints nothing.
        let mut quiet = Output::new(crate::output::Format::Json, true, false, false);
        check_backup::check(&mut quiet, &cat, &lock_dir, &b);
    }
    drop(cron_locks);
    if ctx.config.lock_directory_cleanup {
        let _ = lock::cleanup(&lock_dir);
    }
}

/// WAL intake (queued for this run's shared pipeline) and the receiver of
/// one ordinary server.
fn archive_and_stream(
    ctx: &mut Ctx,
    cfg: &crate::config::ServerConfig,
    lock_dir: &std::path::Path,
    keep_descriptors: bool,
    intakes: &mut Vec<ServerIntake>,
    held: &mut Vec<Lock>,
) {
    let name = cfg.name.clone();
    let locks = LockNames { dir: lock_dir };
    match lock::acquire(&locks.archive_wal(&name), false) {
        Ok(archive_lock) => {
            ctx.out
                .info_nolog(&format!("Starting WAL archiving for server {name}"));
            match ServerIntake::from_config(cfg, lock_dir, &ctx.config.file) {
                Ok(i) => {
                    intakes.push(i.with_system_id());
                    held.push(archive_lock);
                }
                Err(e) => ctx.out.error(&e),
            }
        }
        Err(LockError::Busy { .. }) => {
            ctx.out.info(&format!(
                    "Another archive-wal process is already running on server {name}. Skipping to the next server"
                ));
        }
        Err(e) => ctx.out.error(&e.to_string()),
    }
    if cfg.get_bool("streaming_archiver") {
        crate::streaming::process::start_in_background(
            &mut ctx.out,
            lock_dir,
            &ctx.config.file,
            &name,
            keep_descriptors,
        );
    } else {
        let stopped = crate::streaming::process::stop(lock_dir, &name, "receive-wal");
        crate::streaming::process::report(&mut ctx.out, &name, "receive-wal", stopped, false);
    }
}
