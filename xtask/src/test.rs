// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask test`: host unit tests, then the in-VM integration tests, then the kernel log
//! check; ends with one line `N passed, N failed`.

use std::process::Command;

use crate::kernel::Kernel;
use crate::module::Built;
use crate::util::{repo_root, stage, Context, Result};
use crate::vm::{self, VmRun};

/// Tally of test outcomes.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped (missing prerequisite).
    pub skipped: usize,
    /// Names of the failed tests (host tests as `crate: path::name`, in-VM tests as `vm: name`).
    pub failed_names: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.failed_names.extend(o.failed_names);
    }

    /// A failure with a name (for failures outside any test: a VM that did not finish, ...).
    fn fail(&mut self, name: &str) {
        self.failed += 1;
        self.failed_names.push(name.to_string());
    }

    /// The closing lines: the failed tests' names, then `N passed, N failed[, N skipped]`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if !self.failed_names.is_empty() {
            s.push_str("failed tests:\n");
            for n in &self.failed_names {
                s.push_str(&format!("  {n}\n"));
            }
        }
        if self.skipped > 0 {
            s.push_str(&format!("{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped));
        } else {
            s.push_str(&format!("{} passed, {} failed", self.passed, self.failed));
        }
        s
    }
}

/// Names of failed cargo tests: `test some::name ... FAILED` lines.
pub fn cargo_failed_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("test ")?.strip_suffix(" ... FAILED").map(|n| format!("host: {n}")))
        .collect()
}

/// Sums cargo's `test result: ok. N passed; M failed; ...` lines.
pub fn parse_cargo_results(text: &str) -> Tally {
    let mut t = Tally::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { continue };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (n, what) = match words.as_slice() {
                [_, n, what, ..] if n.parse::<usize>().is_ok() => (n, what),
                [n, what, ..] => (n, what),
                _ => continue,
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            match *what {
                "passed" => t.passed += n,
                "failed" => t.failed += n,
                "ignored" => t.skipped += n,
                _ => {}
            }
        }
    }
    t
}

/// Reads the in-VM runner's `PASS name` / `FAIL name` / `SKIP name` lines.
pub fn parse_vm_results(text: &str) -> (Tally, Vec<String>) {
    let mut t = Tally::default();
    let mut failed = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("PASS"), Some(_)) => t.passed += 1,
            (Some("FAIL"), Some(name)) => {
                t.failed += 1;
                failed.push(name.to_string());
            }
            (Some("SKIP"), Some(_)) => t.skipped += 1,
            _ => {}
        }
    }
    (t, failed)
}

/// Kernel log lines that mean a kernel bug was caught: warnings, oopses, lockdep, KFENCE, ...
pub fn kernel_log_problems(dmesg: &str) -> Vec<String> {
    const BAD: &[&str] = &[
        "WARNING:",
        "BUG:",
        "BUG ",
        "Oops",
        "general protection fault",
        "kernel BUG",
        "lockdep is turned off",
        "DEBUG_LOCKS_WARN_ON",
        "possible circular locking",
        "possible irq lock inversion",
        "bad unlock balance",
        "lock held when returning",
        "possible recursive locking",
        "inconsistent lock state",
        "suspicious RCU usage",
        "KFENCE",
        "UBSAN",
        "list_add corruption",
        "list_del corruption",
        "Call Trace",
        "sleeping function called from invalid context",
        "rcu_preempt detected stalls",
        "rcu_sched self-detected stall",
        "INFO: task",
        "Kernel panic",
        "refcount_t:",
        "slab error",
        "Poison overwritten",
    ];
    dmesg.lines().filter(|l| BAD.iter().any(|b| l.contains(b))).map(str::to_string).collect()
}

/// Runs the host unit tests.
pub fn host() -> Result<Tally> {
    stage("test: host unit tests", |log| {
        let out = Command::new("cargo")
            .current_dir(repo_root())
            .args(["test", "--workspace", "--color=never"])
            .output()
            .ctx("starting cargo test")?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        log.line(&text);
        let mut t = parse_cargo_results(&text);
        t.failed_names = cargo_failed_names(&text);
        if !out.status.success() && t.failed == 0 {
            t.fail("host: cargo test (did not build or run; see the log)");
        }
        log.note = format!("{} passed, {} failed", t.passed, t.failed);
        if t.failed > 0 {
            for l in text.lines().filter(|l| l.contains("FAILED") || l.starts_with("error")) {
                eprintln!("  {l}");
            }
        }
        Ok(t)
    })
}

