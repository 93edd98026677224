#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The TCPMSS target on a router, side by side with iptables-legacy in two identical
# topologies: --set-mss lowers the client's SYN, --clamp-mss-to-pmtu lowers the server's
# SYN-ACK to what the narrower link back allows, a SYN without options gets one (536), with a
# TCP checksum the server's capture finds correct; the connection works; the rules after the
# target count the grown packet; the listings are iptables-legacy's.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topology"; finish; }

RULES=(
	"-A FORWARD -o r1 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1000"
	"-A FORWARD -i r1 -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"
	"-A FORWARD -o r1 -p tcp --syn"
	"-A FORWARD -o r1 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400"
)
# The link back to the client is narrower: a SYN-ACK clamped to it carries 1280 - 40.
for r in "$RR" "$KR"; do nsx "$r" ip link set r0 mtu 1280; done
both_tools "$RR" "$KR" "${RULES[@]/#/-t mangle }"

# A SYN without options from a raw socket, its TCP checksum computed here (not offloaded), to
# a closed port of the server.
SYN="$TMPD/syn.py"
cat >"$SYN" <<'EOF'
import socket, struct
src, dst = socket.inet_aton("10.0.1.2"), socket.inet_aton("10.0.2.2")
tcp = struct.pack("!HHIIBBHHH", 40000, 8081, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
s = sum(struct.unpack("!%dH" % (len(src + dst) // 2), src + dst)) + 6 + len(tcp)
s += sum(struct.unpack("!10H", tcp))
while s >> 16:
    s = (s & 0xffff) + (s >> 16)
tcp = tcp[:16] + struct.pack("!H", ~s & 0xffff) + tcp[18:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).sendto(tcp, ("10.0.2.2", 0))
EOF

_listening() { grep -q "listening on" "$TMPD/s.err" && grep -q "listening on" "$TMPD/c.err"; }
for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC R=$RR S=$RS; else C=$KC R=$KR S=$KS; fi
	# The server's capture: the SYN of the connection, then the raw SYN; the client's: the
	# SYN-ACK.
	bg "$S" tcpdump -l -n -vv -c 2 -i s0 "tcp[tcpflags] == tcp-syn" >"$TMPD/s.cap" 2>"$TMPD/s.err"
	pid_s=$BG
	bg "$C" tcpdump -l -n -v -c 1 -i c0 "tcp[tcpflags] == tcp-syn|tcp-ack" >"$TMPD/c.cap" 2>"$TMPD/c.err"
	pid_c=$BG
	wait_until "$WAIT" _listening || fail "$side: tcpdump did not start"
	tcp_server "$S" 8080 hello
	tcp_get "$C" 10.0.2.2 8080
	expect_eq "$side: TCP answer through the rewrites" "$TCP_OUT" hello
	wait_tcp_done 8080 "$C" "$S"
	stop "$SRV"
	nsx "$C" python3 "$SYN" || fail "$side: raw SYN"
	wait "$pid_s" "$pid_c" 2>/dev/null
	mss=$(grep -o "mss [0-9]*" "$TMPD/s.cap" | tr '\n' ' ')
	expect_eq "$side: MSS of the SYNs at the server" "$mss" "mss 1000 mss 536 "
	expect_eq "$side: MSS of the SYN-ACK at the client" "$(grep -o "mss [0-9]*" "$TMPD/c.cap")" "mss 1240"
	# The raw SYN's checksum is a full one: the capture checks it.
	raw=$(grep -A1 "8081" "$TMPD/s.cap" | grep -o "cksum 0x[0-9a-f]* ([a-z]*" | tail -1)
	case $raw in
	*"(correct") log "ok: $side: raw SYN's TCP checksum: $raw" ;;
	*) fail "$side: raw SYN's TCP checksum: '$raw' in $(cat "$TMPD/s.cap")" ;;
	esac
	C=$RC R=$RR S=$RS
done

# The listings (without counters: the policies count the connection's teardown, whose
# segments vary from run to run).
same_listings "$RR" "$KR" "-t mangle -S" "-t mangle -L -n --line-numbers"
# The SYN rules' counters, and the counting rule after the first TCPMSS: two SYNs, the raw one
# 4 bytes longer (44).
for n in 1 2 3 4; do
	expect_eq "FORWARD rule $n: packets and bytes" "$(rule_counter "$RR" mangle FORWARD $n packets)/$(rule_counter "$RR" mangle FORWARD $n bytes)" \
		"$(nsx "$KR" iptables-legacy -t mangle -L FORWARD -n -v -x --line-numbers | awk -v n=$n '$1 == n { print $2 "/" $3 }')"
done
finish
