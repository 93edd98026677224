// SPDX-License-Identifier: GPL-2.0

//! TCP connection tracking: a port of the kernel's `nf_conntrack_proto_tcp.c` with its default
//! settings (`nf_conntrack_tcp_loose=1`, `tcp_be_liberal=0`, `tcp_max_retrans=3`,
//! `tcp_ignore_invalid_rst=0`).
//!
//! The same state table (`tcp_conntracks`), the same window tracking (`tcp_in_window`,
//! Rooij's "Real stateful TCP packet filtering in IP Filter": window scaling, SACK, the
//! retransmission count), the same handling of ignored packets (a SYN/ACK answering a SYN that
//! conntrack did not see), of RSTs (the RST must hit the window; a SYN in TIME_WAIT reopens),
//! and the same timeouts. Not ported: NAT sequence adjustment (no NAT helpers yet), the
//! synproxy special case, and the log messages.

use super::settings::Timeouts;
use super::tuple::Dir;

/// TCP conntrack states, numbered as the kernel's `enum tcp_conntrack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum TcpState {
    /// No state yet.
    #[default]
    None = 0,
    /// SYN seen.
    SynSent = 1,
    /// SYN/ACK seen.
    SynRecv = 2,
    /// Handshake done.
    Established = 3,
    /// FIN seen.
    FinWait = 4,
    /// ACK of the FIN seen.
    CloseWait = 5,
    /// FIN from the other side seen.
    LastAck = 6,
    /// The last ACK seen.
    TimeWait = 7,
    /// RST seen.
    Close = 8,
    /// Simultaneous open: SYN from both sides.
    SynSent2 = 9,
}

const NUM_STATES: usize = 10;

impl TcpState {
    /// From the kernel's number.
    pub fn from_u8(v: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match v {
            0 => None,
            1 => SynSent,
            2 => SynRecv,
            3 => Established,
            4 => FinWait,
            5 => CloseWait,
            6 => LastAck,
            7 => TimeWait,
            8 => Close,
            9 => SynSent2,
            _ => return Option::None,
        })
    }

    /// The name `conntrack -L` prints.
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            None => "NONE",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            Established => "ESTABLISHED",
            FinWait => "FIN_WAIT",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            SynSent2 => "SYN_SENT2",
        }
    }
}

/// The default timeouts (`tcp_timeouts[]`) in seconds.
pub fn timeout_secs(state: TcpState) -> u32 {
    Timeouts::DEFAULT.tcp_state(state)
}
/// `MAXACKWINCONST`.
const MAXACKWINCONST: u32 = 66000;
/// `TCP_MAX_WSCALE`.
const MAX_WSCALE: u8 = 14;

/// Per-direction flags (`IP_CT_TCP_FLAG_*`).
pub mod flag {
    /// The side sent the window scale option.
    pub const WINDOW_SCALE: u8 = 0x01;
    /// The side allows SACK.
    pub const SACK_PERM: u8 = 0x02;
    /// The side sent the first FIN.
    pub const CLOSE_INIT: u8 = 0x04;
    /// Window checks are off for this side (picked-up flows).
    pub const BE_LIBERAL: u8 = 0x08;
    /// The side has data the other has not acknowledged.
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    /// `td_maxack` is set.
    pub const MAXACK_SET: u8 = 0x20;
    /// (in `last_flags`) A challenge ACK is expected.
    pub const EXP_CHALLENGE_ACK: u8 = 0x40;
    /// (in `last_flags`) Simultaneous open.
    pub const SIMULTANEOUS_OPEN: u8 = 0x80;
}

/// One direction's window data (`struct ip_ct_tcp_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Side {
    /// Highest sequence number sent + length.
    pub end: u32,
    /// Highest end the other side allows.
    pub maxend: u32,
    /// Largest window seen.
    pub maxwin: u32,
    /// Highest ACK sent.
    pub maxack: u32,
    /// Window scale.
    pub scale: u8,
    /// [`flag`] bits.
    pub flags: u8,
}

/// Everything tracked per TCP flow (`struct ip_ct_tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpConn {
    /// The state.
    pub state: TcpState,
    /// Original and reply direction data.
    pub seen: [Side; 2],
    /// Direction of the last packet (for the ignore and retransmission logic).
    pub last_dir: u8,
    /// Index (SYN, SYN/ACK, FIN, ACK, RST, none) of the last packet.
    pub last_index: u8,
    /// Its sequence number.
    pub last_seq: u32,
    /// Its ACK.
    pub last_ack: u32,
    /// Its end.
    pub last_end: u32,
    /// Its window (unscaled).
    pub last_win: u16,
    /// Window scale of an ignored SYN.
    pub last_wscale: u8,
    /// Flags of an ignored SYN, and [`flag::EXP_CHALLENGE_ACK`], [`flag::SIMULTANEOUS_OPEN`].
    pub last_flags: u8,
    /// Retransmissions of the same segment seen.
    pub retrans: u8,
}

/// Number of u64 words a [`TcpConn`] packs into.
pub const TCP_WORDS: usize = 8;

