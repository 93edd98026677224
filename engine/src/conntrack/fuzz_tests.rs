// SPDX-License-Identifier: GPL-2.0

//! Seeded random tests of connection tracking (host only, deterministic: [`Rng`] with fixed
//! seeds).
//!
//! * Random and malformed IPv4 packets (random bytes, truncated headers, bad IHL and data
//!   offsets, random TCP flags, sequence numbers, windows and options, ICMP errors quoting
//!   known flows or garbage) go through the glue's header checks, [`tuple::parse`] and the
//!   table's track and confirm path, with a small table, a moving clock, collector steps,
//!   deletes, flushes and expiry. After every packet: the entries in use never exceed the
//!   maximum and are exactly the flows the test was given, every confirmed, unexpired flow is
//!   found from both directions (and by a walk), an unconfirmed one is never found; at the
//!   end, once everything is flushed or expired and collected, the table is empty (every
//!   chain head is its bucket's marker) and all its entries can be taken again.
//! * Random TCP conversations through [`tcp::packet`] (and the table): a well-behaved one
//!   (random initial sequence numbers, windows, scaling, SACK, data both ways, retransmits,
//!   orderly close) is accepted throughout; segments far outside the window in either
//!   direction, and ACKs of data never sent, are not accepted and change nothing; random
//!   segments in between never break the tracker's own invariants.

extern crate std;

use core::sync::atomic::Ordering::Relaxed;
use std::vec;
use std::vec::Vec;

use super::super::packet::{Ipv4Header, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
use super::super::rule::ctstate;
use super::super::testrng::Rng;
use super::table::{self, Handle, PacketCt, Track, HELPER_FTP};
use super::tcp::{self, Outcome, Segment, TcpConn, TcpState};
use super::tuple::{self, icmp, Parsed, Tuple};
use super::{status, Dir};

use super::table::tests::Mem;

const HZ: u64 = 100;
/// The chain end marker of the table (`table::NULLS`).
const NULLS: u32 = 1 << 31;

fn count(m: &Mem) -> usize {
    m.shared.count.load(Relaxed) as usize
}

// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;

/// A TCP segment: header (with `opts`, padded) and `payload` zero bytes.
#[allow(clippy::too_many_arguments)]
fn tcp_bytes(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, win: u16, opts: &[u8], payload: usize) -> Vec<u8> {
    let opts = &opts[..opts.len().min(40)];
    let hl = 20 + opts.len().div_ceil(4) * 4;
    let mut v = vec![0u8; hl + payload];
    v[0..2].copy_from_slice(&sport.to_be_bytes());
    v[2..4].copy_from_slice(&dport.to_be_bytes());
    v[4..8].copy_from_slice(&seq.to_be_bytes());
    v[8..12].copy_from_slice(&ack.to_be_bytes());
    v[12] = ((hl / 4) as u8) << 4;
    v[13] = flags;
    v[14..16].copy_from_slice(&win.to_be_bytes());
    v[20..20 + opts.len()].copy_from_slice(opts);
    v
}

/// Random TCP options: well-formed ones, out-of-range scales, SACK blocks, and garbage.
fn random_opts(r: &mut Rng) -> Vec<u8> {
    let mut o = Vec::new();
    for _ in 0..r.below(4) {
        match r.below(7) {
            0 => o.extend_from_slice(&[3, 3, r.below(20) as u8]),
            1 => o.extend_from_slice(&[4, 2]),
            2 => {
                let n = 1 + r.below(4) as u8;
                o.extend_from_slice(&[5, 2 + 8 * n]);
                for _ in 0..2 * n {
                    o.extend_from_slice(&(r.next() as u32).to_be_bytes());
                }
            }
            3 => {
                o.extend_from_slice(&[8, 10]);
                o.extend_from_slice(&r.next().to_be_bytes());
            }
            4 => o.push(1),
            5 => o.push(0),
            _ => {
                for _ in 0..1 + r.below(8) {
                    o.push(r.next() as u8);
                }
            }
        }
    }
    o.truncate(40);
    o
}

const ADDRS: [u32; 4] = [0x0a00_0001, 0x0a00_0002, 0x0a00_0003, 0xc0a8_0101];
const PORTS: [u16; 6] = [0, 21, 53, 1024, 40000, 65535];
const SEQS: [u32; 3] = [0, 0x7fff_0000, 0xffff_0000];

fn addr(r: &mut Rng) -> u32 {
    if r.below(32) == 0 {
        r.next() as u32
    } else {
        ADDRS[r.index(ADDRS.len())]
    }
}

fn port(r: &mut Rng) -> u16 {
    if r.below(16) == 0 {
        r.next() as u16
    } else {
        PORTS[r.index(PORTS.len())]
    }
}

/// A sequence or ACK number: anything, or near a few fixed points (so segments of different
/// packets often fall into each other's windows).
fn seqno(r: &mut Rng) -> u32 {
    match r.below(4) {
        0 => r.next() as u32,
        k => SEQS[k as usize - 1].wrapping_add(r.below(200_000) as u32),
    }
}

fn random_bytes(r: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| r.next() as u8).collect()
}

