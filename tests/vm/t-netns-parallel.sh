#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One namespace's replace does not make other namespaces wait: a replace in A is stopped
# after compiling, with A's lock held (the module's test_hold_netns knob names A's netns);
# meanwhile B adds, lists, saves, restores and zeroes, and A's replace is still held when B
# is done. Then A's replace finishes and its rule is live. A second command in A waits
# behind the first (the lock is per namespace, and it is real).
# cost: 3
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
P=/sys/module/rust_nf/parameters
trap 'echo 0 >$P/test_hold_netns; topo_down' EXIT
A="$PFX-a" B="$PFX-b"
ns_add "$A" || fail "netns $A"
ns_add "$B" || fail "netns $B"
inum() { local l; l=$(nsx "$1" readlink /proc/self/ns/net) && l=${l#net:[} && echo "${l%]}"; }
ia=$(inum "$A")
is_num "$ia" || { fail "inode of $A: '$ia'"; finish; }
holding() { [ "$(cat $P/test_holding)" = "$1" ]; }

echo "$ia" >$P/test_hold_netns
bg "$A" "$RNF_BIN/iptables" -A INPUT -s 10.1.1.1 -j DROP
held=$BG
wait_until "$WAIT" holding 1 || fail "A's replace never reached the hold"
# A second writer in A queues behind the first.
bg "$A" "$RNF_BIN/iptables" -A INPUT -s 10.1.1.2 -j DROP
second=$BG

# B goes on: every kind of command, each bounded so a wait shows as a failure, not a hang.
b() { nsx "$B" timeout 30 "$@"; }
b "$RNF_BIN/iptables" -A INPUT -s 10.2.2.2 -j DROP || fail "B: -A while A holds its lock"
b "$RNF_BIN/iptables" -I INPUT -p udp --dport 53 -j ACCEPT || fail "B: -I"
got=$(b "$RNF_BIN/iptables" -S INPUT) || fail "B: -S"
expect_eq "B's rules" "$got" "-P INPUT ACCEPT
-A INPUT -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -s 10.2.2.2/32 -j DROP"
printf '*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-mark 7\nCOMMIT\n' |
	b "$RNF_BIN/iptables-restore" || fail "B: restore"
b "$RNF_BIN/iptables-save" -t mangle | grep -q -- '--set-xmark 0x7/0xffffffff' || fail "B: save"
b "$RNF_BIN/iptables" -Z || fail "B: -Z"
b rnfctl conntrack -L >/dev/null 2>&1 || fail "B: conntrack -L"

# A is still where it was: its first replace held, the second waiting, nothing live yet.
holding 1 || fail "A's replace is no longer held while B worked ($(cat $P/test_holding))"
kill -0 "$held" 2>/dev/null || fail "A's first writer ended while held"
kill -0 "$second" 2>/dev/null || fail "A's second writer did not wait for the first"

echo 0 >$P/test_hold_netns
wait "$held" || fail "A's first writer: exit $?"
wait "$second" || fail "A's second writer: exit $?"
expect_eq "A's rules" "$(nsx "$A" "$RNF_BIN/iptables" -S INPUT)" "-P INPUT ACCEPT
-A INPUT -s 10.1.1.1/32 -j DROP
-A INPUT -s 10.1.1.2/32 -j DROP"
expect_eq "replaces held now" "$(cat $P/test_holding)" 0
finish
