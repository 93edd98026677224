#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# TCP flows through their states, rust_nf's tracker beside the kernel's nf_conntrack on the
# same router and the same packets: both list a connection ESTABLISHED [ASSURED], then
# TIME_WAIT after a FIN close, CLOSE after an RST, and both forget it after the (shortened)
# timeouts set with `rnfctl sysctl` and `sysctl`. The settings read as the kernel's do. A bare
# ACK is INVALID with nf_conntrack_tcp_loose=0 and picks a flow up with 1; segments far
# outside the window are INVALID; both trackers count the same.
# cost: 12
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
DATA=$(dirname "$0")/data

for t in "$RNF_BIN/iptables" iptables-legacy; do
	nsx "$R" "$t" -A FORWARD -m conntrack --ctstate INVALID || fail "$t INVALID rule"
	nsx "$R" "$t" -A FORWARD -m conntrack --ctstate NEW || fail "$t NEW rule"
done
rnf_count() { rule_counter "$R" filter FORWARD "$1" packets; }
k_count() { nsx "$R" iptables-legacy -L FORWARD -n -v -x | awk -v n=$(($1 + 2)) 'NR == n { print $1 }'; }

# The settings read as the kernel's (the table's size and the expectation limit apart, and
# accounting, which rust_nf always does).
bad=0
while read -r name _ value; do
	case $name in *_count | *_max | *_buckets | *_expect_max | *_acct) continue ;; esac
	k=$(nsx "$R" sysctl -n "$name" 2>&1)
	[ "$k" = "$value" ] || { log "$name: rnfctl $value, kernel $k"; bad=$((bad + 1)); }
done < <(nsx "$R" rnfctl sysctl)
expect_eq "settings that differ from the kernel's" "$bad" 0
expect_ge "settings listed" "$(nsx "$R" rnfctl sysctl | wc -l)" 20
expect_fail "unknown setting" 255 "sysctl: cannot stat /proc/sys/net/netfilter/nf_conntrack_nope: No such file or directory" \
	nsx "$R" rnfctl sysctl net.netfilter.nf_conntrack_nope
expect_fail "read-only setting" 255 'sysctl: permission denied on key "net.netfilter.nf_conntrack_count"' \
	nsx "$R" rnfctl sysctl nf_conntrack_count=5
expect_fail "out of range" 255 'sysctl: setting key "net.netfilter.nf_conntrack_tcp_loose": Invalid argument: value out of range' \
	nsx "$R" rnfctl sysctl nf_conntrack_tcp_loose=2
for s in tcp_timeout_time_wait=2 tcp_timeout_close=2; do
	got=$(nsx "$R" rnfctl sysctl -w "nf_conntrack_$s") || fail "rnfctl sysctl $s"
	expect_eq "rnfctl sysctl -w $s" "$got" "net.netfilter.nf_conntrack_${s/=/ = }"
	nsx "$R" sysctl -qw "net.netfilter.nf_conntrack_$s" || fail "sysctl $s"
done

# flows TOOL PORT: the tool's flow of client port PORT, timeout, counters and id set aside.
flows() {
	nsx "$R" "$1" -L -p tcp --sport "$2" 2>/dev/null |
		sed -E -e 's/^(\S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/packets=[0-9]+ bytes=[0-9]+ //g'
}
same_state() { # WHAT PORT STATE
	local r k
	r=$(flows "$RNF_BIN/conntrack" "$2")
	k=$(flows conntrack "$2")
	# A short-lived state (2 s timeouts) may be over by the time a loaded machine lists the
	# flows, also between the two listings: then both trackers must have reported it as an
	# event, and what is still listed must be in that state.
	if { [ -z "$r" ] || [ -z "$k" ]; } && [ "$3" != ESTABLISHED ] && { [ -z "$r$k" ] || [[ "$r$k" == *" $3 "* ]]; }; then
		if grep -q "\] tcp .* $3 .*sport=$2 " "$TMPD/ev.rnf.all" && grep -q "\] tcp .* $3 .*sport=$2 " "$TMPD/ev.k.all"; then
			log "ok: $1: both trackers went through $3 (events); at least one has let the flow go"
		else
			fail "$1: a tracker no longer lists the flow ('$r', '$k'), and not both reported $3"
		fi
		return
	fi
	case $r in *" $3 "*) ;; *)
		fail "$1: rust_nf's flow is not $3: '$r'; the kernel's: '$k'"
		return
		;;
	esac
	expect_eq "$1: rust_nf's flow = the kernel's" "$r" "$k"
}
gone() { [ -z "$(flows "$RNF_BIN/conntrack" "$1")" ] && [ -z "$(flows conntrack "$1")" ]; }

