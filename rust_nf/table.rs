// SPDX-License-Identifier: GPL-2.0

//! Tables: what the user configured (the source of truth, under the netns mutex) and the
//! compiled version the packet path reads under RCU.
//!
//! A change never edits what packets are reading: `replace` builds a complete new
//! [`Version`] and publishes it with one pointer swap; a worker frees the old version after a
//! grace period, and the counter slots only it used are handed out again by a later change,
//! once that grace period is over. Counters are owned by
//! rule identity ([`crate::counters`]): surviving rules keep counting where they did, so
//! nothing is carried over.

use crate::counters::{CounterPool, PoolNext, SlotAlloc};
use crate::engine::carry;
use crate::engine::compile::RuleIn;
use crate::engine::delta::Change;
use crate::engine::rule::{Counters, Policy, TableId, NUM_TABLES};
use crate::engine::rulewire;
use crate::engine::wire::{AttrIter, Encoder};
use crate::ffi::genl::Request;
use crate::ffi::rcu::{FreeSlot, GpCookie, Published, Retired, Writer};
use crate::ffi::shim;
use crate::recent::RecentList;
use crate::engine::splice::{self, Piece, SpliceError};
use crate::ruleset::{Base, KStore, MsgBuf, RecentRef, Slot, Version};
use kernel::prelude::*;
use kernel::sync::Arc;

/// A namespace's published versions (by table id) and their configuration, under one lock.
pub(crate) type Tables = Published<Version, [TableConfig; NUM_TABLES], NUM_TABLES>;
/// A change's hold on [`Tables`]: the configuration, the live versions, publishing.
pub(crate) type TablesWriter<'a> = Writer<'a, Version, [TableConfig; NUM_TABLES], NUM_TABLES>;
/// A namespace's connection table, once it tracks.
pub(crate) type CtBox = crate::ffi::rcu::OnceBox<crate::conntrack::Ct>;

/// A chain as configured.
pub(crate) struct ChainInfo {
    name: [u8; 28],
    name_len: u8,
    /// Policy of a builtin chain.
    pub(crate) policy: Option<Policy>,
    /// Where its policy counts in the table's counter pool ([`carry::NO_SLOT`]: a user chain
    /// without counters).
    pub(crate) slot: u32,
}

impl ChainInfo {
    fn new(name: &str, policy: Option<Policy>) -> Result<Self> {
        let mut n = [0u8; 28];
        n.get_mut(..name.len()).ok_or(EINVAL)?.copy_from_slice(name.as_bytes());
        Ok(Self { name: n, name_len: name.len() as u8, policy, slot: carry::NO_SLOT })
    }

    /// The chain's name.
    pub(crate) fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..usize::from(self.name_len)).unwrap_or(&[])).unwrap_or("")
    }
}

/// A rule as configured: its chain, id, counter slot, where its encoding sits in `specs` and
/// where its matches' state starts in `states` (a rule's states are consecutive, as many as
/// its encoding has stateful matches).
struct RuleInfo {
    chain: u32,
    id: u64,
    slot: u32,
    start: u32,
    len: u32,
    /// Its first match state in `states`.
    state_first: u32,
    /// Its position in the live version (see [`crate::engine::compiled::Delta`]).
    at: u32,
}

/// One table's configuration.
pub(crate) struct TableConfig {
    /// Bumped by every replace; a replace may require the generation it read.
    generation: u64,
    /// Next rule id to hand out.
    next_id: u64,
    /// When the table came into existence (read or written once), as iptables-save lists
    /// it: 0 while it does not exist, else its order of creation in the namespace.
    created: u64,
    chains: KVVec<ChainInfo>,
    rules: KVVec<RuleInfo>,
    /// The rules' encodings (back to back when the table was compiled; a delta's changes
    /// leave deleted rules' encodings unused and put new ones at the end).
    specs: KVVec<u8>,
    /// Bytes of `specs` that no rule uses.
    garbage: usize,
    /// The counters of its rules and builtin chains, by slot.
    pool: CounterPool,
    /// The `recent` lists the live version uses (each once).
    recent: KVVec<Arc<RecentList>>,
    /// The state of the live version's `limit`, `nth`, `recent` and `connlimit` matches (its
    /// state slots, in rule order; a kept rule keeps its state).
    states: KVVec<Slot>,
    /// The grace period started when the last change retired a version: the counter slots
    /// only that version used are pending in `pool` until it is over.
    pending_gp: Option<GpCookie>,
}

impl TableConfig {
    pub(crate) const fn new() -> Self {
        Self {
            generation: 0,
            next_id: 1,
            created: 0,
            chains: KVVec::new(),
            rules: KVVec::new(),
            specs: KVVec::new(),
            garbage: 0,
            pool: CounterPool::new(),
            recent: KVVec::new(),
            states: KVVec::new(),
            pending_gp: None,
        }
    }

    fn spec(&self, r: &RuleInfo) -> &[u8] {
        let start = r.start as usize;
        self.specs.get(start..start + r.len as usize).unwrap_or(&[])
    }
}

/// An error for the user: errno and an extended ack message.
pub(crate) struct UserError {
    /// The errno.
    pub(crate) err: Error,
    /// The message.
    pub(crate) msg: &'static CStr,
    /// A message formatted at run time (naming table, chain and rule), preferred.
    pub(crate) detail: Option<MsgBuf>,
}

pub(crate) fn uerr(err: Error, msg: &'static CStr) -> UserError {
    UserError { err, msg, detail: None }
}

impl UserError {
    /// An error with a fixed message.
    pub(crate) fn new(err: Error, msg: &'static CStr) -> Self {
        uerr(err, msg)
    }

    /// Out of memory.
    pub(crate) fn nomem() -> Self {
        uerr(ENOMEM, c"out of memory")
    }

    /// An errno from the compiler, whose message comes separately.
    pub(crate) fn compile(errno: i32, detail: MsgBuf) -> Self {
        UserError { err: Error::from_errno(-errno), msg: c"invalid ruleset", detail: Some(detail) }
    }

    /// The same error, its message prefixed with the table's name (a transaction of several
    /// tables says which one failed).
    fn in_table(self, table: TableId) -> Self {
        let detail = match &self.detail {
            Some(d) => {
                let n = d.buf.iter().position(|&b| b == 0).unwrap_or(d.buf.len());
                let text = core::str::from_utf8(d.buf.get(..n).unwrap_or(&[])).unwrap_or("");
                MsgBuf::format(format_args!("table {}: {}", table.name(), text))
            }
            None => MsgBuf::format(format_args!("table {}: {}", table.name(), self.msg.to_str().unwrap_or(""))),
        };
        UserError { err: self.err, msg: self.msg, detail: Some(detail) }
    }
}

impl From<crate::engine::compiled::OutOfMemory> for UserError {
    fn from(_: crate::engine::compiled::OutOfMemory) -> Self {
        Self::nomem()
    }
}

impl From<kernel::alloc::AllocError> for UserError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self::nomem()
    }
}

/// A table's new configuration and version, ready to publish: everything is allocated and
/// checked, so publishing cannot fail.
struct Prepared {
    /// Taken when published.
    version: Option<KBox<Version>>,
    next_id: u64,
    /// The counter pool with the slots of this change.
    pool: PoolNext,
    config: NewConfig,
}

/// A table's configuration after a change.
enum NewConfig {
    /// All of it (the change compiled the table).
    Whole {
        chains: KVVec<ChainInfo>,
        rules: KVVec<RuleInfo>,
        specs: KVVec<u8>,
        /// The `recent` lists the new version uses (each once).
        recent: KVVec<Arc<RecentList>>,
        /// The new version's match states, rule by rule.
        states: KVVec<Slot>,
    },
    /// What changed (a delta over the live version): applied in place when committed.
    Patch(Patch),
}

/// The changes of a configuration whose version is a delta ([`prepare_delta`]).
struct Patch {
    /// Chains whose policy is set.
    policies: KVVec<(usize, Option<Policy>)>,
    /// Each chain's policy counter slot.
    chain_slots: KVVec<u32>,
    /// Rules deleted (indices, ascending).
    deleted: KVVec<usize>,
    /// Rules added, each with its index in the new configuration's rules, ascending (`start`
    /// into `bytes`).
    added: KVVec<(usize, RuleInfo)>,
    /// The new rules' encodings, back to back.
    bytes: KVVec<u8>,
    /// Bytes of the deleted rules' encodings (left unused in the configuration's `specs`).
    garbage: usize,
}

