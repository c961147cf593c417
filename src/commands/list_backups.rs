//! `barman list-backups SERVER...|all [--minimal]`: every backup of each
//! server, newest first, with Barman's sizes (the backup plus the WAL it
//! needs; the WAL up to the next backup) and retention markers.

use serde_json::{json, Map, Value as J};

use super::Ctx;
use crate::catalog::backup_ext;
use crate::catalog::backups::{self, Backup};
use crate::catalog::retention;
use crate::catalog::xlogdb::{self, Entry};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::pretty_size;

/// Bytes of the WAL a backup needs (begin..=end) and of the WAL after it
/// until the next backup's end (Barman's `get_wal_info`).
pub fn wal_sizes(backup: &Backup, next_end: Option<&str>, xlogdb: &[Entry]) -> (u64, u64) {
    let w = backup_ext::wal_info(backup, next_end, xlogdb);
    (w.wal_size, w.until_next_size)
}

pub use crate::catalog::backup_ext::backup_type;

/// Python's `datetime.ctime()` of a stored time, in its own offset.
pub fn ctime_of(text: &str) -> String {
    let civil: Option<jiff::civil::DateTime> = text
        .get(..19)
        .and_then(|t| t.replacen(' ', "T", 1).parse().ok());
    civil
        .map(|c| c.strftime("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default()
}

pub fn run(ctx: &mut Ctx, names: &[String], minimal: bool) {
    let Some(list) = ctx.select(Some(names)) else {
        return;
    };
    for name in list {
        let Some(cfg) = ctx.config.servers.get(&name).cloned() else {
            ctx.out.error(&format!("Unknown server '{name}'"));
            continue;
        };
        if let Err(e) = list_server(ctx, &cfg, minimal) {
            ctx.out.error(&e);
        }
    }
}

fn list_server(ctx: &mut Ctx, cfg: &ServerConfig, minimal: bool) -> Result<(), String> {
    let cat = ServerCatalog::new(cfg);
    let all = backups::load(&cat).map_err(|e| e.to_string())?;
    let entries = xlogdb::XlogDb::lock(&cat, &ctx.config.lock_directory)
        .and_then(|db| db.entries())
        .map_err(|e| e.to_string())?;
    let statuses = cfg
        .retention_policy()
        .map(|p| retention::report(&all, p, cfg.minimum_redundancy(), jiff::Timestamp::now()));
    let mut json = Vec::new();
    for (idx, b) in all.iter().enumerate().rev() {
        let status = b.info.status();
        let copy_done = matches!(status, "DONE" | "WAITING_FOR_WALS");
        if minimal {
            if ctx.out.is_json() {
                json.push(J::String(b.id.clone()));
            } else {
                ctx.out.info_nolog(&b.id);
            }
            continue;
        }
        let mut size = b.info.get_int("size").unwrap_or(0).max(0) as u64;
        let mut wal = 0;
        let mut rstatus = None;
        if copy_done {
            let next_end = all[idx + 1..]
                .iter()
                .find(|n| matches!(n.info.status(), "DONE" | "WAITING_FOR_WALS"))
                .and_then(|n| n.info.get("end_wal"));
            let (needed, after) = wal_sizes(b, next_end, &entries);
            size += needed;
            wal = after;
            rstatus = statuses
                .as_ref()
                .and_then(|s| s.get(&b.id).copied())
                .filter(|s| *s != retention::VALID);
        }
        if ctx.out.is_json() {
            let mut o = Map::new();
            o.insert("backup_id".into(), json!(b.id));
            if let Some(n) = b.info.get("backup_name") {
                o.insert("backup_name".into(), json!(n));
            }
            o.insert("backup_type".into(), json!(backup_type(b)));
            if copy_done {
                let end = b.info.get("end_time").unwrap_or_default();
                let ts = retention::parse_time(end)
                    .map(|t| t.as_second())
                    .unwrap_or(0);
                o.insert("end_time_timestamp".into(), json!(ts.to_string()));
                o.insert("end_time".into(), json!(ctime_of(end)));
                o.insert("size_bytes".into(), json!(size));
                o.insert("wal_size_bytes".into(), json!(wal));
                o.insert("size".into(), json!(pretty_size(size as f64)));
                o.insert("wal_size".into(), json!(pretty_size(wal as f64)));
                o.insert(
                    "retention_status".into(),
                    json!(rstatus.unwrap_or(retention::NONE)),
                );
            }
            o.insert("status".into(), json!(status));
            json.push(J::Object(o));
            continue;
        }
        let mut line = format!("{} {}", cfg.name, b.id);
        if let Some(n) = b.info.get("backup_name") {
            line.push_str(&format!(" '{n}'"));
        }
        let kind = backup_type(b)[..1].to_uppercase();
        line.push_str(&format!(" - {kind} - "));
        if copy_done {
            line.push_str(&format!(
                "{} - Size: {} - WAL Size: {}",
                ctime_of(b.info.get("end_time").unwrap_or_default()),
                pretty_size(size as f64),
                pretty_size(wal as f64)
            ));
            if status == "WAITING_FOR_WALS" {
                line.push_str(" - WAITING_FOR_WALS");
            }
            if let Some(r) = rstatus.filter(|r| *r != retention::NONE) {
                line.push_str(&format!(" - {r}"));
            }
        } else {
            line.push_str(status);
        }
        ctx.out.info_nolog(&line);
    }
    if ctx.out.is_json() {
        ctx.out.json_set(&cfg.name, J::Array(json));
    }
    Ok(())
}
