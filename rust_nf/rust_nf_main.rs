// SPDX-License-Identifier: GPL-2.0

//! rust_nf: an iptables-style packet filter with its own connection tracking and NAT.
//!
//! Reading order for one packet: the C shim (`rnf_shim.c`) registers the hooks of the engine's
//! table (`engine/src/hooks.rs`) in every network namespace and calls [`rnf_rust_hook`] for each
//! packet; the verdict comes back from there. Configuration arrives over generic netlink in
//! [`rnf_rust_genl_doit`] (`genl.rs`), with the wire format from `engine/src/wire.rs`.

use kernel::prelude::*;

/// The pure logic, shared with the host crates (see `engine/src/lib.rs`).
#[path = "../engine/src"]
#[allow(dead_code, unreachable_pub)]
mod engine {
    pub mod carry;
    pub mod checksum;
    pub mod compile;
    pub mod eval;
    pub mod hooks;
    pub mod packet;
    pub mod rule;
    pub mod rulewire;
    pub mod state;
    pub mod wire;
}

mod ffi;
mod genl;
mod netns;
mod ruleset;
mod table;

use core::ffi::c_int;
use core::ffi::c_uint;
use core::ffi::c_void;
use engine::hooks::Stage;
use engine::hooks::HOOKS;
use engine::rule::TableId;

module! {
    type: RustNf,
    name: "rust_nf",
    authors: ["rust_nf developers"],
    description: "iptables-style packet filter with its own conntrack and NAT, in Rust",
    license: "GPL",
}

/// The module: while it lives, the pernet operations and the netlink family are registered.
struct RustNf;

impl kernel::Module for RustNf {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called once, from module init, before anything else of the shim is used.
        let err = unsafe { ffi::rnf_shim_init() };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        pr_info!("rust_nf {} loaded: {} hooks per netns\n", genl::VERSION, HOOKS.len());
        Ok(RustNf)
    }
}

impl Drop for RustNf {
    fn drop(&mut self) {
        // SAFETY: `init` succeeded (a `RustNf` exists), so the shim is registered; this is the
        // only place that unregisters it.
        unsafe { ffi::rnf_shim_exit() };
        pr_info!("rust_nf unloaded\n");
    }
}

/// Tells the shim the hook point, priority and stage of the registration in `slot`.
///
/// # Safety
///
/// The three pointers must be valid for writes.
#[no_mangle]
unsafe extern "C" fn rnf_rust_hook_spec(
    slot: c_uint,
    hooknum: *mut c_uint,
    priority: *mut c_int,
    stage: *mut c_uint,
) -> c_int {
    let Some(spec) = HOOKS.get(slot as usize) else {
        return EINVAL.to_errno();
    };
    // SAFETY: The caller guarantees the pointers are valid for writes.
    unsafe {
        *hooknum = spec.point as c_uint;
        *priority = spec.priority();
        *stage = spec.stage as c_uint;
    }
    0
}

/// The packet path: called by the shim's per-stage trampolines for every IPv4 packet.
///
/// # Safety
///
/// `state` is the pointer [`netns::rnf_rust_net_init`] returned for the packet's netns, still
/// alive (the shim unregisters hooks and waits a grace period before freeing it); `skb` is the
/// packet.
#[no_mangle]
unsafe extern "C" fn rnf_rust_hook(
    state: *mut c_void,
    slot: c_uint,
    skb: *mut kernel::bindings::sk_buff,
    st: *const ffi::HookState,
) -> c_uint {
    // SAFETY: The caller guarantees `state` came from `rnf_rust_net_init` and is alive.
    let ns = unsafe { netns::NetState::from_ptr(state) };
    // SAFETY: `skb` is the packet the hook was called for, valid for the whole call.
    let len = unsafe { ffi::rnf_skb_len(skb) };
    ns.counters.add(slot, u64::from(len));
    let Some(spec) = HOOKS.get(slot as usize) else {
        return kernel::bindings::NF_ACCEPT;
    };
    // Conntrack and NAT come with their own stages; the tables run here.
    let table = match spec.stage {
        Stage::Raw => TableId::Raw,
        Stage::Mangle => TableId::Mangle,
        Stage::Filter => TableId::Filter,
        Stage::Security => TableId::Security,
        _ => return kernel::bindings::NF_ACCEPT,
    };
    // Netfilter calls hooks inside an RCU read-side critical section; the guard documents it
    // (and keeps lockdep informed) at no cost.
    let _rcu = kernel::sync::rcu::read_lock();
    match ns.live.get(table) {
        // SAFETY: `skb` and `st` belong to this hook invocation.
        Some(v) => unsafe { v.run(spec.point, skb, st) },
        None => kernel::bindings::NF_ACCEPT,
    }
}
