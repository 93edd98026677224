#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Changes send only what changed (CMD_UPDATE_TABLE: a few hundred bytes whatever the table's
# size) and keep every other rule's counters: a 300-rule table in rust_nf and in
# iptables-legacy (two identical topologies), the same -A, -I, -R, -D (by number and by
# specification), -A -c, -N, -E, -P, -F, -X and two partial `iptables-restore --noflush` on
# both, and after each the same listings with the same counters. One-rule commands (-A, -I,
# -R, -D), one-chain commands (-N, -X, -F, -P) and `iptables-restore --noflush` (one or two
# tables) do not even read the table first; those the kernel refuses (no such chain, rule or
# position, a chain that exists, has rules or is jumped to, a chain hiding a target) fail
# exactly as iptables-legacy's. Under a ping flood,
# 40 changes to the chain the pings walk lose no packet. A limit match keeps its bucket across
# changes of other rules.
# cost: 90
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topologies"; finish; }

N=300
f=$TMPD/update.rules
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":BLOCK - [0:0]"
	echo "-A FORWARD -p icmp -j BLOCK"
	echo "-A FORWARD -p icmp -j ACCEPT"
	awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "-A BLOCK -s 10.9.%d.%d/32 -j DROP\n", int(i / 256), i % 256 }'
	echo "-A BLOCK -s 10.0.1.2/32 -p icmp"
	echo "COMMIT"
} >"$f"
nsx "$RR" "$RNF_BIN/iptables-restore" <"$f" || { fail "rust_nf: restore"; finish; }
nsx "$KR" iptables-legacy-restore <"$f" || { fail "iptables-legacy: restore"; finish; }

# Both sides: some traffic first, so the counters have something to keep.
for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC; else C=$KC; fi
	nsx "$C" ping -n -c 3 -i 0.01 -W 5 10.0.2.2 >/dev/null || fail "$side: pings"
done

same() { # WHAT: FORWARD and BLOCK listed with counters are the same in both
	local chain ok=1
	for chain in FORWARD BLOCK; do
		nsx "$RR" "$RNF_BIN/iptables" -L "$chain" -n -v -x --line-numbers >"$TMPD/rnf.$chain"
		nsx "$KR" iptables-legacy -L "$chain" -n -v -x --line-numbers >"$TMPD/kernel.$chain"
		if ! cmp -s "$TMPD/rnf.$chain" "$TMPD/kernel.$chain"; then
			fail "$1: $chain differs from iptables-legacy's:"
			diff "$TMPD/kernel.$chain" "$TMPD/rnf.$chain" | head -6 | sed 's/^/        /'
			ok=0
		fi
	done
	[ $ok = 1 ] && log "ok: $1: listings and counters equal to iptables-legacy's"
}
same "after the restore"

