// SPDX-License-Identifier: GPL-2.0

//! Changing a compiled ruleset without compiling it again: a [`Delta`] over it marks deleted
//! rules dead, holds rules added (the tail: appended at the end of their chains or inserted
//! before a rule) and policies set.
//! A change that only does that costs what it changes (and the size of the delta), not the
//! size of the ruleset: the compiled rules, their matches and the classifier are shared by the
//! versions before and after it.
//!
//! [`extend`] makes the delta of the next version from the one before. It takes only the
//! changes a delta can express exactly, so that evaluating the ruleset with it is evaluating
//! the ruleset compiled afresh (the differential test `delta_tests` checks that):
//! - an added rule has no match with state (`limit`, `nth`, `recent`, `connlimit`: their
//!   state slots are numbered by the compiler); it is checked as the compiler checks it, where
//!   it goes, with the hooks that reach that place (an unconditional ACCEPT, DROP or RETURN
//!   inserted before other rules leaves them reached by fewer hooks than the compiled
//!   ruleset says: the reach is stale, as below);
//! - an added jump or goto changes neither which hooks reach which chain nor how deep jumps
//!   go, so it cannot make a loop either: the hooks that reach it already reach its target,
//!   and the target's depth is below its chain's (a path back would need the opposite);
//! - a deleted rule is no unconditional ACCEPT, DROP or RETURN that a live rule of its chain
//!   follows (that rule would become reachable from more hooks, which could make it invalid);
//!   a deleted jump or goto that no live rule near it covers (the same target, from at least
//!   its hooks, once the whole change is in: a chain rewrite deletes its jumps and appends them
//!   again) may leave chains reached by fewer hooks, or less deep, than the compiled ruleset
//!   says: from then on ([`Delta::stale_reach`]) an added rule that fails its check, or
//!   that jumps, needs the table compiled (a check passed with more hooks than the exact ones
//!   passes with these), and so does the change itself if it added a jump;
//! - at most [`MAX_TAIL`] added rules and [`max_dead`] deleted ones in all.
//!
//! Anything else is [`DeltaError::Rebuild`]: the caller compiles the whole configuration, as
//! before (which also starts a new, empty delta).

use super::compile::{check_rule, translate, ChainDef, CompileError, RuleIn};
use super::compiled::{CMatch, CRule, CTarget, Delta, OutOfMemory, Ruleset, Store};
use super::index::CHot;
use super::rule::{Policy, TableId};

/// Most rules a delta may add (all chains together) before the table is compiled again: a
/// chain's added rules are walked one by one.
pub const MAX_TAIL: u32 = 64;

/// Most rules a delta may mark dead before the table is compiled again, for `compiled` rules:
/// an eighth of them, at least 64.
pub fn max_dead(compiled: u32) -> u32 {
    (compiled / 8).max(64)
}

/// One change.
#[derive(Debug, Clone, Copy)]
pub enum Change<'r> {
    /// `rule` added to chain `chain`, before the live rule at position `before` of that chain
    /// (`None`: at its end), where it is rule number `number` (1-based, for errors).
    Add {
        /// The chain.
        chain: u32,
        /// The rule it goes before.
        before: Option<u32>,
        /// Its number in the chain.
        number: u32,
        /// The rule (by reference: a specification is large, the kernel's stack small).
        rule: &'r RuleIn<'r>,
    },
    /// The rule at this position (a compiled rule or an appended one) deleted.
    Delete(u32),
    /// The policy of builtin chain `chain` set.
    Policy {
        /// The chain.
        chain: u32,
        /// Its policy.
        policy: Policy,
    },
}

/// Why [`extend`] did not make a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    /// A change a delta does not express: compile the table.
    Rebuild,
    /// The change is invalid (as compiling would say).
    Invalid(CompileError),
    /// A store had no room.
    OutOfMemory,
}

impl From<OutOfMemory> for DeltaError {
    fn from(_: OutOfMemory) -> Self {
        DeltaError::OutOfMemory
    }
}

impl From<CompileError> for DeltaError {
    fn from(e: CompileError) -> Self {
        match e {
            CompileError::OutOfMemory => DeltaError::OutOfMemory,
            e => DeltaError::Invalid(e),
        }
    }
}

/// The arrays of a delta (see [`Delta`]), to be filled by [`extend`] (empty).
#[derive(Debug, Default)]
pub struct DeltaOutput<D, F, R, M, H, P> {
    /// Dead bits.
    pub dead: D,
    /// Per chain, the place in `order` of its first tail rule.
    pub tail_first: F,
    /// Tail rules.
    pub rules: R,
    /// Their anchors.
    pub anchors: F,
    /// The tail in chain order.
    pub order: F,
    /// Their matches.
    pub matches: M,
    /// Their compact forms.
    pub hot: H,
    /// Per chain, its policy if set.
    pub policies: P,
    /// See [`Delta::stale_reach`].
    pub stale_reach: bool,
}

