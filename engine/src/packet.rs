// SPDX-License-Identifier: GPL-2.0

//! IPv4, TCP, UDP and ICMP header parsing on byte slices.
//!
//! Nothing here trusts its input: every length is checked before it is used and every parser
//! returns an error instead of panicking. The kernel glue hands in the bytes it copied or
//! pulled from the skb; the host tests hand in crafted and random bytes.

use super::checksum;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Why a header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the header needs.
    Truncated,
    /// The version field is not 4.
    NotIpv4,
    /// The IHL field is below 5 or points past the data.
    BadHeaderLength,
    /// The total length is shorter than the header.
    BadTotalLength,
    /// The header checksum does not verify.
    BadChecksum,
}

/// The fields of an IPv4 header that the filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Header length in bytes (IHL * 4).
    pub header_len: usize,
    /// Type of service / DSCP + ECN byte.
    pub tos: u8,
    /// Total length of the datagram (header and payload), from the header.
    pub total_len: u16,
    /// Identification.
    pub id: u16,
    /// The "don't fragment" flag.
    pub dont_fragment: bool,
    /// The "more fragments" flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Transport protocol number.
    pub protocol: u8,
    /// Header checksum as found.
    pub checksum: u16,
    /// Source address (host order).
    pub src: u32,
    /// Destination address (host order).
    pub dst: u32,
}

impl Ipv4Header {
    /// Parses the header at the start of `data` (which may hold more than the header).
    ///
    /// The header checksum is not verified here; see [`Ipv4Header::verify_checksum`].
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let h = Self::parse_any(data)?;
        if data.first().is_some_and(|b| b >> 4 != 4) {
            return Err(ParseError::NotIpv4);
        }
        if h.header_len < 20 {
            return Err(ParseError::BadHeaderLength);
        }
        if data.len() < h.header_len {
            return Err(ParseError::Truncated);
        }
        if usize::from(h.total_len) < h.header_len {
            return Err(ParseError::BadTotalLength);
        }
        Ok(h)
    }


    /// Reads the header as ip_tables does: only the first 20 bytes must be there; the version,
    /// IHL and total length are taken as they are, unchecked.
    ///
    /// The packet path must give every packet a verdict from the rules, also one whose header
    /// is nonsense (a raw socket with `IP_HDRINCL` may send version 5 or any IHL the kernel
    /// lets through), and `tot_len` is 0 in a GSO packet over 64 KiB (BIG TCP). ip_tables
    /// matches on the fields it finds and starts the transport header at IHL * 4; so does the
    /// engine with this. `header_len` may thus be below 20.
    pub fn parse_any(data: &[u8]) -> Result<Self, ParseError> {
        let fixed = data.first_chunk::<20>().ok_or(ParseError::Truncated)?;
        let frag = u16::from_be_bytes([fixed[6], fixed[7]]);
        Ok(Self {
            header_len: usize::from(fixed[0] & 0x0f) * 4,
            tos: fixed[1],
            total_len: u16::from_be_bytes([fixed[2], fixed[3]]),
            id: u16::from_be_bytes([fixed[4], fixed[5]]),
            dont_fragment: frag & 0x4000 != 0,
            more_fragments: frag & 0x2000 != 0,
            frag_offset: frag & 0x1fff,
            ttl: fixed[8],
            protocol: fixed[9],
            checksum: u16::from_be_bytes([fixed[10], fixed[11]]),
            src: u32::from_be_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]),
            dst: u32::from_be_bytes([fixed[16], fixed[17], fixed[18], fixed[19]]),
        })
    }

    /// True when this datagram is a fragment (not the whole datagram).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// True for the second and later fragments, which carry no transport header (`-f`).
    pub fn is_later_fragment(&self) -> bool {
        self.frag_offset != 0
    }

    /// Verifies the header checksum over `data[..header_len]`.
    pub fn verify_checksum(&self, data: &[u8]) -> Result<(), ParseError> {
        let hdr = data.get(..self.header_len).ok_or(ParseError::Truncated)?;
        if checksum::verify(hdr) {
            Ok(())
        } else {
            Err(ParseError::BadChecksum)
        }
    }
}

/// The transport header fields the filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP: ports, sequence numbers and flags.
    Tcp(TcpHeader),
    /// UDP: ports and length.
    Udp(UdpHeader),
    /// ICMP: type and code (and the echo identifier, when it is an echo).
    Icmp(IcmpHeader),
    /// Any other protocol, or a later fragment: no transport header.
    Other,
}

