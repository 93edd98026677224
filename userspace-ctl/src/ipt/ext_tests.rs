// SPDX-License-Identifier: GPL-2.0

//! iptables' own extension tests (`tests/golden/iptables/ext/*.t`, from iptables 1.8.9) run
//! through rnfctl's iptables as iptables-test.py runs them against iptables-legacy: for every
//! rule line and every chain of its `:CHAIN,...` line, `iptables -t TABLE -A CHAIN RULE` must
//! succeed (OK) or fail (FAIL); when it succeeds, `iptables-save` must print `-A CHAIN
//! EXPECTED` (here as a whole line, where iptables-test.py looks for it as a substring), and
//! `iptables -t TABLE -D CHAIN RULE` must delete the rule again.
//!
//! Files without variants, external commands or a second table are also run as
//! iptables-test.py's fast mode runs them: every OK line in one `iptables-restore` (chains in
//! hook order), after which `iptables-save` must print all the expected lines in that order.
//!
//! The commands go through [`iptables_main_io`] with the in-memory backend, so the table's
//! checks at commit (a target in the wrong table or chain, a match without its protocol) are
//! those of the kernel's replace, as in rust_nf.

use super::command::iptables_main_io;
use super::command::mem::MemBackend;
use super::getopt::tokenize;
use super::restore::restore_main_io;
use super::save::save_main_at;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/iptables/ext")
}

/// Lines where rnfctl differs from iptables-legacy 1.8.9 on purpose: (file, rule as written in
/// the file, reason). The test fails if a listed line agrees (the entry is stale).
const DEVIATIONS: &[(&str, &str, &str)] = &[(
    "libxt_recent.t",
    "-m recent --rcheck --hitcount 999 --name foo --mask 255.255.255.255 --rsource",
    "kernels with f4ebd03496f6 (xt_recent: lift restrictions on max hitcount value) take any hit \
     count below 65536, as rust_nf does; iptables 1.8.11's file tests 65536 instead (below)",
)];

/// What one rule line expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Ok,
    Fail,
    /// Accepted, but not found in the output (iptables-test.py's NOMATCH).
    NoMatch,
}

fn res_of(s: &str) -> Res {
    match s {
        "OK" => Res::Ok,
        "FAIL" => Res::Fail,
        "NOMATCH" => Res::NoMatch,
        other => panic!("unknown result {other:?}"),
    }
}

/// The result for iptables-legacy (iptables-test.py's `variant_res` with the legacy binary).
fn legacy_res(items: &[&str]) -> Res {
    let res = res_of(items[2].trim_end());
    match items.get(3).map(|v| v.trim_end()) {
        None | Some("LEGACY") => res,
        Some("NFT") => match items.get(4) {
            Some(alt) => res_of(alt.trim_end()),
            None => match res {
                Res::Ok => Res::Fail,
                Res::Fail | Res::NoMatch => Res::Ok,
            },
        },
        Some(v) => panic!("unknown variant {v:?}"),
    }
}

fn run(be: &mut MemBackend, args: &[String]) -> Result<(), String> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    iptables_main_io(args, be, &mut out, &mut err).map_err(|e| e.message)
}

fn save(be: &mut MemBackend) -> String {
    let mut out = Vec::new();
    save_main_at(&[], be, &mut out, "DATE").unwrap();
    String::from_utf8(out).unwrap()
}

