//! The streaming WAL archiver, as Barman runs it: `barman receive-wal`
//! keeps pg_receivewal in the foreground under the server's receive-wal
//! lock, writing into `streaming/` over a replication connection (with a
//! physical slot when `slot_name` is set); `barman cron` starts one in the
//! background for every server with `streaming_archiver = on` that has
//! none and stops one whose server turned it off. What pg_receivewal
//! closes is archived by the WAL intake (`wal::archiver`), the same
//! validating, compressing, durable pipeline as `incoming/`; the newest
//! file (the `.partial` being written) is always held back.

pub mod process;
pub mod receiver;
pub mod slot;
