#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench` (in the VM): the cost of forwarding one packet through a router whose FORWARD
# path holds N rules that the packet does not match, for four backends side by side in the
# same boot: rust_nf (rnfctl as iptables), iptables-legacy, iptables-nft (the same rules file)
# and native nftables (a set / a verdict map, as an nftables user writes it).
#
# How: each backend has two client - router - server topologies: one whose router holds the
# N rules, one whose router holds the backend's empty configuration (its baseline). pktgen,
# in the client namespace, sends fixed-size UDP packets (60 bytes, one flow) through the
# router; the server drops them on arrival (an nftables prerouting chain at priority -500,
# before any rust_nf hook). pktgen transmits from a kernel thread and the softirq that
# forwards the packet runs in that thread's context right after each transmit, so the
# thread's run time (/proc/PID/sched) over its packet count is the path's cost per packet.
# The guest's speed swings by a factor of several from one second to the next (TCG, another
# VM on the host), so the baseline and the rules are measured side by side: both pktgen
# threads on CPU 0 at once, one sending without end, the other a count sized to ~0.5 s,
# each seeing the same slowdowns. The pair gives the ratio rules / baseline; the added cost
# reported is (ratio - 1) x the backend's median baseline over the run. Rounds repeat the
# pairs with the backends in rotated order; the median and the spread (min-max) over the
# rounds are reported, with ratios to iptables-legacy's and to nft's added cost. Every packet
# sent must reach its server (a shortfall is reported).
# Workloads (N from RNF_BENCH_NS, default 10 100 1000 10000 30000):
#   block: FORWARD holds N `-s 10.a.b.c/32 -j DROP` (none matches), policy ACCEPT;
#          nft: `ip saddr @block drop` with an ipv4_addr set of N elements.
#   kube:  FORWARD `-j KUBE-SERVICES`; KUBE-SERVICES holds N `-d 172.16.x.y/32 -p tcp -m comment
#          --comment "ns/svc-i:http" -m tcp --dport 80 -j KUBE-SVC` (one shared target chain
#          holding `-j ACCEPT`; RNF_BENCH_KUBE_CHAINS=1: a chain KUBE-SVC-i per service);
#          nft: `ip daddr . meta l4proto . th dport vmap @svc` (kube-proxy's nftables mode: the
#          lookup happens for the UDP traffic too, where `tcp dport` would skip it).
# Fixed cost (before any rules), with rust_nf unloaded: an empty iptables-legacy filter
# table, iptables-legacy with all its tables loaded (raw, mangle, nat, filter, security, all
# empty: the nat table makes the namespace track connections), an empty iptables-nft filter
# table, an empty nft base chain, each beside the bare router; then rust_nf loaded with an empty filter table, beside a calibration sender whose
# packets meet no netfilter hook (dropped in ip_rcv), compared with the bare router beside
# the same sender while rust_nf was unloaded. rust_nf's hooks run in every
# namespace while it is loaded, so every other measurement includes its fixed cost too (in
# both t(N) and the baseline: it cancels out of the added cost).
# Control plane, in the rules router at N: restore of the whole file (rnfctl iptables-restore,
# iptables-legacy-restore, iptables-nft-restore, nft -f), one -A and one -D (nft: add / delete
# one element), one chain rewritten by `restore --noflush` (nft: flush chain, add rule), -S of
# the table (nft: list ruleset); each timed around the command, process
# start included; the median over the rounds. Memory: the kernel memory (slab, vmalloc,
# per-CPU) that the N rules take, from the backend's empty configuration.
#
# Environment: RNF_BENCH_ROUNDS (3), RNF_BENCH_NS, RNF_BENCH_WORKLOADS ("block kube"),
# RNF_BENCH_FWD_SECS (target length of one pktgen run, default 0.5), RNF_BENCH_KUBE_CHAINS,
# RNF_BENCH_CTL_ONLY=1 (the control plane only: no fixed cost, no forwarding),
# RNF_BENCH_OUT (or RNF_OUT): folder for fwd-cost.md, fwd-cost.csv, fwd-cost-samples.csv,
# fwd-ctl.csv.
set -u
RNF_KO=${RNF_KO:?}
ROUNDS=${RNF_BENCH_ROUNDS:-3}
NLIST=${RNF_BENCH_NS:-10 100 1000 10000 30000}
WORKLOADS=${RNF_BENCH_WORKLOADS:-block kube}
SECS=${RNF_BENCH_FWD_SECS:-0.5}
KUBE_CHAINS=${RNF_BENCH_KUBE_CHAINS:-0}
OUT=${RNF_BENCH_OUT:-${RNF_OUT:-}}
export RNF_KO
. "$(dirname "$0")/../vm/lib.sh"
trap 'topo_down; rmmod rust_nf 2>/dev/null' EXIT
T_START=${EPOCHREALTIME/[.,]/}
# microseconds of one pktgen run
RUN_US=$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 1000000 }')
# packets of the first run of a configuration, which sizes the next ones
PROBE=100
WAIT=120
# a listing is stopped after CTL_CAP seconds; a control-plane command is timed again in
# every round only while it takes under CTL_REPEAT_MS
CTL_CAP=${RNF_BENCH_CTL_CAP:-30}
# Rounds of the packet measurements (none with RNF_BENCH_CTL_ONLY=1).
PKT_ROUNDS=$ROUNDS
[ "${RNF_BENCH_CTL_ONLY:-0}" = 1 ] && PKT_ROUNDS=0
CTL_REPEAT_MS=${RNF_BENCH_CTL_REPEAT_MS:-2000}

