//! Fuzzes the name decoder: the input is a partition name, partition directory name or data/hint file name.
//! A panic is a bug: the decoder must return an error on any input, and
//! what decodes must round-trip (see `caskade::fuzzing::decode_name`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    caskade::fuzzing::decode_name(data);
});
