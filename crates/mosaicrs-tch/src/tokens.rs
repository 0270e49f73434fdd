//! Packed token batches as tch tensors: a thin face over the core
//! [`mosaicrs::tokens::TokenLoader`], which keeps the packing, the order,
//! the state and the errors. This module allocates the tensors (pinned for
//! CUDA), lets the core write the tokens straight into them, and derives the
//! segment boundaries and labels.

use mosaicrs::assemble::ElementKind;
use mosaicrs::reader::DataSource;
use mosaicrs::tokens::{self as core, TokenBatchInfo, TokenConfig, TokenState};
use mosaicrs::{Error, Result};
use tch::{Device, Tensor};

use crate::assemble::{alloc, elements_mut};
use crate::torch_error;

/// One packed batch: this rank's `B` sequences of `L` tokens.
#[derive(Debug)]
pub struct TokenTensors {
    /// int64 `[B, L]`: the documents of the epoch order, each followed by
    /// `eos_id` when given, then padding (`pad_id`) in a last partial row.
    pub input_ids: Tensor,
    /// int64 `[B, L]`: positions restarting at 0 at each document and row
    /// start (and where padding begins).
    pub position_ids: Tensor,
    /// int64 `[B]`: real tokens per row.
    pub lengths: Tensor,
    /// int32 `[S + 1]`: the starts of the `S` segments (document pieces
    /// and padding) over the flattened `B * L` tokens, then `B * L`: what
    /// variable-length attention kernels take.
    pub cu_seqlens: Tensor,
    /// The longest segment.
    pub max_seqlen: i64,
    /// int64 `[B, L]` when asked ([`TokenLoader::with_labels`]): the ids,
    /// with -100 at each segment's first token and at padding.
    pub labels: Option<Tensor>,
    /// Epoch, step and the dataset rows of the documents in the batch.
    pub info: TokenBatchInfo,
}

impl TokenTensors {
    /// Copies the tensors to `device` (`non_blocking` overlaps the copies
    /// with other work when the host tensors are pinned).
    pub fn f_to_device(&self, device: Device, non_blocking: bool) -> Result<TokenTensors> {
        let to = |t: &Tensor| -> Result<Tensor> {
            if t.device() == device {
                return Ok(t.shallow_clone());
            }
            t.f_to_device_(device, t.kind(), non_blocking, false)
                .map_err(torch_error)
        };
        Ok(TokenTensors {
            input_ids: to(&self.input_ids)?,
            position_ids: to(&self.position_ids)?,
            lengths: to(&self.lengths)?,
            cu_seqlens: to(&self.cu_seqlens)?,
            max_seqlen: self.max_seqlen,
            labels: self.labels.as_ref().map(to).transpose()?,
            info: self.info.clone(),
        })
    }
}

/// Documents of tokens packed into `[B, L]` tensors (see
/// [`mosaicrs::tokens`] for the contract: every token of the epoch once, in
/// document order, on any world size, resumable mid-document).
///
/// ```no_run
/// use std::sync::Arc;
/// use mosaicrs::reader::Dataset;
/// use mosaicrs::tokens::TokenConfig;
/// use mosaicrs_tch::TokenLoader;
///
/// let dataset = Arc::new(Dataset::open("tokens.mosaicrs")?);
/// let config = TokenConfig { seq_len: 1024, batch_size: 8, eos_id: Some(0), ..TokenConfig::default() };
/// let mut loader = TokenLoader::new(dataset.clone(), config.clone(), tch::Device::Cpu)?.with_labels(true);
/// let batch = loader.next().transpose()?.expect("one batch");
/// let (ids, labels) = (&batch.input_ids, batch.labels.as_ref()); // [8, 1024] int64
/// let state = loader.state_dict()?; // JSON; save it with the checkpoint
/// let mut resumed = TokenLoader::new(dataset, config, tch::Device::Cpu)?.with_labels(true);
/// resumed.load_state_dict(&state)?; // continues after `batch`
/// # let _ = (ids, labels);
/// # Ok::<(), mosaicrs::Error>(())
/// ```
pub struct TokenLoader {
    inner: core::TokenLoader,
    labels: bool,
    /// Allocate host tensors pinned for this CUDA device.
    pin_for: Option<Device>,
}

impl TokenLoader {
    /// A loader at the start of epoch 0 over `source` (see
    /// [`mosaicrs::tokens::TokenLoader::new`]). Host tensors are pinned
    /// when `device` is CUDA; the batches stay on the host (copy them with
    /// [`TokenTensors::f_to_device`]).
    pub fn new(source: impl Into<DataSource>, config: TokenConfig, device: Device) -> Result<Self> {
        Ok(Self::from_core(
            core::TokenLoader::new(source, config)?,
            device,
        ))
    }

    /// Wraps a core loader (one made by [`core::TokenLoader::mixed`], say).
    pub fn from_core(inner: core::TokenLoader, device: Device) -> Self {
        TokenLoader {
            inner,
            labels: false,
            pin_for: device.is_cuda().then_some(device),
        }
    }

