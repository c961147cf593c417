//! `backup_method = local-rsync`, done natively: the concurrent backup API
//! over one SQL session (kept alive), PGDATA and tablespaces walked with
//! Barman's exclusion rules, every file copied by the pipeline in parallel
//! with read() (never mmap: a relation truncated under us would SIGBUS),
//! CRC32C computed and data-page checksums verified on the way, unchanged
//! files of the previous backup reused (`reuse_backup = link | copy`),
//! `global/pg_control` last, then `backup_label` and a PostgreSQL
//! `backup_manifest`.
//!
//! The layout is Barman's rsync layout: `data/` (PGDATA with an empty
//! `pg_tblspc/`), `<oid>/` per tablespace. Files that vanish during the
//! copy are normal (dropped tables); files that change are fixed by WAL
//! replay, which is why a page newer than the backup start is not judged.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::manifest::{self, FileEntry, WalRange};
use super::page::{self, BLCKSZ, RELSEG_SIZE};
use super::{exclude, tarball, Failure, Job};
use crate::fileio::{crc_of, fill, same_content};
use crate::pipeline::{self, Width};
use crate::postgres::session::Metadata;
use crate::wal::name::parse_lsn;

const CHUNK: usize = 1 << 20;

/// One file to copy.
#[derive(Debug, Clone)]
pub struct Task {
    pub src: PathBuf,
    pub dest: PathBuf,
    /// Path relative to the tree's root (the tar member name).
    pub rel: String,
    /// Path in the manifest (relative to data/), None for tablespace files.
    pub manifest_path: Option<String>,
    /// First block number of this file when its pages carry checksums.
    pub first_block: Option<u64>,
    /// The same file in the previous backup, when reuse is on.
    pub previous: Option<PathBuf>,
}

/// What copying one file produced.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub size: u64,
    pub mtime: i64,
    pub crc: u32,
    pub reused: bool,
    pub bad_blocks: Vec<u64>,
    pub vanished: bool,
}

/// What the copy rules need from the backup being taken.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Pages newer than this are left to WAL replay.
    pub start_lsn: u64,
    /// Reuse (link or copy) files older than this, unchanged in size/mtime.
    pub horizon: Option<i64>,
    pub link: bool,
    /// CRC32C of the previous backup's files, from its manifest.
    pub previous_crc: HashMap<PathBuf, (u64, i64, u32)>,
}

fn mtime_of(m: &fs::Metadata) -> i64 {
    m.mtime()
}

/// Copies one file (or reuses the previous backup's copy).
pub fn copy_one(buf: &mut Vec<u8>, task: &Task, rules: &Rules) -> Result<Copied, String> {
    if buf.len() < CHUNK {
        buf.resize(CHUNK, 0);
    }
    let ctx = |e: io::Error, p: &Path| format!("{}: {e}", p.display());
    let mut src = match File::open(&task.src) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Copied {
                vanished: true,
                ..Copied::default()
            })
        }
        Err(e) => return Err(ctx(e, &task.src)),
    };
    let meta = src.metadata().map_err(|e| ctx(e, &task.src))?;
    let mtime = mtime_of(&meta);
    if let (Some(prev), Some(horizon)) = (&task.previous, rules.horizon) {
        if let Ok(pm) = fs::metadata(prev) {
            // Older than the previous backup's start: size and mtime say
            // it is unchanged (rsync's quick check). Newer: only equal
            // content does (Barman runs rsync --checksum for those).
            let same = pm.len() == meta.len()
                && mtime_of(&pm) == mtime
                && (mtime < horizon || same_content(&task.src, prev, buf).unwrap_or(false));
            if same {
                let crc = match rules.previous_crc.get(prev) {
                    Some(&(size, m, crc)) if size == pm.len() && m == mtime => crc,
                    _ => crc_of(prev, buf).map_err(|e| ctx(e, prev))?,
                };
                if rules.link {
                    fs::hard_link(prev, &task.dest).map_err(|e| ctx(e, &task.dest))?;
                } else {
                    fs::copy(prev, &task.dest).map_err(|e| ctx(e, &task.dest))?;
                    let f = File::options()
                        .write(true)
                        .open(&task.dest)
                        .map_err(|e| ctx(e, &task.dest))?;
                    f.set_modified(
                        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64),
                    )
                    .map_err(|e| ctx(e, &task.dest))?;
                    f.sync_all().map_err(|e| ctx(e, &task.dest))?;
                }
                return Ok(Copied {
                    size: pm.len(),
                    mtime,
                    crc,
                    reused: true,
                    ..Copied::default()
                });
            }
        }
    }
    let mut out = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode((meta.mode() & 0o7777) | 0o600)
        .open(&task.dest)
        .map_err(|e| ctx(e, &task.dest))?;
    let mut crc = 0u32;
    let mut size = 0u64;
    let mut bad = Vec::new();
    loop {
        let n = fill(&mut src, buf).map_err(|e| ctx(e, &task.src))?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        if let Some(first) = task.first_block {
            let at = size / BLCKSZ as u64;
            bad.extend(page::bad_blocks(&src, data, first, at, rules.start_lsn));
        }
        crc = crc32c::crc32c_append(crc, data);
        out.write_all(data).map_err(|e| ctx(e, &task.dest))?;
        size += n as u64;
    }
    // rsync -t: the copy keeps the source's mtime (reuse judges by it).
    out.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64))
        .map_err(|e| ctx(e, &task.dest))?;
    out.sync_all().map_err(|e| ctx(e, &task.dest))?;
    fs::set_permissions(&task.dest, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| ctx(e, &task.dest))?;
    Ok(Copied {
        size,
        mtime,
        crc,
        bad_blocks: bad,
        ..Copied::default()
    })
}

