// SPDX-License-Identifier: GPL-2.0

//! The state of `limit` and `statistic --mode nth` matches as the packet path keeps it: one
//! value per match, shared by every CPU and updated lock-free, like xt_limit (`xchg` and
//! `cmpxchg` on `struct xt_limit_priv`) and xt_statistic (`atomic_cmpxchg` on the nth count).
//!
//! The arithmetic is [`LimitState`]'s and [`nth_step`]'s; these types only add the atomics, so
//! the kernel module runs exactly the code the host tests below exercise, threads included.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::eval::{limit_increase, limit_take, nth_step, LimitState};
use super::rule::LimitMatch;

/// The token bucket of one `limit` match, shared between CPUs (`struct xt_limit_priv` and
/// the precomputed `credit_cap` and `cost` of `struct xt_rateinfo`). Times are in jiffies.
#[derive(Debug)]
pub struct AtomicLimit {
    /// Time of the last update (`priv->prev`).
    prev: AtomicU64,
    /// Credits now (`priv->credit`).
    credit: AtomicU32,
    credit_cap: u32,
    cost: u32,
    credits_per_jiffy: u32,
}

impl AtomicLimit {
    /// A full bucket at time `now` (`limit_mt_check`).
    pub fn new(m: &LimitMatch, hz: u32, now: u64) -> Self {
        Self::from_state(LimitState::new(m, hz, now))
    }

    /// A bucket in the given state.
    pub fn from_state(s: LimitState) -> Self {
        Self {
            prev: AtomicU64::new(s.prev),
            credit: AtomicU32::new(s.credit),
            credit_cap: s.credit_cap,
            cost: s.cost,
            credits_per_jiffy: s.credits_per_jiffy,
        }
    }

    /// The current state (each field read atomically, not both together: for tests and
    /// inspection, not for deciding on packets).
    pub fn load(&self) -> LimitState {
        LimitState {
            prev: self.prev.load(Ordering::Acquire),
            credit: self.credit.load(Ordering::Acquire),
            credit_cap: self.credit_cap,
            cost: self.cost,
            credits_per_jiffy: self.credits_per_jiffy,
        }
    }

    /// One packet (`limit_mt`): true when it may pass. `jiffies` reads the clock; like the
    /// kernel it is read for the fast path and again on every attempt of the update loop.
    ///
    /// Run by one thread at a time this is [`LimitState::allow`] at the time read. Run
    /// concurrently, no credit is lost or made: each attempt claims the time since the last
    /// update with an exchange on `prev` and keeps what it claimed across retries, and the
    /// credit changes only by a successful compare-and-exchange.
    pub fn allow(&self, mut jiffies: impl FnMut() -> u64) -> bool {
        // The fast path: nothing to take and no time passed.
        if self.credit.load(Ordering::Relaxed) < self.cost
            && self.prev.load(Ordering::Relaxed) == jiffies()
        {
            return false;
        }
        let mut increase: u32 = 0;
        loop {
            let now = jiffies();
            let prev = self.prev.swap(now, Ordering::AcqRel);
            increase = increase.wrapping_add(limit_increase(prev, now, self.credits_per_jiffy));
            let old = self.credit.load(Ordering::Acquire);
            let (new, pass) = limit_take(old, increase, self.credit_cap, self.cost);
            if self.credit.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return pass;
            }
        }
    }
}

/// The counter of one `statistic --mode nth` match, shared between CPUs (`struct
/// xt_statistic_priv`).
#[derive(Debug)]
pub struct AtomicNth {
    count: AtomicU32,
}

impl AtomicNth {
    /// A counter starting at `initial` (see [`super::compiled::StateInit::Nth`]).
    pub const fn new(initial: u32) -> Self {
        Self { count: AtomicU32::new(initial) }
    }

    /// The current count.
    pub fn load(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Advances the counter by one [`nth_step`] atomically and returns the new value (the
    /// match fires when it is 0).
    pub fn next(&self, every: u32) -> u32 {
        let mut old = self.count.load(Ordering::Relaxed);
        loop {
            let new = nth_step(old, every);
            match self.count.compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return new,
                Err(cur) => old = cur,
            }
        }
    }
}

/// The bytes a `quota` match has left, shared between CPUs (`struct xt_quota_priv`).
#[derive(Debug)]
pub struct AtomicQuota {
    left: AtomicU64,
}

impl AtomicQuota {
    /// `quota` bytes to spend.
    pub const fn new(quota: u64) -> Self {
        Self { left: AtomicU64::new(quota) }
    }

