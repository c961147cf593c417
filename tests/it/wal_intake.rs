//! WAL intake (`archive-wal`, `cron`, `get-wal`, `put-wal`,
//! `rebuild-xlogdb`) on synthetic but well-formed WAL: every codec, the
//! validation cases, duplicates, crashes at every step, a full disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use barman::compression::{self, Codec, CustomFilters};
use barman::wal::header::synthetic_segment;
use barman::wal::WalName;

use crate::harness::TestEnv;

pub const SEG: u32 = 1 << 20;
pub const SYSID: u64 = 7_311_862_123_650_354_339;

/// A 1 MiB segment of system `sysid`, compressible like real WAL, distinct
/// per name and `seed`.
pub fn segment(name: &str, sysid: u64, seed: u8) -> Vec<u8> {
    let n = WalName::parse(name).unwrap();
    let salt = name.bytes().fold(seed as usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(b as usize)
    });
    synthetic_segment(&n, sysid, SEG, |i| {
        if (i / 4096) % 3 == 0 {
            ((i.wrapping_mul(2654435761) ^ salt) >> 7) as u8
        } else {
            (i / 512 + salt) as u8
        }
    })
}

pub fn seg_name(i: u32) -> String {
    format!("00000001{:08X}{:08X}", i / 256, i % 256)
}

pub fn config(env: &TestEnv, compression: &str, extra: &str) {
    let comp = match compression {
        "none" => String::new(),
        c => format!("compression = {c}\n"),
    };
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n{comp}\n\
         [srv]\ndescription = intake\nconninfo = host=/nonexistent dbname=postgres\n\
         backup_method = postgres\narchiver = on\n{extra}"
    ));
}

pub fn incoming(env: &TestEnv) -> PathBuf {
    env.home().join("srv/incoming")
}

pub fn put(env: &TestEnv, name: &str, data: &[u8]) {
    std::fs::create_dir_all(incoming(env)).unwrap();
    std::fs::write(incoming(env).join(name), data).unwrap();
}

/// The archived file of `name`, decompressed by magic.
pub fn archived(env: &TestEnv, name: &str) -> Vec<u8> {
    let n = WalName::parse(name).unwrap();
    let path = env.home().join("srv/wals").join(n.hash_dir()).join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match Codec::detect(&data, None) {
        Some(c) => {
            let mut out = Vec::new();
            let custom = CustomFilters {
                decompress: Some("gzip -d -c".into()),
                ..Default::default()
            };
            compression::decompress(c, &data, &custom, &mut out).unwrap();
            out
        }
        None => data,
    }
}