/// `min` and up to `spread - 1` more random bytes.
fn random_bytes_upto(r: &mut Rng, min: usize, spread: usize) -> Vec<u8> {
    let n = min + r.index(spread);
    random_bytes(r, n)
}

/// The transport header and payload of a packet of `proto` with the addresses and ports
/// (ICMP: id and type/code) of `t`.
fn l4_for(r: &mut Rng, t: &Tuple) -> Vec<u8> {
    match t.proto {
        IPPROTO_TCP => {
            const FLAGS: [u8; 11] =
                [SYN, SYN | ACK, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN | URG, ACK | URG, FIN | ACK | URG, ACK | ECE];
            let flags = if r.below(6) == 0 { r.next() as u8 } else { FLAGS[r.index(FLAGS.len())] };
            let opts = if r.below(3) == 0 { random_opts(r) } else { Vec::new() };
            let payload = if r.below(3) == 0 { r.index(100) } else { 0 };
            let win = if r.below(10) == 0 { 0 } else { r.next() as u16 };
            let (seq, ack) = (seqno(r), seqno(r));
            let mut v = tcp_bytes(t.sport, t.dport, seq, ack, flags, win, &opts, payload);
            if r.below(12) == 0 {
                v[12] = (r.next() as u8 & 0xf0) | (v[12] & 0x0f);
            }
            v
        }
        IPPROTO_UDP => {
            let mut v = random_bytes_upto(r, 8, 32);
            v[0..2].copy_from_slice(&t.sport.to_be_bytes());
            v[2..4].copy_from_slice(&t.dport.to_be_bytes());
            v
        }
        IPPROTO_ICMP => {
            let mut v = random_bytes_upto(r, 8, 32);
            v[0..2].copy_from_slice(&t.dport.to_be_bytes());
            v[4..6].copy_from_slice(&t.sport.to_be_bytes());
            v
        }
        _ => random_bytes_upto(r, 0, 40),
    }
}

/// An IPv4 header for `src`, `dst`, `proto` followed by `l4`, sometimes with options, a
/// fragment offset, a wrong version, IHL or total length.
fn ipv4(r: &mut Rng, src: u32, dst: u32, proto: u8, l4: &[u8]) -> Vec<u8> {
    let opt_words = if r.below(8) == 0 { r.index(11) } else { 0 };
    let hl = 20 + 4 * opt_words;
    let mut v = random_bytes(r, hl);
    v[0] = 0x40 | (hl / 4) as u8;
    let total = (hl + l4.len()) as u16;
    v[2..4].copy_from_slice(&total.to_be_bytes());
    let frag: u16 = match r.below(16) {
        0 => r.next() as u16,
        1 => 0x2000,
        _ => 0x4000,
    };
    v[6..8].copy_from_slice(&frag.to_be_bytes());
    v[9] = proto;
    v[12..16].copy_from_slice(&src.to_be_bytes());
    v[16..20].copy_from_slice(&dst.to_be_bytes());
    v.extend_from_slice(l4);
    match r.below(24) {
        0 => v[0] = r.next() as u8,
        1 => v[0] = 0x40 | (r.next() as u8 & 0x0f),
        2 => v[2..4].copy_from_slice(&(r.next() as u16).to_be_bytes()),
        _ => {}
    }
    v
}

/// A random tuple from the small pools (so flows meet each other often).
fn random_tuple(r: &mut Rng) -> Tuple {
    let proto = match r.below(16) {
        0..=5 => IPPROTO_TCP,
        6..=9 => IPPROTO_UDP,
        10..=13 => IPPROTO_ICMP,
        14 => 47,
        _ => r.next() as u8,
    };
    let (sport, dport) = if proto == IPPROTO_ICMP {
        const TYPES: [u8; 9] = [0, 8, 13, 14, 15, 16, 17, 18, 42];
        let ty = if r.below(16) == 0 { r.next() as u8 } else { TYPES[r.index(TYPES.len())] };
        let code = if r.below(8) == 0 { r.next() as u8 } else { 0 };
        (r.below(4) as u16, u16::from(ty) << 8 | u16::from(code))
    } else {
        (port(r), port(r))
    };
    Tuple { src: addr(r), dst: addr(r), sport, dport, proto }
}

