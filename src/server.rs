//! What Barman's `Server` object knows beyond its configuration: the live
//! ("remote") status gathered from PostgreSQL, from a replication
//! connection and from the PostgreSQL client tools, shaped as the key/value
//! map that `show-servers` prints and `check`/`status` judge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::config::types::{python_repr_str, Value};
use crate::config::ServerConfig;
use crate::output::python_float_repr;
use crate::postgres::client::PgStatus;

/// What IDENTIFY_SYSTEM over a replication connection returned.
#[derive(Debug, Clone, Default)]
pub struct StreamStatus {
    pub error: Option<String>,
    pub systemid: Option<String>,
    pub timeline: Option<i64>,
    pub xlogpos: Option<String>,
}

/// A PostgreSQL client program found on PATH (after `path_prefix`).
#[derive(Debug, Clone, Default)]
pub struct Tool {
    pub path: Option<PathBuf>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Remote {
    pub pg: Option<PgStatus>,
    pub stream: Option<StreamStatus>,
    pub pg_basebackup: Option<Tool>,
    pub pg_receivewal: Option<Tool>,
}

/// Whether the server needs a replication connection.
pub fn uses_streaming(cfg: &ServerConfig) -> bool {
    cfg.get_str("backup_method") == Some("postgres") || cfg.get_bool("streaming_archiver")
}

fn conninfo_ok(cfg: &ServerConfig) -> bool {
    !cfg.msg_list
        .iter()
        .any(|m| m.starts_with("PostgreSQL connection:"))
}

impl Remote {
    /// Asks PostgreSQL and the tools, as `show-servers`, `check` and
    /// `status` need. `timeout` bounds each connection attempt.
    pub fn fetch(cfg: &ServerConfig, timeout: Duration) -> Remote {
        let mut r = Remote::default();
        if conninfo_ok(cfg) {
            if let Some(ci) = cfg.get_str("conninfo") {
                r.pg = Some(PgStatus::fetch(ci, cfg.get_str("slot_name"), Some(timeout)));
            }
        }
        if uses_streaming(cfg) {
            if let Some(ci) = cfg.get_str("streaming_conninfo") {
                r.stream = Some(identify_system(cfg, ci));
            }
        }
        if cfg.get_str("backup_method") == Some("postgres") {
            r.pg_basebackup = Some(find_tool(cfg, &["pg_basebackup"]));
        }
        if cfg.get_bool("streaming_archiver") {
            r.pg_receivewal = Some(find_tool(cfg, &["pg_receivewal", "pg_receivexlog"]));
        }
        r
    }

    pub fn server_version(&self) -> Option<i64> {
        self.pg.as_ref().and_then(|p| p.server_version)
    }

