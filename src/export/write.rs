//! Writing an exported backup: the tarball is streamed through a hashing
//! writer and the chosen compressor into `<dir>/backup-export-...tmp`,
//! fsynced, then renamed (never replacing) to its checksummed name.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{exception, file_checksum, join_as_typed, Hashing, TransferError};
use crate::catalog::backup_ext::{required_segments, wal_path};
use crate::catalog::backups::{self, Backup};
use crate::catalog::lock::{self, LockError, LockNames};
use crate::catalog::xlogdb::Entry;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;

/// `--compression` and its level (Barman's defaults: gzip 9, bzip2 9,
/// xz 6). Barman 3.19.1 on Python 3.11 ignores the level; it is honoured.
#[derive(Debug, Clone, Copy)]
pub enum Compression {
    Gzip(u32),
    Bzip2(u32),
    Xz(u32),
}

impl Compression {
    fn ext(self) -> &'static str {
        match self {
            Compression::Gzip(_) => ".tar.gz",
            Compression::Bzip2(_) => ".tar.bz2",
            Compression::Xz(_) => ".tar.xz",
        }
    }
}

enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    fn new(w: W, c: Option<Compression>) -> Encoder<W> {
        match c {
            None => Encoder::Plain(w),
            Some(Compression::Gzip(l)) => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(l),
            )),
            Some(Compression::Bzip2(l)) => {
                Encoder::Bzip2(bzip2::write::BzEncoder::new(w, bzip2::Compression::new(l)))
            }
            Some(Compression::Xz(l)) => Encoder::Xz(liblzma::write::XzEncoder::new(w, l)),
        }
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Bzip2(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
        }
    }
}

/// Removes the temporary tarball unless the export reached its rename.
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("Failed to clean up temporary file '{}': {e}", p.display());
                }
            }
        }
    }
}

/// Python's `json.dumps(v, indent=4, sort_keys=True)` (serde_json's map is
/// sorted).
fn py_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("JSON to memory");
    out
}

/// Exports `backup` of `cfg` into `out_dir` (as typed); returns the path of
/// the tarball as Barman prints it.
pub fn export_backup(
    cfg: &ServerConfig,
    lock_dir: &Path,
    backup: &Backup,
    out_dir: &str,
    compression: Option<Compression>,
) -> Result<String, TransferError> {
    let cat = ServerCatalog::new(cfg);
    let identity: serde_json::Value = match std::fs::read_to_string(cat.identity_file()) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| exception(format!("{}: {e}", cat.identity_file().display())))?,
        Err(e) => {
            log::error!("{}: {e}", cat.identity_file().display());
            serde_json::Value::Null
        }
    };
    if identity.as_object().is_none_or(|m| m.is_empty()) {
        return Err(TransferError::Error(format!(
            "No identity file found for server '{}'. The identity file is required to validate the backup during import.",
            cfg.name
        )));
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S").to_string();
    let stem = format!("backup-export-{}-{}-{stamp}", cfg.name, backup.id);
    let tmp_typed = join_as_typed(out_dir, &format!("{stem}.tmp"));
    let _lock = match lock::acquire(
        &LockNames { dir: lock_dir }.backup_id(&cfg.name, &backup.id),
        false,
    ) {
        Ok(l) => l,
        Err(LockError::Busy { .. }) => {
            return Err(TransferError::Error(format!(
                "Another backup operation is already running on backup '{}' for server '{}'",
                backup.id, cfg.name
            )))
        }
        Err(e) => {
            return Err(TransferError::Error(format!(
                "Unable to acquire backup export lock for backup '{}' on server '{}': {e}",
                backup.id, cfg.name
            )))
        }
    };
    let mut guard = TmpGuard(Some(PathBuf::from(&tmp_typed)));
    write_tarball(&cat, backup, &identity, Path::new(&tmp_typed), compression)?;
    let checksum =
        file_checksum(Path::new(&tmp_typed)).map_err(|e| exception(format!("{tmp_typed}: {e}")))?;
    let final_typed = join_as_typed(
        out_dir,
        &format!(
            "{stem}-{checksum}{}",
            compression.map_or(".tar", |c| c.ext())
        ),
    );
    crate::durable::rename_noreplace(Path::new(&tmp_typed), Path::new(&final_typed))
        .and_then(|()| crate::durable::sync_dir(crate::durable::parent(Path::new(&final_typed))))
        .map_err(|e| exception(format!("{final_typed}: {e}")))?;
    guard.0 = None;
    Ok(final_typed)
}

