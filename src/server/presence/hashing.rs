//! Password hashing off the engine thread: argon2id hashing and verification
//! on a fixed number of hashing threads, each reusing one argon2 memory block
//! for its whole life (a fresh 19 MiB block per hash left every thread's
//! blocks resident), fed from a bounded queue that lives on the engine thread.
//!
//! The queue is bounded (past the bound the caller answers `503`), and work
//! queued for a connection that has since closed is dropped before it costs
//! a hash (when the connection closes, and again when the work would start),
//! undoing what it reserved.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::answers::hashing_busy;
use super::throttle::Subject;
use super::Presence;
use crate::server::Job;
use crate::{ConnId, Cx, Handle, Reply};

/// Work for a hashing thread: it gets the thread's argon2 memory.
pub type HashWork = Box<dyn FnOnce(&mut Argon) + Send>;

/// What to undo on the engine thread when queued work is dropped (its
/// connection closed first), e.g. a name reserved for a registration.
pub type Abandon = Box<dyn FnOnce(&mut Presence) + Send>;

/// One waiting piece of hashing work.
struct Queued {
    conn: ConnId,
    work: HashWork,
    abandon: Option<Abandon>,
}

/// The hashing queue is full: answer `503` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The engine thread's side of the hashing threads: a bounded queue of work
/// and the count of threads busy.
pub struct HashQueue {
    tx: Sender<HashWork>,
    threads: usize,
    busy: usize,
    waiting: VecDeque<Queued>,
    bound: usize,
    dropped: u64,
}

impl HashQueue {
    /// Starts `threads` hashing threads (at least one) behind a queue that
    /// holds at most `bound` waiting requests.
    pub fn start(threads: usize, bound: usize) -> std::io::Result<HashQueue> {
        let (tx, rx) = channel::<HashWork>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = threads.max(1);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("altsock-hash-{i}"))
                .spawn(move || hashing_thread(&rx))?;
        }
        Ok(HashQueue {
            tx,
            threads,
            busy: 0,
            waiting: VecDeque::new(),
            bound,
            dropped: 0,
        })
    }

    /// Requests waiting for a hashing thread.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Queued requests dropped because their connection closed first.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queues `work` for `conn`; `abandon` runs if it is dropped unrun.
    /// Refuses when every thread is busy and the queue holds `bound` already.
    /// Returns what work dropped on the way leaves to undo.
    fn submit(
        &mut self,
        cx: &mut Cx<'_, Job>,
        conn: ConnId,
        work: HashWork,
        abandon: Option<Abandon>,
    ) -> Result<Vec<Abandon>, QueueFull> {
        if self.busy >= self.threads && self.waiting.len() >= self.bound {
            return Err(QueueFull);
        }
        self.waiting.push_back(Queued {
            conn,
            work,
            abandon,
        });
        Ok(self.start_next(cx))
    }

    /// Hands waiting work to idle threads, skipping work whose connection
    /// closed; returns what the skipped work leaves to undo.
    fn start_next(&mut self, cx: &mut Cx<'_, Job>) -> Vec<Abandon> {
        let mut undo = Vec::new();
        while self.busy < self.threads {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            if !cx.is_open(next.conn) {
                self.dropped += 1;
                undo.extend(next.abandon);
                continue;
            }
            let done = cx.handle();
            let work = next.work;
            let wrapped: HashWork = Box::new(move |argon: &mut Argon| {
                work(argon);
                free_slot(&done);
            });
            if self.tx.send(wrapped).is_err() {
                log::error!("presence: hashing threads are gone");
                break;
            }
            self.busy += 1;
        }
        undo
    }

    /// A hashing thread finished one piece of work.
    fn finished(&mut self, cx: &mut Cx<'_, Job>) -> Vec<Abandon> {
        self.busy = self.busy.saturating_sub(1);
        self.start_next(cx)
    }

    /// `conn` closed: its waiting work is dropped.
    fn connection_closed(&mut self, conn: ConnId) -> Vec<Abandon> {
        let mut undo = Vec::new();
        let before = self.waiting.len();
        self.waiting.retain_mut(|q| {
            if q.conn != conn {
                return true;
            }
            undo.extend(q.abandon.take());
            false
        });
        self.dropped += (before - self.waiting.len()) as u64;
        undo
    }
}

impl Presence {
    /// Queues password work for the request on `conn` (see
    /// [`HashQueue::submit`]); `Err` means answer `503`.
    pub(super) fn hash_later(
        &mut self,
        cx: &mut Cx<'_, Job>,
        conn: ConnId,
        work: HashWork,
        abandon: Option<Abandon>,
    ) -> Result<(), QueueFull> {
        let undo = self.hashing.submit(cx, conn, work, abandon)?;
        self.undo(undo);
        Ok(())
    }

