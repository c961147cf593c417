//! Importing an exported backup, in Barman 3.19.1's order of checks and
//! with its messages: name and checksum, locks, identity, extraction into
//! `base/.import-*` (paths and member types checked), layout, backup.info,
//! WAL conflicts; then the WAL files and xlog.db, the data directory, and
//! last the metadata, so the backup only appears in the catalog once all it
//! needs is durable. What a failure leaves behind is rolled back.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{exception, file_checksum, open_tar, TransferError};
use crate::catalog::backup_ext::{required_segments, tablespaces, wal_path};
use crate::catalog::backup_info::{BackupInfo, InfoError};
use crate::catalog::backups;
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::xlogdb::{Entry, XlogDb};
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::Output;

/// Imports the tarball at `typed` (as the user typed it) into `cfg`.
/// Returns the imported backup ID.
pub fn import_backup(
    out: &mut Output,
    cfg: &ServerConfig,
    lock_dir: &Path,
    typed: &str,
) -> Result<String, TransferError> {
    let cat = ServerCatalog::new(cfg);
    let local: serde_json::Value = std::fs::read_to_string(cat.identity_file())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    if local.as_object().is_none_or(|m| m.is_empty()) {
        return Err(TransferError::Error(format!(
            "No identity file found for server '{}'. The identity file is required to validate the backup during import.",
            cfg.name
        )));
    }
    cat.create_directories(cfg.get_bool("streaming_archiver"))
        .and_then(|()| cat.create_directory(&cat.meta_directory()))
        .map_err(TransferError::Error)?;
    let path = Path::new(typed);
    let id = validate_name(path, &cfg.name)?;
    let names = LockNames { dir: lock_dir };
    let busy = || {
        TransferError::Error(format!(
            "Another backup operation is already running on server '{}'",
            cfg.name
        ))
    };
    let take = |p: PathBuf| match lock::acquire(&p, false) {
        Ok(l) => Ok(l),
        Err(LockError::Busy { .. }) => Err(busy()),
        Err(e) => Err(TransferError::Error(format!(
            "Unable to acquire backup import lock for server '{}': {e}",
            cfg.name
        ))),
    };
    let _server_lock = take(names.backup(&cfg.name))?;
    let _id_lock = take(names.backup_id(&cfg.name, &id))?;

    let list = backups::load(&cat).map_err(|e| exception(e.to_string()))?;
    if list.iter().any(|b| b.id == id) {
        return Err(exception(format!(
            "Backup '{id}' already exists in the catalog for server '{}'",
            cfg.name
        )));
    }
    let exported = read_identity(path)?;
    let field = |v: &serde_json::Value, k: &str| v.get(k).cloned();
    let Some(sys) = field(&exported, "systemid") else {
        return Err(exception("'systemid'"));
    };
    let Some(local_sys) = field(&local, "systemid") else {
        return Err(exception("'systemid'"));
    };
    if sys != local_sys {
        return Err(exception(format!(
            "Server identity mismatch: exported backup has systemid '{}' but target server has systemid '{}'",
            py_str(&sys),
            py_str(&local_sys)
        )));
    }
    let (ver, local_ver) = (field(&exported, "version"), field(&local, "version"));
    if ver != local_ver {
        out.warning(&format!(
            "PostgreSQL version mismatch: exported backup has version '{}' but target server has version '{}'",
            ver.as_ref().map(py_str).unwrap_or_default(),
            local_ver.as_ref().map(py_str).unwrap_or_default()
        ));
    }

    let staging = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(&cat.basebackups_directory)
        .map_err(|e| exception(format!("{}: {e}", cat.basebackups_directory.display())))?;
    let stage = staging.path();
    extract(path, typed, stage)?;
    for (p, dir, what) in [
        ("backup", true, "a 'backup/' directory"),
        ("backup.info", false, "a 'backup.info' file"),
        ("wals", true, "a 'wals/' directory"),
        ("xlog.db", false, "a 'xlog.db' file"),
    ] {
        let m = std::fs::symlink_metadata(stage.join(p));
        if !m.is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() }) {
            return Err(exception(format!(
                "Exported tarball does not contain {what}"
            )));
        }
    }
    let info_file = stage.join("backup.info");
    let info = std::fs::read_to_string(&info_file)
        .map_err(|e| InfoError::Syntax(e.to_string()))
        .and_then(|t| BackupInfo::parse(&t));
    let info = match info {
        Ok(i) => i,
        Err(InfoError::UnknownField(f)) => {
            return Err(TransferError::Error(format!(
                "Unsupported field '{f}' found in backup metadata. This indicates the backup was created with a newer version of Barman. Please upgrade to a compatible or newer version."
            )))
        }
        Err(e) => {
            return Err(exception(format!(
                "Failed to load backup.info: {e} in file {}",
                info_file.display()
            )))
        }
    };
    let staged_wals = verify_wals(cfg, &cat, lock_dir, stage, &info)?;
    if info.get("parent_backup_id").is_some() {
        return Err(exception(format!(
            "Cannot import backup {id} into server {}: it is an incremental backup.\nOnly full backups are eligible for importing.",
            cfg.name
        )));
    }
    let dest = cat.basebackups_directory.join(&id);
    relink_tablespaces(stage, &info, &dest)?;
    sync_tree(&stage.join("backup"))
        .map_err(|e| exception(format!("Failed to import backup data: {e}")))?;

    // The WAL files first, then the data, then the metadata that makes it a
    // backup: a failure rolls back what was done.
    let moved = import_wals(&cat, lock_dir, stage, &staged_wals)?;
    if let Err(e) = move_data(&stage.join("backup"), &dest) {
        rollback_wals(&cat, lock_dir, &moved);
        return Err(e);
    }
    let meta = cat.meta_directory();
    if let Err(e) = backups::save_info(&cat, &id, &info) {
        let _ = std::fs::remove_dir_all(&dest);
        rollback_wals(&cat, lock_dir, &moved);
        return Err(exception(format!("Failed to load backup.info: {e}")));
    }
    let _ = crate::durable::sync_dir(&cat.basebackups_directory);
    out.info(&format!(
        "Successfully imported backup '{id}' into server '{}'",
        cfg.name
    ));
    if let Err(e) =
        crate::durable::write_replace(&meta.join(format!("{id}-keep")), b"standalone", 0o644)
    {
        out.warning(&format!(
            "Failed to apply KEEP:STANDALONE annotation to backup '{id}' on server '{}': {e}. The imported backup may be subject to retention policy deletion.",
            cfg.name
        ));
    }
    Ok(id)
}

