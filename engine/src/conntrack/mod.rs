// SPDX-License-Identifier: GPL-2.0

//! rust_nf's own connection tracking: the pure logic.
//!
//! Where a packet meets it (see `hooks.rs`): the conntrack stage at PREROUTING and OUTPUT
//! (priority -200) finds the packet's flow by its tuple ([`tuple`]) in the namespace's table
//! ([`table`]), or makes a new, unconfirmed one; the protocol trackers ([`tcp`], and the
//! timeouts of UDP and ICMP here) decide the packet's state and the flow's timeout; the rules
//! of later hooks see the result through [`CtView`]; the confirm stage at INPUT and
//! POSTROUTING (last priority) puts a new flow into the table, so a first packet that a rule
//! drops leaves nothing behind.
//!
//! The kernel glue keeps the table's memory, the locks, the per-packet handle from hook to
//! hook and the garbage collection worker; everything it decides with is here.

pub mod ftp;
#[cfg(test)]
mod fuzz_tests;
pub mod settings;
pub mod slots;
pub mod table;
pub mod tcp;
pub mod tuple;
pub mod wire;

pub use tuple::{Dir, Tuple};

use super::rule::{ctflag, ctstate, ConntrackMatch};

/// A flow as a packet refers to it: an entry of the namespace's table and the entry's
/// generation when the flow was found (see [`table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    /// Entry index.
    pub idx: u32,
    /// The entry's generation.
    pub gen: u32,
}

/// Connection status bits (the kernel's `IPS_*`, as `conntrack -L` and `--ctstatus` see them).
pub mod status {
    /// The flow was announced by a helper (an expectation).
    pub const EXPECTED: u16 = 1 << 0;
    /// A packet went in the reply direction.
    pub const SEEN_REPLY: u16 = 1 << 1;
    /// Seen enough of both directions to be kept when the table is full.
    pub const ASSURED: u16 = 1 << 2;
    /// In the table: its first packet left the last hook.
    pub const CONFIRMED: u16 = 1 << 3;
    /// Source NAT applies.
    pub const SRC_NAT: u16 = 1 << 4;
    /// Destination NAT applies.
    pub const DST_NAT: u16 = 1 << 5;
    /// Either NAT applies.
    pub const NAT_MASK: u16 = SRC_NAT | DST_NAT;
    /// The source binding was decided (an address, or a null binding).
    pub const SRC_NAT_DONE: u16 = 1 << 7;
    /// The destination binding was decided.
    pub const DST_NAT_DONE: u16 = 1 << 8;
    /// FTP through NAT changed a segment's length: sequence numbers are corrected.
    pub const SEQ_ADJUST: u16 = 1 << 11;
}

/// What the rules of a hook see of the packet's connection (`nf_ct_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtView {
    /// One [`ctstate`] bit: INVALID (no flow), NEW, ESTABLISHED, RELATED or UNTRACKED.
    pub state: u16,
    /// The flow, when there is one.
    pub flow: Option<FlowView>,
}

impl CtView {
    /// A packet without a flow: INVALID.
    pub const INVALID: CtView = CtView { state: ctstate::INVALID, flow: None };
    /// A packet conntrack does not look at: UNTRACKED.
    pub const UNTRACKED: CtView = CtView { state: ctstate::UNTRACKED, flow: None };
}

/// The flow of a packet, as the conntrack match reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowView {
    /// The packet goes in the reply direction.
    pub dir: Dir,
    /// [`status`] bits.
    pub status: u16,
    /// The original direction's tuple.
    pub orig: Tuple,
    /// The reply direction's tuple.
    pub reply: Tuple,
    /// Seconds until the flow expires.
    pub expires_secs: u32,
    /// The connection's mark (`ct->mark`: CONNMARK, `-m connmark`).
    pub mark: u32,
    /// (packets, bytes) in the original, then the reply direction.
    pub counters: [(u64, u64); 2],
}

/// `-m state --state MASK`: the packet's state is one of `mask` ([`ctstate`] bits).
pub fn state_matches(mask: u16, v: &CtView) -> bool {
    mask & v.state != 0
}

/// `-m conntrack` (xt_conntrack's `conntrack_mt`, revision 3).
pub fn conntrack_matches(m: &ConntrackMatch, v: &CtView) -> bool {
    let on = |f: u16| m.flags & f != 0;
    let inv = |f: u16| m.invert & f != 0;
    if on(ctflag::STATE) {
        let mut bits = v.state;
        if let Some(f) = &v.flow {
            if f.status & status::SRC_NAT != 0 {
                bits |= ctstate::SNAT;
            }
            if f.status & status::DST_NAT != 0 {
                bits |= ctstate::DNAT;
            }
        }
        if (m.state & bits != 0) == inv(ctflag::STATE) {
            return false;
        }
    }
    let Some(f) = &v.flow else {
        // Without a flow only --ctstate can match.
        return on(ctflag::STATE);
    };
    if on(ctflag::DIRECTION) && (f.dir == Dir::Original) == inv(ctflag::DIRECTION) {
        return false;
    }
    let addrs = [f.orig.src, f.orig.dst, f.reply.src, f.reply.dst];
    let addr_flags = [ctflag::ORIGSRC, ctflag::ORIGDST, ctflag::REPLSRC, ctflag::REPLDST];
    for ((flag, net), addr) in addr_flags.iter().zip(m.addrs.iter()).zip(addrs) {
        if on(*flag) && ((addr & net.mask) == net.addr) == inv(*flag) {
            return false;
        }
    }
    if on(ctflag::PROTO) && (f.orig.proto == m.proto) == inv(ctflag::PROTO) {
        return false;
    }
    let ports = [f.orig.sport, f.orig.dport, f.reply.sport, f.reply.dport];
    let port_flags =
        [ctflag::ORIGSRC_PORT, ctflag::ORIGDST_PORT, ctflag::REPLSRC_PORT, ctflag::REPLDST_PORT];
    for ((flag, range), port) in port_flags.iter().zip(m.ports.iter()).zip(ports) {
        if on(*flag) && range.contains(port) == inv(*flag) {
            return false;
        }
    }
    if on(ctflag::STATUS) && (m.status & f.status != 0) == inv(ctflag::STATUS) {
        return false;
    }
    if on(ctflag::EXPIRES) {
        let e = f.expires_secs;
        if (e >= m.expires.0 && e <= m.expires.1) == inv(ctflag::EXPIRES) {
            return false;
        }
    }
    true
}
