//! `barman-wal-archive BARMAN_HOST SERVER_NAME WAL_PATH`, barman-cli 3.19.1's
//! `archive_command`: pipes a tar stream into `ssh … barman put-wal SERVER`
//! holding the WAL (optionally compressed first) and a `SHA256SUMS` member
//! (`MD5SUMS` with `--md5`), as barman-cli's `ChecksumTarFile` writes it.
//! The file is streamed and hashed in one pass. Exit codes as barman-cli: 0
//! delivered, 3 when ssh fails (255), the remote status when put-wal
//! fails, 2 for local errors.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::{ArgAction, Parser};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::{
    command, connectivity_test, error, exit_status, os_error, parse, ssh_prefix, Interrupt, VERSION,
};
use crate::compression::{Codec, Compressor, Settings};
use crate::config::types::Value;

/// barman-cli's argparse definition. The compression flags store into one
/// destination, so the last one given wins.
#[derive(Debug, Parser)]
#[command(
    name = "barman-wal-archive",
    version = VERSION,
    about = "This script will be used as an 'archive_command' based on the put-wal \
             feature of Barman. A ssh connection will be opened to the Barman host.",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    infer_long_args = true
)]
pub struct Args {
    #[arg(short = 'h', long = "help", action = ArgAction::Help, help = "show this help message and exit")]
    help: Option<bool>,
    #[arg(short = 'V', long = "version", action = ArgAction::Version, help = "show program's version number and exit")]
    version: Option<bool>,
    #[arg(
        short = 'U',
        long = "user",
        default_value = "barman",
        hide_default_value = true,
        help = "The user used for the ssh connection to the Barman server. Defaults to 'barman'."
    )]
    pub user: String,
    #[arg(
        long = "port",
        help = "The port used for the ssh connection to the Barman server."
    )]
    pub port: Option<String>,
    #[arg(
        short = 'c',
        long = "config",
        value_name = "CONFIG",
        help = "configuration file on the Barman server"
    )]
    pub config: Option<String>,
    #[arg(
        short = 't',
        long = "test",
        help = "test both the connection and the configuration of the requested PostgreSQL \
                server in Barman for WAL retrieval. With this option, the 'wal_name' \
                mandatory argument is ignored."
    )]
    pub test: bool,
    #[arg(
        long = "md5",
        help = "Use MD5 as the hash algorithm to maintain compatibility between mismatched \
                client and server versions."
    )]
    pub md5: bool,
    #[arg(short = 'z', long = "gzip", overrides_with_all = ["bzip2", "xz", "snappy", "zstd", "lz4"],
          help = "gzip-compress the WAL file before sending it")]
    pub gzip: bool,
    #[arg(short = 'j', long = "bzip2", overrides_with_all = ["gzip", "xz", "snappy", "zstd", "lz4"],
          help = "bzip2-compress the WAL file before sending it")]
    pub bzip2: bool,
    #[arg(long = "xz", overrides_with_all = ["gzip", "bzip2", "snappy", "zstd", "lz4"],
          help = "xz-compress the WAL file before sending it")]
    pub xz: bool,
    #[arg(long = "snappy", overrides_with_all = ["gzip", "bzip2", "xz", "zstd", "lz4"],
          help = "snappy-compress the WAL file before sending it (requires optional python-snappy library)")]
    pub snappy: bool,
    #[arg(long = "zstd", overrides_with_all = ["gzip", "bzip2", "xz", "snappy", "lz4"],
          help = "zstd-compress the WAL file before sending it (requires optional zstandard library)")]
    pub zstd: bool,
    #[arg(long = "lz4", overrides_with_all = ["gzip", "bzip2", "xz", "snappy", "zstd"],
          help = "lz4-compress the WAL file before sending it (requires optional lz4 library)")]
    pub lz4: bool,
    #[arg(
        long = "compression-level",
        value_name = "COMPRESSION_LEVEL",
        value_parser = parse_compression_level,
        help = "A compression level for the specified compression algorithm"
    )]
    pub compression_level: Option<Value>,
    #[arg(value_name = "BARMAN_HOST", help = "The host of the Barman server.")]
    pub barman_host: String,
    #[arg(
        value_name = "SERVER_NAME",
        help = "The server name configured in Barman from which WALs are taken."
    )]
    pub server_name: String,
    #[arg(
        value_name = "WAL_PATH",
        help = "The value of the '%p' keyword (according to 'archive_command')."
    )]
    pub wal_path: PathBuf,
}

