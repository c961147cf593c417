//! `barman keep SERVER BACKUP (--target full|standalone | --status | --release)`:
//! the keep annotation `meta/<ID>-keep` that retention policies honour.

use serde_json::json;

use super::{Ctx, Inactive};
use crate::catalog::backups;
use crate::catalog::ServerCatalog;

pub fn run(
    ctx: &mut Ctx,
    server: &str,
    backup: &str,
    target: Option<&str>,
    status: bool,
    release: bool,
) {
    if !(release || status || target.is_some()) {
        ctx.out
            .error("one of the arguments -r/--release -s/--status --target is required");
        return;
    }
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let cat = ServerCatalog::new(&cfg);
    let list = match backups::load(&cat) {
        Ok(l) => l,
        Err(e) => {
            ctx.out.error(&e.to_string());
            return;
        }
    };
    let b = match backups::resolve(&list, &cfg.name, backup) {
        Ok(b) => b,
        Err(e) => {
            ctx.out.error(&e);
            return;
        }
    };
    let keep_file = cat.meta_directory().join(format!("{}-keep", b.id));
    if status {
        let value = b.keep.clone().unwrap_or_else(|| "nokeep".into());
        if ctx.out.is_json() {
            ctx.out.json_set(
                &cfg.name,
                json!({"keep_status": {"description": "Keep", "message": value}}),
            );
        } else {
            ctx.out.info_nolog(&format!("Server {}:", cfg.name));
            ctx.out.info_nolog(&format!("\tKeep: {value}"));
        }
    } else if release {
        match std::fs::remove_file(&keep_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                ctx.out.error(&format!("{}: {e}", keep_file.display()));
            }
            _ => {
                let _ = crate::durable::sync_dir(&cat.meta_directory());
            }
        }
    } else {
        let target = target.expect("checked above");
        if b.info.status() != "DONE" {
            ctx.out.error(&format!(
                "Cannot add keep to backup {} because it has status {}. Only backups with status DONE can be kept.",
                b.id,
                b.info.status()
            ));
            return;
        }
        if b.info.get("parent_backup_id").is_some() {
            ctx.out.error(&format!(
                "Unable to execute the keep command on backup {}: is an incremental backup.\nOnly full backups are eligible for the use of the keep command.",
                b.id
            ));
            return;
        }
        let write = std::fs::create_dir_all(cat.meta_directory())
            .and_then(|_| crate::durable::write_replace(&keep_file, target.as_bytes(), 0o644));
        if let Err(e) = write {
            ctx.out.error(&format!("{}: {e}", keep_file.display()));
        }
    }
}
