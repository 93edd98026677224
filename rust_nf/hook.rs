// SPDX-License-Identifier: GPL-2.0

//! The packet path: one hook call, from the packet to netfilter's verdict.
//!
//! Each call reads its packet once (`Packet::head`: the bytes from the network header on, the
//! lengths, the mark and the devices) into a context that the whole call uses: the table's
//! rules see the parsed [`PacketInfo`], and the side effects (counters, LOG, MARK, REJECT)
//! act on the packet through [`Packet`].

use crate::engine::eval::{self, AddrTypeDev, Env, PacketInfo, RecentCheck, SockOwner, MAX_EVAL_LEN};
use crate::engine::hooks::{HookPoint, Stage, HOOKS};
use crate::engine::rule::{LimitMatch, TableId};
use crate::engine::checksum::{self, FieldState};
use crate::engine::tcpmss::{self, NewMss};
use crate::engine::conntrack::CtView;
use crate::engine::compiled::{CLog, CNflog, NFLOG_PREFIX_BYTES};
use crate::ffi::shim;
use crate::conntrack::Ct;
use crate::ffi::skb::{Head, Packet, Verdict};
use crate::netns::NetState;
use crate::ruleset::Version;
use core::ffi::c_uint;
use kernel::prelude::*;

/// An IPv4 header without options.
const IPV4_MIN_HEADER: usize = 20;

/// The verdict for one packet at hook registration `slot`.
pub(crate) fn run(ns: &NetState, slot: c_uint, pkt: &mut Packet<'_>) -> Verdict {
    let Some(spec) = HOOKS.get(slot as usize) else {
        // The shim registers only the engine's slots.
        return Verdict::Drop;
    };
    // Conntrack and NAT come with their own stages; the tables run here.
    let table = match spec.stage {
        Stage::Raw => Some(TableId::Raw),
        Stage::Mangle => Some(TableId::Mangle),
        Stage::Filter => Some(TableId::Filter),
        Stage::Security => Some(TableId::Security),
        Stage::NatDst | Stage::NatSrc => Some(TableId::Nat),
        _ => None,
    };
    // Netfilter calls hooks inside an RCU read-side critical section; the reader makes it
    // explicit and bounds the version's borrow.
    let reader = pkt.reader();
    let version = table.and_then(|t| ns.tables.boxes().get(t as usize)).and_then(|b| b.get(&reader));
    let ct = ns.ct.get();
    let (skb_len, from_net) = pkt.lens();
    ns.hooks.add(slot, u64::from(skb_len));
    // What has nothing to do here returns before the packet is read at all: stages without
    // connection tracking or without a nat table, and a table whose chain at this hook has no
    // rule (its policy decides; every table starts so).
    match (spec.stage, ct) {
        (Stage::Raw, Some(ct)) => ct.first_hook(pkt.key()),
        (Stage::Conntrack | Stage::Confirm | Stage::NatDst | Stage::NatSrc, None) => return Verdict::Accept,
        (Stage::NatDst | Stage::NatSrc, Some(_)) if version.is_none() => return Verdict::Accept,
        _ => {}
    }
    let is_table = matches!(spec.stage, Stage::Raw | Stage::Mangle | Stage::Filter | Stage::Security);
    if is_table {
        let Some(v) = version else { return Verdict::Accept };
        // (A packet too short for an IPv4 header meets the rules, and is dropped there.)
        if from_net >= IPV4_MIN_HEADER as u32 {
            if let Some(policy) = v.empty_chain_policy(spec.point, skb_len) {
                let verdict = if policy == crate::engine::rule::Policy::Drop { Verdict::Drop } else { Verdict::Accept };
                if let (Verdict::Drop, Some(ct)) = (verdict, ct) {
                    ct.dropped(pkt.key());
                }
                return verdict;
            }
        }
    }
    // Copy the packet's start only when rules or the conntrack stage will look at it.
    let mut buf = [0u8; MAX_EVAL_LEN];
    let want = if version.is_some() || (ct.is_some() && spec.stage == Stage::Conntrack) {
        MAX_EVAL_LEN
    } else {
        0
    };
    let head = pkt.head(buf.get_mut(..want).unwrap_or(&mut []));
    let data = buf.get(..head.copied).unwrap_or(&[]);
    match (spec.stage, ct) {
        (Stage::Conntrack, Some(ct)) => return ct.track(pkt, &head, data, spec.point == HookPoint::PreRouting),
        (Stage::Confirm, Some(ct)) => return ct.confirm(pkt, head.out_loopback),
        // The nat table is no filter: its rules run for a flow's first packet only, inside
        // the NAT stage. Without connection tracking there is nothing to translate, and
        // without a nat table nothing is (nf_nat's hooks come and go with iptable_nat).
        (Stage::NatDst | Stage::NatSrc, Some(ct)) => {
            let Some(v) = version else { return Verdict::Accept };
            let verdict = crate::nat::stage(ct, v, spec.point, pkt, &head, data);
            if verdict == Verdict::Drop {
                ct.dropped(pkt.key());
            }
            return verdict;
        }
        _ => {}
    }
    let Some(v) = version else {
        return Verdict::Accept;
    };
    let verdict = run_table(v, spec.point, pkt, &head, data, ct);
    if verdict == Verdict::Drop {
        if let Some(ct) = ct {
            ct.dropped(pkt.key());
        }
    }
    verdict
}

