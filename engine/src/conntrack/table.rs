// SPDX-License-Identifier: GPL-2.0

//! The connection table of one network namespace.
//!
//! Memory: a fixed array of [`Entry`] (the table's maximum, like `nf_conntrack_max`) and a
//! bucket array, both given by the kernel glue when tracking starts in the namespace and
//! freed when the namespace goes away. Nothing is allocated on the packet path: a new flow
//! takes a free entry; when none is free, a flow that is not ASSURED is evicted from the
//! buckets near the new one (`early_drop`), and when there is none the packet is dropped.
//!
//! Lookups take no lock. Every field of an entry is an atomic; each entry has two nodes (its
//! original and reply tuples) in singly linked bucket chains that end in a "nulls" marker
//! naming the bucket (as the kernel's `hlist_nulls`). Writers (new flows, deletions) hold
//! the table lock. An entry may be freed and reused while a reader walks over it; the reader
//! notices because the entry's generation changed ([`Entry::gen`]: odd while free, bumped
//! on every allocation and free) or because its walk ended in another bucket's marker, and
//! starts over. Entries are never returned to the system while the table lives, so a reader
//! never touches freed memory (the kernel's `SLAB_TYPESAFE_BY_RCU` for `nf_conn`).
//!
//! A packet refers to its flow by a [`Handle`] (index and generation), which stays safe to
//! hold across hooks: a flow that was freed in between no longer matches the generation.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};

use super::tcp::{self, TcpConn, TCP_WORDS};
use super::tuple::{Dir, Tuple, Zone};
pub use super::Handle;
use super::status;
use super::super::rule::ctevent;
use super::super::packet::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

/// Chain end marker: the high bit set, the bucket number below.
const NULLS: u32 = 1 << 31;
/// The marker of an entry taken for a new flow and not in a chain yet: no bucket has this
/// number, so a reader that stood on the entry before it was reused starts over.
const DETACHED: u32 = NULLS | 0x7fff_ffff;
/// Largest table: entry indexes and node numbers fit in 31 bits with room for the marker.
pub const MAX_ENTRIES: u32 = 1 << 24;
/// Buckets examined for a flow to evict when the table is full (`NF_CT_EVICTION_RANGE`).
const EVICTION_RANGE: u32 = 8;
/// An unconfirmed entry whose packet has not reached the confirm hook after this long was
/// lost on the way (dropped by something else): the collector frees it.
pub const UNCONFIRMED_SECS: u32 = 2;

/// Serialises the table's writers; provided by the glue (a spinlock that also keeps softirqs
/// out on this CPU), by a mutex in host tests.
pub trait Locks {
    /// Runs `f` holding the table lock.
    fn table<R>(&self, f: impl FnOnce() -> R) -> R;
    /// Runs `f` holding the lock that guards the protocol state of entry `idx`.
    fn entry<R>(&self, idx: u32, f: impl FnOnce() -> R) -> R;
    /// Whether anyone listens to connection events (cheap; checked before building one).
    fn listening(&self) -> bool {
        false
    }
    /// Hands one event over (never allocates, never sleeps; may be called holding the table
    /// lock or no lock).
    fn event(&self, _rec: &super::wire::FlowRecord) {}
    /// The CPU this runs on (for per-CPU statistics).
    fn cpu(&self) -> usize {
        0
    }
    /// A random number (NAT port allocation).
    fn random(&self) -> u32 {
        0
    }
}

/// One flow. All atomics: read without locks, written as the module docs say.
#[derive(Debug, Default)]
pub struct Entry {
    /// Odd while free, even while in use; bumped on every allocation and free.
    gen: AtomicU32,
    /// The next node of each direction's chain (node = index * 2 + direction), or a marker.
    next: [AtomicU32; 2],
    /// While free: the next free entry. Kept apart from `next`, which a reader that stood on
    /// the entry when it was freed still follows along its old chain.
    free_next: AtomicU32,
    /// Each direction's tuple and zone id, packed by [`pack`].
    tuple: [[AtomicU64; 2]; 2],
    /// [`status`] bits.
    status: AtomicU32,
    /// When the flow expires, in the glue's clock (jiffies).
    expires: AtomicU64,
    /// When the entry was allocated.
    born: AtomicU64,
    /// Packets and bytes per direction.
    counters: [[AtomicU64; 2]; 2],
    /// Protocol state (TCP: [`TcpConn::to_words`]).
    proto: [AtomicU64; TCP_WORDS],
    /// The helper that reads this flow ([`HELPER_FTP`]), 0 for none, in the low byte; the
    /// events it reports (`--ctevents`, [`super::super::rule::ctevent`] bits) above.
    helper: AtomicU32,
    /// The connection's mark (CONNMARK).
    mark: AtomicU32,
    /// A helper flow, per direction: the sequence numbers that follow a segment ending in a
    /// newline (two, packed; `seq_aft_nl`), and how many of them are known (2 bits per
    /// direction in `nl_num`). Under the table lock.
    nl_seq: [AtomicU64; 2],
    nl_num: AtomicU32,
    /// MASQUERADE: the interface whose address the flow took (0: none), so the flow goes
    /// when the interface goes down or loses its address.
    nat_if: AtomicU32,
    /// FTP through NAT: the sequence number corrections of each direction
    /// (`nat::seqadj::SeqAdjust::to_words`), valid with `status::SEQ_ADJUST`. Under the
    /// entry's lock.
    seqadj: [AtomicU64; 3],
}

/// One TCP segment of a helper flow, as the helper reads it.
#[derive(Debug, Clone, Copy)]
pub struct HelperSegment<'a> {
    /// Its sequence number.
    pub seq: u32,
    /// Its payload length.
    pub len: u32,
    /// The first bytes of its payload.
    pub payload: &'a [u8],
    /// Its payload's last byte is a newline.
    pub ends_in_nl: bool,
}

/// The FTP helper (`-j CT --helper ftp`).
pub const HELPER_FTP: u8 = 1;

/// Most data connections announced and not started yet, per namespace.
pub const MAX_EXPECT: usize = 32;

/// A data connection a helper announced (`struct nf_conntrack_expect`). Under the table lock.
#[derive(Debug, Default)]
pub struct ExpectSlot {
    used: AtomicU32,
    src: AtomicU32,
    dst: AtomicU32,
    dport: AtomicU32,
    expires: AtomicU64,
    /// The announcing flow's handle (`idx << 32 | gen`).
    master: AtomicU64,
    /// The announcing flow's zone id (original direction): the data connection is looked
    /// for in the same zone.
    zone: AtomicU32,
    /// Through NAT: the port the text announced before it was rewritten (0: no NAT), and the
    /// direction of the segment that announced it, for the data connection's bindings
    /// (`nf_nat_follow_master`).
    saved_port: AtomicU32,
    nat_dir: AtomicU32,
}


/// One flow's data, read from its entry at one moment (for listings and matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Original and reply tuples.
    pub tuple: [Tuple; 2],
    /// [`status`] bits.
    pub status: u16,
    /// Expiry time (glue clock).
    pub expires: u64,
    /// (packets, bytes) per direction.
    pub counters: [(u64, u64); 2],
    /// TCP state (for TCP flows).
    pub tcp: Option<TcpConn>,
    /// The connection's mark.
    pub mark: u32,
    /// The zone id of each direction's tuple.
    pub zone: [u16; 2],
    /// MASQUERADE: the interface whose address the flow took (0: none).
    pub nat_if: u32,
}

/// A tuple and the zone id of its direction, as an entry keeps them and the hash reads them.
fn pack(t: &Tuple, zone: u16) -> [u64; 2] {
    [
        u64::from(t.src) << 32 | u64::from(t.dst),
        u64::from(t.sport) << 48 | u64::from(t.dport) << 32 | u64::from(t.proto) << 24 | u64::from(zone),
    ]
}

/// The event bits of entry field `helper`: the low byte is the helper.
const EVENTS_SHIFT: u32 = 8;

fn unpack(w: [u64; 2]) -> Tuple {
    Tuple {
        src: (w[0] >> 32) as u32,
        dst: w[0] as u32,
        sport: (w[1] >> 48) as u16,
        dport: (w[1] >> 32) as u16,
        proto: (w[1] >> 24) as u8,
    }
}

/// Why a new flow could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every entry holds an ASSURED (or unconfirmed) flow: drop the packet.
    NoRoom,
}

/// Statistics of one CPU, as `conntrack -S` shows them ([`Stats::values`]).
#[derive(Debug, Default)]
pub struct Stats {
    /// Packets whose flow was found (`found`).
    pub found: AtomicU64,
    /// Flows confirmed (`insert`).
    pub insert: AtomicU64,
    /// Lookups that started over because an entry changed under them (`search_restart`).
    pub search_restart: AtomicU64,
    /// First packets of a flow that another CPU's packet had just inserted, the same way,
    /// which joined it (`clash_resolve`).
    pub clash_resolve: AtomicU64,
    /// Flows dropped to make room (`early_drop`).
    pub early_drop: AtomicU64,
    /// Unconfirmed flows dropped by newer ones (their packet never reached the last hook).
    pub unconfirmed_drop: AtomicU64,
    /// Packets dropped because the table was full (`drop`).
    pub drop: AtomicU64,
    /// First packets that lost the race to insert the same flow (`insert_failed`).
    pub insert_failed: AtomicU64,
    /// Packets found INVALID (`invalid`).
    pub invalid: AtomicU64,
}

/// The names of [`Stats::values`], in `conntrack -S`'s order.
pub const STAT_NAMES: [&str; 10] = [
    "found",
    "invalid",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "error",
    "search_restart",
    "clash_resolve",
    "chaintoolong",
];

impl Stats {
    /// The counters in [`STAT_NAMES`]' order (rust_nf has no `error`, `clash_resolve`,
    /// `chaintoolong` events: always 0).
    pub fn values(&self) -> [u64; 10] {
        let l = |a: &AtomicU64| a.load(Relaxed);
        [
            l(&self.found),
            l(&self.invalid),
            l(&self.insert),
            l(&self.insert_failed),
            l(&self.drop),
            l(&self.early_drop),
            0,
            l(&self.search_restart),
            l(&self.clash_resolve),
            0,
        ]
    }
}

