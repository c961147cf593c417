//! `barman put-wal SERVER`: receive WAL files as the tar stream that
//! `barman-wal-archive` sends over ssh (each file plus a `SHA256SUMS` or
//! `MD5SUMS` member), check every checksum, and land the files in incoming/
//! durably: staged as `.<pid>-<name>`, fsynced, renamed without replacing,
//! directory fsynced. archive-wal then validates their content.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

use super::get_wal::ssh_suffix;
use super::{Ctx, Inactive};
use crate::catalog::errors_destination;
use crate::durable;

/// Counts bytes read, to tell an empty stdin from an empty archive.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Removes the staged files left behind, whatever happens.
struct Staging(Vec<(String, PathBuf)>);

impl Drop for Staging {
    fn drop(&mut self) {
        for (_, p) in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes through, hashing what it writes.
struct Sha256Writer<W> {
    inner: W,
    sha: Sha256,
}

impl<W: io::Write> io::Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hexdigest(path: &Path, md5: bool) -> io::Result<String> {
    let data = std::fs::read(path)?;
    Ok(if md5 {
        format!("{:x}", Md5::digest(&data))
    } else {
        format!("{:x}", Sha256::digest(&data))
    })
}

/// Moves a received duplicate into errors/, never over an existing file.
fn duplicate_to_errors(tmp: &Path, errors: &Path, name: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(errors)?;
    let mut n = 0;
    loop {
        match durable::move_file(tmp, &errors_destination(errors, name, "duplicate", n)) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            other => return other,
        }
    }
}

pub fn run(ctx: &mut Ctx, server: &str, test: bool) {
    let Some(cfg) = ctx.server(server, Inactive::Error) else {
        return;
    };
    if test {
        ctx.out.info(&format!(
            "Ready to accept WAL files for the server {}",
            cfg.name
        ));
        return;
    }
    let suffix = ssh_suffix();
    let srv = cfg.name.clone();
    let incoming = cfg.path("incoming_wals_directory");
    let errors = cfg.path("errors_directory");
    if let Err(e) = crate::catalog::ServerCatalog::new(&cfg).create_directory(&incoming) {
        ctx.out.error(&format!("Cannot create {e}"));
        return;
    }
    let pid = std::process::id();
    let mut staging = Staging(Vec::new());
    let mut sums: BTreeMap<String, String> = BTreeMap::new();
    let mut sum_order: Vec<String> = Vec::new();
    let mut md5 = false;
    let mut received: BTreeMap<String, String> = BTreeMap::new();

    let mut stdin = Counting {
        inner: io::stdin().lock(),
        count: 0,
    };
    let result: Result<(), String> = (|| {
        let mut archive = tar::Archive::new(&mut stdin);
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let raw = entry.path_bytes().into_owned();
            let raw = String::from_utf8_lossy(&raw).into_owned();
            let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                ctx.out.error(&format!(
                    "Unsupported file type 'b'{}'' for file '{name}' in put-wal for server '{srv}'{suffix}",
                    kind.as_byte() as char
                ));
                return Ok(());
            }
            if name.contains('/') {
                ctx.out.error(&format!(
                    "Unsupported filename '{name}' in put-wal for server '{srv}'{suffix}"
                ));
                return Ok(());
            }
            if name == "MD5SUMS" || name == "SHA256SUMS" {
                md5 |= name == "MD5SUMS";
                let mut text = Vec::new();
                entry.read_to_end(&mut text).map_err(|e| e.to_string())?;
                for line in String::from_utf8_lossy(&text).lines() {
                    let line = line.trim_end();
                    let split = [line.find(" *"), line.find("  ")]
                        .into_iter()
                        .flatten()
                        .min();
                    match split {
                        Some(i) => {
                            let path = &line[i + 2..];
                            let path = path.strip_prefix("./").unwrap_or(path).to_string();
                            if !sums.contains_key(&path) {
                                sum_order.push(path.clone());
                            }
                            sums.insert(path, line[..i].to_string());
                        }
                        None => ctx.out.warning(&format!(
                            "Bad checksum line '{line}' found in put-wal for server '{srv}'{suffix}"
                        )),
                    }
                }
                continue;
            }
            let tmp = incoming.join(format!(".{pid}-{name}"));
            staging.0.push((name.clone(), tmp.clone()));
            let file =
                std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
            // SHA-256 (barman-cli's default) as the bytes go by, not by
            // reading the file back; MD5SUMS, if that is what comes, rereads.
            let mut file = Sha256Writer {
                inner: file,
                sha: Sha256::new(),
            };
            io::copy(&mut entry, &mut file).map_err(|e| format!("{}: {e}", tmp.display()))?;
            received.insert(name.clone(), format!("{:x}", file.sha.finalize_reset()));
            let file = file.inner;
            if let Ok(mtime) = entry.header().mtime() {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                let _ = file.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t));
            }
            file.sync_all()
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let e = if stdin.count == 0 {
            "empty file".to_string()
        } else {
            e
        };
        ctx.out
            .exception(&format!("{e}\nSee log file for more details."));
        return;
    }
    if ctx.out.error_occurred() {
        return;
    }

    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for (name, tmp) in &staging.0 {
        if let Some(sha) = received.get(name).filter(|_| !md5) {
            hashes.insert(name.clone(), sha.clone());
            continue;
        }
        match hexdigest(tmp, md5) {
            Ok(h) => {
                hashes.insert(name.clone(), h);
            }
            Err(e) => {
                ctx.out.error(&format!("{}: {e}", tmp.display()));
                return;
            }
        }
    }
    for name in &sum_order {
        let want = &sums[name];
        match hashes.get(name) {
            None => {
                ctx.out.error(&format!(
                    "Checksum without corresponding file '{name}' in put-wal for server '{srv}'{suffix}"
                ));
                return;
            }
            Some(got) if got != want => {
                ctx.out.error(&format!(
                    "Bad file checksum '{got}' (should be {want}) for file '{name}' in put-wal for server '{srv}'{suffix}"
                ));
                return;
            }
            Some(got) => log::info!(
                "Received file '{name}' with checksum '{got}' by put-wal for server '{srv}'{suffix}"
            ),
        }
    }
    let staged = std::mem::take(&mut staging.0);
    staging.0 = staged.clone();
    let mut landed = false;
    for (name, tmp) in staged {
        if !sums.contains_key(&name) {
            ctx.out.error(&format!(
                "Missing checksum for file '{name}' in put-wal for server '{srv}'{suffix}"
            ));
            return;
        }
        let dest = incoming.join(&name);
        // archive-wal may take the existing file away meanwhile: then there
        // is no duplicate after all.
        let existing = match hexdigest(&dest, md5) {
            Ok(h) => Some(h),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                ctx.out.error(&format!("{}: {e}", dest.display()));
                return;
            }
        };
        if let Some(existing) = existing {
            let got = &hashes[&name];
            if &existing == got {
                log::debug!("Duplicate Files with Identical Checksums. File {name} already exists on server {srv}, and the checksums are identical.");
                continue;
            }
            if let Err(e) = duplicate_to_errors(&tmp, &errors, &name) {
                // Keep the received file (a dot-file intake ignores) rather
                // than lose it; fail so that the sender retries.
                staging.0.retain(|(_, p)| p != &tmp);
                ctx.out.error(&format!(
                    "Cannot move the mismatching duplicate {name} of server {srv} to the errors directory ({e}); it is kept as {}",
                    tmp.display()
                ));
                return;
            }
            ctx.out.info(&format!(
                "\tError: Duplicate Files Detected with Mismatched Checksums. File {name} already exists on server {srv} with checksum {existing}, but the checksum of the incoming file is{got}. The file has been moved to the errors directory."
            ));
            continue;
        }
        if let Err(e) = durable::rename_noreplace(&tmp, &dest) {
            ctx.out
                .error(&format!("Cannot store {}: {e}", dest.display()));
            return;
        }
        landed = true;
    }
    if landed {
        if let Err(e) = durable::sync_dir(&incoming) {
            ctx.out
                .error(&format!("Cannot sync {}: {e}", incoming.display()));
        }
    }
}
