// SPDX-License-Identifier: GPL-2.0

//! The rule model: what one iptables rule says, as plain data without allocation.
//!
//! A [`RuleSpec`] is what rnfctl parses from iptables syntax and prints back, what the wire
//! format carries (strings borrowed from the message), and what the kernel compiles into its
//! packet-path form. Matches keep the order the user gave them, because stateful matches
//! (`limit`, `statistic`) only consume state when the matches before them matched.

/// Longest chain name iptables accepts (XT_EXTENSION_MAXNAMELEN - 1).
pub const MAX_CHAIN_NAME: usize = 28;
/// Longest interface name (IFNAMSIZ - 1).
pub const MAX_IFACE_NAME: usize = 15;
/// Longest `-m comment --comment` text (XT_MAX_COMMENT_LEN - 1).
pub const MAX_COMMENT: usize = 255;
/// Longest `--log-prefix` (29 characters, as iptables' LOG target).
pub const MAX_LOG_PREFIX: usize = 29;
/// Longest `--nflog-prefix` (63 bytes: `struct xt_nflog_info` holds 64 with the NUL).
pub const MAX_NFLOG_PREFIX: usize = 63;
/// Most matches (`-m ...`) one rule may carry.
pub const MAX_MATCHES: usize = 8;
/// Most ports in one `-m multiport` list (a range counts as two).
pub const MAX_MULTIPORT: usize = 15;

/// The tables, in the order `iptables-save` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TableId {
    /// `raw`: before connection tracking.
    Raw = 0,
    /// `mangle`: packet alteration.
    Mangle = 1,
    /// `nat`: address translation (first packet of a flow).
    Nat = 2,
    /// `filter`: the default table.
    Filter = 3,
    /// `security`: MAC rules.
    Security = 4,
}

/// Number of tables.
pub const NUM_TABLES: usize = 5;

impl TableId {
    /// All tables.
    pub const ALL: [TableId; NUM_TABLES] =
        [TableId::Raw, TableId::Mangle, TableId::Nat, TableId::Filter, TableId::Security];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            TableId::Raw => "raw",
            TableId::Mangle => "mangle",
            TableId::Nat => "nat",
            TableId::Filter => "filter",
            TableId::Security => "security",
        }
    }

    /// The table called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table numbered `n`.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// The hook points that have a builtin chain in this table, in iptables' listing order.
    pub fn builtin_hooks(self) -> &'static [super::super::hooks::HookPoint] {
        use super::super::hooks::HookPoint::*;
        match self {
            TableId::Raw => &[PreRouting, LocalOut],
            TableId::Mangle => &[PreRouting, LocalIn, Forward, LocalOut, PostRouting],
            TableId::Nat => &[PreRouting, LocalIn, LocalOut, PostRouting],
            TableId::Filter => &[LocalIn, Forward, LocalOut],
            TableId::Security => &[LocalIn, Forward, LocalOut],
        }
    }
}

/// An IPv4 address with a mask (`-s 10.0.0.0/8`; iptables also takes dotted masks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Ipv4Net {
    /// Address, host order, already masked.
    pub addr: u32,
    /// Mask, host order (0 = any).
    pub mask: u32,
}

impl Ipv4Net {
    /// Any address (`0.0.0.0/0`).
    pub const ANY: Ipv4Net = Ipv4Net { addr: 0, mask: 0 };

    /// `addr/prefix`, with the address masked as iptables does.
    pub fn with_prefix(addr: u32, prefix: u8) -> Option<Self> {
        let mask = prefix_mask(prefix)?;
        Some(Self { addr: addr & mask, mask })
    }

    /// True when `a` lies in this network.
    pub fn contains(&self, a: u32) -> bool {
        a & self.mask == self.addr
    }

    /// The prefix length when the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        let ones = self.mask.leading_ones();
        if self.mask.checked_shl(ones).unwrap_or(0) == 0 {
            Some(ones as u8)
        } else {
            None
        }
    }
}

/// The mask of a prefix length (0..=32).
pub fn prefix_mask(prefix: u8) -> Option<u32> {
    match prefix {
        0 => Some(0),
        1..=32 => Some(u32::MAX << (32 - u32::from(prefix))),
        _ => None,
    }
}

/// An interface name pattern (`-i eth0`, `-o veth+`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Iface {
    name: [u8; MAX_IFACE_NAME + 1],
    len: u8,
    /// A trailing `+`: any interface whose name starts with `name`.
    pub wildcard: bool,
}

impl Iface {
    /// Parses `eth0` or `eth+`; `None` when too long or empty.
    pub fn parse(s: &str) -> Option<Self> {
        let (base, wildcard) = match s.strip_suffix('+') {
            Some(b) => (b, true),
            None => (s, false),
        };
        if s.is_empty() || base.len() > MAX_IFACE_NAME {
            return None;
        }
        let mut name = [0u8; MAX_IFACE_NAME + 1];
        name[..base.len()].copy_from_slice(base.as_bytes());
        Some(Self { name, len: base.len() as u8, wildcard })
    }

    /// The name without the `+`.
    pub fn base(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }

    /// True when this pattern is empty (no `-i`/`-o` given).
    pub fn is_any(&self) -> bool {
        self.len == 0 && !self.wildcard
    }

    /// True when an interface called `dev` matches.
    pub fn matches(&self, dev: &[u8]) -> bool {
        if self.wildcard {
            dev.starts_with(self.base())
        } else {
            dev == self.base()
        }
    }
}

/// An inclusive port range; a single port has `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Every port (`0:65535`), what iptables stores when no port is given.
    pub const ALL: PortRange = PortRange { lo: 0, hi: 65535 };

    /// True when `p` is in the range.
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// A port condition: a range, maybe negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMatch {
    /// The range.
    pub range: PortRange,
    /// `!` given.
    pub invert: bool,
}

/// `--tcp-flags [!] mask comp` (`--syn` is `FIN,SYN,RST,ACK SYN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// Flags to examine.
    pub mask: u8,
    /// Which of those must be set.
    pub comp: u8,
    /// `!` given.
    pub invert: bool,
}

/// The `tcp` match (`-p tcp` plus its options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpMatch {
    /// `--sport`.
    pub sport: Option<PortMatch>,
    /// `--dport`.
    pub dport: Option<PortMatch>,
    /// `--tcp-flags` / `--syn`.
    pub flags: Option<TcpFlags>,
    /// `--tcp-option [!] n`: (option kind, inverted).
    pub option: Option<(u8, bool)>,
}

