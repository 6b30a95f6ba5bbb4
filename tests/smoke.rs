//! A first end-to-end check of `altsock serve`'s router: a subscriber of a hub
//! channel receives an event its publisher (with the token) sent, and
//! `/metrics` counts the held stream.

mod util;

use altsock::Engine;
use util::{request, spawn_server};

#[test]
fn published_event_reaches_subscriber() {
    let server = spawn_server(Engine::builder(), |c| c.publish_token = Some("T".into()));
    let mut sub = server.connect();
    sub.send(b"GET /sub/smoke HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = sub.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"));
    let published = request(
        server.addr,
        "POST /pub/smoke HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer T\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(published.status, 202);
    assert!(
        published.text().contains("\"subscribers\":1"),
        "{}",
        published.text()
    );
    assert_eq!(
        sub.read_through("\n\n"),
        "id: 0\nevent: position\ndata: \n\n"
    );
    assert_eq!(sub.read_through("\n\n"), "id: 1\ndata: hello\n\n");
    let metrics = request(server.addr, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
    assert!(metrics.contains("altsock_held_connections 1"), "{metrics}");
}