impl TcpConn {
    /// Packs into words (stored in atomics by the table).
    pub fn to_words(&self) -> [u64; TCP_WORDS] {
        let side = |s: &Side| -> [u64; 2] {
            [
                u64::from(s.end) << 32 | u64::from(s.maxend),
                u64::from(s.maxwin) << 32 | u64::from(s.maxack),
            ]
        };
        let [a0, a1] = side(&self.seen[0]);
        let [b0, b1] = side(&self.seen[1]);
        let small = u64::from(self.state as u8)
            | u64::from(self.last_dir) << 8
            | u64::from(self.last_index) << 16
            | u64::from(self.last_wscale) << 24
            | u64::from(self.last_flags) << 32
            | u64::from(self.retrans) << 40
            | u64::from(self.last_win) << 48;
        let sides = u64::from(self.seen[0].scale)
            | u64::from(self.seen[0].flags) << 8
            | u64::from(self.seen[1].scale) << 16
            | u64::from(self.seen[1].flags) << 24;
        [
            a0,
            a1,
            b0,
            b1,
            small,
            sides,
            u64::from(self.last_seq) << 32 | u64::from(self.last_ack),
            u64::from(self.last_end),
        ]
    }

    /// Unpacks [`TcpConn::to_words`]; never fails (an unknown state reads as NONE).
    pub fn from_words(w: &[u64; TCP_WORDS]) -> TcpConn {
        let side = |x: u64, y: u64, s: u64| Side {
            end: (x >> 32) as u32,
            maxend: x as u32,
            maxwin: (y >> 32) as u32,
            maxack: y as u32,
            scale: s as u8,
            flags: (s >> 8) as u8,
        };
        TcpConn {
            state: TcpState::from_u8(w[4] as u8).unwrap_or_default(),
            seen: [side(w[0], w[1], w[5]), side(w[2], w[3], w[5] >> 16)],
            last_dir: (w[4] >> 8) as u8 & 1,
            last_index: (w[4] >> 16) as u8,
            last_wscale: (w[4] >> 24) as u8,
            last_flags: (w[4] >> 32) as u8,
            retrans: (w[4] >> 40) as u8,
            last_win: (w[4] >> 48) as u16,
            last_seq: (w[6] >> 32) as u32,
            last_ack: w[6] as u32,
            last_end: w[7] as u32,
        }
    }
}

/// One TCP segment as the tracker sees it.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// The bytes from the TCP header on, as many as were copied (the whole header with its
    /// options when the packet has them).
    pub tcp: &'a [u8],
    /// The segment's real length (header and payload).
    pub len: u32,
    /// FTP through NAT changed the length of segments going the other way: their sequence
    /// numbers as this segment acknowledges them are corrected by it (`nf_ct_seq_offset` in
    /// `tcp_in_window`).
    pub ack_adj: Option<super::super::nat::seqadj::SeqAdj>,
}

// TCP header flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

// `enum tcp_bit_set`.
const SYN_SET: u8 = 0;
const SYNACK_SET: u8 = 1;
const FIN_SET: u8 = 2;
const ACK_SET: u8 = 3;
const RST_SET: u8 = 4;
const NONE_SET: u8 = 5;

/// The parsed fixed header.
#[derive(Debug, Clone, Copy)]
struct Hdr<'a> {
    seq: u32,
    ack_seq: u32,
    flags: u8,
    win: u16,
    /// The options (header bytes after the first 20 that were copied).
    opts: &'a [u8],
    /// Header length.
    doff: u32,
}

impl Hdr<'_> {
    fn parse<'a>(seg: &Segment<'a>) -> Option<Hdr<'a>> {
        let h = seg.tcp.first_chunk::<20>()?;
        let doff = u32::from(h[12] >> 4) * 4;
        let opts_end = (doff as usize).min(seg.tcp.len());
        Some(Hdr {
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ack_seq: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            flags: h[13],
            win: u16::from_be_bytes([h[14], h[15]]),
            opts: seg.tcp.get(20..opts_end).unwrap_or(&[]),
            doff,
        })
    }
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    /// `get_conntrack_index`.
    fn index(&self) -> u8 {
        if self.has(RST) {
            RST_SET
        } else if self.has(SYN) {
            if self.has(ACK) {
                SYNACK_SET
            } else {
                SYN_SET
            }
        } else if self.has(FIN) {
            FIN_SET
        } else if self.has(ACK) {
            ACK_SET
        } else {
            NONE_SET
        }
    }
    /// `segment_seq_plus_len`.
    fn end(&self, len: u32) -> u32 {
        self.seq
            .wrapping_add(len.wrapping_sub(self.doff))
            .wrapping_add(u32::from(self.has(SYN)))
            .wrapping_add(u32::from(self.has(FIN)))
    }
}

/// `tcp_error` without the checksum (checked by the caller): a whole header, and a valid
/// combination of flags (`tcp_valid_flags`).
pub fn valid_header(seg: &Segment<'_>) -> bool {
    let Some(h) = Hdr::parse(seg) else { return false };
    if h.doff < 20 || seg.len < h.doff {
        return false;
    }
    let f = h.flags & !(ECE | CWR | PSH);
    matches!(
        f,
        SYN | 0x22 /* SYN|URG */ | 0x12 /* SYN|ACK */ | RST | 0x14 /* RST|ACK */
            | 0x11 /* FIN|ACK */ | 0x31 /* FIN|ACK|URG */ | ACK | 0x30 /* ACK|URG */
    )
}