/// The `udp` match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct UdpMatch {
    /// `--sport`.
    pub sport: Option<PortMatch>,
    /// `--dport`.
    pub dport: Option<PortMatch>,
}

/// The `icmp` match: `--icmp-type [!] type[/code]` or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    /// Type; 0xff means any type (`--icmp-type any`).
    pub icmp_type: u8,
    /// Lowest code matched.
    pub code_min: u8,
    /// Highest code matched.
    pub code_max: u8,
    /// `!` given.
    pub invert: bool,
}

/// Which ports `-m multiport` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MultiportKind {
    /// `--sports`.
    Source = 0,
    /// `--dports`.
    Destination = 1,
    /// `--ports`: either.
    Either = 2,
}

/// `-m multiport --sports|--dports|--ports [!] p[,p:p]...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MultiportMatch {
    /// Which ports.
    pub kind: MultiportKind,
    /// Ports and ranges, `count` of them used.
    pub ports: [PortRange; MAX_MULTIPORT],
    /// Entries used in `ports`.
    pub count: u8,
    /// `!` given.
    pub invert: bool,
}

impl MultiportMatch {
    /// The used entries.
    pub fn list(&self) -> &[PortRange] {
        &self.ports[..usize::from(self.count).min(MAX_MULTIPORT)]
    }
}

/// `-m mark [!] --mark value[/mask]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkMatch {
    /// Value after masking.
    pub value: u32,
    /// Mask (0xffffffff when none is given).
    pub mask: u32,
    /// `!` given.
    pub invert: bool,
}

/// `-m statistic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatisticMatch {
    /// `--mode random [!] --probability p`; `probability` is p * 2^31, rounded, as iptables
    /// stores it.
    Random {
        /// Fixed-point probability.
        probability: u32,
        /// `!` given.
        invert: bool,
    },
    /// `--mode nth [!] --every n [--packet p]`: matches packet p of every n (p < n).
    Nth {
        /// n - 1, as iptables stores it.
        every: u32,
        /// p.
        packet: u32,
        /// `!` given.
        invert: bool,
    },
}

/// `-m limit --limit rate --limit-burst n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitMatch {
    /// Average period between packets in units of 1/10000 s (iptables' XT_LIMIT_SCALE).
    pub avg: u32,
    /// Burst.
    pub burst: u32,
}

/// Iptables' limit scale: `avg` is in units of 1/`LIMIT_SCALE` seconds.
pub const LIMIT_SCALE: u32 = 10000;

/// One side of `-m iprange`: `[!] --src-range a-b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRange {
    /// First address (host order).
    pub lo: u32,
    /// Last address (host order).
    pub hi: u32,
    /// `!` given.
    pub invert: bool,
}

/// `-m iprange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct IpRangeMatch {
    /// `--src-range`.
    pub src: Option<AddrRange>,
    /// `--dst-range`.
    pub dst: Option<AddrRange>,
}

/// `-m length [!] --length min[:max]` (the IP datagram's total length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthMatch {
    /// Shortest.
    pub min: u16,
    /// Longest.
    pub max: u16,
    /// `!` given.
    pub invert: bool,
}

/// `-m tos [!] --tos value[/mask]` (revision 1): the TOS byte masked is the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TosMatch {
    /// The bits to compare.
    pub value: u8,
    /// The TOS bits compared.
    pub mask: u8,
    /// `!` given.
    pub invert: bool,
}

/// The highest DSCP codepoint (`XT_DSCP_MAX`).
pub const MAX_DSCP: u8 = 0x3F;

/// `-m dscp [!] --dscp n` (or `--dscp-class`): the upper six bits of the TOS byte are `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DscpMatch {
    /// The codepoint, 0-63.
    pub dscp: u8,
    /// `!` given.
    pub invert: bool,
}

/// `-m esp [!] --espspi` or `-m ah [!] --ahspi min[:max]`: the SPI is in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpiMatch {
    /// Lowest SPI.
    pub min: u32,
    /// Highest SPI.
    pub max: u32,
    /// `!` given.
    pub invert: bool,
}

/// `-m ecn` (`struct xt_ecn_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcnMatch {
    /// [`EcnMatch::IP`], [`EcnMatch::ECE`], [`EcnMatch::CWR`]: the tests made.
    pub operation: u8,
    /// The same bits: the tests inverted.
    pub invert: u8,
    /// `--ecn-ip-ect`: the two ECN bits of the TOS byte, 0-3.
    pub ip_ect: u8,
}

impl EcnMatch {
    /// `--ecn-ip-ect` (`XT_ECN_OP_MATCH_IP`).
    pub const IP: u8 = 0x01;
    /// `--ecn-tcp-ece` (`XT_ECN_OP_MATCH_ECE`).
    pub const ECE: u8 = 0x10;
    /// `--ecn-tcp-cwr` (`XT_ECN_OP_MATCH_CWR`).
    pub const CWR: u8 = 0x20;
    /// Every known bit.
    pub const ALL: u8 = Self::IP | Self::ECE | Self::CWR;
}

/// `-m pkttype [!] --pkt-type`: the link-layer class of the packet (`PACKET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PktTypeMatch {
    /// `PACKET_HOST` 0 (unicast), `PACKET_BROADCAST` 1, `PACKET_MULTICAST` 2, or any other
    /// `PACKET_*` number.
    pub pkt_type: u8,
    /// `!` given.
    pub invert: bool,
}

/// `-m mac [!] --mac-source`: the Ethernet source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacMatch {
    /// The address.
    pub src: [u8; 6],
    /// `!` given.
    pub invert: bool,
}

/// `-m tcpmss [!] --mss min[:max]`: the MSS option of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpMssMatch {
    /// Lowest MSS.
    pub min: u16,
    /// Highest MSS.
    pub max: u16,
    /// `!` given.
    pub invert: bool,
}

/// `-m owner` (revision 1, `struct xt_owner_match_info`): the socket a local packet belongs
/// to, its file's owner and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OwnerMatch {
    /// [`OwnerMatch::UID`], ...: the tests made.
    pub flags: u8,
    /// The same bits: the tests inverted.
    pub invert: u8,
    /// `--uid-owner min[-max]`.
    pub uid_min: u32,
    /// Highest uid.
    pub uid_max: u32,
    /// `--gid-owner min[-max]`.
    pub gid_min: u32,
    /// Highest gid.
    pub gid_max: u32,
}

