//! Exported backups: the self-contained tarball `barman export-backup`
//! writes and `barman import-backup` reads, in Barman 3.19's format, so a
//! backup moves between Barman and barman-rs hosts either way.
//!
//! The tarball holds, in this order: `identity.json`, `backup.info`,
//! `barman.json`, `backup/` (the whole `base/<ID>` tree), `wals/<hash>/<seg>`
//! for the segments begin_wal..end_wal, and their `xlog.db` lines. Its name,
//! `backup-export-<server>-<ID>-<UTC stamp>-<sha256[:8]>.tar[.gz|.bz2|.xz]`,
//! carries the backup ID the importer uses and a checksum of the file.

mod import;
mod write;

use std::io::{self, Read, Write};
use std::path::Path;

pub use import::import_backup;
pub use write::{export_backup, Compression};

/// What stops an export or an import. `Error` prints as Barman's `ERROR:`,
/// `Exception` as its `EXCEPTION: ...\nSee log file for more details.`
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Error(String),
    #[error("{0}")]
    Exception(String),
}

fn exception(msg: impl Into<String>) -> TransferError {
    TransferError::Exception(msg.into())
}

/// A writer that hashes what goes through it (sha256 of the final bytes,
/// compression included, as Barman's `file_hash`).
struct Hashing<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The first 8 hex digits of the file's sha256.
fn file_checksum(path: &Path) -> io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex8(&h.finalize()))
}

fn hex8(digest: &[u8]) -> String {
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens an exported tarball whatever its compression (by magic, as
/// Python's `r|*`).
fn open_tar(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(f);
    let m = &magic[..n];
    Ok(if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(head))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new(head))
    } else {
        Box::new(head)
    })
}

/// Python's `tarfile.is_tarfile`: a first header that reads as one.
pub fn is_tarfile(path: &Path) -> bool {
    let Ok(r) = open_tar(path) else {
        return false;
    };
    let mut ar = tar::Archive::new(r);
    let Ok(mut entries) = ar.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

/// `os.path.join(dir, name)` as typed: a relative directory stays relative.
fn join_as_typed(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_what_was_typed() {
        assert_eq!(join_as_typed(".", "a.tar"), "./a.tar");
        assert_eq!(join_as_typed("/tmp/out/", "a.tar"), "/tmp/out/a.tar");
        assert_eq!(join_as_typed("/tmp/out", "a.tar"), "/tmp/out/a.tar");
    }

    #[test]
    fn checksum_is_sha256_prefix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(file_checksum(&p).unwrap(), "ba7816bf");
    }
}
