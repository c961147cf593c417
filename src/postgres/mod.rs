//! Everything that talks to PostgreSQL: connection strings, the SQL client
//! for the control plane (checks, status, backup start/stop, WAL switch),
//! and later the PostgreSQL binaries barman-rs supervises.

pub mod client;
pub mod conninfo;
pub mod service;
pub mod session;
pub mod tls;
