//! Fuzzes the manifest decoder: the input is a partition manifest.
//! A panic is a bug: the decoder must return an error on any input, and
//! what decodes must round-trip (see `caskade::fuzzing::decode_manifest`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    caskade::fuzzing::decode_manifest(data);
});
