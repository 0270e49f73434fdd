//! The native side of `mosaicrs.torch.Loader`: an adapter over one
//! rust-core [`Loader`], built once, whose worker threads write each batch
//! straight into buffers that Python owns (torch tensors, pinned when the
//! target is CUDA). Position, plans, order and ring size all come from that
//! loader; this module adds the buffers, the slots and the conversions.
//!
//! Python allocates *slots* (one buffer per output array, sized for one
//! batch), registers their addresses with [`NativeLoader::add_slot`] and
//! hands a slot back with [`NativeLoader::release_slot`] once nothing on the
//! Python side references its tensors any more. A worker takes a free slot,
//! fills it with the core crate's [`BatchPlan`] and the batch is delivered
//! in step order; a slot that Python has not released is never written.
//!
//! Every slot is always in exactly one place: the free queue, a worker
//! filling it, a batch waiting in the epoch's channels (a [`SlotLease`]),
//! or Python's hands (delivered, not yet released). A lease that is dropped
//! undelivered (an epoch stopped early, a failed batch) puts its slot back
//! on the free queue; a lost slot would starve the workers and hang the
//! next epoch.
//!
//! The Python thread pulls batches straight from the workers' channels
//! ([`Loader::detached_epoch_with`]) with the GIL released: no thread sits
//! in between, which on a small machine would cost a wake-up per batch. The
//! last delivered batch's state goes back into the loader
//! ([`Loader::restore`]) before the loader's next use, so the loader always
//! stands after the last batch Python received.
//!
//! A ragged column (a list, list-of-lists, string or binary column named in
//! `ragged=`) has two buffers per slot: int64 offsets `[B + 1]`, whose size
//! is fixed, and values, whose size a batch does not know in advance; nested
//! lists (inner lists of any length) have a third between them, the int64
//! inner offsets `[n_lists + 1]`, whose size is not known either. Such a
//! buffer has a capacity; a worker whose batch needs more writes it into a
//! spill buffer that the slot keeps ([`RaggedFill`]) and delivers the batch
//! as usual. Python, which holds the slot then, allocates
//! a larger tensor (pinned for CUDA), and [`NativeLoader::adopt_spill`]
//! copies the spill into it once and registers it as the slot's values
//! buffer: later batches in that slot fit. The old buffer is referenced by
//! nothing (the slot was free when the worker took it), and the delivered
//! tensors are views over the slot's storage, so the use-count check that
//! keeps held dense batches out of the ring covers ragged ones too.
//!
//! Python keeps every registered buffer alive until [`NativeLoader::stop`]
//! (or `close`) has joined the worker threads; that contract is what makes
//! the raw writes below sound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::DataType;
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use mosaicrs::assemble::{
    inner_width, is_numeric_list, list_width, BatchPlan, Conversion, ElementKind, ElementsMut,
    FeatureLayout, NullPolicy, TensorSpec,
};
use mosaicrs::loader::mix::{Exhausted, MixConfig, Stream};
use mosaicrs::loader::{
    Epoch, Gathered, Loader, LoaderConfig, LoaderState, ShuffleMode, TailPolicy,
};
use mosaicrs::reader::DataSource;
use mosaicrs::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::dataset::PyDataset;
use crate::errors::{to_py, IntoPy};
use crate::fork;
use crate::tensor_probe::TensorProbe;

/// One array of a batch: `[B]` when `width` is `None`, else `[B, width]`;
/// a ragged output is two buffers, offsets `[B + 1]` (int64) and values.
#[derive(Debug, Clone)]
struct Output {
    name: String,
    kind: ElementKind,
    width: Option<usize>,
    /// What fills it: the stacked features, or column `i` of the plan.
    source: Filler,
}

#[derive(Debug, Clone, Copy)]
enum Filler {
    Features,
    Column(usize),
    /// Column `column` of the plan as offsets + values; `index` counts the
    /// ragged outputs (the position of its [`RaggedFill`] in a slot).
    Ragged {
        column: usize,
        index: usize,
        /// Values per item `D`; 0 for nested lists (inner offsets).
        inner: usize,
        layout: RaggedLayout,
    },
}

/// How a ragged column's values are laid out in its values buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RaggedLayout {
    /// `[N, D]`, sample after sample (the jagged and offsets forms).
    Flat,
    /// `[B, L, D]` with `L` fixed or the batch's longest sample, padded
    /// with `pad`; a longer sample is cut when `truncate`, else an error.
    /// Nested lists are `[B, L, M]`, `M` being `max_inner` or the batch's
    /// longest inner list (cut the same way).
    Padded {
        max_len: Option<usize>,
        max_inner: Option<usize>,
        truncate: bool,
        pad: f64,
    },
}

/// What a worker wrote for one ragged output of a slot.
#[derive(Debug, Default)]
struct RaggedFill {
    /// Values written (`N * D`, or `B * L * D` padded).
    elements: usize,
    /// `L` of a padded layout.
    pad_len: usize,
    /// The values, when they did not fit the slot's values buffer: Python
    /// registers a larger buffer with `adopt_spill`, which copies them in.
    /// `u64` words keep every element kind aligned.
    spill: Option<Vec<u64>>,
    /// Nested lists: inner offsets written (`n_lists + 1`).
    inner_offsets: usize,
    /// Nested lists: `M` of a padded layout.
    pad_inner: usize,
    /// Nested lists: the inner offsets, when they did not fit the slot's
    /// inner offsets buffer (adopted like `spill`).
    inner_spill: Option<Vec<i64>>,
}

/// One registered slot: `(address, bytes)` per buffer (one per dense
/// output, offsets then values per ragged output).
struct Slot {
    /// Locked by the one worker filling the slot, or by Python replacing a
    /// values buffer of a slot it holds: never both at once (the slot is
    /// in one place at a time), so the lock is never contended.
    buffers: Mutex<Vec<(usize, usize)>>,
    fills: Mutex<Vec<RaggedFill>>,
    /// Delivered to Python and not released since: `release_slot` accepts
    /// only such a slot, so a double release cannot put one buffer in the
    /// hands of two workers.
    delivered: AtomicBool,
}

/// The registered slots and the queue of free ones.
struct Slots {
    table: Mutex<Vec<Arc<Slot>>>,
    free_tx: Sender<usize>,
    free_rx: Receiver<usize>,
}

impl Slots {
    fn get(&self, id: usize) -> Option<Arc<Slot>> {
        self.table.lock().ok()?.get(id).cloned()
    }
}

/// A slot taken from the free queue. Dropped undelivered (an epoch stopped
/// early, a failed batch, a batch left in a channel), it goes back on the
/// free queue.
struct SlotLease {
    slots: Arc<Slots>,
    slot: Option<usize>,
}

impl SlotLease {
    /// Hands the slot to Python: it comes back through `release_slot`.
    fn deliver(mut self) -> usize {
        let id = self.slot.take().unwrap_or(usize::MAX);
        if let Some(s) = self.slots.get(id) {
            s.delivered.store(true, Ordering::Release);
        }
        id
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            let _ = self.slots.free_tx.send(s);
        }
    }
}

/// An epoch in progress: its workers fill slots ahead of the Python thread.
struct Running {
    epoch: Epoch<'static, SlotLease>,
    /// Dropped to cancel: workers waiting for a free slot give up.
    cancel: Sender<()>,
}

impl Running {
    fn stop(self) {
        drop(self.cancel);
        // Dropping the epoch closes its channels (the leases queued there go
        // back to the free queue) and joins the workers.
        drop(self.epoch);
    }
}