/// One tree to copy: a tablespace or PGDATA.
pub struct Tree {
    /// Barman's copy item label: the tablespace name, or "pgdata".
    pub label: String,
    src: PathBuf,
    dest: PathBuf,
    /// Its tar archive's name without suffix: "base" or the tablespace OID.
    pub archive: String,
    /// Manifest prefix ("" for PGDATA; None: not in the manifest).
    manifest_prefix: Option<String>,
    previous: Option<PathBuf>,
    is_pgdata: bool,
}

/// A directory met by the walk (before any of its files); the tree's root
/// comes first, with an empty `rel`.
#[derive(Debug, Clone)]
pub struct Dir {
    pub dest: PathBuf,
    /// Path relative to the tree's root (the tar member name).
    pub rel: String,
    pub mode: u32,
    pub mtime: i64,
}

/// What the walk yields, in name order.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir(Dir),
    File(Task),
}

/// Walks the trees lazily and yields their directories and the files to
/// copy in name order, directories before their files. Lazy, so memory
/// does not grow with the file count: the pipeline pulls entries as its
/// window frees.
pub struct Walker<'a> {
    trees: std::slice::Iter<'a, Tree>,
    current: Option<(&'a Tree, walkdir::IntoIter)>,
    major: String,
    protected: Vec<Vec<String>>,
    checksums: bool,
}

impl Walker<'_> {
    fn step(
        &mut self,
        tree: &Tree,
        entry: walkdir::DirEntry,
        skip_dir: &mut bool,
    ) -> Result<Option<Entry>, String> {
        let rel_path = entry
            .path()
            .strip_prefix(&tree.src)
            .map_err(|e| e.to_string())?
            .to_path_buf();
        let rel: Vec<&str> = rel_path
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        let skip = if tree.is_pgdata {
            exclude::excluded_pgdata(&rel, &self.protected)
        } else {
            !exclude::included_tablespace(&rel, &self.major)
        };
        if skip {
            *skip_dir = entry.file_type().is_dir();
            return Ok(None);
        }
        let dest = tree.dest.join(&rel_path);
        if entry.file_type().is_dir() {
            let meta = entry.metadata().ok();
            return Ok(Some(Entry::Dir(Dir {
                dest,
                rel: rel.join("/"),
                mode: meta.as_ref().map(|m| m.mode() & 0o7777).unwrap_or(0o700),
                mtime: meta.as_ref().map(mtime_of).unwrap_or(0),
            })));
        }
        if !entry.file_type().is_file() {
            return Ok(None);
        }
        let name = rel.last().copied().unwrap_or_default();
        // Relation files live under base/, global/ or a tablespace's
        // PG_<major>_* directory.
        let in_relation_dir = if tree.is_pgdata {
            matches!(rel.first(), Some(&"base") | Some(&"global"))
        } else {
            true
        };
        let first_block = (self.checksums && in_relation_dir)
            .then(|| page::relation_segment(name))
            .flatten()
            .map(|seg| seg * RELSEG_SIZE);
        Ok(Some(Entry::File(Task {
            src: entry.path().to_path_buf(),
            dest,
            rel: rel.join("/"),
            manifest_path: tree
                .manifest_prefix
                .as_ref()
                .map(|p| format!("{p}{}", rel.join("/"))),
            first_block,
            previous: tree.previous.as_ref().map(|p| p.join(&rel_path)),
        })))
    }
}

