#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `-j CT --zone`, `--zone-orig` and `--ctevents`, rust_nf beside the kernel's nf_conntrack on
# the same router and the same packets (each tool has the same raw rules):
# - zones are separate tuple spaces: a flow whose replies are put in another zone than its
#   original direction never sees them (it stays UNREPLIED and the replies start a flow of
#   their own in the default zone), one whose replies share its zone is answered; `zone=5`,
#   `zone-orig=7` in `conntrack -L` and the `--zone`/`--orig-zone` filters;
# - `--ctevents` limits the events a flow reports (`conntrack -E`).
# The listings and event lines of both trackers must agree (timeouts and ids aside).
# cost: 8
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ct_long_timeouts "$R"
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"

# The kernel gives a CT template its event mask only if events are on when the rule is added
# (with the default 2, "when someone listens", a rule added before any listener gets none).
nsx "$R" sysctl -qw net.netfilter.nf_conntrack_events=1 || fail "nf_conntrack_events"
for t in "$RNF_BIN/iptables" iptables-legacy; do
	# Only a packet's first CT target counts (xt_CT): the specific rules come first. Flows from
	# the client side in zone 5, port 7003's with its original direction in zone 7 only, those
	# of 7004 and 7005 reporting only some events. Replies of ports 7001, 7004, 7005 in zone
	# 5 too; those of 7002 and 7003 stay in the default zone.
	nsx "$R" "$t" -t raw -A PREROUTING -i r0 -p udp --dport 7003 -j CT --zone-orig 7 || fail "$t zone-orig rule"
	nsx "$R" "$t" -t raw -A PREROUTING -i r0 -p udp --dport 7004 -j CT --zone 5 --ctevents destroy || fail "$t ctevents rule"
	nsx "$R" "$t" -t raw -A PREROUTING -i r0 -p udp --dport 7005 -j CT --zone 5 --ctevents new,reply || fail "$t ctevents rule 2"
	nsx "$R" "$t" -t raw -A PREROUTING -i r0 -j CT --zone 5 || fail "$t zone rule"
	nsx "$R" "$t" -t raw -A PREROUTING -i r0 -j CT --zone 6 || fail "$t ignored zone rule"
	nsx "$R" "$t" -t raw -A PREROUTING -i r1 -p udp -m multiport --sports 7001,7004,7005 -j CT --zone 5 || fail "$t reply zone rule"
	nsx "$R" "$t" -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT || fail "$t forward rule"
done
expect_eq "listing of the CT rules, rust_nf = iptables-legacy" \
	"$(nsx "$R" "$RNF_BIN/iptables" -t raw -S PREROUTING)" "$(nsx "$R" iptables-legacy -t raw -S PREROUTING)"

# An echo server on the server's ports 7001-7005.
cat >"$TMPD/echo.py" <<'EOF'
import selectors, socket
sel = selectors.DefaultSelector()
for p in range(7001, 7006):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.0.2.2", p))
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for k, _ in sel.select():
        data, peer = k.fileobj.recvfrom(2048)
        k.fileobj.sendto(data, peer)
EOF
nsenter --net="/run/netns/$S" python3 "$TMPD/echo.py" >"$TMPD/echo.out" 2>&1 &
BG_PIDS+=("$!")
wait_until "$STARTUP_WAIT" file_is "$TMPD/echo.out" ready || fail "echo server: $(cat "$TMPD/echo.out")"

# Events of both trackers.
nsenter --net="/run/netns/$R" "$RNF_BIN/conntrack" -E >"$TMPD/ev.rnf" 2>&1 &
BG_PIDS+=("$!")
nsenter --net="/run/netns/$R" stdbuf -oL conntrack -E >"$TMPD/ev.k" 2>&1 &
BG_PIDS+=("$!")
_listening() {
	echo probe | nsx "$C" socat -u - UDP:10.0.2.2:7999
	grep -q 'dport=7999' "$TMPD/ev.rnf" && grep -q 'dport=7999' "$TMPD/ev.k"
}
wait_until "$WAIT" _listening || fail "event listeners never heard the probe"

# ask PORT: one datagram from client port 4PORT to PORT; prints the answer or "none".
ask() {
	nsx "$C" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.1.2", int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
s.sendto(b"hello", ("10.0.2.2", int(sys.argv[1])))
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("none")
' "$1" "4$1" "$WAIT"
}
for p in 7001 7002 7003 7004 7005; do
	expect_eq "answer to port $p" "$(ask $p)" hello
done