impl<D, F, R, M, H, P> DeltaOutput<D, F, R, M, H, P>
where
    D: Store<u64>,
    F: Store<u32>,
    R: Store<CRule>,
    M: Store<CMatch>,
    H: Store<CHot>,
    P: Store<Option<Policy>>,
{
    /// The delta view over these arrays.
    pub fn delta(&self) -> Delta<'_> {
        Delta {
            dead: self.dead.as_slice(),
            tail_first: self.tail_first.as_slice(),
            rules: self.rules.as_slice(),
            anchors: self.anchors.as_slice(),
            order: self.order.as_slice(),
            matches: self.matches.as_slice(),
            hot: self.hot.as_slice(),
            policies: self.policies.as_slice(),
            stale_reach: self.stale_reach,
        }
    }
}

/// What a delta holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeltaSummary {
    /// Rules added (dead ones too).
    pub appended: u32,
    /// Rules dead.
    pub dead: u32,
    /// Some live added rule works on connections (see [`CMatch::uses_conntrack`]).
    pub uses_conntrack: bool,
    /// Some live added rule has a LOG target.
    pub logs: bool,
}

/// The delta of `rs` (a compiled table with the delta of its current version) after
/// `changes`, in order, into `out` (empty). `defs` are the chains `rs` was compiled from, `hz`
/// the kernel's `HZ` (as for [`super::compile::compile`]).
pub fn extend<'r, D, F, R, M, H, P>(
    table: TableId,
    defs: &[ChainDef<'_>],
    rs: &Ruleset<'_>,
    changes: impl IntoIterator<Item = Change<'r>>,
    hz: u32,
    out: &mut DeltaOutput<D, F, R, M, H, P>,
) -> Result<DeltaSummary, DeltaError>
where
    D: Store<u64>,
    F: Store<u32>,
    R: Store<CRule>,
    M: Store<CMatch>,
    H: Store<CHot>,
    P: Store<Option<Policy>>,
{
    let old = &rs.delta;
    let compiled = u32::try_from(rs.rules.len()).map_err(|_| DeltaError::Rebuild)?;
    let nchains = rs.chains.len();
    // Room for every position a delta can have: the compiled rules and a full tail.
    let words = (compiled as usize + MAX_TAIL as usize).div_ceil(64);
    for i in 0..words {
        out.dead.push(old.dead.get(i).copied().unwrap_or(0))?;
    }
    for c in 0..nchains {
        out.tail_first.push(u32::MAX)?;
        out.policies.push(old.policies.get(c).copied().flatten())?;
    }
    if old.order.len() != old.rules.len() {
        return Err(DeltaError::Rebuild);
    }
    for (t, r) in old.rules.iter().enumerate() {
        let matches = old.rule_matches(r);
        let match_start = u32::try_from(out.matches.as_slice().len()).map_err(|_| DeltaError::Rebuild)?;
        for m in matches {
            out.matches.push(*m)?;
        }
        out.rules.push(CRule { match_start, ..*r })?;
        out.anchors.push(*old.anchors.get(t).ok_or(DeltaError::Rebuild)?)?;
    }
    for &t in old.order {
        out.order.push(t)?;
    }
    for i in 0..old.rules.len() {
        let h = old.hot.get(i).copied().or_else(|| old.rules.get(i).map(CHot::of)).unwrap_or_default();
        out.hot.push(h)?;
    }
    out.stale_reach = old.stale_reach;

    // Deleted jumps that no rule near them still covers, checked again once the whole change
    // is in: a chain rewrite (kube-proxy's partial syncs) deletes its jumps and appends them
    // again. Until then an appended rule that fails its check needs the table compiled.
    let mut uncovered = [0u32; MAX_UNCOVERED];
    let mut pending = 0usize;
    let mut jumped = false;
    let mut changes = changes.into_iter().peekable();
    while let Some(change) = changes.next() {
        match change {
            Change::Add { chain, before, number, rule } => {
                // A rule that fails its checks while a later change of the batch may still
                // delete it (iptables-restore commits only the table the batch leaves), or
                // while a deleted jump is not known to be covered, needs the table compiled.
                let provisional = pending != 0 || changes.peek().is_some();
                jumped |= add(table, defs, rs, compiled, Place { chain, before, number }, rule, hz, provisional, out)?;
            }
            Change::Delete(pos) => {
                if pos >= compiled.saturating_add(out.rules.as_slice().len() as u32) || is_dead(out, pos) {
                    return Err(DeltaError::Rebuild);
                }
                let r = match pos.checked_sub(compiled) {
                    None => rs.rules.get(pos as usize),
                    Some(t) => out.rules.as_slice().get(t as usize),
                };
                let Some(&r) = r else { return Err(DeltaError::Rebuild) };
                if is_terminal(&r) && live_after(rs, compiled, out, pos, r.chain) {
                    return Err(DeltaError::Rebuild);
                }
                if matches!(r.target, CTarget::Jump(_) | CTarget::Goto(_)) && !covered(rs, compiled, out, pos, &r) {
                    let slot = uncovered.get_mut(pending).ok_or(DeltaError::Rebuild)?;
                    *slot = pos;
                    pending += 1;
                }
                if let Some(w) = out.dead.as_mut_slice().get_mut((pos / 64) as usize) {
                    *w |= 1 << (pos % 64);
                }
            }
            Change::Policy { chain, policy } => {
                let builtin = rs.chains.get(chain as usize).is_some_and(|c| c.policy.is_some());
                match out.policies.as_mut_slice().get_mut(chain as usize) {
                    Some(p) if builtin => *p = Some(policy),
                    _ => return Err(DeltaError::Rebuild),
                }
            }
        }
    }

    // A deleted jump still uncovered may leave its target reached by fewer hooks or less
    // deep: from now on the reach is a bound (`stale_reach`), and a jump this change appended,
    // checked against the reach before, needs the table compiled.
    for &pos in uncovered.get(..pending).unwrap_or(&[]) {
        let r = match pos.checked_sub(compiled) {
            None => rs.rules.get(pos as usize).copied(),
            Some(t) => out.rules.as_slice().get(t as usize).copied(),
        };
        if r.is_none_or(|r| !covered(rs, compiled, out, pos, &r)) {
            if jumped {
                return Err(DeltaError::Rebuild);
            }
            out.stale_reach = true;
        }
    }
    let dead = out.dead.as_slice().iter().map(|w| w.count_ones()).sum::<u32>();
    if dead > max_dead(compiled) {
        return Err(DeltaError::Rebuild);
    }
    // Each chain's first place in the order.
    for (i, &t) in out.order.as_slice().iter().enumerate() {
        let chain = out.rules.as_slice().get(t as usize).map_or(u32::MAX, |r| r.chain);
        if let Some(f) = out.tail_first.as_mut_slice().get_mut(chain as usize) {
            if *f == u32::MAX {
                *f = i as u32;
            }
        }
    }
    let d = out.delta();
    // The walk's invariants, checked and not only kept (a walk of a delta that broke them
    // could go round without a goto, which its loop guard counts).
    if !well_formed(rs, &d) {
        return Err(DeltaError::Rebuild);
    }
    let live = d.rules.iter().enumerate().filter(|&(i, _)| !d.is_dead(compiled.saturating_add(i as u32)));
    let (mut uses_conntrack, mut logs) = (false, false);
    for (_, r) in live {
        uses_conntrack |= r.target.uses_conntrack() || d.rule_matches(r).iter().any(CMatch::uses_conntrack);
        logs |= matches!(r.target, CTarget::Log(_));
    }
    Ok(DeltaSummary { appended: d.rules.len() as u32, dead, uses_conntrack, logs })
}

