#![no_main]
//! See barman::fuzzing::wal_header for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::wal_header(data);
});
