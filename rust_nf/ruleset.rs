// SPDX-License-Identifier: GPL-2.0

//! A compiled table version: the engine's flat arrays in kernel vectors, per-CPU counters and
//! the state of `limit`/`nth` matches; and the packet path that walks it.

use crate::engine::compile::{self, CChain, CMatch, CRule, ChainDef, Output, RulesetHeader, StateInit, Store};
use crate::engine::eval::{self, AddrTypeDev, Env, PacketInfo, Verdict, MAX_EVAL_LEN};
use crate::engine::state::{AtomicLimit, AtomicNth};
use crate::engine::hooks::HookPoint;
use crate::engine::rule::{LimitMatch, TableId};
use crate::engine::rulewire;
use crate::ffi;
use crate::netns::PcpuCounters;
use crate::table::{ChainInfo, UserError};
use core::ffi::{c_int, c_uint};
use kernel::bindings::sk_buff;
use kernel::prelude::*;

/// The engine's output storage over a kernel vector (allocation may fail, never panics).
pub(crate) struct KStore<T>(KVVec<T>);

impl<T> KStore<T> {
    /// An empty store.
    pub(crate) const fn new() -> Self {
        Self(KVVec::new())
    }

    /// An empty store with room for `n` elements: pushing that many allocates nothing.
    pub(crate) fn with_capacity(n: usize) -> core::result::Result<Self, kernel::alloc::AllocError> {
        KVVec::with_capacity(n, GFP_KERNEL).map(Self)
    }

    /// The vector.
    pub(crate) fn into_inner(self) -> KVVec<T> {
        self.0
    }
}

impl<T> Store<T> for KStore<T> {
    fn push(&mut self, v: T) -> core::result::Result<(), compile::CompileError> {
        self.0.push(v, GFP_KERNEL).map_err(|_| compile::CompileError::OutOfMemory)
    }
    fn as_slice(&self) -> &[T] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// The state of one `limit` or `nth` match, updated lock-free from the packet path with the
/// engine's atomic types (the code the host tests run, threads included).
enum Slot {
    /// A token bucket.
    Limit(AtomicLimit),
    /// An nth counter.
    Nth(AtomicNth),
    /// A slot no match uses (the compiler numbers every slot it hands out, so none is).
    Unused,
}

impl Slot {
    fn new(init: StateInit, hz: u32, now: u64) -> Self {
        match init {
            StateInit::Limit(m) => Slot::Limit(AtomicLimit::new(&m, hz, now)),
            StateInit::Nth { initial, .. } => Slot::Nth(AtomicNth::new(initial)),
        }
    }

    /// xt_limit's `limit_mt` at the current `jiffies`; false for a slot of another kind.
    fn limit_allow(&self) -> bool {
        match self {
            Slot::Limit(l) => l.allow(jiffies),
            _ => false,
        }
    }

