// SPDX-License-Identifier: GPL-2.0

//! Compiling one table's chains and [`RuleSpec`]s into the flat form the packet path walks.
//!
//! The output is three arrays the caller owns (through the [`Store`] trait, so the kernel can
//! use its fallible vectors and the host `Vec`): chains ([`CChain`]), rules ([`CRule`], all
//! chains' rules back to back, chain by chain) and matches ([`CMatch`], each rule owning a
//! contiguous range), plus a small [`RulesetHeader`]. [`super::compiled::Ruleset`] is a borrowed view of the
//! four that [`super::eval::evaluate`] takes.
//!
//! Validation follows the kernel's `translate_table` (net/ipv4/netfilter/ip_tables.c):
//!
//! 1. structure: builtin chains exactly the table's hooks, unique chain names, rules grouped by
//!    chain, jump and goto targets resolved to user chains;
//! 2. `mark_source_chains`: a walk from every builtin chain that records, per chain and rule,
//!    from which hooks it can be reached (it stops at an unconditional ACCEPT, DROP or RETURN,
//!    as the kernel does) and fails on a loop through jumps or gotos;
//! 3. `find_check_entry` for every rule, reachable or not, in order: per match the protocol
//!    restriction, the hook restriction (against the reachability of step 2) and the match's
//!    own check; then the target's table, hook and protocol restrictions and its own check.
//!
//! Counters are not part of the compiled form. Rule `i` (its index in the rules array, which is
//! also its position in the input) counts into counter `i`; the policy of the builtin chain of
//! the `k`-th hook of [`TableId::builtin_hooks`] counts into counter `rule_count + k`
//! ([`CChain::policy_counter`]). [`RulesetHeader::counter_count`] is the total.
//!
//! State of `limit` and `statistic --mode nth` matches lives outside the ruleset too, in an
//! array of [`RulesetHeader::state_count`] slots the caller owns and initialises from
//! [`super::compiled::Ruleset::state_slots`].

use core::fmt;

use super::compiled::{
    hook_bit, CChain, CLog, CMatch, CNflog, CRule, CTarget, CTcp, CUdp, OutOfMemory, Output, RulesetHeader, Store,
    LOG_PREFIX_BYTES, MAX_JUMP_DEPTH,
};
use super::eval;
use super::super::hooks::{HookPoint, NUM_HOOK_POINTS};
use super::rule::{
    Ipv4Net, Match, NatKind, Policy, PortMatch, PortRange, RejectWith, RuleSpec, StatisticMatch, TableId, Target, EcnMatch, TosMatch, TtlMode, MAX_CHAIN_NAME, MAX_LOG_PREFIX, MAX_MULTIPORT,
};


/// Protocol numbers the multiport match accepts besides TCP and UDP.
const IPPROTO_DCCP: u8 = 33;
const IPPROTO_SCTP: u8 = 132;
const IPPROTO_UDPLITE: u8 = 136;

const NO_CHAIN: u32 = u32::MAX;

/// IPsec's protocol numbers (`-m esp`, `-m ah`).
const IPPROTO_ESP: u8 = 50;
const IPPROTO_AH: u8 = 51;

/// Hooks `-m mac` may be used from (`mac_mt_reg.hooks`): where the packet has come in.
pub const MAC_HOOKS: u8 = hook_bit(HookPoint::PreRouting) | hook_bit(HookPoint::LocalIn) | hook_bit(HookPoint::Forward);

/// Hooks `-m owner` may be used from (`owner_mt_reg.hooks`): where local packets go out.
pub const OWNER_HOOKS: u8 = hook_bit(HookPoint::LocalOut) | hook_bit(HookPoint::PostRouting);

/// Hooks CLASSIFY may be used from (`classify_tg_reg.hooks`): where the packet goes out.
pub const CLASSIFY_HOOKS: u8 =
    hook_bit(HookPoint::LocalOut) | hook_bit(HookPoint::Forward) | hook_bit(HookPoint::PostRouting);

/// Hooks REJECT may be used from (`reject_tg_reg.hooks` in ipt_REJECT.c).
pub const REJECT_HOOKS: u8 =
    hook_bit(HookPoint::LocalIn) | hook_bit(HookPoint::Forward) | hook_bit(HookPoint::LocalOut);

/// One chain of the input: its name and, for a builtin chain, its policy.
///
/// A chain with a policy is builtin, and its name must be the name of one of the table's hooks
/// ("PREROUTING", "INPUT", ...). A chain without one is a user chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainDef<'a> {
    /// The chain's name.
    pub name: &'a str,
    /// `Some` for a builtin chain.
    pub policy: Option<Policy>,
}

/// A chain name held by value (for error messages), at most [`MAX_CHAIN_NAME`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChainName {
    bytes: [u8; MAX_CHAIN_NAME],
    len: u8,
}

impl ChainName {
    /// Copies `s`, cut at [`MAX_CHAIN_NAME`] bytes (on a character boundary).
    pub fn new(s: &str) -> Self {
        let mut cut = s.len().min(MAX_CHAIN_NAME);
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut bytes = [0u8; MAX_CHAIN_NAME];
        let src = s.as_bytes().get(..cut).unwrap_or(&[]);
        if let Some(dst) = bytes.get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        Self { bytes, len: cut as u8 }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(b).unwrap_or("")
    }
}

impl fmt::Debug for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule is: its chain, its 1-based number in that chain (as `iptables -L
/// --line-numbers` shows it) and its index in the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePos {
    /// The chain.
    pub chain: ChainName,
    /// 1-based rule number within the chain.
    pub rule: u32,
    /// 0-based index among all rules of the table (also its counter index).
    pub index: u32,
}

