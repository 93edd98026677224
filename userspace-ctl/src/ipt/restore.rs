// SPDX-License-Identifier: GPL-2.0

//! `iptables-restore`: reads the iptables-save format and applies it.
//!
//! The file format and every message are iptables-restore 1.8.9's (`*table`, `:CHAIN POLICY
//! [p:b]`, rule lines that are iptables arguments, `COMMIT`, `#` comments; `-n`, `-c`, `-T`,
//! `-t`, `-v`). One thing differs on purpose: iptables-restore commits each table at its
//! `COMMIT` line, so an error in a later table leaves the earlier ones changed. rnfctl reads and
//! checks the whole input first (including the kernel's checks, [`check_table`]) and commits
//! the tables only when all of it is good: all or nothing.

use std::collections::BTreeMap;
use std::io::Write;

use rnf_engine::rule::{Counters, Policy, TableId};

use super::command::{check_table, do_command, reset_policy_counters};
use super::errors::{iptc_message, render_fail, Op, Prog};
use super::model::Table;
use super::parse::{self, Fail, FailKind, VERSION};
use super::getopt::{mini_getopt, tokenize};
use super::{Backend, IptError};


/// `parse_counters`: `[p:b]`.
fn parse_counters(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?;
    let (p, rest) = inner.split_once(':')?;
    let b = rest.strip_suffix(']').unwrap_or(rest);
    let b = b.split(']').next()?;
    Some(Counters { packets: parse::c_scanf_llu(p)?, bytes: parse::c_scanf_llu(b)? })
}

/// True when `iptables-restore ARGS` reads its standard input (no file argument given).
pub fn restore_reads_stdin(args: &[String]) -> bool {
    parse_args(args).map(|o| o.file.is_none()).unwrap_or(false)
}

#[derive(Debug, Default)]
struct Opts {
    counters: bool,
    verbose: u32,
    test: bool,
    noflush: bool,
    table: Option<String>,
    file: Option<String>,
    usage: bool,
    version: bool,
    binary_warning: bool,
    /// `-w`: seconds (-1: without a number); rnfctl waits for no lock.
    wait: i64,
    /// `-W` given (iptables warns that it ignores it).
    wait_interval: bool,
}

fn usage_text() -> String {
    "Usage: iptables-restore [-c] [-v] [-V] [-t] [-h] [-n] [-w secs] [-W usecs] [-T table] [-M command] [file]\n\
     \t   [ --counters ]\n\
     \t   [ --verbose ]\n\
     \t   [ --version]\n\
     \t   [ --test ]\n\
     \t   [ --help ]\n\
     \t   [ --noflush ]\n\
     \t   [ --wait=<seconds>\n\
     \t   [ --table=<TABLE> ]\n\
     \t   [ --modprobe=<command> ]"
        .to_string()
}


fn parse_args(args: &[String]) -> Result<Opts, IptError> {
    const LONG: [(&str, u8, char); 10] = [
        ("counters", 0, 'c'),
        ("verbose", 0, 'v'),
        ("version", 0, 'V'),
        ("test", 0, 't'),
        ("help", 0, 'h'),
        ("noflush", 0, 'n'),
        ("modprobe", 1, 'M'),
        ("table", 1, 'T'),
        ("wait", 2, 'w'),
        ("wait-interval", 2, 'W'),
    ];
    // `-w`/`-W` without an attached value take the next argument if it is no option
    // (parse_wait_time, parse_wait_interval): given to getopt as `--wait=N`.
    let mut kept: Vec<String> = Vec::with_capacity(args.len());
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let long = match a.as_str() {
            "-w" | "--wait" => "--wait",
            "-W" | "--wait-interval" => "--wait-interval",
            _ => {
                kept.push(a.clone());
                continue;
            }
        };
        match it.peek() {
            Some(v) if !v.starts_with('-') && !v.starts_with('!') => kept.push(format!("{long}={}", it.next().map_or("", |v| v.as_str()))),
            _ => kept.push(a.clone()),
        }
    }
    let args = &kept[..];
    let (opts, mut rest) = mini_getopt("iptables-restore", args, "bcvVthnwWM:T:", &LONG).map_err(|m| IptError {
        message: format!("{m}\nTry `iptables-restore -h' for more information."),
        status: 1,
    })?;
    let mut o = Opts::default();
    for (c, val) in opts {
        match c {
            'b' => o.binary_warning = true,
            'c' => o.counters = true,
            'v' => o.verbose += 1,
            'V' => {
                o.version = true;
                return Ok(o);
            }
            't' => o.test = true,
            'h' => {
                o.usage = true;
                return Ok(o);
            }
            'n' => o.noflush = true,
            'w' => {
                o.wait = -1;
                if let Some(v) = val {
                    o.wait = c_int(&v).ok_or_else(|| wait_error("wait seconds not numeric"))?;
                }
            }
            'W' => {
                let v = val.ok_or_else(|| wait_error("wait interval value required"))?;
                let usec = c_uint_prefix(&v).ok_or_else(|| wait_error("wait interval not numeric"))?;
                if usec > 999_999 {
                    return Err(wait_error(&format!("too long usec wait {usec} > 999999 usec")));
                }
                o.wait_interval = true;
            }
            'T' => o.table = val,
            _ => {}
        }
    }
    if o.wait_interval && o.wait == 0 {
        return Err(IptError { message: "Option --wait-interval requires option --wait".into(), status: 1 });
    }
    match rest.len() {
        0 => {}
        1 => o.file = rest.pop(),
        _ => return Err(IptError { message: "Unknown arguments found on commandline".into(), status: 1 }),
    }
    Ok(o)
}

