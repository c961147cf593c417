#![no_main]
//! See barman::fuzzing::xlogdb_line for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::xlogdb_line(data);
});
