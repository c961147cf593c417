//! `barman export-backup SERVER BACKUP_ID DIR [--compression C
//! [--compression-level N]]`: Barman 3.19.1's checks, in its order, then
//! the tarball (src/export).

use super::{Ctx, Inactive};
use crate::catalog::backups;
use crate::catalog::ServerCatalog;
use crate::export::{export_backup, Compression, TransferError};

pub fn run(
    ctx: &mut Ctx,
    server: &str,
    backup_id: &str,
    out_dir: &str,
    compression: Option<&str>,
    level: Option<i64>,
) {
    let Some(cfg) = ctx.server(server, Inactive::Serve) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    let backup = match backups::resolve(&list, &cfg.name, backup_id) {
        Ok(b) => b.clone(),
        Err(e) => return ctx.out.error(&e),
    };
    if backup.info.get("parent_backup_id").is_some() {
        return ctx.out.error(&format!(
            "Cannot export backup {backup_id} from server {}: it is an incremental backup.\nOnly full backups are eligible for exporting.",
            cfg.name
        ));
    }
    if backup.info.status() != "DONE" {
        return ctx.out.error(&format!(
            "Cannot export backup '{backup_id}' from server '{}': backup status is '{}', expected 'DONE'",
            cfg.name,
            backup.info.status()
        ));
    }
    let dir = std::path::Path::new(out_dir);
    if !dir.exists() {
        return ctx
            .out
            .error(&format!("Output directory '{out_dir}' does not exist"));
    }
    if !dir.is_dir() {
        return ctx
            .out
            .error(&format!("Output directory '{out_dir}' is not a directory"));
    }
    if nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_err()
    {
        return ctx.out.error(&format!(
            "Output directory '{out_dir}' does not have the required write and execute permissions"
        ));
    }
    let compression = match (compression, level) {
        (None, Some(_)) => {
            return ctx
                .out
                .error("--compression-level requires --compression to be set")
        }
        (None, None) => None,
        (Some(algo), level) => {
            let valid = if algo == "xz" { 0..=9 } else { 1..=9 };
            if let Some(l) = level.filter(|l| !valid.contains(l)) {
                let list: Vec<String> = valid.map(|v| v.to_string()).collect();
                return ctx.out.error(&format!(
                    "Invalid compression level '{l}' for algorithm '{algo}'. Valid levels are: {}",
                    list.join(", ")
                ));
            }
            Some(match algo {
                "gzip" => Compression::Gzip(level.unwrap_or(9) as u32),
                "bzip2" => Compression::Bzip2(level.unwrap_or(9) as u32),
                _ => Compression::Xz(level.unwrap_or(6) as u32),
            })
        }
    };
    ctx.out.info(&format!(
        "Exporting backup '{backup_id}' from server '{}' to '{out_dir}'",
        cfg.name
    ));
    let lock_dir = ctx.config.lock_directory.clone();
    match export_backup(&cfg, &lock_dir, &backup, out_dir, compression) {
        Ok(path) => ctx
            .out
            .info(&format!("Export completed successfully: {path}")),
        Err(TransferError::Error(e)) => ctx.out.error(&e),
        Err(TransferError::Exception(e)) => ctx
            .out
            .exception(&format!("{e}\nSee log file for more details.")),
    }
}