/// `iptables-restore ARGS`, reading `input` (standard input) unless a file is named in `args`.
/// Standard output (comments with `-v`, the verbose echo) goes to `out`. On failure, the
/// error's `message` is the complete text for standard error, `status` the exit status.
///
/// All or nothing: nothing is committed unless the whole input parses and every table passes
/// the kernel's checks.
pub fn restore_main(
    args: &[String],
    input: &str,
    backend: &mut dyn Backend,
    out: &mut dyn Write,
) -> Result<(), IptError> {
    restore_main_io(args, input, backend, out, &mut std::io::stderr())
}

/// [`restore_main`] with standard error given.
pub fn restore_main_io(
    args: &[String],
    input: &str,
    backend: &mut dyn Backend,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), IptError> {
    let io = |e: std::io::Error| IptError::other(format!("iptables-restore: {e}"));
    let o = parse_args(args)?;
    if o.wait_interval {
        err.write_all(b"Ignoring deprecated --wait-interval option.\n").map_err(io)?;
    }
    if o.binary_warning {
        err.write_all(b"-b/--binary option is not implemented\n").map_err(io)?;
    }
    if o.version {
        return out.write_all(format!("iptables-restore v{VERSION}\n").as_bytes()).map_err(io);
    }
    if o.usage {
        err.write_all(usage_text().as_bytes()).map_err(io)?;
        err.write_all(b"\n").map_err(io)?;
        return Ok(());
    }
    let file_text;
    let input = match &o.file {
        Some(f) => {
            file_text = std::fs::read(f).map_err(|e| {
                let s = e.to_string();
                let s = s.split(" (os error").next().unwrap_or(&s).to_string();
                IptError { message: format!("Can't open {f}: {s}"), status: 1 }
            })?;
            String::from_utf8_lossy(&file_text).into_owned()
        }
        None => input.to_string(),
    };
    let mut text = String::new();
    let res = run(&o, &input, backend, &mut text, err);
    out.write_all(text.as_bytes()).map_err(io)?;
    res
}

/// One table being restored.
struct Staged {
    table: Table,
    /// Line of the COMMIT that closed it (for "line N failed").
    commit_line: usize,
}

fn line_failed(line: usize) -> IptError {
    IptError { message: format!("iptables-restore: line {line} failed"), status: 1 }
}

