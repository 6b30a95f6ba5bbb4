//! The presence server's SQLite database: the schema and its migrations, the
//! load of the persistent directory at start, and the one worker thread that
//! owns the connection afterwards. Every write (and every read after start)
//! runs on that thread; the engine thread only sends it closures.

use std::path::Path;
use std::sync::mpsc::{channel, Sender};

use rusqlite::{params, Connection};

use super::directory::{Directory, GroupRec, UserRec};

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

/// Work for the database thread.
pub type DbOp = Box<dyn FnOnce(&mut Connection) + Send>;

/// The sender side of the database thread.
#[derive(Clone)]
pub struct Db {
    tx: Sender<DbOp>,
}

impl Db {
    /// Runs `op` on the database thread.
    pub fn run(&self, op: impl FnOnce(&mut Connection) + Send + 'static) {
        if self.tx.send(Box::new(op)).is_err() {
            log::error!("presence: database thread is gone");
        }
    }

    /// Appends one line to the activity log.
    pub fn log(&self, user: &str, kind: &'static str, detail: String) {
        let user = user.to_string();
        self.run(move |c| {
            let r = c.execute(
                "INSERT INTO activity (ts, user, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![super::ids::unix_now(), user, kind, detail],
            );
            if let Err(e) = r {
                log::warn!("presence: activity log: {e}");
            }
        });
    }

    /// Runs one statement, logging a failure.
    pub fn exec(&self, sql: &'static str, args: Vec<rusqlite::types::Value>) {
        self.run(move |c| {
            if let Err(e) = c.execute(sql, rusqlite::params_from_iter(args)) {
                log::warn!("presence: {sql}: {e}");
            }
        });
    }
}

/// Opens (creating and migrating) the database, loads the directory and
/// starts the database thread. Blocking: call before the engine loop runs.
pub fn open(path: &Path) -> std::io::Result<(Db, Directory, i64)> {
    let err = |e: rusqlite::Error| std::io::Error::other(format!("{}: {e}", path.display()));
    let mut conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    migrate(&mut conn).map_err(err)?;
    let directory = load(&conn).map_err(err)?;
    let last_message: i64 = conn
        .query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
            r.get(0)
        })
        .map_err(err)?;
    let (tx, rx) = channel::<DbOp>();
    std::thread::Builder::new()
        .name("altsock-db".into())
        .spawn(move || {
            for op in rx {
                op(&mut conn);
            }
        })?;
    Ok((Db { tx }, directory, last_message))
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
