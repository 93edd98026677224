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

/// Where the Rust declarations of the C shim go (committed, so that the code can be read
/// without a build; rewritten by every build from the header).
const SHIM_GEN: &str = "rust_nf/ffi/shim_gen.rs";

/// Generates the Rust declarations of `rust_nf/rnf_shim.h` with bindgen, so that the module's
/// calls into C and its functions called from C are checked against the header by the
/// compiler. Rewrites the file only when it changed; says which.
fn shim_bindings(log: &mut crate::util::Log) -> Result<String> {
    let root = repo_root();
    let mut cmd = Command::new(crate::setup::bindgen_dir().join("bin/bindgen"));
    cmd.arg(root.join("rust_nf/rnf_shim.h")).args([
        "--use-core",
        "--ctypes-prefix",
        "core::ffi",
        "--allowlist-function",
        "rnf_.*",
        "--allowlist-type",
        "rnf_.*",
        "--allowlist-var",
        "RNF_.*",
        "--blocklist-function",
        "rnf_rust_.*",
        "--no-doc-comments",
        "--",
        "-DRNF_BINDGEN",
        "-x",
        "c",
    ]);
    kernel::toolchain_env(&mut cmd);
    log.line(&format!("$ {cmd:?}"));
    let text = format!("{}\n", crate::util::output(&mut cmd)?);
    let path = root.join(SHIM_GEN);
    if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok("unchanged".into());
    }
    fs::write(&path, text).ctx("writing the shim bindings")?;
    Ok(format!("{SHIM_GEN} regenerated from rnf_shim.h"))
}

/// Builds the module and rnfctl.
pub fn run(k: &Kernel) -> Result<Built> {
    // One output folder per kernel and per checkout, so two clones never share build state.
    let root = repo_root().display().to_string();
    let checkout = crate::util::cache_key(&[("repo", &root)])?;
    let out = cache_dir().join(format!("module-{}-{}", k.key, &checkout[..8]));
    stage("module: shim bindings", |log| {
        log.note = shim_bindings(log)?;
        Ok(())
    })?;
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
