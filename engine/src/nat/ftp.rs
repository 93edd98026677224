// SPDX-License-Identifier: GPL-2.0

//! FTP through NAT (`nf_nat_ftp.c`, with `__nf_nat_mangle_tcp_packet` and
//! `nf_nat_exp_find_port` of `nf_nat_helper.c`): the pure logic.
//!
//! When the FTP helper ([`super::super::conntrack::ftp`]) reads a `PORT`/`EPRT` command or a
//! `227`/`229` reply on the control connection of a translated flow, the address and port in
//! the text are those of the sender's side of the NAT. They are replaced by what the peer must
//! use: the address the peer sees (the other direction's tuple's destination) and a port for
//! which an expectation can be registered ([`find_port`]). The text changes length, so the
//! packet grows or shrinks ([`mangle_tcp`]), and the flow's sequence numbers must be adjusted
//! from then on ([`super::seqadj`]). The data connection, when it comes, is translated back
//! to what the sender announced ([`follow_master`]).
//!
//! [`nat_ftp`] does it all for one packet; the pieces are public for the glue and the tests.

use super::super::checksum::{self, FieldState};
use super::super::conntrack::ftp::{eprt, epsv, rfc959, Expect};
use super::super::conntrack::tuple::{Dir, Tuple};
use super::super::packet::IPPROTO_TCP;
use super::{range, NatRange};

/// What was matched (`enum nf_ct_ftp_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `PORT a,b,c,d,p1,p2` (client to server).
    Port,
    /// `227 ... a,b,c,d,p1,p2` (server to client).
    Pasv,
    /// `EPRT |1|a.b.c.d|port|` (client to server).
    Eprt,
    /// `229 ... (|||port|)` (server to client).
    Epsv,
}

/// Where the address and port text is in a control segment's payload, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The command or reply.
    pub kind: Kind,
    /// Offset of the text from the start of the TCP payload (`matchoff`).
    pub off: usize,
    /// Its length (`matchlen`): the numbers for `PORT`/`227`; for `EPRT`/`EPSV` everything from
    /// the first delimiter to the last one, both included.
    pub len: usize,
    /// The announced address (host order); `None` for `EPSV`, which has none.
    pub addr: Option<u32>,
    /// The announced port (never 0).
    pub port: u16,
}

fn skip_spaces(s: &[u8]) -> usize {
    s.iter().take_while(|c| **c == b' ').count()
}

/// Finds the address and port text of an FTP control segment's `payload` going in `dir`,
/// with exactly the rules of [`super::super::conntrack::ftp::parse`] (which does not tell
/// where the text is): when `parse` announces a data connection, this finds its text, and
/// the port agrees. The sender's address is not checked here ([`nat_ftp`] does).
pub fn find(payload: &[u8], dir: Dir) -> Option<Match> {
    let starts = |word: &[u8]| payload.get(..word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let m = match dir {
        Dir::Original => {
            let kind = if starts(b"PORT") {
                Kind::Port
            } else if starts(b"EPRT") {
                Kind::Eprt
            } else {
                return None;
            };
            let off = 4usize.checked_add(skip_spaces(payload.get(4..)?))?;
            let text = payload.get(off..)?;
            let (addr, port, len) = if kind == Kind::Port { rfc959(text)? } else { eprt(text)? };
            Match { kind, off, len, addr: Some(addr), port }
        }
        Dir::Reply => {
            if starts(b"227") {
                // The numbers after the first digit that follows the code.
                let off = payload.iter().skip(3).position(|c| c.is_ascii_digit())?.checked_add(3)?;
                let (addr, port, len) = rfc959(payload.get(off..)?)?;
                Match { kind: Kind::Pasv, off, len, addr: Some(addr), port }
            } else if starts(b"229") {
                let off = payload.iter().position(|c| *c == b'(')?.checked_add(1)?;
                let (port, len) = epsv(payload.get(off..)?)?;
                Match { kind: Kind::Epsv, off, len, addr: None, port }
            } else {
                return None;
            }
        }
    };
    (m.port != 0).then_some(m)
}

/// Room for the longest text [`format`] writes (`|1|255.255.255.255|65535|`, 25 bytes).
pub const TEXT_MAX: usize = 32;

/// A replacement text (`nf_nat_ftp`'s `buffer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    buf: [u8; TEXT_MAX],
    len: usize,
}

