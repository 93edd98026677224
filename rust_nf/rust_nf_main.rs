// SPDX-License-Identifier: GPL-2.0

//! rust_nf: an iptables-style packet filter with its own connection tracking and NAT.
//!
//! Reading order for one packet: the C shim (`rnf_shim.c`) registers the hooks of the engine's
//! table (`engine/src/hooks.rs`) in every network namespace; each hook call comes through
//! `ffi::entry` to [`hook::run`], which returns the verdict. Configuration arrives over
//! generic netlink in [`genl`], with the wire format from `engine/src/wire.rs`, and is
//! compiled into a table version (`ruleset.rs`) by `table.rs`.
//!
//! `unsafe` lives in [`ffi`] only: every other module denies it, and the engine forbids it.

use kernel::prelude::*;

/// The pure logic, shared with the host crates (see `engine/src/lib.rs`). Mounted by path,
/// so its crate-level `#![forbid(unsafe_code)]` does not apply here: this attribute does.
#[path = "../engine/src"]
#[allow(dead_code, unreachable_pub)]
#[forbid(unsafe_code)]
mod engine {
    pub mod checksum;
    pub mod conntrack;
    pub mod hooks;
    pub mod nat;
    pub mod packet;
    pub mod rules;
    pub mod wire;
    pub use rules::{carry, compile, compiled, connlimit, delta, eval, index, recent, rule, rulewire, splice, state, tcpmss};
}

#[deny(unsafe_code)]
mod conntrack;
#[deny(unsafe_code)]
mod counters;
mod ffi;
#[deny(unsafe_code)]
mod genl;
#[deny(unsafe_code)]
mod hook;
#[deny(unsafe_code)]
mod nat;
#[deny(unsafe_code)]
mod netns;
#[deny(unsafe_code)]
mod recent;
#[deny(unsafe_code)]
mod ruleset;
#[deny(unsafe_code)]
mod table;

module! {
    type: RustNf,
    name: "rust_nf",
    authors: ["rust_nf developers"],
    description: "iptables-style packet filter with its own conntrack and NAT, in Rust",
    license: "GPL",
}

/// The module: while it lives, the pernet operations and the netlink family are registered.
struct RustNf {
    _shim: ffi::shim::Registration,
}

impl kernel::Module for RustNf {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let shim = ffi::shim::Registration::new(module)?;
        pr_info!("rust_nf {} loaded: {} hooks per netns\n", genl::VERSION, engine::hooks::HOOKS.len());
        Ok(RustNf { _shim: shim })
    }
}

impl Drop for RustNf {
    fn drop(&mut self) {
        pr_info!("rust_nf unloading\n");
    }
}
