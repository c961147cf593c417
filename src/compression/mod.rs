//! WAL compression in the formats Barman 3.19 writes and reads: one gzip
//! member (FNAME `<wal>.compressed`, OS 255), a bzip2 stream, an LZ4 frame,
//! a zstd frame, or the user's `custom` filter commands. Reading detects the
//! codec by magic bytes in Barman's order, so files written by either tool
//! (or pre-compressed by an `archive_command`) read back the same.
//!
//! Every codec we write carries its own integrity check (gzip CRC32, bzip2
//! block CRCs, LZ4 and zstd content checksums), so a damaged archive is
//! detected when it is read back, not replayed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::config::types::Value;

/// An on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Gzip,
    Bzip2,
    Lz4,
    Zstd,
    Xz,
    Snappy,
    Custom,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{codec} data is corrupt: {detail}")]
    Corrupt { codec: &'static str, detail: String },
    #[error("custom compression needs custom_compression_filter and custom_decompression_filter")]
    CustomMissing,
    #[error("custom {what} filter '{filter}' failed: {detail}")]
    Filter {
        what: &'static str,
        filter: String,
        detail: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Codec {
    /// The configuration name Barman would record for files it detects.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::Xz => "xz",
            Codec::Snappy => "snappy",
            Codec::Custom => "custom",
        }
    }

    /// Maps a `compression` option value (Barman's registry names).
    pub fn from_config(name: &str) -> Option<Codec> {
        Some(match name {
            "gzip" | "pygzip" | "pigz" => Codec::Gzip,
            "bzip2" | "pybzip2" => Codec::Bzip2,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            "xz" => Codec::Xz,
            "snappy" => Codec::Snappy,
            "custom" => Codec::Custom,
            _ => return None,
        })
    }

    /// Barman's `identify_compression`: magics tried in registry name order
    /// (bzip2, custom, gzip, lz4, snappy, xz, zstd).
    pub fn detect(head: &[u8], custom_magic: Option<&[u8]>) -> Option<Codec> {
        const TABLE: &[(&[u8], Codec)] = &[
            (b"\x42\x5a\x68", Codec::Bzip2),
            (b"", Codec::Custom),
            (b"\x1f\x8b\x08", Codec::Gzip),
            (b"\x04\x22\x4d\x18", Codec::Lz4),
            (b"\xff\x06\x00\x00sNaPpY", Codec::Snappy),
            (b"\xfd7zXZ\x00", Codec::Xz),
            (b"\x28\xb5\x2f\xfd", Codec::Zstd),
        ];
        TABLE.iter().find_map(|&(magic, codec)| {
            let magic = if codec == Codec::Custom {
                custom_magic.filter(|m| !m.is_empty())?
            } else {
                magic
            };
            head.starts_with(magic).then_some(codec)
        })
    }

    /// `(min, max, low, medium, high)` as Barman's compressor classes.
    fn levels(self) -> Option<(i32, i32, i32, i32, i32)> {
        match self {
            Codec::Gzip => Some((1, 9, 1, 6, 9)),
            Codec::Bzip2 => Some((1, 9, 1, 5, 9)),
            Codec::Xz => Some((1, 9, 1, 3, 5)),
            Codec::Zstd => Some((-22, 22, 1, 4, 9)),
            Codec::Lz4 => Some((0, 16, 0, 6, 10)),
            Codec::Snappy | Codec::Custom => None,
        }
    }

    /// The level `compression_level` maps to: integers clamped to the
    /// codec's range, `low`/`medium`/`high` (default medium) looked up.
    pub fn level(self, setting: &Value) -> i32 {
        let Some((min, max, low, medium, high)) = self.levels() else {
            return 0;
        };
        match setting {
            Value::Int(n) => (*n).clamp(i64::from(min), i64::from(max)) as i32,
            Value::Str(s) if s == "low" => low,
            Value::Str(s) if s == "high" => high,
            _ => medium,
        }
    }
}