/// Whether a delta's tail keeps what the walk relies on: each tail rule once in the order,
/// each chain's tail rules together and first at the chain's `tail_first`, their anchors
/// inside the chain and never going down.
fn well_formed(rs: &Ruleset<'_>, d: &Delta<'_>) -> bool {
    let n = d.rules.len();
    if n > MAX_TAIL as usize || d.order.len() != n || d.anchors.len() != n {
        return false;
    }
    let mut seen = 0u64;
    let mut prev: Option<(u32, u32)> = None;
    for (i, &t) in d.order.iter().enumerate() {
        let (Some(r), Some(&anchor)) = (d.rules.get(t as usize), d.anchors.get(t as usize)) else { return false };
        let bit = 1u64.checked_shl(t).unwrap_or(0);
        if bit == 0 || seen & bit != 0 {
            return false;
        }
        seen |= bit;
        let Some(c) = rs.chains.get(r.chain as usize) else { return false };
        if anchor < c.first || anchor > c.first.saturating_add(c.count) {
            return false;
        }
        let ok = match prev {
            Some((chain, before)) if chain == r.chain => anchor >= before,
            _ => d.tail_first.get(r.chain as usize) == Some(&(i as u32)),
        };
        if !ok {
            return false;
        }
        prev = Some((r.chain, anchor));
    }
    true
}

fn is_dead<D: Store<u64>, F, R, M, H, P>(out: &DeltaOutput<D, F, R, M, H, P>, pos: u32) -> bool {
    out.dead.as_slice().get((pos / 64) as usize).is_some_and(|w| w >> (pos % 64) & 1 != 0)
}

/// How far from a deleted jump [`covered`] looks for another one like it.
const NEARBY: u32 = 64;

/// Most deleted jumps one change may leave uncovered until its end (more: the table is
/// compiled).
const MAX_UNCOVERED: usize = 64;

