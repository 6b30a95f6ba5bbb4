//! The presence server's SQLite database: the schema and its migrations, the
//! load of the persistent directory at start, and the one worker thread that
//! owns the connection afterwards, behind a bounded queue. The thread takes
//! everything queued and writes it in one transaction (group commit); each
//! write's continuation runs only once that transaction committed, so an
//! answer that promises storage is sent after the data is in the database
//! (as durable as [`DbSync`] says). A full queue refuses new writes
//! ([`Busy`]), never acknowledging what it cannot keep. The activity log is
//! best-effort: its lines ride along in the same transactions, and lines
//! over their own bound are dropped and counted. The SQL itself lives in
//! [`super::store`].

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use super::directory::{Directory, GroupRec, UserRec};
use super::store;

/// The migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, groups, address books, stored messages, activity log.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        email TEXT UNIQUE,
        phone TEXT UNIQUE,
        active TEXT NOT NULL DEFAULT 'contacts',
        created INTEGER NOT NULL
    );
    CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        hash TEXT,
        creator TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE members (
        grp TEXT NOT NULL,
        user TEXT NOT NULL,
        PRIMARY KEY (grp, user)
    );
    CREATE TABLE contacts (
        owner TEXT NOT NULL,
        contact TEXT NOT NULL,
        PRIMARY KEY (owner, contact)
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        body TEXT NOT NULL,
        ts INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_recipient ON messages (recipient, delivered);
    CREATE TABLE activity (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        user TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );",
];

/// How hard a commit pushes the data to the disk (`--db-sync`). Both run the
/// database in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbSync {
    /// `synchronous=NORMAL`: a commit is written to the WAL file before it
    /// is acknowledged, and survives a crash of the process (`kill -9`, an
    /// OOM kill); a power loss or kernel crash may lose the last commits
    /// (never corrupting the file).
    #[default]
    Normal,
    /// `synchronous=FULL`: the WAL is also fsynced at every commit, so an
    /// acknowledged write survives power loss too, at the cost of one fsync
    /// per group commit.
    Full,
}

impl DbSync {
    fn pragma(self) -> &'static str {
        match self {
            DbSync::Normal => "NORMAL",
            DbSync::Full => "FULL",
        }
    }
}

impl std::str::FromStr for DbSync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(DbSync::Normal),
            "full" => Ok(DbSync::Full),
            _ => Err(format!("{s:?}: expected normal or full")),
        }
    }
}

/// Settings of the database and of what it stores.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How commits reach the disk.
    pub sync: DbSync,
    /// Most writes waiting for the database thread; more get `503`.
    pub queue: usize,
    /// Most undelivered stored messages per recipient.
    pub max_per_recipient: usize,
    /// Most undelivered stored messages per sender (all recipients).
    pub max_per_sender: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sync: DbSync::Normal,
            queue: 4096,
            max_per_recipient: 10_000,
            max_per_sender: 5_000,
        }
    }
}

/// The database queue is full: the write was not taken (answer `503`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Most activity-log lines waiting; more are dropped and counted.
const LOG_CAP: usize = 16_384;

/// One queued write: applied inside the group transaction, finished once
/// that transaction's fate is known.
trait Work: Send {
    /// Runs the statements; false when they failed (their savepoint is
    /// rolled back, the rest of the batch goes on).
    fn apply(&mut self, c: &Connection) -> bool;
    /// Runs the continuation: the value after a commit, else the error.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

/// A [`Work`] from two closures.
struct Write<T, A, F> {
    apply: Option<A>,
    value: Option<rusqlite::Result<T>>,
    then: F,
}

impl<T, A, F> Work for Write<T, A, F>
where
    T: Send,
    A: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
    F: FnOnce(Result<T, String>) + Send,
{
    fn apply(&mut self, c: &Connection) -> bool {
        let Some(apply) = self.apply.take() else {
            return false;
        };
        let value = apply(c);
        let ok = value.is_ok();
        self.value = Some(value);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let outcome = match (self.value, committed) {
            (Some(Err(e)), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err("not applied".to_string()),
        };
        (self.then)(outcome)
    }
}

/// What one turn of the database thread writes: the queued work and log lines.
type Batch = (Vec<Box<dyn Work>>, Vec<LogLine>);

/// One line of the activity log.
struct LogLine {
    ts: i64,
    user: String,
    kind: &'static str,
    detail: String,
}

/// What waits for the database thread.
#[derive(Default)]
struct Pending {
    work: VecDeque<Box<dyn Work>>,
    /// How many of `work` count against the bound.
    bounded: usize,
    log: Vec<LogLine>,
    closed: bool,
}

/// Counters of the database thread, rendered on `/metrics`.
#[derive(Default)]
struct Stats {
    writing: AtomicU64,
    commits: AtomicU64,
    writes: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    logged: AtomicU64,
    log_dropped: AtomicU64,
}

/// The queue shared by the engine thread (and workers) and the database thread.
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    cap: usize,
    stats: Stats,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for work; takes all of it. `None` once closed and drained.
    fn take_all(&self) -> Option<Batch> {
        let mut p = self.lock();
        while p.work.is_empty() && p.log.is_empty() {
            if p.closed {
                return None;
            }
            p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        p.bounded = 0;
        Some((p.work.drain(..).collect(), std::mem::take(&mut p.log)))
    }
}

/// Closes the queue when the last [`Db`] goes: the thread drains and ends.
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake.notify_one();
    }
}