/// The last batch handed to Python.
#[derive(Default)]
struct Delivered {
    rows: Vec<u64>,
    padding: usize,
    /// Each sample's source in a mix (all 0 for one dataset).
    sources: Vec<u32>,
    /// The state after this batch while the loader does not have it yet:
    /// [`NativeLoader::loader`] hands it over at the loader's next use, so
    /// that a batch costs no [`Loader::restore`] (whose check allocates).
    state: Option<LoaderState>,
}

/// The loader behind `mosaicrs.torch.Loader` (see the module docs).
#[pyclass(module = "mosaicrs._native", name = "NativeLoader")]
pub(crate) struct NativeLoader {
    plan: Arc<BatchPlan>,
    outputs: Arc<Vec<Output>>,
    slots: Arc<Slots>,
    generation: u64,
    /// State, plans and order. Held only briefly (never while waiting for a
    /// batch or for the GIL), so a thread holding the GIL may lock it.
    loader: Mutex<Loader>,
    delivered: Mutex<Delivered>,
    closed: AtomicBool,
    /// Locked only with the GIL released (it is held while waiting for a
    /// batch): a thread holding the GIL must never wait on it. Lock order:
    /// `running`, then `loader`, then `delivered`.
    running: Mutex<Option<Running>>,
}

/// One source of a mix as Python passes it: the dataset, `"weight"`,
/// `"repeat"`, `"choose"` or `"rows"`, the value, and a shuffle mode or None.
pub(crate) type MixEntry<'py> = (PyRef<'py, PyDataset>, String, f64, Option<String>);

/// The mix's streams and options, checked (weights by the core crate).
pub(crate) fn mix_streams(
    entries: Vec<MixEntry<'_>>,
    epoch_size: Option<u64>,
    exhausted: &str,
) -> PyResult<(Vec<Stream<DataSource>>, MixConfig)> {
    let streams = entries
        .into_iter()
        .enumerate()
        .map(|(i, (dataset, kind, value, shuffle))| {
            let stream = Stream::new(dataset.source());
            let stream = match kind.as_str() {
                "weight" => stream.weight(value),
                "repeat" => stream.repeat(value),
                "choose" if value >= 0.0 && value.fract() == 0.0 => stream.choose(value as u64),
                "rows" => stream,
                _ => {
                    return Err(to_py(Error::InvalidArgument(format!(
                        "mix source {i}: {kind} {value} is not a weight, repeat or whole choose"
                    ))))
                }
            };
            match shuffle {
                Some(mode) => Ok(stream.shuffle(mode.parse::<ShuffleMode>().py_err()?)),
                None => Ok(stream),
            }
        })
        .collect::<PyResult<Vec<_>>>()?;
    let config = MixConfig {
        epoch_size,
        exhausted: exhausted.parse::<Exhausted>().py_err()?,
        block: None,
    };
    Ok((streams, config))
}

fn parse_nulls(fill: Option<f64>) -> NullPolicy {
    match fill {
        Some(v) => NullPolicy::Fill(v),
        None => NullPolicy::Error,
    }
}

