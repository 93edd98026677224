// SPDX-License-Identifier: GPL-2.0

//! A chain's rules while a change edits them: runs of the current configuration's rules, held
//! as index ranges (never copied one by one), and the change's new rules between them.
//!
//! Inserting, deleting or replacing a rule costs the number of pieces (a run split in two, a
//! new rule put in), not the chain's length; the result is read run by run, so that the glue
//! copies each run of kept rules at once.

use super::compiled::{OutOfMemory, Store};

/// A growable sequence: a [`Store`] that can also shrink.
pub trait Seq<T>: Store<T> {
    /// Keeps the first `n` elements.
    fn truncate(&mut self, n: usize);
}

#[cfg(any(test, feature = "std"))]
impl<T> Seq<T> for std::vec::Vec<T> {
    fn truncate(&mut self, n: usize) {
        std::vec::Vec::truncate(self, n);
    }
}

#[cfg(any(test, feature = "std"))]
extern crate std;

/// A piece of an edited chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<E> {
    /// The current rules `first..first + len` (indices in the current configuration), in order.
    Old {
        /// The first.
        first: usize,
        /// How many (at least one).
        len: usize,
    },
    /// A new rule.
    New(E),
}

impl<E> Piece<E> {
    fn len(&self) -> usize {
        match self {
            Piece::Old { len, .. } => *len,
            Piece::New(_) => 1,
        }
    }
}

/// One rule of an edited chain: a current rule (its index) or a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a, E> {
    /// The current rule with this index.
    Old(usize),
    /// A new rule.
    New(&'a E),
}

/// A position outside the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceError {
    /// No rule at that position (or beyond the end, for an insert).
    OutOfRange,
    /// No room.
    OutOfMemory,
}

impl From<OutOfMemory> for SpliceError {
    fn from(_: OutOfMemory) -> Self {
        SpliceError::OutOfMemory
    }
}

/// A chain being edited: its pieces in order, and its length.
#[derive(Debug)]
pub struct Splice<E, S> {
    pieces: S,
    len: usize,
    _rules: core::marker::PhantomData<E>,
}

impl<E, S: Seq<Piece<E>>> Splice<E, S> {
    /// The chain as it is: the current rules `first..first + len` (`pieces` empty).
    pub fn new(mut pieces: S, first: usize, len: usize) -> Result<Self, OutOfMemory> {
        pieces.truncate(0);
        if len != 0 {
            pieces.push(Piece::Old { first, len })?;
        }
        Ok(Self { pieces, len, _rules: core::marker::PhantomData })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No rule.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece<E>] {
        self.pieces.as_slice()
    }

    /// The rules, in order.
    pub fn iter(&self) -> impl Iterator<Item = Item<'_, E>> + '_ {
        self.pieces.as_slice().iter().flat_map(|p| {
            let (old, new) = match p {
                Piece::Old { first, len } => (*first..first.saturating_add(*len), None),
                Piece::New(e) => (0..0, Some(Item::New(e))),
            };
            old.map(Item::Old).chain(new)
        })
    }

    /// The piece that holds rule `pos`, and the rule's offset in it.
    fn find(&self, pos: usize) -> Option<(usize, usize)> {
        let mut at = 0usize;
        for (k, p) in self.pieces.as_slice().iter().enumerate() {
            let n = p.len();
            if pos < at.saturating_add(n) {
                return Some((k, pos - at));
            }
            at = at.saturating_add(n);
        }
        None
    }

    /// Puts `v` in as piece `k` (the pieces from `k` on move one place).
    fn put(&mut self, k: usize, v: Piece<E>) -> Result<(), OutOfMemory> {
        self.pieces.push(v)?;
        if let Some(tail) = self.pieces.as_mut_slice().get_mut(k..) {
            tail.rotate_right(1);
        }
        Ok(())
    }

    /// Takes piece `k` out.
    fn take(&mut self, k: usize) {
        let n = self.pieces.as_slice().len();
        if let Some(tail) = self.pieces.as_mut_slice().get_mut(k..) {
            tail.rotate_left(1);
            self.pieces.truncate(n - 1);
        }
    }

