#![no_main]
//! See barman::fuzzing::backup_manifest for the property checked.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::backup_manifest(data);
});
