//! `barman receive-wal SERVER [--reset]`: Barman's StreamingWalArchiver
//! flow, step for step (checks, lock, slot, `.partial` repair, then
//! pg_receivewal in the foreground with its lines shown as `<server>:
//! <line>` and logged).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;
use crate::server::Remote;
use crate::wal::name::{parse_lsn, segment_of};

use super::slot;

/// Barman's `_is_synchronous`: the names inside the parentheses of
/// `synchronous_standby_names` (or the whole value), each stripped of
/// blanks and double quotes; `*` or the receiver's name makes it
/// synchronous.
pub fn synchronous(standby_names: &str, app: &str) -> bool {
    let start = standby_names.find('(').map_or(0, |i| i + 1);
    let end = standby_names.rfind(')').unwrap_or(standby_names.len());
    let inner = if start <= end {
        &standby_names[start..end]
    } else {
        ""
    };
    let names: Vec<&str> = inner
        .split(',')
        .map(|n| n.trim().trim_matches('"'))
        .collect();
    names.iter().any(|n| *n == "*" || *n == app)
}

/// The pg_receivewal command line Barman builds, in its order.
pub fn arguments(dsn: &str, directory: &Path, slot: Option<&str>, sync: bool) -> Vec<String> {
    let mut args = vec![
        format!("--dbname={dsn}"),
        "--verbose".into(),
        "--no-loop".into(),
        "--no-password".into(),
        format!("--directory={}", directory.display()),
    ];
    if let Some(s) = slot {
        args.push(format!("--slot={s}"));
    }
    if sync {
        args.push("--synchronous".into());
    }
    args
}

/// What `--reset` does to `streaming/`, decided from its file names
/// (sorted, newest first) and the two positions (Barman's
/// `_reset_streaming_status`).
#[derive(Debug, PartialEq, Eq)]
pub enum Reset {
    Aligned,
    Ahead {
        last: String,
    },
    Rewind {
        remove: Option<String>,
        create: String,
    },
}

pub fn plan_reset(names: &[String], restart_wal: &str, current_wal: &str) -> Reset {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.reverse();
    let last = sorted
        .iter()
        .find(|n| is_segment(n) || is_partial(n))
        .or(sorted.last())
        .map(|s| s.to_string());
    let restart_partial = format!("{restart_wal}.partial");
    let Some(last) = last else {
        return Reset::Aligned;
    };
    if last == restart_partial || last == restart_wal {
        return Reset::Aligned;
    }
    if last.as_str() > current_wal {
        return Reset::Ahead { last };
    }
    Reset::Rewind {
        remove: is_partial(&last).then_some(last),
        create: restart_partial,
    }
}

fn is_segment(n: &str) -> bool {
    n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_partial(n: &str) -> bool {
    n.strip_suffix(".partial").is_some_and(is_segment)
}

/// Barman's `receive_wal`; `reset` is `--reset`.
pub fn run(out: &mut Output, cfg: &ServerConfig, lock_dir: &Path, reset: bool) {
    let name = cfg.name.clone();
    if !cfg.get_bool("streaming_archiver") {
        out.error(
            "Unable to start receive-wal process: streaming_archiver option set to 'off' in barman configuration file",
        );
        return;
    }
    let remote = Remote::fetch(cfg, Duration::from_secs(30));
    if !preflight(cfg, &remote) {
        out.error(&format!(
            "Impossible to start WAL streaming. Check the log for more details, or run 'barman check {name}'"
        ));
        return;
    }
    if !reset {
        out.info(&format!("Starting receive-wal for server {name}"));
    }
    let lock_path = LockNames { dir: lock_dir }.receive_wal(&name);
    let _lock = match lock::acquire(&lock_path, false) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) if reset => {
            out.error(&format!(
                "Unable to reset the status of receive-wal for server {name}. Process is still running"
            ));
            return;
        }
        Err(LockError::Busy { .. }) => {
            out.error(&format!(
                "Another receive-wal process is already running for server {name}."
            ));
            return;
        }
        Err(e) => {
            out.error(&e.to_string());
            return;
        }
    };
    if let Err(e) = receive(out, cfg, &remote, reset) {
        log::error!("{e}");
        out.error(&e);
    }
}

