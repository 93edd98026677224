// SPDX-License-Identifier: GPL-2.0
//! NAT's rewriting of one packet: `manip_packet`, `icmp_error`, `SeqAdjust::adjust`,
//! `mangle_tcp` and `nat_ftp` on arbitrary bytes. The input is
//! `[op] [status: 2] [material: 24] [extra] [packet...]`:
//!
//! * `op` bits 0-1: the operation (0 `manip_packet`, 1 `icmp_error`, 2 `SeqAdjust::adjust` on
//!   the transport part, 3 `mangle_tcp` then `nat_ftp`); bit 2: the destination stage (else
//!   the source one); bit 3: the reply direction; bit 4: `CHECKSUM_PARTIAL`; bit 5: make the
//!   packet's checksums right first (IPv4 header; TCP, UDP or ICMP over everything after the
//!   header; an ICMP error's quoted header); bit 6: give only the bytes the glue makes
//!   writable; bit 7: `manip_packet`'s target is the flow's (`packet_target`), else tuple A;
//!   with bit 5, a UDP checksum is made 0.
//! * `material`: two tuples A and B (the flow's original and reply: source, destination,
//!   source port, destination port, 12 bytes each; their protocol is the packet's, or the
//!   quoted packet's), or the three words of a `SeqAdjust`, or `mangle_tcp`'s parameters.
//!
//! Asserted: no panic; a checksum that was right before a rewrite still is (the IPv4
//! header's; a TCP/UDP one equal to the one computed from scratch stays equal to it for the
//! new pseudo-header, a UDP 0 stays 0, a partial one stays the pseudo-header sum; an ICMP
//! message's and a quoted header's still verify); the rewritten address and port are the
//! target's; a later fragment's payload is not touched; a refused `SeqAdjust::adjust` or
//! `mangle_tcp` writes nothing. Left out: an ICMP message rewritten to all zeros but its
//! checksum when the rewrite does not see the whole message (0x0000 where only 0xffff
//! verifies, as with the kernel's incremental update).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnf_engine::checksum::{verify, FieldState};
use rnf_engine::conntrack::tuple::icmp;
use rnf_engine::conntrack::{Dir, Tuple};
use rnf_engine::nat::seqadj::SeqAdjust;
use rnf_engine::nat::pktcheck::{fixup, hdr_len, ip_check, l4_full, l4_off, l4_partial, rd16, rd32, zero_icmp};
use rnf_engine::nat::{ftp, icmp_error, manip_packet, packet_target, Manip, ICMP_ERROR_BYTES};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn tuple(m: &[u8], proto: u8) -> Tuple {
    Tuple { src: rd32(m, 0), dst: rd32(m, 4), sport: rd16(m, 8), dport: rd16(m, 10), proto }
}

fn manip(pkt: &[u8], op: u8, status: u16, material: &[u8]) {
    let m = if op & 4 != 0 { Manip::Dst } else { Manip::Src };
    let dir = if op & 8 != 0 { Dir::Reply } else { Dir::Original };
    let state = if op & 16 != 0 { FieldState::Partial } else { FieldState::Full };
    let proto = pkt.get(9).copied().unwrap_or(0);
    let tuples = [tuple(&material[..12], proto), tuple(&material[12..], proto)];
    let target = if op & 128 != 0 {
        match packet_target(&tuples, status, dir, m) {
            Some(t) => t,
            None => return,
        }
    } else {
        tuples[0]
    };
    let hl = usize::from(pkt.first().copied().unwrap_or(0) & 0x0f) * 4;
    let frag = pkt.get(6..8).map_or(0, |f| u16::from_be_bytes([f[0], f[1]]));
    let mut x = pkt.to_vec();
    let n = if op & 64 != 0 {
        // The glue's view: the IP header and the transport header up to its checksum.
        let need = match proto {
            _ if frag & 0x1fff != 0 => 0,
            TCP => 18,
            UDP | ICMP => 8,
            _ => 0,
        };
        x.len().min(hl + need)
    } else {
        x.len()
    };
    if !manip_packet(&mut x[..n], &target, m, state) {
        return;
    }
    let hl = hdr_len(pkt).expect("a rewrite needs a header");
    if verify(&pkt[..hl]) {
        assert!(verify(&x[..hl]), "header checksum");
    }
    if rd16(pkt, 10) == ip_check(&pkt[..hl]) {
        assert_eq!(rd16(&x, 10), ip_check(&x[..hl]), "header checksum from scratch");
    }
    let (aoff, want) = if m == Manip::Src { (12, target.src) } else { (16, target.dst) };
    assert_eq!(rd32(&x, aoff), want, "address");
    let (lb, lx) = (&pkt[hl..], &x[hl..]);
    if frag & 0x1fff != 0 {
        assert_eq!(lb, lx, "a later fragment's payload");
        return;
    }
    let whole = frag & 0x2000 == 0;
    let (s0, d0, s1, d1) = (rd32(pkt, 12), rd32(pkt, 16), rd32(&x, 12), rd32(&x, 16));
    match proto {
        TCP | UDP => {
            let (poff, port) = if m == Manip::Src { (0, target.sport) } else { (2, target.dport) };
            assert_eq!(rd16(lx, poff), port, "port");
            let coff = l4_off(proto);
            let (fb, fx) = (rd16(lb, coff), rd16(lx, coff));
            match state {
                FieldState::Full if proto == UDP && fb == 0 => assert_eq!(fx, 0, "UDP without checksum"),
                FieldState::Full if whole && fb == l4_full(s0, d0, proto, lb) => {
                    assert_eq!(fx, l4_full(s1, d1, proto, lx), "checksum from scratch")
                }
                FieldState::Partial if fb == l4_partial(s0, d0, proto, lb.len()) => {
                    assert_eq!(fx, l4_partial(s1, d1, proto, lx.len()), "partial checksum")
                }
                _ => {}
            }
        }
        ICMP if !icmp::is_error(lb[0]) => {
            assert_eq!(rd16(lx, 4), target.sport, "ICMP id");
            if whole && verify(lb) && !zero_icmp(lx) {
                assert!(verify(lx), "ICMP checksum");
            }
        }
        _ => assert_eq!(lb, lx, "transport bytes"),
    }
}

