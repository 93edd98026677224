// SPDX-License-Identifier: GPL-2.0

//! The wire format of `rnfctl conntrack`: commands, attributes, and the encoding of one flow.
//!
//! Every command needs CAP_NET_ADMIN in the namespace's owning user namespace, as
//! ctnetlink's do.

use super::super::wire::{AttrIter, Encoder, WireError};
use super::Tuple;

/// Command, a dump: every confirmed flow of the namespace, [`A_CT_FLOW`] nests in as many
/// messages as needed.
pub const CMD_CT_DUMP: u8 = 6;
/// Command: delete every flow (`conntrack -F`); the reply's [`A_CT_COUNT`] says how many.
pub const CMD_CT_FLUSH: u8 = 7;
/// Command: the table's size and statistics (`conntrack -C`, `-S`): `A_CT_*` attributes.
pub const CMD_CT_STATS: u8 = 8;
/// Command: every setting ([`super::settings`]), one [`A_SYSCTL`] nest each.
pub const CMD_CT_SYSCTL_GET: u8 = 11;
/// Command: set [`A_SYSCTL_KEY`] to [`A_SYSCTL_VALUE`] (CAP_NET_ADMIN).
pub const CMD_CT_SYSCTL_SET: u8 = 12;
/// Command: delete the flow [`A_CT_DEL_ID`] if its original tuple is [`A_CT_DEL_TUPLE`]
/// (`conntrack -D`; CAP_NET_ADMIN).
pub const CMD_CT_DELETE: u8 = 13;
/// Attribute: u32 a flow's id (as the dump gives it).
pub const A_CT_DEL_ID: u16 = 29;
/// Attribute: 13 bytes, the flow's original tuple (as [`F_ORIG`]).
pub const A_CT_DEL_TUPLE: u16 = 30;

/// Writes a `CMD_CT_DELETE` request for flow `f`.
pub fn encode_delete(enc: &mut Encoder<'_>, f: &FlowRecord) {
    enc.put_u32(A_CT_DEL_ID, f.id);
    put_tuple(enc, A_CT_DEL_TUPLE, &f.orig);
}

/// Reads a `CMD_CT_DELETE` request: (id, original tuple).
pub fn decode_delete(payload: &[u8]) -> Result<(u32, Tuple), WireError> {
    let (mut id, mut t) = (None, None);
    for a in AttrIter::new(payload) {
        let a = a?;
        match a.ty {
            A_CT_DEL_ID => id = Some(a.u32()?),
            A_CT_DEL_TUPLE => t = Some(get_tuple(a.payload).map_err(|_| WireError::BadLength(a.ty))?),
            _ => {}
        }
    }
    match (id, t) {
        (Some(id), Some(t)) => Ok((id, t)),
        _ => Err(WireError::BadValue(A_CT_DEL_ID)),
    }
}

/// Attribute: u32 a setting's number ([`super::settings::Key`]).
pub const A_SYSCTL_KEY: u16 = 26;
/// Attribute: u32 its value.
pub const A_SYSCTL_VALUE: u16 = 27;
/// Reply attribute: one setting, a nest of [`A_SYSCTL_KEY`] and [`A_SYSCTL_VALUE`].
pub const A_SYSCTL: u16 = 28;

/// Top-level attribute: one flow, a nest of `F_*` attributes.
pub const A_CT_FLOW: u16 = 11;
/// Top-level attribute: u32 flows in use (unconfirmed ones included).
pub const A_CT_COUNT: u16 = 12;
/// Top-level attribute: u32 most flows (`ct_max`).
pub const A_CT_MAX: u16 = 13;
/// Top-level attribute: u32 hash buckets.
pub const A_CT_BUCKETS: u16 = 14;
/// Top-level attribute: u64 bytes the table takes.
pub const A_CT_MEMORY: u16 = 15;
/// Top-level attribute: u32 bytes per entry.
pub const A_CT_ENTRY_SIZE: u16 = 16;
/// Top-level attribute: u64 packets found INVALID.
pub const A_CT_INVALID: u16 = 17;
/// Top-level attribute: u64 packets dropped because the table was full.
pub const A_CT_DROP: u16 = 18;
/// Top-level attribute: u64 flows evicted to make room.
pub const A_CT_EARLY_DROP: u16 = 19;
/// Top-level attribute: u64 first packets that lost an insert race.
pub const A_CT_INSERT_FAILED: u16 = 20;
/// Top-level attribute: u32 1 when the namespace tracks connections at all.
pub const A_CT_ENABLED: u16 = 21;