impl Text {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len = self.len.wrapping_add(1);
        }
    }

    fn num(&mut self, mut v: u32) {
        let mut digits = [0u8; 10];
        let mut n = 0usize;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0'.wrapping_add((v % 10) as u8);
            }
            n = n.wrapping_add(1);
            v /= 10;
            if v == 0 || n >= digits.len() {
                break;
            }
        }
        for d in digits.iter().take(n).rev() {
            self.push(*d);
        }
    }

    fn dotted(&mut self, addr: u32, sep: u8) {
        for (i, b) in addr.to_be_bytes().into_iter().enumerate() {
            if i > 0 {
                self.push(sep);
            }
            self.num(u32::from(b));
        }
    }
}

/// `nf_nat_ftp_fmt_cmd`: the text announcing `addr` (host order) and `port` in the form of
/// `kind`: `%u,%u,%u,%u,%u,%u` for `PORT` and `227`, `|1|%u.%u.%u.%u|%u|` for `EPRT`,
/// `|||%u|` for `EPSV` (the delimiter is always `|`, whatever the sender used).
pub fn format(kind: Kind, addr: u32, port: u16) -> Text {
    let mut t = Text { buf: [0; TEXT_MAX], len: 0 };
    match kind {
        Kind::Port | Kind::Pasv => {
            t.dotted(addr, b',');
            t.push(b',');
            t.num(u32::from(port >> 8));
            t.push(b',');
            t.num(u32::from(port & 0xff));
        }
        Kind::Eprt => {
            t.push(b'|');
            t.push(b'1');
            t.push(b'|');
            t.dotted(addr, b'.');
            t.push(b'|');
            t.num(u32::from(port));
            t.push(b'|');
        }
        Kind::Epsv => {
            for b in *b"|||" {
                t.push(b);
            }
            t.num(u32::from(port));
            t.push(b'|');
        }
    }
    t
}

/// The result of [`mangle_tcp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mangled {
    /// The packet's new length (IPv4 header on).
    pub len: usize,
    /// New length minus old: what [`super::seqadj::SeqAdjust::record`] needs.
    pub delta: i32,
    /// The segment's sequence number (as it is in the packet: not yet adjusted), the other
    /// argument of `record`.
    pub seq: u32,
}

/// An IPv4 TCP packet's layout: (IP header length, offset of the TCP payload). None unless
/// `pkt[..len]` holds an unfragmented IPv4 TCP packet with whole headers.
fn layout(pkt: &[u8], len: usize) -> Option<(usize, usize)> {
    let p = pkt.get(..len)?;
    let vihl = *p.first()?;
    let hl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || hl < 20 || *p.get(9)? != IPPROTO_TCP {
        return None;
    }
    let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
    if frag & 0x3fff != 0 {
        return None;
    }
    let doff = usize::from(*p.get(hl.checked_add(12)?)? >> 4) * 4;
    let data = hl.checked_add(doff)?;
    (doff >= 20 && data <= len).then_some((hl, data))
}

/// `__nf_nat_mangle_tcp_packet` (without the seqadj call, which the caller makes with the
/// result): in the IPv4 TCP packet `pkt[..len]` (from its IPv4 header on; `pkt` may be longer,
/// the spare room the packet can grow into), replaces the `match_len` bytes at `match_off` of
/// the TCP payload with `rep`, moving what follows. Then the IP total length and header
/// checksum are set, and the TCP checksum field: with [`FieldState::Full`] the full checksum
/// over pseudo-header and segment is computed; with [`FieldState::Partial`] it gets the folded
/// pseudo-header sum for the new length, which is what `nf_nat_ipv4_csum_recalc` leaves in it
/// in both cases (it turns a full packet into a `CHECKSUM_PARTIAL` one; a glue that does the
/// same, with `csum_start` at the TCP header and `csum_offset` 16, may pass `Partial` for any
/// packet).
///
/// None, with nothing written, when the packet is not such a packet, the match is not inside
/// its payload, or the result would not fit in `pkt` or in 65535 bytes.
pub fn mangle_tcp(pkt: &mut [u8], len: usize, match_off: usize, match_len: usize, rep: &[u8], state: FieldState) -> Option<Mangled> {
    let (hl, data) = layout(pkt, len)?;
    let start = data.checked_add(match_off)?;
    let mend = start.checked_add(match_len)?;
    let rend = start.checked_add(rep.len())?;
    let new_len = len.checked_sub(match_len)?.checked_add(rep.len())?;
    if mend > len || new_len > pkt.len() || new_len > 65535 {
        return None;
    }
    let delta = i32::try_from(rep.len()).ok()?.checked_sub(i32::try_from(match_len).ok()?)?;
    // All in bounds: mend <= len <= pkt.len(), and rend + (len - mend) == new_len <= pkt.len().
    pkt.get_mut(start..len.max(new_len))?.copy_within(match_len..len.checked_sub(start)?, rep.len());
    pkt.get_mut(start..rend)?.copy_from_slice(rep);

    let tot = (new_len as u16).to_be_bytes();
    pkt.get_mut(2..4)?.copy_from_slice(&tot);
    pkt.get_mut(10..12)?.copy_from_slice(&[0, 0]);
    let ipc = checksum::checksum(pkt.get(..hl)?);
    pkt.get_mut(10..12)?.copy_from_slice(&ipc.to_be_bytes());

    let addr = |o: usize| pkt.get(o..).and_then(|a| a.first_chunk::<4>()).map(|a| u32::from_be_bytes(*a));
    let (src, dst) = (addr(12)?, addr(16)?);
    let seq = addr(hl.checked_add(4)?)?;
    let tcp_len = new_len.checked_sub(hl)? as u16;
    let pseudo = checksum::pseudo_header(src, dst, IPPROTO_TCP, tcp_len);
    let coff = hl.checked_add(16)?;
    pkt.get_mut(coff..coff.checked_add(2)?)?.copy_from_slice(&[0, 0]);
    let check = match state {
        FieldState::Full => !checksum::fold(checksum::add_bytes(pseudo, pkt.get(hl..new_len)?)),
        FieldState::Partial => checksum::fold(pseudo),
    };
    pkt.get_mut(coff..coff.checked_add(2)?)?.copy_from_slice(&check.to_be_bytes());
    Some(Mangled { len: new_len, delta, seq })
}

