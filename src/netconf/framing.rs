//! Message framing (RFC 6242 §4): end-of-message (`]]>]]>`) framing for the hello and base:1.0
//! sessions, chunked framing once both sides have announced base:1.1.
//!
//! The decoder is deliberately lenient where real clients are sloppy: whitespace between chunked messages is skipped, a client
//! that starts a chunked message while we still expect end-of-message framing is understood, and
//! several messages in one read are split correctly. What is truly malformed (a bad chunk header)
//! is an error, after which the byte stream cannot be trusted and the session must end.

use thiserror::Error;

/// The end-of-message marker of base:1.0 framing.
const EOM: &[u8] = b"]]>]]>";

/// The longest chunk header we accept: `\n#4294967295\n`.
const MAX_CHUNK_HEADER: usize = 13;

/// How messages are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `]]>]]>` after each message (base:1.0, and always for the hello).
    EndOfMessage,
    /// `\n#<size>\n<data>...\n##\n` (base:1.1).
    Chunked,
}

/// Why the byte stream could not be split into messages.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// A message grew past the configured maximum; the rest of it cannot be skipped reliably.
    #[error("message exceeds the maximum size of {limit} bytes")]
    TooBig {
        /// The configured maximum.
        limit: usize,
    },
    /// The chunked framing is broken (RFC 6242 §4.2): the stream cannot be resynchronised.
    #[error("malformed chunk framing: {0}")]
    BadChunk(String),
    /// A NUL byte: never valid in XML, and it breaks C string handling further down.
    #[error("message contains a NUL byte")]
    NulByte,
}

/// Splits incoming bytes into complete NETCONF messages.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    max_message: usize,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// For end-of-message framing: how far `buf` was already searched for the marker, so each
    /// byte is scanned about once even when a large message arrives in many small pieces.
    scanned: usize,
    /// For chunked framing: the data of the current message collected so far.
    message: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder that starts with end-of-message framing (as every session does for the hello).
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            framing: Framing::EndOfMessage,
            max_message,
            buf: Vec::new(),
            scanned: 0,
            message: Vec::new(),
        }
    }

    /// Switches framing, e.g. to chunked after both hellos announced base:1.1. Bytes already
    /// buffered are decoded with the new framing.
    pub fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
        self.scanned = 0;
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Adds bytes received from the transport.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let message = match self.framing {
            Framing::EndOfMessage if self.starts_with_chunk() => {
                // What the end-of-message search had scanned is consumed as chunks.
                self.scanned = 0;
                self.next_chunked()?
            }
            Framing::EndOfMessage => self.next_eom()?,
            Framing::Chunked => self.next_chunked()?,
        };
        match message {
            Some(m) if m.contains(&0) => Err(FrameError::NulByte),
            other => Ok(other),
        }
    }

    /// True when, in end-of-message mode, the pending bytes look like the start of a chunked
    /// message: some clients (an ncclient race) frame their hello in chunks.
    fn starts_with_chunk(&self) -> bool {
        if !self.message.is_empty() {
            return true;
        }
        let rest = skip_whitespace(&self.buf);
        rest.len() >= 2 && rest[0] == b'#' && rest[1].is_ascii_digit() && {
            // Only a real header: the whitespace before '#' must contain the newline.
            let ws = &self.buf[..self.buf.len() - rest.len()];
            ws.contains(&b'\n')
        }
    }

    fn next_eom(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let from = self.scanned.saturating_sub(EOM.len() - 1);
        match find(&self.buf[from..], EOM) {
            Some(pos) => {
                let end = from + pos;
                let message = self.buf[..end].to_vec();
                self.buf.drain(..end + EOM.len());
                self.scanned = 0;
                if message.len() > self.max_message {
                    return Err(FrameError::TooBig {
                        limit: self.max_message,
                    });
                }
                Ok(Some(message))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_message + EOM.len() {
                    return Err(FrameError::TooBig {
                        limit: self.max_message,
                    });
                }
                Ok(None)
            }
        }
    }

    fn next_chunked(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            // Leniency: stray whitespace (typically a newline) before a chunk header.
            let skip = self.buf.len() - skip_whitespace(&self.buf).len();
            let skip = skip.saturating_sub(1); // keep the '\n' that starts the header
            if skip > 0 {
                self.buf.drain(..skip);
            }
            match parse_chunk_header(&self.buf)? {
                ChunkHeader::Incomplete => return Ok(None),
                ChunkHeader::End { header_len } => {
                    self.buf.drain(..header_len);
                    if self.message.is_empty() {
                        return Err(FrameError::BadChunk(
                            "end-of-chunks marker before any chunk".into(),
                        ));
                    }
                    return Ok(Some(std::mem::take(&mut self.message)));
                }
                ChunkHeader::Chunk { header_len, size } => {
                    if self.message.len() + size > self.max_message {
                        return Err(FrameError::TooBig {
                            limit: self.max_message,
                        });
                    }
                    if self.buf.len() < header_len + size {
                        return Ok(None);
                    }
                    self.message
                        .extend_from_slice(&self.buf[header_len..header_len + size]);
                    self.buf.drain(..header_len + size);
                }
            }
        }
    }
}

