//! Restoring an incremental backup (PostgreSQL 17+): its chain, from the
//! full backup at the root to the backup asked for, is combined by
//! barman-rs itself (`combine`) straight into the destination, every
//! source file checked against its own manifest as it is read. Barman runs
//! pg_combinebackup, which must be of the backup's major; barman-rs needs
//! no client tool. A member stored as tar is first extracted and verified
//! into a scratch directory under `staging_path` (Barman's
//! `barman-decompress<pid>`), removed once the combination is done.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{combine, mkdir_mode, read_manifest, tar_archives, untar, Request};
use crate::catalog::backup_ext::{self, Tablespace};
use crate::catalog::backups::Backup;
use crate::catalog::ServerCatalog;

pub fn is_incremental(b: &Backup) -> bool {
    b.info.get("parent_backup_id").is_some()
}

/// A scratch directory removed when dropped (it only ever holds copies).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(base: &Path, tag: &str) -> Result<Scratch, String> {
        let p = base.join(format!("{tag}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create '{}': {e}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn oid_of(t: &Tablespace) -> Result<u32, String> {
    t.oid.repr().parse().map_err(|_| {
        format!(
            "tablespace '{}' has no usable oid ({})",
            t.name,
            t.oid.repr()
        )
    })
}

fn compressed(b: &Backup) -> bool {
    b.info
        .get("compression")
        .is_some_and(|c| c != "None" && !c.is_empty())
}

/// Combines `r.backup`'s chain into `dest` and the tablespace locations;
/// returns the seconds it took (Barman's `combine_time`).
pub fn restore(
    r: &Request<'_>,
    cat: &ServerCatalog,
    tablespaces: &[Tablespace],
    dest: &Path,
    staging: &Path,
) -> Result<f64, String> {
    let started = Instant::now();
    let mut chain = backup_ext::chain_to_root(r.list, r.backup);
    chain.reverse();
    if let Some(missing) = chain[0].info.get("parent_backup_id") {
        return Err(format!(
            "backup {missing}, an ancestor of incremental backup {}, is not in the catalog",
            r.backup.id
        ));
    }
    let mut scratch: Option<Scratch> = None;
    let mut members = Vec::new();
    for b in &chain {
        let base = cat.basebackups_directory.join(&b.id);
        let own = backup_ext::tablespaces(&b.info);
        let root = if compressed(b) {
            if scratch.is_none() {
                scratch = Some(Scratch::new(staging, "barman-decompress")?);
            }
            let root = scratch.as_ref().expect("just made").0.join(&b.id);
            mkdir_mode(&root.join("data"), 0o700)
                .map_err(|e| format!("cannot create '{}': {e}", root.display()))?;
            let data = base.join("data");
            let archives = tar_archives(b, &data, &root.join("data"), &own, |t| {
                root.join(t.oid.repr())
            })?;
            let manifest = read_manifest(&data)?;
            untar::restore(&archives, manifest.as_ref(), r.jobs)?;
            // combine checks every file against the member's manifest.
            std::fs::copy(
                data.join("backup_manifest"),
                root.join("data/backup_manifest"),
            )
            .map_err(|e| {
                format!(
                    "Failed to copy backup manifest from {}: {e}",
                    data.display()
                )
            })?;
            root
        } else {
            base
        };
        members.push(combine::Backup {
            name: b.id.clone(),
            pgdata: root.join("data"),
            tablespaces: own
                .iter()
                .map(|t| Ok((oid_of(t)?, root.join(t.oid.repr()))))
                .collect::<Result<_, String>>()?,
        });
    }
    mkdir_mode(dest, 0o700).map_err(|e| format!("cannot create '{}': {e}", dest.display()))?;
    let destination = combine::Destination {
        pgdata: dest.to_path_buf(),
        tablespaces: tablespaces
            .iter()
            .map(|t| Ok((oid_of(t)?, PathBuf::from(r.location(t)))))
            .collect::<Result<_, String>>()?,
    };
    let options = combine::Options {
        jobs: r.jobs,
        verify_pages: r.backup.info.get("data_checksums") == Some("on"),
        manifest: true,
    };
    let report = combine::combine(&members, &destination, options).map_err(|e| e.to_string())?;
    log::info!(
        "combined {} files ({} rebuilt from incremental files, {} blocks from older backups) of backup {}",
        report.files,
        report.reconstructed,
        report.older_blocks,
        r.backup.id
    );
    drop(scratch);
    Ok(started.elapsed().as_secs_f64())
}
