// SPDX-License-Identifier: GPL-2.0

//! The iptables command line, parsed the way iptables-legacy 1.8.9 parses it.
//!
//! iptables reads its arguments with `getopt_long` over a table of long options that grows as
//! extensions load: `-m NAME` merges that match's options, `-j NAME` the target's, and an
//! unknown option after `-p tcp` loads the `tcp` match and is read again. Options of a match
//! go to the most recent instance of that match; `!` is a token of its own that inverts the
//! next option. This module emulates that machinery (including glibc's abbreviation of long
//! options and clustering of short ones) so that the same arguments are accepted, rejected
//! with the same message, and produce the same rule.
//!
//! The result is a [`Parsed`] command: the command bits, its chain/number/policy/new name, the
//! options given, and one [`OwnedRule`] per source × destination address pair. Checks that
//! need the table (is the target a chain? `-i` on OUTPUT?) are done by `command.rs`, in the
//! same order as iptables.

use std::fmt;

use rnf_engine::rule::{
    AddrRange, AddrTypeMatch, Counters, IcmpMatch, Iface, IpRangeMatch, Ipv4Net, LengthMatch, LimitMatch, LogSpec,
    MarkMatch, Match, MultiportKind, MultiportMatch, PortMatch, PortRange, RejectWith, RuleSpec, StatisticMatch,
    Target, TcpFlags, TcpMatch, TtlMatch, TtlMode, TtlOp, UdpMatch, MAX_MATCHES, MAX_MULTIPORT,
    ctflag, ctstate, ctstatus, NatKind, ConnbytesMatch, ConnmarkMode, ConnmarkTarget, ConntrackMatch, StateMatch,
    DscpMatch, EcnMatch, MacMatch, NflogSpec, NfqueueSpec, OwnerMatch, PktTypeMatch, QuotaMatch, SpiMatch, TcpMssMatch, TosMatch, MAX_DSCP,
};

use super::names;
use rnf_engine::recent::{self, flag as rflag, RecentMatch};

pub use super::ListOptions;

/// iptables' version string.
pub const VERSION: &str = "1.8.9 (legacy)";

// Command bits (iptables' CMD_*), in the order of `cmd2char`.
pub(crate) const CMD_INSERT: u32 = 1 << 0;
pub(crate) const CMD_DELETE: u32 = 1 << 1;
pub(crate) const CMD_DELETE_NUM: u32 = 1 << 2;
pub(crate) const CMD_REPLACE: u32 = 1 << 3;
pub(crate) const CMD_APPEND: u32 = 1 << 4;
pub(crate) const CMD_LIST: u32 = 1 << 5;
pub(crate) const CMD_FLUSH: u32 = 1 << 6;
pub(crate) const CMD_ZERO: u32 = 1 << 7;
pub(crate) const CMD_NEW_CHAIN: u32 = 1 << 8;
pub(crate) const CMD_DELETE_CHAIN: u32 = 1 << 9;
pub(crate) const CMD_SET_POLICY: u32 = 1 << 10;
pub(crate) const CMD_RENAME_CHAIN: u32 = 1 << 11;
pub(crate) const CMD_LIST_RULES: u32 = 1 << 12;
pub(crate) const CMD_ZERO_NUM: u32 = 1 << 13;
pub(crate) const CMD_CHECK: u32 = 1 << 14;
const NUMBER_OF_CMD: usize = 15;
const CMD_CHARS: [char; NUMBER_OF_CMD] = ['I', 'D', 'D', 'R', 'A', 'L', 'F', 'Z', 'N', 'X', 'P', 'E', 'S', 'Z', 'C'];

// Option bits (iptables' OPT_*), in the order of `optflags`.
pub(crate) const OPT_NUMERIC: u32 = 1 << 0;
pub(crate) const OPT_SOURCE: u32 = 1 << 1;
pub(crate) const OPT_DESTINATION: u32 = 1 << 2;
pub(crate) const OPT_PROTOCOL: u32 = 1 << 3;
pub(crate) const OPT_JUMP: u32 = 1 << 4;
pub(crate) const OPT_VERBOSE: u32 = 1 << 5;
pub(crate) const OPT_EXPANDED: u32 = 1 << 6;
pub(crate) const OPT_VIANAMEIN: u32 = 1 << 7;
pub(crate) const OPT_VIANAMEOUT: u32 = 1 << 8;
pub(crate) const OPT_LINENUMBERS: u32 = 1 << 9;
pub(crate) const OPT_COUNTERS: u32 = 1 << 10;
pub(crate) const OPT_FRAGMENT: u32 = 1 << 11;
const NUMBER_OF_OPT: usize = 12;
const OPT_CHARS: [char; NUMBER_OF_OPT] = ['n', 's', 'd', 'p', 'j', 'v', 'x', 'i', 'o', '0', 'c', 'f'];

/// Which options are legal with which command (iptables' `commands_v_options`): `x` illegal.
const COMMANDS_V_OPTIONS: [[u8; NUMBER_OF_OPT]; NUMBER_OF_CMD] = [
    // -n -s -d -p -j -v -x -i -o --line-numbers -c -f
    *b"x     x  x  ", // INSERT
    *b"x     x  xx ", // DELETE
    *b"xxxxx xxxxxx", // DELETE_NUM
    *b"x     x  x  ", // REPLACE
    *b"x     x  x  ", // APPEND
    *b" xxxx  xx xx", // LIST
    *b"xxxxx xxxxxx", // FLUSH
    *b"xxxxx xxxxxx", // ZERO
    *b"xxxxx xxxxxx", // NEW_CHAIN
    *b"xxxxx xxxxxx", // DEL_CHAIN
    *b"xxxxx xxxx x", // SET_POLICY
    *b"xxxxx xxxxxx", // RENAME
    *b"xxxxx xxxxxx", // LIST_RULES
    *b"xxxxx xxxxxx", // ZERO_NUM
    *b"x     x  xx ", // CHECK
];

// Invert flags of the base rule (IPT_INV_*).
const INV_VIA_IN: u32 = 0x01;
const INV_VIA_OUT: u32 = 0x02;
const INV_SRCIP: u32 = 0x08;
const INV_DSTIP: u32 = 0x10;
const INV_FRAG: u32 = 0x20;
const INV_PROTO: u32 = 0x40;

/// How a failure is reported (iptables' exit types and message shapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailKind {
    /// `PROG v1.8.9 (legacy): MSG` + try-help lines; exit 2.
    Param,
    /// `MSG` alone + try-help lines; exit 2 (`Bad argument ...`).
    Bare,
    /// Only the try-help lines; exit 2 (`-6`).
    TryHelp,
    /// `PROG v1.8.9 (legacy): MSG`; exit 1 (OTHER_PROBLEM).
    Other,
    /// `PROG v1.8.9 (legacy): MSG` + "Perhaps iptables or your kernel needs to be upgraded."; exit 3.
    Version,
    /// The kernel or libiptc refused: `iptables: MSG.`; exit 1 (4 for EAGAIN).
    Errno(i32),
    /// Printed as is; exit 1 (restore's own messages).
    Plain,
}

/// A failure while parsing or running a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// How it is reported.
    pub kind: FailKind,
    /// The message (iptables' format string, filled in; may end with a newline, which iptables
    /// prints as an empty line).
    pub msg: String,
    /// Text printed on standard error before the message (warnings given while parsing).
    pub pre: String,
}

impl Fail {
    /// A parameter problem.
    pub fn param(msg: impl Into<String>) -> Fail {
        Fail { kind: FailKind::Param, msg: msg.into(), pre: String::new() }
    }
    /// An OTHER_PROBLEM error.
    pub fn other(msg: impl Into<String>) -> Fail {
        Fail { kind: FailKind::Other, msg: msg.into(), pre: String::new() }
    }
    /// An error number from libiptc or the kernel.
    pub fn errno(e: i32) -> Fail {
        Fail { kind: FailKind::Errno(e), msg: String::new(), pre: String::new() }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.msg)
    }
}

type R<T> = Result<T, Fail>;

fn perr<T>(msg: impl Into<String>) -> R<T> {
    Err(Fail::param(msg))
}

// ---------------------------------------------------------------------------------------------
// Owned rules
// ---------------------------------------------------------------------------------------------

