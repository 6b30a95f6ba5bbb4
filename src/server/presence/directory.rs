//! The persistent directory held in memory: accounts (with their email and
//! phone aliases), groups with their members and optional password, and each
//! user's address book, indexed both ways. Loaded from SQLite at start and
//! kept in step with it (the writes themselves go through the database
//! thread). Nothing here knows who is online.

use std::collections::{BTreeSet, HashMap, HashSet};

/// The active group name that stands for the address book.
pub const CONTACTS: &str = "contacts";

/// Names no user or group may take: the server's own paths.
const RESERVED: &[&str] = &[
    "active",
    "admin",
    "api",
    "assist",
    "call",
    "chat",
    "contacts",
    "events",
    "favicon.ico",
    "groups",
    "home",
    "hub",
    "initchat",
    "invite",
    "jchat",
    "login",
    "logout",
    "members",
    "messages",
    "metrics",
    "notify",
    "poll",
    "pub",
    "register",
    "robots.txt",
    "static",
    "sub",
    "widget",
];

/// One account.
#[derive(Debug, Clone, Default)]
pub struct UserRec {
    /// The argon2id PHC string.
    pub hash: String,
    /// Email, an alias of the static URL.
    pub email: Option<String>,
    /// Phone number, an alias of the static URL and the call link.
    pub phone: Option<String>,
    /// The active group: a group name or [`CONTACTS`].
    pub active: String,
}

/// One named group.
#[derive(Debug, Clone, Default)]
pub struct GroupRec {
    /// The argon2id PHC string of the group password, if any.
    pub hash: Option<String>,
    /// Every member, online or not.
    pub members: BTreeSet<String>,
}

/// What a static URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// A user, by canonical name.
    User(String),
    /// A group, by name.
    Group(String),
}

/// Accounts, groups and address books.
#[derive(Debug, Default)]
pub struct Directory {
    /// Accounts by name.
    pub users: HashMap<String, UserRec>,
    /// Email and phone aliases to user names.
    pub aliases: HashMap<String, String>,
    /// Groups by name.
    pub groups: HashMap<String, GroupRec>,
    /// The groups of each user.
    pub groups_of: HashMap<String, BTreeSet<String>>,
    /// Each user's address book.
    pub contacts: HashMap<String, BTreeSet<String>>,
    /// Who has each user in their address book.
    pub contact_of: HashMap<String, HashSet<String>>,
}

impl Directory {
    /// Adds an account and its aliases.
    pub fn add_user(&mut self, name: String, rec: UserRec) {
        for alias in [&rec.email, &rec.phone].into_iter().flatten() {
            self.aliases.insert(alias.clone(), name.clone());
        }
        self.users.insert(name, rec);
    }

    /// True when `name` may not be taken by a new user or group (guest names
    /// start with `guest-`, so that prefix is reserved too).
    pub fn taken(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        RESERVED.contains(&lower.as_str())
            || lower.starts_with("guest-")
            || self.users.contains_key(name)
            || self.groups.contains_key(name)
            || self.aliases.contains_key(name)
    }

    /// Resolves a static URL name (user, group, email or phone).
    pub fn resolve(&self, name: &str) -> Option<Named> {
        if self.users.contains_key(name) {
            return Some(Named::User(name.to_string()));
        }
        if self.groups.contains_key(name) {
            return Some(Named::Group(name.to_string()));
        }
        self.aliases.get(name).map(|u| Named::User(u.clone()))
    }

    /// Adds `user` to `group` (the group must exist).
    pub fn join(&mut self, group: &str, user: &str) -> bool {
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        let added = g.members.insert(user.to_string());
        self.groups_of
            .entry(user.to_string())
            .or_default()
            .insert(group.to_string());
        added
    }

    /// Removes `user` from `group`.
    pub fn leave(&mut self, group: &str, user: &str) -> bool {
        let removed = self
            .groups
            .get_mut(group)
            .is_some_and(|g| g.members.remove(user));
        if let Some(set) = self.groups_of.get_mut(user) {
            set.remove(group);
        }
        removed
    }

    /// Adds `contact` to `owner`'s address book.
    pub fn add_contact(&mut self, owner: &str, contact: &str) -> bool {
        self.contact_of
            .entry(contact.to_string())
            .or_default()
            .insert(owner.to_string());
        self.contacts
            .entry(owner.to_string())
            .or_default()
            .insert(contact.to_string())
    }

    /// Removes `contact` from `owner`'s address book.
    pub fn remove_contact(&mut self, owner: &str, contact: &str) -> bool {
        if let Some(set) = self.contact_of.get_mut(contact) {
            set.remove(owner);
        }
        self.contacts
            .get_mut(owner)
            .is_some_and(|set| set.remove(contact))
    }

    /// The members of `owner`'s group `active` ([`CONTACTS`] or a group name).
    pub fn members_of(&self, owner: &str, active: &str) -> Vec<String> {
        let set = if active == CONTACTS {
            self.contacts.get(owner)
        } else {
            self.groups.get(active).map(|g| &g.members)
        };
        set.map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// The groups of `user`, sorted.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups_of
            .get(user)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The active group of `user` ([`CONTACTS`] for guests and unknowns).
    pub fn active_of(&self, user: &str) -> String {
        self.users
            .get(user)
            .map(|u| u.active.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| CONTACTS.into())
    }
}

/// Checks a new user or group name: 2 to 32 characters of letters, digits,
/// `_`, `-` and `.`, starting with a letter or digit, with at least one
/// letter (so names never look like phone numbers).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !(2..=32).contains(&name.len()) {
        return Err("name must be 2 to 32 characters");
    }
    if !ok_chars || !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("name may hold only letters, digits, '_', '-' and '.', and must start with a letter or digit");
    }
    if !name.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err("name must contain a letter");
    }
    Ok(())
}
