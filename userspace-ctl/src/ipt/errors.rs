// SPDX-License-Identifier: GPL-2.0

//! How iptables-legacy words failures: errno texts, libiptc's messages per call, the
//! rendering of a parse failure for `iptables`, `iptables-save` and `iptables-restore`.

use super::parse::{Fail, FailKind, VERSION};
use super::IptError;

/// errno values used here (Linux).
pub mod errno {
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Argument list too long.
    pub const E2BIG: i32 = 7;
    /// Try again.
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Too many links.
    pub const EMLINK: i32 = 31;
    /// Math result not representable.
    pub const ERANGE: i32 = 34;
    /// Directory not empty.
    pub const ENOTEMPTY: i32 = 39;
    /// Too many symbolic links encountered.
    pub const ELOOP: i32 = 40;
    /// Protocol not available.
    pub const ENOPROTOOPT: i32 = 92;
}
use errno::*;

/// Which program is speaking (for message prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prog {
    /// `iptables`.
    Iptables,
    /// `iptables-restore`.
    Restore,
    /// `iptables-save`.
    Save,
}

impl Prog {
    /// The program name.
    pub fn name(self) -> &'static str {
        match self {
            Prog::Iptables => "iptables",
            Prog::Restore => "iptables-restore",
            Prog::Save => "iptables-save",
        }
    }
}

/// The libiptc call that failed (its messages depend on it, as `iptc_strerror` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Generic,
    CreateChain,
    InsertEntry,
    ReplaceEntry,
    DeleteNumEntry,
    ZeroCounter,
    DeleteEntry,
    SetPolicy,
}

fn strerror(e: i32) -> String {
    match e {
        1 => "Operation not permitted".into(),
        ENOENT => "No such file or directory".into(),
        E2BIG => "Argument list too long".into(),
        EAGAIN => "Resource temporarily unavailable".into(),
        ENOMEM => "Cannot allocate memory".into(),
        16 => "Device or resource busy".into(),
        EEXIST => "File exists".into(),
        EINVAL => "Invalid argument".into(),
        EMLINK => "Too many links".into(),
        ERANGE => "Numerical result out of range".into(),
        ENOTEMPTY => "Directory not empty".into(),
        ELOOP => "Too many levels of symbolic links".into(),
        _ => {
            let s = std::io::Error::from_raw_os_error(e).to_string();
            match s.find(" (os error") {
                Some(p) => s[..p].to_string(),
                None => s,
            }
        }
    }
}

/// `iptc_strerror` for the call `op`.
pub(crate) fn iptc_message(op: Op, e: i32) -> String {
    let specific = match (op, e) {
        (Op::CreateChain, EEXIST) => Some("Chain already exists"),
        (Op::InsertEntry, E2BIG) => Some("Index of insertion too big"),
        (Op::ReplaceEntry, E2BIG) => Some("Index of replacement too big"),
        (Op::DeleteNumEntry, E2BIG) => Some("Index of deletion too big"),
        (Op::ZeroCounter, E2BIG) => Some("Index of counter too big"),
        (Op::InsertEntry, ELOOP) => Some("Loop found in table"),
        (Op::InsertEntry, EINVAL) => Some("Target problem"),
        (Op::DeleteEntry, ENOENT) => Some("Bad rule (does a matching rule exist in that chain?)"),
        (Op::SetPolicy, ENOENT) => Some("Bad built-in chain name"),
        (Op::SetPolicy, EINVAL) => Some("Bad policy name"),
        _ => None,
    };
    if let Some(s) = specific {
        return s.to_string();
    }
    match e {
        0 => "Incompatible with this kernel".into(),
        ENOPROTOOPT => "iptables who? (do you need to insmod?)".into(),
        38 => "Will be implemented real soon.  I promise ;)".into(),
        ENOMEM => "Memory allocation problem".into(),
        ENOENT => "No chain/target/match by that name".into(),
        _ => strerror(e),
    }
}

fn errno_line(prog: &str, op: Op, e: i32) -> String {
    if e == EINVAL {
        format!("{prog}: {}. Run `dmesg' for more information.", iptc_message(op, e))
    } else {
        format!("{prog}: {}.", iptc_message(op, e))
    }
}

/// What iptables-legacy prints when the kernel refuses a table with `errno` (the commit of
/// `iptables`), e.g. `iptables: Too many levels of symbolic links.`
pub fn errno_message(errno: i32) -> String {
    errno_line("iptables", Op::Generic, errno)
}

/// [`errno_message`] as an error with iptables' exit status (4 for EAGAIN, else 1).
pub fn errno_error(errno: i32) -> IptError {
    IptError { message: errno_message(errno), status: if errno == EAGAIN { 4 } else { 1 } }
}

/// Formats a failure as `prog` prints it. `line` is iptables-restore's line number for
/// parameter problems. The message is the complete text for standard error, without the final
/// newline.
pub fn render_fail(f: &Fail, prog: Prog, line: Option<usize>) -> IptError {
    let mut e = render_fail_inner(f, prog, line);
    e.message.insert_str(0, &f.pre);
    e
}

fn render_fail_inner(f: &Fail, prog: Prog, line: Option<usize>) -> IptError {
    let name = prog.name();
    let tryhelp = || {
        let mut s = String::new();
        if let Some(l) = line {
            s.push_str(&format!("Error occurred at line: {l}\n"));
        }
        s.push_str(&format!("Try `{name} -h' or '{name} --help' for more information."));
        s
    };
    match &f.kind {
        FailKind::Param => IptError::param(format!("{name} v{VERSION}: {}\n{}", f.msg, tryhelp())),
        FailKind::Bare => IptError::param(format!("{}{}", f.msg, tryhelp())),
        FailKind::TryHelp => IptError::param(tryhelp()),
        FailKind::Other => {
            IptError { message: format!("{name} v{VERSION}: {}", f.msg.trim_end_matches('\n')), status: 1 }
        }
        FailKind::Version => IptError {
            message: format!("{name} v{VERSION}: {}\nPerhaps iptables or your kernel needs to be upgraded.", f.msg),
            status: 3,
        },
        FailKind::Errno(e) => {
            let op = op_of(&f.msg);
            IptError { message: errno_line("iptables", op, *e), status: if *e == EAGAIN { 4 } else { 1 } }
        }
        FailKind::Plain => IptError { message: f.msg.trim_end_matches('\n').to_string(), status: 1 },
    }
}

// The libiptc call is carried in the message field of an errno failure.
pub(crate) fn op_fail(op: Op, e: i32) -> Fail {
    Fail { kind: FailKind::Errno(e), msg: format!("{op:?}"), pre: String::new() }
}

pub(crate) fn op_of(msg: &str) -> Op {
    match msg {
        "CreateChain" => Op::CreateChain,
        "InsertEntry" => Op::InsertEntry,
        "ReplaceEntry" => Op::ReplaceEntry,
        "DeleteNumEntry" => Op::DeleteNumEntry,
        "ZeroCounter" => Op::ZeroCounter,
        "DeleteEntry" => Op::DeleteEntry,
        "SetPolicy" => Op::SetPolicy,
        _ => Op::Generic,
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's checks
