// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables bottom halves (`spin_lock_bh`), for data shared between the
//! packet path (softirq) and process context, as xt_recent's `recent_lock`: interrupts stay
//! on (the kernel crate offers only plain and irq-disabling spinlocks).

use super::sys;
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use kernel::prelude::*;

/// `T` behind a BH-disabling spinlock.
///
/// # Invariants
///
/// `lock` came from `rnf_bh_lock_new` and is freed only by `Drop`; `data` is accessed only
/// while `lock` is held (in [`BhLock::with`]).
pub(crate) struct BhLock<T> {
    lock: NonNull<sys::rnf_bh_lock>,
    data: UnsafeCell<T>,
}

// SAFETY: The lock serialises every access to `data`, from any CPU and context.
unsafe impl<T: Send> Send for BhLock<T> {}
// SAFETY: As above: `&BhLock<T>` only gives `&mut T` under the lock.
unsafe impl<T: Send> Sync for BhLock<T> {}

impl<T> BhLock<T> {
    /// A new lock around `data` (allocates: process context).
    pub(crate) fn new(data: T) -> Result<Self> {
        // SAFETY: No preconditions.
        let p = unsafe { sys::rnf_bh_lock_new() };
        // INVARIANT: From `rnf_bh_lock_new`; `data` is not shared yet.
        NonNull::new(p).map(|lock| Self { lock, data: UnsafeCell::new(data) }).ok_or(ENOMEM)
    }

    /// Runs `f` on the data with the lock held (bottom halves off; `f` must not sleep).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: `lock` is live (invariant); released below on the same path.
        unsafe { sys::rnf_bh_lock(self.lock.as_ptr()) };
        // SAFETY: The lock is held, so no other `&mut T` exists (invariant), and the
        // reference does not outlive `f`.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: Taken above.
        unsafe { sys::rnf_bh_unlock(self.lock.as_ptr()) };
        r
    }
}

impl<T> Drop for BhLock<T> {
    fn drop(&mut self) {
        // SAFETY: `lock` came from `rnf_bh_lock_new` and is freed once, here; nobody holds it
        // (`drop` has the only reference).
        unsafe { sys::rnf_bh_lock_free(self.lock.as_ptr()) };
    }
}
