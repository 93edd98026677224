// SPDX-License-Identifier: GPL-2.0

//! The kernel backend of the iptables commands: tables are read with `CMD_GET_TABLE` and
//! replaced atomically with `CMD_REPLACE_TABLE`.

use rnf_engine::rule::{Policy, TableId};
use rnf_engine::rulewire::{self, ChainWire, OpKind, OpWire, RuleWire};
use rnf_engine::wire::{AttrIter, Encoder};

use crate::ipt::model::{Chain, Rule, Table};
use crate::ipt::{Backend, IptError};
use crate::netlink::{self, Client};

/// Talks to the rust_nf module.
pub struct KernelBackend {
    client: Option<Client>,
    /// The program name used in messages (`iptables`, `iptables-save`, `rnfctl`, ...).
    pub prog: String,
}

impl KernelBackend {
    /// A backend that connects on first use.
    pub fn new(prog: &str) -> Self {
        KernelBackend { client: None, prog: prog.to_string() }
    }

    fn client(&mut self) -> Result<&mut Client, IptError> {
        if self.client.is_none() {
            self.client = Some(Client::connect().map_err(|e| self.error(e))?);
        }
        self.client.as_mut().ok_or_else(|| IptError::other("netlink"))
    }

    /// Maps a netlink error to iptables' wording.
    fn error(&self, e: netlink::Error) -> IptError {
        match e {
            netlink::Error::NotLoaded => IptError {
                message: format!("{}: the rust_nf module is not loaded (insmod rust_nf.ko)", self.prog),
                status: 3,
            },
            netlink::Error::Kernel { errno, msg } => {
                // First line exactly as iptables-legacy words it (scripts match on it); the
                // engine's own explanation, naming chain and rule, on the next.
                let mut e = crate::ipt::errors::errno_error(errno);
                if let Some(m) = msg {
                    e.message.push_str(&format!("\nrnfctl: {m}"));
                }
                e
            }
            other => IptError::other(format!("{}: {other}", self.prog)),
        }
    }

    /// Reads a table and its creation order, or `None` when it does not exist yet and
    /// `no_create` is set.
    pub fn fetch(&mut self, id: TableId, no_create: bool) -> Result<Option<(Table, u64)>, IptError> {
        let mut buf = [0u8; 32];
        let mut enc = Encoder::new(&mut buf);
        enc.put_u32(rulewire::A_TABLE, id as u32);
        if no_create {
            enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_NO_CREATE);
        }
        let n = enc.len();
        let req = buf[..n].to_vec();
        // A dump: a large table comes in many messages. One that changes while it is read is
        // refused (EAGAIN) and read again.
        let mut tries = 0;
        let answer = loop {
            match self.client()?.dump(rnf_engine::wire::CMD_GET_TABLE, req.clone()) {
                Err(netlink::Error::Kernel { errno: 11, .. }) if tries < 100 => tries += 1,
                other => break other,
            }
        };
        let payload = match answer {
            Ok(r) => r.concat(),
            Err(netlink::Error::Kernel { errno: 2, .. }) if no_create => return Ok(None),
            // As iptables-legacy words it when it may not read the table.
            Err(netlink::Error::Kernel { errno: 1, .. }) => {
                return Err(IptError {
                    message: format!(
                        "{} v1.8.9 (legacy): can't initialize iptables table `{}': Permission denied (you must be root)\n\
                         Perhaps iptables or your kernel needs to be upgraded.",
                        self.prog,
                        id.name()
                    ),
                    status: 3,
                })
            }
            Err(e) => return Err(self.error(e)),
        };
        decode_table(id, &payload).map(Some).map_err(|e| IptError::other(format!("bad table from the kernel: {e}")))
    }
}

