//! The chunked transfer coding of request bodies (RFC 9112 section 7.1),
//! decoded incrementally. A [`ChunkedDecoder`] is fed the bytes as they arrive
//! and remembers where it stopped (inside a size line, an extension, chunk data,
//! or the trailers), so every byte is looked at once however the body is split
//! into reads. It is pure: no socket, no clock, just `&[u8]` in, body bytes out.
//!
//! It is strict where a lenient reading could differ from a proxy's: a size
//! line must have at least one hex digit, every line ends in CRLF (a bare LF
//! anywhere is an error), whitespace after the size is allowed only before an
//! extension, and control characters in extensions are refused.

use super::error::ParseError;

/// Where the decoder stands between two calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a chunk-size line: a hex digit must come.
    SizeStart,
    /// Reading the hex digits of the size.
    Size,
    /// Whitespace after the size: only `;` (an extension) may follow.
    SizeSpace,
    /// Inside a chunk extension, up to the CR.
    Extension,
    /// The size line's CR was seen; its LF must follow.
    SizeLf,
    /// Inside chunk data, this many bytes to go.
    Data(usize),
    /// After chunk data: CR must follow.
    DataCr,
    /// After chunk data and CR: LF must follow.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field line, up to the CR.
    Trailer,
    /// A trailer line's CR was seen; its LF must follow.
    TrailerLf,
    /// The final empty line's CR was seen; its LF ends the body.
    EndLf,
    /// The body is complete.
    Done,
}

/// What one call to [`ChunkedDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input used; the caller drops them and never shows them again.
    /// Less than the input only when the body ended (pipelined bytes follow).
    pub consumed: usize,
    /// The body, trailers included, is complete.
    pub done: bool,
}

