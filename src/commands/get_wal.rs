//! `barman get-wal SERVER WAL`: serve a WAL file from the archive (or from
//! incoming/ and streaming/, as Barman looks there too), decompressed by
//! magic and checked on the way: codecs verify their checksums, segments
//! their page header and size. This is PostgreSQL's `restore_command` path.

use std::io::Write;
use std::path::PathBuf;

use super::{Ctx, Inactive};
use crate::cli::GetWal;
use crate::compression::{Codec, Compressor, Settings};
use crate::config::ServerConfig;
use crate::wal::archiver::ServerIntake;
use crate::wal::name::{Kind, WalName};
use crate::wal::serve::{self, stored_codec};

/// ` (SSH host: <ip>)` when called through ssh, as Barman appends it.
pub fn ssh_suffix() -> String {
    std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .map(|ip| format!(" (SSH host: {ip})"))
        .unwrap_or_default()
}

/// Where Barman looks for a WAL file, in its order.
fn candidates(intake: &ServerIntake, name: &WalName, partial: bool) -> Vec<PathBuf> {
    let cat = &intake.catalog;
    let archived = cat.wals_directory.join(name.hash_dir()).join(&name.name);
    let mut list = vec![
        archived.clone(),
        cat.incoming_wals_directory.join(&name.name),
        cat.streaming_wals_directory.join(&name.name),
    ];
    if partial {
        let p = format!("{}.partial", name.name);
        list.push(cat.streaming_wals_directory.join(&p));
        list.push(cat.streaming_wals_directory.join(&name.name));
        list.push(cat.wals_directory.join(name.hash_dir()).join(&p));
        list.push(cat.incoming_wals_directory.join(&p));
    }
    list.push(archived);
    list
}

pub fn run(ctx: &mut Ctx, args: GetWal) {
    let Some(cfg) = ctx.server(&args.server_name, Inactive::Serve) else {
        return;
    };
    if args.test {
        ctx.out.info(&format!(
            "Ready to retrieve WAL files from the server {}",
            cfg.name
        ));
        return;
    }
    let wanted = if args.gzip {
        Some("gzip")
    } else if args.bzip2 {
        Some("bzip2")
    } else {
        None
    };
    if let (Some(w), true) = (wanted, args.keep_compression) {
        ctx.out.error(&format!(
            "argument `{w}` not allowed with argument `keep-compression`"
        ));
        return;
    }
    let suffix = ssh_suffix();
    let Some(name) = WalName::parse(&args.wal_name) else {
        ctx.out.error_with_code(
            &format!("'{}' is not a valid wal file name{suffix}", args.wal_name),
            3,
        );
        return;
    };
    let intake = match ServerIntake::from_config(&cfg, &ctx.config.lock_directory, &ctx.config.file)
    {
        Ok(i) => i,
        Err(e) if cfg.get_str("compression").is_some() => {
            // Reading needs no compressor: serve with detection alone.
            log::debug!("{e}");
            ServerIntake::from_config(
                &without_compression(&cfg),
                &ctx.config.lock_directory,
                &ctx.config.file,
            )
            .unwrap_or_else(|_| unreachable!("compression was the only error"))
        }
        Err(e) => {
            ctx.out.error(&e);
            return;
        }
    };
    if let Some(n) = args.peek {
        for found in peek(&intake, &name, n) {
            ctx.out.info_nolog(&found);
        }
        return;
    }

    // Barman opens the destination before searching; we do too, but remove
    // it again when nothing is found rather than leave an empty WAL file.
    let mut dest = None;
    if let Some(dir) = &args.output_directory {
        let path = dir.join(&args.wal_name);
        match std::fs::File::create(&path) {
            Ok(f) => dest = Some((path, f)),
            Err(e) => {
                ctx.out.error_with_code(
                    &format!(
                        "Unable to open '{0}' file{suffix}: [Errno {1}] {2}: '{0}'",
                        path.display(),
                        e.raw_os_error().unwrap_or(0),
                        crate::catalog::strerror(&e)
                    ),
                    3,
                );
                return;
            }
        }
    }
    for path in candidates(&intake, &name, args.partial) {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let found = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = match &dest {
            Some((p, _)) => format!("into '{}' file", p.display()),
            None => "to standard output".to_string(),
        };
        let msg = format!(
            "Sending WAL '{found}' for server '{}' {target}{suffix}",
            cfg.name
        );
        if dest.is_some() {
            ctx.out.info(&msg);
        } else {
            log::info!("{msg}");
        }
        let bytes = match prepare(&intake, &cfg, &found, data, wanted, args.keep_compression) {
            Ok(b) => b,
            Err(e) => {
                if let Some((p, _)) = dest.take() {
                    let _ = std::fs::remove_file(p);
                }
                ctx.out.error(&e);
                return;
            }
        };
        let written = match &mut dest {
            // No fsync: PostgreSQL syncs what it restores, as with Barman.
            Some((_, f)) => f.write_all(&bytes),
            None => {
                let mut so = std::io::stdout().lock();
                so.write_all(&bytes).and_then(|_| so.flush())
            }
        };
        if let Err(e) = written {
            ctx.out
                .error(&format!("Cannot write WAL file '{}': {e}", args.wal_name));
        }
        return;
    }
    if let Some((p, _)) = dest.take() {
        let _ = std::fs::remove_file(p);
    }
    ctx.out.error(&format!(
        "WAL file '{}' not found in server '{}'{suffix}",
        args.wal_name, cfg.name
    ));
}

