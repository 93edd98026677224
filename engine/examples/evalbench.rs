// SPDX-License-Identifier: GPL-2.0

//! Host micro-benchmark of the rule engine (`make bench` runs it before the VM workloads):
//! nanoseconds per packet through the evaluator the module runs, at N rules, for the shapes
//! real rulesets have:
//! - a FORWARD blocklist: N x `-s X/32 -j DROP`, a packet that matches none (policy ACCEPT);
//! - a KUBE-SERVICES dispatch: N x `-d VIP/32 -p tcp -m comment -m tcp --dport 80 -j
//!   KUBE-SVC`, a packet to no VIP.
//!
//! Each shape runs three ways: the linear walk over the rules as compiled ("plain"), the
//! linear walk over the compact form ("compact": 20 bytes a rule tested first, what the module
//! does in chains without an index), and with the classifier (`rnf_engine::index`), whose cost
//! should not grow with N.
//!
//! Each figure is the best of 5 rounds (the least disturbed by the rest of the machine); the
//! marginal cost per rule is against N = 10.

use rnf_engine::compile::{compile, ChainDef};
use rnf_engine::compiled::{CChain, CLog, CMatch, CNflog, CRule, Output, RulesetHeader};
use rnf_engine::conntrack::CtView;
use rnf_engine::eval::{evaluate, AddrTypeDev, Env, Meta, PacketInfo, RecentCheck, SockOwner, Verdict};
use rnf_engine::hooks::HookPoint;
use rnf_engine::index::{self, BuildParams, CHot, IBucket, IChain, IShape, IndexOutput};
use rnf_engine::rule::{
    CtSpec, Ipv4Net, LimitMatch, Match, Policy, PortMatch, PortRange, RuleSpec, TableId, Target, TcpMatch,
};
use std::hint::black_box;
use std::time::Instant;

type VecOutput = Output<Vec<CChain>, Vec<CRule>, Vec<CMatch>>;
type IndexVec = IndexOutput<Vec<IChain>, Vec<IShape>, Vec<IBucket>, Vec<u32>, Vec<CHot>>;

/// The side effects: counters only (the rules of these shapes have no others).
struct BenchEnv {
    counters: Vec<(u64, u64)>,
}

impl Env for BenchEnv {
    fn count(&mut self, c: u32, bytes: u32) {
        if let Some(e) = self.counters.get_mut(c as usize) {
            e.0 += 1;
            e.1 += u64::from(bytes);
        }
    }
    fn random_u32(&mut self) -> u32 {
        4
    }
    fn limit_allow(&mut self, _: u32, _: &LimitMatch) -> bool {
        true
    }
    fn nth_next(&mut self, _: u32, _: u32) -> u32 {
        0
    }
    fn quota_take(&mut self, _: u32, _: u32) -> bool {
        true
    }
    fn addr_type(&mut self, _: u32, _: AddrTypeDev) -> u16 {
        2
    }
    fn log(&mut self, _: &CLog) {}
    fn nflog(&mut self, _: &CNflog, _: &[u8]) {}
    fn set_mark(&mut self, _: u32) {}
    fn set_ttl(&mut self, _: u8, _: u8) -> bool {
        true
    }
    fn set_tos(&mut self, _: u8, _: u8) -> bool {
        true
    }
    fn set_priority(&mut self, _: u32) {}
    fn tcpmss(&mut self, _: u16) -> Option<(u32, Option<u16>)> {
        Some((0, None))
    }
    fn sock_owner(&mut self) -> SockOwner {
        SockOwner::None
    }
    fn owner_in_groups(&mut self, _: u32, _: u32) -> bool {
        false
    }
    fn ct(&mut self) -> CtView {
        CtView::INVALID
    }
    fn notrack(&mut self) {}
    fn ct_template(&mut self, _: &CtSpec) {}
    fn recent(&mut self, _: u32, _: &RecentCheck, _: u32, _: u8) -> Result<bool, ()> {
        Ok(false)
    }
    fn connlimit(&mut self, _: u32, _: u32) -> Option<u32> {
        Some(0)
    }
    fn set_ct_mark(&mut self, _: u32) {}
}

/// An IPv4 TCP SYN from `src` to `dst`:`dport`.
fn packet(src: u32, dst: u32, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.to_be_bytes());
    p[16..20].copy_from_slice(&dst.to_be_bytes());
    p[20..22].copy_from_slice(&1000u16.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = 0x02;
    p
}

fn build(rules: Vec<(u32, RuleSpec<'static>)>, user: &[&'static str]) -> (RulesetHeader, VecOutput) {
    let mut defs = vec![
        ChainDef { name: "INPUT", policy: Some(Policy::Accept) },
        ChainDef { name: "FORWARD", policy: Some(Policy::Accept) },
        ChainDef { name: "OUTPUT", policy: Some(Policy::Accept) },
    ];
    defs.extend(user.iter().map(|u| ChainDef { name: u, policy: None }));
    let mut out = VecOutput::default();
    let rules = rules.into_iter().map(Ok::<_, core::convert::Infallible>);
    let h = compile(TableId::Filter, &defs, rules, 1000, &mut out).expect("the benchmark's ruleset compiles");
    (h, out)
}

