//! `barman sync-info`, `sync-backup`, `sync-wals`: the passive-node
//! commands (the work is in `crate::passive`).

use std::io::Write;

use super::{Ctx, Inactive};
use crate::passive;

pub fn info(
    ctx: &mut Ctx,
    server: &str,
    last_wal: Option<&str>,
    last_position: Option<u64>,
    primary: bool,
) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let lock_dir = ctx.config.lock_directory.clone();
    if primary {
        let config_file = ctx.config.file.clone();
        let fetched = passive::require_passive(&cfg).and_then(|_| {
            passive::remote::primary_node_info(
                &mut ctx.out,
                &cfg,
                &config_file,
                last_wal,
                last_position,
            )
        });
        match fetched {
            Ok((_, text)) => {
                // Barman re-dumps what it parsed; the primary's text is that.
                ctx.out.info_nolog(text.trim_end());
            }
            Err(e) => ctx.out.error(&e.to_string()),
        }
        return;
    }
    match passive::sync_status(&cfg, &lock_dir, last_wal, last_position) {
        Ok(doc) => {
            // Straight to stdout with no final newline, as Barman: a
            // passive stores it verbatim as primary.info.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(doc.render().as_bytes());
            let _ = stdout.flush();
        }
        Err(e) => ctx.out.error(&e.to_string()),
    }
}

pub fn backup(ctx: &mut Ctx, server: &str, backup_id: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let lock_dir = ctx.config.lock_directory.clone();
    let config_file = ctx.config.file.clone();
    if let Err(e) =
        passive::backup::sync_backup(&mut ctx.out, &cfg, &lock_dir, &config_file, backup_id)
    {
        ctx.out.error(&e.to_string());
    }
}

pub fn wals(ctx: &mut Ctx, server: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let lock_dir = ctx.config.lock_directory.clone();
    if let Err(e) = passive::wals::sync_wals(&mut ctx.out, &cfg, &lock_dir) {
        ctx.out.error(&e.to_string());
    }
}
