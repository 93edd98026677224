// SPDX-License-Identifier: GPL-2.0

//! Tables: what the user configured (the source of truth, under the netns mutex) and the
//! compiled version the packet path reads under RCU.
//!
//! A change never edits what packets are reading: `replace` builds a complete new
//! [`Version`], publishes it with one pointer swap, waits for a grace period, carries the
//! counters of surviving rules over, and only then frees the old version.

use crate::engine::carry;
use crate::engine::rule::{Counters, Policy, TableId, NUM_TABLES};
use crate::engine::rulewire;
use crate::engine::wire::{AttrIter, Encoder};
use crate::ruleset::{CompileMessage, KStore, Version};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

/// A chain as configured.
pub(crate) struct ChainInfo {
    name: [u8; 28],
    name_len: u8,
    /// Policy of a builtin chain.
    pub(crate) policy: Option<Policy>,
}

impl ChainInfo {
    fn new(name: &str, policy: Option<Policy>) -> Result<Self> {
        let mut n = [0u8; 28];
        n.get_mut(..name.len()).ok_or(EINVAL)?.copy_from_slice(name.as_bytes());
        Ok(Self { name: n, name_len: name.len() as u8, policy })
    }

    /// The chain's name.
    pub(crate) fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..usize::from(self.name_len)).unwrap_or(&[])).unwrap_or("")
    }
}

/// A rule as configured: its chain, id and where its encoding sits in `specs`.
struct RuleInfo {
    chain: u32,
    id: u64,
    start: u32,
    len: u32,
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
    /// The rules' encodings, back to back.
    specs: KVVec<u8>,
    /// Counts carried over from earlier versions: rules first, then chains.
    base: KVVec<Counters>,
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
            base: KVVec::new(),
        }
    }

    fn spec(&self, r: &RuleInfo) -> &[u8] {
        let start = r.start as usize;
        self.specs.get(start..start + r.len as usize).unwrap_or(&[])
    }
}

/// The published versions, readable from the packet path.
pub(crate) struct Live {
    ptrs: [AtomicPtr<Version>; NUM_TABLES],
}

impl Live {
    /// No version published.
    pub(crate) const fn new() -> Self {
        Self { ptrs: [const { AtomicPtr::new(core::ptr::null_mut()) }; NUM_TABLES] }
    }

    /// The version of `table` the packet path should use.
    ///
    /// The caller must be in an RCU read-side critical section (netfilter hooks are) and not
    /// keep the reference past it: versions are freed after a grace period once replaced.
    pub(crate) fn get(&self, table: TableId) -> Option<&Version> {
        let p = self.ptrs.get(table as usize)?.load(Ordering::Acquire);
        // SAFETY: A non-null pointer was published by `replace` from `KBox::into_raw` and is
        // freed only after it was swapped out and a grace period passed; the caller is inside
        // an RCU read-side critical section that began before any such grace period ended.
        unsafe { p.as_ref() }
    }

    /// The current version, for the configuration side (which holds the netns mutex, so it
    /// cannot be freed meanwhile).
    fn current(&self, table: TableId) -> Option<&Version> {
        self.get(table)
    }

    fn swap(&self, table: TableId, new: Option<KBox<Version>>) -> Option<KBox<Version>> {
        let newp = new.map_or(core::ptr::null_mut(), KBox::into_raw);
        let old = self.ptrs.get(table as usize)?.swap(newp, Ordering::AcqRel);
        // SAFETY: Every pointer stored here came from `KBox::into_raw`; swapping it out gives
        // its ownership back to us (the caller frees it only after a grace period).
        (!old.is_null()).then(|| unsafe { KBox::from_raw(old) })
    }

    /// Frees every version (netns exit: hooks are gone and a grace period has passed).
    pub(crate) fn clear(&self) {
        for t in TableId::ALL {
            drop(self.swap(t, None));
        }
    }
}

/// An error for the user: errno and an extended ack message.
pub(crate) struct UserError {
    /// The errno.
    pub(crate) err: Error,
    /// The message.
    pub(crate) msg: &'static CStr,
    /// A message formatted at run time (the compiler's, naming chain and rule), preferred.
    pub(crate) detail: Option<CompileMessage>,
}

fn uerr(err: Error, msg: &'static CStr) -> UserError {
    UserError { err, msg, detail: None }
}

