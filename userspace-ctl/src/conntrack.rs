// SPDX-License-Identifier: GPL-2.0

//! `rnfctl conntrack` (or rnfctl called as `conntrack`): rust_nf's connection table in the
//! words of conntrack-tools. `-L` prints what `conntrack -L` prints for the kernel's table
//! (with per-flow accounting on, since rust_nf always counts), `-C` the count, `-F` empties
//! the table, `-S` the statistics.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use rnf_engine::conntrack::status;
use rnf_engine::conntrack::tcp::TcpState;
use rnf_engine::conntrack::wire::{self as ctwire, FlowRecord};
use rnf_engine::wire::AttrIter;

use crate::ctxml;
use crate::netlink;

pub(crate) const VERSION_LINE: &str = "conntrack v1.4.7 (conntrack-tools)";

/// What `-L` keeps: conntrack's filter options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    proto: Option<u8>,
    orig_src: Option<u32>,
    orig_dst: Option<u32>,
    reply_src: Option<u32>,
    reply_dst: Option<u32>,
    sport: Option<u16>,
    dport: Option<u16>,
    tcp_state: Option<u8>,
    status: Option<u16>,
    /// `--mark value[/mask]`.
    mark: Option<(u32, u32)>,
    /// `-w/--zone`, `--orig-zone`, `--reply-zone`: the zone ids of the original and the
    /// reply tuple.
    zone: [Option<u16>; 2],
    /// `-n/--src-nat [ip]`, `-g/--dst-nat [ip]`, `-j/--any-nat [ip]`: flows with that
    /// translation (to that address: the reply destination, the reply source, either).
    src_nat: Option<Option<u32>>,
    dst_nat: Option<Option<u32>>,
    any_nat: Option<Option<u32>>,
    /// `-o extended`: lines start with the layer 3 protocol, as conntrack prints them.
    extended: bool,
    /// `-o xml`: flows as XML ([`ctxml`]).
    xml: bool,
    /// `-o timestamp`: with `-o xml`, each event says when it was printed.
    timestamp: bool,
}

impl Filter {
    fn keeps(&self, f: &FlowRecord) -> bool {
        let eq = |want: Option<u32>, got: u32| want.is_none_or(|w| w == got);
        self.proto.is_none_or(|p| p == f.orig.proto)
            && eq(self.orig_src, f.orig.src)
            && eq(self.orig_dst, f.orig.dst)
            && eq(self.reply_src, f.reply.src)
            && eq(self.reply_dst, f.reply.dst)
            && self.sport.is_none_or(|p| f.orig.has_ports() && p == f.orig.sport)
            && self.dport.is_none_or(|p| f.orig.has_ports() && p == f.orig.dport)
            && self.tcp_state.is_none_or(|s| f.tcp_state == Some(s))
            && self.status.is_none_or(|s| f.status & s == s)
            && self.mark.is_none_or(|(v, m)| f.mark & m == v & m)
            && self.zone[0].is_none_or(|z| f.zone[0] == z)
            && self.zone[1].is_none_or(|z| f.zone[1] == z)
            && self.nat_keeps(f)
    }

    /// conntrack's NAT filters: the status bit, and the translated address when one is given
    /// (SNAT: the reply tuple's destination; DNAT: its source).
    fn nat_keeps(&self, f: &FlowRecord) -> bool {
        let snat = |a: Option<u32>| f.status & status::SRC_NAT != 0 && a.is_none_or(|a| f.reply.dst == a);
        let dnat = |a: Option<u32>| f.status & status::DST_NAT != 0 && a.is_none_or(|a| f.reply.src == a);
        self.src_nat.is_none_or(snat) && self.dst_nat.is_none_or(dnat) && self.any_nat.is_none_or(|a| snat(a) || dnat(a))
    }
}

/// The command conntrack was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `-L` with filters.
    List(Filter),
    /// `-D` with filters.
    Delete(Filter),
    /// `-E` with filters and the event mask.
    Events(Filter, u8),
    /// `-C`.
    Count,
    /// `-F`.
    Flush,
    /// `-S`.
    Stats,
}

fn proto_number(s: &str) -> Option<u8> {
    match s {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        _ => s.parse().ok(),
    }
}