/// A match with owned strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedMatch {
    /// Any match without a string.
    Plain(Match<'static>),
    /// `-m comment --comment TEXT`.
    Comment(String),
    /// `-m recent` (its name apart).
    Recent(RecentMatch<'static>, String),
}

/// A target with owned strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedTarget {
    /// Any target without a string.
    Plain(Target<'static>),
    /// `-j CHAIN`.
    Jump(String),
    /// `-g CHAIN`.
    Goto(String),
    /// `-j LOG`.
    Log {
        /// Level.
        level: u8,
        /// `NF_LOG_*` flags.
        flags: u8,
        /// Prefix.
        prefix: String,
    },
    /// `-j NFLOG`: the options (their prefix empty) and the prefix.
    Nflog(NflogSpec<'static>, String),
}

/// A rule with owned strings, convertible to a [`RuleSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRule {
    /// Everything but matches and target (those fields are left empty here).
    pub base: RuleSpec<'static>,
    /// Matches in order.
    pub matches: Vec<OwnedMatch>,
    /// Target.
    pub target: OwnedTarget,
}

impl Default for OwnedRule {
    fn default() -> Self {
        OwnedRule { base: RuleSpec::default(), matches: Vec::new(), target: OwnedTarget::Plain(Target::None) }
    }
}

impl OwnedRule {
    /// The rule as the engine's model (borrowing strings from `self`).
    pub fn spec(&self) -> RuleSpec<'_> {
        let mut r: RuleSpec<'_> = self.base;
        r.matches = [None; MAX_MATCHES];
        for (slot, m) in r.matches.iter_mut().zip(self.matches.iter()) {
            *slot = Some(match m {
                OwnedMatch::Plain(m) => *m,
                OwnedMatch::Comment(c) => Match::Comment(c),
                OwnedMatch::Recent(m, name) => Match::Recent(RecentMatch { name, ..*m }),
            });
        }
        r.target = match &self.target {
            OwnedTarget::Plain(t) => *t,
            OwnedTarget::Jump(c) => Target::Jump(c),
            OwnedTarget::Goto(c) => Target::Goto(c),
            OwnedTarget::Log { level, flags, prefix } => Target::Log(LogSpec { level: *level, flags: *flags, prefix }),
            OwnedTarget::Nflog(n, prefix) => Target::Nflog(NflogSpec { prefix, ..*n }),
        };
        r
    }

    /// Copies a specification.
    pub fn from_spec(spec: &RuleSpec<'_>) -> OwnedRule {
        let mut base: RuleSpec<'static> = RuleSpec {
            src: spec.src,
            src_invert: spec.src_invert,
            dst: spec.dst,
            dst_invert: spec.dst_invert,
            in_iface: spec.in_iface,
            in_invert: spec.in_invert,
            out_iface: spec.out_iface,
            out_invert: spec.out_invert,
            proto: spec.proto,
            proto_invert: spec.proto_invert,
            fragment: spec.fragment,
            ..Default::default()
        };
        base.matches = [None; MAX_MATCHES];
        let matches = spec
            .matches()
            .map(|m| match *m {
                Match::Comment(c) => OwnedMatch::Comment(c.to_string()),
                Match::Tcp(x) => OwnedMatch::Plain(Match::Tcp(x)),
                Match::Udp(x) => OwnedMatch::Plain(Match::Udp(x)),
                Match::Icmp(x) => OwnedMatch::Plain(Match::Icmp(x)),
                Match::Multiport(x) => OwnedMatch::Plain(Match::Multiport(x)),
                Match::Mark(x) => OwnedMatch::Plain(Match::Mark(x)),
                Match::Statistic(x) => OwnedMatch::Plain(Match::Statistic(x)),
                Match::Limit(x) => OwnedMatch::Plain(Match::Limit(x)),
                Match::IpRange(x) => OwnedMatch::Plain(Match::IpRange(x)),
                Match::Length(x) => OwnedMatch::Plain(Match::Length(x)),
                Match::AddrType(x) => OwnedMatch::Plain(Match::AddrType(x)),
                Match::Ttl(x) => OwnedMatch::Plain(Match::Ttl(x)),
                Match::Conntrack(x) => OwnedMatch::Plain(Match::Conntrack(x)),
                Match::State(x) => OwnedMatch::Plain(Match::State(x)),
                Match::Connmark(x) => OwnedMatch::Plain(Match::Connmark(x)),
                Match::Connbytes(x) => OwnedMatch::Plain(Match::Connbytes(x)),
                Match::Connlimit(x) => OwnedMatch::Plain(Match::Connlimit(x)),
                Match::Tos(x) => OwnedMatch::Plain(Match::Tos(x)),
                Match::Dscp(x) => OwnedMatch::Plain(Match::Dscp(x)),
                Match::Ecn(x) => OwnedMatch::Plain(Match::Ecn(x)),
                Match::Esp(x) => OwnedMatch::Plain(Match::Esp(x)),
                Match::Ah(x) => OwnedMatch::Plain(Match::Ah(x)),
                Match::PktType(x) => OwnedMatch::Plain(Match::PktType(x)),
                Match::Mac(x) => OwnedMatch::Plain(Match::Mac(x)),
                Match::TcpMss(x) => OwnedMatch::Plain(Match::TcpMss(x)),
                Match::Owner(x) => OwnedMatch::Plain(Match::Owner(x)),
                Match::Quota(x) => OwnedMatch::Plain(Match::Quota(x)),
                Match::Recent(x) => OwnedMatch::Recent(RecentMatch { name: "", ..x }, x.name.to_string()),
            })
            .collect();
        let target = match spec.target {
            Target::None => OwnedTarget::Plain(Target::None),
            Target::Accept => OwnedTarget::Plain(Target::Accept),
            Target::Drop => OwnedTarget::Plain(Target::Drop),
            Target::Return => OwnedTarget::Plain(Target::Return),
            Target::Reject(k) => OwnedTarget::Plain(Target::Reject(k)),
            Target::Mark { value, mask } => OwnedTarget::Plain(Target::Mark { value, mask }),
            Target::Ttl { mode, value } => OwnedTarget::Plain(Target::Ttl { mode, value }),
            Target::Tos { value, mask } => OwnedTarget::Plain(Target::Tos { value, mask }),
            Target::Dscp(d) => OwnedTarget::Plain(Target::Dscp(d)),
            Target::Classify(p) => OwnedTarget::Plain(Target::Classify(p)),
            Target::TcpMss(m) => OwnedTarget::Plain(Target::TcpMss(m)),
            Target::Nfqueue(q) => OwnedTarget::Plain(Target::Nfqueue(q)),
            Target::CtNotrack(a) => OwnedTarget::Plain(Target::CtNotrack(a)),
            Target::Ct(c) => OwnedTarget::Plain(Target::Ct(c)),
            Target::Nat(n) => OwnedTarget::Plain(Target::Nat(n)),
            Target::Connmark(c) => OwnedTarget::Plain(Target::Connmark(c)),
            Target::Jump(c) => OwnedTarget::Jump(c.to_string()),
            Target::Goto(c) => OwnedTarget::Goto(c.to_string()),
            Target::Log(l) => OwnedTarget::Log { level: l.level, flags: l.flags, prefix: l.prefix.to_string() },
            Target::Nflog(n) => OwnedTarget::Nflog(NflogSpec { prefix: "", ..n }, n.prefix.to_string()),
        };
        OwnedRule { base, matches, target }
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers as libxtables reads them
// ---------------------------------------------------------------------------------------------

/// `strtoumax(s, &end, 0)`: leading spaces, an optional sign, base by prefix. Returns the value
/// (saturated on overflow, with the overflow flag), the bytes consumed, and whether a minus sign
/// was seen. `None` when no digits were read.
fn strtoumax(s: &str, base0: u32) -> Option<(u128, usize, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || (9..=13).contains(&b[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let mut base = base0;
    if (base == 0 || base == 16)
        && i + 1 < b.len()
        && b[i] == b'0'
        && (b[i + 1] | 0x20) == b'x'
        && i + 2 < b.len()
        && (b[i + 2] as char).is_ascii_hexdigit()
    {
        base = 16;
        i += 2;
    } else if base == 0 {
        base = if i < b.len() && b[i] == b'0' { 8 } else { 10 };
    }
    let start = i;
    let mut v: u128 = 0;
    while i < b.len() {
        let d = match (b[i] as char).to_digit(base) {
            Some(d) => d,
            None => break,
        };
        v = (v * u128::from(base) + u128::from(d)).min(u128::from(u64::MAX) + 1);
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((v, i, neg))
}

/// libxtables' `xtables_strtoul(s, end, &v, min, max)` with base 0: `Some((value, rest))` when
/// a number in range was read; `rest` is what follows it. With `whole`, the number must be
/// the whole string. `max == 0` means no upper bound (as in C).
pub(crate) fn xt_strtoul(s: &str, min: u64, max: u64) -> Option<(u64, &str)> {
    xt_strtoul_base(s, min, max, 0)
}

fn xt_strtoul_base(s: &str, min: u64, max: u64, base: u32) -> Option<(u64, &str)> {
    let p = s.trim_start_matches(|c: char| c == ' ' || ('\t'..='\r').contains(&c));
    if p.starts_with('-') {
        return None;
    }
    let (v, used, neg) = strtoumax(s, base)?;
    if neg {
        return None;
    }
    if v > u128::from(u64::MAX) {
        return None; // ERANGE
    }
    let v = v as u64;
    if min <= v && (max == 0 || v <= max) {
        Some((v, &s[used..]))
    } else {
        None
    }
}

/// `xtables_strtoui(s, NULL, ...)`: the whole string is a number in range.
pub(crate) fn xt_strtoui_whole(s: &str, min: u64, max: u64) -> Option<u64> {
    match xt_strtoul(s, min, max) {
        Some((v, "")) => Some(v),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses, interfaces, ports, protocols
// ---------------------------------------------------------------------------------------------

/// libxtables' `__numeric_to_ipaddr`: dotted quad with each part in any C base; fewer than four
/// parts are completed with zeros (`10` is `10.0.0.0`) unless `is_mask`.
pub(crate) fn numeric_to_ipaddr(s: &str, is_mask: bool) -> Option<u32> {
    // iptables copies into a 20-byte buffer.
    let s: String = s.chars().take(19).collect();
    let mut bytes = [0u8; 4];
    let mut p = s.as_str();
    for i in 0..3 {
        match p.find('.') {
            None => {
                if is_mask {
                    return None;
                }
                bytes[i] = xt_strtoui_whole(p, 0, 255)? as u8;
                return Some(u32::from_be_bytes(bytes));
            }
            Some(dot) => {
                bytes[i] = xt_strtoui_whole(&p[..dot], 0, 255)? as u8;
                p = &p[dot + 1..];
            }
        }
    }
    bytes[3] = xt_strtoui_whole(p, 0, 255)? as u8;
    Some(u32::from_be_bytes(bytes))
}

/// glibc's `__inet_aton_exact` (what `getaddrinfo` reads a numeric IPv4 host with): one to four
/// parts, each decimal, octal (`0...`) or hexadecimal (`0x...`); the last part fills the
/// remaining bytes (`10` is `0.0.0.10`, `10.1` is `10.0.0.1`).
fn inet_aton_exact(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        let (digits, base) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        if digits.is_empty() && base != 8 {
            return None;
        }
        let mut v: u64 = 0;
        for c in digits.chars() {
            v = v * base + u64::from(c.to_digit(base as u32)?);
            if v > u64::from(u32::MAX) {
                return None;
            }
        }
        vals.push(v as u32);
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|&v| v > 0xff) {
        return None;
    }
    // The last part fills 32, 24, 16 or 8 bits.
    let bits = 40 - 8 * vals.len() as u32;
    if bits < 32 && *last >> bits != 0 {
        return None;
    }
    let mut a: u32 = 0;
    for (i, &v) in head.iter().enumerate() {
        a |= v << (24 - 8 * i);
    }
    Some(a | last)
}

/// libxtables' `xtopt_parse_host` (XTTYPE_HOST): `getaddrinfo` for IPv4, a numeric address as
/// [`inet_aton_exact`] reads it or a name.
fn xtopt_parse_host(s: &str) -> R<u32> {
    match inet_aton_exact(s).or_else(|| resolve_name(s)) {
        Some(a) => Ok(a),
        None => perr("getaddrinfo: Name or service not known\n"),
    }
}

/// libxtables' `xtopt_parse_hostmask` (XTTYPE_HOSTMASK): `host[/mask]`, the mask a prefix
/// length or a numeric address (one that is not a prefix leaves all 32 bits, as libxtables'
/// prefix length of -1 does). The address is returned as given, not masked.
fn xtopt_parse_hostmask(ext: &str, opt: &str, arg: &str) -> R<(u32, u32)> {
    let Some((host, m)) = arg.split_once('/') else { return Ok((xtopt_parse_host(arg)?, u32::MAX)) };
    let addr = xtopt_parse_host(host)?;
    let len = match xt_strtoui_whole(m, 0, 32) {
        Some(v) => v as u32,
        None => match inet_aton_exact(m) {
            Some(mask) if mask.leading_ones() + mask.trailing_zeros() == 32 => mask.leading_ones(),
            Some(_) => 32,
            None => {
                return perr(format!(
                    "{ext}: bad value for option \"--{opt}\", neither a valid network mask nor valid CIDR (0-32).\n"
                ))
            }
        },
    };
    Ok((addr, if len == 0 { 0 } else { u32::MAX << (32 - len) }))
}

fn parse_ipmask(mask: Option<&str>) -> R<u32> {
    let Some(m) = mask else { return Ok(u32::MAX) };
    if let Some(a) = numeric_to_ipaddr(m, true) {
        return Ok(a);
    }
    match xt_strtoui_whole(m, 0, 32) {
        Some(0) => Ok(0),
        Some(bits) => Ok(u32::MAX << (32 - bits)),
        None => perr(format!("invalid mask `{m}' specified")),
    }
}

fn is_c_space(c: char) -> bool {
    c == ' ' || ('\t'..='\r').contains(&c)
}

/// `xtables_ipparse_multiple`: a comma list of `address[/mask]`. Names are not resolved (there
/// is no resolver we could trust to answer like the C library's); a name is "not found".
pub(crate) fn ipparse_multiple(name: &str) -> R<Vec<Ipv4Net>> {
    let mut out = Vec::new();
    for item in name.split(',') {
        let item = item.trim_start_matches(is_c_space);
        if item.len() > 255 {
            return perr("Hostname too long");
        }
        let item = item.trim_end_matches(is_c_space);
        let (host, mask) = match item.rfind('/') {
            Some(p) => (&item[..p], parse_ipmask(Some(&item[p + 1..]))?),
            None => (item, parse_ipmask(None)?),
        };
        let host = if mask == 0 { "0.0.0.0" } else { host };
        let addr = match numeric_to_ipaddr(host, false) {
            Some(a) => a,
            None => match resolve_name(host) {
                Some(a) => a,
                None => return perr(format!("host/network `{host}' not found")),
            },
        };
        out.push(Ipv4Net { addr: addr & mask, mask });
    }
    Ok(out)
}

/// Host names iptables would find without a resolver: none we can answer for identically on
/// every machine, except `localhost`.
fn resolve_name(host: &str) -> Option<u32> {
    match host {
        "localhost" => Some(0x7f00_0001),
        _ => None,
    }
}

/// `xtables_parse_interface` (the warning, if any, is returned).
fn parse_interface(arg: &str) -> R<(Iface, Option<String>)> {
    if arg.len() + 1 > 16 {
        return perr(format!("interface name `{arg}' must be shorter than IFNAMSIZ (15)"));
    }
    let iface = Iface::parse(arg).unwrap_or_default();
    let mut warning = None;
    if !arg.ends_with('+') && arg.contains(['/', ' ']) {
        warning = Some(format!(
            "Warning: weird character in interface `{arg}' ('/' and ' ' are not allowed by the kernel).\n"
        ));
    }
    Ok((iface, warning))
}

/// `xtables_parse_protocol`.
pub(crate) fn parse_protocol(s: &str) -> R<u8> {
    if let Some(v) = xt_strtoui_whole(s, 0, 255) {
        return Ok(v as u8);
    }
    if s == "all" {
        return Ok(0);
    }
    if let Some(p) = names::protocol_number(s) {
        return Ok(p);
    }
    if let Some((_, p)) = names::CHAIN_PROTOS.iter().find(|(n, _)| *n == s) {
        return Ok(*p);
    }
    perr(format!("unknown protocol \"{s}\" specified"))
}

/// `xtables_parse_port(port, proto)`: a number or a service name.
fn parse_port(port: &str, proto: &str) -> R<u16> {
    if let Some(v) = xt_strtoui_whole(port, 0, 65535) {
        return Ok(v as u16);
    }
    if let Some(p) = names::service_port(port, proto) {
        return Ok(p);
    }
    perr(format!("invalid port/service `{port}' specified"))
}

/// libxtables' `xtables_getportbyname` (through `getaddrinfo`): a decimal number (taken modulo
/// 65536, as glibc does) or a service name of any protocol.
fn getportbyname(name: &str) -> Option<u16> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        let mut v: u64 = 0;
        for b in name.bytes() {
            v = v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        return Some(v as u16);
    }
    names::service_port(name, "tcp").or_else(|| names::service_port(name, "udp"))
}

// ---------------------------------------------------------------------------------------------
// getopt_long
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Req,
    Opt,
}

#[derive(Debug, Clone)]
struct LongOpt {
    name: &'static str,
    has_arg: HasArg,
    val: i32,
}

const fn lo(name: &'static str, has_arg: HasArg, val: char) -> LongOpt {
    LongOpt { name, has_arg, val: val as i32 }
}

/// iptables' own long options (`original_opts`).
const BASE_OPTS: &[LongOpt] = &[
    lo("append", HasArg::Req, 'A'),
    lo("delete", HasArg::Req, 'D'),
    lo("check", HasArg::Req, 'C'),
    lo("insert", HasArg::Req, 'I'),
    lo("replace", HasArg::Req, 'R'),
    lo("list", HasArg::Opt, 'L'),
    lo("list-rules", HasArg::Opt, 'S'),
    lo("flush", HasArg::Opt, 'F'),
    lo("zero", HasArg::Opt, 'Z'),
    lo("new-chain", HasArg::Req, 'N'),
    lo("delete-chain", HasArg::Opt, 'X'),
    lo("rename-chain", HasArg::Req, 'E'),
    lo("policy", HasArg::Req, 'P'),
    lo("source", HasArg::Req, 's'),
    lo("destination", HasArg::Req, 'd'),
    lo("src", HasArg::Req, 's'),
    lo("dst", HasArg::Req, 'd'),
    lo("protocol", HasArg::Req, 'p'),
    lo("in-interface", HasArg::Req, 'i'),
    lo("jump", HasArg::Req, 'j'),
    lo("table", HasArg::Req, 't'),
    lo("match", HasArg::Req, 'm'),
    lo("numeric", HasArg::No, 'n'),
    lo("out-interface", HasArg::Req, 'o'),
    lo("verbose", HasArg::No, 'v'),
    lo("wait", HasArg::Opt, 'w'),
    lo("wait-interval", HasArg::Opt, 'W'),
    lo("exact", HasArg::No, 'x'),
    lo("fragments", HasArg::No, 'f'),
    lo("version", HasArg::No, 'V'),
    lo("help", HasArg::Opt, 'h'),
    lo("line-numbers", HasArg::No, '0'),
    lo("modprobe", HasArg::Req, 'M'),
    lo("set-counters", HasArg::Req, 'c'),
    lo("goto", HasArg::Req, 'g'),
    lo("ipv4", HasArg::No, '4'),
    lo("ipv6", HasArg::No, '6'),
];

/// iptables' short options: "-:A:C:D:R:I:L::S::M:F::Z::N:X::E:P:Vh::o:p:s:d:j:i:fbvw::W::nt:m:xc:g:46".
fn short_opt(c: char) -> Option<HasArg> {
    Some(match c {
        'A' | 'C' | 'D' | 'R' | 'I' | 'M' | 'N' | 'E' | 'P' | 'o' | 'p' | 's' | 'd' | 'j' | 'i' | 't' | 'm' | 'c'
        | 'g' => HasArg::Req,
        'L' | 'S' | 'F' | 'Z' | 'X' | 'h' | 'w' | 'W' => HasArg::Opt,
        'V' | 'f' | 'b' | 'v' | 'n' | 'x' | '4' | '6' => HasArg::No,
        _ => return None,
    })
}

const GETOPT_MISSING: i32 = ':' as i32;
const GETOPT_UNKNOWN: i32 = '?' as i32;
const GETOPT_NONOPT: i32 = 1;

/// glibc's `getopt_long` in RETURN_IN_ORDER mode with `opterr = 0`.
struct Getopt {
    args: Vec<String>,
    optind: usize,
    /// Position in `args[optind]` of the next short option of a cluster.
    nextchar: Option<usize>,
    optarg: Option<String>,
}

impl Getopt {
    fn new(args: Vec<String>) -> Getopt {
        // args[0] is the program name, as in C.
        Getopt { args, optind: 1, nextchar: None, optarg: None }
    }

    fn argc(&self) -> usize {
        self.args.len()
    }

    /// The next option: `Some(val)`, or `None` at the end.
    /// `longopts`: the base options, then the extensions' (`ext`).
    fn next(&mut self, longopts: &[LongOpt], ext: &[LongOpt]) -> Option<i32> {
        self.optarg = None;
        if let Some(pos) = self.nextchar {
            return Some(self.short(pos));
        }
        let arg = self.args.get(self.optind)?;
        if arg == "--" {
            self.optind += 1;
            return None;
        }
        if !arg.starts_with('-') || arg.len() == 1 {
            self.optarg = Some(arg.clone());
            self.optind += 1;
            return Some(GETOPT_NONOPT);
        }
        if arg.starts_with("--") {
            // Lent out while the option is taken (it reads the next arguments).
            let arg = std::mem::take(&mut self.args[self.optind]);
            let at = self.optind;
            let val = self.long(&arg[2..], longopts, ext);
            self.args[at] = arg;
            return Some(val);
        }
        Some(self.short(1))
    }

    fn short(&mut self, pos: usize) -> i32 {
        let arg = &self.args[self.optind];
        let c = arg[pos..].chars().next().unwrap_or('\0');
        let next = pos + c.len_utf8();
        let at_end = next >= arg.len();
        if at_end {
            self.optind += 1;
            self.nextchar = None;
        } else {
            self.nextchar = Some(next);
        }
        let Some(has_arg) = short_opt(c) else {
            return GETOPT_UNKNOWN;
        };
        match has_arg {
            HasArg::No => {}
            HasArg::Opt => {
                if !at_end {
                    // The rest of the cluster is the argument (optind is still on it).
                    self.optarg = Some(self.args[self.optind][next..].to_string());
                    self.optind += 1;
                }
                self.nextchar = None;
            }
            HasArg::Req => {
                self.nextchar = None;
                if !at_end {
                    // The rest of the cluster is the argument (optind is still on it).
                    self.optarg = Some(self.args[self.optind][next..].to_string());
                    self.optind += 1;
                } else if self.optind == self.argc() {
                    return GETOPT_MISSING;
                } else {
                    self.optarg = Some(self.args[self.optind].clone());
                    self.optind += 1;
                }
            }
        }
        c as i32
    }

    fn long(&mut self, spec: &str, longopts: &[LongOpt], ext: &[LongOpt]) -> i32 {
        let (name, value) = match spec.find('=') {
            Some(p) => (&spec[..p], Some(&spec[p + 1..])),
            None => (spec, None),
        };
        let mut found = longopts.iter().chain(ext).find(|o| o.name == name);
        if found.is_none() {
            let mut ambiguous = false;
            for o in longopts.iter().chain(ext).filter(|o| o.name.starts_with(name)) {
                match found {
                    None => found = Some(o),
                    Some(f) if f.has_arg != o.has_arg || f.val != o.val => ambiguous = true,
                    Some(_) => {}
                }
            }
            if ambiguous {
                self.optind += 1;
                return GETOPT_UNKNOWN;
            }
        }
        self.optind += 1;
        let Some(o) = found else {
            return GETOPT_UNKNOWN;
        };
        match value {
            Some(v) => {
                if o.has_arg == HasArg::No {
                    return GETOPT_UNKNOWN;
                }
                self.optarg = Some(v.to_string());
            }
            None => {
                if o.has_arg == HasArg::Req {
                    if self.optind < self.argc() {
                        self.optarg = Some(self.args[self.optind].clone());
                        self.optind += 1;
                    } else {
                        return GETOPT_MISSING;
                    }
                }
            }
        }
        o.val
    }

    /// iptables' `xs_has_arg`: the next argument exists and is not an option or `!`.
    fn has_arg(&self) -> bool {
        self.optind < self.argc() && {
            let a = &self.args[self.optind];
            !a.starts_with('-') && !a.starts_with('!')
        }
    }

    fn take_arg(&mut self) -> String {
        let a = self.args[self.optind].clone();
        self.optind += 1;
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

/// The extensions rnfctl supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    Tcp,
    Udp,
    Icmp,
    Multiport,
    Comment,
    Mark,
    Statistic,
    Limit,
    IpRange,
    Length,
    AddrType,
    Ttl,
    Conntrack,
    State,
    Connmark,
    Recent,
    Connbytes,
    Connlimit,
    Tos,
    Dscp,
    Ecn,
    Esp,
    Ah,
    PktType,
    Mac,
    TcpMss,
    Owner,
    Quota,
}

impl Ext {
    fn find(name: &str) -> Option<Ext> {
        Some(match name {
            "tcp" => Ext::Tcp,
            "udp" => Ext::Udp,
            "icmp" => Ext::Icmp,
            "multiport" => Ext::Multiport,
            "comment" => Ext::Comment,
            "mark" => Ext::Mark,
            "statistic" => Ext::Statistic,
            "limit" => Ext::Limit,
            "iprange" => Ext::IpRange,
            "length" => Ext::Length,
            "addrtype" => Ext::AddrType,
            "ttl" => Ext::Ttl,
            "conntrack" => Ext::Conntrack,
            "state" => Ext::State,
            "connmark" => Ext::Connmark,
            "recent" => Ext::Recent,
            "connbytes" => Ext::Connbytes,
            "connlimit" => Ext::Connlimit,
            "tos" => Ext::Tos,
            "dscp" => Ext::Dscp,
            "ecn" => Ext::Ecn,
            "esp" => Ext::Esp,
            "ah" => Ext::Ah,
            "pkttype" => Ext::PktType,
            "mac" => Ext::Mac,
            "tcpmss" => Ext::TcpMss,
            "owner" => Ext::Owner,
            "quota" => Ext::Quota,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ext::Tcp => "tcp",
            Ext::Udp => "udp",
            Ext::Icmp => "icmp",
            Ext::Multiport => "multiport",
            Ext::Comment => "comment",
            Ext::Mark => "mark",
            Ext::Statistic => "statistic",
            Ext::Limit => "limit",
            Ext::IpRange => "iprange",
            Ext::Length => "length",
            Ext::AddrType => "addrtype",
            Ext::Ttl => "ttl",
            Ext::Conntrack => "conntrack",
            Ext::State => "state",
            Ext::Connmark => "connmark",
            Ext::Recent => "recent",
            Ext::Connbytes => "connbytes",
            Ext::Connlimit => "connlimit",
            Ext::Tos => "tos",
            Ext::Dscp => "dscp",
            Ext::Ecn => "ecn",
            Ext::Esp => "esp",
            Ext::Ah => "ah",
            Ext::PktType => "pkttype",
            Ext::Mac => "mac",
            Ext::TcpMss => "tcpmss",
            Ext::Owner => "owner",
            Ext::Quota => "quota",
        }
    }

    /// The extension's options: (name, takes an argument, id).
    fn opts(self) -> &'static [XOpt] {
        match self {
            Ext::Tcp => TCP_OPTS,
            Ext::Udp => UDP_OPTS,
            Ext::Icmp => ICMP_OPTS,
            Ext::Multiport => MULTIPORT_OPTS,
            Ext::Comment => COMMENT_OPTS,
            Ext::Mark => MARK_OPTS,
            Ext::Statistic => STATISTIC_OPTS,
            Ext::Limit => LIMIT_OPTS,
            Ext::IpRange => IPRANGE_OPTS,
            Ext::Length => LENGTH_OPTS,
            Ext::AddrType => ADDRTYPE_OPTS,
            Ext::Ttl => TTL_OPTS,
            Ext::Conntrack => CONNTRACK_OPTS,
            Ext::State => STATE_OPTS,
            Ext::Connmark => MARK_OPTS,
            Ext::Recent => RECENT_OPTS,
            Ext::Connbytes => CONNBYTES_OPTS,
            Ext::Connlimit => CONNLIMIT_OPTS,
            Ext::Tos => TOS_OPTS,
            Ext::Dscp => DSCP_OPTS,
            Ext::Ecn => ECN_OPTS,
            Ext::Esp => ESP_OPTS,
            Ext::Ah => AH_OPTS,
            Ext::PktType => PKTTYPE_OPTS,
            Ext::Mac => MAC_OPTS,
            Ext::TcpMss => TCPMSS_OPTS,
            Ext::Owner => OWNER_OPTS,
            Ext::Quota => QUOTA_OPTS,
        }
    }
}

/// The targets rnfctl supports besides the standard verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TExt {
    Standard,
    Reject,
    Log,
    Mark,
    Ttl,
    Tos,
    Dscp,
    Classify,
    TcpMss,
    Nflog,
    Nfqueue,
    Ct,
    Connmark,
    Nat(rnf_engine::rule::NatKind),
}

impl TExt {
    fn find(name: &str) -> Option<TExt> {
        Some(match name {
            "ACCEPT" | "DROP" | "RETURN" | "QUEUE" => TExt::Standard,
            "REJECT" => TExt::Reject,
            "LOG" => TExt::Log,
            "MARK" => TExt::Mark,
            "TTL" => TExt::Ttl,
            "TOS" => TExt::Tos,
            "DSCP" => TExt::Dscp,
            "CLASSIFY" => TExt::Classify,
            "TCPMSS" => TExt::TcpMss,
            "NFLOG" => TExt::Nflog,
            "NFQUEUE" => TExt::Nfqueue,
            "CT" | "NOTRACK" => TExt::Ct,
            "CONNMARK" => TExt::Connmark,
            "DNAT" => TExt::Nat(NatKind::Dnat),
            "SNAT" => TExt::Nat(NatKind::Snat),
            "MASQUERADE" => TExt::Nat(NatKind::Masquerade),
            "REDIRECT" => TExt::Nat(NatKind::Redirect),
            "NETMAP" => TExt::Nat(NatKind::Netmap),
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            TExt::Standard => "standard",
            TExt::Reject => "REJECT",
            TExt::Log => "LOG",
            TExt::Mark => "MARK",
            TExt::Ttl => "TTL",
            TExt::Tos => "TOS",
            TExt::Dscp => "DSCP",
            TExt::Classify => "CLASSIFY",
            TExt::TcpMss => "TCPMSS",
            TExt::Nflog => "NFLOG",
            TExt::Nfqueue => "NFQUEUE",
            TExt::Ct => "CT",
            TExt::Connmark => "CONNMARK",
            TExt::Nat(k) => k.name(),
        }
    }

    fn opts(self) -> &'static [XOpt] {
        match self {
            TExt::Standard => &[],
            TExt::Reject => REJECT_OPTS,
            TExt::Log => LOG_OPTS,
            TExt::Mark => MARKT_OPTS,
            TExt::Ttl => TTLT_OPTS,
            TExt::Tos => TOST_OPTS,
            TExt::Dscp => DSCPT_OPTS,
            TExt::Classify => CLASSIFY_OPTS,
            TExt::TcpMss => TCPMSST_OPTS,
            TExt::Nflog => NFLOG_OPTS,
            TExt::Nfqueue => NFQUEUE_OPTS,
            TExt::Ct => CT_OPTS,
            TExt::Connmark => CONNMARKT_OPTS,
            TExt::Nat(NatKind::Dnat) => DNAT_OPTS,
            TExt::Nat(NatKind::Snat) => SNAT_OPTS,
            TExt::Nat(NatKind::Masquerade) => MASQ_OPTS,
            TExt::Nat(NatKind::Redirect) => REDIRECT_OPTS,
            TExt::Nat(NatKind::Netmap) => NETMAP_OPTS,
        }
    }
}

/// How an option's argument is read (a subset of libxtables' XTTYPE_*), plus its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XType {
    None,
    /// Old-style option (parsed by the extension itself, no framework checks).
    Old,
    Str,
    U8,
    U16Rc,
    U32,
    Double,
    MarkMask,
    PortRc,
    SyslogLevel,
}

const INVERT: u8 = 1;
const MAND: u8 = 2;

#[derive(Debug, Clone, Copy)]
struct XOpt {
    name: &'static str,
    id: u32,
    ty: XType,
    flags: u8,
    min: u64,
    max: u64,
    /// Options this one excludes (bits of ids).
    excl: u32,
    /// Options this one requires.
    also: u32,
}

const fn xo(name: &'static str, id: u32, ty: XType, flags: u8) -> XOpt {
    XOpt { name, id, ty, flags, min: 0, max: 0, excl: 0, also: 0 }
}

const TCP_OPTS: &[XOpt] = &[
    xo("source-port", 1, XType::Old, 0),
    xo("sport", 1, XType::Old, 0),
    xo("destination-port", 2, XType::Old, 0),
    xo("dport", 2, XType::Old, 0),
    xo("syn", 3, XType::None, 0),
    xo("tcp-flags", 4, XType::Old, 0),
    xo("tcp-option", 5, XType::Old, 0),
];
const UDP_OPTS: &[XOpt] = &[
    xo("source-port", 0, XType::PortRc, INVERT),
    xo("sport", 0, XType::PortRc, INVERT),
    xo("destination-port", 1, XType::PortRc, INVERT),
    xo("dport", 1, XType::PortRc, INVERT),
];
const ICMP_OPTS: &[XOpt] = &[xo("icmp-type", 0, XType::Str, INVERT | MAND)];
const MULTIPORT_ANY: u32 = 0b111;
const MULTIPORT_OPTS: &[XOpt] = &[
    XOpt { excl: MULTIPORT_ANY, ..xo("source-ports", 0, XType::Str, INVERT) },
    XOpt { excl: MULTIPORT_ANY, ..xo("sports", 0, XType::Str, INVERT) },
    XOpt { excl: MULTIPORT_ANY, ..xo("destination-ports", 1, XType::Str, INVERT) },
    XOpt { excl: MULTIPORT_ANY, ..xo("dports", 1, XType::Str, INVERT) },
    XOpt { excl: MULTIPORT_ANY, ..xo("ports", 2, XType::Str, INVERT) },
];
/// (A longer comment is cut to 255 bytes, as iptables copies it into its 256-byte field.)
const COMMENT_OPTS: &[XOpt] = &[xo("comment", 0, XType::Str, MAND)];
const MARK_OPTS: &[XOpt] = &[xo("mark", 0, XType::MarkMask, MAND | INVERT)];
const STAT_PROB: u32 = 1 << 1;
const STAT_EVERY: u32 = 1 << 2;
const STAT_PACKET: u32 = 1 << 3;
const STATISTIC_OPTS: &[XOpt] = &[
    xo("mode", 0, XType::Str, MAND),
    XOpt { min: 0, max: 1, excl: STAT_EVERY | STAT_PACKET, ..xo("probability", 1, XType::Double, INVERT) },
    XOpt { min: 1, excl: STAT_PROB, also: STAT_PACKET, ..xo("every", 2, XType::U32, INVERT) },
    XOpt { excl: STAT_PROB, also: STAT_EVERY, ..xo("packet", 3, XType::U32, 0) },
];
const LIMIT_OPTS: &[XOpt] =
    &[xo("limit", 0, XType::Str, 0), XOpt { min: 0, max: 10000, ..xo("limit-burst", 1, XType::U32, 0) }];
const IPRANGE_OPTS: &[XOpt] = &[xo("src-range", 0, XType::Str, INVERT), xo("dst-range", 1, XType::Str, INVERT)];
const LENGTH_OPTS: &[XOpt] = &[xo("length", 0, XType::U16Rc, MAND | INVERT)];
const ADDRTYPE_OPTS: &[XOpt] = &[
    xo("src-type", 0, XType::Str, INVERT),
    xo("dst-type", 1, XType::Str, INVERT),
    XOpt { excl: 1 << 3, ..xo("limit-iface-in", 2, XType::None, 0) },
    XOpt { excl: 1 << 2, ..xo("limit-iface-out", 3, XType::None, 0) },
];
const TTL_ANY: u32 = 0b111;
const TTL_OPTS: &[XOpt] = &[
    XOpt { excl: TTL_ANY, ..xo("ttl-lt", 1, XType::U8, 0) },
    XOpt { excl: TTL_ANY, ..xo("ttl-gt", 2, XType::U8, 0) },
    XOpt { excl: TTL_ANY, ..xo("ttl-eq", 0, XType::U8, INVERT) },
    XOpt { excl: TTL_ANY, ..xo("ttl", 0, XType::U8, 0) },
];
// libxt_conntrack (revision 3): ids O_CTSTATE .. O_CTDIR.
const CONNTRACK_OPTS: &[XOpt] = &[
    xo("ctstate", 0, XType::Str, INVERT),
    xo("ctproto", 1, XType::Str, INVERT),
    xo("ctorigsrc", 2, XType::Str, INVERT),
    xo("ctorigdst", 3, XType::Str, INVERT),
    xo("ctreplsrc", 4, XType::Str, INVERT),
    xo("ctrepldst", 5, XType::Str, INVERT),
    xo("ctstatus", 10, XType::Str, INVERT),
    xo("ctexpire", 11, XType::Str, INVERT),
    xo("ctorigsrcport", 6, XType::PortRc, INVERT),
    xo("ctorigdstport", 7, XType::PortRc, INVERT),
    xo("ctreplsrcport", 8, XType::PortRc, INVERT),
    xo("ctrepldstport", 9, XType::PortRc, INVERT),
    xo("ctdir", 12, XType::Str, 0),
];
// libxt_recent revision 1: O_SET 0, RCHECK 1, UPDATE 2, REMOVE 3, SECONDS 4, REAP 5, HITCOUNT 6,
// RTTL 7, NAME 8, RSOURCE 9, RDEST 10, MASK 11.
const RECENT_ANY_OP: u32 = 0b1111;
const RECENT_OPTS: &[XOpt] = &[
    XOpt { excl: RECENT_ANY_OP, ..xo("set", 0, XType::None, INVERT) },
    XOpt { excl: RECENT_ANY_OP, ..xo("rcheck", 1, XType::None, INVERT) },
    XOpt { excl: RECENT_ANY_OP, ..xo("update", 2, XType::None, INVERT) },
    XOpt { excl: RECENT_ANY_OP, ..xo("remove", 3, XType::None, INVERT) },
    XOpt { min: 1, ..xo("seconds", 4, XType::U32, 0) },
    XOpt { also: 1 << 4, ..xo("reap", 5, XType::None, 0) },
    xo("hitcount", 6, XType::U32, 0),
    XOpt { excl: 0b1001, ..xo("rttl", 7, XType::None, 0) },
    xo("name", 8, XType::Str, 0),
    xo("rsource", 9, XType::None, 0),
    xo("rdest", 10, XType::None, 0),
    xo("mask", 11, XType::Str, 0),
];
// libxt_connlimit (revision 1): O_UPTO 0, O_ABOVE 1, O_MASK 2, O_SADDR 3, O_DADDR 4.
const CONNLIMIT_OPTS: &[XOpt] = &[
    XOpt { excl: 1 << 1, ..xo("connlimit-upto", 0, XType::U32, INVERT) },
    XOpt { excl: 1 << 0, ..xo("connlimit-above", 1, XType::U32, INVERT) },
    xo("connlimit-mask", 2, XType::Str, 0),
    XOpt { excl: 1 << 4, ..xo("connlimit-saddr", 3, XType::None, 0) },
    XOpt { excl: 1 << 3, ..xo("connlimit-daddr", 4, XType::None, 0) },
];
// libxt_connbytes.
const CONNBYTES_OPTS: &[XOpt] = &[
    xo("connbytes", 0, XType::Str, MAND | INVERT),
    xo("connbytes-dir", 1, XType::Str, MAND),
    xo("connbytes-mode", 2, XType::Str, MAND),
];
// The state match as libxt_conntrack registers it.
const STATE_OPTS: &[XOpt] = &[xo("state", 0, XType::Str, MAND | INVERT)];
const REJECT_OPTS: &[XOpt] = &[xo("reject-with", 0, XType::Str, 0)];
const LOG_OPTS: &[XOpt] = &[
    xo("log-level", 0, XType::SyslogLevel, 0),
    XOpt { min: 1, ..xo("log-prefix", 1, XType::Str, 0) },
    xo("log-tcp-sequence", 2, XType::None, 0),
    xo("log-tcp-options", 3, XType::None, 0),
    xo("log-ip-options", 4, XType::None, 0),
    xo("log-uid", 5, XType::None, 0),
    xo("log-macdecode", 6, XType::None, 0),
];
const MARKT_ANY: u32 = 0b11111;
const MARKT_OPTS: &[XOpt] = &[
    XOpt { excl: MARKT_ANY, ..xo("set-xmark", 0, XType::MarkMask, 0) },
    XOpt { excl: MARKT_ANY, ..xo("set-mark", 1, XType::MarkMask, 0) },
    XOpt { excl: MARKT_ANY, ..xo("and-mark", 2, XType::U32, 0) },
    XOpt { excl: MARKT_ANY, ..xo("or-mark", 3, XType::U32, 0) },
    XOpt { excl: MARKT_ANY, ..xo("xor-mark", 4, XType::U32, 0) },
];

// libxt_tos (revision 1): XTTYPE_TOSMASK, a symbol's mask 0x3f.
const TOS_OPTS: &[XOpt] = &[XOpt { max: 0x3F, ..xo("tos", 0, XType::Str, INVERT | MAND) }];
// libxt_dscp: O_DSCP 0, O_DSCP_CLASS 1, each excluding the other.
const DSCP_OPTS: &[XOpt] = &[
    XOpt { max: MAX_DSCP as u64, excl: 1 << 1, ..xo("dscp", 0, XType::U8, INVERT) },
    XOpt { excl: 1 << 0, ..xo("dscp-class", 1, XType::Str, INVERT) },
];
// libxt_ecn: O_ECN_TCP_CWR 0, O_ECN_TCP_ECE 1, O_ECN_IP_ECT 2.
const ECN_OPTS: &[XOpt] = &[
    xo("ecn-tcp-cwr", 0, XType::None, INVERT),
    xo("ecn-tcp-ece", 1, XType::None, INVERT),
    XOpt { max: 3, ..xo("ecn-ip-ect", 2, XType::U8, INVERT) },
];
// libxt_esp, libipt_ah: XTTYPE_UINT32RC.
const ESP_OPTS: &[XOpt] = &[xo("espspi", 0, XType::Str, INVERT)];
const AH_OPTS: &[XOpt] = &[xo("ahspi", 0, XType::Str, INVERT)];
const PKTTYPE_OPTS: &[XOpt] = &[xo("pkt-type", 0, XType::Str, MAND | INVERT)];
// XTTYPE_ETHERMAC.
const MAC_OPTS: &[XOpt] = &[xo("mac-source", 0, XType::Str, MAND | INVERT)];
const TCPMSS_OPTS: &[XOpt] = &[xo("mss", 0, XType::U16Rc, MAND | INVERT)];
const QUOTA_OPTS: &[XOpt] = &[xo("quota", 0, XType::U32, MAND | INVERT)];
// libxt_owner revision 1: O_USER 0, O_GROUP 1, O_SOCK_EXISTS 2, O_SUPPL_GROUPS 6.
const OWNER_OPTS: &[XOpt] = &[
    xo("uid-owner", 0, XType::Str, INVERT),
    xo("gid-owner", 1, XType::Str, INVERT),
    xo("socket-exists", 2, XType::None, INVERT),
    xo("suppl-groups", 6, XType::None, 0),
];

// libxt_TOS (revision 1): O_SET_TOS 0, O_AND_TOS 1, O_OR_TOS 2, O_XOR_TOS 3, all exclusive.
const TOST_ANY: u32 = 0b1111;
const TOST_OPTS: &[XOpt] = &[
    XOpt { max: 0x3F, excl: TOST_ANY, ..xo("set-tos", 0, XType::Str, 0) },
    XOpt { excl: TOST_ANY, ..xo("and-tos", 1, XType::U8, 0) },
    XOpt { excl: TOST_ANY, ..xo("or-tos", 2, XType::U8, 0) },
    XOpt { excl: TOST_ANY, ..xo("xor-tos", 3, XType::U8, 0) },
];
// libxt_DSCP: O_SET_DSCP 0, O_SET_DSCP_CLASS 1.
const DSCPT_OPTS: &[XOpt] = &[
    XOpt { max: MAX_DSCP as u64, excl: 1 << 1, ..xo("set-dscp", 0, XType::U8, 0) },
    XOpt { excl: 1 << 0, ..xo("set-dscp-class", 1, XType::Str, 0) },
];
const CLASSIFY_OPTS: &[XOpt] = &[xo("set-class", 0, XType::Str, MAND)];
// libxt_NFLOG: O_GROUP 0, O_PREFIX 1, O_RANGE 2, O_SIZE 3 (each excludes the other),
// O_THRESHOLD 4.
const NFLOG_OPTS: &[XOpt] = &[
    XOpt { max: 0xFFFF, ..xo("nflog-group", 0, XType::U32, 0) },
    XOpt { min: 1, ..xo("nflog-prefix", 1, XType::Str, 0) },
    XOpt { excl: 1 << 3, ..xo("nflog-range", 2, XType::U32, 0) },
    XOpt { excl: 1 << 2, ..xo("nflog-size", 3, XType::U32, 0) },
    XOpt { max: 0xFFFF, ..xo("nflog-threshold", 4, XType::U32, 0) },
];
// libxt_NFQUEUE (revision 3): O_QUEUE_NUM 0, O_QUEUE_BALANCE 1 (each excludes the other),
// O_QUEUE_BYPASS 2, O_QUEUE_CPU_FANOUT 3 (needs a balance).
const NFQUEUE_OPTS: &[XOpt] = &[
    XOpt { max: 0xFFFF, excl: 1 << 1, ..xo("queue-num", 0, XType::U32, 0) },
    XOpt { max: 0xFFFE, excl: 1 << 0, ..xo("queue-balance", 1, XType::U16Rc, 0) },
    xo("queue-bypass", 2, XType::None, 0),
    XOpt { also: 1 << 1, ..xo("queue-cpu-fanout", 3, XType::None, 0) },
];
// libxt_TCPMSS (IPv4): O_SET_MSS 0 (at most 65535 - 20), O_CLAMP_MSS 1.
const TCPMSST_OPTS: &[XOpt] =
    &[XOpt { max: 65535 - 20, ..xo("set-mss", 0, XType::U16Rc, 0) }, xo("clamp-mss-to-pmtu", 1, XType::None, 0)];

// libxt_CONNMARK revision 2: ids as its O_* (set-mark 0, save 1, restore 2, and 3, or 4, xor 5,
// left-shift 6, right-shift 7, set-xmark 8, ctmask 9, nfmask 10, mask 11).
const CONNMARKT_ANY: u32 = 0b1_0011_1111;
const CONNMARKT_MASK: u32 = 1 << 11;
const CONNMARKT_OPTS: &[XOpt] = &[
    XOpt { excl: CONNMARKT_ANY, ..xo("set-xmark", 8, XType::MarkMask, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("set-mark", 0, XType::MarkMask, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("and-mark", 3, XType::U32, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("or-mark", 4, XType::U32, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("xor-mark", 5, XType::U32, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("save-mark", 1, XType::None, 0) },
    XOpt { excl: CONNMARKT_ANY, ..xo("restore-mark", 2, XType::None, 0) },
    XOpt { min: 0, max: 32, ..xo("left-shift-mark", 6, XType::U8, 0) },
    XOpt { min: 0, max: 32, ..xo("right-shift-mark", 7, XType::U8, 0) },
    XOpt { excl: CONNMARKT_MASK, ..xo("ctmask", 9, XType::U32, 0) },
    XOpt { excl: CONNMARKT_MASK, ..xo("nfmask", 10, XType::U32, 0) },
    XOpt { excl: (1 << 9) | (1 << 10), ..xo("mask", 11, XType::U32, 0) },
];

// libipt_TTL: one of the three, a value 0-255 (1-255 to add or take).
const TTLT_OPTS: &[XOpt] = &[
    XOpt { excl: TTL_ANY, ..xo("ttl-set", 0, XType::U8, 0) },
    XOpt { excl: TTL_ANY, min: 1, ..xo("ttl-dec", 2, XType::U8, 0) },
    XOpt { excl: TTL_ANY, min: 1, ..xo("ttl-inc", 1, XType::U8, 0) },
];

// libxt_CT (revision 2; the ids are libxt_CT's, so the exclusions are its F_* bits). rust_nf
// has the ftp helper and no timeout policies.
// iptables 1.8.9 lets --notrack go with the others (the kernel then ignores them).
const CT_OPTS: &[XOpt] = &[
    xo("notrack", 0, XType::None, 0),
    xo("zone", 1, XType::Str, 0),
    xo("ctevents", 2, XType::Str, 0),
    xo("expevents", 3, XType::Str, 0),
    xo("helper", 4, XType::Str, 0),
    xo("timeout", 5, XType::Str, 0),
    xo("zone-orig", 6, XType::Str, 0),
    xo("zone-reply", 7, XType::Str, 0),
];

// libxt_DNAT/SNAT/MASQUERADE/REDIRECT, libipt_NETMAP (revision 2 of the NAT targets).
const DNAT_OPTS: &[XOpt] =
    &[xo("to-destination", 0, XType::Str, MAND), xo("random", 1, XType::None, 0), xo("persistent", 2, XType::None, 0)];
const SNAT_OPTS: &[XOpt] = &[
    xo("to-source", 0, XType::Str, MAND),
    xo("random", 1, XType::None, 0),
    xo("persistent", 2, XType::None, 0),
    xo("random-fully", 3, XType::None, 0),
];
const MASQ_OPTS: &[XOpt] =
    &[xo("to-ports", 0, XType::Str, 0), xo("random", 1, XType::None, 0), xo("random-fully", 3, XType::None, 0)];
const REDIRECT_OPTS: &[XOpt] = &[xo("to-ports", 0, XType::Str, 0), xo("random", 1, XType::None, 0)];
const NETMAP_OPTS: &[XOpt] = &[xo("to", 0, XType::Str, MAND)];

/// glibc's `inet_pton(AF_INET, s)`: exactly four decimal parts of 0-255, no leading zeros.
fn inet_pton4(s: &str) -> Option<u32> {
    let mut parts = [0u32; 4];
    let mut n = 0;
    let mut saw_digit = false;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            if saw_digit && parts[n - 1] == 0 {
                return None;
            }
            if !saw_digit {
                if n == 4 {
                    return None;
                }
                n += 1;
                saw_digit = true;
            }
            let v = parts[n - 1] * 10 + u32::from(b - b'0');
            if v > 255 {
                return None;
            }
            parts[n - 1] = v;
        } else if b == b'.' && saw_digit {
            if n == 4 {
                return None;
            }
            saw_digit = false;
        } else {
            return None;
        }
    }
    (n == 4 && saw_digit).then(|| parts.iter().fold(0, |a, p| a << 8 | p))
}

/// `parse_to` of libxt_NAT (iptables 1.8.9): `[ip[-ip]][:port[-port[/base]]]`. One colon
/// starts the ports (two make it an IPv6 address, refused below); a colon as the first or the
/// third character leaves no address (iptables' test for `[]:port`, applied to any text);
/// addresses are read with `inet_pton`. `portok`: the rule's protocol so far has ports.
fn parse_nat_to(name: &str, arg: &str, portok: bool, r: &mut rnf_engine::nat::NatRange) -> R<()> {
    use rnf_engine::nat::range;
    if arg.contains('[') {
        return perr("Invalid address format");
    }
    let colon = arg.find(':').filter(|&c| !arg[c + 1..].contains(':'));
    let addrs = match colon {
        Some(c) => {
            parse_nat_ports(&arg[c + 1..], portok, r)?;
            if c == 0 || c == 2 {
                return Ok(());
            }
            &arg[..c]
        }
        None => arg,
    };
    let (lo, hi) = match addrs.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (addrs, None),
    };
    let Some(lo_ip) = inet_pton4(lo) else { return perr(format!("Bad IP address \"{lo}\"")) };
    let hi_ip = match hi {
        Some(h) => match inet_pton4(h) {
            Some(v) => v,
            None => return perr(format!("Bad IP address \"{h}\"")),
        },
        None => lo_ip,
    };
    // iptables and the kernel take a reversed range (nf_nat then maps into nonsense); the rule
    // model cannot carry one, so it is refused here.
    if hi_ip < lo_ip {
        return perr(format!("{name}: bad IP range \"{addrs}\""));
    }
    r.flags |= range::MAP_IPS;
    r.min_addr = lo_ip;
    r.max_addr = hi_ip;
    Ok(())
}

/// `parse_ports` of libxt_NAT (iptables 1.8.9): `port[-port[/base]]`. The first port is a
/// number 0-65535 (any C base) at the start of the text, else the whole text as a service
/// name; the last port a number only; the base a number 1-65535 (what follows it is ignored)
/// or a service name. `portok`: the rule's protocol, as given before this option, is TCP,
/// UDP, SCTP, DCCP or ICMP (its inversion does not matter).
fn parse_nat_ports(arg: &str, portok: bool, r: &mut rnf_engine::nat::NatRange) -> R<()> {
    use rnf_engine::nat::range;
    if !portok {
        return perr("Need TCP, UDP, SCTP or DCCP with port specification");
    }
    let service = |s: &str| names::service_port(s, "tcp").or_else(|| names::service_port(s, "udp"));
    let bad = |a: &str| perr(format!("Port `{a}' not valid"));
    r.flags |= range::PROTO_SPECIFIED;
    let (lo, rest) = match xt_strtoul(arg, 0, 65535) {
        Some((v, rest)) => (v as u16, rest),
        None => match service(arg) {
            Some(p) => (p, ""),
            None => return bad(arg),
        },
    };
    let hi_arg = match rest.chars().next() {
        None => {
            r.min_port = lo;
            r.max_port = lo;
            return Ok(());
        }
        Some('-') => &rest[1..],
        Some(':') => return perr("Invalid port:port syntax - use dash"),
        Some(_) => return perr(format!("Garbage after port value: `{rest}'")),
    };
    let Some((hi, rest)) = xt_strtoul(hi_arg, 0, 65535) else { return bad(hi_arg) };
    let hi = hi as u16;
    if hi < lo {
        return perr(format!("Port range `{hi_arg}' funky"));
    }
    r.min_port = lo;
    r.max_port = hi;
    let base_arg = match rest.chars().next() {
        None => return Ok(()),
        Some('/') => &rest[1..],
        Some(_) => return perr(format!("Garbage after port range: `{rest}'")),
    };
    let base = match xt_strtoul(base_arg, 1, 65535) {
        Some((v, _)) => v as u16,
        None => match service(base_arg) {
            Some(p) => p,
            None => return bad(base_arg),
        },
    };
    r.flags |= range::PROTO_OFFSET;
    r.base_port = base;
    Ok(())
}

/// `xtopt_parse_tosmask`: `value[/mask]` (numbers 0-255, the mask 0xff when not given) or
/// a TOS symbol (case-insensitive), whose mask is the option's `max`.
fn parse_tosmask(o: &XOpt, arg: &str) -> R<(u8, u8)> {
    let illegal = || perr(format!("Illegal value: \"{arg}\""));
    if let Some((value, rest)) = xt_strtoul(arg, 0, 255) {
        // tos_parse_numeric.
        let (mask, end) = match rest.strip_prefix('/') {
            Some(m) => match xt_strtoul(m, 0, 255) {
                Some((k, end)) => (k, end),
                None => return illegal(),
            },
            None => (0xFF, rest),
        };
        if !end.is_empty() {
            return illegal();
        }
        return Ok((value as u8, mask as u8));
    }
    match names::TOS_SYMBOLS.iter().find(|(_, n)| n.eq_ignore_ascii_case(arg)) {
        Some((v, _)) => Ok((*v, o.max as u8)),
        None => perr(format!("Symbolic name \"{arg}\" is unknown")),
    }
}

/// libxt_owner's `owner_parse_range`: `min[-max]` or `min[:max]`, numbers up to 2^32 - 2.
fn owner_parse_range(arg: &str, opt: &str) -> R<(u32, u32)> {
    let bad = || perr(format!("owner: Bad value for \"{opt}\" option: \"{arg}\""));
    let Some((lo, rest)) = xt_strtoul(arg, 0, u64::from(u32::MAX - 1)) else { return bad() };
    let (hi, rest) = match rest.strip_prefix(['-', ':']) {
        Some(h) => match xt_strtoul(h, 0, u64::from(u32::MAX - 1)) {
            Some(v) => v,
            None => return bad(),
        },
        None => (lo, rest),
    };
    if !rest.is_empty() {
        return bad();
    }
    if hi < lo {
        // The kernel refuses it (owner_check: EINVAL).
        return perr(format!("rnfctl: reversed {opt} range {lo}-{hi} is not supported"));
    }
    Ok((lo as u32, hi as u32))
}

/// dscp_helper's `class_to_dscp`: the first class whose name starts `arg` (case-insensitive).
fn class_to_dscp(arg: &str) -> R<u8> {
    let a = arg.as_bytes();
    match names::DS_CLASSES.iter().find(|(n, _)| a.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n.as_bytes()))) {
        Some((_, d)) => Ok(*d),
        None => perr(format!("Invalid DSCP value `{arg}'")),
    }
}

/// libxt_pkttype's `parse_pkttype` (case-insensitive).
fn parse_pkttype(arg: &str) -> R<u8> {
    match names::PKT_TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(arg)) {
        Some((_, t)) => Ok(*t),
        None => perr(format!("Bad packet type '{arg}'")),
    }
}

/// `strtoul(s, &end, 16)` as a C `unsigned` takes it: the value and the bytes read (0 when
/// there is no number).
fn strtoul_hex(s: &str) -> (u32, usize) {
    match strtoumax(s, 16) {
        Some((v, used, neg)) => {
            let v = v.min(u128::from(u64::MAX)) as u64;
            ((if neg { v.wrapping_neg() } else { v }) as u32, used)
        }
        None => (0, 0),
    }
}

/// `xtopt_parse_ethermac`: six hexadecimal parts of at most two characters, `:` between.
fn parse_ethermac(arg: &str) -> R<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut rest = arg;
    for (i, b) in mac.iter_mut().enumerate() {
        let (v, used) = strtoul_hex(rest);
        let after = &rest[used..];
        let sep_ok = if i < 5 { after.starts_with(':') } else { after.is_empty() };
        if !sep_ok || used > 2 {
            return perr("Invalid MAC address specified.");
        }
        *b = v as u8;
        rest = after.get(1..).unwrap_or("");
    }
    Ok(mac)
}

