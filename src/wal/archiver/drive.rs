//! Intake runs on behalf of other commands: muted (check, backup) or
//! printed (archive-wal, backup --wait, switch-wal --archive), and waiting
//! for a given WAL to arrive.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{run, Report, ServerIntake};
use crate::catalog::lock::{self, LockNames};
use crate::catalog::xlogdb;
use crate::config::ServerConfig;
use crate::output::Output;
use crate::wal::name::WalName;

/// Intake output on the console, as Barman's archiver prints it.
pub struct Printed<'a>(pub &'a mut Output);

impl Report for Printed<'_> {
    fn line(&mut self, text: &str) {
        self.0.info_nolog(text);
    }
    fn error(&mut self, text: &str) {
        self.0.error(text);
    }
    fn warning(&mut self, text: &str) {
        self.0.warning(text);
    }
}

/// Logs intake output instead of printing it (Barman's `muted(output)`).
pub struct Muted;

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

/// How an intake pass on behalf of another command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// Everything logged, nothing printed (`muted(output)`).
    Muted,
    /// Printed only when there was something to archive (`verbose=False`).
    Quiet,
    /// Printed, "No xlog segments found" included.
    Verbose,
}

/// One intake pass for one server under its archive-wal lock (skipped
/// when another process holds it).
pub fn archive_once(
    out: &mut Output,
    lock_dir: &Path,
    config_file: &Path,
    cfg: &ServerConfig,
    voice: Voice,
) {
    let Ok(intake) = ServerIntake::from_config(cfg, lock_dir, config_file) else {
        return;
    };
    let intake = intake.with_system_id();
    let path = LockNames { dir: lock_dir }.archive_wal(&cfg.name);
    if let Ok(_lock) = lock::acquire(&path, false) {
        let servers = std::slice::from_ref(&intake);
        match voice {
            Voice::Verbose => run(servers, intake.jobs, true, &mut Printed(out)),
            Voice::Quiet => run(servers, intake.jobs, false, &mut Printed(out)),
            Voice::Muted => run(servers, intake.jobs, false, &mut Muted),
        };
    }
}

/// Runs intake until the closed WAL (or, without one, any new WAL) is
/// archived, or the timeout (0: none) passes.
pub fn wait_for_wal(
    out: &mut Output,
    lock_dir: &Path,
    config_file: &Path,
    cfg: &ServerConfig,
    wal: Option<String>,
    timeout: u64,
) {
    let intake = match ServerIntake::from_config(cfg, lock_dir, config_file) {
        Ok(i) => i.with_system_id(),
        Err(e) => {
            out.error(&e);
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
        Some(w) => out.info(&format!(
            "Waiting for the WAL file {w} from server '{}'{max}",
            cfg.name
        )),
        None => out.info(&format!(
            "Waiting for a WAL file from server '{}' to be archived{max}",
            cfg.name
        )),
    }
    let start = Instant::now();
    loop {
        let path = LockNames { dir: lock_dir }.archive_wal(&cfg.name);
        if let Ok(_lock) = lock::acquire(&path, false) {
            run(
                std::slice::from_ref(&intake),
                intake.jobs,
                false,
                &mut Printed(out),
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
                Some(w) => out.error(&format!(
                    "The WAL file {w} has not been received in {timeout} seconds"
                )),
                None => out.info(&format!(
                    "A WAL file has not been received in {timeout} seconds"
                )),
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
