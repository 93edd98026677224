// SPDX-License-Identifier: GPL-2.0

//! The per-packet context that outlives one hook: which flow a packet belongs to and in which
//! direction, from the conntrack stage to every later hook of the same packet.
//!
//! The kernel keeps this in `skb->_nfct`, which belongs to nf_conntrack (and both may run in
//! one namespace). rust_nf keeps it beside the packet instead: a per-namespace array of slots
//! keyed by the packet's address. The conntrack stage writes the packet's slot, later hooks
//! read it, the confirm stage clears it. A slot that another packet took over in between
//! (two packets in flight whose addresses share a slot), or that a packet dropped elsewhere
//! left behind, is harmless: readers compare the key, and the flow behind a slot is named by
//! a [`Handle`] whose generation no longer matches once the flow is gone.
//!
//! Reads and writes take no lock: the key is written last and read first and last (a
//! sequence lock whose sequence is the key), so a reader never takes another packet's value.
//! A writer claims the slot first by swapping its key for a marker; it never waits for
//! another writer (which may have been interrupted by this very CPU): a packet whose two
//! candidate slots are both being written records nothing, and later hooks treat it as a
//! packet without a recorded flow.

use core::sync::atomic::{fence, AtomicU64, Ordering::*};

use super::Handle;
use super::tuple::Dir;
use super::super::rule::ctstate;

/// One slot.
#[derive(Debug, Default)]
pub struct Slot {
    key: AtomicU64,
    val: AtomicU64,
}

/// What a packet carries from hook to hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketState {
    /// Its flow.
    pub h: Handle,
    /// Its direction in the flow.
    pub dir: Dir,
    /// NEW, ESTABLISHED or RELATED ([`ctstate`] bit).
    pub state: u16,
    /// The flow was made for this packet and is not confirmed yet.
    pub new: bool,
    /// Tracked on the way out and about to come back in over loopback: the conntrack stage
    /// at PREROUTING keeps it instead of tracking the packet again.
    pub looped: bool,
    /// `-j CT --notrack`: the packet has no flow and is UNTRACKED (`h` means nothing).
    pub untracked: bool,
    /// `-j CT` (`--helper`, `--zone`, `--ctevents`) in the raw table, before the packet has a
    /// flow: `h` holds the [`Template`] instead of a flow.
    pub template: bool,
}

/// What `-j CT` gives a packet before the conntrack stage (xt_CT's template conntrack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Template {
    /// The helper of a flow it starts (`table::HELPER_FTP`), 0 for none.
    pub helper: u8,
    /// The zone the packet is looked up in and a new flow is made in.
    pub zone: super::tuple::Zone,
    /// The zone id is the packet's mark (`--zone mark`), read at the conntrack stage.
    pub zone_mark: bool,
    /// The events a flow it starts reports (`--ctevents`, [`super::super::rule::ctevent`]
    /// bits), `None` for all.
    pub ctevents: Option<u16>,
}

impl Template {
    /// The template of a `-j CT` rule.
    pub fn of(spec: &super::super::rule::CtSpec) -> Template {
        use super::super::rule::ctzone;
        let dirs = spec.zone_flags & (ctzone::ORIG | ctzone::REPLY);
        Template {
            helper: spec.helper,
            zone: super::tuple::Zone { id: spec.zone, dirs: if dirs == 0 { 3 } else { dirs } },
            zone_mark: spec.zone_flags & ctzone::MARK != 0,
            ctevents: spec.events_set.then_some(spec.ctevents),
        }
    }

    /// The zone for a packet with mark `mark`.
    pub fn zone_for(&self, mark: u32) -> super::tuple::Zone {
        if self.zone_mark {
            super::tuple::Zone { id: mark as u16, ..self.zone }
        } else {
            self.zone
        }
    }

    fn to_handle(self) -> Handle {
        let ev = self.ctevents.map_or(0, |m| u32::from(m & 0x3ff) | 1 << 10);
        Handle {
            idx: ev,
            gen: u32::from(self.zone.id)
                | u32::from(self.zone.dirs & 3) << 16
                | u32::from(self.zone_mark) << 18
                | u32::from(self.helper & 0x3f) << 19,
        }
    }

    fn from_handle(h: Handle) -> Template {
        Template {
            helper: ((h.gen >> 19) & 0x3f) as u8,
            zone: super::tuple::Zone { id: h.gen as u16, dirs: ((h.gen >> 16) & 3) as u8 },
            zone_mark: h.gen & 1 << 18 != 0,
            ctevents: (h.idx & 1 << 10 != 0).then_some((h.idx & 0x3ff) as u16),
        }
    }
}