/// The table's shared state besides the arrays: free list, count, statistics.
#[derive(Debug, Default)]
pub struct Shared {
    /// Head of the free list (entry index), or [`NULLS`] when empty. Under the table lock.
    free: AtomicU32,
    /// Entries in use (unconfirmed included).
    pub count: AtomicU32,
    /// Where the collector goes on next.
    gc_pos: AtomicU32,
    /// Statistics, when the glue gives no per-CPU ones ([`Table::stats`] empty).
    pub stats: Stats,
    /// Announced data connections.
    expects: [ExpectSlot; MAX_EXPECT],
    /// Expectations in use (a fast check before taking the lock).
    expect_count: AtomicU32,
    /// Where the next unconfirmed flow goes in [`Table::pending`].
    pending_pos: AtomicU32,
    /// The namespace's settings (timeouts, `nf_conntrack_max`, ...).
    pub settings: super::settings::Settings,
    /// Flows MASQUERADE ever bound to an interface (an interface going down has nothing to
    /// look for while this is 0).
    masq_flows: AtomicU32,
}

/// A view of one namespace's table: the memory and locks the glue owns.
pub struct Table<'a, L: Locks> {
    /// The entries (the maximum number of flows).
    pub entries: &'a [Entry],
    /// Chain heads.
    pub buckets: &'a [AtomicU32],
    /// Free list, count, statistics.
    pub shared: &'a Shared,
    /// The hash key, random per boot.
    pub key: [u64; 2],
    /// The writers' lock and the per-entry locks.
    pub locks: &'a L,
    /// Clock ticks per second.
    pub hz: u64,
    /// The newest unconfirmed flows, a ring (`idx << 32 | gen`, 0 when empty): a new one
    /// takes the place of the oldest, which goes if it is still unconfirmed. So flows whose
    /// first packet was dropped by someone else between the two stages (rust_nf cannot see
    /// it: the kernel's unconfirmed conntrack goes with its skb) never hold more than this
    /// many entries, whatever a remote sender does.
    pub pending: &'a [AtomicU64],
    /// Per-CPU statistics (indexed by [`Locks::cpu`]); empty: [`Shared::stats`].
    pub stats: &'a [Stats],
}

/// Slots of the unconfirmed ring for a table of `max` flows.
pub fn pending_slots(max: usize) -> usize {
    (max / 4).clamp(16, 4096)
}

/// Sets up fresh arrays: every entry free and on the free list, every chain empty. Called
/// once, before the table is shared.
pub fn init(entries: &[Entry], buckets: &[AtomicU32], shared: &Shared) {
    for (i, b) in buckets.iter().enumerate() {
        b.store(NULLS | i as u32, Relaxed);
    }
    let n = entries.len().min(MAX_ENTRIES as usize);
    for (i, e) in entries.iter().enumerate().take(n) {
        e.gen.store(1, Relaxed);
        let next = if i + 1 < n { i as u32 + 1 } else { NULLS };
        e.free_next.store(next, Relaxed);
    }
    shared.free.store(if n > 0 { 0 } else { NULLS }, Relaxed);
    shared.count.store(0, Relaxed);
    shared.gc_pos.store(0, Relaxed);
}

