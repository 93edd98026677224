#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Helpers for rust_nf's in-VM tests (sourced). Each test builds its own namespaces, cleans up
# after itself, and exits 0 (pass), 1 (fail) or 4 (skip), like the kernel's selftests.
#
# Tests run side by side in one guest (see run.sh): a test touches only namespaces named from
# $PFX, keeps its files in $TMPD, and never sleeps for a fixed time: it waits for the event it
# needs (wait_until and the helpers built on it). Their time limits are a safety net only; in
# a good run no wait comes near one, however slow the machine.

set -u

RNF_KO=${RNF_KO:?RNF_KO must point at rust_nf.ko}
# The runner gives each test its own prefix (its namespaces are cleaned up by it afterwards).
PFX=${RNF_PFX:-rnf$$}
C="$PFX-client"
R="$PFX-router"
S="$PFX-server"
FAILED=0
# Safety-net limit (seconds) of every wait.
WAIT=30
# Safety net for a server to start (python on a TCG guest of a busy host has taken over 30 s):
# waits poll, so a longer limit costs nothing when the server is quick.
STARTUP_WAIT=120

# The test's private folder, removed on exit.
TMPD=$(mktemp -d /tmp/rnf-test.XXXXXX)
# Starting a process is slow in the guest (TCG on a busy host: 0.1-1 s), so the helpers start
# as few as they can: nsenter rather than `ip netns exec` (no mount namespace to set up),
# bash's own `read` rather than awk, `ip -batch`, and a nap that is a timed read on a FIFO
# rather than a `sleep` process.
mkfifo "$TMPD/nap"
exec {NAP_FD}<>"$TMPD/nap"
# iptables-legacy takes a lock that is global to the machine and gives up at once when another
# process holds it; each test's legacy tables live in namespaces of its own, so its own lock
# file is enough and tests running side by side do not trip over each other.
export XTABLES_LOCKFILE="$TMPD/xtables.lock"

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

