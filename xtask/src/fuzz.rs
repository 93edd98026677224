// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask fuzz [SECONDS] [--update]`: coverage-guided fuzzing (libFuzzer, through the
//! `libfuzzer-sys` crate) of the decoders the kernel runs on what userspace sends it
//! (`fuzz/fuzz_targets/`). Each target runs for SECONDS from its corpus in `fuzz/corpus/`;
//! new inputs go to a scratch folder (with `--update`, they are merged into the corpus). A
//! crash fails the run and its input is kept in the cache (`fuzz-crashes/`). `make test`
//! runs every target for `$RNF_FUZZ_SECONDS` (default 10).

use std::fs;
use std::process::Command;

use crate::test::Tally;
use crate::util::{cache_dir, output, repo_root, stage, Context, Result};

/// The targets and the longest input each takes.
pub const TARGETS: &[(&str, usize)] = &[("replace", 8192), ("rule", 1024), ("conntrack", 2048), ("nat", 1024)];

/// Coverage instrumentation as cargo-fuzz sets it up (stable rustc: no sanitizer).
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Builds the targets; returns the folder holding their binaries.
fn build() -> Result<std::path::PathBuf> {
    let host = output(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV names no host")?;
    let target_dir = cache_dir().join("fuzz-target");
    stage("fuzz: build", |log| {
        // An explicit --target keeps the instrumentation out of build scripts.
        log.run(
            Command::new("cargo")
                .current_dir(repo_root().join("fuzz"))
                .env("RUSTFLAGS", RUSTFLAGS)
                .args(["build", "--release", "--locked", "--target", &host, "--target-dir"])
                .arg(&target_dir),
        )
    })?;
    Ok(target_dir.join(host).join("release"))
}

/// Runs every target for `seconds`; with `update`, merges the new inputs into the corpus.
pub fn run(seconds: u64, update: bool) -> Result<Tally> {
    let bins = build()?;
    let mut t = Tally::default();
    for (name, max_len) in TARGETS {
        let corpus = repo_root().join("fuzz/corpus").join(name);
        fs::create_dir_all(&corpus).ctx("corpus folder")?;
        let work = cache_dir().join("fuzz-work").join(name);
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).ctx("fuzz work folder")?;
        let crashes = cache_dir().join("fuzz-crashes");
        fs::create_dir_all(&crashes).ctx("fuzz crash folder")?;
        let ok = stage(&format!("fuzz: {name} ({seconds} s)"), |log| {
            let mut cmd = Command::new(bins.join(name));
            // New inputs go to the first folder: the scratch one, never the repository's.
            cmd.arg(&work)
                .arg(&corpus)
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-max_len={max_len}"))
                .arg(format!("-artifact_prefix={}/{name}-", crashes.display()))
                .arg("-print_final_stats=1");
            match log.run(&mut cmd) {
                Ok(()) => {
                    let found = fs::read_dir(&work).map(|d| d.count()).unwrap_or(0);
                    log.note = format!("no crash; {found} new inputs");
                    Ok(true)
                }
                Err(_) => {
                    log.note = format!("CRASH: input kept in {} (see the stage log)", crashes.display());
                    Ok(false)
                }
            }
        })?;
        if ok {
            t.passed += 1;
        } else {
            t.failed += 1;
            t.failed_names.push(format!("fuzz: {name}"));
        }
        if update && ok {
            stage(&format!("fuzz: merge {name} corpus"), |log| {
                log.run(Command::new(bins.join(name)).arg("-merge=1").arg(&corpus).arg(&work))
            })?;
        }
    }
    Ok(t)
}
