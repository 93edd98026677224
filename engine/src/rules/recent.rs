// SPDX-License-Identifier: GPL-2.0

//! `-m recent`: named lists of addresses with the times they were seen (xt_recent).
//!
//! A list belongs to the network namespace and is shared by every rule that names it, in any
//! table; it lives while some rule names it. Each list holds at most a fixed number of
//! addresses (xt_recent's `ip_list_tot`, 100), the oldest forgotten first, and per address the
//! last `nstamps` times it was seen (a power of two, 32 unless a `--hitcount` needs more).
//!
//! The memory is the caller's, fixed when the list is made (the packet path never
//! allocates): [`ListState`], one [`Slot`] per address, the time stamps and the hash heads.
//! The kernel glue holds the list's lock around every call, as xt_recent holds `recent_lock`.

/// `XT_RECENT_NAME_LEN`: a name has at most this many bytes less one.
pub const NAME_LEN: usize = 200;
/// `ip_list_tot`: addresses per list.
pub const LIST_TOT: u32 = 100;
/// `XT_RECENT_MAX_NSTAMPS`: `--hitcount` must be below this.
pub const MAX_NSTAMPS: u32 = 65536;
/// Hash heads per list (`ip_list_hash_size` as xt_recent sizes it for 100 addresses).
pub const HASH_SIZE: usize = 128;
/// The list name when `--name` is not given.
pub const DEFAULT_NAME: &str = "DEFAULT";

/// `check_set` bits (`XT_RECENT_*`).
pub mod flag {
    /// `--rcheck`.
    pub const CHECK: u8 = 1 << 0;
    /// `--set`.
    pub const SET: u8 = 1 << 1;
    /// `--update`.
    pub const UPDATE: u8 = 1 << 2;
    /// `--remove`.
    pub const REMOVE: u8 = 1 << 3;
    /// `--rttl`.
    pub const TTL: u8 = 1 << 4;
    /// `--reap`.
    pub const REAP: u8 = 1 << 5;
    /// The four commands.
    pub const COMMANDS: u8 = CHECK | SET | UPDATE | REMOVE;
    /// Every valid bit.
    pub const VALID: u8 = COMMANDS | TTL | REAP;
}

/// The generic netlink commands and attributes of the lists (`rnfctl recent`).
pub mod wire {
    /// Command, a dump: with [`A_RECENT_NAME`], that list's addresses ([`A_RECENT_ENTRY`]
    /// nests, in as many messages as needed); without, one [`A_RECENT_NAME`] per list.
    pub const CMD_RECENT_DUMP: u8 = 9;
    /// Command: change list [`A_RECENT_NAME`] as a write to its proc file does:
    /// [`A_RECENT_OP`] with [`A_RECENT_ADDR`].
    pub const CMD_RECENT_SET: u8 = 10;
    /// Attribute: string, a list name.
    pub const A_RECENT_NAME: u16 = 22;
    /// Attribute: u32, [`OP_FLUSH`], [`OP_ADD`] or [`OP_REMOVE`].
    pub const A_RECENT_OP: u16 = 23;
    /// Attribute: u32, an address (host order).
    pub const A_RECENT_ADDR: u16 = 24;
    /// Reply attribute: one address (nest of `E_*`).
    pub const A_RECENT_ENTRY: u16 = 25;
    /// `/`: forget every address.
    pub const OP_FLUSH: u32 = 0;
    /// `+addr`.
    pub const OP_ADD: u32 = 1;
    /// `-addr`.
    pub const OP_REMOVE: u32 = 2;
    /// Entry attribute: u32 address.
    pub const E_ADDR: u16 = 1;
    /// Entry attribute: u32 TTL.
    pub const E_TTL: u16 = 2;
    /// Entry attribute: u64 last seen (jiffies).
    pub const E_LAST: u16 = 3;
    /// Entry attribute: u32 `oldest_pkt` (the index).
    pub const E_INDEX: u16 = 4;
    /// Entry attribute: u64 array, the stamps.
    pub const E_STAMPS: u16 = 5;
}

/// No slot / end of a chain.
const NONE: u32 = u32::MAX;