impl fmt::Display for RulePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain `{}' rule {}", self.chain, self.rule)
    }
}

/// Why a table could not be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileError {
    /// A [`Store`] could not grow.
    OutOfMemory,
    /// A [`Store`] handed to [`compile`] was not empty.
    StoreNotEmpty,
    /// More chains than fit the `u32` numbering.
    TooManyChains,
    /// More rules than fit the `u32` numbering (counters included).
    TooManyRules,
    /// More matches than fit the `u32` numbering.
    TooManyMatches,
    /// Two chains share a name.
    DuplicateChain {
        /// The name.
        name: ChainName,
    },
    /// A user chain's name is not valid ([`super::rule::valid_chain_name`]).
    InvalidChainName {
        /// The name.
        name: ChainName,
    },
    /// A chain has a policy but is not a builtin chain of this table.
    NotBuiltin {
        /// The chain.
        name: ChainName,
        /// The table.
        table: TableId,
    },
    /// A builtin chain of the table was given without a policy.
    MissingPolicy {
        /// The chain.
        name: ChainName,
    },
    /// The table's builtin chain for this hook is missing.
    MissingBuiltin {
        /// The hook.
        hook: HookPoint,
        /// The table.
        table: TableId,
    },
    /// A rule names a chain index that does not exist.
    BadChainIndex {
        /// Index of the rule in the input.
        index: u32,
        /// The chain index it gave.
        chain: u32,
    },
    /// Rules must come grouped by chain, in chain order; this one comes after a later chain's.
    RulesOutOfOrder {
        /// Index of the rule in the input.
        index: u32,
    },
    /// A jump or goto to a chain that does not exist.
    UnknownChain {
        /// The rule.
        at: RulePos,
        /// The name it jumps to.
        target: ChainName,
    },
    /// A jump or goto to a builtin chain (iptables allows only user chains as targets).
    JumpToBuiltin {
        /// The rule.
        at: RulePos,
        /// The builtin chain.
        target: ChainName,
    },
    /// Jumps and gotos form a loop; `at` is the jump that closes it.
    Loop {
        /// The rule.
        at: RulePos,
        /// The chain it jumps to, which is already being walked.
        target: ChainName,
    },
    /// A builtin chain needs more nested jumps than [`MAX_JUMP_DEPTH`].
    TooDeep {
        /// The builtin chain.
        chain: ChainName,
        /// The depth it needs.
        depth: u32,
    },
    /// A match is only valid for one protocol and the rule does not say `-p` that protocol
    /// (or negates it).
    MatchProto {
        /// The rule.
        at: RulePos,
        /// The match.
        name: &'static str,
        /// The protocol it needs.
        proto: u8,
    },
    /// `-m multiport` needs `-p tcp|udp|udplite|sctp|dccp`, not negated.
    MultiportProto {
        /// The rule.
        at: RulePos,
    },
    /// `-m multiport` has more than 15 ports (a range counts twice) or a range `a:b` with a > b.
    MultiportPorts {
        /// The rule.
        at: RulePos,
    },
    /// `-m limit` with burst 0 or a rate and burst whose credits overflow.
    LimitRange {
        /// The rule.
        at: RulePos,
        /// `avg` of the limit.
        avg: u32,
        /// `burst` of the limit.
        burst: u32,
    },
    /// `-m statistic --mode nth` with `--packet` not below `--every`.
    NthPacket {
        /// The rule.
        at: RulePos,
        /// `--every` minus one, as stored.
        every: u32,
        /// `--packet`.
        packet: u32,
    },
    /// `-m addrtype --limit-iface-in/out` used where that interface does not exist.
    AddrTypeHooks {
        /// The rule.
        at: RulePos,
        /// The kernel's message.
        msg: &'static str,
    },
    /// A `-m recent` xt_recent's checkentry refuses.
    Recent {
        /// The rule.
        at: RulePos,
        /// What is wrong.
        msg: &'static str,
    },
    /// `-m addrtype` with both `--limit-iface-in` and `--limit-iface-out`.
    AddrTypeBothIfaces {
        /// The rule.
        at: RulePos,
    },
    /// `-j TTL --ttl-inc 0` or `--ttl-dec 0`.
    TtlZero {
        /// The rule.
        at: RulePos,
    },
    /// A target only valid in another table.
    TargetTable {
        /// The rule.
        at: RulePos,
        /// The target.
        target: &'static str,
        /// The table it is valid in.
        valid: TableId,
        /// The table it was used in.
        table: TableId,
    },
    /// A target only valid for one protocol.
    TargetProto {
        /// The rule.
        at: RulePos,
        /// The target.
        target: &'static str,
        /// The protocol it needs.
        proto: u8,
    },
    /// TCPMSS in a rule without a `tcp` match for SYN.
    TcpMssSyn {
        /// The rule.
        at: RulePos,
    },
    /// A match reachable from a hook it may not be used from.
    MatchHooks {
        /// The rule.
        at: RulePos,
        /// The match.
        name: &'static str,
        /// Hooks it is reachable from (bit mask, [`hook_bit`]).
        used: u8,
        /// Hooks it may be used from.
        allowed: u8,
    },
    /// A target reachable from a hook it may not be used from.
    TargetHooks {
        /// The rule.
        at: RulePos,
        /// The target.
        target: &'static str,
        /// Hooks it is reachable from (bit mask, [`hook_bit`]).
        used: u8,
        /// Hooks it may be used from.
        allowed: u8,
    },
    /// `-j REJECT --reject-with tcp-reset` in a rule that is not `-p tcp`.
    TcpResetNonTcp {
        /// The rule.
        at: RulePos,
    },
    /// `-j LOG --log-level` above 7.
    LogLevel {
        /// The rule.
        at: RulePos,
        /// The level.
        level: u8,
    },
    /// `-j NFQUEUE` with no queue, a last queue past 65535 or unknown flags.
    Nfqueue {
        /// The rule.
        at: RulePos,
    },
    /// `-j NFLOG --nflog-prefix` longer than 63 bytes.
    NflogPrefix {
        /// The rule.
        at: RulePos,
        /// Its length.
        len: usize,
    },
    /// `-j LOG --log-prefix` longer than 29 bytes.
    LogPrefix {
        /// The rule.
        at: RulePos,
        /// Its length.
        len: usize,
    },
}

/// Writes hook names joined by `/`, as the kernel's `textify_hooks`.
struct HookNames(u8);

impl fmt::Display for HookNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for h in HookPoint::ALL {
            if self.0 & hook_bit(h) != 0 {
                if !first {
                    f.write_str("/")?;
                }
                f.write_str(h.chain_name())?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CompileError::*;
        match self {
            OutOfMemory => f.write_str("out of memory while compiling the ruleset"),
            StoreNotEmpty => f.write_str("internal error: compile output not empty"),
            TooManyChains => f.write_str("too many chains"),
            TooManyRules => f.write_str("too many rules"),
            TooManyMatches => f.write_str("too many matches"),
            DuplicateChain { name } => write!(f, "chain `{name}' defined twice"),
            InvalidChainName { name } => write!(f, "invalid chain name `{name}'"),
            NotBuiltin { name, table } => {
                write!(f, "chain `{name}' has a policy but is not a builtin chain of table `{}'", table.name())
            }
            MissingPolicy { name } => write!(f, "builtin chain `{name}' has no policy"),
            MissingBuiltin { hook, table } => {
                write!(f, "table `{}' lacks its builtin chain `{}'", table.name(), hook.chain_name())
            }
            BadChainIndex { index, chain } => {
                write!(f, "rule {index}: chain index {chain} does not exist")
            }
            RulesOutOfOrder { index } => {
                write!(f, "rule {index}: rules are not grouped by chain in chain order")
            }
            UnknownChain { at, target } => write!(f, "{at}: jump to unknown chain `{target}'"),
            JumpToBuiltin { at, target } => {
                write!(f, "{at}: cannot jump to builtin chain `{target}'")
            }
            Loop { at, target } => {
                write!(f, "{at}: jump to `{target}' makes a loop (too many levels of links)")
            }
            TooDeep { chain, depth } => write!(
                f,
                "chain `{chain}': jumps nest {depth} deep, more than the {MAX_JUMP_DEPTH} supported"
            ),
            MatchProto { at, name, proto } => {
                write!(f, "{at}: {name} match: only valid for protocol {proto}")
            }
            MultiportProto { at } => write!(
                f,
                "{at}: multiport match: needs `-p tcp', `udp', `udplite', `sctp' or `dccp' (not negated)"
            ),
            MultiportPorts { at } => write!(
                f,
                "{at}: multiport match: more than {MAX_MULTIPORT} ports (a range counts as two) or a range with start > end"
            ),
            LimitRange { at, avg, burst } => {
                write!(f, "{at}: limit match: overflow, try lower: {avg}/{burst}")
            }
            NthPacket { at, every, packet } => write!(
                f,
                "{at}: statistic match: --packet {packet} must be 0 <= p <= n-1 (n = {})",
                u64::from(*every) + 1
            ),
            AddrTypeHooks { at, msg } => write!(f, "{at}: addrtype match: {msg}"),
            Recent { at, msg } => write!(f, "{at}: recent match: {msg}"),
            AddrTypeBothIfaces { at } => write!(
                f,
                "{at}: addrtype match: both incoming and outgoing interface limitation cannot be selected"
            ),
            TtlZero { at } => write!(f, "{at}: TTL target: increment/decrement not allowed with 0"),
            TargetTable { at, target, valid, table } => write!(
                f,
                "{at}: {target} target: only valid in {} table, not {}",
                valid.name(),
                table.name()
            ),
            TargetHooks { at, target, used, allowed } => write!(
                f,
                "{at}: {target} target: used from hooks {}, but only usable from {}",
                HookNames(*used),
                HookNames(*allowed)
            ),
            TargetProto { at, target, proto } => {
                write!(f, "{at}: {target} target: only valid for protocol {proto}")
            }
            TcpMssSyn { at } => write!(
                f,
                "{at}: TCPMSS target: only works on TCP SYN packets (needs `-p tcp --tcp-flags ... SYN' or `--syn')"
            ),
            MatchHooks { at, name, used, allowed } => write!(
                f,
                "{at}: {name} match: used from hooks {}, but only valid from {}",
                HookNames(*used),
                HookNames(*allowed)
            ),
            TcpResetNonTcp { at } => {
                write!(f, "{at}: REJECT target: tcp-reset is only valid with `-p tcp'")
            }
            LogLevel { at, level } => write!(f, "{at}: LOG target: level {level} >= 8"),
            Nfqueue { at } => write!(f, "{at}: NFQUEUE target: no queue, or queues past 65535"),
            NflogPrefix { at, len } => write!(
                f,
                "{at}: NFLOG target: prefix is {len} bytes, at most {} allowed",
                super::rule::MAX_NFLOG_PREFIX
            ),
            LogPrefix { at, len } => write!(
                f,
                "{at}: LOG target: prefix is {len} bytes, at most {MAX_LOG_PREFIX} allowed"
            ),
        }
    }
}

impl CompileError {
    /// The (positive) errno the kernel's iptables returns for this kind of error: `ELOOP`
    /// for loops, `ERANGE` for limit overflow, `ENOENT` for a jump to a missing chain (what
    /// libiptc reports), `ENOMEM`, otherwise `EINVAL`.
    pub fn errno(&self) -> i32 {
        match self {
            CompileError::OutOfMemory => 12,
            CompileError::UnknownChain { .. } => 2,
            CompileError::Loop { .. } => 40,
            CompileError::LimitRange { .. } => 34,
            _ => 22,
        }
    }
}

/// [`compile`]'s error: the caller's rule source failed, or the ruleset is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileFailure<E> {
    /// The rule iterator returned an error for the rule at this index.
    Decode {
        /// Index of the rule in the input.
        index: u32,
        /// The iterator's error.
        error: E,
    },
    /// The ruleset is invalid.
    Invalid(CompileError),
}

impl From<OutOfMemory> for CompileError {
    fn from(_: OutOfMemory) -> Self {
        CompileError::OutOfMemory
    }
}

impl<E> From<OutOfMemory> for CompileFailure<E> {
    fn from(_: OutOfMemory) -> Self {
        CompileFailure::Invalid(CompileError::OutOfMemory)
    }
}

impl<E> From<CompileError> for CompileFailure<E> {
    fn from(e: CompileError) -> Self {
        CompileFailure::Invalid(e)
    }
}

