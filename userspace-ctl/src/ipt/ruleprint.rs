// SPDX-License-Identifier: GPL-2.0

//! The canonical text of rules: `iptables -S`, `iptables-save` and the `-v` echo, character for
//! character as iptables-legacy 1.8.9 prints them (`print_rule4`, `print_firewall_line` and
//! each extension's `save` function). The printer is the inverse of the parser: parsing a
//! printed rule gives the same rule back.

use std::fmt::Write as _;

use rnf_engine::rule::{
    addrtype, Counters, Iface, Ipv4Net, Match, MultiportKind, PortMatch, RejectWith, RuleSpec, StatisticMatch,
    Target, TtlMode, TtlOp, LIMIT_SCALE, ctflag, ConnmarkMode, ConntrackMatch, EcnMatch, NflogSpec, NfqueueSpec, OwnerMatch, SpiMatch,
};

use super::model::Table;
use super::names;
use super::parse::{tcp_flags_str, Fail};

/// How a rule's counters appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterStyle {
    /// Not at all.
    None,
    /// `[p:b] -A ...` (iptables-save -c).
    Prefix,
    /// `-A ... -c p b -j ...` (iptables -S -v).
    Option,
}

/// `xtables_save_string`: bare when made of `[A-Za-z0-9_-]` only, else double-quoted with `"`,
/// `\` and `'` escaped.
pub fn save_string(s: &mut String, value: &str) {
    s.push(' ');
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        s.push_str(value);
        return;
    }
    s.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
}

