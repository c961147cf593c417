//! The SQL side: what Barman's `fetch_remote_status` gathers, with the same
//! queries, so `check`, `status` and `show-servers` judge a server alike.

use std::collections::BTreeMap;
use std::time::Duration;

use postgres::Client;

use super::conninfo;

/// A connection, or why there is none (one line, for hints).
pub fn connect(conninfo_text: &str, timeout: Option<Duration>) -> Result<Client, String> {
    let (mut cfg, tls) = conninfo::to_pg_config(conninfo_text)?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(timeout.unwrap_or(Duration::from_secs(30)));
    }
    cfg.connect(tls).map_err(|e| one_line(&pg_error_text(&e)))
}

/// libpq-like text for a connection or query error.
pub fn pg_error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Settings Barman's remote status reports under their own names.
pub const SHOWN_SETTINGS: &[&str] = &[
    "wal_level",
    "hot_standby",
    "max_wal_senders",
    "data_checksums",
    "max_replication_slots",
    "wal_compression",
    "archive_timeout",
    "checkpoint_timeout",
];

/// A replication slot's state as `check` needs it.
#[derive(Debug, Clone)]
pub struct Slot {
    pub active: bool,
    pub restart_lsn: Option<String>,
}

/// What PostgreSQL tells about itself. Every field is None when the server
/// could not be asked, as in Barman's remote status.
#[derive(Debug, Clone, Default)]
pub struct PgStatus {
    pub connection_error: Option<String>,
    pub server_version: Option<i64>,
    pub server_txt_version: Option<String>,
    pub is_superuser: Option<bool>,
    pub has_backup_privileges: Option<bool>,
    pub is_in_recovery: Option<bool>,
    pub settings: BTreeMap<&'static str, String>,
    pub current_lsn: Option<String>,
    pub current_xlog: Option<String>,
    pub current_size: Option<i64>,
    pub systemid: Option<String>,
    pub replication_slot: Option<Slot>,
    pub is_archiving: Option<bool>,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<String>,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<String>,
    pub failed_count: Option<i64>,
    pub archived_count: Option<i64>,
    pub current_archived_wals_per_second: Option<f64>,
}

impl PgStatus {
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// Asks everything, stopping at the first failure like Barman (whose
    /// remaining keys stay None).
    pub fn fetch(
        conninfo_text: &str,
        slot_name: Option<&str>,
        timeout: Option<Duration>,
    ) -> PgStatus {
        let mut st = PgStatus::default();
        let mut client = match connect(conninfo_text, timeout) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("Error retrieving PostgreSQL status: {e}");
                st.connection_error = Some(e);
                return st;
            }
        };
        if let Err(e) = st.fill(&mut client, slot_name) {
            let text = one_line(&pg_error_text(&e));
            log::warn!("Error retrieving PostgreSQL status: {text}");
            st.connection_error = Some(text);
        }
        st
    }

    fn fill(&mut self, c: &mut Client, slot_name: Option<&str>) -> Result<(), postgres::Error> {
        let row = c.query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version'), \
             (SELECT usesuper FROM pg_user WHERE usename = CURRENT_USER), pg_is_in_recovery()",
            &[],
        )?;
        let version: i32 = row.get(0);
        self.server_version = Some(version as i64);
        let txt: String = row.get(1);
        self.server_txt_version = txt.split_whitespace().next().map(str::to_string);
        self.is_superuser = row.get::<_, Option<bool>>(2);
        self.is_in_recovery = Some(row.get(3));
        self.has_backup_privileges = Some(
            c.query_one(&backup_privileges_query(version as i64), &[])?
                .get::<_, Option<bool>>(0)
                .unwrap_or(false),
        );

        let mut names: Vec<&'static str> = SHOWN_SETTINGS.to_vec();
        names.extend([
            "archive_mode",
            "archive_command",
            "synchronous_standby_names",
            "config_file",
            "hba_file",
            "ident_file",
            "wal_segment_size",
        ]);
        names.push(if version < 130000 {
            "wal_keep_segments"
        } else {
            "wal_keep_size"
        });
        if self.has_backup_privileges == Some(true) {
            names.push("data_directory");
        }
        for name in names {
            let v: String = c.query_one("SELECT current_setting($1)", &[&name])?.get(0);
            self.settings.insert(name, v);
        }
        if self.is_in_recovery == Some(false) {
            let row = c.query_one(
                "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())",
                &[],
            )?;
            self.current_lsn = Some(row.get(0));
            self.current_xlog = Some(row.get(1));
        }
        self.current_size = c
            .query_one(
                "SELECT sum(pg_database_size(oid))::bigint FROM pg_database WHERE datallowconn",
                &[],
            )?
            .get::<_, Option<i64>>(0);
        self.systemid = Some(
            c.query_one(
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            )?
            .get(0),
        );
        if let Some(slot) = slot_name {
            let rows = c.query(
                "SELECT active, restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )?;
            self.replication_slot = rows.first().map(|r| Slot {
                active: r.get(0),
                restart_lsn: r.get(1),
            });
        }
        let row = c.query_one(
            "SELECT current_setting('archive_mode') IN ('on', 'always') \
             AND (last_failed_wal IS NULL \
             OR last_failed_wal LIKE '%.history' \
             AND substring(last_failed_wal from 1 for 8) <= substring(last_archived_wal from 1 for 8) \
             OR last_failed_time <= last_archived_time), \
             last_archived_wal, last_archived_time::text, last_failed_wal, last_failed_time::text, \
             failed_count, archived_count, \
             (CAST (archived_count AS NUMERIC) / EXTRACT (EPOCH FROM age(now(), stats_reset)))::float8 \
             FROM pg_stat_archiver",
            &[],
        )?;
        self.is_archiving = row.get(0);
        self.last_archived_wal = row.get(1);
        self.last_archived_time = row.get(2);
        self.last_failed_wal = row.get(3);
        self.last_failed_time = row.get(4);
        self.failed_count = row.get(5);
        self.archived_count = row.get(6);
        self.current_archived_wals_per_second = row.get(7);
        Ok(())
    }
}

/// Barman's `has_backup_privileges` query for this server version.
fn backup_privileges_query(version: i64) -> String {
    if version < 100000 {
        return "SELECT usesuper FROM pg_user WHERE usename = CURRENT_USER".into();
    }
    let (start, stop) = if version < 150000 {
        (
            "has_function_privilege(CURRENT_USER, 'pg_start_backup(text,bool,bool)', 'EXECUTE')",
            "has_function_privilege(CURRENT_USER, 'pg_stop_backup()', 'EXECUTE') OR \
             has_function_privilege(CURRENT_USER, 'pg_stop_backup(bool,bool)', 'EXECUTE')",
        )
    } else {
        (
            "has_function_privilege(CURRENT_USER, 'pg_backup_start(text,bool)', 'EXECUTE')",
            "has_function_privilege(CURRENT_USER, 'pg_backup_stop(bool)', 'EXECUTE')",
        )
    };
    format!(
        "SELECT usesuper OR ((pg_has_role(CURRENT_USER, 'pg_monitor', 'USAGE') OR \
         (pg_has_role(CURRENT_USER, 'pg_read_all_settings', 'USAGE') AND \
          pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE'))) \
         AND ({start}) AND ({stop}) \
         AND has_function_privilege(CURRENT_USER, 'pg_switch_wal()', 'EXECUTE') \
         AND has_function_privilege(CURRENT_USER, 'pg_create_restore_point(text)', 'EXECUTE')) \
         FROM pg_user WHERE usename = CURRENT_USER"
    )
}
