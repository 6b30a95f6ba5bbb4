//! Who may follow a private channel (a name starting with the private
//! prefix, `private-` by default). Pure rules over what the handlers found
//! in the request; knows nothing of HTTP.
//!
//! - `PREFIXuser-NAME`: the sessions of the registered user `NAME`.
//! - `PREFIXgroup-GROUP`: the sessions of `GROUP`'s registered members, as
//!   [`Groups`] (the presence server) says.
//! - any private channel: whoever presents a valid subscription token for it
//!   (see `secret`), minted by an application server or by `POST /hub/auth`.
//!
//! Guests (the sessions of `/call/NAME` visitors) match no ownership rule:
//! they need a token, like a stranger.

use super::secret::Claims;

/// Group membership, as the presence server knows it. The hub asks through
/// this, so it never reaches into presence's tables.
pub trait Groups {
    /// True when registered user `user` is a member of group `group`.
    fn is_member(&self, group: &str, user: &str) -> bool;
}

/// No groups at all: a hub running without the presence server.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGroups;

impl Groups for NoGroups {
    fn is_member(&self, _group: &str, _user: &str) -> bool {
        false
    }
}

/// What a request proved about who asks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asker<'a> {
    /// The user of the session the request presents, if any.
    pub user: Option<&'a str>,
    /// True when that session is a guest's.
    pub guest: bool,
    /// The hub client whose mailbox key the request presents, if any.
    pub client: Option<&'a str>,
    /// The valid, unexpired subscription tokens the request presents.
    pub grants: &'a [Claims],
}

/// Whether, and how long, a request may follow a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not at all.
    Denied,
    /// For as long as it stays: a public channel, or one it owns.
    Granted,
    /// Until this Unix time: the latest expiry of the tokens that grant it.
    Until(u64),
}

/// True when `asker` may follow `channel`, a channel of `prefix` or not
/// (an empty prefix: nothing is private).
pub fn may_follow(prefix: &str, channel: &str, asker: &Asker<'_>, groups: &dyn Groups) -> bool {
    access(prefix, channel, asker, groups) != Access::Denied
}

/// Whether, and until when, `asker` may follow `channel`.
pub fn access(prefix: &str, channel: &str, asker: &Asker<'_>, groups: &dyn Groups) -> Access {
    let Some(rest) = channel.strip_prefix(prefix).filter(|_| !prefix.is_empty()) else {
        return Access::Granted;
    };
    if owns(rest, asker, groups) {
        return Access::Granted;
    }
    let granting = asker.grants.iter().filter(|g| grants(g, channel, asker));
    granting
        .map(|g| g.exp)
        .max()
        .map_or(Access::Denied, Access::Until)
}

/// The ownership rules, on the name after the prefix.
fn owns(rest: &str, asker: &Asker<'_>, groups: &dyn Groups) -> bool {
    let Some(user) = asker.user.filter(|_| !asker.guest) else {
        return false;
    };
    if let Some(name) = rest.strip_prefix("user-") {
        return name == user;
    }
    if let Some(group) = rest.strip_prefix("group-") {
        return groups.is_member(group, user);
    }
    false
}

/// True when token `claims` lets `asker` follow `channel`.
fn grants(claims: &Claims, channel: &str, asker: &Asker<'_>) -> bool {
    claims.channel == channel
        && claims
            .sub
            .as_deref()
            .map_or(true, |sub| asker.user == Some(sub))
        && claims
            .client
            .as_deref()
            .map_or(true, |client| asker.client == Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneGroup;

    impl Groups for OneGroup {
        fn is_member(&self, group: &str, user: &str) -> bool {
            group == "team" && user == "ann"
        }
    }

    fn asker<'a>(user: Option<&'a str>, guest: bool, grants: &'a [Claims]) -> Asker<'a> {
        Asker {
            user,
            guest,
            client: None,
            grants,
        }
    }

    #[test]
    fn ownership_rules() {
        let p = "private-";
        let ann = asker(Some("ann"), false, &[]);
        assert!(may_follow(p, "news", &Asker::default(), &NoGroups));
        assert!(may_follow(p, "private-user-ann", &ann, &OneGroup));
        assert!(!may_follow(p, "private-user-bob", &ann, &OneGroup));
        assert!(may_follow(p, "private-group-team", &ann, &OneGroup));
        assert!(!may_follow(p, "private-group-other", &ann, &OneGroup));
        assert!(!may_follow(p, "private-x", &ann, &OneGroup));
        let guest = asker(Some("ann"), true, &[]);
        assert!(!may_follow(p, "private-user-ann", &guest, &OneGroup));
        assert!(may_follow("", "private-x", &Asker::default(), &NoGroups));
    }

    #[test]
    fn tokens_grant_their_channel_to_their_subject() {
        let p = "private-";
        let open = [Claims {
            channel: "private-x".into(),
            exp: 9,
            sub: None,
            client: None,
        }];
        assert!(may_follow(
            p,
            "private-x",
            &asker(None, false, &open),
            &NoGroups
        ));
        assert!(!may_follow(
            p,
            "private-y",
            &asker(None, false, &open),
            &NoGroups
        ));
        let bound = [Claims {
            sub: Some("ann".into()),
            client: Some("c1".into()),
            ..open[0].clone()
        }];
        let mut ann = asker(Some("ann"), true, &bound);
        assert!(!may_follow(p, "private-x", &ann, &NoGroups), "no client");
        ann.client = Some("c1");
        assert!(may_follow(p, "private-x", &ann, &NoGroups));
        assert_eq!(access(p, "private-x", &ann, &NoGroups), Access::Until(9));
        assert_eq!(access(p, "news", &ann, &NoGroups), Access::Granted);
        let bob = Asker {
            user: Some("bob"),
            ..ann
        };
        assert!(!may_follow(p, "private-x", &bob, &NoGroups));
    }
}