/// The silent checks Barman runs first (`_check_wal_streaming` part).
fn preflight(cfg: &ServerConfig, remote: &Remote) -> bool {
    let pg = remote.pg.clone().unwrap_or_default();
    let stream = remote.stream.clone().unwrap_or_default();
    let mut failed = Vec::new();
    if pg.server_version.is_none() {
        failed.push("no access to monitoring functions");
    }
    if stream.systemid.is_none() {
        failed.push("PostgreSQL streaming");
    }
    if pg.setting("wal_level") == Some("minimal") {
        failed.push("wal_level");
    }
    let stored = std::fs::read_to_string(ServerCatalog::new(cfg).identity_file())
        .ok()
        .and_then(|t| {
            serde_json::from_str::<serde_json::Value>(&t)
                .ok()?
                .get("systemid")?
                .as_str()
                .map(str::to_string)
        });
    if let (Some(s), Some(live)) = (&stored, &stream.systemid) {
        if s != live {
            failed.push("systemid coherence");
        }
    }
    for f in &failed {
        log::error!("Check '{f}' failed for server '{}'", cfg.name);
    }
    failed.is_empty()
}

fn receive(
    out: &mut Output,
    cfg: &ServerConfig,
    remote: &Remote,
    reset: bool,
) -> Result<(), String> {
    let name = &cfg.name;
    let cat = ServerCatalog::new(cfg);
    let dir = cat.streaming_wals_directory.clone();
    cat.create_directory(&dir)?;
    let pg = remote.pg.clone().unwrap_or_default();
    let version = pg.server_version.unwrap_or(0);
    // Named after the server's version, as Barman does, not the binary's.
    let cmd = if version >= 100000 {
        "pg_receivewal"
    } else {
        "pg_receivexlog"
    };
    let tool = remote.pg_receivewal.clone().unwrap_or_default();
    let Some(path) = tool.path.clone() else {
        return Err(format!("{cmd} not present in $PATH"));
    };
    let compatible = match (
        tool.version.as_deref().and_then(crate::server::major_of),
        version / 10000,
    ) {
        (Some(client), server) if server > 0 => client >= server,
        _ => false,
    };
    if !compatible {
        return Err(format!(
            "{cmd} version not compatible with PostgreSQL server version"
        ));
    }
    let slot = cfg.get_str("slot_name");
    if let Some(s) = slot {
        match &pg.replication_slot {
            None if cfg.get_str("create_slot") == Some("auto") => {
                if !reset {
                    out.info(&format!("Creating replication slot '{s}'"));
                    slot::run(out, cfg, slot::Action::Create { if_not_exists: false });
                }
            }
            None => {
                return Err(format!(
                    "replication slot '{s}' doesn't exist. Please execute 'barman receive-wal --create-slot {name}'"
                ))
            }
            Some(st) if st.active => return Err(format!("replication slot '{s}' is already in use")),
            Some(_) => {}
        }
    }
    let seg_size = pg
        .setting("wal_segment_size")
        .and_then(parse_size)
        .unwrap_or(16 << 20);
    if reset {
        return reset_status(out, &dir, remote, seg_size);
    }
    truncate_partial(out, &dir, seg_size);
    log::info!("Activating WAL archiving through streaming protocol");
    let app = cfg
        .get_str("streaming_archiver_name")
        .unwrap_or("barman_receive_wal");
    let text = cfg.get_str("streaming_conninfo").unwrap_or_default();
    let dsn = crate::postgres::conninfo::replication_dsn(text, app)?;
    let sync = version >= 90400
        && pg
            .setting("synchronous_standby_names")
            .is_some_and(|n| synchronous(n, app));
    let args = arguments(&dsn, &dir, slot, sync);
    stream(out, cfg, &path, &args, cmd)
}

/// `wal_segment_size` as PostgreSQL shows it (`16MB`) or in bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    Some(match unit.trim() {
        "" | "B" => n,
        "kB" => n << 10,
        "MB" => n << 20,
        "GB" => n << 30,
        _ => return None,
    })
}

/// A newest `.partial` of the wrong size cannot be resumed by
/// pg_receivewal: Barman empties it.
fn truncate_partial(out: &mut Output, dir: &Path, seg_size: u64) {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_partial)
        })
        .max();
    let Some(p) = newest else { return };
    let Ok(len) = std::fs::metadata(&p).map(|m| m.len()) else {
        return;
    };
    if len != 0 && len != seg_size {
        out.info(&format!(
            "Truncating partial file {} that has wrong size {len} while {seg_size} was expected.",
            p.display()
        ));
        if let Err(e) = std::fs::File::create(&p) {
            out.error(&format!("{}: {e}", p.display()));
        }
    }
}

