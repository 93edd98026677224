// SPDX-License-Identifier: GPL-2.0

//! The compiled form of a table: what [`super::compile::compile`] produces and
//! [`super::eval::evaluate`] runs. Flat arrays (chains, rules, matches) with indices instead
//! of names or pointers, so the kernel keeps them in three allocations and the packet path
//! walks them without chasing pointers. Its own module, so that the compiler and the
//! evaluator both depend on it and not on each other.

use super::super::hooks::{HookPoint, NUM_HOOK_POINTS};
use super::rule::{
    AddrTypeMatch, IcmpMatch, Iface, IpRangeMatch, Ipv4Net, LengthMatch, LimitMatch, MarkMatch,
    MultiportMatch, Policy, PortMatch, RejectWith, TableId, TtlMatch, TtlMode, ConntrackMatch, ConnmarkTarget, MAX_LOG_PREFIX,
    EcnMatch, MacMatch, OwnerMatch, PktTypeMatch, SpiMatch, TcpMssMatch, TosMatch,
};

/// A store had no room (allocation failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// Depth of the jump stack of [`super::eval::evaluate`]: the most nested `-j` calls (gotos do
/// not count) a ruleset may need. The kernel sizes its stack by the number of user chains;
/// this fixed stack lives on the kernel stack, so deeper rulesets are refused at compile time
/// ([`super::compile::CompileError::TooDeep`]) instead of dropping packets at run time.
pub const MAX_JUMP_DEPTH: usize = 64;

/// Bytes kept of a `--log-prefix` (29 characters and the NUL of `struct xt_log_info`).
pub const LOG_PREFIX_BYTES: usize = MAX_LOG_PREFIX + 1;

/// The bit of `hook` in a hook mask (`1 << NF_INET_*`).
pub const fn hook_bit(hook: HookPoint) -> u8 {
    1u8 << (hook as u8)
}

/// Growable output storage for the compiler, without `alloc`.
///
/// The kernel implements it over its fallibly allocating vectors, host code over `Vec` (through
/// a newtype outside this crate). The store must be empty when handed to [`super::compile::compile`].
pub trait Store<T> {
    /// Appends `v`; [`OutOfMemory`] when there is no room.
    fn push(&mut self, v: T) -> Result<(), OutOfMemory>;
    /// The elements pushed so far.
    fn as_slice(&self) -> &[T];
    /// The elements pushed so far, writable.
    fn as_mut_slice(&mut self) -> &mut [T];
}

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(any(test, feature = "std"))]
impl<T> Store<T> for std::vec::Vec<T> {
    fn push(&mut self, v: T) -> Result<(), OutOfMemory> {
        std::vec::Vec::push(self, v);
        Ok(())
    }
    fn as_slice(&self) -> &[T] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }
}

/// A compiled chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CChain {
    /// Index of its first rule in the rules array.
    pub first: u32,
    /// Number of rules.
    pub count: u32,
    /// The policy of a builtin chain; `None` for a user chain.
    pub policy: Option<Policy>,
    /// The hook of a builtin chain.
    pub hook: Option<HookPoint>,
    /// Counter index of the policy of a builtin chain (see the module documentation);
    /// `u32::MAX` for a user chain.
    pub policy_counter: u32,
    /// Hooks from which the chain can be reached ([`hook_bit`] bits).
    pub hook_mask: u8,
    /// Most nested `-j` calls a packet can make from this chain on.
    pub depth: u32,
    /// Scratch: the chain whose position `by_name` is, in name order.
    pub(super) by_name: u32,
    /// Scratch: chain this one was entered from in the reachability walk.
    pub(super) parent: u32,
    /// Scratch: the walk's position in this chain.
    pub(super) cursor: u32,
    /// Scratch: the walk is inside this chain.
    pub(super) on_path: bool,
}

/// A compiled `LOG` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CLog {
    /// Syslog level 0..=7.
    pub level: u8,
    /// `NF_LOG_*` flags.
    pub flags: u8,
    /// The prefix, NUL-padded (like `struct xt_log_info`).
    pub prefix_buf: [u8; LOG_PREFIX_BYTES],
    /// Length of the prefix in `prefix_buf`.
    pub prefix_len: u8,
}

