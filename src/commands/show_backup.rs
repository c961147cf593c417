//! `barman show-backup SERVER BACKUP` (alias `show-backups`): everything
//! about one backup, as Barman's console and JSON writers render the result
//! of `get_backup_ext_info`. Rows appear under Barman's conditions (DESIGN
//! 8.2); a backup whose copy is not done shows its general rows and error.

use serde_json::{json, Map, Value as J};

use super::Ctx;
use crate::catalog::backup_ext::{self, backup_type, copy_done, py_str, ExtInfo};
use crate::catalog::backups::{self, Backup};
use crate::catalog::pylit::PyValue;
use crate::catalog::retention;
use crate::catalog::xlogdb;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::output::{human_duration, pretty_size};

pub fn run(ctx: &mut Ctx, server: &str, backup_id: &str) {
    // Barman shows backups of inactive and disabled servers too.
    let Some(cfg) = ctx.server_lenient(server) else {
        return;
    };
    if let Err(e) = show(ctx, &cfg, backup_id) {
        ctx.out.error(&e);
    }
}

fn show(ctx: &mut Ctx, cfg: &ServerConfig, backup_id: &str) -> Result<(), String> {
    let cat = ServerCatalog::new(cfg);
    let list = backups::load(&cat).map_err(|e| e.to_string())?;
    let b = backups::resolve(&list, &cfg.name, backup_id)?;
    let ext = if copy_done(b) {
        let entries = xlogdb::XlogDb::lock(&cat, &ctx.config.lock_directory)
            .and_then(|db| db.entries())
            .map_err(|e| e.to_string())?;
        let custom = crate::wal::archiver::custom_filters(cfg).unwrap_or_default();
        let ext = backup_ext::ext_info(&list, b, &entries, &cat.wals_directory, &custom);
        let status = cfg.retention_policy().map(|p| {
            let report =
                retention::report(&list, p, cfg.minimum_redundancy(), jiff::Timestamp::now());
            report.get(&b.id).copied().unwrap_or(retention::NONE)
        });
        Some((ext, status))
    } else {
        None
    };
    if ctx.out.is_json() {
        let key = b.info.get("server_name").unwrap_or(&cfg.name).to_string();
        ctx.out.json_set(&key, json_of(b, ext.as_ref()));
    } else {
        for line in console(b, ext.as_ref()) {
            ctx.out.info_nolog(&line);
        }
    }
    Ok(())
}

/// A field as Python's `str()` shows it: its text, or `None`.
fn py(b: &Backup, key: &str) -> String {
    b.info.get(key).unwrap_or("None").to_string()
}

/// `{:.2%}`: Python multiplies by 100, then formats with two decimals.
fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// `str(datetime)` of a stored time: Barman wrote it with its offset; a
/// naive one is read as local time and gains the local offset.
pub fn iso_time(text: Option<&str>) -> String {
    let Some(t) = text else {
        return "None".into();
    };
    let has_offset = t.len() > 19 && t[19..].contains(['+', '-', 'Z']);
    if has_offset {
        return t.to_string();
    }
    match retention::parse_time(t) {
        Some(ts) => {
            let off = jiff::tz::TimeZone::system().to_offset(ts).seconds();
            let sign = if off < 0 { '-' } else { '+' };
            let off = off.abs();
            format!("{t}{sign}{:02}:{:02}", off / 3600, (off / 60) % 60)
        }
        None => t.to_string(),
    }
}

fn row(k: &str, v: impl std::fmt::Display) -> String {
    format!("  {k:<23}: {v}")
}

fn nested(k: &str, v: impl std::fmt::Display) -> String {
    format!("    {k:<21}: {v}")
}

fn header(k: &str) -> String {
    format!("  {k}:")
}