fn reset_status(
    out: &mut Output,
    dir: &Path,
    remote: &Remote,
    seg_size: u64,
) -> Result<(), String> {
    let pg = remote.pg.clone().unwrap_or_default();
    let tli = remote.stream.as_ref().and_then(|s| s.timeline).unwrap_or(1) as u32;
    let lsn = pg
        .current_lsn
        .as_deref()
        .and_then(parse_lsn)
        .ok_or("cannot read the current WAL position of PostgreSQL")?;
    let current_wal = segment_of(lsn, tli, seg_size).0;
    let restart_wal = pg
        .replication_slot
        .as_ref()
        .and_then(|s| s.restart_lsn.as_deref())
        .and_then(parse_lsn)
        .map(|l| segment_of(l, tli, seg_size).0)
        .unwrap_or_else(|| current_wal.clone());
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    match plan_reset(&names, &restart_wal, &current_wal) {
        Reset::Aligned => out.info("Nothing to do. Position of receive-wal is aligned."),
        Reset::Ahead { last } => out.error(&format!(
            "The receive-wal position is ahead of PostgreSQL current WAL lsn ({last} > {})",
            pg.current_xlog.as_deref().unwrap_or(&current_wal)
        )),
        Reset::Rewind { remove, create } => {
            out.info("Resetting receive-wal directory status");
            if let Some(r) = remove {
                let p = dir.join(r);
                out.info(&format!("Removing status file {}", p.display()));
                std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            let p: PathBuf = dir.join(create);
            out.info(&format!("Creating status file {}", p.display()));
            std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Runs pg_receivewal until it stops; SIGINT and SIGTERM sent to barman
/// are passed on to it first.
fn stream(
    out: &mut Output,
    cfg: &ServerConfig,
    tool: &Path,
    args: &[String],
    cmd: &str,
) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    log::debug!(
        "Command: {:?}",
        std::iter::once(tool.display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
    );
    let mut command = Command::new(tool);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(prefix) = cfg.get_str("path_prefix") {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{prefix}:{path}"));
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    drop(child.stdin.take());
    let pid = child.id() as i32;
    let got = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    let handle = signals.handle();
    let seen = Arc::clone(&got);
    let forwarder = std::thread::spawn(move || {
        for s in signals.forever() {
            seen.store(s, Ordering::SeqCst);
            if let Ok(sig) = nix::sys::signal::Signal::try_from(s) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        }
    });
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if !line.is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    for line in rx {
        out.info(&format!("{}: {line}", cfg.name));
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    handle.close();
    let _ = forwarder.join();
    match got.load(Ordering::SeqCst) {
        SIGINT => {
            log::info!("SIGINT received. Terminate gracefully.");
            out.info("SIGINT received. Terminate gracefully.");
            return Ok(());
        }
        SIGTERM => {
            out.close();
            std::process::exit(143);
        }
        _ => {}
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code().filter(|c| *c != 0) {
        return Err(format!("{cmd} terminated with error code: {code}"));
    }
    if let Some(sig) = status.signal() {
        return Err(format!("{cmd} terminated by signal: {sig}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_names_parse_as_barman() {
        assert!(!synchronous("", "barman_receive_wal"));
        assert!(synchronous(
            "FIRST 2 (a, \"barman_receive_wal\")",
            "barman_receive_wal"
        ));
        assert!(synchronous("ANY 1 (*)", "x"));
        assert!(synchronous("a,barman_receive_wal", "barman_receive_wal"));
        assert!(!synchronous("a,b", "barman_receive_wal"));
    }

    #[test]
    fn command_line_is_barmans() {
        assert_eq!(
            arguments("dbname=replication", Path::new("/s"), Some("barman"), true),
            [
                "--dbname=dbname=replication",
                "--verbose",
                "--no-loop",
                "--no-password",
                "--directory=/s",
                "--slot=barman",
                "--synchronous"
            ]
        );
    }

    #[test]
    fn reset_follows_barmans_rules() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = "000000010000000000000005";
        let b = "000000010000000000000006";
        let c = "000000010000000000000007";
        assert_eq!(plan_reset(&[], a, c), Reset::Aligned);
        assert_eq!(
            plan_reset(&n(&[&format!("{a}.partial")]), a, c),
            Reset::Aligned
        );
        assert_eq!(
            plan_reset(&n(&[a, &format!("{b}.partial")]), a, c),
            Reset::Rewind {
                remove: Some(format!("{b}.partial")),
                create: format!("{a}.partial")
            }
        );
        assert_eq!(
            plan_reset(&n(&[&format!("{c}.partial")]), a, b),
            Reset::Ahead {
                last: format!("{c}.partial")
            }
        );
        assert_eq!(parse_size("16MB"), Some(16 << 20));
    }
}
