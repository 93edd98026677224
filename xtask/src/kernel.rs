// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask kernel`: fetch the pinned kernel source, configure it from `qemu/kernel.config`
//! on top of `tinyconfig`, and build it, cached by everything the build depends on.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup;
use crate::util::{cache_dir, cache_key, output, sha256_file, stage, tool_path, Context, Log, Result};

/// Debian package with the kernel source.
pub const SOURCE_PACKAGE: &str = "linux-source-7.3";
/// The pinned version of [`SOURCE_PACKAGE`]. To move the pin: `apt-cache show` it from the
/// suite below (see `README.md`), then update this and [`SOURCE_SHA256`] together.
pub const SOURCE_VERSION: &str = "7.3.4-1~bpo13+1";
/// SHA-256 of the pinned .deb, as the suite's Packages index lists it.
pub const SOURCE_SHA256: &str = "703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3";
/// The suite that carries it (Debian 12's own suites only have 6.1).
pub const SOURCE_SUITE: &str = "trixie-backports";
const MIRROR: &str = "http://deb.debian.org/debian";

/// A built kernel: its build folder and the key it was cached under.
pub struct Kernel {
    /// The `O=` build folder (for `make -C` when building the module).
    pub build_dir: PathBuf,
    /// The cache key (source, config fragment, toolchain).
    pub key: String,
}

impl Kernel {
    /// The bootable image.
    pub fn bzimage(&self) -> PathBuf {
        self.build_dir.join("arch/x86/boot/bzImage")
    }
}

/// The config fragment, from the repository.
pub fn fragment_path() -> PathBuf {
    crate::util::repo_root().join("qemu/kernel.config")
}

/// Where the unpacked source lives.
pub fn source_dir() -> PathBuf {
    cache_dir().join(format!("linux-source-{}", SOURCE_VERSION.replace('~', "_")))
}

/// Fetches and unpacks the source, then configures and builds the kernel (cached).
pub fn run() -> Result<Kernel> {
    stage("kernel: source", fetch_source)?;
    let key = stage("kernel: cache key", |log| {
        let k = kernel_key()?;
        log.note = k.clone();
        Ok(k)
    })?;
    let build_dir = cache_dir().join(format!("kbuild-{key}"));
    let kernel = Kernel { build_dir, key };
    stage("kernel: build", |log| build(log, &kernel))?;
    Ok(kernel)
}

/// The key of a kernel build: what changes the resulting image.
fn kernel_key() -> Result<String> {
    let fragment = fs::read_to_string(fragment_path()).ctx("reading qemu/kernel.config")?;
    let rustc = output(Command::new("rustc").arg("--version"))?;
    let gcc = output(Command::new("gcc").arg("--version"))?;
    let gcc = gcc.lines().next().unwrap_or_default().to_string();
    cache_key(&[
        ("source", SOURCE_VERSION),
        ("fragment", &fragment),
        ("rustc", &rustc),
        ("gcc", &gcc),
        ("bindgen", setup::BINDGEN_VERSION),
        ("python", &setup::PYTHON_PINS.join(" ")),
    ])
}

fn apt_dir() -> PathBuf {
    cache_dir().join("apt").join(SOURCE_SUITE)
}

/// apt-get options that use a private sources list and state, leaving the system's alone.
fn apt_opts() -> Vec<String> {
    let d = apt_dir();
    vec![
        format!("-oDir::Etc::SourceList={}", d.join("sources.list").display()),
        "-oDir::Etc::SourceParts=/dev/null".into(),
        format!("-oDir::State::Lists={}", d.join("lists").display()),
        "-oAPT::Sandbox::User=root".into(),
        "-oDebug::NoLocking=1".into(),
    ]
}