    /// Inserts `e` so that it becomes rule `pos` (`pos == len()` appends).
    pub fn insert(&mut self, pos: usize, e: E) -> Result<(), SpliceError> {
        if pos > self.len {
            return Err(SpliceError::OutOfRange);
        }
        match self.find(pos) {
            None => self.pieces.push(Piece::New(e))?,
            Some((k, 0)) => self.put(k, Piece::New(e))?,
            Some((k, off)) => {
                // Inside a run: it splits around the new rule.
                let Some(&Piece::Old { first, len }) = self.pieces.as_slice().get(k) else {
                    return Err(SpliceError::OutOfRange);
                };
                self.pieces.push(Piece::New(e))?;
                self.pieces.push(Piece::Old { first: first + off, len: len - off })?;
                let n = self.pieces.as_slice().len();
                let s = self.pieces.as_mut_slice();
                if let Some(p) = s.get_mut(k) {
                    *p = Piece::Old { first, len: off };
                }
                if let Some(tail) = s.get_mut(k + 1..n) {
                    tail.rotate_right(2);
                }
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Deletes rule `pos`.
    pub fn remove(&mut self, pos: usize) -> Result<(), SpliceError> {
        let (k, off) = self.find(pos).ok_or(SpliceError::OutOfRange)?;
        match self.pieces.as_slice().get(k) {
            Some(&Piece::Old { first, len }) if len > 1 => {
                let (head, tail) = (off, len - off - 1);
                if head == 0 || tail == 0 {
                    let first = if head == 0 { first + 1 } else { first };
                    if let Some(p) = self.pieces.as_mut_slice().get_mut(k) {
                        *p = Piece::Old { first, len: len - 1 };
                    }
                } else {
                    self.put(k + 1, Piece::Old { first: first + off + 1, len: tail })?;
                    if let Some(p) = self.pieces.as_mut_slice().get_mut(k) {
                        *p = Piece::Old { first, len: head };
                    }
                }
            }
            Some(_) => self.take(k),
            None => return Err(SpliceError::OutOfRange),
        }
        self.len -= 1;
        Ok(())
    }

    /// Replaces rule `pos` with `e`.
    pub fn replace(&mut self, pos: usize, e: E) -> Result<(), SpliceError> {
        if pos >= self.len {
            return Err(SpliceError::OutOfRange);
        }
        self.remove(pos)?;
        self.insert(pos, e)
    }

    /// The chain's rules become `new`, all new.
    pub fn set(&mut self, new: impl IntoIterator<Item = E>) -> Result<(), OutOfMemory> {
        self.pieces.truncate(0);
        self.len = 0;
        for e in new {
            self.pieces.push(Piece::New(e))?;
            self.len += 1;
        }
        Ok(())
    }

    /// The position of the first rule for which `old` (a current rule, by index) or `new` (a
    /// new rule) holds.
    pub fn position(&self, mut old: impl FnMut(usize) -> bool, mut new: impl FnMut(&E) -> bool) -> Option<usize> {
        self.iter().position(|it| match it {
            Item::Old(i) => old(i),
            Item::New(e) => new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrng::Rng;
    use std::vec::Vec;

    /// What a plain vector of the same rules holds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        Old(usize),
        New(u32),
    }

    fn flat(s: &Splice<u32, Vec<Piece<u32>>>) -> Vec<R> {
        s.iter()
            .map(|i| match i {
                Item::Old(o) => R::Old(o),
                Item::New(&e) => R::New(e),
            })
            .collect()
    }

    #[test]
    fn edits_equal_a_vectors() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut pieces_seen = 0usize;
        for round in 0..2000 {
            let first = rng.index(50);
            let len = rng.index(40);
            let mut s = Splice::new(Vec::new(), first, len).unwrap();
            let mut model: Vec<R> = (first..first + len).map(R::Old).collect();
            for step in 0..30u32 {
                let e = round * 100 + step;
                let pos = rng.index(model.len() + 2);
                match rng.below(5) {
                    0 | 1 => {
                        let r = s.insert(pos, e);
                        if pos <= model.len() {
                            model.insert(pos, R::New(e));
                            assert_eq!(r, Ok(()));
                        } else {
                            assert_eq!(r, Err(SpliceError::OutOfRange));
                        }
                    }
                    2 | 3 => {
                        let r = s.remove(pos);
                        if pos < model.len() {
                            model.remove(pos);
                            assert_eq!(r, Ok(()));
                        } else {
                            assert_eq!(r, Err(SpliceError::OutOfRange));
                        }
                    }
                    _ => {
                        let r = s.replace(pos, e);
                        if pos < model.len() {
                            model[pos] = R::New(e);
                            assert_eq!(r, Ok(()));
                        } else {
                            assert_eq!(r, Err(SpliceError::OutOfRange));
                        }
                    }
                }
                assert_eq!(flat(&s), model, "round {round} step {step}");
                assert_eq!(s.len(), model.len());
                // Runs stay runs: no empty piece, and a kept rule is never copied one by one.
                assert!(s.pieces().iter().all(|p| p.len() > 0));
                assert!(s.pieces().len() <= 2 * step as usize + 3);
                pieces_seen += s.pieces().len();
            }
            let want = model.iter().position(|r| matches!(r, R::Old(o) if o % 3 == 0));
            assert_eq!(s.position(|o| o % 3 == 0, |_| false), want);
            if round % 7 == 0 {
                s.set([1, 2, 3]).unwrap();
                assert_eq!(flat(&s), [R::New(1), R::New(2), R::New(3)]);
            }
        }
        assert!(pieces_seen > 10_000);
    }

    #[test]
    fn an_append_to_a_long_chain_is_two_pieces() {
        let mut s = Splice::new(Vec::new(), 10, 30_000).unwrap();
        s.insert(30_000, 1u32).unwrap();
        assert_eq!(s.pieces(), &[Piece::Old { first: 10, len: 30_000 }, Piece::New(1)]);
        s.remove(0).unwrap();
        s.remove(29_998).unwrap();
        assert_eq!(s.pieces(), &[Piece::Old { first: 11, len: 29_998 }, Piece::New(1)]);
        s.remove(100).unwrap();
        assert_eq!(s.pieces().len(), 3);
        assert_eq!(s.len(), 29_998);
    }
}
