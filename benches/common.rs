//! WAL-like data for the benchmarks: a valid segment header, then 8 KiB
//! pages mixing incompressible bytes (about a third) with repetitive tuple
//! data, which compresses about 3x with zstd, as the real WAL of the shared
//! bench does (3.2x). `BENCH_WAL_DIR` points at real segments instead.

use barman::wal::header::synthetic_segment;
use barman::wal::WalName;

pub const SEG: u32 = 16 << 20;

pub fn segment(name: &str) -> Vec<u8> {
    if let Some(dir) = std::env::var_os("BENCH_WAL_DIR") {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        if let Some(f) = files.first() {
            return std::fs::read(f).unwrap();
        }
    }
    let n = WalName::parse(name).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ name.len() as u64;
    let mut data = synthetic_segment(&n, 7_311_862_123_650_354_339, SEG, |_| 0);
    let tuple = b"INSERT pgbench_accounts aid=000123 bid=1 abalance=0 filler=                    ";
    for (i, chunk) in data[64..].chunks_mut(64).enumerate() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 10 < 3 {
            for b in chunk.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
        } else {
            let off = i % tuple.len();
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = tuple[(off + j) % tuple.len()];
            }
            chunk[0] = (i % 251) as u8;
        }
    }
    data
}
