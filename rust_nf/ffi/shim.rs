// SPDX-License-Identifier: GPL-2.0

//! The module's registration with the kernel, and small kernel services.

use super::sys;
use kernel::prelude::*;

/// The pernet operations (hooks in every netns) and the generic netlink family.
///
/// # Invariants
///
/// `rnf_shim_init` succeeded; `Drop` is the only caller of `rnf_shim_exit`.
pub(crate) struct Registration {
    _private: (),
}

impl Registration {
    /// Registers everything. Only one may exist at a time (the module holds it).
    pub(crate) fn new(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called from module init, once; the shim's state is its own.
        let err = unsafe { sys::rnf_shim_init() };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: Registered just above.
        Ok(Self { _private: () })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: Registered (invariant) and unregistered only here.
        unsafe { sys::rnf_shim_exit() };
    }
}

/// A reference on the kernel's syslog logger (`nf_logger_find_get`, as xt_LOG's checkentry
/// takes one): loads it when it is a module and keeps it loaded while a LOG rule exists.
///
/// # Invariants
///
/// `rnf_logger_get` succeeded; `Drop` gives the reference back.
pub(crate) struct LoggerRef {
    _private: (),
}

impl LoggerRef {
    /// Takes a reference; `ENOENT` when the kernel has no syslog logger.
    pub(crate) fn get() -> Result<Self> {
        // SAFETY: No preconditions (may sleep: called from a netlink request).
        let err = unsafe { sys::rnf_logger_get() };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        // INVARIANT: Taken just above.
        Ok(Self { _private: () })
    }
}

impl Drop for LoggerRef {
    fn drop(&mut self) {
        // SAFETY: Taken in `get` (invariant), given back once.
        unsafe { sys::rnf_logger_put() };
    }
}

/// `cond_resched()`: lets other tasks run during a long request (process context only).
pub(crate) fn cond_resched() {
    // SAFETY: Called from a netlink `doit` (process context, may sleep), no lock held that
    // forbids sleeping (the namespace's configuration mutex is a sleeping lock).
    unsafe { sys::rnf_cond_resched() }
}

/// `ktime_get_ns()`: monotonic time in nanoseconds.
pub(crate) fn ktime_ns() -> u64 {
    // SAFETY: Reads the monotonic clock; no preconditions.
    unsafe { sys::rnf_ktime_ns() }
}

/// `jiffies`.
// `c_ulong` is 32 bits wide on some targets, where this conversion is not useless.
#[allow(clippy::useless_conversion)]
pub(crate) fn jiffies() -> u64 {
    // SAFETY: Reads the jiffies counter; no preconditions.
    u64::from(unsafe { sys::rnf_jiffies() })
}

/// `HZ`.
pub(crate) fn hz() -> u32 {
    // SAFETY: No preconditions.
    unsafe { sys::rnf_hz() }
}

/// The current CPU (`raw_smp_processor_id()`).
pub(crate) fn cpu_id() -> u32 {
    // SAFETY: No preconditions.
    unsafe { sys::rnf_cpu_id() }
}

/// `nr_cpu_ids`.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: No preconditions.
    unsafe { sys::rnf_nr_cpu_ids() }
}

/// `get_random_u32()`.
pub(crate) fn random_u32() -> u32 {
    // SAFETY: No preconditions.
    unsafe { sys::rnf_random_u32() }
}

/// The per-namespace limits (module parameters `max_rules`, `max_rule_bytes`): rules and
/// bytes of rule encodings, over all tables of one network namespace.
pub(crate) fn limits() -> (usize, usize) {
    // SAFETY: Reads two module parameters; no preconditions.
    let (r, b) = unsafe { (sys::rnf_max_rules(), sys::rnf_max_rule_bytes()) };
    (r as usize, b as usize)
}
