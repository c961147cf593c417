use std::fs::{self, File, Permissions};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::backup::manifest::{render, WalRange};
use crate::backup::page::{self, BLCKSZ};
use incr::{encode_header, Header};

const OID: u32 = 16400;

/// A page with a valid checksum for relation block `blkno`.
fn page(tag: u8, blkno: u64) -> Vec<u8> {
    let mut p = vec![0u8; BLCKSZ];
    p[12..14].copy_from_slice(&24u16.to_le_bytes());
    p[14..16].copy_from_slice(&8000u16.to_le_bytes());
    p[8000..].fill(tag);
    let c = page::checksum(&p, blkno);
    p[8..10].copy_from_slice(&c.to_le_bytes());
    p
}

/// Pages `tag` for blocks `0..n`.
fn rel(tag: u8, n: u64) -> Vec<u8> {
    (0..n).flat_map(|b| page(tag, b)).collect()
}

fn incremental(blocks: &[(u32, u8)], truncation_block_length: u32) -> Vec<u8> {
    let h = Header {
        blocks: blocks.iter().map(|b| b.0).collect(),
        truncation_block_length,
    };
    let mut out = encode_header(&h);
    for (b, tag) in blocks {
        out.extend(page(*tag, u64::from(*b)));
    }
    out
}

fn start(k: usize) -> u64 {
    0x2000028 + ((k as u64) << 24)
}

fn label(k: usize) -> String {
    let at = crate::wal::name::format_lsn(start(k));
    let mut s = format!(
        "START WAL LOCATION: {at} (file 0000000100000000000000{:02X})\n\
         CHECKPOINT LOCATION: {at}\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
         START TIME: 2025-01-01 00:00:00 UTC\nLABEL: test\nSTART TIMELINE: 1\n",
        k + 2
    );
    if k > 0 {
        let from = crate::wal::name::format_lsn(start(k - 1));
        s.push_str(&format!(
            "INCREMENTAL FROM LSN: {from}\nINCREMENTAL FROM TLI: 1\n"
        ));
    }
    s
}