impl CLog {
    /// The prefix bytes (no NUL).
    pub fn prefix(&self) -> &[u8] {
        self.prefix_buf.get(..usize::from(self.prefix_len)).unwrap_or(&[])
    }
}

/// A compiled target, jumps resolved to chain indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CTarget {
    /// No target: count and go on.
    None,
    /// ACCEPT.
    Accept,
    /// DROP.
    Drop,
    /// RETURN.
    Return,
    /// `-j` to the user chain with this index.
    Jump(u32),
    /// `-g` to the user chain with this index.
    Goto(u32),
    /// REJECT.
    Reject(RejectWith),
    /// LOG, then go on.
    Log(CLog),
    /// MARK: `mark = (mark & !mask) ^ value`, then go on.
    Mark {
        /// Bits XORed in.
        value: u32,
        /// Bits cleared first.
        mask: u32,
    },
    /// CT --notrack, then go on.
    CtNotrack,
    /// CT with a template (helper, zone, events), then go on.
    Ct(super::rule::CtSpec),
    /// CONNMARK, then go on.
    Connmark(ConnmarkTarget),
    /// A NAT target: the flow's binding, then accept.
    Nat(super::rule::NatTarget),
    /// TTL: rewrite the TTL, then go on.
    Ttl {
        /// Set, increment or decrement.
        mode: TtlMode,
        /// The operand.
        value: u8,
    },
    /// TOS or DSCP: the TOS byte becomes `(tos & keep) ^ xor` (when that changes it), then go
    /// on.
    Tos {
        /// Bits kept.
        keep: u8,
        /// Bits XORed in.
        xor: u8,
        /// Written as DSCP (for messages).
        dscp: bool,
    },
    /// CLASSIFY: `skb->priority` becomes this, then go on.
    Classify(u32),
    /// TCPMSS: the MSS to set, or [`super::tcpmss::CLAMP_PMTU`]; then go on.
    TcpMss(u16),
    /// NFLOG, then go on (its prefix is the rule's [`CMatch::LogPrefix`]).
    Nflog(CNflog),
    /// NFQUEUE: the walk ends, the packet goes to a queue.
    Nfqueue(super::rule::NfqueueSpec),
}

/// NFLOG's options but the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CNflog {
    /// nfnetlink_log group.
    pub group: u16,
    /// Queue threshold.
    pub threshold: u16,
    /// Bytes copied (with `copy_len`).
    pub len: u32,
    /// `NF_LOG_F_COPY_LEN`.
    pub copy_len: bool,
}

/// The room of an NFLOG prefix with its NUL.
pub const NFLOG_PREFIX_BYTES: usize = super::rule::MAX_NFLOG_PREFIX + 1;

/// The `tcp` match with defaults filled in (as `struct xt_tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CTcp {
    /// Source ports (0:65535 when not given).
    pub sport: PortMatch,
    /// Destination ports.
    pub dport: PortMatch,
    /// Flags examined.
    pub flags_mask: u8,
    /// Flags that must be set among those.
    pub flags_comp: u8,
    /// `! --tcp-flags`.
    pub flags_invert: bool,
    /// `--tcp-option` kind; 0 = no option test (as the kernel).
    pub option: u8,
    /// `! --tcp-option`.
    pub option_invert: bool,
}

/// The `udp` match with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CUdp {
    /// Source ports.
    pub sport: PortMatch,
    /// Destination ports.
    pub dport: PortMatch,
}

