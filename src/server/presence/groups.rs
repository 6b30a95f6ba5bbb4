//! Groups and address books: `POST /contacts`, `DELETE /contacts/NAME`,
//! `POST /groups`, `POST /groups/NAME/join|leave`, `POST /active`, `GET
//! /groups`, and `GET /members` (a group's members in pages, online first,
//! with search). Membership persists in SQLite (written on the database
//! thread): a change is made in memory when its write is queued and answered
//! once that write is committed (`503` when the database queue is full,
//! nothing changed). A join or leave sends `refresh` (the one member and the
//! new counts, never the list) to the users whose active group it is.

use serde_json::{json, Value};

use super::accounts::{password_too_long, throttled};
use super::answers::{error, json};
use super::caller::Caller;
use super::db::Busy;
use super::directory::{check_name, GroupRec, CONTACTS};
use super::hashing::Argon;
use super::ids;
use super::params::Params;
use super::table::Target;
use super::throttle::Subject;
use super::{busy, finish, store, Presence};
use crate::server::Job;
use crate::{Cx, Reply, Request, RequestId, Response};
use rusqlite::Connection;

/// Members in one page of a member list.
pub const PAGE_SIZE: usize = 100;
/// Most members in a page a client may ask for.
const MAX_PAGE_SIZE: usize = 1000;

impl Presence {
    /// One member of a list, with their presence and phone.
    pub(super) fn member_json(&self, name: &str) -> Value {
        let phone = self.dir.users.get(name).and_then(|u| u.phone.clone());
        json!({ "name": name, "online": self.table.is_online(name), "phone": phone })
    }

    /// Page `page` (from 1) of `owner`'s group `active` ([`CONTACTS`]: their
    /// address book): online members first, then by name, only names
    /// containing `search` (case-insensitive) when given; with the counts.
    pub(super) fn member_page(
        &self,
        owner: &str,
        active: &str,
        page: usize,
        per: usize,
        search: Option<&str>,
    ) -> Value {
        let all = self.dir.members_of(owner, active);
        let needle = search.map(str::to_lowercase).filter(|s| !s.is_empty());
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        let mut online_total = 0;
        for name in &all {
            let is_online = self.table.is_online(name);
            online_total += usize::from(is_online);
            if needle
                .as_ref()
                .is_some_and(|n| !name.to_lowercase().contains(n))
            {
                continue;
            }
            if is_online {
                online.push(name)
            } else {
                offline.push(name)
            }
        }
        let matched = online.len() + offline.len();
        let per = per.clamp(1, MAX_PAGE_SIZE);
        let pages = matched.div_ceil(per).max(1);
        let page = page.clamp(1, pages);
        let members: Vec<Value> = online
            .into_iter()
            .chain(offline)
            .skip((page - 1) * per)
            .take(per)
            .map(|name| self.member_json(name))
            .collect();
        let mut body = json!({
            "group": active, "total": all.len(), "online": online_total,
            "matched": matched, "page": page, "pages": pages, "per": per,
            "search": needle, "members": members,
        });
        self.add_roster_indices(active, &mut body);
        body
    }

    /// Gives each member of a group's page its roster index (`i`) and the
    /// page the roster's `epoch`, where the group's roster is numbered.
    fn add_roster_indices(&self, group: &str, page: &mut Value) {
        if group == CONTACTS || self.rosters.get(group).is_none() {
            return;
        }
        if let Some(members) = page["members"].as_array_mut() {
            for m in members {
                let index = m["name"].as_str().and_then(|n| self.roster_index(group, n));
                m["i"] = json!(index);
            }
        }
        page["roster"] = json!(self.rosters.epoch());
    }

    /// `GET /members` (`group`, optional `page`, `per`, `q`): a page of the
    /// members of a group the caller may see, or of their address book.
    pub(super) fn list_members(&mut self, me: Caller, p: &Params) -> Reply {
        let group = match p.required("group") {
            Ok(g) => g,
            Err(refusal) => return Reply::Respond(refusal),
        };
        let number = |name: &str, default: usize| -> Result<usize, Reply> {
            match p.nonempty(name) {
                None => Ok(default),
                Some(v) => v.parse::<usize>().map_err(|_| {
                    Reply::Respond(error(400, &format!("{name} must be a whole number")))
                }),
            }
        };
        let (page, per) = match (number("page", 1), number("per", PAGE_SIZE)) {
            (Ok(page), Ok(per)) => (page, per),
            (Err(bad), _) | (_, Err(bad)) => return bad,
        };
        let visible = if group == CONTACTS {
            !me.guest
        } else {
            self.dir.groups.contains_key(&group) && self.may_watch_group(&me, &group)
        };
        if !visible {
            return Reply::Respond(error(404, "no such group of yours"));
        }
        if group != CONTACTS {
            self.roster_of(&group);
        }
        let body = self.member_page(&me.user, &group, page, per, p.get("q"));
        Reply::Respond(json(200, body))
    }

