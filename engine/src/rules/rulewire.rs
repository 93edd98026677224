// SPDX-License-Identifier: GPL-2.0

//! The wire form of rules, chains and tables (see [`super::super::wire`] for the framing).
//!
//! A rule is a sequence of attributes (`R_*`). Each match and the target are one attribute
//! whose payload starts with a `u32` kind followed by a fixed little layout, like the
//! `xt_*_info` blobs of x_tables: simple to validate, and the same code encodes (rnfctl) and
//! decodes (kernel, and rnfctl when listing). The encoding of a rule is canonical: two rules
//! are the same rule exactly when their encodings are equal (what `-D`/`-C` by spec compare).
//!
//! A table travels as top-level `A_TABLE`, `A_GENERATION`, then repeated `A_CHAIN` and
//! `A_RULE` attributes (repeated at the top level because one nest cannot exceed 64 KiB).

use super::rule::{
    ctevent, ctzone, CtSpec, NatKind, NatTarget,
    AddrRange, AddrTypeMatch, DscpMatch, EcnMatch, MacMatch, NflogSpec, NfqueueSpec, OwnerMatch, PktTypeMatch, QuotaMatch, MAX_NFLOG_PREFIX, SpiMatch, TcpMssMatch, TosMatch, MAX_DSCP, Iface, IcmpMatch, IpRangeMatch, Ipv4Net, LengthMatch, LimitMatch,
    LogSpec, MarkMatch, Match, MultiportKind, MultiportMatch, PortMatch, PortRange, RejectWith,
    RuleSpec, StatisticMatch, TcpFlags, ctflag, ConntrackMatch, ConnmarkMode, ConnmarkTarget, StateMatch, TcpMatch, Target, TtlMatch, TtlMode, TtlOp, UdpMatch,
    MAX_CHAIN_NAME, MAX_COMMENT, MAX_LOG_PREFIX, MAX_MULTIPORT,
};
use super::super::wire::{Attr, AttrIter, Encoder, WireError};

/// Rule attribute: source `[addr u32, mask u32]` (host order, native endian).
pub const R_SRC: u16 = 1;
/// Rule attribute: destination, as [`R_SRC`].
pub const R_DST: u16 = 2;
/// Rule attribute: `-i` pattern as typed (`eth+`), NUL-terminated.
pub const R_IN: u16 = 3;
/// Rule attribute: `-o` pattern.
pub const R_OUT: u16 = 4;
/// Rule attribute: u32 protocol number.
pub const R_PROTO: u16 = 5;
/// Rule attribute: u32 `RF_*` flags.
pub const R_FLAGS: u16 = 6;
/// Rule attribute: one match (repeated, in order): u32 `M_*` kind, then its layout.
pub const R_MATCH: u16 = 7;
/// Rule attribute: the target: u32 `T_*` kind, then its layout.
pub const R_TARGET: u16 = 8;

/// Flag: `! -s`.
pub const RF_SRC_INV: u32 = 1 << 0;
/// Flag: `! -d`.
pub const RF_DST_INV: u32 = 1 << 1;
/// Flag: `! -i`.
pub const RF_IN_INV: u32 = 1 << 2;
/// Flag: `! -o`.
pub const RF_OUT_INV: u32 = 1 << 3;
/// Flag: `! -p`.
pub const RF_PROTO_INV: u32 = 1 << 4;
/// Flag: `-f`.
pub const RF_FRAG: u32 = 1 << 5;
/// Flag: `! -f`.
pub const RF_NOT_FRAG: u32 = 1 << 6;
const RF_ALL: u32 = (1 << 7) - 1;

/// Match kinds.
pub const M_TCP: u32 = 1;
/// Match kind udp.
pub const M_UDP: u32 = 2;
/// Match kind icmp.
pub const M_ICMP: u32 = 3;
/// Match kind multiport.
pub const M_MULTIPORT: u32 = 4;
/// Match kind comment.
pub const M_COMMENT: u32 = 5;
/// Match kind mark.
pub const M_MARK: u32 = 6;
/// Match kind statistic.
pub const M_STATISTIC: u32 = 7;
/// Match kind limit.
pub const M_LIMIT: u32 = 8;
/// Match kind iprange.
pub const M_IPRANGE: u32 = 9;
/// Match kind length.
pub const M_LENGTH: u32 = 10;
/// Match kind addrtype.
pub const M_ADDRTYPE: u32 = 11;
/// Match kind ttl.
pub const M_TTL: u32 = 12;
/// Match conntrack (flags u16, invert u16, state u16, status u16, proto u8, 4 x (addr u32,
/// mask u32), 4 x (lo u16, hi u16), expires min u32, max u32).
pub const M_CONNTRACK: u32 = 13;
/// Match state (states u16).
pub const M_STATE: u32 = 14;
/// Match connmark (value u32, mask u32, invert u8).
pub const M_CONNMARK: u32 = 15;
/// Match recent (check_set u8, invert u8, dest u8, seconds u32, hit_count u32, mask u32, name).
pub const M_RECENT: u32 = 16;
/// Match connbytes (from u64, to u64, dir u8, mode u8).
pub const M_CONNBYTES: u32 = 17;
/// Match connlimit (limit u32, prefix u8, dest u8, upto u8).
pub const M_CONNLIMIT: u32 = 18;
/// Match tos (value u8, mask u8, invert u8).
pub const M_TOS: u32 = 19;
/// Match dscp (dscp u8, invert u8).
pub const M_DSCP: u32 = 20;
/// Match ecn (operation u8, invert u8, ip_ect u8).
pub const M_ECN: u32 = 21;
/// Match esp (min u32, max u32, invert u8).
pub const M_ESP: u32 = 22;
/// Match ah (min u32, max u32, invert u8).
pub const M_AH: u32 = 23;
/// Match pkttype (type u8, invert u8).
pub const M_PKTTYPE: u32 = 24;
/// Match mac (6 address bytes, invert u8).
pub const M_MAC: u32 = 25;
/// Match tcpmss (min u16, max u16, invert u8).
pub const M_TCPMSS: u32 = 26;
/// Match owner (flags u8, invert u8, uid min u32, uid max u32, gid min u32, gid max u32).
pub const M_OWNER: u32 = 27;
/// Match quota (quota u64, invert u8).
pub const M_QUOTA: u32 = 28;

/// Target kinds.
pub const T_NONE: u32 = 0;
/// Target ACCEPT.
pub const T_ACCEPT: u32 = 1;
/// Target DROP.
pub const T_DROP: u32 = 2;
/// Target RETURN.
pub const T_RETURN: u32 = 3;
/// Target jump (chain name follows).
pub const T_JUMP: u32 = 4;
/// Target goto (chain name follows).
pub const T_GOTO: u32 = 5;
/// Target REJECT (u32 kind follows).
pub const T_REJECT: u32 = 6;
/// Target LOG (level u8, flags u8, prefix).
pub const T_LOG: u32 = 7;
/// Target MARK (value u32, mask u32).
pub const T_MARK: u32 = 8;
/// Target TTL (mode u8, value u8).
pub const T_TTL: u32 = 9;
/// Target CT --notrack (u8: 1 when written NOTRACK).
pub const T_CT_NOTRACK: u32 = 10;
/// Target CT template (helper u8, zone u16, zone flags u8, ctevents u16, expevents u8, events set u8, notrack u8).
pub const T_CT_HELPER: u32 = 11;
/// Target NAT (kind u8, flags u8, min addr u32, max addr u32, min port u16, max port u16, base port u16).
pub const T_NAT: u32 = 13;
/// Target CONNMARK (mode u8, ctmark u32, ctmask u32, nfmask u32, shift_right u8, shift_bits u8).
pub const T_CONNMARK: u32 = 12;
/// Target TOS (value u8, mask u8).
pub const T_TOS: u32 = 14;
/// Target DSCP (dscp u8).
pub const T_DSCP: u32 = 15;
/// Target CLASSIFY (priority u32).
pub const T_CLASSIFY: u32 = 16;
/// Target TCPMSS (mss u16; 0xffff: clamp to the path MTU).
pub const T_TCPMSS: u32 = 17;
/// Target NFLOG (group u16, threshold u16, len u32, copy_len u8, prefix).
pub const T_NFLOG: u32 = 18;
/// Target NFQUEUE (num u16, total u16, flags u8).
pub const T_NFQUEUE: u32 = 19;

/// Top-level attribute: u32 table ([`super::rule::TableId`]).
pub const A_TABLE: u16 = 5;
/// Top-level attribute: u64 generation of the table (bumped by every change).
pub const A_GENERATION: u16 = 6;
/// Top-level attribute, repeated: one chain (`C_*` nest), in order.
pub const A_CHAIN: u16 = 7;
/// Top-level attribute, repeated: one rule (`E_*` nest), in order.
pub const A_RULE: u16 = 8;
/// Top-level attribute: u32 `TF_*` flags of a table replace.
pub const A_TABLE_FLAGS: u16 = 9;

/// Get reply attribute: u64 order in which the table came into existence in its namespace
/// (1 for the first); `iptables-save` lists the newest first.
pub const A_CREATED: u16 = 10;

/// Update request attribute (`CMD_UPDATE_TABLE`), repeated: one change (`O_*` nest), applied
/// in order to the table as the generation the request names left it.
pub const A_OP: u16 = 33;

