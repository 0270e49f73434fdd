"""The trainers people use, installed from PyPI, on mosaicrs batches: the
Hugging Face `Trainer` (a tiny GPT-2 built from a config) on TokenLoader
batches, and PyTorch Lightning's `Trainer` on Loader and TokenLoader batches.
Each trains, checkpoints mid-epoch, stops, resumes from its own checkpoint in
a new trainer, and must consume exactly the batches of an uninterrupted run:
no token repeated or skipped, across the epoch boundary too. The Hugging Face
Trainer resumes both by its own data skipping and, without re-reading, from
the loader state kept in the checkpoint by a callback."""

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pyarrow as pa
import pytest

mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
torch = pytest.importorskip("torch")
import mosaicrs.torch as mt  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VOCAB = 64
EOS = 1
SEQ_LEN = 32
BATCH = 4
DOCS = 150


def documents() -> List[List[int]]:
    """Documents of 1 to 60 tokens; the first two tokens name the document,
    so a document found in a batch can be matched to its row."""
    rng = np.random.default_rng(3)
    docs = []
    for i in range(DOCS):
        length = int(rng.integers(1, 59))
        docs.append([2 + i // 62, 2 + i % 62, *rng.integers(2, VOCAB, length).tolist()])
    return docs


@pytest.fixture
def token_path(tmp_path) -> Path:
    path = tmp_path / "tokens.mosaicrs"
    ids = pa.array(documents(), pa.list_(pa.int32()))
    mosaicrs.write(pa.table({"input_ids": ids}), path, shard_size="2k")
    return path


def token_kwargs() -> Dict[str, Any]:
    return dict(seq_len=SEQ_LEN, batch_size=BATCH, eos_id=EOS, vocab_size=VOCAB, labels=True,
                attention_mask=True, shuffle=True, seed=11)


def assert_epoch_is_every_document_once(steps: List[torch.Tensor], dropped: int) -> None:
    """The batches of one epoch, row after row, are the documents in some
    order, each followed by EOS, each exactly once, cut only by drop_last."""
    stream = torch.cat([s.reshape(-1) for s in steps]).tolist()
    source = documents()
    assert len(stream) + dropped == sum(len(d) + 1 for d in source)
    pieces, current = [], []
    for token in stream:
        if token == EOS:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    ids = [(p[0] - 2) * 62 + (p[1] - 2) for p in pieces]
    assert len(set(ids)) == len(ids), "a document appears twice"
    assert [source[i] for i in ids] == pieces
    # The rest of the stream is the start of one more document.
    if current:
        tail_id = (current[0] - 2) * 62 + (current[1] - 2) if len(current) > 1 else None
        assert tail_id not in ids
        if tail_id is not None:
            assert source[tail_id][:len(current)] == current


# -- Hugging Face Trainer ---------------------------------------------------------
# (transformers, accelerate, lightning and torchdata are in scripts/requirements.txt:
# missing, they fail the collection instead of skipping the tests)
import transformers  # noqa: E402


def tiny_gpt2():
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ_LEN, n_embd=32,
                                     n_layer=1, n_head=2, bos_token_id=EOS, eos_token_id=EOS)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


class RecordingTrainer(transformers.Trainer):
    """A Trainer that keeps the input_ids of every batch it trains on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: List[torch.Tensor] = []

    def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):
        self.seen.append(inputs["input_ids"].detach().cpu().clone())
        return super().compute_loss(model, inputs, *args, **kwargs)


class StopAt(transformers.TrainerCallback):
    """Ends training after global step `step` (the checkpoint of that step is
    written first): a job that is killed after a save."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def model_inputs(batch: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
    """The data collator: the loader already made the batch (DataLoader
    batch_size 1 hands over one item); GPT-2 takes these keys."""
    (b,) = batch
    return {k: b[k] for k in ("input_ids", "position_ids", "attention_mask", "labels")}


class PositionTracking(torch.utils.data.IterableDataset):
    """A TokenIterableDataset that remembers the loader state after each batch
    it hands on, in order: the Trainer's DataLoader fetches a batch ahead, so
    the loader's own state can be past the batch being trained on."""

    def __init__(self, inner: mt.TokenIterableDataset) -> None:
        super().__init__()
        self.inner = inner
        self.states: List[Dict[str, Any]] = []

    def __iter__(self):
        for batch in self.inner:
            self.states.append(self.inner.state_dict())
            yield batch

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)


