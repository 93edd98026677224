// SPDX-License-Identifier: GPL-2.0

//! `rnfctl status`: the registered hooks of the caller's namespace and their counters.

use rnf_engine::wire::{HookStatus, Status};

/// Formats a priority the way netfilter's headers name it.
fn priority_name(p: i32) -> String {
    if p == i32::MAX {
        "INT_MAX".to_string()
    } else {
        p.to_string()
    }
}

/// Renders the status table.
pub fn render(st: &Status<'_>) -> String {
    let mut out = String::new();
    out.push_str(&format!("rust_nf {} (netns cookie {})\n", st.version, st.netns_cookie));
    out.push_str(&format!(
        "{:<4} {:<12} {:>8}  {:<10} {:>12} {:>14}\n",
        "slot", "hook", "priority", "stage", "packets", "bytes"
    ));
    for h in st.hooks.iter().flatten() {
        out.push_str(&row(h));
    }
    out
}

fn row(h: &HookStatus) -> String {
    format!(
        "{:<4} {:<12} {:>8}  {:<10} {:>12} {:>14}\n",
        h.slot,
        h.point.chain_name(),
        priority_name(h.priority),
        h.stage.name(),
        h.packets,
        h.bytes
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnf_engine::hooks::{HOOKS, NUM_HOOKS};

    #[test]
    fn renders_every_hook() {
        let hooks: [Option<HookStatus>; NUM_HOOKS] = core::array::from_fn(|i| {
            Some(HookStatus {
                slot: i as u32,
                point: HOOKS[i].point,
                stage: HOOKS[i].stage,
                priority: HOOKS[i].priority(),
                packets: i as u64,
                bytes: 100 * i as u64,
            })
        });
        let st = Status { version: "0.1.0", netns_cookie: 1, hooks };
        let text = render(&st);
        assert_eq!(text.lines().count(), 2 + NUM_HOOKS);
        assert!(text.contains("FORWARD"));
        assert!(text.contains("INT_MAX"));
        let first = text.lines().nth(2).unwrap();
        assert_eq!(first.split_whitespace().collect::<Vec<_>>(), ["0", "PREROUTING", "-300", "raw", "0", "0"]);
    }
}