/// Most tries after the first ([`find_port`]; `max_attempts` of `nf_nat_exp_find_port`).
const MAX_ATTEMPTS: u32 = 128;

/// `nf_nat_exp_find_port`: the port the data connection is announced with. The announced
/// `port` itself when `used` says it is free, else up to 128 random ones of
/// `port..=65534` (`min + get_random_u32_below(65535 - min)`, `random` standing for
/// `get_random_u32`). `used(p)` is true when an expectation for port `p` cannot be registered
/// because another one holds that tuple (`nf_ct_expect_related`'s `-EBUSY`). None when none is
/// free: the kernel drops the packet ("all ports in use"). Port 0 is never announced (the
/// helper does not match it, and the kernel's 0 means failure).
pub fn find_port(port: u16, mut random: impl FnMut() -> u32, mut used: impl FnMut(u16) -> bool) -> Option<u16> {
    if port == 0 {
        return None;
    }
    let min = u32::from(port);
    let range = 65535u32.wrapping_sub(min);
    let mut attempts_left = range.min(MAX_ATTEMPTS);
    let mut p = port;
    loop {
        if !used(p) {
            return Some(p);
        }
        if attempts_left == 0 {
            return None;
        }
        attempts_left = attempts_left.wrapping_sub(1);
        // range >= 1 here (attempts_left was not 0).
        let below = (u64::from(random()).wrapping_mul(u64::from(range)) >> 32) as u32;
        p = min.wrapping_add(below) as u16;
    }
}

/// The address that goes into the text of a segment going in `dir` of the flow with tuples
/// `tuples` (original, reply): where the peer sends to, i.e. the other direction's
/// destination (`newaddr = ct->tuplehash[!dir].tuple.dst.u3`).
pub fn new_addr(tuples: &[Tuple; 2], dir: Dir) -> Option<u32> {
    tuples.get(dir.other().index()).map(|t| t.dst)
}

/// The expectation for the data connection announced in `dir` with `port` (the one chosen by
/// [`find_port`]): as the peer will open it, from the other direction's source to its
/// destination (`nf_ct_expect_init` in the helper with `!dir` tuples, then the NATed port).
pub fn expectation(tuples: &[Tuple; 2], dir: Dir, port: u16) -> Option<Expect> {
    tuples.get(dir.other().index()).map(|t| Expect { src: t.src, dst: t.dst, dport: port })
}

/// `nf_nat_follow_master`: the bindings a data connection fulfilling the expectation gets,
/// `[source, destination]`: from the address the master's `dir` goes to, and to the address
/// and port (`saved_port`, the one in the text before it was rewritten) that the announcing
/// side gave. `dir` is the direction of the segment that announced it (the kernel's
/// `exp->dir` is its opposite, and reads `tuplehash[!exp->dir]`).
pub fn follow_master(master: &[Tuple; 2], dir: Dir, saved_port: u16) -> Option<[NatRange; 2]> {
    let t = master.get(dir.index())?;
    let src = NatRange { flags: range::MAP_IPS, min_addr: t.dst, max_addr: t.dst, ..Default::default() };
    let dst = NatRange {
        flags: range::MAP_IPS | range::PROTO_SPECIFIED,
        min_addr: t.src,
        max_addr: t.src,
        min_port: saved_port,
        max_port: saved_port,
        base_port: 0,
    };
    Some([src, dst])
}

