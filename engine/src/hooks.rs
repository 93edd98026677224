// SPDX-License-Identifier: GPL-2.0

//! The netfilter hooks rust_nf registers: which hook point, for which table or stage, at which
//! priority.
//!
//! This table is the single source of truth: the C shim fills its `nf_hook_ops` from it at
//! module load, the status command reports it, and rnfctl prints its names.

/// An IPv4 netfilter hook point (`enum nf_inet_hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum HookPoint {
    /// NF_INET_PRE_ROUTING: every packet that arrives, before the routing decision.
    PreRouting = 0,
    /// NF_INET_LOCAL_IN: packets for this host.
    LocalIn = 1,
    /// NF_INET_FORWARD: packets routed through this host.
    Forward = 2,
    /// NF_INET_LOCAL_OUT: packets this host sends.
    LocalOut = 3,
    /// NF_INET_POST_ROUTING: every packet that leaves, after the routing decision.
    PostRouting = 4,
}

/// Number of IPv4 hook points.
pub const NUM_HOOK_POINTS: usize = 5;

impl HookPoint {
    /// All hook points in kernel order.
    pub const ALL: [HookPoint; NUM_HOOK_POINTS] = [
        HookPoint::PreRouting,
        HookPoint::LocalIn,
        HookPoint::Forward,
        HookPoint::LocalOut,
        HookPoint::PostRouting,
    ];

    /// The hook point with the kernel's number `n`.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// The iptables name of the builtin chain at this hook ("PREROUTING", ...).
    pub fn chain_name(self) -> &'static str {
        match self {
            HookPoint::PreRouting => "PREROUTING",
            HookPoint::LocalIn => "INPUT",
            HookPoint::Forward => "FORWARD",
            HookPoint::LocalOut => "OUTPUT",
            HookPoint::PostRouting => "POSTROUTING",
        }
    }
}

/// What rust_nf does at a hook: one of the iptables tables, or a conntrack stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Stage {
    /// The `raw` table.
    Raw = 0,
    /// Connection tracking: look up or create the flow.
    Conntrack = 1,
    /// The `mangle` table.
    Mangle = 2,
    /// The `nat` table, destination NAT half (PREROUTING, OUTPUT).
    NatDst = 3,
    /// The `filter` table.
    Filter = 4,
    /// The `security` table.
    Security = 5,
    /// The `nat` table, source NAT half (POSTROUTING, INPUT).
    NatSrc = 6,
    /// Connection tracking: confirm new flows into the table.
    Confirm = 7,
}

/// Number of stages.
pub const NUM_STAGES: usize = 8;

impl Stage {
    /// All stages, in priority order.
    pub const ALL: [Stage; NUM_STAGES] = [
        Stage::Raw,
        Stage::Conntrack,
        Stage::Mangle,
        Stage::NatDst,
        Stage::Filter,
        Stage::Security,
        Stage::NatSrc,
        Stage::Confirm,
    ];

    /// The stage numbered `n`.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// A short name: the iptables table name, or the conntrack stage.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Raw => "raw",
            Stage::Conntrack => "conntrack",
            Stage::Mangle => "mangle",
            Stage::NatDst => "nat",
            Stage::Filter => "filter",
            Stage::Security => "security",
            Stage::NatSrc => "nat",
            Stage::Confirm => "confirm",
        }
    }

    /// The priority the kernel's own implementation uses (`enum nf_ip_hook_priorities`).
    pub fn priority(self) -> i32 {
        match self {
            Stage::Raw => -300,
            Stage::Conntrack => -200,
            Stage::Mangle => -150,
            Stage::NatDst => -100,
            Stage::Filter => 0,
            Stage::Security => 50,
            Stage::NatSrc => 100,
            Stage::Confirm => i32::MAX,
        }
    }
}

/// One hook registration: a stage at a hook point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookSpec {
    /// Where.
    pub point: HookPoint,
    /// What.
    pub stage: Stage,
}

impl HookSpec {
    /// The priority of this registration.
    pub fn priority(&self) -> i32 {
        self.stage.priority()
    }
}

const fn spec(point: HookPoint, stage: Stage) -> HookSpec {
    HookSpec { point, stage }
}

/// Number of hook registrations per network namespace.
pub const NUM_HOOKS: usize = 21;

/// Every hook registration, ordered by hook point and then priority: the order in which a
/// packet meets them. The index into this table is the hook's "slot" (counters, wire format).
pub const HOOKS: [HookSpec; NUM_HOOKS] = {
    use HookPoint::*;
    use Stage::*;
    [
        spec(PreRouting, Raw),
        spec(PreRouting, Conntrack),
        spec(PreRouting, Mangle),
        spec(PreRouting, NatDst),
        spec(LocalIn, Mangle),
        spec(LocalIn, Filter),
        spec(LocalIn, Security),
        spec(LocalIn, NatSrc),
        spec(LocalIn, Confirm),
        spec(Forward, Mangle),
        spec(Forward, Filter),
        spec(Forward, Security),
        spec(LocalOut, Raw),
        spec(LocalOut, Conntrack),
        spec(LocalOut, Mangle),
        spec(LocalOut, NatDst),
        spec(LocalOut, Filter),
        spec(LocalOut, Security),
        spec(PostRouting, Mangle),
        spec(PostRouting, NatSrc),
        spec(PostRouting, Confirm),
    ]
};

/// The slot of the registration of `stage` at `point`, if rust_nf registers one there.
pub fn slot_of(point: HookPoint, stage: Stage) -> Option<usize> {
    HOOKS.iter().position(|h| h.point == point && h.stage == stage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in HOOKS.windows(2) {
            let a = (pair[0].point, pair[0].priority());
            let b = (pair[1].point, pair[1].priority());
            assert!(a < b, "{:?} before {:?}", pair[0], pair[1]);
        }
    }

    /// The registrations the iptables tables and conntrack use in the kernel.
    #[test]
    fn matches_kernel_tables() {
        use HookPoint::*;
        let at = |stage: Stage| -> usize { HOOKS.iter().filter(|h| h.stage == stage).count() };
        assert_eq!(at(Stage::Raw), 2);
        assert_eq!(at(Stage::Conntrack), 2);
        assert_eq!(at(Stage::Mangle), 5);
        assert_eq!(at(Stage::NatDst), 2);
        assert_eq!(at(Stage::Filter), 3);
        assert_eq!(at(Stage::Security), 3);
        assert_eq!(at(Stage::NatSrc), 2);
        assert_eq!(at(Stage::Confirm), 2);
        assert!(slot_of(Forward, Stage::Filter).is_some());
        assert!(slot_of(Forward, Stage::NatDst).is_none());
        assert!(slot_of(PreRouting, Stage::Filter).is_none());
        assert_eq!(Stage::Confirm.priority(), i32::MAX);
    }

    #[test]
    fn numbering_round_trips() {
        for p in HookPoint::ALL {
            assert_eq!(HookPoint::from_u32(p as u32), Some(p));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::from_u32(s as u32), Some(s));
        }
        assert_eq!(HookPoint::from_u32(5), None);
        assert_eq!(Stage::from_u32(99), None);
    }
}