/// An ICMP error quoting a packet of tuple `t` (or garbage), possibly truncated or with a bad
/// inner header.
fn icmp_error(r: &mut Rng, t: &Tuple) -> Vec<u8> {
    const ERRORS: [u8; 5] = [icmp::DEST_UNREACH, icmp::SOURCE_QUENCH, icmp::REDIRECT, icmp::TIME_EXCEEDED, icmp::PARAMETERPROB];
    let mut v = vec![ERRORS[r.index(ERRORS.len())], r.below(16) as u8, 0, 0, 0, 0, 0, 0];
    let mut inner_l4 = if t.proto == IPPROTO_ICMP && r.below(4) == 0 {
        // An error about an error.
        let mut e = random_bytes(r, 8);
        e[0] = icmp::DEST_UNREACH;
        e
    } else {
        l4_for(r, t)
    };
    inner_l4.truncate(8 + r.index(16));
    let mut inner = ipv4(r, t.src, t.dst, t.proto, &inner_l4);
    if r.below(6) == 0 {
        inner.truncate(r.index(inner.len() + 1));
    }
    v.extend_from_slice(&inner);
    v
}

/// Payloads for the FTP helper: announcements (valid and not) and garbage.
fn ftp_payload(r: &mut Rng, dir: Dir, orig: &Tuple) -> Vec<u8> {
    let (a, p) = match dir {
        Dir::Original => (orig.src, PORTS[r.index(PORTS.len())]),
        Dir::Reply => (orig.dst, PORTS[r.index(PORTS.len())]),
    };
    let a = if r.below(4) == 0 { addr(r) } else { a };
    let [a0, a1, a2, a3] = a.to_be_bytes();
    let (p1, p2) = (p >> 8, p & 0xff);
    let s = match r.below(5) {
        0 => std::format!("PORT {a0},{a1},{a2},{a3},{p1},{p2}\r\n"),
        1 => std::format!("EPRT |1|{a0}.{a1}.{a2}.{a3}|{p}|\r\n"),
        2 => std::format!("227 Entering Passive Mode ({a0},{a1},{a2},{a3},{p1},{p2}).\r\n"),
        3 => std::format!("229 Entering Extended Passive Mode (|||{p}|)\r\n"),
        _ => return random_bytes_upto(r, 0, 64),
    };
    let mut b = s.into_bytes();
    if r.below(4) == 0 && !b.is_empty() {
        let i = r.index(b.len());
        b[i] = r.next() as u8;
    }
    b
}

/// One random packet: random bytes, or an IPv4 packet for a random tuple or for one of a
/// known flow (either direction), or an ICMP error about one.
fn random_packet(r: &mut Rng, known: &[Tuple]) -> Vec<u8> {
    let pick = |r: &mut Rng| {
        if !known.is_empty() && r.below(3) != 0 {
            known[r.index(known.len())]
        } else {
            random_tuple(r)
        }
    };
    let mut pkt = match r.below(20) {
        0 => return random_bytes_upto(r, 0, 80),
        1..=3 => {
            let t = pick(r);
            let e = icmp_error(r, &t);
            // The error comes from the far end (or a router) back to the sender.
            let src = if r.below(2) == 0 { t.dst } else { addr(r) };
            ipv4(r, src, t.src, IPPROTO_ICMP, &e)
        }
        _ => {
            let t = pick(r);
            let l4 = l4_for(r, &t);
            ipv4(r, t.src, t.dst, t.proto, &l4)
        }
    };
    if r.below(16) == 0 {
        pkt.truncate(r.index(pkt.len() + 1));
    }
    pkt
}

/// What the glue does with a packet before the table sees it (`rust_nf/conntrack.rs`):
/// `None` for a header nf_conntrack cannot read.
fn ct_packet(data: &[u8], helper: u8, odd_len: Option<u32>) -> Option<PacketCt<'_>> {
    let ip = Ipv4Header::parse_any(data).ok()?;
    let hl = ip.header_len;
    if data.first().is_some_and(|b| b >> 4 != 4) || hl < 20 || data.len() < hl {
        return None;
    }
    let l4 = data.get(hl..).unwrap_or(&[]);
    let parsed = tuple::parse(ip.src, ip.dst, ip.protocol, ip.frag_offset, l4);
    let l4_len = odd_len.unwrap_or_else(|| u32::from(ip.total_len).saturating_sub(hl as u32));
    Some(PacketCt { parsed, helper, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: data.len() as u32, l4_len })
}

/// The table's invariants at `now`; `known` is every flow the table made (pruned here to the
/// ones still there).
fn check(m: &Mem, known: &mut Vec<Handle>, now: u64) {
    let t = m.table();
    let count = count(&m);
    assert!(count <= m.entries.len(), "{count} entries in use, maximum {}", m.entries.len());
    known.retain(|h| t.get(*h).is_some());
    assert_eq!(count, known.len(), "the entries in use are the flows the table made");
    let mut live = Vec::new();
    for &h in known.iter() {
        let s = t.snapshot(h).expect("a flow still in the table reads");
        let confirmed = s.status & status::CONFIRMED != 0;
        if confirmed && !table::expired(s.expires, now) {
            live.push(h);
            for d in [Dir::Original, Dir::Reply] {
                let got = t.lookup(&s.tuple[d.index()], now);
                if s.tuple[0] == s.tuple[1] {
                    // Both directions the same (a flow to itself): either node answers.
                    assert_eq!(got.map(|g| g.0), Some(h), "{s:?}");
                } else {
                    assert_eq!(got, Some((h, d)), "confirmed flow {h:?} from {d:?}: {s:?}");
                }
            }
        } else if !confirmed {
            for d in 0..2 {
                let got = t.lookup(&s.tuple[d], now);
                assert!(got.is_none_or(|g| g.0 != h), "an unconfirmed flow is found: {s:?}");
            }
        }
    }
    let mut out = [Handle { idx: 0, gen: 0 }; 256];
    let (n, more) = t.walk(0, now, &mut out);
    assert!(more.is_none());
    let mut walked = out[..n].to_vec();
    walked.sort_by_key(|h| h.idx);
    live.sort_by_key(|h| h.idx);
    assert_eq!(walked, live, "a walk lists the confirmed, unexpired flows");
}

