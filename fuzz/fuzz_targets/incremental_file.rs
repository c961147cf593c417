#![no_main]
//! See barman::fuzzing::incremental_file for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::incremental_file(data);
});
