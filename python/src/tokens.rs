//! The native side of `mosaicrs.torch.TokenLoader`: an adapter over one
//! rust-core [`TokenLoader`] that writes each packed batch straight into
//! buffers that Python owns (torch tensors, pinned when the target is CUDA).
//!
//! The batch has a fixed size (`[B, L]` token ids, `[B]` lengths, at most
//! `B * L + 1` segment boundaries, and what the caller asked for: `[B, L]`
//! position ids, attention mask and labels), so there are no
//! registered slots here: Python picks a buffer set that nothing references
//! any more (its ring) and passes the addresses to
//! [`NativeTokenLoader::next_into`], which fills them with the GIL released
//! and returns. The buffers are only written during that call, while the
//! calling Python frame keeps them alive. Position, plans and order all come
//! from the core loader; this module adds the derived arrays.

use std::sync::{Mutex, MutexGuard};

use mosaicrs::assemble::ElementsMut;
use mosaicrs::loader::ShuffleMode;
use mosaicrs::tokens::{
    segment_starts, TokenBatchInfo, TokenBatchMut, TokenConfig, TokenLoader, TokenPlan, TokenState,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::dataset::PyDataset;
use crate::errors::{IntoPy, InvalidInputError};
use crate::fork;
use crate::loader::{mix_streams, MixEntry};

/// The element type of an optional `[B, L]` output (token ids and position
/// ids: int64 or int32; the attention mask also bool). Lengths are int64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdType {
    I64,
    I32,
    Bool,
}

impl IdType {
    fn size(self) -> usize {
        match self {
            IdType::I64 => 8,
            IdType::I32 => 4,
            IdType::Bool => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            IdType::I64 => "int64",
            IdType::I32 => "int32",
            IdType::Bool => "bool",
        }
    }

    /// `dtype` of output `what`, one of the names in `allowed`.
    fn parse(what: &str, dtype: &str, allowed: &[IdType]) -> PyResult<Self> {
        allowed
            .iter()
            .copied()
            .find(|t| t.name() == dtype)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
                InvalidInputError::new_err(format!(
                    "{what} dtype {dtype:?} is not one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The attention mask buffer, by its element type.
enum MaskMut<'a> {
    I64(&'a mut [i64]),
    I32(&'a mut [i32]),
    /// `torch.bool`: one byte, 0 or 1.
    Bool(&'a mut [u8]),
}

impl MaskMut<'_> {
    /// Sets `range` to 1 (`on`) or 0.
    fn fill(&mut self, range: std::ops::Range<usize>, on: bool) {
        match self {
            MaskMut::I64(m) => m[range].fill(i64::from(on)),
            MaskMut::I32(m) => m[range].fill(i32::from(on)),
            MaskMut::Bool(m) => m[range].fill(u8::from(on)),
        }
    }
}

/// The packed-token loader behind `mosaicrs.torch.TokenLoader` (see the
/// module docs).
#[pyclass(module = "mosaicrs._native", name = "NativeTokenLoader")]
pub(crate) struct NativeTokenLoader {
    /// `None` once closed. Locked with the GIL released only (a batch may
    /// wait for reads while holding it).
    loader: Mutex<Option<TokenLoader>>,
    /// The documents of the last batch written, and the vectors the next
    /// batch writes into (swapped in on success: no allocation per batch).
    documents: Mutex<Documents>,
    ids: IdType,
    /// `None`: the caller does not take position ids; they are written to
    /// `scratch`, since the segment boundaries are derived from them.
    positions: Option<IdType>,
    /// `None`: no attention mask.
    mask: Option<IdType>,
    /// Reused per batch. Locked after `loader`.
    scratch: Mutex<Scratch>,
    generation: u64,
}

/// [`NativeTokenLoader::documents`].
#[derive(Default)]
struct Documents {
    last: TokenBatchInfo,
    next: TokenBatchInfo,
}

/// A batch's working memory, kept from batch to batch.
#[derive(Default)]
struct Scratch {
    /// Position ids of a batch when the caller takes none: int32 (a batch's
    /// worth stays in cache).
    positions: Vec<i32>,
    /// One row's segment starts ([`segment_starts`]).
    starts: Vec<usize>,
}

/// One `(address, bytes)` buffer from Python.
type Buffer = (usize, usize);

#[pymethods]
impl NativeTokenLoader {
    #[new]
    #[pyo3(signature = (
        dataset, seq_len, batch_size, *, column="input_ids", eos_id=None, pad_id=None,
        vocab_size=None, drop_last=true, seed=0, shuffle="global", rank=0, world_size=1,
        rows=None, dtype="int64", mix=None, epoch_size=None, exhausted="cycle",
        position_ids=Some("int64"), attention_mask=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dataset: PyRef<'_, PyDataset>,
        seq_len: usize,
        batch_size: usize,
        column: &str,
        eos_id: Option<i64>,
        pad_id: Option<i64>,
        vocab_size: Option<u64>,
        drop_last: bool,
        seed: u64,
        shuffle: &str,
        rank: usize,
        world_size: usize,
        rows: Option<Vec<u64>>,
        dtype: &str,
        mix: Option<Vec<MixEntry<'_>>>,
        epoch_size: Option<u64>,
        exhausted: &str,
        position_ids: Option<&str>,
        attention_mask: Option<&str>,
    ) -> PyResult<Self> {
        let ints = [IdType::I64, IdType::I32];
        let ids = IdType::parse("input_ids", dtype, &ints)?;
        let positions = position_ids
            .map(|d| IdType::parse("position_ids", d, &ints))
            .transpose()?;
        let mask = attention_mask
            .map(|d| {
                IdType::parse(
                    "attention_mask",
                    d,
                    &[IdType::I64, IdType::I32, IdType::Bool],
                )
            })
            .transpose()?;
        let mix = mix
            .map(|m| mix_streams(m, epoch_size, exhausted))
            .transpose()?;
        let source = dataset.source();
        let config = TokenConfig {
            column: column.to_string(),
            seq_len,
            batch_size,
            eos_id,
            pad_id,
            vocab_size,
            drop_last,
            seed,
            shuffle: shuffle.parse::<ShuffleMode>().py_err()?,
            rank,
            world_size,
            rows: rows.map(Into::into),
        };
        // Construction counts the tokens of every document: no GIL for that.
        let loader = py.detach(move || match mix {
            Some((streams, mix)) => TokenLoader::mixed(streams, mix, config).py_err(),
            None => TokenLoader::new(source, config).py_err(),
        })?;
        Ok(NativeTokenLoader {
            loader: Mutex::new(Some(loader)),
            documents: Mutex::new(Documents::default()),
            ids,
            positions,
            mask,
            scratch: Mutex::new(Scratch::default()),
            generation: fork::generation(),
        })
    }

    #[getter]
    fn seq_len(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| Ok(l.config().seq_len))
    }

    #[getter]
    fn batch_size(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| Ok(l.config().batch_size))
    }

    #[getter]
    fn rank(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| Ok(l.config().rank))
    }

    #[getter]
    fn world_size(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |l| Ok(l.config().world_size))
    }

