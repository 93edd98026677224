// SPDX-License-Identifier: GPL-2.0

//! Bytes and checksums computed from scratch, for the NAT fuzzers (the host test
//! `nat::fuzz_tests` and the libFuzzer target `nat`): what a rewrite must agree with. Host
//! builds only: the module never mounts this file. Indexing panics on short input, as a test
//! wants.

use super::super::checksum::{self, fold, pseudo_header};
use super::super::conntrack::tuple::icmp;
use super::super::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

/// A big-endian u16 at `o`.
pub fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

/// A big-endian u32 at `o`.
pub fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Writes a big-endian u16 at `o`.
pub fn wr16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_be_bytes());
}

/// The IPv4 header length of `b` when it is at least 20 and `b` holds that much.
pub fn hdr_len(b: &[u8]) -> Option<usize> {
    let hl = usize::from(*b.first()? & 0x0f) * 4;
    (hl >= 20 && b.len() >= hl).then_some(hl)
}

/// The header checksum of the IPv4 header `h`, from scratch.
pub fn ip_check(h: &[u8]) -> u16 {
    !fold(checksum::add_bytes(checksum::add_bytes(0, &h[..10]), &h[12..]))
}

/// Where a TCP or UDP checksum field is.
pub fn l4_off(proto: u8) -> usize {
    if proto == IPPROTO_TCP {
        16
    } else {
        6
    }
}

/// The checksum field of the TCP or UDP segment `seg` from `src` to `dst`, from scratch (the
/// field itself counted as 0), as a sender writes it: a UDP sum of 0 is sent as 0xffff.
pub fn l4_full(src: u32, dst: u32, proto: u8, seg: &[u8]) -> u16 {
    let off = l4_off(proto);
    let acc = pseudo_header(src, dst, proto, seg.len() as u16);
    // The field is at an even offset: the two halves sum as the whole would.
    let c = !fold(checksum::add_bytes(checksum::add_bytes(acc, &seg[..off]), &seg[off + 2..]));
    if proto == IPPROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

/// What a `CHECKSUM_PARTIAL` packet's TCP/UDP checksum field holds: the folded pseudo-header
/// sum.
pub fn l4_partial(src: u32, dst: u32, proto: u8, len: usize) -> u16 {
    fold(pseudo_header(src, dst, proto, len as u16))
}

/// An ICMP message that is all zeros but its checksum: its checksum must be 0xffff, and an
/// incremental update that does not see the whole message gives 0x0000 (as the kernel's
/// `icmp_manip_pkt`).
pub fn zero_icmp(m: &[u8]) -> bool {
    m.iter().enumerate().all(|(i, b)| *b == 0 || i == 2 || i == 3)
}

/// Makes the checksums of whatever `b` holds right as far as its headers can be read: the
/// IPv4 header's; for an unfragmented TCP, UDP (0 with `udp_zero`) or ICMP packet the
/// transport one over everything after the header, an ICMP error's quoted header's first.
pub fn fixup(b: &mut [u8], udp_zero: bool) {
    let Some(hl) = hdr_len(b) else { return };
    let c = ip_check(&b[..hl]);
    wr16(b, 10, c);
    if rd16(b, 6) & 0x3fff != 0 {
        return;
    }
    let (src, dst, proto) = (rd32(b, 12), rd32(b, 16), b[9]);
    let l4 = &mut b[hl..];
    match proto {
        IPPROTO_TCP | IPPROTO_UDP if l4.len() >= l4_off(proto) + 2 => {
            let c = if proto == IPPROTO_UDP && udp_zero { 0 } else { l4_full(src, dst, proto, l4) };
            wr16(l4, l4_off(proto), c);
        }
        IPPROTO_ICMP if l4.len() >= 4 => {
            if icmp::is_error(l4[0]) {
                if let Some(ihl) = l4.get(8..).and_then(hdr_len) {
                    let c = ip_check(&l4[8..8 + ihl]);
                    wr16(l4, 8 + 10, c);
                }
            }
            wr16(l4, 2, 0);
            let c = checksum::checksum(l4);
            wr16(l4, 2, c);
        }
        _ => {}
    }
}