/// Most [`A_OP`] changes one update request may carry (a chain rewrite counts once).
pub const MAX_OPS: u32 = 4096;

/// Change attribute: u32 [`OpKind`].
pub const O_KIND: u16 = 1;
/// Change attribute: u32 index of the chain among the table's chains.
pub const O_CHAIN: u16 = 2;
/// Change attribute: u32 rule position in the chain, from 0 (insert: the new rule's; equal to
/// the chain's length appends).
pub const O_POS: u16 = 3;
/// Change attribute: u64 packets of the new rule (with [`O_BYTES`]: `-c`).
pub const O_PACKETS: u16 = 4;
/// Change attribute: u64 bytes of the new rule.
pub const O_BYTES: u16 = 5;
/// Change attribute: the new rule's specification (`R_*` nest), for insert and replace.
pub const O_SPEC: u16 = 6;
/// Change attribute: a new chain's name.
pub const O_NAME: u16 = 7;
/// Change attribute: u32 policy ([`Policy`] number) of a builtin chain.
pub const O_POLICY: u16 = 8;
/// Change attribute, repeated: one rule of a chain's new contents, in order (an `E_*` nest as
/// [`A_RULE`]'s; its `E_ID`, when given, keeps a rule the table has, with its counters).
pub const O_RULE: u16 = 9;
/// Change attribute: the chain by name instead of [`O_CHAIN`] (every kind but
/// [`OpKind::NewChain`], which names its chain in [`O_NAME`]; [`OpKind::DefineChain`] only so).
/// Such a change applies to the table as it is ([`TF_CURRENT`]), so it needs no read first:
/// [`O_POS`] `u32::MAX` appends, a delete with an [`O_SPEC`] deletes the first rule equal to
/// it (`-D CHAIN RULE`), and the rules of a chain's new contents ([`O_RULE`]) are new rules
/// (no `E_ID`, `E_CHAIN` 0). With [`TF_CURRENT`], a [`OpKind::NewChain`] must have [`O_POS`]
/// `u32::MAX`: its place in name order ([`O_CHAIN`] is then ignored). Changes by index that
/// follow a new chain in one request count chains with it.
pub const O_CHAIN_NAME: u16 = 10;

/// What one change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A new rule at the position (`-A`, `-I`).
    Insert = 1,
    /// The rule at the position goes (`-D`).
    Delete = 2,
    /// The rule at the position is replaced by a new one (`-R`; its counters restart).
    Replace = 3,
    /// The chain's rules are replaced by the op's [`O_RULE`] list (a chain an
    /// `iptables-restore --noflush` rewrites).
    SetChain = 4,
    /// A new user chain named [`O_NAME`] at position [`O_POS`] among the chains (later chains
    /// move up by one); `u32::MAX`: at its place in name order among the user chains.
    NewChain = 5,
    /// The user chain goes (it must have no rules by then; later chains move down by one).
    DeleteChain = 6,
    /// The builtin chain's policy becomes [`O_POLICY`].
    SetPolicy = 7,
    /// The user chain named in [`O_CHAIN_NAME`] gets the op's [`O_RULE`] list as its rules,
    /// made at its place in name order if it does not exist (a `:CHAIN - [0:0]` line of
    /// `iptables-restore --noflush` and the rules the file appends to it).
    DefineChain = 8,
}

impl OpKind {
    /// From its wire number.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Insert),
            2 => Some(Self::Delete),
            3 => Some(Self::Replace),
            4 => Some(Self::SetChain),
            5 => Some(Self::NewChain),
            6 => Some(Self::DeleteChain),
            7 => Some(Self::SetPolicy),
            8 => Some(Self::DefineChain),
            _ => None,
        }
    }
}

/// One change of a `CMD_UPDATE_TABLE` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpWire<'a> {
    /// What it does.
    pub kind: OpKind,
    /// Index of the chain among the table's chains.
    pub chain: u32,
    /// The chain by name ([`O_CHAIN_NAME`]; then `chain` is not sent).
    pub chain_name: Option<&'a str>,
    /// Position in the chain, from 0.
    pub pos: u32,
    /// Counters of the new rule (`-c`); `None`: from zero.
    pub counters: Option<super::rule::Counters>,
    /// The new rule's [`O_SPEC`] payload (insert and replace).
    pub spec: Option<&'a [u8]>,
    /// The new chain's name ([`OpKind::NewChain`]).
    pub name: Option<&'a str>,
    /// The new policy ([`OpKind::SetPolicy`]).
    pub policy: Option<super::rule::Policy>,
    /// The op's own attributes, where [`op_rules`] finds the rules of a [`OpKind::SetChain`]
    /// or [`OpKind::DefineChain`] (empty when encoding: [`encode_op`] writes none; see
    /// [`encode_op_rule`]).
    pub body: &'a [u8],
}

/// The rules of a [`OpKind::SetChain`] or [`OpKind::DefineChain`] op, in order.
pub fn op_rules<'a>(op: &OpWire<'a>) -> impl Iterator<Item = Result<RuleWire<'a>, WireError>> + 'a {
    AttrIter::new(op.body).filter_map(|x| match x {
        Ok(a) if a.ty == O_RULE => Some(decode_rule_entry(&a)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Writes one rule of a [`OpKind::SetChain`] op: call between [`begin_op`] and `end_nest`.
pub fn encode_op_rule(enc: &mut Encoder<'_>, r: &RuleWire<'_>) {
    encode_entry(enc, O_RULE, r);
}

/// Encodes one [`A_OP`] attribute.
pub fn encode_op(enc: &mut Encoder<'_>, op: &OpWire<'_>) {
    let n = begin_op(enc, op);
    enc.end_nest(n);
}

/// Starts one [`A_OP`] attribute with `op`'s fields; the rules of a [`OpKind::SetChain`] or
/// [`OpKind::DefineChain`] follow ([`encode_op_rule`]), then `enc.end_nest` with the returned
/// mark.
pub fn begin_op(enc: &mut Encoder<'_>, op: &OpWire<'_>) -> super::super::wire::Nest {
    let n = enc.begin_nest(A_OP);
    enc.put_u32(O_KIND, op.kind as u32);
    match op.chain_name {
        Some(n) => enc.put_str(O_CHAIN_NAME, n),
        None => enc.put_u32(O_CHAIN, op.chain),
    }
    enc.put_u32(O_POS, op.pos);
    if let Some(c) = op.counters {
        enc.put_u64(O_PACKETS, c.packets);
        enc.put_u64(O_BYTES, c.bytes);
    }
    if let Some(spec) = op.spec {
        enc.put_bytes(O_SPEC | super::super::wire::NLA_F_NESTED, spec);
    }
    if let Some(name) = op.name {
        enc.put_str(O_NAME, name);
    }
    if let Some(p) = op.policy {
        enc.put_u32(O_POLICY, p as u32);
    }
    n
}

/// Decodes the payload of an [`A_OP`] attribute: insert and replace need a specification,
/// delete takes none (the specification itself is decoded separately, with [`decode_rule`]).
pub fn decode_op<'a>(a: &Attr<'a>) -> Result<OpWire<'a>, WireError> {
    let (mut kind, mut chain, mut pos) = (None, None, None);
    let (mut packets, mut bytes, mut spec) = (None, None, None);
    let (mut name, mut policy, mut rules) = (None, None, false);
    let mut chain_name = None;
    for x in a.nested() {
        let x = x?;
        match x.ty {
            O_KIND => kind = Some(OpKind::from_u32(x.u32()?).ok_or(WireError::BadValue(O_KIND))?),
            O_CHAIN => chain = Some(x.u32()?),
            O_CHAIN_NAME => chain_name = Some(x.str()?),
            O_POS => pos = Some(x.u32()?),
            O_PACKETS => packets = Some(x.u64()?),
            O_BYTES => bytes = Some(x.u64()?),
            O_SPEC => spec = Some(x.payload),
            O_NAME => name = Some(x.str()?),
            O_POLICY => policy = Some(super::rule::Policy::from_u32(x.u32()?).ok_or(WireError::BadValue(O_POLICY))?),
            O_RULE => rules = true,
            other => return Err(WireError::BadValue(other)),
        }
    }
    let counters = match (packets, bytes) {
        (Some(packets), Some(bytes)) => Some(super::rule::Counters { packets, bytes }),
        (None, None) => None,
        _ => return Err(WireError::Missing(O_BYTES)),
    };
    let kind = kind.ok_or(WireError::Missing(O_KIND))?;
    // Each kind takes exactly its own fields; a chain by index or by name.
    let by_name = chain_name.is_some();
    if by_name && (chain.is_some() || kind == OpKind::NewChain) {
        return Err(WireError::BadValue(O_CHAIN_NAME));
    }
    if kind == OpKind::DefineChain && !by_name {
        return Err(WireError::Missing(O_CHAIN_NAME));
    }
    let needs_spec = matches!(kind, OpKind::Insert | OpKind::Replace);
    // A delete by name may name its rule by specification instead of position.
    let spec_ok = spec.is_some() == needs_spec || (by_name && kind == OpKind::Delete);
    if !spec_ok {
        return Err(if needs_spec { WireError::Missing(O_SPEC) } else { WireError::BadValue(O_SPEC) });
    }
    if counters.is_some() && !needs_spec {
        return Err(WireError::BadValue(O_PACKETS));
    }
    if name.is_some() != (kind == OpKind::NewChain) {
        return Err(if name.is_some() { WireError::BadValue(O_NAME) } else { WireError::Missing(O_NAME) });
    }
    if policy.is_some() != (kind == OpKind::SetPolicy) {
        return Err(if policy.is_some() { WireError::BadValue(O_POLICY) } else { WireError::Missing(O_POLICY) });
    }
    if rules && !matches!(kind, OpKind::SetChain | OpKind::DefineChain) {
        return Err(WireError::BadValue(O_RULE));
    }
    Ok(OpWire {
        kind,
        chain: if by_name { 0 } else { chain.ok_or(WireError::Missing(O_CHAIN))? },
        chain_name,
        pos: pos.ok_or(WireError::Missing(O_POS))?,
        counters,
        spec,
        name,
        policy,
        body: a.payload,
    })
}

/// Replace flag: take the counters in the message (`restore -c`); else they start at zero.
pub const TF_SET_COUNTERS: u32 = 1 << 0;
/// Replace flag: fail with EAGAIN unless the table's generation equals `A_GENERATION`.
pub const TF_CHECK_GENERATION: u32 = 1 << 1;
/// Update flag: the builtin chains' policy counters restart at zero (what every
/// iptables-legacy command that changes a table does to them).
pub const TF_RESET_POLICY_COUNTERS: u32 = 1 << 3;
/// Get flag: fail with ENOENT when the table was never read or written (so that
/// `iptables-save` lists only tables that exist, without creating them).
pub const TF_NO_CREATE: u32 = 1 << 2;
/// Update flag: the changes apply to the table as it is now, whatever its generation; each
/// must name its chain ([`O_CHAIN_NAME`]). What a one-rule command (`-A`, `-I`, `-D`, `-R`)
/// sends without reading the table: any refusal changes nothing.
pub const TF_CURRENT: u32 = 1 << 4;

/// Chain attribute: name.
pub const C_NAME: u16 = 1;
/// Chain attribute: u32 policy (builtin chains only).
pub const C_POLICY: u16 = 2;
/// Chain attribute: u64 policy packets (absent: keep the builtin chain's counters).
pub const C_PACKETS: u16 = 3;
/// Chain attribute: u64 policy bytes.
pub const C_BYTES: u16 = 4;

/// Rule entry attribute: u32 index of the rule's chain among the table's chains.
pub const E_CHAIN: u16 = 1;
/// Rule entry attribute: u64 packets (with [`E_BYTES`]: set the counters to these; absent:
/// carry the counters of the rule with the same [`E_ID`] over, or start at zero).
pub const E_PACKETS: u16 = 2;
/// Rule entry attribute: u64 bytes.
pub const E_BYTES: u16 = 3;
/// Rule entry attribute: the rule (`R_*` nest).
pub const E_SPEC: u16 = 4;
/// Rule entry attribute: u64 id the kernel gave the rule (absent or 0 for a new rule).
pub const E_ID: u16 = 5;

/// Writes a fixed little layout into a stack buffer.
struct Bytes {
    buf: [u8; 96],
    len: usize,
}

impl Bytes {
    fn new(kind: u32) -> Self {
        let mut b = Self { buf: [0; 96], len: 0 };
        b.u32(kind);
        b
    }
    fn put(&mut self, s: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) {
            dst.copy_from_slice(s);
            self.len += s.len();
        }
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_ne_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_ne_bytes());
    }
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads a fixed layout, failing on short input.
struct Reader<'a> {
    data: &'a [u8],
    ty: u16,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (head, rest) = (self.data.get(..n), self.data.get(n..));
        match (head, rest) {
            (Some(h), Some(r)) => {
                self.data = r;
                Ok(h)
            }
            _ => Err(WireError::BadLength(self.ty)),
        }
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::BadValue(self.ty)),
        }
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_ne_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let (lo, hi) = (self.u32()?, self.u32()?);
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&lo.to_ne_bytes());
        b[4..].copy_from_slice(&hi.to_ne_bytes());
        Ok(u64::from_ne_bytes(b))
    }
    fn rest_str(&mut self, max: usize) -> Result<&'a str, WireError> {
        let s = core::mem::take(&mut self.data);
        if s.len() > max {
            return Err(WireError::BadLength(self.ty));
        }
        core::str::from_utf8(s).map_err(|_| WireError::BadValue(self.ty))
    }
    fn end(&self) -> Result<(), WireError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(WireError::BadLength(self.ty))
        }
    }
}

