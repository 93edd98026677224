// SPDX-License-Identifier: GPL-2.0
/*
 * rust_nf C shim: the netfilter, pernet, per-CPU and generic netlink pieces that the kernel's
 * Rust bindings lack (nf_hook_ops, net_generic, this_cpu_*, genl families with policies, and
 * the static inline helpers around them), behind a narrow extern "C" API.
 *
 * No policy lives here: which hooks exist comes from the engine's table (rnf_rust_hook_spec),
 * what a packet or a command does is decided in Rust (rnf_rust_hook, rnf_rust_genl_doit).
 */

#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/inetdevice.h>
#include <net/tcp.h>
#include <linux/ip.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/skbuff.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>
#include <net/netfilter/ipv4/nf_reject.h>
#include <net/netfilter/nf_log.h>
#include <net/netfilter/nf_queue.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <net/netns/generic.h>
#include <net/route.h>
#include <net/inet_sock.h>
#include <net/sock.h>

#include "rnf_shim.h"
#include "rnf_wire.h"

static struct genl_family rnf_genl_family;

/* ---- per network namespace state ------------------------------------------------------ */

struct rnf_net {
	void *rust; /* owned by the Rust side, see rnf_rust_net_init() */
	bool defrag; /* the namespace tracks connections: IPv4 defragmentation is on */
};

static unsigned int rnf_net_id __read_mostly;

static void *rnf_net_state(const struct net *net)
{
	struct rnf_net *rn = net_generic(net, rnf_net_id);

	return READ_ONCE(rn->rust);
}

/* ---- hooks ---------------------------------------------------------------------------- */

/*
 * One trampoline per stage, so that `nft list hooks` names what each hook is. priv carries the
 * hook's slot in the engine's table.
 */
#define RNF_HOOKFN(stage)                                                           \
	static unsigned int rnf_##stage##_hook(void *priv, struct sk_buff *skb,      \
					       const struct nf_hook_state *state)     \
	{                                                                           \
		void *st = rnf_net_state(state->net);                               \
		if (unlikely(!st))                                                  \
			return NF_ACCEPT;                                           \
		return rnf_rust_hook(st, (unsigned int)(uintptr_t)priv, skb, state); \
	}

RNF_HOOKFN(raw)
RNF_HOOKFN(conntrack)
RNF_HOOKFN(mangle)
RNF_HOOKFN(nat_dst)
RNF_HOOKFN(filter)
RNF_HOOKFN(security)
RNF_HOOKFN(nat_src)
RNF_HOOKFN(confirm)

/* Indexed by the engine's Stage numbering. */
static nf_hookfn *const rnf_stage_fns[] = {
	rnf_raw_hook,	 rnf_conntrack_hook, rnf_mangle_hook,  rnf_nat_dst_hook,
	rnf_filter_hook, rnf_security_hook,  rnf_nat_src_hook, rnf_confirm_hook,
};

/* Filled once at module load from the engine's table; then read-only. */
static struct nf_hook_ops rnf_ops[RNF_NUM_HOOKS] __read_mostly;

static int rnf_fill_ops(void)
{
	unsigned int i, hooknum, stage;
	int prio;

	for (i = 0; i < RNF_NUM_HOOKS; i++) {
		if (rnf_rust_hook_spec(i, &hooknum, &prio, &stage) ||
		    stage >= ARRAY_SIZE(rnf_stage_fns) || hooknum >= NF_INET_NUMHOOKS)
			return -EINVAL;
		rnf_ops[i] = (struct nf_hook_ops){
			.hook = rnf_stage_fns[stage],
			.pf = NFPROTO_IPV4,
			.hooknum = hooknum,
			.priority = prio,
			.priv = (void *)(uintptr_t)i,
		};
	}
	return 0;
}

static int __net_init rnf_net_init(struct net *net)
{
	struct rnf_net *rn = net_generic(net, rnf_net_id);
	void *st;
	int err;

	st = rnf_rust_net_init(net);
	if (!st)
		return -ENOMEM;
	WRITE_ONCE(rn->rust, st);
	err = nf_register_net_hooks(net, rnf_ops, RNF_NUM_HOOKS);
	if (err) {
		/*
		 * The hooks registered before the failure were live: packets may be inside
		 * rnf_rust_hook() with this state. nf_register_net_hooks() has unregistered them;
		 * wait until no such packet can remain before freeing.
		 */
		WRITE_ONCE(rn->rust, NULL);
		synchronize_net();
		rnf_rust_net_exit(st);
	}
	return err;
}

/*
 * Hooks go first; the netns core waits for an RCU grace period between pre_exit and exit, so
 * no packet is still inside rnf_rust_hook() when exit frees the state.
 */
static void __net_exit rnf_net_pre_exit(struct net *net)
{
	nf_unregister_net_hooks(net, rnf_ops, RNF_NUM_HOOKS);
}

static void __net_exit rnf_net_exit(struct net *net)
{
	struct rnf_net *rn = net_generic(net, rnf_net_id);
	void *st = rn->rust;

	WRITE_ONCE(rn->rust, NULL);
	if (st)
		rnf_rust_net_exit(st);
	if (rn->defrag)
		nf_defrag_ipv4_disable(net);
}

static struct pernet_operations rnf_net_ops = {
	.init = rnf_net_init,
	.pre_exit = rnf_net_pre_exit,
	.exit = rnf_net_exit,
	.id = &rnf_net_id,
	.size = sizeof(struct rnf_net),
};

/* ---- per-CPU counters ----------------------------------------------------------------- */

struct rnf_counter {
	u64 packets;
	u64 bytes;
};

void __percpu *rnf_pcpu_alloc(unsigned int n)
{
	/* Charged to the requester: a user namespace's owner may configure its own netns. */
	return __alloc_percpu_gfp(array_size(n, sizeof(struct rnf_counter)),
				  __alignof__(struct rnf_counter), GFP_KERNEL_ACCOUNT);
}

void rnf_pcpu_free(void __percpu *base)
{
	free_percpu(base);
}

/* Packet path: no lock, no shared cache line; this_cpu ops are safe against preemption. */
void rnf_pcpu_add(void __percpu *base, unsigned int idx, u64 bytes)
{
	struct rnf_counter __percpu *c = (struct rnf_counter __percpu *)base + idx;

	this_cpu_inc(c->packets);
	this_cpu_add(c->bytes, bytes);
}

/*
 * Sets a counter that nothing counts into (a slot just taken from a table's free slots, a
 * grace period after the last version that used it went): the first possible CPU's share
 * holds the value, the others' are zero.
 */
