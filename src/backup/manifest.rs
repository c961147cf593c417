//! `backup_manifest` in PostgreSQL's format (version 1, as pg_basebackup 15
//! writes it): one line per file with its size, mtime and CRC32C, the WAL
//! range, and a SHA-256 of everything before `"Manifest-Checksum"`, so
//! `pg_verifybackup` accepts what the native copy writes. The parser checks
//! that checksum and is pure over bytes (fuzzed).

use sha2::{Digest, Sha256};

use crate::wal::name::parse_lsn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// CRC32C as PostgreSQL computes it (`None` when not recorded).
    pub crc32c: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRange {
    pub timeline: u32,
    pub start_lsn: u64,
    pub end_lsn: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
    pub wal_ranges: Vec<WalRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("not a JSON backup manifest: {0}")]
    Json(String),
    #[error("manifest checksum mismatch")]
    Checksum,
    #[error("unsupported manifest: {0}")]
    Unsupported(String),
}

fn lsn(l: u64) -> String {
    format!("{:X}/{:X}", l >> 32, l & 0xFFFF_FFFF)
}

/// PostgreSQL's `escape_json`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn gmt(mtime: i64) -> String {
    jiff::Timestamp::from_second(mtime)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S GMT").to_string())
        .unwrap_or_else(|_| "1970-01-01 00:00:00 GMT".into())
}

/// One file's line (without the separator before it).
fn file_line(f: &FileEntry) -> String {
    let mut s = format!(
        "{{ \"Path\": {}, \"Size\": {}, \"Last-Modified\": \"{}\"",
        json_str(&f.path),
        f.size,
        gmt(f.mtime)
    );
    if let Some(c) = f.crc32c {
        // PostgreSQL hex-encodes the CRC's bytes in memory order.
        s.push_str(&format!(
            ", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\"",
            hex(&c.to_le_bytes())
        ));
    }
    s.push_str(" }");
    s
}

const HEADER: &str = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [";

fn footer(ranges: &[WalRange]) -> String {
    let mut s = String::from("\n],\n\"WAL-Ranges\": [\n");
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            s.push_str(",\n");
        }
        s.push_str(&format!(
            "{{ \"Timeline\": {}, \"Start-LSN\": \"{}\", \"End-LSN\": \"{}\" }}",
            r.timeline,
            lsn(r.start_lsn),
            lsn(r.end_lsn)
        ));
    }
    s.push_str("\n],\n");
    s
}

/// The manifest text, byte for byte as PostgreSQL lays it out.
pub fn render(m: &Manifest) -> String {
    let mut s = String::from(HEADER);
    for (i, f) in m.files.iter().enumerate() {
        s.push_str(if i == 0 { "\n" } else { ",\n" });
        s.push_str(&file_line(f));
    }
    s.push_str(&footer(&m.wal_ranges));
    let sum = Sha256::digest(s.as_bytes());
    s.push_str(&format!("\"Manifest-Checksum\": \"{}\"}}\n", hex(&sum)));
    s
}

/// Writes a manifest file by file as a copy goes, so memory does not grow
/// with the number of files: a staged file in the target directory, hashed
/// as written, fsynced and renamed into place by [`Writer::finish`].
pub struct Writer {
    staged: crate::durable::Staged,
    out: std::io::BufWriter<std::fs::File>,
    sha: Sha256,
    first: bool,
}

impl Writer {
    pub fn create(target: &std::path::Path) -> std::io::Result<Writer> {
        let mut staged = crate::durable::Staged::create(target, "manifest", 0o644)?;
        let file = staged.file().try_clone()?;
        let mut w = Writer {
            staged,
            out: std::io::BufWriter::new(file),
            sha: Sha256::new(),
            first: true,
        };
        w.put(HEADER)?;
        Ok(w)
    }

    fn put(&mut self, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        self.sha.update(text.as_bytes());
        self.out.write_all(text.as_bytes())
    }

    pub fn add(&mut self, f: &FileEntry) -> std::io::Result<()> {
        let sep = if self.first { "\n" } else { ",\n" };
        self.first = false;
        self.put(sep)?;
        self.put(&file_line(f))
    }

