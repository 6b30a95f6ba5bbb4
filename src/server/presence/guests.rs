//! The guest sessions in the order they began, so that past the guest limit
//! the oldest is ended first; adding, removing and finding the oldest are
//! all cheap, whichever way a guest's session ends.

use std::collections::{BTreeMap, HashMap};

/// Guest session ids, oldest first.
#[derive(Debug, Default)]
pub struct Guests {
    by_age: BTreeMap<u64, String>,
    age_of: HashMap<String, u64>,
    next: u64,
}

impl Guests {
    /// Adds a guest session that began now.
    pub fn push(&mut self, sid: String) {
        self.next += 1;
        self.by_age.insert(self.next, sid.clone());
        self.age_of.insert(sid, self.next);
    }

    /// Forgets a guest session (no-op for others).
    pub fn remove(&mut self, sid: &str) {
        if let Some(age) = self.age_of.remove(sid) {
            self.by_age.remove(&age);
        }
    }

    /// The oldest guest session for which `pick` holds, else the oldest.
    pub fn oldest_preferring(&self, pick: impl Fn(&str) -> bool) -> Option<&String> {
        self.by_age
            .values()
            .find(|sid| pick(sid))
            .or_else(|| self.by_age.values().next())
    }

    /// How many guest sessions there are.
    pub fn len(&self) -> usize {
        self.age_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_comes_first_whatever_left_in_between() {
        let mut g = Guests::default();
        for sid in ["a", "b", "c"] {
            g.push(sid.into());
        }
        g.remove("b");
        g.remove("not a guest");
        let oldest = |g: &Guests, pick: fn(&str) -> bool| g.oldest_preferring(pick).cloned();
        assert_eq!((oldest(&g, |_| true), g.len()), (Some("a".into()), 2));
        assert_eq!(oldest(&g, |s| s == "c"), Some("c".into()));
        assert_eq!(oldest(&g, |_| false), Some("a".into()));
        g.remove("a");
        assert_eq!(oldest(&g, |_| true), Some("c".into()));
    }
}
