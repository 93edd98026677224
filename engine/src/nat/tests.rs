// SPDX-License-Identifier: GPL-2.0

extern crate std;
use super::*;
use crate::conntrack::status;
use std::collections::HashSet;
use std::vec::Vec;

const C: u32 = 0xc0a8_0102; // 192.168.1.2, a client
const R: u32 = 0x0a00_0001; // 10.0.0.1, the router's public address
const S: u32 = 0x0a00_0202; // 10.0.2.2, a server

/// A chooser over a set of reply tuples in use.
struct Set {
    used: HashSet<Tuple>,
    rnd: u32,
}

impl Chooser for Set {
    fn random(&mut self) -> u32 {
        self.rnd = self.rnd.wrapping_mul(1_103_515_245).wrapping_add(12345);
        self.rnd >> 8
    }
    fn hash(&mut self, w: &[u64; 2]) -> u32 {
        crate::conntrack::tuple::hash_words(&[3, 5], w)
    }
    fn used(&mut self, orig: &Tuple) -> bool {
        orig.invert().is_some_and(|r| self.used.contains(&r))
    }
}

fn tcp(src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
    Tuple { src, dst, sport, dport, proto: IPPROTO_TCP }
}

fn snat_to(addr: u32) -> NatRange {
    NatRange { flags: range::MAP_IPS, min_addr: addr, max_addr: addr, ..Default::default() }
}

#[test]
fn snat_keeps_a_free_source_port_and_moves_a_taken_one() {
    let mut c = Set { used: HashSet::new(), rnd: 1 };
    let a = tcp(C, 40000, S, 80);
    let t = unique_tuple(&a, &snat_to(R), Manip::Src, &mut c).unwrap();
    assert_eq!(t, tcp(R, 40000, S, 80));
    c.used.insert(t.invert().unwrap());
    // A second client with the same source port to the same server: another port, >= 1024.
    let b = tcp(C + 1, 40000, S, 80);
    let u = unique_tuple(&b, &snat_to(R), Manip::Src, &mut c).unwrap();
    assert_eq!((u.src, u.dst, u.dport), (R, S, 80));
    assert_ne!(u.sport, 40000);
    assert!(u.sport >= 1024);
    // Privileged ports stay privileged.
    let p = tcp(C + 1, 700, S, 80);
    c.used.insert(tcp(S, 80, R, 700));
    let q = unique_tuple(&p, &snat_to(R), Manip::Src, &mut c).unwrap();
    assert!((600..1024).contains(&q.sport), "{q:?}");
}

#[test]
fn a_one_port_range_is_exhausted_by_the_second_flow() {
    let mut c = Set { used: HashSet::new(), rnd: 7 };
    let r = NatRange { flags: range::MAP_IPS | range::PROTO_SPECIFIED, min_addr: R, max_addr: R, min_port: 5000, max_port: 5000, base_port: 0 };
    let t = unique_tuple(&tcp(C, 40000, S, 80), &r, Manip::Src, &mut c).unwrap();
    assert_eq!(t.sport, 5000);
    c.used.insert(t.invert().unwrap());
    assert_eq!(unique_tuple(&tcp(C, 40001, S, 80), &r, Manip::Src, &mut c), None);
    // Another destination is another reply tuple: the port is free there.
    assert!(unique_tuple(&tcp(C, 40001, S + 1, 80), &r, Manip::Src, &mut c).is_some());
}

#[test]
fn a_nearly_full_range_still_finds_the_free_ports() {
    let mut c = Set { used: HashSet::new(), rnd: 3 };
    let r = NatRange { flags: range::MAP_IPS | range::PROTO_SPECIFIED, min_addr: R, max_addr: R, min_port: 10000, max_port: 10099, base_port: 0 };
    let mut got = Vec::new();
    for i in 0..100u16 {
        let t = unique_tuple(&tcp(C, 20000 + i, S, 80), &r, Manip::Src, &mut c).expect("a free port");
        assert!(c.used.insert(t.invert().unwrap()));
        got.push(t.sport);
    }
    got.sort_unstable();
    assert_eq!(got, (10000..10100).collect::<Vec<_>>());
    assert_eq!(unique_tuple(&tcp(C, 30000, S, 80), &r, Manip::Src, &mut c), None);
}

