//! Validation of a WAL file's content before it is archived, pure over the
//! uncompressed bytes. Barman archives whatever is named like a segment; we
//! check what PostgreSQL itself checks when it reads a segment back
//! (`XLogReaderValidatePageHeader`): the long page header of the first page.
//!
//! Layout of `XLogLongPageHeaderData` (native endian, 40 bytes):
//! magic u16 @0, info u16 @2, tli u32 @4, pageaddr u64 @8, rem_len u32 @16,
//! sysid u64 @24, seg_size u32 @32, xlog_blcksz u32 @36.

use super::name::{Kind, WalName};

/// `XLOG_PAGE_MAGIC` of every major version we know.
const MAGICS: &[(u16, u32)] = &[
    (0xD097, 10),
    (0xD098, 11),
    (0xD101, 12),
    (0xD106, 13),
    (0xD10D, 14),
    (0xD110, 15),
    (0xD113, 16),
    (0xD116, 17),
    (0xD118, 18),
];

/// Magics above the newest known one, up to here, are taken for a future
/// PostgreSQL release (each major has added 2 to 5): such a segment is
/// archived when the rest of its header is consistent, with a warning,
/// so a new release never stops the archive. Anything else is refused.
const NEWER_MAGIC_LIMIT: u16 = 0xD1FF;

fn known_major(magic: u16) -> Option<u32> {
    MAGICS.iter().find(|m| m.0 == magic).map(|m| m.1)
}

fn plausible_magic(magic: u16) -> bool {
    let newest = MAGICS[MAGICS.len() - 1].0;
    known_major(magic).is_some() || (newest < magic && magic <= NEWER_MAGIC_LIMIT)
}

const XLP_LONG_HEADER: u16 = 0x0002;
const LONG_HEADER_SIZE: usize = 40;

/// Why a file is refused. Each message completes "invalid WAL file: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("truncated: {got} bytes, the header says segments are {want} bytes")]
    Truncated { got: usize, want: u32 },
    #[error("too short for a WAL page header ({0} bytes)")]
    TooShort(usize),
    #[error("page magic {0:#06X} is not PostgreSQL 10 to 18's (nor a later release's)")]
    Magic(u16),
    #[error("the first page has no long header")]
    NoLongHeader,
    #[error("segment size {0} in the header is not a power of two between 1 MiB and 1 GiB")]
    SegSize(u32),
    #[error("block size {0} in the header is not a power of two between 1 kB and 64 kB")]
    BlockSize(u32),
    #[error("timeline {header} in the header, {name} in the name")]
    Timeline { header: u32, name: u32 },
    #[error("page address {} in the header, but the name's segment starts at {}", lsn(*header), lsn(*expected))]
    PageAddress { header: u64, expected: u64 },
    #[error("system identifier {got} differs from the server's {want} (identity.json)")]
    SystemId { got: u64, want: u64 },
    #[error("{0}")]
    Text(&'static str),
}

fn lsn(v: u64) -> String {
    format!("{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF)
}

/// What the header told us about a valid segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 0 when the magic is newer than every release we know.
    pub pg_major: u32,
    pub magic: u16,
    pub sysid: u64,
    pub seg_size: u32,
}

impl Header {
    /// The warning to give when the segment comes from a release newer
    /// than every one this build knows.
    pub fn unknown_release(&self) -> Option<String> {
        (self.pg_major == 0).then(|| {
            format!(
                "page magic {:#06X} is newer than PostgreSQL 18's: archived on the strength of \
                 its header (system identifier, segment size, page address, timeline)",
                self.magic
            )
        })
    }
}

/// Validates `data` as the content of the file `name`. `sysid` is the
/// server's known system identifier, if any. Returns the parsed header for
/// segments and partial segments (None for text files and for an unwritten,
/// all-zero partial file that pg_receivewal has only preallocated).
pub fn validate(
    name: &WalName,
    data: &[u8],
    sysid: Option<u64>,
) -> Result<Option<Header>, Invalid> {
    match name.kind {
        Kind::History => validate_history(data).map(|_| None),
        Kind::Backup => validate_backup_label(data).map(|_| None),
        Kind::Segment | Kind::Partial => {
            if name.kind == Kind::Partial
                && data.len() >= LONG_HEADER_SIZE
                && data[..LONG_HEADER_SIZE].iter().all(|&b| b == 0)
            {
                return Ok(None);
            }
            let h = validate_segment(name, data, sysid)?;
            Ok(Some(h))
        }
    }
}