/// A resumable decoder of one chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, in the size line.
    size: usize,
    /// Body bytes produced so far.
    decoded: usize,
    /// Encoded bytes consumed so far (data, framing, extensions and trailers).
    encoded: usize,
    max_body: usize,
    max_encoded: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body that may decode to at most `max_body`
    /// bytes and occupy at most `max_encoded` bytes with its framing,
    /// extensions and trailers; past either, [`ParseError::BodyTooLarge`].
    pub fn new(max_body: usize, max_encoded: usize) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            decoded: 0,
            encoded: 0,
            max_body,
            max_encoded,
        }
    }

    /// True once the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub fn decoded_len(&self) -> usize {
        self.decoded
    }

    /// Encoded bytes consumed so far.
    pub fn encoded_len(&self) -> usize {
        self.encoded
    }

    /// Decodes as much of `input` as it can, appending chunk data to `body`.
    /// `input` starts where the previous call's `consumed` ended. After an
    /// error the decoder must not be used again.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Decoded, ParseError> {
        // Look no further than the encoding may reach, so that the limit
        // trips at the same byte (and not after a later fault) however the
        // input is split into calls.
        let room = self.max_encoded.saturating_sub(self.encoded);
        let within = &input[..input.len().min(room)];
        let mut pos = 0;
        while pos < within.len() && self.state != State::Done {
            pos += self.step(&within[pos..], body)?;
        }
        self.encoded += pos;
        if self.state != State::Done && input.len() > room {
            return Err(ParseError::BodyTooLarge);
        }
        Ok(Decoded {
            consumed: pos,
            done: self.is_done(),
        })
    }

    /// Advances over the start of `rest` (not empty); returns the bytes used.
    fn step(&mut self, rest: &[u8], body: &mut Vec<u8>) -> Result<usize, ParseError> {
        if let State::Data(left) = self.state {
            let take = left.min(rest.len());
            body.extend_from_slice(&rest[..take]);
            self.state = if take == left {
                State::DataCr
            } else {
                State::Data(left - take)
            };
            return Ok(take);
        }
        let byte = rest[0];
        self.state = match self.state {
            State::SizeStart => match hex_value(byte) {
                Some(digit) => {
                    self.size = digit;
                    State::Size
                }
                None if byte == b'\r' => return Err(malformed("empty chunk size line")),
                None => return Err(line_error(byte, "bad chunk size")),
            },
            State::Size => match hex_value(byte) {
                Some(digit) => {
                    self.size = self.size.saturating_mul(16).saturating_add(digit);
                    if self.size > self.max_body.saturating_sub(self.decoded) {
                        return Err(ParseError::BodyTooLarge);
                    }
                    State::Size
                }
                None => self.after_size(byte, State::Size)?,
            },
            State::SizeSpace => self.after_size(byte, State::SizeSpace)?,
            State::Extension => match byte {
                b'\r' => State::SizeLf,
                b'\n' => return Err(malformed("bare LF in chunk extension")),
                b'\t' => State::Extension,
                0..=0x1f | 0x7f => return Err(malformed("control character in chunk extension")),
                _ => State::Extension,
            },
            State::SizeLf => self.end_of_size_line(byte)?,
            State::DataCr | State::DataLf => self.after_data(byte)?,
            State::TrailerStart => match byte {
                b'\r' => State::EndLf,
                b' ' | b'\t' => return Err(malformed("obsolete line folding in trailer")),
                _ => return self.trailer_byte(byte).map(|()| 1),
            },
            State::Trailer => return self.trailer_byte(byte).map(|()| 1),
            State::TrailerLf | State::EndLf => self.end_of_trailer_line(byte)?,
            State::Data(_) | State::Done => unreachable!("handled above"),
        };
        Ok(1)
    }

    /// A byte after the size digits, or after whitespace following them.
    fn after_size(&mut self, byte: u8, state: State) -> Result<State, ParseError> {
        if self.size > self.max_body.saturating_sub(self.decoded) {
            return Err(ParseError::BodyTooLarge);
        }
        match byte {
            b';' => Ok(State::Extension),
            b' ' | b'\t' => Ok(State::SizeSpace),
            b'\r' if state == State::Size => Ok(State::SizeLf),
            b'\r' => Err(malformed("whitespace after chunk size")),
            _ => Err(line_error(byte, "bad chunk size")),
        }
    }

    /// The LF that ends a size line: chunk data follows, or the trailers.
    fn end_of_size_line(&mut self, byte: u8) -> Result<State, ParseError> {
        if byte != b'\n' {
            return Err(malformed("CR without LF in chunk size line"));
        }
        let size = std::mem::take(&mut self.size);
        self.decoded += size;
        Ok(if size == 0 {
            State::TrailerStart
        } else {
            State::Data(size)
        })
    }

    /// The CRLF that must follow chunk data.
    fn after_data(&mut self, byte: u8) -> Result<State, ParseError> {
        match (self.state, byte) {
            (State::DataCr, b'\r') => Ok(State::DataLf),
            (State::DataLf, b'\n') => Ok(State::SizeStart),
            _ => Err(malformed("chunk not followed by CRLF")),
        }
    }

    /// One byte of a trailer field line (trailers are read and discarded).
    fn trailer_byte(&mut self, byte: u8) -> Result<(), ParseError> {
        self.state = match byte {
            b'\r' => State::TrailerLf,
            b'\n' => return Err(malformed("bare LF in trailer")),
            _ => State::Trailer,
        };
        Ok(())
    }

    /// The LF after a trailer line's CR (another line follows) or after the
    /// final empty line's CR (the body is done).
    fn end_of_trailer_line(&mut self, byte: u8) -> Result<State, ParseError> {
        match (self.state, byte) {
            (State::TrailerLf, b'\n') => Ok(State::TrailerStart),
            (State::EndLf, b'\n') => Ok(State::Done),
            _ => Err(malformed("CR without LF in trailer")),
        }
    }
}

fn malformed(why: &'static str) -> ParseError {
    ParseError::Malformed(why)
}

/// The error for an unexpected byte in a size line: a bare LF says so.
fn line_error(byte: u8, otherwise: &'static str) -> ParseError {
    if byte == b'\n' {
        malformed("bare LF in chunk size line")
    } else {
        malformed(otherwise)
    }
}