/// The `-o` word `w` stands for: conntrack takes a word for the first of its own that starts
/// with it, case aside (so `x` is `xml`), and, as for `-u`, a start of `SRC_NAT` or `DST_NAT`
/// (which it ignores with a warning).
fn output_word(w: &str) -> Option<&'static str> {
    let words = ["SRC_NAT", "DST_NAT", "xml", "extended", "timestamp", "id", "ktimestamp", "labels", "userspace", "save"];
    let short_for = |k: &&str| !w.is_empty() && w.len() <= k.len() && k.as_bytes()[..w.len()].eq_ignore_ascii_case(w.as_bytes());
    words.into_iter().find(short_for)
}

/// Parses conntrack's command line (the subset rust_nf supports).
pub fn parse(args: &[String]) -> Result<Cmd, String> {
    let mut cmd = None;
    let mut f = Filter::default();
    let mut mask = ctwire::EV_NEW | ctwire::EV_UPDATE | ctwire::EV_DESTROY;
    let mut i = 0;
    let bad = |what: &str, v: &str| format!("{VERSION_LINE}: Bad {what} `{v}'");
    while let Some(a) = args.get(i) {
        let val = |i: usize| args.get(i + 1).cloned().ok_or_else(|| format!("{VERSION_LINE}: option `{a}' requires an argument"));
        let addr = |v: &str| v.parse::<Ipv4Addr>().map(u32::from).map_err(|_| bad("IP address", v));
        let port = |v: &str| v.parse::<u16>().map_err(|_| bad("port", v));
        let mut took = 1;
        match a.as_str() {
            "-L" | "--dump" => cmd = Some("L"),
            "-D" | "--delete" => cmd = Some("D"),
            "-E" | "--event" => cmd = Some("E"),
            "-e" | "--event-mask" => {
                let v = val(i)?;
                let mut m = 0;
                for w in v.split(',') {
                    m |= match w {
                        "NEW" => ctwire::EV_NEW,
                        "UPDATE" => ctwire::EV_UPDATE,
                        "DESTROY" => ctwire::EV_DESTROY,
                        "ALL" => ctwire::EV_NEW | ctwire::EV_UPDATE | ctwire::EV_DESTROY,
                        _ => return Err(bad("event", w)),
                    };
                }
                mask = m;
                took = 2;
            }
            "-C" | "--count" => cmd = Some("C"),
            "-F" | "--flush" => cmd = Some("F"),
            "-S" | "--stats" => cmd = Some("S"),
            "-p" | "--proto" => {
                let v = val(i)?;
                f.proto = Some(proto_number(&v).ok_or_else(|| bad("protocol", &v))?);
                took = 2;
            }
            "-s" | "--src" | "--orig-src" => {
                f.orig_src = Some(addr(&val(i)?)?);
                took = 2;
            }
            "-d" | "--dst" | "--orig-dst" => {
                f.orig_dst = Some(addr(&val(i)?)?);
                took = 2;
            }
            "-r" | "--reply-src" => {
                f.reply_src = Some(addr(&val(i)?)?);
                took = 2;
            }
            "-q" | "--reply-dst" => {
                f.reply_dst = Some(addr(&val(i)?)?);
                took = 2;
            }
            "--sport" | "--orig-port-src" => {
                f.sport = Some(port(&val(i)?)?);
                took = 2;
            }
            "--dport" | "--orig-port-dst" => {
                f.dport = Some(port(&val(i)?)?);
                took = 2;
            }
            "--state" => {
                let v = val(i)?;
                let s = (0..=9u8).find(|n| TcpState::from_u8(*n).is_some_and(|s| s.name() == v));
                f.tcp_state = Some(s.ok_or_else(|| bad("state", &v))?);
                took = 2;
            }
            "-o" | "--output" => {
                let v = val(i)?;
                let mut rest = v.as_str();
                loop {
                    let (w, next) = rest.split_once(',').map_or((rest, None), |(w, n)| (w, Some(n)));
                    match output_word(w) {
                        Some(k @ ("SRC_NAT" | "DST_NAT")) => {
                            eprintln!("WARNING: ignoring {k}, use --{}-nat instead", &k[..3].to_lowercase());
                        }
                        Some("xml") => f.xml = true,
                        Some("extended") => f.extended = true,
                        Some("timestamp") => f.timestamp = true,
                        Some("save") => return Err(format!("{VERSION_LINE}: -o save is not supported")),
                        // id, ktimestamp, labels, userspace: nothing rust_nf's flows show.
                        Some(_) => {}
                        None => return Err(format!("{VERSION_LINE}: Bad parameter `{rest}'")),
                    }
                    match next {
                        Some(n) => rest = n,
                        None => break,
                    }
                }
                took = 2;
            }
            "-m" | "--mark" => {
                let v = val(i)?;
                let num = |t: &str| {
                    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                        Some(h) => u32::from_str_radix(h, 16),
                        None => t.parse(),
                    };
                    r.map_err(|_| bad("mark", &v))
                };
                f.mark = Some(match v.split_once('/') {
                    Some((a, b)) => (num(a)?, num(b)?),
                    None => (num(&v)?, u32::MAX),
                });
                took = 2;
            }
            "-n" | "--src-nat" | "-g" | "--dst-nat" | "-j" | "--any-nat" => {
                // An optional address: the next word when it is one.
                let ip = args.get(i + 1).and_then(|v| v.parse::<Ipv4Addr>().ok()).map(u32::from);
                if ip.is_some() {
                    took = 2;
                }
                match a.as_str() {
                    "-n" | "--src-nat" => f.src_nat = Some(ip),
                    "-g" | "--dst-nat" => f.dst_nat = Some(ip),
                    _ => f.any_nat = Some(ip),
                }
            }
            "-w" | "--zone" | "--orig-zone" | "--reply-zone" => {
                let v = val(i)?;
                let z = v.parse::<u16>().map_err(|_| bad("zone", &v))?;
                match a.as_str() {
                    "--orig-zone" => f.zone[0] = Some(z),
                    "--reply-zone" => f.zone[1] = Some(z),
                    _ => f.zone = [Some(z); 2],
                }
                took = 2;
            }
            "-u" | "--status" => {
                let v = val(i)?;
                let mut bits = 0;
                for w in v.split(',') {
                    bits |= match w {
                        "EXPECTED" => status::EXPECTED,
                        "SEEN_REPLY" => status::SEEN_REPLY,
                        "ASSURED" => status::ASSURED,
                        "CONFIRMED" => status::CONFIRMED,
                        "SRC_NAT" => status::SRC_NAT,
                        "DST_NAT" => status::DST_NAT,
                        _ => return Err(bad("status", w)),
                    };
                }
                f.status = Some(bits);
                took = 2;
            }
            other => return Err(format!("{VERSION_LINE}: Unknown option `{other}'")),
        }
        i += took;
    }
    match cmd {
        Some("L") | None => Ok(Cmd::List(f)),
        Some("D") => Ok(Cmd::Delete(f)),
        Some("E") => Ok(Cmd::Events(f, mask)),
        Some("C") => Ok(Cmd::Count),
        Some("F") => Ok(Cmd::Flush),
        _ => Ok(Cmd::Stats),
    }
}