# expect_fail WHAT STATUS MESSAGE CMD...: CMD fails with exit status STATUS and the first line
# of its output (stdout and stderr) is MESSAGE. The whole output is in OUT afterwards.
expect_fail() {
	local what=$1 want_rc=$2 want=$3 rc first
	shift 3
	OUT=$("$@" 2>&1)
	rc=$?
	first=${OUT%%$'\n'*}
	if [ "$rc" = "$want_rc" ] && [ "$first" = "$want" ]; then
		log "ok: $what: exit $rc, '$first'"
	else
		fail "$what: exit $rc, output '$OUT'; want exit $want_rc, '$want'"
	fi
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; 1 if it never did.
wait_until() {
	local end=$((${EPOCHREALTIME/[.,]/} + $1 * 1000000))
	shift
	until "$@"; do
		[ "${EPOCHREALTIME/[.,]/}" -lt "$end" ] || return 1
		read -r -t 0.05 -u "$NAP_FD" _ 2>/dev/null || :
	done
	return 0
}

# is_num VALUE: VALUE is a non-negative integer.
# ct_long_timeouts NS: both trackers in NS (rust_nf's and nf_conntrack's) keep UDP and ICMP
# flows for 300 s instead of 30: a test that lists flows and then counts or compares them must
# not see one expire in between on a slow run.
ct_long_timeouts() {
	local s
	for s in udp_timeout=300 udp_timeout_stream=300 icmp_timeout=300; do
		nsx "$1" rnfctl sysctl -w "nf_conntrack_$s" >/dev/null || { fail "rnfctl sysctl $s"; return 1; }
		nsx "$1" sysctl -qw "net.netfilter.nf_conntrack_$s" || { fail "sysctl $s"; return 1; }
	done
}

is_num() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# rnfctl under its iptables names (multi-call), in a private folder: scripts call `ipt`,
# `ipt_save`, `ipt_restore`; the kernel's own tools stay reachable as iptables-legacy*.
RNF_BIN=$TMPD/bin
mkdir "$RNF_BIN"
for n in iptables iptables-save iptables-restore; do ln -s "$(command -v rnfctl)" "$RNF_BIN/$n"; done
ipt() { "$RNF_BIN/iptables" "$@"; }
ipt_save() { "$RNF_BIN/iptables-save" "$@"; }
ipt_restore() { "$RNF_BIN/iptables-restore" "$@"; }

# both_tools NS_RNF NS_KERNEL RULE...: each RULE (words, as after `iptables`) in NS_RNF through
# rnfctl and in NS_KERNEL through iptables-legacy (see topo_pair).
both_tools() {
	local rns=$1 kns=$2 r
	shift 2
	for r in "$@"; do
		# shellcheck disable=SC2086 # a rule is words
		nsx "$rns" "$RNF_BIN/iptables" $r || fail "rnfctl: $r"
		# shellcheck disable=SC2086
		nsx "$kns" iptables-legacy $r || fail "iptables-legacy: $r"
	done
}

# same_listings NS_RNF NS_KERNEL LISTING...: each LISTING (iptables options, words) that rnfctl
# prints in NS_RNF is the one iptables-legacy prints in NS_KERNEL. With NO_POLICY_COUNTS=1 the
# chain headers are left out (their policy counters count traffic whose timing varies).
same_listings() {
	local rns=$1 kns=$2 how
	shift 2
	for how in "$@"; do
		# shellcheck disable=SC2086 # options are words
		nsx "$rns" "$RNF_BIN/iptables" $how 2>&1 | _policy_lines >"$TMPD/rnf.list"
		# shellcheck disable=SC2086
		nsx "$kns" iptables-legacy $how 2>&1 | _policy_lines >"$TMPD/kernel.list"
		if cmp -s "$TMPD/rnf.list" "$TMPD/kernel.list"; then
			log "ok: iptables $how is iptables-legacy's"
		else
			fail "iptables $how differs from iptables-legacy's:"
			diff -u "$TMPD/kernel.list" "$TMPD/rnf.list" | sed 's/^/        /'
		fi
	done
}
_policy_lines() { if [ "${NO_POLICY_COUNTS:-0}" = 1 ]; then grep -v "^Chain .*policy"; else cat; fi; }

# rule_counter NS TABLE CHAIN N FIELD: packets or bytes of rule N (iptables -L -v -x).
rule_counter() {
	local out num pkts bytes rest
	out=$(nsx "$1" "$RNF_BIN/iptables" -t "$2" -L "$3" -n -v -x --line-numbers) || { echo error; return; }
	while read -r num pkts bytes rest; do
		if [ "$num" = "$4" ]; then
			[ "$5" = packets ] && echo "$pkts" || echo "$bytes"
			return
		fi
	done <<<"$out"
	echo missing
}

# policy_counter NS TABLE CHAIN: packets counted by the chain's policy.
policy_counter() {
	local out a b c d pkts rest
	out=$(nsx "$1" "$RNF_BIN/iptables" -t "$2" -L "$3" -n -v -x) || { echo error; return; }
	read -r a b c d pkts rest <<<"$out"
	echo "$pkts"
}

# dropped_packets NS [TABLE [TOOL]]: packets dropped so far by the DROP rules and DROP
# policies of TABLE (filter), all chains, as TOOL (rnfctl's iptables) lists them; "error" if
# the table cannot be listed.
dropped_packets() {
	local out a b c d e rest n=0
	out=$(nsx "$1" "${3:-$RNF_BIN/iptables}" -t "${2:-filter}" -L -n -v -x) || { echo error; return; }
	while read -r a b c d e rest; do
		if [ "$a" = Chain ]; then
			[ "$c" = "(policy" ] && [ "$d" = DROP ] && n=$((n + e))
		elif [ "$c" = DROP ]; then
			n=$((n + a))
		fi
	done <<<"$out"
	echo "$n"
}

rnf_loaded() { grep -q '^rust_nf ' /proc/modules; }

# fault_injection_on: lets /proc/thread-self/fail-nth fail any allocation, sleeping ones and
# order-0 pages included, without stack dumps; skips the test on a kernel without it.
# fault_injection_off puts the defaults back (they only matter to tasks that set fail-nth).
FI=/sys/kernel/debug
fault_injection_on() {
	local f
	[ -e /proc/self/fail-nth ] || skip "kernel without CONFIG_FAULT_INJECTION"
	[ -d $FI/failslab ] || mount -t debugfs none $FI 2>/dev/null
	[ -d $FI/failslab ] || skip "no failslab in debugfs"
	for f in failslab fail_page_alloc; do
		echo N >$FI/$f/ignore-gfp-wait && echo 0 >$FI/$f/verbose || fail "configuring $f"
	done
	echo 0 >$FI/fail_page_alloc/min-order || fail "configuring fail_page_alloc"
}
fault_injection_off() {
	local f
	for f in failslab fail_page_alloc; do echo Y >$FI/$f/ignore-gfp-wait; done
}
# Loads the module unless it is (the runner loads it for the tests that run side by side).
rnf_load() { rnf_loaded || insmod "$RNF_KO" || rnf_loaded; }
rnf_unload() { if rnf_loaded; then rmmod rust_nf; fi; }

# nsx NS CMD...: CMD in network namespace NS (only the network namespace: every tool used
# here finds its netns through its sockets and /proc/self/net, /proc/sys/net).
nsx() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# Namespaces and background processes of this test, removed and stopped on exit.
NAMESPACES=()
BG_PIDS=()
# the process parked in each namespace (see _ns_start)
declare -A ANCHOR=()

# The process parked in each namespace sets it up (sysctls written by bash itself, IPv6 off
# so that no stray IPv6 packet shows up, the commands of an `ip -batch` file), says so with a
# file, then waits on the FIFO until the test ends. Started in the background, so several
# namespaces get ready at once. Its /proc/PID/net is the namespace's (see icmp_read).
# shellcheck disable=SC2016 # expanded by the parked shell
_NS_SETUP='
fd=$1 ready=$2 batch=$3
shift 3
for kv in "$@"; do echo "${kv#*=}" >"/proc/sys/${kv%%=*}" || exit 1; done
if [ -e /proc/sys/net/ipv6 ]; then echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 || exit 1; fi
ip -batch "$batch" || exit 1
: >"$ready"
read -r -u "$fd" _
'
# _ns_start NAME BATCH [SYSCTL=VALUE...]: starts setting up the namespace NAME (it must exist);
# BATCH: a file of `ip -batch` commands run in it; SYSCTL: a path under /proc/sys.
_ns_start() {
	local ns=$1 batch=$2
	shift 2
	bg "$ns" bash -c "$_NS_SETUP" parked "$NAP_FD" "$TMPD/ready.$ns" "$batch" "$@"
	ANCHOR[$ns]=$BG
	# It lives until the end: out of the job table, so that a bare `wait` (a script using
	# these helpers) does not wait for it.
	disown "$BG"
}
# _ns_ready NAME...: until the namespaces are set up; 1 if one of them failed.
_ns_ready() {
	local ns
	for ns in "$@"; do
		wait_until "$WAIT" _ns_is_ready "$ns" && [ -e "$TMPD/ready.$ns" ] || {
			fail "setting up netns $ns failed"
			return 1
		}
	done
}
_ns_is_ready() { [ -e "$TMPD/ready.$1" ] || ! kill -0 "${ANCHOR[$1]}" 2>/dev/null; }

# ns_add NAME: a new network namespace with lo up (and IPv6 off).
ns_add() {
	ip netns add "$1" || return 1
	NAMESPACES+=("$1")
	echo "link set lo up" >"$TMPD/$1.ip"
	_ns_start "$1" "$TMPD/$1.ip"
	_ns_ready "$1"
}

# bg NS CMD...: runs CMD in netns NS in the background (its own process, so signals reach
# it); its pid is in BG.
bg() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@" &
	BG=$!
	BG_PIDS+=("$BG")
}

