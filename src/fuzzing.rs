//! Properties the fuzz targets (fuzz/) check, kept in the library so that a
//! unit test replays every committed corpus file on stable in each CI run.

use crate::config::ini;
use crate::postgres::conninfo;

/// INI reader: no panic; interpolation no panic; re-rendering a parsed
/// file gives the same sections back.
pub fn config_ini(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sections) = ini::parse(text) else {
        return;
    };
    for s in &sections {
        for e in &s.entries {
            let lookup = |k: &str| {
                s.entries
                    .iter()
                    .find(|x| x.key == k)
                    .map(|x| x.value.clone())
            };
            let _ = ini::interpolate(&e.value, &lookup);
        }
    }
    // Keys starting with '[' would re-render as headers; skip those files.
    if sections
        .iter()
        .any(|s| s.entries.iter().any(|e| e.key.starts_with('[')))
    {
        return;
    }
    let mut rendered = String::new();
    for s in &sections {
        rendered.push_str(&format!("[{}]\n", s.name));
        for e in &s.entries {
            rendered.push_str(&format!("{} = {}\n", e.key, e.value.replace('\n', "\n  ")));
        }
    }
    let again = ini::parse(&rendered).expect("rendered INI parses");
    type Flat = Vec<(String, Vec<(String, String)>)>;
    let flat = |v: &[ini::Section]| -> Flat {
        v.iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.entries
                        .iter()
                        .map(|e| (e.key.clone(), e.value.clone()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(flat(&sections), flat(&again), "round trip of:\n{rendered}");
}

/// conninfo: no panic; quoting every parsed value and parsing again gives
/// the same pairs.
pub fn conninfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = conninfo::parse(text) else {
        return;
    };
    let rendered: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    let again = conninfo::parse(&rendered.join(" ")).expect("re-quoted conninfo parses");
    assert_eq!(pairs, again);
}

/// .pgpass: no panic, and lookups never panic.
pub fn pgpass(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries = conninfo::parse_pgpass(&text);
    let _ = conninfo::pgpass_lookup(&entries, "localhost", "5432", "db", "user");
}

/// WAL names and content validation: no panic on any bytes; a name that
/// parses re-renders to itself; validation of a segment whose header we
/// rebuild from the parsed name accepts it.
pub fn wal_header(data: &[u8]) {
    use crate::wal::{header, WalName};
    let (name, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (String::from_utf8_lossy(data).into_owned(), &data[..0]),
    };
    if let Some(n) = WalName::parse(&name) {
        assert_eq!(n.to_string(), name);
        let _ = header::validate(&n, body, None);
        let _ = header::validate(&n, body, Some(1));
    }
    for candidate in [
        "000000010000000000000001",
        "000000010000000000000001.partial",
    ] {
        let n = WalName::parse(candidate).unwrap();
        let _ = header::validate(&n, data, None);
    }
}

/// xlog.db lines: no panic; a parsed line renders to a line that parses
/// back to the same entry.
pub fn xlogdb_line(data: &[u8]) {
    use crate::catalog::xlogdb::Entry;
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some(e) = Entry::parse(line) {
            if e.name.is_empty() || !e.time.is_finite() {
                continue;
            }
            let again = Entry::parse(&e.to_line()).expect("a rendered line parses");
            assert_eq!(again.name, e.name);
            assert_eq!(again.size, e.size);
            assert_eq!(again.time.to_bits(), e.time.to_bits(), "{line}");
            assert_eq!(again.compression, e.compression);
            assert_eq!(again.encryption, e.encryption);
        }
    }
}

/// Decompression of untrusted archive files: every codec returns data or
/// an error, never panics; detection agrees with the magic.
pub fn decompress(data: &[u8]) {
    use crate::compression::{self, Codec, CustomFilters};
    let custom = CustomFilters::default();
    let mut out = Vec::new();
    for codec in [Codec::Gzip, Codec::Bzip2, Codec::Lz4, Codec::Zstd] {
        let _ = compression::decompress(codec, data, &custom, &mut out);
        // Bound the work a tiny input may ask for (decompression bombs are
        // the caller's size limit, not a panic).
        out.clear();
        out.shrink_to(1 << 20);
    }
    let _ = Codec::detect(data, Some(b"\x01\x02"));
}

