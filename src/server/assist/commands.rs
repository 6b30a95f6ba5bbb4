//! What happens to visitors, whoever asked: routing's effects turned into
//! console events, visitor events and log rows; chat lines both ways;
//! pushes of URLs, cards and lines to one visitor or many (presenter mode);
//! pulls and invitations; a visitor leaving; the per-site tick.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::input::{fail, origin_of, visitor_text};
use super::routing::Effect;
use super::store::LogRow;
use super::visitors::state_event;
use super::{wall_ms, Assist};
use crate::server::Job;
use crate::{Cx, Response};

/// Who says a chat line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The visitor.
    Visitor,
    /// A representative.
    Rep,
}

/// What a push carries.
#[derive(Debug, Clone)]
pub enum Push {
    /// A URL for the visitor's browser to load.
    Url(String),
    /// The display space's card (`null` clears it).
    Card(Value),
    /// A chat line.
    Text(String),
}

impl Push {
    fn kind(&self) -> &'static str {
        match self {
            Push::Url(_) => "push_url",
            Push::Card(_) => "card",
            Push::Text(_) => "chat",
        }
    }
}

impl Assist {
    /// Announces what routing did.
    pub(super) fn apply(&mut self, site: &str, effects: Vec<Effect<u128>>, cx: &mut Cx<'_, Job>) {
        let mut reps: Vec<String> = Vec::new();
        for effect in effects {
            match effect {
                Effect::Offered {
                    visitor,
                    rep,
                    expires,
                } => {
                    self.log(site, Some(visitor), &rep, "routed", Value::Null);
                    let expires = self.epoch_wall + expires as i64;
                    let ev = json!({"type": "offer", "visitor": visitor_text(visitor), "rep": rep, "expires": expires});
                    self.emit(site, ev, cx);
                    self.visitor_changed(site, visitor, cx);
                }
                Effect::Lapsed { visitor, rep } => {
                    self.log(site, Some(visitor), &rep, "lapsed", Value::Null);
                }
                Effect::Accepted { visitor, rep } => {
                    self.log(site, Some(visitor), &rep, "accepted", Value::Null);
                    self.visitor_changed(site, visitor, cx);
                }
                Effect::Requeued { visitor, rep } => {
                    self.log(site, Some(visitor), &rep, "requeued", Value::Null);
                    self.visitor_changed(site, visitor, cx);
                }
                Effect::Queue(_) => self.queue_moved(site, cx),
                Effect::Rep(rep) => {
                    if !reps.contains(&rep) {
                        reps.push(rep);
                    }
                }
            }
        }
        for rep in reps {
            self.rep_changed(site, &rep, cx);
        }
    }

    /// Sends a console event to the site.
    pub(super) fn emit(&mut self, site: &str, event: Value, cx: &mut Cx<'_, Job>) {
        if let Some(s) = self.sites.get_mut(site) {
            s.emit(event, cx);
        }
    }

    /// Tells the consoles and the visitor where the visitor stands now.
    pub(super) fn visitor_changed(&mut self, site: &str, visitor: u128, cx: &mut Cx<'_, Job>) {
        let (Some(s), Some(v)) = (self.sites.get_mut(site), self.visitors.get(&visitor)) else {
            return;
        };
        let ev = json!({"type": "visitor", "visitor": super::visitors::state_json(visitor, s)});
        s.emit(ev, cx);
        self.outbox
            .push((v.client().into(), state_event(visitor, s)));
    }

    /// Tells the consoles how the visitor looks now. For a page change:
    /// the visitor knows already, and an idle visitor's mailbox stays empty.
    pub(super) fn visitor_listed(&mut self, site: &str, visitor: u128, cx: &mut Cx<'_, Job>) {
        let (Some(s), Some(v)) = (self.sites.get_mut(site), self.visitors.get(&visitor)) else {
            return;
        };
        let ev = json!({"type": "visitor", "visitor": v.json(visitor, s)});
        s.emit(ev, cx);
    }

    fn rep_changed(&mut self, site: &str, rep: &str, cx: &mut Cx<'_, Job>) {
        let wall = self.epoch_wall;
        if let Some(s) = self.sites.get_mut(site) {
            let ev = json!({"type": "rep", "rep": s.rep_json(rep, wall)});
            s.emit(ev, cx);
        }
    }

    /// The queue changed: announced now, or at the end of the site's
    /// quiet window (see [`super::alarm`]).
    fn queue_moved(&mut self, site: &str, cx: &mut Cx<'_, Job>) {
        let now = self.mono(cx.now());
        let Some(s) = self.sites.get_mut(site) else {
            return;
        };
        if now >= s.queue_quiet_until {
            self.announce_queue(site, now, cx);
            return;
        }
        let at = self.epoch + Duration::from_millis(s.queue_quiet_until);
        if !s.queue_dirty {
            s.queue_dirty = true;
            if self.alarm.is_none() {
                match super::alarm::Alarm::start(super::alarm::THREAD_NAME, cx.handle(), queues_due)
                {
                    Ok(alarm) => self.alarm = Some(alarm),
                    Err(e) => log::error!("assist: no alarm thread ({e}): queue sent at once"),
                }
            }
            match &self.alarm {
                Some(alarm) => {
                    alarm.set(at);
                }
                None => self.announce_queue(site, now, cx),
            }
        }
    }

