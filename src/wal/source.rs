//! Reading a whole source file, memory-mapped where that is safe.
//!
//! This holds barman-rs's one `unsafe` block: [`memmap2::Mmap::map`].

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// A file's bytes: mapped, or read into memory when mapping is not possible
/// (empty files, filesystems without mmap).
pub struct SourceBytes {
    meta: Metadata,
    data: Data,
}

enum Data {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl SourceBytes {
    /// Opens `path` and maps it. Only for files nobody else is writing or
    /// truncating: WAL in incoming/ and streaming/ after PostgreSQL handed
    /// it over, and our own archive. Never live PGDATA.
    pub fn open(path: &Path) -> io::Result<SourceBytes> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.len() > 0 {
            // SAFETY: the mapping is read-only and private to this value. The
            // contract above rules out concurrent truncation (which would
            // raise SIGBUS) and concurrent writes (which would change bytes
            // under a validated slice): incoming/ and streaming/ files are
            // complete when they get their final name, and nothing rewrites
            // them in place; the archive is only written through staging +
            // rename, so a mapped archived file never changes.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                let _ = map.advise(memmap2::Advice::Sequential);
                return Ok(SourceBytes {
                    meta,
                    data: Data::Mapped(map),
                });
            }
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut buf)?;
        Ok(SourceBytes {
            meta,
            data: Data::Read(buf),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Mapped(m) => m,
            Data::Read(v) => v,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }
}
