// SPDX-License-Identifier: GPL-2.0

//! Shared helpers: cache paths, stages with timing and log files, running commands, hashing.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The error type of every task: a message for the user.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Turns any displayable error into the task error, with context.
pub trait Context<T> {
    /// Prefixes the error with `what`.
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// The repository root (the parent of this crate's folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cache folder outside the repository: `$RNF_CACHE`, else `~/.cache/rust-nf`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RNF_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("rust-nf")
}

/// Where stage logs go.
pub fn log_dir() -> PathBuf {
    cache_dir().join("logs")
}

/// Runs a stage: prints its name, runs `f` with a log file, prints the time taken; on failure
/// prints the tail of the log.
pub fn stage<T>(name: &str, f: impl FnOnce(&mut Log) -> Result<T>) -> Result<T> {
    let _ = fs::create_dir_all(log_dir());
    let path = log_dir().join(format!("{}.log", name.replace(": ", "-").replace([' ', '/', ':'], "-")));
    let mut log = Log::create(&path)?;
    print!("==> {name} ... ");
    let _ = io::stdout().flush();
    let start = Instant::now();
    let res = f(&mut log);
    let secs = start.elapsed().as_secs_f64();
    match &res {
        Ok(_) => {
            let note = if log.note.is_empty() { String::new() } else { format!(" [{}]", log.note) };
            println!("ok ({}){note}", fmt_secs(secs));
        }
        Err(e) => {
            println!("FAILED ({})", fmt_secs(secs));
            eprintln!("error: {e}");
            eprintln!("--- last lines of {} ---", path.display());
            eprintln!("{}", tail(&path, 40));
        }
    }
    res
}

/// Formats seconds as `1m 02s` or `3.4s`.
pub fn fmt_secs(secs: f64) -> String {
    if secs >= 60.0 {
        let s = secs.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A stage's log file, and a short note printed after the stage's time.
pub struct Log {
    file: fs::File,
    /// Printed next to the stage result ("cached", versions, ...).
    pub note: String,
}

impl Log {
    fn create(path: &Path) -> Result<Self> {
        let file = fs::File::create(path).ctx(&format!("creating {}", path.display()))?;
        Ok(Self { file, note: String::new() })
    }

    /// Writes a line to the log.
    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.file, "{s}");
    }

    /// Runs a command with its output going to the log; fails on a non-zero exit.
    pub fn run(&mut self, cmd: &mut Command) -> Result {
        self.line(&format!("$ {cmd:?}"));
        let out = self.file.try_clone().ctx("log")?;
        let err = self.file.try_clone().ctx("log")?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .ctx(&format!("starting {:?}", cmd.get_program()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{:?} failed ({status})", cmd.get_program()))
        }
    }
}

impl Log {
    /// Runs a build whose stdout has one line per step (kbuild's `  CC      foo.o`), with the
    /// output going to the log and the progress shown as `done/expected` steps, a percentage
    /// and the elapsed time: one line updated in place on a terminal, a plain line every 10 %
    /// otherwise. Returns the number of steps counted.
    pub fn run_progress(&mut self, cmd: &mut Command, label: &str, expected: usize) -> Result<usize> {
        use std::io::{BufRead, BufReader, IsTerminal};
        self.line(&format!("$ {cmd:?}"));
        let err = self.file.try_clone().ctx("log")?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .ctx(&format!("starting {:?}", cmd.get_program()))?;
        let tty = io::stdout().is_terminal();
        let start = Instant::now();
        let mut steps = 0usize;
        let mut shown_decile = 0usize;
        let mut last_draw = Instant::now();
        let mut drew = false;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.unwrap_or_default();
                self.line(&line);
                if !is_build_step(&line) {
                    continue;
                }
                steps += 1;
                let pct = (steps * 100 / expected.max(1)).min(99);
                let text = format!(
                    "{label}: {pct:>2}% ({steps}/~{expected} steps, {})",
                    fmt_secs(start.elapsed().as_secs_f64())
                );
                if tty {
                    if last_draw.elapsed().as_millis() >= 250 {
                        print!("\r\x1b[K==> {text}");
                        let _ = io::stdout().flush();
                        last_draw = Instant::now();
                        drew = true;
                    }
                } else if pct / 10 > shown_decile {
                    shown_decile = pct / 10;
                    if !drew {
                        println!();
                        drew = true;
                    }
                    println!("    {text}");
                }
            }
        }
        let status = child.wait().ctx("waiting for the build")?;
        if drew {
            // Put the stage's header back so that its result lands on a line of its own.
            if tty {
                print!("\r\x1b[K==> {label} ... ");
            } else {
                print!("==> {label} ... ");
            }
            let _ = io::stdout().flush();
        }
        if status.success() {
            Ok(steps)
        } else {
            Err(format!("{:?} failed ({status})", cmd.get_program()))
        }
    }
}

/// Whether a line of kbuild's output is one build step (`  CC      kernel/fork.o`,
/// `  RUSTC L rust/kernel.o`, `  LD      vmlinux`, ...).
pub fn is_build_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else { return false };
    let word: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    !word.is_empty()
        && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && rest.len() > word.len()
}

/// `text` as one shell word in single quotes (each `'` written as `'\''`).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs a command and returns its trimmed stdout; fails on a non-zero exit.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().ctx(&format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// SHA-256 of a file, in hex (via coreutils' sha256sum).
pub fn sha256_file(path: &Path) -> Result<String> {
    let out = output(Command::new("sha256sum").arg(path))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_string())
}

/// SHA-256 of some text, in hex: the cache keys.
pub fn sha256_text(text: &str) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ctx("starting sha256sum")?;
    child.stdin.take().ok_or("sha256sum stdin")?.write_all(text.as_bytes()).ctx("sha256sum")?;
    let out = child.wait_with_output().ctx("sha256sum")?;
    let s = String::from_utf8_lossy(&out.stdout);
    Ok(s.split_whitespace().next().unwrap_or_default().to_string())
}

/// Builds a cache key from named inputs; returns the first 16 hex digits.
pub fn cache_key(parts: &[(&str, &str)]) -> Result<String> {
    let mut text = String::new();
    for (k, v) in parts {
        let _ = writeln!(text, "{k}={v}");
    }
    Ok(sha256_text(&text)?.chars().take(16).collect())
}

/// The path with `$HOME/.cargo/bin` and our tool folders in front of `$PATH`.
pub fn tool_path() -> String {
    let mut dirs: Vec<String> = vec![
        crate::setup::bindgen_dir().join("bin").display().to_string(),
        crate::setup::venv_dir().join("bin").display().to_string(),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin").display().to_string());
    }
    dirs.push(std::env::var("PATH").unwrap_or_default());
    dirs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbuild_steps() {
        assert!(is_build_step("  CC      kernel/fork.o"));
        assert!(is_build_step("  RUSTC L rust/kernel.o"));
        assert!(is_build_step("  LD [M]  foo.ko"));
        assert!(is_build_step("  HOSTCC  scripts/basic/fixdep"));
        assert!(!is_build_step("make[1]: Entering directory '/x'"));
        assert!(!is_build_step("Kernel: arch/x86/boot/bzImage is ready  (#1)"));
        assert!(!is_build_step("  "));
        assert!(!is_build_step("warning: foo"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $x"), "'it'\\''s $x'");
    }
}