bg "$S" python3 "$DATA/tcplife.py" server 10.0.2.2 7100
wait_tcp_listen "$S" 7100
# conn PORT: a client from PORT, driven through the fifo; its output in $TMPD/c.PORT.
conn() {
	mkfifo "$TMPD/ctl.$1"
	# Opened read-write first: neither end waits for the other.
	exec {CTL}<>"$TMPD/ctl.$1"
	# Not through `bg`: a command started with & inside a function reads /dev/null.
	nsenter --net="/run/netns/$C" python3 "$DATA/tcplife.py" client 10.0.2.2 7100 "$1" <"$TMPD/ctl.$1" >"$TMPD/c.$1" 2>&1 &
	BG_PIDS+=("$!")
	wait_until "$WAIT" file_is "$TMPD/c.$1" open || fail "connection from $1 did not open: $(cat "$TMPD/c.$1")"
}
closed() { grep -q closed "$TMPD/c.$1"; }

# Events of both trackers (conntrack -E) while the first connection lives and is deleted.
nsenter --net="/run/netns/$R" "$RNF_BIN/conntrack" -E >"$TMPD/ev.rnf.all" 2>&1 &
BG_PIDS+=("$!")
nsenter --net="/run/netns/$R" stdbuf -oL conntrack -E >"$TMPD/ev.k.all" 2>&1 &
BG_PIDS+=("$!")
# Both listen once a probe flow (a datagram nobody answers) shows in both.
_listening() {
	echo probe | nsx "$C" socat -u - UDP:10.0.2.2:7999
	grep -q 'dport=7999' "$TMPD/ev.rnf.all" && grep -q 'dport=7999' "$TMPD/ev.k.all"
}
wait_until "$WAIT" _listening || fail "event listeners never heard the probe"
conn 41001
same_state "open" 41001 "ESTABLISHED"
case $(flows "$RNF_BIN/conntrack" 41001) in *"[ASSURED]"*) log "ok: open flow ASSURED" ;; *) fail "open flow not ASSURED" ;; esac
echo fin >&$CTL
exec {CTL}>&-
wait_until "$WAIT" closed 41001 || fail "FIN close did not finish"
wait_tcp_done 7100 "$C" "$S"
same_state "after FIN close" 41001 "TIME_WAIT"
wait_until 30 gone 41001 || fail "TIME_WAIT flow still listed after the 2 s timeout"
# Events: the first is NEW (SYN_SENT, unreplied), the same line for both trackers; both
# report the flow's end (rust_nf's collector sees a default-sized table within 8 s; the
# kernel evicts expired flows when listed).
evnorm() { sed -E -e 's/^( *\[[A-Z]+\] \S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/packets=[0-9]+ bytes=[0-9]+ //g' -e 's/ +$//'; }
_destroyed() {
	grep 'sport=41001 ' "$TMPD/ev.rnf.all" >"$TMPD/ev.rnf"
	grep 'sport=41001 ' "$TMPD/ev.k.all" >"$TMPD/ev.k"
	grep -q DESTROY "$TMPD/ev.rnf" && grep -q DESTROY "$TMPD/ev.k"
}
wait_until 30 _destroyed || fail "no DESTROY event: rust_nf '$(cat "$TMPD/ev.rnf")', kernel '$(cat "$TMPD/ev.k")'"
sed 's/^/    rnf event: /' "$TMPD/ev.rnf"
sed 's/^/    kernel event: /' "$TMPD/ev.k"
expect_eq "first event, rust_nf = kernel" "$(head -1 "$TMPD/ev.rnf" | evnorm)" "$(head -1 "$TMPD/ev.k" | evnorm)"
case $(head -1 "$TMPD/ev.rnf") in *"[NEW] tcp      6 "*" SYN_SENT src=10.0.1.2 dst=10.0.2.2 sport=41001 dport=7100 [UNREPLIED] "*) log "ok: NEW event" ;; *) fail "first event: $(head -1 "$TMPD/ev.rnf")" ;; esac
expect_eq "DESTROY event, rust_nf = kernel" "$(grep DESTROY "$TMPD/ev.rnf" | evnorm)" "$(grep DESTROY "$TMPD/ev.k" | evnorm)"
expect_eq "UPDATE events, rust_nf = kernel" "$(grep UPDATE "$TMPD/ev.rnf" | evnorm)" "$(grep UPDATE "$TMPD/ev.k" | evnorm)"