/// libxt_CLASSIFY: `sscanf(arg, "%x:%x")`, then `TC_H_MAKE(major << 16, minor)`.
fn parse_class(arg: &str) -> R<u32> {
    let bad = || perr(format!("Bad class value \"{arg}\""));
    let (major, used) = strtoul_hex(arg);
    if used == 0 {
        return bad();
    }
    let Some(rest) = arg[used..].strip_prefix(':') else { return bad() };
    let (minor, used) = strtoul_hex(rest);
    if used == 0 {
        return bad();
    }
    Ok((major << 16) | (minor & 0xFFFF))
}

/// libxt_CT's `ct_parse_events`: a comma list of names from `names`.
fn ct_parse_events(names: &[(&str, u16)], arg: &str) -> R<u16> {
    let mut mask = 0;
    for t in arg.split(',') {
        match names.iter().find(|(n, _)| *n == t) {
            Some((_, b)) => mask |= b,
            None => return perr(format!("Unknown event type \"{t}\"")),
        }
    }
    Ok(mask)
}

/// A match being built.
#[derive(Debug, Clone)]
struct MatchInst {
    ext: Ext,
    offset: i32,
    xflags: u32,
    completed: bool,
    data: MData,
}

#[derive(Debug, Clone)]
enum MData {
    Tcp { spts: [u16; 2], dpts: [u16; 2], inv: u8, flg_mask: u8, flg_cmp: u8, option: u8 },
    Udp { spts: [u16; 2], dpts: [u16; 2], inv: u8 },
    Icmp { icmp_type: u8, code: [u8; 2], invert: bool },
    Multiport { kind: MultiportKind, ports: Vec<PortRange>, invert: bool },
    Comment(String),
    Mark { mark: u32, mask: u32, invert: bool },
    Statistic { mode: u8, invert: bool, u0: u32, packet: u32 },
    Limit { avg: u32, burst: u32 },
    IpRange { src: Option<AddrRange>, dst: Option<AddrRange> },
    Length { min: u16, max: u16, invert: bool },
    AddrType(AddrTypeMatch),
    Ttl { op: TtlOp, value: u8 },
    Conntrack(ConntrackMatch),
    State { states: u16 },
    Connmark { mark: u32, mask: u32, invert: bool },
    Recent(RecentMatch<'static>, String),
    Connbytes(ConnbytesMatch),
    Connlimit(rnf_engine::connlimit::ConnlimitMatch),
    Tos(TosMatch),
    Dscp(DscpMatch),
    Ecn(EcnMatch),
    /// `-m esp` (false) or `-m ah` (true).
    Spi(bool, SpiMatch),
    PktType(PktTypeMatch),
    Mac(MacMatch),
    TcpMss(TcpMssMatch),
    Owner(OwnerMatch),
    Quota(QuotaMatch),
}

impl MData {
    fn init(ext: Ext) -> MData {
        match ext {
            Ext::Tcp => MData::Tcp { spts: [0, 0xFFFF], dpts: [0, 0xFFFF], inv: 0, flg_mask: 0, flg_cmp: 0, option: 0 },
            Ext::Udp => MData::Udp { spts: [0, 0xFFFF], dpts: [0, 0xFFFF], inv: 0 },
            Ext::Icmp => MData::Icmp { icmp_type: 0xFF, code: [0, 0xFF], invert: false },
            Ext::Multiport => MData::Multiport { kind: MultiportKind::Source, ports: Vec::new(), invert: false },
            Ext::Comment => MData::Comment(String::new()),
            Ext::Mark => MData::Mark { mark: 0, mask: 0, invert: false },
            Ext::Statistic => MData::Statistic { mode: 0, invert: false, u0: 0, packet: 0 },
            Ext::Limit => MData::Limit { avg: parse_rate("3/hour").ok().flatten().unwrap_or(0), burst: 5 },
            Ext::IpRange => MData::IpRange { src: None, dst: None },
            Ext::Length => MData::Length { min: 0, max: 0, invert: false },
            Ext::AddrType => MData::AddrType(AddrTypeMatch::default()),
            Ext::Ttl => MData::Ttl { op: TtlOp::Eq, value: 0 },
            Ext::Conntrack => MData::Conntrack(ConntrackMatch::default()),
            Ext::State => MData::State { states: 0 },
            Ext::Connmark => MData::Connmark { mark: 0, mask: 0, invert: false },
            // recent_init: name DEFAULT, source side, mask all ones.
            // connlimit_init: the whole address.
            Ext::Connlimit => {
                MData::Connlimit(rnf_engine::connlimit::ConnlimitMatch { limit: 0, prefix: 32, dest: false, upto: false })
            }
            Ext::Connbytes => MData::Connbytes(ConnbytesMatch { from: 0, to: 0, dir: 0, mode: 0 }),
            Ext::Tos => MData::Tos(TosMatch { value: 0, mask: 0, invert: false }),
            Ext::Dscp => MData::Dscp(DscpMatch { dscp: 0, invert: false }),
            Ext::Ecn => MData::Ecn(EcnMatch { operation: 0, invert: 0, ip_ect: 0 }),
            // esp_init, ah_init: every SPI.
            Ext::Esp | Ext::Ah => MData::Spi(ext == Ext::Ah, SpiMatch { min: 0, max: u32::MAX, invert: false }),
            Ext::PktType => MData::PktType(PktTypeMatch { pkt_type: 0, invert: false }),
            Ext::Mac => MData::Mac(MacMatch { src: [0; 6], invert: false }),
            Ext::TcpMss => MData::TcpMss(TcpMssMatch { min: 0, max: 0, invert: false }),
            Ext::Owner => MData::Owner(OwnerMatch::default()),
            Ext::Quota => MData::Quota(QuotaMatch { quota: 0, invert: false }),
            Ext::Recent => MData::Recent(RecentMatch { name: "", ..Default::default() }, recent::DEFAULT_NAME.into()),
        }
    }

