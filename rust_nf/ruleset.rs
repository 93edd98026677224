// SPDX-License-Identifier: GPL-2.0

//! A compiled table version: the engine's flat arrays in kernel vectors, where each counter
//! counts (slots of the table's counter pool, shared by all its versions), the state of
//! `limit`/`nth` matches, and the references it holds (the syslog logger).

use crate::engine::compile::{self, ChainDef};
use crate::engine::index::{self, CHot, IBucket, IChain, IShape, IndexOutput};
use crate::engine::compiled::{self, CChain, CMatch, CRule, OutOfMemory, Output, Ruleset, RulesetHeader, StateInit, Store};
use crate::engine::delta::{self, Change, DeltaError, DeltaOutput, DeltaSummary};
use crate::engine::rule::{Match, Policy, TableId};
use crate::engine::rulewire;
use crate::engine::state::{AtomicLimit, AtomicNth, AtomicQuota};
use crate::counters::{self, Blocks};
use crate::ffi::pcpu::PcpuBlock;
use crate::ffi::shim::{self, LoggerRef};
use crate::recent::RecentList;
use kernel::sync::Arc;
use crate::table::{ChainInfo, UserError};
use kernel::prelude::*;

/// The engine's output storage over a kernel vector (allocation may fail, never panics),
/// charged to the memory cgroup of the user whose request builds it.
pub(crate) struct KStore<T>(KVVec<T>);

impl<T> KStore<T> {
    /// An empty store.
    pub(crate) const fn new() -> Self {
        Self(KVVec::new())
    }

    /// An empty store with room for `n` elements: pushing that many allocates nothing.
    pub(crate) fn with_capacity(n: usize) -> core::result::Result<Self, kernel::alloc::AllocError> {
        KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT).map(Self)
    }

    /// The vector.
    pub(crate) fn into_inner(self) -> KVVec<T> {
        self.0
    }
}

impl<T> Default for KStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> crate::engine::splice::Seq<T> for KStore<T> {
    fn truncate(&mut self, n: usize) {
        self.0.truncate(n);
    }
}

impl<T> Store<T> for KStore<T> {
    fn push(&mut self, v: T) -> core::result::Result<(), OutOfMemory> {
        self.0.push(v, GFP_KERNEL_ACCOUNT).map_err(|_| OutOfMemory)
    }
    fn as_slice(&self) -> &[T] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// The state of one `limit` or `nth` match, updated lock-free from the packet path with the
/// engine's atomic types (the code the host tests run, threads included), or the list of a
/// `recent` match (under the list's own lock). Shared: a rule that a change keeps keeps its
/// state, in every version that has the rule.
#[derive(Clone)]
pub(crate) enum Slot {
    /// A token bucket.
    Limit(Arc<AtomicLimit>),
    /// An nth counter.
    Nth(Arc<AtomicNth>),
    /// A `recent` list.
    Recent(Arc<RecentList>),
    /// A `connlimit` counter.
    Connlimit(Arc<crate::recent::ConnCounter>),
    /// A `quota` match's bytes left.
    Quota(Arc<AtomicQuota>),
}

/// A `recent` match's list as the rule names it.
#[derive(Clone, Copy)]
pub(crate) struct RecentRef<'a> {
    /// `--name`.
    pub(crate) name: &'a str,
    /// `--mask`.
    pub(crate) mask: u32,
    /// Stamps per address the rule needs.
    pub(crate) nstamps: u32,
}

/// The compiled part of a table version: the compiled ruleset, its classifier, where its
/// counters count and its match states. Shared by the versions that a delta makes from it
/// ([`Version::with_delta`]).
pub(crate) struct Base {
    header: RulesetHeader,
    out: Output<KStore<CChain>, KStore<CRule>, KStore<CMatch>>,
    /// The classifier over `out` (chains too short to gain have none).
    index: IndexOutput<KStore<IChain>, KStore<IShape>, KStore<IBucket>, KStore<u32>, KStore<CHot>>,
    /// The pool slot of each counter of the compiled ruleset (rules, then policies).
    slot_of: KVVec<u32>,
    slots: KVVec<Slot>,
    /// Held while the version has a LOG rule.
    _logger: Option<LoggerRef>,
    /// What the change that compiled it did.
    made: Made,
}