/// The user's `custom` filters: shell commands reading stdin, writing stdout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomFilters {
    pub compress: Option<String>,
    pub decompress: Option<String>,
    pub magic: Option<Vec<u8>>,
}

/// How a server compresses: the codec, the name recorded in xlog.db (the
/// configured spelling, e.g. `pygzip`), the level, and custom filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub codec: Codec,
    pub name: String,
    pub level: i32,
    pub custom: CustomFilters,
}

/// One worker's reusable compression state: contexts are allocated once per
/// worker, not per file.
pub struct Compressor {
    settings: Settings,
    deflate: Option<libdeflater::Compressor>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    pub fn new(settings: &Settings) -> Result<Compressor, CodecError> {
        let mut c = Compressor {
            settings: settings.clone(),
            deflate: None,
            zstd: None,
        };
        match settings.codec {
            Codec::Gzip => {
                let lvl = libdeflater::CompressionLvl::new(settings.level).unwrap_or_default();
                c.deflate = Some(libdeflater::Compressor::new(lvl));
            }
            Codec::Zstd => {
                let mut z = zstd::bulk::Compressor::new(settings.level)?;
                z.include_checksum(true)?;
                c.zstd = Some(z);
            }
            Codec::Custom if settings.custom.compress.is_none() => {
                return Err(CodecError::CustomMissing)
            }
            _ => {}
        }
        Ok(c)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Compresses `data` (the file `name`) into `out`, replacing its content.
    pub fn compress(
        &mut self,
        data: &[u8],
        name: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.clear();
        match self.settings.codec {
            Codec::Gzip => {
                let deflate = self.deflate.as_mut().expect("built in new()");
                gzip_member(deflate, data, name, self.settings.level, out);
            }
            Codec::Bzip2 => {
                let level = bzip2::Compression::new(self.settings.level as u32);
                let mut enc = bzip2::write::BzEncoder::new(std::mem::take(out), level);
                enc.write_all(data)?;
                *out = enc.finish()?;
            }
            Codec::Lz4 => {
                // lz4_flex has only LZ4's fast mode: levels (Barman's HC
                // "medium" = 6 included) all compress as level 0 does.
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .content_checksum(true);
                let mut enc =
                    lz4_flex::frame::FrameEncoder::with_frame_info(info, std::mem::take(out));
                enc.write_all(data)?;
                *out = enc.finish().map_err(|e| corrupt("lz4", e))?;
            }
            Codec::Zstd => {
                let z = self.zstd.as_mut().expect("built in new()");
                out.reserve(zstd::zstd_safe::compress_bound(data.len()));
                z.compress_to_buffer(data, out)?;
            }
            Codec::Custom => {
                let filter = self.settings.custom.compress.as_deref().unwrap_or_default();
                *out = run_filter("compression", filter, data)?;
            }
            Codec::Xz => {
                // Python's lzma.open: an .xz stream, CRC64 check, preset.
                let level = self.settings.level as u32;
                let mut enc = liblzma::write::XzEncoder::new(std::mem::take(out), level);
                enc.write_all(data)?;
                *out = enc.finish()?;
            }
            Codec::Snappy => {
                // python-snappy's stream_compress: the snappy framing format.
                let mut enc = snap::write::FrameEncoder::new(std::mem::take(out));
                enc.write_all(data)?;
                *out = enc
                    .into_inner()
                    .map_err(|e| CodecError::Io(e.into_error()))?;
            }
        }
        Ok(())
    }
}

fn corrupt(codec: &'static str, e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt {
        codec,
        detail: e.to_string(),
    }
}