    fn finish(&self) -> OwnedMatch {
        let ports = |p: [u16; 2], inv: bool| {
            if p == [0, 0xFFFF] && !inv {
                None
            } else {
                Some(PortMatch { range: PortRange { lo: p[0], hi: p[1] }, invert: inv })
            }
        };
        OwnedMatch::Plain(match self {
            MData::Tcp { spts, dpts, inv, flg_mask, flg_cmp, option } => Match::Tcp(TcpMatch {
                sport: ports(*spts, inv & 1 != 0),
                dport: ports(*dpts, inv & 2 != 0),
                flags: if *flg_mask != 0 || *flg_cmp != 0 || inv & 8 != 0 {
                    Some(TcpFlags { mask: *flg_mask, comp: *flg_cmp, invert: inv & 8 != 0 })
                } else {
                    None
                },
                option: if *option != 0 || inv & 4 != 0 { Some((*option, inv & 4 != 0)) } else { None },
            }),
            MData::Udp { spts, dpts, inv } => {
                Match::Udp(UdpMatch { sport: ports(*spts, inv & 1 != 0), dport: ports(*dpts, inv & 2 != 0) })
            }
            MData::Icmp { icmp_type, code, invert } => {
                Match::Icmp(IcmpMatch { icmp_type: *icmp_type, code_min: code[0], code_max: code[1], invert: *invert })
            }
            MData::Multiport { kind, ports, invert } => {
                let mut list = [PortRange::default(); MAX_MULTIPORT];
                for (d, s) in list.iter_mut().zip(ports.iter()) {
                    *d = *s;
                }
                Match::Multiport(MultiportMatch { kind: *kind, ports: list, count: ports.len() as u8, invert: *invert })
            }
            MData::Comment(c) => return OwnedMatch::Comment(c.clone()),
            MData::Recent(m, name) => return OwnedMatch::Recent(*m, name.clone()),
            MData::Mark { mark, mask, invert } => Match::Mark(MarkMatch { value: *mark, mask: *mask, invert: *invert }),
            MData::Statistic { mode, invert, u0, packet } => Match::Statistic(if *mode == 0 {
                StatisticMatch::Random { probability: *u0, invert: *invert }
            } else {
                StatisticMatch::Nth { every: *u0, packet: *packet, invert: *invert }
            }),
            MData::Limit { avg, burst } => Match::Limit(LimitMatch { avg: *avg, burst: *burst }),
            MData::IpRange { src, dst } => Match::IpRange(IpRangeMatch { src: *src, dst: *dst }),
            MData::Length { min, max, invert } => Match::Length(LengthMatch { min: *min, max: *max, invert: *invert }),
            MData::AddrType(a) => Match::AddrType(*a),
            MData::Ttl { op, value } => Match::Ttl(TtlMatch { op: *op, value: *value }),
            MData::Conntrack(c) => Match::Conntrack(*c),
            MData::State { states } => Match::State(StateMatch { states: *states }),
            MData::Connmark { mark, mask, invert } => {
                Match::Connmark(MarkMatch { value: *mark, mask: *mask, invert: *invert })
            }
            MData::Connbytes(c) => Match::Connbytes(*c),
            MData::Connlimit(c) => Match::Connlimit(*c),
            MData::Tos(t) => Match::Tos(*t),
            MData::Dscp(d) => Match::Dscp(*d),
            MData::Ecn(e) => Match::Ecn(*e),
            MData::Spi(false, m) => Match::Esp(*m),
            MData::Spi(true, m) => Match::Ah(*m),
            MData::PktType(m) => Match::PktType(*m),
            MData::Mac(m) => Match::Mac(*m),
            MData::TcpMss(m) => Match::TcpMss(*m),
            MData::Owner(m) => Match::Owner(*m),
            MData::Quota(q) => Match::Quota(*q),
        })
    }
}

/// The target being built.
#[derive(Debug, Clone)]
struct TargetInst {
    ext: TExt,
    offset: i32,
    xflags: u32,
    data: TData,
}

#[derive(Debug, Clone)]
enum TData {
    Standard,
    Reject(RejectWith),
    Log { level: u8, flags: u8, prefix: String },
    Mark { mark: u32, mask: u32 },
    Ttl { mode: TtlMode, value: u8 },
    Tos { value: u8, mask: u8 },
    Dscp(u8),
    Classify(u32),
    TcpMss(u16),
    Nflog(NflogSpec<'static>, String),
    Nfqueue(NfqueueSpec),
    /// True for `-j NOTRACK`; the template of the other options.
    Ct(bool, rnf_engine::rule::CtSpec),
    Connmark(ConnmarkTarget),
    Nat(rnf_engine::rule::NatTarget),
}

/// What `-j`/`-g` named, resolved against the table by `command.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JumpTo {
    /// No `-j`/`-g`.
    Nothing,
    /// A loaded target (a verdict or an extension), or a chain if the table has one by this
    /// name (then iptables warns and jumps).
    Target {
        /// The name given.
        name: String,
        /// The target as parsed (`Target::Jump` never appears here).
        target: OwnedTarget,
    },
    /// A name that is no target rnfctl knows: a chain, or an error.
    Chain(String),
    /// `-g NAME`.
    Goto(String),
}

// ---------------------------------------------------------------------------------------------
// The parse result
// ---------------------------------------------------------------------------------------------

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `CMD_*` bits.
    pub command: u32,
    /// The chain named by the command.
    pub chain: Option<String>,
    /// Rule number (1-based; 0 when none was given).
    pub rulenum: u32,
    /// `-E`'s new name.
    pub newname: Option<String>,
    /// `-P`'s policy.
    pub policy: Option<String>,
    /// `-t`.
    pub table: String,
    /// `OPT_*` bits given.
    pub options: u32,
    /// How many `-v`.
    pub verbose: u32,
    /// The rule template (addresses not yet filled in).
    pub rule: OwnedRule,
    /// The sources (`-s`, expanded).
    pub sources: Vec<Ipv4Net>,
    /// The destinations.
    pub destinations: Vec<Ipv4Net>,
    /// The target.
    pub jump: JumpTo,
    /// `-c`.
    pub counters: Counters,
    /// Warnings printed on standard error (the command still runs).
    pub warnings: Vec<String>,
    /// `-h` / `-V`: print this and succeed, doing nothing else.
    pub early_exit: Option<String>,
}