/// Frees everything (flush, or expiry, or both) and checks the table is empty and whole.
fn empty_and_refill(m: &Mem, known: &mut Vec<Handle>, now: &mut u64, flush: bool) {
    let t = m.table();
    let n = m.entries.len() as u32;
    if flush {
        t.flush(0);
        // What flush leaves are unconfirmed flows: they go after UNCONFIRMED_SECS.
        *now = now.wrapping_add(u64::from(table::UNCONFIRMED_SECS) * HZ + 1);
    } else {
        // Longer than any timeout (TCP ESTABLISHED: 5 days).
        *now = now.wrapping_add(6 * 24 * 3600 * HZ);
    }
    t.gc_step(*now, n);
    assert_eq!(count(&m), 0, "everything freed (flush: {flush})");
    check(m, known, *now);
    assert!(known.is_empty());
    for (i, b) in m.buckets.iter().enumerate() {
        assert_eq!(b.load(Relaxed), NULLS | i as u32, "chain {i} is empty");
    }
    // Every entry is on the free list: the table fills up again without evicting.
    let drops = m.shared.stats.early_drop.load(Relaxed);
    for i in 0..n {
        let udp = udp_from(1000 + i as u16, 53);
        let p = PacketCt { parsed: tuple::parse(ADDRS[0], ADDRS[1], IPPROTO_UDP, 0, &udp), helper: 0, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: 28, l4_len: 8 };
        let Track::Flow { h, new: true, .. } = t.track(&p, *now) else { panic!("flow {i} of {n}") };
        t.confirm(h, *now).unwrap();
        known.push(h);
    }
    assert_eq!(m.shared.stats.early_drop.load(Relaxed), drops);
    assert_eq!(count(&m), n as usize);
    check(m, known, *now);
    assert_eq!(t.flush(0), n);
    check(m, known, *now);
    assert_eq!(count(&m), 0);
}

fn udp_from(sport: u16, dport: u16) -> [u8; 8] {
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp
}

/// Empties the table, then fills it with ASSURED flows (UDP streams: a reply, then a packet
/// after two seconds): a new flow then finds nothing to evict and its packet is dropped.
fn fill_assured(m: &Mem, known: &mut Vec<Handle>, now: &mut u64) {
    let t = m.table();
    let n = m.entries.len();
    t.flush(0);
    *now = now.wrapping_add(u64::from(table::UNCONFIRMED_SECS) * HZ + 1);
    t.gc_step(*now, n as u32);
    check(m, known, *now);
    let (c, s) = (0x0a63_0001, 0x0a63_0002);
    let pkt = |src: u32, dst: u32, l4: &[u8; 8], now: u64| {
        let p = PacketCt { parsed: tuple::parse(src, dst, IPPROTO_UDP, 0, l4), helper: 0, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: 28, l4_len: 8 };
        t.track(&p, now)
    };
    for i in 0..n as u16 {
        let Track::Flow { h, new: true, .. } = pkt(c, s, &udp_from(2000 + i, 53), *now) else { panic!() };
        t.confirm(h, *now).unwrap();
        known.push(h);
        let r = pkt(s, c, &udp_from(53, 2000 + i), *now);
        assert!(matches!(r, Track::Flow { h: h2, dir: Dir::Reply, new: false, .. } if h2 == h), "{r:?}");
    }
    *now = now.wrapping_add(3 * HZ);
    for i in 0..n as u16 {
        assert!(matches!(pkt(c, s, &udp_from(2000 + i, 53), *now), Track::Flow { new: false, .. }));
    }
    assert!(known.iter().all(|h| t.snapshot(*h).unwrap().status & status::ASSURED != 0));
    let drops = m.shared.stats.drop.load(Relaxed);
    assert_eq!(pkt(c, s, &udp_from(1999, 53), *now), Track::Drop);
    assert_eq!(m.shared.stats.drop.load(Relaxed), drops + 1);
    check(m, known, *now);
}

