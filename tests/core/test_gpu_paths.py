"""CUDA and MPS paths, checked on the CPU: the GPU queries are mocked where they decide
something (precision, process groups, RNG, memory), and faults (out of memory, a half-finished
move, one rank cancelled) are injected where torch would raise them on a GPU."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from datetime import timedelta
from unittest import mock

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from core import device as devmod
from core.cost import measure
from core.errors import DeviceError, InputError, TrainingError
from core.loaded_model import LoadedModel
from core.precision import resolve_precision
from core.training import Trainer, prepare_training
from core.training import distributed as distmod
from core.training import run_checkpoints as ckpt
from core.training.listeners import JsonlLog
from core.training.trainer import ProgressEvent
from tests.core.training_text import (
    tiny_train_config,
    word_tokenizer,
    write_corpus,
    write_train_and_heldout,
)

CUDA0, CUDA1, MPS = torch.device("cuda", 0), torch.device("cuda", 1), torch.device("mps")


tiny = tiny_train_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_train_and_heldout(tmp_path_factory.mktemp("gpu"), seed=1)


def make(corpus, config=None, out=None) -> Trainer:
    return prepare_training(
        config or tiny(),
        [corpus / "train.txt"],
        [corpus / "heldout.txt"],
        tokenizer=word_tokenizer("bert"),
        out_dir=out,
    )


# -- 1. MPS has no float64 ----------------------------------------------------------------------
class DtypeRecorder(TorchDispatchMode):
    """The (dtype, device type) of every tensor an ATen op creates."""

    def __init__(self):
        super().__init__()
        self.seen: set[tuple[torch.dtype, str]] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, list | tuple) else [out]:
            if isinstance(t, torch.Tensor):
                self.seen.add((t.dtype, t.device.type))
        return out


def test_no_float64_tensor_on_the_training_device_in_a_step_or_an_evaluation(corpus):
    trainer = make(corpus)
    micro, _ = next(trainer._batches)
    recorder = DtypeRecorder()
    with recorder:
        stats = trainer.train_step(micro)
        metrics = trainer.evaluate()
    assert (torch.float32, "cpu") in recorder.seen  # the recorder saw the work
    assert (torch.float64, "cpu") not in recorder.seen, sorted(map(str, recorder.seen))
    assert stats.mlm_loss > 0 and metrics.n_masked > 0


def test_precision_on_mps_is_checked_in_one_line():
    with mock.patch("core.precision.mps_bf16", return_value=False):
        with pytest.raises(InputError, match="macOS 14") as err:
            resolve_precision("bf16", MPS)
        assert "\n" not in str(err.value)
        assert resolve_precision("fp16", MPS) == "fp16"
        assert resolve_precision("auto", MPS) == "fp32"
    with mock.patch("core.precision.mps_bf16", return_value=True):
        assert resolve_precision("bf16", MPS) == "bf16"


# -- 6. auto precision: native bf16 of the chosen device ---------------------------------------
def _gpus(capabilities: dict[int, tuple[int, int]]):
    return [
        mock.patch.object(torch.version, "hip", None),
        mock.patch("torch.cuda.current_device", return_value=0),
        mock.patch("torch.cuda.get_device_capability", side_effect=lambda d: capabilities[d.index]),
        mock.patch("torch.cuda.get_device_name", side_effect=lambda d: f"GPU{d.index}"),
        # Counts emulation, and asks about the current device: must not decide anything.
        mock.patch("torch.cuda.is_bf16_supported", return_value=True),
    ]


def test_auto_precision_picks_bf16_only_on_native_support_of_the_chosen_gpu():
    patches = _gpus({0: (8, 0), 1: (7, 0)})  # an A100 and a V100
    for p in patches:
        p.start()
    try:
        assert resolve_precision("auto", CUDA0) == "bf16"
        assert resolve_precision("auto", torch.device("cuda")) == "bf16"  # current = 0
        assert resolve_precision("auto", CUDA1) == "fp16"
        with pytest.raises(InputError, match=r"compute capability 7\.0.*--precision fp16"):
            resolve_precision("bf16", CUDA1)
        assert resolve_precision("fp16", CUDA1) == "fp16"
        assert resolve_precision("fp32", CUDA1) == "fp32"
    finally:
        for p in patches:
            p.stop()


# -- 2. cancellation agreed by every rank ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("log_every", "stopped_at"), [(1, 2), (3, 3)])
def test_cancelling_one_rank_stops_both_at_the_same_step_with_a_checkpoint(
    tmp_path, log_every, stopped_at
):
    """Rank 1 alone is asked to stop after step 2; both stop at the first step where they
    agree: the next one when every step is read back, else the end of the log interval."""
    write_corpus(tmp_path / "train.txt", n_docs=12, seed=5)
    write_corpus(tmp_path / "heldout.txt", n_docs=3, seed=6)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "tests.core.dist_cancel_worker",
            str(tmp_path),
            str(log_every),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.getcwd(),
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    # rank 0 was never asked, yet stopped too
    assert [r["steps"] for r in ranks] == [stopped_at, stopped_at]
    assert all(r["cancelled"] for r in ranks)
    saved = tmp_path / "out" / ckpt.checkpoint_name(stopped_at)
    assert ranks[0]["checkpoint"] == str(saved)
    state = ckpt.load_trainer_state(saved)
    assert state["step"] == stopped_at and len(state["rng"]) == 2


def test_a_stop_asked_before_the_first_step_stops_there(corpus):
    trainer = make(corpus)
    assert trainer.agree_to_stop() is False
    trainer.cancel()
    assert trainer.agree_to_stop() is True
    events = list(trainer.events())
    assert [e.kind for e in events] == ["cancelled"] and trainer.step == 0


# -- 3 and 9. process groups on CUDA --------------------------------------------------------------
def test_torchrun_on_cuda_binds_the_gpu_and_waits_on_a_long_cpu_group(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    setup_group = object()
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.device_count", return_value=2),
        mock.patch("torch.cuda.set_device") as set_device,
        mock.patch.object(distmod.dist, "is_initialized", return_value=False),
        mock.patch.object(distmod.dist, "init_process_group") as init,
        mock.patch.object(distmod.dist, "new_group", return_value=setup_group) as new_group,
        mock.patch.object(distmod.dist, "barrier") as barrier,
    ):
        ctx, device = distmod.init_distributed("cuda")
        assert device == CUDA1 and ctx.backend == "nccl" and ctx.rank == 1
        set_device.assert_called_once_with(CUDA1)
        init.assert_called_once_with(backend="nccl", rank=1, world_size=2, device_id=CUDA1)
        (kwargs,) = [c.kwargs for c in new_group.call_args_list]
        assert kwargs["backend"] == "gloo" and kwargs["timeout"] >= timedelta(hours=1)
        distmod.barrier(ctx)  # set-up waits: the gloo group, not NCCL's 10 minutes
        barrier.assert_called_once_with(group=setup_group)
        assert distmod.comm_device(ctx, device) == CUDA1
        with pytest.raises(InputError, match="LOCAL_RANK") as err:
            distmod.init_distributed("cuda:0")  # would be silently overridden
        assert "\n" not in str(err.value)
    distmod.shutdown(distmod.DistContext())
    assert distmod._setup_group is None


# -- 4. RNG of the training device only ----------------------------------------------------------
def test_rng_state_keeps_the_training_gpu_only_and_restores_on_fewer_gpus(caplog):
    gen = torch.arange(8, dtype=torch.uint8)
    with (
        mock.patch("torch.cuda.get_rng_state", return_value=gen) as get,
        mock.patch("torch.cuda.get_rng_state_all") as get_all,
    ):
        state = ckpt.rng_state(CUDA1)
    get.assert_called_once_with(CUDA1)
    get_all.assert_not_called()
    assert torch.equal(state["device"], gen)
    with mock.patch("torch.cuda.set_rng_state") as put:
        ckpt.set_rng_state(state, CUDA0)  # saved on GPU 1, resumed on GPU 0
    put.assert_called_once()
    assert torch.equal(put.call_args.args[0], gen) and put.call_args.args[1] == CUDA0
    # An older checkpoint: every visible GPU's state; now fewer GPUs are visible.
    old = dict(state, cuda=[gen, gen + 1])
    del old["device"]
    with mock.patch("torch.cuda.set_rng_state") as put:
        ckpt.set_rng_state(old, CUDA1)
        assert torch.equal(put.call_args.args[0], gen + 1)
        put.reset_mock()
        ckpt.set_rng_state(old, torch.device("cuda", 5))  # was an IndexError
        put.assert_not_called()
    assert "none for cuda:5" in caplog.text


def test_resuming_with_another_world_size_says_what_it_means(corpus, caplog):
    trainer = make(corpus)
    state = trainer.state_dict()
    state["rng"] = [state["rng"][0], state["rng"][0]]  # as saved by two processes
    with caplog.at_level("WARNING"):
        trainer.load_state_dict(state)
    assert "2-process run with 1 processes" in caplog.text
    assert "global batch is now 4 sequences" in caplog.text


# -- 5. a move that fails half-way ---------------------------------------------------------------
class FailsOnMove(nn.Linear):
    """A layer whose first move raises, after the layers before it have moved."""

    def __init__(self, error: Exception):
        super().__init__(3, 3)
        self.error = error

    def _apply(self, fn, recurse=True):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return super()._apply(fn, recurse)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "not enough"),
        (RuntimeError("CUDA error: an illegal memory access\nmore"), "illegal memory access"),
    ],
)
def test_a_failed_move_puts_everything_back_and_says_so_in_one_line(error, said):
    """A stand-in GPU: ``Tensor.to("cuda")`` copies the tensor and books the copy as living on
    the GPU; ``.to("cpu")`` of a booked copy brings it back. The middle layer fails its move,
    after the first layer has moved."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), FailsOnMove(error), nn.Linear(3, 3))
    model.register_buffer("scale", torch.ones(3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    on_gpu: set[int] = set()
    real_to = torch.Tensor.to

    def fake_to(self, device=None, *args, **kwargs):
        if isinstance(device, torch.device) and device.type == "cuda":
            moved = self.detach().clone()
            on_gpu.add(moved.data_ptr())
            return moved
        if isinstance(device, torch.device) and self.data_ptr() in on_gpu:
            on_gpu.discard(self.data_ptr())
            return self.detach().clone()
        return real_to(self, device, *args, **kwargs)

    loaded = LoadedModel(config=None, model=model, tokenizer=None, name="m")
    with (
        mock.patch.object(torch.Tensor, "to", fake_to),
        mock.patch("core.loaded_model.resolve_device", return_value=CUDA0),
        mock.patch("torch.cuda.get_device_name", return_value="Test GPU"),
        mock.patch.object(devmod, "release_cached_memory") as release,
        pytest.raises(DeviceError, match=said) as err,
    ):
        loaded.to("cuda:0")
    assert "\n" not in str(err.value) and "stays on cpu" in str(err.value)
    release.assert_called_once_with(CUDA0)
    live = [*model.parameters(), *model.buffers()]
    assert not on_gpu & {t.data_ptr() for t in live}  # nothing left on the "GPU"
    assert {t.device.type for t in live} == {"cpu"} and loaded.device == torch.device("cpu")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert err.value.__context__ is None  # the original error (and its frames) let go


# -- 7. out of memory anywhere in a step, in evaluation ---------------------------------------
def test_out_of_memory_releases_everything_before_the_one_line_error():
    held: list[weakref.ref] = []

    def work():
        activations = torch.ones(1000)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory")

    gc.disable()  # as in the window: no collection may run on the engine thread
    try:
        with (
            mock.patch.object(devmod, "release_cached_memory") as release,
            pytest.raises(TrainingError, match="--batch-size") as err,
        ):
            devmod.oom_guarded(work, CUDA0, lambda: "out of memory: try a smaller --batch-size")
        release.assert_called_once_with(CUDA0)
        assert err.value.__context__ is None
        # gone by reference counting alone, before the cache is emptied: not kept by a traceback
        assert held[0]() is None
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="other"):  # other errors pass through
        devmod.oom_guarded(lambda: (_ for _ in ()).throw(ValueError("other")), CUDA0, str)


def test_release_empties_the_cuda_cache():
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.empty_cache") as empty,
        mock.patch("gc.collect") as collect,
    ):
        devmod.release_cached_memory(CUDA0)
    empty.assert_called_once()
    collect.assert_not_called()  # never a collection on the engine thread


