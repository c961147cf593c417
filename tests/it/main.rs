//! One integration binary (links once): the real `barman` binary run
//! against Barman 3.19.1's captured outputs, bad configurations, and real
//! PostgreSQL clusters of every major (scripts/install-postgres.sh). Tests that start a cluster are named `pg_*` so
//! nextest can cap how many run at once (.config/nextest.toml).

mod harness;

mod backup_catalog;
mod catalog;
mod config_errors;
mod config_models;
mod config_update;
mod golden;
mod interop;
mod missing_home;
mod pg_backup;
mod pg_check;
mod pg_combine;
mod pg_export;
mod pg_incremental;
mod pg_interop_backup;
mod pg_interop_restore;
mod pg_matrix;
mod pg_passive;
mod pg_restore;
mod pg_streaming;
mod pg_streaming_faults;
mod pg_tls;
mod pg_wal;
mod verify_manifest;
mod wal_intake;
mod walcli;
