//! `barman check-wal-archive SERVER [--timeline N]`: whether the archive
//! can take a new server's WAL (empty, or nothing on timeline N or later).

use super::{Ctx, Inactive};
use crate::catalog::{xlogdb, ServerCatalog};
use crate::wal::name::is_wal_family;

/// Barman's `check_archive_usable` over the names of xlog.db.
pub fn usable(names: &[String], timeline: Option<u32>) -> Result<(), String> {
    let Some(tli) = timeline else {
        return if names.is_empty() {
            Ok(())
        } else {
            Err("Expected empty archive".into())
        };
    };
    let mut unexpected = 0;
    for n in names {
        let file_tli = is_wal_family(n)
            .then(|| n.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()))
            .flatten()
            .ok_or_else(|| format!("Unexpected file {n} found in WAL archive"))?;
        if tli <= file_tli {
            unexpected += 1;
        }
    }
    if unexpected > 0 {
        return Err(format!(
            "Found {unexpected} file{} in WAL archive equal to or newer than timeline {tli}",
            if unexpected > 1 { "s" } else { "" }
        ));
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx, server: &str, timeline: Option<u32>) {
    let Some(cfg) = ctx.server(server, Inactive::Skip) else {
        return;
    };
    let name = cfg.name.clone();
    if ctx.out.is_json() {
        ctx.out.json_entry(&name);
    } else {
        ctx.out.info(&format!("Server {name}:"));
    }
    let cat = ServerCatalog::new(&cfg);
    let names: Vec<String> = match xlogdb::read_entries(&cat.xlogdb_file()) {
        Ok(e) => e.into_iter().map(|e| e.name).collect(),
        Err(e) => return ctx.out.error(&e.to_string()),
    };
    match usable(&names, timeline) {
        Ok(()) if ctx.out.is_json() => ctx.out.json_set(
            &name,
            serde_json::Value::String(format!("WAL archive check for server {name} passed")),
        ),
        Ok(()) => ctx
            .out
            .info(&format!(" - WAL archive check for server {name} passed")),
        Err(e) => ctx
            .out
            .error(&format!("WAL archive check failed for server {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::usable;

    #[test]
    fn archive_usability_as_barman() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(usable(&[], None).is_ok());
        assert_eq!(
            usable(&n(&["000000010000000000000001"]), None).unwrap_err(),
            "Expected empty archive"
        );
        let names = n(&[
            "000000010000000000000001",
            "00000002.history",
            "000000020000000000000002",
        ]);
        assert!(usable(&names, Some(3)).is_ok());
        assert_eq!(
            usable(&names, Some(2)).unwrap_err(),
            "Found 2 files in WAL archive equal to or newer than timeline 2"
        );
        assert_eq!(
            usable(&n(&["junk"]), Some(1)).unwrap_err(),
            "Unexpected file junk found in WAL archive"
        );
    }
}
