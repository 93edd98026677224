// SPDX-License-Identifier: GPL-2.0

//! TCP sequence number adjustment (`nf_conntrack_seqadj.c`).
//!
//! When a NAT helper changes the length of a TCP segment's payload (FTP's `PORT` text, see
//! [`super::ftp`]), the sender's sequence numbers and the receiver's acknowledgements no
//! longer agree. Each direction of the flow keeps where its last change was made
//! (`correction_pos`, a sequence number of the sender's own space, before adjustment) and the
//! total length change of the stream before and after that point. From then on every TCP
//! segment of the flow is rewritten ([`SeqAdjust::adjust`]): its SEQ moved by its own
//! direction's offset, its ACK and SACK blocks moved back by the other direction's.
//!
//! Only the latest change point is remembered, as in the kernel: a retransmission of data
//! from before an older change point gets the wrong offset.
//!
//! All arithmetic is modular (`wrapping_*`): sequence numbers wrap, and the kernel builds with
//! overflow checks on.

use super::super::checksum::{self, FieldState};
use super::super::conntrack::tuple::Dir;

/// `after(a, b)`: `a` is later than `b` in sequence space.
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// `before(a, b)`.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// One direction's adjustment (`struct nf_ct_seqadj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqAdj {
    /// The sequence number (unadjusted, the sender's own) of the segment of the last change.
    pub correction_pos: u32,
    /// Total length change of the stream up to and including that segment's start.
    pub offset_before: i32,
    /// Total length change after it.
    pub offset_after: i32,
}

impl SeqAdj {
    /// The offset for a sequence number `seq` of this direction's sender, unadjusted
    /// (`nf_ct_seq_offset`).
    pub fn offset(&self, seq: u32) -> i32 {
        if after(seq, self.correction_pos) {
            self.offset_after
        } else {
            self.offset_before
        }
    }

    /// Maps a sequence number of this direction's sender as the peer acknowledges it (already
    /// adjusted) back to the sender's own space (`nf_ct_seq_adjust`'s ACK part, and
    /// `nf_ct_sack_block_adjust`).
    fn unadjust(&self, seq: u32) -> u32 {
        let off = if after(seq.wrapping_sub(self.offset_before as u32), self.correction_pos) {
            self.offset_after
        } else {
            self.offset_before
        };
        seq.wrapping_sub(off as u32)
    }
}

/// Both directions of a flow (`struct nf_conn_seqadj`), indexed by [`Dir::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqAdjust {
    /// Per direction.
    pub seq: [SeqAdj; 2],
}

/// TCP header flag ACK.
const TCP_ACK: u8 = 0x10;
/// TCP option kinds.
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_SACK: u8 = 5;
/// Bytes of one SACK block.
const SACK_PERBLOCK: usize = 8;

fn get32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(off..)?.first_chunk::<4>()?))
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = off.checked_add(4).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

impl SeqAdjust {
    /// True when some offset is not zero: the flow's packets need [`Self::adjust`] (the
    /// kernel's `IPS_SEQ_ADJUST` status bit, which [`Self::record`] reports).
    pub fn active(&self) -> bool {
        self.seq.iter().any(|s| s.offset_before != 0 || s.offset_after != 0)
    }

    /// `nf_ct_seqadj_init`: direction `dir` starts with a constant offset `off` (used by
    /// helpers that change the very first segment, e.g. SYN proxies). True when the flow now
    /// needs adjustment.
    pub fn init(&mut self, dir: Dir, off: i32) -> bool {
        if off == 0 {
            return false;
        }
        if let Some(s) = self.seq.get_mut(dir.index()) {
            s.offset_before = off;
            s.offset_after = off;
        }
        true
    }

    /// `nf_ct_seqadj_set`: the segment of direction `dir` starting at (unadjusted) sequence
    /// number `seq` changed length by `off` bytes. Recorded only when it lies after the last
    /// correction point (or when there is none yet), so a retransmitted, mangled again
    /// segment does not count twice. True when the flow now needs adjustment (`off` not 0:
    /// the kernel sets `IPS_SEQ_ADJUST` then, even when the change was not recorded).
    pub fn record(&mut self, dir: Dir, seq: u32, off: i32) -> bool {
        if off == 0 {
            return false;
        }
        if let Some(s) = self.seq.get_mut(dir.index()) {
            if s.offset_before == s.offset_after || before(s.correction_pos, seq) {
                s.correction_pos = seq;
                s.offset_before = s.offset_after;
                s.offset_after = s.offset_after.wrapping_add(off);
            }
        }
        true
    }

