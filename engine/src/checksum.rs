// SPDX-License-Identifier: GPL-2.0

//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! All arithmetic is explicit one's-complement with `wrapping_*`, because the kernel builds with
//! overflow checks on.

/// Adds `data` to a running 32-bit one's-complement accumulator, 16 bits at a time (big endian).
///
/// An odd trailing byte is padded with a zero byte, as RFC 1071 says.
pub fn add_bytes(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = add_u16(acc, u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        acc = add_u16(acc, u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Adds one 16-bit word to the accumulator, folding the carry back in.
pub fn add_u16(acc: u32, word: u16) -> u32 {
    let sum = acc.wrapping_add(u32::from(word));
    // Keep the accumulator small so it can never wrap: fold as we go.
    (sum & 0xffff).wrapping_add(sum >> 16)
}

/// Adds a 32-bit value as two 16-bit words (an IPv4 address, for instance).
pub fn add_u32(acc: u32, value: u32) -> u32 {
    add_u16(add_u16(acc, (value >> 16) as u16), (value & 0xffff) as u16)
}

/// Folds the accumulator to 16 bits (without complementing).
pub fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff).wrapping_add(acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data`: the complement of the folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add_bytes(0, data))
}

/// True when `data`, with its checksum field in place, sums to all ones.
pub fn verify(data: &[u8]) -> bool {
    fold(add_bytes(0, data)) == 0xffff
}

/// The accumulator for the IPv4 pseudo-header (RFC 793, RFC 768) of a transport segment.
pub fn pseudo_header(src: u32, dst: u32, proto: u8, l4_len: u16) -> u32 {
    let acc = add_u32(0, src);
    let acc = add_u32(acc, dst);
    let acc = add_u16(acc, u16::from(proto));
    add_u16(acc, l4_len)
}

/// True when a TCP or UDP segment (header and payload) carries a correct checksum.
///
/// A UDP checksum of zero means "not computed" and is accepted, as the kernel does.
pub fn verify_l4(src: u32, dst: u32, proto: u8, segment: &[u8]) -> bool {
    let Ok(len) = u16::try_from(segment.len()) else {
        return false;
    };
    if proto == super::packet::IPPROTO_UDP && segment.len() >= 8 && segment[6] == 0 && segment[7] == 0 {
        return true;
    }
    fold(add_bytes(pseudo_header(src, dst, proto, len), segment)) == 0xffff
}

/// Updates a checksum field after one 16-bit word of the covered data changed from `old` to
/// `new` (RFC 1624, equation 3: `HC' = ~(~HC + ~m + m')`).
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    let acc = add_u16(u32::from(!check), !old);
    !fold(add_u16(acc, new))
}

/// Updates a checksum field after a 32-bit word (an address) changed from `old` to `new`.
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let check = update_u16(check, (old >> 16) as u16, (new >> 16) as u16);
    update_u16(check, (old & 0xffff) as u16, (new & 0xffff) as u16)
}

/// What `skb->ip_summed` says about a transport checksum field that a rewrite must keep right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldState {
    /// The field holds the full checksum (`CHECKSUM_NONE`, `_UNNECESSARY`, `_COMPLETE`).
    Full,
    /// `CHECKSUM_PARTIAL` (veth and local output with offload): the field holds the folded
    /// pseudo-header sum, not complemented, and the device or `skb_checksum_help` adds the
    /// rest later. Only changes to the pseudo-header (the addresses) touch it.
    Partial,
}

/// `inet_proto_csum_replace4`: the checksum field after a 32-bit word changed from `old` to
/// `new`; `pseudo` when the word is part of the pseudo-header (an address), not of the
/// transport header itself.
pub fn replace4(check: u16, state: FieldState, old: u32, new: u32, pseudo: bool) -> u16 {
    match state {
        FieldState::Full => update_u32(check, old, new),
        // ~csum_fold(csum_add(csum_sub(csum_unfold(sum), from), to)): the same update on the
        // uncomplemented value.
        FieldState::Partial if pseudo => !update_u32(!check, old, new),
        FieldState::Partial => check,
    }
}

/// `inet_proto_csum_replace2`: as [`replace4`] for a 16-bit word (a port).
pub fn replace2(check: u16, state: FieldState, old: u16, new: u16, pseudo: bool) -> u16 {
    replace4(check, state, u32::from(old), u32::from(new), pseudo)
}

/// A UDP checksum field after `update` (as `__udp_manip_pkt`): 0 means the sender computed
/// none, and it stays 0; an update whose result is 0 writes `0xffff` (`CSUM_MANGLED_0`), the
/// same value in one's complement, since 0 would say "no checksum".
pub fn udp_update(check: u16, state: FieldState, update: impl FnOnce(u16) -> u16) -> u16 {
    if check == 0 && state == FieldState::Full {
        return 0;
    }
    match update(check) {
        0 => 0xffff,
        c => c,
    }
}

/// The TTL target's rewrite of an IPv4 header (`hdr` starts at the header): TTL (byte 8) to
/// `new`, the header checksum (bytes 10-11) updated for the change (`csum_replace2` of the
/// TTL/protocol word). False, and nothing written, when `hdr` is shorter than 20 bytes.
pub fn rewrite_ttl(hdr: &mut [u8], new: u8) -> bool {
    rewrite_header_byte::<8>(hdr, new)
}

/// The TOS and DSCP targets' rewrite of an IPv4 header: the TOS byte (byte 1) to `new`, the
/// header checksum updated (`ipv4_change_dsfield`). False, and nothing written, when `hdr`
/// is shorter than 20 bytes.
pub fn rewrite_tos(hdr: &mut [u8], new: u8) -> bool {
    rewrite_header_byte::<1>(hdr, new)
}

/// Byte `AT` of an IPv4 header to `new`, and the header checksum for the change of its
/// 16-bit word.
fn rewrite_header_byte<const AT: usize>(hdr: &mut [u8], new: u8) -> bool {
    let Some(h) = hdr.first_chunk_mut::<20>() else { return false };
    let old = h[AT];
    if old != new {
        let word = AT & !1;
        let old_word = u16::from_be_bytes([h[word], h[word + 1]]);
        h[AT] = new;
        let new_word = u16::from_be_bytes([h[word], h[word + 1]]);
        let check = update_u16(u16::from_be_bytes([h[10], h[11]]), old_word, new_word);
        h[10..12].copy_from_slice(&check.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tos_rewrite_keeps_the_header_checksum_right() {
        let mut h = [
            0x45, 0x10, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        for new in [0u8, 1, 0x10, 0x2e << 2, 0xfe, 255] {
            let mut x = h;
            assert!(rewrite_tos(&mut x, new));
            assert_eq!(x[1], new);
            assert_eq!(x[0], 0x45);
            assert_eq!(checksum(&x), 0, "tos {new}");
        }
        assert!(!rewrite_tos(&mut h[..19], 0));
    }

    #[test]
    fn ttl_rewrite_keeps_the_header_checksum_right() {
        let mut h = [
            0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        for new in [0u8, 1, 63, 64, 65, 128, 255] {
            let mut x = h;
            assert!(rewrite_ttl(&mut x, new));
            assert_eq!(x[8], new);
            assert!(verify(&x), "ttl {new}");
            let mut y = x;
            y[10] = 0;
            y[11] = 0;
            let full = checksum(&y);
            // One's complement has two zeros; the incremental form never makes 0x0000 from a
            // valid field, and the full form never makes 0xffff for a non-zero header.
            assert_eq!(u16::from_be_bytes([x[10], x[11]]), full, "ttl {new}");
        }
        assert!(!rewrite_ttl(&mut h[..19], 1));
    }

    /// A UDP segment (header and payload) with its checksum computed over the pseudo-header.
    fn udp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> ([u8; 64], usize) {
        let mut seg = [0u8; 64];
        let len = 8 + payload.len();
        seg[0..2].copy_from_slice(&sport.to_be_bytes());
        seg[2..4].copy_from_slice(&dport.to_be_bytes());
        seg[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        seg[8..len].copy_from_slice(payload);
        let c = !fold(add_bytes(pseudo_header(src, dst, 17, len as u16), &seg[..len]));
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        (seg, len)
    }

    #[test]
    fn full_checksums_follow_address_and_port_rewrites() {
        let (a, b, c) = (0x0a00_0001, 0xc0a8_0102, 0x0a00_0002);
        let (seg, len) = udp(a, b, 1000, 53, b"query");
        let check = u16::from_be_bytes([seg[6], seg[7]]);
        // DNAT to c:5353, as nf_nat does it: the address (pseudo-header), then the port.
        let c1 = replace4(check, FieldState::Full, b, c, true);
        let c2 = replace2(c1, FieldState::Full, 53, 5353, false);
        let (want, _) = udp(a, c, 1000, 5353, b"query");
        assert_eq!(c2, u16::from_be_bytes([want[6], want[7]]));
        assert!(verify_l4(a, c, 17, &{
            let mut s = want;
            s[6..8].copy_from_slice(&c2.to_be_bytes());
            s
        }[..len]));
    }

    #[test]
    fn partial_checksums_change_with_the_pseudo_header_only() {
        let (a, b, c) = (0x0a00_0001, 0xc0a8_0102, 0x0a00_0002);
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum.
        let partial = |dst: u32| fold(pseudo_header(a, dst, 17, 13));
        let c1 = replace4(partial(b), FieldState::Partial, b, c, true);
        assert_eq!(c1, partial(c));
        assert_eq!(replace2(c1, FieldState::Partial, 53, 5353, false), c1, "ports are summed later");
    }

    #[test]
    fn udp_zero_checksum_means_none() {
        let bump = |c: u16| replace2(c, FieldState::Full, 53, 5353, false);
        assert_eq!(udp_update(0, FieldState::Full, bump), 0, "no checksum stays none");
        // An update landing on 0 is written as 0xffff.
        let to_zero = |_c: u16| 0;
        assert_eq!(udp_update(0x1234, FieldState::Full, to_zero), 0xffff);
        assert_eq!(udp_update(0x1234, FieldState::Full, |c| c), 0x1234);
    }

    /// The worked example of RFC 1071 section 3.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_bytes(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(add_bytes(0, &[0xab])), 0xab00);
        assert_eq!(fold(add_bytes(0, &[0x12, 0x34, 0xab])), 0x1234 + 0xab00);
    }

    #[test]
    fn verify_accepts_own_checksum() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1, 10,
            0, 0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&hdr));
        hdr[8] = 0x3f;
        assert!(!verify(&hdr));
    }

    /// RFC 1624's incremental update must agree with a full recomputation for any change.
    #[test]
    fn incremental_matches_full_recompute() {
        let mut seed: u32 = 0x1234_5678;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..2000 {
            let mut data = [0u8; 20];
            for b in data.iter_mut() {
                *b = next() as u8;
            }
            data[10] = 0;
            data[11] = 0;
            let c = checksum(&data);
            data[10..12].copy_from_slice(&c.to_be_bytes());
            let old = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
            let new = next();
            data[12..16].copy_from_slice(&new.to_be_bytes());
            let inc = update_u32(c, old, new);
            data[10] = 0;
            data[11] = 0;
            let full = checksum(&data);
            // 0x0000 and 0xffff are the same number in one's complement.
            assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }
    }
}
