#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Benchmark (make bench): kube-proxy's first-packet cost. A router holds kube-proxy's NAT rules
# for N ClusterIP services (iptables mode, as its dump has them):
#   -A PREROUTING -j KUBE-SERVICES
#   -A KUBE-SERVICES -d 172.30.a.b/32 -p tcp -m comment --comment "ns/svc-i:http" -m tcp --dport 80 -j KUBE-SVC-i
#   -A KUBE-SVC-i -j KUBE-SEP-i
#   -A KUBE-SEP-i -p tcp -m tcp -j DNAT --to-destination 10.0.2.2:8080
# in rust_nf (rnfctl iptables-restore) and in iptables-legacy (nf_conntrack + nf_nat), two
# identical topologies in one boot. A client opens TCP connections to the last service's
# ClusterIP, one after the other; each connection's first packet walks KUBE-SERVICES and is
# DNATed to the server. The connect() time (SYN out, SYN-ACK back) is measured in the client
# process: p50 and p99 over RNF_BENCH_CONNS connections (default 300), per N and backend,
# rounds interleaved (RNF_BENCH_ROUNDS, default 3; the median of each percentile over the
# rounds, and the spread). N from RNF_BENCH_LAT_NS (default 10 1000 10000).
# Writes kube-lat.md and kube-lat.csv to RNF_BENCH_OUT when set.
set -u
RNF_KO=${RNF_KO:?}
ROUNDS=${RNF_BENCH_ROUNDS:-3}
NLIST=${RNF_BENCH_LAT_NS:-10 1000 10000}
CONNS=${RNF_BENCH_CONNS:-300}
OUT=${RNF_BENCH_OUT:-${RNF_OUT:-}}
export RNF_KO
. "$(dirname "$0")/../vm/lib.sh"
trap 'topo_down; rmmod rust_nf 2>/dev/null' EXIT
grep -q '^rust_nf ' /proc/modules || insmod "$RNF_KO" || { echo "insmod failed"; exit 1; }
topo_pair || { echo "topologies failed"; exit 1; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"

# The server: accepts and closes, on both sides.
cat >"$TMPD/srv.py" <<'EOF'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.2.2", 8080))
s.listen(512)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
EOF
for ns in "$RS" "$KS"; do
	nsenter --net="/run/netns/$ns" python3 "$TMPD/srv.py" >"$TMPD/srv.$ns" 2>&1 &
	BG_PIDS+=("$!")
	wait_until "$STARTUP_WAIT" file_is "$TMPD/srv.$ns" ready || { echo "server in $ns did not start"; exit 1; }
done
# The client: CONNS connections to VIP:80, one at a time; prints p50 and p99 in microseconds.
cat >"$TMPD/cli.py" <<'EOF'
import socket, sys, time
vip, n = sys.argv[1], int(sys.argv[2])
ts = []
for i in range(n):
    s = socket.socket()
    s.settimeout(10)
    t0 = time.perf_counter_ns()
    s.connect((vip, 80))
    ts.append(time.perf_counter_ns() - t0)
    s.close()
ts.sort()
print(ts[len(ts) // 2] // 1000, ts[min(len(ts) - 1, (len(ts) * 99) // 100)] // 1000)
EOF

# rules N: the NAT table of N services.
rules() {
	echo "*nat"
	echo ":PREROUTING ACCEPT [0:0]"
	echo ":INPUT ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":POSTROUTING ACCEPT [0:0]"
	echo ":KUBE-SERVICES - [0:0]"
	awk -v n="$1" 'BEGIN {
		for (i = 0; i < n; i++) printf ":KUBE-SVC-%d - [0:0]\n:KUBE-SEP-%d - [0:0]\n", i, i
		print "-A PREROUTING -j KUBE-SERVICES"
		for (i = 0; i < n; i++)
			printf "-A KUBE-SERVICES -d 172.30.%d.%d/32 -p tcp -m comment --comment \"ns/svc-%d:http\" -m tcp --dport 80 -j KUBE-SVC-%d\n", int(i / 250), i % 250 + 1, i, i
		for (i = 0; i < n; i++) printf "-A KUBE-SVC-%d -j KUBE-SEP-%d\n", i, i
		for (i = 0; i < n; i++) printf "-A KUBE-SEP-%d -p tcp -m tcp -j DNAT --to-destination 10.0.2.2:8080\n", i
	}'
	echo "COMMIT"
}
vip() { echo "172.30.$((($1 - 1) / 250)).$((($1 - 1) % 250 + 1))"; }

declare -A P50 P99
for n in $NLIST; do
	rules "$n" >"$TMPD/nat.rules"
	nsx "$RR" "$RNF_BIN/iptables-restore" <"$TMPD/nat.rules" || { echo "rust_nf: restore of $n services failed"; exit 1; }
	nsx "$KR" iptables-legacy-restore <"$TMPD/nat.rules" || { echo "iptables-legacy: restore of $n services failed"; exit 1; }
	v=$(vip "$n")
	for r in $(seq 1 "$ROUNDS"); do
		order="rnf leg"
		[ $((r % 2)) = 0 ] && order="leg rnf"
		for b in $order; do
			if [ $b = rnf ]; then c=$RC; else c=$KC; fi
			res=$(nsx "$c" python3 "$TMPD/cli.py" "$v" "$CONNS") || { echo "$b N=$n: connections failed: $res"; exit 1; }
			P50[$b,$n]+="${res% *} "
			P99[$b,$n]+="${res#* } "
			echo "[kube-lat] N=$n round $r $b: p50 ${res% *} us, p99 ${res#* } us"
		done
	done
	# Each backend really NATed: the last service's flows are listed with the server's address.
	nsx "$RR" "$RNF_BIN/conntrack" -L -d "$v" 2>/dev/null | grep -q "src=10.0.2.2 dst=10.0.1.2 sport=8080" ||
		echo "warning: rust_nf lists no DNATed flow to $v"
done
# Clean up the NAT tables before the next benchmark.
nsx "$RR" "$RNF_BIN/iptables" -t nat -F 2>/dev/null
nsx "$RR" "$RNF_BIN/iptables" -t nat -X 2>/dev/null

# med "a b c": the median; span: min..max.
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
span() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo ".." hi }'; }
table() {
	echo "# kube-proxy first-packet cost: TCP connect() through a ClusterIP at N services"
	echo
	echo "Client -> router (N services in the nat table, DNAT to one server) -> server, TCP connect() time in the client (us), $CONNS connections per measurement to the last service, $ROUNDS rounds interleaved; median over the rounds (spread min..max). TCG guest with a debug kernel: absolute times are large, ratios are what counts."
	echo
	echo "| N | rust_nf p50 | iptables-legacy p50 | ratio | rust_nf p99 | iptables-legacy p99 | ratio |"
	echo "|---:|---:|---:|---:|---:|---:|---:|"
	for n in $NLIST; do
		a=$(med "${P50[rnf,$n]}") b=$(med "${P50[leg,$n]}") c=$(med "${P99[rnf,$n]}") d=$(med "${P99[leg,$n]}")
		printf '| %s | %s (%s) | %s (%s) | %s | %s (%s) | %s (%s) | %s |\n' "$n" \
			"$a" "$(span "${P50[rnf,$n]}")" "$b" "$(span "${P50[leg,$n]}")" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')" \
			"$c" "$(span "${P99[rnf,$n]}")" "$d" "$(span "${P99[leg,$n]}")" "$(awk -v a="$c" -v b="$d" 'BEGIN { printf "%.2f", a / b }')"
	done
}
table
if [ -n "$OUT" ]; then
	table >"$OUT/kube-lat.md"
	{
		echo "n,backend,round_p50_us,round_p99_us"
		for n in $NLIST; do
			for b in rnf leg; do echo "$n,$b,${P50[$b,$n]% },${P99[$b,$n]% }"; done
		done
	} >"$OUT/kube-lat.csv"
fi
