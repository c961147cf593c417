//! Barman-compatible lock files: `open(O_CREAT|O_RDWR, 0600)`, `flock(LOCK_EX
//! [|LOCK_NB])`, then the owner's `<pid>\n` as the whole content. Barman and
//! barman-rs processes therefore exclude each other on the same catalog.
//!
//! The lock is held for as long as the [`Lock`] value lives: dropping it
//! closes the descriptor, which releases the flock. The file itself stays
//! (Barman's `lock-directory-cleanup` removes unused ones).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it (only for non-blocking locks).
    #[error("lock file {path} is held by another process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy { path: PathBuf, pid: Option<u32> },
    #[error("cannot take lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock at `path`, waiting for it when `wait` is true.
pub fn acquire(path: &Path, wait: bool) -> Result<Lock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    if wait {
        file.lock().map_err(io)?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    path: path.to_path_buf(),
                    pid: read_pid(&mut file),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let content = format!("{}\n", std::process::id());
    file.write_all(content.as_bytes()).map_err(io)?;
    file.set_len(content.len() as u64).map_err(io)?;
    Ok(Lock {
        path: path.to_path_buf(),
        _file: file,
    })
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// The pid of the process holding `path`, or None when it is free.
/// Only probes: the file keeps its content, as Barman's lookup leaves it.
pub fn owner(path: &Path) -> Option<u32> {
    let mut file = OpenOptions::new().read(true).open(path).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => read_pid(&mut file),
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// The lock file names Barman uses, all in `barman_lock_directory`.
pub struct LockNames<'a> {
    pub dir: &'a Path,
}

impl LockNames<'_> {
    fn named(&self, name: String) -> PathBuf {
        self.dir.join(name)
    }
    pub fn cron(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-cron.lock"))
    }
    pub fn backup(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-backup.lock"))
    }
    pub fn archive_wal(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-archive-wal.lock"))
    }
    pub fn receive_wal(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-receive-wal.lock"))
    }
    pub fn xlogdb(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-xlogdb.lock"))
    }
    pub fn backup_id(&self, server: &str, id: &str) -> PathBuf {
        self.named(format!(".{server}-{id}.lock"))
    }
    pub fn sync_backup(&self, server: &str, id: &str) -> PathBuf {
        self.named(format!(".{server}-{id}-sync-backup.lock"))
    }
    pub fn sync_wal(&self, server: &str) -> PathBuf {
        self.named(format!(".{server}-sync-wal.lock"))
    }
}

/// Barman's `lock_files_cleanup`: every `.*.lock` in `dir` that nobody
/// holds is removed. Returns the removed paths.
pub fn cleanup(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".lock"))
        })
        .collect();
    paths.sort();
    for path in paths {
        // Held while unlinking, so nobody can be between open and flock on
        // the file we remove and believe they own a lock.
        if let Ok(_lock) = acquire(&path, false) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_pid_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pg-archive-wal.lock");
        let held = acquire(&path, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        match acquire(&path, false) {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected busy, got {other:?}"),
        }
        assert_eq!(owner(&path), Some(std::process::id()));
        assert_eq!(cleanup(dir.path()).unwrap(), Vec::<PathBuf>::new());
        drop(held);
        assert_eq!(owner(&path), None);
        assert_eq!(cleanup(dir.path()).unwrap(), vec![path.clone()]);
        assert!(!path.exists());
    }
}