impl UserError {
    /// Out of memory.
    pub(crate) fn nomem() -> Self {
        uerr(ENOMEM, c"out of memory")
    }

    /// An errno from the compiler, whose message comes separately.
    pub(crate) fn compile(errno: i32, detail: CompileMessage) -> Self {
        UserError { err: Error::from_errno(-errno), msg: c"invalid ruleset", detail: Some(detail) }
    }
}

impl From<kernel::alloc::AllocError> for UserError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self::nomem()
    }
}

/// Replaces one table from a `CMD_REPLACE_TABLE` payload: all of it or nothing.
pub(crate) fn replace(live: &Live, cfg: &mut [TableConfig; NUM_TABLES], payload: &[u8]) -> Result<(), UserError> {
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
    let table = table.ok_or(uerr(EINVAL, c"missing table attribute"))?;
    touch(cfg, table, false)?;
    let tc = cfg.get_mut(table as usize).ok_or(uerr(EINVAL, c"no such table"))?;
    if flags & rulewire::TF_CHECK_GENERATION != 0 && generation != Some(tc.generation) {
        return Err(uerr(EAGAIN, c"table changed meanwhile, try again"));
    }

    // The new configuration, built beside the old one.
    let mut chains = KVVec::new();
    let mut chain_counters: KVVec<Option<Counters>> = KVVec::new();
    let mut rules: KVVec<RuleInfo> = KVVec::new();
    let mut rule_counters: KVVec<Option<Counters>> = KVVec::new();
    let mut specs = KVVec::new();
    for a in AttrIter::new(payload) {
        let a = a.map_err(|_| uerr(EINVAL, c"malformed attributes"))?;
        match a.ty {
            rulewire::A_CHAIN => {
                let c = rulewire::decode_chain(&a).map_err(|_| uerr(EINVAL, c"malformed chain"))?;
                if chains.iter().any(|x: &ChainInfo| x.name() == c.name) {
                    return Err(uerr(EEXIST, c"duplicate chain name"));
                }
                chains.push(ChainInfo::new(c.name, c.policy).map_err(|_| uerr(EINVAL, c"bad chain name"))?, GFP_KERNEL)?;
                chain_counters.push(c.counters, GFP_KERNEL)?;
            }
            rulewire::A_RULE => {
                let r = rulewire::decode_rule_entry(&a).map_err(|_| uerr(EINVAL, c"malformed rule"))?;
                rulewire::decode_rule(r.spec).map_err(|_| uerr(EINVAL, c"malformed rule specification"))?;
                let start = u32::try_from(specs.len()).map_err(|_| uerr(E2BIG, c"table too large"))?;
                let len = u32::try_from(r.spec.len()).map_err(|_| uerr(E2BIG, c"rule too large"))?;
                specs.extend_from_slice(r.spec, GFP_KERNEL)?;
                rules.push(RuleInfo { chain: r.chain, id: r.id, start, len }, GFP_KERNEL)?;
                rule_counters.push(r.counters, GFP_KERNEL)?;
            }
            _ => {}
        }
    }
    for r in rules.iter() {
        if r.chain as usize >= chains.len() {
            return Err(uerr(EINVAL, c"rule refers to a missing chain"));
        }
    }

    // Compile (this validates: builtin chains, jumps, loops, target restrictions).
    let version = Version::build(table, &chains, rules.iter().map(|r| (r.chain, r.start, r.len)), &specs)?;

    // Rule ids: keep known ones, hand out new ones, refuse duplicates (engine/src/carry.rs).
    let mut scratch = KStore::new();
    let mut plan = KStore::new();
    let next_id = carry::plan_ids(
        tc.rules.iter().map(|r| r.id),
        rules.iter().map(|r| r.id),
        tc.next_id,
        &mut scratch,
        &mut plan,
    )
    .map_err(carry_error)?;
    drop(scratch);
    let plan = plan.into_inner();
    for (r, o) in rules.iter_mut().zip(plan.iter()) {
        r.id = o.id();
    }
    // Room for the new base now: nothing may fail once the new version is published.
    let mut base = KStore::with_capacity(rules.len().saturating_add(chains.len()))?;

    // Publish, wait until no packet can still be reading the old version, then carry the
    // counters it accumulated over to the rules and chains that survived.
    let old = live.swap(table, Some(version));
    kernel::sync::rcu::synchronize_rcu();
    let old_config = carry::OldConfig {
        base: &tc.base,
        rule_count: tc.rules.len(),
        chain_names: tc.chains.iter().map(ChainInfo::name),
    };
    let new_chains = chains.iter().zip(chain_counters.iter()).map(|(c, given)| carry::NewChain {
        name: c.name(),
        builtin: c.policy.is_some(),
        given: *given,
    });
    let merged = carry::merge_counters(
        &old_config,
        &VersionCounts(old.as_deref()),
        &plan,
        rule_counters.iter().copied(),
        new_chains,
        &mut base,
    );
    drop(old);
    if let Err(e) = merged {
        // Cannot happen (the store is empty and has room); the new version is live, so the
        // configuration must follow it: counters not carried read as 0.
        pr_warn!("counters not carried over (errno {})\n", e.errno());
    }
    tc.chains = chains;
    tc.rules = rules;
    tc.specs = specs;
    tc.base = base.into_inner();
    tc.next_id = next_id;
    tc.generation = tc.generation.wrapping_add(1);
    Ok(())
}

