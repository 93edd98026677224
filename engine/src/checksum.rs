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

#[cfg(test)]
mod tests {
    use super::*;

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