fn error(pkt: &[u8], op: u8, status: u16, material: &[u8]) {
    let m = if op & 4 != 0 { Manip::Dst } else { Manip::Src };
    let dir = if op & 8 != 0 { Dir::Reply } else { Dir::Original };
    let hl = usize::from(pkt.first().copied().unwrap_or(0) & 0x0f) * 4;
    // The flow is the quoted packet's.
    let proto = pkt.get(hl + 8 + 9).copied().unwrap_or(0);
    let tuples = [tuple(&material[..12], proto), tuple(&material[12..], proto)];
    let mut y = pkt.to_vec();
    let n = if op & 64 != 0 { y.len().min(hl + 8 + 60 + 20).min(ICMP_ERROR_BYTES) } else { y.len() };
    if !icmp_error(&mut y[..n], &tuples, status, dir, m) {
        return;
    }
    let hl = hdr_len(pkt).expect("an error needs a header");
    let Some(target) = packet_target(&tuples, status, dir, m) else {
        assert_eq!(pkt, &y[..], "nothing to do, but written");
        return;
    };
    if verify(&pkt[..hl]) {
        assert!(verify(&y[..hl]), "header checksum");
    }
    let (aoff, want) = if m == Manip::Src { (12, target.src) } else { (16, target.dst) };
    assert_eq!(rd32(&y, aoff), want, "outer address");
    if verify(&pkt[hl..]) {
        assert!(verify(&y[hl..]), "ICMP checksum");
    }
    let ihl = hdr_len(&pkt[hl + 8..]).expect("a quoted header");
    let (qb, qy) = (&pkt[hl + 8..], &y[hl + 8..]);
    if verify(&qb[..ihl]) {
        assert!(verify(&qy[..ihl]), "quoted header checksum");
    }
    let it = tuples[dir.other().index()];
    let (iaoff, iwant) = if m == Manip::Src { (16, it.dst) } else { (12, it.src) };
    assert_eq!(rd32(qy, iaoff), iwant, "quoted address");
    // The quoted transport header: a checksum right over the quoted bytes stays right.
    let (lb, ly) = (&qb[ihl..], &qy[ihl..]);
    let (s0, d0, s1, d1) = (rd32(qb, 12), rd32(qb, 16), rd32(qy, 12), rd32(qy, 16));
    match proto {
        TCP | UDP if lb.len() >= l4_off(proto) + 2 => {
            let coff = l4_off(proto);
            let (fb, fy) = (rd16(lb, coff), rd16(ly, coff));
            if proto == UDP && fb == 0 {
                assert_eq!(fy, 0, "quoted UDP without checksum");
            } else if fb == l4_full(s0, d0, proto, lb) {
                assert_eq!(fy, l4_full(s1, d1, proto, ly), "quoted checksum from scratch");
            }
        }
        ICMP if !icmp::is_error(lb[0]) && verify(lb) && !zero_icmp(ly) => assert!(verify(ly), "quoted ICMP checksum"),
        _ => {}
    }
}

