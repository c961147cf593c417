//! barman-cli's `barman-wal-restore` and `barman-wal-archive`, in the same
//! binary as `barman` and chosen by the name it is run under
//! (`ln -s barman barman-wal-restore`). They read no configuration: each
//! call parses its arguments, runs `ssh` with the argv barman-cli 3.19.1
//! builds (no shell on this side), and maps the outcome to barman-cli's
//! messages and exit codes. What they add is durability: a fetched WAL
//! becomes visible under its final name (WAL_DEST, or the spool file of a
//! parallel fetch) only complete and fsynced.

pub mod archive;
pub mod restore;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::signal::{SigSet, Signal};

/// The barman-cli release these clients behave as (`-V`).
pub const VERSION: &str = "3.19.1";

/// Runs a client when the binary was started as `barman-wal-restore` or
/// `barman-wal-archive` (argv[0]'s file name); `None` otherwise.
pub fn dispatch() -> Option<ExitCode> {
    let argv0 = std::env::args_os().next()?;
    let run: fn(Vec<OsString>) -> u8 = match Path::new(&argv0).file_name()?.to_str()? {
        "barman-wal-restore" => restore::main,
        "barman-wal-archive" => archive::main,
        _ => return None,
    };
    Some(ExitCode::from(run(std::env::args_os().collect())))
}

/// Parses with clap as argparse would answer: help and version on stdout
/// with status 0, usage errors on stderr with status 2.
fn parse<P: clap::Parser>(argv: Vec<OsString>) -> Result<P, u8> {
    P::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        e.exit_code().clamp(0, 255) as u8
    })
}

/// `ssh [-p PORT] -q -T USER@HOST barman`, the start of both clients' argv.
fn ssh_prefix(port: Option<&str>, user: &str, host: &str) -> Vec<String> {
    let mut argv = vec!["ssh".to_string()];
    if let Some(p) = port {
        argv.extend(["-p".to_string(), p.to_string()]);
    }
    argv.extend([
        "-q".to_string(),
        "-T".to_string(),
        format!("{user}@{host}"),
        "barman".to_string(),
    ]);
    argv
}

fn command(argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// Python's `str(OSError)`: `[Errno 2] No such file or directory: 'path'`,
/// or `[Errno 32] Broken pipe` without a path.
fn os_error(e: &io::Error, path: Option<&Path>) -> String {
    match (e.raw_os_error(), path) {
        (Some(n), Some(p)) => format!(
            "[Errno {n}] {}: '{}'",
            crate::catalog::strerror(e),
            p.display()
        ),
        (Some(n), None) => format!("[Errno {n}] {}", crate::catalog::strerror(e)),
        (None, _) => e.to_string(),
    }
}

/// The status Python's `sys.exit(returncode)` gives: the code, or for a
/// child killed by signal N, `-N` truncated to a byte.
fn exit_status(status: ExitStatus) -> u8 {
    match status.code() {
        Some(c) => c as u8,
        None => (-status.signal().unwrap_or(0)) as u8,
    }
}

fn error(message: &str) {
    eprintln!("ERROR: {message}");
}

/// `--test`: runs the remote command with stdout and stderr on one pipe,
/// prints what came back plus a newline (Python's `print`), and exits with
/// ssh's own status (255 included).
fn connectivity_test(argv: &[String], remote: &str) -> u8 {
    let run = || -> io::Result<(Vec<u8>, ExitStatus)> {
        let (mut reader, writer) = io::pipe()?;
        let mut cmd = command(argv);
        cmd.stdout(writer.try_clone()?).stderr(writer);
        let mut child = cmd.spawn()?;
        // The Command holds write ends of the pipe: drop it to see EOF.
        drop(cmd);
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok((out, child.wait()?))
    };
    match run() {
        Ok((out, status)) => {
            let mut so = io::stdout().lock();
            let _ = so.write_all(&out).and_then(|_| so.write_all(b"\n"));
            let _ = so.flush();
            exit_status(status)
        }
        Err(e) => {
            error(&format!(
                "Impossible to invoke remote {remote}: {}",
                os_error(&e, Some(Path::new("ssh")))
            ));
            2
        }
    }
}

/// What to undo when SIGINT arrives: the ssh children to kill and the
/// temporary files to remove. barman-cli catches SIGINT the same way (kill,
/// `SIGINT received! Terminating.`, status 2), so PostgreSQL sees a failed
/// command to retry rather than one killed by a signal, which would abort
/// recovery.
#[derive(Clone, Default)]
struct Interrupt(Arc<Mutex<Pending>>);

#[derive(Default)]
struct Pending {
    pids: Vec<u32>,
    temps: Vec<PathBuf>,
}

impl Interrupt {
    /// Blocks SIGINT in this thread (threads started later inherit the
    /// mask; children get a clean one from std) and has one thread wait
    /// for it.
    fn install() -> Interrupt {
        let me = Interrupt::default();
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        if set.thread_block().is_ok() {
            let pending = me.clone();
            let spawned = std::thread::Builder::new()
                .name("sigint".into())
                .spawn(move || {
                    if set.wait().is_ok() {
                        let p = pending.lock();
                        for pid in &p.pids {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(*pid as i32),
                                Signal::SIGKILL,
                            );
                        }
                        for t in &p.temps {
                            let _ = std::fs::remove_file(t);
                        }
                        error("SIGINT received! Terminating.");
                        std::process::exit(2);
                    }
                });
            if spawned.is_err() {
                let _ = set.thread_unblock();
            }
        }
        me
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn child(&self, pid: u32) {
        self.lock().pids.push(pid);
    }

    fn temp(&self, path: &Path) {
        self.lock().temps.push(path.to_path_buf());
    }

    /// Runs `f` (a rename or removal of `path`) with the handler held off,
    /// then forgets `path`.
    fn settle<T>(&self, path: &Path, f: impl FnOnce() -> T) -> T {
        let mut p = self.lock();
        let out = f();
        p.temps.retain(|t| t != path);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_puts_the_port_first_as_barman_cli_does() {
        assert_eq!(
            ssh_prefix(Some("2222"), "barman", "bkp"),
            ["ssh", "-p", "2222", "-q", "-T", "barman@bkp", "barman"]
        );
        assert_eq!(
            ssh_prefix(None, "u", "h"),
            ["ssh", "-q", "-T", "u@h", "barman"]
        );
    }

    #[test]
    fn os_errors_read_like_python() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(
            os_error(&e, Some(Path::new("/x/y"))),
            "[Errno 2] No such file or directory: '/x/y'"
        );
        let e = io::Error::from_raw_os_error(32);
        assert_eq!(os_error(&e, None), "[Errno 32] Broken pipe");
    }

    #[test]
    fn signal_deaths_wrap_like_sys_exit() {
        assert_eq!(exit_status(ExitStatus::from_raw(9)), 247);
        assert_eq!(exit_status(ExitStatus::from_raw(255 << 8)), 255);
        assert_eq!(exit_status(ExitStatus::from_raw(1 << 8)), 1);
    }
}
