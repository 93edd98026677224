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

pub mod carry;
pub mod checksum;
pub mod compile;
pub mod compiled;
pub mod conntrack;
pub mod eval;
pub mod fuzzgen;
pub mod hooks;
pub mod packet;
pub mod rule;
pub mod rulewire;
pub mod state;
pub mod wire;

#[cfg(test)]
mod testrng;