impl Prepared {
    /// The table's rules and encoding bytes once committed (`tc`: as it is).
    fn size(&self, tc: &TableConfig) -> (usize, usize) {
        match &self.config {
            NewConfig::Whole { rules, specs, .. } => (rules.len(), specs.len()),
            NewConfig::Patch(x) => (
                (tc.rules.len() + x.added.len()).saturating_sub(x.deleted.len()),
                (tc.specs.len() + x.bytes.len()).saturating_sub(tc.garbage + x.garbage),
            ),
        }
    }
}

/// Every `recent` list of the namespace's live versions (a list used by several tables comes
/// once per table).
pub(crate) fn recent_lists(cfg: &[TableConfig; NUM_TABLES]) -> impl Iterator<Item = &Arc<RecentList>> {
    cfg.iter().flat_map(|t| t.recent.iter())
}

/// Replaces one table (`CMD_REPLACE_TABLE`: the payload holds one table's attributes) or
/// several (`CMD_REPLACE_TABLES`: the tables' attributes one after the other, each table's
/// starting with its `A_TABLE`) as one
/// transaction: every table is decoded, checked, compiled and allocated first, and if anything
/// fails nothing changes. Then all are published at once, and the old versions are freed after
/// a grace period (by a worker: this does not wait).
pub(crate) fn replace(
    req: &mut Request<'_>,
    cfg: &mut TablesWriter<'_>,
    ct: &CtBox,
    settings: &crate::engine::conntrack::settings::Settings,
    payload: &[u8],
    several: bool,
) -> Result<(), UserError> {
    settle(req, cfg);
    let t0 = shim::ktime_ns();
    let writers = &*cfg;
    let prepared = prepare_all(writers, payload, several, |tc, table, generation, flags, p, known| {
        // The generation check covers a table's first write too: a writer that read the
        // table before anyone wrote it (generation 0) loses against one that wrote since.
        if flags & rulewire::TF_CHECK_GENERATION != 0 && generation != Some(tc.generation) {
            return Err(uerr(EAGAIN, c"table changed meanwhile, try again"));
        }
        prepare(tc, table, p, known, writers.live(table as usize))
    })?;
    publish(req, cfg, ct, settings, prepared, t0)
}

/// The tables of a request, each prepared by `one` (its configuration, id, generation and
/// flags, its attributes, and the `recent` lists a rule may find by name: the live ones and
/// those this transaction's earlier tables made). `several`: the tables' attributes one after
/// the other, each starting with its `A_TABLE`; else exactly one table. A table may appear
/// once; errors name the table.
fn prepare_all(
    cfg: &[TableConfig; NUM_TABLES],
    payload: &[u8],
    several: bool,
    mut one: impl FnMut(&TableConfig, TableId, Option<u64>, u32, &[u8], &[&Arc<RecentList>]) -> Result<Prepared, UserError>,
) -> Result<[Option<KBox<Prepared>>; NUM_TABLES], UserError> {
    // (Boxed: a change's frames nest deep on a small kernel stack.)
    let mut prepared: [Option<KBox<Prepared>>; NUM_TABLES] = [const { None }; NUM_TABLES];
    let mut add = |p: &[u8]| -> Result<(), UserError> {
        let (table, generation, flags) = table_of(p)?;
        if prepared.get(table as usize).ok_or(uerr(EINVAL, c"no such table"))?.is_some() {
            return Err(uerr(EINVAL, c"a table appears twice in one transaction"));
        }
        let tc = cfg.get(table as usize).ok_or(uerr(EINVAL, c"no such table"))?;
        let mut known: KVVec<&Arc<RecentList>> = KVVec::new();
        let made = prepared.iter().flatten().filter_map(|p| match &p.config {
            NewConfig::Whole { recent, .. } => Some(recent.iter()),
            NewConfig::Patch(_) => None,
        });
        for l in Iterator::chain(recent_lists(cfg), made.flatten()) {
            known.push(l, GFP_KERNEL_ACCOUNT)?;
        }
        let new = one(tc, table, generation, flags, p, &known).map_err(|e| e.in_table(table))?;
        drop(known);
        if let Some(slot) = prepared.get_mut(table as usize) {
            *slot = Some(KBox::new(new, GFP_KERNEL_ACCOUNT)?);
        }
        Ok(())
    };
    if several {
        for section in crate::engine::wire::sections(payload, rulewire::A_TABLE)
            .map_err(|_| uerr(EINVAL, c"malformed attributes: each table must start with its A_TABLE"))?
        {
            add(section)?;
        }
    } else {
        let tables = AttrIter::new(payload).filter(|a| a.as_ref().is_ok_and(|a| a.ty == rulewire::A_TABLE)).count();
        if tables > 1 {
            return Err(uerr(EINVAL, c"one A_TABLE expected"));
        }
        add(payload)?;
    }
    Ok(prepared)
}

/// Lets the counter slots that only the versions earlier changes retired used be reused,
/// once their grace periods are over (waiting for what is left of them, usually nothing).
fn settle(req: &mut Request<'_>, cfg: &mut [TableConfig; NUM_TABLES]) {
    for tc in cfg.iter_mut() {
        if let Some(gp) = tc.pending_gp.take() {
            req.wait_gp(gp);
        }
        tc.pool.release_pending();
    }
}

/// Publishes prepared tables: the namespace's limits are checked, connection tracking is
/// turned on if a new version needs it, then every table is switched at once and the old
/// versions are freed after a grace period (by a worker: this does not wait).
fn publish(
    req: &mut Request<'_>,
    cfg: &mut TablesWriter<'_>,
    ct: &CtBox,
    settings: &crate::engine::conntrack::settings::Settings,
    mut prepared: [Option<KBox<Prepared>>; NUM_TABLES],
    t0: u64,
) -> Result<(), UserError> {
    if prepared.iter().all(Option::is_none) {
        return Err(uerr(EINVAL, c"no table to replace"));
    }
    check_limits(cfg, &prepared)?;
    // Room to free each old version later (publishing cannot fail).
    let mut slots: [Option<FreeSlot>; NUM_TABLES] = [const { None }; NUM_TABLES];
    for (p, f) in prepared.iter().zip(slots.iter_mut()) {
        if p.as_ref().is_some_and(|p| p.version.is_some()) {
            *f = Some(FreeSlot::new(req).map_err(|_| UserError::nomem())?);
        }
    }
    // Everything is compiled and allocated; the namespace's lock is held. A test can stop a
    // replace here to show that other namespaces go on meanwhile.
    req.test_hold();
    // Rules that look at connections need the namespace to track them from the moment they
    // are live (as nf_ct_netns_get in a match's checkentry).
    let needs_ct = prepared.iter().flatten().any(|p| p.version.as_ref().is_some_and(|v| v.uses_conntrack()));
    if needs_ct {
        req.defrag_enable().map_err(|_| uerr(ENOMEM, c"cannot turn on IPv4 defragmentation"))?;
        crate::conntrack::enable(ct, settings, req).map_err(|_| uerr(ENOMEM, c"out of memory for the connection table"))?;
    }

    // Publish every table at once. The old versions are not waited for: a worker frees them
    // once a grace period that starts now is over, and the next change lets the slots only
    // they used be reused after it (it nearly always is over by then).
    let mut retired = [const { Retired::none() }; NUM_TABLES];
    let took = shim::ktime_ns().wrapping_sub(t0);
    for v in prepared.iter_mut().flatten().filter_map(|p| p.version.as_mut()) {
        v.set_change_ns(took);
    }
    for (i, (p, r)) in prepared.iter_mut().zip(retired.iter_mut()).enumerate() {
        if let Some(v) = p.as_mut().and_then(|p| p.version.take()) {
            *r = cfg.publish(i, Some(v));
        }
    }
    let mut newest = cfg.iter().map(|t| t.created).max().unwrap_or(0);
    let gp = req.start_gp();
    for (((p, tc), r), f) in prepared.into_iter().zip(cfg.iter_mut()).zip(retired).zip(slots) {
        if let Some(f) = f {
            r.free_after_gp(f, req);
        }
        let Some(p) = p else { continue };
        tc.pending_gp = Some(gp);
        commit(tc, p);
        if tc.created == 0 {
            newest = newest.wrapping_add(1);
            tc.created = newest;
        }
    }
    Ok(())
}