@pytest.mark.parametrize("where", ["forward", "optimizer"])
def test_a_training_step_out_of_memory_is_one_line_with_the_gradients_dropped(corpus, where):
    trainer = make(corpus)
    micro, _ = next(trainer._batches)
    loss_fn = trainer.loss_fn

    def forward_then_fail(*args):
        losses = loss_fn(*args)
        losses.loss.backward()  # gradients exist when the failure comes
        raise torch.OutOfMemoryError("CUDA out of memory")

    def fail(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    if where == "forward":
        patch = mock.patch.object(trainer, "loss_fn", forward_then_fail)
    else:  # the first step allocates AdamW's states
        patch = mock.patch.object(trainer.optimizer, "step", fail)
    with patch, pytest.raises(TrainingError) as err:
        trainer.train_step(micro)
    message = str(err.value)
    assert message.startswith("out of memory on CPU during a training step with batch size 4")
    assert "--grad-accum" in message and "\n" not in message
    assert all(p.grad is None for p in trainer.model.parameters())


def test_evaluation_out_of_memory_is_one_line(corpus):
    trainer = make(corpus)
    with (
        mock.patch(
            "core.training.trainer.pretraining_loss",
            side_effect=torch.OutOfMemoryError("CUDA out of memory"),
        ),
        pytest.raises(TrainingError, match="during evaluation with batch size 4"),
    ):
        trainer.evaluate()
    assert trainer.model.training  # evaluation's eval mode undone


def test_an_export_out_of_memory_is_one_line(corpus):
    trainer = make(corpus, tiny(steps=1, warmup=0))

    def export(ev):
        if ev.kind == "done":
            raise torch.OutOfMemoryError("CUDA out of memory")

    trainer.add_listener(export)
    with pytest.raises(TrainingError, match="out of memory on CPU during saving the model: try"):
        trainer.run()


# -- 8. GPU memory measurement subtracts what was there before -----------------------------------
def test_cuda_peak_counts_only_the_rise_above_other_tensors():
    calls = []
    with (
        mock.patch("torch.cuda.synchronize"),
        mock.patch("torch.cuda.memory_allocated", return_value=7_000),  # another model
        mock.patch("torch.cuda.reset_peak_memory_stats") as reset,
        mock.patch("torch.cuda.max_memory_allocated", return_value=7_500),
    ):
        rise = measure.cuda_peak_rise(lambda: calls.append(reset.call_count), CUDA0)
    assert rise == 500
    assert calls == [1]  # the peak was reset before the measured work


# -- 9. NaN gradient norms in the log ----------------------------------------------------------
def test_a_skipped_step_logs_a_null_gradient_norm(corpus, tmp_path):
    trainer = make(corpus, tiny(steps=2))
    log = tmp_path / "train_log.jsonl"
    trainer.add_listener(JsonlLog(log))
    with mock.patch(
        "torch.nn.utils.clip_grad_norm_", return_value=torch.tensor(float("inf"))
    ) as clip:
        trainer.run()
    assert clip.call_count == 2

    def strict(text):
        raise AssertionError(f"not JSON: {text}")

    rows = [json.loads(line, parse_constant=strict) for line in log.read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "step"]
    assert [r["grad_norm"] for r in steps] == [None, None]
    ev = ProgressEvent.note("error", "x")
    assert json.dumps(
        ProgressEvent(**{**ev.__dict__, "grad_norm": float("nan"), "lr": float("inf")}).to_dict(),
        allow_nan=False,
    )


# -- 14. which torch, and why not CUDA -------------------------------------------------------------
@pytest.mark.parametrize(
    ("cuda_build", "nvidia", "expected"),
    [
        (None, True, "CPU build of torch: run `make run TORCH=cu126`"),
        ("12.6", True, "driver is probably older than that CUDA version"),
        (None, False, None),
    ],
)
def test_start_up_says_which_build_and_why_a_gpu_is_unused(cuda_build, nvidia, expected):
    with (
        mock.patch.object(torch.version, "cuda", cuda_build),
        mock.patch.object(torch.version, "hip", None),
        mock.patch("torch.cuda.is_available", return_value=False),
        mock.patch.object(devmod, "nvidia_gpu_present", return_value=nvidia),
    ):
        reason = devmod.cuda_unavailable_reason()
        line = devmod.startup_summary(torch.device("cpu"))
    if expected is None:
        assert reason is None
        assert line == f"torch {torch.__version__} (CPU build), device CPU"
    else:
        assert expected in reason and reason in line
        kind = f"CUDA {cuda_build}" if cuda_build else "CPU build"
        assert line.startswith(f"torch {torch.__version__} ({kind}), device CPU; ")


def test_info_prints_the_build_line(capsys):
    from core.cli import main

    assert main(["info", "resources/models/bert-mini"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == devmod.startup_summary(devmod.resolve_device(None))
    assert last.startswith(f"torch {torch.__version__}")


# -- 12. LAMB with foreach ops ---------------------------------------------------------------
def test_foreach_lamb_updates_like_the_per_tensor_loop():
    from core.training.optim import Lamb, parameter_groups

    torch.manual_seed(0)
    loop_model = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4))
    fast_model = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4))
    fast_model.load_state_dict(loop_model.state_dict())
    with torch.no_grad():
        loop_model[1].weight.zero_()  # a zero-norm tensor: trust ratio 1
        fast_model[1].weight.zero_()
    opts = [
        Lamb(parameter_groups(m, 0.01), lr=1e-2, weight_decay=0.01, foreach=f)
        for m, f in ((loop_model, False), (fast_model, True))
    ]
    x = torch.randn(8, 16)
    for _ in range(5):
        for model, opt in zip((loop_model, fast_model), opts, strict=True):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(loop_model.parameters(), fast_model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
        ra, rb = opts[0].state[a].get("trust_ratio"), opts[1].state[b].get("trust_ratio")
        assert (ra is None) == (rb is None)
        if ra is not None:
            torch.testing.assert_close(rb, ra, rtol=1e-6, atol=0)
    assert float(opts[0].state[loop_model[0].weight]["step"]) == 5.0
    assert float(opts[1].state[fast_model[0].weight]["step"]) == 5.0
    assert not torch.equal(loop_model[0].weight, nn.Linear(16, 32).weight)  # it did move


def test_tf32_follows_the_setting_on_cuda_only():
    """fp32 on Ampere+ uses TF32 unless --no-tf32 asks for exact fp32; the CPU is left alone."""
    from core.precision import set_tf32

    calls = []
    before = torch.backends.cudnn.allow_tf32
    try:
        with mock.patch("torch.set_float32_matmul_precision", side_effect=calls.append):
            set_tf32(CUDA0, True)
            assert torch.backends.cudnn.allow_tf32 is True
            set_tf32(CUDA0, False)
            assert torch.backends.cudnn.allow_tf32 is False
            set_tf32(torch.device("cpu"), True)
            assert torch.backends.cudnn.allow_tf32 is False
    finally:
        torch.backends.cudnn.allow_tf32 = before
    assert calls == ["high", "highest"]


@pytest.mark.slow
def test_compile_setting_trains_through_a_compiled_forward(corpus):
    """``compile=True`` steps through torch.compile (here its "eager" backend: the same
    tracing, no code generation on this CPU) and gives the eager trainer's losses."""
    real_compile = torch.compile
    still = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "intermediate_size": 64,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }  # the two trainers share torch's random stream: no dropout
    eager = make(corpus, tiny(config_overrides=still))
    with mock.patch(
        "torch.compile", side_effect=lambda m: real_compile(m, backend="eager")
    ) as compiled:
        fast = make(corpus, tiny(compile=True, config_overrides=still))
    compiled.assert_called_once()
    assert fast.ddp is not fast.model
    for _ in range(2):
        (a,), _ = next(eager._batches)
        (b,), _ = next(fast._batches)
        one, two = eager.train_step([a]), fast.train_step([b])
        assert two.loss == pytest.approx(one.loss, rel=1e-5)


