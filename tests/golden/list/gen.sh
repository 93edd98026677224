#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regenerates the `iptables -L` goldens in this folder from the real iptables-legacy (1.8.9),
# run inside the project VM:
#
#     cargo xtask vm 'bash tests/golden/list/gen.sh [CASE...]'
#     cp -r ~/.cache/rust-nf/vm-out/vm-*/golden-list/* tests/golden/list/   (the newest vm-*)
#
# (All cases take about 15 minutes under TCG; name cases to regenerate only those.) The Rust
# side is `golden_listings_match_iptables_legacy` in userspace-ctl/src/ipt/list.rs.
#
# Every case gets a fresh network namespace, applies its iptables-legacy commands (and, for
# some, drives a little traffic over lo so counters move), then writes CASE.txt:
#
#     #### save                       iptables-legacy-save -c (the input the Rust test rebuilds
#     ...                             the tables from)
#     #### -t TABLE -L ...            one block per listing command: its exact stdout,
#     #### exit N                     preceded by its exit status and, when it wrote to stderr,
#     #### stderr TEXT                one `#### stderr` line per line of stderr
#     ...
#
# Lines starting with `#### ` are markers; everything else is verbatim output. etc/ keeps the
# guest's /etc/{hosts,networks,protocols,services}, which name addresses, ports and protocols
# in the listings without -n.

set -u

OUT=${RNF_OUT:?run inside the VM: cargo xtask vm 'bash tests/golden/list/gen.sh'}/golden-list
mkdir -p "$OUT"
export XTABLES_LOCKFILE=/tmp/golden-list-xtables.lock

NS=golden-list-$$
FAILED=0

# ipt ARGS...: iptables-legacy in the case's namespace; a failing command fails the generator.
ipt() {
	if ! ip netns exec "$NS" iptables-legacy "$@"; then
		echo "gen.sh: FAILED in case $CASE: iptables $*" >&2
		FAILED=1
	fi
}

# traffic N: N pings over lo in the case's namespace (counts in INPUT and OUTPUT).
traffic() {
	ip netns exec "$NS" ip link set lo up
	ip netns exec "$NS" ping -q -c "$1" -i 0.2 -W 1 127.0.0.1 >/dev/null 2>&1
}

# record FILE ARGS...: one listing block.
record() {
	local file=$1 err rc
	shift
	err=$(mktemp)
	echo "#### $*" >>"$file"
	ip netns exec "$NS" iptables-legacy "$@" >"$err.out" 2>"$err"
	rc=$?
	echo "#### exit $rc" >>"$file"
	while IFS= read -r line; do echo "#### stderr $line" >>"$file"; done <"$err"
	cat "$err.out" >>"$file"
	rm -f "$err" "$err.out"
}

# run_case NAME TABLE...: applies case_NAME, records the save output and the listings.
run_case() {
	CASE=$1
	shift
	local file="$OUT/$CASE.txt" t chains c
	rm -f "$file"
	ip netns add "$NS" || exit 1
	"case_$CASE"
	# Touch every listed table so that save prints it even when the case left it empty.
	for t in "$@"; do ip netns exec "$NS" iptables-legacy -t "$t" -S >/dev/null; done
	echo "#### save" >>"$file"
	ip netns exec "$NS" iptables-legacy-save -c | grep -v '^#' >>"$file"
	for t in "$@"; do
		record "$file" -t "$t" -L
		record "$file" -t "$t" -L -n
		record "$file" -t "$t" -L -v
		record "$file" -t "$t" -L -n -v
		record "$file" -t "$t" -L -n -v -x
		record "$file" -t "$t" -L -v -x --line-numbers
		record "$file" -t "$t" -L -n --line-numbers
		record "$file" -t "$t" -L -n -v --line-numbers
		chains=$(ip netns exec "$NS" iptables-legacy -t "$t" -S | awk '$1 == "-P" || $1 == "-N" { print $2 }')
		for c in $chains; do
			record "$file" -t "$t" -L "$c"
			record "$file" -t "$t" -L "$c" -n -v -x --line-numbers
			record "$file" -t "$t" -L "$c" 2 -v --line-numbers
		done
		record "$file" -t "$t" -L "${chains%%[[:space:]]*}" 1000 -n
		record "$file" -t "$t" -L NO-SUCH-CHAIN
		record "$file" -t "$t" -L NO-SUCH-CHAIN -n -v
		record "$file" -t "$t" -L NO-SUCH-CHAIN 1
		record "$file" -t "$t" -L -x
	done
	ip netns del "$NS"
	echo "$CASE: $(grep -c -- '^\[[0-9]*:[0-9]*\] -A ' "$file") rules (${SECONDS}s)"
}

