/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between rust_nf's C shim (rnf_shim.c) and its Rust side.
 *
 * The Rust declarations are generated from this file by bindgen (`cargo xtask module` writes
 * rust_nf/ffi/shim_gen.rs before every module build), so the compiler checks every call the
 * Rust side makes against the prototypes here, and every function the Rust side implements
 * against the rnf_rust_*_fn types below. Only rust_nf/ffi/ uses them.
 */
#ifndef RNF_SHIM_H
#define RNF_SHIM_H

#ifdef RNF_BINDGEN
/* bindgen reads this file alone, without the kernel's headers. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef u32 __be32;
#define __percpu
#else
#include <linux/types.h>
#endif

struct genl_info;
struct net;
struct netlink_callback;
struct nf_hook_state;
struct sk_buff;

/* What the packet path reads of an skb besides its bytes (see rnf_skb_head()). */
struct rnf_pkt_head {
	u32 skb_len;   /* skb->len */
	u32 ip_len;    /* skb_ip_totlen(): the header's total length, the skb's for BIG TCP */
	u32 mark;      /* skb->mark */
	u32 copied;    /* bytes copied from the network header on */
	char in[16];   /* input device name, NUL-padded; empty when none */
	char out[16];  /* output device name */
	u32 flags;     /* RNF_HEAD_* */
	u8 mac_src[6]; /* the Ethernet source address, with RNF_HEAD_MAC */
	u16 pkt_type;  /* skb->pkt_type */
};

/* rnf_pkt_head.flags */
#define RNF_HEAD_OUT_LOOPBACK 1 /* the output device is a loopback device */
#define RNF_HEAD_FORWARDED 2 /* an output device and no local socket of this netns */
#define RNF_HEAD_MAC 4 /* came in on Ethernet with its link-layer header in front: mac_src */

/* The locks and the collector of one namespace's connection table (see rnf_ct_mem_new()). */
struct rnf_ct_mem;

/* ---- implemented in Rust -------------------------------------------------------------- */

typedef void *rnf_rust_net_init_fn(struct net *net);
typedef void rnf_rust_net_exit_fn(void *state);
typedef unsigned int rnf_rust_hook_fn(void *state, unsigned int slot, struct sk_buff *skb,
				      const struct nf_hook_state *st);
typedef int rnf_rust_hook_spec_fn(unsigned int slot, unsigned int *hooknum, int *priority,
				  unsigned int *stage);
typedef int rnf_rust_genl_doit_fn(u8 cmd, struct genl_info *info, void *state);
typedef int rnf_rust_genl_dumpit_fn(u8 cmd, struct sk_buff *skb, struct netlink_callback *cb,
				    void *state);
/* One run of a connection table's collector; returns the delay to the next run (jiffies). */
typedef unsigned long rnf_rust_ct_gc_fn(void *table);
/* An interface went down (addr 0) or lost the address addr (host order): MASQUERADE's flows
 * through it go. Process context, RTNL held. */
typedef void rnf_rust_masq_down_fn(void *state, int ifindex, u32 addr);

rnf_rust_net_init_fn rnf_rust_net_init;
rnf_rust_net_exit_fn rnf_rust_net_exit;
rnf_rust_hook_fn rnf_rust_hook;
rnf_rust_hook_spec_fn rnf_rust_hook_spec;
rnf_rust_genl_doit_fn rnf_rust_genl_doit;
rnf_rust_genl_dumpit_fn rnf_rust_genl_dumpit;
rnf_rust_ct_gc_fn rnf_rust_ct_gc;
rnf_rust_masq_down_fn rnf_rust_masq_down;

/* ---- implemented in C, called from Rust ----------------------------------------------- */

int rnf_shim_init(void);
void rnf_shim_exit(void);

void __percpu *rnf_pcpu_alloc(unsigned int n);
void rnf_pcpu_free(void __percpu *base);
void rnf_pcpu_add(void __percpu *base, unsigned int idx, u64 bytes);
void rnf_pcpu_sum(void __percpu *base, unsigned int idx, u64 *packets, u64 *bytes);
void rnf_pcpu_set(void __percpu *base, unsigned int idx, u64 packets, u64 bytes);

void rnf_skb_head(const struct sk_buff *skb, const struct nf_hook_state *st,
		  struct rnf_pkt_head *head, u8 *buf, unsigned int max);
unsigned int rnf_skb_len(const struct sk_buff *skb, unsigned int *from_net);
void rnf_skb_set_mark(struct sk_buff *skb, u32 mark);
void rnf_skb_set_priority(struct sk_buff *skb, u32 priority);
u8 *rnf_skb_writable(struct sk_buff *skb, unsigned int len);
unsigned int rnf_skb_read(const struct sk_buff *skb, unsigned int offset, u8 *buf,
			  unsigned int max);
