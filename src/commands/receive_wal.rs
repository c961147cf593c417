//! `barman receive-wal SERVER [--stop | --reset | --create-slot
//! [--if-not-exists] | --drop-slot]`: Barman's dispatch (cli.py), the
//! work in `streaming`.

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
        let stopped = process::stop(&lock_dir, &cfg.name);
        process::report(&mut ctx.out, &cfg.name, stopped, true);
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
