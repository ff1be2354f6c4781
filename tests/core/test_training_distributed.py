"""Two CPU processes under torchrun (gloo, DistributedDataParallel) train exactly like one
process with the same global batch: same losses, same weights; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from core.cli import main
from core.loaded_model import load_model
from tests.core.training_text import word_tokenizer, write_corpus


def _step_losses(out) -> list[dict]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [e["losses"] for e in map(json.loads, lines) if e["kind"] == "step"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_two_gloo_processes_match_one_process(tmp_path, arch):
    write_corpus(tmp_path / "train.txt", n_docs=12, seed=5)
    write_corpus(tmp_path / "heldout.txt", n_docs=3, seed=6)
    word_tokenizer(arch).save(tmp_path)  # fixed vocabulary: the same data every run
    common = [
        "train",
        "--arch",
        arch,
        "--preset",
        f"{arch}-tiny",
        "--corpus",
        str(tmp_path / "train.txt"),
        "--eval-corpus",
        str(tmp_path / "heldout.txt"),
        "--tokenizer",
        str(tmp_path / "tokenizer.json"),
        "--steps",
        "4",
        "--seq-len",
        "32",
        "--max-positions",
        "32",
        "--lr",
        "3e-3",
        "--warmup",
        "1",
        "--dropout",
        "0",
        "--device",
        "cpu",
        "--eval-examples",
        "12",
        "--save-every",
        "2",
        "--quiet",
    ]
    assert main([*common, "--out", str(tmp_path / "one"), "--batch-size", "8"]) == 0
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
            "core",
            *common,
            "--out",
            str(tmp_path / "two"),
            "--batch-size",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("finished after 4 steps") == 1  # only rank 0 prints
    one, two = _step_losses(tmp_path / "one"), _step_losses(tmp_path / "two")
    assert len(one) == len(two) == 4  # one log, written once
    for a, b in zip(one, two, strict=True):
        assert a == pytest.approx(b, rel=1e-4)
    assert one[-1]["mlm"] < one[0]["mlm"]
    m1 = load_model(tmp_path / "one" / "final").model.state_dict()
    m2 = load_model(tmp_path / "two" / "final").model.state_dict()
    for key in m1:
        torch.testing.assert_close(m2[key], m1[key], atol=2e-5, rtol=1e-3)
    summary = json.loads((tmp_path / "two" / "final" / "training_summary.json").read_text())
    assert summary["world_size"] == 2
    one_eval = json.loads((tmp_path / "one" / "final" / "training_summary.json").read_text())
    assert summary["eval"]["n_masked"] == one_eval["eval"]["n_masked"]  # eval sharded, summed
    assert summary["eval"]["mlm_loss"] == pytest.approx(one_eval["eval"]["mlm_loss"], rel=1e-4)
    state = torch.load(
        tmp_path / "two" / "checkpoint-0000004" / "trainer_state.pt", weights_only=True
    )
    assert len(state["rng"]) == 2  # every rank's RNG, for an exact multi-process resume
