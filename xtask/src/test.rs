// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask test`: host unit tests, then the in-VM integration tests, then the kernel log
//! check; ends with one line `N passed, N failed`.

use std::process::Command;

use crate::kernel::Kernel;
use crate::module::Built;
use crate::util::{repo_root, stage, Context, Result};
use crate::vm::{self, VmRun};

/// Tally of test outcomes.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped (missing prerequisite).
    pub skipped: usize,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
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
        if !out.status.success() && t.failed == 0 {
            t.failed = 1;
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

/// Runs the in-VM tests (all of `tests/vm/t-*.sh`, or those matching `$RNF_TESTS`), then checks
/// the kernel log.
pub fn vm_tests(k: &Kernel, built: &Built) -> Result<Tally> {
    let out = vm::results_dir("test")?;
    println!("==> test: in-VM tests (booting the test kernel)");
    let start = std::time::Instant::now();
    let filter = std::env::var("RNF_TESTS").unwrap_or_default();
    let run = VmRun {
        command: format!("RNF_TESTS='{filter}' bash tests/vm/run.sh"),
        rwdir: Some(&out),
        timeout_secs: 40 * 60,
        interactive: false,
    };
    let (code, text) = vm::boot(k, built, &run)?;
    let (mut t, failed) = parse_vm_results(&text);
    println!(
        "==> test: in-VM tests done ({}): {} passed, {} failed, {} skipped",
        crate::util::fmt_secs(start.elapsed().as_secs_f64()),
        t.passed,
        t.failed,
        t.skipped
    );
    if !failed.is_empty() {
        println!("    failed: {}", failed.join(" "));
    }
    if code != 0 && t.failed == 0 {
        println!("    the VM runner exited with status {code}");
        t.failed += 1;
    }
    if t.passed + t.failed == 0 {
        println!("    no in-VM test ran");
        t.failed += 1;
    }
    // The kernel log check counts as one more test.
    let dmesg = std::fs::read_to_string(out.join("dmesg.txt")).unwrap_or_default();
    let problems = kernel_log_problems(&dmesg);
    if dmesg.is_empty() {
        println!("==> test: kernel log check FAILED: the guest saved no kernel log");
        t.failed += 1;
    } else if problems.is_empty() {
        println!("==> test: kernel log check ok ({} lines, no WARNING/BUG/Oops/lockdep/KFENCE)", dmesg.lines().count());
        t.passed += 1;
    } else {
        println!("==> test: kernel log check FAILED:");
        for p in problems.iter().take(30) {
            println!("    {p}");
        }
        println!("    full log: {}", out.join("dmesg.txt").display());
        t.failed += 1;
    }
    Ok(t)
}

/// Everything: host tests, then the VM tests.
pub fn run(k: &Kernel, built: &Built) -> Result<Tally> {
    let mut t = host()?;
    t.add(vm_tests(k, built)?);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lines_are_summed() {
        let text = "test result: ok. 18 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s\n\
                    test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured\n";
        assert_eq!(parse_cargo_results(text), Tally { passed: 21, failed: 2, skipped: 1 });
    }

    #[test]
    fn vm_lines_are_counted() {
        let text = "PASS load_unload\nnoise\nFAIL hooks_listed (3s)\nSKIP foo\nPASS x\n";
        let (t, failed) = parse_vm_results(text);
        assert_eq!(t, Tally { passed: 2, failed: 1, skipped: 1 });
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