#[pymethods]
impl NativeLoader {
    /// `features` are stacked into one `[B, F]` array of `feature_dtype`
    /// (list columns among them become their own `[B, D]` arrays, named
    /// after the column); `columns` each become an array of their own type.
    #[new]
    #[pyo3(signature = (
        dataset, batch_size, *, features, columns, feature_dtype="float32", shuffle="global",
        seed=0, drop_last=true, rank=0, world_size=1, workers=None, prefetch=None,
        null_fill=None, rows=None, ragged=None, mix=None, epoch_size=None, exhausted="cycle"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dataset: PyRef<'_, PyDataset>,
        batch_size: usize,
        features: Vec<String>,
        columns: Vec<String>,
        feature_dtype: &str,
        shuffle: &str,
        seed: u64,
        drop_last: bool,
        rank: usize,
        world_size: usize,
        workers: Option<usize>,
        prefetch: Option<usize>,
        null_fill: Option<f64>,
        rows: Option<Vec<u64>>,
        ragged: Option<Vec<RaggedArg>>,
        mix: Option<Vec<MixEntry<'_>>>,
        epoch_size: Option<u64>,
        exhausted: &str,
    ) -> PyResult<Self> {
        let ragged = parse_ragged(ragged.unwrap_or_default())?;
        let dataset = dataset.source();
        let mix = mix
            .map(|m| mix_streams(m, epoch_size, exhausted))
            .transpose()?;
        let mut config = LoaderConfig {
            batch_size,
            seed,
            shuffle: shuffle.parse::<ShuffleMode>().py_err()?,
            tail: if drop_last {
                TailPolicy::DropLast
            } else {
                TailPolicy::Pad
            },
            rank,
            world_size,
            rows: rows.map(Arc::from),
            ..LoaderConfig::default()
        };
        if let Some(w) = workers {
            config.workers = w;
            config.prefetch = 2 * w.max(1);
        }
        if let Some(p) = prefetch {
            config.prefetch = p;
        }
        let kind: ElementKind = feature_dtype.parse().py_err()?;
        let (loader, plan, outputs) = py.detach(move || -> PyResult<_> {
            let (spec, outputs_of) = build_spec(
                &dataset,
                &features,
                &columns,
                &ragged,
                kind,
                parse_nulls(null_fill),
            )?;
            let mut names: Vec<String> = spec.features.clone();
            names.extend(spec.columns.iter().cloned());
            let mut unique = Vec::new();
            for n in names {
                if !unique.contains(&n) {
                    unique.push(n);
                }
            }
            config.columns = Some(unique);
            // The one loader: its gather table is built here, once.
            let loader = match mix {
                Some((streams, mix)) => Loader::mixed(streams, mix, config).py_err()?,
                None => Loader::new(dataset, config).py_err()?,
            };
            let plan = BatchPlan::new(loader.schema(), &spec).py_err()?;
            let outputs = outputs_of(&plan)?;
            Ok((loader, plan, outputs))
        })?;
        let (free_tx, free_rx) = unbounded();
        Ok(NativeLoader {
            plan: Arc::new(plan),
            outputs: Arc::new(outputs),
            slots: Arc::new(Slots {
                table: Mutex::new(Vec::new()),
                free_tx,
                free_rx,
            }),
            generation: fork::generation(),
            loader: Mutex::new(loader),
            delivered: Mutex::new(Delivered::default()),
            closed: AtomicBool::new(false),
            running: Mutex::new(None),
        })
    }

    /// The arrays of a batch in slot order: `(name, dtype, width or None,
    /// inner)`, `inner` being `None` for a dense array (one buffer) and the
    /// values per item `D` for a ragged one (two buffers: int64 offsets
    /// `[B + 1]`, then the values), or 0 for nested lists (three buffers:
    /// int64 offsets `[B + 1]`, int64 inner offsets, then the values).
    fn outputs(&self) -> Vec<(String, &'static str, Option<usize>, Option<usize>)> {
        self.outputs
            .iter()
            .map(|o| {
                let inner = match o.source {
                    Filler::Ragged { inner, .. } => Some(inner),
                    _ => None,
                };
                (o.name.clone(), o.kind.name(), o.width, inner)
            })
            .collect()
    }

    #[getter]
    fn batch_size(&self) -> PyResult<usize> {
        Ok(self.loader()?.config().batch_size)
    }

    #[getter]
    fn rank(&self) -> PyResult<usize> {
        Ok(self.loader()?.config().rank)
    }

    #[getter]
    fn world_size(&self) -> PyResult<usize> {
        Ok(self.loader()?.config().world_size)
    }

    #[getter]
    fn workers(&self) -> PyResult<usize> {
        Ok(self.loader()?.config().workers)
    }

    #[getter]
    fn prefetch(&self) -> PyResult<usize> {
        Ok(self.loader()?.config().prefetch)
    }

    /// Slots Python keeps free for the workers so that none waits for one.
    #[getter]
    fn ring(&self) -> PyResult<usize> {
        Ok(self.loader()?.ring_size())
    }

    /// Samples in one epoch (all ranks).
    #[getter]
    fn samples(&self) -> PyResult<u64> {
        Ok(self.loader()?.epoch_len())
    }

    /// Batches per epoch for this rank (a whole epoch, from its start).
    fn steps_per_epoch(&self) -> PyResult<u64> {
        Ok(self.whole_epoch()?.steps)
    }

    /// Batches left in the current epoch from the current position.
    fn steps_left(&self) -> PyResult<u64> {
        Ok(self.loader()?.plan().py_err()?.steps)
    }

    /// Samples of the epoch that the tail policy drops or pads:
    /// `(dropped, padded)` for a whole epoch.
    fn tail(&self) -> PyResult<(u64, u64)> {
        let plan = self.whole_epoch()?;
        Ok((plan.dropped, plan.padded))
    }

    /// Registers one slot: per output, the address and size in bytes of a
    /// buffer that stays valid until `stop()` or `close()` returns.
    ///
    /// Returns the slot's id; the slot is free (workers may fill it).
    fn add_slot(&self, buffers: Vec<(usize, usize)>) -> PyResult<usize> {
        self.check_usable()?;
        let expected: usize = self.outputs.iter().map(|o| o.buffers()).sum();
        if buffers.len() != expected {
            return Err(PyValueError::new_err(format!(
                "a slot needs {expected} buffers, got {}",
                buffers.len()
            )));
        }
        let batch_size = self.batch_size()?;
        let mut at = buffers.iter();
        let mut ragged = 0;
        for o in self.outputs.iter() {
            let mut next = || at.next().copied().unwrap_or((0, 0));
            if o.buffers() >= 2 {
                ragged += 1;
                check_buffer(&o.name, next(), (batch_size + 1) * 8, 8)?;
                let mut growable = |size: usize, what: &str| -> PyResult<()> {
                    let (addr, bytes) = next();
                    if bytes == 0 || !bytes.is_multiple_of(size) {
                        return Err(PyValueError::new_err(format!(
                            "{what} buffer for {:?} has {bytes} bytes, not a positive multiple \
                             of {size}",
                            o.name
                        )));
                    }
                    check_buffer(&o.name, (addr, bytes), bytes, size)
                };
                if o.buffers() == 3 {
                    growable(8, "inner offsets")?;
                }
                growable(o.kind.size_in_bytes(), "values")?;
            } else {
                let need = batch_size * o.width.unwrap_or(1) * o.kind.size_in_bytes();
                check_buffer(&o.name, next(), need, o.kind.size_in_bytes())?;
            }
        }
        let mut all = self
            .slots
            .table
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the slot table is poisoned"))?;
        all.push(Arc::new(Slot {
            buffers: Mutex::new(buffers),
            fills: Mutex::new((0..ragged).map(|_| RaggedFill::default()).collect()),
            delivered: AtomicBool::new(false),
        }));
        let id = all.len() - 1;
        let _ = self.slots.free_tx.send(id);
        Ok(id)
    }

    /// For each ragged output of slot `id` (delivered, held by Python), in
    /// output order: `(elements, pad_len, spilled, inner_offsets, pad_inner,
    /// inner_spilled)`. `elements` values were written (`N * D`, or
    /// `B * L * D` padded with `L = pad_len`; nested lists padded:
    /// `B * L * M` with `M = pad_inner`); when `spilled`, they did not fit
    /// the slot's values buffer and wait for [`adopt_spill`](Self::adopt_spill).
    /// Nested lists wrote `inner_offsets` inner offsets (0 otherwise), which
    /// wait for `adopt_spill(..., inner=True)` when `inner_spilled`.
    #[allow(clippy::type_complexity)]
    fn ragged_fills(&self, id: usize) -> PyResult<Vec<(usize, usize, bool, usize, usize, bool)>> {
        let slot = self.held_slot(id)?;
        let fills = lock(&slot.fills)?;
        Ok(fills
            .iter()
            .map(|f| {
                (
                    f.elements,
                    f.pad_len,
                    f.spill.is_some(),
                    f.inner_offsets,
                    f.pad_inner,
                    f.inner_spill.is_some(),
                )
            })
            .collect())
    }

    /// Registers `(addr, bytes)` as the values buffer (the inner offsets
    /// buffer when `inner`) of ragged output `index` of slot `id`
    /// (delivered, held by Python) and copies what spilled into it. Python
    /// allocated it larger than the old one (which nothing references: the
    /// slot was free when it was filled) and keeps it alive like every
    /// registered buffer.
    #[pyo3(signature = (id, index, addr, bytes, inner=false))]
    fn adopt_spill(
        &self,
        id: usize,
        index: usize,
        addr: usize,
        bytes: usize,
        inner: bool,
    ) -> PyResult<()> {
        let slot = self.held_slot(id)?;
        let (buffer, output) = self
            .outputs
            .iter()
            .scan(0usize, |at, o| {
                let here = *at;
                *at += o.buffers();
                Some((here, o))
            })
            .filter_map(|(at, o)| match o.source {
                // Offsets, (inner offsets,) values.
                Filler::Ragged { index: i, .. } if i == index => Some((at + o.buffers() - 1, o)),
                _ => None,
            })
            .next()
            .ok_or_else(|| PyValueError::new_err(format!("no ragged output {index}")))?;
        if inner && output.buffers() != 3 {
            return Err(PyValueError::new_err(format!(
                "ragged output {index} ({:?}) has no inner offsets",
                output.name
            )));
        }
        let (buffer, size) = match inner {
            true => (buffer - 1, 8),
            false => (buffer, output.kind.size_in_bytes()),
        };
        // The workers' lock order: buffers, then fills.
        let mut buffers = lock(&slot.buffers)?;
        let mut fills = lock(&slot.fills)?;
        let fill = fills
            .get_mut(index)
            .ok_or_else(|| PyValueError::new_err(format!("no ragged output {index}")))?;
        let need = match inner {
            true => fill.inner_offsets * size,
            false => fill.elements * size,
        };
        if bytes < need.max(1) || !bytes.is_multiple_of(size) {
            return Err(PyValueError::new_err(format!(
                "{} buffer for {:?} has {bytes} bytes, the batch needs {need}",
                if inner { "inner offsets" } else { "values" },
                output.name
            )));
        }
        check_buffer(&output.name, (addr, bytes), bytes, size)?;
        if inner {
            if let Some(spill) = fill.inner_spill.take() {
                // SAFETY: as below; `spill` holds `inner_offsets` int64
                // values, `need` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        spill.as_ptr().cast::<u8>(),
                        addr as *mut u8,
                        need.min(spill.len() * 8),
                    );
                }
            }
        } else if let Some(spill) = fill.spill.take() {
            // SAFETY: `addr..addr + bytes` is a buffer Python allocated for
            // this slot and no one else has seen (checked non-null and
            // aligned above), at least `need` bytes long; `spill` holds at
            // least `need` bytes (allocated for `elements` values); they
            // are distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    spill.as_ptr().cast::<u8>(),
                    addr as *mut u8,
                    need.min(spill.len() * 8),
                );
            }
        }
        let entry = buffers
            .get_mut(buffer)
            .ok_or_else(|| PyValueError::new_err(format!("no ragged output {index}")))?;
        *entry = (addr, bytes);
        Ok(())
    }

    /// Hands slot `id` back: nothing in Python references its buffers.
    /// Only a delivered slot can be released, once.
    fn release_slot(&self, id: usize) -> PyResult<()> {
        self.release(id)
    }

    /// The batches of a loader whose outputs are all dense, handed out
    /// without a Python frame per batch (see [`DenseBatches`]).
    ///
    /// `arm(slot)` returns fresh aliases of the slot's buffers (one tensor
    /// per output) and their storages (`untyped_storage()`, one each); `top_up(n)` registers
    /// `n` more slots; `storage_use_count(handle)` is torch's. A batch is
    /// the tuple `(aliases[pair[0]], aliases[pair[1]])` with `pair` (one per
    /// slot, handed out again with its aliases), else a new dict of `names`
    /// to the aliases.
    #[pyo3(signature = (arm, top_up, storage_use_count, *, pair=None, names=None))]
    fn dense_batches(
        slf: Bound<'_, Self>,
        arm: Py<PyAny>,
        top_up: Py<PyAny>,
        storage_use_count: Py<PyAny>,
        pair: Option<(usize, usize)>,
        names: Option<Vec<String>>,
    ) -> PyResult<DenseBatches> {
        let py = slf.py();
        let outputs = slf.borrow().outputs.len();
        let shape = match (pair, names) {
            (Some((a, b)), None) if a < outputs && b < outputs => BatchShape::Pair(a, b),
            (None, Some(names)) if names.len() == outputs => BatchShape::Dict(
                names
                    .iter()
                    .map(|n| PyString::intern(py, n).unbind())
                    .collect(),
            ),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "dense_batches needs pair= (two of {outputs} outputs) or names= (one per \
                     output)"
                )))
            }
        };
        let ring = slf.borrow().ring()?;
        Ok(DenseBatches {
            native: slf.unbind(),
            arm,
            top_up,
            storage_use_count,
            probe: TensorProbe::new(py)?,
            weakref_count: py.import("weakref")?.getattr("getweakrefcount")?.unbind(),
            shape,
            ring,
            armed: Vec::new(),
            held: Vec::new(),
        })
    }

    /// Slots that workers may fill now.
    fn free_slots(&self) -> usize {
        self.slots.free_rx.len()
    }

    /// Starts (or continues) the current epoch from the current state.
    /// Returns the number of batches this rank will get.
    fn start(&self, py: Python<'_>) -> PyResult<u64> {
        self.check_usable()?;
        self.stop(py)?;
        let (cancel, cancel_rx) = bounded::<()>(0);
        let slots = Arc::clone(&self.slots);
        let plan = Arc::clone(&self.plan);
        let outputs = Arc::clone(&self.outputs);
        let batch_size = self.batch_size()?;
        let assemble = move |g: &Gathered| -> mosaicrs::Result<SlotLease> {
            fill_slot(&slots, &plan, &outputs, batch_size, g, &cancel_rx)
        };
        // The epoch order is computed here: no GIL for that.
        py.detach(move || -> PyResult<u64> {
            let mut running = self.running_lock()?;
            // Started by another thread meanwhile: this one wins.
            if let Some(r) = running.take() {
                r.stop();
            }
            let mut loader = self.loader()?;
            let mut epoch = loader.detached_epoch_with(assemble).py_err()?;
            let steps = epoch.plan().steps;
            if steps == 0 {
                // Nothing of this epoch is left for any rank: the epoch ends
                // at once and moves the state to the next one.
                for _ in epoch.by_ref() {}
                loader.restore(epoch.state().clone()).py_err()?;
                return Ok(0);
            }
            *running = Some(Running { epoch, cancel });
            Ok(steps)
        })
    }

    /// The next batch of the epoch started by `start()`: its slot, or
    /// `None` at the end of the epoch. The slot belongs to Python until
    /// `release_slot`; `release`, when given, is released first (one call
    /// per batch on the hot path).
    #[pyo3(signature = (release=None))]
    fn next(&self, py: Python<'_>, release: Option<usize>) -> PyResult<Option<usize>> {
        self.check_usable()?;
        if let Some(id) = release {
            self.release(id)?;
        }
        py.detach(|| -> PyResult<Option<usize>> {
            let mut running = self.running_lock()?;
            let Some(r) = running.as_mut() else {
                return Ok(None);
            };
            match r.epoch.next() {
                Some(Ok(batch)) => {
                    *self.delivered()? = Delivered {
                        rows: batch.rows,
                        padding: batch.padding,
                        sources: batch.sources,
                        state: Some(batch.state),
                    };
                    Ok(Some(batch.data.deliver()))
                }
                Some(Err(e)) => {
                    if let Some(r) = running.take() {
                        r.stop();
                    }
                    Err(to_py(e))
                }
                None => {
                    // The epoch is complete: its state points at the start
                    // of the next one.
                    if let Some(r) = running.take() {
                        self.loader()?.restore(r.epoch.state().clone()).py_err()?;
                        r.stop();
                    }
                    Ok(None)
                }
            }
        })
    }

    /// Dataset rows of the last delivered batch, in batch order.
    fn last_rows(&self) -> PyResult<Vec<u64>> {
        Ok(self.delivered()?.rows.clone())
    }

    /// The source of each sample of the last delivered batch, in batch
    /// order (the index in the loader's `mix` list; 0 for one dataset).
    fn last_sources(&self) -> PyResult<Vec<u32>> {
        Ok(self.delivered()?.sources.clone())
    }

    /// [`last_sources`](Self::last_sources) as int64 values in native byte
    /// order, for `torch.frombuffer`: the `stream` tensor of a batch without
    /// a Python int per sample.
    fn last_sources_int64<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, pyo3::types::PyByteArray>> {
        let sources = &self.delivered()?.sources;
        let mut bytes = Vec::with_capacity(sources.len() * 8);
        for &s in sources {
            bytes.extend_from_slice(&i64::from(s).to_ne_bytes());
        }
        Ok(pyo3::types::PyByteArray::new(py, &bytes))
    }

    /// Trailing samples of the last batch that are padding (drop_last=False).
    fn last_padding(&self) -> PyResult<usize> {
        Ok(self.delivered()?.padding)
    }

    /// Stops the epoch in progress (its workers are joined). The state stays
    /// after the last delivered batch.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Ok(());
        }
        py.detach(|| -> PyResult<()> {
            let running = self.running_lock()?.take();
            if let Some(r) = running {
                r.stop();
            }
            Ok(())
        })
    }

    /// Stops and refuses further use (RuntimeError).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.stop(py)?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The state after the last delivered batch, as JSON.
    fn state_json(&self) -> PyResult<String> {
        self.loader()?.state().to_json().py_err()
    }

    /// Moves to `state` (JSON from `state_json`, possibly of a loader with
    /// another world size or batch size). Stops the epoch in progress; a
    /// state the loader cannot continue from changes nothing.
    fn load_state_json(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        self.check_usable()?;
        let state = LoaderState::from_json(text).py_err()?;
        self.loader()?.check_state(&state).py_err()?;
        self.stop(py)?;
        self.loader()?.restore(state).py_err()
    }

    /// Moves to the start of `epoch`, unless the loader is already inside
    /// it (a resumed run calling `set_epoch` keeps its position).
    fn set_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.check_usable()?;
        if self.loader()?.state().epoch == epoch {
            return Ok(());
        }
        self.stop(py)?;
        self.loader()?.set_epoch(epoch);
        Ok(())
    }

    /// The dataset rows of `epoch` in global order (every rank's).
    fn order(&self, py: Python<'_>, epoch: u64) -> PyResult<Vec<u64>> {
        py.detach(|| Ok(self.loader()?.rows(epoch).collect()))
    }

    /// The state's epoch.
    #[getter]
    fn epoch(&self) -> PyResult<u64> {
        Ok(self.loader()?.state().epoch)
    }
}