/// One `-m recent` (`struct xt_recent_mtinfo_v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecentMatch<'a> {
    /// `--name`.
    pub name: &'a str,
    /// [`flag`] bits.
    pub check_set: u8,
    /// `!` before the command.
    pub invert: bool,
    /// `--rdest` (false: `--rsource`).
    pub dest: bool,
    /// `--seconds` (0: not given).
    pub seconds: u32,
    /// `--hitcount` (0: not given).
    pub hit_count: u32,
    /// `--mask` (host order).
    pub mask: u32,
}

impl Default for RecentMatch<'_> {
    fn default() -> Self {
        RecentMatch {
            name: DEFAULT_NAME,
            check_set: 0,
            invert: false,
            dest: false,
            seconds: 0,
            hit_count: 0,
            mask: u32::MAX,
        }
    }
}

/// Why `recent_mt_check` refuses a match (each is EINVAL but the name's length).
pub fn check(m: &RecentMatch<'_>) -> Result<(), &'static str> {
    if m.check_set & !flag::VALID != 0 {
        return Err("unsupported flags");
    }
    if (m.check_set & flag::COMMANDS).count_ones() != 1 {
        return Err("exactly one of --set, --rcheck, --update, --remove is needed");
    }
    if m.check_set & (flag::SET | flag::REMOVE) != 0
        && (m.seconds != 0 || m.hit_count != 0 || m.check_set & (flag::TTL | flag::REAP) != 0)
    {
        return Err("--set and --remove take no --seconds, --hitcount, --rttl or --reap");
    }
    if m.check_set & flag::REAP != 0 && m.seconds == 0 {
        return Err("--reap needs --seconds");
    }
    if m.hit_count >= MAX_NSTAMPS {
        return Err("hitcount is larger than allowed maximum (65535)");
    }
    let n = m.name;
    if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.len() >= NAME_LEN {
        return Err("bad list name");
    }
    Ok(())
}

/// Time stamps a list needs per address for this match (`nstamp_mask + 1` with the default
/// `ip_pkt_list_tot` of 0): 32 without `--hitcount`, else the hit count rounded up to a power
/// of two. A list made for fewer is emptied and grown when a rule needs more.
pub fn nstamps_for(m: &RecentMatch<'_>) -> u32 {
    if m.hit_count == 0 {
        32
    } else {
        m.hit_count.next_power_of_two()
    }
}

/// One remembered address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The address (masked).
    pub addr: u32,
    /// TTL of the packet that last set it.
    pub ttl: u8,
    /// Taken.
    pub used: bool,
    /// Where the next stamp goes (xt_recent's `index`; the newest is at `index - 1`).
    pub index: u16,
    /// Stamps in use.
    pub nstamps: u16,
    /// Next slot in the same hash chain (or the free list).
    hnext: u32,
    /// Older neighbour in the age order.
    prev: u32,
    /// Newer neighbour.
    next: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { addr: 0, ttl: 0, used: false, index: 0, nstamps: 0, hnext: NONE, prev: NONE, next: NONE }
    }
}

/// A list's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListState {
    /// `--mask` of the rule that made the list.
    pub mask: u32,
    /// Stamps per address, a power of two.
    pub nstamps: u32,
    /// Addresses held.
    pub count: u32,
    /// Oldest address (least recently set or updated).
    oldest: u32,
    /// Newest.
    newest: u32,
    /// First free slot.
    free: u32,
    /// Hash key (random per list).
    key: u32,
}

/// A list over its memory.
pub struct List<'a> {
    /// The list's fields.
    pub st: &'a mut ListState,
    slots: &'a mut [Slot],
    stamps: &'a mut [u64],
    heads: &'a mut [u32],
}

/// `time_after(a, b)` on jiffies.
fn after(a: u64, b: u64) -> bool {
    (b.wrapping_sub(a) as i64) < 0
}

impl ListState {
    /// A list with mask `mask`, `nstamps` stamps per address (a power of two) and hash key
    /// `key`; [`List::new`] links its slots.
    pub fn new(mask: u32, nstamps: u32, key: u32) -> Self {
        ListState { mask, nstamps, count: 0, oldest: NONE, newest: NONE, free: NONE, key }
    }
}