    /// The consoles see the queue, and each waiting visitor whose position
    /// moved is told its new one.
    fn announce_queue(&mut self, site: &str, now: u64, cx: &mut Cx<'_, Job>) {
        let Some(s) = self.sites.get_mut(site) else {
            return;
        };
        s.queue_dirty = false;
        s.queue_quiet_until = now + super::alarm::QUEUE_WINDOW.as_millis() as u64;
        let queue = s.routing.queue();
        let ev = s.queue_event(queue.clone());
        s.emit(ev, cx);
        let waiting: HashSet<u128> = queue.iter().copied().collect();
        s.told.retain(|v, _| waiting.contains(v));
        for (i, v) in queue.iter().enumerate() {
            if s.told.insert(*v, i + 1) != Some(i + 1) {
                if let Some(visitor) = self.visitors.get(v) {
                    let ev = json!({"type": "queue", "position": i + 1});
                    self.outbox.push((visitor.client().into(), ev));
                }
            }
        }
    }

    /// A chat line from either side. The visitor needs to be waiting or
    /// chatting; a representative needs to be chatting with it.
    pub(super) fn chat(
        &mut self,
        site: &str,
        visitor: u128,
        side: Side,
        name: &str,
        text: &str,
        cx: &mut Cx<'_, Job>,
    ) -> Result<Value, Response> {
        if text.len() > self.cfg.max_chat {
            return Err(fail(
                413,
                format!("chat line over {} bytes", self.cfg.max_chat),
            ));
        }
        let s = self
            .sites
            .get(site)
            .ok_or_else(|| fail(404, "no such site"))?;
        let (state, rep, _) = super::visitors::state_of(visitor, s);
        match side {
            Side::Visitor if state != "waiting" && state != "chatting" => {
                return Err(fail(409, "ask to talk first"));
            }
            Side::Rep if state != "chatting" || rep.as_deref() != Some(name) => {
                return Err(fail(409, "not your chat"));
            }
            _ => {}
        }
        self.next_id += 1;
        let from = if side == Side::Rep { "rep" } else { "visitor" };
        let line =
            json!({"id": self.next_id, "from": from, "name": name, "text": text, "at": wall_ms()});
        self.send_line(site, visitor, line.clone(), cx);
        self.log(
            site,
            Some(visitor),
            if side == Side::Rep { name } else { "" },
            "chat",
            json!({"from": from, "text": text}),
        );
        Ok(json!({"id": line["id"], "at": line["at"]}))
    }

    /// Delivers a chat line to the visitor and the consoles, and keeps it.
    fn send_line(&mut self, site: &str, visitor: u128, line: Value, cx: &mut Cx<'_, Job>) {
        let mut to_visitor = line.clone();
        to_visitor["type"] = json!("chat");
        self.tell_visitor(visitor, to_visitor);
        let mut ev = line.clone();
        ev["type"] = json!("chat");
        ev["visitor"] = json!(visitor_text(visitor));
        if let Some(s) = self.sites.get_mut(site) {
            s.remember(visitor, line);
            s.emit(ev, cx);
        }
    }

