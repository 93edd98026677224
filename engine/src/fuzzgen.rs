// SPDX-License-Identifier: GPL-2.0

//! The netlink fuzzer's generator: random, malformed and valid-looking request payloads for
//! rust_nf's family. Shared by the host test below (which runs the kernel's decoders and the
//! compiler on them) and `rnfctl fuzz-netlink` (which sends them to the module in the VM).
//! Host builds only: the module never mounts this file.
//!
//! A replace request always ends with a generation that cannot match
//! (`A_GENERATION` = `u64::MAX` with `TF_CHECK_GENERATION`), so however valid the rest looks,
//! the kernel must refuse it: the running ruleset may never change during a fuzz run.

#[cfg(any(test, feature = "std"))]
use super::{compile, compiled};
#[cfg(any(test, feature = "std"))]
use super::wire::AttrIter;
use super::rule::{Counters, Ipv4Net, Policy, RuleSpec, TableId, Target, TtlMode};
use super::rulewire::{self, ChainWire, RuleWire};
use super::wire::{self, Encoder};

/// A deterministic generator (xorshift64).
pub struct Gen(u64);

impl Gen {
    /// A generator for `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Gen(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Writes one request payload into `buf`; returns its command and length.
    pub fn message(&mut self, buf: &mut [u8]) -> (u8, usize) {
        let roll = self.below(100);
        let cmd = match roll {
            0..=59 => wire::CMD_REPLACE_TABLE,
            60..=74 => wire::CMD_REPLACE_TABLES,
            75..=84 => wire::CMD_GET_TABLE,
            85..=89 => wire::CMD_ZERO_COUNTERS,
            90..=94 => wire::CMD_GET_STATUS,
            _ => self.below(256) as u8,
        };
        let len = match cmd {
            wire::CMD_REPLACE_TABLE => self.table_section(buf),
            wire::CMD_REPLACE_TABLES => {
                let mut len = 0;
                for _ in 0..=self.below(3) {
                    let Some(rest) = buf.get_mut(len..) else { break };
                    len += self.table_section(rest);
                }
                len
            }
            wire::CMD_GET_TABLE => {
                let mut enc = Encoder::new(buf);
                enc.put_u32(rulewire::A_TABLE, self.below(6) as u32);
                if self.chance(50) {
                    enc.put_u32(rulewire::A_TABLE_FLAGS, self.next() as u32 & 0x7);
                }
                let n = enc.len();
                self.mutate(buf, n, 2)
            }
            wire::CMD_ZERO_COUNTERS => {
                let mut enc = Encoder::new(buf);
                if self.chance(70) {
                    enc.put_u32(wire::A_HOOK_SLOT, self.below(30) as u32);
                }
                let n = enc.len();
                self.mutate(buf, n, 2)
            }
            _ => {
                // Random bytes (or nothing).
                let n = (self.below(64) as usize).min(buf.len());
                for b in buf.iter_mut().take(n) {
                    *b = self.next() as u8;
                }
                n
            }
        };
        (cmd, len.min(buf.len()))
    }

    /// One table's replace attributes, mutated, then the generation guard; returns the length.
    fn table_section(&mut self, buf: &mut [u8]) -> usize {
        let tables = if self.chance(95) { 4 } else { 8 };
        let table = self.below(tables) as u32;
        let mut scratch = [0u8; 512];
        let n = {
            let mut enc = Encoder::new(buf);
            enc.put_u32(rulewire::A_TABLE, table);
            let id = TableId::from_u32(table).unwrap_or(TableId::Filter);
            let builtin: [&str; 5] = {
                let mut names = [""; 5];
                for (slot, h) in names.iter_mut().zip(id.builtin_hooks()) {
                    *slot = h.chain_name();
                }
                names
            };
            let users = ["U0", "U1", "U2"];
            let n_users = self.below(4) as usize;
            let mut n_chains = 0u32;
            for name in builtin.iter().filter(|n| !n.is_empty()) {
                if self.chance(97) {
                    let policy = if self.chance(50) { Policy::Accept } else { Policy::Drop };
                    let counters = self.chance(20).then(|| Counters { packets: self.next(), bytes: self.next() });
                    rulewire::encode_chain(&mut enc, &ChainWire { name, policy: Some(policy), counters });
                    n_chains += 1;
                }
            }
            for name in users.iter().take(n_users) {
                rulewire::encode_chain(&mut enc, &ChainWire { name, policy: None, counters: None });
                n_chains += 1;
            }
            for _ in 0..self.below(12) {
                let spec = self.rule_spec(&users[..n_users.max(1)]);
                let mut senc = Encoder::new(&mut scratch);
                rulewire::encode_rule(&mut senc, &spec);
                let slen = senc.len();
                let chain = if self.chance(95) { self.below(u64::from(n_chains.max(1))) as u32 } else { self.next() as u32 };
                let id = if self.chance(80) { 0 } else { self.below(5) };
                rulewire::encode_rule_entry(&mut enc, &RuleWire { chain, id, counters: None, spec: &scratch[..slen.min(512)] });
            }
            enc.len()
        };
        let n = self.mutate(buf, n, 4);
        // The guard: never committed.
        let Some(rest) = buf.get_mut(n..) else { return n };
        let mut enc = Encoder::new(rest);
        enc.put_u64(rulewire::A_GENERATION, u64::MAX);
        enc.put_u32(rulewire::A_TABLE_FLAGS, rulewire::TF_CHECK_GENERATION);
        n + enc.len()
    }