enum ChunkHeader {
    Incomplete,
    Chunk { header_len: usize, size: usize },
    End { header_len: usize },
}

/// Parses `\n#<size>\n` or `\n##\n` at the start of `buf`.
fn parse_chunk_header(buf: &[u8]) -> Result<ChunkHeader, FrameError> {
    let bad = |what: &str| Err(FrameError::BadChunk(what.to_string()));
    if buf.len() < 3 {
        // Still check what we have so garbage is reported early.
        if !buf.is_empty() && buf[0] != b'\n' {
            return bad("expected a chunk header");
        }
        if buf.len() == 2 && buf[1] != b'#' {
            return bad("expected '#' in chunk header");
        }
        return Ok(ChunkHeader::Incomplete);
    }
    if buf[0] != b'\n' || buf[1] != b'#' {
        return bad("expected a chunk header");
    }
    if buf[2] == b'#' {
        return match buf.get(3) {
            None => Ok(ChunkHeader::Incomplete),
            Some(b'\n') => Ok(ChunkHeader::End { header_len: 4 }),
            Some(_) => bad("bad end-of-chunks marker"),
        };
    }
    let digits = &buf[2..];
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || digits[0] == b'0' {
        return bad("chunk size must be a positive number without leading zeros");
    }
    if 2 + n >= MAX_CHUNK_HEADER {
        return bad("chunk size too large");
    }
    match digits.get(n) {
        None => Ok(ChunkHeader::Incomplete),
        Some(b'\n') => {
            let text = std::str::from_utf8(&digits[..n]).unwrap_or("0");
            let size: u64 = text.parse().unwrap_or(u64::MAX);
            if size > u32::MAX as u64 {
                return bad("chunk size exceeds 4294967295");
            }
            Ok(ChunkHeader::Chunk {
                header_len: 2 + n + 1,
                size: size as usize,
            })
        }
        Some(_) => bad("chunk size not followed by a newline"),
    }
}

/// Frames one outgoing message.
pub fn encode(framing: Framing, message: &[u8]) -> Vec<u8> {
    match framing {
        Framing::EndOfMessage => {
            let mut out = Vec::with_capacity(message.len() + EOM.len());
            out.extend_from_slice(message);
            out.extend_from_slice(EOM);
            out
        }
        Framing::Chunked => {
            let mut out = Vec::with_capacity(message.len() + 24);
            if !message.is_empty() {
                out.extend_from_slice(format!("\n#{}\n", message.len()).as_bytes());
                out.extend_from_slice(message);
            }
            out.extend_from_slice(b"\n##\n");
            out
        }
    }
}