    /// `GET /groups`: my address book and groups; each group with its counts
    /// and the first page of its members (online first; `GET /members` has
    /// the rest).
    pub(super) fn list_groups(&mut self, me: Caller) -> Reply {
        let groups: Vec<Value> = self
            .dir
            .groups_of(&me.user)
            .into_iter()
            .map(|g| {
                let online: Vec<&String> = self
                    .table
                    .online_in(&g)
                    .into_iter()
                    .flatten()
                    .take(PAGE_SIZE)
                    .collect();
                let protected = self.dir.groups.get(&g).is_some_and(|r| r.hash.is_some());
                let page = self.member_page(&me.user, &g, 1, PAGE_SIZE, None);
                json!({
                    "name": g, "protected": protected, "members": page["members"],
                    "online": online, "total": page["total"], "online_count": page["online"],
                    "pages": page["pages"],
                })
            })
            .collect();
        let contacts = self.member_page(&me.user, CONTACTS, 1, MAX_PAGE_SIZE, None);
        let body = json!({
            "user": me.user,
            "active": self.dir.active_of(&me.user),
            "contacts": contacts["members"],
            "groups": groups,
        });
        Reply::Respond(json(200, body))
    }

    /// Sends `refresh` to the users watching `target`: who joined or left,
    /// with their presence and the new member count (never the list).
    fn refresh(
        &mut self,
        cx: &mut Cx<'_, Job>,
        target: &Target,
        group: &str,
        user: &str,
        joined: bool,
    ) {
        let watchers: Vec<String> = self.table.watchers(target).cloned().collect();
        let owner = match target {
            Target::Book(owner) => owner.as_str(),
            _ => "",
        };
        let total = self.dir.members_of(owner, group).len();
        let mut payload = self.member_json(user);
        payload["group"] = json!(group);
        payload["user"] = json!(user);
        payload["joined"] = json!(joined);
        payload["total"] = json!(total);
        payload["count"] = json!(self.online_count(target));
        if let Target::Group(g) = target {
            payload["i"] = json!(self.roster_index(g, user));
        }
        for w in watchers {
            self.emit(cx, &w, "refresh", payload.clone());
        }
    }

    /// `POST /groups` (`name`, optional `password`): creates and joins;
    /// `201` once both are committed.
    pub(super) fn create_group(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let name = match p.required("name") {
            Ok(name) => name,
            Err(refusal) => return Reply::Respond(refusal),
        };
        if let Err(why) = check_name(&name) {
            return Reply::Respond(error(400, why));
        }
        if self.dir.taken(&name) || !self.pending_names.insert(name.clone()) {
            return Reply::Respond(error(409, "name taken"));
        }
        let Ok(password) = p.password() else {
            self.pending_names.remove(&name);
            return Reply::Respond(password_too_long());
        };
        let password = Some(password).filter(|s| !s.is_empty());
        let reserved = name.clone();
        let (handle, db, id) = (cx.handle(), self.db.clone(), req.id());
        let work = Box::new(move |argon: &mut Argon| {
            let hash = password.map(|pw| argon.hash(&pw).unwrap_or_default());
            let (group, row_hash, creator) = (name.clone(), hash.clone(), me.user.clone());
            let (reply, refused) = (handle.clone(), name.clone());
            let queued = db.write(
                move |c| {
                    let now = ids::unix_now();
                    store::insert_group(c, &group, row_hash.as_deref(), &creator, now)?;
                    store::add_member(c, &group, &creator)
                },
                move |stored| {
                    let result = stored.map_err(|e| {
                        log::warn!("presence: create group: {e}");
                        error(500, "could not store the group")
                    });
                    reply.send(Job::new(move |r, cx| {
                        r.presence
                            .group_created(cx, id, name, hash, &me.user, result)
                    }));
                },
            );
            if let Err(Busy) = queued {
                handle.send(Job::new(move |r, cx| {
                    r.presence.pending_names.remove(&refused);
                    finish(cx, id, busy());
                }));
            }
        });
        self.hash_reserving(cx, id.conn, work, vec![reserved])
    }
    /// The end of a group creation: the creator joins.
    fn group_created(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        name: String,
        hash: Option<String>,
        creator: &str,
        stored: Result<(), Response>,
    ) {
        self.pending_names.remove(&name);
        if let Err(refusal) = stored {
            return finish(cx, id, refusal);
        }
        let protected = hash.is_some();
        self.dir.groups.insert(
            name.clone(),
            GroupRec {
                hash,
                ..GroupRec::default()
            },
        );
        self.member_joined(cx, &name, creator);
        self.db.log(creator, "create group", name.clone());
        finish(
            cx,
            id,
            json(201, json!({ "group": name, "protected": protected })),
        );
    }

