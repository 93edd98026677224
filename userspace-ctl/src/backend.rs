// SPDX-License-Identifier: GPL-2.0

//! The kernel backend of the iptables commands: tables are read with `CMD_GET_TABLE` and
//! replaced atomically with `CMD_REPLACE_TABLE`.

use rnf_engine::rule::TableId;
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
    let mut none = [0u8; 0];
    let mut sizer = Encoder::new(&mut none);
    emit(&mut sizer);
    let mut buf = vec![0u8; sizer.len()];
    let mut enc = Encoder::new(&mut buf);
    emit(&mut enc);
    buf
}

/// Encodes a `CMD_REPLACE_TABLES` request: the tables' payloads one after the other (each
/// starts with its `A_TABLE`).
pub fn encode_tables(tables: &[&Table]) -> Vec<u8> {
    tables.iter().flat_map(|t| encode_table(t)).collect()
}

/// One rule inserted, deleted or replaced: what turns one table into the other when nothing
/// else differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    /// What happens.
    pub kind: OpKind,
    /// Index of the chain among the table's chains.
    pub chain: u32,
    /// Position in the chain, from 0.
    pub pos: u32,
    /// The new rule (insert, replace).
    pub rule: Option<&'a Rule>,
    /// The builtin chains' policy counters restart at zero (iptables-legacy's commands do).
    pub reset_policies: bool,
}

/// The single rule change that turns `before` into `after` (same chains, policies and every
/// other rule, none of them with counters to set), or `None` when the difference is anything
/// else: the caller then sends the whole table.
pub fn single_change<'a>(before: &Table, after: &'a Table) -> Option<Change<'a>> {
    if before.id != after.id || before.chains.len() != after.chains.len() {
        return None;
    }
    let same = |x: &Rule, y: &Rule| x.id == y.id && x.wire == y.wire && !y.set_counters;
    // Policy counters: all builtin chains' kept, or all reset to zero; nothing else.
    let builtin = || after.chains.iter().filter(|c| c.policy.is_some());
    let reset_policies = builtin().any(|c| c.set_counters);
    if builtin().any(|c| c.set_counters != reset_policies || (c.set_counters && c.counters != rnf_engine::rule::Counters::default())) {
        return None;
    }
    let mut found = None;
    for (ci, (b, a)) in before.chains.iter().zip(&after.chains).enumerate() {
        if b.name != a.name || b.policy != a.policy || (a.policy.is_none() && a.set_counters) {
            return None;
        }
        let (x, y) = (&b.rules, &a.rules);
        let p = x.iter().zip(y).take_while(|(r, s)| same(r, s)).count();
        if p == x.len() && p == y.len() {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let ci = u32::try_from(ci).ok()?;
        let pos = u32::try_from(p).ok()?;
        let tail_eq = |xs: &[Rule], ys: &[Rule]| xs.len() == ys.len() && xs.iter().zip(ys).all(|(r, s)| same(r, s));
        let new_rule = |r: &'a Rule| (r.id == 0).then_some(r);
        let change = if y.len() == x.len() + 1 && tail_eq(&x[p..], &y[p + 1..]) {
            Change { kind: OpKind::Insert, chain: ci, pos, rule: Some(new_rule(&y[p])?), reset_policies }
        } else if y.len() + 1 == x.len() && tail_eq(&x[p + 1..], &y[p..]) {
            Change { kind: OpKind::Delete, chain: ci, pos, rule: None, reset_policies }
        } else if y.len() == x.len() && tail_eq(&x[p + 1..], &y[p + 1..]) {
            Change { kind: OpKind::Replace, chain: ci, pos, rule: Some(new_rule(&y[p])?), reset_policies }
        } else {
            return None;
        };
        found = Some(change);
    }
    found
}

/// A `CMD_UPDATE_TABLE` request: `change` to `table` as of generation `generation`.
pub fn encode_change(table: TableId, generation: u64, change: &Change<'_>) -> Vec<u8> {
    let emit = |enc: &mut Encoder<'_>| {
        enc.put_u32(rulewire::A_TABLE, table as u32);
        enc.put_u64(rulewire::A_GENERATION, generation);
        let reset = if change.reset_policies { rulewire::TF_RESET_POLICY_COUNTERS } else { 0 };
        enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_CHECK_GENERATION | reset);
        let op = OpWire {
            kind: change.kind,
            chain: change.chain,
            pos: change.pos,
            counters: change.rule.filter(|r| r.set_counters).map(|r| r.counters),
            spec: change.rule.map(|r| r.wire.as_slice()),
        };
        rulewire::encode_op(enc, &op);
    };
    let mut none = [0u8; 0];
    let mut sizer = Encoder::new(&mut none);
    emit(&mut sizer);
    let mut buf = vec![0u8; sizer.len()];
    let mut enc = Encoder::new(&mut buf);
    emit(&mut enc);
    buf
}

