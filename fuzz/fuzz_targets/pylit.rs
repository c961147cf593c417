#![no_main]
//! See barman::fuzzing::pylit for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::pylit(data);
});
