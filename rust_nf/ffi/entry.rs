// SPDX-License-Identifier: GPL-2.0

//! The functions the C shim calls: raw pointers in, safe types out.
//!
//! Each is checked against its function type in `rnf_shim.h` (the `const` items below), so a
//! prototype that changes on one side only does not compile.

use super::genl::{Dump, Request};
use super::skb::{Packet, Verdict};
use super::sys;
use crate::engine::hooks::HOOKS;
use crate::netns::NetState;
use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;
use kernel::prelude::*;

const _: sys::rnf_rust_net_init_fn = Some(rnf_rust_net_init);
const _: sys::rnf_rust_net_exit_fn = Some(rnf_rust_net_exit);
const _: sys::rnf_rust_hook_fn = Some(rnf_rust_hook);
const _: sys::rnf_rust_hook_spec_fn = Some(rnf_rust_hook_spec);
const _: sys::rnf_rust_genl_doit_fn = Some(rnf_rust_genl_doit);
const _: sys::rnf_rust_genl_dumpit_fn = Some(rnf_rust_genl_dumpit);

/// The state behind a pointer from [`rnf_rust_net_init`].
///
/// # Safety
///
/// `p` came from [`rnf_rust_net_init`] and is not passed to [`rnf_rust_net_exit`] during `'a`.
unsafe fn net_state<'a>(p: *mut c_void) -> Option<&'a NetState> {
    // SAFETY: The caller's guarantee: a live, pinned `NetState` (only shared references to it
    // are ever made).
    unsafe { p.cast::<NetState>().as_ref() }
}

/// Creates the state for a new network namespace; NULL on allocation failure.
///
/// # Safety
///
/// `net` points to the namespace being initialised.
#[no_mangle]
unsafe extern "C" fn rnf_rust_net_init(net: *mut sys::net) -> *mut c_void {
    // SAFETY: `net` is the namespace being initialised (caller's guarantee).
    let cookie = unsafe { sys::rnf_net_cookie(net) };
    match NetState::new(cookie) {
        // SAFETY: The state stays pinned: it is only used through the raw pointer, by shared
        // reference, and freed in `rnf_rust_net_exit` by rebuilding the pinned box.
        Ok(b) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(b) }).cast(),
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees the state of a namespace that is going away (or whose hooks failed to register).
///
/// # Safety
///
/// `p` came from [`rnf_rust_net_init`] and is freed once; no hook runs with it anymore and a
/// grace period passed since the last could have started (the shim unregisters the hooks in
/// `pre_exit`, the netns core waits a grace period before `exit`; a failed `init` waits itself).
#[no_mangle]
unsafe extern "C" fn rnf_rust_net_exit(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` came from `KBox::into_raw` in `rnf_rust_net_init` and is freed only here; it
    // was pinned there and is dropped in place here.
    let state = unsafe { Pin::new_unchecked(KBox::from_raw(p.cast::<NetState>())) };
    // SAFETY: No reader is left (the caller's guarantee: hooks gone, a grace period passed,
    // no request can run for a namespace that is going away), so the tables go at once.
    unsafe { state.tables.boxes().free_unread() };
    // SAFETY: As above; its collector is stopped by its drop, before its memory goes.
    unsafe { state.ct.free_unread() };
    drop(state);
}

/// The packet path: called by the shim's per-stage trampolines for every IPv4 packet.
///
/// # Safety
///
/// `state` is the pointer [`rnf_rust_net_init`] returned for the packet's netns, alive for the
/// call; `skb` and `st` are the packet and hook state of this hook call.
#[no_mangle]
unsafe extern "C" fn rnf_rust_hook(
    state: *mut c_void,
    slot: c_uint,
    skb: *mut sys::sk_buff,
    st: *const sys::nf_hook_state,
) -> c_uint {
    // SAFETY: The caller's guarantee.
    let ns = unsafe { net_state(state) };
    let (Some(ns), Some(skb), Some(st)) = (ns, NonNull::new(skb), NonNull::new(st.cast_mut())) else {
        return kernel::bindings::NF_DROP;
    };
    // SAFETY: `skb` and `st` belong to this hook call, which outlives `pkt`.
    let mut pkt = unsafe { Packet::from_raw(skb, st) };
    match crate::hook::run(ns, slot, &mut pkt) {
        Verdict::Accept => kernel::bindings::NF_ACCEPT,
        Verdict::Drop => kernel::bindings::NF_DROP,
        Verdict::Queue(v) => v,
    }
}

/// Tells the shim the hook point, priority and stage of the registration in `slot`.
///
/// # Safety
///
/// The three pointers are valid for writes.
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

/// One generic netlink command. The core has already checked the attributes against the
/// command's policy and, for mutating commands, CAP_NET_ADMIN.
///
/// # Safety
///
/// `info` is the request being handled; `state` came from [`rnf_rust_net_init`] for the
/// requester's namespace, which is alive while the request is.
#[no_mangle]
unsafe extern "C" fn rnf_rust_genl_doit(cmd: u8, info: *mut sys::genl_info, state: *mut c_void) -> c_int {
    // SAFETY: The caller's guarantee.
    let (Some(ns), Some(info)) = (unsafe { net_state(state) }, NonNull::new(info)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `info` is the request of this call.
    let mut req = unsafe { Request::from_raw(info) };
    match crate::genl::doit(cmd, &mut req, ns) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// One step of a dump: fills `skb`; returns its length (more to come), 0 (done) or an error.
///
/// # Safety
///
/// `skb` and `cb` are the arguments of the `dumpit` call; `state` came from
/// [`rnf_rust_net_init`] for the requester's namespace, alive during the call.
#[no_mangle]
unsafe extern "C" fn rnf_rust_genl_dumpit(
    cmd: u8,
    skb: *mut sys::sk_buff,
    cb: *mut sys::netlink_callback,
    state: *mut c_void,
) -> c_int {
    // SAFETY: The caller's guarantee.
    let (Some(ns), Some(skb), Some(cb)) = (unsafe { net_state(state) }, NonNull::new(skb), NonNull::new(cb)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `skb` and `cb` are the arguments of this call.
    let mut dump = unsafe { Dump::from_raw(skb, cb) };
    match crate::genl::dumpit(cmd, &mut dump, ns) {
        // More to come: netlink calls again while the return value is positive.
        Ok(true) => 1,
        Ok(false) => 0,
        Err(e) => e.to_errno(),
    }
}