/// Most changes one update request may carry ([`rulewire::MAX_OPS`]; a chain rewrite counts
/// once, whatever its rules: the message size and the namespace's rule limit bound those).
const MAX_OPS: usize = rulewire::MAX_OPS as usize;

/// A rule of a table being changed: its id (0: new), counters to set and encoding (in the
/// current configuration or in the request).
#[derive(Clone, Copy)]
struct Entry<'a> {
    id: u64,
    /// Its index in the current configuration ([`NEW`]: a new rule).
    old: usize,
    counters: Option<Counters>,
    spec: &'a [u8],
}

/// Room a compiled configuration keeps for the rules that changes after it may append
/// ([`prepare_delta`]: at most [`crate::engine::delta::MAX_TAIL`] before the table is
/// compiled again), so that patching it grows no vector (which would copy the whole of it).
const SLACK_RULES: usize = crate::engine::delta::MAX_TAIL as usize;
/// The same for their encodings (512 bytes each, more than a rule usually takes).
const SLACK_BYTES: usize = SLACK_RULES * 512;

/// A chain's rules while an update edits them.
type Splice<'a> = splice::Splice<Entry<'a>, KStore<Piece<Entry<'a>>>>;

/// [`Entry::old`] of a new rule.
const NEW: usize = usize::MAX;

/// Changes tables by a few rules or chains (`CMD_UPDATE_TABLE`, or `CMD_UPDATE_TABLES` for
/// several, each table's attributes starting with its `A_TABLE`): the changes (`A_OP`) apply
/// in order to the configuration of the generation the request names (`EAGAIN` when another
/// writer changed it meanwhile), or with `TF_CURRENT` to the table as it is, each change
/// naming its chain (a one-rule command that read nothing); every rule they do not touch
/// keeps its identity, so its counters and state stay. The result is compiled and published
/// exactly as a replace is: all tables or none, one switch. The request carries only what
/// changed, and nothing is read back.
pub(crate) fn update(
    req: &mut Request<'_>,
    cfg: &mut TablesWriter<'_>,
    ct: &CtBox,
    settings: &crate::engine::conntrack::settings::Settings,
    payload: &[u8],
    several: bool,
) -> Result<(), UserError> {
    settle(req, cfg);
    let t0 = shim::ktime_ns();
    let mut ops_left = MAX_OPS;
    let writers = &*cfg;
    let prepared = prepare_all(writers, payload, several, |tc, table, generation, flags, p, known| {
        // Positions mean something only in the generation they were read from (or, for
        // changes of the current table, in the table as it is).
        let current = flags & rulewire::TF_CURRENT != 0;
        if !current && flags & rulewire::TF_CHECK_GENERATION == 0 {
            return Err(uerr(EINVAL, c"an update must name the generation it applies to"));
        }
        if flags & rulewire::TF_CHECK_GENERATION != 0 && generation != Some(tc.generation) {
            return Err(uerr(EAGAIN, c"table changed meanwhile, try again"));
        }
        let edited = apply_ops(tc, table, flags, p, &mut ops_left)?;
        let live = writers.live(table as usize);
        if let Some(p) = prepare_delta(tc, flags, &edited, live)? {
            return Ok(p);
        }
        let config = config_of(tc, edited, flags)?;
        compile_config(tc, table, config, known, live)
    })?;
    // Room for what a patched configuration gains (nothing changes yet).
    for (tc, p) in cfg.iter_mut().zip(prepared.iter()) {
        if let Some(NewConfig::Patch(x)) = p.as_ref().map(|p| &p.config) {
            tc.rules.reserve(x.added.len(), GFP_KERNEL_ACCOUNT)?;
            tc.specs.reserve(x.bytes.len(), GFP_KERNEL_ACCOUNT)?;
        }
    }
    publish(req, cfg, ct, settings, prepared, t0)
}

/// A rule a delta adds ([`prepare_delta`]).
struct Added<'a> {
    chain: u32,
    /// The position in the live version of the rule it goes before (`None`: its chain's end).
    before: Option<u32>,
    /// Its number in its chain.
    number: u32,
    entry: &'a Entry<'a>,
    /// Its index in the new configuration's rules.
    index: usize,
}