impl<'a, L: Locks> Table<'a, L> {
    /// This CPU's statistics.
    pub fn stat(&self) -> &'a Stats {
        let n = self.stats.len();
        if n == 0 {
            return &self.shared.stats;
        }
        self.stats.get(self.locks.cpu() % n).unwrap_or(&self.shared.stats)
    }

    /// The bucket of a [`pack`]ed tuple.
    fn bucket_of(&self, w: &[u64; 2]) -> u32 {
        let n = self.buckets.len().max(1) as u64;
        ((u64::from(super::tuple::hash_words(&self.key, w)) * n) >> 32) as u32
    }

    fn entry(&self, idx: u32) -> Option<&'a Entry> {
        self.entries.get(idx as usize)
    }

    /// True when `e`'s tuple of direction `d` is `want` ([`pack`]ed).
    fn tuple_is(e: &Entry, d: usize, want: &[u64; 2]) -> bool {
        let Some(t) = e.tuple.get(d) else { return false };
        t[0].load(Relaxed) == want[0] && t[1].load(Relaxed) == want[1]
    }

    /// Finds the confirmed, unexpired flow of the default zone one of whose tuples is `t`:
    /// its handle and the direction `t` goes in. No lock.
    pub fn lookup(&self, t: &Tuple, now: u64) -> Option<(Handle, Dir)> {
        self.lookup_in(t, Zone::DEFAULT, now)
    }

    /// Finds the confirmed, unexpired flow one of whose tuples is `t` in zone `zone`
    /// (`resolve_normal_ct`: the tuple hashed with the zone's original-direction id, then,
    /// if that differs, with its reply-direction id; a node of direction `d` matches when its
    /// flow's zone id in `d` is `zone`'s).
    pub fn lookup_in(&self, t: &Tuple, zone: Zone, now: u64) -> Option<(Handle, Dir)> {
        let want = [pack(t, zone.id(Dir::Original)), pack(t, zone.id(Dir::Reply))];
        self.walk_bucket(&want[0], &want, now).or_else(|| {
            if want[1] == want[0] {
                None
            } else {
                self.walk_bucket(&want[1], &want, now)
            }
        })
    }

    /// Walks the bucket of `at` for a confirmed, unexpired node of direction `d` whose packed
    /// tuple is `want[d]`.
    fn walk_bucket(&self, at: &[u64; 2], want: &[[u64; 2]; 2], now: u64) -> Option<(Handle, Dir)> {
        let b = self.bucket_of(at);
        let head = self.buckets.get(b as usize)?;
        // A walk can be sent astray by concurrent reuse; it then starts over. Bounded, so a
        // table that writers keep changing can only make a lookup miss, never spin.
        'walk: for attempt in 0..64 {
            if attempt > 0 {
                self.stat().search_restart.fetch_add(1, Relaxed);
            }
            let mut node = head.load(Acquire);
            let mut steps = 0usize;
            while node & NULLS == 0 {
                steps += 1;
                if steps > self.entries.len().saturating_mul(2) {
                    continue 'walk;
                }
                let (idx, d) = (node >> 1, (node & 1) as usize);
                let Some(e) = self.entry(idx) else { continue 'walk };
                let g1 = e.gen.load(Acquire);
                if g1 & 1 == 0 && want.get(d).is_some_and(|w| Self::tuple_is(e, d, w)) {
                    let st = e.status.load(Relaxed);
                    let exp = e.expires.load(Relaxed);
                    fence(Acquire);
                    if e.gen.load(Relaxed) == g1
                        && st & u32::from(status::CONFIRMED) != 0
                        && !expired(exp, now)
                    {
                        let dir = if d == 0 { Dir::Original } else { Dir::Reply };
                        return Some((Handle { idx, gen: g1 }, dir));
                    }
                }
                node = e.next.get(d)?.load(Acquire);
            }
            if node == (NULLS | b) {
                return None;
            }
        }
        None
    }

    /// The entry of `h` if it still holds the same flow.
    pub fn get(&self, h: Handle) -> Option<&'a Entry> {
        let e = self.entry(h.idx)?;
        (e.gen.load(Acquire) == h.gen).then_some(e)
    }

    /// Reads a flow (for listings and the rules); `None` when it is gone.
    pub fn snapshot(&self, h: Handle) -> Option<Snapshot> {
        let e = self.get(h)?;
        let w = [
            [e.tuple[0][0].load(Relaxed), e.tuple[0][1].load(Relaxed)],
            [e.tuple[1][0].load(Relaxed), e.tuple[1][1].load(Relaxed)],
        ];
        let tuple = [unpack(w[0]), unpack(w[1])];
        let tcp = (tuple[0].proto == IPPROTO_TCP).then(|| TcpConn::from_words(&words(e)));
        let c = |d: usize, k: usize| e.counters[d][k].load(Relaxed);
        let s = Snapshot {
            tuple,
            status: e.status.load(Relaxed) as u16,
            expires: e.expires.load(Relaxed),
            counters: [(c(0, 0), c(0, 1)), (c(1, 0), c(1, 1))],
            tcp,
            mark: e.mark.load(Relaxed),
            zone: [w[0][1] as u16, w[1][1] as u16],
            nat_if: e.nat_if.load(Relaxed),
        };
        fence(Acquire);
        (e.gen.load(Relaxed) == h.gen).then_some(s)
    }

    /// Takes a free entry for a new flow with tuples `orig` and `reply` in zone `zone` (not
    /// yet in the chains: [`Table::confirm`] puts it there). When none is free, evicts a flow
    /// that is not ASSURED from the buckets of `orig` and the next ones.
    pub fn alloc(&self, orig: &Tuple, reply: &Tuple, zone: Zone, now: u64, expires_in: u32) -> Result<Handle, Full> {
        let packed = [pack(orig, zone.id(Dir::Original)), pack(reply, zone.id(Dir::Reply))];
        let max = self.shared.settings.get(super::settings::Key::Max);
        let room = max == 0 || self.shared.count.load(Relaxed) < max;
        let idx = self.locks.table(|| {
            let head = self.shared.free.load(Relaxed);
            let idx = match self.entry(head).filter(|_| head & NULLS == 0 && room) {
                Some(e) => {
                    self.shared.free.store(e.free_next.load(Relaxed), Relaxed);
                    Some(head)
                }
                None => self.evict_locked(self.bucket_of(&packed[0]), now),
            };
            if let Some(i) = idx {
                self.pend_locked(i);
            }
            idx
        });
        let Some(idx) = idx else {
            self.stat().drop.fetch_add(1, Relaxed);
            return Err(Full::NoRoom);
        };
        let Some(e) = self.entry(idx) else { return Err(Full::NoRoom) };
        self.shared.count.fetch_add(1, Relaxed);
        let gen = self.locks.entry(idx, || {
            // The stores below come after the odd generation that freed the entry (smp_wmb, as
            // write_seqcount_begin): a lock-free reader that sees one of them and then
            // re-reads the generation sees that the entry changed.
            fence(Release);
            for (d, w) in packed.iter().enumerate() {
                e.tuple[d][0].store(w[0], Relaxed);
                e.tuple[d][1].store(w[1], Relaxed);
                e.next[d].store(DETACHED, Relaxed);
                e.counters[d][0].store(0, Relaxed);
                e.counters[d][1].store(0, Relaxed);
            }
            for w in &e.proto {
                w.store(0, Relaxed);
            }
            e.status.store(0, Relaxed);
            e.helper.store(0, Relaxed);
            e.mark.store(0, Relaxed);
            e.nl_seq[0].store(0, Relaxed);
            e.nl_seq[1].store(0, Relaxed);
            e.nl_num.store(0, Relaxed);
            e.nat_if.store(0, Relaxed);
            for w in &e.seqadj {
                w.store(0, Relaxed);
            }
            e.born.store(now, Relaxed);
            e.expires.store(now.wrapping_add(u64::from(expires_in).saturating_mul(self.hz)), Relaxed);
            // Even: in use. Release: the fields above are visible to whoever sees this.
            let gen = e.gen.load(Relaxed).wrapping_add(1);
            e.gen.store(gen, Release);
            gen
        });
        Ok(Handle { idx, gen })
    }

    /// Under the table lock: records the new unconfirmed flow of entry `idx` (taken, odd: its
    /// generation will be one more) in the ring, freeing the unconfirmed flow it replaces.
    fn pend_locked(&self, idx: u32) {
        let n = self.pending.len() as u32;
        let pos = self.shared.pending_pos.load(Relaxed);
        let Some(slot) = pos.checked_rem(n).and_then(|p| self.pending.get(p as usize)) else { return };
        self.shared.pending_pos.store(pos.wrapping_add(1), Relaxed);
        let old = slot.load(Relaxed);
        if old != 0 {
            let h = Handle { idx: (old >> 32) as u32, gen: old as u32 };
            let unconfirmed = self.entry(h.idx).is_some_and(|e| {
                e.gen.load(Relaxed) == h.gen && e.status.load(Relaxed) & u32::from(status::CONFIRMED) == 0
            });
            if h.idx != idx && unconfirmed && self.free_locked(h) {
                self.stat().unconfirmed_drop.fetch_add(1, Relaxed);
            }
        }
        let gen = self.entry(idx).map_or(0, |e| e.gen.load(Relaxed).wrapping_add(1));
        slot.store(u64::from(idx) << 32 | u64::from(gen), Relaxed);
    }

    /// Under the table lock: unlinks and frees a confirmed flow that is not ASSURED from
    /// [`EVICTION_RANGE`] buckets starting at `b` (expired ones first of all), and returns its
    /// entry, now taken.
    fn evict_locked(&self, b: u32, now: u64) -> Option<u32> {
        let n = self.buckets.len() as u32;
        for i in 0..EVICTION_RANGE.min(n) {
            let bucket = (b + i) % n;
            let mut node = self.buckets.get(bucket as usize)?.load(Relaxed);
            let mut steps = 0usize;
            while node & NULLS == 0 && steps <= self.entries.len().saturating_mul(2) {
                steps += 1;
                let (idx, d) = (node >> 1, (node & 1) as usize);
                let e = self.entry(idx)?;
                let st = e.status.load(Relaxed) as u16;
                if st & status::ASSURED == 0 || expired(e.expires.load(Relaxed), now) {
                    let gen = e.gen.load(Relaxed);
                    self.emit(super::wire::EV_DESTROY, ctevent::DESTROY, Handle { idx, gen }, now);
                    self.unlink_locked(idx);
                    // Odd under the entry's lock: no packet is writing into it now, and none
                    // will (see `update`).
                    self.locks.entry(idx, || e.gen.store(e.gen.load(Relaxed).wrapping_add(1), Release));
                    self.shared.count.fetch_sub(1, Relaxed);
                    self.stat().early_drop.fetch_add(1, Relaxed);
                    // Odd, then taken again by the caller.
                    return Some(idx);
                }
                node = e.next.get(d)?.load(Relaxed);
            }
        }
        None
    }

    /// Under the table lock: removes both nodes of entry `idx` from their chains.
    fn unlink_locked(&self, idx: u32) {
        let Some(e) = self.entry(idx) else { return };
        for d in 0..2usize {
            let node = idx << 1 | d as u32;
            let w = [e.tuple[d][0].load(Relaxed), e.tuple[d][1].load(Relaxed)];
            let b = self.bucket_of(&w);
            let Some(head) = self.buckets.get(b as usize) else { continue };
            let after = e.next[d].load(Relaxed);
            if head.load(Relaxed) == node {
                head.store(after, Release);
                continue;
            }
            let mut cur = head.load(Relaxed);
            let mut steps = 0usize;
            while cur & NULLS == 0 && steps <= self.entries.len().saturating_mul(2) {
                steps += 1;
                let Some(p) = self.entry(cur >> 1) else { break };
                let Some(link) = p.next.get((cur & 1) as usize) else { break };
                let next = link.load(Relaxed);
                if next == node {
                    link.store(after, Release);
                    break;
                }
                cur = next;
            }
        }
    }

    /// Frees an entry that is not (or no longer) in the chains, if `h` still names it.
    fn free_locked(&self, h: Handle) -> bool {
        self.free_locked_at(h, None)
    }

    /// [`Table::free_locked`]; `now` when known, for the time left that the DESTROY event of a
    /// flow deleted before its time shows (as ctnetlink's, which skips a zero timeout).
    fn free_locked_at(&self, h: Handle, now: Option<u64>) -> bool {
        let Some(e) = self.entry(h.idx) else { return false };
        if e.gen.load(Relaxed) != h.gen {
            return false;
        }
        if e.status.load(Relaxed) & u32::from(status::CONFIRMED) != 0 {
            let at = now.unwrap_or_else(|| e.expires.load(Relaxed));
            self.emit(super::wire::EV_DESTROY, ctevent::DESTROY, h, at);
            self.unlink_locked(h.idx);
        }
        self.locks.entry(h.idx, || e.gen.store(h.gen.wrapping_add(1), Release));
        e.free_next.store(self.shared.free.load(Relaxed), Relaxed);
        self.shared.free.store(h.idx, Relaxed);
        self.shared.count.fetch_sub(1, Relaxed);
        true
    }

    /// The flow of `h` as a dump or an event shows it.
    pub fn record(&self, h: Handle, now: u64) -> Option<super::wire::FlowRecord> {
        let s = self.snapshot(h)?;
        let left = s.expires.wrapping_sub(now) as i64;
        Some(super::wire::FlowRecord {
            orig: s.tuple[0],
            reply: s.tuple[1],
            status: s.status,
            timeout: if left > 0 { (left as u64 / self.hz.max(1)) as u32 } else { 0 },
            tcp_state: s.tcp.map(|c| c.state as u8),
            counters: s.counters,
            id: h.idx,
            mark: s.mark,
            event: 0,
            zone: s.zone,
            helper: self.helper(h),
        })
    }

    /// Reports event `kind` about flow `h` if anyone listens and the flow reports one of the
    /// events `bits` ([`ctevent`] bits; `-j CT --ctevents` chose them).
    fn emit(&self, kind: u8, bits: u16, h: Handle, now: u64) {
        if !self.locks.listening() {
            return;
        }
        let mask = self.get(h).map_or(0, |e| (e.helper.load(Relaxed) >> EVENTS_SHIFT) as u16);
        if mask & bits == 0 {
            return;
        }
        if let Some(rec) = self.record(h, now) {
            self.locks.event(&super::wire::FlowRecord { event: kind, ..rec });
        }
    }

    /// The confirmed flow in entry `idx` whose original tuple is `orig` (`conntrack -D`: the
    /// dump's id and tuple name it, so a flow that took the entry since is not touched).
    pub fn find_by_id(&self, idx: u32, orig: &Tuple) -> Option<Handle> {
        let e = self.entry(idx)?;
        let gen = e.gen.load(Acquire);
        let h = Handle { idx, gen };
        let s = self.snapshot(h)?;
        (gen & 1 == 0 && s.status & status::CONFIRMED != 0 && s.tuple[0] == *orig).then_some(h)
    }

    /// Deletes a flow (expired, reset, or an unconfirmed one whose packet was dropped).
    pub fn delete(&self, h: Handle) -> bool {
        self.locks.table(|| self.free_locked(h))
    }

    /// Deletes a flow before its time (`conntrack -D`, `-F`) at `now`.
    pub fn delete_at(&self, h: Handle, now: u64) -> bool {
        self.locks.table(|| self.free_locked_at(h, Some(now)))
    }

    /// Puts a new flow into the table when its first packet leaves the last hook. `Err` when
    /// the same flow was confirmed meanwhile by another CPU's packet (the entry is freed;
    /// the caller drops the packet, as `__nf_conntrack_confirm` does for a clash it cannot
    /// resolve) or when `h` is gone.
    ///
    /// A UDP flow that another CPU's packet inserted meanwhile with the same tuples and the
    /// same translation takes the packet in (`clash_resolve`): `Ok`, with this entry freed.
    pub fn confirm(&self, h: Handle, now: u64) -> Result<(), ()> {
        let Some(e) = self.get(h) else { return Err(()) };
        let t = [
            [e.tuple[0][0].load(Relaxed), e.tuple[0][1].load(Relaxed)],
            [e.tuple[1][0].load(Relaxed), e.tuple[1][1].load(Relaxed)],
        ];
        let inserted = self.locks.table(|| {
            if e.gen.load(Relaxed) != h.gen {
                return Err(());
            }
            if e.status.load(Relaxed) & u32::from(status::CONFIRMED) != 0 {
                return Ok(false);
            }
            if let Some((other, _)) = t.iter().find_map(|w| self.walk_bucket(w, &[*w, *w], now)) {
                // Two first packets of one UDP flow (a resolver's A and AAAA queries on two
                // CPUs): when the flow in the table is this one exactly, translated the same
                // way, the packet joins it (`nf_ct_resolve_clash`); otherwise it is dropped.
                let same = unpack(t[0]).proto == IPPROTO_UDP
                    && self.entry(other.idx).is_some_and(|o| {
                        let ot = [
                            [o.tuple[0][0].load(Relaxed), o.tuple[0][1].load(Relaxed)],
                            [o.tuple[1][0].load(Relaxed), o.tuple[1][1].load(Relaxed)],
                        ];
                        let nat = u32::from(status::NAT_MASK);
                        ot == t && (o.status.load(Relaxed) ^ e.status.load(Relaxed)) & nat == 0
                    });
                self.free_locked(h);
                if same {
                    self.stat().clash_resolve.fetch_add(1, Relaxed);
                    return Ok(false);
                }
                self.stat().insert_failed.fetch_add(1, Relaxed);
                return Err(());
            }
            e.status.fetch_or(u32::from(status::CONFIRMED), Relaxed);
            for (d, w) in t.iter().enumerate() {
                let b = self.bucket_of(w);
                let Some(head) = self.buckets.get(b as usize) else { continue };
                e.next[d].store(head.load(Relaxed), Relaxed);
                head.store(h.idx << 1 | d as u32, Release);
            }
            Ok(true)
        })?;
        if !inserted {
            return Ok(());
        }
        self.stat().insert.fetch_add(1, Relaxed);
        let expected = e.status.load(Relaxed) & u32::from(status::EXPECTED) != 0;
        self.emit(super::wire::EV_NEW, if expected { ctevent::RELATED } else { ctevent::NEW }, h, now);
        Ok(())
    }

    /// One step of the garbage collector: looks at up to `budget` entries from where the last
    /// step stopped, frees expired flows and unconfirmed ones older than
    /// [`UNCONFIRMED_SECS`]. Returns how many it freed.
    pub fn gc_step(&self, now: u64, budget: u32) -> u32 {
        let n = self.entries.len() as u32;
        if n == 0 {
            return 0;
        }
        let mut pos = self.shared.gc_pos.load(Relaxed) % n;
        let mut freed = 0;
        for _ in 0..budget.min(n) {
            if let Some(e) = self.entry(pos) {
                let gen = e.gen.load(Acquire);
                if gen & 1 == 0 && self.reclaimable(e, now) {
                    let h = Handle { idx: pos, gen };
                    let done = self.locks.table(|| self.reclaimable(e, now) && self.free_locked(h));
                    freed += u32::from(done);
                }
            }
            pos = (pos + 1) % n;
        }
        self.shared.gc_pos.store(pos, Relaxed);
        freed
    }

    fn reclaimable(&self, e: &Entry, now: u64) -> bool {
        let confirmed = e.status.load(Relaxed) & u32::from(status::CONFIRMED) != 0;
        if confirmed {
            expired(e.expires.load(Relaxed), now)
        } else {
            let limit = e.born.load(Relaxed).wrapping_add(u64::from(UNCONFIRMED_SECS) * self.hz);
            expired(limit, now)
        }
    }

    /// Handles of the live, confirmed flows from entry `from` on, at most `out.len()`; returns
    /// how many were written and where to go on (`None`: done). For dumps.
    pub fn walk(&self, from: u32, now: u64, out: &mut [Handle]) -> (usize, Option<u32>) {
        let mut n = 0;
        let mut i = from;
        while (i as usize) < self.entries.len() {
            if n == out.len() {
                return (n, Some(i));
            }
            if let Some(e) = self.entry(i) {
                let gen = e.gen.load(Acquire);
                let st = e.status.load(Relaxed);
                if gen & 1 == 0
                    && st & u32::from(status::CONFIRMED) != 0
                    && !expired(e.expires.load(Relaxed), now)
                {
                    if let Some(slot) = out.get_mut(n) {
                        *slot = Handle { idx: i, gen };
                        n += 1;
                    }
                }
            }
            i += 1;
        }
        (n, None)
    }

    /// Frees every flow (`conntrack -F`) at `now`; returns how many.
    pub fn flush(&self, now: u64) -> u32 {
        let mut freed = 0;
        for (i, e) in self.entries.iter().enumerate() {
            let gen = e.gen.load(Acquire);
            if gen & 1 == 0 && e.status.load(Relaxed) & u32::from(status::CONFIRMED) != 0 {
                freed += u32::from(self.delete_at(Handle { idx: i as u32, gen }, now));
            }
        }
        freed
    }
}

