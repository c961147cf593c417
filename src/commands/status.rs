//! `barman status SERVER...|all`: live information about PostgreSQL and
//! the catalog, in Barman's `\t<label>: <value>` lines.

use std::time::Duration;

use serde_json::{json, Map, Value as J};

use super::Ctx;
use crate::catalog::backup_ext::{backup_type, copy_done};
use crate::catalog::backups::{self, Backup};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::pretty_size;
use crate::server::Remote;

pub fn run(ctx: &mut Ctx, names: &[String]) {
    let Some(names) = ctx.select(Some(names)) else {
        return;
    };
    for name in names {
        let Some(cfg) = ctx.config.servers.get(&name).cloned() else {
            ctx.out.error(&format!("Unknown server '{name}'"));
            continue;
        };
        let timeout =
            Duration::from_secs(cfg.get_int("check_timeout").unwrap_or(30).clamp(1, 30) as u64);
        // A passive node never talks to PostgreSQL: no PostgreSQL rows.
        let passive = crate::passive::is_passive(&cfg);
        let remote = if passive {
            Remote::default()
        } else {
            Remote::fetch(&cfg, timeout)
        };
        let mut rows: Vec<Row> = Vec::new();
        let yes_no = |b: bool| if b { "True" } else { "False" }.to_string();
        rows.push((
            "description",
            "Description",
            cfg.description().unwrap_or("None").to_string(),
        ));
        rows.push(("active", "Active", yes_no(cfg.active())));
        rows.push(("disabled", "Disabled", yes_no(cfg.disabled())));
        rows.push(("active_model", "Active configuration model", "None".into()));
        let pg = remote.pg.clone().unwrap_or_default();
        match &pg.server_txt_version {
            _ if passive => {}
            None => rows.push((
                "pg_version",
                "PostgreSQL version",
                "FAILED trying to get PostgreSQL version".into(),
            )),
            Some(v) => {
                rows.push(("pg_version", "PostgreSQL version", v.clone()));
                let state = if pg.is_in_recovery == Some(true) {
                    "in archive recovery"
                } else {
                    "in production"
                };
                rows.push(("is_in_recovery", "Cluster state", state.into()));
                if let Some(size) = pg.current_size {
                    rows.push((
                        "current_size",
                        "Current data size",
                        pretty_size(size as f64),
                    ));
                }
                if let Some(dd) = pg.setting("data_directory") {
                    rows.push((
                        "data_directory",
                        "PostgreSQL Data directory",
                        dd.to_string(),
                    ));
                }
                if let Some(x) = &pg.current_xlog {
                    rows.push(("current_xlog", "Current WAL segment", x.clone()));
                }
                if cfg.get_bool("archiver") {
                    if let Some(cmd) = pg.setting("archive_command") {
                        rows.push((
                            "archive_command",
                            "PostgreSQL 'archive_command' setting",
                            cmd.to_string(),
                        ));
                    }
                    let last = match (&pg.last_archived_wal, &pg.last_archived_time) {
                        (Some(w), Some(t)) => format!("{w}, at {}", ctime_of_pg(t)),
                        _ => "No WAL segment shipped yet".into(),
                    };
                    rows.push(("last_archived_wal", "Last archived WAL", last));
                    if let Some(n) = pg.failed_count {
                        let v = match (&pg.last_failed_wal, &pg.last_failed_time) {
                            (Some(w), Some(t)) if n > 0 => {
                                format!("{n} ({w} at {})", ctime_of_pg(t))
                            }
                            _ => n.to_string(),
                        };
                        rows.push(("failed_count", "Failures of WAL archiver", v));
                    }
                    if let Some(rate) = pg.current_archived_wals_per_second {
                        rows.push((
                            "server_archived_wals_per_hour",
                            "Server WAL archiving rate",
                            format!("{:.2}/hour", rate * 3600.0),
                        ));
                    }
                }
            }
        }
        rows.push(("passive_node", "Passive node", yes_no(passive)));
        let retention = match cfg.retention_policy() {
            Some(rp) => format!("enforced (mode: auto, retention: {rp}, WAL retention: MAIN)"),
            None => "not enforced".into(),
        };
        rows.push(("retention_policies", "Retention policies", retention));
        match backups::load(&ServerCatalog::new(&cfg)) {
            Ok(list) => {
                catalog_rows(&mut rows, &BackupCounts::of(&list), &cfg);
                if let Some(ssh) = cfg.get_str("primary_ssh_command").filter(|_| passive) {
                    rows.push((
                        "primary_ssh_command",
                        "SSH command to primary server",
                        ssh.to_string(),
                    ));
                }
            }
            Err(e) => {
                // Barman has printed the lines so far when an unreadable
                // backup.info stops it.
                emit(ctx, &name, &rows);
                ctx.out
                    .exception(&format!("{e}\nSee log file for more details."));
                return;
            }
        }
        emit(ctx, &name, &rows);
    }
}

