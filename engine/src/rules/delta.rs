// SPDX-License-Identifier: GPL-2.0

//! Changing a compiled ruleset without compiling it again: a [`Delta`] over it marks deleted
//! rules dead, holds rules appended at the end of their chains (the tail) and policies set.
//! A change that only does that costs what it changes (and the size of the delta), not the
//! size of the ruleset: the compiled rules, their matches and the classifier are shared by the
//! versions before and after it.
//!
//! [`extend`] makes the delta of the next version from the one before. It takes only the
//! changes a delta can express exactly, so that evaluating the ruleset with it is evaluating
//! the ruleset compiled afresh (the differential test `delta_tests` checks that):
//! - an appended rule has no jump or goto (a new edge would change which hooks reach which
//!   chain, and could make a loop) and no match with state (`limit`, `nth`, `recent`,
//!   `connlimit`: their state slots are numbered by the compiler); it is checked as the
//!   compiler checks it, at the end of its chain, with the hooks that reach that end;
//! - a deleted rule is no jump or goto (the same reason) and no unconditional ACCEPT, DROP or
//!   RETURN (the rules after it would become reachable from more hooks, which could make them
//!   invalid);
//! - at most [`MAX_TAIL`] appended rules and [`max_dead`] deleted ones in all.
//!
//! Anything else is [`DeltaError::Rebuild`]: the caller compiles the whole configuration, as
//! before (which also starts a new, empty delta).

use super::compile::{check_rule, translate, ChainDef, CompileError, RuleIn};
use super::compiled::{CMatch, CRule, CTarget, Delta, OutOfMemory, Ruleset, Store};
use super::index::CHot;
use super::rule::{Policy, TableId};

/// Most rules a delta may append (all chains together) before the table is compiled again: a
/// chain's appended rules are walked one by one.
pub const MAX_TAIL: u32 = 64;

/// Most rules a delta may mark dead before the table is compiled again, for `compiled` rules:
/// an eighth of them, at least 64.
pub fn max_dead(compiled: u32) -> u32 {
    (compiled / 8).max(64)
}

/// One change.
#[derive(Debug, Clone, Copy)]
pub enum Change<'r> {
    /// `rule` appended to chain `chain`, where it is rule number `number` (1-based, for
    /// errors).
    Append {
        /// The chain.
        chain: u32,
        /// Its number in the chain.
        number: u32,
        /// The rule.
        rule: RuleIn<'r>,
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
    /// Per chain, its first appended rule.
    pub tail_first: F,
    /// Appended rules.
    pub rules: R,
    /// Their matches.
    pub matches: M,
    /// Their compact forms.
    pub hot: H,
    /// Per chain, its policy if set.
    pub policies: P,
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
            matches: self.matches.as_slice(),
            hot: self.hot.as_slice(),
            policies: self.policies.as_slice(),
        }
    }
}