impl OwnerMatch {
    /// `--uid-owner` (`XT_OWNER_UID`).
    pub const UID: u8 = 1 << 0;
    /// `--gid-owner`.
    pub const GID: u8 = 1 << 1;
    /// `--socket-exists`.
    pub const SOCKET: u8 = 1 << 2;
    /// `--suppl-groups`: the gid test also takes the supplementary groups.
    pub const SUPPL_GROUPS: u8 = 1 << 3;
    /// Every known bit (`XT_OWNER_MASK`).
    pub const ALL: u8 = 0x0F;
}

/// `-m quota [!] --quota bytes`: matches until the rule has seen that many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaMatch {
    /// The bytes allowed.
    pub quota: u64,
    /// `!` given: matches once the quota is spent.
    pub invert: bool,
}

/// Address types for `-m addrtype` (`enum xt_addrtype_t` bits).
pub mod addrtype {
    /// UNSPEC.
    pub const UNSPEC: u16 = 1 << 0;
    /// UNICAST.
    pub const UNICAST: u16 = 1 << 1;
    /// LOCAL.
    pub const LOCAL: u16 = 1 << 2;
    /// BROADCAST.
    pub const BROADCAST: u16 = 1 << 3;
    /// ANYCAST.
    pub const ANYCAST: u16 = 1 << 4;
    /// MULTICAST.
    pub const MULTICAST: u16 = 1 << 5;
    /// BLACKHOLE.
    pub const BLACKHOLE: u16 = 1 << 6;
    /// UNREACHABLE.
    pub const UNREACHABLE: u16 = 1 << 7;
    /// PROHIBIT.
    pub const PROHIBIT: u16 = 1 << 8;
    /// THROW.
    pub const THROW: u16 = 1 << 9;
    /// NAT.
    pub const NAT: u16 = 1 << 10;
    /// XRESOLVE.
    pub const XRESOLVE: u16 = 1 << 11;
    /// Names in bit order, as iptables prints them.
    pub const NAMES: [&str; 12] = [
        "UNSPEC",
        "UNICAST",
        "LOCAL",
        "BROADCAST",
        "ANYCAST",
        "MULTICAST",
        "BLACKHOLE",
        "UNREACHABLE",
        "PROHIBIT",
        "THROW",
        "NAT",
        "XRESOLVE",
    ];
}

/// `-m addrtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AddrTypeMatch {
    /// `--src-type`: (bits, inverted); bits 0 when absent.
    pub src: u16,
    /// `!` before `--src-type`.
    pub src_invert: bool,
    /// `--dst-type` bits (0 when absent).
    pub dst: u16,
    /// `!` before `--dst-type`.
    pub dst_invert: bool,
    /// `--limit-iface-in`.
    pub limit_iface_in: bool,
    /// `--limit-iface-out`.
    pub limit_iface_out: bool,
}

/// `-m ttl --ttl-eq|--ttl-lt|--ttl-gt n`, `! --ttl-eq n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TtlOp {
    /// `--ttl-eq`.
    Eq = 0,
    /// `! --ttl-eq`.
    Ne = 1,
    /// `--ttl-lt`.
    Lt = 2,
    /// `--ttl-gt`.
    Gt = 3,
}

/// `-m ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtlMatch {
    /// Comparison.
    pub op: TtlOp,
    /// Value.
    pub value: u8,
}

/// `-m connbytes` (`struct xt_connbytes_info`): the flow's packets, bytes or average packet
/// size so far, in one direction or both, within `from..=to` (`!` swaps them: outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnbytesMatch {
    /// Lower bound (upper when inverted).
    pub from: u64,
    /// Upper bound (lower when inverted).
    pub to: u64,
    /// [`ConnbytesMatch::ORIGINAL`], `REPLY` or `BOTH`.
    pub dir: u8,
    /// [`ConnbytesMatch::PACKETS`], `BYTES` or `AVGPKT`.
    pub mode: u8,
}

impl ConnbytesMatch {
    /// `--connbytes-mode packets`.
    pub const PACKETS: u8 = 0;
    /// `--connbytes-mode bytes`.
    pub const BYTES: u8 = 1;
    /// `--connbytes-mode avgpkt`.
    pub const AVGPKT: u8 = 2;
    /// `--connbytes-dir original`.
    pub const ORIGINAL: u8 = 0;
    /// `--connbytes-dir reply`.
    pub const REPLY: u8 = 1;
    /// `--connbytes-dir both`.
    pub const BOTH: u8 = 2;

    /// xt_connbytes' `connbytes_mt` on a flow's (packets, bytes) per direction.
    pub fn matches(&self, counters: &[(u64, u64); 2]) -> bool {
        let [o, r] = *counters;
        let (pkts, bytes) = match self.dir {
            Self::ORIGINAL => o,
            Self::REPLY => r,
            _ => (o.0.wrapping_add(r.0), o.1.wrapping_add(r.1)),
        };
        let what = match self.mode {
            Self::PACKETS => pkts,
            Self::BYTES => bytes,
            _ => bytes.checked_div(pkts).unwrap_or(0),
        };
        if self.to >= self.from {
            what <= self.to && what >= self.from
        } else {
            what < self.to || what > self.from
        }
    }
}

/// What `-j CONNMARK` does (`xt_connmark_tginfo2.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnmarkMode {
    /// `--set-xmark` and its spellings: `ctmark = (ctmark & !ctmask) ^ value`.
    Set = 0,
    /// `--save-mark`: the packet's mark into the connection's.
    Save = 1,
    /// `--restore-mark`: the connection's mark into the packet's.
    Restore = 2,
}

impl ConnmarkMode {
    /// From the wire value (`XT_CONNMARK_*`).
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Set),
            1 => Some(Self::Save),
            2 => Some(Self::Restore),
            _ => None,
        }
    }
}

