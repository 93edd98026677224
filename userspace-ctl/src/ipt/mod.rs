// SPDX-License-Identifier: GPL-2.0

//! iptables' language: the table model (`model`), the command-line parser (`parse`, with
//! `getopt` for iptables-save/-restore), the rule printer for `-S`, `iptables-save` and the
//! `-v` echo (`ruleprint`), the `-L` table (`list`), iptables' wording of failures (`errors`),
//! and the three commands (`command`, `save`, `restore`).
//!
//! The commands work on [`model::Table`]s through a [`Backend`]: rnfctl's backend talks to the
//! kernel over netlink; tests use an in-memory one.

pub mod command;
pub mod errors;
#[cfg(test)]
mod ext_tests;
pub mod getopt;
pub mod list;
pub mod model;
pub mod names;
mod noflush;
pub mod parse;
pub mod restore;
pub mod ruleprint;
pub mod save;

pub use list::ListOptions;

use rnf_engine::rule::TableId;

/// An error as iptables reports it: the message (without the program name prefix) and the
/// exit status iptables uses for it (1: the kernel refused / other problem, 2: bad
/// parameter, 4: resource problem such as a missing module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptError {
    /// The text iptables prints.
    pub message: String,
    /// The exit status.
    pub status: u8,
}

impl IptError {
    /// A parameter problem (exit 2).
    pub fn param(message: impl Into<String>) -> Self {
        IptError { message: message.into(), status: 2 }
    }

    /// Any other problem (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        IptError { message: message.into(), status: 1 }
    }
}

impl std::fmt::Display for IptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A change of a table as it is, naming its chain ([`Backend::change_current`]).
#[derive(Debug, Clone, Copy)]
pub struct CurrentEdit<'a> {
    /// Insert, delete or replace a rule; set, define, make or delete a chain; set a policy.
    pub kind: rnf_engine::rulewire::OpKind,
    /// The chain's name (a new chain's, for [`rnf_engine::rulewire::OpKind::NewChain`]).
    pub chain: &'a str,
    /// Position from 0; `u32::MAX` appends (insert); ignored by a delete with a rule.
    pub pos: u32,
    /// The rule's encoding (insert, replace; a delete by specification).
    pub spec: Option<&'a [u8]>,
    /// `-c`.
    pub counters: Option<rnf_engine::rule::Counters>,
    /// A chain's new rules, in order, with their counters (set and define).
    pub rules: &'a [(Vec<u8>, Option<rnf_engine::rule::Counters>)],
    /// The new policy (set policy).
    pub policy: Option<rnf_engine::rule::Policy>,
}

/// Where tables live: the kernel (netlink) or memory (tests).
pub trait Backend {
    /// Reads a table as it is now (builtin chains always present).
    fn load(&mut self, table: TableId) -> Result<model::Table, IptError>;
    /// Replaces a table atomically with `table`: all of it or nothing. Rules with a known `id`
    /// keep their counters unless `set_counters` is true; new rules start at zero. Fails if
    /// the table changed since it was loaded (the caller may reload and retry).
    fn commit(&mut self, table: &model::Table) -> Result<(), IptError>;
    /// Makes the kernel's tables `after`, knowing each was `before` when loaded, as one
    /// transaction: a backend that can send only what changed does (see
    /// [`crate::backend::delta`]); the default replaces the tables. Same outcome and errors as
    /// [`Backend::commit_all`].
    fn commit_changes(&mut self, pairs: &[(&model::Table, &model::Table)]) -> Result<(), (Option<TableId>, IptError)> {
        let afters: Vec<&model::Table> = pairs.iter().map(|(_, a)| *a).collect();
        self.commit_all(&afters)
    }
    /// Replaces several tables as one transaction: all change or none does. On failure, the
    /// table that failed when known.
    fn commit_all(&mut self, tables: &[&model::Table]) -> Result<(), (Option<TableId>, IptError)> {
        // A backend without transactions checks everything first, then commits one by one.
        for t in tables {
            self.commit(t).map_err(|e| (Some(t.id), e))?;
        }
        Ok(())
    }
    /// Applies one-rule changes (`-A`, `-I`, `-D`, `-R`) to a table as it is now, without
    /// reading it first: true when they were made. False when the backend cannot, or refused
    /// them (then nothing changed): the caller reads the table and applies the command as
    /// usual, which also words any error exactly as iptables does.
    fn change_current(&mut self, table: TableId, edits: &[CurrentEdit<'_>]) -> bool {
        self.change_current_tables(&[(table, edits)])
    }
    /// [`Backend::change_current`] for several tables as one transaction (an
    /// `iptables-restore --noflush` that read nothing).
    fn change_current_tables(&mut self, _tables: &[(TableId, &[CurrentEdit<'_>])]) -> bool {
        false
    }
    /// The tables that exist in this network namespace, most recently created first: the
    /// tables `iptables-save` prints, in its order. As with ip_tables, a table comes into
    /// existence the first time it is read or written (`load`/`commit`), and a fresh namespace
    /// has none. The default reports every table (a backend that cannot tell should override
    /// this).
    fn present_tables(&mut self) -> Result<Vec<TableId>, IptError> {
        Ok(TableId::ALL.iter().rev().copied().collect())
    }
}
