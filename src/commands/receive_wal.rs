//! `barman receive-wal SERVER [--stop | --reset | --create-slot
//! [--if-not-exists] | --drop-slot]`: Barman's dispatch (cli.py), the
//! work in `streaming`; and the two commands over the same processes,
//! `list-processes` and `terminate-process`.

use super::{Ctx, Inactive};
use crate::cli::ReceiveWal;
use crate::streaming::{process, receiver, slot};

pub fn run(ctx: &mut Ctx, args: ReceiveWal) {
    let flagged = args.stop || args.reset || args.create_slot || args.drop_slot;
    let inactive = if flagged {
        Inactive::Serve
    } else {
        Inactive::Skip
    };
    let Some(mut cfg) = ctx.server(&args.server_name, inactive) else {
        return;
    };
    apply_wal_overrides(ctx, &mut cfg);
    let lock_dir = ctx.config.lock_directory.clone();
    if args.stop && args.reset {
        ctx.out
            .error("--stop and --reset options are not compatible");
    } else if args.stop {
        let stopped = process::stop(&lock_dir, &cfg.name, "receive-wal");
        process::report(&mut ctx.out, &cfg.name, "receive-wal", stopped, true);
    } else if args.create_slot {
        let action = slot::Action::Create {
            if_not_exists: args.if_not_exists,
        };
        slot::run(&mut ctx.out, &cfg, action);
    } else if args.drop_slot {
        slot::run(&mut ctx.out, &cfg, slot::Action::Drop);
    } else {
        receiver::run(&mut ctx.out, &cfg, &lock_dir, args.reset);
    }
}

/// Barman's `wal_streaming=True` servers: `wal_streaming_conninfo` and
/// `wal_conninfo` take the place of the backup connections.
pub fn apply_wal_overrides(ctx: &mut Ctx, cfg: &mut crate::config::ServerConfig) {
    use crate::config::types::Value;
    let wal_streaming = cfg.get_str("wal_streaming_conninfo").map(str::to_string);
    let wal = cfg.get_str("wal_conninfo").map(str::to_string);
    let mut parts = Vec::new();
    if let Some(ws) = &wal_streaming {
        parts.push(format!("'streaming_conninfo' overridden with '{ws}'"));
        cfg.set("streaming_conninfo", Value::Str(ws.clone()));
    }
    if let Some(c) = wal.as_ref().or(wal_streaming.as_ref()) {
        parts.push(format!("'conninfo' overridden with '{c}'"));
        cfg.set("conninfo", Value::Str(c.clone()));
    }
    if !parts.is_empty() {
        ctx.out.info(&format!(
            "Configuration overrides applied: {}",
            parts.join(" and ")
        ));
    }
}

/// `barman list-processes SERVER`.
pub fn list_processes(ctx: &mut Ctx, server: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let found = process::processes(&ctx.config.lock_directory, &cfg.name);
    if ctx.out.is_json() {
        let list = found
            .iter()
            .map(|(pid, task)| serde_json::json!({"pid": pid, "name": task}))
            .collect();
        ctx.out.json_set(&cfg.name, serde_json::Value::Array(list));
    } else if found.is_empty() {
        ctx.out.info(&format!(
            "No active subprocesses found for server {}.",
            cfg.name
        ));
    } else {
        ctx.out
            .info(&format!("Active subprocesses for server {}:", cfg.name));
        for (pid, task) in found {
            ctx.out.info(&format!("{pid} {task}"));
        }
    }
}

/// `barman terminate-process SERVER TASK`.
pub fn terminate_process(ctx: &mut Ctx, server: &str, task: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let stopped = process::stop(&ctx.config.lock_directory, &cfg.name, task);
    process::report(&mut ctx.out, &cfg.name, task, stopped, true);
}