# --- the cases ---------------------------------------------------------------------------

case_empty() {
	:
}

case_addresses() {
	ipt -A INPUT -s 10.0.0.0/8 -j ACCEPT
	ipt -A INPUT -d 192.168.1.0/24 -j DROP
	ipt -A INPUT -s 1.2.3.4/32 -d 5.6.7.8 -j ACCEPT
	ipt -A INPUT -s 172.16.0.0/12 -d 172.16.5.0/255.255.255.0 -j RETURN
	ipt -A INPUT ! -s 10.0.0.0/8 -j DROP
	ipt -A INPUT ! -d 127.0.0.1 -j ACCEPT
	ipt -A INPUT -s 127.0.0.1 -d 127.0.0.1 -j ACCEPT
	ipt -A INPUT -s 127.0.0.0/8 -j ACCEPT
	ipt -A INPUT -s 10.0.0.1/255.0.255.0 -j DROP
	ipt -A INPUT -d 10.20.30.40/255.255.0.255 -j DROP
	ipt -A INPUT ! -s 0.0.0.0/0 -j DROP
	ipt -A INPUT -d 255.255.255.255 -j DROP
	ipt -A INPUT -s 224.0.0.0/4 -j DROP
	ipt -A INPUT -d 0.0.0.0/1 -j ACCEPT
	ipt -A INPUT -d 128.0.0.0/1 -j ACCEPT
	ipt -A INPUT -s 0.0.0.0/32 -j DROP
	ipt -A INPUT -s 203.0.113.255/31 -d 198.51.100.7/30 -j ACCEPT
	ipt -A INPUT ! -s 255.255.255.0/255.0.255.0 ! -d 255.255.255.254/255.255.0.255 -j DROP
	ipt -A INPUT -s 192.0.2.1 -d 0.0.0.0/0 -j ACCEPT
	ipt -A OUTPUT -d 127.0.0.1 -j ACCEPT
	ipt -A OUTPUT ! -d 127.0.0.0/8 -j ACCEPT
	ipt -A FORWARD -s 10.1.0.0/16 -d 10.2.0.0/16 -j ACCEPT
	ipt -A FORWARD -s 10.2.0.0/16 -d 10.1.0.0/16
}

case_protocols() {
	ipt -A INPUT -p tcp -j ACCEPT
	ipt -A INPUT -p udp -j ACCEPT
	ipt -A INPUT -p icmp -j ACCEPT
	ipt -A INPUT -p all -j ACCEPT
	ipt -A INPUT -p 0 -j ACCEPT
	ipt -A INPUT -p 47 -j ACCEPT
	ipt -A INPUT -p gre -j DROP
	ipt -A INPUT -p esp -j ACCEPT
	ipt -A INPUT -p ah -j ACCEPT
	ipt -A INPUT -p sctp -j ACCEPT
	ipt -A INPUT -p udplite -j ACCEPT
	ipt -A INPUT -p 2 -j DROP
	ipt -A INPUT -p 58 -j DROP
	ipt -A INPUT -p 41 -j DROP
	ipt -A INPUT -p 112 -j DROP
	ipt -A INPUT -p 253 -j DROP
	ipt -A INPUT -p 255 -j DROP
	ipt -A INPUT -p 135 -j DROP
	ipt -A INPUT -p mh -j DROP
	ipt -A INPUT ! -p tcp -j DROP
	ipt -A INPUT ! -p icmp -j DROP
	ipt -A INPUT ! -p 200 -j DROP
	ipt -A INPUT -f -j DROP
	ipt -A INPUT ! -f -j ACCEPT
	ipt -A INPUT -p udp -f -j DROP
	ipt -A INPUT ! -p udp ! -f -s 10.0.0.0/8 -j DROP
	ipt -A OUTPUT -p 6 -j ACCEPT
	ipt -A OUTPUT -p 17 -j ACCEPT
	ipt -A OUTPUT -p 1 -j ACCEPT
}

