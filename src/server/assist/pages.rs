//! The pages and scripts of live assist, written by the `assist-ui` side
//! under `assets/` and compiled in: the widget `/assist.js` (loaded by
//! pages of any origin), the console page with its script and style (the
//! presence pages' strict CSP), and the demo page `/assist/demo`.

use crate::{Reply, Response};

const WIDGET: &str = include_str!("assets/assist.js");
const CONSOLE_HTML: &str = include_str!("assets/console.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const DEMO: &str = include_str!("assets/demo.html");

/// The console's Content-Security-Policy: the presence pages' own.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET` of a script, a style or the demo page, by path.
pub fn asset(path: &str) -> Reply {
    let (kind, body) = match path {
        "/assist.js" => ("text/javascript; charset=utf-8", WIDGET),
        "/assist/console.js" => ("text/javascript; charset=utf-8", CONSOLE_JS),
        "/assist/console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        "/assist/demo" => ("text/html; charset=utf-8", DEMO),
        _ => return Reply::Respond(Response::text(404, "not found\n")),
    };
    let mut r = Response::new(200)
        .header("Content-Type", kind)
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff");
    if path == "/assist.js" {
        // Loaded by pages of other origins, also with `crossorigin`.
        r = r.header("Access-Control-Allow-Origin", "*");
    }
    Reply::Respond(r.body(body))
}

/// The console page (its script reads the site from the URL).
pub fn console() -> Reply {
    Reply::Respond(
        Response::html(200, CONSOLE_HTML)
            .header("Content-Security-Policy", CSP)
            .header("Cache-Control", "no-store")
            .header("X-Content-Type-Options", "nosniff"),
    )
}
