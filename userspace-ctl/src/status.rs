// SPDX-License-Identifier: GPL-2.0

//! `rnfctl status`: the registered hooks of the caller's namespace and their counters.

use rnf_engine::rule::TableId;
use rnf_engine::wire::{HookStatus, Status, TableStats};

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
    for t in st.tables.iter().flatten() {
        out.push_str(&table_line(t));
    }
    out
}

/// Bytes in KiB (or bytes below one).
fn size(b: u64) -> String {
    if b < 1024 {
        format!("{b} B")
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// One live table: its size and what its classifier holds.
fn table_line(t: &TableStats) -> String {
    let name = TableId::from_u32(t.table).map_or("?", |id| id.name());
    let i = &t.index;
    format!(
        "table {name}: {} rules in {} chains, {} compiled, {} counters per CPU; \
         classifier: {} chains indexed, {} shapes, {} rules keyed, {} walked, {}; \
         last change: {} us in the kernel, {} rules compiled, {} chain indexes built\n",
        t.rules,
        t.chains,
        size(t.ruleset_bytes),
        size(t.counter_bytes),
        i.chains,
        i.shapes,
        i.keyed_rules,
        i.wild_rules,
        size(i.bytes),
        t.change_ns / 1000,
        t.compiled_rules,
        t.built_indexes
    )
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
        let mut tables = [None; rnf_engine::wire::MAX_TABLE_STATS];
        tables[0] = Some(TableStats {
            table: 1,
            rules: 10_003,
            chains: 4,
            ruleset_bytes: 1_680_504,
            counter_bytes: 160_096,
            index: rnf_engine::index::IndexStats { chains: 1, shapes: 1, keyed_rules: 10_000, wild_rules: 0, bytes: 320_064 },
            change_ns: 2_345_678,
            compiled_rules: 1,
            built_indexes: 1,
        });
        let st = Status { version: "0.1.0", netns_cookie: 1, hooks, tables };
        let text = render(&st);
        assert_eq!(text.lines().count(), 3 + NUM_HOOKS);
        let name = TableId::from_u32(1).unwrap().name();
        assert_eq!(
            text.lines().last().unwrap(),
            format!(
                "table {name}: 10003 rules in 4 chains, 1641.1 KiB compiled, 156.3 KiB counters per CPU; \
                 classifier: 1 chains indexed, 1 shapes, 10000 rules keyed, 0 walked, 312.6 KiB; \
                 last change: 2345 us in the kernel, 1 rules compiled, 1 chain indexes built"
            )
        );
        assert!(text.contains("FORWARD"));
        assert!(text.contains("INT_MAX"));
        let first = text.lines().nth(2).unwrap();
        assert_eq!(first.split_whitespace().collect::<Vec<_>>(), ["0", "PREROUTING", "-300", "raw", "0", "0"]);
    }
}
