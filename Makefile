# SPDX-License-Identifier: GPL-2.0
# rust_nf: front door. Every target sets up what it needs (Debian packages, rust-src, bindgen,
# the Python venv, the kernel source and build), cached under ~/.cache/rust-nf.
#
#   make run            the demo: boot the test kernel, load rust_nf, drive traffic, show it
#   make test           everything: host unit tests, in-VM tests, kernel log check
#   make quick          host unit tests plus a short in-VM smoke test (about a minute)
#   make shell          interactive shell in the VM (rust_nf loaded, rnfctl on PATH)
#   make vm CMD='...'   run one command in the VM with rust_nf loaded
#
# When Kbuild includes this folder (make -C <kernel> M=...), only the Kbuild file is read.

XTASK := cargo xtask

.PHONY: run test test-host test-vm quick bench shell vm setup kernel module clean

run:
	$(XTASK) run

test:
	$(XTASK) test

test-host:
	$(XTASK) test-host

test-vm:
	$(XTASK) test-vm

quick:
	$(XTASK) quick

bench:
	$(XTASK) bench

shell:
	$(XTASK) shell

# CMD reaches the guest exactly as written: $(value CMD) is the text before make expands any
# `$` in it, and it is handed to the shell in single quotes (each ' written as '\'').
vm:
	@$(if $(value CMD),true,echo "usage: make vm CMD='command'"; exit 2)
	@$(XTASK) vm '$(subst ','\'',$(value CMD))'

setup:
	$(XTASK) setup

kernel:
	$(XTASK) kernel

module:
	$(XTASK) module

clean:
	cargo clean
	rm -rf $(HOME)/.cache/rust-nf/module-*
