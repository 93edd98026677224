#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the VM: every tests/vm/t-*.sh (or those whose name contains $RNF_TESTS), one by
# one, each with a time limit; prints PASS/FAIL/SKIP lines for the host to count; saves the
# kernel log to $RNF_OUT/dmesg.txt for the host's check.

cd "$(dirname "$0")" || exit 1
export RNF_KO PATH
filter=${RNF_TESTS:-}
status=0
for t in t-*.sh; do
	name=${t#t-}
	name=${name%.sh}
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	echo "--- $name"
	start=$(date +%s)
	timeout -k 5 300 bash "$t" 2>&1 | sed -u 's/^\([^ ]\)/    \1/'
	rc=${PIPESTATUS[0]}
	secs=$(( $(date +%s) - start ))
	# Each test starts from a clean state: module unloaded, no leftover namespaces.
	grep -q '^rust_nf ' /proc/modules && rmmod rust_nf 2>/dev/null
	for ns in $(ip netns list | awk '/^rnf/ { print $1 }'); do ip netns del "$ns"; done
	case $rc in
	0) echo "PASS $name (${secs}s)" ;;
	4) echo "SKIP $name (${secs}s)" ;;
	*) echo "FAIL $name (${secs}s, exit $rc)"; status=1 ;;
	esac
done
if [ -n "${RNF_OUT:-}" ]; then
	dmesg > "$RNF_OUT/dmesg.txt"
fi
exit $status
