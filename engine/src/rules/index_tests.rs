// SPDX-License-Identifier: GPL-2.0

//! The classifier's differential fuzzer: random rulesets (every match and target kind, jumps,
//! gotos, returns, side-effecting matches, rules of many shapes drawn from small value pools so
//! that packets do hit them) and random packets (whole, truncated, fragments), each evaluated
//! twice: by the linear walk (the ruleset without its index: the evaluator as it was before the
//! classifier) and with the index. Verdicts and the complete sequence of side effects (every
//! counter, random number, token, nth step, list lookup, log line, mark) must be identical.
//!
//! `RNF_INDEX_CASES` sets the number of packets (default 1,000,000: a few seconds, the
//! workspace builds the engine optimised for its tests); `RNF_INDEX_SEED` the first seed.

extern crate std;

use super::compile::tests::VecOutput;
use super::compile::{compile, ChainDef};
use super::compiled::{CLog, CNflog, CTarget, Ruleset};
use super::eval::{evaluate, AddrTypeDev, Env, Meta, PacketInfo, RecentCheck, SockOwner, Verdict};
use super::index::{self, BuildParams, CHot, IBucket, IChain, IShape, IndexOutput};
use super::recent::{flag, RecentMatch};
use super::connlimit::ConnlimitMatch;
use super::rule::*;
use super::super::conntrack::{CtView, Dir, FlowView, Tuple};
use super::super::hooks::HookPoint;
use super::super::testrng::Rng;
use std::vec::Vec;

type IndexVec = IndexOutput<Vec<IChain>, Vec<IShape>, Vec<IBucket>, Vec<u32>, Vec<CHot>>;

/// Every side effect, in order. Reads (`ct`, `addr_type`: `nf_ct_get`, `inet_addr_type`)
/// are no side effects: they answer the same whenever they are asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Count(u32, u32),
    Random(u32),
    Limit(u32, bool),
    Nth(u32, u32),
    Log(u8),
    SetMark(u32),
    SetTtl(u8, u8),
    SetTos(u8, u8),
    SetPriority(u32),
    TcpMss(u16),
    Nflog(u16, Vec<u8>),
    Owner(u32),
    Quota(u32, bool),
    Groups(u32, u32),
    Notrack,
    Template,
    Recent(u32, u32, bool),
    Connlimit(u32, u32),
    SetCtMark(u32),
}

/// A deterministic environment that records what the walk asked of it.
struct RecEnv {
    rng: Rng,
    log: Vec<Ev>,
    ct: CtView,
    nth: Vec<u32>,
    quota: std::collections::BTreeMap<u32, u64>,
}

impl RecEnv {
    fn new(seed: u64, ct: CtView) -> Self {
        Self { rng: Rng(seed.max(1)), log: Vec::new(), ct, nth: std::vec![0; 4096], quota: Default::default() }
    }
}

impl Env for RecEnv {
    fn count(&mut self, c: u32, bytes: u32) {
        self.log.push(Ev::Count(c, bytes));
    }
    fn random_u32(&mut self) -> u32 {
        let r = (self.rng.next() >> 16) as u32;
        self.log.push(Ev::Random(r));
        r
    }
    fn limit_allow(&mut self, state: u32, _: &LimitMatch) -> bool {
        let ok = (self.rng.next() >> 16) as u32 & 1 == 0;
        self.log.push(Ev::Limit(state, ok));
        ok
    }
    fn quota_take(&mut self, state: u32, len: u32) -> bool {
        let q = self.quota.entry(state).or_insert(300);
        let took = match q.checked_sub(u64::from(len)) {
            Some(n) => {
                *q = n;
                true
            }
            None => {
                *q = 0;
                false
            }
        };
        self.log.push(Ev::Quota(state, took));
        took
    }
    fn nth_next(&mut self, state: u32, every: u32) -> u32 {
        let v = match self.nth.get_mut(state as usize) {
            Some(n) => {
                *n = super::eval::nth_step(*n, every);
                *n
            }
            None => 1,
        };
        self.log.push(Ev::Nth(state, v));
        v
    }
    fn addr_type(&mut self, addr: u32, _: AddrTypeDev) -> u16 {
        if addr & 1 == 0 { addrtype::LOCAL } else { addrtype::UNICAST }
    }
    fn nflog(&mut self, n: &CNflog, prefix: &[u8]) {
        self.log.push(Ev::Nflog(n.group, prefix.to_vec()));
    }
    fn log(&mut self, l: &CLog) {
        self.log.push(Ev::Log(l.level));
    }
    fn set_mark(&mut self, m: u32) {
        self.log.push(Ev::SetMark(m));
    }
    fn set_ttl(&mut self, o: u8, n: u8) -> bool {
        self.log.push(Ev::SetTtl(o, n));
        true
    }
    fn set_tos(&mut self, o: u8, n: u8) -> bool {
        self.log.push(Ev::SetTos(o, n));
        true
    }
    fn set_priority(&mut self, p: u32) {
        self.log.push(Ev::SetPriority(p));
    }
    fn tcpmss(&mut self, mss: u16) -> Option<(u32, Option<u16>)> {
        self.log.push(Ev::TcpMss(mss));
        Some((4, Some(mss)))
    }
    fn sock_owner(&mut self) -> SockOwner {
        let r = (self.rng.next() >> 16) as u32;
        self.log.push(Ev::Owner(r % 4));
        match r % 4 {
            0 => SockOwner::None,
            1 => SockOwner::NoFile,
            n => SockOwner::File { uid: n * 500, gid: 1000 },
        }
    }
    fn owner_in_groups(&mut self, min: u32, max: u32) -> bool {
        self.log.push(Ev::Groups(min, max));
        min <= 27 && 27 <= max
    }
    fn ct(&mut self) -> CtView {
        self.ct
    }
    fn notrack(&mut self) {
        self.log.push(Ev::Notrack);
    }
    fn ct_template(&mut self, _: &CtSpec) {
        self.log.push(Ev::Template);
    }
    fn recent(&mut self, state: u32, _: &RecentCheck, addr: u32, _: u8) -> Result<bool, ()> {
        let r = (self.rng.next() >> 16) as u32;
        self.log.push(Ev::Recent(state, addr, r & 1 == 0));
        if r % 97 == 0 { Err(()) } else { Ok(r & 1 == 0) }
    }
    fn connlimit(&mut self, state: u32, key: u32) -> Option<u32> {
        self.log.push(Ev::Connlimit(state, key));
        Some(key % 4)
    }
    fn set_ct_mark(&mut self, m: u32) {
        self.log.push(Ev::SetCtMark(m));
        if let Some(f) = self.ct.flow.as_mut() {
            f.mark = m;
        }
    }
}

