//! barman-rs: a PostgreSQL backup and recovery manager, drop-in successor to
//! Barman 3.19 (same configuration, commands, messages and catalog).
//!
//! Architecture map:
//! - [`cli`]: the command line as Barman spells it (plain data);
//! - [`app`]: start-up order (config → user → logging → output → command);
//! - [`config`]: Barman's INI dialect, option table, typed values;
//! - [`catalog`]: the on-disk catalog (paths, locks; formats as they land);
//! - [`postgres`]: connection strings and the SQL client;
//! - [`server`]: live status of a server (PostgreSQL, replication, tools);
//! - [`wal`]: WAL names, content validation, the intake archiver;
//! - [`pipeline`]: the parallel, bounded, in-order file pipeline;
//! - [`backup`]: taking base backups (pg_basebackup, the native copy, manifests);
//! - [`restore`]: recovering a backup (parallel verified copy, PITR configuration);
//! - [`compression`]: Barman's WAL codecs, detection by magic;
//! - [`durable`]: staged writes, no-replace renames, the crash protocol;
//! - [`commands`]: one module per subcommand, orchestration only;
//! - [`output`], [`logging`]: what the user and the log file see.

pub mod app;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod compression;
pub mod config;
pub mod durable;
pub mod export;
#[doc(hidden)]
pub mod failpoint;
pub mod fileio;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod logging;
pub mod output;
pub mod passive;
pub mod pipeline;
pub mod postgres;
pub mod restore;
pub mod server;
pub mod streaming;
pub mod wal;
pub mod walcli;