/// The protocol's name as conntrack prints it.
pub(crate) fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "unknown",
    }
}

fn tuple_text(s: &mut String, t: &rnf_engine::conntrack::Tuple) {
    let _ = write!(s, "src={} dst={} ", Ipv4Addr::from(t.src), Ipv4Addr::from(t.dst));
    match t.proto {
        6 | 17 => {
            let _ = write!(s, "sport={} dport={} ", t.sport, t.dport);
        }
        1 => {
            let _ = write!(s, "type={} code={} id={} ", t.dport >> 8, t.dport & 0xff, t.sport);
        }
        _ => {}
    }
}

/// The zone of one direction's tuple, after it (`zone-orig=`/`zone-reply=`: ctnetlink puts
/// it in the tuple when the flow's zone applies to that direction only).
fn tuple_zone(s: &mut String, f: &FlowRecord, d: usize) {
    let z = f.zone.get(d).copied().unwrap_or(0);
    if z != 0 && f.zone[0] != f.zone[1] {
        let _ = write!(s, "zone-{}={z} ", if d == 0 { "orig" } else { "reply" });
    }
}

/// The flow's zone, when it applies to both directions (`zone=`, after the mark).
fn flow_zone(s: &mut String, f: &FlowRecord) {
    if f.zone[0] != 0 && f.zone[0] == f.zone[1] {
        let _ = write!(s, "zone={} ", f.zone[0]);
    }
}