/// The sending side of the database thread.
#[derive(Clone)]
pub struct Db {
    queue: Arc<Queue>,
    _closer: Arc<Closer>,
}

impl Db {
    /// Queues a write; `then` gets its value once the transaction holding
    /// it committed (on the database thread: send a `Job` from there), or
    /// the error. [`Busy`] when the queue is full: nothing was queued.
    pub fn write<T: Send + 'static>(
        &self,
        apply: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        then: impl FnOnce(Result<T, String>) + Send + 'static,
    ) -> Result<(), Busy> {
        self.submit(true, apply, then)
    }

    /// Like [`Db::write`], past the bound: the server's own bookkeeping
    /// (delivery of stored messages, the shutdown barrier), which must not
    /// be lost and is bounded by its callers.
    pub fn write_unbounded<T: Send + 'static>(
        &self,
        apply: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        then: impl FnOnce(Result<T, String>) + Send + 'static,
    ) {
        let _ = self.submit(false, apply, then);
    }

    fn submit<T: Send + 'static>(
        &self,
        bounded: bool,
        apply: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        then: impl FnOnce(Result<T, String>) + Send + 'static,
    ) -> Result<(), Busy> {
        let work = Box::new(Write {
            apply: Some(apply),
            value: None,
            then,
        });
        let mut p = self.queue.lock();
        if bounded && p.bounded >= self.queue.cap {
            drop(p);
            self.queue.stats.refused.fetch_add(1, Relaxed);
            return Err(Busy);
        }
        p.bounded += usize::from(bounded);
        p.work.push_back(work);
        drop(p);
        self.queue.wake.notify_one();
        Ok(())
    }

    /// Appends one line to the activity log (best-effort: dropped and
    /// counted when too many wait).
    pub fn log(&self, user: &str, kind: &'static str, detail: String) {
        let mut p = self.queue.lock();
        if p.log.len() >= LOG_CAP {
            drop(p);
            self.queue.stats.log_dropped.fetch_add(1, Relaxed);
            return;
        }
        p.log.push(LogLine {
            ts: super::ids::unix_now(),
            user: user.to_string(),
            kind,
            detail,
        });
        drop(p);
        self.queue.wake.notify_one();
    }

    /// Waits up to `timeout` until everything queued before is committed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.write_unbounded(
            |_| Ok(()),
            move |_| {
                let _ = tx.send(());
            },
        );
        rx.recv_timeout(timeout).is_ok()
    }

    /// The database counters in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let depth = {
            let p = self.queue.lock();
            p.work.len()
        };
        let s = &self.queue.stats;
        let rows: [(&str, &str, &str, u64); 9] = [
            (
                "altsock_db_queue_depth",
                "gauge",
                "Writes waiting for the database thread.",
                depth as u64,
            ),
            (
                "altsock_db_queue_capacity",
                "gauge",
                "Most writes that may wait (--db-queue); more get 503.",
                self.queue.cap as u64,
            ),
            (
                "altsock_db_writing",
                "gauge",
                "Writes in the transaction being written now.",
                s.writing.load(Relaxed),
            ),
            (
                "altsock_db_commits_total",
                "counter",
                "Group transactions committed.",
                s.commits.load(Relaxed),
            ),
            (
                "altsock_db_writes_total",
                "counter",
                "Writes committed.",
                s.writes.load(Relaxed),
            ),
            (
                "altsock_db_write_failures_total",
                "counter",
                "Writes that failed (answered 500).",
                s.failed.load(Relaxed),
            ),
            (
                "altsock_db_writes_refused_total",
                "counter",
                "Writes refused because the queue was full (answered 503).",
                s.refused.load(Relaxed),
            ),
            (
                "altsock_activity_logged_total",
                "counter",
                "Activity-log lines written.",
                s.logged.load(Relaxed),
            ),
            (
                "altsock_activity_dropped_total",
                "counter",
                "Activity-log lines dropped (best-effort log, queue full).",
                s.log_dropped.load(Relaxed),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

/// The database thread: one group transaction per turn.
fn run(queue: &Queue, mut conn: Connection, nudge: &SyncSender<()>) {
    while let Some((work, log)) = queue.take_all() {
        let s = &queue.stats;
        s.writing.store(work.len() as u64, Relaxed);
        let (work, committed) = write_batch(&mut conn, work, &log, s);
        s.writing.store(0, Relaxed);
        match &committed {
            Ok(()) => {
                s.commits.fetch_add(1, Relaxed);
                s.logged.fetch_add(log.len() as u64, Relaxed);
            }
            Err(e) => {
                log::error!("presence: database commit failed: {e}");
                s.failed.fetch_add(work.len() as u64, Relaxed);
                s.log_dropped.fetch_add(log.len() as u64, Relaxed);
            }
        }
        for w in work {
            w.finish(committed.clone());
        }
        if s.commits.load(Relaxed) % CHECKPOINT_EVERY == 0 {
            let _ = nudge.try_send(());
        }
    }
}

/// Commits between two checkpoints (also one a second while writes come).
const CHECKPOINT_EVERY: u64 = 256;

/// The checkpointer: copies the WAL into the database file on its own
/// connection, so the commits that acknowledge writes never wait for a
/// checkpoint's fsyncs (SQLite's automatic checkpoint is turned off).
fn checkpoints(path: &Path, queue: &Queue, nudges: &Receiver<()>) {
    let conn = match Connection::open(path) {
        Ok(conn) => conn,
        Err(e) => return log::error!("presence: checkpointer: {e}"),
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let mut done = 0;
    loop {
        let last = matches!(
            nudges.recv_timeout(Duration::from_secs(1)),
            Err(RecvTimeoutError::Disconnected)
        );
        let commits = queue.stats.commits.load(Relaxed);
        if commits != done || last {
            done = commits;
            let run = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if let Err(e) = run {
                log::warn!("presence: checkpoint: {e}");
            }
        }
        if last {
            return;
        }
    }
}

/// Applies every write (each in its own savepoint) and the log lines in one
/// transaction, and commits it.
fn write_batch(
    conn: &mut Connection,
    mut work: Vec<Box<dyn Work>>,
    log: &[LogLine],
    stats: &Stats,
) -> (Vec<Box<dyn Work>>, Result<(), String>) {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return (work, Err(e.to_string())),
    };
    let mut applied = 0;
    for w in &mut work {
        if let Err(e) = tx.execute_batch("SAVEPOINT w") {
            return (work, Err(e.to_string()));
        }
        let ok = w.apply(&tx);
        let end = if ok {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = tx.execute_batch(end) {
            return (work, Err(e.to_string()));
        }
        if ok {
            applied += 1;
        } else {
            stats.failed.fetch_add(1, Relaxed);
        }
    }
    for line in log {
        if let Err(e) = store::append_activity(&tx, line.ts, &line.user, line.kind, &line.detail) {
            log::warn!("presence: activity log: {e}");
        }
    }
    let committed = tx.commit().map_err(|e| e.to_string());
    if committed.is_ok() {
        stats.writes.fetch_add(applied, Relaxed);
    }
    (work, committed)
}

/// Opens (creating and migrating) the database, loads the directory and
/// starts the database thread. Blocking: call before the engine loop runs.
/// Also returns the highest message id and the undelivered counts.
pub fn open(path: &Path, config: &StoreConfig) -> std::io::Result<(Db, Directory, store::Loaded)> {
    let err = |e: rusqlite::Error| std::io::Error::other(format!("{}: {e}", path.display()));
    let mut conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", config.sync.pragma())
        .map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    migrate(&mut conn).map_err(err)?;
    let directory = load(&conn).map_err(err)?;
    let loaded = store::load_messages(&conn).map_err(err)?;
    let queue = Arc::new(Queue {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        cap: config.queue.max(1),
        stats: Stats::default(),
    });
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(err)?;
    let (nudge, nudges) = sync_channel(1);
    let (thread_queue, ckpt_queue) = (Arc::clone(&queue), Arc::clone(&queue));
    let ckpt_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("altsock-checkpoint".into())
        .spawn(move || checkpoints(&ckpt_path, &ckpt_queue, &nudges))?;
    std::thread::Builder::new()
        .name("altsock-db".into())
        .spawn(move || run(&thread_queue, conn, &nudge))?;
    let closer = Arc::new(Closer(Arc::clone(&queue)));
    let db = Db {
        queue,
        _closer: closer,
    };
    Ok((db, directory, loaded))
}

/// Applies the migrations not yet applied.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        log::info!("presence: database migrated to version {}", i + 1);
    }
    Ok(())
}

/// Reads users, groups, memberships and address books into memory.
fn load(conn: &Connection) -> rusqlite::Result<Directory> {
    let mut dir = Directory::default();
    let mut stmt = conn.prepare("SELECT name, hash, email, phone, active FROM users")?;
    let users = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            UserRec {
                hash: r.get(1)?,
                email: r.get(2)?,
                phone: r.get(3)?,
                active: r.get(4)?,
            },
        ))
    })?;
    for user in users {
        let (name, rec) = user?;
        dir.add_user(name, rec);
    }
    let mut stmt = conn.prepare("SELECT name, hash FROM groups")?;
    let groups = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for group in groups {
        let (name, hash) = group?;
        dir.groups.insert(
            name,
            GroupRec {
                hash,
                ..GroupRec::default()
            },
        );
    }
    let pairs = |sql: &str| -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    for (group, user) in pairs("SELECT grp, user FROM members")? {
        dir.join(&group, &user);
    }
    for (owner, contact) in pairs("SELECT owner, contact FROM contacts")? {
        dir.add_contact(&owner, &contact);
    }
    Ok(dir)
}
