// SPDX-License-Identifier: GPL-2.0

//! NAT on rust_nf's own conntrack: the pure logic.
//!
//! Where a packet meets it (see `hooks.rs`): the nat stages at PREROUTING and OUTPUT (nat dst,
//! -100) and at POSTROUTING and INPUT (nat src, 100). For the first packet of a flow (the flow
//! is still unconfirmed) the nat table's rules choose a binding: a target ([`NatRange`] and
//! its flags) or, when no rule matches, a null binding. [`unique_tuple`] turns it into the
//! flow's new original tuple, whose inverse becomes the flow's reply tuple, so that the table
//! finds the replies under the translated addresses (as `nf_nat_setup_info`). Every packet of
//! the flow, in both directions, is then rewritten by [`manip_packet`] at the same stages
//! without looking at the rules again: each packet is made to look like the inverse of the
//! other direction's tuple (`nf_nat_packet`). ICMP errors about a translated flow get their
//! quoted header rewritten too ([`icmp_error`]).

use super::checksum::{self, FieldState};
use super::conntrack::tuple::{Dir, Tuple};
use super::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

pub mod ftp;
pub mod seqadj;

/// Which half of a tuple a stage rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manip {
    /// The source (SNAT, MASQUERADE; POSTROUTING and INPUT).
    Src,
    /// The destination (DNAT, REDIRECT; PREROUTING and OUTPUT).
    Dst,
}

/// [`NatRange::flags`] bits (the kernel's `NF_NAT_RANGE_*`).
pub mod range {
    /// Addresses are given.
    pub const MAP_IPS: u8 = 1 << 0;
    /// Ports are given.
    pub const PROTO_SPECIFIED: u8 = 1 << 1;
    /// `--random`.
    pub const PROTO_RANDOM: u8 = 1 << 2;
    /// `--persistent`.
    pub const PERSISTENT: u8 = 1 << 3;
    /// `--random-fully`.
    pub const PROTO_RANDOM_FULLY: u8 = 1 << 4;
    /// Either random flag.
    pub const PROTO_RANDOM_ALL: u8 = PROTO_RANDOM | PROTO_RANDOM_FULLY;
    /// `--to-destination ip:lo-hi/base`: ports are mapped by their offset from `base_port`.
    pub const PROTO_OFFSET: u8 = 1 << 5;
}

/// An address and port range (`struct nf_nat_range2`). Addresses in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatRange {
    /// [`range`] bits.
    pub flags: u8,
    /// First address.
    pub min_addr: u32,
    /// Last address.
    pub max_addr: u32,
    /// First port (or ICMP id).
    pub min_port: u16,
    /// Last port.
    pub max_port: u16,
    /// With [`range::PROTO_OFFSET`]: the port that maps to `min_port`.
    pub base_port: u16,
}

/// Most tries to find a free port before halving (`NF_NAT_MAX_ATTEMPTS`).
const MAX_ATTEMPTS: u32 = 128;

fn port_of(t: &Tuple, m: Manip) -> u16 {
    match (t.proto, m) {
        (IPPROTO_ICMP, _) | (_, Manip::Src) => t.sport,
        _ => t.dport,
    }
}

fn set_port(t: &mut Tuple, m: Manip, p: u16) {
    match (t.proto, m) {
        (IPPROTO_ICMP, _) | (_, Manip::Src) => t.sport = p,
        _ => t.dport = p,
    }
}

fn addr_of(t: &Tuple, m: Manip) -> u32 {
    match m {
        Manip::Src => t.src,
        Manip::Dst => t.dst,
    }
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP)
}

/// `nf_in_range`: the manipulated half of `t` is inside `r`.
fn in_range(t: &Tuple, m: Manip, r: &NatRange) -> bool {
    let a = addr_of(t, m);
    if r.flags & range::MAP_IPS != 0 && (a < r.min_addr || a > r.max_addr) {
        return false;
    }
    port_in_range(t, m, r)
}

