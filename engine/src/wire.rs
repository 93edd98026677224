// SPDX-License-Identifier: GPL-2.0

//! The rust_nf generic netlink wire format: family name, command and attribute numbers, and
//! the encoder and decoder of attribute payloads.
//!
//! One numbering, shared by the kernel module and rnfctl. The C shim's policy tables use the
//! same numbers from `rust_nf/rnf_wire.h`; a host test checks the two agree.
//!
//! Attributes are standard netlink TLVs: `u16 len` (header included), `u16 type`, payload,
//! padding to 4 bytes; integers in host byte order, as netlink does.

use super::hooks::{HookPoint, Stage, NUM_HOOKS};

/// The generic netlink family name.
pub const FAMILY_NAME: &str = "rust_nf";
/// The family version.
pub const FAMILY_VERSION: u8 = 1;

/// Command: report the version, the registered hooks and their counters (unprivileged).
pub const CMD_GET_STATUS: u8 = 1;
/// Command: zero the hook counters, or one hook's with [`A_HOOK_SLOT`] (needs CAP_NET_ADMIN).
pub const CMD_ZERO_COUNTERS: u8 = 2;
/// Command, a dump: read one table (`A_TABLE`): its generation, chains and rules with
/// counters and ids (needs CAP_NET_ADMIN, as reading iptables rules does). The answer comes in
/// as many messages as the table needs; their attributes, concatenated, are the table.
pub const CMD_GET_TABLE: u8 = 3;
/// Command: replace one table atomically (needs CAP_NET_ADMIN).
pub const CMD_REPLACE_TABLE: u8 = 4;
/// Command: replace several tables as one transaction (needs CAP_NET_ADMIN): all change or
/// none does. The payload is the tables' `CMD_REPLACE_TABLE` payloads one after the other,
/// each starting with its `A_TABLE` (see [`sections`]).
pub const CMD_REPLACE_TABLES: u8 = 5;
/// Command: change one table by a few rules (needs CAP_NET_ADMIN): `A_TABLE`, `A_GENERATION`
/// with `TF_CHECK_GENERATION` in `A_TABLE_FLAGS`, and the changes, each an `A_OP` nest
/// ([`super::rulewire::OpWire`]). All apply or none does; the rules not named keep their
/// identity and counters, and the new version is published with one switch, as a replace.
pub const CMD_UPDATE_TABLE: u8 = 15;
/// Command: [`CMD_UPDATE_TABLE`] for several tables as one transaction, each table's
/// attributes starting with its `A_TABLE` (see [`sections`]).
pub const CMD_UPDATE_TABLES: u8 = 16;

/// Top-level attribute: module version string.
pub const A_VERSION: u16 = 1;
/// Top-level attribute: u64 cookie of the network namespace the answer is about.
pub const A_NETNS_COOKIE: u16 = 2;
/// Top-level attribute: nest of [`A_HOOKS_ENTRY`] nests.
pub const A_HOOKS: u16 = 3;
/// Top-level attribute: u32 hook slot (index into [`super::hooks::HOOKS`]).
pub const A_HOOK_SLOT: u16 = 4;
/// Highest top-level attribute number (the table attributes live in
/// [`super::rulewire`]: `A_TABLE` 5 .. `A_CREATED` 10; `recent`'s requests use 22 .. 24, the conntrack settings 26 .. 27, conntrack -D 29 .. 30).
pub const A_MAX: u16 = 30;

/// Top-level attribute of a [`CMD_GET_STATUS`] reply: one live table's size, a nest of `TS_*`.
pub const A_TABLE_STATS: u16 = 32;

/// Table statistic: u32 table id.
pub const TS_TABLE: u16 = 1;
/// Table statistic: u32 rules.
pub const TS_RULES: u16 = 2;
/// Table statistic: u32 chains.
pub const TS_CHAINS: u16 = 3;
/// Table statistic: u64 bytes of the compiled chains, rules and matches.
pub const TS_RULESET_BYTES: u16 = 4;
/// Table statistic: u64 bytes of counters (per CPU).
pub const TS_COUNTER_BYTES: u16 = 5;
/// Table statistic: u32 chains with a classifier index.
pub const TS_INDEX_CHAINS: u16 = 6;
/// Table statistic: u32 shapes in those indexes.
pub const TS_INDEX_SHAPES: u16 = 7;
/// Table statistic: u32 rules filed under a key.
pub const TS_INDEX_KEYED: u16 = 8;
/// Table statistic: u32 rules of indexed chains without a key.
pub const TS_INDEX_WILD: u16 = 9;
/// Table statistic: u64 bytes of the index.
pub const TS_INDEX_BYTES: u16 = 10;
/// Table statistic: u64 nanoseconds the kernel took for the change that made the version
/// (from the request's start to the switch).
pub const TS_CHANGE_NS: u16 = 11;
/// Table statistic: u32 rules the change compiled from their encoding (the rules it kept
/// were copied compiled).
pub const TS_COMPILED_RULES: u16 = 12;
/// Table statistic: u32 chain indexes the change built (the others were copied).
pub const TS_BUILT_INDEXES: u16 = 13;