/// Whether deleting the jump or goto `r` at position `pos` leaves its target reached by the
/// same hooks, as deep: a live rule of the same chain near it (kube-proxy's dispatch has
/// thousands side by side) jumps to the same chain from at least the same hooks (a goto is
/// covered by a jump or a goto, a jump only by a jump).
fn covered<D: Store<u64>, F: Store<u32>, R: Store<CRule>, M, H, P>(
    rs: &Ruleset<'_>,
    compiled: u32,
    out: &DeltaOutput<D, F, R, M, H, P>,
    pos: u32,
    r: &CRule,
) -> bool {
    let Some(c) = rs.chains.get(r.chain as usize) else { return false };
    let like = |q: &CRule, at: u32| {
        let same = match (r.target, q.target) {
            (CTarget::Jump(a), CTarget::Jump(b)) | (CTarget::Goto(a), CTarget::Jump(b) | CTarget::Goto(b)) => a == b,
            _ => false,
        };
        at != pos && same && q.chain == r.chain && q.hook_mask & r.hook_mask == r.hook_mask && !is_dead(out, at)
    };
    let end = c.first.saturating_add(c.count);
    // Compiled rules around it, or (for a tail rule) around its anchor.
    let around = match pos.checked_sub(compiled) {
        None => pos,
        Some(t) => out.anchors.as_slice().get(t as usize).copied().unwrap_or(end),
    }
    .min(end);
    let lo = around.saturating_sub(NEARBY).max(c.first);
    let hi = around.saturating_add(NEARBY).min(end);
    let base = (lo..hi).any(|p| rs.rules.get(p as usize).is_some_and(|q| like(q, p)));
    base || out.rules.as_slice().iter().enumerate().any(|(i, q)| like(q, compiled.saturating_add(i as u32)))
}

/// An unconditional ACCEPT, DROP or RETURN: the compiler's walk of its chain stops there.
fn is_terminal(r: &CRule) -> bool {
    matches!(r.target, CTarget::Accept | CTarget::Drop | CTarget::Return) && r.unconditional
}

/// Whether a live rule of chain `chain` comes after position `pos` (a compiled rule or a
/// tail rule) in the chain's order. Stops at the first one found: costs the dead rules it
/// passes, which are at most [`max_dead`], and the chain's tail rules.
fn live_after<D: Store<u64>, F: Store<u32>, R: Store<CRule>, M: Store<CMatch>, H: Store<CHot>, P: Store<Option<Policy>>>(
    rs: &Ruleset<'_>,
    compiled: u32,
    out: &DeltaOutput<D, F, R, M, H, P>,
    pos: u32,
    chain: u32,
) -> bool {
    let Some(c) = rs.chains.get(chain as usize) else { return true };
    let end = c.first.saturating_add(c.count);
    let d = out.delta();
    let group = current_group(&d, chain);
    // The compiled rules and the places in the order that come after it.
    let (from, later) = match pos.checked_sub(compiled) {
        None => (pos.saturating_add(1), group.clone().filter(|&i| d.ordered(i, chain).is_some_and(|(_, a)| a > pos)).min()),
        Some(t) => {
            let Some(rank) = d.rank(t) else { return true };
            (d.anchors.get(t as usize).copied().unwrap_or(end), Some(rank.saturating_add(1)))
        }
    };
    if (from..end).any(|p| !is_dead(out, p)) {
        return true;
    }
    let later = later.unwrap_or(group.end);
    (later..group.end).any(|i| d.ordered(i, chain).is_some_and(|(t, _)| !is_dead(out, compiled.saturating_add(t))))
}

/// Where a rule is added: see [`Change::Add`].
#[derive(Clone, Copy)]
struct Place {
    chain: u32,
    before: Option<u32>,
    number: u32,
}