fn validate_segment(name: &WalName, data: &[u8], sysid: Option<u64>) -> Result<Header, Invalid> {
    if data.len() < LONG_HEADER_SIZE {
        return Err(Invalid::TooShort(data.len()));
    }
    let raw_magic = u16::from_le_bytes([data[0], data[1]]);
    // PostgreSQL writes native byte order; accept a big-endian cluster too.
    let (magic, big) = if plausible_magic(raw_magic) {
        (raw_magic, false)
    } else if plausible_magic(raw_magic.swap_bytes()) {
        (raw_magic.swap_bytes(), true)
    } else {
        return Err(Invalid::Magic(raw_magic));
    };
    let u16_at = |o: usize| {
        let b = [data[o], data[o + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |o: usize| {
        let b: [u8; 4] = data[o..o + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_at = |o: usize| {
        let b: [u8; 8] = data[o..o + 8].try_into().unwrap();
        if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    };
    let pg_major = known_major(magic).unwrap_or(0);
    if u16_at(2) & XLP_LONG_HEADER == 0 {
        return Err(Invalid::NoLongHeader);
    }
    let seg_size = u32_at(32);
    if !seg_size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&seg_size) {
        return Err(Invalid::SegSize(seg_size));
    }
    let blcksz = u32_at(36);
    if !blcksz.is_power_of_two() || !(1024..=65536).contains(&blcksz) {
        return Err(Invalid::BlockSize(blcksz));
    }
    // The first segment of a new timeline starts with the pages of the old
    // one, copied at promotion: a lower timeline in the header is normal
    // (PostgreSQL only forbids timelines going backwards between pages).
    // A higher one means a file renamed from a later timeline.
    let tli = u32_at(4);
    if tli > name.tli {
        return Err(Invalid::Timeline {
            header: tli,
            name: name.tli,
        });
    }
    if let Some(expected) = name.start_lsn(u64::from(seg_size)) {
        let header = u64_at(8);
        if header != expected {
            return Err(Invalid::PageAddress { header, expected });
        }
    }
    let sys = u64_at(24);
    if let Some(want) = sysid {
        if sys != want {
            return Err(Invalid::SystemId { got: sys, want });
        }
    }
    // A full segment is exactly the segment size; pg_receivewal's partial
    // files are preallocated to it, but other tools may write them shorter.
    let complete = match name.kind {
        Kind::Partial => data.len() <= seg_size as usize,
        _ => data.len() == seg_size as usize,
    };
    if !complete {
        return Err(Invalid::Truncated {
            got: data.len(),
            want: seg_size,
        });
    }
    Ok(Header {
        pg_major,
        magic,
        sysid: sys,
        seg_size,
    })
}

/// `.history`: text lines `<tli> <lsn> <reason>`, comments and blank lines.
fn validate_history(data: &[u8]) -> Result<(), Invalid> {
    let text = std::str::from_utf8(data).map_err(|_| Invalid::Text("history file is not text"))?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let tli_ok = fields.next().is_some_and(|t| t.parse::<u32>().is_ok());
        let lsn_ok = fields.next().is_some_and(|l| {
            l.split_once('/').is_some_and(|(a, b)| {
                u32::from_str_radix(a, 16).is_ok() && u32::from_str_radix(b, 16).is_ok()
            })
        });
        if !tli_ok || !lsn_ok {
            return Err(Invalid::Text(
                "history file line is not '<timeline> <lsn> <reason>'",
            ));
        }
    }
    Ok(())
}

/// `.backup`: the backup history file PostgreSQL writes at backup stop.
fn validate_backup_label(data: &[u8]) -> Result<(), Invalid> {
    if data.starts_with(b"START WAL LOCATION: ") {
        Ok(())
    } else {
        Err(Invalid::Text(
            "backup history file does not start with 'START WAL LOCATION: '",
        ))
    }
}

/// Builds the long page header of a segment, for tests and benchmarks that
/// need realistic WAL without a running server.
pub fn synthetic_segment(
    name: &WalName,
    sysid: u64,
    seg_size: u32,
    fill: impl Fn(usize) -> u8,
) -> Vec<u8> {
    synthetic_segment_with_magic(name, sysid, seg_size, 0xD110, fill)
}

/// As [`synthetic_segment`], with the page magic of another release.
pub fn synthetic_segment_with_magic(
    name: &WalName,
    sysid: u64,
    seg_size: u32,
    magic: u16,
    fill: impl Fn(usize) -> u8,
) -> Vec<u8> {
    let mut data: Vec<u8> = (0..seg_size as usize).map(fill).collect();
    data[0..2].copy_from_slice(&magic.to_le_bytes());
    data[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
    data[4..8].copy_from_slice(&name.tli.to_le_bytes());
    let addr = name.start_lsn(u64::from(seg_size)).unwrap_or(0);
    data[8..16].copy_from_slice(&addr.to_le_bytes());
    data[16..24].fill(0);
    data[24..32].copy_from_slice(&sysid.to_le_bytes());
    data[32..36].copy_from_slice(&seg_size.to_le_bytes());
    data[36..40].copy_from_slice(&8192u32.to_le_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str) -> WalName {
        WalName::parse(name).unwrap()
    }

    #[test]
    fn accepts_a_well_formed_segment() {
        let n = seg("000000010000000200000003");
        let data = synthetic_segment(&n, 42, 16 << 20, |i| (i % 7) as u8);
        let h = validate(&n, &data, Some(42)).unwrap().unwrap();
        assert_eq!((h.pg_major, h.sysid, h.seg_size), (15, 42, 16 << 20));
    }

    #[test]
    fn refuses_each_kind_of_damage() {
        let n = seg("000000010000000000000003");
        let good = synthetic_segment(&n, 42, 1 << 20, |_| 0);
        assert_eq!(
            validate(&n, &good[..1000], None),
            Err(Invalid::Truncated {
                got: 1000,
                want: 1 << 20
            })
        );
        assert_eq!(validate(&n, &good[..10], None), Err(Invalid::TooShort(10)));
        assert!(matches!(
            validate(&n, &good, Some(7)),
            Err(Invalid::SystemId { got: 42, want: 7 })
        ));
        // Promotion: timeline 2's first segment holds timeline 1's pages.
        let switched = seg("000000020000000000000003");
        assert!(validate(&switched, &good, None).is_ok());
        let later = synthetic_segment(&switched, 42, 1 << 20, |_| 0);
        assert!(matches!(
            validate(&n, &later, None),
            Err(Invalid::Timeline { header: 2, name: 1 })
        ));
        let moved = seg("000000010000000000000004");
        assert!(matches!(
            validate(&moved, &good, None),
            Err(Invalid::PageAddress { .. })
        ));
        let mut bad = good.clone();
        bad[0] = 0x12;
        assert!(matches!(validate(&n, &bad, None), Err(Invalid::Magic(_))));
        let random: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(validate(&n, &random, None).is_err());
    }

    #[test]
    fn every_major_and_the_next_ones() {
        let n = seg("000000010000000000000003");
        for (magic, major) in [
            (0xD106, 13),
            (0xD10D, 14),
            (0xD113, 16),
            (0xD116, 17),
            (0xD118, 18),
        ] {
            let data = synthetic_segment_with_magic(&n, 42, 1 << 20, magic, |_| 0);
            let h = validate(&n, &data, Some(42)).unwrap().unwrap();
            assert_eq!((h.pg_major, h.unknown_release()), (major, None));
        }
        // A future release: archived with a warning when consistent...
        let next = synthetic_segment_with_magic(&n, 42, 1 << 20, 0xD11B, |_| 0);
        let h = validate(&n, &next, Some(42)).unwrap().unwrap();
        assert_eq!(h.pg_major, 0);
        assert!(h.unknown_release().unwrap().contains("0xD11B"));
        // ...refused when not.
        assert!(matches!(
            validate(&n, &next, Some(7)),
            Err(Invalid::SystemId { .. })
        ));
        let moved = seg("000000010000000000000004");
        assert!(matches!(
            validate(&moved, &next, Some(42)),
            Err(Invalid::PageAddress { .. })
        ));
        for magic in [0xD200, 0xD000, 0x1234] {
            let odd = synthetic_segment_with_magic(&n, 42, 1 << 20, magic, |_| 0);
            assert_eq!(validate(&n, &odd, None), Err(Invalid::Magic(magic)));
        }
    }

    #[test]
    fn partial_and_text_files() {
        let p = seg("000000010000000000000003.partial");
        assert_eq!(validate(&p, &vec![0u8; 1 << 20], None), Ok(None));
        let data = synthetic_segment(&p, 1, 1 << 20, |_| 0);
        assert!(validate(&p, &data[..8192], None).unwrap().is_some());
        let h = seg("00000002.history");
        assert!(validate(&h, b"1\t0/3000000\tno recovery target specified\n", None).is_ok());
        assert!(validate(&h, b"\x00\x01binary", None).is_err());
        let b = seg("000000010000000000000003.00000028.backup");
        assert!(validate(
            &b,
            b"START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\n",
            None
        )
        .is_ok());
        assert!(validate(&b, b"hello", None).is_err());
    }
}