fn words(e: &Entry) -> [u64; TCP_WORDS] {
    core::array::from_fn(|i| e.proto.get(i).map_or(0, |w| w.load(Relaxed)))
}

/// True when `at` has passed at `now` (clock values compared as the kernel's `time_after`).
pub fn expired(at: u64, now: u64) -> bool {
    (now.wrapping_sub(at) as i64) >= 0
}

/// What the conntrack stage decided for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The packet belongs to flow `h`, in direction `dir`; `state` is its [`super::ctstate`]
    /// bit (NEW, ESTABLISHED, RELATED); `new` when the flow was made for this packet (still
    /// unconfirmed).
    Flow {
        /// The flow.
        h: Handle,
        /// The packet's direction.
        dir: Dir,
        /// NEW, ESTABLISHED or RELATED.
        state: u16,
        /// Made for this packet, unconfirmed.
        new: bool,
    },
    /// No flow: INVALID (a packet that fits no state, or a header that cannot be read).
    Invalid,
    /// The table is full and nothing could be evicted: drop the packet.
    Drop,
}

/// The packet as the conntrack stage reads it.
#[derive(Debug, Clone, Copy)]
pub struct PacketCt<'p> {
    /// What [`super::tuple::parse`] found.
    pub parsed: super::tuple::Parsed<'p>,
    /// The helper `-j CT --helper` gave this packet, for a flow it starts.
    pub helper: u8,
    /// The zone `-j CT --zone` put the packet in (the default zone otherwise).
    pub zone: Zone,
    /// The events a flow it starts reports (`-j CT --ctevents`; all by default).
    pub ctevents: u16,
    /// For an ICMP error this host makes: the flow the packet that caused it was starting
    /// on this CPU, still unconfirmed (the kernel attaches that packet's conntrack to the
    /// error, `nf_ct_attach`, since lookups do not see unconfirmed flows).
    pub cause: Option<Handle>,
    /// The packet's length, for the flow's byte counters (`skb->len`).
    pub len: u32,
    /// The transport segment's real length (IP length minus header), for TCP tracking.
    pub l4_len: u32,
}

impl<'a, L: Locks> Table<'a, L> {
    /// The conntrack stage (`nf_conntrack_in`) for one packet.
    pub fn track(&self, p: &PacketCt<'_>, now: u64) -> Track {
        let (tuple, l4) = match p.parsed {
            super::tuple::Parsed::Invalid => return self.invalid(),
            super::tuple::Parsed::IcmpError { inner, outer_dst } => {
                // RELATED to the flow the quoted packet belongs to: it was sent along that
                // flow, so the error goes the other way (`icmp_error_message`), and only to
                // the quoted packet's sender (`nf_conntrack_inet_error`: "outer daddr !=
                // inner"), or anyone who knows a flow could send errors to any host.
                // Not counted in the flow's counters, as the kernel's `icmp_error`.
                if outer_dst != inner.src {
                    return self.invalid();
                }
                // The quoted packet's tuple inverted is the error's own direction's tuple (as
                // `nf_conntrack_inet_error` looks it up): with NAT, the quoted packet is as
                // it left the translation, so only this finds the flow.
                let Some(want) = inner.invert() else { return self.invalid() };
                let cause = p.cause.and_then(|h| {
                    let s = self.snapshot(h)?;
                    let d = s.tuple.iter().position(|t| *t == want)?;
                    let dir = if d == 0 { Dir::Original } else { Dir::Reply };
                    (s.zone.get(d) == Some(&p.zone.id(dir))).then_some((h, dir))
                });
                let Some((h, d)) = self.lookup_in(&want, p.zone, now).or(cause) else { return self.invalid() };
                return Track::Flow { h, dir: d, state: super::super::rule::ctstate::RELATED, new: false };
            }
            super::tuple::Parsed::Flow { tuple, l4 } => (tuple, l4),
        };
        for _ in 0..2 {
            if let Some((h, dir)) = self.lookup_in(&tuple, p.zone, now) {
                self.stat().found.fetch_add(1, Relaxed);
                match self.update(h, dir, &tuple, l4, p, now) {
                    Update::Ok(state, changed) => {
                        if changed != 0 {
                            self.emit(super::wire::EV_UPDATE, changed, h, now);
                        }
                        return Track::Flow { h, dir, state, new: false };
                    }
                    Update::Invalid => return self.invalid(),
                    // A SYN reopening a closed TCP flow: the old one goes, a new one starts.
                    Update::Restart => {
                        self.delete(h);
                        continue;
                    }
                }
            }
            return self.new_flow(&tuple, l4, p, now);
        }
        self.invalid()
    }

    fn invalid(&self) -> Track {
        self.stat().invalid.fetch_add(1, Relaxed);
        Track::Invalid
    }

    fn count(&self, e: &Entry, dir: Dir, len: u32) {
        if let Some(c) = e.counters.get(dir.index()) {
            c[0].fetch_add(1, Relaxed);
            c[1].fetch_add(u64::from(len), Relaxed);
        }
    }

    fn set_timeout(&self, e: &Entry, now: u64, secs: u32) {
        e.expires.store(now.wrapping_add(u64::from(secs).saturating_mul(self.hz)), Relaxed);
    }

