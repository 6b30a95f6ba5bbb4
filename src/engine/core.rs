//! The socket table and everything that writes to it: the slab of connections,
//! the write path with its per-connection pending buffer and cap, holds,
//! responses, timers and closing. The event loop in `mod.rs` reads and
//! dispatches; this file never calls the router, it queues what the router must
//! hear (`closed`, `released`, requests to resume) for the loop to deliver.
//!
//! Input buffers are boxed on purpose: the box keeps the idle connection's slot
//! at 8 bytes, and the pool hands the same boxes around.
#![allow(clippy::vec_box)]

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, trace};
use mio::Poll;
use slab::Slab;

use super::config::Config;
use super::conn::{Conn, HoldInfo, Input, Pending, Phase};
use super::pipeline::Pipeline;
use super::timers::Timers;
use crate::framing::{self, Framing, Message};
use crate::metrics::{CloseReason, Metrics};
use crate::reply::{Gone, Hold, Reply};
use crate::{ConnId, Response};

/// Input buffers kept for reuse, at most.
const INPUT_POOL: usize = 64;
/// Capacity of a fresh input buffer.
const INPUT_CAPACITY: usize = 4096;
/// How long a closing connection lingers for the peer's FIN after our last byte.
const LINGER: Duration = Duration::from_secs(2);
/// The default content type of multipart parts and long-poll answers.
const PLAIN: &str = "text/plain; charset=utf-8";

/// The engine's state apart from the router and the listener.
pub(crate) struct Core {
    pub poll: Poll,
    pub conns: Slab<Conn>,
    /// The generation of each slab slot; bumped on every close.
    gens: Vec<u32>,
    timers: Timers,
    pub cfg: Config,
    pub metrics: Arc<Metrics>,
    start: Instant,
    pub now: u64,
    input_pool: Vec<Box<Input>>,
    /// Encoded responses are built here, then written.
    out_scratch: Vec<u8>,
    /// Connections the router must hear were closed.
    pub closed_queue: Vec<(ConnId, CloseReason)>,
    /// Long-poll holds the router must hear were released.
    pub released_queue: Vec<ConnId>,
    /// Connections whose deferred reply completed with input still buffered.
    pub resume_queue: Vec<ConnId>,
    /// Answers owed per connection (slab key), in request order; an entry
    /// exists only while some are owed (`pipeline.rs`).
    pub pipelines: HashMap<usize, Pipeline>,
    /// The last request sequence number handed out.
    pub request_seq: u64,
    pub shutting_down: bool,
    /// The secret key of multipart boundaries.
    boundary_keys: RandomState,
    /// WebSocket state kept outside `Conn` (see `websocket.rs`).
    pub ws: super::websocket::WsTable,
    /// The TLS session of each TLS connection (a side table keyed like `conns`).
    #[cfg(feature = "tls")]
    pub(crate) tls: super::tls::Sessions,
    /// Encrypted records are built here, then written.
    #[cfg(feature = "tls")]
    pub(crate) tls_out: Vec<u8>,
}

impl Core {
    pub fn new(poll: Poll, cfg: Config, metrics: Arc<Metrics>) -> Self {
        Core {
            poll,
            // Reserved up front: untouched capacity costs address space, not
            // memory, and doubling growth would leave up to half of it idle.
            conns: Slab::with_capacity(cfg.max_connections),
            gens: Vec::with_capacity(cfg.max_connections),
            timers: Timers::with_capacity(cfg.max_connections),
            cfg,
            metrics,
            start: Instant::now(),
            now: 0,
            input_pool: Vec::new(),
            out_scratch: Vec::new(),
            closed_queue: Vec::new(),
            released_queue: Vec::new(),
            resume_queue: Vec::new(),
            pipelines: HashMap::new(),
            request_seq: 0,
            shutting_down: false,
            boundary_keys: RandomState::new(),
            ws: Default::default(),
            #[cfg(feature = "tls")]
            tls: Default::default(),
            #[cfg(feature = "tls")]
            tls_out: Vec::new(),
        }
    }

    /// Refreshes the engine clock (milliseconds since start).
    pub fn update_clock(&mut self) {
        self.now = self.start.elapsed().as_millis() as u64;
    }

