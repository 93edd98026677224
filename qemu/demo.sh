#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`: runs inside the VM. Loads rust_nf, builds client - router - server namespaces,
# drives traffic through the router, and shows rust_nf's hooks and counters next to the
# kernel's own hooks. Later issues grow this into a firewall demo.
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

step "traffic: 10 pings and one TCP exchange from the client to the server, through the router"
nsx "$C" ping -c 10 -i 0.1 -W 2 10.0.2.2 | tail -2
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo hello from the server' &
sleep 0.5
nsx "$C" socat -T5 -t5 - TCP:10.0.2.2:8080 </dev/null
wait

step "rnfctl status in the router's netns: forwarded traffic meets PREROUTING, FORWARD, POSTROUTING"
nsx "$R" rnfctl status

step "rnfctl status in the server's netns: PREROUTING/INPUT in, OUTPUT/POSTROUTING out"
nsx "$S" rnfctl status

step "nft list hooks ip (router netns, with the kernel's iptables-legacy filter table loaded too)"
nsx "$R" iptables-legacy -L -n >/dev/null
nsx "$R" nft list hooks ip

step "unload"
topo_down
rmmod rust_nf
dmesg | grep 'rust_nf' | tail -1
trap - EXIT
