// SPDX-License-Identifier: GPL-2.0

//! Tuples: what identifies a flow in one direction (`struct nf_conntrack_tuple`, IPv4).
//!
//! TCP and UDP: addresses and ports. ICMP queries: addresses, the echo id as the source
//! "port" and `type << 8 | code` as the destination "port", exactly as the kernel's tuple
//! keeps them (so `--ctorigsrcport` on ICMP compares the id). Other protocols: addresses and
//! the protocol number, ports 0.

use super::super::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

/// A flow's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The direction of the flow's first packet.
    Original = 0,
    /// The other one.
    Reply = 1,
}

impl Dir {
    /// The other direction.
    pub fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }

    /// 0 or 1, to index per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A flow's zone (`struct nf_conntrack_zone`, set by `-j CT --zone`): flows of different zones
/// are different flows even with the same tuples. `dirs` says which directions the id
/// applies to (`--zone-orig`, `--zone-reply`); in the other the flow is in the default zone 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone {
    /// The zone id.
    pub id: u16,
    /// Bit 0: the original direction, bit 1: the reply direction.
    pub dirs: u8,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::DEFAULT
    }
}

impl Zone {
    /// The default zone.
    pub const DEFAULT: Zone = Zone { id: 0, dirs: 3 };

    /// The id in direction `d` (`nf_ct_zone_id`).
    pub fn id(&self, d: Dir) -> u16 {
        if self.dirs & (1 << d.index()) != 0 {
            self.id
        } else {
            0
        }
    }
}

/// One direction of a flow. Addresses in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port, or the ICMP id.
    pub sport: u16,
    /// Destination port, or ICMP `type << 8 | code`.
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
}

/// ICMP types.
pub mod icmp {
    /// Echo reply.
    pub const ECHOREPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETERPROB: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMPREPLY: u8 = 14;
    /// Information request.
    pub const INFO_REQUEST: u8 = 15;
    /// Information reply.
    pub const INFO_REPLY: u8 = 16;
    /// Address mask request.
    pub const ADDRESS: u8 = 17;
    /// Address mask reply.
    pub const ADDRESSREPLY: u8 = 18;

    /// The reply type of a query type (`invmap` in nf_conntrack_proto_icmp.c), for queries
    /// and their replies; `None` for everything else.
    pub fn inverse(t: u8) -> Option<u8> {
        Some(match t {
            ECHO => ECHOREPLY,
            ECHOREPLY => ECHO,
            TIMESTAMP => TIMESTAMPREPLY,
            TIMESTAMPREPLY => TIMESTAMP,
            INFO_REQUEST => INFO_REPLY,
            INFO_REPLY => INFO_REQUEST,
            ADDRESS => ADDRESSREPLY,
            ADDRESSREPLY => ADDRESS,
            _ => return None,
        })
    }

    /// A query type that may start a flow (`valid_new` in nf_conntrack_proto_icmp.c).
    pub fn starts_flow(t: u8) -> bool {
        matches!(t, ECHO | TIMESTAMP | INFO_REQUEST | ADDRESS)
    }

    /// An error type that carries the header of the packet it is about.
    pub fn is_error(t: u8) -> bool {
        matches!(t, DEST_UNREACH | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETERPROB)
    }
}

impl Tuple {
    /// The tuple a packet of the other direction carries (`nf_ct_invert_tuple`); `None` for
    /// an ICMP type without an inverse.
    pub fn invert(&self) -> Option<Tuple> {
        let (sport, dport) = if self.proto == IPPROTO_ICMP {
            let ty = icmp::inverse((self.dport >> 8) as u8)?;
            (self.sport, u16::from(ty) << 8 | (self.dport & 0xff))
        } else {
            (self.dport, self.sport)
        };
        Some(Tuple { src: self.dst, dst: self.src, sport, dport, proto: self.proto })
    }

    /// True for protocols whose tuples carry ports (TCP, UDP) or the ICMP id.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP)
    }

    /// A keyed hash of the tuple: `key` is chosen at random per boot, so that a remote sender
    /// cannot aim many flows at one bucket. SipHash-1-3 over the tuple's 13 bytes.
    pub fn hash(&self, key: &[u64; 2]) -> u32 {
        let m0 = u64::from(self.src) << 32 | u64::from(self.dst);
        let m1 = u64::from(self.sport) << 48 | u64::from(self.dport) << 32 | u64::from(self.proto) << 24;
        hash_words(key, &[m0, m1])
    }
}

/// The keyed hash of a tuple packed in two words (with its zone id, as the table packs it).
pub fn hash_words(key: &[u64; 2], w: &[u64; 2]) -> u32 {
    let h = siphash13(key, w);
    (h ^ (h >> 32)) as u32
}