/// Flow attribute: the original tuple (13 bytes, see [`put_tuple`]).
pub const F_ORIG: u16 = 1;
/// Flow attribute: the reply tuple.
pub const F_REPLY: u16 = 2;
/// Flow attribute: u32 status bits ([`super::status`]).
pub const F_STATUS: u16 = 3;
/// Flow attribute: u32 seconds left.
pub const F_TIMEOUT: u16 = 4;
/// Flow attribute: u32 TCP state ([`super::tcp::TcpState`]), TCP flows only.
pub const F_TCP_STATE: u16 = 5;
/// Flow attribute: u64 x 4: packets and bytes of the original, then the reply direction.
pub const F_COUNTERS: u16 = 6;
/// Flow attribute: u32 id (stable while the flow lives).
pub const F_ID: u16 = 7;
/// Flow attribute: u32 the connection's mark.
pub const F_MARK: u16 = 8;
/// Flow attribute: u32 the event ([`EV_NEW`], [`EV_UPDATE`], [`EV_DESTROY`]), in events only.
pub const F_EVENT: u16 = 9;

/// Flow: its helper (u32, `table::HELPER_FTP`), when it has one.
pub const F_HELPER: u16 = 11;

/// Statistics of one CPU (nest: [`A_CT_CPU_ID`] and the counters as one [`A_CT_CPU_VALUES`]).
pub const A_CT_CPU: u16 = 31;
/// In [`A_CT_CPU`]: the CPU (u32).
pub const A_CT_CPU_ID: u16 = 1;
/// In [`A_CT_CPU`]: the counters of `table::STAT_NAMES`, u64 each.
pub const A_CT_CPU_VALUES: u16 = 2;

/// Writes one CPU's statistics.
pub fn encode_cpu_stats(enc: &mut Encoder<'_>, cpu: u32, values: &[u64; 10]) {
    let n = enc.begin_nest(A_CT_CPU);
    enc.put_u32(A_CT_CPU_ID, cpu);
    let mut b = [0u8; 80];
    // (Indexed, not zipped with `chunks_exact_mut`: that generic code leaves objtool a
    // function it sees falling through.)
    for (i, v) in values.iter().enumerate() {
        if let Some(chunk) = b.get_mut(i * 8..i * 8 + 8) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
    }
    enc.put_bytes(A_CT_CPU_VALUES, &b);
    enc.end_nest(n);
}

/// Reads one CPU's statistics.
pub fn decode_cpu_stats(nest: AttrIter<'_>) -> Result<(u32, [u64; 10]), WireError> {
    let (mut cpu, mut values) = (0, [0u64; 10]);
    for a in nest {
        let a = a?;
        match a.ty {
            A_CT_CPU_ID => cpu = a.u32()?,
            A_CT_CPU_VALUES => {
                if a.payload.len() != 80 {
                    return Err(WireError::BadLength(a.ty));
                }
                for (i, v) in values.iter_mut().enumerate() {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(a.payload.get(i * 8..i * 8 + 8).ok_or(WireError::BadLength(a.ty))?);
                    *v = u64::from_ne_bytes(w);
                }
            }
            _ => {}
        }
    }
    Ok((cpu, values))
}

/// Flow: the zone ids of the original and reply tuples (u32: original | reply << 16), when
/// one is not 0.
pub const F_ZONE: u16 = 10;

/// Multicast message of connection events: [`A_CT_FLOW`] nests, each with [`F_EVENT`].
pub const CMD_CT_EVENT: u8 = 14;
/// The multicast group of connection events.
pub const MCGRP_CT_EVENTS: &str = "ct-events";
/// A flow was confirmed.
pub const EV_NEW: u8 = 1;
/// A flow's protocol state or status changed.
pub const EV_UPDATE: u8 = 2;
/// A confirmed flow went.
pub const EV_DESTROY: u8 = 4;

/// One flow as the dump carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowRecord {
    /// Original tuple.
    pub orig: Tuple,
    /// Reply tuple.
    pub reply: Tuple,
    /// Status bits.
    pub status: u16,
    /// Seconds until it expires.
    pub timeout: u32,
    /// TCP state, for TCP flows.
    pub tcp_state: Option<u8>,
    /// (packets, bytes) original, then reply.
    pub counters: [(u64, u64); 2],
    /// Id.
    pub id: u32,
    /// The connection's mark.
    pub mark: u32,
    /// In an event: which ([`EV_NEW`] ...); 0 in a dump.
    pub event: u8,
    /// The zone id of the original and of the reply tuple (`-j CT --zone`).
    pub zone: [u16; 2],
    /// The flow's helper (`table::HELPER_FTP`), 0 for none.
    pub helper: u8,
}

fn put_tuple(enc: &mut Encoder<'_>, ty: u16, t: &Tuple) {
    let mut b = [0u8; 13];
    b[0..4].copy_from_slice(&t.src.to_ne_bytes());
    b[4..8].copy_from_slice(&t.dst.to_ne_bytes());
    b[8..10].copy_from_slice(&t.sport.to_ne_bytes());
    b[10..12].copy_from_slice(&t.dport.to_ne_bytes());
    b[12] = t.proto;
    enc.put_bytes(ty, &b);
}

