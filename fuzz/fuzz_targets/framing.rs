//! The NETCONF framing decoder (RFC 6242): end-of-message and chunked framing, the input fed
//! in pieces of any size. Anything decoded must also survive encoding and decoding again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyvmd::netconf::framing::{FrameDecoder, Framing, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let framing = match control & 1 {
        0 => Framing::EndOfMessage,
        _ => Framing::Chunked,
    };
    let piece = usize::from(control >> 1).max(1);
    let mut decoder = FrameDecoder::new(64 * 1024);
    decoder.set_framing(framing);
    let mut messages = Vec::new();
    'feed: for chunk in input.chunks(piece) {
        decoder.extend(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                // The session ends on a framing error: nothing after it is read.
                Err(_) => break 'feed,
            }
        }
    }
    for message in messages {
        // End-of-message framing cannot carry its own marker, and takes a message that starts
        // like a chunk header for a chunked one (the leniency for clients that frame their
        // hello in chunks): only XML-looking messages must come through it unchanged.
        let xml_like = message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
        if framing == Framing::EndOfMessage
            && (!xml_like || message.windows(6).any(|w| w == b"]]>]]>"))
        {
            continue;
        }
        let mut again = FrameDecoder::new(64 * 1024);
        again.set_framing(framing);
        again.extend(&encode(framing, &message));
        assert_eq!(again.next_message(), Ok(Some(message)));
    }
});