impl Parsed {
    /// Listing options.
    pub fn list_options(&self) -> ListOptions {
        ListOptions {
            numeric: self.options & OPT_NUMERIC != 0,
            verbose: self.options & OPT_VERBOSE != 0,
            exact: self.options & OPT_EXPANDED != 0,
            line_numbers: self.options & OPT_LINENUMBERS != 0,
        }
    }

    /// The rules to add/delete/check: one per source × destination, sources outermost.
    pub fn expanded(&self, target: &OwnedTarget) -> Vec<OwnedRule> {
        let mut out = Vec::new();
        for s in &self.sources {
            for d in &self.destinations {
                let mut r = self.rule.clone();
                r.base.src = *s;
                r.base.dst = *d;
                r.target = target.clone();
                out.push(r);
            }
        }
        out
    }
}

/// Whether `-j NAME` loads a target extension (not a verdict, not a chain).
pub(crate) fn is_target_extension(name: &str) -> bool {
    TExt::find(name).is_some()
}

/// `cmd2char`.
pub(crate) fn cmd2char(cmd: u32) -> char {
    let i = cmd.trailing_zeros() as usize;
    CMD_CHARS.get(i).copied().unwrap_or('?')
}

fn opt2char(opt: u32) -> char {
    OPT_CHARS.get(opt.trailing_zeros() as usize).copied().unwrap_or('?')
}

fn add_command(cmd: &mut u32, newcmd: u32, othercmds: u32, invert: bool) -> R<()> {
    if invert {
        return perr("unexpected '!' flag");
    }
    if *cmd & !othercmds != 0 {
        return perr(format!("Cannot use -{} with -{}", cmd2char(newcmd), cmd2char(*cmd & !othercmds)));
    }
    *cmd |= newcmd;
    Ok(())
}

fn parse_rulenumber(s: &str) -> R<u32> {
    match xt_strtoui_whole(s, 1, i32::MAX as u64) {
        Some(v) => Ok(v as u32),
        None => perr(format!("Invalid rule number `{s}'")),
    }
}

fn inverse_for(opt: u32) -> u32 {
    match opt {
        OPT_SOURCE => INV_SRCIP,
        OPT_DESTINATION => INV_DSTIP,
        OPT_PROTOCOL => INV_PROTO,
        OPT_VIANAMEIN => INV_VIA_IN,
        OPT_VIANAMEOUT => INV_VIA_OUT,
        OPT_FRAGMENT => INV_FRAG,
        _ => 0,
    }
}

fn set_option(options: &mut u32, option: u32, invflags: &mut u32, invert: bool) -> R<()> {
    if *options & option != 0 {
        return perr(format!("multiple -{} flags not allowed", opt2char(option)));
    }
    *options |= option;
    if invert {
        let inv = inverse_for(option);
        if inv == 0 {
            return perr(format!("cannot have ! before -{}", opt2char(option)));
        }
        *invflags |= inv;
    }
    Ok(())
}

fn xt_parse_target(name: &str) -> R<String> {
    if name.is_empty() {
        return perr("Invalid target name (too short)");
    }
    if name.len() >= 29 {
        return perr(format!("Invalid target name `{name}' (28 chars max)"));
    }
    if name.chars().any(is_c_space) {
        return perr(format!("Invalid target name `{name}'"));
    }
    Ok(name.to_string())
}

/// `parse_chain` (for `-N`).
fn parse_chain(name: &str) -> R<()> {
    if name.len() >= 29 {
        return perr(format!("chain name `{name}' too long (must be under 29 chars)"));
    }
    if name.starts_with('-') || name.starts_with('!') {
        return perr(format!("chain name not allowed to start with `{}'", &name[..1]));
    }
    if name.is_empty() || TExt::find(name).is_some() || names::is_target_extension(name) {
        return perr("chain name may not clash with target name");
    }
    if name.chars().any(is_c_space) {
        return perr(format!("Invalid chain name `{name}'"));
    }
    Ok(())
}

/// The parser state for one command line.
struct Parser {
    g: Getopt,
    /// The extensions' long options in getopt order (after the base ones): the newest
    /// extension's, ..., the oldest's.
    opts: Vec<LongOpt>,
    next_offset: i32,
    matches: Vec<MatchInst>,
    target: Option<TargetInst>,
    /// Offsets already merged for each extension (a second instance reuses them).
    merged: Vec<(Ext, i32)>,
    protocol: Option<String>,
    proto_used: bool,
    proto: u8,
    invflags: u32,
    restore: bool,
    /// `-j NOTRACK` (CT --notrack without the option).
    notrack_alias: bool,
}

impl Parser {
    fn merge(&mut self, opts: &'static [XOpt]) -> i32 {
        self.next_offset += 256;
        let offset = self.next_offset;
        // The newest extension's options come first (after the base ones).
        let new = opts.iter().map(|o| LongOpt {
            name: o.name,
            has_arg: if o.ty == XType::None { HasArg::No } else { HasArg::Req },
            val: offset + o.id as i32,
        });
        self.opts.splice(0..0, new);
        offset
    }

    /// Adds a match instance (`-m NAME` or the implicit protocol match).
    fn load_match(&mut self, ext: Ext) {
        for m in self.matches.iter_mut().filter(|m| m.ext == ext) {
            m.completed = true;
        }
        let offset = match self.merged.iter().find(|(e, _)| *e == ext) {
            Some((_, o)) => *o,
            None => {
                let o = self.merge(ext.opts());
                self.merged.push((ext, o));
                o
            }
        };
        self.matches.push(MatchInst { ext, offset, xflags: 0, completed: false, data: MData::init(ext) });
    }

    /// `load_proto`: the protocol's match, when a protocol was given and its match has not
    /// been loaded implicitly yet.
    fn load_proto(&mut self) -> bool {
        let Some(p) = &self.protocol else { return false };
        if self.proto_used {
            return false;
        }
        let name = match xt_strtoui_whole(p, 0, 255) {
            Some(n) => match names::protocol_name(n as u8) {
                Some(n) => n.to_string(),
                None => return false,
            },
            None => p.clone(),
        };
        let Some(ext) = Ext::find(&name) else { return false };
        self.proto_used = true;
        self.load_match(ext);
        true
    }

