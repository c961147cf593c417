//! `barman switch-wal SERVER...|all [--force] [--archive [--archive-timeout N]]`:
//! close the current WAL segment on the server and, with `--archive`, wait
//! until intake has archived it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::archive_wal::Printed;
use super::Ctx;
use crate::catalog::lock::{self, LockNames};
use crate::catalog::xlogdb;
use crate::cli::SwitchWal;
use crate::config::ServerConfig;
use crate::postgres::client;
use crate::wal::archiver::{self, Report, ServerIntake};
use crate::wal::name::WalName;

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
    let mut c =
        client::connect(conninfo, Some(connect_timeout)).map_err(|_| SwitchError::Failed)?;
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), \
             (SELECT rolsuper OR pg_has_role(current_user, 'pg_checkpoint', 'MEMBER') \
              FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .map_err(|_| SwitchError::Failed)?;
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
    let pre: String = c
        .query_one(current, &[])
        .map_err(|_| SwitchError::Failed)?
        .get(0);
    c.query_one("SELECT pg_switch_wal()::text", &[])
        .map_err(|_| SwitchError::Failed)?;
    let post: String = c
        .query_one(current, &[])
        .map_err(|_| SwitchError::Failed)?
        .get(0);
    Ok(if pre < post {
        Switched::Closed(pre)
    } else {
        Switched::NotRequired
    })
}

enum SwitchError {
    Failed,
    Checkpoint,
}

pub fn run(ctx: &mut Ctx, args: SwitchWal) {
    for cfg in ctx.active_servers(&args.servers.server_name) {
        let name = cfg.name.clone();
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
            Err(SwitchError::Failed) => {
                ctx.out.error(&format!(
                    "Unable to perform pg_switch_wal for server '{name}'."
                ));
                continue;
            }
        };
        if args.archive {
            wait_for_wal(ctx, &cfg, closed, args.archive_timeout);
        }
    }
}

/// Logs intake output instead of printing it (Barman's `muted(output)`).
struct Muted;

impl Report for Muted {
    fn line(&mut self, text: &str) {
        log::debug!("{}", text.trim_start());
    }
    fn error(&mut self, text: &str) {
        log::error!("{text}");
    }
    fn warning(&mut self, text: &str) {
        log::warn!("{text}");
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
                &mut Muted,
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

/// Runs intake until the closed WAL (or, without one, any new WAL) is
/// archived, or the timeout (0: none) passes.
pub fn wait_for_wal(ctx: &mut Ctx, cfg: &ServerConfig, wal: Option<String>, timeout: u64) {
    let lock_dir = ctx.config.lock_directory.clone();
    let config_file = ctx.config.file.clone();
    let intake = match ServerIntake::from_config(cfg, &lock_dir, &config_file) {
        Ok(i) => i.with_system_id(),
        Err(e) => {
            ctx.out.error(&e);
            return;
        }
    };
    let max = if timeout > 0 {
        format!(" (max: {timeout} seconds)")
    } else {
        String::new()
    };
    let newest = |i: &ServerIntake| {
        xlogdb::read_entries(&i.catalog.xlogdb_file())
            .ok()
            .and_then(|v| v.into_iter().map(|e| e.name).max())
    };
    let before = newest(&intake);
    match &wal {
        Some(w) => ctx.out.info(&format!(
            "Waiting for the WAL file {w} from server '{}'{max}",
            cfg.name
        )),
        None => ctx.out.info(&format!(
            "Waiting for a WAL file from server '{}' to be archived{max}",
            cfg.name
        )),
    }
    let start = Instant::now();
    loop {
        let path = LockNames { dir: &lock_dir }.archive_wal(&cfg.name);
        if let Ok(_lock) = lock::acquire(&path, false) {
            archiver::run(
                std::slice::from_ref(&intake),
                intake.jobs,
                false,
                &mut Printed(&mut ctx.out),
            );
        }
        let done = match &wal {
            Some(w) => WalName::parse(w).is_some_and(|n| {
                intake
                    .catalog
                    .wals_directory
                    .join(n.hash_dir())
                    .join(w)
                    .exists()
            }),
            None => newest(&intake) != before,
        };
        if done {
            return;
        }
        if timeout > 0 && start.elapsed() >= Duration::from_secs(timeout) {
            match &wal {
                Some(w) => ctx.out.error(&format!(
                    "The WAL file {w} has not been received in {timeout} seconds"
                )),
                None => ctx.out.info(&format!(
                    "A WAL file has not been received in {timeout} seconds"
                )),
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
