#![no_main]
//! See barman::fuzzing::backup_label for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::backup_label(data);
});