    fn dispatch_ext(&mut self, c: i32, invert: bool) -> R<bool> {
        if let Some(t) = &self.target {
            if t.ext != TExt::Standard && c >= t.offset && c < t.offset + 256 {
                let id = (c - t.offset) as u32;
                self.parse_target_opt(id, invert)?;
                return Ok(true);
            }
        }
        let idx = self.matches.iter().position(|m| !m.completed && c >= m.offset && c < m.offset + 256);
        if let Some(i) = idx {
            let id = (c - self.matches[i].offset) as u32;
            self.parse_match_opt(i, id, invert)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The framework checks of `xtables_option_parse` for an x6 option.
    fn x6_check(ext_name: &str, o: &XOpt, xflags: u32, invert: bool, has_arg: bool) -> R<()> {
        let eflag = 1u32 << o.id;
        if xflags & eflag != 0 {
            return perr(format!("{ext_name}: option \"--{}\" can only be used once.\n", o.name));
        }
        if invert && o.flags & INVERT == 0 {
            return perr(format!("{ext_name}: option \"--{}\" cannot be inverted.\n", o.name));
        }
        if o.ty != XType::None && !has_arg {
            return perr(format!("{ext_name}: option \"--{}\" requires an argument.\n", o.name));
        }
        Ok(())
    }

    /// Finds the option entry of `id` that getopt matched (the first with that id, as
    /// `xtables_option_lookup` does).
    fn lookup(opts: &'static [XOpt], id: u32) -> &'static XOpt {
        opts.iter().find(|o| o.id == id).unwrap_or(&opts[0])
    }

    fn parse_match_opt(&mut self, i: usize, id: u32, invert: bool) -> R<()> {
        let ext = self.matches[i].ext;
        let arg = self.g.optarg.clone().unwrap_or_default();
        let proto = self.proto;
        let invflags = self.invflags;
        if ext == Ext::Tcp {
            return self.parse_tcp(i, id, invert, &arg);
        }
        let o = Self::lookup(ext.opts(), id);
        let m = &mut self.matches[i];
        Self::x6_check(ext.name(), o, m.xflags, invert, self.g.optarg.is_some())?;
        let name = ext.name();
        match &mut m.data {
            MData::Udp { spts, dpts, inv } => {
                let r = parse_mport(name, o, &arg)?;
                if r[0] > r[1] {
                    // iptables accepts a range upside down (it never matches); the rule model
                    // does not carry one.
                    return perr(format!("rnfctl: reversed port range {}:{} is not supported", r[0], r[1]));
                }
                if id == 0 {
                    *spts = r;
                    if invert {
                        *inv |= 1;
                    }
                } else {
                    *dpts = r;
                    if invert {
                        *inv |= 2;
                    }
                }
            }
            MData::Icmp { icmp_type, code, invert: inv } => {
                let (t, c) = parse_icmp(&arg)?;
                *icmp_type = t;
                *code = c;
                if invert {
                    *inv = true;
                }
            }
            MData::Multiport { kind, ports, invert: inv } => {
                let pname = multiport_proto(proto, invflags)?;
                *ports = parse_multi_ports_v1(&arg, pname)?;
                *kind = match id {
                    0 => MultiportKind::Source,
                    1 => MultiportKind::Destination,
                    _ => MultiportKind::Either,
                };
                if invert {
                    *inv = true;
                }
            }
            MData::Comment(c) => {
                check_str_len(o, &arg)?;
                *c = truncate(&arg, rnf_engine::rule::MAX_COMMENT);
            }
            MData::Connlimit(c) => match id {
                0 | 1 => {
                    c.limit = parse_int(name, o, &arg, u32::MAX as u64)? as u32;
                    // --connlimit-upto, or ! --connlimit-above: at most the limit.
                    c.upto = (id == 0) != invert;
                }
                // XTTYPE_PLENMASK takes 0..128 whatever the family; past 32 the whole IPv4
                // address counts.
                2 => match xt_strtoui_whole(&arg, 0, 128) {
                    Some(p) => c.prefix = p.min(32) as u8,
                    None => return perr(format!("{name}: bad value for option \"--{}\", or out of range (0-128).\n", o.name)),
                },
                3 => c.dest = false,
                _ => c.dest = true,
            },
            MData::Connbytes(c) => match id {
                0 => {
                    let v = parse_mint(name, o, &arg, u64::MAX)?;
                    c.from = v.first().copied().unwrap_or(0);
                    c.to = v.get(1).copied().unwrap_or(u64::MAX);
                    if c.to < c.from {
                        return perr(format!("{} should be less than {}", c.from, c.to));
                    }
                    if invert {
                        (c.from, c.to) = (c.to, c.from);
                    }
                }
                1 => {
                    c.dir = match arg.as_str() {
                        "original" => ConnbytesMatch::ORIGINAL,
                        "reply" => ConnbytesMatch::REPLY,
                        "both" => ConnbytesMatch::BOTH,
                        _ => return perr(format!("Unknown --connbytes-dir `{arg}'")),
                    }
                }
                _ => {
                    c.mode = match arg.as_str() {
                        "packets" => ConnbytesMatch::PACKETS,
                        "bytes" => ConnbytesMatch::BYTES,
                        "avgpkt" => ConnbytesMatch::AVGPKT,
                        _ => return perr(format!("Unknown --connbytes-mode `{arg}'")),
                    }
                }
            },
            MData::Recent(m, rname) => match id {
                0..=3 => {
                    m.check_set |= [rflag::SET, rflag::CHECK, rflag::UPDATE, rflag::REMOVE][id as usize];
                    if invert {
                        m.invert = true;
                    }
                }
                4 => m.seconds = parse_int(name, o, &arg, u32::MAX as u64)? as u32,
                5 => m.check_set |= rflag::REAP,
                6 => m.hit_count = parse_int(name, o, &arg, u32::MAX as u64)? as u32,
                7 => m.check_set |= rflag::TTL,
                8 => *rname = truncate(&arg, recent::NAME_LEN - 1),
                9 => m.dest = false,
                10 => m.dest = true,
                _ => m.mask = xtopt_parse_host(&arg)?,
            },
            MData::Mark { mark, mask, invert: inv } | MData::Connmark { mark, mask, invert: inv } => {
                let (v, k) = parse_mark_mask(name, o, &arg)?;
                *mark = v;
                *mask = k;
                if invert {
                    *inv = true;
                }
            }
            MData::Statistic { mode, invert: inv, u0, packet } => {
                if invert {
                    *inv = true;
                }
                match id {
                    0 => {
                        *mode = match arg.as_str() {
                            "random" => 0,
                            "nth" => 1,
                            _ => return perr(format!("Bad mode \"{arg}\"")),
                        }
                    }
                    1 => {
                        let p = parse_double(name, o, &arg)?;
                        *u0 = (2147483648.0 * p).round() as u32;
                    }
                    2 => {
                        let v = parse_int(name, o, &arg, u32::MAX as u64)?;
                        *u0 = (v as u32).wrapping_sub(1);
                    }
                    _ => *packet = parse_int(name, o, &arg, u32::MAX as u64)? as u32,
                }
            }
            MData::Limit { avg, burst } => {
                if id == 0 {
                    match parse_rate(&arg)? {
                        Some(v) => *avg = v,
                        None => return perr(format!("bad rate \"{arg}\"'")),
                    }
                } else {
                    *burst = parse_int(name, o, &arg, u32::MAX as u64)? as u32;
                }
                if invert {
                    return perr("limit does not support invert");
                }
            }
            MData::IpRange { src, dst } => {
                let (lo, hi, warning) = parse_iprange(&arg, o.name)?;
                if let Some(w) = warning {
                    eprint_later(w);
                }
                let r = Some(AddrRange { lo, hi, invert });
                if id == 0 {
                    *src = r;
                } else {
                    *dst = r;
                }
            }
            MData::Length { min, max, invert: inv } => {
                let v = parse_mint(name, o, &arg, 0xFFFF)?;
                *min = v[0] as u16;
                *max = v.get(1).copied().unwrap_or(v[0]) as u16;
                if min > max {
                    // As for udp ports: accepted by iptables, never matches, not in the model.
                    return perr(format!("rnfctl: reversed length range {min}:{max} is not supported"));
                }
                if invert {
                    *inv = true;
                }
            }
            MData::AddrType(a) => match id {
                0 => {
                    a.src = parse_addrtypes(&arg)?;
                    if invert {
                        a.src_invert = true;
                    }
                }
                1 => {
                    a.dst = parse_addrtypes(&arg)?;
                    if invert {
                        a.dst_invert = true;
                    }
                }
                2 => a.limit_iface_in = true,
                _ => a.limit_iface_out = true,
            },
            MData::Ttl { op, value } => {
                *value = parse_int(name, o, &arg, 255)? as u8;
                *op = match id {
                    0 if invert => TtlOp::Ne,
                    0 => TtlOp::Eq,
                    1 => TtlOp::Lt,
                    _ => TtlOp::Gt,
                };
            }
            MData::Conntrack(c) => parse_conntrack_opt(c, id, invert, o, &arg)?,
            MData::State { states } => {
                let mut s = parse_ct_states(&arg, "state", false)?;
                if invert {
                    // libxt_state: the complement of the states given.
                    s = !s & (ctstate::INVALID | ctstate::ESTABLISHED | ctstate::RELATED | ctstate::NEW | ctstate::UNTRACKED);
                }
                *states = s;
            }
            MData::Tos(t) => {
                (t.value, t.mask) = parse_tosmask(o, &arg)?;
                t.invert |= invert;
            }
            MData::Dscp(d) => {
                d.dscp = match id {
                    0 => parse_int(name, o, &arg, 255)? as u8,
                    _ => class_to_dscp(&arg)?,
                };
                d.invert |= invert;
            }
            MData::Ecn(e) => {
                let bit = match id {
                    0 => EcnMatch::CWR,
                    1 => EcnMatch::ECE,
                    _ => {
                        e.ip_ect = parse_int(name, o, &arg, 255)? as u8;
                        EcnMatch::IP
                    }
                };
                e.operation |= bit;
                if invert {
                    e.invert |= bit;
                }
            }
            MData::Spi(_, m) => {
                let v = parse_mint(name, o, &arg, u64::from(u32::MAX))?;
                m.min = v[0] as u32;
                m.max = v.get(1).map_or(m.min, |&x| x as u32);
                if m.min > m.max {
                    // iptables takes it (it never matches); the rule model does not carry one.
                    return perr(format!("rnfctl: reversed SPI range {}:{} is not supported", m.min, m.max));
                }
                m.invert |= invert;
            }
            MData::PktType(m) => {
                m.pkt_type = parse_pkttype(&arg)?;
                m.invert |= invert;
            }
            MData::Mac(m) => {
                m.src = parse_ethermac(&arg)?;
                m.invert |= invert;
            }
            MData::TcpMss(m) => {
                let v = parse_mint(name, o, &arg, 0xFFFF)?;
                m.min = v[0] as u16;
                m.max = v.get(1).map_or(m.min, |&x| x as u16);
                if m.max < m.min {
                    return perr("tcpmss: invalid range given");
                }
                m.invert |= invert;
            }
            MData::Quota(q) => {
                q.quota = parse_int(name, o, &arg, u64::MAX)?;
                q.invert |= invert;
            }
            MData::Owner(w) => {
                let bit = match id {
                    0 | 1 => {
                        let opt = if id == 0 { "--uid-owner" } else { "--gid-owner" };
                        let named = if id == 0 { names::user_id(&arg) } else { names::group_id(&arg) };
                        let (lo, hi) = match named {
                            Some(v) => (v, v),
                            None => owner_parse_range(&arg, opt)?,
                        };
                        if id == 0 {
                            (w.uid_min, w.uid_max) = (lo, hi);
                            OwnerMatch::UID
                        } else {
                            (w.gid_min, w.gid_max) = (lo, hi);
                            OwnerMatch::GID
                        }
                    }
                    2 => OwnerMatch::SOCKET,
                    _ => {
                        if w.flags & OwnerMatch::GID == 0 {
                            return perr("owner: Bad value for \"--suppl-groups\" option: \"you need to use --gid-owner first\"");
                        }
                        OwnerMatch::SUPPL_GROUPS
                    }
                };
                w.flags |= bit;
                if invert {
                    w.invert |= bit;
                }
            }
            MData::Tcp { .. } => {}
        }
        m.xflags |= 1 << o.id;
        Ok(())
    }

    fn parse_tcp(&mut self, i: usize, id: u32, invert: bool, arg: &str) -> R<()> {
        let flags = self.matches[i].xflags;
        let mut extra_arg: Option<String> = None;
        if id == 4 {
            if flags & 4 != 0 {
                return perr("Only one of `--syn' or `--tcp-flags'  allowed");
            }
            let next = self.g.args.get(self.g.optind).cloned();
            match next {
                Some(n) if !n.starts_with('-') && !n.starts_with('!') => {
                    self.g.optind += 1;
                    extra_arg = Some(n);
                }
                _ => return perr("--tcp-flags requires two args."),
            }
        }
        let MData::Tcp { spts, dpts, inv, flg_mask, flg_cmp, option } = &mut self.matches[i].data else {
            return Ok(());
        };
        let bit = match id {
            1 => {
                if flags & 1 != 0 {
                    return perr("Only one `--source-port' allowed");
                }
                *spts = parse_tcp_ports(arg)?;
                if invert {
                    *inv |= 1;
                }
                1
            }
            2 => {
                if flags & 2 != 0 {
                    return perr("Only one `--destination-port' allowed");
                }
                *dpts = parse_tcp_ports(arg)?;
                if invert {
                    *inv |= 2;
                }
                2
            }
            3 => {
                if flags & 4 != 0 {
                    return perr("Only one of `--syn' or `--tcp-flags'  allowed");
                }
                *flg_mask = 0x17;
                *flg_cmp = 0x02;
                if invert {
                    *inv |= 8;
                }
                4
            }
            4 => {
                *flg_mask = parse_tcp_flag(arg)?;
                *flg_cmp = parse_tcp_flag(extra_arg.as_deref().unwrap_or(""))?;
                if invert {
                    *inv |= 8;
                }
                4
            }
            _ => {
                if flags & 8 != 0 {
                    return perr("Only one `--tcp-option' allowed");
                }
                match xt_strtoui_whole(arg, 1, 255) {
                    Some(v) => *option = v as u8,
                    None => return perr(format!("Bad TCP option \"{arg}\"")),
                }
                if invert {
                    *inv |= 4;
                }
                8
            }
        };
        self.matches[i].xflags |= bit;
        Ok(())
    }

    fn parse_target_opt(&mut self, id: u32, invert: bool) -> R<()> {
        // libxt_NAT's "portok": the protocol given so far (not its inversion) has ports.
        let portok = matches!(self.proto, 6 | 17 | 132 | 33 | 1);
        let arg = self.g.optarg.clone().unwrap_or_default();
        let has_arg = self.g.optarg.is_some();
        let Some(t) = &mut self.target else { return Ok(()) };
        let o = Self::lookup(t.ext.opts(), id);
        let name = t.ext.name();
        Self::x6_check(name, o, t.xflags, invert, has_arg)?;
        match &mut t.data {
            TData::Reject(with) => *with = parse_reject_with(&arg)?,
            TData::Log { level, flags, prefix } => match id {
                0 => *level = parse_sysloglevel(&arg)?,
                1 => {
                    check_str_len(o, &arg)?;
                    if arg.contains('\n') {
                        return perr("Newlines not allowed in --log-prefix");
                    }
                    *prefix = truncate(&arg, rnf_engine::rule::MAX_LOG_PREFIX);
                }
                2 => *flags |= 0x01,
                3 => *flags |= 0x02,
                4 => *flags |= 0x04,
                5 => *flags |= 0x08,
                _ => *flags |= 0x20,
            },
            TData::Mark { mark, mask } => match id {
                0 => {
                    let (v, k) = parse_mark_mask(name, o, &arg)?;
                    *mark = v;
                    *mask = k;
                }
                1 => {
                    let (v, k) = parse_mark_mask(name, o, &arg)?;
                    *mark = v;
                    *mask = v | k;
                }
                2 => {
                    let v = parse_int(name, o, &arg, u32::MAX as u64)? as u32;
                    *mark = 0;
                    *mask = !v;
                }
                3 => {
                    let v = parse_int(name, o, &arg, u32::MAX as u64)? as u32;
                    *mark = v;
                    *mask = v;
                }
                _ => {
                    let v = parse_int(name, o, &arg, u32::MAX as u64)? as u32;
                    *mark = v;
                    *mask = 0;
                }
            },
            TData::Tos { value, mask } => {
                // tos_tg_parse.
                (*value, *mask) = match id {
                    0 => parse_tosmask(o, &arg)?,
                    _ => {
                        let v = parse_int(name, o, &arg, 255)? as u8;
                        match id {
                            1 => (0, !v),
                            2 => (v, v),
                            _ => (v, 0),
                        }
                    }
                };
            }
            TData::Dscp(d) => {
                *d = match id {
                    0 => parse_int(name, o, &arg, 255)? as u8,
                    _ => class_to_dscp(&arg)?,
                };
            }
            TData::Classify(p) => *p = parse_class(&arg)?,
            TData::Nfqueue(q) => match id {
                0 => q.num = parse_int(name, o, &arg, 0xFFFF)? as u16,
                1 => {
                    let r = parse_mint(name, o, &arg, o.max)?;
                    let [lo, hi] = r[..] else { return perr(format!("Bad range \"{arg}\"")) };
                    if lo >= hi {
                        return perr(format!("{lo} should be less than {hi}"));
                    }
                    (q.num, q.total) = (lo as u16, (hi - lo + 1) as u16);
                }
                2 => q.flags |= NfqueueSpec::BYPASS,
                _ => q.flags |= NfqueueSpec::CPU_FANOUT,
            },
            TData::Nflog(n, prefix) => match id {
                0 => n.group = parse_int(name, o, &arg, 0xFFFF)? as u16,
                1 => {
                    check_str_len(o, &arg)?;
                    if arg.contains('\n') {
                        return perr("Newlines not allowed in --log-prefix");
                    }
                    *prefix = truncate(&arg, rnf_engine::rule::MAX_NFLOG_PREFIX);
                }
                2 | 3 => {
                    n.len = parse_int(name, o, &arg, u64::from(u32::MAX))? as u32;
                    if id == 2 {
                        eprint_later(
                            "warn: --nflog-range has never worked and is no longer supported, please use --nflog-size instead\n"
                                .to_string(),
                        );
                    }
                }
                _ => n.threshold = parse_int(name, o, &arg, 0xFFFF)? as u16,
            },
            TData::TcpMss(m) => {
                *m = match id {
                    0 => parse_int(name, o, &arg, 0xFFFF)? as u16,
                    _ => rnf_engine::tcpmss::CLAMP_PMTU,
                };
            }
            TData::Ttl { mode, value } => {
                *value = parse_int(name, o, &arg, 255)? as u8;
                *mode = match id {
                    0 => TtlMode::Set,
                    1 => TtlMode::Inc,
                    _ => TtlMode::Dec,
                };
            }
            TData::Connmark(c) => {
                let u32_arg = |arg: &str| parse_int(name, o, arg, u32::MAX as u64).map(|v| v as u32);
                match id {
                    8 | 0 => {
                        let (v, k) = parse_mark_mask(name, o, &arg)?;
                        c.mode = ConnmarkMode::Set;
                        c.ctmark = v;
                        c.ctmask = if id == 0 { v | k } else { k };
                    }
                    3 => {
                        c.mode = ConnmarkMode::Set;
                        c.ctmark = 0;
                        c.ctmask = !u32_arg(&arg)?;
                    }
                    4 => {
                        let v = u32_arg(&arg)?;
                        (c.mode, c.ctmark, c.ctmask) = (ConnmarkMode::Set, v, v);
                    }
                    5 => {
                        (c.mode, c.ctmark, c.ctmask) = (ConnmarkMode::Set, u32_arg(&arg)?, 0);
                    }
                    1 => c.mode = ConnmarkMode::Save,
                    2 => c.mode = ConnmarkMode::Restore,
                    6 | 7 => {
                        c.shift_right = id == 7;
                        c.shift_bits = parse_int(name, o, &arg, 32)? as u8;
                    }
                    9 => c.ctmask = u32_arg(&arg)?,
                    10 => c.nfmask = u32_arg(&arg)?,
                    _ => {
                        let v = u32_arg(&arg)?;
                        (c.ctmask, c.nfmask) = (v, v);
                    }
                }
            }
            TData::Ct(_, c) => {
                use rnf_engine::rule::{ctevent, ctzone};
                match id {
                    0 => c.notrack = true,
                    // ct_parse_zone_id: a number or "mark"; -orig/-reply add a direction.
                    1 | 6 | 7 => {
                        c.zone_flags |= match id {
                            6 => ctzone::ORIG,
                            7 => ctzone::REPLY,
                            _ => 0,
                        };
                        c.zone = 0;
                        if arg.eq_ignore_ascii_case("mark") {
                            c.zone_flags |= ctzone::MARK;
                        } else {
                            match xt_strtoui_whole(&arg, 0, u16::MAX.into()) {
                                Some(v) => c.zone = v as u16,
                                None => return perr(format!("Cannot parse {arg} as a zone ID")),
                            }
                        }
                    }
                    2 => {
                        c.ctevents = ct_parse_events(&ctevent::NAMES, &arg)?;
                        c.events_set = true;
                    }
                    3 => {
                        c.expevents = ct_parse_events(&[("new", 1)], &arg)? as u8;
                        c.events_set = true;
                    }
                    4 => {
                        if arg != "ftp" {
                            return perr(format!("rnfctl: CT helper \"{arg}\" is not supported (rust_nf has the ftp helper)"));
                        }
                        c.helper = 1;
                    }
                    5 => return perr("rnfctl: CT --timeout: timeout policies are not supported by rust_nf"),
                    _ => {}
                }
            }
            TData::Nat(n) => {
                use rnf_engine::nat::range;
                match (n.kind, id) {
                    (NatKind::Dnat | NatKind::Snat, 0) => parse_nat_to(name, &arg, portok, &mut n.range)?,
                    (NatKind::Masquerade | NatKind::Redirect, 0) => parse_nat_ports(&arg, portok, &mut n.range)?,
                    (NatKind::Netmap, 0) => {
                        // libipt_NETMAP: --to address[/mask] (XTTYPE_HOSTMASK).
                        let (addr, mask) = xtopt_parse_hostmask(name, "to", &arg)?;
                        n.range.flags |= range::MAP_IPS;
                        n.range.min_addr = addr & mask;
                        n.range.max_addr = (addr & mask) | !mask;
                    }
                    (_, 1) => n.range.flags |= range::PROTO_RANDOM,
                    (_, 2) => n.range.flags |= range::PERSISTENT,
                    _ => n.range.flags |= range::PROTO_RANDOM_FULLY,
                }
            }
            TData::Standard => {}
        }
        t.xflags |= 1 << o.id;
        Ok(())
    }

    /// The final checks of each match (`xtables_option_mfcall`) and of the target.
    fn final_checks(&mut self) -> R<()> {
        for m in &self.matches {
            let name = m.ext.name();
            match &m.data {
                MData::Multiport { .. } if m.xflags == 0 => return perr("multiport expection an option"),
                MData::Statistic { mode, u0, packet, .. } => {
                    if *mode == 0 && m.xflags & STAT_PROB == 0 {
                        return perr("--probability must be specified when using random mode");
                    }
                    if *mode == 1 && m.xflags & (STAT_EVERY | STAT_PACKET) == 0 {
                        return perr("--every and --packet must be specified when using nth mode");
                    }
                    if packet > u0 {
                        return perr("the --packet p must be 0 <= p <= n-1");
                    }
                }
                MData::IpRange { .. } if m.xflags == 0 => {
                    return perr("iprange match: You must specify `--src-range' or `--dst-range'")
                }
                MData::AddrType(_) if m.xflags & 0b11 == 0 => {
                    return perr("addrtype: you must specify --src-type or --dst-type")
                }
                MData::Conntrack(_) if m.xflags == 0 => return perr("conntrack: At least one option is required"),
                MData::Connlimit(_) if m.xflags & 0b11 == 0 => {
                    return perr("You must specify \"--connlimit-above\" or \"--connlimit-upto\".")
                }
                MData::Recent(..) if m.xflags & RECENT_ANY_OP == 0 => {
                    return perr("recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'")
                }
                MData::Ttl { .. } if m.xflags & TTL_ANY == 0 => {
                    return perr("TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt")
                }
                MData::Dscp(_) if m.xflags == 0 => return perr("DSCP match: Parameter --dscp is required"),
                MData::Ecn(_) if m.xflags == 0 => return perr("ECN match: some option required"),
                MData::Owner(_) if m.xflags == 0 => {
                    return perr("owner: At least one of --uid-owner, --gid-owner or --socket-exists is required")
                }
                _ => {}
            }
            if m.ext != Ext::Tcp {
                options_fcheck(name, m.xflags, m.ext.opts())?;
            }
        }
        if let Some(t) = &self.target {
            if t.ext == TExt::Mark && t.xflags == 0 {
                return perr("MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required");
            }
            if t.ext == TExt::Connmark && t.xflags & CONNMARKT_ANY == 0 {
                return perr("CONNMARK target: No operation specified");
            }
            if t.ext == TExt::Ttl && t.xflags & TTL_ANY == 0 {
                return perr("TTL: You must specify an action");
            }
            if t.ext == TExt::Tos && t.xflags & TOST_ANY == 0 {
                return perr("TOS: An action is required");
            }
            if t.ext == TExt::Dscp && t.xflags == 0 {
                return perr("DSCP target: Parameter --set-dscp is required");
            }
            if t.ext == TExt::TcpMss && t.xflags == 0 {
                return perr("TCPMSS target: At least one parameter is required");
            }
            options_fcheck(t.ext.name(), t.xflags, t.ext.opts())?;
        }
        Ok(())
    }
}

thread_local! {
    static LATE_WARNINGS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A warning an extension prints while parsing (collected into [`Parsed::warnings`]).
fn eprint_later(w: String) {
    LATE_WARNINGS.with(|l| l.borrow_mut().push(w));
}

/// `xtables_options_fcheck`.
fn options_fcheck(name: &str, xflags: u32, table: &'static [XOpt]) -> R<()> {
    for e in table {
        if e.flags & MAND != 0 && xflags & (1 << e.id) == 0 {
            return perr(format!("{name}: option \"--{}\" must be specified\n", e.name));
        }
        if xflags & (1 << e.id) == 0 {
            continue;
        }
        for i in 0..32u32 {
            if e.id == i {
                continue;
            }
            let Some(other) = table.iter().find(|o| o.id == i) else { continue };
            let of = 1 << other.id;
            if e.also & of != 0 && xflags & of == 0 {
                return perr(format!("{name}: option \"--{}\" also requires \"--{}\".\n", e.name, other.name));
            }
            if e.excl & of == 0 {
                continue;
            }
            if xflags & of == 0 {
                continue;
            }
            return perr(format!(
                "{name}: option \"--{}\" cannot be used together with \"--{}\".\n",
                e.name, other.name
            ));
        }
    }
    Ok(())
}

/// The first `max` bytes of `s` (fewer when a character would be cut), as iptables copies a
/// string into a fixed buffer.
fn truncate(s: &str, max: usize) -> String {
    let mut n = max.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s[..n].to_string()
}

fn check_str_len(o: &XOpt, arg: &str) -> R<()> {
    if o.min != 0 && (arg.len() as u64) < o.min {
        return perr(format!("Argument must have a minimum length of {} characters\n", o.min));
    }
    if o.max != 0 && arg.len() as u64 > o.max {
        return perr(format!("Argument must have a maximum length of {} characters\n", o.max));
    }
    Ok(())
}

/// `xtopt_parse_int`.
fn parse_int(ext: &str, o: &XOpt, arg: &str, type_max: u64) -> R<u64> {
    let lmin = o.min;
    let lmax = if o.max != 0 { o.max } else { type_max };
    match xt_strtoui_whole(arg, lmin, lmax) {
        Some(v) => Ok(v),
        None => perr(format!("{ext}: bad value for option \"--{}\", or out of range ({lmin}-{lmax}).\n", o.name)),
    }
}

/// `xtopt_parse_float`.
fn parse_double(ext: &str, o: &XOpt, arg: &str) -> R<f64> {
    let bad =
        || perr(format!("{ext}: bad value for option \"--{}\", or out of range ({}-{}).\n", o.name, o.min, o.max));
    let v = match c_strtod(arg) {
        Some(v) => v,
        None => return bad(),
    };
    if o.min != o.max && (v < o.min as f64 || v > o.max as f64) {
        return bad();
    }
    Ok(v)
}

/// `strtod` requiring the whole string (decimal forms; hexadecimal floats, inf and nan as C).
fn c_strtod(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(is_c_space);
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if let Some(hex) = body.strip_prefix("0x") {
        let neg = lower.starts_with('-');
        let (mant, exp) = match hex.split_once('p') {
            Some((m, e)) => (m, e.parse::<i32>().ok()?),
            None => (hex, 0),
        };
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        let mut v = 0f64;
        for c in ip.chars() {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        let mut scale = 1.0 / 16.0;
        for c in fp.chars() {
            v += f64::from(c.to_digit(16)?) * scale;
            scale /= 16.0;
        }
        let v = v * 2f64.powi(exp);
        return Some(if neg { -v } else { v });
    }
    if matches!(body, "inf" | "infinity" | "nan") {
        return lower.parse::<f64>().ok();
    }
    if !t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) {
        return None;
    }
    t.parse::<f64>().ok()
}

/// `xtopt_parse_mint` (ranges `a:b` of integers).
fn parse_mint(ext: &str, o: &XOpt, arg: &str, lmax: u64) -> R<Vec<u64>> {
    let maxiter = 2;
    let mut vals = Vec::new();
    let mut rest = arg;
    loop {
        if vals.len() == maxiter {
            return perr(format!("{ext}: Too many components for option \"--{}\" (max: {maxiter})\n", o.name));
        }
        let value;
        let after: &str;
        if rest.is_empty() || rest.starts_with(':') {
            value = if vals.len() == 1 { lmax } else { 0 };
            after = rest;
        } else {
            match xt_strtoul(rest, 0, lmax) {
                Some((v, end)) => {
                    if !end.is_empty() && !end.starts_with(':') {
                        return perr(format!(
                            "{ext}: Argument to \"--{}\" has unexpected characters near \"{end}\".\n",
                            o.name
                        ));
                    }
                    value = v;
                    after = end;
                }
                None => {
                    return perr(format!(
                        "{ext}: bad value for option \"--{}\" near \"{rest}\", or out of range (0-{lmax}).\n",
                        o.name
                    ))
                }
            }
        }
        vals.push(value);
        if after.is_empty() {
            break;
        }
        rest = &after[1..];
    }
    Ok(vals)
}

/// The state names of `--ctstate` (or `--state`): a comma list, each name matched
/// case-insensitively as a prefix, in libxt_conntrack's order.
fn parse_ct_states(arg: &str, what: &str, with_nat: bool) -> R<u16> {
    if arg.is_empty() {
        return perr(format!("\"--{what}\" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED"));
    }
    let names: &[(&str, u16)] = &[
        ("INVALID", ctstate::INVALID),
        ("NEW", ctstate::NEW),
        ("ESTABLISHED", ctstate::ESTABLISHED),
        ("RELATED", ctstate::RELATED),
        ("UNTRACKED", ctstate::UNTRACKED),
        ("SNAT", ctstate::SNAT),
        ("DNAT", ctstate::DNAT),
    ];
    let names: Vec<(&str, u16)> =
        names.iter().copied().filter(|(_, b)| with_nat || (*b != ctstate::SNAT && *b != ctstate::DNAT)).collect();
    parse_name_list(arg, &names, |rest| format!("Bad {what} \"{rest}\""))
}

/// A comma list of names, each matched case-insensitively as a prefix (`strncasecmp` with
/// the word's length), first in `names` order; the error names the rest of the list from the
/// bad word on, as libxt_conntrack does.
fn parse_name_list(arg: &str, names: &[(&str, u16)], bad: impl Fn(&str) -> String) -> R<u16> {
    let mut mask = 0;
    let mut rest = arg;
    loop {
        let (word, more) = match rest.find(',') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let bit = names
            .iter()
            .find(|(n, _)| !word.is_empty() && n.len() >= word.len() && n[..word.len()].eq_ignore_ascii_case(word));
        match bit {
            Some((_, b)) => mask |= b,
            None => return perr(bad(rest)),
        }
        match more {
            Some(m) => rest = m,
            None => return Ok(mask),
        }
    }
}

/// `--ctstatus` names.
fn parse_ct_statuses(arg: &str) -> R<u16> {
    let names: &[(&str, u16)] = &[
        ("NONE", 0),
        ("EXPECTED", ctstatus::EXPECTED),
        ("SEEN_REPLY", ctstatus::SEEN_REPLY),
        ("ASSURED", ctstatus::ASSURED),
        ("CONFIRMED", ctstatus::CONFIRMED),
    ];
    parse_name_list(arg, names, |rest| format!("Bad ctstatus \"{rest}\""))
}

/// One `-m conntrack` option (`conntrack_mt_parse`, revision 3).
fn parse_conntrack_opt(c: &mut ConntrackMatch, id: u32, invert: bool, o: &XOpt, arg: &str) -> R<()> {
    let flag = match id {
        0 => {
            c.state = parse_ct_states(arg, "ctstate", true)?;
            ctflag::STATE
        }
        1 => {
            c.proto = parse_protocol(arg)?;
            // libxt_conntrack (1.8.9) tests XT_INV_PROTO, the bit of an inverted --ctstatus in
            // this match, before recording this option's own inversion.
            if c.proto == 0 && c.invert & ctflag::STATUS != 0 {
                return perr("conntrack: rule would never match protocol");
            }
            ctflag::PROTO
        }
        2..=5 => {
            // The model keeps the address masked; libxt_conntrack keeps (and prints) it as
            // given, the kernel masks both sides.
            let (addr, mask) = xtopt_parse_hostmask("conntrack", o.name, arg)?;
            if let Some(slot) = c.addrs.get_mut(id as usize - 2) {
                *slot = Ipv4Net { addr: addr & mask, mask };
            }
            [ctflag::ORIGSRC, ctflag::ORIGDST, ctflag::REPLSRC, ctflag::REPLDST][id as usize - 2]
        }
        6..=9 => {
            let r = parse_mport("conntrack", o, arg)?;
            if let Some(slot) = c.ports.get_mut(id as usize - 6) {
                *slot = PortRange { lo: r[0], hi: r[1] };
            }
            [ctflag::ORIGSRC_PORT, ctflag::ORIGDST_PORT, ctflag::REPLSRC_PORT, ctflag::REPLDST_PORT][id as usize - 6]
        }
        10 => {
            c.status = parse_ct_statuses(arg)?;
            ctflag::STATUS
        }
        11 => {
            let v = parse_mint("conntrack", o, arg, u64::from(u32::MAX))?;
            c.expires = (v[0] as u32, v.get(1).copied().unwrap_or(v[0]) as u32);
            ctflag::EXPIRES
        }
        _ => {
            if arg.eq_ignore_ascii_case("ORIGINAL") {
                c.invert &= !ctflag::DIRECTION;
            } else if arg.eq_ignore_ascii_case("REPLY") {
                c.invert |= ctflag::DIRECTION;
            } else {
                return perr(format!("conntrack: Bad value for \"--ctdir\" option: \"{arg}\""));
            }
            c.flags |= ctflag::DIRECTION;
            return Ok(());
        }
    };
    c.flags |= flag;
    if invert {
        c.invert |= flag;
    }
    Ok(())
}

/// `xtopt_parse_mport` (udp ports).
fn parse_mport(ext: &str, o: &XOpt, arg: &str) -> R<[u16; 2]> {
    let mut range = [0u16, 0xFFFF];
    let mut n = 0;
    for part in arg.split(':') {
        if n == 2 {
            return perr(format!("{ext}: Too many components for option \"--{}\" (max: 2)\n", o.name));
        }
        if part.is_empty() {
            n += 1;
            continue;
        }
        match getportbyname(part) {
            Some(p) => range[n] = p,
            None => return perr(format!("Port \"{part}\" does not resolve to anything.\n")),
        }
        n += 1;
    }
    if n == 1 {
        range[1] = range[0];
    }
    Ok(range)
}

/// `xtables_parse_mark_mask` (MARKMASK32).
fn parse_mark_mask(ext: &str, o: &XOpt, arg: &str) -> R<(u32, u32)> {
    let bad = || perr(format!("{ext}: bad integer value for option \"--{}\", or out of range.\n", o.name));
    let (mark, rest) = match xt_strtoul(arg, 0, u32::MAX as u64) {
        Some(x) => x,
        None => return bad(),
    };
    if rest.is_empty() {
        return Ok((mark as u32, u32::MAX));
    }
    let Some(m) = rest.strip_prefix('/') else { return bad() };
    match xt_strtoui_whole(m, 0, u32::MAX as u64) {
        Some(mask) => Ok((mark as u32, mask as u32)),
        None => bad(),
    }
}

fn parse_tcp_ports(s: &str) -> R<[u16; 2]> {
    match s.find(':') {
        None => {
            let p = parse_port(s, "tcp")?;
            Ok([p, p])
        }
        Some(c) => {
            let (a, b) = (&s[..c], &s[c + 1..]);
            let lo = if a.is_empty() { 0 } else { parse_port(a, "tcp")? };
            let hi = if b.is_empty() { 0xFFFF } else { parse_port(b, "tcp")? };
            if lo > hi {
                return perr("invalid portrange (min > max)");
            }
            Ok([lo, hi])
        }
    }
}

const TCP_FLAG_NAMES: [(&str, u8); 8] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3F),
    ("NONE", 0),
];

fn parse_tcp_flag(s: &str) -> R<u8> {
    let mut ret = 0;
    for tok in s.split(',').filter(|t| !t.is_empty()) {
        match TCP_FLAG_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(tok)) {
            Some((_, f)) => ret |= f,
            None => return perr(format!("Unknown TCP flag `{tok}'")),
        }
    }
    Ok(ret)
}

/// The names of TCP flags as iptables prints them (`FIN,SYN`; `NONE` for none).
pub(crate) fn tcp_flags_str(mut flags: u8) -> String {
    let mut out = String::new();
    while flags != 0 {
        let Some((n, f)) = TCP_FLAG_NAMES.iter().find(|(_, f)| flags & f != 0) else { break };
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(n);
        flags &= !f;
    }
    if out.is_empty() {
        out.push_str("NONE");
    }
    out
}

fn icmp_range(s: &str) -> Option<([u32; 2], &str)> {
    let (a, rest) = xt_strtoul(s, 0, 255)?;
    let mut r = [a as u32, a as u32];
    if let Some(after) = rest.strip_prefix(':') {
        let (b, rest2) = xt_strtoul(after, 0, 255)?;
        r[1] = b as u32;
        return Some((r, rest2));
    }
    Some((r, rest))
}

/// `ipt_parse_icmp`.
fn parse_icmp(s: &str) -> R<(u8, [u8; 2])> {
    let mut found: Option<&names::IcmpName> = None;
    for n in names::ICMP_TYPES {
        if n.name.len() >= s.len() && n.name[..s.len()].eq_ignore_ascii_case(s) {
            if let Some(f) = found {
                return perr(format!("Ambiguous ICMP type `{s}': `{}' or `{}'?", f.name, n.name));
            }
            found = Some(n);
        }
    }
    if let Some(n) = found {
        return Ok((n.icmp_type, [n.code_min, n.code_max]));
    }
    let Some((types, next)) = icmp_range(s) else {
        return perr(format!("Unknown ICMP type `{s}'"));
    };
    let mut code = [0u8, 255];
    if let Some(after) = next.strip_prefix('/') {
        let Some((codes, rest)) = icmp_range(after) else {
            return perr(format!("Unknown ICMP code `{s}'"));
        };
        code = [codes[0] as u8, codes[1] as u8];
        if let Some(c) = rest.chars().next() {
            return perr(format!("unknown character {c}"));
        }
    } else if let Some(c) = next.chars().next() {
        return perr(format!("unknown character {c}"));
    }
    if types[0] != types[1] {
        return perr("ICMP type range not supported");
    }
    Ok((types[0] as u8, code))
}

fn multiport_proto(proto: u8, invflags: u32) -> R<&'static str> {
    if invflags & INV_PROTO != 0 {
        return perr("multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP");
    }
    match proto {
        6 => Ok("tcp"),
        17 => Ok("udp"),
        136 => Ok("udplite"),
        132 => Ok("sctp"),
        33 => Ok("dccp"),
        0 => perr("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'"),
        _ => perr("multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP"),
    }
}