# -- 10/11. batches for the GPU: index gathers, fixed shapes, pinned async copies ----------------
def test_fixed_shape_batches_give_the_same_loss(corpus):
    from core.training.batch_loader import host_batch
    from core.training.loss import pretraining_loss

    trainer = make(
        corpus,
        tiny(
            config_overrides={
                **tiny().config_overrides,
                "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0,
            }
        ),
    )
    trainer.model.eval()
    (batch,), _ = next(trainer._batches)
    per_row = trainer.train_data.config.predictions_cap
    cap = batch.size * per_row
    fixed = host_batch(batch, seq_len=40, per_row=per_row)
    assert fixed.input_ids.shape == (batch.size, 40) and fixed.mlm_positions.shape == (cap,)
    assert fixed.mlm_positions.dtype == torch.int64
    assert int((fixed.mlm_labels != -100).sum()) == batch.n_masked == fixed.n_masked
    want = pretraining_loss(trainer.model, batch)
    got = pretraining_loss(trainer.model, fixed, mlm_count=batch.n_masked)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.mlm_sum, want.mlm_sum, rtol=1e-5, atol=1e-5)


def test_cuda_batches_use_indices_and_pinned_async_copies(corpus):
    from core.training.batch_loader import host_batch

    trainer = make(corpus)
    (batch,), _ = next(trainer._batches)
    ready = host_batch(batch)
    # An unpadded batch needs no mask: decided here, so the model never asks the GPU.
    assert (ready.attention_mask is None) == bool(batch.attention_mask.all())
    assert ready.mlm_positions.dtype == torch.int64  # no bool-mask gather on the GPU
    assert ready.mlm_positions.numel() == batch.n_masked  # eager: no padding
    flat = batch.mlm_positions.flatten().nonzero().squeeze(1)
    assert torch.equal(ready.mlm_positions, flat)
    tensors = [v for v in ready.__dict__.values() if isinstance(v, torch.Tensor)]
    pinned, moved = [], []

    def pin(self):
        pinned.append(self.shape)
        return self

    def to(self, device, non_blocking=False):
        moved.append((device, non_blocking))
        return self

    with (
        mock.patch.object(torch.Tensor, "pin_memory", pin),
        mock.patch.object(torch.Tensor, "to", to),
    ):
        ready.pin_memory().to(CUDA0)
    assert len(pinned) == len(tensors)  # every tensor of the batch
    assert moved == [(CUDA0, True)] * len(tensors)  # copies that do not wait