    /// A packet of a known flow.
    fn update(&self, h: Handle, dir: Dir, t: &Tuple, l4: &[u8], p: &PacketCt<'_>, now: u64) -> Update {
        let Some(e) = self.get(h) else { return Update::Invalid };
        let to = self.shared.settings.timeouts();
        // What FTP through NAT changed in the other direction's sequence numbers.
        let ack_adj = if t.proto == IPPROTO_TCP {
            self.seqadj(h).and_then(|a| a.seq.get(dir.other().index()).copied())
        } else {
            None
        };
        let seg = tcp::Segment { tcp: l4, len: p.l4_len, ack_adj };
        if t.proto == IPPROTO_TCP && !tcp::valid_header(&seg) {
            return Update::Invalid;
        }
        // Every write under the entry's lock, with its generation checked there: the entry
        // cannot be freed and taken for another flow meanwhile (freeing and allocating change
        // the generation under the same lock), so a late packet never writes into a new flow.
        self.locks.entry(h.idx, || {
            if e.gen.load(Relaxed) != h.gen {
                return Update::Invalid;
            }
            let st = e.status.load(Relaxed) as u16;
            let seen_reply = st & status::SEEN_REPLY != 0;
            // `resolve_normal_ct`: replies and flows that have seen one are ESTABLISHED; the
            // original direction of a flow a helper announced is RELATED; the rest NEW.
            let state = if dir == Dir::Reply || seen_reply {
                super::super::rule::ctstate::ESTABLISHED
            } else if st & status::EXPECTED != 0 {
                super::super::rule::ctstate::RELATED
            } else {
                super::super::rule::ctstate::NEW
            };
            // A TCP state change is an UPDATE event (so is a status change, below).
            let mut tcp_changed = false;
            match t.proto {
                IPPROTO_TCP => {
                    let mut conn = TcpConn::from_words(&words(e));
                    let old_tcp = conn.state;
                    let r = tcp::packet_with(&mut conn, dir, &seg, seen_reply, st & status::ASSURED != 0, &to);
                    // (The kernel caches IPCT_PROTOINFO before it judges the segment.)
                    for (w, v) in e.proto.iter().zip(conn.to_words()) {
                        w.store(v, Relaxed);
                    }
                    tcp_changed = conn.state != old_tcp;
                    match r {
                        tcp::Outcome::Invalid { lower_timeout } => {
                            let cut = now.wrapping_add(u64::from(to.tcp_unack).saturating_mul(self.hz));
                            let left = e.expires.load(Relaxed).wrapping_sub(now);
                            if lower_timeout && left >= 120 * self.hz && expired(cut, e.expires.load(Relaxed)) {
                                e.expires.store(cut, Relaxed);
                            }
                            return Update::Invalid;
                        }
                        tcp::Outcome::Restart => return Update::Restart,
                        // Accepted without refreshing the flow (the kernel returns early).
                        tcp::Outcome::Ignore => {}
                        // An RST before any reply: the flow ends with this packet.
                        tcp::Outcome::AcceptKill => e.expires.store(now, Relaxed),
                        tcp::Outcome::Accept { timeout_secs, assured } => {
                            self.set_timeout(e, now, timeout_secs);
                            if assured {
                                e.status.fetch_or(u32::from(status::ASSURED), Relaxed);
                            }
                        }
                    }
                }
                IPPROTO_UDP => {
                    // nf_conntrack_udp_packet: a flow that has seen a reply and is still
                    // active two seconds after its first packet becomes a stream: the longer
                    // timeout, and ASSURED.
                    let stream_ts = e.proto.first().map_or(now, |w| w.load(Relaxed));
                    if seen_reply && expired(stream_ts, now) && stream_ts != now {
                        self.set_timeout(e, now, to.udp_stream);
                        e.status.fetch_or(u32::from(status::ASSURED), Relaxed);
                    } else {
                        self.set_timeout(e, now, to.udp);
                    }
                }
                IPPROTO_ICMP => self.set_timeout(e, now, to.icmp),
                _ => self.set_timeout(e, now, to.generic),
            }
            if dir == Dir::Reply && !seen_reply {
                e.status.fetch_or(u32::from(status::SEEN_REPLY), Relaxed);
            }
            self.count(e, dir, p.len);
            // The events of this packet: a TCP state change (IPCT_PROTOINFO), a first reply
            // (IPCT_REPLY), ASSURED (IPCT_ASSURED).
            let now_st = e.status.load(Relaxed) as u16;
            let mut changed = if tcp_changed { ctevent::PROTOINFO } else { 0 };
            if (now_st ^ st) & status::SEEN_REPLY != 0 {
                changed |= ctevent::REPLY;
            }
            if (now_st ^ st) & status::ASSURED != 0 {
                changed |= ctevent::ASSURED;
            }
            Update::Ok(state, changed)
        })
    }

    /// The first packet of a flow (`init_conntrack`).
    fn new_flow(&self, t: &Tuple, l4: &[u8], p: &PacketCt<'_>, now: u64) -> Track {
        let mut tcp_conn = None;
        let to = self.shared.settings.timeouts();
        let secs = match t.proto {
            IPPROTO_TCP => {
                let seg = tcp::Segment { tcp: l4, len: p.l4_len, ack_adj: None };
                if !tcp::valid_header(&seg) {
                    return self.invalid();
                }
                let Some(c) = tcp::new_conn_with(&seg, &to) else { return self.invalid() };
                tcp_conn = Some(c);
                // The first packet runs through the tracker as the kernel does after
                // tcp_new (which only sets up the flow).
                to.tcp_state(c.state)
            }
            IPPROTO_UDP => to.udp,
            IPPROTO_ICMP => {
                // Only queries start ICMP flows (`icmp_new`); a stray reply is INVALID.
                if !super::tuple::icmp::starts_flow((t.dport >> 8) as u8) {
                    return self.invalid();
                }
                to.icmp
            }
            _ => to.generic,
        };
        // The first segment runs through the tracker before the flow exists (nothing to undo
        // if it is refused).
        let mut timeout = secs;
        if let Some(c) = tcp_conn.as_mut() {
            let seg = tcp::Segment { tcp: l4, len: p.l4_len, ack_adj: None };
            match tcp::packet_with(c, Dir::Original, &seg, false, false, &to) {
                tcp::Outcome::Accept { timeout_secs, .. } => timeout = timeout_secs,
                tcp::Outcome::Ignore => {}
                _ => return self.invalid(),
            }
        }
        let Some(reply) = t.invert() else { return self.invalid() };
        let h = match self.alloc(t, &reply, p.zone, now, timeout) {
            Ok(h) => h,
            Err(Full::NoRoom) => return Track::Drop,
        };
        // A data connection a helper announced: RELATED (`init_conntrack` with an expectation),
        // and it carries its master's mark. Taken once the flow has its entry.
        let expected = if t.proto == IPPROTO_TCP { self.take_expectation(t, p.zone.id(Dir::Original), now) } else { None };
        let master = expected.map(|(mark, _)| mark);
        // A data connection of a translated FTP flow: its bindings come with it.
        let follow = expected.and_then(|(_, nat)| nat).and_then(|[src, dst]| {
            let mut c = TableChooser { t: self, zone: Zone { id: p.zone.id(Dir::Reply), dirs: 3 }, now };
            let a = super::super::nat::unique_tuple(t, &src, super::super::nat::Manip::Src, &mut c)?;
            super::super::nat::unique_tuple(&a, &dst, super::super::nat::Manip::Dst, &mut c)
        });
        let Some(e) = self.entry(h.idx) else { return self.invalid() };
        // Under the entry's lock with its generation checked: the flow may already be gone
        // (freed by the collector or a flush) and its entry taken for another.
        let ours = self.locks.entry(h.idx, || {
            if e.gen.load(Relaxed) != h.gen {
                return false;
            }
            e.helper.store(u32::from(p.helper) | u32::from(p.ctevents) << EVENTS_SHIFT, Relaxed);
            if let Some(m) = master {
                e.status.fetch_or(u32::from(status::EXPECTED), Relaxed);
                e.mark.store(m, Relaxed);
            }
            if let Some(n) = follow.filter(|n| n != t) {
                if let Some(r) = n.invert() {
                    let w = pack(&r, e.tuple[1][1].load(Relaxed) as u16);
                    e.tuple[1][0].store(w[0], Relaxed);
                    e.tuple[1][1].store(w[1], Relaxed);
                }
                let mut bits = status::SRC_NAT_DONE | status::DST_NAT_DONE;
                if n.src != t.src || n.sport != t.sport {
                    bits |= status::SRC_NAT;
                }
                if n.dst != t.dst || n.dport != t.dport {
                    bits |= status::DST_NAT;
                }
                e.status.fetch_or(u32::from(bits), Relaxed);
            }
            if let Some(c) = tcp_conn {
                for (w, v) in e.proto.iter().zip(c.to_words()) {
                    w.store(v, Relaxed);
                }
            }
            if t.proto == IPPROTO_UDP {
                // The time after which the flow counts as a stream (`stream_ts`).
                if let Some(w) = e.proto.first() {
                    w.store(now.wrapping_add(2 * self.hz), Relaxed);
                }
            }
            self.count(e, Dir::Original, p.len);
            true
        });
        if !ours {
            return self.invalid();
        }
        let state = if master.is_some() { super::super::rule::ctstate::RELATED } else { super::super::rule::ctstate::NEW };
        Track::Flow { h, dir: Dir::Original, state, new: true }
    }

    /// Takes the expectation a new flow with tuple `t` fulfils, if any; gives the mark of the
    /// flow that announced it and, through NAT, the data connection's bindings.
    fn take_expectation(&self, t: &Tuple, zone: u16, now: u64) -> Option<(u32, Option<[super::super::nat::NatRange; 2]>)> {
        if self.shared.expect_count.load(Relaxed) == 0 {
            return None;
        }
        self.locks.table(|| {
            for x in &self.shared.expects {
                if x.used.load(Relaxed) == 0 {
                    continue;
                }
                let live = !expired(x.expires.load(Relaxed), now);
                let m = x.master.load(Relaxed);
                let master = self.get(Handle { idx: (m >> 32) as u32, gen: m as u32 });
                let exp = super::ftp::Expect {
                    src: x.src.load(Relaxed),
                    dst: x.dst.load(Relaxed),
                    dport: x.dport.load(Relaxed) as u16,
                };
                let Some(master) = master.filter(|_| live) else {
                    x.used.store(0, Relaxed);
                    self.shared.expect_count.fetch_sub(1, Relaxed);
                    continue;
                };
                if exp.matches(t) && x.zone.load(Relaxed) == u32::from(zone) {
                    x.used.store(0, Relaxed);
                    self.shared.expect_count.fetch_sub(1, Relaxed);
                    let saved = x.saved_port.load(Relaxed) as u16;
                    let dir = if x.nat_dir.load(Relaxed) == 0 { Dir::Original } else { Dir::Reply };
                    let tuples = [
                        unpack([master.tuple[0][0].load(Relaxed), master.tuple[0][1].load(Relaxed)]),
                        unpack([master.tuple[1][0].load(Relaxed), master.tuple[1][1].load(Relaxed)]),
                    ];
                    let nat = if saved != 0 { super::super::nat::ftp::follow_master(&tuples, dir, saved) } else { None };
                    return Some((master.mark.load(Relaxed), nat));
                }
            }
            None
        })
    }

    /// Sets the mark of flow `h` (CONNMARK); nothing when the flow is gone. A change of a
    /// confirmed flow's mark is an UPDATE event (IPCT_MARK).
    pub fn set_mark(&self, h: Handle, mark: u32, now: u64) {
        let Some(e) = self.entry(h.idx) else { return };
        let changed = self.locks.entry(h.idx, || {
            if e.gen.load(Relaxed) != h.gen || e.mark.load(Relaxed) == mark {
                return false;
            }
            e.mark.store(mark, Relaxed);
            e.status.load(Relaxed) & u32::from(status::CONFIRMED) != 0
        });
        if changed {
            self.emit(super::wire::EV_UPDATE, ctevent::MARK, h, now);
        }
    }