/// One flow as `conntrack -L` prints it (libnetfilter_conntrack's default format, with
/// accounting on).
pub fn flow_line(f: &FlowRecord) -> String {
    let name = proto_name(f.orig.proto);
    let mut s = format!("{name:<8} {} {} ", f.orig.proto, f.timeout);
    if let Some(st) = f.tcp_state.and_then(TcpState::from_u8) {
        let _ = write!(s, "{} ", st.name());
    }
    tuple_text(&mut s, &f.orig);
    tuple_zone(&mut s, f, 0);
    let _ = write!(s, "packets={} bytes={} ", f.counters[0].0, f.counters[0].1);
    if f.status & status::SEEN_REPLY == 0 {
        s.push_str("[UNREPLIED] ");
    }
    tuple_text(&mut s, &f.reply);
    tuple_zone(&mut s, f, 1);
    let _ = write!(s, "packets={} bytes={} ", f.counters[1].0, f.counters[1].1);
    if f.status & status::ASSURED != 0 {
        s.push_str("[ASSURED] ");
    }
    let _ = write!(s, "mark={} ", f.mark);
    flow_zone(&mut s, f);
    if f.helper == rnf_engine::conntrack::table::HELPER_FTP {
        s.push_str("helper=ftp ");
    }
    s.push_str("use=1");
    s
}

/// One event as `conntrack -E` prints it: a DESTROY has no timeout but the counters (as
/// ctnetlink's with accounting on: rust_nf always counts), the others no counters.
pub fn event_line(f: &FlowRecord) -> String {
    let destroy = f.event == ctwire::EV_DESTROY;
    let tag = match f.event {
        ctwire::EV_NEW => "[NEW]",
        ctwire::EV_UPDATE => "[UPDATE]",
        _ => "[DESTROY]",
    };
    let name = proto_name(f.orig.proto);
    let mut s = format!("{tag:>9} {name:<8} {} ", f.orig.proto);
    // A DESTROY shows the time that was left, if any (a flow deleted before its time).
    if !destroy || f.timeout > 0 {
        let _ = write!(s, "{} ", f.timeout);
    }
    if let Some(st) = f.tcp_state.and_then(TcpState::from_u8) {
        let _ = write!(s, "{} ", st.name());
    }
    tuple_text(&mut s, &f.orig);
    tuple_zone(&mut s, f, 0);
    if destroy {
        let _ = write!(s, "packets={} bytes={} ", f.counters[0].0, f.counters[0].1);
    }
    if f.status & status::SEEN_REPLY == 0 {
        s.push_str("[UNREPLIED] ");
    }
    tuple_text(&mut s, &f.reply);
    tuple_zone(&mut s, f, 1);
    if destroy {
        let _ = write!(s, "packets={} bytes={} ", f.counters[1].0, f.counters[1].1);
    }
    if f.status & status::ASSURED != 0 {
        s.push_str("[ASSURED] ");
    }
    if f.mark != 0 {
        let _ = write!(s, "mark={} ", f.mark);
    }
    flow_zone(&mut s, f);
    // ctnetlink sends the helper in every event but DESTROY.
    if f.helper == rnf_engine::conntrack::table::HELPER_FTP && !destroy {
        s.push_str("helper=ftp ");
    }
    s.truncate(s.trim_end().len());
    s
}

/// Reads every flow of the namespace.
pub fn fetch(c: &mut netlink::Client) -> Result<Vec<FlowRecord>, netlink::Error> {
    let mut out = Vec::new();
    for msg in c.dump(ctwire::CMD_CT_DUMP, Vec::new())? {
        for a in AttrIter::new(&msg) {
            let a = a.map_err(|e| netlink::Error::Decode(format!("{e}")))?;
            if a.ty == ctwire::A_CT_FLOW {
                out.push(ctwire::decode_flow(a.nested()).map_err(|e| netlink::Error::Decode(format!("{e}")))?);
            }
        }
    }
    Ok(out)
}