/// Best of 5 rounds: nanoseconds per packet, and the last verdict.
/// How the ruleset is walked.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The rules as compiled, each read in full.
    Plain,
    /// The compact linear form (20 bytes a rule tested first), no chain indexed.
    Compact,
    /// The classifier.
    Indexed,
}

fn time_it(h: RulesetHeader, out: &VecOutput, pkts: &[Vec<u8>], n: usize, mode: Mode) -> (f64, Verdict) {
    let mut idx = IndexVec::default();
    let mut rs = out.ruleset(h);
    if mode != Mode::Plain {
        let min_rules = if mode == Mode::Compact { u32::MAX } else { BuildParams::default().min_rules };
        index::build(&rs, BuildParams { min_rules }, &mut idx).expect("memory for the index");
        rs = rs.with_index(idx.index());
    }
    let mut env = BenchEnv { counters: vec![(0, 0); h.counter_count as usize] };
    let infos: Vec<PacketInfo> = pkts
        .iter()
        .map(|p| PacketInfo::parse(p, b"eth0", b"eth1", Meta::plain(p.len() as u32)).expect("a valid packet"))
        .collect();
    let iters = (20_000_000 / n).max(200);
    let mut v = Verdict::Drop;
    for i in 0..iters / 10 + 1 {
        v = evaluate(black_box(&rs), HookPoint::Forward, black_box(&infos[i % infos.len()]), &mut env);
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..iters {
            v = evaluate(black_box(&rs), HookPoint::Forward, black_box(&infos[i % infos.len()]), &mut env);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    (best, v)
}

fn report(title: &str, mut shape: impl FnMut(usize) -> (RulesetHeader, VecOutput, Vec<Vec<u8>>)) {
    println!("\n{title}");
    println!(
        "{:>7} {:>12} {:>9} {:>14} {:>9} {:>15} {:>8}",
        "N", "plain ns/pkt", "ns/rule", "compact ns/pkt", "ns/rule", "indexed ns/pkt", "vs N=10"
    );
    let mut ibase = 0.0;
    for n in [10usize, 100, 1000, 10_000, 30_000] {
        let (h, out, pkts) = shape(n);
        let (ns, v) = time_it(h, &out, &pkts, n, Mode::Plain);
        assert_eq!(v, Verdict::Accept, "no rule may match the benchmark's packets");
        let (cns, cv) = time_it(h, &out, &pkts, n, Mode::Compact);
        let (ins, iv) = time_it(h, &out, &pkts, n, Mode::Indexed);
        assert!(cv == v && iv == v, "the compact form and the index must not change the verdict");
        if n == 10 {
            ibase = ins;
        }
        println!(
            "{n:>7} {ns:>12.1} {:>9.3} {cns:>14.1} {:>9.3} {ins:>15.1} {:>7.2}x",
            ns / n as f64,
            cns / n as f64,
            ins / ibase
        );
    }
}

fn main() {
    println!("rule engine on the host: the linear walk and the classifier (best of 5 rounds)");
    report("# blocklist: N x `-A FORWARD -s 10.x.y.z/32 -j DROP`, a packet that matches none", |n| {
        let rules = (0..n)
            .map(|i| {
                let src = Ipv4Net::with_prefix(0x0a00_0000 | i as u32, 32).expect("a /32");
                (1u32, RuleSpec { src, target: Target::Drop, ..Default::default() })
            })
            .collect();
        let (h, out) = build(rules, &[]);
        (h, out, (0..16).map(|k| packet(0xc0a8_0001 + k, 0x0b00_0001, 80)).collect())
    });
    report("# KUBE-SERVICES: N x `-d VIP/32 -p tcp -m comment -m tcp --dport 80 -j KUBE-SVC`, a packet to no VIP", |n| {
        let mut rules: Vec<_> = (0..n)
            .map(|i| {
                let dst = Ipv4Net::with_prefix(0x0a60_0000 | i as u32, 32).expect("a /32");
                let mut r = RuleSpec { dst, proto: 6, target: Target::Jump("KUBE-SVC"), ..Default::default() };
                r.push_match(Match::Comment("ns/svc:http cluster IP")).expect("room for a match");
                let dport = Some(PortMatch { range: PortRange { lo: 80, hi: 80 }, invert: false });
                r.push_match(Match::Tcp(TcpMatch { dport, ..Default::default() })).expect("room for a match");
                (1u32, r)
            })
            .collect();
        rules.push((3u32, RuleSpec { target: Target::Accept, ..Default::default() }));
        let (h, out) = build(rules, &["KUBE-SVC"]);
        (h, out, (0..16).map(|k| packet(0xc0a8_0001, 0x0a7f_0000 + k, 80)).collect())
    });
}