// The state table, `tcp_conntracks[dir][index][state]`; IV: invalid, IG: ignore.
const IV: u8 = 10;
const IG: u8 = 11;
const S_SS: u8 = 1;
const S_SR: u8 = 2;
const S_ES: u8 = 3;
const S_FW: u8 = 4;
const S_CW: u8 = 5;
const S_LA: u8 = 6;
const S_TW: u8 = 7;
const S_CL: u8 = 8;
const S_S2: u8 = 9;

#[rustfmt::skip]
const TABLE: [[[u8; NUM_STATES]; 6]; 2] = [
    [
        //  sNO,  sSS,  sSR,  sES,  sFW,  sCW,  sLA,  sTW,  sCL,  sS2
        [S_SS, S_SS, IG,   IG,   IG,   IG,   IG,   S_SS, S_SS, S_S2], // syn
        [IV,   IV,   S_SR, IV,   IV,   IV,   IV,   IV,   IV,   S_SR], // synack
        [IV,   IV,   S_FW, S_FW, S_LA, S_LA, S_LA, S_TW, S_CL, IV],   // fin
        [S_ES, IV,   S_ES, S_ES, S_CW, S_CW, S_TW, S_TW, S_CL, IV],   // ack
        [IV,   S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL], // rst
        [IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV],   // none
    ],
    [
        [IV,   S_S2, IV,   IV,   IV,   IV,   IV,   S_SS, IV,   S_S2], // syn
        [IV,   S_SR, IG,   IG,   IG,   IG,   IG,   IG,   IG,   S_SR], // synack
        [IV,   IV,   S_FW, S_FW, S_LA, S_LA, S_LA, S_TW, S_CL, IV],   // fin
        [IV,   IG,   S_SR, S_ES, S_CW, S_CW, S_TW, S_TW, S_CL, IG],   // ack
        [IV,   S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL], // rst
        [IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV],   // none
    ],
];

fn next_state(dir: Dir, index: u8, old: TcpState) -> u8 {
    TABLE
        .get(dir.index())
        .and_then(|d| d.get(usize::from(index)))
        .and_then(|r| r.get(old as usize))
        .copied()
        .unwrap_or(IV)
}

/// `after(a, b)`: `a` is later than `b` in sequence space.
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// `before(a, b)`.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `tcp_options`: window scale and SACK permission of a SYN.
fn options(opts: &[u8], side: &mut Side) {
    if opts.is_empty() {
        return;
    }
    side.scale = 0;
    side.flags &= flag::BE_LIBERAL;
    let mut i = 0usize;
    while let Some(&op) = opts.get(i) {
        match op {
            0 => return,
            1 => i += 1,
            _ => {
                let Some(&size) = opts.get(i + 1) else { return };
                let size = usize::from(size);
                if size < 2 || i + size > opts.len() {
                    return;
                }
                if op == 4 && size == 2 {
                    side.flags |= flag::SACK_PERM;
                } else if op == 3 && size == 3 {
                    side.scale = opts.get(i + 2).copied().unwrap_or(0).min(MAX_WSCALE);
                    side.flags |= flag::WINDOW_SCALE;
                }
                i += size;
            }
        }
    }
}

/// `tcp_sack`: the highest right edge of the SACK blocks, if later than `sack`.
fn sack_edge(opts: &[u8], mut sack: u32) -> u32 {
    // The timestamp-only fast path.
    if opts.len() == 12 && opts.get(..4) == Some(&[1, 1, 8, 10]) {
        return sack;
    }
    let mut i = 0usize;
    while let Some(&op) = opts.get(i) {
        match op {
            0 => return sack,
            1 => i += 1,
            _ => {
                let Some(&size) = opts.get(i + 1) else { return sack };
                let size = usize::from(size);
                if size < 2 || i + size > opts.len() {
                    return sack;
                }
                if op == 5 && size >= 10 && (size - 2) % 8 == 0 {
                    let mut b = i + 2;
                    while b + 8 <= i + size {
                        if let Some(e) = opts.get(b + 4..b + 8) {
                            let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                            if after(v, sack) {
                                sack = v;
                            }
                        }
                        b += 8;
                    }
                    return sack;
                }
                i += size;
            }
        }
    }
    sack
}

/// `tcp_new`: a flow that starts with this segment (original direction), or `None` when it
/// cannot start one. SYN starts a flow; with `tcp_loose` a segment that the table takes from
/// NONE to ESTABLISHED (an ACK without SYN/RST/FIN) picks up a flow already under way.
pub fn new_conn(seg: &Segment<'_>) -> Option<TcpConn> {
    new_conn_with(seg, &Timeouts::DEFAULT)
}

