// SPDX-License-Identifier: GPL-2.0

//! A box published to RCU readers (the packet path) and replaced by writers.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;
use kernel::sync::rcu;

/// An optional `KBox<T>` that RCU readers borrow without locks while writers replace it.
///
/// A reader's reference cannot outlive its [`rcu::Guard`] (the compiler enforces it); a value
/// replaced by a writer comes back as [`Retired`], which frees it only after a grace period,
/// when no reader can still hold it.
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

    /// The published value, for as long as both the guard and the box live.
    pub(crate) fn get<'a>(&'a self, _guard: &'a rcu::Guard) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a live `KBox` (invariant). It can only be freed after
        // it was swapped out and a grace period passed (`Retired`), or when the box is dropped,
        // which the borrow of `self` for `'a` rules out. The guard holds an RCU read-side
        // critical section for `'a`, so no grace period that starts after this load ends
        // while the reference lives.
        unsafe { p.as_ref() }
    }

    /// Publishes `new` (readers see it from now on) and returns what it replaced.
    pub(crate) fn replace(&self, new: Option<KBox<T>>) -> Retired<T> {
        let newp = new.map_or(core::ptr::null_mut(), KBox::into_raw);
        // INVARIANT: The old pointer's ownership moves to the `Retired`.
        let old = self.ptr.swap(newp, Ordering::AcqRel);
        Retired { ptr: old, _owns: PhantomData }
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // Readers may still hold the value: free it only after a grace period.
        drop(self.replace(None));
    }
}

// SAFETY: The box owns a `T` that readers on other CPUs share: `T` must be `Send + Sync`.
unsafe impl<T: Send + Sync> Send for RcuBox<T> {}
// SAFETY: As above; all access goes through atomics.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

/// Several [`RcuBox`]es that go away together, after one grace period.
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
}

impl<T, const N: usize> Drop for RcuBoxes<T, N> {
    fn drop(&mut self) {
        // Each box alone would wait for a grace period of its own.
        drop(Retired::wait_all(self.0.each_ref().map(|b| b.replace(None))));
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

    /// Waits for a grace period, then hands the value back (no reader can hold it anymore).
    pub(crate) fn wait(self) -> Option<KBox<T>> {
        let [v] = Self::wait_all([self]);
        v
    }

    /// [`Retired::wait`] for several values with a single grace period.
    pub(crate) fn wait_all<const N: usize>(list: [Retired<T>; N]) -> [Option<KBox<T>>; N] {
        if list.iter().any(|r| !r.ptr.is_null()) {
            rcu::synchronize_rcu();
        }
        list.map(|r| {
            let p = r.ptr;
            core::mem::forget(r);
            // SAFETY: `p` is null or an owned `KBox` pointer (invariant; `r` was forgotten, so
            // it is reclaimed exactly once), and the grace period above ended every read-side
            // critical section that could have loaded it.
            (!p.is_null()).then(|| unsafe { KBox::from_raw(p) })
        })
    }
}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        let r = Retired { ptr: core::mem::replace(&mut self.ptr, core::ptr::null_mut()), _owns: PhantomData };
        drop(r.wait());
    }
}

// SAFETY: A `Retired` owns its value like a `KBox` does.
unsafe impl<T: Send> Send for Retired<T> {}