    /// A NAT stage's decision for the unconfirmed flow `h`: its reply tuple becomes `reply`
    /// when given (the binding translates; `nat` is then `status::SRC_NAT` or `DST_NAT`),
    /// and `done` (`SRC_NAT_DONE` or `DST_NAT_DONE`) records that this kind is decided.
    /// `nat_if`: the interface of a MASQUERADE binding. False when the flow is gone or
    /// already confirmed (its tuples are then in the chains and may not change).
    pub fn set_nat(&self, h: Handle, reply: Option<&Tuple>, nat: u16, done: u16, nat_if: u32) -> bool {
        let Some(e) = self.entry(h.idx) else { return false };
        self.locks.entry(h.idx, || {
            let st = e.status.load(Relaxed);
            if e.gen.load(Relaxed) != h.gen || st & u32::from(status::CONFIRMED) != 0 {
                return false;
            }
            if let Some(r) = reply {
                let zone = e.tuple[1][1].load(Relaxed) as u16;
                let w = pack(r, zone);
                e.tuple[1][0].store(w[0], Relaxed);
                e.tuple[1][1].store(w[1], Relaxed);
                e.status.fetch_or(u32::from(nat), Relaxed);
            }
            if nat_if != 0 {
                e.nat_if.store(nat_if, Relaxed);
                self.shared.masq_flows.fetch_add(1, Relaxed);
            }
            e.status.fetch_or(u32::from(done), Relaxed);
            true
        })
    }

    /// The sequence number corrections of flow `h`, when FTP through NAT changed a length.
    pub fn seqadj(&self, h: Handle) -> Option<super::super::nat::seqadj::SeqAdjust> {
        let e = self.get(h)?;
        if e.status.load(Relaxed) & u32::from(status::SEQ_ADJUST) == 0 {
            return None;
        }
        let w = [e.seqadj[0].load(Relaxed), e.seqadj[1].load(Relaxed), e.seqadj[2].load(Relaxed)];
        fence(Acquire);
        (e.gen.load(Relaxed) == h.gen).then(|| super::super::nat::seqadj::SeqAdjust::from_words(w))
    }

    /// Records that the segment of flow `h` going in `dir` with sequence number `seq` changed
    /// length by `off` (`nf_ct_seqadj_set`).
    pub fn seqadj_record(&self, h: Handle, dir: Dir, seq: u32, off: i32) {
        let Some(e) = self.entry(h.idx) else { return };
        self.locks.entry(h.idx, || {
            if e.gen.load(Relaxed) != h.gen {
                return;
            }
            let w = [e.seqadj[0].load(Relaxed), e.seqadj[1].load(Relaxed), e.seqadj[2].load(Relaxed)];
            let mut a = super::super::nat::seqadj::SeqAdjust::from_words(w);
            if a.record(dir, seq, off) {
                for (slot, v) in e.seqadj.iter().zip(a.to_words()) {
                    slot.store(v, Relaxed);
                }
                e.status.fetch_or(u32::from(status::SEQ_ADJUST), Relaxed);
            }
        });
    }

    /// Deletes the confirmed flows that MASQUERADE bound to interface `ifindex` (and, when
    /// `addr` is given, to that address: the interface lost it); returns how many
    /// (`nf_nat_masquerade`'s `device_cmp` / `inet_cmp`).
    pub fn masq_down(&self, ifindex: u32, addr: Option<u32>, now: u64) -> u32 {
        let mut n = 0;
        if self.shared.masq_flows.load(Relaxed) == 0 {
            return 0;
        }
        for (i, e) in self.entries.iter().enumerate() {
            let gen = e.gen.load(Acquire);
            if gen & 1 != 0 || e.nat_if.load(Relaxed) != ifindex || ifindex == 0 {
                continue;
            }
            let h = Handle { idx: i as u32, gen };
            let Some(s) = self.snapshot(h) else { continue };
            if s.status & status::CONFIRMED == 0 || addr.is_some_and(|a| s.tuple[1].dst != a) {
                continue;
            }
            n += u32::from(self.delete_at(h, now));
        }
        n
    }

    /// The helper of flow `h` (0 for none).
    pub fn helper(&self, h: Handle) -> u8 {
        self.get(h).map_or(0, |e| e.helper.load(Relaxed) as u8)
    }

    /// A helper flow's segment payload going in `dir`: records the data connection it
    /// announces (one per flow at a time, as the FTP helper's `max_expected`).
    ///
    /// As nf_conntrack_ftp, only a segment that starts a line is read (its sequence number
    /// follows a segment of the same direction that ended in a newline), so a command or reply
    /// cannot be forged inside other text; the glue calls this for packets of an ESTABLISHED
    /// flow that every hook accepted.
    pub fn helper_segment(&self, h: Handle, dir: Dir, seg: &HelperSegment<'_>, now: u64) {
        if !self.helper_line_start(h, dir, seg) {
            return;
        }
        let Some(s) = self.snapshot(h) else { return };
        let Some(exp) = super::ftp::parse(seg.payload, dir, &s.tuple) else { return };
        self.register_expectation(h, &exp, None, now);
    }

    /// Whether the FTP flow `h`'s segment `seg` going in `dir` starts a line (the helper only
    /// reads those, `find_nl_seq`); records where the next line starts when it ends one.
    pub fn helper_line_start(&self, h: Handle, dir: Dir, seg: &HelperSegment<'_>) -> bool {
        if self.helper(h) != HELPER_FTP {
            return false;
        }
        let Some(e) = self.entry(h.idx) else { return false };
        let d = dir.index();
        let shift = 2 * d as u32;
        // `find_nl_seq`, then `update_nl_seq` when the segment ends a line.
        let at_line_start = self.locks.table(|| {
            if e.gen.load(Relaxed) != h.gen {
                return false;
            }
            let num = (e.nl_num.load(Relaxed) >> shift) & 3;
            let packed = e.nl_seq.get(d).map_or(0, |a| a.load(Relaxed));
            let known = [packed as u32, (packed >> 32) as u32];
            let found = known.iter().take(num as usize).any(|&q| q == seg.seq);
            if seg.ends_in_nl {
                let nl = seg.seq.wrapping_add(seg.len);
                let mut k = known;
                if !k.iter().take(num as usize).any(|&q| q == nl) {
                    if num < 2 {
                        if let Some(slot) = k.get_mut(num as usize) {
                            *slot = nl;
                        }
                        let all = e.nl_num.load(Relaxed) & !(3 << shift);
                        e.nl_num.store(all | (num + 1) << shift, Relaxed);
                    } else {
                        let oldest = if (k[1].wrapping_sub(k[0]) as i32) > 0 { 0 } else { 1 };
                        if let Some(o) = k.get_mut(oldest).filter(|o| (nl.wrapping_sub(**o) as i32) > 0) {
                            *o = nl;
                        }
                    }
                    if let Some(a) = e.nl_seq.get(d) {
                        a.store(u64::from(k[0]) | u64::from(k[1]) << 32, Relaxed);
                    }
                }
            }
            found
        });
        at_line_start
    }

    /// Whether a live expectation of another flow than `h` already announces `exp`'s data
    /// connection (`nf_ct_expect_related`'s clash: NAT picks another port then).
    pub fn expect_taken(&self, h: Handle, exp: &super::ftp::Expect, now: u64) -> bool {
        let me = u64::from(h.idx) << 32 | u64::from(h.gen);
        self.locks.table(|| {
            self.shared.expects.iter().any(|x| {
                x.used.load(Relaxed) != 0
                    && !expired(x.expires.load(Relaxed), now)
                    && x.master.load(Relaxed) != me
                    && x.src.load(Relaxed) == exp.src
                    && x.dst.load(Relaxed) == exp.dst
                    && x.dport.load(Relaxed) == u32::from(exp.dport)
            })
        })
    }

    /// Registers the data connection `exp` that flow `h` announced (one per flow at a time,
    /// as the FTP helper's `max_expected`); `nat`: the port announced before NAT rewrote it
    /// and the announcing segment's direction.
    pub fn register_expectation(&self, h: Handle, exp: &super::ftp::Expect, nat: Option<(u16, Dir)>, now: u64) {
        let Some(s) = self.snapshot(h) else { return };
        let master = u64::from(h.idx) << 32 | u64::from(h.gen);
        let until = now.wrapping_add(u64::from(super::ftp::EXPECT_TIMEOUT).saturating_mul(self.hz));
        self.locks.table(|| {
            // The flow's earlier expectation goes; then a free (or expired) slot.
            let mut slot = None;
            for x in &self.shared.expects {
                let used = x.used.load(Relaxed) != 0;
                if used && (x.master.load(Relaxed) == master || expired(x.expires.load(Relaxed), now)) {
                    x.used.store(0, Relaxed);
                    self.shared.expect_count.fetch_sub(1, Relaxed);
                }
                if slot.is_none() && x.used.load(Relaxed) == 0 {
                    slot = Some(x);
                }
            }
            let Some(x) = slot else { return };
            x.src.store(exp.src, Relaxed);
            x.dst.store(exp.dst, Relaxed);
            x.dport.store(u32::from(exp.dport), Relaxed);
            x.expires.store(until, Relaxed);
            x.master.store(master, Relaxed);
            x.zone.store(u32::from(s.zone[0]), Relaxed);
            x.saved_port.store(nat.map_or(0, |(p, _)| u32::from(p)), Relaxed);
            x.nat_dir.store(nat.map_or(0, |(_, d)| d as u32), Relaxed);
            x.used.store(1, Relaxed);
            self.shared.expect_count.fetch_add(1, Relaxed);
        });
    }
}

/// Port allocation for a data connection's bindings: a candidate is taken when a confirmed
/// flow already has the reply tuple it implies.
struct TableChooser<'t, 'a, L: Locks> {
    t: &'t Table<'a, L>,
    zone: Zone,
    now: u64,
}

impl<L: Locks> super::super::nat::Chooser for TableChooser<'_, '_, L> {
    fn random(&mut self) -> u32 {
        self.t.locks.random()
    }
    fn hash(&mut self, w: &[u64; 2]) -> u32 {
        super::tuple::hash_words(&self.t.key, w)
    }
    fn used(&mut self, orig: &Tuple) -> bool {
        orig.invert().is_none_or(|r| self.t.lookup_in(&r, self.zone, self.now).is_some())
    }
}

enum Update {
    /// The packet's state; the events it caused ([`ctevent`] bits, 0 for none).
    Ok(u16, u16),
    Invalid,
    Restart,
}

#[cfg(test)]
pub(super) mod tests {
    extern crate std;
    use super::super::tuple::{parse, Parsed};
    use super::super::super::rule::ctstate;
    use super::*;
    use std::sync::Mutex;
    use std::vec::Vec;