fn console(b: &Backup, ext: Option<&(ExtInfo, Option<&'static str>)>) -> Vec<String> {
    let mut out = vec![format!("Backup {}:", b.id)];
    let info = &b.info;
    if let Some(name) = info.get("backup_name") {
        out.push(row("Backup Name", name));
    }
    out.push(row("Server Name", py(b, "server_name")));
    if let Some(id) = info.get("systemid") {
        out.push(row("System Id", id));
    }
    out.push(row("Status", info.status()));
    if ext.is_some() {
        out.push(row("PostgreSQL Version", py(b, "version")));
        out.push(row("PGDATA directory", py(b, "pgdata")));
        if let Some(size) = info.get_int("cluster_size").filter(|s| *s != 0) {
            out.push(row("Estimated Cluster Size", pretty_size(size as f64)));
        }
    }
    out.push(String::new());

    let checksums = info.get("data_checksums");
    let summarize = info.get("summarize_wal");
    if checksums.is_some() || summarize.is_some() {
        out.push(header("Server information"));
        if let Some(c) = checksums {
            out.push(nested("Checksums", c));
        }
        if let Some(s) = summarize {
            out.push(nested("WAL summarizer", s));
        }
        out.push(String::new());
    }

    let Some((ext, rstatus)) = ext else {
        if let Some(e) = info.get("error") {
            out.push(row("Error", e));
        }
        return out;
    };

    let tbs = backup_ext::tablespaces(&b.info);
    if !tbs.is_empty() {
        out.push(header("Tablespaces"));
        for t in &tbs {
            out.push(nested(
                &t.name,
                format!("{} (oid: {})", t.location, py_str(&t.oid)),
            ));
        }
        out.push(String::new());
    }

    // Base backup information.
    out.push(header("Base backup information"));
    let mode = info.get("mode");
    if let Some(m) = mode {
        out.push(nested("Backup Method", m));
    }
    if let Some(e) = info.get("encryption") {
        out.push(nested("Encryption", e));
    }
    let btype = backup_type(b);
    if mode == Some("postgres") {
        out.push(nested("Backup Type", btype));
    }
    let backup_size = info.get_int("deduplicated_size").unwrap_or(0);
    let wal_size = ext.wal.wal_size;
    if backup_size != 0 {
        let mut s = pretty_size(backup_size as f64);
        if wal_size != 0 {
            s.push_str(&format!(
                " ({} with WALs)",
                pretty_size((backup_size as u64 + wal_size) as f64)
            ));
        }
        out.push(nested("Backup Size", s));
    }
    if let Some(c) = info.get("compression").filter(|c| *c != "none") {
        out.push(nested("Backup Compression", c));
    }
    if wal_size != 0 {
        out.push(nested("WAL Size", pretty_size(wal_size as f64)));
    }
    if matches!(btype, "rsync" | "incremental") {
        out.push(nested(
            "Resources saved",
            format!(
                "{} ({})",
                pretty_size(ext.est_dedup_size),
                percent(ext.deduplication_ratio)
            ),
        ));
    }
    out.push(nested("Timeline", py(b, "timeline")));
    out.push(nested("Begin WAL", py(b, "begin_wal")));
    out.push(nested("End WAL", py(b, "end_wal")));
    if ext.wal.wal_num != 0 {
        out.push(nested("Number of WALs", ext.wal.wal_num));
    }
    if ext.wal.compression_ratio > 0.0 {
        out.push(nested(
            "WAL compression ratio",
            percent(ext.wal.compression_ratio),
        ));
    }
    out.push(nested("Begin time", iso_time(info.get("begin_time"))));
    out.push(nested("End time", iso_time(info.get("end_time"))));
    if let Some(copy) = ext.copy_time {
        let mut s = human_duration(copy);
        if let Some(a) = ext.analysis_time {
            s.push_str(&format!(" + {} startup", human_duration(a)));
        }
        out.push(nested("Copy time", s));
        if let Some(t) = ext.estimated_throughput {
            let mut s = format!("{}/s", pretty_size(t));
            if ext.number_of_workers > 1 {
                s.push_str(&format!(" ({} jobs)", ext.number_of_workers));
            }
            out.push(nested("Estimated throughput", s));
        }
    }
    out.push(nested("Begin Offset", py(b, "begin_offset")));
    out.push(nested("End Offset", py(b, "end_offset")));
    out.push(nested("Begin LSN", py(b, "begin_xlog")));
    out.push(nested("End LSN", py(b, "end_xlog")));
    out.push(String::new());

    // WAL information.
    let w = &ext.wal;
    out.push(header("WAL information"));
    out.push(nested("Number of files", w.until_next_num));
    out.push(nested("Disk usage", pretty_size(w.until_next_size as f64)));
    if w.wals_per_second > 0.0 {
        out.push(nested(
            "WAL rate",
            format!("{:.2}/hour", w.wals_per_second * 3600.0),
        ));
    }
    if w.until_next_compression_ratio > 0.0 {
        out.push(nested(
            "Compression ratio",
            percent(w.until_next_compression_ratio),
        ));
    }
    out.push(nested(
        "Last available",
        w.wal_last.as_deref().unwrap_or("None"),
    ));
    if !ext.children_timelines.is_empty() {
        let tlis: Vec<String> = ext
            .children_timelines
            .iter()
            .map(|h| h.tli.to_string())
            .collect();
        out.push(nested("Reachable timelines", tlis.join(", ")));
    }
    out.push(String::new());

    // Catalog information.
    out.push(header("Catalog information"));
    out.push(nested(
        "Retention Policy",
        rstatus.unwrap_or("not enforced"),
    ));
    out.push(nested(
        "Previous Backup",
        ext.previous_id
            .as_deref()
            .unwrap_or("- (this is the oldest base backup)"),
    ));
    out.push(nested(
        "Next Backup",
        ext.next_id
            .as_deref()
            .unwrap_or("- (this is the latest base backup)"),
    ));
    if !ext.children_timelines.is_empty() {
        out.push(String::new());
        out.push(
            "WARNING: WAL information is inaccurate due to multiple timelines interacting with this backup"
                .into(),
        );
    }
    if btype == "incremental" {
        out.push(nested("Root Backup", &ext.root_id));
        out.push(nested("Parent Backup", py(b, "parent_backup_id")));
        out.push(nested("Backup chain size", ext.chain_size));
    }
    if mode == Some("postgres") {
        if let Some(children) = info.get("children_backup_ids") {
            out.push(nested("Children Backup(s)", children));
        }
    }
    out
}

fn int_or_null(b: &Backup, key: &str) -> J {
    b.info.get_int(key).map_or(J::Null, |n| json!(n))
}

fn str_or_null(b: &Backup, key: &str) -> J {
    b.info.get(key).map_or(J::Null, |s| json!(s))
}

fn timestamp(text: Option<&str>) -> String {
    text.and_then(retention::parse_time)
        .map(|t| t.as_second().to_string())
        .unwrap_or_default()
}

/// Barman's JSON writer `result_show_backup`.
fn json_of(b: &Backup, ext: Option<&(ExtInfo, Option<&'static str>)>) -> J {
    let info = &b.info;
    let mut o = Map::new();
    o.insert("backup_id".into(), json!(b.id));
    o.insert("status".into(), json!(info.status()));
    if let Some(n) = info.get("backup_name") {
        o.insert("backup_name".into(), json!(n));
    }
    if let Some(id) = info.get("systemid") {
        o.insert("system_id".into(), json!(id));
    }
    if ext.is_some() {
        o.insert("backup_type".into(), json!(backup_type(b)));
    }
    o.insert(
        "server_information".into(),
        json!({
            "data_checksums": str_or_null(b, "data_checksums"),
            "summarize_wal": str_or_null(b, "summarize_wal"),
        }),
    );
    let Some((ext, rstatus)) = ext else {
        if let Some(e) = info.get("error") {
            o.insert("error".into(), json!(e));
        }
        return J::Object(o);
    };
    if let Some(size) = info.get_int("cluster_size").filter(|s| *s != 0) {
        o.insert("cluster_size".into(), json!(pretty_size(size as f64)));
        o.insert("cluster_size_bytes".into(), json!(size));
    }
    o.insert("postgresql_version".into(), int_or_null(b, "version"));
    o.insert("pgdata_directory".into(), str_or_null(b, "pgdata"));

    let dedup = info.get_int("deduplicated_size").unwrap_or(0);
    let w = &ext.wal;
    let mut base = Map::new();
    base.insert("backup_method".into(), str_or_null(b, "mode"));
    base.insert("encryption".into(), str_or_null(b, "encryption"));
    base.insert("compression".into(), str_or_null(b, "compression"));
    base.insert("backup_size".into(), json!(pretty_size(dedup as f64)));
    base.insert("backup_size_bytes".into(), json!(dedup));
    let with_wals = dedup + w.wal_size as i64;
    base.insert(
        "backup_size_with_wals".into(),
        json!(pretty_size(with_wals as f64)),
    );
    base.insert("backup_size_with_wals_bytes".into(), json!(with_wals));
    base.insert("wal_size".into(), json!(pretty_size(w.wal_size as f64)));
    base.insert("wal_size_bytes".into(), json!(w.wal_size));
    base.insert("timeline".into(), int_or_null(b, "timeline"));
    base.insert("begin_wal".into(), str_or_null(b, "begin_wal"));
    base.insert("end_wal".into(), str_or_null(b, "end_wal"));
    base.insert("wal_num".into(), json!(w.wal_num));
    base.insert(
        "begin_time_timestamp".into(),
        json!(timestamp(info.get("begin_time"))),
    );
    base.insert("begin_time".into(), json!(iso_time(info.get("begin_time"))));
    base.insert(
        "end_time_timestamp".into(),
        json!(timestamp(info.get("end_time"))),
    );
    base.insert("end_time".into(), json!(iso_time(info.get("end_time"))));
    base.insert("begin_offset".into(), int_or_null(b, "begin_offset"));
    base.insert("end_offset".into(), int_or_null(b, "end_offset"));
    base.insert("begin_lsn".into(), str_or_null(b, "begin_xlog"));
    base.insert("end_lsn".into(), str_or_null(b, "end_xlog"));
    let btype = backup_type(b);
    if matches!(btype, "rsync" | "incremental") {
        base.insert(
            "resources_saved".into(),
            json!(pretty_size(ext.est_dedup_size)),
        );
        base.insert(
            "resources_saved_bytes".into(),
            json!(ext.est_dedup_size as i64),
        );
        base.insert(
            "resources_saved_percentage".into(),
            json!(percent(ext.deduplication_ratio)),
        );
    }
    if w.compression_ratio > 0.0 {
        base.insert(
            "wal_compression_ratio".into(),
            json!(percent(w.compression_ratio)),
        );
    }
    if let Some(cp) = ext.copy_time {
        base.insert("copy_time".into(), json!(human_duration(cp)));
        base.insert("copy_time_seconds".into(), json!(cp));
        if let Some(a) = ext.analysis_time {
            base.insert("analysis_time".into(), json!(human_duration(a)));
            base.insert("analysis_time_seconds".into(), json!(a));
        }
        let t = ext.estimated_throughput.unwrap_or(dedup as f64 / cp);
        base.insert("throughput".into(), json!(format!("{}/s", pretty_size(t))));
        base.insert("throughput_bytes".into(), json!(t as i64));
        base.insert("number_of_workers".into(), json!(ext.number_of_workers));
    }
    o.insert("base_backup_information".into(), J::Object(base));

    let tbs: Vec<J> = backup_ext::tablespaces(&b.info)
        .into_iter()
        .map(|t| {
            let oid = match t.oid {
                PyValue::Int(n) => json!(n),
                other => json!(py_str(&other)),
            };
            json!({"name": t.name, "location": t.location, "oid": oid})
        })
        .collect();
    o.insert("tablespaces".into(), J::Array(tbs));

    let mut cat = Map::new();
    cat.insert(
        "retention_policy".into(),
        json!(rstatus.unwrap_or("not enforced")),
    );
    cat.insert(
        "previous_backup".into(),
        json!(ext
            .previous_id
            .as_deref()
            .unwrap_or("- (this is the oldest base backup)")),
    );
    cat.insert(
        "next_backup".into(),
        json!(ext
            .next_id
            .as_deref()
            .unwrap_or("- (this is the latest base backup)")),
    );
    if btype == "incremental" {
        cat.insert("root_backup_id".into(), json!(ext.root_id));
        cat.insert(
            "parent_backup_id".into(),
            str_or_null(b, "parent_backup_id"),
        );
        cat.insert("chain_size".into(), json!(ext.chain_size));
    }
    if info.get("mode") == Some("postgres") {
        let children = info
            .get("children_backup_ids")
            .map_or(J::Null, |c| json!(c.split(',').collect::<Vec<_>>()));
        cat.insert("children_backup_ids".into(), children);
    }
    o.insert("catalog_information".into(), J::Object(cat));

    let mut wo = Map::new();
    wo.insert("no_of_files".into(), json!(w.until_next_num));
    wo.insert(
        "disk_usage".into(),
        json!(pretty_size(w.until_next_size as f64)),
    );
    wo.insert("disk_usage_bytes".into(), json!(w.until_next_size));
    wo.insert("wal_rate".into(), json!(0));
    wo.insert("wal_rate_per_second".into(), json!(0));
    wo.insert("compression_ratio".into(), json!(0));
    wo.insert(
        "last_available".into(),
        w.wal_last.as_deref().map_or(J::Null, |l| json!(l)),
    );
    if w.wals_per_second > 0.0 {
        wo.insert(
            "wal_rate".into(),
            json!(format!("{:.2}/hour", w.wals_per_second * 3600.0)),
        );
        wo.insert("wal_rate_per_second".into(), json!(w.wals_per_second));
    }
    if w.until_next_compression_ratio > 0.0 {
        wo.insert(
            "compression_ratio".into(),
            json!(percent(w.until_next_compression_ratio)),
        );
    }
    let mut tl = Vec::new();
    if !ext.children_timelines.is_empty() {
        // Barman's literal, line continuations and all.
        wo.insert(
            "_WARNING".into(),
            json!(format!(
                "WAL information is inaccurate {pad}due to multiple timelines interacting with {pad}this backup",
                pad = " ".repeat(20)
            )),
        );
        tl = ext
            .children_timelines
            .iter()
            .map(|h| json!(h.tli.to_string()))
            .collect();
    }
    wo.insert("timelines".into(), J::Array(tl));
    o.insert("wal_information".into(), J::Object(wo));
    J::Object(o)
}