case_ifaces() {
	ipt -A INPUT -i lo -j ACCEPT
	ipt -A INPUT -i eth0 -j ACCEPT
	ipt -A INPUT -i eth+ -j DROP
	ipt -A INPUT ! -i lo -j DROP
	ipt -A INPUT ! -i veth+ -s 10.0.0.0/8 -j DROP
	ipt -A INPUT -i abcdefghijklmno -j ACCEPT
	ipt -A INPUT ! -i abcdefghijklmn+ -j ACCEPT
	ipt -A INPUT -i a -p tcp --dport 22 -j ACCEPT
	ipt -A OUTPUT -o lo -j ACCEPT
	ipt -A OUTPUT -o eth1 -d 8.8.8.8 -j ACCEPT
	ipt -A OUTPUT ! -o wg+ -j DROP
	ipt -A OUTPUT -o br-0123456789a -j ACCEPT
	ipt -A FORWARD -i eth0 -o eth1 -j ACCEPT
	ipt -A FORWARD -i eth1 -o eth0 -j ACCEPT
	ipt -A FORWARD ! -i eth0 ! -o eth1 -j DROP
	ipt -A FORWARD -i veth+ -o veth+ -j ACCEPT
	ipt -A FORWARD -i vethA ! -o vethB -p udp -j DROP
}

case_tcpudp() {
	ipt -A INPUT -p tcp --dport 22 -j ACCEPT
	ipt -A INPUT -p tcp --dport ssh -j ACCEPT
	ipt -A INPUT -p tcp --sport 1024:65535 --dport 80 -j ACCEPT
	ipt -A INPUT -p tcp ! --dport 80 -j DROP
	ipt -A INPUT -p tcp --dport 0:1023 -j DROP
	ipt -A INPUT -p tcp --sport :1023 -j DROP
	ipt -A INPUT -p tcp --dport 8080: -j ACCEPT
	ipt -A INPUT -p tcp --dport 0 -j DROP
	ipt -A INPUT -p tcp --dport 65535 -j DROP
	ipt -A INPUT -p tcp --dport 12345 -j ACCEPT
	ipt -A INPUT -p tcp --dport 443 --sport 12345 -j ACCEPT
	ipt -A INPUT -p tcp ! --sport 20:21 ! --dport 21:22 -j DROP
	ipt -A INPUT -p tcp --dport 0:65535 -j ACCEPT
	ipt -A INPUT -p tcp --syn -j ACCEPT
	ipt -A INPUT -p tcp ! --syn -j DROP
	ipt -A INPUT -p tcp --tcp-flags SYN,ACK SYN -j DROP
	ipt -A INPUT -p tcp --tcp-flags ALL NONE -j DROP
	ipt -A INPUT -p tcp --tcp-flags ALL ALL -j DROP
	ipt -A INPUT -p tcp ! --tcp-flags FIN,SYN FIN,SYN -j ACCEPT
	ipt -A INPUT -p tcp --tcp-flags URG,PSH URG -j DROP
	ipt -A INPUT -p tcp --tcp-flags NONE NONE -j DROP
	ipt -A INPUT -p tcp --tcp-option 2 -j ACCEPT
	ipt -A INPUT -p tcp ! --tcp-option 8 -j ACCEPT
	ipt -A INPUT -p tcp --sport 80 --dport 1024:2048 --tcp-option 3 --tcp-flags RST RST -j DROP
	ipt -A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT
	ipt -A INPUT -p tcp --dport 5432 -s 10.0.0.0/8 -j ACCEPT
	ipt -A INPUT -p udp --dport 53 -j ACCEPT
	ipt -A INPUT -p udp --sport 67:68 --dport 67:68 -j ACCEPT
	ipt -A INPUT -p udp ! --dport 123 -j DROP
	ipt -A INPUT -p udp --dport 65535 -j DROP
	ipt -A INPUT -p udp --sport 53 -j ACCEPT
	ipt -A INPUT -p udp --dport 22 -j ACCEPT
	ipt -A INPUT -p udp ! --sport 1:1023 -j ACCEPT
	ipt -A INPUT -p udp --dport 161:162 -j ACCEPT
	ipt -A OUTPUT -p tcp --sport 22 -j ACCEPT
	ipt -A OUTPUT -p udp -m udp --dport 69 -j ACCEPT
}