impl Iterator for Walker<'_> {
    type Item = Result<Entry, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let tree = self.trees.next()?;
                let it = walkdir::WalkDir::new(&tree.src)
                    .follow_links(true)
                    .sort_by_file_name()
                    .into_iter();
                self.current = Some((tree, it));
            }
            let (tree, it) = self.current.as_mut().expect("set above");
            let tree: &Tree = tree;
            let entry = match it.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Ok(e)) => e,
                // Vanished while walking: nothing to copy.
                Some(Err(e))
                    if e.io_error()
                        .is_some_and(|i| i.kind() == io::ErrorKind::NotFound) =>
                {
                    continue
                }
                Some(Err(e)) => return Some(Err(e.to_string())),
            };
            let mut skip_dir = false;
            let r = self.step(tree, entry, &mut skip_dir);
            if skip_dir {
                if let Some((_, it)) = self.current.as_mut() {
                    it.skip_current_dir();
                }
            }
            match r {
                Ok(None) => continue,
                Ok(Some(t)) => return Some(Ok(t)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The plain copy's view of the walk: each directory is created as it is
/// met, before any of its files is handed to a worker; files become tasks.
fn plain_tasks<'a>(
    walker: Walker<'a>,
    created: &'a std::sync::Mutex<Vec<PathBuf>>,
) -> impl Iterator<Item = Result<Task, String>> + Send + 'a {
    walker.filter_map(move |e| match e {
        Ok(Entry::Dir(d)) => {
            let made = fs::create_dir_all(&d.dest).and_then(|_| {
                fs::set_permissions(&d.dest, fs::Permissions::from_mode(d.mode | 0o700))
            });
            match made {
                Ok(()) => {
                    created
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(d.dest);
                    None
                }
                Err(e) => Some(Err(format!("{}: {e}", d.dest.display()))),
            }
        }
        Ok(Entry::File(t)) => Some(Ok(t)),
        Err(e) => Some(Err(e)),
    })
}

/// What the copy found, for the messages and backup.info.
#[derive(Default)]
pub struct CopyReport {
    /// The backup_manifest being written (data/ files only).
    pub manifest: Option<manifest::Writer>,
    pub bytes: u64,
    pub reused: u64,
    pub bad_pages: Vec<(String, u64)>,
    /// `base.tar.*`, still open for backup_label (tar backups only).
    pub base_tar: Option<tarball::Stream>,
}

impl CopyReport {
    /// Accounts `bytes` copied of `task`'s file (all of it, or a range):
    /// progress and bad pages; with `whole` (size, mtime, CRC32C of the
    /// whole file, once it is all in) its manifest line.
    pub fn record(
        &mut self,
        task: &Task,
        bytes: u64,
        bad_blocks: &[u64],
        whole: Option<(u64, i64, u32)>,
        progress: &dyn Fn(u64),
    ) -> Result<(), String> {
        self.bytes += bytes;
        progress(bytes);
        let shown = task
            .manifest_path
            .clone()
            .unwrap_or_else(|| task.dest.display().to_string());
        for b in bad_blocks {
            self.bad_pages.push((shown.clone(), *b));
        }
        if let (Some((size, mtime, crc)), Some(path), Some(m)) =
            (whole, &task.manifest_path, self.manifest.as_mut())
        {
            m.add(&FileEntry {
                path: path.clone(),
                size,
                mtime,
                crc32c: Some(crc),
            })
            .map_err(|e| format!("backup_manifest: {e}"))?;
        }
        Ok(())
    }
}

