// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask module`: build `rust_nf.ko` out of tree against the test kernel, and rnfctl.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::kernel::{self, Kernel};
use crate::util::{cache_dir, repo_root, stage, Context, Result};

/// The built artefacts the VM needs.
pub struct Built {
    /// `rust_nf.ko`.
    pub ko: PathBuf,
    /// The `rnfctl` binary.
    pub rnfctl: PathBuf,
}

/// Builds the module and rnfctl.
pub fn run(k: &Kernel) -> Result<Built> {
    // One output folder per kernel and per checkout, so two clones never share build state.
    let root = repo_root().display().to_string();
    let checkout = crate::util::cache_key(&[("repo", &root)])?;
    let out = cache_dir().join(format!("module-{}-{}", k.key, &checkout[..8]));
    let ko = stage("module: rust_nf.ko", |log| {
        fs::create_dir_all(&out).ctx("creating module output folder")?;
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&k.build_dir)
            .arg(format!("M={}", repo_root().display()))
            .arg(format!("MO={}", out.display()))
            .arg("modules");
        kernel::toolchain_env(&mut cmd);
        log.run(&mut cmd)?;
        let ko = out.join("rust_nf.ko");
        if !ko.exists() {
            return Err(format!("{} was not produced", ko.display()));
        }
        log.note = ko.display().to_string();
        Ok(ko)
    })?;
    let rnfctl = stage("module: rnfctl", |log| {
        log.run(Command::new("cargo").current_dir(repo_root()).args(["build", "--release", "-p", "rnfctl"]))?;
        Ok(repo_root().join("target/release/rnfctl"))
    })?;
    Ok(Built { ko, rnfctl })
}