/// [`new_conn`] with the namespace's settings (`nf_conntrack_tcp_loose`,
/// `nf_conntrack_tcp_be_liberal`).
pub fn new_conn_with(seg: &Segment<'_>, t: &Timeouts) -> Option<TcpConn> {
    let h = Hdr::parse(seg)?;
    let st = next_state(Dir::Original, h.index(), TcpState::None);
    if st >= IV || (st != S_SS && !t.tcp_loose) {
        return None;
    }
    let mut c = TcpConn::default();
    let end = h.end(seg.len);
    let win = u32::from(h.win).max(1);
    c.seen[0].end = end;
    c.seen[0].maxwin = win;
    if st == S_SS {
        c.seen[0].maxend = end;
        options(h.opts, &mut c.seen[0]);
    } else {
        c.seen[0].maxend = end.wrapping_add(win);
        c.seen[0].flags = flag::SACK_PERM | flag::BE_LIBERAL;
        c.seen[1].flags = flag::SACK_PERM | flag::BE_LIBERAL;
    }
    if t.tcp_be_liberal {
        c.seen[0].flags |= flag::BE_LIBERAL;
        c.seen[1].flags |= flag::BE_LIBERAL;
    }
    c.last_index = NONE_SET;
    Some(c)
}

/// What the tracker decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: the flow's new timeout, and whether it becomes ASSURED now.
    Accept {
        /// Seconds.
        timeout_secs: u32,
        /// Set ASSURED.
        assured: bool,
    },
    /// Accepted, but the flow ends now (an RST before any reply): the caller expires it.
    AcceptKill,
    /// Accepted without touching the flow's state or timeout (a packet the tracker ignores,
    /// as the kernel returns NF_ACCEPT early).
    Ignore,
    /// INVALID for this flow; `lower_timeout`: cut an ASSURED flow's timeout to 5 minutes
    /// if it is longer (an out-of-window FIN/RST answering one, `nf_tcp_handle_invalid`).
    Invalid {
        /// Lower the timeout.
        lower_timeout: bool,
    },
    /// A SYN that reopens a closed flow: the caller deletes the flow and tracks the packet
    /// as a new one.
    Restart,
}

/// The timeout for an ASSURED flow cut by [`Outcome::Invalid`] (with the default settings;
/// `nf_conntrack_tcp_timeout_unacknowledged`).
pub const LOWERED_TIMEOUT: u32 = 300;

enum Window {
    Accept,
    Ignore,
    Invalid,
}

fn init_sender(c: &mut TcpConn, dir: Dir, h: &Hdr<'_>, end: u32, win: u32) {
    let (d, o) = (dir.index(), dir.other().index());
    let mut sender = c.seen[d];
    sender.end = end;
    sender.maxend = end;
    sender.maxwin = win.max(1);
    options(h.opts, &mut sender);
    c.seen[d] = sender;
    if dir == Dir::Reply
        && !(c.seen[d].flags & flag::WINDOW_SCALE != 0 && c.seen[o].flags & flag::WINDOW_SCALE != 0)
    {
        c.seen[d].scale = 0;
        c.seen[o].scale = 0;
    }
}

