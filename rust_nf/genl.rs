// SPDX-License-Identifier: GPL-2.0

//! Generic netlink commands: decoded and answered with the engine's wire format.

use crate::engine::hooks::HOOKS;
use crate::engine::hooks::NUM_HOOKS;
use crate::engine::wire;
use crate::ffi;
use crate::netns::NetState;
use crate::table;
use core::ffi::c_int;
use core::ffi::c_uint;
use core::ffi::c_void;
use crate::ffi::GenlInfo;
use kernel::bindings::sk_buff;
use kernel::prelude::*;

/// The module version reported by the status command.
pub(crate) const VERSION: &str = "0.1.0";

/// Dispatches one generic netlink command. The core has already checked the attributes
/// against the command's policy and, for mutating commands, CAP_NET_ADMIN.
///
/// # Safety
///
/// `info` is the request being handled; `state` came from `rnf_rust_net_init` for the
/// requester's namespace, which is alive while the request is.
#[no_mangle]
unsafe extern "C" fn rnf_rust_genl_doit(cmd: u8, info: *mut GenlInfo, state: *mut c_void) -> c_int {
    // SAFETY: Guaranteed by the caller.
    let ns = unsafe { NetState::from_ptr(state) };
    let req = Request { info };
    let res = match cmd {
        wire::CMD_GET_STATUS => status(&req, ns),
        wire::CMD_ZERO_COUNTERS => zero(&req, ns),
        wire::CMD_GET_TABLE => get_table(&req, ns),
        wire::CMD_REPLACE_TABLE => replace_table(&req, ns),
        _ => Err(EOPNOTSUPP),
    };
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A request in flight.
struct Request {
    info: *mut GenlInfo,
}

impl Request {
    /// The attribute payload of the request.
    fn payload(&self) -> &[u8] {
        let mut len: c_uint = 0;
        // SAFETY: `info` is the live request (see `rnf_rust_genl_doit`).
        let p = unsafe { ffi::rnf_genl_payload(self.info, &mut len) };
        if p.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: The shim returns the request's attribute area and its length; it lives as
        // long as the request, which outlives `self`.
        unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
    }

    /// Turns a table error into the errno, with its message in the extended ack.
    fn user_error(&self, e: table::UserError) -> Error {
        match &e.detail {
            Some(d) => {
                // SAFETY: `info` is the live request; the message is NUL-terminated and copied.
                unsafe { ffi::rnf_genl_set_err_copy(self.info, d.as_ptr()) };
                e.err
            }
            None => self.error(e.msg, e.err),
        }
    }

    /// Sets the extended ack message shown to the user.
    fn error(&self, msg: &'static CStr, err: Error) -> Error {
        // SAFETY: `info` is the live request; `msg` is static, as NL_SET_ERR_MSG requires.
        unsafe { ffi::rnf_genl_set_err_msg(self.info, msg.as_char_ptr()) };
        err
    }

    /// Sends a reply whose payload `encode` writes, sized by running it once without room.
    fn reply(&self, cmd: u8, encode: impl Fn(&mut wire::Encoder<'_>)) -> Result {
        let mut none = [0u8; 0];
        let mut sizer = wire::Encoder::new(&mut none);
        encode(&mut sizer);
        let len = c_uint::try_from(sizer.len()).map_err(|_| EMSGSIZE)?;
        let mut skb: *mut sk_buff = core::ptr::null_mut();
        // SAFETY: `info` is the live request; `skb` is valid for writes.
        let buf = unsafe { ffi::rnf_genl_reply_begin(self.info, cmd, len, &mut skb) };
        if buf.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: The shim returned `len` writable bytes inside `skb`, which we own until it is
        // sent below.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, len as usize) };
        let mut enc = wire::Encoder::new(out);
        encode(&mut enc);
        // `encode` is deterministic, so the sizes agree; the skb is sent either way (zeroed
        // bytes at worst), which keeps its ownership simple.
        // SAFETY: `skb` came from `rnf_genl_reply_begin` and is consumed here.
        let err = unsafe { ffi::rnf_genl_reply_send(skb, self.info) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }
}

fn status(req: &Request, ns: &NetState) -> Result {
    let hooks: [wire::HookStatus; NUM_HOOKS] = core::array::from_fn(|slot| {
        let spec = HOOKS[slot];
        let (packets, bytes) = ns.counters.sum(slot as c_uint);
        wire::HookStatus {
            slot: slot as u32,
            point: spec.point,
            stage: spec.stage,
            priority: spec.priority(),
            packets,
            bytes,
        }
    });
    req.reply(wire::CMD_GET_STATUS, |enc| {
        wire::encode_status(enc, VERSION, ns.cookie, &hooks)
    })
}

fn zero(req: &Request, ns: &NetState) -> Result {
    let mut only: Option<u32> = None;
    for attr in wire::AttrIter::new(req.payload()) {
        let attr = attr.map_err(|_| req.error(c"malformed attributes", EINVAL))?;
        if attr.ty == wire::A_HOOK_SLOT {
            only = Some(attr.u32().map_err(|_| req.error(c"bad hook slot", EINVAL))?);
        }
    }
    match only {
        Some(slot) if slot as usize >= NUM_HOOKS => Err(req.error(c"no such hook slot", ERANGE)),
        Some(slot) => {
            ns.counters.zero(slot);
            Ok(())
        }
        None => {
            for slot in 0..NUM_HOOKS {
                ns.counters.zero(slot as c_uint);
            }
            Ok(())
        }
    }
}

fn get_table(req: &Request, ns: &NetState) -> Result {
    let (tid, no_create) = table::get_request(req.payload()).map_err(|e| req.user_error(e))?;
    let mut cfg = ns.config.lock();
    table::touch(&mut cfg, tid, no_create).map_err(|e| req.user_error(e))?;
    // The configuration lock is held while encoding, so the version cannot change between
    // the sizing pass and the writing pass.
    req.reply(wire::CMD_GET_TABLE, |enc| table::encode(enc, &ns.live, &cfg, tid))
}

fn replace_table(req: &Request, ns: &NetState) -> Result {
    let mut cfg = ns.config.lock();
    table::replace(&ns.live, &mut cfg, req.payload()).map_err(|e| req.user_error(e))
}