    /// Queues password work for an attempt counted against `subject(name)`
    /// from `ip`: the attempt is refunded if the work is dropped unrun, or
    /// refused because the queue is full (then `503`).
    pub(super) fn hash_refunding(
        &mut self,
        cx: &mut Cx<'_, Job>,
        conn: ConnId,
        work: HashWork,
        subject: fn(&str) -> Subject<'_>,
        name: String,
        ip: Option<IpAddr>,
    ) -> Reply {
        let refund = name.clone();
        let abandon = Box::new(move |p: &mut Presence| {
            p.throttle.refund(subject(&refund), ip);
        });
        if self.hash_later(cx, conn, work, Some(abandon)).is_err() {
            self.throttle.refund(subject(&name), ip);
            return Reply::Respond(hashing_busy());
        }
        Reply::Defer
    }

    /// Queues password work for a request that reserved `names` (already in
    /// `pending_names`): they are released if the work is dropped unrun, or
    /// refused because the queue is full (then `503`).
    pub(super) fn hash_reserving(
        &mut self,
        cx: &mut Cx<'_, Job>,
        conn: ConnId,
        work: HashWork,
        names: Vec<String>,
    ) -> Reply {
        let release = names.clone();
        let abandon = Box::new(move |p: &mut Presence| {
            for n in &release {
                p.pending_names.remove(n);
            }
        });
        if self.hash_later(cx, conn, work, Some(abandon)).is_err() {
            for n in &names {
                self.pending_names.remove(n);
            }
            return Reply::Respond(hashing_busy());
        }
        Reply::Defer
    }

    /// `conn` closed: its waiting password work is dropped.
    pub(super) fn drop_hashing_of(&mut self, conn: ConnId) {
        let undo = self.hashing.connection_closed(conn);
        self.undo(undo);
    }

    fn undo(&mut self, undo: Vec<Abandon>) {
        for f in undo {
            f(self);
        }
    }
}

/// Tells the engine thread that a hashing thread is free again.
fn free_slot(handle: &Handle<Job>) {
    handle.send(Job::new(|r, cx| {
        let undo = r.presence.hashing.finished(cx);
        r.presence.undo(undo);
    }));
}

fn hashing_thread(rx: &Mutex<Receiver<HashWork>>) {
    let mut argon = Argon::default();
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match next {
            Ok(work) => work(&mut argon),
            Err(_) => return,
        }
    }
}

/// One hashing thread's argon2 memory, allocated on first use and reused.
#[derive(Default)]
pub struct Argon {
    blocks: Vec<Block>,
}

impl Argon {
    /// The first `count` blocks of this thread's memory (grown if needed).
    fn memory(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }

    /// Runs `argon` over `password` and the decoded `salt` into `out`, in
    /// this hasher's reused memory (grown to the cost `argon` asks for).
    fn run(
        &mut self,
        argon: &Argon2<'_>,
        password: &str,
        salt: Salt<'_>,
        out: &mut [u8],
    ) -> Result<(), argon2::password_hash::Error> {
        let mut raw_salt = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut raw_salt)?;
        let memory = self.memory(argon.params().block_count());
        argon.hash_password_into_with_memory(password.as_bytes(), raw_salt, out, memory)?;
        Ok(())
    }

    /// Hashes `password` with argon2id (default cost) and a fresh salt from
    /// the OS; returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub fn hash(&mut self, password: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        let params = Params::default();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        self.run(&argon, password, salt.as_salt(), &mut out)
            .map_err(|e| e.to_string())?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&params).try_into().map_err(|e| format!("{e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    /// True when `password` matches the argon2 PHC string `hash` (any
    /// argon2 variant, version and cost the string names), compared in
    /// constant time.
    pub fn verify(&mut self, password: &str, hash: &str) -> bool {
        self.try_verify(password, hash).unwrap_or(false)
    }

    /// `Some(matched)` once the hash ran; `None` when `hash` is no usable
    /// argon2 PHC string (nothing was hashed).
    pub fn try_verify(&mut self, password: &str, hash: &str) -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map_or(Some(Version::default()), |v| Version::try_from(v).ok())?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params);
        self.run(&argon, password, parsed.salt?, &mut out).ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_standard_argon2id_phc_strings_both_ways() {
        let mut argon = Argon::default();
        let ours = argon.hash("correct horse").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The argon2 crate's own verifier accepts ours...
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        // ...and ours accepts a hash stored by the argon2 crate's hasher.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let stored = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(argon.verify("correct horse", &stored));
        assert!(!argon.verify("wrong horse", &stored));
        assert!(!argon.verify("correct horse", "not a hash"));
        assert!(argon.verify("correct horse", &ours));
        assert!(!argon.verify("correct horsf", &ours));
    }
}
