//! Copying token ids from an Arrow list's values into the caller's buffer.
//!
//! One `match` on (buffer type, Arrow type) per document piece, then a loop
//! that LLVM turns into a plain copy (same type) or a vectorised widening or
//! narrowing. The range check (vocabulary, or a narrower buffer type) is a
//! min/max reduction over the piece, not a branch per token, and runs only
//! when a token could fall outside the range.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{self as adt, DataType};

use crate::assemble::{ElementKind, ElementsMut};
use crate::{Error, Result};

/// An Arrow integer type's native value, as a token id.
pub(crate) trait TokenInt: Copy + Ord + Send + Sync + 'static {
    const LOWEST: Self;
    const HIGHEST: Self;
    /// The value as `i64` with Rust's `as` (wrapping above `i64::MAX`).
    fn as_i64(self) -> i64;
    /// The exact value.
    fn wide(self) -> i128;
    /// Writes `src` into `dst` (of equal length) with `as`.
    #[inline]
    fn convert_into<D: OutInt>(dst: &mut [D], src: &[Self]) {
        convert(dst, src);
    }
}

macro_rules! token_int {
    ($($t:ty),*) => {$(
        impl TokenInt for $t {
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline]
            fn as_i64(self) -> i64 { self as i64 }
            #[inline]
            fn wide(self) -> i128 { self as i128 }
        }
    )*};
}
token_int!(i8, i16, u8, u16, u32, u64);

/// The two types a buffer may have: into the same type it is a plain copy
/// (libc's `memcpy`, wider than the conversion loop).
macro_rules! token_int_same {
    ($($t:ty => $into:ident),*) => {$(
        impl TokenInt for $t {
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline]
            fn as_i64(self) -> i64 { self as i64 }
            #[inline]
            fn wide(self) -> i128 { self as i128 }
            #[inline]
            fn convert_into<D: OutInt>(dst: &mut [D], src: &[Self]) {
                D::$into(dst, src);
            }
        }
    )*};
}
token_int_same!(i32 => from_i32s, i64 => from_i64s);

/// An output element type (the buffer's).
pub(crate) trait OutInt: Copy + Send + 'static {
    /// `v` with Rust's `as`: `s as i64 as D` equals `s as D` for every
    /// integer `s`, both keeping the low bits.
    fn from_i64(v: i64) -> Self;
    /// `src` into `dst` (of equal length).
    fn from_i32s(dst: &mut [Self], src: &[i32]);
    /// `src` into `dst` (of equal length).
    fn from_i64s(dst: &mut [Self], src: &[i64]);
}

#[inline]
fn convert<D: OutInt, S: TokenInt>(dst: &mut [D], src: &[S]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = D::from_i64(s.as_i64());
    }
}

impl OutInt for i64 {
    #[inline]
    fn from_i64(v: i64) -> Self {
        v
    }
    #[inline]
    fn from_i32s(dst: &mut [Self], src: &[i32]) {
        // The default int64 ids from an int32 column: the one widening that
        // every batch does. 32-byte stores where the CPU has AVX2 (checked at
        // run time, cached by std; the wheel targets any x86-64) take about
        // 6% off a packed batch's CPU time next to the SSE2 loop.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { widen_avx2(dst, src) };
            return;
        }
        convert(dst, src);
    }
    #[inline]
    fn from_i64s(dst: &mut [Self], src: &[i64]) {
        dst.copy_from_slice(src);
    }
}

/// [`convert`] from int32 to int64, compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn widen_avx2(dst: &mut [i64], src: &[i32]) {
    convert(dst, src);
}

impl OutInt for i32 {
    #[inline]
    fn from_i64(v: i64) -> Self {
        v as i32
    }
    #[inline]
    fn from_i32s(dst: &mut [Self], src: &[i32]) {
        dst.copy_from_slice(src);
    }
    #[inline]
    fn from_i64s(dst: &mut [Self], src: &[i64]) {
        convert(dst, src);
    }
}

/// The values of a list column's child array, typed.
#[derive(Debug, Clone)]
pub(crate) enum TokenValues {
    I8(ScalarBuffer<i8>),
    I16(ScalarBuffer<i16>),
    I32(ScalarBuffer<i32>),
    I64(ScalarBuffer<i64>),
    U8(ScalarBuffer<u8>),
    U16(ScalarBuffer<u16>),
    U32(ScalarBuffer<u32>),
    U64(ScalarBuffer<u64>),
}

/// Evaluates `$body` with `$v` bound to the typed values of `$values`.
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            TokenValues::I8($v) => $body,
            TokenValues::I16($v) => $body,
            TokenValues::I32($v) => $body,
            TokenValues::I64($v) => $body,
            TokenValues::U8($v) => $body,
            TokenValues::U16($v) => $body,
            TokenValues::U32($v) => $body,
            TokenValues::U64($v) => $body,
        }
    };
}

