//! Small file-reading helpers shared by the backup copy and the restore:
//! full-buffer reads, CRC32C of a file, byte comparison of two files.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Reads as much as fits in `buf` (short only at end of file).
pub fn fill(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn crc_of(path: &Path, buf: &mut [u8]) -> io::Result<u32> {
    let mut f = File::open(path)?;
    let mut crc = 0u32;
    loop {
        let n = fill(&mut f, buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Whether two files hold the same bytes (read side by side).
pub fn same_content(a: &Path, b: &Path, buf: &mut [u8]) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let half = buf.len() / 2;
    let (ba, bb) = buf.split_at_mut(half);
    loop {
        let n = fill(&mut fa, ba)?;
        let m = fill(&mut fb, bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}
