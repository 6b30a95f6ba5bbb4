//! Helpers shared by the integration tests: start an engine (or the whole
//! `altsock serve` router) on `127.0.0.1:0` in a thread, talk raw HTTP to it
//! over real sockets, and wait for bytes with a deadline instead of sleeping.
//! Each test file uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod browser;
pub mod netns;
pub mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use altsock::server::{ServerConfig, ServerRouter};
use altsock::{Builder, Engine, Handle, Router};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running engine on a loopback port; shut down and joined on drop.
pub struct TestServer<M: Send + 'static> {
    pub addr: SocketAddr,
    pub handle: Handle<M>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl<M: Send + 'static> TestServer<M> {
    /// Asks the engine to stop and waits for `run` to return.
    pub fn stop(&mut self) -> std::io::Result<()> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(t) => t.join().expect("engine thread panicked"),
            None => Ok(()),
        }
    }

    /// Opens a raw client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl<M: Send + 'static> Drop for TestServer<M> {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts `router` on an engine built from `builder` (its listen address is
/// replaced by `127.0.0.1:0`).
pub fn spawn<R: Router + Send + 'static>(builder: Builder, router: R) -> TestServer<R::Msg> {
    let engine: Engine<R> = builder
        .listen("127.0.0.1:0")
        .build(router)
        .expect("engine builds");
    let addr = engine.local_addr();
    let handle = engine.handle();
    let thread = std::thread::spawn(move || engine.run());
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A fresh directory under the system temp dir, unique to this test run.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "altsock-test-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Starts a real `altsock serve` process on a free loopback port with the
/// database `db` and the further options `args`, logging at `info`; returns
/// the child and the address it names in its log. `ALTSOCK_TEST_BIN` runs
/// the tests against another build (e.g. an older one, to see them fail
/// before a fix).
pub fn start_serve_process(db: &Path, args: &[&str]) -> (Child, SocketAddr) {
    let bin = std::env::var_os("ALTSOCK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_altsock")));
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start altsock serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server logs its address");
    (child, addr.parse().expect("an address"))
}

/// Starts the whole `altsock serve` router with a SQLite file in a fresh
/// temporary directory; `configure` may change the server settings.
pub fn spawn_server(
    builder: Builder,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestServer<altsock::server::Job> {
    let mut config = ServerConfig {
        db_path: temp_dir("db").join("altsock.db"),
        node_id: "test-node".into(),
        ..ServerConfig::default()
    };
    configure(&mut config);
    let router = ServerRouter::new(config).expect("server router builds");
    spawn(builder, router)
}

/// A raw HTTP client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed by a `read_*` call.
    pub buf: Vec<u8>,
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps a connected stream; its reads give up after 50 ms.
    fn over(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads what arrives within `WAIT` until `done(buf)` is true; panics on timeout.
    pub fn read_until(&mut self, what: &str, mut done: impl FnMut(&[u8]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.buf) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if self.fill() == Some(0) {
                assert!(
                    done(&self.buf),
                    "connection closed before {what}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// One read; `Some(0)` at EOF, `None` when nothing arrived in 50 ms.
    pub fn fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                None
            }
            Err(_) => Some(0),
        }
    }

    /// Waits until `needle` has arrived, and returns everything up to and including it.
    pub fn read_through(&mut self, needle: &str) -> String {
        let n = needle.as_bytes();
        self.read_until(needle, |b| find(b, n).is_some());
        let end = find(&self.buf, n).map(|i| i + n.len()).unwrap_or(0);
        let taken: Vec<u8> = self.buf.drain(..end).collect();
        String::from_utf8_lossy(&taken).into_owned()
    }

    /// Reads one response with a `Content-Length` (or none, meaning empty).
    pub fn read_response(&mut self) -> Resp {
        let head = self.read_through("\r\n\r\n");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        self.read_until("body", |b| b.len() >= len);
        let body: Vec<u8> = self.buf.drain(..len).collect();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Reads until the server closes; returns everything left.
    pub fn read_to_close(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "server did not close; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if self.fill() == Some(0) {
                return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            }
        }
    }
}

/// Sends one request on a new connection and reads the response.
pub fn request(addr: SocketAddr, raw: &str) -> Resp {
    let mut client = Client::connect(addr);
    client.send(raw.as_bytes());
    client.read_response()
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits until `cond` holds, polling every 5 ms; panics after `WAIT`.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An orderly FIN (`read` returned 0).
    Fin,
    /// A reset or another socket error.
    Reset,
}

impl Client {
    /// Connects with a small receive buffer (`SO_RCVBUF` set before connecting,
    /// so the window stays small), for slow-consumer tests.
    pub fn connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> Client {
        let socket = Client::ipv4_socket();
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        Client::connect_socket(socket, addr)
    }

    /// Connects from `source` (any 127.0.0.0/8 address), for tests that
    /// need requests from more than one client address.
    pub fn connect_from(source: &str, addr: SocketAddr) -> Client {
        let socket = Client::ipv4_socket();
        let ip: std::net::IpAddr = source.parse().expect("address");
        socket
            .bind(&SocketAddr::new(ip, 0).into())
            .expect("bind the source address");
        Client::connect_socket(socket, addr)
    }

    /// A fresh IPv4 TCP socket, for options that must be set before connecting.
    fn ipv4_socket() -> socket2::Socket {
        socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("socket")
    }

    /// Connects `socket` to `addr`.
    fn connect_socket(socket: socket2::Socket, addr: SocketAddr) -> Client {
        socket.connect(&addr.into()).expect("connect");
        Client::over(socket.into())
    }

    /// Reads until the server ends the connection; returns what arrived and
    /// how it ended. Panics if it stays open past `WAIT`.
    pub fn read_to_end(&mut self) -> (Vec<u8>, End) {
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 16384];
        loop {
            assert!(
                Instant::now() < deadline,
                "server did not close; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => return (std::mem::take(&mut self.buf), End::Fin),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return (std::mem::take(&mut self.buf), End::Reset),
            }
        }
    }

    /// Reads until the server closes with a FIN (no reset); returns the bytes.
    pub fn read_to_clean_close(&mut self) -> String {
        let (bytes, end) = self.read_to_end();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(end, End::Fin, "connection reset; had {text:?}");
        text
    }

    /// Collects whatever arrives during `dur`; panics if the server closes.
    pub fn read_for(&mut self, dur: Duration) -> Vec<u8> {
        let deadline = Instant::now() + dur;
        while Instant::now() < deadline {
            assert_ne!(
                self.fill(),
                Some(0),
                "server closed; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        std::mem::take(&mut self.buf)
    }

    /// Waits for exactly `n` more bytes and returns them.
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        self.read_until("bytes", |b| b.len() >= n);
        self.buf.drain(..n).collect()
    }
}

/// A log of what a test router saw, shared with the test thread.
pub struct Log<T>(pub std::sync::Arc<std::sync::Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(std::sync::Arc::clone(&self.0))
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Default::default())
    }
}

impl<T: Clone> Log<T> {
    pub fn push(&self, item: T) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(item);
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until an entry matches `pick`, and returns what `pick` made of it.
    pub fn wait_for<U>(&self, what: &str, mut pick: impl FnMut(&T) -> Option<U>) -> U {
        let mut found = None;
        wait_for(what, || {
            found = self.all().iter().find_map(&mut pick);
            found.is_some()
        });
        found.expect("found")
    }
}
