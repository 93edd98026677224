// SPDX-License-Identifier: GPL-2.0

//! `iptables-restore --noflush` without reading the tables first: the file's lines become
//! changes that name their chains ([`super::CurrentEdit`]), applied by the kernel to the
//! tables as they are, all tables as one transaction. This is kube-proxy's partial sync: it
//! declares the chains it rewrites (`:KUBE-SVC-X - [0:0]`, which flushes an existing chain
//! or makes a new one), appends their rules and deletes stale chains, and costs what it
//! changes, not the size of the tables.
//!
//! A declared chain starts empty, so its whole contents are known here and go as one change
//! (`DefineChain`). Changes of chains the file does not declare (`-A FORWARD ...`, `-D`,
//! `-I`, `-F`, `-X`, a policy) go by name, in file order. Anything this path does not cover
//! exactly (another command, `-v`, `--test`, `-T`, a jump to a chain the file declares only
//! later, a line iptables would refuse) makes [`edits`] give `None`, and the kernel refusing
//! a change (no such chain or rule, a bad position, a rule it will not take) changes nothing:
//! either way the restore is done the usual way, which reads the tables and words every
//! error as iptables-restore does.

use std::collections::HashMap;

use rnf_engine::rule::{Counters, Policy, TableId};
use rnf_engine::rulewire::OpKind;

use super::command::rule_wires;
use super::getopt::tokenize;
use super::parse::{self, JumpTo, CMD_APPEND, CMD_DELETE, CMD_DELETE_CHAIN, CMD_DELETE_NUM, CMD_FLUSH, CMD_INSERT, CMD_NEW_CHAIN, OPT_COUNTERS};

/// One change, owned ([`super::CurrentEdit`] borrows from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub kind: OpKind,
    pub chain: String,
    pub pos: u32,
    pub spec: Option<Vec<u8>>,
    pub counters: Option<Counters>,
    pub rules: Vec<(Vec<u8>, Option<Counters>)>,
    pub policy: Option<Policy>,
}

impl Edit {
    fn new(kind: OpKind, chain: &str) -> Self {
        // A new chain goes to its place in name order.
        let pos = if matches!(kind, OpKind::NewChain | OpKind::DefineChain) { u32::MAX } else { 0 };
        Edit { kind, chain: chain.to_string(), pos, spec: None, counters: None, rules: Vec::new(), policy: None }
    }

    /// The borrowed form the backend sends.
    pub(crate) fn current(&self) -> super::CurrentEdit<'_> {
        super::CurrentEdit {
            kind: self.kind,
            chain: &self.chain,
            pos: self.pos,
            spec: self.spec.as_deref(),
            counters: self.counters,
            rules: &self.rules,
            policy: self.policy,
        }
    }
}

/// The changes of one table, in file order.
#[derive(Debug)]
pub(crate) struct TableEdits {
    pub table: TableId,
    pub edits: Vec<Edit>,
    /// Declared chain -> its `DefineChain` (or `NewChain` + `SetChain`) change holding its rules.
    declared: HashMap<String, usize>,
    /// Line at which each chain was declared (the last time).
    declared_at: HashMap<String, usize>,
    /// Jumps to chains the file had not declared at that line: (chain, line).
    jumps: Vec<(String, usize)>,
}

/// Most changes one request may carry (the kernel's limit; a chain's contents count once).
const MAX_EDITS: usize = rnf_engine::rulewire::MAX_OPS as usize;

