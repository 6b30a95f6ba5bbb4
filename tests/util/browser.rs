//! A headless Chromium for browser tests, driven through chromedriver and the
//! W3C WebDriver HTTP API over plain `std::net::TcpStream` and `serde_json`.
//! [`Browser::start`] launches chromedriver on a free loopback port and opens
//! one session with a fresh profile in a temporary directory; dropping the
//! [`Browser`] ends the session, kills chromedriver and removes the profile.
//!
//! ```ignore
//! let browser = Browser::start().expect("chromium");
//! browser.navigate(&format!("http://{addr}/page")).expect("navigate");
//! let title = browser.execute("return document.title", json!([])).expect("title");
//! let tab = browser.new_tab().expect("tab");
//! browser.switch_to(&tab).expect("switch");
//! let v = browser.execute_async("arguments[0](1 + 1)", json!([])).expect("async");
//! browser.wait_until("ready", "return window.ready === true", WAIT).expect("ready");
//! ```
//!
//! The binaries are `chromedriver` and `/usr/bin/chromium` (Debian packages
//! `chromium-driver` and `chromium`); `ALTSOCK_CHROMEDRIVER` and
//! `ALTSOCK_CHROMIUM` override them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The arguments every test browser starts with.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// How long one WebDriver command (a navigation, an async script) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One chromedriver process and one browser session in it.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: PathBuf,
}

/// Errors are strings that say which command failed and what the driver said.
pub type BrowserResult<T> = Result<T, String>;

/// Serializes the browser tests of one test binary: hold the guard for the
/// whole test (`let _turn = browser::turn();`) so that timed steps do not
/// compete with other Chromiums for the cores. A failed test's turn passes on.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// True when chromedriver and chromium are installed (for tests that skip
/// rather than fail without them; `scripts/test` installs both).
pub fn available() -> bool {
    missing_binaries().is_none()
}

/// What is missing for browser tests, and how to install it; `None` when
/// both binaries run.
pub fn missing_binaries() -> Option<String> {
    let runs = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<String> = [
        (driver_path(), "chromium-driver", "ALTSOCK_CHROMEDRIVER"),
        (chromium_path(), "chromium", "ALTSOCK_CHROMIUM"),
    ]
    .into_iter()
    .filter(|(bin, _, _)| !runs(bin))
    .map(|(bin, deb, var)| format!("`{bin}` (Debian package {deb}, or set {var})"))
    .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "browser tests need headless Chromium and chromedriver; missing: {}. \
             Install them (scripts/test does: apt-get install chromium chromium-driver).",
            missing.join(", ")
        )
    })
}

