//! `<server>-xlog.db`: one line per archived WAL file,
//! `name\tsize\ttime\tcompression\tencryption\n`, in append order. Every
//! access holds `.<server>-xlogdb.lock` (blocking), as Barman's does, so the
//! two tools can share a catalog.
//!
//! Appends are fsynced before the lock is released. Rebuilds write a staged
//! file and rename it into place (Barman truncates in place; a crash there
//! loses the catalog until the next rebuild).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::catalog::lock::{self, Lock, LockNames};
use crate::catalog::ServerCatalog;
use crate::compression::{Codec, CustomFilters};
use crate::output::python_float_repr;
use crate::wal::name::{Kind, WalName};

/// One xlog.db line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// Bytes of the stored (possibly compressed) file.
    pub size: u64,
    /// The original file's mtime, seconds since the epoch.
    pub time: f64,
    pub compression: Option<String>,
    pub encryption: Option<String>,
}

impl Entry {
    /// The line as Barman's `WalFileInfo.to_xlogdb_line` writes it.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\n",
            self.name,
            self.size,
            python_float_repr(self.time),
            self.compression.as_deref().unwrap_or("None"),
            self.encryption.as_deref().unwrap_or("None"),
        )
    }

    /// Parses a line as Barman's `from_xlogdb_line`: 3 to 5 whitespace
    /// separated fields; `None` means absent.
    pub fn parse(line: &str) -> Option<Entry> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !(3..=5).contains(&fields.len()) {
            return None;
        }
        let opt = |i: usize| {
            fields
                .get(i)
                .filter(|v| **v != "None")
                .map(|v| v.to_string())
        };
        Some(Entry {
            name: fields[0].to_string(),
            size: fields[1].parse().ok()?,
            time: fields[2].parse().ok()?,
            compression: opt(3),
            encryption: opt(4),
        })
    }
}

/// The xlog.db of one server, locked for as long as this value lives.
pub struct XlogDb {
    path: PathBuf,
    _lock: Lock,
}

#[derive(Debug, thiserror::Error)]
pub enum XlogDbError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}, line {line}: not an xlog.db line")]
    Syntax { path: PathBuf, line: usize },
}

impl XlogDb {
    /// Takes the xlog.db lock (waiting for it) of `catalog`.
    pub fn lock(catalog: &ServerCatalog, lock_dir: &Path) -> Result<XlogDb, XlogDbError> {
        let lock = lock::acquire(&LockNames { dir: lock_dir }.xlogdb(&catalog.name), true)?;
        Ok(XlogDb {
            path: catalog.xlogdb_file(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: io::Error) -> XlogDbError {
        XlogDbError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `entries` and fsyncs the file: on return they are durable.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), XlogDbError> {
        if entries.is_empty() {
            return Ok(());
        }
        let text: String = entries.iter().map(Entry::to_line).collect();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.drop_torn_tail(&mut f).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::End(0)).map_err(|e| self.io(e))?;
        f.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))
    }

    /// A crash in the middle of an append can leave a last line without its
    /// newline. Its file is still in incoming/ (sources are removed only
    /// after the append is durable) and will be recorded again, so the torn
    /// fragment is cut off rather than glued to the next line.
    fn drop_torn_tail(&self, f: &mut File) -> io::Result<()> {
        let len = f.metadata()?.len();
        if len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let tail = len.min(64 * 1024);
        let mut buf = vec![0u8; tail as usize];
        f.seek(SeekFrom::Start(len - tail))?;
        f.read_exact(&mut buf)?;
        let keep = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => len - tail + i as u64 + 1,
            None if tail == len => 0,
            None => return Ok(()), // a 64 KiB line is not a torn append
        };
        log::warn!("{}: dropping a torn last line", self.path.display());
        f.set_len(keep)
    }

    /// Every entry, in file order. A missing file reads as empty.
    pub fn entries(&self) -> Result<Vec<Entry>, XlogDbError> {
        read_entries(&self.path)
    }

    /// Replaces the whole file with `entries`, durably (staged + renamed).
    pub fn rewrite(&mut self, entries: &[Entry]) -> Result<(), XlogDbError> {
        let text: String = entries.iter().map(Entry::to_line).collect();
        crate::durable::write_replace(&self.path, text.as_bytes(), 0o644).map_err(|e| self.io(e))
    }
}

