//! The native copy's compressed form (`backup_compression` with
//! `backup_method = local-rsync`): `data/base.tar.<ext>` and
//! `data/<oid>.tar.<ext>` laid out as `pg_basebackup --format=tar` writes
//! them, with a plain `data/backup_manifest` beside them, so Barman 3.19
//! (`tar` with the codec's command) and barman-rs recover them as they do
//! Barman's own compressed postgres-method backups.
//!
//! One archive is compressed on every core: the walk is cut into *pieces*
//! of about [`PIECE`] bytes of tar (several small files, or one range of a
//! large one). A worker builds a piece's tar bytes (headers, file data read
//! with pread, padding) and compresses them as one independent frame (a
//! gzip member, an LZ4 frame, a zstd frame); the in-order committer appends
//! the frames. A concatenation of frames is one valid stream for
//! `tar -z`, `lz4 -d`, `zstd -d` and our reader. Each frame carries its own
//! checksum (gzip CRC32, LZ4 and zstd content checksums).
//!
//! A large file is read through one descriptor opened when the walk meets
//! it, and its tar header carries the size seen then: a file that shrinks
//! during the copy is padded with zeros and one that grows is cut, as
//! pg_basebackup does; WAL replay repairs both. The archives are staged
//! under temporary names and renamed into place once complete and fsynced.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::local::{Entry, Rules, Task, Tree, Walker};
use super::page::{self, BLCKSZ};
use crate::compression::{Codec, Compressor, CustomFilters, Settings};
use crate::config::ServerConfig;
use crate::durable::{sync_dir, Staged};
use crate::pipeline::{self, Width};

/// Bytes of tar per piece (one frame). Large enough that frame overheads
/// and the codec's lost window are negligible, small enough that the
/// pieces in flight stay a few tens of MiB.
pub const PIECE: u64 = 4 << 20;
/// Files up to this size are read whole by the worker that packs them.
const SMALL: u64 = 1 << 20;
const BLOCK: u64 = 512;

/// The archive format: `backup_compression` and its level.
#[derive(Debug, Clone)]
pub struct Format {
    /// `gzip`, `lz4`, `zstd` or `none` (an uncompressed tar).
    pub kind: String,
    codec: Option<Codec>,
    level: i32,
}

impl Format {
    /// From `backup_compression` (and `backup_compression_level`, else
    /// pg_basebackup's defaults: gzip 6, zstd 3; LZ4 is always its fast
    /// mode here). None when the server takes plain backups.
    pub fn from_config(cfg: &ServerConfig) -> Option<Format> {
        let kind = cfg.get_str("backup_compression")?;
        Some(Format::new(
            kind,
            cfg.get_int("backup_compression_level").map(|l| l as i32),
        ))
    }

    pub fn new(kind: &str, level: Option<i32>) -> Format {
        let kind = kind.to_ascii_lowercase();
        let codec = match kind.as_str() {
            "gzip" => Some(Codec::Gzip),
            "lz4" => Some(Codec::Lz4),
            "zstd" => Some(Codec::Zstd),
            _ => None,
        };
        let default = match codec {
            Some(Codec::Gzip) => 6,
            Some(Codec::Zstd) => 3,
            _ => 0,
        };
        Format {
            kind,
            codec,
            level: level.unwrap_or(default),
        }
    }

    /// `base.tar.lz4` and the like (Barman's file extensions).
    pub fn archive_name(&self, base: &str) -> String {
        super::pg_basebackup::tar_name(&self.kind, base)
    }

    fn compressor(&self) -> Result<Option<Compressor>, String> {
        let Some(codec) = self.codec.filter(|c| *c != Codec::Lz4) else {
            return Ok(None);
        };
        Compressor::new(&Settings {
            codec,
            name: self.kind.clone(),
            level: self.level,
            custom: CustomFilters::default(),
        })
        .map(Some)
        .map_err(|e| format!("backup_compression = {}: {e}", self.kind))
    }
}

