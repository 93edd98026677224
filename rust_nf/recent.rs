// SPDX-License-Identifier: GPL-2.0

//! `-m recent` lists in the kernel: the memory and the lock of each list (the logic is the
//! engine's `rules/recent.rs`), and the commands of `rnfctl recent`.
//!
//! A list is shared by every rule that names it, in any table of the namespace: each table's
//! configuration holds the lists its live version uses ([`crate::table::TableConfig`]), and a
//! new version finds a list there by name, so a list lives as long as some rule names it and
//! keeps its addresses across replaces (as xt_recent's tables do).

use crate::engine::recent::{self, wire as rw, Entry, List, ListState, Slot, HASH_SIZE, LIST_TOT};
use crate::engine::wire::{AttrIter, Encoder};
use crate::ffi::genl::{Dump, Request};
use crate::ffi::shim;
use crate::netns::NetState;
use core::ffi::c_long;
use kernel::prelude::*;
use crate::ffi::lock::BhLock;
use kernel::sync::Arc;

/// A list's memory (under its lock).
struct Mem {
    st: ListState,
    slots: KVVec<Slot>,
    stamps: KVVec<u64>,
    heads: KVVec<u32>,
}

fn filled<T: Copy>(n: usize, v: T) -> Result<KVVec<T>> {
    let mut x = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        x.push(v, GFP_KERNEL_ACCOUNT)?;
    }
    Ok(x)
}

impl Mem {
    fn list(&mut self, init: bool) -> Option<List<'_>> {
        List::new(&mut self.st, &mut self.slots, &mut self.stamps, &mut self.heads, init)
    }
}

/// One named list.
pub(crate) struct RecentList {
    name: KVec<u8>,
    mem: BhLock<Mem>,
}

impl RecentList {
    /// A new, empty list `name` with `--mask` `mask` and `nstamps` stamps per address.
    fn new(name: &str, mask: u32, nstamps: u32) -> Result<Arc<Self>> {
        let mut n = KVec::with_capacity(name.len(), GFP_KERNEL_ACCOUNT)?;
        n.extend_from_slice(name.as_bytes(), GFP_KERNEL_ACCOUNT)?;
        let slots = LIST_TOT as usize;
        let mut mem = Mem {
            st: ListState::new(mask, nstamps, shim::random_u32()),
            slots: filled(slots, Slot::default())?,
            stamps: filled(slots.checked_mul(nstamps as usize).ok_or(ENOMEM)?, 0u64)?,
            heads: filled(HASH_SIZE, 0u32)?,
        };
        mem.list(true).ok_or(EINVAL)?;
        Ok(Arc::new(RecentList { name: n, mem: BhLock::new(mem)? }, GFP_KERNEL_ACCOUNT)?)
    }

    /// The list's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// Makes room for `nstamps` stamps per address, emptying the list if it had fewer (as
    /// `recent_mt_check` does when a rule needs more).
    fn grow(&self, nstamps: u32) -> Result {
        if self.mem.with(|m| m.st.nstamps) >= nstamps {
            return Ok(());
        }
        let mut stamps = filled((LIST_TOT as usize).checked_mul(nstamps as usize).ok_or(ENOMEM)?, 0u64)?;
        self.mem.with(|m| {
            if m.st.nstamps < nstamps {
                core::mem::swap(&mut m.stamps, &mut stamps);
                m.st.nstamps = nstamps;
                m.list(true);
            }
        });
        // The old stamps are freed here, with the lock released.
        drop(stamps);
        Ok(())
    }

    /// `recent_mt` (from the packet path: the lock disables bottom halves, so softirq and
    /// process context never meet on one CPU).
    pub(crate) fn matches(&self, m: &recent::RecentMatch<'_>, addr: u32, ttl: u8) -> Result<bool, ()> {
        let now = shim::jiffies();
        let hz = u64::from(shim::hz());
        self.mem.with(|mem| mem.list(false).ok_or(())?.matches(m, addr, ttl, now, hz))
    }
}

/// The memory of one `-m connlimit` rule's counter (under its lock).
struct CountMem {
    slots: KVVec<crate::engine::connlimit::Slot>,
    heads: KVVec<u32>,
    free: u32,
}

/// One `-m connlimit` rule's counter (per rule, as each xt_connlimit rule has its own).
pub(crate) struct ConnCounter {
    mem: BhLock<CountMem>,
}

impl ConnCounter {
    /// An empty counter.
    pub(crate) fn new() -> Result<Arc<Self>> {
        use crate::engine::connlimit::{Counter, Slot as CSlot, HEADS, POOL};
        let mut mem = CountMem { slots: filled(POOL, CSlot::default())?, heads: filled(HEADS, 0u32)?, free: 0 };
        Counter::new(&mut mem.slots, &mut mem.heads, &mut mem.free, true).ok_or(EINVAL)?;
        Ok(Arc::new(ConnCounter { mem: BhLock::new(mem)? }, GFP_KERNEL_ACCOUNT)?)
    }

    /// `nf_conncount_count` for `key` and the packet's `flow` (`u64::MAX`: none), with
    /// `alive` telling which remembered flows are still open.
    pub(crate) fn count(&self, key: u32, flow: u64, alive: impl Fn(u64) -> bool) -> Option<u32> {
        self.mem.with(|m| {
            crate::engine::connlimit::Counter::new(&mut m.slots, &mut m.heads, &mut m.free, false)?.count(key, flow, alive)
        })
    }
}

