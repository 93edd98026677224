// SPDX-License-Identifier: GPL-2.0

//! Generic netlink commands: decoded and answered with the engine's wire format.

use crate::engine::hooks::{HOOKS, NUM_HOOKS};
use crate::engine::rulewire;
use crate::conntrack::Ct;
use crate::engine::conntrack::wire as ctwire;
use crate::engine::wire;
use crate::ffi::genl::{Dump, Request};
use crate::netns::NetState;
use crate::table::{self, UserError};
use core::ffi::c_long;
use kernel::prelude::*;

/// The module version reported by the status command.
pub(crate) const VERSION: &str = "0.1.0";

/// Runs one command (a `doit`). The core has already checked the attributes against the
/// command's policy and, for mutating commands, CAP_NET_ADMIN.
pub(crate) fn doit(cmd: u8, req: &mut Request<'_>, ns: &NetState) -> Result {
    match cmd {
        wire::CMD_GET_STATUS => status(req, ns),
        wire::CMD_ZERO_COUNTERS => zero(req, ns),
        wire::CMD_REPLACE_TABLE => replace(req, ns, false),
        wire::CMD_REPLACE_TABLES => replace(req, ns, true),
        wire::CMD_UPDATE_TABLE => update(req, ns, false),
        wire::CMD_UPDATE_TABLES => update(req, ns, true),
        ctwire::CMD_CT_FLUSH => ct_flush(req, ns),
        ctwire::CMD_CT_STATS => ct_stats(req, ns),
        ctwire::CMD_CT_SYSCTL_GET => sysctl_get(req, ns),
        ctwire::CMD_CT_SYSCTL_SET => sysctl_set(req, ns),
        ctwire::CMD_CT_DELETE => ct_delete(req, ns),
        crate::engine::recent::wire::CMD_RECENT_SET => crate::recent::set(req, ns),
        _ => Err(EOPNOTSUPP),
    }
}

fn ct_flush(req: &Request<'_>, ns: &NetState) -> Result {
    let n = ns.ct.get().map_or(0, |ct| ct.table().flush(crate::ffi::shim::jiffies()));
    req.reply(ctwire::CMD_CT_FLUSH, |enc| enc.put_u32(ctwire::A_CT_COUNT, n))
}

fn ct_stats(req: &Request<'_>, ns: &NetState) -> Result {
    let ct = ns.ct.get();
    let s = ct.map(|ct: &Ct| {
        let (count, max) = ct.usage();
        let mut sum = [0u64; 10];
        for st in ct.stats() {
            for (t, v) in sum.iter_mut().zip(st.values()) {
                *t = t.wrapping_add(v);
            }
        }
        // invalid, drop, early_drop, insert_failed (indexes in STAT_NAMES).
        (count, max, ct.buckets(), ct.memory() as u64, [sum[1], sum[4], sum[5], sum[3]])
    });
    req.reply(ctwire::CMD_CT_STATS, |enc| {
        // One nest per CPU, as ctnetlink's CTA_STATS per CPU.
        for (cpu, st) in ct.map_or(&[][..], |c| c.stats()).iter().enumerate() {
            ctwire::encode_cpu_stats(enc, cpu as u32, &st.values());
        }
        enc.put_u32(ctwire::A_CT_ENABLED, u32::from(s.is_some()));
        enc.put_u32(ctwire::A_CT_ENTRY_SIZE, core::mem::size_of::<crate::engine::conntrack::table::Entry>() as u32);
        if let Some((count, max, buckets, mem, st)) = s {
            enc.put_u32(ctwire::A_CT_COUNT, count);
            enc.put_u32(ctwire::A_CT_MAX, max);
            enc.put_u32(ctwire::A_CT_BUCKETS, buckets);
            enc.put_u64(ctwire::A_CT_MEMORY, mem);
            enc.put_u64(ctwire::A_CT_INVALID, st[0]);
            enc.put_u64(ctwire::A_CT_DROP, st[1]);
            enc.put_u64(ctwire::A_CT_EARLY_DROP, st[2]);
            enc.put_u64(ctwire::A_CT_INSERT_FAILED, st[3]);
        }
    })
}