    #[getter]
    fn column(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |l| Ok(l.config().column.clone()))
    }

    /// The token ids' element type: `"int64"` or `"int32"`.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.ids.name()
    }

    /// The position ids' element type, or `None` when they are not output.
    #[getter]
    fn position_ids(&self) -> Option<&'static str> {
        self.positions.map(IdType::name)
    }

    /// The attention mask's element type, or `None` when it is not output.
    #[getter]
    fn attention_mask(&self) -> Option<&'static str> {
        self.mask.map(IdType::name)
    }

    /// Tokens of one epoch, eos included (every rank's).
    #[getter]
    fn total_tokens(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |l| Ok(l.total_tokens()))
    }

    /// The state's epoch.
    #[getter]
    fn epoch(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |l| Ok(l.state().epoch))
    }

    /// A whole epoch for this rank: `(steps, sequences, dropped_tokens,
    /// padded_sequences)` (sequences are every rank's).
    fn epoch_plan(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64)> {
        self.with(py, |l| Ok(plan_tuple(l.epoch_plan().py_err()?)))
    }

    /// From the current position to the end of the epoch, as `epoch_plan`.
    fn plan(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64)> {
        self.with(py, |l| Ok(plan_tuple(l.plan().py_err()?)))
    }

    /// Begins an iteration at the current state. After an epoch's last
    /// batch the state already points at the next epoch, and the core
    /// reports the end of the epoch once more; an iteration that begins
    /// there starts the next epoch instead, as `mosaicrs.torch.Loader` does.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.check_forked()?;
        self.with(py, |l| {
            let state = l.state().clone();
            l.restore(state).py_err()
        })
    }

    /// Fills this rank's next batch into buffers given as `(address,
    /// bytes)`: the token ids (`[B, L]` of `dtype`), the lengths (`[B]`
    /// int64), the segment boundaries (`B * L + 1` int32, of which the batch
    /// uses the first `S + 1`) and, exactly when the loader was built to
    /// output them, the position ids (`[B, L]` of `position_ids`), the
    /// attention mask (`[B, L]` of `attention_mask`) and, when given, the
    /// labels (`[B, L]` int64). The buffers must stay valid, and untouched by
    /// anyone else, for the duration of the call.
    ///
    /// Returns `(S, max_seqlen)`, or `None` at the end of the epoch (the
    /// state then points at the start of the next one).
    #[pyo3(signature = (
        input_ids, lengths, cu_seqlens, position_ids=None, attention_mask=None, labels=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn next_into(
        &self,
        py: Python<'_>,
        input_ids: Buffer,
        lengths: Buffer,
        cu_seqlens: Buffer,
        position_ids: Option<Buffer>,
        attention_mask: Option<Buffer>,
        labels: Option<Buffer>,
    ) -> PyResult<Option<(usize, usize)>> {
        self.check_forked()?;
        py.detach(|| -> PyResult<Option<(usize, usize)>> {
            let mut guard = self.lock()?;
            let loader = guard.as_mut().ok_or_else(closed)?;
            let (b, l) = (loader.config().batch_size, loader.config().seq_len);
            let n = b
                .checked_mul(l)
                .filter(|&n| i32::try_from(n).is_ok())
                .ok_or_else(|| {
                    InvalidInputError::new_err(format!(
                        "batch_size {b} * seq_len {l} tokens do not fit the int32 cu_seqlens"
                    ))
                })?;
            check_buffer("input_ids", input_ids, n, self.ids.size())?;
            check_buffer("lengths", lengths, b, 8)?;
            check_buffer("cu_seqlens", cu_seqlens, n + 1, 4)?;
            let mut all = vec![input_ids, lengths, cu_seqlens];
            for (name, buffer, kind) in [
                ("position_ids", position_ids, self.positions),
                ("attention_mask", attention_mask, self.mask),
            ] {
                match (buffer, kind) {
                    (Some(buffer), Some(kind)) => {
                        check_buffer(name, buffer, n, kind.size())?;
                        all.push(buffer);
                    }
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(PyValueError::new_err(format!(
                            "a {name} buffer was given to a loader built without {name}"
                        )))
                    }
                    (None, Some(_)) => {
                        return Err(PyValueError::new_err(format!(
                            "the loader outputs {name} but no buffer was given for it"
                        )))
                    }
                }
            }
            if let Some(labels) = labels {
                check_buffer("labels", labels, n, 8)?;
                all.push(labels);
            }
            check_disjoint(&all)?;
            let mut scratch = self.scratch()?;
            let Scratch { positions, starts } = &mut *scratch;
            if position_ids.is_none() && positions.len() != n {
                *positions = vec![0; n];
            }
            // SAFETY: each buffer was checked above to be non-null, aligned
            // for its element type and exactly as long as a batch needs, and
            // no two share a byte. The caller (mosaicrs.torch.TokenLoader)
            // passes the storage of tensors that its frame keeps alive for
            // this call and that no other Python object references (the
            // ring's use-count check): nothing else reads or writes them until
            // this call returns. Every bit pattern is a valid integer, and
            // only 0 and 1 are written to a bool mask.
            let (ids, lens, cu, mask, labels) = unsafe {
                (
                    match self.ids {
                        IdType::I32 => ElementsMut::I32(slice_mut::<i32>(input_ids)),
                        _ => ElementsMut::I64(slice_mut::<i64>(input_ids)),
                    },
                    slice_mut::<i64>(lengths),
                    slice_mut::<i32>(cu_seqlens),
                    attention_mask
                        .zip(self.mask)
                        .map(|(buffer, kind)| match kind {
                            IdType::I64 => MaskMut::I64(slice_mut::<i64>(buffer)),
                            IdType::I32 => MaskMut::I32(slice_mut::<i32>(buffer)),
                            IdType::Bool => MaskMut::Bool(slice_mut::<u8>(buffer)),
                        }),
                    labels.map(|buffer| slice_mut::<i64>(buffer)),
                )
            };
            let pos_out = match position_ids.zip(self.positions) {
                // SAFETY: as above.
                Some((buffer, IdType::I32)) => ElementsMut::I32(unsafe { slice_mut(buffer) }),
                // SAFETY: as above.
                Some((buffer, _)) => ElementsMut::I64(unsafe { slice_mut(buffer) }),
                None => ElementsMut::I32(&mut positions[..]),
            };
            let out = TokenBatchMut {
                input_ids: ids,
                position_ids: pos_out,
                lengths: lens,
            };
            let mut documents = self.documents()?;
            let Documents { last, next } = &mut *documents;
            if !loader.next_into_info(out, next).py_err()? {
                return Ok(None);
            }
            std::mem::swap(last, next);
            drop(documents);
            // SAFETY: as above; the core's mutable views of these buffers
            // ended with `out`, so these shared views alias nothing.
            let (ids, lens) = unsafe {
                (
                    match self.ids {
                        IdType::I32 => Ids::I32(slice_ref::<i32>(input_ids)),
                        _ => Ids::I64(slice_ref::<i64>(input_ids)),
                    },
                    slice_ref::<i64>(lengths),
                )
            };
            let derived = match position_ids.zip(self.positions) {
                Some((buffer, IdType::I32)) => {
                    // SAFETY: as above.
                    let pos = unsafe { slice_ref::<i32>(buffer) };
                    derive(l, &ids, pos, lens, mask, cu, labels, starts)
                }
                Some((buffer, _)) => {
                    // SAFETY: as above.
                    let pos = unsafe { slice_ref::<i64>(buffer) };
                    derive(l, &ids, pos, lens, mask, cu, labels, starts)
                }
                None => derive(l, &ids, &positions[..], lens, mask, cu, labels, starts),
            };
            Ok(Some(derived))
        })
    }

    /// Dataset rows of the documents that the last batch touched, in order
    /// (every rank's part of the global step is walked, only this rank's
    /// rows are listed).
    fn last_documents(&self) -> PyResult<Vec<u64>> {
        Ok(self.documents()?.last.documents.clone())
    }

    /// The mix source of each of `last_documents` (all 0 for one dataset).
    fn last_sources(&self) -> PyResult<Vec<u32>> {
        Ok(self.documents()?.last.sources.clone())
    }

    /// Documents each source of a mix gives one epoch (empty for one
    /// dataset).
    fn mix_counts(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        self.with(py, |l| Ok(l.mix_counts()))
    }

    /// The position after the last batch written, as JSON.
    fn state_json(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |l| l.state().to_json().py_err())
    }

    /// Moves to `state` (JSON from `state_json`, possibly of a loader with
    /// another world size or batch size). A state of another dataset, seed,
    /// seq_len or eos is refused and changes nothing.
    fn load_state_json(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        self.check_forked()?;
        let state = TokenState::from_json(text).py_err()?;
        self.with(py, move |l| {
            l.check_state(&state).py_err()?;
            l.restore(state).py_err()
        })
    }

    /// Moves to the start of `epoch`, unless the loader is already inside it
    /// (a resumed run calling `set_epoch` keeps its position).
    fn set_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.check_forked()?;
        self.with(py, |l| {
            if l.state().epoch != epoch {
                l.set_epoch(epoch);
            }
            Ok(())
        })
    }

    /// Stops the core loader (its prefetch thread, if any) and refuses
    /// further use (RuntimeError).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Ok(());
        }
        py.detach(|| {
            let loader = self.lock()?.take();
            drop(loader);
            Ok(())
        })
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| Ok(self.lock()?.is_none()))
    }
}