conn 41002
echo rst >&$CTL
exec {CTL}>&-
wait_until "$WAIT" closed 41002 || fail "RST close did not finish"
_closed_state() {
	[ -n "$(flows "$RNF_BIN/conntrack" 41002 | grep ' CLOSE ')" ] || grep -q "\] tcp .* CLOSE .*sport=41002 " "$TMPD/ev.rnf.all"
}
wait_until "$WAIT" _closed_state
same_state "after RST" 41002 "CLOSE"
wait_until 30 gone 41002 || fail "CLOSE flow still listed after the 2 s timeout"

# A bare ACK without a connection.
inv0=$(rnf_count 1) kinv0=$(k_count 1)
for t in "rnfctl sysctl" "sysctl -q"; do nsx "$R" $t net.netfilter.nf_conntrack_tcp_loose=0 >/dev/null || fail "$t loose=0"; done
nsx "$C" python3 "$DATA/tcpraw.py" 10.0.1.2 10.0.2.2 7100 A 40000 5000
wait_until "$WAIT" counter_reaches $((inv0 + 1)) rnf_count 1 || fail "loose=0: bare ACK not INVALID for rust_nf"
wait_until "$WAIT" counter_reaches $((kinv0 + 1)) k_count 1 || fail "loose=0: bare ACK not INVALID for nf_conntrack"
new0=$(rnf_count 2) knew0=$(k_count 2)
for t in "rnfctl sysctl" "sysctl -q"; do nsx "$R" $t net.netfilter.nf_conntrack_tcp_loose=1 >/dev/null || fail "$t loose=1"; done
nsx "$C" python3 "$DATA/tcpraw.py" 10.0.1.2 10.0.2.2 7100 A 40002 5000
wait_until "$WAIT" counter_reaches $((new0 + 1)) rnf_count 2 || fail "loose=1: bare ACK not NEW for rust_nf"
wait_until "$WAIT" counter_reaches $((knew0 + 1)) k_count 2 || fail "loose=1: bare ACK not NEW for nf_conntrack"
expect_eq "INVALID after the picked-up ACK: rust_nf = nf_conntrack" $(($(rnf_count 1) - inv0)) $(($(k_count 1) - kinv0))

# Out of the window of an open connection: of two sequence numbers 2^31 apart at least one is.
conn 41003
inv0=$(rnf_count 1) kinv0=$(k_count 1)
for seq in 12345 $((12345 + 2147483648)); do
	nsx "$C" python3 "$DATA/tcpraw.py" 10.0.1.2 10.0.2.2 7100 A 41003 "$seq"
done
# Each crafted segment passes the router (the rules only count) and reaches the server; the
# two counts are read once the kernel has counted its share.
_k_counted() { [ "$(k_count 1)" -gt "$kinv0" ]; }
wait_until "$WAIT" _k_counted || fail "nf_conntrack counted no out-of-window segment"
expect_ge "out-of-window segments INVALID (rust_nf)" $(($(rnf_count 1) - inv0)) 1
expect_eq "out-of-window INVALID: rust_nf = nf_conntrack" $(($(rnf_count 1) - inv0)) $(($(k_count 1) - kinv0))
same_state "after the crafted segments" 41003 "ESTABLISHED"
echo fin >&$CTL
exec {CTL}>&-
wait_until "$WAIT" closed 41003 || fail "connection 41003 did not close"
finish
