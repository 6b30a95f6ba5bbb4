//! The properties the fuzz targets check, one module per target, shared by
//! `fuzz/fuzz_targets/*.rs` (run by `cargo fuzz` on nightly) and
//! `tests/fuzz_corpus.rs` (which replays every corpus file on stable), so the
//! two can never drift apart. Compiled only with the `fuzzing` feature; not
//! part of the API. Each property takes the fuzzer's raw bytes, reads its
//! choices from them with [`Choices`], and panics when the code under test
//! breaks a rule: a panic here is a finding.

pub mod chunked;
#[cfg(feature = "server")]
pub mod cookie;
#[cfg(feature = "server")]
pub mod hub_json;
pub mod request;
#[cfg(feature = "server")]
pub mod sip_message;
pub mod urlencoded;
#[cfg(feature = "websocket")]
pub mod ws_frames;

/// A property over the fuzzer's bytes; it panics on a finding.
pub type Property = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and the file
/// under `fuzz/fuzz_targets/`) and its property.
pub const TARGETS: &[(&str, Property)] = &[
    ("request_split", request::check),
    ("chunked", chunked::check),
    ("urlencoded", urlencoded::check),
    #[cfg(feature = "server")]
    ("cookie", cookie::check),
    #[cfg(feature = "server")]
    ("hub_json", hub_json::check),
    #[cfg(feature = "server")]
    ("sip_message", sip_message::check),
    #[cfg(feature = "websocket")]
    ("ws_frames", ws_frames::check),
];

/// The fuzzer's bytes read as a sequence of choices. Once the bytes run out
/// every choice is zero, so any input is a valid script.
#[derive(Debug, Clone)]
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    /// Choices read from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data }
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a little-endian number.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u16()) % n
    }

    /// The next byte as a yes or no.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Up to `n` of the next bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// The bytes up to the next `sep` (not included), or all that are left.
    pub fn until(&mut self, sep: u8) -> &'a [u8] {
        match self.data.iter().position(|&b| b == sep) {
            Some(i) => {
                let head = &self.data[..i];
                self.data = &self.data[i + 1..];
                head
            }
            None => self.rest(),
        }
    }

    /// True when no bytes are left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// All the bytes not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// A property in two halves, picked by the first choice: `raw` on arbitrary
/// bytes (odd) or `round_trip` on input it builds (even).
pub fn raw_or_round_trip(data: &[u8], raw: fn(&mut Choices<'_>), round_trip: fn(&mut Choices<'_>)) {
    let mut choices = Choices::new(data);
    if choices.flag() {
        raw(&mut choices);
    } else {
        round_trip(&mut choices);
    }
}

/// The rest of the bytes as an input stream, after up to 16 cut choices,
/// and those cuts placed in it ([`cut_seeds`], [`cut_points`]).
pub fn cut_rest<'a>(choices: &mut Choices<'a>) -> (&'a [u8], Vec<usize>) {
    let seeds = cut_seeds(choices);
    let input = choices.rest();
    let cuts = cut_points(&seeds, input.len());
    (input, cuts)
}

/// Up to 16 raw cut choices; [`cut_points`] places them once the length of
/// the stream is known.
pub fn cut_seeds(choices: &mut Choices<'_>) -> Vec<u16> {
    let count = choices.byte() % 17;
    (0..count).map(|_| choices.u16()).collect()
}

/// Sorted cut points in `0..=len`: where a stream of `len` bytes is split
/// into reads.
pub fn cut_points(seeds: &[u16], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = seeds.iter().map(|&s| usize::from(s) % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}
