// SPDX-License-Identifier: GPL-2.0

//! `rnfctl fuzz-netlink [--count N] [--seed S]`: sends N generated requests (random,
//! malformed and valid-looking: `rnf_engine::fuzzgen`) to the module, and checks that none
//! changes the running ruleset: every replace carries a generation that cannot match, so all
//! must be refused. The tables are compared with their state before every 1000 messages and
//! at the end (rules, counters, policies, generation).

use rnf_engine::fuzzgen::Gen;
use rnf_engine::rule::TableId;
use rnf_engine::wire;

use crate::backend::KernelBackend;
use crate::faultinject::{content, fetch_all, Content};
use crate::netlink::Client;

fn snapshot(be: &mut KernelBackend) -> Result<Vec<(u64, Content)>, String> {
    Ok(fetch_all(be, &TableId::ALL)?.iter().map(|t| (t.generation, content(t))).collect())
}

/// The command; returns a summary line.
pub fn main(args: &[String]) -> Result<String, String> {
    let mut count = 100_000u64;
    let mut seed = 1u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or("usage: rnfctl fuzz-netlink [--count N] [--seed S]")?;
        let n: u64 = v.parse().map_err(|_| format!("bad number {v}"))?;
        match a.as_str() {
            "--count" => count = n,
            "--seed" => seed = n,
            _ => return Err("usage: rnfctl fuzz-netlink [--count N] [--seed S]".into()),
        }
    }
    let mut be = KernelBackend::new("rnfctl");
    let before = snapshot(&mut be)?;
    let mut client = Client::connect().map_err(|e| e.to_string())?;
    let mut g = Gen::new(seed);
    let mut buf = vec![0u8; 16384];
    let (mut refused, mut answered) = (0u64, 0u64);
    for i in 1..=count {
        let (cmd, len) = g.message(&mut buf);
        let payload = buf[..len].to_vec();
        let res = if cmd == wire::CMD_GET_TABLE {
            client.dump(cmd, payload).map(|_| ())
        } else {
            client.request(cmd, payload).map(|_| ())
        };
        match res {
            Ok(()) if cmd == wire::CMD_REPLACE_TABLE || cmd == wire::CMD_REPLACE_TABLES => {
                return Err(format!("message {i} (seed {seed}): a replace with a wrong generation was accepted"));
            }
            Ok(()) => answered += 1,
            Err(crate::netlink::Error::Io(e)) => return Err(format!("message {i} (seed {seed}): socket error {e}")),
            Err(_) => refused += 1,
        }
        if (i % 1000 == 0 || i == count) && snapshot(&mut be)? != before {
            return Err(format!("after message {i} (seed {seed}): the tables changed"));
        }
    }
    Ok(format!("{count} messages (seed {seed}): {refused} refused, {answered} answered; the tables never changed"))
}