const USER: [&str; 4] = ["u0", "u1", "u2", "u3"];
const IFACES: [&str; 4] = ["eth0", "eth1", "veth0", "veth+"];
const DEVS: [&[u8]; 4] = [b"eth0", b"eth1", b"veth0", b"veth12"];
const PORTS: [u16; 6] = [22, 53, 80, 443, 1000, 8080];
const PROTOS: [u8; 6] = [6, 17, 1, 47, 132, 136];

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

/// An address from a small pool: 10.0.{0,1}.{0..7}.
fn addr(rng: &mut Rng) -> u32 {
    0x0a00_0000 | ((rng.below(2) as u32) << 8) | rng.below(8) as u32
}

fn net(rng: &mut Rng) -> Ipv4Net {
    let prefix = pick(rng, &[32u8, 32, 32, 31, 24, 16, 8, 0]);
    let mut n = Ipv4Net::with_prefix(addr(rng), prefix).unwrap_or(Ipv4Net::ANY);
    if rng.below(20) == 0 {
        // A mask that is no prefix (iptables takes `-s a/255.0.255.0`).
        n = Ipv4Net { addr: n.addr & 0xff00_ff07, mask: 0xff00_ff07 };
    }
    n.addr &= n.mask;
    n
}

fn port_match(rng: &mut Rng) -> Option<PortMatch> {
    match rng.below(6) {
        0 => None,
        1 => Some(PortMatch { range: PortRange { lo: 20, hi: 1000 }, invert: rng.below(2) == 0 }),
        2 => Some(PortMatch { range: PortRange { lo: pick(rng, &PORTS), hi: pick(rng, &PORTS) }.ordered(), invert: false }),
        3 => {
            let p = pick(rng, &PORTS);
            Some(PortMatch { range: PortRange { lo: p, hi: p }, invert: true })
        }
        _ => {
            let p = pick(rng, &PORTS);
            Some(PortMatch { range: PortRange { lo: p, hi: p }, invert: false })
        }
    }
}

trait Ordered {
    fn ordered(self) -> Self;
}
impl Ordered for PortRange {
    fn ordered(self) -> Self {
        PortRange { lo: self.lo.min(self.hi), hi: self.lo.max(self.hi) }
    }
}

fn random_match(rng: &mut Rng, proto: u8) -> Option<Match<'static>> {
    // (`-m mac` is left out: most random tables reach it from OUTPUT, which refuses it.)
    Some(match rng.below(22) {
        0 | 1 | 2 if proto == 6 => Match::Tcp(TcpMatch {
            sport: port_match(rng),
            dport: port_match(rng),
            flags: (rng.below(3) == 0).then(|| TcpFlags { mask: 0x12, comp: 0x02, invert: rng.below(2) == 0 }),
            option: (rng.below(4) == 0).then(|| (pick(rng, &[2u8, 4, 8]), rng.below(2) == 0)),
        }),
        0 | 1 | 2 if proto == 17 => Match::Udp(UdpMatch { sport: port_match(rng), dport: port_match(rng) }),
        0 | 1 if proto == 1 => Match::Icmp(IcmpMatch { icmp_type: pick(rng, &[0u8, 8, 3]), code_min: 0, code_max: 255, invert: rng.below(3) == 0 }),
        3 if matches!(proto, 6 | 17 | 132 | 136) => {
            let mut ports = [PortRange::default(); MAX_MULTIPORT];
            let count = 1 + rng.below(3) as u8;
            for p in ports.iter_mut().take(count as usize) {
                let v = pick(rng, &PORTS);
                *p = PortRange { lo: v, hi: v };
            }
            Match::Multiport(MultiportMatch { kind: pick(rng, &[MultiportKind::Source, MultiportKind::Destination, MultiportKind::Either]), ports, count, invert: rng.below(3) == 0 })
        }
        4 => Match::Mark(MarkMatch { value: rng.below(4) as u32, mask: 3, invert: rng.below(3) == 0 }),
        5 => Match::Statistic(StatisticMatch::Random { probability: 1 << 30, invert: rng.below(2) == 0 }),
        6 => Match::Statistic(StatisticMatch::Nth { every: 2, packet: rng.below(3) as u32, invert: rng.below(3) == 0 }),
        7 => Match::Limit(LimitMatch { avg: 3333, burst: 5 }),
        8 => Match::Recent(RecentMatch {
            name: pick(rng, &["a", "b"]),
            check_set: pick(rng, &[flag::CHECK, flag::SET, flag::UPDATE]),
            dest: rng.below(2) == 0,
            ..Default::default()
        }),
        9 => Match::Connlimit(ConnlimitMatch { limit: 2, prefix: 32, dest: rng.below(2) == 0, upto: rng.below(2) == 0 }),
        10 => Match::Connmark(MarkMatch { value: rng.below(3) as u32, mask: 3, invert: rng.below(3) == 0 }),
        11 => Match::State(StateMatch { states: pick(rng, &[ctstate::NEW, ctstate::ESTABLISHED, ctstate::INVALID | ctstate::NEW]) }),
        12 => Match::Length(LengthMatch { min: 0, max: pick(rng, &[40u16, 60, 1500]), invert: rng.below(3) == 0 }),
        13 => Match::Ttl(TtlMatch { op: pick(rng, &[TtlOp::Eq, TtlOp::Lt, TtlOp::Gt]), value: pick(rng, &[63u8, 64, 65]) }),
        14 => Match::IpRange(IpRangeMatch {
            src: Some(AddrRange { lo: 0x0a00_0000, hi: 0x0a00_0003, invert: rng.below(2) == 0 }),
            dst: None,
        }),
        15 => Match::AddrType(AddrTypeMatch { dst: addrtype::LOCAL, dst_invert: rng.below(2) == 0, ..Default::default() }),
        16 => Match::Tos(TosMatch { value: pick(rng, &[0u8, 0x10, 0xb8]), mask: pick(rng, &[0xffu8, 0x3f, 0x10]), invert: rng.below(3) == 0 }),
        17 => Match::Dscp(DscpMatch { dscp: pick(rng, &[0u8, 4, 46]), invert: rng.below(3) == 0 }),
        18 => {
            let ops: &[u8] = if proto == 6 { &[EcnMatch::IP, EcnMatch::ECE, EcnMatch::CWR | EcnMatch::IP] } else { &[EcnMatch::IP] };
            let operation = pick(rng, ops);
            Match::Ecn(EcnMatch { operation, invert: operation & pick(rng, &[0u8, EcnMatch::ECE, EcnMatch::IP]), ip_ect: rng.below(4) as u8 })
        }
        19 if proto == 6 => Match::TcpMss(TcpMssMatch { min: pick(rng, &[0u16, 1, 536]), max: pick(rng, &[0u16, 1460, 0xffff]).max(536), invert: rng.below(3) == 0 }),
        20 => Match::PktType(PktTypeMatch { pkt_type: pick(rng, &[0u8, 1, 2]), invert: rng.below(3) == 0 }),
        // (`-m owner` is left out for the same reason as `-m mac`: INPUT refuses it.)
        21 => Match::Quota(QuotaMatch { quota: 300, invert: rng.below(2) == 0 }),
        _ => return None,
    })
}

