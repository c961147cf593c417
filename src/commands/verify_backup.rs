//! `barman verify-backup SERVER BACKUP` (alias `verify`): runs PostgreSQL's
//! `pg_verifybackup -n` (found on `path_prefix`, then PATH) on the backup's
//! data directory against its `backup_manifest`, as Barman's
//! `BackupManager.verify_backup` does: its success line on stdout, or
//! Barman's failure line followed by pg_verifybackup's stderr, exit 1.

use std::process::Command;

use super::generate_manifest::{cloud_provider, server_list_repr};
use super::Ctx;
use crate::catalog::backups;
use crate::catalog::ServerCatalog;

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str) {
    // Barman verifies backups of inactive and disabled servers too.
    let Some(cfg) = ctx.server_lenient(server) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    let b = match backups::resolve(&list, &cfg.name, backup_id) {
        Ok(b) => b,
        Err(e) => return ctx.out.error(&e),
    };
    ctx.out.info(&format!(
        "Verifying backup '{backup_id}' on server {}",
        server_list_repr(&cfg)
    ));
    if cloud_provider(&cat.basebackups_directory.to_string_lossy())
        || cloud_provider(&cat.wals_directory.to_string_lossy())
    {
        return ctx
            .out
            .error("Backup verification is not supported for servers using cloud storage");
    }
    ctx.out.info("Calling pg_verifybackup");
    let Some(tool) = crate::server::find_tool(&cfg, &["pg_verifybackup"]).path else {
        return ctx.out.error("pg_verifybackup not found");
    };
    let data = cat.basebackups_directory.join(&b.id).join("data");
    let out = match Command::new(&tool).arg("-n").arg(&data).output() {
        Ok(o) => o,
        Err(e) => {
            return ctx.out.exception(&format!(
                "{}: {e}\nSee log file for more details.",
                tool.display()
            ))
        }
    };
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        ctx.out.info(stdout.trim());
    } else {
        ctx.out.error(&format!(
            "verify backup failure on directory '{}'",
            data.display()
        ));
        // Barman prints the stderr as it came, trailing newline included.
        ctx.out.error(&String::from_utf8_lossy(&out.stderr));
    }
}