/// Prepares an update that a delta over the live version expresses
/// ([`crate::engine::delta`]): in a table whose chains stay the same, rules deleted, rules
/// added (appended, or inserted before a rule that stays), policies set. Its cost is the change's and the
/// chains' (and the delta's, which is bounded), not the rules': the compiled ruleset is
/// shared, and the configuration is patched in place when the change is committed.
/// `Ok(None)`: it is no such update, the table is compiled.
// (Its own frame: the kernel stack is small, and a change nests deep.)
#[inline(never)]
fn prepare_delta(tc: &TableConfig, flags: u32, e: &Edited<'_>, live: Option<&Version>) -> Result<Option<Prepared>, UserError> {
    let a = GFP_KERNEL_ACCOUNT;
    let Some(live) = live else { return Ok(None) };
    let same_chains = e.chains.len() == tc.chains.len() && e.chains.iter().zip(tc.chains.iter()).all(|(x, y)| x.name() == y.name());
    if tc.chains.is_empty() || !same_chains || !e.known {
        return Ok(None);
    }
    let compiled = live.compiled_rules();
    let max_dead = crate::engine::delta::max_dead(u32::try_from(compiled).unwrap_or(u32::MAX)) as usize;
    let max_tail = crate::engine::delta::MAX_TAIL as usize;
    // Per chain: runs of its current rules, in order (what lies between them deleted), and
    // new rules, each before the first rule of the run that follows it (or at the end).
    let mut deleted: KVVec<usize> = KVVec::new();
    let mut added: KVVec<Added<'_>> = KVVec::new();
    let mut first = 0usize;
    // Rules of the new configuration before the chain's.
    let mut placed = 0usize;
    for (ci, sp) in e.per.iter().enumerate() {
        let chain = u32::try_from(ci).map_err(|_| uerr(E2BIG, c"too many chains"))?;
        let end = tc.rules.partition_point(|r| r.chain as usize <= ci).max(first);
        // `n`: the chain's rules so far; `waiting`: the first new rule without its next rule.
        let (mut next, mut n, mut waiting) = (first, 0usize, added.len());
        for p in sp.pieces() {
            match p {
                Piece::Old { len: 0, .. } => {}
                Piece::Old { first: f, len } if *f >= next && f + len <= end => {
                    for d in next..*f {
                        deleted.push(d, a)?;
                    }
                    let at = tc.rules.get(*f).ok_or(uerr(EINVAL, c"internal error: a run past the rules"))?.at;
                    for x in added.get_mut(waiting..).unwrap_or(&mut []) {
                        x.before = Some(at);
                    }
                    waiting = added.len();
                    next = f + len;
                    n += len;
                }
                Piece::New(x) => {
                    let number = u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1);
                    added.push(Added { chain, before: None, number, entry: x, index: placed + n }, a)?;
                    n += 1;
                }
                Piece::Old { .. } => return Ok(None),
            }
            if deleted.len() > max_dead || added.len() > max_tail {
                return Ok(None);
            }
        }
        placed += n;
        for d in next..end {
            deleted.push(d, a)?;
        }
        if deleted.len() > max_dead {
            return Ok(None);
        }
        first = end;
    }
    // A change that deletes more rules than it leaves compiles the table: that costs what is
    // left, no more than the change, and lets the pool give back the blocks no rule uses.
    let left = (tc.rules.len() + added.len()).saturating_sub(deleted.len());
    if deleted.len() > left {
        return Ok(None);
    }
    // A `recent` list lives while a rule names it: deleting such a rule compiles the table
    // (which lets go of the lists no rule names any more).
    if deleted.iter().filter_map(|&o| tc.rules.get(o)).any(|r| live.names_a_list(r.at)) {
        return Ok(None);
    }
    let mut policies: KVVec<(usize, Option<Policy>)> = KVVec::new();
    for (ci, (x, y)) in e.chains.iter().zip(tc.chains.iter()).enumerate() {
        if x.policy != y.policy {
            // (A builtin chain without a policy is refused by the compiler.)
            if x.policy.is_none() {
                return Ok(None);
            }
            policies.push((ci, x.policy), a)?;
        }
    }
    let mut specs: KVVec<RuleIn<'_>> = KVVec::with_capacity(added.len(), a)?;
    for x in added.iter() {
        specs.push(RuleIn::Spec(rulewire::decode_rule(x.entry.spec).map_err(|_| uerr(EINVAL, c"malformed rule specification"))?), a)?;
    }
    // Counter slots for the new rules (given back untouched if the delta cannot be made).
    let mut alloc = SlotAlloc::new(&tc.pool)?;
    let mut slots: KVVec<u32> = KVVec::with_capacity(added.len(), a)?;
    for x in added.iter() {
        slots.push(alloc.fresh(x.entry.counters.unwrap_or_default())?, a)?;
    }
    // Each chain's policy counter slot: fresh ones (from zero) when the policies' counters
    // restart, as iptables-legacy's every change does.
    let reset = flags & rulewire::TF_RESET_POLICY_COUNTERS != 0;
    let mut chain_slots: KVVec<u32> = KVVec::with_capacity(tc.chains.len(), a)?;
    for c in tc.chains.iter() {
        let slot = if reset && c.policy.is_some() { alloc.fresh(Counters::default())? } else { c.slot };
        chain_slots.push(slot, a)?;
    }
    // (Last first: a rule's deletion never waits on one after it still being live.)
    let deletes = deleted.iter().rev().filter_map(|&o| tc.rules.get(o)).map(|r| Change::Delete(r.at));
    let appends = added.iter().zip(specs.iter()).map(|(x, spec)| Change::Add { chain: x.chain, before: x.before, number: x.number, rule: spec });
    let sets = policies.iter().filter_map(|&(c, p)| Some(Change::Policy { chain: c as u32, policy: p? }));
    let changes = Iterator::chain(Iterator::chain(deletes, appends), sets);
    // One past the highest slot the new configuration uses: the pool lets go of the blocks
    // past it. Looked for only when the live slots would fit in fewer blocks (a table that
    // shrank), else the blocks handed out so far.
    let mut end = alloc.end();
    let live_slots = (tc.rules.len() + added.len() + chain_slots.len()).saturating_sub(deleted.len());
    if live_slots.saturating_add(crate::ffi::pcpu::PER_BLOCK as usize) <= alloc.capacity() {
        let mut gone = deleted.iter().copied().peekable();
        let kept = tc.rules.iter().enumerate().filter(|&(i, _)| gone.next_if_eq(&i).is_none()).map(|(_, r)| r.slot);
        let used = Iterator::chain(Iterator::chain(kept, slots.iter().copied()), chain_slots.iter().copied()).filter(|&s| s != carry::NO_SLOT);
        end = used.max().map_or(0, |s| s.saturating_add(1));
    }
    let tail = live.appended();
    let Some(version) = live.with_delta(&e.chains, changes, &slots, &chain_slots, alloc.blocks(end))? else { return Ok(None) };
    // The configuration's patch: the new rules' encodings back to back, their ids, slots and
    // places in the new version.
    let mut next_id = tc.next_id;
    let mut patch = Patch { policies, chain_slots, deleted: KVVec::new(), added: KVVec::with_capacity(added.len(), a)?, bytes: KVVec::new(), garbage: 0 };
    for (k, (x, &slot)) in added.iter().zip(slots.iter()).enumerate() {
        let start = u32::try_from(patch.bytes.len()).map_err(|_| uerr(E2BIG, c"table too large"))?;
        let len = u32::try_from(x.entry.spec.len()).map_err(|_| uerr(E2BIG, c"rule too large"))?;
        patch.bytes.extend_from_slice(x.entry.spec, a)?;
        let id = next_id.max(1);
        next_id = id.checked_add(1).ok_or(uerr(E2BIG, c"rule ids exhausted"))?;
        let at = u32::try_from(compiled + tail + k).map_err(|_| uerr(E2BIG, c"table too large"))?;
        patch.added.push((x.index, RuleInfo { chain: x.chain, id, slot, start, len, state_first: 0, at }), a)?;
    }
    // The deleted rules' slots: pending until the version that counts into them is gone.
    let mut freed: KVVec<u32> = KVVec::with_capacity(deleted.len(), a)?;
    for r in deleted.iter().filter_map(|&o| tc.rules.get(o)) {
        patch.garbage = patch.garbage.saturating_add(r.len as usize);
        if r.slot != carry::NO_SLOT {
            freed.push(r.slot, a)?;
        }
    }
    for (c, &slot) in tc.chains.iter().zip(patch.chain_slots.iter()) {
        if c.slot != slot && c.slot != carry::NO_SLOT {
            freed.push(c.slot, a)?;
        }
    }
    patch.deleted = deleted;
    let pool = alloc.finish(&freed, end)?;
    Ok(Some(Prepared { version: Some(version), next_id, pool, config: NewConfig::Patch(patch) }))
}

