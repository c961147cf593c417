//! The newest backup's files, as the tasks the workers run: its trees
//! (PGDATA and each tablespace) walked, directories created on the way,
//! `INCREMENTAL.` files told from whole ones.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Backup, CombineError, Ctx, Destination, LABEL, MANIFEST};
use crate::backup::page;
use crate::restore::copy::make_dir;
use crate::restore::incremental_file as incr;

/// One tree of the newest backup to walk.
pub(super) struct OutTree {
    src: PathBuf,
    pub(super) dest: PathBuf,
    prefix: String,
    is_pgdata: bool,
    /// Tablespaces given as their own trees (skipped under `pg_tblspc/`).
    declared: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct Task {
    /// The output file's manifest path (`base/5/16384`).
    pub(super) key: String,
    /// The newest backup's file (`…/INCREMENTAL.16384` when rebuilt).
    pub(super) src: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) incremental: bool,
    /// The relation segment number, for page checks.
    pub(super) segment: Option<u64>,
}

impl Task {
    pub(super) fn src_key(&self) -> String {
        if self.incremental {
            incremental_key(&self.key)
        } else {
            self.key.clone()
        }
    }
}

/// `base/5/16384` → `base/5/INCREMENTAL.16384`.
pub(super) fn incremental_key(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}{name}", incr::PREFIX),
        None => format!("{}{key}", incr::PREFIX),
    }
}

/// Directories where pg_combinebackup looks for `INCREMENTAL.` files
/// (elsewhere such a name is an ordinary file).
fn incremental_dir(dir: &str) -> bool {
    dir.starts_with("base/") || dir == "global" || dir.starts_with("pg_tblspc/")
}

/// A tablespace OID as pg_combinebackup accepts one: decimal, no leading
/// zero, not 0.
fn parse_oid(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The newest backup's trees, each with its destination.
pub(super) fn out_trees(newest: &Backup, dest: &Destination) -> Result<Vec<OutTree>, CombineError> {
    let mut trees = vec![OutTree {
        src: newest.pgdata.clone(),
        dest: dest.pgdata.clone(),
        prefix: String::new(),
        is_pgdata: true,
        declared: newest.tablespaces.iter().map(|t| t.0).collect(),
    }];
    for (oid, dir) in &newest.tablespaces {
        let to = dest
            .tablespaces
            .iter()
            .find(|t| t.0 == *oid)
            .ok_or_else(|| CombineError::NoDestination {
                oid: *oid,
                backup: newest.name.clone(),
            })?;
        trees.push(OutTree {
            src: dir.clone(),
            dest: to.1.clone(),
            prefix: format!("pg_tblspc/{oid}/"),
            is_pgdata: false,
            declared: Vec::new(),
        });
    }
    Ok(trees)
}

/// The files of one tree of the newest backup, lazily; directories are
/// created as the walk meets them. Symbolic links and special files are
/// skipped as pg_combinebackup skips them (tablespaces come as trees).
pub(super) fn walk<'a>(
    ctx: &'a Ctx,
    tree: &'a OutTree,
    dirs: &'a Mutex<Vec<PathBuf>>,
) -> impl Iterator<Item = Result<Task, CombineError>> + 'a {
    walkdir::WalkDir::new(&tree.src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            let rel = rel_of(&tree.src, e.path());
            let tablespace = rel
                .strip_prefix("pg_tblspc/")
                .and_then(parse_oid)
                .filter(|_| tree.is_pgdata);
            match tablespace {
                Some(oid) => !e.path_is_symlink() && !tree.declared.contains(&oid),
                None => true,
            }
        })
        .filter_map(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(&tree.src).to_path_buf();
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| io::Error::other("loop"));
                    return Some(Err(CombineError::Io {
                        action: "read",
                        path,
                        source,
                    }));
                }
            };
            let rel = rel_of(&tree.src, entry.path());
            let dest = if rel.is_empty() {
                tree.dest.clone()
            } else {
                tree.dest.join(&rel)
            };
            let kind = entry.file_type();
            if kind.is_dir() {
                return match make_dir(&dest, ctx.dir_mode) {
                    Ok(()) => {
                        dirs.lock().expect("no panics hold it").push(dest);
                        None
                    }
                    Err(e) => Some(Err(CombineError::Directory(e))),
                };
            }
            if !kind.is_file() {
                log::warn!(
                    "skipping {} \"{}\"",
                    if kind.is_symlink() {
                        "symbolic link"
                    } else {
                        "special file"
                    },
                    entry.path().display()
                );
                return None;
            }
            if tree.is_pgdata && (rel == LABEL || rel == MANIFEST) {
                return None;
            }
            let key = format!("{}{rel}", tree.prefix);
            let (dir_key, name) = key.rsplit_once('/').unwrap_or(("", &key));
            let in_rel_dir = incremental_dir(dir_key);
            let bare = name
                .strip_prefix(incr::PREFIX)
                .filter(|b| in_rel_dir && !b.is_empty());
            let out_name = bare.unwrap_or(name);
            let out_key = if dir_key.is_empty() {
                out_name.to_string()
            } else {
                format!("{dir_key}/{out_name}")
            };
            let dest = match bare {
                // Both would be written to one file, by two workers.
                Some(b) if entry.path().with_file_name(b).symlink_metadata().is_ok() => {
                    return Some(Err(CombineError::Conflict {
                        backup: ctx.newest().name.clone(),
                        file: out_key,
                    }))
                }
                Some(b) => dest.with_file_name(b),
                None => dest,
            };
            Some(Ok(Task {
                segment: page::relation_segment(out_name).filter(|_| in_rel_dir),
                key: out_key,
                src: entry.path().to_path_buf(),
                dest,
                incremental: bare.is_some(),
            }))
        })
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}
