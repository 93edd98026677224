// SPDX-License-Identifier: GPL-2.0

//! The TCPMSS target's rewrite of a TCP SYN (xt_TCPMSS's `tcpmss_mangle_packet` and
//! `tcpmss_tg4`): lower the MSS option to a set value or to what the path MTU allows, or add
//! the option when the segment has none, keeping the TCP and IP checksums right.

use super::super::checksum::{replace2, replace4, update_u16, FieldState};

/// `--clamp-mss-to-pmtu` on the wire (`XT_TCPMSS_CLAMP_PMTU`).
pub const CLAMP_PMTU: u16 = 0xFFFF;

/// The IPv4 and TCP headers without options: what an MSS leaves of an MTU.
const MIN_LEN: u32 = 40;
/// The MSS option's kind and length.
const TCPOPT_MSS: u8 = 2;
const TCPOLEN_MSS: usize = 4;
/// Added to a SYN without the option: IPv4's default MSS (RFC 1122).
const DEFAULT_MSS: u16 = 536;

/// The MSS the rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewMss {
    /// `--set-mss`.
    Set(u16),
    /// `--clamp-mss-to-pmtu`: the smaller of the route's MTU and the reverse route's.
    Clamp(u32),
}

/// What [`mangle`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mangled {
    /// The packet's length (the old one, or 4 bytes more when the option was added).
    pub len: usize,
    /// The segment's MSS option now (`None`: it has none).
    pub mss: Option<u16>,
}

/// Rewrites the segment in `buf` (the packet from its IPv4 header on, `len` bytes of it, and
/// at least 4 spare bytes after them in `buf` for an added option). `None` drops the packet (a
/// header cut short, a path MTU too small), as xt_TCPMSS returns NF_DROP. Nothing is done to a
/// fragment.
pub fn mangle(buf: &mut [u8], len: usize, mss: NewMss, state: FieldState) -> Option<Mangled> {
    let (new_len, now) = rewrite(buf, len, mss, state).ok()?;
    Some(Mangled { len: new_len, mss: now })
}

fn rewrite(buf: &mut [u8], len: usize, mss: NewMss, state: FieldState) -> Result<(usize, Option<u16>), ()> {
    let ip = buf.first_chunk::<20>().ok_or(())?;
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x1FFF != 0 {
        return Ok((len, None));
    }
    let plen = len.checked_sub(ihl).ok_or(())?;
    if plen < 20 {
        return Err(());
    }
    let hdrlen = usize::from(buf.get(ihl + 12).ok_or(())? >> 4) * 4;
    if plen < hdrlen || hdrlen < 20 {
        return Err(());
    }
    let newmss = match mss {
        NewMss::Set(v) => v,
        NewMss::Clamp(mtu) if mtu <= MIN_LEN => return Err(()),
        // As the kernel's u16 assignment.
        NewMss::Clamp(mtu) => (mtu - MIN_LEN) as u16,
    };
    let hdr = buf.get_mut(ihl..ihl + hdrlen).ok_or(())?;
    let mut i = 20;
    while let Some(&[kind, olen, hi, lo]) = hdr.get(i..).and_then(|o| o.first_chunk::<4>()) {
        if kind == TCPOPT_MSS && usize::from(olen) == TCPOLEN_MSS {
            let old = u16::from_be_bytes([hi, lo]);
            // Never raise the MSS.
            if old <= newmss {
                return Ok((len, Some(old)));
            }
            if let Some(v) = hdr.get_mut(i + 2..i + 4) {
                v.copy_from_slice(&newmss.to_be_bytes());
            }
            let t = hdr.first_chunk_mut::<20>().ok_or(())?;
            set_check(t, replace2(check(t), state, old, newmss, false));
            return Ok((len, Some(newmss)));
        }
        // Zero-length options make progress too.
        i += if kind <= 1 || olen == 0 { 1 } else { usize::from(olen) };
    }
    // Data after the header (the option cannot go in without moving it), or no room left in
    // the 4-bit data offset: the packet goes on unchanged.
    if plen > hdrlen || hdrlen >= 60 {
        return Ok((len, None));
    }
    let newmss = newmss.min(DEFAULT_MSS);
    let grown = plen + TCPOLEN_MSS;
    let seg = buf.get_mut(ihl..ihl + grown).ok_or(())?;
    seg.copy_within(20..plen, 20 + TCPOLEN_MSS);
    let [hi, lo] = newmss.to_be_bytes();
    let opt = [TCPOPT_MSS, TCPOLEN_MSS as u8, hi, lo];
    if let Some(o) = seg.get_mut(20..24) {
        o.copy_from_slice(&opt);
    }
    let t = seg.first_chunk_mut::<20>().ok_or(())?;
    let mut c = replace2(check(t), state, plen as u16, grown as u16, true);
    c = replace4(c, state, 0, u32::from_be_bytes(opt), false);
    let old_word = u16::from_be_bytes([t[12], t[13]]);
    t[12] = t[12].wrapping_add((TCPOLEN_MSS as u8 / 4) << 4);
    c = replace2(c, state, old_word, u16::from_be_bytes([t[12], t[13]]), false);
    set_check(t, c);
    // The IP header's total length and checksum.
    let ip = buf.first_chunk_mut::<20>().ok_or(())?;
    let tot = u16::from_be_bytes([ip[2], ip[3]]);
    let new_tot = tot.wrapping_add(TCPOLEN_MSS as u16);
    let ipc = update_u16(u16::from_be_bytes([ip[10], ip[11]]), tot, new_tot);
    ip[2..4].copy_from_slice(&new_tot.to_be_bytes());
    ip[10..12].copy_from_slice(&ipc.to_be_bytes());
    Ok((len.checked_add(TCPOLEN_MSS).ok_or(())?, Some(newmss)))
}

