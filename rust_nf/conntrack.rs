// SPDX-License-Identifier: GPL-2.0

//! Connection tracking in the kernel: a namespace's table (its memory, locks and collector;
//! the logic is the engine's `conntrack` folder) and the two stages of the packet path.
//!
//! A namespace starts tracking when a ruleset that needs it (`-m conntrack`, `-m state`) is
//! committed, as nf_conntrack starts when a rule asks for it (`nf_ct_netns_get`); the table
//! then lives until the namespace goes away.
//!
//! - Conntrack stage (PREROUTING, OUTPUT at -200): reads the packet's tuple, finds or makes
//!   its flow, runs the protocol tracker and records the result in the packet's slot
//!   (`engine::conntrack::slots`), which every later hook of the packet reads.
//! - Confirm stage (INPUT, POSTROUTING, last): puts a new flow into the table and forgets the
//!   slot. A packet that rust_nf drops before that takes its unconfirmed flow with it.

use crate::engine::conntrack::settings::{Key, Settings};
use crate::engine::conntrack::slots::{self, PacketState, Slot};
use crate::engine::conntrack::table::{self, Entry, Shared, Table, Track};
use crate::engine::conntrack::tuple::{self, Parsed};
use crate::engine::conntrack::{CtView, FlowView};
use crate::engine::packet::Ipv4Header;
use crate::ffi::ct::{self as ffi_ct, CtMem};
use crate::ffi::shim;
use crate::ffi::skb::{Head, Packet, Verdict};
use core::sync::atomic::{AtomicU32, AtomicU64};
use kernel::prelude::*;

/// Slots for packets in flight between their first and last hook.
const SLOTS: usize = 4096;
/// Payload bytes of a control segment a helper reads (a command line or a reply line).
const HELPER_BYTES: usize = 256;
/// Entries the collector looks at per run, at least.
const GC_MIN_BUDGET: u32 = 1024;

/// Starts tracking in a namespace (called with its configuration lock held, so only one
/// caller at a time): allocates and publishes the table unless there is one.
pub(crate) fn enable(ct: &crate::table::CtBox, settings: &Settings, req: &crate::ffi::genl::Request<'_>) -> Result {
    if ct.get().is_some() {
        return Ok(());
    }
    let new = Ct::new(settings)?;
    new.mem.set_net(req);
    // Another table appearing meanwhile is impossible (the caller holds the lock); if it
    // did, the new one would simply be dropped.
    drop(ct.set(new));
    Ok(())
}

/// `nf_conntrack_max` and `nf_conntrack_buckets` for a namespace that does not track yet:
/// what its table will be (`settings`' maximum if set, else the module parameters).
pub(crate) fn planned_sizes(settings: &Settings) -> (u32, u32) {
    let (max, buckets) = ffi_ct::sizes();
    let set = settings.get(Key::Max);
    let max = if set != 0 { set } else { max };
    (max.clamp(1, table::MAX_ENTRIES), buckets.clamp(1, table::MAX_ENTRIES))
}

/// One namespace's connection table.
pub(crate) struct Ct {
    /// First field: dropping it stops the collector before the rest goes.
    mem: CtMem,
    entries: KVVec<Entry>,
    buckets: KVVec<AtomicU32>,
    slots: KVVec<Slot>,
    pending: KVVec<AtomicU64>,
    /// Statistics per CPU (`nr_cpu_ids` of them).
    stats: KVVec<table::Stats>,
    /// Per CPU: the last flow a packet started there (`idx << 32 | gen`), for an ICMP error
    /// this host sends about that very packet while handling it (see `PacketCt::cause`).
    last_new: KVVec<AtomicU64>,
    shared: Shared,
    key: [u64; 2],
    hz: u64,
}

fn filled<T: Default>(n: usize) -> Result<KVVec<T>> {
    let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        v.push(T::default(), GFP_KERNEL_ACCOUNT)?;
    }
    Ok(v)
}

