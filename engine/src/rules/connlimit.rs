// SPDX-License-Identifier: GPL-2.0

//! `-m connlimit`: how many connections a host (or a network: `--connlimit-mask`) has open,
//! counted as nf_conncount counts them: each rule keeps, per key (the masked source or
//! destination address), the flows it has seen, and drops those that are gone or closed
//! (TCP TIME_WAIT, CLOSE) whenever it counts.
//!
//! The memory is the caller's and fixed ([`POOL`] flows per rule): the packet path never
//! allocates. When the pool is full and nothing in it has ended, the packet is dropped, as
//! xt_connlimit drops one when it cannot allocate.

/// Flows one rule remembers.
pub const POOL: usize = 4096;
/// Hash heads per rule.
pub const HEADS: usize = 256;
/// No slot / end of a chain.
const NONE: u32 = u32::MAX;

/// One `-m connlimit` (`struct xt_connlimit_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnlimitMatch {
    /// The limit.
    pub limit: u32,
    /// `--connlimit-mask` as a prefix length (0..=32).
    pub prefix: u8,
    /// `--connlimit-daddr` (false: `--connlimit-saddr`).
    pub dest: bool,
    /// `--connlimit-upto` (or `! --connlimit-above`): match when at most `limit`.
    pub upto: bool,
}

impl ConnlimitMatch {
    /// The mask of the prefix.
    pub fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32u32.saturating_sub(u32::from(self.prefix))).unwrap_or(0)
    }

    /// `connlimit_mt`'s verdict for `connections`.
    pub fn verdict(&self, connections: u32) -> bool {
        (connections > self.limit) ^ self.upto
    }
}

/// One remembered flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    key: u32,
    flow: u64,
    next: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { key: 0, flow: 0, next: NONE }
    }
}

/// A rule's counting memory: [`POOL`] slots, [`HEADS`] chain heads, the free list.
pub struct Counter<'a> {
    slots: &'a mut [Slot],
    heads: &'a mut [u32],
    free: &'a mut u32,
}

impl<'a> Counter<'a> {
    /// Over the caller's memory; with `init`, resets it (fresh memory).
    pub fn new(slots: &'a mut [Slot], heads: &'a mut [u32], free: &'a mut u32, init: bool) -> Option<Self> {
        if heads.is_empty() || slots.len() >= NONE as usize {
            return None;
        }
        let c = Counter { slots, heads, free };
        if init {
            for h in c.heads.iter_mut() {
                *h = NONE;
            }
            let n = c.slots.len() as u32;
            for (i, s) in c.slots.iter_mut().enumerate() {
                *s = Slot { next: if (i as u32) + 1 < n { i as u32 + 1 } else { NONE }, ..Slot::default() };
            }
            *c.free = if n > 0 { 0 } else { NONE };
        }
        Some(c)
    }

    fn head(&self, key: u32) -> usize {
        ((key.wrapping_mul(0x9e37_79b1) >> 8) as usize).checked_rem(self.heads.len()).unwrap_or(0)
    }

    /// Forgets every remembered flow that `alive` says has ended, in every chain.
    fn gc_all(&mut self, alive: &impl Fn(u64) -> bool) {
        for h in 0..self.heads.len() {
            self.walk(h, None, alive);
        }
    }

    /// Walks chain `h`, dropping ended flows; counts the live ones of `key` and says whether
    /// `flow` is among them.
    fn walk(&mut self, h: usize, want: Option<(u32, u64)>, alive: &impl Fn(u64) -> bool) -> (u32, bool) {
        let (mut count, mut found) = (0u32, false);
        let mut prev = NONE;
        let mut i = self.heads.get(h).copied().unwrap_or(NONE);
        let mut steps = 0;
        while i != NONE && steps <= self.slots.len() {
            steps = steps.saturating_add(1);
            let Some(s) = self.slots.get(i as usize).copied() else { break };
            if !alive(s.flow) {
                // Unlink and free.
                match self.slots.get_mut(prev as usize) {
                    Some(p) => p.next = s.next,
                    None => {
                        if let Some(x) = self.heads.get_mut(h) {
                            *x = s.next;
                        }
                    }
                }
                if let Some(x) = self.slots.get_mut(i as usize) {
                    *x = Slot { next: *self.free, ..Slot::default() };
                }
                *self.free = i;
                i = s.next;
                continue;
            }
            if let Some((key, flow)) = want {
                if s.key == key {
                    count = count.saturating_add(1);
                    found |= s.flow == flow;
                }
            }
            prev = i;
            i = s.next;
        }
        (count, found)
    }

    /// `nf_conncount_count`: the live connections of `key` this rule has seen, with `flow`
    /// (the packet's, `idx << 32 | gen`) added if new. `None`: no room (drop the packet).
    pub fn count(&mut self, key: u32, flow: u64, alive: impl Fn(u64) -> bool) -> Option<u32> {
        let h = self.head(key);
        let (count, found) = self.walk(h, Some((key, flow)), &alive);
        if found {
            return Some(count);
        }
        if *self.free == NONE {
            self.gc_all(&alive);
        }
        let i = *self.free;
        let s = *self.slots.get(i as usize)?;
        *self.free = s.next;
        let next = self.heads.get(h).copied().unwrap_or(NONE);
        if let Some(x) = self.slots.get_mut(i as usize) {
            *x = Slot { key, flow, next };
        }
        if let Some(x) = self.heads.get_mut(h) {
            *x = i;
        }
        Some(count.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::cell::RefCell;
    use std::vec;

    #[test]
    fn counts_per_key_forgets_ended_flows_and_refuses_when_full() {
        let mut slots = vec![Slot::default(); 4];
        let mut heads = vec![0u32; 2];
        let mut free = 0;
        let mut c = Counter::new(&mut slots, &mut heads, &mut free, true).unwrap();
        let dead = RefCell::new(std::vec::Vec::<u64>::new());
        let alive = |f: u64| !dead.borrow().contains(&f);
        assert_eq!(c.count(10, 1, alive), Some(1));
        assert_eq!(c.count(10, 2, alive), Some(2));
        // The same flow again is not counted twice.
        assert_eq!(c.count(10, 2, alive), Some(2));
        assert_eq!(c.count(20, 3, alive), Some(1));
        assert_eq!(c.count(10, 4, alive), Some(3));
        // Full, nothing ended: refused.
        assert_eq!(c.count(30, 5, alive), None);
        // Flow 1 ends: its slot serves again.
        dead.borrow_mut().push(1);
        assert_eq!(c.count(30, 5, alive), Some(1));
        assert_eq!(c.count(10, 4, alive), Some(2));
        let m = ConnlimitMatch { limit: 2, prefix: 24, dest: false, upto: false };
        assert_eq!(m.mask(), 0xffff_ff00);
        assert!(!m.verdict(2) && m.verdict(3));
        assert!(ConnlimitMatch { upto: true, ..m }.verdict(2));
        assert_eq!(ConnlimitMatch { prefix: 0, ..m }.mask(), 0);
    }
}