BACKENDS=(rnf leg inft nft)
declare -A NAME=([rnf]=rust_nf [leg]=iptables-legacy [inft]=iptables-nft [nft]=nft)
declare -A TC TR TS
say() { echo "[fwd-cost $(( (${EPOCHREALTIME/[.,]/} - T_START) / 1000000 ))s] $*"; }
elapsed_ms() { echo $(( (${EPOCHREALTIME/[.,]/} - $1) / 1000 )); }

grep -q '^rust_nf ' /proc/modules || insmod "$RNF_KO" || { echo "insmod failed"; exit 1; }

# pg_setup NS DST_MAC DST: pktgen in NS sends 60-byte UDP packets 10.0.1.2:9 -> DST:9 out of
# c0, one at a time from CPU 0's thread. The thread's pid (found by its work) goes to PGPID[NS].
declare -A PGPID PG_NS
pg_setup() {
	local pg=/proc/${ANCHOR[$1]}/net/pktgen kv
	{ echo rem_device_all >"$pg/kpktgend_0" && echo "add_device c0" >"$pg/kpktgend_0"; } ||
		{ echo "pktgen: cannot add c0 in $1"; return 1; }
	for kv in "clone_skb 0" "pkt_size 60" "delay 0" "dst $3" "src_min 10.0.1.2" \
		"src_max 10.0.1.2" "dst_mac $2" "udp_src_min 9" "udp_src_max 9" "udp_dst_min 9" \
		"udp_dst_max 9" "count $PROBE"; do
		echo "$kv" >"$pg/c0" || { echo "pktgen: '$kv' refused in $1"; return 1; }
	done
	# Every namespace has its own kpktgend_0; this one is the thread whose run time grows
	# while this namespace's pktgen sends.
	local -A before=()
	local f pid best= most=0 rt comm
	for f in /proc/[0-9]*/comm; do
		read -r comm <"$f" 2>/dev/null && [ "$comm" = kpktgend_0 ] || continue
		pid=${f#/proc/}
		pid=${pid%/comm}
		runtime "$pid" && before[$pid]=$RT
	done
	nsx "$1" sh -c 'echo start >/proc/net/pktgen/pgctrl' || return 1
	for pid in "${!before[@]}"; do
		runtime "$pid" || continue
		rt=$((RT - before[$pid]))
		[ $rt -gt $most ] && most=$rt best=$pid
	done
	[ -n "$best" ] || { echo "pktgen: no thread of $1 found"; return 1; }
	PGPID[$1]=$best
	# a first estimate of its ns per packet (sizes its first measured run)
	PG_NS[$1]=$((most / PROBE))
}
# runtime PID: the task's run time so far (ns, /proc/PID/sched) into RT.
runtime() {
	local k c v
	RT=
	while read -r k c v; do
		if [ "$k" = se.sum_exec_runtime ]; then
			v=${v/./}
			RT=$((10#$v))
			return 0
		fi
	done <"/proc/$1/sched"
	return 1
} 2>/dev/null

# The topologies: "$b" (rules) and "${b}0" (baseline) for each backend, client - router -
# server as in lib.sh; the server drops the packets before any of rust_nf's hooks.
# lall0: iptables-legacy with all its tables (fixed cost only).
for t in "${BACKENDS[@]}" "${BACKENDS[@]/%/0}" lall0; do
	C="$PFX-$t-c" R="$PFX-$t-r" S="$PFX-$t-s"
	TC[$t]=$C TR[$t]=$R TS[$t]=$S
	topo_up || { echo "topology $t failed"; exit 1; }
	printf '%s\n' 'table ip sink {' 'chain pre {' \
		'type filter hook prerouting priority -500; policy drop;' '}' '}' | nsx "$S" nft -f - ||
		{ echo "server sink ($t) failed"; exit 1; }
	mac=$(nsx "$R" ip -br link show r0 | awk '{ print $3 }')
	pg_setup "$C" "$mac" 10.0.2.2 || exit 1
done
# The calibration sender: its packets reach a veth whose namespace drops them in ip_rcv (not
# addressed to its MAC), before any netfilter hook, with or without rust_nf: the same work
# whatever the module does, a yardstick for the guest's speed.
TC[cal]="$PFX-cal-c"
ns_add "${TC[cal]}" && ns_add "$PFX-cal-p" &&
	ip link add c0 netns "${TC[cal]}" type veth peer name p0 netns "$PFX-cal-p" &&
	nsx "${TC[cal]}" ip link set c0 up && nsx "$PFX-cal-p" ip link set p0 up &&
	pg_setup "${TC[cal]}" 02:00:00:00:00:01 10.9.9.9 || { echo "calibration sender failed"; exit 1; }
say "10 topologies up"

# srx TOPO: packets the server's veth has received, into SRX (read by bash, no process).
srx() {
	local name bytes pkts rest
	SRX=0
	[ "$1" = cal ] && return 0
	while read -r name bytes pkts rest; do
		[ "$name" = s0: ] && { SRX=$pkts; return 0; }
	done <"/proc/${ANCHOR[${TS[$1]}]}/net/dev"
	return 1
}
_arrived() { srx "$1" && [ $((SRX - $2)) -ge "$3" ]; }
# sofar TOPO: packets its pktgen has sent in the current (or last) run, into SOFAR.
# PGRES = the first word of its result ("Starting" while it runs).
sofar() {
	local k v rest
	SOFAR= PGRES=
	while read -r k v rest; do
		case $k in
		pkts-sofar:) SOFAR=$v ;;
		Result:) PGRES=$v ;;
		esac
	done <"/proc/${ANCHOR[${TC[$1]}]}/net/pktgen/c0"
	[ -n "$SOFAR" ]
}
# (the count of the last run stays until the new run starts)
_sending() { sofar "$1" && [ "$PGRES" = Starting ] && [ "$SOFAR" -gt 0 ]; }
_sent() { sofar "$1" && [ "$SOFAR" -ge "$2" ]; }
# snap TOPO...: SF[TOPO] = packets sent, RTM[TOPO] = its thread's run time, for each.
declare -A SF RTM
snap() {
	local t
	for t in "$@"; do
		sofar "$t" && runtime "${PGPID[${TC[$t]}]}" || return 1
		SF[$t]=$SOFAR RTM[$t]=$RT
	done
}
pg_ctl() { nsx "${TC[$1]}" sh -c "echo $2 >/proc/net/pktgen/pgctrl"; }

# pair A B COUNT: A's pktgen sends without end while B's sends COUNT packets; both threads
# share CPU 0, so whatever slows the guest down meanwhile (another VM on the host) slows
# both. Per-packet cost of each: its thread's run time (softirqs included: the packet is
# forwarded in the sender's context) over the packets it sent between the moment B started
# and the moment B was done. Into NS_A, NS_B. Every packet must reach its server.
pair() {
	local a=$1 b=$2 n=$3 pa pb ra rb sa sb rta rtb
	srx "$a" && ra=$SRX && srx "$b" && rb=$SRX || return 1
	echo "count 0" >"/proc/${ANCHOR[${TC[$a]}]}/net/pktgen/c0" &&
		echo "count $n" >"/proc/${ANCHOR[${TC[$b]}]}/net/pktgen/c0" || return 1
	pg_ctl "$a" start &
	pa=$!
	if ! wait_until "$WAIT" _sending "$a"; then
		echo "  pktgen of $a did not start"
		pg_ctl "$a" stop
		wait "$pa"
		return 1
	fi
	pg_ctl "$b" start &
	pb=$!
	# (a run of B short enough to end between two looks fails the pair; measure then tries
	# four times the count)
	wait_until 20 _sending "$b" && snap "$a" "$b" && sa=${SF[$a]} sb=${SF[$b]} &&
		rta=${RTM[$a]} rtb=${RTM[$b]} && wait_until "$WAIT" _sent "$b" "$n" && snap "$a" "$b"
	local ok=$?
	pg_ctl "$a" stop
	[ $ok = 0 ] || pg_ctl "$b" stop
	wait "$pa" "$pb"
	[ $ok = 0 ] || { echo "  pair $a $b: no result"; return 1; }
	# Both must have sent a fair share (else they did not share the CPU).
	if [ $((SF[$a] - sa)) -lt 20 ] || [ $((SF[$b] - sb)) -lt 20 ]; then
		echo "  pair $a $b: too few packets side by side ($((SF[$a] - sa)), $((SF[$b] - sb)))"
		return 1
	fi
	NS_A=$(((RTM[$a] - rta) / (SF[$a] - sa)))
	NS_B=$(((RTM[$b] - rtb) / (SF[$b] - sb)))
	sofar "$a"
	for t in "$a $ra $SOFAR" "$b $rb $n"; do
		set -- $t
		[ "$1" = cal ] && continue
		wait_until 10 _arrived "$1" "$2" "$3" ||
			echo "  note: $1: $((SRX - $2)) of $3 packets reached the server"
	done
	return 0
}

# measure KEY A B: a pair with B's count sized to run about RUN_US (both share one CPU), by
# the last result of KEY (at first, B's estimate from its setup).
declare -A LAST
measure() {
	local key=$1 n
	[ -n "${LAST[$key]:-}" ] || LAST[$key]=${PG_NS[${TC[$3]}]}
	n=$((RUN_US * 500 / (LAST[$key] + 1)))
	[ $n -ge 100 ] || n=100
	[ $n -le 200000 ] || n=200000
	pair "$2" "$3" $n || pair "$2" "$3" $((n * 4)) || return 1
	LAST[$key]=$NS_B
}

# --- rule files -------------------------------------------------------------------------
F=$TMPD/rules
mkdir -p "$F"
ipt_head() { printf '%s\n' '*filter' ':INPUT ACCEPT [0:0]' ':FORWARD ACCEPT [0:0]' ':OUTPUT ACCEPT [0:0]'; }
ipt_empty() { ipt_head; echo COMMIT; }
nft_empty() {
	printf '%s\n' 'table ip filter' 'delete table ip filter' 'table ip filter {' \
		'chain forward { type filter hook forward priority filter; policy accept; }' '}'
}
# gen WORKLOAD N: writes $F/W.N.ipt and $F/W.N.nft
gen() {
	local w=$1 n=$2
	case $w in
	block)
		{
			ipt_head
			awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
				printf "-A FORWARD -s 10.%d.%d.%d/32 -j DROP\n", 100 + int(i / 62500), int(i / 250) % 250, i % 250 + 1 }'
			echo COMMIT
		} >"$F/$w.$n.ipt"
		{
			printf '%s\n' 'table ip filter' 'delete table ip filter' 'table ip filter {' \
				'set block { type ipv4_addr; elements = {'
			awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
				printf "10.%d.%d.%d%s\n", 100 + int(i / 62500), int(i / 250) % 250, i % 250 + 1, i < n - 1 ? "," : "" }'
			printf '%s\n' '} }' 'chain forward { type filter hook forward priority filter; policy accept;' \
				'ip saddr @block drop' '}' '}'
		} >"$F/$w.$n.nft"
		;;
	kube)
		{
			ipt_head
			echo ":KUBE-SERVICES - [0:0]"
			awk -v n="$n" -v per="$KUBE_CHAINS" 'BEGIN {
				if (per) for (i = 0; i < n; i++) printf ":KUBE-SVC-%d - [0:0]\n", i
				else print ":KUBE-SVC - [0:0]"
				print "-A FORWARD -j KUBE-SERVICES"
				for (i = 0; i < n; i++)
					printf "-A KUBE-SERVICES -d 172.%d.%d.%d/32 -p tcp -m comment --comment \"ns/svc-%d:http\" -m tcp --dport 80 -j KUBE-SVC%s\n",
						16 + int(i / 62500), int(i / 250) % 250, i % 250 + 1, i, per ? "-" i : ""
				if (per) for (i = 0; i < n; i++) printf "-A KUBE-SVC-%d -j ACCEPT\n", i
				else print "-A KUBE-SVC -j ACCEPT" }'
			echo COMMIT
		} >"$F/$w.$n.ipt"
		{
			printf '%s\n' 'table ip filter' 'delete table ip filter' 'table ip filter {'
			awk -v n="$n" -v per="$KUBE_CHAINS" 'BEGIN {
				if (per) for (i = 0; i < n; i++) printf "chain KUBE-SVC-%d { accept; }\n", i
				else print "chain KUBE-SVC { accept; }"
				print "map svc { type ipv4_addr . inet_proto . inet_service : verdict; elements = {"
				for (i = 0; i < n; i++)
					printf "172.%d.%d.%d . tcp . 80 : jump KUBE-SVC%s%s\n", 16 + int(i / 62500), int(i / 250) % 250,
						i % 250 + 1, per ? "-" i : "", i < n - 1 ? "," : ""
				print "} }"
				print "chain forward { type filter hook forward priority filter; policy accept;"
				print "ip daddr . meta l4proto . th dport vmap @svc"
				print "}" }'
			echo '}'
		} >"$F/$w.$n.nft"
		;;
	esac
}
ipt_empty >"$F/empty.ipt"
nft_empty >"$F/empty.nft"