fn write_tarball(
    cat: &ServerCatalog,
    backup: &Backup,
    identity: &serde_json::Value,
    tmp: &Path,
    compression: Option<Compression>,
) -> Result<(), TransferError> {
    let io_err = |e: io::Error| exception(format!("{}: {e}", tmp.display()));
    let wals = collect_wals(cat, backup)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err)?;
    let hashing = Hashing {
        inner: io::BufWriter::with_capacity(1 << 20, file),
        hash: Default::default(),
    };
    let mut tar = tar::Builder::new(Encoder::new(hashing, compression));
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let synthetic = |tar: &mut tar::Builder<_>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, name, data)
    };
    synthetic(&mut tar, "identity.json", &py_json(identity)).map_err(io_err)?;
    let info = backups::info_path(cat, &backup.id);
    tar.append_path_with_name(&info, "backup.info")
        .map_err(|e| exception(format!("{}: {e}", info.display())))?;
    synthetic(&mut tar, "barman.json", &py_json(&system_info())).map_err(io_err)?;
    let base = cat.basebackups_directory.join(&backup.id);
    for entry in walkdir::WalkDir::new(&base)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| exception(format!("{}: {e}", base.display())))?;
        let rel = entry.path().strip_prefix(&base).expect("under base");
        let name = Path::new("backup").join(rel);
        tar.append_path_with_name(entry.path(), &name)
            .map_err(|e| exception(format!("{}: {e}", entry.path().display())))?;
    }
    let mut lines = String::new();
    for (path, entry, line) in &wals {
        let name = format!("wals/{}/{}", &entry.name[..16], entry.name);
        tar.append_path_with_name(path, &name)
            .map_err(|e| exception(format!("{}: {e}", path.display())))?;
        lines.push_str(line);
    }
    let mut h = tar::Header::new_ustar();
    h.set_size(lines.len() as u64);
    h.set_mode(0o600);
    h.set_uid(nix::unistd::geteuid().as_raw() as u64);
    h.set_gid(nix::unistd::getegid().as_raw() as u64);
    h.set_mtime(jiff::Timestamp::now().as_second() as u64);
    tar.append_data(&mut h, "xlog.db", lines.as_bytes())
        .map_err(io_err)?;
    let hashing = tar.into_inner().and_then(Encoder::finish).map_err(io_err)?;
    let file = hashing
        .inner
        .into_inner()
        .map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)
}

/// The archived segments begin_wal..end_wal with their xlog.db lines, as
/// Barman's `_collect_wal_files_for_export` (by name, so an unsorted
/// xlog.db does not matter).
fn collect_wals(
    cat: &ServerCatalog,
    backup: &Backup,
) -> Result<Vec<(PathBuf, Entry, String)>, TransferError> {
    let info = &backup.info;
    let required = required_segments(
        info.get("begin_wal").unwrap_or(""),
        info.get("end_wal").unwrap_or(""),
        info.get_int("xlog_segment_size").unwrap_or(16 << 20) as u64,
        info.get_int("version"),
    );
    let text = std::fs::read_to_string(cat.xlogdb_file()).unwrap_or_default();
    let mut lines = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(e) = Entry::parse(line) {
            lines
                .entry(e.name.clone())
                .or_insert((e, format!("{line}\n")));
        }
    }
    let mut out = Vec::new();
    for seg in required {
        let Some((entry, line)) = lines.remove(&seg) else {
            return Err(exception(format!(
                "WAL file required for backup consistency not found in xlog.db for backup '{}': {seg}",
                backup.id
            )));
        };
        let path = wal_path(&cat.wals_directory, &seg);
        if !path.is_file() {
            return Err(exception(format!(
                "WAL file required for backup consistency not found for backup '{}': {seg}",
                backup.id
            )));
        }
        out.push((path, entry, line));
    }
    Ok(out)
}

/// barman.json: informational, never read by an importer.
fn system_info() -> serde_json::Value {
    let uname = nix::sys::utsname::uname().ok();
    serde_json::json!({
        "barman_ver": "3.19.1",
        "implementation": concat!("barman-rs ", env!("CARGO_PKG_VERSION")),
        "kernel_ver": uname.as_ref().map(|u| format!("{} {} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy(), u.machine().to_string_lossy())),
        "release": std::fs::read_to_string("/etc/debian_version").ok().map(|s| format!("Debian GNU/Linux {}", s.trim())),
        "timestamp": jiff::ZonedDateTime::now().strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
    })
}
