// SPDX-License-Identifier: GPL-2.0
//! One rule's encoding (`E_SPEC`), decoded, and re-encoded when it decodes: the encoding of
//! what was decoded must decode to the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnf_engine::rulewire;
use rnf_engine::wire::Encoder;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = rulewire::decode_rule(data) {
        let mut buf = vec![0u8; 4096];
        let mut enc = Encoder::new(&mut buf);
        rulewire::encode_rule(&mut enc, &r);
        let n = enc.len();
        let again = rulewire::decode_rule(&buf[..n]).expect("a re-encoded rule decodes");
        assert_eq!(again, r, "decode(encode(r)) == r");
    }
});
