//! `backup_method = rsync`: PostgreSQL on another host, copied with rsync
//! over `ssh_command` as Barman does it (same arguments, same filters,
//! `parallel_jobs` rsync processes at once). Per item (each tablespace,
//! PGDATA, then `global/pg_control`, then configuration files outside
//! PGDATA):
//! 1. `rsync --list-only -r` of the source, with the item's filters;
//! 2. the destination directories created here (the destination is local);
//! 3. files older than the previous backup's start ("safe") copied plainly,
//!    the others whose size and mtime match the previous copy with
//!    `--checksum`, split into buckets by size, one rsync per bucket
//!    (`--files-from`), `--link-dest`/`--copy-dest` on the previous backup.
//!
//! Exit statuses 0, 23 (only "vanished" lines) and 24 are success, as in
//! Barman: files that disappear under a live PostgreSQL are normal.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Failure, Job};
use crate::postgres::session::Metadata;

/// Barman's `PGDATA_EXCLUDE_LIST`.
const PGDATA_EXCLUDE: &[&str] = &[
    "/pg_log/*",
    "/log/*",
    "/pg_xlog/*",
    "/pg_wal/*",
    "/global/pg_control",
];

/// Barman's `EXCLUDE_LIST`.
const EXCLUDE: &[&str] = &[
    "pgsql_tmp*",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "pg_internal.init",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "standby.signal",
    "**/[0-9]*/t[0-9]*_[0-9]*",
    "pg_dynshmem/*",
    "pg_notify/*",
    "pg_replslot/*",
    "pg_serial/*",
    "pg_stat_tmp/*",
    "pg_snapshots/*",
    "pg_subtrans/*",
];

/// One source tree (or single file) to copy.
#[derive(Debug, Clone)]
struct Item {
    label: String,
    /// `:/path/` for a directory, `:/path/file` for a file.
    src: String,
    dst: PathBuf,
    include: Vec<String>,
    exclude: Vec<String>,
    protect: Vec<String>,
    reuse: Option<PathBuf>,
    is_dir: bool,
}

/// One line of `rsync --list-only`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub mode: String,
    pub size: u64,
    /// Seconds since the epoch (local time as rsync prints it).
    pub mtime: i64,
    pub path: String,
}

/// Parses `rsync --no-human-readable --list-only` output (pure).
pub fn parse_listing(text: &str) -> Result<Vec<Listed>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        // Columns are padded: split on runs of spaces for the first four.
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 5 {
            return Err(format!(
                "Unable to parse rsync --list-only output line: '{line}'"
            ));
        }
        let (mode, size, date, time) = (parts[0], parts[1], parts[2], parts[3]);
        let size: u64 = size
            .replace(',', "")
            .parse()
            .map_err(|_| format!("Unable to parse rsync --list-only output line: '{line}'"))?;
        // The path is everything after the time column.
        let stamp = format!("{date} {time} ");
        let at = line
            .find(&stamp)
            .map(|i| i + stamp.len())
            .ok_or_else(|| format!("Unable to parse rsync --list-only output line: '{line}'"))?;
        let path = line[at..].to_string();
        let civil = jiff::civil::DateTime::strptime("%Y/%m/%d %H:%M:%S", format!("{date} {time}"))
            .map_err(|_| {
                format!("Unable to parse rsync --list-only output line (date): '{line}'")
            })?;
        let mtime = civil
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(0);
        // Symlinks list as `path -> target`; -L copies the target anyway.
        let path = match (mode.starts_with('l'), path.split_once(" -> ")) {
            (true, Some((p, _))) => p.to_string(),
            _ => path,
        };
        out.push(Listed {
            mode: mode.to_string(),
            size,
            mtime,
            path,
        });
    }
    Ok(out)
}

fn mode_bits(mode: &str) -> u32 {
    let b = mode.as_bytes();
    let mut m = 0;
    for (i, bit) in [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1]
        .iter()
        .enumerate()
    {
        if b.get(i + 1).is_some_and(|c| *c != b'-') {
            m |= bit;
        }
    }
    m
}