pub fn xlogdb(env: &TestEnv) -> Vec<Vec<String>> {
    std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file under wals/ whose name is not a WAL name: staging leftovers.
fn stray(env: &TestEnv) -> Vec<String> {
    crate::harness::tree(&env.home().join("srv/wals"))
        .into_iter()
        .filter(|p| {
            let base = p.rsplit('/').next().unwrap();
            !(base.len() == 16 || WalName::parse(base).is_some() || base == "srv-xlog.db")
        })
        .collect()
}

#[test]
fn every_codec_round_trips_with_barmans_catalog_lines() {
    for comp in [
        "gzip", "pygzip", "pigz", "bzip2", "lz4", "zstd", "xz", "snappy", "none", "custom",
    ] {
        let env = TestEnv::new();
        let extra = if comp == "custom" {
            "custom_compression_filter = gzip -c\ncustom_decompression_filter = gzip -d -c\n"
        } else {
            ""
        };
        config(&env, comp, extra);
        let names: Vec<String> = (0xFE..0x102).map(seg_name).collect();
        let mut originals = Vec::new();
        for n in &names {
            let data = segment(n, SYSID, 1);
            put(&env, n, &data);
            originals.push(data);
        }
        let history = b"1\t0/3000000\tno recovery target specified\n".to_vec();
        put(&env, "00000002.history", &history);
        let label = b"START WAL LOCATION: 0/FE000028 (file 0000000100000000000000FE)\n".to_vec();
        put(&env, "0000000100000000000000FE.00000028.backup", &label);

        let run = env.barman(&["archive-wal", "srv"]);
        assert_eq!(run.code, 0, "{comp}: {}", run.stderr);
        let mut expected = String::from("Processing xlog segments from file archival for srv\n");
        for n in [
            "0000000100000000000000FE",
            "0000000100000000000000FE.00000028.backup",
            "0000000100000000000000FF",
            "000000010000000100000000",
            "000000010000000100000001",
            "00000002.history",
        ] {
            expected.push_str(&format!("\t{n}\n"));
        }
        assert_eq!(run.stdout, expected, "{comp}");
        assert_eq!(run.stderr, "", "{comp}");
        assert!(
            files(&incoming(&env)).is_empty(),
            "{comp}: incoming not drained"
        );

        for (n, data) in names.iter().zip(&originals) {
            assert!(archived(&env, n) == *data, "{comp}: {n} differs");
        }
        assert_eq!(archived(&env, "00000002.history"), history);
        let lines = xlogdb(&env);
        assert_eq!(lines.len(), 6, "{comp}");
        let recorded = match comp {
            "none" => "None",
            c => c,
        };
        for l in &lines {
            assert_eq!(l.len(), 5);
            let n = WalName::parse(&l[0]).unwrap();
            let path = env.home().join("srv/wals").join(n.hash_dir()).join(&l[0]);
            assert_eq!(l[1], std::fs::metadata(&path).unwrap().len().to_string());
            assert!(l[2].contains('.'), "time is a Python float: {}", l[2]);
            assert_eq!(l[3], recorded, "{comp}");
            assert_eq!(l[4], "None");
        }
        if comp != "none" {
            let seg = std::fs::metadata(
                env.home()
                    .join("srv/wals/0000000100000000/0000000100000000000000FE"),
            )
            .unwrap()
            .len();
            assert!(seg < u64::from(SEG) / 2, "{comp} did not compress: {seg}");
        }
        assert!(stray(&env).is_empty(), "{comp}: {:?}", stray(&env));
    }
}

#[test]
fn precompressed_input_is_kept_with_its_own_codec() {
    let env = TestEnv::new();
    config(&env, "bzip2", "");
    let name = seg_name(5);
    let data = segment(&name, SYSID, 2);
    let gz = {
        let mut c = compression::Compressor::new(&compression::Settings {
            codec: Codec::Gzip,
            name: "gzip".into(),
            level: 6,
            custom: Default::default(),
        })
        .unwrap();
        let mut out = Vec::new();
        c.compress(&data, &name, &mut out).unwrap();
        out
    };
    put(&env, &name, &gz);
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(xlogdb(&env)[0][3], "gzip");
    assert_eq!(archived(&env, &name), data);
}

#[test]
fn duplicates_same_content_is_dropped_different_goes_to_errors() {
    let env = TestEnv::new();
    config(&env, "zstd", "");
    let name = seg_name(3);
    let data = segment(&name, SYSID, 1);
    put(&env, &name, &data);
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    let stored = std::fs::read(env.home().join("srv/wals/0000000100000000").join(&name)).unwrap();

    put(&env, &name, &data);
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout,
        format!("Processing xlog segments from file archival for srv\n\t{name}\n")
    );
    assert!(files(&incoming(&env)).is_empty());
    assert_eq!(
        xlogdb(&env).len(),
        1,
        "no second line for an identical duplicate"
    );

    put(&env, &name, &segment(&name, SYSID, 9));
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout,
        format!(
            "Processing xlog segments from file archival for srv\n\t{name}\n\
             \tError: {name} is already present in server srv. File moved to errors directory.\n"
        )
    );
    let errors = files(&env.home().join("srv/errors"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(&format!("{name}.")) && errors[0].ends_with("Z.duplicate"),
        "{errors:?}"
    );
    let now = std::fs::read(env.home().join("srv/wals/0000000100000000").join(&name)).unwrap();
    assert_eq!(now, stored, "the archived copy must never be overwritten");
    assert_eq!(xlogdb(&env).len(), 1);
}