/// Builds the model from a `CMD_GET_TABLE` reply; also returns the table's creation order.
pub fn decode_table(id: TableId, payload: &[u8]) -> Result<(Table, u64), String> {
    let mut t = Table { id, chains: Vec::new(), generation: 0 };
    let mut created = 0;
    for a in AttrIter::new(payload) {
        let a = a.map_err(|e| format!("{e:?}"))?;
        match a.ty {
            rulewire::A_GENERATION => t.generation = a.u64().map_err(|e| format!("{e:?}"))?,
            rulewire::A_CREATED => created = a.u64().map_err(|e| format!("{e:?}"))?,
            rulewire::A_CHAIN => {
                let c = rulewire::decode_chain(&a).map_err(|e| format!("chain: {e:?}"))?;
                t.chains.push(Chain {
                    name: c.name.to_string(),
                    policy: c.policy,
                    counters: c.counters.unwrap_or_default(),
                    set_counters: false,
                    rules: Vec::new(),
                });
            }
            rulewire::A_RULE => {
                let r = rulewire::decode_rule_entry(&a).map_err(|e| format!("rule: {e:?}"))?;
                rulewire::decode_rule(r.spec).map_err(|e| format!("rule spec: {e:?}"))?;
                let chain = t.chains.get_mut(r.chain as usize).ok_or("rule in a missing chain")?;
                chain.rules.push(Rule {
                    wire: r.spec.to_vec(),
                    counters: r.counters.unwrap_or_default(),
                    id: r.id,
                    set_counters: false,
                });
            }
            _ => {}
        }
    }
    Ok((t, created))
}

/// Encodes a `CMD_REPLACE_TABLE` request for the model (the attributes of one table in a
/// `CMD_REPLACE_TABLES` request too). The generation read is always checked, also that of a
/// table nobody wrote yet (0): of two writers that read the same version, the second fails.
pub fn encode_table(t: &Table) -> Vec<u8> {
    let emit = |enc: &mut Encoder<'_>| {
        enc.put_u32(rulewire::A_TABLE, t.id as u32);
        enc.put_u64(rulewire::A_GENERATION, t.generation);
        enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_CHECK_GENERATION);
        for c in &t.chains {
            let w = ChainWire {
                name: &c.name,
                policy: c.policy,
                counters: if c.set_counters { Some(c.counters) } else { None },
            };
            rulewire::encode_chain(enc, &w);
        }
        for (ci, c) in t.chains.iter().enumerate() {
            for r in &c.rules {
                let w = RuleWire {
                    chain: ci as u32,
                    id: r.id,
                    counters: if r.set_counters { Some(r.counters) } else { None },
                    spec: &r.wire,
                };
                rulewire::encode_rule_entry(enc, &w);
            }
        }
    };
    encode_sized(emit)
}

/// Encodes a `CMD_REPLACE_TABLES` request: the tables' payloads one after the other (each
/// starts with its `A_TABLE`).
pub fn encode_tables(tables: &[&Table]) -> Vec<u8> {
    tables.iter().flat_map(|t| encode_table(t)).collect()
}

/// One edit of a table, as [`rulewire::OpKind`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit<'a> {
    /// One rule inserted, deleted or replaced at `pos` of chain `chain`.
    Rule {
        /// Insert, Delete or Replace.
        kind: OpKind,
        /// Index of the chain among the table's chains (as the edits before left them).
        chain: u32,
        /// Position in the chain, from 0.
        pos: u32,
        /// The new rule (insert, replace).
        rule: Option<&'a Rule>,
    },
    /// The chain's rules become these (known ones keep their identity).
    SetChain {
        /// Index of the chain.
        chain: u32,
        /// Its new rules.
        rules: &'a [Rule],
    },
    /// A new user chain at position `pos`.
    NewChain {
        /// Position among the chains.
        pos: u32,
        /// Its name.
        name: &'a str,
    },
    /// The (empty) user chain goes.
    DeleteChain {
        /// Index of the chain.
        chain: u32,
    },
    /// A builtin chain's policy.
    SetPolicy {
        /// Index of the chain.
        chain: u32,
        /// The policy.
        policy: Policy,
    },
}

/// What turns one table into another, edit by edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta<'a> {
    /// The edits, in the order the kernel applies them.
    pub edits: Vec<Edit<'a>>,
    /// The builtin chains' policy counters restart at zero (iptables-legacy's commands do).
    pub reset_policies: bool,
}

fn same_rule(x: &Rule, y: &Rule) -> bool {
    x.id == y.id && x.wire == y.wire && !y.set_counters
}

