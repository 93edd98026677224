// SPDX-License-Identifier: GPL-2.0

//! `rnfctl sysctl`: rust_nf's connection tracking settings of this namespace, named and
//! printed as the kernel's `net.netfilter.nf_conntrack_*` sysctls are by `sysctl`.
//!
//! `rnfctl sysctl [-a]` prints every setting; `rnfctl sysctl [-n] NAME...` some;
//! `rnfctl sysctl [-w] NAME=VALUE...` sets (CAP_NET_ADMIN) and prints the new value. NAME may
//! be written with or without `net.netfilter.`.

use rnf_engine::conntrack::settings::Key;
use rnf_engine::conntrack::wire as cw;
use rnf_engine::wire::{AttrIter, Encoder};

use crate::netlink;

const PREFIX: &str = "net.netfilter.";

fn fetch(c: &mut netlink::Client) -> Result<Vec<(Key, u32)>, String> {
    let msg = c.query(cw::CMD_CT_SYSCTL_GET, Vec::new()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for a in AttrIter::new(&msg) {
        let a = a.map_err(|e| e.to_string())?;
        if a.ty != cw::A_SYSCTL {
            continue;
        }
        let (mut k, mut v) = (None, None);
        for x in a.nested() {
            let x = x.map_err(|e| e.to_string())?;
            match x.ty {
                cw::A_SYSCTL_KEY => k = x.u32().ok().and_then(Key::from_u32),
                cw::A_SYSCTL_VALUE => v = x.u32().ok(),
                _ => {}
            }
        }
        if let (Some(k), Some(v)) = (k, v) {
            out.push((k, v));
        }
    }
    Ok(out)
}

fn line(k: Key, v: u32, value_only: bool) -> String {
    if value_only {
        v.to_string()
    } else {
        format!("{PREFIX}{} = {v}", k.name())
    }
}

fn unknown(name: &str) -> String {
    format!("sysctl: cannot stat /proc/sys/{}: No such file or directory", name.replace('.', "/"))
}

fn run(args: &[String]) -> Result<u8, String> {
    let mut value_only = false;
    let mut names = Vec::new();
    for a in args {
        match a.as_str() {
            "-n" => value_only = true,
            "-w" | "-a" | "-q" => {}
            _ => names.push(a.clone()),
        }
    }
    let mut c = netlink::Client::connect().map_err(|e| e.to_string())?;
    if names.is_empty() {
        for (k, v) in fetch(&mut c)? {
            println!("{}", line(k, v, value_only));
        }
        return Ok(0);
    }
    let mut status = 0;
    for n in &names {
        let (name, value) = match n.split_once('=') {
            Some((a, b)) => (a.trim(), Some(b.trim())),
            None => (n.as_str(), None),
        };
        let Some(k) = Key::from_name(name) else {
            eprintln!("{}", unknown(name));
            status = 255;
            continue;
        };
        if let Some(v) = value {
            if !k.writable() {
                // As sysctl on a file without write permission.
                eprintln!("sysctl: permission denied on key \"{PREFIX}{}\"", k.name());
                status = 255;
                continue;
            }
            let Ok(v) = v.parse::<u32>() else {
                eprintln!("sysctl: setting key \"{PREFIX}{}\": Invalid argument", k.name());
                status = 255;
                continue;
            };
            let mut buf = [0u8; 32];
            let mut enc = Encoder::new(&mut buf);
            enc.put_u32(cw::A_SYSCTL_KEY, k as u32);
            enc.put_u32(cw::A_SYSCTL_VALUE, v);
            let n = enc.len();
            if let Err(e) = c.request(cw::CMD_CT_SYSCTL_SET, buf[..n].to_vec()) {
                eprintln!("sysctl: setting key \"{PREFIX}{}\": {e}", k.name());
                status = 255;
                continue;
            }
        }
        let all = fetch(&mut c)?;
        if let Some((_, v)) = all.iter().find(|(x, _)| *x == k) {
            println!("{}", line(k, *v, value_only));
        }
    }
    Ok(status)
}

/// Runs `rnfctl sysctl ...`; the exit status.
pub fn main(args: &[String]) -> u8 {
    match run(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rnfctl sysctl: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnf_engine::conntrack::settings::SYSCTLS;

    #[test]
    fn names_and_lines() {
        assert_eq!(line(Key::Max, 65536, false), "net.netfilter.nf_conntrack_max = 65536");
        assert_eq!(line(Key::Max, 65536, true), "65536");
        assert_eq!(SYSCTLS.len(), rnf_engine::conntrack::settings::NUM_KEYS);
        assert_eq!(unknown("net.netfilter.nf_x"), "sysctl: cannot stat /proc/sys/net/netfilter/nf_x: No such file or directory");
    }
}
