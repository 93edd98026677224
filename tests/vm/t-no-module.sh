#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Without the module, rnfctl says so in one clear line and exits 1.
# lane: exclusive
# cost: 2
. "$(dirname "$0")/lib.sh"

rnf_unload || { fail "rust_nf is loaded and does not unload"; finish; }
expect_fail "rnfctl status without the module" 1 \
	'rnfctl: the rust_nf module is not loaded (no generic netlink family "rust_nf"); load it with insmod rust_nf.ko' \
	rnfctl status
expect_eq "lines of output" "$(echo "$OUT" | wc -l)" 1
finish