impl Args {
    fn compression(&self) -> Option<Codec> {
        [
            (self.gzip, Codec::Gzip),
            (self.bzip2, Codec::Bzip2),
            (self.xz, Codec::Xz),
            (self.snappy, Codec::Snappy),
            (self.zstd, Codec::Zstd),
            (self.lz4, Codec::Lz4),
        ]
        .into_iter()
        .find_map(|(set, c)| set.then_some(c))
    }
}

/// Barman's `parse_compression_level`: an integer (negative too) or
/// low/medium/high, any case.
fn parse_compression_level(s: &str) -> Result<Value, String> {
    let v = s.to_lowercase();
    let digits = v.trim_start_matches('-');
    if v.is_empty() {
        Ok(Value::None)
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        v.parse()
            .map(Value::Int)
            .map_err(|_| format!("invalid parse_compression_level value: '{s}'"))
    } else if ["low", "medium", "high"].contains(&v.as_str()) {
        Ok(Value::Str(v))
    } else {
        Err(format!("invalid parse_compression_level value: '{s}'"))
    }
}

/// Why a call fails, worded as barman-cli prints it after `ERROR: `.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("WAL_PATH cannot be a directory: {0}")]
    PathIsDirectory(String),
    /// barman-cli's catch-all for local I/O errors, ssh's start included.
    #[error("Error executing ssh: {0}")]
    Ssh(String),
    /// Ours: barman-cli raises a traceback here.
    #[error("Cannot compress '{path}' with {codec}: {reason}")]
    Compress {
        path: String,
        codec: &'static str,
        reason: String,
    },
    #[error("Connection problem with ssh")]
    Connection,
    #[error("Remote 'barman put-wal' command has failed!")]
    Remote(u8),
}