/// `tcp_in_window`.
fn in_window(c: &mut TcpConn, dir: Dir, index: u8, h: &Hdr<'_>, len: u32, ack_adj: Option<super::super::nat::seqadj::SeqAdj>) -> Window {
    let (d, o) = (dir.index(), dir.other().index());
    let mut seq = h.seq;
    let mut ack = h.ack_seq;
    let mut sack = ack;
    let win_raw = h.win;
    let mut win = u32::from(win_raw);
    let mut end = h.end(len);
    if c.seen[o].flags & flag::SACK_PERM != 0 {
        sack = sack_edge(h.opts, sack);
    }
    if c.seen[d].maxwin == 0 {
        if h.has(SYN) {
            init_sender(c, dir, h, end, win);
            if !h.has(ACK) {
                return Window::Accept;
            }
        } else {
            let s = &mut c.seen[d];
            s.end = end;
            let swin = win.checked_shl(u32::from(s.scale)).unwrap_or(0);
            s.maxwin = swin.max(1);
            s.maxend = end.wrapping_add(s.maxwin);
            let r = &mut c.seen[o];
            if r.maxwin == 0 {
                r.end = sack;
                r.maxend = sack;
            } else if sack == r.end.wrapping_add(1) {
                r.end = r.end.wrapping_add(1);
            }
        }
    } else if h.has(SYN)
        && after(end, c.seen[d].end)
        && matches!(c.state, TcpState::SynSent | TcpState::SynRecv)
    {
        init_sender(c, dir, h, end, win);
        if dir == Dir::Reply && !h.has(ACK) {
            return Window::Accept;
        }
    }
    if !h.has(ACK) {
        ack = c.seen[o].end;
        sack = ack;
    } else if h.flags & (ACK | RST) == ACK | RST && ack == 0 {
        ack = c.seen[o].end;
        sack = ack;
    }
    if h.has(RST) && seq == 0 && c.state == TcpState::SynSent {
        seq = c.seen[d].end;
        end = seq;
    }
    // Take into account NAT sequence number mangling.
    if let Some(adj) = ack_adj {
        let off = adj.offset(ack.wrapping_sub(1)) as u32;
        ack = ack.wrapping_sub(off);
        sack = sack.wrapping_sub(off);
    }
    let liberal = c.seen[d].flags & flag::BE_LIBERAL != 0;
    let maxackwin = c.seen[d].maxwin.max(MAXACKWINCONST);
    let seq_ok = before(seq, c.seen[d].maxend.wrapping_add(1));
    if !seq_ok {
        let overshot = end.wrapping_sub(c.seen[d].maxend).wrapping_add(1);
        let ack_ok = after(sack, c.seen[o].end.wrapping_sub(maxackwin).wrapping_sub(1));
        let in_recv_win = c.seen[o].maxwin != 0
            && after(end, c.seen[d].end.wrapping_sub(c.seen[o].maxwin).wrapping_sub(1));
        if in_recv_win && ack_ok && overshot <= c.seen[o].maxwin && before(sack, c.seen[o].end.wrapping_add(1)) {
            c.seen[d].end = end;
            c.seen[d].flags |= flag::DATA_UNACKNOWLEDGED;
            return if liberal { Window::Accept } else { Window::Ignore };
        }
        return if liberal { Window::Accept } else { Window::Invalid };
    }
    if !before(sack, c.seen[o].end.wrapping_add(1)) {
        return if liberal { Window::Accept } else { Window::Invalid };
    }
    let in_recv_win = c.seen[o].maxwin == 0
        || after(end, c.seen[d].end.wrapping_sub(c.seen[o].maxwin).wrapping_sub(1));
    if !in_recv_win {
        return if liberal { Window::Accept } else { Window::Ignore };
    }
    if !after(sack, c.seen[o].end.wrapping_sub(maxackwin).wrapping_sub(1)) {
        return if liberal { Window::Accept } else { Window::Ignore };
    }
    if !h.has(SYN) {
        win = win.checked_shl(u32::from(c.seen[d].scale)).unwrap_or(0);
    }
    let swin = win.wrapping_add(sack.wrapping_sub(ack));
    let s = &mut c.seen[d];
    if s.maxwin < swin {
        s.maxwin = swin;
    }
    if after(end, s.end) {
        s.end = end;
        s.flags |= flag::DATA_UNACKNOWLEDGED;
    }
    if h.has(ACK) {
        if s.flags & flag::MAXACK_SET == 0 {
            s.maxack = ack;
            s.flags |= flag::MAXACK_SET;
        } else if after(ack, s.maxack) {
            s.maxack = ack;
        }
    }
    let s_maxend = s.maxend;
    let r = &mut c.seen[o];
    if r.maxwin != 0 && after(end, s_maxend) {
        r.maxwin = r.maxwin.wrapping_add(end.wrapping_sub(s_maxend));
    }
    if after(sack.wrapping_add(win), r.maxend.wrapping_sub(1)) {
        r.maxend = sack.wrapping_add(win);
        if win == 0 {
            r.maxend = r.maxend.wrapping_add(1);
        }
    }
    if ack == r.end {
        r.flags &= !flag::DATA_UNACKNOWLEDGED;
    }
    if index == ACK_SET {
        if c.last_dir == dir as u8 && c.last_seq == seq && c.last_ack == ack && c.last_end == end && c.last_win == win_raw {
            c.retrans = c.retrans.saturating_add(1);
        } else {
            c.last_dir = dir as u8;
            c.last_seq = seq;
            c.last_ack = ack;
            c.last_end = end;
            c.last_win = win_raw;
            c.retrans = 0;
        }
    }
    Window::Accept
}

fn reset_side(s: &mut Side) {
    *s = Side { flags: s.flags & flag::BE_LIBERAL, ..Side::default() };
}

/// `nf_conntrack_tcp_packet`: updates `c` for a segment going in direction `dir`.
/// `seen_reply` and `assured` are the flow's status bits before this packet.
pub fn packet(c: &mut TcpConn, dir: Dir, seg: &Segment<'_>, seen_reply: bool, assured: bool) -> Outcome {
    packet_with(c, dir, seg, seen_reply, assured, &Timeouts::DEFAULT)
}

