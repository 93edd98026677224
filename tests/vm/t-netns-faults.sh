#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Network namespaces come and go cleanly while allocations fail: with rust_nf loaded, every
# allocation of a namespace's creation fails in turn (fault injection, fail-nth), among them
# rust_nf's own state and its hook registrations (a failure part-way through registering
# the hooks unregisters them, waits for a grace period, then frees the state). Each creation
# either succeeds or fails with an error; the kernel log check and the leak check at the end of
# the run see nothing; rust_nf still works afterwards.
# cost: 40
. "$(dirname "$0")/lib.sh"
N="$PFX-after"

rnf_load || { fail "insmod"; finish; }
fault_injection_on

out=$(/usr/bin/python3 "$(dirname "$0")/data/netns-faults.py" 2>&1)
rc=$?
log "$out"
expect_eq "netns-faults exit status" "$rc" 0
read -r _ attempts _ failed _ absorbed _ <<<"$out"
if is_num "${failed:-}" && [ "$failed" -ge 10 ]; then
	log "ok: $failed namespace creations failed, $absorbed more absorbed a failure"
else
	fail "want at least 10 failed creations, got '$out'"
fi
fault_injection_off
# rust_nf works in a namespace created afterwards.
ns_add "$N" || finish
nsx "$N" "$RNF_BIN/iptables" -A INPUT -p icmp -j ACCEPT || fail "a rule after the faults"
nsx "$N" ping -n -c 1 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping"
expect_eq "the rule counted the ping (request and reply)" "$(rule_counter "$N" filter INPUT 1 packets)" 2
finish