/// Runs one .t file; returns the lines checked, the disagreements as (rule, text), and
/// whether it also ran in fast mode.
fn run_file(name: &str, text: &str) -> (usize, Vec<(String, String)>, bool) {
    let mut be = MemBackend::default();
    let mut table = "filter".to_string();
    let mut chains: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut bad = Vec::new();
    // Fast mode: (chain, rule, expected) of the OK lines; whether the file allows it
    // (iptables-test.py's fast_run_possible).
    let mut fast: Vec<(String, String, String)> = Vec::new();
    let mut fast_ok = true;
    let mut tables_seen = 0;
    for (lineno, line) in text.lines().enumerate() {
        let lineno = lineno + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(c) = line.strip_prefix(':') {
            chains = c.trim_end().split(',').map(String::from).collect();
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim_end().to_string();
            tables_seen += 1;
            fast_ok &= tables_seen == 1 && checked == 0;
            continue;
        }
        if let Some(cmd) = line.strip_prefix('@').or_else(|| line.strip_prefix('%')) {
            // External commands, run as is and their status ignored (as iptables-test.py
            // does); only iptables ones can run here (the others, nfct and nfacct, prepare
            // objects for lines the files keep commented out or expect to fail).
            fast_ok = false;
            let words = tokenize(cmd);
            if words.first().map(String::as_str) == Some("iptables") {
                let _ = run(&mut be, &words[1..]);
            }
            continue;
        }
        let items: Vec<&str> = line.split(';').collect();
        assert!(items.len() >= 3, "{name}:{lineno}: not a rule line");
        assert!(!chains.is_empty(), "{name}:{lineno}: no chain");
        let rule = items[0];
        let res = legacy_res(&items);
        checked += 1;
        fast_ok &= items.len() == 3;
        if res == Res::Ok {
            let want = if items[1] == "=" { rule } else { items[1] };
            fast.extend(chains.iter().map(|c| (c.clone(), rule.to_string(), want.to_string())));
        }
        for chain in &chains {
            let mut problem = |what: String| bad.push((rule.to_string(), format!("{name}:{lineno} {chain}: {what}")));
            let words = tokenize(rule);
            let cmd = |op: &str| -> Vec<String> {
                let mut a: Vec<String> = vec!["-t".into(), table.clone(), op.into(), chain.clone()];
                a.extend(words.iter().cloned());
                a
            };
            match run(&mut be, &cmd("-A")) {
                Err(e) => {
                    if res != Res::Fail {
                        problem(format!("refused ({e}), iptables accepts it"));
                    }
                    continue;
                }
                Ok(()) if res == Res::Fail => problem("accepted, iptables refuses it".into()),
                Ok(()) => {}
            }
            let want = format!("-A {chain} {}", if items[1] == "=" { rule } else { items[1] }).trim_end().to_string();
            let saved = save(&mut be);
            let found = saved.lines().any(|l| l == want);
            match res {
                Res::Ok if !found => {
                    let got: Vec<&str> = saved.lines().filter(|l| l.starts_with(&format!("-A {chain} "))).collect();
                    let how = if saved.contains(&want) { "only as part of a line" } else { "not" };
                    problem(format!(
                        "printed {how} as\n      want: {want}\n      got:  {}",
                        got.join("\n            ")
                    ));
                }
                Res::NoMatch if saved.contains(&want) => problem(format!("printed as {want}, iptables does not")),
                _ => {}
            }
            if let Err(e) = run(&mut be, &cmd("-D")) {
                problem(format!("cannot delete: {e}"));
            }
            let left = save(&mut be);
            if left.lines().any(|l| l.starts_with("-A ")) {
                problem(format!("rules left after -D:\n{left}"));
                // Start the next line from empty tables.
                be = MemBackend::default();
            }
        }
    }
    let fast_ran = fast_ok && !fast.is_empty();
    if fast_ran {
        bad.extend(fast_mode(name, &table, &fast));
    }
    (checked, bad, fast_ran)
}