/// Runs the in-VM tests (all of `tests/vm/t-*.sh`, or those matching `filter`), then checks
/// the kernel log. `$RNF_GUESTS` (default 1) guests share the tests between them, each with
/// `$RNF_LANES` lanes (the runner's default when unset).
pub fn vm_tests(k: &Kernel, built: &Built, filter: &str) -> Result<Tally> {
    let guests: usize = std::env::var("RNF_GUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).clamp(1, 8);
    vm::remove_stale_dirs("test-");
    let outs: Vec<vm::RunDir> = (0..guests)
        .map(|g| vm::RunDir::named(&format!("test-{}-{g}", std::process::id())))
        .collect::<Result<_>>()?;
    println!("==> test: in-VM tests ({guests} guest(s), booting the test kernel)");
    let start = std::time::Instant::now();
    let mut env = format!("RNF_TESTS={}", crate::util::shell_quote(filter));
    for var in ["RNF_LANES", "RNF_TEST_TIMEOUT"] {
        if let Ok(v) = std::env::var(var) {
            env.push_str(&format!(" {var}={}", crate::util::shell_quote(&v)));
        }
    }
    let results: Vec<Result<(i32, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = outs
            .iter()
            .enumerate()
            .map(|(g, out)| {
                let env = &env;
                scope.spawn(move || {
                    let run = VmRun {
                        command: format!("{env} RNF_SHARD={g}/{guests} bash tests/vm/run.sh"),
                        rwdir: Some(&out.0),
                        timeout_secs: 40 * 60,
                        interactive: false,
                        label: if guests > 1 { format!("[g{g}] ") } else { String::new() },
                    };
                    vm::boot(k, built, &run)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("VM thread panicked".into()))).collect()
    });
    let mut t = Tally::default();
    for (g, (res, out)) in results.into_iter().zip(&outs).enumerate() {
        let guest = if guests > 1 { format!(" (guest {g})") } else { String::new() };
        let (code, text) = match res {
            Ok(r) => r,
            Err(e) => {
                println!("==> test: in-VM tests{guest} FAILED: {e}");
                t.fail(&format!("vm: the VM run{guest} ({e})"));
                continue;
            }
        };
        let (mut gt, failed) = parse_vm_results(&text);
        gt.failed_names = failed.iter().map(|n| format!("vm: {n}")).collect();
        if code != 0 && gt.failed == 0 {
            println!("    the VM runner{guest} exited with status {code}");
            gt.fail(&format!("vm: runner{guest} (exit status {code})"));
        }
        check_kernel_log(&mut gt, &out.0.join("dmesg.txt"), &guest);
        out.keep();
        t.add(gt);
    }
    println!(
        "==> test: in-VM tests done ({}): {} passed, {} failed, {} skipped",
        crate::util::fmt_secs(start.elapsed().as_secs_f64()),
        t.passed,
        t.failed,
        t.skipped
    );
    if t.passed + t.failed == 0 {
        println!("    no in-VM test ran");
        t.fail("vm: no test ran");
    }
    Ok(t)
}

/// The kernel log check of one guest, counted as one more test.
fn check_kernel_log(t: &mut Tally, path: &std::path::Path, guest: &str) {
    let dmesg = std::fs::read_to_string(path).unwrap_or_default();
    let problems = kernel_log_problems(&dmesg);
    if dmesg.is_empty() {
        println!("==> test: kernel log check{guest} FAILED: the guest saved no kernel log");
        t.fail(&format!("vm: kernel log check{guest} (no log saved)"));
    } else if problems.is_empty() {
        println!(
            "==> test: kernel log check{guest} ok ({} lines, no WARNING/BUG/Oops/lockdep/KFENCE)",
            dmesg.lines().count()
        );
        t.passed += 1;
    } else {
        println!("==> test: kernel log check{guest} FAILED:");
        for p in problems.iter().take(30) {
            println!("    {p}");
        }
        println!("    full log: {}", path.display());
        t.fail(&format!("vm: kernel log check{guest}"));
    }
}

/// Everything: host tests, the fuzz targets for `$RNF_FUZZ_SECONDS` each (default 10; 0
/// skips them), then the VM tests (those picked by `$RNF_TESTS`, else all).
pub fn run(k: &Kernel, built: &Built) -> Result<Tally> {
    let mut t = host()?;
    let secs: u64 = std::env::var("RNF_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    if secs > 0 {
        t.add(crate::fuzz::run(secs, false)?);
    }
    t.add(vm_tests(k, built, &std::env::var("RNF_TESTS").unwrap_or_default())?);
    Ok(t)
}

/// The in-VM tests `make quick` runs after the host tests: load, hooks, forwarding with
/// counters, a firewall with traffic, netlink input (about a minute in all).
pub const SMOKE_TESTS: &str = "hooks-listed forward-counters fw-filter netlink-input";

/// Host tests plus a short in-VM smoke test (`$RNF_TESTS` overrides the smoke set).
pub fn quick(k: &Kernel, built: &Built) -> Result<Tally> {
    let mut t = host()?;
    let filter = std::env::var("RNF_TESTS").unwrap_or_else(|_| SMOKE_TESTS.to_string());
    t.add(vm_tests(k, built, &filter)?);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lines_are_summed() {
        let text = "test result: ok. 18 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s\n\
                    test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured\n";
        let t = parse_cargo_results(text);
        assert_eq!((t.passed, t.failed, t.skipped), (21, 2, 1));
        let names = cargo_failed_names("test a::b ... ok\ntest c::d ... FAILED\n");
        assert_eq!(names, vec!["host: c::d".to_string()]);
    }

    #[test]
    fn vm_lines_are_counted() {
        let text = "PASS load_unload\nnoise\nFAIL hooks_listed (3s)\nSKIP foo\nPASS x\n";
        let (t, failed) = parse_vm_results(text);
        assert_eq!((t.passed, t.failed, t.skipped), (2, 1, 1));
        assert_eq!(failed, vec!["hooks_listed".to_string()]);
    }

    #[test]
    fn kernel_log_scan() {
        let clean = "[ 1.0] rust_nf: loaded\n[ 2.0] rust_nf: loading out-of-tree module taints kernel.\n\
                     [ 0.1] rcu: \tRCU lockdep checking is enabled.\n";
        assert!(kernel_log_problems(clean).is_empty());
        let bad = "[ 1.0] ok\n[ 2.0] WARNING: CPU: 0 PID: 1 at net/netfilter/core.c:1 x\n[ 3.0] BUG: KFENCE: use-after-free\n";
        assert_eq!(kernel_log_problems(bad).len(), 2);
    }
}
