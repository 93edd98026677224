#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The netlink family takes random, malformed and valid-looking requests (rnfctl fuzz-netlink:
# bad lengths and types, broken nests, huge counts, cut messages, rulesets of every shape,
# every command) and answers each with an error or a reply: no kernel warning (the log check),
# no leak (the kmemleak check at the end of the run), and the running ruleset never changes.
# `make test` sends 20,000 (seed 1); a run with 100,000 took 31 s under TCG.
# cost: 60
. "$(dirname "$0")/lib.sh"
N="$PFX-fuzz"

rnf_load || { fail "insmod"; finish; }
ns_add "$N" || finish
printf '%s\n' "*filter" ":INPUT ACCEPT [0:0]" ":FORWARD DROP [0:0]" ":OUTPUT ACCEPT [0:0]" ":U0 - [0:0]" \
	"-A INPUT -p icmp -j U0" "-A U0 -s 10.0.0.0/8 -j DROP" "COMMIT" >"$TMPD/rules"
nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/rules" || fail "restore"
nsx "$N" ping -n -c 2 -i 0.05 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping"
# Every table exists before (reading a table creates it, as with ip_tables; the fuzzer reads).
for t in raw mangle nat security; do nsx "$N" "$RNF_BIN/iptables" -t $t -S >/dev/null || fail "creating $t"; done
nsx "$N" "$RNF_BIN/iptables-save" -c | grep -v '^#' >"$TMPD/before"
out=$(nsx "$N" rnfctl fuzz-netlink --count "${RNF_FUZZ_COUNT:-20000}" --seed "${RNF_FUZZ_SEED:-1}" 2>&1)
rc=$?
log "$out"
expect_eq "fuzz-netlink exit status" "$rc" 0
[[ $out == *"the tables never changed"* ]] || fail "no summary from fuzz-netlink"
nsx "$N" "$RNF_BIN/iptables-save" -c | grep -v '^#' >"$TMPD/after"
cmp -s "$TMPD/before" "$TMPD/after" && log "ok: iptables-save -c unchanged" ||
	fail "ruleset changed: $(diff "$TMPD/before" "$TMPD/after" | head -4 | tr '\n' ' ')"
finish