/// One rule inserted, deleted or replaced turns `x` into `y`: (kind, position, new rule).
fn rule_change<'a>(x: &[Rule], y: &'a [Rule]) -> Option<(OpKind, u32, Option<&'a Rule>)> {
    let p = x.iter().zip(y).take_while(|(r, s)| same_rule(r, s)).count();
    let pos = u32::try_from(p).ok()?;
    let tail_eq = |xs: &[Rule], ys: &[Rule]| xs.len() == ys.len() && xs.iter().zip(ys).all(|(r, s)| same_rule(r, s));
    let new_rule = |r: &'a Rule| (r.id == 0).then_some(r);
    if y.len() == x.len() + 1 && tail_eq(&x[p..], &y[p + 1..]) {
        Some((OpKind::Insert, pos, Some(new_rule(&y[p])?)))
    } else if y.len() + 1 == x.len() && tail_eq(&x[p + 1..], &y[p..]) {
        Some((OpKind::Delete, pos, None))
    } else if y.len() == x.len() && p < x.len() && tail_eq(&x[p + 1..], &y[p + 1..]) {
        Some((OpKind::Replace, pos, Some(new_rule(&y[p])?)))
    } else {
        None
    }
}

/// The edits that turn `before` into `after`, or `None` when sending the whole table is
/// simpler (chains reordered, most rules rewritten, counters set on kept chains). Chains and
/// rules that did not change are not mentioned: a one-rule command is one edit, a partial
/// `iptables-restore --noflush` is one edit per chain it rewrote.
pub fn delta<'a>(before: &Table, after: &'a Table) -> Option<Delta<'a>> {
    if before.id != after.id {
        return None;
    }
    // Policy counters: all builtin chains' kept, or all reset to zero; nothing else.
    let builtin = || after.chains.iter().filter(|c| c.policy.is_some());
    let reset_policies = builtin().any(|c| c.set_counters);
    if builtin().any(|c| c.set_counters != reset_policies || (c.set_counters && c.counters != rnf_engine::rule::Counters::default())) {
        return None;
    }
    if after.chains.iter().any(|c| c.policy.is_none() && c.set_counters) {
        return None;
    }
    // Chains by name, so that a table of 10k user chains diffs in one pass.
    let before_at: std::collections::HashMap<&str, usize> =
        before.chains.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
    let after_names: std::collections::HashSet<&str> = after.chains.iter().map(|c| c.name.as_str()).collect();
    let in_after = |n: &str| after_names.contains(n);
    let in_before = |n: &str| before_at.contains_key(n);
    // The chains both have must come in the same order (sorted, as iptables keeps them).
    let kept_b = before.chains.iter().filter(|c| in_after(&c.name)).map(|c| c.name.as_str());
    let kept_a = after.chains.iter().filter(|c| in_before(&c.name)).map(|c| c.name.as_str());
    if !kept_b.eq(kept_a) {
        return None;
    }
    let mut edits = Vec::new();
    // Chains that go, from the last: emptied first (their rules may have moved elsewhere).
    for (i, c) in before.chains.iter().enumerate().rev() {
        if in_after(&c.name) {
            continue;
        }
        if c.policy.is_some() {
            return None;
        }
        let chain = u32::try_from(i).ok()?;
        if !c.rules.is_empty() {
            edits.push(Edit::SetChain { chain, rules: &[] });
        }
        edits.push(Edit::DeleteChain { chain });
    }
    // New chains at their places; then every chain lines up with `after`'s.
    for (j, c) in after.chains.iter().enumerate() {
        if !in_before(&c.name) {
            if c.policy.is_some() {
                return None;
            }
            edits.push(Edit::NewChain { pos: u32::try_from(j).ok()?, name: &c.name });
        }
    }
    let mut rewritten = 0usize;
    for (j, c) in after.chains.iter().enumerate() {
        let chain = u32::try_from(j).ok()?;
        let old = before_at.get(c.name.as_str()).and_then(|&i| before.chains.get(i));
        if let (Some(o), Some(p)) = (old, c.policy) {
            if o.policy != Some(p) {
                edits.push(Edit::SetPolicy { chain, policy: p });
            }
        }
        let x: &[Rule] = old.map_or(&[], |o| &o.rules);
        let y = &c.rules;
        if x.len() == y.len() && x.iter().zip(y).all(|(r, s)| same_rule(r, s)) {
            continue;
        }
        match rule_change(x, y) {
            Some((kind, pos, rule)) => edits.push(Edit::Rule { kind, chain, pos, rule }),
            None => {
                rewritten += y.len();
                edits.push(Edit::SetChain { chain, rules: y });
            }
        }
    }
    let total: usize = after.chains.iter().map(|c| c.rules.len()).sum();
    // Nothing changed (not even the policies' counters, which every iptables-legacy command
    // restarts: `-P INPUT ACCEPT` on an ACCEPT chain is an update with no edit), or most of
    // the table rewritten: the whole table says it as well.
    let nothing = edits.is_empty() && !reset_policies;
    if nothing || (rewritten > 64 && rewritten * 2 > total) || edits.len() > rulewire::MAX_OPS as usize {
        return None;
    }
    Some(Delta { edits, reset_policies })
}