    /// The locks of a table in plain memory (the table lock only: a test never runs a
    /// tracker step concurrently with another on the same entry).
    pub(in super::super) struct TestLocks(Mutex<()>);
    impl Locks for TestLocks {
        fn table<R>(&self, f: impl FnOnce() -> R) -> R {
            let _g = self.0.lock().unwrap();
            f()
        }
        fn entry<R>(&self, _idx: u32, f: impl FnOnce() -> R) -> R {
            f()
        }
    }

    /// A table in plain memory, as the glue gives one.
    pub(in super::super) struct Mem {
        pub(in super::super) entries: Vec<Entry>,
        pub(in super::super) buckets: Vec<AtomicU32>,
        pub(in super::super) shared: Shared,
        locks: TestLocks,
        pending: Vec<AtomicU64>,
    }

    impl Mem {
        pub(in super::super) fn new(n: usize, b: usize) -> Mem {
            let m = Mem {
                entries: (0..n).map(|_| Entry::default()).collect(),
                buckets: (0..b).map(|_| AtomicU32::new(0)).collect(),
                shared: Shared::default(),
                locks: TestLocks(Mutex::new(())),
                pending: (0..pending_slots(n)).map(|_| AtomicU64::new(0)).collect(),
            };
            init(&m.entries, &m.buckets, &m.shared);
            m
        }
        pub(in super::super) fn table(&self) -> Table<'_, TestLocks> {
            Table {
                entries: &self.entries,
                buckets: &self.buckets,
                shared: &self.shared,
                key: [7, 9],
                locks: &self.locks,
                hz: 100,
                pending: &self.pending,
                stats: &[],
            }
        }
    }

    const C: u32 = 0x0a00_0102;
    const S: u32 = 0x0a00_0202;

    fn udp(src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
        let mut v = std::vec![0u8; 8];
        v[0..2].copy_from_slice(&sport.to_be_bytes());
        v[2..4].copy_from_slice(&dport.to_be_bytes());
        let _ = (src, dst);
        v
    }

    fn track(t: &Table<'_, TestLocks>, src: u32, dst: u32, proto: u8, l4: &[u8], now: u64) -> Track {
        let p = PacketCt { parsed: parse(src, dst, proto, 0, l4), helper: 0, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: 100, l4_len: l4.len() as u32 };
        t.track(&p, now)
    }

    fn track_in(t: &Table<'_, impl Locks>, zone: Zone, ctevents: u16, src: u32, dst: u32, l4: &[u8], now: u64) -> Track {
        let p = PacketCt { parsed: parse(src, dst, 17, 0, l4), helper: 0, zone, ctevents, cause: None, len: 100, l4_len: l4.len() as u32 };
        t.track(&p, now)
    }

    #[test]
    fn a_udp_clash_with_the_same_flow_joins_it() {
        let m = Mem::new(16, 8);
        let t = m.table();
        let q = udp(C, S, 5353, 53);
        let Track::Flow { h: a, .. } = track(&t, C, S, 17, &q, 10) else { panic!() };
        let Track::Flow { h: b, .. } = track(&t, C, S, 17, &q, 10) else { panic!() };
        let Track::Flow { h: c, .. } = track(&t, C, S, 17, &q, 10) else { panic!() };
        // The third is translated differently.
        let other = Tuple { src: S + 1, dst: C, sport: 53, dport: 5353, proto: 17 };
        assert!(t.set_nat(c, Some(&other), status::DST_NAT, status::DST_NAT_DONE, 0));
        t.confirm(a, 10).unwrap();
        assert_eq!(t.confirm(b, 10), Ok(()), "the second first packet joins the flow");
        assert_eq!(m.shared.stats.clash_resolve.load(Relaxed), 1);
        assert_eq!(m.shared.count.load(Relaxed), 2);
        assert!(t.get(b).is_none());
        // Translated differently: the clash stays a drop.
        assert_eq!(t.confirm(c, 10), Err(()));
        assert_eq!(m.shared.stats.insert_failed.load(Relaxed), 1);
    }

    #[test]
    fn zones_are_separate_tuple_spaces() {
        let m = Mem::new(16, 8);
        let t = m.table();
        let (q, r) = (udp(C, S, 5000, 53), udp(S, C, 53, 5000));
        let z5 = Zone { id: 5, dirs: 3 };
        let all = ctevent::ALL;
        let Track::Flow { h: h0, .. } = track_in(&t, Zone::DEFAULT, all, C, S, &q, 10) else { panic!() };
        t.confirm(h0, 10).unwrap();
        // The same tuple in zone 5 is another flow, and confirming it is no clash.
        let Track::Flow { h: h5, new: true, .. } = track_in(&t, z5, all, C, S, &q, 10) else { panic!() };
        assert_ne!(h5, h0);
        t.confirm(h5, 10).unwrap();
        assert_eq!(t.snapshot(h5).unwrap().zone, [5, 5]);
        assert_eq!(t.snapshot(h0).unwrap().zone, [0, 0]);
        // Each reply finds its own zone's flow.
        assert!(matches!(track_in(&t, z5, all, S, C, &r, 11), Track::Flow { h, dir: Dir::Reply, .. } if h == h5));
        assert!(matches!(track_in(&t, Zone::DEFAULT, all, S, C, &r, 11), Track::Flow { h, dir: Dir::Reply, .. } if h == h0));
        assert_eq!(t.lookup_in(&Tuple { src: C, dst: S, sport: 5000, dport: 53, proto: 17 }, Zone { id: 6, dirs: 3 }, 11), None);
        // --zone-orig 7: the original direction in zone 7, replies in the default zone.
        let zo = Zone { id: 7, dirs: 1 };
        let (q2, r2) = (udp(C, S, 6000, 53), udp(S, C, 53, 6000));
        let Track::Flow { h: h7, .. } = track_in(&t, zo, all, C, S, &q2, 12) else { panic!() };
        t.confirm(h7, 12).unwrap();
        assert_eq!(t.snapshot(h7).unwrap().zone, [7, 0]);
        // A reply looked up with the same template finds it (the second, reply-zone probe) ...
        assert!(matches!(track_in(&t, zo, all, S, C, &r2, 13), Track::Flow { h, dir: Dir::Reply, .. } if h == h7));
        // ... and so does one without a template (reply direction, zone 0) ...
        assert!(matches!(track_in(&t, Zone::DEFAULT, all, S, C, &r2, 13), Track::Flow { h, dir: Dir::Reply, .. } if h == h7));
        // ... but an original-direction packet without the template is a new flow.
        assert!(matches!(track_in(&t, Zone::DEFAULT, all, C, S, &q2, 13), Track::Flow { new: true, .. }));
        // Deleting unlinks from the zone's buckets.
        assert!(t.delete(h5));
        assert_eq!(t.lookup_in(&Tuple { src: C, dst: S, sport: 5000, dport: 53, proto: 17 }, z5, 14), None);
        assert!(t.lookup(&Tuple { src: C, dst: S, sport: 5000, dport: 53, proto: 17 }, 14).is_some());
    }

    /// Locks that record events.
    struct EvLocks(Mutex<Vec<u8>>);
    impl Locks for EvLocks {
        fn table<R>(&self, f: impl FnOnce() -> R) -> R {
            f()
        }
        fn entry<R>(&self, _idx: u32, f: impl FnOnce() -> R) -> R {
            f()
        }
        fn listening(&self) -> bool {
            true
        }
        fn event(&self, rec: &super::super::wire::FlowRecord) {
            self.0.lock().unwrap().push(rec.event);
        }
    }

    #[test]
    fn ctevents_limit_the_events_a_flow_reports() {
        use super::super::wire::{EV_DESTROY, EV_NEW, EV_UPDATE};
        let m = Mem::new(16, 8);
        let locks = EvLocks(Mutex::new(Vec::new()));
        let b = m.table();
        let t = Table {
            entries: b.entries,
            buckets: b.buckets,
            shared: b.shared,
            key: b.key,
            locks: &locks,
            hz: b.hz,
            pending: b.pending,
            stats: b.stats,
        };
        let run = |mask: u16, port: u16| {
            locks.0.lock().unwrap().clear();
            let (q, r) = (udp(C, S, port, 53), udp(S, C, 53, port));
            let Track::Flow { h, .. } = track_in(&t, Zone::DEFAULT, mask, C, S, &q, 10) else { panic!() };
            t.confirm(h, 10).unwrap();
            track_in(&t, Zone::DEFAULT, mask, S, C, &r, 11);
            t.set_mark(h, 9, 12);
            t.delete(h);
            locks.0.lock().unwrap().clone()
        };
        assert_eq!(run(ctevent::ALL, 1), [EV_NEW, EV_UPDATE, EV_UPDATE, EV_DESTROY]);
        assert_eq!(run(ctevent::NEW | ctevent::DESTROY, 2), [EV_NEW, EV_DESTROY]);
        assert_eq!(run(ctevent::REPLY, 3), [EV_UPDATE]);
        assert_eq!(run(ctevent::MARK | ctevent::DESTROY, 4), [EV_UPDATE, EV_DESTROY]);
        assert_eq!(run(0, 5), []);
    }

    #[test]
    fn udp_flow_new_unconfirmed_confirmed_established() {
        let m = Mem::new(16, 8);
        let t = m.table();
        let q = udp(C, S, 5000, 53);
        let Track::Flow { h, dir, state, new } = track(&t, C, S, 17, &q, 1000) else { panic!() };
        assert_eq!((dir, state, new), (Dir::Original, ctstate::NEW, true));
        // Unconfirmed: invisible to lookups, so a second first packet makes its own.
        assert!(matches!(track(&t, C, S, 17, &q, 1000), Track::Flow { new: true, .. }));
        assert_eq!(m.shared.count.load(Relaxed), 2);
        t.confirm(h, 1000).unwrap();
        // The reply finds it, ESTABLISHED, and marks SEEN_REPLY.
        let r = udp(S, C, 53, 5000);
        let Track::Flow { h: h2, dir, state, new } = track(&t, S, C, 17, &r, 1001) else { panic!() };
        assert_eq!((h2, dir, state, new), (h, Dir::Reply, ctstate::ESTABLISHED, false));
        let s = t.snapshot(h).unwrap();
        assert_eq!(s.status & status::SEEN_REPLY, status::SEEN_REPLY);
        assert_eq!(s.counters, [(1, 100), (1, 100)]);
        // Not ASSURED until a packet after two seconds.
        assert_eq!(s.status & status::ASSURED, 0);
        track(&t, C, S, 17, &q, 1000 + 300);
        let s = t.snapshot(h).unwrap();
        assert_eq!(s.status & status::ASSURED, status::ASSURED);
        assert_eq!(s.expires, 1300 + 120 * 100);
        // The second unconfirmed one, confirmed later, clashes and is freed.
        assert!(t.walk(0, 1300, &mut [Handle { idx: 0, gen: 0 }; 4]).0 == 1);
    }

    #[test]
    fn expiry_gc_and_unconfirmed_leftovers() {
        let m = Mem::new(4, 4);
        let t = m.table();
        let q = udp(C, S, 1, 2);
        let Track::Flow { h, .. } = track(&t, C, S, 17, &q, 0) else { panic!() };
        t.confirm(h, 0).unwrap();
        // An unconfirmed one whose packet never came back.
        let q2 = udp(C, S, 3, 4);
        let Track::Flow { h: lost, .. } = track(&t, C, S, 17, &q2, 0) else { panic!() };
        assert_eq!(t.gc_step(100, 10), 0);
        assert_eq!(t.gc_step(201, 10), 1, "the lost unconfirmed entry after 2 s");
        assert!(t.get(lost).is_none());
        assert!(t.lookup(&Tuple { src: C, dst: S, sport: 1, dport: 2, proto: 17 }, 2999).is_some());
        assert!(t.lookup(&Tuple { src: C, dst: S, sport: 1, dport: 2, proto: 17 }, 3000).is_none(), "expired");
        assert_eq!(t.gc_step(3000, 10), 1);
        assert_eq!(m.shared.count.load(Relaxed), 0);
    }

    #[test]
    fn full_table_evicts_unassured_then_drops() {
        let m = Mem::new(2, 1);
        let t = m.table();
        for port in [1u16, 2] {
            let Track::Flow { h, .. } = track(&t, C, S, 17, &udp(C, S, port, 9), 0) else { panic!() };
            t.confirm(h, 0).unwrap();
        }
        // Full: the third evicts one that is not ASSURED.
        let Track::Flow { h, .. } = track(&t, C, S, 17, &udp(C, S, 3, 9), 0) else { panic!() };
        assert_eq!(m.shared.stats.early_drop.load(Relaxed), 1);
        t.confirm(h, 0).unwrap();
        // Make everything ASSURED (a reply, then a packet after 2 s), then nothing can go.
        for port in [1u16, 2, 3] {
            if t.lookup(&Tuple { src: C, dst: S, sport: port, dport: 9, proto: 17 }, 10).is_none() {
                continue;
            }
            track(&t, S, C, 17, &udp(S, C, 9, port), 10);
            track(&t, C, S, 17, &udp(C, S, port, 9), 500);
        }
        let assured = (0..2).filter(|i| m.entries[*i].status.load(Relaxed) & u32::from(status::ASSURED) != 0).count();
        assert_eq!(assured, 2);
        assert_eq!(track(&t, C, S, 17, &udp(C, S, 4, 9), 600), Track::Drop);
        assert_eq!(m.shared.stats.drop.load(Relaxed), 1);
    }

    #[test]
    fn unconfirmed_flows_never_fill_the_table() {
        // First packets that someone else drops between the two stages: never confirmed.
        let m = Mem::new(64, 16);
        let t = m.table();
        for port in 0..1000u16 {
            assert!(matches!(track(&t, C, S, 17, &udp(C, S, port, 53), 1), Track::Flow { new: true, .. }));
            assert!(m.shared.count.load(Relaxed) as usize <= pending_slots(64));
        }
        assert_eq!(m.shared.stats.unconfirmed_drop.load(Relaxed), 1000 - pending_slots(64) as u64);
        assert_eq!(m.shared.stats.drop.load(Relaxed), 0);
        // A real flow still gets in and is confirmed; the oldest unconfirmed ones are gone.
        let Track::Flow { h, .. } = track(&t, C, S, 6, &syn(1234, 80), 2) else { panic!() };
        assert_eq!(t.confirm(h, 2), Ok(()));
    }

    #[test]
    fn icmp_error_is_related_and_stray_replies_invalid() {
        let m = Mem::new(8, 8);
        let t = m.table();
        let Track::Flow { h, .. } = track(&t, C, S, 17, &udp(C, S, 5000, 53), 0) else { panic!() };
        t.confirm(h, 0).unwrap();
        // Port unreachable from the server, quoting the client's datagram.
        let mut e = std::vec![0u8; 8 + 20 + 8];
        e[0] = 3;
        e[1] = 3;
        e[8] = 0x45;
        e[8 + 9] = 17;
        e[8 + 12..8 + 16].copy_from_slice(&C.to_be_bytes());
        e[8 + 16..8 + 20].copy_from_slice(&S.to_be_bytes());
        e[28..32].copy_from_slice(&[0x13, 0x88, 0, 53]);
        assert!(matches!(parse(S, C, 1, 0, &e), Parsed::IcmpError { .. }));
        let Track::Flow { h: hr, dir, state, new } = track(&t, S, C, 1, &e, 1) else { panic!() };
        assert_eq!((hr, dir, state, new), (h, Dir::Reply, ctstate::RELATED, false));
        // The same error sent to another host than the quoted packet's sender: INVALID.
        assert_eq!(track(&t, S, C + 1, 1, &e, 1), Track::Invalid);
        // An error about nothing, and an echo reply without a request: INVALID.
        e[28..32].copy_from_slice(&[0, 1, 0, 2]);
        assert_eq!(track(&t, S, C, 1, &e, 1), Track::Invalid);
        assert_eq!(track(&t, S, C, 1, &[0, 0, 0, 0, 0, 1, 0, 1], 1), Track::Invalid);
        // An echo request starts a flow.
        assert!(matches!(track(&t, C, S, 1, &[8, 0, 0, 0, 0, 1, 0, 1], 1), Track::Flow { new: true, .. }));
    }

    fn syn(sport: u16, dport: u16) -> Vec<u8> {
        let mut v = std::vec![0u8; 20];
        v[0..2].copy_from_slice(&sport.to_be_bytes());
        v[2..4].copy_from_slice(&dport.to_be_bytes());
        v[12] = 5 << 4;
        v[13] = 0x02;
        v[14] = 0xff;
        v
    }

    #[test]
    fn ftp_expectation_makes_the_data_connection_related() {
        let m = Mem::new(16, 8);
        let t = m.table();
        let s = syn(40000, 21);
        let p = PacketCt { parsed: parse(C, S, 6, 0, &s), helper: HELPER_FTP, zone: crate::conntrack::tuple::Zone::DEFAULT, ctevents: crate::rules::rule::ctevent::ALL, cause: None, len: 60, l4_len: 20 };
        let Track::Flow { h, .. } = t.track(&p, 0) else { panic!() };
        t.confirm(h, 0).unwrap();
        assert_eq!(t.helper(h), HELPER_FTP);
        let seg = |seq: u32, p: &'static [u8]| HelperSegment {
            seq,
            len: p.len() as u32,
            payload: p,
            ends_in_nl: p.last() == Some(&b'\n'),
        };
        // A command that does not start a line (no earlier line seen) is not read.
        t.helper_segment(h, Dir::Original, &seg(100, b"PORT 10,0,1,2,195,80\r\n"), 1);
        let Track::Flow { state, .. } = track(&t, S, C, 6, &syn(20, 50000), 2) else { panic!() };
        assert_eq!(state, ctstate::NEW);
        // Neither is one inside a line (after a segment that did not end in a newline).
        t.helper_segment(h, Dir::Original, &seg(200, b"NOOP"), 1);
        t.helper_segment(h, Dir::Original, &seg(204, b"PORT 10,0,1,2,195,81\r\n"), 1);
        let Track::Flow { state, .. } = track(&t, S, C, 6, &syn(20, 50001), 2) else { panic!() };
        assert_eq!(state, ctstate::NEW);
        // The client's PORT command right after a full line announces 10.0.1.2:50000.
        t.helper_segment(h, Dir::Original, &seg(122, b"PORT 10,0,1,2,195,80\r\n"), 1);
        // Another connection to that port from elsewhere is not it.
        let Track::Flow { state, .. } = track(&t, 0x0a00_0909, C, 6, &syn(20, 50000), 2) else { panic!() };
        assert_eq!(state, ctstate::NEW);
        // The server's data connection is RELATED, EXPECTED, once.
        let Track::Flow { h: d, state, .. } = track(&t, S, C, 6, &syn(20, 50000), 2) else { panic!() };
        assert_eq!(state, ctstate::RELATED);
        assert_eq!(t.snapshot(d).unwrap().status & status::EXPECTED, status::EXPECTED);
        let Track::Flow { state, .. } = track(&t, S, C, 6, &syn(21, 50000), 2) else { panic!() };
        assert_eq!(state, ctstate::NEW);
        // An expectation that is not used in time goes.
        t.helper_segment(h, Dir::Reply, &seg(7000, b"200 ok\r\n"), 3);
        t.helper_segment(h, Dir::Reply, &seg(7008, b"227 Entering Passive Mode (10,0,2,2,39,16).\r\n"), 3);
        let late = 3 + u64::from(super::super::ftp::EXPECT_TIMEOUT) * 100;
        let Track::Flow { state, .. } = track(&t, C, S, 6, &syn(41000, 39 * 256 + 16), late) else { panic!() };
        assert_eq!(state, ctstate::NEW);
    }

    #[test]
    fn concurrent_lookups_during_churn_never_misreport() {
        use std::sync::Arc;
        let m = Arc::new(Mem::new(64, 8));
        let stop = Arc::new(core::sync::atomic::AtomicBool::new(false));
        // A flow that lives throughout: every lookup must find it, in the right direction.
        let Track::Flow { h: keep, .. } = track(&m.table(), C, S, 17, &udp(C, S, 7, 7), 0) else { panic!() };
        m.table().confirm(keep, 0).unwrap();
        let churn = {
            let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0u16;
                while !stop.load(Relaxed) {
                    i = i.wrapping_add(1) % 1000 + 10;
                    if let Track::Flow { h, .. } = track(&m.table(), C, S, 17, &udp(C, S, i, 9), 0) {
                        let _ = m.table().confirm(h, 0);
                        m.table().delete(h);
                    }
                }
            })
        };
        let t = m.table();
        let rev = Tuple { src: S, dst: C, sport: 7, dport: 7, proto: 17 };
        for _ in 0..200_000 {
            let (h, d) = t.lookup(&rev, 1).expect("the long-lived flow");
            assert_eq!((h, d), (keep, Dir::Reply));
        }
        stop.store(true, Relaxed);
        churn.join().unwrap();
    }
}