void rnf_pcpu_set(void __percpu *base, unsigned int idx, u64 packets, u64 bytes)
{
	struct rnf_counter __percpu *c = (struct rnf_counter __percpu *)base + idx;
	bool first = true;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct rnf_counter *pc = per_cpu_ptr(c, cpu);

		WRITE_ONCE(pc->packets, first ? packets : 0);
		WRITE_ONCE(pc->bytes, first ? bytes : 0);
		first = false;
	}
}

void rnf_pcpu_sum(void __percpu *base, unsigned int idx, u64 *packets, u64 *bytes)
{
	struct rnf_counter __percpu *c = (struct rnf_counter __percpu *)base + idx;
	u64 p = 0, b = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct rnf_counter *pc = per_cpu_ptr(c, cpu);

		p += READ_ONCE(pc->packets);
		b += READ_ONCE(pc->bytes);
	}
	*packets = p;
	*bytes = b;
}

/* ---- packet access for the packet path ------------------------------------------------- */

/*
 * What the packet path reads of a packet, in one call: lengths, mark, devices, and up to `max`
 * bytes from the network header on (fewer when the packet is shorter).
 */
void rnf_skb_head(const struct sk_buff *skb, const struct nf_hook_state *st,
		  struct rnf_pkt_head *head, u8 *buf, unsigned int max)
{
	int off = skb_network_offset(skb);
	unsigned int n = 0;

	memset(head, 0, sizeof(*head));
	head->skb_len = skb->len;
	head->mark = skb->mark;
	if (st->in)
		strscpy(head->in, st->in->name, sizeof(head->in));
	if (st->out)
		strscpy(head->out, st->out->name, sizeof(head->out));
	if (off >= 0 && skb->len > (unsigned int)off) {
		n = min(max, skb->len - (unsigned int)off);
		if (n && skb_copy_bits(skb, off, buf, n))
			n = 0;
	}
	head->copied = n;
	if (st->out && (st->out->flags & IFF_LOOPBACK))
		head->flags |= RNF_HEAD_OUT_LOOPBACK;
	/* xt_recent's test for a packet on its way through (its TTL was decremented here). */
	if (st->out && (!skb->sk || !net_eq(st->net, sock_net(skb->sk))))
		head->flags |= RNF_HEAD_FORWARDED;
	head->pkt_type = skb->pkt_type;
	/* xt_mac's test for a link-layer header to read, at the hooks -m mac may be used from. */
	if (st->hook != NF_INET_LOCAL_OUT && st->hook != NF_INET_POST_ROUTING &&
	    skb->dev && skb->dev->type == ARPHRD_ETHER && skb_mac_header_was_set(skb) &&
	    skb_mac_header_len(skb) >= ETH_HLEN) {
		memcpy(head->mac_src, eth_hdr(skb)->h_source, ETH_ALEN);
		head->flags |= RNF_HEAD_MAC;
	}
	/* skb_ip_totlen() needs the header in the linear area; the copy has it. */
	if (n >= sizeof(struct iphdr)) {
		const struct iphdr *iph = (const struct iphdr *)buf;

		head->ip_len = iph_totlen(skb, iph);
	}
}

/* skb->len, and into *from_net the bytes from the network header on. */
unsigned int rnf_skb_len(const struct sk_buff *skb, unsigned int *from_net)
{
	int off = skb_network_offset(skb);

	*from_net = off >= 0 && skb->len > (unsigned int)off ? skb->len - (unsigned int)off : 0;
	return skb->len;
}

void rnf_skb_set_mark(struct sk_buff *skb, u32 mark)
{
	skb->mark = mark;
}

void rnf_skb_set_priority(struct sk_buff *skb, u32 priority)
{
	skb->priority = priority;
}

/* Copies up to `max` bytes from `offset` after the network header; returns how many. */
unsigned int rnf_skb_read(const struct sk_buff *skb, unsigned int offset, u8 *buf,
			  unsigned int max)
{
	int off = skb_network_offset(skb);
	unsigned int start, n;

	if (off < 0 || offset > INT_MAX - (unsigned int)off)
		return 0;
	start = (unsigned int)off + offset;
	if (start >= skb->len)
		return 0;
	n = min(max, skb->len - start);
	if (skb_copy_bits(skb, start, buf, n))
		return 0;
	return n;
}

/*
 * The first `len` bytes from the network header on, linear and not shared with a clone (as
 * skb_ensure_writable makes them), or NULL when the packet is shorter or memory runs out.
 * The pointer is valid until the skb is changed again.
 */
u8 *rnf_skb_writable(struct sk_buff *skb, unsigned int len)
{
	int off = skb_network_offset(skb);

	if (off < 0 || len > INT_MAX - off)
		return NULL;
	if (skb_ensure_writable(skb, off + (int)len))
		return NULL;
	return skb_network_header(skb);
}

/*
 * Connection tracking's checks of a packet's transport checksum, as nf_conntrack does with
 * nf_conntrack_checksum=1: at PREROUTING only (locally made packets are trusted), for TCP,
 * UDP and ICMP. Nonzero when the checksum is wrong.
 */
int rnf_l4_csum_bad(struct sk_buff *skb, const struct nf_hook_state *st, unsigned int dataoff,
		    u8 proto)
{
	int off = skb_network_offset(skb);

	if (st->hook != NF_INET_PRE_ROUTING || off < 0)
		return 0;
	dataoff += off;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP)
		return 0;
	if (proto == IPPROTO_UDP && dataoff + sizeof(struct udphdr) <= skb->len) {
		struct udphdr _uh, *uh = skb_header_pointer(skb, dataoff, sizeof(_uh), &_uh);

		/* A zero UDP checksum means none was computed. */
		if (uh && !uh->check)
			return 0;
	}
	return nf_checksum(skb, st->hook, dataoff, proto, NFPROTO_IPV4) != 0;
}

void rnf_ct_table_full_warn(void)
{
	net_warn_ratelimited("rust_nf: conntrack table full, dropping packet\n");
}

/* ---- connection tables: locks and collector ------------------------------------------ */

#define RNF_CT_ENTRY_LOCKS 256

/*
 * Connection events (`conntrack -E`): the packet path may not allocate, so it puts each event,
 * already encoded by the Rust side (one A_CT_FLOW nest), into a fixed ring; a work item sends
 * them in as few multicast messages as fit. When the ring is full, events are lost and
 * counted, as ctnetlink's are when a listener's buffer is full.
 */
#define RNF_EV_SLOTS 512

struct rnf_ct_mem {
	spinlock_t table;                          /* the table's writers */
	spinlock_t entry[RNF_CT_ENTRY_LOCKS];      /* protocol state, by entry index */
	struct delayed_work gc;
	void *rust;                                /* the Rust table, for the collector */
	struct net *net;                           /* its namespace, for events */
	struct work_struct events;
	spinlock_t ev_lock;
	unsigned int ev_head, ev_count;
	unsigned long ev_lost;
	u16 ev_len[RNF_EV_SLOTS];
	u8 ev_buf[RNF_EV_SLOTS][RNF_EV_BYTES];
};