/// Copies every task through the pipeline; the first error stops the run.
/// Returns the time the workers spent, summed (Barman's serialized copy
/// time).
fn copy_all(
    tasks: impl Iterator<Item = Result<Task, String>> + Send,
    jobs: usize,
    rules: &Rules,
    report: &mut CopyReport,
    progress: &dyn Fn(u64),
) -> Result<Duration, String> {
    let mut serialized = Duration::ZERO;
    pipeline::try_run(
        // Twice the jobs in threads: one waits on fsync while another copies.
        Width::new(jobs * 2),
        tasks,
        Vec::new,
        |buf: &mut Vec<u8>, t: &Result<Task, String>| {
            let started = Instant::now();
            let result = match t {
                Ok(t) => copy_one(buf, t, rules),
                Err(e) => Err(e.clone()),
            };
            (result, started.elapsed())
        },
        |task, (result, took)| {
            serialized += took;
            let task = task.expect("an Err task yields an Err result");
            let c = result?;
            if c.vanished {
                log::debug!("{} vanished during the copy", task.src.display());
                return Ok(());
            }
            report.reused += c.reused as u64;
            let whole = Some((c.size, c.mtime, c.crc));
            report.record(&task, c.size, &c.bad_blocks, whole, progress)
        },
    )?;
    Ok(serialized)
}

fn previous_manifest(data_dir: &Path) -> HashMap<PathBuf, (u64, i64, u32)> {
    let Ok(bytes) = fs::read(data_dir.join("backup_manifest")) else {
        return HashMap::new();
    };
    let Ok(m) = manifest::parse(&bytes) else {
        return HashMap::new();
    };
    m.files
        .into_iter()
        .filter_map(|f| Some((data_dir.join(&f.path), (f.size, f.mtime, f.crc32c?))))
        .collect()
}

/// The local-rsync method. Returns true: every file and directory written
/// is already fsynced.
pub fn run(job: &mut Job<'_>, action: &mut String) -> Result<bool, Failure> {
    let (session, mut copied, label_text) = super::concurrent(job, action, copy_phase)?;
    let data = job.data_dir();
    // The label goes where pg_basebackup puts it: inside base.tar for a
    // tar backup (which it then closes), else data/backup_label.
    let label_mtime = match copied.base_tar.take() {
        Some(base) => {
            *action = "writing backup label".into();
            base.finish_with(&[("backup_label", label_text.as_bytes())])
                .map_err(|e| Failure::new(action, e))?
        }
        None => {
            super::write_label(job, action, &label_text)?;
            fs::metadata(data.join("backup_label"))
                .map_err(|e| Failure::new(action, e))?
                .mtime()
        }
    };
    // The manifest, as pg_basebackup would have written it: the label last.
    let tli = job.info.get_int("timeline").unwrap_or(1) as u32;
    let range = WalRange {
        timeline: tli,
        start_lsn: job.info.get("begin_xlog").and_then(parse_lsn).unwrap_or(0),
        end_lsn: job.info.get("end_xlog").and_then(parse_lsn).unwrap_or(0),
    };
    let mut writer = copied.manifest.expect("created by the copy");
    writer
        .add(&FileEntry {
            path: "backup_label".into(),
            size: label_text.len() as u64,
            mtime: label_mtime,
            crc32c: Some(crc32c::crc32c(label_text.as_bytes())),
        })
        .and_then(|_| writer.finish(&[range]))
        .map_err(|e| Failure::new("writing the backup manifest", e))?;
    crate::durable::sync_dir(&data).map_err(|e| Failure::new(action, e))?;
    session.create_restore_point(&format!("barman_{}", job.id));
    Ok(true)
}