/// One live table's size, as reported by [`CMD_GET_STATUS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Table id ([`super::rule::TableId`]).
    pub table: u32,
    /// Rules.
    pub rules: u32,
    /// Chains.
    pub chains: u32,
    /// Bytes of the compiled chains, rules and matches.
    pub ruleset_bytes: u64,
    /// Bytes of counters on each CPU.
    pub counter_bytes: u64,
    /// The classifier.
    pub index: super::rules::index::IndexStats,
    /// The change that made this version: how long the kernel took, in ns.
    pub change_ns: u64,
    /// Rules that change compiled from their encoding.
    pub compiled_rules: u32,
    /// Chain indexes that change built.
    pub built_indexes: u32,
}

/// Inside [`A_HOOKS`]: one hook, a nest of `HA_*` attributes.
pub const A_HOOKS_ENTRY: u16 = 1;

/// Hook attribute: u32 slot.
pub const HA_SLOT: u16 = 1;
/// Hook attribute: u32 hook point (NF_INET_*).
pub const HA_POINT: u16 = 2;
/// Hook attribute: u32 stage ([`Stage`]).
pub const HA_STAGE: u16 = 3;
/// Hook attribute: s32 priority.
pub const HA_PRIORITY: u16 = 4;
/// Hook attribute: u64 packets seen.
pub const HA_PACKETS: u16 = 5;
/// Hook attribute: u64 bytes seen.
pub const HA_BYTES: u16 = 6;

/// The flag a nested attribute carries in its type field.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_HDRLEN: usize = 4;

/// Rounds a length up to netlink's 4-byte alignment.
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Writes attributes into a byte buffer.
///
/// When the buffer is too small the encoder keeps counting without writing, so the same code
/// run over an empty buffer measures the size to allocate: check [`Encoder::overflowed`].
pub struct Encoder<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> Encoder<'a> {
    /// An encoder writing into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0, overflow: false }
    }

    /// Bytes written (or, after an overflow, needed) so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the buffer was too small for what was encoded.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    fn write_at(&mut self, at: usize, bytes: &[u8]) {
        match at.checked_add(bytes.len()).and_then(|end| self.buf.get_mut(at..end)) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => self.overflow = true,
        }
    }

    fn header(&mut self, ty: u16, payload_len: usize) -> usize {
        let start = self.len;
        let total = NLA_HDRLEN + payload_len;
        let len16 = u16::try_from(total).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.write_at(start, &len16.to_ne_bytes());
        self.write_at(start + 2, &ty.to_ne_bytes());
        start
    }

    /// Appends one attribute with raw payload bytes.
    pub fn put_bytes(&mut self, ty: u16, payload: &[u8]) {
        let start = self.header(ty, payload.len());
        self.write_at(start + NLA_HDRLEN, payload);
        let end = start + align(NLA_HDRLEN + payload.len());
        let pad = end - (start + NLA_HDRLEN + payload.len());
        self.write_at(start + NLA_HDRLEN + payload.len(), &[0u8; 3][..pad]);
        self.len = end;
    }

    /// Appends a u32 attribute.
    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put_bytes(ty, &v.to_ne_bytes());
    }

    /// Appends an s32 attribute.
    pub fn put_s32(&mut self, ty: u16, v: i32) {
        self.put_bytes(ty, &v.to_ne_bytes());
    }

    /// Appends a u64 attribute.
    pub fn put_u64(&mut self, ty: u16, v: u64) {
        self.put_bytes(ty, &v.to_ne_bytes());
    }

    /// Appends a NUL-terminated string attribute.
    pub fn put_str(&mut self, ty: u16, s: &str) {
        let start = self.header(ty, s.len() + 1);
        self.write_at(start + NLA_HDRLEN, s.as_bytes());
        self.write_at(start + NLA_HDRLEN + s.len(), &[0]);
        let used = NLA_HDRLEN + s.len() + 1;
        let pad = align(used) - used;
        self.write_at(start + used, &[0u8; 3][..pad]);
        self.len = start + align(used);
    }

    /// Opens a nested attribute; close it with [`Encoder::end_nest`].
    pub fn begin_nest(&mut self, ty: u16) -> Nest {
        let start = self.header(ty | NLA_F_NESTED, 0);
        self.len = start + NLA_HDRLEN;
        Nest(start)
    }

    /// Closes a nested attribute, fixing up its length.
    pub fn end_nest(&mut self, nest: Nest) {
        let total = self.len - nest.0;
        match u16::try_from(total) {
            Ok(l) => self.write_at(nest.0, &l.to_ne_bytes()),
            Err(_) => self.overflow = true,
        }
    }
}

