//! The `<rpc>` envelope: any message is either accepted or answered with an `<rpc-reply>`
//! that is itself well-formed XML.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyvmd::netconf::{rpc, xml};

fuzz_target!(|data: &[u8]| {
    for base_1_1 in [false, true] {
        if let Err(reply) = rpc::envelope(data, base_1_1) {
            let parsed = xml::parse(reply.as_bytes());
            assert!(parsed.is_ok(), "an error reply that is not XML: {reply}");
        }
    }
});