/// Adds one rule (see [`extend`]); whether it jumps. `provisional`: a failed check is not
/// final (a later change may delete the rule, or a jump this change deleted is not known to
/// be covered yet, so the reach may be less than the compiled ruleset says).
#[allow(clippy::too_many_arguments)]
fn add<'r, D, F, R, M, H, P>(
    table: TableId,
    defs: &[ChainDef<'_>],
    rs: &Ruleset<'_>,
    compiled: u32,
    place: Place,
    rule: &RuleIn<'r>,
    hz: u32,
    provisional: bool,
    out: &mut DeltaOutput<D, F, R, M, H, P>,
) -> Result<bool, DeltaError>
where
    D: Store<u64>,
    F: Store<u32>,
    R: Store<CRule>,
    M: Store<CMatch>,
    H: Store<CHot>,
    P: Store<Option<Policy>>,
{
    let Place { chain, before, number } = place;
    let tail = out.rules.as_slice().len() as u32;
    if tail >= MAX_TAIL {
        return Err(DeltaError::Rebuild);
    }
    let c = *rs.chains.get(chain as usize).ok_or(DeltaError::Rebuild)?;
    let end = c.first.saturating_add(c.count);
    let index = c.first.saturating_add(number.saturating_sub(1));
    let at = || super::compile::RulePos {
        chain: super::compile::ChainName::new(defs.get(chain as usize).map_or("", |d| d.name)),
        rule: number,
        index,
    };
    // Where it goes: its anchor, its place in the order (the order's chain groups are kept
    // up to date as rules are added: the first places are set at the end), and the hooks
    // that reach it: those that reached the rule it goes before, or at the chain's end, those
    // of its last live rule (none after an unconditional ACCEPT, DROP or RETURN, as the
    // compiler's walk marks them; all of the chain's when it has no live rule).
    let d = out.delta();
    let group = current_group(&d, chain);
    let (anchor, rank, hook_mask) = match before {
        None => (end, group.end, reach_end(rs, compiled, out, chain, group.clone())),
        Some(p) if p < compiled => {
            let r = rs.rules.get(p as usize).filter(|_| p >= c.first && p < end && !is_dead(out, p)).ok_or(DeltaError::Rebuild)?;
            let rank = group.clone().find(|&i| d.ordered(i, chain).is_some_and(|(_, a)| a > p)).unwrap_or(group.end);
            (p, rank, r.hook_mask)
        }
        Some(p) => {
            let t = p.saturating_sub(compiled);
            let r = d.rules.get(t as usize).filter(|r| r.chain == chain && !is_dead(out, p)).ok_or(DeltaError::Rebuild)?;
            let rank = d.rank(t).ok_or(DeltaError::Rebuild)?;
            (d.anchors.get(t as usize).copied().ok_or(DeltaError::Rebuild)?, rank, r.hook_mask)
        }
    };
    // (A match with state is refused below before it gets here; one this list misses is
    // compiled with the table all the same.)
    let mut needs_state = false;
    let mut no_state = || {
        needs_state = true;
        Err(CompileError::OutOfMemory)
    };
    let mut jump = |name: &str| super::compile::user_chain(rs.chains, defs, name, at);
    let stateful = match rule {
        RuleIn::Spec(s) => s.matches().any(|m| {
            matches!(
                m,
                super::rule::Match::Limit(_)
                    | super::rule::Match::Statistic(super::rule::StatisticMatch::Nth { .. })
                    | super::rule::Match::Recent(_)
                    | super::rule::Match::Connlimit(_)
                    | super::rule::Match::Quota(_)
            )
        }),
        RuleIn::Compiled { matches, .. } => matches.iter().any(|m| m.state().is_some()),
    };
    if stateful {
        return Err(DeltaError::Rebuild);
    }
    let translated = translate(rule, chain, &mut out.matches, &mut no_state, &mut jump, &at);
    if needs_state {
        return Err(DeltaError::Rebuild);
    }
    let mut r = translated?;
    r.hook_mask = hook_mask;
    if let CTarget::Jump(t) | CTarget::Goto(t) = r.target {
        // The edge must change no chain's hooks nor depths (and so cannot close a loop).
        let target = rs.chains.get(t as usize).ok_or(DeltaError::Rebuild)?;
        let same_reach = hook_mask & !target.hook_mask == 0 && target.depth.saturating_add(1) <= c.depth;
        if out.stale_reach || (hook_mask != 0 && !same_reach) {
            return Err(DeltaError::Rebuild);
        }
    }
    match check_rule(table, rs.chains, defs, out.matches.as_slice(), &r, index, hz) {
        // Checked with more hooks than may reach it now, or not the batch's last word: only
        // compiling tells.
        Err(_) if out.stale_reach || provisional => return Err(DeltaError::Rebuild),
        other => other?,
    }
    // The rules after an unconditional verdict are reached by fewer hooks than they say.
    if is_terminal(&r) && before.is_some() {
        out.stale_reach = true;
    }
    out.rules.push(r)?;
    out.hot.push(CHot::of(&r))?;
    out.anchors.push(anchor)?;
    out.order.push(tail)?;
    if let Some(o) = out.order.as_mut_slice().get_mut(rank as usize..) {
        o.rotate_right(1);
    }
    Ok(matches!(r.target, CTarget::Jump(_) | CTarget::Goto(_)))
}

/// The places in the order of chain `chain`'s tail rules while a change adds rules (when the
/// first places are not set yet): the chain's rules are side by side; none: an empty range at
/// the order's end.
fn current_group(d: &Delta<'_>, chain: u32) -> core::ops::Range<u32> {
    let of = |t: &u32| d.rules.get(*t as usize).is_some_and(|r| r.chain == chain);
    let Some(first) = d.order.iter().position(of) else {
        let n = d.order.len() as u32;
        return n..n;
    };
    let len = d.order.get(first..).unwrap_or(&[]).iter().take_while(|t| of(t)).count();
    first as u32..(first + len) as u32
}

