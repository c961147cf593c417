//! Reading back the native copy's compressed tar archives on every core.
//!
//! barman-rs writes a compressed backup as many independent frames of a
//! few MiB ([`crate::backup::tarball`]). A zstd frame's size is found from
//! its headers alone, so a reader thread cuts the file into frames, the
//! pipeline's workers decompress them in parallel, and the consumer (the
//! tar extraction) reads the results in order. An archive of one huge frame
//! (pg_basebackup's) is refused here; the restore streams those instead.
//! LZ4 is not read this way: it decompresses faster than the frames can be
//! handed around (measured: 714 MiB/s against 889 streamed).

use std::fs::File;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::Path;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::fileio::ChunkReader;
use crate::pipeline::{self, Width};

/// No frame of ours comes near this (a piece is ~4 MiB of tar).
const MAX_FRAME: usize = 64 << 20;

fn bad(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// The size of the zstd frame at the start of `b`, None when incomplete.
fn zstd_frame_size(b: &[u8]) -> Result<Option<usize>, &'static str> {
    if b.len() >= 4 && b[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err("not a zstd frame");
    }
    Ok(zstd::zstd_safe::find_frame_compressed_size(b).ok())
}

/// Cuts `file` into frames, in order, onto the pipeline.
struct Frames {
    file: File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
    eof: bool,
    failed: bool,
}

impl Iterator for Frames {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match zstd_frame_size(&self.buf) {
                Err(e) => {
                    self.failed = true;
                    return Some(Err(bad(&self.path, e)));
                }
                Ok(Some(n)) => {
                    let rest = self.buf.split_off(n);
                    return Some(Ok(std::mem::replace(&mut self.buf, rest)));
                }
                Ok(None) if self.eof => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    self.failed = true;
                    return Some(Err(bad(&self.path, "truncated compressed frame")));
                }
                Ok(None) if self.buf.len() > MAX_FRAME => {
                    self.failed = true;
                    return Some(Err(bad(&self.path, "compressed frame too large")));
                }
                Ok(None) => {
                    let old = self.buf.len();
                    self.buf.resize(old + (1 << 20), 0);
                    match self.file.read(&mut self.buf[old..]) {
                        Ok(n) => {
                            self.buf.truncate(old + n);
                            self.eof = n == 0;
                        }
                        Err(e) => {
                            self.buf.truncate(old);
                            if e.kind() != io::ErrorKind::Interrupted {
                                self.failed = true;
                                return Some(Err(e));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One worker's zstd context, reused frame to frame.
struct Worker {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

fn decompress(w: &mut Worker, frame: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.clear();
    // Ours carry their content size: one call into the buffer.
    if let (Ok(Some(n)), Some(z)) = (
        zstd::zstd_safe::get_frame_content_size(frame),
        w.zstd.as_mut(),
    ) {
        out.reserve(n as usize);
        if z.decompress_to_buffer(frame, &mut out)
            .is_ok_and(|got| got as u64 == n)
        {
            return Ok(out);
        }
        out.clear();
    }
    zstd::stream::read::Decoder::with_buffer(frame)?.read_to_end(&mut out)?;
    Ok(out)
}

/// A reader of the decompressed zstd archive `path`, decompressed by
/// `workers` threads. Errors (a damaged frame) arrive in order, after the
/// data before them.
pub fn reader(path: &Path, workers: usize) -> io::Result<ChunkReader> {
    let frames = Frames {
        file: File::open(path)?,
        path: path.to_path_buf(),
        buf: Vec::new(),
        eof: false,
        failed: false,
    };
    let workers = workers.max(1);
    let (tx, rx) = bounded(workers * 2);
    let (back_tx, back_rx) = bounded(workers * 6);
    std::thread::spawn(move || feed(frames, workers, tx, back_rx));
    Ok(ChunkReader::new(rx, back_tx))
}

fn feed(
    frames: Frames,
    workers: usize,
    tx: Sender<io::Result<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
) {
    let width = Width {
        workers,
        window: workers * 3,
        batch: 1,
        linger: std::time::Duration::ZERO,
    };
    pipeline::run(
        width,
        frames,
        || Worker {
            zstd: zstd::bulk::Decompressor::new().ok(),
        },
        |w, frame: &io::Result<Vec<u8>>| match frame {
            Ok(f) => decompress(w, f, recycled.try_recv().unwrap_or_default()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        },
        |batch| {
            for (_, out) in batch {
                let stop = out.is_err();
                if tx.send(out).is_err() || stop {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(parts: &[Vec<u8>]) -> Vec<u8> {
        parts
            .iter()
            .flat_map(|p| zstd::bulk::compress(p, 3).unwrap())
            .collect()
    }

    #[test]
    fn frames_come_back_in_order_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let parts: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                (0..(i * 9973 % 300_000))
                    .map(|b| (b % 251) as u8 ^ i as u8)
                    .collect()
            })
            .collect();
        let want: Vec<u8> = parts.concat();
        {
            let bytes = frames_of(&parts);
            let path = dir.path().join("a");
            std::fs::write(&path, &bytes).unwrap();
            let mut got = Vec::new();
            reader(&path, 3).unwrap().read_to_end(&mut got).unwrap();
            assert_eq!(got, want);

            // Cut short: everything before the last frame, then an error.
            std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
            let mut got = Vec::new();
            let e = reader(&path, 2).unwrap().read_to_end(&mut got).unwrap_err();
            assert!(e.to_string().contains("truncated"), "{e}");
            // A flipped byte inside a frame's data.
            let mut bad_bytes = bytes.clone();
            let at = bad_bytes.len() / 2;
            bad_bytes[at] ^= 0x55;
            std::fs::write(&path, &bad_bytes).unwrap();
            let mut got = Vec::new();
            let r = reader(&path, 2).unwrap().read_to_end(&mut got);
            assert!(r.is_err() || got != want, "damage went unseen");
        }
    }
}
