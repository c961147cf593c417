#![no_main]
//! .pgpass parsing and lookup never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::pgpass(data);
});