    /// The bytes left.
    pub fn load(&self) -> u64 {
        self.left.load(Ordering::Acquire)
    }

    /// xt_quota's `quota_mt` for a packet of `len` bytes: when that many are left, spend them
    /// and say so; otherwise nothing is left from now on (not even for a smaller packet).
    pub fn take(&self, len: u32) -> bool {
        let len = u64::from(len);
        let mut old = self.left.load(Ordering::Relaxed);
        loop {
            let (new, took) = match old.checked_sub(len) {
                Some(n) => (n, true),
                None => (0, false),
            };
            match self.left.compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return took,
                Err(cur) => old = cur,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::eval::{credits_per_jiffy, limit_valid, user2credits};
    use super::*;
    use std::vec::Vec;

    #[test]
    fn quota_spends_then_stops_for_good() {
        let q = AtomicQuota::new(100);
        assert!(q.take(60));
        assert_eq!(q.load(), 40);
        // Too big: nothing left from now on, not even for a small packet (xt_quota).
        assert!(!q.take(41));
        assert_eq!(q.load(), 0);
        assert!(!q.take(1));
        assert!(q.take(0));
        // Many threads spend exactly the quota, never more.
        let q = std::sync::Arc::new(AtomicQuota::new(10_000));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || (0..5000).filter(|_| q.take(1)).count())
            })
            .collect();
        let took: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(took, 10_000);
    }

    /// A straightforward transcription of net/netfilter/xt_limit.c (Linux 7.3) for one `HZ`,
    /// with C's types: `unsigned long` is `u64`, `u32` and `int` products wrap in 32 bits.
    /// Written from the C source, independently of the engine's arithmetic.
    mod xt_limit {
        pub const XT_LIMIT_SCALE: u32 = 10000;

        /// `#define MAX_CPJ (0xFFFFFFFF / (HZ*60*60*24))`
        pub fn max_cpj(hz: u32) -> u32 {
            0xFFFF_FFFF / (hz * 60 * 60 * 24)
        }

        /// `POW2_BELOW32(x)`, macro by macro.
        pub fn pow2_below32(x: u32) -> u32 {
            let b2 = |x: u32| x | (x >> 1);
            let b4 = |x: u32| b2(x) | b2(x >> 2);
            let b8 = |x: u32| b4(x) | b4(x >> 4);
            let b16 = |x: u32| b8(x) | b8(x >> 8);
            let b32 = |x: u32| b16(x) | b16(x >> 16);
            (b32(x) >> 1) + 1
        }

        /// `#define CREDITS_PER_JIFFY POW2_BELOW32(MAX_CPJ)`
        pub fn credits_per_jiffy(hz: u32) -> u32 {
            pow2_below32(max_cpj(hz))
        }

        /// `static u32 user2credits(u32 user)`
        pub fn user2credits(user: u32, hz: u32) -> u32 {
            let cpj = credits_per_jiffy(hz);
            if user > 0xFFFF_FFFF / (hz * cpj) {
                (user / XT_LIMIT_SCALE).wrapping_mul(hz).wrapping_mul(cpj)
            } else {
                user.wrapping_mul(hz).wrapping_mul(cpj) / XT_LIMIT_SCALE
            }
        }

        /// `struct xt_rateinfo` (the parts the match uses) with `struct xt_limit_priv`.
        #[derive(Debug, Clone, Copy)]
        pub struct Limit {
            pub hz: u32,
            pub credit_cap: u32,
            pub cost: u32,
            pub prev: u64,
            pub credit: u32,
        }

        /// `limit_mt_check`: `None` for `-ERANGE`.
        pub fn check(avg: u32, burst: u32, hz: u32, jiffies: u64) -> Option<Limit> {
            if burst == 0 || user2credits(avg.wrapping_mul(burst), hz) < user2credits(avg, hz) {
                return None;
            }
            let credit = user2credits(avg.wrapping_mul(burst), hz);
            Some(Limit {
                hz,
                credit_cap: credit,
                cost: user2credits(avg, hz),
                prev: jiffies,
                credit,
            })
        }