/// One gzip member as Python's `GzipFile(name, "wb")` writes it: FNAME set to
/// the temporary file name Barman compresses to, OS 255, mtime now.
fn gzip_member(
    deflate: &mut libdeflater::Compressor,
    data: &[u8],
    name: &str,
    level: i32,
    out: &mut Vec<u8>,
) {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    out.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x08]);
    out.extend_from_slice(&mtime.to_le_bytes());
    out.extend_from_slice(&[xfl, 0xff]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b".compressed\0");
    let start = out.len();
    let bound = deflate.deflate_compress_bound(data.len());
    out.resize(start + bound, 0);
    let n = deflate
        .deflate_compress(data, &mut out[start..])
        .expect("the buffer is sized by deflate_compress_bound");
    out.truncate(start + n);
    out.extend_from_slice(&libdeflater::crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
}

/// Decompresses a whole file of format `codec` into `out` (cleared first).
pub fn decompress(
    codec: Codec,
    data: &[u8],
    custom: &CustomFilters,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    // One allocation of the right size instead of doubling up to 16 MiB.
    out.reserve(expected_size(codec, data).min(1 << 30));
    match codec {
        Codec::Gzip => {
            // One member (Barman's, ours): libdeflate in one call into a
            // buffer of the trailer's size, CRC32 and ISIZE checked: several
            // times zlib's speed, which restore_command waits for.
            let size = expected_size(codec, data);
            out.resize(size, 0);
            let one = libdeflater::Decompressor::new().gzip_decompress(data, out);
            if one.is_ok_and(|n| n == size) {
                return Ok(());
            }
            // Several members (pigz, concatenated), or an ISIZE that is the
            // size modulo 4 GiB: streamed, CRC-checked, by flate2.
            out.clear();
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(out)
                .map_err(|e| corrupt("gzip", e))?;
        }
        Codec::Bzip2 => {
            bzip2::read::MultiBzDecoder::new(data)
                .read_to_end(out)
                .map_err(|e| corrupt("bzip2", e))?;
        }
        Codec::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(data)
                .read_to_end(out)
                .map_err(|e| corrupt("lz4", e))?;
        }
        Codec::Zstd => {
            // One call into the buffer: ours carry their size; Barman's
            // (streamed, no size) fit the guess unless unusually
            // compressible. The decoder's window copies are avoided.
            let size = zstd::zstd_safe::get_frame_content_size(data);
            let bulk = zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(data, out))
                .ok();
            match (size, bulk) {
                (Ok(Some(n)), Some(got)) if got as u64 == n => return Ok(()),
                (Ok(None), Some(_)) => return Ok(()),
                _ => out.clear(),
            }
            let mut dec =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt("zstd", e))?;
            dec.read_to_end(out).map_err(|e| corrupt("zstd", e))?;
        }
        Codec::Custom => {
            let filter = custom
                .decompress
                .as_deref()
                .ok_or(CodecError::CustomMissing)?;
            *out = run_filter("decompression", filter, data)?;
        }
        Codec::Xz => {
            liblzma::read::XzDecoder::new_multi_decoder(data)
                .read_to_end(out)
                .map_err(|e| corrupt("xz", e))?;
        }
        Codec::Snappy => {
            snap::read::FrameDecoder::new(data)
                .read_to_end(out)
                .map_err(|e| corrupt("snappy", e))?;
        }
    }
    Ok(())
}

/// The decompressed size when the format says it (gzip ISIZE, zstd frame
/// content size), else a guess from typical WAL ratios.
fn expected_size(codec: Codec, data: &[u8]) -> usize {
    match codec {
        Codec::Gzip if data.len() >= 18 => {
            let tail: [u8; 4] = data[data.len() - 4..].try_into().expect("4 bytes");
            u32::from_le_bytes(tail) as usize
        }
        Codec::Zstd => match zstd::zstd_safe::get_frame_content_size(data) {
            Ok(Some(n)) => n as usize,
            // A default-size segment at least.
            _ => (data.len() * 4).max(16 << 20),
        },
        _ => data.len() * 4,
    }
}

