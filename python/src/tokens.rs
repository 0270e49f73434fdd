//! The native side of `mosaicrs.torch.TokenLoader`: an adapter over one
//! rust-core [`TokenLoader`] that writes each packed batch straight into
//! buffers that Python owns (torch tensors, pinned when the target is CUDA).
//!
//! The batch has a fixed size (`[B, L]` token ids, `[B, L]` position ids,
//! `[B]` lengths, and what is derived from them: the `[B, L]` attention mask
//! and labels, at most `B * L + 1` segment boundaries), so there are no
//! registered slots here: Python keeps a ring of buffer sets and hands their
//! addresses over.
//!
//! Each iteration ([`NativeTokenLoader::start`]) has one producer thread
//! that owns the filling: Python queues buffer sets that nothing references
//! ([`NativeTokenLoader::submit`], a few ahead of what it consumes), the
//! thread fills them in queue order with the core loader (which is
//! sequential: one thread is all it can use) and derives the mask, segment
//! boundaries and labels, and Python takes the batches in the same order
//! ([`NativeTokenLoader::take`]). So the packing of the next batches runs
//! while Python hands out the current one, with the GIL released.
//!
//! The core loader is then ahead of the user by the queued batches. Each
//! reply carries the state after its batch, and the state this loader
//! reports is the one after the last batch taken (`delivered`); stopping the
//! iteration ([`NativeTokenLoader::stop`], also before loading a state,
//! setting the epoch, starting another iteration or closing) joins the
//! thread, drops the fills not begun and restores the core to that state,
//! so a checkpoint resumes exactly after what the user has seen. A buffer
//! set is written only between its `submit` and its `take` (or the `stop`
//! that joins the thread); Python marks it busy for that time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mosaicrs::assemble::ElementsMut;
use mosaicrs::loader::ShuffleMode;
use mosaicrs::tokens::{TokenBatchMut, TokenConfig, TokenLoader, TokenPlan, TokenState};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::dataset::PyDataset;
use crate::errors::{IntoPy, InvalidInputError};
use crate::fork;

/// The element type of the token ids (position ids and lengths are int64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdType {
    I64,
    I32,
}

impl IdType {
    fn size(self) -> usize {
        match self {
            IdType::I64 => 8,
            IdType::I32 => 4,
        }
    }
}

/// The packed-token loader behind `mosaicrs.torch.TokenLoader` (see the
/// module docs).
#[pyclass(module = "mosaicrs._native", name = "NativeTokenLoader")]
pub(crate) struct NativeTokenLoader {
    /// `None` once closed. Locked with the GIL released only (a batch may
    /// wait for reads while holding it), by the producer thread for each
    /// fill. Lock order: `producer`, then `loader`.
    loader: Arc<Mutex<Option<TokenLoader>>>,
    /// The current iteration's producer thread, if any.
    producer: Mutex<Option<Producer>>,
    /// Iterations started (their ids).
    runs: AtomicU64,
    /// Dataset rows of the documents of the last batch taken.
    documents: Mutex<Vec<u64>>,
    ids: IdType,
    /// `(batch_size, seq_len)`.
    shape: (usize, usize),
    generation: u64,
}

/// One `(address, bytes)` buffer from Python.
type Buffer = (usize, usize);