# stop PID...: ends background processes and reaps them.
stop() {
	local p
	for p in "$@"; do kill "$p" 2>/dev/null || :; done
	for p in "$@"; do wait "$p" 2>/dev/null || :; done
	return 0
}

# A client - router - server topology:
#   client 10.0.1.2/24 -- 10.0.1.1 router 10.0.2.1 -- 10.0.2.2/24 server
# The interfaces are created inside the namespaces, so their names never meet another test's.
topo_up() {
	NAMESPACES+=("$C" "$R" "$S")
	ip -batch - <<-EOF || return 1
		netns add $C
		netns add $R
		netns add $S
		link add c0 netns $C type veth peer name r0 netns $R
		link add s0 netns $S type veth peer name r1 netns $R
	EOF
	printf '%s\n' "link set lo up" "addr add 10.0.1.2/24 dev c0" "link set c0 up" \
		"route add default via 10.0.1.1" >"$TMPD/c.ip"
	printf '%s\n' "link set lo up" "addr add 10.0.1.1/24 dev r0" "addr add 10.0.2.1/24 dev r1" \
		"link set r0 up" "link set r1 up" >"$TMPD/r.ip"
	printf '%s\n' "link set lo up" "addr add 10.0.2.2/24 dev s0" "link set s0 up" \
		"route add default via 10.0.2.1" >"$TMPD/s.ip"
	_ns_start "$C" "$TMPD/c.ip"
	_ns_start "$R" "$TMPD/r.ip" net/ipv4/ip_forward=1
	_ns_start "$S" "$TMPD/s.ip"
	_ns_ready "$C" "$R" "$S" || return 1
	# Resolve neighbours now so that later counts see only the test's traffic. The reply must
	# have arrived (a late one would land in a later count): ping ends when it does.
	nsx "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2 >/dev/null
}