    /// Pushes to each of `targets` (visitors of `site`); returns the ids
    /// sent to and those refused (a URL foreign to the visitor's page and
    /// not on the site's allowlist). One target gets its own console event;
    /// many get one `present` event and one log write.
    pub(super) fn push(
        &mut self,
        site: &str,
        rep: &str,
        targets: &[u128],
        push: &Push,
        cx: &mut Cx<'_, Job>,
    ) -> (Vec<String>, Vec<String>) {
        let allow = self
            .sites
            .get(site)
            .map(|s| s.allow.clone())
            .unwrap_or_default();
        let (mut sent, mut refused) = (Vec::new(), Vec::new());
        let mut rows = Vec::new();
        let at = wall_ms();
        for &v in targets {
            let Some(visitor) = self.visitors.get(&v) else {
                continue;
            };
            let id = visitor_text(v);
            let (kind, detail, event) = match push {
                Push::Url(url) => {
                    let target = origin_of(url);
                    let page = origin_of(visitor.url());
                    if target.is_none()
                        || (target != page && !allow.iter().any(|a| Some(a) == target.as_ref()))
                    {
                        refused.push(id.clone());
                        rows.push(row(at, site, &id, rep, "push_refused", json!({"url": url})));
                        continue;
                    }
                    self.next_id += 1;
                    (
                        "push_url",
                        json!({"url": url, "push": self.next_id}),
                        json!({"type": "push_url", "id": self.next_id, "url": url}),
                    )
                }
                Push::Card(card) => {
                    if let Some(s) = self.sites.get_mut(site) {
                        if card.is_null() {
                            s.cards.remove(&v);
                        } else {
                            s.cards.insert(v, card.clone());
                        }
                    }
                    (
                        "card",
                        json!({"card": card}),
                        json!({"type": "card", "card": card}),
                    )
                }
                Push::Text(text) => {
                    self.next_id += 1;
                    let line = json!({"id": self.next_id, "from": "rep", "name": rep, "text": text, "at": at});
                    if let Some(s) = self.sites.get_mut(site) {
                        s.remember(v, line.clone());
                    }
                    let mut ev = line;
                    ev["type"] = json!("chat");
                    ("chat", json!({"from": "rep", "text": text}), ev)
                }
            };
            self.outbox.push((visitor.client().into(), event.clone()));
            rows.push(row(at, site, &id, rep, kind, detail));
            sent.push((id, event));
        }
        self.stats
            .push_refused
            .fetch_add(refused.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.announce_push(site, rep, push, &sent, &refused, cx);
        self.log_rows(rows);
        (sent.into_iter().map(|(id, _)| id).collect(), refused)
    }

    fn announce_push(
        &mut self,
        site: &str,
        rep: &str,
        push: &Push,
        sent: &[(String, Value)],
        refused: &[String],
        cx: &mut Cx<'_, Job>,
    ) {
        if sent.len() + refused.len() > 1 {
            let ev = json!({"type": "present", "rep": rep, "kind": push.kind(), "sent": sent.len(), "refused": refused});
            self.emit(site, ev, cx);
            return;
        }
        if let Some((id, event)) = sent.first() {
            let mut ev = event.clone();
            ev["visitor"] = json!(id);
            ev["rep"] = json!(rep);
            if let Push::Text(_) = push {
                ev["name"] = json!(rep);
            }
            self.emit(site, ev, cx);
        }
        if let (Some(id), Push::Url(url)) = (refused.first(), push) {
            let ev = json!({"type": "push_refused", "visitor": id, "url": url, "rep": rep, "reason": "not the page's origin nor on the site's allowlist"});
            self.emit(site, ev, cx);
        }
    }

    /// Lets go of a visitor who left: its wait or chat ends, the consoles
    /// drop it, the visit is recorded.
    pub(super) fn remove_visitor(&mut self, id: u128, cx: &mut Cx<'_, Job>) {
        let Some(v) = self.visitors.remove(&id) else {
            return;
        };
        let site = v.site.clone();
        let now = self.mono(cx.now());
        if let Some(s) = self.sites.get_mut(&*site) {
            s.visitors = s.visitors.saturating_sub(1);
            let effects = s.routing.end(id, now);
            s.transcripts.remove(&id);
            s.cards.remove(&id);
            s.invites.remove(&id);
            s.told.remove(&id);
            s.earlier.remove(&id);
            self.apply(&site, effects, cx);
        }
        self.emit(
            &site,
            json!({"type": "visitor_left", "visitor": visitor_text(id)}),
            cx,
        );
        self.log(&site, Some(id), "", "closed", json!({"pages": v.pages}));
        let (text, visit, pages, last) =
            (visitor_text(id), v.visit as i64, v.pages as i64, wall_ms());
        if visit > 0 {
            let _ = self.db.write(
                move |c| super::store::touch_visit(c, &text, visit, last, pages),
                |_| {},
            );
        }
    }
}

fn row(at: i64, site: &str, visitor: &str, rep: &str, kind: &'static str, detail: Value) -> LogRow {
    LogRow {
        at,
        site: site.to_string(),
        visitor: visitor.to_string(),
        rep: rep.to_string(),
        kind,
        detail: detail.to_string(),
    }
}

/// The alarm rang: announces every queue that changed in its quiet window.
fn queues_due(router: &mut crate::server::ServerRouter, cx: &mut Cx<'_, Job>) {
    let assist = &mut router.assist;
    let now = assist.mono(cx.now());
    let due: Vec<std::sync::Arc<str>> = assist
        .sites
        .iter()
        .filter(|(_, s)| s.queue_dirty)
        .map(|(name, _)| name.clone())
        .collect();
    for site in due {
        assist.announce_queue(&site, now, cx);
    }
    super::flush(router, cx);
}

/// One site's turn of the tick: lapsed offers pass on; representatives
/// whose grace ran out leave.
pub fn site_tick(assist: &mut Assist, name: &str, now: u64, cx: &mut Cx<'_, Job>) {
    let Some(site) = assist.sites.get_mut(name) else {
        return;
    };
    site.catch_up(cx);
    let mut effects = Vec::new();
    for rep in site.gone_by(now) {
        effects.extend(site.routing.rep_left(&rep, now));
    }
    if site.routing.next_deadline().is_some_and(|d| d <= now) {
        effects.extend(site.routing.tick(now));
    }
    if !effects.is_empty() {
        assist.apply(name, effects, cx);
    }
    // A backstop for the alarm.
    let s = &assist.sites[name];
    if s.queue_dirty && now >= s.queue_quiet_until {
        assist.announce_queue(name, now, cx);
    }
}
