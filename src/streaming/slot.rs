//! Physical replication slots: `receive-wal --create-slot` and
//! `--drop-slot`. Barman sends CREATE_/DROP_REPLICATION_SLOT over its
//! replication connection; the SQL functions used here do the same on the
//! `conninfo` connection and fail with the same SQLSTATEs, so the messages
//! are Barman's.

use std::time::Duration;

use crate::config::ServerConfig;
use crate::output::Output;
use crate::postgres::client;

/// Which of the two slot commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create { if_not_exists: bool },
    Drop,
}

/// Barman's `create_physical_repslot` / `drop_repslot`.
pub fn run(out: &mut Output, cfg: &ServerConfig, action: Action) {
    let (verb, gerund) = match action {
        Action::Create { .. } => ("create", "Creating"),
        Action::Drop => ("drop", "Dropping"),
    };
    let name = &cfg.name;
    if !crate::server::uses_streaming(cfg) || !cfg.active() {
        out.error(&format!(
            "Unable to {verb} a physical replication slot: streaming connection not configured"
        ));
        return;
    }
    let conninfo = cfg.get_str("conninfo").unwrap_or_default();
    let mut c = match client::connect(conninfo, Some(Duration::from_secs(30))) {
        Ok(c) => c,
        Err(e) => {
            log::error!("Cannot connect to server '{name}': {e}");
            out.error(&format!("Cannot connect to server '{name}'"));
            return;
        }
    };
    let Some(slot) = cfg.get_str("slot_name") else {
        out.error(&format!(
            "Unable to {verb} a physical replication slot: slot_name configuration option required"
        ));
        return;
    };
    out.info(&format!(
        "{gerund} physical replication slot '{slot}' on server '{name}'"
    ));
    let sql = match action {
        Action::Create { .. } => "SELECT pg_create_physical_replication_slot($1)::text",
        Action::Drop => "SELECT pg_drop_replication_slot($1)::text",
    };
    let result = c.query_one(sql, &[&slot]);
    let state = result
        .as_ref()
        .err()
        .and_then(|e| e.code())
        .map(|c| c.code().to_string());
    match (action, result, state.as_deref()) {
        (Action::Create { .. }, Ok(_), _) => {
            log::info!("Replication slot '{slot}' successfully created");
            out.info(&format!("Replication slot '{slot}' created"));
        }
        (Action::Drop, Ok(_), _) => {
            log::info!("Replication slot '{slot}' successfully dropped");
            out.info(&format!("Replication slot '{slot}' dropped"));
        }
        (Action::Create { if_not_exists: true }, Err(_), Some("42710")) => out.info(&format!(
            "Replication slot '{slot}' already exists and --if-not-exists was specified. Skipping creation"
        )),
        (Action::Create { .. }, Err(_), Some("42710")) => {
            out.error(&format!("Replication slot '{slot}' already exists"))
        }
        (Action::Create { .. }, Err(_), Some("53400")) => {
            out.error(&format!(
                "All replication slots for server '{name}' are in use\n\
                 Free one or increase the max_replication_slots value on your PostgreSQL server."
            ));
        }
        (Action::Drop, Err(_), Some("42704")) => {
            out.error(&format!("Replication slot '{slot}' does not exist"))
        }
        (Action::Drop, Err(_), Some("55006")) => out.error(&format!(
            "Cannot drop replication slot '{slot}' on server '{name}' because it is in use."
        )),
        (_, Err(e), _) => out.error(&format!(
            "Cannot {verb} replication slot '{slot}' on server '{name}': {}",
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| client::pg_error_text(&e))
                .trim()
        )),
    }
}