    pub fn now_instant(&self) -> Instant {
        self.start + Duration::from_millis(self.now)
    }

    /// Milliseconds of a duration, for deadlines.
    pub fn ms(d: Duration) -> u64 {
        d.as_millis().min(u64::MAX as u128 / 2) as u64
    }

    /// Adds an accepted socket to the table; returns its slab key.
    pub fn insert(&mut self, stream: mio::net::TcpStream) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if self.gens.len() <= key {
            self.gens.resize(key + 1, 0);
        }
        let mut conn = Conn::new(stream, self.gens[key]);
        self.poll.registry().register(
            &mut conn.stream,
            mio::Token(key),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        entry.insert(conn);
        self.set_deadline(key, self.now + Self::ms(self.cfg.header_timeout));
        Metrics::add(&self.metrics.open, 1);
        Metrics::add(&self.metrics.accepted, 1);
        Ok(key)
    }

    pub fn id_of(&self, key: usize) -> ConnId {
        ConnId {
            key: key as u32,
            gen: self.conns.get(key).map_or(0, |c| c.gen),
        }
    }

    /// The slab key of `conn` if it is still the same connection.
    pub fn key_of(&self, conn: ConnId) -> Option<usize> {
        let key = conn.key as usize;
        self.conns
            .get(key)
            .filter(|c| c.gen == conn.gen)
            .map(|_| key)
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        self.key_of(conn).is_some()
    }

    /// Bytes written to `conn` that its socket has not taken yet (`None`:
    /// closed).
    pub fn backlog(&self, conn: ConnId) -> Option<usize> {
        let c = self.conns.get(self.key_of(conn)?)?;
        Some(c.output.as_ref().map_or(0, |p| p.len()))
    }

    /// An input buffer from the pool.
    pub fn take_input_buffer(&mut self) -> Box<Input> {
        self.input_pool
            .pop()
            .unwrap_or_else(|| Box::new(Input::with_capacity(INPUT_CAPACITY)))
    }

    /// Returns a connection's input buffer to the pool once it is empty and no
    /// request is under way.
    pub fn recycle_input(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.input.as_ref().is_some_and(|b| b.is_empty()) {
            if let Some(buf) = conn.input.take() {
                if self.input_pool.len() < INPUT_POOL && buf.capacity() <= 4 * INPUT_CAPACITY {
                    self.input_pool.push(buf);
                }
            }
        }
    }

    // ---- writing ----------------------------------------------------------

