//! One SQL session held for a whole backup: the metadata Barman records,
//! the concurrent backup API (`pg_backup_start` … `pg_backup_stop` must run
//! in the same session) and the restore point. Queries are Barman's, so the
//! values land in backup.info spelled as Barman spells them.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::Client;

use super::client::{connect, pg_error_text};
use crate::server::python_tz_time;

/// What Barman's `_pg_get_metadata` collects.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub data_directory: String,
    pub version: i64,
    pub segment_size: u64,
    pub config_file: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Vec<String>,
    /// (name, oid, location)
    pub tablespaces: Vec<(String, u32, String)>,
    pub data_checksums: Option<String>,
    pub summarize_wal: Option<String>,
    pub cluster_size: Option<i64>,
    pub systemid: Option<String>,
}

/// An LSN with the time PostgreSQL reported it.
#[derive(Debug, Clone)]
pub struct Location {
    pub lsn: String,
    /// Python's `str()` of the tz-aware timestamp.
    pub time: String,
    pub timeline: Option<u32>,
    /// `pg_walfile_name_offset()` when PostgreSQL computed it.
    pub file: Option<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

fn sql(e: postgres::Error) -> SqlError {
    SqlError(
        pg_error_text(&e)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

pub struct Session {
    client: Arc<Mutex<Client>>,
    keepalive: Option<(JoinHandle<()>, crossbeam_channel::Sender<()>)>,
    pub version: i64,
}

impl Session {
    pub fn open(conninfo: &str, timeout: Duration) -> Result<Session, SqlError> {
        let mut client = connect(conninfo, Some(timeout)).map_err(SqlError)?;
        // Timestamps as text in ISO style, as Barman's connection asks.
        client.batch_execute("SET DateStyle TO ISO").map_err(sql)?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .map_err(sql)?
            .get(0);
        Ok(Session {
            client: Arc::new(Mutex::new(client)),
            keepalive: None,
            version: version as i64,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, SqlError> {
        let mut c = self.client.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(sql)
    }

    /// `SHOW name` (None when the setting does not exist).
    pub fn show(&self, name: &str) -> Result<Option<String>, SqlError> {
        self.with(|c| {
            c.query_one("SELECT current_setting($1, true)", &[&name])
                .map(|r| r.get(0))
        })
    }

    pub fn metadata(&self) -> Result<Metadata, SqlError> {
        let version = self.version;
        self.with(|c| {
            let setting = |c: &mut Client, name: &str| -> Result<Option<String>, postgres::Error> {
                Ok(
                    c.query_opt("SELECT setting FROM pg_settings WHERE name = $1", &[&name])?
                        .map(|r| r.get(0)),
                )
            };
            let mut m = Metadata {
                version,
                data_directory: setting(c, "data_directory")?.unwrap_or_default(),
                ..Metadata::default()
            };
            let seg: Option<String> = setting(c, "wal_segment_size")?;
            // pg_settings reports wal_segment_size in bytes since PG 11.
            m.segment_size = seg.and_then(|s| s.parse().ok()).unwrap_or(16 << 20);
            for row in c.query(
                "SELECT name, setting FROM pg_settings \
                 WHERE name IN ('config_file', 'hba_file', 'ident_file')",
                &[],
            )? {
                let (k, v): (String, String) = (row.get(0), row.get(1));
                match k.as_str() {
                    "config_file" => m.config_file = Some(v),
                    "hba_file" => m.hba_file = Some(v),
                    "ident_file" => m.ident_file = Some(v),
                    _ => {}
                }
            }
            m.included_files = c
                .query(
                    "SELECT DISTINCT sourcefile AS included_file FROM pg_settings \
                     WHERE sourcefile IS NOT NULL AND sourcefile NOT IN \
                     (SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1",
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            m.tablespaces = c
                .query(
                    "SELECT spcname::text, oid::int8, pg_tablespace_location(oid) \
                     FROM pg_tablespace WHERE pg_tablespace_location(oid) != ''",
                    &[],
                )?
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1) as u32, r.get(2)))
                .collect();
            m.data_checksums = setting(c, "data_checksums")?;
            if version >= 170000 {
                m.summarize_wal = setting(c, "summarize_wal")?;
            }
            m.cluster_size = c
                .query_one(
                    "SELECT sum(pg_tablespace_size(oid))::int8 FROM pg_tablespace",
                    &[],
                )
                .ok()
                .and_then(|r| r.get(0));
            m.systemid = c
                .query_one(
                    "SELECT system_identifier::text FROM pg_control_system()",
                    &[],
                )
                .ok()
                .map(|r| r.get(0));
            Ok(m)
        })
    }

    /// Barman's `current_xlog_info` (primary only).
    pub fn current_location(&self) -> Result<Location, SqlError> {
        let version = self.version;
        self.with(|c| {
            let r = c.query_one(
                "SELECT location::text, (pg_walfile_name_offset(location)).file_name, \
                 (pg_walfile_name_offset(location)).file_offset::int8, CURRENT_TIMESTAMP::text \
                 FROM pg_current_wal_lsn() AS location",
                &[],
            )?;
            let mut name: String = r.get(1);
            let offset = r.get::<_, i64>(2) as u64;
            // PostgreSQL 17 names the new segment at a boundary; Barman keeps
            // the older behaviour (the previous one).
            if version >= 170000 && offset == 0 {
                if let Some(prev) = crate::wal::name::previous_segment(&name) {
                    name = prev;
                }
            }
            Ok(Location {
                lsn: r.get(0),
                time: python_tz_time(&r.get::<_, String>(3)),
                timeline: None,
                file: Some((name, offset)),
            })
        })
    }

    pub fn backup_start(&self, label: &str, fast: bool) -> Result<Location, SqlError> {
        let version = self.version;
        self.with(|c| {
            if version >= 140000 {
                c.batch_execute("SET idle_session_timeout TO 0")?;
            }
            let sql = if version >= 150000 {
                "SELECT location::text, (SELECT timeline_id FROM pg_control_checkpoint())::int8, \
                 now()::text FROM pg_backup_start($1, $2) AS location"
            } else {
                "SELECT location::text, (SELECT timeline_id FROM pg_control_checkpoint())::int8, \
                 now()::text FROM pg_start_backup($1, $2, FALSE) AS location"
            };
            let r = c.query_one(sql, &[&label, &fast])?;
            Ok(Location {
                lsn: r.get(0),
                time: python_tz_time(&r.get::<_, String>(2)),
                timeline: Some(r.get::<_, i64>(1) as u32),
                file: None,
            })
        })
    }

    /// Returns the stop location and the backup_label content.
    pub fn backup_stop(&mut self) -> Result<(Location, String), SqlError> {
        self.stop_keepalive();
        let version = self.version;
        self.with(|c| {
            if version >= 140000 {
                c.batch_execute("RESET idle_session_timeout")?;
            }
            let func = if version >= 150000 {
                "pg_backup_stop()"
            } else {
                "pg_stop_backup(FALSE)"
            };
            let r = c.query_one(
                &format!(
                    "SELECT end_row.lsn::text, (SELECT CASE WHEN pg_is_in_recovery() \
                     THEN min_recovery_end_timeline ELSE timeline_id END \
                     FROM pg_control_checkpoint(), pg_control_recovery())::int8, \
                     end_row.labelfile, now()::text FROM {func} AS end_row"
                ),
                &[],
            )?;
            Ok((
                Location {
                    lsn: r.get(0),
                    time: python_tz_time(&r.get::<_, String>(3)),
                    timeline: Some(r.get::<_, i64>(1) as u32),
                    file: None,
                },
                r.get(2),
            ))
        })
    }

    pub fn switch_wal(&self) -> Result<(), SqlError> {
        self.with(|c| {
            let in_recovery: bool = c.query_one("SELECT pg_is_in_recovery()", &[])?.get(0);
            if !in_recovery {
                c.query_one("SELECT pg_switch_wal()::text", &[])?;
            }
            Ok(())
        })
    }

    /// Barman ignores a failure here (standby, permissions): so do we.
    pub fn create_restore_point(&self, name: &str) {
        let r = self.with(|c| {
            let in_recovery: bool = c.query_one("SELECT pg_is_in_recovery()", &[])?.get(0);
            if !in_recovery {
                c.query_one("SELECT pg_create_restore_point($1)::text", &[&name])?;
            }
            Ok(in_recovery)
        });
        match r {
            Ok(false) => log::info!("Restore point '{name}' successfully created"),
            Ok(true) => {}
            Err(e) => log::debug!("Error issuing pg_create_restore_point() command: {e}"),
        }
    }

    /// `SELECT 1` every `interval` until [`Session::stop_keepalive`], so a
    /// firewall never drops the session between start and stop.
    pub fn start_keepalive(&mut self, interval: Duration) {
        if interval.is_zero() || self.keepalive.is_some() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let client = Arc::clone(&self.client);
        let handle = std::thread::spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = rx.recv_timeout(interval)
            {
                let mut c = client.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = c.batch_execute("SELECT 1") {
                    log::warn!("keepalive query failed: {}", pg_error_text(&e));
                    return;
                }
            }
        });
        self.keepalive = Some((handle, tx));
    }

    pub fn stop_keepalive(&mut self) {
        if let Some((handle, tx)) = self.keepalive.take() {
            // A dropped sender wakes the thread with Disconnected.
            drop(tx);
            let _ = handle.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_keepalive();
    }
}