# restore B TOPO FILE-STEM: the backend's whole-ruleset load.
restore() {
	case $1 in
	rnf) nsx "${TR[$2]}" "$RNF_BIN/iptables-restore" <"$3.ipt" ;;
	leg) nsx "${TR[$2]}" iptables-legacy-restore <"$3.ipt" ;;
	inft) nsx "${TR[$2]}" iptables-nft-restore <"$3.ipt" ;;
	nft) nsx "${TR[$2]}" nft -f "$3.nft" ;;
	esac
}
# ipt_tool B: the backend's iptables command.
ipt_tool() {
	case $1 in rnf) echo "$RNF_BIN/iptables" ;; leg) echo iptables-legacy ;; inft) echo iptables-nft ;; esac
}
# one_op B WORKLOAD append|delete|insert|replace|cleanup|noflush|list: one control-plane
# command in B's rules router. insert: the rule at the top of the big chain; replace: that
# rule by another (cleanup deletes it, untimed). noflush: one chain rewritten by a partial
# restore, as kube-proxy's partial syncs do (kube: its service chain KUBE-SVC; block: a small
# chain EXTRA beside FORWARD).
one_op() {
	local b=$1 w=$2 op=$3 r=${TR[$1]} tool spec spec2 el el2 chain
	chain=KUBE-SVC$([ "$KUBE_CHAINS" = 1 ] && echo -0)
	if [ "$w" = block ]; then
		spec=(FORWARD -s 10.255.255.1/32 -j DROP) el='block { 10.255.255.1 }'
		spec2=(FORWARD -s 10.255.255.2/32 -j DROP) el2='block { 10.255.255.2 }'
		chain=EXTRA
	else
		spec=(KUBE-SERVICES -d 172.31.255.1/32 -p tcp -m comment --comment "ns/new:http" -m tcp --dport 80 -j "$chain")
		spec2=(KUBE-SERVICES -d 172.31.255.2/32 -p tcp -m comment --comment "ns/new:http" -m tcp --dport 80 -j "$chain")
		el="svc { 172.31.255.1 . tcp . 80 : jump $chain }"
		el2="svc { 172.31.255.2 . tcp . 80 : jump $chain }"
	fi
	if [ "$b" = nft ]; then
		case $op in
		append | insert) nsx "$r" nft add element ip filter "$el" ;;
		delete) nsx "$r" nft delete element ip filter "$el" ;;
		replace) printf '%s\n' "delete element ip filter $el" "add element ip filter $el2" | nsx "$r" nft -f - ;;
		cleanup) nsx "$r" nft delete element ip filter "$el2" ;;
		noflush) printf '%s\n' "add chain ip filter $chain" "flush chain ip filter $chain" "add rule ip filter $chain accept" |
			nsx "$r" nft -f - ;;
		list) nsx "$r" timeout "${CAP:-0}" nft list ruleset >/dev/null ;;
		esac
	else
		tool=$(ipt_tool "$b")
		case $op in
		append) nsx "$r" "$tool" -A "${spec[@]}" ;;
		delete) nsx "$r" "$tool" -D "${spec[@]}" ;;
		insert) nsx "$r" "$tool" -I "${spec[0]}" 1 "${spec[@]:1}" ;;
		replace) nsx "$r" "$tool" -R "${spec[0]}" 1 "${spec2[@]:1}" ;;
		cleanup) nsx "$r" "$tool" -D "${spec[0]}" 1 ;;
		noflush) printf '%s\n' '*filter' ":$chain - [0:0]" "-A $chain -j ACCEPT" COMMIT | nsx "$r" "${tool}-restore" --noflush ;;
		list) nsx "$r" timeout "${CAP:-0}" "$tool" -S >/dev/null ;;
		esac
	fi
}

