//! One conversation between a user and a wireless device (a [`Link`]): its
//! single-use token until the device opens it, then the device's key; the
//! texts both ways, numbered, with how far the device has seen them; and
//! the device's held connection. Plain data: no sockets, the clock passed in.

use std::collections::VecDeque;
use std::time::Instant;

use crate::ConnId;

/// Texts kept for a device's page beyond those it has not seen.
pub const HISTORY: usize = 50;

/// Who wrote a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// The user who texted the device.
    Requester,
    /// The device, by its page's form or by SMS.
    Device,
}

/// One text of a conversation.
#[derive(Debug, Clone)]
pub struct Text {
    /// Its number in the conversation, from 1.
    pub id: u64,
    /// Who wrote it.
    pub author: Author,
    /// The text itself (plain text, never HTML).
    pub msg: String,
}

/// How the device's connection is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A chunked HTML page that grows by one paragraph per text.
    Stream,
    /// A long-polled page (`/w/KEY/page`): answered whole when a text after
    /// `after` exists, or at `until` with no news.
    Page {
        /// The last text id the device showed.
        after: u64,
        /// When to answer anyway.
        until: Instant,
    },
}

/// Where the SMS carrying the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sms {
    /// With the gateway.
    Sending,
    /// The gateway took it.
    Sent,
}

/// A conversation between a user and one phone number.
#[derive(Debug, Clone)]
pub struct Link {
    /// The user who texted the number.
    pub requester: String,
    /// The device's number (normalized).
    pub phone: String,
    /// The single-use token of the SMS's URL (used once `key` is set).
    pub token: Option<String>,
    /// When an unused token dies.
    pub token_expires: Instant,
    /// The device's key, once it opened the token.
    pub key: Option<String>,
    /// The SMS's state.
    pub sms: Sms,
    /// The texts, oldest first: those the device has not seen, and up to
    /// [`HISTORY`] it has.
    pub texts: VecDeque<Text>,
    /// The last text id given out.
    pub last_id: u64,
    /// The last text id the device was sent.
    pub seen: u64,
    /// The device's held connection.
    pub device: Option<(ConnId, Held)>,
    /// The last time the device connected or wrote.
    pub last_active: Instant,
}

impl Link {
    /// A new link for `requester` to `phone`, with `token` valid until `expires`.
    pub fn new(
        requester: &str,
        phone: &str,
        token: String,
        expires: Instant,
        now: Instant,
    ) -> Link {
        Link {
            requester: requester.to_string(),
            phone: phone.to_string(),
            token: Some(token),
            token_expires: expires,
            key: None,
            sms: Sms::Sending,
            texts: VecDeque::new(),
            last_id: 0,
            seen: 0,
            device: None,
            last_active: now,
        }
    }

    /// The requester's texts the device has not been sent.
    pub fn undelivered(&self) -> usize {
        self.texts
            .iter()
            .filter(|t| t.id > self.seen && t.author == Author::Requester)
            .count()
    }

    /// Adds a text; returns it. Old texts the device has seen are trimmed.
    pub fn add(&mut self, author: Author, msg: String) -> Text {
        self.last_id += 1;
        let text = Text {
            id: self.last_id,
            author,
            msg,
        };
        self.texts.push_back(text.clone());
        self.trim();
        text
    }

    /// Drops seen texts beyond [`HISTORY`].
    pub fn trim(&mut self) {
        while self.texts.len() > HISTORY && self.texts.front().is_some_and(|t| t.id <= self.seen) {
            self.texts.pop_front();
        }
    }

    /// The texts a page shows: the last [`HISTORY`] and any not yet seen.
    pub fn page_texts(&self) -> impl Iterator<Item = &Text> {
        let skip = self.texts.len().saturating_sub(HISTORY);
        let seen = self.seen;
        self.texts
            .iter()
            .enumerate()
            .filter(move |(i, t)| *i >= skip || t.id > seen)
            .map(|(_, t)| t)
    }
}

/// A phone number in E.164 form (`+` and 6 to 15 digits); spaces, dots,
/// dashes and parentheses are dropped, and a leading `00` becomes `+`.
/// `None` for anything else.
pub fn normalize_phone(input: &str) -> Option<String> {
    let kept: String = input
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept
        .strip_prefix('+')
        .or_else(|| kept.strip_prefix("00"))
        .unwrap_or(&kept);
    let ok = (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalize_to_e164() {
        assert_eq!(
            normalize_phone("+1 (555) 010-9999").as_deref(),
            Some("+15550109999")
        );
        assert_eq!(
            normalize_phone("0044 20 7946 0000").as_deref(),
            Some("+442079460000")
        );
        assert_eq!(
            normalize_phone("15550109999").as_deref(),
            Some("+15550109999")
        );
        assert_eq!(normalize_phone("+12345"), None);
        assert_eq!(normalize_phone("+1555abc0000"), None);
        assert_eq!(normalize_phone("+1234567890123456"), None);
    }

    #[test]
    fn seen_texts_are_trimmed_but_unseen_ones_kept() {
        let now = Instant::now();
        let mut link = Link::new("alice", "+15550109999", "t".into(), now, now);
        for i in 0..(HISTORY + 20) {
            link.add(Author::Requester, format!("m{i}"));
        }
        assert_eq!(link.texts.len(), HISTORY + 20, "nothing seen: all kept");
        assert_eq!(link.undelivered(), HISTORY + 20);
        link.seen = link.last_id;
        link.add(Author::Device, "reply".into());
        assert_eq!(link.texts.len(), HISTORY);
        assert_eq!(link.undelivered(), 0);
        assert_eq!(link.page_texts().count(), HISTORY);
    }
}
