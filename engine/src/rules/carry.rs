// SPDX-License-Identifier: GPL-2.0

//! What a table replace keeps: rule ids and counters.
//!
//! A replace (`CMD_REPLACE_TABLE`, `rust_nf/table.rs`) sends the whole new table. Every rule
//! carries the id it had when rnfctl read the table, or 0 for a rule that is new; chains and
//! rules may carry counters (`iptables-restore -c`). The kernel keeps per table a `base`, the
//! counts carried over from earlier versions (rules first, then chains, in configuration
//! order), and the published version counts on top of it. A replace does two pure steps:
//!
//! 1. [`plan_ids`], before anything is published: which old rule each new rule continues
//!    ([`Origin::Kept`]) and the fresh ids of the others ([`Origin::New`]). Duplicate ids are
//!    refused, so a rule's counters can never be carried to two rules.
//! 2. [`merge_counters`], after the new version is published and a grace period has passed
//!    (so the old version counts no more): the new `base`. Counters given in the request win;
//!    a kept rule gets its old base plus what the old version counted for it; a builtin chain
//!    keeps its policy counters by name; everything else starts at 0.
//!
//! Storage comes from the caller through [`Store`], as for the compiler: the kernel uses its
//! fallibly allocating vectors, the host `Vec`. Running out of room is an error, never a panic.

use core::fmt;

use super::compiled::Store;
use super::rule::Counters;

/// Where a rule of the new table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The rule existed: it keeps its id, and its counters continue those of the old rule at
    /// index `old` (in the old configuration's rule order).
    Kept {
        /// The rule's id, as requested.
        id: u64,
        /// Index of the rule in the old configuration.
        old: usize,
    },
    /// A new rule (id 0 or an id the old table does not have), with the id handed out to it.
    New {
        /// The fresh id.
        id: u64,
    },
}

impl Origin {
    /// The rule's id in the new configuration.
    pub fn id(&self) -> u64 {
        match *self {
            Origin::Kept { id, .. } | Origin::New { id } => id,
        }
    }

    /// The index of the old rule it continues, if any.
    pub fn old(&self) -> Option<usize> {
        match *self {
            Origin::Kept { old, .. } => Some(old),
            Origin::New { .. } => None,
        }
    }
}

/// Why [`plan_ids`] or [`merge_counters`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarryError {
    /// Two rules of the request have the same (non-zero) id.
    DuplicateId {
        /// The id.
        id: u64,
    },
    /// A [`Store`] could not grow.
    OutOfMemory,
    /// A [`Store`] handed in was not empty.
    StoreNotEmpty,
}

impl CarryError {
    /// The (positive) errno for the caller: `EINVAL`, or `ENOMEM`.
    pub fn errno(&self) -> i32 {
        match self {
            CarryError::OutOfMemory => 12,
            CarryError::DuplicateId { .. } | CarryError::StoreNotEmpty => 22,
        }
    }
}

impl fmt::Display for CarryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarryError::DuplicateId { id } => write!(f, "duplicate rule id {id}"),
            CarryError::OutOfMemory => f.write_str("out of memory while carrying counters over"),
            CarryError::StoreNotEmpty => f.write_str("internal error: carry store not empty"),
        }
    }
}

/// Scratch space of [`plan_ids`]: one entry per non-zero id of the old and the new rules.
/// Opaque; the caller only provides an empty [`Store`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdEntry {
    id: u64,
    /// True for an id of the request, false for an id of the old configuration.
    requested: bool,
    /// Index of the rule in the request or in the old configuration.
    index: usize,
}

fn push<T>(s: &mut impl Store<T>, v: T) -> Result<(), CarryError> {
    s.push(v).map_err(|_| CarryError::OutOfMemory)
}