#[test]
fn dnat_to_an_address_and_port_and_address_ranges_spread_by_client() {
    let mut c = Set { used: HashSet::new(), rnd: 1 };
    let r = NatRange { flags: range::MAP_IPS | range::PROTO_SPECIFIED, min_addr: S, max_addr: S, min_port: 80, max_port: 80, base_port: 0 };
    let t = unique_tuple(&tcp(C, 40000, R, 8080), &r, Manip::Dst, &mut c).unwrap();
    assert_eq!(t, tcp(C, 40000, S, 80));
    // Without a port the destination port stays.
    let t = unique_tuple(&tcp(C, 40000, R, 8080), &snat_to(S), Manip::Dst, &mut c).unwrap();
    assert_eq!(t, tcp(C, 40000, S, 8080));
    // A range of 4 addresses: each client sticks to one, and the clients use all 4.
    let r4 = NatRange { flags: range::MAP_IPS, min_addr: S, max_addr: S + 3, ..Default::default() };
    let mut seen = HashSet::new();
    for i in 0..64 {
        let a = unique_tuple(&tcp(C + i, 40000, R, 80), &r4, Manip::Dst, &mut c).unwrap().dst;
        assert_eq!(a, unique_tuple(&tcp(C + i, 40001, R, 80), &r4, Manip::Dst, &mut c).unwrap().dst);
        assert!((S..=S + 3).contains(&a));
        seen.insert(a);
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn a_port_offset_maps_ports_by_their_distance_from_the_base() {
    // --to-destination S:1000-2000/3000: port 3005 goes to 1005, 2999 to 1000 + (65535 % 1001).
    let mut c = Set { used: HashSet::new(), rnd: 1 };
    let r = NatRange {
        flags: range::MAP_IPS | range::PROTO_SPECIFIED | range::PROTO_OFFSET,
        min_addr: S,
        max_addr: S,
        min_port: 1000,
        max_port: 2000,
        base_port: 3000,
    };
    assert_eq!(unique_tuple(&tcp(C, 40000, R, 3005), &r, Manip::Dst, &mut c).unwrap().dport, 1005);
    assert_eq!(unique_tuple(&tcp(C, 40000, R, 3000), &r, Manip::Dst, &mut c).unwrap().dport, 1000);
    let p = unique_tuple(&tcp(C, 40000, R, 2999), &r, Manip::Dst, &mut c).unwrap().dport;
    assert_eq!(p, 1000 + (65535 % 1001) as u16);
}

#[test]
fn netmap_keeps_the_host_part() {
    let r = NatRange { flags: range::MAP_IPS, min_addr: 0x0a0a_0000, max_addr: 0x0a0a_00ff, ..Default::default() };
    assert_eq!(netmap_addr(0xc0a8_0117, &r), 0x0a0a_0017);
}

fn ip_tcp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = std::vec![0u8; 40];
    p[0] = 0x45;
    let tot = (40 + payload.len()) as u16;
    p[2..4].copy_from_slice(&tot.to_be_bytes());
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    p[12..16].copy_from_slice(&src.to_be_bytes());
    p[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[32] = 0x50;
    p.extend_from_slice(payload);
    let acc = checksum::pseudo_header(src, dst, IPPROTO_TCP, (20 + payload.len()) as u16);
    let c = !checksum::fold(checksum::add_bytes(acc, &p[20..]));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

fn valid(p: &[u8]) -> bool {
    let src = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
    let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
    checksum::verify(&p[..20]) && checksum::verify_l4(src, dst, p[9], &p[20..])
}

#[test]
fn rewritten_packets_carry_valid_checksums() {
    // A port forward R:8080 -> S:80, then masquerade to R: the flow's two tuples.
    let orig = tcp(C, 40000, R, 8080);
    let reply = tcp(S, 80, R, 40000);
    let tuples = [orig, reply];
    let st = status::DST_NAT | status::SRC_NAT;
    let mut p = ip_tcp(C, R, 40000, 8080, b"GET /");
    assert!(valid(&p));
    let t = packet_target(&tuples, st, Dir::Original, Manip::Dst).unwrap();
    assert!(manip_packet(&mut p, &t, Manip::Dst, FieldState::Full));
    let t = packet_target(&tuples, st, Dir::Original, Manip::Src).unwrap();
    assert!(manip_packet(&mut p, &t, Manip::Src, FieldState::Full));
    assert_eq!(p, ip_tcp(R, S, 40000, 80, b"GET /"));
    // The reply comes back as the client expects it.
    let mut q = ip_tcp(S, R, 80, 40000, b"200");
    for m in [Manip::Dst, Manip::Src] {
        let t = packet_target(&tuples, st, Dir::Reply, m).unwrap();
        assert!(manip_packet(&mut q, &t, m, FieldState::Full));
    }
    assert_eq!(q, ip_tcp(R, C, 8080, 40000, b"200"));
    assert!(valid(&q));
    // A flow without translation is left alone.
    assert_eq!(packet_target(&tuples, 0, Dir::Reply, Manip::Dst), None);
}

#[test]
fn udp_without_checksum_stays_without() {
    let mut p = std::vec![0u8; 28];
    p[0] = 0x45;
    p[9] = IPPROTO_UDP;
    p[12..16].copy_from_slice(&C.to_be_bytes());
    p[16..20].copy_from_slice(&R.to_be_bytes());
    p[22..24].copy_from_slice(&53u16.to_be_bytes());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let t = Tuple { src: C, dst: S, sport: 0, dport: 5353, proto: IPPROTO_UDP };
    assert!(manip_packet(&mut p, &t, Manip::Dst, FieldState::Full));
    assert_eq!(&p[26..28], &[0, 0]);
    assert_eq!(u16::from_be_bytes([p[22], p[23]]), 5353);
    assert!(checksum::verify(&p[..20]));
}

#[test]
fn icmp_errors_about_translated_flows_reach_the_client_with_its_addresses() {
    // Client C:40000 -> R:8080 forwarded to S:80 (DNAT only); S answers a segment with a
    // port unreachable quoting it (S:80 <- C:40000 as S saw it).
    let tuples = [tcp(C, 40000, R, 8080), tcp(S, 80, C, 40000)];
    let st = status::DST_NAT;
    let quoted = ip_tcp(C, S, 40000, 80, b"");
    let mut e = std::vec![0u8; 20 + 8];
    e[0] = 0x45;
    e[9] = IPPROTO_ICMP;
    e[12..16].copy_from_slice(&S.to_be_bytes());
    e[16..20].copy_from_slice(&C.to_be_bytes());
    let c = checksum::checksum(&e[..20]);
    e[10..12].copy_from_slice(&c.to_be_bytes());
    e[20] = 3;
    e[21] = 3;
    e.extend_from_slice(&quoted[..28]);
    let c = checksum::checksum(&e[20..]);
    e[22..24].copy_from_slice(&c.to_be_bytes());
    for m in [Manip::Dst, Manip::Src] {
        assert!(icmp_error(&mut e, &tuples, st, Dir::Reply, m));
    }
    // Outer: from R (the address the client talked to); inner: C:40000 -> R:8080.
    assert_eq!(&e[12..16], &R.to_be_bytes());
    assert_eq!(&e[16..20], &C.to_be_bytes());
    assert_eq!(&e[28 + 12..28 + 16], &C.to_be_bytes());
    assert_eq!(&e[28 + 16..28 + 20], &R.to_be_bytes());
    assert_eq!(u16::from_be_bytes([e[48 + 2], e[48 + 3]]), 8080);
    assert!(checksum::verify(&e[..20]), "outer header checksum");
    assert!(checksum::verify(&e[28..48]), "quoted header checksum");
    assert!(checksum::verify(&e[20..]), "ICMP checksum");
    // A stage with nothing to translate leaves the error alone; a redirect about a translated
    // flow is dropped.
    let copy = e.clone();
    assert!(icmp_error(&mut e, &tuples, st | status::DST_NAT_DONE | status::SRC_NAT_DONE, Dir::Original, Manip::Src));
    assert_eq!(e, copy);
    e[20] = 5;
    assert!(!icmp_error(&mut e, &tuples, st | status::DST_NAT_DONE | status::SRC_NAT_DONE, Dir::Reply, Manip::Src));
}

#[test]
fn a_destination_clash_is_left_to_the_source_binding() {
    // The reply tuple S:80 -> C:1000 is taken (another flow); DNAT to S keeps the tuple, and
    // the null source binding moves the source port.
    let mut c = Set { used: HashSet::new(), rnd: 9 };
    c.used.insert(tcp(S, 80, C, 1000));
    let r = NatRange { flags: range::MAP_IPS | range::PROTO_SPECIFIED, min_addr: S, max_addr: S, min_port: 80, max_port: 80, base_port: 0 };
    let d = unique_tuple(&tcp(C, 1000, R, 8080), &r, Manip::Dst, &mut c).unwrap();
    assert_eq!(d, tcp(C, 1000, S, 80));
    let r2 = NatRange { flags: range::MAP_IPS | range::PROTO_SPECIFIED, min_addr: S, max_addr: S, min_port: 80, max_port: 81, base_port: 0 };
    assert!(unique_tuple(&tcp(C, 1000, R, 8080), &r2, Manip::Dst, &mut c).is_some());
    let s = unique_tuple(&d, &snat_to(C), Manip::Src, &mut c).unwrap();
    assert_eq!((s.src, s.dst, s.dport), (C, S, 80));
    assert_ne!(s.sport, 1000);
}