/// A JSON value as Python's `%s` prints it (strings bare).
fn py_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Barman's `_validate_import_tarball_name`; returns the backup ID.
fn validate_name(path: &Path, server: &str) -> Result<String, TransferError> {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let err = |why: String| {
        TransferError::Error(format!(
            "Tarball filename does not match the expected export format 'backup-export-SERVER_NAME-BACKUP_ID-TIMESTAMP-CHECKSUM.tar': '{base}'. {why}"
        ))
    };
    let Some(stem) = [".tar.gz", ".tar.bz2", ".tar.xz", ".tar"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
    else {
        return Err(err(
            "Expected a .tar, .tar.gz, .tar.bz2, or .tar.xz file extension.".into(),
        ));
    };
    let prefix = format!("backup-export-{server}-");
    let Some(rest) = stem.strip_prefix(&prefix) else {
        return Err(err(format!("Expected filename to start with '{prefix}'.")));
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let [id, stamp, sum] = parts[..] else {
        return Err(err(
            "Expected filename to contain the backup ID, timestamp, and checksum after the server name."
                .into(),
        ));
    };
    for (what, v) in [("BACKUP_ID", id), ("TIMESTAMP", stamp)] {
        if !valid_stamp(v) {
            return Err(err(format!(
                "Expected {what} to be in the format 'YYYYMMDDTHHMMSS', got '{v}'."
            )));
        }
    }
    let actual = file_checksum(path).map_err(|e| exception(format!("{}: {e}", path.display())))?;
    if sum != actual {
        return Err(TransferError::Error(format!(
            "Tarball checksum mismatch: filename contains '{sum}' but actual checksum is '{actual}'. The file may have been modified or corrupted."
        )));
    }
    Ok(id.to_string())
}

/// `YYYYMMDDTHHMMSS` naming a real time.
fn valid_stamp(v: &str) -> bool {
    backups::is_backup_id(v) && jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", v).is_ok()
}

/// The first `identity.json` member, wherever it is.
fn read_identity(path: &Path) -> Result<serde_json::Value, TransferError> {
    let fail = |e: io::Error| exception(format!("Failed to read identity.json from tarball: {e}"));
    let mut ar = tar::Archive::new(open_tar(path).map_err(fail)?);
    for entry in ar.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        if entry.path_bytes().as_ref() != b"identity.json" {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(exception("identity.json in tarball is not a regular file"));
        }
        let mut text = String::new();
        io::Read::read_to_string(&mut entry, &mut text).map_err(fail)?;
        return serde_json::from_str(&text)
            .map_err(|e| exception(format!("Failed to parse identity.json from tarball: {e}")));
    }
    Err(exception("Exported tarball does not contain identity.json"))
}

/// The member's path inside `stage`, or None when it would leave it.
fn contained(stage: &Path, name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(stage.join(out))
}

/// Extracts every member into `stage`: no path outside it, no link or
/// special file (tablespace links are recreated from backup.info instead),
/// owners, modes and times kept, every file fsynced.
fn extract(path: &Path, typed: &str, stage: &Path) -> Result<(), TransferError> {
    let fail = |e: io::Error| exception(format!("Failed to extract tarball '{typed}': {e}"));
    let mut ar = tar::Archive::new(open_tar(path).map_err(fail)?);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    for entry in ar.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let name = entry.path().map_err(fail)?.into_owned();
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(target) = contained(stage, &name) else {
            return Err(exception(format!(
                "Tarball contains unsafe path: '{shown}'"
            )));
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let rel = name.strip_prefix("backup/data/pg_tblspc").ok();
            if rel.is_some_and(|r| r.components().count() == 1) {
                continue;
            }
            return Err(exception(format!(
                "Tarball contains unsafe member type: '{shown}'"
            )));
        }
        if !(kind.is_dir() || kind.is_file()) {
            return Err(exception(format!(
                "Tarball contains unsafe member type: '{shown}'"
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        entry.unpack(&target).map_err(fail)?;
    }
    Ok(())
}

/// fsyncs every file and directory under `root`.
fn sync_tree(root: &Path) -> io::Result<()> {
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.map_err(io::Error::other)?;
        if e.file_type().is_file() || e.file_type().is_dir() {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    Ok(())
}

/// One staged WAL to bring in: its entry and file.
struct StagedWal {
    entry: Entry,
    file: PathBuf,
}

/// Barman's `_verify_staged_wals`: every required segment is in the
/// tarball's xlog.db and under its wals/, and none conflicts with what the
/// server already has (same entry and bytes is an idempotent re-import).
fn verify_wals(
    cfg: &ServerConfig,
    cat: &ServerCatalog,
    lock_dir: &Path,
    stage: &Path,
    info: &BackupInfo,
) -> Result<Vec<StagedWal>, TransferError> {
    let text = std::fs::read_to_string(stage.join("xlog.db"))
        .map_err(|e| exception(format!("Failed to read xlog.db from tarball: {e}")))?;
    let mut staged = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = Entry::parse(line).ok_or_else(|| {
            exception(format!(
                "Malformed tarball's xlog.db entry at line {}: cannot parse line: '{}'",
                n + 1,
                line.trim()
            ))
        })?;
        let file = wal_path(&stage.join("wals"), &entry.name);
        staged.push(StagedWal { entry, file });
    }
    let required = required_segments(
        info.get("begin_wal").unwrap_or(""),
        info.get("end_wal").unwrap_or(""),
        info.get_int("xlog_segment_size").unwrap_or(16 << 20) as u64,
        info.get_int("version"),
    );
    let have: HashSet<&str> = staged.iter().map(|w| w.entry.name.as_str()).collect();
    for seg in &required {
        if !have.contains(seg.as_str()) {
            return Err(exception(format!(
                "WAL file required for backup consistency not found in tarball's xlog.db: {seg}"
            )));
        }
        if !staged
            .iter()
            .any(|w| &w.entry.name == seg && w.file.is_file())
        {
            return Err(exception(format!(
                "WAL file listed in tarball's xlog.db but not found under its wals/ directory: {seg}"
            )));
        }
    }
    let db = XlogDb::lock(cat, lock_dir).map_err(|e| exception(e.to_string()))?;
    let server: BTreeMap<String, Entry> = db
        .entries()
        .map_err(|e| exception(e.to_string()))?
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    let _ = cfg;
    let mut conflicts = Vec::new();
    for w in &staged {
        let on_disk = wal_path(&cat.wals_directory, &w.entry.name);
        let recorded = server.get(&w.entry.name);
        let same = match recorded {
            None => !on_disk.exists(),
            Some(r) => {
                r.size == w.entry.size
                    && r.time == w.entry.time
                    && r.encryption == w.entry.encryption
                    && same_bytes(&on_disk, &w.file)
            }
        };
        if !same {
            conflicts.push(w.entry.name.clone());
        }
    }
    if !conflicts.is_empty() {
        let mut msg = conflicts
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if conflicts.len() > 5 {
            msg.push_str(&format!(" (and {} more)", conflicts.len() - 5));
        }
        return Err(exception(format!(
            "WAL file(s) already exist in target server with conflicting content: {msg}"
        )));
    }
    // Those the server already holds (identical) stay as they are.
    Ok(staged
        .into_iter()
        .filter(|w| !server.contains_key(&w.entry.name))
        .collect())
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Moves the staged WAL files into wals/ (durably, never replacing) and
/// merges their lines into xlog.db in name order; returns what was moved.
fn import_wals(
    cat: &ServerCatalog,
    lock_dir: &Path,
    stage: &Path,
    wals: &[StagedWal],
) -> Result<Vec<PathBuf>, TransferError> {
    let _ = stage;
    let mut db = XlogDb::lock(cat, lock_dir).map_err(|e| exception(e.to_string()))?;
    let mut moved = Vec::new();
    let result = (|| -> Result<(), TransferError> {
        for w in wals {
            let to = wal_path(&cat.wals_directory, &w.entry.name);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| exception(format!("Failed to import WAL files: {e}")))?;
            }
            crate::durable::move_file(&w.file, &to).map_err(|e| {
                exception(format!("Failed to import WAL files: {}: {e}", to.display()))
            })?;
            moved.push(to);
        }
        let mut entries = db.entries().map_err(|e| exception(e.to_string()))?;
        entries.extend(wals.iter().map(|w| w.entry.clone()));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        db.rewrite(&entries)
            .map_err(|e| exception(format!("Failed to import WAL files: {e}")))
    })();
    drop(db);
    match result {
        Ok(()) => Ok(moved),
        Err(e) => {
            rollback_wals(cat, lock_dir, &moved);
            Err(e)
        }
    }
}

/// Takes back the WAL files an import moved in, and their xlog.db lines.
fn rollback_wals(cat: &ServerCatalog, lock_dir: &Path, moved: &[PathBuf]) {
    let names: HashSet<String> = moved
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if let Ok(mut db) = XlogDb::lock(cat, lock_dir) {
        if let Ok(entries) = db.entries() {
            let kept: Vec<Entry> = entries
                .into_iter()
                .filter(|e| !names.contains(&e.name))
                .collect();
            if let Err(e) = db.rewrite(&kept) {
                log::error!("rolling back the import's xlog.db lines: {e}");
            }
        }
    }
    for p in moved {
        if let Err(e) = std::fs::remove_file(p) {
            log::error!("rolling back the import: {}: {e}", p.display());
        }
    }
}

/// Recreates `data/pg_tblspc/<oid>` for each tablespace of backup.info,
/// pointing at where the import puts it (Barman does this for tar-format
/// backups too).
fn relink_tablespaces(stage: &Path, info: &BackupInfo, dest: &Path) -> Result<(), TransferError> {
    let list = tablespaces(info);
    if list.is_empty() {
        return Ok(());
    }
    let dir = stage.join("backup/data/pg_tblspc");
    std::fs::create_dir_all(&dir).map_err(|e| exception(format!("{}: {e}", dir.display())))?;
    for t in list {
        let oid = t.oid.repr();
        let link = dir.join(&oid);
        match std::fs::symlink_metadata(&link) {
            Ok(m) if m.is_dir() => {
                return Err(exception(format!(
                    "Cannot replace existing directory at tablespace link path '{}'",
                    link.display()
                )))
            }
            Ok(_) => std::fs::remove_file(&link).map_err(|e| {
                exception(format!(
                    "Failed to remove existing tablespace link path '{}': {e}",
                    link.display()
                ))
            })?,
            Err(_) => {}
        }
        let target = dest.join(&oid);
        std::os::unix::fs::symlink(&target, &link).map_err(|e| {
            exception(format!(
                "Failed to create tablespace symlink '{}' -> '{}': {e}",
                link.display(),
                target.display()
            ))
        })?;
    }
    Ok(())
}

/// Renames the staged `backup/` to `base/<ID>` (an empty one is replaced,
/// as rename(2) does for Barman).
fn move_data(from: &Path, to: &Path) -> Result<(), TransferError> {
    std::fs::rename(from, to).map_err(|e| {
        exception(format!(
            "Failed to move backup data to '{}': [Errno {}] {}: '{}' -> '{}'",
            to.display(),
            e.raw_os_error().unwrap_or(0),
            crate::catalog::strerror(&e),
            from.display(),
            to.display()
        ))
    })?;
    crate::durable::sync_dir(crate::durable::parent(to))
        .map_err(|e| exception(format!("{}: {e}", to.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: TransferError) -> String {
        e.to_string()
    }

    #[test]
    fn names_are_checked_as_barman_checks_them() {
        let d = tempfile::tempdir().unwrap();
        let p = d
            .path()
            .join("backup-export-pg-20261207T201215-20261207T201230-00000000.tar");
        std::fs::write(&p, b"x").unwrap();
        let e = msg(validate_name(&p, "pg").unwrap_err());
        assert!(e.starts_with("Tarball checksum mismatch: filename contains '00000000' but actual checksum is '2d711642'"), "{e}");
        let other = msg(validate_name(&p, "pg2").unwrap_err());
        assert!(
            other.ends_with("Expected filename to start with 'backup-export-pg2-'."),
            "{other}"
        );
        let tgz = d
            .path()
            .join("backup-export-pg-20261207T201215-20261207T201230-00000000.tgz");
        assert!(msg(validate_name(&tgz, "pg").unwrap_err())
            .ends_with("Expected a .tar, .tar.gz, .tar.bz2, or .tar.xz file extension."));
        let latest = d
            .path()
            .join("backup-export-pg-latest-20261207T201230-00000000.tar");
        assert!(msg(validate_name(&latest, "pg").unwrap_err())
            .ends_with("Expected BACKUP_ID to be in the format 'YYYYMMDDTHHMMSS', got 'latest'."));
        let feb30 = d
            .path()
            .join("backup-export-pg-20260230T000000-20261207T201230-00000000.tar");
        assert!(msg(validate_name(&feb30, "pg").unwrap_err()).contains("got '20260230T000000'"));
        let short = d
            .path()
            .join("backup-export-pg-20261207T201215-00000000.tar");
        assert!(msg(validate_name(&short, "pg").unwrap_err())
            .ends_with("Expected filename to contain the backup ID, timestamp, and checksum after the server name."));
    }

    #[test]
    fn member_paths_never_leave_the_staging_directory() {
        let s = Path::new("/stage");
        assert_eq!(
            contained(s, Path::new("backup/data/x")),
            Some(PathBuf::from("/stage/backup/data/x"))
        );
        assert_eq!(
            contained(s, Path::new("backup/../wals")),
            Some(PathBuf::from("/stage/wals"))
        );
        assert_eq!(contained(s, Path::new("../evil")), None);
        assert_eq!(contained(s, Path::new("a/../../evil")), None);
        assert_eq!(contained(s, Path::new("/etc/passwd")), None);
    }

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b.into_inner().unwrap()).unwrap();
        f
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    #[test]
    fn hostile_members_are_refused_before_anything_is_written_outside() {
        let stage = tempfile::tempdir().unwrap();
        let outside = stage.path().parent().unwrap().join("evil-import-test");
        let _ = std::fs::remove_file(&outside);
        let f = tar_with(|b| {
            let mut h = header(tar::EntryType::Regular, 1);
            // The tar crate refuses to *write* `..`: put it in the raw header.
            h.as_old_mut().name[..22].copy_from_slice(b"../evil-import-test\0\0\0");
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        });
        let e = msg(extract(f.path(), "t.tar", stage.path()).unwrap_err());
        assert_eq!(e, "Tarball contains unsafe path: '../evil-import-test'");
        assert!(!outside.exists());

        let f = tar_with(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "backup/data/evil", "/etc/passwd")
                .unwrap();
        });
        let e = msg(extract(f.path(), "t.tar", stage.path()).unwrap_err());
        assert_eq!(e, "Tarball contains unsafe member type: 'backup/data/evil'");
        assert!(!stage.path().join("backup/data/evil").exists());

        let f = tar_with(|b| {
            let mut h = header(tar::EntryType::Link, 0);
            b.append_link(&mut h, "backup/data/hl", "backup/data/PG_VERSION")
                .unwrap();
        });
        let e = msg(extract(f.path(), "t.tar", stage.path()).unwrap_err());
        assert_eq!(e, "Tarball contains unsafe member type: 'backup/data/hl'");

        // A tablespace link is skipped: the import recreates it.
        let f = tar_with(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "backup/data/pg_tblspc/16384", "/elsewhere")
                .unwrap();
        });
        extract(f.path(), "t.tar", stage.path()).unwrap();
        assert!(
            std::fs::symlink_metadata(stage.path().join("backup/data/pg_tblspc/16384")).is_err()
        );
    }
}
