#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `nft list hooks ip` shows every rust_nf hook at the standard priority, in every netns, next
# to the kernel's own hooks.
# cost: 3
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
# hook  priority  function, as nft prints them
want="prerouting -0000000300 rnf_raw_hook
prerouting -0000000200 rnf_conntrack_hook
prerouting -0000000150 rnf_mangle_hook
prerouting -0000000100 rnf_nat_dst_hook
input -0000000150 rnf_mangle_hook
input 0000000000 rnf_filter_hook
input +0000000050 rnf_security_hook
input +0000000100 rnf_nat_src_hook
input +2147483647 rnf_confirm_hook
forward -0000000150 rnf_mangle_hook
forward 0000000000 rnf_filter_hook
forward +0000000050 rnf_security_hook
output -0000000300 rnf_raw_hook
output -0000000200 rnf_conntrack_hook
output -0000000150 rnf_mangle_hook
output -0000000100 rnf_nat_dst_hook
output 0000000000 rnf_filter_hook
output +0000000050 rnf_security_hook
postrouting -0000000150 rnf_mangle_hook
postrouting +0000000100 rnf_nat_src_hook
postrouting +2147483647 rnf_confirm_hook"

listed() {
	nsx "$1" nft list hooks ip | awk '
		/hook [a-z]+ \{/ { hook = $2 }
		/\[rust_nf\]/ { print hook, $1, $2 }'
}

ns_add "$C" || { fail "netns $C"; finish; }
for ns in "$C"; do
	got=$(listed "$ns")
	if [ "$got" = "$want" ]; then
		log "ok: all 21 hooks at the standard priorities in netns $ns"
	else
		fail "hooks in $ns differ:"
		diff <(echo "$want") <(echo "$got") | sed 's/^/        /'
	fi
done
# The initial netns is only read here (other tests may be running).
got=$(nft list hooks ip | awk '/hook [a-z]+ \{/ { hook = $2 } /\[rust_nf\]/ { print hook, $1, $2 }')
if [ "$got" = "$want" ]; then
	log "ok: all 21 hooks at the standard priorities in the initial netns"
else
	fail "hooks in the initial netns differ:"
	diff <(echo "$want") <(echo "$got") | sed 's/^/        /'
fi

# Next to the kernel's own: with an iptables-legacy filter table loaded, both sit at priority 0.
out=$(nsx "$C" iptables-legacy -t filter -L -n 2>&1) || fail "iptables-legacy -L: $out"
both=$(nsx "$C" nft list hooks ip | awk '/hook input \{/ { f = 1 } f && $1 == "0000000000" { print $2 } /\}/ { f = 0 }')
log "input hook at priority 0: $(echo $both)"
echo "$both" | grep -q rnf_filter_hook || fail "rnf_filter_hook missing at input priority 0: $(echo $both)"
echo "$both" | grep -q ipt_do_table || fail "the kernel's iptables filter hook (ipt_do_table) missing next to ours: $(echo $both)"
finish