fn driver_path() -> String {
    std::env::var("ALTSOCK_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium_path() -> String {
    std::env::var("ALTSOCK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A loopback port that was free a moment ago.
fn free_port() -> BrowserResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port();
    Ok(port)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a fresh profile.
    pub fn start() -> BrowserResult<Browser> {
        Browser::start_with_args(&[])
    }

    /// Like [`Browser::start`], with extra Chromium arguments. Without
    /// Chromium or chromedriver, says which is missing and how to get it.
    pub fn start_with_args(extra: &[&str]) -> BrowserResult<Browser> {
        if let Some(missing) = missing_binaries() {
            return Err(missing);
        }
        let profile = super::temp_dir("chromium");
        let port = free_port()?;
        let log = std::fs::File::create(profile.join("chromedriver.log"))
            .map_err(|e| format!("chromedriver log: {e}"))?;
        let driver = Command::new(driver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", driver_path()))?;
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: String::new(),
            profile,
        };
        browser.wait_ready()?;
        browser.session = browser.new_session(extra)?;
        browser.set_script_timeout(COMMAND_TIMEOUT)?;
        Ok(browser)
    }

    /// Waits until chromedriver answers `GET /status` with `ready: true`.
    fn wait_ready(&mut self) -> BrowserResult<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(v) = self.call("GET", "/status", None) {
                if v["ready"] == json!(true) {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited: {status}; {}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("chromedriver not ready; {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&self, extra: &[&str]) -> BrowserResult<String> {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            self.profile.join("profile").display()
        ));
        args.extend(extra.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium_path(), "args": args}
        }}});
        let v = self.call("POST", "/session", Some(&caps))?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no session id in {v}; {}", self.log()))
    }

    /// The tail of chromedriver's log, for error messages.
    pub fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.profile.join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("chromedriver log:\n{}", tail.join("\n"))
    }

    /// Sets how long an async script may run before the driver gives up.
    pub fn set_script_timeout(&self, timeout: Duration) -> BrowserResult<()> {
        let body = json!({"script": timeout.as_millis() as u64});
        self.command("POST", "timeouts", Some(&body)).map(drop)
    }

    /// Loads `url` in the current tab and waits for the page load.
    pub fn navigate(&self, url: &str) -> BrowserResult<()> {
        self.command("POST", "url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// Runs `script` as a function body in the page (`arguments` holds
    /// `args`, a JSON array) and returns what it returns.
    pub fn execute(&self, script: &str, args: Value) -> BrowserResult<Value> {
        let body = json!({"script": script, "args": args});
        self.command("POST", "execute/sync", Some(&body))
    }

    /// Runs `script` asynchronously: it must call the last argument
    /// (`arguments[arguments.length - 1]`) with its result.
    pub fn execute_async(&self, script: &str, args: Value) -> BrowserResult<Value> {
        let body = json!({"script": script, "args": args});
        self.command("POST", "execute/async", Some(&body))
    }

    /// Runs `script` (sync) every 50 ms until it returns something truthy,
    /// and returns that; fails after `timeout`.
    pub fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> BrowserResult<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute(script, json!([]))?;
            if truthy(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}; last value {v}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens a new tab (not switched to) and returns its window handle.
    pub fn new_tab(&self) -> BrowserResult<String> {
        self.new_window_of("tab")
    }

    /// Opens a new window (not switched to) and returns its handle.
    pub fn new_window(&self) -> BrowserResult<String> {
        self.new_window_of("window")
    }

    fn new_window_of(&self, kind: &str) -> BrowserResult<String> {
        let v = self.command("POST", "window/new", Some(&json!({ "type": kind })))?;
        v["handle"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no window handle in {v}"))
    }

    /// Makes `handle` the tab or window that later commands act on.
    pub fn switch_to(&self, handle: &str) -> BrowserResult<()> {
        self.command("POST", "window", Some(&json!({ "handle": handle })))
            .map(drop)
    }

    /// The handle of the current tab or window.
    pub fn current_window(&self) -> BrowserResult<String> {
        let v = self.command("GET", "window", None)?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("bad window handle {v}"))
    }

    /// The handles of every open tab and window.
    pub fn windows(&self) -> BrowserResult<Vec<String>> {
        let v = self.command("GET", "window/handles", None)?;
        let list = v.as_array().ok_or_else(|| format!("bad handles {v}"))?;
        Ok(list
            .iter()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect())
    }

    /// Closes the current tab or window (switch to another one afterwards).
    pub fn close_window(&self) -> BrowserResult<()> {
        self.command("DELETE", "window", None).map(drop)
    }

    /// Ends the session (closing the browser) and stops chromedriver. Also
    /// done on drop; calling it twice is harmless.
    pub fn quit(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.call("DELETE", &path, None);
            self.session.clear();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// A command on this session: `POST /session/{id}/{path}`.
    pub fn command(&self, method: &str, path: &str, body: Option<&Value>) -> BrowserResult<Value> {
        let full = format!("/session/{}/{path}", self.session);
        self.call(method, &full, body)
    }

    /// One WebDriver request; returns the reply's `value`, or its error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> BrowserResult<Value> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let (status, text) =
            http(self.addr, method, path, &body).map_err(|e| format!("{method} {path}: {e}"))?;
        let reply: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{method} {path}: bad JSON ({e}): {text}"))?;
        let value = reply.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            return Err(format!("{method} {path}: {status} {value}"));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.quit();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// A minimal HTTP/1.1 exchange on a fresh connection: returns status and body.
/// chromedriver keeps connections open, so the body is read by its length.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(done) = parse_response(&raw)? {
            return Ok(done);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(bad_data("connection closed mid-response"));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

fn bad_data(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Status and body once `raw` holds a whole response; `None` until then.
fn parse_response(raw: &[u8]) -> std::io::Result<Option<(u16, String)>> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_data("no status"))?;
    let rest = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        match dechunk(rest) {
            Some(body) => body,
            None => return Ok(None),
        }
    } else {
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        match rest.get(..len) {
            Some(body) => body.to_vec(),
            None => return Ok(None),
        }
    };
    Ok(Some((status, String::from_utf8_lossy(&body).into_owned())))
}

/// The body of a complete chunked message; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