/// backup.info: no panic; a parsed file renders to one that parses to the
/// same fields and renders identically (Barman's byte layout is stable).
pub fn backup_info(data: &[u8]) {
    use crate::catalog::backup_info::BackupInfo;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(info) = BackupInfo::parse(text) else {
        return;
    };
    let rendered = info.render();
    let again = BackupInfo::parse(&rendered).expect("a rendered backup.info parses");
    assert_eq!(again.render(), rendered);
}

/// Python literals (backup.info's repr fields): no panic; `repr` of a
/// parsed value parses back to the same value.
pub fn pylit(data: &[u8]) {
    use crate::catalog::pylit;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(v) = pylit::parse(text) else {
        return;
    };
    let again = pylit::parse(&v.repr()).expect("repr parses");
    // NaN != NaN; compare the renderings instead of the values.
    assert_eq!(again.repr(), v.repr());
}

/// backup_label: no panic; what parses is coherent (the LSN text is the
/// LSN, the timeline is the file's) and the lines Barman reads, written
/// back, parse to the same label.
pub fn backup_label(data: &[u8]) {
    use crate::backup::label;
    use crate::wal::name::{parse_lsn, WalName};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(l) = label::parse(text) else {
        return;
    };
    assert_eq!(parse_lsn(&l.start_lsn_text), Some(l.start_lsn));
    assert_eq!(
        WalName::parse(&l.start_wal).map(|n| n.tli),
        Some(l.timeline)
    );
    // A lone '\r' ending the text stays in the value; written back with a
    // '\n' it would be read as a CRLF line end.
    if l.start_time.ends_with('\r') {
        return;
    }
    let rendered = format!(
        "START WAL LOCATION: {} (file {})\nSTART TIME: {}\n",
        l.start_lsn_text, l.start_wal, l.start_time
    );
    assert_eq!(label::parse(&rendered), Some(l), "{rendered:?}");
}

/// backup_manifest: no panic, on the input as is and on the input with
/// its Manifest-Checksum recomputed (so mutations reach the JSON reading,
/// not only the checksum test); a parsed manifest renders to one that
/// parses to the same files and WAL ranges.
pub fn backup_manifest(data: &[u8]) {
    use crate::backup::manifest;
    use sha2::{Digest, Sha256};
    let _ = manifest::parse(data);
    const KEY: &[u8] = b"\"Manifest-Checksum\"";
    let Some(at) = data.windows(KEY.len()).rposition(|w| w == KEY) else {
        return;
    };
    let sum: String = Sha256::digest(&data[..at])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut sealed = data[..at].to_vec();
    sealed.extend_from_slice(format!("\"Manifest-Checksum\": \"{sum}\"}}\n").as_bytes());
    let Ok(m) = manifest::parse(&sealed) else {
        return;
    };
    let text = manifest::render(&m);
    let again = manifest::parse(text.as_bytes()).expect("a rendered manifest parses");
    assert_eq!(again, m, "{text}");
}

/// retention_policy: no panic; case does not matter; Barman's rendering
/// of a parsed policy parses to the same policy.
pub fn retention_policy(data: &[u8]) {
    use crate::config::types::parse_retention_policy;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_retention_policy(text);
    assert_eq!(
        parse_retention_policy(&text.to_ascii_lowercase()).ok(),
        parsed.clone().ok()
    );
    if let Ok(p) = parsed {
        assert_eq!(parse_retention_policy(&p.to_string()), Ok(p));
    }
}