impl TokenValues {
    /// The values of `array` (a list's child), or `None` for a type that is
    /// not an integer.
    pub(crate) fn of(array: &ArrayRef) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Int8 => TokenValues::I8(prim::<adt::Int8Type>(array)?),
            DataType::Int16 => TokenValues::I16(prim::<adt::Int16Type>(array)?),
            DataType::Int32 => TokenValues::I32(prim::<adt::Int32Type>(array)?),
            DataType::Int64 => TokenValues::I64(prim::<adt::Int64Type>(array)?),
            DataType::UInt8 => TokenValues::U8(prim::<adt::UInt8Type>(array)?),
            DataType::UInt16 => TokenValues::U16(prim::<adt::UInt16Type>(array)?),
            DataType::UInt32 => TokenValues::U32(prim::<adt::UInt32Type>(array)?),
            DataType::UInt64 => TokenValues::U64(prim::<adt::UInt64Type>(array)?),
            _ => return None,
        })
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    /// Asks the CPU to start loading up to [`PREFETCH_BYTES`] of the values
    /// from `start` on: documents lie at random places of the mapping, and
    /// loading the next one while the current one is copied hides the
    /// memory latency that otherwise stalls each document's first lines.
    /// A hint only: it changes no value.
    #[inline]
    pub(crate) fn prefetch(&self, start: usize) {
        with_values!(self, v => prefetch_slice(v.get(start..).unwrap_or_default()))
    }
}

/// Bytes of a coming document requested ahead of its copy: enough to start
/// the hardware prefetcher on it. Requesting more (1 KiB) fills the line
/// buffers that the copy itself needs and costs more than it saves.
pub(crate) const PREFETCH_BYTES: usize = 256;

#[inline]
fn prefetch_slice<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(values).min(PREFETCH_BYTES);
        let base = values.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: SSE is part of every x86_64 CPU, and a prefetch is a
            // hint that reads nothing and never faults, whatever the address
            // (here one inside the slice).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

fn prim<T: adt::ArrowPrimitiveType>(array: &ArrayRef) -> Option<ScalarBuffer<T::Native>> {
    array.as_primitive_opt::<T>().map(|a| a.values().clone())
}

/// The caller's token buffer, as one of the two types it may have.
#[derive(Debug)]
pub(crate) enum Out<'a> {
    I64(&'a mut [i64]),
    I32(&'a mut [i32]),
}

impl<'a> Out<'a> {
    /// `buffer` as an int64 or int32 buffer of `len` elements; `what` names
    /// it in the error.
    pub(crate) fn new(buffer: ElementsMut<'a>, len: usize, what: &str) -> Result<Self> {
        let kind = buffer.kind();
        let out = match buffer {
            ElementsMut::I64(b) => Out::I64(b),
            ElementsMut::I32(b) => Out::I32(b),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "token packing writes {what} as int64 or int32, not {kind}"
                )))
            }
        };
        if out.len() != len {
            return Err(Error::InvalidArgument(format!(
                "the {what} buffer holds {} elements but a batch needs batch_size * seq_len = {len}",
                out.len()
            )));
        }
        Ok(out)
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Out::I64(b) => b.len(),
            Out::I32(b) => b.len(),
        }
    }

    pub(crate) fn kind(&self) -> ElementKind {
        match self {
            Out::I64(_) => ElementKind::I64,
            Out::I32(_) => ElementKind::I32,
        }
    }

    /// The inclusive range of values the buffer holds.
    pub(crate) fn range(&self) -> (i128, i128) {
        match self {
            Out::I64(_) => (i128::from(i64::MIN), i128::from(i64::MAX)),
            Out::I32(_) => (i128::from(i32::MIN), i128::from(i32::MAX)),
        }
    }

    /// Sets `[at, at + n)` to `value` (which fits: checked up front).
    #[inline]
    pub(crate) fn fill(&mut self, at: usize, n: usize, value: i64) {
        match self {
            Out::I64(b) => b[at..at + n].fill(value),
            Out::I32(b) => b[at..at + n].fill(value as i32),
        }
    }

    /// Copies `ramp[..n]` (0, 1, 2, ...) to `[at, at + n)`.
    #[inline]
    pub(crate) fn ramp(&mut self, at: usize, n: usize, ramp: &Ramp) {
        match self {
            Out::I64(b) => b[at..at + n].copy_from_slice(&ramp.i64[..n]),
            Out::I32(b) => b[at..at + n].copy_from_slice(&ramp.i32[..n]),
        }
    }

    /// Copies `values[start..start + n]` to `[at, at + n)`, each within
    /// `bounds` (inclusive; `check` says whether a value can fall outside).
    /// On a value outside, the buffer may hold part of the piece; the error
    /// is the first such value.
    #[inline]
    pub(crate) fn copy(
        &mut self,
        at: usize,
        values: &TokenValues,
        start: usize,
        n: usize,
        bounds: Bounds,
    ) -> std::result::Result<(), i128> {
        match self {
            Out::I64(b) => {
                with_values!(values, v => copy_tokens(&mut b[at..at + n], &v[start..start + n], bounds))
            }
            Out::I32(b) => {
                with_values!(values, v => copy_tokens(&mut b[at..at + n], &v[start..start + n], bounds))
            }
        }
    }
}

