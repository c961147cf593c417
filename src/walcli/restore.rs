//! `barman-wal-restore BARMAN_HOST SERVER_NAME WAL_NAME WAL_DEST`, barman-cli
//! 3.19.1's `restore_command`: `ssh … barman get-wal SERVER WAL` with ssh's
//! stdout going straight into a staging file beside WAL_DEST, which is
//! decompressed if it arrived compressed (`-z`, `-j`, `--keep-compression`),
//! fsynced, and renamed over WAL_DEST.
//!
//! With `-p N` the first call asks `get-wal --peek N` for the requested name
//! and the next ones, fetches the others into the spool directory in
//! parallel (each staged and renamed in the same way), and later calls are
//! served by renaming the spool file onto WAL_DEST. Exit codes as
//! barman-cli: 0 fetched, the remote status when get-wal failed (1: not
//! found), 2 for ssh failures (255) and local errors, 3 for a bad WAL_DEST.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::{ArgAction, ArgGroup, Parser};

use super::{
    command, connectivity_test, error, exit_status, os_error, parse, ssh_prefix, Interrupt, VERSION,
};
use crate::compression::{self, Codec, CustomFilters};

pub const DEFAULT_USER: &str = "barman";
pub const DEFAULT_SPOOL_DIR: &str = "/var/tmp/walrestore";

/// barman-cli's argparse definition, flag for flag (argparse also accepts
/// unambiguous prefixes of long options, and repeated options).
#[derive(Debug, Parser)]
#[command(
    name = "barman-wal-restore",
    version = VERSION,
    about = "This script will be used as a 'restore_command' based on the get-wal \
             feature of Barman. A ssh connection will be opened to the Barman host.",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    infer_long_args = true,
    group(ArgGroup::new("compression").args(["gzip", "bzip2", "keep_compression"]).multiple(false)),
)]
pub struct Args {
    #[arg(short = 'h', long = "help", action = ArgAction::Help, help = "show this help message and exit")]
    help: Option<bool>,
    #[arg(short = 'V', long = "version", action = ArgAction::Version, help = "show program's version number and exit")]
    version: Option<bool>,
    #[arg(
        short = 'U',
        long = "user",
        default_value = DEFAULT_USER,
        hide_default_value = true,
        help = "The user used for the ssh connection to the Barman server. Defaults to 'barman'."
    )]
    pub user: String,
    #[arg(
        long = "port",
        help = "The port used for the ssh connection to the Barman server."
    )]
    pub port: Option<String>,
    #[arg(
        short = 's',
        long = "sleep",
        default_value_t = 0,
        hide_default_value = true,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        help = "Sleep for SECONDS after a failure of get-wal request. Defaults to 0 (nowait)."
    )]
    pub sleep: i64,
    #[arg(
        short = 'p',
        long = "parallel",
        default_value_t = 0,
        hide_default_value = true,
        allow_negative_numbers = true,
        value_name = "JOBS",
        help = "Specifies the number of files to peek and transfer in parallel. Defaults to 0 (disabled)."
    )]
    pub parallel: i64,
    #[arg(
        long = "spool-dir",
        default_value = DEFAULT_SPOOL_DIR,
        hide_default_value = true,
        value_name = "SPOOL_DIR",
        help = "Specifies spool directory for WAL files. Defaults to '/var/tmp/walrestore'."
    )]
    pub spool_dir: PathBuf,
    #[arg(
        short = 'P',
        long = "partial",
        help = "retrieve also partial WAL files (.partial)"
    )]
    pub partial: bool,
    #[arg(
        short = 'z',
        long = "gzip",
        help = "Transfer the WAL files compressed with gzip"
    )]
    pub gzip: bool,
    #[arg(
        short = 'j',
        long = "bzip2",
        help = "Transfer the WAL files compressed with bzip2"
    )]
    pub bzip2: bool,
    #[arg(
        long = "keep-compression",
        help = "Preserve compression during transfer, decompress once received"
    )]
    pub keep_compression: bool,
    #[arg(
        short = 'c',
        long = "config",
        value_name = "CONFIG",
        help = "configuration file on the Barman server"
    )]
    pub config: Option<String>,
    #[arg(
        short = 't',
        long = "test",
        help = "test both the connection and the configuration of the requested PostgreSQL \
                server in Barman to make sure it is ready to receive WAL files. With this \
                option, the 'wal_name' and 'wal_dest' mandatory arguments are ignored."
    )]
    pub test: bool,
    #[arg(value_name = "BARMAN_HOST", help = "The host of the Barman server.")]
    pub barman_host: String,
    #[arg(
        value_name = "SERVER_NAME",
        help = "The server name configured in Barman from which WALs are taken."
    )]
    pub server_name: String,
    #[arg(
        value_name = "WAL_NAME",
        help = "The value of the '%f' keyword (according to 'restore_command')."
    )]
    pub wal_name: String,
    #[arg(
        value_name = "WAL_DEST",
        help = "The value of the '%p' keyword (according to 'restore_command')."
    )]
    pub wal_dest: PathBuf,
}

