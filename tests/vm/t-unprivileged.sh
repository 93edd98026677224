#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Zeroing counters needs CAP_NET_ADMIN in the user namespace that owns the netns: refused with
# EPERM without it (the counters stay), allowed for the owner of a fresh user+net namespace.
# Reading is open.
# cost: 7
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
X="$PFX-x"
ns_add "$X" || { fail "netns $X"; finish; }
# The unprivileged user runs a copy of rnfctl in a folder it may enter, wherever the
# repository lives (its folders may be closed to other users).
chmod 0755 "$TMPD"
mkdir -m 0755 "$TMPD/pub"
install -m 0755 "$(command -v rnfctl)" "$TMPD/pub/rnfctl"
U="$TMPD/pub/rnfctl"
nocap="setpriv --inh-caps=-all --bounding-set=-all --"
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
EPERM="rnfctl: Operation not permitted (you need CAP_NET_ADMIN in this network namespace)"

# Something to count: two local pings (requests and replies pass OUTPUT).
nsx "$X" ping -n -c 2 -i 0.05 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping in $X"
before=$(hook_counter "$X" OUTPUT filter packets)
expect_eq "OUTPUT/filter packets after the pings" "$before" 4

expect_fail "zero without CAP_NET_ADMIN" 1 "$EPERM" nsx "$X" $nocap "$U" zero
expect_fail "zero as uid 65534" 1 "$EPERM" nsx "$X" $nobody "$U" zero
expect_eq "OUTPUT/filter packets after the refused zeroes (unchanged)" "$(hook_counter "$X" OUTPUT filter packets)" "$before"

# Reading needs no privilege.
out=$(nsx "$X" $nocap "$U" status 2>&1)
expect_eq "status without CAP_NET_ADMIN: exit status" "$?" 0
expect_eq "status without CAP_NET_ADMIN: OUTPUT/filter packets" "$(status_counter OUTPUT filter packets <<<"$out")" "$before"
out=$(nsx "$X" $nobody "$U" status 2>&1)
expect_eq "status as uid 65534: exit status" "$?" 0
expect_eq "status as uid 65534: OUTPUT/filter packets" "$(status_counter OUTPUT filter packets <<<"$out")" "$before"

# The owner of a new user namespace has CAP_NET_ADMIN over its own netns: allowed there.
out=$($nobody unshare -Urn sh -c '"$0" zero && "$0" status' "$U" 2>&1)
rc=$?
expect_eq "zero and status inside an own user+net namespace: exit status" "$rc" 0
expect_eq "hooks listed in the own namespace" "$(awk '$1 ~ /^[0-9]+$/' <<<"$out" | wc -l)" 21
expect_eq "hooks with a non-zero packet count there" "$(awk '$1 ~ /^[0-9]+$/ && $5 != 0' <<<"$out" | wc -l)" 0
[ "$rc" = 0 ] || log "output: $out"
finish