case_icmp() {
	ipt -A INPUT -p icmp --icmp-type echo-request -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 8 -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 3/3 -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type fragmentation-needed -j ACCEPT
	ipt -A INPUT -p icmp ! --icmp-type echo-reply -j DROP
	ipt -A INPUT -p icmp --icmp-type any -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 42 -j DROP
	ipt -A INPUT -p icmp --icmp-type 42/7 -j DROP
	ipt -A INPUT -p icmp --icmp-type 3/8 -j DROP
	ipt -A INPUT -p icmp ! --icmp-type 3/8 -j DROP
	ipt -A INPUT -p icmp --icmp-type destination-unreachable -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type host-redirect -j DROP
	ipt -A INPUT -p icmp --icmp-type 11/0 -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type time-exceeded -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 12/1 -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 0 -j ACCEPT
	ipt -A INPUT -p icmp --icmp-type 13 -j DROP
	ipt -A INPUT -p icmp --icmp-type 14 -j DROP
	ipt -A INPUT -p icmp --icmp-type 17 -j DROP
	ipt -A INPUT -p icmp --icmp-type 18 -j DROP
	ipt -A INPUT -p icmp --icmp-type 9 -j DROP
	ipt -A INPUT -p icmp --icmp-type 10 -j DROP
	ipt -A INPUT -p icmp --icmp-type 4 -j DROP
	ipt -A INPUT -p icmp --icmp-type 5 -j DROP
	ipt -A INPUT -p icmp --icmp-type 3/13 -j DROP
	ipt -A INPUT -p icmp --icmp-type 3/15 -j DROP
	ipt -A INPUT -p icmp ! --icmp-type any -j DROP
	ipt -A OUTPUT -p icmp --icmp-type echo-reply -j ACCEPT
	ipt -A OUTPUT -p icmp -m icmp --icmp-type 3/1 -j ACCEPT
}

case_multiport() {
	ipt -A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT
	ipt -A INPUT -p tcp -m multiport --sports 1024:65535 -j ACCEPT
	ipt -A INPUT -p tcp -m multiport --ports 22,80,443,8000:8080 -j ACCEPT
	ipt -A INPUT -p udp -m multiport --dports 53,123,161:162 -j ACCEPT
	ipt -A INPUT -p tcp -m multiport ! --dports 25,587 -j DROP
	ipt -A INPUT -p udp -m multiport ! --sports 67:68 -j DROP
	ipt -A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j DROP
	ipt -A INPUT -p tcp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15 -j DROP
	ipt -A INPUT -p tcp -m multiport --dports 12345 -j ACCEPT
	ipt -A INPUT -p sctp -m multiport --dports 80,443 -j ACCEPT
	ipt -A INPUT -p udplite -m multiport --dports 80,443 -j ACCEPT
	ipt -A INPUT -p tcp -m multiport --sports 22 -m multiport --dports 1000:2000 -j ACCEPT
	ipt -A INPUT -p tcp -m multiport --ports 0,65535 -j DROP
	ipt -A OUTPUT -p udp -m multiport --ports 53 -j ACCEPT
}

