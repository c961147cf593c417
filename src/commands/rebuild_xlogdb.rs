//! `barman rebuild-xlogdb SERVER...|all`: rewrite xlog.db from the files in
//! wals/ (sizes, times and codecs read from the files themselves).

use super::Ctx;
use crate::catalog::xlogdb::{self, XlogDb};
use crate::catalog::ServerCatalog;
use crate::wal::archiver::ServerIntake;
use crate::wal::name::{Kind, WalName};

pub fn run(ctx: &mut Ctx, names: &[String]) {
    for cfg in ctx.active_servers(names) {
        let name = cfg.name.clone();
        ctx.out
            .info(&format!("Rebuilding xlogdb for server {name}"));
        let lock_dir = ctx.config.lock_directory.clone();
        let intake = match ServerIntake::from_config(&cfg, &lock_dir, &ctx.config.file) {
            Ok(i) => i,
            Err(e) => {
                ctx.out.error(&e);
                continue;
            }
        };
        match rebuild(&intake.catalog, &intake, &lock_dir) {
            Ok((h, b, w)) => ctx.out.info(&format!(
                "Done rebuilding xlogdb for server {name} (history: {h}, backup_labels: {b}, wal_file: {w})"
            )),
            Err(e) => ctx.out.error(&format!("Cannot rebuild xlogdb for server {name}: {e}")),
        }
    }
}

/// Rebuilds one server's xlog.db; returns (history, backup labels, WAL files).
pub fn rebuild(
    cat: &ServerCatalog,
    intake: &ServerIntake,
    lock_dir: &std::path::Path,
) -> Result<(usize, usize, usize), String> {
    let file = cat.xlogdb_file();
    if !file.exists() {
        std::fs::create_dir_all(&cat.xlogdb_directory).map_err(|e| e.to_string())?;
        // Barman drops the pre-2.x catalog name once the new one exists.
        let legacy = cat.wals_directory.join("xlog.db");
        if legacy.exists() {
            let _ = std::fs::remove_file(legacy);
        }
    }
    let mut db = XlogDb::lock(cat, lock_dir).map_err(|e| e.to_string())?;
    let entries = xlogdb::scan_archive(
        &cat.wals_directory,
        &intake.custom,
        intake.unidentified.as_deref(),
    )
    .map_err(|e| format!("{}: {e}", cat.wals_directory.display()))?;
    db.rewrite(&entries).map_err(|e| e.to_string())?;
    let count = |k: Kind| {
        entries
            .iter()
            .filter(|e| WalName::parse(&e.name).is_some_and(|n| n.kind == k))
            .count()
    };
    Ok((
        count(Kind::History),
        count(Kind::Backup),
        count(Kind::Segment),
    ))
}
