//! `barman archive-wal SERVER`: drain incoming/ (and streaming/) into the
//! archive, under the server's archive-wal lock, printing what Barman prints.

use super::{Ctx, Inactive};
use crate::catalog::lock::{self, LockError, LockNames};
use crate::wal::archiver::{self, drive::Printed, ServerIntake};

pub fn run(ctx: &mut Ctx, name: &str) {
    let Some(cfg) = ctx.server(name, Inactive::Skip) else {
        return;
    };
    let lock_dir = ctx.config.lock_directory.clone();
    let path = LockNames { dir: &lock_dir }.archive_wal(&cfg.name);
    let _lock = match lock::acquire(&path, false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            ctx.out.info(&format!(
                "Another archive-wal process is already running on server {}. Skipping to the next server",
                cfg.name
            ));
            return;
        }
        Err(e) => {
            ctx.out.error(&e.to_string());
            return;
        }
    };
    // A passive node has no archiver (its WAL comes from sync-wals).
    if crate::passive::is_passive(&cfg) {
        return;
    }
    let intake = match ServerIntake::from_config(&cfg, &lock_dir, &ctx.config.file) {
        Ok(i) => i.with_system_id(),
        Err(e) => {
            ctx.out.error(&e);
            return;
        }
    };
    let jobs = intake.jobs;
    archiver::run(&[intake], jobs, true, &mut Printed(&mut ctx.out));
}