fn get_tuple(p: &[u8]) -> Result<Tuple, WireError> {
    let b: &[u8; 13] = p.try_into().map_err(|_| WireError::BadLength(0))?;
    Ok(Tuple {
        src: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        dst: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        sport: u16::from_ne_bytes([b[8], b[9]]),
        dport: u16::from_ne_bytes([b[10], b[11]]),
        proto: b[12],
    })
}

/// Writes one flow as an [`A_CT_FLOW`] nest.
pub fn encode_flow(enc: &mut Encoder<'_>, f: &FlowRecord) {
    let n = enc.begin_nest(A_CT_FLOW);
    put_tuple(enc, F_ORIG, &f.orig);
    put_tuple(enc, F_REPLY, &f.reply);
    enc.put_u32(F_STATUS, u32::from(f.status));
    enc.put_u32(F_TIMEOUT, f.timeout);
    if let Some(s) = f.tcp_state {
        enc.put_u32(F_TCP_STATE, u32::from(s));
    }
    let mut c = [0u8; 32];
    for (i, v) in [f.counters[0].0, f.counters[0].1, f.counters[1].0, f.counters[1].1].iter().enumerate() {
        c[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
    }
    enc.put_bytes(F_COUNTERS, &c);
    enc.put_u32(F_ID, f.id);
    enc.put_u32(F_MARK, f.mark);
    if f.event != 0 {
        enc.put_u32(F_EVENT, u32::from(f.event));
    }
    if f.helper != 0 {
        enc.put_u32(F_HELPER, u32::from(f.helper));
    }
    if f.zone != [0, 0] {
        enc.put_u32(F_ZONE, u32::from(f.zone[0]) | u32::from(f.zone[1]) << 16);
    }
    enc.end_nest(n);
}

/// Reads the payload of one [`A_CT_FLOW`] nest.
pub fn decode_flow(nest: AttrIter<'_>) -> Result<FlowRecord, WireError> {
    let mut f = FlowRecord::default();
    for a in nest {
        let a = a?;
        match a.ty {
            F_ORIG => f.orig = get_tuple(a.payload).map_err(|_| WireError::BadLength(a.ty))?,
            F_REPLY => f.reply = get_tuple(a.payload).map_err(|_| WireError::BadLength(a.ty))?,
            F_STATUS => f.status = a.u32()? as u16,
            F_TIMEOUT => f.timeout = a.u32()?,
            F_TCP_STATE => f.tcp_state = Some(a.u32()? as u8),
            F_COUNTERS => {
                let b: &[u8; 32] = a.payload.try_into().map_err(|_| WireError::BadLength(a.ty))?;
                let v = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&b[i * 8..i * 8 + 8]);
                    u64::from_ne_bytes(w)
                };
                f.counters = [(v(0), v(1)), (v(2), v(3))];
            }
            F_ID => f.id = a.u32()?,
            F_MARK => f.mark = a.u32()?,
            F_EVENT => f.event = a.u32()? as u8,
            F_HELPER => f.helper = a.u32()? as u8,
            F_ZONE => {
                let z = a.u32()?;
                f.zone = [z as u16, (z >> 16) as u16];
            }
            _ => {}
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::super::wire::AttrIter;

    #[test]
    fn flow_round_trip() {
        let f = FlowRecord {
            orig: Tuple { src: 1, dst: 2, sport: 3, dport: 4, proto: 6 },
            reply: Tuple { src: 2, dst: 1, sport: 4, dport: 3, proto: 6 },
            status: 0b1110,
            timeout: 431_999,
            tcp_state: Some(3),
            counters: [(10, 1000), (9, 900)],
            id: 77,
            mark: 0x5a,
            event: EV_UPDATE,
            zone: [5, 0],
            helper: 1,
        };
        let mut buf = [0u8; 256];
        let mut enc = Encoder::new(&mut buf);
        encode_flow(&mut enc, &f);
        let n = enc.len();
        let a = AttrIter::new(&buf[..n]).next().unwrap().unwrap();
        assert_eq!(a.ty, A_CT_FLOW);
        assert_eq!(decode_flow(a.nested()).unwrap(), f);
        assert!(decode_flow(AttrIter::new(&buf[..5])).is_err());
    }

    #[test]
    fn cpu_stats_round_trip() {
        let mut buf = [0u8; 256];
        let mut enc = Encoder::new(&mut buf);
        let v = [1, 2, 3, 4, 5, 6, 0, 8, 0, 0];
        encode_cpu_stats(&mut enc, 3, &v);
        let n = enc.len();
        let a = AttrIter::new(&buf[..n]).next().unwrap().unwrap();
        assert_eq!(a.ty, A_CT_CPU);
        assert_eq!(decode_cpu_stats(a.nested()).unwrap(), (3, v));
    }
}
