#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Without the module, rnfctl says so in one clear line and exits 1.
. "$(dirname "$0")/lib.sh"

rnf_unload
out=$(rnfctl status 2>&1)
rc=$?
expect_eq "exit status" "$rc" 1
expect_eq "lines of output" "$(echo "$out" | wc -l)" 1
log "message: $out"
echo "$out" | grep -q "rust_nf module is not loaded" || fail "unclear message"
echo "$out" | grep -qi "panick\|backtrace" && fail "rnfctl panicked"
exit "$FAILED"