#[test]
fn foreign_truncated_and_junk_files_are_refused_with_a_named_error() {
    let env = TestEnv::new();
    config(&env, "gzip", "");
    std::fs::create_dir_all(env.home().join("srv")).unwrap();
    std::fs::write(
        env.home().join("srv/identity.json"),
        format!("{{\n    \"systemid\": \"{SYSID}\",\n    \"version\": \"15\"\n}}\n"),
    )
    .unwrap();
    let good = seg_name(1);
    let foreign = seg_name(2);
    let truncated = seg_name(3);
    let renamed = seg_name(4);
    put(&env, &good, &segment(&good, SYSID, 1));
    put(&env, &foreign, &segment(&foreign, 42, 1));
    put(&env, &truncated, &segment(&truncated, SYSID, 1)[..300_000]);
    put(&env, &renamed, &segment(&seg_name(7), SYSID, 1));
    put(&env, "garbage.txt", b"junk");
    put(&env, "000000010000000000000009.tmp", b"in progress");

    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let err: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(err.len(), 3, "{}", run.stderr);
    assert!(err[0].starts_with(&format!("ERROR: Invalid WAL file {foreign} for server srv: system identifier 42 differs from the server's {SYSID}")), "{}", err[0]);
    assert!(
        err[1].starts_with(&format!(
            "ERROR: Invalid WAL file {truncated} for server srv: truncated: 300000 bytes"
        )),
        "{}",
        err[1]
    );
    assert!(
        err[2].starts_with(&format!(
            "ERROR: Invalid WAL file {renamed} for server srv: page address 0/700000 in the header"
        )),
        "{}",
        err[2]
    );
    assert!(run.stdout.contains("Some unknown objects have been found while processing xlog segments for srv. Objects moved to errors directory:\n\tgarbage.txt\n"));

    assert_eq!(xlogdb(&env).len(), 1);
    assert_eq!(archived(&env, &good), segment(&good, SYSID, 1));
    let errors = files(&env.home().join("srv/errors"));
    assert_eq!(errors.len(), 4, "{errors:?}");
    for name in [&foreign, &truncated, &renamed] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(name.as_str()) && e.ends_with(".unknown")),
            "{errors:?}"
        );
    }
    // The .tmp file is left for whoever is writing it, as Barman does.
    assert_eq!(
        files(&incoming(&env)),
        vec!["000000010000000000000009.tmp".to_string()]
    );
    let check = env.barman(&["check", "srv"]);
    assert!(
        check
            .stdout
            .contains("\tarchiver errors: FAILED (unknown: 4)"),
        "{}",
        check.stdout
    );
}

/// `segment` with the page magic of another PostgreSQL release.
fn segment_of_release(name: &str, sysid: u64, magic: u16) -> Vec<u8> {
    let mut data = segment(name, sysid, 1);
    data[0..2].copy_from_slice(&magic.to_le_bytes());
    data
}

#[test]
fn every_release_is_archived_and_a_future_one_with_a_warning() {
    let env = TestEnv::new();
    config(&env, "zstd", "");
    // PostgreSQL 13, 14, 16, 17, 18, then a release this build does not know.
    let magics = [0xD106u16, 0xD10D, 0xD113, 0xD116, 0xD118, 0xD11B];
    for (i, magic) in magics.iter().enumerate() {
        let name = seg_name(i as u32 + 1);
        put(&env, &name, &segment_of_release(&name, SYSID, *magic));
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "WARNING: WAL file {} of server srv: page magic 0xD11B is newer than PostgreSQL 18's: \
             archived on the strength of its header (system identifier, segment size, page address, timeline)\n",
            seg_name(6)
        )
    );
    assert_eq!(xlogdb(&env).len(), 6);
    for (i, magic) in magics.iter().enumerate() {
        let name = seg_name(i as u32 + 1);
        assert_eq!(
            archived(&env, &name),
            segment_of_release(&name, SYSID, *magic)
        );
    }
    // A future release's segment whose header does not fit is refused.
    let bad = seg_name(7);
    put(&env, &bad, &segment_of_release(&seg_name(9), SYSID, 0xD11B));
    let foreign = seg_name(8);
    put(
        &env,
        &foreign,
        &segment_of_release(&foreign, SYSID + 1, 0xD11B),
    );
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "ERROR: Invalid WAL file {bad} for server srv: page address"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "ERROR: Invalid WAL file {foreign} for server srv: system identifier"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(xlogdb(&env).len(), 6);
}

