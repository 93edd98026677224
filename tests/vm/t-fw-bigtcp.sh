#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# BIG TCP: GSO packets over 64 KiB (IPv4 total length 0, as the kernel's big_tcp selftest
# makes them on veth) meet the rules and are counted like any other. A TCP transfer leaves a
# namespace whose OUTPUT has a counting rule in rust_nf and the same rule in iptables-legacy:
# both see the same packets and bytes, and the bytes per packet show packets over 64 KiB.
# cost: 30
. "$(dirname "$0")/lib.sh"
A="$PFX-a"
B="$PFX-b"
BLAST="$(dirname "$0")/data/tcpblast.py"

rnf_load || { fail "insmod"; finish; }
NAMESPACES+=("$A" "$B")
ip -batch - <<-EOF2 || { fail "namespaces"; finish; }
	netns add $A
	netns add $B
	link add a0 netns $A type veth peer name b0 netns $B
EOF2
printf '%s\n' "link set lo up" "addr add 10.0.8.1/24 dev a0" "link set a0 up" >"$TMPD/a.ip"
printf '%s\n' "link set lo up" "addr add 10.0.8.2/24 dev b0" "link set b0 up" >"$TMPD/b.ip"
# Segments as large as the device allows, however slow the machine (the size TCP aims for
# otherwise follows the pacing rate: about 1 ms of data).
_ns_start "$A" "$TMPD/a.ip" net/ipv4/tcp_min_tso_segs=90
_ns_start "$B" "$TMPD/b.ip"
_ns_ready "$A" "$B" || finish
# gso_ipv4_max_size / gro_ipv4_max_size 128000, as tools/testing/selftests/net/big_tcp.sh.
for p in "$A a0" "$B b0"; do
	set -- $p
	nsx "$1" /usr/bin/python3 "$(dirname "$0")/data/bigtcp.py" "$2" 128000 || fail "BIG TCP on $2"
done

nsx "$A" "$RNF_BIN/iptables" -A OUTPUT -p tcp --dport 5001 || fail "rust_nf rule"
nsx "$A" iptables-legacy -A OUTPUT -p tcp --dport 5001 || fail "iptables-legacy rule"
bg "$B" /usr/bin/python3 "$BLAST" recv 5001 >"$TMPD/got"
recv=$BG
wait_tcp_listen "$B" 5001 || finish
nsx "$A" /usr/bin/python3 "$BLAST" send 10.0.8.2 5001 32 || fail "sender"
wait "$recv"
expect_eq "bytes received" "$(<"$TMPD/got")" $((32 << 20))

rnf_p=$(rule_counter "$A" filter OUTPUT 1 packets)
rnf_b=$(rule_counter "$A" filter OUTPUT 1 bytes)
read -r leg_p leg_b < <(nsx "$A" iptables-legacy -L OUTPUT -n -v -x | { read -r; read -r; read -r p b _; echo "$p $b"; })
log "rust_nf: $rnf_p packets, $rnf_b bytes; iptables-legacy: $leg_p packets, $leg_b bytes"
expect_eq "packets: rust_nf as iptables-legacy" "$rnf_p" "$leg_p"
expect_eq "bytes: rust_nf as iptables-legacy" "$rnf_b" "$leg_b"
# 32 MiB in packets of at most 64 KiB would take at least 512 of them.
if is_num "$leg_p" && [ "$leg_p" -gt 0 ] && [ "$leg_p" -lt 512 ]; then
	log "ok: $leg_p packets for 32 MiB: GSO packets over 64 KiB were sent"
else
	skip "no packet over 64 KiB was made ($leg_p packets): nothing BIG TCP to check"
fi
finish