SAMPLES=$TMPD/samples.csv
echo "kind,workload,n,backend,round,ns_a,ns_b,," >"$SAMPLES"
CTL=$TMPD/ctl.csv
echo "workload,n,backend,op,round,ms" >"$CTL"
ERRORS=0
err() { echo "  ERROR: $*"; ERRORS=$((ERRORS + 1)); }

# rotated I: the backends starting at index I mod 4
rotated() { local i; for i in 0 1 2 3; do echo "${BACKENDS[$(( ($1 + i) % 4 ))]}"; done; }

# --- baselines: the backends' empty configurations --------------------------------------
load_baselines() {
	local b
	for b in "${BACKENDS[@]}"; do
		[ "$b" = rnf ] && ! rnf_loaded && continue
		restore "$b" "${b}0" "$F/empty" || err "$b: loading the empty configuration"
	done
	for t in raw mangle nat filter security; do
		nsx "${TR[lall0]}" iptables-legacy -t $t -S >/dev/null || err "legacy: loading table $t"
	done
}

# --- fixed cost ---------------------------------------------------------------------------
# With rust_nf unloaded: the bare router (rnf0 without its module) beside the calibration
# sender, then beside each empty backend (their difference directly). With rust_nf loaded:
# rnf0 (empty filter table) beside the calibration sender; its cost is scaled by the
# calibration sender's change between the two phases, so that a slower or faster guest
# in one phase does not count as rust_nf's.
say "fixed cost: $PKT_ROUNDS rounds"
load_baselines
for r in $(seq 1 "$PKT_ROUNDS"); do
	phases=(out in)
	[ $((r % 2)) = 0 ] && phases=(in out)
	cal_out= cal_in= none= rnf0=
	for ph in "${phases[@]}"; do
		if [ "$ph" = out ]; then
			rmmod rust_nf || { err "rmmod rust_nf"; continue; }
			if measure fixed-none cal rnf0; then
				cal_out=$NS_A none=$NS_B
				echo "abs,,,none,$r,$none,,," >>"$SAMPLES"
			else
				err "fixed: bare router"
			fi
			for b in $(rotated "$r" | grep -v rnf) lall; do
				measure "fixed-$b" rnf0 "${b}0" &&
					echo "fixed,,,$b,$r,$NS_A,$NS_B,," >>"$SAMPLES" || err "fixed $b"
			done
			rnf_loaded || insmod "$RNF_KO" || { echo "insmod failed"; exit 1; }
			restore rnf rnf0 "$F/empty" || err "rnf: empty filter table"
		else
			measure fixed-rnf cal rnf0 && cal_in=$NS_A rnf0=$NS_B || err "fixed rnf"
		fi
	done
	rnf_loaded || insmod "$RNF_KO" || { echo "insmod failed"; exit 1; }
	if [ -n "$cal_out" ] && [ -n "$cal_in" ] && [ -n "$none" ] && [ -n "$rnf0" ]; then
		echo "fixed,,,rnf,$r,$none,$((rnf0 * cal_out / cal_in)),," >>"$SAMPLES"
		echo "abs,,,cal-out,$r,$cal_out,,," >>"$SAMPLES"
		echo "abs,,,cal-in,$r,$cal_in,,," >>"$SAMPLES"
	fi