impl<E: fmt::Display> fmt::Display for CompileFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileFailure::Decode { index, error } => write!(f, "rule {index}: {error}"),
            CompileFailure::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}


/// A rule for [`compile`]: its specification, or its compiled form from an earlier compile of
/// the same table (a rule a change keeps, neither decoded nor translated again: only its place,
/// its state slots and its jump target are set anew).
#[derive(Debug, Clone, Copy)]
pub enum RuleIn<'r> {
    /// A rule to translate.
    Spec(RuleSpec<'r>),
    /// A rule compiled before (and checked then: a `recent` match's name and `--mask` are not
    /// in the compiled form, so a caller that finds lists by name passes such rules as
    /// specifications).
    Compiled {
        /// The rule (its place, matches' range, chain and reachability are ignored).
        rule: CRule,
        /// Its matches (their state slots are numbered anew).
        matches: &'r [CMatch],
        /// The name of the chain a `Jump` or `Goto` target goes to (its index is looked up
        /// again: chain indices change with the chains).
        target: Option<&'r str>,
    },
}

impl<'r> From<RuleSpec<'r>> for RuleIn<'r> {
    fn from(s: RuleSpec<'r>) -> Self {
        RuleIn::Spec(s)
    }
}

/// Compiles one table.
///
/// * `chains`: every chain of the table, builtin ones with their policy (in any order, the
///   order defines the chain indices);
/// * `rules`: `(chain index, rule)` for every rule, grouped by chain in chain-index order, in
///   rule order within a chain. The position in this sequence is the rule's index and its
///   counter index. Strings are copied; the rules may be decoded one at a time. A rule is a
///   [`RuleSpec`] or a [`RuleIn`] (which may be a rule compiled before: the same result as its
///   specification, at the cost of a copy).
/// * `hz`: the kernel's `HZ`, which the `limit` match's overflow check depends on;
/// * `out`: empty stores for the result.
#[inline(never)]
pub fn compile<'r, E, C, R, M, X>(
    table: TableId,
    chains: &[ChainDef<'_>],
    rules: impl IntoIterator<Item = Result<(u32, X), E>>,
    hz: u32,
    out: &mut Output<C, R, M>,
) -> Result<RulesetHeader, CompileFailure<E>>
where
    C: Store<CChain>,
    R: Store<CRule>,
    M: Store<CMatch>,
    X: Into<RuleIn<'r>>,
{
    if !out.chains.as_slice().is_empty()
        || !out.rules.as_slice().is_empty()
        || !out.matches.as_slice().is_empty()
    {
        return Err(CompileError::StoreNotEmpty.into());
    }
    let chain_count = u32::try_from(chains.len()).map_err(|_| CompileError::TooManyChains)?;
    if chain_count == NO_CHAIN {
        return Err(CompileError::TooManyChains.into());
    }

    // Chains: builtin or user, names, the name index.
    let mut hook_entry = [None; NUM_HOOK_POINTS];
    for (i, def) in chains.iter().enumerate() {
        let idx = i as u32; // < chain_count
        let builtin_hook =
            table.builtin_hooks().iter().copied().find(|h| h.chain_name() == def.name);
        let hook = match (def.policy, builtin_hook) {
            (Some(_), Some(h)) => Some(h),
            (Some(_), None) => {
                return Err(
                    CompileError::NotBuiltin { name: ChainName::new(def.name), table }.into()
                )
            }
            (None, Some(_)) => {
                return Err(CompileError::MissingPolicy { name: ChainName::new(def.name) }.into())
            }
            (None, None) => {
                // The kernel takes any name that fits (`iptables -E X 'a b'` works); the stricter
                // rules for new names are the command line's (`-N`).
                if def.name.is_empty() || def.name.len() > MAX_CHAIN_NAME {
                    return Err(
                        CompileError::InvalidChainName { name: ChainName::new(def.name) }.into()
                    );
                }
                None
            }
        };
        if let Some(h) = hook {
            if let Some(slot) = hook_entry.get_mut(h as usize) {
                if slot.is_some() {
                    return Err(
                        CompileError::DuplicateChain { name: ChainName::new(def.name) }.into()
                    );
                }
                *slot = Some(idx);
            }
        }
        out.chains.push(CChain {
            first: 0,
            count: 0,
            policy: def.policy,
            hook,
            policy_counter: u32::MAX,
            hook_mask: 0,
            depth: 0,
            by_name: idx,
            parent: NO_CHAIN,
            cursor: 0,
            on_path: false,
        })?;
    }
    for &h in table.builtin_hooks() {
        if hook_entry.get(h as usize).copied().flatten().is_none() {
            return Err(CompileError::MissingBuiltin { hook: h, table }.into());
        }
    }
    sort_by_name(out.chains.as_mut_slice(), chains);
    {
        let cc = out.chains.as_slice();
        for i in 1..cc.len() {
            let a = name_at(cc, chains, i - 1);
            if a == name_at(cc, chains, i) {
                return Err(CompileError::DuplicateChain { name: ChainName::new(a) }.into());
            }
        }
    }

    // Rules and matches.
    let mut last_chain = 0u32;
    let mut rule_count = 0u32;
    let mut state_count = 0u32;
    for item in rules {
        let index = rule_count;
        let (chain, input) = match item {
            Ok((c, x)) => (c, x.into()),
            Err(error) => return Err(CompileFailure::Decode { index, error }),
        };
        if chain >= chain_count {
            return Err(CompileError::BadChainIndex { index, chain }.into());
        }
        if chain < last_chain {
            return Err(CompileError::RulesOutOfOrder { index }.into());
        }
        last_chain = chain;
        let number = {
            let c = out
                .chains
                .as_mut_slice()
                .get_mut(chain as usize)
                .ok_or(CompileError::BadChainIndex { index, chain })?;
            c.count = c.count.checked_add(1).ok_or(CompileError::TooManyRules)?;
            c.count
        };
        let at = || RulePos { chain: chain_name(chains, chain), rule: number, index };

        let mut next_state = || -> Result<u32, CompileError> {
            let s = state_count;
            state_count = state_count.checked_add(1).ok_or(CompileError::TooManyMatches)?;
            Ok(s)
        };
        let mut jump = |name: &str| user_chain(out.chains.as_slice(), chains, name, at);
        let rule = translate(&input, chain, &mut out.matches, &mut next_state, &mut jump, &at)?;
        out.rules.push(rule)?;
        rule_count = rule_count.checked_add(1).ok_or(CompileError::TooManyRules)?;
    }

    // Chain layout and policy counters.
    let builtins = table.builtin_hooks().len() as u32;
    let counter_count = rule_count.checked_add(builtins).ok_or(CompileError::TooManyRules)?;
    let mut next = 0u32;
    for c in out.chains.as_mut_slice() {
        c.first = next;
        next = next.checked_add(c.count).ok_or(CompileError::TooManyRules)?;
        if let Some(h) = c.hook {
            let k = table.builtin_hooks().iter().position(|&b| b == h).unwrap_or(0) as u32;
            c.policy_counter = rule_count.wrapping_add(k);
        }
    }

    // mark_source_chains.
    for h in HookPoint::ALL {
        if let Some(entry) = hook_entry.get(h as usize).copied().flatten() {
            mark_source_chains(
                out.chains.as_mut_slice(),
                out.rules.as_mut_slice(),
                chains,
                h,
                entry,
            )?;
        }
    }

    // find_check_entry, rule by rule.
    let cc = out.chains.as_slice();
    let matches = out.matches.as_slice();
    for (i, r) in out.rules.as_slice().iter().enumerate() {
        check_rule(table, cc, chains, matches, r, i as u32, hz)?;
    }

    for h in HookPoint::ALL {
        if let Some(entry) = hook_entry.get(h as usize).copied().flatten() {
            if let Some(c) = cc.get(entry as usize) {
                if c.depth as usize > MAX_JUMP_DEPTH {
                    return Err(CompileError::TooDeep {
                        chain: chain_name(chains, entry),
                        depth: c.depth,
                    }
                    .into());
                }
            }
        }
    }

    // Rules that look at connections, and the nat table, which works on them (iptable_nat
    // needs nf_conntrack: a flow's first packet meets its rules, the flow's binding does the
    // rest).
    let uses_conntrack = table == TableId::Nat
        || out.matches.as_slice().iter().any(CMatch::uses_conntrack)
        || out.rules.as_slice().iter().any(|r| r.target.uses_conntrack());
    Ok(RulesetHeader { table, hook_entry, chain_count, rule_count, counter_count, state_count, uses_conntrack })
}