impl PacketState {
    /// A packet that `-j CT --notrack` exempted from tracking.
    pub const UNTRACKED: PacketState = PacketState {
        h: Handle { idx: 0, gen: 0 },
        dir: Dir::Original,
        state: ctstate::UNTRACKED,
        new: false,
        looped: false,
        untracked: true,
        template: false,
    };

    /// A packet that `-j CT` gave template `t`, before the conntrack stage.
    pub fn with_template(t: Template) -> PacketState {
        PacketState {
            h: t.to_handle(),
            dir: Dir::Original,
            state: ctstate::INVALID,
            new: false,
            looped: false,
            untracked: false,
            template: true,
        }
    }

    /// The template `-j CT` gave the packet, if that is what the slot holds.
    pub fn template(&self) -> Option<Template> {
        self.template.then(|| Template::from_handle(self.h))
    }
}

impl PacketState {
    fn encode(&self) -> u64 {
        let st = match self.state {
            ctstate::ESTABLISHED => 1,
            ctstate::RELATED => 2,
            _ => 0,
        };
        u64::from(self.h.gen) << 32
            | u64::from(self.h.idx & 0x00ff_ffff) << 8
            | (self.dir as u64) << 7
            | u64::from(self.new) << 6
            | u64::from(self.looped) << 5
            | u64::from(self.untracked) << 4
            | u64::from(self.template) << 3
            | st
    }

    fn decode(v: u64) -> PacketState {
        let state = match v & 3 {
            1 => ctstate::ESTABLISHED,
            2 => ctstate::RELATED,
            _ => ctstate::NEW,
        };
        PacketState {
            h: Handle { idx: ((v >> 8) & 0x00ff_ffff) as u32, gen: (v >> 32) as u32 },
            dir: if v & (1 << 7) != 0 { Dir::Reply } else { Dir::Original },
            new: v & (1 << 6) != 0,
            looped: v & (1 << 5) != 0,
            untracked: v & (1 << 4) != 0,
            template: v & (1 << 3) != 0,
            state: if v & (1 << 4) != 0 {
                ctstate::UNTRACKED
            } else if v & (1 << 3) != 0 {
                ctstate::INVALID
            } else {
                state
            },
        }
    }
}

/// The key of a slot being written.
const WRITING: u64 = u64::MAX;