fn random_target(rng: &mut Rng, chain: usize, nuser: usize) -> Target<'static> {
    // Jumps only to later user chains (no loops); chain 0 is the builtin one.
    let later = |rng: &mut Rng| -> Option<&'static str> {
        let lo = chain; // user chain i is chain i + 1
        (lo < nuser).then(|| USER[lo + rng.below((nuser - lo) as u64) as usize])
    };
    match rng.below(20) {
        0..=4 => Target::None,
        5 | 6 => Target::Accept,
        7 | 8 => Target::Drop,
        9 => Target::Return,
        10..=12 => later(rng).map_or(Target::None, Target::Jump),
        13 => later(rng).map_or(Target::Drop, Target::Goto),
        14 => Target::Log(LogSpec { level: rng.below(8) as u8, flags: 0, prefix: "x" }),
        15 | 16 => Target::Mark { value: rng.below(4) as u32, mask: 3 },
        17 => Target::Connmark(ConnmarkTarget { mode: ConnmarkMode::Set, ctmark: rng.below(3) as u32, ctmask: 3, nfmask: 0, shift_right: false, shift_bits: 0 }),
        18 => Target::Reject(RejectWith::PortUnreachable),
        19 => Target::Nflog(NflogSpec { group: rng.below(3) as u16, threshold: 0, len: 0, copy_len: false, prefix: pick(rng, &["", "p", "prefix"]) }),
        _ => Target::Accept,
    }
}

/// A rule of a "family" (rules that only differ in values, as real long chains) or a random
/// one.
fn random_rule(rng: &mut Rng, chain: usize, nuser: usize, family: u64) -> RuleSpec<'static> {
    let mut r = RuleSpec::default();
    let shape = if rng.below(4) == 0 { rng.below(6) } else { family };
    match shape {
        0 => r.src = Ipv4Net::with_prefix(addr(rng), 32).unwrap_or(Ipv4Net::ANY),
        1 => {
            r.dst = Ipv4Net::with_prefix(addr(rng), 32).unwrap_or(Ipv4Net::ANY);
            r.proto = 6;
            let p = pick(rng, &PORTS);
            let _ = r.push_match(Match::Tcp(TcpMatch { dport: Some(PortMatch { range: PortRange { lo: p, hi: p }, invert: false }), ..Default::default() }));
        }
        2 => {
            r.src = net(rng);
            r.dst = net(rng);
        }
        3 => {
            r.in_iface = Iface::parse(pick(rng, &IFACES)).unwrap_or_default();
            r.in_invert = rng.below(6) == 0;
            r.proto = pick(rng, &PROTOS);
        }
        4 => {
            r.proto = 17;
            let p = pick(rng, &PORTS);
            let _ = r.push_match(Match::Udp(UdpMatch { sport: port_match(rng), dport: Some(PortMatch { range: PortRange { lo: p, hi: p }, invert: false }) }));
        }
        _ => {}
    }
    // Random extras on top: inversions, interfaces, protocols, more matches.
    if rng.below(6) == 0 {
        r.src = net(rng);
        r.src_invert = rng.below(2) == 0;
    }
    if rng.below(8) == 0 {
        r.dst = net(rng);
        r.dst_invert = rng.below(2) == 0;
    }
    if rng.below(8) == 0 {
        r.out_iface = Iface::parse(pick(rng, &IFACES)).unwrap_or_default();
        r.out_invert = rng.below(3) == 0;
    }
    if r.proto == 0 && rng.below(4) == 0 {
        r.proto = pick(rng, &PROTOS);
        r.proto_invert = rng.below(4) == 0;
    }
    if rng.below(12) == 0 {
        r.fragment = Some(rng.below(2) == 0);
    }
    let nm = rng.below(4);
    let proto = if r.proto_invert { 0 } else { r.proto };
    for _ in 0..nm {
        if let Some(m) = random_match(rng, proto) {
            // Side-effecting matches before the key matches too.
            if rng.below(3) == 0 {
                let mut all: Vec<Match<'static>> = r.matches().copied().collect();
                all.insert(0, m);
                r.matches = [None; MAX_MATCHES];
                for m in all {
                    let _ = r.push_match(m);
                }
            } else {
                let _ = r.push_match(m);
            }
        }
    }
    r.target = random_target(rng, chain, nuser);
    r
}

