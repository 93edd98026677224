// SPDX-License-Identifier: GPL-2.0

//! The packet of one hook call.

use super::sys;
use crate::engine::eval::{AddrTypeDev, Meta, SockOwner};
use crate::engine::rule::NfqueueSpec;
use core::ffi::{c_int, c_uint};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::prelude::*;

/// The skb and hook state netfilter passed to one hook call.
///
/// # Invariants
///
/// `skb` and `st` are the packet and hook state of a hook call that lasts at least `'a`; the
/// hook owns the packet for that time (it may change it), and the packet stays in the
/// caller's hands (it is never freed or queued from here).
pub(crate) struct Packet<'a> {
    skb: NonNull<sys::sk_buff>,
    st: NonNull<sys::nf_hook_state>,
    _call: PhantomData<&'a mut sys::sk_buff>,
}

/// The start of a packet and what the packet path reads about it, in one call.
pub(crate) struct Head {
    /// Lengths and mark.
    pub(crate) meta: Meta,
    /// How many bytes were copied from the network header on.
    pub(crate) copied: usize,
    /// Input device name, NUL-padded.
    pub(crate) in_dev: [u8; 16],
    /// Output device name, NUL-padded.
    pub(crate) out_dev: [u8; 16],
    /// The output device is a loopback device.
    pub(crate) out_loopback: bool,
    /// Has an output device and no socket of this namespace: a packet on its way through.
    pub(crate) forwarded: bool,
}

impl<'a> Packet<'a> {
    /// Wraps the arguments of a hook call.
    ///
    /// # Safety
    ///
    /// `skb` and `st` are the packet and hook state of the hook call in progress, which lasts
    /// at least `'a`.
    pub(super) unsafe fn from_raw(skb: NonNull<sys::sk_buff>, st: NonNull<sys::nf_hook_state>) -> Self {
        // INVARIANT: The caller's guarantee.
        Self { skb, st, _call: PhantomData }
    }