impl<'a> List<'a> {
    /// Slots, stamps (`slots.len() * st.nstamps`) and heads ([`HASH_SIZE`]) of one list.
    /// With `init`, everything is reset to an empty list (the memory is fresh); otherwise
    /// the memory is taken as it is (an existing list). None when the sizes do not fit.
    pub fn new(
        st: &'a mut ListState,
        slots: &'a mut [Slot],
        stamps: &'a mut [u64],
        heads: &'a mut [u32],
        init: bool,
    ) -> Option<Self> {
        let want = slots.len().checked_mul(st.nstamps as usize)?;
        if stamps.len() != want || heads.is_empty() || slots.len() >= NONE as usize || !st.nstamps.is_power_of_two() {
            return None;
        }
        let mut l = List { st, slots, stamps, heads };
        if init {
            l.flush();
        }
        Some(l)
    }

    fn hash(&self, addr: u32) -> usize {
        let h = (addr ^ self.st.key).wrapping_mul(0x9e37_79b1);
        ((h >> 7) as usize).checked_rem(self.heads.len()).unwrap_or(0)
    }

    fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i as usize)
    }

    fn stamp_index(&self, i: u32, k: u32) -> usize {
        let n = self.st.nstamps;
        (i as usize).wrapping_mul(n as usize).wrapping_add((k & n.wrapping_sub(1)) as usize)
    }

    fn stamp(&self, i: u32, k: u32) -> u64 {
        self.stamps.get(self.stamp_index(i, k)).copied().unwrap_or(0)
    }

    /// Forgets every address (`recent_table_flush`).
    pub fn flush(&mut self) {
        for h in self.heads.iter_mut() {
            *h = NONE;
        }
        let n = self.slots.len() as u32;
        for (i, s) in self.slots.iter_mut().enumerate() {
            *s = Slot { hnext: if i as u32 + 1 < n { i as u32 + 1 } else { NONE }, ..Slot::default() };
        }
        self.st.free = if n > 0 { 0 } else { NONE };
        self.st.count = 0;
        self.st.oldest = NONE;
        self.st.newest = NONE;
    }

    /// `recent_entry_lookup`: the slot of `addr`; with a TTL, only one set by a packet with
    /// the same TTL (or with none recorded).
    pub fn lookup(&self, addr: u32, ttl: u8) -> Option<u32> {
        let mut i = *self.heads.get(self.hash(addr))?;
        let mut steps = 0;
        while i != NONE && steps <= self.slots.len() {
            let s = self.slot(i)?;
            if s.used && s.addr == addr && (ttl == s.ttl || ttl == 0 || s.ttl == 0) {
                return Some(i);
            }
            i = s.hnext;
            steps = steps.saturating_add(1);
        }
        None
    }

    fn unlink_age(&mut self, i: u32) {
        let Some(&s) = self.slot(i) else { return };
        match self.slots.get_mut(s.prev as usize) {
            Some(p) => p.next = s.next,
            None => self.st.oldest = s.next,
        }
        match self.slots.get_mut(s.next as usize) {
            Some(n) => n.prev = s.prev,
            None => self.st.newest = s.prev,
        }
    }

    fn push_newest(&mut self, i: u32) {
        let newest = self.st.newest;
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = newest;
            s.next = NONE;
        }
        match self.slots.get_mut(newest as usize) {
            Some(n) => n.next = i,
            None => self.st.oldest = i,
        }
        self.st.newest = i;
    }

    /// `recent_entry_remove`.
    pub fn remove(&mut self, i: u32) {
        let Some(&s) = self.slot(i).filter(|s| s.used) else { return };
        // Out of its hash chain.
        let h = self.hash(s.addr);
        let mut at = self.heads.get(h).copied().unwrap_or(NONE);
        if at == i {
            if let Some(head) = self.heads.get_mut(h) {
                *head = s.hnext;
            }
        } else {
            let mut steps = 0;
            while at != NONE && steps <= self.slots.len() {
                let next = self.slot(at).map_or(NONE, |x| x.hnext);
                if next == i {
                    if let Some(p) = self.slots.get_mut(at as usize) {
                        p.hnext = s.hnext;
                    }
                    break;
                }
                at = next;
                steps = steps.saturating_add(1);
            }
        }
        self.unlink_age(i);
        let free = self.st.free;
        if let Some(x) = self.slots.get_mut(i as usize) {
            *x = Slot { hnext: free, ..Slot::default() };
        }
        self.st.free = i;
        self.st.count = self.st.count.saturating_sub(1);
    }

    /// `recent_entry_init`: remembers `addr` seen `now` (forgetting the oldest address when the
    /// list is full). None only if the memory is inconsistent.
    pub fn insert(&mut self, addr: u32, ttl: u8, now: u64) -> Option<u32> {
        if self.st.free == NONE {
            let oldest = self.st.oldest;
            self.remove(oldest);
        }
        let i = self.st.free;
        let s = *self.slot(i)?;
        self.st.free = s.hnext;
        let h = self.hash(addr);
        let head = self.heads.get_mut(h)?;
        let hnext = *head;
        *head = i;
        if let Some(x) = self.slots.get_mut(i as usize) {
            *x = Slot { addr, ttl, used: true, index: 1, nstamps: 1, hnext, prev: NONE, next: NONE };
        }
        let k = self.stamp_index(i, 0);
        if let Some(t) = self.stamps.get_mut(k) {
            *t = now;
        }
        self.push_newest(i);
        self.st.count = self.st.count.saturating_add(1);
        Some(i)
    }

    /// `recent_entry_update`: one more stamp, and the address becomes the newest.
    pub fn update(&mut self, i: u32, now: u64) {
        let mask = self.st.nstamps.wrapping_sub(1);
        let Some(s) = self.slot(i).copied().filter(|s| s.used) else { return };
        let index = u32::from(s.index) & mask;
        let k = self.stamp_index(i, index);
        if let Some(t) = self.stamps.get_mut(k) {
            *t = now;
        }
        // u16 as xt_recent's: with 65536 stamps the index wraps to 0 and the count stays.
        let index = index.wrapping_add(1) as u16;
        if let Some(x) = self.slots.get_mut(i as usize) {
            x.index = index;
            if index > x.nstamps {
                x.nstamps = index;
            }
        }
        self.unlink_age(i);
        self.push_newest(i);
    }

    /// `recent_entry_reap`: forgets the oldest address if it was last seen before `time`,
    /// unless it is `working` and about to be updated.
    fn reap(&mut self, time: u64, working: u32, update: bool) {
        let e = self.st.oldest;
        if e == NONE || (e == working && update) {
            return;
        }
        let Some(s) = self.slot(e).copied() else { return };
        if after(time, self.stamp(e, u32::from(s.index).wrapping_sub(1))) {
            self.remove(e);
        }
    }

    /// `recent_mt` for packet address `addr` (already chosen by `--rsource/--rdest`), TTL
    /// `ttl`, at jiffies `now` with `hz` ticks per second. `Err(())` is a hotdrop (cannot
    /// happen with consistent memory).
    pub fn matches(&mut self, m: &RecentMatch<'_>, addr: u32, ttl: u8, now: u64, hz: u64) -> Result<bool, ()> {
        let mut ret = m.invert;
        let addr = addr & self.st.mask;
        let want_ttl = if m.check_set & flag::TTL != 0 { ttl } else { 0 };
        let Some(e) = self.lookup(addr, want_ttl) else {
            if m.check_set & flag::SET == 0 {
                return Ok(ret);
            }
            self.insert(addr, ttl, now).ok_or(())?;
            return Ok(!ret);
        };
        if m.check_set & flag::SET != 0 {
            ret = !ret;
        } else if m.check_set & flag::REMOVE != 0 {
            self.remove(e);
            return Ok(!ret);
        } else if m.check_set & (flag::CHECK | flag::UPDATE) != 0 {
            let time = now.wrapping_sub(u64::from(m.seconds).wrapping_mul(hz));
            let mut hits = 0u32;
            let n = self.slot(e).map_or(0, |s| u32::from(s.nstamps));
            for k in 0..n {
                if m.seconds != 0 && after(time, self.stamp(e, k)) {
                    continue;
                }
                hits = hits.saturating_add(1);
                if m.hit_count == 0 || hits >= m.hit_count {
                    ret = !ret;
                    break;
                }
            }
            if m.check_set & flag::REAP != 0 {
                self.reap(time, e, m.check_set & flag::UPDATE != 0 && ret);
            }
        }
        if m.check_set & flag::SET != 0 || (m.check_set & flag::UPDATE != 0 && ret) {
            // The entry may have been reaped above only if it was not about to be updated.
            if self.slot(e).is_some_and(|s| s.used) {
                self.update(e, now);
                if let Some(s) = self.slots.get_mut(e as usize) {
                    s.ttl = ttl;
                }
            }
        }
        Ok(ret)
    }

    /// The proc file's `+addr`: remember `addr` (or see it once more).
    pub fn add(&mut self, addr: u32, now: u64) {
        match self.lookup(addr, 0) {
            Some(i) => self.update(i, now),
            None => {
                let _ = self.insert(addr, 0, now);
            }
        }
    }

    /// The proc file's `-addr`: forget `addr`.
    pub fn forget(&mut self, addr: u32) {
        if let Some(i) = self.lookup(addr, 0) {
            self.remove(i);
        }
    }

    /// The remembered addresses in hash order (as the proc file lists them): each slot's
    /// address, TTL, `index` and its stamps, oldest slot first.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        let n = self.st.nstamps as usize;
        self.heads.iter().flat_map(move |&h| {
            let mut i = h;
            let mut steps = 0;
            core::iter::from_fn(move || {
                if i == NONE || steps > self.slots.len() {
                    return None;
                }
                steps = steps.saturating_add(1);
                let s = self.slot(i)?;
                let at = (i as usize).checked_mul(n)?;
                let stamps = self.stamps.get(at..at.checked_add(usize::from(s.nstamps).min(n))?)?;
                let last = self.stamp(i, u32::from(s.index).wrapping_sub(1));
                i = s.hnext;
                Some(Entry { addr: s.addr, ttl: s.ttl, last_seen: last, index: s.index, stamps })
            })
        })
    }
}