    /// Adds `user` to `group` in memory and in the GroupTable (stored already
    /// or being stored), and tells those watching the group.
    fn member_joined(&mut self, cx: &mut Cx<'_, Job>, group: &str, user: &str) {
        if !self.dir.join(group, user) {
            return;
        }
        self.table.group_member(group, user, true);
        let online = self.table.is_online(user);
        self.rosters.set_online(group, user, online);
        self.refresh(cx, &Target::Group(group.to_string()), group, user, true);
    }

    /// Joins `user` to `group`: `200` at once for a member already, else
    /// once the membership is committed.
    fn join_group(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        group: &str,
        user: &str,
    ) -> Reply {
        let joined = json(200, json!({ "group": group, "joined": true }));
        let member = self
            .dir
            .groups
            .get(group)
            .is_some_and(|g| g.members.contains(user));
        if member {
            return Reply::Respond(joined);
        }
        let (g, u) = (group.to_string(), user.to_string());
        let apply = move |c: &Connection| store::add_member(c, &g, &u);
        if let Err(refusal) = self.write_then_answer(cx, id, apply, joined) {
            return Reply::Respond(refusal);
        }
        self.member_joined(cx, group, user);
        Reply::DeferPipelined
    }

    /// `POST /groups/NAME/join` (`password` where set) and `.../leave`.
    pub(super) fn group_action(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
        group: &str,
        action: &str,
    ) -> Reply {
        let Some(rec) = self.dir.groups.get(group) else {
            return Reply::Respond(error(404, "no such group"));
        };
        match action {
            "join" => {}
            "leave" => return self.leave_group(cx, req.id(), group, &me.user),
            _ => return Reply::Respond(error(404, "not found")),
        }
        let Some(hash) = rec.hash.clone() else {
            return self.join_group(cx, req.id(), group, &me.user);
        };
        let Ok(password) = p.password() else {
            return Reply::Respond(password_too_long());
        };
        let ip = req.peer.map(|a| a.ip());
        if let Err(wait) = self.throttle.attempt(Subject::Group(group), ip, cx.now()) {
            return Reply::Respond(throttled(wait));
        }
        let (handle, id, group) = (cx.handle(), req.id(), group.to_string());
        let refund = group.clone();
        let work = Box::new(move |argon: &mut Argon| {
            let ok = argon.verify(&password, &hash);
            handle.send(Job::new(move |r, cx| {
                if !ok {
                    return finish(cx, id, error(403, "wrong group password"));
                }
                r.presence.throttle.refund(Subject::Group(&group), ip);
                if let Reply::Respond(now) = r.presence.join_group(cx, id, &group, &me.user) {
                    finish(cx, id, now);
                }
            }));
        });
        self.hash_refunding(cx, id.conn, work, |n| Subject::Group(n), refund, ip)
    }

    /// Leaves a group; an active group left falls back to the address book.
    /// `200` once committed.
    fn leave_group(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        group: &str,
        user: &str,
    ) -> Reply {
        let member = self
            .dir
            .groups
            .get(group)
            .is_some_and(|g| g.members.contains(user));
        if !member {
            return Reply::Respond(error(404, "not a member"));
        }
        let fall_back = self.dir.active_of(user) == group;
        let (g, u) = (group.to_string(), user.to_string());
        let apply = move |c: &Connection| {
            store::remove_member(c, &g, &u)?;
            if fall_back {
                store::set_active(c, &u, CONTACTS)?;
            }
            Ok(())
        };
        let left = json(200, json!({ "group": group, "joined": false }));
        if let Err(refusal) = self.write_then_answer(cx, id, apply, left) {
            return Reply::Respond(refusal);
        }
        self.dir.leave(group, user);
        self.table.group_member(group, user, false);
        self.rosters.set_online(group, user, false);
        if fall_back {
            self.activate(user, CONTACTS);
        }
        self.refresh(cx, &Target::Group(group.to_string()), group, user, false);
        Reply::DeferPipelined
    }

