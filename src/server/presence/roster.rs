//! Rosters: compact identity for the batched pipe (`/jchat?v=2`). Each group
//! numbers its members once (a stable roster index: the members sorted by
//! name when the roster is first needed, then newcomers appended; a member
//! who leaves keeps their number, so a rejoin reuses it) and keeps one online
//! bit per number, updated as presence changes. A group's `updates` carry
//! roster indices, a `resync` the online bits (base64), and `GET /members`
//! gives each member's index, so a page learns names only for the rows it
//! shows. Numbers hold for one server process: every roster is tagged with
//! the process's `epoch`, and a client that sees another epoch fetches its
//! rows again. Knows nothing of sockets or the wire format around it.

use std::collections::HashMap;

use base64::Engine as _;

/// Most online bits in one `resync` page (8 KiB before base64).
pub const BITS_PAGE: usize = 65_536;

/// One group's numbered members and who of them is online.
#[derive(Debug, Default)]
pub struct Roster {
    names: Vec<String>,
    index: HashMap<String, u32>,
    online: Vec<u64>,
    online_count: usize,
}

impl Roster {
    /// A roster numbering `members` in the order given, with the online ones
    /// marked.
    pub fn new<'a>(
        members: impl IntoIterator<Item = &'a String>,
        is_online: impl Fn(&str) -> bool,
    ) -> Roster {
        let mut roster = Roster::default();
        for name in members {
            let on = is_online(name);
            roster.set_online(name, on);
        }
        roster
    }

    /// The index of `name`, numbering them now if new.
    pub fn index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        if self.online.len() * 64 < self.names.len() {
            self.online.push(0);
        }
        i
    }

    /// The index of `name`, if numbered.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The name numbered `i`.
    pub fn name(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(String::as_str)
    }

    /// How many names are numbered (members now and those who left).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nobody is numbered.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// How many numbered names are online.
    pub fn online_count(&self) -> usize {
        self.online_count
    }

    /// True when the name numbered `i` is online.
    pub fn is_online(&self, i: u32) -> bool {
        let i = i as usize;
        self.online
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Marks `name` online or offline (numbering them if new).
    pub fn set_online(&mut self, name: &str, online: bool) {
        let i = self.index(name) as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let was = self.online[word] & bit != 0;
        if online && !was {
            self.online[word] |= bit;
            self.online_count += 1;
        } else if !online && was {
            self.online[word] &= !bit;
            self.online_count -= 1;
        }
    }

    /// The online bits in pages of [`BITS_PAGE`]: `(first index, base64)`,
    /// bit `k` of a page (index `first + k`) being `byte[k / 8] >> (k % 8)
    /// & 1`, trailing zero bytes left out. At least one page.
    pub fn bit_pages(&self) -> Vec<(usize, String)> {
        let bytes: Vec<u8> = self.online.iter().flat_map(|w| w.to_le_bytes()).collect();
        let per = BITS_PAGE / 8;
        let pages = self.names.len().div_ceil(BITS_PAGE).max(1);
        (0..pages)
            .map(|p| {
                let page = &bytes[(p * per).min(bytes.len())..((p + 1) * per).min(bytes.len())];
                let used = page.iter().rposition(|&b| b != 0).map_or(0, |k| k + 1);
                let text = base64::engine::general_purpose::STANDARD.encode(&page[..used]);
                (p * BITS_PAGE, text)
            })
            .collect()
    }
}

/// Every group's roster, built when first needed.
#[derive(Debug)]
pub struct Rosters {
    epoch: String,
    groups: HashMap<String, Roster>,
}

impl Rosters {
    /// No rosters yet; `epoch` names this process's numbering.
    pub fn new(epoch: String) -> Rosters {
        Rosters {
            epoch,
            groups: HashMap::new(),
        }
    }

    /// This process's numbering.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// `group`'s roster, if built.
    pub fn get(&self, group: &str) -> Option<&Roster> {
        self.groups.get(group)
    }

    /// `group`'s roster, built now from `members` (sorted) and `is_online`
    /// if it does not exist yet.
    pub fn get_or_build<'a>(
        &mut self,
        group: &str,
        members: impl IntoIterator<Item = &'a String>,
        is_online: impl Fn(&str) -> bool,
    ) -> &mut Roster {
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| Roster::new(members, is_online))
    }

    /// Marks `user` online or offline in `group`'s roster, if built.
    pub fn set_online(&mut self, group: &str, user: &str, online: bool) {
        if let Some(roster) = self.groups.get_mut(group) {
            roster.set_online(user, online);
        }
    }
}

/// Ascending indices as gaps: the first as is, each next one as its
/// distance from the one before (a run of neighbours costs a digit each).
pub fn gaps(sorted: &[u32]) -> Vec<u32> {
    let mut prev = 0;
    sorted
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let gap = if k == 0 { i } else { i - prev };
            prev = i;
            gap
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pages: &[(usize, String)]) -> Vec<usize> {
        let mut on = Vec::new();
        for (first, text) in pages {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap();
            for k in 0..bytes.len() * 8 {
                if bytes[k / 8] >> (k % 8) & 1 == 1 {
                    on.push(first + k);
                }
            }
        }
        on
    }

    #[test]
    fn members_are_numbered_once_in_order_and_newcomers_appended() {
        let members: Vec<String> = ["ann", "bob", "cy"].iter().map(|s| s.to_string()).collect();
        let mut r = Roster::new(&members, |u| u == "bob");
        assert_eq!(
            (r.find("ann"), r.find("bob"), r.find("cy")),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(r.online_count(), 1);
        assert_eq!(r.index("dee"), 3);
        assert_eq!(r.index("bob"), 1, "the same number again");
        // Leaving and coming back keeps the number.
        r.set_online("bob", false);
        r.set_online("bob", true);
        r.set_online("bob", true);
        assert_eq!((r.find("bob"), r.online_count(), r.len()), (Some(1), 1, 4));
        assert_eq!(r.name(3), Some("dee"));
        assert!(r.is_online(1) && !r.is_online(0) && !r.is_online(99));
    }

    #[test]
    fn online_bits_decode_to_the_online_set_in_pages() {
        let members: Vec<String> = (0..BITS_PAGE + 100).map(|i| format!("u{i:06}")).collect();
        let mut r = Roster::new(&members, |_| false);
        for i in [0, 7, 8, 63, 64, 1000, BITS_PAGE - 1, BITS_PAGE + 3] {
            r.set_online(&members[i], true);
        }
        let pages = r.bit_pages();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1].0, BITS_PAGE);
        assert_eq!(
            decode(&pages),
            [0, 7, 8, 63, 64, 1000, BITS_PAGE - 1, BITS_PAGE + 3]
        );
        // Trailing zero bytes are left out; nobody online is one empty page.
        let small = Roster::new(&members[..10], |u| u == members[1]);
        assert_eq!(small.bit_pages(), [(0, "Ag==".to_string())]);
        assert_eq!(Roster::default().bit_pages(), [(0, String::new())]);
    }

    #[test]
    fn indices_go_as_gaps() {
        assert_eq!(gaps(&[5, 6, 7, 20]), [5, 1, 1, 13]);
        assert!(gaps(&[]).is_empty());
    }
}
