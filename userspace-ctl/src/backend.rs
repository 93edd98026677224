// SPDX-License-Identifier: GPL-2.0

//! The kernel backend of the iptables commands: tables are read with `CMD_GET_TABLE` and
//! replaced atomically with `CMD_REPLACE_TABLE`.

use rnf_engine::rule::TableId;
use rnf_engine::rulewire::{self, ChainWire, RuleWire};
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

impl Backend for KernelBackend {
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