u32 rnf_random_u32(void);
unsigned long rnf_jiffies(void);
unsigned int rnf_hz(void);
unsigned int rnf_cpu_id(void);
unsigned int rnf_nr_cpu_ids(void);
u32 rnf_addr_type_bit(const struct nf_hook_state *st, __be32 addr, int dev);
u32 rnf_tcpmss_path_mtu(const struct sk_buff *skb, const struct nf_hook_state *st);
int rnf_skb_owner(const struct sk_buff *skb, const struct nf_hook_state *st, u32 *uid, u32 *gid);
int rnf_skb_owner_in_groups(const struct sk_buff *skb, const struct nf_hook_state *st, u32 min, u32 max);
int rnf_logger_get(void);
void rnf_logger_put(void);
unsigned int rnf_nfqueue_verdict(const struct sk_buff *skb, u16 num, u16 total, int flags);
void rnf_nflog(const struct nf_hook_state *st, const struct sk_buff *skb, u16 group, u16 threshold,
	       u32 len, int copy_len, const char *prefix);
void rnf_log(const struct nf_hook_state *st, const struct sk_buff *skb, u8 level, u8 flags,
	     const char *prefix);
void rnf_reject(const struct nf_hook_state *st, struct sk_buff *skb, int code);
int rnf_reroute(const struct nf_hook_state *st, struct sk_buff *skb);
int rnf_skb_csum_partial(const struct sk_buff *skb);
u8 *rnf_skb_expand(struct sk_buff *skb, unsigned int extra, unsigned int *len);
int rnf_skb_resize(struct sk_buff *skb, unsigned int len);
void rnf_skb_dst_drop(struct sk_buff *skb);
void rnf_skb_orphan_demuxed(struct sk_buff *skb);
int rnf_out_ifindex(const struct nf_hook_state *st);
u32 rnf_nat_masq_addr(const struct nf_hook_state *st, const struct sk_buff *skb, int *ifindex);
u32 rnf_nat_redirect_addr(const struct nf_hook_state *st, const struct sk_buff *skb);
u64 rnf_net_cookie(const struct net *net);
int rnf_l4_csum_bad(struct sk_buff *skb, const struct nf_hook_state *st, unsigned int dataoff,
		    u8 proto);
void rnf_ct_table_full_warn(void);
unsigned int rnf_ct_max(void);
unsigned int rnf_ct_buckets(void);

struct rnf_ct_mem *rnf_ct_mem_new(void);
void rnf_ct_mem_start(struct rnf_ct_mem *mem, void *table);
void rnf_ct_mem_free(struct rnf_ct_mem *mem);
/* A spinlock taken with bottom halves disabled (see rust_nf/ffi/lock.rs). */
struct rnf_bh_lock;
struct rnf_bh_lock *rnf_bh_lock_new(void);
void rnf_bh_lock_free(struct rnf_bh_lock *l);
void rnf_bh_lock(struct rnf_bh_lock *l);
void rnf_bh_unlock(struct rnf_bh_lock *l);
void rnf_ct_mem_set_net(struct rnf_ct_mem *mem, const struct genl_info *info);
int rnf_ct_events_listening(const struct rnf_ct_mem *mem);
void rnf_ct_event_push(struct rnf_ct_mem *mem, const u8 *rec, unsigned int len);
/* Bytes of one encoded event at most. */
#define RNF_EV_BYTES 192
void rnf_ct_lock_table(struct rnf_ct_mem *mem);
void rnf_ct_unlock_table(struct rnf_ct_mem *mem);
void rnf_ct_lock_entry(struct rnf_ct_mem *mem, u32 idx);
void rnf_ct_unlock_entry(struct rnf_ct_mem *mem, u32 idx);
unsigned int rnf_max_rules(void);
unsigned int rnf_max_rule_bytes(void);

const void *rnf_genl_payload(const struct genl_info *info, unsigned int *len);
void rnf_genl_set_err_msg(struct genl_info *info, const char *msg);
void rnf_genl_set_err_copy(struct genl_info *info, const char *msg);
void rnf_genl_test_hold(const struct genl_info *info);
int rnf_genl_net_admin(const struct genl_info *info);
void rnf_cond_resched(void);
u64 rnf_ktime_ns(void);
void *rnf_deferred_alloc(void);
void rnf_deferred_release(void *slot);
void rnf_deferred_queue(void *slot, void *p, void (*free)(void *p));
unsigned long rnf_rcu_start_poll(void);
void rnf_rcu_cond_sync(unsigned long cookie);
int rnf_genl_defrag_enable(const struct genl_info *info);
int rnf_genl_init_net(const struct genl_info *info);
void *rnf_genl_reply_begin(struct genl_info *info, u8 cmd, unsigned int len,
			   struct sk_buff **out);
int rnf_genl_reply_send(struct sk_buff *skb, struct genl_info *info);
const void *rnf_dump_payload(const struct netlink_callback *cb, unsigned int *len);
long *rnf_dump_args(struct netlink_callback *cb);
unsigned int rnf_dump_room(const struct sk_buff *skb);
void *rnf_dump_put(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd,
		   unsigned int len);
void rnf_dump_set_err_msg(struct netlink_callback *cb, const char *msg);

#endif /* RNF_SHIM_H */
