//! `barman config-update JSON`: validates and queues the changes, applies
//! the queue (src/config/update.rs), then restarts the WAL receiver of each
//! changed server, as Barman 3.19.1 does.

use super::Ctx;
use crate::catalog::lock::{self, LockError};
use crate::config::json::J;
use crate::config::update::{self, UpdateError};
use crate::streaming::process;

/// Python's `json.loads` error text for the common cases.
fn python_json_error(e: &serde_json::Error, text: &str) -> String {
    let msg = e.to_string();
    let kind = if msg.starts_with("trailing characters") {
        "Extra data"
    } else if msg.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else {
        "Expecting value"
    };
    let chars: Vec<char> = text.chars().collect();
    let (line, col) = (e.line().max(1), e.column().max(1));
    let mut pos: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(|l| l.chars().count())
        .sum::<usize>()
        + col
        - 1;
    pos = pos.min(chars.len());
    // Python points at the start of the bad token, serde inside it.
    if kind == "Expecting value" {
        while pos > 0 && chars[pos - 1].is_alphanumeric() {
            pos -= 1;
        }
    }
    let line = chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
    let col = pos
        - chars[..pos]
            .iter()
            .rposition(|c| *c == '\n')
            .map_or(0, |i| i + 1)
        + 1;
    format!("{kind}: line {line} column {col} (char {pos})")
}

/// The lock config-update and cron's queue processing share.
pub fn lock(ctx: &Ctx) -> Result<lock::Lock, (bool, String)> {
    let path = ctx.config.lock_directory.join(".config-update.lock");
    match lock::acquire(&path, false) {
        Ok(l) => Ok(l),
        Err(LockError::Busy { .. }) => Err((true, path.display().to_string())),
        Err(e) => Err((false, e.to_string())),
    }
}

pub fn run(ctx: &mut Ctx, json_changes: &str) {
    let exception = |ctx: &mut Ctx, e: String| {
        ctx.out
            .exception(&format!("{e}\nSee log file for more details."))
    };
    let input = match J::parse(json_changes) {
        Ok(j) => j,
        Err(e) => return exception(ctx, python_json_error(&e, json_changes)),
    };
    let _lock = match lock(ctx) {
        Ok(l) => l,
        Err((_, e)) => return exception(ctx, e),
    };
    if let Some(e) = update::shape_error(&input) {
        return exception(ctx, e);
    }
    match update::validate(&ctx.config, &input) {
        Err(UpdateError::Error(msgs)) => {
            for m in msgs {
                ctx.out.error(&m);
            }
            return;
        }
        Err(UpdateError::Exception(e)) => return exception(ctx, e),
        Ok(sets) => {
            if let Err(e) = update::enqueue(&ctx.config, sets, &mut ctx.out) {
                return exception(ctx, e);
            }
        }
    }
    let applied = match update::process_queue(&ctx.config, &mut ctx.out) {
        Ok(a) => a,
        Err(e) => return exception(ctx, e),
    };
    // The receiver restarts with the new configuration, which it reads
    // when it starts; whether it runs is decided on the one loaded here.
    let lock_dir = ctx.config.lock_directory.clone();
    let config_file = ctx.config.file.clone();
    for set in applied {
        let Some(cfg) = ctx.config.servers.get(&set.section).cloned() else {
            continue;
        };
        if !cfg.active() {
            ctx.out
                .info(&format!("Skipping inactive server '{}'", cfg.name));
            return;
        }
        for w in cfg.warnings.clone() {
            ctx.out.warning(&w);
        }
        let stopped = process::stop(&lock_dir, &cfg.name, "receive-wal");
        process::report(&mut ctx.out, &cfg.name, "receive-wal", stopped, false);
        if cfg.get_bool("streaming_archiver") {
            process::start_in_background(&mut ctx.out, &lock_dir, &config_file, &cfg.name, false);
        }
    }
}

/// cron's first step: the queued changes, if no config-update is running.
pub fn from_cron(ctx: &mut Ctx) {
    match lock(ctx) {
        Ok(_lock) => {
            if let Err(e) = update::process_queue(&ctx.config, &mut ctx.out) {
                ctx.out.error(&e);
            }
        }
        Err((true, _)) => ctx
            .out
            .warning("another process is updating barman configuration files"),
        Err((false, e)) => ctx.out.error(&e),
    }
}