/// A large file, opened once by the walk; its ranges share the descriptor.
#[derive(Debug)]
struct Opened {
    task: Task,
    file: File,
    size: u64,
    mode: u32,
    mtime: i64,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
enum Part {
    Dir(super::local::Dir),
    /// A whole small file, opened and read by the worker.
    Small(Task),
    /// `len` bytes from `offset` of a large file (the first range writes
    /// the header, the last the padding).
    Range {
        file: Arc<Opened>,
        offset: u64,
        len: u64,
    },
}

/// What packing one file (or a range of it) found.
#[derive(Debug, Default)]
struct Packed {
    crc: u32,
    size: u64,
    mtime: i64,
    bad_blocks: Vec<u64>,
    vanished: bool,
}

/// One piece's compressed frame and what each of its parts held.
struct Frame {
    bytes: Vec<u8>,
    packed: Vec<Packed>,
}

/// An archive being written: frames appended to a staged file.
pub struct Stream {
    staged: Staged,
    compressor: Option<Compressor>,
    lz4: bool,
    written: u64,
    /// Where writeback has been started up to.
    flushed: u64,
}

/// Writeback is started every so many bytes appended, so the final fsync
/// of a multi-GiB archive does not find it all still dirty in memory.
const WRITEBACK: u64 = 32 << 20;

impl Stream {
    fn create(format: &Format, dir: &Path, base: &str) -> Result<Stream, String> {
        let target = dir.join(format.archive_name(base));
        let staged = Staged::create(&target, "backup", 0o600)
            .map_err(|e| format!("{}: {e}", target.display()))?;
        Ok(Stream {
            staged,
            compressor: format.compressor()?,
            lz4: format.codec == Some(Codec::Lz4),
            written: 0,
            flushed: 0,
        })
    }

    fn append(&mut self, frame: &[u8]) -> Result<(), String> {
        let file = self.staged.file();
        if let Err(e) = file.write_all(frame) {
            return Err(format!("{}: {e}", self.staged.target().display()));
        }
        self.written += frame.len() as u64;
        if self.written - self.flushed >= WRITEBACK {
            // POSIX_FADV_DONTNEED starts writeback of the range's dirty
            // pages (and drops its clean ones: a backup is not read back
            // soon). Only advice: an error changes nothing.
            let _ = nix::fcntl::posix_fadvise(
                &*file,
                self.flushed as i64,
                (self.written - self.flushed) as i64,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            self.flushed = self.written;
        }
        Ok(())
    }

    /// Appends `files` (name, content; mode 0600, mtime now) and the end of
    /// the archive as a last frame, fsyncs, and renames the archive into
    /// place (the caller fsyncs the directory). Returns the mtime given.
    pub fn finish_with(mut self, files: &[(&str, &[u8])]) -> Result<i64, String> {
        let now = jiff::Timestamp::now().as_second();
        let mut tar = Vec::new();
        for (name, data) in files {
            let h = header(
                name,
                data.len() as u64,
                0o600,
                now,
                None,
                tar::EntryType::Regular,
            )?;
            tar.extend_from_slice(&h);
            tar.extend_from_slice(data);
            pad(&mut tar);
        }
        tar.resize(tar.len() + 2 * BLOCK as usize, 0);
        let frame = frame(&mut self.compressor, self.lz4, &mut tar, Vec::new())?;
        self.append(&frame)?;
        let target = self.staged.target().to_path_buf();
        let ctx = |e: io::Error| format!("{}: {e}", target.display());
        self.staged.file().sync_all().map_err(ctx)?;
        self.staged.commit().map_err(ctx)?;
        Ok(now)
    }
}

/// `tar` as one compressed frame in `out` (or `tar` itself, for an
/// uncompressed archive, with `out` left in its place).
fn frame(
    c: &mut Option<Compressor>,
    lz4: bool,
    tar: &mut Vec<u8>,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    match c {
        // What pg_basebackup's LZ4F writes: independent blocks (each one
        // compressed without the previous as dictionary) of 4 MiB, no
        // content checksum (the manifest's CRC32C checks every file).
        None if lz4 => {
            use std::io::Write as _;
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max4MB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            out.clear();
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(tar)
                .map_err(|e| format!("compressing the backup: {e}"))?;
            enc.finish()
                .map_err(|e| format!("compressing the backup: {e}"))
        }
        None => {
            std::mem::swap(tar, &mut out);
            Ok(out)
        }
        Some(c) => {
            c.compress(tar, "base.tar", &mut out)
                .map_err(|e| format!("compressing the backup: {e}"))?;
            Ok(out)
        }
    }
}

/// Piece-sized buffers handed back by the committer once written: a fresh
/// 4 MiB allocation per piece costs a page fault per 4 KiB, as much CPU as
/// a fast codec's work on it.
struct Pool {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    rx: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Pool {
    fn new(n: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::bounded(n);
        Pool { tx, rx }
    }

