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
    /// Put in front of every output line (to tell guests apart when several run at once).
    pub label: String,
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

/// The root mount options of virtme-ng 1.42 (`rootflags=` on its kernel command line) with
/// the page cache turned on; the last `rootflags=` on the command line wins.
const ROOT_9P_FLAGS: &str = "rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose";

fn vng(k: &Kernel, kvm: bool) -> Command {
    let mut cmd = Command::new(setup::venv_dir().join("bin/vng"));
    cmd.arg("--run")
        .arg(k.bzimage())
        .args(["--force-9p", "--user", "root", "--memory", "2G", "--cpus"])
        .arg(std::env::var("RNF_VM_CPUS").unwrap_or_else(|_| "2".into()))
        .arg("--cwd")
        .arg(repo_root());
    if !kvm {
        cmd.arg("--disable-kvm");
    }
    // virtme-ng (1.42, pinned) mounts the host's root over 9p without a cache, so every exec
    // reads the binary and its libraries from the host again: 0.2-1 s per process under TCG.
    // The same mount options plus `cache=loose` keep them in the guest's page cache (about
    // 5 times faster per process, measured in the guest: `ip netns exec NS true` 1023 -> 146
    // ms, `rnfctl -L` 995 -> 173 ms). The host's files do not change under a running guest;
    // the writable result folder is a separate mount and keeps its own options.
    cmd.arg("--append").arg(ROOT_9P_FLAGS);
    if let Ok(extra) = std::env::var("RNF_VM_APPEND") {
        cmd.arg("--append").arg(extra);
    }
    // The guest's console on the terminal (a panic that kills the guest shows there).
    if std::env::var_os("RNF_VM_VERBOSE").is_some() {
        cmd.arg("--verbose");
    }
    cmd.env("PATH", tool_path());
    cmd
}

/// Boots the guest, runs the command, and returns its exit status and output (the output is
/// also echoed to our stdout as it comes).
///
/// The command reaches the guest as a script file, byte for byte: nothing between here and the
/// guest's bash re-parses it, so `$`, quotes, `$(...)`, `;` and `|` mean what they say.
pub fn boot(k: &Kernel, built: &Built, run: &VmRun<'_>) -> Result<(i32, String)> {
    let kvm = use_kvm(k);
    let mut cmd = vng(k, kvm);
    if let Some(d) = run.rwdir {
        cmd.arg(format!("--rwdir={}", d.display()));
    }
    let script_body = guest_script(&prologue(built, run.rwdir), &run.command);
    if run.interactive {
        // virtme-ng gives its shell a real terminal; ours runs the prologue, then bash.
        let sh = cache_dir().join("shell-init.sh");
        std::fs::write(&sh, format!("{script_body}export PS1='rust_nf-vm:\\w# '\nexec bash --norc -i\n"))
            .ctx("writing shell script")?;
        make_executable(&sh)?;
        cmd.arg("--shell").arg(&sh);
        let status = cmd.status().ctx("starting vng")?;
        return Ok((status.code().unwrap_or(1), String::new()));
    }
    // One script per run (runs may overlap), removed when the run ends.
    let scripts = cache_dir().join("vm-scripts");
    std::fs::create_dir_all(&scripts).ctx("creating the VM script folder")?;
    let script = ScriptFile(scripts.join(format!("run-{}-{}.sh", std::process::id(), unique())));
    std::fs::write(&script.0, &script_body).ctx("writing the guest script")?;
    cmd.arg("--exec").arg(format!("bash '{}'", script.0.display()));
    let mut timed = Command::new("timeout");
    timed
        .args(["--kill-after=10", &run.timeout_secs.to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("PATH", tool_path())
        .stdin(Stdio::null())
        // Both streams through us: QEMU and virtme-ng must never hold our own stdout, which
        // may be a file they would reopen and overwrite from offset 0.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = timed.spawn().ctx("starting vng")?;
    let err_thread = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let stderr = std::io::stderr();
            for line in BufReader::new(err).lines() {
                let line = line.unwrap_or_default();
                let _ = writeln!(stderr.lock(), "{line}");
            }
        })
    });
    let mut collected = String::new();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            let mut lock = stdout.lock();
            let _ = writeln!(lock, "{}{line}", run.label);
            let _ = lock.flush();
            collected.push_str(&line);
            collected.push('\n');
        }
    }
    let status = child.wait().ctx("waiting for vng")?;
    if let Some(t) = err_thread {
        let _ = t.join();
    }
    let code = status.code().unwrap_or(1);
    if code == 124 || code == 137 {
        return Err(format!("the VM did not finish within {} s and was killed", run.timeout_secs));
    }
    Ok((code, collected))
}

