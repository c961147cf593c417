//! `barman check SERVER...|all [--nagios] [--check-timeout N]`: Barman's
//! checks, in Barman's order, with its names and hints.

use std::path::Path;
use std::time::Duration;

use super::Ctx;
use crate::catalog::ServerCatalog;
use crate::config::types::Value;
use crate::config::ServerConfig;
use crate::output::{pretty_size, Output};
use crate::server::Remote;

pub fn run(ctx: &mut Ctx, names: &[String], nagios: bool, check_timeout: Option<u64>) {
    if nagios {
        ctx.out.set_nagios();
    }
    let Some(names) = ctx.select(Some(names)) else {
        return;
    };
    for name in names {
        let Some(mut cfg) = ctx.config.servers.get(&name).cloned() else {
            ctx.out.error(&format!("Unknown server '{name}'"));
            continue;
        };
        if let Some(t) = check_timeout {
            cfg.set("check_timeout", Value::Int(t as i64));
        }
        ctx.report_unsupported(&name);
        ctx.out.init_check(&name, cfg.active(), cfg.disabled());
        let lock_dir = ctx.config.lock_directory.clone();
        let config_file = ctx.config.file.clone();
        check_server(&mut ctx.out, &cfg, &lock_dir, &config_file);
    }
}

struct Checker<'a> {
    out: &'a mut Output,
    server: &'a str,
}

impl Checker<'_> {
    fn result(&mut self, check: &str, ok: bool, hint: Option<&str>) {
        self.out.result_check(self.server, check, ok, hint, None);
    }
    fn perf(&mut self, check: &str, hint: &str, perfdata: u64) {
        self.out
            .result_check(self.server, check, true, Some(hint), Some(perfdata));
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                .count()
        })
        .unwrap_or(0)
}