static void rnf_ct_events_work(struct work_struct *work)
{
	struct rnf_ct_mem *mem = container_of(work, struct rnf_ct_mem, events);
	static const unsigned int room = NLMSG_GOODSIZE - GENL_HDRLEN - NLMSG_HDRLEN - 64;

	for (;;) {
		struct sk_buff *skb;
		unsigned int used = 0, n = 0;
		void *hdr;

		skb = genlmsg_new(room, GFP_KERNEL);
		hdr = skb ? genlmsg_put(skb, 0, 0, &rnf_genl_family, 0, RNF_CMD_CT_EVENT) : NULL;
		if (!hdr) {
			/* Out of memory: the queued events are lost (and counted), so that the
			 * next one starts the work again. */
			nlmsg_free(skb);
			spin_lock_bh(&mem->ev_lock);
			mem->ev_lost += mem->ev_count;
			mem->ev_count = 0;
			spin_unlock_bh(&mem->ev_lock);
			return;
		}
		spin_lock_bh(&mem->ev_lock);
		while (mem->ev_count) {
			unsigned int i = mem->ev_head;
			unsigned int len = mem->ev_len[i];

			if (used + len > room)
				break;
			skb_put_data(skb, mem->ev_buf[i], len);
			used += len;
			mem->ev_head = (i + 1) % RNF_EV_SLOTS;
			mem->ev_count--;
			n++;
		}
		spin_unlock_bh(&mem->ev_lock);
		if (!n) {
			nlmsg_free(skb);
			return;
		}
		genlmsg_end(skb, hdr);
		genlmsg_multicast_netns(&rnf_genl_family, mem->net, skb, 0, 0, GFP_KERNEL);
	}
}

/* Whether anyone in the table's namespace listens to connection events. */
int rnf_ct_events_listening(const struct rnf_ct_mem *mem)
{
	struct net *net = READ_ONCE(mem->net);

	return net && genl_has_listeners(&rnf_genl_family, net, 0);
}

/* Queues one encoded event (any context; never allocates). */
void rnf_ct_event_push(struct rnf_ct_mem *mem, const u8 *rec, unsigned int len)
{
	bool kick;

	if (len > RNF_EV_BYTES)
		return;
	spin_lock_bh(&mem->ev_lock);
	if (mem->ev_count == RNF_EV_SLOTS) {
		mem->ev_lost++;
		spin_unlock_bh(&mem->ev_lock);
		return;
	}
	memcpy(mem->ev_buf[(mem->ev_head + mem->ev_count) % RNF_EV_SLOTS], rec, len);
	mem->ev_len[(mem->ev_head + mem->ev_count) % RNF_EV_SLOTS] = len;
	kick = mem->ev_count++ == 0;
	spin_unlock_bh(&mem->ev_lock);
	if (kick)
		queue_work(system_wq, &mem->events);
}

/* Events go to listeners in the namespace of the request that started tracking. */
void rnf_ct_mem_set_net(struct rnf_ct_mem *mem, const struct genl_info *info)
{
	WRITE_ONCE(mem->net, genl_info_net(info));
}

static void rnf_ct_gc_work(struct work_struct *work)
{
	struct rnf_ct_mem *mem = container_of(to_delayed_work(work), struct rnf_ct_mem, gc);
	unsigned long delay = rnf_rust_ct_gc(mem->rust);

	queue_delayed_work(system_power_efficient_wq, &mem->gc, delay);
}

/* Locks and an idle collector; NULL when memory runs out. */
struct rnf_ct_mem *rnf_ct_mem_new(void)
{
	struct rnf_ct_mem *mem = kvzalloc(sizeof(*mem), GFP_KERNEL_ACCOUNT);
	int i;

	if (!mem)
		return NULL;
	spin_lock_init(&mem->table);
	for (i = 0; i < RNF_CT_ENTRY_LOCKS; i++)
		spin_lock_init(&mem->entry[i]);
	INIT_DELAYED_WORK(&mem->gc, rnf_ct_gc_work);
	INIT_WORK(&mem->events, rnf_ct_events_work);
	spin_lock_init(&mem->ev_lock);
	return mem;
}

/* Starts the collector of `table` (which must outlive the collector: rnf_ct_mem_free()). */
void rnf_ct_mem_start(struct rnf_ct_mem *mem, void *table)
{
	mem->rust = table;
	queue_delayed_work(system_power_efficient_wq, &mem->gc, HZ);
}

/* Stops the collector (waiting for a run in progress) and frees the locks. */
void rnf_ct_mem_free(struct rnf_ct_mem *mem)
{
	if (!mem)
		return;
	disable_delayed_work_sync(&mem->gc);
	disable_work_sync(&mem->events);
	kvfree(mem);
}

struct rnf_bh_lock {
	spinlock_t lock;
};

struct rnf_bh_lock *rnf_bh_lock_new(void)
{
	struct rnf_bh_lock *l = kmalloc(sizeof(*l), GFP_KERNEL_ACCOUNT);

	if (l)
		spin_lock_init(&l->lock);
	return l;
}

void rnf_bh_lock_free(struct rnf_bh_lock *l)
{
	kfree(l);
}

void rnf_bh_lock(struct rnf_bh_lock *l)
{
	spin_lock_bh(&l->lock);
}

void rnf_bh_unlock(struct rnf_bh_lock *l)
{
	spin_unlock_bh(&l->lock);
}

void rnf_ct_lock_table(struct rnf_ct_mem *mem)
{
	spin_lock_bh(&mem->table);
}

void rnf_ct_unlock_table(struct rnf_ct_mem *mem)
{
	spin_unlock_bh(&mem->table);
}

void rnf_ct_lock_entry(struct rnf_ct_mem *mem, u32 idx)
{
	spin_lock_bh(&mem->entry[idx % RNF_CT_ENTRY_LOCKS]);
}

void rnf_ct_unlock_entry(struct rnf_ct_mem *mem, u32 idx)
{
	spin_unlock_bh(&mem->entry[idx % RNF_CT_ENTRY_LOCKS]);
}

u32 rnf_random_u32(void)
{
	return get_random_u32();
}

unsigned long rnf_jiffies(void)
{
	return jiffies;
}

int rnf_genl_net_admin(const struct genl_info *info)
{
	return info->user_ptr[0] != NULL;
}

void rnf_cond_resched(void)
{
	cond_resched();
}

/* ---- freeing after a grace period ---------------------------------------------------- */

/*
 * A replaced table version is freed by a worker once a grace period that starts at its
 * replacement is over (queue_rcu_work); the writer does not wait. The slot is allocated
 * while the change can still fail, so that publishing cannot.
 */