type Files<'a> = &'a [(&'a str, Vec<u8>)];

/// Backup `k` of a chain under `root`, Barman's layout: `pg_tblspc/<oid>/…`
/// under `b<k>/<oid>/`, the rest under `b<k>/data/`, with a label,
/// pg_control and a manifest of it all.
fn backup_with(root: &Path, k: usize, files: Files, label: &str) -> Backup {
    let base = root.join(format!("b{k}"));
    let pgdata = base.join("data");
    let mut all: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| (p.to_string(), d.clone()))
        .collect();
    all.push((LABEL.into(), label.as_bytes().to_vec()));
    let mut control = vec![0u8; BLCKSZ];
    control[..8].copy_from_slice(&7_000_000_001u64.to_ne_bytes());
    all.push((PG_CONTROL.into(), control));
    let mut tablespaces = Vec::new();
    let mut entries = Vec::new();
    for (key, data) in &all {
        let path = match key
            .strip_prefix("pg_tblspc/")
            .and_then(|r| r.split_once('/'))
        {
            Some((oid, rest)) => {
                let dir = base.join(oid);
                if tablespaces.is_empty() {
                    tablespaces.push((oid.parse().unwrap(), dir.clone()));
                }
                dir.join(rest)
            }
            None => pgdata.join(key),
        };
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        entries.push(FileEntry {
            path: key.clone(),
            size: data.len() as u64,
            mtime: 0,
            crc32c: Some(crc32c::crc32c(data)),
        });
    }
    let m = Manifest {
        files: entries,
        wal_ranges: vec![WalRange {
            timeline: 1,
            start_lsn: start(k),
            end_lsn: start(k) + 0x100,
        }],
    };
    fs::write(pgdata.join(MANIFEST), render(&m)).unwrap();
    fs::set_permissions(&pgdata, Permissions::from_mode(0o700)).unwrap();
    Backup {
        name: format!("b{k}"),
        pgdata,
        tablespaces,
    }
}

fn backup(root: &Path, k: usize, files: Files) -> Backup {
    backup_with(root, k, files, &label(k))
}

fn dest(root: &Path) -> Destination {
    Destination {
        pgdata: root.join("out/data"),
        tablespaces: vec![(OID, root.join("out/tbs"))],
    }
}

fn run(root: &Path, chain: &[Backup]) -> Result<Report, CombineError> {
    let opts = Options {
        jobs: 2,
        verify_pages: true,
        manifest: true,
    };
    combine(chain, &dest(root), opts)
}

fn out(root: &Path, key: &str) -> Vec<u8> {
    let d = dest(root);
    let path = match key.strip_prefix(&format!("pg_tblspc/{OID}/")) {
        Some(rest) => d.tablespaces[0].1.join(rest),
        None => d.pgdata.join(key),
    };
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn no_control(root: &Path) -> bool {
    !dest(root).pgdata.join(PG_CONTROL).exists()
}

#[test]
fn blocks_come_from_the_newest_backup_that_has_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ts = "pg_tblspc/16400/PG_18_1/1/500";
    let b0 = backup(
        root,
        0,
        &[
            ("PG_VERSION", b"17\n".to_vec()),
            ("base/1/100", rel(1, 4)),
            ("base/1/300", rel(9, 1)),
            (ts, rel(5, 2)),
        ],
    );
    let b1 = backup(
        root,
        1,
        &[
            ("PG_VERSION", b"17\n".to_vec()),
            ("base/1/INCREMENTAL.100", incremental(&[(1, 2)], 4)),
            ("base/1/INCREMENTAL.300", incremental(&[], 1)),
            (
                "pg_tblspc/16400/PG_18_1/1/INCREMENTAL.500",
                incremental(&[], 2),
            ),
        ],
    );
    let b2 = backup(
        root,
        2,
        &[
            ("PG_VERSION", b"18\n".to_vec()),
            ("INCREMENTAL.conf", b"not a relation\n".to_vec()),
            ("base/1/INCREMENTAL.100", incremental(&[(2, 3), (5, 3)], 4)),
            ("base/1/200", rel(4, 1)),
            (
                "pg_tblspc/16400/PG_18_1/1/INCREMENTAL.500",
                incremental(&[(0, 6)], 2),
            ),
        ],
    );
    let report = run(root, &[b0, b1, b2]).unwrap();

    let mut want = page(1, 0);
    want.extend(page(2, 1));
    want.extend(page(3, 2));
    want.extend(page(1, 3));
    want.extend(vec![0u8; BLCKSZ]);
    want.extend(page(3, 5));
    assert!(
        out(root, "base/1/100") == want,
        "base/1/100 has the wrong blocks"
    );
    let mut want = page(6, 0);
    want.extend(page(5, 1));
    assert!(
        out(root, ts) == want,
        "the tablespace file has the wrong blocks"
    );
    assert_eq!(out(root, "PG_VERSION"), b"18\n");
    assert_eq!(out(root, "INCREMENTAL.conf"), b"not a relation\n");
    assert!(out(root, "base/1/200") == rel(4, 1));
    assert_eq!(
        out(root, LABEL),
        label(2)
            .replace(
                &format!(
                    "INCREMENTAL FROM LSN: {}\nINCREMENTAL FROM TLI: 1\n",
                    crate::wal::name::format_lsn(start(1))
                ),
                ""
            )
            .as_bytes()
    );
    let d = dest(root);
    assert!(
        !d.pgdata.join("base/1/300").exists(),
        "dropped in the newest"
    );
    assert!(!d.pgdata.join("base/1/INCREMENTAL.100").exists());
    assert_eq!(
        report,
        Report {
            files: 7,
            bytes: (6 + 2 + 1) * BLCKSZ as u64 + 3 + 15 + label(2).len() as u64 - 56
                + BLCKSZ as u64,
            reconstructed: 2,
            older_blocks: 4,
            zero_blocks: 1,
            // b2: 7 files, b1: 2, b0: 2.
            verified: 11,
            // Zero blocks are not pages.
            pages: 5 + 2 + 1,
        }
    );

    // The combined manifest describes the output, pg_control last.
    let m = manifest::parse(&fs::read(d.pgdata.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(m.files.first().map(|f| f.path.as_str()), Some(LABEL));
    assert_eq!(m.files.last().map(|f| f.path.as_str()), Some(PG_CONTROL));
    assert_eq!(m.files.len(), 7);
    for f in &m.files {
        let data = out(root, &f.path);
        assert_eq!(f.size, data.len() as u64, "{}", f.path);
        assert_eq!(f.crc32c, Some(crc32c::crc32c(&data)), "{}", f.path);
    }
    assert_eq!(m.wal_ranges[0].start_lsn, start(2));

    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&d.pgdata.join("base/1/100")), 0o600);
    assert_eq!(mode(&d.pgdata.join("base/1")), 0o700);
    assert_eq!(mode(&d.tablespaces[0].1.join("PG_18_1")), 0o700);
}

#[test]
fn truncation_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(
        root,
        0,
        &[
            ("base/1/100", rel(1, 5)),
            ("base/1/101", rel(1, 2)),
            ("base/1/102", rel(1, 4)),
        ],
    );
    let b1 = backup(
        root,
        1,
        &[
            ("base/1/INCREMENTAL.100", incremental(&[], 5)),
            ("base/1/INCREMENTAL.101", incremental(&[], 2)),
            ("base/1/INCREMENTAL.102", incremental(&[(3, 2)], 4)),
        ],
    );
    let b2 = backup(
        root,
        2,
        &[
            // Truncated by VACUUM since b0.
            ("base/1/INCREMENTAL.100", incremental(&[], 2)),
            // Extended with blocks no WAL touched: zeros.
            ("base/1/INCREMENTAL.101", incremental(&[], 4)),
            // b1's block 3 is past the new length: not used.
            ("base/1/INCREMENTAL.102", incremental(&[], 2)),
        ],
    );
    let report = run(root, &[b0, b1, b2]).unwrap();
    assert!(out(root, "base/1/100") == rel(1, 2));
    let mut want = rel(1, 2);
    want.extend(vec![0u8; 2 * BLCKSZ]);
    assert!(out(root, "base/1/101") == want);
    assert!(out(root, "base/1/102") == rel(1, 2));
    assert_eq!(report.zero_blocks, 2);
    assert_eq!(report.older_blocks, 6);
}