/// `parse_multi_ports_v1`: entries, a range taking two of the 15 slots.
fn parse_multi_ports_v1(s: &str, proto: &str) -> R<Vec<PortRange>> {
    let mut out = Vec::new();
    let mut slots = 0;
    let mut parts = s.split(',').peekable();
    while let Some(cp) = parts.next() {
        if slots >= MAX_MULTIPORT {
            return perr("too many ports specified");
        }
        match cp.find(':') {
            Some(c) => {
                if slots == MAX_MULTIPORT - 1 {
                    return perr("too many ports specified");
                }
                let lo = parse_port(&cp[..c], proto)?;
                let hi = parse_port(&cp[c + 1..], proto)?;
                if lo >= hi {
                    return perr("invalid portrange specified");
                }
                out.push(PortRange { lo, hi });
                slots += 2;
            }
            None => {
                let p = parse_port(cp, proto)?;
                out.push(PortRange { lo: p, hi: p });
                slots += 1;
            }
        }
        if parts.peek().is_some() && slots >= MAX_MULTIPORT {
            return perr("too many ports specified");
        }
    }
    Ok(out)
}

/// `parse_rate` of the limit match: `Ok(None)` for a bad rate.
fn parse_rate(rate: &str) -> R<Option<u32>> {
    let mut mult: u64 = 1;
    if let Some(p) = rate.find('/') {
        let unit = &rate[p + 1..];
        if unit.is_empty() {
            return Ok(None);
        }
        let is = |full: &str| full.len() >= unit.len() && full[..unit.len()].eq_ignore_ascii_case(unit);
        mult = if is("second") {
            1
        } else if is("minute") {
            60
        } else if is("hour") {
            3600
        } else if is("day") {
            86400
        } else {
            return Ok(None);
        };
    }
    let r = c_atoi(rate) as u32;
    if r == 0 {
        return Ok(None);
    }
    let v = (10000 * mult / u64::from(r)) as u32;
    if v == 0 {
        return perr(format!("Rate too fast \"{rate}\""));
    }
    Ok(Some(v))
}

/// C's `atoi`.
fn c_atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(is_c_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
    }
    let v = if neg { -v } else { v };
    v as i32 as i64
}

/// `iprange_parse_range`: (low, high, warning).
fn parse_iprange(arg: &str, optname: &str) -> R<(u32, u32, Option<String>)> {
    let bad = |spec: &str| perr(format!("iprange: Bad value for \"--{optname}\" option: \"{spec}\""));
    let (a, b) = match arg.find('-') {
        Some(d) => (&arg[..d], &arg[d + 1..]),
        None => (arg, arg),
    };
    let lo = match numeric_to_ipaddr(a, false) {
        Some(v) => v,
        None => return bad(a),
    };
    let hi = match numeric_to_ipaddr(b, false) {
        Some(v) => v,
        None => return bad(b),
    };
    let warning = if arg.contains('-') && lo > hi {
        Some(format!("xt_iprange: range {a}-{b} is reversed and will never match\n"))
    } else {
        None
    };
    Ok((lo, hi, warning))
}

fn parse_addrtypes(arg: &str) -> R<u16> {
    let parse_type = |name: &str, mask: &mut u16| -> bool {
        for (i, n) in rnf_engine::rule::addrtype::NAMES.iter().enumerate() {
            let len = name.len().min(n.len());
            if name.len() <= n.len() && n[..len].eq_ignore_ascii_case(&name[..len]) {
                *mask |= 1 << i;
                return true;
            }
        }
        false
    };
    let mut mask = 0u16;
    let mut rest = arg;
    while let Some(c) = rest.find(',') {
        if c == 0 || !parse_type(&rest[..c], &mut mask) {
            return perr(format!("addrtype: bad type `{rest}'"));
        }
        rest = &rest[c + 1..];
    }
    if rest.is_empty() || !parse_type(rest, &mut mask) {
        return perr(format!("addrtype: bad type \"{rest}\""));
    }
    Ok(mask)
}

/// `-j REJECT --reject-with`.
fn parse_reject_with(arg: &str) -> R<RejectWith> {
    const TABLE: [(&str, &str, RejectWith); 8] = [
        ("icmp-net-unreachable", "net-unreach", RejectWith::NetUnreachable),
        ("icmp-host-unreachable", "host-unreach", RejectWith::HostUnreachable),
        ("icmp-proto-unreachable", "proto-unreach", RejectWith::ProtoUnreachable),
        ("icmp-port-unreachable", "port-unreach", RejectWith::PortUnreachable),
        ("icmp-net-prohibited", "net-prohib", RejectWith::NetProhibited),
        ("icmp-host-prohibited", "host-prohib", RejectWith::HostProhibited),
        ("tcp-reset", "tcp-rst", RejectWith::TcpReset),
        ("icmp-admin-prohibited", "admin-prohib", RejectWith::AdminProhibited),
    ];
    let prefix = |full: &str| full.len() >= arg.len() && full[..arg.len()].eq_ignore_ascii_case(arg);
    for (name, alias, with) in TABLE {
        if prefix(name) || prefix(alias) {
            return Ok(with);
        }
    }
    if prefix("echo-reply") || prefix("echoreply") {
        eprint_later("--reject-with echo-reply no longer supported\n".to_string());
    }
    perr(format!("unknown reject type \"{arg}\""))
}

/// `xtopt_parse_sysloglevel`.
fn parse_sysloglevel(arg: &str) -> R<u8> {
    if let Some(v) = xt_strtoui_whole(arg, 0, 7) {
        return Ok(v as u8);
    }
    match names::LOG_LEVELS.iter().find(|(n, _)| *n == arg) {
        Some((_, l)) => Ok(*l),
        None => perr(format!("log level \"{arg}\" unknown\n")),
    }
}

// ---------------------------------------------------------------------------------------------
// do_parse
// ---------------------------------------------------------------------------------------------

/// Parses an iptables command line (`args` without the program name). `restore` is set for a
/// line of iptables-restore (which brings its own `-t TABLE` first).
pub fn parse_command(args: &[String], restore: bool) -> R<Parsed> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push("iptables".to_string());
    argv.extend(args.iter().cloned());
    parse_argv(argv, restore)
}

/// [`parse_command`] of `argv`, the program's name first (as C's).
pub fn parse_argv(argv: Vec<String>, restore: bool) -> R<Parsed> {
    LATE_WARNINGS.with(|l| l.borrow_mut().clear());
    let mut warnings = Vec::new();
    let res = parse_inner(argv, restore, &mut warnings);
    let late: Vec<String> = LATE_WARNINGS.with(|l| l.borrow_mut().drain(..).collect());
    match res {
        Ok(mut p) => {
            p.warnings = warnings;
            p.warnings.extend(late);
            Ok(p)
        }
        Err(mut f) => {
            let mut pre: String = warnings.concat();
            pre.push_str(&late.concat());
            pre.push_str(&f.pre);
            f.pre = pre;
            Err(f)
        }
    }
}