/// The changes an `iptables-restore --noflush` of `input` makes, table by table, with the
/// warnings the parser printed; `None` when the file needs the usual path (see the module
/// documentation).
pub(crate) fn edits(input: &str, counters: bool) -> Option<(Vec<TableEdits>, Vec<String>)> {
    let mut done: Vec<TableEdits> = Vec::new();
    let mut cur: Option<TableEdits> = None;
    let mut curtable = "";
    let mut warnings = Vec::new();
    for (i, buffer) in input.split_inclusive('\n').enumerate() {
        let line = i + 1;
        if buffer.starts_with('\n') || buffer.starts_with('#') {
            continue;
        }
        if buffer == "COMMIT\n" {
            let t = cur.take()?;
            // A table the file changes nowhere: iptables-restore still opens it (it comes
            // into existence), which a read does.
            if t.edits.is_empty() || done.iter().any(|d| d.table == t.table) {
                return None;
            }
            for (chain, at) in &t.jumps {
                if t.declared_at.get(chain).is_some_and(|&d| d > *at) {
                    return None;
                }
            }
            done.push(t);
            continue;
        }
        if let Some(name) = buffer.strip_prefix('*') {
            if cur.is_some() {
                return None;
            }
            curtable = name.split([' ', '\t', '\n']).find(|s| !s.is_empty())?;
            cur = Some(TableEdits {
                table: TableId::from_name(curtable)?,
                edits: Vec::new(),
                declared: HashMap::new(),
                declared_at: HashMap::new(),
                jumps: Vec::new(),
            });
            continue;
        }
        let t = cur.as_mut()?;
        let table = t.table;
        if let Some(rest) = buffer.strip_prefix(':') {
            let mut toks = rest.split([' ', '\t', '\n']).filter(|s| !s.is_empty());
            let chain = toks.next()?;
            let policy = toks.next()?;
            let builtin = table.builtin_hooks().iter().any(|h| h.chain_name() == chain);
            if builtin {
                match (policy, counters) {
                    ("-", _) => {}
                    (p, false) => {
                        let mut e = Edit::new(OpKind::SetPolicy, chain);
                        e.policy = Some(match p {
                            "ACCEPT" => Policy::Accept,
                            "DROP" => Policy::Drop,
                            _ => return None,
                        });
                        t.edits.push(e);
                    }
                    _ => return None,
                }
                continue;
            }
            // A user chain: flushed if it exists, else made. Names iptables refuses, and
            // names of targets (which a jump would no longer reach), take the usual path.
            if policy != "-" || chain.len() > 28 || !rnf_engine::rule::valid_chain_name(chain) || target_name(chain) {
                return None;
            }
            match t.declared.get(chain) {
                Some(&at) => t.edits.get_mut(at)?.rules.clear(),
                None => {
                    t.declared.insert(chain.to_string(), t.edits.len());
                    t.edits.push(Edit::new(OpKind::DefineChain, chain));
                }
            }
            t.declared_at.insert(chain.to_string(), line);
            continue;
        }
        // A rule line: `[packets:bytes] -A CHAIN ...` and the like.
        let mut start = buffer;
        let mut argv: Vec<String> = vec!["-t".into(), curtable.to_string()];
        if buffer.starts_with('[') {
            let close = buffer.find(']')?;
            let (p, b) = buffer.get(1..close)?.split_once(':')?;
            if p.is_empty() || b.is_empty() {
                return None;
            }
            if counters {
                argv.extend(["--set-counters".into(), p.into(), b.into()]);
            }
            start = buffer.get(close + 1..)?;
        }
        argv.extend(tokenize(start));
        let p = parse::parse_command(&argv, true).ok()?;
        warnings.extend(p.warnings.iter().cloned());
        if p.early_exit.is_some() {
            // An IPv6-only line: ignored.
            continue;
        }
        if p.options & parse::OPT_VERBOSE != 0 {
            return None;
        }
        let chain = p.chain.as_deref()?;
        let set = (p.options & OPT_COUNTERS != 0).then_some(p.counters);
        if let JumpTo::Chain(n) | JumpTo::Goto(n) = &p.jump {
            if !t.declared.contains_key(n.as_str()) {
                t.jumps.push((n.clone(), line));
            }
        }
        let at = p.rulenum.checked_sub(1);
        let own = t.declared.get(chain).copied();
        match (p.command, own) {
            (CMD_APPEND | CMD_INSERT | CMD_DELETE, Some(k)) => {
                let list = &mut t.edits.get_mut(k)?.rules;
                let mut pos = if p.command == CMD_INSERT { at? as usize } else { list.len() };
                for w in rule_wires(&p)? {
                    if p.command == CMD_DELETE {
                        let i = list.iter().position(|(x, _)| *x == w)?;
                        list.remove(i);
                    } else {
                        if pos > list.len() {
                            return None;
                        }
                        list.insert(pos, (w, set));
                        pos += 1;
                    }
                }
            }
            (CMD_DELETE_NUM, Some(k)) => {
                let list = &mut t.edits.get_mut(k)?.rules;
                let i = at? as usize;
                if i >= list.len() {
                    return None;
                }
                list.remove(i);
            }
            (CMD_FLUSH, Some(k)) => t.edits.get_mut(k)?.rules.clear(),
            (CMD_APPEND | CMD_INSERT | CMD_DELETE, None) => {
                let (kind, mut pos) = match p.command {
                    CMD_APPEND => (OpKind::Insert, u32::MAX),
                    CMD_INSERT => (OpKind::Insert, at?),
                    _ => (OpKind::Delete, 0),
                };
                for w in rule_wires(&p)? {
                    let mut e = Edit::new(kind, chain);
                    e.pos = pos;
                    e.spec = Some(w);
                    e.counters = if kind == OpKind::Insert { set } else { None };
                    t.edits.push(e);
                    if p.command == CMD_INSERT {
                        pos = pos.checked_add(1)?;
                    }
                }
            }
            (CMD_DELETE_NUM, None) => {
                let mut e = Edit::new(OpKind::Delete, chain);
                e.pos = at?;
                t.edits.push(e);
            }
            (CMD_FLUSH, None) => t.edits.push(Edit::new(OpKind::SetChain, chain)),
            (CMD_NEW_CHAIN, None) => {
                if chain.len() > 28 || target_name(chain) {
                    return None;
                }
                // Made (refused if it exists), then its contents as the file gives them.
                t.edits.push(Edit::new(OpKind::NewChain, chain));
                t.declared.insert(chain.to_string(), t.edits.len());
                t.declared_at.insert(chain.to_string(), line);
                t.edits.push(Edit::new(OpKind::SetChain, chain));
            }
            (CMD_DELETE_CHAIN, Some(k)) => {
                // iptables refuses to delete a chain that still has rules.
                if !t.edits.get(k)?.rules.is_empty() {
                    return None;
                }
                t.declared.remove(chain);
                t.edits.push(Edit::new(OpKind::DeleteChain, chain));
            }
            (CMD_DELETE_CHAIN, None) => t.edits.push(Edit::new(OpKind::DeleteChain, chain)),
            _ => return None,
        }
    }
    if cur.is_some() || done.is_empty() || done.iter().map(|t| t.edits.len()).sum::<usize>() > MAX_EDITS {
        return None;
    }
    Some((done, warnings))
}

