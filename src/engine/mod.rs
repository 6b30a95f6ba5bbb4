//! The AltSock socket handler: one thread, one `mio::Poll`, every socket
//! non-blocking in a slab keyed by its token (the patent's socket table).
//!
//! This file owns the loop: it accepts, reads and parses, hands requests to the
//! router, carries out commands from [`Handle`]s, and runs the tick that drives
//! keepalives and timeouts. Writing, holding and closing live in `core.rs`.
//! Nothing here blocks: the only wait is `Poll::poll`, bounded by the next tick.

pub(crate) mod config;
pub(crate) mod conn;
pub(crate) mod core;
pub(crate) mod handle;
mod pipeline;
mod timers;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod websocket;

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, info, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use self::conn::Phase;
use self::core::Core;
use self::handle::{Command, Shared};
use crate::http::parse::Progress;
use crate::metrics::{CloseReason, Metrics};
use crate::router::{Cx, Router};
use crate::{ConnId, Handle, Request};
pub use config::{Builder, Config};
#[cfg(feature = "tls")]
pub use tls::TlsListen;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
#[cfg(feature = "tls")]
const TLS_LISTENER: Token = Token(usize::MAX - 3);
/// How long accepting pauses after `EMFILE`/`ENFILE`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Timers fired at most between two polls: about 10 ms of keepalive writes.
const TIMER_SLICE: usize = 1024;
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// The engine: build it with [`Engine::builder`], take a [`Handle`], then `run`.
pub struct Engine<R: Router> {
    core: Core,
    router: R,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    handle: Handle<R::Msg>,
    read_buf: Vec<u8>,
    accept_paused_until: Option<u64>,
    /// Descriptors ran out and no accept has succeeded since (one warning per episode).
    out_of_fds: bool,
    shutdown_deadline: Option<u64>,
    /// More timers are due than the last slice fired.
    timer_backlog: bool,
    /// Kernel keepalive settings for accepted sockets, built once.
    tcp_keepalive: Option<socket2::TcpKeepalive>,
    /// The TLS listener and the shared buffers of decryption, if any.
    #[cfg(feature = "tls")]
    tls: Option<tls::TlsListener>,
}