/// `No. of available backups` to `Minimum redundancy requirements`.
fn catalog_rows(rows: &mut Vec<Row>, counts: &BackupCounts, cfg: &ServerConfig) {
    rows.push((
        "backups_number",
        "No. of available backups",
        counts.done.to_string(),
    ));
    let or_none = |id: &Option<String>| id.clone().unwrap_or_else(|| "None".into());
    rows.push((
        "first_backup",
        "First available backup",
        or_none(&counts.first),
    ));
    rows.push((
        "last_backup",
        "Last available backup",
        or_none(&counts.last),
    ));
    let mr = cfg.minimum_redundancy();
    let n = counts.done_not_incremental;
    let verdict = if n < mr { "FAILED" } else { "satisfied" };
    rows.push((
        "minimum_redundancy",
        "Minimum redundancy requirements",
        format!("{verdict} ({n}/{mr})"),
    ));
}

type Row = (&'static str, &'static str, String);

fn emit(ctx: &mut Ctx, name: &str, rows: &[Row]) {
    if ctx.out.is_json() {
        let mut obj = Map::new();
        for (key, label, value) in rows {
            obj.insert(
                key.to_string(),
                json!({"description": label, "message": value}),
            );
        }
        ctx.out.json_set(name, J::Object(obj));
    } else {
        ctx.out.info_nolog(&format!("Server {name}:"));
        for (_, label, value) in rows {
            ctx.out.info_nolog(&format!("\t{label}: {value}"));
        }
    }
}

/// The catalog lines of Barman's `BackupManager.status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupCounts {
    /// Backups whose status is DONE (WAITING_FOR_WALS ones are not counted).
    pub done: usize,
    /// Lowest and highest ID among DONE and WAITING_FOR_WALS backups
    /// (Barman's default status filter).
    pub first: Option<String>,
    pub last: Option<String>,
    /// DONE backups that are not incremental (full, rsync, snapshot): what
    /// minimum_redundancy is checked against.
    pub done_not_incremental: i64,
}

impl BackupCounts {
    pub fn of(list: &[Backup]) -> BackupCounts {
        let done = || list.iter().filter(|b| b.info.status() == "DONE");
        let available = list.iter().filter(|b| copy_done(b)).map(|b| &b.id);
        BackupCounts {
            done: done().count(),
            first: available.clone().min().cloned(),
            last: available.max().cloned(),
            done_not_incremental: done().filter(|b| backup_type(b) != "incremental").count() as i64,
        }
    }
}

/// `2026-11-25 01:03:12.045985+00` → `Wed Nov 25 01:03:12 2026` in local time.
pub fn ctime_of_pg(ts: &str) -> String {
    match crate::server::python_tz_time(ts)
        .replace(' ', "T")
        .parse::<jiff::Timestamp>()
    {
        Ok(t) => crate::output::ctime(&t.to_zoned_datetime(jiff::tz::TimeZone::system())),
        Err(_) => ts.to_string(),
    }
}