/// Everything between start and stop: the copy itself.
fn copy_phase(
    job: &mut Job<'_>,
    action: &mut String,
    meta: &Metadata,
) -> Result<CopyReport, Failure> {
    job.save()?;
    job.print_start();
    job.purge_before_first();
    *action = "copying files".into();
    let mut line = format!("Starting backup copy via local rsync for {}", job.id);
    if job.plan.jobs > 1 {
        line.push_str(&format!(" ({} jobs)", job.plan.jobs));
    }
    job.out.info(&line);
    job.mark_copy_start();
    let analysis = std::time::Instant::now();

    let (prev_base, horizon) = job.reuse_source();
    let rules = Rules {
        start_lsn: job.info.get("begin_xlog").and_then(parse_lsn).unwrap_or(0),
        horizon,
        link: job.plan.reuse.as_deref() == Some("link"),
        previous_crc: prev_base
            .as_ref()
            .map(|p| previous_manifest(&p.join("data")))
            .unwrap_or_default(),
    };
    let major = (meta.version / 10000).to_string();
    let checksums = meta.data_checksums.as_deref() == Some("on");
    let base = job.base_dir();
    let data = job.data_dir();
    let mut dirs = vec![base.clone()];
    let mut trees = Vec::new();
    let mut protected: Vec<Vec<String>> = Vec::new();
    // A tar backup's manifest lists tablespace files as pg_basebackup's
    // does; the rsync layout's tablespace copies are not in it.
    let tar = job.cfg.get_str("backup_compression").is_some();
    for (name, oid, loc) in &meta.tablespaces {
        if let Some(inside) = loc.strip_prefix(&format!("{}/", meta.data_directory)) {
            protected.push(inside.split('/').map(str::to_string).collect());
        }
        protected.push(vec!["pg_tblspc".into(), oid.to_string()]);
        trees.push(Tree {
            label: name.clone(),
            src: PathBuf::from(loc),
            dest: base.join(oid.to_string()),
            archive: oid.to_string(),
            manifest_prefix: tar.then(|| format!("pg_tblspc/{oid}/")),
            previous: prev_base.as_ref().map(|p| p.join(oid.to_string())),
            is_pgdata: false,
        });
    }
    trees.push(Tree {
        label: "pgdata".into(),
        src: PathBuf::from(&meta.data_directory),
        dest: data.clone(),
        archive: "base".into(),
        manifest_prefix: Some(String::new()),
        previous: prev_base.as_ref().map(|p| p.join("data")),
        is_pgdata: true,
    });
    let fail = |e: String| Failure::new("copying files", format!("data transfer failure\n{e}"));
    // Configuration files outside PGDATA land in data/ by name.
    let mut extra = Vec::new();
    for (kind, f) in [
        ("config_file", &meta.config_file),
        ("hba_file", &meta.hba_file),
        ("ident_file", &meta.ident_file),
    ] {
        let Some(f) = f else { continue };
        if !f.starts_with(&format!("{}/", meta.data_directory)) {
            let name = Path::new(f)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            extra.push((
                kind.to_string(),
                Task {
                    src: PathBuf::from(f),
                    dest: data.join(&name),
                    rel: name.clone(),
                    manifest_path: Some(name),
                    first_block: None,
                    previous: None,
                },
            ));
        }
    }
    let walker = |trees| Walker {
        trees,
        current: None,
        major: major.clone(),
        protected: protected.clone(),
        checksums,
    };
    // The bar needs a total: one extra stat-only walk, on a terminal only.
    let total: u64 = if job.options.progress {
        walker(trees.iter())
            .flatten()
            .filter_map(|e| match e {
                Entry::File(t) => fs::metadata(&t.src).ok(),
                Entry::Dir(_) => None,
            })
            .map(|m| m.len())
            .sum()
    } else {
        0
    };
    let analysis_time = analysis.elapsed().as_secs_f64();
    let bar = progress_bar(job.options.progress, total);
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    fs::create_dir_all(&data).map_err(|e| fail(format!("{}: {e}", data.display())))?;
    let mut report = CopyReport {
        manifest: Some(
            manifest::Writer::create(&data.join("backup_manifest"))
                .map_err(|e| fail(format!("{}: {e}", data.join("backup_manifest").display())))?,
        ),
        ..CopyReport::default()
    };
    // pg_control last: it says where replay starts.
    extra.push((
        "pg_control".into(),
        Task {
            src: PathBuf::from(&meta.data_directory).join("global/pg_control"),
            dest: data.join("global/pg_control"),
            rel: "global/pg_control".into(),
            manifest_path: Some("global/pg_control".into()),
            first_block: None,
            previous: None,
        },
    ));
    // Barman's copy items, in its order: each tablespace, PGDATA, the
    // configuration files outside PGDATA, pg_control; per item the wall
    // time and the summed worker time, as Barman's copy_stats report them.
    // The walk is interleaved with the copy, so there is no separate
    // analysis time per item.
    let mut analysis_per_item: Vec<(String, f64)> = Vec::new();
    let mut copy_per_item: Vec<(String, f64, f64)> = Vec::new();
    let copying = Instant::now();
    if let Some(format) = tarball::Format::from_config(job.cfg) {
        let base_tar = tarball::copy(
            &format,
            &data,
            &trees,
            walker,
            extra,
            job.plan.jobs,
            &rules,
            &mut report,
            &tick,
            &mut copy_per_item,
        )
        .map_err(fail)?;
        report.base_tar = Some(base_tar);
        analysis_per_item.extend(trees.iter().map(|t| (t.label.clone(), 0.0)));
        job.set("compression", Some(format.kind.clone()));
    } else {
        let created = std::sync::Mutex::new(std::mem::take(&mut dirs));
        for tree in &trees {
            let started = Instant::now();
            let tasks = plain_tasks(walker(std::slice::from_ref(tree).iter()), &created);
            let serialized =
                copy_all(tasks, job.plan.jobs, &rules, &mut report, &tick).map_err(fail)?;
            analysis_per_item.push((tree.label.clone(), 0.0));
            copy_per_item.push((
                tree.label.clone(),
                started.elapsed().as_secs_f64(),
                serialized.as_secs_f64(),
            ));
        }
        for (label, task) in extra {
            let started = Instant::now();
            let serialized =
                copy_all(std::iter::once(Ok(task)), 1, &rules, &mut report, &tick).map_err(fail)?;
            copy_per_item.push((
                label,
                started.elapsed().as_secs_f64(),
                serialized.as_secs_f64(),
            ));
        }
        dirs = created.into_inner().unwrap_or_else(|p| p.into_inner());
        // An empty pg_tblspc/ as Barman's rsync layout has.
        let tblspc = data.join("pg_tblspc");
        if !tblspc.exists() {
            fs::create_dir_all(&tblspc).map_err(|e| fail(e.to_string()))?;
            dirs.push(tblspc);
        }
    }
    let copy_time = copying.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for d in dirs.iter().rev() {
        crate::durable::sync_dir(d).map_err(|e| fail(format!("{}: {e}", d.display())))?;
    }
    if !report.bad_pages.is_empty() {
        let mut by_file: Vec<(String, Vec<u64>)> = Vec::new();
        for (f, b) in &report.bad_pages {
            match by_file.iter_mut().find(|(n, _)| n == f) {
                Some((_, v)) => v.push(*b),
                None => by_file.push((f.clone(), vec![*b])),
            }
        }
        for (f, blocks) in &by_file {
            let list: Vec<String> = blocks.iter().map(u64::to_string).collect();
            job.out.warning(&format!(
                "invalid data page checksum in file '{f}', block(s): {}",
                list.join(", ")
            ));
        }
    }
    let secs = job.copy_seconds();
    let mut repr = rsync_copy_stats_repr(
        secs,
        job.plan.jobs,
        &analysis_per_item,
        &copy_per_item,
        analysis_time,
        copy_time,
    );
    if !report.bad_pages.is_empty() {
        let items: Vec<String> = report
            .bad_pages
            .iter()
            .map(|(f, b)| format!("({}, {b})", crate::config::types::python_repr_str(f)))
            .collect();
        repr.pop();
        repr.push_str(&format!(", 'invalid_pages': [{}]}}", items.join(", ")));
    }
    job.set("copy_stats", Some(repr));
    job.print_copy_done(secs);
    job.purge_before_first();
    Ok(report)
}