# change ARGS...: the same command on both; rust_nf's must go as a delta (one request,
# CMD_UPDATE_TABLE = 15, a few hundred bytes).
change() {
	local trace
	trace=$(RNFCTL_TRACE=1 nsx "$RR" "$RNF_BIN/iptables" "$@" 2>&1 >/dev/null) || fail "rust_nf: iptables $*: $trace"
	nsx "$KR" iptables-legacy "$@" || fail "iptables-legacy: iptables $*"
	case $trace in
	*"request cmd=15 bytes="*) ;;
	*) fail "iptables $*: not sent as a change: $trace" ;;
	esac
	bytes=$(sed -n 's/.*request cmd=15 bytes=\([0-9]*\).*/\1/p' <<<"$trace")
	[ "${bytes:-99999}" -lt 1000 ] || fail "iptables $*: $bytes bytes on the wire"
	# A one-rule or one-chain command sends its change to the table as it is: no read
	# (CMD_GET_TABLE = 3).
	case $1 in -A | -I | -R | -D | -N | -X | -F | -P)
		case $trace in *"dump cmd=3 "*) fail "iptables $*: read the table first: $trace" ;; esac ;;
	esac
	same "iptables $*"
}
# refused ARGS...: both refuse the command with the same message and status, and nothing
# changes.
refused() {
	local a b sa sb
	a=$(nsx "$RR" "$RNF_BIN/iptables" "$@" 2>&1)
	sa=$?
	b=$(nsx "$KR" iptables-legacy "$@" 2>&1)
	sb=$?
	[ $sb != 0 ] || fail "iptables-legacy accepted iptables $*"
	# (rnfctl adds the kernel's own explanation on lines of its own.)
	a=$(grep -v '^rnfctl: ' <<<"$a")
	expect_eq "iptables $*: refused as iptables-legacy refuses it" "$sa: $a" "$sb: $b"
	same "refused iptables $*"
}
change -A BLOCK -s 10.8.0.1/32 -j DROP
change -I BLOCK 1 -s 10.8.0.2/32 -j DROP
change -I BLOCK 150 -s 10.8.0.3/32 -p udp -m udp --dport 53 -j DROP
change -R BLOCK 2 -s 10.8.0.4/32 -j ACCEPT
change -D BLOCK 3
change -D BLOCK -s 10.8.0.1/32 -j DROP
change -I FORWARD 2 -p tcp -m tcp --dport 22 -j DROP
change -A BLOCK -c 10 2000 -s 10.8.0.5/32 -j DROP
change -A BLOCK -s 10.8.0.6,10.8.0.7 -p tcp -j REJECT --reject-with tcp-reset
change -D BLOCK -s 10.8.0.6,10.8.0.7 -p tcp -j REJECT --reject-with tcp-reset
refused -A NOSUCH -j DROP
refused -D BLOCK -s 10.99.0.1/32 -j DROP
refused -I BLOCK 9999 -s 10.99.0.1/32 -j DROP
refused -R BLOCK 9999 -s 10.99.0.1/32 -j DROP
refused -D BLOCK 9999
refused -A BLOCK -j NOSUCHCHAIN
refused -A BLOCK -j FORWARD
# (A missing rule that jumps to a user chain: libiptc's words are those of a missing chain.)
refused -D FORWARD -p udp -j BLOCK
refused -C FORWARD -p udp -j BLOCK
refused -C FORWARD -p udp -j DROP
# Chains and policies go as deltas too.
change -N NEWC
change -A NEWC -p udp -j RETURN
change -I FORWARD 1 -p udp -j NEWC
change -E NEWC NEWD
change -P FORWARD DROP
change -P FORWARD ACCEPT
change -F NEWD
change -D FORWARD 1
change -X NEWD
# Chain commands the kernel refuses read the table and fail as iptables-legacy's.
refused -N BLOCK
refused -X BLOCK
refused -X FORWARD
refused -X NOPE
refused -F NOPE
refused -P BLOCK DROP
refused -P NOPE DROP
change -N EMPTYREF
change -A FORWARD -p udp -j EMPTYREF
refused -X EMPTYREF
change -D FORWARD -p udp -j EMPTYREF
change -X EMPTYREF
# A user chain named as a target extension (only a restore makes one: `-N LOG` is refused)
# takes the jump, and iptables warns: rust_nf's kernel refuses the quick change, and the
# command read the table and did as iptables does.
printf '*filter\n:LOG - [0:0]\nCOMMIT\n' >"$TMPD/log.rules"
nsx "$RR" "$RNF_BIN/iptables-restore" --noflush <"$TMPD/log.rules" || fail "rust_nf: a chain LOG"
nsx "$KR" iptables-legacy-restore --noflush <"$TMPD/log.rules" || fail "iptables-legacy: a chain LOG"
a=$(nsx "$RR" "$RNF_BIN/iptables" -A FORWARD -j LOG 2>&1) b=$(nsx "$KR" iptables-legacy -A FORWARD -j LOG 2>&1)
expect_eq "-A FORWARD -j LOG with a chain LOG: as iptables-legacy" "$a" "$b"
same "a jump to the chain LOG"
for side in RR KR; do
	if [ $side = RR ]; then t=$RNF_BIN/iptables; else t=iptables-legacy; fi
	nsx "${!side}" "$t" -D FORWARD -j LOG 2>/dev/null || fail "$t -D FORWARD -j LOG"
	nsx "${!side}" "$t" -X LOG || fail "$t -X LOG"