impl Backend for KernelBackend {
    fn commit_change(&mut self, before: &Table, after: &Table) -> Result<(), IptError> {
        let Some(change) = single_change(before, after) else { return self.commit(after) };
        // Same compiler as the kernel: refuse a bad ruleset (with the same message) first.
        if let Err((errno, detail)) = crate::validate::check(after) {
            return Err(self.error(netlink::Error::Kernel { errno, msg: Some(detail) }));
        }
        let req = encode_change(after.id, before.generation, &change);
        self.client()?
            .request(rnf_engine::wire::CMD_UPDATE_TABLE, req)
            .map(|_| ())
            .map_err(|e| self.error(e))
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

    #[test]
    fn one_rule_changes_are_found_and_others_are_not() {
        let base = [(1, rule(1, 10)), (1, rule(2, 11)), (3, rule(3, 12))];
        let before = table(&base);
        // -A X: an insert at the end of chain 3.
        let mut after = before.clone();
        after.chains[3].rules.push(rule(9, 0));
        let c = single_change(&before, &after).unwrap();
        assert_eq!((c.kind, c.chain, c.pos), (OpKind::Insert, 3, 1));
        assert_eq!(c.rule.unwrap().wire, rule(9, 0).wire);
        // -I FORWARD 1, -I FORWARD 2 (between two equal-looking neighbours too).
        for pos in 0..=2 {
            let mut after = before.clone();
            after.chains[1].rules.insert(pos, rule(2, 0));
            let c = single_change(&before, &after).unwrap();
            assert_eq!((c.kind, c.chain), (OpKind::Insert, 1));
            // The kernel inserts at the reported position: the result is `after`.
            let mut check = before.chains[1].rules.clone();
            check.insert(c.pos as usize, c.rule.unwrap().clone());
            assert_eq!(check.iter().map(|r| (r.id, r.wire.clone())).collect::<Vec<_>>(),
                after.chains[1].rules.iter().map(|r| (r.id, r.wire.clone())).collect::<Vec<_>>());
        }
        // -D FORWARD 2, -R FORWARD 1.
        let mut after = before.clone();
        after.chains[1].rules.remove(1);
        assert_eq!(single_change(&before, &after).map(|c| (c.kind, c.chain, c.pos)), Some((OpKind::Delete, 1, 1)));
        let mut after = before.clone();
        after.chains[1].rules[0] = rule(7, 0);
        assert_eq!(single_change(&before, &after).map(|c| (c.kind, c.chain, c.pos)), Some((OpKind::Replace, 1, 0)));
        // -c on the new rule travels with it.
        let mut after = before.clone();
        let mut r = rule(9, 0);
        r.counters = Counters { packets: 5, bytes: 6 };
        r.set_counters = true;
        after.chains[3].rules.push(r);
        let c = single_change(&before, &after).unwrap();
        let bytes = encode_change(TableId::Filter, 7, &c);
        let op = AttrIter::new(&bytes).map(|a| a.unwrap()).find(|a| a.ty == rulewire::A_OP).unwrap();
        assert_eq!(rulewire::decode_op(&op).unwrap().counters, Some(Counters { packets: 5, bytes: 6 }));
        // Not one rule: two changes, a policy, a new chain, zeroed counters, nothing at all.
        let mut two = before.clone();
        two.chains[1].rules.push(rule(8, 0));
        two.chains[3].rules.push(rule(8, 0));
        assert_eq!(single_change(&before, &two), None);
        let mut pol = before.clone();
        pol.chains[1].policy = Some(Policy::Drop);
        assert_eq!(single_change(&before, &pol), None);
        let mut chain = before.clone();
        chain.add_user_chain("Y");
        assert_eq!(single_change(&before, &chain), None);
        let mut zero = before.clone();
        zero.chains[1].rules[0].set_counters = true;
        assert_eq!(single_change(&before, &zero), None);
        assert_eq!(single_change(&before, &before.clone()), None);
        // The policy counters reset as iptables-legacy's commands do: all builtin chains to 0.
        let mut reset = before.clone();
        reset.chains[3].rules.push(rule(9, 0));
        crate::ipt::command::reset_policy_counters(&mut reset);
        let c = single_change(&before, &reset).unwrap();
        assert!(c.reset_policies);
        let bytes = encode_change(TableId::Filter, 7, &c);
        let flags = AttrIter::new(&bytes).map(|a| a.unwrap()).find(|a| a.ty == rulewire::A_TABLE_FLAGS).unwrap();
        assert_eq!(flags.u32().unwrap(), rulewire::TF_CHECK_GENERATION | rulewire::TF_RESET_POLICY_COUNTERS);
        reset.chains[0].counters.packets = 1;
        assert_eq!(single_change(&before, &reset), None);
        reset.chains[0].counters.packets = 0;
        reset.chains[0].set_counters = false;
        assert_eq!(single_change(&before, &reset), None);
        // A rule the kernel already knows cannot be "inserted" (it would lose its identity).
        let mut moved = before.clone();
        let r = moved.chains[1].rules.remove(0);
        moved.chains[1].rules.insert(1, r);
        assert_eq!(single_change(&before, &moved), None);
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