    /// Barman's remote status map (keys and Python values) for show-servers.
    pub fn to_map(&self, cfg: &ServerConfig) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        let s = |v: &Option<String>| v.clone().map_or(Value::None, Value::Str);
        let b = |v: Option<bool>| v.map_or(Value::None, Value::Bool);
        let i = |v: Option<i64>| v.map_or(Value::None, Value::Int);
        if let Some(pg) = &self.pg {
            let reachable = pg.server_version.is_some();
            for k in [
                "current_xlog",
                "data_directory",
                "is_in_recovery",
                "is_superuser",
                "postgres_systemid",
                "replication_slot",
                "replication_slot_support",
                "server_txt_version",
                "synchronous_standby_names",
                "version_supported",
            ] {
                m.insert(k.to_string(), Value::None);
            }
            if reachable {
                for &k in crate::postgres::client::SHOWN_SETTINGS {
                    m.insert(
                        k.into(),
                        pg.setting(k).map_or(Value::None, |v| Value::Str(v.into())),
                    );
                }
                for k in [
                    "archive_timeout",
                    "checkpoint_timeout",
                    "max_wal_senders",
                    "max_replication_slots",
                ] {
                    if let Some(Ok(n)) = pg.setting(k).map(str::parse::<i64>) {
                        m.insert(k.into(), Value::Int(n));
                    }
                }
                let keep = if pg.server_version.unwrap_or(0) < 130000 {
                    "wal_keep_segments"
                } else {
                    "wal_keep_size"
                };
                m.insert(
                    keep.into(),
                    pg.setting(keep)
                        .map_or(Value::None, |v| Value::Str(v.into())),
                );
                m.insert(
                    "data_directory".into(),
                    pg.setting("data_directory")
                        .map_or(Value::None, |v| Value::Str(v.into())),
                );
                m.insert("is_superuser".into(), b(pg.is_superuser));
                m.insert("has_backup_privileges".into(), b(pg.has_backup_privileges));
                m.insert(
                    "has_monitoring_privileges".into(),
                    b(pg.has_backup_privileges),
                );
                m.insert("is_in_recovery".into(), b(pg.is_in_recovery));
                m.insert("server_txt_version".into(), s(&pg.server_txt_version));
                m.insert(
                    "version_supported".into(),
                    Value::Bool(pg.server_version.unwrap_or(0) >= 90600),
                );
                m.insert("current_lsn".into(), s(&pg.current_lsn));
                m.insert("current_xlog".into(), s(&pg.current_xlog));
                m.insert("current_size".into(), i(pg.current_size));
                let seg = pg
                    .setting("wal_segment_size")
                    .and_then(|v| v.parse::<i64>().ok());
                m.insert("xlog_segment_size".into(), i(seg));
                for k in ["config_file", "hba_file", "ident_file"] {
                    m.insert(
                        k.into(),
                        pg.setting(k).map_or(Value::None, |v| Value::Str(v.into())),
                    );
                }
                m.insert("replication_slot_support".into(), Value::Bool(true));
                if cfg.get_str("slot_name").is_some() {
                    m.insert(
                        "replication_slot".into(),
                        pg.replication_slot.as_ref().map_or(Value::None, |sl| {
                            Value::Str(format!(
                                "Slot(slot_name={}, active={}, restart_lsn={})",
                                python_repr_str(cfg.get_str("slot_name").unwrap_or_default()),
                                if sl.active { "True" } else { "False" },
                                sl.restart_lsn
                                    .as_deref()
                                    .map_or("None".to_string(), python_repr_str)
                            ))
                        }),
                    );
                }
                let names: Vec<String> = pg
                    .setting("synchronous_standby_names")
                    .unwrap_or("")
                    .split(',')
                    .map(|x| python_repr_str(x.trim()))
                    .collect();
                m.insert(
                    "synchronous_standby_names".into(),
                    Value::Str(format!("[{}]", names.join(", "))),
                );
                m.insert("postgres_systemid".into(), s(&pg.systemid));
            }
            if cfg.get_bool("archiver") {
                m.insert(
                    "archive_mode".into(),
                    pg.setting("archive_mode")
                        .map_or(Value::None, |v| Value::Str(v.into())),
                );
                m.insert(
                    "archive_command".into(),
                    pg.setting("archive_command")
                        .map_or(Value::None, |v| Value::Str(v.into())),
                );
                if reachable {
                    m.insert("is_archiving".into(), b(pg.is_archiving));
                    m.insert("archived_count".into(), i(pg.archived_count));
                    m.insert("failed_count".into(), i(pg.failed_count));
                    m.insert("last_archived_wal".into(), s(&pg.last_archived_wal));
                    m.insert("last_failed_wal".into(), s(&pg.last_failed_wal));
                    m.insert(
                        "last_archived_time".into(),
                        s(&pg.last_archived_time.as_deref().map(python_tz_time)),
                    );
                    m.insert(
                        "last_failed_time".into(),
                        s(&pg.last_failed_time.as_deref().map(python_tz_time)),
                    );
                    m.insert(
                        "current_archived_wals_per_second".into(),
                        pg.current_archived_wals_per_second
                            .map_or(Value::None, |f| Value::Str(python_float_repr(f))),
                    );
                }
            }
        }
        if let Some(st) = &self.stream {
            m.insert("connection_error".into(), s(&st.error));
            let ok = st.error.is_none();
            m.insert(
                "streaming".into(),
                if ok { Value::Bool(true) } else { Value::None },
            );
            m.insert(
                "streaming_supported".into(),
                if ok { Value::Bool(true) } else { Value::None },
            );
            m.insert("streaming_systemid".into(), s(&st.systemid));
            m.insert("timeline".into(), i(st.timeline));
            m.insert("xlogpos".into(), s(&st.xlogpos));
        }
        let server_major = self.server_version().map(|v| v / 10000);
        if let Some(t) = &self.pg_basebackup {
            tool_keys(&mut m, "pg_basebackup", t, server_major);
            m.insert(
                "pg_basebackup_bwlimit".into(),
                if t.version.is_some() {
                    Value::Bool(true)
                } else {
                    Value::None
                },
            );
            m.insert(
                "pg_basebackup_tbls_mapping".into(),
                if t.version.is_some() {
                    Value::Bool(true)
                } else {
                    Value::None
                },
            );
        }
        if let Some(t) = &self.pg_receivewal {
            tool_keys(&mut m, "pg_receivexlog", t, server_major);
            let known = server_major.is_some() && t.version.is_some();
            m.insert(
                "pg_receivexlog_supports_slots".into(),
                if known {
                    Value::Bool(true)
                } else {
                    Value::None
                },
            );
            let sync = self
                .pg
                .as_ref()
                .and_then(|p| p.setting("synchronous_standby_names"))
                .map(|names| {
                    let app = cfg
                        .get_str("streaming_archiver_name")
                        .unwrap_or("barman_receive_wal");
                    names.split(',').any(|n| n.trim() == "*" || n.trim() == app)
                });
            m.insert(
                "pg_receivexlog_synchronous".into(),
                if known { b(sync) } else { Value::None },
            );
        }
        m
    }
}