/// iptables-test.py's `run_test_file_fast`: the OK lines in one restore, chains in hook order.
fn fast_mode(name: &str, table: &str, rules: &[(String, String, String)]) -> Vec<(String, String)> {
    let mut input = format!("*{table}\n");
    let mut want = Vec::new();
    for hook in ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] {
        for (chain, rule, expected) in rules.iter().filter(|r| r.0 == hook) {
            input.push_str(&format!("-A {chain} {rule}\n"));
            want.push(format!("-A {chain} {expected}"));
        }
    }
    input.push_str("COMMIT\n");
    let mut be = MemBackend::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    if let Err(e) = restore_main_io(&[], &input, &mut be, &mut out, &mut err) {
        return vec![(String::new(), format!("{name} (fast mode): iptables-restore failed: {}", e.message))];
    }
    let saved = save(&mut be);
    let got: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A ")).collect();
    if got == want {
        return Vec::new();
    }
    let mut what = format!("{name} (fast mode): iptables-save differs");
    for (i, w) in want.iter().enumerate() {
        if got.get(i) != Some(&w.as_str()) {
            what.push_str(&format!("\n      want: {w}\n      got:  {}", got.get(i).unwrap_or(&"")));
        }
    }
    vec![(String::new(), what)]
}

#[test]
fn iptables_own_extension_tests() {
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} .t files", files.len());
    let mut total = 0;
    let mut failed = String::new();
    let mut nfailed = 0;
    let mut deviating = Vec::new();
    let mut fast = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (n, bad, fast_ran) = run_file(&name, &std::fs::read_to_string(f).unwrap());
        total += n;
        fast += usize::from(fast_ran);
        for (rule, what) in bad {
            if DEVIATIONS.iter().any(|(file, r, _)| *file == name && *r == rule) {
                deviating.push((name.clone(), rule));
                continue;
            }
            nfailed += 1;
            failed.push_str(&format!("{what}\n"));
        }
    }
    eprintln!(
        "iptables' extension tests: {total} lines in {} files ({fast} also in fast mode), {} lines differ on purpose",
        files.len(),
        DEVIATIONS.len()
    );
    for (file, rule, _) in DEVIATIONS {
        assert!(
            deviating.iter().any(|(f, r)| f == file && r == rule),
            "{file}: {rule} is listed as a deviation but agrees with iptables: remove it"
        );
    }
    assert!(nfailed == 0, "{nfailed} disagreements with iptables-legacy 1.8.9:\n{failed}");
}