/// Reads an xlog.db file without locking (the caller holds the lock).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, XlogDbError> {
    let io = |source| XlogDbError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut text = String::new();
    BufReader::new(file).read_to_string(&mut text).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            // A torn last line (a crash mid-append): its file is still in
            // incoming/ and will be recorded again; the next append cuts it.
            log::warn!("{}: ignoring a torn last line", path.display());
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        out.push(Entry::parse(line).ok_or(XlogDbError::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
        })?);
    }
    Ok(out)
}

/// The entries in the last `bytes` of an xlog.db (whole lines only).
pub fn read_tail(path: &Path, bytes: u64) -> io::Result<Vec<Entry>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // the first line is cut
    }
    Ok(lines.into_iter().filter_map(Entry::parse).collect())
}

/// Scans `wals/` as Barman's `rebuild_xlogdb` does: hash directories in name
/// order, each one's segments and `.backup` files in name order, history
/// files at the top (partial, temporary and unknown files are skipped).
/// Sizes and times come from the files, compression from their magic.
pub fn scan_archive(
    wals: &Path,
    custom: &CustomFilters,
    unidentified: Option<&str>,
) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut top: Vec<_> = match std::fs::read_dir(wals) {
        Ok(rd) => rd.collect::<Result<_, _>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    top.sort_by_key(|e| e.file_name());
    for entry in top {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry.file_type()?;
        if ft.is_dir() && name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut files: Vec<_> = std::fs::read_dir(entry.path())?.collect::<Result<_, _>>()?;
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let fname = f.file_name().to_string_lossy().into_owned();
                let kind = WalName::parse(&fname).map(|n| n.kind);
                if f.file_type()?.is_file() && matches!(kind, Some(Kind::Segment | Kind::Backup)) {
                    out.push(describe(&f.path(), &fname, custom, unidentified)?);
                }
            }
        } else if ft.is_file() && name.ends_with(".history") && WalName::parse(&name).is_some() {
            out.push(describe(&entry.path(), &name, custom, unidentified)?);
        }
    }
    Ok(out)
}

/// A file's mtime as Python's `os.stat().st_mtime`: `sec + nsec * 1e-9`
/// (the same float, so xlog.db times match Barman's to the last digit).
pub fn mtime_float(meta: &std::fs::Metadata) -> f64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime() as f64 + f64::from(meta.mtime_nsec() as u32) * 1e-9
}

/// Whether nothing has been archived yet (no xlog.db, or an empty one).
pub fn is_empty(catalog: &ServerCatalog) -> bool {
    std::fs::metadata(catalog.xlogdb_file()).map_or(true, |m| m.len() == 0)
}

/// The xlog.db entry for an archived file, from the file itself.
pub fn describe(
    path: &Path,
    name: &str,
    custom: &CustomFilters,
    unidentified: Option<&str>,
) -> io::Result<Entry> {
    let meta = std::fs::metadata(path)?;
    let mut head = [0u8; 16];
    let mut f = File::open(path)?;
    let n = f.read(&mut head)?;
    let compression = Codec::detect(&head[..n], custom.magic.as_deref())
        .map(|c| c.name().to_string())
        .or_else(|| unidentified.map(str::to_string));
    Ok(Entry {
        name: name.to_string(),
        size: meta.len(),
        time: mtime_float(&meta),
        compression,
        encryption: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip_matches_barman() {
        let line = "000000010000000000000006\t121845\t1795558077.2705085\tgzip\tNone\n";
        let e = Entry::parse(line).unwrap();
        assert_eq!(e.compression.as_deref(), Some("gzip"));
        assert_eq!(e.encryption, None);
        assert_eq!(e.to_line(), line);
        let short = Entry::parse("00000001.history 42 1795558077.0").unwrap();
        assert_eq!(
            short.to_line(),
            "00000001.history\t42\t1795558077.0\tNone\tNone\n"
        );
        assert!(Entry::parse("a b").is_none());
        assert!(Entry::parse("a x 1.0").is_none());
    }
}