impl Engine<NoRouter> {
    /// A builder with the default configuration.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// A placeholder router type that only names [`Engine::builder`].
#[doc(hidden)]
pub struct NoRouter;

impl Router for NoRouter {
    type Msg = ();
    fn request(&mut self, _: Request, _: &mut Cx<'_, ()>) -> crate::Reply {
        crate::Reply::Respond(crate::Response::new(404))
    }
}

impl<R: Router> Engine<R> {
    pub(crate) fn new(cfg: Config, router: R) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = bind_listener(cfg.listen, cfg.backlog)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let metrics = Arc::new(Metrics::default());
        let handle = Handle {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                waker,
                metrics: Arc::clone(&metrics),
                stopped: Default::default(),
            }),
        };
        let tcp_keepalive = cfg.tcp_keepalive();
        #[cfg(feature = "tls")]
        let tls = tls::TlsListener::bind(&cfg, &poll, TLS_LISTENER)?;
        Ok(Engine {
            #[cfg(feature = "tls")]
            tls,
            tcp_keepalive,
            core: Core::new(poll, cfg, metrics),
            router,
            listener: Some(listener),
            local_addr,
            handle,
            read_buf: vec![0; READ_CHUNK],
            accept_paused_until: None,
            out_of_fds: false,
            shutdown_deadline: None,
            timer_backlog: false,
        })
    }

    /// The address the listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle<R::Msg> {
        self.handle.clone()
    }

    /// The router, e.g. to inspect it after `run` returns in tests.
    pub fn router(&self) -> &R {
        &self.router
    }

    /// Runs the loop on this thread until shutdown.
    pub fn run(mut self) -> io::Result<()> {
        info!("altsock listening on {}", self.local_addr);
        let result = self.run_loop();
        self.answer_stranded_commands();
        info!("altsock stopped");
        result
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let tick = Core::ms(self.core.cfg.poll_interval);
        self.core.update_clock();
        let mut next_tick = self.core.now + tick;
        loop {
            let timeout = self.poll_timeout(next_tick);
            if let Err(e) = self.core.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            self.core.update_clock();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(false),
                    #[cfg(feature = "tls")]
                    TLS_LISTENER => self.accept_all(true),
                    WAKER => self.run_commands(),
                    Token(key) => self.on_event(
                        key,
                        event.is_readable() || event.is_error(),
                        event.is_writable(),
                    ),
                }
            }
            if self.accept_paused_until.is_some_and(|t| t <= self.core.now) {
                self.accept_paused_until = None;
                self.accept_all(false);
                #[cfg(feature = "tls")]
                self.accept_all(true);
            }
            if self.timer_backlog {
                self.run_timer_slice();
            }
            if self.core.now >= next_tick {
                self.tick();
                next_tick = self.core.now + tick;
            }
            if self.finished_shutdown() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self, next_tick: u64) -> Duration {
        if self.timer_backlog {
            return Duration::ZERO;
        }
        let mut wake_at = next_tick;
        if let Some(t) = self.accept_paused_until {
            wake_at = wake_at.min(t);
        }
        if let Some(t) = self.shutdown_deadline {
            wake_at = wake_at.min(t);
        }
        Duration::from_millis(wake_at.saturating_sub(self.core.now))
    }

    // ---- accepting --------------------------------------------------------

    fn accept_all(&mut self, tls: bool) {
        if self.accept_paused_until.is_some() {
            return;
        }
        let mut burst_warned = false;
        loop {
            let Some(listener) = self.listener_of(tls) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if std::mem::take(&mut self.out_of_fds) {
                        info!("accepting again");
                    }
                    self.admit(stream, peer, &mut burst_warned, tls)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_fd_exhaustion(&e) => {
                    if !std::mem::replace(&mut self.out_of_fds, true) {
                        warn!("accept: {e}; pausing accepts for {ACCEPT_PAUSE:?} until it passes");
                    }
                    self.accept_paused_until = Some(self.core.now + Core::ms(ACCEPT_PAUSE));
                    return;
                }
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// The plain listener, or the TLS one.
    fn listener_of(&self, tls: bool) -> Option<&TcpListener> {
        if !tls {
            return self.listener.as_ref();
        }
        #[cfg(feature = "tls")]
        return self.tls.as_ref().and_then(|t| t.listener());
        #[cfg(not(feature = "tls"))]
        None
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, burst_warned: &mut bool, tls: bool) {
        if self.core.conns.len() >= self.core.cfg.max_connections {
            if !*burst_warned {
                warn!(
                    "connection limit {} reached; refusing with 503",
                    self.core.cfg.max_connections
                );
                *burst_warned = true;
            }
            Metrics::add(&self.core.metrics.rejected, 1);
            if !tls {
                // A TLS client would take a plain answer for a broken record.
                refuse(stream);
            }
            return;
        }
        let sock = socket2::SockRef::from(&stream);
        let _ = sock.set_tcp_nodelay(true);
        // Silent death is the kernel's to notice: probes after silence, and
        // a bound on how long a probe or written data may go unacknowledged.
        if let Some(t) = self.core.cfg.tcp_user_timeout {
            let _ = sock.set_tcp_user_timeout(Some(t));
        }
        if let Some(keepalive) = &self.tcp_keepalive {
            let _ = sock.set_tcp_keepalive(keepalive);
        }
        match self.core.insert(stream) {
            Ok(key) => {
                debug!("{}: accepted from {peer}", self.core.id_of(key));
                #[cfg(feature = "tls")]
                if tls {
                    self.start_tls(key);
                }
            }
            Err(e) => warn!("register: {e}"),
        }
    }

    // ---- reading ----------------------------------------------------------

    fn on_event(&mut self, key: usize, readable: bool, writable: bool) {
        if writable && !self.core.flush(key) {
            self.deliver_router_queues();
            return;
        }
        // Writing ready answers and parsing ahead both stop while much output
        // waits for a slow reader; the writable event that drains it resumes them.
        let owes = writable && self.core.owes_answers(key);
        if owes {
            self.core.answer_ready(key);
        }
        if readable || owes {
            self.read_ready(key);
        }
        self.deliver_router_queues();
    }

    /// Drains the socket; parses what arrived; handles the peer's end.
    /// Behind owed answers, reading pauses once a request's worth of input
    /// waits unparsed (TCP pushes back on the client); answers resume it.
    fn read_ready(&mut self, key: usize) {
        loop {
            let stop = self.read_input(key);
            self.process_input(key);
            match stop {
                ReadStop::Drained => return,
                ReadStop::Eof => return self.peer_finished(key),
                ReadStop::Closed => return,
                ReadStop::Full if self.input_len(key) > self.pipelined_cap() => return,
                ReadStop::Full => continue,
            }
        }
    }

    /// Unconsumed input bytes on `key`.
    fn input_len(&self, key: usize) -> usize {
        let input = self.core.conns.get(key).and_then(|c| c.input.as_ref());
        input.map_or(0, |i| i.unconsumed_len())
    }

    /// Reads from `key` until the socket is drained, ends or fails, or (while
    /// answers are owed) the input holds more than one request's worth.
    fn read_input(&mut self, key: usize) -> ReadStop {
        let cap = self.pipelined_cap();
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return ReadStop::Closed;
            };
            if conn.phase == Phase::Deferred
                && conn
                    .input
                    .as_ref()
                    .is_some_and(|i| i.unconsumed_len() > cap)
            {
                return ReadStop::Full;
            }
            match conn.stream.read(&mut self.read_buf) {
                Ok(0) => return ReadStop::Eof,
                Ok(n) => {
                    Metrics::add(&self.core.metrics.bytes_in, n as u64);
                    let buf = std::mem::take(&mut self.read_buf);
                    let step = self.received(key, &buf[..n], cap);
                    self.read_buf = buf;
                    match step {
                        Received::Kept => {}
                        Received::Closed => return ReadStop::Closed,
                        Received::PeerFinished => return ReadStop::Eof,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStop::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    trace!("{}: read error: {e}", self.core.id_of(key));
                    self.core.close(key, CloseReason::PeerReset);
                    return ReadStop::Closed;
                }
            }
        }
    }

    /// Takes bytes just read from `key`: plaintext as they are, TLS records
    /// through the connection's session.
    fn received(&mut self, key: usize, bytes: &[u8], cap: usize) -> Received {
        #[cfg(feature = "tls")]
        if self.core.tls.is_tls(key) {
            return self.tls_received(key, bytes, cap);
        }
        self.keep_input(key, bytes, cap)
    }

    /// Keeps received plaintext as input where the connection's phase wants
    /// it (see [`keeps_input`]), or hands it to the WebSocket decoder; closes
    /// a connection that piles up too much behind a pending long-poll.
    fn keep_input(&mut self, key: usize, bytes: &[u8], cap: usize) -> Received {
        let Some(conn) = self.core.conns.get(key) else {
            return Received::Closed;
        };
        if conn.phase == Phase::Held(crate::Framing::WebSocket) {
            self.ws_receive(key, bytes);
            return match self.core.conns.contains(key) {
                true => Received::Kept,
                false => Received::Closed,
            };
        }
        if bytes.is_empty() || !keeps_input(conn.phase) || self.core.discards_input(key) {
            return Received::Kept;
        }
        let conn = &mut self.core.conns[key];
        let waiting = conn.phase != Phase::Reading;
        let starts_request = conn.input.is_none() && conn.phase == Phase::Reading;
        let mut input = match conn.input.take() {
            Some(input) => input,
            None => self.core.take_input_buffer(),
        };
        input.append(bytes);
        let piled_up = waiting && input.unconsumed_len() > cap;
        let held = self.core.conns[key].phase != Phase::Deferred;
        self.core.conns[key].input = Some(input);
        if piled_up && held {
            // Nothing parses input behind a pending long-poll,
            // so no parser limit would ever stop it.
            debug!(
                "{}: too much input behind a pending long-poll",
                self.core.id_of(key)
            );
            self.core.close(key, CloseReason::BadRequest);
            return Received::Closed;
        }
        if starts_request {
            let due = self.core.now + Core::ms(self.core.cfg.header_timeout);
            self.core.set_deadline(key, due);
        }
        Received::Kept
    }

    /// The most input kept unparsed behind owed answers or a pending
    /// long-poll: one request at its limits.
    fn pipelined_cap(&self) -> usize {
        let limits = &self.core.cfg.limits;
        limits.max_head.saturating_add(limits.max_body)
    }

    /// The peer sent FIN: answer what it already asked, otherwise close.
    fn peer_finished(&mut self, key: usize) {
        let Some(conn) = self.core.conns.get(key) else {
            return;
        };
        match conn.phase {
            Phase::Reading if conn.output.is_some() => {
                self.core.close_after_flush(key, CloseReason::PeerClosed)
            }
            Phase::Closing(reason) if conn.output.is_some() => {
                self.core.close_after_flush(key, reason)
            }
            Phase::Closing(reason) => self.core.close(key, reason),
            _ => self.core.close(key, CloseReason::PeerClosed),
        }
    }

    /// Parses and dispatches every complete request buffered on `key`, in order.
    fn process_input(&mut self, key: usize) {
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return;
            };
            if conn.phase == Phase::Held(crate::Framing::WebSocket) {
                // Frames the client sent right behind its upgrade request.
                return self.ws_take_input(key);
            }
            let reading = conn.phase == Phase::Reading;
            if !reading && !self.core.may_parse_ahead(key) {
                // A held stream keeps no input buffer; one owing answers may
                // still hold pipelined bytes.
                return self.core.recycle_input(key);
            }
            let conn = &mut self.core.conns[key];
            let Some(input) = conn.input.as_mut().filter(|b| b.unconsumed_len() > 0) else {
                self.core.recycle_input(key);
                return;
            };
            // The parser consumes body bytes as they come and keeps its place,
            // so a slow upload is parsed once, not again on every read.
            let (bytes, parser) = input.parts();
            let progress = match parser.advance(bytes, &self.core.cfg.limits) {
                Ok(advanced) => {
                    input.consume(advanced.consumed);
                    advanced.progress
                }
                Err(e) => return self.core.reject_in_order(key, e.status(), &e.to_string()),
            };
            match progress {
                Progress::Partial {
                    head_done,
                    wants_continue,
                } => {
                    // Not between owed answers: asked again once they are written.
                    if head_done && wants_continue && reading {
                        self.core.send_continue(key);
                    }
                    return;
                }
                Progress::Complete(parsed) => {
                    conn.seen = true;
                    conn.keep_alive = parsed.head.keep_alive;
                    conn.head_only = parsed.head.method == "HEAD";
                    conn.http10 = parsed.head.minor_version == 0;
                    conn.continue_sent = false;
                    let peer = conn.stream.peer_addr().ok();
                    let req = Request {
                        conn: self.core.id_of(key),
                        seq: self.core.next_request_seq(),
                        method: parsed.head.method,
                        target: parsed.head.target,
                        minor_version: parsed.head.minor_version,
                        headers: parsed.head.headers,
                        body: parsed.body,
                        peer,
                    };
                    self.dispatch(key, req);
                }
            }
        }
    }

    /// Hands one request to the router and carries out its reply: at once if
    /// the connection owes no earlier answer, else in its turn.
    fn dispatch(&mut self, key: usize, req: Request) {
        let (id, seq) = (req.conn, req.seq);
        trace!("{id}: {} {}", req.method, req.target);
        Metrics::add(&self.core.metrics.requests, 1);
        let pipelined = self.core.conns[key].phase == Phase::Deferred;
        if pipelined {
            self.core.queue_pipelined(key, seq);
        }
        let mut cx = Cx {
            core: &mut self.core,
            handle: &self.handle,
        };
        let reply = self.router.request(req, &mut cx);
        if self.core.key_of(id) != Some(key) {
            return;
        }
        if pipelined {
            self.core.settle_pipelined(key, seq, reply);
        } else if self.core.conns[key].phase == Phase::Reading {
            self.core.apply(key, seq, reply);
        }
    }

    // ---- router callbacks -------------------------------------------------

    /// Tells the router what the core queued: closes, released long-polls, and
    /// resumes input held back behind a deferred reply.
    fn deliver_router_queues(&mut self) {
        loop {
            let closed = std::mem::take(&mut self.core.closed_queue);
            let released = std::mem::take(&mut self.core.released_queue);
            let resume = std::mem::take(&mut self.core.resume_queue);
            if closed.is_empty() && released.is_empty() && resume.is_empty() {
                return;
            }
            for (conn, reason) in closed {
                let mut cx = Cx {
                    core: &mut self.core,
                    handle: &self.handle,
                };
                self.router.closed(conn, reason, &mut cx);
            }
            for conn in released {
                let mut cx = Cx {
                    core: &mut self.core,
                    handle: &self.handle,
                };
                self.router.released(conn, &mut cx);
            }
            for conn in resume {
                if let Some(key) = self.core.key_of(conn) {
                    // Reading may have paused behind the answers just written.
                    self.read_ready(key);
                }
            }
        }
    }

    // ---- commands from handles -------------------------------------------

    fn run_commands(&mut self) {
        let commands = {
            let mut queue = match self.handle.shared.queue.lock() {
                Ok(queue) => queue,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::take(&mut *queue)
        };
        for command in commands {
            self.run_command(command);
            self.deliver_router_queues();
        }
    }

    fn run_command(&mut self, command: Command<R::Msg>) {
        match command {
            Command::Push(conn, msg, tx) => {
                let _ = tx.try_send(self.core.push(conn, &msg));
            }
            Command::Broadcast(conns, msg, tx) => {
                let _ = tx.try_send(self.core.broadcast(&conns, &msg));
            }
            Command::Respond(conn, response, tx) => {
                let _ = tx.try_send(self.core.complete(conn, crate::Reply::Respond(response)));
            }
            Command::Hold(conn, hold, tx) => {
                let _ = tx.try_send(self.core.complete(conn, crate::Reply::Hold(hold)));
            }
            Command::Close(conn) => self.core.close_gracefully(conn, CloseReason::Closed),
            Command::Send(msg) => {
                let mut cx = Cx {
                    core: &mut self.core,
                    handle: &self.handle,
                };
                self.router.message(msg, &mut cx);
            }
            Command::Shutdown => self.begin_shutdown(),
            #[cfg(feature = "tls")]
            Command::TlsConfig(config) => self.set_tls_config(config),
        }
    }

    /// After the loop ends, commands still queued get their "gone" answers
    /// when their receipts drop; messages for the router are dropped with a log line.
    /// `stopped` is set under the queue lock, which handles check it under, so
    /// no command can be queued after this last drain.
    fn answer_stranded_commands(&mut self) {
        let stranded = {
            let mut queue = match self.handle.shared.queue.lock() {
                Ok(queue) => queue,
                Err(poisoned) => poisoned.into_inner(),
            };
            self.handle.shared.stopped.store(true, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        if !stranded.is_empty() {
            debug!(
                "{} commands arrived after the engine stopped",
                stranded.len()
            );
        }
    }

    // ---- the tick ---------------------------------------------------------

    /// The patent's poll cycle: fire due keepalives and timeouts, then let the
    /// router run its own periodic work.
    fn tick(&mut self) {
        let started = Instant::now();
        let fired = self.run_timer_slice();
        let mut cx = Cx {
            core: &mut self.core,
            handle: &self.handle,
        };
        self.router.tick(&mut cx);
        self.deliver_router_queues();
        let took = started.elapsed().as_micros() as u64;
        self.core
            .metrics
            .last_tick_micros
            .store(took, Ordering::Relaxed);
        Metrics::add(&self.core.metrics.ticks, 1);
        if fired > 0 {
            trace!("tick: {fired} timers fired in {took} us");
        }
    }

    /// Fires up to [`TIMER_SLICE`] due timers and tells the router what closed.
    /// Leaves `timer_backlog` set when more are due, so the loop polls without
    /// waiting and runs the next slice right after serving socket events.
    fn run_timer_slice(&mut self) -> usize {
        let (fired, more) = self.core.run_timers(TIMER_SLICE);
        self.timer_backlog = more;
        self.deliver_router_queues();
        fired
    }

    // ---- shutdown ---------------------------------------------------------

    fn begin_shutdown(&mut self) {
        if self.core.shutting_down {
            return;
        }
        info!("shutting down: {} connections open", self.core.conns.len());
        self.core.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.core.poll.registry().deregister(&mut listener);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.stop_listening(&self.core.poll);
        }
        for key in self.core.keys() {
            let id = self.core.id_of(key);
            if self.core.conns[key].phase != Phase::Deferred {
                self.core.close_gracefully(id, CloseReason::Shutdown);
            }
        }
        self.shutdown_deadline = Some(self.core.now + Core::ms(self.core.cfg.shutdown_grace));
        self.deliver_router_queues();
    }

    fn finished_shutdown(&mut self) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        if self.core.now >= deadline {
            for key in self.core.keys() {
                self.core.close(key, CloseReason::Shutdown);
            }
            self.deliver_router_queues();
        }
        self.core.conns.is_empty()
    }
}

