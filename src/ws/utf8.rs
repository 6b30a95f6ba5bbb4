//! Incremental UTF-8 validation for text messages that arrive in pieces
//! (fragments, or a frame split across reads): each piece is checked as it
//! arrives, and a piece fails as soon as the bytes so far can no longer
//! begin valid UTF-8, not when the message ends. The state is the at most
//! three bytes of a character cut by a piece boundary.

/// The state of an incremental UTF-8 check: the bytes of a character begun
/// but not finished by the pieces so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Check {
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Check {
    /// A check at the start of a message.
    pub fn new() -> Self {
        Utf8Check::default()
    }

    /// Checks the next piece. False when the bytes so far are not the start
    /// of any valid UTF-8 text; the check is then spent.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        let mut rest = piece;
        if self.pending_len > 0 {
            match self.finish_pending(rest) {
                Some(used) => rest = &rest[used..],
                None => return false,
            }
            if self.pending_len > 0 {
                return true;
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => true,
            Err(e) if e.error_len().is_some() => false,
            Err(e) => {
                let tail = &rest[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                true
            }
        }
    }

    /// True when the pieces so far end on a character boundary: the message
    /// may end here.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Adds bytes of `piece` to the pending character until it is whole or
    /// the piece ends; the bytes used, or `None` when it cannot be valid.
    fn finish_pending(&mut self, piece: &[u8]) -> Option<usize> {
        for (used, &byte) in piece.iter().enumerate() {
            let len = usize::from(self.pending_len);
            self.pending[len] = byte;
            self.pending_len += 1;
            match std::str::from_utf8(&self.pending[..=len]) {
                Ok(_) => {
                    self.pending_len = 0;
                    return Some(used + 1);
                }
                Err(e) if e.error_len().is_some() => return None,
                Err(_) => {}
            }
        }
        Some(piece.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Check;

    /// Feeds `pieces`; the index of the piece that failed, if one did.
    fn failing_piece(pieces: &[&[u8]]) -> Option<usize> {
        let mut check = Utf8Check::new();
        pieces.iter().position(|piece| !check.feed(piece))
    }

    #[test]
    fn valid_text_split_inside_characters_passes() {
        let text = "κόσμε 𝄞 €".as_bytes();
        for cut in 0..=text.len() {
            let mut check = Utf8Check::new();
            assert!(check.feed(&text[..cut]), "cut {cut}");
            assert!(check.feed(&text[cut..]), "cut {cut}");
            assert!(check.is_complete());
        }
        let mut check = Utf8Check::new();
        assert!(text.chunks(1).all(|byte| check.feed(byte)));
        assert!(check.is_complete());
    }

    #[test]
    fn a_character_cut_at_the_end_is_incomplete() {
        let mut check = Utf8Check::new();
        assert!(check.feed(&[0xF0, 0x9D]));
        assert!(!check.is_complete());
        assert!(check.feed(&[0x84]));
        assert!(!check.is_complete());
        assert!(check.feed(&[0x9E]));
        assert!(check.is_complete());
    }

    #[test]
    fn fails_at_the_piece_where_the_text_becomes_impossible() {
        // Autobahn 6.4.1: "κόσμε" then ED A0 80 (a surrogate) then "edited":
        // the surrogate's second byte already makes it impossible.
        let kosme = "κόσμε".as_bytes();
        assert_eq!(
            failing_piece(&[kosme, &[0xED], &[0xA0, 0x80], b"edited"]),
            Some(2)
        );
        // Overlong E0 80, F4 90 past U+10FFFF, F5 and FF never start anything.
        assert_eq!(failing_piece(&[b"ok", &[0xE0], &[0x80]]), Some(2));
        assert_eq!(failing_piece(&[&[0xF4], &[0x90], &[0x80, 0x80]]), Some(1));
        assert_eq!(failing_piece(&[b"a", &[0xF5]]), Some(1));
        assert_eq!(failing_piece(&[&[0xFF]]), Some(0));
        // A lead byte then an ASCII byte.
        assert_eq!(failing_piece(&[&[0xC3], b"a"]), Some(1));
        // A continuation byte with nothing before it.
        assert_eq!(failing_piece(&[b"abc", &[0x80]]), Some(1));
    }

    #[test]
    fn every_split_of_invalid_text_fails_at_the_impossible_byte() {
        // The first impossible byte of "κόσμε" ED A0 80 "edited" is A0, at 11.
        let mut text = "κόσμε".as_bytes().to_vec();
        text.extend_from_slice(&[0xED, 0xA0, 0x80]);
        text.extend_from_slice(b"edited");
        for (i, byte) in text.iter().enumerate() {
            let mut check = Utf8Check::new();
            let ok = text[..i].chunks(1).all(|b| check.feed(b));
            assert!(ok, "failed before byte {i}");
            if check.feed(std::slice::from_ref(byte)) {
                assert!(i < 11, "byte {i} passed");
            } else {
                assert_eq!(i, 11);
                break;
            }
        }
    }
}