/// A rule in compiled form, of chain `chain`: its matches appended to `matches` (stateful ones
/// numbered by `next_state`), a jump's target found by `jump` (by name), its place, chain and
/// reachability left for the caller (`match_start` is where its matches start in `matches`,
/// `hook_mask` is 0). `at` names the rule in errors.
#[inline(never)]
pub(crate) fn translate<M: Store<CMatch>>(
    input: &RuleIn<'_>,
    chain: u32,
    matches: &mut M,
    next_state: &mut impl FnMut() -> Result<u32, CompileError>,
    jump: &mut impl FnMut(&str) -> Result<u32, CompileError>,
    at: &impl Fn() -> RulePos,
) -> Result<CRule, CompileError> {
    let match_start = u32::try_from(matches.as_slice().len()).map_err(|_| CompileError::TooManyMatches)?;
    let mut match_count = 0u32;
    // (By reference: a rule specification is large, and the kernel's stack is small.)
    let spec = match input {
        RuleIn::Spec(spec) => spec,
        &RuleIn::Compiled { rule, matches: ms, target } => {
            for m in ms {
                let m = match m.state() {
                    Some(_) => m.with_state(next_state()?),
                    None => *m,
                };
                matches.push(m)?;
                match_count = match_count.checked_add(1).ok_or(CompileError::TooManyMatches)?;
            }
            match_start.checked_add(match_count).ok_or(CompileError::TooManyMatches)?;
            let resolved = match rule.target {
                CTarget::Jump(_) | CTarget::Goto(_) => {
                    let t = jump(target.unwrap_or(""))?;
                    if matches!(rule.target, CTarget::Jump(_)) {
                        CTarget::Jump(t)
                    } else {
                        CTarget::Goto(t)
                    }
                }
                t => t,
            };
            return Ok(CRule { match_start, match_count, target: resolved, chain, hook_mask: 0, ..rule });
        }
    };
    for m in spec.matches() {
        let cm = match *m {
            Match::Comment(_) => continue,
            Match::Tcp(t) => CMatch::Tcp(CTcp {
                sport: t.sport.unwrap_or(ANY_PORT),
                dport: t.dport.unwrap_or(ANY_PORT),
                flags_mask: t.flags.map_or(0, |f| f.mask),
                flags_comp: t.flags.map_or(0, |f| f.comp),
                flags_invert: t.flags.is_some_and(|f| f.invert),
                option: t.option.map_or(0, |o| o.0),
                option_invert: t.option.is_some_and(|o| o.1),
            }),
            Match::Udp(u) => CMatch::Udp(CUdp {
                sport: u.sport.unwrap_or(ANY_PORT),
                dport: u.dport.unwrap_or(ANY_PORT),
            }),
            Match::Icmp(i) => CMatch::Icmp(i),
            Match::Multiport(mp) => CMatch::Multiport(mp),
            Match::Mark(mk) => CMatch::Mark(mk),
            Match::Statistic(StatisticMatch::Random { probability, invert }) => CMatch::Random { probability, invert },
            Match::Statistic(StatisticMatch::Nth { every, packet, invert }) => CMatch::Nth { state: next_state()?, every, packet, invert },
            Match::Limit(limit) => CMatch::Limit { state: next_state()?, limit },
            Match::IpRange(r) => CMatch::IpRange(r),
            Match::Length(l) => CMatch::Length(l),
            Match::AddrType(a) => CMatch::AddrType(a),
            Match::Ttl(t) => CMatch::Ttl(t),
            Match::Conntrack(c) => CMatch::Conntrack(c),
            Match::State(s) => CMatch::State(s.states),
            Match::Connmark(mk) => CMatch::Connmark(mk),
            Match::Connbytes(c) => CMatch::Connbytes(c),
            Match::Connlimit(m) => CMatch::Connlimit { state: next_state()?, m },
            Match::Tos(t) => CMatch::Tos(t),
            // xt_dscp: the codepoint is the TOS byte's upper six bits.
            Match::Dscp(d) => CMatch::Tos(TosMatch { value: d.dscp << 2, mask: 0xFC, invert: d.invert }),
            Match::Ecn(e) => CMatch::Ecn(e),
            Match::Esp(m) => CMatch::Esp(m),
            Match::Ah(m) => CMatch::Ah(m),
            Match::PktType(m) => CMatch::PktType(m),
            Match::Mac(m) => CMatch::Mac(m),
            Match::TcpMss(m) => CMatch::TcpMss(m),
            Match::Owner(m) => CMatch::Owner(m),
            Match::Quota(q) => CMatch::Quota { state: next_state()?, quota: q.quota, invert: q.invert },
            Match::Recent(rc) => {
                if let Err(msg) = super::recent::check(&rc) {
                    return Err(CompileError::Recent { at: at(), msg });
                }
                CMatch::Recent {
                    state: next_state()?,
                    check_set: rc.check_set,
                    invert: rc.invert,
                    dest: rc.dest,
                    seconds: rc.seconds,
                    hit_count: rc.hit_count,
                }
            }
        };
        matches.push(cm)?;
        match_count = match_count.checked_add(1).ok_or(CompileError::TooManyMatches)?;
    }
    if let Target::Nflog(n) = spec.target {
        let p = n.prefix.as_bytes();
        if p.len() > super::rule::MAX_NFLOG_PREFIX {
            return Err(CompileError::NflogPrefix { at: at(), len: p.len() });
        }
        if !p.is_empty() {
            let mut buf = [0u8; super::compiled::NFLOG_PREFIX_BYTES];
            if let Some(dst) = buf.get_mut(..p.len()) {
                dst.copy_from_slice(p);
            }
            matches.push(CMatch::LogPrefix { buf, len: p.len() as u8 })?;
            match_count = match_count.checked_add(1).ok_or(CompileError::TooManyMatches)?;
        }
    }
    match_start.checked_add(match_count).ok_or(CompileError::TooManyMatches)?;

    let target = match spec.target {
        Target::None => CTarget::None,
        Target::Accept => CTarget::Accept,
        Target::Drop => CTarget::Drop,
        Target::Return => CTarget::Return,
        Target::Jump(name) | Target::Goto(name) => {
            let t = jump(name)?;
            if matches!(spec.target, Target::Jump(_)) {
                CTarget::Jump(t)
            } else {
                CTarget::Goto(t)
            }
        }
        Target::Reject(kind) => CTarget::Reject(kind),
        Target::Log(l) => {
            let p = l.prefix.as_bytes();
            if p.len() > MAX_LOG_PREFIX {
                return Err(CompileError::LogPrefix { at: at(), len: p.len() });
            }
            let mut prefix_buf = [0u8; LOG_PREFIX_BYTES];
            if let Some(dst) = prefix_buf.get_mut(..p.len()) {
                dst.copy_from_slice(p);
            }
            CTarget::Log(CLog { level: l.level, flags: l.flags, prefix_buf, prefix_len: p.len() as u8 })
        }
        Target::Mark { value, mask } => CTarget::Mark { value, mask },
        Target::Ttl { mode, value } => CTarget::Ttl { mode, value },
        Target::Tos { value, mask } => CTarget::Tos { keep: !mask, xor: value, dscp: false },
        // xt_DSCP: the ECN bits stay, the codepoint is replaced.
        Target::Dscp(d) => CTarget::Tos { keep: 0x03, xor: d << 2, dscp: true },
        Target::Classify(p) => CTarget::Classify(p),
        Target::TcpMss(m) => CTarget::TcpMss(m),
        Target::Nfqueue(q) if !q.valid() => return Err(CompileError::Nfqueue { at: at() }),
        Target::Nfqueue(q) => CTarget::Nfqueue(q),
        Target::Nflog(n) => CTarget::Nflog(CNflog { group: n.group, threshold: n.threshold, len: n.len, copy_len: n.copy_len }),
        Target::CtNotrack(_) => CTarget::CtNotrack,
        Target::Ct(c) => CTarget::Ct(c),
        Target::Connmark(c) => CTarget::Connmark(c),
        Target::Nat(n) => CTarget::Nat(n),
    };

    Ok(CRule {
        src: spec.src,
        src_invert: spec.src_invert,
        dst: spec.dst,
        dst_invert: spec.dst_invert,
        in_iface: spec.in_iface,
        in_invert: spec.in_invert,
        out_iface: spec.out_iface,
        out_invert: spec.out_invert,
        proto: spec.proto,
        proto_invert: spec.proto_invert,
        fragment: spec.fragment,
        match_start,
        match_count,
        target,
        chain,
        hook_mask: 0,
        unconditional: is_unconditional(&spec),
    })
}

const ANY_PORT: PortMatch = PortMatch { range: PortRange::ALL, invert: false };