fn put_ports(b: &mut Bytes, p: Option<PortMatch>) {
    match p {
        None => {
            b.u8(0);
            b.u8(0);
            b.u16(0);
            b.u16(0);
        }
        Some(p) => {
            b.u8(1);
            b.u8(u8::from(p.invert));
            b.u16(p.range.lo);
            b.u16(p.range.hi);
        }
    }
}

fn get_ports(r: &mut Reader<'_>) -> Result<Option<PortMatch>, WireError> {
    let present = r.bool()?;
    let invert = r.bool()?;
    let lo = r.u16()?;
    let hi = r.u16()?;
    if !present {
        return Ok(None);
    }
    if lo > hi {
        return Err(WireError::BadValue(r.ty));
    }
    Ok(Some(PortMatch { range: PortRange { lo, hi }, invert }))
}

fn put_range(b: &mut Bytes, r: Option<AddrRange>) {
    let r2 = r.unwrap_or(AddrRange { lo: 0, hi: 0, invert: false });
    b.u8(u8::from(r.is_some()));
    b.u8(u8::from(r2.invert));
    b.u32(r2.lo);
    b.u32(r2.hi);
}

fn get_range(r: &mut Reader<'_>) -> Result<Option<AddrRange>, WireError> {
    let present = r.bool()?;
    let invert = r.bool()?;
    let lo = r.u32()?;
    let hi = r.u32()?;
    Ok(if present { Some(AddrRange { lo, hi, invert }) } else { None })
}