/// The two slots a packet may use.
fn candidates(slots: &[Slot], key: u64) -> [Option<&Slot>; 2] {
    let n = slots.len() as u64;
    if n == 0 {
        return [None, None];
    }
    // Packet addresses are aligned: drop the low bits, then mix.
    let h = (key >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let i = (h >> 32) % n;
    [slots.get(i as usize), slots.get(((i ^ 1) % n) as usize)]
}

/// Records `st` for the packet `key` (non-zero, not `u64::MAX`), replacing whatever its slot
/// held. False when both candidate slots were being written by others at that moment.
pub fn put(slots: &[Slot], key: u64, st: &PacketState) -> bool {
    if key == 0 || key == WRITING {
        return false;
    }
    // Its own slot first (a packet recorded again), then a free one, then any.
    let [a, b] = candidates(slots, key);
    let own = [a, b].into_iter().flatten().find(|s| s.key.load(Relaxed) == key);
    let free = [a, b].into_iter().flatten().find(|s| s.key.load(Relaxed) == 0);
    for s in [own, free, a, b].into_iter().flatten() {
        let cur = s.key.load(Relaxed);
        if cur == WRITING || s.key.compare_exchange(cur, WRITING, Relaxed, Relaxed).is_err() {
            continue;
        }
        fence(Release);
        s.val.store(st.encode(), Relaxed);
        s.key.store(key, Release);
        // The other candidate may still hold this packet from before: forget it there.
        for o in [a, b].into_iter().flatten() {
            if !core::ptr::eq(o, s) {
                let _ = o.key.compare_exchange(key, 0, Release, Relaxed);
            }
        }
        return true;
    }
    false
}

/// What was recorded for the packet `key`, if a slot still holds it.
pub fn get(slots: &[Slot], key: u64) -> Option<PacketState> {
    if key == 0 || key == WRITING {
        return None;
    }
    candidates(slots, key).into_iter().flatten().find_map(|s| {
        if s.key.load(Acquire) != key {
            return None;
        }
        let v = s.val.load(Relaxed);
        fence(Acquire);
        (s.key.load(Relaxed) == key).then(|| PacketState::decode(v))
    })
}

/// Forgets the packet `key` (if a slot still holds it).
pub fn clear(slots: &[Slot], key: u64) {
    for s in candidates(slots, key).into_iter().flatten() {
        let _ = s.key.compare_exchange(key, 0, Release, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_clear_and_takeover() {
        let slots: [Slot; 8] = Default::default();
        let st = PacketState {
            h: Handle { idx: 0x12_3456, gen: 0xdead_beef },
            dir: Dir::Reply,
            state: ctstate::RELATED,
            new: true,
            looped: false,
            untracked: false,
            template: false,
        };
        assert!(put(&slots, 0x1000, &st));
        assert_eq!(get(&slots, 0x1000), Some(st));
        assert_eq!(get(&slots, 0x2000 + 0x1000 * 64), None);
        // Two more packets with the same candidate slots: the second one takes a slot over.
        let same = |k: &u64| {
            let [a, b] = candidates(&slots, *k);
            let [c, d] = candidates(&slots, 0x1000);
            core::ptr::eq(a.unwrap(), c.unwrap()) && core::ptr::eq(b.unwrap(), d.unwrap())
        };
        let mut others = (1..100_000u64).map(|i| 0x1000 + i * 64).filter(same);
        let (first, other) = (others.next().unwrap(), others.next().unwrap());
        let st2 = PacketState { new: false, looped: true, state: ctstate::NEW, dir: Dir::Original, ..st };
        assert!(put(&slots, first, &st2));
        assert_eq!(get(&slots, 0x1000), Some(st), "the free candidate was used");
        assert!(put(&slots, other, &st2));
        assert_eq!(get(&slots, other), Some(st2));
        assert_eq!(get(&slots, 0x1000).is_some() as u8 + get(&slots, first).is_some() as u8, 1);
        // Clearing someone else's key leaves the slot alone.
        clear(&slots, 0x1000);
        clear(&slots, first);
        assert_eq!(get(&slots, other), Some(st2));
        clear(&slots, other);
        assert_eq!(get(&slots, other), None);
        assert_eq!(get(&slots, 0), None);
    }

    #[test]
    fn templates_survive_the_slot() {
        use super::super::super::rule::{ctevent, ctzone, CtSpec};
        let slots: [Slot; 8] = Default::default();
        for spec in [
            CtSpec { helper: 1, ..Default::default() },
            CtSpec { zone: 65535, zone_flags: ctzone::REPLY, ..Default::default() },
            CtSpec { zone_flags: ctzone::MARK | ctzone::ORIG, ctevents: ctevent::ALL, events_set: true, ..Default::default() },
            CtSpec { expevents: 1, events_set: true, ..Default::default() },
        ] {
            let t = Template::of(&spec);
            assert!(put(&slots, 0x40, &PacketState::with_template(t)));
            let got = get(&slots, 0x40).unwrap();
            assert_eq!(got.template(), Some(t), "{spec:?}");
            assert_eq!(got.state, ctstate::INVALID);
        }
        let t = Template::of(&CtSpec { zone: 9, zone_flags: ctzone::MARK, ..Default::default() });
        assert_eq!(t.zone_for(0x1_0005), super::super::tuple::Zone { id: 5, dirs: 3 });
        assert_eq!(t.ctevents, None);
    }

    #[test]
    fn concurrent_readers_never_see_another_packets_state() {
        extern crate std;
        use std::sync::Arc;
        let slots: Arc<[Slot; 1]> = Arc::new(Default::default());
        let mk = |k: u64| PacketState {
            h: Handle { idx: k as u32 & 0xff_ffff, gen: k as u32 },
            dir: Dir::Original,
            state: ctstate::NEW,
            new: false,
            looped: false,
            untracked: false,
            template: false,
        };
        let writers: std::vec::Vec<_> = (1..=3u64)
            .map(|w| {
                let s = Arc::clone(&slots);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        let k = w << 32 | i << 6;
                        let _ = put(&s[..], k, &mk(k));
                        if let Some(got) = get(&s[..], k) {
                            assert_eq!(got, mk(k));
                        }
                    }
                })
            })
            .collect();
        for t in writers {
            t.join().unwrap();
        }
    }
}
