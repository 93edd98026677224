// SPDX-License-Identifier: GPL-2.0

//! The kernel pieces of a connection table: its locks and its collector (a delayed work).

use super::sys;
use crate::conntrack::Ct;
use crate::engine::conntrack::table::Locks;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// The table lock, the per-entry locks and the collector of one namespace's table.
///
/// # Invariants
///
/// `mem` came from `rnf_ct_mem_new` and is freed only by `Drop`. Once started, the collector
/// runs with a pointer to a [`Ct`] that owns this value; `Drop` stops it (waiting for a run
/// in progress) before anything else of the `Ct` is freed, because `mem` is the `Ct`'s first
/// field.
pub(crate) struct CtMem {
    mem: NonNull<sys::rnf_ct_mem>,
}

impl CtMem {
    /// Events of this table go to listeners in the namespace of `req`.
    pub(crate) fn set_net(&self, req: &super::genl::Request<'_>) {
        // SAFETY: `mem` is live (invariant); the request is live during the call.
        unsafe { sys::rnf_ct_mem_set_net(self.mem.as_ptr(), req.raw()) };
    }

    /// Locks and an idle collector.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: No preconditions (may sleep: called from a netlink request).
        let p = unsafe { sys::rnf_ct_mem_new() };
        // INVARIANT: From `rnf_ct_mem_new`.
        NonNull::new(p).map(|mem| Self { mem }).ok_or(ENOMEM)
    }

    /// Starts the collector of `ct`, which owns `self` as its first field.
    pub(crate) fn start(&self, ct: &Ct) {
        let p = core::ptr::from_ref(ct).cast_mut().cast::<c_void>();
        // SAFETY: `mem` is live (invariant). `ct` owns `self`: it outlives the collector, which
        // `Drop` stops before the rest of `ct` goes (invariant), and it is never moved (it is
        // boxed before this call).
        unsafe { sys::rnf_ct_mem_start(self.mem.as_ptr(), p) };
    }
}

impl Drop for CtMem {
    fn drop(&mut self) {
        // SAFETY: `mem` came from `rnf_ct_mem_new` and is freed once, here; the shim stops the
        // collector first.
        unsafe { sys::rnf_ct_mem_free(self.mem.as_ptr()) };
    }
}

// SAFETY: The shim's locks and work item are made to be used from any CPU.
unsafe impl Send for CtMem {}
// SAFETY: As above; every operation takes the shim's own locks.
unsafe impl Sync for CtMem {}

impl Locks for CtMem {
    fn table<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: `mem` is live (invariant); the lock is released below on the same path.
        unsafe { sys::rnf_ct_lock_table(self.mem.as_ptr()) };
        let r = f();
        // SAFETY: Taken above.
        unsafe { sys::rnf_ct_unlock_table(self.mem.as_ptr()) };
        r
    }

    fn entry<R>(&self, idx: u32, f: impl FnOnce() -> R) -> R {
        // SAFETY: As in `table`.
        unsafe { sys::rnf_ct_lock_entry(self.mem.as_ptr(), idx) };
        let r = f();
        // SAFETY: Taken above, with the same index.
        unsafe { sys::rnf_ct_unlock_entry(self.mem.as_ptr(), idx) };
        r
    }

    fn cpu(&self) -> usize {
        super::shim::cpu_id() as usize
    }

    fn listening(&self) -> bool {
        // SAFETY: `mem` is live (invariant); the shim only reads.
        unsafe { sys::rnf_ct_events_listening(self.mem.as_ptr()) != 0 }
    }

    fn event(&self, rec: &crate::engine::conntrack::wire::FlowRecord) {
        let mut buf = [0u8; sys::RNF_EV_BYTES as usize];
        let mut enc = crate::engine::wire::Encoder::new(&mut buf);
        crate::engine::conntrack::wire::encode_flow(&mut enc, rec);
        if enc.overflowed() {
            return;
        }
        let len = enc.len();
        // SAFETY: `mem` is live (invariant); `buf` holds `len` initialised bytes, which the
        // shim copies.
        unsafe { sys::rnf_ct_event_push(self.mem.as_ptr(), buf.as_ptr(), len as core::ffi::c_uint) };
    }
}

/// One run of a table's collector.
///
/// # Safety
///
/// `table` is the pointer [`CtMem::start`] gave the shim, whose `Ct` is alive (the shim calls
/// this only from the collector, which the `Ct`'s drop stops first).
#[no_mangle]
unsafe extern "C" fn rnf_rust_ct_gc(table: *mut c_void) -> core::ffi::c_ulong {
    const _: sys::rnf_rust_ct_gc_fn = Some(rnf_rust_ct_gc);
    // SAFETY: The caller's guarantee; only shared references to a `Ct` are ever made.
    match unsafe { table.cast::<Ct>().as_ref() } {
        Some(ct) => ct.gc(),
        None => super::shim::hz().into(),
    }
}

/// An interface went down (`addr` 0) or lost address `addr` (host order): the flows
/// MASQUERADE bound to it go.
///
/// # Safety
///
/// `state` came from `rnf_rust_net_init` and is not freed during the call (the shim calls
/// this from its notifiers under RTNL, never concurrently with the namespace's exit).
#[no_mangle]
unsafe extern "C" fn rnf_rust_masq_down(state: *mut c_void, ifindex: core::ffi::c_int, addr: u32) {
    const _: sys::rnf_rust_masq_down_fn = Some(rnf_rust_masq_down);
    // SAFETY: The caller's guarantee; only shared references to a `NetState` are ever made.
    let Some(ns) = (unsafe { state.cast::<crate::netns::NetState>().as_ref() }) else { return };
    let (Some(ct), Ok(ifindex)) = (ns.ct.get(), u32::try_from(ifindex)) else { return };
    ct.table().masq_down(ifindex, (addr != 0).then_some(addr), super::shim::jiffies());
}

/// The rate-limited "table full" message.
pub(crate) fn table_full_warn() {
    // SAFETY: No preconditions.
    unsafe { sys::rnf_ct_table_full_warn() };
}

/// The table size the module parameters ask for: (maximum flows, buckets).
pub(crate) fn sizes() -> (u32, u32) {
    // SAFETY: Reads module parameters and the memory size; no preconditions.
    unsafe { (sys::rnf_ct_max(), sys::rnf_ct_buckets()) }
}