/// TCP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Header length in bytes (data offset * 4).
    pub header_len: usize,
    /// The flag bits FIN (0x01) .. CWR (0x80).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
}

/// TCP flag bit FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag bit SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag bit RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag bit PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag bit ACK.
pub const TCP_ACK: u8 = 0x10;
/// TCP flag bit URG.
pub const TCP_URG: u8 = 0x20;

impl TcpHeader {
    /// Parses a TCP header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let h = data.get(..20).ok_or(ParseError::Truncated)?;
        let header_len = usize::from(h[12] >> 4) * 4;
        if header_len < 20 {
            return Err(ParseError::BadHeaderLength);
        }
        Ok(Self {
            sport: u16::from_be_bytes([h[0], h[1]]),
            dport: u16::from_be_bytes([h[2], h[3]]),
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            header_len,
            flags: h[13],
            window: u16::from_be_bytes([h[14], h[15]]),
        })
    }
}

/// UDP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Length of header and payload, from the header.
    pub len: u16,
    /// Checksum as found (0: not computed).
    pub checksum: u16,
}

impl UdpHeader {
    /// Parses a UDP header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let h = data.get(..8).ok_or(ParseError::Truncated)?;
        Ok(Self {
            sport: u16::from_be_bytes([h[0], h[1]]),
            dport: u16::from_be_bytes([h[2], h[3]]),
            len: u16::from_be_bytes([h[4], h[5]]),
            checksum: u16::from_be_bytes([h[6], h[7]]),
        })
    }
}

/// ICMP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpHeader {
    /// Message type.
    pub icmp_type: u8,
    /// Message code.
    pub code: u8,
    /// The identifier of an echo request or reply (bytes 4..6), else 0.
    pub id: u16,
}

/// ICMP type echo reply.
pub const ICMP_ECHOREPLY: u8 = 0;
/// ICMP type destination unreachable.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// ICMP type echo request.
pub const ICMP_ECHO: u8 = 8;
/// ICMP type time exceeded.
pub const ICMP_TIME_EXCEEDED: u8 = 11;

impl IcmpHeader {
    /// Parses an ICMP header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let h = data.get(..8).ok_or(ParseError::Truncated)?;
        let is_echo = h[0] == ICMP_ECHO || h[0] == ICMP_ECHOREPLY;
        Ok(Self {
            icmp_type: h[0],
            code: h[1],
            id: if is_echo { u16::from_be_bytes([h[4], h[5]]) } else { 0 },
        })
    }
}

/// A parsed IPv4 packet: the network header and, where there is one, the transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The IPv4 header.
    pub ip: Ipv4Header,
    /// The transport header, or [`Transport::Other`].
    pub l4: Transport,
}

/// The number of bytes of a packet the parser needs at most: an IPv4 header with all options
/// (60) and a TCP header without options (20). The glue copies at most this much.
pub const MAX_PARSE_LEN: usize = 80;