/// A control segment rewritten by [`nat_ftp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// What was matched, before the rewrite.
    pub matched: Match,
    /// The expectation to register (its port chosen by [`find_port`]).
    pub expect: Expect,
    /// The port that was announced, to map the data connection back to
    /// ([`follow_master`]; the kernel's `exp->saved_proto`).
    pub saved_port: u16,
    /// The packet's new length, the length change and the segment's sequence number.
    pub mangled: Mangled,
}

/// What [`nat_ftp`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a command or reply the helper acts on (or it names another host than its sender):
    /// the packet goes on unchanged, no expectation.
    Untouched,
    /// No free port, or the packet could not be rewritten: drop it (`NF_DROP`).
    Drop,
    /// Rewritten: register the expectation, record the length change with seqadj.
    Rewritten(Rewritten),
}

/// `nf_nat_ftp` for one FTP control segment `pkt[..len]` (IPv4 header on, spare room after
/// `len`; see [`mangle_tcp`]) going in `dir` of a translated flow with tuples `tuples`
/// (original, reply); `state` is the TCP checksum's. The caller has already decided, as the
/// helper does, that the segment starts a line (the `seq_aft_nl` check) and that the flow is
/// translated (`IPS_NAT_MASK`).
///
/// The sender's announced address must be its own as the flow sees it (`tuplehash[dir]`'s
/// source, the helper's check without `loose`). `random` and `used` are [`find_port`]'s.
pub fn nat_ftp(
    pkt: &mut [u8],
    len: usize,
    tuples: &[Tuple; 2],
    dir: Dir,
    state: FieldState,
    random: impl FnMut() -> u32,
    used: impl FnMut(u16) -> bool,
) -> Outcome {
    let Some((_, data)) = layout(pkt, len) else { return Outcome::Untouched };
    let Some(m) = pkt.get(data..len).and_then(|p| find(p, dir)) else { return Outcome::Untouched };
    let Some(own) = tuples.get(dir.index()) else { return Outcome::Untouched };
    if m.addr.is_some_and(|a| a != own.src) {
        return Outcome::Untouched;
    }
    let Some(addr) = new_addr(tuples, dir) else { return Outcome::Untouched };
    let Some(port) = find_port(m.port, random, used) else { return Outcome::Drop };
    let Some(expect) = expectation(tuples, dir, port) else { return Outcome::Drop };
    let text = format(m.kind, addr, port);
    match mangle_tcp(pkt, len, m.off, m.len, text.as_bytes(), state) {
        Some(mangled) => Outcome::Rewritten(Rewritten { matched: m, expect, saved_port: m.port, mangled }),
        None => Outcome::Drop,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::checksum::{fold, pseudo_header, verify, verify_l4};
    use super::super::super::conntrack::ftp::parse;
    use super::super::seqadj::SeqAdjust;
    use super::*;
    use std::vec::Vec;

    const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
        u32::from_be_bytes([a, b, c, d])
    }

    const C: u32 = ip(192, 168, 1, 2); // a client behind the NAT
    const R: u32 = ip(10, 0, 2, 1); // the router's outside address
    const S: u32 = ip(10, 0, 2, 2); // a server outside

    fn tcp(src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
        Tuple { src, dst, sport, dport, proto: 6 }
    }

    /// SNAT of C to R: original C:40000 -> S:21, reply S:21 -> R:40000.
    const SNAT: [Tuple; 2] = [
        Tuple { src: C, dst: S, sport: 40000, dport: 21, proto: 6 },
        Tuple { src: S, dst: R, sport: 21, dport: 40000, proto: 6 },
    ];

    /// An IPv4 TCP packet with `payload`, correct checksums, `room` spare bytes after it.
    fn packet(src: u32, dst: u32, seq: u32, payload: &[u8], room: usize) -> (Vec<u8>, usize) {
        let mut p = std::vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src.to_be_bytes());
        p.extend_from_slice(&dst.to_be_bytes());
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&21u16.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&77u32.to_be_bytes());
        // 8 bytes of options (NOP NOP timestamp-like kind 8 len 6 ... kept short: two NOPs and
        // a 6-byte unknown option), to have a data offset other than 5.
        p.extend_from_slice(&[7 << 4, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(&[1, 1, 30, 6, 9, 9, 9, 9]);
        p.extend_from_slice(payload);
        let len = p.len();
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let c = !fold(checksum::add_bytes(pseudo_header(src, dst, 6, (len - 20) as u16), &p[20..]));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p.resize(len + room, 0xee);
        (p, len)
    }

    fn payload(p: &[u8], len: usize) -> &[u8] {
        &p[48..len]
    }

    fn valid(p: &[u8], len: usize) -> bool {
        let src = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
        let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
        verify(&p[..20]) && usize::from(u16::from_be_bytes([p[2], p[3]])) == len && verify_l4(src, dst, 6, &p[20..len])
    }

    #[test]
    fn formats_are_the_kernels() {
        let a = ip(10, 0, 2, 1);
        assert_eq!(format(Kind::Port, a, 50000).as_bytes(), b"10,0,2,1,195,80");
        assert_eq!(format(Kind::Pasv, a, 21).as_bytes(), b"10,0,2,1,0,21");
        assert_eq!(format(Kind::Eprt, a, 50000).as_bytes(), b"|1|10.0.2.1|50000|");
        assert_eq!(format(Kind::Epsv, a, 50000).as_bytes(), b"|||50000|");
        assert_eq!(format(Kind::Epsv, 0, 1).as_bytes(), b"|||1|");
        let max = u32::MAX;
        assert_eq!(format(Kind::Port, max, 65535).as_bytes(), b"255,255,255,255,255,255");
        assert_eq!(format(Kind::Eprt, max, 65535).as_bytes(), b"|1|255.255.255.255|65535|");
        assert_eq!(format(Kind::Eprt, 0, 0).as_bytes(), b"|1|0.0.0.0|0|");
    }

    #[test]
    fn find_locates_the_text() {
        type Case<'a> = (&'a [u8], Dir, Kind, &'a [u8], Option<u32>, u16);
        let cases: [Case<'_>; 6] = [
            (b"PORT 192,168,1,2,195,80\r\n", Dir::Original, Kind::Port, b"192,168,1,2,195,80", Some(C), 50000),
            (b"port   192,168,1,2,0,21\r\n", Dir::Original, Kind::Port, b"192,168,1,2,0,21", Some(C), 21),
            (b"EPRT |1|192.168.1.2|50000|\r\n", Dir::Original, Kind::Eprt, b"|1|192.168.1.2|50000|", Some(C), 50000),
            (b"EPRT !1!192.168.1.2!7!\r\n", Dir::Original, Kind::Eprt, b"!1!192.168.1.2!7!", Some(C), 7),
            (b"227 Entering Passive Mode (10,0,2,2,39,16).\r\n", Dir::Reply, Kind::Pasv, b"10,0,2,2,39,16", Some(S), 10000),
            (b"229 Entering extended passive mode (|||50001|).\r\n", Dir::Reply, Kind::Epsv, b"|||50001|", None, 50001),
        ];
        for (p, dir, kind, text, addr, port) in cases {
            let m = find(p, dir).unwrap();
            assert_eq!((m.kind, &p[m.off..m.off + m.len], m.addr, m.port), (kind, text, addr, port));
        }
        for (p, dir) in [
            (&b"PORT 192,168,1,2,0,0\r\n"[..], Dir::Original),
            (b"PORT 192,168,1,2,195,80\r\n", Dir::Reply),
            (b"227 Entering Passive Mode (10,0,2,2,39,16).\r\n", Dir::Original),
            (b"PORT 1,2,3\r\n", Dir::Original),
            (b"EPRT |2|::1|5|\r\n", Dir::Original),
            (b"229 (|||0|)\r\n", Dir::Reply),
            (b"229 (|||70000|)\r\n", Dir::Reply),
            (b"", Dir::Reply),
            (b"PORT", Dir::Original),
        ] {
            assert_eq!(find(p, dir), None, "{:?}", std::str::from_utf8(p));
        }
    }

    /// `find` agrees with the conntrack helper's `parse` on what it accepts and the port.
    #[test]
    fn find_agrees_with_the_helper() {
        let orig = SNAT[0];
        let base: [(&[u8], Dir); 4] = [
            (b"PORT 192,168,1,2,195,80\r\n", Dir::Original),
            (b"EPRT |1|192.168.1.2|50000|\r\n", Dir::Original),
            (b"227 Entering Passive Mode (10,0,2,2,39,16).\r\n", Dir::Reply),
            (b"229 Entering extended passive mode (|||50001|).\r\n", Dir::Reply),
        ];
        let mut x: u32 = 12345;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let alphabet = b"0123456789,.|( )1\r\nPORTEPRT227229";
        let mut agreed = 0;
        for (p, dir) in base {
            for _ in 0..3000 {
                let mut v = p.to_vec();
                for _ in 0..1 + rnd() % 3 {
                    let i = rnd() as usize % v.len();
                    let c = alphabet[rnd() as usize % alphabet.len()];
                    match rnd() % 3 {
                        0 => v[i] = c,
                        1 => v.insert(i, c),
                        _ => {
                            v.remove(i);
                        }
                    }
                    if v.is_empty() {
                        break;
                    }
                }
                let want = parse(&v, dir, &[orig, orig.invert().unwrap()]).map(|e| e.dport);
                let got = find(&v, dir)
                    .filter(|m| match (m.kind, m.addr) {
                        (Kind::Port | Kind::Eprt, Some(a)) => a == orig.src,
                        (Kind::Pasv, Some(a)) => a == orig.dst,
                        _ => true,
                    })
                    .map(|m| {
                        assert!(m.off + m.len <= v.len());
                        m.port
                    });
                assert_eq!(got, want, "{:?}", std::string::String::from_utf8_lossy(&v));
                agreed += usize::from(want.is_some());
            }
        }
        assert!(agreed > 100, "the mutations keep enough valid ones: {agreed}");
    }

    #[test]
    fn port_command_from_192_168_1_2_to_10_0_2_1() {
        let text = b"PORT 192,168,1,2,195,80\r\n";
        for state in [FieldState::Full, FieldState::Partial] {
            let (mut p, len) = packet(C, S, 1000, text, 64);
            assert!(valid(&p, len));
            // The port is free: the same one, the address shorter by 3.
            let out = nat_ftp(&mut p, len, &SNAT, Dir::Original, state, || 0, |_| false);
            let Outcome::Rewritten(r) = out else { panic!("{out:?}") };
            assert_eq!(r.mangled, Mangled { len: len - 3, delta: -3, seq: 1000 });
            assert_eq!(r.expect, Expect { src: S, dst: R, dport: 50000 });
            assert_eq!(r.saved_port, 50000);
            let n = r.mangled.len;
            assert_eq!(payload(&p, n), b"PORT 10,0,2,1,195,80\r\n");
            match state {
                FieldState::Full => assert!(valid(&p, n)),
                FieldState::Partial => {
                    assert!(verify(&p[..20]));
                    assert_eq!(u16::from_be_bytes([p[36], p[37]]), fold(pseudo_header(C, S, 6, (n - 20) as u16)));
                }
            }
        }
        // The port is taken: another, whose text is longer (the random number picks 64200,
        // "250,200": 1025 + 63175 of the 64510 ports above 1025).
        let pick = (63175u64 << 32).div_ceil(64510) as u32;
        let (mut p, len) = packet(C, S, 0xffff_fffe, b"PORT 192,168,1,2,4,1\r\n", 64);
        let out = nat_ftp(&mut p, len, &SNAT, Dir::Original, FieldState::Full, || pick, |port| port == 1025);
        let Outcome::Rewritten(r) = out else { panic!("{out:?}") };
        let chosen = r.expect.dport;
        assert_eq!(chosen, 64200);
        let want = std::format!("PORT 10,0,2,1,{},{}\r\n", chosen >> 8, chosen & 0xff);
        assert_eq!(payload(&p, r.mangled.len), want.as_bytes());
        assert_eq!(r.mangled.delta, want.len() as i32 - 22);
        assert_eq!(r.mangled.delta, 1, "the longest a 192.168.1.2 -> 10.0.2.1 PORT text can grow");
        assert!(valid(&p, r.mangled.len));
        assert_eq!(r.saved_port, 1025);
        // The data connection S:20 -> R:chosen goes to C:1025.
        let [src, dst] = follow_master(&SNAT, Dir::Original, r.saved_port).unwrap();
        assert_eq!((src.min_addr, src.max_addr, src.flags), (S, S, range::MAP_IPS));
        assert_eq!((dst.min_addr, dst.min_port, dst.max_port), (C, 1025, 1025));
        assert!(r.expect.matches(&tcp(S, 20, R, chosen)));
    }

    /// Passive mode to a DNATed server: the server's 10.0.2.1 becomes the public
    /// 192.168.100.200 the client connected to, 7 bytes longer; then seqadj carries the
    /// length change.
    #[test]
    fn pasv_reply_grows_and_seqadj_follows() {
        let client = ip(10, 9, 0, 5);
        let public = ip(192, 168, 100, 200);
        let server = ip(10, 0, 2, 1);
        let t = [tcp(client, 40000, public, 21), tcp(server, 21, client, 40000)];
        let text = b"227 Entering Passive Mode (10,0,2,1,195,80).\r\n";
        let (mut p, len) = packet(server, client, 7000, text, 16);
        let out = nat_ftp(&mut p, len, &t, Dir::Reply, FieldState::Full, || 0, |_| false);
        let Outcome::Rewritten(r) = out else { panic!("{out:?}") };
        assert_eq!(r.mangled, Mangled { len: len + 7, delta: 7, seq: 7000 });
        assert_eq!(payload(&p, r.mangled.len), b"227 Entering Passive Mode (192,168,100,200,195,80).\r\n");
        assert!(valid(&p, r.mangled.len));
        assert!(p[r.mangled.len..].iter().all(|b| *b == 0xee), "nothing written past the new end");
        assert_eq!(r.expect, Expect { src: client, dst: public, dport: 50000 });
        let [src, dst] = follow_master(&t, Dir::Reply, r.saved_port).unwrap();
        assert_eq!((src.min_addr, dst.min_addr, dst.min_port), (client, server, 50000));

        // seqadj: the reply direction grew by 7 from 7000 on.
        let mut adj = SeqAdjust::default();
        assert!(adj.record(Dir::Reply, r.mangled.seq, r.mangled.delta));
        // The mangled segment itself keeps its SEQ (the kernel adjusts it right after).
        let n = r.mangled.len;
        assert!(adj.adjust(&mut p[20..n], Dir::Reply, FieldState::Full));
        assert!(valid(&p, n));
        assert_eq!(u32::from_be_bytes([p[24], p[25], p[26], p[27]]), 7000);
        // The client acknowledges all of it (7000 + 53): the server knows it as 7000 + 46.
        let (mut a, alen) = packet(client, public, 500, b"", 0);
        a[28..32].copy_from_slice(&(7000u32 + 53).to_be_bytes());
        a[36..38].copy_from_slice(&[0, 0]);
        let c = !fold(checksum::add_bytes(pseudo_header(client, public, 6, (alen - 20) as u16), &a[20..]));
        a[36..38].copy_from_slice(&c.to_be_bytes());
        assert!(adj.adjust(&mut a[20..alen], Dir::Original, FieldState::Full));
        assert_eq!(u32::from_be_bytes([a[28], a[29], a[30], a[31]]), 7000 + 46);
        assert!(verify_l4(client, public, 6, &a[20..alen]));
    }

    #[test]
    fn eprt_and_epsv_rewrites() {
        let (mut p, len) = packet(C, S, 1, b"EPRT |1|192.168.1.2|50000|\r\n", 8);
        let Outcome::Rewritten(r) = nat_ftp(&mut p, len, &SNAT, Dir::Original, FieldState::Full, || 0, |_| false) else {
            panic!()
        };
        assert_eq!(payload(&p, r.mangled.len), b"EPRT |1|10.0.2.1|50000|\r\n");
        assert!(valid(&p, r.mangled.len));
        // EPSV: no address; the port moves when taken, and the delimiter becomes '|'.
        let (mut p, len) = packet(S, R, 1, b"229 Extended (!!!21000!)\r\n", 8);
        let out = nat_ftp(&mut p, len, &SNAT, Dir::Reply, FieldState::Full, || u32::MAX, |port| port == 21000);
        let Outcome::Rewritten(r) = out else { panic!("{out:?}") };
        assert_eq!(r.expect.dport, 21000 + ((u64::from(u32::MAX) * 44535) >> 32) as u16);
        let want = std::format!("229 Extended (|||{}|)\r\n", r.expect.dport);
        assert_eq!(payload(&p, r.mangled.len), want.as_bytes());
        assert_eq!(r.expect, Expect { src: C, dst: S, dport: r.expect.dport });
        assert!(valid(&p, r.mangled.len));
    }

    #[test]
    fn refusals_and_drops() {
        // Another host's address (not the sender's): untouched.
        let (mut p, len) = packet(C, S, 1, b"PORT 192,168,1,3,195,80\r\n", 8);
        let orig = p.clone();
        assert_eq!(nat_ftp(&mut p, len, &SNAT, Dir::Original, FieldState::Full, || 0, |_| false), Outcome::Untouched);
        assert_eq!(p, orig);
        // Every port taken: drop, nothing written.
        let (mut p, len) = packet(C, S, 1, b"PORT 192,168,1,2,195,80\r\n", 8);
        let orig = p.clone();
        let mut tries = 0;
        let out = nat_ftp(&mut p, len, &SNAT, Dir::Original, FieldState::Full, || 7, |_| {
            tries += 1;
            true
        });
        assert_eq!(out, Outcome::Drop);
        assert_eq!(tries, 129);
        assert_eq!(p, orig);
        // No room to grow: drop, nothing written.
        let (mut p, len) = packet(S, R, 1, b"227 (10,0,2,2,1,1)\r\n", 0);
        let orig = p.clone();
        let t = [tcp(C, 40000, ip(192, 168, 100, 200), 21), tcp(S, 21, C, 40000)];
        assert_eq!(nat_ftp(&mut p, len, &t, Dir::Reply, FieldState::Full, || 0, |_| false), Outcome::Drop);
        assert_eq!(p, orig);
        // Not a command at all.
        let (mut p, len) = packet(C, S, 1, b"USER anonymous\r\n", 8);
        assert_eq!(nat_ftp(&mut p, len, &SNAT, Dir::Original, FieldState::Full, || 0, |_| false), Outcome::Untouched);
    }

    #[test]
    fn find_port_as_nf_nat_exp_find_port() {
        assert_eq!(find_port(2000, || 0, |_| false), Some(2000));
        assert_eq!(find_port(0, || 0, |_| false), None);
        // Random ones in [port, 65535).
        let mut seen = Vec::new();
        let mut r = 1u32;
        let p = find_port(
            60000,
            || {
                r = r.wrapping_mul(2_654_435_761);
                r
            },
            |p| {
                seen.push(p);
                seen.len() < 50
            },
        );
        assert!(p.is_some_and(|p| (60000..65535).contains(&p)));
        assert!(seen.iter().all(|p| (60000..65535).contains(p)));
        // Near the top there are fewer tries; 65535 has just one.
        let mut n = 0;
        assert_eq!(find_port(65535, || 0, |_| { n += 1; true }), None);
        assert_eq!(n, 1);
        let mut n = 0;
        assert_eq!(find_port(65530, || u32::MAX, |_| { n += 1; true }), None);
        assert_eq!(n, 6);
        assert_eq!(find_port(65534, || u32::MAX, |p| p != 65534), Some(65534));
    }

    #[test]
    fn mangle_bounds_and_garbage() {
        let (p0, len) = packet(C, S, 1, b"PORT 192,168,1,2,195,80\r\n", 4);
        // Match outside the payload, empty and overlapping the end.
        for (off, mlen) in [(0, 26), (26, 0), (25, 2), (usize::MAX, 1), (1, usize::MAX)] {
            let mut p = p0.clone();
            let r = mangle_tcp(&mut p, len, off, mlen, b"x", FieldState::Full);
            assert_eq!(r, None, "{off} {mlen}");
            assert_eq!(p, p0);
        }
        // Exactly at the end: an insertion there works.
        let mut p = p0.clone();
        let r = mangle_tcp(&mut p, len, 25, 0, b"ab", FieldState::Full).unwrap();
        assert_eq!(payload(&p, r.len), b"PORT 192,168,1,2,195,80\r\nab");
        assert!(valid(&p, r.len));
        // Growth past the room; a length beyond the buffer; not TCP; not v4; fragments.
        let mut p = p0.clone();
        assert_eq!(mangle_tcp(&mut p, len, 0, 0, b"12345", FieldState::Full), None);
        let too_long = p.len() + 1;
        assert_eq!(mangle_tcp(&mut p, too_long, 0, 0, b"", FieldState::Full), None);
        for (i, v) in [(9, 17u8), (0, 0x65), (0, 0x44), (6, 0x20), (7, 1), (32, 0x40)] {
            let mut q = p0.clone();
            q[i] = v;
            assert_eq!(mangle_tcp(&mut q, len, 0, 1, b"", FieldState::Full), None, "byte {i} = {v}");
        }
        // Random bytes: no panic.
        let mut x: u32 = 0xdead_beef;
        for n in 0..400usize {
            let mut b: Vec<u8> = (0..n % 90)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if n % 2 == 0 && b.len() > 40 {
                b[0] = 0x45;
                b[6] = 0;
                b[7] = 0;
                b[9] = 6;
                b[32] = 0x50;
            }
            let len = b.len().saturating_sub(n % 7);
            let _ = mangle_tcp(&mut b, len, n % 5, n % 3, b"abc", FieldState::Full);
            let _ = nat_ftp(&mut b, len, &SNAT, Dir::Original, FieldState::Partial, || x, |p| p % 2 == 0);
            let _ = nat_ftp(&mut b, len, &SNAT, Dir::Reply, FieldState::Full, || x, |_| false);
            for dir in [Dir::Original, Dir::Reply] {
                let _ = find(&b, dir);
            }
        }
    }
}