def test_the_trainer_builds_batches_in_workers_with_the_same_losses(corpus):
    """--data-workers 2 (forked processes here; CUDA's default is up to 4): the batches, and so
    every step's losses, are those built in-process; the workers are gone at the end."""
    # One after the other: dropout draws from the global generator each trainer seeds.
    in_process = make(corpus, tiny(steps=5, data_workers=0))
    assert in_process._batches.workers == 0 and not in_process._batches.pin_memory
    plain = [e.losses for e in in_process.events() if e.kind == "step"]
    workers = make(corpus, tiny(steps=5, data_workers=2))
    assert workers._batches.workers == 2
    ahead = [e.losses for e in workers.events() if e.kind == "step"]
    assert len(plain) == 5 and ahead == plain
    assert workers._batches.worker_pids == []


def test_cleanup_runs_before_the_cache_is_freed():
    order = []

    def fail():
        raise torch.OutOfMemoryError("CUDA out of memory")

    with (
        mock.patch.object(
            devmod, "release_cached_memory", side_effect=lambda d: order.append("release")
        ),
        pytest.raises(TrainingError),
    ):
        devmod.oom_guarded(fail, CUDA0, lambda: "oom", cleanup=lambda: order.append("cleanup"))
    assert order == ["cleanup", "release"]
