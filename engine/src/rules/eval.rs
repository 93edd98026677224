// SPDX-License-Identifier: GPL-2.0

//! Evaluating one packet against a compiled table, with the semantics of the kernel's
//! `ipt_do_table` (net/ipv4/netfilter/ip_tables.c) and of the xt_* matches and targets.
//!
//! * First matching rule wins. A rule matches when its address, interface, protocol and
//!   fragment conditions hold (`ip_packet_match`) and then every match in order does; a match
//!   that is not evaluated consumes no state (random numbers, nth counters, limit tokens).
//! * A matching rule is counted (1 packet, `skb->len` bytes) before its target runs, jump and
//!   goto rules included.
//! * `-j CHAIN` pushes the return position; `-g CHAIN` does not. RETURN, or falling off the
//!   end of a user chain, pops; with nothing to pop (the builtin chain itself, or a user
//!   chain reached only through gotos) the hook's builtin policy applies and its counter is
//!   counted.
//! * No target: count and go on. LOG and MARK act and go on. ACCEPT, DROP and REJECT end the
//!   walk.
//! * "Hotdrop": a `tcp`, `udp`, `icmp` or `multiport` match that must read the transport
//!   header and cannot (too short), a `tcp` match on a fragment with offset 1, or a
//!   `--tcp-option` test on options that are not all there drops the packet at once (no
//!   counter, no policy), exactly like the kernel. On a fragment with any other non-zero
//!   offset those matches simply do not match.
//!
//! Side effects and state go through [`Env`], which the kernel glue and the host tests
//! implement.

use super::super::conntrack::{self, CtView};
use super::compiled::{CLog, CMatch, CNflog, CRule, CTarget, CTcp, Ruleset, TailNext, MAX_JUMP_DEPTH};
use super::super::hooks::HookPoint;
use super::super::packet::{Ipv4Header, ParseError};
use super::rule::{
    EcnMatch, Iface, LimitMatch, MultiportKind, OwnerMatch, Policy, PortMatch, RejectWith, TcpMssMatch, TtlOp, LIMIT_SCALE,
};

/// `skb->pkt_type` values (`PACKET_*` of `<linux/if_packet.h>`).
pub const PACKET_HOST: u8 = 0;
/// To all hosts of the link.
pub const PACKET_BROADCAST: u8 = 1;
/// To a group.
pub const PACKET_MULTICAST: u8 = 2;
/// Looped back (a local multicast or broadcast sent back to this host).
pub const PACKET_LOOPBACK: u8 = 5;

/// The TCP MSS option: its kind and length.
const TCPOPT_MSS: u8 = 2;
const TCPOLEN_MSS: u8 = 4;

/// How many bytes from the start of the IPv4 header the glue must hand in (or all of the
/// packet when it is shorter): an IPv4 header with options (60) and a TCP header with options
/// (60), so that every match reads what the kernel's `skb_header_pointer` would.
pub const MAX_EVAL_LEN: usize = 120;

/// What [`evaluate`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// NF_ACCEPT.
    Accept,
    /// NF_DROP.
    Drop,
    /// REJECT: send the ICMP error or TCP reset, then drop (`reject_tg` returns NF_DROP).
    Reject(RejectWith),
    /// A NAT target decided the flow's binding; the packet is accepted.
    Nat(super::rule::NatTarget),
    /// NFQUEUE: to a userspace queue (`NF_QUEUE_NR`).
    Queue(super::rule::NfqueueSpec),
}

/// Which device `-m addrtype` looks the address up on (`--limit-iface-in/out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrTypeDev {
    /// No device: `inet_addr_type(net, addr)`.
    Any,
    /// The input device (`xt_in`).
    In,
    /// The output device (`xt_out`).
    Out,
}

/// Side effects and state of the evaluation, provided by the caller.
pub trait Env {
    /// Adds one packet and `bytes` bytes to counter `counter` (rule index, or a builtin
    /// chain's [`super::compiled::CChain::policy_counter`]).
    fn count(&mut self, counter: u32, bytes: u32);
    /// A random number (`get_random_u32`).
    fn random_u32(&mut self) -> u32;
    /// The `limit` match in state slot `state`: take a token, true when there was one. The
    /// kernel runs [`super::state::AtomicLimit::allow`] (lock-free [`LimitState::allow`]) on
    /// the slot with `jiffies`.
    fn limit_allow(&mut self, state: u32, limit: &LimitMatch) -> bool;
    /// The `statistic --mode nth` counter in slot `state`: atomically replace it with
    /// [`nth_step`]`(count, every)` and return the new value (the kernel runs
    /// [`super::state::AtomicNth::next`]).
    fn nth_next(&mut self, state: u32, every: u32) -> u32;
    /// The `quota` match in state slot `state` for a packet of `len` bytes: the kernel runs
    /// [`super::state::AtomicQuota::take`] on the slot.
    fn quota_take(&mut self, state: u32, len: u32) -> bool;
    /// `1 << inet_dev_addr_type(net, dev, addr)` (an [`super::rule::addrtype`] bit) for
    /// `addr` (host order), looked up on `dev`.
    fn addr_type(&mut self, addr: u32, dev: AddrTypeDev) -> u16;
    /// The LOG target: log the packet (`nf_log_packet`).
    fn log(&mut self, log: &CLog);
    /// The NFLOG target: hand the packet to nfnetlink_log (`nf_log_packet` with
    /// `NF_LOG_TYPE_ULOG`) with `prefix`.
    fn nflog(&mut self, n: &CNflog, prefix: &[u8]);
    /// The MARK target set the packet's mark to `mark` (later `-m mark` tests see it).
    fn set_mark(&mut self, mark: u32);
    /// The TTL target: make the IPv4 header writable and rewrite its TTL from `old` to `new`
    /// (with the header checksum: [`super::super::checksum::rewrite_ttl`]). False when the header
    /// cannot be made writable: the packet is dropped, as xt_HL returns NF_DROP.
    fn set_ttl(&mut self, old: u8, new: u8) -> bool;
    /// The TOS and DSCP targets: make the IPv4 header writable and rewrite its TOS byte from
    /// `old` to `new` (they differ), with the header checksum
    /// ([`super::super::checksum::rewrite_tos`]). False when the header cannot be made
    /// writable: the packet is dropped, as xt_DSCP returns NF_DROP.
    fn set_tos(&mut self, old: u8, new: u8) -> bool;
    /// The CLASSIFY target: `skb->priority = priority`.
    fn set_priority(&mut self, priority: u32);
    /// The TCPMSS target with `mss` ([`super::tcpmss::CLAMP_PMTU`]: the path MTU's): make the
    /// packet writable and rewrite it ([`super::tcpmss::mangle`]); the bytes it grew by and
    /// the segment's MSS option now, or `None` to drop it.
    fn tcpmss(&mut self, mss: u16) -> Option<(u32, Option<u16>)>;
    /// The packet's connection as the conntrack stage of this packet left it (`nf_ct_get`).
    fn ct(&mut self) -> CtView;
    /// The CT --notrack target: connection tracking is to leave this packet alone.
    fn notrack(&mut self);
    /// The CT target with a template: the packet's connection is looked up in its zone, and
    /// a flow the packet starts gets its helper and event mask.
    fn ct_template(&mut self, spec: &super::rule::CtSpec);
    /// `-m recent` on the list in state slot `state` for address `addr` (the one `--rsource` or
    /// `--rdest` picks) and the packet's TTL `ttl` (the glue adds one on the forward path, as
    /// xt_recent does): under the list's lock, [`super::recent::List::matches`]. `Err` is a
    /// hotdrop.
    fn recent(&mut self, state: u32, m: &RecentCheck, addr: u32, ttl: u8) -> Result<bool, ()>;
    /// `-m connlimit` with the counter in state slot `state`: the connections of `key` the
    /// rule has seen that are still open, the packet's own flow included
    /// ([`super::connlimit::Counter::count`]); `None` drops the packet.
    fn connlimit(&mut self, state: u32, key: u32) -> Option<u32>;
    /// The CONNMARK target: the packet's flow (there is one: [`Env::ct`] showed it) gets
    /// mark `mark`; later [`Env::ct`] calls show it.
    fn set_ct_mark(&mut self, mark: u32);
    /// The socket a local packet belongs to, as xt_owner sees it (`skb_to_full_sk`, its
    /// `struct socket` and file, in this namespace).
    fn sock_owner(&mut self) -> SockOwner;
    /// Whether one of the supplementary groups of the packet's socket file is in
    /// `min..=max` (only asked after [`Env::sock_owner`] found a file).
    fn owner_in_groups(&mut self, min: u32, max: u32) -> bool;
}

/// The owner of a packet's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SockOwner {
    /// No socket (a forwarded packet, a reply the kernel sends for itself), a closed one, or
    /// one of another namespace.
    #[default]
    None,
    /// A socket that has no file (a kernel socket).
    NoFile,
    /// A socket with a file: its credentials' fsuid and fsgid in the namespace's user
    /// namespace.
    File {
        /// `f_cred->fsuid`.
        uid: u32,
        /// `f_cred->fsgid`.
        gid: u32,
    },
}

/// xt_owner's `owner_mt`.
pub fn owner_matches(m: &OwnerMatch, sock: SockOwner, env: &mut impl Env) -> bool {
    let (uid, gid) = match sock {
        SockOwner::None => return (m.flags ^ m.invert) == 0,
        // A socket exists but `! --socket-exists` was asked.
        _ if m.flags & m.invert & OwnerMatch::SOCKET != 0 => return false,
        SockOwner::NoFile => return (m.flags ^ m.invert) & (OwnerMatch::UID | OwnerMatch::GID) == 0,
        SockOwner::File { uid, gid } => (uid, gid),
    };
    if m.flags & OwnerMatch::UID != 0 {
        let inside = uid >= m.uid_min && uid <= m.uid_max;
        if inside == (m.invert & OwnerMatch::UID != 0) {
            return false;
        }
    }
    if m.flags & OwnerMatch::GID != 0 {
        let inside = (gid >= m.gid_min && gid <= m.gid_max)
            || (m.flags & OwnerMatch::SUPPL_GROUPS != 0 && env.owner_in_groups(m.gid_min, m.gid_max));
        if inside == (m.invert & OwnerMatch::GID != 0) {
            return false;
        }
    }
    true
}

/// What a `-m recent` asks of its list (the list's own mask applies to the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentCheck {
    /// [`super::recent::flag`] bits.
    pub check_set: u8,
    /// `!`.
    pub invert: bool,
    /// `--seconds`.
    pub seconds: u32,
    /// `--hitcount`.
    pub hit_count: u32,
}

impl RecentCheck {
    /// As the list logic takes it.
    pub fn as_match(&self) -> super::recent::RecentMatch<'static> {
        super::recent::RecentMatch {
            check_set: self.check_set,
            invert: self.invert,
            seconds: self.seconds,
            hit_count: self.hit_count,
            ..Default::default()
        }
    }
}

/// What earlier targets of this walk changed and later matches see.
#[derive(Debug, Clone, Copy)]
struct Live {
    mark: u32,
    ttl: u8,
    tos: u8,
    /// `skb->len` and the datagram's length (TCPMSS may add an option).
    skb_len: u32,
    ip_len: u32,
    /// After a TCPMSS target: the segment's MSS option (what `-m tcpmss` then sees).
    mss: Option<Option<u16>>,
}

/// One packet as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo<'a> {
    /// The IPv4 header.
    pub ip: Ipv4Header,
    /// The bytes after the IPv4 header that are available (as many as the packet has, up to
    /// what the glue copied: see [`MAX_EVAL_LEN`]). Shorter than a match needs means the
    /// kernel's `skb_header_pointer` would fail: hotdrop.
    pub l4: &'a [u8],
    /// Input device name (no NUL), empty when there is none (OUTPUT, POSTROUTING of local
    /// packets).
    pub in_dev: &'a [u8],
    /// Output device name, empty when there is none (PREROUTING, INPUT).
    pub out_dev: &'a [u8],
    /// `skb->len`, what byte counters add.
    pub skb_len: u32,
    /// The datagram's length as `-m length` sees it (`skb_ip_totlen`): the header's total
    /// length, or for a GSO packet over 64 KiB (BIG TCP, total length 0) the skb's.
    pub ip_len: u32,
    /// `skb->mark` on entry.
    pub mark: u32,
    /// `skb->pkt_type` ([`PACKET_HOST`], ...).
    pub pkt_type: u8,
    /// The Ethernet source address, when the packet came in on an Ethernet device with its
    /// link-layer header still in front (what `-m mac` needs).
    pub mac_src: Option<[u8; 6]>,
}

/// What the glue reads from the skb besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// `skb->len`.
    pub skb_len: u32,
    /// `skb_ip_totlen(skb)`.
    pub ip_len: u32,
    /// `skb->mark`.
    pub mark: u32,
    /// `skb->pkt_type`.
    pub pkt_type: u8,
    /// The Ethernet source address (see [`PacketInfo::mac_src`]).
    pub mac_src: Option<[u8; 6]>,
}

impl Meta {
    /// A plain (non-GSO) packet of `len` bytes whose header says so, to this host, with no
    /// link-layer header.
    pub fn plain(len: u32) -> Self {
        Self { skb_len: len, ip_len: len, mark: 0, pkt_type: PACKET_HOST, mac_src: None }
    }
}

impl<'a> PacketInfo<'a> {
    /// Reads the IPv4 header at the start of `data` (the bytes from the network header on,
    /// as many as the skb has up to what the glue copied) as ip_tables does: the transport
    /// bytes start at IHL * 4, whatever the header says (see [`Ipv4Header::parse_any`]).
    /// Device names are cut at their first NUL.
    ///
    /// Fails only when `data` is shorter than 20 bytes: the caller drops such a packet.
    pub fn parse(data: &'a [u8], in_dev: &'a [u8], out_dev: &'a [u8], meta: Meta) -> Result<Self, ParseError> {
        let ip = Ipv4Header::parse_any(data)?;
        let l4 = data.get(ip.header_len..).unwrap_or(&[]);
        Ok(Self {
            ip,
            l4,
            in_dev: ifname(in_dev),
            out_dev: ifname(out_dev),
            skb_len: meta.skb_len,
            ip_len: meta.ip_len,
            mark: meta.mark,
            pkt_type: meta.pkt_type,
            mac_src: meta.mac_src,
        })
    }
}

/// An interface name up to its first NUL (`net_device.name` is NUL-padded).
pub fn ifname(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == 0) {
        Some(n) => name.get(..n).unwrap_or(name),
        None => name,
    }
}

/// The next value of an nth counter (`statistic_mt`): wraps to 0 after `every`; the match
/// fires when the new value is 0. A new ruleset starts the counter at `every - packet`.
pub fn nth_step(count: u32, every: u32) -> u32 {
    if count == every {
        0
    } else {
        count.wrapping_add(1)
    }
}

/// xt_limit's `CREDITS_PER_JIFFY` for a kernel with this `HZ`: the largest power of two not
/// above `0xFFFFFFFF / (HZ * 86400)` (so a rate of 1/day still fits in 32 bits).
pub fn credits_per_jiffy(hz: u32) -> u32 {
    let max_cpj = hz.checked_mul(86_400).and_then(|d| 0xFFFF_FFFFu32.checked_div(d)).unwrap_or(0);
    let mut v = max_cpj;
    v |= v >> 1;
    v |= v >> 2;
    v |= v >> 4;
    v |= v >> 8;
    v |= v >> 16;
    (v >> 1) + 1
}

/// xt_limit's `user2credits`: a period in 1/[`LIMIT_SCALE`] s to credits, with the kernel's
/// 32-bit wrap-around.
pub fn user2credits(user: u32, hz: u32) -> u32 {
    let cpj = credits_per_jiffy(hz);
    let Some(bound) = 0xFFFF_FFFFu32.checked_div(hz.wrapping_mul(cpj)) else { return 0 };
    if user > bound {
        (user / LIMIT_SCALE).wrapping_mul(hz).wrapping_mul(cpj)
    } else {
        user.wrapping_mul(hz).wrapping_mul(cpj) / LIMIT_SCALE
    }
}