case_matches() {
	ipt -A INPUT -m comment --comment "hello" -j ACCEPT
	ipt -A INPUT -m comment --comment "with spaces and \"quotes\" and \\ backslash" -j ACCEPT
	ipt -A INPUT -p tcp --dport 22 -m comment --comment ssh -j ACCEPT
	ipt -A INPUT -m comment --comment "$(printf 'x%.0s' $(seq 1 255))" -j ACCEPT
	ipt -A INPUT -m mark --mark 0x1 -j ACCEPT
	ipt -A INPUT -m mark --mark 0x1/0xff -j ACCEPT
	ipt -A INPUT -m mark ! --mark 5 -j DROP
	ipt -A INPUT -m mark --mark 0xffffffff -j DROP
	ipt -A INPUT -m mark --mark 0/0 -j DROP
	ipt -A INPUT -m mark ! --mark 0x10/0xf0 -j DROP
	ipt -A INPUT -m statistic --mode random --probability 0.5 -j ACCEPT
	ipt -A INPUT -m statistic --mode random ! --probability 0.25 -j DROP
	ipt -A INPUT -m statistic --mode random --probability 0.1 -j DROP
	ipt -A INPUT -m statistic --mode random --probability 1 -j DROP
	ipt -A INPUT -m statistic --mode random --probability 0 -j DROP
	ipt -A INPUT -m statistic --mode random --probability 0.333 -j DROP
	ipt -A INPUT -m statistic --mode nth --every 3 --packet 0 -j ACCEPT
	ipt -A INPUT -m statistic --mode nth --every 5 --packet 2 -j ACCEPT
	ipt -A INPUT -m statistic --mode nth ! --every 2 --packet 1 -j DROP
	ipt -A INPUT -m statistic --mode nth --every 1 --packet 0 -j DROP
	ipt -A INPUT -m limit -j ACCEPT
	ipt -A INPUT -m limit --limit 3/min -j ACCEPT
	ipt -A INPUT -m limit --limit 10/s -j ACCEPT
	ipt -A INPUT -m limit --limit 1/hour --limit-burst 10 -j ACCEPT
	ipt -A INPUT -m limit --limit 2/day -j ACCEPT
	ipt -A INPUT -m limit --limit 100/sec --limit-burst 200 -j ACCEPT
	ipt -A INPUT -m limit --limit 7/m -j ACCEPT
	ipt -A INPUT -m limit --limit 1000/second -j ACCEPT
	ipt -A INPUT -m limit --limit 10000/s -j ACCEPT
	ipt -A INPUT -m limit --limit 7/sec -j ACCEPT
	ipt -A INPUT -m limit --limit 25/hour -j ACCEPT
	ipt -A INPUT -m limit --limit 59/minute --limit-burst 1 -j ACCEPT
	ipt -A INPUT -m limit --limit 61/min --limit-burst 2 -j ACCEPT
	ipt -A INPUT -m limit --limit 23/day --limit-burst 10000 -j ACCEPT
	ipt -A INPUT -m iprange --src-range 10.0.0.1-10.0.0.50 -j ACCEPT
	ipt -A INPUT -m iprange ! --dst-range 192.168.1.1-192.168.1.254 -j DROP
	ipt -A INPUT -m iprange --src-range 1.1.1.1-2.2.2.2 ! --dst-range 3.3.3.3-4.4.4.4 -j DROP
	ipt -A INPUT -m iprange --dst-range 127.0.0.1-127.0.0.1 -j ACCEPT
	ipt -A INPUT -m iprange ! --src-range 0.0.0.0-255.255.255.255 -j DROP
	ipt -A INPUT -m length --length 100 -j DROP
	ipt -A INPUT -m length --length 64:1500 -j ACCEPT
	ipt -A INPUT -m length ! --length 0:100 -j DROP
	ipt -A INPUT -m length --length 65535 -j DROP
	ipt -A INPUT -m length --length 1000: -j DROP
	ipt -A INPUT -m addrtype --src-type LOCAL -j ACCEPT
	ipt -A INPUT -m addrtype --dst-type UNICAST,BROADCAST,MULTICAST -j ACCEPT
	ipt -A INPUT -m addrtype ! --src-type LOCAL --limit-iface-in -j DROP
	ipt -A INPUT -m addrtype --src-type BLACKHOLE,UNREACHABLE,PROHIBIT ! --dst-type LOCAL -j DROP
	ipt -A INPUT -m addrtype --src-type UNSPEC,ANYCAST,THROW,NAT,XRESOLVE -j DROP
	ipt -A OUTPUT -m addrtype --dst-type LOCAL --limit-iface-out -j ACCEPT
	ipt -A INPUT -m ttl --ttl-eq 5 -j DROP
	ipt -A INPUT -m ttl ! --ttl-eq 64 -j DROP
	ipt -A INPUT -m ttl --ttl-lt 10 -j DROP
	ipt -A INPUT -m ttl --ttl-gt 200 -j DROP
	ipt -A INPUT -m ttl --ttl-eq 0 -j DROP
	ipt -A INPUT -m ttl --ttl-gt 255 -j DROP
	ipt -A FORWARD -p tcp --dport 80 -m multiport --sports 1000:2000 -m comment --comment web -m mark --mark 0x2/0x2 -m limit --limit 5/sec -m length --length 40:1500 -m ttl --ttl-gt 1 -m addrtype --dst-type UNICAST -j ACCEPT
	ipt -A FORWARD -p udp -m statistic --mode nth --every 4 --packet 3 -m iprange --src-range 10.0.0.1-10.0.0.9 -m comment --comment "a b" -j DROP
	ipt -A FORWARD -p icmp --icmp-type 8 -m limit --limit 1/s --limit-burst 3 -m comment --comment ping -j ACCEPT
}