impl Args {
    fn compression(&self) -> Option<&'static str> {
        if self.gzip {
            Some("gzip")
        } else if self.bzip2 {
            Some("bzip2")
        } else {
            None
        }
    }
}

/// Why a call fails, worded as barman-cli prints it after `ERROR: `.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("WAL_DEST cannot be a directory: {0}")]
    DestIsDirectory(String),
    #[error("Cannot open '{dest}' (WAL_DEST) for writing: {reason}")]
    OpenDest { dest: String, reason: String },
    #[error("Failure moving {from} to {to}: {reason}")]
    SpoolMove {
        from: String,
        to: String,
        reason: String,
    },
    #[error("Cannot create '{dir}' directory: {reason}")]
    SpoolDir { dir: String, reason: String },
    #[error("Impossible to invoke remote get-wal --peek: {0}")]
    Peek(String),
    #[error("The required file is not available: {0}")]
    NotAvailable(String),
    #[error("Error executing \"ssh\": {0}")]
    Spawn(String),
    #[error("Connection problem with ssh")]
    Connection,
    #[error("Remote 'barman get-wal' command has failed!")]
    Remote(u8),
    /// Ours: the received file could not be decompressed, synced or renamed.
    #[error("Cannot store WAL file '{dest}': {reason}")]
    Store { dest: String, reason: String },
}

impl RestoreError {
    pub fn status(&self) -> u8 {
        match self {
            RestoreError::DestIsDirectory(_) | RestoreError::OpenDest { .. } => 3,
            RestoreError::Remote(code) => *code,
            _ => 2,
        }
    }

    /// barman-cli sleeps `--sleep` seconds only after get-wal attempts.
    fn sleeps(&self) -> bool {
        matches!(
            self,
            RestoreError::Spawn(_)
                | RestoreError::Connection
                | RestoreError::Remote(_)
                | RestoreError::Store { .. }
        )
    }
}

pub fn main(argv: Vec<OsString>) -> u8 {
    let args: Args = match parse(argv) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.test {
        return connectivity_test(&ssh_argv(&args, "dummy_wal_name", 0), "get-wal");
    }
    if let Some(c) = args.compression() {
        println!(
            "WARNING: `{c}` option is deprecated and will be removed in future versions. \
             For WAL compression, please make sure to enable it directly on the Barman \
             server via the `compression` configuration option"
        );
    }
    match restore(&args) {
        Ok(()) => 0,
        Err(e) => {
            error(&e.to_string());
            if e.sleeps() && args.sleep != 0 {
                eprintln!("Sleeping for {} seconds.", args.sleep);
                std::thread::sleep(Duration::from_secs(args.sleep.max(0) as u64));
            }
            e.status()
        }
    }
}

/// barman-cli's `build_ssh_command`: the options and both names travel as
/// one word, single-quoted for the remote shell.
pub fn ssh_argv(args: &Args, wal_name: &str, peek: i64) -> Vec<String> {
    let mut argv = ssh_prefix(args.port.as_deref(), &args.user, &args.barman_host);
    if let Some(c) = args.config.as_deref().filter(|c| !c.is_empty()) {
        argv.push(format!("--config {c}"));
    }
    let mut options = Vec::new();
    if args.test {
        options.push("--test".to_string());
    }
    if peek != 0 {
        options.push(format!("--peek '{peek}'"));
    }
    if let Some(c) = args.compression() {
        options.push(format!("--{c}"));
    }
    if args.keep_compression {
        options.push("--keep-compression".to_string());
    }
    if args.partial {
        options.push("--partial".to_string());
    }
    let names = format!("'{}' '{}'", args.server_name, wal_name);
    argv.push(if options.is_empty() {
        format!("get-wal {names}")
    } else {
        format!("get-wal {} {names}", options.join(" "))
    });
    argv
}

