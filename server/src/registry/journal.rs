//! The registry's recent changes, numbered, for `healthweb.v1.Statuses/WatchAll`:
//! a stream that resumes after a reconnect reads what it missed here, and one
//! that falls further behind than the journal reaches gets a new snapshot.
//!
//! The journal is shared by every stream and holds at most its capacity of
//! changes (the oldest go first), so no client, however slow, makes the server
//! keep more.

use std::{collections::VecDeque, sync::Arc};

use healthweb_proto::pb::health_check_response::ServingStatus;

/// The last `capacity` changes: entry `i` is change number `next - len + i`.
#[derive(Debug)]
pub(super) struct Journal {
    entries: VecDeque<(Arc<str>, ServingStatus)>,
    capacity: usize,
    next: u64,
}

impl Journal {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
            next: 0,
        }
    }

    /// The number the next change will get: where a snapshot taken now stands.
    pub(super) fn position(&self) -> u64 {
        self.next
    }

    pub(super) fn push(&mut self, service: &str, status: ServingStatus) {
        if self.capacity > 0 {
            if self.entries.len() == self.capacity {
                self.entries.pop_front();
            }
            self.entries.push_back((service.into(), status));
        }
        self.next += 1;
    }

    /// At most `max` changes from number `from` on, and the position after them;
    /// `None` when `from` is gone from the journal, or was never reached.
    pub(super) fn since(&self, from: u64, max: usize) -> Option<super::Changes> {
        let oldest = self.next - self.entries.len() as u64;
        if from < oldest || from > self.next {
            return None;
        }
        let skip = usize::try_from(from - oldest).ok()?;
        let changes: Vec<_> = self.entries.iter().skip(skip).take(max).cloned().collect();
        let after = from + changes.len() as u64;
        Some((changes, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_back_as_far_as_its_capacity() {
        let mut journal = Journal::new(2);
        assert_eq!(journal.since(0, 10), Some((vec![], 0)));
        for name in ["a", "b", "c"] {
            journal.push(name, ServingStatus::Serving);
        }
        assert_eq!(journal.position(), 3);
        assert_eq!(journal.since(0, 10), None, "change 0 was dropped");
        let (changes, after) = journal.since(1, 10).unwrap();
        let names: Vec<&str> = changes.iter().map(|(n, _)| &**n).collect();
        assert_eq!((names, after), (vec!["b", "c"], 3));
        let (changes, after) = journal.since(1, 1).unwrap();
        assert_eq!((changes.len(), after), (1, 2));
        assert_eq!(journal.since(3, 10), Some((vec![], 3)));
        assert_eq!(journal.since(4, 10), None, "never reached");
    }

    #[test]
    fn without_capacity_only_counts() {
        let mut journal = Journal::new(0);
        journal.push("a", ServingStatus::Serving);
        assert_eq!(journal.since(0, 10), None);
        assert_eq!(journal.since(1, 10), Some((vec![], 1)));
    }
}
