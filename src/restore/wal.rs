//! The WAL a restore copies into the destination (without get-wal): each
//! archived file decompressed by its magic, its headers checked, written and
//! fsynced, in parallel; `.partial` files land under their segment name.
//! Then, outside PITR, the `archive_status/<name>.done` markers that keep
//! PostgreSQL from archiving them again.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::catalog::xlogdb::Entry;
use crate::durable::sync_dir;
use crate::pipeline::{self, Width};
use crate::wal::archiver::ServerIntake;
use crate::wal::name::{Kind, WalName};
use crate::wal::serve;

/// Where an archived file lives.
fn source_of(intake: &ServerIntake, name: &str) -> PathBuf {
    let wals = &intake.catalog.wals_directory;
    match WalName::parse(name) {
        Some(n) if n.kind != Kind::History => wals.join(n.hash_dir()).join(name),
        _ => wals.join(name),
    }
}

/// Copies `entries` into `wal_dest`. Errors name the file.
pub fn copy(
    intake: &ServerIntake,
    entries: &[&Entry],
    wal_dest: &Path,
    jobs: usize,
) -> Result<(), String> {
    let mut failure = None;
    pipeline::run(
        Width::new(jobs.max(2)),
        entries.iter().map(|e| e.name.clone()),
        || (),
        |_, name: &String| copy_one(intake, name, wal_dest),
        |batch| {
            for (_, r) in batch {
                if let Err(e) = r {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    sync_dir(wal_dest).map_err(|e| format!("cannot sync '{}': {e}", wal_dest.display()))
}

fn copy_one(intake: &ServerIntake, name: &str, wal_dest: &Path) -> Result<(), String> {
    let src = source_of(intake, name);
    let data = fs::read(&src).map_err(|e| format!("cannot read '{}': {e}", src.display()))?;
    let plain = serve::decode(intake, &intake.name, name, data)?;
    let target = wal_dest.join(name.strip_suffix(".partial").unwrap_or(name));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&target)
        .map_err(|e| format!("cannot create '{}': {e}", target.display()))?;
    f.write_all(&plain)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write '{}': {e}", target.display()))
}

/// Empty `archive_status/<name>.done` files for what was copied.
pub fn mark_done(wal_dest: &Path, entries: &[&Entry]) -> Result<(), String> {
    let dir = wal_dest.join("archive_status");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    for e in entries {
        let p = dir.join(format!("{}.done", e.name));
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&p)
            .map_err(|e| format!("cannot create '{}': {e}", p.display()))?;
    }
    Ok(())
}