/// Runs a custom filter as Barman does (`bash`, stdin → stdout), feeding
/// `input` from a thread so a filter that streams cannot deadlock us.
fn run_filter(what: &'static str, filter: &str, input: &[u8]) -> Result<Vec<u8>, CodecError> {
    let fail = |detail: String| CodecError::Filter {
        what,
        filter: filter.to_string(),
        detail,
    };
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let result = std::thread::scope(|s| {
        s.spawn(move || {
            // A filter that exits early closes the pipe: its status says why.
            let _ = stdin.write_all(input);
        });
        child.wait_with_output()
    });
    let output = result.map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(fail(
            format!("{} {}", output.status, err).trim().to_string(),
        ));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(name: &str, level: Value) -> Settings {
        let codec = Codec::from_config(name).unwrap();
        Settings {
            codec,
            name: name.into(),
            level: codec.level(&level),
            custom: CustomFilters {
                compress: Some("gzip -c".into()),
                decompress: Some("gzip -c -d".into()),
                magic: None,
            },
        }
    }

    #[test]
    fn every_codec_round_trips_and_is_detected() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i / 1000) as u8).collect();
        for name in [
            "gzip", "pygzip", "pigz", "bzip2", "pybzip2", "lz4", "zstd", "xz", "snappy", "custom",
        ] {
            let s = settings(name, Value::None);
            let mut c = Compressor::new(&s).unwrap();
            let mut out = Vec::new();
            c.compress(&data, "000000010000000000000001", &mut out)
                .unwrap();
            assert!(out.len() < data.len() / 4, "{name}");
            let detected = Codec::detect(&out, None).unwrap();
            // custom = gzip here; detection sees gzip, as Barman's would.
            let expect = if s.codec == Codec::Custom {
                Codec::Gzip
            } else {
                s.codec
            };
            assert_eq!(detected, expect, "{name}");
            let mut back = Vec::new();
            decompress(detected, &out, &s.custom, &mut back).unwrap();
            assert_eq!(back, data, "{name}");
        }
    }

    #[test]
    fn gzip_header_is_barmans() {
        let mut c = Compressor::new(&settings("gzip", Value::None)).unwrap();
        let mut out = Vec::new();
        c.compress(b"abc", "000000010000000000000006", &mut out)
            .unwrap();
        assert_eq!(&out[..4], &[0x1f, 0x8b, 0x08, 0x08]);
        assert_eq!(&out[8..10], &[0x00, 0xff]);
        assert_eq!(&out[10..46], b"000000010000000000000006.compressed\0");
    }

    #[test]
    fn levels_follow_barman() {
        assert_eq!(Codec::Gzip.level(&Value::None), 6);
        assert_eq!(Codec::Zstd.level(&Value::Str("high".into())), 9);
        assert_eq!(Codec::Zstd.level(&Value::Int(-100)), -22);
        assert_eq!(Codec::Bzip2.level(&Value::Int(42)), 9);
        assert_eq!(Codec::Lz4.level(&Value::Str("low".into())), 0);
    }

    #[test]
    fn damage_is_detected() {
        let data = vec![7u8; 100_000];
        for name in ["gzip", "bzip2", "lz4", "zstd", "xz", "snappy"] {
            let s = settings(name, Value::None);
            let mut out = Vec::new();
            Compressor::new(&s)
                .unwrap()
                .compress(&data, "x", &mut out)
                .unwrap();
            let mut back = Vec::new();
            let cut = &out[..out.len() - 3];
            assert!(
                decompress(s.codec, cut, &s.custom, &mut back).is_err(),
                "{name} truncated"
            );
        }
    }

    #[test]
    fn detection_order_and_custom_magic() {
        assert_eq!(Codec::detect(b"BZh9", None), Some(Codec::Bzip2));
        assert_eq!(Codec::detect(b"\xfd7zXZ\x00..", None), Some(Codec::Xz));
        assert_eq!(Codec::detect(b"\x00\x01", None), None);
        assert_eq!(Codec::detect(b"MYMAGIC", Some(b"MYM")), Some(Codec::Custom));
        // bzip2 comes before custom in Barman's order.
        assert_eq!(Codec::detect(b"BZh9", Some(b"BZ")), Some(Codec::Bzip2));
    }
}