pub(crate) fn check_server(
    out: &mut Output,
    cfg: &ServerConfig,
    lock_dir: &Path,
    config_file: &Path,
) {
    let cat = ServerCatalog::new(cfg);
    let timeout = cfg.get_int("check_timeout").unwrap_or(30);
    let conn_timeout = Duration::from_secs(if timeout <= 0 {
        30
    } else {
        timeout.clamp(2, 30) as u64
    });
    // A passive node never talks to PostgreSQL.
    let passive = crate::passive::is_passive(cfg);
    let remote = if cfg.active() && !passive {
        Remote::fetch(cfg, conn_timeout)
    } else {
        Remote::default()
    };
    let mut c = Checker {
        out,
        server: &cfg.name,
    };

    // WAL archive: shown only when it fails, after trying to archive what
    // is pending and then a WAL switch (Barman's last resort, silent),
    // which needs barman_home for its locks.
    let home = crate::catalog::require_home(&cfg.barman_home).is_ok();
    if crate::catalog::xlogdb::is_empty(&cat)
        && !(cfg.active()
            && home
            && !passive
            && super::switch_wal::archive_for_check(
                cfg,
                lock_dir,
                config_file,
                (timeout.max(0) / 3) as u64,
            ))
    {
        c.result(
            "WAL archive",
            false,
            Some("please make sure WAL shipping is setup"),
        );
    }
    for (dir_name, dir, enabled) in [
        (
            "incoming",
            &cat.incoming_wals_directory,
            cfg.get_bool("archiver"),
        ),
        (
            "streaming",
            &cat.streaming_wals_directory,
            cfg.get_bool("streaming_archiver"),
        ),
    ] {
        let mut count = count_files(dir) as i64;
        if dir_name == "streaming" {
            count -= 1;
        }
        if !enabled {
            if count > 0 {
                let archiver = if dir_name == "incoming" {
                    "archiver"
                } else {
                    "streaming_archiver"
                };
                let hint = format!("'{}' must be empty when {archiver}=off", dir.display());
                c.result(&format!("empty {dir_name} directory"), false, Some(&hint));
            }
            continue;
        }
        if let Some(max) = cfg.get_int("max_incoming_wals_queue") {
            if count > max {
                let hint = format!("there are too many WALs in queue: {count}, max {max}");
                c.result(&format!("{dir_name} WALs directory"), false, Some(&hint));
            }
        }
    }

    let pg = remote.pg.clone().unwrap_or_default();
    let pg_up = pg.server_txt_version.is_some();
    if cfg.active() && !passive {
        if remote.pg.is_some() {
            if !pg_up {
                c.result("PostgreSQL", false, None);
            } else if pg.server_version.unwrap_or(0) < 90600 {
                let hint = format!(
                    "unsupported version: PostgreSQL server is too old ({} < 9.6)",
                    pg.server_txt_version.clone().unwrap_or_default()
                );
                c.result("PostgreSQL", false, Some(&hint));
            } else {
                c.result("PostgreSQL", true, None);
                match pg.has_backup_privileges {
                    Some(true) => c.result("superuser or standard user with backup privileges", true, None),
                    Some(false) => c.result(
                        "no access to backup functions",
                        false,
                        Some("privileges for PostgreSQL backup functions are required (see documentation)"),
                    ),
                    None => {}
                }
                if let Some(st) = &remote.stream {
                    c.result(
                        "PostgreSQL streaming",
                        st.error.is_none(),
                        st.error.as_deref(),
                    );
                }
                if let Some(level) = pg.setting("wal_level") {
                    if level != "minimal" {
                        c.result("wal_level", true, None);
                    } else {
                        c.result(
                            "wal_level",
                            false,
                            Some("please set it to a higher level than 'minimal'"),
                        );
                    }
                }
            }
        }
        if let Some(slot) = cfg.get_str("slot_name") {
            let streaming = cfg.get_bool("streaming_archiver");
            match (&pg.replication_slot, streaming) {
                (None, true) => {
                    let hint = format!(
                        "replication slot '{slot}' doesn't exist. Please execute 'barman receive-wal --create-slot {}'",
                        cfg.name
                    );
                    c.result("replication slot", false, Some(&hint));
                }
                (Some(s), true) if s.restart_lsn.is_none() => {
                    let hint = format!("slot '{slot}' not initialised: is 'receive-wal' running?");
                    c.result("replication slot", false, Some(&hint));
                }
                (Some(s), true) if !s.active => {
                    let hint = format!("slot '{slot}' not active: is 'receive-wal' running?");
                    c.result("replication slot", false, Some(&hint));
                }
                (Some(_), true) => c.result("replication slot", true, None),
                (Some(s), false) if s.restart_lsn.is_some() => {
                    let status = if s.active { "active" } else { "initialised" };
                    let hint = format!(
                        "WARNING: slot '{slot}' is {status} but not required by the current config"
                    );
                    c.result("replication slot", true, Some(&hint));
                }
                _ => {}
            }
        }
    }

    if !cfg.disabled() {
        match cat.create_directories(true) {
            Ok(()) => c.result("directories", true, None),
            Err(e) => c.result("directories", false, Some(&e)),
        }
    }
    c.result("retention policy settings", true, None);
    match cfg.get("last_backup_maximum_age") {
        Value::Interval(secs) => {
            let hint = format!(
                "interval provided: {}, latest backup age: No available backups",
                crate::output::human_duration(*secs as f64)
            );
            c.result("backup maximum age", false, Some(&hint));
        }
        _ => c.result(
            "backup maximum age",
            true,
            Some("no last_backup_maximum_age provided"),
        ),
    }
    match cfg.get_int("last_backup_minimum_size") {
        Some(min) => {
            let hint = format!("last backup size 0 B < {} minimum", pretty_size(min as f64));
            c.out.result_check(
                c.server,
                "backup minimum size",
                min <= 0,
                Some(&hint),
                Some(0),
            );
        }
        None => c.perf("backup minimum size", "0 B", 0),
    }
    if cfg.get("last_wal_maximum_age").is_none() {
        c.result(
            "wal maximum age",
            true,
            Some("no last_wal_maximum_age provided"),
        );
    } else {
        c.result(
            "wal maximum age",
            false,
            Some("No WAL files archived for last backup"),
        );
    }
    c.perf("wal size", "0 B", 0);
    let compression_ok = !matches!(cfg.get_str("compression"), Some("xz" | "snappy"))
        && !(cfg.get_str("compression") == Some("custom")
            && (cfg.get_str("custom_compression_filter").is_none()
                || cfg.get_str("custom_decompression_filter").is_none()));
    c.result("compression settings", compression_ok, None);
    c.result("failed backups", true, Some("there are 0 failed backups"));
    let mr = cfg.minimum_redundancy();
    let hint = format!("have 0 non-incremental backups, expected at least {mr}");
    c.result("minimum redundancy requirements", mr <= 0, Some(&hint));

    if passive {
        primary_ssh_checks(&mut c, cfg);
    } else {
        method_checks(&mut c, cfg, &remote);
    }

    if !cfg.msg_list.is_empty() {
        c.result("configuration", false, None);
        for m in &cfg.msg_list {
            c.out.info_nolog(&format!("\t\t{m}"));
        }
    }

    // systemid coherence
    let stream_id = remote.stream.as_ref().and_then(|s| s.systemid.clone());
    let pg_id = pg.systemid.clone();
    match (&stream_id, &pg_id) {
        (Some(a), Some(b)) if a != b => c.result(
            "systemid coherence",
            false,
            Some("is the streaming DSN targeting the same server of the PostgreSQL connection string?"),
        ),
        _ => match stream_id.or(pg_id) {
            None => c.result("systemid coherence", true, Some("no system Id available")),
            Some(id) => {
                let file = cat.identity_file();
                match std::fs::read_to_string(&file) {
                    Err(_) => c.result("systemid coherence", true, Some("no system Id stored on disk")),
                    Ok(text) => {
                        let stored = serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v.get("systemid").and_then(|s| s.as_str()).map(str::to_string));
                        if stored.as_deref() == Some(id.as_str()) {
                            c.result("systemid coherence", true, None);
                        } else {
                            let hint = format!(
                                "the system Id of the connected PostgreSQL server changed, stored in \"{}\"",
                                file.display()
                            );
                            c.result("systemid coherence", false, Some(&hint));
                        }
                    }
                }
            }
        },
    }

    if cfg.active() && !passive {
        if let Some(t) = &remote.pg_receivewal {
            c.result("pg_receivexlog", t.path.is_some(), None);
            tool_compat(
                &mut c,
                "pg_receivexlog",
                t,
                &pg,
                "pg_receivexlog compatible",
            );
            let lock = crate::catalog::lock::LockNames { dir: lock_dir }.receive_wal(&cfg.name);
            if crate::catalog::lock::owner(&lock).is_some() {
                c.result("receive-wal running", true, None);
            } else {
                c.result(
                    "receive-wal running",
                    false,
                    Some("See the Barman log file for more details"),
                );
            }
        }
        if cfg.get_bool("archiver") && pg_up {
            let mode = pg.setting("archive_mode").unwrap_or("");
            if mode == "on" || mode == "always" {
                c.result("archive_mode", true, None);
            } else {
                c.result(
                    "archive_mode",
                    false,
                    Some("please set it to 'on' or 'always'"),
                );
            }
            let cmd = pg.setting("archive_command").unwrap_or("");
            if !cmd.is_empty() && cmd != "(disabled)" {
                c.result("archive_command", true, None);
                if let Some(a) = pg.is_archiving {
                    c.result("continuous archiving", a, None);
                }
            } else {
                c.result(
                    "archive_command",
                    false,
                    Some("please set it accordingly to documentation"),
                );
            }
        }
    }

    let errors: Vec<String> = std::fs::read_dir(&cat.errors_directory)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let hint = summarise_error_files(&errors);
    c.result(
        "archiver errors",
        errors.is_empty(),
        if hint.is_empty() { None } else { Some(&hint) },
    );
}