/// The index of user chain `name`, the target of a jump or goto of the rule at `at`.
pub(crate) fn user_chain(cc: &[CChain], defs: &[ChainDef<'_>], name: &str, at: impl Fn() -> RulePos) -> Result<u32, CompileError> {
    let t = find_chain(cc, defs, name).ok_or_else(|| CompileError::UnknownChain { at: at(), target: ChainName::new(name) })?;
    if defs.get(t as usize).is_some_and(|d| d.policy.is_some()) {
        return Err(CompileError::JumpToBuiltin { at: at(), target: ChainName::new(name) });
    }
    Ok(t)
}

/// The kernel's `unconditional()`: an all-zero `struct ipt_ip` and no matches.
fn is_unconditional(s: &RuleSpec<'_>) -> bool {
    s.src == Ipv4Net::ANY
        && !s.src_invert
        && s.dst == Ipv4Net::ANY
        && !s.dst_invert
        && s.in_iface.is_any()
        && !s.in_invert
        && s.out_iface.is_any()
        && !s.out_invert
        && s.proto == 0
        && !s.proto_invert
        && s.fragment.is_none()
        && s.matches().next().is_none()
}

fn chain_name(defs: &[ChainDef<'_>], chain: u32) -> ChainName {
    ChainName::new(defs.get(chain as usize).map_or("", |d| d.name))
}

/// The position of a rule, from its index.
fn rule_pos(cc: &[CChain], defs: &[ChainDef<'_>], r: &CRule, index: u32) -> RulePos {
    let first = cc.get(r.chain as usize).map_or(0, |c| c.first);
    RulePos {
        chain: chain_name(defs, r.chain),
        rule: index.wrapping_sub(first).wrapping_add(1),
        index,
    }
}

/// The name of the chain at position `i` of the name order.
fn name_at<'d>(cc: &[CChain], defs: &'d [ChainDef<'_>], i: usize) -> &'d str {
    cc.get(i).and_then(|c| defs.get(c.by_name as usize)).map_or("", |d| d.name)
}

fn swap_by_name(cc: &mut [CChain], a: usize, b: usize) {
    let (Some(x), Some(y)) = (cc.get(a).map(|c| c.by_name), cc.get(b).map(|c| c.by_name)) else {
        return;
    };
    if let Some(c) = cc.get_mut(a) {
        c.by_name = y;
    }
    if let Some(c) = cc.get_mut(b) {
        c.by_name = x;
    }
}

fn sift_down(cc: &mut [CChain], defs: &[ChainDef<'_>], mut root: usize, end: usize) {
    loop {
        let Some(mut child) = root.checked_mul(2).and_then(|x| x.checked_add(1)) else { return };
        if child >= end {
            return;
        }
        let right = child.wrapping_add(1);
        if right < end && name_at(cc, defs, child) < name_at(cc, defs, right) {
            child = right;
        }
        if name_at(cc, defs, root) < name_at(cc, defs, child) {
            swap_by_name(cc, root, child);
            root = child;
        } else {
            return;
        }
    }
}

/// Heap-sorts the `by_name` permutation by chain name (no allocation, O(n log n)).
fn sort_by_name(cc: &mut [CChain], defs: &[ChainDef<'_>]) {
    let n = cc.len();
    for start in (0..n / 2).rev() {
        sift_down(cc, defs, start, n);
    }
    for end in (1..n).rev() {
        swap_by_name(cc, 0, end);
        sift_down(cc, defs, 0, end);
    }
}

/// The index of the chain called `name` (binary search over the name order).
fn find_chain(cc: &[CChain], defs: &[ChainDef<'_>], name: &str) -> Option<u32> {
    let (mut lo, mut hi) = (0usize, cc.len());
    while lo < hi {
        // lo < hi <= len: neither sum can overflow.
        let mid = lo.wrapping_add((hi - lo) / 2);
        match name_at(cc, defs, mid).cmp(name) {
            core::cmp::Ordering::Less => lo = mid.wrapping_add(1),
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return cc.get(mid).map(|c| c.by_name),
        }
    }
    None
}

/// The kernel's `mark_source_chains` for one hook, without recursion: walks from the hook's
/// builtin chain, following jumps and gotos, ORs the hook's bit into the `hook_mask` of every
/// chain and rule it reaches, computes each chain's jump depth, and fails on a loop. The walk
/// in a chain stops at an unconditional ACCEPT, DROP or RETURN and at a chain already walked
/// for this hook.
fn mark_source_chains(
    cc: &mut [CChain],
    rules: &mut [CRule],
    defs: &[ChainDef<'_>],
    hook: HookPoint,
    entry: u32,
) -> Result<(), CompileError> {
    let bit = hook_bit(hook);
    let mut cur = entry;
    enter(cc, cur, NO_CHAIN, bit);
    loop {
        let Some(&c) = cc.get(cur as usize) else { return Ok(()) };
        let end = c.first.saturating_add(c.count);
        let mut finished = c.cursor >= end;
        if !finished {
            let pos = c.cursor;
            let Some(r) = rules.get_mut(pos as usize) else { return Ok(()) };
            r.hook_mask |= bit;
            let r = *r;
            match r.target {
                CTarget::Accept | CTarget::Drop | CTarget::Return if r.unconditional => {
                    finished = true;
                }
                CTarget::Jump(t) | CTarget::Goto(t) => {
                    let Some(&tc) = cc.get(t as usize) else { return Ok(()) };
                    if tc.on_path {
                        return Err(CompileError::Loop {
                            at: rule_pos(cc, defs, &r, pos),
                            target: chain_name(defs, t),
                        });
                    }
                    if tc.hook_mask & bit != 0 {
                        // Already walked for this hook: its depth is final.
                        let add = u32::from(matches!(r.target, CTarget::Jump(_)));
                        if let Some(cm) = cc.get_mut(cur as usize) {
                            cm.depth = cm.depth.max(tc.depth.saturating_add(add));
                            cm.cursor = pos.saturating_add(1);
                        }
                    } else {
                        // Descend; `cursor` stays on the jump until the target is done.
                        enter(cc, t, cur, bit);
                        cur = t;
                    }
                }
                _ => {
                    if let Some(cm) = cc.get_mut(cur as usize) {
                        cm.cursor = pos.saturating_add(1);
                    }
                }
            }
        }
        if finished {
            let Some(cm) = cc.get_mut(cur as usize) else { return Ok(()) };
            cm.on_path = false;
            let (parent, depth) = (cm.parent, cm.depth);
            if parent == NO_CHAIN {
                return Ok(());
            }
            let Some(pc) = cc.get_mut(parent as usize) else { return Ok(()) };
            let add = rules
                .get(pc.cursor as usize)
                .map_or(0, |r| u32::from(matches!(r.target, CTarget::Jump(_))));
            pc.depth = pc.depth.max(depth.saturating_add(add));
            pc.cursor = pc.cursor.saturating_add(1);
            cur = parent;
        }
    }
}

fn enter(cc: &mut [CChain], chain: u32, parent: u32, bit: u8) {
    if let Some(c) = cc.get_mut(chain as usize) {
        c.hook_mask |= bit;
        c.on_path = true;
        c.parent = parent;
        c.cursor = c.first;
        c.depth = 0;
    }
}

/// The kernel's `find_check_entry` for one rule.
pub(crate) fn check_rule(
    table: TableId,
    cc: &[CChain],
    defs: &[ChainDef<'_>],
    matches: &[CMatch],
    r: &CRule,
    index: u32,
    hz: u32,
) -> Result<(), CompileError> {
    let at = || rule_pos(cc, defs, r, index);
    let proto_is = |p: u8| r.proto == p && !r.proto_invert;
    let start = r.match_start as usize;
    let ms = matches.get(start..start.saturating_add(r.match_count as usize)).unwrap_or(&[]);
    for m in ms {
        match m {
            CMatch::Tcp(_) if !proto_is(super::super::packet::IPPROTO_TCP) => {
                return Err(CompileError::MatchProto { at: at(), name: "tcp", proto: 6 });
            }
            CMatch::Udp(_) if !proto_is(super::super::packet::IPPROTO_UDP) => {
                return Err(CompileError::MatchProto { at: at(), name: "udp", proto: 17 });
            }
            CMatch::Icmp(_) if !proto_is(super::super::packet::IPPROTO_ICMP) => {
                return Err(CompileError::MatchProto { at: at(), name: "icmp", proto: 1 });
            }
            CMatch::TcpMss(_) if !proto_is(super::super::packet::IPPROTO_TCP) => {
                return Err(CompileError::MatchProto { at: at(), name: "tcpmss", proto: 6 });
            }
            // xt_ecn's ecn_mt_check4: the TCP bits need `-p tcp`.
            CMatch::Ecn(e)
                if e.operation & (EcnMatch::ECE | EcnMatch::CWR) != 0
                    && !proto_is(super::super::packet::IPPROTO_TCP) =>
            {
                return Err(CompileError::MatchProto { at: at(), name: "ecn", proto: 6 });
            }
            CMatch::Esp(_) if !proto_is(IPPROTO_ESP) => {
                return Err(CompileError::MatchProto { at: at(), name: "esp", proto: IPPROTO_ESP });
            }
            CMatch::Ah(_) if !proto_is(IPPROTO_AH) => {
                return Err(CompileError::MatchProto { at: at(), name: "ah", proto: IPPROTO_AH });
            }
            CMatch::Owner(_) if r.hook_mask & !OWNER_HOOKS != 0 => {
                return Err(CompileError::MatchHooks { at: at(), name: "owner", used: r.hook_mask, allowed: OWNER_HOOKS });
            }
            CMatch::Mac(_) if r.hook_mask & !MAC_HOOKS != 0 => {
                return Err(CompileError::MatchHooks { at: at(), name: "mac", used: r.hook_mask, allowed: MAC_HOOKS });
            }
            CMatch::Multiport(mp) => {
                let ok_proto = [
                    super::super::packet::IPPROTO_TCP,
                    super::super::packet::IPPROTO_UDP,
                    IPPROTO_UDPLITE,
                    IPPROTO_SCTP,
                    IPPROTO_DCCP,
                ]
                .contains(&r.proto)
                    && !r.proto_invert;
                if !ok_proto {
                    return Err(CompileError::MultiportProto { at: at() });
                }
                if usize::from(mp.count) > MAX_MULTIPORT {
                    return Err(CompileError::MultiportPorts { at: at() });
                }
                let mut slots = 0usize;
                for p in mp.list() {
                    if p.lo > p.hi {
                        return Err(CompileError::MultiportPorts { at: at() });
                    }
                    slots = slots.saturating_add(if p.lo == p.hi { 1 } else { 2 });
                }
                if slots > MAX_MULTIPORT {
                    return Err(CompileError::MultiportPorts { at: at() });
                }
            }
            CMatch::Limit { limit, .. } if !eval::limit_valid(limit, hz) => {
                return Err(CompileError::LimitRange {
                    at: at(),
                    avg: limit.avg,
                    burst: limit.burst,
                });
            }
            CMatch::Nth { every, packet, .. } if packet > every => {
                return Err(CompileError::NthPacket { at: at(), every: *every, packet: *packet });
            }
            CMatch::AddrType(a) => {
                let pre_in = hook_bit(HookPoint::PreRouting) | hook_bit(HookPoint::LocalIn);
                let post_out = hook_bit(HookPoint::PostRouting) | hook_bit(HookPoint::LocalOut);
                if r.hook_mask & pre_in != 0 && a.limit_iface_out {
                    return Err(CompileError::AddrTypeHooks {
                        at: at(),
                        msg: "output interface limitation not valid in PREROUTING and INPUT",
                    });
                }
                if r.hook_mask & post_out != 0 && a.limit_iface_in {
                    return Err(CompileError::AddrTypeHooks {
                        at: at(),
                        msg: "input interface limitation not valid in POSTROUTING and OUTPUT",
                    });
                }
                if a.limit_iface_in && a.limit_iface_out {
                    return Err(CompileError::AddrTypeBothIfaces { at: at() });
                }
            }
            _ => {}
        }
    }
    match r.target {
        CTarget::Reject(kind) => {
            if table != TableId::Filter {
                return Err(CompileError::TargetTable {
                    at: at(),
                    target: "REJECT",
                    valid: TableId::Filter,
                    table,
                });
            }
            if r.hook_mask & !REJECT_HOOKS != 0 {
                return Err(CompileError::TargetHooks {
                    at: at(),
                    target: "REJECT",
                    used: r.hook_mask,
                    allowed: REJECT_HOOKS,
                });
            }
            if kind == RejectWith::TcpReset && !proto_is(super::super::packet::IPPROTO_TCP) {
                return Err(CompileError::TcpResetNonTcp { at: at() });
            }
        }
        CTarget::Log(l) if l.level >= 8 => {
            return Err(CompileError::LogLevel { at: at(), level: l.level });
        }
        CTarget::CtNotrack | CTarget::Ct(_) if table != TableId::Raw => {
            return Err(CompileError::TargetTable { at: at(), target: "CT", valid: TableId::Raw, table });
        }
        CTarget::Nat(n) => {
            if table != TableId::Nat {
                return Err(CompileError::TargetTable { at: at(), target: n.kind.name(), valid: TableId::Nat, table });
            }
            // nf_nat's targets: the destination ones before routing and for local packets,
            // the source ones after routing and for packets to this host; NETMAP both.
            let dst = hook_bit(HookPoint::PreRouting) | hook_bit(HookPoint::LocalOut);
            let src = hook_bit(HookPoint::PostRouting) | hook_bit(HookPoint::LocalIn);
            let allowed = match n.kind {
                NatKind::Dnat | NatKind::Redirect => dst,
                NatKind::Snat => src,
                NatKind::Masquerade => hook_bit(HookPoint::PostRouting),
                NatKind::Netmap => dst | src,
            };
            if r.hook_mask & !allowed != 0 {
                return Err(CompileError::TargetHooks { at: at(), target: n.kind.name(), used: r.hook_mask, allowed });
            }
        }
        CTarget::Ttl { .. } if table != TableId::Mangle => {
            return Err(CompileError::TargetTable { at: at(), target: "TTL", valid: TableId::Mangle, table });
        }
        CTarget::Tos { dscp, .. } if table != TableId::Mangle => {
            let target = if dscp { "DSCP" } else { "TOS" };
            return Err(CompileError::TargetTable { at: at(), target, valid: TableId::Mangle, table });
        }
        CTarget::TcpMss(_) if !proto_is(super::super::packet::IPPROTO_TCP) => {
            return Err(CompileError::TargetProto { at: at(), target: "TCPMSS", proto: 6 });
        }
        CTarget::TcpMss(m) if m == super::tcpmss::CLAMP_PMTU && r.hook_mask & !CLASSIFY_HOOKS != 0 => {
            return Err(CompileError::TargetHooks {
                at: at(),
                target: "TCPMSS --clamp-mss-to-pmtu",
                used: r.hook_mask,
                allowed: CLASSIFY_HOOKS,
            });
        }
        // tcpmss_tg4_check: a `tcp` match that asks for SYN, not inverted.
        CTarget::TcpMss(_)
            if !ms.iter().any(|m| matches!(m, CMatch::Tcp(t) if t.flags_comp & 0x02 != 0 && !t.flags_invert)) =>
        {
            return Err(CompileError::TcpMssSyn { at: at() });
        }
        CTarget::Classify(_) if r.hook_mask & !CLASSIFY_HOOKS != 0 => {
            return Err(CompileError::TargetHooks {
                at: at(),
                target: "CLASSIFY",
                used: r.hook_mask,
                allowed: CLASSIFY_HOOKS,
            });
        }
        CTarget::Ttl { mode: TtlMode::Inc | TtlMode::Dec, value: 0 } => {
            // xt_HL's ttl_tg_check: "TTL: increment/decrement not allowed with 0".
            return Err(CompileError::TtlZero { at: at() });
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
pub(crate) mod tests {
    use super::super::compiled::StateInit;
    use super::super::rule::{AddrTypeMatch, LimitMatch, LogSpec, MultiportKind, MultiportMatch, TcpMatch};
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    pub(crate) type VecOutput = Output<Vec<CChain>, Vec<CRule>, Vec<CMatch>>;

    /// The mangle table's builtin chains, every policy ACCEPT.
    pub(crate) const MANGLE_ACCEPT: [(&str, Policy); 5] = [
        ("PREROUTING", Policy::Accept),
        ("INPUT", Policy::Accept),
        ("FORWARD", Policy::Accept),
        ("OUTPUT", Policy::Accept),
        ("POSTROUTING", Policy::Accept),
    ];

    /// Compiles `rules` (chain name, rule) for `table` with the given user chains.
    pub(crate) fn build(
        table: TableId,
        policies: &[(&'static str, Policy)],
        user: &[&'static str],
        rules: &[(&'static str, RuleSpec<'static>)],
    ) -> Result<(RulesetHeader, VecOutput), CompileError> {
        let mut defs: Vec<ChainDef<'static>> = Vec::new();
        for &(name, p) in policies {
            defs.push(ChainDef { name, policy: Some(p) });
        }
        for &name in user {
            defs.push(ChainDef { name, policy: None });
        }
        let mut sorted: Vec<(u32, RuleSpec<'static>)> = rules
            .iter()
            .map(|(c, r)| (defs.iter().position(|d| d.name == *c).expect("chain") as u32, *r))
            .collect();
        sorted.sort_by_key(|(c, _)| *c); // stable: keeps rule order within a chain
        let mut out = VecOutput::default();
        let h = compile(
            table,
            &defs,
            sorted.into_iter().map(Ok::<_, core::convert::Infallible>),
            1000,
            &mut out,
        )
        .map_err(|e| match e {
            CompileFailure::Invalid(e) => e,
            CompileFailure::Decode { .. } => unreachable!(),
        })?;
        Ok((h, out))
    }

    pub(crate) fn filter_policies() -> [(&'static str, Policy); 3] {
        [("INPUT", Policy::Accept), ("FORWARD", Policy::Accept), ("OUTPUT", Policy::Accept)]
    }

    fn jump(c: &'static str) -> RuleSpec<'static> {
        RuleSpec { target: Target::Jump(c), ..Default::default() }
    }

    fn goto(c: &'static str) -> RuleSpec<'static> {
        RuleSpec { target: Target::Goto(c), ..Default::default() }
    }

    fn err(r: Result<(RulesetHeader, VecOutput), CompileError>) -> CompileError {
        match r {
            Ok(_) => panic!("compiled"),
            Err(e) => e,
        }
    }

    #[test]
    fn layout_counters_and_entries() {
        let tcp = RuleSpec { proto: 6, target: Target::Accept, ..Default::default() };
        let (h, out) = build(
            TableId::Filter,
            &filter_policies(),
            &["B", "A"],
            &[("INPUT", jump("A")), ("INPUT", tcp), ("OUTPUT", goto("B")), ("A", tcp)],
        )
        .unwrap();
        let rs = out.ruleset(h);
        assert_eq!(h.rule_count, 4);
        assert_eq!(h.chain_count, 5);
        assert_eq!(h.counter_count, 7);
        assert_eq!(rs.entry_chain(HookPoint::LocalIn), Some(0));
        assert_eq!(rs.entry_chain(HookPoint::Forward), Some(1));
        assert_eq!(rs.entry_chain(HookPoint::LocalOut), Some(2));
        assert_eq!(rs.entry_chain(HookPoint::PreRouting), None);
        assert_eq!(rs.policy_counter(HookPoint::LocalIn), Some(4));
        assert_eq!(rs.policy_counter(HookPoint::Forward), Some(5));
        assert_eq!(rs.policy_counter(HookPoint::LocalOut), Some(6));
        assert_eq!(rs.chain_rules(0).len(), 2);
        assert_eq!(rs.chain_rules(1).len(), 0);
        assert_eq!(rs.chain_rules(4).len(), 1); // A
        assert_eq!(rs.rules[0].target, CTarget::Jump(4));
        assert_eq!(rs.rules[2].target, CTarget::Goto(3));
        assert_eq!(rs.chains[4].first, 3);
        // Reachability: A from INPUT only, B from OUTPUT only.
        assert_eq!(rs.chains[4].hook_mask, hook_bit(HookPoint::LocalIn));
        assert_eq!(rs.chains[3].hook_mask, hook_bit(HookPoint::LocalOut));
        assert_eq!(rs.chains[0].depth, 1);
        assert_eq!(rs.chains[2].depth, 0);
        assert!(rs.rules[0].unconditional && !rs.rules[1].unconditional);
    }

    #[test]
    fn comments_compile_to_nothing_but_make_rules_conditional() {
        let mut r = RuleSpec { target: Target::Accept, ..Default::default() };
        r.push_match(Match::Comment("hello")).unwrap();
        let (h, out) = build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).unwrap();
        let rs = out.ruleset(h);
        assert_eq!(rs.rules[0].match_count, 0);
        assert!(!rs.rules[0].unconditional);
        assert!(rs.matches.is_empty());
    }

    #[test]
    fn loops_are_found() {
        let e = err(build(
            TableId::Filter,
            &filter_policies(),
            &["A", "B"],
            &[("INPUT", jump("A")), ("A", jump("B")), ("B", goto("A"))],
        ));
        assert!(matches!(e, CompileError::Loop { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "chain `B' rule 1: jump to `A' makes a loop (too many levels of links)"
        );
        assert_eq!(e.errno(), 40);
        // Self goto.
        let e = err(build(
            TableId::Filter,
            &filter_policies(),
            &["A"],
            &[("FORWARD", jump("A")), ("A", goto("A"))],
        ));
        assert!(matches!(e, CompileError::Loop { .. }));
    }

    #[test]
    fn unreachable_loops_and_shared_chains_are_fine() {
        // A loop nobody reaches: the kernel's walk does not see it.
        build(
            TableId::Filter,
            &filter_policies(),
            &["A", "B"],
            &[("A", jump("B")), ("B", jump("A"))],
        )
        .unwrap();
        // A loop behind an unconditional ACCEPT is unreachable too.
        build(
            TableId::Filter,
            &filter_policies(),
            &["A"],
            &[
                ("INPUT", jump("A")),
                ("A", RuleSpec { target: Target::Accept, ..Default::default() }),
                ("A", jump("A")),
            ],
        )
        .unwrap();
        // ... but not behind a conditional one, nor behind a commented one.
        let mut commented = RuleSpec { target: Target::Accept, ..Default::default() };
        commented.push_match(Match::Comment("c")).unwrap();
        let e = err(build(
            TableId::Filter,
            &filter_policies(),
            &["A"],
            &[("INPUT", jump("A")), ("A", commented), ("A", jump("A"))],
        ));
        assert!(matches!(e, CompileError::Loop { .. }));
        // A diamond: two jumps to the same chain is not a loop.
        let (h, out) = build(
            TableId::Filter,
            &filter_policies(),
            &["A", "B", "C"],
            &[
                ("INPUT", jump("A")),
                ("INPUT", jump("B")),
                ("A", jump("C")),
                ("B", jump("C")),
                ("B", jump("C")),
            ],
        )
        .unwrap();
        let rs = out.ruleset(h);
        assert_eq!(rs.chains[0].depth, 2);
    }

    #[test]
    fn unknown_and_builtin_targets() {
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", jump("NOPE"))]));
        assert_eq!(e.to_string(), "chain `INPUT' rule 1: jump to unknown chain `NOPE'");
        let e = err(build(
            TableId::Filter,
            &filter_policies(),
            &["A"],
            &[("A", jump("A")), ("A", goto("OUTPUT"))],
        ));
        assert!(matches!(e, CompileError::JumpToBuiltin { .. }), "{e:?}");
        assert_eq!(e.to_string(), "chain `A' rule 2: cannot jump to builtin chain `OUTPUT'");
    }

    #[test]
    fn builtin_chain_set_is_checked() {
        let e = err(build(
            TableId::Filter,
            &[("INPUT", Policy::Accept), ("OUTPUT", Policy::Drop)],
            &[],
            &[],
        ));
        assert_eq!(
            e,
            CompileError::MissingBuiltin { hook: HookPoint::Forward, table: TableId::Filter }
        );
        assert_eq!(e.to_string(), "table `filter' lacks its builtin chain `FORWARD'");
        let mut p = filter_policies().to_vec();
        p.push(("PREROUTING", Policy::Accept));
        let e = err(build(TableId::Filter, &p, &[], &[]));
        assert!(matches!(e, CompileError::NotBuiltin { .. }), "{e:?}");
        let e = err(build(TableId::Filter, &filter_policies()[..2], &["OUTPUT"], &[]));
        assert!(matches!(e, CompileError::MissingPolicy { .. }), "{e:?}");
        let e = err(build(TableId::Filter, &filter_policies(), &["X", "Y", "X"], &[]));
        assert_eq!(e.to_string(), "chain `X' defined twice");
        // The kernel takes any name that fits, spaces included (`iptables -E X 'a b'`).
        assert!(build(TableId::Filter, &filter_policies(), &["a name"], &[]).is_ok());
        let e = err(build(TableId::Filter, &filter_policies(), &[""], &[]));
        assert!(matches!(e, CompileError::InvalidChainName { .. }));
        let mut p = filter_policies().to_vec();
        p.push(("INPUT", Policy::Drop));
        let e = err(build(TableId::Filter, &p, &[], &[]));
        assert!(matches!(e, CompileError::DuplicateChain { .. }));
        // Raw has only PREROUTING and OUTPUT; a user chain called INPUT is fine there.
        build(
            TableId::Raw,
            &[("PREROUTING", Policy::Accept), ("OUTPUT", Policy::Accept)],
            &["INPUT"],
            &[],
        )
        .unwrap();
    }

    #[test]
    fn many_chains_resolve_by_name() {
        let names: Vec<&'static str> = (0..300)
            .map(|i| {
                &*std::boxed::Box::leak(std::format!("C{:03}", (i * 7919) % 300).into_boxed_str())
            })
            .collect();
        let mut rules = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if i + 1 < names.len() {
                rules.push((*n, goto(names[i + 1])));
            }
        }
        rules.push(("INPUT", jump(names[0])));
        let (h, out) = build(TableId::Filter, &filter_policies(), &names, &rules).unwrap();
        let rs = out.ruleset(h);
        for (i, r) in rs.rules.iter().skip(1).enumerate() {
            let CTarget::Goto(t) = r.target else { panic!() };
            assert_eq!(t as usize, 3 + i + 1);
            assert_eq!(r.hook_mask, hook_bit(HookPoint::LocalIn));
        }
        assert_eq!(rs.chains[0].depth, 1);
    }

    #[test]
    fn too_deep() {
        let names: Vec<&'static str> = (0..=MAX_JUMP_DEPTH)
            .map(|i| &*std::boxed::Box::leak(std::format!("D{i}").into_boxed_str()))
            .collect();
        let mut rules = std::vec![("INPUT", jump(names[0]))];
        for i in 0..names.len() - 1 {
            rules.push((names[i], jump(names[i + 1])));
        }
        let e = err(build(TableId::Filter, &filter_policies(), &names, &rules));
        assert_eq!(e, CompileError::TooDeep { chain: ChainName::new("INPUT"), depth: 65 });
        // One less is fine, and gotos do not count.
        let (h, out) =
            build(TableId::Filter, &filter_policies(), &names, &rules[..rules.len() - 1]).unwrap();
        assert_eq!(out.ruleset(h).chains[0].depth, 64);
        let last = rules.len() - 1;
        rules[last].1 = goto(names[names.len() - 1]);
        build(TableId::Filter, &filter_policies(), &names, &rules).unwrap();
    }

    #[test]
    fn reject_is_filter_only_and_tcp_reset_needs_tcp() {
        let reject =
            RuleSpec { target: Target::Reject(RejectWith::PortUnreachable), ..Default::default() };
        let mangle = MANGLE_ACCEPT;
        let e = err(build(TableId::Mangle, &mangle, &[], &[("PREROUTING", reject)]));
        assert_eq!(
            e.to_string(),
            "chain `PREROUTING' rule 1: REJECT target: only valid in filter table, not mangle"
        );
        build(TableId::Filter, &filter_policies(), &[], &[("INPUT", reject)]).unwrap();
        let rst = RuleSpec { target: Target::Reject(RejectWith::TcpReset), ..Default::default() };
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", rst)]));
        assert!(matches!(e, CompileError::TcpResetNonTcp { .. }));
        let rst_tcp = RuleSpec { proto: 6, ..rst };
        build(TableId::Filter, &filter_policies(), &[], &[("INPUT", rst_tcp)]).unwrap();
        let rst_not_tcp = RuleSpec { proto_invert: true, ..rst_tcp };
        assert!(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", rst_not_tcp)]).is_err());
        assert_eq!(
            CompileError::TargetHooks {
                at: RulePos { chain: ChainName::new("X"), rule: 2, index: 9 },
                target: "REJECT",
                used: hook_bit(HookPoint::PreRouting) | hook_bit(HookPoint::LocalIn),
                allowed: REJECT_HOOKS,
            }
            .to_string(),
            "chain `X' rule 2: REJECT target: used from hooks PREROUTING/INPUT, but only usable from INPUT/FORWARD/OUTPUT"
        );
    }

    #[test]
    fn match_protocol_restrictions() {
        let mut r = RuleSpec::default();
        r.push_match(Match::Tcp(TcpMatch::default())).unwrap();
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]));
        assert_eq!(e.to_string(), "chain `INPUT' rule 1: tcp match: only valid for protocol 6");
        r.proto = 6;
        build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).unwrap();
        r.proto_invert = true;
        assert!(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).is_err());

        let mut mp = MultiportMatch {
            kind: MultiportKind::Destination,
            ports: [PortRange::default(); MAX_MULTIPORT],
            count: 1,
            invert: false,
        };
        let mut r = RuleSpec { proto: 1, ..Default::default() };
        r.push_match(Match::Multiport(mp)).unwrap();
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]));
        assert!(matches!(e, CompileError::MultiportProto { .. }));
        for proto in [6, 17, 33, 132, 136] {
            r.proto = proto;
            build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).unwrap();
        }
        // 8 ranges = 16 slots > 15.
        mp.count = 8;
        for p in mp.ports.iter_mut().take(8) {
            *p = PortRange { lo: 1, hi: 2 };
        }
        r.matches[0] = Some(Match::Multiport(mp));
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]));
        assert!(matches!(e, CompileError::MultiportPorts { .. }));
        mp.count = 7;
        r.matches[0] = Some(Match::Multiport(mp));
        build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).unwrap();
        mp.ports[0] = PortRange { lo: 5, hi: 4 };
        r.matches[0] = Some(Match::Multiport(mp));
        assert!(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]).is_err());
    }

    #[test]
    fn addrtype_hooks_follow_reachability() {
        let mangle = MANGLE_ACCEPT;
        let mut r = RuleSpec::default();
        r.push_match(Match::AddrType(AddrTypeMatch {
            dst: super::super::rule::addrtype::LOCAL,
            limit_iface_out: true,
            ..Default::default()
        }))
        .unwrap();
        // Reached from FORWARD only: fine.
        build(TableId::Mangle, &mangle, &["A"], &[("FORWARD", jump("A")), ("A", r)]).unwrap();
        // Also reached from PREROUTING: refused.
        let e = err(build(
            TableId::Mangle,
            &mangle,
            &["A"],
            &[("PREROUTING", jump("A")), ("FORWARD", jump("A")), ("A", r)],
        ));
        assert_eq!(
            e.to_string(),
            "chain `A' rule 1: addrtype match: output interface limitation not valid in PREROUTING and INPUT"
        );
        // Behind an unconditional DROP in PREROUTING it is unreachable again.
        build(
            TableId::Mangle,
            &mangle,
            &["A"],
            &[
                ("PREROUTING", RuleSpec { target: Target::Drop, ..Default::default() }),
                ("PREROUTING", jump("A")),
                ("A", r),
            ],
        )
        .unwrap();
        let mut both = RuleSpec::default();
        both.push_match(Match::AddrType(AddrTypeMatch {
            limit_iface_in: true,
            limit_iface_out: true,
            ..Default::default()
        }))
        .unwrap();
        let e = err(build(TableId::Mangle, &mangle, &[], &[("FORWARD", both)]));
        assert!(matches!(e, CompileError::AddrTypeBothIfaces { .. }));
    }

    #[test]
    fn limit_nth_and_log_checks() {
        let mut r = RuleSpec::default();
        r.push_match(Match::Limit(LimitMatch { avg: 3333, burst: 0 })).unwrap();
        let e = err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)]));
        assert_eq!(e.errno(), 34);
        let mut r = RuleSpec::default();
        r.push_match(Match::Limit(LimitMatch { avg: 3333, burst: 5 })).unwrap();
        r.push_match(Match::Statistic(StatisticMatch::Nth { every: 2, packet: 1, invert: false }))
            .unwrap();
        let (h, out) =
            build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r), ("OUTPUT", r)])
                .unwrap();
        assert_eq!(h.state_count, 4);
        let slots: Vec<_> = out.ruleset(h).state_slots().collect();
        assert_eq!(slots.len(), 4);
        assert_eq!(slots[1], (1, StateInit::Nth { every: 2, initial: 1 }));
        assert_eq!(slots[2], (2, StateInit::Limit(LimitMatch { avg: 3333, burst: 5 })));
        // Each rule's state slots, in rule order, are the slots in order: a rule's are
        // consecutive (what carrying state by rule relies on).
        let rs = out.ruleset(h);
        let by_rule: Vec<u32> = rs.rules.iter().flat_map(|r| rs.rule_states(r)).collect();
        assert_eq!(by_rule, slots.iter().map(|s| s.0).collect::<Vec<_>>());
        assert_eq!(by_rule, [0, 1, 2, 3]);
        let mut r = RuleSpec::default();
        r.push_match(Match::Statistic(StatisticMatch::Nth { every: 2, packet: 3, invert: false }))
            .unwrap();
        assert!(matches!(
            err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", r)])),
            CompileError::NthPacket { .. }
        ));
        let log = |level, prefix| RuleSpec {
            target: Target::Log(LogSpec { level, flags: 0, prefix }),
            ..Default::default()
        };
        let (h, out) = build(
            TableId::Filter,
            &filter_policies(),
            &[],
            &[("INPUT", log(4, "12345678901234567890123456789"))],
        )
        .unwrap();
        let CTarget::Log(l) = out.ruleset(h).rules[0].target else { panic!() };
        assert_eq!(l.prefix(), b"12345678901234567890123456789");
        assert!(matches!(
            err(build(
                TableId::Filter,
                &filter_policies(),
                &[],
                &[("INPUT", log(4, "123456789012345678901234567890"))]
            )),
            CompileError::LogPrefix { len: 30, .. }
        ));
        assert!(matches!(
            err(build(TableId::Filter, &filter_policies(), &[], &[("INPUT", log(8, ""))])),
            CompileError::LogLevel { level: 8, .. }
        ));
    }

    #[test]
    fn rule_order_and_indices_and_decode_errors() {
        let defs = [
            ChainDef { name: "INPUT", policy: Some(Policy::Accept) },
            ChainDef { name: "FORWARD", policy: Some(Policy::Accept) },
            ChainDef { name: "OUTPUT", policy: Some(Policy::Accept) },
        ];
        let r = RuleSpec::default();
        let mut out = VecOutput::default();
        let e = compile(TableId::Filter, &defs, [Ok::<_, ()>((1, r)), Ok((0, r))], 100, &mut out);
        assert_eq!(e, Err(CompileFailure::Invalid(CompileError::RulesOutOfOrder { index: 1 })));
        let mut out = VecOutput::default();
        let e = compile(TableId::Filter, &defs, [Ok::<_, ()>((3, r))], 100, &mut out);
        assert_eq!(
            e,
            Err(CompileFailure::Invalid(CompileError::BadChainIndex { index: 0, chain: 3 }))
        );
        let mut out = VecOutput::default();
        let e = compile(TableId::Filter, &defs, [Ok((0, r)), Err("bad attribute")], 100, &mut out);
        assert_eq!(e, Err(CompileFailure::Decode { index: 1, error: "bad attribute" }));
        assert_eq!(e.unwrap_err().to_string(), "rule 1: bad attribute");
        // Non-empty output is refused.
        let e = compile(TableId::Filter, &defs, [Ok::<_, ()>((0, r))], 100, &mut out);
        assert_eq!(e, Err(CompileFailure::Invalid(CompileError::StoreNotEmpty)));
    }

    #[test]
    fn chain_name_truncates_on_char_boundary() {
        let n = ChainName::new("ééééééééééééééé"); // 30 bytes
        assert_eq!(n.as_str().len(), 28);
        assert_eq!(ChainName::new("abc").as_str(), "abc");
    }
}
