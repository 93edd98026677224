#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# NFQUEUE hands packets to a userspace listener (nfnetlink_queue), side by side with
# iptables-legacy in two identical topologies: with a listener on the queue
# (tests/vm/data/nfq.py, which accepts what it reads) a ping's request reaches the server and
# the listener saw it once; with none, the request is dropped, unless --queue-bypass lets it go
# on; --queue-balance puts it in one of its queues; the listings are iptables-legacy's.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topology"; finish; }

# side_rule SIDE RULE...: the rule on the side's router, from its tool.
side_rule() {
	local side=$1
	shift
	if [ "$side" = rnf ]; then
		nsx "$RR" "$RNF_BIN/iptables" "$@" || fail "rnfctl: $*"
	else
		nsx "$KR" iptables-legacy "$@" || fail "iptables-legacy: $*"
	fi
}
# counter SIDE N: packets of FORWARD rule N.
counter() {
	local ns=$RR tool=$RNF_BIN/iptables
	[ "$1" = kernel ] && ns=$KR tool=iptables-legacy
	nsx "$ns" "$tool" -L FORWARD -n -v -x --line-numbers | awk -v n="$2" '$1 == n { print $2 }'
}

# The listener: tests/vm/data/nfq.py QUEUE COUNT accepts what it reads.
NFQ="$(dirname "$0")/data/nfq.py"

# reaches WHAT: one echo request from the client reaches the server (its count of received
# echo requests grows), waited for; the client's ping is then stopped.
reaches() {
	local e0 pid
	icmp_read "$S"
	e0=${ICMP[InEchos]:-0}
	bg "$C" ping -n -q -c 1 -W "$WAIT" 10.0.2.2 >/dev/null
	pid=$BG
	_arrived() { icmp_read "$S" && [ "${ICMP[InEchos]:-0}" -gt "$e0" ]; }
	wait_until "$WAIT" _arrived || fail "$side: $1: the request did not reach the server"
	stop "$pid"
}

for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC R=$RR S=$RS; else C=$KC R=$KR S=$KS; fi
	side_rule $side -A FORWARD -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 3

	# A listener: the ping goes through it both ways.
	bg "$R" python3 "$NFQ" 3 0 >"$TMPD/q3.$side" 2>&1
	pid=$BG
	wait_until "$WAIT" grep -q "bound" "$TMPD/q3.$side" || fail "$side: the listener did not start: $(cat "$TMPD/q3.$side")"
	reaches "through the listener"
	stop "$pid"
	expect_eq "$side: packets the listener accepted" "$(grep -c "^queue 3 packet [0-9]* hook 2$" "$TMPD/q3.$side")" 1

	# No listener: the request is dropped where the rule counts it.
	icmp_read "$S"
	e0=${ICMP[InEchos]:-0}
	bg "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2
	pid=$BG
	_counted() { [ "$(counter "$side" 1)" = 2 ]; }
	wait_until "$WAIT" _counted || fail "$side: the request was not counted"
	stop "$pid"
	icmp_read "$S"
	expect_eq "$side: requests at the server without a listener" $((${ICMP[InEchos]:-0} - e0)) 0

	# --queue-bypass: no listener, the packets go on.
	side_rule $side -R FORWARD 1 -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 3 --queue-bypass
	reaches "--queue-bypass without a listener"

	# --queue-balance 4:5: both directions of the ping in one of the two queues.
	side_rule $side -R FORWARD 1 -p icmp --icmp-type echo-request -j NFQUEUE --queue-balance 4:5
	for q in 4 5; do
		bg "$R" python3 "$NFQ" "$q" 0 >"$TMPD/q$q.$side" 2>&1
		eval "pid$q=\$BG"
	done
	_both() { grep -q "bound" "$TMPD/q4.$side" && grep -q "bound" "$TMPD/q5.$side"; }
	wait_until "$WAIT" _both || fail "$side: the listeners did not start"
	reaches "through the balanced queues"
	# shellcheck disable=SC2154 # set by eval
	stop "$pid4"
	# shellcheck disable=SC2154
	stop "$pid5"
	n4=$(grep -c "^queue 4 packet" "$TMPD/q4.$side")
	n5=$(grep -c "^queue 5 packet" "$TMPD/q5.$side")
	if [ "$n4:$n5" = 1:0 ] || [ "$n4:$n5" = 0:1 ]; then
		log "ok: $side: the request in one of the queues ($n4 and $n5)"
	else
		fail "$side: the request in queues 4 and 5: $n4 and $n5"
	fi
	side_rule $side -A FORWARD -p icmp -j NFQUEUE --queue-balance 0:6 --queue-bypass --queue-cpu-fanout
	C=$RC R=$RR S=$RS
done

# (Without the policies' counters: when the last reply passed is a matter of timing.)
NO_POLICY_COUNTS=1 same_listings "$RR" "$KR" "-S" "-L" "-L -n -v -x --line-numbers"
finish