case_targets() {
	ipt -N LOGDROP
	ipt -N ALLOWED
	ipt -N unused
	ipt -N Z-last
	ipt -N a-first
	ipt -N 0123456789012345678901234567
	ipt -A INPUT -j ALLOWED
	ipt -A INPUT -p tcp -j ALLOWED
	ipt -A INPUT -g LOGDROP
	ipt -A INPUT -s 10.0.0.0/8 -g ALLOWED
	ipt -A INPUT -p tcp --dport 22 -g ALLOWED
	ipt -A INPUT -m comment --comment "goto with comment" -g Z-last
	ipt -A INPUT -j 0123456789012345678901234567
	ipt -A INPUT -p udp
	ipt -A INPUT
	ipt -A INPUT -s 1.2.3.4
	ipt -A INPUT -j REJECT
	ipt -A INPUT -j REJECT --reject-with icmp-net-unreachable
	ipt -A INPUT -j REJECT --reject-with icmp-host-unreachable
	ipt -A INPUT -j REJECT --reject-with icmp-port-unreachable
	ipt -A INPUT -j REJECT --reject-with icmp-proto-unreachable
	ipt -A INPUT -j REJECT --reject-with icmp-net-prohibited
	ipt -A INPUT -j REJECT --reject-with icmp-host-prohibited
	ipt -A INPUT -j REJECT --reject-with icmp-admin-prohibited
	ipt -A INPUT -p tcp -j REJECT --reject-with tcp-reset
	ipt -A INPUT -p tcp --dport 113 -j REJECT --reject-with tcp-rst
	ipt -A LOGDROP -j LOG
	ipt -A LOGDROP -j LOG --log-prefix "dropped: "
	ipt -A LOGDROP -j LOG --log-level 0
	ipt -A LOGDROP -j LOG --log-level alert
	ipt -A LOGDROP -j LOG --log-level 2
	ipt -A LOGDROP -j LOG --log-level error
	ipt -A LOGDROP -j LOG --log-level warning
	ipt -A LOGDROP -j LOG --log-level 5
	ipt -A LOGDROP -j LOG --log-level info
	ipt -A LOGDROP -j LOG --log-level debug --log-prefix "dbg"
	ipt -A LOGDROP -j LOG --log-tcp-sequence
	ipt -A LOGDROP -j LOG --log-tcp-options
	ipt -A LOGDROP -j LOG --log-ip-options
	ipt -A LOGDROP -j LOG --log-uid
	ipt -A LOGDROP -j LOG --log-macdecode
	ipt -A LOGDROP -j LOG --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode --log-level 7 --log-prefix "all flags \"x\" "
	ipt -A LOGDROP -j LOG --log-prefix "12345678901234567890123456789"
	ipt -A LOGDROP -p tcp --dport 22 -m limit --limit 1/min -j LOG --log-prefix "ssh " --log-level 6
	ipt -A LOGDROP -j DROP
	ipt -A ALLOWED -j RETURN
	ipt -A ALLOWED -j ACCEPT
	ipt -A ALLOWED -j LOGDROP
	ipt -A Z-last -j a-first
	ipt -A a-first -j RETURN
	ipt -A FORWARD -j LOGDROP
	ipt -A FORWARD -j REJECT --reject-with icmp-host-prohibited
	ipt -A OUTPUT -j ALLOWED
	ipt -A OUTPUT -p tcp --sport 80 -j REJECT --reject-with tcp-reset
	ipt -P FORWARD DROP
}