class LoaderStateCallback(transformers.TrainerCallback):
    """Writes the loader state of the last batch trained on into each
    checkpoint (`loader_state.json`) and restores it on resume. With
    `ignore_data_skip=True` the resumed Trainer then reads no batch twice
    (the Trainer's own resume re-reads the epoch's batches up to the
    checkpoint, which is exact too, and costs a pass over them)."""

    FILE = "loader_state.json"

    def __init__(self, dataset: PositionTracking, resume_from: Optional[str] = None) -> None:
        self.dataset = dataset
        self.resume_from = resume_from
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step = state.global_step  # the checkpoint's step on resume
        if self.resume_from is not None:
            with open(os.path.join(self.resume_from, self.FILE)) as f:
                self.dataset.inner.load_state_dict(json.load(f))

    def on_save(self, args, state, control, **kwargs):
        batches = (state.global_step - self.first_step) * args.gradient_accumulation_steps
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        with open(os.path.join(folder, self.FILE), "w") as f:
            json.dump(self.dataset.states[batches - 1], f)


def hf_trainer(path: Path, out: Path, max_steps: int, resume: str, stop: Optional[int] = None,
               checkpoint: Optional[str] = None) -> RecordingTrainer:
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=max_steps, save_steps=10, save_strategy="steps",
        per_device_train_batch_size=1, learning_rate=1e-3, logging_strategy="no",
        report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0, disable_tqdm=True,
        ignore_data_skip=resume == "loader-state")
    dataset: Any = mt.TokenIterableDataset(path, **token_kwargs())
    callbacks: List[Any] = [StopAt(stop)] if stop else []
    if resume == "loader-state":
        dataset = PositionTracking(dataset)
        callbacks.append(LoaderStateCallback(dataset, checkpoint))
    return RecordingTrainer(model=tiny_gpt2(), args=args, train_dataset=dataset,
                            data_collator=model_inputs, callbacks=callbacks)


@pytest.mark.parametrize("resume", ["trainer-skip", "loader-state"])
def test_hugging_face_trainer_resumes_mid_epoch_exactly(token_path, tmp_path, resume):
    per_epoch = len(mt.TokenLoader(token_path, **token_kwargs()))
    max_steps = per_epoch + 12  # into the second epoch
    stop = 20  # a checkpoint step in the middle of the first epoch
    assert 10 < stop < per_epoch

    whole = hf_trainer(token_path, tmp_path / "whole", max_steps, resume)
    whole.train()
    assert len(whole.seen) == max_steps
    loader = mt.TokenLoader(token_path, **token_kwargs())
    assert_epoch_is_every_document_once(whole.seen[:per_epoch], loader.dropped_tokens)

    first = hf_trainer(token_path, tmp_path / "run", max_steps, resume, stop=stop)
    first.train()
    assert len(first.seen) == stop
    checkpoint = tmp_path / "run" / f"checkpoint-{stop}"
    assert checkpoint.is_dir()

    # A new process would build all of this again: a new model, dataset and trainer.
    second = hf_trainer(token_path, tmp_path / "run", max_steps, resume,
                        checkpoint=str(checkpoint))
    second.train(resume_from_checkpoint=str(checkpoint))
    assert second.state.global_step == max_steps
    resumed = first.seen + second.seen
    assert len(resumed) == max_steps
    for step, (a, b) in enumerate(zip(resumed, whole.seen)):
        assert torch.equal(a, b), f"step {step + 1} differs after the resume"