    /// True when `name` is in `owner`'s address book.
    fn is_contact(&self, owner: &str, name: &str) -> bool {
        self.dir
            .contacts
            .get(owner)
            .is_some_and(|set| set.contains(name))
    }

    /// `POST /contacts` (`name`): adds a user to my address book; `201` once
    /// committed.
    pub(super) fn add_contact(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let name = match p.required("name") {
            Ok(name) => name,
            Err(refusal) => return Reply::Respond(refusal),
        };
        if !self.dir.users.contains_key(&name) || name == me.user {
            return Reply::Respond(error(404, "no such user"));
        }
        let online = self.table.is_online(&name);
        let added = json(201, json!({ "contact": name, "online": online }));
        if self.is_contact(&me.user, &name) {
            return Reply::Respond(added);
        }
        let (owner, contact) = (me.user.clone(), name.clone());
        let apply = move |c: &Connection| store::add_contact(c, &owner, &contact);
        if let Err(refusal) = self.write_then_answer(cx, req.id(), apply, added) {
            return Reply::Respond(refusal);
        }
        self.dir.add_contact(&me.user, &name);
        self.refresh(cx, &Target::Book(me.user.clone()), CONTACTS, &name, true);
        Reply::DeferPipelined
    }

    /// `DELETE /contacts/NAME`: removes a user from my address book; `200`
    /// once committed.
    pub(super) fn remove_contact(
        &mut self,
        me: Caller,
        req: &Request,
        cx: &mut Cx<'_, Job>,
        name: &str,
    ) -> Reply {
        if !self.is_contact(&me.user, name) {
            return Reply::Respond(error(404, "not in the address book"));
        }
        let (owner, contact) = (me.user.clone(), name.to_string());
        let apply = move |c: &Connection| store::remove_contact(c, &owner, &contact);
        let removed = json(200, json!({ "contact": name, "removed": true }));
        if let Err(refusal) = self.write_then_answer(cx, req.id(), apply, removed) {
            return Reply::Respond(refusal);
        }
        self.dir.remove_contact(&me.user, name);
        self.refresh(cx, &Target::Book(me.user.clone()), CONTACTS, name, false);
        Reply::DeferPipelined
    }

    /// Makes `group` the active group of `user` in memory and the watch
    /// index (the caller stores it).
    fn activate(&mut self, user: &str, group: &str) {
        if let Some(rec) = self.dir.users.get_mut(user) {
            rec.active = group.to_string();
        }
        self.table.retarget(user, Target::of_active(user, group));
    }

    /// `POST /active` (`group`: a group of mine or `contacts`; optional
    /// `per`): `200` once committed, with the first page of its members,
    /// online first, and the counts. A batched pipe gets a `resync` of its
    /// new view.
    pub(super) fn set_active(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let group = match p.required("group") {
            Ok(g) => g,
            Err(refusal) => return Reply::Respond(refusal),
        };
        let mine = group == CONTACTS
            || self
                .dir
                .groups_of
                .get(&me.user)
                .is_some_and(|g| g.contains(&group));
        if !mine {
            return Reply::Respond(error(404, "not a group of yours"));
        }
        let per = p
            .nonempty("per")
            .and_then(|v| v.parse().ok())
            .unwrap_or(PAGE_SIZE);
        if group != CONTACTS {
            self.roster_of(&group);
        }
        let mut body = self.member_page(&me.user, &group, 1, per, None);
        body["active"] = json!(group);
        let answer = json(200, body);
        let (u, g) = (me.user.clone(), group.clone());
        let apply = move |c: &Connection| store::set_active(c, &u, &g);
        if let Err(refusal) = self.write_then_answer(cx, req.id(), apply, answer) {
            return Reply::Respond(refusal);
        }
        self.activate(&me.user, &group);
        self.resync_pipe(cx, &me.user);
        Reply::DeferPipelined
    }
}