/// xt_limit's `limit_mt_check`: false (the kernel's `-ERANGE`) for burst 0 or when
/// `avg * burst` overflows (computed in 32 bits, as the kernel does).
pub fn limit_valid(m: &LimitMatch, hz: u32) -> bool {
    m.burst != 0 && user2credits(m.avg.wrapping_mul(m.burst), hz) >= user2credits(m.avg, hz)
}

/// The token bucket of one `limit` match (`struct xt_limit_priv` plus the precomputed
/// `credit_cap` and `cost` of `struct xt_rateinfo`). Times are in jiffies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    /// Time of the last update.
    pub prev: u64,
    /// Credits now.
    pub credit: u32,
    /// Most credits the bucket holds (burst).
    pub credit_cap: u32,
    /// Credits one packet costs.
    pub cost: u32,
    /// Credits gained per jiffy.
    pub credits_per_jiffy: u32,
}

impl LimitState {
    /// A full bucket at time `now` (`limit_mt_check`).
    pub fn new(m: &LimitMatch, hz: u32, now: u64) -> Self {
        let full = user2credits(m.avg.wrapping_mul(m.burst), hz);
        Self {
            prev: now,
            credit: full,
            credit_cap: full,
            cost: user2credits(m.avg, hz),
            credits_per_jiffy: credits_per_jiffy(hz),
        }
    }

    /// One packet at time `now` (`limit_mt`): true when it may pass.
    ///
    /// The packet path shares one bucket between CPUs: [`super::state::AtomicLimit`] runs
    /// the same steps ([`limit_increase`], [`limit_take`]) lock-free.
    pub fn allow(&mut self, now: u64) -> bool {
        if self.credit < self.cost && self.prev == now {
            return false;
        }
        let increase = limit_increase(self.prev, now, self.credits_per_jiffy);
        self.prev = now;
        let (credit, pass) = limit_take(self.credit, increase, self.credit_cap, self.cost);
        self.credit = credit;
        pass
    }
}

/// The credits `limit_mt` adds for the jiffies from `prev` to `now`:
/// `(now - prev) * CREDITS_PER_JIFFY` in `unsigned long`, truncated to the `u32`
/// `credit_increase` (all with wrap-around, as in the kernel).
pub fn limit_increase(prev: u64, now: u64, credits_per_jiffy: u32) -> u32 {
    now.wrapping_sub(prev).wrapping_mul(u64::from(credits_per_jiffy)) as u32
}

/// One attempt of `limit_mt`'s update: `credit` plus `increase` (with wrap-around), capped at
/// `credit_cap`, minus `cost` when that many are there. Returns the new credit and whether
/// the packet passes.
pub fn limit_take(credit: u32, increase: u32, credit_cap: u32, cost: u32) -> (u32, bool) {
    let mut credit = credit.wrapping_add(increase);
    if credit > credit_cap {
        credit = credit_cap;
    }
    if credit >= cost {
        (credit.wrapping_sub(cost), true)
    } else {
        (credit, false)
    }
}

/// Result of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    No,
    Yes,
    HotDrop,
}

fn yes_if(b: bool) -> Outcome {
    if b {
        Outcome::Yes
    } else {
        Outcome::No
    }
}

/// Runs the table's chain for `hook` over `pkt` and returns the verdict.
///
/// A hook without a builtin chain in this table gives [`Verdict::Accept`] (the kernel never
/// calls a table there). `rs` must come from [`super::compile::compile`], which guarantees
/// the walk ends; inconsistent arrays give [`Verdict::Drop`], never a panic.
pub fn evaluate(
    rs: &Ruleset<'_>,
    hook: HookPoint,
    pkt: &PacketInfo<'_>,
    env: &mut impl Env,
) -> Verdict {
    // Compiled twice: a ruleset without a delta (nearly always) walks without its checks.
    if rs.delta.is_empty() {
        walk::<false>(rs, hook, pkt, env)
    } else {
        walk::<true>(rs, hook, pkt, env)
    }
}

/// [`evaluate`]; `DELTA`: the ruleset may have a delta (else it has none).
#[inline(always)]
fn walk<const DELTA: bool>(
    rs: &Ruleset<'_>,
    hook: HookPoint,
    pkt: &PacketInfo<'_>,
    env: &mut impl Env,
) -> Verdict {
    let Some(entry) = rs.entry_chain(hook) else { return Verdict::Accept };
    let Some(entry_chain) = rs.chains.get(entry as usize) else { return Verdict::Drop };
    let mut stack = [0u32; MAX_JUMP_DEPTH];
    let mut sp = 0usize;
    let mut live = Live { mark: pkt.mark, ttl: pkt.ip.ttl, tos: pkt.ip.tos, skb_len: pkt.skb_len, ip_len: pkt.ip_len, mss: None };
    let mut pos = entry_chain.first;
    let mut end = entry_chain.first.saturating_add(entry_chain.count);
    // In an indexed chain the classifier skips the rules the packet cannot match (its key is
    // made when the walk first enters one; a packet without a key walks linearly). Elsewhere
    // the compact rules skip those whose addresses or protocol fail, without reading them.
    let mut key = KeyState::Unknown;
    let hot = if rs.index.hot.len() == rs.rules.len() { rs.index.hot } else { &[] };
    let (src, dst, proto) = (pkt.ip.src, pkt.ip.dst, pkt.ip.protocol);
    // Changes since the ruleset was compiled: deleted rules are passed over, a chain's tail
    // rules (positions from `compiled` on) come before the compiled rule at their anchor, in
    // the delta's chain order. In the tail, `at` is the place in that order of the rule at
    // `pos`; among compiled rules, `tail_next` is the place of the chain's next tail rule.
    let delta = &rs.delta;
    let compiled = rs.rules.len() as u32;
    let tail_hot = if delta.hot.len() == delta.rules.len() { delta.hot } else { &[] };
    let any_dead = DELTA && !delta.dead.is_empty();
    let mut in_tail = false;
    let mut at = 0u32;
    let mut chain = entry;
    let mut tail_next = if DELTA { delta.tail_start(chain) } else { None };
    let mut indexed = use_index(rs, chain, pkt, &mut key);
    // A second line of defence for a delta (checked as it is made, never walked by the
    // compiler): without gotos a walk ends (positions only move on, and a full stack drops), so
    // a loop takes endlessly many gotos in one frame of the jump stack; a loop-free walk takes
    // fewer gotos in a frame than there are chains, since each goes to a chain the frame has
    // not been in. More drops the packet.
    let goto_limit = if DELTA { rs.chains.len() as u32 } else { 0 };
    let mut gotos = [0u32; MAX_JUMP_DEPTH + 1];
    loop {
        if !in_tail {
            // The chain's next tail rules come before the compiled rule at their anchor: the
            // skip looks no further (it would look again from there).
            let next_anchor = match tail_next.filter(|_| DELTA) {
                Some(i) => match delta.ordered(i, chain) {
                    Some((_, anchor)) => Some(anchor),
                    None => return Verdict::Drop,
                },
                None => None,
            };
            let stop = next_anchor.map_or(end, |a| a.min(end));
            if indexed {
                if let KeyState::Known(k) = &key {
                    pos = rs.index.next(chain, pos, stop, k);
                }
            } else if let Some(run) = hot.get(pos as usize..stop as usize) {
                pos = pos.saturating_add(skip_ruled_out(run, src, dst, proto));
            }
            // The tail rules come first if anchored at or before that rule.
            if let (Some(i), Some(anchor)) = (tail_next, next_anchor) {
                if anchor <= pos {
                    in_tail = true;
                    at = i;
                }
            }
            if !in_tail && any_dead && pos < end && delta.is_dead(pos) {
                pos = pos.saturating_add(1);
                continue;
            }
        }
        if DELTA && in_tail {
            // The first of them that is live and that the packet's addresses and protocol do
            // not rule out; none: back to the compiled rules.
            let Some((t, _)) = delta.ordered(at, chain) else { return Verdict::Drop };
            let p = compiled.saturating_add(t);
            if delta.is_dead(p) || tail_hot.get(t as usize).is_some_and(|h| !h.may_match(src, dst, proto)) {
                after_tail(delta, chain, &mut at, &mut in_tail, &mut pos, &mut tail_next);
                continue;
            }
            pos = p;
        }
        let mut ret = !in_tail && pos >= end;
        if !ret {
            let fetched = if DELTA && in_tail {
                delta.rules.get(pos.wrapping_sub(compiled) as usize).map(|r| (r, delta.rule_matches(r)))
            } else {
                rs.rules.get(pos as usize).map(|r| (r, rs.rule_matches(r)))
            };
            let Some((rule, matches)) = fetched else { return Verdict::Drop };
            let go_on = match rule_matches(rule, matches, pkt, live, env) {
                Outcome::No => true,
                Outcome::HotDrop => return Verdict::Drop,
                Outcome::Yes => {
                    env.count(if DELTA { rs.counter_of(pos) } else { pos }, live.skb_len);
                    match &rule.target {
                        CTarget::None => true,
                        CTarget::Accept => return Verdict::Accept,
                        CTarget::Drop => return Verdict::Drop,
                        CTarget::Reject(kind) => return Verdict::Reject(*kind),
                        CTarget::Nfqueue(q) => return Verdict::Queue(*q),
                        CTarget::Nat(n) => return Verdict::Nat(*n),
                        CTarget::Return => {
                            ret = true;
                            false
                        }
                        CTarget::Jump(t) | CTarget::Goto(t) => {
                            if matches!(rule.target, CTarget::Jump(_)) {
                                // ipt_do_table: a full stack drops the packet.
                                let Some(slot) = stack.get_mut(sp) else { return Verdict::Drop };
                                *slot = pos;
                                sp += 1;
                                if DELTA {
                                    if let Some(g) = gotos.get_mut(sp) {
                                        *g = 0;
                                    }
                                }
                            } else if DELTA {
                                let Some(g) = gotos.get_mut(sp) else { return Verdict::Drop };
                                *g = g.saturating_add(1);
                                if *g > goto_limit {
                                    return Verdict::Drop;
                                }
                            }
                            let Some(c) = rs.chains.get(*t as usize) else { return Verdict::Drop };
                            chain = *t;
                            indexed = use_index(rs, chain, pkt, &mut key);
                            pos = c.first;
                            end = c.first.saturating_add(c.count);
                            in_tail = false;
                            tail_next = if DELTA { delta.tail_start(chain) } else { None };
                            false
                        }
                        CTarget::Log(l) => {
                            env.log(l);
                            true
                        }
                        CTarget::Nflog(n) => {
                            let prefix = matches.iter().rev().find_map(|m| match m {
                                CMatch::LogPrefix { buf, len } => buf.get(..usize::from(*len)),
                                _ => None,
                            });
                            env.nflog(n, prefix.unwrap_or(&[]));
                            true
                        }
                        CTarget::Mark { value, mask } => {
                            live.mark = (live.mark & !*mask) ^ *value;
                            env.set_mark(live.mark);
                            true
                        }
                        CTarget::CtNotrack => {
                            env.notrack();
                            true
                        }
                        CTarget::Ct(c) if c.notrack => {
                            env.notrack();
                            true
                        }
                        CTarget::Ct(c) => {
                            env.ct_template(c);
                            true
                        }
                        CTarget::Connmark(c) => {
                            // No flow (INVALID, UNTRACKED): nothing to do, as nf_ct_get gives NULL.
                            if let Some(f) = env.ct().flow {
                                let (ct, skb) = c.apply(f.mark, live.mark);
                                if let Some(m) = ct {
                                    env.set_ct_mark(m);
                                }
                                if let Some(m) = skb {
                                    live.mark = m;
                                    env.set_mark(m);
                                }
                            }
                            true
                        }
                        CTarget::Ttl { mode, value } => {
                            let new = mode.apply(live.ttl, *value);
                            if !env.set_ttl(live.ttl, new) {
                                return Verdict::Drop;
                            }
                            live.ttl = new;
                            true
                        }
                        CTarget::Tos { keep, xor, .. } => {
                            // xt_DSCP's dscp_tg and tos_tg: the header is written only when
                            // the byte changes.
                            let new = (live.tos & *keep) ^ *xor;
                            if new != live.tos {
                                if !env.set_tos(live.tos, new) {
                                    return Verdict::Drop;
                                }
                                live.tos = new;
                            }
                            true
                        }
                        CTarget::Classify(p) => {
                            env.set_priority(*p);
                            true
                        }
                        // xt_TCPMSS leaves a fragment alone before it makes the packet writable.
                        CTarget::TcpMss(_) if pkt.ip.frag_offset != 0 => true,
                        CTarget::TcpMss(m) => {
                            let Some((added, mss)) = env.tcpmss(*m) else { return Verdict::Drop };
                            live.skb_len = live.skb_len.saturating_add(added);
                            live.ip_len = live.ip_len.saturating_add(added);
                            live.mss = Some(mss);
                            true
                        }
                    }
                }
            };
            if go_on {
                if DELTA && in_tail {
                    after_tail(delta, chain, &mut at, &mut in_tail, &mut pos, &mut tail_next);
                } else {
                    pos = pos.saturating_add(1);
                }
            }
        }
        if ret {
            if sp == 0 {
                // The hook's underflow: its builtin chain's policy.
                env.count(entry_chain.policy_counter, live.skb_len);
                let policy = if DELTA { delta.policy(entry, entry_chain.policy) } else { entry_chain.policy };
                return match policy {
                    Some(Policy::Accept) => Verdict::Accept,
                    _ => Verdict::Drop,
                };
            }
            sp -= 1;
            let Some(&from) = stack.get(sp) else { return Verdict::Drop };
            let Some((r, _)) = rs.rule_at(from) else { return Verdict::Drop };
            let Some(c) = rs.chains.get(r.chain as usize) else { return Verdict::Drop };
            chain = r.chain;
            indexed = use_index(rs, chain, pkt, &mut key);
            end = c.first.saturating_add(c.count);
            match from.checked_sub(compiled).filter(|_| DELTA) {
                // Back after a tail rule: what follows it in the chain.
                Some(t) => {
                    let Some(i) = delta.rank(t) else { return Verdict::Drop };
                    at = i;
                    in_tail = true;
                    after_tail(delta, chain, &mut at, &mut in_tail, &mut pos, &mut tail_next);
                }
                None => {
                    pos = from.saturating_add(1);
                    in_tail = false;
                    tail_next = if DELTA { delta.tail_after(chain, from) } else { None };
                }
            }
        }
    }
}

/// Moves a chain's walk past the tail rule at place `at` of the delta's order: to the next
/// one, or back to the compiled rules at its anchor.
#[inline(always)]
fn after_tail(delta: &super::compiled::Delta<'_>, chain: u32, at: &mut u32, in_tail: &mut bool, pos: &mut u32, tail_next: &mut Option<u32>) {
    match delta.after_tail(*at, chain) {
        TailNext::Tail(i) => *at = i,
        TailNext::Compiled { at: anchor, next } => {
            *in_tail = false;
            *pos = anchor;
            *tail_next = next;
        }
    }
}

/// How many rules at the start of `run` (compact forms) a packet with these addresses and
/// protocol cannot match. Its own function: the walk's hottest loop, compiled on its own.
#[inline(never)]
fn skip_ruled_out(run: &[super::index::CHot], src: u32, dst: u32, proto: u8) -> u32 {
    run.iter().position(|h| h.may_match(src, dst, proto)).unwrap_or(run.len()) as u32
}

/// The packet's classifier key, made when first needed.
enum KeyState<'a> {
    Unknown,
    Known(super::index::PacketKey<'a>),
    Linear,
}