/// `CMD_CT_DELETE`: one flow, named by the id and original tuple a dump gave.
fn ct_delete(req: &Request<'_>, ns: &NetState) -> Result {
    let (id, orig) = ctwire::decode_delete(req.payload()).map_err(|_| {
        req.set_err(c"need a flow id and its original tuple");
        EINVAL
    })?;
    let t = ns.ct.get().map(|ct| ct.table());
    match t.as_ref().and_then(|t| t.find_by_id(id, &orig).map(|h| (t, h))) {
        Some((t, h)) if t.delete_at(h, crate::ffi::shim::jiffies()) => Ok(()),
        _ => {
            req.set_err(c"no such flow");
            Err(ENOENT)
        }
    }
}

/// `CMD_CT_SYSCTL_GET`: every setting, as the namespace runs with it.
fn sysctl_get(req: &Request<'_>, ns: &NetState) -> Result {
    use crate::engine::conntrack::settings::{Key, SYSCTLS};
    // No lock: the values are atomics and the table is published once (a reader never
    // waits behind a replace).
    let ct = ns.ct.get();
    let s = ct.map_or(&ns.ct_settings, |c| c.settings());
    let (planned_max, planned_buckets) = crate::conntrack::planned_sizes(&ns.ct_settings);
    let value = |k: Key| match (k, ct) {
        (Key::Count, Some(c)) => c.usage().0,
        (Key::Count, None) => 0,
        (Key::Max, None) => planned_max,
        (Key::Buckets, None) => planned_buckets,
        _ => s.get(k),
    };
    req.reply(ctwire::CMD_CT_SYSCTL_GET, |enc| {
        for (k, ..) in SYSCTLS {
            let n = enc.begin_nest(ctwire::A_SYSCTL);
            enc.put_u32(ctwire::A_SYSCTL_KEY, k as u32);
            enc.put_u32(ctwire::A_SYSCTL_VALUE, value(k));
            enc.end_nest(n);
        }
    })
}

/// `CMD_CT_SYSCTL_SET`: one setting, checked as the kernel's sysctl handlers check it.
fn sysctl_set(req: &Request<'_>, ns: &NetState) -> Result {
    use crate::engine::conntrack::settings::Key;
    let (mut key, mut value) = (None, None);
    for a in wire::AttrIter::new(req.payload()) {
        let a = a.map_err(|_| EINVAL)?;
        match a.ty {
            ctwire::A_SYSCTL_KEY => key = a.u32().ok().and_then(Key::from_u32),
            ctwire::A_SYSCTL_VALUE => value = a.u32().ok(),
            _ => {}
        }
    }
    let (Some(k), Some(v)) = (key, value) else {
        req.set_err(c"need a setting and a value");
        return Err(EINVAL);
    };
    if !k.writable() {
        req.set_err(c"this setting is read only");
        return Err(EACCES);
    }
    let max = match k {
        Key::TcpLoose | Key::TcpBeLiberal => 1,
        Key::TcpMaxRetrans => 255,
        // Seconds, kept in jiffies by the kernel: at most what an int of jiffies holds.
        Key::Max => i32::MAX as u32,
        _ => (i32::MAX as u32) / crate::ffi::shim::hz().max(1),
    };
    if v > max {
        req.set_err(c"value out of range");
        return Err(EINVAL);
    }
    // As nf_conntrack: the table size is the initial namespace's to set (read only in the
    // others, where the owner of a user namespace could otherwise ask for gigabytes).
    if k == Key::Max && !req.init_net() {
        req.set_err(c"nf_conntrack_max is read only outside the initial network namespace");
        return Err(EACCES);
    }
    let _cfg = ns.tables.lock();
    if let Some(ct) = ns.ct.get() {
        if k == Key::Max && (v == 0 || v > ct.capacity()) {
            req.set_err(c"nf_conntrack_max: the table was sized when tracking started (ct_max)");
            return Err(EINVAL);
        }
        ct.settings().set(k, v);
    }
    ns.ct_settings.set(k, v);
    Ok(())
}