static struct workqueue_struct *rnf_free_wq;

struct rnf_deferred {
	struct rcu_work rw;
	void *p;
	void (*free)(void *p);
};

static void rnf_deferred_fn(struct work_struct *w)
{
	struct rnf_deferred *d = container_of(to_rcu_work(w), struct rnf_deferred, rw);

	d->free(d->p);
	kfree(d);
}

void *rnf_deferred_alloc(void)
{
	return kzalloc(sizeof(struct rnf_deferred), GFP_KERNEL_ACCOUNT);
}

void rnf_deferred_release(void *slot)
{
	kfree(slot);
}

void rnf_deferred_queue(void *slot, void *p, void (*free)(void *p))
{
	struct rnf_deferred *d = slot;

	d->p = p;
	d->free = free;
	INIT_RCU_WORK(&d->rw, rnf_deferred_fn);
	queue_rcu_work(rnf_free_wq, &d->rw);
}

/* Every version queued so far is freed (its grace period's callback has queued the work,
 * which the workqueue's destruction runs), before the module's code goes. */
static void rnf_free_drain(void)
{
	rcu_barrier();
	destroy_workqueue(rnf_free_wq);
	rnf_free_wq = NULL;
}

u64 rnf_ktime_ns(void)
{
	return ktime_get_ns();
}

unsigned long rnf_rcu_start_poll(void)
{
	return start_poll_synchronize_rcu();
}

void rnf_rcu_cond_sync(unsigned long cookie)
{
	cond_synchronize_rcu(cookie);
}

unsigned int rnf_hz(void)
{
	return HZ;
}

/* The CPU this runs on, for per-CPU statistics (a stale answer after a migration only puts a
 * count on another CPU's line). */
unsigned int rnf_cpu_id(void)
{
	return raw_smp_processor_id();
}

unsigned int rnf_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/*
 * The RTN_* type of `addr` as a bit (xt_addrtype's match_type): dev 0 = any device, 1 = the
 * input device, 2 = the output device.
 */
/*
 * TCPMSS --clamp-mss-to-pmtu: the smaller of the packet's route MTU and the MTU of the route
 * back to its source (xt_TCPMSS's tcpmss_reverse_mtu); 0 without a route (the target then
 * drops the packet, as the kernel cannot clamp it).
 */
u32 rnf_tcpmss_path_mtu(const struct sk_buff *skb, const struct nf_hook_state *st)
{
	const struct dst_entry *dst = skb_dst(skb);
	struct rtable *rt = NULL;
	struct flowi fl;
	u32 in_mtu = ~0U;

	if (!dst)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.u.ip4.daddr = ip_hdr(skb)->saddr;
	nf_route(st->net, (struct dst_entry **)&rt, &fl, false, NFPROTO_IPV4);
	if (rt) {
		in_mtu = dst_mtu(&rt->dst);
		dst_release(&rt->dst);
	}
	return min(dst_mtu(dst), in_mtu);
}

/*
 * xt_owner's view of a packet's socket: 0 when there is none in this namespace (or it is
 * closed), 1 for a socket without a file, 2 for one with a file, whose fsuid and fsgid in the
 * namespace's user namespace go to *uid and *gid. The socket and file are RCU-freed; the
 * packet path runs under rcu_read_lock().
 */
static const struct file *rnf_owner_file(const struct sk_buff *skb, const struct net *net, int *what)
{
	struct sock *sk = skb_to_full_sk(skb);
	const struct socket *sock;
	const struct file *filp;

	*what = 0;
	if (!sk || !READ_ONCE(sk->sk_socket) || !net_eq(net, sock_net(sk)))
		return NULL;
	*what = 1;
	sock = READ_ONCE(sk->sk_socket);
	filp = sock ? READ_ONCE(sock->file) : NULL;
	if (filp)
		*what = 2;
	return filp;
}

int rnf_skb_owner(const struct sk_buff *skb, const struct nf_hook_state *st, u32 *uid, u32 *gid)
{
	int what;
	const struct file *filp = rnf_owner_file(skb, st->net, &what);

	/* Unmapped ids become (u32)-1, which no rule's range holds (xt_owner compares kuids). */
	if (filp) {
		*uid = from_kuid(st->net->user_ns, filp->f_cred->fsuid);
		*gid = from_kgid(st->net->user_ns, filp->f_cred->fsgid);
	}
	return what;
}

/* Whether one of the socket file's supplementary groups is in [min, max] (xt_owner). */
int rnf_skb_owner_in_groups(const struct sk_buff *skb, const struct nf_hook_state *st, u32 min, u32 max)
{
	int what;
	const struct file *filp = rnf_owner_file(skb, st->net, &what);
	const struct group_info *gi;
	unsigned int i;

	if (!filp)
		return 0;
	gi = filp->f_cred->group_info;
	for (i = 0; gi && i < gi->ngroups; i++) {
		u32 g = from_kgid(st->net->user_ns, gi->gid[i]);

		if (g != (u32)-1 && g >= min && g <= max)
			return 1;
	}
	return 0;
}

u32 rnf_addr_type_bit(const struct nf_hook_state *st, __be32 addr, int dev)
{
	const struct net_device *d = dev == 1 ? st->in : dev == 2 ? st->out : NULL;
	unsigned int type = inet_dev_addr_type(st->net, d, addr);

	return type < 32 ? 1u << type : 0;
}

/*
 * A reference on the syslog logger, as xt_LOG's checkentry takes one: loads nf_log_syslog when
 * it is a module and keeps it while a LOG rule exists.
 */
int rnf_logger_get(void)
{
	int ret = nf_logger_find_get(NFPROTO_IPV4, NF_LOG_TYPE_LOG);

	/* As xt_LOG's checkentry: nf_logger_find_get() does not load the logger itself. */
	if (ret) {
		request_module("%s", "nf_log_syslog");
		ret = nf_logger_find_get(NFPROTO_IPV4, NF_LOG_TYPE_LOG);
	}
	return ret;
}

void rnf_logger_put(void)
{
	nf_logger_put(NFPROTO_IPV4, NF_LOG_TYPE_LOG);
}

/* LOG: the kernel's syslog logger prints the same line as iptables' LOG target. */
void rnf_log(const struct nf_hook_state *st, const struct sk_buff *skb, u8 level, u8 flags,
	     const char *prefix)
{
	struct nf_loginfo li = {
		.type = NF_LOG_TYPE_LOG,
		.u = { .log = { .level = level, .logflags = flags } },
	};

	nf_log_packet(st->net, NFPROTO_IPV4, st->hook, skb, st->in, st->out, &li, "%s", prefix);
}

/* NFQUEUE (xt_NFQUEUE's nfqueue_tg_v3): the queue and the bypass flag, as a hook verdict. */
static u32 rnf_nfq_initval __read_mostly;

