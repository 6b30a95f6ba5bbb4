//! Percent-decoding for query strings and `application/x-www-form-urlencoded`
//! bodies. Small enough to own here, so the core stays within its few crates.

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
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
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
}