/// Random packets through the table (see the module docs).
fn table_run(seed: u64, start: u64, iters: usize) {
    let mut r = Rng(seed);
    let m = Mem::new(64, 16);
    let t = m.table();
    let mut now = start;
    let mut known: Vec<Handle> = Vec::new();
    let mut pending: Vec<Handle> = Vec::new();
    let mut flows = [0usize; 4];
    for i in 0..iters {
        now = now.wrapping_add(match r.below(100) {
            0 => r.below(1000 * HZ),
            1..=40 => 0,
            _ => r.below(HZ),
        });
        let tuples: Vec<Tuple> = known
            .iter()
            .filter_map(|h| t.snapshot(*h))
            .flat_map(|s| s.tuple)
            .collect();
        let data = random_packet(&mut r, &tuples);
        let helper = if r.below(4) == 0 { HELPER_FTP } else { 0 };
        let odd_len = (r.below(16) == 0).then(|| r.next() as u32 % 200);
        if let Some(p) = ct_packet(&data, helper, odd_len) {
            let res = t.track(&p, now);
            match (p.parsed, res) {
                (Parsed::Invalid, res) => assert_eq!(res, Track::Invalid),
                (_, Track::Invalid) => flows[0] += 1,
                (_, Track::Drop) => {
                    assert_eq!(count(&m), m.entries.len(), "a drop only when the table is full");
                    flows[1] += 1;
                }
                (Parsed::IcmpError { inner, .. }, Track::Flow { h, dir, state, new }) => {
                    assert_eq!((state, new), (ctstate::RELATED, false));
                    let s = t.snapshot(h).unwrap();
                    assert_eq!(s.tuple[dir.other().index()], inner);
                    flows[2] += 1;
                }
                (Parsed::Flow { tuple, .. }, Track::Flow { h, dir, state, new }) => {
                    let s = t.snapshot(h).expect("the flow of the packet");
                    assert_eq!(s.tuple[dir.index()], tuple);
                    if new {
                        assert_eq!(dir, Dir::Original);
                        assert_eq!(s.tuple[1], tuple.invert().unwrap());
                        assert_eq!(s.status & status::CONFIRMED, 0);
                        let expected = s.status & status::EXPECTED != 0;
                        assert_eq!(state, if expected { ctstate::RELATED } else { ctstate::NEW });
                        known.push(h);
                        match r.below(20) {
                            0 => pending.push(h),
                            1 => assert!(t.delete(h)),
                            2 => {} // Lost on the way: the collector frees it.
                            _ => {
                                if t.confirm(h, now).is_err() {
                                    // A clash: the same flow is in the table already.
                                    let other = t.lookup(&s.tuple[0], now).or(t.lookup(&s.tuple[1], now));
                                    assert!(other.is_some_and(|o| o.0 != h), "{s:?}");
                                    assert!(t.get(h).is_none());
                                }
                            }
                        }
                    } else {
                        assert_ne!(s.status & status::CONFIRMED, 0);
                        assert!(matches!(state, ctstate::NEW | ctstate::ESTABLISHED | ctstate::RELATED));
                        if dir == Dir::Reply {
                            assert_eq!(state, ctstate::ESTABLISHED);
                            assert_ne!(s.status & status::SEEN_REPLY, 0);
                        }
                    }
                    if tuple.proto == IPPROTO_TCP && t.helper(h) != 0 {
                        let payload = ftp_payload(&mut r, dir, &s.tuple[0]);
                        let seg = super::table::HelperSegment {
                            seq: r.next() as u32,
                            len: payload.len() as u32,
                            payload: &payload,
                            ends_in_nl: payload.last() == Some(&b'\n'),
                        };
                        t.helper_segment(h, dir, &seg, now);
                    }
                    flows[3] += 1;
                }
            }
        }
        // Confirm late (the first packet took its time through the hooks), maybe too late.
        if !pending.is_empty() && r.below(4) == 0 {
            let h = pending.swap_remove(r.index(pending.len()));
            let _ = t.confirm(h, now);
        }
        match r.below(200) {
            0..=9 => {
                t.gc_step(now, 1 + r.below(20) as u32);
            }
            10 if !known.is_empty() => {
                t.delete(known[r.index(known.len())]);
            }
            11 => {
                t.flush(0);
            }
            _ => {}
        }
        check(&m, &mut known, now);
        if i % 4000 == 1999 {
            pending.clear();
            fill_assured(&m, &mut known, &mut now);
        }
        if i % 4000 == 3999 {
            pending.clear();
            empty_and_refill(&m, &mut known, &mut now, r.below(2) == 0);
        }
    }
    pending.clear();
    empty_and_refill(&m, &mut known, &mut now, true);
    empty_and_refill(&m, &mut known, &mut now, false);
    // Every kind of outcome happened.
    assert!(flows.iter().all(|n| *n > 0), "invalid, drop, related, flow: {flows:?}");
}

#[test]
fn random_packets_through_the_table() {
    table_run(0x5eed_0001, 0, 20_000);
    table_run(0x5eed_0002, 1 << 32, 20_000);
}

#[test]
fn random_packets_through_the_table_clock_wraps() {
    // The clock is compared as the kernel's `time_after`: it may wrap.
    table_run(0x5eed_0003, u64::MAX - 20_000 * HZ, 20_000);
}