/// Appends one table's `CMD_UPDATE_TABLE` attributes: `delta` to `table` as of generation
/// `generation`.
fn emit_delta(enc: &mut Encoder<'_>, table: TableId, generation: u64, delta: &Delta<'_>) {
    enc.put_u32(rulewire::A_TABLE, table as u32);
    enc.put_u64(rulewire::A_GENERATION, generation);
    let reset = if delta.reset_policies { rulewire::TF_RESET_POLICY_COUNTERS } else { 0 };
    enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_CHECK_GENERATION | reset);
    let none = OpWire { kind: OpKind::Delete, chain: 0, chain_name: None, pos: 0, counters: None, spec: None, name: None, policy: None, body: &[] };
    for e in &delta.edits {
        let op = match *e {
            Edit::Rule { kind, chain, pos, rule } => OpWire {
                kind,
                chain,
                pos,
                counters: rule.filter(|r| r.set_counters).map(|r| r.counters),
                spec: rule.map(|r| r.wire.as_slice()),
                ..none
            },
            Edit::SetChain { chain, .. } => OpWire { kind: OpKind::SetChain, chain, ..none },
            Edit::NewChain { pos, name } => OpWire { kind: OpKind::NewChain, pos, name: Some(name), ..none },
            Edit::DeleteChain { chain } => OpWire { kind: OpKind::DeleteChain, chain, ..none },
            Edit::SetPolicy { chain, policy } => OpWire { kind: OpKind::SetPolicy, chain, policy: Some(policy), ..none },
        };
        let n = rulewire::begin_op(enc, &op);
        if let Edit::SetChain { chain, rules } = *e {
            for r in rules {
                let w = RuleWire { chain, id: r.id, counters: r.set_counters.then_some(r.counters), spec: &r.wire };
                rulewire::encode_op_rule(enc, &w);
            }
        }
        enc.end_nest(n);
    }
}

