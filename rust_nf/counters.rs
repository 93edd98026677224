// SPDX-License-Identifier: GPL-2.0

//! A table's counter pool: the packet and byte counters of its rules and builtin chains, owned
//! by identity (`engine/src/rules/carry.rs`).
//!
//! Every rule and builtin chain counts into a slot of its table's pool and keeps that slot for
//! as long as it lives, across every version of the table. A change hands fresh slots to new
//! rules (and to rules whose counters the request sets) and gives back those of deleted
//! rules; it never copies a counter, and packets still walking the version being replaced
//! count into the same slots as the new version. The versions share the pool's per-CPU blocks
//! (each holds a reference to every block it counts into), so the packet path needs no lock.
//!
//! A slot given back may be handed out again only once no version can count into it: the
//! change that gives it back leaves it pending, and a later change frees it once the grace
//! period that started when the old version was retired is over (`table::settle`). Blocks at
//! the end that hold no live slot any more are let go when the change is committed (a version
//! being retired keeps its own references to them), so a flushed table's pool goes back to
//! nothing.

use crate::engine::carry::NO_SLOT;
use crate::engine::compiled::OutOfMemory;
use crate::engine::rule::Counters;
use crate::ffi::pcpu::{PcpuBlock, PER_BLOCK};
use kernel::alloc::AllocError;
use kernel::prelude::*;
use kernel::sync::Arc;

/// The blocks of a pool (slot `s` is pair `s % PER_BLOCK` of block `s / PER_BLOCK`).
pub(crate) type Blocks = KVVec<Arc<PcpuBlock>>;

/// The counters of a slot in `blocks`; zero for [`NO_SLOT`] or a slot beyond them.
pub(crate) fn read(blocks: &[Arc<PcpuBlock>], slot: u32) -> Counters {
    let (packets, bytes) = blocks.get((slot / PER_BLOCK) as usize).map_or((0, 0), |b| b.sum(slot % PER_BLOCK));
    Counters { packets, bytes }
}

/// Counts one packet of `bytes` in `slot` of `blocks` ([`NO_SLOT`] or beyond: nothing).
pub(crate) fn add(blocks: &[Arc<PcpuBlock>], slot: u32, bytes: u64) {
    if let Some(b) = blocks.get((slot / PER_BLOCK) as usize) {
        b.add(slot % PER_BLOCK, bytes);
    }
}

/// One table's pool.
pub(crate) struct CounterPool {
    blocks: Blocks,
    /// Slots given back (no version counts into them any more).
    free: KVVec<u32>,
    /// Slots the last change gave back, which the version it replaced may still count into
    /// until its grace period is over ([`CounterPool::release_pending`]).
    pending: KVVec<u32>,
    /// Slots from here to the end of the blocks were never handed out.
    end: u32,
}

impl CounterPool {
    /// An empty pool.
    pub(crate) const fn new() -> Self {
        Self { blocks: KVVec::new(), free: KVVec::new(), pending: KVVec::new(), end: 0 }
    }

    /// The counters of `slot` summed over all CPUs (zero for [`NO_SLOT`]).
    pub(crate) fn read(&self, slot: u32) -> Counters {
        read(&self.blocks, slot)
    }

    /// Makes the pool what a committed change left it ([`SlotAlloc::finish`]). Cannot fail:
    /// everything was allocated when the change was prepared.
    pub(crate) fn install(&mut self, next: PoolNext) {
        self.blocks = next.blocks;
        self.free = next.free;
        self.pending = next.pending;
        self.end = next.end;
    }

    /// Makes the pending slots free: the version that counted into them is gone. If there is
    /// no memory to join the lists, they stay pending (fewer slots to reuse, nothing lost).
    pub(crate) fn release_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.free.is_empty() {
            core::mem::swap(&mut self.free, &mut self.pending);
        } else if self.free.extend_from_slice(&self.pending, GFP_KERNEL_ACCOUNT).is_ok() {
            self.pending.clear();
        } else {
            return;
        }
        // Lowest slots first out, as `SlotAlloc::finish` orders them.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }
}

/// What a pool becomes when a change is committed: its blocks (new ones included), its free
/// slots, the slots the old version alone used (pending until it is gone) and its high-water
/// mark.
pub(crate) struct PoolNext {
    blocks: Blocks,
    free: KVVec<u32>,
    pending: KVVec<u32>,
    end: u32,
}

/// Fresh slots handed out while a change is prepared: the pool's free slots first (from the
/// last), then slots never used, then new blocks. The pool itself is not touched: a change that
/// fails leaves it as it was (slots it set are free, so setting them harmed nothing).
pub(crate) struct SlotAlloc<'a> {
    pool: &'a CounterPool,
    /// Free slots taken, from the end of the pool's list.
    taken: usize,
    blocks: Blocks,
    end: u32,
    /// Slots handed out so far (a long change yields the CPU now and then).
    handed: u32,
}