/// An open nested attribute (its start offset).
#[must_use]
pub struct Nest(usize);

/// A malformed attribute stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// An attribute header or payload runs past the end of the data.
    Truncated,
    /// An attribute has the wrong payload size for its type.
    BadLength(u16),
    /// A required attribute is missing.
    Missing(u16),
    /// A value is out of range.
    BadValue(u16),
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "attribute runs past the end of the message"),
            WireError::BadLength(t) => write!(f, "attribute {t} has a bad length"),
            WireError::Missing(t) => write!(f, "attribute {t} is missing"),
            WireError::BadValue(t) => write!(f, "attribute {t} has a bad value"),
        }
    }
}

/// One attribute: type (flags stripped) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type without the nested/byte-order flags.
    pub ty: u16,
    /// Payload bytes (padding excluded).
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The payload as u32.
    pub fn u32(&self) -> Result<u32, WireError> {
        let b: [u8; 4] = self.payload.try_into().map_err(|_| WireError::BadLength(self.ty))?;
        Ok(u32::from_ne_bytes(b))
    }

    /// The payload as s32.
    pub fn s32(&self) -> Result<i32, WireError> {
        Ok(self.u32()? as i32)
    }

    /// The payload as u64.
    pub fn u64(&self) -> Result<u64, WireError> {
        let b: [u8; 8] = self.payload.try_into().map_err(|_| WireError::BadLength(self.ty))?;
        Ok(u64::from_ne_bytes(b))
    }

    /// The payload as a NUL-terminated UTF-8 string.
    pub fn str(&self) -> Result<&'a str, WireError> {
        let bytes = match self.payload.iter().position(|&b| b == 0) {
            Some(n) => &self.payload[..n],
            None => self.payload,
        };
        core::str::from_utf8(bytes).map_err(|_| WireError::BadValue(self.ty))
    }

    /// The attributes nested in this one.
    pub fn nested(&self) -> AttrIter<'a> {
        AttrIter::new(self.payload)
    }
}

/// Iterates over the attributes in a payload; yields an error once for a malformed stream.
pub struct AttrIter<'a> {
    data: &'a [u8],
}

impl<'a> AttrIter<'a> {
    /// Iterates over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<Attr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let parsed = (|| {
            let hdr = self.data.get(..NLA_HDRLEN).ok_or(WireError::Truncated)?;
            let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
            let ty = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
            if len < NLA_HDRLEN {
                return Err(WireError::BadLength(ty));
            }
            let payload = self.data.get(NLA_HDRLEN..len).ok_or(WireError::Truncated)?;
            let rest = self.data.get(align(len)..).unwrap_or(&[]);
            Ok((Attr { ty, payload }, rest))
        })();
        match parsed {
            Ok((attr, rest)) => {
                self.data = rest;
                Some(Ok(attr))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

/// Splits a stream of attributes into sections, each starting at an attribute of type `ty`
/// (a `CMD_REPLACE_TABLES` request: one section per table, each beginning with its
/// `A_TABLE`). Sections are not nested attributes because an attribute's length is 16 bits
/// and a table can be far larger. Attributes before the first `ty` are an error, as is a
/// malformed stream.
pub fn sections(data: &[u8], ty: u16) -> Result<Sections<'_>, WireError> {
    // Validate the whole stream first, so that iterating cannot fail.
    let mut first = true;
    for a in AttrIter::new(data) {
        let a = a?;
        if first && a.ty != ty {
            return Err(WireError::Missing(ty));
        }
        first = false;
    }
    Ok(Sections { data, ty })
}

/// The sections of [`sections`].
pub struct Sections<'a> {
    data: &'a [u8],
    ty: u16,
}