impl NativeLoader {
    /// The loader, standing after the last batch delivered to Python.
    fn loader(&self) -> PyResult<MutexGuard<'_, Loader>> {
        let mut loader = self
            .loader
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the loader is poisoned by an earlier panic"))?;
        let pending = self.delivered()?.state.take();
        if let Some(state) = pending {
            loader.restore(state).py_err()?;
        }
        Ok(loader)
    }

    fn delivered(&self) -> PyResult<MutexGuard<'_, Delivered>> {
        self.delivered
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the loader is poisoned by an earlier panic"))
    }

    /// The plan of a whole epoch (every epoch has the same steps and tail).
    fn whole_epoch(&self) -> PyResult<mosaicrs::loader::EpochPlan> {
        let loader = self.loader()?;
        loader.epoch_plan(loader.state().epoch).py_err()
    }

    /// Only with the GIL released (see the field).
    fn running_lock(&self) -> PyResult<MutexGuard<'_, Option<Running>>> {
        self.running
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the loader is poisoned by an earlier panic"))
    }

    /// Slot `id`, which must be delivered and not yet released.
    fn held_slot(&self, id: usize) -> PyResult<Arc<Slot>> {
        let slot = self
            .slots
            .get(id)
            .ok_or_else(|| PyValueError::new_err(format!("no slot {id}")))?;
        if !slot.delivered.load(Ordering::Acquire) {
            return Err(PyValueError::new_err(format!(
                "slot {id} is not held by Python"
            )));
        }
        Ok(slot)
    }

    fn release(&self, id: usize) -> PyResult<()> {
        let slot = self
            .slots
            .get(id)
            .ok_or_else(|| PyValueError::new_err(format!("no slot {id}")))?;
        if slot
            .delivered
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(PyValueError::new_err(format!(
                "slot {id} is not held by Python (released twice?)"
            )));
        }
        let _ = self.slots.free_tx.send(id);
        Ok(())
    }

    fn check_usable(&self) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Err(PyRuntimeError::new_err(fork::FORKED_MESSAGE));
        }
        if self.closed() {
            return Err(PyRuntimeError::new_err(
                "the loader is closed; create a new mosaicrs.torch.Loader",
            ));
        }
        Ok(())
    }
}