struct Case {
    out: VecOutput,
    header: super::compiled::RulesetHeader,
    idx: IndexVec,
}

fn random_ruleset(rng: &mut Rng) -> Option<Case> {
    let (defs, rules) = random_input(rng);
    let mut out = VecOutput::default();
    let header = compile(TableId::Filter, &defs, rules.into_iter().map(Ok::<_, core::convert::Infallible>), 1000, &mut out).ok()?;
    let mut idx = IndexVec::default();
    index::build(&out.ruleset(header), BuildParams { min_rules: 1 + rng.below(8) as u32 }, &mut idx).ok()?;
    Some(Case { out, header, idx })
}

/// A random filter table: its chains and `(chain, rule)` in chain order.
#[allow(clippy::type_complexity)]
fn random_input(rng: &mut Rng) -> (Vec<ChainDef<'static>>, Vec<(u32, RuleSpec<'static>)>) {
    let nuser = rng.below(5) as usize;
    let mut defs: Vec<ChainDef<'static>> = std::vec![
        ChainDef { name: "INPUT", policy: Some(Policy::Accept) },
        ChainDef { name: "FORWARD", policy: Some(if rng.below(2) == 0 { Policy::Accept } else { Policy::Drop }) },
        ChainDef { name: "OUTPUT", policy: Some(Policy::Accept) },
    ];
    for u in USER.iter().take(nuser) {
        defs.push(ChainDef { name: u, policy: None });
    }
    let mut rules: Vec<(u32, RuleSpec<'static>)> = Vec::new();
    for (ci, _) in defs.iter().enumerate() {
        // Chain position for the no-loop rule: builtins are 0, user chain i is i + 1.
        let chain = if ci < 3 { 0 } else { ci - 2 };
        let n = match rng.below(4) {
            0 => rng.below(6),
            1 => 8 + rng.below(40),
            _ => 20 + rng.below(120),
        };
        let family = rng.below(6);
        for _ in 0..n {
            rules.push((ci as u32, random_rule(rng, chain, nuser, family)));
        }
    }
    (defs, rules)
}

/// Ethernet source addresses of packets.
const MACS: [[u8; 6]; 2] = [[0x42, 0, 0, 0, 0, 1], [0x42, 0, 0, 0, 0, 2]];

fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let proto = pick(rng, &PROTOS);
    let ihl = if rng.below(10) == 0 { 6 } else { 5 };
    let l4len = match proto {
        6 => {
            let doff = pick(rng, &[5u8, 5, 6, 8]);
            usize::from(doff) * 4
        }
        _ => 8,
    };
    let mut p = std::vec![0u8; ihl * 4 + l4len];
    p[0] = 0x40 | ihl as u8;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    if rng.below(10) == 0 {
        let off = pick(rng, &[1u16, 2, 100]);
        p[6..8].copy_from_slice(&off.to_be_bytes());
    }
    p[8] = pick(rng, &[63u8, 64, 65]);
    p[1] = pick(rng, &[0u8, 0x10, 0xb8, 0xba, 0x13]);
    p[9] = proto;
    p[12..16].copy_from_slice(&addr(rng).to_be_bytes());
    p[16..20].copy_from_slice(&addr(rng).to_be_bytes());
    let l4 = ihl * 4;
    p[l4..l4 + 2].copy_from_slice(&pick(rng, &PORTS).to_be_bytes());
    p[l4 + 2..l4 + 4].copy_from_slice(&pick(rng, &PORTS).to_be_bytes());
    if proto == 6 {
        p[l4 + 12] = ((l4len / 4) as u8) << 4;
        p[l4 + 13] = pick(rng, &[0x02u8, 0x10, 0x12]);
        if l4len > 20 {
            p[l4 + 20] = pick(rng, &[2u8, 4, 1]);
            p[l4 + 21] = 4;
        }
    }
    if proto == 1 {
        p[l4] = pick(rng, &[0u8, 8, 3]);
    }
    if rng.below(12) == 0 {
        // Truncated: the transport header is cut short.
        let cut = l4 + rng.below(l4len as u64) as usize;
        p.truncate(cut);
    }
    p
}

fn ct_view(rng: &mut Rng) -> CtView {
    match rng.below(3) {
        0 => CtView::INVALID,
        _ => CtView {
            state: pick(rng, &[ctstate::NEW, ctstate::ESTABLISHED]),
            flow: Some(FlowView { dir: Dir::Original, status: 0, orig: Tuple::default(), reply: Tuple::default(), expires_secs: 10, mark: rng.below(3) as u32, counters: [(1, 60); 2] }),
        },
    }
}

