//! The interop gate with real Barman 3.19.1 (installed from PyPI by
//! `.ci/run`; `BARMAN_PY_BIN` or /opt/barman-rs-peers/barman/bin/barman):
//! Barman serves every segment barman-rs archived, with every codec, and
//! rebuilds the same xlog.db; barman-rs serves and extends an archive
//! Barman wrote.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestEnv;
use crate::wal_intake::{config, put, seg_name, segment, SYSID};

pub(crate) fn python_barman() -> PathBuf {
    let path = std::env::var_os("BARMAN_PY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/barman-rs-peers/barman/bin/barman"));
    assert!(
        path.exists(),
        "Barman 3.19.1 not found at {} (.ci/run installs it; set BARMAN_PY_BIN)",
        path.display()
    );
    path
}

pub(crate) fn barman_py(env: &TestEnv, args: &[&str]) -> std::process::Output {
    Command::new(python_barman())
        .arg("-c")
        .arg(env.config_path())
        .args(args)
        .current_dir("/")
        .output()
        .expect("run Barman")
}

#[test]
fn barman_reads_what_we_archive_with_every_codec() {
    for comp in ["gzip", "bzip2", "lz4", "zstd", "xz", "none"] {
        let env = TestEnv::new();
        config(&env, comp, "");
        let names: Vec<String> = (0xFE..0x101).map(seg_name).collect();
        for n in &names {
            put(&env, n, &segment(n, SYSID, 4));
        }
        let run = env.barman(&["archive-wal", "srv"]);
        assert_eq!(run.code, 0, "{comp}: {}", run.stderr);
        let ours = std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db")).unwrap();
        for n in &names {
            let out = barman_py(&env, &["get-wal", "srv", n]);
            assert!(
                out.status.success(),
                "{comp} {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stdout == segment(n, SYSID, 4),
                "{comp} {n}: Barman served different bytes"
            );
        }
        // Barman rebuilding the catalog from our files finds what we wrote.
        let out = barman_py(&env, &["rebuild-xlogdb", "srv"]);
        assert!(
            out.status.success(),
            "{comp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db")).unwrap();
        assert_eq!(
            theirs, ours,
            "{comp}: Barman's rebuilt xlog.db differs from ours"
        );
    }
}

#[test]
fn we_serve_and_extend_an_archive_barman_wrote() {
    for comp in ["gzip", "bzip2", "lz4", "zstd", "xz"] {
        let env = TestEnv::new();
        config(&env, comp, "");
        let first: Vec<String> = (1..=3).map(seg_name).collect();
        for n in &first {
            put(&env, n, &segment(n, SYSID, 5));
        }
        let out = barman_py(&env, &["archive-wal", "srv"]);
        assert!(
            out.status.success(),
            "{comp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for n in &first {
            let out = env.output(&["get-wal", "srv", n]);
            assert!(
                out.status.success(),
                "{comp} {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == segment(n, SYSID, 5), "{comp} {n}");
        }
        // We continue the same archive: a same-content resend is dropped,
        // new segments are appended after Barman's lines.
        put(&env, &first[2], &segment(&first[2], SYSID, 5));
        for i in 4..=5 {
            put(&env, &seg_name(i), &segment(&seg_name(i), SYSID, 5));
        }
        let run = env.barman(&["archive-wal", "srv"]);
        assert_eq!(run.code, 0, "{comp}: {}", run.stderr);
        let db = std::fs::read_to_string(env.home().join("srv/wals/srv-xlog.db")).unwrap();
        let names: Vec<&str> = db.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(names, (1..=5).map(seg_name).collect::<Vec<_>>(), "{comp}");
        for l in db.lines() {
            assert_eq!(l.split('\t').nth(3), Some(comp), "{comp}: {l}");
        }
        // And Barman reads the result.
        let out = barman_py(&env, &["get-wal", "srv", &seg_name(5)]);
        assert!(out.stdout == segment(&seg_name(5), SYSID, 5), "{comp}");
    }
}