impl<'a> SlotAlloc<'a> {
    /// Starts handing out slots of `pool`.
    pub(crate) fn new(pool: &'a CounterPool) -> core::result::Result<Self, AllocError> {
        let mut blocks = KVVec::with_capacity(pool.blocks.len(), GFP_KERNEL_ACCOUNT)?;
        for b in pool.blocks.iter() {
            blocks.push(b.clone(), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { pool, taken: 0, blocks, end: pool.end, handed: 0 })
    }

    /// A slot nothing uses, set to `c`.
    pub(crate) fn fresh(&mut self, c: Counters) -> core::result::Result<u32, OutOfMemory> {
        // Setting a slot writes every CPU's share: a million of them must not hold the CPU.
        self.handed = self.handed.wrapping_add(1);
        if self.handed % 1024 == 0 {
            crate::ffi::shim::cond_resched();
        }
        let free = &self.pool.free;
        let slot = if self.taken < free.len() {
            self.taken += 1;
            free.get(free.len() - self.taken).copied().ok_or(OutOfMemory)?
        } else {
            let capacity = u32::try_from(self.blocks.len()).ok().and_then(|n| n.checked_mul(PER_BLOCK)).ok_or(OutOfMemory)?;
            if self.end >= capacity {
                let b = Arc::new(PcpuBlock::new().map_err(|_| OutOfMemory)?, GFP_KERNEL_ACCOUNT).map_err(|_| OutOfMemory)?;
                self.blocks.push(b, GFP_KERNEL_ACCOUNT).map_err(|_| OutOfMemory)?;
            }
            let s = self.end;
            if s == NO_SLOT {
                return Err(OutOfMemory);
            }
            self.end += 1;
            // A block allocated by this change is zero already (a slot of an older block may
            // have been set by a change that then failed).
            let new_block = u64::from(s) >= self.pool.blocks.len() as u64 * u64::from(PER_BLOCK);
            if new_block && c == Counters::default() {
                return Ok(s);
            }
            s
        };
        let block = self.blocks.get((slot / PER_BLOCK) as usize).ok_or(OutOfMemory)?;
        block.set(slot % PER_BLOCK, c.packets, c.bytes);
        Ok(slot)
    }

    /// The blocks that hold the slots below `live_end` (what a version whose highest slot is
    /// `live_end - 1` counts into).
    pub(crate) fn blocks(&self, live_end: u32) -> &[Arc<PcpuBlock>] {
        let n = (live_end.div_ceil(PER_BLOCK) as usize).min(self.blocks.len());
        self.blocks.get(..n).unwrap_or(&[])
    }

    /// One past the highest slot handed out (the pool's, or this change's).
    pub(crate) fn end(&self) -> u32 {
        self.end
    }

    /// How many slots the pool will have (scratch for `carry::freed_slots`).
    pub(crate) fn capacity(&self) -> usize {
        self.blocks.len() * PER_BLOCK as usize
    }

    /// The pool after the change: the free slots not taken, and pending `freed` (the old
    /// version's slots the new one does not use, free once it is gone), without the blocks
    /// past the last live slot (`live_end`: one past the highest slot the new configuration
    /// uses).
    pub(crate) fn finish(mut self, freed: &[u32], live_end: u32) -> core::result::Result<PoolNext, AllocError> {
        let keep_blocks = live_end.div_ceil(PER_BLOCK) as usize;
        self.blocks.truncate(keep_blocks);
        let capacity = u32::try_from(keep_blocks).ok().and_then(|n| n.checked_mul(PER_BLOCK)).unwrap_or(0);
        let end = self.end;
        // Slots of the blocks let go are no slots any more.
        let exists = |s: &&u32| **s < capacity && **s < end;
        let left = self.pool.free.len().saturating_sub(self.taken);
        let keep = self.pool.free.get(..left).unwrap_or(&[]);
        let mut free = KVVec::with_capacity(keep.len(), GFP_KERNEL_ACCOUNT)?;
        for &s in keep.iter().filter(exists) {
            free.push(s, GFP_KERNEL_ACCOUNT)?;
        }
        // (Slots still pending from an earlier change, which settles it first, join these.)
        let mut pending = KVVec::with_capacity(freed.len() + self.pool.pending.len(), GFP_KERNEL_ACCOUNT)?;
        for &s in Iterator::chain(freed.iter(), self.pool.pending.iter()).filter(exists) {
            pending.push(s, GFP_KERNEL_ACCOUNT)?;
        }
        // `keep` is in the pool's order already: lowest slots first out (the list is taken
        // from its end), so live slots gather at the start of the pool and blocks at its end
        // empty and can go.
        Ok(PoolNext { blocks: self.blocks, free, pending, end: self.end.min(capacity) })
    }

}
