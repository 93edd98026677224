#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Traffic to the server moves its PREROUTING and INPUT counters; its answers move OUTPUT and
# POSTROUTING; nothing is forwarded there.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
nsx "$S" rnfctl zero || fail "zero"
N=7
nsx "$C" ping -c $N -i 0.2 -W 2 10.0.2.2 >/dev/null || fail "ping the server"
for ps in "PREROUTING raw" "PREROUTING nat" "INPUT filter" "INPUT confirm" \
	"OUTPUT raw" "OUTPUT filter" "POSTROUTING nat" "POSTROUTING confirm"; do
	set -- $ps
	expect_eq "server $1/$2 packets" "$(hook_counter "$S" "$1" "$2" packets)" "$N"
	expect_eq "server $1/$2 bytes" "$(hook_counter "$S" "$1" "$2" bytes)" "$((N * 84))"
done
expect_eq "server FORWARD packets" "$(point_packets "$S" FORWARD)" 0

# A TCP exchange counts too: one connection, a few segments each way.
nsx "$S" rnfctl zero
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo hello' &
sleep 0.5
got=$(nsx "$C" socat -T5 -t5 - TCP:10.0.2.2:8080 </dev/null)
wait
expect_eq "TCP reply" "$got" "hello"
expect_ge "server INPUT/filter packets after TCP" "$(hook_counter "$S" INPUT filter packets)" 4
expect_ge "server OUTPUT/filter packets after TCP" "$(hook_counter "$S" OUTPUT filter packets)" 3
finish