fn tool_keys(m: &mut BTreeMap<String, Value>, prefix: &str, t: &Tool, server_major: Option<i64>) {
    m.insert(format!("{prefix}_installed"), Value::Bool(t.path.is_some()));
    m.insert(
        format!("{prefix}_path"),
        t.path
            .as_ref()
            .map_or(Value::None, |p| Value::Str(p.display().to_string())),
    );
    m.insert(
        format!("{prefix}_version"),
        t.version.clone().map_or(Value::None, Value::Str),
    );
    let compatible = match (server_major, t.version.as_deref().and_then(major_of)) {
        (Some(s), Some(tv)) => Value::Bool(tv >= s),
        _ => Value::None,
    };
    m.insert(format!("{prefix}_compatible"), compatible);
}

/// `15.18` → 15; `9.6.24` → 9 (only used for >= comparisons from 10 on).
pub fn major_of(version: &str) -> Option<i64> {
    version.split('.').next()?.parse().ok()
}

/// PostgreSQL's `2026-11-25 01:03:12.045985+00` as Python prints a
/// tz-aware datetime: `2026-11-25 01:03:12.045985+00:00`. PostgreSQL
/// drops trailing zeros of the fraction (`12.98215+00`), Python always
/// prints six digits (`12.982150+00:00`) or none.
pub fn python_tz_time(pg: &str) -> String {
    let (time, offset) = match pg.rfind(['+', '-']) {
        Some(i) if i > 10 => (&pg[..i], &pg[i..]),
        _ => (pg, ""),
    };
    let time = match time.rsplit_once('.') {
        Some((whole, frac))
            if whole.len() >= 19
                && !frac.is_empty()
                && frac.len() < 6
                && frac.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{whole}.{frac:0<6}")
        }
        _ => time.to_string(),
    };
    if offset.len() == 3 {
        format!("{time}{offset}:00")
    } else {
        format!("{time}{offset}")
    }
}

/// The directories searched for PostgreSQL client tools: `path_prefix`
/// first, then PATH.
fn search_path(cfg: &ServerConfig) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(prefix) = cfg.get_str("path_prefix") {
        dirs.extend(
            prefix
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Finds the first of `names` whose `--version` works, as Barman does.
pub fn find_tool(cfg: &ServerConfig, names: &[&str]) -> Tool {
    for name in names {
        for dir in search_path(cfg) {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let Ok(out) = Command::new(&path).arg("--version").output() else {
                continue;
            };
            if !out.status.success() {
                continue;
            }
            let text = String::from_utf8_lossy(&out.stdout);
            // `pg_basebackup (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`: the
            // first token that starts with a digit.
            let version = text
                .split_whitespace()
                .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                .map(str::to_string);
            return Tool {
                path: Some(path),
                version,
            };
        }
    }
    Tool::default()
}

/// IDENTIFY_SYSTEM over a real replication connection. The `postgres`
/// crate cannot open one (no `replication` startup parameter), so this
/// asks `psql` from the same tool search path.
fn identify_system(cfg: &ServerConfig, conninfo: &str) -> StreamStatus {
    let psql = find_tool(cfg, &["psql"]);
    let Some(psql) = psql.path else {
        return StreamStatus {
            error: Some("psql not found: cannot test the replication connection".into()),
            ..Default::default()
        };
    };
    let dsn = format!("{conninfo} dbname=replication replication=true");
    let out = Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            "|",
            "-w",
            "-c",
            "IDENTIFY_SYSTEM",
            &dsn,
        ])
        .env(
            "PGCONNECT_TIMEOUT",
            cfg.get_int("check_timeout")
                .unwrap_or(30)
                .clamp(2, 30)
                .to_string(),
        )
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let f: Vec<&str> = text.trim().split('|').collect();
            StreamStatus {
                error: None,
                systemid: f.first().map(|s| s.to_string()),
                timeline: f.get(1).and_then(|s| s.parse().ok()),
                xlogpos: f.get(2).map(|s| s.to_string()),
            }
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let line = err
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches("psql: error: ")
                .to_string();
            StreamStatus {
                error: Some(line),
                ..Default::default()
            }
        }
        Err(e) => StreamStatus {
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::python_tz_time;

    #[test]
    fn postgres_timestamps_as_python_prints_them() {
        assert_eq!(
            python_tz_time("2026-11-25 01:03:12.045985+00"),
            "2026-11-25 01:03:12.045985+00:00"
        );
        // PostgreSQL trims the fraction's trailing zeros; Python does not.
        assert_eq!(
            python_tz_time("2026-11-25 04:25:33.98215+00"),
            "2026-11-25 04:25:33.982150+00:00"
        );
        assert_eq!(
            python_tz_time("2026-11-25 04:25:33.5-05:30"),
            "2026-11-25 04:25:33.500000-05:30"
        );
        assert_eq!(
            python_tz_time("2026-11-25 04:25:33+02"),
            "2026-11-25 04:25:33+02:00"
        );
    }
}