unsigned int rnf_nfqueue_verdict(const struct sk_buff *skb, u16 num, u16 total, int flags)
{
	u32 queue = num;
	unsigned int ret;

	if (total > 1) {
		if (flags & NFQ_FLAG_CPU_FANOUT) {
			queue = num + raw_smp_processor_id() % total;
		} else {
			u32 initval = READ_ONCE(rnf_nfq_initval);

			/* As xt_NFQUEUE's init_hashrandom: one seed, whichever CPU sets it first. */
			if (unlikely(!initval)) {
				u32 fresh;

				do {
					fresh = get_random_u32();
				} while (!fresh);
				initval = cmpxchg(&rnf_nfq_initval, 0, fresh) ?: fresh;
			}
			queue = nfqueue_hash(skb, num, total, NFPROTO_IPV4, initval);
		}
	}
	ret = NF_QUEUE_NR(queue);
	if (flags & NFQ_FLAG_BYPASS)
		ret |= NF_VERDICT_FLAG_QUEUE_BYPASS;
	return ret;
}

/* NFLOG (xt_NFLOG's nflog_tg): to nfnetlink_log's group, as an NF_LOG_TYPE_ULOG logger sees it. */
void rnf_nflog(const struct nf_hook_state *st, const struct sk_buff *skb, u16 group, u16 threshold,
	       u32 len, int copy_len, const char *prefix)
{
	struct nf_loginfo li = {
		.type = NF_LOG_TYPE_ULOG,
		.u = { .ulog = { .copy_len = len, .group = group, .qthreshold = threshold,
				 .flags = copy_len ? NF_LOG_F_COPY_LEN : 0 } },
	};

	nf_log_packet(st->net, NFPROTO_IPV4, st->hook, skb, st->in, st->out, &li, "%s", prefix);
}

/* After MARK in mangle OUTPUT, like iptable_mangle: the route may depend on the mark. */
int rnf_reroute(const struct nf_hook_state *st, struct sk_buff *skb)
{
	return ip_route_me_harder(st->net, st->sk, skb, RTN_UNSPEC);
}

/* NAT: the transport checksum holds only the pseudo-header sum (CHECKSUM_PARTIAL). */
int rnf_skb_csum_partial(const struct sk_buff *skb)
{
	return skb->ip_summed == CHECKSUM_PARTIAL;
}

/*
 * FTP through NAT: the whole packet from the network header on, linear, private, with at
 * least `extra` bytes of tailroom after it (`*len`: its length). NULL when memory runs out.
 */
u8 *rnf_skb_expand(struct sk_buff *skb, unsigned int extra, unsigned int *len)
{
	int off = skb_network_offset(skb);

	if (off < 0 || skb->len < (unsigned int)off || extra > 0xffff)
		return NULL;
	if (skb_ensure_writable(skb, skb->len))
		return NULL;
	if (skb_tailroom(skb) < extra &&
	    pskb_expand_head(skb, 0, extra - skb_tailroom(skb), GFP_ATOMIC))
		return NULL;
	*len = skb->len - off;
	return skb_network_header(skb);
}

/*
 * After rnf_skb_expand: the packet is now `len` bytes from the network header on (grown into
 * the tailroom, or cut). A received checksum over the old bytes no longer holds: the stack
 * checks the rewritten one instead. Nonzero when `len` does not fit.
 */
int rnf_skb_resize(struct sk_buff *skb, unsigned int len)
{
	unsigned int want, off = skb_network_offset(skb);

	if (len > 0xffff || skb_is_nonlinear(skb))
		return -EINVAL;
	want = off + len;
	if (want > skb->len) {
		if (want - skb->len > skb_tailroom(skb))
			return -EINVAL;
		skb_put(skb, want - skb->len);
	} else {
		skb_trim(skb, want);
	}
	if (skb->ip_summed == CHECKSUM_COMPLETE)
		skb->ip_summed = CHECKSUM_NONE;
	return 0;
}

/*
 * NAT at INPUT changed the source: a socket that early demux found for the old one is not
 * this packet's (nf_nat_ipv4_local_in).
 */
void rnf_skb_orphan_demuxed(struct sk_buff *skb)
{
	if (skb->sk && !inet_sk_transparent(skb->sk))
		skb_orphan(skb);
}

/* NAT: after DNAT at PREROUTING the route must be looked up for the new destination. */
void rnf_skb_dst_drop(struct sk_buff *skb)
{
	skb_dst_drop(skb);
}

/*
 * MASQUERADE (nf_nat_masquerade_ipv4): the address the outgoing interface would use towards
 * the packet's next hop, host order, 0 for none; *ifindex gets the interface.
 */
/* The outgoing interface's index, 0 for none. */
int rnf_out_ifindex(const struct nf_hook_state *st)
{
	return st->out ? st->out->ifindex : 0;
}

u32 rnf_nat_masq_addr(const struct nf_hook_state *st, const struct sk_buff *skb, int *ifindex)
{
	const struct rtable *rt = skb_rtable(skb);
	__be32 nh;

	*ifindex = st->out ? st->out->ifindex : 0;
	if (!rt || !st->out)
		return 0;
	nh = rt_nexthop(rt, ip_hdr(skb)->daddr);
	return ntohl(inet_select_addr(st->out, nh, RT_SCOPE_UNIVERSE));
}

/*
 * REDIRECT (nf_nat_redirect_ipv4): loopback for locally generated packets, else the primary
 * address of the incoming interface; host order, 0 for none.
 */
u32 rnf_nat_redirect_addr(const struct nf_hook_state *st, const struct sk_buff *skb)
{
	const struct in_device *indev;
	u32 addr = 0;

	if (st->hook == NF_INET_LOCAL_OUT)
		return INADDR_LOOPBACK;
	rcu_read_lock();
	indev = __in_dev_get_rcu(skb->dev);
	if (indev) {
		const struct in_ifaddr *ifa = rcu_dereference(indev->ifa_list);

		if (ifa)
			addr = ntohl(ifa->ifa_local);
	}
	rcu_read_unlock();
	return addr;
}

/* REJECT: an ICMP destination unreachable with `code`, or a TCP reset when code < 0. */
void rnf_reject(const struct nf_hook_state *st, struct sk_buff *skb, int code)
{
	if (code < 0)
		nf_send_reset(st->net, st->sk, skb, st->hook);
	else
		nf_send_unreach(skb, code, st->hook);
}

MODULE_SOFTDEP("pre: nf_log_syslog");