/// The arrays of a delta ([`crate::engine::delta`]).
type DeltaStore = DeltaOutput<KStore<u64>, KStore<u32>, KStore<CRule>, KStore<CMatch>, KStore<CHot>, KStore<Option<Policy>>>;

/// One immutable table version (its counters and match state change, atomically): a compiled
/// ruleset, and what changed since it was compiled (a delta: rules deleted, appended,
/// policies set; empty when the change compiled the table).
pub(crate) struct Version {
    base: Arc<Base>,
    delta: DeltaStore,
    /// The pool slot of each appended rule.
    tail_slot_of: KVVec<u32>,
    /// The pool slot of each policy counter, when a delta's change gave them new ones (empty:
    /// those of the compiled ruleset).
    policy_slot_of: KVVec<u32>,
    /// What `delta` holds.
    summary: DeltaSummary,
    /// The pool's blocks the version counts into.
    blocks: Blocks,
    /// Held while an appended rule logs and the compiled ruleset holds no logger.
    _tail_logger: Option<LoggerRef>,
    /// What the change that made it did.
    made: Made,
}

/// What the change that made a version did.
#[derive(Clone, Copy)]
struct Made {
    /// Kernel time from the request's start to the switch, in ns.
    change_ns: u64,
    /// Rules compiled from their encoding (the others were copied compiled).
    compiled_rules: u32,
    /// Chain indexes built (the others were copied).
    built_indexes: u32,
}

/// A fixed buffer that `core::fmt` writes into, cut at its size, NUL-terminated.
pub(crate) struct MsgBuf {
    /// The text and a NUL.
    pub(crate) buf: crate::ffi::genl::ErrText,
    len: usize,
}

impl MsgBuf {
    /// `args` formatted.
    pub(crate) fn format(args: core::fmt::Arguments<'_>) -> Self {
        let mut m = MsgBuf { buf: [0; 80], len: 0 };
        let _ = core::fmt::write(&mut m, args);
        m
    }
}

