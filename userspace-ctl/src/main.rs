// SPDX-License-Identifier: GPL-2.0

//! rnfctl: configures and inspects rust_nf over generic netlink.

mod backend;
mod conntrack;
mod ctxml;
mod recent;
mod sysctl;
mod faultinject;
mod fuzz;
mod ipt;
mod netlink;
mod status;
mod validate;

use std::process::ExitCode;

use rnf_engine::wire;

const USAGE: &str = "\
usage: rnfctl <command> [options]
       rnfctl -A INPUT ... (any iptables command line)
       iptables ... / iptables-save ... / iptables-restore ... / conntrack ... (when called by
       those names)

commands:
  iptables ARGS...       what `iptables ARGS` does (iptables-legacy 1.8.9 syntax and output)
  save [-t T] [-c]       what `iptables-save` does
  restore [-n] [-c] [-T T] [FILE]
                         what `iptables-restore` does: one transaction, all or nothing
  conntrack -L|-D|-E|-C|-F|-S [-p P] [-s A] [-d A] [-r A] [-q A] [--sport N] [--dport N]
                         [--state S] [-u STATUS] [-m MARK[/MASK]] [-e NEW,UPDATE,DESTROY]
                         [-o extended,xml,timestamp]
                         rust_nf's connection table as `conntrack` shows the kernel's: list
                         (with packet and byte counts), delete, live events, count, flush,
                         statistics
  recent [NAME [+ADDR|-ADDR|/]]
                         the -m recent lists: their names; one list as
                         /proc/net/xt_recent/NAME shows it; add, remove, flush as a write to
                         that file does
  sysctl [-n] [NAME[=VALUE]...]
                         connection tracking settings named as the kernel's
                         net.netfilter.nf_conntrack_* (timeouts, max, tcp_loose, ...): print,
                         or set (CAP_NET_ADMIN)
  status                 show rust_nf's hooks in this network namespace and their counters
  zero [--hook SLOT]     zero the hook counters (all, or one slot); needs CAP_NET_ADMIN
  fault-inject [--rounds N] FILE
                         commit FILE's tables while the kernel fails each allocation in turn
                         (fault injection); check every failure left the tables unchanged
  fuzz-netlink [--count N] [--seed S]
                         send N random and malformed requests; check the tables never change
  raw CMD [HEX]          send command number CMD with a hex attribute payload and print the
                         reply's payload in hex (for studying the wire format)
  --version              print the version
  -h, --help             this text
";

/// The iptables personalities rnfctl takes on.
#[derive(Clone, Copy)]
enum Personality {
    Iptables,
    Save,
    Restore,
}

fn main() -> ExitCode {
    // As iptables and conntrack (C programs): a reader that closes the pipe early (`| head`)
    // ends the listing quietly, instead of an error message about a broken pipe.
    // SAFETY: Setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv: Vec<String> = std::env::args().collect();
    let name = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let args = argv.get(1..).unwrap_or(&[]);
    // Multi-call: as `iptables`, `iptables-save` or `iptables-restore` (symlinks), behave as
    // that command so that existing scripts run unchanged.
    match name.as_str() {
        "iptables" => return iptables(Personality::Iptables, args),
        "iptables-save" => return iptables(Personality::Save, args),
        "iptables-restore" => return iptables(Personality::Restore, args),
        "conntrack" => return ExitCode::from(conntrack::main(args)),
        _ => {}
    }
    match args.first().map(String::as_str) {
        Some("conntrack") => return ExitCode::from(conntrack::main(&args[1..])),
        Some("recent") => return ExitCode::from(recent::main(&args[1..])),
        Some("sysctl") => return ExitCode::from(sysctl::main(&args[1..])),
        Some("iptables") => return iptables(Personality::Iptables, &args[1..]),
        Some("save") => return iptables(Personality::Save, &args[1..]),
        Some("restore") => return iptables(Personality::Restore, &args[1..]),
        Some(a) if a.starts_with('-') && !matches!(a, "-h" | "--help" | "-V" | "--version") => {
            return iptables(Personality::Iptables, args)
        }
        _ => {}
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rnfctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one iptables personality against the kernel and maps its result to iptables' exit
/// status, with its message on standard error.
fn iptables(p: Personality, args: &[String]) -> ExitCode {
    use std::io::Write;
    let prog = match p {
        Personality::Iptables => "iptables",
        Personality::Save => "iptables-save",
        Personality::Restore => "iptables-restore",
    };
    let mut backend = backend::KernelBackend::new(prog);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let res = match p {
        Personality::Iptables => ipt::command::iptables_main(args, &mut backend, &mut out),
        Personality::Save => ipt::save::save_main(args, &mut backend, &mut out),
        Personality::Restore => {
            let mut input = String::new();
            if ipt::restore::restore_reads_stdin(args) {
                use std::io::Read;
                if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                    eprintln!("iptables-restore: {e}");
                    return ExitCode::from(1);
                }
            }
            ipt::restore::restore_main(args, &input, &mut backend, &mut out)
        }
    };
    let _ = out.flush();
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            ExitCode::from(e.status)
        }
    }
}

