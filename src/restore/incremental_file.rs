//! The two formats an incremental backup (PostgreSQL 17+) adds, read as
//! pg_combinebackup reads them, pure over bytes (fuzzed):
//!
//! - `INCREMENTAL.<relation file>`: a header (magic `0xd3ae1f0d`, the number
//!   of blocks it carries, the truncation block length, then one relative
//!   block number per block; every field a 4-byte integer in the server's
//!   byte order), padded with zeros to a multiple of BLCKSZ when it carries
//!   blocks, then the blocks in header order.
//! - the `INCREMENTAL FROM LSN` / `INCREMENTAL FROM TLI` lines of
//!   `backup_label`, which chain a backup to its parent, and which the
//!   combined backup's label must lose (it is then a full backup's label).
//!
//! The header parser is stricter than pg_combinebackup on input the server
//! never writes: a block number past the segment or given twice is refused
//! rather than trusted (pg_combinebackup only asserts the first and lets
//! the last copy win for the second).

use crate::backup::page::{BLCKSZ, RELSEG_SIZE};
use crate::wal::name::parse_lsn;

pub const INCREMENTAL_MAGIC: u32 = 0xd3ae_1f0d;
/// Name prefix of an incremental relation file.
pub const PREFIX: &str = "INCREMENTAL.";
/// Magic, block count, truncation block length.
const FIXED: usize = 12;

/// The header of an `INCREMENTAL.` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Relative block numbers (within the segment), in the order of the
    /// blocks that follow the header.
    pub blocks: Vec<u32>,
    /// The reconstructed file is at least this many blocks long; blocks
    /// below it that this file lacks come from the backups before it.
    pub truncation_block_length: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("truncated incremental header: {have} of {need} bytes")]
    Short { need: usize, have: usize },
    #[error("bad incremental magic number 0x{0:x}, expected 0x{INCREMENTAL_MAGIC:x}")]
    Magic(u32),
    #[error("block count {0} exceeds the segment size {RELSEG_SIZE}")]
    BlockCount(u32),
    #[error("truncation block length {0} exceeds the segment size {RELSEG_SIZE}")]
    TruncationLength(u32),
    #[error("block number {0} is past the segment size {RELSEG_SIZE}")]
    BlockNumber(u32),
    #[error("block number {0} appears twice")]
    Duplicate(u32),
}

fn word(b: &[u8], at: usize) -> u32 {
    // The server writes its native order, and pg_combinebackup reads it
    // back natively: a backup is only combinable on its own architecture.
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Bytes from the start of the file to the first block's data: the fields,
/// rounded up to a multiple of BLCKSZ only when there are blocks.
pub fn header_len(n_blocks: usize) -> u64 {
    let raw = (FIXED + 4 * n_blocks) as u64;
    let b = BLCKSZ as u64;
    if n_blocks > 0 && !raw.is_multiple_of(b) {
        raw + b - raw % b
    } else {
        raw
    }
}

impl Header {
    pub fn header_len(&self) -> u64 {
        header_len(self.blocks.len())
    }

    /// The exact size of a well-formed file with this header.
    pub fn file_len(&self) -> u64 {
        self.header_len() + (self.blocks.len() * BLCKSZ) as u64
    }

    /// Blocks in the reconstructed file: the truncation block length, or
    /// up to the highest block carried if that is further.
    pub fn reconstructed_blocks(&self) -> u32 {
        self.blocks
            .iter()
            .map(|b| b + 1)
            .fold(self.truncation_block_length, u32::max)
    }
}

/// Parses the header at the start of `bytes` (which may hold more of the
/// file; at most 12 + 4 × 131072 bytes are looked at). The padding is not
/// read, as pg_combinebackup does not read it.
pub fn parse_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    if bytes.len() < FIXED {
        return Err(HeaderError::Short {
            need: FIXED,
            have: bytes.len(),
        });
    }
    let magic = word(bytes, 0);
    if magic != INCREMENTAL_MAGIC {
        return Err(HeaderError::Magic(magic));
    }
    let n = word(bytes, 4);
    if u64::from(n) > RELSEG_SIZE {
        return Err(HeaderError::BlockCount(n));
    }
    let truncation_block_length = word(bytes, 8);
    if u64::from(truncation_block_length) > RELSEG_SIZE {
        return Err(HeaderError::TruncationLength(truncation_block_length));
    }
    let need = FIXED + 4 * n as usize;
    if bytes.len() < need {
        return Err(HeaderError::Short {
            need,
            have: bytes.len(),
        });
    }
    let mut seen = vec![0u64; (RELSEG_SIZE as usize).div_ceil(64)];
    let mut blocks = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let b = word(bytes, FIXED + 4 * i);
        if u64::from(b) >= RELSEG_SIZE {
            return Err(HeaderError::BlockNumber(b));
        }
        let (w, bit) = (b as usize / 64, 1u64 << (b % 64));
        if seen[w] & bit != 0 {
            return Err(HeaderError::Duplicate(b));
        }
        seen[w] |= bit;
        blocks.push(b);
    }
    Ok(Header {
        blocks,
        truncation_block_length,
    })
}

