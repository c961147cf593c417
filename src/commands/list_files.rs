//! `barman list-files [--target data|standalone|wal|full]
//! [--list-empty-directories] SERVER BACKUP`: the absolute paths of the
//! files a backup is made of, one per line (scripts copy them elsewhere).

use super::Ctx;
use crate::catalog::backup_ext::neighbours;
use crate::catalog::backups;
use crate::catalog::files::{self, Target};
use crate::catalog::xlogdb;
use crate::catalog::ServerCatalog;

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str, target: Target, empty_dirs: bool) {
    // Barman lists backups of inactive and disabled servers too.
    let Some(cfg) = ctx.server_lenient(server) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let result = backups::load(&cat)
        .map_err(|e| e.to_string())
        .and_then(|list| {
            let b = backups::resolve(&list, &cfg.name, backup_id)?;
            // The data files need no xlog.db: read it only for WAL targets.
            let entries = if matches!(target, Target::Wal | Target::Full) {
                xlogdb::XlogDb::lock(&cat, &ctx.config.lock_directory)
                    .and_then(|db| db.entries())
                    .map_err(|e| e.to_string())?
            } else {
                Vec::new()
            };
            let next_end = neighbours(&list, &b.id)
                .1
                .and_then(|n| n.info.get("end_wal"));
            Ok(files::list(
                b,
                &cat.basebackups_directory.join(&b.id),
                &cat.wals_directory,
                next_end,
                &entries,
                target,
                empty_dirs,
            ))
        });
    match result {
        Ok(paths) => {
            for p in paths {
                ctx.out.info_nolog(&p.display().to_string());
            }
        }
        Err(e) => ctx.out.error(&e),
    }
}

impl From<crate::cli::ListFilesTarget> for Target {
    fn from(t: crate::cli::ListFilesTarget) -> Self {
        match t {
            crate::cli::ListFilesTarget::Standalone => Target::Standalone,
            crate::cli::ListFilesTarget::Data => Target::Data,
            crate::cli::ListFilesTarget::Wal => Target::Wal,
            crate::cli::ListFilesTarget::Full => Target::Full,
        }
    }
}