        /// `limit_mt` on one CPU (the `do ... while (cmpxchg ...)` runs once).
        pub fn limit_mt(r: &mut Limit, jiffies: u64) -> bool {
            if r.credit < r.cost && r.prev == jiffies {
                return false;
            }
            let mut credit_increase: u32 = 0;
            let now = jiffies;
            let prev = core::mem::replace(&mut r.prev, now);
            credit_increase = credit_increase.wrapping_add(
                now.wrapping_sub(prev).wrapping_mul(u64::from(credits_per_jiffy(r.hz))) as u32,
            );
            let mut new_credit = r.credit;
            new_credit = new_credit.wrapping_add(credit_increase);
            if new_credit > r.credit_cap {
                new_credit = r.credit_cap;
            }
            let ret = if new_credit >= r.cost {
                new_credit -= r.cost;
                true
            } else {
                false
            };
            r.credit = new_credit;
            ret
        }
    }

    use super::super::super::testrng::Rng;

    const HZS: [u32; 3] = [100, 250, 1000];

    fn lm(avg: u32, burst: u32) -> LimitMatch {
        LimitMatch { avg, burst }
    }

    #[test]
    fn constants_match_xt_limit() {
        for hz in [100, 250, 300, 1000] {
            assert_eq!(credits_per_jiffy(hz), xt_limit::credits_per_jiffy(hz), "HZ={hz}");
        }
        assert_eq!(xt_limit::credits_per_jiffy(100), 256);
        assert_eq!(xt_limit::credits_per_jiffy(250), 128);
        assert_eq!(xt_limit::credits_per_jiffy(1000), 32);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for hz in HZS {
            // Both branches of user2credits, the boundary and the extremes.
            let bound = 0xFFFF_FFFF / (hz * credits_per_jiffy(hz));
            let mut users = std::vec![0, 1, 2, 9999, 10000, 10001, bound - 1, bound, bound + 1];
            users.extend([u32::MAX - 1, u32::MAX, 10000 * 86400, 10000 * 86400 + 1]);
            users.extend((0..20_000).map(|_| rng.next() as u32 >> rng.below(32)));
            for u in users {
                assert_eq!(user2credits(u, hz), xt_limit::user2credits(u, hz), "HZ={hz} user={u}");
            }
        }
    }

