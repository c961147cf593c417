//! One output file: copied whole from the newest backup, or rebuilt block
//! by block from the chain's `INCREMENTAL.` files and the full file below
//! them; every source checked against its manifest, every page (when the
//! cluster has checksums) against its checksum.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::walk::{incremental_key, Task};
use super::{io_err, CombineError, Ctx, Done, CHUNK};
use crate::backup::page::{self, BLCKSZ, RELSEG_SIZE};
use crate::fileio::fill;
use crate::restore::incremental_file::{self as incr, Header};

/// No backup supplies this block (yet).
const NONE: u16 = u16::MAX;

pub(super) fn create(path: &Path, mode: u32) -> Result<File, CombineError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io_err("create", path))
}

/// Sets the mode (whatever the umask), fsyncs; returns the mtime.
pub(super) fn finish(f: &File, path: &Path, mode: u32) -> Result<i64, CombineError> {
    f.set_permissions(Permissions::from_mode(mode))
        .map_err(io_err("set the mode of", path))?;
    f.sync_all().map_err(io_err("sync", path))?;
    Ok(f.metadata().map_err(io_err("read", path))?.mtime())
}

/// Checks one page being written when pages are verified.
fn check_page(
    ctx: &Ctx,
    t: &Task,
    data: &[u8],
    block: u64,
    member: usize,
    done: &mut Done,
) -> Result<(), CombineError> {
    if let (true, Some(seg)) = (ctx.opts.verify_pages, t.segment) {
        if !page::acceptable(data, seg * RELSEG_SIZE + block, ctx.start_lsn) {
            return Err(CombineError::Page {
                file: t.key.clone(),
                block,
                backup: ctx.members[member].name.clone(),
            });
        }
        done.pages += 1;
    }
    Ok(())
}

/// A file the newest backup has whole.
pub(super) fn copy_whole(ctx: &Ctx, buf: &mut [u8], t: &Task) -> Result<Done, CombineError> {
    let newest = ctx.members.len() - 1;
    let mut src = File::open(&t.src).map_err(io_err("open", &t.src))?;
    let mut out = create(&t.dest, ctx.file_mode)?;
    let mut done = Done::default();
    let mut bad_page = None;
    loop {
        let n = fill(&mut src, buf).map_err(io_err("read", &t.src))?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        for (i, pg) in data.chunks_exact(BLCKSZ).enumerate() {
            let block = done.size / BLCKSZ as u64 + i as u64;
            if let Err(e) = check_page(ctx, t, pg, block, newest, &mut done) {
                bad_page.get_or_insert(e);
            }
        }
        done.crc = crc32c::crc32c_append(done.crc, data);
        done.size += n as u64;
        out.write_all(data).map_err(io_err("write", &t.dest))?;
    }
    // A damaged backup file says more than the bad page it holds.
    done.verified = ctx.newest().verify(&t.key, done.size, done.crc)? as u64;
    if let Some(e) = bad_page {
        return Err(e);
    }
    done.mtime = finish(&out, &t.dest, ctx.file_mode)?;
    Ok(done)
}

/// A file of one backup that supplies blocks.
struct Source {
    member: usize,
    path: PathBuf,
    /// Its path in its backup's manifest.
    key: String,
    file: File,
    /// None for a whole file.
    header: Option<Header>,
}

/// Reads as much as fits in `buf` from `offset` (short only at the end).
fn fill_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the header of an `INCREMENTAL.` file; the source returned gets
/// it once the caller has used it.
fn open_incremental(
    ctx: &Ctx,
    member: usize,
    path: PathBuf,
    key: String,
    file: File,
    buf: &mut [u8],
) -> Result<(Header, Source), CombineError> {
    let name = &ctx.members[member].name;
    let len = file.metadata().map_err(io_err("read", &path))?.len();
    let n = fill_at(&file, &mut buf[..(len.min(CHUNK as u64) as usize)], 0)
        .map_err(io_err("read", &path))?;
    let header = incr::parse_header(&buf[..n]).map_err(|source| CombineError::Header {
        backup: name.clone(),
        file: key.clone(),
        source,
    })?;
    if header.file_len() != len {
        return Err(CombineError::IncrementalSize {
            backup: name.clone(),
            file: key,
            have: len,
            want: header.file_len(),
        });
    }
    let source = Source {
        member,
        path,
        key,
        file,
        header: None,
    };
    Ok((header, source))
}