/// postgresql.conf rewriting on restore: no panic; every line Barman
/// neutralises is reported and commented; the other lines come through
/// unchanged and in order, followed by the appended lines.
pub fn postgresql_conf(data: &[u8]) {
    use crate::restore::conf::{detect, mangle};
    let append = vec!["restore_command = 'x'".to_string()];
    let (out, changes) = mangle("f", data, &append);
    let _ = detect("f", &out);
    let kept: Vec<&[u8]> = out
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| !l.starts_with(b"#BARMAN#") && *l != b"archive_command = false\n")
        .collect();
    let original: Vec<&[u8]> = data.split_inclusive(|b| *b == b'\n').collect();
    let commented = out
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"#BARMAN#"))
        .count();
    // A cluster restored by Barman before carries #BARMAN# lines already.
    let before = original
        .iter()
        .filter(|l| l.starts_with(b"#BARMAN#"))
        .count();
    assert_eq!(commented, changes.len() + before);
    assert!(original.len() >= changes.len());
    assert!(out.ends_with(b"restore_command = 'x'\n"));
    // Unchanged lines keep their order (the last may have gained a newline).
    assert!(kept.len() >= original.len() - changes.len());
}

/// Target times: no panic; what parses prints (Python's `str()`) to text
/// that parses to the same instant.
pub fn target_time(data: &[u8]) {
    use crate::restore::targets::{parse_time, python_aware};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(t) = parse_time(text, &utc) {
        let shown = python_aware(&t.at);
        let again = parse_time(&shown, &utc).expect("Python's str() parses");
        assert_eq!(
            again.at.timestamp(),
            t.at.timestamp(),
            "{text:?} -> {shown}"
        );
        assert!(!again.naive);
    }
}

/// INCREMENTAL file headers and the chain lines of backup_label
/// (restore::incremental_file): no panic; a parsed header encodes to the
/// bytes it was read from (up to its padding, which is not read) and
/// parses back the same; a label stripped of its `INCREMENTAL FROM` lines
/// stays so when stripped again, and parses as a full backup's label with
/// the same start.
pub fn incremental_file(data: &[u8]) {
    use crate::restore::incremental_file as incr;
    if let Ok(h) = incr::parse_header(data) {
        let bytes = incr::encode_header(&h);
        let fields = 12 + 4 * h.blocks.len();
        assert_eq!(&bytes[..fields], &data[..fields]);
        assert_eq!(incr::parse_header(&bytes).as_ref(), Ok(&h));
        assert!(u64::from(h.reconstructed_blocks()) <= crate::backup::page::RELSEG_SIZE);
    }
    let stripped = incr::strip_incremental_lines(data);
    assert_eq!(incr::strip_incremental_lines(&stripped), stripped);
    if let Ok(l) = incr::parse_chain_label(data) {
        let full = incr::parse_chain_label(&stripped).expect("a stripped label parses");
        assert_eq!(full.from, None);
        assert_eq!((full.start_lsn, full.start_tli), (l.start_lsn, l.start_tli));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays fuzz/corpus/<target>/* through the same property functions.
    #[test]
    fn replay_fuzz_corpora() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type Property = fn(&[u8]);
        let targets: [(&str, Property); 14] = [
            ("config_ini", super::config_ini),
            ("conninfo", super::conninfo),
            ("pgpass", super::pgpass),
            ("wal_header", super::wal_header),
            ("xlogdb_line", super::xlogdb_line),
            ("decompress", super::decompress),
            ("backup_info", super::backup_info),
            ("pylit", super::pylit),
            ("backup_label", super::backup_label),
            ("backup_manifest", super::backup_manifest),
            ("retention_policy", super::retention_policy),
            ("postgresql_conf", super::postgresql_conf),
            ("target_time", super::target_time),
            ("incremental_file", super::incremental_file),
        ];
        for (name, f) in targets {
            let dir = root.join(name);
            let mut n = 0;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                f(&data);
                n += 1;
            }
            assert!(n > 0, "corpus {name} is empty");
        }
    }
}
