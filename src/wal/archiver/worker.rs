//! The worker's side of intake, run in parallel: read (mmap), decompress
//! pre-compressed input, validate, hash, compare with an archived copy of
//! the same name, compress, and stage durably next to the final name.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::ServerIntake;
use crate::catalog::xlogdb::{self, Entry};
use crate::compression::{self, Codec, Compressor, Settings};
use crate::durable::{self, Pending, Staged};
use crate::pipeline::CpuSlots;
use crate::wal::header;
use crate::wal::name::WalName;
use crate::wal::source::SourceBytes;

/// One file to archive.
pub(super) struct Task {
    pub(super) group: usize,
    pub(super) server: usize,
    pub(super) path: PathBuf,
    pub(super) name: WalName,
    /// Incoming files may arrive compressed by the archive_command.
    pub(super) detect: bool,
}

impl Task {
    /// Distinguishes the staging names of a file that is in streaming/ and
    /// incoming/ at once (both archivers on), which are worked in parallel.
    pub(super) fn origin_tag(&self) -> &'static str {
        if self.detect {
            "incoming"
        } else {
            "streaming"
        }
    }
}

/// What a worker found.
pub(super) enum Outcome {
    /// Staged in the archive directory, ready to be renamed into place.
    Store {
        pending: Pending,
        entry: Entry,
        sysid: Option<u64>,
        /// Said once the file is archived (a PostgreSQL release newer
        /// than this build).
        warning: Option<String>,
        /// blake3 of the uncompressed content, to compare with a copy
        /// another task of this run archived first.
        hash: blake3::Hash,
    },
    /// The archive already holds this name with the same content.
    Same { entry: Entry },
    /// The archive already holds this name with different content.
    Different,
    /// The content is not a valid WAL file of this server.
    Invalid(String),
    /// An I/O failure: the server's run stops here.
    Failed(String),
    /// The server's run had already stopped.
    Skipped,
}

/// A worker's reusable state.
#[derive(Default)]
pub(super) struct Worker {
    /// One context per distinct codec setting (not per server: fifty
    /// servers with the same settings share one).
    compressors: Vec<Compressor>,
    out: Vec<u8>,
    plain: Vec<u8>,
    existing: Vec<u8>,
}

/// The worker's reusable compressor for `settings`; a few distinct
/// settings are kept, the oldest is dropped beyond that.
fn compressor<'a>(
    cache: &'a mut Vec<Compressor>,
    settings: &Settings,
) -> io::Result<&'a mut Compressor> {
    let i = match cache.iter().position(|c| c.settings() == settings) {
        Some(i) => i,
        None => {
            if cache.len() >= 4 {
                cache.remove(0);
            }
            cache.push(Compressor::new(settings).map_err(io::Error::other)?);
            cache.len() - 1
        }
    };
    Ok(&mut cache[i])
}

pub(super) fn work(
    servers: &[ServerIntake],
    stopped: &[AtomicBool],
    cpu: &CpuSlots,
    w: &mut Worker,
    task: &Task,
) -> Outcome {
    if stopped[task.server].load(Ordering::Relaxed) {
        return Outcome::Skipped;
    }
    let srv = &servers[task.server];
    process(srv, cpu, w, task).unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}

fn process(srv: &ServerIntake, cpu: &CpuSlots, w: &mut Worker, task: &Task) -> io::Result<Outcome> {
    let slot = cpu.take();
    let source = SourceBytes::open(&task.path)?;
    let meta = source.metadata();
    let bytes = source.bytes();
    let codec = if task.detect {
        Codec::detect(bytes, srv.custom.magic.as_deref())
    } else {
        None
    };
    let plain: &[u8] = match codec {
        Some(c) => {
            if let Err(e) = compression::decompress(c, bytes, &srv.custom, &mut w.plain) {
                return Ok(Outcome::Invalid(e.to_string()));
            }
            &w.plain
        }
        None => bytes,
    };
    let header = match header::validate(&task.name, plain, srv.sysid) {
        Ok(h) => h,
        Err(e) => return Ok(Outcome::Invalid(e.to_string())),
    };
    let hash = blake3::hash(plain);
    let target = srv.target(&task.name);
    let time = xlogdb::mtime_float(meta);

    if std::fs::symlink_metadata(&target).is_ok() {
        let same = archived_hash(srv, &target, &mut w.existing)? == Some(hash);
        return Ok(if same {
            Outcome::Same {
                entry: xlogdb::describe(
                    &target,
                    &task.name.name,
                    &srv.custom,
                    srv.unidentified.as_deref(),
                )?,
            }
        } else {
            Outcome::Different
        });
    }

    let dir = durable::parent(&target);
    std::fs::create_dir_all(dir)?;
    let sysid = header.map(|h| h.sysid);
    let warning = header.and_then(|h| h.unknown_release());
    if srv.compression.is_none() || codec.is_some() {
        // Stored as it is: on the same filesystem, link instead of copying.
        if std::fs::metadata(dir)?.dev() == meta.dev() {
            drop(slot);
            std::fs::File::open(&task.path)?.sync_all()?;
            crate::failpoint::hit("intake:staged");
            let entry = Entry {
                name: task.name.name.clone(),
                size: meta.len(),
                time,
                compression: codec.map(|c| c.name().to_string()),
                encryption: None,
            };
            return Ok(Outcome::Store {
                pending: Pending::Link {
                    from: task.path.clone(),
                    to: target,
                    inode: (meta.dev(), meta.ino()),
                },
                entry,
                sysid,
                warning,
                hash,
            });
        }
    }
    let (stored, compression): (&[u8], Option<String>) = if let Some(c) = codec {
        (bytes, Some(c.name().to_string()))
    } else if let Some(settings) = &srv.compression {
        compressor(&mut w.compressors, settings)?
            .compress(plain, &task.name.name, &mut w.out)
            .map_err(io::Error::other)?;
        (&w.out, Some(settings.name.clone()))
    } else {
        (bytes, None)
    };
    drop(slot); // the rest waits on the disk, not the CPU
    let mut staged = Staged::create(&target, task.origin_tag(), 0o600)?;
    staged
        .file()
        .set_permissions(std::fs::Permissions::from_mode(
            meta.permissions().mode() & 0o7777,
        ))?;
    std::io::Write::write_all(staged.file(), stored)?;
    let times = std::fs::FileTimes::new()
        .set_accessed(meta.accessed()?)
        .set_modified(meta.modified()?);
    staged.file().set_times(times)?;
    staged.file().sync_all()?;
    staged.close();
    crate::failpoint::hit("intake:staged");
    let entry = Entry {
        name: task.name.name.clone(),
        size: stored.len() as u64,
        time,
        compression,
        encryption: None,
    };
    Ok(Outcome::Store {
        pending: Pending::Staged(staged),
        entry,
        sysid,
        warning,
        hash,
    })
}

/// blake3 of the uncompressed content of an archived file (None when it
/// does not decompress: it cannot equal a valid source).
pub(super) fn archived_hash(
    srv: &ServerIntake,
    target: &Path,
    scratch: &mut Vec<u8>,
) -> io::Result<Option<blake3::Hash>> {
    let existing = std::fs::read(target)?;
    let stored = Codec::detect(&existing, srv.custom.magic.as_deref())
        .or_else(|| srv.unidentified.as_ref().map(|_| Codec::Custom));
    Ok(match stored {
        Some(c) => compression::decompress(c, &existing, &srv.custom, scratch)
            .ok()
            .map(|_| blake3::hash(scratch)),
        None => Some(blake3::hash(&existing)),
    })
}