impl Ct {
    /// A new, empty table with the namespace's `settings`, sized by its `nf_conntrack_max` if
    /// set, else by the module parameters, with its collector running.
    pub(crate) fn new(settings: &Settings) -> Result<KBox<Ct>> {
        let (max, buckets) = planned_sizes(settings);
        let (max, buckets) = (max as usize, buckets as usize);
        let r = || u64::from(shim::random_u32()) << 32 | u64::from(shim::random_u32());
        let ct = Ct {
            mem: CtMem::new()?,
            entries: filled(max)?,
            buckets: filled(buckets)?,
            slots: filled(SLOTS)?,
            pending: filled(table::pending_slots(max))?,
            stats: filled(shim::nr_cpu_ids().clamp(1, 8192) as usize)?,
            last_new: filled(shim::nr_cpu_ids().clamp(1, 8192) as usize)?,
            shared: Shared::default(),
            key: [r(), r()],
            hz: u64::from(shim::hz()),
        };
        table::init(&ct.entries, &ct.buckets, &ct.shared);
        ct.shared.settings.copy_from(settings);
        ct.shared.settings.set(Key::Max, max as u32);
        ct.shared.settings.set(Key::Buckets, buckets as u32);
        let ct = KBox::new(ct, GFP_KERNEL_ACCOUNT)?;
        ct.mem.start(&ct);
        Ok(ct)
    }