#[test]
fn a_whole_file_in_an_intermediate_backup_ends_the_search() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(
        root,
        0,
        &[("base/1/100", rel(1, 3)), ("base/1/101", rel(1, 2))],
    );
    let b1 = backup(
        root,
        1,
        &[
            ("base/1/100", rel(2, 2)),
            ("base/1/INCREMENTAL.101", incremental(&[], 2)),
        ],
    );
    let b2 = backup(
        root,
        2,
        &[
            ("base/1/INCREMENTAL.100", incremental(&[(0, 3)], 3)),
            ("base/1/INCREMENTAL.101", incremental(&[], 2)),
        ],
    );
    run(root, &[b0, b1, b2]).unwrap();
    let mut want = page(3, 0);
    want.extend(page(2, 1));
    want.extend(vec![0u8; BLCKSZ]);
    assert!(out(root, "base/1/100") == want, "nothing of b0's copy");
    assert!(
        out(root, "base/1/101") == rel(1, 2),
        "the full file as it was"
    );
}

#[test]
fn a_file_missing_from_the_chain_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(root, 0, &[("base/1/101", rel(1, 1))]);
    let b1 = backup(
        root,
        1,
        &[("base/1/INCREMENTAL.100", incremental(&[(0, 2)], 2))],
    );
    let e = run(root, &[b0, b1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "file 'base/1/100' is incremental in backup b1, but backup b0 has neither it nor an INCREMENTAL file for it"
    );
    assert!(no_control(root));

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(
        root,
        0,
        &[("base/1/INCREMENTAL.100", incremental(&[(0, 1)], 1))],
    );
    let b1 = backup(root, 1, &[("base/1/INCREMENTAL.100", incremental(&[], 1))]);
    let e = run(root, &[b0, b1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "full backup b0 contains unexpected incremental file 'base/1/INCREMENTAL.100'"
    );
    assert!(no_control(root));
}

fn chain(root: &Path) -> Vec<Backup> {
    vec![
        backup(
            root,
            0,
            &[("base/1/100", rel(1, 3)), ("PG_VERSION", b"18\n".to_vec())],
        ),
        backup(
            root,
            1,
            &[
                ("base/1/INCREMENTAL.100", incremental(&[(1, 2)], 3)),
                ("PG_VERSION", b"18\n".to_vec()),
            ],
        ),
    ]
}

fn flip(path: &Path, at: u64) {
    let f = File::options().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

#[test]
fn what_does_not_match_the_manifests_is_refused() {
    type Damage = fn(&[Backup]);
    let cases: [(&str, Damage, &str); 6] = [
        (
            "a block of the full backup",
            |c| flip(&c[0].pgdata.join("base/1/100"), 8100),
            "file 'base/1/100' of backup b0 does not match its backup_manifest: CRC32C",
        ),
        (
            "a block of an INCREMENTAL file",
            |c| flip(&c[1].pgdata.join("base/1/INCREMENTAL.100"), 8192 + 8100),
            "file 'base/1/INCREMENTAL.100' of backup b1 does not match its backup_manifest: CRC32C",
        ),
        (
            "the magic",
            |c| flip(&c[1].pgdata.join("base/1/INCREMENTAL.100"), 0),
            "file 'base/1/INCREMENTAL.100' of backup b1: bad incremental magic number",
        ),
        (
            "a cut INCREMENTAL file",
            |c| {
                let p = c[1].pgdata.join("base/1/INCREMENTAL.100");
                File::options().write(true).open(p).unwrap().set_len(9000).unwrap();
            },
            "file 'base/1/INCREMENTAL.100' of backup b1 is 9000 bytes, its incremental header says 16384",
        ),
        (
            "a file the manifest does not list",
            |c| fs::write(c[1].pgdata.join("base/1/999"), b"x").unwrap(),
            "file 'base/1/999' of backup b1 is not in its backup_manifest",
        ),
        (
            "a listed file gone",
            |c| fs::remove_file(c[1].pgdata.join("PG_VERSION")).unwrap(),
            "file 'PG_VERSION' is listed in the backup_manifest of backup b1 but missing from the backup",
        ),
    ];
    for (what, damage, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let c = chain(root);
        run(root, &c).unwrap_or_else(|e| panic!("{what}: undamaged: {e}"));
        fs::remove_dir_all(root.join("out")).unwrap();
        damage(&c);
        let e = run(root, &c).expect_err(what).to_string();
        assert!(e.starts_with(want), "{what}: {e}");
        assert!(no_control(root), "{what}: pg_control written");
    }
}

#[test]
fn a_whole_copy_beside_its_incremental_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(root, 0, &[("base/1/100", rel(1, 2))]);
    let b1 = backup(
        root,
        1,
        &[
            ("base/1/100", rel(2, 2)),
            ("base/1/INCREMENTAL.100", incremental(&[], 2)),
        ],
    );
    let e = run(root, &[b0, b1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backup b1 has both 'base/1/100' and an INCREMENTAL file for it"
    );
}

#[test]
fn pages_are_verified_when_the_cluster_has_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut bad = rel(1, 3);
    bad[BLCKSZ + 8100] ^= 1;
    let b0 = backup(root, 0, &[("base/1/100", bad)]);
    let b1 = backup(
        root,
        1,
        &[("base/1/INCREMENTAL.100", incremental(&[(0, 2)], 3))],
    );
    let chain = [b0, b1];
    let e = run(root, &chain).unwrap_err();
    assert_eq!(
        e.to_string(),
        "block 1 of 'base/1/100' (from backup b0) fails its page checksum"
    );
    assert!(no_control(root));
    let opts = Options {
        jobs: 1,
        verify_pages: false,
        manifest: false,
    };
    let r = combine(&chain, &dest(root), opts).unwrap();
    assert_eq!(r.pages, 0);
    assert!(!dest(root).pgdata.join(MANIFEST).exists());
    assert!(!no_control(root));
}

#[test]
fn the_backups_must_form_a_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b0 = backup(root, 0, &[]);
    let b1 = backup_with(
        root,
        1,
        &[],
        &label(1).replace(
            "INCREMENTAL FROM LSN: 0/2000028",
            "INCREMENTAL FROM LSN: 0/2000030",
        ),
    );
    let e = run(root, &[b0.clone(), b1]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backup b0: starts at LSN 0/2000028, but expected 0/2000030"
    );
    let e = run(root, &[backup(root, 1, &[])]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backup b1: is an incremental backup, but the first backup should be a full backup"
    );
    let e = run(root, &[b0.clone(), b0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backup b0: is a full backup, but only the first backup should be a full backup"
    );
    assert!(matches!(run(root, &[]), Err(CombineError::Empty)));
}

#[test]
fn crc_of_blocks_combines_to_the_crc_of_the_file() {
    let data = rel(7, 3);
    let folded = data.chunks(BLCKSZ).fold(0, |acc, c| {
        crc32c::crc32c_combine(acc, crc32c::crc32c(c), BLCKSZ)
    });
    assert_eq!(folded, crc32c::crc32c(&data));
}
