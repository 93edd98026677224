#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Zeroing counters needs CAP_NET_ADMIN in the user namespace that owns the netns: refused with
# EPERM without it, allowed for the owner of a fresh user+net namespace. Reading is open.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
ping -c2 -i0.2 127.0.0.1 >/dev/null
nocap="setpriv --inh-caps=-all --bounding-set=-all --"
out=$($nocap rnfctl zero 2>&1)
rc=$?
expect_eq "exit status of an unprivileged zero" "$rc" 1
log "message: $out"
echo "$out" | grep -q "Operation not permitted" || fail "no EPERM message"
before=$(rnfctl status | awk '$2 == "OUTPUT" && $4 == "filter" { print $5 }')
[ "$before" -gt 0 ] || fail "counters were reset by the refused request ($before)"
# Reading needs no privilege.
$nocap rnfctl status >/dev/null || fail "unprivileged status refused"
# As an unprivileged user (uid 65534) too.
setpriv --reuid=65534 --regid=65534 --clear-groups rnfctl zero >/dev/null 2>&1 && fail "uid 65534 zeroed counters"
# The owner of a new user namespace has CAP_NET_ADMIN over its own netns: allowed there.
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urn sh -c 'rnfctl zero && rnfctl status' 2>&1)
rc=$?
expect_eq "zero inside an own user+net namespace" "$rc" 0
echo "$out" | grep -q "^0 *PREROUTING" || fail "status in own namespace: $out"
finish