#[pymethods]
impl NativeTokenLoader {
    #[new]
    #[pyo3(signature = (
        dataset, seq_len, batch_size, *, column="input_ids", eos_id=None, pad_id=None,
        vocab_size=None, drop_last=true, seed=0, shuffle="global", rank=0, world_size=1,
        rows=None, dtype="int64"
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
    ) -> PyResult<Self> {
        let ids = match dtype {
            "int64" => IdType::I64,
            "int32" => IdType::I32,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "dtype {other:?} is not int64 or int32 (the token ids' type)"
                )))
            }
        };
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
        let loader = py.detach(move || TokenLoader::new(source, config).py_err())?;
        Ok(NativeTokenLoader {
            loader: Arc::new(Mutex::new(Some(loader))),
            producer: Mutex::new(None),
            runs: AtomicU64::new(0),
            documents: Mutex::new(Vec::new()),
            ids,
            shape: (batch_size, seq_len),
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
        match self.ids {
            IdType::I64 => "int64",
            IdType::I32 => "int32",
        }
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

    /// Begins an iteration at the current state and starts its producer
    /// thread (stopping an earlier iteration's); returns the iteration's id
    /// for [`submit`](Self::submit), [`take`](Self::take) and
    /// [`stop`](Self::stop). After an epoch's last batch the state already
    /// points at the next epoch, and the core reports the end of the epoch
    /// once more; an iteration that begins there starts the next epoch
    /// instead, as `mosaicrs.torch.Loader` does.
    fn start(&self, py: Python<'_>) -> PyResult<u64> {
        self.check_forked()?;
        py.detach(|| {
            let mut guard = self.producer()?;
            if let Some(producer) = guard.take() {
                self.finish(producer)?;
            }
            let state = {
                let mut loader = self.lock()?;
                let loader = loader.as_mut().ok_or_else(closed)?;
                let state = loader.state().clone();
                loader.restore(state.clone()).py_err()?;
                state
            };
            let run = self.runs.fetch_add(1, Ordering::Relaxed);
            *guard = Some(Producer::spawn(
                run,
                Arc::clone(&self.loader),
                self.ids,
                self.shape.1,
                state,
            )?);
            Ok(run)
        })
    }

    /// Queues a fill of this rank's next batch into buffers given as
    /// `(address, bytes)`, for the producer thread of the iteration `run`
    /// (from [`start`](Self::start)): the token ids (`[B, L]` of `dtype`),
    /// the position ids and attention mask (`[B, L]` int64), the lengths
    /// (`[B]` int64), the segment boundaries (`B * L + 1` int32, of which the
    /// batch uses the first `S + 1`) and, when given, the labels (`[B, L]`
    /// int64). The buffers must stay valid, and untouched by anyone else,
    /// until [`take`](Self::take) has returned their batch or
    /// [`stop`](Self::stop) has returned. Fills are taken in the order they
    /// were queued.
    #[pyo3(signature = (run, input_ids, position_ids, lengths, attention_mask, cu_seqlens, labels=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        py: Python<'_>,
        run: u64,
        input_ids: Buffer,
        position_ids: Buffer,
        lengths: Buffer,
        attention_mask: Buffer,
        cu_seqlens: Buffer,
        labels: Option<Buffer>,
    ) -> PyResult<()> {
        self.check_forked()?;
        let buffers = Buffers {
            input_ids,
            position_ids,
            lengths,
            attention_mask,
            cu_seqlens,
            labels,
        };
        let (b, l) = self.shape;
        buffers.check(b, l, self.ids)?;
        py.detach(|| {
            let producer = self.producer()?;
            let producer = producer_of(&producer, run)?;
            // A thread that has stopped (after the end of the epoch or an
            // error, whose reply comes first) fills nothing more: the
            // buffers stay untouched.
            let _ = producer.requests.send(buffers);
            Ok(())
        })
    }

    /// The next queued batch of iteration `run`, once filled: `(S,
    /// max_seqlen)`, or `None` at the end of the epoch (the state then
    /// points at the start of the next one). The state the loader reports
    /// from here on is the one after this batch.
    fn take(&self, py: Python<'_>, run: u64) -> PyResult<Option<(usize, usize)>> {
        self.check_forked()?;
        py.detach(|| {
            let mut producer = self.producer()?;
            let producer = producer_of_mut(&mut producer, run)?;
            match producer.receive() {
                Ok(Reply::Batch {
                    segments,
                    max_seqlen,
                    documents,
                    state,
                }) => {
                    producer.delivered = state;
                    *self.documents()? = documents;
                    Ok(Some((segments, max_seqlen)))
                }
                Ok(Reply::End { state }) => {
                    producer.delivered = state;
                    Ok(None)
                }
                Ok(Reply::Failed(err)) => Err(err),
                // The thread has stopped after the end or an error, which
                // this iteration has taken already.
                Err(_) => Ok(None),
            }
        })
    }

    /// Stops iteration `run`'s producer thread (fills not begun are
    /// dropped; a fill under way completes first) and puts the loader back
    /// to the state after the last batch taken. Once this returns, no
    /// buffer given to [`submit`](Self::submit) is written any more. A run
    /// that is not the current one is left alone.
    fn stop(&self, py: Python<'_>, run: u64) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Ok(());
        }
        py.detach(|| {
            let mut guard = self.producer()?;
            if guard.as_ref().is_some_and(|p| p.run == run) {
                if let Some(producer) = guard.take() {
                    self.finish(producer)?;
                }
            }
            Ok(())
        })
    }

    /// Dataset rows of the documents that the last batch touched, in order
    /// (every rank's part of the global step is walked, only this rank's
    /// rows are listed).
    fn last_documents(&self) -> PyResult<Vec<u64>> {
        Ok(self.documents()?.clone())
    }

    /// The position after the last batch taken, as JSON (the producer
    /// thread may have filled more).
    fn state_json(&self, py: Python<'_>) -> PyResult<String> {
        self.check_forked()?;
        py.detach(|| {
            if let Some(producer) = self.producer()?.as_ref() {
                return producer.delivered.to_json().py_err();
            }
            let guard = self.lock()?;
            guard
                .as_ref()
                .ok_or_else(closed)?
                .state()
                .to_json()
                .py_err()
        })
    }

    /// Moves to `state` (JSON from `state_json`, possibly of a loader with
    /// another world size or batch size). A state of another dataset, seed,
    /// seq_len or eos is refused and changes nothing.
    fn load_state_json(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        self.check_forked()?;
        let state = TokenState::from_json(text).py_err()?;
        self.stop_producer(py)?;
        self.with(py, move |l| {
            l.check_state(&state).py_err()?;
            l.restore(state).py_err()
        })
    }

    /// Moves to the start of `epoch`, unless the loader is already inside it
    /// (a resumed run calling `set_epoch` keeps its position).
    fn set_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.check_forked()?;
        self.stop_producer(py)?;
        self.with(py, |l| {
            if l.state().epoch != epoch {
                l.set_epoch(epoch);
            }
            Ok(())
        })
    }

    /// Stops the producer thread and the core loader and refuses further
    /// use (RuntimeError).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.generation != fork::generation() {
            return Ok(());
        }
        self.stop_producer(py)?;
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

    fn producer(&self) -> PyResult<MutexGuard<'_, Option<Producer>>> {
        self.producer.lock().map_err(|_| {
            PyRuntimeError::new_err("the token loader is poisoned by an earlier panic")
        })
    }

    /// Stops the producer thread of any iteration (see [`Self::stop`]).
    fn stop_producer(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| match self.producer()?.take() {
            Some(producer) => self.finish(producer),
            None => Ok(()),
        })
    }

    /// Joins `producer`'s thread (no buffer is written after this) and puts
    /// the core loader back to the state after the last batch taken.
    fn finish(&self, producer: Producer) -> PyResult<()> {
        let delivered = producer.join()?;
        let mut guard = self.lock()?;
        match guard.as_mut() {
            Some(loader) => loader.restore(delivered).py_err(),
            None => Ok(()),
        }
    }

    fn documents(&self) -> PyResult<MutexGuard<'_, Vec<u64>>> {
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
            // The producer thread belongs to the parent process: joining it
            // here would wait forever. Leak it instead.
            if let Ok(slot) = self.producer.get_mut() {
                std::mem::forget(slot.take());
            }
            if let Ok(slot) = self.loader.lock().as_deref_mut() {
                std::mem::forget(slot.take());
            }
            return;
        }
        if let Ok(Some(producer)) = self.producer.get_mut().map(Option::take) {
            // No buffer may be written once the Python side lets go.
            let _ = producer.join();
        }
    }
}

