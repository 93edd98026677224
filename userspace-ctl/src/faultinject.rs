// SPDX-License-Identifier: GPL-2.0

//! `rnfctl fault-inject [--rounds N] FILE`: proves that a replace is all or nothing when the
//! kernel runs out of memory. The tables of FILE (iptables-save format) are committed as one
//! transaction again and again, each time with the kernel's fault injection set to fail the
//! Nth allocation of this thread (`/proc/thread-self/fail-nth`, N = 1, 2, ...), until one
//! attempt gets through; after every failed attempt, the tables (rules, ids, counters,
//! generation) must read exactly as before. Then the same back to the previous tables, for
//! `--rounds` rounds. Needs a kernel with CONFIG_FAULT_INJECTION and failslab /
//! fail_page_alloc told not to ignore sleeping allocations (the test does that).

use std::fs;

use rnf_engine::rule::TableId;

use crate::backend::{encode_tables, KernelBackend};
use crate::ipt::model::Table;
use crate::ipt::{Backend, IptError};
use crate::netlink::Client;

/// A backend that reads from the kernel but keeps the commit for itself.
struct Recorder {
    inner: KernelBackend,
    committed: Vec<Table>,
}

impl Backend for Recorder {
    fn load(&mut self, table: TableId) -> Result<Table, IptError> {
        self.inner.load(table)
    }
    fn commit(&mut self, table: &Table) -> Result<(), IptError> {
        self.committed.push(table.clone());
        Ok(())
    }
    fn commit_all(&mut self, tables: &[&Table]) -> Result<(), (Option<TableId>, IptError)> {
        self.committed.extend(tables.iter().map(|t| (*t).clone()));
        Ok(())
    }
    fn present_tables(&mut self) -> Result<Vec<TableId>, IptError> {
        self.inner.present_tables()
    }
}

/// This thread's `/proc/thread-self/fail-nth`, opened once: reading and writing it then
/// allocate nothing, so they neither consume nor suffer the injected failure.
struct FailNth(fs::File);

impl FailNth {
    fn open() -> Result<Self, String> {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/thread-self/fail-nth")
            .map(FailNth)
            .map_err(|e| format!("/proc/thread-self/fail-nth: {e} (a kernel with CONFIG_FAULT_INJECTION is needed)"))
    }

    fn set(&self, n: u32) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        self.0.write_all_at(n.to_string().as_bytes(), 0).map_err(|e| format!("setting fail-nth: {e}"))
    }

    /// Allocations still to pass before the injected failure; 0 once it happened.
    fn left(&self) -> u32 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 16];
        let n = self.0.read_at(&mut buf, 0).unwrap_or(0);
        std::str::from_utf8(&buf[..n]).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
}

/// What a table holds as a user sees it: chains with policy and counters, rules with their
/// encoding and counters (not ids or generation, which a revert renumbers).
pub(crate) type Content = Vec<(String, Option<rnf_engine::rule::Policy>, (u64, u64), Vec<(Vec<u8>, (u64, u64))>)>;

pub(crate) fn content(t: &Table) -> Content {
    t.chains
        .iter()
        .map(|c| {
            let rules = c.rules.iter().map(|r| (r.wire.clone(), (r.counters.packets, r.counters.bytes))).collect();
            (c.name.clone(), c.policy, (c.counters.packets, c.counters.bytes), rules)
        })
        .collect()
}

/// The tables as the kernel has them now.
pub(crate) fn fetch_all(be: &mut KernelBackend, ids: &[TableId]) -> Result<Vec<Table>, String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(be.fetch(*id, false).map_err(|e| e.message)?.ok_or("table missing")?.0);
    }
    Ok(out)
}

fn snapshot(be: &mut KernelBackend, ids: &[TableId]) -> Result<Vec<Content>, String> {
    Ok(fetch_all(be, ids)?.iter().map(content).collect())
}

/// A request committing `tables` over what the kernel has now (its generations).
fn request_for(be: &mut KernelBackend, tables: &[Table]) -> Result<Vec<u8>, String> {
    let ids: Vec<TableId> = tables.iter().map(|t| t.id).collect();
    let now = fetch_all(be, &ids)?;
    let fresh: Vec<Table> = tables
        .iter()
        .zip(now)
        .map(|(t, n)| Table { generation: n.generation, ..t.clone() })
        .collect();
    let refs: Vec<&Table> = fresh.iter().collect();
    Ok(encode_tables(&refs))
}

/// `t` with its counters to be set as they are (as `iptables-restore -c` does).
fn with_counters(mut t: Table) -> Table {
    for c in &mut t.chains {
        c.set_counters = true;
        for r in &mut c.rules {
            r.set_counters = true;
        }
    }
    t
}

/// The tables' rules (no counters or generation): what a successful commit must show.
/// Each table's chains with their rules' encodings.
type Rules = Vec<Vec<(String, Vec<Vec<u8>>)>>;