impl NativeTokenLoader {
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<TokenLoader>>> {
        self.loader.lock().map_err(|_| {
            PyRuntimeError::new_err("the token loader is poisoned by an earlier panic")
        })
    }

    fn scratch(&self) -> PyResult<MutexGuard<'_, Scratch>> {
        self.scratch.lock().map_err(|_| {
            PyRuntimeError::new_err("the token loader is poisoned by an earlier panic")
        })
    }

    fn documents(&self) -> PyResult<MutexGuard<'_, Documents>> {
        self.documents.lock().map_err(|_| {
            PyRuntimeError::new_err("the token loader is poisoned by an earlier panic")
        })
    }

    /// Runs `f` on the open loader with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut TokenLoader) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        self.check_forked()?;
        py.detach(|| {
            let mut guard = self.lock()?;
            f(guard.as_mut().ok_or_else(closed)?)
        })
    }

    fn check_forked(&self) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Err(PyRuntimeError::new_err(fork::FORKED_MESSAGE));
        }
        Ok(())
    }
}

impl Drop for NativeTokenLoader {
    fn drop(&mut self) {
        if self.generation != fork::generation() {
            // A prefetch thread of the core loader belongs to the parent
            // process: joining it here would wait forever. Leak it instead.
            if let Ok(slot) = self.loader.get_mut() {
                std::mem::forget(slot.take());
            }
        }
    }
}

