"""Batches built ahead in worker processes: the same steps as ``step_batches`` bit for bit,
errors passed through as themselves, workers shut down, pinning, spawn-safe pickling and the
default number of workers."""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import signal
import time
from unittest import mock

import numpy as np
import pytest
import torch
from torch.utils.data._utils.pin_memory import pin_memory as dataloader_pin_memory

from core.data import Batch, DataConfig, DataPosition, PretrainingData, TokenizedCorpus
from core.errors import InputError
from core.training import batch_loader
from core.training.batch_loader import (
    StepBatchLoader,
    _PackedStep,
    _StepShards,
    default_workers,
    host_batch,
)
from tests.core.training_text import counting_tokenizer, write_counting_corpus


def _data(tmp_path, doc_sentences, task="sop", seq_len=24) -> PretrainingData:
    n = write_counting_corpus(tmp_path / "c.txt", doc_sentences)
    tok = counting_tokenizer(n)
    corpus = TokenizedCorpus.build([tmp_path / "c.txt"], tok)
    config = DataConfig.for_model("albert" if task == "sop" else "bert", seq_len=seq_len)
    return PretrainingData(corpus, tok, config, seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # About 26 pairs per epoch: the steps below cross epoch boundaries.
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(3, 9, size=12)) for _ in range(6)]
    return _data(tmp_path_factory.mktemp("loader"), docs, task="nsp")


class _PrepareFailed(Exception):
    def __init__(self, step: int, why: str):  # two arguments: pickles only via __reduce__
        super().__init__(f"step {step}: {why}")
        self.step, self.why = step, why

    def __reduce__(self):
        return (_PrepareFailed, (self.step, self.why))


def _fail_at(batch: Batch, key: int) -> Batch:
    if int(batch.input_ids.sum()) == key:
        raise _PrepareFailed(7, "cannot pad this batch")
    return batch


class _Unpicklable(Exception):
    def __init__(self, what: str, extra: object):
        super().__init__(what)
        self.extra = extra


def _fail_unpicklable(batch: Batch) -> Batch:
    raise _Unpicklable("half-built batch", extra=lambda: None)


def _assert_same_steps(got, want) -> None:
    assert len(got) == len(want)
    for (micro, pos), (ref_micro, ref_pos) in zip(got, want, strict=True):
        assert pos == ref_pos
        assert len(micro) == len(ref_micro)
        for batch, ref in zip(micro, ref_micro, strict=True):
            assert batch.n_tokens == ref.n_tokens
            for name, value in ref.__dict__.items():
                if isinstance(value, torch.Tensor):
                    got_value = getattr(batch, name)
                    assert got_value.dtype == value.dtype, name
                    assert torch.equal(got_value, value), name
                else:  # counts, and a mask left out (None) when nothing is padded
                    assert getattr(batch, name) == value, name


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_loader_yields_exactly_the_step_batches_of_every_rank(data, workers):
    start = DataPosition(epoch=0, index=11)  # mid-epoch; epochs hold 26, 25, 26, ... pairs
    n_steps = 12
    ends = []
    for world_size in (1, 2):
        for rank in range(world_size):
            want = _take(data.step_batches(start, 2, 2, rank, world_size), n_steps)
            loader = StepBatchLoader(data, start, 2, 2, rank, world_size, workers=workers)
            try:
                got = _take(loader, n_steps)
            finally:
                loader.close()
            _assert_same_steps(got, want)
            ends.append(got[-1][1])
    assert ends[0] == DataPosition(2, 8)  # 48 pairs on: 15 + 25 + 8
    assert ends[1] == ends[2]  # both ranks at the same position


@pytest.mark.parametrize("workers", [0, 2])
def test_prepare_runs_on_every_micro_batch(data, workers):
    prepare = functools.partial(host_batch, seq_len=24)
    want = [
        ([prepare(b) for b in micro], pos)
        for micro, pos in _take(data.step_batches(DataPosition(0, 5), 3, 2, 1, 2), 5)
    ]
    loader = StepBatchLoader(data, DataPosition(0, 5), 3, 2, 1, 2, workers, prepare=prepare)
    try:
        got = _take(loader, 5)
    finally:
        loader.close()
    _assert_same_steps(got, want)
    assert got[0][0][0].input_ids.shape == (3, 24)
    assert got[0][0][0].mlm_positions.dtype == torch.int64


