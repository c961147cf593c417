//! Remote recovery (`--remote-ssh-command`), as Barman does it: the backup
//! sent with rsync over that ssh command, the WAL decompressed locally then
//! sent, small file operations run through ssh, and the configuration
//! files fetched, rewritten locally and sent back. Tar backups are first
//! extracted (and verified) into a local staging directory.

use std::path::Path;
use std::process::{Command, Output};

use super::chain::Scratch;
use super::{copy_base, Request};
use crate::catalog::backup_ext::Tablespace;
use crate::catalog::xlogdb::Entry;
use crate::catalog::ServerCatalog;
use crate::wal::archiver::ServerIntake;

/// Single-quotes a word for the remote shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `script` on the remote host through the user's ssh command.
fn ssh(rc: &str, script: &str) -> Result<Output, String> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{rc} {}", quote(script)))
        .output()
        .map_err(|e| format!("cannot run '{rc}': {e}"))
}

fn ssh_ok(rc: &str, script: &str) -> Result<String, String> {
    let out = ssh(rc, script)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "remote command '{script}' failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// rsync with Barman's options over the ssh command; `dest` gets the `:`
/// remote prefix from the caller.
fn rsync(rc: &str, extra: &[&str], src: &str, dest: &str) -> Result<(), String> {
    let out = Command::new("rsync")
        .args(["-rLKpts", "--inplace", "-e", rc])
        .args(extra)
        .arg(src)
        .arg(dest)
        .output()
        .map_err(|e| format!("cannot run rsync: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        code => Err(format!(
            "data transfer failure (rsync exit code {}): {}",
            code.unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Barman's `list_dir_content` on the remote host: empty or missing.
pub fn check_empty(
    rc: &str,
    dest: &str,
    tablespaces: &[Tablespace],
    r: &Request<'_>,
) -> Result<(), String> {
    let listed = ssh(rc, &format!("ls {}", quote(dest)))?;
    if !String::from_utf8_lossy(&listed.stdout).trim().is_empty() {
        return Err(format!(
            "The restore operation cannot proceed because the destination folder '{dest}' is not \
             empty. To prevent accidental data loss, the destination must be empty. Please choose \
             a different location or manually empty the folder."
        ));
    }
    for t in tablespaces {
        let loc = r.location(t);
        let listed = ssh(rc, &format!("ls {}", quote(&loc)))?;
        if !String::from_utf8_lossy(&listed.stdout).trim().is_empty() {
            return Err(format!(
                "The restore operation cannot proceed. The destination path '{loc}' for the \
                 tablespace '{}' is not empty. To prevent accidental data loss, the tablespace \
                 destination must be empty. Please choose a different location or manually empty \
                 the folder.",
                t.name
            ));
        }
    }
    Ok(())
}

/// A local scratch directory, removed when dropped.
const PGDATA_EXCLUDES: &[&str] = &[
    "/pg_log/*",
    "/log/*",
    "/pg_xlog/*",
    "/pg_wal/*",
    "/postmaster.pid",
    "/recovery.conf",
    "/tablespace_map",
];

/// Sends the base backup. Plain backups go straight from the catalog; tar
/// backups are extracted and verified in a local staging directory first.
pub fn copy_backup(
    rc: &str,
    r: &Request<'_>,
    cat: &ServerCatalog,
    tablespaces: &[Tablespace],
) -> Result<(), String> {
    let base = cat.basebackups_directory.join(&r.backup.id);
    let compressed = r
        .backup
        .info
        .get("compression")
        .is_some_and(|c| c != "None" && !c.is_empty());
    let staged_locally = compressed || super::chain::is_incremental(r.backup);
    let staging_root = r.staging.clone();
    // Tablespaces sit beside data/ as <oid>/, in the catalog as in staging.
    let _scratch: Scratch;
    let root = if staged_locally {
        let tag = if compressed {
            "barman-decompress"
        } else {
            "barman-combine"
        };
        let s = Scratch::new(&staging_root, tag)?;
        let staged = s.0.join("data");
        let relocate = tablespaces
            .iter()
            .map(|t| (t.name.clone(), s.0.join(t.oid.repr()).display().to_string()))
            .collect();
        copy_base(&r.staged(&staged, relocate), cat, tablespaces, &staged)?;
        let root = s.0.clone();
        _scratch = s;
        root
    } else {
        base
    };
    let data = root.join("data");
    let mut protect = Vec::new();
    for t in tablespaces {
        let loc = r.location(t);
        ssh_ok(rc, &format!("mkdir -p {}", quote(&loc)))?;
        rsync(
            rc,
            &["--delete"],
            &format!("{}/", root.join(t.oid.repr()).display()),
            &format!(":{loc}/"),
        )?;
        protect.push(format!("/pg_tblspc/{}", t.oid.repr()));
        if let Some(inside) = loc.strip_prefix(&format!("{}/", r.dest.trim_end_matches('/'))) {
            protect.push(format!("/{inside}"));
        }
    }
    ssh_ok(rc, &format!("mkdir -p {}", quote(&r.dest)))?;
    let mut extra: Vec<String> = vec!["--delete-excluded".into()];
    for p in &protect {
        extra.push(format!("--filter=P {p}"));
        extra.push(format!("--exclude={p}"));
    }
    for e in PGDATA_EXCLUDES {
        extra.push(format!("--exclude={e}"));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    rsync(
        rc,
        &extra,
        &format!("{}/", data.display()),
        &format!(":{}/", r.dest),
    )?;
    let mut links = vec![format!("mkdir -p {}/pg_tblspc", quote(&r.dest))];
    for t in tablespaces {
        links.push(format!(
            "ln -sfn {} {}/pg_tblspc/{}",
            quote(&r.location(t)),
            quote(&r.dest),
            t.oid.repr()
        ));
    }
    ssh_ok(rc, &links.join(" && "))?;
    Ok(())
}

/// `.barman-recover.info` and the manifest rename, on the remote host.
pub fn finish_copy(rc: &str, r: &Request<'_>, cat: &ServerCatalog) -> Result<(), String> {
    let info = crate::catalog::backups::info_path(cat, &r.backup.id);
    rsync(
        rc,
        &[],
        &info.display().to_string(),
        &format!(":{}/.barman-recover.info", r.dest),
    )
    .map_err(|e| format!("copy of recovery metadata file failed: {e}"))?;
    let m = format!("{}/backup_manifest", r.dest);
    ssh_ok(
        rc,
        &format!(
            "if [ -e {0} ]; then mv {0} {1}; fi",
            quote(&m),
            quote(&format!("{m}.{}", r.backup.id))
        ),
    )?;
    Ok(())
}

/// Decompresses and checks the WAL locally, then sends it.
pub fn copy_wals(
    rc: &str,
    intake: &ServerIntake,
    entries: &[&Entry],
    wal_dest: &Path,
    jobs: usize,
) -> Result<(), String> {
    let s = Scratch::new(&std::env::temp_dir(), "barman_wal-")?;
    super::wal::copy(intake, entries, &s.0, jobs)?;
    ssh_ok(
        rc,
        &format!("mkdir -p -m 700 {}", quote(&wal_dest.display().to_string())),
    )?;
    rsync(
        rc,
        &[],
        &format!("{}/", s.0.display()),
        &format!(":{}/", wal_dest.display()),
    )
}

pub fn mark_done(rc: &str, wal_dest: &Path, entries: &[&Entry]) -> Result<(), String> {
    let s = Scratch::new(&std::env::temp_dir(), "barman_status-")?;
    super::wal::mark_done(&s.0, entries)?;
    rsync(
        rc,
        &[],
        &format!("{}/archive_status/", s.0.display()),
        &format!(":{}/archive_status/", wal_dest.display()),
    )
}

pub fn touch(rc: &str, path: &Path) -> Result<(), String> {
    ssh_ok(rc, &format!("touch {}", quote(&path.display().to_string()))).map(|_| ())
}

pub fn mkdir(rc: &str, path: &Path) -> Result<(), String> {
    ssh_ok(
        rc,
        &format!("mkdir -p {}", quote(&path.display().to_string())),
    )
    .map(|_| ())
}

pub fn exists(rc: &str, path: &Path) -> bool {
    ssh(
        rc,
        &format!("test -e {}", quote(&path.display().to_string())),
    )
    .is_ok_and(|o| o.status.success())
}

/// Fetches one configuration file, rewrites it locally, sends it back
/// with its `.origin`.
pub fn mangle(
    rc: &str,
    dest: &Path,
    file: &str,
    append: &[String],
) -> Result<(Vec<super::conf::Assertion>, Vec<super::conf::Assertion>), String> {
    let s = Scratch::new(&std::env::temp_dir(), "barman_recovery-")?;
    let remote = dest.join(file);
    if exists(rc, &remote) {
        rsync(
            rc,
            &[],
            &format!(":{}", remote.display()),
            &s.0.join(file).display().to_string(),
        )?;
    }
    let found = super::mangle_local(&s.0, file, append)?;
    for name in [file.to_string(), format!("{file}.origin")] {
        rsync(
            rc,
            &[],
            &s.0.join(&name).display().to_string(),
            &format!(":{}", dest.join(&name).display()),
        )
        .map_err(|e| format!("remote copy of configuration files failed: {e}"))?;
    }
    Ok(found)
}