impl Packet {
    /// Parses the IPv4 header and the transport header that follows it.
    ///
    /// `data` starts at the IPv4 header and may be cut short (the glue copies only the first
    /// [`MAX_PARSE_LEN`] bytes); a transport header that does not fit is an error, except in a
    /// later fragment, which has none.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let ip = Ipv4Header::parse(data)?;
        let rest = data.get(ip.header_len..).ok_or(ParseError::Truncated)?;
        let l4 = if ip.is_later_fragment() {
            Transport::Other
        } else {
            match ip.protocol {
                IPPROTO_TCP => Transport::Tcp(TcpHeader::parse(rest)?),
                IPPROTO_UDP => Transport::Udp(UdpHeader::parse(rest)?),
                IPPROTO_ICMP => Transport::Icmp(IcmpHeader::parse(rest)?),
                _ => Transport::Other,
            }
        };
        Ok(Self { ip, l4 })
    }

    /// Source and destination ports for TCP and UDP, else `None`.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            Transport::Tcp(t) => Some((t.sport, t.dport)),
            Transport::Udp(u) => Some((u.sport, u.dport)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, payload: &[u8]) -> [u8; 128] {
        let mut p = [0u8; 128];
        let total = 20 + payload.len();
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[10, 0, 1, 2]);
        p[16..20].copy_from_slice(&[10, 0, 2, 2]);
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..total].copy_from_slice(payload);
        p
    }

    #[test]
    fn parses_udp() {
        let udp = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd'];
        let p = ipv4(IPPROTO_UDP, &udp);
        let pkt = Packet::parse(&p).unwrap();
        assert_eq!(pkt.ip.src, 0x0a00_0102);
        assert_eq!(pkt.ip.dst, 0x0a00_0202);
        assert_eq!(pkt.ip.ttl, 64);
        assert!(pkt.ip.dont_fragment);
        assert!(!pkt.ip.is_fragment());
        assert_eq!(pkt.ports(), Some((12345, 53)));
        pkt.ip.verify_checksum(&p).unwrap();
    }

    #[test]
    fn parses_tcp_flags() {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&8080u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = TCP_SYN | TCP_ACK;
        let p = ipv4(IPPROTO_TCP, &tcp);
        let pkt = Packet::parse(&p).unwrap();
        match pkt.l4 {
            Transport::Tcp(t) => {
                assert_eq!((t.sport, t.dport, t.seq), (443, 8080, 1000));
                assert_eq!(t.flags, TCP_SYN | TCP_ACK);
                assert_eq!(t.header_len, 20);
            }
            other => panic!("not tcp: {other:?}"),
        }
    }

    #[test]
    fn parses_icmp_echo() {
        let icmp = [ICMP_ECHO, 0, 0, 0, 0x12, 0x34, 0, 1];
        let p = ipv4(IPPROTO_ICMP, &icmp);
        let pkt = Packet::parse(&p).unwrap();
        assert_eq!(pkt.l4, Transport::Icmp(IcmpHeader { icmp_type: 8, code: 0, id: 0x1234 }));
    }

    #[test]
    fn rejects_bad_headers() {
        let p = ipv4(IPPROTO_UDP, &[0; 8]);
        assert_eq!(Ipv4Header::parse(&p[..19]), Err(ParseError::Truncated));
        let mut v6 = p;
        v6[0] = 0x65;
        assert_eq!(Ipv4Header::parse(&v6), Err(ParseError::NotIpv4));
        let mut short_ihl = p;
        short_ihl[0] = 0x44;
        assert_eq!(Ipv4Header::parse(&short_ihl), Err(ParseError::BadHeaderLength));
        let mut long_ihl = p;
        long_ihl[0] = 0x4f;
        assert_eq!(Ipv4Header::parse(&long_ihl[..40]), Err(ParseError::Truncated));
        let mut bad_total = p;
        bad_total[2] = 0;
        bad_total[3] = 10;
        assert_eq!(Ipv4Header::parse(&bad_total), Err(ParseError::BadTotalLength));
        let mut bad_sum = p;
        bad_sum[8] = 1;
        let h = Ipv4Header::parse(&bad_sum).unwrap();
        assert_eq!(h.verify_checksum(&bad_sum), Err(ParseError::BadChecksum));
        // A TCP header cut short is an error, not a panic.
        let tcp = ipv4(IPPROTO_TCP, &[0; 20]);
        assert_eq!(Packet::parse(&tcp[..30]), Err(ParseError::Truncated));
    }

    #[test]
    fn later_fragment_has_no_transport_header() {
        let mut p = ipv4(IPPROTO_TCP, &[0xff; 8]);
        p[6] = 0x00;
        p[7] = 0x10; // offset 16 * 8 bytes
        let pkt = Packet::parse(&p[..28]).unwrap();
        assert!(pkt.ip.is_later_fragment());
        assert_eq!(pkt.l4, Transport::Other);
    }

    /// No input, however malformed, makes the parser panic.
    #[test]
    fn never_panics_on_random_input() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 96];
        for round in 0..20_000 {
            for b in buf.iter_mut() {
                seed ^= seed << 7;
                seed ^= seed >> 9;
                *b = seed as u8;
            }
            if round % 2 == 0 {
                buf[0] = 0x40 | (buf[0] & 0x0f);
            }
            let len = (seed as usize) % buf.len();
            let _ = Packet::parse(&buf[..len]);
            if let Ok(h) = Ipv4Header::parse(&buf[..len]) {
                let _ = h.verify_checksum(&buf[..len]);
            }
        }
    }
}