    /// The offset for sequence number `seq` of direction `dir` (`nf_ct_seq_offset`).
    pub fn offset(&self, dir: Dir, seq: u32) -> i32 {
        self.seq.get(dir.index()).map_or(0, |s| s.offset(seq))
    }

    /// `nf_ct_seq_adjust`: rewrites the TCP header `tcp` (from the TCP header on, with its
    /// options; payload may follow) of a segment going in `dir`: SEQ by this direction's
    /// offset, and when the ACK flag is set the ACK number and the SACK option blocks back by
    /// the other direction's offsets. The checksum field is updated incrementally as
    /// `inet_proto_csum_replace4` with `pseudohdr = false` does: for
    /// [`FieldState::Partial`] it stays as it is (the field only holds the pseudo-header
    /// sum).
    ///
    /// False (drop the packet, as the kernel does) when `tcp` is shorter than 20 bytes, when
    /// the data offset points past `tcp`, or when an option is malformed (only looked at for
    /// an ACK segment, as the kernel); nothing is written then.
    pub fn adjust(&self, tcp: &mut [u8], dir: Dir, state: FieldState) -> bool {
        let (Some(this), Some(other)) = (self.seq.get(dir.index()), self.seq.get(dir.other().index())) else {
            return false;
        };
        let Some(h) = tcp.first_chunk::<20>() else { return false };
        let seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let ack = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        let has_ack = h[13] & TCP_ACK != 0;
        let doff = usize::from(h[12] >> 4) * 4;
        let mut check = u16::from_be_bytes([h[16], h[17]]);
        // The options, checked before anything is written.
        if has_ack && doff > 20 {
            let Some(opts) = tcp.get_mut(20..doff) else { return false };
            if !sack_walk(opts, None, &mut check, state) {
                return false;
            }
        }

        let new_seq = seq.wrapping_add(this.offset(seq) as u32);
        check = checksum::replace4(check, state, seq, new_seq, false);
        put32(tcp, 4, new_seq);
        if has_ack {
            let new_ack = other.unadjust(ack);
            check = checksum::replace4(check, state, ack, new_ack, false);
            put32(tcp, 8, new_ack);
            if let Some(opts) = tcp.get_mut(20..doff) {
                sack_walk(opts, Some(other), &mut check, state);
            }
        }
        if let Some(c) = tcp.get_mut(16..18) {
            c.copy_from_slice(&check.to_be_bytes());
        }
        true
    }

    /// The state as three words, for storage in atomics: per direction, `correction_pos` in
    /// the low half and `offset_before` in the high half of words 0 and 1; both
    /// `offset_after`s in word 2 (original in the low half).
    pub fn to_words(&self) -> [u64; 3] {
        let [o, r] = self.seq;
        let w = |s: SeqAdj| u64::from(s.correction_pos) | u64::from(s.offset_before as u32) << 32;
        [w(o), w(r), u64::from(o.offset_after as u32) | u64::from(r.offset_after as u32) << 32]
    }

    /// The inverse of [`Self::to_words`].
    pub fn from_words(w: [u64; 3]) -> SeqAdjust {
        let d = |x: u64, after: u32| SeqAdj {
            correction_pos: x as u32,
            offset_before: (x >> 32) as u32 as i32,
            offset_after: after as i32,
        };
        SeqAdjust { seq: [d(w[0], w[2] as u32), d(w[1], (w[2] >> 32) as u32)] }
    }
}