    /// xt_statistic's nth counter: advance atomically, return the new value.
    fn nth_next(&self, every: u32) -> u32 {
        match self {
            Slot::Nth(n) => n.next(every),
            _ => 0,
        }
    }
}

// `c_ulong` is 32 bits wide on some targets, where this conversion is not useless.
#[allow(clippy::useless_conversion)]
fn jiffies() -> u64 {
    // SAFETY: Reads the jiffies counter; no preconditions.
    let j = unsafe { ffi::rnf_jiffies() };
    u64::from(j)
}

/// One compiled, immutable table version (its counters and match state change, atomically).
pub(crate) struct Version {
    header: RulesetHeader,
    out: Output<KStore<CChain>, KStore<CRule>, KStore<CMatch>>,
    counters: PcpuCounters,
    slots: KVec<Slot>,
}

/// A fixed buffer that `core::fmt` writes into, cut at its size (for extack messages).
struct MsgBuf {
    buf: [u8; 80],
    len: usize,
}

impl core::fmt::Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep the last byte for the NUL.
            if self.len + 1 < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// The compile error, formatted for the extended ack.
pub(crate) struct CompileMessage {
    msg: MsgBuf,
}

impl CompileMessage {
    /// The NUL-terminated message.
    pub(crate) fn as_ptr(&self) -> *const kernel::ffi::c_char {
        self.msg.buf.as_ptr()
    }
}

impl Version {
    /// Compiles a table from its configured chains and rules (`(chain, start, len)` into
    /// `specs`, each a rule's canonical encoding).
    pub(crate) fn build(
        table: TableId,
        chains: &[ChainInfo],
        rules: impl Iterator<Item = (u32, u32, u32)>,
        specs: &[u8],
    ) -> core::result::Result<KBox<Version>, UserError> {
        let oom = UserError::nomem;
        let mut defs: KVec<ChainDef<'_>> = KVec::with_capacity(chains.len(), GFP_KERNEL).map_err(|_| oom())?;
        for c in chains {
            defs.push(ChainDef { name: c.name(), policy: c.policy }, GFP_KERNEL).map_err(|_| oom())?;
        }
        let decoded = rules.map(|(chain, start, len)| {
            let s = start as usize;
            let bytes = specs.get(s..s.saturating_add(len as usize)).unwrap_or(&[]);
            rulewire::decode_rule(bytes).map(|r| (chain, r))
        });
        // SAFETY: Reads HZ; no preconditions.
        let hz = unsafe { ffi::rnf_hz() };
        let mut out = Output { chains: KStore(KVVec::new()), rules: KStore(KVVec::new()), matches: KStore(KVVec::new()) };
        let header = match compile::compile(table, &defs, decoded, hz, &mut out) {
            Ok(h) => h,
            Err(e) => {
                let mut msg = MsgBuf { buf: [0; 80], len: 0 };
                let _ = core::fmt::write(&mut msg, format_args!("{e}"));
                let errno = match e {
                    compile::CompileFailure::Invalid(ce) => ce.errno(),
                    compile::CompileFailure::Decode { .. } => 22,
                };
                return Err(UserError::compile(errno, CompileMessage { msg }));
            }
        };
        let counters = PcpuCounters::new((header.counter_count as usize).max(1)).map_err(|_| oom())?;
        let now = jiffies();
        let mut slots = KVec::with_capacity(header.state_count as usize, GFP_KERNEL).map_err(|_| oom())?;
        for _ in 0..header.state_count {
            slots.push(Slot::Unused, GFP_KERNEL).map_err(|_| oom())?;
        }
        let rs = out.ruleset(header);
        for (idx, init) in rs.state_slots() {
            if let Some(s) = slots.get_mut(idx as usize) {
                *s = Slot::new(init, hz, now);
            }
        }
        KBox::new(Version { header, out, counters, slots }, GFP_KERNEL).map_err(|_| oom())
    }

    /// Counter `idx` summed over all CPUs: (packets, bytes).
    pub(crate) fn counter(&self, idx: usize) -> (u64, u64) {
        match c_uint::try_from(idx) {
            Ok(i) if i < self.header.counter_count => self.counters.sum(i),
            _ => (0, 0),
        }
    }

    /// The counter index of the policy of chain `chain`, if it is builtin.
    pub(crate) fn policy_counter(&self, chain: usize) -> Option<usize> {
        let c = self.out.chains.0.get(chain)?;
        (c.policy.is_some()).then_some(c.policy_counter as usize)
    }