impl<'a> Iterator for Sections<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        // The next section starts at the next attribute of type `ty` after the first one.
        let mut off = 0;
        let mut end = self.data.len();
        let mut it = AttrIter::new(self.data);
        while let Some(Ok(a)) = it.next() {
            if a.ty == self.ty && off != 0 {
                end = off;
                break;
            }
            off = self.data.len() - it.data.len();
        }
        let (section, rest) = self.data.split_at(end.min(self.data.len()));
        self.data = rest;
        Some(section)
    }
}

/// One hook's registration and counters, as reported by [`CMD_GET_STATUS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookStatus {
    /// Index into [`super::hooks::HOOKS`].
    pub slot: u32,
    /// Hook point.
    pub point: HookPoint,
    /// Table or conntrack stage.
    pub stage: Stage,
    /// Priority.
    pub priority: i32,
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen.
    pub bytes: u64,
}

/// Encodes the payload of a [`CMD_GET_STATUS`] reply.
pub fn encode_status(enc: &mut Encoder<'_>, version: &str, netns_cookie: u64, hooks: &[HookStatus], tables: &[TableStats]) {
    enc.put_str(A_VERSION, version);
    enc.put_u64(A_NETNS_COOKIE, netns_cookie);
    let all = enc.begin_nest(A_HOOKS);
    for h in hooks {
        let one = enc.begin_nest(A_HOOKS_ENTRY);
        enc.put_u32(HA_SLOT, h.slot);
        enc.put_u32(HA_POINT, h.point as u32);
        enc.put_u32(HA_STAGE, h.stage as u32);
        enc.put_s32(HA_PRIORITY, h.priority);
        enc.put_u64(HA_PACKETS, h.packets);
        enc.put_u64(HA_BYTES, h.bytes);
        enc.end_nest(one);
    }
    enc.end_nest(all);
    for t in tables {
        let n = enc.begin_nest(A_TABLE_STATS);
        enc.put_u32(TS_TABLE, t.table);
        enc.put_u32(TS_RULES, t.rules);
        enc.put_u32(TS_CHAINS, t.chains);
        enc.put_u64(TS_RULESET_BYTES, t.ruleset_bytes);
        enc.put_u64(TS_COUNTER_BYTES, t.counter_bytes);
        enc.put_u32(TS_INDEX_CHAINS, t.index.chains);
        enc.put_u32(TS_INDEX_SHAPES, t.index.shapes);
        enc.put_u32(TS_INDEX_KEYED, t.index.keyed_rules);
        enc.put_u32(TS_INDEX_WILD, t.index.wild_rules);
        enc.put_u64(TS_INDEX_BYTES, t.index.bytes);
        enc.put_u64(TS_CHANGE_NS, t.change_ns);
        enc.put_u32(TS_COMPILED_RULES, t.compiled_rules);
        enc.put_u32(TS_BUILT_INDEXES, t.built_indexes);
        enc.end_nest(n);
    }
}

fn decode_table_stats(attr: &Attr<'_>) -> Result<TableStats, WireError> {
    let mut t = TableStats::default();
    for a in attr.nested() {
        let a = a?;
        match a.ty {
            TS_TABLE => t.table = a.u32()?,
            TS_RULES => t.rules = a.u32()?,
            TS_CHAINS => t.chains = a.u32()?,
            TS_RULESET_BYTES => t.ruleset_bytes = a.u64()?,
            TS_COUNTER_BYTES => t.counter_bytes = a.u64()?,
            TS_INDEX_CHAINS => t.index.chains = a.u32()?,
            TS_INDEX_SHAPES => t.index.shapes = a.u32()?,
            TS_INDEX_KEYED => t.index.keyed_rules = a.u32()?,
            TS_INDEX_WILD => t.index.wild_rules = a.u32()?,
            TS_INDEX_BYTES => t.index.bytes = a.u64()?,
            TS_CHANGE_NS => t.change_ns = a.u64()?,
            TS_COMPILED_RULES => t.compiled_rules = a.u32()?,
            TS_BUILT_INDEXES => t.built_indexes = a.u32()?,
            _ => {}
        }
    }
    Ok(t)
}

/// A decoded [`CMD_GET_STATUS`] reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status<'a> {
    /// Module version.
    pub version: &'a str,
    /// Cookie of the network namespace.
    pub netns_cookie: u64,
    /// The hooks, in slot order (`count` of them are valid).
    pub hooks: [Option<HookStatus>; NUM_HOOKS],
    /// The live tables' sizes, in table order (none from a module that does not report them).
    pub tables: [Option<TableStats>; MAX_TABLE_STATS],
}

