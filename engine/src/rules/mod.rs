// SPDX-License-Identifier: GPL-2.0

//! The rule engine: iptables' model of tables, chains and rules ([`rule`]), its wire format
//! ([`rulewire`]), the compiler to a flat form ([`compile`], [`compiled`]), the evaluation of
//! a packet ([`eval`]), the lock-free state of `limit` and `nth` ([`state`]), the address lists
//! of `recent` ([`recent`]), and the counter and id carry-over of a replace ([`carry`]).

pub mod carry;
pub mod compile;
pub mod compiled;
pub mod connlimit;
pub mod delta;
pub mod eval;
pub mod index;
pub mod recent;
pub mod rule;
pub mod rulewire;
pub mod splice;
pub mod state;
pub mod tcpmss;
#[cfg(test)]
mod index_tests;