/// One address as the listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The address.
    pub addr: u32,
    /// Its TTL.
    pub ttl: u8,
    /// The newest stamp.
    pub last_seen: u64,
    /// `oldest_pkt:` (xt_recent prints its `index`).
    pub index: u16,
    /// The stamps, in slot order.
    pub stamps: &'a [u64],
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    struct Mem {
        st: ListState,
        slots: Vec<Slot>,
        stamps: Vec<u64>,
        heads: Vec<u32>,
    }

    impl Mem {
        fn new(n: usize, nstamps: u32, mask: u32) -> Self {
            let mut m = Mem {
                st: ListState::new(mask, nstamps, 0x1234),
                slots: vec![Slot::default(); n],
                stamps: vec![0; n * nstamps as usize],
                heads: vec![NONE; 16],
            };
            m.list(true);
            m
        }
        fn list(&mut self, init: bool) -> List<'_> {
            List::new(&mut self.st, &mut self.slots, &mut self.stamps, &mut self.heads, init).unwrap()
        }
    }

    fn m(check_set: u8) -> RecentMatch<'static> {
        RecentMatch { check_set, ..Default::default() }
    }

    #[test]
    fn ssh_brute_force_rule_pair() {
        // -m recent --set; -m recent --update --seconds 60 --hitcount 4 -j DROP
        let mut mem = Mem::new(4, 32, u32::MAX);
        let set = m(flag::SET);
        let upd = RecentMatch { seconds: 60, hit_count: 4, ..m(flag::UPDATE) };
        let hz = 100;
        let mut dropped = Vec::new();
        for k in 0..6u64 {
            let mut l = mem.list(false);
            assert_eq!(l.matches(&set, 0x0a00_0001, 64, 1000 + k, hz), Ok(true));
            dropped.push(l.matches(&upd, 0x0a00_0001, 64, 1000 + k, hz).unwrap());
        }
        // The 4th packet makes 4 stamps with --set: the update matches from then on.
        assert_eq!(dropped, [false, false, false, true, true, true]);
        // A minute later the old stamps no longer count.
        let mut l = mem.list(false);
        assert_eq!(l.matches(&set, 0x0a00_0001, 64, 1000 + 61 * hz, hz), Ok(true));
        assert_eq!(l.matches(&upd, 0x0a00_0001, 64, 1000 + 61 * hz, hz), Ok(false));
    }

    #[test]
    fn full_list_forgets_the_oldest_and_stamps_wrap() {
        let mut mem = Mem::new(3, 4, 0xffff_ff00);
        let mut l = mem.list(false);
        for a in 1..=4u32 {
            l.insert(a << 8, 0, u64::from(a)).unwrap();
        }
        assert_eq!(l.st.count, 3);
        assert_eq!(l.lookup(1 << 8, 0), None, "oldest forgotten");
        assert!(l.lookup(2 << 8, 0).is_some());
        // The mask applies to packet addresses.
        let rc = m(flag::CHECK);
        assert_eq!(l.matches(&rc, (3 << 8) | 77, 0, 10, 100), Ok(true));
        // Six updates into four stamps: the newest four are kept, index wraps.
        let i = l.lookup(2 << 8, 0).unwrap();
        for t in 10..16 {
            l.update(i, t);
        }
        let e: Vec<_> = l.entries().filter(|e| e.addr == 2 << 8).collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].last_seen, 15);
        assert_eq!(e[0].stamps, &[13, 14, 15, 12]);
        // Updating made 2 the newest: inserting a fifth forgets 3.
        l.insert(5 << 8, 0, 20).unwrap();
        assert!(l.lookup(3 << 8, 0).is_none() && l.lookup(2 << 8, 0).is_some());
        // Remove, flush.
        assert_eq!(l.matches(&m(flag::REMOVE), 2 << 8, 0, 21, 100), Ok(true));
        assert_eq!(l.matches(&m(flag::REMOVE), 2 << 8, 0, 21, 100), Ok(false));
        l.flush();
        assert_eq!(l.st.count, 0);
        assert_eq!(l.entries().count(), 0);
    }

    #[test]
    fn ttl_invert_and_reap() {
        let mut mem = Mem::new(8, 32, u32::MAX);
        let mut l = mem.list(false);
        assert_eq!(l.matches(&m(flag::SET), 7, 64, 0, 100), Ok(true));
        let rttl = m(flag::CHECK | flag::TTL);
        assert_eq!(l.matches(&rttl, 7, 63, 1, 100), Ok(false));
        assert_eq!(l.matches(&rttl, 7, 64, 1, 100), Ok(true));
        let inv = RecentMatch { invert: true, ..m(flag::CHECK) };
        assert_eq!(l.matches(&inv, 7, 64, 1, 100), Ok(false));
        assert_eq!(l.matches(&inv, 8, 64, 1, 100), Ok(true));
        // ! --set still adds.
        let inv_set = RecentMatch { invert: true, ..m(flag::SET) };
        assert_eq!(l.matches(&inv_set, 9, 64, 2, 100), Ok(false));
        assert!(l.lookup(9, 0).is_some());
        // --reap: 7 (oldest, last seen at 0) goes when a check 10 s later runs on 9.
        let reap = RecentMatch { seconds: 5, ..m(flag::CHECK | flag::REAP) };
        assert_eq!(l.matches(&reap, 9, 64, 1000, 100), Ok(false));
        assert!(l.lookup(7, 0).is_none());
    }

    #[test]
    fn checks_as_the_kernel() {
        assert!(check(&m(flag::SET)).is_ok());
        assert!(check(&m(0)).is_err());
        assert!(check(&m(flag::SET | flag::CHECK)).is_err());
        assert!(check(&RecentMatch { seconds: 1, ..m(flag::SET) }).is_err());
        assert!(check(&m(flag::SET | flag::TTL)).is_err());
        assert!(check(&m(flag::CHECK | flag::REAP)).is_err());
        assert!(check(&RecentMatch { hit_count: 65536, ..m(flag::CHECK) }).is_err());
        assert!(check(&RecentMatch { hit_count: 65535, ..m(flag::CHECK) }).is_ok());
        assert!(check(&RecentMatch { name: "a/b", ..m(flag::CHECK) }).is_err());
        assert!(check(&RecentMatch { name: "..", ..m(flag::CHECK) }).is_err());
        assert_eq!(nstamps_for(&RecentMatch { hit_count: 999, ..m(flag::CHECK) }), 1024);
        assert_eq!(nstamps_for(&m(flag::CHECK)), 32);
    }
}