/// A compiled match: [`super::rule::Match`] without borrowed data, stateful ones with their state slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CMatch {
    /// `-m tcp`.
    Tcp(CTcp),
    /// `-m udp`.
    Udp(CUdp),
    /// `-m icmp`.
    Icmp(IcmpMatch),
    /// `-m multiport`.
    Multiport(MultiportMatch),
    /// `-m mark`.
    Mark(MarkMatch),
    /// `-m connmark`.
    Connmark(MarkMatch),
    /// `-m connbytes`.
    Connbytes(super::rule::ConnbytesMatch),
    /// `-m connlimit` with the counter of state slot `state`.
    Connlimit {
        /// State slot.
        state: u32,
        /// The match.
        m: super::connlimit::ConnlimitMatch,
    },
    /// `-m recent` on the list of state slot `state` (the name stays in the rule's encoding:
    /// the glue finds the list by it when it builds the slots).
    Recent {
        /// State slot (the list).
        state: u32,
        /// `check_set` bits.
        check_set: u8,
        /// `!`.
        invert: bool,
        /// `--rdest`.
        dest: bool,
        /// `--seconds`.
        seconds: u32,
        /// `--hitcount`.
        hit_count: u32,
    },
    /// `-m statistic --mode random`.
    Random {
        /// Probability * 2^31.
        probability: u32,
        /// `!`.
        invert: bool,
    },
    /// `-m statistic --mode nth`.
    Nth {
        /// State slot.
        state: u32,
        /// n - 1.
        every: u32,
        /// p (only used to initialise the state).
        packet: u32,
        /// `!`.
        invert: bool,
    },
    /// `-m limit`.
    Limit {
        /// State slot.
        state: u32,
        /// The rate.
        limit: LimitMatch,
    },
    /// `-m iprange`.
    IpRange(IpRangeMatch),
    /// `-m length`.
    Length(LengthMatch),
    /// `-m addrtype`.
    AddrType(AddrTypeMatch),
    /// `-m ttl`.
    Ttl(TtlMatch),
    /// `-m conntrack`.
    Conntrack(ConntrackMatch),
    /// `-m state`: [`super::rule::ctstate`] bits.
    State(u16),
    /// `-m tos`, and `-m dscp` as the TOS bits it compares.
    Tos(TosMatch),
    /// `-m ecn`.
    Ecn(EcnMatch),
    /// `-m esp`.
    Esp(SpiMatch),
    /// `-m ah`.
    Ah(SpiMatch),
    /// `-m pkttype`.
    PktType(PktTypeMatch),
    /// `-m mac`.
    Mac(MacMatch),
    /// `-m tcpmss`.
    TcpMss(TcpMssMatch),
    /// `-m owner`.
    Owner(OwnerMatch),
    /// Not a test: the prefix of the rule's NFLOG target, kept after its matches (always
    /// true) so that the target stays small and the prefix goes wherever the rule's matches go.
    LogPrefix {
        /// The prefix, NUL-padded.
        buf: [u8; NFLOG_PREFIX_BYTES],
        /// Its length.
        len: u8,
    },
    /// `-m quota`.
    Quota {
        /// State slot.
        state: u32,
        /// The bytes allowed (only to initialise the state).
        quota: u64,
        /// `!`.
        invert: bool,
    },
}

/// A compiled rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CRule {
    /// `-s`.
    pub src: Ipv4Net,
    /// `! -s`.
    pub src_invert: bool,
    /// `-d`.
    pub dst: Ipv4Net,
    /// `! -d`.
    pub dst_invert: bool,
    /// `-i`.
    pub in_iface: Iface,
    /// `! -i`.
    pub in_invert: bool,
    /// `-o`.
    pub out_iface: Iface,
    /// `! -o`.
    pub out_invert: bool,
    /// `-p` (0: any).
    pub proto: u8,
    /// `! -p`.
    pub proto_invert: bool,
    /// `-f` / `! -f`.
    pub fragment: Option<bool>,
    /// Index of the first match in the matches array.
    pub match_start: u32,
    /// Number of matches (comments are not compiled).
    pub match_count: u32,
    /// What a match does.
    pub target: CTarget,
    /// Index of the chain the rule is in.
    pub chain: u32,
    /// Hooks from which the rule can be reached ([`hook_bit`] bits; 0: unreachable).
    pub hook_mask: u8,
    /// No address, interface, protocol or fragment condition and no match at all (a comment
    /// counts as a match, as in the kernel): the kernel's `unconditional()`.
    pub unconditional: bool,
}

/// What [`super::compile::compile`] returns besides the three arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesetHeader {
    /// The table.
    pub table: TableId,
    /// Per hook (kernel numbering), the index of its builtin chain, if the table has one.
    pub hook_entry: [Option<u32>; NUM_HOOK_POINTS],
    /// Number of chains.
    pub chain_count: u32,
    /// Number of rules.
    pub rule_count: u32,
    /// Number of counters: one per rule, then one per builtin chain policy.
    pub counter_count: u32,
    /// Number of state slots (`limit`, `statistic --mode nth`).
    pub state_count: u32,
    /// Some rule looks at connection tracking (`-m conntrack`, `-m state`): the namespace
    /// must track connections while this ruleset is live.
    pub uses_conntrack: bool,
}

