/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rust_nf generic netlink numbering, for the C shim's family and policy tables.
 *
 * The Rust side (engine/src/wire.rs) is the reference; the host test
 * `wire_header_matches_engine` in userspace-ctl checks that every number here agrees with it.
 */
#ifndef RNF_WIRE_H
#define RNF_WIRE_H

#define RNF_FAMILY_NAME "rust_nf"
#define RNF_FAMILY_VERSION 1

#define RNF_CMD_GET_STATUS 1
#define RNF_CMD_ZERO_COUNTERS 2

#define RNF_A_VERSION 1
#define RNF_A_NETNS_COOKIE 2
#define RNF_A_HOOKS 3
#define RNF_A_HOOK_SLOT 4
#define RNF_A_MAX 4

#define RNF_NUM_HOOKS 21

#endif /* RNF_WIRE_H */
