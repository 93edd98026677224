// SPDX-License-Identifier: GPL-2.0

//! Per network namespace state: created by the shim's pernet `init`, freed by its `exit`.

use crate::engine::hooks::NUM_HOOKS;
use crate::engine::rule::NUM_TABLES;
use crate::ffi;
use crate::table::{Live, TableConfig};
use core::ffi::c_uint;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Counter pairs per per-CPU block: 4 KiB, like x_tables' `XT_PCPU_BLOCK_SIZE` (one per-CPU
/// allocation may not exceed 32 KiB, so large rulesets take several blocks).
const PER_BLOCK: c_uint = 256;

/// Per-CPU packet and byte counters, one pair per index, in per-CPU blocks.
///
/// # Invariants
///
/// Every pointer in `blocks` was returned by `rnf_pcpu_alloc(PER_BLOCK)` and is freed only by
/// `Drop`; `blocks` holds enough of them for `len` counters.
pub(crate) struct PcpuCounters {
    blocks: KVVec<NonNull<c_void>>,
    len: c_uint,
}

impl PcpuCounters {
    /// Allocates `len` zeroed counter pairs.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let len = c_uint::try_from(len).map_err(|_| EINVAL)?;
        let n = len.div_ceil(PER_BLOCK) as usize;
        // INVARIANT: `Drop` frees exactly the blocks pushed so far, also on an early return.
        let mut me = Self { blocks: KVVec::with_capacity(n, GFP_KERNEL)?, len: 0 };
        for _ in 0..n {
            // SAFETY: Plain allocation of one block.
            let b = NonNull::new(unsafe { ffi::rnf_pcpu_alloc(PER_BLOCK) }).ok_or(ENOMEM)?;
            if let Err(e) = me.blocks.push(b, GFP_KERNEL) {
                // SAFETY: `b` was just allocated and is not stored anywhere.
                unsafe { ffi::rnf_pcpu_free(b.as_ptr()) };
                return Err(e.into());
            }
        }
        me.len = len;
        Ok(me)
    }

    fn slot(&self, idx: c_uint) -> Option<(*mut c_void, c_uint)> {
        if idx >= self.len {
            return None;
        }
        let b = self.blocks.get((idx / PER_BLOCK) as usize)?;
        Some((b.as_ptr(), idx % PER_BLOCK))
    }

    /// Counts one packet of `bytes` at `idx` on this CPU; out-of-range indexes are ignored.
    pub(crate) fn add(&self, idx: c_uint, bytes: u64) {
        if let Some((b, i)) = self.slot(idx) {
            // SAFETY: `b` is a live block of `PER_BLOCK` pairs (invariant) and `i < PER_BLOCK`.
            unsafe { ffi::rnf_pcpu_add(b, i, bytes) };
        }
    }

    /// The sum over all CPUs of counter `idx` as (packets, bytes).
    pub(crate) fn sum(&self, idx: c_uint) -> (u64, u64) {
        let (mut p, mut by) = (0u64, 0u64);
        if let Some((b, i)) = self.slot(idx) {
            // SAFETY: As in `add`; `p` and `by` are valid for writes.
            unsafe { ffi::rnf_pcpu_sum(b, i, &mut p, &mut by) };
        }
        (p, by)
    }

    /// Zeroes counter `idx` on all CPUs.
    pub(crate) fn zero(&self, idx: c_uint) {
        if let Some((b, i)) = self.slot(idx) {
            // SAFETY: As in `add`.
            unsafe { ffi::rnf_pcpu_zero(b, i) };
        }
    }
}

impl Drop for PcpuCounters {
    fn drop(&mut self) {
        for b in self.blocks.iter() {
            // SAFETY: Each block came from `rnf_pcpu_alloc` (invariant) and is freed only here.
            unsafe { ffi::rnf_pcpu_free(b.as_ptr()) };
        }
    }
}

// SAFETY: The per-CPU areas are only touched through this_cpu ops and per-CPU reads, which are
// safe from any CPU.
unsafe impl Send for PcpuCounters {}
// SAFETY: As above: no method needs exclusive access.
unsafe impl Sync for PcpuCounters {}

/// What rust_nf keeps per network namespace.
#[pin_data(PinnedDrop)]
pub(crate) struct NetState {
    /// Packets and bytes seen per hook slot.
    pub(crate) counters: PcpuCounters,
    /// The namespace's cookie, reported to userspace to tell namespaces apart.
    pub(crate) cookie: u64,
    /// The compiled tables the packet path reads (under RCU).
    pub(crate) live: Live,
    /// The tables' configuration; every change holds this lock.
    #[pin]
    pub(crate) config: Mutex<[TableConfig; NUM_TABLES]>,
}

#[pinned_drop]
impl PinnedDrop for NetState {
    fn drop(self: Pin<&mut Self>) {
        // The shim frees the state only after the hooks are unregistered and a grace period
        // passed, so no packet can be reading these versions.
        self.live.clear();
    }
}

impl NetState {
    /// Borrows the state behind a pointer from [`rnf_rust_net_init`].
    ///
    /// # Safety
    ///
    /// `p` must come from [`rnf_rust_net_init`] and not yet be passed to [`rnf_rust_net_exit`]
    /// for the whole lifetime `'a`.
    pub(crate) unsafe fn from_ptr<'a>(p: *mut c_void) -> &'a NetState {
        // SAFETY: Guaranteed by the caller.
        unsafe { &*p.cast::<NetState>() }
    }
}

/// Creates the state for a new network namespace; NULL on allocation failure.
///
/// # Safety
///
/// `net` must point to the namespace being initialised.
#[no_mangle]
unsafe extern "C" fn rnf_rust_net_init(net: *mut ffi::Net) -> *mut c_void {
    let Ok(counters) = PcpuCounters::new(NUM_HOOKS) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `net` is the namespace being initialised (caller's guarantee).
    let cookie = unsafe { ffi::rnf_net_cookie(net) };
    let init = pin_init!(NetState {
        counters,
        cookie,
        live: Live::new(),
        config <- new_mutex!([const { TableConfig::new() }; NUM_TABLES]),
    });
    match KBox::pin_init(init, GFP_KERNEL) {
        // SAFETY: The state stays pinned: it is only ever used through the raw pointer and
        // freed in `rnf_rust_net_exit` by rebuilding the pinned box.
        Ok(b) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(b) }).cast(),
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees the state of a namespace that is going away.
///
/// # Safety
///
/// `p` must come from [`rnf_rust_net_init`], and no hook may still be running with it (the
/// shim unregisters the hooks in `pre_exit`, and the core waits a grace period before `exit`).
#[no_mangle]
unsafe extern "C" fn rnf_rust_net_exit(p: *mut c_void) {
    // SAFETY: `p` came from `KBox::into_raw` in `rnf_rust_net_init` and is freed only here;
    // it was pinned there and is dropped in place here.
    drop(unsafe { Pin::new_unchecked(KBox::from_raw(p.cast::<NetState>())) });
}