fn progress_bar(enabled: bool, total: u64) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Barman's `RsyncCopyController.statistics()` dict, keys in its order.
fn rsync_copy_stats_repr(
    total_time: f64,
    workers: usize,
    analysis_per_item: &[(String, f64)],
    copy_per_item: &[(String, f64, f64)],
    analysis_time: f64,
    copy_time: f64,
) -> String {
    use crate::config::types::python_repr_str;
    // Python's total_seconds(): microsecond resolution.
    let secs = |s: f64| crate::output::python_float_repr((s * 1e6).round() / 1e6);
    let dict = |pairs: Vec<(&str, f64)>| -> String {
        let items: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{}: {}", python_repr_str(k), secs(v)))
            .collect();
        format!("{{{}}}", items.join(", "))
    };
    let serialized: f64 = copy_per_item.iter().map(|(_, _, s)| s).sum();
    format!(
        "{{'total_time': {}, 'number_of_workers': {workers}, 'analysis_time_per_item': {}, \
         'copy_time_per_item': {}, 'serialized_copy_time_per_item': {}, 'analysis_time': {}, \
         'copy_time': {}, 'serialized_copy_time': {}}}",
        secs(total_time),
        dict(
            analysis_per_item
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect()
        ),
        dict(
            copy_per_item
                .iter()
                .map(|(k, v, _)| (k.as_str(), *v))
                .collect()
        ),
        dict(
            copy_per_item
                .iter()
                .map(|(k, _, s)| (k.as_str(), *s))
                .collect()
        ),
        secs(analysis_time),
        secs(copy_time),
        secs(serialized),
    )
}