fn skip_whitespace(buf: &[u8]) -> &[u8] {
    let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &buf[n..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(dec: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn end_of_message_after_a_chunked_hello_starts_its_search_afresh() {
        // Found by the framing fuzz target: blank lines searched for the end-of-message marker,
        // then a hello in chunks consumed them, then one byte: the search started past the end
        // of the buffer and panicked.
        let mut dec = FrameDecoder::new(1024);
        dec.extend(b"\n\n\n\n\n\n\n\n");
        assert_eq!(dec.next_message(), Ok(None));
        dec.extend(b"#2\nab\n##\n");
        assert_eq!(dec.next_message(), Ok(Some(b"ab".to_vec())));
        dec.extend(b"x");
        assert_eq!(dec.next_message(), Ok(None));
        dec.extend(b"]]>]]>");
        assert_eq!(dec.next_message(), Ok(Some(b"x".to_vec())));
    }

    #[test]
    fn eom_messages_split_across_reads() {
        let mut dec = FrameDecoder::new(1000);
        dec.extend(b"<a/>]]>");
        assert!(dec.next_message().unwrap().is_none());
        dec.extend(b"]]><b/>]]>]]><c");
        assert_eq!(all(&mut dec), vec![b"<a/>".to_vec(), b"<b/>".to_vec()]);
        dec.extend(b"/>]]>]]>");
        assert_eq!(all(&mut dec), vec![b"<c/>".to_vec()]);
    }

    #[test]
    fn hello_and_first_chunked_rpc_in_one_read() {
        let mut dec = FrameDecoder::new(1000);
        dec.extend(b"<hello/>]]>]]>\n#5\n<rpc>\n##\n");
        assert_eq!(dec.next_message().unwrap().unwrap(), b"<hello/>");
        dec.set_framing(Framing::Chunked);
        assert_eq!(dec.next_message().unwrap().unwrap(), b"<rpc>");
    }

    #[test]
    fn chunked_with_several_chunks_and_stray_newlines() {
        let mut dec = FrameDecoder::new(1000);
        dec.set_framing(Framing::Chunked);
        dec.extend(b"\n\n#3\nabc\n#2\nde\n##\n\r\n\n#1\nx\n##\n");
        assert_eq!(all(&mut dec), vec![b"abcde".to_vec(), b"x".to_vec()]);
    }

    #[test]
    fn chunked_byte_by_byte() {
        let input = encode(Framing::Chunked, b"<rpc message-id=\"1\"/>");
        let mut dec = FrameDecoder::new(1000);
        dec.set_framing(Framing::Chunked);
        let mut got = Vec::new();
        for b in input {
            dec.extend(&[b]);
            got.extend(all(&mut dec));
        }
        assert_eq!(got, vec![b"<rpc message-id=\"1\"/>".to_vec()]);
    }

    #[test]
    fn chunk_framed_hello_is_understood() {
        let mut dec = FrameDecoder::new(1000);
        dec.extend(b"\n#7\n<hello>\n##\n");
        assert_eq!(dec.next_message().unwrap().unwrap(), b"<hello>");
    }

    #[test]
    fn bad_chunk_headers_are_errors() {
        for input in [
            &b"\n#abc\n"[..],
            b"\n#0\n",
            b"\n#012\n",
            b"\n#99999999999\n",
            b"\n#5x",
            b"garbage",
            b"\n##x",
        ] {
            let mut dec = FrameDecoder::new(1000);
            dec.set_framing(Framing::Chunked);
            dec.extend(input);
            assert!(
                matches!(dec.next_message(), Err(FrameError::BadChunk(_))),
                "{input:?}"
            );
        }
    }

    #[test]
    fn oversize_messages_are_refused_in_both_framings() {
        let mut dec = FrameDecoder::new(10);
        dec.extend(&[b'a'; 20]);
        assert_eq!(dec.next_message(), Err(FrameError::TooBig { limit: 10 }));
        let mut dec = FrameDecoder::new(10);
        dec.set_framing(Framing::Chunked);
        dec.extend(b"\n#6\naaaaaa\n#6\n");
        assert_eq!(dec.next_message(), Err(FrameError::TooBig { limit: 10 }));
    }

    #[test]
    fn nul_bytes_are_refused() {
        let mut dec = FrameDecoder::new(100);
        dec.extend(b"<a>\0</a>]]>]]>");
        assert_eq!(dec.next_message(), Err(FrameError::NulByte));
    }

    #[test]
    fn encode_round_trips() {
        for framing in [Framing::EndOfMessage, Framing::Chunked] {
            let mut dec = FrameDecoder::new(100);
            dec.set_framing(framing);
            dec.extend(&encode(framing, b"<x/>"));
            assert_eq!(dec.next_message().unwrap().unwrap(), b"<x/>");
        }
    }
}