#[test]
fn system_identifier_is_learned_from_the_archive() {
    let env = TestEnv::new();
    config(&env, "lz4", "");
    let first = seg_name(1);
    put(&env, &first, &segment(&first, SYSID, 1));
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    let other = seg_name(2);
    put(&env, &other, &segment(&other, SYSID + 1, 1));
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("system identifier"), "{}", run.stderr);
    // And within one run, the first segment sets it for the others.
    let env = TestEnv::new();
    config(&env, "lz4", "");
    put(&env, &first, &segment(&first, SYSID, 1));
    put(&env, &other, &segment(&other, SYSID + 1, 1));
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 1);
    assert_eq!(xlogdb(&env).len(), 1);
}

#[test]
fn batch_size_limits_a_run_and_prints_barmans_header() {
    let env = TestEnv::new();
    config(&env, "none", "archiver_batch_size = 2\n");
    for i in 1..=5 {
        put(&env, &seg_name(i), &segment(&seg_name(i), SYSID, 1));
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(
        run.stdout,
        format!(
            "Processing xlog segments from file archival for srv (batch size: 2)\n\t{}\n\t{}\n",
            seg_name(1),
            seg_name(2)
        )
    );
    assert_eq!(files(&incoming(&env)).len(), 3);
}

#[test]
fn streaming_directory_keeps_its_newest_file() {
    let env = TestEnv::new();
    config(
        &env,
        "gzip",
        "streaming_archiver = on\nslot_name = barman\nstreaming_conninfo = host=/nonexistent\n",
    );
    let dir = env.home().join("srv/streaming");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=3 {
        std::fs::write(dir.join(seg_name(i)), segment(&seg_name(i), SYSID, 1)).unwrap();
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "Processing xlog segments from streaming for srv (batch size: 2)\n\t{}\n\t{}\nProcessing xlog segments from file archival for srv\n\tno file found\n",
            seg_name(1),
            seg_name(2)
        )),
        "{}",
        run.stdout
    );
    assert_eq!(files(&dir), vec![seg_name(3)]);
}

#[test]
fn archive_wal_lock_makes_a_second_run_skip() {
    let env = TestEnv::new();
    config(&env, "none", "");
    let _held =
        barman::catalog::lock::acquire(&env.home().join(".srv-archive-wal.lock"), false).unwrap();
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "Another archive-wal process is already running on server srv. Skipping to the next server\n");
}

#[test]
fn cron_drains_every_server_in_one_run() {
    let env = TestEnv::new();
    let mut conf = String::from("[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\ncompression = zstd\n");
    for s in ["a", "b", "c"] {
        conf.push_str(&format!(
            "\n[{s}]\ndescription = {s}\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\n"
        ));
    }
    conf.push_str("\n[off]\ndescription = off\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\nactive = false\n");
    env.write_config(&conf);
    for s in ["a", "b", "c"] {
        let dir = env.home().join(s).join("incoming");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 1..=6 {
            std::fs::write(
                dir.join(seg_name(i)),
                segment(
                    &seg_name(i),
                    SYSID + s.len() as u64 + u64::from(s.as_bytes()[0]),
                    1,
                ),
            )
            .unwrap();
        }
    }
    let run = env.barman(&["cron"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Skipping inactive server 'off'\nStarting WAL archiving for server a\n\
         Starting WAL archiving for server b\nStarting WAL archiving for server c\n"
    );
    for s in ["a", "b", "c"] {
        assert!(
            files(&env.home().join(s).join("incoming")).is_empty(),
            "{s}"
        );
        let db =
            std::fs::read_to_string(env.home().join(s).join(format!("wals/{s}-xlog.db"))).unwrap();
        let names: Vec<&str> = db.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(
            names,
            (1..=6).map(seg_name).collect::<Vec<_>>(),
            "{s}: in order"
        );
    }
}

#[test]
fn rebuild_xlogdb_matches_what_intake_wrote() {
    let env = TestEnv::new();
    config(&env, "bzip2", "");
    for i in 1..=3 {
        put(&env, &seg_name(i), &segment(&seg_name(i), SYSID, 1));
    }
    put(
        &env,
        "00000002.history",
        b"1\t0/3000000\tno recovery target specified\n",
    );
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    let before = std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db")).unwrap();
    std::fs::remove_file(env.home().join("srv/wals/srv-xlog.db")).unwrap();
    std::fs::write(env.home().join("srv/wals/xlog.db"), "legacy").unwrap();
    let run = env.barman(&["rebuild-xlogdb", "srv"]);
    assert_eq!(
        run.stdout,
        "Rebuilding xlogdb for server srv\nDone rebuilding xlogdb for server srv (history: 1, backup_labels: 0, wal_file: 3)\n"
    );
    let after = std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db")).unwrap();
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&after), sorted(&before));
    assert!(!env.home().join("srv/wals/xlog.db").exists());
}