impl Drop for NativeLoader {
    fn drop(&mut self) {
        let running = self.running.get_mut().ok().and_then(|r| r.take());
        if let Some(r) = running {
            if self.generation == fork::generation() {
                r.stop();
            } else {
                // The threads belong to the parent process: joining them here
                // would wait forever. Leak the handles instead.
                std::mem::forget(r);
            }
        }
    }
}

impl Output {
    /// Buffers per slot: offsets and values for a ragged output (with inner
    /// offsets between them for nested lists), else one.
    fn buffers(&self) -> usize {
        match self.source {
            Filler::Ragged { inner: 0, .. } => 3,
            Filler::Ragged { .. } => 2,
            _ => 1,
        }
    }
}

/// `(column, layout, max_len, truncate, pad_value, nested, max_inner_len)`
/// as Python passes it.
type RaggedArg = (
    String,
    String,
    Option<usize>,
    bool,
    f64,
    bool,
    Option<usize>,
);

/// A ragged column: its name, layout, and whether it holds nested lists.
type RaggedColumnArg = (String, RaggedLayout, bool);

/// The ragged columns by name, their layouts checked.
fn parse_ragged(args: Vec<RaggedArg>) -> PyResult<Vec<RaggedColumnArg>> {
    args.into_iter()
        .map(
            |(name, layout, max_len, truncate, pad, nested, max_inner)| {
                if max_inner.is_some() && !(nested && layout == "padded") {
                    return Err(PyValueError::new_err(format!(
                        "max_inner_len for column {name:?} applies to nested lists in the padded \
                     layout (nested=True, ragged={{{name:?}: 'padded'}})"
                    )));
                }
                let layout = match layout.as_str() {
                    "jagged" if nested => {
                        return Err(PyValueError::new_err(format!(
                            "column {name:?} holds nested lists (nested=True), which have two \
                         ragged dimensions; a torch.nested jagged tensor has one: use \
                         ragged={{{name:?}: 'offsets'}} (a NestedRagged) or 'padded'"
                        )))
                    }
                    "jagged" | "offsets" => RaggedLayout::Flat,
                    "padded" => {
                        if max_len == Some(0) || max_inner == Some(0) {
                            return Err(PyValueError::new_err(format!(
                                "max_len and max_inner_len for column {name:?} must be at least 1"
                            )));
                        }
                        RaggedLayout::Padded {
                            max_len,
                            max_inner,
                            truncate,
                            pad,
                        }
                    }
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "ragged layout {other:?} for column {name:?} is not one of \
                         'jagged', 'offsets', 'padded'"
                        )))
                    }
                };
                Ok((name, layout, nested))
            },
        )
        .collect()
}

fn check_buffer(
    name: &str,
    (addr, bytes): (usize, usize),
    need: usize,
    align: usize,
) -> PyResult<()> {
    if bytes != need {
        return Err(PyValueError::new_err(format!(
            "buffer for {name:?} has {bytes} bytes, a batch needs {need}"
        )));
    }
    if addr == 0 || addr % align != 0 {
        return Err(PyValueError::new_err(format!(
            "buffer for {name:?} is null or misaligned"
        )));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| PyRuntimeError::new_err("the loader is poisoned by an earlier panic"))
}

type OutputsOf = Box<dyn FnOnce(&BatchPlan) -> PyResult<Vec<Output>> + Send>;

