#![no_main]
//! libpq conninfo parsing never panics, and re-quoting what it parsed
//! yields the same pairs.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::conninfo(data);
});