/// Whether the walk of `chain` uses the classifier: the chain has an index and the packet a
/// key (made now if this is the first indexed chain the walk enters).
#[inline]
fn use_index<'a>(rs: &Ruleset<'_>, chain: u32, pkt: &PacketInfo<'a>, key: &mut KeyState<'a>) -> bool {
    if !rs.index.indexed(chain) {
        return false;
    }
    if let KeyState::Unknown = key {
        *key = match super::index::PacketKey::new(pkt) {
            Some(k) => KeyState::Known(k),
            None => KeyState::Linear,
        };
    }
    matches!(key, KeyState::Known(_))
}

/// `ip_packet_match` and then the rule's matches.
fn rule_matches(
    r: &CRule,
    matches: &[CMatch],
    pkt: &PacketInfo<'_>,
    live: Live,
    env: &mut impl Env,
) -> Outcome {
    if !ip_packet_match(r, pkt) {
        return Outcome::No;
    }
    for m in matches {
        match match_one(m, pkt, live, env) {
            Outcome::Yes => {}
            other => return other,
        }
    }
    Outcome::Yes
}

fn iface_matches(pattern: &Iface, dev: &[u8]) -> bool {
    pattern.is_any() || pattern.matches(dev)
}

/// The kernel's `ip_packet_match`.
fn ip_packet_match(r: &CRule, pkt: &PacketInfo<'_>) -> bool {
    let ip = &pkt.ip;
    if ((ip.src & r.src.mask) != r.src.addr) ^ r.src_invert
        || ((ip.dst & r.dst.mask) != r.dst.addr) ^ r.dst_invert
    {
        return false;
    }
    if !iface_matches(&r.in_iface, pkt.in_dev) ^ r.in_invert
        || !iface_matches(&r.out_iface, pkt.out_dev) ^ r.out_invert
    {
        return false;
    }
    if r.proto != 0 && (ip.protocol != r.proto) ^ r.proto_invert {
        return false;
    }
    let isfrag = ip.frag_offset != 0;
    match r.fragment {
        Some(true) => isfrag,
        Some(false) => !isfrag,
        None => true,
    }
}

fn port_match(p: &PortMatch, port: u16) -> bool {
    p.range.contains(port) ^ p.invert
}

fn match_one(m: &CMatch, pkt: &PacketInfo<'_>, live: Live, env: &mut impl Env) -> Outcome {
    let ip = &pkt.ip;
    let fragoff = ip.frag_offset;
    match m {
        CMatch::Tcp(t) => tcp_match(t, pkt),
        CMatch::Udp(u) => {
            if fragoff != 0 {
                return Outcome::No;
            }
            let Some(h) = pkt.l4.first_chunk::<8>() else { return Outcome::HotDrop };
            let (sport, dport) =
                (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]));
            yes_if(port_match(&u.sport, sport) && port_match(&u.dport, dport))
        }
        CMatch::Icmp(i) => {
            if fragoff != 0 {
                return Outcome::No;
            }
            let Some(h) = pkt.l4.first_chunk::<8>() else { return Outcome::HotDrop };
            let (ty, code) = (h[0], h[1]);
            let hit = i.icmp_type == 0xff
                || (ty == i.icmp_type && code >= i.code_min && code <= i.code_max);
            yes_if(hit ^ i.invert)
        }
        CMatch::Multiport(mp) => {
            if fragoff != 0 {
                return Outcome::No;
            }
            let Some(h) = pkt.l4.first_chunk::<4>() else { return Outcome::HotDrop };
            let (src, dst) = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]));
            let hit = mp.list().iter().any(|r| match mp.kind {
                MultiportKind::Source => r.contains(src),
                MultiportKind::Destination => r.contains(dst),
                MultiportKind::Either => r.contains(src) || r.contains(dst),
            });
            yes_if(hit ^ mp.invert)
        }
        CMatch::Mark(mk) => yes_if(((live.mark & mk.mask) == mk.value) ^ mk.invert),
        CMatch::Random { probability, invert } => {
            yes_if(((env.random_u32() & 0x7FFF_FFFF) < *probability) ^ *invert)
        }
        CMatch::Nth { state, every, invert, .. } => {
            yes_if((env.nth_next(*state, *every) == 0) ^ *invert)
        }
        CMatch::Limit { state, limit } => yes_if(env.limit_allow(*state, limit)),
        CMatch::Quota { state, invert, .. } => yes_if(env.quota_take(*state, live.skb_len) ^ *invert),
        CMatch::IpRange(r) => {
            if let Some(s) = r.src {
                if (ip.src < s.lo || ip.src > s.hi) ^ s.invert {
                    return Outcome::No;
                }
            }
            if let Some(d) = r.dst {
                if (ip.dst < d.lo || ip.dst > d.hi) ^ d.invert {
                    return Outcome::No;
                }
            }
            Outcome::Yes
        }
        CMatch::Length(l) => {
            let len = live.ip_len;
            yes_if((len >= u32::from(l.min) && len <= u32::from(l.max)) ^ l.invert)
        }
        CMatch::AddrType(a) => {
            let dev = if a.limit_iface_in {
                AddrTypeDev::In
            } else if a.limit_iface_out {
                AddrTypeDev::Out
            } else {
                AddrTypeDev::Any
            };
            let mut ret = true;
            if a.src != 0 {
                ret &= (env.addr_type(ip.src, dev) & a.src != 0) ^ a.src_invert;
            }
            if ret && a.dst != 0 {
                ret &= (env.addr_type(ip.dst, dev) & a.dst != 0) ^ a.dst_invert;
            }
            yes_if(ret)
        }
        CMatch::Conntrack(c) => yes_if(conntrack::conntrack_matches(c, &env.ct())),
        CMatch::State(mask) => yes_if(conntrack::state_matches(*mask, &env.ct())),
        CMatch::Recent { state, check_set, invert, dest, seconds, hit_count } => {
            let m = RecentCheck { check_set: *check_set, invert: *invert, seconds: *seconds, hit_count: *hit_count };
            let addr = if *dest { ip.dst } else { ip.src };
            match env.recent(*state, &m, addr, live.ttl) {
                Ok(true) => Outcome::Yes,
                Ok(false) => Outcome::No,
                Err(()) => Outcome::HotDrop,
            }
        }
        CMatch::Connlimit { state, m } => {
            let addr = if m.dest { ip.dst } else { ip.src };
            match env.connlimit(*state, addr & m.mask()) {
                Some(n) => yes_if(m.verdict(n)),
                None => Outcome::HotDrop,
            }
        }
        // No flow or no accounting: no match (whatever the `!`).
        CMatch::Connbytes(c) => yes_if(env.ct().flow.is_some_and(|f| c.matches(&f.counters))),
        CMatch::Connmark(mk) => {
            // xt_connmark's connmark_mt: no flow, no match (whatever the `!`).
            yes_if(env.ct().flow.is_some_and(|f| ((f.mark & mk.mask) == mk.value) ^ mk.invert))
        }
        CMatch::Ttl(t) => yes_if(match t.op {
            TtlOp::Eq => live.ttl == t.value,
            TtlOp::Ne => live.ttl != t.value,
            TtlOp::Lt => live.ttl < t.value,
            TtlOp::Gt => live.ttl > t.value,
        }),
        CMatch::LogPrefix { .. } => Outcome::Yes,
        CMatch::Tos(t) => yes_if(((live.tos & t.mask) == t.value) ^ t.invert),
        CMatch::Ecn(e) => ecn_match(e, pkt, live.tos),
        // xt_esp, ipt_ah: the SPI of a whole header (8 and 12 bytes) of no fragment.
        m_kind @ (CMatch::Esp(m) | CMatch::Ah(m)) => {
            if fragoff != 0 {
                return Outcome::No;
            }
            let spi = match m_kind {
                CMatch::Esp(_) => pkt.l4.first_chunk::<8>().map(|h| [h[0], h[1], h[2], h[3]]),
                _ => pkt.l4.first_chunk::<12>().map(|h| [h[4], h[5], h[6], h[7]]),
            };
            let Some(spi) = spi.map(u32::from_be_bytes) else { return Outcome::HotDrop };
            yes_if((spi >= m.min && spi <= m.max) ^ m.invert)
        }
        CMatch::PktType(p) => {
            // xt_pkttype: a looped-back packet is multicast or broadcast by its address.
            let ty = match pkt.pkt_type {
                PACKET_LOOPBACK if ip.dst >> 28 == 0xE => PACKET_MULTICAST,
                PACKET_LOOPBACK => PACKET_BROADCAST,
                t => t,
            };
            yes_if((ty == p.pkt_type) ^ p.invert)
        }
        // xt_mac: no Ethernet header, no match (whatever the `!`).
        CMatch::Mac(m) => yes_if(pkt.mac_src.is_some_and(|a| (a == m.src) ^ m.invert)),
        // After a TCPMSS target, the option it left (the packet was whole and no fragment).
        CMatch::TcpMss(m) => match live.mss {
            Some(Some(v)) => yes_if((v >= m.min && v <= m.max) ^ m.invert),
            Some(None) => yes_if(m.invert),
            None => tcpmss_match(m, pkt),
        },
        CMatch::Owner(m) => {
            let sock = env.sock_owner();
            yes_if(owner_matches(m, sock, env))
        }
    }
}

/// xt_ecn's `ecn_mt4`: the ECN bits of the TOS byte, then the TCP header's ECE and CWR
/// (a fragment or a short header does not match).
fn ecn_match(e: &EcnMatch, pkt: &PacketInfo<'_>, tos: u8) -> Outcome {
    if e.operation & EcnMatch::IP != 0 && ((tos & 0x03) == e.ip_ect) == (e.invert & EcnMatch::IP != 0) {
        return Outcome::No;
    }
    if e.operation & (EcnMatch::ECE | EcnMatch::CWR) == 0 {
        return Outcome::Yes;
    }
    if pkt.ip.frag_offset != 0 {
        return Outcome::No;
    }
    let Some(h) = pkt.l4.first_chunk::<20>() else { return Outcome::No };
    for (bit, flag) in [(EcnMatch::ECE, 0x40u8), (EcnMatch::CWR, 0x80)] {
        if e.operation & bit != 0 && (h[13] & flag != 0) == (e.invert & bit != 0) {
            return Outcome::No;
        }
    }
    Outcome::Yes
}

/// xt_tcpmss's `tcpmss_mt`: the first MSS option of the TCP header; none matches only
/// inverted; a short or malformed header is a hotdrop.
fn tcpmss_match(m: &TcpMssMatch, pkt: &PacketInfo<'_>) -> Outcome {
    if pkt.ip.frag_offset != 0 {
        return Outcome::No;
    }
    let Some(h) = pkt.l4.first_chunk::<20>() else { return Outcome::HotDrop };
    let doff = usize::from(h[12] >> 4) * 4;
    if doff < 20 {
        return Outcome::HotDrop;
    }
    let Some(op) = pkt.l4.get(20..doff) else { return Outcome::HotDrop };
    let mut i = 0;
    while let Some(&kind) = op.get(i) {
        if kind == TCPOPT_MSS && op.get(i + 1) == Some(&TCPOLEN_MSS) {
            if let Some(v) = op.get(i + 2..i + 4) {
                let mss = u16::from_be_bytes([v[0], v[1]]);
                return yes_if((mss >= m.min && mss <= m.max) ^ m.invert);
            }
        }
        i += match op.get(i + 1) {
            _ if kind < 2 => 1,
            // The last byte, or a zero length: one step, as the kernel.
            None | Some(0) => 1,
            Some(&n) => usize::from(n),
        };
    }
    yes_if(m.invert)
}

/// xt_tcpudp's `tcp_mt`.
fn tcp_match(t: &CTcp, pkt: &PacketInfo<'_>) -> Outcome {
    let fragoff = pkt.ip.frag_offset;
    if fragoff != 0 {
        // "Don't allow a fragment of TCP 8 bytes in": offset 1 could overwrite the flags.
        return if fragoff == 1 { Outcome::HotDrop } else { Outcome::No };
    }
    let Some(h) = pkt.l4.first_chunk::<20>() else { return Outcome::HotDrop };
    let (sport, dport) = (u16::from_be_bytes([h[0], h[1]]), u16::from_be_bytes([h[2], h[3]]));
    if !port_match(&t.sport, sport) || !port_match(&t.dport, dport) {
        return Outcome::No;
    }
    if ((h[13] & t.flags_mask) == t.flags_comp) == t.flags_invert {
        return Outcome::No;
    }
    if t.option != 0 {
        let doff = usize::from(h[12] >> 4) * 4;
        let Some(optlen) = doff.checked_sub(20) else { return Outcome::HotDrop };
        return tcp_find_option(t.option, pkt.l4, optlen, t.option_invert);
    }
    Outcome::Yes
}

