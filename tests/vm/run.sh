#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the VM: every tests/vm/t-*.sh (or those picked by $RNF_TESTS), prints PASS/FAIL/
# SKIP lines for the host to count, and saves the kernel log to $RNF_OUT/dmesg.txt for the
# host's check.
#
# Two phases:
#   1. tests whose header has `# lane: exclusive` (they load and unload the module), one at a
#      time, with the module unloaded before each;
#   2. every other test, with the module loaded once, $RNF_LANES at a time (default 3). Such a
#      test only touches namespaces of its own, so lanes cannot disturb each other.
# A test's output is printed in one block when it ends. At the end the module must unload.
#
# $RNF_TESTS: space- or comma-separated words; a test runs when its name contains one of them.
# $RNF_SHARD=K/N: this guest is number K of N sharing the tests (the host boots them): the
# exclusive tests run in guest 0, the others are dealt by cost so that the guests end together.

cd "$(dirname "$0")" || exit 1
export RNF_KO PATH
lanes=${RNF_LANES:-3}
limit=${RNF_TEST_TIMEOUT:-600}
filter=${RNF_TESTS:-}
filter=${filter//,/ }
status=0
start_all=$(date +%s%N)
res=$(mktemp -d /tmp/rnf-run.XXXXXX)
trap 'rm -rf "$res"' EXIT

picked() {
	local name=$1 w
	[ -z "$filter" ] && return 0
	for w in $filter; do
		case "$name" in *"$w"*) return 0 ;; esac
	done
	return 1
}

# The expected duration of a test (`# cost: SECONDS` in its header, default 10): the parallel
# phase starts the longest first, so the lanes end together.
cost() { sed -n 's/^# cost: *\([0-9]*\).*/\1/p' "$1" | head -1 | grep . || echo 10; }

shard=${RNF_SHARD:-0/1}
shard_k=${shard%/*}
shard_n=${shard#*/}
all=()
for t in t-*.sh; do
	name=${t#t-}
	name=${name%.sh}
	picked "$name" || continue
	excl=0
	grep -q '^# lane: exclusive' "$t" && excl=1
	all+=("$(cost "$t") $excl $t")
done
# Deal the tests to the shards (longest first, each to the least loaded; exclusive ones to
# shard 0), keep this shard's.
mine=$(printf '%s\n' "${all[@]}" | grep . | sort -k2,2rn -k1,1rn -k3,3 | awk -v n="$shard_n" -v k="$shard_k" '
	{ s = 0
	  if ($2 == 0) for (i = 1; i < n; i++) if (load[i] < load[s]) s = i
	  load[s] += $1
	  if (s == k) print $1, $2, $3 }')
exclusive=()
parallel=()
while read -r c excl t; do
	[ -n "$t" ] || continue
	if [ "$excl" = 1 ]; then exclusive+=("$t"); else parallel+=("$c $t"); fi
done <<< "$mine"

# Removes what a test left behind: processes in its namespaces, the namespaces.
cleanup_prefix() {
	local ns
	for ns in $(ip netns list | awk -v p="$1" 'index($1, p) == 1 { print $1 }'); do
		ip netns pids "$ns" | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}

# report NAME RC SECS OUTFILE
report() {
	local name=$1 rc=$2 secs=$3 out=$4
	echo "--- $name"
	sed 's/^\([^ ]\)/    \1/' "$out"
	case $rc in
	0) echo "PASS $name (${secs}s)" ;;
	4) echo "SKIP $name (${secs}s)" ;;
	124 | 137) echo "    FAIL: no result within ${limit}s (killed)"; echo "FAIL $name (${secs}s, timeout)"; status=1 ;;
	*) echo "FAIL $name (${secs}s, exit $rc)"; status=1 ;;
	esac
	echo "$secs $name" >> "$res/times"
}