fn restore(args: &Args) -> Result<(), RestoreError> {
    let dest = &args.wal_dest;
    if dest.is_dir() {
        return Err(RestoreError::DestIsDirectory(dest.display().to_string()));
    }
    let interrupt = Interrupt::install();
    // barman-cli opens WAL_DEST at this point; we open its staging name
    // beside it, so that WAL_DEST only ever appears complete.
    let main = Staged::create(dest, &interrupt).map_err(|e| RestoreError::OpenDest {
        dest: dest.display().to_string(),
        reason: os_error(&e, Some(dest)),
    })?;

    let spool_file = args.spool_dir.join(&args.wal_name);
    match from_spool(&spool_file, dest)? {
        FromSpool::Absent => {}
        FromSpool::Moved => return Ok(()),
        FromSpool::Copy(mut src) => {
            let moved = io::copy(&mut src, &mut &main.file)
                .map_err(|e| e.to_string())
                .and_then(|_| main.commit())
                .and_then(|()| std::fs::remove_file(&spool_file).map_err(|e| e.to_string()));
            return moved.map_err(|reason| RestoreError::SpoolMove {
                from: spool_file.display().to_string(),
                to: dest.display().to_string(),
                reason,
            });
        }
    }

    let additional = peek_additional_files(args)?;
    let mut child = spawn_get_wal(args, &args.wal_name, &main, &interrupt)
        .map_err(|e| RestoreError::Spawn(os_error(&e, Some(Path::new("ssh")))))?;
    let workers: Vec<(Staged, Child)> = additional
        .iter()
        .filter_map(|name| {
            // A spool file that cannot be fetched is simply not prefetched.
            let staged = Staged::create(&args.spool_dir.join(name), &interrupt).ok()?;
            let child = spawn_get_wal(args, name, &staged, &interrupt).ok()?;
            Some((staged, child))
        })
        .collect();

    std::thread::scope(|s| {
        for (staged, mut child) in workers {
            s.spawn(move || {
                if child.wait().is_ok_and(|st| st.success()) {
                    let _ = staged.commit();
                }
                // Otherwise `staged` drops: barman-cli unlinks failed spool files.
            });
        }
        let status = child
            .wait()
            .map_err(|e| RestoreError::Spawn(os_error(&e, None)))?;
        match status.code() {
            Some(0) => main.commit().map_err(|reason| RestoreError::Store {
                dest: dest.display().to_string(),
                reason,
            }),
            Some(255) => Err(RestoreError::Connection),
            _ => Err(RestoreError::Remote(exit_status(status))),
        }
    })
}

fn spawn_get_wal(
    args: &Args,
    wal_name: &str,
    into: &Staged,
    interrupt: &Interrupt,
) -> io::Result<Child> {
    let mut cmd = command(&ssh_argv(args, wal_name, 0));
    // Several ssh run at once: none reads our stdin.
    cmd.stdin(Stdio::null()).stdout(into.file.try_clone()?);
    let child = cmd.spawn()?;
    interrupt.child(child.id());
    Ok(child)
}

enum FromSpool {
    Absent,
    Moved,
    /// On another file system: copy, then commit as a fetched file.
    Copy(File),
}

/// barman-cli's `try_deliver_from_spool` (`shutil.move`).
fn from_spool(spool_file: &Path, dest: &Path) -> Result<FromSpool, RestoreError> {
    if !spool_file.exists() {
        return Ok(FromSpool::Absent);
    }
    let failed = |e: &io::Error| RestoreError::SpoolMove {
        from: spool_file.display().to_string(),
        to: dest.display().to_string(),
        reason: match e.raw_os_error() {
            Some(n) => format!(
                "[Errno {n}] {}: '{}' -> '{}'",
                crate::catalog::strerror(e),
                spool_file.display(),
                dest.display()
            ),
            None => e.to_string(),
        },
    };
    match std::fs::rename(spool_file, dest) {
        Ok(()) => Ok(FromSpool::Moved),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => File::open(spool_file)
            .map(FromSpool::Copy)
            .map_err(|e| failed(&e)),
        Err(e) => Err(failed(&e)),
    }
}

/// barman-cli's `peek_additional_files`: the names after WAL_NAME that
/// `get-wal --peek N` lists, once it confirmed WAL_NAME exists.
fn peek_additional_files(args: &Args) -> Result<Vec<String>, RestoreError> {
    if args.parallel == 0 {
        return Ok(Vec::new());
    }
    let dir = &args.spool_dir;
    if !dir.exists() {
        std::fs::create_dir(dir).map_err(|e| RestoreError::SpoolDir {
            dir: dir.display().to_string(),
            reason: os_error(&e, Some(dir)),
        })?;
    }
    let out = command(&ssh_argv(args, &args.wal_name, args.parallel))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| RestoreError::Peek(os_error(&e, Some(Path::new("ssh")))))?;
    // Like barman-cli, the listing decides, whatever ssh's status.
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if names.first() != Some(&args.wal_name) {
        return Err(RestoreError::NotAvailable(args.wal_name.clone()));
    }
    names.remove(0);
    // File names only: a listing line never names a path outside the spool.
    names.retain(|n| !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\0']));
    Ok(names)
}