@pytest.mark.parametrize("workers", [0, 2])
def test_corpus_error_reaches_the_consumer_as_itself(tmp_path, workers):
    # Single one-word sentences: no pair can be made, the stream raises InputError.
    data = _data(tmp_path, [[1], [1], [1]], task="nsp")
    loader = StepBatchLoader(data, DataPosition(), 2, 1, 0, 1, workers)
    with pytest.raises(InputError) as caught:
        next(loader)
    assert type(caught.value) is InputError
    assert str(caught.value) == "the corpus yields no training examples (every line is empty?)"
    assert loader.worker_pids == []
    with pytest.raises(StopIteration):
        next(loader)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_step_raises_in_order_after_the_steps_before(data, workers):
    steps = _take(data.step_batches(DataPosition(), 2), 6)
    keys = [int(micro[0].input_ids.sum()) for micro, _ in steps]
    assert keys[3] not in keys[:3]  # the key identifies step 3's micro-batch
    prepare = functools.partial(_fail_at, key=keys[3])
    loader = StepBatchLoader(data, DataPosition(), 2, 1, 0, 1, workers, prepare=prepare)
    _assert_same_steps(_take(loader, 3), steps[:3])
    with pytest.raises(_PrepareFailed) as caught:
        next(loader)
    assert str(caught.value) == "step 7: cannot pad this batch"
    assert caught.value.step == 7


def test_an_unpicklable_worker_error_still_arrives_as_one_line(data):
    loader = StepBatchLoader(data, DataPosition(), 2, 1, 0, 1, 1, prepare=_fail_unpicklable)
    with pytest.raises(RuntimeError, match=r"^_Unpicklable: half-built batch$"):
        next(loader)


def test_close_stops_the_workers_and_is_idempotent(data):
    loader = StepBatchLoader(data, DataPosition(), 2, 1, 0, 1, workers=2, prefetch=3)
    assert loader.worker_pids == []  # nothing starts before the first step is asked for
    next(loader)
    pids = loader.worker_pids
    assert len(pids) == 2
    assert set(pids) <= {p.pid for p in multiprocessing.active_children()}
    loader.close()
    assert not set(pids) & {p.pid for p in multiprocessing.active_children()}
    loader.close()
    assert loader.worker_pids == []
    with pytest.raises(StopIteration):
        next(loader)


def test_workers_leave_ctrl_c_and_sigterm_to_the_training_process(data, monkeypatch):
    """Both signals reach every process of a group (a terminal's Ctrl-C, a scheduler's
    SIGTERM); the workers ignore them, so the trainer can finish its step and save. Worker 1
    is still starting when they come (before its worker_init_fn ignores them): it started
    with them blocked, so they cannot kill it then either."""
    real_init = batch_loader._ignore_stop_signals

    def slow_start(worker_id):
        if worker_id == 1:
            time.sleep(1.0)
        real_init(worker_id)

    monkeypatch.setattr(batch_loader, "_ignore_stop_signals", slow_start)
    want = _take(data.step_batches(DataPosition(), 2, 1, 0, 1), 6)
    loader = StepBatchLoader(data, DataPosition(), 2, 1, 0, 1, workers=2, prefetch=1)
    got = [next(loader)]
    for pid in loader.worker_pids:
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    got += [next(loader) for _ in range(5)]
    assert len(loader.worker_pids) == 2
    loader.close()
    _assert_same_steps(got, want)


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="batch workers must be an integer >= 0, got -1"):
        StepBatchLoader(None, DataPosition(), 2, 1, 0, 1, workers=-1)
    with pytest.raises(InputError, match="batch prefetch must be an integer >= 1, got 0"):
        StepBatchLoader(None, DataPosition(), 2, 1, 0, 1, workers=1, prefetch=0)


# -- pinning (CPU-only torch cannot pin: Tensor.pin_memory is replaced by a recording copy) --
def _fake_pin(calls):
    def pin(self, *args, **kwargs):
        calls.append(tuple(self.shape))
        return self.clone()

    return pin


def test_batch_pin_memory_pins_every_tensor_and_keeps_counts(data):
    (batch, other), position = next(data.step_batches(DataPosition(), 4, 2))
    calls = []
    with mock.patch.object(torch.Tensor, "pin_memory", _fake_pin(calls)):
        pinned = batch.pin_memory()
        # What the DataLoader's pin-memory thread does with a step: Batch.pin_memory inside.
        steps = dataloader_pin_memory(([batch, other], position))
    assert len(calls) == 3 * 6  # six tensors per batch
    assert pinned is not batch and pinned.n_tokens == batch.n_tokens
    for name, value in batch.__dict__.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(getattr(pinned, name), value)
            assert getattr(pinned, name).data_ptr() != value.data_ptr()
    assert isinstance(steps, tuple) and steps[1] == position
    assert [type(b) for b in steps[0]] == [Batch, Batch]


def test_in_process_loader_pins_when_asked(data):
    calls = []
    with mock.patch.object(torch.Tensor, "pin_memory", _fake_pin(calls)):
        loader = StepBatchLoader(data, DataPosition(), 2, 2, 0, 1, 0, pin_memory=True)
        micro, _ = next(loader)
    assert len(micro) == 2 and len(calls) == 2 * 6


