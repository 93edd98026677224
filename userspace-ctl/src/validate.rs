// SPDX-License-Identifier: GPL-2.0

//! Checks a table with the engine's compiler, the same code the kernel runs on a replace, so
//! a bad ruleset is refused before anything is sent, with the compiler's own message.

use rnf_engine::compile::{self, ChainDef, CompileFailure};
use rnf_engine::compiled::{OutOfMemory, Output, Store};
use rnf_engine::rulewire;

use crate::ipt::model::Table;

/// A growable store for the compiler.
struct VecStore<T>(Vec<T>);

impl<T> Store<T> for VecStore<T> {
    fn push(&mut self, v: T) -> Result<(), OutOfMemory> {
        self.0.push(v);
        Ok(())
    }
    fn as_slice(&self) -> &[T] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// The test kernel's `HZ` (CONFIG_HZ=250) (only the `limit` overflow check depends on it; the
/// kernel checks again with its own value).
const HZ: u32 = 250;

/// Compiles `table`; on failure returns the errno the kernel would return and the message.
pub fn check(table: &Table) -> Result<(), (i32, String)> {
    let defs: Vec<ChainDef<'_>> =
        table.chains.iter().map(|c| ChainDef { name: &c.name, policy: c.policy }).collect();
    let rules = table.chains.iter().enumerate().flat_map(|(ci, c)| {
        c.rules.iter().map(move |r| rulewire::decode_rule(&r.wire).map(|spec| (ci as u32, spec)))
    });
    let mut out = Output { chains: VecStore(Vec::new()), rules: VecStore(Vec::new()), matches: VecStore(Vec::new()) };
    match compile::compile(table.id, &defs, rules, HZ, &mut out) {
        Ok(_) => Ok(()),
        Err(CompileFailure::Invalid(e)) => Err((e.errno(), e.to_string())),
        Err(e @ CompileFailure::Decode { .. }) => Err((22, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipt::model::Rule;
    use rnf_engine::rule::{Counters, RuleSpec, TableId, Target};

    #[test]
    fn loops_are_found_before_sending() {
        let mut t = Table::empty(TableId::Filter);
        t.add_user_chain("A");
        t.add_user_chain("B");
        let jump = |to: &'static str| Rule::from_spec(&RuleSpec { target: Target::Jump(to), ..Default::default() }, Counters::default());
        assert_eq!(check(&t), Ok(()));
        t.chain_mut("A").unwrap().rules.push(jump("B"));
        t.chain_mut("B").unwrap().rules.push(jump("A"));
        t.chain_mut("INPUT").unwrap().rules.push(jump("A"));
        let (errno, msg) = check(&t).unwrap_err();
        assert_eq!(errno, 40, "{msg}");
    }
}