fn closed() -> PyErr {
    PyRuntimeError::new_err("the loader is closed; create a new mosaicrs.torch.TokenLoader")
}

fn plan_tuple(p: TokenPlan) -> (u64, u64, u64, u64) {
    (p.steps, p.sequences, p.dropped_tokens, p.padded_sequences)
}

/// Checks that `(addr, bytes)` holds exactly `len` elements of `size` bytes,
/// at an aligned, non-null address.
fn check_buffer(name: &str, (addr, bytes): Buffer, len: usize, size: usize) -> PyResult<()> {
    if len.checked_mul(size) != Some(bytes) {
        return Err(PyValueError::new_err(format!(
            "buffer for {name:?} has {bytes} bytes, a batch needs {len} elements of {size}"
        )));
    }
    if addr == 0 || addr % size != 0 {
        return Err(PyValueError::new_err(format!(
            "buffer for {name:?} is null or misaligned"
        )));
    }
    Ok(())
}

/// Token ids as written by the core, read to derive the labels.
enum Ids<'a> {
    I64(&'a [i64]),
    I32(&'a [i32]),
}

impl Ids<'_> {
    /// Copies ids `range` into `out` as int64.
    fn copy_to(&self, range: std::ops::Range<usize>, out: &mut [i64]) {
        match self {
            Ids::I64(v) => out.copy_from_slice(&v[range]),
            Ids::I32(v) => {
                for (o, &x) in out.iter_mut().zip(&v[range]) {
                    *o = i64::from(x);
                }
            }
        }
    }
}

