//! Reading a WAL file back out of the archive (get-wal, restore): the
//! codec found by magic, the bytes decompressed, and a segment's headers
//! checked, so a damaged archive file is an error and never served.

use super::archiver::ServerIntake;
use super::header;
use super::name::{Kind, WalName};
use crate::compression::{self, Codec};

/// The codec a stored archive file was written with (None: plain).
pub fn stored_codec(intake: &ServerIntake, found: &str, data: &[u8]) -> Option<Codec> {
    // Barman sends `.partial` files raw; ours may be compressed in the
    // archive, and a WAL page never starts with a codec's magic, so the
    // magic decides (and a raw partial still goes out untouched).
    let partial = found.ends_with(".partial");
    Codec::detect(data, intake.custom.magic.as_deref()).or_else(|| {
        (!partial)
            .then(|| intake.unidentified.as_ref().map(|_| Codec::Custom))
            .flatten()
    })
}

/// The plain bytes of the archived file `found` (stored bytes `data`),
/// checked. Errors name the file and the server.
pub fn decode(
    intake: &ServerIntake,
    server: &str,
    found: &str,
    data: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let plain = match stored_codec(intake, found, &data) {
        Some(c) => {
            let mut plain = Vec::new();
            compression::decompress(c, &data, &intake.custom, &mut plain)
                .map_err(|e| format!("Error decompressing WAL: {e}"))?;
            plain
        }
        None => data,
    };
    if let Some(name) = WalName::parse(found).filter(|n| n.kind == Kind::Segment) {
        header::validate(&name, &plain, None)
            .map_err(|e| format!("WAL file '{found}' of server '{server}' is damaged: {e}"))?;
    }
    Ok(plain)
}
