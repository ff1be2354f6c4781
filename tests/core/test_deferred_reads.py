"""Issue 14, item 11: no per-step host reads. A launched step's losses, gradient norm and
(under torchrun) global counts stay on the device; the loop reads every pending step back in
one transfer at each log interval, and times steps with CUDA events on CUDA."""

from __future__ import annotations

import dataclasses
import traceback
from unittest import mock

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core.errors import InputError, TrainingError
from core.training import StepStats, TrainConfig, Trainer, prepare_training
from core.training.batch_loader import host_batch
from core.training.trainer import StepClock
from tests.core.training_text import tiny_train_config, word_tokenizer, write_train_and_heldout


def tiny(**changes) -> TrainConfig:
    return tiny_train_config(**{"steps": 10, **changes})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_train_and_heldout(tmp_path_factory.mktemp("deferred"), seed=3)


def make(corpus, **changes) -> Trainer:
    return prepare_training(
        tiny(**changes),
        [corpus / "train.txt"],
        [corpus / "heldout.txt"],
        tokenizer=word_tokenizer("bert"),
    )


def step_rows(events) -> list[tuple]:
    return [
        (e.step, e.losses, e.grad_norm, e.lr, e.tokens_seen, e.epoch)
        for e in events
        if e.kind == "step"
    ]


def test_reading_every_four_steps_reports_the_same_steps(corpus):
    every_step = list(make(corpus, log_every=1).events())
    every_four = list(make(corpus, log_every=4).events())
    assert step_rows(every_four) == step_rows(every_step)
    assert [e.step for e in every_four if e.kind == "step"] == list(range(1, 11))
    done = next(e for e in every_four if e.kind == "done")
    assert done.metrics == next(e for e in every_step if e.kind == "done").metrics


@pytest.mark.parametrize(
    ("changes", "reads"),
    [
        ({"log_every": 4}, [4, 4, 2]),  # the last step is read at once
        ({"log_every": 4, "eval_every": 6}, [4, 2, 4]),  # and so is a step evaluated after
        ({"log_every": 4, "save_every": 3}, [3, 3, 3, 1]),  # or saved after
        ({"log_every": 1}, [1] * 10),  # the CPU's default
    ],
)
def test_steps_are_read_back_at_log_intervals_in_one_transfer(corpus, changes, reads):
    """The "step" events come in bursts, one per read: a listener notes how many transfers to
    the host (``tolist``) had happened at each event, and exactly one more precedes each
    burst than the event before it saw (the launches in between made none)."""
    trainer = make(corpus, **changes)
    transfers = []
    tolist = torch.Tensor.tolist
    seen = []  # (kind, transfers so far) of every event, as the last listener sees it
    trainer.add_listener(lambda ev: seen.append((ev.kind, len(transfers))))
    with mock.patch.object(torch.Tensor, "tolist", lambda t: transfers.append(1) or tolist(t)):
        for _ in trainer.events():
            pass
    bursts, before = [], 0
    for kind, count in seen:
        if kind == "step" and count > before:
            assert count == before + 1  # every pending step's numbers in one transfer
            bursts.append(0)
        if kind == "step":
            bursts[-1] += 1
        before = count
    assert bursts == reads


class HostReads(TorchDispatchMode):
    """ATen calls that make the host wait for a GPU: a scalar read, or a data-dependent
    shape (nonzero, boolean-mask indexing). Reading a step's numbers back (``tolist``) is
    marked in the same list as "read back"."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        boolean_index = name.startswith("aten.index.Tensor") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        )
        if "_local_scalar_dense" in name or "nonzero" in name or boolean_index:
            # padding_mask's "is anything padded?" runs for masks in CPU memory only (a CPU
            # tensor here, a GPU tensor in a GPU run, where it is skipped).
            frames = {frame.name for frame in traceback.extract_stack()}
            if "padding_mask" not in frames:
                self.calls.append(name)
        return func(*args, **(kwargs or {}))

    def before_read_back(self, step) -> tuple[list[str], StepStats]:
        """The host reads of ``step()`` (a training step) before its numbers are read back,
        and its numbers; the read back must be one transfer."""
        tolist = torch.Tensor.tolist
        marked = mock.patch.object(
            torch.Tensor, "tolist", lambda t: self.calls.append("read back") or tolist(t)
        )
        with self, marked:
            stats = step()
        assert self.calls.count("read back") == 1
        return self.calls[: self.calls.index("read back")], stats


def test_a_launched_step_makes_no_host_read(corpus):
    """Forward, backward and clipping of a step asks the device for no number before the
    step's numbers are read back, given batches prepared as the data pipeline prepares them
    for a GPU."""
    trainer = make(corpus)
    micro, _ = next(trainer._batches)
    prepared = [host_batch(b) for b in micro]  # what the data pipeline hands the GPU loop
    reads, stats = HostReads().before_read_back(lambda: trainer.train_step(prepared))
    assert reads == []
    assert stats.n_masked == sum(b.n_masked for b in micro) > 0
    assert stats.n_sequences == 4 and stats.n_tokens == sum(b.n_tokens for b in micro)
    # Compare: the CPU's plain batch gathers with a boolean mask (fine there, a sync on a GPU).
    reads, _ = HostReads().before_read_back(lambda: trainer.train_step(micro))
    assert reads


def test_a_non_finite_loss_found_at_a_read_names_its_step(corpus):
    """Step 3's loss is NaN (as the step reports it; its gradients are sound): read back with
    steps 1 to 5, the error names step 3, and no step of that read is reported."""
    trainer = make(corpus, log_every=5)
    loss_fn, steps, reported = trainer.loss_fn, [], []

    def poisoned(model, batch, *counts):
        losses = loss_fn(model, batch, *counts)
        steps.append(len(steps) + 1)  # one micro-batch per step
        if steps[-1] == 3:
            return dataclasses.replace(losses, mlm_sum=losses.mlm_sum * float("nan"))
        return losses

    trainer.loss_fn = poisoned
    trainer.add_listener(lambda ev: reported.append(ev.kind))
    with pytest.raises(TrainingError, match="the loss became nan at step 3"):
        list(trainer.events())
    assert steps == [1, 2, 3, 4, 5] and reported == []


def test_cuda_step_times_come_from_the_streams_events():
    made = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing
            self.ms = 10.0 * len(made) ** 2  # recorded at 0, 10, 40, 90 ms
            self.synced = False
            made.append(self)

        def record(self):
            pass

        def synchronize(self):
            self.synced = True

        def elapsed_time(self, end):
            return end.ms - self.ms

    with mock.patch.object(torch.cuda, "Event", FakeEvent):
        clock = StepClock(torch.device("cuda", 0))
        marks = [clock.mark() for _ in range(4)]
        assert clock.seconds(marks) == pytest.approx([0.01, 0.03, 0.05])
    assert [e.synced for e in made] == [False, False, False, True]  # one wait, on the last
    wall = StepClock(torch.device("cpu"))
    assert wall.seconds([1.0, 1.5, 3.0]) == [0.5, 1.5]


def test_the_log_interval_defaults_by_device_and_is_checked(corpus):
    assert make(corpus).log_every == 1  # CPU: reading costs nothing
    assert make(corpus, log_every=7).log_every == 7
    with pytest.raises(InputError, match="log every must be an integer >= 1, got 0"):
        tiny(log_every=0)
    with pytest.raises(InputError, match="data workers must be an integer >= 0, got -1"):
        tiny(data_workers=-1)
