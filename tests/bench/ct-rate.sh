#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench` (in the VM): new connections per second through a router, with rust_nf's
# connection tracking and NAT and with the kernel's nf_conntrack and nf_nat, in the same VM
# run. The client sends COUNT UDP datagrams, each the first of a new flow
# (tests/bench/udpflood.c), through the router to a server that drops them; the router's
# FORWARD chain has one rule, `-m conntrack --ctstate NEW` (rnfctl, or iptables-legacy), which
# makes the tracker run. With DNAT, the datagrams go to the router's own address and a nat
# rule (`-j DNAT --to-destination` the server) sends them on.
# Reported: flows per second (datagrams the rule counted / the sender's time), the flows in
# the table afterwards, and the ratios rust_nf / kernel. Each configuration runs ROUNDS
# times, alternating; the median counts. A baseline with a stateless rule (no tracking at
# all) shows the cost of the path itself. rust_nf and the kernel each have their own
# router (two identical topologies), so neither tracker runs during the other's rounds.
set -u
RNF_KO=${RNF_KO:?}
FLOOD=${RNF_FLOOD:?}
COUNT=${RNF_BENCH_COUNT:-60000}
ROUNDS=${RNF_BENCH_ROUNDS:-3}
export RNF_KO
. "$(dirname "$0")/../vm/lib.sh"
trap 'topo_down; rmmod rust_nf 2>/dev/null' EXIT

# Room for every flow in both tables.
insmod "$RNF_KO" ct_max=$((COUNT + 1024)) || { echo "insmod failed"; exit 1; }
sysctl -qw net.netfilter.nf_conntrack_max=$((COUNT + 1024))
RC=$C RR=$R RS=$S
topo_up || { echo "topology failed"; exit 1; }
C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
KC=$C KR=$R KS=$S
topo_up || { echo "kernel's topology failed"; exit 1; }
for s in "$RS" "$KS"; do nsx "$s" iptables-legacy -A INPUT -p udp --dport 9 -j DROP; done
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"

# run CLIENT ROUTER TOOL DST RULE...: one measurement; prints "flows/s counted".
run() {
	local c=$1 r=$2 tool=$3 dst=$4 secs pkts
	shift 4
	nsx "$r" "$tool" -F FORWARD
	nsx "$r" "$tool" -A FORWARD "$@" || return 1
	secs=$(nsx "$c" "$FLOOD" 10.0.1.2 "$dst" 9 "$COUNT") || return 1
	pkts=$(nsx "$r" "$tool" -L FORWARD -n -v -x | awk 'NR == 3 { print $1 }')
	nsx "$r" "$tool" -F FORWARD
	echo "$(awk -v p="$pkts" -v s="$secs" 'BEGIN { printf "%d", p / s }') $pkts"
}
flush_tables() {
	nsx "$RR" "$RNF_BIN/conntrack" -F >/dev/null 2>&1
	nsx "$KR" conntrack -F >/dev/null 2>&1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
dnat() { nsx "$1" "$2" -t nat "$3" PREROUTING -i r0 -p udp --dport 9 -j DNAT --to-destination 10.0.2.2; }

declare -A M
for i in $(seq 1 "$ROUNDS"); do
	flush_tables
	M[base]+="$(run "$KC" "$KR" iptables-legacy 10.0.2.2 -p udp | cut -d' ' -f1)"$'\n'
	flush_tables
	out=$(run "$RC" "$RR" "$RNF_BIN/iptables" 10.0.2.2 -m conntrack --ctstate NEW)
	M[rnf]+="${out%% *}"$'\n'
	rnf_flows=$(nsx "$RR" "$RNF_BIN/conntrack" -C 2>/dev/null)
	flush_tables
	out=$(run "$KC" "$KR" iptables-legacy 10.0.2.2 -m conntrack --ctstate NEW)
	M[kernel]+="${out%% *}"$'\n'
	k_flows=$(nsx "$KR" conntrack -C 2>/dev/null)
	flush_tables
	dnat "$RR" "$RNF_BIN/iptables" -A
	out=$(run "$RC" "$RR" "$RNF_BIN/iptables" 10.0.1.1 -m conntrack --ctstate NEW)
	M[rnf_dnat]+="${out%% *}"$'\n'
	rnf_dnat=$(nsx "$RR" "$RNF_BIN/conntrack" -L --dst-nat 2>/dev/null | grep -c .)
	dnat "$RR" "$RNF_BIN/iptables" -D
	flush_tables
	dnat "$KR" iptables-legacy -A
	out=$(run "$KC" "$KR" iptables-legacy 10.0.1.1 -m conntrack --ctstate NEW)
	M[k_dnat]+="${out%% *}"$'\n'
	k_dnat=$(nsx "$KR" conntrack -L --dst-nat 2>/dev/null | grep -c .)
	dnat "$KR" iptables-legacy -D
	echo "round $i: flows in rust_nf's table $rnf_flows, in nf_conntrack's $k_flows;" \
		"DNATed: rust_nf $rnf_dnat, nf_nat $k_dnat (of $COUNT sent)"
done
med() { printf '%s' "${M[$1]}" | median; }
base=$(med base) rnf=$(med rnf) kern=$(med kernel) rdnat=$(med rnf_dnat) kdnat=$(med k_dnat)
echo
echo "new flows per second through the router (median of $ROUNDS, $COUNT flows each):"
printf '  %-40s %10s\n' "stateless rule, no tracking" "$base" "rust_nf conntrack" "$rnf" \
	"nf_conntrack (iptables-legacy)" "$kern" "rust_nf conntrack + DNAT" "$rdnat" \
	"nf_conntrack + nf_nat (iptables-legacy)" "$kdnat"
awk -v r="$rnf" -v k="$kern" 'BEGIN { printf "  ratio rust_nf / nf_conntrack: %.2f\n", r / k }'
awk -v r="$rdnat" -v k="$kdnat" 'BEGIN { printf "  ratio with DNAT, rust_nf / nf_conntrack + nf_nat: %.2f\n", r / k }'
echo "  entry size: $(nsx "$RR" "$RNF_BIN/conntrack" -S 2>/dev/null | grep -o 'entry_size=[0-9]*' | head -1)"