/// One batch's buffers as `(address, bytes)`, as [`NativeTokenLoader::submit`]
/// takes them.
#[derive(Debug, Clone, Copy)]
struct Buffers {
    input_ids: Buffer,
    position_ids: Buffer,
    lengths: Buffer,
    attention_mask: Buffer,
    cu_seqlens: Buffer,
    labels: Option<Buffer>,
}

impl Buffers {
    /// Checks each buffer's size and alignment for a `[b, l]` batch, and
    /// that no two overlap.
    fn check(&self, b: usize, l: usize, ids: IdType) -> PyResult<()> {
        let n = b
            .checked_mul(l)
            .filter(|&n| i32::try_from(n).is_ok())
            .ok_or_else(|| {
                InvalidInputError::new_err(format!(
                    "batch_size {b} * seq_len {l} tokens do not fit the int32 cu_seqlens"
                ))
            })?;
        check_buffer("input_ids", self.input_ids, n, ids.size())?;
        check_buffer("position_ids", self.position_ids, n, 8)?;
        check_buffer("lengths", self.lengths, b, 8)?;
        check_buffer("attention_mask", self.attention_mask, n, 8)?;
        check_buffer("cu_seqlens", self.cu_seqlens, n + 1, 4)?;
        let mut all = vec![
            self.input_ids,
            self.position_ids,
            self.lengths,
            self.attention_mask,
            self.cu_seqlens,
        ];
        if let Some(labels) = self.labels {
            check_buffer("labels", labels, n, 8)?;
            all.push(labels);
        }
        check_disjoint(&all)
    }
}

