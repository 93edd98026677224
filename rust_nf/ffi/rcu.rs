// SPDX-License-Identifier: GPL-2.0

//! A box published to RCU readers (the packet path, table listings) and replaced by writers.
//!
//! Soundness rests on who may hold what:
//! - a reference into an [`RcuBox`] needs a [`Reader`], which only the FFI layer makes: from a
//!   hook call ([`super::skb::Packet::reader`], netfilter holds the RCU read lock around every
//!   hook) or for a request that reads ([`super::genl::Request::reader`], which takes the read lock); the
//!   reference cannot outlive the reader;
//! - a replaced value is freed after a grace period that starts when it is replaced
//!   ([`Retiring`]); waiting for the rest of it must happen where sleeping is allowed and no
//!   read lock is held: only a netlink `doit` may do it ([`super::genl::Request::settle`]),
//!   and no `Reader` can exist there (a `doit` has neither a packet nor a dump, and a reader
//!   made from the request borrows it, while waiting needs it exclusively).

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;
use kernel::sync::rcu;

/// Proof of an RCU read-side critical section, for as long as it lives.
pub(crate) struct Reader<'a> {
    /// The section this reader entered; `None` for one its caller holds for `'a`.
    _guard: Option<rcu::Guard>,
    _life: PhantomData<&'a ()>,
}

impl<'a> Reader<'a> {
    /// Enters a read-side critical section.
    pub(super) fn new() -> Self {
        Self { _guard: Some(rcu::read_lock()), _life: PhantomData }
    }

    /// The proof of a read-side critical section already held, without entering another one
    /// (what a hook call runs in: nesting costs a lock acquisition under lockdep on every
    /// hook of every packet).
    ///
    /// # Safety
    ///
    /// An RCU read-side critical section is held for all of `'a`.
    pub(super) unsafe fn held() -> Self {
        Self { _guard: None, _life: PhantomData }
    }
}

/// An optional `KBox<T>` that RCU readers borrow without locks while writers replace it.
///
/// # Invariants
///
/// `ptr` is null or comes from `KBox::into_raw` and is owned by this box; a pointer swapped
/// out is owned by the [`Retired`] that received it.
pub(crate) struct RcuBox<T> {
    ptr: AtomicPtr<T>,
    _owns: PhantomData<KBox<T>>,
}

impl<T> RcuBox<T> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        Self { ptr: AtomicPtr::new(core::ptr::null_mut()), _owns: PhantomData }
    }

    /// The published value, for as long as both the reader and the box live.
    pub(crate) fn get<'a>(&'a self, _reader: &'a Reader<'_>) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a live `KBox` (invariant). It is freed only after it
        // was swapped out and a grace period passed (`Retiring::settle`, whose callers hold no
        // reader), or without one once no reader can exist (`RcuBoxes::free_unread`). The
        // reader holds a read-side critical section for `'a`, so no grace period that starts
        // after this load ends while the reference lives.
        unsafe { p.as_ref() }
    }

    /// The published value, for its writer (no read-side section needed: a value is freed
    /// only after a replace swapped it out). `_writers`: what every writer of the box holds
    /// exclusively while it replaces the value ([`RcuBox::publish`]; a namespace's table
    /// configuration), borrowed for as long as the reference lives, so that no replace can
    /// happen meanwhile.
    pub(crate) fn get_locked<'a, L: ?Sized>(&'a self, _writers: &'a L) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a live `KBox` (invariant), freed only after a replace
        // swapped it out. Writers replace through `publish`, which needs `_writers`
        // exclusively; the shared borrow held here for `'a` excludes that. (`replace` proper
        // is for the owner, at exit, when no request runs.)
        unsafe { p.as_ref() }
    }

    /// [`RcuBox::replace`] by a writer, which holds `_writers` exclusively (see
    /// [`RcuBox::get_locked`]).
    pub(crate) fn publish<L: ?Sized>(&self, new: Option<KBox<T>>, _writers: &mut L) -> Retired<T> {
        self.replace(new)
    }

    /// Publishes `new` (readers see it from now on) and returns what it replaced, to be freed
    /// after a grace period.
    fn replace(&self, new: Option<KBox<T>>) -> Retired<T> {
        let newp = new.map_or(core::ptr::null_mut(), KBox::into_raw);
        // INVARIANT: The old pointer's ownership moves to the `Retired`.
        let old = self.ptr.swap(newp, Ordering::AcqRel);
        Retired { ptr: old, _owns: PhantomData }
    }
}