done

# --- rules ----------------------------------------------------------------------------------
# ctl_op B W N OP ROUND: one timed control-plane command; its time in CTL_MS ("" if it
# failed). A listing that outlasts CTL_CAP seconds is stopped and recorded as > CTL_CAP.
ctl_op() {
	local b=$1 w=$2 n=$3 op=$4 r=$5 t0 rc
	t0=${EPOCHREALTIME/[.,]/}
	case $op in
	restore) restore "$b" "$b" "$F/$w.$n" ;;
	list) CAP=$CTL_CAP one_op "$b" "$w" list ;;
	*) one_op "$b" "$w" "$op" ;;
	esac
	rc=$?
	CTL_MS=$(elapsed_ms "$t0")
	if [ "$op" = list ] && [ $rc = 124 ]; then
		CTL_MS=">$((CTL_CAP * 1000))"
	elif [ $rc != 0 ]; then
		err "$b: $op at $w N=$n failed"
		CTL_MS=
		return 1
	fi
	echo "$w,$n,$b,$op,$r,$CTL_MS" >>"$CTL"
	# rust_nf's own time for the change, from its status report (no process start, no
	# netlink round trip): op "k<op>", in ms.
	if [ "$b" = rnf ] && [ "$op" != list ]; then
		local us
		us=$(nsx "${TR[rnf]}" rnfctl status | grep '^table filter:' | grep -o 'last change: [0-9]*' | grep -o '[0-9]*$')
		[ -n "$us" ] && echo "$w,$n,$b,k$op,$r,$(awk -v u="$us" 'BEGIN { printf "%.1f", u / 1000 }')" >>"$CTL"
	fi
}