/// Room for this many tables in [`Status::tables`].
pub const MAX_TABLE_STATS: usize = 8;

fn decode_hook(attr: &Attr<'_>) -> Result<HookStatus, WireError> {
    let (mut slot, mut point, mut stage, mut prio, mut pkts, mut bytes) = (None, None, None, None, 0, 0);
    for a in attr.nested() {
        let a = a?;
        match a.ty {
            HA_SLOT => slot = Some(a.u32()?),
            HA_POINT => point = Some(HookPoint::from_u32(a.u32()?).ok_or(WireError::BadValue(a.ty))?),
            HA_STAGE => stage = Some(Stage::from_u32(a.u32()?).ok_or(WireError::BadValue(a.ty))?),
            HA_PRIORITY => prio = Some(a.s32()?),
            HA_PACKETS => pkts = a.u64()?,
            HA_BYTES => bytes = a.u64()?,
            _ => {}
        }
    }
    Ok(HookStatus {
        slot: slot.ok_or(WireError::Missing(HA_SLOT))?,
        point: point.ok_or(WireError::Missing(HA_POINT))?,
        stage: stage.ok_or(WireError::Missing(HA_STAGE))?,
        priority: prio.ok_or(WireError::Missing(HA_PRIORITY))?,
        packets: pkts,
        bytes,
    })
}

