#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# rust_nf loads and unloads cleanly ten times while traffic flows through a router and into
# the server; traffic keeps flowing; every load registers the hooks again.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

topo_up || { fail "topology"; finish; }
nsx "$C" ping -q -i 0.01 -c 1500 -W 2 10.0.2.2 > /tmp/$PFX-ping.txt 2>&1 &
ping_pid=$!
for i in $(seq 1 10); do
	insmod "$RNF_KO" || fail "insmod #$i"
	sleep 0.3
	n=$(nft list hooks ip 2>/dev/null | grep -c 'rust_nf')
	[ "$n" -ge 21 ] || fail "load #$i: $n rust_nf hooks listed, want >= 21"
	rmmod rust_nf || fail "rmmod #$i"
	sleep 0.1
done
rnf_loaded && fail "module still loaded"
expect_eq "rust_nf hooks after the last unload" "$(nft list hooks ip 2>/dev/null | grep -c rust_nf)" 0
nsx "$C" ping -c3 -i0.2 -W2 10.0.2.2 >/dev/null || fail "no connectivity after the cycles"
# ping ends by itself after its count; loading and unloading must not cost a packet.
wait "$ping_pid" 2>/dev/null
log "$(grep -E 'packets transmitted' /tmp/$PFX-ping.txt)"
expect_eq "echo requests lost during the cycles" "$(awk '/packets transmitted/ { print $1 - $4 }' /tmp/$PFX-ping.txt)" 0
rm -f /tmp/$PFX-ping.txt
finish