fn parse_inner(argv: Vec<String>, restore: bool, warnings: &mut Vec<String>) -> R<Parsed> {
    let mut p = Parser {
        g: Getopt::new(argv),
        opts: Vec::new(),
        next_offset: 0,
        matches: Vec::new(),
        target: None,
        merged: Vec::new(),
        protocol: None,
        proto_used: false,
        proto: 0,
        invflags: 0,
        restore,
        notrack_alias: false,
    };
    let mut out = Parsed {
        command: 0,
        chain: None,
        rulenum: 0,
        newname: None,
        policy: None,
        table: "filter".to_string(),
        options: 0,
        verbose: 0,
        rule: OwnedRule::default(),
        sources: Vec::new(),
        destinations: Vec::new(),
        jump: JumpTo::Nothing,
        counters: Counters::default(),
        warnings: Vec::new(),
        early_exit: None,
    };
    let mut invert = false;
    let mut table_set = false;
    let mut shost: Option<String> = None;
    let mut dhost: Option<String> = None;
    let mut jumpto = String::new();
    let mut goto_set = false;
    let mut wait_interval_set = false;
    let mut wait: i64 = 0;
    let mut flags_frag = false;

    while let Some(c) = p.g.next(BASE_OPTS, &p.opts) {
        let optarg = p.g.optarg.clone();
        let arg = optarg.clone().unwrap_or_default();
        let ch = u8::try_from(c).ok().map(char::from).unwrap_or('\0');
        match ch {
            'A' if c < 256 => {
                add_command(&mut out.command, CMD_APPEND, 0, invert)?;
                out.chain = Some(arg);
            }
            'C' if c < 256 => {
                add_command(&mut out.command, CMD_CHECK, 0, invert)?;
                out.chain = Some(arg);
            }
            'D' if c < 256 => {
                add_command(&mut out.command, CMD_DELETE, 0, invert)?;
                out.chain = Some(arg);
                if p.g.has_arg() {
                    let a = p.g.take_arg();
                    out.rulenum = parse_rulenumber(&a)?;
                    out.command = CMD_DELETE_NUM;
                }
            }
            'R' if c < 256 => {
                add_command(&mut out.command, CMD_REPLACE, 0, invert)?;
                out.chain = Some(arg);
                if p.g.has_arg() {
                    let a = p.g.take_arg();
                    out.rulenum = parse_rulenumber(&a)?;
                } else {
                    return perr("-R requires a rule number");
                }
            }
            'I' if c < 256 => {
                add_command(&mut out.command, CMD_INSERT, 0, invert)?;
                out.chain = Some(arg);
                out.rulenum = if p.g.has_arg() {
                    let a = p.g.take_arg();
                    parse_rulenumber(&a)?
                } else {
                    1
                };
            }
            'L' | 'S' if c < 256 => {
                let cmd = if ch == 'L' { CMD_LIST } else { CMD_LIST_RULES };
                add_command(&mut out.command, cmd, CMD_ZERO | CMD_ZERO_NUM, invert)?;
                if optarg.is_some() {
                    out.chain = optarg;
                } else if p.g.has_arg() {
                    out.chain = Some(p.g.take_arg());
                }
                if p.g.has_arg() {
                    let a = p.g.take_arg();
                    out.rulenum = parse_rulenumber(&a)?;
                }
            }
            'F' if c < 256 => {
                add_command(&mut out.command, CMD_FLUSH, 0, invert)?;
                if optarg.is_some() {
                    out.chain = optarg;
                } else if p.g.has_arg() {
                    out.chain = Some(p.g.take_arg());
                }
            }
            'Z' if c < 256 => {
                add_command(&mut out.command, CMD_ZERO, CMD_LIST | CMD_LIST_RULES, invert)?;
                if optarg.is_some() {
                    out.chain = optarg;
                } else if p.g.has_arg() {
                    out.chain = Some(p.g.take_arg());
                }
                if p.g.has_arg() {
                    let a = p.g.take_arg();
                    out.rulenum = parse_rulenumber(&a)?;
                    // (A -L given before is dropped, as iptables does.)
                    out.command = CMD_ZERO_NUM;
                }
            }
            'N' if c < 256 => {
                parse_chain(&arg)?;
                add_command(&mut out.command, CMD_NEW_CHAIN, 0, invert)?;
                out.chain = Some(arg);
            }
            'X' if c < 256 => {
                add_command(&mut out.command, CMD_DELETE_CHAIN, 0, invert)?;
                if optarg.is_some() {
                    out.chain = optarg;
                } else if p.g.has_arg() {
                    out.chain = Some(p.g.take_arg());
                }
            }
            'E' if c < 256 => {
                add_command(&mut out.command, CMD_RENAME_CHAIN, 0, invert)?;
                out.chain = Some(arg);
                if p.g.has_arg() {
                    out.newname = Some(p.g.take_arg());
                } else {
                    return perr("-E requires old-chain-name and new-chain-name");
                }
            }
            'P' if c < 256 => {
                add_command(&mut out.command, CMD_SET_POLICY, 0, invert)?;
                out.chain = Some(arg);
                if p.g.has_arg() {
                    out.policy = Some(p.g.take_arg());
                } else {
                    return perr("-P requires a chain and a policy");
                }
            }
            'h' if c < 256 => {
                out.early_exit = Some(help_text());
                return Ok(out);
            }
            'p' if c < 256 => {
                set_option(&mut out.options, OPT_PROTOCOL, &mut p.invflags, invert)?;
                // iptables takes argv[optind - 1] (the whole word when the value is attached, as
                // in `-ptcp`) and lowercases it in place.
                let idx = p.g.optind - 1;
                let lower = p.g.args[idx].to_ascii_lowercase();
                p.g.args[idx] = lower.clone();
                p.proto = parse_protocol(&lower)?;
                p.protocol = Some(lower);
                if p.proto == 0 && p.invflags & INV_PROTO != 0 {
                    return perr("rule would never match protocol");
                }
            }
            's' if c < 256 => {
                set_option(&mut out.options, OPT_SOURCE, &mut p.invflags, invert)?;
                shost = Some(p.g.args[p.g.optind - 1].clone());
            }
            'd' if c < 256 => {
                set_option(&mut out.options, OPT_DESTINATION, &mut p.invflags, invert)?;
                dhost = Some(p.g.args[p.g.optind - 1].clone());
            }
            'g' if c < 256 => {
                set_option(&mut out.options, OPT_JUMP, &mut p.invflags, invert)?;
                goto_set = true;
                jumpto = xt_parse_target(&arg)?;
            }
            'j' if c < 256 => {
                set_option(&mut out.options, OPT_JUMP, &mut p.invflags, invert)?;
                jumpto = xt_parse_target(&p.g.args[p.g.optind - 1].clone())?;
                if let Some(t) = TExt::find(&jumpto) {
                    let offset = if t == TExt::Standard { 0 } else { p.merge(t.opts()) };
                    let data = match t {
                        TExt::Standard => TData::Standard,
                        TExt::Reject => TData::Reject(RejectWith::PortUnreachable),
                        TExt::Log => TData::Log { level: 4, flags: 0, prefix: String::new() },
                        TExt::Mark => TData::Mark { mark: 0, mask: 0 },
                        TExt::Ttl => TData::Ttl { mode: TtlMode::Set, value: 0 },
                        TExt::Tos => TData::Tos { value: 0, mask: 0 },
                        TExt::Dscp => TData::Dscp(0),
                        TExt::Classify => TData::Classify(0),
                        TExt::TcpMss => TData::TcpMss(0),
                        // NFQUEUE_init_v1: one queue.
                        TExt::Nfqueue => TData::Nfqueue(NfqueueSpec { num: 0, total: 1, flags: 0 }),
                        TExt::Nflog => TData::Nflog(
                            NflogSpec { group: 0, threshold: 0, len: 0, copy_len: false, prefix: "" },
                            String::new(),
                        ),
                        // connmark_tg_init(_v2): both masks all ones, shift left by 0.
                        TExt::Connmark => TData::Connmark(ConnmarkTarget {
                            mode: ConnmarkMode::Set,
                            ctmark: 0,
                            ctmask: u32::MAX,
                            nfmask: u32::MAX,
                            shift_right: false,
                            shift_bits: 0,
                        }),
                        TExt::Nat(kind) => TData::Nat(rnf_engine::rule::NatTarget { kind, range: Default::default() }),
                        TExt::Ct => {
                            // NOTRACK is CT --notrack under its old name.
                            p.notrack_alias = jumpto == "NOTRACK";
                            TData::Ct(p.notrack_alias, Default::default())
                        }
                    };
                    p.target = Some(TargetInst { ext: t, offset, xflags: 0, data });
                }
            }
            'i' | 'o' if c < 256 => {
                if arg.is_empty() {
                    return perr("Empty interface is likely to be undesired");
                }
                let opt = if ch == 'i' { OPT_VIANAMEIN } else { OPT_VIANAMEOUT };
                set_option(&mut out.options, opt, &mut p.invflags, invert)?;
                let (iface, warning) = parse_interface(&p.g.args[p.g.optind - 1].clone())?;
                if let Some(w) = warning {
                    warnings.push(w);
                }
                if ch == 'i' {
                    out.rule.base.in_iface = iface;
                } else {
                    out.rule.base.out_iface = iface;
                }
            }
            'f' if c < 256 => {
                set_option(&mut out.options, OPT_FRAGMENT, &mut p.invflags, invert)?;
                flags_frag = true;
            }
            'v' if c < 256 => {
                if out.verbose == 0 {
                    set_option(&mut out.options, OPT_VERBOSE, &mut p.invflags, invert)?;
                }
                out.verbose += 1;
            }
            'm' if c < 256 => {
                if invert {
                    return perr("unexpected ! flag before --match");
                }
                match Ext::find(&arg) {
                    Some(e) => p.load_match(e),
                    None => return perr(format!("Couldn't load match `{arg}':No such file or directory\n")),
                }
            }
            'n' if c < 256 => set_option(&mut out.options, OPT_NUMERIC, &mut p.invflags, invert)?,
            't' if c < 256 => {
                if invert {
                    return perr("unexpected ! flag before --table");
                }
                if p.restore && table_set {
                    return perr("The -t option cannot be used in iptables-restore.\n");
                }
                out.table = arg;
                table_set = true;
            }
            'x' if c < 256 => set_option(&mut out.options, OPT_EXPANDED, &mut p.invflags, invert)?,
            'V' if c < 256 => {
                out.early_exit =
                    Some(if invert { format!("Not {VERSION} ;-)\n") } else { format!("iptables v{VERSION}\n") });
                return Ok(out);
            }
            'w' if c < 256 => {
                if p.restore {
                    return perr("You cannot use `-w' from iptables-restore");
                }
                let text = match optarg {
                    Some(a) => Some(a),
                    None if p.g.has_arg() => Some(p.g.take_arg()),
                    None => None,
                };
                if let Some(t) = text {
                    match c_scanf_int(&t) {
                        Some(v) => wait = v,
                        None => return perr("wait seconds not numeric"),
                    }
                } else {
                    wait = -1;
                }
            }
            'W' if c < 256 => {
                if p.restore {
                    return perr("You cannot use `-W' from iptables-restore");
                }
                let text = match optarg {
                    Some(a) => a,
                    None if p.g.has_arg() => p.g.take_arg(),
                    None => return perr("wait interval value required"),
                };
                match c_scanf_uint(&text) {
                    Some(usec) if usec > 999_999 => {
                        return perr(format!("too long usec wait {usec} > 999999 usec"));
                    }
                    Some(_) => warnings.push("Ignoring deprecated --wait-interval option.\n".to_string()),
                    None => return perr("wait interval not numeric"),
                }
                wait_interval_set = true;
            }
            '0' if c < 256 => set_option(&mut out.options, OPT_LINENUMBERS, &mut p.invflags, invert)?,
            'M' if c < 256 => {}
            'c' if c < 256 => {
                set_option(&mut out.options, OPT_COUNTERS, &mut p.invflags, invert)?;
                let pcnt = arg.clone();
                let mut bcnt: Option<String> =
                    pcnt.get(1..).and_then(|s| s.find(',').map(|i| pcnt[i + 2..].to_string()));
                if bcnt.is_none() && p.g.has_arg() {
                    bcnt = Some(p.g.take_arg());
                }
                let Some(bcnt) = bcnt else {
                    return perr("-c requires packet and byte counter");
                };
                out.counters.packets = match c_scanf_llu(&pcnt) {
                    Some(v) => v,
                    None => return perr("-c packet counter not numeric"),
                };
                out.counters.bytes = match c_scanf_llu(&bcnt) {
                    Some(v) => v,
                    None => return perr("-c byte counter not numeric"),
                };
            }
            '4' if c < 256 => {}
            '6' if c < 256 => {
                // iptables-restore ignores an IPv6-only line; iptables refuses it.
                if p.restore {
                    out.early_exit = Some(String::new());
                    return Ok(out);
                }
                return Err(Fail { kind: FailKind::TryHelp, msg: String::new(), pre: String::new() });
            }
            _ if c == GETOPT_NONOPT => {
                if arg == "!" {
                    if invert {
                        return perr("multiple consecutive ! not allowed");
                    }
                    invert = true;
                    let idx = p.g.optind - 1;
                    p.g.args[idx] = String::new();
                    continue;
                }
                return Err(Fail { kind: FailKind::Bare, msg: format!("Bad argument `{arg}'\n"), pre: String::new() });
            }
            _ => {
                // command_default
                if c >= 256 && p.dispatch_ext(c, invert)? {
                    invert = false;
                    continue;
                }
                if p.load_proto() {
                    p.g.optind -= 1;
                    p.g.nextchar = None;
                    continue;
                }
                let prev = p.g.args.get(p.g.optind.wrapping_sub(1)).cloned().unwrap_or_default();
                if c == GETOPT_MISSING {
                    return perr(format!("option \"{prev}\" requires an argument"));
                }
                if c == GETOPT_UNKNOWN {
                    return perr(format!("unknown option \"{prev}\""));
                }
                return perr(format!("Unknown arg \"{}\"", optarg.unwrap_or_else(|| "(null)".into())));
            }
        }
        invert = false;
    }

    if out.table == "nat" && (out.policy.as_deref() == Some("DROP") || jumpto == "DROP") {
        return perr("\nThe \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited.\n\n");
    }
    if wait == 0 && wait_interval_set {
        return perr("--wait-interval only makes sense with --wait\n");
    }

    p.final_checks()?;

    if p.g.optind < p.g.argc() {
        return perr("unknown arguments found on commandline");
    }
    if out.command == 0 {
        return perr("no command specified");
    }
    if invert {
        return perr("nothing appropriate following !");
    }

    // ipv4_post_parse
    out.rule.base.in_invert = p.invflags & INV_VIA_IN != 0;
    out.rule.base.out_invert = p.invflags & INV_VIA_OUT != 0;
    out.rule.base.proto = p.proto;
    out.rule.base.proto_invert = p.invflags & INV_PROTO != 0;
    out.rule.base.src_invert = p.invflags & INV_SRCIP != 0;
    out.rule.base.dst_invert = p.invflags & INV_DSTIP != 0;
    out.rule.base.fragment = if flags_frag { Some(p.invflags & INV_FRAG == 0) } else { None };
    let rule_cmd = CMD_REPLACE | CMD_INSERT | CMD_DELETE | CMD_APPEND | CMD_CHECK;
    if out.command & rule_cmd != 0 {
        if out.options & OPT_DESTINATION == 0 {
            dhost = Some("0.0.0.0/0".into());
        }
        if out.options & OPT_SOURCE == 0 {
            shost = Some("0.0.0.0/0".into());
        }
    }
    if let Some(s) = &shost {
        out.sources = ipparse_multiple(s)?;
    }
    if let Some(d) = &dhost {
        out.destinations = ipparse_multiple(d)?;
    }
    if (out.sources.len() > 1 || out.destinations.len() > 1) && p.invflags & (INV_SRCIP | INV_DSTIP) != 0 {
        return perr("! not allowed with multiple source or destination IP addresses");
    }
    if out.command == CMD_REPLACE && (out.sources.len() != 1 || out.destinations.len() != 1) {
        return perr("Replacement rule does not specify a unique address");
    }
    generic_opt_check(out.command, out.options)?;
    if let Some(ch) = &out.chain {
        if ch.len() >= 29 {
            return perr(format!("chain name `{ch}' too long (must be under 29 chars)"));
        }
    }
    if out.command & (CMD_APPEND | CMD_DELETE | CMD_DELETE_NUM | CMD_CHECK | CMD_INSERT | CMD_REPLACE) != 0 {
        let ch = out.chain.as_deref().unwrap_or("");
        if (ch == "PREROUTING" || ch == "INPUT") && out.options & OPT_VIANAMEOUT != 0 {
            return perr(format!("Can't use -o with {ch}\n"));
        }
        if (ch == "POSTROUTING" || ch == "OUTPUT") && out.options & OPT_VIANAMEIN != 0 {
            return perr(format!("Can't use -i with {ch}\n"));
        }
    }

    // Matches in order, then the target.
    out.rule.matches = p.matches.iter().map(|m| m.data.finish()).collect();
    if out.rule.matches.len() > MAX_MATCHES {
        return perr(format!("rnfctl: at most {MAX_MATCHES} matches per rule"));
    }
    out.jump = if goto_set {
        JumpTo::Goto(jumpto)
    } else if let Some(t) = &p.target {
        let target = match &t.data {
            TData::Standard => OwnedTarget::Plain(match jumpto.as_str() {
                "ACCEPT" => Target::Accept,
                "DROP" => Target::Drop,
                "RETURN" => Target::Return,
                _ => Target::None,
            }),
            TData::Reject(w) => OwnedTarget::Plain(Target::Reject(*w)),
            TData::Log { level, flags, prefix } => {
                OwnedTarget::Log { level: *level, flags: *flags, prefix: prefix.clone() }
            }
            TData::Mark { mark, mask } => OwnedTarget::Plain(Target::Mark { value: *mark, mask: *mask }),
            TData::Ttl { mode, value } => OwnedTarget::Plain(Target::Ttl { mode: *mode, value: *value }),
            TData::Tos { value, mask } => OwnedTarget::Plain(Target::Tos { value: *value, mask: *mask }),
            TData::Dscp(d) => OwnedTarget::Plain(Target::Dscp(*d)),
            TData::Classify(p) => OwnedTarget::Plain(Target::Classify(*p)),
            TData::TcpMss(m) => OwnedTarget::Plain(Target::TcpMss(*m)),
            TData::Nfqueue(q) => OwnedTarget::Plain(Target::Nfqueue(*q)),
            TData::Nflog(n, prefix) => {
                // NFLOG_check: --nflog-size copies that many bytes.
                let copy_len = t.xflags & (1 << 3) != 0;
                OwnedTarget::Nflog(NflogSpec { copy_len, ..*n }, prefix.clone())
            }
            TData::Ct(alias, c) if *alias || (c.notrack && t.xflags == 1) => OwnedTarget::Plain(Target::CtNotrack(*alias)),
            TData::Ct(_, c) => OwnedTarget::Plain(Target::Ct(*c)),
            TData::Nat(n) => {
                use rnf_engine::nat::range;
                let mut n = *n;
                if n.range.flags & range::PROTO_OFFSET != 0 {
                    match n.kind {
                        // DNAT_fcheck (REDIRECT is revision 0, without room for an offset).
                        NatKind::Redirect => return perr("Shifted portmap ranges not supported with this kernel"),
                        // SNAT and MASQUERADE (revision 0) keep the flag, not the base.
                        NatKind::Snat | NatKind::Masquerade => n.range.base_port = 0,
                        _ => {}
                    }
                }
                OwnedTarget::Plain(Target::Nat(n))
            }
            TData::Connmark(c) => OwnedTarget::Plain(Target::Connmark(*c)),
        };
        if jumpto == "QUEUE" {
            // The model has no QUEUE verdict: treat it as an extension that is not installed.
            JumpTo::Chain(jumpto)
        } else {
            JumpTo::Target { name: jumpto, target }
        }
    } else if jumpto.is_empty() {
        JumpTo::Nothing
    } else {
        JumpTo::Chain(jumpto)
    };
    Ok(out)
}

fn generic_opt_check(command: u32, options: u32) -> R<()> {
    for (i, oc) in OPT_CHARS.iter().enumerate() {
        let mut legal = 0i32;
        for (j, row) in COMMANDS_V_OPTIONS.iter().enumerate() {
            if command & (1 << j) == 0 {
                continue;
            }
            if options & (1 << i) == 0 {
                if row[i] == b'+' {
                    return perr(format!("You need to supply the `-{oc}' option for this command\n"));
                }
            } else if row[i] != b'x' {
                legal = 1;
            } else if legal == 0 {
                legal = -1;
            }
        }
        if legal == -1 {
            return perr(format!("Illegal option `-{oc}' with this command"));
        }
    }
    Ok(())
}

/// `sscanf(s, "%i")`.
fn c_scanf_int(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(is_c_space);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (v, _, _) = strtoumax(body, 0)?;
    let v = v as i64;
    Some(if neg { -v } else { v })
}

fn c_scanf_uint(s: &str) -> Option<u64> {
    let t = s.trim_start_matches(is_c_space);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (v, _, _) = strtoumax(body, 10)?;
    let v = v.min(u128::from(u32::MAX)) as u64;
    Some(if neg { (v as u32).wrapping_neg() as u64 } else { v })
}

/// `sscanf(s, "%llu")`.
pub(crate) fn c_scanf_llu(s: &str) -> Option<u64> {
    let t = s.trim_start_matches(is_c_space);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (v, _, _) = strtoumax(body, 10)?;
    let v = if v > u128::from(u64::MAX) { u64::MAX } else { v as u64 };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `iptables -h`.
pub fn help_text() -> String {
    HELP.replace("{P}", "iptables")
}

const HELP: &str = "iptables v1.8.9 (legacy)

Usage: {P} -[ACD] chain rule-specification [options]
       {P} -I chain [rulenum] rule-specification [options]
       {P} -R chain rulenum rule-specification [options]
       {P} -D chain rulenum [options]
       {P} -[LS] [chain [rulenum]] [options]
       {P} -[FZ] [chain] [options]
       {P} -[NX] chain
       {P} -E old-chain-name new-chain-name
       {P} -P chain target [options]
       {P} -h (print this help information)

Commands:
Either long or short options are allowed.
  --append  -A chain\t\tAppend to chain
  --check   -C chain\t\tCheck for the existence of a rule
  --delete  -D chain\t\tDelete matching rule from chain
  --delete  -D chain rulenum
\t\t\t\tDelete rule rulenum (1 = first) from chain
  --insert  -I chain [rulenum]
\t\t\t\tInsert in chain as rulenum (default 1=first)
  --replace -R chain rulenum
\t\t\t\tReplace rule rulenum (1 = first) in chain
  --list    -L [chain [rulenum]]
\t\t\t\tList the rules in a chain or all chains
  --list-rules -S [chain [rulenum]]
\t\t\t\tPrint the rules in a chain or all chains
  --flush   -F [chain]\t\tDelete all rules in  chain or all chains
  --zero    -Z [chain [rulenum]]
\t\t\t\tZero counters in chain or all chains
  --new     -N chain\t\tCreate a new user-defined chain
  --delete-chain
            -X [chain]\t\tDelete a user-defined chain
  --policy  -P chain target
\t\t\t\tChange policy on chain to target
  --rename-chain
            -E old-chain new-chain
\t\t\t\tChange chain name, (moving any references)

Options:
    --ipv4\t-4\t\tNothing (line is ignored by ip6tables-restore)
    --ipv6\t-6\t\tError (line is ignored by iptables-restore)
[!] --protocol\t-p proto\tprotocol: by number or name, eg. `tcp'
[!] --source\t-s address[/mask][...]
\t\t\t\tsource specification
[!] --destination -d address[/mask][...]
\t\t\t\tdestination specification
[!] --in-interface -i input name[+]
\t\t\t\tnetwork interface name ([+] for wildcard)
 --jump\t-j target
\t\t\t\ttarget for rule (may load target extension)
  --goto      -g chain
\t\t\t       jump to chain with no return
  --match\t-m match
\t\t\t\textended match (may load extension)
  --numeric\t-n\t\tnumeric output of addresses and ports
[!] --out-interface -o output name[+]
\t\t\t\tnetwork interface name ([+] for wildcard)
  --table\t-t table\ttable to manipulate (default: `filter')
  --verbose\t-v\t\tverbose mode
  --wait\t-w [seconds]\tmaximum wait to acquire xtables lock before give up
  --line-numbers\t\tprint line numbers when listing
  --exact\t-x\t\texpand numbers (display exact values)
[!] --fragment\t-f\t\tmatch second or further fragments only
  --modprobe=<command>\t\ttry to insert modules using this command
  --set-counters -c PKTS BYTES\tset the counter during insert/append
[!] --version\t-V\t\tprint package version.
";