/// One end of a well-behaved TCP connection.
#[derive(Debug, Clone, Copy)]
struct End {
    isn: u32,
    /// Next sequence number to send.
    nxt: u32,
    /// Oldest unacknowledged.
    una: u32,
    /// Next expected from the peer (what it acknowledges).
    rcv: u32,
    /// Window it advertises (the raw field).
    win: u16,
    /// Window scale it offers, if any.
    scale: Option<u8>,
    sack: bool,
}

impl End {
    fn new(r: &mut Rng) -> End {
        let isn = seqno(r);
        End {
            isn,
            nxt: isn,
            una: isn,
            rcv: 0,
            win: 1000 + r.below(64_000) as u16,
            // Below 9: the out-of-window probes below stay outside any window it can open.
            scale: (r.below(2) == 0).then(|| r.below(9) as u8),
            sack: r.below(2) == 0,
        }
    }
    fn syn_opts(&self) -> Vec<u8> {
        let mut o = Vec::new();
        if let Some(s) = self.scale {
            o.extend_from_slice(&[1, 3, 3, s]);
        }
        if self.sack {
            o.extend_from_slice(&[1, 1, 4, 2]);
        }
        o
    }
}

/// A conversation: the tracker's state with the flow's status bits as the table keeps them,
/// mirrored in a table that sees the same segments.
struct Conv {
    c: TcpConn,
    seen_reply: bool,
    assured: bool,
    end: [End; 2],
    m: Mem,
    h: Option<Handle>,
    /// The flow ended (killed, or reopened as a new one): the conversation stops.
    done: bool,
    now: u64,
    /// The last well-behaved pure-ACK-flagged segment, to retransmit.
    last: Option<(Dir, Vec<u8>)>,
}

const CPORT: u16 = 40000;
const SPORT: u16 = 80;

fn addrs(dir: Dir) -> (u32, u32) {
    if dir == Dir::Original {
        (ADDRS[0], ADDRS[1])
    } else {
        (ADDRS[1], ADDRS[0])
    }
}

fn ports(dir: Dir) -> (u16, u16) {
    if dir == Dir::Original {
        (CPORT, SPORT)
    } else {
        (SPORT, CPORT)
    }
}

impl Conv {
    /// Sends one segment in `dir` through the tracker and through the table, which must
    /// decide the same on the same state; returns the tracker's outcome.
    fn send(&mut self, dir: Dir, bytes: &[u8]) -> Outcome {
        assert!(!self.done);
        let seg = Segment { tcp: bytes, len: bytes.len() as u32, ack_adj: None };
        assert!(tcp::valid_header(&seg));
        let before = self.c;
        let out = if self.h.is_none() {
            self.c = tcp::new_conn(&seg).expect("a SYN starts a flow");
            tcp::packet(&mut self.c, dir, &seg, false, false)
        } else {
            tcp::packet(&mut self.c, dir, &seg, self.seen_reply, self.assured)
        };
        tcp_invariants(&before, &self.c, dir, bytes[13], self.seen_reply, self.assured, out);
        if let Outcome::Accept { assured: true, .. } = out {
            self.assured = true;
        }
        if dir == Dir::Reply && !matches!(out, Outcome::Invalid { .. } | Outcome::Restart) {
            self.seen_reply = true;
        }
        self.now += 1;
        let (src, dst) = addrs(dir);
        let t = self.m.table();
        let p = PacketCt { parsed: tuple::parse(src, dst, IPPROTO_TCP, 0, bytes), helper: 0, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: 40, l4_len: seg.len };
        let res = t.track(&p, self.now);
        match (self.h, out, res) {
            (None, _, Track::Flow { h, dir: Dir::Original, state: ctstate::NEW, new: true }) => {
                t.confirm(h, self.now).unwrap();
                self.h = Some(h);
            }
            (Some(_), Outcome::Restart, Track::Flow { h, dir: Dir::Original, state: ctstate::NEW, new: true }) => {
                // The old flow went; the segment started a new one, with its tuple as the
                // original direction, whichever side sent it.
                let s = t.snapshot(h).unwrap();
                assert_eq!(s.tuple[0], Tuple { src, dst, sport: ports(dir).0, dport: ports(dir).1, proto: IPPROTO_TCP });
                let mut c = tcp::new_conn(&seg).expect("a reopening SYN starts a flow");
                let again = tcp::packet(&mut c, Dir::Original, &seg, false, false);
                assert!(matches!(again, Outcome::Accept { .. }), "{again:?}");
                assert_eq!(s.tcp, Some(c));
                self.done = true;
                return out;
            }
            (Some(h), Outcome::Invalid { .. }, Track::Invalid) => assert!(t.get(h).is_some()),
            (Some(h), _, Track::Flow { h: h2, dir: d2, new: false, .. }) => {
                assert!(!matches!(out, Outcome::Invalid { .. } | Outcome::Restart));
                assert_eq!((h2, d2), (h, dir));
            }
            other => panic!("table and tracker disagree: {other:?}"),
        }
        let s = t.snapshot(self.h.unwrap()).unwrap();
        assert_eq!(s.tcp, Some(self.c), "the table keeps the tracker's state");
        assert_eq!(s.status & status::SEEN_REPLY != 0, self.seen_reply);
        assert_eq!(s.status & status::ASSURED != 0, self.assured);
        if out == Outcome::AcceptKill {
            // An RST before any reply ends the flow with this packet.
            assert!(t.lookup(&s.tuple[0], self.now).is_none());
            self.done = true;
        }
        out
    }

