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
#define RNF_CMD_GET_TABLE 3
#define RNF_CMD_REPLACE_TABLE 4
#define RNF_CMD_REPLACE_TABLES 5
#define RNF_CMD_CT_DUMP 6
#define RNF_CMD_CT_FLUSH 7
#define RNF_CMD_CT_STATS 8
#define RNF_CMD_RECENT_DUMP 9
#define RNF_CMD_RECENT_SET 10
#define RNF_CMD_CT_SYSCTL_GET 11
#define RNF_CMD_CT_SYSCTL_SET 12
#define RNF_CMD_CT_DELETE 13
#define RNF_CMD_CT_EVENT 14
#define RNF_CMD_UPDATE_TABLE 15
#define RNF_CMD_UPDATE_TABLES 16
#define RNF_MCGRP_CT_EVENTS "ct-events"

#define RNF_A_VERSION 1
#define RNF_A_NETNS_COOKIE 2
#define RNF_A_HOOKS 3
#define RNF_A_HOOK_SLOT 4
#define RNF_A_TABLE 5
#define RNF_A_GENERATION 6
#define RNF_A_CHAIN 7
#define RNF_A_RULE 8
#define RNF_A_TABLE_FLAGS 9
#define RNF_A_CREATED 10
#define RNF_A_RECENT_NAME 22
#define RNF_A_RECENT_OP 23
#define RNF_A_RECENT_ADDR 24
#define RNF_A_SYSCTL_KEY 26
#define RNF_A_SYSCTL_VALUE 27
#define RNF_A_CT_DEL_ID 29
#define RNF_A_CT_DEL_TUPLE 30
#define RNF_A_MAX 30
#define RNF_A_OP 33
#define RNF_NUM_SYSCTLS 22
#define RNF_RECENT_NAME_LEN 200

/* inside RNF_A_CHAIN */
#define RNF_C_NAME 1
#define RNF_C_POLICY 2
#define RNF_C_PACKETS 3
#define RNF_C_BYTES 4
#define RNF_C_MAX 4

/* inside RNF_A_RULE */
#define RNF_E_CHAIN 1
#define RNF_E_PACKETS 2
#define RNF_E_BYTES 3
#define RNF_E_SPEC 4
#define RNF_E_ID 5
#define RNF_E_MAX 5

/* inside RNF_A_OP */
#define RNF_O_KIND 1
#define RNF_O_CHAIN 2
#define RNF_O_POS 3
#define RNF_O_PACKETS 4
#define RNF_O_BYTES 5
#define RNF_O_SPEC 6
#define RNF_O_NAME 7
#define RNF_O_POLICY 8
#define RNF_O_RULE 9
#define RNF_O_CHAIN_NAME 10
#define RNF_O_MAX 10
/* RNF_O_KIND values: insert 1 .. define chain 8 */
#define RNF_OP_KIND_MAX 8

/* inside RNF_E_SPEC */
#define RNF_R_SRC 1
#define RNF_R_DST 2
#define RNF_R_IN 3
#define RNF_R_OUT 4
#define RNF_R_PROTO 5
#define RNF_R_FLAGS 6
#define RNF_R_MATCH 7
#define RNF_R_TARGET 8
#define RNF_R_MAX 8

#define RNF_NUM_TABLES 5
#define RNF_MAX_CHAIN_NAME 28

/* RNF_A_TABLE_FLAGS of an update: TF_CHECK_GENERATION | TF_RESET_POLICY_COUNTERS | TF_CURRENT */
#define RNF_TF_UPDATE_MASK 0x1a
#define RNF_MAX_COMMENT 255

#define RNF_NUM_HOOKS 21

#endif /* RNF_WIRE_H */
