#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two writers at once never lose each other's changes: two processes append 60 rules each to
# the same chain at the same time (every `iptables -A` reads the table, changes it and
# writes it back; the kernel refuses a write whose table changed since it was read, and the
# command is applied again to the table as it now is). Every command succeeds and all 120
# rules are there, each writer's in its own order.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
ns_add "$PFX-w" || { fail "netns"; finish; }
N="$PFX-w"

writer() { # NAME: 60 appends, then "done NAME FAILURES" in $TMPD/NAME
	local i bad=0
	for i in $(seq 1 60); do
		nsx "$N" "$RNF_BIN/iptables" -A INPUT -s "10.$1.0.$i" -j DROP || bad=$((bad + 1))
	done
	echo "done $bad" >"$TMPD/w.$1"
}
writer 1 &
BG_PIDS+=("$!")
writer 2 &
BG_PIDS+=("$!")
_both() { [ -s "$TMPD/w.1" ] && [ -s "$TMPD/w.2" ]; }
wait_until 300 _both || fail "the writers did not finish"
expect_eq "writer 1" "$(cat "$TMPD/w.1")" "done 0"
expect_eq "writer 2" "$(cat "$TMPD/w.2")" "done 0"
rules=$(nsx "$N" "$RNF_BIN/iptables" -S INPUT | grep -c '^-A')
expect_eq "rules in INPUT" "$rules" 120
for w in 1 2; do
	order=$(nsx "$N" "$RNF_BIN/iptables" -S INPUT | sed -n "s|^-A INPUT -s 10\\.$w\\.0\\.\\([0-9]*\\)/32 -j DROP|\\1|p" | tr '\n' ' ')
	expect_eq "writer $w's rules, in order" "$order" "$(seq -s ' ' 1 60) "
done
finish