/// A compiled ruleset, borrowed from its storage: what the packet path walks.
#[derive(Debug, Clone, Copy)]
pub struct Ruleset<'a> {
    /// The header [`super::compile::compile`] returned.
    pub header: RulesetHeader,
    /// Chains.
    pub chains: &'a [CChain],
    /// Rules, chain by chain.
    pub rules: &'a [CRule],
    /// Matches.
    pub matches: &'a [CMatch],
    /// The classifier ([`super::index`]); empty: every chain is walked linearly.
    pub index: super::index::Index<'a>,
    /// What changed since it was compiled ([`super::delta`]); empty: nothing.
    pub delta: Delta<'a>,
}

/// What changed in a compiled ruleset since it was compiled, without compiling it again
/// ([`super::delta`]): rules deleted (marked dead), rules added (the tail: appended at the end
/// of their chains or inserted before a rule), builtin chains' policies set.
///
/// Positions run over the compiled rules (`0..R`, `R` = `rules.len()` of the ruleset) and then
/// the tail's (`R..R + T`, in the order the rules were added, which never changes): a tail
/// rule's counter is the ruleset's `counter_count` plus its place in the tail.
///
/// A tail rule sits just before the compiled rule at its anchor (its chain's end: after the
/// compiled rules). `order` lists the tail in chain order: each chain's tail rules side by
/// side, by anchor, and those of one anchor in their order in the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta<'a> {
    /// One bit per position: the rule is deleted. Empty: none is.
    pub dead: &'a [u64],
    /// Per chain, the place in `order` of its first tail rule (`u32::MAX`: none). Empty: no
    /// chain has one.
    pub tail_first: &'a [u32],
    /// The tail rules, in the order they were added (each names its chain; their
    /// `match_start` is in `matches` below).
    pub rules: &'a [CRule],
    /// Per tail rule, its anchor: the compiled position it comes before (its chain's first
    /// compiled rule plus its count: the chain's end).
    pub anchors: &'a [u32],
    /// The tail rules (places in `rules`) in chain order.
    pub order: &'a [u32],
    /// The appended rules' matches.
    pub matches: &'a [CMatch],
    /// The appended rules' compact forms, one each (empty: none; the rules are tested in full).
    pub hot: &'a [super::index::CHot],
    /// Per chain, a policy set since it was compiled (`None`: its own). Empty: none.
    pub policies: &'a [Option<Policy>],
    /// A jump or goto was deleted: which hooks reach a chain and how deep its jumps go may
    /// be less than the compiled ruleset says (never more).
    pub stale_reach: bool,
}

impl<'a> Delta<'a> {
    /// Whether the rule at position `pos` is deleted.
    #[inline]
    pub fn is_dead(&self, pos: u32) -> bool {
        self.dead.get((pos / 64) as usize).is_some_and(|w| w >> (pos % 64) & 1 != 0)
    }

    /// The place in `order` of chain `chain`'s first tail rule.
    #[inline]
    pub fn tail_start(&self, chain: u32) -> Option<u32> {
        self.tail_first.get(chain as usize).copied().filter(|&t| t != u32::MAX)
    }

    /// The tail rule at place `i` of `order`, if it is of chain `chain`: its place in the
    /// tail and its anchor.
    #[inline]
    pub fn ordered(&self, i: u32, chain: u32) -> Option<(u32, u32)> {
        let t = *self.order.get(i as usize)?;
        let r = self.rules.get(t as usize)?;
        (r.chain == chain).then(|| (t, self.anchors.get(t as usize).copied().unwrap_or(u32::MAX)))
    }

    /// What follows the tail rule at place `i` of `order` in its chain `chain`: the next
    /// place in `order`, when it has the same anchor; else the compiled position to go on
    /// from (the anchor) and the place in `order` of the chain's next tail rule, if any.
    #[inline]
    pub fn after_tail(&self, i: u32, chain: u32) -> TailNext {
        let anchor = self.ordered(i, chain).map_or(u32::MAX, |(_, a)| a);
        let next = i.saturating_add(1);
        match self.ordered(next, chain) {
            Some((_, a)) if a == anchor => TailNext::Tail(next),
            Some(_) => TailNext::Compiled { at: anchor, next: Some(next) },
            None => TailNext::Compiled { at: anchor, next: None },
        }
    }