static STAGED: AtomicUsize = AtomicUsize::new(0);

/// A file being received: `.<name>.<pid>-<n>.tmp` beside its final name,
/// removed unless committed.
struct Staged {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    interrupt: Interrupt,
    committed: bool,
}

impl Staged {
    fn create(dest: &Path, interrupt: &Interrupt) -> io::Result<Staged> {
        let base = dest
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::EISDIR))?;
        let mut name = OsString::from(".");
        name.push(base);
        name.push(format!(
            ".{}-{}.tmp",
            std::process::id(),
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dest.with_file_name(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        interrupt.temp(&tmp);
        Ok(Staged {
            file,
            tmp,
            dest: dest.to_path_buf(),
            interrupt: interrupt.clone(),
            committed: false,
        })
    }

    /// Decompresses what arrived compressed (barman-cli identifies the
    /// codec by magic the same way), fsyncs, and renames over the final
    /// name.
    fn commit(mut self) -> Result<(), String> {
        let mut head = [0u8; 10];
        let mut n = 0;
        while n < head.len() {
            match self.file.read_at(&mut head[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if let Some(codec) = Codec::detect(&head[..n], None) {
            let mut data = Vec::new();
            self.file
                .seek(SeekFrom::Start(0))
                .and_then(|_| self.file.read_to_end(&mut data))
                .map_err(|e| e.to_string())?;
            let mut plain = Vec::new();
            compression::decompress(codec, &data, &CustomFilters::default(), &mut plain)
                .map_err(|e| format!("cannot decompress it: {e}"))?;
            self.file
                .set_len(0)
                .and_then(|_| self.file.write_all_at(&plain, 0))
                .map_err(|e| e.to_string())?;
        }
        // Data and size on disk before the name appears.
        self.file.sync_data().map_err(|e| e.to_string())?;
        let (tmp, dest) = (&self.tmp, &self.dest);
        self.interrupt
            .settle(tmp, || std::fs::rename(tmp, dest))
            .map_err(|e| e.to_string())?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let tmp = &self.tmp;
            let _ = self.interrupt.settle(tmp, || std::fs::remove_file(tmp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["barman-wal-restore"];
        argv.extend_from_slice(extra);
        argv.extend([
            "bkp",
            "pg",
            "000000010000000000000002",
            "pg_wal/RECOVERYXLOG",
        ]);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn argv_is_barman_clis() {
        assert_eq!(
            ssh_argv(&args(&[]), "000000010000000000000002", 0),
            [
                "ssh",
                "-q",
                "-T",
                "barman@bkp",
                "barman",
                "get-wal 'pg' '000000010000000000000002'"
            ]
        );
        let a = args(&[
            "--port",
            "22",
            "-U",
            "me",
            "-c",
            "/etc/b.conf",
            "-P",
            "-z",
            "-p",
            "4",
        ]);
        assert_eq!(
            ssh_argv(&a, "000000010000000000000002", 4),
            [
                "ssh",
                "-p",
                "22",
                "-q",
                "-T",
                "me@bkp",
                "barman",
                "--config /etc/b.conf",
                "get-wal --peek '4' --gzip --partial 'pg' '000000010000000000000002'"
            ]
        );
        let a = args(&["-t", "--keep-compression"]);
        assert_eq!(
            ssh_argv(&a, "dummy_wal_name", 0).last().unwrap(),
            "get-wal --test --keep-compression 'pg' 'dummy_wal_name'"
        );
    }

    #[test]
    fn parses_like_argparse() {
        let a = args(&["--spool", "/s", "--paral", "3", "-z", "-z", "-s", "-1"]);
        assert_eq!(a.spool_dir, Path::new("/s"));
        assert_eq!((a.parallel, a.sleep, a.gzip), (3, -1, true));
        let a = args(&[]);
        assert_eq!(a.user, "barman");
        assert_eq!(a.spool_dir, Path::new(DEFAULT_SPOOL_DIR));
        assert_eq!((a.parallel, a.sleep, a.port), (0, 0, None));
        for bad in [
            &["-z", "-j"][..],
            &["-j", "--keep-compression"],
            &["-p", "x"],
            &["--par", "3"],
        ] {
            let mut argv = vec!["barman-wal-restore"];
            argv.extend_from_slice(bad);
            argv.extend(["h", "s", "w", "d"]);
            assert_eq!(Args::try_parse_from(argv).unwrap_err().exit_code(), 2);
        }
    }
}