/// The header bytes the server would write (with the zero padding): for
/// tests and the fuzz target's round trip.
pub fn encode_header(h: &Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(h.header_len() as usize);
    out.extend_from_slice(&INCREMENTAL_MAGIC.to_ne_bytes());
    out.extend_from_slice(&(h.blocks.len() as u32).to_ne_bytes());
    out.extend_from_slice(&h.truncation_block_length.to_ne_bytes());
    for b in &h.blocks {
        out.extend_from_slice(&b.to_ne_bytes());
    }
    out.resize(h.header_len() as usize, 0);
    out
}

/// What pg_combinebackup reads from a `backup_label` to check a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLabel {
    pub start_lsn: u64,
    pub start_tli: u32,
    /// `INCREMENTAL FROM LSN` and `TLI`: the parent's start; None for a
    /// full backup.
    pub from: Option<(u64, u32)>,
}

const START_LSN: &[u8] = b"START WAL LOCATION: ";
const START_TLI: &[u8] = b"START TIMELINE: ";
const FROM_LSN: &[u8] = b"INCREMENTAL FROM LSN: ";
const FROM_TLI: &[u8] = b"INCREMENTAL FROM TLI: ";

/// Lines as pg_combinebackup splits them: each with its `\n`, the last one
/// possibly without.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|b| *b == b'\n')
}