#[test]
fn get_wal_serves_decompressed_recompressed_and_peeks() {
    let env = TestEnv::new();
    config(&env, "zstd", "");
    let names: Vec<String> = (1..=3).map(seg_name).collect();
    for n in &names {
        put(&env, n, &segment(n, SYSID, 1));
    }
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    let out = env.output(&["get-wal", "srv", &names[1]]);
    assert!(out.status.success());
    assert!(out.stdout == segment(&names[1], SYSID, 1));

    let dir = env.root().join("restore");
    std::fs::create_dir_all(&dir).unwrap();
    let run = env.barman(&[
        "get-wal",
        "-z",
        "-o",
        dir.to_str().unwrap(),
        "srv",
        &names[0],
    ]);
    assert_eq!(
        run.stdout,
        format!(
            "Sending WAL '{0}' for server 'srv' into '@ROOT@/restore/{0}' file\n",
            names[0]
        )
    );
    let gz = std::fs::read(dir.join(&names[0])).unwrap();
    assert_eq!(Codec::detect(&gz, None), Some(Codec::Gzip));
    let mut back = Vec::new();
    compression::decompress(Codec::Gzip, &gz, &CustomFilters::default(), &mut back).unwrap();
    assert!(back == segment(&names[0], SYSID, 1));

    let run = env.barman(&["get-wal", "--peek", "10", "srv", &names[0]]);
    assert_eq!(
        run.stdout,
        names.iter().map(|n| format!("{n}\n")).collect::<String>()
    );
    let run = env.barman(&["get-wal", "srv", &seg_name(9)]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            format!(
                "ERROR: WAL file '{}' not found in server 'srv'\n",
                seg_name(9)
            )
            .as_str()
        )
    );
    let run = env.barman(&["get-wal", "srv", "badname"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (3, "ERROR: 'badname' is not a valid wal file name\n")
    );
    let run = env.barman(&["get-wal", "--test", "srv", &names[0]]);
    assert_eq!(
        run.stdout,
        "Ready to retrieve WAL files from the server srv\n"
    );

    // A damaged archive is refused, not served.
    let path = env.home().join("srv/wals/0000000100000000").join(&names[2]);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xFF;
    std::fs::write(&path, data).unwrap();
    let out = env.output(&["get-wal", "srv", &names[2]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("ERROR: Error decompressing WAL: zstd data is corrupt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tar stream as barman-wal-archive builds it: the file, then SHA256SUMS.
fn wal_archive_tar(name: &str, data: &[u8], sum: Option<String>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    let sum = sum.unwrap_or_else(|| format!("{:x}", Sha256::digest(data)));
    let sums = format!("{sum} *{name}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(sums.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    b.append_data(&mut h, "SHA256SUMS", sums.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

fn put_wal(env: &TestEnv, stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = env
        .command(&["put-wal", "srv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn put_wal_checks_sums_and_lands_files_in_incoming() {
    let env = TestEnv::new();
    config(&env, "gzip", "");
    let name = seg_name(1);
    let data = segment(&name, SYSID, 1);
    let (code, out, err) = put_wal(&env, &wal_archive_tar(&name, &data, None));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert!(std::fs::read(incoming(&env).join(&name)).unwrap() == data);
    assert_eq!(
        files(&incoming(&env)),
        vec![name.clone()],
        "no staging files left"
    );

    let other = seg_name(2);
    let (code, _, err) = put_wal(&env, &wal_archive_tar(&other, &data, Some("0".repeat(64))));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("ERROR: Bad file checksum '")
            && err.contains(&format!(
                "(should be {}) for file '{other}' in put-wal for server 'srv'",
                "0".repeat(64)
            )),
        "{err}"
    );
    assert_eq!(files(&incoming(&env)), vec![name.clone()]);

    let run = env.barman(&["put-wal", "--test", "srv"]);
    assert_eq!(run.stdout, "Ready to accept WAL files for the server srv\n");
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    assert!(archived(&env, &name) == data);
}

/// Crash the intake (SIGKILL) at each step of the protocol, at the first and
/// at a later file, then rerun: every segment is archived exactly once with
/// the right bytes, xlog.db matches the files, no staging file is visible.
#[test]
fn crash_at_every_step_loses_nothing_and_archives_exactly_once() {
    // Per-file points are hit 8 times; per-batch points at least once (how
    // many batches there are depends on timing: group commit).
    let points = [
        ("intake:staged", 1),
        ("intake:staged", 4),
        ("intake:renamed", 1),
        ("intake:renamed", 4),
        ("intake:synced", 1),
        ("intake:recorded", 1),
        ("intake:unlinked", 1),
        ("intake:unlinked", 4),
    ];
    for (point, nth) in points {
        {
            let env = TestEnv::new();
            config(&env, "lz4", "parallel_jobs = 2\n");
            let names: Vec<String> = (1..=8).map(seg_name).collect();
            for n in &names {
                put(&env, n, &segment(n, SYSID, 3));
            }
            let out = env
                .command(&["archive-wal", "srv"])
                .env("BARMAN_RS_FAILPOINT", format!("{point}:{nth}"))
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(9), "{point}:{nth} did not crash");
            // Before the rerun: every segment is in incoming/ or complete in the archive.
            for n in &names {
                let inc = incoming(&env).join(n).exists();
                let arc = env.home().join("srv/wals/0000000100000000").join(n);
                assert!(inc || arc.exists(), "{point}:{nth}: {n} lost");
                if arc.exists() {
                    assert!(
                        archived(&env, n) == segment(n, SYSID, 3),
                        "{point}:{nth}: {n} half-written"
                    );
                }
            }
            let run = env.barman(&["archive-wal", "srv"]);
            assert_eq!(run.code, 0, "{point}:{nth}: {}", run.stderr);
            assert!(files(&incoming(&env)).is_empty(), "{point}:{nth}");
            let lines = xlogdb(&env);
            let mut recorded: Vec<String> = lines.iter().map(|l| l[0].clone()).collect();
            recorded.sort();
            assert_eq!(
                recorded, names,
                "{point}:{nth}: xlog.db must list each segment exactly once"
            );
            for n in &names {
                assert!(
                    archived(&env, n) == segment(n, SYSID, 3),
                    "{point}:{nth}: {n}"
                );
            }
            assert!(stray(&env).is_empty(), "{point}:{nth}: {:?}", stray(&env));
            assert!(
                files(&env.home().join("srv/errors")).is_empty(),
                "{point}:{nth}"
            );
        }
    }
}

/// Unmounts on drop, whatever the test's outcome.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `mount <args> <target>`; these tests need root, as CI runs them.
fn mount(args: &[&str], target: &Path) -> Unmount {
    let st = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .expect("mount");
    assert!(
        st.success(),
        "mount {args:?} {} failed (run as root)",
        target.display()
    );
    Unmount(target.to_path_buf())
}

/// A WAL archive on a full filesystem: the run stops with an error naming
/// the file and server; nothing is lost and nothing half-written remains.
#[test]
fn full_disk_fails_cleanly_and_loses_nothing() {
    let env = TestEnv::new();
    let mnt = env.root().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let _guard = mount(&["-t", "tmpfs", "-o", "size=3m", "tmpfs"], &mnt);
    config(
        &env,
        "none",
        &format!("wals_directory = {}/wals\n", mnt.display()),
    );
    let names: Vec<String> = (1..=5).map(seg_name).collect();
    for n in &names {
        put(&env, n, &segment(n, SYSID, 1));
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 1);
    let err = run.stderr.trim_end();
    // A segment's copy fails; when the disk also fills up under the xlog.db
    // append of the files before it, that is reported too, and they wait.
    assert!((1..=2).contains(&err.lines().count()), "{err}");
    for line in err.lines() {
        assert!(
            (line.starts_with("ERROR: Cannot archive WAL file 00000001000000000000000")
                && line.contains(" of server srv: No space left on device"))
                || line.starts_with("ERROR: Cannot record WAL files of server srv in xlog.db:"),
            "{line}"
        );
    }
    let wals = mnt.join("wals/0000000100000000");
    let archived_now: Vec<String> = files(&wals);
    assert!(
        archived_now.iter().all(|n| !n.starts_with('.')),
        "staging file left: {archived_now:?}"
    );
    let recorded = |mnt: &Path| -> Vec<String> {
        std::fs::read_to_string(mnt.join("wals/srv-xlog.db"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    for n in &names {
        let inc = incoming(&env).join(n).exists();
        let arc = wals.join(n).exists();
        assert!(inc || arc, "{n} lost");
        if !inc {
            assert!(
                recorded(&mnt).contains(n),
                "{n} left incoming/ before xlog.db had it"
            );
        }
        if arc {
            assert!(
                std::fs::read(wals.join(n)).unwrap() == segment(n, SYSID, 1),
                "{n} half-written"
            );
        }
    }
    // With room again, the rerun completes the archive, each segment once.
    let st = Command::new("mount")
        .args(["-o", "remount,size=20m", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(files(&incoming(&env)).is_empty());
    let mut all = recorded(&mnt);
    all.sort();
    assert_eq!(all, names);
}

/// With both archivers on, the same segment can sit in streaming/ and
/// incoming/ in one run; both are worked in parallel. It is archived once,
/// recorded once; a different content under the same name goes to errors/.
#[test]
fn same_segment_from_streaming_and_incoming_in_one_run() {
    let env = TestEnv::new();
    config(
        &env,
        "gzip",
        "streaming_archiver = on\nslot_name = barman\nstreaming_conninfo = host=/nonexistent\n",
    );
    let dir = env.home().join("srv/streaming");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, last) = (seg_name(1), seg_name(2), seg_name(3));
    for n in [&a, &b, &last] {
        std::fs::write(dir.join(n), segment(n, SYSID, 1)).unwrap();
    }
    put(&env, &a, &segment(&a, SYSID, 1));
    put(&env, &b, &segment(&b, SYSID, 8));
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "Processing xlog segments from streaming for srv (batch size: 2)\n\t{a}\n\t{b}\n\
             Processing xlog segments from file archival for srv\n\t{a}\n\t{b}\n\
             \tError: {b} is already present in server srv. File moved to errors directory.\n"
        )
    );
    let names: Vec<String> = xlogdb(&env).into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(names, vec![a.clone(), b.clone()]);
    assert_eq!(archived(&env, &b), segment(&b, SYSID, 1));
    assert!(files(&incoming(&env)).is_empty());
    assert_eq!(files(&env.home().join("srv/errors")).len(), 1);
    assert!(stray(&env).is_empty(), "{:?}", stray(&env));
}

/// Barman's archive hooks run per file, in order, with its environment; a
/// pre retry hook returning 63 stops the run and leaves the rest queued.
#[test]
fn archive_hooks_run_with_barmans_environment_and_can_stop_the_run() {
    let env = TestEnv::new();
    let log = env.root().join("hooks.log");
    let stop_at = seg_name(3);
    config(
        &env,
        "gzip",
        &format!(
            "pre_archive_script = echo \"pre $BARMAN_PHASE $BARMAN_HOOK $BARMAN_SEGMENT $BARMAN_SIZE $BARMAN_COMPRESSION|$BARMAN_SERVER $BARMAN_RETRY $BARMAN_FILE\" >> {log}\n\
             post_archive_script = echo \"post $BARMAN_PHASE $BARMAN_HOOK $BARMAN_SEGMENT $BARMAN_COMPRESSION $BARMAN_FILE\" >> {log}\n\
             pre_archive_retry_script = test \"$BARMAN_SEGMENT\" != {stop_at} || exit 63\n",
            log = log.display()
        ),
    );
    for i in 1..=4 {
        put(&env, &seg_name(i), &segment(&seg_name(i), SYSID, 1));
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let home = env.home().display().to_string();
    let (a, b) = (seg_name(1), seg_name(2));
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        format!("pre pre archive_script {a} {SEG} |srv 0 {home}/srv/incoming/{a}")
    );
    assert!(
        lines[1].starts_with(&format!(
            "post post archive_script {a} gzip {home}/srv/wals/0000000100000000/{a}"
        )),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with(&format!("pre pre archive_script {b} ")));
    assert!(lines[3].starts_with(&format!("post post archive_script {b} ")));
    assert!(lines[4].starts_with(&format!("pre pre archive_script {stop_at} ")));
    let names: Vec<String> = xlogdb(&env).into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(names, vec![a, b]);
    assert_eq!(files(&incoming(&env)), vec![seg_name(3), seg_name(4)]);
}

/// A crash in the middle of an xlog.db append leaves a torn last line. The
/// rerun must not count the torn name as recorded: it appends a whole line
/// for it (after cutting the fragment) before the source goes.
#[test]
fn torn_xlogdb_tail_is_repaired_by_the_rerun() {
    let env = TestEnv::new();
    config(&env, "none", "");
    let names: Vec<String> = (1..=3).map(seg_name).collect();
    for n in &names[..2] {
        put(&env, n, &segment(n, SYSID, 1));
    }
    assert_eq!(env.barman(&["archive-wal", "srv"]).code, 0);
    // As if the third file was renamed into place, then the process died
    // while appending its line.
    let third = &names[2];
    let data = segment(third, SYSID, 1);
    std::fs::write(
        env.home().join("srv/wals/0000000100000000").join(third),
        &data,
    )
    .unwrap();
    put(&env, third, &data);
    let db = env.home().join("srv/wals/srv-xlog.db");
    let mut text = std::fs::read_to_string(&db).unwrap();
    text.push_str(&format!("{third}\t1048576\t17955"));
    std::fs::write(&db, text).unwrap();

    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&db).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let recorded: Vec<String> = xlogdb(&env).into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(recorded, names);
    assert!(xlogdb(&env).iter().all(|l| l.len() == 5), "{text}");
    assert!(files(&incoming(&env)).is_empty());
}

/// incoming/ on a bind mount of the archive's filesystem: same st_dev, but
/// link(2) across mounts fails with EXDEV. Intake falls back to a copy.
#[test]
fn uncompressed_intake_falls_back_to_copy_when_links_fail() {
    let env = TestEnv::new();
    let real = env.root().join("real-incoming");
    let bound = env.root().join("incoming");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&bound).unwrap();
    let _guard = mount(&["--bind", real.to_str().unwrap()], &bound);
    config(
        &env,
        "none",
        &format!("incoming_wals_directory = {}\n", bound.display()),
    );
    let names: Vec<String> = (1..=3).map(seg_name).collect();
    for n in &names {
        std::fs::write(bound.join(n), segment(n, SYSID, 2)).unwrap();
    }
    let run = env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for n in &names {
        assert!(archived(&env, n) == segment(n, SYSID, 2), "{n}");
    }
    assert!(files(&bound).is_empty());
    assert!(stray(&env).is_empty(), "{:?}", stray(&env));
}