/// Finds the list `name` for a new version among `known` (the lists of the live versions and
/// of the tables already prepared in this transaction), growing it if needed, or makes it.
pub(crate) fn find_or_make<'a>(
    known: impl Iterator<Item = &'a Arc<RecentList>>,
    name: &str,
    mask: u32,
    nstamps: u32,
) -> Result<Arc<RecentList>> {
    for l in known {
        if l.name() == name.as_bytes() {
            l.grow(nstamps)?;
            return Ok(l.clone());
        }
    }
    RecentList::new(name, mask, nstamps)
}

/// The request's list name and operation.
fn request(payload: &[u8]) -> Result<(Option<&[u8]>, Option<u32>, Option<u32>)> {
    let (mut name, mut op, mut addr) = (None, None, None);
    for a in AttrIter::new(payload) {
        let a = a.map_err(|_| EINVAL)?;
        match a.ty {
            rw::A_RECENT_NAME => name = Some(a.payload.split(|&b| b == 0).next().unwrap_or(&[])),
            rw::A_RECENT_OP => op = Some(a.u32().map_err(|_| EINVAL)?),
            rw::A_RECENT_ADDR => addr = Some(a.u32().map_err(|_| EINVAL)?),
            _ => {}
        }
    }
    Ok((name, op, addr))
}

/// The namespace's list `name` (from the tables' configuration).
fn find(ns: &NetState, name: &[u8]) -> Option<Arc<RecentList>> {
    let cfg = ns.tables.lock();
    let found = crate::table::recent_lists(&cfg).find(|l| l.name() == name).cloned();
    found
}

/// `CMD_RECENT_SET`: `/`, `+addr` or `-addr` on a list, as its proc file takes them.
pub(crate) fn set(req: &Request<'_>, ns: &NetState) -> Result {
    let (name, op, addr) = request(req.payload())?;
    let Some(list) = name.and_then(|n| find(ns, n)) else {
        req.set_err(c"no such recent list");
        return Err(ENOENT);
    };
    let now = shim::jiffies();
    let done = list.mem.with(|m| {
        let Some(mut l) = m.list(false) else { return false };
        match (op, addr) {
            (Some(rw::OP_FLUSH), _) => l.flush(),
            (Some(rw::OP_ADD), Some(a)) => l.add(a, now),
            (Some(rw::OP_REMOVE), Some(a)) => l.forget(a),
            _ => return false,
        }
        true
    });
    if !done {
        req.set_err(c"need an operation (and an address for + and -)");
        return Err(EINVAL);
    }
    Ok(())
}

fn put_entry(enc: &mut Encoder<'_>, e: &Entry<'_>) {
    let n = enc.begin_nest(rw::A_RECENT_ENTRY);
    enc.put_u32(rw::E_ADDR, e.addr);
    enc.put_u32(rw::E_TTL, u32::from(e.ttl));
    enc.put_u64(rw::E_LAST, e.last_seen);
    enc.put_u32(rw::E_INDEX, u32::from(e.index));
    let s = enc.begin_nest(rw::E_STAMPS);
    for t in e.stamps {
        enc.put_u64(rw::E_LAST, *t);
    }
    enc.end_nest(s);
    enc.end_nest(n);
}

/// `CMD_RECENT_DUMP`: the names of the lists, or one list's addresses from where the last
/// call stopped (`args[0]`: addresses already sent).
pub(crate) fn dump(d: &mut Dump<'_>, ns: &NetState) -> Result<bool> {
    let (name, _, _) = request(d.payload())?;
    let Some(name) = name else {
        // The names, each once (a list used by several tables appears in each).
        let skip = usize::try_from(d.args()[0]).unwrap_or(usize::MAX);
        let cfg = ns.tables.lock();
        let mut seen: KVec<&[u8]> = KVec::new();
        for l in crate::table::recent_lists(&cfg) {
            if seen.iter().any(|n| *n == l.name()) {
                continue;
            }
            seen.push(l.name(), GFP_KERNEL_ACCOUNT)?;
            if seen.len() <= skip {
                continue;
            }
            if !d.put(rw::CMD_RECENT_DUMP, |enc| enc.put_bytes(rw::A_RECENT_NAME, l.name())) {
                d.args()[0] = c_long::try_from(seen.len() - 1).unwrap_or(c_long::MAX);
                return Ok(true);
            }
        }
        d.args()[0] = c_long::try_from(seen.len()).unwrap_or(c_long::MAX);
        return Ok(false);
    };
    let Some(list) = find(ns, name) else {
        d.set_err(c"no such recent list");
        return Err(ENOENT);
    };
    let skip = usize::try_from(d.args()[0]).unwrap_or(usize::MAX);
    let mut sent = skip;
    let mut more = false;
    list.mem.with(|m| {
        let Some(l) = m.list(false) else { return };
        for e in l.entries().skip(skip) {
            if !d.put(rw::CMD_RECENT_DUMP, |enc| put_entry(enc, &e)) {
                more = true;
                break;
            }
            sent += 1;
        }
    });
    if more && sent == skip {
        d.set_err(c"an address does not fit in a netlink message");
        return Err(EMSGSIZE);
    }
    d.args()[0] = c_long::try_from(sent).unwrap_or(c_long::MAX);
    Ok(more)
}
