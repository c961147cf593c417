//! `barman replication-status [--minimal] [--target T] [--source S]
//! SERVER...|all`: the streaming clients of each server, from
//! pg_stat_replication joined with the physical slots, as Barman prints
//! them (not logged: its writer prints them directly).

use std::time::Duration;

use serde_json::{json, Map, Value as J};

use super::Ctx;
use crate::postgres::client;
use crate::server::python_tz_time;
use crate::wal::name::parse_lsn;

/// One row of pg_stat_replication, as text.
#[derive(Debug, Default, Clone)]
struct Client {
    pid: String,
    usename: String,
    application_name: String,
    client_addr: Option<String>,
    client_hostname: Option<String>,
    client_port: Option<String>,
    backend_start: String,
    backend_xmin: Option<String>,
    state: String,
    sent_lsn: Option<String>,
    write_lsn: Option<String>,
    flush_lsn: Option<String>,
    replay_lsn: Option<String>,
    sync_priority: i32,
    sync_state: String,
    slot_name: Option<String>,
    current_lsn: Option<String>,
}

fn title(target: &str) -> &'static str {
    match target {
        "hot-standby" => "hot standby servers",
        "wal-streamer" => "WAL streamers",
        _ => "streaming clients",
    }
}

/// Python's `str.capitalize()`.
fn capitalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut c = lower.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Barman's `pretty_size` (negative sizes too: diffs are behind the master).
fn pretty_size(size: i64) -> String {
    let mut v = size as f64;
    for s in ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"] {
        if v.abs() < 1024.0 {
            return if s == "B" {
                format!("{size} B")
            } else {
                format!("{v:.1} {s}")
            };
        }
        v /= 1024.0;
    }
    format!("{v:.1} YiB")
}

fn diff(lsn: &Option<String>, current: &Option<String>) -> Option<i64> {
    let a = parse_lsn(lsn.as_deref()?)?;
    let b = parse_lsn(current.as_deref()?)?;
    Some(a as i64 - b as i64)
}

fn fetch(conninfo: &str, target: &str) -> Result<(Option<String>, Vec<Client>), String> {
    let mut c = client::connect(conninfo, Some(Duration::from_secs(30)))?;
    let e = |e: postgres::Error| client::pg_error_text(&e);
    c.batch_execute("SET DateStyle TO ISO").map_err(e)?;
    let filter = match target {
        "hot-standby" => " AND replay_lsn IS NOT NULL",
        "wal-streamer" => " AND replay_lsn IS NULL",
        _ => "",
    };
    let server_lsn: Option<String> = c
        .query_one(
            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_lsn() END::text",
            &[],
        )
        .map_err(e)?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT r.pid::text, r.usename::text, r.application_name::text, \
                 host(r.client_addr), r.client_hostname::text, r.client_port::text, \
                 r.backend_start::text, r.backend_xmin::text, r.state::text, \
                 r.sent_lsn::text, r.write_lsn::text, r.flush_lsn::text, r.replay_lsn::text, \
                 r.sync_priority::int4, r.sync_state::text, rs.slot_name::text, \
                 (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
                  ELSE pg_current_wal_lsn() END)::text \
                 FROM pg_stat_replication r \
                 LEFT JOIN pg_replication_slots rs ON (r.pid = rs.active_pid) \
                 WHERE (rs.slot_type IS NULL OR rs.slot_type = 'physical'){filter} \
                 ORDER BY sync_state DESC, sync_priority"
            ),
            &[],
        )
        .map_err(e)?;
    let clients = rows
        .iter()
        .map(|r| Client {
            pid: r.get::<_, Option<String>>(0).unwrap_or_default(),
            usename: r.get::<_, Option<String>>(1).unwrap_or_default(),
            application_name: r.get::<_, Option<String>>(2).unwrap_or_default(),
            client_addr: r.get(3),
            client_hostname: r.get(4),
            client_port: r.get(5),
            backend_start: r
                .get::<_, Option<String>>(6)
                .map(|t| python_tz_time(&t))
                .unwrap_or_default(),
            backend_xmin: r.get(7),
            state: r.get::<_, Option<String>>(8).unwrap_or_default(),
            sent_lsn: r.get(9),
            write_lsn: r.get(10),
            flush_lsn: r.get(11),
            replay_lsn: r.get(12),
            sync_priority: r.get::<_, Option<i32>>(13).unwrap_or(0),
            sync_state: r.get::<_, Option<String>>(14).unwrap_or_default(),
            slot_name: r.get(15),
            current_lsn: r.get(16),
        })
        .collect();
    Ok((server_lsn, clients))
}