/// Barman's `_parse_ssh_command` + `full_command_quote`: the `-e` value.
pub fn ssh_e(ssh_command: &str) -> String {
    let mut parts: Vec<String> = ssh_command.split_whitespace().map(str::to_string).collect();
    parts.extend(
        "-o BatchMode=yes -o StrictHostKeyChecking=no"
            .split(' ')
            .map(str::to_string),
    );
    parts
        .iter()
        .map(|p| shell_quote(p))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

struct Rsync<'a> {
    tool: PathBuf,
    e: String,
    compress: bool,
    bwlimit: Option<u64>,
    item: &'a Item,
}

impl Rsync<'_> {
    fn base(&self) -> Command {
        let mut c = Command::new(&self.tool);
        c.arg("-e").arg(&self.e);
        if self.compress {
            c.arg("-z");
        }
        for p in &self.item.include {
            c.arg(format!("--include={p}"));
        }
        for p in &self.item.exclude {
            c.arg(format!("--exclude={p}"));
        }
        for p in &self.item.protect {
            c.arg(format!("--exclude={p}"))
                .arg(format!("--filter=P_{p}"));
        }
        c.args(["-rLKpts", "--delete-excluded", "--inplace"]);
        if let Some(r) = &self.item.reuse {
            c.arg(format!("--link-dest={}", r.display()));
        }
        c.args([
            "--ignore-missing-args",
            "--itemize-changes",
            "--itemize-changes",
        ]);
        if let Some(b) = self.bwlimit.filter(|b| *b > 0) {
            c.arg(format!("--bwlimit={b}"));
        }
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, mut c: Command) -> Result<String, String> {
        let out = c
            .output()
            .map_err(|e| format!("{}: {e}", self.tool.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code().unwrap_or(-1);
        let vanished_only = code == 23
            && stderr.lines().all(|l| {
                l.starts_with("file has vanished: ")
                    || l.trim().is_empty()
                    || l.starts_with("rsync warning:")
                    || l.starts_with("rsync error: some files")
            });
        if code == 0 || code == 24 || vanished_only {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{stderr}"))
        }
    }

    fn list(&self, src: &str) -> Result<Vec<Listed>, String> {
        let mut c = self.base();
        c.args(["--no-human-readable", "--list-only", "-r", src]);
        parse_listing(&self.run(c)?)
    }
}

/// Splits files into `n` buckets of similar total size (largest first).
fn buckets(mut files: Vec<Listed>, n: usize) -> Vec<Vec<Listed>> {
    files.sort_by_key(|f| std::cmp::Reverse(f.size));
    let mut out: Vec<(u64, Vec<Listed>)> = (0..n.max(1)).map(|_| (0, Vec::new())).collect();
    for f in files {
        let slot = out.iter_mut().min_by_key(|(s, _)| *s).expect("n >= 1");
        slot.0 += f.size;
        slot.1.push(f);
    }
    out.into_iter()
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The copy phase of the rsync method.
fn copy_items(job: &mut Job<'_>, items: &[Item], horizon: Option<i64>) -> Result<(), String> {
    let tool = crate::server::find_tool(job.cfg, &["rsync"])
        .path
        .ok_or("rsync not found")?;
    let ssh = job.cfg.get_str("ssh_command").unwrap_or_default();
    let e = ssh_e(ssh);
    let compress = job.cfg.get_bool("network_compression");
    let jobs = job.plan.jobs.max(1);
    let tmp = tempfile::Builder::new()
        .prefix("barman-rs-rsync-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    for (n, item) in items.iter().enumerate() {
        let rs = Rsync {
            tool: tool.clone(),
            e: e.clone(),
            compress,
            bwlimit: job.plan.bwlimit,
            item,
        };
        if !item.is_dir {
            fs::create_dir_all(crate::durable::parent(&item.dst)).map_err(|e| e.to_string())?;
            let mut c = rs.base();
            c.arg(&item.src).arg(&item.dst);
            rs.run(c).map_err(|e| format!("{}: {e}", item.label))?;
            continue;
        }
        fs::create_dir_all(&item.dst).map_err(|e| format!("{}: {e}", item.dst.display()))?;
        let listing = rs.list(&item.src)?;
        // What the previous backup holds, to judge "safe" files.
        let reference: HashMap<String, Listed> = match &item.reuse {
            Some(r) => rs
                .list(&format!("{}/", r.display()))
                .unwrap_or_default()
                .into_iter()
                .filter(|l| !l.mode.starts_with('d'))
                .map(|l| (l.path.clone(), l))
                .collect(),
            None => HashMap::new(),
        };
        let (mut safe, mut check) = (Vec::new(), Vec::new());
        for entry in listing {
            if entry.mode.starts_with('d') {
                let d = item.dst.join(&entry.path);
                fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
                let _ = fs::set_permissions(
                    &d,
                    fs::Permissions::from_mode(mode_bits(&entry.mode) | 0o700),
                );
                continue;
            }
            let safe_by_age = horizon.is_some_and(|h| entry.mtime < h);
            let same_as_ref = reference
                .get(&entry.path)
                .is_some_and(|r| r.size == entry.size && r.mtime == entry.mtime);
            if safe_by_age || !same_as_ref {
                safe.push(entry);
            } else {
                check.push(entry);
            }
        }
        let mut work: Vec<(PathBuf, bool)> = Vec::new();
        for (list, checksum) in [(safe, false), (check, true)] {
            for (b, bucket) in buckets(list, jobs).into_iter().enumerate() {
                let path = tmp.path().join(format!("{n}-{checksum}-{b}.list"));
                let mut f = fs::File::create(&path).map_err(|e| e.to_string())?;
                for l in &bucket {
                    writeln!(f, "{}", l.path).map_err(|e| e.to_string())?;
                }
                work.push((path, checksum));
            }
        }
        // Up to `jobs` rsync processes at once over this item's buckets.
        let results: Vec<Result<String, String>> = std::thread::scope(|s| {
            let mut pending = work.iter();
            let mut out = Vec::new();
            loop {
                let batch: Vec<_> = pending.by_ref().take(jobs).collect();
                if batch.is_empty() {
                    break;
                }
                let handles: Vec<_> = batch
                    .into_iter()
                    .map(|(list, checksum)| {
                        let rs = &rs;
                        s.spawn(move || {
                            let mut c = rs.base();
                            c.arg(format!("--files-from={}", list.display()));
                            if *checksum {
                                c.arg("--checksum");
                            }
                            c.arg(&item.src).arg(format!("{}/", item.dst.display()));
                            rs.run(c)
                        })
                    })
                    .collect();
                out.extend(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or(Err("rsync worker panicked".into()))),
                );
            }
            out
        });
        for r in results {
            r.map_err(|e| format!("{}: {e}", item.label))?;
        }
    }
    Ok(())
}

fn items(job: &Job<'_>, meta: &Metadata, reuse_base: Option<&Path>) -> Vec<Item> {
    let base = job.base_dir();
    let data = job.data_dir();
    let major = meta.version / 10000;
    let mut items = Vec::new();
    let mut protect = Vec::new();
    for (name, oid, loc) in &meta.tablespaces {
        if let Some(inside) = loc.strip_prefix(&meta.data_directory) {
            if inside.starts_with('/') {
                protect.push(inside.to_string());
            }
        }
        protect.push(format!("/pg_tblspc/{oid}"));
        let mut exclude = vec!["/*".to_string()];
        exclude.extend(EXCLUDE.iter().map(|s| s.to_string()));
        items.push(Item {
            label: name.clone(),
            src: format!(":{loc}/"),
            dst: base.join(oid.to_string()),
            include: vec![format!("/PG_{major}_*")],
            exclude,
            protect: Vec::new(),
            reuse: reuse_base.map(|r| r.join(oid.to_string())),
            is_dir: true,
        });
    }
    let mut exclude: Vec<String> = PGDATA_EXCLUDE.iter().map(|s| s.to_string()).collect();
    exclude.extend(EXCLUDE.iter().map(|s| s.to_string()));
    items.push(Item {
        label: "pgdata".into(),
        src: format!(":{}/", meta.data_directory),
        dst: data.clone(),
        include: Vec::new(),
        exclude,
        protect,
        reuse: reuse_base.map(|r| r.join("data")),
        is_dir: true,
    });
    items.push(Item {
        label: "pg_control".into(),
        src: format!(":{}/global/pg_control", meta.data_directory),
        dst: data.join("global/pg_control"),
        include: Vec::new(),
        exclude: Vec::new(),
        protect: Vec::new(),
        reuse: None,
        is_dir: false,
    });
    for f in [&meta.config_file, &meta.hba_file, &meta.ident_file]
        .into_iter()
        .flatten()
    {
        if !f.starts_with(&format!("{}/", meta.data_directory)) {
            items.push(Item {
                label: "config".into(),
                src: format!(":{f}"),
                dst: data.join(Path::new(f).file_name().unwrap_or_default()),
                include: Vec::new(),
                exclude: Vec::new(),
                protect: Vec::new(),
                reuse: None,
                is_dir: false,
            });
        }
    }
    items
}

/// The rsync method: start the backup over SQL, copy, stop. Returns false
/// (files are fsynced by the size walk afterwards).
pub fn run(job: &mut Job<'_>, action: &mut String) -> Result<bool, Failure> {
    let (session, (), label) = super::concurrent(job, action, copy_phase)?;
    super::write_label(job, action, &label)?;
    session.create_restore_point(&format!("barman_{}", job.id));
    Ok(false)
}

/// Everything between start and stop: the copy itself.
fn copy_phase(job: &mut Job<'_>, action: &mut String, meta: &Metadata) -> Result<(), Failure> {
    job.save()?;
    job.print_start();
    job.purge_before_first();
    *action = "copying files".into();
    let mut line = format!("Starting backup copy via rsync/SSH for {}", job.id);
    if job.plan.jobs > 1 {
        line.push_str(&format!(" ({} jobs)", job.plan.jobs));
    }
    job.out.info(&line);
    job.mark_copy_start();
    let (reuse_base, horizon) = job.reuse_source();
    fs::create_dir_all(job.data_dir()).map_err(|e| Failure::new(action, e))?;
    let items = items(job, meta, reuse_base.as_deref());
    copy_items(job, &items, horizon).map_err(|e| {
        Failure::new(
            "copying files",
            format!("data transfer failure\nrsync error:\n{e}"),
        )
    })?;
    let tblspc = job.data_dir().join("pg_tblspc");
    fs::create_dir_all(&tblspc).map_err(|e| Failure::new(action, e))?;
    let secs = job.copy_seconds();
    let stats = super::copy_stats_repr(&[("copy_time", secs), ("total_time", secs)]);
    let stats = format!(
        "{}, 'number_of_workers': {}}}",
        stats.trim_end_matches('}'),
        job.plan.jobs
    );
    job.set("copy_stats", Some(stats));
    job.print_copy_done(secs);
    job.purge_before_first();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rsync_listings() {
        let text = "drwx------          4096 2026/11/25 04:05:52 .\n\
                    -rw-------             3 2026/11/25 04:05:52 PG_VERSION\n\
                    -rw------- 8192 2026/11/25 04:05:53 base/1/with space\n\
                    lrwxrwxrwx            10 2026/11/25 04:05:53 pg_tblspc/16384 -> /srv/tbs\n";
        let l = parse_listing(text).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[1].size, 3);
        assert_eq!(l[2].path, "base/1/with space");
        assert_eq!(l[3].path, "pg_tblspc/16384");
        assert_eq!(mode_bits(&l[0].mode), 0o700);
        assert!(parse_listing("garbage\n").is_err());
    }

    #[test]
    fn buckets_balance_sizes() {
        let f = |s: u64| Listed {
            mode: "-rw-------".into(),
            size: s,
            mtime: 0,
            path: s.to_string(),
        };
        let b = buckets(vec![f(10), f(9), f(1), f(1)], 2);
        let sums: Vec<u64> = b.iter().map(|v| v.iter().map(|l| l.size).sum()).collect();
        assert_eq!(sums, vec![11, 10]);
    }

    #[test]
    fn ssh_options_as_barman_adds_them() {
        assert_eq!(
            ssh_e("ssh -p 2222 postgres@db"),
            "ssh -p 2222 postgres@db -o BatchMode=yes -o StrictHostKeyChecking=no"
        );
    }
}