/// The rules of table `v` for one packet: the engine's verdict and whether a rule changed the
/// packet's mark; `None` for a packet too short to hold an IPv4 header (dropped).
pub(crate) fn evaluate(
    v: &Version,
    point: HookPoint,
    pkt: &mut Packet<'_>,
    head: &Head,
    data: &[u8],
    ct: Option<&Ct>,
) -> Option<(eval::Verdict, bool)> {
    // Every packet meets the rules, whatever its header says (ip_tables reads the fields it
    // finds); only one too short to hold an IPv4 header cannot, and is dropped.
    let info = PacketInfo::parse(data, &head.in_dev, &head.out_dev, head.meta).ok()?;
    let mut env = KernelEnv { v, pkt, route_key_changed: false, ct, view: None, forwarded: head.forwarded };
    let verdict = eval::evaluate(&v.ruleset(), point, &info, &mut env);
    Some((verdict, env.route_key_changed))
}

/// The table `v` for one packet.
fn run_table(v: &Version, point: HookPoint, pkt: &mut Packet<'_>, head: &Head, data: &[u8], ct: Option<&Ct>) -> Verdict {
    let Some((verdict, route_key_changed)) = evaluate(v, point, pkt, head, data, ct) else {
        return Verdict::Drop;
    };
    // As iptable_mangle: a new mark or TOS may change the route of a local packet (for any
    // verdict that lets the packet on, a queue's too).
    let reroute = route_key_changed && point == HookPoint::LocalOut && v.table() == TableId::Mangle;
    match verdict {
        eval::Verdict::Accept | eval::Verdict::Queue(_) if reroute && pkt.reroute().is_err() => Verdict::Drop,
        eval::Verdict::Accept => Verdict::Accept,
        eval::Verdict::Drop => Verdict::Drop,
        eval::Verdict::Reject(kind) => {
            pkt.reject(kind.icmp_code());
            Verdict::Drop
        }
        // Only the nat table has NAT targets, and it does not come here.
        eval::Verdict::Nat(_) => Verdict::Accept,
        eval::Verdict::Queue(q) => pkt.queue_verdict(&q),
    }
}

/// The engine's side effects, done on the live packet.
struct KernelEnv<'v, 'p, 'a> {
    v: &'v Version,
    pkt: &'p mut Packet<'a>,
    route_key_changed: bool,
    /// The namespace's connection table, when it tracks.
    ct: Option<&'v Ct>,
    /// The packet's connection, read once per hook call when a rule first asks.
    view: Option<CtView>,
    /// A packet on its way through (for `-m recent`'s TTL).
    forwarded: bool,
}

