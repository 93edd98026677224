#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`: runs inside the VM. Loads rust_nf, builds client - router - server namespaces,
# puts a small stateless firewall on the router (iptables syntax, run by rnfctl), drives
# allowed and forbidden traffic through it, and shows the rules with their counters, the
# hook counters; then a stateful firewall on rust_nf's own conntrack (CONNMARK, recent, the
# FTP helper) with its flows (`rnfctl conntrack -L`); then a home router (masquerade and a
# port forward on rust_nf's own NAT); and rust_nf's hooks next to the kernel's own.
set -eu
RNF_KO=${RNF_KO:?}
export RNF_KO
. "$(dirname "$0")/../tests/vm/lib.sh"
set +u
trap 'topo_down; rmmod rust_nf 2>/dev/null' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "load rust_nf"
insmod "$RNF_KO"
dmesg | grep 'rust_nf' | tail -1

step "topology: client 10.0.1.2 -- router 10.0.1.1/10.0.2.1 -- server 10.0.2.2"
topo_up
nsx "$R" rnfctl zero

step "a stateless firewall on the router (rnfctl, invoked as iptables-restore)"
cat > /tmp/demo-fw.rules <<'RULES'
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:LOGDROP - [0:0]
-A FORWARD -p icmp -m icmp --icmp-type 8 -m limit --limit 20/sec -j ACCEPT
-A FORWARD -p icmp -m icmp --icmp-type 0 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 8080 -m comment --comment "web service" -j ACCEPT
-A FORWARD -p tcp -m tcp --sport 8080 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j LOGDROP
-A LOGDROP -j LOG --log-prefix "demo-drop: "
-A LOGDROP -j DROP
COMMIT
RULES
cat /tmp/demo-fw.rules
nsx "$R" "$RNF_BIN/iptables-restore" < /tmp/demo-fw.rules
sysctl -qw net.netfilter.nf_log_all_netns=1

step "traffic: pings, TCP to 8080 (allowed), telnet (rejected), UDP (logged and dropped)"
nsx "$C" ping -c 10 -i 0.1 -W 2 10.0.2.2 | tail -2
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo hello from the server' &
sleep 0.5
nsx "$C" socat -T5 -t5 - TCP:10.0.2.2:8080 </dev/null
wait
nsx "$C" bash -c 'exec 3<>/dev/tcp/10.0.2.2/23' 2>&1 | sed 's/^.*: /telnet: /'
echo hello | nsx "$C" socat -u - UDP:10.0.2.2:9999
sleep 0.2
dmesg | grep 'demo-drop' | tail -1

step "iptables -L -n -v --line-numbers on the router (rnfctl)"
nsx "$R" "$RNF_BIN/iptables" -L -n -v --line-numbers

step "iptables-save -c on the router (rnfctl)"
nsx "$R" "$RNF_BIN/iptables-save" -c

step "rnfctl status in the router's netns: forwarded traffic meets PREROUTING, FORWARD, POSTROUTING"
nsx "$R" rnfctl status

step "rnfctl status in the server's netns: PREROUTING/INPUT in, OUTPUT/POSTROUTING out"
nsx "$S" rnfctl status

step "a stateful firewall on the router: rust_nf's own connection tracking"
cat > /tmp/demo-stateful.rules <<'RULES'
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --restore-mark
-A PREROUTING -i r0 -p tcp -m tcp --dport 8080 -m mark --mark 0x0 -j MARK --set-xmark 0x80/0xffffffff
-A PREROUTING -j CONNMARK --save-mark
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i r0 -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -m recent --set --name web
-A FORWARD -i r0 -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 4 --name web -j DROP
-A FORWARD -i r0 -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -i r0 -p udp -m udp --dport 53 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -i r0 -p icmp -m conntrack --ctstate NEW -j ACCEPT
COMMIT
RULES
cat /tmp/demo-stateful.rules
nsx "$R" "$RNF_BIN/iptables-restore" < /tmp/demo-stateful.rules
nsx "$R" rnfctl sysctl nf_conntrack_tcp_timeout_time_wait=30

step "traffic: replies come back as ESTABLISHED; the fourth new web connection in a minute is dropped"
nsx "$C" ping -c 3 -i 0.1 -W 2 10.0.2.2 | tail -1
nsx "$S" socat -T5 UDP-RECVFROM:53,reuseaddr SYSTEM:'echo an answer' &
sleep 0.3
echo question | nsx "$C" socat -T2 - UDP:10.0.2.2:53
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello again' &
sleep 0.3
for i in 1 2 3 4; do
	printf 'web connection %s: ' "$i"
	nsx "$C" socat -T2 -t2 - TCP:10.0.2.2:8080,connect-timeout=2 </dev/null 2>&1 | head -1
done
kill %% 2>/dev/null
wait 2>/dev/null

step "rnfctl conntrack -L: rust_nf's flows (states, counters, the web flows' connmark 128)"
nsx "$R" rnfctl conntrack -L

step "rnfctl conntrack -S, rnfctl recent web, the counters of the stateful rules"
nsx "$R" rnfctl conntrack -S
nsx "$R" rnfctl recent web
nsx "$R" "$RNF_BIN/iptables" -L FORWARD -n -v --line-numbers

step "a home router: masquerade for the LAN, a port forward to a LAN host (rust_nf's own NAT)"
cat > /tmp/demo-nat.rules <<'RULES'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i r1 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.0.1.2:80
-A POSTROUTING -s 10.0.1.0/24 -o r1 -j MASQUERADE
COMMIT
*filter
-A FORWARD -i r0 -o r1 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -i r1 -d 10.0.1.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
RULES
cat /tmp/demo-nat.rules
nsx "$R" "$RNF_BIN/iptables-restore" --noflush < /tmp/demo-nat.rules
nsx "$S" socat -T5 TCP-LISTEN:8082,reuseaddr SYSTEM:'echo "the server sees you as $SOCAT_PEERADDR"' &
nsx "$C" socat -T5 TCP-LISTEN:80,reuseaddr SYSTEM:'echo "the LAN host sees you as $SOCAT_PEERADDR"' &
sleep 0.3
printf 'LAN client -> server:8082 (masqueraded): '
nsx "$C" socat -T2 -t2 - TCP:10.0.2.2:8082,connect-timeout=2 </dev/null 2>&1 | head -1
printf 'outside host -> router 10.0.2.1:8081 (forwarded): '
nsx "$S" socat -T2 -t2 - TCP:10.0.2.1:8081,connect-timeout=2 </dev/null 2>&1 | head -1
wait 2>/dev/null

step "iptables -t nat -L -n -v (rnfctl): each rule counted a flow's first packet only"
nsx "$R" "$RNF_BIN/iptables" -t nat -L -n -v

step "rnfctl conntrack -L --src-nat / --dst-nat: the translated reply tuples"
nsx "$R" rnfctl conntrack -L --src-nat
nsx "$R" rnfctl conntrack -L --dst-nat

step "nft list hooks ip (router netns, with the kernel's iptables-legacy filter table loaded too)"
nsx "$R" iptables-legacy -L -n >/dev/null
nsx "$R" nft list hooks ip

step "unload"
sysctl -qw net.netfilter.nf_log_all_netns=0
topo_down
rmmod rust_nf
dmesg | grep 'rust_nf' | tail -1
trap - EXIT