impl core::fmt::Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep the last byte for the NUL.
            if let Some(slot) = self.buf.get_mut(self.len).filter(|_| self.len + 1 < 80) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl Base {
    /// Compiles a table from its configured chains and rules (`(chain, start, len)` into
    /// `specs`, each a rule's canonical encoding). Allocates everything the version needs but
    /// its counters' places ([`Version::new`], once the ruleset is known good): nothing is
    /// left to allocate once both are done.
    /// `inherit(i, k)`: the state the `k`-th stateful match of rule `i` takes over from the
    /// rule it continues (a rule the change keeps), if any; else its state starts afresh.
    ///
    /// `old`: the live version and the names of its chains; a rule that gives the position of
    /// a rule of it with the same encoding is copied from its compiled form (not decoded nor
    /// translated again), and a chain for which `same_chain` names an old chain with exactly
    /// its rules keeps that chain's index (moved), so a change recompiles and re-indexes what
    /// it touched.
    #[inline(never)]
    pub(crate) fn build<'o>(
        table: TableId,
        chains: &[ChainInfo],
        rules: impl Iterator<Item = (u32, u32, u32, Option<usize>)>,
        specs: &'o [u8],
        old: Option<(&'o Version, &'o [ChainInfo])>,
        same_chain: &dyn Fn(u32) -> Option<u32>,
        lists: &mut dyn FnMut(RecentRef<'_>) -> Result<Arc<RecentList>>,
        inherit: &dyn Fn(usize, usize) -> Option<Slot>,
    ) -> core::result::Result<Base, UserError> {
        let oom = UserError::nomem;
        let mut defs: KVVec<ChainDef<'_>> = KVVec::with_capacity(chains.len(), GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        for c in chains {
            defs.push(ChainDef { name: c.name(), policy: c.policy }, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        }
        // The `recent` matches in rule order: the compiler numbers their state slots in the
        // same order (`Ruleset::state_slots`).
        let mut recents: KVVec<RecentRef<'_>> = KVVec::new();
        let mut recent_oom = false;
        let rules_hint = rules.size_hint().0;
        let old_rs = old.map(|(v, _)| v.ruleset());
        let mut compiled_rules = 0u32;
        let decoded = rules.map(|(chain, start, len, keep)| {
            // A kept rule without a `recent` match (whose list is found by the name only its
            // encoding has) comes compiled.
            if let (Some(o), Some((_, old_chains))) = (old_rs.as_ref(), old) {
                if let Some((r, matches)) = keep.and_then(|k| o.rule_at(u32::try_from(k).ok()?)) {
                    if !matches.iter().any(|m| matches!(m, CMatch::Recent { .. })) {
                        let target = match r.target {
                            compiled::CTarget::Jump(c) | compiled::CTarget::Goto(c) => {
                                old_chains.get(c as usize).map(ChainInfo::name)
                            }
                            _ => None,
                        };
                        return Ok((chain, compile::RuleIn::Compiled { rule: *r, matches, target }));
                    }
                }
            }
            compiled_rules = compiled_rules.wrapping_add(1);
            let s = start as usize;
            let bytes = specs.get(s..s.saturating_add(len as usize)).unwrap_or(&[]);
            let r = rulewire::decode_rule(bytes);
            if let Ok(spec) = &r {
                for m in spec.matches() {
                    if let Match::Recent(rc) = m {
                        let nstamps = crate::engine::recent::nstamps_for(rc);
                        let x = RecentRef { name: rc.name, mask: rc.mask, nstamps };
                        recent_oom |= recents.push(x, GFP_KERNEL_ACCOUNT).is_err();
                    }
                }
            }
            r.map(|r| (chain, compile::RuleIn::Spec(r)))
        });
        let hz = shim::hz();
        // Room for what it will hold, at once (a store that grows copies itself each time):
        // its rules, and matches and buckets as the version before had them per rule (a
        // version's arrays stay as allocated, so no more than that).
        let old_sizes = old.map_or((0, 0), |(v, _)| {
            let per_rule = |n: usize| {
                let rules = v.base.out.rules.as_slice().len();
                if rules <= rules_hint { n } else { n.saturating_mul(rules_hint) / rules }
            };
            (per_rule(v.base.out.matches.as_slice().len()), per_rule(v.base.index.buckets.as_slice().len()))
        });
        let mut out = Output {
            chains: KStore::with_capacity(chains.len()).map_err(|_| oom())?,
            rules: KStore::with_capacity(rules_hint).map_err(|_| oom())?,
            matches: KStore::with_capacity(old_sizes.0).map_err(|_| oom())?,
        };
        let header = match compile::compile(table, &defs, decoded, hz, &mut out) {
            Ok(h) => h,
            Err(e) => {
                let errno = match e {
                    compile::CompileFailure::Invalid(ce) => ce.errno(),
                    compile::CompileFailure::Decode { .. } => 22,
                };
                return Err(UserError::compile(errno, MsgBuf::format(format_args!("{e}"))));
            }
        };
        if recent_oom {
            return Err(oom());
        }
        let rs = out.ruleset(header);
        // As xt_LOG's checkentry: a LOG rule needs the syslog logger (loaded if a module).
        let logger = if rs.rules.iter().any(|r| matches!(r.target, compiled::CTarget::Log(_))) {
            Some(LoggerRef::get().map_err(|_| UserError::new(ENOENT, c"LOG: the kernel has no syslog logger (nf_log_syslog)"))?)
        } else {
            None
        };
        let mut idx = IndexOutput {
            chains: KStore::with_capacity(rs.chains.len()).map_err(|_| oom())?,
            shapes: KStore::new(),
            buckets: KStore::with_capacity(old_sizes.1).map_err(|_| oom())?,
            postings: KStore::with_capacity(rs.rules.len()).map_err(|_| oom())?,
            hot: KStore::with_capacity(rs.rules.len()).map_err(|_| oom())?,
        };
        let built_indexes =
            index::build_reusing(&rs, index::BuildParams::default(), old_rs.as_ref(), same_chain, &mut idx).map_err(|_| oom())?;
        let slots = build_slots(&rs, header.state_count, hz, &recents, lists, inherit)?;
        let made = Made { change_ns: 0, compiled_rules, built_indexes };
        Ok(Base { header, out, index: idx, slot_of: KVVec::new(), slots, _logger: logger, made })
    }

    /// The first state slot of rule `i`, if it has a stateful match (a rule's slots are
    /// consecutive, in rule order).
    pub(crate) fn first_state(&self, i: usize) -> Option<u32> {
        let rs = self.out.ruleset(self.header);
        rs.rules.get(i).and_then(|r| rs.rule_states(r).next())
    }

    /// Its state slots, shared (for the next version's kept rules).
    pub(crate) fn clone_states(&self) -> core::result::Result<KVVec<Slot>, UserError> {
        let mut v = KVVec::with_capacity(self.slots.len(), GFP_KERNEL_ACCOUNT).map_err(|_| UserError::nomem())?;
        for s in self.slots.iter() {
            v.push(s.clone(), GFP_KERNEL_ACCOUNT).map_err(|_| UserError::nomem())?;
        }
        Ok(v)
    }
}

