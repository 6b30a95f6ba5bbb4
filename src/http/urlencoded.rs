//! Percent-coding: decoding query strings and
//! `application/x-www-form-urlencoded` bodies, and coding single URL path
//! segments both ways. The one URL decoder of the crate; small enough to own
//! here, so the core stays within its few crates.

/// Splits `input` on `&` and `=` and percent-decodes each name and value.
pub fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut kv = part.splitn(2, |&b| b == b'=');
            let key = decode_component(kv.next().unwrap_or_default());
            let value = decode_component(kv.next().unwrap_or_default());
            (key, value)
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as space; invalid escapes stay as written.
pub fn decode_component(input: &[u8]) -> String {
    decode(input, true)
}

/// Decodes `%XX` escapes in one URL path segment (`+` stays `+`, as a path
/// is not a form); invalid escapes stay as written.
pub fn decode_path_segment(segment: &str) -> String {
    decode(segment.as_bytes(), false)
}

/// Percent-encodes text for one URL path segment: everything but letters,
/// digits and `-._~@+`.
pub fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(input: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_and_escapes() {
        let pairs = form_pairs(b"me=ann+lee&msg=a%26b%3D&bad=%zz&x=%4");
        assert_eq!(pairs[0], ("me".into(), "ann lee".into()));
        assert_eq!(pairs[1], ("msg".into(), "a&b=".into()));
        assert_eq!(pairs[2], ("bad".into(), "%zz".into()));
        assert_eq!(pairs[3], ("x".into(), "%4".into()));
    }

    #[test]
    fn path_segments_round_trip_and_keep_plus() {
        for s in ["alice", "a+b@example.com", "+15550100", "x y/z%"] {
            assert_eq!(decode_path_segment(&encode_path_segment(s)), s);
        }
        assert_eq!(decode_path_segment("%3Cx%3E%zz+1"), "<x>%zz+1");
        // An escape is two hex digits, not a signed number (`%+e` stays).
        assert_eq!(decode_path_segment("%+e%+1%-1"), "%+e%+1%-1");
        assert_eq!(decode_component(b"%+e%-1"), "% e%-1");
    }
}