fn none_or<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("None".into(), |v| v.to_string())
}

fn stage(c: &Client) -> (&'static str, String) {
    let d = |l: &Option<String>| diff(l, &c.current_lsn);
    if c.replay_lsn.is_none() {
        let s = if d(&c.write_lsn) == Some(0) {
            "3/3 Remote write"
        } else if d(&c.sent_lsn) == Some(0) {
            "2/3 WAL Sent (min)"
        } else {
            "1/3 1-safe"
        };
        return ("WAL streamer", s.into());
    }
    let s = if d(&c.replay_lsn) == Some(0) {
        "5/5 Hot standby (max)"
    } else if d(&c.flush_lsn) == Some(0) {
        "4/5 2-safe"
    } else if d(&c.write_lsn) == Some(0) {
        "3/5 Remote write"
    } else if d(&c.sent_lsn) == Some(0) {
        "2/5 WAL Sent (min)"
    } else {
        "1/5 1-safe"
    };
    ("standby", s.into())
}

fn lines(
    name: &str,
    target: &str,
    minimal: bool,
    lsn: &Option<String>,
    clients: &[Client],
) -> Vec<String> {
    let title = title(target);
    let mut out = Vec::new();
    if minimal {
        out.push(match lsn {
            Some(l) => format!("{} for master '{name}' (LSN @ {l}):", capitalize(title)),
            None => format!("{} for slave '{name}':", capitalize(title)),
        });
    } else {
        out.push(format!("Status of {title} for server '{name}':"));
        if let Some(l) = lsn {
            out.push(format!("  Current LSN on master: {l}"));
        }
    }
    if clients.is_empty() {
        out.push(format!("  No {title} attached"));
        return out;
    }
    if !minimal {
        out.push(format!("  Number of {title}: {}", clients.len()));
    }
    for (i, c) in clients.iter().enumerate() {
        let n = i + 1;
        let addr = c.client_addr.as_deref().unwrap_or("socket");
        if minimal {
            out.push(if c.replay_lsn.is_none() {
                format!(
                    "  {n}. W) {}@{addr} S:{} W:{} P:{} AN:{}",
                    c.usename,
                    none_or(&c.sent_lsn),
                    none_or(&c.write_lsn),
                    c.sync_priority,
                    c.application_name
                )
            } else {
                format!(
                    "  {n}. {}) {}@{addr} S:{} F:{} R:{} P:{} AN:{}",
                    c.sync_state
                        .chars()
                        .next()
                        .unwrap_or(' ')
                        .to_ascii_uppercase(),
                    c.usename,
                    none_or(&c.sent_lsn),
                    none_or(&c.flush_lsn),
                    none_or(&c.replay_lsn),
                    c.sync_priority,
                    c.application_name
                )
            });
            continue;
        }
        let (kind, stage) = stage(c);
        out.push(String::new());
        out.push(if c.sync_priority > 0 {
            format!(
                "  {n}. #{} {} {kind}",
                c.sync_priority,
                capitalize(&c.sync_state)
            )
        } else {
            format!("  {n}. {} {kind}", capitalize(&c.sync_state))
        });
        out.push(format!("     Application name: {}", c.application_name));
        out.push(format!("     Sync stage      : {stage}"));
        if let Some(a) = &c.client_addr {
            out.push("     Communication   : TCP/IP".into());
            out.push(format!(
                "     IP Address      : {a} / Port: {} / Host: {}",
                none_or(&c.client_port),
                c.client_hostname.as_deref().unwrap_or("-")
            ));
        } else {
            out.push("     Communication   : Unix domain socket".into());
        }
        out.push(format!("     User name       : {}", c.usename));
        out.push(format!(
            "     Current state   : {} ({})",
            c.state, c.sync_state
        ));
        if let Some(s) = &c.slot_name {
            out.push(format!("     Replication slot: {s}"));
        }
        out.push(format!("     WAL sender PID  : {}", c.pid));
        out.push(format!("     Started at      : {}", c.backend_start));
        if let Some(x) = &c.backend_xmin {
            out.push(format!("     Standby's xmin  : {x}"));
        }
        for (label, l) in [
            ("Sent LSN  ", &c.sent_lsn),
            ("Write LSN ", &c.write_lsn),
            ("Flush LSN ", &c.flush_lsn),
            ("Replay LSN", &c.replay_lsn),
        ] {
            if let Some(v) = l {
                let d = diff(l, &c.current_lsn).unwrap_or(0);
                out.push(format!("     {label} : {v} (diff: {})", pretty_size(d)));
            }
        }
    }
    out
}