/// A random packet at a random hook walked through `a` and through `b`, each with the same
/// environment: whether the packet has a classifier key, and each walk's verdict and side
/// effects. `None` when the packet does not parse.
#[allow(clippy::type_complexity)]
fn walk_both(rng: &mut Rng, a: &Ruleset<'_>, b: &Ruleset<'_>) -> Option<(bool, (Verdict, Vec<Ev>), (Verdict, Vec<Ev>))> {
    let bytes = random_packet(rng);
    let hook = pick(rng, &[HookPoint::LocalIn, HookPoint::Forward, HookPoint::LocalOut]);
    let (i, o) = match hook {
        HookPoint::LocalIn => (pick(rng, &DEVS), &b""[..]),
        HookPoint::LocalOut => (&b""[..], pick(rng, &DEVS)),
        _ => (pick(rng, &DEVS), pick(rng, &DEVS)),
    };
    let meta = Meta {
        mark: rng.below(4) as u32,
        pkt_type: pick(rng, &[0u8, 0, 1, 2, 5]),
        mac_src: pick(rng, &[None, Some(MACS[0]), Some(MACS[1])]),
        ..Meta::plain(bytes.len() as u32)
    };
    let pkt = PacketInfo::parse(&bytes, i, o, meta).ok()?;
    let ct = ct_view(rng);
    let seed = rng.next();
    let (mut ea, mut eb) = (RecEnv::new(seed, ct), RecEnv::new(seed, ct));
    let va = evaluate(a, hook, &pkt, &mut ea);
    let vb = evaluate(b, hook, &pkt, &mut eb);
    Some((index::PacketKey::new(&pkt).is_some(), (va, ea.log), (vb, eb.log)))
}