done
same "the chain LOG gone"
# A partial restore (as kube-proxy's partial syncs): one chain rewritten, one new, the rest
# untouched; one transaction of a few hundred bytes.
cat >"$TMPD/partial.rules" <<'EOF'
*filter
:SVC-A - [0:0]
:FWD-EXTRA - [0:0]
-A SVC-A -s 10.6.0.1/32 -j DROP
-A SVC-A -s 10.6.0.2/32 -j DROP
-A FWD-EXTRA -p tcp -m tcp --dport 8080 -j SVC-A
COMMIT
EOF
for pass in 1 2; do
	trace=$(RNFCTL_TRACE=1 nsx "$RR" "$RNF_BIN/iptables-restore" --noflush <"$TMPD/partial.rules" 2>&1 >/dev/null) ||
		fail "rust_nf: partial restore: $trace"
	nsx "$KR" iptables-legacy-restore --noflush <"$TMPD/partial.rules" || fail "iptables-legacy: partial restore"
	bytes=$(sed -n 's/.*request cmd=15 bytes=\([0-9]*\).*/\1/p' <<<"$trace")
	[ "${bytes:-99999}" -lt 1500 ] || fail "partial restore $pass: not a small delta: $trace"
	# It reads nothing (CMD_GET_TABLE = 3): the chains go by name.
	case $trace in *"dump cmd=3 "*) fail "partial restore $pass: read the table first: $trace" ;; esac
	for chain in SVC-A FWD-EXTRA; do
		a=$(nsx "$RR" "$RNF_BIN/iptables" -S "$chain") b=$(nsx "$KR" iptables-legacy -S "$chain")
		expect_eq "partial restore $pass: $chain as iptables-legacy's" "$a" "$b"
	done
done
same "after the partial restores"

# kube-proxy's shape over two tables, read-free: a chain rewritten, a stale chain declared
# and deleted, a new nat service chain and its jump, a rule of an undeclared chain deleted by
# specification, one inserted by position; one CMD_UPDATE_TABLES (16) request.
cat >"$TMPD/stale.rules" <<'EOF'
*filter
:SVC-OLD - [0:0]
-A SVC-OLD -j RETURN
-A FORWARD -p udp -m udp --dport 7 -j SVC-OLD
COMMIT
EOF
cat >"$TMPD/kube.rules" <<'EOF'
*filter
:SVC-A - [0:0]
:SVC-OLD - [0:0]
-A SVC-A -s 10.6.0.3/32 -j DROP
-D FORWARD -p udp -m udp --dport 7 -j SVC-OLD
-X SVC-OLD
-I FORWARD 2 -p udp -m udp --dport 9 -j SVC-A
COMMIT
*nat
:KUBE-SVC-X - [0:0]
-A KUBE-SVC-X -p tcp -j DNAT --to-destination 10.0.2.2:80
-A OUTPUT -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
COMMIT
EOF
for f in stale kube; do
	trace=$(RNFCTL_TRACE=1 nsx "$RR" "$RNF_BIN/iptables-restore" --noflush <"$TMPD/$f.rules" 2>&1 >/dev/null) ||
		fail "rust_nf: restore --noflush $f: $trace"
	nsx "$KR" iptables-legacy-restore --noflush <"$TMPD/$f.rules" || fail "iptables-legacy: restore --noflush $f"
	case $trace in *"dump cmd=3 "*) fail "restore --noflush $f: read a table first: $trace" ;; esac
	case $trace in *"request cmd=1"[56]" bytes="*) ;; *) fail "restore --noflush $f: not sent as a change: $trace" ;; esac
done
# same_S TABLE WHAT: `-S` of the table equal on both sides (the difference shown if not).
same_S() {
	nsx "$RR" "$RNF_BIN/iptables" -t "$1" -S >"$TMPD/rnf.S"
	nsx "$KR" iptables-legacy -t "$1" -S >"$TMPD/kernel.S"
	if cmp -s "$TMPD/rnf.S" "$TMPD/kernel.S"; then
		log "ok: $2: the $1 table as iptables-legacy's ($(wc -l <"$TMPD/rnf.S") lines)"
	else
		fail "$2: the $1 table differs from iptables-legacy's:"
		diff "$TMPD/kernel.S" "$TMPD/rnf.S" | head -6 | sed 's/^/        /'
	fi
}
for t in filter nat; do
	same_S $t "restore --noflush over two tables"
