//! Durable file writes. Every file barman-rs puts into the catalog goes
//! through here.
//!
//! # Crash protocol
//!
//! 1. Content is written to a *staging* file in the target's own directory,
//!    named `.<name>.<tag>.barman-rs.tmp`: never a name a reader looks up,
//!    and deterministic, so a rerun after a crash overwrites (not leaks) it.
//! 2. The staging file is fsynced, then renamed onto the final name with
//!    `RENAME_NOREPLACE`: an existing file is never replaced, so the same
//!    name with different content can never be overwritten (the caller sends
//!    the source to errors/ instead). Filesystems without renameat2 get
//!    link(2) + unlink(2), which is just as exclusive.
//!    A file that needs no transformation and lives on the same filesystem
//!    is not copied: it is fsynced in place and hard-linked onto the final
//!    name (link(2) refuses an existing name, like RENAME_NOREPLACE).
//! 3. The target directory is fsynced (once per batch of renames).
//! 4. Only then may the caller record the file (xlog.db append + fsync) and
//!    only after that remove the source, then fsync the source directory.
//!
//! A crash (kill -9, power loss) at any point leaves the source in place, or
//! the source and a complete archived copy (the rerun finds an identical
//! duplicate and completes the catalog), never neither. A [`Staged`] file
//! dropped without [`Staged::commit`] is removed: `Drop` never commits.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file being written next to its final name.
pub struct Staged {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
}

/// The staging name for `target`; `tag` tells apart writers of the same
/// target (e.g. the same WAL from streaming/ and incoming/).
pub fn staging_path(target: &Path, tag: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{tag}.barman-rs.tmp"))
}

impl Staged {
    /// Creates (or truncates a stale) staging file for `target` with `mode`.
    pub fn create(target: &Path, tag: &str, mode: u32) -> io::Result<Staged> {
        let tmp = staging_path(target, tag);
        // A stale staging file from a crashed run may be read-only.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        Ok(Staged {
            file: Some(file),
            tmp,
            target: target.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("present until commit")
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Closes the descriptor once the content is synced: a wide pipeline
    /// holds many staged files and should not hold as many descriptors.
    pub fn close(&mut self) {
        drop(self.file.take());
    }

    /// Writes all of `data` and fsyncs it: after this the content is on
    /// disk, under the staging name.
    pub fn write_synced(&mut self, data: &[u8]) -> io::Result<()> {
        let f = self.file();
        f.write_all(data)?;
        f.sync_all()
    }

    /// Renames onto the final name, refusing to replace an existing file
    /// (`AlreadyExists`). The directory is *not* fsynced: the caller does it
    /// once per batch with [`sync_dir`].
    pub fn commit(mut self) -> io::Result<()> {
        drop(self.file.take());
        rename_noreplace(&self.tmp, &self.target)?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A file ready to appear under its final name: staged content, or an
/// existing complete and fsynced file on the same filesystem that is
/// hard-linked there (no copy; link(2) never replaces either).
pub enum Pending {
    Staged(Staged),
    /// `inode` is `(st_dev, st_ino)` of the file that was checked: the link
    /// is refused if `from` names another file by commit time.
    Link {
        from: PathBuf,
        to: PathBuf,
        inode: (u64, u64),
    },
}

impl Pending {
    pub fn target(&self) -> &Path {
        match self {
            Pending::Staged(s) => s.target(),
            Pending::Link { to, .. } => to,
        }
    }

    /// Makes the file appear under its final name, or fails with
    /// `AlreadyExists`. The directory fsync is the caller's, per batch.
    pub fn commit(self) -> io::Result<()> {
        match self {
            Pending::Staged(s) => s.commit(),
            Pending::Link { from, to, inode } => {
                use std::os::unix::fs::MetadataExt;
                let now = std::fs::symlink_metadata(&from)?;
                if (now.dev(), now.ino()) != inode {
                    return Err(io::Error::other(format!(
                        "{} was replaced while it was being archived",
                        from.display()
                    )));
                }
                match std::fs::hard_link(&from, &to) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        // No hard links here (EXDEV across bind mounts, EPERM,
                        // ENOTSUP): copy through a staged file instead.
                        log::debug!("link {} failed ({e}); copying", from.display());
                        copy_staged(&from, &to)
                    }
                    other => other,
                }
            }
        }
    }
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            // No renameat2 here (old kernel, some network filesystems):
            // link(2) refuses an existing name just as well.
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// fsyncs a directory, making the renames and unlinks in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Copies `from` to a staged `to` (mode and times kept), fsynced, and
/// renames it into place without replacing.
fn copy_staged(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(from)?;
    let mut staged = Staged::create(to, "copy", meta.permissions().mode() & 0o7777)?;
    io::copy(&mut File::open(from)?, staged.file())?;
    staged.file().set_times(
        std::fs::FileTimes::new()
            .set_accessed(meta.accessed()?)
            .set_modified(meta.modified()?),
    )?;
    staged.file().sync_all()?;
    staged.commit()
}

/// Moves `from` to `to` (never replacing), durably: rename when both are on
/// one filesystem, else copy + fsync + remove. Both directories are fsynced.
pub fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match rename_noreplace(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let mode = std::fs::metadata(from).map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode()
            })?;
            let mut staged = Staged::create(to, "move", mode)?;
            io::copy(&mut File::open(from)?, staged.file())?;
            staged.file().sync_all()?;
            staged.commit()?;
            sync_dir(parent(to))?;
            std::fs::remove_file(from)?;
        }
        Err(e) => return Err(e),
    }
    sync_dir(parent(to))?;
    sync_dir(parent(from))
}

/// Writes a whole small file durably (replacing it): staging, fsync,
/// rename, directory fsync. For metadata such as identity.json.
pub fn write_replace(target: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut staged = Staged::create(target, "replace", mode)?;
    staged.write_synced(data)?;
    let tmp = std::mem::take(&mut staged.tmp);
    drop(staged);
    std::fs::rename(&tmp, target)?;
    sync_dir(parent(target))
}

pub fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_never_replaces_and_drop_never_commits() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("A");
        let mut s = Staged::create(&target, "t", 0o600).unwrap();
        s.write_synced(b"one").unwrap();
        drop(s);
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut s = Staged::create(&target, "t", 0o600).unwrap();
        s.write_synced(b"one").unwrap();
        s.commit().unwrap();
        let mut s = Staged::create(&target, "t", 0o600).unwrap();
        s.write_synced(b"two").unwrap();
        let err = s.commit().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn move_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"x").unwrap();
        move_file(&a, &b).unwrap();
        assert!(!a.exists() && b.exists());
        write_replace(&b, b"y", 0o644).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"y");
    }
}