/// Runs a conntrack command line; returns the exit status.
pub fn main(args: &[String]) -> u8 {
    let cmd = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let run = || -> Result<(), netlink::Error> {
        let mut c = netlink::Client::connect()?;
        match &cmd {
            Cmd::List(f) => {
                let flows = fetch(&mut c)?;
                let mut n = 0;
                let mut out = String::new();
                for fl in flows.iter().filter(|x| f.keeps(x)) {
                    if f.xml {
                        // conntrack opens the document at the first flow it prints.
                        if n == 0 {
                            out.push_str(ctxml::header());
                        }
                        out.push_str(&ctxml::flow_xml(fl));
                    } else {
                        if f.extended {
                            out.push_str("ipv4     2 ");
                        }
                        out.push_str(&flow_line(fl));
                    }
                    out.push('\n');
                    n += 1;
                }
                if f.xml && n > 0 {
                    out.push_str(ctxml::footer());
                }
                print!("{out}");
                eprintln!("{VERSION_LINE}: {n} flow entries have been shown.");
            }
            Cmd::Delete(f) => {
                let flows = fetch(&mut c)?;
                let mut n = 0;
                for fl in flows.iter().filter(|x| f.keeps(x)) {
                    let mut buf = [0u8; 64];
                    let mut enc = rnf_engine::wire::Encoder::new(&mut buf);
                    ctwire::encode_delete(&mut enc, fl);
                    let len = enc.len();
                    match c.request(ctwire::CMD_CT_DELETE, buf[..len].to_vec()) {
                        Ok(_) => {
                            // As conntrack -D: each deleted flow, then the count.
                            println!("{}", flow_line(fl));
                            n += 1;
                        }
                        // Gone meanwhile (expired, or deleted by someone else).
                        Err(netlink::Error::Kernel { errno: 2, .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                eprintln!("{VERSION_LINE}: {n} flow entries have been deleted.");
            }
            Cmd::Events(f, mask) => {
                c.join(ctwire::MCGRP_CT_EVENTS)?;
                if f.xml {
                    ctxml::end_events_on_signal();
                }
                let mut out = std::io::stdout();
                loop {
                    let (cmd, payload) = c.next_event()?;
                    if cmd != ctwire::CMD_CT_EVENT {
                        continue;
                    }
                    for a in AttrIter::new(&payload) {
                        let Ok(a) = a else { break };
                        if a.ty != ctwire::A_CT_FLOW {
                            continue;
                        }
                        let Ok(fl) = ctwire::decode_flow(a.nested()) else { continue };
                        if fl.event & mask != 0 && f.keeps(&fl) {
                            use std::io::Write as _;
                            let line = if f.xml { ctxml::event_xml(&fl, f.timestamp) } else { event_line(&fl) };
                            let _ = writeln!(out, "{line}");
                            let _ = out.flush();
                        }
                    }
                }
            }
            Cmd::Count => println!("{}", fetch(&mut c)?.len()),
            Cmd::Flush => {
                c.request(ctwire::CMD_CT_FLUSH, Vec::new())?;
                eprintln!("{VERSION_LINE}: connection tracking table has been emptied.");
            }
            Cmd::Stats => {
                let p = c.query(ctwire::CMD_CT_STATS, Vec::new())?;
                // conntrack -S's lines, one per CPU, then the table's own figures and the
                // counters summed over the CPUs.
                let mut table = String::from("rust_nf:");
                let mut sum = [0u64; 10];
                for a in AttrIter::new(&p) {
                    let a = a.map_err(|e| netlink::Error::Decode(format!("{e}")))?;
                    if a.ty == ctwire::A_CT_CPU {
                        let (cpu, v) = ctwire::decode_cpu_stats(a.nested()).map_err(|e| netlink::Error::Decode(format!("{e}")))?;
                        let mut line = format!("cpu={cpu:<4}\t");
                        for ((name, v), t) in rnf_engine::conntrack::table::STAT_NAMES.iter().zip(v).zip(sum.iter_mut()) {
                            let _ = write!(line, "{name}={v} ");
                            *t = t.wrapping_add(v);
                        }
                        println!("{line}");
                        continue;
                    }
                    let name = match a.ty {
                        ctwire::A_CT_ENABLED => "tracking",
                        ctwire::A_CT_COUNT => "entries",
                        ctwire::A_CT_MAX => "max",
                        ctwire::A_CT_BUCKETS => "buckets",
                        ctwire::A_CT_MEMORY => "memory",
                        ctwire::A_CT_ENTRY_SIZE => "entry_size",
                        _ => continue,
                    };
                    let v = if a.payload.len() == 8 { a.u64().unwrap_or(0) } else { u64::from(a.u32().unwrap_or(0)) };
                    let _ = write!(table, " {name}={v}");
                }
                for (name, v) in rnf_engine::conntrack::table::STAT_NAMES.iter().zip(sum) {
                    let _ = write!(table, " {name}={v}");
                }
                println!("{table}");
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{VERSION_LINE}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnf_engine::conntrack::Tuple;

    fn a(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn lines_as_conntrack_prints_them() {
        let orig = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 46380, dport: 80, proto: 6 };
        let f = FlowRecord {
            orig,
            reply: orig.invert().unwrap(),
            status: status::SEEN_REPLY | status::ASSURED | status::CONFIRMED,
            timeout: 431_999,
            tcp_state: Some(3),
            counters: [(6, 400), (4, 300)],
            id: 1,
            mark: 0,
            event: 0,
            zone: [0, 0],
            helper: 0,
        };
        assert_eq!(
            flow_line(&f),
            "tcp      6 431999 ESTABLISHED src=10.0.1.2 dst=10.0.2.2 sport=46380 dport=80 packets=6 bytes=400 \
             src=10.0.2.2 dst=10.0.1.2 sport=80 dport=46380 packets=4 bytes=300 [ASSURED] mark=0 use=1"
        );
        let icmp = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 7, dport: 0x0800, proto: 1 };
        let f = FlowRecord {
            orig: icmp,
            reply: icmp.invert().unwrap(),
            status: status::CONFIRMED,
            timeout: 29,
            tcp_state: None,
            counters: [(1, 84), (0, 0)],
            id: 2,
            mark: 0x10,
            event: 0,
            zone: [0, 0],
            helper: 0,
        };
        assert_eq!(
            flow_line(&f),
            "icmp     1 29 src=10.0.1.2 dst=10.0.2.2 type=8 code=0 id=7 packets=1 bytes=84 [UNREPLIED] \
             src=10.0.2.2 dst=10.0.1.2 type=0 code=0 id=7 packets=0 bytes=0 mark=16 use=1"
        );
    }

    #[test]
    fn event_lines_as_conntrack_prints_them() {
        let orig = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 46380, dport: 5353, proto: 17 };
        let f = FlowRecord {
            orig,
            reply: orig.invert().unwrap(),
            status: status::CONFIRMED,
            timeout: 30,
            tcp_state: None,
            counters: [(1, 33), (0, 0)],
            id: 1,
            mark: 0,
            event: ctwire::EV_NEW,
            zone: [0, 0],
            helper: 0,
        };
        assert_eq!(
            event_line(&f),
            "    [NEW] udp      17 30 src=10.0.1.2 dst=10.0.2.2 sport=46380 dport=5353 [UNREPLIED] \
             src=10.0.2.2 dst=10.0.1.2 sport=5353 dport=46380"
        );
        let d = FlowRecord { event: ctwire::EV_DESTROY, status: status::SEEN_REPLY | status::CONFIRMED, mark: 3, timeout: 0, ..f };
        // Deleted before its time: the time left shows.
        let early = FlowRecord { timeout: 12, ..d };
        assert!(event_line(&early).starts_with("[DESTROY] udp      17 12 src="), "{}", event_line(&early));
        assert_eq!(
            event_line(&d),
            "[DESTROY] udp      17 src=10.0.1.2 dst=10.0.2.2 sport=46380 dport=5353 packets=1 bytes=33 \
             src=10.0.2.2 dst=10.0.1.2 sport=5353 dport=46380 packets=0 bytes=0 mark=3"
        );
        // Zones: both directions after the mark, one direction after its tuple.
        let z = FlowRecord { zone: [5, 5], ..d };
        assert!(event_line(&z).ends_with(" mark=3 zone=5"), "{}", event_line(&z));
        let z = FlowRecord { zone: [7, 0], event: 0, timeout: 30, ..d };
        assert_eq!(
            flow_line(&z),
            "udp      17 30 src=10.0.1.2 dst=10.0.2.2 sport=46380 dport=5353 zone-orig=7 packets=1 bytes=33 \
             src=10.0.2.2 dst=10.0.1.2 sport=5353 dport=46380 packets=0 bytes=0 mark=3 use=1"
        );
        // A helper flow: helper= after the zone, in listings and in events but DESTROY.
        let h = FlowRecord { helper: 1, ..z };
        assert!(flow_line(&h).ends_with(" mark=3 helper=ftp use=1"), "{}", flow_line(&h));
        assert!(event_line(&FlowRecord { event: ctwire::EV_NEW, ..h }).ends_with(" helper=ftp"));
        assert!(!event_line(&FlowRecord { event: ctwire::EV_DESTROY, ..h }).contains("helper"));
        assert!(crate::ctxml::flow_xml(&h).ends_with("<helper>ftp</helper></flow>"));
        let Cmd::List(f) = parse(&["-L".into(), "--orig-zone".into(), "7".into()]).unwrap() else { panic!() };
        assert!(f.keeps(&z) && !f.keeps(&d));
    }

    #[test]
    fn options() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let Cmd::List(f) = parse(&v("-L -p tcp -s 10.0.0.1 --dport 80 --state ESTABLISHED -u ASSURED")).unwrap() else {
            panic!()
        };
        assert_eq!(f.proto, Some(6));
        assert_eq!(f.dport, Some(80));
        assert_eq!(f.tcp_state, Some(3));
        assert_eq!(f.status, Some(status::ASSURED));
        let Cmd::List(f) = parse(&v("-L --mark 0x10/0xf0")).unwrap() else { panic!() };
        assert_eq!(f.mark, Some((0x10, 0xf0)));
        let Cmd::List(f) = parse(&v("-L -o extended")).unwrap() else { panic!() };
        assert!(f.extended && !f.xml);
        let Cmd::List(f) = parse(&v("-L -o xml")).unwrap() else { panic!() };
        assert!(f.xml && !f.extended && !f.timestamp);
        // A comma list of conntrack's words, each as short as wanted, case aside.
        let Cmd::Events(f, _) = parse(&v("-E -o XML,ext,t,id,k,labels,userspace")).unwrap() else { panic!() };
        assert!(f.xml && f.extended && f.timestamp);
        let Cmd::List(f) = parse(&v("-L -o extended,s")).unwrap() else { panic!() };
        assert!(f.extended && !f.xml);
        let bad = |o: &str| parse(&v(&format!("-L -o {o}"))).unwrap_err();
        assert_eq!(bad("xml,zone"), format!("{VERSION_LINE}: Bad parameter `zone'"));
        assert_eq!(bad("xmlx,id"), format!("{VERSION_LINE}: Bad parameter `xmlx,id'"));
        assert_eq!(bad("xml,"), format!("{VERSION_LINE}: Bad parameter `'"));
        assert_eq!(bad(",xml"), format!("{VERSION_LINE}: Bad parameter `,xml'"));
        assert!(bad("save").contains("not supported"));
        let Cmd::List(f) = parse(&v("-L -m 7")).unwrap() else { panic!() };
        assert_eq!(f.mark, Some((7, u32::MAX)));
        assert_eq!(parse(&v("-C")).unwrap(), Cmd::Count);
        let Cmd::Events(_, m) = parse(&v("-E -e NEW,DESTROY")).unwrap() else { panic!() };
        assert_eq!(m, ctwire::EV_NEW | ctwire::EV_DESTROY);
        assert!(parse(&v("-E -e BOGUS")).is_err());
        assert!(parse(&v("-L -p")).is_err());
        assert!(parse(&v("-L --state FOO")).is_err());
        assert!(parse(&v("-X")).is_err());
    }
}
