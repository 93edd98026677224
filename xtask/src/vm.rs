// SPDX-License-Identifier: GPL-2.0

//! Booting the test kernel under QEMU with virtme-ng: the guest sees the host's root
//! filesystem read-only over 9p, plus one writable folder for results.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::kernel::Kernel;
use crate::module::Built;
use crate::setup;
use crate::util::{cache_dir, output, repo_root, stage, tool_path, Context, Result};

/// How to run the guest.
pub struct VmRun<'a> {
    /// Shell command line run in the guest (as root, from the repository folder).
    pub command: String,
    /// A host folder the guest may write (shared at the same path).
    pub rwdir: Option<&'a Path>,
    /// Give up (and kill QEMU) after this many seconds.
    pub timeout_secs: u64,
    /// Attach the terminal (for `make shell`) instead of capturing output.
    pub interactive: bool,
}

/// The shell prologue every guest command gets: rnfctl on PATH, the module's path in RNF_KO.
fn prologue(built: &Built, rwdir: Option<&Path>) -> String {
    let bin = built.rnfctl.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut s = format!(
        "export PATH={bin}:$PATH RNF_KO={ko} RNF_ROOT={root}; ",
        bin = bin.display(),
        ko = built.ko.display(),
        root = repo_root().display()
    );
    if let Some(d) = rwdir {
        s.push_str(&format!("export RNF_OUT={}; ", d.display()));
    }
    s
}

/// Whether KVM really boots a guest here: probed once per kernel and QEMU, then cached.
/// `RNF_KVM=0|1` overrides the probe.
pub fn use_kvm(k: &Kernel) -> bool {
    match std::env::var("RNF_KVM").as_deref() {
        Ok("0") => return false,
        Ok("1") => return true,
        _ => {}
    }
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let qemu = output(Command::new("qemu-system-x86_64").arg("--version")).unwrap_or_default();
    let key = crate::util::cache_key(&[("kernel", &k.key), ("qemu", &qemu)]).unwrap_or_default();
    let cached = cache_dir().join(format!("kvm-probe-{key}"));
    if let Ok(s) = std::fs::read_to_string(&cached) {
        return s.trim() == "yes";
    }
    let ok = stage("vm: kvm probe", |log| {
        let mut cmd = vng(k, true);
        cmd.args(["--exec", "true"]);
        let mut timed = Command::new("timeout");
        timed.args(["--kill-after=5", "45"]).arg(cmd.get_program()).args(cmd.get_args());
        timed.env("PATH", tool_path());
        let works = log.run(&mut timed).is_ok();
        log.note = if works { "KVM works".into() } else { "KVM does not boot a guest here; using TCG".into() };
        Ok(works)
    })
    .unwrap_or(false);
    let _ = std::fs::write(&cached, if ok { "yes\n" } else { "no\n" });
    ok
}

fn vng(k: &Kernel, kvm: bool) -> Command {
    let mut cmd = Command::new(setup::venv_dir().join("bin/vng"));
    cmd.arg("--run")
        .arg(k.bzimage())
        .args(["--force-9p", "--user", "root", "--memory", "2G", "--cpus", "2"])
        .arg("--cwd")
        .arg(repo_root());
    if !kvm {
        cmd.arg("--disable-kvm");
    }
    cmd.env("PATH", tool_path());
    cmd
}

/// Boots the guest, runs the command, and returns its exit status and output (the output is
/// also echoed to our stdout as it comes).
pub fn boot(k: &Kernel, built: &Built, run: &VmRun<'_>) -> Result<(i32, String)> {
    let kvm = use_kvm(k);
    let mut cmd = vng(k, kvm);
    if let Some(d) = run.rwdir {
        cmd.arg(format!("--rwdir={}", d.display()));
    }
    let script = format!("{}{}", prologue(built, run.rwdir), run.command);
    if run.interactive {
        // virtme-ng gives its shell a real terminal; ours runs the prologue, then bash.
        let sh = cache_dir().join("shell-init.sh");
        std::fs::write(&sh, format!("#!/bin/bash\n{script}\nexport PS1='rust_nf-vm:\\w# '\nexec bash --norc -i\n")).ctx("writing shell script")?;
        make_executable(&sh)?;
        cmd.arg("--shell").arg(&sh);
        let status = cmd.status().ctx("starting vng")?;
        return Ok((status.code().unwrap_or(1), String::new()));
    }
    cmd.arg("--exec").arg(script);
    let mut timed = Command::new("timeout");
    timed
        .args(["--kill-after=10", &run.timeout_secs.to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("PATH", tool_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = timed.spawn().ctx("starting vng")?;
    let mut collected = String::new();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            let mut lock = stdout.lock();
            let _ = writeln!(lock, "{line}");
            collected.push_str(&line);
            collected.push('\n');
        }
    }
    let status = child.wait().ctx("waiting for vng")?;
    let code = status.code().unwrap_or(1);
    if code == 124 || code == 137 {
        return Err(format!("the VM did not finish within {} s and was killed", run.timeout_secs));
    }
    Ok((code, collected))
}

fn make_executable(p: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).ctx("chmod")
}

/// A fresh writable folder for one VM run's results.
pub fn results_dir(name: &str) -> Result<PathBuf> {
    let d = cache_dir().join("vm-out").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).ctx("creating VM results folder")?;
    Ok(d)
}
