//! Close status codes (RFC 6455 7.4): the ones the server sends, and which
//! codes a peer may put in a close frame it sends.

/// A close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going away (shutdown).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a message of a type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with the message type (invalid UTF-8 text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// True when a peer may send `code` in a close frame: 1000-1003 and
    /// 1007-1014 (defined or registered with IANA) and 3000-4999 (libraries
    /// and applications). Everything else is refused with 1002: 0-999 are
    /// unused, 1004 is reserved, 1005, 1006 and 1015 must never be on the
    /// wire, 1016-2999 are reserved for future RFCs, 5000 and up undefined.
    /// These are also the Autobahn suite's rules (cases 7.7 and 7.9).
    pub fn is_valid_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn autobahn_valid_codes_pass() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode::is_valid_on_wire(code), "{code}");
        }
    }

    #[test]
    fn autobahn_invalid_codes_fail() {
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode::is_valid_on_wire(code), "{code}");
        }
    }
}
