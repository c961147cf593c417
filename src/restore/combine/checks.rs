//! The chain and its manifests: each backup's `backup_manifest` read (what
//! every source file is checked against), and pg_combinebackup's checks
//! that the backups form one chain.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::{io_err, Backup, CombineError, LABEL, MANIFEST};
use crate::backup::manifest::{self, Manifest};
use crate::restore::copy::{expected_of, Expected, PG_CONTROL};
use crate::restore::incremental_file as incr;

/// A chain member as the workers consult it.
pub(super) struct Member {
    pub(super) name: String,
    /// (manifest prefix, directory): tablespaces first, PGDATA (`""`) last,
    /// so the first prefix that matches is the right tree.
    trees: Vec<(String, PathBuf)>,
    expected: Expected,
}

impl Member {
    /// Where this backup keeps the file of manifest path `key`.
    pub(super) fn locate(&self, key: &str) -> PathBuf {
        self.trees
            .iter()
            .find_map(|(prefix, dir)| key.strip_prefix(prefix.as_str()).map(|r| dir.join(r)))
            .unwrap_or_else(|| PathBuf::from(key))
    }

    /// Checks a whole source file read as `size` bytes with `crc`; Ok(false)
    /// for the WAL files no manifest lists.
    pub(super) fn verify(&self, key: &str, size: u64, crc: u32) -> Result<bool, CombineError> {
        let mismatch = |detail: String| CombineError::Mismatch {
            backup: self.name.clone(),
            file: key.to_string(),
            detail,
        };
        match self.expected.get(key) {
            None if key.starts_with("pg_wal/") => Ok(false),
            None => Err(CombineError::Unlisted {
                backup: self.name.clone(),
                file: key.to_string(),
            }),
            Some(&(want, _)) if want != size => {
                Err(mismatch(format!("{size} bytes, {want} expected")))
            }
            Some(&(_, Some(want))) if want != crc => {
                Err(mismatch(format!("CRC32C {crc:08x}, {want:08x} expected")))
            }
            Some(&(_, c)) => Ok(c.is_some()),
        }
    }
}

/// Each backup's trees and manifest; the newest manifest whole.
pub(super) fn members(chain: &[Backup]) -> Result<(Vec<Member>, Manifest), CombineError> {
    let mut members = Vec::with_capacity(chain.len());
    let mut newest = None;
    for b in chain {
        let m = read_manifest(b)?;
        let mut trees: Vec<(String, PathBuf)> = b
            .tablespaces
            .iter()
            .map(|(oid, dir)| (format!("pg_tblspc/{oid}/"), dir.clone()))
            .collect();
        trees.push((String::new(), b.pgdata.clone()));
        members.push(Member {
            name: b.name.clone(),
            trees,
            expected: expected_of(Some(&m)),
        });
        newest = Some(m);
    }
    Ok((members, newest.ok_or(CombineError::Empty)?))
}

fn read_manifest(b: &Backup) -> Result<Manifest, CombineError> {
    let path = b.pgdata.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| CombineError::Manifest {
        backup: b.name.clone(),
        path: path.clone(),
        reason: e.to_string(),
    })?;
    manifest::parse(&bytes).map_err(|e| CombineError::Manifest {
        backup: b.name.clone(),
        path,
        reason: e.to_string(),
    })
}

/// pg_combinebackup's checks that the backups form one chain: the first is
/// full, the others incremental, each starting where the next one says
/// its parent started, and one system identifier (pg_control's first
/// eight bytes, in every version). Returns the newest backup's start LSN.
pub(super) fn check_chain(chain: &[Backup]) -> Result<u64, CombineError> {
    let mut newest = None;
    let mut parent: Option<(u64, u32)> = None;
    let mut system_id: Option<(u64, &str)> = None;
    for (i, b) in chain.iter().enumerate().rev() {
        let path = b.pgdata.join(LABEL);
        let text = fs::read(&path).map_err(io_err("read", &path))?;
        let l = incr::parse_chain_label(&text).map_err(|reason| CombineError::Label {
            backup: b.name.clone(),
            path: path.clone(),
            reason,
        })?;
        let chain_err = |reason: String| CombineError::Chain {
            backup: b.name.clone(),
            reason,
        };
        match (i, l.from) {
            (0, Some(_)) => {
                return Err(chain_err(
                    "is an incremental backup, but the first backup should be a full backup".into(),
                ))
            }
            (i, None) if i > 0 => {
                return Err(chain_err(
                    "is a full backup, but only the first backup should be a full backup".into(),
                ))
            }
            _ => {}
        }
        if let Some((lsn, tli)) = parent {
            if l.start_tli != tli {
                return Err(chain_err(format!(
                    "starts on timeline {}, but expected {tli}",
                    l.start_tli
                )));
            }
            if l.start_lsn != lsn {
                return Err(chain_err(format!(
                    "starts at LSN {}, but expected {}",
                    crate::wal::name::format_lsn(l.start_lsn),
                    crate::wal::name::format_lsn(lsn)
                )));
            }
        }
        parent = l.from;
        let control = b.pgdata.join(PG_CONTROL);
        let mut id = [0u8; 8];
        File::open(&control)
            .and_then(|f| f.read_exact_at(&mut id, 0))
            .map_err(io_err("read", &control))?;
        let id = u64::from_ne_bytes(id);
        match system_id {
            None => system_id = Some((id, &b.name)),
            Some((want, of)) if want != id => {
                return Err(chain_err(format!(
                    "system identifier {id}, but backup {of} has {want}"
                )))
            }
            Some(_) => {}
        }
        newest.get_or_insert(l.start_lsn);
    }
    newest.ok_or(CombineError::Empty)
}