/// Plans the ids of a replace.
///
/// * `old_ids`: the ids of the old configuration's rules, in its order (unique, non-zero);
/// * `requested`: the ids of the request's rules, in its order; 0 asks for a new id;
/// * `next_id`: the next id to hand out (the table's counter, starts at 1);
/// * `scratch`, `plan`: empty stores; `plan` receives one [`Origin`] per requested rule.
///
/// A requested id that the old configuration has is kept ([`Origin::Kept`]); 0 or an unknown
/// id gets `next_id`, `next_id + 1`, ... in request order ([`Origin::New`]), with wrap-around,
/// skipping 0 and the old configuration's ids, so that ids stay unique and non-zero even
/// after the counter wraps. Returns the next `next_id`.
///
/// Fails with [`CarryError::DuplicateId`] when two requested rules have the same non-zero id.
pub fn plan_ids(
    old_ids: impl IntoIterator<Item = u64>,
    requested: impl IntoIterator<Item = u64>,
    next_id: u64,
    scratch: &mut impl Store<IdEntry>,
    plan: &mut impl Store<Origin>,
) -> Result<u64, CarryError> {
    if !scratch.as_slice().is_empty() || !plan.as_slice().is_empty() {
        return Err(CarryError::StoreNotEmpty);
    }
    for (index, id) in requested.into_iter().enumerate() {
        // A placeholder until ids are handed out below.
        push(plan, Origin::New { id: 0 })?;
        if id != 0 {
            push(scratch, IdEntry { id, requested: true, index })?;
        }
    }
    for (index, id) in old_ids.into_iter().enumerate() {
        if id != 0 {
            push(scratch, IdEntry { id, requested: false, index })?;
        }
    }
    // By id; within one id the old rule first.
    scratch.as_mut_slice().sort_unstable_by_key(|e| (e.id, e.requested, e.index));
    let entries = scratch.as_slice();
    let slots = plan.as_mut_slice();

    // Walk the ids: at most one requested rule per id; one with an old rule is kept.
    let mut k = 0;
    while let Some(first) = entries.get(k) {
        let rest = entries.get(k..).unwrap_or(&[]);
        let n = rest.iter().take_while(|e| e.id == first.id).count();
        let group = rest.get(..n).unwrap_or(&[]);
        let mut wanted = group.iter().filter(|e| e.requested);
        let want = wanted.next();
        if wanted.next().is_some() {
            return Err(CarryError::DuplicateId { id: first.id });
        }
        let old = group.iter().find(|e| !e.requested);
        if let (Some(w), Some(o)) = (want, old) {
            if let Some(slot) = slots.get_mut(w.index) {
                *slot = Origin::Kept { id: w.id, old: o.index };
            }
        }
        k = k.wrapping_add(n.max(1));
    }

    // New ids in request order.
    let taken = |id: u64| {
        let i = entries.partition_point(|e| (e.id, e.requested) < (id, false));
        entries.get(i).is_some_and(|e| e.id == id && !e.requested)
    };
    let mut next = next_id;
    for slot in slots.iter_mut() {
        if let Origin::New { id } = slot {
            while next == 0 || taken(next) {
                next = next.wrapping_add(1);
            }
            *id = next;
            next = next.wrapping_add(1);
        }
    }
    Ok(next)
}

/// A chain of the new configuration, as [`merge_counters`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewChain<'a> {
    /// The chain's name.
    pub name: &'a str,
    /// True for a builtin chain (one with a policy).
    pub builtin: bool,
    /// Policy counters given in the request (`iptables-restore -c`), if any.
    pub given: Option<Counters>,
}

/// The old configuration, as [`merge_counters`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct OldConfig<'a, N> {
    /// The counts carried into it: its rules first, then its chains.
    pub base: &'a [Counters],
    /// How many rules it has (where its chains start in `base`).
    pub rule_count: usize,
    /// The names of its chains, in its order.
    pub chain_names: N,
}

/// What the old version counted while it was published, read once it no longer counts.
pub trait Counted {
    /// The counters of rule `rule` (index in the old configuration).
    fn rule(&self, rule: usize) -> Counters;
    /// The policy counters of chain `chain` (index in the old configuration); zero for a user
    /// chain.
    fn policy(&self, chain: usize) -> Counters;
}

/// Nothing counted (no old version was published).
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingCounted;

impl Counted for NothingCounted {
    fn rule(&self, _rule: usize) -> Counters {
        Counters::default()
    }
    fn policy(&self, _chain: usize) -> Counters {
        Counters::default()
    }
}

