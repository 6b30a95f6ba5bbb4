//! The deadline queue behind the patent's keepalive counters. Each connection
//! has at most one live entry; activity only moves `Conn::deadline` later, and
//! an entry that comes due early is pushed back to the real deadline instead of
//! firing. A tick therefore touches only the connections whose time has come,
//! not all of them, which keeps it cheap at 19,000 connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-heap of `(due, key, gen)`.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Timers {
    /// An empty queue with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Timers {
            heap: BinaryHeap::with_capacity(n),
        }
    }

    /// Adds an entry for `(key, gen)` due at `due`.
    pub fn schedule(&mut self, due: u64, key: u32, gen: u32) {
        self.heap.push(Reverse((due, key, gen)));
    }

    /// Removes and returns the earliest entry due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, u32, u32)> {
        match self.heap.peek() {
            Some(Reverse((due, _, _))) if *due <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// True when an entry is due at or before `now`.
    pub fn has_due(&self, now: u64) -> bool {
        self.heap
            .peek()
            .is_some_and(|Reverse((due, _, _))| *due <= now)
    }

    /// How many entries are queued (live and stale).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        t.schedule(30, 1, 0);
        t.schedule(10, 2, 0);
        t.schedule(20, 3, 0);
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25), Some((10, 2, 0)));
        assert_eq!(t.pop_due(25), Some((20, 3, 0)));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.len(), 1);
    }
}