# kmem_kib: the kernel memory that rulesets take (slab, vmalloc, per-CPU; /proc/meminfo)
# into KMEM, in KiB, once it holds still (a backend may free the last ruleset after a grace
# period), with reclaimable caches dropped first.
kmem_kib() {
	local k v u prev= i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sync
		echo 2 >/proc/sys/vm/drop_caches
		KMEM=0
		while read -r k v u; do
			case $k in Slab: | VmallocUsed: | Percpu:) KMEM=$((KMEM + v)) ;; esac
		done </proc/meminfo
		[ -n "$prev" ] && [ $((KMEM - prev)) -lt 64 ] && [ $((prev - KMEM)) -lt 64 ] && return 0
		prev=$KMEM
		sleep 0.2
	done
}

for w in $WORKLOADS; do
	for n in $NLIST; do
		gen "$w" "$n"
		say "$w N=$n: loading, control plane"
		declare -A FIRST=()
		for b in "${BACKENDS[@]}"; do
			# The memory its N rules take: from its empty configuration to the N rules.
			restore "$b" "$b" "$F/empty" || err "$b: emptying before N=$n"
			kmem_kib
			k0=$KMEM
			ctl_op "$b" "$w" "$n" restore 1 || continue
			kmem_kib
			echo "$w,$n,$b,mem,1,$((KMEM - k0))" >>"$CTL"
			# (-R replaces the rule -I put at the top: only after it.)
			for op in append delete insert replace noflush list; do
				[ "$op" = replace ] && [ -z "${FIRST[$b-insert]:-}" ] && continue
				ctl_op "$b" "$w" "$n" "$op" 1 && FIRST[$b-$op]=$CTL_MS
				[ "$op" = replace ] && { one_op "$b" "$w" cleanup || err "$b: cleanup at $w N=$n"; }
			done
			FIRST[$b-restore]=ok
		done
		# Repeated (restore, -A, -D, -S again) while one takes under CTL_REPEAT_MS: a
		# 30000-rule restore is timed once.
		for r in $(seq 2 "$ROUNDS"); do
			for b in $(rotated "$r"); do
				[ -n "${FIRST[$b-restore]:-}" ] || continue
				inserted=
				for op in restore append delete insert replace noflush list; do
					v=$(grep "^$w,$n,$b,$op,1," "$CTL" | cut -d, -f6)
					case $v in '' | '>'*) continue ;; esac
					if [ "$op" = replace ]; then
						[ -n "$inserted" ] || continue
					else
						[ "$v" -lt "$CTL_REPEAT_MS" ] || continue
					fi
					ctl_op "$b" "$w" "$n" "$op" "$r" || break
					[ "$op" = insert ] && inserted=1
					[ "$op" = replace ] && { one_op "$b" "$w" cleanup || err "$b: cleanup at $w N=$n"; }
				done
			done
		done
		say "  rust_nf: $(nsx "${TR[rnf]}" rnfctl status | grep '^table filter:')"
		for r in $(seq 1 "$PKT_ROUNDS"); do
			say "$w N=$n round $r/$ROUNDS: forwarding"
			for b in $(rotated "$r"); do
				[ -n "${FIRST[$b-restore]:-}" ] || continue
				# sized by this backend's last result in this workload (the last N)
				measure "$w-$b" "${b}0" "$b" || { err "$b: forwarding at $w N=$n"; continue; }
				echo "dp,$w,$n,$b,$r,$NS_A,$NS_B,," >>"$SAMPLES"
			done
		done
	done
done
say "measurements done"

# --- report -------------------------------------------------------------------------------
kernel_note="$(uname -r), $(nproc) CPUs"
[ -e /proc/lockdep ] && kernel_note="$kernel_note, LOCKDEP on (a debug kernel: locking and RCU cost far more than in production)"
REPORT=$TMPD/fwd-cost.md
SUMMARY=$TMPD/fwd-cost.csv
CTLSUM=$TMPD/fwd-ctl.csv
awk -F, -v rounds="$ROUNDS" -v secs="$SECS" -v knote="$kernel_note" -v nlist="$NLIST" \
	-v wl="$WORKLOADS" -v chains="$KUBE_CHAINS" -v repeat_ms="$CTL_REPEAT_MS" -v summary="$SUMMARY" -v ctlsum="$CTLSUM" '