# -- PyTorch Lightning ------------------------------------------------------------
import lightning  # noqa: E402
import torchdata.stateful_dataloader as stateful  # noqa: E402


@pytest.fixture
def rows_path(tmp_path) -> Path:
    n = 203
    path = tmp_path / "rows.mosaicrs"
    mosaicrs.write(pa.table({"id": np.arange(n, dtype=np.int64),
                             "x": np.arange(n, dtype=np.float32) / n}), path, shard_size="1k")
    return path


class Recorder(lightning.LightningModule):
    """A linear model whose training steps keep the batch they saw: the
    `id` column of Loader batches, the input_ids of TokenLoader batches."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.embed = torch.nn.Embedding(VOCAB, 4)
        self.head = torch.nn.Linear(4, 1)
        self.seen: List[torch.Tensor] = []

    def training_step(self, batch: Dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        ids = batch[self.key]
        self.seen.append(ids.detach().cpu().clone())
        return self.head(self.embed(ids % VOCAB)).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class StopAfter(lightning.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            trainer.should_stop = True


def lightning_run(kind: str, path: Path, out: Path, max_steps: int, ckpt_path=None,
                  stop=None) -> Recorder:
    if kind == "tokens":
        dataset = mt.TokenIterableDataset(path, **token_kwargs())
        module = Recorder("input_ids")
    else:
        dataset = mt.IterableDataset(path, 8, columns=["id", "x"], shuffle=True, seed=5)
        module = Recorder("id")
    # torchdata's StatefulDataLoader carries the dataset's state_dict into
    # Lightning's checkpoints (Lightning saves the state of stateful loaders).
    loader = stateful.StatefulDataLoader(dataset, batch_size=None, num_workers=0)
    checkpoints = lightning.pytorch.callbacks.ModelCheckpoint(
        dirpath=str(out), every_n_train_steps=10, save_top_k=-1, filename="{step}")
    callbacks = [checkpoints] + ([StopAfter(stop)] if stop else [])
    trainer = lightning.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
                                enable_progress_bar=False, enable_model_summary=False,
                                callbacks=callbacks, num_sanity_val_steps=0)
    torch.manual_seed(0)
    trainer.fit(module, train_dataloaders=loader, ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize("kind", ["loader", "tokens"])
def test_lightning_resumes_mid_epoch_exactly(kind, rows_path, token_path, tmp_path):
    path = token_path if kind == "tokens" else rows_path
    per_epoch = (len(mt.TokenLoader(path, **token_kwargs())) if kind == "tokens"
                 else len(mt.Loader(path, 8, columns=["id", "x"])))
    max_steps = per_epoch + 7
    stop = 20
    assert stop < per_epoch

    whole = lightning_run(kind, path, tmp_path / "whole", max_steps)
    assert len(whole.seen) == max_steps
    if kind == "tokens":
        loader = mt.TokenLoader(path, **token_kwargs())
        assert_epoch_is_every_document_once(whole.seen[:per_epoch], loader.dropped_tokens)
    else:
        first_epoch = torch.cat(whole.seen[:per_epoch]).tolist()
        assert len(set(first_epoch)) == len(first_epoch) == per_epoch * 8

    first = lightning_run(kind, path, tmp_path / "run", max_steps, stop=stop)
    assert len(first.seen) == stop
    checkpoint = tmp_path / "run" / f"step={stop}.ckpt"
    assert checkpoint.is_file(), sorted(os.listdir(tmp_path / "run"))
    second = lightning_run(kind, path, tmp_path / "run", max_steps, ckpt_path=str(checkpoint))
    resumed = first.seen + second.seen
    assert len(resumed) == max_steps
    for step, (a, b) in enumerate(zip(resumed, whole.seen)):
        assert torch.equal(a, b), f"step {step + 1} differs after the resume"