    #[test]
    fn validity_matches_limit_mt_check() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for hz in HZS {
            for _ in 0..20_000 {
                let avg = rng.next() as u32 >> rng.below(32);
                let burst = rng.next() as u32 >> (16 + rng.below(16));
                let m = lm(avg, burst);
                let k = xt_limit::check(avg, burst, hz, 7);
                assert_eq!(limit_valid(&m, hz), k.is_some(), "HZ={hz} {m:?}");
                if let Some(k) = k {
                    let s = LimitState::new(&m, hz, 7);
                    assert_eq!(
                        (s.credit, s.credit_cap, s.cost, s.prev),
                        (k.credit, k.credit_cap, k.cost, k.prev)
                    );
                }
            }
        }
    }

    /// A random valid limit: rates from many per jiffy to one a day, bursts small and large.
    fn random_limit(rng: &mut Rng, hz: u32) -> LimitMatch {
        loop {
            let avg = match rng.below(4) {
                0 => 1 + rng.below(100) as u32,             // faster than HZ
                1 => 1 + rng.below(100_000) as u32,         // up to one per 10 s
                2 => 1 + rng.below(10_000 * 86_400) as u32, // up to one a day
                _ => [1, 10, 100, 1000, 3333, 10_000, 600_000][rng.below(7) as usize],
            };
            let burst = match rng.below(3) {
                0 => 1,
                1 => 1 + rng.below(10) as u32,
                _ => 1 + rng.below(10_000) as u32,
            };
            let m = lm(avg, burst);
            if limit_valid(&m, hz) {
                return m;
            }
        }
    }

    /// The next event time: mostly the same jiffy or a few later, sometimes long pauses,
    /// rarely pauses so long that `delta * CREDITS_PER_JIFFY` no longer fits in 32 bits.
    fn advance(rng: &mut Rng, now: u64) -> u64 {
        let d = match rng.below(100) {
            0..=59 => 0,
            60..=89 => rng.below(5),
            90..=97 => rng.below(10_000),
            98 => rng.below(1 << 40),
            _ => (1u64 << 32) + rng.below(1 << 33),
        };
        now.wrapping_add(d)
    }

    /// Long random sequences of (time, packet): the engine's bucket, its atomic twin and the
    /// kernel's transcription agree on every verdict and every state, from start times around
    /// 0, `INITIAL_JIFFIES` (where a 32-bit jiffies wraps) and the 64-bit wrap-around.
    #[test]
    fn matches_xt_limit_over_random_sequences() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut passed = 0u64;
        let mut events = 0u64;
        for hz in HZS {
            let initial_jiffies = u64::from((-300i64 * i64::from(hz)) as u32);
            for run in 0..60 {
                let m = random_limit(&mut rng, hz);
                let start = match run % 4 {
                    0 => rng.below(1000),
                    1 => initial_jiffies - rng.below(2000),
                    2 => u64::MAX - rng.below(5000),
                    _ => rng.next(),
                };
                let mut k = xt_limit::check(m.avg, m.burst, hz, start).unwrap();
                let mut s = LimitState::new(&m, hz, start);
                let a = AtomicLimit::new(&m, hz, start);
                let mut now = start;
                for _ in 0..5_000 {
                    now = advance(&mut rng, now);
                    let want = xt_limit::limit_mt(&mut k, now);
                    assert_eq!(s.allow(now), want, "HZ={hz} {m:?} at {now}");
                    assert_eq!(a.allow(|| now), want, "HZ={hz} {m:?} at {now}");
                    assert_eq!((s.prev, s.credit), (k.prev, k.credit));
                    assert_eq!(a.load(), s);
                    passed += u64::from(want);
                    events += 1;
                }
            }
        }
        // Both verdicts were well exercised.
        assert!(passed > events / 10 && passed < events * 9 / 10, "{passed} of {events}");
    }

    /// A full bucket passes `burst` packets at once, then one more each `1/rate`.
    #[test]
    fn burst_then_refill() {
        for hz in HZS {
            let hz64 = u64::from(hz);
            // 10/second: one token every HZ/10 jiffies; 1/second; 2/minute.
            for (avg, per) in [(1000u32, hz64 / 10), (10_000, hz64), (300_000, 30 * hz64)] {
                for burst in [1u32, 5, 100] {
                    let m = lm(avg, burst);
                    let t0 = 1_000_000;
                    let a = AtomicLimit::new(&m, hz, t0);
                    for i in 0..burst {
                        assert!(a.allow(|| t0), "HZ={hz} {m:?}: packet {i} of the burst");
                    }
                    assert!(!a.allow(|| t0), "HZ={hz} {m:?}: burst + 1");
                    // Refill: exactly one packet per period, none before its time.
                    for k in 1..=20u64 {
                        let due = t0 + k * per;
                        assert!(!a.allow(|| due - 1), "HZ={hz} {m:?}: early at period {k}");
                        assert!(a.allow(|| due), "HZ={hz} {m:?}: period {k}");
                        assert!(!a.allow(|| due), "HZ={hz} {m:?}: twice at period {k}");
                    }
                    // A long pause refills to the burst and no further.
                    let later = t0 + 1000 * per;
                    let n = (0..burst + 10).filter(|_| a.allow(|| later)).count();
                    assert_eq!(n, burst as usize, "HZ={hz} {m:?}");
                }
            }
        }
    }

    /// In any window of time `[t1, t2]`, what passes costs at most a full bucket plus what
    /// `t2 - t1` jiffies earn: never more than `burst + rate * time` packets.
    #[test]
    fn never_more_than_burst_plus_rate_in_any_window() {
        let mut rng = Rng(0x0bad_cafe_f00d_d00d);
        for hz in HZS {
            for run in 0..8 {
                let m = random_limit(&mut rng, hz);
                let start =
                    if run % 2 == 0 { rng.below(1 << 20) } else { u64::MAX - rng.below(3000) };
                let a = AtomicLimit::new(&m, hz, start);
                let (cap, cost, cpj) = {
                    let s = a.load();
                    (u128::from(s.credit_cap), u128::from(s.cost), u128::from(s.credits_per_jiffy))
                };
                // Times (as offsets from start, so windows are plain differences) and
                // verdicts; dense traffic so that the bucket is often empty.
                let mut t = 0u64;
                let mut log: Vec<(u64, bool)> = Vec::new();
                for _ in 0..1500 {
                    t += match rng.below(10) {
                        0..=6 => 0,
                        7 | 8 => rng.below(3),
                        _ => rng.below(50),
                    };
                    let now = start.wrapping_add(t);
                    log.push((t, a.allow(|| now)));
                }
                let mut prefix = std::vec![0u128; log.len() + 1];
                for (i, (_, p)) in log.iter().enumerate() {
                    prefix[i + 1] = prefix[i] + u128::from(*p);
                }
                for i in 0..log.len() {
                    for j in i..log.len() {
                        let passed = prefix[j + 1] - prefix[i];
                        let earned = u128::from(log[j].0 - log[i].0) * cpj;
                        assert!(
                            passed * cost <= cap + earned,
                            "HZ={hz} {m:?}: {passed} passed in [{}, {}]",
                            log[i].0,
                            log[j].0
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn jiffies_wrap_around() {
        // 3/second at HZ=100, burst 5: cost 8532, 256 credits per jiffy.
        let m = lm(3333, 5);
        for start in [u64::MAX - 1, u64::MAX, 0xFFFF_FFFF - 10] {
            let a = AtomicLimit::new(&m, 100, start);
            for _ in 0..5 {
                assert!(a.allow(|| start));
            }
            assert!(!a.allow(|| start));
            assert_eq!(a.load().credit, 2);
            // 33 jiffies later (across the wrap for the first two): 2 + 33 * 256 < 8532.
            let t = start.wrapping_add(33);
            assert!(!a.allow(|| t));
            assert_eq!(a.load().credit, 2 + 33 * 256);
            assert_eq!(a.load().prev, t);
            let t = start.wrapping_add(34);
            assert!(a.allow(|| t));
            assert_eq!(a.load().credit, 2 + 34 * 256 - 8532);
        }
        // A clock going backwards (as a stale `jiffies` read on another CPU) takes credit away
        // with the kernel's 32-bit wrap-around instead of adding a huge amount.
        let a = AtomicLimit::new(&m, 100, 1000);
        assert!(a.allow(|| 1000));
        assert!(a.allow(|| 999));
        assert_eq!(a.load().credit, 42662 - 8532 - 256 - 8532);
    }

    /// One clock read for the fast path, one per attempt: a sequential caller reads twice.
    #[test]
    fn reads_the_clock_like_limit_mt() {
        let a = AtomicLimit::new(&lm(10_000, 1), 100, 5);
        let mut reads = 0;
        assert!(a.allow(|| {
            reads += 1;
            5
        }));
        assert_eq!(reads, 1); // credit >= cost: the fast-path test does not read jiffies
        let mut reads = 0;
        assert!(!a.allow(|| {
            reads += 1;
            5
        }));
        assert_eq!(reads, 1); // fast path
        let mut reads = 0;
        assert!(!a.allow(|| {
            reads += 1;
            6
        }));
        assert_eq!(reads, 2);
    }

    /// Runs `f` `tries` times on each of `threads` threads, all released at once so that they
    /// contend, and counts the calls that returned true.
    fn hammer(threads: usize, tries: usize, f: impl Fn() -> bool + Sync) -> usize {
        let start = std::sync::Barrier::new(threads);
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    sc.spawn(|| {
                        start.wait();
                        (0..tries).filter(|_| f()).count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        })
    }

    /// N threads hammering one bucket at a frozen time pass exactly what the bucket holds:
    /// `burst` packets (`credit_cap / cost`, which is `burst` unless the cost rounds down a
    /// lot, as for 10000/s at HZ=100).
    #[test]
    fn threads_at_a_frozen_time_pass_exactly_burst() {
        const THREADS: usize = 8;
        const TRIES: usize = 20_000;
        for hz in HZS {
            for (avg, burst) in
                [(3333, 5), (10_000, 1), (100, 1000), (1, 3), (10_000 * 3600, 2), (1000, 10_000)]
            {
                let m = lm(avg, burst);
                let now = u64::MAX - 3; // frozen near the wrap
                let a = AtomicLimit::new(&m, hz, now);
                let s = a.load();
                let expect = s.credit_cap / s.cost;
                let total = hammer(THREADS, TRIES, || a.allow(|| now));
                assert_eq!(total, expect as usize, "HZ={hz} {m:?}");
                if avg >= 100 {
                    assert_eq!(total, burst as usize, "HZ={hz} {m:?}");
                }
                assert_eq!(a.load().credit, s.credit_cap - expect * s.cost);
            }
        }
    }

    /// Threads hammering one bucket while time moves forward between rounds: no credit is
    /// made (over the whole run at most a full bucket plus what the time earned passes) and
    /// none is lost (every round that earns a packet passes at least one).
    #[test]
    fn threads_with_time_moving_never_exceed_the_rate() {
        const THREADS: usize = 4;
        let m = lm(1000, 20); // 10/second, burst 20
        for hz in HZS {
            let start = 0xFFFF_FFFF_FFFF_FF00u64;
            let a = AtomicLimit::new(&m, hz, start);
            let s = a.load();
            let mut now = start;
            let mut total = 0usize;
            let mut rng = Rng(u64::from(hz) * 0x9E37_79B9);
            for _ in 0..200 {
                let step = rng.below(u64::from(hz) / 5);
                now = now.wrapping_add(step);
                let t = now;
                let round = hammer(THREADS, 50, || a.allow(|| t));
                if u64::from(s.credits_per_jiffy) * step >= u64::from(s.cost) {
                    assert!(round >= 1, "HZ={hz}: a round that earned a packet passed none");
                }
                total += round;
            }
            let elapsed = now.wrapping_sub(start);
            let earned = u64::from(s.credit_cap) + elapsed * u64::from(s.credits_per_jiffy);
            assert!(total as u64 * u64::from(s.cost) <= earned, "HZ={hz}: {total} passed");
            // And the bucket was the limit, not the traffic: most of what was earned passed.
            assert!(total as u64 * u64::from(s.cost) + 2 * u64::from(s.credit_cap) >= earned);
        }
    }

    #[test]
    fn nth_counts_like_xt_statistic() {
        // every 3 (every - 1 = 2), starting at every - packet.
        for (initial, want) in
            [(2, [0, 1, 2, 0, 1, 2, 0]), (1, [2, 0, 1, 2, 0, 1, 2]), (0, [1, 2, 0, 1, 2, 0, 1])]
        {
            let n = AtomicNth::new(initial);
            let got: Vec<u32> = (0..7).map(|_| n.next(2)).collect();
            assert_eq!(got, want);
        }
        // every 1: always 0.
        let n = AtomicNth::new(0);
        assert!((0..5).all(|_| n.next(0) == 0));
        // A count above `every` (not reachable from a ruleset) counts up through the wrap.
        let n = AtomicNth::new(u32::MAX);
        assert_eq!(n.next(2), 0);
        assert_eq!(n.next(2), 1);
    }

    /// N threads advancing one nth counter: every step is taken exactly once, so exactly one
    /// packet in `every + 1` matches and the counter ends where a single thread would leave it.
    #[test]
    fn nth_threads_count_every_step_once() {
        const THREADS: usize = 8;
        const EACH: usize = 10_000;
        for (every, initial) in [(0u32, 0u32), (2, 1), (9, 9), (99, 42)] {
            let n = AtomicNth::new(initial);
            let zeros = hammer(THREADS, EACH, || n.next(every) == 0);
            let steps = (THREADS * EACH) as u64;
            let period = u64::from(every) + 1;
            let want = (u64::from(initial) + steps) / period;
            assert_eq!(zeros as u64, want, "every {every} from {initial}");
            assert_eq!(u64::from(n.load()), (u64::from(initial) + steps) % period);
        }
    }
}
