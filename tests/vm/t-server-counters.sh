#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Traffic to the server moves its PREROUTING and INPUT counters; its answers move OUTPUT and
# POSTROUTING; nothing is forwarded there.
# cost: 9
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
nsx "$S" rnfctl zero || fail "zero"
N=7
# Once the N replies are in, the server has counted every request and reply.
pings $N "echo 0"
expect_eq "replies from the server" "$REPLIES" $N
st=$(nsx "$S" rnfctl status)
for ps in "PREROUTING raw" "PREROUTING nat" "INPUT filter" "INPUT confirm" \
	"OUTPUT raw" "OUTPUT filter" "POSTROUTING nat" "POSTROUTING confirm"; do
	set -- $ps
	expect_eq "server $1/$2 packets" "$(status_counter "$1" "$2" packets <<<"$st")" "$N"
	expect_eq "server $1/$2 bytes" "$(status_counter "$1" "$2" bytes <<<"$st")" "$((N * 84))"
done
expect_eq "server FORWARD packets" "$(point_packets "$S" FORWARD)" 0

# A TCP exchange counts too: one connection, a few segments each way.
tcp_server "$S" 8080 hello
srv=$SRV
nsx "$S" rnfctl zero || fail "zero"
tcp_get "$C" 10.0.2.2 8080
expect_eq "TCP reply (exit $TCP_RC)" "$TCP_OUT" "hello"
stop "$srv"
wait_tcp_done 8080 "$C" "$S"
expect_ge "server INPUT/filter packets after TCP" "$(hook_counter "$S" INPUT filter packets)" 4
expect_ge "server OUTPUT/filter packets after TCP" "$(hook_counter "$S" OUTPUT filter packets)" 3
expect_eq "server FORWARD packets after TCP" "$(point_packets "$S" FORWARD)" 0
finish
