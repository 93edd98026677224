// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask`: rust_nf's build, VM and test driver. This file only dispatches; each task
//! lives in its own module and every step is idempotent and cached under `~/.cache/rust-nf`.

mod fuzz;
mod kernel;
mod module;
mod setup;
mod test;
mod util;
mod vm;

use std::process::ExitCode;

use util::Result;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup        install Debian packages, rust-src, bindgen, the Python venv (libclang, virtme-ng)
  kernel       fetch, configure and build the test kernel (cached)
  module       build rust_nf.ko and rnfctl
  test         everything: host unit tests, in-VM tests, kernel log check
  test-host    host unit tests only
  test-vm      in-VM tests only (with the kernel log check)
  fuzz [SECONDS] [--update]
               run the coverage-guided fuzz targets (fuzz/) SECONDS each (default 60);
               --update merges the new inputs into fuzz/corpus/
  quick        host unit tests plus a short in-VM smoke test (about a minute)
  run          the demo: boot, load rust_nf, drive traffic, show hooks and counters
  bench        the rule engine on the host (ns per packet at N rules, engine/examples/), then
               benchmarks in the VM, side by side with the kernel's own (tests/bench/): new
               connections per second through rust_nf's conntrack (+ DNAT) and nf_conntrack
               (+ nf_nat); forwarding cost per packet at N rules and rule-load times for
               rust_nf, iptables-legacy, iptables-nft and nft; TCP connect() time through a
               ClusterIP at N kube-proxy services, rust_nf vs iptables-legacy (tables in
               bench-results/); RNF_BENCH_ONLY=evalbench|ct-rate|fwd-cost|kube-lat runs one part,
               RNF_BENCH_CTL_ONLY=1 fwd-cost's control plane alone
  shell        an interactive shell in the VM with rust_nf loaded and rnfctl on PATH
  vm CMD...    run one command in the VM (rust_nf loaded), return its status

environment: RNF_CACHE (cache folder), RNF_KVM=0|1 (skip the KVM probe), RNF_TESTS (words,
space- or comma-separated: the in-VM tests whose name contains one of them), RNF_LANES (in-VM
tests run at once in a guest, default 3), RNF_GUESTS (guests sharing the tests, default 1),
RNF_VM_CPUS (CPUs per guest, default 2), RNF_FUZZ_SECONDS (per fuzz target in `test`,
default 10, 0 skips them)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = std::time::Instant::now();
    let res = dispatch(&args);
    let secs = util::fmt_secs(start.elapsed().as_secs_f64());
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: {e} (after {secs})");
            ExitCode::FAILURE
        }
    }
}

/// Builds everything a VM run needs.
fn prepare() -> Result<(kernel::Kernel, module::Built)> {
    setup::run()?;
    let k = kernel::run()?;
    let built = module::run(&k)?;
    Ok((k, built))
}

/// Boots the VM for one non-interactive command (at most 20 minutes); its exit status.
fn run_in_vm(k: &kernel::Kernel, built: &module::Built, command: String) -> Result<u8> {
    let run = vm::VmRun { command, rwdir: None, timeout_secs: 20 * 60, interactive: false, label: String::new() };
    let (code, _) = vm::boot(k, built, &run)?;
    Ok(u8::try_from(code).unwrap_or(1))
}

