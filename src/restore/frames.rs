//! Reading back the native copy's compressed tar archives on every core.
//!
//! barman-rs writes a compressed backup as many independent frames of a
//! few MiB ([`crate::backup::tarball`]). Their boundaries are found from the
//! frame headers alone (zstd's own frame-size walk, LZ4's block sizes), so
//! a reader thread cuts the file into frames, the pipeline's workers
//! decompress them in parallel, and the consumer (the tar extraction) reads
//! the results in order. An archive of one huge frame (pg_basebackup's)
//! is refused here; the restore streams those instead.

use std::fs::File;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::Path;

use crossbeam_channel::{bounded, Sender};

use crate::compression::Codec;
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

/// The size of the LZ4 frame at the start of `b`, None when `b` does not
/// hold all of it yet.
fn lz4_frame_size(b: &[u8]) -> Result<Option<usize>, &'static str> {
    if b.len() < 7 {
        return Ok(None);
    }
    if b[..4] != [0x04, 0x22, 0x4d, 0x18] {
        return Err("not an LZ4 frame");
    }
    let flg = b[4];
    let block_checksum = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let dict_id = flg & 0x01 != 0;
    let mut pos = 7 + if content_size { 8 } else { 0 } + if dict_id { 4 } else { 0 };
    loop {
        let Some(head) = b.get(pos..pos + 4) else {
            return Ok(None);
        };
        let word = u32::from_le_bytes(head.try_into().expect("4 bytes"));
        pos += 4;
        if word == 0 {
            break;
        }
        pos += (word & 0x7fff_ffff) as usize + if block_checksum { 4 } else { 0 };
    }
    pos += if content_checksum { 4 } else { 0 };
    Ok((pos <= b.len()).then_some(pos))
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
    size: fn(&[u8]) -> Result<Option<usize>, &'static str>,
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
            match (self.size)(&self.buf) {
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

fn decompress(codec: Codec, frame: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match codec {
        Codec::Zstd => {
            zstd::stream::read::Decoder::with_buffer(frame)?.read_to_end(&mut out)?;
        }
        _ => {
            lz4_flex::frame::FrameDecoder::new(frame).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// A reader of the decompressed archive `path` (zstd or LZ4 frames),
/// decompressed by `workers` threads. Errors (a damaged frame) arrive in
/// order, after the data before them.
pub fn reader(path: &Path, codec: Codec, workers: usize) -> io::Result<ChunkReader> {
    if !matches!(codec, Codec::Zstd | Codec::Lz4) {
        return Err(bad(path, "frames are read from zstd and LZ4 archives only"));
    }
    let frames = Frames {
        file: File::open(path)?,
        path: path.to_path_buf(),
        size: if codec == Codec::Zstd {
            zstd_frame_size
        } else {
            lz4_frame_size
        },
        buf: Vec::new(),
        eof: false,
        failed: false,
    };
    let workers = workers.max(1);
    let (tx, rx) = bounded(workers * 2);
    std::thread::spawn(move || feed(frames, codec, workers, tx));
    Ok(ChunkReader::new(rx))
}

fn feed(frames: Frames, codec: Codec, workers: usize, tx: Sender<io::Result<Vec<u8>>>) {
    let width = Width {
        workers,
        window: workers * 3,
        batch: 1,
        linger: std::time::Duration::ZERO,
    };
    pipeline::run(
        width,
        frames,
        || (),
        |_, frame: &io::Result<Vec<u8>>| match frame {
            Ok(f) => decompress(codec, f),
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
    use std::io::Write;

    fn frames_of(codec: Codec, parts: &[Vec<u8>]) -> Vec<u8> {
        let mut all = Vec::new();
        for p in parts {
            match codec {
                Codec::Zstd => all.extend(zstd::bulk::compress(p, 3).unwrap()),
                _ => {
                    let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                    e.write_all(p).unwrap();
                    all.extend(e.finish().unwrap());
                }
            }
        }
        all
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
        for codec in [Codec::Zstd, Codec::Lz4] {
            let bytes = frames_of(codec, &parts);
            let path = dir.path().join("a");
            std::fs::write(&path, &bytes).unwrap();
            let mut got = Vec::new();
            reader(&path, codec, 3)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, want, "{codec:?}");

            // Cut short: everything before the last frame, then an error.
            std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
            let mut got = Vec::new();
            let e = reader(&path, codec, 2)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap_err();
            assert!(e.to_string().contains("truncated"), "{e}");
            // A flipped byte inside a frame's data.
            let mut bad_bytes = bytes.clone();
            let at = bad_bytes.len() / 2;
            bad_bytes[at] ^= 0x55;
            std::fs::write(&path, &bad_bytes).unwrap();
            let mut got = Vec::new();
            let r = reader(&path, codec, 2).unwrap().read_to_end(&mut got);
            assert!(r.is_err() || got != want, "{codec:?}: damage went unseen");
        }
    }
}