fn rules_of(be: &mut KernelBackend, ids: &[TableId]) -> Result<Rules, String> {
    let mut out = Vec::new();
    for id in ids {
        let (t, _) = be.fetch(*id, false).map_err(|e| e.message)?.ok_or("table missing")?;
        out.push(t.chains.iter().map(|c| (c.name.clone(), c.rules.iter().map(|r| r.wire.clone()).collect())).collect());
    }
    Ok(out)
}

fn wanted_rules(tables: &[Table]) -> Rules {
    tables
        .iter()
        .map(|t| t.chains.iter().map(|c| (c.name.clone(), c.rules.iter().map(|r| r.wire.clone()).collect())).collect())
        .collect()
}

/// Reads FILE as iptables-restore would (against the current tables): the tables to commit.
fn parse(file: &str) -> Result<Vec<Table>, String> {
    let mut rec = Recorder { inner: KernelBackend::new("iptables-restore"), committed: Vec::new() };
    let mut sink = Vec::new();
    crate::ipt::restore::restore_main(&[file.to_string()], "", &mut rec, &mut sink).map_err(|e| e.message)?;
    Ok(rec.committed)
}

/// One round: commits `tables` with failure N = 1, 2, ... until an attempt passes every
/// allocation (none left to fail). After a failed attempt the tables must read as before;
/// after an attempt whose failed allocation had a fallback (kvmalloc falls back to vmalloc),
/// the new tables must be in place, and the old ones are put back for the next N. Returns the
/// number of attempts that failed.
fn round(fail: &FailNth, client: &mut Client, be: &mut KernelBackend, tables: &[Table]) -> Result<u32, String> {
    let ids: Vec<TableId> = tables.iter().map(|t| t.id).collect();
    let before_tables: Vec<Table> = fetch_all(be, &ids)?.into_iter().map(with_counters).collect();
    let before = snapshot(be, &ids)?;
    let mut req = request_for(be, tables)?;
    let mut failed = 0;
    for n in 1..100_000u32 {
        fail.set(n)?;
        let res = client.request(rnf_engine::wire::CMD_REPLACE_TABLES, req.clone());
        let unused = fail.left();
        fail.set(0)?;
        match res {
            Ok(_) => {
                if rules_of(be, &ids)? != wanted_rules(tables) {
                    return Err(format!("attempt {n}: succeeded, but the tables do not hold the new rules"));
                }
                if unused != 0 {
                    // No allocation was left to fail: done.
                    return Ok(failed);
                }
                // The failure was absorbed by a fallback: put the old tables back, go on.
                ABSORBED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let back = request_for(be, &before_tables)?;
                client.request(rnf_engine::wire::CMD_REPLACE_TABLES, back).map_err(|e| format!("putting the tables back: {e}"))?;
                if snapshot(be, &ids)? != before {
                    return Err("putting the tables back did not restore them".into());
                }
                req = request_for(be, tables)?;
            }
            Err(e) => {
                if unused != 0 {
                    return Err(format!("attempt {n}: failed without an injected failure: {e}"));
                }
                failed += 1;
                if snapshot(be, &ids)? != before {
                    // All or nothing still holds if the whole replace happened and only its
                    // answer was lost (the ack's allocation failed: ENOBUFS on the socket).
                    if rules_of(be, &ids)? != wanted_rules(tables) {
                        return Err(format!("attempt {n} failed ({e}) and changed the tables part-way"));
                    }
                    let back = request_for(be, &before_tables)?;
                    client.request(rnf_engine::wire::CMD_REPLACE_TABLES, back).map_err(|e| format!("putting the tables back: {e}"))?;
                    req = request_for(be, tables)?;
                }
            }
        }
    }
    Err("no attempt got through".into())
}

/// Injected failures that a fallback absorbed (the replace went through whole).
static ABSORBED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The command: prints how many failures were injected and that each left the tables alone.
pub fn main(args: &[String]) -> Result<String, String> {
    let (rounds, file) = match args {
        [f] => (1, f.clone()),
        [flag, r, f] if flag == "--rounds" => (r.parse::<u32>().map_err(|_| "bad --rounds")?, f.clone()),
        _ => return Err("usage: rnfctl fault-inject [--rounds N] FILE".into()),
    };
    let new = parse(&file)?;
    if new.is_empty() {
        return Err(format!("{file}: no table to commit"));
    }
    let mut be = KernelBackend::new("rnfctl");
    let ids: Vec<TableId> = new.iter().map(|t| t.id).collect();
    let mut old = Vec::new();
    for id in &ids {
        // Going back restores the counters too (as `iptables-restore -c` of a save would).
        old.push(with_counters(be.fetch(*id, false).map_err(|e| e.message)?.ok_or("table missing")?.0));
    }
    let mut client = Client::connect().map_err(|e| e.to_string())?;
    let fail = FailNth::open()?;
    let mut total = 0;
    for r in 0..rounds {
        let tables = if r % 2 == 0 { &new } else { &old };
        total += round(&fail, &mut client, &mut be, tables)?;
    }
    let absorbed = ABSORBED.load(std::sync::atomic::Ordering::Relaxed);
    Ok(format!(
        "{total} failures injected in {rounds} rounds; after each, every table read exactly as before \
         ({absorbed} more were absorbed by a fallback allocation and the replace went through whole)"
    ))
}