/// `CMD_CT_DUMP`: the confirmed flows, from the entry where the last call stopped.
fn ct_dump(d: &mut Dump<'_>, ns: &NetState) -> Result<bool> {
    let Some(ct) = ns.ct.get() else { return Ok(false) };
    let t = ct.table();
    let now = crate::ffi::shim::jiffies();
    let mut from = u32::try_from(d.args()[ARG_NEXT]).unwrap_or(u32::MAX);
    loop {
        let mut batch = [crate::engine::conntrack::Handle { idx: 0, gen: 0 }; 16];
        let (n, next) = t.walk(from, now, &mut batch);
        let mut recs = [ctwire::FlowRecord::default(); 16];
        let mut m = 0;
        for h in batch.iter().take(n) {
            let Some(rec) = t.record(*h, now) else { continue };
            if let Some(r) = recs.get_mut(m) {
                *r = rec;
                m += 1;
            }
        }
        let recs = recs.get(..m).unwrap_or(&[]);
        if !recs.is_empty() && !d.put(ctwire::CMD_CT_DUMP, |enc| {
            for r in recs {
                ctwire::encode_flow(enc, r);
            }
        }) {
            // This batch does not fit: the next call starts with it.
            if d.written() == 0 {
                return Err(EMSGSIZE);
            }
            d.args()[ARG_NEXT] = from as c_long;
            return Ok(true);
        }
        match next {
            Some(nx) => from = nx,
            None => {
                d.args()[ARG_NEXT] = c_long::MAX;
                return Ok(false);
            }
        }
    }
}

/// Turns a table error into the errno, with its message in the extended ack.
fn user_error(req: &Request<'_>, e: UserError) -> Error {
    match &e.detail {
        Some(d) => req.set_err_text(&d.buf),
        None => req.set_err(e.msg),
    }
    e.err
}

fn status(req: &Request<'_>, ns: &NetState) -> Result {
    let hooks: [wire::HookStatus; NUM_HOOKS] = core::array::from_fn(|slot| {
        let spec = HOOKS[slot];
        let (packets, bytes) = ns.hooks.get(slot);
        wire::HookStatus { slot: slot as u32, point: spec.point, stage: spec.stage, priority: spec.priority(), packets, bytes }
    });
    let mut tables = [wire::TableStats::default(); crate::engine::rule::NUM_TABLES];
    let mut n = 0;
    // Table sizes only for an administrator (reading tables needs CAP_NET_ADMIN too).
    if req.net_admin() {
        let reader = req.reader();
        for live in ns.tables.boxes().iter() {
            if let (Some(v), Some(slot)) = (live.get(&reader), tables.get_mut(n)) {
                *slot = v.stats();
                n += 1;
            }
        }
    }
    let tables = tables.get(..n).unwrap_or(&[]);
    req.reply(wire::CMD_GET_STATUS, |enc| wire::encode_status(enc, VERSION, ns.cookie, &hooks, tables))
}

fn zero(req: &Request<'_>, ns: &NetState) -> Result {
    let mut only: Option<u32> = None;
    for attr in wire::AttrIter::new(req.payload()) {
        let attr = attr.map_err(|_| {
            req.set_err(c"malformed attributes");
            EINVAL
        })?;
        if attr.ty == wire::A_HOOK_SLOT {
            only = Some(attr.u32().map_err(|_| {
                req.set_err(c"bad hook slot");
                EINVAL
            })?);
        }
    }
    match only {
        Some(slot) if slot as usize >= NUM_HOOKS => {
            req.set_err(c"no such hook slot");
            Err(ERANGE)
        }
        Some(slot) => {
            ns.hooks.zero(Some(slot as usize));
            Ok(())
        }
        None => {
            ns.hooks.zero(None);
            Ok(())
        }
    }
}

