//! Helpers for the wireless tests: a fake SMS gateway on `127.0.0.1:0`
//! that speaks Kannel's `sendsms` (and takes Twilio-style form POSTs), with
//! switches to refuse with `503` or to stall; a server pointed at it; and a
//! reader of the device's streamed HTML page.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use altsock::http::form_pairs;
use altsock::server::wireless::gateway::{Dialect, GatewayConfig};
use altsock::server::{Job, WirelessConfig};
use altsock::Engine;

use crate::util::{Client, TestServer, WAIT};

/// How the fake gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `202 0: Accepted for delivery` (Kannel's answer).
    Accept,
    /// `503` (Kannel's answer when it cannot queue).
    Fail,
    /// Waits this long, then accepts.
    Stall(Duration),
}

/// One request the gateway got.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    pub path: String,
    /// The query's fields (Kannel) or the form's (Twilio).
    pub fields: Vec<(String, String)>,
    pub authorization: Option<String>,
}

impl Sent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fake SMS gateway on a loopback port.
pub struct FakeGateway {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    sent: Receiver<Sent>,
    in_flight: Arc<AtomicUsize>,
}

impl FakeGateway {
    /// Starts it, accepting.
    pub fn start() -> FakeGateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gateway");
        let addr = listener.local_addr().expect("address");
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (tx, sent) = mpsc::channel();
        let (m, f) = (mode.clone(), in_flight.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (m, f, tx) = (m.clone(), f.clone(), tx.clone());
                std::thread::spawn(move || serve(stream, &m, &f, &tx));
            }
        });
        FakeGateway {
            addr,
            mode,
            sent,
            in_flight,
        }
    }

    /// Changes how it answers from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The next request it got; panics after the wait.
    pub fn next(&self) -> Sent {
        self.sent
            .recv_timeout(WAIT)
            .expect("an SMS reaches the gateway")
    }

    /// A request it got, if any arrived (no wait).
    pub fn try_next(&self) -> Option<Sent> {
        self.sent.try_recv().ok()
    }

    /// Requests it is still answering (a stalled one counts).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Kannel's sendsms URL.
    pub fn sendsms_url(&self) -> String {
        format!("http://{}/cgi-bin/sendsms", self.addr)
    }
}

/// Answers requests on one connection until it closes.
fn serve(mut stream: TcpStream, mode: &Mutex<Mode>, in_flight: &AtomicUsize, tx: &Sender<Sent>) {
    let mut buf = Vec::new();
    loop {
        let Some(sent) = read_request(&mut stream, &mut buf) else {
            return;
        };
        in_flight.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(sent);
        let now = *mode.lock().unwrap();
        let answer = match now {
            Mode::Accept => answer("202 Accepted", "0: Accepted for delivery"),
            Mode::Fail => answer("503 Service Unavailable", "3: Queue is full, try later"),
            Mode::Stall(d) => {
                std::thread::sleep(d);
                answer("202 Accepted", "0: Accepted for delivery")
            }
        };
        let wrote = stream.write_all(answer.as_bytes());
        in_flight.fetch_sub(1, Ordering::SeqCst);
        if wrote.is_err() {
            return;
        }
    }
}

/// One answer with a body.
fn answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request (head and `Content-Length` body).
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Sent> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    let mut start = head.split_whitespace();
    let method = start.next()?.to_string();
    let target = start.next()?.to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut fields = form_pairs(query.as_bytes());
    fields.extend(form_pairs(&body));
    Some(Sent {
        method,
        path: path.to_string(),
        fields,
        authorization: header("authorization"),
    })
}

/// Wireless settings for tests: the fake gateway (Kannel), millisecond
/// waits, `timeout` per SMS.
pub fn wireless_config(gateway: &FakeGateway, timeout: Duration) -> WirelessConfig {
    WirelessConfig {
        gateway: Some(GatewayConfig {
            url: gateway.sendsms_url(),
            dialect: Dialect::Kannel,
            user: Some("altsock".into()),
            password: Some("s3cret".into()),
            from: Some("+15550000000".into()),
            timeout,
        }),
        poll_wait: Duration::from_millis(300),
        ..WirelessConfig::default()
    }
}

/// A server with millisecond ticks and the wireless settings `config`.
pub fn server_with_wireless(config: WirelessConfig) -> TestServer<Job> {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    crate::util::spawn_server(builder, move |c| c.wireless = config)
}

/// The URL path (`/w/TOKEN`) in an SMS text.
pub fn link_path(text: &str) -> String {
    let at = text.find("/w/").expect("the SMS carries a /w/ URL");
    text[at..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The device: its held page on one connection.
pub struct Device {
    pub client: Client,
    /// The response head.
    pub head: String,
    /// The page's text so far (chunks joined).
    pub page: String,
}

impl Device {
    /// `GET path` on a new connection; expects a held `200` HTML stream.
    pub fn open(addr: SocketAddr, path: &str) -> Device {
        let mut client = Client::connect(addr);
        client.send(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
        let head = client.read_through("\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/html"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        Device {
            client,
            head,
            page: String::new(),
        }
    }

    /// Reads chunks until the page holds `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        while !self.page.contains(needle) {
            let size_line = self.client.read_through("\r\n");
            let size = usize::from_str_radix(size_line.trim(), 16).expect("chunk size");
            assert!(size > 0, "the page ended before {needle:?}: {}", self.page);
            self.client.read_until("chunk", |b| b.len() >= size + 2);
            let chunk: Vec<u8> = self.client.buf.drain(..size + 2).collect();
            self.page.push_str(&String::from_utf8_lossy(&chunk[..size]));
        }
    }

    /// The `name=value` of the cookie the page set.
    pub fn cookie(&self) -> String {
        let line = self
            .head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .expect("a Set-Cookie header");
        line[11..]
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The device's key, from the form's action (`/w/KEY/reply`).
    pub fn key(&self) -> String {
        let at = self.page.find("action=\"/w/").expect("the reply form") + 11;
        self.page[at..]
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// The texts of a page (`<p ... id="tN"><b>who:</b> text</p>`), in page order.
pub fn texts_of(page: &str) -> Vec<(u64, String)> {
    page.split("<p class=\"")
        .skip(1)
        .filter_map(|p| {
            let id = p.split("id=\"t").nth(1)?.split('"').next()?.parse().ok()?;
            let text = p.split("</b> ").nth(1)?.split("</p>").next()?.to_string();
            Some((id, text))
        })
        .collect()
}
