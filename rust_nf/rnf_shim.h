/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between rust_nf's C shim (rnf_shim.c) and its Rust side (rust_nf_main.rs and
 * friends). Rust declares the same functions in ffi.rs (C side) and implements the rnf_rust_*
 * ones with #[no_mangle].
 */
#ifndef RNF_SHIM_H
#define RNF_SHIM_H

#include <linux/types.h>

struct genl_info;
struct net;
struct nf_hook_state;
struct sk_buff;

/* ---- implemented in Rust -------------------------------------------------------------- */

void *rnf_rust_net_init(struct net *net);
void rnf_rust_net_exit(void *state);
unsigned int rnf_rust_hook(void *state, unsigned int slot, struct sk_buff *skb,
			   const struct nf_hook_state *st);
int rnf_rust_hook_spec(unsigned int slot, unsigned int *hooknum, int *priority,
		       unsigned int *stage);
int rnf_rust_genl_doit(u8 cmd, struct genl_info *info, void *state);

/* ---- implemented in C, called from Rust ----------------------------------------------- */

int rnf_shim_init(void);
void rnf_shim_exit(void);

void __percpu *rnf_pcpu_alloc(unsigned int n);
void rnf_pcpu_free(void __percpu *base);
void rnf_pcpu_add(void __percpu *base, unsigned int idx, u64 bytes);
void rnf_pcpu_sum(void __percpu *base, unsigned int idx, u64 *packets, u64 *bytes);
void rnf_pcpu_zero(void __percpu *base, unsigned int idx);

unsigned int rnf_skb_len(const struct sk_buff *skb);
unsigned int rnf_skb_copy_network(const struct sk_buff *skb, u8 *buf, unsigned int max);
void rnf_state_ifnames(const struct nf_hook_state *st, char *in, char *out);
u32 rnf_skb_mark(const struct sk_buff *skb);
void rnf_skb_set_mark(struct sk_buff *skb, u32 mark);
u32 rnf_random_u32(void);
unsigned long rnf_jiffies(void);
unsigned int rnf_hz(void);
u32 rnf_addr_type_bit(const struct nf_hook_state *st, __be32 addr, int dev);
void rnf_log(const struct nf_hook_state *st, const struct sk_buff *skb, u8 level, u8 flags,
	     const char *prefix);
void rnf_reject(const struct nf_hook_state *st, struct sk_buff *skb, int code);
int rnf_reroute(const struct nf_hook_state *st, struct sk_buff *skb);
void rnf_genl_set_err_copy(struct genl_info *info, const char *msg);
u64 rnf_net_cookie(const struct net *net);

const void *rnf_genl_payload(const struct genl_info *info, unsigned int *len);
void rnf_genl_set_err_msg(struct genl_info *info, const char *msg);
void *rnf_genl_reply_begin(struct genl_info *info, u8 cmd, unsigned int len,
			   struct sk_buff **out);
int rnf_genl_reply_send(struct sk_buff *skb, struct genl_info *info);

#endif /* RNF_SHIM_H */