fn replace(req: &mut Request<'_>, ns: &NetState, several: bool) -> Result {
    let mut cfg = ns.tables.lock();
    let payload = req.payload();
    table::replace(req, &mut cfg, &ns.ct, &ns.ct_settings, payload, several).map_err(|e| user_error(req, e))
}

fn update(req: &mut Request<'_>, ns: &NetState, several: bool) -> Result {
    let mut cfg = ns.tables.lock();
    let payload = req.payload();
    table::update(req, &mut cfg, &ns.ct, &ns.ct_settings, payload, several).map_err(|e| user_error(req, e))
}

/// Where a table dump stands between calls (netlink keeps `cb->args` for us).
const ARG_STARTED: usize = 0;
const ARG_NEXT: usize = 1;
const ARG_GENERATION: usize = 2;

/// `CMD_GET_TABLE`, a dump: the table's header first, then its chains and rules in as many
/// messages as they need. True while more is to come.
///
/// Every call reads the configuration under the namespace's lock; a change between two calls
/// ends the dump with EAGAIN (the reader starts again), so a listing is never a mix of two
/// versions.
pub(crate) fn dumpit(cmd: u8, d: &mut Dump<'_>, ns: &NetState) -> Result<bool> {
    if cmd == ctwire::CMD_CT_DUMP {
        return ct_dump(d, ns);
    }
    if cmd == crate::engine::recent::wire::CMD_RECENT_DUMP {
        return crate::recent::dump(d, ns);
    }
    let (tid, no_create) = table::get_request(d.payload()).map_err(|e| {
        d.set_err(e.msg);
        e.err
    })?;
    let args = *d.args();
    let started = args[ARG_STARTED] != 0;
    let mut cfg = ns.tables.lock();
    if !started {
        table::touch(&mut cfg, tid, no_create).map_err(|e| {
            d.set_err(e.msg);
            e.err
        })?;
    }
    let tc = cfg.get(tid as usize).ok_or(EINVAL)?;
    let generation = table::generation(tc);
    if started && args[ARG_GENERATION] as u64 != generation {
        d.set_err(c"the table changed during the listing, try again");
        return Err(EAGAIN);
    }
    let total = table::item_count(tc);
    if !started && !d.put(wire::CMD_GET_TABLE, |enc| {
        table::encode_header(enc, tc, tid);
        if total == 0 {
            table::encode_items(enc, tc, tid, 0, 0);
        }
    }) {
        return Err(EMSGSIZE);
    }
    let mut next = if started { usize::try_from(args[ARG_NEXT]).unwrap_or(usize::MAX) } else { 0 };
    while next < total {
        // As many items as fit in one more message.
        let room = d.room();
        let mut size = 8; // the A_TABLE attribute
        let mut end = next;
        while end < total {
            let mut none = [0u8; 0];
            let mut sizer = wire::Encoder::new(&mut none);
            table::encode_items(&mut sizer, tc, tid, end, end + 1);
            if size + sizer.len() > room {
                break;
            }
            size += sizer.len();
            end += 1;
        }
        if end == next
            || !d.put(wire::CMD_GET_TABLE, |enc| {
                enc.put_u32(rulewire::A_TABLE, tid as u32);
                table::encode_items(enc, tc, tid, next, end);
            })
        {
            break;
        }
        next = end;
    }
    let a = d.args();
    a[ARG_STARTED] = 1;
    a[ARG_NEXT] = c_long::try_from(next).unwrap_or(c_long::MAX);
    a[ARG_GENERATION] = generation as c_long;
    if next < total {
        if d.written() == 0 {
            // One item larger than a whole message: cannot happen with the policy's limits.
            d.set_err(c"a rule does not fit in a netlink message");
            return Err(EMSGSIZE);
        }
        return Ok(true);
    }
    Ok(false)
}