    /// A well-behaved segment from `dir`'s end: data within the peer's window (or a FIN),
    /// acknowledging everything received.
    fn segment(&mut self, r: &mut Rng, dir: Dir, flags: u8) -> Vec<u8> {
        let (d, o) = (dir.index(), dir.other().index());
        let peer_win = u32::from(self.end[o].win);
        let in_flight = self.end[d].nxt.wrapping_sub(self.end[d].una);
        let room = peer_win.saturating_sub(in_flight).min(1460);
        let len = if room == 0 || r.below(4) == 0 { 0 } else { 1 + r.below(u64::from(room)) as u32 };
        let e = self.end[d];
        let (sp, dp) = ports(dir);
        let flags = if len > 0 && r.below(2) == 0 { flags | PSH } else { flags };
        let b = tcp_bytes(sp, dp, e.nxt, e.rcv, flags, e.win, &[], len as usize);
        let used = len + u32::from(flags & (FIN | SYN) != 0);
        self.end[d].nxt = e.nxt.wrapping_add(used);
        // Delivered at once and in order.
        self.end[o].rcv = self.end[d].nxt;
        self.end[o].una = e.rcv;
        b
    }

    /// Sends a well-behaved segment, or retransmits the last one; it must be accepted.
    fn good(&mut self, r: &mut Rng, dir: Dir, flags: u8) {
        let (dir, b) = match &self.last {
            Some((d, b)) if flags == ACK && r.below(8) == 0 => (*d, b.clone()),
            _ => (dir, self.segment(r, dir, flags)),
        };
        let out = self.send(dir, &b);
        assert!(matches!(out, Outcome::Accept { .. }), "{out:?} for a good segment {dir:?} {:?}", self.c);
        self.last = (flags == ACK).then_some((dir, b));
    }
}

/// What must hold after any segment, whatever it was.
fn tcp_invariants(before: &TcpConn, after: &TcpConn, dir: Dir, flags: u8, seen_reply: bool, assured: bool, out: Outcome) {
    assert_eq!(TcpConn::from_words(&after.to_words()), *after, "the state packs and unpacks");
    match out {
        Outcome::Accept { timeout_secs, assured: a } => {
            assert_ne!(after.state, TcpState::None);
            assert!(timeout_secs > 0 && timeout_secs <= tcp::timeout_secs(after.state), "{out:?} in {after:?}");
            assert!(!a || (seen_reply && !assured), "ASSURED only once, and only after a reply");
        }
        Outcome::AcceptKill => assert!(!seen_reply && flags & RST != 0),
        Outcome::Restart => {
            assert!(matches!(before.state, TcpState::TimeWait | TcpState::Close));
            assert_eq!(flags & (SYN | ACK | RST), SYN);
        }
        Outcome::Ignore | Outcome::Invalid { .. } => {}
    }
    if !matches!(out, Outcome::Accept { .. } | Outcome::AcceptKill) {
        assert_eq!(after.state, before.state, "{dir:?} {flags:#x}: {out:?} changed the state");
    }
}

/// Out-of-window segments: far ahead, far behind, or acknowledging data never sent. None is
/// accepted, and none changes the flow (each is an ACK, which `nf_tcp_handle_invalid` does
/// not record).
fn probe(conv: &mut Conv, r: &mut Rng, dir: Dir) {
    let (d, o) = (dir.index(), dir.other().index());
    let e = conv.end[d];
    let (sp, dp) = ports(dir);
    // Beyond any window either end can open (raw window below 2^16, scale below 9).
    let far = (1u32 << 26) + r.below(1 << 29) as u32;
    let (seq, ack, want) = match r.below(3) {
        0 => (e.nxt.wrapping_add(far), e.rcv, Outcome::Invalid { lower_timeout: false }),
        1 => (e.una.wrapping_sub(far), e.rcv, Outcome::Ignore),
        _ => (e.nxt, conv.end[o].nxt.wrapping_add(far), Outcome::Invalid { lower_timeout: false }),
    };
    let b = tcp_bytes(sp, dp, seq, ack, ACK, e.win, &[], r.index(100));
    let before = conv.c;
    let out = conv.send(dir, &b);
    assert_eq!(out, want, "seq {seq:#x} ack {ack:#x} {before:?}");
    assert_eq!(conv.c, before);
}