/// A failed command: its message and exit status.
#[derive(Debug)]
enum CliError {
    Usage(String),
    Netlink(netlink::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Netlink(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}\nTry `rnfctl --help' for more information."),
            CliError::Netlink(e) => write!(f, "{e}"),
        }
    }
}

impl From<netlink::Error> for CliError {
    fn from(e: netlink::Error) -> Self {
        CliError::Netlink(e)
    }
}

fn run(args: &[String]) -> Result<(), CliError> {
    let Some(cmd) = args.first() else {
        return Err(CliError::Usage("no command given".into()));
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "--version" | "-V" | "version" => {
            println!("rnfctl {} (rust_nf wire format {})", env!("CARGO_PKG_VERSION"), wire::FAMILY_VERSION);
            Ok(())
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        "fault-inject" => {
            let msg = faultinject::main(rest).map_err(CliError::Usage)?;
            println!("{msg}");
            Ok(())
        }
        "fuzz-netlink" => {
            let msg = fuzz::main(rest).map_err(CliError::Usage)?;
            println!("{msg}");
            Ok(())
        }
        "status" => {
            no_more(rest)?;
            let mut c = netlink::Client::connect()?;
            let payload = c.query(wire::CMD_GET_STATUS, Vec::new())?;
            let st = wire::decode_status(&payload).map_err(|e| netlink::Error::Decode(format!("{e:?}")))?;
            print!("{}", status::render(&st));
            Ok(())
        }
        "zero" => {
            let mut buf = [0u8; 16];
            let mut enc = wire::Encoder::new(&mut buf);
            match rest {
                [] => {}
                [flag, n] if flag == "--hook" => {
                    let slot: u32 = n.parse().map_err(|_| CliError::Usage(format!("bad hook slot `{n}'")))?;
                    enc.put_u32(wire::A_HOOK_SLOT, slot);
                }
                _ => return Err(CliError::Usage("usage: rnfctl zero [--hook SLOT]".into())),
            }
            let n = enc.len();
            let mut c = netlink::Client::connect()?;
            c.request(wire::CMD_ZERO_COUNTERS, buf[..n].to_vec())?;
            Ok(())
        }
        "raw" => {
            let (num, hex) = match rest {
                [num] => (num, ""),
                [num, hex] => (num, hex.as_str()),
                _ => return Err(CliError::Usage("usage: rnfctl raw CMD [HEX]".into())),
            };
            let cmd: u8 = num.parse().map_err(|_| CliError::Usage(format!("bad command number `{num}'")))?;
            let attrs = parse_hex(hex).ok_or_else(|| CliError::Usage(format!("bad hex payload `{hex}'")))?;
            let mut c = netlink::Client::connect()?;
            for reply in c.request(cmd, attrs)? {
                println!("{}", reply.iter().map(|b| format!("{b:02x}")).collect::<String>());
            }
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown command `{other}'"))),
    }
}

fn no_more(rest: &[String]) -> Result<(), CliError> {
    match rest.first() {
        None => Ok(()),
        Some(a) => Err(CliError::Usage(format!("unexpected argument `{a}'"))),
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_payloads() {
        assert_eq!(parse_hex("08000400 03000000"), Some(vec![8, 0, 4, 0, 3, 0, 0, 0]));
        assert_eq!(parse_hex(""), Some(vec![]));
        assert_eq!(parse_hex("0"), None);
        assert_eq!(parse_hex("zz"), None);
    }

    /// The C shim's numbering (rust_nf/rnf_wire.h) must agree with the engine's.
    #[test]
    fn wire_header_matches_engine() {
        let h = include_str!("../../rust_nf/rnf_wire.h");
        let get = |name: &str| -> String {
            h.lines()
                .find_map(|l| l.strip_prefix("#define ").and_then(|r| r.strip_prefix(name)).filter(|r| r.starts_with(' ')))
                .unwrap_or_else(|| panic!("{name} missing from rnf_wire.h"))
                .trim()
                .to_string()
        };
        assert_eq!(get("RNF_FAMILY_NAME"), format!("\"{}\"", wire::FAMILY_NAME));
        assert_eq!(get("RNF_FAMILY_VERSION"), wire::FAMILY_VERSION.to_string());
        assert_eq!(get("RNF_CMD_GET_STATUS"), wire::CMD_GET_STATUS.to_string());
        assert_eq!(get("RNF_CMD_ZERO_COUNTERS"), wire::CMD_ZERO_COUNTERS.to_string());
        assert_eq!(get("RNF_A_VERSION"), wire::A_VERSION.to_string());
        assert_eq!(get("RNF_A_NETNS_COOKIE"), wire::A_NETNS_COOKIE.to_string());
        assert_eq!(get("RNF_A_HOOKS"), wire::A_HOOKS.to_string());
        assert_eq!(get("RNF_A_HOOK_SLOT"), wire::A_HOOK_SLOT.to_string());
        assert_eq!(get("RNF_A_TABLE"), rnf_engine::rulewire::A_TABLE.to_string());
        assert_eq!(get("RNF_A_GENERATION"), rnf_engine::rulewire::A_GENERATION.to_string());
        assert_eq!(get("RNF_A_CHAIN"), rnf_engine::rulewire::A_CHAIN.to_string());
        assert_eq!(get("RNF_A_RULE"), rnf_engine::rulewire::A_RULE.to_string());
        assert_eq!(get("RNF_A_TABLE_FLAGS"), rnf_engine::rulewire::A_TABLE_FLAGS.to_string());
        assert_eq!(get("RNF_A_CREATED"), rnf_engine::rulewire::A_CREATED.to_string());
        assert_eq!(get("RNF_E_ID"), rnf_engine::rulewire::E_ID.to_string());
        assert_eq!(get("RNF_E_SPEC"), rnf_engine::rulewire::E_SPEC.to_string());
        assert_eq!(get("RNF_R_MATCH"), rnf_engine::rulewire::R_MATCH.to_string());
        assert_eq!(get("RNF_R_TARGET"), rnf_engine::rulewire::R_TARGET.to_string());
        assert_eq!(get("RNF_C_NAME"), rnf_engine::rulewire::C_NAME.to_string());
        assert_eq!(get("RNF_CMD_GET_TABLE"), wire::CMD_GET_TABLE.to_string());
        assert_eq!(get("RNF_CMD_REPLACE_TABLE"), wire::CMD_REPLACE_TABLE.to_string());
        assert_eq!(get("RNF_CMD_REPLACE_TABLES"), wire::CMD_REPLACE_TABLES.to_string());
        assert_eq!(get("RNF_CMD_UPDATE_TABLE"), wire::CMD_UPDATE_TABLE.to_string());
        assert_eq!(get("RNF_A_OP"), rnf_engine::rulewire::A_OP.to_string());
        assert_eq!(get("RNF_O_KIND"), rnf_engine::rulewire::O_KIND.to_string());
        assert_eq!(get("RNF_OP_KIND_MAX"), (rnf_engine::rulewire::OpKind::DefineChain as u32).to_string());
        assert!(rnf_engine::rulewire::OpKind::from_u32(rnf_engine::rulewire::OpKind::DefineChain as u32 + 1).is_none());
        assert_eq!(get("RNF_O_CHAIN"), rnf_engine::rulewire::O_CHAIN.to_string());
        assert_eq!(get("RNF_O_POS"), rnf_engine::rulewire::O_POS.to_string());
        assert_eq!(get("RNF_O_PACKETS"), rnf_engine::rulewire::O_PACKETS.to_string());
        assert_eq!(get("RNF_O_BYTES"), rnf_engine::rulewire::O_BYTES.to_string());
        assert_eq!(get("RNF_O_SPEC"), rnf_engine::rulewire::O_SPEC.to_string());
        assert_eq!(get("RNF_O_NAME"), rnf_engine::rulewire::O_NAME.to_string());
        assert_eq!(get("RNF_O_POLICY"), rnf_engine::rulewire::O_POLICY.to_string());
        assert_eq!(get("RNF_O_RULE"), rnf_engine::rulewire::O_RULE.to_string());
        assert_eq!(get("RNF_O_CHAIN_NAME"), rnf_engine::rulewire::O_CHAIN_NAME.to_string());
        use rnf_engine::rulewire::{TF_CHECK_GENERATION, TF_CURRENT, TF_RESET_POLICY_COUNTERS};
        let mask = TF_CHECK_GENERATION | TF_RESET_POLICY_COUNTERS | TF_CURRENT;
        assert_eq!(get("RNF_TF_UPDATE_MASK"), format!("{mask:#x}"));
        assert_eq!(get("RNF_CMD_UPDATE_TABLES"), wire::CMD_UPDATE_TABLES.to_string());
        assert_eq!(get("RNF_A_MAX"), wire::A_MAX.to_string());
        assert_eq!(get("RNF_NUM_HOOKS"), rnf_engine::hooks::NUM_HOOKS.to_string());
        use rnf_engine::recent::{wire as rw, NAME_LEN};
        assert_eq!(get("RNF_CMD_RECENT_DUMP"), rw::CMD_RECENT_DUMP.to_string());
        assert_eq!(get("RNF_CMD_RECENT_SET"), rw::CMD_RECENT_SET.to_string());
        assert_eq!(get("RNF_A_RECENT_NAME"), rw::A_RECENT_NAME.to_string());
        assert_eq!(get("RNF_A_RECENT_OP"), rw::A_RECENT_OP.to_string());
        assert_eq!(get("RNF_A_RECENT_ADDR"), rw::A_RECENT_ADDR.to_string());
        assert_eq!(get("RNF_RECENT_NAME_LEN"), NAME_LEN.to_string());
        use rnf_engine::conntrack::wire as cw;
        assert_eq!(get("RNF_CMD_CT_SYSCTL_GET"), cw::CMD_CT_SYSCTL_GET.to_string());
        assert_eq!(get("RNF_CMD_CT_SYSCTL_SET"), cw::CMD_CT_SYSCTL_SET.to_string());
        assert_eq!(get("RNF_A_SYSCTL_KEY"), cw::A_SYSCTL_KEY.to_string());
        assert_eq!(get("RNF_A_SYSCTL_VALUE"), cw::A_SYSCTL_VALUE.to_string());
        assert_eq!(get("RNF_CMD_CT_DELETE"), cw::CMD_CT_DELETE.to_string());
        assert_eq!(get("RNF_A_CT_DEL_ID"), cw::A_CT_DEL_ID.to_string());
        assert_eq!(get("RNF_A_CT_DEL_TUPLE"), cw::A_CT_DEL_TUPLE.to_string());
        assert_eq!(get("RNF_NUM_SYSCTLS"), rnf_engine::conntrack::settings::NUM_KEYS.to_string());
    }
}