/// `-j CONNMARK` (`struct xt_connmark_tginfo2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnmarkTarget {
    /// Set, save or restore.
    pub mode: ConnmarkMode,
    /// Set: the bits XORed in.
    pub ctmark: u32,
    /// Bits of the connection's mark taken part.
    pub ctmask: u32,
    /// Bits of the packet's mark taken part.
    pub nfmask: u32,
    /// `--right-shift-mark` (false: left).
    pub shift_right: bool,
    /// Bits shifted (0..=32).
    pub shift_bits: u8,
}

impl ConnmarkTarget {
    fn shift(&self, v: u32) -> u32 {
        let b = u32::from(self.shift_bits);
        if self.shift_right {
            v.checked_shr(b).unwrap_or(0)
        } else {
            v.checked_shl(b).unwrap_or(0)
        }
    }

    /// xt_connmark's `connmark_tg_shift`: from the connection's mark `ct` and the packet's
    /// `skb`, the connection's new mark and the packet's new mark (None: unchanged).
    pub fn apply(&self, ct: u32, skb: u32) -> (Option<u32>, Option<u32>) {
        match self.mode {
            ConnmarkMode::Set => {
                let new = self.shift((ct & !self.ctmask) ^ self.ctmark);
                ((new != ct).then_some(new), None)
            }
            ConnmarkMode::Save => {
                let new = (ct & !self.ctmask) ^ self.shift(skb & self.nfmask);
                ((new != ct).then_some(new), None)
            }
            ConnmarkMode::Restore => {
                let new = (skb & !self.nfmask) ^ self.shift(ct & self.ctmask);
                (None, Some(new))
            }
        }
    }
}

/// `-j TTL --ttl-set|--ttl-dec|--ttl-inc n` (mangle table only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TtlMode {
    /// `--ttl-set n`: TTL = n.
    Set = 0,
    /// `--ttl-inc n`: TTL + n, at most 255.
    Inc = 1,
    /// `--ttl-dec n`: TTL - n, at least 0.
    Dec = 2,
}

impl TtlMode {
    /// From the wire value (`IPT_TTL_SET`, `_INC`, `_DEC`).
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Set),
            1 => Some(Self::Inc),
            2 => Some(Self::Dec),
            _ => None,
        }
    }

    /// The new TTL of a packet whose TTL is `old` (xt_HL's `ttl_tg`).
    pub fn apply(self, old: u8, value: u8) -> u8 {
        match self {
            Self::Set => value,
            Self::Inc => old.saturating_add(value),
            Self::Dec => old.saturating_sub(value),
        }
    }
}

/// Connection states as `-m conntrack --ctstate` names them (`xt_conntrack_mtinfo3.state_mask`).
pub mod ctstate {
    /// INVALID.
    pub const INVALID: u16 = 1 << 0;
    /// ESTABLISHED (`XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED)`).
    pub const ESTABLISHED: u16 = 1 << 1;
    /// RELATED.
    pub const RELATED: u16 = 1 << 2;
    /// NEW.
    pub const NEW: u16 = 1 << 3;
    /// SNAT: the flow's reply source differs from its original destination.
    pub const SNAT: u16 = 1 << 4;
    /// DNAT: the flow's reply destination differs from its original source.
    pub const DNAT: u16 = 1 << 5;
    /// UNTRACKED.
    pub const UNTRACKED: u16 = 1 << 6;
    /// Names in the order libxt_conntrack prints them.
    pub const NAMES: [(&str, u16); 7] = [
        ("INVALID", INVALID),
        ("NEW", NEW),
        ("RELATED", RELATED),
        ("ESTABLISHED", ESTABLISHED),
        ("UNTRACKED", UNTRACKED),
        ("SNAT", SNAT),
        ("DNAT", DNAT),
    ];
}

/// Connection status bits as `--ctstatus` names them (the kernel's `IPS_*` bits).
pub mod ctstatus {
    /// EXPECTED: the flow was announced by a helper.
    pub const EXPECTED: u16 = 1 << 0;
    /// SEEN_REPLY: a packet went in the reply direction.
    pub const SEEN_REPLY: u16 = 1 << 1;
    /// ASSURED: the flow will not be early-dropped.
    pub const ASSURED: u16 = 1 << 2;
    /// CONFIRMED: the flow's first packet left the last hook.
    pub const CONFIRMED: u16 = 1 << 3;
    /// Names in the order libxt_conntrack prints them.
    pub const NAMES: [(&str, u16); 4] =
        [("EXPECTED", EXPECTED), ("SEEN_REPLY", SEEN_REPLY), ("ASSURED", ASSURED), ("CONFIRMED", CONFIRMED)];
}

/// The `-m conntrack` options present or inverted (`XT_CONNTRACK_*` flags).
pub mod ctflag {
    /// `--ctstate`.
    pub const STATE: u16 = 1 << 0;
    /// `--ctproto`.
    pub const PROTO: u16 = 1 << 1;
    /// `--ctorigsrc`.
    pub const ORIGSRC: u16 = 1 << 2;
    /// `--ctorigdst`.
    pub const ORIGDST: u16 = 1 << 3;
    /// `--ctreplsrc`.
    pub const REPLSRC: u16 = 1 << 4;
    /// `--ctrepldst`.
    pub const REPLDST: u16 = 1 << 5;
    /// `--ctstatus`.
    pub const STATUS: u16 = 1 << 6;
    /// `--ctexpire`.
    pub const EXPIRES: u16 = 1 << 7;
    /// `--ctorigsrcport`.
    pub const ORIGSRC_PORT: u16 = 1 << 8;
    /// `--ctorigdstport`.
    pub const ORIGDST_PORT: u16 = 1 << 9;
    /// `--ctreplsrcport`.
    pub const REPLSRC_PORT: u16 = 1 << 10;
    /// `--ctrepldstport`.
    pub const REPLDST_PORT: u16 = 1 << 11;
    /// `--ctdir`.
    pub const DIRECTION: u16 = 1 << 12;
    /// Every flag.
    pub const ALL: u16 = (1 << 13) - 1;
}

/// `-m conntrack` (revision 3, IPv4): every option, as `xt_conntrack_mtinfo3` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConntrackMatch {
    /// [`ctflag`] bits of the options given.
    pub flags: u16,
    /// [`ctflag`] bits of the options given with `!`. For `--ctdir`, set means REPLY.
    pub invert: u16,
    /// `--ctstate`: [`ctstate`] bits.
    pub state: u16,
    /// `--ctstatus`: [`ctstatus`] bits.
    pub status: u16,
    /// `--ctproto`.
    pub proto: u8,
    /// `--ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst` (address and mask, host order).
    pub addrs: [Ipv4Net; 4],
    /// `--ctorigsrcport`, `--ctorigdstport`, `--ctreplsrcport`, `--ctrepldstport` (ranges).
    pub ports: [PortRange; 4],
    /// `--ctexpire min[:max]`, in seconds.
    pub expires: (u32, u32),
}