/// xt_tcpudp's `tcp_find_option` over the `optlen` option bytes after the fixed header.
fn tcp_find_option(option: u8, l4: &[u8], optlen: usize, invert: bool) -> Outcome {
    if optlen == 0 {
        return yes_if(invert);
    }
    let Some(op) = l4.get(20..20 + optlen) else { return Outcome::HotDrop };
    let mut i = 0usize;
    while i < optlen {
        let Some(&kind) = op.get(i) else { break };
        if kind == option {
            return yes_if(!invert);
        }
        if kind < 2 || i == optlen - 1 {
            i += 1;
        } else {
            let len = op.get(i + 1).copied().unwrap_or(0);
            i += if len == 0 { 1 } else { usize::from(len) };
        }
    }
    yes_if(invert)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::compile::tests::{build, filter_policies, VecOutput};
    use super::super::compiled::{CTarget, RulesetHeader, StateInit};
    use super::super::super::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
    use super::super::state::{AtomicLimit, AtomicNth};
    use super::super::rule::{
        addrtype, AddrRange, AddrTypeMatch, IcmpMatch, IpRangeMatch, Ipv4Net, LengthMatch, LogSpec,
        MarkMatch, Match, MultiportMatch, PortRange, RuleSpec, StatisticMatch, TableId, Target,
        TcpFlags, TcpMatch, TtlMatch, UdpMatch, MAX_MULTIPORT,
    };
    use super::*;
    use std::vec::Vec;

    // ---- packets -------------------------------------------------------------------------

    const A: [u8; 4] = [10, 0, 1, 2];
    const B: [u8; 4] = [10, 0, 2, 2];

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, ttl: u8, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let mut p = std::vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = ttl;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        let c = super::super::super::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..].copy_from_slice(l4);
        p
    }

    fn tcp_hdr(sport: u16, dport: u16, flags: u8, options: &[u8]) -> Vec<u8> {
        let mut h = std::vec![0u8; 20 + options.len()];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[12] = (((20 + options.len()) / 4) as u8) << 4;
        h[13] = flags;
        h[20..].copy_from_slice(options);
        h
    }

    fn udp_hdr(sport: u16, dport: u16) -> Vec<u8> {
        let mut h = std::vec![0u8; 8];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h
    }

    fn tcp_pkt(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        ipv4(A, B, IPPROTO_TCP, 0x4000, 64, &tcp_hdr(sport, dport, flags, &[]))
    }

    fn udp_pkt(sport: u16, dport: u16) -> Vec<u8> {
        ipv4(A, B, IPPROTO_UDP, 0x4000, 64, &udp_hdr(sport, dport))
    }

    fn icmp_pkt(ty: u8, code: u8) -> Vec<u8> {
        ipv4(A, B, IPPROTO_ICMP, 0, 64, &[ty, code, 0, 0, 0, 1, 0, 1])
    }

    fn info<'a>(bytes: &'a [u8], in_dev: &'a [u8], out_dev: &'a [u8]) -> PacketInfo<'a> {
        let p = PacketInfo::parse(bytes, in_dev, out_dev, Meta::plain(bytes.len() as u32)).unwrap();
        // The engine's own parser agrees on the parts it parses.
        if let Ok(full) = super::super::super::packet::Packet::parse(bytes) {
            assert_eq!(full.ip, p.ip);
        }
        p
    }

    // ---- environment ---------------------------------------------------------------------

    #[derive(Default)]
    struct TestEnv {
        counters: Vec<(u64, u64)>,
        randoms: Vec<u32>,
        hz: u32,
        now: u64,
        /// The kernel's state types, so the evaluation tests run its code.
        limits: Vec<Option<AtomicLimit>>,
        nth: Vec<Option<AtomicNth>>,
        quotas: Vec<Option<super::super::state::AtomicQuota>>,
        /// (address, device, type bit)
        addr_types: Vec<(u32, AddrTypeDev, u16)>,
        addr_calls: Vec<(u32, AddrTypeDev)>,
        logs: Vec<Vec<u8>>,
        marks: Vec<u32>,
        /// (old, new) per TTL target run.
        ttls: Vec<(u8, u8)>,
        /// The TTL target cannot make the header writable.
        ttl_readonly: bool,
        /// (old, new) per TOS byte rewrite.
        toses: Vec<(u8, u8)>,
        /// CLASSIFY priorities set.
        priorities: Vec<u32>,
        /// TCPMSS runs (each grows the packet by 4 bytes).
        mss: Vec<u16>,
        /// NFLOG runs: group and prefix.
        nflogs: Vec<(u16, Vec<u8>)>,
        /// The packet's socket.
        owner: SockOwner,
        /// Its supplementary groups.
        groups: Vec<u32>,
        /// The packet's connection.
        ct: Option<CtView>,
        /// `recent` lists by state slot.
        recent: std::collections::BTreeMap<u32, RecentMem>,
    }

    struct RecentMem {
        st: super::super::recent::ListState,
        slots: Vec<super::super::recent::Slot>,
        stamps: Vec<u64>,
        heads: Vec<u32>,
    }

    impl TestEnv {
        fn new(rs: &Ruleset<'_>) -> Self {
            let n = rs.header.state_count as usize;
            let mut e = TestEnv {
                counters: std::vec![(0, 0); rs.header.counter_count as usize],
                hz: 100,
                limits: (0..n).map(|_| None).collect(),
                nth: (0..n).map(|_| None).collect(),
                quotas: (0..n).map(|_| None).collect(),
                ..Default::default()
            };
            for (slot, init) in rs.state_slots() {
                match init {
                    StateInit::Limit(l) => {
                        e.limits[slot as usize] = Some(AtomicLimit::new(&l, e.hz, e.now))
                    }
                    StateInit::Nth { initial, .. } => {
                        e.nth[slot as usize] = Some(AtomicNth::new(initial))
                    }
                    StateInit::Quota(q) => {
                        e.quotas[slot as usize] = Some(super::super::state::AtomicQuota::new(q))
                    }
                    StateInit::Recent { .. } | StateInit::Connlimit => {}
                }
            }
            e
        }
    }

    impl Env for TestEnv {
        fn count(&mut self, counter: u32, bytes: u32) {
            let c = &mut self.counters[counter as usize];
            c.0 += 1;
            c.1 += u64::from(bytes);
        }
        fn random_u32(&mut self) -> u32 {
            self.randoms.remove(0)
        }
        fn limit_allow(&mut self, state: u32, _limit: &LimitMatch) -> bool {
            let now = self.now;
            self.limits[state as usize].as_ref().unwrap().allow(|| now)
        }
        fn nth_next(&mut self, state: u32, every: u32) -> u32 {
            self.nth[state as usize].as_ref().unwrap().next(every)
        }
        fn quota_take(&mut self, state: u32, len: u32) -> bool {
            self.quotas[state as usize].as_ref().unwrap().take(len)
        }
        fn addr_type(&mut self, addr: u32, dev: AddrTypeDev) -> u16 {
            self.addr_calls.push((addr, dev));
            self.addr_types
                .iter()
                .find(|(a, d, _)| *a == addr && *d == dev)
                .map_or(addrtype::UNICAST, |t| t.2)
        }
        fn nflog(&mut self, n: &CNflog, prefix: &[u8]) {
            self.nflogs.push((n.group, prefix.to_vec()));
        }
        fn log(&mut self, log: &CLog) {
            self.logs.push(log.prefix().to_vec());
        }
        fn set_mark(&mut self, mark: u32) {
            self.marks.push(mark);
        }
        fn set_ttl(&mut self, old: u8, new: u8) -> bool {
            self.ttls.push((old, new));
            !self.ttl_readonly
        }
        fn set_tos(&mut self, old: u8, new: u8) -> bool {
            self.toses.push((old, new));
            !self.ttl_readonly
        }
        fn set_priority(&mut self, priority: u32) {
            self.priorities.push(priority);
        }
        fn tcpmss(&mut self, mss: u16) -> Option<(u32, Option<u16>)> {
            self.mss.push(mss);
            (!self.ttl_readonly).then_some((4, Some(mss.min(536))))
        }
        fn sock_owner(&mut self) -> SockOwner {
            self.owner
        }
        fn owner_in_groups(&mut self, min: u32, max: u32) -> bool {
            self.groups.iter().any(|g| (min..=max).contains(g))
        }
        fn ct(&mut self) -> CtView {
            self.ct.unwrap_or(CtView::INVALID)
        }
        fn notrack(&mut self) {
            self.ct = Some(CtView::UNTRACKED);
        }
        fn ct_template(&mut self, _spec: &super::super::rule::CtSpec) {}
        fn recent(&mut self, state: u32, m: &RecentCheck, addr: u32, ttl: u8) -> Result<bool, ()> {
            use super::super::recent::{List, ListState, Slot, HASH_SIZE};
            // Every rule of these tests names the same list, as the glue finds it by name.
            let _ = state;
            let now = self.now;
            let mem = self.recent.entry(0).or_insert_with(|| RecentMem {
                st: ListState::new(u32::MAX, 32, 1),
                slots: std::vec![Slot::default(); 4],
                stamps: std::vec![0; 4 * 32],
                heads: std::vec![0; HASH_SIZE],
            });
            let fresh = mem.st.count == 0 && mem.heads[0] == 0;
            let mut l = List::new(&mut mem.st, &mut mem.slots, &mut mem.stamps, &mut mem.heads, fresh).unwrap();
            l.matches(&m.as_match(), addr, ttl, now, u64::from(self.hz))
        }
        fn connlimit(&mut self, _state: u32, key: u32) -> Option<u32> {
            Some(key)
        }
        fn set_ct_mark(&mut self, mark: u32) {
            if let Some(f) = self.ct.as_mut().and_then(|v| v.flow.as_mut()) {
                f.mark = mark;
            }
        }
    }

    fn flow_view(mark: u32) -> CtView {
        let t = crate::conntrack::Tuple { src: 1, dst: 2, sport: 3, dport: 4, proto: 17 };
        CtView {
            state: super::super::rule::ctstate::ESTABLISHED,
            flow: Some(crate::conntrack::FlowView {
                dir: crate::conntrack::Dir::Original,
                status: 0,
                orig: t,
                reply: t,
                expires_secs: 30,
                mark,
                counters: [(3, 300), (2, 1000)],
            }),
        }
    }

    #[test]
    fn recent_drops_the_fourth_new_connection() {
        use super::super::recent::{flag, RecentMatch};
        let rc = |check_set, seconds, hit_count| {
            Match::Recent(RecentMatch { name: "SSH", check_set, seconds, hit_count, ..Default::default() })
        };
        let (h, out) = filter(
            &[],
            &[
                ("INPUT", with(rule(Target::None), rc(flag::SET, 0, 0))),
                ("INPUT", with(rule(Target::Drop), rc(flag::UPDATE, 60, 4))),
                ("INPUT", rule(Target::Accept)),
            ],
        );
        assert_eq!(out.ruleset(h).state_slots().count(), 2);
        let mut env = TestEnv::new(&out.ruleset(h));
        let verdicts: Vec<_> = (0..5).map(|_| run(&h, &out, &mut env, &tcp_pkt(1000, 22, 0x02))).collect();
        assert_eq!(verdicts, [Verdict::Accept, Verdict::Accept, Verdict::Accept, Verdict::Drop, Verdict::Drop]);
    }

    #[test]
    fn connmark_save_restore_and_match() {
        use super::super::rule::{ConnmarkMode, ConnmarkTarget};
        let cm = |mode, ctmark, ctmask, nfmask| {
            rule(Target::Connmark(ConnmarkTarget { mode, ctmark, ctmask, nfmask, shift_right: false, shift_bits: 0 }))
        };
        let connmark = |value, mask, invert| Match::Connmark(MarkMatch { value, mask, invert });
        let (h, out) = filter(
            &[],
            &[
                // Packet mark 0x5 saved into the flow (low byte only), then restored under 0xf0.
                ("INPUT", rule(Target::Mark { value: 0x1205, mask: 0xffff_ffff })),
                ("INPUT", cm(ConnmarkMode::Save, 0, 0xff, 0xff)),
                ("INPUT", with(rule(Target::None), connmark(0x05, 0xff, false))),
                ("INPUT", with(rule(Target::None), connmark(0x05, 0xff, true))),
                ("INPUT", cm(ConnmarkMode::Set, 0x30, 0xf0, 0)),
                ("INPUT", cm(ConnmarkMode::Restore, 0, 0xf0, 0xf0)),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        env.ct = Some(flow_view(0x100));
        assert_eq!(run(&h, &out, &mut env, &udp_pkt(1, 2)), Verdict::Accept);
        // ct: (0x100 & !0xff) ^ (0x1205 & 0xff) = 0x105; then (0x105 & !0xf0) ^ 0x30 = 0x135.
        assert_eq!(env.ct.unwrap().flow.unwrap().mark, 0x135);
        // packet: (0x1205 & !0xf0) ^ (0x135 & 0xf0) = 0x1235.
        assert_eq!(env.marks, [0x1205, 0x1235]);
        assert_eq!(env.counters[2].0, 1, "connmark 0x5/0xff matches");
        assert_eq!(env.counters[3].0, 0, "! connmark 0x5/0xff does not");

        // Without a flow nothing changes and neither connmark rule matches.
        let mut env = TestEnv::new(&out.ruleset(h));
        env.ct = Some(CtView::UNTRACKED);
        run(&h, &out, &mut env, &udp_pkt(1, 2));
        assert_eq!(env.marks, [0x1205]);
        assert_eq!((env.counters[2].0, env.counters[3].0), (0, 0));
    }

    // ---- rulesets ------------------------------------------------------------------------

    fn rule(target: Target<'static>) -> RuleSpec<'static> {
        RuleSpec { target, ..Default::default() }
    }

    fn with(mut r: RuleSpec<'static>, m: Match<'static>) -> RuleSpec<'static> {
        r.push_match(m).unwrap();
        r
    }

    fn filter(
        user: &[&'static str],
        rules: &[(&'static str, RuleSpec<'static>)],
    ) -> (RulesetHeader, VecOutput) {
        build(TableId::Filter, &filter_policies(), user, rules).unwrap()
    }

    fn filter_drop(
        user: &[&'static str],
        rules: &[(&'static str, RuleSpec<'static>)],
    ) -> (RulesetHeader, VecOutput) {
        let p = [("INPUT", Policy::Drop), ("FORWARD", Policy::Drop), ("OUTPUT", Policy::Drop)];
        build(TableId::Filter, &p, user, rules).unwrap()
    }

    /// Runs one packet through INPUT (in device "eth0").
    fn run(h: &RulesetHeader, out: &VecOutput, env: &mut TestEnv, bytes: &[u8]) -> Verdict {
        let rs = out.ruleset(*h);
        evaluate(&rs, HookPoint::LocalIn, &info(bytes, b"eth0", b""), env)
    }

    /// True when a single INPUT rule with `r`'s conditions and `-j ACCEPT` accepts `bytes`
    /// (policy DROP); panics on a hotdrop-free mismatch of the verdict kinds.
    fn accepts(r: RuleSpec<'static>, bytes: &[u8]) -> bool {
        let (h, out) = filter_drop(&[], &[("INPUT", RuleSpec { target: Target::Accept, ..r })]);
        let mut env = TestEnv::new(&out.ruleset(h));
        env.randoms = std::vec![0; 4];
        run(&h, &out, &mut env, bytes) == Verdict::Accept
    }

    // ---- traversal -----------------------------------------------------------------------

    #[test]
    fn falls_off_builtin_chain_to_policy() {
        let (h, out) =
            filter_drop(&[], &[("INPUT", RuleSpec { proto: 17, ..rule(Target::Accept) })]);
        let mut env = TestEnv::new(&out.ruleset(h));
        let p = tcp_pkt(1, 2, 0);
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Drop);
        let policy = out.ruleset(h).policy_counter(HookPoint::LocalIn).unwrap() as usize;
        assert_eq!(env.counters[policy], (1, p.len() as u64));
        assert_eq!(env.counters[0], (0, 0));
        let u = udp_pkt(1, 2);
        assert_eq!(run(&h, &out, &mut env, &u), Verdict::Accept);
        assert_eq!(env.counters[0], (1, u.len() as u64));
        assert_eq!(env.counters[policy].0, 1);
        // A hook without a chain in this table accepts without counting.
        let rs = out.ruleset(h);
        assert_eq!(
            evaluate(&rs, HookPoint::PreRouting, &info(&u, b"", b""), &mut env),
            Verdict::Accept
        );
    }

    #[test]
    fn nonsense_headers_still_meet_the_rules() {
        // Policy DROP, one rule counting UDP. A raw socket can send a version-5 header, or any
        // IHL: ip_tables matches the fields it finds, so the policy drops them all and the
        // counters count them; nothing is accepted unseen.
        let (h, out) = filter_drop(&[], &[("INPUT", RuleSpec { proto: 17, ..rule(Target::None) })]);
        let policy = out.ruleset(h).policy_counter(HookPoint::LocalIn).unwrap() as usize;
        let mut env = TestEnv::new(&out.ruleset(h));
        let good = udp_pkt(1, 2);
        let mut v5 = good.clone();
        v5[0] = 0x55;
        let mut ihl4 = good.clone();
        ihl4[0] = 0x44;
        let mut ihl1 = good.clone();
        ihl1[0] = 0x41;
        let mut no_total = good.clone();
        no_total[2..4].copy_from_slice(&[0, 0]);
        for (n, p) in [&v5, &ihl4, &ihl1, &no_total].into_iter().enumerate() {
            assert_eq!(run(&h, &out, &mut env, p), Verdict::Drop, "packet {n}");
            assert_eq!(env.counters[0].0, n as u64 + 1, "rule counter after packet {n}");
            assert_eq!(env.counters[policy].0, n as u64 + 1, "policy counter after packet {n}");
        }
        // The transport header starts at IHL * 4, as ip_tables' `thoff`: with IHL 4 the
        // "ports" are the addresses' bytes.
        let pi = info(&ihl4, b"eth0", b"");
        assert_eq!(pi.l4.len(), ihl4.len() - 16);
        // Fewer than 20 bytes: no header to read, the glue drops the packet.
        assert!(PacketInfo::parse(&good[..19], b"", b"", Meta::plain(19)).is_err());
    }

    #[test]
    fn length_of_a_big_tcp_packet_comes_from_the_skb() {
        // A GSO packet over 64 KiB has total length 0; `-m length` sees skb_ip_totlen.
        let mut p = tcp_pkt(1, 2, 0);
        p[2..4].copy_from_slice(&[0, 0]);
        let meta = Meta { skb_len: 100_000, ip_len: 100_000, ..Meta::plain(0) };
        let pi = PacketInfo::parse(&p, b"", b"eth0", meta).unwrap();
        assert_eq!(pi.l4.len(), p.len() - 20, "the TCP header is read although tot_len is 0");
        let (h, out) = filter_drop(
            &[],
            &[("OUTPUT", with(RuleSpec { target: Target::Accept, ..RuleSpec::default() },
                Match::Length(LengthMatch { min: 0, max: 65535, invert: true })))],
        );
        let rs = out.ruleset(h);
        let mut env = TestEnv::new(&rs);
        assert_eq!(evaluate(&rs, HookPoint::LocalOut, &pi, &mut env), Verdict::Accept);
        assert_eq!(env.counters[0], (1, 100_000), "counted with the skb's length");
    }

    #[test]
    fn jump_return_and_counters() {
        // INPUT: 0 -j A ; 1 (no target) ; 2 -p udp -j ACCEPT ; A: 3 -p tcp -j RETURN ; 4 -j DROP
        let (h, out) = filter(
            &["A"],
            &[
                ("INPUT", rule(Target::Jump("A"))),
                ("INPUT", rule(Target::None)),
                ("INPUT", RuleSpec { proto: 17, ..rule(Target::Accept) }),
                ("A", RuleSpec { proto: 6, ..rule(Target::Return) }),
                ("A", rule(Target::Drop)),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        let t = tcp_pkt(1, 2, 0);
        // TCP: jump (counted), RETURN (counted), no-target rule (counted), udp rule no, policy.
        assert_eq!(run(&h, &out, &mut env, &t), Verdict::Accept);
        let c: Vec<u64> = env.counters.iter().map(|c| c.0).collect();
        assert_eq!(c, [1, 1, 0, 1, 0, 1, 0, 0]);
        // UDP: jump, then DROP in A.
        assert_eq!(run(&h, &out, &mut env, &udp_pkt(1, 2)), Verdict::Drop);
        let c: Vec<u64> = env.counters.iter().map(|c| c.0).collect();
        assert_eq!(c, [2, 1, 0, 1, 1, 1, 0, 0]);
    }

    #[test]
    fn falling_off_user_chain_returns() {
        let (h, out) = filter_drop(
            &["A"],
            &[
                ("INPUT", rule(Target::Jump("A"))),
                ("INPUT", rule(Target::Accept)),
                ("A", RuleSpec { proto: 17, ..rule(Target::Drop) }),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Accept);
        assert_eq!(env.counters[1].0, 1);
        // An empty user chain returns at once.
        let (h, out) = filter_drop(
            &["E"],
            &[("INPUT", rule(Target::Jump("E"))), ("INPUT", rule(Target::Accept))],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Accept);
    }

    /// A delta that (against its checks) loops: the walk gives up and drops the packet.
    #[test]
    fn a_looping_delta_drops_instead_of_spinning() {
        // INPUT: -j A ; A: -p udp -j DROP ; then a tail rule `A: -g A` appended by hand.
        let (h, out) = filter(&["A"], &[("INPUT", rule(Target::Jump("A"))), ("A", RuleSpec { proto: 17, ..rule(Target::Drop) })]);
        let rs = out.ruleset(h);
        let CTarget::Jump(a) = rs.rules[0].target else { panic!() };
        let mut looped = rs.rules[1];
        looped.target = CTarget::Goto(a);
        looped.proto = 0;
        looped.unconditional = true;
        let end = rs.chains[a as usize].first + rs.chains[a as usize].count;
        let mut tail_first = std::vec![u32::MAX; rs.chains.len()];
        tail_first[a as usize] = 0;
        let rules = [looped];
        let delta = super::super::compiled::Delta {
            dead: &[],
            tail_first: &tail_first,
            rules: &rules,
            anchors: &[end],
            order: &[0],
            matches: &[],
            hot: &[],
            policies: &[],
            stale_reach: false,
        };
        let rs = rs.with_delta(delta);
        let mut env = TestEnv::new(&rs);
        env.counters.push((0, 0));
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &info(&tcp_pkt(1, 2, 0), b"eth0", b""), &mut env), Verdict::Drop);
        // It went round once per chain (and once more), not more.
        let passes = env.counters.last().unwrap().0;
        assert!(passes > 1 && passes <= rs.chains.len() as u64 + 1, "the loop ran {passes} times");
        // UDP is dropped by A's first rule before the loop.
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &info(&udp_pkt(1, 2), b"eth0", b""), &mut env), Verdict::Drop);
    }

    /// A heavy loop-free walk with a delta is not taken for a loop: a chain called 32 times at
    /// each of four levels (a million rules looked at), and a goto chain through every chain.
    #[test]
    fn a_fanned_out_delta_walk_is_not_a_loop() {
        let mut rules: Vec<(&'static str, RuleSpec<'static>)> = std::vec![("INPUT", rule(Target::Jump("A")))];
        for (from, to) in [("A", "B"), ("B", "C"), ("C", "D")] {
            for _ in 0..32 {
                rules.push((from, rule(Target::Jump(to))));
            }
        }
        for _ in 0..32 {
            rules.push(("D", rule(Target::None)));
        }
        // Then INPUT -j G0; G0 -g G1 ... G8 -g G9; G9 returns; then ACCEPT.
        let names: Vec<&'static str> = (0..10).map(|i| std::format!("G{i}").leak() as &'static str).collect();
        rules.push(("INPUT", rule(Target::Jump(names[0]))));
        for w in names.windows(2) {
            rules.push((w[0], rule(Target::Goto(w[1]))));
        }
        rules.push(("INPUT", rule(Target::Accept)));
        let mut user = std::vec!["A", "B", "C", "D"];
        user.extend(names.iter().copied());
        let (h, out) = filter(&user, &rules);
        let rs = out.ruleset(h);
        let policies = std::vec![None; rs.chains.len()];
        let tail_first = std::vec![u32::MAX; rs.chains.len()];
        let delta = super::super::compiled::Delta {
            dead: &[],
            tail_first: &tail_first,
            rules: &[],
            anchors: &[],
            order: &[],
            matches: &[],
            hot: &[],
            policies: &policies,
            stale_reach: false,
        };
        let with = rs.with_delta(delta);
        assert!(!with.delta.is_empty(), "the delta walk");
        let mut env = TestEnv::new(&rs);
        let pkt = tcp_pkt(1, 2, 0);
        assert_eq!(evaluate(&with, HookPoint::LocalIn, &info(&pkt, b"eth0", b""), &mut env), Verdict::Accept);
        // D's 32 rules, each looked at 32^3 times.
        let d: u64 = rs.rules.iter().enumerate().filter(|(_, r)| r.target == CTarget::None).map(|(i, _)| env.counters[i].0).sum();
        assert_eq!(d, 32 * 32 * 32 * 32);
    }

    #[test]
    fn goto_does_not_come_back() {
        // INPUT: -g B ; -j ACCEPT (never reached) ; B: empty => INPUT's policy (DROP).
        let (h, out) = filter_drop(
            &["B"],
            &[("INPUT", rule(Target::Goto("B"))), ("INPUT", rule(Target::Accept))],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Drop);
        assert_eq!(env.counters[0].0, 1);
        assert_eq!(env.counters[1].0, 0);
        assert_eq!(env.counters[2].0, 1); // INPUT policy

        // INPUT: -j A ; -p tcp -j ACCEPT ; A: -g B ; B: -j RETURN => back after "-j A".
        let (h, out) = filter_drop(
            &["A", "B"],
            &[
                ("INPUT", rule(Target::Jump("A"))),
                ("INPUT", RuleSpec { proto: 6, ..rule(Target::Accept) }),
                ("A", rule(Target::Goto("B"))),
                ("A", rule(Target::Drop)),
                ("B", rule(Target::Return)),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Accept);
        let c: Vec<u64> = env.counters.iter().map(|c| c.0).collect();
        assert_eq!(c, [1, 1, 1, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn return_in_builtin_chain_applies_policy() {
        let (h, out) =
            filter(&[], &[("INPUT", rule(Target::Return)), ("INPUT", rule(Target::Drop))]);
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Accept);
        let c: Vec<u64> = env.counters.iter().map(|c| c.0).collect();
        assert_eq!(c, [1, 0, 1, 0, 0]);
    }

    #[test]
    fn deep_jumps_work_and_overflow_drops() {
        let names: Vec<&'static str> = (0..MAX_JUMP_DEPTH)
            .map(|i| &*std::boxed::Box::leak(std::format!("D{i}").into_boxed_str()))
            .collect();
        let mut rules =
            std::vec![("INPUT", rule(Target::Jump(names[0]))), ("INPUT", rule(Target::Drop))];
        for i in 0..names.len() - 1 {
            rules.push((names[i], rule(Target::Jump(names[i + 1]))));
        }
        rules.push((names[names.len() - 1], rule(Target::None)));
        let (h, out) = filter(&names, &rules);
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Drop);
        assert!(env.counters.iter().take(rules.len()).all(|c| c.0 == 1));

        // A loop nobody reaches compiles; wiring it in by hand makes the stack overflow,
        // which drops (and does not hang or panic).
        let (h, mut out) = filter(
            &["L1", "L2"],
            &[
                ("INPUT", rule(Target::Accept)),
                ("L1", rule(Target::Jump("L2"))),
                ("L2", rule(Target::Jump("L1"))),
            ],
        );
        out.rules[0].target = CTarget::Jump(3);
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &tcp_pkt(1, 2, 0)), Verdict::Drop);
    }

    #[test]
    fn log_mark_and_reject() {
        let (h, out) = filter(
            &[],
            &[
                ("INPUT", rule(Target::Log(LogSpec { level: 4, flags: 0, prefix: "in: " }))),
                (
                    "INPUT",
                    with(
                        rule(Target::Accept),
                        Match::Mark(MarkMatch { value: 5, mask: 0xff, invert: false }),
                    ),
                ),
                ("INPUT", rule(Target::Mark { value: 0x5, mask: 0xff })),
                (
                    "INPUT",
                    with(
                        rule(Target::Reject(RejectWith::HostProhibited)),
                        Match::Mark(MarkMatch { value: 0x105, mask: 0xffff, invert: false }),
                    ),
                ),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        let rs = out.ruleset(h);
        let p = tcp_pkt(1, 2, 0);
        let mut pi = info(&p, b"eth0", b"");
        pi.mark = 0x1ff;
        assert_eq!(
            evaluate(&rs, HookPoint::LocalIn, &pi, &mut env),
            Verdict::Reject(RejectWith::HostProhibited)
        );
        assert_eq!(env.logs, [b"in: ".to_vec()]);
        assert_eq!(env.marks, [0x105]);
        // With mark 5 the second rule accepts before MARK runs.
        pi.mark = 5;
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), Verdict::Accept);
        assert_eq!(env.marks.len(), 1);
    }

    // ---- ip_packet_match -----------------------------------------------------------------

    #[test]
    fn addresses_and_masks() {
        let p = tcp_pkt(1, 2, 0);
        let net = |a: u32, prefix: u8| Ipv4Net::with_prefix(a, prefix).unwrap();
        assert!(accepts(RuleSpec { src: net(0x0a00_0000, 8), ..Default::default() }, &p));
        assert!(!accepts(RuleSpec { src: net(0x0a00_0200, 24), ..Default::default() }, &p));
        assert!(accepts(
            RuleSpec { src: net(0x0a00_0200, 24), src_invert: true, ..Default::default() },
            &p
        ));
        assert!(accepts(RuleSpec { dst: net(0x0a00_0202, 32), ..Default::default() }, &p));
        assert!(!accepts(
            RuleSpec { dst: net(0x0a00_0202, 32), dst_invert: true, ..Default::default() },
            &p
        ));
        // Non-contiguous mask.
        assert!(accepts(
            RuleSpec {
                src: Ipv4Net { addr: 0x0a00_0002, mask: 0xff00_00ff },
                ..Default::default()
            },
            &p
        ));
        // `! -s 0/0` never matches.
        assert!(!accepts(RuleSpec { src_invert: true, ..Default::default() }, &p));
    }

    #[test]
    fn interfaces() {
        let p = tcp_pkt(1, 2, 0);
        let i = |s: &str| Iface::parse(s).unwrap();
        assert!(accepts(RuleSpec { in_iface: i("eth0"), ..Default::default() }, &p));
        assert!(!accepts(RuleSpec { in_iface: i("eth"), ..Default::default() }, &p));
        assert!(accepts(RuleSpec { in_iface: i("eth+"), ..Default::default() }, &p));
        assert!(!accepts(
            RuleSpec { in_iface: i("eth+"), in_invert: true, ..Default::default() },
            &p
        ));
        assert!(accepts(
            RuleSpec { in_iface: i("veth+"), in_invert: true, ..Default::default() },
            &p
        ));
        // No output device at INPUT: `-o x` does not match, `! -o x` does, `-o +` does.
        assert!(!accepts(RuleSpec { out_iface: i("eth1"), ..Default::default() }, &p));
        assert!(accepts(
            RuleSpec { out_iface: i("eth1"), out_invert: true, ..Default::default() },
            &p
        ));
        assert!(accepts(RuleSpec { out_iface: i("+"), ..Default::default() }, &p));
        // Names come NUL-padded from the kernel.
        assert_eq!(ifname(b"eth0\0\0\0\0\0\0\0\0\0\0\0\0"), b"eth0");
    }

    #[test]
    fn protocol() {
        let t = tcp_pkt(1, 2, 0);
        assert!(accepts(RuleSpec { proto: 6, ..Default::default() }, &t));
        assert!(!accepts(RuleSpec { proto: 17, ..Default::default() }, &t));
        assert!(accepts(RuleSpec { proto: 17, proto_invert: true, ..Default::default() }, &t));
        assert!(!accepts(RuleSpec { proto: 6, proto_invert: true, ..Default::default() }, &t));
        // Protocol 0 is "all", even inverted (the kernel skips the test).
        assert!(accepts(RuleSpec { proto: 0, proto_invert: true, ..Default::default() }, &t));
    }

    // ---- fragments and short packets ----------------------------------------------------

    fn tcp_port_rule(dport: u16) -> RuleSpec<'static> {
        with(
            RuleSpec { proto: 6, ..Default::default() },
            Match::Tcp(TcpMatch {
                dport: Some(PortMatch { range: PortRange { lo: dport, hi: dport }, invert: false }),
                ..Default::default()
            }),
        )
    }

    #[test]
    fn fragments() {
        let hdr = tcp_hdr(1, 80, 0, &[]);
        let first = ipv4(A, B, IPPROTO_TCP, 0x2000, 64, &hdr); // MF, offset 0
        let off1 = ipv4(A, B, IPPROTO_TCP, 0x2001, 64, &[0u8; 16]);
        let off2 = ipv4(A, B, IPPROTO_TCP, 0x0002, 64, &[0u8; 16]);
        let frag = |f| RuleSpec { fragment: Some(f), ..Default::default() };
        // -f: only second and later fragments.
        assert!(!accepts(frag(true), &first));
        assert!(accepts(frag(true), &off2));
        assert!(accepts(frag(false), &first));
        assert!(!accepts(frag(false), &off2));
        // tcp match on the first fragment: normal.
        assert!(accepts(tcp_port_rule(80), &first));
        // Offset 2: no match, the walk goes on (policy ACCEPT here).
        let (h, out) =
            filter(&[], &[("INPUT", RuleSpec { target: Target::Drop, ..tcp_port_rule(80) })]);
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &off2), Verdict::Accept);
        // Offset 1: hotdrop, even though the policy accepts; nothing is counted.
        assert_eq!(run(&h, &out, &mut env, &off1), Verdict::Drop);
        assert_eq!(env.counters[0].0, 0);
        // INPUT policy: the offset-2 packet only.
        assert_eq!(env.counters[1].0, 1);
        // udp/icmp/multiport on a later fragment: no match, no hotdrop, even at offset 1.
        let u = ipv4(A, B, IPPROTO_UDP, 0x0001, 64, &[0u8; 16]);
        let (h, out) = filter(
            &[],
            &[(
                "INPUT",
                with(RuleSpec { proto: 17, ..rule(Target::Drop) }, Match::Udp(UdpMatch::default())),
            )],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &u), Verdict::Accept);
    }

    #[test]
    fn short_transport_header_hotdrops_only_where_examined() {
        // A TCP packet whose header is cut at 12 bytes.
        let p = ipv4(A, B, IPPROTO_TCP, 0, 64, &tcp_hdr(1, 80, 0, &[])[..12]);
        let (h, out) = filter(
            &[],
            &[
                ("INPUT", RuleSpec { proto: 6, ..rule(Target::None) }),
                ("INPUT", RuleSpec { target: Target::Accept, ..tcp_port_rule(80) }),
            ],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Drop);
        assert_eq!(env.counters[0].0, 1); // the rule without a tcp match matched
        assert_eq!(env.counters[1].0, 0);
        // No policy either.
        assert_eq!(env.counters[2].0, 0);
        // A rule that does not get as far as the tcp match does not drop.
        let (h, out) = filter(
            &[],
            &[(
                "INPUT",
                RuleSpec {
                    src: Ipv4Net::with_prefix(0x0b00_0000, 8).unwrap(),
                    target: Target::Drop,
                    ..tcp_port_rule(80)
                },
            )],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Accept);
        // Short UDP and ICMP headers.
        let u = ipv4(A, B, IPPROTO_UDP, 0, 64, &[0, 1, 0]);
        assert!(!accepts(
            with(RuleSpec { proto: 17, ..Default::default() }, Match::Udp(UdpMatch::default())),
            &u
        ));
        let i = ipv4(A, B, IPPROTO_ICMP, 0, 64, &[8, 0, 0, 0]);
        let any = IcmpMatch { icmp_type: 0xff, code_min: 0, code_max: 0xff, invert: false };
        assert!(!accepts(with(RuleSpec { proto: 1, ..Default::default() }, Match::Icmp(any)), &i));
        assert!(accepts(RuleSpec { proto: 1, ..Default::default() }, &i));
    }

    // ---- matches -------------------------------------------------------------------------

    fn tcp(m: TcpMatch) -> RuleSpec<'static> {
        with(RuleSpec { proto: 6, ..Default::default() }, Match::Tcp(m))
    }

    fn ports(lo: u16, hi: u16, invert: bool) -> Option<PortMatch> {
        Some(PortMatch { range: PortRange { lo, hi }, invert })
    }

    #[test]
    fn tcp_ports_and_flags() {
        let syn = tcp_pkt(40000, 443, TCP_SYN);
        let ack = tcp_pkt(40000, 443, 0x10);
        assert!(accepts(
            tcp(TcpMatch { dport: ports(443, 443, false), ..Default::default() }),
            &syn
        ));
        assert!(!accepts(
            tcp(TcpMatch { dport: ports(443, 443, true), ..Default::default() }),
            &syn
        ));
        assert!(accepts(tcp(TcpMatch { dport: ports(1, 442, true), ..Default::default() }), &syn));
        assert!(accepts(
            tcp(TcpMatch { sport: ports(32768, 60999, false), ..Default::default() }),
            &syn
        ));
        assert!(!accepts(
            tcp(TcpMatch { sport: ports(1, 1023, false), ..Default::default() }),
            &syn
        ));
        let syn_flags = Some(TcpFlags { mask: 0x17, comp: TCP_SYN, invert: false });
        assert!(accepts(tcp(TcpMatch { flags: syn_flags, ..Default::default() }), &syn));
        assert!(!accepts(tcp(TcpMatch { flags: syn_flags, ..Default::default() }), &ack));
        let not_syn = Some(TcpFlags { mask: 0x17, comp: TCP_SYN, invert: true });
        assert!(accepts(tcp(TcpMatch { flags: not_syn, ..Default::default() }), &ack));
        assert!(!accepts(tcp(TcpMatch { flags: not_syn, ..Default::default() }), &syn));
        // Flags outside the mask (ECE/CWR) do not matter.
        let syn_ece = tcp_pkt(40000, 443, TCP_SYN | 0x40);
        assert!(accepts(tcp(TcpMatch { flags: syn_flags, ..Default::default() }), &syn_ece));
    }

    const TCP_SYN: u8 = 0x02;

    #[test]
    fn tcp_options() {
        // MSS, NOP, window scale, NOP, NOP, SACK-permitted... padded to 12 bytes.
        let opts = [2, 4, 5, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
        let p = ipv4(A, B, IPPROTO_TCP, 0, 64, &tcp_hdr(1, 2, TCP_SYN, &opts));
        let opt = |k, inv| tcp(TcpMatch { option: Some((k, inv)), ..Default::default() });
        assert!(accepts(opt(2, false), &p));
        assert!(accepts(opt(3, false), &p));
        assert!(accepts(opt(4, false), &p));
        assert!(!accepts(opt(8, false), &p));
        assert!(accepts(opt(8, true), &p));
        assert!(!accepts(opt(3, true), &p));
        // The value 5 inside the MSS option is skipped, not taken as a kind.
        assert!(!accepts(opt(5, false), &p));
        // No options at all: only the inverted test matches.
        let bare = tcp_pkt(1, 2, 0);
        assert!(!accepts(opt(2, false), &bare));
        assert!(accepts(opt(2, true), &bare));
        // Kind 0 means "no option test".
        assert!(accepts(opt(0, false), &bare));
        // Options announced by doff but cut off: hotdrop, even inverted.
        let mut cut = tcp_hdr(1, 2, 0, &opts);
        cut.truncate(24);
        let p = ipv4(A, B, IPPROTO_TCP, 0, 64, &cut);
        assert!(!accepts(opt(8, true), &p));
        // doff below 5: ports still match, but an option test hotdrops.
        let mut bad = tcp_hdr(1, 2, 0, &[]);
        bad[12] = 4 << 4;
        let p = ipv4(A, B, IPPROTO_TCP, 0, 64, &bad);
        assert!(accepts(tcp(TcpMatch { dport: ports(2, 2, false), ..Default::default() }), &p));
        assert!(!accepts(opt(8, true), &p));
        // A zero length byte advances by one and does not loop.
        let weird = [5, 0, 5, 0, 8, 2, 0, 0];
        let p = ipv4(A, B, IPPROTO_TCP, 0, 64, &tcp_hdr(1, 2, 0, &weird));
        assert!(accepts(opt(8, false), &p));
    }

    #[test]
    fn udp_ports() {
        let p = udp_pkt(5353, 53);
        let udp = |m: UdpMatch| with(RuleSpec { proto: 17, ..Default::default() }, Match::Udp(m));
        assert!(accepts(udp(UdpMatch { dport: ports(53, 53, false), ..Default::default() }), &p));
        assert!(!accepts(udp(UdpMatch { dport: ports(53, 53, true), ..Default::default() }), &p));
        assert!(accepts(
            udp(UdpMatch { sport: ports(5000, 6000, false), dport: ports(1, 52, true) }),
            &p
        ));
        assert!(!accepts(
            udp(UdpMatch { sport: ports(5000, 6000, false), dport: ports(54, 100, false) }),
            &p
        ));
    }

    #[test]
    fn icmp_types() {
        let echo = icmp_pkt(8, 0);
        let unreach = icmp_pkt(3, 3);
        let icmp = |t, lo, hi, inv| {
            with(
                RuleSpec { proto: 1, ..Default::default() },
                Match::Icmp(IcmpMatch { icmp_type: t, code_min: lo, code_max: hi, invert: inv }),
            )
        };
        assert!(accepts(icmp(8, 0, 0xff, false), &echo));
        assert!(!accepts(icmp(8, 0, 0xff, false), &unreach));
        assert!(accepts(icmp(8, 0, 0xff, true), &unreach));
        assert!(accepts(icmp(3, 3, 3, false), &unreach));
        assert!(!accepts(icmp(3, 0, 2, false), &unreach));
        assert!(accepts(icmp(0xff, 0, 0xff, false), &unreach));
        assert!(!accepts(icmp(0xff, 0, 0xff, true), &echo));
    }

    #[test]
    fn multiport() {
        let mut list = [PortRange::default(); MAX_MULTIPORT];
        list[0] = PortRange { lo: 22, hi: 22 };
        list[1] = PortRange { lo: 8000, hi: 8100 };
        let mp = |kind, invert| {
            with(
                RuleSpec { proto: 6, ..Default::default() },
                Match::Multiport(MultiportMatch { kind, ports: list, count: 2, invert }),
            )
        };
        let to22 = tcp_pkt(40000, 22, 0);
        let from8050 = tcp_pkt(8050, 1, 0);
        assert!(accepts(mp(MultiportKind::Destination, false), &to22));
        assert!(!accepts(mp(MultiportKind::Source, false), &to22));
        assert!(accepts(mp(MultiportKind::Source, true), &to22));
        assert!(accepts(mp(MultiportKind::Source, false), &from8050));
        assert!(accepts(mp(MultiportKind::Either, false), &from8050));
        assert!(accepts(mp(MultiportKind::Either, false), &to22));
        assert!(!accepts(mp(MultiportKind::Either, true), &to22));
        assert!(!accepts(mp(MultiportKind::Either, false), &tcp_pkt(1, 2, 0)));
        // Later fragment: no match, inverted or not.
        let frag = ipv4(A, B, IPPROTO_TCP, 0x0003, 64, &[0u8; 8]);
        assert!(!accepts(mp(MultiportKind::Either, true), &frag));
    }

    #[test]
    fn mark_match() {
        let (h, out) = filter_drop(
            &[],
            &[(
                "INPUT",
                with(
                    rule(Target::Accept),
                    Match::Mark(MarkMatch { value: 0x10, mask: 0xf0, invert: false }),
                ),
            )],
        );
        let rs = out.ruleset(h);
        let p = tcp_pkt(1, 2, 0);
        let mut env = TestEnv::new(&rs);
        let mut pi = info(&p, b"eth0", b"");
        for (mark, want) in [
            (0x10, Verdict::Accept),
            (0x1f, Verdict::Accept),
            (0x20, Verdict::Drop),
            (0, Verdict::Drop),
        ] {
            pi.mark = mark;
            assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), want, "mark {mark:#x}");
        }
        let (h, out) = filter_drop(
            &[],
            &[(
                "INPUT",
                with(
                    rule(Target::Accept),
                    Match::Mark(MarkMatch { value: 0x10, mask: 0xf0, invert: true }),
                ),
            )],
        );
        let rs = out.ruleset(h);
        pi.mark = 0x10;
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), Verdict::Drop);
        pi.mark = 0x20;
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), Verdict::Accept);
    }

    #[test]
    fn ttl_target_rewrites_and_later_matches_see_it() {
        use crate::rule::TtlMode;
        use std::string::ToString;
        let mangle = super::super::compile::tests::MANGLE_ACCEPT;
        let ttl = |mode, value| rule(Target::Ttl { mode, value });
        let (h, out) = build(
            TableId::Mangle,
            &mangle,
            &[],
            &[
                ("INPUT", ttl(TtlMode::Dec, 10)),
                ("INPUT", ttl(TtlMode::Inc, 3)),
                // Sees the rewritten TTL: 64 - 10 + 3.
                ("INPUT", with(rule(Target::Drop), Match::Ttl(TtlMatch { op: TtlOp::Eq, value: 57 }))),
                ("INPUT", ttl(TtlMode::Set, 200)),
            ],
        )
        .unwrap();
        let rs = out.ruleset(h);
        let p = tcp_pkt(1, 2, 0);
        let mut env = TestEnv::new(&rs);
        let pi = info(&p, b"eth0", b"");
        assert_eq!(pi.ip.ttl, 64);
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.ttls, [(64, 54), (54, 57)]);
        // Saturating, as xt_HL clamps to 0 and 255.
        assert_eq!(TtlMode::Dec.apply(3, 10), 0);
        assert_eq!(TtlMode::Inc.apply(250, 10), 255);
        assert_eq!(TtlMode::Set.apply(250, 0), 0);
        // A header that cannot be made writable drops the packet (NF_DROP), no policy.
        let (h, out) = build(TableId::Mangle, &mangle, &[], &[("INPUT", ttl(TtlMode::Set, 1))]).unwrap();
        let rs = out.ruleset(h);
        let mut env = TestEnv::new(&rs);
        env.ttl_readonly = true;
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.counters.iter().map(|c| c.0).sum::<u64>(), 1, "the rule only");
        // Only in mangle, and not with 0 to add or take.
        let e = build(TableId::Filter, &filter_policies(), &[], &[("INPUT", ttl(TtlMode::Set, 1))]);
        assert_eq!(
            e.unwrap_err().to_string(),
            "chain `INPUT' rule 1: TTL target: only valid in mangle table, not filter"
        );
        let e = build(TableId::Mangle, &mangle, &[], &[("INPUT", ttl(TtlMode::Dec, 0))]);
        assert_eq!(
            e.unwrap_err().to_string(),
            "chain `INPUT' rule 1: TTL target: increment/decrement not allowed with 0"
        );
    }

    /// One compiled match against a packet, with the TOS the walk has so far.
    fn one(m: CMatch, pi: &PacketInfo<'_>) -> Outcome {
        let live = Live { mark: pi.mark, ttl: pi.ip.ttl, tos: pi.ip.tos, skb_len: pi.skb_len, ip_len: pi.ip_len, mss: None };
        match_one(&m, pi, live, &mut TestEnv::default())
    }

    fn with_tos(mut p: Vec<u8>, tos: u8) -> Vec<u8> {
        p[1] = tos;
        p[10..12].fill(0);
        let c = super::super::super::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn tos_dscp_ecn_matches() {
        use crate::rule::{DscpMatch, EcnMatch, TosMatch};
        // DSCP EF (46) and ECT(0).
        let p = with_tos(tcp_pkt(1, 2, 0x40), 46 << 2 | 2);
        let pi = info(&p, b"eth0", b"");
        let tos = |value, mask, invert| CMatch::Tos(TosMatch { value, mask, invert });
        assert_eq!(one(tos(0xba, 0xff, false), &pi), Outcome::Yes);
        assert_eq!(one(tos(0x04, 0x04, false), &pi), Outcome::No);
        assert_eq!(one(tos(0x04, 0x04, true), &pi), Outcome::Yes);
        // `-m dscp` compiles to the TOS bits it compares.
        let dscp = |dscp, invert| with(rule(Target::Accept), Match::Dscp(DscpMatch { dscp, invert }));
        assert!(accepts(dscp(46, false), &p));
        assert!(!accepts(dscp(46, true), &p));
        assert!(accepts(dscp(0x2c, true), &p));
        assert!(!accepts(dscp(0, false), &p));
        let ecn = |operation, invert, ip_ect| CMatch::Ecn(EcnMatch { operation, invert, ip_ect });
        assert_eq!(one(ecn(EcnMatch::IP, 0, 2), &pi), Outcome::Yes);
        assert_eq!(one(ecn(EcnMatch::IP, EcnMatch::IP, 2), &pi), Outcome::No);
        assert_eq!(one(ecn(EcnMatch::IP, 0, 1), &pi), Outcome::No);
        assert_eq!(one(ecn(EcnMatch::ECE, 0, 0), &pi), Outcome::Yes);
        assert_eq!(one(ecn(EcnMatch::ECE, EcnMatch::ECE, 0), &pi), Outcome::No);
        assert_eq!(one(ecn(EcnMatch::CWR, 0, 0), &pi), Outcome::No);
        assert_eq!(one(ecn(EcnMatch::CWR | EcnMatch::IP, EcnMatch::CWR, 2), &pi), Outcome::Yes);
        // A fragment, or a TCP header cut short: no match, no drop (xt_ecn's match_tcp).
        let frag = with_tos(ipv4(A, B, IPPROTO_TCP, 3, 64, &tcp_hdr(1, 2, 0x40, &[])), 2);
        assert_eq!(one(ecn(EcnMatch::ECE, 0, 0), &info(&frag, b"", b"")), Outcome::No);
        let short = ipv4(A, B, IPPROTO_TCP, 0, 64, &[0; 12]);
        assert_eq!(one(ecn(EcnMatch::ECE, EcnMatch::ECE, 0), &info(&short, b"", b"")), Outcome::No);
        // The TCP bits need `-p tcp`.
        let e = filter_drop_err(with(rule(Target::Accept), Match::Ecn(EcnMatch { operation: EcnMatch::CWR, invert: 0, ip_ect: 0 })));
        assert_eq!(e, "chain `INPUT' rule 1: ecn match: only valid for protocol 6");
    }

    fn filter_drop_err(r: RuleSpec<'static>) -> std::string::String {
        use std::string::ToString;
        let p = [("INPUT", Policy::Drop), ("FORWARD", Policy::Drop), ("OUTPUT", Policy::Drop)];
        build(TableId::Filter, &p, &[], &[("INPUT", r)]).unwrap_err().to_string()
    }

    #[test]
    fn esp_ah_tcpmss_matches() {
        use crate::rule::{SpiMatch, TcpMssMatch};
        let spi = |min, max, invert| SpiMatch { min, max, invert };
        let esp = ipv4(A, B, 50, 0, 64, &[0, 0, 1, 0, 0, 0, 0, 7]);
        let ah = ipv4(A, B, 51, 0, 64, &[6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7]);
        let (e, a) = (info(&esp, b"", b""), info(&ah, b"", b""));
        assert_eq!(one(CMatch::Esp(spi(0x100, 0x100, false)), &e), Outcome::Yes);
        assert_eq!(one(CMatch::Esp(spi(0, 0xff, false)), &e), Outcome::No);
        assert_eq!(one(CMatch::Esp(spi(0, 0xff, true)), &e), Outcome::Yes);
        assert_eq!(one(CMatch::Ah(spi(0x100, u32::MAX, false)), &a), Outcome::Yes);
        assert_eq!(one(CMatch::Ah(spi(0x101, u32::MAX, false)), &a), Outcome::No);
        // A header cut short is a hotdrop; a later fragment does not match.
        assert_eq!(one(CMatch::Esp(spi(0, u32::MAX, false)), &info(&esp[..27], b"", b"")), Outcome::HotDrop);
        assert_eq!(one(CMatch::Ah(spi(0, u32::MAX, false)), &info(&ah[..31], b"", b"")), Outcome::HotDrop);
        let frag = ipv4(A, B, 50, 2, 64, &[0; 8]);
        assert_eq!(one(CMatch::Esp(spi(0, u32::MAX, false)), &info(&frag, b"", b"")), Outcome::No);
        // Both need their protocol.
        let r = with(rule(Target::Accept), Match::Esp(spi(0, 1, false)));
        assert_eq!(filter_drop_err(r), "chain `INPUT' rule 1: esp match: only valid for protocol 50");

        let mss = |min, max, invert| CMatch::TcpMss(TcpMssMatch { min, max, invert });
        // NOP, NOP, SACK-permitted, MSS 1460.
        let syn = ipv4(A, B, IPPROTO_TCP, 0, 64, &tcp_hdr(1, 2, 2, &[1, 1, 4, 2, 2, 4, 0x05, 0xb4]));
        let pi = info(&syn, b"", b"");
        assert_eq!(one(mss(1460, 1460, false), &pi), Outcome::Yes);
        assert_eq!(one(mss(1000, 1459, false), &pi), Outcome::No);
        assert_eq!(one(mss(1000, 1459, true), &pi), Outcome::Yes);
        // No MSS option: matches only inverted.
        let plain = tcp_pkt(1, 2, 2);
        assert_eq!(one(mss(0, 0xffff, false), &info(&plain, b"", b"")), Outcome::No);
        assert_eq!(one(mss(0, 0xffff, true), &info(&plain, b"", b"")), Outcome::Yes);
        // Options the header announces but the packet lacks, or a data offset under 5: hotdrop.
        assert_eq!(one(mss(0, 0xffff, false), &info(&syn[..44], b"", b"")), Outcome::HotDrop);
        let mut bad = plain.clone();
        bad[32] = 4 << 4;
        assert_eq!(one(mss(0, 0xffff, false), &info(&bad, b"", b"")), Outcome::HotDrop);
        // A zero-length option does not loop.
        let odd = ipv4(A, B, IPPROTO_TCP, 0, 64, &tcp_hdr(1, 2, 2, &[3, 0, 0, 0, 2, 4, 0, 9, 0, 0, 0, 0]));
        assert_eq!(one(mss(9, 9, false), &info(&odd, b"", b"")), Outcome::Yes);
    }

    #[test]
    fn pkttype_and_mac_matches() {
        use crate::rule::{MacMatch, PktTypeMatch};
        let p = tcp_pkt(1, 2, 0);
        let meta = |pkt_type, mac_src| Meta { pkt_type, mac_src, ..Meta::plain(p.len() as u32) };
        let pt = |pkt_type, invert| CMatch::PktType(PktTypeMatch { pkt_type, invert });
        let pi = |m| PacketInfo::parse(&p, b"eth0", b"", m).unwrap();
        assert_eq!(one(pt(PACKET_HOST, false), &pi(meta(PACKET_HOST, None))), Outcome::Yes);
        assert_eq!(one(pt(PACKET_BROADCAST, false), &pi(meta(PACKET_HOST, None))), Outcome::No);
        assert_eq!(one(pt(PACKET_BROADCAST, true), &pi(meta(PACKET_HOST, None))), Outcome::Yes);
        // A looped-back packet to a unicast address counts as broadcast; to 224/4, multicast.
        assert_eq!(one(pt(PACKET_BROADCAST, false), &pi(meta(PACKET_LOOPBACK, None))), Outcome::Yes);
        let mc = ipv4(A, [239, 1, 2, 3], IPPROTO_UDP, 0, 1, &udp_hdr(1, 2));
        let mcinfo = PacketInfo::parse(&mc, b"lo", b"", Meta { pkt_type: PACKET_LOOPBACK, ..Meta::plain(48) }).unwrap();
        assert_eq!(one(pt(PACKET_MULTICAST, false), &mcinfo), Outcome::Yes);

        let src = [0x42, 1, 2, 3, 4, 5];
        let mac = |invert| CMatch::Mac(MacMatch { src, invert });
        assert_eq!(one(mac(false), &pi(meta(0, Some(src)))), Outcome::Yes);
        assert_eq!(one(mac(true), &pi(meta(0, Some(src)))), Outcome::No);
        assert_eq!(one(mac(true), &pi(meta(0, Some([0x42, 1, 2, 3, 4, 6])))), Outcome::Yes);
        // No Ethernet header: no match, inverted or not.
        assert_eq!(one(mac(false), &pi(meta(0, None))), Outcome::No);
        assert_eq!(one(mac(true), &pi(meta(0, None))), Outcome::No);
        // Only where packets come in.
        let r = with(rule(Target::Accept), Match::Mac(MacMatch { src, invert: false }));
        let p = [("INPUT", Policy::Drop), ("FORWARD", Policy::Drop), ("OUTPUT", Policy::Drop)];
        let e = build(TableId::Filter, &p, &[], &[("OUTPUT", r)]).unwrap_err();
        assert_eq!(
            std::string::ToString::to_string(&e),
            "chain `OUTPUT' rule 1: mac match: used from hooks OUTPUT, but only valid from PREROUTING/INPUT/FORWARD"
        );
    }

    #[test]
    fn tcpmss_target_checks_and_later_rules_see_the_new_length() {
        use crate::rule::{LengthMatch, TcpFlags, TcpMatch};
        use super::super::tcpmss::CLAMP_PMTU;
        let syn = |t| {
            let m = TcpMatch { flags: Some(TcpFlags { mask: 0x17, comp: 0x02, invert: false }), ..Default::default() };
            with(RuleSpec { proto: IPPROTO_TCP, ..rule(t) }, Match::Tcp(m))
        };
        let p = [("INPUT", Policy::Accept), ("FORWARD", Policy::Accept), ("OUTPUT", Policy::Accept)];
        let (h, out) = build(
            TableId::Filter,
            &p,
            &[],
            &[
                ("FORWARD", syn(Target::TcpMss(1200))),
                ("FORWARD", with(rule(Target::None), Match::Length(LengthMatch { min: 44, max: 44, invert: false }))),
                // Sees the option the target added.
                ("FORWARD", with(RuleSpec { proto: IPPROTO_TCP, ..rule(Target::Drop) }, Match::TcpMss(crate::rule::TcpMssMatch { min: 536, max: 536, invert: false }))),
            ],
        )
        .unwrap();
        let rs = out.ruleset(h);
        let pkt = tcp_pkt(1, 2, 0x02);
        let mut env = TestEnv::new(&rs);
        assert_eq!(evaluate(&rs, HookPoint::Forward, &info(&pkt, b"a", b"b"), &mut env), Verdict::Drop);
        assert_eq!(env.mss, [1200]);
        assert_eq!(env.counters[1], (1, 44), "counted with the option added");
        assert_eq!(env.counters[2], (1, 44), "-m tcpmss sees the new option");
        // A header that cannot be made writable: dropped.
        let mut env = TestEnv::new(&rs);
        env.ttl_readonly = true;
        assert_eq!(evaluate(&rs, HookPoint::Forward, &info(&pkt, b"a", b"b"), &mut env), Verdict::Drop);
        assert_eq!(env.counters[1].0, 0);
        // The kernel's checks: -p tcp, a SYN match, clamping only where packets go out.
        let e = filter_drop_err(rule(Target::TcpMss(1)));
        assert_eq!(e, "chain `INPUT' rule 1: TCPMSS target: only valid for protocol 6");
        let e = filter_drop_err(RuleSpec { proto: IPPROTO_TCP, ..rule(Target::TcpMss(1)) });
        assert!(e.ends_with("TCPMSS target: only works on TCP SYN packets (needs `-p tcp --tcp-flags ... SYN' or `--syn')"), "{e}");
        let e = filter_drop_err(syn(Target::TcpMss(CLAMP_PMTU)));
        assert_eq!(
            e,
            "chain `INPUT' rule 1: TCPMSS --clamp-mss-to-pmtu target: used from hooks INPUT, but only usable from FORWARD/OUTPUT/POSTROUTING"
        );
    }

    #[test]
    fn nflog_keeps_its_prefix_after_the_matches() {
        use crate::rule::NflogSpec;
        let nflog = |prefix| rule(Target::Nflog(NflogSpec { group: 5, threshold: 0, len: 0, copy_len: false, prefix }));
        let long = "x".repeat(63).leak();
        let (h, out) = filter_drop(
            &[],
            &[
                ("INPUT", with(nflog("first "), Match::Ttl(TtlMatch { op: TtlOp::Eq, value: 64 }))),
                ("INPUT", nflog("")),
                ("INPUT", nflog(long)),
            ],
        );
        let rs = out.ruleset(h);
        let p = tcp_pkt(1, 2, 0);
        let mut env = TestEnv::new(&rs);
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &info(&p, b"eth0", b""), &mut env), Verdict::Drop);
        assert_eq!(env.nflogs, [(5, b"first ".to_vec()), (5, std::vec![]), (5, long.as_bytes().to_vec())]);
        let e = filter_drop_err(nflog("x".repeat(64).leak()));
        assert_eq!(e, "chain `INPUT' rule 1: NFLOG target: prefix is 64 bytes, at most 63 allowed");
    }

    #[test]
    fn nfqueue_ends_the_walk_with_its_queue() {
        use crate::rule::NfqueueSpec;
        let q = NfqueueSpec { num: 4, total: 2, flags: NfqueueSpec::BYPASS };
        let (h, out) = filter_drop(&[], &[("INPUT", rule(Target::Nfqueue(q))), ("INPUT", rule(Target::Accept))]);
        let rs = out.ruleset(h);
        let p = tcp_pkt(1, 2, 0);
        let mut env = TestEnv::new(&rs);
        assert_eq!(evaluate(&rs, HookPoint::LocalIn, &info(&p, b"eth0", b""), &mut env), Verdict::Queue(q));
        assert_eq!((env.counters[0].0, env.counters[1].0), (1, 0));
        for bad in [NfqueueSpec { num: 0, total: 0, flags: 0 }, NfqueueSpec { num: 65535, total: 2, flags: 0 }, NfqueueSpec { num: 0, total: 1, flags: 4 }] {
            assert_eq!(filter_drop_err(rule(Target::Nfqueue(bad))), "chain `INPUT' rule 1: NFQUEUE target: no queue, or queues past 65535");
        }
    }

    #[test]
    fn owner_match_follows_xt_owner() {
        use crate::rule::OwnerMatch as O;
        let m = |flags, invert, uid: (u32, u32), gid: (u32, u32)| O {
            flags,
            invert,
            uid_min: uid.0,
            uid_max: uid.1,
            gid_min: gid.0,
            gid_max: gid.1,
        };
        let file = |uid, gid| SockOwner::File { uid, gid };
        let mut env = TestEnv { groups: std::vec![27, 100], ..Default::default() };
        let mut t = |o: O, s: SockOwner| owner_matches(&o, s, &mut env);
        // No socket: only a test made entirely of inverted options matches.
        assert!(!t(m(O::UID, 0, (0, 0), (0, 0)), SockOwner::None));
        assert!(t(m(O::UID, O::UID, (0, 0), (0, 0)), SockOwner::None));
        assert!(t(m(O::SOCKET, O::SOCKET, (0, 0), (0, 0)), SockOwner::None));
        assert!(!t(m(O::SOCKET | O::UID, O::SOCKET, (0, 0), (0, 0)), SockOwner::None));
        // A socket: `! --socket-exists` fails, `--socket-exists` holds.
        assert!(!t(m(O::SOCKET, O::SOCKET, (0, 0), (0, 0)), file(0, 0)));
        assert!(t(m(O::SOCKET, 0, (0, 0), (0, 0)), SockOwner::NoFile));
        // No file: uid and gid tests hold only inverted.
        assert!(!t(m(O::UID, 0, (0, 0), (0, 0)), SockOwner::NoFile));
        assert!(t(m(O::UID | O::GID, O::UID | O::GID, (0, 0), (0, 0)), SockOwner::NoFile));
        // A file: ranges, inversion, supplementary groups.
        assert!(t(m(O::UID, 0, (1000, 1000), (0, 0)), file(1000, 5)));
        assert!(!t(m(O::UID, 0, (0, 999), (0, 0)), file(1000, 5)));
        assert!(t(m(O::UID, O::UID, (0, 999), (0, 0)), file(1000, 5)));
        assert!(!t(m(O::GID, 0, (20, 30), (20, 30)), file(1000, 5)));
        assert!(t(m(O::GID | O::SUPPL_GROUPS, 0, (0, 0), (20, 30)), file(1000, 5)));
        assert!(!t(m(O::GID | O::SUPPL_GROUPS, O::GID, (0, 0), (20, 30)), file(1000, 5)));
        assert!(t(m(O::UID | O::GID, 0, (1000, 1000), (5, 5)), file(1000, 5)));
        assert!(!t(m(O::UID | O::GID, 0, (1000, 1000), (6, 6)), file(1000, 5)));
        // Only where local packets go out.
        let r = with(rule(Target::Accept), Match::Owner(m(O::UID, 0, (0, 0), (0, 0))));
        assert_eq!(
            filter_drop_err(r),
            "chain `INPUT' rule 1: owner match: used from hooks INPUT, but only valid from OUTPUT/POSTROUTING"
        );
    }

    #[test]
    fn tos_dscp_classify_targets() {
        use crate::rule::{DscpMatch, TosMatch};
        use std::string::ToString;
        let mangle = super::super::compile::tests::MANGLE_ACCEPT;
        let (h, out) = build(
            TableId::Mangle,
            &mangle,
            &[],
            &[
                // ECT(0) stays; the codepoint becomes EF.
                ("FORWARD", rule(Target::Dscp(46))),
                // No change: no rewrite.
                ("FORWARD", rule(Target::Dscp(46))),
                ("FORWARD", with(rule(Target::None), Match::Dscp(DscpMatch { dscp: 46, invert: false }))),
                // --and-tos 0xf0: (tos & !0x0f) ^ 0.
                ("FORWARD", rule(Target::Tos { value: 0, mask: 0x0f })),
                ("FORWARD", rule(Target::Classify(0x0001_0002))),
                ("FORWARD", with(rule(Target::Drop), Match::Tos(TosMatch { value: 0xb0, mask: 0xff, invert: false }))),
            ],
        )
        .unwrap();
        let rs = out.ruleset(h);
        let p = with_tos(tcp_pkt(1, 2, 0), 0x22);
        let mut env = TestEnv::new(&rs);
        let pi = info(&p, b"eth0", b"eth1");
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.toses, [(0x22, 0xba), (0xba, 0xb0)]);
        assert_eq!(env.priorities, [0x0001_0002]);
        assert_eq!(env.counters[2].0, 1, "the dscp match saw the rewritten byte");
        // A header that cannot be made writable drops the packet.
        let mut env = TestEnv::new(&rs);
        env.ttl_readonly = true;
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.counters.iter().map(|c| c.0).sum::<u64>(), 1, "the first rule only");
        // TOS and DSCP only in mangle; CLASSIFY only where packets go out.
        let e = filter_drop_err(rule(Target::Dscp(1)));
        assert_eq!(e, "chain `INPUT' rule 1: DSCP target: only valid in mangle table, not filter");
        let e = filter_drop_err(rule(Target::Tos { value: 0, mask: 0xfc }));
        assert_eq!(e, "chain `INPUT' rule 1: TOS target: only valid in mangle table, not filter");
        let e = filter_drop_err(rule(Target::Classify(1)));
        assert_eq!(e, "chain `INPUT' rule 1: CLASSIFY target: used from hooks INPUT, but only usable from FORWARD/OUTPUT/POSTROUTING");
        let e = build(TableId::Mangle, &mangle, &[], &[("OUTPUT", rule(Target::Classify(1)))]);
        assert!(e.is_ok(), "CLASSIFY in mangle OUTPUT");
        assert!(e.map(|_| ()).map_err(|e| e.to_string()).is_ok());
    }

    #[test]
    fn statistic_random() {
        let half = 0x4000_0000; // probability 0.5
        let r = |invert| {
            with(
                rule(Target::Accept),
                Match::Statistic(StatisticMatch::Random { probability: half, invert }),
            )
        };
        let (h, out) = filter_drop(&[], &[("INPUT", r(false))]);
        let mut env = TestEnv::new(&out.ruleset(h));
        // The top bit is ignored: 0xbfff_ffff & 0x7fff_ffff = 0x3fff_ffff < p.
        env.randoms = std::vec![0x3fff_ffff, 0x4000_0000, 0xbfff_ffff, 0xffff_ffff];
        let p = tcp_pkt(1, 2, 0);
        let got: Vec<Verdict> = (0..4).map(|_| run(&h, &out, &mut env, &p)).collect();
        assert_eq!(got, [Verdict::Accept, Verdict::Drop, Verdict::Accept, Verdict::Drop]);
        let (h, out) = filter_drop(&[], &[("INPUT", r(true))]);
        let mut env = TestEnv::new(&out.ruleset(h));
        env.randoms = std::vec![0, 0x7fff_ffff];
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Drop);
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Accept);
        // Not consumed when an earlier condition fails.
        let (h, out) = filter_drop(&[], &[("INPUT", RuleSpec { proto: 17, ..r(false) })]);
        let mut env = TestEnv::new(&out.ruleset(h));
        assert_eq!(run(&h, &out, &mut env, &p), Verdict::Drop); // randoms empty: would panic
    }

    fn nth_seq(every: u32, packet: u32, invert: bool, n: usize) -> Vec<bool> {
        let (h, out) = filter_drop(
            &[],
            &[(
                "INPUT",
                with(
                    rule(Target::Accept),
                    Match::Statistic(StatisticMatch::Nth { every: every - 1, packet, invert }),
                ),
            )],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        let p = tcp_pkt(1, 2, 0);
        (0..n).map(|_| run(&h, &out, &mut env, &p) == Verdict::Accept).collect()
    }

    #[test]
    fn statistic_nth() {
        // --every 3 --packet 0: the 1st, 4th, 7th packet.
        assert_eq!(nth_seq(3, 0, false, 7), [true, false, false, true, false, false, true]);
        // --packet 1: the 2nd, 5th.
        assert_eq!(nth_seq(3, 1, false, 6), [false, true, false, false, true, false]);
        assert_eq!(nth_seq(3, 2, false, 6), [false, false, true, false, false, true]);
        assert_eq!(nth_seq(3, 0, true, 4), [false, true, true, false]);
        assert_eq!(nth_seq(1, 0, false, 3), [true, true, true]);
        assert_eq!(nth_step(2, 2), 0);
        assert_eq!(nth_step(0, 2), 1);
    }

    #[test]
    fn limit_token_bucket_by_hand() {
        // HZ=100: MAX_CPJ = 0xffffffff / 8640000 = 497 -> CREDITS_PER_JIFFY = 256.
        assert_eq!(credits_per_jiffy(100), 256);
        assert_eq!(credits_per_jiffy(250), 128);
        assert_eq!(credits_per_jiffy(300), 128);
        assert_eq!(credits_per_jiffy(1000), 32);
        // 3/second (avg 3333), burst 5:
        //   cap  = 16665 * 100 * 256 / 10000 = 42662
        //   cost =  3333 * 100 * 256 / 10000 =  8532
        let m = LimitMatch { avg: 3333, burst: 5 };
        let mut s = LimitState::new(&m, 100, 1000);
        assert_eq!((s.credit, s.credit_cap, s.cost), (42662, 42662, 8532));
        let at = |s: &mut LimitState, t| s.allow(t);
        for want in [34130, 25598, 17066, 8534, 2] {
            assert!(at(&mut s, 1000));
            assert_eq!(s.credit, want);
        }
        assert!(!at(&mut s, 1000)); // fast path
        assert!(!at(&mut s, 1033)); // 2 + 33*256 = 8450 < 8532
        assert_eq!(s.credit, 8450);
        assert!(at(&mut s, 1034)); // 8450 + 256 = 8706 -> 174
        assert_eq!(s.credit, 174);
        assert!(!at(&mut s, 1034));
        // A long pause refills only up to the cap.
        assert!(at(&mut s, 100_000));
        assert_eq!(s.credit, 42662 - 8532);
    }

    #[test]
    fn limit_wraparound_and_validity() {
        let m = LimitMatch { avg: 3333, burst: 5 };
        let mut w = LimitState::new(&m, 100, u64::MAX - 1);
        w.credit = 0;
        assert!(!w.allow(u64::MAX)); // 256
        assert!(w.allow(32)); // 33 jiffies after u64::MAX - 1 ... 256 + 33*256 = 8704
        assert_eq!(w.credit, 8704 - 8532);
        // The kernel's 32-bit overflow check.
        assert!(limit_valid(&m, 100));
        assert!(!limit_valid(&LimitMatch { avg: 3333, burst: 0 }, 100));
        assert!(!limit_valid(&LimitMatch { avg: 10000 * 86400, burst: 10 }, 1000));
        assert!(limit_valid(&LimitMatch { avg: 10000 * 86400, burst: 1 }, 1000));
        // user2credits divides first for large values.
        assert_eq!(user2credits(10000 * 86400, 1000), 86400 * 1000 * 32);
    }

    #[test]
    fn limit_through_env() {
        let (h, out) = filter_drop(
            &[],
            &[(
                "INPUT",
                with(rule(Target::Accept), Match::Limit(LimitMatch { avg: 10000, burst: 2 })),
            )],
        );
        let mut env = TestEnv::new(&out.ruleset(h));
        let p = tcp_pkt(1, 2, 0);
        let got: Vec<bool> =
            (0..3).map(|_| run(&h, &out, &mut env, &p) == Verdict::Accept).collect();
        assert_eq!(got, [true, true, false]);
        env.now = 100; // one second at HZ=100: one more token
        let got: Vec<bool> =
            (0..2).map(|_| run(&h, &out, &mut env, &p) == Verdict::Accept).collect();
        assert_eq!(got, [true, false]);
    }

    #[test]
    fn iprange_length_ttl() {
        let p = tcp_pkt(1, 2, 0); // 10.0.1.2 -> 10.0.2.2, 40 bytes, ttl 64
        let range = |lo, hi, invert| Some(AddrRange { lo, hi, invert });
        let ipr = |src, dst| with(RuleSpec::default(), Match::IpRange(IpRangeMatch { src, dst }));
        assert!(accepts(ipr(range(0x0a00_0100, 0x0a00_01ff, false), None), &p));
        assert!(accepts(ipr(range(0x0a00_0102, 0x0a00_0102, false), None), &p));
        assert!(!accepts(ipr(range(0x0a00_0103, 0x0a00_01ff, false), None), &p));
        assert!(accepts(ipr(range(0x0a00_0103, 0x0a00_01ff, true), None), &p));
        assert!(!accepts(ipr(None, range(0x0a00_0000, 0x0a00_02ff, true)), &p));
        assert!(accepts(
            ipr(range(0, 0xffff_ffff, false), range(0x0a00_0202, 0x0a00_0202, false)),
            &p
        ));

        let len = |min, max, invert| {
            with(RuleSpec::default(), Match::Length(LengthMatch { min, max, invert }))
        };
        assert!(accepts(len(40, 40, false), &p));
        assert!(accepts(len(0, 1500, false), &p));
        assert!(!accepts(len(41, 1500, false), &p));
        assert!(accepts(len(41, 1500, true), &p));

        let ttl = |op, value| with(RuleSpec::default(), Match::Ttl(TtlMatch { op, value }));
        assert!(accepts(ttl(TtlOp::Eq, 64), &p));
        assert!(!accepts(ttl(TtlOp::Eq, 63), &p));
        assert!(accepts(ttl(TtlOp::Ne, 63), &p));
        assert!(!accepts(ttl(TtlOp::Ne, 64), &p));
        assert!(accepts(ttl(TtlOp::Lt, 65), &p));
        assert!(!accepts(ttl(TtlOp::Lt, 64), &p));
        assert!(accepts(ttl(TtlOp::Gt, 63), &p));
        assert!(!accepts(ttl(TtlOp::Gt, 64), &p));
    }

    #[test]
    fn addrtype() {
        let at = |m: AddrTypeMatch| with(rule(Target::Accept), Match::AddrType(m));
        let dst_local = AddrTypeMatch { dst: addrtype::LOCAL, ..Default::default() };
        let rules = [("FORWARD", at(AddrTypeMatch { limit_iface_in: true, ..dst_local }))];
        let p = tcp_pkt(1, 2, 0);
        let b = u32::from_be_bytes(B);
        let a = u32::from_be_bytes(A);

        let (h, out) = filter_drop(&[], &rules);
        let rs = out.ruleset(h);
        let mut env = TestEnv::new(&rs);
        env.addr_types.push((b, AddrTypeDev::In, addrtype::LOCAL));
        let pi = info(&p, b"eth0", b"eth1");
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Accept);
        assert_eq!(env.addr_calls, [(b, AddrTypeDev::In)]);

        // Without limit: looked up with no device, where it is UNICAST here.
        let (h, out) = filter_drop(&[], &[("FORWARD", at(dst_local))]);
        let rs = out.ruleset(h);
        let mut env = TestEnv::new(&rs);
        env.addr_types.push((b, AddrTypeDev::In, addrtype::LOCAL));
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.addr_calls, [(b, AddrTypeDev::Any)]);

        // Inverted source; the destination is not looked up once the source failed.
        let m = AddrTypeMatch {
            src: addrtype::UNICAST,
            src_invert: true,
            dst: addrtype::LOCAL | addrtype::UNICAST,
            limit_iface_out: true,
            ..Default::default()
        };
        let (h, out) = filter_drop(&[], &[("FORWARD", at(m))]);
        let rs = out.ruleset(h);
        let mut env = TestEnv::new(&rs);
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Drop);
        assert_eq!(env.addr_calls, [(a, AddrTypeDev::Out)]);
        let mut env = TestEnv::new(&rs);
        env.addr_types.push((a, AddrTypeDev::Out, addrtype::BROADCAST));
        assert_eq!(evaluate(&rs, HookPoint::Forward, &pi, &mut env), Verdict::Accept);
        assert_eq!(env.addr_calls, [(a, AddrTypeDev::Out), (b, AddrTypeDev::Out)]);
    }

    /// Random packets through a ruleset using every match never panic.
    #[test]
    fn never_panics_on_random_packets() {
        let mut list = [PortRange::default(); MAX_MULTIPORT];
        list[0] = PortRange { lo: 1, hi: 1000 };
        let mut everything = RuleSpec { proto: 6, target: Target::Jump("A"), ..Default::default() };
        for m in [
            Match::Tcp(TcpMatch {
                option: Some((8, true)),
                flags: Some(TcpFlags { mask: 2, comp: 2, invert: true }),
                ..Default::default()
            }),
            Match::Multiport(MultiportMatch {
                kind: MultiportKind::Either,
                ports: list,
                count: 1,
                invert: true,
            }),
            Match::Mark(MarkMatch { value: 0, mask: 1, invert: false }),
            Match::IpRange(IpRangeMatch::default()),
            Match::Length(LengthMatch { min: 0, max: 65535, invert: false }),
            Match::AddrType(AddrTypeMatch {
                src: 0xfff,
                dst: 0xfff,
                src_invert: true,
                ..Default::default()
            }),
            Match::Ttl(TtlMatch { op: TtlOp::Ne, value: 0 }),
        ] {
            everything.push_match(m).unwrap();
        }
        let (h, out) = filter(
            &["A"],
            &[
                (
                    "INPUT",
                    with(
                        RuleSpec { proto: 17, ..rule(Target::None) },
                        Match::Udp(UdpMatch::default()),
                    ),
                ),
                (
                    "INPUT",
                    with(
                        RuleSpec { proto: 1, ..rule(Target::None) },
                        Match::Icmp(IcmpMatch {
                            icmp_type: 8,
                            code_min: 0,
                            code_max: 255,
                            invert: true,
                        }),
                    ),
                ),
                (
                    "INPUT",
                    RuleSpec {
                        fragment: Some(true),
                        ..rule(Target::Log(LogSpec { level: 4, flags: 0, prefix: "f" }))
                    },
                ),
                ("INPUT", everything),
                ("A", rule(Target::Mark { value: 1, mask: 1 })),
                ("A", rule(Target::Return)),
            ],
        );
        let rs = out.ruleset(h);
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut buf = [0u8; MAX_EVAL_LEN];
        let mut parsed = 0;
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            buf[0] = 0x45 + (buf[0] & 0x0a);
            buf[2] = 0;
            buf[3] = buf[3] % 100 + 20;
            buf[6] &= 0x20;
            buf[7] &= 0x03;
            buf[9] = [1, 6, 17, 47][usize::from(buf[9] & 3)];
            let len = (seed as usize) % buf.len();
            if let Ok(pi) = PacketInfo::parse(&buf[..len], b"eth0", b"", Meta::plain(len as u32)) {
                parsed += 1;
                let mut env = TestEnv::new(&rs);
                env.randoms = std::vec![0; 8];
                let _ = evaluate(&rs, HookPoint::LocalIn, &pi, &mut env);
            }
        }
        assert!(parsed > 1000);
    }
}