# Timeouts and counters aside (rust_nf always counts, the kernel only with nf_conntrack_acct).
norm() { sed -E -e 's/^(\S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/packets=[0-9]+ bytes=[0-9]+ //g' -e 's/ +$//' | sort; }
flows() { nsx "$R" "$1" -L -p udp "${@:2}" 2>/dev/null | grep -v 'dport=7999' | norm; }
r=$(flows "$RNF_BIN/conntrack")
k=$(flows conntrack)
printf '%s\n' "$r" | sed 's/^/    rnf: /'
expect_eq "flows, rust_nf = kernel" "$r" "$k"
# Port 7001: answered in zone 5.
case $r in *"sport=47001 dport=7001 src=10.0.2.2 dst=10.0.1.2 sport=7001 dport=47001 mark=0 zone=5 use=1"*)
	log "ok: zone 5 flow answered" ;;
*) fail "zone 5 flow of port 7001 not answered" ;; esac
# Port 7002: the flow in zone 5 is unreplied, the replies made their own flow in zone 0.
case $r in *"sport=47002 dport=7002 [UNREPLIED] "*"zone=5 use=1"*) log "ok: zone 5 flow unreplied" ;;
*) fail "zone 5 flow of port 7002 should be UNREPLIED" ;; esac
case $r in *"src=10.0.2.2 dst=10.0.1.2 sport=7002 dport=47002 [UNREPLIED] "*) log "ok: replies in zone 0" ;;
*) fail "no zone 0 flow for the replies of port 7002" ;; esac
# Port 7003: zone-orig=7, answered (replies are looked up in zone 0, the reply zone).
case $r in *"sport=47003 dport=7003 zone-orig=7 src=10.0.2.2"*) log "ok: zone-orig flow" ;;
*) fail "zone-orig=7 flow of port 7003" ;; esac
expect_eq "--zone 5 filter, rust_nf = kernel" "$(flows "$RNF_BIN/conntrack" --zone 5)" "$(flows conntrack --zone 5)"
expect_eq "--orig-zone 7 filter, rust_nf = kernel" "$(flows "$RNF_BIN/conntrack" --orig-zone 7)" "$(flows conntrack --orig-zone 7)"
expect_eq "--zone 5 flows" "$(flows "$RNF_BIN/conntrack" --zone 5 | wc -l)" 4

# Events: port 7004's flow reports only its end, 7005's only NEW and the first reply.
for p in 7004 7005; do
	nsx "$R" "$RNF_BIN/conntrack" -D -p udp --dport $p >/dev/null 2>&1 || fail "rnfctl conntrack -D $p"
	nsx "$R" conntrack -D -p udp --dport $p >/dev/null 2>&1 || fail "conntrack -D $p"
done
# Timeouts, counters and the deleting process's port id aside.
evnorm() {
	grep "dport=$1 " | sed -E -e 's/^( *\[[A-Z]+\] \S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/packets=[0-9]+ bytes=[0-9]+ //g' \
		-e 's/ \[USERSPACE\] portid=[0-9]+//' -e 's/ +$//'
}
_ended() { grep -q 'DESTROY.*dport=7004 ' "$TMPD/ev.rnf" && grep -q 'DESTROY.*dport=7004 ' "$TMPD/ev.k"; }
wait_until "$WAIT" _ended || fail "no DESTROY event for port 7004"
for p in 7004 7005 7001; do
	re=$(evnorm $p <"$TMPD/ev.rnf")
	ke=$(evnorm $p <"$TMPD/ev.k")
	printf '%s\n' "$re" | sed "s/^/    rnf event $p: /"
	expect_eq "events of port $p, rust_nf = kernel" "$re" "$ke"
done
expect_eq "port 7004 events" "$(evnorm 7004 <"$TMPD/ev.rnf" | grep -c .)" 1
expect_eq "port 7005 events" "$(evnorm 7005 <"$TMPD/ev.rnf" | cut -c1-9 | tr -d ' ' | tr '\n' ' ')" "[NEW] [UPDATE] "

# conntrack -S: one line per CPU in conntrack's format, as the kernel's.
shape() { sed -E -e 's/=[0-9]+/=N/g' -e 's/ +$//'; }
expect_eq "conntrack -S lines, rust_nf = kernel" \
	"$(nsx "$R" "$RNF_BIN/conntrack" -S | grep '^cpu=' | shape)" "$(nsx "$R" conntrack -S | shape)"
inserted=$(nsx "$R" "$RNF_BIN/conntrack" -S | sed -n 's/^rust_nf:.* insert=\([0-9]*\) .*/\1/p')
# Every flow listed was inserted, and so were the two deleted ones.
expect_ge "flows inserted (summed over the CPUs)" "$inserted" $(($(nsx "$R" "$RNF_BIN/conntrack" -C) + 2))
finish