/// The configuration `tc` becomes with the changes of one table's update attributes. Each
/// change costs the length of the chain it touches (or the number of chains, for a new or
/// deleted chain; a chain by name costs a binary search while the user chains are in name
/// order, else the number of chains), never the whole table's.
// (Its own frame: the kernel stack is small, and a change nests deep.)
#[inline(never)]
fn apply_ops<'a>(tc: &'a TableConfig, table: TableId, flags: u32, payload: &'a [u8], ops_left: &mut usize) -> Result<Edited<'a>, UserError> {
    let a = GFP_KERNEL_ACCOUNT;
    let range = || uerr(E2BIG, c"rule position out of range");
    // A table never written has its builtin chains only (as a read shows it).
    let n0 = if tc.chains.is_empty() { table.builtin_hooks().len() } else { tc.chains.len() };
    let mut chains: KVVec<ChainInfo> = KVVec::with_capacity(n0, a)?;
    let mut per: KVVec<Splice<'_>> = KVVec::with_capacity(n0, a)?;
    // Each chain starts as the run of its current rules (grouped by chain, in chain order).
    let mut first = 0usize;
    for i in 0..n0 {
        let (name, policy) = chain_at(tc, table, i).ok_or(uerr(EINVAL, c"no such chain"))?;
        chains.push(ChainInfo::new(name, policy).map_err(|_| uerr(EINVAL, c"bad chain name"))?, a)?;
        let end = tc.rules.partition_point(|r| r.chain as usize <= i).max(first);
        per.push(Splice::new(KStore::new(), first, end - first)?, a)?;
        first = end;
    }
    if first != tc.rules.len() {
        return Err(uerr(EINVAL, c"internal error: rule of a missing chain"));
    }
    // Every rule is an old one (once, where it was or moved) or a new one, unless a chain's
    // new contents name rules by id: then the ids are matched up by `carry::plan_ids`.
    let mut known = true;
    // Chains by name: the user chains follow the builtin ones in name order (as rnfctl keeps
    // them), so a name is found by binary search; a table another client wrote out of order
    // is searched linearly.
    let mut sorted = user_chains_sorted(&chains);
    // Some change names its chain (read nothing): new rules' targets are checked at the end.
    let mut any_by_name = false;
    for attr in AttrIter::new(payload) {
        let attr = attr.map_err(|_| uerr(EINVAL, c"malformed attributes"))?;
        if attr.ty != rulewire::A_OP {
            continue;
        }
        *ops_left = ops_left.checked_sub(1).ok_or(uerr(E2BIG, c"too many changes in one request"))?;
        // A long request must not keep the CPU (the configuration mutex sleeps).
        shim::cond_resched();
        let op = rulewire::decode_op(&attr).map_err(|_| uerr(EINVAL, c"malformed change"))?;
        let by_name = op.chain_name.is_some();
        any_by_name |= by_name;
        if let Some(spec) = op.spec {
            check_by_name(&chains, sorted, by_name, spec)?;
        }
        // (A new chain of the table as it is goes to its place in name order.)
        let current_ok = by_name || (op.kind == rulewire::OpKind::NewChain && op.pos == u32::MAX);
        if flags & rulewire::TF_CURRENT != 0 && !current_ok {
            return Err(uerr(EINVAL, c"a change of the table as it is must name its chain"));
        }
        // A chain defined by name that does not exist yet is made first, at its place.
        let mut made = None;
        let new_name = match op.kind {
            rulewire::OpKind::NewChain => op.name,
            rulewire::OpKind::DefineChain => op.chain_name.filter(|&n| find_chain(&chains, sorted, n).is_none()),
            _ => None,
        };
        if let Some(name) = new_name {
            if !crate::engine::rule::valid_chain_name(name) || find_chain(&chains, sorted, name).is_some() {
                return Err(uerr(EEXIST, c"bad or duplicate chain name"));
            }
            let builtins = chains.iter().take_while(|c| c.policy.is_some()).count();
            // `u32::MAX`: its place in name order.
            let pos = if op.pos == u32::MAX || op.kind == rulewire::OpKind::DefineChain {
                builtins + chains.get(builtins..).unwrap_or(&[]).partition_point(|c| c.name().as_bytes() < name.as_bytes())
            } else {
                op.pos as usize
            };
            if pos > chains.len() || pos < builtins || chains.get(pos).is_some_and(|c| c.policy.is_some()) {
                return Err(uerr(EINVAL, c"a new chain goes after the builtin chains"));
            }
            chains.reserve(1, a)?;
            per.reserve(1, a)?;
            chains.insert_within_capacity(pos, ChainInfo::new(name, None).map_err(|_| uerr(EINVAL, c"bad chain name"))?)
                .map_err(|_| UserError::nomem())?;
            per.insert_within_capacity(pos, Splice::new(KStore::new(), 0, 0)?).map_err(|_| UserError::nomem())?;
            sorted = sorted && user_chains_sorted_at(&chains, builtins, pos);
            if op.kind == rulewire::OpKind::NewChain {
                continue;
            }
            made = Some(pos);
        }
        let ci = match (made, op.chain_name) {
            (Some(pos), _) => pos,
            (None, Some(n)) => find_chain(&chains, sorted, n).ok_or(uerr(ENOENT, c"no such chain"))?,
            (None, None) => op.chain as usize,
        };
        let pos = op.pos as usize;
        let builtin = chains.get(ci).ok_or(uerr(ENOENT, c"no such chain"))?.policy.is_some();
        let rules = per.get_mut(ci).ok_or(uerr(ENOENT, c"no such chain"))?;
        let n = rules.len();
        let new = |spec| Entry { id: 0, old: NEW, counters: op.counters, spec };
        // By name: `u32::MAX` appends, a delete may name its rule by specification.
        let pos = match (op.chain_name, op.kind, op.spec) {
            (Some(_), rulewire::OpKind::Insert, _) if op.pos == u32::MAX => n,
            (Some(_), rulewire::OpKind::Delete, Some(spec)) => rules
                .position(|o| tc.rules.get(o).is_some_and(|r| tc.spec(r) == spec), |e| e.spec == spec)
                .ok_or(uerr(ENOENT, c"no such rule"))?,
            _ => pos,
        };
        let splice = |e: SpliceError| match e {
            SpliceError::OutOfRange => range(),
            SpliceError::OutOfMemory => UserError::nomem(),
        };
        match (op.kind, op.spec) {
            (rulewire::OpKind::Insert, Some(spec)) if pos <= n => rules.insert(pos, new(spec)).map_err(splice)?,
            (rulewire::OpKind::Delete, None) if pos < n => rules.remove(pos).map_err(splice)?,
            (rulewire::OpKind::Delete, Some(_)) if op.chain_name.is_some() && pos < n => rules.remove(pos).map_err(splice)?,
            (rulewire::OpKind::Replace, Some(spec)) if pos < n => rules.replace(pos, new(spec)).map_err(splice)?,
            (rulewire::OpKind::SetChain, None) | (rulewire::OpKind::DefineChain, None) => {
                if op.kind == rulewire::OpKind::DefineChain && builtin {
                    return Err(uerr(EINVAL, c"not a chain of that kind"));
                }
                let mut next: KVVec<Entry<'_>> = KVVec::new();
                for r in rulewire::op_rules(&op) {
                    let r = r.map_err(|_| uerr(EINVAL, c"malformed rule"))?;
                    if r.chain != op.chain || (by_name && r.id != 0) {
                        return Err(uerr(EINVAL, c"a chain's new rule names another chain or rule"));
                    }
                    known &= r.id == 0;
                    next.push(Entry { id: r.id, old: NEW, counters: r.counters, spec: r.spec }, a)?;
                }
                // Rules by name are checked once, at the end.
                if !by_name {
                    for e in next.iter() {
                        check_by_name(&chains, sorted, false, e.spec)?;
                    }
                }
                rules.set(next.into_iter())?;
            }
            (rulewire::OpKind::DeleteChain, None) if !builtin => {
                if n != 0 {
                    return Err(uerr(ENOTEMPTY, c"the chain still has rules"));
                }
                chains.remove(ci).map_err(|_| uerr(ENOENT, c"no such chain"))?;
                per.remove(ci).map_err(|_| uerr(ENOENT, c"no such chain"))?;
            }
            (rulewire::OpKind::SetPolicy, None) if builtin => {
                if let Some(c) = chains.get_mut(ci) {
                    c.policy = op.policy;
                }
            }
            (rulewire::OpKind::DeleteChain | rulewire::OpKind::SetPolicy, None) => {
                return Err(uerr(EINVAL, c"not a chain of that kind"));
            }
            _ => return Err(range()),
        }
    }
    // A change that read nothing meant a target extension where the table, as the request
    // leaves it, has no chain of that name (a one-rule change is checked when made too: a
    // chain the request then deletes).
    if any_by_name {
        for e in per.iter().flat_map(|l| l.pieces().iter()).filter_map(|p| match p {
            Piece::New(e) => Some(e),
            Piece::Old { .. } => None,
        }) {
            check_by_name(&chains, sorted, true, e.spec)?;
            // A long list must not keep the CPU.
            shim::cond_resched();
        }
    }
    Ok(Edited { chains, per, known })
}

/// A table's chains and rules as an update's changes left them, before anything is copied:
/// each chain's rules as runs of current ones and new ones.
struct Edited<'a> {
    chains: KVVec<ChainInfo>,
    per: KVVec<Splice<'a>>,
    /// Every rule is a current one or a new one (no chain's new rules are named by id).
    known: bool,
}

