//! Who should probe what: rendezvous hashing with bounded load. Every replica
//! computes the same answer from the same list of live replicas, with no
//! messages between them.
//!
//! Upstreams are taken in name order; each goes to the replica that ranks
//! highest for it (a stable hash of the pair) among those whose config names it
//! and that have fewer than `ceil(upstreams / replicas)`; if all of those are
//! full, to the least loaded. So the spread is even (10, 10, 10 for 30 upstreams
//! on 3 replicas), and a replica coming or going moves few upstreams: each keeps
//! its ranking, only the caps change.
//!
//! The hash is written out here (FNV-1a, then a SplitMix64 finish), not taken
//! from std, whose hasher may change between Rust releases: replicas built by
//! different releases must agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A live replica, as the lease table shows it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its process id in the fleet.
    pub instance: String,
    /// The upstreams its config names (it can probe only these).
    pub upstreams: BTreeSet<String>,
}

/// Upstream name to the instance that should probe it.
pub fn assign(members: &[Member]) -> BTreeMap<String, String> {
    let all: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.upstreams.iter().map(String::as_str))
        .collect();
    if members.is_empty() {
        return BTreeMap::new();
    }
    let cap = all.len().div_ceil(members.len());
    let mut load: HashMap<&str, usize> = HashMap::new();
    let mut owners = BTreeMap::new();
    for upstream in all {
        let mut candidates: Vec<(u64, &str)> = members
            .iter()
            .filter(|m| m.upstreams.contains(upstream))
            .map(|m| (score(&m.instance, upstream), m.instance.as_str()))
            .collect();
        // Highest score first; the instance breaks (astronomically rare) ties.
        candidates.sort_by(|a, b| b.cmp(a));
        let load_of =
            |instance: &str, load: &HashMap<&str, usize>| load.get(instance).copied().unwrap_or(0);
        let owner = candidates
            .iter()
            .find(|(_, instance)| load_of(instance, &load) < cap)
            .or_else(|| {
                candidates
                    .iter()
                    .min_by_key(|(_, instance)| load_of(instance, &load))
            })
            .map(|(_, instance)| *instance);
        if let Some(owner) = owner {
            *load.entry(owner).or_default() += 1;
            owners.insert(upstream.to_owned(), owner.to_owned());
        }
    }
    owners
}

/// How much `instance` wants `upstream`: a hash of the two, the same on every
/// machine and release.
fn score(instance: &str, upstream: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in instance.bytes().chain([0xff]).chain(upstream.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // SplitMix64's finish, so that near names spread apart.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[&str], upstreams: usize) -> Vec<Member> {
        let names: BTreeSet<String> = (0..upstreams).map(|i| format!("up-{i}")).collect();
        ids.iter()
            .map(|id| Member {
                instance: (*id).to_owned(),
                upstreams: names.clone(),
            })
            .collect()
    }

    fn loads(owners: &BTreeMap<String, String>) -> BTreeMap<&str, usize> {
        let mut loads = BTreeMap::new();
        for owner in owners.values() {
            *loads.entry(owner.as_str()).or_default() += 1;
        }
        loads
    }

    #[test]
    fn thirty_upstreams_on_three_replicas_are_ten_each() {
        let fleet = members(&["5f1c0a", "9e22d1", "03b7aa"], 30);
        let owners = assign(&fleet);
        assert_eq!(owners.len(), 30);
        assert!(loads(&owners).values().all(|n| *n == 10), "{owners:?}");
        // Every replica computes the same, whatever order it lists the fleet in.
        let reversed: Vec<Member> = fleet.iter().rev().cloned().collect();
        assert_eq!(assign(&reversed), owners);
    }

    #[test]
    fn a_replica_gone_moves_its_share_and_little_else() {
        let fleet = members(&["a1", "b2", "c3"], 30);
        let before = assign(&fleet);
        let after = assign(&fleet[..2]);
        assert!(loads(&after).values().all(|n| *n == 15), "{after:?}");
        let moved = before
            .iter()
            .filter(|(up, owner)| owner.as_str() != "c3" && after[*up] != **owner)
            .count();
        // c3's ten move; of the other twenty, few do (only through the caps).
        assert!(moved <= 5, "{moved} of the survivors' upstreams moved");
        let gained = before.values().filter(|o| o.as_str() == "c3").count();
        assert_eq!(gained, 10);
    }

    #[test]
    fn an_upstream_goes_only_to_a_replica_that_has_it() {
        let mut fleet = members(&["a", "b"], 4);
        fleet[1].upstreams.insert("only-b".into());
        let owners = assign(&fleet);
        assert_eq!(owners["only-b"], "b");
        assert_eq!(owners.len(), 5);
        assert!(assign(&[]).is_empty());
    }
}