/// [`packet`] with the namespace's timeouts and retransmission count.
pub fn packet_with(c: &mut TcpConn, dir: Dir, seg: &Segment<'_>, seen_reply: bool, assured: bool, t: &Timeouts) -> Outcome {
    let Some(h) = Hdr::parse(seg) else { return Outcome::Invalid { lower_timeout: false } };
    let (d, o) = (dir.index(), dir.other().index());
    let mut old = c.state;
    let index = h.index();
    let mut new = next_state(dir, index, old);
    let established = c.state == TcpState::Established && assured;
    let mut skip_window = false;
    let mut ignore = false;
    if new == S_SS && old as u8 >= S_TW {
        // A SYN in TIME_WAIT or CLOSE: reopen, unless the close was orderly on our side...
        if (c.seen[d].flags | c.seen[o].flags) & flag::CLOSE_INIT != 0
            || (c.last_dir == dir as u8 && c.last_index == RST_SET)
        {
            return Outcome::Restart;
        }
        // ... else the SYN is ignored like one in the IGNORE state.
        ignore = true;
    }
    if new == IG || ignore {
        if index == SYNACK_SET && c.last_index == SYN_SET && c.last_dir != dir as u8 && h.ack_seq == c.last_end {
            // The SYN/ACK answers a SYN we ignored: the old flow is gone, take the new one.
            old = TcpState::SynSent;
            new = S_SR;
            let ld = usize::from(c.last_dir & 1);
            let (le, lw, ls, lf) = (c.last_end, c.last_win, c.last_wscale, c.last_flags & !flag::EXP_CHALLENGE_ACK);
            if let Some(s) = c.seen.get_mut(ld) {
                s.end = le;
                s.maxend = le;
                s.maxwin = u32::from(lw).max(1);
                s.scale = ls;
                s.flags = lf;
            }
            c.last_flags &= !flag::EXP_CHALLENGE_ACK;
            reset_side(&mut c.seen[d]);
        } else {
            c.last_index = index;
            c.last_dir = dir as u8;
            c.last_seq = h.seq;
            c.last_end = h.end(seg.len);
            c.last_win = h.win;
            if index == SYN_SET && dir == Dir::Original {
                let mut seen = Side::default();
                c.last_flags = 0;
                c.last_wscale = 0;
                options(h.opts, &mut seen);
                if seen.flags & flag::WINDOW_SCALE != 0 {
                    c.last_flags |= flag::WINDOW_SCALE;
                    c.last_wscale = seen.scale;
                }
                if seen.flags & flag::SACK_PERM != 0 {
                    c.last_flags |= flag::SACK_PERM;
                }
                if old == TcpState::LastAck {
                    c.last_flags |= flag::EXP_CHALLENGE_ACK;
                }
            }
            if old == TcpState::SynSent && index == ACK_SET && dir == Dir::Reply {
                c.last_ack = h.ack_seq;
            }
            return Outcome::Ignore;
        }
    }
    match new {
        IV => return Outcome::Invalid { lower_timeout: false },
        S_TW => {
            if old == TcpState::LastAck
                && index == ACK_SET
                && c.last_dir != dir as u8
                && c.last_index == SYN_SET
                && c.last_flags & flag::EXP_CHALLENGE_ACK != 0
            {
                // The challenge ACK for a SYN in LAST_ACK: go on as the kernel does.
                c.last_flags &= !flag::EXP_CHALLENGE_ACK;
            }
        }
        S_S2 => c.last_flags |= flag::SIMULTANEOUS_OPEN,
        S_SR => {
            if dir == Dir::Reply && index == ACK_SET && c.last_flags & flag::SIMULTANEOUS_OPEN != 0 {
                new = S_ES;
            }
        }
        S_CL if index == RST_SET => {
            let can_early_drop = matches!(
                c.state,
                TcpState::FinWait | TcpState::LastAck | TcpState::TimeWait | TcpState::Close | TcpState::CloseWait
            );
            if can_early_drop {
                skip_window = true;
            } else {
                if c.seen[o].flags & flag::MAXACK_SET != 0 && c.last_index != SYN_SET {
                    let seq = h.seq;
                    let keep_going = seq == 0 && !established;
                    if !keep_going {
                        if before(seq, c.seen[o].maxack) {
                            return Outcome::Invalid { lower_timeout: false };
                        }
                        let exact = !established || seq == c.seen[o].maxack;
                        let train = c.last_index == ACK_SET && c.last_dir == dir as u8 && seq == c.last_end;
                        if !exact && !train {
                            new = old as u8;
                        }
                    }
                }
                if !skip_window
                    && ((seen_reply && c.last_index == SYN_SET && c.last_dir != dir as u8)
                        || (!assured && c.last_index == ACK_SET))
                    && h.ack_seq == c.last_end
                {
                    skip_window = true;
                }
                if !skip_window
                    && old == TcpState::SynSent
                    && c.last_index == ACK_SET
                    && c.last_dir == Dir::Reply as u8
                    && h.seq == c.last_ack
                {
                    skip_window = true;
                }
            }
        }
        _ => {}
    }
    if !skip_window {
        match in_window(c, dir, index, &h, seg.len, seg.ack_adj) {
            Window::Accept => {}
            Window::Ignore => return Outcome::Ignore,
            Window::Invalid => {
                // nf_tcp_handle_invalid.
                let mut lower = false;
                if assured && (index == RST_SET || index == FIN_SET) {
                    if c.last_dir != dir as u8 && (c.last_index == FIN_SET || c.last_index == RST_SET) {
                        lower = true;
                    } else {
                        c.last_index = index;
                        c.last_dir = dir as u8;
                    }
                }
                return Outcome::Invalid { lower_timeout: lower };
            }
        }
    }
    let new_state = TcpState::from_u8(new).unwrap_or(TcpState::None);
    c.last_index = index;
    c.last_dir = dir as u8;
    c.state = new_state;
    if old != new_state && new_state == TcpState::FinWait {
        c.seen[d].flags |= flag::CLOSE_INIT;
    }
    let base = t.tcp_state(new_state);
    let unacked = (c.seen[0].flags | c.seen[1].flags) & flag::DATA_UNACKNOWLEDGED != 0;
    let (retrans_to, unack_to) = (t.tcp_retrans, t.tcp_unack);
    let mut timeout = if u32::from(c.retrans) >= t.tcp_max_retrans && base > retrans_to {
        retrans_to
    } else if index == RST_SET && new_state == TcpState::Established && base > unack_to {
        unack_to
    } else if unacked && base > unack_to {
        unack_to
    } else if c.last_win == 0 && base > retrans_to {
        retrans_to
    } else {
        base
    };
    let mut set_assured = false;
    if !seen_reply {
        if h.has(RST) {
            return Outcome::AcceptKill;
        }
        if index == SYN_SET && old == TcpState::SynSent {
            // A retransmitted SYN: the timeout is not refreshed.
            return Outcome::Ignore;
        }
        if new_state == TcpState::Established && timeout > unack_to {
            timeout = unack_to;
        }
    } else if !assured
        && matches!(old, TcpState::SynRecv | TcpState::Established)
        && new_state == TcpState::Established
    {
        set_assured = true;
    }
    Outcome::Accept { timeout_secs: timeout, assured: set_assured }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment: seq, ack, flags, window, options, payload length.
    fn seg(buf: &mut [u8; 60], seq: u32, ack: u32, flags: u8, win: u16, opts: &[u8], payload: u32) -> (usize, u32) {
        let hl = 20 + opts.len().div_ceil(4) * 4;
        buf.fill(0);
        buf[4..8].copy_from_slice(&seq.to_be_bytes());
        buf[8..12].copy_from_slice(&ack.to_be_bytes());
        buf[12] = ((hl / 4) as u8) << 4;
        buf[13] = flags;
        buf[14..16].copy_from_slice(&win.to_be_bytes());
        buf[20..20 + opts.len()].copy_from_slice(opts);
        (hl, hl as u32 + payload)
    }

    struct Flow {
        c: TcpConn,
        seen_reply: bool,
        assured: bool,
    }

    impl Flow {
        fn send(&mut self, dir: Dir, seq: u32, ack: u32, flags: u8, win: u16, opts: &[u8], payload: u32) -> Outcome {
            let mut b = [0u8; 60];
            let (hl, len) = seg(&mut b, seq, ack, flags, win, opts, payload);
            let s = Segment { tcp: &b[..hl], len, ack_adj: None };
            let r = packet(&mut self.c, dir, &s, self.seen_reply, self.assured);
            if let Outcome::Accept { assured, .. } = r {
                self.assured |= assured;
            }
            if dir == Dir::Reply && matches!(r, Outcome::Accept { .. } | Outcome::Ignore) {
                self.seen_reply = true;
            }
            r
        }
    }

    fn start(seq: u32, opts: &[u8]) -> (Flow, Outcome) {
        let mut b = [0u8; 60];
        let (hl, len) = seg(&mut b, seq, 0, SYN, 64240, opts, 0);
        let s = Segment { tcp: &b[..hl], len, ack_adj: None };
        assert!(valid_header(&s));
        let mut c = new_conn(&s).unwrap();
        let r = packet(&mut c, Dir::Original, &s, false, false);
        (Flow { c, seen_reply: false, assured: false }, r)
    }

    const O: Dir = Dir::Original;
    const R: Dir = Dir::Reply;

    fn established() -> Flow {
        let (mut f, r) = start(1000, &[]);
        assert_eq!(r, Outcome::Accept { timeout_secs: 120, assured: false });
        assert_eq!(f.c.state, TcpState::SynSent);
        assert_eq!(f.send(R, 5000, 1001, SYN | ACK, 65160, &[], 0), Outcome::Accept { timeout_secs: 60, assured: false });
        assert_eq!(f.c.state, TcpState::SynRecv);
        assert_eq!(
            f.send(O, 1001, 5001, ACK, 502, &[], 0),
            Outcome::Accept { timeout_secs: 5 * 24 * 3600, assured: true }
        );
        assert_eq!(f.c.state, TcpState::Established);
        f
    }

    #[test]
    fn handshake_data_and_teardown() {
        let mut f = established();
        // Data both ways: unacknowledged data lowers the timeout to 5 minutes.
        assert_eq!(f.send(O, 1001, 5001, ACK | PSH, 502, &[], 100), Outcome::Accept { timeout_secs: 300, assured: false });
        assert_eq!(
            f.send(R, 5001, 1101, ACK | PSH, 509, &[], 10),
            Outcome::Accept { timeout_secs: 300, assured: false }
        );
        assert_eq!(f.send(O, 1101, 5011, ACK, 502, &[], 0), Outcome::Accept { timeout_secs: 5 * 24 * 3600, assured: false });
        // Far outside the window: INVALID, nothing changes.
        let before = f.c;
        assert_eq!(f.send(O, 1101 + 10_000_000, 5011, ACK, 502, &[], 10), Outcome::Invalid { lower_timeout: false });
        assert_eq!(f.c, before);
        // Teardown.
        assert!(matches!(f.send(O, 1101, 5011, FIN | ACK, 502, &[], 0), Outcome::Accept { timeout_secs: 120, .. }));
        assert_eq!(f.c.state, TcpState::FinWait);
        assert!(matches!(f.send(R, 5011, 1102, FIN | ACK, 509, &[], 0), Outcome::Accept { timeout_secs: 30, .. }));
        assert_eq!(f.c.state, TcpState::LastAck);
        assert!(matches!(f.send(O, 1102, 5012, ACK, 502, &[], 0), Outcome::Accept { timeout_secs: 120, .. }));
        assert_eq!(f.c.state, TcpState::TimeWait);
        // A new SYN after an orderly close reopens.
        assert_eq!(f.send(O, 900_000, 0, SYN, 64240, &[], 0), Outcome::Restart);
    }

    #[test]
    fn resets() {
        let mut f = established();
        assert_eq!(f.send(O, 1001 + 5_000_000, 0, RST, 0, &[], 0), Outcome::Invalid { lower_timeout: false });
        assert_eq!(f.c.state, TcpState::Established);
        assert!(matches!(f.send(R, 5001, 0, RST, 0, &[], 0), Outcome::Accept { timeout_secs: 10, .. }));
        assert_eq!(f.c.state, TcpState::Close);
        // An RST answering the SYN (no reply seen yet): the flow ends.
        let (mut f, _) = start(1, &[]);
        assert_eq!(f.send(R, 0, 2, RST | ACK, 0, &[], 0), Outcome::AcceptKill);
    }

    #[test]
    fn new_flows() {
        let mut b = [0u8; 60];
        for (flags, starts) in [(SYN, true), (ACK, true), (FIN | ACK, false), (RST, false), (SYN | ACK, false)] {
            let (hl, len) = seg(&mut b, 1, 1, flags, 100, &[], 0);
            let s = Segment { tcp: &b[..hl], len, ack_adj: None };
            assert_eq!(new_conn(&s).is_some(), starts, "flags {flags:#x}");
        }
        // Picked up mid-stream: liberal, and ESTABLISHED after its first packet.
        let (hl, len) = seg(&mut b, 1, 1, ACK, 100, &[], 0);
        let s = Segment { tcp: &b[..hl], len, ack_adj: None };
        let mut c = new_conn(&s).unwrap();
        assert_eq!(c.seen[0].flags & flag::BE_LIBERAL, flag::BE_LIBERAL);
        assert!(matches!(packet(&mut c, O, &s, false, false), Outcome::Accept { timeout_secs: 300, .. }));
        assert_eq!(c.state, TcpState::Established);
        for (flags, ok) in [(SYN | FIN, false), (SYN | RST, false), (0, false), (ACK | PSH | ECE, true), (FIN, false)] {
            let (hl, len) = seg(&mut b, 1, 1, flags, 100, &[], 0);
            assert_eq!(valid_header(&Segment { tcp: &b[..hl], len, ack_adj: None }), ok, "flags {flags:#x}");
        }
        let (hl, _) = seg(&mut b, 1, 1, ACK, 100, &[], 0);
        assert!(!valid_header(&Segment { tcp: &b[..hl], len: 10, ack_adj: None }));
    }

    #[test]
    fn simultaneous_open_and_window_scale() {
        let (mut f, _) = start(1000, &[3, 3, 7, 1]);
        assert_eq!(f.c.seen[0].scale, 7);
        // Accepted; before any reply the kernel does not refresh the timeout for it.
        assert_eq!(f.send(R, 5000, 0, SYN, 1000, &[], 0), Outcome::Ignore);
        assert_eq!(f.c.state, TcpState::SynSent2);
        // Window scaling only when both sides offer it.
        let (mut f, _) = start(1000, &[3, 3, 7, 1]);
        f.send(R, 5000, 1001, SYN | ACK, 1000, &[], 0);
        assert_eq!((f.c.seen[0].scale, f.c.seen[1].scale), (0, 0));
        let (mut f, _) = start(1000, &[3, 3, 7, 1]);
        f.send(R, 5000, 1001, SYN | ACK, 1000, &[3, 3, 5, 1], 0);
        assert_eq!((f.c.seen[0].scale, f.c.seen[1].scale), (7, 5));
        // A large scaled window lets data far ahead through.
        f.send(O, 1001, 5001, ACK, 1000, &[], 0);
        assert!(matches!(f.send(R, 5001, 1001, ACK, 1000, &[], 30_000), Outcome::Accept { .. }));
    }

    #[test]
    fn words_round_trip_and_garbage() {
        let f = established();
        assert_eq!(TcpConn::from_words(&f.c.to_words()), f.c);
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..10_000 {
            let w: [u64; TCP_WORDS] = core::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            });
            let c = TcpConn::from_words(&w);
            assert_eq!(TcpConn::from_words(&c.to_words()), c);
        }
    }

    #[test]
    fn random_segments_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut f = established();
        for _ in 0..50_000 {
            let mut b = [0u8; 60];
            for v in b.iter_mut() {
                *v = next() as u8;
            }
            let n = (next() % 61) as usize;
            let s = Segment { tcp: &b[..n], len: next() as u32, ack_adj: None };
            let dir = if next() & 1 == 0 { O } else { R };
            let _ = valid_header(&s);
            let _ = new_conn(&s);
            let _ = packet(&mut f.c, dir, &s, next() & 1 == 0, next() & 1 == 0);
        }
    }
}