/// How long [`NativeTokenLoader::take`] spins for a batch before it sleeps.
const SPIN: Duration = Duration::from_micros(500);

/// What the producer thread sends back for one queued fill.
enum Reply {
    Batch {
        segments: usize,
        max_seqlen: usize,
        documents: Vec<u64>,
        /// The state after this batch.
        state: TokenState,
    },
    /// The end of the epoch, and the state that follows it.
    End {
        state: TokenState,
    },
    Failed(PyErr),
}

/// One iteration's producer thread: it fills the queued buffer sets with
/// the core loader, in order, and sends a [`Reply`] for each; it ends at
/// the end of the epoch, on an error, or when stopped.
struct Producer {
    run: u64,
    requests: mpsc::Sender<Buffers>,
    replies: mpsc::Receiver<Reply>,
    thread: JoinHandle<()>,
    /// Set to drop the fills not begun.
    cancel: Arc<AtomicBool>,
    /// The state after the last batch taken: what the user has.
    delivered: TokenState,
}

impl Producer {
    fn spawn(
        run: u64,
        loader: Arc<Mutex<Option<TokenLoader>>>,
        ids: IdType,
        seq_len: usize,
        state: TokenState,
    ) -> PyResult<Self> {
        let (requests, queued) = mpsc::channel::<Buffers>();
        let (done, replies) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("mosaicrs-tokens".into())
            .spawn(move || {
                for buffers in queued {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let reply = fill(&loader, ids, seq_len, buffers);
                    let last = !matches!(reply, Reply::Batch { .. });
                    if done.send(reply).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|e| {
                PyRuntimeError::new_err(format!("cannot start the token producer thread: {e}"))
            })?;
        Ok(Producer {
            run,
            requests,
            replies,
            thread,
            cancel,
            delivered: state,
        })
    }

    /// The next reply. Waits by spinning first: a batch takes tens of
    /// microseconds, and a thread that sleeps on a busy machine may wait a
    /// whole scheduler slice to run again.
    fn receive(&self) -> Result<Reply, mpsc::RecvError> {
        let begun = Instant::now();
        loop {
            match self.replies.try_recv() {
                Ok(reply) => return Ok(reply),
                Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
                Err(mpsc::TryRecvError::Empty) if begun.elapsed() < SPIN => std::hint::spin_loop(),
                Err(mpsc::TryRecvError::Empty) => return self.replies.recv(),
            }
        }
    }

    /// Drops the fills not begun, waits for the one under way, and returns
    /// the state after the last batch taken.
    fn join(self) -> PyResult<TokenState> {
        self.cancel.store(true, Ordering::Release);
        drop(self.requests);
        self.thread
            .join()
            .map_err(|_| PyRuntimeError::new_err("the token producer thread panicked"))?;
        Ok(self.delivered)
    }
}

/// The current producer when it is iteration `run`'s.
fn producer_of(producer: &Option<Producer>, run: u64) -> PyResult<&Producer> {
    producer
        .as_ref()
        .filter(|p| p.run == run)
        .ok_or_else(superseded)
}

fn producer_of_mut(producer: &mut Option<Producer>, run: u64) -> PyResult<&mut Producer> {
    producer
        .as_mut()
        .filter(|p| p.run == run)
        .ok_or_else(superseded)
}

fn superseded() -> PyErr {
    PyRuntimeError::new_err(
        "this iteration of the token loader was stopped (another iteration began, or the \
         state was loaded, or the loader closed)",
    )
}

/// Fills the next batch into `buffers` (checked by [`Buffers::check`] when
/// queued) and derives the mask, segment boundaries and labels.
fn fill(loader: &Mutex<Option<TokenLoader>>, ids: IdType, l: usize, buffers: Buffers) -> Reply {
    let run = || -> PyResult<Reply> {
        let mut guard = loader.lock().map_err(|_| {
            PyRuntimeError::new_err("the token loader is poisoned by an earlier panic")
        })?;
        let loader = guard.as_mut().ok_or_else(closed)?;
        let Buffers {
            input_ids,
            position_ids,
            lengths,
            attention_mask,
            cu_seqlens,
            labels,
        } = buffers;
        // SAFETY: each buffer was checked when queued to be non-null,
        // aligned for its element type and exactly as long as a batch
        // needs, and no two share a byte. The caller
        // (mosaicrs.torch.TokenLoader) passes the storage of tensors that its
        // ring keeps alive and marks busy from `submit` until `take` returns
        // this batch or `stop`/`close` has joined this thread, and that no
        // other Python object references (the ring's use-count check):
        // nothing else reads or writes them meanwhile. Every bit pattern is
        // a valid integer.
        let (ids_out, pos, lens, mask, cu, labels) = unsafe {
            (
                match ids {
                    IdType::I64 => ElementsMut::I64(slice_mut::<i64>(input_ids)),
                    IdType::I32 => ElementsMut::I32(slice_mut::<i32>(input_ids)),
                },
                slice_mut::<i64>(position_ids),
                slice_mut::<i64>(lengths),
                slice_mut::<i64>(attention_mask),
                slice_mut::<i32>(cu_seqlens),
                labels.map(|buffer| slice_mut::<i64>(buffer)),
            )
        };
        let out = TokenBatchMut {
            input_ids: ids_out,
            position_ids: ElementsMut::I64(pos),
            lengths: lens,
        };
        let Some(info) = loader.next_into(out).py_err()? else {
            return Ok(Reply::End {
                state: loader.state().clone(),
            });
        };
        // SAFETY: as above; the core's mutable views of these three
        // buffers ended with `out`, so these shared views alias nothing.
        let (ids_in, pos, lens) = unsafe {
            (
                match ids {
                    IdType::I64 => Ids::I64(slice_ref::<i64>(input_ids)),
                    IdType::I32 => Ids::I32(slice_ref::<i32>(input_ids)),
                },
                slice_ref::<i64>(position_ids),
                slice_ref::<i64>(lengths),
            )
        };
        let (segments, max_seqlen) = derive(l, &ids_in, pos, lens, mask, cu, labels);
        Ok(Reply::Batch {
            segments,
            max_seqlen,
            documents: info.documents,
            state: loader.state().clone(),
        })
    };
    run().unwrap_or_else(Reply::Failed)
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
/// and lengths: the attention mask (1 for the first `lengths[r]` tokens of
/// row `r`), the segment boundaries over the flattened `B * L` tokens, and
/// the labels (the ids, with -100 at each segment's first token and at
/// padding). Returns `(segments, max_seqlen)`. In Rust: a handful of torch
/// operations per batch cost more than the packing itself.
///
/// A segment starts where the position is 0: at each document and row
/// start, and where padding begins. The core writes positions as ramps
/// (0, 1, 2, ... within each segment, padding included), so the segment
/// that holds token `e` starts at `e - pos[e]`: each row's starts are found
/// walking back from its last token, one step per segment, without
/// scanning the row.
fn derive(
    l: usize,
    ids: &Ids<'_>,
    pos: &[i64],
    lengths: &[i64],
    mask: &mut [i64],
    cu: &mut [i32],
    mut labels: Option<&mut [i64]>,
) -> (usize, usize) {
    let n = pos.len();
    let mut segments = 0usize;
    let mut max_seqlen = 0usize;
    // One row's segment starts, last first.
    let mut starts: Vec<usize> = Vec::new();
    for (r, &len) in lengths.iter().enumerate() {
        let row = r * l;
        let real = usize::try_from(len).unwrap_or(0).min(l);
        mask[row..row + real].fill(1);
        mask[row + real..row + l].fill(0);
        if let Some(labels) = labels.as_deref_mut() {
            ids.copy_to(row..row + real, &mut labels[row..row + real]);
            labels[row + real..row + l].fill(-100);
        }
        starts.clear();
        let mut last = row + l - 1;
        loop {
            // A position past the row's start would be a broken ramp: the
            // segment is then cut at the row's start.
            let back = usize::try_from(pos[last]).unwrap_or(0).min(last - row);
            let start = last - back;
            starts.push(start);
            if start == row {
                break;
            }
            last = start - 1;
        }
        let mut end = row + l;
        for &start in &starts {
            max_seqlen = max_seqlen.max(end - start);
            end = start;
        }
        for &start in starts.iter().rev() {
            // `n` fits in i32 (checked when the buffers were queued).
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
