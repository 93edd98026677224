// SPDX-License-Identifier: GPL-2.0

//! Command-line and rule-line splitting as iptables does it: iptables-restore's tokenizer for
//! rule lines and a small `getopt_long` with glibc's messages for iptables-save and
//! iptables-restore (iptables' own options are parsed in [`super::parse`]).

/// iptables-restore's tokenizer for a rule line (`add_param_to_argv`): blanks separate
/// arguments; inside double quotes blanks are kept and `\` escapes the next character; a
/// closing quote ends the argument.
pub fn tokenize(line: &str) -> Vec<String> {
    // Most lines have no quote: blanks alone separate.
    if !line.contains('"') {
        return line.split([' ', '\t', '\n']).filter(|s| !s.is_empty()).map(str::to_string).collect();
    }
    let mut out = Vec::new();
    let mut param = String::new();
    let mut quote_open = false;
    let mut escaped = false;
    for c in line.chars() {
        if quote_open {
            if escaped {
                param.push(c);
                escaped = false;
                continue;
            } else if c == '\\' {
                escaped = true;
                continue;
            } else if c == '"' {
                quote_open = false;
            } else {
                param.push(c);
                continue;
            }
        } else if c == '"' {
            quote_open = true;
            continue;
        }
        match c {
            '"' => {}
            ' ' | '\t' | '\n' => {
                if param.is_empty() {
                    continue;
                }
            }
            _ => {
                param.push(c);
                continue;
            }
        }
        out.push(std::mem::take(&mut param));
    }
    if !param.is_empty() {
        out.push(param);
    }
    out
}

/// Options found (letter, argument) and the other arguments.
pub(crate) type Getopted = (Vec<(char, Option<String>)>, Vec<String>);

/// A small `getopt_long` (glibc's, with its messages on error) for iptables-save and
/// iptables-restore. `short`: option letters, `:` after one that takes an argument.
/// `long`: (name, 0 none / 1 required / 2 optional, letter). Returns the options in order and
/// the remaining arguments, or glibc's message.
pub(crate) fn mini_getopt(
    prog: &str,
    args: &[String],
    short: &str,
    long: &[(&str, u8, char)],
) -> Result<Getopted, String> {
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, val) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let found = match long.iter().find(|o| o.0 == name) {
                Some(o) => o,
                None => {
                    let cands: Vec<&(&str, u8, char)> = long.iter().filter(|o| o.0.starts_with(name)).collect();
                    match cands.first().copied() {
                        None => return Err(format!("{prog}: unrecognized option '--{body}'")),
                        Some(first) => {
                            if cands.iter().any(|o| o.1 != first.1 || o.2 != first.2) {
                                let list: String = cands.iter().map(|o| format!(" '--{}'", o.0)).collect();
                                return Err(format!("{prog}: option '--{name}' is ambiguous; possibilities:{list}"));
                            }
                            first
                        }
                    }
                }
            };
            let val = match (found.1, val) {
                (0, Some(_)) => return Err(format!("{prog}: option '--{}' doesn't allow an argument", found.0)),
                (1, None) => {
                    if i < args.len() {
                        i += 1;
                        Some(args[i - 1].clone())
                    } else {
                        return Err(format!("{prog}: option '--{}' requires an argument", found.0));
                    }
                }
                (_, v) => v,
            };
            opts.push((found.2, val));
            continue;
        }
        if !a.starts_with('-') || a.len() == 1 {
            rest.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            let Some(pos) = short.find(c).filter(|_| c != ':') else {
                return Err(format!("{prog}: invalid option -- '{c}'"));
            };
            if short[pos + 1..].starts_with(':') {
                let tail: String = chars[k..].iter().collect();
                let val = if !tail.is_empty() {
                    tail
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(format!("{prog}: option requires an argument -- '{c}'"));
                };
                opts.push((c, Some(val)));
                break;
            }
            opts.push((c, None));
        }
    }
    Ok((opts, rest))
}