def test_a_packed_step_is_one_shared_buffer_and_unpacks_to_equal_batches(data):
    (plain, other), position = next(data.step_batches(DataPosition(0, 3), 3, 2))
    odd = Batch(
        input_ids=plain.input_ids.t(),  # not contiguous
        token_type_ids=plain.token_type_ids[:, :5],
        attention_mask=torch.ones(3, 5, dtype=torch.int32),
        mlm_positions=torch.zeros(3, 5, dtype=torch.bool),
        mlm_labels=torch.zeros(0, dtype=torch.long),  # nothing masked
        sentence_labels=torch.tensor(1),  # 0-dim
        n_tokens=15,
        n_masked=0,
    )
    step = ([plain, host_batch(other, seq_len=24), odd], position)
    packed = _PackedStep.pack(step)
    assert packed.buffer.dtype == torch.uint8 and packed.buffer.is_shared()
    assert pickle.loads(pickle.dumps(packed)).unpack()[1] == position
    micro, got_position = packed.unpack()
    _assert_same_steps([(micro, got_position)], [step])
    storage = packed.buffer.untyped_storage().data_ptr()
    for batch in micro:
        for value in batch.__dict__.values():
            if isinstance(value, torch.Tensor):
                assert value.untyped_storage().data_ptr() == storage
                assert value.storage_offset() * value.element_size() % 16 == 0
    calls = []
    with mock.patch.object(torch.Tensor, "pin_memory", _fake_pin(calls)):
        pinned = dataloader_pin_memory(packed)  # what the DataLoader's pin thread does
    assert calls == [tuple(packed.buffer.shape)]  # one pinned block for the whole step
    _assert_same_steps([pinned.unpack()], [step])


# -- spawn-safety ------------------------------------------------------------------------------
def test_tokenized_corpus_pickles_as_its_folder_and_maps_again(data):
    corpus = data.corpus
    held = corpus.subset(corpus.documents[::2])
    for view in (corpus, held):
        blob = pickle.dumps(view)
        assert len(blob) < view.tokens.nbytes
        copy = pickle.loads(blob)
        assert copy.folder == view.folder and copy.meta == view.meta
        np.testing.assert_array_equal(copy.documents, view.documents)
        for name in TokenizedCorpus.FILES:
            assert isinstance(getattr(copy, name).base, np.memmap)  # mapped again, not copied
            np.testing.assert_array_equal(getattr(copy, name), getattr(view, name))


def test_the_dataset_a_spawned_worker_receives_builds_the_same_steps(data):
    prepare = functools.partial(host_batch, seq_len=24)
    shards = _StepShards(data, DataPosition(0, 9), 2, 2, 1, 2, prepare)
    blob = pickle.dumps(shards)
    assert data.corpus.tokens.tobytes() not in blob  # the files are mapped again, not sent
    copy = pickle.loads(blob)
    _assert_same_steps(_take(copy.steps(3, 1), 3), _take(shards.steps(), 9)[1::3])


# -- how many workers --------------------------------------------------------------------------
def test_default_workers(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    cuda = torch.device("cuda", 0)
    assert default_workers(torch.device("cpu"), cpu_count=64) == 0
    assert default_workers(torch.device("mps"), cpu_count=64) == 0
    assert default_workers(cuda, cpu_count=16) == 4  # capped
    assert default_workers(cuda, cpu_count=4) == 3
    assert default_workers(cuda, cpu_count=2) == 1
    assert default_workers(cuda, cpu_count=1) == 1  # never 0 on CUDA
    assert default_workers(cuda, world_size=4, cpu_count=12) == 2  # 3 CPUs per rank
    assert default_workers(cuda, world_size=8, cpu_count=16) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # 2 machines x 4 GPUs: world 8
    assert default_workers(cuda, world_size=8, cpu_count=12) == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "four")
    assert default_workers(cuda, world_size=2, cpu_count=12) == 4
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert default_workers(cuda) == 2


def test_spawned_workers_build_the_same_steps(data):
    # spawn (macOS, Windows): the dataset and prepare are pickled, the corpus mapped again.
    prepare = functools.partial(host_batch, seq_len=24)
    want = [
        ([prepare(b) for b in micro], pos)
        for micro, pos in _take(data.step_batches(DataPosition(0, 4), 2, 1, 0, 2), 4)
    ]
    loader = StepBatchLoader(
        data, DataPosition(0, 4), 2, 1, 0, 2, 2, prepare=prepare, start_method="spawn"
    )
    try:
        _assert_same_steps(_take(loader, 4), want)
    finally:
        loader.close()
