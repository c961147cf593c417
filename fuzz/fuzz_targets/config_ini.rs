#![no_main]
//! The configparser-dialect reader and interpolation never panic, and a
//! parsed file re-rendered as INI parses back to the same sections.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman::fuzzing::config_ini(data);
});