/// The configuration an update makes (see [`apply_ops`]).
// (Its own frame: the kernel stack is small, and a change nests deep.)
#[inline(never)]
fn config_of(tc: &TableConfig, e: Edited<'_>, flags: u32) -> Result<Config, UserError> {
    let a = GFP_KERNEL_ACCOUNT;
    let Edited { chains, per, known } = e;
    // The new configuration: builtin chains' policy counters carried by name (or reset), the
    // rules' encodings copied back to back, chain by chain (a run of current rules at once).
    let mut chain_counters = KVVec::with_capacity(chains.len(), a)?;
    for c in chains.iter() {
        let reset = flags & rulewire::TF_RESET_POLICY_COUNTERS != 0 && c.policy.is_some();
        chain_counters.push(reset.then(Counters::default), a)?;
    }
    let run = |first: usize, len: usize| tc.rules.get(first..first.saturating_add(len)).unwrap_or(&[]);
    let (mut count, mut bytes) = (0usize, 0usize);
    for p in per.iter().flat_map(|l| l.pieces().iter()) {
        let (n, b) = match p {
            Piece::Old { first, len } => (*len, run(*first, *len).iter().fold(0usize, |b, r| b.saturating_add(r.len as usize))),
            Piece::New(e) => (1, e.spec.len()),
        };
        count = count.saturating_add(n);
        bytes = bytes.saturating_add(b);
    }
    let (max_rules, max_bytes) = shim::limits();
    if count > max_rules || bytes > max_bytes {
        return Err(limit_error(max_rules, max_bytes));
    }
    let mut rules = KVVec::with_capacity(count + SLACK_RULES, a)?;
    let mut rule_counters = KVVec::with_capacity(count, a)?;
    let mut olds = if known { Some(KVVec::with_capacity(count, a)?) } else { None };
    let mut specs = KVVec::with_capacity(bytes + SLACK_BYTES, a)?;
    let too_large = || uerr(E2BIG, c"table too large");
    for (ci, list) in per.iter().enumerate() {
        let chain = u32::try_from(ci).map_err(|_| uerr(E2BIG, c"too many chains"))?;
        for p in list.pieces() {
            match p {
                Piece::Old { first, len } => {
                    // Rules whose encodings follow each other are copied at once (a change that
                    // only patched the table leaves encodings elsewhere).
                    let rs = run(*first, *len);
                    let mut k = 0usize;
                    while let Some(head) = rs.get(k) {
                        let mut n = 1usize;
                        let mut end = head.start as usize + head.len as usize;
                        while let Some(r) = rs.get(k + n).filter(|r| r.start as usize == end) {
                            end += r.len as usize;
                            n += 1;
                        }
                        let base = u32::try_from(specs.len()).map_err(|_| too_large())?;
                        let bytes = tc.specs.get(head.start as usize..end).ok_or(uerr(EINVAL, c"internal error: a rule's encoding out of the configuration"))?;
                        specs.extend_from_slice(bytes, a)?;
                        for (j, r) in rs.iter().enumerate().skip(k).take(n) {
                            let at = base.checked_add(r.start - head.start).ok_or_else(too_large)?;
                            rules.push(RuleInfo { chain, id: r.id, slot: carry::NO_SLOT, start: at, len: r.len, state_first: 0, at: u32::MAX }, a)?;
                            rule_counters.push(None, a)?;
                            if let Some(o) = olds.as_mut() {
                                o.push(first + j, a)?;
                            }
                        }
                        k += n;
                    }
                }
                Piece::New(e) => {
                    let start = u32::try_from(specs.len()).map_err(|_| too_large())?;
                    let len = u32::try_from(e.spec.len()).map_err(|_| uerr(E2BIG, c"rule too large"))?;
                    specs.extend_from_slice(e.spec, a)?;
                    rules.push(RuleInfo { chain, id: e.id, slot: carry::NO_SLOT, start, len, state_first: 0, at: u32::MAX }, a)?;
                    rule_counters.push(e.counters, a)?;
                    if let Some(o) = olds.as_mut() {
                        o.push(e.old, a)?;
                    }
                }
            }
        }
    }
    Ok(Config { chains, chain_counters, rules, rule_counters, specs, olds })
}

/// Chain `i` of a table's configuration, or of its builtin chains with ACCEPT policies while
/// it was never written (what [`encode_items`] lists then).
fn chain_at(tc: &TableConfig, table: TableId, i: usize) -> Option<(&str, Option<Policy>)> {
    if tc.chains.is_empty() {
        return table.builtin_hooks().get(i).map(|h| (h.chain_name(), Some(Policy::Accept)));
    }
    tc.chains.get(i).map(|c| (c.name(), c.policy))
}

/// Whether every builtin chain comes first and the user chains after them are in name order
/// (what rnfctl writes; another client may write any order, then chains are searched one by
/// one).
fn user_chains_sorted(chains: &[ChainInfo]) -> bool {
    let builtins = chains.iter().take_while(|c| c.policy.is_some()).count();
    let user = chains.get(builtins..).unwrap_or(&[]);
    user.iter().all(|c| c.policy.is_none())
        && user.windows(2).all(|w| matches!(w, [x, y] if x.name().as_bytes() < y.name().as_bytes()))
}

/// Whether the user chain just put at `pos` (at or after the `builtins` builtin chains, which
/// come first) keeps the user chains in name order.
fn user_chains_sorted_at(chains: &[ChainInfo], builtins: usize, pos: usize) -> bool {
    let name = |i: usize| chains.get(i).filter(|_| i >= builtins).map(|c| c.name().as_bytes());
    let Some(me) = name(pos) else { return false };
    let before = pos.checked_sub(1).and_then(name);
    before.is_none_or(|b| b < me) && name(pos + 1).is_none_or(|n| me < n)
}

/// The index of the chain named `name`: the builtin chains are looked at one by one, the user
/// chains by binary search when `sorted`, else one by one.
fn find_chain(chains: &[ChainInfo], sorted: bool, name: &str) -> Option<usize> {
    let builtins = chains.iter().take_while(|c| c.policy.is_some()).count();
    if let Some(i) = chains.get(..builtins).unwrap_or(&[]).iter().position(|c| c.name() == name) {
        return Some(i);
    }
    let user = chains.get(builtins..).unwrap_or(&[]);
    if sorted {
        return user.binary_search_by(|c| c.name().as_bytes().cmp(name.as_bytes())).ok().map(|i| builtins + i);
    }
    user.iter().position(|c| c.name() == name).map(|i| builtins + i)
}

/// Checks a new rule's encoding; for a change that read nothing (`by_name`) also that its
/// target is what the command meant: it took `-j NAME` for the target extension NAME, and
/// iptables jumps to a user chain of that name instead (rnfctl then reads and asks again).
fn check_by_name(chains: &[ChainInfo], sorted: bool, by_name: bool, spec: &[u8]) -> Result<(), UserError> {
    let r = rulewire::decode_rule(spec).map_err(|_| uerr(EINVAL, c"malformed rule specification"))?;
    if by_name && r.target.extension_name().is_some_and(|x| find_chain(chains, sorted, x).is_some()) {
        return Err(uerr(EEXIST, c"a chain has the name of the rule's target"));
    }
    Ok(())
}

/// The table, generation and flags of one table's replace attributes.
fn table_of(payload: &[u8]) -> Result<(TableId, Option<u64>, u32), UserError> {
    let mut table = None;
    let mut generation = None;
    let mut flags = 0u32;
    for a in AttrIter::new(payload) {
        let a = a.map_err(|_| uerr(EINVAL, c"malformed attributes"))?;
        match a.ty {
            rulewire::A_TABLE => {
                let t = a.u32().map_err(|_| uerr(EINVAL, c"bad table attribute"))?;
                table = Some(TableId::from_u32(t).ok_or(uerr(EINVAL, c"no such table"))?);
            }
            rulewire::A_GENERATION => generation = a.u64().ok(),
            rulewire::A_TABLE_FLAGS => flags = a.u32().unwrap_or(0),
            _ => {}
        }
    }
    Ok((table.ok_or(uerr(EINVAL, c"missing table attribute"))?, generation, flags))
}

/// Decodes, checks and compiles one table's new configuration; allocates all it needs.
// (Its own frame: the kernel stack is small, and a change nests deep.)
#[inline(never)]
fn prepare(tc: &TableConfig, table: TableId, payload: &[u8], known: &[&Arc<RecentList>], live: Option<&Version>) -> Result<Prepared, UserError> {
    let a = GFP_KERNEL_ACCOUNT;
    let mut chains = KVVec::new();
    let mut chain_counters: KVVec<Option<Counters>> = KVVec::new();
    let mut rules: KVVec<RuleInfo> = KVVec::new();
    let mut rule_counters: KVVec<Option<Counters>> = KVVec::new();
    let mut specs = KVVec::new();
    let (max_rules, max_bytes) = shim::limits();
    for attr in AttrIter::new(payload) {
        let attr = attr.map_err(|_| uerr(EINVAL, c"malformed attributes"))?;
        match attr.ty {
            rulewire::A_CHAIN => {
                let c = rulewire::decode_chain(&attr).map_err(|_| uerr(EINVAL, c"malformed chain"))?;
                if chains.iter().any(|x: &ChainInfo| x.name() == c.name) {
                    return Err(uerr(EEXIST, c"duplicate chain name"));
                }
                chains.push(ChainInfo::new(c.name, c.policy).map_err(|_| uerr(EINVAL, c"bad chain name"))?, a)?;
                chain_counters.push(c.counters, a)?;
            }
            rulewire::A_RULE => {
                let r = rulewire::decode_rule_entry(&attr).map_err(|_| uerr(EINVAL, c"malformed rule"))?;
                rulewire::decode_rule(r.spec).map_err(|_| uerr(EINVAL, c"malformed rule specification"))?;
                // Refuse early, before a huge request allocates much (the namespace's total
                // is checked once every table is known).
                if rules.len() >= max_rules || specs.len().saturating_add(r.spec.len()) > max_bytes {
                    return Err(limit_error(max_rules, max_bytes));
                }
                let start = u32::try_from(specs.len()).map_err(|_| uerr(E2BIG, c"table too large"))?;
                let len = u32::try_from(r.spec.len()).map_err(|_| uerr(E2BIG, c"rule too large"))?;
                specs.extend_from_slice(r.spec, a)?;
                rules.push(RuleInfo { chain: r.chain, id: r.id, slot: carry::NO_SLOT, start, len, state_first: 0, at: u32::MAX }, a)?;
                rule_counters.push(r.counters, a)?;
            }
            _ => {}
        }
    }
    if rules.iter().any(|r| r.chain as usize >= chains.len()) {
        return Err(uerr(EINVAL, c"rule refers to a missing chain"));
    }
    if rules.capacity() - rules.len() < SLACK_RULES {
        rules.reserve(SLACK_RULES, a)?;
    }
    if specs.capacity() - specs.len() < SLACK_BYTES {
        specs.reserve(SLACK_BYTES, a)?;
    }
    compile_config(tc, table, Config { chains, chain_counters, rules, rule_counters, specs, olds: None }, known, live)
}