fn without_compression(cfg: &ServerConfig) -> ServerConfig {
    let mut c = cfg.clone();
    c.set("compression", crate::config::types::Value::None);
    c
}

/// The bytes to send for the file `found`: stored bytes when asked to keep
/// them (or when they already are in the wanted format), else decompressed,
/// verified, and recompressed if `-z`/`-j` asked for it.
fn prepare(
    intake: &ServerIntake,
    cfg: &ServerConfig,
    found: &str,
    data: Vec<u8>,
    wanted: Option<&str>,
    keep: bool,
) -> Result<Vec<u8>, String> {
    if keep {
        return Ok(data);
    }
    let partial = found.ends_with(".partial");
    // Already in the wanted codec: sent as stored (Barman does the same).
    if wanted.is_some() && stored_codec(intake, found, &data).map(Codec::name) == wanted {
        return Ok(data);
    }
    let plain = serve::decode(intake, &cfg.name, found, data)?;
    // Barman ignores -z/-j for partial files.
    let Some(wanted) = wanted.filter(|_| !partial) else {
        return Ok(plain);
    };
    let codec = Codec::from_config(wanted).expect("gzip or bzip2");
    let settings = Settings {
        codec,
        name: wanted.to_string(),
        level: codec.level(cfg.get("compression_level")),
        custom: Default::default(),
    };
    let mut out = Vec::new();
    Compressor::new(&settings)
        .and_then(|mut c| c.compress(&plain, &format!(".{found}"), &mut out))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// `--peek N`: up to N consecutive names that exist, starting at `name`,
/// with Barman's jump to the next log after a missing power-of-two segment.
fn peek(intake: &ServerIntake, name: &WalName, n: u64) -> Vec<String> {
    let exists = |w: &WalName| candidates(intake, w, false).iter().any(|p| p.exists());
    let mut out = Vec::new();
    let Some((mut log, mut seg)) = name.position.filter(|_| name.kind == Kind::Segment) else {
        if exists(name) {
            out.push(name.name.clone());
        }
        return out;
    };
    let tli = name.tli;
    while (out.len() as u64) < n {
        let current = WalName::parse(&format!("{tli:08X}{log:08X}{seg:08X}")).expect("well-formed");
        if exists(&current) {
            out.push(current.name);
            // Barman's generator: segments up to 0x7FFFF, then the next log.
            if seg >= 0x7FFFF {
                (log, seg) = (log + 1, 0);
            } else {
                seg += 1;
            }
        } else if seg.is_power_of_two() {
            (log, seg) = (log + 1, 0);
        } else {
            break;
        }
    }
    out
}
