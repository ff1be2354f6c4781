"""Training batches built ahead in worker processes, so the GPU is never kept waiting.

Masking and collating a step's batches is Python work; in a thread of the training process
it competes with the kernel launches for the GIL. :class:`StepBatchLoader` runs it in
``torch.utils.data.DataLoader`` worker processes instead (PyTorch's "Feed the GPU" recipe:
workers, prefetch, pinned memory, ``non_blocking`` copies), and yields exactly what
:meth:`core.data.PretrainingData.step_batches` yields, in the same order, bit for bit: worker
w of k builds only the steps s with s % k == w (walking past the others' examples, which is
cheap: no masking), and the DataLoader's round-robin over its workers restores the order.
Exact resume (the stream position after every step) and "DDP equals one process" (each rank
builds only its own share of the global batch) therefore hold as without workers.

A worker packs each step into one shared-memory block (one hand-over per step, not one per
tensor); the DataLoader's pin-memory thread in the main process pins that block, so workers
never touch CUDA (``pin_memory`` should be asked for only when CUDA is available; the trainer
does so), and the main process unpacks it into views: its cost per step is ~1.5-2 ms for
256 x 128 (``benchmarks/bench_data.py``), against 26-75 ms to build the step itself. A
worker's exception reaches the consumer as the same exception, with its one-line message (not
the DataLoader's re-raise with a traceback text), at the step where it happened.

What a GPU step needs from a batch is decided here too, where the batch is built:
:func:`host_batch` (flat masked-position indices, no mask when nothing is padded, fixed shapes
under torch.compile), chosen per device by :func:`host_preparation`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from core.data import Batch, DataPosition, PretrainingData
from core.errors import InputError

log = logging.getLogger(__name__)

Step = tuple[list[Batch], DataPosition]


def default_workers(device: torch.device, world_size: int = 1, cpu_count: int | None = None) -> int:
    """How many batch-building processes a rank gets: none on the CPU (its cores train) or
    MPS (unified memory, little to gain); on CUDA one CPU per rank is left to the training
    process and up to 4 of the rest build batches (more gains nothing at BERT's sizes).
    ``cpu_count``: usable CPUs (default: this process's affinity); the ranks of one machine
    (``LOCAL_WORLD_SIZE``, set by torchrun, else ``world_size``) share them."""
    if device.type != "cuda":
        return 0
    if cpu_count is None:
        if hasattr(os, "sched_getaffinity"):
            cpu_count = len(os.sched_getaffinity(0))
        else:
            cpu_count = os.cpu_count() or 1
    local = world_size
    env = os.environ.get("LOCAL_WORLD_SIZE")
    if env is not None:
        try:
            local = int(env)
        except ValueError:
            log.warning("ignoring LOCAL_WORLD_SIZE=%r (not an integer)", env)
    cpus_per_rank = max(1, cpu_count) // max(1, local)
    return min(4, max(1, cpus_per_rank - 1))


def host_batch(batch: Batch, seq_len: int | None = None, per_row: int | None = None) -> Batch:
    """``batch`` prepared on the CPU for an accelerator (or torch.compile): masked positions as
    flat int64 indices, so the GPU gathers rows without reporting a count back; with
    ``seq_len``/``per_row`` (torch.compile) fixed shapes: the sequences padded to ``seq_len``
    (attention mask 0) and the indices to ``per_row`` per sequence (label -100, which the loss
    ignores). An unpadded batch loses its attention mask (None: no padding), so the model need
    not ask the GPU. Runs where the batches are built (a data worker), not in the loop."""
    fields = dict(batch.__dict__)
    rows, width = batch.input_ids.shape
    if seq_len is not None and width < seq_len:
        for name in ("input_ids", "token_type_ids", "attention_mask", "mlm_positions"):
            value = fields[name]
            fields[name] = torch.cat([value, value.new_zeros(rows, seq_len - width)], dim=1)
    index = fields["mlm_positions"].flatten().nonzero().squeeze(1)  # (N,) row-major
    labels = fields["mlm_labels"]
    if per_row is not None and index.numel() < rows * per_row:
        extra = rows * per_row - index.numel()
        index = torch.cat([index, index.new_zeros(extra)])
        labels = torch.cat([labels, labels.new_full((extra,), -100)])
    fields["mlm_positions"], fields["mlm_labels"] = index, labels
    mask = batch.attention_mask
    if seq_len is None and mask is not None and bool(mask.all()):
        fields["attention_mask"] = None  # no padding: decided here, not by the GPU
    return Batch(**fields)


def host_preparation(
    device: torch.device, fixed_shapes: bool, seq_len: int, per_row: int
) -> Callable[[Batch], Batch] | None:
    """What every batch goes through where it is built (``prepare``): :func:`host_batch` with
    fixed shapes for torch.compile (one compiled graph), plain :func:`host_batch` on an
    accelerator, nothing on the CPU (no device to wait for: the plain batch is as fast)."""
    if fixed_shapes:
        return functools.partial(host_batch, seq_len=seq_len, per_row=per_row)
    if device.type != "cpu":
        return host_batch
    return None


@dataclass(frozen=True)
class _WorkerFailure:
    """A worker's exception, handed through the DataLoader as an item (raised by the
    consumer where that step would have been), with the worker's traceback for the log."""

    error: BaseException
    trace: str


def _picklable(error: BaseException) -> BaseException:
    """``error`` if it survives the pipe to the main process, else a RuntimeError that says
    what it was (an unpicklable item would be lost in the queue and hang the consumer)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


_ALIGN = 16  # every tensor starts at a multiple of this many bytes: views of any dtype


@dataclass(frozen=True)
class _Slot:
    """Where one batch tensor lies in a packed step's buffer."""

    start: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _PackedStep:
    """A step as one flat byte tensor plus where each batch tensor lies in it: a worker hands
    torch one shared-memory block per step instead of one per tensor (each costs the main
    process a socket round trip to receive: 2.4 ms for a step's six tensors against 0.4 ms
    packed, measured on the project machine), and the pin-memory thread pins it with one
    allocation. Unpacked into views with the same dtypes, shapes and bytes."""

    buffer: torch.Tensor  # (nbytes,) uint8
    layout: tuple[dict[str, object], ...]  # per batch: field -> _Slot, or the value itself
    position: DataPosition

    @classmethod
    def pack(cls, step: Step) -> _PackedStep:
        micro, position = step
        layout: list[dict[str, object]] = []
        tensors: list[tuple[_Slot, torch.Tensor]] = []
        total = 0
        for batch in micro:
            fields: dict[str, object] = {}
            for name, value in batch.__dict__.items():
                if isinstance(value, torch.Tensor):
                    value = value.contiguous()
                    slot = _Slot(total, value.nbytes, value.dtype, tuple(value.shape))
                    tensors.append((slot, value))
                    fields[name] = slot
                    total += -(-value.nbytes // _ALIGN) * _ALIGN
                else:
                    fields[name] = value
            layout.append(fields)
        buffer = torch.empty(total, dtype=torch.uint8)
        buffer.share_memory_()  # filled in place: torch then sends it without another copy
        for slot, value in tensors:
            buffer[slot.start : slot.start + slot.nbytes].copy_(value.reshape(-1).view(torch.uint8))
        return cls(buffer, tuple(layout), position)

    def pin_memory(self) -> _PackedStep:
        """Called by the DataLoader's pin-memory thread (main process): one pinned copy."""
        return _PackedStep(self.buffer.pin_memory(), self.layout, self.position)

    def unpack(self) -> Step:
        micro = []
        for fields in self.layout:
            values = {}
            for name, slot in fields.items():
                if isinstance(slot, _Slot):
                    raw = self.buffer[slot.start : slot.start + slot.nbytes]
                    values[name] = raw.view(slot.dtype).view(slot.shape)
                else:
                    values[name] = slot
            micro.append(Batch(**values))
        return micro, self.position


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _ignore_stop_signals(_worker_id: int) -> None:
    """A worker's ``worker_init_fn``: Ctrl-C (SIGINT, sent to the terminal's whole process
    group) and SIGTERM (sent to every process of a job by schedulers such as Slurm) are the
    training process's to handle: it finishes the step, saves a checkpoint and then closes the
    loader. A worker that died of them first would turn that orderly stop into a crash, and
    one that inherited the CLI's handler would print its "stopping" line again. The worker
    started with them blocked (:func:`_stop_signals_held`): one that arrived meanwhile is
    dropped here, as ignored."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Block Ctrl-C and SIGTERM in this thread while it starts the workers, which inherit the
    mask and so cannot die of one before :func:`_ignore_stop_signals` runs. Blocked, not
    ignored: one that comes meanwhile is delivered to this process right after."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (and no fork)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _as_is(item):
    """The DataLoader's collate_fn: items are already batches (module-level: picklable)."""
    return item


class _StepShards(IterableDataset):
    """The steps of ``data.step_batches``; in worker w of k, only those with s % k == w."""

    def __init__(
        self,
        data: PretrainingData,
        position: DataPosition,
        batch_size: int,
        grad_accum: int,
        rank: int,
        world_size: int,
        prepare: Callable[[Batch], Batch] | None,
    ):
        super().__init__()
        self.data = data
        self.position = position
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.rank = rank
        self.world_size = world_size
        self.prepare = prepare

    def steps(self, every: int = 1, offset: int = 0) -> Iterator[Step]:
        for micro, position in self.data.step_batches(
            self.position,
            self.batch_size,
            self.grad_accum,
            self.rank,
            self.world_size,
            every=every,
            offset=offset,
        ):
            if self.prepare is not None:
                micro = [self.prepare(batch) for batch in micro]
            yield micro, position

    def __iter__(self) -> Iterator[Step | _PackedStep | _WorkerFailure]:
        info = get_worker_info()
        every, offset = (1, 0) if info is None else (info.num_workers, info.id)
        try:
            for step in self.steps(every, offset):
                yield step if info is None else _PackedStep.pack(step)
        except Exception as err:  # raised by the consumer, in order, as itself
            yield _WorkerFailure(_picklable(err), traceback.format_exc())


class StepBatchLoader:
    """Iterating gives what ``data.step_batches(position, batch_size, grad_accum, rank,
    world_size)`` gives (``(micro_batches, position_after)`` per optimizer step), same order,
    same tensors, with ``prepare`` applied to every micro-batch where it is built.

    ``workers`` = 0: built in this process when asked for (no DataLoader overhead: the CPU
    path). ``workers`` > 0: built ahead by that many processes, ``prefetch`` steps each;
    ``pin_memory`` (CUDA only) pins them in the main process (``Batch.pin_memory`` in-process),
    so ``Batch.to(cuda)`` copies asynchronously. ``prepare`` must be picklable with workers (a module-level function or a
    ``functools.partial`` of one). ``start_method``: how workers start ("fork", "spawn",
    "forkserver"; None: the platform's default, spawn on macOS and Windows, where the data
    is pickled: the corpus as its folder). Call :meth:`close` when done (also after a
    failure).
    """

    def __init__(
        self,
        data: PretrainingData,
        position: DataPosition,
        batch_size: int,
        grad_accum: int,
        rank: int,
        world_size: int,
        workers: int,
        pin_memory: bool = False,
        prepare: Callable[[Batch], Batch] | None = None,
        prefetch: int = 2,
        start_method: str | None = None,
    ):
        if not isinstance(workers, int) or workers < 0:
            raise InputError(f"batch workers must be an integer >= 0, got {workers!r}")
        if not isinstance(prefetch, int) or prefetch < 1:
            raise InputError(f"batch prefetch must be an integer >= 1, got {prefetch!r}")
        self.workers = workers
        self.pin_memory = pin_memory
        self._shards = _StepShards(
            data, position, batch_size, grad_accum, rank, world_size, prepare
        )
        self._loader: DataLoader | None = None
        self._iterator: Iterator | None = None
        self._closed = False
        if workers == 0:
            self._iterator = self._shards.steps()
        else:
            self._loader = DataLoader(
                self._shards,
                batch_size=None,
                collate_fn=_as_is,
                num_workers=workers,
                prefetch_factor=prefetch,
                persistent_workers=False,
                pin_memory=pin_memory,
                multiprocessing_context=start_method,
                worker_init_fn=_ignore_stop_signals,
                # Its own generator for the workers' base seed: starting the workers must not
                # draw from the global one, which drives dropout (exact resume).
                generator=torch.Generator().manual_seed(0),
            )

    def __iter__(self) -> StepBatchLoader:
        return self

    def __next__(self) -> Step:
        if self._closed:
            raise StopIteration
        if self._iterator is None:  # workers start on the first request, not at construction
            assert self._loader is not None
            with _stop_signals_held():
                self._iterator = iter(self._loader)  # starts the workers
        try:
            item = next(self._iterator)
        except BaseException:
            self.close()
            raise
        if isinstance(item, _WorkerFailure):
            log.debug("batch worker failed:\n%s", item.trace)
            self.close()
            raise item.error
        if isinstance(item, _PackedStep):
            return item.unpack()
        if self.pin_memory:
            item = ([batch.pin_memory() for batch in item[0]], item[1])
        return item

    @property
    def worker_pids(self) -> list[int]:
        """The live worker processes' ids (empty in-process, before the first step and after
        :meth:`close`)."""
        workers = getattr(self._iterator, "_workers", None) or []
        return [w.pid for w in workers if w.is_alive()]

    def close(self) -> None:
        """Stop and join the workers now (safe to call twice; the in-process generator is
        closed too). The loader yields nothing afterwards."""
        self._closed = True
        iterator, self._iterator = self._iterator, None
        if iterator is None:
            return
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:  # a multi-process DataLoader iterator
            shutdown()
        elif hasattr(iterator, "close"):
            iterator.close()