fn port_in_range(t: &Tuple, m: Manip, r: &NatRange) -> bool {
    if r.flags & range::PROTO_SPECIFIED == 0 || !has_ports(t.proto) {
        return true;
    }
    // ICMP: only the id of queries is a "port"; TCP/UDP: the port.
    let p = port_of(t, m);
    p >= r.min_port && p <= r.max_port
}

/// The randomness and the table a binding is chosen with.
pub trait Chooser {
    /// A random number (`get_random_u32`).
    fn random(&mut self) -> u32;
    /// A keyed hash of `words` (the per-boot key keeps remote senders from steering it).
    fn hash(&mut self, words: &[u64; 2]) -> u32;
    /// Whether a flow other than the one being set up already uses the reply tuple that
    /// `orig` (a candidate original tuple) implies (`nf_nat_used_tuple`).
    fn used(&mut self, orig: &Tuple) -> bool;
}

/// `get_unique_tuple`: the flow's original tuple `orig` with its `m` half moved into `r`, so
/// that no other flow has the same reply tuple; `None` when every candidate is taken (the
/// range is exhausted).
pub fn unique_tuple(orig: &Tuple, r: &NatRange, m: Manip, c: &mut impl Chooser) -> Option<Tuple> {
    // 1) A source that is already in range and unique stays as it is (unless random).
    if m == Manip::Src && r.flags & range::PROTO_RANDOM_ALL == 0 && in_range(orig, m, r) && !c.used(orig) {
        return Some(*orig);
    }
    let mut t = *orig;
    // 2) The address: one of the range, spread by a hash of the addresses
    //    (`find_best_ips_proto`): the same client always gets the same one, and with
    //    --persistent the same one whatever the destination.
    if r.flags & range::MAP_IPS != 0 {
        let a = if r.min_addr >= r.max_addr {
            r.min_addr
        } else {
            let other = if r.flags & range::PERSISTENT != 0 { 0 } else { u64::from(t.dst) };
            let key = match m {
                Manip::Src => [u64::from(t.src), other],
                Manip::Dst => [u64::from(t.src), other ^ 1 << 40],
            };
            let n = u64::from(r.max_addr - r.min_addr) + 1;
            r.min_addr + ((u64::from(c.hash(&key)) * n) >> 32) as u32
        };
        match m {
            Manip::Src => t.src = a,
            Manip::Dst => t.dst = a,
        }
    }
    // 3) The port: kept when it fits and is unique (a single given port is kept even when
    //    taken: DNAT to one port never changes the client's side).
    if r.flags & range::PROTO_RANDOM_ALL == 0 {
        if r.flags & range::PROTO_SPECIFIED != 0 {
            // (With an offset the port is always mapped.)
            if r.flags & range::PROTO_OFFSET == 0
                && port_in_range(&t, m, r)
                && (r.min_port == r.max_port || !c.used(&t))
            {
                return Some(t);
            }
        } else if !c.used(&t) {
            return Some(t);
        }
    }
    unique_port(t, r, m, c)
}

