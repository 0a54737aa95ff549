//! Fuzzes the record decoder: the input is a data file: its header, then records until one fails to decode.
//! A panic is a bug: the decoder must return an error on any input, and
//! what decodes must round-trip (see `caskade::fuzzing::decode_record`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    caskade::fuzzing::decode_record(data);
});