/// A table's configuration as a request makes it, before it is compiled.
struct Config {
    chains: KVVec<ChainInfo>,
    chain_counters: KVVec<Option<Counters>>,
    rules: KVVec<RuleInfo>,
    rule_counters: KVVec<Option<Counters>>,
    specs: KVVec<u8>,
    /// Per rule, its index in the current configuration ([`NEW`]: a new rule), when the
    /// change knows it (an update); else rules are matched up by id.
    olds: Option<KVVec<usize>>,
}

/// Compiles a table's new configuration (the current one is `tc`) and allocates all it needs
/// to be published: rule ids (known ones kept, new ones handed out), counter slots (kept by
/// surviving rules and builtin chains, fresh for new ones and for counters the request sets)
/// and the pool's free slots once the old version is retired.
// (Its own frame: the kernel stack is small, and a change nests deep.)
#[inline(never)]
fn compile_config(tc: &TableConfig, table: TableId, c: Config, known: &[&Arc<RecentList>], live: Option<&Version>) -> Result<Prepared, UserError> {
    let a = GFP_KERNEL_ACCOUNT;
    let Config { mut chains, chain_counters, mut rules, rule_counters, specs, olds } = c;
    // Rule ids: keep known ones, hand out new ones, refuse duplicates (engine/src/rules/carry.rs).
    let mut plan = KStore::with_capacity(rules.len())?;
    // An update's kept rules have their old encoding by construction (`apply_ops` copies it).
    let known_same = olds.is_some();
    let next_id = match olds {
        // An update knows where each rule comes from: no sort.
        Some(olds) => {
            let mut seen: KVVec<u64> = KVVec::from_elem(0, tc.rules.len() / 64 + 1, a)?;
            let origins = olds.iter().map(|&o| (o != NEW).then_some(o));
            carry::plan_known(|i| tc.rules.get(i).map(|r| r.id), origins, tc.next_id, &mut seen, &mut plan)
        }
        None => {
            let mut scratch = KStore::new();
            carry::plan_ids(tc.rules.iter().map(|r| r.id), rules.iter().map(|r| r.id), tc.next_id, &mut scratch, &mut plan)
        }
    }
    .map_err(carry_error)?;
    let plan = plan.into_inner();

    // Compile (this validates: builtin chains, jumps, loops, target restrictions) before any
    // counter slot is handed out: a refused ruleset allocates no counters.
    let mut made: KVVec<Arc<RecentList>> = KVVec::new();
    let mut lists = |r: RecentRef<'_>| -> kernel::error::Result<Arc<RecentList>> {
        let l = crate::recent::find_or_make(Iterator::chain(made.iter(), known.iter().copied()), r.name, r.mask, r.nstamps)?;
        if !made.iter().any(|m| Arc::ptr_eq(m, &l)) {
            made.push(l.clone(), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(l)
    };
    // Per new rule, the old rule it continues with the same encoding, found once: such a rule
    // keeps its matches' state (a token bucket, an nth count, connlimit's connections), and
    // what the live version has of it.
    let spec_at = |start: u32, len: u32| specs.get(start as usize..(start as usize).saturating_add(len as usize));
    let mut kept: KVVec<Option<usize>> = KVVec::with_capacity(rules.len(), a)?;
    for (new, p) in rules.iter().zip(plan.iter()) {
        let same = p.old().filter(|&o| known_same || tc.rules.get(o).is_some_and(|old| spec_at(new.start, new.len) == Some(tc.spec(old))));
        kept.push(same, a)?;
    }
    let kept_at = |i: usize| kept.get(i).copied().flatten();
    let inherit = |i: usize, k: usize| -> Option<Slot> {
        let old = tc.rules.get(kept_at(i)?)?;
        // (The same encoding has the same stateful matches.)
        tc.states.get((old.state_first as usize).checked_add(k)?).cloned()
    };
    // What the live version (compiled from `tc`) already has: a kept rule is not compiled
    // again, and a chain with exactly an old chain's rules (kept, in order) keeps its index.
    // (It is: a published version and its configuration go together; checked all the same.)
    let keep = |i: usize| live.and(kept_at(i)).and_then(|o| tc.rules.get(o)).map(|r| r.at as usize);
    let mut same: KVVec<u32> = KVVec::from_elem(u32::MAX, chains.len(), a)?;
    if let Some(v) = live {
        let mut i = 0usize;
        for (c, s) in same.iter_mut().enumerate() {
            let n = rules.get(i..).unwrap_or(&[]).iter().take_while(|r| r.chain as usize == c).count();
            let from = keep(i);
            let old_chain = live.and(kept_at(i)).and_then(|o| tc.rules.get(o)).map(|r| r.chain);
            if let (Some(o), Some(oc)) = (from, old_chain) {
                if v.chain_span(oc) == Some((o, n)) && (1..n).all(|j| keep(i + j) == Some(o + j)) {
                    *s = oc;
                }
            }
            i += n;
        }
    }
    let same_chain = |c: u32| same.get(c as usize).copied().filter(|&o| o != u32::MAX);
    let base = Base::build(
        table,
        &chains,
        rules.iter().enumerate().map(|(i, r)| (r.chain, r.start, r.len, keep(i))),
        &specs,
        live.map(|v| (v, &tc.chains[..])),
        &same_chain,
        &mut lists,
        &inherit,
    )?;
    for (i, r) in rules.iter_mut().enumerate() {
        r.state_first = base.first_state(i).unwrap_or(0);
        r.at = i as u32;
    }
    let states = base.clone_states()?;

    // Counter slots.
    let mut alloc = SlotAlloc::new(&tc.pool)?;
    let mut old_rule_slots: KVVec<u32> = KVVec::with_capacity(tc.rules.len(), a)?;
    for r in tc.rules.iter() {
        old_rule_slots.push(r.slot, a)?;
    }
    let old = carry::OldSlots { rules: &old_rule_slots, chains: tc.chains.iter().map(|c| (c.name(), c.slot)) };
    let new_chains = chains.iter().zip(chain_counters.iter()).map(|(c, given)| carry::NewChain {
        name: c.name(),
        builtin: c.policy.is_some(),
        given: *given,
    });
    let (mut rule_slots, mut chain_slots) = (KStore::with_capacity(rules.len())?, KStore::with_capacity(chains.len())?);
    carry::assign_slots(&old, &plan, rule_counters.iter().copied(), new_chains, &mut |c| alloc.fresh(c), &mut rule_slots, &mut chain_slots)
        .map_err(carry_error)?;
    let (rule_slots, chain_slots) = (rule_slots.into_inner(), chain_slots.into_inner());
    for ((r, o), &slot) in rules.iter_mut().zip(plan.iter()).zip(rule_slots.iter()) {
        r.id = o.id();
        r.slot = slot;
    }
    for (c, &slot) in chains.iter_mut().zip(chain_slots.iter()) {
        c.slot = slot;
    }
    let new_slots = || Iterator::chain(rule_slots.iter(), chain_slots.iter()).copied();
    let live_end = new_slots().filter(|&s| s != carry::NO_SLOT).max().map_or(0, |s| s.saturating_add(1));
    let version = Version::new(base, &rule_slots, &chains, alloc.blocks(live_end))?;
    // The old slots the new configuration does not use: free once the old version is retired.
    let mut marks: KVVec<u64> = KVVec::from_elem(0, alloc.capacity() / 64 + 1, a)?;
    let mut freed = KStore::new();
    let old_slots = Iterator::chain(old_rule_slots.iter().copied(), tc.chains.iter().map(|c| c.slot));
    carry::freed_slots(old_slots, new_slots(), &mut marks, &mut freed).map_err(carry_error)?;
    drop(marks);
    let freed = freed.into_inner();
    let pool = alloc.finish(&freed, live_end)?;
    Ok(Prepared { version: Some(version), next_id, pool, config: NewConfig::Whole { chains, rules, specs, recent: made, states } })
}

fn limit_error(max_rules: usize, max_bytes: usize) -> UserError {
    UserError {
        err: E2BIG,
        msg: c"too many rules",
        detail: Some(MsgBuf::format(format_args!(
            "netns rule limit: {max_rules} rules, {max_bytes} bytes (max_rules, max_rule_bytes)"
        ))),
    }
}

/// The namespace's rules and bytes after the transaction must stay within the limits.
fn check_limits(cfg: &[TableConfig; NUM_TABLES], prepared: &[Option<KBox<Prepared>>; NUM_TABLES]) -> Result<(), UserError> {
    let (max_rules, max_bytes) = shim::limits();
    let (mut rules, mut bytes) = (0usize, 0usize);
    for (tc, p) in cfg.iter().zip(prepared.iter()) {
        let (r, b) = match p {
            Some(p) => p.size(tc),
            None => (tc.rules.len(), tc.specs.len().saturating_sub(tc.garbage)),
        };
        rules = rules.saturating_add(r);
        bytes = bytes.saturating_add(b);
    }
    if rules > max_rules || bytes > max_bytes {
        return Err(limit_error(max_rules, max_bytes));
    }
    Ok(())
}

/// Makes a published table's configuration follow its new version (the old one is retired:
/// the slots it alone used are free again).
fn commit(tc: &mut TableConfig, p: KBox<Prepared>) {
    let Prepared { next_id, pool, config, .. } = KBox::into_inner(p);
    match config {
        NewConfig::Whole { chains, rules, specs, recent, states } => {
            tc.chains = chains;
            tc.rules = rules;
            tc.specs = specs;
            tc.garbage = 0;
            tc.recent = recent;
            tc.states = states;
        }
        NewConfig::Patch(x) => patch(tc, x),
    }
    tc.pool.install(pool);
    tc.next_id = next_id;
    tc.generation = tc.generation.wrapping_add(1);
}

/// Applies a delta's changes to the configuration in place. Cannot fail: the room for what it
/// adds was reserved before the version was published.
fn patch(tc: &mut TableConfig, x: Patch) {
    for (c, policy) in x.policies {
        if let Some(ch) = tc.chains.get_mut(c) {
            ch.policy = policy;
        }
    }
    for (c, &slot) in tc.chains.iter_mut().zip(x.chain_slots.iter()) {
        c.slot = slot;
    }
    if !x.deleted.is_empty() {
        let mut deleted = x.deleted.iter().copied().peekable();
        let mut i = 0usize;
        tc.rules.retain(|_| {
            let gone = deleted.next_if_eq(&i).is_some();
            i += 1;
            !gone
        });
    }
    // (The room was reserved before the version was published: `update`.)
    let base = tc.specs.len();
    let mut lost = false;
    for &b in x.bytes.iter() {
        lost |= tc.specs.push_within_capacity(b).is_err();
    }
    // (In ascending order of their places: each goes where it is in the end.)
    for (at, mut r) in x.added {
        r.start = r.start.saturating_add(base as u32);
        lost |= at > tc.rules.len() || tc.rules.insert_within_capacity(at, r).is_err();
    }
    if lost {
        pr_err!("rust_nf: internal error: a patched configuration had no room reserved\n");
    }
    tc.garbage = tc.garbage.saturating_add(x.garbage);
}

fn carry_error(e: carry::CarryError) -> UserError {
    match e {
        carry::CarryError::DuplicateId { .. } => uerr(EINVAL, c"duplicate rule id"),
        carry::CarryError::OutOfMemory => UserError::nomem(),
        carry::CarryError::StoreNotEmpty | carry::CarryError::Inconsistent => uerr(EINVAL, c"internal error"),
    }
}

/// Parses a `CMD_GET_TABLE` request: the table and whether an absent table is an error.
pub(crate) fn get_request(payload: &[u8]) -> Result<(TableId, bool), UserError> {
    let mut table = None;
    let mut no_create = false;
    for a in AttrIter::new(payload) {
        let a = a.map_err(|_| uerr(EINVAL, c"malformed attributes"))?;
        match a.ty {
            rulewire::A_TABLE => table = a.u32().ok().and_then(TableId::from_u32),
            rulewire::A_TABLE_FLAGS => no_create = a.u32().unwrap_or(0) & rulewire::TF_NO_CREATE != 0,
            _ => {}
        }
    }
    Ok((table.ok_or(uerr(EINVAL, c"missing table attribute"))?, no_create))
}

/// Marks a table present (as reading it does); `Err(ENOENT)` when `no_create` and absent.
pub(crate) fn touch(cfg: &mut [TableConfig; NUM_TABLES], table: TableId, no_create: bool) -> Result<(), UserError> {
    let newest = cfg.iter().map(|t| t.created).max().unwrap_or(0);
    let tc = cfg.get_mut(table as usize).ok_or(uerr(EINVAL, c"no such table"))?;
    if tc.created == 0 {
        if no_create {
            return Err(uerr(ENOENT, c"table does not exist"));
        }
        tc.created = newest.wrapping_add(1);
    }
    Ok(())
}

/// The items of a table listing, in order: its chains, then its rules.
pub(crate) fn item_count(tc: &TableConfig) -> usize {
    if tc.chains.is_empty() {
        return 0;
    }
    tc.chains.len().saturating_add(tc.rules.len())
}

/// The generation a dump of the table started from.
pub(crate) fn generation(tc: &TableConfig) -> u64 {
    tc.generation
}

/// Encodes a table's header (table, generation, creation order) for a `CMD_GET_TABLE` reply.
pub(crate) fn encode_header(enc: &mut Encoder<'_>, tc: &TableConfig, table: TableId) {
    enc.put_u32(rulewire::A_TABLE, table as u32);
    enc.put_u64(rulewire::A_GENERATION, tc.generation);
    enc.put_u64(rulewire::A_CREATED, tc.created);
}

/// Encodes items `from..to` of a table listing (see [`item_count`]) with their current
/// counters (read from the pool: what every version counted) and ids. A table never written
/// lists its builtin chains, policy ACCEPT, as part of its header message.
pub(crate) fn encode_items(enc: &mut Encoder<'_>, tc: &TableConfig, table: TableId, from: usize, to: usize) {
    if tc.chains.is_empty() {
        for h in table.builtin_hooks() {
            let c = rulewire::ChainWire { name: h.chain_name(), policy: Some(Policy::Accept), counters: Some(Counters::default()) };
            rulewire::encode_chain(enc, &c);
        }
        return;
    }
    let n_chains = tc.chains.len();
    for i in from..to {
        if let Some(c) = tc.chains.get(i) {
            let w = rulewire::ChainWire { name: c.name(), policy: c.policy, counters: Some(tc.pool.read(c.slot)) };
            rulewire::encode_chain(enc, &w);
        } else if let Some(r) = tc.rules.get(i - n_chains) {
            let w = rulewire::RuleWire { chain: r.chain, id: r.id, counters: Some(tc.pool.read(r.slot)), spec: tc.spec(r) };
            rulewire::encode_rule_entry(enc, &w);
        }
    }
}