/// Two counts added, with wrap-around (as the kernel's `u64` counters do).
pub fn sum(a: Counters, b: Counters) -> Counters {
    Counters { packets: a.packets.wrapping_add(b.packets), bytes: a.bytes.wrapping_add(b.bytes) }
}

/// Builds the new configuration's `base` in `out` (empty): one entry per rule of `plan`, then
/// one per chain of `chains`.
///
/// * a rule: its counters given in the request (`rule_given`, in rule order; missing entries
///   count as not given); else, when it continues an old rule, that rule's old base plus what
///   the old version counted for it; else 0;
/// * a chain: its counters given in the request; else, for a builtin chain whose name the old
///   configuration has, that chain's old base plus what the old version counted for its
///   policy; else 0 (a user chain never carries counters over).
pub fn merge_counters<'a, N>(
    old: &OldConfig<'a, N>,
    counted: &impl Counted,
    plan: &[Origin],
    rule_given: impl IntoIterator<Item = Option<Counters>>,
    chains: impl IntoIterator<Item = NewChain<'a>>,
    out: &mut impl Store<Counters>,
) -> Result<(), CarryError>
where
    N: Iterator<Item = &'a str> + Clone,
{
    if !out.as_slice().is_empty() {
        return Err(CarryError::StoreNotEmpty);
    }
    let old_base = |i: Option<usize>| i.and_then(|i| old.base.get(i)).copied().unwrap_or_default();
    let mut given = rule_given.into_iter();
    for origin in plan {
        let c = match (given.next().flatten(), origin.old()) {
            (Some(c), _) => c,
            (None, Some(j)) => sum(old_base(Some(j)), counted.rule(j)),
            (None, None) => Counters::default(),
        };
        push(out, c)?;
    }
    for chain in chains {
        let c = match chain.given {
            Some(c) => c,
            None if chain.builtin => match old.chain_names.clone().position(|n| n == chain.name) {
                Some(j) => sum(old_base(old.rule_count.checked_add(j)), counted.policy(j)),
                None => Counters::default(),
            },
            None => Counters::default(),
        };
        push(out, c)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::compiled::OutOfMemory;
    use super::*;
    use std::collections::BTreeMap;
    use std::string::String;
    use std::vec::Vec;

    fn c(packets: u64, bytes: u64) -> Counters {
        Counters { packets, bytes }
    }

    /// [`plan_ids`] with `Vec`s.
    fn plan(old: &[u64], req: &[u64], next_id: u64) -> Result<(Vec<Origin>, u64), CarryError> {
        let (mut scratch, mut plan) = (Vec::new(), Vec::new());
        let next =
            plan_ids(old.iter().copied(), req.iter().copied(), next_id, &mut scratch, &mut plan)?;
        assert_eq!(plan.len(), req.len());
        Ok((plan, next))
    }

    fn ids(p: &[Origin]) -> Vec<u64> {
        p.iter().map(Origin::id).collect()
    }

    fn olds(p: &[Origin]) -> Vec<Option<usize>> {
        p.iter().map(Origin::old).collect()
    }

    #[test]
    fn first_replace_hands_out_ids_from_one() {
        let (p, next) = plan(&[], &[0, 0, 0], 1).unwrap();
        assert_eq!(p, [Origin::New { id: 1 }, Origin::New { id: 2 }, Origin::New { id: 3 }]);
        assert_eq!(next, 4);
        let (p, next) = plan(&[], &[], 1).unwrap();
        assert!(p.is_empty());
        assert_eq!(next, 1);
    }

    #[test]
    fn ids_kept_across_insert_delete_and_reorder() {
        let old = [1, 2, 3, 4];
        // Insert at the front and in the middle.
        let (p, next) = plan(&old, &[0, 1, 2, 0, 3, 4], 5).unwrap();
        assert_eq!(ids(&p), [5, 1, 2, 6, 3, 4]);
        assert_eq!(olds(&p), [None, Some(0), Some(1), None, Some(2), Some(3)]);
        assert_eq!(next, 7);
        // Delete two.
        let (p, next) = plan(&old, &[1, 4], 5).unwrap();
        assert_eq!(p, [Origin::Kept { id: 1, old: 0 }, Origin::Kept { id: 4, old: 3 }]);
        assert_eq!(next, 5);
        // Reorder (rules moved between chains look the same: order is all that changes).
        let (p, _) = plan(&old, &[4, 2, 3, 1], 5).unwrap();
        assert_eq!(ids(&p), [4, 2, 3, 1]);
        assert_eq!(olds(&p), [Some(3), Some(1), Some(2), Some(0)]);
        // Flush.
        let (p, next) = plan(&old, &[], 5).unwrap();
        assert!(p.is_empty());
        assert_eq!(next, 5);
        // Old ids need not be in order (after a reorder they are not).
        let (p, _) = plan(&[9, 3, 7], &[7, 0, 9], 10).unwrap();
        assert_eq!(
            p,
            [
                Origin::Kept { id: 7, old: 2 },
                Origin::New { id: 10 },
                Origin::Kept { id: 9, old: 0 }
            ]
        );
    }

    #[test]
    fn unknown_ids_get_new_ones() {
        // An id the table does not have (a rule deleted meanwhile, or made up) is a new rule.
        let (p, next) = plan(&[1, 2], &[2, 77, 1, 0], 3).unwrap();
        assert_eq!(ids(&p), [2, 3, 1, 4]);
        assert_eq!(olds(&p), [Some(1), None, Some(0), None]);
        assert_eq!(next, 5);
    }

    #[test]
    fn new_ids_unique_and_increasing() {
        let old: Vec<u64> = (1..=50).collect();
        let req: Vec<u64> = (0..200u64).map(|i| if i % 4 == 0 { 1 + i / 4 } else { 0 }).collect();
        let (p, next) = plan(&old, &req, 51).unwrap();
        let fresh: Vec<u64> = p.iter().filter(|o| o.old().is_none()).map(Origin::id).collect();
        assert_eq!(fresh.len(), 150);
        assert!(fresh.windows(2).all(|w| w[0] < w[1]));
        assert!(fresh.iter().all(|&id| id >= 51));
        assert_eq!(next, 51 + 150);
        let mut all = ids(&p);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 200);
    }

    #[test]
    fn duplicate_ids_refused() {
        assert_eq!(plan(&[1, 2], &[1, 2, 1], 3), Err(CarryError::DuplicateId { id: 1 }));
        // Also an id the table does not have.
        assert_eq!(plan(&[1], &[0, 9, 0, 9], 3), Err(CarryError::DuplicateId { id: 9 }));
        assert_eq!(plan(&[], &[5, 5], 1), Err(CarryError::DuplicateId { id: 5 }));
        // Many zeros are fine.
        assert!(plan(&[1], &[0, 0, 1, 0], 2).is_ok());
        let e = CarryError::DuplicateId { id: 9 };
        assert_eq!(e.errno(), 22);
        assert_eq!(std::format!("{e}"), "duplicate rule id 9");
    }

    #[test]
    fn id_counter_wraps_around() {
        let (p, next) = plan(&[], &[0, 0, 0], u64::MAX - 1).unwrap();
        // 0 means "new" on the wire: never handed out.
        assert_eq!(ids(&p), [u64::MAX - 1, u64::MAX, 1]);
        assert_eq!(next, 2);
        // After the wrap, ids still in use are skipped.
        let (p, next) = plan(&[1, 2, 4, u64::MAX], &[0, 2, 0, u64::MAX, 0, 1], 0).unwrap();
        assert_eq!(ids(&p), [3, 2, 5, u64::MAX, 6, 1]);
        assert_eq!(olds(&p), [None, Some(1), None, Some(3), None, Some(0)]);
        assert_eq!(next, 7);
        // A deleted rule's id is not in use any more, but the old table's ids are skipped
        // all the same (new ids never collide with what a reader may still have seen).
        let (p, _) = plan(&[3], &[0], 3).unwrap();
        assert_eq!(ids(&p), [4]);
    }

    /// A store with room for `cap` elements.
    struct Bounded<T> {
        v: Vec<T>,
        cap: usize,
    }

    impl<T> Store<T> for Bounded<T> {
        fn push(&mut self, v: T) -> Result<(), OutOfMemory> {
            if self.v.len() == self.cap {
                return Err(OutOfMemory);
            }
            self.v.push(v);
            Ok(())
        }
        fn as_slice(&self) -> &[T] {
            &self.v
        }
        fn as_mut_slice(&mut self) -> &mut [T] {
            &mut self.v
        }
    }

    #[test]
    fn out_of_memory_and_dirty_stores_are_errors() {
        let old = [1u64, 2, 3];
        let req = [3u64, 0, 1, 0];
        for cap in 0..7 {
            let mut scratch = Bounded { v: Vec::new(), cap };
            let mut p = Vec::new();
            let r = plan_ids(old, req, 4, &mut scratch, &mut p);
            assert_eq!(r, if cap >= 5 { Ok(6) } else { Err(CarryError::OutOfMemory) });
        }
        for cap in 0..4 {
            let mut p = Bounded { v: Vec::new(), cap };
            let r = plan_ids(old, req, 4, &mut Vec::new(), &mut p);
            assert_eq!(r, Err(CarryError::OutOfMemory));
        }
        let mut dirty = std::vec![Origin::New { id: 1 }];
        assert_eq!(
            plan_ids(old, req, 4, &mut Vec::new(), &mut dirty),
            Err(CarryError::StoreNotEmpty)
        );

        let (p, _) = plan(&old, &req, 4).unwrap();
        let cfg = OldConfig { base: &[], rule_count: 3, chain_names: [].into_iter() };
        let chains = [NewChain { name: "INPUT", builtin: true, given: None }];
        for cap in 0..5 {
            let mut out = Bounded { v: Vec::new(), cap };
            let r = merge_counters(&cfg, &NothingCounted, &p, [], chains, &mut out);
            assert_eq!(r, if cap == 5 { Ok(()) } else { Err(CarryError::OutOfMemory) });
        }
        let mut dirty = std::vec![c(1, 1)];
        let r = merge_counters(&cfg, &NothingCounted, &p, [], chains, &mut dirty);
        assert_eq!(r, Err(CarryError::StoreNotEmpty));
        assert_eq!(CarryError::OutOfMemory.errno(), 12);
    }

    /// The old version's counts in a test: per rule and per chain policy.
    struct Seen {
        rules: Vec<Counters>,
        policies: Vec<Counters>,
    }

    impl Counted for Seen {
        fn rule(&self, rule: usize) -> Counters {
            self.rules[rule]
        }
        fn policy(&self, chain: usize) -> Counters {
            self.policies[chain]
        }
    }

    fn builtin(name: &str) -> NewChain<'_> {
        NewChain { name, builtin: true, given: None }
    }

    fn user(name: &str) -> NewChain<'_> {
        NewChain { name, builtin: false, given: None }
    }

    #[test]
    fn counters_carried_given_and_dropped() {
        // Old: rules 10, 11, 12 in INPUT, FORWARD, OUTPUT, u; base then what was counted.
        let names = ["INPUT", "FORWARD", "OUTPUT", "u"];
        let base =
            [c(1, 100), c(2, 200), c(3, 300), c(10, 1000), c(20, 2000), c(30, 3000), c(7, 7)];
        let old = OldConfig { base: &base, rule_count: 3, chain_names: names.iter().copied() };
        let seen = Seen {
            rules: std::vec![c(5, 50), c(6, 60), c(0, 0)],
            policies: std::vec![c(100, 1), c(200, 2), c(300, 3), c(0, 0)],
        };
        // New: rule 12 (kept, counts given), 10 (kept), a new rule, rule 11 deleted; chains
        // reordered, FORWARD with given counters, u renamed to v, a new user chain w.
        let (p, _) = plan(&[10, 11, 12], &[12, 10, 0], 13).unwrap();
        let given = [Some(c(42, 4200)), None, None];
        let chains = [
            builtin("OUTPUT"),
            NewChain { given: Some(c(9, 9)), ..builtin("FORWARD") },
            builtin("INPUT"),
            user("v"),
            NewChain { given: Some(c(8, 8)), ..user("w") },
        ];
        let mut out = Vec::new();
        merge_counters(&old, &seen, &p, given, chains, &mut out).unwrap();
        assert_eq!(
            out,
            [
                c(42, 4200),           // given wins over old base + counted
                c(1 + 5, 100 + 50),    // surviving: old base + counted by the old version
                c(0, 0),               // new
                c(30 + 300, 3000 + 3), // OUTPUT: by name, from old position 2
                c(9, 9),               // given
                c(10 + 100, 1000 + 1), // INPUT
                c(0, 0),               // user chains start at 0 ...
                c(8, 8),               // ... unless given
            ]
        );
        // Rule 11's counters (2 + 6) are gone: nothing refers to old index 1.
    }

    #[test]
    fn user_chain_counters_not_carried_even_by_name() {
        let names = ["INPUT", "u"];
        let base = [c(0, 0), c(5, 5)];
        let old = OldConfig { base: &base, rule_count: 0, chain_names: names.iter().copied() };
        let seen = Seen { rules: Vec::new(), policies: std::vec![c(1, 1), c(0, 0)] };
        let mut out = Vec::new();
        merge_counters(&old, &seen, &[], [], [builtin("INPUT"), user("u")], &mut out).unwrap();
        assert_eq!(out, [c(1, 1), c(0, 0)]);
    }

    #[test]
    fn counters_wrap_around() {
        let base = [c(u64::MAX, u64::MAX - 1), c(u64::MAX - 2, 3)];
        let old = OldConfig { base: &base, rule_count: 1, chain_names: ["INPUT"].into_iter() };
        let seen = Seen { rules: std::vec![c(2, 3)], policies: std::vec![c(5, u64::MAX)] };
        let (p, _) = plan(&[1], &[1], 2).unwrap();
        let mut out = Vec::new();
        merge_counters(&old, &seen, &p, [None], [builtin("INPUT")], &mut out).unwrap();
        assert_eq!(out, [c(1, 1), c(2, 2)]);
        assert_eq!(sum(c(u64::MAX, 1), c(1, u64::MAX)), c(0, 0));
    }

    #[test]
    fn short_or_missing_inputs_never_panic() {
        // A base shorter than the configuration (first replace: empty) and fewer given
        // entries than rules read as zeros and "not given".
        let names = ["INPUT"];
        let old = OldConfig { base: &[], rule_count: 2, chain_names: names.iter().copied() };
        let (p, _) = plan(&[1, 2], &[2, 1, 0], 3).unwrap();
        let mut out = Vec::new();
        merge_counters(&old, &NothingCounted, &p, [Some(c(1, 1))], [builtin("INPUT")], &mut out)
            .unwrap();
        assert_eq!(out, [c(1, 1), c(0, 0), c(0, 0), c(0, 0)]);
        // A rule count that would overflow the index.
        let old = OldConfig {
            base: &[c(1, 1)],
            rule_count: usize::MAX,
            chain_names: names.iter().copied(),
        };
        let mut out = Vec::new();
        merge_counters(
            &old,
            &NothingCounted,
            &[],
            [],
            [builtin("INPUT"), builtin("INPUT")],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [c(0, 0), c(0, 0)]);
    }

    // ---- a table replaced at random, as the kernel does it ---------------------------------

    use super::super::super::testrng::Rng;

    /// A rule of the model: its id and a tag naming it for the ground truth.
    #[derive(Debug, Clone, Copy)]
    struct Rule {
        id: u64,
        tag: u32,
    }

    /// One table as `rust_nf/table.rs` keeps it: the configuration with its `base`, and the
    /// published version's counters (rule `i` counts into `counted.rules[i]`, chain `k`'s
    /// policy into `counted.policies[k]`).
    struct Table {
        next_id: u64,
        chains: Vec<(String, bool)>,
        rules: Vec<Rule>,
        base: Vec<Counters>,
        counted: Seen,
    }

    impl Table {
        /// `replace`: plan before publishing (an error leaves everything as it was), then
        /// merge with what the old version counted; the new version starts at zero.
        fn replace(
            &mut self,
            chains: &[(String, bool, Option<Counters>)],
            rules: &[(Rule, Option<Counters>)],
        ) -> Result<(), CarryError> {
            let (mut scratch, mut p) = (Vec::new(), Vec::new());
            let next = plan_ids(
                self.rules.iter().map(|r| r.id),
                rules.iter().map(|r| r.0.id),
                self.next_id,
                &mut scratch,
                &mut p,
            )?;
            let old = OldConfig {
                base: &self.base,
                rule_count: self.rules.len(),
                chain_names: self.chains.iter().map(|c| c.0.as_str()),
            };
            let mut base = Vec::new();
            merge_counters(
                &old,
                &self.counted,
                &p,
                rules.iter().map(|r| r.1),
                chains.iter().map(|(name, builtin, given)| NewChain {
                    name,
                    builtin: *builtin,
                    given: *given,
                }),
                &mut base,
            )?;
            self.rules =
                rules.iter().zip(&p).map(|(r, o)| Rule { id: o.id(), tag: r.0.tag }).collect();
            self.chains = chains.iter().map(|(n, b, _)| (n.clone(), *b)).collect();
            self.base = base;
            self.next_id = next;
            self.counted = Seen {
                rules: std::vec![Counters::default(); self.rules.len()],
                policies: std::vec![Counters::default(); self.chains.len()],
            };
            Ok(())
        }

        /// What a read (`CMD_GET_TABLE`) shows for rule `i`.
        fn rule_total(&self, i: usize) -> Counters {
            sum(self.base.get(i).copied().unwrap_or_default(), self.counted.rules[i])
        }

        fn policy_total(&self, k: usize) -> Counters {
            let b = self.base.get(self.rules.len() + k).copied().unwrap_or_default();
            sum(b, self.counted.policies[k])
        }
    }

    /// Random replaces (inserts, deletes, moves, restores with counters, duplicate ids, ids
    /// of rules deleted meanwhile) with random traffic between them: every surviving rule
    /// shows exactly the packets and bytes it ever counted, no more, no less; builtin policies
    /// likewise; ids stay unique, and a refused replace changes nothing.
    #[test]
    fn random_replaces_never_lose_or_double_count() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        // How often each case came up, to know the run covered them.
        let (mut refused, mut carried, mut given_won) = (0, 0, 0);
        let builtins = ["INPUT", "FORWARD", "OUTPUT"];
        for run in 0..40 {
            // Some runs start near the end of the id space.
            let next_id = if run % 4 == 3 { u64::MAX - rng.index(30) as u64 } else { 1 };
            let mut t = Table {
                next_id,
                chains: Vec::new(),
                rules: Vec::new(),
                base: Vec::new(),
                counted: Seen { rules: Vec::new(), policies: Vec::new() },
            };
            // Ground truth: total per rule tag and per builtin chain name.
            let mut truth: BTreeMap<u32, Counters> = BTreeMap::new();
            let mut policy_truth: BTreeMap<String, Counters> = BTreeMap::new();
            let mut next_tag = 0u32;
            for _step in 0..60 {
                // Traffic on the published version.
                for _ in 0..rng.index(40) {
                    let bytes = 40 + rng.index(1460) as u64;
                    if !t.rules.is_empty() && rng.index(4) != 0 {
                        let i = rng.index(t.rules.len());
                        t.counted.rules[i] = sum(t.counted.rules[i], c(1, bytes));
                        let e = truth.get_mut(&t.rules[i].tag).unwrap();
                        *e = sum(*e, c(1, bytes));
                    } else if !t.chains.is_empty() {
                        let k = rng.index(t.chains.len());
                        if t.chains[k].1 {
                            t.counted.policies[k] = sum(t.counted.policies[k], c(1, bytes));
                            let e = policy_truth.entry(t.chains[k].0.clone()).or_default();
                            *e = sum(*e, c(1, bytes));
                        }
                    }
                }
                // The request: the current rules (as read), edited.
                let mut rules: Vec<(Rule, Option<Counters>)> =
                    t.rules.iter().map(|r| (*r, None)).collect();
                for _ in 0..rng.index(4) {
                    match rng.index(5) {
                        0 | 1 => {
                            let at = rng.index(rules.len() + 1);
                            next_tag += 1;
                            rules.insert(at, (Rule { id: 0, tag: next_tag }, None));
                        }
                        2 if !rules.is_empty() => {
                            rules.remove(rng.index(rules.len()));
                        }
                        3 if !rules.is_empty() => {
                            let r = rules.remove(rng.index(rules.len()));
                            let at = rng.index(rules.len() + 1);
                            rules.insert(at, r);
                        }
                        _ if !rules.is_empty() => {
                            // restore -c: counters given for one rule.
                            let i = rng.index(rules.len());
                            rules[i].1 = Some(c(rng.index(1000) as u64, rng.next()));
                        }
                        _ => {}
                    }
                }
                let stale_id = rng.index(8) == 0;
                if stale_id && !rules.is_empty() {
                    // An id nobody has (a rule deleted by someone else meanwhile).
                    let i = rng.index(rules.len());
                    rules[i].0.id = rules[i].0.id.wrapping_add(1 << 40) | 1;
                }
                let duplicate = rules.len() >= 2 && rng.index(10) == 0;
                if duplicate {
                    let (i, j) = (rng.index(rules.len()), rng.index(rules.len()));
                    let id = if rules[i].0.id != 0 { rules[i].0.id } else { 1 };
                    rules[i].0.id = id;
                    if i != j {
                        rules[j].0.id = id;
                    } else {
                        rules.push((Rule { id, tag: 0 }, None));
                    }
                }
                let mut chains: Vec<(String, bool, Option<Counters>)> =
                    builtins.iter().map(|n| (String::from(*n), true, None)).collect();
                chains.push((std::format!("user{}", rng.index(3)), false, None));
                if rng.index(3) == 0 {
                    chains.swap(0, 2);
                }
                if rng.index(4) == 0 {
                    // Counters given for the user chain: shown, never carried over.
                    chains[3].2 = Some(c(rng.index(100) as u64, 3));
                }
                if rng.index(8) == 0 {
                    let k = rng.index(3);
                    chains[k].2 = Some(c(rng.index(100) as u64, 7));
                }

                let before = (t.next_id, t.rules.len(), t.base.clone());
                let old_ids: Vec<u64> = t.rules.iter().map(|r| r.id).collect();
                match t.replace(&chains, &rules) {
                    Err(CarryError::DuplicateId { .. }) => {
                        assert!(duplicate, "refused without a duplicate");
                        assert_eq!((t.next_id, t.rules.len(), t.base.clone()), before);
                        refused += 1;
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                    Ok(()) => assert!(!duplicate),
                }
                // Ground truth after the replace: a rule continues its old self only when its
                // id was known; a stale id makes it a new rule.
                let mut kept = BTreeMap::new();
                for (i, (r, given)) in rules.iter().enumerate() {
                    let total = match given {
                        Some(g) => {
                            given_won += 1;
                            *g
                        }
                        None if old_ids.contains(&r.id) => {
                            carried += usize::from(truth[&r.tag].packets != 0);
                            truth[&r.tag]
                        }
                        None => Counters::default(),
                    };
                    assert_eq!(t.rule_total(i), total, "rule {i} (tag {})", r.tag);
                    kept.insert(r.tag, total);
                }
                truth = kept;
                for (k, (name, _, given)) in chains.iter().enumerate() {
                    if k >= 3 && name.starts_with("user") {
                        assert_eq!(t.policy_total(k), given.unwrap_or_default());
                        continue;
                    }
                    let want = given
                        .unwrap_or_else(|| policy_truth.get(name).copied().unwrap_or_default());
                    assert_eq!(t.policy_total(k), want, "policy of {name}");
                    policy_truth.insert(name.clone(), want);
                }
                // Ids: unique and non-zero.
                let mut ids: Vec<u64> = t.rules.iter().map(|r| r.id).collect();
                assert!(ids.iter().all(|&id| id != 0));
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), t.rules.len());
            }
        }
        assert!(
            refused > 20 && carried > 1000 && given_won > 100,
            "{refused} {carried} {given_won}"
        );
    }
}
