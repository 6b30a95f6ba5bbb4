//! The live-assist tables and their SQL, run on the presence server's
//! database thread: the activity log, visits (for "earlier visits"),
//! canned texts, representatives' skills and each site's push allowlist.
//! The tables are made on first start (`CREATE TABLE IF NOT EXISTS`);
//! the settings are loaded once before the engine runs.

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

/// The schema, idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assist_log (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, site TEXT NOT NULL,
    visitor TEXT NOT NULL DEFAULT '', rep TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS assist_log_visitor ON assist_log(visitor, at);
CREATE INDEX IF NOT EXISTS assist_log_site ON assist_log(site, at);
CREATE TABLE IF NOT EXISTS assist_visits (
    visitor TEXT NOT NULL, number INTEGER NOT NULL, site TEXT NOT NULL,
    started INTEGER NOT NULL, last INTEGER NOT NULL, pages INTEGER NOT NULL,
    PRIMARY KEY (visitor, number));
CREATE TABLE IF NOT EXISTS assist_canned (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assist_skills (
    site TEXT NOT NULL, rep TEXT NOT NULL, skills TEXT NOT NULL, PRIMARY KEY (site, rep));
CREATE TABLE IF NOT EXISTS assist_allow (site TEXT PRIMARY KEY, origins TEXT NOT NULL);
";

/// A visit gap: a visitor seen again within this many ms continues its visit.
pub const VISIT_GAP_MS: i64 = 30 * 60 * 1000;

/// One canned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canned {
    /// Its row id.
    pub id: i64,
    /// A short title.
    pub title: String,
    /// The text.
    pub text: String,
}

impl Canned {
    /// As the console sees it.
    pub fn json(&self) -> Value {
        json!({ "id": self.id, "title": self.title, "text": self.text })
    }
}

/// Every site's settings, loaded at start.
#[derive(Debug, Default)]
pub struct Settings {
    /// Canned texts by site, in id order.
    pub canned: HashMap<String, Vec<Canned>>,
    /// Skills by site, then representative.
    pub skills: HashMap<String, HashMap<String, Vec<String>>>,
    /// The push allowlist by site.
    pub allow: HashMap<String, Vec<String>>,
}

/// Makes the tables and reads the settings.
pub fn load(c: &Connection) -> rusqlite::Result<Settings> {
    c.execute_batch(SCHEMA)?;
    let mut s = Settings::default();
    let mut q = c.prepare("SELECT id, site, title, text FROM assist_canned ORDER BY id")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            Canned {
                id: r.get(0)?,
                title: r.get(2)?,
                text: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (site, canned) = row?;
        s.canned.entry(site).or_default().push(canned);
    }
    let mut q = c.prepare("SELECT site, rep, skills FROM assist_skills")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (site, rep, skills) = row?;
        let list = skills
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        s.skills.entry(site).or_default().insert(rep, list);
    }
    let mut q = c.prepare("SELECT site, origins FROM assist_allow")?;
    let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (site, origins) = row?;
        let list = origins
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        s.allow.insert(site, list);
    }
    Ok(s)
}

/// One activity-log row.
#[derive(Debug, Clone)]
pub struct LogRow {
    /// Unix ms.
    pub at: i64,
    /// The site.
    pub site: String,
    /// The visitor id, or empty.
    pub visitor: String,
    /// The representative, or empty.
    pub rep: String,
    /// What happened.
    pub kind: &'static str,
    /// The details (JSON text).
    pub detail: String,
}

/// Appends one log row.
pub fn append(c: &Connection, row: &LogRow) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO assist_log (at, site, visitor, rep, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![row.at, row.site, row.visitor, row.rep, row.kind, row.detail])?;
    Ok(())
}

/// Most rows one log query returns.
pub const MAX_LOG_ROWS: i64 = 10_000;

/// Which log rows to read.
#[derive(Debug, Clone)]
pub enum LogQuery {
    /// One visitor's rows.
    Visitor(String),
    /// A site's rows in `[from, to)`, Unix ms.
    Site {
        /// The site.
        site: String,
        /// From (inclusive).
        from: i64,
        /// To (exclusive).
        to: i64,
    },
}

/// Reads log rows, oldest first, as JSON objects.
pub fn read_log(c: &Connection, query: &LogQuery) -> rusqlite::Result<Vec<Value>> {
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Value> {
        Ok(json!({
            "at": r.get::<_, i64>(0)?, "site": r.get::<_, String>(1)?,
            "visitor": r.get::<_, String>(2)?, "rep": r.get::<_, String>(3)?,
            "kind": r.get::<_, String>(4)?, "detail": r.get::<_, String>(5)?,
        }))
    };
    let cols = "SELECT at, site, visitor, rep, kind, detail FROM assist_log";
    match query {
        LogQuery::Visitor(v) => {
            let mut q = c.prepare(&format!(
                "{cols} WHERE visitor = ?1 ORDER BY at, id LIMIT ?2"
            ))?;
            let rows = q.query_map(params![v, MAX_LOG_ROWS], map)?;
            rows.collect()
        }
        LogQuery::Site { site, from, to } => {
            let mut q = c.prepare(&format!(
                "{cols} WHERE site = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, id LIMIT ?4"
            ))?;
            let rows = q.query_map(params![site, from, to, MAX_LOG_ROWS], map)?;
            rows.collect()
        }
    }
}

