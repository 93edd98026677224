// SPDX-License-Identifier: GPL-2.0

//! The FFI layer: the only part of the module that uses `unsafe` or holds raw pointers.
//!
//! What the C shim (`rnf_shim.c`) offers is wrapped here in safe types, in the style of the
//! kernel crate's own abstractions (`# Invariants` on each type, a `// SAFETY:` comment saying
//! why each `unsafe` block holds, `Drop` that undoes a registration or allocation):
//!
//! - [`skb::Packet`]: the packet and hook state of one hook call, usable only during it;
//! - [`genl::Request`] and [`genl::Dump`]: a generic netlink request, its reply, a dump;
//! - [`pcpu::PcpuCounters`]: per-CPU packet and byte counters;
//! - [`lock::BhLock`]: a spinlock that disables bottom halves, for state the packet path
//!   and commands share;
//! - [`rcu::RcuBox`]: a box published to the packet path, read only under an RCU guard whose
//!   lifetime bounds the reference;
//! - [`shim`]: the module's registration, the logger reference, jiffies and friends;
//! - [`entry`]: the functions the C shim calls, which turn its raw pointers into these types
//!   and call the safe code of the rest of the module.
//!
//! The Rust declarations of the shim are generated from `rnf_shim.h` by bindgen at every
//! module build (`shim_gen.rs`), and the functions Rust implements are checked against the
//! header's function types in [`entry`]: a prototype that changes on one side only does not
//! compile. Everything else in the module is compiled with `unsafe_code` denied.

#[path = "shim_gen.rs"]
#[allow(
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unreachable_pub,
    clippy::all
)]
mod sys;

pub(crate) mod ct;
pub(crate) mod entry;
pub(crate) mod genl;
pub(crate) mod lock;
pub(crate) mod pcpu;
pub(crate) mod rcu;
pub(crate) mod shim;
pub(crate) mod skb;
