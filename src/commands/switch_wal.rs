//! `barman switch-wal SERVER...|all [--force] [--archive [--archive-timeout N]]`:
//! close the current WAL segment on the server and, with `--archive`, wait
//! until intake has archived it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Ctx;
use crate::catalog::lock::{self, LockNames};
use crate::catalog::xlogdb;
use crate::cli::SwitchWal;
use crate::config::ServerConfig;
use crate::postgres::client;
use crate::wal::archiver::{self, drive, ServerIntake};

/// What `pg_switch_wal` did.
enum Switched {
    Closed(String),
    NotRequired,
    Standby,
}

fn switch(
    cfg: &ServerConfig,
    force: bool,
    connect_timeout: Duration,
) -> Result<Switched, SwitchError> {
    let conninfo = cfg.get_str("conninfo").unwrap_or_default();
    let mut c = client::connect(conninfo, Some(connect_timeout)).map_err(SwitchError::Failed)?;
    let failed = |e: postgres::Error| SwitchError::Failed(client::pg_error_text(&e));
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), \
             (SELECT rolsuper OR pg_has_role(current_user, 'pg_checkpoint', 'MEMBER') \
              FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .map_err(failed)?;
    let (standby, may_checkpoint): (bool, Option<bool>) = (row.get(0), row.get(1));
    if force {
        if may_checkpoint != Some(true) {
            return Err(SwitchError::Checkpoint);
        }
        let _ = c.batch_execute("CHECKPOINT");
    }
    if standby {
        return Ok(Switched::Standby);
    }
    let current = "SELECT pg_walfile_name(pg_current_wal_insert_lsn())";
    let pre: String = c.query_one(current, &[]).map_err(failed)?.get(0);
    c.query_one("SELECT pg_switch_wal()::text", &[])
        .map_err(failed)?;
    let post: String = c.query_one(current, &[]).map_err(failed)?.get(0);
    Ok(if pre < post {
        Switched::Closed(pre)
    } else {
        Switched::NotRequired
    })
}

enum SwitchError {
    /// Why, for the log: Barman's message does not say.
    Failed(String),
    Checkpoint,
}

pub fn run(ctx: &mut Ctx, args: SwitchWal) {
    for cfg in ctx.active_servers(&args.servers.server_name) {
        let name = cfg.name.clone();
        if crate::passive::is_passive(&cfg) {
            // Barman fails here with an EXCEPTION (no connection object).
            ctx.out.error(&format!(
                "switch-wal is not possible on passive server '{name}': it has no PostgreSQL connection"
            ));
            continue;
        }
        let closed = match switch(&cfg, args.force, Duration::from_secs(30)) {
            Ok(Switched::Closed(wal)) => {
                ctx.out.info(&format!(
                    "The WAL file {wal} has been closed on server '{name}'"
                ));
                Some(wal)
            }
            Ok(Switched::NotRequired) => {
                ctx.out
                    .info(&format!("No switch required for server '{name}'"));
                None
            }
            Ok(Switched::Standby) => {
                ctx.out.info(&format!(
                    "No switch performed because server '{name}' is a standby."
                ));
                None
            }
            Err(SwitchError::Checkpoint) => {
                ctx.out.error("Barman switch-wal --force requires superuser rights or the 'pg_checkpoint' role");
                continue;
            }
            Err(SwitchError::Failed(why)) => {
                // Barman says only this; its log says why (FIX: at WARNING, not DEBUG).
                log::warn!("Error issuing pg_switch_wal() on server '{name}': {why}");
                ctx.out.error(&format!(
                    "Unable to perform pg_switch_wal for server '{name}'."
                ));
                continue;
            }
        };
        if args.archive {
            drive::wait_for_wal(
                &mut ctx.out,
                &ctx.config.lock_directory,
                &ctx.config.file,
                &cfg,
                closed,
                args.archive_timeout,
            );
        }
    }
}

/// `check`'s last resort when nothing is archived yet, silently as Barman
/// does: archive what is pending, then switch a WAL and archive it, waiting
/// at most `timeout` seconds. Returns whether something got archived.
pub fn archive_for_check(
    cfg: &ServerConfig,
    lock_dir: &Path,
    config_file: &Path,
    timeout: u64,
) -> bool {
    let Ok(intake) = ServerIntake::from_config(cfg, lock_dir, config_file) else {
        return false;
    };
    let intake = intake.with_system_id();
    let archived = |i: &ServerIntake| !xlogdb::is_empty(&i.catalog);
    let lock_path = LockNames { dir: lock_dir }.archive_wal(&cfg.name);
    let run_intake = || {
        if let Ok(_lock) = lock::acquire(&lock_path, false) {
            archiver::run(
                std::slice::from_ref(&intake),
                intake.jobs,
                false,
                &mut drive::Muted,
            );
        }
    };
    run_intake();
    if archived(&intake) {
        return true;
    }
    if switch(cfg, false, Duration::from_secs(timeout.clamp(2, 30))).is_err() {
        return false;
    }
    let start = Instant::now();
    loop {
        run_intake();
        if archived(&intake) {
            return true;
        }
        if start.elapsed() >= Duration::from_secs(timeout) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
