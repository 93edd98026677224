#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# -m connlimit as a server uses it: at most 2 open connections per client address
# (`--connlimit-above 2 -j REJECT --reject-with tcp-reset` on new SYNs). With two held
# open, a third is reset; when they close (FIN, the flows leave ESTABLISHED), a new one is
# accepted again. The same with iptables-legacy and nf_conntrack.
# cost: 8
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
DATA=$(dirname "$0")/data

bg "$S" socat -T "$WAIT" TCP-LISTEN:7001,reuseaddr,fork SYSTEM:"echo hi"
wait_tcp_listen "$S" 7001

run() {
	local t=$1 what=$2 n got
	nsx "$S" "$t" -A INPUT -p tcp --syn -m multiport --dports 7000,7001 -m connlimit --connlimit-above 2 --connlimit-mask 24 -j REJECT --reject-with tcp-reset ||
		{ fail "$what: rule"; return; }
	bg "$S" python3 "$DATA/tcphold.py" server 10.0.2.2 7000
	local server=$BG
	wait_tcp_listen "$S" 7000
	bg "$C" python3 "$DATA/tcphold.py" client 10.0.2.2 7000 2
	local holder=$BG
	# The two held connections are up; a third (to another port, same limit) is reset.
	_two_up() { [ "$(nsx "$S" ss -Htn state established "( sport = :7000 )" | wc -l)" -ge 2 ]; }
	wait_until "$WAIT" _two_up || fail "$what: two connections not up"
	got=$(nsx "$C" socat -T "$WAIT" - TCP:10.0.2.2:7001 </dev/null 2>&1)
	case $got in *"Connection refused"* | *"reset"*) log "ok: $what: third connection reset" ;; *) fail "$what: third connection: '$got'" ;; esac
	n=$(nsx "$S" "$t" -L INPUT -n -v -x | awk 'NR == 3 { print $1 }')
	expect_ge "$what: SYNs rejected" "$n" 1
	# Both ends close: the flows leave ESTABLISHED (TIME_WAIT / CLOSE no longer count).
	stop "$holder" "$server"
	wait_tcp_done 7000 "$C" "$S"
	# Closed flows do not count: a new connection gets through.
	tcp_get "$C" 10.0.2.2 7001
	expect_eq "$what: after the two closed" "$TCP_OUT" hi
	nsx "$S" "$t" -F INPUT
}
run "$RNF_BIN/iptables" rnfctl
run iptables-legacy legacy
finish
