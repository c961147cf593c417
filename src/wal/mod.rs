//! The WAL layer: names, content validation, and the archiver that moves
//! files from incoming/ and streaming/ into the archive.

pub mod archiver;
pub mod header;
pub mod name;
pub mod serve;
pub mod source;

pub use name::WalName;
