// SPDX-License-Identifier: GPL-2.0
//! A replace request's payload, as the kernel reads it: the attribute stream, its split into
//! tables, every chain and rule decoded, and the whole table compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnf_engine::fuzzgen::kernel_decode;
use rnf_engine::rulewire;
use rnf_engine::wire;

fuzz_target!(|data: &[u8]| {
    let _ = kernel_decode(data);
    if let Ok(sections) = wire::sections(data, rulewire::A_TABLE) {
        for s in sections {
            let _ = kernel_decode(s);
        }
    }
});