case_mangle() {
	ipt -t mangle -N MARKS
	ipt -t mangle -A PREROUTING -j MARK --set-mark 1
	ipt -t mangle -A PREROUTING -j MARK --set-mark 0x5/0xf
	ipt -t mangle -A PREROUTING -j MARK --set-mark 0
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0x1/0xff
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0x1/0xffffffff
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0/0
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0xf0f0/0
	ipt -t mangle -A PREROUTING -j MARK --and-mark 0xf0
	ipt -t mangle -A PREROUTING -j MARK --or-mark 0x4
	ipt -t mangle -A PREROUTING -j MARK --xor-mark 0x2
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0xffffffff/0xffffffff
	ipt -t mangle -A PREROUTING -j MARK --set-xmark 0x3/0x1
	ipt -t mangle -A INPUT -p tcp --dport 80 -j MARK --set-mark 0x10
	ipt -t mangle -A INPUT -m mark --mark 0x10 -j ACCEPT
	ipt -t mangle -A FORWARD -i eth0 -j MARKS
	ipt -t mangle -A OUTPUT -o lo -j MARK --or-mark 0x100
	ipt -t mangle -A POSTROUTING -m mark ! --mark 0 -j RETURN
	ipt -t mangle -A POSTROUTING -j LOG --log-prefix "post "
	ipt -t mangle -A MARKS -s 10.0.0.0/8 -j MARK --set-mark 0xdeadbeef
	ipt -t mangle -A MARKS -j DROP
	ipt -t mangle -P FORWARD DROP
	ipt -A INPUT -j MARK --set-mark 7
	ipt -A INPUT -m mark --mark 7 -j ACCEPT
}

case_othertables() {
	ipt -t raw -A PREROUTING -p udp --dport 53 -j ACCEPT
	ipt -t raw -A PREROUTING -s 192.0.2.0/24 -j DROP
	ipt -t raw -A OUTPUT -o lo -j ACCEPT
	ipt -t raw -N RAWCHAIN
	ipt -t raw -A OUTPUT -j RAWCHAIN
	ipt -t raw -A RAWCHAIN -m statistic --mode random --probability 0.01 -j LOG
	ipt -t nat -A PREROUTING -p tcp --dport 8080 -j ACCEPT
	ipt -t nat -A PREROUTING -s 10.0.0.0/8 -j RETURN
	ipt -t nat -A INPUT -j ACCEPT
	ipt -t nat -A OUTPUT -d 127.0.0.1 -j RETURN
	ipt -t nat -A POSTROUTING -o eth0 -j ACCEPT
	ipt -t nat -N NATCHAIN
	ipt -t nat -A POSTROUTING -j NATCHAIN
	ipt -t nat -A NATCHAIN -j LOG --log-prefix nat
	ipt -t security -A INPUT -p tcp --dport 22 -j ACCEPT
	ipt -t security -A FORWARD -j DROP
	ipt -t security -A OUTPUT -j RETURN
	ipt -t security -P INPUT DROP
}