fn fetch_source(log: &mut Log) -> Result {
    let src = source_dir();
    if src.join(".rnf-complete").exists() {
        log.note = format!("{SOURCE_PACKAGE} {SOURCE_VERSION}, cached");
        return Ok(());
    }
    let dl = cache_dir().join("dl");
    fs::create_dir_all(&dl).ctx("creating download folder")?;
    let deb = dl.join(format!("{SOURCE_PACKAGE}_{}_all.deb", SOURCE_VERSION.replace(':', "%3a")));
    if !deb.exists() || sha256_file(&deb)? != SOURCE_SHA256 {
        let _ = fs::remove_file(&deb);
        fs::create_dir_all(apt_dir().join("lists/partial")).ctx("creating apt folder")?;
        fs::write(apt_dir().join("sources.list"), format!("deb {MIRROR} {SOURCE_SUITE} main\n"))
            .ctx("writing sources.list")?;
        log.run(Command::new("apt-get").args(apt_opts()).args(["update", "-q"]))?;
        let res = log.run(
            Command::new("apt-get")
                .current_dir(&dl)
                .args(apt_opts())
                .args(["download", &format!("{SOURCE_PACKAGE}={SOURCE_VERSION}")]),
        );
        if res.is_err() {
            let have = output(Command::new("apt-cache").args(apt_opts()).args(["madison", SOURCE_PACKAGE]))
                .unwrap_or_default();
            return Err(format!(
                "{SOURCE_PACKAGE}={SOURCE_VERSION} is no longer on the {SOURCE_SUITE} mirror. \
                 The mirror has:\n{have}\nTo move the pin, set SOURCE_VERSION and SOURCE_SHA256 in \
                 xtask/src/kernel.rs (the SHA256 line of `apt-cache show`), see README.md."
            ));
        }
    }
    let got = sha256_file(&deb)?;
    if got != SOURCE_SHA256 {
        return Err(format!("{} has SHA-256 {got}, expected {SOURCE_SHA256}", deb.display()));
    }
    let tmp = cache_dir().join("src-unpack.tmp");
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&src);
    log.run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    let tarball = tmp.join(format!("usr/src/{SOURCE_PACKAGE}.tar.xz"));
    fs::create_dir_all(tmp.join("out")).ctx("unpack folder")?;
    log.run(Command::new("tar").arg("-xJf").arg(&tarball).arg("-C").arg(tmp.join("out")))?;
    fs::rename(tmp.join("out").join(SOURCE_PACKAGE), &src).ctx("moving the source into place")?;
    let _ = fs::remove_dir_all(&tmp);
    fs::write(src.join(".rnf-complete"), SOURCE_SHA256).ctx("stamp")?;
    log.note = format!("{SOURCE_PACKAGE} {SOURCE_VERSION}, sha256 verified");
    Ok(())
}

/// `make` in the kernel source with our toolchain environment.
pub fn kmake(build_dir: &Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(source_dir()).arg(format!("O={}", build_dir.display()));
    toolchain_env(&mut cmd);
    cmd
}

/// Adds the environment the kernel's Rust support needs (bindgen, libclang).
pub fn toolchain_env(cmd: &mut Command) {
    cmd.env("PATH", tool_path());
    if let Ok(dir) = setup::libclang_dir() {
        cmd.env("LIBCLANG_PATH", dir);
    }
}

/// Checks that every option the fragment sets ended up in `.config` as asked.
fn check_config(build_dir: &Path) -> Result {
    let fragment = fs::read_to_string(fragment_path()).ctx("reading fragment")?;
    let config = fs::read_to_string(build_dir.join(".config")).ctx("reading .config")?;
    let mut wrong = Vec::new();
    for line in fragment.lines() {
        let Some((name, want)) = line.trim().split_once('=') else { continue };
        if !name.starts_with("CONFIG_") {
            continue;
        }
        let got = config
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("n");
        if got != want {
            wrong.push(format!("{name}: asked {want}, got {got}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("the kernel config does not honour qemu/kernel.config:\n  {}", wrong.join("\n  ")))
    }
}

/// Steps (kbuild output lines) of a build of this configuration, for the progress display
/// before any build has been counted on this machine.
const EXPECTED_STEPS: usize = 2170;

/// The step count of the last build here.
fn steps_file() -> PathBuf {
    cache_dir().join("kernel-build-steps")
}

fn build(log: &mut Log, k: &Kernel) -> Result {
    let stamp = k.build_dir.join(".rnf-built");
    if stamp.exists() && k.bzimage().exists() {
        log.note = format!("cached in {}", k.build_dir.display());
        return Ok(());
    }
    fs::create_dir_all(&k.build_dir).ctx("creating build folder")?;
    log.run(kmake(&k.build_dir).arg("rustavailable"))?;
    log.run(kmake(&k.build_dir).arg("tinyconfig"))?;
    let mut merge = Command::new(source_dir().join("scripts/kconfig/merge_config.sh"));
    merge.current_dir(&k.build_dir).args(["-m", ".config"]).arg(fragment_path());
    log.run(&mut merge)?;
    log.run(kmake(&k.build_dir).arg("olddefconfig"))?;
    check_config(&k.build_dir)?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let start = std::time::Instant::now();
    let expected = fs::read_to_string(steps_file())
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(EXPECTED_STEPS);
    let steps = log.run_progress(
        kmake(&k.build_dir).arg(format!("-j{jobs}")).args(["bzImage", "modules"]),
        "kernel: build",
        expected,
    )?;
    let secs = start.elapsed().as_secs();
    let _ = fs::write(steps_file(), format!("{steps}\n"));
    fs::write(&stamp, format!("built in {secs}s, {steps} steps\n")).ctx("stamp")?;
    log.note = format!("built in {}, {steps} steps", crate::util::fmt_secs(secs as f64));
    Ok(())
}