fn cases() -> u64 {
    let default = 1_000_000;
    std::env::var("RNF_INDEX_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `n` packets over random rulesets; returns (packets, mismatches, keyed packets).
fn run(seed: u64, n: u64, corrupt: bool) -> (u64, u64, u64) {
    run_with(seed, n, corrupt, &mut Coverage::default())
}

/// What the random rulesets exercised.
#[derive(Default, Debug)]
struct Coverage {
    /// Indexed chains.
    indexed: u64,
    /// Indexed chains with rules past [`index::MAX_SHAPES`] shapes (filed without a key).
    full: u64,
    /// Buckets holding several different rules (keys sharing a bucket, or one key with rules
    /// that differ elsewhere).
    shared: u64,
}

fn run_with(seed: u64, n: u64, corrupt: bool, cov: &mut Coverage) -> (u64, u64, u64) {
    let mut rng = Rng(seed.max(1));
    let (mut done, mut bad, mut keyed) = (0u64, 0u64, 0u64);
    while done < n {
        let Some(mut case) = random_ruleset(&mut rng) else { continue };
        let idx = case.idx.index();
        for c in idx.chains.iter().filter(|c| c.indexed) {
            cov.indexed += 1;
            cov.full += u64::from(c.shape_count as usize == index::MAX_SHAPES);
        }
        for b in idx.buckets {
            let list = &idx.postings[b.start as usize..(b.start + b.len) as usize];
            let hots: Vec<_> = list.iter().map(|&p| (idx.hot[p as usize], case.out.rules[p as usize].in_iface)).collect();
            cov.shared += u64::from(hots.windows(2).any(|w| w[0] != w[1]));
        }
        if corrupt {
            // A planted bug: drop the last posting of every bucket.
            for b in case.idx.buckets.iter_mut() {
                b.len = b.len.saturating_sub(1);
            }
        }
        let linear = case.out.ruleset(case.header);
        let indexed: Ruleset<'_> = linear.with_index(case.idx.index());
        for _ in 0..500 {
            let Some((has_key, (va, la), (vb, lb))) = walk_both(&mut rng, &linear, &indexed) else { continue };
            keyed += u64::from(has_key);
            if va != vb || la != lb {
                if bad == 0 && !corrupt {
                    std::eprintln!("mismatch: {va:?} vs {vb:?}\n linear {la:?}\n indexed {lb:?}");
                }
                bad += 1;
            }
            done += 1;
        }
    }
    (done, bad, keyed)
}

#[test]
fn indexed_walk_equals_linear_walk() {
    let seed = std::env::var("RNF_INDEX_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x1d3a_5eed);
    let n = cases();
    let mut cov = Coverage::default();
    let (done, bad, keyed) = run_with(seed, n, false, &mut cov);
    std::eprintln!("{done} packets, {keyed} through the index, {bad} mismatches; {cov:?}");
    assert!(cov.indexed > 100 && cov.full > 0 && cov.shared > 0, "the random rulesets must exercise the index: {cov:?}");
    assert_eq!(bad, 0, "the indexed walk differs from the linear one (seed {seed})");
    assert!(keyed * 2 > done, "most packets must use the index: {keyed} of {done}");
}

#[test]
fn a_planted_index_bug_is_caught() {
    let (_, bad, _) = run(7, 20_000, true);
    assert!(bad > 100, "the fuzzer must see a broken index ({bad} mismatches)");
}

#[test]
fn the_index_is_used_for_long_chains_and_skips_rules() {
    // 1000 blocklist rules and a KUBE-SERVICES-like run: one or two shapes, every rule keyed.
    let mut rules: Vec<(u32, RuleSpec<'static>)> = Vec::new();
    for i in 0..1000u32 {
        let mut r = RuleSpec { target: Target::Drop, ..Default::default() };
        r.src = Ipv4Net::with_prefix(0x0b00_0000 + i, 32).unwrap();
        rules.push((1, r));
    }
    let defs = [
        ChainDef { name: "INPUT", policy: Some(Policy::Accept) },
        ChainDef { name: "FORWARD", policy: Some(Policy::Accept) },
        ChainDef { name: "OUTPUT", policy: Some(Policy::Accept) },
    ];
    let mut out = VecOutput::default();
    let h = compile(TableId::Filter, &defs, rules.into_iter().map(Ok::<_, core::convert::Infallible>), 1000, &mut out).unwrap();
    let mut idx = IndexVec::default();
    index::build(&out.ruleset(h), BuildParams::default(), &mut idx).unwrap();
    let st = idx.index().stats();
    assert_eq!((st.chains, st.shapes, st.keyed_rules, st.wild_rules), (1, 1, 1000, 0));
    let rs = out.ruleset(h).with_index(idx.index());
    let mut p = std::vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&(0x0b00_0000u32 + 777).to_be_bytes());
    let pkt = PacketInfo::parse(&p, b"eth0", b"eth1", Meta::plain(28)).unwrap();
    let key = index::PacketKey::new(&pkt).unwrap();
    let chain = rs.entry_chain(HookPoint::Forward).unwrap();
    let c = rs.chains[chain as usize];
    assert_eq!(rs.index.next(chain, c.first, c.first + c.count, &key), c.first + 777);
    let mut env = RecEnv::new(1, CtView::INVALID);
    assert_eq!(evaluate(&rs, HookPoint::Forward, &pkt, &mut env), Verdict::Drop);
    assert_eq!(env.log, [Ev::Count(c.first + 777, 28)]);
}

/// `defs`, and half the time a new user chain at a random place after the builtin ones:
/// (the chains, whether there is one, its index).
fn maybe_new_chain(rng: &mut Rng, defs: &[ChainDef<'static>]) -> (Vec<ChainDef<'static>>, bool, usize) {
    let mut defs2 = defs.to_vec();
    let at = 3 + rng.below(defs.len() as u64 - 2) as usize;
    let moved = rng.below(2) == 0;
    if moved {
        defs2.insert(at, ChainDef { name: "NEWCHAIN", policy: None });
    }
    (defs2, moved, at)
}

/// A rule a change keeps goes into the compiler in its compiled form (not decoded nor
/// translated again): the result must be exactly that of compiling its specification, also
/// when a new chain moves the chain indices its jumps resolve to and when other rules' state
/// slots come before its own.
#[test]
fn recompiling_kept_rules_from_their_compiled_form_changes_nothing() {
    use super::compile::RuleIn;
    let mut rng = Rng(0x7e_c0de);
    let (mut same, mut reused) = (0u32, 0u64);
    for _ in 0..3000 {
        let (defs, rules) = random_input(&mut rng);
        let mut before = VecOutput::default();
        let Ok(h0) = compile(TableId::Filter, &defs, rules.iter().copied().map(Ok::<_, ()>), 1000, &mut before) else { continue };
        // The next configuration: maybe a new user chain (every chain after it moves up one),
        // the same rules.
        let (defs2, moved, at) = maybe_new_chain(&mut rng, &defs);
        let renum = |c: u32| if moved && c as usize >= at { c + 1 } else { c };
        let specs: Vec<(u32, RuleIn<'static>)> = rules.iter().map(|&(c, r)| (renum(c), RuleIn::Spec(r))).collect();
        let name_of = |t: &CTarget| match *t {
            CTarget::Jump(c) | CTarget::Goto(c) => defs.get(c as usize).map(|d| d.name),
            _ => None,
        };
        let mixed: Vec<(u32, RuleIn<'_>)> = rules
            .iter()
            .zip(before.rules.iter())
            .map(|(&(c, r), cr)| {
                if rng.below(3) == 0 {
                    (renum(c), RuleIn::Spec(r))
                } else {
                    reused += 1;
                    let ms = before.ruleset(h0).rule_matches(cr);
                    (renum(c), RuleIn::Compiled { rule: *cr, matches: ms, target: name_of(&cr.target) })
                }
            })
            .collect();
        let mut want = VecOutput::default();
        let hw = compile(TableId::Filter, &defs2, specs.into_iter().map(Ok::<_, ()>), 1000, &mut want).expect("compiles again");
        let mut got = VecOutput::default();
        let hg = compile(TableId::Filter, &defs2, mixed.into_iter().map(Ok::<_, ()>), 1000, &mut got).expect("compiles from kept rules");
        assert_eq!(hg, hw);
        assert_eq!(got.chains, want.chains);
        assert_eq!(got.rules, want.rules);
        assert_eq!(got.matches, want.matches);
        same += 1;
    }
    assert!(same > 1000 && reused > 100_000, "{same} rulesets, {reused} rules reused");
}

/// A change re-indexes only the chains it touched: the index of every other chain is copied
/// from the version before (its positions moved) and the whole is exactly what building it
/// afresh gives.
#[test]
fn reusing_untouched_chains_indexes_gives_a_fresh_build() {
    let mut rng = Rng(0x1d_e4);
    let (mut checked, mut copied) = (0u32, 0u32);
    for _ in 0..3000 {
        let (defs, rules) = random_input(&mut rng);
        let params = BuildParams { min_rules: 1 + rng.below(8) as u32 };
        let mut before = VecOutput::default();
        let Ok(h0) = compile(TableId::Filter, &defs, rules.iter().copied().map(Ok::<_, ()>), 1000, &mut before) else { continue };
        let mut idx0 = IndexVec::default();
        index::build(&before.ruleset(h0), params, &mut idx0).unwrap();
        let old = before.ruleset(h0).with_index(idx0.index());
        // The change: one chain loses its last rule; maybe a new chain moves those after it.
        let k = rng.below(defs.len() as u64) as u32;
        let mut rules2 = rules.clone();
        if let Some(i) = rules2.iter().rposition(|&(c, _)| c == k) {
            rules2.remove(i);
        }
        let (defs2, moved, at) = maybe_new_chain(&mut rng, &defs);
        let renum = |c: u32| if moved && c as usize >= at { c + 1 } else { c };
        let rules2: Vec<(u32, RuleSpec<'static>)> = rules2.into_iter().map(|(c, r)| (renum(c), r)).collect();
        let mut after = VecOutput::default();
        let Ok(h1) = compile(TableId::Filter, &defs2, rules2.into_iter().map(Ok::<_, ()>), 1000, &mut after) else { continue };
        let rs = after.ruleset(h1);
        // Compiled chains are in the order of their definitions: new chain `c` was old chain
        // `c` (or `c - 1` after the new one); chain `k` changed.
        let same = |c: u32| {
            let o = if moved && c as usize > at { c - 1 } else if moved && c as usize == at { return None } else { c };
            (o != k).then_some(o)
        };
        let mut want = IndexVec::default();
        index::build(&rs, params, &mut want).unwrap();
        let mut got = IndexVec::default();
        index::build_reusing(&rs, params, Some(&old), same, &mut got).unwrap();
        assert_eq!(got.chains, want.chains);
        assert_eq!(got.shapes, want.shapes);
        assert_eq!(got.buckets, want.buckets);
        assert_eq!(got.postings, want.postings);
        assert_eq!(got.hot, want.hot);
        copied += want.chains.iter().enumerate().filter(|(c, x)| x.indexed && same(*c as u32).is_some()).count() as u32;
        checked += 1;
    }
    assert!(checked > 1000 && copied > 1000, "{checked} rulesets, {copied} chain indexes copied");
}

type DeltaVec = super::delta::DeltaOutput<Vec<u64>, Vec<u32>, Vec<super::compiled::CRule>, Vec<super::compiled::CMatch>, Vec<CHot>, Vec<Option<Policy>>>;

/// A rule of the table as the user sees it: where it is in the version with a delta (a
/// compiled position, or the compiled rules' count plus its place in the tail), and its
/// specification (to compile the table afresh).
#[derive(Clone, Copy)]
struct LRule {
    pos: u32,
    spec: RuleSpec<'static>,
}

/// A version with a delta (rules deleted, rules appended, policies set, over several changes,
/// each made by `delta::extend` from the one before) evaluates exactly as the same rules
/// compiled afresh: the same verdicts and the same side effects in the same order (counters and
/// match states mapped from one numbering to the other). Changes a delta cannot express are
/// refused with `Rebuild`, invalid ones as the compiler refuses them.
#[test]
fn a_delta_walks_as_the_same_rules_compiled_afresh() {
    use super::delta::{extend, Change, DeltaError};
    let mut rng = Rng(0xde17_a5ed);
    let (mut tables, mut made, mut rebuild, mut invalid, mut packets, mut appended, mut deleted, mut policies) = (0u32, 0u32, 0u32, 0u32, 0u64, 0u32, 0u32, 0u32);
    let (mut jumps, mut rewrites, mut inserted) = (0u32, 0u32, 0u32);
    // Unconditional rules tried (added), and unconditional verdicts tried (deleted).
    let (mut bare, mut bare_deleted) = (0u32, 0u32);
    while tables < 800 {
        let (defs, rules) = random_input(&mut rng);
        let params = BuildParams { min_rules: 1 + rng.below(8) as u32 };
        let mut base = VecOutput::default();
        let Ok(h0) = compile(TableId::Filter, &defs, rules.iter().copied().map(Ok::<_, ()>), 1000, &mut base) else { continue };
        let mut idx0 = IndexVec::default();
        index::build(&base.ruleset(h0), params, &mut idx0).unwrap();
        let compiled = base.rules.len() as u32;
        tables += 1;
        // The table as the user sees it, chain by chain.
        let mut model: Vec<Vec<LRule>> = std::vec![Vec::new(); defs.len()];
        for (i, &(c, spec)) in rules.iter().enumerate() {
            model[c as usize].push(LRule { pos: i as u32, spec });
        }
        let mut defs_now = defs.clone();
        let mut delta: Option<DeltaVec> = None;
        for _ in 0..1 + rng.below(6) {
            let mut next = model.clone();
            let mut next_defs = defs_now.clone();
            let mut tail = delta.as_ref().map_or(0, |d| d.rules.len() as u32);
            let mut changes: Vec<Change<'static>> = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let chain = rng.below(defs.len() as u64) as usize;
                match rng.below(7) {
                    0 | 1 | 6 => {
                        // Appended, or inserted before any rule; jumps to any user chain
                        // (loops included).
                        let family = rng.below(6);
                        let mut spec = random_rule(&mut rng, 0, defs.len() - 3, family);
                        if rng.below(5) == 0 {
                            // Unconditional: a verdict that ends its chain's walk, or a goto.
                            let nuser = defs.len() - 3;
                            spec = RuleSpec { target: random_target(&mut rng, 0, nuser), ..RuleSpec::default() };
                            if rng.below(3) == 0 && nuser > 0 {
                                spec.target = Target::Goto(USER[rng.below(nuser as u64) as usize]);
                            }
                            bare += 1;
                        }
                        let k = if rng.below(2) == 0 { next[chain].len() } else { rng.below(next[chain].len() as u64 + 1) as usize };
                        let before = next[chain].get(k).map(|r| r.pos);
                        let rule = std::boxed::Box::leak(std::boxed::Box::new(super::compile::RuleIn::Spec(spec)));
                        changes.push(Change::Add { chain: chain as u32, before, number: k as u32 + 1, rule });
                        next[chain].insert(k, LRule { pos: compiled + tail, spec });
                        tail += 1;
                    }
                    2 | 3 if !next[chain].is_empty() => {
                        // Often an unconditional verdict, when the chain has one.
                        let terminal = |r: &LRule| r.spec == (RuleSpec { target: r.spec.target, ..RuleSpec::default() }) && matches!(r.spec.target, Target::Accept | Target::Drop | Target::Return);
                        let k = match next[chain].iter().position(terminal) {
                            Some(k) if rng.below(2) == 0 => {
                                bare_deleted += 1;
                                k
                            }
                            _ => rng.below(next[chain].len() as u64) as usize,
                        };
                        changes.push(Change::Delete(next[chain][k].pos));
                        next[chain].remove(k);
                    }
                    4 if next[chain].len() <= 8 => {
                        // A chain rewritten (as a --noflush restore does): its rules deleted,
                        // last first, and new ones appended, jumps among them.
                        for r in next[chain].drain(..).rev() {
                            changes.push(Change::Delete(r.pos));
                        }
                        for _ in 0..1 + rng.below(3) {
                            let family = rng.below(6);
                            let spec = random_rule(&mut rng, 0, defs.len() - 3, family);
                            let number = next[chain].len() as u32 + 1;
                            changes.push(Change::Add { chain: chain as u32, before: None, number, rule: std::boxed::Box::leak(std::boxed::Box::new(super::compile::RuleIn::Spec(spec))) });
                            next[chain].push(LRule { pos: compiled + tail, spec });
                            tail += 1;
                        }
                        rewrites += 1;
                    }
                    _ if chain < 3 => {
                        let policy = if rng.below(2) == 0 { Policy::Accept } else { Policy::Drop };
                        changes.push(Change::Policy { chain: chain as u32, policy });
                        next_defs[chain].policy = Some(policy);
                    }
                    _ => {}
                }
            }
            let rs = match &delta {
                Some(d) => base.ruleset(h0).with_index(idx0.index()).with_delta(d.delta()),
                None => base.ruleset(h0).with_index(idx0.index()),
            };
            let mut out = DeltaVec::default();
            match extend(TableId::Filter, &defs, &rs, changes.iter().copied(), 1000, &mut out) {
                Ok(sum) => {
                    made += 1;
                    appended += changes.iter().filter(|c| matches!(c, Change::Add { .. })).count() as u32;
                    inserted += changes.iter().filter(|c| matches!(c, Change::Add { before: Some(_), .. })).count() as u32;
                    jumps += changes
                        .iter()
                        .filter(|c| matches!(c, Change::Add { rule: &super::compile::RuleIn::Spec(r), .. } if matches!(r.target, Target::Jump(_) | Target::Goto(_))))
                        .count() as u32;
                    deleted += changes.iter().filter(|c| matches!(c, Change::Delete(_))).count() as u32;
                    policies += changes.iter().filter(|c| matches!(c, Change::Policy { .. })).count() as u32;
                    assert_eq!(sum.appended, out.rules.len() as u32);
                    model = next;
                    defs_now = next_defs;
                    delta = Some(out);
                }
                Err(DeltaError::Rebuild) => rebuild += 1,
                Err(DeltaError::Invalid(e)) => {
                    invalid += 1;
                    // The compiler refuses the same table.
                    let flat: Vec<(u32, RuleSpec<'static>)> =
                        next.iter().enumerate().flat_map(|(c, l)| l.iter().map(move |r| (c as u32, r.spec))).collect();
                    let mut o = VecOutput::default();
                    let fresh = compile(TableId::Filter, &next_defs, flat.into_iter().map(Ok::<_, ()>), 1000, &mut o);
                    assert!(fresh.is_err(), "the delta refused a change the compiler takes: {e}");
                }
                Err(DeltaError::OutOfMemory) => unreachable!(),
            }
        }
        let Some(d) = &delta else { continue };
        // The same table compiled afresh.
        let flat: Vec<(u32, RuleSpec<'static>)> =
            model.iter().enumerate().flat_map(|(c, l)| l.iter().map(move |r| (c as u32, r.spec))).collect();
        let mut fresh = VecOutput::default();
        let hf = compile(TableId::Filter, &defs_now, flat.iter().copied().map(Ok::<_, ()>), 1000, &mut fresh).expect("the changed table compiles");
        let mut idxf = IndexVec::default();
        index::build(&fresh.ruleset(hf), params, &mut idxf).unwrap();
        let want = fresh.ruleset(hf).with_index(idxf.index());
        let got = base.ruleset(h0).with_index(idx0.index()).with_delta(d.delta());
        // Counters and states: the delta's numbering to the fresh one's.
        let mut counter = std::collections::BTreeMap::new();
        let mut state = std::collections::BTreeMap::new();
        for (i, r) in model.iter().flatten().enumerate() {
            counter.insert(got.counter_of(r.pos), i as u32);
            let (gr, _) = got.rule_at(r.pos).unwrap();
            let fr = &want.rules[i];
            for (a, b) in got.rule_states(gr).zip(want.rule_states(fr)) {
                state.insert(a, b);
            }
        }
        for c in 0..3 {
            counter.insert(got.chains[c].policy_counter, want.chains[c].policy_counter);
        }
        let map = |e: &Ev| match *e {
            Ev::Count(c, b) => Ev::Count(counter[&c], b),
            Ev::Limit(s, ok) => Ev::Limit(state[&s], ok),
            Ev::Nth(s, v) => Ev::Nth(state[&s], v),
            Ev::Recent(s, a, ok) => Ev::Recent(state[&s], a, ok),
            Ev::Connlimit(s, k) => Ev::Connlimit(state[&s], k),
            Ev::Quota(s, ok) => Ev::Quota(state[&s], ok),
            ref other => other.clone(),
        };
        for _ in 0..200 {
            let Some((_, (va, la), (vb, lb))) = walk_both(&mut rng, &got, &want) else { continue };
            let mapped: Vec<Ev> = la.iter().map(map).collect();
            assert_eq!((va, &mapped), (vb, &lb), "a delta walks differently from the table compiled afresh");
            packets += 1;
        }
    }
    std::eprintln!("{tables} tables, {made} deltas ({appended} rules added, {inserted} of them inserted, {jumps} jumps, {deleted} deleted, {policies} policies; {rewrites} chain rewrites tried; {bare} unconditional rules added and {bare_deleted} unconditional verdicts deleted, tried), {rebuild} rebuilds, {invalid} refused, {packets} packets");
    assert!(bare > 200 && bare_deleted > 100);
    assert!(made > 1000 && appended > 500 && inserted > 200 && jumps > 50 && deleted > 500 && policies > 200 && rewrites > 100 && rebuild > 100 && packets > 100_000);
}
