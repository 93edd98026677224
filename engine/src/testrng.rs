// SPDX-License-Identifier: GPL-2.0

//! Deterministic pseudo-random numbers for the engine's long-running host tests (xorshift64).
//! Test builds only: the kernel module never mounts this file.

/// xorshift64 with a fixed seed: the same sequence on every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index below `n` (`n` > 0).
    pub(crate) fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