    fn get(&self) -> Vec<u8> {
        self.rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity((PIECE + SMALL) as usize))
    }

    fn put(&self, mut v: Vec<u8>) {
        v.clear();
        let _ = self.tx.try_send(v);
    }
}

/// A ustar header as pg_basebackup writes one (names over 99 bytes are
/// split into ustar's prefix, or refused).
fn header(
    name: &str,
    size: u64,
    mode: u32,
    mtime: i64,
    owner: Option<(u32, u32)>,
    kind: tar::EntryType,
) -> Result<[u8; 512], String> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| format!("{name}: cannot be stored in a tar archive: {e}"))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime.max(0) as u64);
    let (uid, gid) = owner.unwrap_or((0, 0));
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_entry_type(kind);
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// Pads `buf` with zeros to a whole tar block.
fn pad(buf: &mut Vec<u8>) {
    let rem = buf.len() as u64 % BLOCK;
    if rem != 0 {
        buf.resize(buf.len() + (BLOCK - rem) as usize, 0);
    }
}

/// Cuts the walk into pieces of about [`PIECE`] bytes of tar.
struct Packer<I> {
    entries: I,
    pending: Vec<Part>,
    pending_bytes: u64,
    /// A large file still being cut into ranges.
    large: Option<(Arc<Opened>, u64)>,
    done: bool,
}

impl<I: Iterator<Item = Result<Entry, String>>> Packer<I> {
    fn take(&mut self) -> Option<Result<Vec<Part>, String>> {
        self.pending_bytes = 0;
        (!self.pending.is_empty()).then(|| Ok(std::mem::take(&mut self.pending)))
    }
}

fn open_file(task: Task) -> Result<Option<Opened>, String> {
    let file = match File::open(&task.src) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", task.src.display())),
    };
    let m = file
        .metadata()
        .map_err(|e| format!("{}: {e}", task.src.display()))?;
    Ok(Some(Opened {
        task,
        file,
        size: m.len(),
        mode: m.mode() & 0o7777,
        mtime: m.mtime(),
        uid: m.uid(),
        gid: m.gid(),
    }))
}

impl<I: Iterator<Item = Result<Entry, String>>> Iterator for Packer<I> {
    type Item = Result<Vec<Part>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((file, offset)) = self.large.take() {
                let len = (file.size - offset).min(PIECE);
                if offset + len < file.size {
                    self.large = Some((file.clone(), offset + len));
                }
                return Some(Ok(vec![Part::Range { file, offset, len }]));
            }
            if self.done {
                return self.take();
            }
            match self.entries.next() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // The archive's root is its extraction directory.
                Some(Ok(Entry::Dir(d))) if d.rel.is_empty() => {}
                Some(Ok(Entry::Dir(d))) => {
                    self.pending.push(Part::Dir(d));
                    self.pending_bytes += BLOCK;
                }
                Some(Ok(Entry::File(t))) => {
                    let size = std::fs::metadata(&t.src).map(|m| m.len()).unwrap_or(0);
                    if size <= SMALL {
                        self.pending_bytes += BLOCK + size.div_ceil(BLOCK) * BLOCK;
                        self.pending.push(Part::Small(t));
                    } else {
                        match open_file(t) {
                            Ok(Some(o)) if o.size > 0 => {
                                let o = Arc::new(o);
                                // Small parts already gathered go first,
                                // keeping the archive in walk order.
                                self.large = Some((o, 0));
                                if let Some(p) = self.take() {
                                    return Some(p);
                                }
                                continue;
                            }
                            Ok(Some(o)) => {
                                self.pending.push(Part::Small(o.task));
                                self.pending_bytes += BLOCK;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                self.done = true;
                                return Some(Err(e));
                            }
                        }
                    }
                }
            }
            if self.pending_bytes >= PIECE {
                return self.take();
            }
        }
    }
}

/// Per-worker state: a codec context and buffers, reused piece to piece.
struct Worker {
    compressor: Result<Option<Compressor>, String>,
    lz4: bool,
    tar: Vec<u8>,
}

