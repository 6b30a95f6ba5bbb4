//! The `Origin` check of state-changing presence requests: a browser's
//! cross-site request names another origin and is refused.

use crate::Request;

/// True when the request changes state: anything but `GET` and `HEAD`.
pub fn is_state_changing(req: &Request) -> bool {
    !matches!(req.method.as_str(), "GET" | "HEAD")
}

/// The `Origin` check: a request that carries `Origin` must name the host it
/// was sent to (`Host`); a request without `Origin` passes (not a browser's
/// cross-site request).
pub fn origin_ok(req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let Some(host) = req.header("host") else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
}