    /// Also yield `labels`.
    pub fn with_labels(mut self, labels: bool) -> Self {
        self.labels = labels;
        self
    }

    /// The core loader (config, plan, totals).
    pub fn core(&self) -> &core::TokenLoader {
        &self.inner
    }

    /// The state after the last batch, as JSON: save it with a checkpoint.
    pub fn state_dict(&self) -> Result<String> {
        self.inner.state().to_json()
    }

    /// Continues from a state of [`state_dict`](Self::state_dict) (of any
    /// world size or batch size); a state this loader cannot continue from
    /// is an error and changes nothing.
    pub fn load_state_dict(&mut self, state: &str) -> Result<()> {
        let state = TokenState::from_json(state)?;
        self.inner.check_state(&state)?;
        self.inner.restore(state)
    }

    /// Moves to the start of `epoch` (see [`core::TokenLoader::set_epoch`]).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.inner.set_epoch(epoch);
    }

    /// This rank's next batch, or `None` once at the end of the epoch (the
    /// next call starts the following epoch).
    pub fn next_batch(&mut self) -> Result<Option<TokenTensors>> {
        let (b, l) = (self.inner.config().batch_size, self.inner.config().seq_len);
        if b.checked_mul(l).is_none_or(|n| n > i32::MAX as usize) {
            return Err(Error::InvalidArgument(format!(
                "batch_size {b} * seq_len {l} tokens do not fit the int32 cu_seqlens"
            )));
        }
        let shape = [b as i64, l as i64];
        let mut input_ids = alloc(&shape, ElementKind::I64, self.pin_for)?;
        let mut position_ids = alloc(&shape, ElementKind::I64, self.pin_for)?;
        let mut lengths = vec![0i64; b];
        let Some(info) = self.inner.next_into(core::TokenBatchMut {
            input_ids: elements_mut(&mut input_ids)?,
            position_ids: elements_mut(&mut position_ids)?,
            lengths: &mut lengths,
        })?
        else {
            return Ok(None);
        };
        let mut labels = match self.labels {
            true => Some(alloc(&shape, ElementKind::I64, self.pin_for)?),
            false => None,
        };
        let (cu, max_seqlen) = {
            let ids = as_i64(&mut input_ids)?;
            let pos = as_i64(&mut position_ids)?;
            let labels = labels.as_mut().map(as_i64).transpose()?;
            derive(l, ids, pos, &lengths, labels)
        };
        Ok(Some(TokenTensors {
            input_ids,
            position_ids,
            lengths: self.host(&lengths)?,
            cu_seqlens: Tensor::f_from_slice(&cu).map_err(torch_error)?,
            max_seqlen: max_seqlen as i64,
            labels,
            info,
        }))
    }

    /// A small host tensor, pinned when the target is CUDA.
    fn host(&self, values: &[i64]) -> Result<Tensor> {
        let mut t = alloc(&[values.len() as i64], ElementKind::I64, self.pin_for)?;
        as_i64(&mut t)?.copy_from_slice(values);
        Ok(t)
    }
}

impl Iterator for TokenLoader {
    type Item = Result<TokenTensors>;

    /// [`next_batch`](TokenLoader::next_batch); `None` at the end of the epoch.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

fn as_i64(t: &mut Tensor) -> Result<&mut [i64]> {
    match elements_mut(t)? {
        mosaicrs::assemble::ElementsMut::I64(v) => Ok(v),
        _ => Err(Error::Internal("token tensor is not int64".into())),
    }
}

/// The segment boundaries (`cu_seqlens`, then `B * L`) and the longest
/// segment of a batch, and its labels when asked (the ids, -100 at each
/// segment's first token and at padding), from the positions the core
/// wrote ([`core::segment_starts`]).
fn derive(
    l: usize,
    ids: &[i64],
    pos: &[i64],
    lengths: &[i64],
    mut labels: Option<&mut [i64]>,
) -> (Vec<i32>, usize) {
    let mut cu = Vec::with_capacity(lengths.len() + 1);
    let mut max_seqlen = 0;
    let mut starts = Vec::new();
    for (r, &len) in lengths.iter().enumerate() {
        let row = r * l;
        let real = usize::try_from(len).unwrap_or(0).min(l);
        if let Some(labels) = labels.as_deref_mut() {
            labels[row..row + real].copy_from_slice(&ids[row..row + real]);
            labels[row + real..row + l].fill(-100);
        }
        core::segment_starts(pos, row, l, &mut starts);
        let mut end = row + l;
        for &start in &starts {
            max_seqlen = max_seqlen.max(end - start);
            end = start;
        }
        for &start in starts.iter().rev() {
            // `B * L` fits in i32 (checked in `next_batch`).
            cu.push(start as i32);
            if let Some(labels) = labels.as_deref_mut() {
                labels[start] = -100;
            }
        }
    }
    cu.push(pos.len() as i32);
    (cu, max_seqlen)
}
