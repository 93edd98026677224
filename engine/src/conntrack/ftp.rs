// SPDX-License-Identifier: GPL-2.0

//! The FTP helper (`nf_conntrack_ftp.c`): reads the control connection and announces the
//! data connection it sets up, so that connection is RELATED.
//!
//! Active mode: the client sends `PORT a,b,c,d,p1,p2` or `EPRT |1|a.b.c.d|port|`; the
//! server will connect from its side to that address and port. Passive mode: the server
//! answers `227 ... (a,b,c,d,p1,p2)` or `229 ... (|||port|)`; the client will connect to it.
//! As the kernel, the announced address must be the sender's own (no bounce to a third host),
//! and a command is looked for at the start of the segment's payload.

use super::tuple::{Dir, Tuple};
use super::super::packet::IPPROTO_TCP;

/// A data connection the control connection announced: any source port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// Source address of the data connection.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Destination port.
    pub dport: u16,
}

impl Expect {
    /// True when a new flow with tuple `t` is this data connection.
    pub fn matches(&self, t: &Tuple) -> bool {
        t.proto == IPPROTO_TCP && t.src == self.src && t.dst == self.dst && t.dport == self.dport
    }
}

/// Seconds an announced data connection may take to start (the ftp helper's expect policy).
pub const EXPECT_TIMEOUT: u32 = 300;

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b' ').count();
    s.get(n..).unwrap_or(&[])
}

/// A decimal number of at most `max`, and the rest.
fn number(s: &[u8], max: u32) -> Option<(u32, &[u8])> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for c in s.get(..n)? {
        v = v.checked_mul(10)?.checked_add(u32::from(c.wrapping_sub(b'0')))?;
    }
    (v <= max).then_some((v, s.get(n..)?))
}

/// `a,b,c,d,p1,p2` (`try_rfc959`): address, port and the length of the text.
pub(crate) fn rfc959(s: &[u8]) -> Option<(u32, u16, usize)> {
    let mut v = [0u32; 6];
    let mut rest = s;
    for (i, slot) in v.iter_mut().enumerate() {
        let (n, r) = number(rest, 255)?;
        *slot = n;
        rest = r;
        if i < 5 {
            rest = rest.strip_prefix(b",")?;
        }
    }
    let [a, b, c, d, p1, p2] = v;
    let len = s.len().checked_sub(rest.len())?;
    Some((a << 24 | b << 16 | c << 8 | d, (p1 << 8 | p2) as u16, len))
}

/// `|1|a.b.c.d|port|` (`try_eprt`, IPv4 only): address, port and the length of the text.
pub(crate) fn eprt(s: &[u8]) -> Option<(u32, u16, usize)> {
    let d = *s.first()?;
    if !(33..=126).contains(&d) {
        return None;
    }
    let rest = s.get(1..)?.strip_prefix(b"1")?;
    let mut rest = rest.strip_prefix(&[d])?;
    let mut addr = 0u32;
    for i in 0..4 {
        let (n, r) = number(rest, 255)?;
        addr = addr << 8 | n;
        rest = if i < 3 { r.strip_prefix(b".")? } else { r };
    }
    let rest = rest.strip_prefix(&[d])?;
    let (port, rest) = number(rest, 65535)?;
    let rest = rest.strip_prefix(&[d])?;
    Some((addr, port as u16, s.len().checked_sub(rest.len())?))
}

/// `|||port|` (`try_epsv_response`): port and the length of the text.
pub(crate) fn epsv(s: &[u8]) -> Option<(u16, usize)> {
    let d = *s.first()?;
    let rest = s.get(1..)?.strip_prefix(&[d])?.strip_prefix(&[d])?;
    let (port, rest) = number(rest, 65535)?;
    let rest = rest.strip_prefix(&[d])?;
    Some((port as u16, s.len().checked_sub(rest.len())?))
}

