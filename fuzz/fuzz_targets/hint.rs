//! Fuzzes the hint decoder: the input is a hint file, against the data file its own header names.
//! A panic is a bug: the decoder must return an error on any input, and
//! what decodes must round-trip (see `caskade::fuzzing::decode_hint`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    caskade::fuzzing::decode_hint(data);
});
