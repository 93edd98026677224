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
