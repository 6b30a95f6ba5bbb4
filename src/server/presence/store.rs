//! The SQL of the presence server, owned by the database side: accounts,
//! groups and memberships, address books, stored messages and the activity
//! log. These functions run only on the database thread, inside the group
//! transaction [`super::db`] opens around each batch (submit them with
//! [`super::db::Db::write`]); the engine thread never touches SQLite.

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::directory::UserRec;

/// What the start-up load knows about stored messages.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The highest message id used.
    pub last_message: i64,
    /// Undelivered messages by recipient.
    pub for_recipient: HashMap<String, usize>,
    /// Undelivered messages by sender.
    pub by_sender: HashMap<String, usize>,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its id (the chat id it was answered with).
    pub id: i64,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The text.
    pub msg: String,
    /// Unix seconds when it was sent.
    pub ts: i64,
}

impl Stored {
    /// The payload of its `message` event.
    pub fn event(&self) -> Value {
        json!({ "id": self.id, "from": self.from, "msg": self.msg, "ts": self.ts })
    }
}

/// Reads the highest message id and the undelivered counts.
pub fn load_messages(c: &Connection) -> rusqlite::Result<Loaded> {
    let last_message = c.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    let counts = |column: &str| -> rusqlite::Result<HashMap<String, usize>> {
        let sql = format!(
            "SELECT {column}, COUNT(*) FROM messages WHERE delivered = 0 GROUP BY {column}"
        );
        let mut stmt = c.prepare(&sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        rows.collect()
    };
    Ok(Loaded {
        last_message,
        for_recipient: counts("recipient")?,
        by_sender: counts("sender")?,
    })
}

/// Inserts an account.
pub fn insert_user(c: &Connection, name: &str, rec: &UserRec, now: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO users (name, hash, email, phone, created) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![name, rec.hash, rec.email, rec.phone, now])?;
    Ok(())
}

/// Inserts a group.
pub fn insert_group(
    c: &Connection,
    name: &str,
    hash: Option<&str>,
    creator: &str,
    now: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO groups (name, hash, creator, created) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![name, hash, creator, now])?;
    Ok(())
}

/// Adds `user` to `group` (a no-op when a member already).
pub fn add_member(c: &Connection, group: &str, user: &str) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT OR IGNORE INTO members (grp, user) VALUES (?1, ?2)")?
        .execute(params![group, user])?;
    Ok(())
}

/// Removes `user` from `group`.
pub fn remove_member(c: &Connection, group: &str, user: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM members WHERE grp = ?1 AND user = ?2")?
        .execute(params![group, user])?;
    Ok(())
}

/// Adds `contact` to `owner`'s address book.
pub fn add_contact(c: &Connection, owner: &str, contact: &str) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT OR IGNORE INTO contacts (owner, contact) VALUES (?1, ?2)")?
        .execute(params![owner, contact])?;
    Ok(())
}

/// Removes `contact` from `owner`'s address book.
pub fn remove_contact(c: &Connection, owner: &str, contact: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM contacts WHERE owner = ?1 AND contact = ?2")?
        .execute(params![owner, contact])?;
    Ok(())
}

/// Makes `group` the active group of `user`.
pub fn set_active(c: &Connection, user: &str, group: &str) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE users SET active = ?1 WHERE name = ?2")?
        .execute(params![group, user])?;
    Ok(())
}

/// Stores a message, delivered already or not.
pub fn insert_message(c: &Connection, m: &Stored, delivered: bool) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO messages (id, sender, recipient, body, ts, delivered) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![m.id, m.from, m.to, m.msg, m.ts, i64::from(delivered)])?;
    Ok(())
}

/// Up to `limit` undelivered messages of `user` after id `after`, oldest first.
pub fn undelivered_page(
    c: &Connection,
    user: &str,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Stored>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, sender, body, ts FROM messages
         WHERE recipient = ?1 AND delivered = 0 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![user, after, limit as i64], |r| {
        Ok(Stored {
            id: r.get(0)?,
            from: r.get(1)?,
            to: user.to_string(),
            msg: r.get(2)?,
            ts: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Marks the messages `ids` of `user` delivered.
pub fn mark_delivered(c: &Connection, user: &str, ids: &[i64]) -> rusqlite::Result<()> {
    let mut stmt =
        c.prepare_cached("UPDATE messages SET delivered = 1 WHERE recipient = ?1 AND id = ?2")?;
    for id in ids {
        stmt.execute(params![user, id])?;
    }
    Ok(())
}

/// The last `limit` messages stored for `user`, newest first.
pub fn list_recent(c: &Connection, user: &str, limit: usize) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, sender, body, ts, delivered FROM messages
         WHERE recipient = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![user, limit as i64], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "from": r.get::<_, String>(1)?,
            "msg": r.get::<_, String>(2)?,
            "ts": r.get::<_, i64>(3)?,
            "delivered": r.get::<_, i64>(4)? != 0,
        }))
    })?;
    rows.collect()
}

/// Appends one line to the activity log.
pub fn append_activity(
    c: &Connection,
    ts: i64,
    user: &str,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO activity (ts, user, kind, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![ts, user, kind, detail])?;
    Ok(())
}