/* Per network namespace limits, over all its tables (iptables has none but memory). */
static unsigned int max_rules = 1000000;
module_param(max_rules, uint, 0644);
MODULE_PARM_DESC(max_rules, "Most rules one network namespace may hold (all tables)");
static unsigned int max_rule_bytes = 256 << 20;
module_param(max_rule_bytes, uint, 0644);
MODULE_PARM_DESC(max_rule_bytes, "Most bytes of rule encodings one network namespace may hold");

static unsigned int ct_buckets;
module_param(ct_buckets, uint, 0644);
MODULE_PARM_DESC(ct_buckets, "Hash buckets of a namespace's connection table (0: sized as nf_conntrack's)");
static unsigned int ct_max;
module_param(ct_max, uint, 0644);
MODULE_PARM_DESC(ct_max, "Most flows a namespace tracks (0: as many as buckets, as nf_conntrack)");

/* nf_conntrack_init_start()'s default: by memory size, at least 1024. */
unsigned int rnf_ct_buckets(void)
{
	unsigned long nr_pages = totalram_pages();
	unsigned long size;

	if (READ_ONCE(ct_buckets))
		return READ_ONCE(ct_buckets);
	size = ((nr_pages << PAGE_SHIFT) / 16384) / sizeof(struct hlist_head);
	if (BITS_PER_LONG >= 64 && nr_pages > (4 * (1024 * 1024 * 1024 / PAGE_SIZE)))
		size = 262144;
	else if (nr_pages > (1024 * 1024 * 1024 / PAGE_SIZE))
		size = 65536;
	return max(size, 1024UL);
}

unsigned int rnf_ct_max(void)
{
	return READ_ONCE(ct_max) ?: rnf_ct_buckets();
}

unsigned int rnf_max_rules(void)
{
	return READ_ONCE(max_rules);
}

unsigned int rnf_max_rule_bytes(void)
{
	return READ_ONCE(max_rule_bytes);
}

/*
 * A test knob: a replace in the network namespace whose inode number is test_hold_netns
 * stops after compiling, with its namespace's lock held, until the knob changes (at most a
 * minute), so a test can show that other namespaces' commands do not wait behind it.
 * test_holding says how many replaces are stopped there. Root only; 0 (the default) is off.
 */
static unsigned int test_hold_netns;
module_param(test_hold_netns, uint, 0600);
MODULE_PARM_DESC(test_hold_netns, "Testing: hold replaces in the netns with this inode number (0: off)");
static atomic_t test_holding = ATOMIC_INIT(0);

static int rnf_get_holding(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&test_holding));
}

static const struct kernel_param_ops rnf_holding_ops = {
	.get = rnf_get_holding,
};
module_param_cb(test_holding, &rnf_holding_ops, NULL, 0400);
MODULE_PARM_DESC(test_holding, "Testing: replaces held by test_hold_netns now");

/*
 * Tracking starts in the request's namespace: reassemble IPv4 fragments before the hooks
 * (priority -400), as nf_ct_netns_get() does for nf_conntrack, so the tracker sees whole
 * datagrams. Once per namespace (callers hold its configuration lock); undone at exit.
 */
int rnf_genl_defrag_enable(const struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct rnf_net *rn = net_generic(net, rnf_net_id);
	int err;

	if (rn->defrag)
		return 0;
	err = nf_defrag_ipv4_enable(net);
	if (!err)
		rn->defrag = true;
	return err;
}

int rnf_genl_init_net(const struct genl_info *info)
{
	return net_eq(genl_info_net(info), &init_net);
}

void rnf_genl_test_hold(const struct genl_info *info)
{
	unsigned int inum = genl_info_net(info)->ns.inum;
	unsigned long end = jiffies + 60 * HZ;

	if (!inum || READ_ONCE(test_hold_netns) != inum)
		return;
	atomic_inc(&test_holding);
	while (READ_ONCE(test_hold_netns) == inum && time_before(jiffies, end))
		msleep(5);
	atomic_dec(&test_holding);
}

u64 rnf_net_cookie(const struct net *net)
{
	return net->net_cookie;
}

/* ---- generic netlink ------------------------------------------------------------------ */

static int rnf_genl_doit(struct sk_buff *skb, struct genl_info *info)
{
	void *st = rnf_net_state(genl_info_net(info));

	if (!st)
		return -ENODEV;
	/* Whether the sender has CAP_NET_ADMIN over the namespace (as GENL_UNS_ADMIN_PERM checks),
	 * for commands anyone may send that say more to an administrator. The family has no
	 * pre_doit, so user_ptr is ours. */
	info->user_ptr[0] = netlink_ns_capable(skb, genl_info_net(info)->user_ns, CAP_NET_ADMIN) ?
		info : NULL;
	return rnf_rust_genl_doit(info->genlhdr->cmd, info, st);
}

/* The request payload (attributes after the genl header), already checked by the policy. */
const void *rnf_genl_payload(const struct genl_info *info, unsigned int *len)
{
	*len = genlmsg_len(info->genlhdr);
	return genlmsg_data(info->genlhdr);
}

/* NL_SET_ERR_MSG() wants a literal; the Rust side passes static C strings instead. */
void rnf_genl_set_err_msg(struct genl_info *info, const char *msg)
{
	if (info->extack)
		info->extack->_msg = msg;
}

/* A message built at run time (copied into the ack's own buffer). */
void rnf_genl_set_err_copy(struct genl_info *info, const char *msg)
{
	NL_SET_ERR_MSG_FMT(info->extack, "%s", msg);
}

/*
 * Starts a reply with `len` bytes of attribute payload; returns where to write them and the
 * skb in *out, or NULL when out of memory.
 */
void *rnf_genl_reply_begin(struct genl_info *info, u8 cmd, unsigned int len,
			   struct sk_buff **out)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(len, GFP_KERNEL);
	if (!skb)
		return NULL;
	hdr = genlmsg_put_reply(skb, info, info->family, 0, cmd);
	if (!hdr) {
		nlmsg_free(skb);
		return NULL;
	}
	*out = skb;
	return skb_put_zero(skb, len);
}

int rnf_genl_reply_send(struct sk_buff *skb, struct genl_info *info)
{
	nlmsg_end(skb, nlmsg_hdr(skb));
	return genlmsg_reply(skb, info);
}

static struct genl_family rnf_genl_family;

static int rnf_genl_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	void *st = rnf_net_state(sock_net(skb->sk));

	const struct genlmsghdr *gh = nlmsg_data(cb->nlh);

	if (!st)
		return -ENODEV;
	return rnf_rust_genl_dumpit(gh->cmd, skb, cb, st);
}

/* The attributes of the request that started the dump. */
const void *rnf_dump_payload(const struct netlink_callback *cb, unsigned int *len)
{
	const struct genlmsghdr *gh = nlmsg_data(cb->nlh);

	*len = genlmsg_len(gh);
	return genlmsg_data(gh);
}

long *rnf_dump_args(struct netlink_callback *cb)
{
	return cb->args;
}

