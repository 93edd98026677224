// SPDX-License-Identifier: GPL-2.0

//! What a table change keeps: rule ids and counters.
//!
//! A replace (`CMD_REPLACE_TABLE`, `rust_nf/table.rs`) sends the whole new table, an update
//! (`CMD_UPDATE_TABLE`) a few edits of it. Every rule carries the id it had when rnfctl read
//! the table, or 0 for a rule that is new; chains and rules may carry counters
//! (`iptables-restore -c`, `-Z`). Counters are owned by identity, not by position: every rule
//! and builtin chain counts into a *slot* of its table's counter pool, and keeps that slot
//! for as long as it lives. A change therefore neither moves nor copies counters, and packets
//! still walking the version being replaced count into the same slots as the new one. Two
//! pure steps, both before anything is published:
//!
//! 1. [`plan_ids`]: which old rule each new rule continues ([`Origin::Kept`]) and the fresh
//!    ids of the others ([`Origin::New`]). Duplicate ids are refused, so a slot can never go to
//!    two rules.
//! 2. [`assign_slots`]: the slot of each new rule and chain. Counters given in the request win
//!    (a fresh slot that starts at them); a kept rule keeps its slot; a builtin chain keeps its
//!    slot by name; everything else gets a fresh slot at 0 (a user chain none, unless given).
//!
//! [`freed_slots`] lists the old slots nothing uses any more: the pool may hand them out again
//! once the old version can no longer count into them (a grace period after the switch).
//!
//! Storage comes from the caller through [`Store`], as for the compiler: the kernel uses its
//! fallibly allocating vectors, the host `Vec`. Running out of room is an error, never a panic.

use core::fmt;

use super::compiled::{OutOfMemory, Store};
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

/// Why [`plan_ids`], [`assign_slots`] or [`freed_slots`] failed.
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
    /// The caller's plan does not fit the old configuration (an old index out of range or
    /// claimed twice), or no fresh id is left.
    Inconsistent,
}

impl CarryError {
    /// The (positive) errno for the caller: `EINVAL`, or `ENOMEM`.
    pub fn errno(&self) -> i32 {
        match self {
            CarryError::OutOfMemory => 12,
            CarryError::DuplicateId { .. } | CarryError::StoreNotEmpty | CarryError::Inconsistent => 22,
        }
    }
}

impl fmt::Display for CarryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarryError::DuplicateId { id } => write!(f, "duplicate rule id {id}"),
            CarryError::OutOfMemory => f.write_str("out of memory while carrying counters over"),
            CarryError::StoreNotEmpty => f.write_str("internal error: carry store not empty"),
            CarryError::Inconsistent => f.write_str("internal error: rule origins do not fit the table"),
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

/// [`plan_ids`] when the caller already knows where each new rule comes from (an update
/// built from the old configuration: `Some(old index)` for a rule it kept, each old rule at
/// most once; `None` for a new one): kept rules keep their ids, new ones get fresh ids from
/// `next_id` on, in order. Linear, no sort. `old_id(i)`: the id of old rule `i` (all below
/// `next_id`: every id was handed out from it). Refuses an old index out of range or
/// given twice, and running out of ids ([`CarryError::Inconsistent`]).
pub fn plan_known(
    old_id: impl Fn(usize) -> Option<u64>,
    origins: impl IntoIterator<Item = Option<usize>>,
    next_id: u64,
    seen: &mut [u64],
    plan: &mut impl Store<Origin>,
) -> Result<u64, CarryError> {
    if !plan.as_slice().is_empty() {
        return Err(CarryError::StoreNotEmpty);
    }
    let mut next = next_id;
    for o in origins {
        match o {
            Some(old) => {
                let id = old_id(old).ok_or(CarryError::Inconsistent)?;
                // One bit per old rule: a second claim on it is refused.
                let (w, b) = (old / 64, 1u64 << (old % 64));
                let word = seen.get_mut(w).ok_or(CarryError::Inconsistent)?;
                if *word & b != 0 || id == 0 || id >= next_id {
                    return Err(CarryError::Inconsistent);
                }
                *word |= b;
                push(plan, Origin::Kept { id, old })?;
            }
            None => {
                // Fresh ids count up from `next_id` and never wrap (old ids are all below it).
                let id = next.max(1);
                next = id.checked_add(1).ok_or(CarryError::Inconsistent)?;
                push(plan, Origin::New { id })?;
            }
        }
    }
    Ok(next)
}