/// A random segment on the connection: random flags, window and options, sequence numbers
/// near the real ones or anywhere. A header the table would refuse goes to the tracker alone.
fn wild(conv: &mut Conv, r: &mut Rng) {
    let dir = if r.below(2) == 0 { Dir::Original } else { Dir::Reply };
    let (d, o) = (dir.index(), dir.other().index());
    let near = |r: &mut Rng, x: u32| match r.below(4) {
        0 => r.next() as u32,
        _ => x.wrapping_add(r.below(140_000) as u32).wrapping_sub(70_000),
    };
    let seq = near(r, conv.end[d].nxt);
    let ack = near(r, conv.end[o].nxt);
    let flags = r.next() as u8;
    let opts = if r.below(3) == 0 { random_opts(r) } else { Vec::new() };
    let (sp, dp) = ports(dir);
    let mut b = tcp_bytes(sp, dp, seq, ack, flags, r.next() as u16, &opts, r.index(200));
    if r.below(16) == 0 {
        b.truncate(r.index(b.len() + 1));
    }
    let seg = Segment { tcp: &b, len: if r.below(16) == 0 { r.next() as u32 } else { b.len() as u32 }, ack_adj: None };
    if seg.len != b.len() as u32 || !tcp::valid_header(&seg) {
        let mut c = conv.c;
        let out = tcp::packet(&mut c, dir, &seg, conv.seen_reply, conv.assured);
        tcp_invariants(&conv.c, &c, dir, b.get(13).copied().unwrap_or(0), conv.seen_reply, conv.assured, out);
        return;
    }
    conv.send(dir, &b);
}

fn conversation(r: &mut Rng, wild_rate: u64) {
    let mut conv = Conv {
        c: TcpConn::default(),
        seen_reply: false,
        assured: false,
        end: [End::new(r), End::new(r)],
        m: Mem::new(8, 4),
        h: None,
        done: false,
        now: 0,
        last: None,
    };
    let (o, rp) = (Dir::Original, Dir::Reply);
    // Handshake.
    let cl = conv.end[0];
    let b = tcp_bytes(CPORT, SPORT, cl.isn, 0, SYN, cl.win, &cl.syn_opts(), 0);
    conv.end[0].nxt = cl.isn.wrapping_add(1);
    conv.end[1].rcv = conv.end[0].nxt;
    assert!(matches!(conv.send(o, &b), Outcome::Accept { .. }));
    assert_eq!(conv.c.state, TcpState::SynSent);
    let sv = conv.end[1];
    let b = tcp_bytes(SPORT, CPORT, sv.isn, sv.rcv, SYN | ACK, sv.win, &sv.syn_opts(), 0);
    conv.end[1].nxt = sv.isn.wrapping_add(1);
    conv.end[0].rcv = conv.end[1].nxt;
    conv.end[0].una = conv.end[0].nxt;
    assert!(matches!(conv.send(rp, &b), Outcome::Accept { .. }));
    assert_eq!(conv.c.state, TcpState::SynRecv);
    conv.good(r, o, ACK);
    assert_eq!(conv.c.state, TcpState::Established);
    assert!(conv.assured);
    // Data both ways, with out-of-window probes, or random segments, in between.
    let mut wild_seen = false;
    for _ in 0..10 + r.below(30) {
        if conv.done {
            return;
        }
        let dir = if r.below(2) == 0 { o } else { rp };
        if wild_rate > 0 && r.below(wild_rate) == 0 {
            wild(&mut conv, r);
            wild_seen = true;
        } else if wild_seen {
            // Anything may have happened to the flow: go on, checking invariants only.
            let b = conv.segment(r, dir, ACK);
            conv.send(dir, &b);
        } else if r.below(6) == 0 {
            probe(&mut conv, r, dir);
        } else {
            conv.good(r, dir, ACK);
            assert_eq!(conv.c.state, TcpState::Established);
        }
    }
    if wild_seen {
        return;
    }
    // Orderly close, from either end; the other may answer with its FIN at once.
    let first = if r.below(2) == 0 { o } else { rp };
    conv.good(r, first, FIN | ACK);
    assert_eq!(conv.c.state, TcpState::FinWait);
    if r.below(2) == 0 {
        conv.good(r, first.other(), ACK);
        assert_eq!(conv.c.state, TcpState::CloseWait);
    }
    conv.good(r, first.other(), FIN | ACK);
    assert_eq!(conv.c.state, TcpState::LastAck);
    conv.good(r, first, ACK);
    assert_eq!(conv.c.state, TcpState::TimeWait);
}

#[test]
fn random_tcp_conversations_well_behaved_and_probed() {
    let mut r = Rng(0x7c9_0001);
    for _ in 0..3000 {
        conversation(&mut r, 0);
    }
}

#[test]
fn random_tcp_conversations_with_random_segments() {
    let mut r = Rng(0x7c9_0002);
    for _ in 0..3000 {
        conversation(&mut r, 6);
    }
}
