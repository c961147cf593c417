#![no_main]
//! See barman::fuzzing::retention_policy for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::retention_policy(data);
});
