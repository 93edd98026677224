// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask setup`: host packages and tools, each step idempotent and cached.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{cache_dir, cache_key, output, stage, Context, Log, Result};

/// Debian packages the build, the VM and the in-VM tests use.
pub const DEBIAN_PACKAGES: &[&str] = &[
    // kernel build
    "bc", "bison", "flex", "cpio", "libelf-dev", "libssl-dev", "make", "gcc", "rsync", "xz-utils",
    // virtme-ng and the VM
    "qemu-system-x86", "kmod", "udev", "python3-venv", "busybox-static",
    // in-VM tests and the comparison oracle
    "iproute2", "iptables", "nftables", "conntrack", "ipset", "socat", "iperf3", "iputils-ping",
    "netcat-openbsd", "libcap2-bin", "util-linux", "procps", "tcpdump",
    // a real FTP server for the FTP helper tests (the client is Python's ftplib)
    "python3-pyftpdlib",
    // the fuzz targets (libFuzzer is C++, built by the libfuzzer-sys crate)
    "g++",
];

/// The bindgen-cli version the kernel's Rust bindings are generated with (kernel 7.3 needs
/// at least 0.71.1).
pub const BINDGEN_VERSION: &str = "0.73.2";
/// Python packages: libclang >= 17 for bindgen (Debian 12 has 16), virtme-ng to boot the VM.
pub const PYTHON_PINS: &[&str] = &["libclang==18.1.1", "virtme-ng==1.42"];

/// Where bindgen is installed.
pub fn bindgen_dir() -> PathBuf {
    cache_dir().join("tools").join(format!("bindgen-{BINDGEN_VERSION}"))
}

/// The Python venv with libclang and virtme-ng.
pub fn venv_dir() -> PathBuf {
    let key = PYTHON_PINS.join("+").replace(['=', '+'], "_");
    cache_dir().join("tools").join(format!("venv-{key}"))
}

/// The folder holding libclang.so (for LIBCLANG_PATH).
pub fn libclang_dir() -> Result<PathBuf> {
    let lib = venv_dir().join("lib");
    for entry in std::fs::read_dir(&lib).ctx(&format!("reading {}", lib.display()))? {
        let p = entry.ctx("venv")?.path().join("site-packages/clang/native");
        if p.join("libclang.so").exists() {
            return Ok(p);
        }
    }
    Err(format!("libclang.so not found under {}", lib.display()))
}

/// Runs every setup step.
pub fn run() -> Result {
    stage("setup: debian packages", debian_packages)?;
    stage("setup: rust-src", rust_src)?;
    stage("setup: bindgen", bindgen)?;
    stage("setup: python venv", venv)?;
    Ok(())
}

fn missing_packages() -> Vec<&'static str> {
    // One dpkg-query for all of them (a process per package costs seconds on a busy machine).
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\\n"])
        .args(DEBIAN_PACKAGES)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !out.lines().any(|l| l.split_once(' ').is_some_and(|(name, st)| name == *p && st.ends_with("install ok installed")))
        })
        .collect()
}

fn debian_packages(log: &mut Log) -> Result {
    let missing = missing_packages();
    if missing.is_empty() {
        log.note = "all installed".into();
        return Ok(());
    }
    log.note = format!("installing {}", missing.join(" "));
    log.run(Command::new("apt-get").args(["update", "-q"]))?;
    log.run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )?;
    let still = missing_packages();
    if !still.is_empty() {
        return Err(format!("still missing after apt-get install: {}", still.join(" ")));
    }
    Ok(())
}

fn rust_src(log: &mut Log) -> Result {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed"]))?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        log.note = "installed".into();
        return Ok(());
    }
    log.run(Command::new("rustup").args(["component", "add", "rust-src"]))
}

fn bindgen(log: &mut Log) -> Result {
    let bin = bindgen_dir().join("bin/bindgen");
    if let Ok(v) = output(Command::new(&bin).arg("--version")) {
        if v.contains(BINDGEN_VERSION) {
            log.note = v;
            return Ok(());
        }
    }
    log.note = format!("building bindgen-cli {BINDGEN_VERSION}");
    log.run(
        Command::new("cargo")
            .args(["install", "--locked", "--force", "bindgen-cli", "--version", BINDGEN_VERSION, "--root"])
            .arg(bindgen_dir()),
    )
}

fn venv(log: &mut Log) -> Result {
    let dir = venv_dir();
    let stamp = dir.join(".rnf-complete");
    let want = cache_key(&PYTHON_PINS.iter().map(|p| ("pin", *p)).collect::<Vec<_>>())?;
    if std::fs::read_to_string(&stamp).map(|s| s.trim() == want).unwrap_or(false) {
        log.note = PYTHON_PINS.join(" ");
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    log.run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    log.run(Command::new(dir.join("bin/pip")).args(["install", "-q"]).args(PYTHON_PINS))?;
    libclang_dir()?;
    std::fs::write(&stamp, want).ctx("writing venv stamp")?;
    log.note = PYTHON_PINS.join(" ");
    Ok(())
}
