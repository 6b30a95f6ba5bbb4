//! Why a request could not be parsed, and the status that answers it. A leaf
//! shared by the request parser and the chunked decoder.

use std::fmt;

/// Why a request could not be parsed; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The head is larger than `Limits::max_head` (`431`).
    HeadTooLarge,
    /// More header lines than `Limits::max_headers` (`431`).
    TooManyHeaders,
    /// The request line or a header is malformed (`400`); the text says which rule broke.
    Malformed(&'static str),
    /// A `Transfer-Encoding` other than `chunked` (`501`).
    UnsupportedTransferEncoding,
    /// The body is larger than `Limits::max_body` (`413`).
    BodyTooLarge,
    /// An HTTP version other than 1.0 or 1.1 (`505`).
    UnsupportedVersion,
}

impl ParseError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => 431,
            ParseError::Malformed(_) => 400,
            ParseError::UnsupportedTransferEncoding => 501,
            ParseError::BodyTooLarge => 413,
            ParseError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::HeadTooLarge => f.write_str("request head too large"),
            ParseError::TooManyHeaders => f.write_str("too many header lines"),
            ParseError::Malformed(why) => write!(f, "malformed request: {why}"),
            ParseError::UnsupportedTransferEncoding => {
                f.write_str("only chunked transfer-encoding is supported")
            }
            ParseError::BodyTooLarge => f.write_str("request body too large"),
            ParseError::UnsupportedVersion => f.write_str("HTTP version not supported"),
        }
    }
}

impl std::error::Error for ParseError {}