/// `nf_nat_l4proto_unique_tuple`: a free port of the range for `t`.
fn unique_port(mut t: Tuple, r: &NatRange, m: Manip, c: &mut impl Chooser) -> Option<Tuple> {
    let (min, size): (u32, u32) = match t.proto {
        IPPROTO_ICMP => {
            if r.flags & range::PROTO_SPECIFIED == 0 {
                (0, 65536)
            } else {
                (u32::from(r.min_port), u32::from(r.max_port.saturating_sub(r.min_port)) + 1)
            }
        }
        IPPROTO_TCP | IPPROTO_UDP => {
            if r.flags & range::PROTO_SPECIFIED == 0 {
                // A destination port is never changed without a range; a clash is left to the
                // source binding (which moves the source port) or to the insertion.
                if m == Manip::Dst {
                    return Some(t);
                }
                // Keep privileged ports privileged (and below 512 below 512).
                match port_of(&t, m) {
                    p if p < 512 => (1, 511),
                    p if p < 1024 => (600, 424),
                    _ => (1024, 65536 - 1024),
                }
            } else {
                (u32::from(r.min_port), u32::from(r.max_port.saturating_sub(r.min_port)) + 1)
            }
        }
        // No ports: the address alone must do (a clash shows at the insertion).
        _ => return (m == Manip::Dst || !c.used(&t)).then_some(t),
    };
    // A random start, except for a destination port without --random (the kernel starts at
    // 0 there).
    let mut off = if r.flags & range::PROTO_OFFSET != 0 {
        // The packet's port, as an offset from the base (`NF_NAT_RANGE_PROTO_OFFSET`).
        u32::from(port_of(&t, m).wrapping_sub(r.base_port))
    } else if r.flags & range::PROTO_RANDOM_ALL != 0 || m != Manip::Dst {
        c.random()
    } else {
        0
    };
    let mut attempts = size.min(MAX_ATTEMPTS);
    loop {
        for _ in 0..attempts {
            set_port(&mut t, m, (min + off % size) as u16);
            if !c.used(&t) {
                return Some(t);
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < 16 {
            // nf_nat keeps the last candidate and lets the insertion clash; for a source
            // binding that means the packet is dropped, for a destination one the source
            // binding may still move the source port.
            return (m == Manip::Dst).then_some(t);
        }
        attempts /= 2;
        off = c.random();
    }
}

/// NETMAP's address: `addr`'s host part under the prefix of `r` (`netmap_tg4`).
pub fn netmap_addr(addr: u32, r: &NatRange) -> u32 {
    let mask = !(r.min_addr ^ r.max_addr);
    (addr & !mask) | (r.min_addr & mask)
}

/// What a packet of a translated flow must look like after the stage `m` in direction `dir`
/// (`nf_nat_packet`): `Some(target)` when this stage rewrites it, the target being the inverse
/// of the other direction's tuple. `status` holds the flow's SRC_NAT / DST_NAT bits.
pub fn packet_target(tuples: &[Tuple; 2], status: u16, dir: Dir, m: Manip) -> Option<Tuple> {
    use super::conntrack::status::{DST_NAT, SRC_NAT};
    // In the reply direction the stages undo the other translation.
    let bit = match (m, dir) {
        (Manip::Src, Dir::Original) | (Manip::Dst, Dir::Reply) => SRC_NAT,
        (Manip::Dst, Dir::Original) | (Manip::Src, Dir::Reply) => DST_NAT,
    };
    if status & bit == 0 {
        return None;
    }
    tuples.get(dir.other().index())?.invert()
}

/// Rewrites the `m` half of the packet in `pkt` (from its IPv4 header on; the bytes the
/// rewrite touches must be there) to `target`'s: the address with the header checksum, and
/// for a first fragment or whole packet the TCP/UDP port or ICMP echo id with the transport
/// checksum (`nf_nat_ipv4_manip_pkt`). `state` is the transport checksum's state. False when
/// the packet is too short to rewrite.
pub fn manip_packet(pkt: &mut [u8], target: &Tuple, m: Manip, state: FieldState) -> bool {
    let Some(&vihl) = pkt.first() else { return false };
    let hl = usize::from(vihl & 0x0f) * 4;
    if hl < 20 || pkt.len() < hl {
        return false;
    }
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff;
    let proto = pkt[9];
    let (aoff, new_addr) = match m {
        Manip::Src => (12, target.src),
        Manip::Dst => (16, target.dst),
    };
    let old_addr = u32::from_be_bytes([pkt[aoff], pkt[aoff + 1], pkt[aoff + 2], pkt[aoff + 3]]);
    // The whole transport message is here (an ICMP checksum of all-zero data needs it).
    let whole = pkt.len() >= usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if frag == 0 && !manip_l4(&mut pkt[hl..], proto, old_addr, new_addr, target, m, state, false, whole) {
        return false;
    }
    set_addr(pkt, aoff, old_addr, new_addr);
    true
}

/// Writes address `new` at `off` of an IPv4 header and updates its checksum.
fn set_addr(hdr: &mut [u8], off: usize, old: u32, new: u32) {
    if let Some(a) = hdr.get_mut(off..off + 4) {
        a.copy_from_slice(&new.to_be_bytes());
    }
    if let Some(c) = hdr.get_mut(10..12) {
        let check = checksum::update_u32(u16::from_be_bytes([c[0], c[1]]), old, new);
        c.copy_from_slice(&check.to_be_bytes());
    }
}

fn get16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// The transport part of a rewrite: `l4` from the transport header on. `quoted`: the header of
/// a packet quoted in an ICMP error, of which only the first 8 bytes are sure to be there;
/// its TCP checksum is then left alone when absent (`tcp_manip_pkt`'s 8-byte case).
#[allow(clippy::too_many_arguments)]
fn manip_l4(
    l4: &mut [u8],
    proto: u8,
    old_addr: u32,
    new_addr: u32,
    target: &Tuple,
    m: Manip,
    state: FieldState,
    quoted: bool,
    whole: bool,
) -> bool {
    let (poff, new_port) = match (proto, m) {
        (IPPROTO_ICMP, _) => (4, target.sport),
        (_, Manip::Src) => (0, target.sport),
        (_, Manip::Dst) => (2, target.dport),
    };
    match proto {
        IPPROTO_TCP => {
            let Some(old_port) = get16(l4, poff) else { return false };
            match get16(l4, 16) {
                Some(check) => {
                    let c = checksum::replace4(check, state, old_addr, new_addr, true);
                    let c = checksum::replace2(c, state, old_port, new_port, false);
                    put16(l4, 16, c);
                }
                None if quoted && l4.len() >= 8 => {}
                None => return false,
            }
            put16(l4, poff, new_port);
        }
        IPPROTO_UDP => {
            let (Some(old_port), Some(check)) = (get16(l4, poff), get16(l4, 6)) else { return false };
            let c = checksum::udp_update(check, state, |c| {
                let c = checksum::replace4(c, state, old_addr, new_addr, true);
                checksum::replace2(c, state, old_port, new_port, false)
            });
            put16(l4, 6, c);
            put16(l4, poff, new_port);
        }
        IPPROTO_ICMP => {
            // Only queries carry an id that NAT maps; errors are handled by `icmp_error`.
            let Some(&ty) = l4.first() else { return false };
            if !super::conntrack::tuple::icmp::is_error(ty) {
                let (Some(old_id), Some(check)) = (get16(l4, 4), get16(l4, 2)) else { return false };
                let mut c = checksum::update_u16(check, old_id, new_port);
                put16(l4, 4, new_port);
                // The incremental update gives 0x0000 for a message whose data is all zeros,
                // whose only valid checksum is 0xffff (RFC 1624's +0/-0).
                if c == 0 && whole && l4.iter().enumerate().all(|(i, b)| *b == 0 || i == 2 || i == 3) {
                    c = 0xffff;
                }
                put16(l4, 2, c);
            }
        }
        _ => {}
    }
    true
}

/// How many bytes of an ICMP error [`icmp_error`] needs (from its IPv4 header on): the
/// headers, the quoted IPv4 header with options and the quoted transport header up to a TCP
/// checksum. The rest of the message is not touched.
pub const ICMP_ERROR_BYTES: usize = 60 + 8 + 60 + 20;

/// `nf_nat_icmp_reply_translation` for an ICMP error `pkt` (from its IPv4 header on, at least
/// the headers; see [`ICMP_ERROR_BYTES`]) RELATED to a translated flow, going in direction
/// `dir` of that flow, at stage `m`. When this stage translates the flow in `dir`, the quoted
/// packet (which went the other way) is rewritten as it looked when it entered, its ICMP
/// checksum updated for the change, then the outer header rewritten like any packet of the
/// flow in `dir`. False when the error must be dropped (malformed, or a redirect about a
/// translated flow, which nf_nat drops).
pub fn icmp_error(pkt: &mut [u8], tuples: &[Tuple; 2], status: u16, dir: Dir, m: Manip) -> bool {
    use super::conntrack::status::{NAT_MASK, SRC_NAT_DONE, DST_NAT_DONE};
    let Some(&vihl) = pkt.first() else { return false };
    let hl = usize::from(vihl & 0x0f) * 4;
    if hl < 20 || pkt.len() < hl + 8 + 20 {
        return false;
    }
    if pkt.get(hl) == Some(&super::conntrack::tuple::icmp::REDIRECT) {
        let done = SRC_NAT_DONE | DST_NAT_DONE;
        if status & done != done || status & NAT_MASK != 0 {
            return false;
        }
    }
    // Nothing to do at this stage (the kernel returns before touching the packet).
    if packet_target(tuples, status, dir, m).is_none() {
        return true;
    }
    // The quoted packet went in the other direction: it is made to look as it did when it
    // entered (the other direction's tuple), by the opposite kind of rewrite, since the error
    // may not pass every hook (a locally generated one starts at OUTPUT).
    let inner_m = match m {
        Manip::Src => Manip::Dst,
        Manip::Dst => Manip::Src,
    };
    let Some(&inner_target) = tuples.get(dir.other().index()) else { return false };
    {
        let Some(icmp) = pkt.get_mut(hl..) else { return false };
        let Some(check) = get16(icmp, 2) else { return false };
        let Some(inner) = icmp.get_mut(8..) else { return false };
        let ihl = usize::from(inner.first().copied().unwrap_or(0) & 0x0f) * 4;
        if ihl < 20 || inner.len() < ihl + 8 {
            return false;
        }
        // The bytes the rewrite may change (quoted headers up to a TCP checksum), summed
        // before and after: the ICMP checksum follows incrementally (the quoted packet starts
        // at an even offset of the message).
        let span = inner.len().min(ihl + 20);
        let before = checksum::fold(checksum::add_bytes(0, inner.get(..span).unwrap_or(&[])));
        let proto = inner[9];
        let aoff = if inner_m == Manip::Src { 12 } else { 16 };
        let old = u32::from_be_bytes([inner[aoff], inner[aoff + 1], inner[aoff + 2], inner[aoff + 3]]);
        let new = if inner_m == Manip::Src { inner_target.src } else { inner_target.dst };
        // The quoted transport header: its checksum is updated as a full one when present.
        let (ih, il4) = inner.split_at_mut(ihl);
        if !manip_l4(il4, proto, old, new, &inner_target, inner_m, FieldState::Full, true, false) {
            return false;
        }
        set_addr(ih, aoff, old, new);
        let after = checksum::fold(checksum::add_bytes(0, inner.get(..span).unwrap_or(&[])));
        put16(icmp, 2, checksum::update_u16(check, before, after));
    }
    outer(pkt, tuples, status, dir, m)
}

fn outer(pkt: &mut [u8], tuples: &[Tuple; 2], status: u16, dir: Dir, m: Manip) -> bool {
    // The error's own header: only its address changes (it has no ports).
    let Some(t) = packet_target(tuples, status, dir, m) else { return true };
    let aoff = if m == Manip::Src { 12 } else { 16 };
    let Some(a) = pkt.get(aoff..aoff + 4) else { return false };
    let old = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
    let new = if m == Manip::Src { t.src } else { t.dst };
    set_addr(pkt, aoff, old, new);
    true
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(any(test, feature = "std"))]
pub mod pktcheck;