# topo_pair: two identical topologies, one for rust_nf (RC, RR, RS) and one for the kernel's
# own netfilter (KC, KR, KS), so that the same traffic meets both; C, R, S name rust_nf's.
topo_pair() {
	RC=$C RR=$R RS=$S
	topo_up || return 1
	C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
	KC=$C KR=$R KS=$S
	topo_up || return 1
	C=$RC R=$RR S=$RS
}

# Stops the test's background processes and what else runs in its namespaces, deletes the
# namespaces and the private folder.
topo_down() {
	local ns p pids
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || :; done
	if [ ${#NAMESPACES[@]} -gt 0 ]; then
		pids=$(printf 'netns pids %s\n' "${NAMESPACES[@]}" | ip -force -batch - 2>/dev/null) || :
		# shellcheck disable=SC2086 # a list of numbers
		[ -z "$pids" ] || kill $pids 2>/dev/null || :
		printf 'netns del %s\n' "${NAMESPACES[@]}" | ip -force -batch - 2>/dev/null || :
	fi
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || :; done
	NAMESPACES=()
	BG_PIDS=()
	rm -rf "$TMPD"
	return 0
}
trap topo_down EXIT

# hook_counter NS POINT STAGE FIELD: a counter from `rnfctl status` (FIELD: packets|bytes).
hook_counter() {
	nsx "$1" rnfctl status | status_counter "$2" "$3" "$4"
}
# status_counter POINT STAGE FIELD < STATUS: the same from the output of `rnfctl status`
# read once (several counters of one moment, one process).
status_counter() {
	local col
	[ "$3" = packets ] && col=5 || col=6
	awk -v p="$1" -v s="$2" -v c="$col" \
		'$2 == p && $4 == s { print $c; found = 1 } END { if (!found) print "missing" }'
}

# sum of packets over all hooks at POINT in NS
point_packets() {
	nsx "$1" rnfctl status | awk -v p="$2" '$2 == p { n += $5 } END { print n + 0 }'
}

# icmp_read NS: the kernel's own ICMP and TCP counters of NS (/proc/net/snmp), independent of
# rust_nf and of its rules, into ICMP[InEchoReps], ICMP[OutEchos], ..., TCP[RetransSegs], ...
# Read by bash itself (no process started) from /proc/PID/net/snmp of the process parked in NS.
declare -A ICMP=() TCP=()
icmp_read() {
	local pid=${ANCHOR[$1]:-} line icmp=() tcp=() i
	ICMP=() TCP=()
	[ -n "$pid" ] && [ -e "$TMPD/ready.$1" ] || return 1
	while read -r -a line; do
		case ${line[0]:-} in
		Icmp:)
			if [ ${#icmp[@]} = 0 ]; then
				icmp=("${line[@]}")
			else
				for i in "${!icmp[@]}"; do ICMP[${icmp[$i]}]=${line[$i]}; done
			fi
			;;
		Tcp:)
			if [ ${#tcp[@]} = 0 ]; then
				tcp=("${line[@]}")
			else
				for i in "${!tcp[@]}"; do TCP[${tcp[$i]}]=${line[$i]}; done
			fi
			;;
		esac
	done <"/proc/$pid/net/snmp"
}
# icmp_stat NS FIELD: prints one of them.
icmp_stat() { icmp_read "$1"; echo "${ICMP[$2]:-missing}"; }

# pings N DROPS [PING OPTIONS...]: N echo requests from the client to the server; waits until
# each one is accounted for: either its reply reached the client (the client's InEchoReps) or
# a drop was counted by DROPS (a command line, evaluated, that prints a packet count; "echo 0"
# when nothing may drop). Sets REPLIES and DROPS to the differences over the pings. ping's own
# wait (-W) is long, and the test stops ping as soon as everything is accounted for, so no case
# waits for a reply that will not come and a slow reply is never taken for a lost one.
# DROPS0=N (in the environment of the call) gives the drop count before the pings when the
# caller knows it (fresh rules count 0), which saves reading it.
pings() {
	local n=$1 dcmd=$2 r0 o0 d0 pid
	shift 2
	REPLIES=- DROPS=-
	icmp_read "$C"
	r0=${ICMP[InEchoReps]:-} o0=${ICMP[OutEchos]:-}
	d0=${DROPS0:-$(eval "$dcmd")}
	if ! is_num "$r0" || ! is_num "$o0" || ! is_num "$d0"; then
		fail "pings: cannot read the counters (replies '$r0', requests '$o0', drops '$d0')"
		return 1
	fi
	nsenter --net="/run/netns/$C" ping -n -c "$n" -i 0.01 -W 600 "$@" 10.0.2.2 >"$TMPD/ping.out" 2>&1 &
	pid=$!
	# All sent first (cheap to watch), then all accounted for (a look at the drop counter).
	if ! wait_until "$WAIT" _pings_sent "$n" "$o0" ||
		! wait_until "$WAIT" _pings_accounted "$n" "$dcmd" "$r0" "$d0"; then
		fail "pings $*: after ${WAIT}s, $REPLIES replies + $DROPS drops of $n requests (sent: $((${ICMP[OutEchos]:-0} - o0)))"
		sed 's/^/        ping: /' "$TMPD/ping.out"
	fi
	stop "$pid"
	[ $((REPLIES + DROPS)) = "$n" ] 2>/dev/null ||
		fail "pings $*: $REPLIES replies + $DROPS drops, want $n in all"
}
_pings_sent() { icmp_read "$C" && [ $((${ICMP[OutEchos]:-0} - $2)) -ge "$1" ]; }
_pings_accounted() {
	local d
	d=$(eval "$2")
	icmp_read "$C"
	is_num "${ICMP[InEchoReps]:-}" && is_num "$d" || return 1
	REPLIES=$((${ICMP[InEchoReps]} - $3)) DROPS=$((d - $4))
	[ $((REPLIES + DROPS)) -ge "$1" ]
}

# match_case WANT_REPLIES "PING OPTIONS" RULE...: RULE in the router's FORWARD chain (it must
# DROP what it matches), then 4 echo requests from the client: WANT_REPLIES replies arrive and
# the rest is counted as dropped, every request accounted for. The case's rule replaces the
# last case's (one command, the new rule's counters start at 0), or, after a case with two
# rules, or with RULES=2 (a rule that iptables turns into two), the chain is flushed first.
MATCH_RULES=0
match_case() {
	local want=$1 popts=$2 out
	shift 2
	if [ $MATCH_RULES = 1 ] && [ "${RULES:-1}" = 1 ]; then
		out=$(nsx "$R" "$RNF_BIN/iptables" -R FORWARD 1 "$@" 2>&1)
	else
		nsx "$R" "$RNF_BIN/iptables" -F FORWARD || fail "-F FORWARD"
		out=$(nsx "$R" "$RNF_BIN/iptables" -A FORWARD "$@" 2>&1)
	fi || {
		fail "rule rejected: $*: $out"
		MATCH_RULES=0
		return
	}
	MATCH_RULES=${RULES:-1}
	# shellcheck disable=SC2086 # the options are words
	DROPS0=0 pings 4 "dropped_packets $R" $popts
	if [ "$REPLIES" = "$want" ] && [ "$DROPS" = $((4 - want)) ]; then
		log "ok: [$*] ping $popts: $REPLIES replies, $DROPS dropped"
	else
		fail "[$*] ping $popts: $REPLIES replies and $DROPS dropped, want $want and $((4 - want))"
	fi
}

# flood_start WHAT: pings from the client to the server until flood_end, every 10 ms; returns
# once the first reply is back, so that what follows happens under traffic.
flood_start() {
	FLOOD_OUT0=$(icmp_stat "$C" OutEchos)
	FLOOD_IN0=$(icmp_stat "$C" InEchoReps)
	bg "$C" ping -n -q -i 0.01 10.0.2.2 >/dev/null 2>&1
	FLOOD_PID=$BG
	wait_until "$WAIT" counter_reaches 1 flood_replies || fail "no reply before $1"
}
flood_replies() { echo $(($(icmp_stat "$C" InEchoReps) - FLOOD_IN0)); }
# flood_end WHAT: stops the flood (it must still be running) and checks that every request sent
# got its reply, however long the last ones take to come back; the count sent is in SENT.
flood_end() {
	kill -0 "$FLOOD_PID" 2>/dev/null || fail "ping ended before the end of $1"
	stop "$FLOOD_PID"
	SENT=$(($(icmp_stat "$C" OutEchos) - FLOOD_OUT0))
	wait_until "$WAIT" counter_reaches "$SENT" flood_replies
	log "$SENT echo requests sent during $1"
	expect_eq "replies to the $SENT requests" "$(flood_replies)" "$SENT"
	expect_ge "echo requests sent" "$SENT" 1
}

# counter_reaches MIN CMD...: CMD prints a number >= MIN (for wait_until).
counter_reaches() {
	local min=$1 v
	shift
	v=$("$@")
	is_num "$v" && [ "$v" -ge "$min" ]
}

# _bound NS PORT t|u: something listens on (TCP) or is bound to (UDP) PORT in NS.
_bound() { [ -n "$(nsx "$1" ss -Hln"$3" "sport = :$2" 2>/dev/null)" ]; }
# wait_tcp_listen NS PORT, wait_udp_bind NS PORT: until a server is ready for clients.
wait_tcp_listen() { wait_until "$STARTUP_WAIT" _bound "$1" "$2" t || { fail "nothing listens on TCP port $2 in $1"; return 1; }; }
wait_udp_bind() { wait_until "$STARTUP_WAIT" _bound "$1" "$2" u || { fail "nothing is bound to UDP port $2 in $1"; return 1; }; }

# tcp_server NS PORT TEXT [fork]: a server on PORT in NS that sends TEXT and a newline to each
# client and closes. It sends a file: no shell started per connection, so a slow start
# cannot race socat's close. Waits until it listens; its pid is in SRV.
tcp_server() {
	echo "$3" >"$TMPD/reply.$2"
	bg "$1" socat -U -T "$WAIT" "TCP-LISTEN:$2,reuseaddr${4:+,fork}" "OPEN:$TMPD/reply.$2,rdonly"
	SRV=$BG
	wait_tcp_listen "$1" "$2"
}

# _tcp_busy NS PORT: NS has a TCP socket on PORT that may still send (not listening, not in
# TIME-WAIT).
_tcp_busy() {
	[ -n "$(nsx "$1" ss -Htan exclude listening exclude time-wait "( sport = :$2 or dport = :$2 )" 2>/dev/null)" ]
}
# wait_tcp_done PORT NS...: until every connection on PORT in the namespaces has ended, so no
# segment of it is still under way (the last ACK has reached the side that waited for it).
wait_tcp_done() {
	local port=$1 ns
	shift
	for ns in "$@"; do
		wait_until "$WAIT" eval "! _tcp_busy '$ns' '$port'" ||
			fail "TCP connections on port $port in $ns did not end: $(nsx "$ns" ss -Htan "( sport = :$port or dport = :$port )")"
	done
}

# tcp_get NS HOST PORT: connects, sends nothing, reads until the server closes. Output (with
# socat's error message) in TCP_OUT, exit status in TCP_RC. The timeouts are safety nets: a
# client that got its answer ends when the server closes.
tcp_get() {
	TCP_OUT=$(nsx "$1" socat -T "$WAIT" -t "$WAIT" - "TCP:$2:$3" </dev/null 2>&1)
	TCP_RC=$?
}

# udp_ask NS HOST PORT: sends stdin as one datagram from NS and waits for the first reply
# (or socat's error, such as "Connection refused"), in UDP_OUT. The client's stdin stays open
# until the answer is in: socat gives a reply only half a second after its stdin ends, which a
# slow run can exceed.
udp_ask() {
	local out="$TMPD/udp_ask.out"
	: >"$out"
	{ cat; wait_until "$WAIT" test -s "$out"; } | nsx "$1" socat -T "$WAIT" - "UDP:$2:$3" >"$out" 2>&1
	UDP_OUT=$(<"$out")
}

# syn_dropped WHAT NS HOST PORT DROPS: a connection attempt from NS whose SYNs are dropped on
# the way (DROPS: a command line, evaluated, printing the drop count). It passes when DROPS
# counted the SYN and its retransmission (TCP sends that only when the first SYN got no answer
# at all: no RST, no ICMP error, no SYN-ACK) while the attempt is still waiting (SYN-SENT);
# then the attempt is abandoned, and every packet NS sent during it was a counted drop.
syn_dropped() {
	local what=$1 ns=$2 host=$3 port=$4 dcmd=$5 c0 d0 r0 pid state alive=yes sent dropped
	c0=$(hook_counter "$ns" OUTPUT filter packets)
	d0=$(eval "$dcmd")
	icmp_read "$ns"
	r0=${TCP[RetransSegs]:-0}
	nsenter --net="/run/netns/$ns" socat -T "$WAIT" - "TCP:$host:$port" </dev/null >"$TMPD/syn.out" 2>&1 &
	pid=$!
	# The kernel's count of retransmitted segments in NS (cheap to watch) tells when the SYN
	# has been sent again.
	wait_until "$WAIT" _retransmitted "$ns" "$r0"
	state=$(nsx "$ns" ss -Htn state syn-sent "( dport = :$port )")
	kill -0 "$pid" 2>/dev/null || alive=no
	stop "$pid"
	if [ -n "$state" ] && [ $alive = yes ]; then
		log "ok: $what: SYN retransmitted unanswered, still waiting"
	else
		fail "$what: want an unanswered attempt; client running: $alive, SYN-SENT socket: '$state', client output: '$(cat "$TMPD/syn.out")'"
	fi
	_syn_counts() {
		sent=$(($(hook_counter "$ns" OUTPUT filter packets) - c0))
		dropped=$(($(eval "$dcmd") - d0))
		[ "$sent" -ge 2 ] && [ "$sent" = "$dropped" ]
	}
	wait_until "$WAIT" _syn_counts
	expect_eq "$what: SYNs dropped, of the $sent packets the client sent" "$dropped" "$sent"
}

_retransmitted() { icmp_read "$1" && [ "${TCP[RetransSegs]:-0}" -gt "$2" ]; }

# file_is FILE LINE: FILE holds LINE (for wait_until).
file_is() { local l; IFS= read -r l <"$1" && [ "$l" = "$2" ]; } 2>/dev/null

finish() {
	exit "$FAILED"
}
