"""What the window says about the GPU, with CUDA mocked: the memory label shows allocated and
reserved memory (read on the engine thread), the About box says why a GPU goes unused."""

from __future__ import annotations

import dataclasses
from unittest import mock

import torch

from app.status_bar import accelerator_memory
from tests.app.helpers import start_and_wait


def test_accelerator_memory_reports_allocated_and_reserved():
    with (
        mock.patch("torch.cuda.memory_allocated", return_value=2**30) as allocated,
        mock.patch("torch.cuda.memory_reserved", return_value=3 * 2**30) as reserved,
    ):
        assert accelerator_memory("cuda:0") == (2**30, 3 * 2**30)
    allocated.assert_called_once_with(torch.device("cuda", 0))
    reserved.assert_called_once_with(torch.device("cuda", 0))
    assert accelerator_memory("cpu") is None


def test_memory_label_and_about_box_on_a_gpu_machine(qtbot, window):
    start_and_wait(qtbot, window)
    entry = window.state.current
    entry.summary = dataclasses.replace(entry.summary, device="cuda:0")
    window.status.memory_timer.stop()  # one tick, by hand
    with mock.patch(
        "app.status_bar.accelerator_memory", return_value=(1536 * 2**20, 4 * 2**30)
    ) as polled:
        window.status.memory_timer.timeout.emit()
        # torch's figures are read on the engine thread, and shown once they come back
        qtbot.waitUntil(lambda: "cuda:0" in window.status.memory_label.text(), timeout=20_000)
    polled.assert_called_once_with("cuda:0")
    assert window.status.memory_label.text().endswith(
        "\u00b7 cuda:0: 1.5 GB allocated, 4.0 GB reserved"
    )
    note = "an NVIDIA GPU is present but this is a CPU build of torch: run `make run TORCH=cu126`"
    window.state.info = dataclasses.replace(window.state.info, gpu_note=note)
    assert note in window.about_text()


def test_a_failed_move_to_the_gpu_is_one_line_and_the_model_stays(qtbot, window):
    """ "To GPU" on a machine whose torch cannot reach the GPU (here: a CPU build told to use
    cuda:0): the engine's one line in the status bar, the model still on the CPU and usable."""
    start_and_wait(qtbot, window)
    entry = window.state.current
    from core import loaded_model

    real = loaded_model.resolve_device

    def resolve(name):  # "cuda" exists (as the window believes); loads stay on the CPU
        return torch.device("cuda", 0) if name == "cuda" else real(name)

    with (
        mock.patch.object(loaded_model, "resolve_device", side_effect=resolve),
        qtbot.waitSignal(
            window.state.reported,
            timeout=20_000,
            check_params_cb=lambda message: message.startswith("could not move"),
        ) as blocker,
    ):
        window.state.move(entry.key, "cuda")
    (message,) = blocker.args
    assert message.endswith("it stays on cpu") and "\n" not in message
    assert window.status.message.text() == message
    assert entry.loaded.device == torch.device("cpu") and entry.device == "cpu"
    assert {p.device.type for p in entry.loaded.model.parameters()} == {"cpu"}
