//! The restore of a tar backup (pg_basebackup `--format=tar`, gzip, lz4 or
//! zstd): `base.tar.*` into PGDATA and `<oid>.tar.*` into each tablespace,
//! one archive per thread, each file checked against the backup's
//! `backup_manifest` as it is written. Files are fsynced together at the
//! end, in parallel. The crash protocol is the plain copy's
//! ([`super::copy`]): `global/pg_control` is written last.
//!
//! The archives are input we did not write: member names that would leave
//! the destination (absolute, `..`) are an error, never followed.

use std::collections::HashSet;
use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

use super::copy::{check, expected_of, make_dir, missing_from, Expected, Report, PG_CONTROL};
use super::frames;
use crate::backup::manifest::Manifest;
use crate::backup::pg_basebackup::tar_reader;
use crate::durable::sync_dir;
use crate::fileio::read_ahead;
use crate::pipeline::cores;

/// Barman's `tar --exclude` for the base archive.
const TAR_EXCLUDED: &[&str] = &["recovery.conf", "tablespace_map"];

/// One archive and where it goes.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub dest: PathBuf,
    /// Prefix of its members in the manifest (`""` or `pg_tblspc/<oid>/`).
    pub manifest_prefix: String,
    pub is_base: bool,
    /// Written by barman-rs's native copy: many independent frames.
    pub framed: bool,
}

/// `global/pg_control`, held back until the end.
struct Control {
    data: Vec<u8>,
    mode: u32,
    mtime: u64,
    dest: PathBuf,
}

#[derive(Default)]
struct Extracted {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    seen: Vec<String>,
    bytes: u64,
    verified: u64,
    control: Option<Control>,
}

pub fn restore(
    archives: &[Archive],
    manifest: Option<&Manifest>,
    jobs: usize,
) -> Result<Report, String> {
    let expected = expected_of(manifest);
    let results: Vec<Result<Extracted, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = archives
            .iter()
            .map(|a| s.spawn(|| extract(a, &expected)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("extraction threads do not panic"))
            .collect()
    });
    let mut all = Extracted::default();
    for r in results {
        let e = r?;
        all.files.extend(e.files);
        all.dirs.extend(e.dirs);
        all.seen.extend(e.seen);
        all.bytes += e.bytes;
        all.verified += e.verified;
        if e.control.is_some() {
            all.control = e.control;
        }
    }
    if let Some(m) = manifest {
        let seen: HashSet<String> = all.seen.iter().cloned().collect();
        missing_from(m, &seen, all.control.is_some())?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(2))
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| {
        all.files.par_iter().try_for_each(|f| {
            File::open(f)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("cannot sync '{}': {e}", f.display()))
        })
    })?;
    for d in &all.dirs {
        sync_dir(d).map_err(|e| format!("cannot sync directory '{}': {e}", d.display()))?;
    }
    let mut report = Report {
        files: all.files.len() as u64,
        bytes: all.bytes,
        unchanged: 0,
        verified: all.verified,
    };
    if let Some(c) = all.control {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(c.mode)
            .open(&c.dest)
            .map_err(|e| format!("cannot create '{}': {e}", c.dest.display()))?;
        let werr = |e: std::io::Error| format!("cannot write '{}': {e}", c.dest.display());
        f.write_all(&c.data).map_err(werr)?;
        f.set_times(
            FileTimes::new().set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(c.mtime)),
        )
        .map_err(werr)?;
        f.sync_all().map_err(werr)?;
        sync_dir(crate::durable::parent(&c.dest)).map_err(werr)?;
        report.files += 1;
        report.bytes += c.data.len() as u64;
    }
    Ok(report)
}

/// A member's path, relative and inside the destination, or an error.
fn member_path(archive: &Path, raw: &Path) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {
                return Err(format!(
                    "unsafe member '{}' in '{}'",
                    raw.display(),
                    archive.display()
                ))
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn extract(a: &Archive, expected: &Expected) -> Result<Extracted, String> {
    let ctx = |e: std::io::Error| format!("cannot read '{}': {e}", a.path.display());
    let ext = a.path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let reader: Box<dyn Read + Send> = match (a.framed, ext) {
        // Ours, many independent frames: decompressed on every core.
        (true, "zst") => Box::new(frames::reader(&a.path, cores()).map_err(ctx)?),
        (_, "tar") => tar_reader(&a.path).map_err(ctx)?,
        // One stream: decompressed on a core of its own, written on this one.
        _ => Box::new(read_ahead(tar_reader(&a.path).map_err(ctx)?, 1 << 20, 8)),
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Extracted::default();
    make_dir(&a.dest, 0o700)?;
    out.dirs.push(a.dest.clone());
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries().map_err(ctx)? {
        let mut entry = entry.map_err(ctx)?;
        let raw = entry.path().map_err(ctx)?.into_owned();
        let Some(rel) = member_path(&a.path, &raw)? else {
            continue;
        };
        if a.is_base && TAR_EXCLUDED.contains(&rel.as_str()) {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().map_err(ctx)? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let dest = a.dest.join(&rel);
        let kind = header.entry_type();
        if kind.is_dir() {
            make_dir(&dest, mode)?;
            out.dirs.push(dest);
            continue;
        }
        if kind.is_symlink() {
            // Tablespace links are made by the restore, from backup.info.
            if !rel.starts_with("pg_tblspc/") {
                if let Ok(Some(target)) = entry.link_name() {
                    std::os::unix::fs::symlink(&target, &dest)
                        .map_err(|e| format!("cannot create '{}': {e}", dest.display()))?;
                }
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let key = format!("{}{rel}", a.manifest_prefix);
        let want = expected.get(&key);
        if let Some(parent) = dest.parent().filter(|p| !p.exists()) {
            make_dir(parent, 0o700)?;
            out.dirs.push(parent.to_path_buf());
        }
        let mut crc = 0u32;
        let mut size = 0u64;
        if a.is_base && rel == PG_CONTROL {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(ctx)?;
            check(&raw, want, data.len() as u64, crc32c::crc32c(&data))?;
            out.verified += want.is_some_and(|w| w.1.is_some()) as u64;
            out.control = Some(Control {
                data,
                mode,
                mtime,
                dest,
            });
            out.seen.push(key);
            continue;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&dest)
            .map_err(|e| format!("cannot create '{}': {e}", dest.display()))?;
        let werr = |e: std::io::Error| format!("cannot write '{}': {e}", dest.display());
        loop {
            let n = entry.read(&mut buf).map_err(ctx)?;
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            size += n as u64;
            f.write_all(&buf[..n]).map_err(werr)?;
        }
        check(&a.path.join(&rel), want, size, crc)?;
        f.set_permissions(Permissions::from_mode(mode))
            .map_err(werr)?;
        f.set_times(
            FileTimes::new().set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime)),
        )
        .map_err(werr)?;
        out.verified += want.is_some_and(|w| w.1.is_some()) as u64;
        out.bytes += size;
        out.files.push(dest);
        out.seen.push(key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stay_inside() {
        let a = Path::new("base.tar");
        assert_eq!(
            member_path(a, Path::new("./global/pg_control")).unwrap(),
            Some("global/pg_control".into())
        );
        assert_eq!(member_path(a, Path::new("./")).unwrap(), None);
        assert!(member_path(a, Path::new("../etc/passwd")).is_err());
        assert!(member_path(a, Path::new("/etc/passwd")).is_err());
    }
}
