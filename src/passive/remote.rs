//! Asking the primary: `<primary_ssh_command> 'barman sync-info <srv> ...'`
//! (Barman's `primary_node_info`), and keeping its answer in `primary.info`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{primary_info_path, PrimaryInfo, SyncError};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;

/// The remote command line, spaced as Barman spaces it (its primary
/// parses it with argparse, so the extra blanks are harmless). A position
/// of 0 is left out: Barman's primary refuses it (`is not a valid positive
/// integer`) and starts from the top without one, which is the same.
fn remote_command(
    server: &str,
    forward: Option<&Path>,
    last_wal: Option<&str>,
    last_position: Option<u64>,
) -> String {
    let mut cmd = match forward {
        Some(cfg) => format!("barman -c {} sync-info {server}", cfg.display()),
        None => format!("barman sync-info {server}"),
    };
    if let Some(w) = last_wal {
        cmd.push_str(&format!(" {w} "));
        if let Some(p) = last_position.filter(|p| *p > 0) {
            cmd.push_str(&format!(" {p} "));
        }
    }
    cmd
}

/// Python's `repr()`-free shell quoting Barman's `Command` uses for its
/// one argument: single quotes, embedded ones as `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs sync-info on the primary; returns its stdout.
fn run_remote(ssh: &str, remote: &str) -> Result<(i32, String, String), SyncError> {
    let line = format!("{ssh} {}", quote(remote));
    log::debug!("Command: {line}");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SyncError(format!("Unable to execute /bin/sh: {e}")))?;
    Ok((
        out.status.code().unwrap_or(255),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Barman's `primary_node_info`: the primary's sync-info after
/// `last_wal`/`last_position`, written to `primary.info` (durably) and
/// returned with its text. An out-of-sync answer (exit 1) is retried once
/// asking for everything, as Barman does.
pub fn primary_node_info(
    out: &mut Output,
    cfg: &ServerConfig,
    config_file: &Path,
    last_wal: Option<&str>,
    last_position: Option<u64>,
) -> Result<(PrimaryInfo, String), SyncError> {
    let name = &cfg.name;
    let ssh = cfg.get_str("primary_ssh_command").unwrap_or_default();
    let forward = cfg.get_bool("forward_config_path").then_some(config_file);
    let mut remote = remote_command(name, forward, last_wal, last_position);
    let (mut code, mut stdout, mut stderr) = run_remote(ssh, &remote)?;
    if code == 1 && last_wal.is_some() {
        out.warning(&format!(
            "sync-info is out of sync. Self-recovery procedure started: requesting full synchronisation from primary server {name}"
        ));
        remote = remote_command(name, forward, None, None);
        (code, stdout, stderr) = run_remote(ssh, &remote)?;
    }
    if code != 0 {
        return Err(SyncError(format!(
            "sync-info execution on remote primary server {name} failed: {stderr}"
        )));
    }
    let info = PrimaryInfo::parse(&stdout).map_err(|why| {
        let first = stdout.lines().next().unwrap_or("").trim();
        SyncError(format!(
            "sync-info on remote primary server {name} did not answer with its JSON document ({why}): '{first}'"
        ))
    })?;
    let cat = ServerCatalog::new(cfg);
    let path = primary_info_path(&cat);
    std::fs::create_dir_all(&cat.backup_directory)
        .and_then(|_| crate::durable::write_replace(&path, stdout.as_bytes(), 0o644))
        .map_err(|e| SyncError(format!("Cannot write {}: {e}", path.display())))?;
    Ok((info, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_command_is_spaced_as_barmans() {
        assert_eq!(
            remote_command("pg", None, None, None),
            "barman sync-info pg"
        );
        assert_eq!(
            remote_command("pg", None, Some("000000010000000000000006"), Some(338)),
            "barman sync-info pg 000000010000000000000006  338 "
        );
        assert_eq!(
            remote_command("pg", None, Some("000000010000000000000006"), Some(0)),
            "barman sync-info pg 000000010000000000000006 "
        );
        assert_eq!(
            remote_command("pg", Some(Path::new("/etc/b.conf")), None, None),
            "barman -c /etc/b.conf sync-info pg"
        );
        assert_eq!(quote("a 'b'"), r"'a '\''b'\'''");
    }
}
