//! `barman generate-manifest SERVER BACKUP`: writes the `backup_manifest`
//! of a backup that has none (rsync backups taken without
//! `autogenerate_manifest`), as Barman's `BackupManifest` does: every file
//! of `data/` with its SHA256, in Barman's layout, so Barman and barman-rs
//! generate the same bytes and `pg_verifybackup` can check the backup.
//! Like Barman, it does not look at the backup's status; it refuses when a
//! manifest exists or the storage is in the cloud.

use super::{Ctx, Inactive};
use crate::backup::barman_manifest;
use crate::catalog::backups;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str) {
    // get_server(args): inactive servers skipped, disabled ones an error.
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
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
    if cloud_provider(&cat.basebackups_directory.to_string_lossy()) {
        return ctx.out.error(&format!(
            "Cannot generate backup manifest for backup '{backup_id}' of server '{}' because \
             a cloud backup storage is configured. The manifest generation is only \
             supported for local backup storage.",
            cfg.name
        ));
    }
    let data = cat.basebackups_directory.join(&b.id).join("data");
    match barman_manifest::create(&data) {
        // Barman names the server through its argument list, which
        // get_server has turned into a one-element list by then.
        Ok(_) => ctx.out.info(&format!(
            "Backup manifest for backup '{backup_id}' successfully generated for server {}",
            server_list_repr(&cfg)
        )),
        Err(e) => ctx
            .out
            .exception(&format!("{}\nSee log file for more details.", e.0)),
    }
}

/// `['name']`: how Barman prints `args.server_name` after `get_server`.
pub fn server_list_repr(cfg: &ServerConfig) -> String {
    format!("[{}]", crate::config::types::python_repr_str(&cfg.name))
}

/// Barman's `recognize_cloud_provider`: an `s3://bucket`, `gs://bucket`
/// (or Google console) or Azure Blob Storage URL.
pub fn cloud_provider(url: &str) -> bool {
    const GOOGLE: &str = "https://console.cloud.google.com/storage/browser/";
    let netloc = |u: &str| -> Option<String> {
        let (scheme, rest) = u.split_once("://")?;
        if scheme.is_empty() {
            return None;
        }
        Some(rest.split(['/', '?', '#']).next().unwrap_or("").to_string())
    };
    if url.starts_with("s3://") && netloc(url).is_some_and(|n| !n.is_empty()) {
        return true;
    }
    if url.starts_with(GOOGLE) || url.starts_with("gs://") {
        let gs = url.replacen(GOOGLE, "gs://", 1);
        return netloc(&gs).is_some_and(|n| !n.is_empty());
    }
    // Azure: the host, then at least a `/` (the container may be empty).
    netloc(url).is_some_and(|n| {
        n.ends_with("blob.core.windows.net")
            && url
                .split_once("://")
                .is_some_and(|(_, r)| r[n.len()..].starts_with('/'))
    })
}