/// The script the guest runs: the prologue, then the command, verbatim.
pub fn guest_script(prologue: &str, command: &str) -> String {
    format!("#!/bin/bash\n{prologue}\n{command}\n")
}

/// A file removed when dropped.
struct ScriptFile(PathBuf);

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A number that differs between calls in one process.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn make_executable(p: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).ctx("chmod")
}

/// A fresh writable folder for one VM run's results (emptied if it exists).
pub fn results_dir(name: &str) -> Result<PathBuf> {
    let d = cache_dir().join("vm-out").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).ctx("creating VM results folder")?;
    Ok(d)
}

/// The writable folder of one run (`vm-out/<name>`), removed when dropped unless kept.
pub struct RunDir(pub PathBuf, std::sync::atomic::AtomicBool);

/// Removes `vm-out/<prefix><pid>...` folders whose process is gone (killed before it could
/// clean up).
pub fn remove_stale_dirs(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(cache_dir().join("vm-out")) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl RunDir {
    /// This process's `vm-<pid>` folder for `cargo xtask vm`; stale ones are removed.
    pub fn new() -> Result<Self> {
        remove_stale_dirs("vm-");
        Self::named(&format!("vm-{}", std::process::id()))
    }

    /// A fresh folder `vm-out/<name>`.
    pub fn named(name: &str) -> Result<Self> {
        results_dir(name).map(|d| Self(d, std::sync::atomic::AtomicBool::new(false)))
    }

    /// Keeps the folder after the run (it holds a kernel log worth reading); the next test run
    /// removes it.
    pub fn keep(&self) {
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.1.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command with everything a shell would re-interpret: `$`, `$(...)`, both quotes, `;`,
    /// `|`, `#`, `\`, a loop.
    const TRICKY: &str = r#"x="a b"; echo "$x" | tr a-z A-Z; echo '$x' "$(echo sub)" \$HOME; for i in 1 2; do printf '%s;' "$i"; done; echo # end"#;
    const TRICKY_OUT: &str = "A B\n$x sub $HOME\n1;2;\n";

    #[test]
    fn guest_script_runs_the_command_as_written() {
        let dir = std::env::temp_dir().join(format!("rnf-xtask-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, guest_script("export RNF_TEST=1", TRICKY)).unwrap();
        let out = Command::new("bash").arg(&script).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(String::from_utf8_lossy(&out.stdout), TRICKY_OUT);
    }

    #[test]
    fn make_vm_passes_cmd_verbatim() {
        // `make vm` with a stand-in for xtask that prints its arguments: CMD must arrive as one
        // argument, byte for byte.
        let dir = std::env::temp_dir().join(format!("rnf-xtask-make-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = dir.join("args");
        let fake = dir.join("fake-xtask");
        std::fs::write(&fake, format!("#!/bin/bash\nprintf '%s\\0' \"$@\" > '{}'\n", args.display())).unwrap();
        make_executable(&fake).unwrap();
        for cmd in [TRICKY, "echo 'it'\"'\"'s'", "a=$((1+2)); echo $a"] {
            let status = Command::new("make")
                .current_dir(crate::util::repo_root())
                .args(["-s", "vm"])
                .arg(format!("XTASK={}", fake.display()))
                .arg(format!("CMD={cmd}"))
                .status()
                .unwrap();
            assert!(status.success());
            let got = std::fs::read(&args).unwrap();
            let want = format!("vm\0{cmd}\0");
            assert_eq!(String::from_utf8_lossy(&got), want);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