    /// Writes `bytes` to connection `key` (encrypted first on a TLS
    /// connection), keeping what the socket will not take.
    /// Returns false if the connection was closed (write failure or cap).
    pub fn write(&mut self, key: usize, bytes: &[u8]) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_tls(key) {
            return self.write_encrypted(key, bytes);
        }
        self.write_raw(key, bytes)
    }

    /// Writes bytes as they are to the socket of `key`, keeping what it will
    /// not take; for a TLS connection, `bytes` are records.
    pub(crate) fn write_raw(&mut self, key: usize, bytes: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if bytes.is_empty() {
            return true;
        }
        if let Phase::Held(_) = conn.phase {
            conn.deadline = self.now + Self::ms(self.cfg.keepalive_interval);
        }
        if let Some(pending) = conn.output.as_mut() {
            if pending.len() + bytes.len() > self.cfg.max_pending_output {
                self.close(key, CloseReason::SlowConsumer);
                return false;
            }
            pending.compact();
            pending.buf.extend_from_slice(bytes);
            return true;
        }
        let mut written = 0;
        while written < bytes.len() {
            match conn.stream.write(&bytes[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    trace!(
                        "{}: write failed: {e}",
                        ConnId {
                            key: key as u32,
                            gen: conn.gen
                        }
                    );
                    Metrics::add(&self.metrics.bytes_out, written as u64);
                    self.close(key, CloseReason::WriteFailed);
                    return false;
                }
            }
        }
        Metrics::add(&self.metrics.bytes_out, written as u64);
        if written < bytes.len() {
            let rest = &bytes[written..];
            if rest.len() > self.cfg.max_pending_output {
                self.close(key, CloseReason::SlowConsumer);
                return false;
            }
            conn.output = Some(Box::new(Pending {
                buf: rest.to_vec(),
                pos: 0,
            }));
        }
        true
    }

    /// Writes pending output after the socket became writable. Returns false if
    /// the connection closed.
    pub fn flush(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let Some(pending) = conn.output.as_mut() else {
            return true;
        };
        while pending.pos < pending.buf.len() {
            match conn.stream.write(&pending.buf[pending.pos..]) {
                Ok(0) => break,
                Ok(n) => {
                    pending.pos += n;
                    Metrics::add(&self.metrics.bytes_out, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    self.close(key, CloseReason::WriteFailed);
                    return false;
                }
            }
        }
        if pending.pos == pending.buf.len() {
            conn.output = None;
            if let Phase::Closing(_) = conn.phase {
                let _ = conn.stream.shutdown(Shutdown::Write);
            }
        }
        true
    }

    // ---- closing ----------------------------------------------------------

    /// Closes connection `key` now.
    pub fn close(&mut self, key: usize, reason: CloseReason) {
        if !self.conns.contains(key) {
            return;
        }
        #[cfg(feature = "tls")]
        {
            if !matches!(
                reason,
                CloseReason::PeerReset | CloseReason::WriteFailed | CloseReason::TlsError
            ) {
                self.last_close_notify(key);
            }
            self.tls.remove(key);
        }
        self.drop_pipeline(key);
        let mut conn = self.conns.remove(key);
        self.ws.forget(key);
        let id = ConnId {
            key: key as u32,
            gen: conn.gen,
        };
        debug!("{id}: closed ({reason})");
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.gens[key] = self.gens[key].wrapping_add(1);
        Metrics::sub(&self.metrics.open, 1);
        if conn.framing().is_some() {
            Metrics::sub(&self.metrics.held, 1);
        }
        self.metrics.count_close(reason);
        if conn.seen {
            self.closed_queue.push((id, reason));
        }
    }

    /// Sends what is pending, half-closes, and lingers briefly for the peer's
    /// FIN so that unread input does not turn our last bytes into a reset.
    pub fn close_after_flush(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.framing().is_some() {
            Metrics::sub(&self.metrics.held, 1);
        }
        conn.phase = Phase::Closing(reason);
        #[cfg(feature = "tls")]
        if !self.send_close_notify(key) {
            return;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.output.is_none() {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        conn.input = None;
        self.drop_pipeline(key);
        let linger = self.now + Self::ms(LINGER);
        self.set_deadline(key, linger);
    }

    /// Ends a connection the polite way: a held stream gets its end marker,
    /// an idle one closes at once, anything else after its output is flushed.
    pub fn close_gracefully(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(key) = self.key_of(conn) else { return };
        let c = &self.conns[key];
        match c.phase {
            Phase::Held(Framing::LongPoll) => self.close(key, reason),
            Phase::Held(Framing::WebSocket) => self.ws_close_for(key, reason),
            Phase::Held(framing) => {
                let end = framing::stream_end(framing, c.chunked);
                if self.write(key, &end) {
                    self.close_after_flush(key, reason);
                }
            }
            Phase::Reading if c.input.is_none() && c.output.is_none() => self.close(key, reason),
            Phase::Closing(_) => {}
            _ => self.close_after_flush(key, reason),
        }
    }

    // ---- answering --------------------------------------------------------

    /// Writes a complete response to the request `key` is answering, then
    /// either waits for the next request or closes.
    pub fn respond(&mut self, key: usize, response: &Response) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        // Shutting down, a connection still answers what it owes, then closes.
        let close = !conn.keep_alive || (self.shutting_down && !self.owes_answers(key));
        let head_only = conn.head_only;
        let confirm_keep_alive = conn.http10 && !close;
        let mut out = std::mem::take(&mut self.out_scratch);
        out.clear();
        response.write_head_and_body(&mut out, close, confirm_keep_alive, head_only);
        let open = self.write(key, &out);
        self.out_scratch = out;
        if !open {
            return;
        }
        if close {
            self.close_after_flush(key, CloseReason::Done);
        } else {
            self.await_next_request(key);
        }
    }

    /// Back to reading after an answered request.
    fn await_next_request(&mut self, key: usize) {
        let owes = self.owes_answers(key);
        let conn = &mut self.conns[key];
        if conn.framing().is_some() {
            Metrics::sub(&self.metrics.held, 1);
        }
        conn.served = true;
        conn.hold = None;
        let has_input = conn.input.as_ref().is_some_and(|b| !b.is_empty());
        if owes {
            // More pipelined answers are owed: back behind them, and parse
            // ahead again now that a slot is free.
            conn.phase = Phase::Deferred;
            conn.deadline = u64::MAX;
            if has_input {
                self.resume_queue.push(self.id_of(key));
            }
            return;
        }
        conn.phase = Phase::Reading;
        let timeout = if has_input {
            self.cfg.header_timeout
        } else {
            self.cfg.idle_timeout
        };
        self.set_deadline(key, self.now + Self::ms(timeout));
        if has_input {
            self.resume_queue.push(self.id_of(key));
        }
    }

    /// Answers a request that could not be parsed, and closes.
    pub fn reject(&mut self, key: usize, status: u16, why: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        debug!(
            "{}: rejecting request: {status} {why}",
            ConnId {
                key: key as u32,
                gen: conn.gen
            }
        );
        conn.keep_alive = false;
        conn.head_only = false;
        let response = Response::text(status, format!("{why}\n"));
        let mut out = Vec::new();
        response.write_to(&mut out, true, false);
        if self.write(key, &out) {
            self.close_after_flush(key, CloseReason::BadRequest);
        }
    }

    /// Sends `100 Continue` once for the request being read.
    pub fn send_continue(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.continue_sent {
            conn.continue_sent = true;
            self.write(key, b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    /// Carries out the router's answer to request `seq` on `key`, which owed
    /// no earlier answer.
    pub fn apply(&mut self, key: usize, seq: u64, reply: Reply) {
        match reply {
            Reply::Respond(response) => self.respond(key, &response),
            Reply::Hold(hold) => self.start_hold(key, hold),
            Reply::Defer => self.defer_first(key, seq, false),
            Reply::DeferPipelined => self.defer_first(key, seq, true),
        }
    }

    /// Opens a held stream on `key`.
    pub fn start_hold(&mut self, key: usize, hold: Hold) {
        if hold.framing == Framing::WebSocket {
            return self.start_websocket(key, hold);
        }
        let framing = hold.framing;
        let boundary = self.boundary_of(key, framing);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let (head_type, content_type) = match (framing, hold.content_type) {
            (Framing::Multipart, part) => (
                framing::multipart_content_type(&boundary),
                part.unwrap_or_else(|| PLAIN.into()),
            ),
            (_, Some(given)) => (given.clone(), given),
            (_, None) => (
                framing.default_content_type(),
                framing.default_content_type(),
            ),
        };
        conn.chunked = framing == Framing::Chunked && conn.keep_alive && !conn.http10;
        if framing != Framing::LongPoll {
            conn.keep_alive = false;
        }
        conn.phase = Phase::Held(framing);
        Metrics::add(&self.metrics.held, 1);
        let needs_info = matches!(framing, Framing::LongPoll | Framing::Multipart);
        if needs_info {
            conn.hold = Some(Box::new(HoldInfo {
                content_type: content_type.clone(),
                headers: hold.headers.clone(),
            }));
        }
        if framing == Framing::LongPoll {
            let timeout = hold.timeout.unwrap_or(self.cfg.keepalive_interval);
            self.set_deadline(key, self.now + Self::ms(timeout));
            if !hold.initial.is_empty() {
                self.answer_longpoll(key, &join_messages(&hold.initial));
            }
            return;
        }
        let chunked = conn.chunked;
        let head_only = conn.head_only;
        let mut out = Vec::with_capacity(256);
        if head_only {
            // A HEAD answer ends with its head: no boundary, messages or keepalives.
            framing::write_stream_head(&mut out, Framing::Raw, &head_type, &hold.headers, chunked);
            if self.write(key, &out) {
                self.close_after_flush(key, CloseReason::Done);
            }
            return;
        }
        let extra = &hold.headers;
        framing::write_stream_head_with_boundary(
            &mut out, framing, &head_type, extra, chunked, &boundary,
        );
        for msg in &hold.initial {
            framing::encode_message_with_boundary(
                &mut out,
                framing,
                msg,
                &content_type,
                chunked,
                &boundary,
            );
        }
        if self.write(key, &out) {
            self.set_deadline(key, self.now + Self::ms(self.cfg.keepalive_interval));
        }
    }

    /// Answers a pending long-poll with `msg` and releases the hold.
    fn answer_longpoll(&mut self, key: usize, msg: &Message) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let info = conn.hold.as_deref();
        let content_type = info.map_or(PLAIN, |i| i.content_type.as_str());
        let headers = info.map_or(&[][..], |i| i.headers.as_slice());
        let response = framing::longpoll_answer(msg, content_type, headers);
        let id = self.id_of(key);
        self.respond(key, &response);
        self.released_queue.push(id);
        self.answer_ready(key);
    }

    // ---- pushing ----------------------------------------------------------

    /// Pushes one message to one held connection.
    pub fn push(&mut self, conn: ConnId, msg: &Message) -> Result<(), Gone> {
        let key = self.key_of(conn).ok_or(Gone)?;
        let c = &self.conns[key];
        let framing = c.framing().ok_or(Gone)?;
        if framing == Framing::LongPoll {
            self.answer_longpoll(key, msg);
            return Ok(());
        }
        let content_type = part_content_type(c);
        let chunked = c.chunked;
        let boundary = self.boundary_of(key, framing);
        let mut out = Vec::with_capacity(msg.data.len() + 64);
        framing::encode_message_with_boundary(
            &mut out,
            framing,
            msg,
            &content_type,
            chunked,
            &boundary,
        );
        if self.write(key, &out) {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// Pushes one message to many connections, encoding it once per framing.
    pub fn broadcast<'c>(
        &mut self,
        conns: impl IntoIterator<Item = &'c ConnId>,
        msg: &Message,
    ) -> usize {
        let mut encoded: Vec<((Framing, bool), Vec<u8>)> = Vec::new();
        let mut delivered = 0;
        for &conn in conns {
            let Some(key) = self.key_of(conn) else {
                continue;
            };
            let c = &self.conns[key];
            let Some(framing) = c.framing() else { continue };
            if matches!(framing, Framing::LongPoll | Framing::Multipart) {
                // Each multipart stream has its own boundary.
                delivered += usize::from(self.push(conn, msg).is_ok());
                continue;
            }
            let form = (framing, c.chunked);
            let index = match encoded.iter().position(|(f, _)| *f == form) {
                Some(i) => i,
                None => {
                    let mut out = Vec::with_capacity(msg.data.len() + 64);
                    framing::encode_message(&mut out, framing, msg, PLAIN, form.1);
                    encoded.push((form, out));
                    encoded.len() - 1
                }
            };
            let bytes = std::mem::take(&mut encoded[index].1);
            delivered += usize::from(self.write(key, &bytes));
            encoded[index].1 = bytes;
        }
        delivered
    }

    /// The multipart boundary of the stream on `key`: a keyed hash of its
    /// connection id, so no client can learn another stream's boundary and put
    /// it in a message to forge parts there. Empty for other framings.
    fn boundary_of(&self, key: usize, framing: Framing) -> String {
        if framing != Framing::Multipart {
            return String::new();
        }
        let id = self.id_of(key);
        let hash = self.boundary_keys.hash_one((id.key, id.gen));
        format!("{}-{hash:016x}", framing::MULTIPART_BOUNDARY)
    }

    // ---- timers -----------------------------------------------------------

    /// Sets when `key`'s timer fires; only an earlier deadline needs a new entry.
    pub fn set_deadline(&mut self, key: usize, due: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.deadline = due;
        if due < conn.scheduled {
            conn.scheduled = due;
            self.timers.schedule(due, key as u32, conn.gen);
        }
    }

    /// Fires the timers due by now.
    ///
    /// At most `limit` fire in one call, so that a burst (every connection
    /// accepted in the same second comes due in the same tick) is written in
    /// slices with socket events served in between; returns how many fired and
    /// whether more are due.
    pub fn run_timers(&mut self, limit: usize) -> (usize, bool) {
        let mut fired = 0;
        while fired < limit {
            let Some((due, key, gen)) = self.timers.pop_due(self.now) else {
                return (fired, false);
            };
            let key = key as usize;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.gen != gen || conn.scheduled != due {
                continue;
            }
            conn.scheduled = u64::MAX;
            if conn.deadline > self.now {
                let deadline = conn.deadline;
                if deadline != u64::MAX {
                    self.set_deadline(key, deadline);
                }
                continue;
            }
            fired += 1;
            self.fire(key);
        }
        (fired, self.timers.has_due(self.now))
    }

    /// What a connection's due timer means depends on its phase.
    fn fire(&mut self, key: usize) {
        let conn = &self.conns[key];
        match conn.phase {
            Phase::Reading if conn.served && conn.input.is_none() && conn.output.is_some() => {
                // Still sending the last answer to a slow reader: not idle.
                self.set_deadline(key, self.now + Self::ms(self.cfg.idle_timeout));
            }
            Phase::Reading if conn.served && conn.input.is_none() => {
                self.close(key, CloseReason::IdleTimeout)
            }
            #[cfg(feature = "tls")]
            Phase::Reading if self.tls.handshaking(key) => {
                debug!(
                    "{}: TLS handshake not done within the header timeout",
                    self.id_of(key)
                );
                self.close(key, CloseReason::HeaderTimeout);
            }
            Phase::Reading => {
                let id = self.id_of(key);
                debug!("{id}: request not complete within the header timeout");
                if let Some(c) = self.conns.get_mut(key) {
                    c.keep_alive = false;
                }
                let mut out = Vec::new();
                Response::text(408, "request timeout\n").write_to(&mut out, true, false);
                if self.write(key, &out) {
                    self.close_after_flush(key, CloseReason::HeaderTimeout);
                }
            }
            Phase::Held(Framing::LongPoll) => {
                let id = self.id_of(key);
                let headers = conn.hold.as_deref().map_or(&[][..], |i| &i.headers[..]);
                let response = framing::longpoll_timeout(headers);
                self.respond(key, &response);
                self.released_queue.push(id);
                self.answer_ready(key);
            }
            Phase::Held(Framing::WebSocket) => self.ws_keepalive(key),
            Phase::Held(framing) => self.keepalive(key, framing),
            Phase::Deferred => {}
            Phase::Closing(reason) => self.close(key, reason),
        }
    }

    /// Writes the framing's keepalive unless output is already on its way.
    fn keepalive(&mut self, key: usize, framing: Framing) {
        let conn = &self.conns[key];
        if conn.output.is_some() {
            self.set_deadline(key, self.now + Self::ms(self.cfg.keepalive_interval));
            return;
        }
        let bytes = framing.keepalive(conn.chunked);
        trace!("{}: keepalive", self.id_of(key));
        if self.write(key, bytes) {
            Metrics::add(&self.metrics.keepalives, 1);
            let next = self.now + Self::ms(self.cfg.keepalive_interval);
            self.set_deadline(key, next);
        }
    }

    /// Keys of every open connection.
    pub fn keys(&self) -> Vec<usize> {
        self.conns.iter().map(|(k, _)| k).collect()
    }
}

/// The content type of each multipart part on `conn`.
fn part_content_type(conn: &Conn) -> String {
    match &conn.hold {
        Some(info) if conn.framing() == Some(Framing::Multipart) => info.content_type.clone(),
        _ => PLAIN.into(),
    }
}

/// Joins a long-poll's initial messages into one answer carrying the last id.
fn join_messages(messages: &[Message]) -> Message {
    let mut joined = Message::default();
    for msg in messages {
        joined.data.extend_from_slice(&msg.data);
        joined.id = msg.id.clone().or(joined.id);
        joined.event = msg.event.clone().or(joined.event);
    }
    joined
}