    /// The place in `order` of chain `chain`'s first tail rule after compiled position `pos`
    /// (anchored past it).
    pub fn tail_after(&self, chain: u32, pos: u32) -> Option<u32> {
        let first = self.tail_start(chain)?;
        (first..self.order.len() as u32).map_while(|i| self.ordered(i, chain).map(|(_, a)| (i, a))).find(|&(_, a)| a > pos).map(|(i, _)| i)
    }

    /// The place in `order` of tail rule `t`.
    pub fn rank(&self, t: u32) -> Option<u32> {
        self.order.iter().position(|&x| x == t).map(|i| i as u32)
    }

    /// The policy of chain `chain`, set since or `compiled`.
    pub fn policy(&self, chain: u32, compiled: Option<Policy>) -> Option<Policy> {
        self.policies.get(chain as usize).copied().flatten().or(compiled)
    }

    /// The matches of appended rule `rule`.
    pub fn rule_matches(&self, rule: &CRule) -> &'a [CMatch] {
        let start = rule.match_start as usize;
        self.matches.get(start..start.saturating_add(rule.match_count as usize)).unwrap_or(&[])
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.dead.is_empty() && self.rules.is_empty() && self.policies.is_empty()
    }
}

/// Where a chain's walk goes on after one of its tail rules ([`Delta::after_tail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailNext {
    /// The tail rule at this place of `order`.
    Tail(u32),
    /// The compiled rules from position `at`, and then the tail rule at place `next` of
    /// `order` (`None`: no more).
    Compiled {
        /// The compiled position.
        at: u32,
        /// The chain's next tail rule.
        next: Option<u32>,
    },
}

/// How one state slot must be initialised when a ruleset is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateInit {
    /// A token bucket: [`super::eval::LimitState::new`].
    Limit(LimitMatch),
    /// An nth counter: starts at `initial` (iptables' `every - packet`), advanced by
    /// [`super::eval::nth_step`].
    Nth {
        /// n - 1.
        every: u32,
        /// The starting count.
        initial: u32,
    },
    /// A `recent` match's list: the `n`-th `recent` match in rule order names it (the glue
    /// reads the name and `--mask` from that rule); `hit_count` sizes its stamps.
    Recent {
        /// `--hitcount`.
        hit_count: u32,
    },
    /// A `connlimit` match's counter ([`super::connlimit::Counter`]).
    Connlimit,
    /// A `quota` match's bytes left ([`super::state::AtomicQuota`]).
    Quota(u64),
}

impl<'a> Ruleset<'a> {
    /// The same ruleset with the classifier `index` (built by [`super::index::build`] from it).
    pub fn with_index(self, index: super::index::Index<'a>) -> Self {
        Self { index, ..self }
    }

    /// The same ruleset with the changes `delta` (made by [`super::delta::extend`] for it).
    pub fn with_delta(self, delta: Delta<'a>) -> Self {
        Self { delta, ..self }
    }

    /// The rule at position `pos` (a compiled one or an appended one) and its matches.
    pub fn rule_at(&self, pos: u32) -> Option<(&'a CRule, &'a [CMatch])> {
        match pos.checked_sub(self.rules.len() as u32) {
            None => self.rules.get(pos as usize).map(|r| (r, self.rule_matches(r))),
            Some(t) => self.delta.rules.get(t as usize).map(|r| (r, self.delta.rule_matches(r))),
        }
    }

    /// The counter of the rule at position `pos`.
    pub fn counter_of(&self, pos: u32) -> u32 {
        match pos.checked_sub(self.rules.len() as u32) {
            None => pos,
            Some(t) => self.header.counter_count.saturating_add(t),
        }
    }

    /// Index of the builtin chain at `hook`, if the table has one.
    pub fn entry_chain(&self, hook: HookPoint) -> Option<u32> {
        self.header.hook_entry.get(hook as usize).copied().flatten()
    }

    /// The counter of `hook`'s builtin chain policy.
    pub fn policy_counter(&self, hook: HookPoint) -> Option<u32> {
        let c = self.chains.get(self.entry_chain(hook)? as usize)?;
        Some(c.policy_counter)
    }

