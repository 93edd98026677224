// SPDX-License-Identifier: GPL-2.0

//! Per-CPU packet and byte counters.

use super::sys;
use core::ffi::c_uint;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// Counter pairs per per-CPU block: 4 KiB, like x_tables' `XT_PCPU_BLOCK_SIZE` (one per-CPU
/// allocation may not exceed 32 KiB, so large rulesets take several blocks).
pub(crate) const PER_BLOCK: c_uint = 256;

/// Per-CPU packet and byte counters, one pair per index, in per-CPU blocks.
///
/// Counting is lock-free (`this_cpu` operations); a sum reads every CPU's share. There is no
/// way to zero a counter: another CPU may be adding to it at the same moment, so users keep a
/// base to subtract instead (see `netns::HookCounters`).
pub(crate) struct PcpuCounters {
    blocks: KVVec<PcpuBlock>,
    len: c_uint,
}

impl PcpuCounters {
    /// Allocates `len` zeroed counter pairs, charged to the caller's memory cgroup.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let len = c_uint::try_from(len).map_err(|_| EINVAL)?;
        let n = len.div_ceil(PER_BLOCK) as usize;
        let mut blocks = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            blocks.push(PcpuBlock::new()?, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { blocks, len })
    }

    /// Counts one packet of `bytes` at `idx` on this CPU; out-of-range indexes are ignored.
    pub(crate) fn add(&self, idx: c_uint, bytes: u64) {
        if let Some(b) = self.block(idx) {
            b.add(idx % PER_BLOCK, bytes);
        }
    }

    /// The sum over all CPUs of counter `idx` as (packets, bytes).
    pub(crate) fn sum(&self, idx: c_uint) -> (u64, u64) {
        self.block(idx).map_or((0, 0), |b| b.sum(idx % PER_BLOCK))
    }

    fn block(&self, idx: c_uint) -> Option<&PcpuBlock> {
        if idx >= self.len {
            return None;
        }
        self.blocks.get((idx / PER_BLOCK) as usize)
    }
}

/// One per-CPU block of [`PER_BLOCK`] counter pairs: a table's counter pool
/// (`crate::counters`) is made of them, and every version of the table shares them.
///
/// # Invariants
///
/// `ptr` was returned by `rnf_pcpu_alloc(PER_BLOCK)` and is freed only by `Drop`.
pub(crate) struct PcpuBlock {
    ptr: NonNull<c_void>,
}

impl PcpuBlock {
    /// A block of zeroed counter pairs, charged to the caller's memory cgroup.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: A plain allocation; no preconditions.
        let ptr = NonNull::new(unsafe { sys::rnf_pcpu_alloc(PER_BLOCK) }).ok_or(ENOMEM)?;
        // INVARIANT: Allocated just above with PER_BLOCK pairs.
        Ok(Self { ptr })
    }

    /// Counts one packet of `bytes` at `i` on this CPU; `i >= PER_BLOCK` is ignored.
    pub(crate) fn add(&self, i: c_uint, bytes: u64) {
        if i < PER_BLOCK {
            // SAFETY: `ptr` is a live block of `PER_BLOCK` pairs (invariant) and `i` is in it.
            unsafe { sys::rnf_pcpu_add(self.ptr.as_ptr(), i, bytes) };
        }
    }

    /// The sum over all CPUs of counter `i` as (packets, bytes); zero for `i >= PER_BLOCK`.
    pub(crate) fn sum(&self, i: c_uint) -> (u64, u64) {
        let (mut p, mut by) = (0u64, 0u64);
        if i < PER_BLOCK {
            // SAFETY: As in `add`; `p` and `by` are valid for writes.
            unsafe { sys::rnf_pcpu_sum(self.ptr.as_ptr(), i, &mut p, &mut by) };
        }
        (p, by)
    }

    /// Sets counter `i` to (packets, bytes). Meant for a counter nothing counts into (a free
    /// slot of the pool): a packet counted at the same moment on another CPU could be lost,
    /// nothing worse.
    pub(crate) fn set(&self, i: c_uint, packets: u64, bytes: u64) {
        if i < PER_BLOCK {
            // SAFETY: As in `add`.
            unsafe { sys::rnf_pcpu_set(self.ptr.as_ptr(), i, packets, bytes) };
        }
    }
}

impl Drop for PcpuBlock {
    fn drop(&mut self) {
        // SAFETY: The block came from `rnf_pcpu_alloc` (invariant) and is freed only here.
        unsafe { sys::rnf_pcpu_free(self.ptr.as_ptr()) };
    }
}

// SAFETY: The per-CPU area is only touched through this_cpu operations and per-CPU reads and
// writes, which are safe from any CPU.
unsafe impl Send for PcpuBlock {}
// SAFETY: As above: no method needs exclusive access.
unsafe impl Sync for PcpuBlock {}

