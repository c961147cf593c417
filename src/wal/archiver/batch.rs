//! Barman's `get_next_batch`: which files of incoming/ or streaming/ one
//! run takes, which are junk (errors/), and which streaming file is held
//! back for pg_receivewal.

use std::io;
use std::path::{Path, PathBuf};

use crate::wal::name::{Kind, WalName};

/// Which directory a group of files comes from, named as Barman prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Streaming,
    FileArchival,
}

impl Origin {
    pub(super) fn label(self) -> &'static str {
        match self {
            Origin::Streaming => "streaming",
            Origin::FileArchival => "file archival",
        }
    }
}

/// One archiver's batch (Barman's `WalArchiverQueue`).
#[derive(Debug)]
pub struct Batch {
    pub server: usize,
    pub origin: Origin,
    pub files: Vec<PathBuf>,
    pub errors: Vec<PathBuf>,
    pub total: usize,
}

/// Python's `glob(dir/*)` sorted: dotfiles (put-wal's staging names) excluded.
pub(super) fn list_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                if !e.file_name().to_string_lossy().starts_with('.') {
                    names.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

pub(super) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Barman's `get_next_batch` for one directory.
pub fn next_batch(
    server: usize,
    origin: Origin,
    dir: &Path,
    batch_size: usize,
) -> io::Result<Batch> {
    let mut names = list_dir(dir)?;
    let total = names.len();
    if batch_size > 0 {
        names.truncate(batch_size);
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut partials = Vec::new();
    for path in names {
        let base = file_name(&path);
        if base.ends_with(".tmp") {
            continue;
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => continue, // renamed or removed while we listed
        };
        let parsed = WalName::parse(&base);
        match origin {
            Origin::FileArchival => {
                if parsed.is_some() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    files.push(path);
                } else {
                    errors.push(path);
                }
            }
            Origin::Streaming => {
                if !meta.is_file() {
                    errors.push(path);
                } else if parsed.as_ref().is_some_and(|n| n.kind == Kind::Partial) {
                    partials.push(path);
                } else if parsed.is_some() {
                    files.push(path);
                } else {
                    errors.push(path);
                }
            }
        }
    }
    if origin == Origin::Streaming {
        // pg_receivewal needs its newest file to find where to restart.
        if partials.len() > 1 {
            let last = partials.len() - 1;
            files.extend(partials.drain(..last));
        } else if partials.is_empty() {
            files.pop();
        }
    }
    Ok(Batch {
        server,
        origin,
        files,
        errors,
        total,
    })
}