/// Encodes one match as an [`R_MATCH`] attribute.
fn put_match(enc: &mut Encoder<'_>, m: &Match<'_>) {
    let b = match m {
        Match::Tcp(t) => {
            let mut b = Bytes::new(M_TCP);
            put_ports(&mut b, t.sport);
            put_ports(&mut b, t.dport);
            let f = t.flags.unwrap_or(TcpFlags { mask: 0, comp: 0, invert: false });
            b.u8(u8::from(t.flags.is_some()));
            b.u8(u8::from(f.invert));
            b.u8(f.mask);
            b.u8(f.comp);
            let (opt, inv) = t.option.unwrap_or((0, false));
            b.u8(u8::from(t.option.is_some()));
            b.u8(u8::from(inv));
            b.u8(opt);
            b
        }
        Match::Udp(u) => {
            let mut b = Bytes::new(M_UDP);
            put_ports(&mut b, u.sport);
            put_ports(&mut b, u.dport);
            b
        }
        Match::Icmp(i) => {
            let mut b = Bytes::new(M_ICMP);
            b.u8(i.icmp_type);
            b.u8(i.code_min);
            b.u8(i.code_max);
            b.u8(u8::from(i.invert));
            b
        }
        Match::Multiport(mp) => {
            let mut b = Bytes::new(M_MULTIPORT);
            b.u8(mp.kind as u8);
            b.u8(mp.count);
            b.u8(u8::from(mp.invert));
            for p in mp.list() {
                b.u16(p.lo);
                b.u16(p.hi);
            }
            b
        }
        Match::Recent(rc) => {
            // Longer than the fixed buffer: written directly.
            let mut tmp = [0u8; 4 + 15 + super::recent::NAME_LEN];
            let n = rc.name.len().min(super::recent::NAME_LEN - 1);
            tmp[..4].copy_from_slice(&M_RECENT.to_ne_bytes());
            tmp[4] = rc.check_set;
            tmp[5] = u8::from(rc.invert);
            tmp[6] = u8::from(rc.dest);
            tmp[7..11].copy_from_slice(&rc.seconds.to_ne_bytes());
            tmp[11..15].copy_from_slice(&rc.hit_count.to_ne_bytes());
            tmp[15..19].copy_from_slice(&rc.mask.to_ne_bytes());
            tmp[19..19 + n].copy_from_slice(&rc.name.as_bytes()[..n]);
            enc.put_bytes(R_MATCH, &tmp[..19 + n]);
            return;
        }
        Match::Comment(c) => {
            // Longer than the fixed buffer: written directly.
            let mut tmp = [0u8; 4 + MAX_COMMENT];
            let n = c.len().min(MAX_COMMENT);
            tmp[..4].copy_from_slice(&M_COMMENT.to_ne_bytes());
            tmp[4..4 + n].copy_from_slice(&c.as_bytes()[..n]);
            enc.put_bytes(R_MATCH, &tmp[..4 + n]);
            return;
        }
        Match::Mark(mk) | Match::Connmark(mk) => {
            let mut b = Bytes::new(if matches!(m, Match::Mark(_)) { M_MARK } else { M_CONNMARK });
            b.u32(mk.value);
            b.u32(mk.mask);
            b.u8(u8::from(mk.invert));
            b
        }
        Match::Statistic(s) => {
            let mut b = Bytes::new(M_STATISTIC);
            match *s {
                StatisticMatch::Random { probability, invert } => {
                    b.u8(0);
                    b.u8(u8::from(invert));
                    b.u32(probability);
                    b.u32(0);
                }
                StatisticMatch::Nth { every, packet, invert } => {
                    b.u8(1);
                    b.u8(u8::from(invert));
                    b.u32(every);
                    b.u32(packet);
                }
            }
            b
        }
        Match::Limit(l) => {
            let mut b = Bytes::new(M_LIMIT);
            b.u32(l.avg);
            b.u32(l.burst);
            b
        }
        Match::IpRange(ir) => {
            let mut b = Bytes::new(M_IPRANGE);
            put_range(&mut b, ir.src);
            put_range(&mut b, ir.dst);
            b
        }
        Match::Length(l) => {
            let mut b = Bytes::new(M_LENGTH);
            b.u16(l.min);
            b.u16(l.max);
            b.u8(u8::from(l.invert));
            b
        }
        Match::AddrType(a) => {
            let mut b = Bytes::new(M_ADDRTYPE);
            b.u16(a.src);
            b.u16(a.dst);
            b.u8(u8::from(a.src_invert));
            b.u8(u8::from(a.dst_invert));
            b.u8(u8::from(a.limit_iface_in));
            b.u8(u8::from(a.limit_iface_out));
            b
        }
        Match::Ttl(t) => {
            let mut b = Bytes::new(M_TTL);
            b.u8(t.op as u8);
            b.u8(t.value);
            b
        }
        Match::Conntrack(c) => {
            let mut b = Bytes::new(M_CONNTRACK);
            b.u16(c.flags);
            b.u16(c.invert);
            b.u16(c.state);
            b.u16(c.status);
            b.u8(c.proto);
            for n in &c.addrs {
                b.u32(n.addr);
                b.u32(n.mask);
            }
            for p in &c.ports {
                b.u16(p.lo);
                b.u16(p.hi);
            }
            b.u32(c.expires.0);
            b.u32(c.expires.1);
            b
        }
        Match::Connlimit(c) => {
            let mut b = Bytes::new(M_CONNLIMIT);
            b.u32(c.limit);
            b.u8(c.prefix);
            b.u8(u8::from(c.dest));
            b.u8(u8::from(c.upto));
            b
        }
        Match::Connbytes(c) => {
            let mut b = Bytes::new(M_CONNBYTES);
            b.put(&c.from.to_ne_bytes());
            b.put(&c.to.to_ne_bytes());
            b.u8(c.dir);
            b.u8(c.mode);
            b
        }
        Match::State(s) => {
            let mut b = Bytes::new(M_STATE);
            b.u16(s.states);
            b
        }
        Match::Tos(t) => {
            let mut b = Bytes::new(M_TOS);
            b.u8(t.value);
            b.u8(t.mask);
            b.u8(u8::from(t.invert));
            b
        }
        Match::Dscp(d) => {
            let mut b = Bytes::new(M_DSCP);
            b.u8(d.dscp);
            b.u8(u8::from(d.invert));
            b
        }
        Match::Ecn(e) => {
            let mut b = Bytes::new(M_ECN);
            b.u8(e.operation);
            b.u8(e.invert);
            b.u8(e.ip_ect);
            b
        }
        Match::Esp(spi) | Match::Ah(spi) => {
            let mut b = Bytes::new(if matches!(m, Match::Esp(_)) { M_ESP } else { M_AH });
            b.u32(spi.min);
            b.u32(spi.max);
            b.u8(u8::from(spi.invert));
            b
        }
        Match::PktType(p) => {
            let mut b = Bytes::new(M_PKTTYPE);
            b.u8(p.pkt_type);
            b.u8(u8::from(p.invert));
            b
        }
        Match::Mac(mac) => {
            let mut b = Bytes::new(M_MAC);
            b.put(&mac.src);
            b.u8(u8::from(mac.invert));
            b
        }
        Match::Quota(q) => {
            let mut b = Bytes::new(M_QUOTA);
            b.put(&q.quota.to_ne_bytes());
            b.u8(u8::from(q.invert));
            b
        }
        Match::Owner(o) => {
            let mut b = Bytes::new(M_OWNER);
            b.u8(o.flags);
            b.u8(o.invert);
            for v in [o.uid_min, o.uid_max, o.gid_min, o.gid_max] {
                b.u32(v);
            }
            b
        }
        Match::TcpMss(t) => {
            let mut b = Bytes::new(M_TCPMSS);
            b.u16(t.min);
            b.u16(t.max);
            b.u8(u8::from(t.invert));
            b
        }
    };
    enc.put_bytes(R_MATCH, b.bytes());
}

