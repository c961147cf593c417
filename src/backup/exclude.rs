//! What a file-level copy of PGDATA leaves out: Barman's rsync filter
//! lists (`PGDATA_EXCLUDE_LIST` anchored at the top, `EXCLUDE_LIST`
//! anywhere), encoded as rules over the path's components rather than as
//! glob text, since the lists are fixed. An excluded directory is not
//! descended into; `dir/*` rules keep the directory itself, empty.

/// Directories whose contents are never copied, wherever they are.
const EMPTIED_ANYWHERE: &[&str] = &[
    "pg_dynshmem",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_stat_tmp",
    "pg_snapshots",
    "pg_subtrans",
];

/// Names never copied, wherever they are.
const NAMES_ANYWHERE: &[&str] = &[
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "pg_internal.init",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "standby.signal",
];

/// Top-level PGDATA directories whose contents are never copied.
const EMPTIED_AT_TOP: &[&str] = &["pg_log", "log", "pg_xlog", "pg_wal"];

/// `t<digits>...`_`<digit>...`: a temporary relation's file.
fn is_temp_relation(name: &str, parent: &str) -> bool {
    let digit_start = |s: &str| s.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let Some(rest) = name.strip_prefix('t') else {
        return false;
    };
    digit_start(parent)
        && digit_start(rest)
        && rest
            .split_once('_')
            .is_some_and(|(_, after)| digit_start(after))
}

/// Whether `rel` (components under the copied root) is excluded by the
/// lists every item shares (`EXCLUDE_LIST`).
pub fn excluded_anywhere(rel: &[&str]) -> bool {
    let Some(name) = rel.last() else {
        return false;
    };
    if name.starts_with("pgsql_tmp") || NAMES_ANYWHERE.contains(name) {
        return true;
    }
    if rel.len() >= 2 && EMPTIED_ANYWHERE.contains(&rel[rel.len() - 2]) {
        return true;
    }
    rel.len() >= 3 && is_temp_relation(name, rel[rel.len() - 2])
}

/// Whether `rel` under PGDATA is excluded (both lists, plus the protected
/// tablespace links and tablespaces that live inside PGDATA).
pub fn excluded_pgdata(rel: &[&str], protected: &[Vec<String>]) -> bool {
    if rel.len() == 2 && EMPTIED_AT_TOP.contains(&rel[0]) {
        return true;
    }
    if rel == ["global", "pg_control"] {
        return true;
    }
    if protected
        .iter()
        .any(|p| p.len() <= rel.len() && p.iter().zip(rel).all(|(a, b)| a == b))
    {
        return true;
    }
    excluded_anywhere(rel)
}

/// Whether `rel` under a tablespace location is copied: only
/// `PG_<major>_*` at the top (Barman's `/PG_<major>_*` include), then the
/// shared list.
pub fn included_tablespace(rel: &[&str], major: &str) -> bool {
    let Some(top) = rel.first() else {
        return true;
    };
    top.starts_with(&format!("PG_{major}_")) && !excluded_anywhere(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<&str> {
        s.split('/').collect()
    }

    #[test]
    fn follows_barmans_rsync_filters() {
        let none: Vec<Vec<String>> = Vec::new();
        for (path, out) in [
            ("pg_wal/000000010000000000000001", true),
            ("pg_wal", false),
            ("pg_wal/archive_status", true),
            ("global/pg_control", true),
            ("global/1262", false),
            ("postmaster.pid", true),
            ("base/16384/pgsql_tmp", true),
            ("base/pgsql_tmp/pgsql_tmp123.0", true),
            ("base/16384/t3_16390", true),
            ("base/16384/16390", false),
            ("pg_stat_tmp/global.stat", true),
            ("pg_stat_tmp", false),
            ("pg_replslot/barman/state", false),
            ("pg_replslot/barman", true),
            ("base/1/pg_internal.init", true),
            ("postgresql.auto.conf", false),
            ("sub/log/x", false),
        ] {
            assert_eq!(excluded_pgdata(&p(path), &none), out, "{path}");
        }
        let protected = vec![vec!["pg_tblspc".to_string(), "16384".to_string()]];
        assert!(excluded_pgdata(&p("pg_tblspc/16384"), &protected));
        assert!(!excluded_pgdata(&p("pg_tblspc"), &protected));
        assert!(included_tablespace(&p("PG_15_202209061/16384/16390"), "15"));
        assert!(!included_tablespace(&p("PG_14_202107181/1"), "15"));
        assert!(!included_tablespace(&p("PG_15_202209061/16384/t2_1"), "15"));
    }
}
