//! The `backup_manifest` Barman itself writes (`barman generate-manifest`,
//! Barman's `backup_manifest.BackupManifest`): every file under the
//! backup's `data/` directory in `os.walk` order, each with its SHA256, its
//! size and its mtime, in Barman's own JSON layout (keys sorted, no
//! `WAL-Ranges`) and closed by the SHA256 of everything before
//! `"Manifest-Checksum"`. Byte for byte what Barman 3.19.1 writes for the
//! same tree, so the two generate the same file; `pg_verifybackup -n`
//! accepts it (PostgreSQL's own layout, [`super::manifest::render`], is
//! what pg_basebackup and the native copy write instead).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One file as Barman's `FileIdentity.get_value` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the data directory, as raw bytes.
    pub path: Vec<u8>,
    pub size: u64,
    /// `%Y-%m-%d %H:%M:%S` in UTC, as Python's `datetime.fromtimestamp`
    /// gives it for the float `st_mtime`.
    pub last_modified: String,
    /// Lowercase hex SHA256 of the content.
    pub sha256: String,
}

/// Why the manifest could not be made; the text is what Python's exception
/// says (Barman prints it as `EXCEPTION: <text>`).
#[derive(Debug)]
pub struct GenerateError(pub String);

/// `FileManager.get_file_list`: Python's `os.walk(top)` (top-down, the
/// directory's own order, symlinks to directories listed but not entered,
/// unreadable directories skipped), collecting every non-directory.
pub fn walk(top: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    if !top.is_dir() {
        // NotADirectoryError(path): its str() is the path alone.
        return Err(GenerateError(top.display().to_string()));
    }
    let mut files = Vec::new();
    walk_into(top, &mut files);
    Ok(files)
}

fn walk_into(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else {
        return; // os.walk's onerror=None: silently skipped
    };
    let mut dirs = Vec::new();
    for entry in rd {
        let Ok(entry) = entry else {
            return; // an error while iterating ends this directory's walk
        };
        let path = dir.join(entry.file_name());
        // DirEntry.is_dir() follows symlinks; an error means "not a dir".
        if fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            dirs.push(path);
        } else {
            files.push(path);
        }
    }
    for d in dirs {
        let is_link = fs::symlink_metadata(&d)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            walk_into(&d, files);
        }
    }
}

