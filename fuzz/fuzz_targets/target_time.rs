#![no_main]
//! See barman::fuzzing::target_time for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::target_time(data);
});
