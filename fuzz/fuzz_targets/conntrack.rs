// SPDX-License-Identifier: GPL-2.0
//! A run of IPv4 packets through connection tracking as the kernel glue does it (header
//! checks, tuple parsing, the table's track and confirm, the FTP helper, the collector) on a
//! small table with a moving clock. The input is a list of records:
//! `[op] [clock step] [length] [length bytes of IPv4 packet]`; `op` bit 0: confirm a new flow,
//! bit 1: the packet has the FTP helper, bit 2: a collector step, bit 3: delete the flow.
//! After every packet the entries in use never exceed the maximum and every confirmed,
//! unexpired flow is found from both directions; at the end, once everything is flushed and
//! collected, the table is empty.
#![no_main]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use rnf_engine::conntrack::table::{self, Entry, Handle, Locks, PacketCt, Shared, Table, Track, HELPER_FTP};
use rnf_engine::conntrack::{status, tuple, Dir};
use rnf_engine::packet::Ipv4Header;

struct TestLocks(Mutex<()>);

impl Locks for TestLocks {
    fn table<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock().unwrap();
        f()
    }
    fn entry<R>(&self, _idx: u32, f: impl FnOnce() -> R) -> R {
        f()
    }
}

const ENTRIES: usize = 16;
const BUCKETS: usize = 4;
const HZ: u64 = 100;

fn check(t: &Table<'_, TestLocks>, shared: &Shared, known: &mut Vec<Handle>, now: u64) {
    let count = shared.count.load(Relaxed) as usize;
    assert!(count <= ENTRIES);
    known.retain(|h| t.get(*h).is_some());
    assert_eq!(count, known.len(), "the entries in use are the flows the table made");
    for &h in known.iter() {
        let s = t.snapshot(h).expect("a flow still in the table reads");
        if s.status & status::CONFIRMED == 0 || table::expired(s.expires, now) {
            continue;
        }
        for d in [Dir::Original, Dir::Reply] {
            // Looked up in the zone of that direction.
            let zone = tuple::Zone { id: s.zone[d.index()], dirs: 3 };
            let got = t.lookup_in(&s.tuple[d.index()], zone, now);
            if s.tuple[0] == s.tuple[1] {
                assert_eq!(got.map(|g| g.0), Some(h));
            } else {
                assert_eq!(got, Some((h, d)), "{s:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let entries: Vec<Entry> = (0..ENTRIES).map(|_| Entry::default()).collect();
    let buckets: Vec<AtomicU32> = (0..BUCKETS).map(|_| AtomicU32::new(0)).collect();
    let shared = Shared::default();
    let locks = TestLocks(Mutex::new(()));
    table::init(&entries, &buckets, &shared);
    let pending: Vec<AtomicU64> = (0..table::pending_slots(ENTRIES)).map(|_| AtomicU64::new(0)).collect();
    let t = Table { entries: &entries, buckets: &buckets, shared: &shared, key: [1, 2], locks: &locks, hz: HZ, pending: &pending, stats: &[] };
    let mut known = Vec::new();
    let mut now: u64 = 1 << 32;
    let mut rest = data;
    while let [op, step, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        rest = next;
        now = now.wrapping_add(u64::from(*step) * u64::from(*step));
        let helper = if op & 2 != 0 { HELPER_FTP } else { 0 };
        // Zones: the default, zone 1, or zone 1 in one direction only.
        let zone = match (op >> 2) & 3 {
            1 => tuple::Zone { id: 1, dirs: 3 },
            2 => tuple::Zone { id: 1, dirs: 1 },
            3 => tuple::Zone { id: 1, dirs: 2 },
            _ => tuple::Zone::DEFAULT,
        };
        // The glue's checks before the table (rust_nf/conntrack.rs).
        if let Ok(ip) = Ipv4Header::parse_any(pkt) {
            let hl = ip.header_len;
            if pkt[0] >> 4 == 4 && hl >= 20 && pkt.len() >= hl {
                let l4 = &pkt[hl..];
                let parsed = tuple::parse(ip.src, ip.dst, ip.protocol, ip.frag_offset, l4);
                let l4_len = u32::from(ip.total_len).saturating_sub(hl as u32);
                let p = PacketCt { parsed, helper, zone, ctevents: u16::from(op >> 4), cause: None, len: pkt.len() as u32, l4_len };
                match t.track(&p, now) {
                    Track::Flow { h, dir, new, .. } => {
                        if new {
                            known.push(h);
                            if op & 1 != 0 {
                                let _ = t.confirm(h, now);
                            }
                        }
                        if t.helper(h) != 0 {
                            let doff = l4.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
                            if let Some(payload) = l4.get(doff.max(20)..).filter(|p| !p.is_empty()) {
                                let seq = l4.get(4..8).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                                let seg = table::HelperSegment {
                                    seq,
                                    len: payload.len() as u32,
                                    payload,
                                    ends_in_nl: payload.last() == Some(&b'\n'),
                                };
                                t.helper_segment(h, dir, &seg, now);
                            }
                        }
                        if op & 8 != 0 {
                            t.delete(h);
                        }
                    }
                    Track::Drop => assert_eq!(shared.count.load(Relaxed) as usize, ENTRIES),
                    Track::Invalid => {}
                }
            }
        }
        if op & 4 != 0 {
            t.gc_step(now, u32::from(op >> 4) + 1);
        }
        check(&t, &shared, &mut known, now);
    }
    t.flush(now);
    now = now.wrapping_add(u64::from(table::UNCONFIRMED_SECS) * HZ + 1);
    t.gc_step(now, ENTRIES as u32);
    assert_eq!(shared.count.load(Relaxed), 0);
    for (i, b) in buckets.iter().enumerate() {
        assert_eq!(b.load(Relaxed), 1 << 31 | i as u32, "chain {i} is empty");
    }
    check(&t, &shared, &mut known, now);
});