/// Lines of the extension tests' kind that the 1.8.9 files lack, with what iptables-legacy 1.8.9
/// does (read from its source): lines iptables 1.8.11 added to the files of supported
/// extensions, with 1.8.9's result where a later change made it differ (marked "1.8.11:"), and
/// NAT lines (libxt_NAT.c: ports are parsed when the option is met, with the protocol given
/// before it; addresses with inet_pton; the first port in any C base or as a service name, the
/// last one a number only).
#[test]
fn lines_beyond_the_1_8_9_files() {
    let text = "\
:INPUT
-m recent --rcheck --hitcount 65535 --name foo --mask 255.255.255.255 --rsource;=;OK
-m recent --rcheck --hitcount 65536 --name foo --mask 255.255.255.255 --rsource;;FAIL
-m connbytes --connbytes : --connbytes-mode packets --connbytes-dir original;-m connbytes --connbytes 0 --connbytes-mode packets --connbytes-dir original;OK
-m connbytes --connbytes :1000 --connbytes-mode packets --connbytes-dir original;-m connbytes --connbytes 0:1000 --connbytes-mode packets --connbytes-dir original;OK
-m connbytes --connbytes 1000: --connbytes-mode packets --connbytes-dir original;-m connbytes --connbytes 1000 --connbytes-mode packets --connbytes-dir original;OK
-m connbytes --connbytes 1000:1000 --connbytes-mode packets --connbytes-dir original;=;OK
-m connbytes --connbytes 1000:0 --connbytes-mode packets --connbytes-dir original;;FAIL
# 1.8.11: FAIL (a protocol 0 is refused since 2e704f6d; 1.8.9 tests the bit of ! --ctstatus)
-m conntrack --ctproto 0;=;OK
-m conntrack ! --ctproto 0;=;OK
-m conntrack ! --ctstatus NONE --ctproto 0;;FAIL
-m conntrack --ctexpire 3:3;-m conntrack --ctexpire 3;OK
# 1.8.11: FAIL (decreasing ranges are refused since 30a7f112)
-m conntrack --ctexpire 4:3;=;OK
-m conntrack --ctorigsrcport 4:3;=;OK
-m conntrack --ctorigsrcport :;-m conntrack --ctorigsrcport 0:65535;OK
-m conntrack --ctrepldstport 4:4;-m conntrack --ctrepldstport 4;OK
-m length --length :;-m length --length 0:65535;OK
# XTTYPE_HOST(MASK) options (conntrack addresses, recent --mask, NETMAP --to) are read with
# getaddrinfo: inet_aton's short forms
-m conntrack --ctorigsrc 10;-m conntrack --ctorigsrc 0.0.0.10;OK
-m conntrack --ctorigdst 10.1;-m conntrack --ctorigdst 10.0.0.1;OK
-m conntrack --ctreplsrc 0xa000000/255.0.0.0;-m conntrack --ctreplsrc 10.0.0.0/8;OK
-m conntrack --ctrepldst 012.0.0.0/8;-m conntrack --ctrepldst 10.0.0.0/8;OK
-m conntrack --ctorigsrc 10.0.0.0/255.0.255.0;-m conntrack --ctorigsrc 10.0.0.0;OK
# a prefix length over 32 is read as a numeric mask (0.0.0.33), not one of 1s then 0s: all 32 bits
-m conntrack --ctorigsrc 1.2.3.4/33;-m conntrack --ctorigsrc 1.2.3.4;OK
-m conntrack --ctorigsrc 1.2.3.4/-1;;FAIL
-m conntrack --ctorigsrc 1.2.3.256;;FAIL
-m conntrack --ctorigsrc 1.2.65536;;FAIL
-m conntrack --ctorigsrc 1.2.65535;-m conntrack --ctorigsrc 1.2.255.255;OK
-m conntrack --ctorigsrc 1.1.1.1,2.2.2.2;;FAIL
# iptables 1.8.9 prints the address as given (10.1.2.3/8); rnfctl's rule model keeps it masked
-m conntrack --ctorigsrc 10.1.2.3/8;-m conntrack --ctorigsrc 10.0.0.0/8;OK
-m recent --rcheck --mask 24;-m recent --rcheck --name DEFAULT --mask 0.0.0.24 --rsource;OK
-m recent --rcheck --mask 255.255.0;-m recent --rcheck --name DEFAULT --mask 255.255.0.0 --rsource;OK
-m length --length 4:4;-m length --length 4;OK
-p icmp -m icmp --icmp-type echo-reply;-p icmp -m icmp --icmp-type 0;OK
# 1.8.11: printed as 255/255
-p icmp -m icmp --icmp-type 255/255;-p icmp -m icmp --icmp-type any;OK
-p tcp -m tcp --sport :;-p tcp -m tcp;OK
# 1.8.11: printed as ! --sport 0:65535 (a86eb41e)
-p tcp -m tcp ! --sport :;-p tcp -m tcp;OK
-p udp -m udp --dport 4:4;-p udp -m udp --dport 4;OK
:FORWARD
-i + -j ACCEPT;-j ACCEPT;OK
# 1.8.11: printed as ! -i +
! -i +;;OK
-c ,3;;FAIL
-c 3,;;FAIL
-c ,;;FAIL
# 1.8.11: OK (1.8.9 reads the protocol from the whole word of the option)
--protocol=tcp --source=1.2.3.4 --destination=5.6.7.8/32 --in-interface=eth0 --out-interface=eth1 --jump=ACCEPT;;FAIL
-ptcp -s1.2.3.4 -d5.6.7.8/32 -ieth0 -oeth1 -jACCEPT;;FAIL
-i + -d 1.2.3.4;-d 1.2.3.4/32;OK
*nat
:PREROUTING
-p icmp -j DNAT --to-destination 1.1.1.1:5;=;OK
! -p tcp -j DNAT --to-destination 1.1.1.1:80;=;OK
-j DNAT --to-destination 1.1.1.1:80 -p tcp;;FAIL
-p tcp -j DNAT --to-destination 1.1.1.1:0x50;-p tcp -j DNAT --to-destination 1.1.1.1:80;OK
-p tcp -j DNAT --to-destination 1.1.1.1:010-020;-p tcp -j DNAT --to-destination 1.1.1.1:8-16;OK
-p tcp -j DNAT --to-destination 1.1.1.1:20-ssh;;FAIL
-p tcp -j DNAT --to-destination 1.1.1.1:20:30;;FAIL
-p tcp -j DNAT --to-destination :80;=;OK
-p tcp -j DNAT --to-destination 1.1.1.1:0;=;OK
-j NETMAP --to 10/8;-j NETMAP --to 0.0.0.0/8;OK
-j NETMAP --to 10.1.2.3/255.255.0.0;-j NETMAP --to 10.1.0.0/16;OK
-j NETMAP --to 10.1.2.3/ff;;FAIL
-p tcp -j DNAT --to-destination 1.1.1.1:10-20/5x;-p tcp -j DNAT --to-destination 1.1.1.1:10-20/5;OK
-j DNAT --to-destination 10;;FAIL
-j DNAT --to-destination 1.1.1;;FAIL
-j DNAT --to-destination 1.1.1.01;;FAIL
-j DNAT --to-destination [1.1.1.1];;FAIL
-p udp -j REDIRECT --to-ports 0x10;-p udp -j REDIRECT --to-ports 16;OK
-p icmp -j REDIRECT --to-ports 7;=;OK
-j REDIRECT --to-ports 7 -p tcp;;FAIL
:POSTROUTING
-p tcp -j SNAT --to-source 1.1.1.1:10-20/5;-p tcp -j SNAT --to-source 1.1.1.1:10-20/0;OK
-p tcp -j MASQUERADE --to-ports 10-20/5;-p tcp -j MASQUERADE --to-ports 10-20/0;OK
";
    let (n, bad, _) = run_file("nat-extra", text);
    assert_eq!(n, 66);
    let report: String = bad.iter().map(|(_, w)| format!("{w}\n")).collect();
    assert!(bad.is_empty(), "{report}");
}