/// SipHash-1-3 over whole 64-bit words (the length is folded into the last word as SipHash
/// does for byte strings of `8 * words.len()` bytes).
fn siphash13(key: &[u64; 2], words: &[u64]) -> u64 {
    let mut v0 = key[0] ^ 0x736f_6d65_7073_6575;
    let mut v1 = key[1] ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = key[0] ^ 0x6c79_6765_6e65_7261;
    let mut v3 = key[1] ^ 0x7465_6462_7974_6573;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    for &m in words {
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let b = ((words.len() as u64 * 8) & 0xff) << 56;
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// What the conntrack stage reads from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A packet that can belong to a flow: its tuple, and the transport header and payload
    /// that the packet holds from the transport header on (as much as was copied).
    Flow {
        /// The packet's tuple.
        tuple: Tuple,
        /// From the transport header on.
        l4: &'a [u8],
    },
    /// An ICMP error: its own header says which flow it is about; `inner` is the tuple of
    /// the offending packet as it was sent (the flow it belongs to, seen from its sender).
    IcmpError {
        /// The tuple of the packet quoted inside the error.
        inner: Tuple,
        /// The error's own destination: it must go back to the quoted packet's sender.
        outer_dst: u32,
    },
    /// A non-first fragment, or a header too short to read: the kernel gives such packets no
    /// flow (INVALID), as `nf_ct_get_tuple` fails.
    Invalid,
}

/// Reads the tuple of a packet: `ip` is the IPv4 header's fields, `l4` the bytes after it.
pub fn parse<'a>(src: u32, dst: u32, proto: u8, frag_offset: u16, l4: &'a [u8]) -> Parsed<'a> {
    if frag_offset != 0 {
        return Parsed::Invalid;
    }
    let t = Tuple { src, dst, sport: 0, dport: 0, proto };
    match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let Some(h) = l4.first_chunk::<4>() else { return Parsed::Invalid };
            let sport = u16::from_be_bytes([h[0], h[1]]);
            let dport = u16::from_be_bytes([h[2], h[3]]);
            Parsed::Flow { tuple: Tuple { sport, dport, ..t }, l4 }
        }
        IPPROTO_ICMP => {
            let Some(h) = l4.first_chunk::<8>() else { return Parsed::Invalid };
            let (ty, code) = (h[0], h[1]);
            if icmp::is_error(ty) {
                return match l4.get(8..).and_then(inner_tuple) {
                    Some(inner) => Parsed::IcmpError { inner, outer_dst: dst },
                    None => Parsed::Invalid,
                };
            }
            let id = u16::from_be_bytes([h[4], h[5]]);
            Parsed::Flow { tuple: Tuple { sport: id, dport: u16::from(ty) << 8 | u16::from(code), ..t }, l4 }
        }
        _ => Parsed::Flow { tuple: t, l4 },
    }
}

/// The tuple of the IPv4 packet quoted in an ICMP error (its header and at least 8 bytes of
/// its transport header, as RFC 792 requires). An inner ICMP error gives `None`: the kernel
/// does not track errors about errors.
fn inner_tuple(quoted: &[u8]) -> Option<Tuple> {
    let h = quoted.first_chunk::<20>()?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    let l4 = quoted.get(ihl..)?;
    match parse(src, dst, h[9], frag, l4) {
        Parsed::Flow { tuple, .. } => Some(tuple),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u32 = 0x0a00_0102;
    const B: u32 = 0x0a00_0202;

    #[test]
    fn tcp_udp_ports_and_inversion() {
        let l4 = [0x30, 0x39, 0x00, 0x50, 0, 0, 0, 0];
        let Parsed::Flow { tuple, .. } = parse(A, B, IPPROTO_TCP, 0, &l4) else { panic!() };
        assert_eq!(tuple, Tuple { src: A, dst: B, sport: 12345, dport: 80, proto: 6 });
        let r = tuple.invert().unwrap();
        assert_eq!(r, Tuple { src: B, dst: A, sport: 80, dport: 12345, proto: 6 });
        assert_eq!(r.invert().unwrap(), tuple);
        assert_eq!(parse(A, B, IPPROTO_UDP, 0, &l4[..3]), Parsed::Invalid);
        assert_eq!(parse(A, B, IPPROTO_UDP, 100, &l4), Parsed::Invalid);
    }

    #[test]
    fn icmp_echo_id_and_type() {
        let echo = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let Parsed::Flow { tuple, .. } = parse(A, B, IPPROTO_ICMP, 0, &echo) else { panic!() };
        assert_eq!((tuple.sport, tuple.dport), (0x1234, 0x0800));
        let r = tuple.invert().unwrap();
        assert_eq!((r.src, r.dst, r.sport, r.dport), (B, A, 0x1234, 0x0000));
        // An ICMP type that is neither query nor reply has no inverse.
        let t = Tuple { dport: 0x2a00, ..tuple };
        assert_eq!(t.invert(), None);
    }

    #[test]
    fn icmp_error_quotes_the_flow() {
        let mut e = [0u8; 8 + 20 + 8];
        e[0] = icmp::DEST_UNREACH;
        e[1] = 3;
        let q = &mut e[8..];
        q[0] = 0x45;
        q[9] = IPPROTO_UDP;
        q[12..16].copy_from_slice(&A.to_be_bytes());
        q[16..20].copy_from_slice(&B.to_be_bytes());
        q[20..24].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        let Parsed::IcmpError { inner, outer_dst } = parse(B, A, IPPROTO_ICMP, 0, &e) else { panic!() };
        assert_eq!(outer_dst, A);
        assert_eq!(inner, Tuple { src: A, dst: B, sport: 12345, dport: 53, proto: 17 });
        assert_eq!(parse(B, A, IPPROTO_ICMP, 0, &e[..8 + 19]), Parsed::Invalid);
    }

    #[test]
    fn hash_depends_on_key_and_every_field() {
        let t = Tuple { src: A, dst: B, sport: 1, dport: 2, proto: 6 };
        let k = [1, 2];
        let h = t.hash(&k);
        assert_ne!(h, t.hash(&[1, 3]));
        for u in [
            Tuple { src: A + 1, ..t },
            Tuple { dst: B + 1, ..t },
            Tuple { sport: 3, ..t },
            Tuple { dport: 3, ..t },
            Tuple { proto: 17, ..t },
        ] {
            assert_ne!(h, u.hash(&k), "{u:?}");
        }
    }
}