/// Appends `len` bytes of `file` from `offset` to `buf` (zeros past the
/// file's current end), verifying page checksums on the way.
fn read_range(
    file: &File,
    task: &Task,
    offset: u64,
    len: u64,
    rules: &Rules,
    buf: &mut Vec<u8>,
    packed: &mut Packed,
) -> Result<(), String> {
    let start = buf.len();
    buf.resize(start + len as usize, 0);
    let mut got = 0usize;
    while got < len as usize {
        match file.read_at(&mut buf[start + got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{}: {e}", task.src.display())),
        }
    }
    let data = &buf[start..];
    if let Some(first) = task.first_block {
        let at = offset / BLCKSZ as u64;
        packed.bad_blocks = page::bad_blocks(file, data, first, at, rules.start_lsn);
    }
    packed.crc = crc32c::crc32c(data);
    Ok(())
}

fn pack(w: &mut Worker, parts: &[Part], rules: &Rules, pool: &Pool) -> Result<Frame, String> {
    w.tar.clear();
    let mut results = Vec::with_capacity(parts.len());
    for part in parts {
        let mut p = Packed::default();
        match part {
            Part::Dir(d) => {
                let h = header(
                    &format!("{}/", d.rel),
                    0,
                    d.mode,
                    d.mtime,
                    None,
                    tar::EntryType::Directory,
                )?;
                w.tar.extend_from_slice(&h);
            }
            Part::Small(task) => match open_file(task.clone())? {
                None => p.vanished = true,
                Some(o) => {
                    let h = header(
                        &task.rel,
                        o.size,
                        o.mode,
                        o.mtime,
                        Some((o.uid, o.gid)),
                        tar::EntryType::Regular,
                    )?;
                    w.tar.extend_from_slice(&h);
                    read_range(&o.file, task, 0, o.size, rules, &mut w.tar, &mut p)?;
                    pad(&mut w.tar);
                    p.size = o.size;
                    p.mtime = o.mtime;
                }
            },
            Part::Range { file, offset, len } => {
                if *offset == 0 {
                    let h = header(
                        &file.task.rel,
                        file.size,
                        file.mode,
                        file.mtime,
                        Some((file.uid, file.gid)),
                        tar::EntryType::Regular,
                    )?;
                    w.tar.extend_from_slice(&h);
                }
                read_range(
                    &file.file, &file.task, *offset, *len, rules, &mut w.tar, &mut p,
                )?;
                if offset + len == file.size {
                    pad(&mut w.tar);
                }
                p.size = file.size;
                p.mtime = file.mtime;
            }
        }
        results.push(p);
    }
    let compressor = w.compressor.as_mut().map_err(|e| e.clone())?;
    Ok(Frame {
        bytes: frame(compressor, w.lz4, &mut w.tar, pool.get())?,
        packed: results,
    })
}

/// Copies every tree into its archive under `data/`, then the files
/// outside PGDATA and pg_control (last) into base's. Returns base's
/// archive, still open for backup_label; the others are complete, synced
/// and in place.
#[allow(clippy::too_many_arguments)]
pub fn copy<'a>(
    format: &Format,
    data_dir: &Path,
    trees: &'a [Tree],
    walker: impl Fn(std::slice::Iter<'a, Tree>) -> Walker<'a>,
    extra: Vec<(String, Task)>,
    jobs: usize,
    rules: &Rules,
    report: &mut super::local::CopyReport,
    progress: &dyn Fn(u64),
    copy_per_item: &mut Vec<(String, f64, f64)>,
) -> Result<Stream, String> {
    // 0700 as pg_basebackup leaves its --pgdata directory.
    std::fs::create_dir_all(data_dir)
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut base = None;
    for tree in trees {
        let started = Instant::now();
        let mut stream = Stream::create(format, data_dir, &tree.archive)?;
        let serialized = run(
            &mut stream,
            walker(std::slice::from_ref(tree).iter()),
            format,
            jobs,
            rules,
            report,
            progress,
        )?;
        copy_per_item.push((
            tree.label.clone(),
            started.elapsed().as_secs_f64(),
            serialized,
        ));
        if tree.archive == "base" {
            base = Some(stream);
        } else {
            stream.finish_with(&[])?;
        }
    }
    let mut base = base.expect("PGDATA is one of the trees");
    for (label, task) in extra {
        let started = Instant::now();
        let serialized = run(
            &mut base,
            std::iter::once(Ok(Entry::File(task))),
            format,
            1,
            rules,
            report,
            progress,
        )?;
        copy_per_item.push((label, started.elapsed().as_secs_f64(), serialized));
    }
    sync_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    Ok(base)
}

/// Runs one walk through the pipeline into `stream`; returns the summed
/// worker time.
fn run(
    stream: &mut Stream,
    entries: impl Iterator<Item = Result<Entry, String>> + Send,
    format: &Format,
    jobs: usize,
    rules: &Rules,
    report: &mut super::local::CopyReport,
    progress: &dyn Fn(u64),
) -> Result<f64, String> {
    let pieces = Packer {
        entries,
        pending: Vec::new(),
        pending_bytes: 0,
        large: None,
        done: false,
    };
    // Frames in flight hold compressed data: a narrower window than the
    // plain copy's keeps them to a few pieces per worker.
    let workers = jobs.max(1);
    let width = Width {
        workers,
        window: workers * 4,
        batch: workers * 2,
        linger: std::time::Duration::from_millis(5),
    };
    let mut serialized = 0.0;
    // CRC32C so far of the large file being appended.
    let mut current_crc = 0u32;
    let pool = Pool::new(width.window + width.workers);
    let mut committed = |parts: Vec<Part>, frame: Frame| -> Result<(), String> {
        stream.append(&frame.bytes)?;
        pool.put(frame.bytes);
        for (part, p) in parts.into_iter().zip(frame.packed) {
            match part {
                Part::Dir(_) => {}
                Part::Small(task) if p.vanished => {
                    log::debug!("{} vanished during the copy", task.src.display());
                }
                Part::Small(task) => {
                    let whole = Some((p.size, p.mtime, p.crc));
                    report.record(&task, p.size, &p.bad_blocks, whole, progress)?;
                }
                Part::Range { file, offset, len } => {
                    if offset == 0 {
                        current_crc = 0;
                    }
                    current_crc = crc32c::crc32c_combine(current_crc, p.crc, len as usize);
                    let whole =
                        (offset + len == file.size).then_some((p.size, p.mtime, current_crc));
                    report.record(&file.task, len, &p.bad_blocks, whole, progress)?;
                }
            }
        }
        Ok(())
    };
    pipeline::try_run(
        width,
        pieces,
        || Worker {
            compressor: format.compressor(),
            lz4: format.codec == Some(Codec::Lz4),
            tar: Vec::with_capacity((PIECE + SMALL) as usize),
        },
        |w: &mut Worker, parts: &Result<Vec<Part>, String>| {
            let started = Instant::now();
            let r = match parts {
                Ok(parts) => pack(w, parts, rules, &pool),
                Err(e) => Err(e.clone()),
            };
            (r, started.elapsed().as_secs_f64())
        },
        |parts, (frame, took)| {
            serialized += took;
            committed(parts.expect("an Err piece yields an Err frame"), frame?)
        },
    )?;
    Ok(serialized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::local::{CopyReport, Dir};
    use std::collections::HashMap;
    use std::io::Read;

    fn task(root: &Path, rel: &str) -> Task {
        Task {
            src: root.join(rel),
            dest: PathBuf::new(),
            rel: rel.into(),
            manifest_path: Some(rel.into()),
            first_block: None,
            previous: None,
        }
    }

    /// Small files, a directory and files spanning several pieces go
    /// through the pipeline as independent frames; the archive reads back
    /// whole with every codec, and the manifest's CRC32C match.
    #[test]
    fn archives_read_back_for_every_codec() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("base/1")).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, size) in [0usize, 1, 511, 512, 8192, 700_000, 1_048_577, 9_437_185]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..size).map(|b| ((b * 7 + i) % 251) as u8).collect();
            let rel = format!("base/1/{}", 1000 + i);
            std::fs::write(src.join(&rel), &data).unwrap();
            files.push((rel, data));
        }
        for kind in ["lz4", "zstd", "gzip", "none"] {
            let out = dir.path().join(kind);
            std::fs::create_dir_all(&out).unwrap();
            let format = Format::new(kind, None);
            let mut entries = vec![Ok(Entry::Dir(Dir {
                dest: PathBuf::new(),
                rel: "base".into(),
                mode: 0o700,
                mtime: 0,
            }))];
            entries.extend(
                files
                    .iter()
                    .map(|(rel, _)| Ok(Entry::File(task(&src, rel)))),
            );
            let mut report = CopyReport {
                manifest: Some(
                    crate::backup::manifest::Writer::create(&out.join("backup_manifest")).unwrap(),
                ),
                ..CopyReport::default()
            };
            let rules = Rules {
                start_lsn: 0,
                horizon: None,
                link: false,
                previous_crc: HashMap::new(),
            };
            let mut stream = Stream::create(&format, &out, "base").unwrap();
            run(
                &mut stream,
                entries.into_iter(),
                &format,
                2,
                &rules,
                &mut report,
                &|_| {},
            )
            .unwrap();
            stream.finish_with(&[("backup_label", b"LABEL\n")]).unwrap();
            report.manifest.take().unwrap().finish(&[]).unwrap();

            let archive = out.join(format.archive_name("base"));
            // The restore reads our zstd archives frame-parallel.
            let reader: Box<dyn Read + Send> = match kind {
                "zstd" => Box::new(crate::restore::frames::reader(&archive, 2).unwrap()),
                _ => crate::backup::pg_basebackup::tar_reader(&archive).unwrap(),
            };
            let mut tar = tar::Archive::new(reader);
            let mut seen = Vec::new();
            for e in tar.entries().unwrap() {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut got = Vec::new();
                e.read_to_end(&mut got).unwrap();
                seen.push((name, got));
            }
            assert_eq!(seen[0].0, "base/", "{kind}");
            assert_eq!(
                seen.last().unwrap(),
                &("backup_label".to_string(), b"LABEL\n".to_vec())
            );
            assert_eq!(&seen[1..seen.len() - 1], &files[..], "{kind}");
            let m = crate::backup::manifest::parse(
                &std::fs::read(out.join("backup_manifest")).unwrap(),
            )
            .unwrap();
            for (f, (rel, data)) in m.files.iter().zip(&files) {
                assert_eq!((&f.path, f.size), (rel, data.len() as u64));
                assert_eq!(f.crc32c, Some(crc32c::crc32c(data)), "{kind} {rel}");
            }
            // Several frames: both workers had pieces to compress.
            if kind == "lz4" {
                let bytes = std::fs::read(&archive).unwrap();
                let frames = bytes
                    .windows(4)
                    .filter(|w| *w == b"\x04\x22\x4d\x18")
                    .count();
                assert!(frames >= 3, "{frames} frames");
            }
        }
    }

    /// A file that shrinks after the walk saw it is padded with zeros to
    /// the size in its header, as pg_basebackup does.
    #[test]
    fn a_file_that_shrinks_is_padded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![1u8; 2 << 20]).unwrap();
        let t = task(dir.path(), "big");
        let opened = Arc::new(open_file(t).unwrap().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1000)
            .unwrap();
        let mut w = Worker {
            compressor: Ok(None),
            lz4: false,
            tar: Vec::new(),
        };
        let rules = Rules {
            start_lsn: 0,
            horizon: None,
            link: false,
            previous_crc: HashMap::new(),
        };
        let parts = [Part::Range {
            file: opened,
            offset: 0,
            len: 2 << 20,
        }];
        let f = pack(&mut w, &parts, &rules, &Pool::new(1)).unwrap();
        assert_eq!(f.bytes.len(), 512 + (2 << 20));
        assert!(f.bytes[512..1512].iter().all(|b| *b == 1));
        assert!(f.bytes[1512..].iter().all(|b| *b == 0));
        assert_eq!(f.packed[0].size, 2 << 20);
    }

    #[test]
    fn headers_are_ustar_and_checksummed() {
        let h = header(
            "base/1/1259",
            8192,
            0o600,
            1_700_000_000,
            None,
            tar::EntryType::Regular,
        )
        .unwrap();
        let parsed = tar::Header::from_byte_slice(&h);
        assert_eq!(parsed.path().unwrap().to_str(), Some("base/1/1259"));
        assert_eq!(parsed.size().unwrap(), 8192);
        assert_eq!(parsed.cksum().unwrap(), {
            let mut copy = h;
            copy[148..156].fill(b' ');
            copy.iter().map(|b| *b as u32).sum::<u32>()
        });
        assert!(&h[257..263] == b"ustar\0");
    }
}