/// The spec for `features` (stacked; list columns as their own arrays) and
/// `columns` (each by its own type; those named in `ragged` as offsets and
/// values), and how to name the outputs once the plan is checked.
fn build_spec(
    dataset: &DataSource,
    features: &[String],
    columns: &[String],
    ragged: &[RaggedColumnArg],
    kind: ElementKind,
    nulls: NullPolicy,
) -> PyResult<(TensorSpec, OutputsOf)> {
    let layout = FeatureLayout::new(dataset, features).py_err()?;
    let mut spec = TensorSpec::features(layout.scalars().to_vec(), kind).with_nulls(nulls);
    let list_features: Vec<String> = layout.lists().iter().map(|(n, _)| n.clone()).collect();
    for (name, width) in layout.lists() {
        spec = spec.with_fixed_list(name.clone(), *width);
    }
    let schema = dataset.schema();
    for (name, _, _) in ragged {
        if !columns.contains(name) {
            return Err(PyValueError::new_err(format!(
                "ragged= names column {name:?}, which is not among the batch's columns"
            )));
        }
    }
    let layouts: Vec<(String, RaggedLayout)> =
        ragged.iter().map(|(n, l, _)| (n.clone(), *l)).collect();
    for name in columns {
        let index = dataset.column_indices(&[name.as_str()]).py_err()?[0];
        let data_type = schema.field(index).data_type();
        let named = ragged.iter().find(|(n, _, _)| n == name);
        if let Some((_, _, true)) = named {
            // The plan checks that it is a list of lists of numbers.
            spec = spec.with_nested_list(name.clone());
        } else if named.is_some() {
            match data_type {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
                    spec = spec.with_column(name.clone());
                }
                DataType::List(_) | DataType::LargeList(_) => {
                    match inner_width(dataset, name).py_err()? {
                        Some(width) => spec = spec.with_inner_width(name.clone(), width),
                        None => spec = spec.with_column(name.clone()),
                    }
                }
                other => {
                    return Err(PyValueError::new_err(format!(
                        "ragged= names column {name:?} of type {other}, which is not a list, \
                         string or binary column"
                    )))
                }
            }
        } else if is_numeric_list(data_type) {
            let width = list_width(dataset, name).py_err()?;
            spec = spec.with_fixed_list(name.clone(), width);
        } else {
            spec = spec.with_column(name.clone());
        }
    }
    let has_features = !layout.scalars().is_empty();
    let outputs_of: OutputsOf = Box::new(move |plan: &BatchPlan| {
        let mut outputs = Vec::new();
        if has_features {
            outputs.push(Output {
                name: "__features__".into(),
                kind: plan.feature_kind(),
                width: Some(plan.feature_width()),
                source: Filler::Features,
            });
        }
        let mut ragged_index = 0;
        for (i, c) in plan.columns().iter().enumerate() {
            if let Some((_, layout)) = layouts.iter().find(|(n, _)| *n == c.name) {
                let (kind, inner) = match c.conversion {
                    Conversion::List { kind, inner, .. } => (kind, inner.unwrap_or(1)),
                    Conversion::NestedList { kind, .. } => (kind, 0),
                    Conversion::Bytes => (ElementKind::U8, 1),
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "ragged= names column {:?}, which is not a list, string or binary \
                             column",
                            c.name
                        )))
                    }
                };
                outputs.push(Output {
                    name: c.name.clone(),
                    kind,
                    width: None,
                    source: Filler::Ragged {
                        column: i,
                        index: ragged_index,
                        inner,
                        layout: *layout,
                    },
                });
                ragged_index += 1;
                continue;
            }
            let Some((ckind, width)) = c.conversion.dense_shape() else {
                return Err(PyValueError::new_err(format!(
                    "column {:?} holds strings, bytes or lists of lists, which have no fixed \
                     tensor shape; name it in ragged= (for example ragged={{'{}': 'offsets'}})",
                    c.name, c.name
                )));
            };
            let is_feature_list = list_features.contains(&c.name);
            // A list feature is cast to the feature dtype, like the scalars.
            let kind = if is_feature_list {
                plan.feature_kind()
            } else {
                ckind
            };
            let fixed = !matches!(c.conversion, Conversion::Scalar(_));
            outputs.push(Output {
                name: c.name.clone(),
                kind,
                width: if fixed { Some(width) } else { None },
                source: Filler::Column(i),
            });
        }
        Ok(outputs)
    });
    Ok((spec, outputs_of))
}

/// Waits for a free slot (or cancellation), then fills it from `g`.
fn fill_slot(
    slots: &Arc<Slots>,
    plan: &BatchPlan,
    outputs: &[Output],
    batch_size: usize,
    g: &Gathered,
    cancel: &Receiver<()>,
) -> mosaicrs::Result<SlotLease> {
    let id = select! {
        recv(slots.free_rx) -> s => s.map_err(|_| Error::Internal("the slot queue closed".into()))?,
        recv(cancel) -> _ => return Err(Error::Internal("the epoch was stopped".into())),
    };
    // From here on an early return puts the slot back.
    let lease = SlotLease {
        slots: Arc::clone(slots),
        slot: Some(id),
    };
    if g.len() != batch_size {
        return Err(Error::Internal(format!(
            "a batch of {} samples does not fit slots of {batch_size}",
            g.len()
        )));
    }
    let slot = slots
        .get(id)
        .ok_or_else(|| Error::Internal(format!("slot {id} is not registered")))?;
    let poisoned = || Error::Internal("a slot lock is poisoned".into());
    let buffers = slot.buffers.lock().map_err(|_| poisoned())?;
    let mut fills = slot.fills.lock().map_err(|_| poisoned())?;
    let mut at = buffers.iter().copied();
    for o in outputs {
        let mut next = || {
            at.next()
                .ok_or_else(|| Error::Internal(format!("slot {id} lacks a buffer")))
        };
        match o.source {
            Filler::Features | Filler::Column(_) => {
                let column = match o.source {
                    Filler::Column(i) => Some(&plan.columns()[i]),
                    _ => None,
                };
                let (addr, bytes) = next()?;
                // SAFETY: `addr` is the start of a buffer of `bytes` bytes that
                // Python registered with `add_slot` (checked there to be
                // non-null, aligned for the element kind, and exactly one batch
                // long) and keeps alive until `stop` has joined this thread.
                // The slot was taken from the free queue, where it only is when
                // no Python object references it (a release is accepted once
                // per delivery) and no other worker holds it: this is the only
                // access until the batch is delivered.
                let out = unsafe { elements(o.kind, addr, bytes) };
                match column {
                    None => plan.fill_features(g, out)?,
                    Some(column) => plan.fill_dense(column, g, out)?,
                }
            }
            Filler::Ragged {
                column,
                index,
                inner,
                layout,
            } => {
                let (offsets_addr, offsets_bytes) = next()?;
                let inner_buffer = match inner {
                    0 => Some(next()?),
                    _ => None,
                };
                let (values_addr, capacity) = next()?;
                let plan_column = &plan.columns()[column];
                let ragged = plan.ragged(plan_column, g)?;
                // SAFETY: as for the dense buffers above; the offsets buffer
                // was checked in `add_slot` to hold `B + 1` int64 values.
                let offsets = unsafe { elements(ElementKind::I64, offsets_addr, offsets_bytes) };
                let ElementsMut::I64(offsets) = offsets else {
                    return Err(Error::Internal("offsets buffer is not int64".into()));
                };
                if offsets.len() != ragged.offsets().len() {
                    return Err(Error::Internal(format!(
                        "column {:?}: offsets buffer of {} for {} offsets",
                        o.name,
                        offsets.len(),
                        ragged.offsets().len()
                    )));
                }
                offsets.copy_from_slice(ragged.offsets());
                // Nested lists: the inner offsets, into the slot's buffer or
                // a spill when they do not fit.
                let mut inner_spill = None;
                let inner_count = match (inner_buffer, ragged.inner_offsets()) {
                    (Some((addr, capacity)), Some(src)) => {
                        if src.len() * 8 <= capacity {
                            // SAFETY: as for the dense buffers above: the
                            // registered inner offsets buffer of `capacity`
                            // bytes (non-null, 8-byte aligned), of which the
                            // first `src.len() * 8` are used.
                            let dst = unsafe { elements(ElementKind::I64, addr, src.len() * 8) };
                            let ElementsMut::I64(dst) = dst else {
                                return Err(Error::Internal("offsets buffer is not int64".into()));
                            };
                            dst.copy_from_slice(src);
                        } else {
                            inner_spill = Some(src.to_vec());
                        }
                        src.len()
                    }
                    (None, None) => 0,
                    _ => {
                        return Err(Error::Internal(format!(
                            "column {:?}: nested lists without inner offsets",
                            o.name
                        )))
                    }
                };
                let mut pad_inner = 0;
                let (elements_needed, pad_len) = match layout {
                    RaggedLayout::Flat => (ragged.value_count(), 0),
                    RaggedLayout::Padded {
                        max_len,
                        max_inner,
                        truncate,
                        ..
                    } => {
                        if inner == 0 {
                            pad_inner = match max_inner {
                                Some(m) => {
                                    if !truncate {
                                        if let Some((row, found)) =
                                            ragged.first_inner_longer_than(m)
                                        {
                                            return Err(Error::InvalidArgument(format!(
                                                "column {:?} holds an inner list of {found} \
                                                 values at dataset row {row}, more than \
                                                 max_inner_len={m}; pass truncate=True to cut \
                                                 such lists, or a larger max_inner_len",
                                                o.name
                                            )));
                                        }
                                    }
                                    m
                                }
                                None => ragged.longest_inner(),
                            };
                        }
                        let len = match max_len {
                            Some(max_len) => {
                                if !truncate {
                                    if let Some((row, found)) = ragged.first_longer_than(max_len) {
                                        return Err(Error::InvalidArgument(format!(
                                            "column {:?} holds {found} items at dataset row \
                                             {row}, more than max_len={max_len}; pass \
                                             truncate=True to cut such rows, or a larger max_len",
                                            o.name
                                        )));
                                    }
                                }
                                max_len
                            }
                            None => ragged.longest(),
                        };
                        (batch_size * len * inner.max(pad_inner), len)
                    }
                };
                let size = o.kind.size_in_bytes();
                let fill = fills.get_mut(index).ok_or_else(|| {
                    Error::Internal(format!("slot {id} lacks ragged output {index}"))
                })?;
                let mut spill = None;
                let out = if elements_needed * size <= capacity {
                    // SAFETY: as for the dense buffers above: a registered
                    // values buffer of `capacity` bytes (non-null, aligned),
                    // of which the first `elements_needed * size` are used.
                    unsafe { elements(o.kind, values_addr, elements_needed * size) }
                } else {
                    let words = (elements_needed * size).div_ceil(8);
                    let buffer = spill.insert(vec![0u64; words]);
                    // SAFETY: a fresh, zeroed, 8-byte aligned allocation of
                    // at least `elements_needed * size` bytes that only this
                    // view touches until it is stored in the slot below.
                    unsafe {
                        elements(o.kind, buffer.as_mut_ptr() as usize, elements_needed * size)
                    }
                };
                match layout {
                    RaggedLayout::Flat => ragged.fill_values(out)?,
                    RaggedLayout::Padded { pad, .. } if inner == 0 => {
                        ragged.fill_padded_nested(out, pad_len, pad_inner, pad)?
                    }
                    RaggedLayout::Padded { pad, .. } => ragged.fill_padded(out, pad_len, pad)?,
                }
                *fill = RaggedFill {
                    elements: elements_needed,
                    pad_len,
                    spill,
                    inner_offsets: inner_count,
                    pad_inner,
                    inner_spill,
                };
            }
        }
    }
    Ok(lease)
}

