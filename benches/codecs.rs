//! Single-core codec throughput on one 16 MiB WAL-like segment, at the
//! levels Barman's `compression_level = medium` maps to (gzip 6, bzip2 5,
//! zstd 4, lz4: lz4_flex has only the fast mode), plus gzip through
//! flate2/zlib-rs beside libdeflate (the one we use), and blake3.

use std::io::Write;

use barman::compression::{self, Codec, Compressor, CustomFilters, Settings};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;

fn settings(codec: Codec, level: i32) -> Settings {
    Settings {
        codec,
        name: codec.name().into(),
        level,
        custom: CustomFilters::default(),
    }
}

fn bench(c: &mut Criterion) {
    let data = common::segment("000000010000000000000001");
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for (codec, level) in [
        (Codec::Gzip, 6),
        (Codec::Bzip2, 5),
        (Codec::Zstd, 4),
        (Codec::Zstd, 3),
        (Codec::Lz4, 6),
    ] {
        let mut comp = Compressor::new(&settings(codec, level)).unwrap();
        let mut out = Vec::new();
        comp.compress(&data, "000000010000000000000001", &mut out)
            .unwrap();
        eprintln!(
            "{}-{level}: ratio {:.2}",
            codec.name(),
            data.len() as f64 / out.len() as f64
        );
        g.bench_function(format!("compress/{}-{level}", codec.name()), |b| {
            b.iter(|| {
                comp.compress(&data, "000000010000000000000001", &mut out)
                    .unwrap()
            })
        });
        let packed = out.clone();
        let mut back = Vec::new();
        g.bench_function(format!("decompress/{}-{level}", codec.name()), |b| {
            b.iter(|| {
                compression::decompress(codec, &packed, &CustomFilters::default(), &mut back)
                    .unwrap()
            })
        });
    }
    g.bench_function("compress/gzip-6-flate2-zlib-rs", |b| {
        b.iter(|| {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len()),
                flate2::Compression::new(6),
            );
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        })
    });
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&data)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