/// What attention kernels and the loss take, from one batch's positions
/// and lengths: the attention mask when asked (1 for the first `lengths[r]`
/// tokens of row `r`), the segment boundaries over the flattened `B * L` tokens, and
/// the labels (the ids, with -100 at each segment's first token and at
/// padding). Returns `(segments, max_seqlen)`. In Rust: a handful of torch
/// operations per batch cost more than the packing itself.
///
/// A segment starts where the position is 0: at each document and row
/// start, and where padding begins ([`segment_starts`], shared with the tch
/// `TokenLoader`).
#[allow(clippy::too_many_arguments)]
fn derive<P: Copy + Into<i64>>(
    l: usize,
    ids: &Ids<'_>,
    pos: &[P],
    lengths: &[i64],
    mut mask: Option<MaskMut<'_>>,
    cu: &mut [i32],
    mut labels: Option<&mut [i64]>,
    starts: &mut Vec<usize>,
) -> (usize, usize) {
    let n = pos.len();
    let mut segments = 0usize;
    let mut max_seqlen = 0usize;
    for (r, &len) in lengths.iter().enumerate() {
        let row = r * l;
        let real = usize::try_from(len).unwrap_or(0).min(l);
        if let Some(mask) = mask.as_mut() {
            mask.fill(row..row + real, true);
            mask.fill(row + real..row + l, false);
        }
        if let Some(labels) = labels.as_deref_mut() {
            ids.copy_to(row..row + real, &mut labels[row..row + real]);
            labels[row + real..row + l].fill(-100);
        }
        // One row's segment starts, last first.
        segment_starts(pos, row, l, starts);
        let mut end = row + l;
        for &start in starts.iter() {
            max_seqlen = max_seqlen.max(end - start);
            end = start;
        }
        for &start in starts.iter().rev() {
            // `n` fits in i32 (checked by the caller).
            cu[segments] = start as i32;
            segments += 1;
            if let Some(labels) = labels.as_deref_mut() {
                labels[start] = -100;
            }
        }
    }
    cu[segments] = n as i32;
    (segments, max_seqlen)
}

/// Checks that no two buffers share a byte (each becomes a `&mut` slice).
fn check_disjoint(buffers: &[Buffer]) -> PyResult<()> {
    for (i, &(a, an)) in buffers.iter().enumerate() {
        for &(b, bn) in &buffers[i + 1..] {
            if a < b.saturating_add(bn) && b < a.saturating_add(an) {
                return Err(PyValueError::new_err(
                    "the buffers of a token batch overlap",
                ));
            }
        }
    }
    Ok(())
}

/// A mutable slice over a checked buffer.
///
/// # Safety
/// `addr..addr + bytes` must be valid for writes, aligned for `T`, and not
/// accessed by anyone else for the returned lifetime.
unsafe fn slice_mut<'a, T>((addr, bytes): Buffer) -> &'a mut [T] {
    // SAFETY: guaranteed by the caller (see the function's contract).
    unsafe { std::slice::from_raw_parts_mut(addr as *mut T, bytes / std::mem::size_of::<T>()) }
}

/// A shared slice over a checked buffer.
///
/// # Safety
/// `addr..addr + bytes` must be valid for reads, aligned for `T`, and not
/// written by anyone for the returned lifetime.
unsafe fn slice_ref<'a, T>((addr, bytes): Buffer) -> &'a [T] {
    // SAFETY: guaranteed by the caller (see the function's contract).
    unsafe { std::slice::from_raw_parts(addr as *const T, bytes / std::mem::size_of::<T>()) }
}
