#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Helpers for rust_nf's in-VM tests (sourced). Each test builds its own namespaces, cleans up
# after itself, and exits 0 (pass), 1 (fail) or 4 (skip), like the kernel's selftests.

set -u

RNF_KO=${RNF_KO:?RNF_KO must point at rust_nf.ko}
# The runner gives each test its own prefix (its namespaces are cleaned up by it afterwards).
PFX=${RNF_PFX:-rnf$$}
C="$PFX-client"
R="$PFX-router"
S="$PFX-server"
FAILED=0

log() { echo "    $*"; }
fail() { echo "    FAIL: $*"; FAILED=1; }
skip() { echo "    SKIP: $*"; exit 4; }

# expect_eq WHAT GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		log "ok: $1 = $2"
	else
		fail "$1: got '$2', want '$3'"
	fi
}

# expect_ge WHAT GOT MIN
expect_ge() {
	if [ "$2" -ge "$3" ] 2>/dev/null; then
		log "ok: $1 = $2 (>= $3)"
	else
		fail "$1: got '$2', want >= $3"
	fi
}

# rnfctl under its iptables names (multi-call), in a private folder: scripts call `ipt`,
# `ipt_save`, `ipt_restore`; the kernel's own tools stay reachable as iptables-legacy*.
RNF_BIN=$(mktemp -d /tmp/rnfbin.XXXXXX)
for n in iptables iptables-save iptables-restore; do ln -s "$(command -v rnfctl)" "$RNF_BIN/$n"; done
ipt() { "$RNF_BIN/iptables" "$@"; }
ipt_save() { "$RNF_BIN/iptables-save" "$@"; }
ipt_restore() { "$RNF_BIN/iptables-restore" "$@"; }

# rule_counter NS TABLE CHAIN N FIELD: packets or bytes of rule N (iptables -L -v -x).
rule_counter() {
	local ns=$1 t=$2 chain=$3 n=$4 field=$5 col
	[ "$field" = packets ] && col=2 || col=3
	nsx "$ns" "$RNF_BIN/iptables" -t "$t" -L "$chain" -n -v -x --line-numbers |
		awk -v n="$n" -v c="$col" '$1 == n { print $c; found = 1 } END { if (!found) print "missing" }'
}

# policy_counter NS TABLE CHAIN: packets counted by the chain's policy.
policy_counter() {
	nsx "$1" "$RNF_BIN/iptables" -t "$2" -L "$3" -n -v -x | awk 'NR == 1 { print $5 }'
}

rnf_loaded() { grep -q '^rust_nf ' /proc/modules; }
rnf_load() { rnf_loaded || insmod "$RNF_KO"; }
rnf_unload() { if rnf_loaded; then rmmod rust_nf; fi; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# A client - router - server topology:
#   client 10.0.1.2/24 -- 10.0.1.1 router 10.0.2.1 -- 10.0.2.2/24 server
topo_up() {
	ip netns add "$C" && ip netns add "$R" && ip netns add "$S" || return 1
	ip link add c0 netns "$C" type veth peer name r0 netns "$R"
	ip link add s0 netns "$S" type veth peer name r1 netns "$R"
	for ns in "$C" "$R" "$S"; do
		nsx "$ns" ip link set lo up
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	done
	nsx "$C" ip addr add 10.0.1.2/24 dev c0
	nsx "$C" ip link set c0 up
	nsx "$C" ip route add default via 10.0.1.1
	nsx "$R" ip addr add 10.0.1.1/24 dev r0
	nsx "$R" ip addr add 10.0.2.1/24 dev r1
	nsx "$R" ip link set r0 up
	nsx "$R" ip link set r1 up
	nsx "$R" sysctl -qw net.ipv4.ip_forward=1
	nsx "$S" ip addr add 10.0.2.2/24 dev s0
	nsx "$S" ip link set s0 up
	nsx "$S" ip route add default via 10.0.2.1
	# Resolve neighbours now so that later counts see only the test's traffic.
	nsx "$C" ping -c1 -W2 10.0.2.2 >/dev/null
}

topo_down() {
	for ns in "$C" "$R" "$S"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$RNF_BIN"
	return 0
}

# hook_counter NS POINT STAGE FIELD: a counter from `rnfctl status` (FIELD: packets|bytes).
hook_counter() {
	local ns=$1 point=$2 stage=$3 field=$4 col
	[ "$field" = packets ] && col=5 || col=6
	nsx "$ns" rnfctl status | awk -v p="$point" -v s="$stage" -v c="$col" \
		'$2 == p && $4 == s { print $c; found = 1 } END { if (!found) print "missing" }'
}

# sum of packets over all hooks at POINT in NS
point_packets() {
	nsx "$1" rnfctl status | awk -v p="$2" '$2 == p { n += $5 } END { print n + 0 }'
}

finish() {
	topo_down
	exit "$FAILED"
}