fn dispatch(args: &[String]) -> Result<u8> {
    let Some(task) = args.first() else {
        print!("{USAGE}");
        return Ok(2);
    };
    match task.as_str() {
        "setup" => setup::run().map(|_| 0),
        "kernel" => {
            setup::run()?;
            kernel::run().map(|_| 0)
        }
        "module" => prepare().map(|_| 0),
        "fuzz" => {
            setup::run()?;
            let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
            let update = rest.contains(&"--update");
            let secs = rest.iter().find_map(|a| a.parse().ok()).unwrap_or(60);
            let t = fuzz::run(secs, update)?;
            println!("{}", t.summary());
            Ok(u8::from(t.failed > 0))
        }
        "test-host" => {
            let t = test::host()?;
            println!("{}", t.summary());
            Ok(u8::from(t.failed > 0))
        }
        "test" => {
            let start = std::time::Instant::now();
            let (k, built) = prepare()?;
            let t = test::run(&k, &built)?;
            println!("total time {}", util::fmt_secs(start.elapsed().as_secs_f64()));
            println!("{}", t.summary());
            Ok(u8::from(t.failed > 0))
        }
        "test-vm" | "quick" => {
            let start = std::time::Instant::now();
            let (k, built) = prepare()?;
            let t = if task == "quick" {
                test::quick(&k, &built)?
            } else {
                test::vm_tests(&k, &built, &std::env::var("RNF_TESTS").unwrap_or_default())?
            };
            println!("total time {}", util::fmt_secs(start.elapsed().as_secs_f64()));
            println!("{}", t.summary());
            Ok(u8::from(t.failed > 0))
        }
        "run" => {
            let (k, built) = prepare()?;
            run_in_vm(&k, &built, "bash qemu/demo.sh".into())
        }
        "bench" => {
            let (k, built) = prepare()?;
            // RNF_BENCH_ONLY=evalbench|ct-rate|fwd-cost|kube-lat runs one of the four.
            let only = std::env::var("RNF_BENCH_ONLY").unwrap_or_default();
            // The rule engine on the host first (engine/examples/evalbench.rs): its output, as is.
            if only.is_empty() || only == "evalbench" {
                let status = std::process::Command::new("cargo")
                    .args(["run", "--release", "-q", "-p", "rnf-engine", "--features", "std", "--example", "evalbench"])
                    .current_dir(util::repo_root())
                    .status()
                    .map_err(|e| format!("cargo run --example evalbench: {e}"))?;
                if !status.success() {
                    return Err(format!("the host benchmark failed ({status})"));
                }
                if only == "evalbench" {
                    return Ok(0);
                }
            }
            let flood = util::cache_dir().join("udpflood");
            util::stage("bench: udpflood", |log| {
                let mut cmd = std::process::Command::new("gcc");
                cmd.args(["-O2", "-Wall", "-o"]).arg(&flood).arg(util::repo_root().join("tests/bench/udpflood.c"));
                log.run(&mut cmd)
            })?;
            // In the VM: ct-rate.sh, then fwd-cost.sh, which writes its tables to bench-results/
            // (shared with the guest, writable). RNF_BENCH_* settings reach the guest's scripts.
            let results = util::repo_root().join("bench-results");
            std::fs::create_dir_all(&results).map_err(|e| format!("creating {}: {e}", results.display()))?;
            // No stale table or plot from an earlier run.
            for e in std::fs::read_dir(&results).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("fwd-") || name.starts_with("kube-lat") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let mut command = String::new();
            for (key, val) in std::env::vars() {
                if key.starts_with("RNF_BENCH_") && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    command.push_str(&format!("export {key}='{}'\n", val.replace('\'', "'\\''")));
                }
            }
            command.push_str(&format!(
                "export RNF_BENCH_OUT='{out}'\n\
                 ct=0 fwd=0 lat=0\n\
                 case ${{RNF_BENCH_ONLY:-all}} in all | ct-rate) RNF_FLOOD='{flood}' bash tests/bench/ct-rate.sh; ct=$? ;; esac\n\
                 case ${{RNF_BENCH_ONLY:-all}} in all | fwd-cost) bash tests/bench/fwd-cost.sh; fwd=$? ;; esac\n\
                 case ${{RNF_BENCH_ONLY:-all}} in all | kube-lat) bash tests/bench/kube-lat.sh; lat=$? ;; esac\n\
                 [ $ct = 0 ] && [ $fwd = 0 ] && [ $lat = 0 ]",
                out = results.display(),
                flood = flood.display()
            ));
            let run = vm::VmRun { command, rwdir: Some(&results), timeout_secs: 60 * 60, interactive: false, label: String::new() };
            let (code, _) = vm::boot(&k, &built, &run)?;
            // The plot, on the host (python3's standard library only); the tables are there without it.
            let csv = results.join("fwd-cost.csv");
            // (No packet measurements to plot when only the control plane ran.)
            let ctl_only = std::env::var("RNF_BENCH_CTL_ONLY").is_ok_and(|v| v == "1");
            if csv.exists() && !ctl_only {
                let plotted = std::process::Command::new("python3")
                    .arg(util::repo_root().join("tests/bench/fwd-plot.py"))
                    .arg(&csv)
                    .arg(results.join("fwd-cost.svg"))
                    .status();
                match plotted {
                    Ok(s) if s.success() => println!("bench: plot in {}", results.join("fwd-cost.svg").display()),
                    Ok(s) => eprintln!("bench: the plot failed ({s})"),
                    Err(e) => eprintln!("bench: no plot (python3: {e})"),
                }
            }
            println!("bench: results in {}", results.display());
            Ok(u8::try_from(code).unwrap_or(1))
        }
        "shell" => {
            let (k, built) = prepare()?;
            let run = vm::VmRun {
                command: "insmod \"$RNF_KO\" && echo 'rust_nf loaded; rnfctl is on PATH'".into(),
                rwdir: None,
                timeout_secs: 0,
                interactive: true,
                label: String::new(),
            };
            let (code, _) = vm::boot(&k, &built, &run)?;
            Ok(u8::try_from(code).unwrap_or(1))
        }
        "vm" => {
            let cmd = args[1..].join(" ");
            if cmd.trim().is_empty() {
                return Err("usage: cargo xtask vm COMMAND...".into());
            }
            let (k, built) = prepare()?;
            let out = vm::RunDir::new()?;
            let run = vm::VmRun {
                command: format!("insmod \"$RNF_KO\" || exit 1\n{cmd}"),
                rwdir: Some(&out.0),
                timeout_secs: 60 * 60,
                interactive: false,
                label: String::new(),
            };
            let (code, _) = vm::boot(&k, &built, &run)?;
            if code != 0 {
                eprintln!("xtask: the command exited with status {code} in the VM");
            }
            Ok(u8::try_from(code).unwrap_or(1))
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown task `{other}'\n{USAGE}")),
    }
}