/// Reads one control segment's payload going in `dir` of the FTP flow with tuples `tuples`
/// (original, reply); returns the data connection it announces, if any. As the kernel's, the
/// announced address must be the sender's own as its direction's tuple has it (the real
/// server's behind a DNAT), and the data connection comes from the other side's address.
pub fn parse(payload: &[u8], dir: Dir, tuples: &[Tuple; 2]) -> Option<Expect> {
    // client: the original direction's source; server: the reply direction's source.
    let (client, server) = (tuples[0].src, tuples[1].src);
    let starts = |p: &[u8], word: &[u8]| {
        p.len() >= word.len() && p.get(..word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    match dir {
        Dir::Original => {
            let (addr, port) = if starts(payload, b"PORT") {
                rfc959(skip_spaces(payload.get(4..)?)).map(|(a, p, _)| (a, p))?
            } else if starts(payload, b"EPRT") {
                eprt(skip_spaces(payload.get(4..)?)).map(|(a, p, _)| (a, p))?
            } else {
                return None;
            };
            // The server connects back to the client, which may only name itself.
            (addr == client && port != 0).then_some(Expect { src: server, dst: client, dport: port })
        }
        Dir::Reply => {
            if starts(payload, b"227") {
                // "227 Entering Passive Mode (a,b,c,d,p1,p2)": the numbers after the first
                // digit that follows the code.
                let at = payload.iter().skip(3).position(|c| c.is_ascii_digit())? + 3;
                let (addr, port, _) = rfc959(payload.get(at..)?)?;
                (addr == server && port != 0).then_some(Expect { src: client, dst: server, dport: port })
            } else if starts(payload, b"229") {
                let at = payload.iter().position(|c| *c == b'(')? + 1;
                let (port, _) = epsv(payload.get(at..)?)?;
                (port != 0).then_some(Expect { src: client, dst: server, dport: port })
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: u32 = 0x0a00_0102;
    const S: u32 = 0x0a00_0202;
    const ORIG: Tuple = Tuple { src: C, dst: S, sport: 40000, dport: 21, proto: 6 };
    const REPLY: Tuple = Tuple { src: S, dst: C, sport: 21, dport: 40000, proto: 6 };

    #[test]
    fn active_and_passive() {
        assert_eq!(
            parse(b"PORT 10,0,1,2,195,80\r\n", Dir::Original, &[ORIG, REPLY]),
            Some(Expect { src: S, dst: C, dport: 195 * 256 + 80 })
        );
        assert_eq!(
            parse(b"EPRT |1|10.0.1.2|50000|\r\n", Dir::Original, &[ORIG, REPLY]),
            Some(Expect { src: S, dst: C, dport: 50000 })
        );
        assert_eq!(
            parse(b"227 Entering Passive Mode (10,0,2,2,39,16).\r\n", Dir::Reply, &[ORIG, REPLY]),
            Some(Expect { src: C, dst: S, dport: 39 * 256 + 16 })
        );
        assert_eq!(
            parse(b"229 Entering extended passive mode (|||50001|).\r\n", Dir::Reply, &[ORIG, REPLY]),
            Some(Expect { src: C, dst: S, dport: 50001 })
        );
        assert!(Expect { src: C, dst: S, dport: 5 }.matches(&Tuple { src: C, dst: S, sport: 9, dport: 5, proto: 6 }));
    }

    #[test]
    fn refused() {
        // Another host's address (an FTP bounce), bad numbers, other commands, wrong side.
        assert_eq!(parse(b"PORT 10,0,9,9,1,1\r\n", Dir::Original, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"PORT 10,0,1,256,1,1\r\n", Dir::Original, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"PORT 10,0,1\r\n", Dir::Original, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"USER anonymous\r\n", Dir::Original, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"227 (10,0,9,9,1,1)\r\n", Dir::Reply, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"PORT 10,0,1,2,195,80\r\n", Dir::Reply, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"EPRT |2|::1|5|\r\n", Dir::Original, &[ORIG, REPLY]), None);
        assert_eq!(parse(b"", Dir::Reply, &[ORIG, REPLY]), None);
        for n in 0..64usize {
            let junk: [u8; 64] = core::array::from_fn(|i| (i * 31 + n * 7) as u8);
            let _ = parse(&junk[..n], Dir::Original, &[ORIG, REPLY]);
            let _ = parse(&junk[..n], Dir::Reply, &[ORIG, REPLY]);
        }
    }
}
