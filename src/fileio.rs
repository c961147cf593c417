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

/// Chunks from another thread read as one stream: the data in order, then
/// an error (if one came) in its place, then the end.
/// Read chunks go back to the producer through `recycle`, so it reuses
/// their memory instead of faulting in fresh pages for every chunk.
pub struct ChunkReader {
    rx: crossbeam_channel::Receiver<io::Result<Vec<u8>>>,
    recycle: crossbeam_channel::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    pub fn new(
        rx: crossbeam_channel::Receiver<io::Result<Vec<u8>>>,
        recycle: crossbeam_channel::Sender<Vec<u8>>,
    ) -> ChunkReader {
        ChunkReader {
            rx,
            recycle,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

/// Runs a reader (a decompressor) on its own thread, `depth` chunks of
/// `chunk` bytes ahead of the consumer, so decompressing and writing what
/// was decompressed use two cores. Dropping the reader stops the thread at
/// its next chunk.
pub fn read_ahead(mut inner: Box<dyn Read + Send>, chunk: usize, depth: usize) -> ChunkReader {
    let (tx, rx) = crossbeam_channel::bounded(depth.max(1));
    let (back_tx, back_rx) = crossbeam_channel::bounded::<Vec<u8>>(depth.max(1) + 2);
    std::thread::spawn(move || loop {
        let mut buf = back_rx.try_recv().unwrap_or_default();
        buf.resize(chunk, 0);
        let mut n = 0;
        let r = loop {
            match inner.read(&mut buf[n..]) {
                Ok(0) => break Ok(()),
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(n);
        let last = n == 0 || r.is_err();
        if n > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        if let Err(e) = r {
            let _ = tx.send(Err(e));
        }
        if last {
            return;
        }
    });
    ChunkReader::new(rx, back_tx)
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let mut used = std::mem::replace(&mut self.current, chunk);
                    used.clear();
                    let _ = self.recycle.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(Vec<u8>, usize);
    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Err(io::Error::other("corrupt input"));
            }
            let n = out.len().min(7).min(self.0.len() - self.1);
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_passes_data_then_the_error() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut r = read_ahead(Box::new(io::Cursor::new(data.clone())), 4096, 2);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);

        let mut r = read_ahead(Box::new(Failing(data.clone(), 0)), 1000, 2);
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.to_string(), "corrupt input");
        assert_eq!(got, data);
    }
}
