// SPDX-License-Identifier: GPL-2.0

//! A namespace's connection tracking settings, named as nf_conntrack's sysctls
//! (`net.netfilter.nf_conntrack_*`), read and written with `rnfctl sysctl`.
//!
//! The values live in atomics: the packet path takes a [`Timeouts`] snapshot per packet, a
//! write is seen by the next packet.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::tcp::TcpState;

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Key {
    /// `nf_conntrack_acct` (always 1: rust_nf always counts).
    Acct,
    /// `nf_conntrack_buckets` (read only: the table's size).
    Buckets,
    /// `nf_conntrack_count` (read only: flows in use).
    Count,
    /// `nf_conntrack_expect_max` (read only).
    ExpectMax,
    /// `nf_conntrack_generic_timeout`.
    Generic,
    /// `nf_conntrack_icmp_timeout`.
    Icmp,
    /// `nf_conntrack_max`.
    Max,
    /// `nf_conntrack_tcp_be_liberal`.
    TcpBeLiberal,
    /// `nf_conntrack_tcp_loose`.
    TcpLoose,
    /// `nf_conntrack_tcp_max_retrans`.
    TcpMaxRetrans,
    /// `nf_conntrack_tcp_timeout_close`.
    TcpClose,
    /// `nf_conntrack_tcp_timeout_close_wait`.
    TcpCloseWait,
    /// `nf_conntrack_tcp_timeout_established`.
    TcpEstablished,
    /// `nf_conntrack_tcp_timeout_fin_wait`.
    TcpFinWait,
    /// `nf_conntrack_tcp_timeout_last_ack`.
    TcpLastAck,
    /// `nf_conntrack_tcp_timeout_max_retrans`.
    TcpRetransTimeout,
    /// `nf_conntrack_tcp_timeout_syn_recv`.
    TcpSynRecv,
    /// `nf_conntrack_tcp_timeout_syn_sent`.
    TcpSynSent,
    /// `nf_conntrack_tcp_timeout_time_wait`.
    TcpTimeWait,
    /// `nf_conntrack_tcp_timeout_unacknowledged`.
    TcpUnack,
    /// `nf_conntrack_udp_timeout`.
    Udp,
    /// `nf_conntrack_udp_timeout_stream`.
    UdpStream,
}

/// Number of settings.
pub const NUM_KEYS: usize = 22;

/// Every setting with its name (as `sysctl -a` sorts them), its default, and whether it can
/// be written.
pub const SYSCTLS: [(Key, &str, u32, bool); NUM_KEYS] = [
    (Key::Acct, "nf_conntrack_acct", 1, false),
    (Key::Buckets, "nf_conntrack_buckets", 0, false),
    (Key::Count, "nf_conntrack_count", 0, false),
    (Key::ExpectMax, "nf_conntrack_expect_max", super::table::MAX_EXPECT as u32, false),
    (Key::Generic, "nf_conntrack_generic_timeout", 600, true),
    (Key::Icmp, "nf_conntrack_icmp_timeout", 30, true),
    (Key::Max, "nf_conntrack_max", 0, true),
    (Key::TcpBeLiberal, "nf_conntrack_tcp_be_liberal", 0, true),
    (Key::TcpLoose, "nf_conntrack_tcp_loose", 1, true),
    (Key::TcpMaxRetrans, "nf_conntrack_tcp_max_retrans", 3, true),
    (Key::TcpClose, "nf_conntrack_tcp_timeout_close", 10, true),
    (Key::TcpCloseWait, "nf_conntrack_tcp_timeout_close_wait", 60, true),
    (Key::TcpEstablished, "nf_conntrack_tcp_timeout_established", 432_000, true),
    (Key::TcpFinWait, "nf_conntrack_tcp_timeout_fin_wait", 120, true),
    (Key::TcpLastAck, "nf_conntrack_tcp_timeout_last_ack", 30, true),
    (Key::TcpRetransTimeout, "nf_conntrack_tcp_timeout_max_retrans", 300, true),
    (Key::TcpSynRecv, "nf_conntrack_tcp_timeout_syn_recv", 60, true),
    (Key::TcpSynSent, "nf_conntrack_tcp_timeout_syn_sent", 120, true),
    (Key::TcpTimeWait, "nf_conntrack_tcp_timeout_time_wait", 120, true),
    (Key::TcpUnack, "nf_conntrack_tcp_timeout_unacknowledged", 300, true),
    (Key::Udp, "nf_conntrack_udp_timeout", 30, true),
    (Key::UdpStream, "nf_conntrack_udp_timeout_stream", 120, true),
];

impl Key {
    /// The setting named `name` (with or without `net.netfilter.`).
    pub fn from_name(name: &str) -> Option<Key> {
        let n = name.strip_prefix("net.netfilter.").unwrap_or(name);
        SYSCTLS.iter().find(|s| s.1 == n).map(|s| s.0)
    }

