// SPDX-License-Identifier: GPL-2.0

//! NAT in the kernel: the two NAT stages of the packet path (the logic is the engine's `nat`
//! folder).
//!
//! - At PREROUTING and OUTPUT (nat dst, -100) and at POSTROUTING and INPUT (nat src, 100), a
//!   packet whose flow was made for it (still unconfirmed) and whose binding of this kind is
//!   not decided yet meets the nat table's rules: a NAT target gives the binding, no target a
//!   null binding (which still moves a clashing source port, as nf_nat's). The binding changes
//!   the flow's reply tuple before the flow is confirmed, so replies are found under the
//!   translated addresses.
//! - Every packet of a translated flow, in both directions, is then rewritten at these stages
//!   (`nf_nat_packet`), and ICMP errors about it get their quoted header rewritten too. After
//!   a destination change the packet is routed again.

use crate::conntrack::Ct;
use crate::engine::conntrack::status;
use crate::engine::conntrack::tuple::{icmp, Tuple, Zone};
use crate::engine::eval;
use crate::engine::hooks::HookPoint;
use crate::engine::nat::{self, range, Chooser, Manip, NatRange};
use crate::engine::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
use crate::engine::rule::{ctstate, NatKind, NatTarget};
use crate::engine::checksum::FieldState;
use crate::ffi::shim;
use crate::ffi::skb::{Head, Packet, Verdict};
use crate::ruleset::Version;

/// The table seen by port allocation: a candidate is taken when a confirmed flow of the
/// same zone already has the reply tuple it implies.
struct TableChooser<'t> {
    ct: &'t Ct,
    zone: Zone,
    now: u64,
}

impl Chooser for TableChooser<'_> {
    fn random(&mut self) -> u32 {
        shim::random_u32()
    }

    fn hash(&mut self, words: &[u64; 2]) -> u32 {
        self.ct.hash_words(words)
    }

    fn used(&mut self, orig: &Tuple) -> bool {
        orig.invert().is_none_or(|r| self.ct.table().lookup_in(&r, self.zone, self.now).is_some())
    }
}

/// One NAT stage for one packet.
pub(crate) fn stage(ct: &Ct, version: &Version, point: HookPoint, pkt: &mut Packet<'_>, head: &Head, data: &[u8]) -> Verdict {
    let m = match point {
        HookPoint::PreRouting | HookPoint::LocalOut => Manip::Dst,
        _ => Manip::Src,
    };
    let Some(st) = ct.nat_packet_state(pkt.key(), data) else { return Verdict::Accept };
    let table = ct.table();
    let Some(mut snap) = table.snapshot(st.h) else { return Verdict::Accept };
    let done = if m == Manip::Src { status::SRC_NAT_DONE } else { status::DST_NAT_DONE };
    // (The stage runs only while the namespace has a nat table.)
    if st.new && snap.status & (done | status::CONFIRMED) == 0 {
        match bind(ct, version, point, m, pkt, head, data, &st, &snap) {
            Ok(()) => {}
            Err(v) => return v,
        }
        let Some(s) = table.snapshot(st.h) else { return Verdict::Drop };
        snap = s;
    }
    if snap.status & status::NAT_MASK == 0 {
        return Verdict::Accept;
    }
    // A masqueraded flow now routed out of another interface has the wrong source: it goes
    // (nf_nat_oif_changed).
    if snap.nat_if != 0 && point == HookPoint::PostRouting && st.dir == crate::engine::conntrack::Dir::Original {
        if u32::try_from(pkt.out_ifindex()).is_ok_and(|o| o != snap.nat_if) {
            table.delete_at(st.h, shim::jiffies());
            return Verdict::Drop;
        }
    }
    // An ICMP error about a translated flow: the quoted packet too.
    let proto = data.get(9).copied().unwrap_or(0);
    let hl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
    if st.state == ctstate::RELATED && !st.new && proto == IPPROTO_ICMP {
        let ty = data.get(hl).copied().unwrap_or(0);
        if icmp::is_error(ty) {
            // The headers and the quoted headers only (nat::ICMP_ERROR_BYTES).
            let len = (head.meta.ip_len as usize).min(hl + 8 + 60 + 20);
            let Some(buf) = pkt.writable(len) else { return Verdict::Drop };
            if !nat::icmp_error(buf, &snap.tuple, snap.status, st.dir, m) {
                return Verdict::Drop;
            }
            return after_rewrite(pkt, point, m, true);
        }
    }
    let Some(target) = nat::packet_target(&snap.tuple, snap.status, st.dir, m) else { return Verdict::Accept };
    // The bytes the rewrite touches: the IP header and, unless this is a later fragment, the
    // transport header up to its checksum.
    let frag = data.get(6..8).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
    let l4 = match proto {
        _ if frag != 0 => 0,
        IPPROTO_TCP => 18,
        IPPROTO_UDP | IPPROTO_ICMP => 8,
        _ => 0,
    };
    let state = if pkt.csum_partial() { FieldState::Partial } else { FieldState::Full };
    let Some(buf) = pkt.writable(hl + l4) else { return Verdict::Drop };
    let dst = |b: &[u8]| b.get(16..20).map(|a| u32::from_be_bytes([a[0], a[1], a[2], a[3]]));
    let before = dst(buf);
    if !nat::manip_packet(buf, &target, m, state) {
        return Verdict::Drop;
    }
    let changed = before != dst(buf);
    if point == HookPoint::LocalIn {
        pkt.orphan_demuxed();
    }
    after_rewrite(pkt, point, m, changed)
}