/* Payload bytes one more message may hold in `skb`. */
unsigned int rnf_dump_room(const struct sk_buff *skb)
{
	int room = skb_tailroom(skb) - nlmsg_total_size(GENL_HDRLEN) - NLA_ALIGNTO;

	return room > 0 ? room : 0;
}

/* Adds one message with `len` zeroed payload bytes; returns them, or NULL when full. */
void *rnf_dump_put(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd, unsigned int len)
{
	void *hdr, *data;

	if (len > rnf_dump_room(skb))
		return NULL;
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq, &rnf_genl_family,
			  NLM_F_MULTI, cmd);
	if (!hdr)
		return NULL;
	data = skb_put_zero(skb, len);
	genlmsg_end(skb, hdr);
	return data;
}

void rnf_dump_set_err_msg(struct netlink_callback *cb, const char *msg)
{
	/* NL_SET_ERR_MSG() wants a literal; `msg` is a static string of the Rust side. */
	if (cb->extack)
		cb->extack->_msg = msg;
}

/* CMD_GET_STATUS takes no attributes: without a policy the core rejects every attribute. */
static const struct nla_policy rnf_zero_policy[RNF_A_MAX + 1] = {
	[RNF_A_HOOK_SLOT] = NLA_POLICY_MAX(NLA_U32, RNF_NUM_HOOKS - 1),
};

static const struct nla_policy rnf_get_table_policy[RNF_A_MAX + 1] = {
	[RNF_A_TABLE] = NLA_POLICY_MAX(NLA_U32, RNF_NUM_TABLES - 1),
	[RNF_A_TABLE_FLAGS] = NLA_POLICY_MASK(NLA_U32, 0x4),
};

/* `rnfctl recent`: a list name (as xt_recent's, at most 199 bytes), an operation, an address. */
static const struct nla_policy rnf_recent_policy[RNF_A_MAX + 1] = {
	[RNF_A_RECENT_NAME] = { .type = NLA_NUL_STRING, .len = RNF_RECENT_NAME_LEN - 1 },
	[RNF_A_RECENT_OP] = NLA_POLICY_MAX(NLA_U32, 2),
	[RNF_A_RECENT_ADDR] = { .type = NLA_U32 },
};

/* `rnfctl sysctl NAME=VALUE`: which setting, its new value (ranges are checked in Rust). */
static const struct nla_policy rnf_sysctl_policy[RNF_A_MAX + 1] = {
	[RNF_A_SYSCTL_KEY] = NLA_POLICY_MAX(NLA_U32, RNF_NUM_SYSCTLS - 1),
	[RNF_A_SYSCTL_VALUE] = { .type = NLA_U32 },
};

/* `conntrack -D`: a flow's id and original tuple (13 bytes, as the dump writes it). */
static const struct nla_policy rnf_ct_delete_policy[RNF_A_MAX + 1] = {
	[RNF_A_CT_DEL_ID] = { .type = NLA_U32 },
	[RNF_A_CT_DEL_TUPLE] = NLA_POLICY_EXACT_LEN(13),
};

/* The shapes only; the Rust side decodes and checks every value again. */
static const struct nla_policy rnf_rule_spec_policy[RNF_R_MAX + 1] = {
	[RNF_R_SRC] = NLA_POLICY_EXACT_LEN(8),
	[RNF_R_DST] = NLA_POLICY_EXACT_LEN(8),
	[RNF_R_IN] = { .type = NLA_NUL_STRING, .len = IFNAMSIZ },
	[RNF_R_OUT] = { .type = NLA_NUL_STRING, .len = IFNAMSIZ },
	[RNF_R_PROTO] = NLA_POLICY_MAX(NLA_U32, 255),
	[RNF_R_FLAGS] = { .type = NLA_U32 },
	[RNF_R_MATCH] = NLA_POLICY_RANGE(NLA_BINARY, 4, 4 + RNF_MAX_COMMENT),
	[RNF_R_TARGET] = NLA_POLICY_RANGE(NLA_BINARY, 4, 64),
};

static const struct nla_policy rnf_chain_policy[RNF_C_MAX + 1] = {
	[RNF_C_NAME] = { .type = NLA_NUL_STRING, .len = RNF_MAX_CHAIN_NAME },
	[RNF_C_POLICY] = NLA_POLICY_MAX(NLA_U32, 1),
	[RNF_C_PACKETS] = { .type = NLA_U64 },
	[RNF_C_BYTES] = { .type = NLA_U64 },
};

static const struct nla_policy rnf_rule_policy[RNF_E_MAX + 1] = {
	[RNF_E_CHAIN] = { .type = NLA_U32 },
	[RNF_E_PACKETS] = { .type = NLA_U64 },
	[RNF_E_BYTES] = { .type = NLA_U64 },
	[RNF_E_SPEC] = NLA_POLICY_NESTED(rnf_rule_spec_policy),
	[RNF_E_ID] = { .type = NLA_U64 },
};

static const struct nla_policy rnf_replace_policy[RNF_A_MAX + 1] = {
	[RNF_A_TABLE] = NLA_POLICY_MAX(NLA_U32, RNF_NUM_TABLES - 1),
	[RNF_A_GENERATION] = { .type = NLA_U64 },
	[RNF_A_CHAIN] = NLA_POLICY_NESTED(rnf_chain_policy),
	[RNF_A_RULE] = NLA_POLICY_NESTED(rnf_rule_policy),
	[RNF_A_TABLE_FLAGS] = NLA_POLICY_MASK(NLA_U32, 0x3),
};

static const struct nla_policy rnf_op_policy[RNF_O_MAX + 1] = {
	[RNF_O_KIND] = NLA_POLICY_RANGE(NLA_U32, 1, RNF_OP_KIND_MAX),
	[RNF_O_CHAIN] = { .type = NLA_U32 },
	[RNF_O_POS] = { .type = NLA_U32 },
	[RNF_O_PACKETS] = { .type = NLA_U64 },
	[RNF_O_BYTES] = { .type = NLA_U64 },
	[RNF_O_SPEC] = NLA_POLICY_NESTED(rnf_rule_spec_policy),
	[RNF_O_NAME] = { .type = NLA_NUL_STRING, .len = RNF_MAX_CHAIN_NAME },
	[RNF_O_POLICY] = NLA_POLICY_MAX(NLA_U32, 1),
	[RNF_O_RULE] = NLA_POLICY_NESTED(rnf_rule_policy),
	[RNF_O_CHAIN_NAME] = { .type = NLA_NUL_STRING, .len = RNF_MAX_CHAIN_NAME },
};