    /// The setting numbered `n` (its place in [`SYSCTLS`]).
    pub fn from_u32(n: u32) -> Option<Key> {
        SYSCTLS.get(n as usize).map(|s| s.0)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        SYSCTLS[self as usize].1
    }

    /// Whether it can be written.
    pub fn writable(self) -> bool {
        SYSCTLS[self as usize].3
    }
}

/// What the trackers read of the settings, for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Per TCP state (`TcpState as usize`), seconds.
    pub tcp: [u32; 10],
    /// After too many retransmissions.
    pub tcp_retrans: u32,
    /// With data not acknowledged.
    pub tcp_unack: u32,
    /// Retransmissions before [`Timeouts::tcp_retrans`] applies.
    pub tcp_max_retrans: u32,
    /// Pick up flows under way.
    pub tcp_loose: bool,
    /// Accept every segment outside the window.
    pub tcp_be_liberal: bool,
    /// UDP without replies.
    pub udp: u32,
    /// UDP stream.
    pub udp_stream: u32,
    /// ICMP.
    pub icmp: u32,
    /// Other protocols.
    pub generic: u32,
}

/// Builds [`Timeouts`] from a lookup `$g: Key -> u32`.
macro_rules! timeouts {
    ($g:expr) => {{
        let g = $g;
        Timeouts {
            tcp: [
                0,
                g(Key::TcpSynSent),
                g(Key::TcpSynRecv),
                g(Key::TcpEstablished),
                g(Key::TcpFinWait),
                g(Key::TcpCloseWait),
                g(Key::TcpLastAck),
                g(Key::TcpTimeWait),
                g(Key::TcpClose),
                g(Key::TcpSynSent),
            ],
            tcp_retrans: g(Key::TcpRetransTimeout),
            tcp_unack: g(Key::TcpUnack),
            tcp_max_retrans: g(Key::TcpMaxRetrans),
            tcp_loose: g(Key::TcpLoose) != 0,
            tcp_be_liberal: g(Key::TcpBeLiberal) != 0,
            udp: g(Key::Udp),
            udp_stream: g(Key::UdpStream),
            icmp: g(Key::Icmp),
            generic: g(Key::Generic),
        }
    }};
}

const fn default_of(k: Key) -> u32 {
    SYSCTLS[k as usize].2
}

impl Timeouts {
    /// The kernel's defaults.
    pub const DEFAULT: Timeouts = timeouts!(default_of);

    /// The timeout of TCP state `s`.
    pub fn tcp_state(&self, s: TcpState) -> u32 {
        self.tcp.get(s as usize).copied().unwrap_or(0)
    }
}

/// The settings of one namespace.
#[derive(Debug)]
pub struct Settings {
    v: [AtomicU32; NUM_KEYS],
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// The defaults (`nf_conntrack_max` 0: the glue sets it).
    pub const fn new() -> Self {
        let mut v = [const { AtomicU32::new(0) }; NUM_KEYS];
        let mut i = 0;
        while i < NUM_KEYS {
            v[i] = AtomicU32::new(SYSCTLS[i].2);
            i += 1;
        }
        Settings { v }
    }

    /// The value of `k`.
    pub fn get(&self, k: Key) -> u32 {
        self.v.get(k as usize).map_or(0, |a| a.load(Relaxed))
    }

    /// Sets `k` (whether writable or not: the caller checks).
    pub fn set(&self, k: Key, value: u32) {
        if let Some(a) = self.v.get(k as usize) {
            a.store(value, Relaxed);
        }
    }

    /// Takes every value of `other`.
    pub fn copy_from(&self, other: &Settings) {
        for (a, b) in self.v.iter().zip(other.v.iter()) {
            a.store(b.load(Relaxed), Relaxed);
        }
    }

    /// The values the trackers use.
    pub fn timeouts(&self) -> Timeouts {
        timeouts!(|k: Key| self.v[k as usize].load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sorted_numbered_and_defaults() {
        for (i, s) in SYSCTLS.iter().enumerate() {
            assert_eq!(s.0 as usize, i, "{}", s.1);
            if i > 0 {
                assert!(SYSCTLS[i - 1].1 < s.1, "sorted as sysctl -a: {}", s.1);
            }
        }
        assert_eq!(Key::from_name("net.netfilter.nf_conntrack_udp_timeout"), Some(Key::Udp));
        assert_eq!(Key::from_name("nf_conntrack_nope"), None);
        let t = Timeouts::DEFAULT;
        assert_eq!(t.tcp_state(TcpState::Established), 432_000);
        assert_eq!(t.tcp_state(TcpState::SynSent2), 120);
        assert_eq!(t.tcp_state(TcpState::TimeWait), 120);
        assert!(t.tcp_loose && !t.tcp_be_liberal);
        let s = Settings::new();
        s.set(Key::TcpTimeWait, 2);
        assert_eq!(s.timeouts().tcp_state(TcpState::TimeWait), 2);
    }
}
