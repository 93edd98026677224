// SPDX-License-Identifier: GPL-2.0

//! A generic netlink request, its reply, and dumps (replies in several messages).

use super::rcu::{GpCookie, Reader};
use super::sys;
use crate::engine::wire::Encoder;
use core::ffi::{c_long, c_uint};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::prelude::*;

/// Copies `msg` into the extended ack (at most 80 bytes); `msg` is NUL-terminated.
pub(crate) type ErrText = [u8; 80];

/// The attribute area `p`, `len` bytes, of a request (empty when there is none).
///
/// # Safety
///
/// A non-null `p` points to `len` readable bytes that nobody writes during `'a`.
unsafe fn attrs<'a>(p: *const core::ffi::c_void, len: c_uint) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: The caller's guarantee.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
}

/// A request being handled by a `doit` callback.
///
/// # Invariants
///
/// `info` is the request of a `doit` call that lasts at least `'a`.
pub(crate) struct Request<'a> {
    info: NonNull<sys::genl_info>,
    _call: PhantomData<&'a mut sys::genl_info>,
}

impl<'a> Request<'a> {
    /// # Safety
    ///
    /// `info` is the request of the `doit` call in progress, which lasts at least `'a`.
    pub(super) unsafe fn from_raw(info: NonNull<sys::genl_info>) -> Self {
        // INVARIANT: The caller's guarantee.
        Self { info, _call: PhantomData }
    }

    /// Enters an RCU read-side section for reading published tables during this call. The
    /// reader borrows the request, so [`Request::wait_gp`] (which needs the request
    /// exclusively) cannot run while it lives.
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader::new()
    }

    /// The attributes after the generic netlink header (checked by the command's policy).
    pub(crate) fn payload(&self) -> &'a [u8] {
        let mut len: c_uint = 0;
        // SAFETY: `info` is live (invariant) and `len` valid for writes.
        let p = unsafe { sys::rnf_genl_payload(self.info.as_ptr(), &mut len) };
        // SAFETY: The shim returns the request's attribute area and its length; the request
        // (and its skb) lives for `'a` (invariant) and nobody writes to it.
        unsafe { attrs(p, len) }
    }

    /// Sets the extended ack message.
    pub(crate) fn set_err(&self, msg: &'static CStr) {
        // SAFETY: `info` is live; `msg` is static, as NL_SET_ERR_MSG requires.
        unsafe { sys::rnf_genl_set_err_msg(self.info.as_ptr(), msg.as_ptr().cast()) };
    }

    /// Sets the extended ack message from a buffer (copied); `msg` must hold a NUL.
    pub(crate) fn set_err_text(&self, msg: &ErrText) {
        if !msg.contains(&0) {
            return;
        }
        // SAFETY: `info` is live; `msg` is NUL-terminated (checked) and copied by the shim.
        unsafe { sys::rnf_genl_set_err_copy(self.info.as_ptr(), msg.as_ptr().cast()) };
    }

    /// The request, for the shim's functions that take one.
    pub(super) fn raw(&self) -> *const sys::genl_info {
        self.info.as_ptr()
    }

    /// Whether the request comes from the initial network namespace.
    pub(crate) fn init_net(&self) -> bool {
        // SAFETY: `info` is live (invariant).
        unsafe { sys::rnf_genl_init_net(self.info.as_ptr()) != 0 }
    }

    /// Turns on IPv4 defragmentation in the request's namespace (once; undone when the
    /// namespace goes), as connection tracking needs.
    pub(crate) fn defrag_enable(&self) -> Result {
        // SAFETY: `info` is live (invariant); the shim may sleep, which a `doit` allows.
        kernel::error::to_result(unsafe { sys::rnf_genl_defrag_enable(self.info.as_ptr()) })
    }

    /// True when the sender has CAP_NET_ADMIN in the user namespace that owns the request's
    /// network namespace.
    pub(crate) fn net_admin(&self) -> bool {
        // SAFETY: `info` is live (invariant); the shim reads what `rnf_genl_doit` stored.
        unsafe { sys::rnf_genl_net_admin(self.info.as_ptr()) != 0 }
    }

    /// Stops here while the `test_hold_netns` module parameter names the request's network
    /// namespace (a test knob; off unless root sets it).
    pub(crate) fn test_hold(&self) {
        // SAFETY: `info` is live (invariant); the shim may sleep, which a `doit` allows.
        unsafe { sys::rnf_genl_test_hold(self.info.as_ptr()) };
    }

    /// Starts a grace period (see [`GpCookie`]).
    pub(crate) fn start_gp(&self) -> GpCookie {
        GpCookie::start()
    }

    /// Waits for what is left of a grace period started earlier (usually nothing: it started
    /// at an earlier request).
    pub(crate) fn wait_gp(&mut self, gp: GpCookie) {
        // SAFETY: A `doit` runs in process context and may sleep; genetlink holds no RCU read
        // lock around it, and no `Reader` can exist here: a `doit` has no hook call's `Packet`
        // and no `Dump`, and a reader it made with `Request::reader` borrows the request,
        // which this call holds exclusively.
        unsafe { gp.wait() }
    }

    /// Sends a reply whose payload `encode` writes, sized by running it once without room.
    pub(crate) fn reply(&self, cmd: u8, encode: impl Fn(&mut Encoder<'_>)) -> Result {
        let mut none = [0u8; 0];
        let mut sizer = Encoder::new(&mut none);
        encode(&mut sizer);
        let len = c_uint::try_from(sizer.len()).map_err(|_| EMSGSIZE)?;
        let mut skb: *mut sys::sk_buff = core::ptr::null_mut();
        // SAFETY: `info` is live; `skb` is valid for writes.
        let buf = unsafe { sys::rnf_genl_reply_begin(self.info.as_ptr(), cmd, len, &mut skb) };
        if buf.is_null() || skb.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: The shim returned `len` writable bytes inside `skb`, which we own until it
        // is sent below; nothing else refers to them.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len as usize) };
        let mut enc = Encoder::new(out);
        encode(&mut enc);
        // `encode` is deterministic, so the sizes agree; the skb is sent either way (zeroed
        // bytes at worst), which keeps its ownership simple.
        // SAFETY: `skb` came from `rnf_genl_reply_begin` and is consumed here.
        let err = unsafe { sys::rnf_genl_reply_send(skb, self.info.as_ptr()) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }
}

/// One call of a `dumpit` callback: fills one message skb; netlink calls again for the next
/// one while the previous call returned a positive length.
///
/// # Invariants
///
/// `skb` and `cb` are the arguments of a `dumpit` call that lasts at least `'a`.
pub(crate) struct Dump<'a> {
    skb: NonNull<sys::sk_buff>,
    cb: NonNull<sys::netlink_callback>,
    written: usize,
    _call: PhantomData<&'a mut sys::sk_buff>,
}