case_counters() {
	ipt -N SUB
	ipt -A INPUT -i lo -p icmp -j SUB
	ipt -A INPUT -i lo -j ACCEPT
	ipt -A OUTPUT -o lo -p icmp --icmp-type echo-request -j ACCEPT
	ipt -A OUTPUT -o lo -j ACCEPT
	ipt -A SUB -p icmp --icmp-type echo-request
	ipt -A SUB -m length --length 0:1000 -j RETURN
	traffic 5
	ipt -A FORWARD -c 0 0 -j ACCEPT
	ipt -A FORWARD -c 1 2 -j ACCEPT
	ipt -A FORWARD -c 99999 99999 -j ACCEPT
	ipt -A FORWARD -c 100000 100499 -j ACCEPT
	ipt -A FORWARD -c 100500 999499 -j ACCEPT
	ipt -A FORWARD -c 999500 9999499 -j ACCEPT
	ipt -A FORWARD -c 9999500 99999999 -j ACCEPT
	ipt -A FORWARD -c 123456789 9876543210 -j ACCEPT
	ipt -A FORWARD -c 9999499999 9999500000 -j ACCEPT
	ipt -A FORWARD -c 99999999999 999999999999 -j ACCEPT
	ipt -A FORWARD -c 9999499999999 9999500000000 -j ACCEPT
	ipt -A FORWARD -c 12345678901234567 123456789012345678 -j ACCEPT
	ipt -A FORWARD -c 18446744073709551615 18446744073709551114 -j ACCEPT
	ipt -A FORWARD -c 18446744073709551115 18446744073709551116 -j ACCEPT
	ipt -A FORWARD -c 4294967296 1099511627776 -p tcp --dport 443 -j DROP
	ipt -P FORWARD DROP
	ipt -A SUB -c 7 700 -j LOG
}

case_policies() {
	ipt -P INPUT DROP
	ipt -P FORWARD DROP
	ipt -N EMPTY1
	ipt -N EMPTY2
	ipt -A INPUT -j EMPTY1
	ipt -A OUTPUT -j EMPTY1
	ipt -A FORWARD -j EMPTY1
	ipt -A FORWARD -g EMPTY1
	# The pings fall through to the INPUT (dropped) and OUTPUT policies. Last, as a later
	# iptables-legacy commit may zero policy counters.
	traffic 3
}

# Counters that traffic cannot reach: set by iptables-legacy-restore -c.
case_restored() {
	ip netns exec "$NS" iptables-legacy-restore -c <<-'EOF'
	*filter
	:INPUT ACCEPT [123456789:9876543210]
	:FORWARD DROP [18446744073709551615:99999]
	:OUTPUT ACCEPT [100000:1000000000000000]
	:chain-a - [0:0]
	:chain-b - [0:0]
	[1:60] -A INPUT -i lo -j ACCEPT
	[99999:100000] -A INPUT -p tcp -m tcp --dport 22 -j chain-a
	[5000000:5000000000] -A INPUT -p udp -m udp --sport 53 -j chain-b
	[0:0] -A INPUT -m comment --comment "counted nothing" -j DROP
	[7:7] -A FORWARD -g chain-a
	[12345:12345678] -A OUTPUT -o eth0 -p icmp -m icmp --icmp-type 8 -j LOG --log-prefix "out ping " --log-level 6
	[1:1] -A chain-a -s 10.0.0.0/8 -j RETURN
	[2:2] -A chain-a -j REJECT --reject-with tcp-reset -p tcp
	[3:3] -A chain-b -m limit --limit 10/min -j ACCEPT
	COMMIT
	*mangle
	:PREROUTING ACCEPT [99999999:99999999999]
	:INPUT ACCEPT [1:2]
	:FORWARD ACCEPT [3:4]
	:OUTPUT ACCEPT [5:6]
	:POSTROUTING ACCEPT [7:8]
	[4242:424242] -A PREROUTING -i eth0 -j MARK --set-xmark 0x1/0xffffffff
	[0:0] -A POSTROUTING -o eth1 -m mark --mark 0x1 -j MARK --or-mark 0x2
	COMMIT
	EOF
}

mkdir -p "$OUT/etc"
for f in hosts networks protocols services; do cp "/etc/$f" "$OUT/etc/$f"; done

# CASE TABLE...: every case and the tables it lists.
CASES="empty:filter addresses:filter protocols:filter ifaces:filter tcpudp:filter icmp:filter
multiport:filter matches:filter targets:filter mangle:mangle,filter othertables:raw,nat,security
counters:filter policies:filter restored:filter,mangle"

# gen.sh [CASE...]: only the named cases.
for c in $CASES; do
	name=${c%%:*}
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	run_case "$name" $(echo "${c#*:}" | tr , ' ')
done

if [ "$FAILED" != 0 ]; then
	echo "gen.sh: some commands failed (see above)" >&2
	exit 1
fi
echo "gen.sh: goldens in $OUT"
