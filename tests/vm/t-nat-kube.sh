#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kube-proxy's iptables mode on rust_nf: a dump in the exact shape kube-proxy writes
# (tests/vm/data/kube-gen.py: 120 ClusterIP services with 3 endpoints each, 20 NodePorts, one
# ClientIP session-affinity service; KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-*, KUBE-EXT-*,
# KUBE-NODEPORTS, KUBE-MARK-MASQ, KUBE-POSTROUTING with MARK and MASQUERADE --random-fully,
# -m statistic, -m comment, -m addrtype, -m recent) loaded unchanged with `iptables-restore`
# (rnfctl under that name) on the router, which plays the node; the client plays a pod
# (10.0.1.0/24 is the pod CIDR) and an outside host; the endpoints are addresses of the
# server. The same dump and checks with iptables-legacy + nf_nat in a second topology.
# - every service answers through its ClusterIP and every NodePort through the node, from
#   one of its own endpoints; NodePort traffic is masqueraded, pod traffic is not;
# - 300 new connections to one service spread over its 3 endpoints as the probabilities
#   1/3, 1/2, 1 imply (each gets 60-140, about 100);
# - the affinity service sends every connection of a client to the same endpoint;
# - an `iptables-restore --noflush` partial update (one endpoint of a service replaced by a
#   new address, as kube-proxy's partial sync writes it, with its flags `-w 5 -W 100000
#   --noflush --counters`; rust_nf's reads no table) moves traffic to the new endpoint;
#   the other services keep answering.
# cost: 25
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
DATA=$(dirname "$0")/data

RC=$C RR=$R RS=$S
topo_up || { fail "topology"; finish; }
C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
KC=$C KR=$R KS=$S
topo_up || { fail "kernel's topology"; finish; }

EPS=$(seq -s, -f "10.0.2.%g" 10 21)
gen() { python3 "$DATA/kube-gen.py" --services 120 --endpoints 3 --endpoint-ips "$EPS" --pod-cidr 10.0.1.0/24 \
	--nodeports 20 --affinity 1 "$@"; }
gen >"$TMPD/dump" || fail "kube-gen"
gen --noflush-update 5 --update-action replace >"$TMPD/update" || fail "kube-gen update"
log "dump: $(grep -c '^-A' "$TMPD/dump") rules, $(grep -c '^:' "$TMPD/dump") chains"

for ns in "$RS" "$KS"; do
	for a in ${EPS//,/ }; do nsx "$ns" ip addr add "$a/24" dev s0 || fail "endpoint address $a"; done
	nsenter --net="/run/netns/$ns" python3 "$DATA/kubecheck.py" server 80 >"$TMPD/srv.$ns" 2>&1 &
	BG_PIDS+=("$!")
	wait_until "$STARTUP_WAIT" file_is "$TMPD/srv.$ns" ready || fail "endpoint server: $(cat "$TMPD/srv.$ns")"
done

nsx "$RR" "$RNF_BIN/iptables-restore" <"$TMPD/dump" || fail "rust_nf: iptables-restore of the dump"
nsx "$KR" iptables-legacy-restore <"$TMPD/dump" || fail "iptables-legacy-restore of the dump"
# What both hold, as iptables-save prints it.
nsx "$RR" "$RNF_BIN/iptables-save" | grep '^[-:]' | sed 's/\[[0-9]*:[0-9]*\]//' >"$TMPD/save.rnf"
nsx "$KR" iptables-legacy-save | grep '^[-:]' | sed 's/\[[0-9]*:[0-9]*\]//' >"$TMPD/save.k"
expect_eq "iptables-save after the restore, rust_nf = iptables-legacy" "$(diff "$TMPD/save.k" "$TMPD/save.rnf" | head -5)" ""

check() { # SIDE CLIENT NODE-ADDRESS
	local side=$1 c=$2 out
	out=$(nsx "$c" python3 "$DATA/kubecheck.py" all "$TMPD/${4:-dump}" 10.0.1.1 2>&1)
	expect_eq "$side: every ClusterIP and NodePort answers from its endpoints${4:+ after the update}" "$out" "checked 140"
}
spread() { # SIDE CLIENT IDX N: fails unless each endpoint got 60-140 of 300
	local side=$1 out e n
	out=$(nsx "$2" python3 "$DATA/kubecheck.py" spread "$TMPD/dump" "$3" "$4" 2>&1)
	log "$side: service $3 over 300 connections: $(echo $out)"
	while read -r e n; do
		case $e in peer) expect_eq "$side: pods are not masqueraded" "$n" 10.0.1.2 ;; *)
			[ "$n" -ge 60 ] && [ "$n" -le 140 ] || fail "$side: endpoint $e got $n of 300" ;;
		esac
	done <<<"$out"
}