# Phase 1: exclusive tests.
for t in "${exclusive[@]}"; do
	name=${t#t-}
	name=${name%.sh}
	grep -q '^rust_nf ' /proc/modules && rmmod rust_nf
	t0=$(date +%s)
	# Output goes to a file, not a pipe: a straggling background process of the test must not
	# be able to hold the runner up.
	RNF_PFX="rnfx$t0" timeout -k 5 "$limit" bash "$t" > "$res/$name.out" 2>&1
	rc=$?
	cleanup_prefix "rnfx$t0-"
	if grep -q '^rust_nf ' /proc/modules && ! timeout 60 rmmod rust_nf; then
		echo "    FAIL: the test left rust_nf loaded and it would not unload" >> "$res/$name.out"
		rc=1
	fi
	report "$name" "$rc" $(($(date +%s) - t0)) "$res/$name.out"
done

# Phase 2: the rest, in lanes, module loaded once.
if [ ${#parallel[@]} -gt 0 ]; then
	if ! grep -q '^rust_nf ' /proc/modules && ! insmod "$RNF_KO"; then
		echo "FAIL insmod (could not load $RNF_KO for the parallel tests)"
		status=1
		parallel=()
	fi
fi
declare -A pid_name pid_start pid_idx
i=0
mapfile -t sorted < <(printf '%s\n' "${parallel[@]}" | grep . | sort -rn -k1,1 | awk '{ print $2 }')
next=0
running=0
while [ $next -lt ${#sorted[@]} ] || [ $running -gt 0 ]; do
	while [ $running -lt "$lanes" ] && [ $next -lt ${#sorted[@]} ]; do
		t=${sorted[$next]}
		next=$((next + 1))
		name=${t#t-}
		name=${name%.sh}
		i=$((i + 1))
		RNF_PFX="rnf$i" timeout -k 5 "$limit" bash "$t" > "$res/$name.out" 2>&1 &
		pid_name[$!]=$name
		pid_start[$!]=$(date +%s)
		pid_idx[$!]=$i
		running=$((running + 1))
	done
	wait -n -p done_pid
	rc=$?
	[ -n "${done_pid:-}" ] || continue
	running=$((running - 1))
	name=${pid_name[$done_pid]}
	cleanup_prefix "rnf${pid_idx[$done_pid]}-"
	report "$name" "$rc" $(($(date +%s) - ${pid_start[$done_pid]})) "$res/$name.out"
	unset "pid_name[$done_pid]" "pid_start[$done_pid]" "pid_idx[$done_pid]"
done
cleanup_prefix rnf

# Leaks: with kmemleak in the kernel, a scan while the module is still loaded (so that its
# functions have names in the backtraces); an unreferenced object allocated through rust_nf
# fails the run. Objects younger than kmemleak's minimum age (5 s) are not reported yet.
KML=/sys/kernel/debug/kmemleak
[ -e $KML ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
if [ -w $KML ] && grep -q '^rust_nf ' /proc/modules; then
	if ! echo scan >$KML; then
		echo "FAIL kmemleak: the scan was refused (kmemleak disabled itself? see dmesg)"
		status=1
	fi
	leaks=$(awk '/^unreferenced object/ { obj = $0; bt = "" } { bt = bt "\n" $0 }
		/rust_nf|rnf_/ && obj != "" { print obj; obj = "" }' $KML)
	if [ -n "$leaks" ]; then
		echo "FAIL kmemleak: objects allocated through rust_nf were leaked:"
		echo "$leaks" | head -20 | sed 's/^/    /'
		status=1
	else
		echo "PASS kmemleak ($(grep -c '^unreferenced object' $KML) unreferenced objects in the kernel, none from rust_nf)"
	fi
fi

# The module must unload after all of it (no leaked reference, no stuck hook).
if grep -q '^rust_nf ' /proc/modules; then
	if timeout 60 rmmod rust_nf; then
		echo "PASS module-unload"
	else
		echo "FAIL module-unload (rmmod rust_nf failed after the tests)"
		status=1
	fi
fi

echo "--- slowest tests (seconds):"
sort -rn "$res/times" 2>/dev/null | head -5 | sed 's/^/    /'
echo "--- in-VM wall time: $(( ($(date +%s%N) - start_all) / 1000000 )) ms with $lanes lanes"
if [ -n "${RNF_OUT:-}" ]; then
	dmesg > "$RNF_OUT/dmesg.txt"
fi
exit $status