/// The hooks that reach the end of chain `chain`: see [`add`]. Walks the chain's order back
/// from its end (its tail rules `group`, anchored among its compiled rules).
fn reach_end<D: Store<u64>, F: Store<u32>, R: Store<CRule>, M: Store<CMatch>, H: Store<CHot>, P: Store<Option<Policy>>>(
    rs: &Ruleset<'_>,
    compiled: u32,
    out: &DeltaOutput<D, F, R, M, H, P>,
    chain: u32,
    group: core::ops::Range<u32>,
) -> u8 {
    let reach = |r: &CRule| if is_terminal(r) { 0 } else { r.hook_mask };
    let Some(c) = rs.chains.get(chain as usize) else { return 0 };
    let d = out.delta();
    let mut tails = group.rev().filter_map(|i| d.ordered(i, chain)).peekable();
    let mut p = c.first.saturating_add(c.count);
    loop {
        let next_tail = tails.peek().copied();
        match next_tail {
            // A tail rule anchored past the compiled rules left comes first (going back).
            Some((t, a)) if p <= c.first || a >= p => {
                tails.next();
                if !is_dead(out, compiled.saturating_add(t)) {
                    return d.rules.get(t as usize).map_or(0, reach);
                }
            }
            _ if p > c.first => {
                p -= 1;
                if !is_dead(out, p) {
                    return rs.rules.get(p as usize).map_or(0, reach);
                }
            }
            _ => return c.hook_mask,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::compile::tests::build;
    use super::super::compiled::Ruleset;
    use super::super::rule::{AddrTypeMatch, Match, RuleSpec, Target};
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    type Out = DeltaOutput<Vec<u64>, Vec<u32>, Vec<CRule>, Vec<CMatch>, Vec<CHot>, Vec<Option<Policy>>>;

    const MANGLE: [(&str, Policy); 5] = [
        ("PREROUTING", Policy::Accept),
        ("INPUT", Policy::Accept),
        ("FORWARD", Policy::Accept),
        ("OUTPUT", Policy::Accept),
        ("POSTROUTING", Policy::Accept),
    ];

    fn defs() -> Vec<ChainDef<'static>> {
        let mut d: Vec<ChainDef<'static>> = MANGLE.iter().map(|&(name, p)| ChainDef { name, policy: Some(p) }).collect();
        d.push(ChainDef { name: "A", policy: None });
        d
    }

    fn out_iface_limit() -> RuleSpec<'static> {
        let mut r = RuleSpec::default();
        r.push_match(Match::AddrType(AddrTypeMatch {
            dst: super::super::rule::addrtype::LOCAL,
            limit_iface_out: true,
            ..Default::default()
        }))
        .unwrap();
        r
    }

    fn append(rs: &Ruleset<'_>, chain: u32, number: u32, spec: RuleSpec<'static>) -> Result<Out, DeltaError> {
        let mut out = Out::default();
        let rule = RuleIn::Spec(spec);
        let change = Change::Add { chain, before: None, number, rule: &rule };
        extend(TableId::Mangle, &defs(), rs, [change], 1000, &mut out).map(|_| out)
    }

    /// The walk's invariants hold for what `extend` makes, and a tail that breaks them is
    /// seen: anchors going down, a rule twice in the order, an anchor outside its chain.
    #[test]
    fn a_malformed_tail_is_not_well_formed() {
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("A", RuleSpec::default()), ("A", RuleSpec::default())]).unwrap();
        let rs = o.ruleset(h);
        let first = rs.chains[5].first;
        let rule = RuleIn::Spec(RuleSpec::default());
        let changes = [
            Change::Add { chain: 5, before: Some(first), number: 1, rule: &rule },
            Change::Add { chain: 5, before: Some(first + 1), number: 3, rule: &rule },
        ];
        let mut out = Out::default();
        extend(TableId::Mangle, &defs(), &rs, changes, 1000, &mut out).unwrap();
        assert!(well_formed(&rs, &out.delta()));
        let mut down = std::mem::take(&mut out);
        down.anchors.swap(0, 1);
        assert!(!well_formed(&rs, &down.delta()), "anchors going down");
        let mut twice = std::mem::take(&mut down);
        twice.anchors.swap(0, 1);
        twice.order[1] = twice.order[0];
        assert!(!well_formed(&rs, &twice.delta()), "a rule twice");
        let mut outside = std::mem::take(&mut twice);
        outside.order[1] = 1 - outside.order[0];
        outside.anchors[1] = first + 99;
        assert!(!well_formed(&rs, &outside.delta()), "an anchor outside the chain");
    }

    /// An appended rule is checked with the hooks that reach the end of its chain, as the
    /// compiler checks it, with the compiler's message.
    #[test]
    fn appended_rules_are_checked_as_compiled_ones() {
        let jump = RuleSpec { target: Target::Jump("A"), ..Default::default() };
        let drop = RuleSpec { target: Target::Drop, ..Default::default() };
        // A is reached from PREROUTING: an output interface limitation is refused.
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("PREROUTING", jump), ("FORWARD", jump)]).unwrap();
        let e = append(&o.ruleset(h), 5, 1, out_iface_limit()).unwrap_err();
        let DeltaError::Invalid(e) = e else { panic!("{e:?}") };
        assert_eq!(e.to_string(), "chain `A' rule 1: addrtype match: output interface limitation not valid in PREROUTING and INPUT");
        // Reached from FORWARD only: taken.
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump)]).unwrap();
        append(&o.ruleset(h), 5, 1, out_iface_limit()).unwrap();
        // After an unconditional DROP nothing reaches it (the compiler takes it too).
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("PREROUTING", jump), ("A", drop)]).unwrap();
        append(&o.ruleset(h), 5, 2, out_iface_limit()).unwrap();
        build(TableId::Mangle, &MANGLE, &["A"], &[("PREROUTING", jump), ("A", drop), ("A", out_iface_limit())]).unwrap();
    }

    /// An inserted rule is checked with the hooks that reach the rule it goes before; an
    /// unconditional verdict inserted before rules leaves them reached by fewer hooks than
    /// they say (stale).
    #[test]
    fn inserted_rules_are_checked_where_they_go() {
        let drop = RuleSpec { target: Target::Drop, ..Default::default() };
        let cond = RuleSpec { target: Target::Drop, proto: 6, ..Default::default() };
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("PREROUTING", cond), ("PREROUTING", drop), ("PREROUTING", cond)]).unwrap();
        let rs = o.ruleset(h);
        let first = rs.chains[0].first;
        let insert = |rs: &Ruleset<'_>, before: u32, number: u32, spec: RuleSpec<'static>| {
            let mut out = Out::default();
            let rule = RuleIn::Spec(spec);
            extend(TableId::Mangle, &defs(), rs, [Change::Add { chain: 0, before: Some(before), number, rule: &rule }], 1000, &mut out).map(|_| out)
        };
        // Before the first rule PREROUTING reaches it: refused, with the compiler's message.
        let Err(DeltaError::Invalid(e)) = insert(&rs, first, 1, out_iface_limit()) else { panic!() };
        assert_eq!(e.to_string(), "chain `PREROUTING' rule 1: addrtype match: output interface limitation not valid in PREROUTING and INPUT");
        // After the unconditional DROP nothing reaches it: taken, as the compiler takes it.
        let out = insert(&rs, first + 2, 3, out_iface_limit()).unwrap();
        assert!(!out.stale_reach);
        assert_eq!(out.order, [0]);
        assert_eq!(out.anchors, [first + 2]);
        // A second one before the same rule goes after the first; one before the first tail
        // rule goes before it.
        let rs1 = rs.with_delta(out.delta());
        let out2 = insert(&rs1, first + 2, 4, cond).unwrap();
        assert_eq!(out2.order, [0, 1]);
        let rs2 = rs1.with_delta(out2.delta());
        let out3 = insert(&rs2, rs.rules.len() as u32, 3, cond).unwrap();
        assert_eq!(out3.order, [2, 0, 1]);
        assert_eq!(out3.anchors, [first + 2; 3]);
        // An unconditional DROP inserted before a rule: the reach of the rules after it is
        // stale, a later rule that fails its check needs the table compiled.
        let out = insert(&rs, first, 1, drop).unwrap();
        assert!(out.stale_reach);
        assert_eq!(insert(&rs.with_delta(out.delta()), first + 1, 2, out_iface_limit()).unwrap_err(), DeltaError::Rebuild);
        // Before a position that is no rule of the chain: the table is compiled.
        assert_eq!(insert(&rs, rs.chains[1].first.max(first + 3), 1, cond).unwrap_err(), DeltaError::Rebuild);
    }

    /// Stateful matches, jumps that would change which hooks reach a chain, deleting an
    /// unconditional verdict that a rule follows, and a full tail need the table compiled.
    #[test]
    fn what_a_delta_does_not_express() {
        let jump = RuleSpec { target: Target::Jump("A"), ..Default::default() };
        let drop = RuleSpec { target: Target::Drop, ..Default::default() };
        let cond = RuleSpec { target: Target::Drop, proto: 6, ..Default::default() };
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump), ("A", drop), ("A", cond)]).unwrap();
        let rs = o.ruleset(h);
        // FORWARD reaches A already: another jump changes nothing. INPUT does not.
        append(&rs, 2, 2, jump).unwrap();
        assert_eq!(append(&rs, 1, 1, jump).unwrap_err(), DeltaError::Rebuild);
        // As the compiler: no jump to a builtin chain.
        let to_builtin = RuleSpec { target: Target::Jump("FORWARD"), ..Default::default() };
        let Err(DeltaError::Invalid(e)) = append(&rs, 5, 3, to_builtin) else { panic!() };
        assert_eq!(e.to_string(), "chain `A' rule 3: cannot jump to builtin chain `FORWARD'");
        let mut limited = RuleSpec::default();
        limited.push_match(Match::Limit(super::super::rule::LimitMatch { avg: 3333, burst: 5 })).unwrap();
        assert_eq!(append(&rs, 2, 2, limited).unwrap_err(), DeltaError::Rebuild);
        let delete = |pos: u32| {
            let mut out = Out::default();
            extend(TableId::Mangle, &defs(), &rs, [Change::Delete(pos)], 1000, &mut out).map(|_| out.stale_reach)
        };
        let at = |chain: usize, k: u32| rs.chains[chain].first + k;
        assert_eq!(delete(at(2, 0)), Ok(true), "a jump: A may be reached by fewer hooks now");
        // One of two jumps side by side: the other still reaches A from the same hooks.
        let (h2, o2) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump), ("FORWARD", jump)]).unwrap();
        let rs2 = o2.ruleset(h2);
        let mut out = Out::default();
        extend(TableId::Mangle, &defs(), &rs2, [Change::Delete(rs2.chains[2].first + 1)], 1000, &mut out).unwrap();
        assert!(!out.stale_reach);
        assert_eq!(delete(at(5, 0)), Err(DeltaError::Rebuild), "an unconditional DROP a rule follows");
        assert_eq!(delete(at(5, 1)), Ok(false), "a conditional DROP");
        // Once a jump is deleted, a new jump (or a rule that fails its check) needs the table
        // compiled: which hooks reach a chain is known only as a bound.
        let mut gone = Out::default();
        extend(TableId::Mangle, &defs(), &rs, [Change::Delete(at(2, 0))], 1000, &mut gone).unwrap();
        let after = rs.with_delta(gone.delta());
        assert_eq!(append(&after, 2, 1, jump).unwrap_err(), DeltaError::Rebuild);
        append(&after, 5, 3, cond).unwrap();
        // A chain rewritten with the same jump (kube-proxy's partial sync of a service chain):
        // the new jump covers the old one, nothing goes stale.
        let (h3, o3) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump)]).unwrap();
        let rs3 = o3.ruleset(h3);
        let rewrite = [Change::Delete(rs3.chains[2].first), Change::Add { chain: 2, before: None, number: 1, rule: &RuleIn::Spec(jump) }];
        let mut out = Out::default();
        extend(TableId::Mangle, &defs(), &rs3, rewrite, 1000, &mut out).unwrap();
        assert!(!out.stale_reach);
        // Rewritten with a jump elsewhere: A is no longer reached, which only compiling tells.
        let rewrite = [Change::Delete(rs3.chains[2].first), Change::Add { chain: 2, before: None, number: 1, rule: &RuleIn::Spec(to_builtin) }];
        assert!(extend(TableId::Mangle, &defs(), &rs3, rewrite, 1000, &mut Out::default()).is_err());
        // PREROUTING reached A; without that jump an output interface limitation in A is
        // fine, which only compiling shows.
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("PREROUTING", jump)]).unwrap();
        let rs = o.ruleset(h);
        assert!(matches!(append(&rs, 5, 1, out_iface_limit()), Err(DeltaError::Invalid(_))));
        let mut gone = Out::default();
        extend(TableId::Mangle, &defs(), &rs, [Change::Delete(rs.chains[0].first)], 1000, &mut gone).unwrap();
        assert_eq!(append(&rs.with_delta(gone.delta()), 5, 1, out_iface_limit()).unwrap_err(), DeltaError::Rebuild);
        build(TableId::Mangle, &MANGLE, &["A"], &[("A", out_iface_limit())]).unwrap();
        // A goto loop added after an unconditional DROP is checked with no hooks (nothing
        // reaches it); deleting the DROP in a later change would expose it: compiled.
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump), ("A", drop)]).unwrap();
        let rs = o.ruleset(h);
        let to_self = RuleSpec { target: Target::Goto("A"), ..Default::default() };
        let looped = append(&rs, 5, 2, to_self).unwrap();
        let rs_loop = rs.with_delta(looped.delta());
        let mut out = Out::default();
        let gone = extend(TableId::Mangle, &defs(), &rs_loop, [Change::Delete(rs.chains[5].first)], 1000, &mut out);
        assert_eq!(gone.map(|_| ()), Err(DeltaError::Rebuild), "the DROP before a goto loop was deleted as a delta");
        // Compiling refuses the loop the delete would expose.
        assert!(matches!(
            build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump), ("A", to_self)]),
            Err(CompileError::Loop { .. })
        ));
        // A full tail.
        let mut out = Out::default();
        let cond_in = RuleIn::Spec(cond);
        let many = (0..MAX_TAIL).map(|i| Change::Add { chain: 1, before: None, number: i + 1, rule: &cond_in });
        extend(TableId::Mangle, &defs(), &rs, many, 1000, &mut out).unwrap();
        let rs2 = rs.with_delta(out.delta());
        assert_eq!(
            extend(TableId::Mangle, &defs(), &rs2, [Change::Add { chain: 1, before: None, number: 65, rule: &cond_in }], 1000, &mut Out::default()),
            Err(DeltaError::Rebuild)
        );
    }
}