fn hex_value(byte: u8) -> Option<usize> {
    (byte as char).to_digit(16).map(|d| d as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n1;ext=\"a b\"\r\n \r\n6\r\nworld!\r\n0\r\nT: x\r\n\r\n";

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), ParseError> {
        let mut decoder = ChunkedDecoder::new(1 << 20, 1 << 21);
        let mut body = Vec::new();
        let done = decoder.decode(input, &mut body)?;
        assert!(done.done, "{:?}", String::from_utf8_lossy(input));
        Ok((body, done.consumed))
    }

    /// Fed one byte at a time, the decoder takes each byte exactly once and
    /// hands out chunk data as soon as it arrives: its state carries over.
    #[test]
    fn byte_by_byte_resumes_where_it_stopped() {
        let mut decoder = ChunkedDecoder::new(1 << 20, 1 << 21);
        let mut body = Vec::new();
        for (i, byte) in BODY.iter().enumerate() {
            assert!(!decoder.is_done(), "done early at {i}");
            let step = decoder
                .decode(std::slice::from_ref(byte), &mut body)
                .unwrap();
            assert_eq!(step.consumed, 1, "byte {i}");
            assert_eq!(decoder.encoded_len(), i + 1);
            if i == 5 {
                // "5\r\nhel" so far: the partial chunk is already out.
                assert_eq!(body, b"hel");
            }
        }
        assert!(decoder.is_done());
        assert_eq!(body, b"hello world!");
        assert_eq!(decoder.decoded_len(), 12);
    }

    #[test]
    fn whole_body_and_pipelined_rest() {
        let mut input = BODY.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            decode_all(&input),
            Ok((b"hello world!".to_vec(), BODY.len()))
        );
    }

    #[test]
    fn strict_lines() {
        for (bad, why) in [
            (
                &b"2;a\nb\r\nhi\r\n0\r\n\r\n"[..],
                "bare LF in chunk extension",
            ),
            (b"\r\n2\r\nhi\r\n0\r\n\r\n", "empty chunk size line"),
            (b"2\nhi\r\n0\r\n\r\n", "bare LF in chunk size line"),
            (b"2\r\nhi\n0\r\n\r\n", "chunk not followed by CRLF"),
            (b"2 \r\nhi\r\n0\r\n\r\n", "whitespace after chunk size"),
            (
                b"2;a\x01\r\nhi\r\n0\r\n\r\n",
                "control character in chunk extension",
            ),
            (b"0\r\nT: x\n\r\n", "bare LF in trailer"),
            (b"0\r\n\n", "bare LF in trailer"),
            (
                b"0\r\nT: x\r\n folded\r\n\r\n",
                "obsolete line folding in trailer",
            ),
            (b"x\r\n", "bad chunk size"),
        ] {
            let mut decoder = ChunkedDecoder::new(100, 1000);
            let got = decoder.decode(bad, &mut Vec::new());
            assert_eq!(got, Err(ParseError::Malformed(why)), "{bad:?}");
        }
        assert_eq!(decode_all(b"2 ;a\r\nhi\r\n0\r\n\r\n").unwrap().0, b"hi");
    }

    #[test]
    fn limits() {
        let mut decoder = ChunkedDecoder::new(4, 1000);
        let got = decoder.decode(b"3\r\nabc\r\n2\r\n", &mut Vec::new());
        assert_eq!(got, Err(ParseError::BodyTooLarge));
        let mut decoder = ChunkedDecoder::new(4, 1000);
        let got = decoder.decode(b"ffffffffffffffffffffff", &mut Vec::new());
        assert_eq!(got, Err(ParseError::BodyTooLarge));
        let mut decoder = ChunkedDecoder::new(4, 10);
        let got = decoder.decode(b"1;aaaaaaaaaa", &mut Vec::new());
        assert_eq!(got, Err(ParseError::BodyTooLarge));
    }
}