/// `-m state --state`: [`ctstate`] bits (xt_state's own layout is translated on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateMatch {
    /// INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED as [`ctstate`] bits.
    pub states: u16,
}

/// One `-m` match (or the implicit one `-p tcp --dport` loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Match<'a> {
    /// `-m tcp`.
    Tcp(TcpMatch),
    /// `-m udp`.
    Udp(UdpMatch),
    /// `-m icmp`.
    Icmp(IcmpMatch),
    /// `-m multiport`.
    Multiport(MultiportMatch),
    /// `-m comment --comment text`.
    Comment(&'a str),
    /// `-m mark`.
    Mark(MarkMatch),
    /// `-m statistic`.
    Statistic(StatisticMatch),
    /// `-m limit`.
    Limit(LimitMatch),
    /// `-m iprange`.
    IpRange(IpRangeMatch),
    /// `-m length`.
    Length(LengthMatch),
    /// `-m addrtype`.
    AddrType(AddrTypeMatch),
    /// `-m ttl`.
    Ttl(TtlMatch),
    /// `-m conntrack`.
    Conntrack(ConntrackMatch),
    /// `-m state`.
    State(StateMatch),
    /// `-m connmark [!] --mark value[/mask]`: the connection's mark.
    Connmark(MarkMatch),
    /// `-m recent`.
    Recent(super::recent::RecentMatch<'a>),
    /// `-m connbytes`.
    Connbytes(ConnbytesMatch),
    /// `-m connlimit`.
    Connlimit(super::connlimit::ConnlimitMatch),
    /// `-m tos`.
    Tos(TosMatch),
    /// `-m dscp`.
    Dscp(DscpMatch),
    /// `-m ecn`.
    Ecn(EcnMatch),
    /// `-m esp`.
    Esp(SpiMatch),
    /// `-m ah`.
    Ah(SpiMatch),
    /// `-m pkttype`.
    PktType(PktTypeMatch),
    /// `-m mac`.
    Mac(MacMatch),
    /// `-m tcpmss`.
    TcpMss(TcpMssMatch),
    /// `-m owner`.
    Owner(OwnerMatch),
    /// `-m quota`.
    Quota(QuotaMatch),
}

impl Match<'_> {
    /// The match module's name, as `-m` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Match::Tcp(_) => "tcp",
            Match::Udp(_) => "udp",
            Match::Icmp(_) => "icmp",
            Match::Multiport(_) => "multiport",
            Match::Comment(_) => "comment",
            Match::Mark(_) => "mark",
            Match::Statistic(_) => "statistic",
            Match::Limit(_) => "limit",
            Match::IpRange(_) => "iprange",
            Match::Length(_) => "length",
            Match::AddrType(_) => "addrtype",
            Match::Ttl(_) => "ttl",
            Match::Conntrack(_) => "conntrack",
            Match::State(_) => "state",
            Match::Connmark(_) => "connmark",
            Match::Recent(_) => "recent",
            Match::Connbytes(_) => "connbytes",
            Match::Connlimit(_) => "connlimit",
            Match::Tos(_) => "tos",
            Match::Dscp(_) => "dscp",
            Match::Ecn(_) => "ecn",
            Match::Esp(_) => "esp",
            Match::Ah(_) => "ah",
            Match::PktType(_) => "pkttype",
            Match::Mac(_) => "mac",
            Match::TcpMss(_) => "tcpmss",
            Match::Owner(_) => "owner",
            Match::Quota(_) => "quota",
        }
    }
}

/// `REJECT --reject-with`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectWith {
    /// `icmp-net-unreachable` (ICMP type 3 code 0).
    NetUnreachable = 0,
    /// `icmp-host-unreachable` (code 1).
    HostUnreachable = 1,
    /// `icmp-port-unreachable` (code 3): the default.
    PortUnreachable = 2,
    /// `icmp-proto-unreachable` (code 2).
    ProtoUnreachable = 3,
    /// `icmp-net-prohibited` (code 9).
    NetProhibited = 4,
    /// `icmp-host-prohibited` (code 10).
    HostProhibited = 5,
    /// `tcp-reset`: a TCP RST.
    TcpReset = 6,
    /// `icmp-admin-prohibited` (code 13).
    AdminProhibited = 7,
}

impl RejectWith {
    /// All kinds, in numbering order.
    pub const ALL: [RejectWith; 8] = [
        RejectWith::NetUnreachable,
        RejectWith::HostUnreachable,
        RejectWith::PortUnreachable,
        RejectWith::ProtoUnreachable,
        RejectWith::NetProhibited,
        RejectWith::HostProhibited,
        RejectWith::TcpReset,
        RejectWith::AdminProhibited,
    ];

    /// The kind numbered `n`.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// The name iptables prints.
    pub fn name(self) -> &'static str {
        match self {
            RejectWith::NetUnreachable => "icmp-net-unreachable",
            RejectWith::HostUnreachable => "icmp-host-unreachable",
            RejectWith::PortUnreachable => "icmp-port-unreachable",
            RejectWith::ProtoUnreachable => "icmp-proto-unreachable",
            RejectWith::NetProhibited => "icmp-net-prohibited",
            RejectWith::HostProhibited => "icmp-host-prohibited",
            RejectWith::TcpReset => "tcp-reset",
            RejectWith::AdminProhibited => "icmp-admin-prohibited",
        }
    }

    /// The ICMP destination-unreachable code sent, or `None` for a TCP reset.
    pub fn icmp_code(self) -> Option<u8> {
        match self {
            RejectWith::NetUnreachable => Some(0),
            RejectWith::HostUnreachable => Some(1),
            RejectWith::ProtoUnreachable => Some(2),
            RejectWith::PortUnreachable => Some(3),
            RejectWith::NetProhibited => Some(9),
            RejectWith::HostProhibited => Some(10),
            RejectWith::AdminProhibited => Some(13),
            RejectWith::TcpReset => None,
        }
    }
}

