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
	# Output goes to a file, not a pipe: a straggling background process of the test must
	# not be able to hold the runner up.
	out=$(mktemp)
	timeout -k 5 300 bash "$t" > "$out" 2>&1
	rc=$?
	sed 's/^\([^ ]\)/    \1/' "$out"
	rm -f "$out"
	secs=$(( $(date +%s) - start ))
	# Each test starts from a clean state: no leftover processes or namespaces, module
	# unloaded.
	for ns in $(ip netns list | awk '/^rnf/ { print $1 }'); do
		ip netns pids "$ns" | xargs -r kill -9 2>/dev/null
		ip netns del "$ns"
	done
	if grep -q '^rust_nf ' /proc/modules && ! timeout 60 rmmod rust_nf; then
		echo "    FAIL: rmmod after the test"
		rc=1
	fi
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