fn carry_error(e: carry::CarryError) -> UserError {
    match e {
        carry::CarryError::DuplicateId { .. } => uerr(EINVAL, c"duplicate rule id"),
        carry::CarryError::OutOfMemory => UserError::nomem(),
        carry::CarryError::StoreNotEmpty => uerr(EINVAL, c"internal error"),
    }
}

/// What a version counted (nothing without a version), for the carry-over.
struct VersionCounts<'a>(Option<&'a Version>);

impl carry::Counted for VersionCounts<'_> {
    fn rule(&self, rule: usize) -> Counters {
        self.0.map_or_else(Counters::default, |v| counters(v.counter(rule)))
    }

    fn policy(&self, chain: usize) -> Counters {
        self.0.and_then(|v| v.policy_counter(chain).map(|i| counters(v.counter(i)))).unwrap_or_default()
    }
}

fn counters((packets, bytes): (u64, u64)) -> Counters {
    Counters { packets, bytes }
}

/// A counter's total: what was carried over into the configuration (`base_idx` into
/// `tc.base`: rules first, then chains) plus what the version counted (`pcpu_idx`, the
/// version's own counter numbering).
fn total(tc: &TableConfig, version: Option<&Version>, base_idx: usize, pcpu_idx: Option<usize>) -> Counters {
    let b = tc.base.get(base_idx).copied().unwrap_or_default();
    let counted = match (version, pcpu_idx) {
        (Some(v), Some(i)) => counters(v.counter(i)),
        _ => Counters::default(),
    };
    carry::sum(b, counted)
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

/// Encodes a table for a `CMD_GET_TABLE` reply: generation, chains and rules with their
/// current counters and ids. A table never written shows its builtin chains, policy ACCEPT.
pub(crate) fn encode(enc: &mut Encoder<'_>, live: &Live, cfg: &[TableConfig; NUM_TABLES], table: TableId) {
    let Some(tc) = cfg.get(table as usize) else { return };
    let version = live.current(table);
    enc.put_u32(rulewire::A_TABLE, table as u32);
    enc.put_u64(rulewire::A_GENERATION, tc.generation);
    enc.put_u64(rulewire::A_CREATED, tc.created);
    if tc.chains.is_empty() {
        for h in table.builtin_hooks() {
            let c = rulewire::ChainWire {
                name: h.chain_name(),
                policy: Some(Policy::Accept),
                counters: Some(Counters::default()),
            };
            rulewire::encode_chain(enc, &c);
        }
        return;
    }
    let n_rules = tc.rules.len();
    for (i, c) in tc.chains.iter().enumerate() {
        let pcpu = version.and_then(|v| v.policy_counter(i));
        let w = rulewire::ChainWire { name: c.name(), policy: c.policy, counters: Some(total(tc, version, n_rules + i, pcpu)) };
        rulewire::encode_chain(enc, &w);
    }
    for (i, r) in tc.rules.iter().enumerate() {
        let w = rulewire::RuleWire { chain: r.chain, id: r.id, counters: Some(total(tc, version, i, Some(i))), spec: tc.spec(r) };
        rulewire::encode_rule_entry(enc, &w);
    }
}