    /// The engine's view of the table.
    pub(crate) fn table(&self) -> Table<'_, CtMem> {
        Table {
            entries: &self.entries,
            buckets: &self.buckets,
            shared: &self.shared,
            key: self.key,
            locks: &self.mem,
            hz: self.hz,
            pending: &self.pending,
            stats: &self.stats,
        }
    }

    /// Bytes the table takes (entries, buckets, slots), for the status report.
    pub(crate) fn memory(&self) -> usize {
        self.entries.len() * core::mem::size_of::<Entry>()
            + self.buckets.len() * core::mem::size_of::<AtomicU32>()
            + self.slots.len() * core::mem::size_of::<Slot>()
            + self.pending.len() * core::mem::size_of::<AtomicU64>()
            + self.stats.len() * core::mem::size_of::<table::Stats>()
            + self.last_new.len() * core::mem::size_of::<AtomicU64>()
    }

    /// Hash buckets.
    pub(crate) fn buckets(&self) -> u32 {
        self.buckets.len() as u32
    }

    /// Flows in use, and the maximum.
    pub(crate) fn usage(&self) -> (u32, u32) {
        (self.shared.count.load(core::sync::atomic::Ordering::Relaxed), self.entries.len() as u32)
    }

    /// The statistics of each CPU.
    pub(crate) fn stats(&self) -> &[table::Stats] {
        &self.stats
    }

    /// The settings the table runs with.
    pub(crate) fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Entries the table holds at most (its preallocated size).
    pub(crate) fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// One run of the collector: a slice of the table, sized so that the whole table is seen
    /// within about eight runs; the next run in one second.
    pub(crate) fn gc(&self) -> core::ffi::c_ulong {
        let budget = (self.entries.len() as u32 / 8).max(GC_MIN_BUDGET);
        self.table().gc_step(shim::jiffies(), budget);
        self.hz as core::ffi::c_ulong
    }

    /// The raw stage, the packet's first hook: forget what a slot may still hold from an
    /// earlier packet at the same address (one dropped elsewhere before its last hook), unless
    /// the packet itself is coming back over loopback.
    pub(crate) fn first_hook(&self, key: u64) {
        if slots::get(&self.slots, key).is_some_and(|st| !st.looped) {
            slots::clear(&self.slots, key);
        }
    }

    /// `-j CT` with a template (helper, zone, events) for the packet `key`.
    ///
    /// As xt_CT, only the first CT target a packet meets counts (the raw stage cleared the
    /// slot before the rules; a packet looping back keeps what it had).
    pub(crate) fn template(&self, key: u64, spec: &crate::engine::rule::CtSpec) {
        if slots::get(&self.slots, key).is_none() {
            slots::put(&self.slots, key, &PacketState::with_template(slots::Template::of(spec)));
        }
    }

    /// `-j CT --notrack` for the packet `key`.
    /// False when an earlier CT target already decided for the packet (see `template`).
    pub(crate) fn notrack(&self, key: u64) -> bool {
        if slots::get(&self.slots, key).is_some() {
            return false;
        }
        slots::put(&self.slots, key, &PacketState::UNTRACKED);
        true
    }

    /// The table's keyed hash of two words (NAT spreads addresses with it).
    pub(crate) fn hash_words(&self, w: &[u64; 2]) -> u32 {
        crate::engine::conntrack::tuple::hash_words(&self.key, w)
    }

    /// The packet `key`'s flow for the NAT stages: what the conntrack stage recorded, or, for a
    /// packet that has no slot at all (it lost it to another packet in flight), its confirmed
    /// flow found by its tuple in the default zone, as an ESTABLISHED packet of it, so that a
    /// translated flow's packet is never sent on untranslated. None when untracked.
    pub(crate) fn nat_packet_state(&self, key: u64, data: &[u8]) -> Option<PacketState> {
        if let Some(st) = slots::get(&self.slots, key) {
            return (!st.untracked && !st.template).then_some(st);
        }
        let ip = Ipv4Header::parse_any(data).ok()?;
        let l4 = data.get(ip.header_len..)?;
        let Parsed::Flow { tuple, .. } = tuple::parse(ip.src, ip.dst, ip.protocol, ip.frag_offset, l4) else {
            return None;
        };
        let (h, dir) = self.table().lookup(&tuple, shim::jiffies())?;
        Some(PacketState {
            h,
            dir,
            state: crate::engine::rule::ctstate::ESTABLISHED,
            new: false,
            looped: false,
            untracked: false,
            template: false,
        })
    }

    /// The flow of the packet `key` (none when untracked or INVALID).
    pub(crate) fn flow_of(&self, key: u64) -> Option<crate::engine::conntrack::Handle> {
        slots::get(&self.slots, key).filter(|st| !st.untracked && !st.template).map(|st| st.h)
    }

    /// Whether the flow `f` (`idx << 32 | gen`) is still there and not closed (TCP TIME_WAIT
    /// or CLOSE), as nf_conncount's `already_closed`.
    pub(crate) fn open(&self, f: u64) -> bool {
        use crate::engine::conntrack::tcp::TcpState;
        let h = crate::engine::conntrack::Handle { idx: (f >> 32) as u32, gen: f as u32 };
        self.table()
            .snapshot(h)
            .is_some_and(|s| !s.tcp.is_some_and(|c| matches!(c.state, TcpState::TimeWait | TcpState::Close)))
    }

    /// `-j CONNMARK`: the packet `key`'s flow gets mark `mark`.
    pub(crate) fn set_mark(&self, key: u64, mark: u32) {
        if let Some(st) = slots::get(&self.slots, key).filter(|st| !st.untracked && !st.template) {
            self.table().set_mark(st.h, mark, shim::jiffies());
        }
    }

    /// What the rules see of the packet `key`'s connection.
    pub(crate) fn view(&self, key: u64) -> CtView {
        let Some(st) = slots::get(&self.slots, key) else { return CtView::INVALID };
        if st.untracked {
            return CtView::UNTRACKED;
        }
        // A template (`-j CT` earlier in the raw table) is not a flow yet.
        if st.template {
            return CtView::INVALID;
        }
        let t = self.table();
        let Some(s) = t.snapshot(st.h) else { return CtView::INVALID };
        let now = shim::jiffies();
        let left = s.expires.wrapping_sub(now) as i64;
        let expires_secs = if left > 0 { (left as u64 / self.hz.max(1)) as u32 } else { 0 };
        CtView {
            state: st.state,
            flow: Some(FlowView {
                dir: st.dir,
                status: s.status,
                orig: s.tuple[0],
                reply: s.tuple[1],
                expires_secs,
                mark: s.mark,
                counters: s.counters,
            }),
        }
    }

    /// The conntrack stage for one packet.
    pub(crate) fn track(&self, pkt: &mut Packet<'_>, head: &Head, data: &[u8], prerouting: bool) -> Verdict {
        let key = pkt.key();
        let mut tmpl = slots::Template::default();
        if let Some(st) = slots::get(&self.slots, key) {
            if let Some(t) = st.template() {
                tmpl = t;
            }
            // The raw table said CT --notrack for this very packet (its slot was written in
            // this hook call's packet's raw stage, just before).
            if st.untracked && !st.looped {
                return Verdict::Accept;
            }
            // A packet that was tracked on its way out and comes back over loopback keeps its
            // flow (nf_conntrack_in: the skb already has its conntrack).
            if prerouting && st.looped && self.same_flow(&st, data) {
                slots::put(&self.slots, key, &PacketState { looped: false, ..st });
                return Verdict::Accept;
            }
        }
        slots::clear(&self.slots, key);
        // A header nf_conntrack could not read gets no flow (INVALID). `tot_len` is not
        // checked: it is 0 in BIG TCP packets, whose length comes from the skb.
        let Ok(ip) = Ipv4Header::parse_any(data) else { return Verdict::Accept };
        let hl = ip.header_len;
        if data.first().is_some_and(|b| b >> 4 != 4) || hl < 20 || data.len() < hl {
            return Verdict::Accept;
        }
        let l4 = data.get(hl..).unwrap_or(&[]);
        let parsed = tuple::parse(ip.src, ip.dst, ip.protocol, ip.frag_offset, l4);
        if !matches!(parsed, Parsed::Invalid) && pkt.l4_csum_bad(hl as u32, ip.protocol) {
            self.table().stat().invalid.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            return Verdict::Accept;
        }
        let l4_len = head.meta.ip_len.saturating_sub(hl as u32);
        use core::sync::atomic::Ordering::Relaxed;
        let cpu_slot = || self.last_new.get(shim::cpu_id() as usize % self.last_new.len().max(1));
        // An ICMP error made here (OUTPUT) while this CPU handled the packet it is about.
        let cause = (!prerouting && matches!(parsed, Parsed::IcmpError { .. }))
            .then(|| cpu_slot().map(|s| s.load(Relaxed)))
            .flatten()
            .filter(|v| *v != 0)
            .map(|v| crate::engine::conntrack::Handle { idx: (v >> 32) as u32, gen: v as u32 });
        let p = table::PacketCt {
            parsed,
            helper: tmpl.helper,
            zone: tmpl.zone_for(head.meta.mark),
            ctevents: tmpl.ctevents.unwrap_or(crate::engine::rule::ctevent::ALL),
            cause,
            len: head.meta.skb_len,
            l4_len,
        };
        let now = shim::jiffies();
        match self.table().track(&p, now) {
            Track::Flow { h, dir, state, new } => {
                let st = PacketState { h, dir, state, new, looped: false, untracked: false, template: false };
                if new {
                    if let Some(s) = cpu_slot() {
                        s.store(u64::from(h.idx) << 32 | u64::from(h.gen), Relaxed);
                    }
                }
                if !slots::put(&self.slots, key, &st) && new {
                    // Nowhere to remember it: the flow could never be confirmed.
                    self.table().delete(h);
                }
                Verdict::Accept
            }
            // No flow: INVALID for the rules, as nf_conntrack leaves such packets.
            Track::Invalid => Verdict::Accept,
            Track::Drop => {
                ffi_ct::table_full_warn();
                Verdict::Drop
            }
        }
    }

    /// True when the packet in `data` carries the tuple of `st`'s flow in `st`'s direction
    /// (or `st` is an untracked packet): a looped slot is this packet's, not a stale one.
    fn same_flow(&self, st: &PacketState, data: &[u8]) -> bool {
        if st.untracked {
            return true;
        }
        let Ok(ip) = Ipv4Header::parse_any(data) else { return false };
        let l4 = data.get(ip.header_len..).unwrap_or(&[]);
        let Parsed::Flow { tuple, .. } = tuple::parse(ip.src, ip.dst, ip.protocol, ip.frag_offset, l4) else {
            return false;
        };
        // As it left (its direction's tuple), or as NAT rewrote it (the other direction's,
        // inverted).
        self.table().snapshot(st.h).is_some_and(|s| {
            s.tuple.get(st.dir.index()) == Some(&tuple)
                || s.tuple.get(st.dir.other().index()).and_then(|t| t.invert()) == Some(tuple)
        })
    }

    /// Hands a helper flow's TCP segment to the helper: at the confirm stage (every hook
    /// accepted the packet), for an ESTABLISHED flow, as nf_conntrack runs helpers. Through
    /// NAT the helper also rewrites the announced address and port in the packet (nf_nat_ftp).
    /// False to drop the packet (no room to rewrite it, no port for the data connection).
    fn helper_segment(&self, pkt: &mut Packet<'_>, st: &PacketState) -> bool {
        if st.state != crate::engine::rule::ctstate::ESTABLISHED || self.table().helper(st.h) == 0 {
            return true;
        }
        let Some((ip, tcp)) = tcp_head(pkt) else { return true };
        let hl = ip.header_len;
        let doff = usize::from(tcp[12] >> 4) * 4;
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let total = usize::from(ip.total_len);
        let start = hl.saturating_add(doff);
        if doff < 20 || total <= start {
            return true;
        }
        let len = total - start;
        let mut buf = [0u8; HELPER_BYTES];
        let got = pkt.read(start, &mut buf);
        let mut last = [0u8; 1];
        let ends_in_nl = pkt.read(total - 1, &mut last) == 1 && last[0] == b'\n';
        let Some(payload) = buf.get(..got.min(len)) else { return true };
        let seg = table::HelperSegment { seq, len: len as u32, payload, ends_in_nl };
        let t = self.table();
        let now = shim::jiffies();
        let Some(snap) = t.snapshot(st.h) else { return true };
        if snap.status & crate::engine::conntrack::status::NAT_MASK == 0 {
            t.helper_segment(st.h, st.dir, &seg, now);
            return true;
        }
        if !t.helper_line_start(st.h, st.dir, &seg) {
            return true;
        }
        use crate::engine::nat::ftp;
        let state = if pkt.csum_partial() {
            crate::engine::checksum::FieldState::Partial
        } else {
            crate::engine::checksum::FieldState::Full
        };
        let (h, dir) = (st.h, st.dir);
        let Some((bytes, cur)) = pkt.expand(ftp::TEXT_MAX) else { return false };
        let out = ftp::nat_ftp(bytes, cur, &snap.tuple, dir, state, shim::random_u32, |port| {
            ftp::expectation(&snap.tuple, dir, port).is_none_or(|e| t.expect_taken(h, &e, now))
        });
        match out {
            ftp::Outcome::Untouched => true,
            ftp::Outcome::Drop => false,
            ftp::Outcome::Rewritten(r) => {
                if pkt.resize(r.mangled.len).is_err() {
                    return false;
                }
                t.register_expectation(h, &r.expect, Some((r.saved_port, dir)), now);
                t.seqadj_record(h, dir, r.mangled.seq, r.mangled.delta);
                true
            }
        }
    }

    /// FTP through NAT changed the length of this flow's segments: the sequence and
    /// acknowledgement numbers of every TCP packet are corrected (`nf_ct_seq_adjust`). False
    /// to drop the packet.
    fn seq_adjust(&self, pkt: &mut Packet<'_>, st: &PacketState) -> bool {
        let Some(adj) = self.table().seqadj(st.h) else { return true };
        let Some((ip, tcp)) = tcp_head(pkt) else { return true };
        let hl = ip.header_len;
        let doff = usize::from(tcp[12] >> 4) * 4;
        let state = if pkt.csum_partial() {
            crate::engine::checksum::FieldState::Partial
        } else {
            crate::engine::checksum::FieldState::Full
        };
        let Some(bytes) = pkt.writable(hl + doff.max(20)) else { return false };
        bytes.get_mut(hl..).is_some_and(|tcp| adj.adjust(tcp, st.dir, state))
    }

    /// The confirm stage for one packet leaving its last hook.
    pub(crate) fn confirm(&self, pkt: &mut Packet<'_>, out_loopback: bool) -> Verdict {
        let key = pkt.key();
        let Some(st) = slots::get(&self.slots, key) else { return Verdict::Accept };
        if st.untracked {
            if out_loopback {
                slots::put(&self.slots, key, &PacketState { looped: true, ..st });
            } else {
                slots::clear(&self.slots, key);
            }
            return Verdict::Accept;
        }
        // As nf_confirm: the helper, then the sequence number corrections (not for a packet
        // looping back: it gets them on its way out), then the flow goes into the table.
        if !self.helper_segment(pkt, &st) || (!out_loopback && !self.seq_adjust(pkt, &st)) {
            slots::clear(&self.slots, key);
            if st.new {
                self.table().delete(st.h);
            }
            return Verdict::Drop;
        }
        if st.new && self.table().confirm(st.h, shim::jiffies()).is_err() {
            // The same flow was confirmed meanwhile by another packet (a race between two
            // first packets): this one is dropped, as nf_conntrack does for a clash.
            slots::clear(&self.slots, key);
            return Verdict::Drop;
        }
        if out_loopback {
            slots::put(&self.slots, key, &PacketState { new: false, looped: true, ..st });
        } else {
            slots::clear(&self.slots, key);
        }
        Verdict::Accept
    }

    /// A packet rust_nf drops: its unconfirmed flow goes with it.
    pub(crate) fn dropped(&self, key: u64) {
        if let Some(st) = slots::get(&self.slots, key) {
            slots::clear(&self.slots, key);
            if st.new && !st.untracked {
                self.table().delete(st.h);
            }
        }
    }
}

/// The IPv4 header and the first 20 bytes of the TCP header of a TCP packet that is not a
/// later fragment.
fn tcp_head(pkt: &Packet<'_>) -> Option<(Ipv4Header, [u8; 20])> {
    let mut hdr = [0u8; 80];
    let n = pkt.read(0, &mut hdr);
    let hdr = hdr.get(..n)?;
    let ip = Ipv4Header::parse_any(hdr).ok()?;
    if ip.protocol != crate::engine::packet::IPPROTO_TCP || ip.frag_offset != 0 {
        return None;
    }
    let tcp = hdr.get(ip.header_len..ip.header_len.checked_add(20)?)?.try_into().ok()?;
    Some((ip, tcp))
}