/// A name `-j` takes for a target rather than a chain (a standard verdict or an extension).
pub(crate) fn target_name(name: &str) -> bool {
    matches!(name, "ACCEPT" | "DROP" | "QUEUE" | "RETURN") || parse::is_target_extension(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &TableEdits) -> Vec<(OpKind, &str, usize)> {
        t.edits.iter().map(|e| (e.kind, e.chain.as_str(), e.rules.len())).collect()
    }

    #[test]
    fn a_kube_proxy_partial_sync_is_one_change_per_chain() {
        let file = "*nat\n\
            :KUBE-SERVICES - [0:0]\n\
            :KUBE-SVC-A - [0:0]\n\
            :KUBE-SEP-A - [0:0]\n\
            :KUBE-SVC-OLD - [0:0]\n\
            -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"ns/a:http\" -m tcp --dport 80 -j KUBE-SVC-A\n\
            -A KUBE-SVC-A -m comment --comment \"ns/a:http -> 10.1.0.5:80\" -j KUBE-SEP-A\n\
            -A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.1.0.5:80\n\
            -X KUBE-SVC-OLD\n\
            COMMIT\n\
            *filter\n\
            :FORWARD DROP [0:0]\n\
            -A FORWARD -j ACCEPT\n\
            -D INPUT 1\n\
            COMMIT\n";
        let (tables, warnings) = edits(file, false).expect("covered");
        assert!(warnings.is_empty());
        assert_eq!(tables.len(), 2);
        assert_eq!(
            kinds(&tables[0]),
            [
                (OpKind::DefineChain, "KUBE-SERVICES", 1),
                (OpKind::DefineChain, "KUBE-SVC-A", 1),
                (OpKind::DefineChain, "KUBE-SEP-A", 1),
                (OpKind::DefineChain, "KUBE-SVC-OLD", 0),
                (OpKind::DeleteChain, "KUBE-SVC-OLD", 0),
            ]
        );
        assert_eq!(kinds(&tables[1]), [(OpKind::SetPolicy, "FORWARD", 0), (OpKind::Insert, "FORWARD", 0), (OpKind::Delete, "INPUT", 0)]);
        assert_eq!(tables[1].edits[0].policy, Some(Policy::Drop));
        assert_eq!(tables[1].edits[1].pos, u32::MAX);
        assert_eq!(tables[1].edits[2].pos, 0);
    }

    #[test]
    fn declared_chains_are_edited_here() {
        let file = "*filter\n:X - [0:0]\n-A X -j DROP\n-I X 1 -j ACCEPT\n-A X -s 1.2.3.4,5.6.7.8 -j RETURN\n-D X -j DROP\n-D X 2\n:Y - [0:0]\n-N Z\n-A Z -j Y\nCOMMIT\n";
        let (tables, _) = edits(file, false).expect("covered");
        assert_eq!(
            kinds(&tables[0]),
            [(OpKind::DefineChain, "X", 2), (OpKind::DefineChain, "Y", 0), (OpKind::NewChain, "Z", 0), (OpKind::SetChain, "Z", 1)]
        );
        // -I X 1 ACCEPT, then the two RETURN rules, less the DROP and the second rule.
        let x = &tables[0].edits[0].rules;
        let (accept, ret) = (x[0].0.clone(), x[1].0.clone());
        assert_ne!(accept, ret);
        // With -c, the counters go with the rules.
        let (tables, _) = edits("*filter\n:X - [0:0]\n[3:4] -A X -j DROP\n[5:6] -A FORWARD -j X\nCOMMIT\n", true).expect("covered");
        assert_eq!(tables[0].edits[0].rules[0].1, Some(Counters { packets: 3, bytes: 4 }));
        assert_eq!(tables[0].edits[1].counters, Some(Counters { packets: 5, bytes: 6 }));
    }

    #[test]
    fn what_needs_the_usual_path() {
        for file in [
            // A jump to a chain declared only later (iptables takes it for a target).
            "*filter\n-A FORWARD -j LATER\n:LATER - [0:0]\nCOMMIT\n",
            // Deleting a declared chain that still has rules; a missing rule or position.
            "*filter\n:X - [0:0]\n-A X -j DROP\n-X X\nCOMMIT\n",
            "*filter\n:X - [0:0]\n-D X -j DROP\nCOMMIT\n",
            "*filter\n:X - [0:0]\n-I X 2 -j DROP\nCOMMIT\n",
            // Commands it does not cover, -v, a table without changes, a bad line, no COMMIT.
            "*filter\n-P FORWARD DROP\nCOMMIT\n",
            "*filter\n-Z\nCOMMIT\n",
            "*filter\n-E X Y\nCOMMIT\n",
            "*filter\n-F\nCOMMIT\n",
            "*filter\n-A FORWARD -v -j DROP\nCOMMIT\n",
            "*filter\nCOMMIT\n",
            "*filter\n-A FORWARD --bogus\nCOMMIT\n",
            "*filter\n-A FORWARD -j DROP\n",
            // Chains named like targets, a policy with -c, a policy on a user chain.
            "*filter\n:LOG - [0:0]\nCOMMIT\n",
            "*filter\n:X ACCEPT [0:0]\nCOMMIT\n",
            "*bogus\n-A FORWARD -j DROP\nCOMMIT\n",
        ] {
            assert!(edits(file, false).is_none(), "{file}");
        }
        assert!(edits("*filter\n:FORWARD DROP [1:2]\nCOMMIT\n", true).is_none());
    }
}