/// The TCP header's checksum field.
fn check(t: &[u8; 20]) -> u16 {
    u16::from_be_bytes([t[16], t[17]])
}

fn set_check(t: &mut [u8; 20], c: u16) {
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::checksum::{checksum, verify, verify_l4};
    use super::*;
    use std::vec::Vec;

    const SRC: u32 = 0x0a00_0102;
    const DST: u32 = 0x0a00_0202;

    /// A SYN with `options`, `data` after the header, its checksums right, and 4 spare bytes.
    fn syn(options: &[u8], data: &[u8]) -> (Vec<u8>, usize) {
        let tcp_len = 20 + options.len();
        let len = 20 + tcp_len + data.len();
        let mut p = std::vec![0u8; len + 4];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&SRC.to_be_bytes());
        p[16..20].copy_from_slice(&DST.to_be_bytes());
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let t = &mut p[20..len];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = 0x02;
        t[20..tcp_len].copy_from_slice(options);
        t[tcp_len..].copy_from_slice(data);
        let sum = super::super::super::checksum::pseudo_header(SRC, DST, 6, (len - 20) as u16);
        let c = super::super::super::checksum::fold(super::super::super::checksum::add_bytes(sum, t));
        t[16..18].copy_from_slice(&(!c).to_be_bytes());
        (p, len)
    }

    fn len_of(r: Option<Mangled>) -> Option<usize> {
        r.map(|m| m.len)
    }

    fn sound(p: &[u8], len: usize) {
        assert!(verify(&p[..20]), "IP checksum");
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), len);
        assert!(verify_l4(SRC, DST, 6, &p[20..len]), "TCP checksum");
    }

    fn mss_of(p: &[u8]) -> Option<u16> {
        let hdr = usize::from(p[32] >> 4) * 4;
        let o = &p[40..20 + hdr];
        o.windows(4).find(|w| w[0] == 2 && w[1] == 4).map(|w| u16::from_be_bytes([w[2], w[3]]))
    }

    #[test]
    fn lowers_never_raises() {
        let opts = [1, 1, 4, 2, 2, 4, 0x05, 0xb4];
        let (mut p, len) = syn(&opts, &[]);
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1400), FieldState::Full)), Some(len));
        assert_eq!(mss_of(&p), Some(1400));
        sound(&p, len);
        assert_eq!(mangle(&mut p, len, NewMss::Set(1450), FieldState::Full), Some(Mangled { len, mss: Some(1400) }));
        assert_eq!(mss_of(&p), Some(1400), "never raised");
        // Clamp: MTU 1280 leaves 1240.
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Clamp(1280), FieldState::Full)), Some(len));
        assert_eq!(mss_of(&p), Some(1240));
        sound(&p, len);
        // An MTU no larger than the headers drops the packet.
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Clamp(40), FieldState::Full)), None);
    }

    #[test]
    fn adds_the_option_to_a_syn_without_one() {
        let (mut p, len) = syn(&[], &[]);
        assert_eq!(mangle(&mut p, len, NewMss::Set(1400), FieldState::Full), Some(Mangled { len: len + 4, mss: Some(536) }));
        assert_eq!(mss_of(&p), Some(536), "at most the default");
        assert_eq!(p[32] >> 4, 6);
        sound(&p, len + 4);
        let (mut p, len) = syn(&[1, 1, 1, 0], &[]);
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(500), FieldState::Full)), Some(len + 4));
        assert_eq!(&p[40..48], &[2, 4, 0x01, 0xf4, 1, 1, 1, 0]);
        sound(&p, len + 4);
        // Data after the header, or a full data offset: unchanged.
        let (mut p, len) = syn(&[], b"data");
        let before = p.clone();
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(500), FieldState::Full)), Some(len));
        assert_eq!(p, before);
        let (mut p, len) = syn(&[1; 40], &[]);
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(500), FieldState::Full)), Some(len));
    }

    #[test]
    fn partial_checksums_change_only_for_the_length() {
        let (mut p, len) = syn(&[2, 4, 0x05, 0xb4], &[]);
        let c0 = [p[36], p[37]];
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1000), FieldState::Partial)), Some(len));
        assert_eq!([p[36], p[37]], c0, "the option is not in a partial checksum");
        let (mut p, len) = syn(&[], &[]);
        let c0 = u16::from_be_bytes([p[36], p[37]]);
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1000), FieldState::Partial)), Some(len + 4));
        let want = !update_u16(!c0, 20, 24);
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), want, "the pseudo-header's length");
    }

    #[test]
    fn short_or_odd_headers() {
        let (mut p, len) = syn(&[2, 4, 0x05, 0xb4], &[]);
        assert_eq!(len_of(mangle(&mut p, 30, NewMss::Set(1), FieldState::Full)), None, "TCP header cut");
        p[32] = 4 << 4;
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1), FieldState::Full)), None, "data offset under 5");
        p[32] = 15 << 4;
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1), FieldState::Full)), None, "options past the end");
        // Zero-length and odd options end.
        let (mut p, len) = syn(&[3, 0, 0, 0, 8, 0, 0, 0], &[]);
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1), FieldState::Full)), Some(len + 4));
        // A later fragment is left alone.
        let (mut p, len) = syn(&[], &[]);
        p[7] = 1;
        let before = p.clone();
        assert_eq!(len_of(mangle(&mut p, len, NewMss::Set(1), FieldState::Full)), Some(len));
        assert_eq!(p, before);
        // No spare room for the option: dropped rather than written past the buffer.
        let (mut p, len) = syn(&[], &[]);
        assert_eq!(len_of(mangle(&mut p[..len], len, NewMss::Set(1), FieldState::Full)), None);
    }
}