/* A few rules changed in one table: its generation and the changes (no chains, no rules). */
static const struct nla_policy rnf_update_policy[RNF_A_OP + 1] = {
	[RNF_A_TABLE] = NLA_POLICY_MAX(NLA_U32, RNF_NUM_TABLES - 1),
	[RNF_A_GENERATION] = { .type = NLA_U64 },
	[RNF_A_TABLE_FLAGS] = NLA_POLICY_MASK(NLA_U32, RNF_TF_UPDATE_MASK),
	[RNF_A_OP] = NLA_POLICY_NESTED(rnf_op_policy),
};

static const struct genl_ops rnf_genl_ops[] = {
	{
		.cmd = RNF_CMD_GET_STATUS,
		.doit = rnf_genl_doit,
	},
	{
		.cmd = RNF_CMD_ZERO_COUNTERS,
		.doit = rnf_genl_doit,
		.policy = rnf_zero_policy,
		.maxattr = RNF_A_MAX,
		/* CAP_NET_ADMIN in the user namespace that owns the caller's netns. */
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_GET_TABLE,
		.dumpit = rnf_genl_dumpit,
		.policy = rnf_get_table_policy,
		.maxattr = RNF_A_MAX,
		/* Like iptables: reading the rules needs CAP_NET_ADMIN too. */
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_REPLACE_TABLE,
		.doit = rnf_genl_doit,
		.policy = rnf_replace_policy,
		.maxattr = RNF_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_CT_DUMP,
		.dumpit = rnf_genl_dumpit,
		/* Like ctnetlink: reading the flows needs CAP_NET_ADMIN. */
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_CT_FLUSH,
		.doit = rnf_genl_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_CT_STATS,
		.doit = rnf_genl_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_RECENT_DUMP,
		.dumpit = rnf_genl_dumpit,
		.policy = rnf_recent_policy,
		.maxattr = RNF_A_MAX,
		/* xt_recent's proc files are root's (0600). */
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_RECENT_SET,
		.doit = rnf_genl_doit,
		.policy = rnf_recent_policy,
		.maxattr = RNF_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		/* As /proc/sys/net/netfilter: anyone may read the settings. */
		.cmd = RNF_CMD_CT_SYSCTL_GET,
		.doit = rnf_genl_doit,
	},
	{
		.cmd = RNF_CMD_CT_SYSCTL_SET,
		.doit = rnf_genl_doit,
		.policy = rnf_sysctl_policy,
		.maxattr = RNF_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_CT_DELETE,
		.doit = rnf_genl_doit,
		.policy = rnf_ct_delete_policy,
		.maxattr = RNF_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_REPLACE_TABLES,
		.doit = rnf_genl_doit,
		/* Several tables' attributes one after the other (the Rust side splits them). */
		.policy = rnf_replace_policy,
		.maxattr = RNF_A_MAX,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_UPDATE_TABLE,
		.doit = rnf_genl_doit,
		.policy = rnf_update_policy,
		.maxattr = RNF_A_OP,
		.flags = GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd = RNF_CMD_UPDATE_TABLES,
		.doit = rnf_genl_doit,
		/* Several tables' changes one after the other (the Rust side splits them). */
		.policy = rnf_update_policy,
		.maxattr = RNF_A_OP,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

/* `conntrack -E`: like ctnetlink's groups, joining needs CAP_NET_ADMIN. */
static const struct genl_multicast_group rnf_mcgrps[] = {
	{ .name = RNF_MCGRP_CT_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static struct genl_family rnf_genl_family __ro_after_init = {
	.mcgrps = rnf_mcgrps,
	.n_mcgrps = ARRAY_SIZE(rnf_mcgrps),
	.name = RNF_FAMILY_NAME,
	.version = RNF_FAMILY_VERSION,
	.netnsok = true,
	/*
	 * No genl_mutex around our commands: each namespace has its own lock (the Rust side),
	 * so one namespace's large replace never makes another namespace's commands wait.
	 */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.ops = rnf_genl_ops,
	.n_ops = ARRAY_SIZE(rnf_genl_ops),
	/* Every command gets strict validation: reserved header bits, unknown attributes. */
	.resv_start_op = 0,
};

/* ---- MASQUERADE: flows through an interface go with it (nf_nat_masquerade) ----------- */

/*
 * Under RTNL, in process context. A namespace's state is freed by its pernet exit, which runs
 * before its devices are unregistered and is never concurrent with events about them.
 */
static int rnf_masq_dev_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	void *st;

	if (event != NETDEV_DOWN)
		return NOTIFY_DONE;
	st = rnf_net_state(dev_net(dev));
	if (st)
		rnf_rust_masq_down(st, dev->ifindex, 0);
	return NOTIFY_DONE;
}

static int rnf_masq_inet_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	const struct in_ifaddr *ifa = ptr;
	struct net_device *dev;
	void *st;

	/* A device going down is handled above; a dying in_device has nothing left to do. */
	if (event != NETDEV_DOWN || !ifa->ifa_dev || ifa->ifa_dev->dead)
		return NOTIFY_DONE;
	dev = ifa->ifa_dev->dev;
	st = rnf_net_state(dev_net(dev));
	if (st)
		rnf_rust_masq_down(st, dev->ifindex, ntohl(ifa->ifa_address));
	return NOTIFY_DONE;
}

static struct notifier_block rnf_masq_dev_nb = { .notifier_call = rnf_masq_dev_event };
static struct notifier_block rnf_masq_inet_nb = { .notifier_call = rnf_masq_inet_event };

/* ---- module load / unload ------------------------------------------------------------- */

int rnf_shim_init(void)
{
	int err;

	err = rnf_fill_ops();
	if (err)
		return err;
	rnf_free_wq = alloc_workqueue("rnf_free", WQ_UNBOUND, 0);
	if (!rnf_free_wq)
		return -ENOMEM;
	err = register_pernet_subsys(&rnf_net_ops);
	if (err)
		goto err_wq;
	err = register_netdevice_notifier(&rnf_masq_dev_nb);
	if (err)
		goto err_pernet;
	err = register_inetaddr_notifier(&rnf_masq_inet_nb);
	if (err)
		goto err_dev;
	err = genl_register_family(&rnf_genl_family);
	if (err)
		goto err_inet;
	return 0;
err_inet:
	unregister_inetaddr_notifier(&rnf_masq_inet_nb);
err_dev:
	unregister_netdevice_notifier(&rnf_masq_dev_nb);
err_pernet:
	unregister_pernet_subsys(&rnf_net_ops);
err_wq:
	rnf_free_drain();
	return err;
}

void rnf_shim_exit(void)
{
	genl_unregister_family(&rnf_genl_family);
	unregister_inetaddr_notifier(&rnf_masq_inet_nb);
	unregister_netdevice_notifier(&rnf_masq_dev_nb);
	unregister_pernet_subsys(&rnf_net_ops);
	rnf_free_drain();
}
