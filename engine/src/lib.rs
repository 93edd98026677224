// SPDX-License-Identifier: GPL-2.0

//! rust_nf's engine: the pure logic of the packet filter.
//!
//! Everything here is plain `no_std` Rust without allocation and without kernel types, so the
//! same source is compiled into the kernel module (see `rust_nf/rust_nf_main.rs`, which mounts
//! these files with `#[path]`) and into the host crates, where it is unit-tested.
//!
//! Rule for this crate: modules refer to each other with `super::`, never `crate::`, because
//! in the kernel module the engine is not the crate root.

#![no_std]
#![forbid(unsafe_code)]

pub mod checksum;
pub mod conntrack;
pub mod fuzzgen;
pub mod hooks;
pub mod packet;
pub mod nat;
pub mod rules;
pub mod wire;

pub use rules::{carry, compile, compiled, connlimit, eval, index, recent, rule, rulewire, state, tcpmss};

#[cfg(test)]
mod testrng;
