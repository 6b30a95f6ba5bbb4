//! One entry of the socket table: the state of one connection. Kept small on
//! purpose (about 64 bytes): an idle held connection owns no heap buffer, only
//! this entry, so memory per connection stays far below a kilobyte.

use mio::net::TcpStream;

use crate::framing::Framing;
use crate::http::parse::RequestParser;
use crate::metrics::CloseReason;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for or reading a request.
    Reading,
    /// The router deferred its answer.
    Deferred,
    /// Held open as a stream in this framing.
    Held(Framing),
    /// Flushing its last bytes, then closing for this reason.
    Closing(CloseReason),
}

/// Output not yet taken by the socket.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub buf: Vec<u8>,
    pub pos: usize,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Drops the bytes already written once they are at least half the
    /// buffer, so a reader that keeps up but never quite drains it cannot make
    /// the buffer grow past twice the cap (amortized O(1) per byte).
    pub fn compact(&mut self) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// A connection's received bytes not yet consumed, and the parser's place in
/// the request being read (inside its body, once the head was consumed).
/// Consumed bytes are dropped in bulk (`start` moves, the buffer is compacted
/// once that prefix is half of it), so many pipelined requests in one buffer
/// cost each byte one move, not one per request parsed before it.
#[derive(Debug, Default)]
pub(crate) struct Input {
    bytes: Vec<u8>,
    /// Bytes before this offset are consumed.
    start: usize,
    pub parser: RequestParser,
}

impl Input {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Input {
            bytes: Vec::with_capacity(capacity),
            ..Input::default()
        }
    }

    /// No unconsumed bytes and no request under way: the box can go back to the pool.
    pub fn is_empty(&self) -> bool {
        self.unconsumed_len() == 0 && self.parser.is_idle()
    }

    /// Unconsumed bytes.
    pub fn unconsumed_len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// The unconsumed bytes.
    pub fn unconsumed(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The buffer's capacity, for the pool's size check.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends received bytes, first dropping a consumed prefix of at least
    /// half the buffer (amortized O(1) per byte).
    pub fn append(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Marks `n` more bytes consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// The unconsumed bytes and the parser, to advance it over them.
    pub fn parts(&mut self) -> (&[u8], &mut RequestParser) {
        (&self.bytes[self.start..], &mut self.parser)
    }
}

/// What a held stream needs after its head is written: the content type of
/// each multipart part or of the long-poll answer, and the hold's extra headers
/// that a long-poll answer repeats. Allocated only for long-poll and multipart
/// holds; other streams write their extra headers once, in the head.
#[derive(Debug, Default)]
pub(crate) struct HoldInfo {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

/// One connection in the socket table.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub gen: u32,
    pub phase: Phase,
    /// The held stream uses chunked transfer coding.
    pub chunked: bool,
    /// The current exchange keeps the connection open afterwards.
    pub keep_alive: bool,
    /// The router has seen a request on this connection.
    pub seen: bool,
    /// At least one request was answered (idle, not new, while reading).
    pub served: bool,
    /// `100 Continue` was sent for the request being read.
    pub continue_sent: bool,
    /// The request being answered is a `HEAD`.
    pub head_only: bool,
    /// The request being answered is HTTP/1.0: no chunked coding, and
    /// keep-alive must be confirmed with `Connection: keep-alive`.
    pub http10: bool,
    /// Received bytes not yet consumed and the request parser's state; `None`
    /// while idle. Boxed so the idle entry spends 8 bytes on it.
    pub input: Option<Box<Input>>,
    /// Bytes not yet written; `None` while all is written.
    pub output: Option<Box<Pending>>,
    /// Extra state of some holds.
    pub hold: Option<Box<HoldInfo>>,
    /// When this connection's timer should fire (engine milliseconds).
    pub deadline: u64,
    /// The time of this connection's live timer entry, `u64::MAX` if none.
    pub scheduled: u64,
}

impl Conn {
    pub fn new(stream: TcpStream, gen: u32) -> Self {
        Conn {
            stream,
            gen,
            phase: Phase::Reading,
            chunked: false,
            keep_alive: true,
            seen: false,
            served: false,
            continue_sent: false,
            head_only: false,
            http10: false,
            input: None,
            output: None,
            hold: None,
            deadline: u64::MAX,
            scheduled: u64::MAX,
        }
    }

    pub fn framing(&self) -> Option<Framing> {
        match self.phase {
            Phase::Held(framing) => Some(framing),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that keeps taking bytes while new ones keep coming never lets
    /// the buffer drain; what it already took must not pile up.
    #[test]
    fn pending_output_stays_bounded_while_never_drained() {
        let mut pending = Pending {
            buf: vec![0; 1000],
            pos: 0,
        };
        for _ in 0..10_000 {
            pending.pos += 100; // the socket took 100 bytes
            pending.compact();
            pending.buf.extend_from_slice(&[1; 100]); // 100 more were pushed
            assert_eq!(pending.len(), 1000);
            assert!(pending.buf.len() <= 2000, "{}", pending.buf.len());
        }
    }

    /// Many requests consumed one by one from one buffer move each byte at
    /// most a few times, and what is left is always the unconsumed tail.
    #[test]
    fn input_drops_consumed_bytes_in_bulk() {
        let mut input = Input::default();
        input.append(&[7; 1000]);
        for left in (0..1000).step_by(10).rev() {
            input.consume(10);
            assert_eq!(input.unconsumed_len(), left);
            assert!(input.bytes.len() <= 1000);
        }
        assert!(input.is_empty());
        input.append(b"abcdef");
        input.consume(4);
        input.append(b"gh");
        assert_eq!(input.parts().0, b"efgh");
        assert_eq!(input.start, 0, "compacted once the prefix was half");
    }

    /// The socket-table entry is what an idle held connection costs the
    /// process; keep it within one cache line.
    #[test]
    fn connection_entry_fits_a_cache_line() {
        // Debug builds of mio add a selector id to every socket.
        let budget = if cfg!(debug_assertions) { 80 } else { 64 };
        let conn = std::mem::size_of::<Conn>();
        assert!(conn <= budget, "Conn is {conn} bytes");
    }
}