    fn rule_spec<'a>(&mut self, users: &[&'a str]) -> RuleSpec<'a> {
        let mut r = RuleSpec::default();
        if self.chance(40) {
            let mask = u32::MAX << self.below(33).min(31);
            r.src = Ipv4Net { addr: self.next() as u32 & mask, mask };
        }
        if self.chance(20) {
            r.dst = Ipv4Net { addr: self.next() as u32, mask: u32::MAX };
        }
        r.proto = [0, 1, 6, 17, self.next() as u8][self.below(5) as usize];
        r.proto_invert = self.chance(10);
        r.target = match self.below(8) {
            0 => Target::None,
            1 => Target::Accept,
            2 => Target::Drop,
            3 => Target::Return,
            4 => Target::Jump(users[self.below(users.len() as u64) as usize]),
            5 => Target::Goto(users[self.below(users.len() as u64) as usize]),
            6 => Target::Mark { value: self.next() as u32, mask: self.next() as u32 },
            _ => Target::Ttl {
                mode: [TtlMode::Set, TtlMode::Inc, TtlMode::Dec][self.below(3) as usize],
                value: self.next() as u8,
            },
        };
        r
    }

    /// Up to `max` mutations of `buf[..len]`; returns the new length.
    fn mutate(&mut self, buf: &mut [u8], len: usize, max: u64) -> usize {
        let mut len = len.min(buf.len());
        if self.chance(15) {
            return len;
        }
        for _ in 0..=self.below(max) {
            if len == 0 {
                break;
            }
            let at = self.below(len as u64) as usize;
            match self.below(6) {
                // A flipped bit.
                0 => buf[at] ^= 1 << self.below(8),
                // A random 16-bit value: often an attribute length or type.
                1 if at + 2 <= len => {
                    let v = match self.below(4) {
                        0 => 0,
                        1 => 3,
                        2 => 0xffff,
                        _ => self.next() as u16,
                    };
                    buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
                }
                // Cut short.
                2 => len = at,
                // A run of zeros or random bytes.
                3 | 4 => {
                    let end = (at + 1 + self.below(16) as usize).min(len);
                    let zero = self.chance(50);
                    for b in buf.iter_mut().take(end).skip(at) {
                        *b = if zero { 0 } else { self.next() as u8 };
                    }
                }
                // A chunk repeated after the end (more attributes, deeper nests).
                _ => {
                    let n = (self.below(64) as usize + 1).min(len - at).min(buf.len() - len);
                    buf.copy_within(at..at + n, len);
                    len += n;
                }
            }
        }
        len
    }
}

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(any(test, feature = "std"))]
/// What the kernel does with one table's replace attributes (`rust_nf/table.rs`), up to
/// compiling them; true when they compile. For the host test and the fuzz targets.
pub fn kernel_decode(payload: &[u8]) -> bool {
    use std::vec::Vec;
    let mut table = None;
    let mut chains: Vec<ChainWire<'_>> = Vec::new();
    let mut rules = Vec::new();
    for a in AttrIter::new(payload) {
        let Ok(a) = a else { return false };
        match a.ty {
            rulewire::A_TABLE => table = a.u32().ok().and_then(TableId::from_u32),
            rulewire::A_GENERATION => {
                let _ = a.u64();
            }
            rulewire::A_CHAIN => match rulewire::decode_chain(&a) {
                Ok(c) => chains.push(c),
                Err(_) => return false,
            },
            rulewire::A_RULE => {
                let Ok(r) = rulewire::decode_rule_entry(&a) else { return false };
                let Ok(spec) = rulewire::decode_rule(r.spec) else { return false };
                rules.push((r.chain, spec));
            }
            _ => {}
        }
    }
    let Some(table) = table else { return false };
    if rules.iter().any(|(c, _)| *c as usize >= chains.len()) {
        return false;
    }
    let defs: Vec<compile::ChainDef<'_>> = chains.iter().map(|c| compile::ChainDef { name: c.name, policy: c.policy }).collect();
    let mut out: compiled::Output<Vec<compiled::CChain>, Vec<compiled::CRule>, Vec<compiled::CMatch>> = compiled::Output::default();
    let decoded = rules.into_iter().map(Ok::<_, ()>);
    compile::compile(table, &defs, decoded, 250, &mut out).is_ok()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::wire::AttrIter;
    use super::*;

    #[test]
    fn the_kernel_decoders_take_100k_fuzzed_requests() {
        let mut g = Gen::new(0x5eed);
        let mut buf = std::vec![0u8; 16384];
        let (mut compiled, mut refused) = (0, 0);
        for _ in 0..100_000 {
            let (cmd, len) = g.message(&mut buf);
            let payload = &buf[..len];
            match cmd {
                wire::CMD_REPLACE_TABLE => {
                    if kernel_decode(payload) { compiled += 1 } else { refused += 1 }
                }
                wire::CMD_REPLACE_TABLES => match wire::sections(payload, rulewire::A_TABLE) {
                    Ok(s) => {
                        for sec in s {
                            if kernel_decode(sec) { compiled += 1 } else { refused += 1 }
                        }
                    }
                    Err(_) => refused += 1,
                },
                _ => {
                    for a in AttrIter::new(payload).flatten() {
                        let _ = (a.u32(), a.u64(), a.str());
                    }
                }
            }
        }
        // Both kinds occur: valid-looking rulesets reach the compiler, malformed ones are
        // refused on the way.
        assert!(compiled > 1000, "compiled {compiled}");
        assert!(refused > 1000, "refused {refused}");
    }
}