/// `LOG` target options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogSpec<'a> {
    /// Syslog level 0..=7 (default 4, warning).
    pub level: u8,
    /// `--log-tcp-sequence` (1), `--log-tcp-options` (2), `--log-ip-options` (4),
    /// `--log-uid` (8), `--log-macdecode` (0x20): `NF_LOG_*` bits.
    pub flags: u8,
    /// `--log-prefix` (at most [`MAX_LOG_PREFIX`] bytes).
    pub prefix: &'a str,
}

/// `NFLOG` target options (`struct xt_nflog_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NflogSpec<'a> {
    /// `--nflog-group`: the nfnetlink_log group.
    pub group: u16,
    /// `--nflog-threshold`: packets queued in the kernel before they are sent (0: the
    /// default).
    pub threshold: u16,
    /// `--nflog-size` (with `copy_len`) or `--nflog-range`: bytes of the packet copied.
    pub len: u32,
    /// `--nflog-size` given (`XT_NFLOG_F_COPY_LEN`): `len` counts.
    pub copy_len: bool,
    /// `--nflog-prefix` (at most [`MAX_NFLOG_PREFIX`] bytes).
    pub prefix: &'a str,
}

/// `NFQUEUE` target options (`struct xt_NFQ_info_v3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NfqueueSpec {
    /// `--queue-num`, or the first queue of `--queue-balance`.
    pub num: u16,
    /// How many queues from `num` on (1 without `--queue-balance`).
    pub total: u16,
    /// [`NfqueueSpec::BYPASS`], [`NfqueueSpec::CPU_FANOUT`].
    pub flags: u8,
}

impl NfqueueSpec {
    /// `--queue-bypass`: without a listener the packet goes on (`NFQ_FLAG_BYPASS`).
    pub const BYPASS: u8 = 0x01;
    /// `--queue-cpu-fanout`: the queue by CPU rather than by flow hash.
    pub const CPU_FANOUT: u8 = 0x02;