/// A passive node's `ssh` check (to its primary) and, when `true` printed
/// anything (stdout or stderr), `ssh output clean`: the sync-info JSON
/// would not parse behind a banner.
fn primary_ssh_checks(c: &mut Checker, cfg: &ServerConfig) {
    let ssh = cfg.get_str("primary_ssh_command").unwrap_or_default();
    let mut argv: Vec<String> = ssh.split_whitespace().map(str::to_string).collect();
    argv.extend(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"].map(String::from));
    let shown = argv.join(" ");
    let run = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .arg("true")
        .stdin(std::process::Stdio::null())
        .output();
    match run {
        Ok(o) if o.status.success() => {
            c.result("ssh", true, Some("Barman primary node"));
            if !o.stdout.is_empty() || !o.stderr.is_empty() {
                c.result(
                    "ssh output clean",
                    false,
                    Some("the configured ssh_command must not add anything to the remote command output"),
                );
            }
        }
        Ok(o) => {
            let hint = format!(
                "Connection failed using '{shown}' return code {}",
                o.status.code().unwrap_or(-1)
            );
            c.result("ssh", false, Some(&hint));
        }
        Err(_) => c.result(
            "ssh",
            false,
            Some(&format!("Unable to execute {}", argv[0])),
        ),
    }
}

fn tool_compat(
    c: &mut Checker,
    label: &str,
    t: &crate::server::Tool,
    pg: &crate::postgres::client::PgStatus,
    check: &str,
) {
    let server_major = pg.server_version.map(|v| v / 10000);
    let compatible = match (
        server_major,
        t.version.as_deref().and_then(crate::server::major_of),
    ) {
        (Some(s), Some(tv)) => Some(tv >= s),
        _ => None,
    };
    if compatible == Some(true) {
        c.result(check, true, None);
    } else {
        let hint = format!(
            "PostgreSQL version: {}, {label} version: {}",
            pg.server_txt_version.as_deref().unwrap_or("None"),
            t.version.as_deref().unwrap_or("None")
        );
        c.result(check, false, Some(&hint));
    }
}

fn method_checks(c: &mut Checker, cfg: &ServerConfig, remote: &Remote) {
    let pg = remote.pg.clone().unwrap_or_default();
    match cfg.get_str("backup_method") {
        Some("postgres") => {
            let t = remote.pg_basebackup.clone().unwrap_or_default();
            c.result("pg_basebackup", t.path.is_some(), None);
            tool_compat(c, "pg_basebackup", &t, &pg, "pg_basebackup compatible");
            if pg.server_txt_version.is_some() {
                c.result(
                    "pg_basebackup supports tablespaces mapping",
                    t.version.is_some(),
                    None,
                );
            }
        }
        Some("rsync") => {
            let Some(ssh) = cfg.get_str("ssh_command") else {
                return;
            };
            let mut argv: Vec<String> = ssh.split_whitespace().map(str::to_string).collect();
            argv.extend(
                ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"].map(String::from),
            );
            let shown = argv.join(" ");
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .arg("true")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match status {
                Ok(s) if s.success() => c.result("ssh", true, Some("PostgreSQL server")),
                Ok(s) => {
                    let hint = format!(
                        "Connection failed using '{shown}' return code {}",
                        s.code().unwrap_or(-1)
                    );
                    c.result("ssh", false, Some(&hint));
                }
                Err(e) => {
                    let hint = format!("Connection failed using '{shown}': {e}");
                    c.result("ssh", false, Some(&hint));
                }
            }
        }
        Some("local-rsync") => {
            let dd = pg.setting("data_directory").map(str::to_string);
            match dd.map(|d| {
                std::fs::read_dir(&d)
                    .map(|_| ())
                    .map_err(|e| format!("{d}: {e}"))
            }) {
                Some(Ok(())) | None => {
                    c.result("local PGDATA", true, Some("Access to local PGDATA"))
                }
                Some(Err(e)) => c.result("local PGDATA", false, Some(&e)),
            }
        }
        _ => {}
    }
}

/// Barman's `summarise_error_files`: counts by suffix, non-zero kinds only.
pub fn summarise_error_files(names: &[String]) -> String {
    let (mut dup, mut unknown, mut not_relevant, mut failure) = (0, 0, 0, 0);
    for n in names {
        match n.rsplit('.').next() {
            Some("duplicate") => dup += 1,
            Some("unknown") => unknown += 1,
            Some("error") => not_relevant += 1,
            _ => failure += 1,
        }
    }
    let mut parts = Vec::new();
    for (label, n) in [
        ("duplicates", dup),
        ("unknown", unknown),
        ("not relevant", not_relevant),
        ("unknown failure", failure),
    ] {
        if n > 0 {
            parts.push(format!("{label}: {n}"));
        }
    }
    parts.join(", ")
}
