//! Fuzzes the catalog decoder: the input is the catalog log, record by record and opened whole on a SimDisk.
//! A panic is a bug: the decoder must return an error on any input, and
//! what decodes must round-trip (see `caskade::fuzzing::decode_catalog`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    caskade::fuzzing::decode_catalog(data);
});
