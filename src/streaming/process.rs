//! The receive-wal process seen from outside: cron's background start
//! (Barman's `background_receive_wal`) and `--stop` (SIGINT to the lock
//! owner, then up to ten probes a second apart).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::catalog::lock::{self, LockNames};
use crate::output::Output;

/// Starts `barman -c <config> -q receive-wal <server>` in a session of its
/// own unless one holds the server's receive-wal lock. Returns whether it
/// started one.
pub fn start_in_background(
    out: &mut Output,
    lock_dir: &Path,
    config_file: &Path,
    server: &str,
    keep_descriptors: bool,
) -> bool {
    let path = LockNames { dir: lock_dir }.receive_wal(server);
    match lock::acquire(&path, false) {
        Ok(held) => {
            out.info_nolog(&format!("Starting streaming archiver for server {server}"));
            drop(held);
        }
        Err(_) => {
            log::debug!("Another STREAMING ARCHIVER process is running for server {server}");
            return false;
        }
    }
    match spawn_barman(
        config_file,
        &["-q", "receive-wal", server],
        keep_descriptors,
    ) {
        Ok(pid) => {
            log::debug!("BarmanSubProcess: subprocess started. pid: {pid}");
            true
        }
        Err(e) => {
            out.error(&format!(
                "Cannot start receive-wal for server {server}: {e}"
            ));
            false
        }
    }
}

/// Starts `barman -c <config> <args>` (this binary) detached, as Barman's
/// `BarmanSubProcess`: stdin from /dev/null, output discarded unless
/// `keep_descriptors`, a session of its own, not waited for.
pub fn spawn_barman(
    config_file: &Path,
    args: &[&str],
    keep_descriptors: bool,
) -> std::io::Result<u32> {
    let exe = std::env::current_exe().unwrap_or_else(|_| "barman".into());
    let mut cmd = Command::new(exe);
    cmd.arg("-c")
        .arg(config_file)
        .args(args)
        .stdin(Stdio::null());
    if !keep_descriptors {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    // A session of its own: cron's end (or a terminal's) does not stop it.
    detach(&mut cmd);
    cmd.spawn().map(|c| c.id())
}

/// A process group of its own (Barman uses setsid): signals sent to
/// cron's group, or a terminal's, do not reach the receiver.
fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Barman's ProcessManager tasks, in its matching order: the first
/// suffix a lock file name ends with names its task.
const TASKS: &[(&str, &str)] = &[
    ("receive-wal", "-receive-wal.lock"),
    ("sync-backup", "-sync-backup.lock"),
    ("backup", "-backup.lock"),
    ("cron", "-cron.lock"),
    ("archive-wal", "-archive-wal.lock"),
    ("sync-wal", "-sync-wal.lock"),
];

/// The server's running barman processes (pid, task), from the owners of
/// `.<server>-*.lock` (as Barman's glob, a server whose name extends this
/// one's is matched too).
pub fn processes(lock_dir: &Path, server: &str) -> Vec<(u32, &'static str)> {
    let prefix = format!(".{server}-");
    let mut names: Vec<String> = std::fs::read_dir(lock_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".lock"))
        .collect();
    names.sort();
    let mut found = Vec::new();
    for n in names {
        let Some((task, _)) = TASKS.iter().find(|(task, suffix)| {
            n.ends_with(suffix)
                // sync-backup locks are `.<server>-<id>-sync-backup.lock`.
                && (*task != "sync-backup" || n[1..n.len() - suffix.len()].contains('-'))
                && n.len() > suffix.len() + 1
        }) else {
            continue;
        };
        if let Some(pid) = lock::owner(&lock_dir.join(&n)) {
            found.push((pid, *task));
        }
    }
    found
}

/// What a stop found.
pub enum Stopped {
    Yes(u32),
    Failed(u32, Option<String>),
    NoProcess,
}

/// Barman's `kill`: SIGINT to the first process of `task`, then up to ten
/// probes a second apart.
pub fn stop(lock_dir: &Path, server: &str, task: &str) -> Stopped {
    let Some((pid, _)) = processes(lock_dir, server)
        .into_iter()
        .find(|(_, t)| *t == task)
    else {
        return Stopped::NoProcess;
    };
    let target = Pid::from_raw(pid as i32);
    match kill(target, Signal::SIGINT) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => return Stopped::Yes(pid),
        Err(e) => return Stopped::Failed(pid, Some(format!("[Errno {}] {}", e as i32, e.desc()))),
    }
    for _ in 0..10 {
        match kill(target, None) {
            Err(nix::errno::Errno::ESRCH) => return Stopped::Yes(pid),
            Err(e) => {
                return Stopped::Failed(pid, Some(format!("[Errno {}] {}", e as i32, e.desc())))
            }
            Ok(()) => {}
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Stopped::Failed(pid, None)
}

/// Reports a stop as Barman does.
pub fn report(out: &mut Output, server: &str, task: &str, stopped: Stopped, fail_if_absent: bool) {
    match stopped {
        Stopped::Yes(pid) => out.info(&format!("Stopped process {task}({pid})")),
        Stopped::Failed(pid, why) => {
            if let Some(w) = why {
                out.error(&w);
            }
            out.error(&format!("Cannot terminate process {task}({pid})"));
        }
        Stopped::NoProcess if fail_if_absent => out.error(&format!(
            "Termination of {task} failed: no such process for server {server}"
        )),
        Stopped::NoProcess => {}
    }
}