/// What a delta holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeltaSummary {
    /// Rules appended (dead ones too).
    pub appended: u32,
    /// Rules dead.
    pub dead: u32,
    /// Some live appended rule works on connections (see [`CMatch::uses_conntrack`]).
    pub uses_conntrack: bool,
    /// Some live appended rule has a LOG target.
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
        out.tail_first.push(old.tail_first.get(c).copied().unwrap_or(u32::MAX))?;
        out.policies.push(old.policies.get(c).copied().flatten())?;
    }
    for r in old.rules {
        let matches = old.rule_matches(r);
        let match_start = u32::try_from(out.matches.as_slice().len()).map_err(|_| DeltaError::Rebuild)?;
        for m in matches {
            out.matches.push(*m)?;
        }
        out.rules.push(CRule { match_start, ..*r })?;
    }
    for i in 0..old.rules.len() {
        let h = old.hot.get(i).copied().or_else(|| old.rules.get(i).map(CHot::of)).unwrap_or_default();
        out.hot.push(h)?;
    }

    for change in changes {
        match change {
            Change::Append { chain, number, rule } => append(table, defs, rs, compiled, chain, number, rule, hz, out)?,
            Change::Delete(pos) => {
                if pos >= compiled.saturating_add(out.rules.as_slice().len() as u32) || is_dead(out, pos) {
                    return Err(DeltaError::Rebuild);
                }
                let r = match pos.checked_sub(compiled) {
                    None => rs.rules.get(pos as usize),
                    Some(t) => out.rules.as_slice().get(t as usize),
                };
                let Some(r) = r else { return Err(DeltaError::Rebuild) };
                let terminal = matches!(r.target, CTarget::Accept | CTarget::Drop | CTarget::Return) && r.unconditional;
                if terminal || matches!(r.target, CTarget::Jump(_) | CTarget::Goto(_)) {
                    return Err(DeltaError::Rebuild);
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

    let dead = out.dead.as_slice().iter().map(|w| w.count_ones()).sum::<u32>();
    if dead > max_dead(compiled) {
        return Err(DeltaError::Rebuild);
    }
    let d = out.delta();
    let live = d.rules.iter().enumerate().filter(|&(i, _)| !d.is_dead(compiled.saturating_add(i as u32)));
    let (mut uses_conntrack, mut logs) = (false, false);
    for (_, r) in live {
        uses_conntrack |= r.target.uses_conntrack() || d.rule_matches(r).iter().any(CMatch::uses_conntrack);
        logs |= matches!(r.target, CTarget::Log(_));
    }
    Ok(DeltaSummary { appended: d.rules.len() as u32, dead, uses_conntrack, logs })
}

fn is_dead<D: Store<u64>, F, R, M, H, P>(out: &DeltaOutput<D, F, R, M, H, P>, pos: u32) -> bool {
    out.dead.as_slice().get((pos / 64) as usize).is_some_and(|w| w >> (pos % 64) & 1 != 0)
}

/// Appends one rule (see [`extend`]).
#[allow(clippy::too_many_arguments)]
fn append<'r, D, F, R, M, H, P>(
    table: TableId,
    defs: &[ChainDef<'_>],
    rs: &Ruleset<'_>,
    compiled: u32,
    chain: u32,
    number: u32,
    rule: RuleIn<'r>,
    hz: u32,
    out: &mut DeltaOutput<D, F, R, M, H, P>,
) -> Result<(), DeltaError>
where
    D: Store<u64>,
    F: Store<u32>,
    R: Store<CRule>,
    M: Store<CMatch>,
    H: Store<CHot>,
    P: Store<Option<Policy>>,
{
    let tail = out.rules.as_slice().len() as u32;
    if tail >= MAX_TAIL {
        return Err(DeltaError::Rebuild);
    }
    let c = *rs.chains.get(chain as usize).ok_or(DeltaError::Rebuild)?;
    let index = c.first.saturating_add(number.saturating_sub(1));
    let at = || super::compile::RulePos {
        chain: super::compile::ChainName::new(defs.get(chain as usize).map_or("", |d| d.name)),
        rule: number,
        index,
    };
    // The hooks that reach the chain's end: those of its last live rule, none after an
    // unconditional ACCEPT, DROP or RETURN (as the compiler's walk marks them); all of the
    // chain's when it has no live rule.
    let reach = |r: &CRule| {
        let terminal = matches!(r.target, CTarget::Accept | CTarget::Drop | CTarget::Return) && r.unconditional;
        if terminal { 0 } else { r.hook_mask }
    };
    let last_tail = out.rules.as_slice().iter().enumerate().rev().find(|&(i, r)| r.chain == chain && !is_dead(out, compiled + i as u32));
    let hook_mask = match last_tail {
        Some((_, r)) => reach(r),
        None => {
            let span = c.first..c.first.saturating_add(c.count);
            let last = span.rev().find(|&p| !is_dead(out, p)).and_then(|p| rs.rules.get(p as usize));
            last.map_or(c.hook_mask, reach)
        }
    };
    let mut no_state = || Err(CompileError::OutOfMemory);
    let mut no_jump = |_: &str| Err(CompileError::OutOfMemory);
    let stateful = match rule {
        RuleIn::Spec(s) => s.matches().any(|m| {
            matches!(
                m,
                super::rule::Match::Limit(_)
                    | super::rule::Match::Statistic(super::rule::StatisticMatch::Nth { .. })
                    | super::rule::Match::Recent(_)
                    | super::rule::Match::Connlimit(_)
            )
        }),
        RuleIn::Compiled { matches, .. } => matches.iter().any(|m| m.state().is_some()),
    };
    let jumps = match rule {
        RuleIn::Spec(s) => matches!(s.target, super::rule::Target::Jump(_) | super::rule::Target::Goto(_)),
        RuleIn::Compiled { rule, .. } => matches!(rule.target, CTarget::Jump(_) | CTarget::Goto(_)),
    };
    if stateful || jumps {
        return Err(DeltaError::Rebuild);
    }
    let mut r = translate(rule, chain, &mut out.matches, &mut no_state, &mut no_jump, &at)?;
    r.hook_mask = hook_mask;
    check_rule(table, rs.chains, defs, out.matches.as_slice(), &r, index, hz)?;
    out.rules.push(r)?;
    out.hot.push(CHot::of(&r))?;
    if let Some(f) = out.tail_first.as_mut_slice().get_mut(chain as usize) {
        if *f == u32::MAX {
            *f = tail;
        }
    }
    Ok(())
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
        let change = Change::Append { chain, number, rule: RuleIn::Spec(spec) };
        extend(TableId::Mangle, &defs(), rs, [change], 1000, &mut out).map(|_| out)
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

    /// Jumps, stateful matches, deleting a jump or an unconditional verdict, and a full tail
    /// need the table compiled.
    #[test]
    fn what_a_delta_does_not_express() {
        let jump = RuleSpec { target: Target::Jump("A"), ..Default::default() };
        let drop = RuleSpec { target: Target::Drop, ..Default::default() };
        let cond = RuleSpec { target: Target::Drop, proto: 6, ..Default::default() };
        let (h, o) = build(TableId::Mangle, &MANGLE, &["A"], &[("FORWARD", jump), ("A", drop), ("A", cond)]).unwrap();
        let rs = o.ruleset(h);
        assert_eq!(append(&rs, 2, 2, jump).unwrap_err(), DeltaError::Rebuild);
        let mut limited = RuleSpec::default();
        limited.push_match(Match::Limit(super::super::rule::LimitMatch { avg: 3333, burst: 5 })).unwrap();
        assert_eq!(append(&rs, 2, 2, limited).unwrap_err(), DeltaError::Rebuild);
        let delete = |pos: u32| {
            let mut out = Out::default();
            extend(TableId::Mangle, &defs(), &rs, [Change::Delete(pos)], 1000, &mut out).map(|_| ())
        };
        let at = |chain: usize, k: u32| rs.chains[chain].first + k;
        assert_eq!(delete(at(2, 0)), Err(DeltaError::Rebuild), "a jump");
        assert_eq!(delete(at(5, 0)), Err(DeltaError::Rebuild), "an unconditional DROP");
        assert_eq!(delete(at(5, 1)), Ok(()), "a conditional DROP");
        // A full tail.
        let mut out = Out::default();
        let many = (0..MAX_TAIL).map(|i| Change::Append { chain: 1, number: i + 1, rule: RuleIn::Spec(cond) });
        extend(TableId::Mangle, &defs(), &rs, many, 1000, &mut out).unwrap();
        let rs2 = rs.with_delta(out.delta());
        assert_eq!(
            extend(TableId::Mangle, &defs(), &rs2, [Change::Append { chain: 1, number: 65, rule: RuleIn::Spec(cond) }], 1000, &mut Out::default()),
            Err(DeltaError::Rebuild)
        );
    }
}