    /// A proof of the RCU read-side section netfilter holds around every hook call.
    pub(crate) fn reader(&self) -> super::rcu::Reader<'a> {
        // SAFETY: Netfilter runs every hook inside rcu_read_lock() (nf_hook(), and
        // nf_reinject() for a packet back from a queue), and the call lasts at least `'a`
        // (invariant).
        unsafe { super::rcu::Reader::held() }
    }

    /// The packet's length (`skb->len`, what counters count) and how many bytes it has from
    /// its network header on.
    pub(crate) fn lens(&self) -> (u32, u32) {
        let mut from_net: c_uint = 0;
        // SAFETY: `skb` is live (invariant); `from_net` is valid for writes.
        let len = unsafe { sys::rnf_skb_len(self.skb.as_ptr(), &mut from_net) };
        (len, from_net)
    }

    /// Copies the packet from its network header on into `buf` (as much as fits) and reads
    /// its lengths, mark and devices.
    pub(crate) fn head(&self, buf: &mut [u8]) -> Head {
        let mut h =
            sys::rnf_pkt_head {
                skb_len: 0,
                ip_len: 0,
                mark: 0,
                copied: 0,
                in_: [0; 16],
                out: [0; 16],
                flags: 0,
                mac_src: [0; 6],
                pkt_type: 0,
            };
        let max = c_uint::try_from(buf.len()).unwrap_or(c_uint::MAX);
        // SAFETY: `skb` and `st` are live (invariant); `h` is valid for writes and `buf` for
        // `max` bytes.
        unsafe { sys::rnf_skb_head(self.skb.as_ptr(), self.st.as_ptr(), &mut h, buf.as_mut_ptr(), max) };
        Head {
            meta: Meta {
                skb_len: h.skb_len,
                ip_len: h.ip_len,
                mark: h.mark,
                pkt_type: u8::try_from(h.pkt_type).unwrap_or(u8::MAX),
                mac_src: (h.flags & sys::RNF_HEAD_MAC != 0).then_some(h.mac_src),
            },
            copied: (h.copied as usize).min(buf.len()),
            in_dev: h.in_.map(|c| c as u8),
            out_dev: h.out.map(|c| c as u8),
            out_loopback: h.flags & sys::RNF_HEAD_OUT_LOOPBACK != 0,
            forwarded: h.flags & sys::RNF_HEAD_FORWARDED != 0,
        }
    }

    /// Copies bytes from `offset` after the network header into `buf` (as many as the packet
    /// has); returns how many.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
        let (Ok(off), Ok(max)) = (c_uint::try_from(offset), c_uint::try_from(buf.len())) else { return 0 };
        // SAFETY: `skb` is live (invariant); `buf` is valid for `max` bytes of writes.
        let n = unsafe { sys::rnf_skb_read(self.skb.as_ptr(), off, buf.as_mut_ptr(), max) };
        (n as usize).min(buf.len())
    }

    /// The packet's identity while it is in flight (its address), to find what earlier hooks
    /// recorded about it. Never dereferenced.
    pub(crate) fn key(&self) -> u64 {
        self.skb.as_ptr() as usize as u64
    }

    /// True when the transport checksum of a TCP, UDP or ICMP packet starting `dataoff` bytes
    /// after the network header is wrong (checked at PREROUTING only, as nf_conntrack does).
    pub(crate) fn l4_csum_bad(&mut self, dataoff: u32, proto: u8) -> bool {
        // SAFETY: `skb` and `st` are live and this hook may change the packet (invariant):
        // `nf_checksum` may record the verified state in the skb.
        unsafe { sys::rnf_l4_csum_bad(self.skb.as_ptr(), self.st.as_ptr(), dataoff, proto) != 0 }
    }

    /// Sets `skb->mark`.
    pub(crate) fn set_mark(&mut self, mark: u32) {
        // SAFETY: `skb` is live and this hook may change it (invariant).
        unsafe { sys::rnf_skb_set_mark(self.skb.as_ptr(), mark) };
    }

    /// Sets `skb->priority`.
    pub(crate) fn set_priority(&mut self, priority: u32) {
        // SAFETY: `skb` is live and this hook may change it (invariant).
        unsafe { sys::rnf_skb_set_priority(self.skb.as_ptr(), priority) };
    }

    /// The first `len` bytes from the network header on, made linear and private to this
    /// packet (`skb_ensure_writable`) so they may be rewritten; `None` when the packet is
    /// shorter or memory runs out. Borrowing the packet mutably keeps every other call (which
    /// could move the header) out while the bytes are in use.
    pub(crate) fn writable(&mut self, len: usize) -> Option<&mut [u8]> {
        let n = c_uint::try_from(len).ok()?;
        // SAFETY: `skb` is live and this hook may change it (invariant).
        let p = unsafe { sys::rnf_skb_writable(self.skb.as_ptr(), n) };
        let p = NonNull::new(p)?;
        // SAFETY: the shim made `len` bytes from `p` linear, writable and owned by this skb;
        // they stay where they are until the skb changes, which needs `&mut self` again, and
        // the returned borrow holds `&mut self` for its whole life.
        Some(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// `1 << inet_dev_addr_type()` of `addr` (host order) on no, the input or the output device.
    pub(crate) fn addr_type_bit(&self, addr: u32, dev: AddrTypeDev) -> u32 {
        let d: c_int = match dev {
            AddrTypeDev::Any => 0,
            AddrTypeDev::In => 1,
            AddrTypeDev::Out => 2,
        };
        // SAFETY: `st` is live (invariant); the address goes in network order.
        unsafe { sys::rnf_addr_type_bit(self.st.as_ptr(), addr.to_be(), d) }
    }

    /// TCPMSS: the path MTU (the smaller of the route's and the reverse route's); 0 when the
    /// packet has no route.
    pub(crate) fn path_mtu(&self) -> u32 {
        // SAFETY: `skb` and `st` are live (invariant); the shim only reads the packet and
        // looks a route up (it holds and releases its own reference).
        unsafe { sys::rnf_tcpmss_path_mtu(self.skb.as_ptr(), self.st.as_ptr()) }
    }

    /// The owner of the packet's socket (xt_owner).
    pub(crate) fn owner(&self) -> SockOwner {
        let (mut uid, mut gid) = (0u32, 0u32);
        // SAFETY: `skb` and `st` are live (invariant) and the hook runs under rcu_read_lock()
        // (which the socket's file needs); `uid` and `gid` are valid for writes.
        match unsafe { sys::rnf_skb_owner(self.skb.as_ptr(), self.st.as_ptr(), &mut uid, &mut gid) } {
            2 => SockOwner::File { uid, gid },
            1 => SockOwner::NoFile,
            _ => SockOwner::None,
        }
    }

    /// Whether a supplementary group of the packet's socket file is in `min..=max`.
    pub(crate) fn owner_in_groups(&self, min: u32, max: u32) -> bool {
        // SAFETY: as for `owner`.
        unsafe { sys::rnf_skb_owner_in_groups(self.skb.as_ptr(), self.st.as_ptr(), min, max) != 0 }
    }

    /// The LOG target. `prefix` must be NUL-terminated (it is cut at its first NUL).
    pub(crate) fn log(&self, level: u8, flags: u8, prefix: &CStr) {
        // SAFETY: `st` and `skb` are live (invariant); `prefix` is NUL-terminated and outlives
        // the call.
        unsafe { sys::rnf_log(self.st.as_ptr(), self.skb.as_ptr(), level, flags, prefix.as_ptr().cast()) };
    }

    /// The NFLOG target. `prefix` must be NUL-terminated.
    pub(crate) fn nflog(&self, group: u16, threshold: u16, len: u32, copy_len: bool, prefix: &CStr) {
        // SAFETY: `st` and `skb` are live (invariant); `prefix` is NUL-terminated and outlives
        // the call.
        unsafe {
            sys::rnf_nflog(
                self.st.as_ptr(),
                self.skb.as_ptr(),
                group,
                threshold,
                len,
                c_int::from(copy_len),
                prefix.as_ptr().cast(),
            )
        };
    }

    /// NFQUEUE's verdict (xt_NFQUEUE's `nfqueue_tg_v3`): the queue, by flow hash or CPU when
    /// there are several, with the bypass flag.
    pub(crate) fn queue_verdict(&self, q: &NfqueueSpec) -> Verdict {
        // SAFETY: `skb` is live (invariant); the shim only reads the IP header (which the hook's
        // caller made linear) to hash it.
        Verdict::Queue(unsafe { sys::rnf_nfqueue_verdict(self.skb.as_ptr(), q.num, q.total, c_int::from(q.flags)) })
    }

    /// The REJECT target: an ICMP destination unreachable with `code`, or a TCP reset for
    /// `None`. The caller then drops the packet.
    pub(crate) fn reject(&mut self, code: Option<u8>) {
        let code = code.map_or(-1, c_int::from);
        // SAFETY: `st` and `skb` are live (invariant); the shim only reads the packet to answer it.
        unsafe { sys::rnf_reject(self.st.as_ptr(), self.skb.as_ptr(), code) };
    }

    /// `skb->ip_summed == CHECKSUM_PARTIAL`: the transport checksum field holds only the
    /// pseudo-header sum.
    pub(crate) fn csum_partial(&self) -> bool {
        // SAFETY: `skb` is live (invariant); the shim only reads.
        unsafe { sys::rnf_skb_csum_partial(self.skb.as_ptr()) != 0 }
    }

    /// The whole packet from its network header on, made linear and private with at least
    /// `extra` spare bytes after it (the slice includes them), and its current length; `None`
    /// when memory runs out. Then [`Packet::resize`] says how much of it is the packet.
    pub(crate) fn expand(&mut self, extra: usize) -> Option<(&mut [u8], usize)> {
        let x = c_uint::try_from(extra).ok()?;
        let mut len: c_uint = 0;
        // SAFETY: `skb` is live and this hook may change it (invariant); `len` is a valid local.
        let p = unsafe { sys::rnf_skb_expand(self.skb.as_ptr(), x, &mut len) };
        let p = NonNull::new(p)?;
        let total = (len as usize).checked_add(extra)?;
        // SAFETY: the shim made the packet linear and private from `p` on for `len` bytes, with
        // at least `extra` bytes of tailroom after them (owned by this skb); they stay until the
        // skb changes, which needs `&mut self` again, and the borrow holds `&mut self`.
        Some((unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), total) }, len as usize))
    }

    /// After [`Packet::expand`]: the packet is now `len` bytes from its network header on.
    pub(crate) fn resize(&mut self, len: usize) -> Result {
        let l = c_uint::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `skb` is live and this hook may change it (invariant); the shim checks that
        // `len` fits the linear data and tailroom.
        let err = unsafe { sys::rnf_skb_resize(self.skb.as_ptr(), l) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Drops a socket early demux gave the packet (after its source changed at INPUT).
    pub(crate) fn orphan_demuxed(&mut self) {
        // SAFETY: `skb` is live and this hook may change it (invariant).
        unsafe { sys::rnf_skb_orphan_demuxed(self.skb.as_ptr()) };
    }

    /// Forgets the packet's route (after DNAT at PREROUTING, so it is routed for the new
    /// destination).
    pub(crate) fn dst_drop(&mut self) {
        // SAFETY: `skb` is live and this hook may change it (invariant).
        unsafe { sys::rnf_skb_dst_drop(self.skb.as_ptr()) };
    }

    /// The outgoing interface's index (0 for none).
    pub(crate) fn out_ifindex(&self) -> i32 {
        // SAFETY: `st` is live (invariant); the shim only reads it.
        unsafe { sys::rnf_out_ifindex(self.st.as_ptr()) }
    }

    /// MASQUERADE's address (host order; `None` when the interface has none) and the
    /// outgoing interface's index.
    pub(crate) fn masq_addr(&self) -> (Option<u32>, i32) {
        let mut ifindex: c_int = 0;
        // SAFETY: `st` and `skb` are live (invariant); the shim only reads them and writes
        // `ifindex`, a valid local.
        let a = unsafe { sys::rnf_nat_masq_addr(self.st.as_ptr(), self.skb.as_ptr(), &mut ifindex) };
        ((a != 0).then_some(a), ifindex)
    }

    /// REDIRECT's address (host order): loopback for local packets, else the incoming
    /// interface's primary address; `None` when it has none.
    pub(crate) fn redirect_addr(&self) -> Option<u32> {
        // SAFETY: `st` and `skb` are live (invariant); the shim only reads them.
        let a = unsafe { sys::rnf_nat_redirect_addr(self.st.as_ptr(), self.skb.as_ptr()) };
        (a != 0).then_some(a)
    }

    /// Routes a local packet again after its mark changed (`ip_route_me_harder`).
    pub(crate) fn reroute(&mut self) -> Result {
        // SAFETY: `st` and `skb` are live and this hook may change the packet (invariant).
        let err = unsafe { sys::rnf_reroute(self.st.as_ptr(), self.skb.as_ptr()) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }
}

/// What a hook tells netfilter to do with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let it continue.
    Accept,
    /// Free it.
    Drop,
    /// To a userspace queue: the raw verdict ([`Packet::queue_verdict`]).
    Queue(u32),
}