done
same "after the two-table restore --noflush"
# Refused ones fail as iptables-legacy-restore's, and change nothing: a missing chain or
# rule (the kernel refuses the read-free change; rnfctl reads and words it), a jump to a
# chain the file makes only later (iptables takes it for a target), -X of a chain with rules,
# a position past the end.
n=0
for rules in '-A NOSUCH -j DROP' '-D FORWARD -s 10.99.0.9/32 -j DROP' '-A FORWARD -j LATER\n:LATER - [0:0]' \
	'-A SVC-A -j DROP\n-X SVC-A' '-I SVC-A 5 -j DROP'; do
	n=$((n + 1))
	printf "*filter\n:SVC-A - [0:0]\n$rules\nCOMMIT\n" >"$TMPD/bad$n.rules"
	a=$(nsx "$RR" "$RNF_BIN/iptables-restore" --noflush <"$TMPD/bad$n.rules" 2>&1)
	sa=$?
	b=$(nsx "$KR" iptables-legacy-restore --noflush <"$TMPD/bad$n.rules" 2>&1)
	sb=$?
	[ $sb != 0 ] || fail "iptables-legacy-restore --noflush accepted: $rules"
	a=$(grep -v '^rnfctl: ' <<<"$a")
	expect_eq "restore --noflush refused ($rules): as iptables-legacy-restore" "$sa: $a" "$sb: $b"
	same_S filter "restore --noflush refused ($rules): nothing changed"
done

# Under traffic: every echo request of a flood is answered while 40 changes land.
C=$RC R=$RR S=$RS
flood_start "the changes"
for i in $(seq 1 20); do
	nsx "$RR" "$RNF_BIN/iptables" -I BLOCK 10 -s "10.7.0.$i/32" -j DROP || fail "-I under traffic"
	nsx "$RR" "$RNF_BIN/iptables" -D BLOCK 10 || fail "-D under traffic"
done
flood_end "the changes"
# The counting rule (`-s 10.0.1.2 -p icmp`, no target) saw every request of the flood, plus
# the 3 first.
last=$(nsx "$RR" "$RNF_BIN/iptables" -L BLOCK -n -v -x | awk '$3 == "1" && $7 == "10.0.1.2" { print $1 }')
expect_ge "packets counted by the last rule of BLOCK (none lost across the changes)" "$last" $((SENT + 3))

# The counter pool follows the live rules: 300-odd rules take at least two blocks of 256
# counters, a flushed table (three policies) one again once the flushed rules' slots are free
# (from the change after the flush: the flush's own version may still count into them).
pool() { nsx "$RR" rnfctl status | sed -n 's/^table filter: .*, \([0-9.]* K*i*B\) counters per CPU.*/\1/p'; }
before=$(pool)
log "counters per CPU of the 300-rule filter table: $before"
case $before in "" | "4.0 KiB" | *" B") fail "the 300-rule table's counters: '$before'" ;; esac
nsx "$RR" "$RNF_BIN/iptables" -F || fail "-F"
nsx "$RR" "$RNF_BIN/iptables" -P FORWARD ACCEPT || fail "-P"
expect_eq "counters per CPU of the flushed filter table" "$(pool)" "4.0 KiB"

# A rule's match state is kept by its identity, as its counters are: a change elsewhere
# leaves a limit's bucket as it was (iptables-legacy, which replaces the whole table, refills
# every bucket then); a rule replaced by -R starts afresh.
pings() { # N: how many of N pings through the router are answered
	local i got=0
	for i in $(seq 1 "$1"); do
		nsx "$RC" ping -n -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 && got=$((got + 1))
	done
	echo $got
}
nsx "$RR" "$RNF_BIN/iptables-restore" --noflush <<'EOF' || fail "the limit chain"
*filter
:LIM - [0:0]
-A FORWARD -p icmp -j LIM
-A LIM -p icmp -m icmp --icmp-type 8 -m limit --limit 1/hour --limit-burst 2 -j RETURN
-A LIM -p icmp -m icmp --icmp-type 8 -j DROP
COMMIT
EOF
expect_eq "echo requests answered of 3 (burst 2)" "$(pings 3)" 2
nsx "$RR" "$RNF_BIN/iptables" -A FORWARD -s 10.8.9.9/32 -j DROP || fail "-A elsewhere"
nsx "$RR" "$RNF_BIN/iptables" -I LIM 2 -s 10.8.9.8/32 -j DROP || fail "-I in the chain"
expect_eq "echo requests answered after changes elsewhere (bucket still empty)" "$(pings 1)" 0
nsx "$RR" "$RNF_BIN/iptables" -R LIM 1 -p icmp -m icmp --icmp-type 8 -m limit --limit 1/hour --limit-burst 2 -j RETURN ||
	fail "-R the limit rule"
expect_eq "echo requests answered after -R of the limit rule (a new bucket)" "$(pings 3)" 2
finish