function median(s,    a, k, m, i, j, v) {
	k = split(s, a, " ")
	if (k == 0) return ""
	for (i = 2; i <= k; i++) { v = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
	m = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	return m
}
function mn(s,    a, k, i, v) { k = split(s, a, " "); v = a[1]; for (i = 2; i <= k; i++) if (a[i] < v) v = a[i]; return v }
function mx(s,    a, k, i, v) { k = split(s, a, " "); v = a[1]; for (i = 2; i <= k; i++) if (a[i] > v) v = a[i]; return v }
function cnt(s,    a) { return split(s, a, " ") }
# scaled(RATIOS, NS): the list of (ratio - 1) * NS
function scaled(s, f,    a, k, i, o) { k = split(s, a, " "); o = ""; for (i = 1; i <= k; i++) o = o " " sprintf("%d", (a[i] - 1) * f); return o }
function ratio(a, b) { return (b > 0 && a != "") ? sprintf("%.2f", a / b) : "n/a" }
BEGIN { nb = split("rnf leg inft nft", B, " ")
	name["rnf"] = "rust_nf"; name["leg"] = "iptables-legacy"; name["inft"] = "iptables-nft"; name["nft"] = "nft"
	name["none"] = "no module, no rules" }
FNR == 1 { file++; next }
file == 1 && $1 == "fixed" { fx[$4] = fx[$4] " " $7; frat[$4] = frat[$4] " " ($7 / $6) }
file == 1 && $1 == "abs" { ab[$4] = ab[$4] " " $6 }
file == 1 && $1 == "dp" { k = $2 SUBSEP $3 SUBSEP $4; rat[k] = rat[k] " " ($7 / $6); base[$4] = base[$4] " " $6 }
file == 2 { k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4; if ($6 ~ /^>/) capped[k] = $6; else ctl[k] = ctl[k] " " $6 }
END {
	print "# Forwarding cost per packet at N rules"
	print ""
	printf "VM: %s; TCG guest (no KVM). pktgen: 60-byte UDP packets of one flow, client -> router -> server over veth, the server drops them before any netfilter hook; %d rounds, backends in rotated order in every round.\n", knote, rounds
	print ""
	print "Method: two pktgen threads share one vCPU at the same time: one sends through the backend’s empty router (baseline), the other through the router with the N rules (~" secs " s). Each packet is forwarded in its sender’s context (softirq after each transmit), so a thread’s run time over its packet count is the cost of one packet through its path; running both at once exposes both to the same slowdowns of the guest (another VM on the host). The pair gives the ratio rules / baseline; the guest’s speed changes between pairs by a factor of several (other load on the host), so the added cost reported is (ratio - 1) x the backend’s median baseline over the whole run (for the fixed costs: x the bare router’s median). Median over the rounds, spread = min..max. Ratios: median / the median of iptables-legacy (of nft) at the same N; n/a when that median is not above 0."
	print ""
	print "## Fixed cost (no rules)"
	print ""
	print "ns per packet through the router with the backend present but empty, and the difference to the bare router (rust_nf unloaded, no rules) measured beside it; rust_nf’s row is scaled by the calibration sender (see above)."
	print ""
	print "| configuration | ns/packet (median) | min..max | added vs bare router (median, min..max) |"
	print "|---|---:|---:|---:|"
	nonem = median(ab["none"])
	for (c in frat) fa[c] = scaled(frat[c], nonem)
	if (ab["none"] != "") printf "| bare router: rust_nf unloaded, no rules | %d | %d..%d | - |\n", median(ab["none"]), mn(ab["none"]), mx(ab["none"])
	nf = split("rnf leg lall inft nft", F, " ")
	lab["rnf"] = "rust_nf loaded, empty filter table"
	lab["leg"] = "iptables-legacy, empty filter table (rust_nf unloaded)"
	lab["lall"] = "iptables-legacy, all its tables loaded and empty: raw, mangle, nat, filter, security (so conntrack too; rust_nf unloaded)"
	lab["inft"] = "iptables-nft, empty filter table (rust_nf unloaded)"
	lab["nft"] = "nft, empty forward base chain (rust_nf unloaded)"
	for (i = 1; i <= nf; i++) {
		c = F[i]
		if (fx[c] == "") { printf "| %s | failed | | |\n", lab[c]; continue }
		printf "| %s | %d | %d..%d | %+d (%d..%d) |\n", lab[c], median(fx[c]), mn(fx[c]), mx(fx[c]), median(fa[c]), mn(fa[c]), mx(fa[c])
	}
	if (ab["cal-out"] != "") printf "\nCalibration sender (packets dropped in ip_rcv, no netfilter hook): %d ns/packet with rust_nf unloaded, %d loaded (medians).\n", median(ab["cal-out"]), median(ab["cal-in"])
	print ""
	print "## Added cost of N non-matching rules"
	print ""
	print "| workload | N | backend | added ns/packet (median) | min..max | vs iptables-legacy | vs nft |"
	print "|---|---:|---|---:|---:|---:|---:|"
	print "workload,n,backend,added_ns_median,added_ns_min,added_ns_max,rounds,ratio_vs_legacy,ratio_vs_nft" > summary
	nw = split(wl, W, " "); nn = split(nlist, N, " ")
	for (k in rat) { split(k, kk, SUBSEP); add[k] = scaled(rat[k], median(base[kk[3]])) }
	for (i = 1; i <= nw; i++) for (j = 1; j <= nn; j++) {
		kl = W[i] SUBSEP N[j] SUBSEP "leg"; kn = W[i] SUBSEP N[j] SUBSEP "nft"
		ml = median(add[kl]); mnft = median(add[kn])
		for (b = 1; b <= nb; b++) {
			k = W[i] SUBSEP N[j] SUBSEP B[b]
			if (add[k] == "") { printf "| %s | %s | %s | failed | | | |\n", W[i], N[j], name[B[b]]; continue }
			m = median(add[k])
			printf "| %s | %s | %s | %d | %d..%d | %s | %s |\n", W[i], N[j], name[B[b]], m, mn(add[k]), mx(add[k]), ratio(m, ml), ratio(m, mnft)
			printf "%s,%s,%s,%d,%d,%d,%d,%s,%s\n", W[i], N[j], B[b] == "rnf" ? "rust_nf" : name[B[b]], m, mn(add[k]), mx(add[k]), cnt(add[k]), ratio(m, ml), ratio(m, mnft) > summary
		}
	}
	print ""
	print "Baselines (ns/packet with the empty configuration, all rounds): " \
		sprintf("rust_nf %d, iptables-legacy %d, iptables-nft %d, nft %d (medians).", median(base["rnf"]), median(base["leg"]), median(base["inft"]), median(base["nft"]))
	if (chains) print "kube: one KUBE-SVC-i chain per service." ; else print "kube: the N rules jump to one shared KUBE-SVC chain (`-j ACCEPT`), not to N chains."
	print ""
	print "## Control plane (ms, median over the rounds; process start included)"
	print ""
	print "restore: the whole file (rnfctl iptables-restore, iptables-legacy-restore, iptables-nft-restore, nft -f); -A / -D: one rule appended / deleted by spec (nft: one set or map element added / deleted); -I: one rule inserted at the top of the big chain; -R: that rule replaced by another (nft: an element added; one deleted and one added); --noflush one chain: a partial restore that rewrites one chain, as the partial syncs of kube-proxy (kube: KUBE-SVC; block: a chain EXTRA; nft: flush chain and add rule in one nft -f); -S: the table listed (nft: list ruleset). Each command is timed in every round while it takes under " repeat_ms " ms; (1): timed once; >X: a listing stopped after X ms."
	print ""
	print "Memory: the kernel memory the N rules take (Slab + VmallocUsed + Percpu of /proc/meminfo, reclaimable caches dropped), from the backend’s empty configuration to the N rules, in KiB; one sample, approximate (other kernel activity counts too)."
	print ""
	print "| workload | N | backend | restore | -A | -D | -I | -R | --noflush one chain | -S | memory (KiB) |"
	print "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	print "workload,n,backend,restore_ms,restore_samples,append_ms,append_samples,delete_ms,delete_samples,insert_ms,insert_samples,replace_ms,replace_samples,noflush_ms,noflush_samples,list_ms,list_samples,memory_kib,memory_samples" > ctlsum
	for (i = 1; i <= nw; i++) for (j = 1; j <= nn; j++) for (b = 1; b <= nb; b++) {
		k = W[i] SUBSEP N[j] SUBSEP B[b]
		printf "| %s | %s | %s", W[i], N[j], name[B[b]]
		line = W[i] "," N[j] "," name[B[b]]
		split("restore append delete insert replace noflush list mem", O, " ")
		for (o = 1; o <= 8; o++) {
			ko = k SUBSEP O[o]
			v = (ko in capped) ? capped[ko] : median(ctl[ko])
			c = (ko in capped) ? 1 : cnt(ctl[ko])
			printf " | %s%s", v == "" ? "-" : v, (c == 1 && rounds > 1 && O[o] != "mem") ? " (1)" : ""
			line = line "," v "," c
		}
		print " |"
		print line > ctlsum
	}
	print ""
	print "### rust_nf: the kernel’s time per change"
	print ""
	print "From the request’s start to the switch to the new version, as `rnfctl status` reports it (`last change`): no process start, no netlink round trip, no wait for readers (the replaced version is freed later). ms, median over the rounds."
	print ""
	print "| workload | N | restore | -A | -D | -I | -R | --noflush one chain |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= nw; i++) for (j = 1; j <= nn; j++) {
		k = W[i] SUBSEP N[j] SUBSEP "rnf"
		printf "| %s | %s", W[i], N[j]
		split("krestore kappend kdelete kinsert kreplace knoflush", O, " ")
		for (o = 1; o <= 6; o++) {
			v = median(ctl[k SUBSEP O[o]])
			printf " | %s", v == "" ? "-" : v
		}
		print " |"
	}
}' "$SAMPLES" "$CTL" >"$REPORT"
echo
cat "$REPORT"
if [ -n "$OUT" ]; then
	if cp "$REPORT" "$OUT/fwd-cost.md" && cp "$SUMMARY" "$OUT/fwd-cost.csv" &&
		cp "$SAMPLES" "$OUT/fwd-cost-samples.csv" && cp "$CTLSUM" "$OUT/fwd-ctl.csv"; then
		echo "(written to $OUT: fwd-cost.md, fwd-cost.csv, fwd-cost-samples.csv, fwd-ctl.csv)"
	else
		err "cannot write the results to $OUT"
	fi
fi
say "done, $ERRORS errors"
[ "$ERRORS" = 0 ]