    /// The checks of xt_NFQUEUE's `nfqueue_tg_check`: at least one queue, the last one a
    /// 16-bit number, known flags.
    pub fn valid(&self) -> bool {
        self.total != 0
            && u32::from(self.num) + u32::from(self.total) - 1 <= 0xFFFF
            && self.flags & !(Self::BYPASS | Self::CPU_FANOUT) == 0
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target<'a> {
    /// No `-j`: the rule only counts.
    None,
    /// `-j ACCEPT`.
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j RETURN`.
    Return,
    /// `-j CHAIN`: run the user chain, then come back.
    Jump(&'a str),
    /// `-g CHAIN`: run the user chain and do not come back here.
    Goto(&'a str),
    /// `-j REJECT`.
    Reject(RejectWith),
    /// `-j LOG`: log and go on.
    Log(LogSpec<'a>),
    /// `-j MARK`: `skb->mark = (skb->mark & !mask) ^ value`, then go on (xt_MARK v2).
    Mark {
        /// Bits to XOR in.
        value: u32,
        /// Bits to clear first.
        mask: u32,
    },
    /// `-j CT --notrack` (raw table): connection tracking leaves the packet alone (UNTRACKED),
    /// then go on. True when written `-j NOTRACK` (the old name, which iptables keeps).
    CtNotrack(bool),
    /// `-j CT` with `--helper`, `--zone`, `--ctevents`, `--expevents` (raw table): the
    /// template the packet's connection is looked up and created with, then go on.
    Ct(CtSpec),
    /// `-j CONNMARK`: change the connection's mark, or copy between it and the packet's,
    /// then go on.
    Connmark(ConnmarkTarget),
    /// `-j DNAT`, `SNAT`, `MASQUERADE`, `REDIRECT`, `NETMAP` (nat table): the binding of a new
    /// flow; the packet is accepted.
    Nat(NatTarget),
    /// `-j TTL`: rewrite the IPv4 TTL (and the header checksum), then go on.
    Ttl {
        /// Set, increment or decrement.
        mode: TtlMode,
        /// The operand.
        value: u8,
    },
    /// `-j TOS --set-tos value/mask` (also `--and-tos`, `--or-tos`, `--xor-tos`): the TOS
    /// byte becomes `(tos & !mask) ^ value`, then go on (mangle table only).
    Tos {
        /// Bits XORed in.
        value: u8,
        /// Bits cleared first.
        mask: u8,
    },
    /// `-j DSCP --set-dscp n` (or `--set-dscp-class`): the upper six TOS bits become `n`,
    /// then go on (mangle table only).
    Dscp(u8),
    /// `-j CLASSIFY --set-class major:minor`: `skb->priority` becomes `major << 16 | minor`,
    /// then go on.
    Classify(u32),
    /// `-j NFQUEUE`: hand the packet to a userspace listener (nfnetlink_queue), which decides.
    Nfqueue(NfqueueSpec),
    /// `-j NFLOG`: hand the packet to nfnetlink_log's group, then go on.
    Nflog(NflogSpec<'a>),
    /// `-j TCPMSS --set-mss n` or `--clamp-mss-to-pmtu` ([`super::tcpmss::CLAMP_PMTU`]):
    /// lower a SYN's MSS option (or add one), then go on.
    TcpMss(u16),
}

impl<'a> Target<'a> {
    /// The name `-j` takes for the target (a verdict, a chain, an extension); empty for none
    /// (what `-L` and `-v` print in the target column).
    pub fn name(&self) -> &'a str {
        match *self {
            Target::None => "",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => c,
            ref t => t.extension_name().unwrap_or(""),
        }
    }

    /// The name of a target extension as `-j` takes it (`LOG`, `DNAT`, ...); `None` for the
    /// standard verdicts, jumps and gotos. A user chain of that name would take the `-j` instead
    /// (iptables: "Warning: using chain X, not extension").
    pub fn extension_name(&self) -> Option<&'static str> {
        Some(match self {
            Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => return None,
            Target::Reject(_) => "REJECT",
            Target::Log(_) => "LOG",
            Target::Mark { .. } => "MARK",
            Target::Ttl { .. } => "TTL",
            Target::Tos { .. } => "TOS",
            Target::Dscp(_) => "DSCP",
            Target::Classify(_) => "CLASSIFY",
            Target::TcpMss(_) => "TCPMSS",
            Target::Nflog(_) => "NFLOG",
            Target::Nfqueue(_) => "NFQUEUE",
            Target::CtNotrack(_) | Target::Ct(_) => "CT",
            Target::Connmark(_) => "CONNMARK",
            Target::Nat(n) => n.kind.name(),
        })
    }
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleSpec<'a> {
    /// `-s`.
    pub src: Ipv4Net,
    /// `! -s`.
    pub src_invert: bool,
    /// `-d`.
    pub dst: Ipv4Net,
    /// `! -d`.
    pub dst_invert: bool,
    /// `-i`.
    pub in_iface: Iface,
    /// `! -i`.
    pub in_invert: bool,
    /// `-o`.
    pub out_iface: Iface,
    /// `! -o`.
    pub out_invert: bool,
    /// `-p` protocol number (0: all).
    pub proto: u8,
    /// `! -p`.
    pub proto_invert: bool,
    /// `-f` (`Some(true)`), `! -f` (`Some(false)`).
    pub fragment: Option<bool>,
    /// Matches in the order given.
    pub matches: [Option<Match<'a>>; MAX_MATCHES],
    /// What to do on a match.
    pub target: Target<'a>,
}

impl Default for RuleSpec<'_> {
    fn default() -> Self {
        Self {
            src: Ipv4Net::ANY,
            src_invert: false,
            dst: Ipv4Net::ANY,
            dst_invert: false,
            in_iface: Iface::default(),
            in_invert: false,
            out_iface: Iface::default(),
            out_invert: false,
            proto: 0,
            proto_invert: false,
            fragment: None,
            matches: [None; MAX_MATCHES],
            target: Target::None,
        }
    }
}

impl<'a> RuleSpec<'a> {
    /// The matches, in order.
    pub fn matches(&self) -> impl Iterator<Item = &Match<'a>> {
        self.matches.iter().flatten()
    }

    /// Appends a match; `Err` when the rule already has [`MAX_MATCHES`].
    pub fn push_match(&mut self, m: Match<'a>) -> Result<(), Match<'a>> {
        match self.matches.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(m);
                Ok(())
            }
            None => Err(m),
        }
    }
}

/// A builtin chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Policy {
    /// ACCEPT.
    Accept = 0,
    /// DROP.
    Drop = 1,
}

impl Policy {
    /// From its wire number.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Policy::Accept),
            1 => Some(Policy::Drop),
            _ => None,
        }
    }

    /// The name iptables prints.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// Packet and byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// True when `name` is a valid user chain name: not empty, at most [`MAX_CHAIN_NAME`] bytes,
/// not starting with `-` or `!`, no whitespace, and not a target name.
pub fn valid_chain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHAIN_NAME
        && !name.starts_with('-')
        && !name.starts_with('!')
        && !name.bytes().any(|b| b.is_ascii_whitespace())
        && !matches!(name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE")
}


/// What `-j CT` (without `--notrack`) gives a packet before the conntrack stage (xt_CT's
/// template): the helper of a flow it starts, the zone it is looked up and created in, and the
/// events a flow it starts reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtSpec {
    /// `--notrack` given with other options (iptables accepts and lists them; the packet is
    /// UNTRACKED and the rest has no effect, as in xt_CT).
    pub notrack: bool,
    /// `--helper ftp`: `conntrack::table::HELPER_FTP`, 0 for none.
    pub helper: u8,
    /// `--zone`, `--zone-orig`, `--zone-reply`: the zone id (0: the default zone).
    pub zone: u16,
    /// [`ctzone`] bits: which directions the zone applies to, and `mark`.
    pub zone_flags: u8,
    /// `--ctevents`: bits `1 << IPCT_*` ([`ctevent`]); used when `events_set`.
    pub ctevents: u16,
    /// `--expevents new`: bit 0.
    pub expevents: u8,
    /// `--ctevents` or `--expevents` was given: flows started with this template report
    /// only the events in `ctevents` (xt_CT adds the event extension then, even for a zero
    /// mask).
    pub events_set: bool,
}

/// [`CtSpec::zone_flags`] bits (the kernel's `XT_CT_ZONE_*`).
pub mod ctzone {
    /// The zone applies to the original direction (`--zone-orig`).
    pub const ORIG: u8 = 1 << 0;
    /// The zone applies to the reply direction (`--zone-reply`).
    pub const REPLY: u8 = 1 << 1;
    /// The zone id is the packet's mark (`--zone mark`).
    pub const MARK: u8 = 1 << 2;
}

/// Conntrack event bits (`1 << IPCT_*`), as `--ctevents` names them, in iptables' order.
pub mod ctevent {
    /// `IPCT_NEW`.
    pub const NEW: u16 = 1 << 0;
    /// `IPCT_RELATED`.
    pub const RELATED: u16 = 1 << 1;
    /// `IPCT_DESTROY`.
    pub const DESTROY: u16 = 1 << 2;
    /// `IPCT_REPLY`.
    pub const REPLY: u16 = 1 << 3;
    /// `IPCT_ASSURED`.
    pub const ASSURED: u16 = 1 << 4;
    /// `IPCT_PROTOINFO`.
    pub const PROTOINFO: u16 = 1 << 5;
    /// `IPCT_HELPER`.
    pub const HELPER: u16 = 1 << 6;
    /// `IPCT_MARK`.
    pub const MARK: u16 = 1 << 7;
    /// `IPCT_NATSEQADJ`.
    pub const NATSEQADJ: u16 = 1 << 8;
    /// `IPCT_SECMARK`.
    pub const SECMARK: u16 = 1 << 9;
    /// Every bit, by name, in libxt_CT's order.
    pub const NAMES: [(&str, u16); 10] = [
        ("new", NEW),
        ("related", RELATED),
        ("destroy", DESTROY),
        ("reply", REPLY),
        ("assured", ASSURED),
        ("protoinfo", PROTOINFO),
        ("helper", HELPER),
        ("mark", MARK),
        ("natseqinfo", NATSEQADJ),
        ("secmark", SECMARK),
    ];
    /// Every event.
    pub const ALL: u16 = (1 << 10) - 1;
}


/// The NAT targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// `DNAT --to-destination`.
    Dnat = 0,
    /// `SNAT --to-source`.
    Snat = 1,
    /// `MASQUERADE`: SNAT to the outgoing interface's address.
    Masquerade = 2,
    /// `REDIRECT`: DNAT to the incoming interface's address (loopback for local packets).
    Redirect = 3,
    /// `NETMAP --to`: the prefix of the address changes, the host part stays.
    Netmap = 4,
}

impl NatKind {
    /// The kind of wire value `v`.
    pub fn from_u8(v: u8) -> Option<NatKind> {
        Some(match v {
            0 => NatKind::Dnat,
            1 => NatKind::Snat,
            2 => NatKind::Masquerade,
            3 => NatKind::Redirect,
            4 => NatKind::Netmap,
            _ => return None,
        })
    }

    /// The target's name.
    pub fn name(self) -> &'static str {
        match self {
            NatKind::Dnat => "DNAT",
            NatKind::Snat => "SNAT",
            NatKind::Masquerade => "MASQUERADE",
            NatKind::Redirect => "REDIRECT",
            NatKind::Netmap => "NETMAP",
        }
    }
}

/// A NAT target: its kind and range (`--to-destination`, `--to-source`, `--to-ports`, `--to`,
/// and the `--random`, `--random-fully`, `--persistent` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatTarget {
    /// Which target.
    pub kind: NatKind,
    /// The range and flags.
    pub range: super::super::nat::NatRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connbytes_as_the_kernel() {
        let c = |from, to, dir, mode| ConnbytesMatch { from, to, dir, mode };
        let n = [(3, 300), (2, 1000)];
        assert!(c(0, 3, ConnbytesMatch::ORIGINAL, ConnbytesMatch::PACKETS).matches(&n));
        assert!(!c(4, u64::MAX, ConnbytesMatch::ORIGINAL, ConnbytesMatch::PACKETS).matches(&n));
        assert!(c(5, 5, ConnbytesMatch::BOTH, ConnbytesMatch::PACKETS).matches(&n));
        assert!(c(1000, 1000, ConnbytesMatch::REPLY, ConnbytesMatch::BYTES).matches(&n));
        // avgpkt over both: 1300 / 5 = 260.
        assert!(c(260, 260, ConnbytesMatch::BOTH, ConnbytesMatch::AVGPKT).matches(&n));
        // `! --connbytes 2:10` is stored as from 10, to 2: outside.
        assert!(!c(10, 2, ConnbytesMatch::BOTH, ConnbytesMatch::PACKETS).matches(&n));
        assert!(c(10, 2, ConnbytesMatch::ORIGINAL, ConnbytesMatch::BYTES).matches(&n));
        assert!(c(0, 0, ConnbytesMatch::BOTH, ConnbytesMatch::AVGPKT).matches(&[(0, 0), (0, 0)]));
    }

    #[test]
    fn connmark_shifts() {
        let t = |mode, ctmark, ctmask, nfmask, shift_right, shift_bits| ConnmarkTarget {
            mode,
            ctmark,
            ctmask,
            nfmask,
            shift_right,
            shift_bits,
        };
        // --set-xmark 0x1/0xff --left-shift-mark 4: the whole new mark shifts.
        assert_eq!(t(ConnmarkMode::Set, 1, 0xff, 0, false, 4).apply(0x1200, 0), (Some(0x12010), None));
        // Unchanged: no write (the kernel sends no event then).
        assert_eq!(t(ConnmarkMode::Set, 0x12, 0xff, 0, false, 0).apply(0x12, 0), (None, None));
        // --save-mark --right-shift-mark 8: only the packet's part shifts.
        assert_eq!(t(ConnmarkMode::Save, 0, 0xff, 0xff00, true, 8).apply(0xab00, 0x3400), (Some(0xab34), None));
        // --restore-mark --mask 0xff with a shift of 32 gives 0 for the shifted part.
        assert_eq!(t(ConnmarkMode::Restore, 0, 0xff, 0xff, false, 32).apply(0x77, 0x1ff), (None, Some(0x100)));
    }

    #[test]
    fn prefixes_and_masks() {
        let n = Ipv4Net::with_prefix(0x0a01_0203, 8).unwrap();
        assert_eq!(n, Ipv4Net { addr: 0x0a00_0000, mask: 0xff00_0000 });
        assert!(n.contains(0x0aff_ffff));
        assert!(!n.contains(0x0b00_0000));
        assert_eq!(n.prefix_len(), Some(8));
        assert_eq!(Ipv4Net::ANY.prefix_len(), Some(0));
        assert_eq!(Ipv4Net::with_prefix(1, 32).unwrap().prefix_len(), Some(32));
        assert_eq!(Ipv4Net { addr: 0, mask: 0xff00_ff00 }.prefix_len(), None);
        assert!(Ipv4Net::with_prefix(0, 33).is_none());
    }

    #[test]
    fn interface_patterns() {
        let eth = Iface::parse("eth+").unwrap();
        assert!(eth.matches(b"eth0") && eth.matches(b"eth") && !eth.matches(b"et"));
        let exact = Iface::parse("veth1").unwrap();
        assert!(exact.matches(b"veth1") && !exact.matches(b"veth10"));
        assert!(Iface::parse("0123456789abcdef").is_none());
        assert!(Iface::parse("").is_none());
        assert!(Iface::default().is_any());
        assert!(Iface::parse("+").unwrap().matches(b"anything"));
    }

    #[test]
    fn chain_names() {
        assert!(valid_chain_name("KUBE-SVC-ABCDEFGHIJKLMNOP"));
        assert!(!valid_chain_name(""));
        assert!(!valid_chain_name("-x"));
        assert!(!valid_chain_name("ACCEPT"));
        assert!(!valid_chain_name("a b"));
        assert!(!valid_chain_name("12345678901234567890123456789"));
    }

    #[test]
    fn matches_keep_order_and_limit() {
        let mut r = RuleSpec::default();
        for i in 0..MAX_MATCHES {
            r.push_match(Match::Ttl(TtlMatch { op: TtlOp::Eq, value: i as u8 })).unwrap();
        }
        assert!(r.push_match(Match::Comment("x")).is_err());
        let values: [u8; MAX_MATCHES] = core::array::from_fn(|i| match r.matches[i] {
            Some(Match::Ttl(t)) => t.value,
            _ => 255,
        });
        assert_eq!(values, [0, 1, 2, 3, 4, 5, 6, 7]);
    }
}