/// The bytes `emit` writes, sized by running it once without room.
fn encode_sized(emit: impl Fn(&mut Encoder<'_>)) -> Vec<u8> {
    let mut none = [0u8; 0];
    let mut sizer = Encoder::new(&mut none);
    emit(&mut sizer);
    let mut buf = vec![0u8; sizer.len()];
    let mut enc = Encoder::new(&mut buf);
    emit(&mut enc);
    buf
}

/// A `CMD_UPDATE_TABLES` request (or `CMD_UPDATE_TABLE` for one table): each table's delta.
pub fn encode_deltas(deltas: &[(TableId, u64, Delta<'_>)]) -> Vec<u8> {
    let emit = |enc: &mut Encoder<'_>| {
        for (t, g, d) in deltas {
            emit_delta(enc, *t, *g, d);
        }
    };
    encode_sized(emit)
}

impl Backend for KernelBackend {
    fn change_current_tables(&mut self, tables: &[(TableId, &[crate::ipt::CurrentEdit<'_>])]) -> bool {
        let emit = |enc: &mut Encoder<'_>| {
            for (table, edits) in tables {
                enc.put_u32(rulewire::A_TABLE, *table as u32);
                // Every iptables-legacy change zeroes the builtin chains' policy counters.
                enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_CURRENT | rulewire::TF_RESET_POLICY_COUNTERS);
                for e in edits.iter() {
                    let new_chain = e.kind == OpKind::NewChain;
                    let op = OpWire {
                        kind: e.kind,
                        chain: 0,
                        chain_name: (!new_chain).then_some(e.chain),
                        pos: e.pos,
                        counters: e.counters,
                        spec: e.spec,
                        name: new_chain.then_some(e.chain),
                        policy: e.policy,
                        body: &[],
                    };
                    let n = rulewire::begin_op(enc, &op);
                    for (spec, counters) in e.rules {
                        rulewire::encode_op_rule(enc, &RuleWire { chain: 0, id: 0, counters: *counters, spec });
                    }
                    enc.end_nest(n);
                }
            }
        };
        let req = encode_sized(emit);
        let cmd = if tables.len() == 1 { rnf_engine::wire::CMD_UPDATE_TABLE } else { rnf_engine::wire::CMD_UPDATE_TABLES };
        match self.client() {
            Ok(c) => c.request(cmd, req).is_ok(),
            Err(_) => false,
        }
    }

    fn commit_changes(&mut self, pairs: &[(&Table, &Table)]) -> Result<(), (Option<TableId>, IptError)> {
        let afters: Vec<&Table> = pairs.iter().map(|(_, a)| *a).collect();
        let mut deltas = Vec::new();
        for (b, a) in pairs {
            match delta(b, a) {
                Some(d) => deltas.push((a.id, b.generation, d)),
                None => return self.commit_all(&afters),
            }
        }
        // Same compiler as the kernel: refuse a bad ruleset (with the same message) first.
        for t in &afters {
            if let Err((errno, detail)) = crate::validate::check(t) {
                return Err((Some(t.id), self.error(netlink::Error::Kernel { errno, msg: Some(detail) })));
            }
        }
        let req = encode_deltas(&deltas);
        let cmd = if deltas.len() == 1 { rnf_engine::wire::CMD_UPDATE_TABLE } else { rnf_engine::wire::CMD_UPDATE_TABLES };
        let client = self.client().map_err(|e| (None, e))?;
        let sent = client.request(cmd, req);
        // A module without updates (EOPNOTSUPP), or a delta too large for one (E2BIG): the
        // whole tables say the same.
        if let Err(netlink::Error::Kernel { errno: 95 | 7, .. }) = sent {
            return self.commit_all(&afters);
        }
        sent.map(|_| ()).map_err(|e| {
            let which = match &e {
                netlink::Error::Kernel { msg: Some(m), .. } => {
                    TableId::ALL.into_iter().find(|t| m.starts_with(&format!("table {}:", t.name())))
                }
                _ => None,
            };
            (which, self.error(e))
        })
    }

    fn load(&mut self, table: TableId) -> Result<Table, IptError> {
        self.fetch(table, false)?.map(|(t, _)| t).ok_or_else(|| IptError::other("table missing"))
    }

    fn present_tables(&mut self) -> Result<Vec<TableId>, IptError> {
        let mut found = Vec::new();
        for id in TableId::ALL {
            if let Some((_, created)) = self.fetch(id, true)? {
                found.push((created, id));
            }
        }
        found.sort_by_key(|x| std::cmp::Reverse(x.0));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    fn commit(&mut self, table: &Table) -> Result<(), IptError> {
        // Same compiler as the kernel: refuse a bad ruleset before sending it.
        if let Err((errno, detail)) = crate::validate::check(table) {
            return Err(self.error(netlink::Error::Kernel { errno, msg: Some(detail) }));
        }
        let req = encode_table(table);
        self.client()?
            .request(rnf_engine::wire::CMD_REPLACE_TABLE, req)
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    fn commit_all(&mut self, tables: &[&Table]) -> Result<(), (Option<TableId>, IptError)> {
        for t in tables {
            if let Err((errno, detail)) = crate::validate::check(t) {
                return Err((Some(t.id), self.error(netlink::Error::Kernel { errno, msg: Some(detail) })));
            }
        }
        let req = encode_tables(tables);
        let client = self.client().map_err(|e| (None, e))?;
        client.request(rnf_engine::wire::CMD_REPLACE_TABLES, req).map(|_| ()).map_err(|e| {
            // The kernel names the table that failed ("table NAME: ...").
            let which = match &e {
                netlink::Error::Kernel { msg: Some(m), .. } => {
                    TableId::ALL.into_iter().find(|t| m.starts_with(&format!("table {}:", t.name())))
                }
                _ => None,
            };
            (which, self.error(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnf_engine::rule::{Counters, Policy, RuleSpec, Target};

    fn rule(n: u8, id: u64) -> Rule {
        let spec = RuleSpec { proto: n, target: Target::Accept, ..Default::default() };
        let mut r = Rule::from_spec(&spec, Counters::default());
        r.id = id;
        r
    }

    fn table(rules: &[(usize, Rule)]) -> Table {
        let mut t = Table::empty(TableId::Filter);
        t.add_user_chain("X");
        for (c, r) in rules {
            t.chains[*c].rules.push(r.clone());
        }
        t
    }

    /// The one rule edit of a delta.
    fn one(before: &Table, after: &Table) -> Option<(OpKind, u32, u32)> {
        match delta(before, after)?.edits.as_slice() {
            [Edit::Rule { kind, chain, pos, .. }] => Some((*kind, *chain, *pos)),
            _ => None,
        }
    }

    /// Applies a delta as the kernel does (engine-free model of rust_nf/table.rs apply_ops).
    fn apply(before: &Table, d: &Delta<'_>) -> Table {
        let mut t = before.clone();
        for e in &d.edits {
            match *e {
                Edit::Rule { kind, chain, pos, rule } => {
                    let rules = &mut t.chains[chain as usize].rules;
                    match kind {
                        OpKind::Insert => rules.insert(pos as usize, rule.unwrap().clone()),
                        OpKind::Delete => {
                            rules.remove(pos as usize);
                        }
                        OpKind::Replace => rules[pos as usize] = rule.unwrap().clone(),
                        _ => unreachable!(),
                    }
                }
                Edit::SetChain { chain, rules } => t.chains[chain as usize].rules = rules.to_vec(),
                Edit::NewChain { pos, name } => {
                    assert!(t.chains.iter().all(|c| c.name != name));
                    t.chains.insert(pos as usize, Chain { name: name.into(), policy: None, counters: Default::default(), set_counters: false, rules: vec![] });
                }
                Edit::DeleteChain { chain } => {
                    assert!(t.chains[chain as usize].rules.is_empty() && t.chains[chain as usize].policy.is_none());
                    t.chains.remove(chain as usize);
                }
                Edit::SetPolicy { chain, policy } => t.chains[chain as usize].policy = Some(policy),
            }
        }
        t
    }

    fn same_tables(a: &Table, b: &Table) -> bool {
        let key = |t: &Table| {
            t.chains.iter().map(|c| (c.name.clone(), c.policy, c.rules.iter().map(|r| (r.id, r.wire.clone())).collect::<Vec<_>>())).collect::<Vec<_>>()
        };
        key(a) == key(b)
    }

    #[test]
    fn deltas_say_only_what_changed_and_rebuild_the_table() {
        let base = [(1, rule(1, 10)), (1, rule(2, 11)), (3, rule(3, 12))];
        let before = table(&base);
        // -A X: an insert at the end of chain 3.
        let mut after = before.clone();
        after.chains[3].rules.push(rule(9, 0));
        assert_eq!(one(&before, &after), Some((OpKind::Insert, 3, 1)));
        // -I FORWARD n, -D FORWARD 2, -R FORWARD 1: one edit each, and the kernel's result is `after`.
        let mut cases = Vec::new();
        for pos in 0..=2 {
            let mut a = before.clone();
            a.chains[1].rules.insert(pos, rule(2, 0));
            cases.push(a);
        }
        let mut a = before.clone();
        a.chains[1].rules.remove(1);
        assert_eq!(one(&before, &a), Some((OpKind::Delete, 1, 1)));
        cases.push(a);
        let mut a = before.clone();
        a.chains[1].rules[0] = rule(7, 0);
        assert_eq!(one(&before, &a), Some((OpKind::Replace, 1, 0)));
        cases.push(a);
        // -N Y, -X X, -P FORWARD DROP, -F FORWARD, -E X Z (a jump to X follows the rename),
        // a partial restore rewriting X.
        let mut a = before.clone();
        a.add_user_chain("Y");
        cases.push(a);
        let mut a = before.clone();
        a.chains[3].rules.clear();
        let mut a2 = a.clone();
        a2.chains.remove(3);
        cases.push(a2);
        let mut a = before.clone();
        a.chains[1].policy = Some(Policy::Drop);
        cases.push(a);
        let mut a = before.clone();
        a.chains[1].rules.clear();
        cases.push(a);
        let mut a = before.clone();
        a.chains[3].name = "Z".into();
        cases.push(a);
        let mut a = before.clone();
        a.chains[3].rules = vec![rule(4, 0), rule(5, 0), rule(3, 12)];
        a.add_user_chain("KUBE-SVC-A");
        a.chains[4].rules = vec![rule(6, 0)];
        cases.push(a);
        for a in &cases {
            let d = delta(&before, a).unwrap_or_else(|| panic!("no delta for {a:?}"));
            assert!(same_tables(&apply(&before, &d), a), "delta {d:?} does not rebuild {a:?}");
        }
        // -c on the new rule travels with it; the policy counters reset as iptables-legacy's
        // commands do (all builtin chains to 0).
        let mut a = before.clone();
        let mut r = rule(9, 0);
        r.counters = Counters { packets: 5, bytes: 6 };
        r.set_counters = true;
        a.chains[3].rules.push(r);
        crate::ipt::command::reset_policy_counters(&mut a);
        let d = delta(&before, &a).unwrap();
        assert!(d.reset_policies);
        let bytes = encode_deltas(&[(TableId::Filter, 7, d)]);
        let attrs: Vec<_> = AttrIter::new(&bytes).map(|a| a.unwrap()).collect();
        let op = attrs.iter().find(|a| a.ty == rulewire::A_OP).unwrap();
        assert_eq!(rulewire::decode_op(op).unwrap().counters, Some(Counters { packets: 5, bytes: 6 }));
        let flags = attrs.iter().find(|a| a.ty == rulewire::A_TABLE_FLAGS).unwrap();
        assert_eq!(flags.u32().unwrap(), rulewire::TF_CHECK_GENERATION | rulewire::TF_RESET_POLICY_COUNTERS);
        a.chains[0].counters.packets = 1;
        assert_eq!(delta(&before, &a), None);
        // Nothing at all; a rule the kernel knows moved (it keeps its identity through a
        // chain rewrite, not an insert).
        assert_eq!(delta(&before, &before.clone()), None);
        let mut moved = before.clone();
        let r = moved.chains[1].rules.remove(0);
        moved.chains[1].rules.insert(1, r);
        let d = delta(&before, &moved).unwrap();
        assert!(matches!(d.edits.as_slice(), [Edit::SetChain { chain: 1, .. }]));
        assert!(same_tables(&apply(&before, &d), &moved));
    }

    #[test]
    fn every_write_checks_the_generation_it_read_also_the_first() {
        // A table nobody wrote yet reads as generation 0: a writer that read it must still
        // lose against one that wrote since (the kernel then answers EAGAIN).
        let t = Table::empty(TableId::Mangle);
        assert_eq!(t.generation, 0);
        let bytes = encode_table(&t);
        let mut flags = None;
        let mut generation = None;
        for a in AttrIter::new(&bytes) {
            let a = a.unwrap();
            match a.ty {
                rulewire::A_TABLE_FLAGS => flags = Some(a.u32().unwrap()),
                rulewire::A_GENERATION => generation = Some(a.u64().unwrap()),
                _ => {}
            }
        }
        assert_eq!(generation, Some(0));
        assert_eq!(flags.unwrap() & rulewire::TF_CHECK_GENERATION, rulewire::TF_CHECK_GENERATION);
        // Several tables in one request: each starts with its A_TABLE.
        let f = Table::empty(TableId::Filter);
        let both = encode_tables(&[&t, &f]);
        let ids: Vec<u32> = rnf_engine::wire::sections(&both, rulewire::A_TABLE)
            .unwrap()
            .map(|s| AttrIter::new(s).next().unwrap().unwrap().u32().unwrap())
            .collect();
        assert_eq!(ids, [TableId::Mangle as u32, TableId::Filter as u32]);
    }

    #[test]
    fn tables_round_trip_through_the_wire() {
        let mut t = Table::empty(TableId::Filter);
        t.generation = 9;
        t.add_user_chain("LOGDROP");
        t.chains[0].policy = Some(Policy::Drop);
        let spec = RuleSpec { target: Target::Jump("LOGDROP"), ..Default::default() };
        let mut r = Rule::from_spec(&spec, Counters { packets: 4, bytes: 5 });
        r.id = 3;
        r.set_counters = true;
        t.chains[0].rules.push(r);
        t.chains[3].rules.push(Rule::from_spec(&RuleSpec { target: Target::Drop, ..Default::default() }, Counters::default()));
        let bytes = encode_table(&t);
        let (back, _) = decode_table(TableId::Filter, &bytes).unwrap();
        assert_eq!(back.chains.len(), 4);
        assert_eq!(back.generation, 9);
        assert_eq!(back.chains[0].policy, Some(Policy::Drop));
        assert_eq!(back.chains[0].rules[0].id, 3);
        assert_eq!(back.chains[0].rules[0].counters, Counters { packets: 4, bytes: 5 });
        assert_eq!(back.chains[3].name, "LOGDROP");
        assert_eq!(back.chains[3].rules[0].spec().target, Target::Drop);
    }
}