impl Env for KernelEnv<'_, '_, '_> {
    fn count(&mut self, counter: u32, bytes: u32) {
        self.v.count(counter, u64::from(bytes));
    }

    fn random_u32(&mut self) -> u32 {
        shim::random_u32()
    }

    fn limit_allow(&mut self, state: u32, _limit: &LimitMatch) -> bool {
        self.v.limit_allow(state)
    }

    fn nth_next(&mut self, state: u32, every: u32) -> u32 {
        self.v.nth_next(state, every)
    }

    fn quota_take(&mut self, state: u32, len: u32) -> bool {
        self.v.quota_take(state, len)
    }

    fn addr_type(&mut self, addr: u32, dev: AddrTypeDev) -> u16 {
        self.pkt.addr_type_bit(addr, dev) as u16
    }

    fn log(&mut self, log: &CLog) {
        let mut prefix = [0u8; 32];
        let p = log.prefix();
        let n = p.len().min(prefix.len() - 1);
        if let (Some(dst), Some(src)) = (prefix.get_mut(..n), p.get(..n)) {
            dst.copy_from_slice(src);
        }
        if let Ok(c) = CStr::from_bytes_until_nul(&prefix) {
            self.pkt.log(log.level, log.flags, c);
        }
    }

    fn nflog(&mut self, n: &CNflog, prefix: &[u8]) {
        let mut buf = [0u8; NFLOG_PREFIX_BYTES];
        let k = prefix.len().min(buf.len() - 1);
        if let (Some(dst), Some(src)) = (buf.get_mut(..k), prefix.get(..k)) {
            dst.copy_from_slice(src);
        }
        if let Ok(c) = CStr::from_bytes_until_nul(&buf) {
            self.pkt.nflog(n.group, n.threshold, n.len, n.copy_len, c);
        }
    }

    fn set_mark(&mut self, mark: u32) {
        self.route_key_changed = true;
        self.pkt.set_mark(mark);
    }

    fn ct(&mut self) -> CtView {
        if let Some(v) = self.view {
            return v;
        }
        let v = self.ct.map_or(CtView::INVALID, |ct| ct.view(self.pkt.key()));
        self.view = Some(v);
        v
    }

    fn ct_template(&mut self, spec: &crate::engine::rule::CtSpec) {
        if let Some(ct) = self.ct {
            ct.template(self.pkt.key(), spec);
        }
    }

    fn notrack(&mut self) {
        if self.ct.is_none_or(|ct| ct.notrack(self.pkt.key())) {
            self.view = Some(CtView::UNTRACKED);
        }
    }

    fn recent(&mut self, state: u32, m: &RecentCheck, addr: u32, ttl: u8) -> Result<bool, ()> {
        // xt_recent records the TTL a forwarded packet had before this host decremented it.
        let ttl = if self.forwarded { ttl.wrapping_add(1) } else { ttl };
        self.v.recent(state, &m.as_match(), addr, ttl)
    }

    fn connlimit(&mut self, state: u32, key: u32) -> Option<u32> {
        let key_pkt = self.pkt.key();
        let ct = self.ct;
        let flow = ct.and_then(|c| c.flow_of(key_pkt)).map_or(u64::MAX, |h| u64::from(h.idx) << 32 | u64::from(h.gen));
        self.v.connlimit(state, key, flow, |f| f != u64::MAX && ct.is_some_and(|c| c.open(f)))
    }

    fn set_ct_mark(&mut self, mark: u32) {
        if let Some(ct) = self.ct {
            ct.set_mark(self.pkt.key(), mark);
        }
        if let Some(f) = self.view.as_mut().and_then(|v| v.flow.as_mut()) {
            f.mark = mark;
        }
    }

    fn set_ttl(&mut self, _old: u8, new: u8) -> bool {
        // xt_HL: make the header writable first (even when nothing changes), then rewrite.
        self.pkt.writable(IPV4_MIN_HEADER).is_some_and(|h| checksum::rewrite_ttl(h, new))
    }

    fn set_tos(&mut self, _old: u8, new: u8) -> bool {
        // xt_DSCP: make the header writable, then rewrite (the caller only calls on a change).
        self.route_key_changed = true;
        self.pkt.writable(IPV4_MIN_HEADER).is_some_and(|h| checksum::rewrite_tos(h, new))
    }

    fn set_priority(&mut self, priority: u32) {
        self.pkt.set_priority(priority);
    }

    fn tcpmss(&mut self, mss: u16) -> Option<(u32, Option<u16>)> {
        let want = if mss == tcpmss::CLAMP_PMTU { NewMss::Clamp(self.pkt.path_mtu()) } else { NewMss::Set(mss) };
        let state = if self.pkt.csum_partial() { FieldState::Partial } else { FieldState::Full };
        let (buf, len) = self.pkt.expand(4)?;
        let done = tcpmss::mangle(buf, len, want, state)?;
        if done.len != len {
            self.pkt.resize(done.len).ok()?;
        }
        Some((u32::try_from(done.len.saturating_sub(len)).ok()?, done.mss))
    }

    fn sock_owner(&mut self) -> SockOwner {
        self.pkt.owner()
    }

    fn owner_in_groups(&mut self, min: u32, max: u32) -> bool {
        self.pkt.owner_in_groups(min, max)
    }
}