for side in rnf k; do
	if [ $side = rnf ]; then c=$RC r=$RR; else c=$KC r=$KR; fi
	check $side "$c"
	spread $side "$c" 2 300
	# Session affinity (service 0): one endpoint for all connections of the client.
	out=$(nsx "$c" python3 "$DATA/kubecheck.py" spread "$TMPD/dump" 0 20 2>&1)
	expect_eq "$side: affinity service, endpoints used by one client" "$(grep -v '^peer' <<<"$out" | awk '$2 > 0' | wc -l)" 1
	# NodePort from outside the pod network is masqueraded: the endpoint sees the node.
	got=$(nsx "$c" python3 "$DATA/kubecheck.py" nodeport "$TMPD/dump" 3 10.0.1.1 2>&1)
	case $got in *" 10.0.2.1") log "ok: $side: NodePort masqueraded ($got)" ;; *) fail "$side: NodePort answer '$got'" ;; esac
done

# kube-proxy's partial sync: one service loses an endpoint.
# With kube-proxy's own flags; rust_nf's reads nothing (CMD_GET_TABLE = 3) and warns as
# iptables-legacy does about -W.
flags=(-w 5 -W 100000 --noflush --counters)
trace=$(RNFCTL_TRACE=1 nsx "$RR" "$RNF_BIN/iptables-restore" "${flags[@]}" <"$TMPD/update" 2>&1) ||
	fail "rust_nf: iptables-restore ${flags[*]}: $trace"
case $trace in *"dump cmd=3 "*) fail "rust_nf: the partial sync read a table first: $trace" ;; esac
warn=$(nsx "$KR" iptables-legacy-restore "${flags[@]}" <"$TMPD/update" 2>&1) || fail "iptables-legacy-restore ${flags[*]}"
expect_eq "the -W warning, as iptables-legacy's" "$(grep -v '^rnfctl: ' <<<"$trace")" "$warn"
nsx "$RR" "$RNF_BIN/iptables-save" | grep '^[-:]' | sed 's/\[[0-9]*:[0-9]*\]//' >"$TMPD/save.rnf"
nsx "$KR" iptables-legacy-save | grep '^[-:]' | sed 's/\[[0-9]*:[0-9]*\]//' >"$TMPD/save.k"
expect_eq "iptables-save after the update, rust_nf = iptables-legacy" "$(diff "$TMPD/save.k" "$TMPD/save.rnf" | head -5)" ""
# The dump as it now stands, for the checker (the update's service with two endpoints).
sed 's/\[[0-9]*:[0-9]*\]//' "$TMPD/save.rnf" >"$TMPD/after"
for side in rnf k; do
	if [ $side = rnf ]; then c=$RC; else c=$KC; fi
	check $side "$c" - after
	# Service 5 had its last endpoint replaced by a new address: traffic moves there.
	out=$(nsx "$c" python3 "$DATA/kubecheck.py" spread "$TMPD/after" 5 60 2>&1)
	log "$side: service 5 after the update: $(echo $out)"
	expect_eq "$side: the updated service's endpoints that answer" "$(grep -v '^peer' <<<"$out" | awk '$2 > 0' | wc -l)" 3
	eps() { grep -E -- '--comment "?ns6/svc6:p80"? ' "$1" | sed -n 's/.*--to-destination \([0-9.]*\):.*/\1/p' | sort -u; }
	new=$(comm -13 <(eps "$TMPD/dump") <(eps "$TMPD/after"))
	[ -n "$new" ] && grep -q "^$new [1-9]" <<<"$out" || fail "$side: the new endpoint '$new' got no connections: $out"
done
finish