/// The IPv4 files of iptables 1.8.9 for extensions rust_nf does not implement
/// (`ext/unsupported/`): every rule line, accepted by iptables or not, is refused in every
/// chain it names (a missing match or target, or an option no loaded extension has).
#[test]
fn unsupported_extensions_are_refused() {
    let mut files: Vec<_> = std::fs::read_dir(dir().join("unsupported"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} .t files", files.len());
    let mut lines = 0;
    let mut accepted = String::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut be = MemBackend::default();
        let mut table = "filter".to_string();
        let mut chains: Vec<String> = Vec::new();
        for line in std::fs::read_to_string(f).unwrap().lines() {
            if let Some(c) = line.strip_prefix(':') {
                chains = c.trim_end().split(',').map(String::from).collect();
            } else if let Some(t) = line.strip_prefix('*') {
                table = t.trim_end().to_string();
            } else if !(line.trim().is_empty() || line.starts_with(['#', '@', '%'])) {
                lines += 1;
                let rule = line.split(';').next().unwrap();
                for chain in &chains {
                    let mut args: Vec<String> = vec!["-t".into(), table.clone(), "-A".into(), chain.clone()];
                    args.extend(tokenize(rule));
                    if run(&mut be, &args).is_ok() {
                        accepted.push_str(&format!("{name}: -A {chain} {rule}\n"));
                    }
                }
            }
        }
    }
    eprintln!("unsupported extensions: {lines} lines in {} files, all refused", files.len());
    assert!(accepted.is_empty(), "accepted:\n{accepted}");
}