fn ipv4(a: u32) -> String {
    let b = a.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// `mask_to_str`: a prefix length when the mask is contiguous, else the dotted mask.
fn mask_str(mask: u32) -> String {
    match (Ipv4Net { addr: 0, mask }).prefix_len() {
        Some(p) => p.to_string(),
        None => ipv4(mask),
    }
}

fn save_addr(s: &mut String, letter: char, net: &Ipv4Net, invert: bool) {
    if net.mask == 0 && !invert && net.addr == 0 {
        return;
    }
    let _ = write!(s, "{} -{letter} {}/{}", if invert { " !" } else { "" }, ipv4(net.addr), mask_str(net.mask));
}

fn save_iface(s: &mut String, letter: char, iface: &Iface, invert: bool) {
    let base = iface.base();
    if base.is_empty() {
        return;
    }
    let _ = write!(
        s,
        "{} -{letter} {}{}",
        if invert { " !" } else { "" },
        String::from_utf8_lossy(base),
        if iface.wildcard { "+" } else { "" }
    );
}

fn save_ports(s: &mut String, name: &str, p: &Option<PortMatch>) {
    let Some(p) = p else { return };
    if p.range.lo == 0 && p.range.hi == 0xFFFF {
        return;
    }
    if p.invert {
        s.push_str(" !");
    }
    if p.range.lo != p.range.hi {
        let _ = write!(s, " --{name} {}:{}", p.range.lo, p.range.hi);
    } else {
        let _ = write!(s, " --{name} {}", p.range.lo);
    }
}

/// `print_rate` of the limit match.
pub fn limit_rate(period: u32) -> String {
    const RATES: [(&str, u32); 4] = [
        ("day", LIMIT_SCALE * 24 * 60 * 60),
        ("hour", LIMIT_SCALE * 60 * 60),
        ("min", LIMIT_SCALE * 60),
        ("sec", LIMIT_SCALE),
    ];
    if period == 0 {
        return "inf".to_string();
    }
    let mut i = 1;
    while i < RATES.len() {
        let m = RATES[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    format!("{}/{}", RATES[i - 1].1 / period, RATES[i - 1].0)
}

/// `print_state` of libxt_conntrack: the state names, comma-separated, after a blank.
pub(crate) fn ct_states_text(s: &mut String, mask: u16) {
    let mut sep = " ";
    for (name, bit) in rnf_engine::rule::ctstate::NAMES {
        if mask & bit != 0 {
            let _ = write!(s, "{sep}{name}");
            sep = ",";
        }
    }
}

/// `conntrack_dump` of libxt_conntrack (revision 3): `prefix` is "" for -L, "--" for save;
/// `addr` writes an address with its mask.
pub(crate) fn conntrack_text(s: &mut String, c: &ConntrackMatch, prefix: &str, addr: &mut dyn FnMut(&Ipv4Net) -> String) {
    let on = |f: u16| c.flags & f != 0;
    let bang = |s: &mut String, f: u16| {
        if c.invert & f != 0 {
            s.push_str(" !");
        }
    };
    if on(ctflag::STATE) {
        bang(s, ctflag::STATE);
        let _ = write!(s, " {prefix}ctstate");
        ct_states_text(s, c.state);
    }
    if on(ctflag::PROTO) {
        bang(s, ctflag::PROTO);
        let _ = write!(s, " {prefix}ctproto {}", c.proto);
    }
    let names = ["ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"];
    let flags = [ctflag::ORIGSRC, ctflag::ORIGDST, ctflag::REPLSRC, ctflag::REPLDST];
    for ((name, f), net) in names.iter().zip(flags).zip(c.addrs.iter()) {
        if on(f) {
            bang(s, f);
            let _ = write!(s, " {prefix}{name} {}", addr(net));
        }
    }
    let names = ["ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport"];
    let flags = [ctflag::ORIGSRC_PORT, ctflag::ORIGDST_PORT, ctflag::REPLSRC_PORT, ctflag::REPLDST_PORT];
    for ((name, f), p) in names.iter().zip(flags).zip(c.ports.iter()) {
        if on(f) {
            bang(s, f);
            if p.hi == 0 || p.lo == p.hi {
                let _ = write!(s, " {prefix}{name} {}", p.lo);
            } else {
                let _ = write!(s, " {prefix}{name} {}:{}", p.lo, p.hi);
            }
        }
    }
    if on(ctflag::STATUS) {
        bang(s, ctflag::STATUS);
        let _ = write!(s, " {prefix}ctstatus");
        let mut sep = " ";
        for (name, bit) in rnf_engine::rule::ctstatus::NAMES {
            if c.status & bit != 0 {
                let _ = write!(s, "{sep}{name}");
                sep = ",";
            }
        }
        if c.status == 0 {
            let _ = write!(s, "{sep}NONE");
        }
    }
    if on(ctflag::EXPIRES) {
        bang(s, ctflag::EXPIRES);
        let _ = write!(s, " {prefix}ctexpire ");
        if c.expires.0 == c.expires.1 {
            let _ = write!(s, "{}", c.expires.0);
        } else {
            let _ = write!(s, "{}:{}", c.expires.0, c.expires.1);
        }
    }
    if on(ctflag::DIRECTION) {
        let d = if c.invert & ctflag::DIRECTION != 0 { "REPLY" } else { "ORIGINAL" };
        let _ = write!(s, " {prefix}ctdir {d}");
    }
}

/// An address with `xtables_ipmask_to_numeric`'s mask: nothing for /32, `/len`, or dotted.
pub(crate) fn numeric_net(n: &Ipv4Net) -> String {
    let a = n.addr;
    let mut t = format!("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
    match n.prefix_len() {
        Some(32) => {}
        Some(len) => {
            let _ = write!(t, "/{len}");
        }
        None => {
            let m = n.mask;
            let _ = write!(t, "/{}.{}.{}.{}", m >> 24, (m >> 16) & 0xff, (m >> 8) & 0xff, m & 0xff);
        }
    }
    t
}

fn save_match(s: &mut String, m: &Match<'_>) {
    let _ = write!(s, " -m {}", m.name());
    let m_outer = m;
    match m {
        Match::Tcp(t) => {
            save_ports(s, "sport", &t.sport);
            save_ports(s, "dport", &t.dport);
            if let Some((opt, inv)) = t.option {
                if opt != 0 || inv {
                    if inv {
                        s.push_str(" !");
                    }
                    let _ = write!(s, " --tcp-option {opt}");
                }
            }
            if let Some(f) = t.flags {
                if f.mask != 0 || f.invert {
                    if f.invert {
                        s.push_str(" !");
                    }
                    let _ = write!(s, " --tcp-flags {} {}", tcp_flags_str(f.mask), tcp_flags_str(f.comp));
                }
            }
        }
        Match::Udp(u) => {
            save_ports(s, "sport", &u.sport);
            save_ports(s, "dport", &u.dport);
        }
        Match::Icmp(i) => {
            if i.invert {
                s.push_str(" !");
            }
            if i.icmp_type == 0xFF {
                s.push_str(" --icmp-type any");
            } else {
                let _ = write!(s, " --icmp-type {}", i.icmp_type);
                if i.code_min != 0 || i.code_max != 0xFF {
                    let _ = write!(s, "/{}", i.code_min);
                }
            }
        }
        Match::Multiport(mp) => {
            if mp.invert {
                s.push_str(" !");
            }
            s.push_str(match mp.kind {
                MultiportKind::Source => " --sports ",
                MultiportKind::Destination => " --dports ",
                MultiportKind::Either => " --ports ",
            });
            for (i, p) in mp.list().iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                if p.lo == p.hi {
                    let _ = write!(s, "{}", p.lo);
                } else {
                    let _ = write!(s, "{}:{}", p.lo, p.hi);
                }
            }
        }
        Match::Comment(c) => {
            s.push_str(" --comment");
            save_string(s, c);
        }
        Match::Connlimit(c) => {
            let _ = write!(
                s,
                " --connlimit-{} {} --connlimit-mask {} --connlimit-{}",
                if c.upto { "upto" } else { "above" },
                c.limit,
                c.prefix,
                if c.dest { "daddr" } else { "saddr" }
            );
        }
        Match::Connbytes(c) => {
            super::list::connbytes_text(s, c, "--");
            let _ = write!(s, " --connbytes-mode {} --connbytes-dir {}", super::list::connbytes_mode(c), super::list::connbytes_dir(c));
        }
        Match::Recent(m) => {
            use rnf_engine::recent::flag;
            if m.invert {
                s.push_str(" !");
            }
            for (bit, word) in [(flag::SET, " --set"), (flag::CHECK, " --rcheck"), (flag::UPDATE, " --update"), (flag::REMOVE, " --remove")] {
                if m.check_set & bit != 0 {
                    s.push_str(word);
                }
            }
            if m.seconds != 0 {
                let _ = write!(s, " --seconds {}", m.seconds);
            }
            if m.check_set & flag::REAP != 0 {
                s.push_str(" --reap");
            }
            if m.hit_count != 0 {
                let _ = write!(s, " --hitcount {}", m.hit_count);
            }
            if m.check_set & flag::TTL != 0 {
                s.push_str(" --rttl");
            }
            let side = if m.dest { "--rdest" } else { "--rsource" };
            let _ = write!(s, " --name {} --mask {} {side}", m.name, std::net::Ipv4Addr::from(m.mask));
        }
        Match::Mark(mk) | Match::Connmark(mk) => {
            if mk.invert {
                s.push_str(" !");
            }
            if mk.mask != u32::MAX {
                let _ = write!(s, " --mark 0x{:x}/0x{:x}", mk.value, mk.mask);
            } else {
                let _ = write!(s, " --mark 0x{:x}", mk.value);
            }
        }
        Match::Statistic(st) => match *st {
            StatisticMatch::Random { probability, invert } => {
                let _ = write!(
                    s,
                    " --mode random{} --probability {:.11}",
                    if invert { " !" } else { "" },
                    f64::from(probability) / 2147483648.0
                );
            }
            StatisticMatch::Nth { every, packet, invert } => {
                let _ = write!(
                    s,
                    " --mode nth{} --every {} --packet {}",
                    if invert { " !" } else { "" },
                    every.wrapping_add(1),
                    packet
                );
            }
        },
        Match::Limit(l) => {
            let _ = write!(s, " --limit {}", limit_rate(l.avg));
            if l.burst != 5 {
                let _ = write!(s, " --limit-burst {}", l.burst);
            }
        }
        Match::IpRange(r) => {
            if let Some(a) = r.src {
                let _ = write!(s, "{} --src-range {}-{}", if a.invert { " !" } else { "" }, ipv4(a.lo), ipv4(a.hi));
            }
            if let Some(a) = r.dst {
                let _ = write!(s, "{} --dst-range {}-{}", if a.invert { " !" } else { "" }, ipv4(a.lo), ipv4(a.hi));
            }
        }
        Match::Length(l) => {
            let _ = write!(s, "{} --length ", if l.invert { " !" } else { "" });
            if l.min == l.max {
                let _ = write!(s, "{}", l.min);
            } else {
                let _ = write!(s, "{}:{}", l.min, l.max);
            }
        }
        Match::AddrType(a) => {
            let types = |mask: u16| {
                addrtype::NAMES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            if a.src != 0 {
                let _ = write!(s, "{} --src-type {}", if a.src_invert { " !" } else { "" }, types(a.src));
            }
            if a.dst != 0 {
                let _ = write!(s, "{} --dst-type {}", if a.dst_invert { " !" } else { "" }, types(a.dst));
            }
            if a.limit_iface_in {
                s.push_str(" --limit-iface-in");
            }
            if a.limit_iface_out {
                s.push_str(" --limit-iface-out");
            }
        }
        Match::Conntrack(c) => conntrack_text(s, c, "--", &mut numeric_net),
        Match::State(st) => {
            s.push_str(" --state");
            ct_states_text(s, st.states);
        }
        Match::Ttl(t) => {
            s.push_str(match t.op {
                TtlOp::Eq => " --ttl-eq",
                TtlOp::Ne => " ! --ttl-eq",
                TtlOp::Lt => " --ttl-lt",
                TtlOp::Gt => " --ttl-gt",
            });
            let _ = write!(s, " {}", t.value);
        }
        Match::Tos(t) => {
            let _ = write!(s, "{} --tos 0x{:02x}/0x{:02x}", inv(t.invert), t.value, t.mask);
        }
        Match::Dscp(d) => {
            let _ = write!(s, "{} --dscp 0x{:02x}", inv(d.invert), d.dscp);
        }
        Match::Ecn(e) => {
            for (bit, opt) in [(EcnMatch::ECE, " --ecn-tcp-ece"), (EcnMatch::CWR, " --ecn-tcp-cwr"), (EcnMatch::IP, " --ecn-ip-ect")] {
                if e.operation & bit != 0 {
                    s.push_str(inv(e.invert & bit != 0));
                    s.push_str(opt);
                    if bit == EcnMatch::IP {
                        let _ = write!(s, " {}", e.ip_ect);
                    }
                }
            }
        }
        Match::Esp(m) | Match::Ah(m) => {
            if !spis_all(m) {
                let opt = if matches!(m_outer, Match::Esp(_)) { "espspi" } else { "ahspi" };
                let _ = write!(s, "{} --{opt} {}", inv(m.invert), range_text(m.min, m.max));
            }
        }
        Match::PktType(p) => {
            let _ = write!(s, "{} --pkt-type {}", inv(p.invert), pkttype_name(p.pkt_type));
        }
        Match::Mac(m) => {
            let _ = write!(s, "{} --mac-source {}", inv(m.invert), mac_text(&m.src));
        }
        Match::TcpMss(m) => {
            let _ = write!(s, "{} --mss {}", inv(m.invert), range_text(u32::from(m.min), u32::from(m.max)));
        }
        Match::Owner(o) => owner_text(s, o, &OWNER_SAVE, true),
        Match::Quota(q) => {
            let _ = write!(s, "{} --quota {}", inv(q.invert), q.quota);
        }
    }
}

/// libxt_NFQUEUE's `NFQUEUE_print_v3` and `NFQUEUE_save_v3`, with their words.
pub(crate) fn nfqueue_text(s: &mut String, q: &NfqueueSpec, words: [&str; 4]) {
    let [num, balance, bypass, fanout] = words;
    if q.total > 1 {
        let last = u32::from(q.num) + u32::from(q.total) - 1;
        let _ = write!(s, " {balance} {}:{last}", q.num);
    } else {
        let _ = write!(s, " {num} {}", q.num);
    }
    if q.flags & NfqueueSpec::BYPASS != 0 {
        let _ = write!(s, " {bypass}");
    }
    if q.flags & NfqueueSpec::CPU_FANOUT != 0 {
        let _ = write!(s, " {fanout}");
    }
}

/// libxt_NFLOG's `nflog_print` with `prefix` before each option name (`--` for `-S`).
pub(crate) fn nflog_text(s: &mut String, n: &NflogSpec<'_>, prefix: &str) {
    if !n.prefix.is_empty() {
        let _ = write!(s, " {prefix}nflog-prefix");
        save_string(s, n.prefix);
    }
    if n.group != 0 {
        let _ = write!(s, " {prefix}nflog-group {}", n.group);
    }
    if n.copy_len {
        let _ = write!(s, " {prefix}nflog-size {}", n.len);
    } else if n.len != 0 {
        let _ = write!(s, " {prefix}nflog-range {}", n.len);
    }
    if n.threshold != 0 {
        let _ = write!(s, " {prefix}nflog-threshold {}", n.threshold);
    }
}

/// The words of each `-m owner` test: for `-S` and for `-L`.
pub(crate) const OWNER_SAVE: [&str; 4] = ["--socket-exists", "--uid-owner", "--gid-owner", "--suppl-groups"];
pub(crate) const OWNER_LIST: [&str; 4] =
    ["owner socket exists", "owner UID match", "owner GID match", "incl. suppl. groups"];

/// libxt_owner's `owner_mt_print_item` for each test in its order; a single id is printed
/// as a name when not `numeric` and the name exists.
pub(crate) fn owner_text(s: &mut String, o: &OwnerMatch, labels: &[&str; 4], numeric: bool) {
    let items = [
        (OwnerMatch::SOCKET, None),
        (OwnerMatch::UID, Some((o.uid_min, o.uid_max, names::user_name as fn(u32) -> Option<String>))),
        (OwnerMatch::GID, Some((o.gid_min, o.gid_max, names::group_name as fn(u32) -> Option<String>))),
        (OwnerMatch::SUPPL_GROUPS, None),
    ];
    for ((bit, range), label) in items.into_iter().zip(labels) {
        if o.flags & bit == 0 {
            continue;
        }
        let _ = write!(s, "{} {label}", inv(o.invert & bit != 0));
        if let Some((lo, hi, name)) = range {
            let _ = match (lo != hi, numeric) {
                (true, _) => write!(s, " {lo}-{hi}"),
                (false, false) => write!(s, " {}", name(lo).unwrap_or_else(|| lo.to_string())),
                (false, true) => write!(s, " {lo}"),
            };
        }
    }
}

/// `" !"` before an inverted option of `-S`, nothing otherwise.
fn inv(invert: bool) -> &'static str {
    if invert { " !" } else { "" }
}

/// esp and ah print nothing for the whole SPI range not inverted.
pub(crate) fn spis_all(m: &SpiMatch) -> bool {
    m.min == 0 && m.max == u32::MAX && !m.invert
}

/// `min` or `min:max`.
pub(crate) fn range_text(min: u32, max: u32) -> String {
    if min == max { min.to_string() } else { format!("{min}:{max}") }
}

/// libxt_pkttype's `print_pkttype`: the first name of the type, else its number.
pub(crate) fn pkttype_name(t: u8) -> String {
    match names::PKT_TYPES.iter().find(|(_, v)| *v == t) {
        Some((n, _)) => (*n).to_string(),
        None => t.to_string(),
    }
}

/// `xtables_print_mac`.
pub(crate) fn mac_text(a: &[u8; 6]) -> String {
    a.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn save_target(s: &mut String, t: &Target<'_>) {
    match t {
        Target::None => {}
        Target::Accept => s.push_str(" -j ACCEPT"),
        Target::Drop => s.push_str(" -j DROP"),
        Target::Return => s.push_str(" -j RETURN"),
        Target::Jump(c) => {
            let _ = write!(s, " -j {c}");
        }
        Target::Goto(c) => {
            let _ = write!(s, " -g {c}");
        }
        Target::Reject(w) => {
            let _ = write!(s, " -j REJECT --reject-with {}", reject_name(*w));
        }
        Target::Log(l) => {
            s.push_str(" -j LOG");
            if !l.prefix.is_empty() {
                s.push_str(" --log-prefix");
                save_string(s, l.prefix);
            }
            if l.level != 4 {
                let _ = write!(s, " --log-level {}", l.level);
            }
            for (bit, name) in [
                (0x01, " --log-tcp-sequence"),
                (0x02, " --log-tcp-options"),
                (0x04, " --log-ip-options"),
                (0x08, " --log-uid"),
                (0x20, " --log-macdecode"),
            ] {
                if l.flags & bit != 0 {
                    s.push_str(name);
                }
            }
        }
        Target::Mark { value, mask } => {
            let _ = write!(s, " -j MARK --set-xmark 0x{value:x}/0x{mask:x}");
        }
        Target::CtNotrack(alias) => s.push_str(if *alias { " -j NOTRACK" } else { " -j CT --notrack" }),
        Target::Ct(c) => {
            s.push_str(" -j CT");
            ct_show(s, "--", c);
        }
        Target::Nat(n) => {
            let _ = write!(s, " -j {}", n.kind.name());
            nat_show(s, n, true);
        }
        Target::Connmark(c) => {
            let _ = match c.mode {
                ConnmarkMode::Set => write!(s, " -j CONNMARK --set-xmark 0x{:x}/0x{:x}", c.ctmark, c.ctmask),
                ConnmarkMode::Save => {
                    write!(s, " -j CONNMARK --save-mark --nfmask 0x{:x} --ctmask 0x{:x}", c.nfmask, c.ctmask)
                }
                ConnmarkMode::Restore => {
                    write!(s, " -j CONNMARK --restore-mark --nfmask 0x{:x} --ctmask 0x{:x}", c.nfmask, c.ctmask)
                }
            };
            if c.shift_bits != 0 {
                let op = if c.shift_right { "right-shift-mark" } else { "left-shift-mark" };
                let _ = write!(s, " --{op} {}", c.shift_bits);
            }
        }
        Target::Ttl { mode, value } => {
            let opt = match mode {
                TtlMode::Set => "set",
                TtlMode::Dec => "dec",
                TtlMode::Inc => "inc",
            };
            let _ = write!(s, " -j TTL --ttl-{opt} {value}");
        }
        Target::Tos { value, mask } => {
            let _ = write!(s, " -j TOS --set-tos 0x{value:02x}/0x{mask:02x}");
        }
        Target::Dscp(d) => {
            let _ = write!(s, " -j DSCP --set-dscp 0x{d:02x}");
        }
        Target::Classify(p) => {
            let _ = write!(s, " -j CLASSIFY --set-class {:04x}:{:04x}", p >> 16, p & 0xFFFF);
        }
        Target::Nflog(n) => {
            s.push_str(" -j NFLOG");
            nflog_text(s, n, "--");
        }
        Target::Nfqueue(q) => {
            s.push_str(" -j NFQUEUE");
            nfqueue_text(s, q, ["--queue-num", "--queue-balance", "--queue-bypass", "--queue-cpu-fanout"]);
        }
        Target::TcpMss(rnf_engine::tcpmss::CLAMP_PMTU) => s.push_str(" -j TCPMSS --clamp-mss-to-pmtu"),
        Target::TcpMss(m) => {
            let _ = write!(s, " -j TCPMSS --set-mss {m}");
        }
    }
}

/// The name iptables prints for a REJECT kind.
pub fn reject_name(w: RejectWith) -> &'static str {
    w.name()
}

/// One rule as `-S`/iptables-save print it, without the final newline.
pub fn rule_line(chain: &str, r: &RuleSpec<'_>, counters: Counters, style: CounterStyle) -> String {
    let mut s = String::new();
    if style == CounterStyle::Prefix {
        let _ = write!(s, "[{}:{}] ", counters.packets, counters.bytes);
    }
    let _ = write!(s, "-A {chain}");
    save_addr(&mut s, 's', &r.src, r.src_invert);
    save_addr(&mut s, 'd', &r.dst, r.dst_invert);
    save_iface(&mut s, 'i', &r.in_iface, r.in_invert);
    save_iface(&mut s, 'o', &r.out_iface, r.out_invert);
    if r.proto > 0 {
        if r.proto_invert {
            s.push_str(" !");
        }
        match names::protocol_name(r.proto) {
            Some(n) => {
                let _ = write!(s, " -p {n}");
            }
            None => {
                let _ = write!(s, " -p {}", r.proto);
            }
        }
    }
    match r.fragment {
        Some(true) => s.push_str(" -f"),
        Some(false) => s.push_str(" ! -f"),
        None => {}
    }
    for m in r.matches() {
        save_match(&mut s, m);
    }
    if style == CounterStyle::Option {
        let _ = write!(s, " -c {} {}", counters.packets, counters.bytes);
    }
    save_target(&mut s, &r.target);
    s
}

/// `iptables -S [chain [rulenum]] [-v]`; `Err` (ENOENT) when `chain` does not exist.
pub fn list_rules(table: &Table, chain: Option<&str>, rulenum: u32, verbose: bool) -> Result<String, Fail> {
    let mut s = String::new();
    if rulenum == 0 {
        for c in table.chains.iter().filter(|c| chain.is_none_or(|n| n == c.name)) {
            match c.policy {
                Some(p) => {
                    let _ = write!(s, "-P {} {}", c.name, p.name());
                    if verbose {
                        let _ = write!(s, " -c {} {}", c.counters.packets, c.counters.bytes);
                    }
                    s.push('\n');
                }
                None => {
                    let _ = writeln!(s, "-N {}", c.name);
                }
            }
        }
    }
    let mut found = false;
    for c in table.chains.iter().filter(|c| chain.is_none_or(|n| n == c.name)) {
        for (i, r) in c.rules.iter().enumerate() {
            if rulenum == 0 || i as u32 + 1 == rulenum {
                let style = if verbose { CounterStyle::Option } else { CounterStyle::None };
                s.push_str(&rule_line(&c.name, &r.spec(), r.counters, style));
                s.push('\n');
            }
        }
        found = true;
    }
    if !found {
        return Err(Fail::errno(ENOENT));
    }
    Ok(s)
}

const ENOENT: i32 = 2;

// ---------------------------------------------------------------------------------------------
// The rule echo of `-v` (print_firewall_line: FMT_PRINT_RULE, i.e. numeric, no table layout)
// ---------------------------------------------------------------------------------------------

/// An address as `-L -n` prints it: `/32` left out, a prefix length or a dotted mask.
fn numeric_addr(n: &Ipv4Net) -> String {
    let mut s = ipv4(n.addr);
    if n.mask != u32::MAX {
        s.push('/');
        s.push_str(&mask_str(n.mask));
    }
    s
}

/// The line `iptables -A/-I/-R/-D/-C -v` prints for a rule (`print_firewall_line`), with the
/// newline.
pub fn verbose_rule_line(r: &RuleSpec<'_>) -> String {
    let target = r.target.name();
    let mut s = format!("{target} ");
    s.push(if r.proto_invert { '!' } else { ' ' });
    match names::CHAIN_PROTOS.iter().find(|(_, p)| *p == r.proto) {
        Some((n, _)) => {
            let _ = write!(s, "{n} ");
        }
        None => {
            let _ = write!(s, "{} ", r.proto);
        }
    }
    s.push_str("opt ");
    s.push(if r.fragment == Some(false) { '!' } else { '-' });
    s.push(if r.fragment.is_some() { 'f' } else { '-' });
    s.push(' ');
    let iface = |i: &Iface, inv: bool| {
        let name = if i.is_any() {
            "*".to_string()
        } else {
            format!("{}{}", String::from_utf8_lossy(i.base()), if i.wildcard { "+" } else { "" })
        };
        format!("{}{}", if inv { "!" } else { "" }, name)
    };
    let _ = write!(s, "in {} ", iface(&r.in_iface, r.in_invert));
    let _ = write!(s, "out {} ", iface(&r.out_iface, r.out_invert));
    s.push(if r.src_invert { '!' } else { ' ' });
    let _ = write!(s, "{} ", numeric_addr(&r.src));
    s.push(if r.dst_invert { '!' } else { ' ' });
    let _ = write!(s, "-> {}", numeric_addr(&r.dst));
    s.push_str("  ");
    if matches!(r.target, Target::Goto(_)) {
        s.push_str("[goto] ");
    }
    // The extensions print as in `-L -n` (FMT_PRINT_RULE includes FMT_NUMERIC).
    let mut names = super::list::Names::system();
    for m in r.matches() {
        super::list::print_match(&mut s, m, r, true, &mut names);
    }
    super::list::print_target(&mut s, &r.target, true);
    s.push('\n');
    s
}

/// libxt_CT's `CT_show`: the options of a CT target with a template, each after `pfx` ("--"
/// in rules, "" in listings).
pub(crate) fn ct_show(s: &mut String, pfx: &str, c: &rnf_engine::rule::CtSpec) {
    use rnf_engine::rule::{ctevent, ctzone};
    if c.notrack {
        let _ = write!(s, " {pfx}notrack");
    }
    if c.helper == 1 {
        let _ = write!(s, " {pfx}helper ftp");
    }
    if c.ctevents != 0 {
        let names: Vec<&str> = ctevent::NAMES.iter().filter(|(_, b)| c.ctevents & b != 0).map(|(n, _)| *n).collect();
        let _ = write!(s, " {pfx}ctevents {}", names.join(","));
    }
    if c.expevents != 0 {
        let _ = write!(s, " {pfx}expevents new");
    }
    if c.zone_flags & ctzone::MARK != 0 || c.zone != 0 {
        let dir = match c.zone_flags & (ctzone::ORIG | ctzone::REPLY) {
            ctzone::ORIG => "-orig",
            ctzone::REPLY => "-reply",
            _ => "",
        };
        let _ = write!(s, " {pfx}zone{dir}");
        if c.zone_flags & ctzone::MARK != 0 {
            s.push_str(" mark");
        } else {
            let _ = write!(s, " {}", c.zone);
        }
    }
}

/// libxt_NAT's `sprint_range`: `ip[-ip][:port[-port[/base]]]`.
fn nat_range(s: &mut String, r: &rnf_engine::nat::NatRange) {
    use rnf_engine::nat::range;
    if r.flags & range::MAP_IPS != 0 {
        let _ = write!(s, "{}", std::net::Ipv4Addr::from(r.min_addr));
        if r.max_addr != r.min_addr {
            let _ = write!(s, "-{}", std::net::Ipv4Addr::from(r.max_addr));
        }
    }
    if r.flags & range::PROTO_SPECIFIED != 0 {
        let _ = write!(s, ":{}", r.min_port);
        if r.max_port != r.min_port {
            let _ = write!(s, "-{}", r.max_port);
        }
        if r.flags & range::PROTO_OFFSET != 0 {
            let _ = write!(s, "/{}", r.base_port);
        }
    }
}

/// The options of a NAT target as the targets' `save` (`save`) or `print` functions show them.
pub(crate) fn nat_show(s: &mut String, n: &rnf_engine::rule::NatTarget, save: bool) {
    use rnf_engine::nat::range;
    use rnf_engine::rule::NatKind;
    let r = &n.range;
    // MASQUERADE and REDIRECT print the same range without its leading colon.
    let ports = |s: &mut String, lead: &str| {
        let mut text = String::new();
        nat_range(&mut text, r);
        if !text.is_empty() {
            s.push_str(lead);
            s.push_str(text.strip_prefix(':').unwrap_or(&text));
        }
    };
    match n.kind {
        NatKind::Dnat | NatKind::Snat => {
            if r.flags & (range::MAP_IPS | range::PROTO_SPECIFIED) != 0 {
                s.push_str(match (save, n.kind) {
                    (true, NatKind::Dnat) => " --to-destination ",
                    (true, _) => " --to-source ",
                    (false, _) => " to:",
                });
                nat_range(s, r);
            }
        }
        NatKind::Masquerade => ports(s, if save { " --to-ports " } else { " masq ports: " }),
        NatKind::Redirect => ports(s, if save { " --to-ports " } else { " redir ports " }),
        NatKind::Netmap => {
            s.push_str(if save { " --to " } else { " to:" });
            let mask = !(r.min_addr ^ r.max_addr);
            let _ = write!(s, "{}", std::net::Ipv4Addr::from(r.min_addr));
            if mask.leading_ones() + mask.trailing_zeros() == 32 {
                let _ = write!(s, "/{}", mask.leading_ones());
            } else {
                let _ = write!(s, "/{}", std::net::Ipv4Addr::from(mask));
            }
        }
    }
    let dd = if save { "--" } else { "" };
    if r.flags & range::PROTO_RANDOM != 0 {
        let _ = write!(s, " {dd}random");
    }
    if r.flags & range::PROTO_RANDOM_FULLY != 0 {
        let _ = write!(s, " {dd}random-fully");
    }
    if r.flags & range::PERSISTENT != 0 {
        let _ = write!(s, " {dd}persistent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_print_like_iptables() {
        let r = |s: &str| {
            let (n, unit) = s.split_once('/').unwrap();
            let mult = match unit {
                "sec" => 1,
                "min" => 60,
                "hour" => 3600,
                _ => 86400,
            };
            limit_rate(LIMIT_SCALE * mult / n.parse::<u32>().unwrap())
        };
        for s in ["3/hour", "1/sec", "7/min", "7/sec", "13/hour", "25/day", "10000/sec", "61/min"] {
            assert_eq!(r(s), s);
        }
    }
}
