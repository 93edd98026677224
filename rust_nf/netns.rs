// SPDX-License-Identifier: GPL-2.0

//! Per network namespace state: created when a namespace appears (`ffi::entry`), freed when it
//! goes away.

use crate::engine::hooks::NUM_HOOKS;
use crate::engine::rule::NUM_TABLES;
use crate::ffi::pcpu::PcpuCounters;
use crate::ffi::rcu::Published;
use crate::table::{CtBox, TableConfig, Tables};
use core::ffi::c_uint;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Packets and bytes seen per hook slot (what `rnfctl status` shows).
///
/// Zeroing never writes the per-CPU counters (another CPU may be adding to them at that
/// moment, and its addition would be lost or the zero undone); it records their sum as a base
/// that later reads subtract.
#[pin_data]
pub(crate) struct HookCounters {
    counts: PcpuCounters,
    #[pin]
    base: Mutex<[(u64, u64); NUM_HOOKS]>,
}

impl HookCounters {
    /// Counts one packet of `bytes` at hook `slot`.
    pub(crate) fn add(&self, slot: c_uint, bytes: u64) {
        self.counts.add(slot, bytes);
    }

    /// (packets, bytes) at hook `slot` since it was last zeroed.
    pub(crate) fn get(&self, slot: usize) -> (u64, u64) {
        let base = self.base.lock();
        Self::since(&self.counts, &base, slot)
    }

    fn since(counts: &PcpuCounters, base: &[(u64, u64); NUM_HOOKS], slot: usize) -> (u64, u64) {
        let (p, b) = c_uint::try_from(slot).map_or((0, 0), |s| counts.sum(s));
        let (p0, b0) = base.get(slot).copied().unwrap_or((0, 0));
        (p.wrapping_sub(p0), b.wrapping_sub(b0))
    }

    /// Zeroes hook `slot`, or every slot.
    pub(crate) fn zero(&self, slot: Option<usize>) {
        let mut base = self.base.lock();
        for s in 0..NUM_HOOKS {
            if slot.is_none_or(|only| only == s) {
                let now = c_uint::try_from(s).map_or((0, 0), |s| self.counts.sum(s));
                if let Some(b) = base.get_mut(s) {
                    *b = now;
                }
            }
        }
    }
}

/// What rust_nf keeps per network namespace.
#[pin_data]
pub(crate) struct NetState {
    /// Packets and bytes seen per hook slot.
    #[pin]
    pub(crate) hooks: HookCounters,
    /// The namespace's cookie, reported to userspace to tell namespaces apart.
    pub(crate) cookie: u64,
    /// The compiled tables the packet path reads (under RCU), by table id, and the tables'
    /// configuration, under the lock every change holds (one per namespace: a large replace in
    /// one namespace never makes another namespace's commands wait).
    #[pin]
    pub(crate) tables: Tables,
    /// The connection table, once a ruleset needed one (published once, freed at exit).
    pub(crate) ct: CtBox,
    /// The connection tracking settings (`rnfctl sysctl`): the table takes them when it
    /// starts; written here and in the table's own copy afterwards.
    pub(crate) ct_settings: crate::engine::conntrack::settings::Settings,
}

impl NetState {
    /// The state of a new namespace, charged to the memory cgroup of whoever creates it.
    pub(crate) fn new(cookie: u64) -> Result<Pin<KBox<Self>>> {
        let counts = PcpuCounters::new(NUM_HOOKS)?;
        let init = pin_init!(NetState {
            hooks <- pin_init!(HookCounters {
                counts,
                base <- new_mutex!([(0, 0); NUM_HOOKS]),
            }),
            cookie,
            tables <- Published::new([const { TableConfig::new() }; NUM_TABLES]),
            ct: crate::ffi::rcu::OnceBox::new(),
            ct_settings: crate::engine::conntrack::settings::Settings::new(),
        });
        KBox::pin_init(init, GFP_KERNEL_ACCOUNT)
    }
}