/// The output block each block of `s` is (None past its blocks).
fn output_block(s: &Source, offset: u64) -> Option<u64> {
    match &s.header {
        None => Some(offset / BLCKSZ as u64),
        Some(h) => {
            let i = offset.checked_sub(h.header_len())? / BLCKSZ as u64;
            h.blocks.get(i as usize).map(|b| u64::from(*b))
        }
    }
}

/// Writes `pages` pages of `buf` from `at` as output blocks `first..`.
fn write_run(
    out: &File,
    buf: &[u8],
    (at, first, pages): (usize, u64, usize),
    dest: &Path,
) -> Result<(), CombineError> {
    out.write_all_at(&buf[at..at + pages * BLCKSZ], first * BLCKSZ as u64)
        .map_err(io_err("write", dest))
}

/// `crc32c_combine(acc, crc, BLCKSZ)` at the cost of four table lookups.
///
/// Why: the rebuilt file's CRC is known only block by block (blocks arrive
/// from several sources, out of order), and the crate's combine rebuilds
/// its GF(2) operator on every call, which cost a third of a combine's CPU.
/// Appending BLCKSZ bytes shifts the first CRC by a fixed linear operator
/// (`combine(a, c, len) = M_len·a ^ c`), so M is taken once from the crate
/// itself, column by column, and tabulated a byte at a time.
struct BlockShift([[u32; 256]; 4]);

impl BlockShift {
    fn new() -> BlockShift {
        let col: Vec<u32> = (0..32)
            .map(|i| crc32c::crc32c_combine(1 << i, 0, BLCKSZ))
            .collect();
        let mut t = [[0u32; 256]; 4];
        for (k, table) in t.iter_mut().enumerate() {
            for (v, e) in table.iter_mut().enumerate() {
                *e = (0..8)
                    .filter(|bit| v >> bit & 1 == 1)
                    .fold(0, |acc, bit| acc ^ col[8 * k + bit]);
            }
        }
        BlockShift(t)
    }

    fn append(&self, acc: u32, crc: u32) -> u32 {
        let t = &self.0;
        t[0][(acc & 0xff) as usize]
            ^ t[1][(acc >> 8 & 0xff) as usize]
            ^ t[2][(acc >> 16 & 0xff) as usize]
            ^ t[3][(acc >> 24) as usize]
            ^ crc
    }
}

fn block_shift() -> &'static BlockShift {
    static SHIFT: std::sync::OnceLock<BlockShift> = std::sync::OnceLock::new();
    SHIFT.get_or_init(BlockShift::new)
}