/// What a visitor's arrival learns of its visits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitInfo {
    /// This visit's number (1 = first).
    pub number: i64,
    /// When it started (Unix ms).
    pub started: i64,
    /// Pages seen in it before now.
    pub pages: i64,
    /// Earlier visits, latest first: (started, pages), at most 10.
    pub earlier: Vec<(i64, i64)>,
}

/// Continues the visitor's latest visit when it was seen within
/// [`VISIT_GAP_MS`], else starts the next one; records it.
pub fn begin_visit(
    c: &Connection,
    visitor: &str,
    site: &str,
    now: i64,
) -> rusqlite::Result<VisitInfo> {
    let mut q = c.prepare_cached(
        "SELECT number, started, last, pages FROM assist_visits WHERE visitor = ?1 ORDER BY number DESC LIMIT 11",
    )?;
    let rows: Vec<(i64, i64, i64, i64)> = q
        .query_map(params![visitor], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut info = match rows.first() {
        Some(&(number, started, last, pages)) if now - last < VISIT_GAP_MS => VisitInfo {
            number,
            started,
            pages,
            earlier: Vec::new(),
        },
        latest => VisitInfo {
            number: latest.map_or(1, |r| r.0 + 1),
            started: now,
            pages: 0,
            earlier: Vec::new(),
        },
    };
    info.earlier = rows
        .iter()
        .filter(|r| r.0 != info.number)
        .take(10)
        .map(|r| (r.1, r.3))
        .collect();
    c.prepare_cached(
        "INSERT INTO assist_visits (visitor, number, site, started, last, pages) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (visitor, number) DO UPDATE SET last = excluded.last",
    )?
    .execute(params![visitor, info.number, site, info.started, now, info.pages])?;
    Ok(info)
}

/// Records where a visit stands: last seen and pages.
pub fn touch_visit(
    c: &Connection,
    visitor: &str,
    number: i64,
    last: i64,
    pages: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE assist_visits SET last = ?3, pages = ?4 WHERE visitor = ?1 AND number = ?2",
    )?
    .execute(params![visitor, number, last, pages])?;
    Ok(())
}

/// Adds a canned text; its id.
pub fn insert_canned(c: &Connection, site: &str, title: &str, text: &str) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO assist_canned (site, title, text) VALUES (?1, ?2, ?3)",
        params![site, title, text],
    )?;
    Ok(c.last_insert_rowid())
}

/// Changes a canned text.
pub fn update_canned(
    c: &Connection,
    site: &str,
    id: i64,
    title: &str,
    text: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE assist_canned SET title = ?3, text = ?4 WHERE site = ?1 AND id = ?2",
        params![site, id, title, text],
    )?;
    Ok(())
}

/// Removes a canned text.
pub fn delete_canned(c: &Connection, site: &str, id: i64) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM assist_canned WHERE site = ?1 AND id = ?2",
        params![site, id],
    )?;
    Ok(())
}

/// Sets a representative's skills on a site.
pub fn set_skills(
    c: &Connection,
    site: &str,
    rep: &str,
    skills: &[String],
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO assist_skills (site, rep, skills) VALUES (?1, ?2, ?3)
         ON CONFLICT (site, rep) DO UPDATE SET skills = excluded.skills",
        params![site, rep, skills.join(",")],
    )?;
    Ok(())
}

/// Sets a site's push allowlist.
pub fn set_allow(c: &Connection, site: &str, origins: &[String]) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO assist_allow (site, origins) VALUES (?1, ?2)
         ON CONFLICT (site) DO UPDATE SET origins = excluded.origins",
        params![site, origins.join(" ")],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_continue_within_the_gap_and_count_up_after() {
        let c = Connection::open_in_memory().unwrap();
        load(&c).unwrap();
        let first = begin_visit(&c, "v", "s", 1_000).unwrap();
        assert_eq!((first.number, first.earlier.len()), (1, 0));
        touch_visit(&c, "v", 1, 2_000, 3).unwrap();
        let again = begin_visit(&c, "v", "s", 3_000).unwrap();
        assert_eq!((again.number, again.pages), (1, 3), "same visit");
        let later = begin_visit(&c, "v", "s", 3_000 + VISIT_GAP_MS).unwrap();
        assert_eq!(later.number, 2);
        assert_eq!(later.earlier, vec![(1_000, 3)]);
    }

    #[test]
    fn settings_load_back() {
        let c = Connection::open_in_memory().unwrap();
        load(&c).unwrap();
        let id = insert_canned(&c, "s", "Hi", "Hello!").unwrap();
        update_canned(&c, "s", id, "Hi", "Hello there").unwrap();
        insert_canned(&c, "s", "Bye", "Bye").unwrap();
        delete_canned(&c, "s", id + 1).unwrap();
        set_skills(&c, "s", "ann", &["fr".into(), "billing".into()]).unwrap();
        set_allow(&c, "s", &["https://a.example".into()]).unwrap();
        let s = load(&c).unwrap();
        assert_eq!(s.canned["s"].len(), 1);
        assert_eq!(s.canned["s"][0].text, "Hello there");
        assert_eq!(s.skills["s"]["ann"], vec!["fr", "billing"]);
        assert_eq!(s.allow["s"], vec!["https://a.example"]);
    }
}