fn run(
    o: &Opts,
    input: &str,
    backend: &mut dyn Backend,
    out: &mut String,
    err: &mut dyn Write,
) -> Result<(), IptError> {
    // A --noflush restore goes to the tables as they are when it can: nothing is read, and
    // it costs what the file changes. Anything refused changed nothing and is done below.
    if o.noflush && !o.test && o.verbose == 0 && o.table.is_none() {
        if let Some((tables, warnings)) = super::noflush::edits(input, o.counters) {
            let owned: Vec<Vec<super::CurrentEdit<'_>>> =
                tables.iter().map(|t| t.edits.iter().map(|e| e.current()).collect()).collect();
            let req: Vec<(TableId, &[super::CurrentEdit<'_>])> =
                tables.iter().zip(&owned).map(|(t, e)| (t.table, e.as_slice())).collect();
            if backend.change_current_tables(&req) {
                for w in &warnings {
                    let _ = err.write_all(w.as_bytes());
                }
                return Ok(());
            }
        }
    }
    let param = |f: &Fail, line: usize| render_fail(f, Prog::Restore, Some(line));
    let perr = |msg: String, line: usize| param(&Fail::param(msg), line);
    // Tables as they will be committed, in the order of their first COMMIT.
    let mut staged: BTreeMap<TableId, Staged> = BTreeMap::new();
    // With --noflush, each table as first loaded: only what the file changed is sent.
    let mut loaded_tables: BTreeMap<TableId, Table> = BTreeMap::new();
    let mut order: Vec<TableId> = Vec::new();
    let mut current: Option<Table> = None;
    let mut curtable = String::new();
    let mut in_table = false;
    // The table holds a rule the kernel will refuse at COMMIT.
    let mut poisoned = false;
    // The table changed since its `*` line (libiptc commits only then).
    let mut changed = false;
    let mut line = 0usize;
    // fgets: lines keep their newline; the last may lack it.
    let mut rest = input;
    while !rest.is_empty() {
        let (buffer, next) = match rest.find('\n') {
            Some(p) => (&rest[..=p], &rest[p + 1..]),
            None => (rest, ""),
        };
        rest = next;
        line += 1;
        let mut ret = false;
        if buffer.starts_with('\n') {
            continue;
        } else if buffer.starts_with('#') {
            if o.verbose > 0 {
                out.push_str(buffer);
            }
            continue;
        } else if buffer == "COMMIT\n" && in_table {
            if poisoned && !o.test {
                return Err(line_failed(line));
            }
            poisoned = false;
            if let Some(t) = current.take() {
                if !o.test && changed {
                    if !order.contains(&t.id) {
                        order.push(t.id);
                    }
                    staged.insert(t.id, Staged { table: t, commit_line: line });
                }
            }
            ret = true;
            in_table = false;
        } else if buffer.starts_with('*') && !in_table {
            let name = buffer[1..].split([' ', '\t', '\n']).find(|s| !s.is_empty());
            let Some(name) = name else {
                return Err(perr(format!("iptables-restore: line {line} table name invalid"), line));
            };
            curtable = name.chars().take(32).collect();
            if o.table.as_deref().is_some_and(|t| t != name) {
                continue;
            }
            let Some(id) = TableId::from_name(name) else {
                return Err(perr(format!("iptables-restore: unable to initialize table '{name}'"), line));
            };
            let loaded = backend.load(id)?;
            if o.noflush && !loaded_tables.contains_key(&id) {
                loaded_tables.insert(id, loaded.clone());
            }
            let mut t = match staged.get(&id) {
                Some(s) => s.table.clone(),
                None => loaded,
            };
            changed = !o.noflush;
            if !o.noflush {
                for c in &mut t.chains {
                    if o.verbose > 0 {
                        out.push_str(&format!("Flushing chain `{}'\n", c.name));
                    }
                    c.rules.clear();
                }
                if o.verbose > 0 {
                    for c in t.chains.iter().filter(|c| !c.is_builtin()) {
                        out.push_str(&format!("Deleting chain `{}'\n", c.name));
                    }
                }
                t.chains.retain(|c| c.is_builtin());
            }
            current = Some(t);
            ret = true;
            in_table = true;
        } else if buffer.starts_with(':') && in_table {
            let mut toks = buffer[1..].split([' ', '\t', '\n']).filter(|s| !s.is_empty());
            let Some(chain) = toks.next() else {
                return Err(perr(format!("iptables-restore: line {line} chain name invalid"), line));
            };
            if chain.len() >= 29 {
                return Err(perr(format!("Invalid chain name `{chain}' (28 chars max)"), line));
            }
            let t = current.as_mut().ok_or_else(|| line_failed(line))?;
            let builtin = t.chain(chain).is_some_and(|c| c.is_builtin());
            if !builtin || policy_given(buffer) {
                changed = true;
            }
            if !builtin {
                if o.noflush && t.chain(chain).is_some() {
                    if let Some(c) = t.chain_mut(chain) {
                        c.rules.clear();
                    }
                } else if t.chain(chain).is_some() || matches!(chain, "ACCEPT" | "DROP" | "QUEUE" | "RETURN") {
                    return Err(perr(format!("error creating chain '{chain}':File exists"), line));
                } else {
                    t.add_user_chain(chain);
                }
            }
            let Some(policy) = toks.next() else {
                return Err(perr(format!("iptables-restore: line {line} policy invalid"), line));
            };
            if policy != "-" {
                let mut count = Counters::default();
                if o.counters {
                    match toks.next().and_then(parse_counters) {
                        Some(c) => count = c,
                        None => return Err(perr(format!("invalid policy counters for chain '{chain}'"), line)),
                    }
                }
                let set = (|| {
                    let c = match t.chain_mut(chain) {
                        Some(c) if c.is_builtin() => c,
                        _ => return Err(ENOENT_),
                    };
                    c.policy = Some(match policy {
                        "ACCEPT" => Policy::Accept,
                        "DROP" => Policy::Drop,
                        _ => return Err(EINVAL_),
                    });
                    c.counters = count;
                    c.set_counters = true;
                    Ok(())
                })();
                if let Err(e) = set {
                    return Err(render_fail(
                        &Fail::other(format!(
                            "Can't set policy `{policy}' on `{chain}' line {line}: {}\n",
                            iptc_message(Op::SetPolicy, e)
                        )),
                        Prog::Restore,
                        None,
                    ));
                }
            }
            ret = true;
        } else if in_table {
            let mut parsestart = buffer;
            let mut pcnt: Option<&str> = None;
            let mut bcnt: Option<&str> = None;
            if buffer.starts_with('[') {
                let Some(close) = buffer.find(']') else {
                    return Err(perr(format!("Bad line {line}: need ]"), line));
                };
                let inner = &buffer[1..close];
                let mut parts = inner.splitn(2, ':');
                let p = parts.next().filter(|s| !s.is_empty());
                let Some(p) = p else {
                    return Err(perr(format!("Bad line {line}: need :"), line));
                };
                let b = parts.next().filter(|s| !s.is_empty());
                let Some(b) = b else {
                    return Err(perr(format!("Bad line {line}: need ]"), line));
                };
                pcnt = Some(p);
                bcnt = Some(b);
                parsestart = &buffer[close + 1..];
            }
            let mut argv: Vec<String> = vec!["iptables".into(), "-t".into(), curtable.clone()];
            if !o.noflush {
                for _ in 0..o.verbose {
                    argv.push("-v".into());
                }
            }
            if o.counters {
                if let (Some(p), Some(b)) = (pcnt, bcnt) {
                    argv.push("--set-counters".into());
                    argv.push(p.into());
                    argv.push(b.into());
                }
            }
            argv.extend(tokenize(parsestart));
            let parsed = parse::parse_argv(argv, true).map_err(|f| param(&f, line))?;
            for w in &parsed.warnings {
                let _ = err.write_all(w.as_bytes());
            }
            if parsed.early_exit.is_some() {
                // An IPv6-only line (`-6 ...`): ignored.
                continue;
            }
            let t = current.as_mut().ok_or_else(|| line_failed(line))?;
            let mut warnings = Vec::new();
            let mut lister = |_: &Table, _: Option<&str>, _: &mut String| -> Result<(), Fail> { Ok(()) };
            let res = do_command(&parsed, t, out, &mut warnings, &mut lister);
            for w in &warnings {
                let _ = err.write_all(w.as_bytes());
            }
            match res {
                Ok(outcome) => {
                    ret = true;
                    changed |= outcome.changed;
                }
                Err(f) => match f.kind {
                    FailKind::Errno(_) if f.msg == "Deferred" => {
                        poisoned = true;
                        changed = true;
                        ret = true;
                    }
                    FailKind::Errno(_) | FailKind::Plain => ret = false,
                    _ => return Err(param(&f, line)),
                },
            }
        }
        if o.table.is_some() && o.table.as_deref() != Some(curtable.as_str()) {
            continue;
        }
        if !ret {
            return Err(line_failed(line));
        }
    }
    if in_table {
        return Err(IptError { message: format!("iptables-restore: COMMIT expected at line {}", line + 1), status: 1 });
    }
    // The kernel's checks on every table, before committing any.
    for id in &order {
        let s = &staged[id];
        if check_table(&s.table).is_err() {
            return Err(line_failed(s.commit_line));
        }
    }
    // The whole file is one transaction (iptables-legacy commits table by table, so a later
    // table's failure leaves the earlier ones changed; here nothing changes).
    for id in &order {
        let s = staged.get_mut(id).ok_or_else(|| line_failed(line))?;
        reset_policy_counters(&mut s.table);
    }
    let tables: Vec<&Table> = order.iter().filter_map(|id| staged.get(id)).map(|s| &s.table).collect();
    if tables.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(&Table, &Table)> = tables.iter().filter_map(|t| Some((loaded_tables.get(&t.id)?, *t))).collect();
    let sent = if o.noflush && pairs.len() == tables.len() { backend.commit_changes(&pairs) } else { backend.commit_all(&tables) };
    sent.map_err(|(which, _)| {
        let at = which.and_then(|t| staged.get(&t)).or_else(|| order.last().and_then(|t| staged.get(t)));
        line_failed(at.map_or(line, |s| s.commit_line))
    })
}

/// A parameter problem of `-w`/`-W`, worded as iptables-restore's.
fn wait_error(what: &str) -> IptError {
    IptError {
        message: format!("iptables-restore v{VERSION} (legacy): {what}\nTry `iptables-restore -h' or 'iptables-restore --help' for more information."),
        status: 2,
    }
}

/// `sscanf("%u")`: the leading decimal digits (after blanks and a sign), if any.
fn c_uint_prefix(s: &str) -> Option<u64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let digits: &str = &t[..t.bytes().take_while(u8::is_ascii_digit).count()];
    let v: u64 = digits.parse().ok()?;
    Some(if neg { (v as u32).wrapping_neg() as u64 } else { v })
}

/// `sscanf("%i")` of a whole argument: decimal, `0x` hex or `0` octal, with a sign.
fn c_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A `:CHAIN POLICY` line names a policy (not `-`).
fn policy_given(buffer: &str) -> bool {
    buffer[1..].split([' ', '\t', '\n']).filter(|s| !s.is_empty()).nth(1).is_some_and(|p| p != "-")
}

const ENOENT_: i32 = 2;
const EINVAL_: i32 = 22;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_like_iptables_restore() {
        let t = |s: &str| tokenize(s);
        assert_eq!(t("-A INPUT -j ACCEPT\n"), ["-A", "INPUT", "-j", "ACCEPT"]);
        assert_eq!(t("--comment \"a b\" x"), ["--comment", "a b", "x"]);
        assert_eq!(t("--comment \"say \\\"hi\\\"\""), ["--comment", "say \"hi\""]);
        assert_eq!(t("--comment \"\""), ["--comment", ""]);
        assert_eq!(t("a\"b c\"d"), ["ab c", "d"]);
        assert_eq!(t("  a\t\tb  "), ["a", "b"]);
        assert_eq!(t("'single'"), ["'single'"]);
    }

    /// Times a restore of the file `RNF_RESTORE_PROFILE` names in memory (parse, checks,
    /// encoding): `RNF_RESTORE_PROFILE=f.ipt cargo test --release -p rnfctl restore_profile
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn restore_profile() {
        let Ok(path) = std::env::var("RNF_RESTORE_PROFILE") else { return };
        let text = std::fs::read_to_string(path).unwrap();
        let mut best = std::time::Duration::MAX;
        for _ in 0..10 {
            let mut b = crate::ipt::command::mem::MemBackend::default();
            let t0 = std::time::Instant::now();
            restore_main_io(&[], &text, &mut b, &mut Vec::new(), &mut Vec::new()).unwrap();
            let t1 = std::time::Instant::now();
            let t = b.load(TableId::Filter).unwrap();
            let t2 = std::time::Instant::now();
            crate::validate::check(&t).unwrap();
            let t3 = std::time::Instant::now();
            let bytes = crate::backend::encode_tables(&[&t]);
            let t4 = std::time::Instant::now();
            std::eprintln!("restore (parse, check, commit in memory) {:?}; clone {:?}; check {:?}; encode {:?} ({} bytes)", t1 - t0, t2 - t1, t3 - t2, t4 - t3, bytes.len());
            best = best.min(t1 - t0);
        }
        std::eprintln!("best restore {best:?}");
    }
}
