//! Random ids and the wall clock of the presence server: session ids and
//! guest names (separate random bits, so a public name never reveals a
//! secret), and Unix time for stored rows.

/// `bytes` random bytes from the OS as lower-case hex.
fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A session id: 128 random bits from the OS as 32 hex digits.
pub fn session_id() -> std::io::Result<String> {
    random_hex(16)
}

/// A guest's public name: `guest-` and 48 random bits of its own (never
/// derived from the session id).
pub fn guest_name() -> std::io::Result<String> {
    Ok(format!("guest-{}", random_hex(6)?))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