impl ArchiveError {
    pub fn status(&self) -> u8 {
        match self {
            ArchiveError::Connection => 3,
            ArchiveError::Remote(code) => *code,
            _ => 2,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> u8 {
    let args: Args = match parse(argv) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.test {
        return connectivity_test(&ssh_argv(&args), "put-wal");
    }
    match archive(&args) {
        Ok(()) => 0,
        Err(e) => {
            error(&e.to_string());
            e.status()
        }
    }
}

/// barman-cli's `build_ssh_command`: `… barman [--config='CONFIG'] put-wal
/// SERVER [--test]`.
pub fn ssh_argv(args: &Args) -> Vec<String> {
    let mut argv = ssh_prefix(args.port.as_deref(), &args.user, &args.barman_host);
    if let Some(c) = args.config.as_deref().filter(|c| !c.is_empty()) {
        argv.push(format!("--config='{c}'"));
    }
    argv.extend(["put-wal".to_string(), args.server_name.clone()]);
    if args.test {
        argv.push("--test".to_string());
    }
    argv
}

/// The member to send and its tar header fields.
struct Member {
    data: Data,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

enum Data {
    File(File),
    Bytes(Vec<u8>),
}

fn archive(args: &Args) -> Result<(), ArchiveError> {
    let path = &args.wal_path;
    if path.is_dir() {
        return Err(ArchiveError::PathIsDirectory(path.display().to_string()));
    }
    let local = |e: io::Error| ArchiveError::Ssh(os_error(&e, Some(path)));
    // Opened before ssh starts: a missing file costs no connection.
    let mut file = File::open(path).map_err(local)?;
    let meta = file.metadata().map_err(local)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let member = match args.compression() {
        None => Member {
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime().max(0) as u64,
            data: Data::File(file),
        },
        Some(codec) => {
            let mut plain = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut plain).map_err(local)?;
            let packed = compress(codec, args.compression_level.as_ref(), &plain, &name).map_err(
                |reason| ArchiveError::Compress {
                    path: path.display().to_string(),
                    codec: codec.name(),
                    reason,
                },
            )?;
            // barman-cli tars a freshly written temporary file.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            nix::sys::stat::umask(umask);
            Member {
                size: packed.len() as u64,
                mode: 0o666 & !umask.bits(),
                uid: u64::from(nix::unistd::getuid().as_raw()),
                gid: u64::from(nix::unistd::getgid().as_raw()),
                mtime: now,
                data: Data::Bytes(packed),
            }
        }
    };

    let interrupt = Interrupt::install();
    let mut cmd = command(&ssh_argv(args));
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ArchiveError::Ssh(os_error(&e, Some(Path::new("ssh")))))?;
    interrupt.child(child.id());
    let stdin = child.stdin.take().expect("piped");
    let unsent = match write_tar(stdin, &name, member, args.md5) {
        Ok(()) => None,
        Err(Failed::Read(e)) => {
            // The stream is cut short: stop ssh rather than deliver it.
            let _ = child.kill();
            let _ = child.wait();
            return Err(local(e));
        }
        Err(Failed::Write(e)) => Some(e),
    };
    let status = child
        .wait()
        .map_err(|e| ArchiveError::Ssh(os_error(&e, None)))?;
    match (status.code(), unsent) {
        (Some(0), None) => Ok(()),
        // put-wal accepted a stream we could not finish: cannot happen
        // with a well-formed tar, but never report it delivered.
        (Some(0), Some(e)) => Err(ArchiveError::Ssh(os_error(&e, None))),
        // barman-cli gives 2 (Broken pipe) or 3 here depending on whether
        // ssh died before the WAL filled the pipe; 3 is what it means.
        (Some(255), _) => Err(ArchiveError::Connection),
        _ => Err(ArchiveError::Remote(exit_status(status))),
    }
}

/// barman-cli compresses with Barman's internal compressors at
/// `--compression-level` (default medium, integers clamped to the codec's
/// range).
fn compress(
    codec: Codec,
    level: Option<&Value>,
    plain: &[u8],
    name: &str,
) -> Result<Vec<u8>, String> {
    let settings = Settings {
        codec,
        name: codec.name().to_string(),
        level: codec.level(level.unwrap_or(&Value::None)),
        custom: Default::default(),
    };
    let mut out = Vec::new();
    Compressor::new(&settings)
        .and_then(|mut c| c.compress(plain, name, &mut out))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

enum Failed {
    /// Reading the WAL (a local error).
    Read(io::Error),
    /// Writing to ssh (it went away).
    Write(io::Error),
}

enum Hasher {
    Sha256(Sha256),
    Md5(Md5),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    fn hexdigest(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("{:x}", h.finalize()),
            Hasher::Md5(h) => format!("{:x}", h.finalize()),
        }
    }
}

const BLOCK: u64 = 512;
/// tarfile's RECORDSIZE: a stream is padded to a multiple of it.
const RECORD: u64 = 20 * BLOCK;

fn header(
    name: &str,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
) -> io::Result<[u8; 512]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(*h.as_bytes())
}

fn padding(size: u64) -> usize {
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// barman-cli's `ChecksumTarFile` stream: the WAL member, then the sums
/// member (`<hex> *<name>`, mode 0644, mtime 0), two zero blocks, and zero
/// padding to a full record.
fn write_tar(out: impl Write, name: &str, member: Member, md5: bool) -> Result<(), Failed> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut hasher = if md5 {
        Hasher::Md5(Md5::new())
    } else {
        Hasher::Sha256(Sha256::new())
    };
    let w = Failed::Write;
    let head = header(
        name,
        member.size,
        member.mode,
        member.uid,
        member.gid,
        member.mtime,
    )
    .map_err(Failed::Read)?;
    out.write_all(&head).map_err(w)?;
    match member.data {
        Data::Bytes(data) => {
            hasher.update(&data);
            out.write_all(&data).map_err(w)?;
        }
        Data::File(mut file) => {
            let mut buf = vec![0u8; 1 << 18];
            let mut left = member.size;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = match file.read(&mut buf[..want]) {
                    Ok(0) => return Err(Failed::Read(io::Error::other("end of file reached"))),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Failed::Read(e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(w)?;
                left -= n as u64;
            }
        }
    }
    let zeros = [0u8; RECORD as usize];
    out.write_all(&zeros[..padding(member.size)]).map_err(w)?;
    let (sums_name, sums) = (
        if md5 { "MD5SUMS" } else { "SHA256SUMS" },
        format!("{} *{name}\n", hasher.hexdigest()),
    );
    let size = sums.len() as u64;
    out.write_all(&header(sums_name, size, 0o644, 0, 0, 0).map_err(Failed::Read)?)
        .map_err(w)?;
    out.write_all(sums.as_bytes()).map_err(w)?;
    out.write_all(&zeros[..padding(size)]).map_err(w)?;
    let offset = 2 * BLOCK + member.size.div_ceil(BLOCK) * BLOCK + size.div_ceil(BLOCK) * BLOCK;
    out.write_all(&zeros[..2 * BLOCK as usize]).map_err(w)?;
    let end = offset + 2 * BLOCK;
    out.write_all(&zeros[..((RECORD - end % RECORD) % RECORD) as usize])
        .map_err(w)?;
    out.flush().map_err(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["barman-wal-archive"];
        argv.extend_from_slice(extra);
        argv.extend(["bkp", "pg", "pg_wal/000000010000000000000002"]);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn argv_is_barman_clis() {
        assert_eq!(
            ssh_argv(&args(&[])),
            ["ssh", "-q", "-T", "barman@bkp", "barman", "put-wal", "pg"]
        );
        assert_eq!(
            ssh_argv(&args(&["--port", "2", "-c", "/b.conf", "-t", "-U", "x"])),
            [
                "ssh",
                "-p",
                "2",
                "-q",
                "-T",
                "x@bkp",
                "barman",
                "--config='/b.conf'",
                "put-wal",
                "pg",
                "--test"
            ]
        );
    }

    #[test]
    fn last_compression_flag_wins_and_levels_parse() {
        assert_eq!(
            args(&["-z", "--xz", "-j"]).compression(),
            Some(Codec::Bzip2)
        );
        assert_eq!(args(&["--lz4"]).compression(), Some(Codec::Lz4));
        assert_eq!(args(&[]).compression(), None);
        assert_eq!(
            parse_compression_level("HIGH"),
            Ok(Value::Str("high".into()))
        );
        assert_eq!(parse_compression_level("-5"), Ok(Value::Int(-5)));
        assert!(parse_compression_level("--5").is_err());
        assert!(parse_compression_level("foo").is_err());
        let mut argv = vec!["barman-wal-archive", "--compression-level", "x"];
        argv.extend(["h", "s", "p"]);
        assert_eq!(Args::try_parse_from(argv).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_stream_is_what_put_wal_reads() {
        let data = b"0123456789".repeat(100);
        let mut out = Vec::new();
        let member = Member {
            size: data.len() as u64,
            mode: 0o600,
            uid: 1,
            gid: 2,
            mtime: 1_700_000_000,
            data: Data::Bytes(data.clone()),
        };
        assert!(write_tar(&mut out, "000000010000000000000002", member, false).is_ok());
        assert_eq!(out.len() % RECORD as usize, 0);
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            seen.push((name, e.header().mtime().unwrap(), body));
        }
        let sum = format!("{:x}", Sha256::digest(&data));
        assert_eq!(
            seen,
            [
                ("000000010000000000000002".to_string(), 1_700_000_000, data),
                (
                    "SHA256SUMS".to_string(),
                    0,
                    format!("{sum} *000000010000000000000002\n").into_bytes()
                ),
            ]
        );
    }
}