impl Version {

    /// The version of a compiled table that counts rule `i` in slot `rule_slots[i]`, a builtin
    /// chain's policy in its chain's slot (`chains`, the configuration it was built from), all
    /// in `blocks`.
    pub(crate) fn new(mut base: Base, rule_slots: &[u32], chains: &[ChainInfo], blocks: &[Arc<PcpuBlock>]) -> core::result::Result<KBox<Version>, UserError> {
        let oom = UserError::nomem;
        // Counter `i < rule_count` is rule `i`'s; a builtin chain's policy counts at its
        // `policy_counter`.
        let n = base.header.counter_count as usize;
        let mut slot_of = KVVec::from_elem(crate::engine::carry::NO_SLOT, n, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        for (s, &r) in slot_of.iter_mut().zip(rule_slots) {
            *s = r;
        }
        for (c, info) in base.out.chains.as_slice().iter().zip(chains) {
            if let Some(s) = slot_of.get_mut(c.policy_counter as usize) {
                *s = info.slot;
            }
        }
        base.slot_of = slot_of;
        let made = base.made;
        let v = Version {
            base: Arc::new(base, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?,
            delta: DeltaStore::default(),
            tail_slot_of: KVVec::new(),
            policy_slot_of: KVVec::new(),
            summary: DeltaSummary::default(),
            blocks: clone_blocks(blocks)?,
            _tail_logger: None,
            made,
        };
        KBox::new(v, GFP_KERNEL_ACCOUNT).map_err(|_| oom())
    }

    /// The next version of this one (its compiled ruleset shared, not compiled again) after
    /// `changes`, which the delta takes ([`delta::extend`]): `Ok(None)` when it does not (the
    /// table must be compiled), a user error when a change is invalid. `chains` are its
    /// configuration's chains; the `k`-th rule appended counts in slot `fresh[k]`, a builtin
    /// chain's policy in `chain_slots[c]`, the version in `blocks`.
    #[inline(never)]
    pub(crate) fn with_delta<'r>(
        &self,
        chains: &[ChainInfo],
        changes: impl Iterator<Item = Change<'r>>,
        fresh: &[u32],
        chain_slots: &[u32],
        blocks: &[Arc<PcpuBlock>],
    ) -> core::result::Result<Option<KBox<Version>>, UserError> {
        let oom = UserError::nomem;
        let mut defs: KVVec<ChainDef<'_>> = KVVec::with_capacity(chains.len(), GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        for c in chains {
            defs.push(ChainDef { name: c.name(), policy: c.policy }, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        }
        let mut out = DeltaStore::default();
        let rs = self.ruleset();
        let summary = match delta::extend(self.base.header.table, &defs, &rs, changes, shim::hz(), &mut out) {
            Ok(s) => s,
            Err(DeltaError::Rebuild) => return Ok(None),
            Err(DeltaError::OutOfMemory) => return Err(oom()),
            Err(DeltaError::Invalid(e)) => return Err(UserError::compile(e.errno(), MsgBuf::format(format_args!("{e}")))),
        };
        let appended = out.rules.as_slice().len();
        let before = self.tail_slot_of.len();
        let mut tail_slot_of = KVVec::with_capacity(appended, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        for (i, &s) in self.tail_slot_of.iter().enumerate() {
            // A rule deleted by this change counts no more (its slot is given back).
            let dead = out.delta().is_dead((rs.rules.len() as u32).saturating_add(i as u32));
            tail_slot_of.push(if dead { crate::engine::carry::NO_SLOT } else { s }, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        }
        for i in before..appended {
            let s = fresh.get(i - before).copied().ok_or(UserError::new(EINVAL, c"internal error: an appended rule without a counter"))?;
            tail_slot_of.push(s, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        }
        // As xt_LOG's checkentry: a LOG rule needs the syslog logger (loaded if a module).
        let logger = if summary.logs && self.base._logger.is_none() {
            Some(LoggerRef::get().map_err(|_| UserError::new(ENOENT, c"LOG: the kernel has no syslog logger (nf_log_syslog)"))?)
        } else {
            None
        };
        let made = Made { change_ns: 0, compiled_rules: (appended - before) as u32, built_indexes: 0 };
        let b = &*self.base;
        let policies = (b.header.counter_count as usize).saturating_sub(b.header.rule_count as usize);
        let mut policy_slot_of = KVVec::from_elem(crate::engine::carry::NO_SLOT, policies, GFP_KERNEL_ACCOUNT).map_err(|_| oom())?;
        for (c, &slot) in b.out.chains.as_slice().iter().zip(chain_slots) {
            if let Some(s) = c.policy_counter.checked_sub(b.header.rule_count).and_then(|k| policy_slot_of.get_mut(k as usize)) {
                *s = slot;
            }
        }
        let v = Version {
            base: self.base.clone(),
            delta: out,
            tail_slot_of,
            policy_slot_of,
            summary,
            blocks: clone_blocks(blocks)?,
            _tail_logger: logger,
            made,
        };
        KBox::new(v, GFP_KERNEL_ACCOUNT).map_err(|_| oom()).map(Some)
    }

    /// Number of compiled rules (its delta's appended rules come after them).
    pub(crate) fn compiled_rules(&self) -> usize {
        self.base.out.rules.as_slice().len()
    }

    /// Whether the rule at position `pos` has a `recent` match.
    pub(crate) fn names_a_list(&self, pos: u32) -> bool {
        self.ruleset().rule_at(pos).is_some_and(|(_, ms)| ms.iter().any(|m| matches!(m, CMatch::Recent { .. })))
    }

    /// Number of rules its delta appended (deleted ones too).
    pub(crate) fn appended(&self) -> usize {
        self.tail_slot_of.len()
    }

    /// Chain `c`'s first compiled rule and number of compiled rules; `None` when the delta
    /// changed the chain's rules.
    pub(crate) fn chain_span(&self, c: u32) -> Option<(usize, usize)> {
        let ch = self.base.out.chains.as_slice().get(c as usize)?;
        let d = self.delta.delta();
        let dead = || (ch.first..ch.first.saturating_add(ch.count)).any(|p| d.is_dead(p));
        if d.tail_start(c).is_some() || (self.summary.dead != 0 && dead()) {
            return None;
        }
        Some((ch.first as usize, ch.count as usize))
    }

    /// The compiled ruleset, with its classifier and its delta.
    pub(crate) fn ruleset(&self) -> Ruleset<'_> {
        let b = &*self.base;
        let mut d = self.delta.delta();
        // No dead rule: the walk need not look for them.
        if self.summary.dead == 0 {
            d.dead = &[];
        }
        b.out.ruleset(b.header).with_index(b.index.index()).with_delta(d)
    }

    /// The version's size and what its classifier holds, for the status report.
    pub(crate) fn stats(&self) -> crate::engine::wire::TableStats {
        let b = &*self.base;
        let rs = b.out.ruleset(b.header);
        let d = self.delta.delta();
        let live = b.header.rule_count.saturating_add(self.summary.appended).saturating_sub(self.summary.dead);
        crate::engine::wire::TableStats {
            table: b.header.table as u32,
            rules: live,
            chains: b.header.chain_count,
            ruleset_bytes: (core::mem::size_of_val(rs.chains)
                + core::mem::size_of_val(rs.rules)
                + core::mem::size_of_val(rs.matches)
                + core::mem::size_of_val(d.rules)
                + core::mem::size_of_val(d.matches)
                + core::mem::size_of_val(d.dead)
                + core::mem::size_of_val(d.hot)
                + core::mem::size_of_val(d.anchors)
                + core::mem::size_of_val(d.order)
                + core::mem::size_of_val(d.tail_first)
                + core::mem::size_of_val(d.policies)) as u64,
            // The table's counter pool as this version holds it: its blocks of 16-byte pairs.
            counter_bytes: (self.blocks.len() as u64) * u64::from(crate::ffi::pcpu::PER_BLOCK) * 16,
            index: b.index.index().stats(),
            change_ns: self.made.change_ns,
            compiled_rules: self.made.compiled_rules,
            built_indexes: self.made.built_indexes,
        }
    }

    /// Records how long the change that made it took (up to its switch), in ns.
    pub(crate) fn set_change_ns(&mut self, ns: u64) {
        self.made.change_ns = ns;
    }

    /// The policy of the builtin chain at `point` when it has no rule, counted for a packet of
    /// `bytes` (what evaluating it would do); `None` when it has rules.
    pub(crate) fn empty_chain_policy(&self, point: crate::engine::hooks::HookPoint, bytes: u32) -> Option<crate::engine::rule::Policy> {
        let rs = self.ruleset();
        let entry = rs.entry_chain(point)?;
        let c = rs.chains.get(entry as usize)?;
        if c.count != 0 || rs.delta.tail_start(entry).is_some() {
            return None;
        }
        let policy = rs.delta.policy(entry, c.policy)?;
        self.count(c.policy_counter, u64::from(bytes));
        Some(policy)
    }

    /// Whether the namespace must track connections while this version is live.
    pub(crate) fn uses_conntrack(&self) -> bool {
        self.base.header.uses_conntrack || self.summary.uses_conntrack
    }

    /// The table this version is of.
    pub(crate) fn table(&self) -> TableId {
        self.base.header.table
    }

    /// Counts one packet of `bytes` at counter `idx` (a rule, a builtin chain's policy, or an
    /// appended rule: see [`crate::engine::compiled::Delta`]), in the pool slot the counter
    /// owns. (A compiled rule a delta deleted keeps its old slot in `base.slot_of`, which a
    /// later change may hand to a new rule: that is sound only because the walk never counts
    /// a deleted rule.)
    pub(crate) fn count(&self, idx: u32, bytes: u64) {
        let h = &self.base.header;
        let slot = match (idx.checked_sub(h.counter_count), idx.checked_sub(h.rule_count)) {
            (Some(t), _) => self.tail_slot_of.get(t as usize),
            (None, Some(p)) if !self.policy_slot_of.is_empty() => self.policy_slot_of.get(p as usize),
            _ => self.base.slot_of.get(idx as usize),
        };
        if let Some(&slot) = slot {
            counters::add(&self.blocks, slot, bytes);
        }
    }

    /// xt_limit's `limit_mt` on slot `state` at the current `jiffies`. A slot that is missing
    /// or of another kind (the compiler never hands one out) gives no token: the rule does
    /// not match.
    pub(crate) fn limit_allow(&self, state: u32) -> bool {
        match self.base.slots.get(state as usize) {
            Some(Slot::Limit(l)) => l.allow(shim::jiffies),
            _ => false,
        }
    }

    /// `-m connlimit` on the counter of slot `state`; `None` drops the packet.
    pub(crate) fn connlimit(&self, state: u32, key: u32, flow: u64, alive: impl Fn(u64) -> bool) -> Option<u32> {
        match self.base.slots.get(state as usize) {
            Some(Slot::Connlimit(c)) => c.count(key, flow, alive),
            _ => None,
        }
    }

    /// `-m recent` on the list of slot `state`; a missing list (the compiler never leaves
    /// one out) is a hotdrop.
    pub(crate) fn recent(&self, state: u32, m: &crate::engine::recent::RecentMatch<'_>, addr: u32, ttl: u8) -> core::result::Result<bool, ()> {
        match self.base.slots.get(state as usize) {
            Some(Slot::Recent(l)) => l.matches(m, addr, ttl),
            _ => Err(()),
        }
    }

    /// xt_quota's `quota_mt` on slot `state` for a packet of `len` bytes. A missing slot has
    /// nothing left.
    pub(crate) fn quota_take(&self, state: u32, len: u32) -> bool {
        match self.base.slots.get(state as usize) {
            Some(Slot::Quota(q)) => q.take(len),
            _ => false,
        }
    }

    /// xt_statistic's nth counter on slot `state`: advance atomically and return the new
    /// value (the match fires at 0). A missing slot returns 1: no match.
    pub(crate) fn nth_next(&self, state: u32, every: u32) -> u32 {
        match self.base.slots.get(state as usize) {
            Some(Slot::Nth(n)) => n.next(every),
            _ => 1,
        }
    }
}

/// A version's own references to the pool's blocks it counts into.
fn clone_blocks(blocks: &[Arc<PcpuBlock>]) -> core::result::Result<Blocks, UserError> {
    let mut bl = KVVec::with_capacity(blocks.len(), GFP_KERNEL_ACCOUNT).map_err(|_| UserError::nomem())?;
    for b in blocks {
        bl.push(b.clone(), GFP_KERNEL_ACCOUNT).map_err(|_| UserError::nomem())?;
    }
    Ok(bl)
}

/// The state slots of a compiled ruleset, each initialised for the match that owns it; an
/// error if the compiler numbered one that no match uses.
fn build_slots(
    rs: &Ruleset<'_>,
    count: u32,
    hz: u32,
    recents: &[RecentRef<'_>],
    lists: &mut dyn FnMut(RecentRef<'_>) -> Result<Arc<RecentList>>,
    inherit: &dyn Fn(usize, usize) -> Option<Slot>,
) -> core::result::Result<KVVec<Slot>, UserError> {
    let oom = UserError::nomem;
    let a = GFP_KERNEL_ACCOUNT;
    let now = shim::jiffies();
    let mut init: KVVec<Option<StateInit>> = KVVec::from_elem(None, count as usize, a).map_err(|_| oom())?;
    for (idx, i) in rs.state_slots() {
        if let Some(s) = init.get_mut(idx as usize) {
            *s = Some(i);
        }
    }
    // The state a kept rule's match takes over, by slot.
    let mut kept: KVVec<Option<Slot>> = KVVec::from_elem(None, count as usize, a).map_err(|_| oom())?;
    for (i, r) in rs.rules.iter().enumerate() {
        for (k, s) in rs.rule_states(r).enumerate() {
            if let (Some(slot), Some(old)) = (kept.get_mut(s as usize), inherit(i, k)) {
                *slot = Some(old);
            }
        }
    }
    let mut slots = KVVec::with_capacity(count as usize, a).map_err(|_| oom())?;
    let mut recents = recents.iter();
    let internal = || UserError::new(EINVAL, c"internal error: a match state slot without a match");
    for (i, old) in init.iter().zip(kept.iter_mut()) {
        let slot = match (i.ok_or_else(internal)?, old.take()) {
            // The same kind of state only (a kept rule has the same encoding, so the same
            // matches).
            (StateInit::Limit(_), Some(s @ Slot::Limit(_))) | (StateInit::Nth { .. }, Some(s @ Slot::Nth(_))) => s,
            (StateInit::Connlimit, Some(s @ Slot::Connlimit(_))) | (StateInit::Quota(_), Some(s @ Slot::Quota(_))) => s,
            (StateInit::Quota(q), _) => Slot::Quota(Arc::new(AtomicQuota::new(q), a).map_err(|_| oom())?),
            (StateInit::Limit(m), _) => Slot::Limit(Arc::new(AtomicLimit::new(&m, hz, now), a).map_err(|_| oom())?),
            (StateInit::Nth { initial, .. }, _) => Slot::Nth(Arc::new(AtomicNth::new(initial), a).map_err(|_| oom())?),
            (StateInit::Connlimit, _) => Slot::Connlimit(crate::recent::ConnCounter::new().map_err(|_| oom())?),
            // A `recent` list is found by name: the same list whatever the version.
            (StateInit::Recent { .. }, _) => {
                let r = recents.next().ok_or_else(internal)?;
                Slot::Recent(lists(*r).map_err(|e| UserError::new(e, c"recent: cannot make the list"))?)
            }
        };
        slots.push(slot, a).map_err(|_| oom())?;
    }
    if recents.next().is_some() {
        return Err(internal());
    }
    Ok(slots)
}
