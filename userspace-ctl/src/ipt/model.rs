// SPDX-License-Identifier: GPL-2.0

//! rnfctl's view of a table: chains in order, each with its rules. A rule is kept in its
//! canonical wire encoding (see `rnf_engine::rulewire`), so comparing two rules (for `-D`/`-C`
//! by specification) is comparing bytes, and printing decodes on demand.

use rnf_engine::rule::{Counters, Policy, RuleSpec, TableId};
use rnf_engine::rulewire;
use rnf_engine::wire::Encoder;

/// One rule: its encoding, counters and kernel identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `rulewire::encode_rule` output.
    pub wire: Vec<u8>,
    /// Packets and bytes (as loaded, or as set by `-c` / restore `-c` / `-Z`).
    pub counters: Counters,
    /// The kernel's id of this rule (0 for a rule not yet in the kernel). On commit, the
    /// kernel carries the counters of a rule with a known id over to the new table, so no
    /// packet counted between load and commit is lost.
    pub id: u64,
    /// Send `counters` with the commit (they replace the kernel's): set by `-c`, `-Z` and
    /// `restore -c`.
    pub set_counters: bool,
}

impl Rule {
    /// Encodes a rule specification.
    pub fn from_spec(spec: &RuleSpec<'_>, counters: Counters) -> Rule {
        let mut none = [0u8; 0];
        let mut sizer = Encoder::new(&mut none);
        rulewire::encode_rule(&mut sizer, spec);
        let mut wire = vec![0u8; sizer.len()];
        let mut enc = Encoder::new(&mut wire);
        rulewire::encode_rule(&mut enc, spec);
        Rule { wire, counters, id: 0, set_counters: false }
    }

    /// The rule's specification, borrowing strings from the encoding.
    pub fn spec(&self) -> RuleSpec<'_> {
        // Rules only enter the model through `from_spec` or a decoded kernel dump (checked in
        // `Table::from_wire`), so this cannot fail; fall back to an empty rule regardless.
        rulewire::decode_rule(&self.wire).unwrap_or_default()
    }
}

/// One chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Name.
    pub name: String,
    /// Policy for a builtin chain, `None` for a user-defined chain.
    pub policy: Option<Policy>,
    /// The policy's counters (builtin chains).
    pub counters: Counters,
    /// Send `counters` with the commit (else the kernel keeps the chain's own).
    pub set_counters: bool,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// True for a builtin chain.
    pub fn is_builtin(&self) -> bool {
        self.policy.is_some()
    }
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Which table.
    pub id: TableId,
    /// Chains: builtin chains first in hook order, then user chains (iptables lists user chains
    /// sorted by name; keep them sorted).
    pub chains: Vec<Chain>,
    /// The kernel's generation of this table when it was read (0 for a new one).
    pub generation: u64,
}

impl Table {
    /// A table with only its builtin chains, policies ACCEPT, counters zero (what the kernel
    /// reports for a table never written; the tests' backends start from it).
    #[cfg(test)]
    pub fn empty(id: TableId) -> Table {
        let chains = id
            .builtin_hooks()
            .iter()
            .map(|h| Chain {
                name: h.chain_name().to_string(),
                policy: Some(Policy::Accept),
                counters: Counters::default(),
                set_counters: false,
                rules: Vec::new(),
            })
            .collect();
        Table { id, chains, generation: 0 }
    }

    /// The position of the chain called `name`: the builtin chains (at most five, first),
    /// then a binary search of the user chains, which are kept sorted by name. With 10k user
    /// chains (a kube-proxy table) a restore looks chains up once per line.
    pub fn chain_index(&self, name: &str) -> Option<usize> {
        let builtin = self.chains.iter().take_while(|c| c.is_builtin()).count();
        if let Some(i) = self.chains[..builtin].iter().position(|c| c.name == name) {
            return Some(i);
        }
        let users = &self.chains[builtin..];
        // Sorted by every path a chain enters by (`add_user_chain`, renames, and the kernel
        // keeps the order rnfctl wrote).
        debug_assert!(users.is_sorted_by(|a, b| a.name < b.name), "user chains out of order");
        users.binary_search_by(|c| c.name.as_str().cmp(name)).ok().map(|i| builtin + i)
    }

    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chain_index(name).map(|i| &self.chains[i])
    }

    /// The chain called `name`, mutably.
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chain_index(name).map(|i| &mut self.chains[i])
    }

    /// How many rules jump or go to `name` (the "references" of `-L`).
    pub fn references(&self, name: &str) -> usize {
        self.reference_counts().get(name).copied().unwrap_or(0)
    }

    /// How many rules jump or go to each chain, in one pass over the rules.
    pub fn reference_counts(&self) -> std::collections::HashMap<&str, usize> {
        let mut refs = std::collections::HashMap::new();
        for r in self.chains.iter().flat_map(|c| c.rules.iter()) {
            if let Some(t) = rnf_engine::rulewire::jump_target(&r.wire) {
                *refs.entry(t).or_insert(0) += 1;
            }
        }
        refs
    }

    /// Adds a user chain, keeping user chains sorted by name after the builtin ones.
    pub fn add_user_chain(&mut self, name: &str) {
        let chain = Chain {
            name: name.to_string(),
            policy: None,
            counters: Counters::default(),
            set_counters: false,
            rules: Vec::new(),
        };
        let pos = self.chains.partition_point(|c| c.is_builtin() || c.name.as_str() < name);
        self.chains.insert(pos, chain);
    }
}