fn json_of(target: &str, minimal: bool, lsn: &Option<String>, clients: &[Client]) -> J {
    let key = title(target).to_lowercase().replace(' ', "_");
    let mut m = Map::new();
    let items: Vec<J> = clients
        .iter()
        .map(|c| {
            if minimal {
                json!({
                    "user_name": c.usename, "client_addr": c.client_addr.as_deref().unwrap_or("socket"),
                    "sent_lsn": c.sent_lsn, "write_lsn": c.write_lsn, "flush_lsn": c.flush_lsn,
                    "replay_lsn": c.replay_lsn, "sync_priority": c.sync_priority,
                    "sync_state": c.sync_state, "application_name": c.application_name,
                })
            } else {
                let (kind, stage) = stage(c);
                json!({
                    "name": kind, "application_name": c.application_name, "sync_stage": stage,
                    "communication": if c.client_addr.is_some() { "TCP/IP" } else { "Unix domain socket" },
                    "ip_address": c.client_addr, "port": c.client_port, "host": c.client_hostname,
                    "user_name": c.usename, "current_state": c.state,
                    "current_sync_state": c.sync_state, "replication_slot": c.slot_name,
                    "wal_sender_pid": c.pid, "started_at": c.backend_start,
                    "standbys_xmin": c.backend_xmin, "sent_lsn": c.sent_lsn,
                    "write_lsn": c.write_lsn, "flush_lsn": c.flush_lsn, "replay_lsn": c.replay_lsn,
                })
            }
        })
        .collect();
    if items.is_empty() {
        m.insert(
            "standby_info".into(),
            J::String(format!("No {} attached", title(target))),
        );
    }
    m.insert(key, J::Array(items));
    m.insert("server_lsn".into(), lsn.clone().map_or(J::Null, J::String));
    J::Object(m)
}

pub fn run(ctx: &mut Ctx, names: &[String], minimal: bool, target: &str, source: &str) {
    for mut cfg in ctx.active_servers(names) {
        if source == "wal-host" {
            super::receive_wal::apply_wal_overrides(ctx, &mut cfg);
        }
        let conninfo = cfg.get_str("conninfo").unwrap_or_default().to_string();
        match fetch(&conninfo, target) {
            Err(e) => {
                log::warn!("replication-status of server '{}': {e}", cfg.name);
                ctx.out
                    .error(&format!("Unable to connect to server {}", cfg.name));
            }
            Ok((lsn, clients)) if ctx.out.is_json() => {
                ctx.out
                    .json_set(&cfg.name, json_of(target, minimal, &lsn, &clients));
            }
            Ok((lsn, clients)) => {
                for l in lines(&cfg.name, target, minimal, &lsn, &clients) {
                    ctx.out.info_nolog(&l);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_capitals_as_python() {
        assert_eq!(pretty_size(0), "0 B");
        assert_eq!(pretty_size(-16384), "-16.0 KiB");
        assert_eq!(capitalize("WAL streamers"), "Wal streamers");
        assert_eq!(capitalize("async"), "Async");
    }

    #[test]
    fn a_wal_streamer_reads_as_barman() {
        let c = Client {
            pid: "42".into(),
            usename: "postgres".into(),
            application_name: "barman_receive_wal".into(),
            backend_start: "2026-11-24 22:04:40.123456+00:00".into(),
            state: "streaming".into(),
            sent_lsn: Some("0/3000000".into()),
            write_lsn: Some("0/3000000".into()),
            flush_lsn: Some("0/3000000".into()),
            sync_state: "async".into(),
            slot_name: Some("barman".into()),
            current_lsn: Some("0/3000000".into()),
            ..Client::default()
        };
        let lsn = Some("0/3000000".to_string());
        assert_eq!(
            lines("pg", "all", true, &lsn, std::slice::from_ref(&c)),
            [
                "Streaming clients for master 'pg' (LSN @ 0/3000000):",
                "  1. W) postgres@socket S:0/3000000 W:0/3000000 P:0 AN:barman_receive_wal"
            ]
        );
        let full = lines("pg", "wal-streamer", false, &lsn, &[c]);
        assert_eq!(full[0], "Status of WAL streamers for server 'pg':");
        assert_eq!(full[2], "  Number of WAL streamers: 1");
        assert_eq!(full[4], "  1. Async WAL streamer");
        assert_eq!(full[6], "     Sync stage      : 3/3 Remote write");
        assert!(full.contains(&"     Replication slot: barman".to_string()));
        assert!(full.contains(&"     Sent LSN   : 0/3000000 (diff: 0 B)".to_string()));
    }
}