    /// The rules of chain `chain`.
    pub fn chain_rules(&self, chain: u32) -> &'a [CRule] {
        let Some(c) = self.chains.get(chain as usize) else { return &[] };
        let start = c.first as usize;
        let end = start.saturating_add(c.count as usize);
        self.rules.get(start..end).unwrap_or(&[])
    }

    /// The matches of `rule`.
    pub fn rule_matches(&self, rule: &CRule) -> &'a [CMatch] {
        let start = rule.match_start as usize;
        let end = start.saturating_add(rule.match_count as usize);
        self.matches.get(start..end).unwrap_or(&[])
    }

    /// The state slots of `rule`'s matches, in match order (the compiler numbers them in rule
    /// order, so a rule's slots are consecutive).
    pub fn rule_states(&self, rule: &CRule) -> impl Iterator<Item = u32> + 'a {
        self.rule_matches(rule).iter().filter_map(CMatch::state)
    }

    /// Every state slot with how to initialise it.
    pub fn state_slots(&self) -> impl Iterator<Item = (u32, StateInit)> + 'a {
        self.matches.iter().filter_map(|m| match *m {
            CMatch::Limit { state, limit } => Some((state, StateInit::Limit(limit))),
            CMatch::Nth { state, every, packet, .. } => {
                Some((state, StateInit::Nth { every, initial: every.wrapping_sub(packet) }))
            }
            CMatch::Recent { state, hit_count, .. } => Some((state, StateInit::Recent { hit_count })),
            CMatch::Connlimit { state, .. } => Some((state, StateInit::Connlimit)),
            CMatch::Quota { state, quota, .. } => Some((state, StateInit::Quota(quota))),
            _ => None,
        })
    }
}

impl CTarget {
    /// The target works on connections (the namespace must track them).
    pub fn uses_conntrack(&self) -> bool {
        matches!(self, CTarget::CtNotrack | CTarget::Ct(_) | CTarget::Connmark(_) | CTarget::Nat(_))
    }
}

impl CMatch {
    /// The match looks at connections (the namespace must track them).
    pub fn uses_conntrack(&self) -> bool {
        matches!(
            self,
            CMatch::Conntrack(_) | CMatch::State(_) | CMatch::Connmark(_) | CMatch::Connbytes(_) | CMatch::Connlimit { .. }
        )
    }

    /// The same match with its state in slot `slot` (unchanged if it has no state).
    pub fn with_state(self, slot: u32) -> Self {
        match self {
            CMatch::Limit { limit, .. } => CMatch::Limit { state: slot, limit },
            CMatch::Nth { every, packet, invert, .. } => CMatch::Nth { state: slot, every, packet, invert },
            CMatch::Recent { check_set, invert, dest, seconds, hit_count, .. } => {
                CMatch::Recent { state: slot, check_set, invert, dest, seconds, hit_count }
            }
            CMatch::Connlimit { m, .. } => CMatch::Connlimit { state: slot, m },
            other => other,
        }
    }

    /// The state slot of a match that has one (`limit`, `statistic --mode nth`, `recent`,
    /// `connlimit`).
    pub fn state(&self) -> Option<u32> {
        match *self {
            CMatch::Limit { state, .. }
            | CMatch::Nth { state, .. }
            | CMatch::Recent { state, .. }
            | CMatch::Connlimit { state, .. }
            | CMatch::Quota { state, .. } => Some(state),
            _ => None,
        }
    }
}

/// The three output arrays of [`super::compile::compile`].
#[derive(Debug, Default)]
pub struct Output<C, R, M> {
    /// Chains.
    pub chains: C,
    /// Rules.
    pub rules: R,
    /// Matches.
    pub matches: M,
}

impl<C: Store<CChain>, R: Store<CRule>, M: Store<CMatch>> Output<C, R, M> {
    /// The ruleset view over these arrays.
    pub fn ruleset(&self, header: RulesetHeader) -> Ruleset<'_> {
        Ruleset {
            header,
            chains: self.chains.as_slice(),
            rules: self.rules.as_slice(),
            matches: self.matches.as_slice(),
            index: super::index::Index::default(),
            delta: Delta::default(),
        }
    }
}