fn get_match<'a>(a: &Attr<'a>) -> Result<Match<'a>, WireError> {
    let mut r = Reader { data: a.payload, ty: a.ty };
    let kind = r.u32()?;
    let m = match kind {
        M_TCP => {
            let sport = get_ports(&mut r)?;
            let dport = get_ports(&mut r)?;
            let has_flags = r.bool()?;
            let finv = r.bool()?;
            let mask = r.u8()?;
            let comp = r.u8()?;
            let has_opt = r.bool()?;
            let oinv = r.bool()?;
            let opt = r.u8()?;
            Match::Tcp(TcpMatch {
                sport,
                dport,
                flags: if has_flags { Some(TcpFlags { mask, comp, invert: finv }) } else { None },
                option: if has_opt { Some((opt, oinv)) } else { None },
            })
        }
        M_UDP => Match::Udp(UdpMatch { sport: get_ports(&mut r)?, dport: get_ports(&mut r)? }),
        M_ICMP => {
            let icmp_type = r.u8()?;
            let code_min = r.u8()?;
            let code_max = r.u8()?;
            let invert = r.bool()?;
            if code_min > code_max {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Icmp(IcmpMatch { icmp_type, code_min, code_max, invert })
        }
        M_MULTIPORT => {
            let kind = match r.u8()? {
                0 => MultiportKind::Source,
                1 => MultiportKind::Destination,
                2 => MultiportKind::Either,
                _ => return Err(WireError::BadValue(a.ty)),
            };
            let count = r.u8()?;
            let invert = r.bool()?;
            if count == 0 || usize::from(count) > MAX_MULTIPORT {
                return Err(WireError::BadValue(a.ty));
            }
            let mut ports = [PortRange::default(); MAX_MULTIPORT];
            for p in ports.iter_mut().take(usize::from(count)) {
                let lo = r.u16()?;
                let hi = r.u16()?;
                if lo > hi {
                    return Err(WireError::BadValue(a.ty));
                }
                *p = PortRange { lo, hi };
            }
            Match::Multiport(MultiportMatch { kind, ports, count, invert })
        }
        M_COMMENT => Match::Comment(r.rest_str(MAX_COMMENT)?),
        M_RECENT => Match::Recent(super::recent::RecentMatch {
            check_set: r.u8()?,
            invert: r.bool()?,
            dest: r.bool()?,
            seconds: r.u32()?,
            hit_count: r.u32()?,
            mask: r.u32()?,
            name: r.rest_str(super::recent::NAME_LEN - 1)?,
        }),
        M_MARK => {
            let value = r.u32()?;
            let mask = r.u32()?;
            let invert = r.bool()?;
            Match::Mark(MarkMatch { value, mask, invert })
        }
        M_STATISTIC => {
            let mode = r.u8()?;
            let invert = r.bool()?;
            let x = r.u32()?;
            let y = r.u32()?;
            match mode {
                0 => Match::Statistic(StatisticMatch::Random { probability: x, invert }),
                1 if y <= x => Match::Statistic(StatisticMatch::Nth { every: x, packet: y, invert }),
                _ => return Err(WireError::BadValue(a.ty)),
            }
        }
        M_LIMIT => {
            let avg = r.u32()?;
            let burst = r.u32()?;
            if avg == 0 || burst == 0 {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Limit(LimitMatch { avg, burst })
        }
        M_IPRANGE => {
            let src = get_range(&mut r)?;
            let dst = get_range(&mut r)?;
            if src.is_none() && dst.is_none() {
                return Err(WireError::BadValue(a.ty));
            }
            Match::IpRange(IpRangeMatch { src, dst })
        }
        M_LENGTH => {
            let min = r.u16()?;
            let max = r.u16()?;
            let invert = r.bool()?;
            if min > max {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Length(LengthMatch { min, max, invert })
        }
        M_ADDRTYPE => {
            let src = r.u16()?;
            let dst = r.u16()?;
            Match::AddrType(AddrTypeMatch {
                src,
                dst,
                src_invert: r.bool()?,
                dst_invert: r.bool()?,
                limit_iface_in: r.bool()?,
                limit_iface_out: r.bool()?,
            })
        }
        M_TOS => Match::Tos(TosMatch { value: r.u8()?, mask: r.u8()?, invert: r.bool()? }),
        M_DSCP => {
            let dscp = r.u8()?;
            if dscp > MAX_DSCP {
                // xt_dscp's dscp_mt_check (EDOM).
                return Err(WireError::BadValue(a.ty));
            }
            Match::Dscp(DscpMatch { dscp, invert: r.bool()? })
        }
        M_ECN => {
            let e = EcnMatch { operation: r.u8()?, invert: r.u8()?, ip_ect: r.u8()? };
            // xt_ecn's ecn_mt_check4: only the known bits; the ECT value has two bits.
            if e.operation & !EcnMatch::ALL != 0 || e.invert & !EcnMatch::ALL != 0 || e.ip_ect > 3 {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Ecn(e)
        }
        k @ (M_ESP | M_AH) => {
            let m = SpiMatch { min: r.u32()?, max: r.u32()?, invert: r.bool()? };
            if k == M_ESP { Match::Esp(m) } else { Match::Ah(m) }
        }
        M_PKTTYPE => Match::PktType(PktTypeMatch { pkt_type: r.u8()?, invert: r.bool()? }),
        M_MAC => {
            let src = r.take(6)?.try_into().map_err(|_| WireError::BadLength(a.ty))?;
            Match::Mac(MacMatch { src, invert: r.bool()? })
        }
        M_QUOTA => {
            let quota = u64::from_ne_bytes(r.take(8)?.try_into().map_err(|_| WireError::BadLength(a.ty))?);
            Match::Quota(QuotaMatch { quota, invert: r.bool()? })
        }
        M_OWNER => {
            let o = OwnerMatch {
                flags: r.u8()?,
                invert: r.u8()?,
                uid_min: r.u32()?,
                uid_max: r.u32()?,
                gid_min: r.u32()?,
                gid_max: r.u32()?,
            };
            // xt_owner's owner_check: known bits, ranges in order, no (uid_t)-1; and
            // --suppl-groups only with --gid-owner and not inverted (as iptables builds it).
            let valid = |lo: u32, hi: u32| lo <= hi && hi != u32::MAX;
            if o.flags & !OwnerMatch::ALL != 0
                || o.invert & !o.flags != 0
                || o.invert & OwnerMatch::SUPPL_GROUPS != 0
                || (o.flags & OwnerMatch::SUPPL_GROUPS != 0 && o.flags & OwnerMatch::GID == 0)
                || (o.flags & OwnerMatch::UID != 0 && !valid(o.uid_min, o.uid_max))
                || (o.flags & OwnerMatch::GID != 0 && !valid(o.gid_min, o.gid_max))
            {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Owner(o)
        }
        M_TCPMSS => {
            let m = TcpMssMatch { min: r.u16()?, max: r.u16()?, invert: r.bool()? };
            // xt_tcpmss's tcpmss_mt_check.
            if m.min > m.max {
                return Err(WireError::BadValue(a.ty));
            }
            Match::TcpMss(m)
        }
        M_TTL => {
            let op = match r.u8()? {
                0 => TtlOp::Eq,
                1 => TtlOp::Ne,
                2 => TtlOp::Lt,
                3 => TtlOp::Gt,
                _ => return Err(WireError::BadValue(a.ty)),
            };
            Match::Ttl(TtlMatch { op, value: r.u8()? })
        }
        M_CONNTRACK => {
            let mut c = ConntrackMatch {
                flags: r.u16()?,
                invert: r.u16()?,
                state: r.u16()?,
                status: r.u16()?,
                proto: r.u8()?,
                ..Default::default()
            };
            for n in &mut c.addrs {
                let (addr, mask) = (r.u32()?, r.u32()?);
                *n = Ipv4Net { addr: addr & mask, mask };
            }
            for p in &mut c.ports {
                *p = PortRange { lo: r.u16()?, hi: r.u16()? };
            }
            c.expires = (r.u32()?, r.u32()?);
            if c.flags & !ctflag::ALL != 0 || c.invert & !c.flags != 0 {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Conntrack(c)
        }
        M_STATE => Match::State(StateMatch { states: r.u16()? }),
        M_CONNLIMIT => {
            let limit = r.u32()?;
            let prefix = r.u8()?;
            if prefix > 32 {
                return Err(WireError::BadValue(a.ty));
            }
            let (dest, upto) = (r.bool()?, r.bool()?);
            Match::Connlimit(super::connlimit::ConnlimitMatch { limit, prefix, dest, upto })
        }
        M_CONNBYTES => {
            let (from, to) = (r.u64()?, r.u64()?);
            let (dir, mode) = (r.u8()?, r.u8()?);
            if dir > 2 || mode > 2 {
                return Err(WireError::BadValue(a.ty));
            }
            Match::Connbytes(super::rule::ConnbytesMatch { from, to, dir, mode })
        }
        M_CONNMARK => Match::Connmark(MarkMatch { value: r.u32()?, mask: r.u32()?, invert: r.bool()? }),
        _ => return Err(WireError::BadValue(a.ty)),
    };
    r.end()?;
    Ok(m)
}

fn put_target(enc: &mut Encoder<'_>, t: &Target<'_>) {
    let b = match t {
        Target::None => Bytes::new(T_NONE),
        Target::Accept => Bytes::new(T_ACCEPT),
        Target::Drop => Bytes::new(T_DROP),
        Target::Return => Bytes::new(T_RETURN),
        Target::Jump(c) | Target::Goto(c) => {
            let mut b = Bytes::new(if matches!(t, Target::Jump(_)) { T_JUMP } else { T_GOTO });
            b.put(&c.as_bytes()[..c.len().min(MAX_CHAIN_NAME)]);
            b
        }
        Target::Reject(k) => {
            let mut b = Bytes::new(T_REJECT);
            b.u32(*k as u32);
            b
        }
        Target::Log(l) => {
            let mut b = Bytes::new(T_LOG);
            b.u8(l.level);
            b.u8(l.flags);
            b.put(&l.prefix.as_bytes()[..l.prefix.len().min(MAX_LOG_PREFIX)]);
            b
        }
        Target::Mark { value, mask } => {
            let mut b = Bytes::new(T_MARK);
            b.u32(*value);
            b.u32(*mask);
            b
        }
        Target::CtNotrack(alias) => {
            let mut b = Bytes::new(T_CT_NOTRACK);
            b.u8(u8::from(*alias));
            b
        }
        Target::Ct(c) => {
            let mut b = Bytes::new(T_CT_HELPER);
            b.u8(c.helper);
            b.u16(c.zone);
            b.u8(c.zone_flags);
            b.u16(c.ctevents);
            b.u8(c.expevents);
            b.u8(u8::from(c.events_set));
            b.u8(u8::from(c.notrack));
            b
        }
        Target::Nat(n) => {
            let mut b = Bytes::new(T_NAT);
            b.u8(n.kind as u8);
            b.u8(n.range.flags);
            b.u32(n.range.min_addr);
            b.u32(n.range.max_addr);
            b.u16(n.range.min_port);
            b.u16(n.range.max_port);
            b.u16(n.range.base_port);
            b
        }
        Target::Connmark(c) => {
            let mut b = Bytes::new(T_CONNMARK);
            b.u8(c.mode as u8);
            b.u32(c.ctmark);
            b.u32(c.ctmask);
            b.u32(c.nfmask);
            b.u8(u8::from(c.shift_right));
            b.u8(c.shift_bits);
            b
        }
        Target::Ttl { mode, value } => {
            let mut b = Bytes::new(T_TTL);
            b.u8(*mode as u8);
            b.u8(*value);
            b
        }
        Target::Tos { value, mask } => {
            let mut b = Bytes::new(T_TOS);
            b.u8(*value);
            b.u8(*mask);
            b
        }
        Target::Dscp(d) => {
            let mut b = Bytes::new(T_DSCP);
            b.u8(*d);
            b
        }
        Target::Classify(p) => {
            let mut b = Bytes::new(T_CLASSIFY);
            b.u32(*p);
            b
        }
        Target::Nfqueue(q) => {
            let mut b = Bytes::new(T_NFQUEUE);
            b.u16(q.num);
            b.u16(q.total);
            b.u8(q.flags);
            b
        }
        Target::Nflog(n) => {
            let mut b = Bytes::new(T_NFLOG);
            b.u16(n.group);
            b.u16(n.threshold);
            b.u32(n.len);
            b.u8(u8::from(n.copy_len));
            b.put(&n.prefix.as_bytes()[..n.prefix.len().min(MAX_NFLOG_PREFIX)]);
            b
        }
        Target::TcpMss(m) => {
            let mut b = Bytes::new(T_TCPMSS);
            b.u16(*m);
            b
        }
    };
    enc.put_bytes(R_TARGET, b.bytes());
}

fn get_target<'a>(a: &Attr<'a>) -> Result<Target<'a>, WireError> {
    let mut r = Reader { data: a.payload, ty: a.ty };
    let t = match r.u32()? {
        T_NONE => Target::None,
        T_ACCEPT => Target::Accept,
        T_DROP => Target::Drop,
        T_RETURN => Target::Return,
        k @ (T_JUMP | T_GOTO) => {
            let name = r.rest_str(MAX_CHAIN_NAME)?;
            if name.is_empty() {
                return Err(WireError::BadValue(a.ty));
            }
            if k == T_JUMP {
                Target::Jump(name)
            } else {
                Target::Goto(name)
            }
        }
        T_REJECT => Target::Reject(RejectWith::from_u32(r.u32()?).ok_or(WireError::BadValue(a.ty))?),
        T_LOG => {
            let level = r.u8()?;
            let flags = r.u8()?;
            if level > 7 {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Log(LogSpec { level, flags, prefix: r.rest_str(MAX_LOG_PREFIX)? })
        }
        T_MARK => Target::Mark { value: r.u32()?, mask: r.u32()? },
        T_CT_NOTRACK => Target::CtNotrack(r.bool()?),
        T_CT_HELPER => {
            let c = CtSpec {
                helper: r.u8()?,
                zone: r.u16()?,
                zone_flags: r.u8()?,
                ctevents: r.u16()?,
                expevents: r.u8()?,
                events_set: r.bool()?,
                notrack: r.bool()?,
            };
            let zone_ok = c.zone_flags & !(ctzone::ORIG | ctzone::REPLY | ctzone::MARK) == 0;
            if c.helper > 1 || !zone_ok || c.ctevents & !ctevent::ALL != 0 || c.expevents > 1 {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Ct(c)
        }
        T_NAT => {
            let kind = NatKind::from_u8(r.u8()?).ok_or(WireError::BadValue(a.ty))?;
            let range = super::super::nat::NatRange {
                flags: r.u8()?,
                min_addr: r.u32()?,
                max_addr: r.u32()?,
                min_port: r.u16()?,
                max_port: r.u16()?,
                base_port: r.u16()?,
            };
            let known = super::super::nat::range::MAP_IPS
                | super::super::nat::range::PROTO_SPECIFIED
                | super::super::nat::range::PROTO_RANDOM_ALL
                | super::super::nat::range::PERSISTENT
                | super::super::nat::range::PROTO_OFFSET;
            if range.flags & !known != 0 || range.min_addr > range.max_addr || range.min_port > range.max_port {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Nat(NatTarget { kind, range })
        }
        T_CONNMARK => {
            let mode = ConnmarkMode::from_u8(r.u8()?).ok_or(WireError::BadValue(a.ty))?;
            let (ctmark, ctmask, nfmask) = (r.u32()?, r.u32()?, r.u32()?);
            let (shift_right, shift_bits) = (r.bool()?, r.u8()?);
            if shift_bits > 32 {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Connmark(ConnmarkTarget { mode, ctmark, ctmask, nfmask, shift_right, shift_bits })
        }
        T_TTL => {
            let mode = TtlMode::from_u8(r.u8()?).ok_or(WireError::BadValue(a.ty))?;
            Target::Ttl { mode, value: r.u8()? }
        }
        T_TOS => Target::Tos { value: r.u8()?, mask: r.u8()? },
        // xt_DSCP's dscp_tg_check: a codepoint has six bits (EDOM).
        T_DSCP => Target::Dscp(Some(r.u8()?).filter(|d| *d <= MAX_DSCP).ok_or(WireError::BadValue(a.ty))?),
        T_CLASSIFY => Target::Classify(r.u32()?),
        T_TCPMSS => Target::TcpMss(r.u16()?),
        T_NFQUEUE => {
            let q = NfqueueSpec { num: r.u16()?, total: r.u16()?, flags: r.u8()? };
            if !q.valid() {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Nfqueue(q)
        }
        T_NFLOG => {
            let (group, threshold, len, copy_len) = (r.u16()?, r.u16()?, r.u32()?, r.bool()?);
            let prefix = r.rest_str(MAX_NFLOG_PREFIX)?;
            // xt_NFLOG's checkentry: the prefix ends at its NUL.
            if prefix.contains('\0') {
                return Err(WireError::BadValue(a.ty));
            }
            Target::Nflog(NflogSpec { group, threshold, len, copy_len, prefix })
        }
        _ => return Err(WireError::BadValue(a.ty)),
    };
    r.end()?;
    Ok(t)
}

fn put_net(enc: &mut Encoder<'_>, ty: u16, n: &Ipv4Net) {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&n.addr.to_ne_bytes());
    b[4..].copy_from_slice(&n.mask.to_ne_bytes());
    enc.put_bytes(ty, &b);
}

fn get_net(a: &Attr<'_>) -> Result<Ipv4Net, WireError> {
    let mut r = Reader { data: a.payload, ty: a.ty };
    let addr = r.u32()?;
    let mask = r.u32()?;
    r.end()?;
    Ok(Ipv4Net { addr: addr & mask, mask })
}

fn put_iface(enc: &mut Encoder<'_>, ty: u16, i: &Iface) {
    let mut b = [0u8; 17];
    let base = i.base();
    b[..base.len()].copy_from_slice(base);
    let mut n = base.len();
    if i.wildcard {
        b[n] = b'+';
        n += 1;
    }
    if let Ok(s) = core::str::from_utf8(&b[..n]) {
        enc.put_str(ty, s);
    }
}

/// Encodes a rule's attributes (the payload of an [`E_SPEC`] nest). Defaults are left out, so
/// the encoding is canonical.
pub fn encode_rule(enc: &mut Encoder<'_>, r: &RuleSpec<'_>) {
    if r.src != Ipv4Net::ANY || r.src_invert {
        put_net(enc, R_SRC, &r.src);
    }
    if r.dst != Ipv4Net::ANY || r.dst_invert {
        put_net(enc, R_DST, &r.dst);
    }
    if !r.in_iface.is_any() {
        put_iface(enc, R_IN, &r.in_iface);
    }
    if !r.out_iface.is_any() {
        put_iface(enc, R_OUT, &r.out_iface);
    }
    if r.proto != 0 || r.proto_invert {
        enc.put_u32(R_PROTO, u32::from(r.proto));
    }
    let mut flags = 0;
    for (on, bit) in [
        (r.src_invert, RF_SRC_INV),
        (r.dst_invert, RF_DST_INV),
        (r.in_invert, RF_IN_INV),
        (r.out_invert, RF_OUT_INV),
        (r.proto_invert, RF_PROTO_INV),
        (r.fragment == Some(true), RF_FRAG),
        (r.fragment == Some(false), RF_NOT_FRAG),
    ] {
        if on {
            flags |= bit;
        }
    }
    if flags != 0 {
        enc.put_u32(R_FLAGS, flags);
    }
    for m in r.matches() {
        put_match(enc, m);
    }
    put_target(enc, &r.target);
}

/// The chain a rule's encoding jumps or goes to, if any: its target alone is decoded (what
/// counting a chain's references needs, over every rule of a table).
pub fn jump_target(payload: &[u8]) -> Option<&str> {
    let a = AttrIter::new(payload).filter_map(Result::ok).find(|a| a.ty == R_TARGET)?;
    match get_target(&a).ok()? {
        Target::Jump(n) | Target::Goto(n) => Some(n),
        _ => None,
    }
}

/// Decodes a rule from the payload of an [`E_SPEC`] nest, checking every field.
pub fn decode_rule(payload: &[u8]) -> Result<RuleSpec<'_>, WireError> {
    let mut r = RuleSpec::default();
    let mut flags = 0;
    let mut have_target = false;
    for a in AttrIter::new(payload) {
        let a = a?;
        match a.ty {
            R_SRC => r.src = get_net(&a)?,
            R_DST => r.dst = get_net(&a)?,
            R_IN => r.in_iface = Iface::parse(a.str()?).ok_or(WireError::BadValue(a.ty))?,
            R_OUT => r.out_iface = Iface::parse(a.str()?).ok_or(WireError::BadValue(a.ty))?,
            R_PROTO => r.proto = u8::try_from(a.u32()?).map_err(|_| WireError::BadValue(a.ty))?,
            R_FLAGS => {
                flags = a.u32()?;
                if flags & !RF_ALL != 0 || (flags & RF_FRAG != 0 && flags & RF_NOT_FRAG != 0) {
                    return Err(WireError::BadValue(a.ty));
                }
            }
            R_MATCH => {
                let m = get_match(&a)?;
                r.push_match(m).map_err(|_| WireError::BadValue(a.ty))?;
            }
            R_TARGET => {
                if have_target {
                    return Err(WireError::BadValue(a.ty));
                }
                r.target = get_target(&a)?;
                have_target = true;
            }
            other => return Err(WireError::BadValue(other)),
        }
    }
    if !have_target {
        return Err(WireError::Missing(R_TARGET));
    }
    r.src_invert = flags & RF_SRC_INV != 0;
    r.dst_invert = flags & RF_DST_INV != 0;
    r.in_invert = flags & RF_IN_INV != 0;
    r.out_invert = flags & RF_OUT_INV != 0;
    r.proto_invert = flags & RF_PROTO_INV != 0;
    r.fragment = if flags & RF_FRAG != 0 {
        Some(true)
    } else if flags & RF_NOT_FRAG != 0 {
        Some(false)
    } else {
        None
    };
    Ok(r)
}

/// A chain as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainWire<'a> {
    /// Name.
    pub name: &'a str,
    /// Policy of a builtin chain; `None` for a user chain.
    pub policy: Option<super::rule::Policy>,
    /// Policy counters, when the message sets them.
    pub counters: Option<super::rule::Counters>,
}

/// Encodes one [`A_CHAIN`] attribute.
pub fn encode_chain(enc: &mut Encoder<'_>, c: &ChainWire<'_>) {
    let n = enc.begin_nest(A_CHAIN);
    enc.put_str(C_NAME, c.name);
    if let Some(p) = c.policy {
        enc.put_u32(C_POLICY, p as u32);
    }
    if let Some(k) = c.counters {
        enc.put_u64(C_PACKETS, k.packets);
        enc.put_u64(C_BYTES, k.bytes);
    }
    enc.end_nest(n);
}

/// Decodes the payload of an [`A_CHAIN`] attribute.
pub fn decode_chain<'a>(a: &Attr<'a>) -> Result<ChainWire<'a>, WireError> {
    let mut c = ChainWire { name: "", policy: None, counters: None };
    let (mut packets, mut bytes) = (None, None);
    for x in a.nested() {
        let x = x?;
        match x.ty {
            C_NAME => c.name = x.str()?,
            C_POLICY => {
                c.policy = Some(match x.u32()? {
                    0 => super::rule::Policy::Accept,
                    1 => super::rule::Policy::Drop,
                    _ => return Err(WireError::BadValue(x.ty)),
                })
            }
            C_PACKETS => packets = Some(x.u64()?),
            C_BYTES => bytes = Some(x.u64()?),
            other => return Err(WireError::BadValue(other)),
        }
    }
    c.counters = match (packets, bytes) {
        (Some(packets), Some(bytes)) => Some(super::rule::Counters { packets, bytes }),
        (None, None) => None,
        _ => return Err(WireError::Missing(C_BYTES)),
    };
    if c.name.is_empty() || c.name.len() > MAX_CHAIN_NAME {
        return Err(WireError::BadValue(C_NAME));
    }
    Ok(c)
}

/// A rule entry as the wire carries it: its chain, counters and the rule's own encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleWire<'a> {
    /// Index of the chain among the table's chains.
    pub chain: u32,
    /// The kernel's id of the rule (0: new).
    pub id: u64,
    /// Counters, when the message sets them.
    pub counters: Option<super::rule::Counters>,
    /// The [`E_SPEC`] payload (decode with [`decode_rule`]).
    pub spec: &'a [u8],
}

/// Encodes one [`A_RULE`] attribute whose spec is already encoded.
pub fn encode_rule_entry(enc: &mut Encoder<'_>, r: &RuleWire<'_>) {
    encode_entry(enc, A_RULE, r);
}

/// A rule entry (`E_*` attributes) nested in an attribute of type `ty`.
fn encode_entry(enc: &mut Encoder<'_>, ty: u16, r: &RuleWire<'_>) {
    let n = enc.begin_nest(ty);
    enc.put_u32(E_CHAIN, r.chain);
    if r.id != 0 {
        enc.put_u64(E_ID, r.id);
    }
    if let Some(c) = r.counters {
        enc.put_u64(E_PACKETS, c.packets);
        enc.put_u64(E_BYTES, c.bytes);
    }
    enc.put_bytes(E_SPEC | super::super::wire::NLA_F_NESTED, r.spec);
    enc.end_nest(n);
}

/// Decodes the payload of an [`A_RULE`] attribute (the spec itself is decoded separately).
pub fn decode_rule_entry<'a>(a: &Attr<'a>) -> Result<RuleWire<'a>, WireError> {
    let mut chain = None;
    let (mut packets, mut bytes) = (None, None);
    let mut spec = None;
    let mut id = 0;
    for x in a.nested() {
        let x = x?;
        match x.ty {
            E_CHAIN => chain = Some(x.u32()?),
            E_PACKETS => packets = Some(x.u64()?),
            E_BYTES => bytes = Some(x.u64()?),
            E_SPEC => spec = Some(x.payload),
            E_ID => id = x.u64()?,
            other => return Err(WireError::BadValue(other)),
        }
    }
    let counters = match (packets, bytes) {
        (Some(packets), Some(bytes)) => Some(super::rule::Counters { packets, bytes }),
        (None, None) => None,
        _ => return Err(WireError::Missing(E_BYTES)),
    };
    Ok(RuleWire {
        chain: chain.ok_or(WireError::Missing(E_CHAIN))?,
        id,
        counters,
        spec: spec.ok_or(WireError::Missing(E_SPEC))?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::rule::*;
    use super::*;

    #[test]
    fn ops_round_trip_and_bad_ops_are_refused() {
        let mut spec_buf = [0u8; 256];
        let mut e = Encoder::new(&mut spec_buf);
        let r = RuleSpec { target: Target::Accept, ..Default::default() };
        encode_rule(&mut e, &r);
        let n = e.len();
        let spec = &spec_buf[..n];
        let none = OpWire { kind: OpKind::Delete, chain: 0, chain_name: None, pos: 0, counters: None, spec: None, name: None, policy: None, body: &[] };
        let ops = [
            OpWire { kind: OpKind::Insert, chain: 2, pos: 7, counters: None, spec: Some(spec), ..none },
            OpWire { kind: OpKind::Replace, chain: 0, pos: 0, counters: Some(Counters { packets: 3, bytes: 4 }), spec: Some(spec), ..none },
            OpWire { kind: OpKind::Delete, chain: 1, pos: 9999, counters: None, spec: None, ..none },
            OpWire { kind: OpKind::NewChain, chain: 0, pos: 4, name: Some("KUBE-SVC-X"), ..none },
            OpWire { kind: OpKind::DeleteChain, chain: 5, pos: 0, ..none },
            OpWire { kind: OpKind::SetPolicy, chain: 1, pos: 0, policy: Some(Policy::Drop), ..none },
            // One-rule changes by chain name: append, delete by specification, by position.
            OpWire { kind: OpKind::Insert, chain_name: Some("FORWARD"), pos: u32::MAX, spec: Some(spec), ..none },
            OpWire { kind: OpKind::Delete, chain_name: Some("KUBE-SVC-X"), spec: Some(spec), ..none },
            OpWire { kind: OpKind::Delete, chain_name: Some("INPUT"), pos: 3, ..none },
            OpWire { kind: OpKind::Replace, chain_name: Some("INPUT"), pos: 0, spec: Some(spec), ..none },
            // Chain changes by name (a restore --noflush that read nothing).
            OpWire { kind: OpKind::SetPolicy, chain_name: Some("INPUT"), policy: Some(Policy::Drop), ..none },
            OpWire { kind: OpKind::DeleteChain, chain_name: Some("KUBE-SVC-X"), ..none },
            OpWire { kind: OpKind::SetChain, chain_name: Some("FORWARD"), ..none },
            OpWire { kind: OpKind::DefineChain, chain_name: Some("KUBE-SVC-Y"), pos: u32::MAX, ..none },
        ];
        let mut buf = [0u8; 1024];
        let mut enc = Encoder::new(&mut buf);
        for op in &ops {
            encode_op(&mut enc, op);
        }
        let len = enc.len();
        extern crate std;
        let back: std::vec::Vec<OpWire<'_>> = AttrIter::new(&buf[..len]).map(|a| decode_op(&a.unwrap()).unwrap()).collect();
        assert_eq!(back.iter().map(|o| OpWire { body: &[], ..*o }).collect::<std::vec::Vec<_>>(), ops);
        // A chain's new contents: its rules in order, ids kept.
        let set = OpWire { kind: OpKind::SetChain, chain: 3, pos: 0, ..none };
        let mut buf = [0u8; 1024];
        let mut enc = Encoder::new(&mut buf);
        let n = begin_op(&mut enc, &set);
        for id in [0u64, 42] {
            encode_op_rule(&mut enc, &RuleWire { chain: 3, id, counters: None, spec });
        }
        enc.end_nest(n);
        let len = enc.len();
        let a = AttrIter::new(&buf[..len]).next().unwrap().unwrap();
        let op = decode_op(&a).unwrap();
        assert_eq!(op.kind, OpKind::SetChain);
        let ids: std::vec::Vec<u64> = op_rules(&op).map(|r| r.unwrap().id).collect();
        assert_eq!(ids, [0, 42]);
        let mut buf = [0u8; 1024];
        assert_eq!(decode_rule(back[0].spec.unwrap()).unwrap(), r);
        // An insert without a rule, a delete with one.
        for bad in [
            OpWire { kind: OpKind::Insert, chain: 0, pos: 0, counters: None, spec: None, ..none },
            OpWire { kind: OpKind::Delete, chain: 0, pos: 0, counters: None, spec: Some(spec), ..none },
            OpWire { kind: OpKind::NewChain, chain: 0, pos: 0, ..none },
            OpWire { kind: OpKind::SetPolicy, chain: 0, pos: 0, ..none },
            // A new chain is named by O_NAME only; a defined one by O_CHAIN_NAME only; a name
            // and an index at once is refused.
            OpWire { kind: OpKind::NewChain, chain_name: Some("INPUT"), name: Some("X"), ..none },
            OpWire { kind: OpKind::DefineChain, chain: 3, ..none },
            OpWire { kind: OpKind::Replace, chain_name: Some("INPUT"), spec: None, ..none },
        ] {
            let mut enc = Encoder::new(&mut buf);
            encode_op(&mut enc, &bad);
            let len = enc.len();
            let a = AttrIter::new(&buf[..len]).next().unwrap().unwrap();
            assert!(decode_op(&a).is_err());
        }
        let mut enc = Encoder::new(&mut buf);
        let n = enc.begin_nest(A_OP);
        enc.put_u32(O_KIND, OpKind::Insert as u32);
        enc.put_u32(O_CHAIN, 0);
        enc.put_str(O_CHAIN_NAME, "INPUT");
        enc.put_u32(O_POS, 0);
        enc.put_bytes(O_SPEC | crate::wire::NLA_F_NESTED, spec);
        enc.end_nest(n);
        let len = enc.len();
        assert!(decode_op(&AttrIter::new(&buf[..len]).next().unwrap().unwrap()).is_err(), "index and name");
    }

    fn round_trip(r: &RuleSpec<'_>) {
        let mut buf = [0u8; 1024];
        let mut enc = Encoder::new(&mut buf);
        encode_rule(&mut enc, r);
        assert!(!enc.overflowed());
        let n = enc.len();
        let back = decode_rule(&buf[..n]).unwrap();
        assert_eq!(&back, r);
        // Canonical: encoding the decoded rule gives the same bytes.
        let mut buf2 = [0u8; 1024];
        let mut enc2 = Encoder::new(&mut buf2);
        encode_rule(&mut enc2, &back);
        let n2 = enc2.len();
        assert_eq!(&buf[..n], &buf2[..n2]);
    }

    #[test]
    fn every_match_and_target_round_trips() {
        let mut r = RuleSpec {
            src: Ipv4Net::with_prefix(0x0a00_0000, 8).unwrap(),
            src_invert: true,
            dst: Ipv4Net { addr: 0x0101_0001, mask: 0xffff_00ff },
            in_iface: Iface::parse("veth+").unwrap(),
            in_invert: true,
            out_iface: Iface::parse("eth0").unwrap(),
            proto: 6,
            fragment: Some(false),
            target: Target::Log(LogSpec { level: 6, flags: 3, prefix: "IN: " }),
            ..Default::default()
        };
        let pm = |lo, hi, invert| Some(PortMatch { range: PortRange { lo, hi }, invert });
        r.push_match(Match::Tcp(TcpMatch {
            sport: pm(1024, 65535, false),
            dport: pm(22, 22, true),
            flags: Some(TcpFlags { mask: 0x17, comp: 0x02, invert: false }),
            option: Some((2, true)),
        }))
        .unwrap();
        let mut ports = [PortRange::default(); MAX_MULTIPORT];
        ports[0] = PortRange { lo: 80, hi: 80 };
        ports[1] = PortRange { lo: 8000, hi: 8080 };
        r.push_match(Match::Multiport(MultiportMatch { kind: MultiportKind::Either, ports, count: 2, invert: true }))
            .unwrap();
        r.push_match(Match::Comment("allow \"ssh\" from lan")).unwrap();
        r.push_match(Match::Mark(MarkMatch { value: 1, mask: 0xff, invert: true })).unwrap();
        r.push_match(Match::Statistic(StatisticMatch::Nth { every: 2, packet: 1, invert: false })).unwrap();
        r.push_match(Match::Limit(LimitMatch { avg: 3333, burst: 5 })).unwrap();
        r.push_match(Match::IpRange(IpRangeMatch {
            src: Some(AddrRange { lo: 1, hi: 9, invert: true }),
            dst: None,
        }))
        .unwrap();
        r.push_match(Match::Ttl(TtlMatch { op: TtlOp::Gt, value: 5 })).unwrap();
        round_trip(&r);

        let mut r2 = RuleSpec { proto: 17, target: Target::Goto("KUBE-SVC-X"), ..Default::default() };
        r2.push_match(Match::Udp(UdpMatch { sport: None, dport: pm(53, 53, false) })).unwrap();
        r2.push_match(Match::Length(LengthMatch { min: 0, max: 512, invert: false })).unwrap();
        r2.push_match(Match::AddrType(AddrTypeMatch {
            src: 0,
            dst: addrtype::LOCAL,
            dst_invert: true,
            limit_iface_in: true,
            ..Default::default()
        }))
        .unwrap();
        r2.push_match(Match::Statistic(StatisticMatch::Random { probability: 0x4000_0000, invert: true }))
            .unwrap();
        round_trip(&r2);

        let mut r3 = RuleSpec { proto: 1, fragment: Some(true), ..Default::default() };
        r3.push_match(Match::Icmp(IcmpMatch { icmp_type: 3, code_min: 0, code_max: 255, invert: false }))
            .unwrap();
        for t in [
            Target::None,
            Target::Accept,
            Target::Ttl { mode: TtlMode::Dec, value: 3 },
            Target::CtNotrack(false),
            Target::CtNotrack(true),
            Target::Ct(CtSpec { helper: 1, ..Default::default() }),
            Target::Nat(NatTarget {
                kind: NatKind::Dnat,
                range: crate::nat::NatRange { flags: 3 | 32, min_addr: 1, max_addr: 2, min_port: 80, max_port: 90, base_port: 7 },
            }),
            Target::Ct(CtSpec {
                helper: 0,
                zone: 7,
                zone_flags: ctzone::ORIG | ctzone::MARK,
                ctevents: ctevent::NEW | ctevent::DESTROY,
                expevents: 1,
                events_set: true,
                notrack: true,
            }),
            Target::Drop,
            Target::Return,
            Target::Jump("LOGDROP"),
            Target::Reject(RejectWith::TcpReset),
            Target::Mark { value: 0x10, mask: 0xffff_ffff },
        ] {
            r3.target = t;
            round_trip(&r3);
        }
        round_trip(&RuleSpec::default());
    }

    #[test]
    fn defaults_are_left_out() {
        let mut buf = [0u8; 64];
        let mut enc = Encoder::new(&mut buf);
        encode_rule(&mut enc, &RuleSpec { target: Target::Accept, ..Default::default() });
        // Only the target: 4 header + 4 kind.
        assert_eq!(enc.len(), 8);
    }

    #[test]
    fn bad_rules_are_rejected() {
        let enc_one = |f: &dyn Fn(&mut Encoder<'_>)| -> ([u8; 128], usize) {
            let mut buf = [0u8; 128];
            let mut e = Encoder::new(&mut buf);
            f(&mut e);
            let n = e.len();
            (buf, n)
        };
        // No target.
        let (b, n) = enc_one(&|e| e.put_u32(R_PROTO, 6));
        assert_eq!(decode_rule(&b[..n]), Err(WireError::Missing(R_TARGET)));
        // Unknown target kind, unknown attribute, bad protocol, both -f and ! -f.
        let (b, n) = enc_one(&|e| e.put_u32(R_TARGET, 99));
        assert!(decode_rule(&b[..n]).is_err());
        let (b, n) = enc_one(&|e| {
            e.put_u32(R_TARGET, T_ACCEPT);
            e.put_u32(40, 1);
        });
        assert!(decode_rule(&b[..n]).is_err());
        let (b, n) = enc_one(&|e| {
            e.put_u32(R_TARGET, T_ACCEPT);
            e.put_u32(R_PROTO, 300);
        });
        assert!(decode_rule(&b[..n]).is_err());
        let (b, n) = enc_one(&|e| {
            e.put_u32(R_TARGET, T_ACCEPT);
            e.put_u32(R_FLAGS, RF_FRAG | RF_NOT_FRAG);
        });
        assert!(decode_rule(&b[..n]).is_err());
        // A truncated tcp match, a port range upside down, a log level of 9.
        let (b, n) = enc_one(&|e| {
            e.put_u32(R_TARGET, T_ACCEPT);
            e.put_bytes(R_MATCH, &M_TCP.to_ne_bytes());
        });
        assert!(decode_rule(&b[..n]).is_err());
        let (b, n) = enc_one(&|e| {
            e.put_u32(R_TARGET, T_ACCEPT);
            let mut m = [0u8; 10];
            m[..4].copy_from_slice(&M_UDP.to_ne_bytes());
            m[4] = 1;
            m[6..8].copy_from_slice(&9u16.to_ne_bytes());
            m[8..10].copy_from_slice(&1u16.to_ne_bytes());
            let mut full = [0u8; 16];
            full[..10].copy_from_slice(&m);
            e.put_bytes(R_MATCH, &full);
        });
        assert!(decode_rule(&b[..n]).is_err());
        let (b, n) = enc_one(&|e| e.put_bytes(R_TARGET, &[7, 0, 0, 0, 9, 0]));
        assert!(decode_rule(&b[..n]).is_err());
    }

    #[test]
    fn decoder_never_panics_on_random_bytes() {
        let mut seed: u64 = 0x1234_5678_9abc_def1;
        let mut buf = [0u8; 200];
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            // Make plausible headers more likely.
            buf[0] = (seed % 40) as u8 + 4;
            buf[1] = 0;
            buf[2] = (seed >> 8) as u8 % 10;
            buf[3] = 0;
            buf[4] = (seed >> 16) as u8 % 14;
            let n = (seed >> 24) as usize % buf.len();
            let _ = decode_rule(&buf[..n]);
        }
    }

    #[test]
    fn chains_and_entries_round_trip() {
        let mut buf = [0u8; 256];
        let mut enc = Encoder::new(&mut buf);
        let c = ChainWire {
            name: "INPUT",
            policy: Some(Policy::Drop),
            counters: Some(Counters { packets: 3, bytes: 400 }),
        };
        encode_chain(&mut enc, &c);
        let spec = [8, 0, 8, 0, 1, 0, 0, 0];
        let rw = RuleWire { chain: 2, id: 7, counters: Some(Counters { packets: 1, bytes: 2 }), spec: &spec };
        encode_rule_entry(&mut enc, &rw);
        let n = enc.len();
        let mut it = AttrIter::new(&buf[..n]);
        let a = it.next().unwrap().unwrap();
        assert_eq!(a.ty, A_CHAIN);
        assert_eq!(decode_chain(&a).unwrap(), c);
        let e = it.next().unwrap().unwrap();
        let w = decode_rule_entry(&e).unwrap();
        assert_eq!(w, rw);
        assert_eq!(decode_rule(w.spec).unwrap().target, Target::Accept);
    }
}