/// Walks the TCP options `opts` as `nf_ct_sack_adjust`: false at a malformed option. With
/// `adj`, every block of a well-formed SACK option is mapped back by it
/// (`nf_ct_sack_block_adjust`) and `check` updated.
fn sack_walk(opts: &mut [u8], adj: Option<&SeqAdj>, check: &mut u16, state: FieldState) -> bool {
    let end = opts.len();
    let mut at = 0usize;
    while at < end {
        let Some(&kind) = opts.get(at) else { return false };
        match kind {
            TCPOPT_EOL => return true,
            TCPOPT_NOP => at = at.wrapping_add(1),
            _ => {
                // No partial options.
                let Some(&len) = opts.get(at.wrapping_add(1)) else { return false };
                let len = usize::from(len);
                let Some(stop) = at.checked_add(len).filter(|s| *s <= end) else { return false };
                if len < 2 {
                    return false;
                }
                if kind == TCPOPT_SACK && len >= 2 + SACK_PERBLOCK && len.wrapping_sub(2) % SACK_PERBLOCK == 0 {
                    if let Some(adj) = adj {
                        let mut b = at.wrapping_add(2);
                        while b < stop {
                            for field in [b, b.wrapping_add(4)] {
                                let Some(old) = get32(opts, field) else { return false };
                                let new = adj.unadjust(old);
                                // The number may straddle the checksum's 16-bit words (a SACK
                                // option at an odd offset): the update sums the aligned words
                                // it covers (the options start at an even offset).
                                let (lo, hi) = (field & !1, field.wrapping_add(5) & !1);
                                let sum = |o: &[u8]| checksum::fold(checksum::add_bytes(0, o.get(lo..hi).unwrap_or(&[])));
                                let before = sum(opts);
                                put32(opts, field, new);
                                if state == FieldState::Full {
                                    *check = checksum::update_u16(*check, before, sum(opts));
                                }
                            }
                            b = b.wrapping_add(SACK_PERBLOCK);
                        }
                    }
                }
                at = stop;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::checksum::{fold, pseudo_header, verify_l4};
    use super::*;
    use std::vec::Vec;

    const A: u32 = 0x0a00_0001;
    const B: u32 = 0x0a00_0202;

    /// A TCP segment with `opts` (padded to 4 bytes) and `payload`, full checksum.
    fn segment(seq: u32, ack: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut o = opts.to_vec();
        o.resize(o.len().div_ceil(4) * 4, TCPOPT_NOP);
        let doff = 20 + o.len();
        let mut s = Vec::new();
        s.extend_from_slice(&1234u16.to_be_bytes());
        s.extend_from_slice(&21u16.to_be_bytes());
        s.extend_from_slice(&seq.to_be_bytes());
        s.extend_from_slice(&ack.to_be_bytes());
        s.push(((doff / 4) as u8) << 4);
        s.push(flags);
        s.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        s.extend_from_slice(&o);
        s.extend_from_slice(payload);
        let c = !fold(checksum::add_bytes(pseudo_header(A, B, 6, s.len() as u16), &s));
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }

    fn seq_of(s: &[u8]) -> u32 {
        get32(s, 4).unwrap()
    }
    fn ack_of(s: &[u8]) -> u32 {
        get32(s, 8).unwrap()
    }

    fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
        let mut o = std::vec![TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, (2 + 8 * blocks.len()) as u8];
        for (a, b) in blocks {
            o.extend_from_slice(&a.to_be_bytes());
            o.extend_from_slice(&b.to_be_bytes());
        }
        o
    }

    #[test]
    fn record_follows_nf_ct_seqadj_set() {
        let mut s = SeqAdjust::default();
        assert!(!s.active());
        assert!(!s.record(Dir::Original, 1000, 0), "no change, nothing to do");
        assert_eq!(s, SeqAdjust::default());
        assert!(s.record(Dir::Original, 1000, 3));
        assert!(s.active());
        assert_eq!(s.seq[0], SeqAdj { correction_pos: 1000, offset_before: 0, offset_after: 3 });
        // A retransmission of that segment mangled again, or an older one: not counted twice.
        assert!(s.record(Dir::Original, 1000, 3));
        assert!(s.record(Dir::Original, 900, 3));
        assert_eq!(s.seq[0], SeqAdj { correction_pos: 1000, offset_before: 0, offset_after: 3 });
        // A later one adds up.
        assert!(s.record(Dir::Original, 2000, -5));
        assert_eq!(s.seq[0], SeqAdj { correction_pos: 2000, offset_before: 3, offset_after: -2 });
        assert_eq!(s.seq[1], SeqAdj::default());
        assert_eq!(s.offset(Dir::Original, 2000), 3);
        assert_eq!(s.offset(Dir::Original, 2001), -2);
        assert_eq!(s.offset(Dir::Original, 1500), 3);
        // While before == after (no change point yet: only `init`), any position is taken.
        let mut z = SeqAdjust::default();
        z.init(Dir::Reply, 2);
        z.seq[1].correction_pos = 5000;
        z.record(Dir::Reply, 10, 7);
        assert_eq!(z.seq[1], SeqAdj { correction_pos: 10, offset_before: 2, offset_after: 9 });
        // After a change point, an earlier position is not, even when the changes cancel out.
        z.record(Dir::Reply, 20, -7);
        assert_eq!(z.seq[1], SeqAdj { correction_pos: 20, offset_before: 9, offset_after: 2 });
        z.record(Dir::Reply, 15, 1);
        assert_eq!(z.seq[1].correction_pos, 20);
        // init.
        let mut i = SeqAdjust::default();
        assert!(!i.init(Dir::Reply, 0));
        assert!(i.init(Dir::Reply, -9));
        assert_eq!(i.offset(Dir::Reply, 12345), -9);
        // Storage round trip.
        for st in [s, z, i] {
            assert_eq!(SeqAdjust::from_words(st.to_words()), st);
        }
    }

    /// The client's PORT segment at 1000 (30 bytes) grew by 4: its later data moves by 4, the
    /// server's ACKs of it move back by 4.
    #[test]
    fn seq_and_ack_round_trip_with_valid_checksums() {
        let mut s = SeqAdjust::default();
        s.record(Dir::Original, 1000, 4);
        for state in [FieldState::Full, FieldState::Partial] {
            // The mangled segment itself keeps its SEQ.
            let mut p = segment(1000, 7000, TCP_ACK, &[], &[b'x'; 34]);
            assert!(s.adjust(&mut p, Dir::Original, state));
            assert_eq!(seq_of(&p), 1000);
            // The next one moves.
            let mut p = segment(1030, 7000, TCP_ACK | 0x08, &[], b"LIST\r\n");
            let before = p.clone();
            assert!(s.adjust(&mut p, Dir::Original, state));
            assert_eq!((seq_of(&p), ack_of(&p)), (1034, 7000), "the other way has no offsets");
            match state {
                FieldState::Full => assert!(verify_l4(A, B, 6, &p)),
                FieldState::Partial => assert_eq!(p[16..18], before[16..18], "partial: field untouched"),
            }
            // The server acknowledges 1034 + 6: the client knows it as 1036.
            let mut r = segment(7000, 1040, TCP_ACK, &[], &[]);
            assert!(s.adjust(&mut r, Dir::Reply, state));
            assert_eq!((seq_of(&r), ack_of(&r)), (7000, 1036));
            if state == FieldState::Full {
                assert!(verify_l4(A, B, 6, &r));
            }
            // An ACK of the mangled segment's start only: the old offset.
            let mut r = segment(7000, 1000, TCP_ACK, &[], &[]);
            assert!(s.adjust(&mut r, Dir::Reply, state));
            assert_eq!(ack_of(&r), 1000);
        }
        // Without the ACK flag the ack field is left alone.
        let mut p = segment(7000, 1040, 0x02, &[], &[]);
        assert!(s.adjust(&mut p, Dir::Reply, FieldState::Full));
        assert_eq!(ack_of(&p), 1040);
        assert!(verify_l4(A, B, 6, &p));
    }

    #[test]
    fn sack_blocks_are_moved_back() {
        let mut s = SeqAdjust::default();
        s.record(Dir::Original, 1000, 4);
        let opts = sack(&[(1034, 1040), (900, 1000), (1100, 1200)]);
        let mut r = segment(7000, 1034, TCP_ACK, &opts, &[]);
        assert!(s.adjust(&mut r, Dir::Reply, FieldState::Full));
        assert!(verify_l4(A, B, 6, &r));
        let blocks: Vec<u32> = (0..6).map(|i| get32(&r, 24 + 4 * i).unwrap()).collect();
        assert_eq!(blocks, [1030, 1036, 900, 1000, 1096, 1196]);
        assert_eq!(ack_of(&r), 1030);
        // Undo: what the server sent.
        let mut c = SeqAdjust::default();
        c.record(Dir::Original, 1000, -4);
        assert!(c.adjust(&mut r, Dir::Reply, FieldState::Full));
        // Not an exact inverse in general, but here all points lie after the change.
        assert_eq!(get32(&r, 24).unwrap(), 1034);
        assert!(verify_l4(A, B, 6, &r));
        // The sender's own direction's SACKs use the other way's offsets (none): unchanged.
        let mut p = segment(1100, 7000, TCP_ACK, &sack(&[(7100, 7200)]), &[]);
        assert!(s.adjust(&mut p, Dir::Original, FieldState::Full));
        assert_eq!(get32(&p, 24).unwrap(), 7100);
        assert_eq!(seq_of(&p), 1104);
        assert!(verify_l4(A, B, 6, &p));
        // A SACK option of odd length is skipped, not adjusted; EOL ends the walk.
        let mut odd = std::vec![TCPOPT_SACK, 11];
        odd.extend_from_slice(&[0; 9]);
        let mut q = segment(7000, 2000, TCP_ACK, &odd, &[]);
        let opt_before = q[20..32].to_vec();
        assert!(s.adjust(&mut q, Dir::Reply, FieldState::Full));
        assert_eq!(q[20..32], opt_before[..]);
        assert!(verify_l4(A, B, 6, &q));
        let mut e = std::vec![TCPOPT_EOL, 0xff, 0xff];
        e.extend_from_slice(&sack(&[(1034, 1040)]));
        let mut q = segment(7000, 2000, TCP_ACK, &e, &[]);
        assert!(s.adjust(&mut q, Dir::Reply, FieldState::Full));
        assert!(verify_l4(A, B, 6, &q));
        assert_eq!(ack_of(&q), 1996);
        assert_eq!(get32(&q, 27).unwrap(), 1034, "after EOL nothing is read");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = SeqAdjust::default();
        let pos = 0xffff_fff0;
        s.record(Dir::Original, pos, 20);
        // After the wrap the segment still comes after the change.
        let mut p = segment(0x10, 0, TCP_ACK, &[], b"abc");
        assert!(s.adjust(&mut p, Dir::Original, FieldState::Full));
        assert_eq!(seq_of(&p), 0x24);
        assert!(verify_l4(A, B, 6, &p));
        let mut p = segment(0xffff_fff8, 0, TCP_ACK, &[], b"abc");
        assert!(s.adjust(&mut p, Dir::Original, FieldState::Full));
        assert_eq!(seq_of(&p), 0x0c);
        // The ACK, adjusted, crosses zero back.
        let mut r = segment(5, 0x24, TCP_ACK, &sack(&[(0x10, 0x24)]), &[]);
        assert!(s.adjust(&mut r, Dir::Reply, FieldState::Full));
        assert_eq!(ack_of(&r), 0x10);
        assert_eq!(get32(&r, 24).unwrap(), 0xffff_fffc);
        assert!(verify_l4(A, B, 6, &r));
        // Negative offsets across zero, and extreme offsets.
        let mut n = SeqAdjust::default();
        n.record(Dir::Reply, 0xffff_ff00, i32::MIN);
        n.record(Dir::Reply, 0xffff_ff01, i32::MIN);
        let mut r = segment(3, 0xffff_ffff, TCP_ACK, &[], &[]);
        assert!(n.adjust(&mut r, Dir::Reply, FieldState::Full));
        assert_eq!(seq_of(&r), 3, "i32::MIN twice wraps to 0");
        assert!(verify_l4(A, B, 6, &r));
    }

    #[test]
    fn short_and_garbage_input_is_refused_without_panic() {
        let mut s = SeqAdjust::default();
        s.record(Dir::Original, 1000, 4);
        s.record(Dir::Reply, 50, -3);
        for n in 0..20 {
            let mut b = std::vec![0x10u8; n];
            assert!(!s.adjust(&mut b, Dir::Original, FieldState::Full));
            assert!(b.iter().all(|x| *x == 0x10), "nothing written");
        }
        // Data offset past the end, partial options, option length 0 or 1: refused, untouched.
        for opts in [&[TCPOPT_SACK][..], &[8, 0, 0, 0], &[8, 1, 0, 0], &[TCPOPT_NOP, 8, 10, 0]] {
            let mut p = segment(1100, 100, TCP_ACK, opts, &[]);
            let orig = p.clone();
            assert!(!s.adjust(&mut p, Dir::Original, FieldState::Full), "{opts:?}");
            assert_eq!(p, orig);
        }
        let mut p = segment(1100, 100, TCP_ACK, &[], &[]);
        p[12] = 0xf0;
        assert!(!s.adjust(&mut p, Dir::Original, FieldState::Full));
        // Without ACK, options are not looked at (as the kernel).
        let mut p = segment(1100, 100, 0x02, &[8, 0, 0, 0], &[]);
        assert!(s.adjust(&mut p, Dir::Original, FieldState::Full));
        assert!(verify_l4(A, B, 6, &p));
        // Random bytes of every length: no panic.
        let mut x: u32 = 0x9e37_79b9;
        for n in 0..200usize {
            let mut b: Vec<u8> = (0..n % 80)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if n % 3 == 0 && b.len() > 13 {
                b[13] |= TCP_ACK;
                b[12] = ((b.len().min(60) / 4) as u8) << 4;
            }
            let _ = s.adjust(&mut b, Dir::Original, FieldState::Full);
            let _ = s.adjust(&mut b, Dir::Reply, FieldState::Partial);
        }
    }
}