impl<R: Router> Engine<R> {
    /// The connection id of slab slot `key`, for logs and tests.
    pub fn conn_id(&self, key: usize) -> Option<ConnId> {
        self.core.conns.get(key).map(|_| self.core.id_of(key))
    }
}

/// What became of bytes just read.
enum Received {
    /// Kept (or discarded as the phase wants); read on.
    Kept,
    /// The connection closed.
    Closed,
    /// The peer ended its side (TLS `close_notify`): treat as end of input.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    PeerFinished,
}

/// Why reading a socket stopped.
enum ReadStop {
    /// `WouldBlock`: everything the kernel had was read.
    Drained,
    /// The peer sent FIN.
    Eof,
    /// The connection was closed (read error or input cap).
    Closed,
    /// A request's worth of input waits unparsed behind owed answers.
    Full,
}

/// Whether bytes arriving in `phase` are kept as the next request: while
/// reading, behind a deferred answer, and behind a pending long-poll. Held
/// streams and closing connections discard what they receive.
fn keeps_input(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Reading | Phase::Deferred | Phase::Held(crate::Framing::LongPoll)
    )
}

/// Binds a non-blocking listener with `SO_REUSEADDR` and the given backlog.
fn bind_listener(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Answers `503` on a connection over the limit and closes it.
fn refuse(stream: TcpStream) {
    use std::io::Write;
    let mut stream = stream;
    let mut sink = [0u8; 1024];
    let _ = stream.read(&mut sink);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nContent-Length: 21\r\nConnection: close\r\n\r\nconnection limit hit\n",
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM
    matches!(e.raw_os_error(), Some(24) | Some(23) | Some(105) | Some(12))
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