fn seqadj(pkt: &[u8], op: u8, material: &[u8]) {
    let dir = if op & 8 != 0 { Dir::Reply } else { Dir::Original };
    let state = if op & 16 != 0 { FieldState::Partial } else { FieldState::Full };
    let w = |i: usize| u64::from_be_bytes(material[8 * i..8 * i + 8].try_into().unwrap());
    let adj = SeqAdjust::from_words([w(0), w(1), w(2)]);
    // The transport part of an IPv4 packet (addresses from its header), or all of the bytes.
    let (start, src, dst) = match hdr_len(pkt) {
        Some(hl) if pkt[0] >> 4 == 4 => (hl, rd32(pkt, 12), rd32(pkt, 16)),
        _ => (0, 0x0a00_0001, 0x0a00_0202),
    };
    let mut z = pkt.to_vec();
    let canon = z.len() >= start + 18 && rd16(&z, start + 16) == l4_full(src, dst, TCP, &z[start..]);
    let n = if op & 64 != 0 {
        // The glue's view: the header with its options.
        let doff = z.get(start + 12).map_or(20, |b| usize::from(b >> 4) * 4);
        z.len().min(start + doff.max(20))
    } else {
        z.len()
    };
    if !adj.adjust(&mut z[start..n], dir, state) {
        assert_eq!(pkt, &z[..], "refused, but written");
        return;
    }
    match state {
        FieldState::Full if canon => {
            assert_eq!(rd16(&z, start + 16), l4_full(src, dst, TCP, &z[start..]), "seqadj checksum from scratch")
        }
        FieldState::Partial => assert_eq!(pkt[start + 16..start + 18], z[start + 16..start + 18], "partial checksum"),
        _ => {}
    }
    let seq = rd32(pkt, start + 4);
    assert_eq!(rd32(&z, start + 4), seq.wrapping_add(adj.offset(dir, seq) as u32), "SEQ");
}

fn mangle(pkt: &[u8], op: u8, material: &[u8], extra: u8) {
    let dir = if op & 8 != 0 { Dir::Reply } else { Dir::Original };
    let state = if op & 16 != 0 { FieldState::Partial } else { FieldState::Full };
    let off = usize::from(extra);
    let mlen = usize::from(material[0] % 32);
    let rep = &material[3..3 + usize::from(material[1] % 22)];
    let room = usize::from(material[2] % 48);
    let mut w = pkt.to_vec();
    w.resize(pkt.len() + room, 0xee);
    let len = if op & 64 != 0 { pkt.len().saturating_sub(usize::from(material[2] % 8)) } else { pkt.len() };
    let before = w.clone();
    match ftp::mangle_tcp(&mut w, len, off, mlen, rep, state) {
        None => assert_eq!(w, before, "refused, but written"),
        Some(mg) => {
            let hl = hdr_len(&w).expect("a mangled packet has a header");
            assert!(verify(&w[..hl]), "header checksum");
            assert_eq!(usize::from(rd16(&w, 2)), mg.len, "total length");
            assert_eq!(mg.len, len - mlen + rep.len(), "length");
            assert_eq!(w[mg.len.max(len)..], before[mg.len.max(len)..], "past the end");
            let (s, d) = (rd32(&w, 12), rd32(&w, 16));
            let field = rd16(&w, hl + 16);
            match state {
                FieldState::Full => assert_eq!(field, l4_full(s, d, TCP, &w[hl..mg.len]), "checksum from scratch"),
                FieldState::Partial => assert_eq!(field, l4_partial(s, d, TCP, mg.len - hl), "partial checksum"),
            }
        }
    }
    // The whole helper on the same packet, the flow's tuples from the material.
    let tuples = [tuple(&material[..12], TCP), tuple(&material[12..], TCP)];
    let mut v = pkt.to_vec();
    v.resize(pkt.len() + ftp::TEXT_MAX, 0xee);
    let before = v.clone();
    let mut x = u32::from(extra) | 1;
    let k = u16::from(material[5] % 4);
    let out = ftp::nat_ftp(
        &mut v,
        pkt.len(),
        &tuples,
        dir,
        state,
        || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        },
        |p| k != 0 && p % k == 0,
    );
    match out {
        ftp::Outcome::Rewritten(r) => {
            let n = r.mangled.len;
            let hl = hdr_len(&v).expect("a rewritten packet has a header");
            assert!(verify(&v[..hl]), "FTP: header checksum");
            let (s, d) = (rd32(&v, 12), rd32(&v, 16));
            let field = rd16(&v, hl + 16);
            match state {
                FieldState::Full => assert_eq!(field, l4_full(s, d, TCP, &v[hl..n]), "FTP: checksum from scratch"),
                FieldState::Partial => assert_eq!(field, l4_partial(s, d, TCP, n - hl), "FTP: partial checksum"),
            }
        }
        ftp::Outcome::Untouched | ftp::Outcome::Drop => assert_eq!(v, before, "FTP: not rewritten, but written"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [op, s0, s1, rest @ ..] = data else { return };
    if rest.len() < 25 {
        return;
    }
    let (material, rest) = rest.split_at(24);
    let (extra, pkt) = (rest[0], &rest[1..]);
    let status = u16::from_be_bytes([*s0, *s1]);
    let mut pkt = pkt.to_vec();
    if op & 32 != 0 {
        fixup(&mut pkt, op & 128 != 0);
    }
    match op & 3 {
        0 => manip(&pkt, *op, status, material),
        1 => error(&pkt, *op, status, material),
        2 => seqadj(&pkt, *op, material),
        _ => mangle(&pkt, *op, material, extra),
    }
});