/// The values a token may have: `lo..=hi`, and whether to check at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) lo: i128,
    pub(crate) hi: i128,
}

impl Bounds {
    /// `[0, vocab_size)` when given, within the buffer's range.
    pub(crate) fn new(vocab_size: Option<u64>, out: (i128, i128)) -> Self {
        match vocab_size {
            Some(v) => Bounds {
                lo: 0,
                hi: (i128::from(v) - 1).min(out.1),
            },
            None => Bounds {
                lo: out.0,
                hi: out.1,
            },
        }
    }
}

/// 0, 1, 2, ... `seq_len - 1` in both output types: position ids are slices of it.
#[derive(Debug, Clone)]
pub(crate) struct Ramp {
    i64: Vec<i64>,
    i32: Vec<i32>,
}

impl Ramp {
    pub(crate) fn new(len: usize) -> Self {
        Ramp {
            i64: (0..len as i64).collect(),
            // seq_len fits in i32 when position ids are int32 (checked per batch).
            i32: (0..len).map(|i| i as i32).collect(),
        }
    }
}

#[inline]
fn copy_tokens<S: TokenInt, D: OutInt>(
    dst: &mut [D],
    src: &[S],
    bounds: Bounds,
) -> std::result::Result<(), i128> {
    S::convert_into(dst, src);
    let fits = S::LOWEST.wide() >= bounds.lo && S::HIGHEST.wide() <= bounds.hi;
    if fits || src.is_empty() {
        return Ok(());
    }
    let mut lo = S::HIGHEST;
    let mut hi = S::LOWEST;
    for &s in src {
        lo = lo.min(s);
        hi = hi.max(s);
    }
    if lo.wide() >= bounds.lo && hi.wide() <= bounds.hi {
        return Ok(());
    }
    // The slow path, once: name the first value outside.
    let bad = src
        .iter()
        .map(|s| s.wide())
        .find(|&v| v < bounds.lo || v > bounds.hi)
        .unwrap_or(lo.wide());
    Err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_int32_to_int64_at_every_length_and_offset() {
        // The run-time AVX2 path and the tails of its vector loop.
        let src: Vec<i32> = (0..300)
            .map(|i: i32| i.wrapping_mul(-0x3504_f333) | (i & 1))
            .chain([i32::MIN, i32::MAX, -1, 0])
            .collect();
        for start in 0..9 {
            for len in [0, 1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 250, src.len() - start] {
                let piece = &src[start..start + len];
                let mut dst = vec![7i64; len];
                i64::from_i32s(&mut dst, piece);
                let want: Vec<i64> = piece.iter().map(|&v| i64::from(v)).collect();
                assert_eq!(dst, want, "start {start} len {len}");
            }
        }
    }

    #[test]
    fn copies_and_checks_ranges() {
        let values = TokenValues::U32(ScalarBuffer::from(vec![1u32, 2, 3, u32::MAX]));
        let mut buf = vec![0i32; 4];
        let mut out = Out::I32(&mut buf);
        let b = Bounds::new(None, out.range());
        assert_eq!(out.copy(0, &values, 0, 3, b), Ok(()));
        assert_eq!(out.copy(0, &values, 1, 3, b), Err(i128::from(u32::MAX)));
        assert_eq!(&buf[..3], &[2, 3, -1]);
        let mut buf = vec![0i64; 4];
        let mut out = Out::I64(&mut buf);
        let vocab = Bounds::new(Some(3), out.range());
        assert_eq!(out.copy(0, &values, 0, 2, vocab), Ok(()));
        assert_eq!(out.copy(0, &values, 0, 3, vocab), Err(3));
        let signed = TokenValues::I8(ScalarBuffer::from(vec![0i8, -1]));
        assert_eq!(out.copy(0, &signed, 0, 2, vocab), Err(-1));
        assert_eq!(
            out.copy(
                2,
                &signed,
                0,
                2,
                Bounds::new(None, (i64::MIN as i128, i64::MAX as i128))
            ),
            Ok(())
        );
        assert_eq!(buf, [0, -1, 0, -1]);
    }
}