/// No slot: a user chain's policy (it has none), unless counters were given for it.
pub const NO_SLOT: u32 = u32::MAX;

/// A chain of the new configuration, as [`assign_slots`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewChain<'a> {
    /// The chain's name.
    pub name: &'a str,
    /// True for a builtin chain (one with a policy).
    pub builtin: bool,
    /// Policy counters given in the request (`iptables-restore -c`), if any.
    pub given: Option<Counters>,
}

/// The old configuration's slots, as [`assign_slots`] needs them.
#[derive(Debug, Clone, Copy)]
pub struct OldSlots<'a, N> {
    /// The slot of each rule, in its order.
    pub rules: &'a [u32],
    /// Its chains in order: name and slot.
    pub chains: N,
}

/// Two counts added, with wrap-around (as the kernel's `u64` counters do).
pub fn sum(a: Counters, b: Counters) -> Counters {
    Counters { packets: a.packets.wrapping_add(b.packets), bytes: a.bytes.wrapping_add(b.bytes) }
}

/// The slots of a new configuration: one per rule of `plan` into `rule_slots`, one per chain of
/// `chains` into `chain_slots` (both empty).
///
/// * a rule: a fresh slot starting at its counters when given in the request (`rule_given`, in
///   rule order; missing entries count as not given); else, when it continues an old rule,
///   that rule's slot; else a fresh slot at 0;
/// * a chain: a fresh slot starting at its counters when given; else, for a builtin chain
///   whose name the old configuration has, that chain's slot; else a fresh slot at 0 for a
///   builtin chain and [`NO_SLOT`] for a user chain (which never carries counters over).
///
/// `fresh` hands out a slot that nothing uses, set to the counters given (out of memory: the
/// pool could not grow).
pub fn assign_slots<'a, N>(
    old: &OldSlots<'a, N>,
    plan: &[Origin],
    rule_given: impl IntoIterator<Item = Option<Counters>>,
    chains: impl IntoIterator<Item = NewChain<'a>>,
    fresh: &mut impl FnMut(Counters) -> Result<u32, OutOfMemory>,
    rule_slots: &mut impl Store<u32>,
    chain_slots: &mut impl Store<u32>,
) -> Result<(), CarryError>
where
    N: Iterator<Item = (&'a str, u32)> + Clone,
{
    if !rule_slots.as_slice().is_empty() || !chain_slots.as_slice().is_empty() {
        return Err(CarryError::StoreNotEmpty);
    }
    let mut fresh = |c: Counters| fresh(c).map_err(|_| CarryError::OutOfMemory);
    let mut given = rule_given.into_iter();
    for origin in plan {
        let kept = origin.old().and_then(|j| old.rules.get(j)).copied().filter(|&s| s != NO_SLOT);
        let slot = match (given.next().flatten(), kept) {
            (Some(c), _) => fresh(c)?,
            (None, Some(s)) => s,
            (None, None) => fresh(Counters::default())?,
        };
        push(rule_slots, slot)?;
    }
    for chain in chains {
        let slot = match chain.given {
            Some(c) => fresh(c)?,
            None if chain.builtin => {
                let kept = old.chains.clone().find(|(n, _)| *n == chain.name).map(|(_, s)| s).filter(|&s| s != NO_SLOT);
                match kept {
                    Some(s) => s,
                    None => fresh(Counters::default())?,
                }
            }
            None => NO_SLOT,
        };
        push(chain_slots, slot)?;
    }
    Ok(())
}

/// The slots of `old` that `new` does not use, each once, in `old`'s order, into `out`
/// (empty). `marks` is scratch: zeroed bits, at least one per slot number of both; a slot
/// beyond it (never handed out by a pool of that size) is never reported free.
pub fn freed_slots(
    old: impl IntoIterator<Item = u32>,
    new: impl IntoIterator<Item = u32>,
    marks: &mut [u64],
    out: &mut impl Store<u32>,
) -> Result<(), CarryError> {
    if !out.as_slice().is_empty() {
        return Err(CarryError::StoreNotEmpty);
    }
    let bit = |s: u32| ((s / 64) as usize, 1u64 << (s % 64));
    for s in new {
        if let Some(w) = marks.get_mut(bit(s).0) {
            *w |= bit(s).1;
        }
    }
    for s in old {
        let (i, b) = bit(s);
        // Marking it too reports a slot listed twice only once.
        if let Some(w) = marks.get_mut(i).filter(|w| **w & b == 0) {
            *w |= b;
            push(out, s)?;
        }
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

    /// [`plan_known`] gives what [`plan_ids`] gives for the same update: kept rules requested
    /// by their old ids, new ones by 0.
    #[test]
    fn plan_known_agrees_with_plan_ids() {
        let mut rng = crate::testrng::Rng(0x9e37_79b9_7f4a_7c15);
        fn shuffle<T>(rng: &mut crate::testrng::Rng, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, rng.index(i + 1));
            }
        }
        for _ in 0..2000 {
            let n_old = rng.below(20) as usize;
            // Old ids as a table gets them: increasing from 1, with gaps, in any order.
            let mut old: Vec<u64> = (1..=n_old as u64).map(|i| i * 3).collect();
            shuffle(&mut rng, &mut old);
            let next_id = 3 * n_old as u64 + 1 + rng.below(3) as u64;
            // Some old rules kept (each once), some new, in any order.
            let mut origins: Vec<Option<usize>> = (0..n_old).filter(|_| rng.below(3) != 0).map(Some).collect();
            for _ in 0..rng.below(5) {
                origins.push(None);
            }
            shuffle(&mut rng, &mut origins);
            let req: Vec<u64> = origins.iter().map(|o| o.map_or(0, |i| old[i])).collect();
            let (want, want_next) = plan(&old, &req, next_id).unwrap();
            let mut seen = std::vec![0u64; n_old / 64 + 1];
            let mut got = Vec::new();
            let next = plan_known(|i| old.get(i).copied(), origins.iter().copied(), next_id, &mut seen, &mut got).unwrap();
            assert_eq!((got, next), (want, want_next));
        }
        // An old rule claimed twice, or out of range, is refused.
        let mut seen = [0u64; 1];
        let ids = |i: usize| [1u64, 2].get(i).copied();
        assert!(plan_known(ids, [Some(0), Some(0)], 3, &mut seen, &mut Vec::new()).is_err());
        let mut seen = [0u64; 1];
        assert!(plan_known(ids, [Some(2)], 3, &mut seen, &mut Vec::new()).is_err());
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
        let slots = [0u32, 1, 2];
        let cfg = OldSlots { rules: &slots, chains: [].into_iter() };
        let chains = [NewChain { name: "INPUT", builtin: true, given: None }];
        let mut next = 10;
        let mut fresh = |_c: Counters| -> Result<u32, OutOfMemory> {
            next += 1;
            Ok(next)
        };
        for cap in 0..5 {
            let mut rs = Bounded { v: Vec::new(), cap };
            let r = assign_slots(&cfg, &p, [], chains, &mut fresh, &mut rs, &mut Vec::new());
            assert_eq!(r, if cap >= 4 { Ok(()) } else { Err(CarryError::OutOfMemory) });
        }
        let r = assign_slots(&cfg, &p, [], chains, &mut fresh, &mut Vec::new(), &mut Bounded { v: Vec::new(), cap: 0 });
        assert_eq!(r, Err(CarryError::OutOfMemory));
        let mut none = |_c: Counters| -> Result<u32, OutOfMemory> { Err(OutOfMemory) };
        let r = assign_slots(&cfg, &p, [], chains, &mut none, &mut Vec::new(), &mut Vec::new());
        assert_eq!(r, Err(CarryError::OutOfMemory), "a pool that cannot grow");
        let mut dirty = std::vec![1u32];
        let r = assign_slots(&cfg, &p, [], chains, &mut fresh, &mut dirty, &mut Vec::new());
        assert_eq!(r, Err(CarryError::StoreNotEmpty));
        let r = freed_slots([1], [], &mut [0], &mut dirty);
        assert_eq!(r, Err(CarryError::StoreNotEmpty));
        let r = freed_slots([1, 2], [], &mut [0], &mut Bounded { v: Vec::new(), cap: 1 });
        assert_eq!(r, Err(CarryError::OutOfMemory));
        assert_eq!(CarryError::OutOfMemory.errno(), 12);
    }

    fn builtin(name: &str) -> NewChain<'_> {
        NewChain { name, builtin: true, given: None }
    }

    fn user(name: &str) -> NewChain<'_> {
        NewChain { name, builtin: false, given: None }
    }

    /// [`assign_slots`] with `Vec`s and a pool handing out 100, 101, ... (recording the
    /// counters each started at).
    fn assign<'a>(
        old: &OldSlots<'a, impl Iterator<Item = (&'a str, u32)> + Clone>,
        p: &[Origin],
        given: &[Option<Counters>],
        chains: &[NewChain<'a>],
    ) -> (Vec<u32>, Vec<u32>, Vec<Counters>) {
        let mut started = Vec::new();
        let mut fresh = |c: Counters| -> Result<u32, OutOfMemory> {
            started.push(c);
            Ok(99 + started.len() as u32)
        };
        let (mut rs, mut cs) = (Vec::new(), Vec::new());
        assign_slots(old, p, given.iter().copied(), chains.iter().copied(), &mut fresh, &mut rs, &mut cs).unwrap();
        (rs, cs, started)
    }

    #[test]
    fn slots_kept_given_and_fresh() {
        // Old: rules 10, 11, 12 in slots 0, 1, 2; chains INPUT, FORWARD, OUTPUT in 3, 4, 5, and
        // u, which had counters given (slot 6).
        let old_chains = [("INPUT", 3u32), ("FORWARD", 4), ("OUTPUT", 5), ("u", 6)];
        let old = OldSlots { rules: &[0, 1, 2], chains: old_chains.iter().copied() };
        // New: rule 12 (kept, counts given), 10 (kept), a new rule, rule 11 deleted; chains
        // reordered, FORWARD with given counters, u renamed to v, a new user chain w.
        let (p, _) = plan(&[10, 11, 12], &[12, 10, 0], 13).unwrap();
        let chains = [
            builtin("OUTPUT"),
            NewChain { given: Some(c(9, 9)), ..builtin("FORWARD") },
            builtin("INPUT"),
            user("v"),
            NewChain { given: Some(c(8, 8)), ..user("w") },
        ];
        let (rs, cs, started) = assign(&old, &p, &[Some(c(42, 4200)), None, None], &chains);
        assert_eq!(rs, [100, 0, 101], "given: fresh; kept: its slot; new: fresh");
        assert_eq!(cs, [5, 102, 3, NO_SLOT, 103], "builtin by name; given fresh; user none unless given");
        assert_eq!(started, [c(42, 4200), c(0, 0), c(9, 9), c(8, 8)]);
        // Freed: rule 11's slot, rule 12's (its counters were replaced), FORWARD's and u's.
        let mut freed = Vec::new();
        let mut marks = [0u64; 2];
        let all_old = [0u32, 1, 2, 3, 4, 5, 6];
        freed_slots(all_old, rs.iter().chain(&cs).copied(), &mut marks, &mut freed).unwrap();
        assert_eq!(freed, [1, 2, 4, 6]);
    }

    #[test]
    fn user_chain_counters_not_carried_even_by_name() {
        let old = OldSlots { rules: &[], chains: [("INPUT", 0u32), ("u", 1)].into_iter() };
        let (_, cs, started) = assign(&old, &[], &[], &[builtin("INPUT"), user("u")]);
        assert_eq!(cs, [0, NO_SLOT]);
        assert!(started.is_empty());
    }

    #[test]
    fn short_or_missing_inputs_never_panic() {
        // Old slots shorter than the configuration (or NO_SLOT) and fewer given entries than
        // rules read as "no slot" and "not given": fresh slots at 0.
        let old = OldSlots { rules: &[7], chains: [("INPUT", NO_SLOT)].into_iter() };
        let (p, _) = plan(&[1, 2], &[2, 1, 0], 3).unwrap();
        let (rs, cs, started) = assign(&old, &p, &[Some(c(1, 1))], &[builtin("INPUT")]);
        assert_eq!(rs, [100, 7, 101]);
        assert_eq!(cs, [102]);
        assert_eq!(started, [c(1, 1), c(0, 0), c(0, 0)]);
        // Slots beyond the marks, NO_SLOT and doubles.
        let mut freed = Vec::new();
        freed_slots([3, 3, 64, NO_SLOT, 5], [5], &mut [0u64], &mut freed).unwrap();
        assert_eq!(freed, [3]);
        assert_eq!(sum(c(u64::MAX, 1), c(1, u64::MAX)), c(0, 0));
    }

    // ---- a table changed at random, as the kernel does it ----------------------------------

    use super::super::super::testrng::Rng;

    /// A rule of the model: its id, slot and a tag naming it for the ground truth.
    #[derive(Debug, Clone, Copy)]
    struct Rule {
        id: u64,
        slot: u32,
        tag: u32,
    }

    /// One table as `rust_nf/table.rs` keeps it: the configuration (rules and chains with
    /// their slots) and the pool (counters per slot, free slots).
    struct Table {
        next_id: u64,
        chains: Vec<(String, bool, u32)>,
        rules: Vec<Rule>,
        slots: Vec<Counters>,
        free: Vec<u32>,
    }

    impl Table {
        /// A change: ids and slots planned before publishing (an error leaves everything as
        /// it was); the old slots nothing uses are returned, to be freed after the packets
        /// still on the old version counted.
        fn replace(
            &mut self,
            chains: &[(String, bool, Option<Counters>)],
            rules: &[(Rule, Option<Counters>)],
        ) -> Result<Vec<u32>, CarryError> {
            let (mut scratch, mut p) = (Vec::new(), Vec::new());
            let next = plan_ids(
                self.rules.iter().map(|r| r.id),
                rules.iter().map(|r| r.0.id),
                self.next_id,
                &mut scratch,
                &mut p,
            )?;
            let old_rules: Vec<u32> = self.rules.iter().map(|r| r.slot).collect();
            let old = OldSlots { rules: &old_rules, chains: self.chains.iter().map(|c| (c.0.as_str(), c.2)) };
            let (mut free, mut slots) = (self.free.clone(), self.slots.clone());
            let mut fresh = |c: Counters| -> Result<u32, OutOfMemory> {
                let s = free.pop().unwrap_or_else(|| {
                    slots.push(Counters::default());
                    (slots.len() - 1) as u32
                });
                slots[s as usize] = c;
                Ok(s)
            };
            let (mut rs, mut cs) = (Vec::new(), Vec::new());
            assign_slots(
                &old,
                &p,
                rules.iter().map(|r| r.1),
                chains.iter().map(|(name, builtin, given)| NewChain { name, builtin: *builtin, given: *given }),
                &mut fresh,
                &mut rs,
                &mut cs,
            )?;
            let mut marks = std::vec![0u64; slots.len() / 64 + 1];
            let mut freed = Vec::new();
            let old_all = old_rules.iter().copied().chain(self.chains.iter().map(|c| c.2));
            freed_slots(old_all, rs.iter().chain(&cs).copied(), &mut marks, &mut freed)?;
            self.rules = rules
                .iter()
                .zip(&p)
                .zip(&rs)
                .map(|((r, o), &slot)| Rule { id: o.id(), slot, tag: r.0.tag })
                .collect();
            self.chains = chains.iter().zip(&cs).map(|((n, b, _), &s)| (n.clone(), *b, s)).collect();
            self.next_id = next;
            self.free = free;
            self.slots = slots;
            Ok(freed)
        }

        fn count(&mut self, slot: u32, bytes: u64) {
            self.slots[slot as usize] = sum(self.slots[slot as usize], c(1, bytes));
        }

        fn total(&self, slot: u32) -> Counters {
            self.slots.get(slot as usize).copied().unwrap_or_default()
        }
    }

    /// Random changes (inserts, deletes, moves, restores with counters, duplicate ids, ids
    /// of rules deleted meanwhile) with random traffic between them, also on the version being
    /// replaced after the switch: every surviving rule shows exactly the packets and bytes it
    /// ever counted, no more, no less; builtin policies likewise; ids stay unique, two live
    /// rules or chains never share a slot, and a refused change changes nothing.
    #[test]
    fn random_changes_never_lose_or_double_count() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        // How often each case came up, to know the run covered them.
        let (mut refused, mut carried, mut given_won, mut late, mut reused) = (0, 0, 0, 0, 0);
        let builtins = ["INPUT", "FORWARD", "OUTPUT"];
        for run in 0..40 {
            // Some runs start near the end of the id space.
            let next_id = if run % 4 == 3 { u64::MAX - rng.index(30) as u64 } else { 1 };
            let mut t = Table { next_id, chains: Vec::new(), rules: Vec::new(), slots: Vec::new(), free: Vec::new() };
            // Ground truth: total per rule tag and per builtin chain name.
            let mut truth: BTreeMap<u32, Counters> = BTreeMap::new();
            let mut policy_truth: BTreeMap<String, Counters> = BTreeMap::new();
            let mut next_tag = 0u32;
            for _step in 0..60 {
                // Traffic on the published version.
                // (`late`: on the replaced version, whose chains count only where they kept
                // their slot.)
                let traffic = |t: &mut Table, rng: &mut Rng, truth: &mut BTreeMap<u32, Counters>, policy_truth: &mut BTreeMap<String, Counters>, rules: &[Rule], chains: &[(String, bool, u32)], late: bool| {
                    let mut n = 0;
                    for _ in 0..rng.index(40) {
                        let bytes = 40 + rng.index(1460) as u64;
                        if !rules.is_empty() && rng.index(4) != 0 {
                            let r = rules[rng.index(rules.len())];
                            t.count(r.slot, bytes);
                            if let Some(e) = truth.get_mut(&r.tag) {
                                *e = sum(*e, c(1, bytes));
                            }
                            n += 1;
                        } else if !chains.is_empty() {
                            let k = rng.index(chains.len());
                            if chains[k].1 {
                                t.count(chains[k].2, bytes);
                                if !late || policy_truth.contains_key(&chains[k].0) {
                                    let e = policy_truth.entry(chains[k].0.clone()).or_default();
                                    *e = sum(*e, c(1, bytes));
                                }
                            }
                        }
                    }
                    n
                };
                let (rules_now, chains_now) = (t.rules.clone(), t.chains.clone());
                traffic(&mut t, &mut rng, &mut truth, &mut policy_truth, &rules_now, &chains_now, false);
                // The request: the current rules (as read), edited.
                let mut rules: Vec<(Rule, Option<Counters>)> = t.rules.iter().map(|r| (*r, None)).collect();
                for _ in 0..rng.index(4) {
                    match rng.index(5) {
                        0 | 1 => {
                            let at = rng.index(rules.len() + 1);
                            next_tag += 1;
                            rules.insert(at, (Rule { id: 0, slot: NO_SLOT, tag: next_tag }, None));
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
                        rules.push((Rule { id, slot: NO_SLOT, tag: 0 }, None));
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

                let before = (t.next_id, t.rules.len(), t.slots.clone(), t.free.clone());
                let old_ids: Vec<u64> = t.rules.iter().map(|r| r.id).collect();
                let (old_rules, old_chains) = (t.rules.clone(), t.chains.clone());
                let free_before = t.free.len();
                let freed = match t.replace(&chains, &rules) {
                    Err(CarryError::DuplicateId { .. }) => {
                        assert!(duplicate, "refused without a duplicate");
                        assert_eq!((t.next_id, t.rules.len(), t.slots.clone(), t.free.clone()), before);
                        refused += 1;
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                    Ok(f) => {
                        assert!(!duplicate);
                        f
                    }
                };
                reused += usize::from(t.free.len() < free_before);
                // Ground truth after the change: a rule continues its old self only when its
                // id was known; a stale id makes it a new rule; given counters replace.
                let mut kept = BTreeMap::new();
                for (r, given) in rules.iter() {
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
                    kept.insert(r.tag, total);
                }
                let mut policy_kept = BTreeMap::new();
                for (name, builtin, given) in &chains {
                    if *builtin {
                        let want = given.unwrap_or_else(|| policy_truth.get(name).copied().unwrap_or_default());
                        policy_kept.insert(name.clone(), want);
                    }
                }
                // Packets still on the old version after the switch: they count into the old
                // slots, which the rules that survived with their counters still own.
                let old_tags: BTreeMap<u32, Counters> = old_rules
                    .iter()
                    .filter_map(|o| {
                        let same = t.rules.iter().any(|n| n.slot == o.slot);
                        same.then(|| (o.tag, kept.get(&o.tag).copied().unwrap_or_default()))
                    })
                    .collect();
                let mut late_truth = old_tags;
                let mut late_policy: BTreeMap<String, Counters> = old_chains
                    .iter()
                    .filter(|c| c.1 && t.chains.iter().any(|n| n.2 == c.2))
                    .map(|c| (c.0.clone(), policy_kept.get(&c.0).copied().unwrap_or_default()))
                    .collect();
                late += traffic(&mut t, &mut rng, &mut late_truth, &mut late_policy, &old_rules, &old_chains, true);
                for (tag, v) in late_truth {
                    kept.insert(tag, v);
                }
                for (name, v) in late_policy {
                    if policy_kept.contains_key(&name) {
                        policy_kept.insert(name, v);
                    }
                }
                // The grace period is over: freed slots go back to the pool.
                t.free.extend(freed);
                for (i, r) in t.rules.iter().enumerate() {
                    assert_eq!(t.total(r.slot), kept[&r.tag], "rule {i} (tag {})", r.tag);
                }
                truth = kept;
                for (k, (name, builtin, s)) in t.chains.iter().enumerate() {
                    if !builtin {
                        assert_eq!(t.total(*s), chains[k].2.unwrap_or_default(), "user chain {name}");
                        continue;
                    }
                    assert_eq!(t.total(*s), policy_kept[name], "policy of {name}");
                }
                policy_truth = policy_kept;
                // Ids unique and non-zero; live slots distinct and never free.
                let mut ids: Vec<u64> = t.rules.iter().map(|r| r.id).collect();
                assert!(ids.iter().all(|&id| id != 0));
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), t.rules.len());
                let mut live: Vec<u32> =
                    t.rules.iter().map(|r| r.slot).chain(t.chains.iter().map(|c| c.2)).filter(|&s| s != NO_SLOT).collect();
                live.sort_unstable();
                let n = live.len();
                live.dedup();
                assert_eq!(live.len(), n, "two owners of one slot");
                assert!(live.iter().all(|s| !t.free.contains(s)), "a live slot is free");
            }
        }
        assert!(
            refused > 20 && carried > 1000 && given_won > 100 && late > 1000 && reused > 100,
            "{refused} {carried} {given_won} {late} {reused}"
        );
    }
}