    /// Ends the manifest, fsyncs it and renames it into place (never over
    /// an existing file).
    pub fn finish(mut self, ranges: &[WalRange]) -> std::io::Result<()> {
        use std::io::Write;
        self.put(&footer(ranges))?;
        let sum = self.sha.clone().finalize();
        self.out
            .write_all(format!("\"Manifest-Checksum\": \"{}\"}}\n", hex(&sum)).as_bytes())?;
        self.out.flush()?;
        self.staged.file().sync_all()?;
        let target = self.staged.target().to_path_buf();
        self.staged.commit()?;
        crate::durable::sync_dir(crate::durable::parent(&target))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses a manifest, verifying its own checksum.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    const KEY: &[u8] = b"\"Manifest-Checksum\"";
    let at = bytes
        .windows(KEY.len())
        .rposition(|w| w == KEY)
        .ok_or_else(|| ManifestError::Json("no Manifest-Checksum".into()))?;
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let want = v
        .get("Manifest-Checksum")
        .and_then(|c| c.as_str())
        .and_then(unhex)
        .ok_or_else(|| ManifestError::Json("bad Manifest-Checksum".into()))?;
    if Sha256::digest(&bytes[..at]).as_slice() != want.as_slice() {
        return Err(ManifestError::Checksum);
    }
    match v
        .get("PostgreSQL-Backup-Manifest-Version")
        .and_then(|n| n.as_u64())
    {
        Some(1 | 2) => {}
        other => return Err(ManifestError::Unsupported(format!("version {other:?}"))),
    }
    let mut files = Vec::new();
    for f in v
        .get("Files")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let path = match (f.get("Path"), f.get("Encoded-Path")) {
            (Some(p), _) => p.as_str().map(str::to_string),
            (None, Some(e)) => e
                .as_str()
                .and_then(unhex)
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        }
        .ok_or_else(|| ManifestError::Json("file without a path".into()))?;
        let size = f
            .get("Size")
            .and_then(|s| s.as_u64())
            .ok_or_else(|| ManifestError::Json(format!("{path}: no size")))?;
        let mtime = f
            .get("Last-Modified")
            .and_then(|t| t.as_str())
            .and_then(|t| t.strip_suffix(" GMT"))
            .and_then(|t| jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", t).ok())
            .and_then(|c| c.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map_or(0, |z| z.timestamp().as_second());
        let crc32c = match f.get("Checksum-Algorithm").and_then(|a| a.as_str()) {
            Some("CRC32C") => f
                .get("Checksum")
                .and_then(|c| c.as_str())
                .and_then(unhex)
                .filter(|b| b.len() == 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => None,
        };
        files.push(FileEntry {
            path,
            size,
            mtime,
            crc32c,
        });
    }
    let mut wal_ranges = Vec::new();
    for r in v
        .get("WAL-Ranges")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let get = |k: &str| r.get(k).and_then(|x| x.as_str()).and_then(parse_lsn);
        if let (Some(tli), Some(start_lsn), Some(end_lsn)) = (
            r.get("Timeline").and_then(|t| t.as_u64()),
            get("Start-LSN"),
            get("End-LSN"),
        ) {
            wal_ranges.push(WalRange {
                timeline: tli as u32,
                start_lsn,
                end_lsn,
            });
        }
    }
    Ok(Manifest { files, wal_ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_postgresql_layout_and_parses_back() {
        let m = Manifest {
            files: vec![
                FileEntry {
                    path: "backup_label".into(),
                    size: 3,
                    mtime: 1_795_558_077,
                    crc32c: Some(crc32c::crc32c(b"abc")),
                },
                FileEntry {
                    path: "base/1/\"odd\"".into(),
                    size: 0,
                    mtime: 0,
                    crc32c: None,
                },
            ],
            wal_ranges: vec![WalRange {
                timeline: 1,
                start_lsn: 0x3000028,
                end_lsn: 0x3000100,
            }],
        };
        let text = render(&m);
        assert!(text.starts_with(
            "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{ \"Path\": \"backup_label\", \"Size\": 3, \"Last-Modified\": \"2026-11-24 22:07:57 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"b73f4b36\" },\n"
        ), "{text}");
        assert!(text.contains("{ \"Timeline\": 1, \"Start-LSN\": \"0/3000028\", \"End-LSN\": \"0/3000100\" }\n],\n\"Manifest-Checksum\": \""));
        assert_eq!(parse(text.as_bytes()).unwrap(), m);
        let tampered = text.replacen("\"Size\": 3", "\"Size\": 4", 1);
        assert_eq!(parse(tampered.as_bytes()), Err(ManifestError::Checksum));
    }
}
