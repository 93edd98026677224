// SPDX-License-Identifier: GPL-2.0

//! The C shim's API (`rnf_shim.h`): every function the Rust side calls into C.

use kernel::ffi::c_char;
use core::ffi::c_int;
use core::ffi::c_uint;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::marker::PhantomPinned;
use kernel::bindings::sk_buff;

/// `struct genl_info`, only ever handled by pointer (the shim reads its fields).
#[repr(C)]
pub(crate) struct GenlInfo {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct nf_hook_state`, only ever handled by pointer.
#[repr(C)]
pub(crate) struct HookState {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct net`, only ever handled by pointer.
#[repr(C)]
pub(crate) struct Net {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

extern "C" {
    /// Registers the pernet operations (hooks in every netns) and the netlink family.
    pub(crate) fn rnf_shim_init() -> c_int;
    /// Undoes [`rnf_shim_init`].
    pub(crate) fn rnf_shim_exit();

    /// Allocates `n` zeroed per-CPU counter pairs; NULL on failure.
    pub(crate) fn rnf_pcpu_alloc(n: c_uint) -> *mut c_void;
    /// Frees what [`rnf_pcpu_alloc`] returned.
    pub(crate) fn rnf_pcpu_free(base: *mut c_void);
    /// Adds one packet of `bytes` to counter `idx` on this CPU.
    pub(crate) fn rnf_pcpu_add(base: *mut c_void, idx: c_uint, bytes: u64);
    /// Sums counter `idx` over all CPUs.
    pub(crate) fn rnf_pcpu_sum(base: *mut c_void, idx: c_uint, packets: *mut u64, bytes: *mut u64);
    /// Zeroes counter `idx` on all CPUs.
    pub(crate) fn rnf_pcpu_zero(base: *mut c_void, idx: c_uint);

    /// `skb->len`.
    pub(crate) fn rnf_skb_len(skb: *const sk_buff) -> c_uint;
    /// Copies up to `max` bytes from the IPv4 header on; returns how many.
    pub(crate) fn rnf_skb_copy_network(skb: *const sk_buff, buf: *mut u8, max: c_uint) -> c_uint;
    /// The input and output device names (16 bytes each, NUL-padded).
    pub(crate) fn rnf_state_ifnames(st: *const HookState, in_: *mut u8, out: *mut u8);
    /// `skb->mark`.
    pub(crate) fn rnf_skb_mark(skb: *const sk_buff) -> u32;
    /// Sets `skb->mark`.
    pub(crate) fn rnf_skb_set_mark(skb: *mut sk_buff, mark: u32);
    /// `get_random_u32()`.
    pub(crate) fn rnf_random_u32() -> u32;
    /// `jiffies`.
    pub(crate) fn rnf_jiffies() -> core::ffi::c_ulong;
    /// `HZ`.
    pub(crate) fn rnf_hz() -> c_uint;
    /// `1 << inet_dev_addr_type()` of `addr` (network order) on no/in/out device (0/1/2).
    pub(crate) fn rnf_addr_type_bit(st: *const HookState, addr: u32, dev: c_int) -> u32;
    /// The LOG target (`nf_log_packet`); `prefix` is NUL-terminated.
    pub(crate) fn rnf_log(st: *const HookState, skb: *const sk_buff, level: u8, flags: u8, prefix: *const u8);
    /// The REJECT target: ICMP unreachable `code`, or a TCP reset when `code < 0`.
    pub(crate) fn rnf_reject(st: *const HookState, skb: *mut sk_buff, code: c_int);
    /// Re-routes a local packet whose mark changed (`ip_route_me_harder`).
    pub(crate) fn rnf_reroute(st: *const HookState, skb: *mut sk_buff) -> c_int;
    /// Sets a formatted extended ack message (copied; at most 80 bytes).
    pub(crate) fn rnf_genl_set_err_copy(info: *mut GenlInfo, msg: *const c_char);

    /// `net->net_cookie`.
    pub(crate) fn rnf_net_cookie(net: *const Net) -> u64;

    /// The request's attribute payload and its length.
    pub(crate) fn rnf_genl_payload(info: *const GenlInfo, len: *mut c_uint) -> *const c_void;
    /// Sets the extended ack message (`msg` must be a static string).
    pub(crate) fn rnf_genl_set_err_msg(info: *mut GenlInfo, msg: *const c_char);
    /// Starts a reply with `len` zeroed payload bytes; returns them (NULL: out of memory).
    pub(crate) fn rnf_genl_reply_begin(
        info: *mut GenlInfo,
        cmd: u8,
        len: c_uint,
        out: *mut *mut sk_buff,
    ) -> *mut u8;
    /// Finishes and sends a reply started with [`rnf_genl_reply_begin`] (consumes the skb).
    pub(crate) fn rnf_genl_reply_send(skb: *mut sk_buff, info: *mut GenlInfo) -> c_int;
}