// SAFETY: The box owns a `T` that readers on other CPUs share: `T` must be `Send + Sync`.
unsafe impl<T: Send + Sync> Send for RcuBox<T> {}
// SAFETY: As above; all access goes through atomics.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

/// Several [`RcuBox`]es (a namespace's tables).
///
/// Dropping it with a value still published leaks the value (with a warning): freeing needs
/// a grace period or the certainty that no reader is left, which only the owner knows; the
/// namespace's exit frees them with [`RcuBoxes::free_unread`] first.
pub(crate) struct RcuBoxes<T, const N: usize>(pub(crate) [RcuBox<T>; N]);

impl<T, const N: usize> RcuBoxes<T, N> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        Self([const { RcuBox::new() }; N])
    }

    /// Box `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&RcuBox<T>> {
        self.0.get(i)
    }

    /// The boxes in order.
    pub(crate) fn iter(&self) -> core::slice::Iter<'_, RcuBox<T>> {
        self.0.iter()
    }

    /// Frees every published value at once.
    ///
    /// # Safety
    ///
    /// No reader of these boxes exists or can start (the namespace's hooks are unregistered
    /// and a grace period passed since; no netlink request runs for it).
    pub(super) unsafe fn free_unread(&self) {
        for b in self.0.iter() {
            let r = b.replace(None);
            let p = r.ptr;
            core::mem::forget(r);
            if !p.is_null() {
                // SAFETY: `p` came from `KBox::into_raw` and was owned by the box (invariant);
                // no reader can hold it (the caller's guarantee).
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}

impl<T, const N: usize> Drop for RcuBoxes<T, N> {
    fn drop(&mut self) {
        for b in self.0.iter() {
            drop(b.replace(None));
        }
    }
}

/// A value swapped out of an [`RcuBox`] that readers may still be using.
///
/// # Invariants
///
/// `ptr` is null or comes from `KBox::into_raw` and is owned by this value.
pub(crate) struct Retired<T> {
    ptr: *mut T,
    _owns: PhantomData<KBox<T>>,
}

impl<T> Retired<T> {
    /// Nothing retired.
    pub(crate) const fn none() -> Self {
        Self { ptr: core::ptr::null_mut(), _owns: PhantomData }
    }
}

/// A value swapped out of an [`RcuBox`] with a grace period started for it: freed when a
/// later writer settles it ([`super::genl::Request::settle`], which waits only for what is
/// left of that grace period, usually nothing) or at namespace exit. The writer that swapped
/// it out does not wait.
///
/// # Invariants
///
/// `ptr` is null or comes from `KBox::into_raw` and is owned by this value; readers can hold
/// it only in read-side critical sections that started before the grace period `cookie`
/// names.
pub(crate) struct Retiring<T> {
    ptr: *mut T,
    cookie: core::ffi::c_ulong,
    _owns: PhantomData<KBox<T>>,
}

impl<T> Retiring<T> {
    /// Nothing retiring.
    pub(crate) const fn none() -> Self {
        Self { ptr: core::ptr::null_mut(), cookie: 0, _owns: PhantomData }
    }

    /// `r`, with a grace period started for it now (after the swap that retired it).
    pub(crate) fn start(r: Retired<T>) -> Self {
        let ptr = r.ptr;
        core::mem::forget(r);
        if ptr.is_null() {
            return Self::none();
        }
        // SAFETY: `start_poll_synchronize_rcu` only reads and advances RCU's state; any
        // context may call it.
        let cookie = unsafe { super::sys::rnf_rcu_start_poll() };
        // INVARIANT: Ownership moves from `r` (forgotten); the grace period started after the
        // swap that took the pointer out of its box, so only sections older than it can hold it.
        Self { ptr, cookie, _owns: PhantomData }
    }

    /// Waits for what is left of the grace period, then hands the value back.
    ///
    /// # Safety
    ///
    /// The caller may sleep and holds no RCU read lock (no [`Reader`]).
    pub(super) unsafe fn settle(mut self) -> Option<KBox<T>> {
        let p = core::mem::replace(&mut self.ptr, core::ptr::null_mut());
        if p.is_null() {
            return None;
        }
        // SAFETY: The caller may sleep and holds no read lock.
        unsafe { super::sys::rnf_rcu_cond_sync(self.cookie) };
        // SAFETY: `p` is an owned `KBox` pointer (invariant; `self.ptr` is null now, so it is
        // reclaimed once), and the grace period it waited for ended every section that could
        // hold it.
        Some(unsafe { KBox::from_raw(p) })
    }

    /// Frees the value without waiting.
    ///
    /// # Safety
    ///
    /// No reader that could hold it is left (the namespace's hooks are unregistered and a
    /// grace period passed since; no netlink request runs for it).
    pub(super) unsafe fn free_unread(&mut self) {
        let p = core::mem::replace(&mut self.ptr, core::ptr::null_mut());
        if !p.is_null() {
            // SAFETY: `p` is an owned `KBox` pointer (invariant), reclaimed once; no reader
            // holds it (the caller's guarantee).
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}

impl<T> Drop for Retiring<T> {
    fn drop(&mut self) {
        // As `Retired`'s: leaking is the safe choice, and every path settles or frees first.
        if !self.ptr.is_null() {
            pr_warn!("rust_nf: a replaced table version was leaked (not freed after a grace period)\n");
        }
    }
}

// SAFETY: The value is owned (no reader touches it through this handle); sending the owner
// to another thread sends a `T`.
unsafe impl<T: Send> Send for Retiring<T> {}
// SAFETY: A shared `Retiring` gives no access to the value.
unsafe impl<T> Sync for Retiring<T> {}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        // Not waited for: freeing now could pull the value from under a reader, and waiting
        // here could be inside a read-side section. Leaking is the safe choice; every path of
        // the module waits, so this only reports a bug.
        if !self.ptr.is_null() {
            pr_warn!("rust_nf: a replaced table version was leaked (not freed after a grace period)\n");
        }
    }
}

/// A box that is published once and then stays until its owner goes away (a namespace's
/// connection table): readers need no RCU guard, since nothing replaces the value while the
/// box lives.
///
/// # Invariants
///
/// `ptr` is null or comes from `KBox::into_raw` and is owned by this box; once non-null it
/// never changes until [`OnceBox::free_unread`].
pub(crate) struct OnceBox<T> {
    ptr: AtomicPtr<T>,
    _owns: PhantomData<KBox<T>>,
}

impl<T> OnceBox<T> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        Self { ptr: AtomicPtr::new(core::ptr::null_mut()), _owns: PhantomData }
    }

    /// The value, once published.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a live `KBox` owned by this box (invariant), freed only
        // by `free_unread`, whose callers guarantee that no reference from here is left.
        unsafe { p.as_ref() }
    }

    /// Publishes `new` unless a value is already there; then hands `new` back.
    pub(crate) fn set(&self, new: KBox<T>) -> core::result::Result<(), KBox<T>> {
        let p = KBox::into_raw(new);
        match self.ptr.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
            // INVARIANT: The box owns `p` from now on.
            Ok(_) => Ok(()),
            // SAFETY: `p` came from `KBox::into_raw` just above and was not published.
            Err(_) => Err(unsafe { KBox::from_raw(p) }),
        }
    }

    /// Frees the value.
    ///
    /// # Safety
    ///
    /// No reference from [`OnceBox::get`] exists or can be made anymore (the namespace's hooks
    /// are unregistered and a grace period passed; no netlink request runs for it).
    pub(super) unsafe fn free_unread(&self) {
        let p = self.ptr.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: `p` came from `KBox::into_raw` and was owned by the box (invariant); no
            // reference to it is left (the caller's guarantee).
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        if !self.ptr.load(Ordering::Relaxed).is_null() {
            pr_warn!("rust_nf: a connection table was leaked (not freed at namespace exit)\n");
        }
    }
}

// SAFETY: The box owns a `T` that readers on other CPUs share: `T` must be `Send + Sync`.
unsafe impl<T: Send + Sync> Send for OnceBox<T> {}
// SAFETY: As above; all access goes through atomics.
unsafe impl<T: Send + Sync> Sync for OnceBox<T> {}