/// Python's `datetime.fromtimestamp(st_mtime, tz=utc).strftime(...)`:
/// the float timestamp rounded half-even to microseconds (which may carry
/// into the next second), then truncated to seconds.
pub fn python_last_modified(sec: i64, nsec: i64) -> String {
    let f = sec as f64 + nsec as f64 * 1e-9;
    let mut int = f.trunc();
    let mut micro = (f - int) * 1e6;
    micro = micro.round_ties_even();
    if micro >= 1e6 {
        int += 1.0;
    } else if micro < 0.0 {
        int -= 1.0;
    }
    jiff::Timestamp::from_second(int as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `file_path.split(dir_path)[1].strip("/")`, over bytes.
fn relative(file: &Path, top: &Path) -> Result<Vec<u8>, GenerateError> {
    let (f, t) = (file.as_os_str().as_bytes(), top.as_os_str().as_bytes());
    if !f.starts_with(t) || t.is_empty() {
        return Err(GenerateError(format!(
            "Expecting {} to start with {}",
            file.display(),
            top.display()
        )));
    }
    let mut rest = &f[t.len()..];
    if let Some(i) = rest.windows(t.len()).position(|w| w == t) {
        rest = &rest[..i];
    }
    let start = rest.iter().position(|&b| b != b'/').unwrap_or(rest.len());
    let end = rest
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(start, |i| i + 1);
    Ok(rest[start..end.max(start)].to_vec())
}

/// Python's `str(OSError)`: `[Errno N] <strerror>: '<filename>'`.
fn os_error(e: &io::Error, path: &Path) -> GenerateError {
    match e.raw_os_error() {
        Some(n) => GenerateError(format!(
            "[Errno {n}] {}: {}",
            crate::catalog::strerror(e),
            crate::config::types::python_repr_str(&path.to_string_lossy())
        )),
        None => GenerateError(e.to_string()),
    }
}

/// `FileIdentity.get_value` for one file of the walk.
pub fn entry(file: &Path, top: &Path) -> Result<Entry, GenerateError> {
    // LocalFileManager.get_file_stats: os.path.isfile, following symlinks.
    let meta = match fs::metadata(file) {
        Ok(m) if m.is_file() => m,
        _ => {
            return Err(GenerateError(format!("Missing file {}", file.display())));
        }
    };
    use std::os::unix::fs::MetadataExt;
    let path = relative(file, top)?;
    let mut f = File::open(file).map_err(|e| os_error(&e, file))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(os_error(&e, file)),
        };
        sha.update(&buf[..n]);
    }
    Ok(Entry {
        path,
        size: meta.size(),
        last_modified: python_last_modified(meta.mtime(), meta.mtime_nsec()),
        sha256: hex(&sha.finalize()),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `json.dumps(s)` (ensure_ascii) of a path read through Python's
/// filesystem encoding: invalid UTF-8 bytes become lone surrogates
/// (`\udcXX`), everything non-ASCII is escaped.
pub fn python_json_str(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    fn push_unit(out: &mut String, u: u32) {
        out.push_str(&format!("\\u{u:04x}"));
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (' '..='~').contains(&c) => out.push(c),
                c if (c as u32) < 0x10000 => push_unit(&mut out, c as u32),
                c => {
                    let v = c as u32 - 0x10000;
                    push_unit(&mut out, 0xd800 | (v >> 10));
                    push_unit(&mut out, 0xdc00 | (v & 0x3ff));
                }
            }
        }
        for &b in chunk.invalid() {
            push_unit(&mut out, 0xdc00 | b as u32);
        }
    }
    out.push('"');
    out
}

/// The manifest text, as `BackupManifest._get_manifest_str` plus its
/// `Manifest-Checksum` line lay it out.
pub fn render(entries: &[Entry]) -> String {
    let mut s = String::from("{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n");
    for e in entries {
        s.push_str(&format!(
            "{{\"Checksum\": \"{}\", \"Checksum-Algorithm\": \"SHA256\", \"Last-Modified\": \"{}\", \"Path\": {}, \"Size\": {}}},\n",
            e.sha256,
            e.last_modified,
            python_json_str(&e.path),
            e.size
        ));
    }
    // `manifest[:-2] + "],\n"`, even when there is no file at all.
    s.truncate(s.len() - 2);
    s.push_str("],\n");
    let sum = hex(&Sha256::digest(s.as_bytes()));
    s.push_str(&format!("\"Manifest-Checksum\": \"{sum}\"}}\n"));
    s
}

/// `BackupManifest.create_backup_manifest` on `data_dir`: refuses when a
/// `backup_manifest` file exists, walks and hashes every file, then writes
/// the manifest durably (staged next to it, fsynced, renamed without
/// replacing, directory fsynced), so a crash never leaves half a manifest.
pub fn create(data_dir: &Path) -> Result<PathBuf, GenerateError> {
    let target = data_dir.join("backup_manifest");
    if target.is_file() {
        return Err(GenerateError(format!(
            "File {} already exists.",
            target.display()
        )));
    }
    let staging = crate::durable::staging_path(&target, "generate");
    let mut entries = Vec::new();
    for file in walk(data_dir)? {
        // A staging file left by a crashed run of ours is not backup data.
        if file == staging {
            continue;
        }
        entries.push(entry(&file, data_dir)?);
    }
    let text = render(&entries);
    let write = || -> io::Result<()> {
        let mut staged = crate::durable::Staged::create(&target, "generate", 0o666)?;
        staged.write_synced(text.as_bytes())?;
        staged.commit()?;
        crate::durable::sync_dir(data_dir)
    };
    write().map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => {
            GenerateError(format!("File {} already exists.", target.display()))
        }
        _ => os_error(&e, &target),
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_escaping() {
        assert_eq!(python_json_str(b"base/1/1234"), "\"base/1/1234\"");
        assert_eq!(
            python_json_str(b"a\"b\\c\nd\x01\x7f"),
            "\"a\\\"b\\\\c\\nd\\u0001\\u007f\""
        );
        assert_eq!(
            python_json_str("é😀".as_bytes()),
            "\"\\u00e9\\ud83d\\ude00\""
        );
        assert_eq!(python_json_str(b"x\xffy"), "\"x\\udcffy\"");
    }

    #[test]
    fn mtime_rounds_like_python() {
        assert_eq!(
            python_last_modified(1_795_558_077, 0),
            "2026-11-24 22:07:57"
        );
        assert_eq!(
            python_last_modified(1_795_558_077, 999_999_000),
            "2026-11-24 22:07:57"
        );
        assert_eq!(
            python_last_modified(1_795_558_077, 999_999_900),
            "2026-11-24 22:07:58"
        );
    }

    #[test]
    fn layout_matches_barman() {
        let e = Entry {
            path: b"PG_VERSION".to_vec(),
            size: 3,
            last_modified: "2026-11-25 04:17:52".into(),
            sha256: "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4".into(),
        };
        let text = render(&[e]);
        assert_eq!(
            text,
            "{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{\"Checksum\": \"98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\", \"Checksum-Algorithm\": \"SHA256\", \"Last-Modified\": \"2026-11-25 04:17:52\", \"Path\": \"PG_VERSION\", \"Size\": 3}],\n\"Manifest-Checksum\": \"".to_string()
                + &text[text.len() - 67..]
        );
        // Our own parser (PostgreSQL's checksum rule) accepts it.
        let m = super::super::manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].path, "PG_VERSION");
        assert_eq!(
            render(&[]),
            format!(
                "{{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": ],\n\"Manifest-Checksum\": \"{}\"}}\n",
                hex(&Sha256::digest(b"{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": ],\n"))
            )
        );
    }
}