/// Decodes the payload of a [`CMD_GET_STATUS`] reply. Unknown attributes are skipped, so an
/// older rnfctl can read a newer module's answer.
pub fn decode_status(payload: &[u8]) -> Result<Status<'_>, WireError> {
    let mut st = Status { version: "", netns_cookie: 0, hooks: [None; NUM_HOOKS], tables: [None; MAX_TABLE_STATS] };
    let mut ntables = 0usize;
    let mut seen_version = false;
    for a in AttrIter::new(payload) {
        let a = a?;
        match a.ty {
            A_VERSION => {
                st.version = a.str()?;
                seen_version = true;
            }
            A_NETNS_COOKIE => st.netns_cookie = a.u64()?,
            A_TABLE_STATS => {
                let t = decode_table_stats(&a)?;
                if let Some(slot) = st.tables.get_mut(ntables) {
                    *slot = Some(t);
                    ntables += 1;
                }
            }
            A_HOOKS => {
                for e in a.nested() {
                    let e = e?;
                    if e.ty != A_HOOKS_ENTRY {
                        continue;
                    }
                    let h = decode_hook(&e)?;
                    let slot = st.hooks.get_mut(h.slot as usize).ok_or(WireError::BadValue(HA_SLOT))?;
                    *slot = Some(h);
                }
            }
            _ => {}
        }
    }
    if !seen_version {
        return Err(WireError::Missing(A_VERSION));
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    extern crate std;

    #[test]
    fn sections_start_at_their_attribute() {
        let mut buf = [0u8; 128];
        let mut enc = Encoder::new(&mut buf);
        enc.put_u32(5, 0);
        enc.put_u64(6, 1);
        enc.put_u32(5, 2);
        enc.put_u32(5, 3);
        enc.put_str(7, "x");
        let n = enc.len();
        let parts: std::vec::Vec<&[u8]> = sections(&buf[..n], 5).unwrap().collect();
        assert_eq!(parts.len(), 3);
        let tys = |p: &[u8]| AttrIter::new(p).map(|a| a.unwrap().ty).collect::<std::vec::Vec<_>>();
        assert_eq!(tys(parts[0]), [5, 6]);
        assert_eq!(tys(parts[1]), [5]);
        assert_eq!(tys(parts[2]), [5, 7]);
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), n);
        // Something before the first section, or a malformed stream, is an error.
        assert!(sections(&buf[8..n], 5).is_err());
        assert_eq!(sections(&buf[8..n], 6).unwrap().count(), 1);
        assert!(sections(&buf[..n - 4], 5).is_err());
        assert_eq!(sections(&[], 5).unwrap().count(), 0);
    }

    use super::super::hooks::HOOKS;
    use super::*;

    #[test]
    fn u32_attribute_bytes() {
        let mut buf = [0xaau8; 16];
        let mut enc = Encoder::new(&mut buf);
        enc.put_u32(7, 0x0102_0304);
        assert_eq!(enc.len(), 8);
        assert!(!enc.overflowed());
        // len = 8, type = 7, payload in host order.
        let mut want = [0u8; 8];
        want[..2].copy_from_slice(&8u16.to_ne_bytes());
        want[2..4].copy_from_slice(&7u16.to_ne_bytes());
        want[4..].copy_from_slice(&0x0102_0304u32.to_ne_bytes());
        assert_eq!(&buf[..8], &want);
    }

    #[test]
    fn string_is_nul_terminated_and_padded() {
        let mut buf = [0xaau8; 16];
        let mut enc = Encoder::new(&mut buf);
        enc.put_str(1, "abcde");
        // 4 header + 6 payload = 10, padded to 12.
        assert_eq!(enc.len(), 12);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 10);
        assert_eq!(&buf[4..12], b"abcde\0\0\0");
        let a = AttrIter::new(&buf[..12]).next().unwrap().unwrap();
        assert_eq!(a.str().unwrap(), "abcde");
    }

    #[test]
    fn sizing_pass_then_write() {
        let hooks: [HookStatus; NUM_HOOKS] = core::array::from_fn(|i| HookStatus {
            slot: i as u32,
            point: HOOKS[i].point,
            stage: HOOKS[i].stage,
            priority: HOOKS[i].priority(),
            packets: i as u64 * 3,
            bytes: u64::MAX - i as u64,
        });
        let mut empty = [0u8; 0];
        let mut sizer = Encoder::new(&mut empty);
        let tables = [
            TableStats { table: 0, rules: 3, chains: 5, ruleset_bytes: 900, counter_bytes: 128, ..Default::default() },
            TableStats {
                table: 1,
                rules: 10_000,
                chains: 6,
                ruleset_bytes: 1 << 21,
                counter_bytes: 160_096,
                index: super::super::rules::index::IndexStats { chains: 1, shapes: 2, keyed_rules: 9_999, wild_rules: 1, bytes: 300_000 },
                change_ns: 1_234_567,
                compiled_rules: 1,
                built_indexes: 1,
            },
        ];
        encode_status(&mut sizer, "0.1.0", 42, &hooks, &tables);
        assert!(sizer.overflowed());
        let need = sizer.len();
        let mut buf = [0u8; 2048];
        let mut enc = Encoder::new(&mut buf[..need]);
        encode_status(&mut enc, "0.1.0", 42, &hooks, &tables);
        assert!(!enc.overflowed());
        assert_eq!(enc.len(), need);
        let st = decode_status(&buf[..need]).unwrap();
        assert_eq!(st.version, "0.1.0");
        assert_eq!(st.netns_cookie, 42);
        for (i, h) in hooks.iter().enumerate() {
            assert_eq!(st.hooks[i], Some(*h));
        }
        assert_eq!(st.tables[..3], [Some(tables[0]), Some(tables[1]), None]);
    }

    #[test]
    fn malformed_streams_are_errors() {
        // Header claims 12 bytes, only 8 present.
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&12u16.to_ne_bytes());
        assert_eq!(AttrIter::new(&b).next(), Some(Err(WireError::Truncated)));
        // Length below the header size.
        b[..2].copy_from_slice(&2u16.to_ne_bytes());
        assert!(matches!(AttrIter::new(&b).next(), Some(Err(WireError::BadLength(_)))));
        // Three stray bytes.
        assert_eq!(AttrIter::new(&[1, 2, 3]).next(), Some(Err(WireError::Truncated)));
        // A u32 with a 2-byte payload.
        let mut buf = [0u8; 8];
        let mut enc = Encoder::new(&mut buf);
        enc.put_bytes(HA_SLOT, &[1, 2]);
        let a = AttrIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(a.u32(), Err(WireError::BadLength(HA_SLOT)));
        // A status without a version.
        assert_eq!(decode_status(&[]), Err(WireError::Missing(A_VERSION)));
    }

    #[test]
    fn decoder_never_panics_on_random_bytes() {
        let mut seed: u32 = 0xdead_beef;
        let mut buf = [0u8; 256];
        for _ in 0..5000 {
            for b in buf.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (seed >> 24) as u8;
            }
            // Bias lengths towards plausible values.
            buf[0] = (seed % 64) as u8;
            buf[1] = 0;
            let n = (seed as usize >> 8) % buf.len();
            let _ = decode_status(&buf[..n]);
            for a in AttrIter::new(&buf[..n]).flatten() {
                let _ = a.nested().count();
            }
        }
    }
}