/// After a rewrite: a packet whose destination NAT changed is routed again (`nf_nat_ipv4_fn`'s
/// callers: a dropped route at PREROUTING, `ip_route_me_harder` at OUTPUT).
fn after_rewrite(pkt: &mut Packet<'_>, point: HookPoint, m: Manip, changed: bool) -> Verdict {
    if m != Manip::Dst || !changed {
        return Verdict::Accept;
    }
    match point {
        HookPoint::PreRouting => {
            pkt.dst_drop();
            Verdict::Accept
        }
        HookPoint::LocalOut if pkt.reroute().is_err() => Verdict::Drop,
        _ => Verdict::Accept,
    }
}

/// Decides the binding of kind `m` for the unconfirmed flow of the packet: the nat table's
/// target, or a null binding. `Err` carries the verdict for a packet that goes no further.
#[allow(clippy::too_many_arguments)]
fn bind(
    ct: &Ct,
    version: &Version,
    point: HookPoint,
    m: Manip,
    pkt: &mut Packet<'_>,
    head: &Head,
    data: &[u8],
    st: &crate::engine::conntrack::slots::PacketState,
    snap: &crate::engine::conntrack::table::Snapshot,
) -> Result<(), Verdict> {
    let target = match crate::hook::evaluate(version, point, pkt, head, data, Some(ct)) {
        None => return Err(Verdict::Drop),
        Some((eval::Verdict::Nat(n), _)) => Some(n),
        // (NFQUEUE in the nat table: the flow keeps no binding, the packet goes on.)
        Some((eval::Verdict::Accept | eval::Verdict::Queue(_), _)) => None,
        Some((eval::Verdict::Drop | eval::Verdict::Reject(_), _)) => return Err(Verdict::Drop),
    };
    // The flow as it stands (`nf_nat_setup_info`: the inverse of the current reply tuple,
    // which holds an earlier destination binding).
    let Some(curr) = snap.tuple[1].invert() else { return Err(Verdict::Accept) };
    let mut nat_if = 0;
    let r = match target {
        None => null_range(&curr, m),
        Some(t) => match range_of(&t, &curr, m, pkt, &mut nat_if) {
            Some(r) => r,
            None => return Err(Verdict::Drop),
        },
    };
    let now = shim::jiffies();
    let zone = Zone { id: snap.zone[1], dirs: 3 };
    let mut chooser = TableChooser { ct, zone, now };
    let Some(new) = nat::unique_tuple(&curr, &r, m, &mut chooser) else {
        // The range is exhausted: the new flow goes, and is counted as the kernel counts a
        // clash at insertion.
        ct.table().stat().insert_failed.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return Err(Verdict::Drop);
    };
    let done = if m == Manip::Src { status::SRC_NAT_DONE } else { status::DST_NAT_DONE };
    let (reply, bit) = if new == curr {
        (None, 0)
    } else {
        (new.invert(), if m == Manip::Src { status::SRC_NAT } else { status::DST_NAT })
    };
    if !ct.table().set_nat(st.h, reply.as_ref(), bit, done, nat_if) {
        return Err(Verdict::Drop);
    }
    Ok(())
}

/// A null binding (`__nf_nat_alloc_null_binding`): the address stays; for a source binding
/// the port may still move to stay unique.
fn null_range(curr: &Tuple, m: Manip) -> NatRange {
    let a = if m == Manip::Src { curr.src } else { curr.dst };
    NatRange { flags: range::MAP_IPS, min_addr: a, max_addr: a, ..Default::default() }
}

/// The range a target binds to for this packet; `None` to drop it (MASQUERADE or REDIRECT
/// without an address).
fn range_of(t: &NatTarget, curr: &Tuple, m: Manip, pkt: &Packet<'_>, nat_if: &mut u32) -> Option<NatRange> {
    let mut r = t.range;
    match t.kind {
        NatKind::Dnat | NatKind::Snat => {}
        // A packet from 0.0.0.0 (DHCP) keeps it (a null binding), as nf_nat_masquerade_ipv4.
        NatKind::Masquerade if curr.src == 0 => return Some(null_range(curr, m)),
        NatKind::Masquerade => {
            let (addr, ifindex) = pkt.masq_addr();
            let a = addr?;
            *nat_if = u32::try_from(ifindex).unwrap_or(0);
            r.flags |= range::MAP_IPS;
            r.min_addr = a;
            r.max_addr = a;
        }
        NatKind::Redirect => {
            let a = pkt.redirect_addr()?;
            r.flags |= range::MAP_IPS;
            r.min_addr = a;
            r.max_addr = a;
        }
        NatKind::Netmap => {
            let a = nat::netmap_addr(if m == Manip::Src { curr.src } else { curr.dst }, &t.range);
            r.flags |= range::MAP_IPS;
            r.min_addr = a;
            r.max_addr = a;
        }
    }
    Some(r)
}