/// A typed mutable view of `bytes` bytes at `addr`.
///
/// # Safety
/// `addr..addr + bytes` must be valid for writes, aligned for `kind`, and
/// not accessed by anyone else for the returned lifetime.
unsafe fn elements<'a>(kind: ElementKind, addr: usize, bytes: usize) -> ElementsMut<'a> {
    let n = bytes / kind.size_in_bytes();
    // SAFETY: guaranteed by the caller (see the function's contract); every
    // bit pattern written is a valid value of the element type, and `bool`
    // slots are only ever written with `true`/`false`.
    unsafe {
        match kind {
            ElementKind::F32 => {
                ElementsMut::F32(std::slice::from_raw_parts_mut(addr as *mut f32, n))
            }
            ElementKind::F64 => {
                ElementsMut::F64(std::slice::from_raw_parts_mut(addr as *mut f64, n))
            }
            ElementKind::I64 => {
                ElementsMut::I64(std::slice::from_raw_parts_mut(addr as *mut i64, n))
            }
            ElementKind::I32 => {
                ElementsMut::I32(std::slice::from_raw_parts_mut(addr as *mut i32, n))
            }
            ElementKind::I16 => {
                ElementsMut::I16(std::slice::from_raw_parts_mut(addr as *mut i16, n))
            }
            ElementKind::I8 => ElementsMut::I8(std::slice::from_raw_parts_mut(addr as *mut i8, n)),
            ElementKind::U8 => ElementsMut::U8(std::slice::from_raw_parts_mut(addr as *mut u8, n)),
            // Python allocates bool buffers with torch.zeros (and Rust with
            // zeroed Vecs), and only true/false is ever written, so every byte
            // viewed as a bool is a valid bool.
            ElementKind::Bool => {
                ElementsMut::Bool(std::slice::from_raw_parts_mut(addr as *mut bool, n))
            }
        }
    }
}

/// A batch's container: `(x, y)` or a dict by output name.
enum BatchShape {
    Pair(usize, usize),
    Dict(Vec<Py<PyString>>),
}

/// The aliases a slot hands out, and what they are with only the slot's
/// own references.
struct Armed {
    aliases: Vec<Py<PyAny>>,
    /// Per alias: the Python reference count (this struct's), the
    /// `TensorImpl` use count and the version counter, as made.
    refs: Vec<isize>,
    uses: Vec<i64>,
    versions: Vec<i64>,
    storages: Vec<ArmedStorage>,
    /// The `(x, y)` tuple of a pair-shaped batch and its reference count
    /// (this struct's), handed out each time the slot comes round: a tuple
    /// is immutable, and one the user keeps shows in its count.
    pair: Option<(Py<PyTuple>, isize)>,
}

/// One storage of a slot, held as its Python object: torch hands out that
/// same object for every `untyped_storage()` of the storage while it lives,
/// so a user holding one shows in its reference count (which the storage's
/// use count does not count).
struct ArmedStorage {
    object: Py<PyAny>,
    /// `(handle,)`, the argument of torch's storage use count, made once.
    handle: Py<PyTuple>,
    /// The object's Python reference count (this struct's) and the storage's
    /// use count with the slot's buffers and the aliases, as armed.
    refs: isize,
    uses: i64,
}

/// The batches of a dense `mosaicrs.torch.Loader`: `next()` is the whole
/// per-batch path (a held slot's check, the hand-off with the GIL
/// released, the batch's container), with no Python frame.
///
/// A slot hands out the same alias tensors (and pair tuple) each time it
/// comes round (making an alias costs more than all the checks), and only
/// while they are provably untouched. A slot goes back to the workers once
/// nothing outside it references its aliases or tuple (their Python
/// reference counts, and the aliases' `TensorImpl` use counts, which count
/// what autograd saved) or its storages (views, `detach()`, numpy arrays:
/// torch's storage use count; `untyped_storage()`: the reference count of
/// the storage object, which the slot holds): a held batch is never
/// overwritten. Before a batch is handed out its aliases are checked to be
/// as made (still exactly `torch.Tensor`; the version counter counts every
/// in-place op, `unsqueeze_` and `resize_` included; no `requires_grad`,
/// `grad`, hooks or attributes): what a user did to an earlier batch's
/// tensors never reaches a later batch; changed aliases are replaced by
/// fresh ones. Aliases that are weakly referenced are dropped when their
/// slot goes back, so a weak reference is dead rather than giving back a
/// refilled batch. The reads go through torch's C entry points
/// ([`TensorProbe`]), not Python attribute lookups.
///
/// The held slots and their aliases live here across epochs, so that a
/// loop stopped early still has its slots come back.
#[pyclass(module = "mosaicrs._native", name = "DenseBatches")]
pub(crate) struct DenseBatches {
    native: Py<NativeLoader>,
    arm: Py<PyAny>,
    top_up: Py<PyAny>,
    storage_use_count: Py<PyAny>,
    probe: TensorProbe,
    /// `weakref.getweakrefcount`.
    weakref_count: Py<PyAny>,
    shape: BatchShape,
    /// Slots Python keeps free for the workers.
    ring: usize,
    /// By slot id: the aliases it hands out, once armed.
    armed: Vec<Option<Armed>>,
    /// Slots handed out and not yet back, oldest first.
    held: Vec<usize>,
}

