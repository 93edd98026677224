// SPDX-License-Identifier: GPL-2.0

//! A box published to RCU readers (the packet path, table listings) and replaced by writers.
//!
//! Soundness rests on who may hold what:
//! - a reference into an [`RcuBox`] needs a [`Reader`], which only the FFI layer makes: from a
//!   hook call ([`super::skb::Packet::reader`], netfilter holds the RCU read lock around every
//!   hook) or for a request that reads ([`super::genl::Request::reader`], which takes the read lock); the
//!   reference cannot outlive the reader;
//! - a replaced value is freed by a worker after a grace period that starts when it is
//!   replaced ([`Retired::free_after_gp`]); waiting for a grace period (for the counter slots
//!   a retired version may still count into) must happen where sleeping is allowed and no read
//!   lock is held: only a netlink `doit` may do it ([`super::genl::Request::wait_gp`]), and no
//!   `Reader` can exist there (a `doit` has neither a packet nor a dump, and a reader made
//!   from the request borrows it, while waiting needs it exclusively).

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;
use kernel::sync::rcu;
use kernel::sync::{Mutex, MutexGuard};

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
        // was swapped out and a grace period passed (`Retired::free_after_gp`), or without one
        // once no reader can exist (`RcuBoxes::free_unread`). The
        // reader holds a read-side critical section for `'a`, so no grace period that starts
        // after this load ends while the reference lives.
        unsafe { p.as_ref() }
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

/// Boxes published to readers, with the mutex every writer of them holds: readers borrow the
/// values under RCU ([`Published::boxes`]); a writer locks ([`Published::lock`]) and then
/// reads the published values without a read-side section and replaces them, both only through
/// its [`Writer`], so no writer of other boxes or without the lock can.
#[pin_data]
pub(crate) struct Published<T, L, const N: usize> {
    boxes: RcuBoxes<T, N>,
    #[pin]
    writers: Mutex<L>,
}

impl<T, L, const N: usize> Published<T, L, N> {
    /// Nothing published; `l` is what the writers' mutex protects.
    pub(crate) fn new(l: L) -> impl PinInit<Self> {
        pin_init!(Self { boxes: RcuBoxes::new(), writers <- kernel::new_mutex!(l) })
    }

    /// The boxes, for readers.
    pub(crate) fn boxes(&self) -> &RcuBoxes<T, N> {
        &self.boxes
    }

    /// Takes the writers' mutex.
    pub(crate) fn lock(&self) -> Writer<'_, T, L, N> {
        Writer { boxes: &self.boxes, guard: self.writers.lock() }
    }
}

/// A writer of [`Published`] boxes, holding their mutex; derefs to what the mutex protects.
pub(crate) struct Writer<'a, T, L, const N: usize> {
    boxes: &'a RcuBoxes<T, N>,
    guard: MutexGuard<'a, L>,
}

impl<T, L, const N: usize> Writer<'_, T, L, N> {
    /// The value published in box `i`, without a read-side section.
    pub(crate) fn live(&self, i: usize) -> Option<&T> {
        let p = self.boxes.get(i)?.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a live `KBox` (the box's invariant), freed only after
        // a replace swapped it out. The boxes are replaced only through `Writer::publish`
        // (which needs this writer exclusively, and the mutex lets one writer exist at a time)
        // or by their owner at exit, when no writer exists; the reference borrows this writer.
        unsafe { p.as_ref() }
    }

    /// Publishes `new` in box `i` (readers see it from now on) and returns what it replaced.
    pub(crate) fn publish(&mut self, i: usize, new: Option<KBox<T>>) -> Retired<T> {
        match self.boxes.get(i) {
            Some(b) => b.replace(new),
            // (No such box: `new` was never published and goes.)
            None => Retired::none(),
        }
    }
}

impl<T, L, const N: usize> core::ops::Deref for Writer<'_, T, L, N> {
    type Target = L;
    fn deref(&self) -> &L {
        &self.guard
    }
}