fn tli(v: &[u8]) -> Option<u32> {
    let digits = v.strip_suffix(b"\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn nonzero(t: u32) -> Result<u32, String> {
    if t == 0 {
        Err("invalid TLI".into())
    } else {
        Ok(t)
    }
}

/// Parses the lines of a `backup_label` that chain backups, with
/// pg_combinebackup's rules: a start location ended by a space, a start
/// timeline ended by a newline and not 0, and both `INCREMENTAL FROM`
/// lines or neither. The error says what is wrong.
pub fn parse_chain_label(text: &[u8]) -> Result<ChainLabel, String> {
    let (mut lsn, mut tl, mut from_lsn, mut from_tli) = (None, None, None, None);
    for line in lines(text) {
        if let Some(v) = line.strip_prefix(START_LSN) {
            let end = v.iter().position(|b| *b == b' ');
            let text = end.and_then(|e| std::str::from_utf8(&v[..e]).ok());
            lsn = Some(
                text.and_then(parse_lsn)
                    .ok_or("could not parse START WAL LOCATION")?,
            );
        } else if let Some(v) = line.strip_prefix(START_TLI) {
            tl = Some(nonzero(tli(v).ok_or("could not parse START TIMELINE")?)?);
        } else if let Some(v) = line.strip_prefix(FROM_LSN) {
            let text = v
                .strip_suffix(b"\n")
                .and_then(|v| std::str::from_utf8(v).ok());
            from_lsn = Some(
                text.and_then(parse_lsn)
                    .ok_or("could not parse INCREMENTAL FROM LSN")?,
            );
        } else if let Some(v) = line.strip_prefix(FROM_TLI) {
            from_tli = Some(nonzero(
                tli(v).ok_or("could not parse INCREMENTAL FROM TLI")?,
            )?);
        }
    }
    let start_lsn = lsn.ok_or("could not find START WAL LOCATION")?;
    let start_tli = tl.ok_or("could not find START TIMELINE")?;
    let from = match (from_lsn, from_tli) {
        (Some(l), Some(t)) => Some((l, t)),
        (None, None) => None,
        (Some(_), None) => return Err("INCREMENTAL FROM LSN requires INCREMENTAL FROM TLI".into()),
        (None, Some(_)) => return Err("INCREMENTAL FROM TLI requires INCREMENTAL FROM LSN".into()),
    };
    Ok(ChainLabel {
        start_lsn,
        start_tli,
        from,
    })
}

/// The label of the combined backup: the newest one's, byte for byte,
/// without its `INCREMENTAL FROM` lines.
pub fn strip_incremental_lines(text: &[u8]) -> Vec<u8> {
    lines(text)
        .filter(|l| !l.starts_with(FROM_LSN) && !l.starts_with(FROM_TLI))
        .flatten()
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_pads_only_with_blocks() {
        let h = Header {
            blocks: vec![3, 0, 7],
            truncation_block_length: 5,
        };
        let bytes = encode_header(&h);
        assert_eq!(bytes.len(), BLCKSZ);
        assert_eq!(&bytes[..4], &0xd3ae_1f0du32.to_ne_bytes());
        assert_eq!(word(&bytes, 4), 3, "the block count comes second");
        assert_eq!(word(&bytes, 8), 5, "the truncation length third");
        assert_eq!(parse_header(&bytes), Ok(h.clone()));
        assert_eq!(h.reconstructed_blocks(), 8);
        assert_eq!(h.file_len(), 4 * BLCKSZ as u64);

        let empty = Header {
            blocks: vec![],
            truncation_block_length: 9,
        };
        assert_eq!(encode_header(&empty).len(), 12, "no padding without blocks");
        assert_eq!(empty.file_len(), 12);
        assert_eq!(empty.reconstructed_blocks(), 9);
        // 2045 block numbers fill one block exactly: no padding block more.
        assert_eq!(header_len(2045), BLCKSZ as u64);
        assert_eq!(header_len(2046), 2 * BLCKSZ as u64);
    }

    #[test]
    fn header_errors() {
        let good = encode_header(&Header {
            blocks: vec![1, 2],
            truncation_block_length: 2,
        });
        assert_eq!(
            parse_header(&good[..7]),
            Err(HeaderError::Short { need: 12, have: 7 })
        );
        assert_eq!(
            parse_header(&good[..15]),
            Err(HeaderError::Short { need: 20, have: 15 })
        );
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(matches!(parse_header(&bad), Err(HeaderError::Magic(_))));
        let set = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            parse_header(&b)
        };
        assert_eq!(set(4, 131073), Err(HeaderError::BlockCount(131073)));
        assert_eq!(set(8, 131073), Err(HeaderError::TruncationLength(131073)));
        assert_eq!(set(12, 131072), Err(HeaderError::BlockNumber(131072)));
        assert_eq!(set(12, 2), Err(HeaderError::Duplicate(2)));
        assert_eq!(
            HeaderError::Magic(0x1234).to_string(),
            "bad incremental magic number 0x1234, expected 0xd3ae1f0d"
        );
    }

    const INCR: &str = "START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n\
        CHECKPOINT LOCATION: 0/6000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
        START TIME: 2025-01-01 00:00:00 UTC\nLABEL: pg_basebackup base backup\n\
        START TIMELINE: 1\nINCREMENTAL FROM LSN: 0/4000028\nINCREMENTAL FROM TLI: 1\n";

    #[test]
    fn chain_labels() {
        let l = parse_chain_label(INCR.as_bytes()).unwrap();
        assert_eq!(l.start_lsn, 0x6000028);
        assert_eq!(l.start_tli, 1);
        assert_eq!(l.from, Some((0x4000028, 1)));
        let full = strip_incremental_lines(INCR.as_bytes());
        assert!(full.ends_with(b"START TIMELINE: 1\n"));
        let want = INCR
            .replace("INCREMENTAL FROM LSN: 0/4000028\n", "")
            .replace("INCREMENTAL FROM TLI: 1\n", "");
        assert_eq!(full, want.as_bytes());
        let l = parse_chain_label(&full).unwrap();
        assert_eq!(l.from, None);
        assert_eq!(l.start_lsn, 0x6000028);

        let only_lsn = INCR.replace("INCREMENTAL FROM TLI: 1\n", "");
        assert_eq!(
            parse_chain_label(only_lsn.as_bytes()).unwrap_err(),
            "INCREMENTAL FROM LSN requires INCREMENTAL FROM TLI"
        );
        let no_tli = INCR.replace("START TIMELINE: 1\n", "");
        assert_eq!(
            parse_chain_label(no_tli.as_bytes()).unwrap_err(),
            "could not find START TIMELINE"
        );
        let zero = INCR.replace("START TIMELINE: 1", "START TIMELINE: 0");
        assert_eq!(
            parse_chain_label(zero.as_bytes()).unwrap_err(),
            "invalid TLI"
        );
        let unended = INCR.replace(" (file 000000010000000000000006)", "");
        assert_eq!(
            parse_chain_label(unended.as_bytes()).unwrap_err(),
            "could not parse START WAL LOCATION"
        );
    }
}