#[pymethods]
impl DenseBatches {
    /// The next batch of the epoch the loader started, or `None` at its end.
    fn next(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let owner = self.native.clone_ref(py).into_bound(py);
        let native = owner.borrow();
        let mut release = None;
        let mut i = 0;
        while i < self.held.len() {
            let id = self.held[i];
            if self.unused(py, id)? {
                self.drop_weak_aliases(py, id)?;
                self.held.remove(i);
                match release {
                    None => release = Some(id),
                    Some(_) => native.release(id)?,
                }
            } else {
                i += 1;
            }
        }
        let registered = native.slots.table.lock().map(|t| t.len()).unwrap_or(0);
        let free = registered.saturating_sub(self.held.len());
        if free < self.ring {
            self.top_up.call1(py, (self.ring - free,))?;
        }
        let Some(id) = native.next(py, release)? else {
            return Ok(None);
        };
        drop(native);
        self.held.push(id);
        if !self.pristine(py, id)? {
            self.arm(py, id)?;
        }
        let Some(Some(armed)) = self.armed.get(id) else {
            return Err(PyRuntimeError::new_err(format!("slot {id} has no aliases")));
        };
        let batch = match (&self.shape, &armed.pair) {
            (_, Some((pair, _))) => pair.clone_ref(py).into_any(),
            (BatchShape::Dict(names), None) => {
                let dict = PyDict::new(py);
                for (name, alias) in names.iter().zip(&armed.aliases) {
                    dict.set_item(name, alias)?;
                }
                dict.into_any().unbind()
            }
            (BatchShape::Pair(..), None) => {
                return Err(PyRuntimeError::new_err(format!(
                    "slot {id} has no batch tuple"
                )))
            }
        };
        Ok(Some(batch))
    }

    /// The slots handed out and not yet back, oldest first.
    fn held(&self) -> Vec<usize> {
        self.held.clone()
    }

    /// An iterator over the batches of one epoch: its first step calls
    /// `begin()` (which starts the epoch), each step is [`next`](Self::next),
    /// and like a generator it stays exhausted after its end or an error.
    /// `for batch in loader` then runs no Python frame per batch.
    fn epoch(slf: Bound<'_, Self>, begin: Py<PyAny>) -> DenseEpoch {
        DenseEpoch {
            batches: slf.unbind(),
            begin,
            begun: false,
            done: false,
        }
    }
}

impl DenseBatches {
    /// Nothing outside the slot references its aliases or storages.
    fn unused(&self, py: Python<'_>, id: usize) -> PyResult<bool> {
        let Some(Some(armed)) = self.armed.get(id) else {
            // Never armed: nothing was handed out.
            return Ok(true);
        };
        if let Some((pair, refs)) = &armed.pair {
            if refcount(py, pair.as_any()) != *refs {
                return Ok(false);
            }
        }
        for (k, alias) in armed.aliases.iter().enumerate() {
            if refcount(py, alias) != armed.refs[k]
                || self.probe.use_count(alias.bind(py))? != armed.uses[k]
            {
                return Ok(false);
            }
        }
        for storage in &armed.storages {
            if refcount(py, &storage.object) != storage.refs
                || self.storage_uses(py, &storage.handle)? != storage.uses
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Before unused slot `id` goes back to the workers: drops its aliases
    /// if one is weakly referenced, since the weak reference would give the
    /// refilled batch back. Only the slot held them, so they are gone (the
    /// weak references dead); the slot is armed afresh when next handed out.
    fn drop_weak_aliases(&mut self, py: Python<'_>, id: usize) -> PyResult<()> {
        let Some(Some(armed)) = self.armed.get(id) else {
            return Ok(());
        };
        let count = self.weakref_count.bind(py);
        let mut weak = false;
        for alias in &armed.aliases {
            if count.call1((alias,))?.extract::<isize>()? > 0 {
                weak = true;
                break;
            }
        }
        if weak {
            self.armed[id] = None;
        }
        Ok(())
    }

    /// The slot's aliases are as `arm` made them (the slot is unused).
    fn pristine(&self, py: Python<'_>, id: usize) -> PyResult<bool> {
        let Some(Some(armed)) = self.armed.get(id) else {
            return Ok(false);
        };
        for (alias, &version) in armed.aliases.iter().zip(&armed.versions) {
            if !self.probe.pristine(alias.bind(py), version)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Torch's use count of the storage whose `(handle,)` this is.
    fn storage_uses(&self, py: Python<'_>, handle: &Py<PyTuple>) -> PyResult<i64> {
        self.storage_use_count
            .bind(py)
            .call1(handle.bind(py))?
            .extract()
    }

    /// Fresh aliases for slot `id` (unused), and their baselines.
    fn arm(&mut self, py: Python<'_>, id: usize) -> PyResult<()> {
        if self.armed.len() <= id {
            self.armed.resize_with(id + 1, || None);
        }
        // The old aliases go first: the storage baselines must not count them.
        self.armed[id] = None;
        let (aliases, storages): (Vec<Py<PyAny>>, Vec<Py<PyAny>>) =
            self.arm.call1(py, (id,))?.extract(py)?;
        // The tuple first: the aliases' baselines count its references.
        let pair = match self.shape {
            BatchShape::Pair(x, y) => {
                let (Some(a), Some(b)) = (aliases.get(x), aliases.get(y)) else {
                    return Err(PyRuntimeError::new_err(format!(
                        "slot {id} has {} outputs, not a pair",
                        aliases.len()
                    )));
                };
                let pair = PyTuple::new(py, [a.clone_ref(py), b.clone_ref(py)])?.unbind();
                let refs = refcount(py, pair.as_any());
                Some((pair, refs))
            }
            BatchShape::Dict(_) => None,
        };
        let mut armed = Armed {
            refs: Vec::with_capacity(aliases.len()),
            uses: Vec::with_capacity(aliases.len()),
            versions: Vec::with_capacity(aliases.len()),
            storages: Vec::with_capacity(storages.len()),
            aliases: Vec::new(),
            pair,
        };
        for alias in &aliases {
            armed.refs.push(refcount(py, alias));
            armed.uses.push(self.probe.use_count(alias.bind(py))?);
            armed.versions.push(self.probe.version(alias.bind(py))?);
        }
        for object in storages {
            let handle = PyTuple::new(py, [object.getattr(py, intern!(py, "_cdata"))?])?.unbind();
            let uses = self.storage_uses(py, &handle)?;
            armed.storages.push(ArmedStorage {
                refs: refcount(py, &object),
                object,
                handle,
                uses,
            });
        }
        armed.aliases = aliases;
        self.armed[id] = Some(armed);
        Ok(())
    }
}

/// One epoch of a [`DenseBatches`], as a Python iterator (see
/// [`DenseBatches::epoch`]).
#[pyclass(module = "mosaicrs._native", name = "DenseEpoch")]
pub(crate) struct DenseEpoch {
    batches: Py<DenseBatches>,
    /// Called at the first step. Kept: it holds the Python loader, which
    /// owns the slots' tensors, and a loader that only a `for` loop
    /// references must live as long as the loop.
    begin: Py<PyAny>,
    begun: bool,
    /// Ended, or failed: every later step ends at once.
    done: bool,
}

#[pymethods]
impl DenseEpoch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.done {
            return Ok(None);
        }
        // Done unless this step delivers a batch.
        self.done = true;
        if !self.begun {
            self.begun = true;
            self.begin.call0(py)?;
        }
        let batch = self.batches.bind(py).try_borrow_mut()?.next(py)?;
        self.done = batch.is_none();
        Ok(batch)
    }
}

/// The Python reference count of `obj`.
fn refcount(_py: Python<'_>, obj: &Py<PyAny>) -> isize {
    // SAFETY: `obj` is a live object (the `Py` holds a reference) and the
    // GIL is held (`_py`), so its header may be read.
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}