impl<'a> Dump<'a> {
    /// # Safety
    ///
    /// `skb` and `cb` are the arguments of the `dumpit` call in progress, which lasts at least
    /// `'a`.
    pub(super) unsafe fn from_raw(skb: NonNull<sys::sk_buff>, cb: NonNull<sys::netlink_callback>) -> Self {
        // INVARIANT: The caller's guarantee.
        Self { skb, cb, written: 0, _call: PhantomData }
    }

    /// The attributes of the request that started the dump (checked by the policy).
    pub(crate) fn payload(&self) -> &'a [u8] {
        let mut len: c_uint = 0;
        // SAFETY: `cb` is live (invariant) and `len` valid for writes.
        let p = unsafe { sys::rnf_dump_payload(self.cb.as_ptr(), &mut len) };
        // SAFETY: The request message stays alive for the whole dump (netlink keeps it);
        // nobody writes to it.
        unsafe { attrs(p, len) }
    }

    /// The dump's position, kept by netlink from one call to the next (`cb->args`).
    pub(crate) fn args(&mut self) -> &mut [c_long; 6] {
        // SAFETY: `cb` is live and `cb->args` is `long[6]`, which only this dump uses.
        unsafe { &mut *sys::rnf_dump_args(self.cb.as_ptr()).cast::<[c_long; 6]>() }
    }

    /// Payload bytes one more message in this skb may hold.
    pub(crate) fn room(&self) -> usize {
        // SAFETY: `skb` is live (invariant).
        unsafe { sys::rnf_dump_room(self.skb.as_ptr()) as usize }
    }

    /// Adds a message whose payload `encode` writes (sized by running it once without
    /// room). False when it does not fit.
    pub(crate) fn put(&mut self, cmd: u8, encode: impl Fn(&mut Encoder<'_>)) -> bool {
        let mut none = [0u8; 0];
        let mut sizer = Encoder::new(&mut none);
        encode(&mut sizer);
        let Ok(len) = c_uint::try_from(sizer.len()) else { return false };
        // SAFETY: `skb` and `cb` are live (invariant).
        let buf = unsafe { sys::rnf_dump_put(self.skb.as_ptr(), self.cb.as_ptr(), cmd, len) };
        if buf.is_null() {
            return false;
        }
        // SAFETY: The shim reserved `len` zeroed bytes in the skb, which this call owns.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len as usize) };
        encode(&mut Encoder::new(out));
        self.written += 1;
        true
    }

    /// Messages added by this call.
    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Sets the extended ack message of the dump's end.
    pub(crate) fn set_err(&self, msg: &'static CStr) {
        // SAFETY: `cb` is live; `msg` is static.
        unsafe { sys::rnf_dump_set_err_msg(self.cb.as_ptr(), msg.as_ptr().cast()) };
    }
}
