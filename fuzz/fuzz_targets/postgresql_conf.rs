#![no_main]
//! See barman::fuzzing::postgresql_conf for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::postgresql_conf(data);
});