/// Rebuilds a file the newest backup has as `INCREMENTAL.`.
pub(super) fn reconstruct(ctx: &Ctx, buf: &mut [u8], t: &Task) -> Result<Done, CombineError> {
    let newest = ctx.members.len() - 1;
    if newest >= NONE as usize {
        return Err(CombineError::Chain {
            backup: ctx.newest().name.clone(),
            reason: format!("a chain of more than {NONE} backups"),
        });
    }
    let file = File::open(&t.src).map_err(io_err("open", &t.src))?;
    let (h, mut latest) = open_incremental(ctx, newest, t.src.clone(), t.src_key(), file, buf)?;
    let truncation = u64::from(h.truncation_block_length);
    let mut map = vec![NONE; h.reconstructed_blocks() as usize];
    let length = map.len();
    for b in &h.blocks {
        map[*b as usize] = newest as u16;
    }
    latest.header = Some(h);
    let mut sources = vec![latest];
    let mut whole = false;
    for k in (0..newest).rev() {
        let m = &ctx.members[k];
        let path = m.locate(&t.key);
        match File::open(&path) {
            Ok(file) => {
                let len = file.metadata().map_err(io_err("read", &path))?.len();
                for b in 0..(len / BLCKSZ as u64).min(truncation) {
                    if map[b as usize] == NONE {
                        map[b as usize] = k as u16;
                    }
                }
                sources.push(Source {
                    member: k,
                    path,
                    key: t.key.clone(),
                    file,
                    header: None,
                });
                whole = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open", &path)(e)),
        }
        let key = incremental_key(&t.key);
        let path = m.locate(&key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CombineError::NotInChain {
                    file: t.key.clone(),
                    newer: ctx.members[k + 1].name.clone(),
                    backup: m.name.clone(),
                })
            }
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let (h, mut s) = open_incremental(ctx, k, path, key, file, buf)?;
        for b in &h.blocks {
            let b = *b as usize;
            if (b as u64) < truncation && map[b] == NONE {
                map[b] = k as u16;
            }
        }
        s.header = Some(h);
        sources.push(s);
    }
    if !whole {
        let s = &sources[sources.len() - 1];
        return Err(CombineError::IncrementalInFull {
            backup: ctx.members[s.member].name.clone(),
            file: s.key.clone(),
        });
    }

    let out = create(&t.dest, ctx.file_mode)?;
    let mut crcs = if ctx.opts.manifest {
        vec![0u32; length]
    } else {
        Vec::new()
    };
    let mut done = Done {
        reconstructed: true,
        ..Done::default()
    };
    // Oldest first: the full file, usually most of the blocks, is then
    // written front to back.
    for s in sources.iter_mut().rev() {
        let (mut pos, mut crc, mut bad_page) = (0u64, 0u32, None);
        loop {
            let n = fill(&mut s.file, buf).map_err(io_err("read", &s.path))?;
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            // Chunks start on block boundaries: CHUNK and the header length
            // (when there are blocks) are multiples of BLCKSZ. Consecutive
            // pages bound for consecutive output blocks go out in one write.
            let mut run: Option<(usize, u64, usize)> = None; // (at, block, pages)
            let mut at = 0;
            while at + BLCKSZ <= n {
                let offset = pos + at as u64;
                let page = &buf[at..at + BLCKSZ];
                let here = at;
                at += BLCKSZ;
                let Some(b) = output_block(s, offset) else {
                    continue;
                };
                if map.get(b as usize) != Some(&(s.member as u16)) {
                    continue;
                }
                if let Err(e) = check_page(ctx, t, page, b, s.member, &mut done) {
                    bad_page.get_or_insert(e);
                }
                if ctx.opts.manifest {
                    crcs[b as usize] = crc32c::crc32c(page);
                }
                done.older_blocks += (s.member != newest) as u64;
                run = match run {
                    Some((a, first, k)) if a + k * BLCKSZ == here && first + k as u64 == b => {
                        Some((a, first, k + 1))
                    }
                    Some(r) => {
                        write_run(&out, &buf[..n], r, &t.dest)?;
                        Some((here, b, 1))
                    }
                    None => Some((here, b, 1)),
                };
            }
            if let Some(r) = run {
                write_run(&out, &buf[..n], r, &t.dest)?;
            }
            pos += n as u64;
        }
        done.verified += ctx.members[s.member].verify(&s.key, pos, crc)? as u64;
        if let Some(e) = bad_page {
            return Err(e);
        }
    }
    let zeros = vec![0u8; BLCKSZ];
    let zero_crc = crc32c::crc32c(&zeros);
    for (b, _) in map.iter().enumerate().filter(|(_, m)| **m == NONE) {
        out.write_all_at(&zeros, (b * BLCKSZ) as u64)
            .map_err(io_err("write", &t.dest))?;
        if ctx.opts.manifest {
            crcs[b] = zero_crc;
        }
        done.zero_blocks += 1;
    }
    done.size = (length * BLCKSZ) as u64;
    let shift = block_shift();
    done.crc = crcs.iter().fold(0, |acc, c| shift.append(acc, *c));
    done.mtime = finish(&out, &t.dest, ctx.file_mode)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_shift_is_the_crates_combine() {
        let mut x = 0x9e37_79b9u32;
        let shift = block_shift();
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let c = x.rotate_left(7) ^ 0x5bd1_e995;
            assert_eq!(shift.append(x, c), crc32c::crc32c_combine(x, c, BLCKSZ));
        }
        let pages: Vec<u8> = (0..3 * BLCKSZ).map(|i| (i * 31 % 251) as u8).collect();
        let by_block = pages
            .chunks_exact(BLCKSZ)
            .fold(0, |acc, p| shift.append(acc, crc32c::crc32c(p)));
        assert_eq!(by_block, crc32c::crc32c(&pages));
    }
}