    /// The packet path: runs this table's chain for `hook` and returns the netfilter verdict.
    ///
    /// # Safety
    ///
    /// `skb` and `st` are the packet and hook state of the current hook invocation.
    pub(crate) unsafe fn run(
        &self,
        hook: HookPoint,
        skb: *mut sk_buff,
        st: *const ffi::HookState,
    ) -> c_uint {
        let mut buf = [0u8; MAX_EVAL_LEN];
        let mut in_dev = [0u8; 16];
        let mut out_dev = [0u8; 16];
        // SAFETY: `skb` and `st` are live for this hook call (caller's guarantee); the buffers
        // have the sizes the shim writes (`MAX_EVAL_LEN`, IFNAMSIZ).
        let (n, len, mark) = unsafe {
            let n = ffi::rnf_skb_copy_network(skb, buf.as_mut_ptr(), MAX_EVAL_LEN as c_uint);
            ffi::rnf_state_ifnames(st, in_dev.as_mut_ptr(), out_dev.as_mut_ptr());
            (n, ffi::rnf_skb_len(skb), ffi::rnf_skb_mark(skb))
        };
        let data = buf.get(..n as usize).unwrap_or(&[]);
        // IPv4 input was validated by ip_rcv and local output is built by the stack: a header
        // that does not parse here is left alone, as ip_tables would never see it.
        let Ok(pkt) = PacketInfo::parse(data, &in_dev, &out_dev, len, mark) else {
            return kernel::bindings::NF_ACCEPT;
        };
        let rs = self.out.ruleset(self.header);
        let mut env = KernelEnv { v: self, skb, st, mark_changed: false };
        let verdict = eval::evaluate(&rs, hook, &pkt, &mut env);
        match verdict {
            Verdict::Accept => {
                if env.mark_changed && hook == HookPoint::LocalOut && self.header.table == TableId::Mangle {
                    // As iptable_mangle: a new mark may change the route of a local packet.
                    // SAFETY: As above.
                    if unsafe { ffi::rnf_reroute(st, skb) } < 0 {
                        return kernel::bindings::NF_DROP;
                    }
                }
                kernel::bindings::NF_ACCEPT
            }
            Verdict::Drop => kernel::bindings::NF_DROP,
            Verdict::Reject(kind) => {
                let code: c_int = kind.icmp_code().map_or(-1, c_int::from);
                // SAFETY: As above; the shim sends the ICMP error or reset for this packet.
                unsafe { ffi::rnf_reject(st, skb, code) };
                kernel::bindings::NF_DROP
            }
        }
    }
}

/// The engine's side effects, done on the live packet.
struct KernelEnv<'a> {
    v: &'a Version,
    skb: *mut sk_buff,
    st: *const ffi::HookState,
    mark_changed: bool,
}

impl Env for KernelEnv<'_> {
    fn count(&mut self, counter: u32, bytes: u32) {
        self.v.counters.add(counter, u64::from(bytes));
    }

    fn random_u32(&mut self) -> u32 {
        // SAFETY: No preconditions.
        unsafe { ffi::rnf_random_u32() }
    }

    fn limit_allow(&mut self, state: u32, _limit: &LimitMatch) -> bool {
        self.v.slots.get(state as usize).is_some_and(Slot::limit_allow)
    }

    fn nth_next(&mut self, state: u32, every: u32) -> u32 {
        self.v.slots.get(state as usize).map_or(0, |s| s.nth_next(every))
    }

    fn addr_type(&mut self, addr: u32, dev: AddrTypeDev) -> u16 {
        let d = match dev {
            AddrTypeDev::Any => 0,
            AddrTypeDev::In => 1,
            AddrTypeDev::Out => 2,
        };
        // SAFETY: `st` is the live hook state; the address goes in network order.
        let bit = unsafe { ffi::rnf_addr_type_bit(self.st, addr.to_be(), d) };
        bit as u16
    }

    fn log(&mut self, log: &compile::CLog) {
        let mut prefix = [0u8; 32];
        let p = log.prefix();
        let n = p.len().min(prefix.len() - 1);
        prefix[..n].copy_from_slice(&p[..n]);
        // SAFETY: `st` and `skb` are live; `prefix` is NUL-terminated and outlives the call.
        unsafe { ffi::rnf_log(self.st, self.skb, log.level, log.flags, prefix.as_ptr()) };
    }

    fn set_mark(&mut self, mark: u32) {
        self.mark_changed = true;
        // SAFETY: `skb` is the live packet, which this hook may modify.
        unsafe { ffi::rnf_skb_set_mark(self.skb, mark) };
    }
}
