//! PostgreSQL data-page checksums (`pg_checksum_page`, 8 KiB pages,
//! little-endian words) and the rule for judging a page read from a live
//! cluster: new (all-zero) pages and pages written after the backup started
//! are left to WAL replay, as PostgreSQL's own base backup and pgBackRest do.

pub const BLCKSZ: usize = 8192;
/// Blocks per relation segment file (1 GiB / 8 KiB).
pub const RELSEG_SIZE: u64 = 131072;

const N_SUMS: usize = 32;
const FNV_PRIME: u32 = 16777619;
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

#[inline(always)]
fn comp(sum: u32, value: u32) -> u32 {
    let tmp = sum ^ value;
    tmp.wrapping_mul(FNV_PRIME) ^ (tmp >> 17)
}

/// `pg_checksum_page(page, blkno)`: the checksum field itself counts as 0.
pub fn checksum(page: &[u8], blkno: u64) -> u16 {
    debug_assert_eq!(page.len(), BLCKSZ);
    let mut sums = BASE_OFFSETS;
    for (row, chunk) in page.chunks_exact(4 * N_SUMS).enumerate() {
        for (j, w) in chunk.chunks_exact(4).enumerate() {
            let mut v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            // pd_checksum: bytes 8..10 of the page, the low half of word 2.
            if row == 0 && j == 2 {
                v &= 0xFFFF_0000;
            }
            sums[j] = comp(sums[j], v);
        }
    }
    for _ in 0..2 {
        for s in sums.iter_mut() {
            *s = comp(*s, 0);
        }
    }
    let folded = sums.iter().fold(0u32, |a, s| a ^ s) ^ (blkno as u32);
    ((folded % 65535) + 1) as u16
}

fn stored(page: &[u8]) -> u16 {
    u16::from_le_bytes([page[8], page[9]])
}

/// The page LSN (pd_lsn: xlogid, xrecoff).
pub fn lsn(page: &[u8]) -> u64 {
    let hi = u32::from_le_bytes([page[0], page[1], page[2], page[3]]) as u64;
    let lo = u32::from_le_bytes([page[4], page[5], page[6], page[7]]) as u64;
    (hi << 32) | lo
}

/// Whether a page read during a backup that started at `start_lsn` is
/// acceptable: valid checksum, all zeros, or newer than the start.
pub fn acceptable(page: &[u8], blkno: u64, start_lsn: u64) -> bool {
    let pd_upper = u16::from_le_bytes([page[14], page[15]]);
    if pd_upper == 0 {
        return page.iter().all(|b| *b == 0);
    }
    lsn(page) >= start_lsn || checksum(page, blkno) == stored(page)
}

/// The blocks of `data` (blocks `first_in_file..` of `file`, a relation
/// segment whose block 0 is relation block `first`) that fail
/// [`acceptable`] twice: a failing page is read again from `file` first, as
/// a torn read under concurrent writes looks corrupt once and fine the
/// second time (pgBackRest found so).
pub fn bad_blocks(
    file: &std::fs::File,
    data: &[u8],
    first: u64,
    first_in_file: u64,
    start_lsn: u64,
) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let mut bad = Vec::new();
    for (i, pg) in data.chunks_exact(BLCKSZ).enumerate() {
        let in_file = first_in_file + i as u64;
        if !acceptable(pg, first + in_file, start_lsn) {
            let mut again = vec![0u8; BLCKSZ];
            let n = file
                .read_at(&mut again, in_file * BLCKSZ as u64)
                .unwrap_or(0);
            if n == BLCKSZ && !acceptable(&again, first + in_file, start_lsn) {
                bad.push(in_file);
            }
        }
    }
    bad
}

/// The segment number of a relation file name (`16384`, `16384.2`,
/// `16384_fsm`), None for files that are not relation data.
pub fn relation_segment(name: &str) -> Option<u64> {
    let (stem, seg) = match name.split_once('.') {
        Some((s, n)) => (s, n.parse::<u64>().ok()?),
        None => (name, 0),
    };
    let base = stem
        .strip_suffix("_fsm")
        .or_else(|| stem.strip_suffix("_vm"))
        .or_else(|| stem.strip_suffix("_init"))
        .unwrap_or(stem);
    (!base.is_empty() && base.bytes().all(|b| b.is_ascii_digit())).then_some(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_relation_files() {
        assert_eq!(relation_segment("16384"), Some(0));
        assert_eq!(relation_segment("16384.3"), Some(3));
        assert_eq!(relation_segment("16384_fsm"), Some(0));
        assert_eq!(relation_segment("pg_filenode.map"), None);
        assert_eq!(relation_segment("PG_VERSION"), None);
    }

    #[test]
    fn a_page_with_its_checksum_is_acceptable_and_a_flipped_bit_is_not() {
        let mut page = vec![0u8; BLCKSZ];
        page[12..14].copy_from_slice(&24u16.to_le_bytes()); // pd_lower
        page[14..16].copy_from_slice(&8000u16.to_le_bytes()); // pd_upper
        page[100] = 7;
        let c = checksum(&page, 5);
        page[8..10].copy_from_slice(&c.to_le_bytes());
        assert!(acceptable(&page, 5, u64::MAX));
        assert!(
            !acceptable(&page, 6, u64::MAX),
            "the block number is mixed in"
        );
        page[200] ^= 1;
        assert!(!acceptable(&page, 5, u64::MAX));
        assert!(
            acceptable(&page, 5, 0),
            "newer than the backup start: WAL fixes it"
        );
        assert!(acceptable(&vec![0u8; BLCKSZ], 0, u64::MAX));
    }
}
