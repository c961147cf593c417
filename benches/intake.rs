//! WAL intake end to end through the library: N segments in incoming/,
//! `archiver::run` with fsync on (staging, renames, directory fsyncs,
//! xlog.db), per codec, on all cores. Reports MiB/s of WAL taken in.

use std::path::Path;

use barman::catalog::ServerCatalog;
use barman::compression::{Codec, CustomFilters, Settings};
use barman::wal::archiver::{self, Report, ServerIntake};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

mod common;

const N: u32 = 32;

struct Quiet;
impl Report for Quiet {
    fn line(&mut self, _: &str) {}
    fn error(&mut self, t: &str) {
        panic!("{t}")
    }
    fn warning(&mut self, t: &str) {
        panic!("{t}")
    }
}

fn intake(home: &Path, codec: Option<(Codec, i32)>) -> ServerIntake {
    let d = |p: &str| home.join(p);
    ServerIntake {
        name: "bench".into(),
        catalog: ServerCatalog {
            name: "bench".into(),
            barman_home: home.to_path_buf(),
            backup_directory: home.to_path_buf(),
            basebackups_directory: d("base"),
            wals_directory: d("wals"),
            incoming_wals_directory: d("incoming"),
            streaming_wals_directory: d("streaming"),
            errors_directory: d("errors"),
            xlogdb_directory: d("wals"),
        },
        lock_dir: home.to_path_buf(),
        compression: codec.map(|(codec, level)| Settings {
            codec,
            name: codec.name().into(),
            level,
            custom: CustomFilters::default(),
        }),
        custom: CustomFilters::default(),
        unidentified: None,
        sysid: None,
        streaming: false,
        archiver: true,
        archiver_batch_size: 0,
        streaming_batch_size: 0,
        jobs: barman::pipeline::cores(),
        hooks: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (1..=N)
        .map(|i| format!("00000001{:08X}{:08X}", i / 256, i % 256))
        .collect();
    let segments: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            let mut s = common::segment(n);
            // Real names need real page addresses: rebuild the header.
            let header = barman::wal::header::synthetic_segment(
                &barman::wal::WalName::parse(n).unwrap(),
                7_311_862_123_650_354_339,
                common::SEG,
                |_| 0,
            );
            s[..40].copy_from_slice(&header[..40]);
            s
        })
        .collect();
    let mut g = c.benchmark_group("intake");
    g.throughput(Throughput::Bytes(u64::from(N) * u64::from(common::SEG)));
    g.sample_size(10);
    for (label, codec) in [
        ("none", None),
        ("gzip-6", Some((Codec::Gzip, 6))),
        ("zstd-4", Some((Codec::Zstd, 4))),
        ("lz4", Some((Codec::Lz4, 6))),
    ] {
        g.bench_function(format!("{N}x16MiB/{label}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::Builder::new()
                        .prefix("barman-rs-bench-")
                        .tempdir_in(
                            std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
                        )
                        .unwrap();
                    std::fs::create_dir_all(dir.path().join("incoming")).unwrap();
                    for (n, s) in names.iter().zip(&segments) {
                        std::fs::write(dir.path().join("incoming").join(n), s).unwrap();
                    }
                    // Start clean: the copies above must not be flushed by our fsyncs.
                    nix::unistd::sync();
                    dir
                },
                |dir| {
                    let srv = intake(dir.path(), codec);
                    let s = archiver::run(std::slice::from_ref(&srv), srv.jobs, false, &mut Quiet);
                    assert_eq!(s.archived, N as usize);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