impl<T, L: Unpin, const N: usize> core::ops::DerefMut for Writer<'_, T, L, N> {
    fn deref_mut(&mut self) -> &mut L {
        &mut self.guard
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

impl<T: Send> Retired<T> {
    /// Frees the value once a grace period that starts now (after the swap that retired it) is
    /// over, in a worker, with `slot` (allocated beforehand, so that this cannot fail). The
    /// writer does not wait.
    /// `_req`: the request that replaced it (the module's free workqueue exists while a
    /// request can run).
    pub(crate) fn free_after_gp(self, slot: FreeSlot, _req: &super::genl::Request<'_>) {
        let p = self.ptr;
        core::mem::forget(self);
        if p.is_null() {
            return;
        }
        let d = slot.0.as_ptr();
        core::mem::forget(slot);
        // SAFETY: `d` is an unused deferred-free slot from `rnf_deferred_alloc` (the
        // `FreeSlot` invariant; forgotten, so it is handed over once), queued on the free
        // workqueue, which lives from before the netlink family is registered until after it is
        // unregistered and every queued free has run (`rnf_free_drain`), so during `_req`; `p` is an owned
        // `KBox<T>` pointer (the `Retired` invariant; forgotten, so it is freed once), out of
        // its box, so only read sections older than the grace period queued here can hold
        // it; `drop_box::<T>` frees exactly such a pointer, and may run on any CPU (`T: Send`).
        unsafe { super::sys::rnf_deferred_queue(d, p.cast(), Some(drop_box::<T>)) };
    }
}

/// Frees a `KBox<T>` (the worker's end of [`Retired::free_after_gp`]).
///
/// # Safety
///
/// `p` comes from `KBox::<T>::into_raw`, is freed once, and no reader can hold it.
unsafe extern "C" fn drop_box<T>(p: *mut core::ffi::c_void) {
    // SAFETY: The caller's guarantee.
    drop(unsafe { KBox::from_raw(p.cast::<T>()) });
}

/// Room to free one retired value after a grace period, allocated while a change may still
/// fail (publishing must not).
///
/// # Invariants
///
/// The pointer comes from `rnf_deferred_alloc` and is owned (unused) by this value.
pub(crate) struct FreeSlot(core::ptr::NonNull<core::ffi::c_void>);

impl FreeSlot {
    /// A slot, or `ENOMEM`; `_req`: the request that will use it (a `doit`, which may sleep).
    pub(crate) fn new(_req: &super::genl::Request<'_>) -> Result<Self> {
        // SAFETY: Allocates (GFP_KERNEL_ACCOUNT) in a netlink `doit`, which may sleep.
        let p = unsafe { super::sys::rnf_deferred_alloc() };
        // INVARIANT: A non-null result is an unused slot we own.
        core::ptr::NonNull::new(p).map(Self).ok_or(ENOMEM)
    }
}

impl Drop for FreeSlot {
    fn drop(&mut self) {
        // SAFETY: An unused slot we own (invariant), given back once.
        unsafe { super::sys::rnf_deferred_release(self.0.as_ptr()) };
    }
}

// SAFETY: The slot is plain memory no one else refers to.
unsafe impl Send for FreeSlot {}

/// A grace period started (for memory a change let go that readers may still use: the
/// counter slots of a retired version); [`super::genl::Request::wait_gp`] waits for what is
/// left of it.
#[derive(Clone, Copy)]
pub(crate) struct GpCookie(core::ffi::c_ulong);

impl GpCookie {
    /// Starts a grace period now ([`super::genl::Request::start_gp`]).
    pub(super) fn start() -> Self {
        // SAFETY: `start_poll_synchronize_rcu` only reads and advances RCU's state; it is
        // called from a netlink `doit` (process context, interrupts enabled), as older
        // kernels' lockdep assertion in it requires.
        Self(unsafe { super::sys::rnf_rcu_start_poll() })
    }

    /// Waits until the grace period is over (returns at once if it is).
    ///
    /// # Safety
    ///
    /// The caller may sleep and holds no RCU read lock (no [`Reader`]).
    pub(super) unsafe fn wait(self) {
        // SAFETY: The caller's guarantee.
        unsafe { super::sys::rnf_rcu_cond_sync(self.0) }
    }
}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        // Not waited for: freeing now could pull the value from under a reader, and waiting
        // here could be inside a read-side section. Leaking is the safe choice; every path of
        // the module hands a retired value to `free_after_gp`, so this only reports a bug.
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
