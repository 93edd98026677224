// SPDX-License-Identifier: GPL-2.0

//! `rnfctl recent`: the `-m recent` lists of the namespace, read and changed as xt_recent's
//! files under /proc/net/xt_recent/ are.
//!
//! - `rnfctl recent` names the lists (`ls /proc/net/xt_recent`);
//! - `rnfctl recent NAME` prints one list, line for line as `cat /proc/net/xt_recent/NAME`;
//! - `rnfctl recent NAME +ADDR`, `-ADDR`, `/` add, remove, flush (`echo ... > NAME`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use rnf_engine::recent::wire as rw;
use rnf_engine::wire::{AttrIter, Encoder};

use crate::netlink;

fn attrs(name: &str, op: Option<(u32, Option<u32>)>) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut enc = Encoder::new(&mut buf);
    enc.put_str(rw::A_RECENT_NAME, name);
    if let Some((op, addr)) = op {
        enc.put_u32(rw::A_RECENT_OP, op);
        if let Some(a) = addr {
            enc.put_u32(rw::A_RECENT_ADDR, a);
        }
    }
    let n = enc.len();
    buf.truncate(n);
    buf
}

/// One address as xt_recent's `recent_seq_show` prints it.
fn entry_line(nest: AttrIter<'_>) -> Result<String, String> {
    let (mut addr, mut ttl, mut last, mut index) = (0u32, 0u32, 0u64, 0u32);
    let mut stamps = Vec::new();
    for a in nest {
        let a = a.map_err(|e| e.to_string())?;
        match a.ty {
            rw::E_ADDR => addr = a.u32().map_err(|e| e.to_string())?,
            rw::E_TTL => ttl = a.u32().map_err(|e| e.to_string())?,
            rw::E_LAST => last = a.u64().map_err(|e| e.to_string())?,
            rw::E_INDEX => index = a.u32().map_err(|e| e.to_string())?,
            rw::E_STAMPS => {
                for s in a.nested() {
                    stamps.push(s.and_then(|s| s.u64()).map_err(|e| e.to_string())?);
                }
            }
            _ => {}
        }
    }
    let mut s = format!("src={} ttl: {ttl} last_seen: {last} oldest_pkt: {index}", Ipv4Addr::from(addr));
    for (i, t) in stamps.iter().enumerate() {
        let _ = write!(s, "{} {t}", if i > 0 { "," } else { "" });
    }
    Ok(s)
}

fn run(args: &[String]) -> Result<(), String> {
    let mut c = netlink::Client::connect().map_err(|e| e.to_string())?;
    match args {
        [] => {
            for msg in c.dump(rw::CMD_RECENT_DUMP, Vec::new()).map_err(|e| e.to_string())? {
                for a in AttrIter::new(&msg) {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.ty == rw::A_RECENT_NAME {
                        println!("{}", String::from_utf8_lossy(a.payload.split(|&b| b == 0).next().unwrap_or(&[])));
                    }
                }
            }
            Ok(())
        }
        [name] => {
            let mut out = String::new();
            for msg in c.dump(rw::CMD_RECENT_DUMP, attrs(name, None)).map_err(|e| format!("{name}: {e}"))? {
                for a in AttrIter::new(&msg) {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.ty == rw::A_RECENT_ENTRY {
                        out.push_str(&entry_line(a.nested())?);
                        out.push('\n');
                    }
                }
            }
            print!("{out}");
            Ok(())
        }
        [name, op] => {
            let parsed = match op.split_at_checked(1) {
                Some(("/", _)) => Some((rw::OP_FLUSH, None)),
                Some(("+", a)) => a.trim_end().parse::<Ipv4Addr>().ok().map(|a| (rw::OP_ADD, Some(u32::from(a)))),
                Some(("-", a)) => a.trim_end().parse::<Ipv4Addr>().ok().map(|a| (rw::OP_REMOVE, Some(u32::from(a)))),
                _ => None,
            };
            let Some(p) = parsed else {
                return Err(format!("{op}: need \"+ip\", \"-ip\" or \"/\""));
            };
            c.request(rw::CMD_RECENT_SET, attrs(name, Some(p))).map_err(|e| format!("{name}: {e}"))?;
            Ok(())
        }
        _ => Err("usage: rnfctl recent [NAME [+ADDR|-ADDR|/]]".into()),
    }
}

/// Runs `rnfctl recent ...`; the exit status.
pub fn main(args: &[String]) -> u8 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rnfctl recent: {e}");
            1
        }
    }
}
