"""The trainer's parts: the one pretraining loss and its three callers, the listeners that
write a run folder, and the settings (frozen, checked once)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from core.cli import main
from core.cost.measure import SyntheticBatch, training_loss
from core.errors import InputError
from core.training import (
    Losses,
    TrainConfig,
    Trainer,
    evaluate,
    prepare_training,
    pretraining_loss,
)
from core.training import run_checkpoints as ckpt
from core.training.config import TrainConfig as ConfigClass
from core.training.setup import build_pretraining_model, prepare_data
from tests.core.training_text import tiny_train_config, word_tokenizer, write_train_and_heldout

STILL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout_prob": 0.0,
}


def tiny(arch: str = "bert", **changes) -> TrainConfig:
    overrides = dict(STILL, **({"embedding_size": 16} if arch == "albert" else {}))
    return tiny_train_config(
        **{"arch": arch, "preset": f"{arch}-tiny", "steps": 4, "config_overrides": overrides}
        | changes
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_train_and_heldout(tmp_path_factory.mktemp("parts"), seed=1)


@pytest.fixture(scope="module")
def tokenizers():
    return {arch: word_tokenizer(arch) for arch in ("bert", "albert")}


def make(corpus, tokenizers, config, out=None) -> Trainer:
    return prepare_training(
        config,
        [corpus / "train.txt"],
        [corpus / "heldout.txt"],
        tokenizer=tokenizers[config.arch],
        out_dir=out,
    )


# -- the loss -----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_pretraining_loss_is_the_hand_computed_cross_entropy(corpus, tokenizers, arch):
    trainer = make(corpus, tokenizers, tiny(arch))
    (batch,), _ = next(trainer._batches)
    model = trainer.model
    losses = pretraining_loss(model, batch)
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        token_type_ids=batch.token_type_ids,
        mlm_positions=batch.mlm_positions,
    )
    sentence = out.nsp_logits if arch == "bert" else out.sop_logits
    mlm = F.cross_entropy(out.mlm_logits, batch.mlm_labels)
    sent = F.cross_entropy(sentence, batch.sentence_labels)
    torch.testing.assert_close(losses.loss, mlm + sent, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(losses.mlm_sum, mlm * batch.n_masked, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(losses.sentence_sum, sent * batch.size, rtol=1e-6, atol=1e-5)
    assert losses.mlm_logits.shape == (batch.n_masked, model.config.vocab_size)
    # Global counts (a step's masked positions and sequences over micro-batches and ranks)
    # replace the batch's own: the sums divided by them, nothing else.
    scaled = pretraining_loss(model, batch, mlm_count=3 * batch.n_masked, sentence_count=5)
    expected = losses.mlm_sum / (3 * batch.n_masked) + losses.sentence_sum / 5
    torch.testing.assert_close(scaled.loss, expected, rtol=0, atol=0)


def test_trainer_evaluation_and_measure_report_the_same_loss(corpus, tokenizers):
    trainer = make(corpus, tokenizers, tiny("bert"))
    (batch,), _ = next(trainer._batches)
    expected = pretraining_loss(trainer.model, batch)
    mlm = expected.mlm_sum.item() / batch.n_masked
    nsp = expected.sentence_sum.item() / batch.size
    # measure.training_loss: the cost module's training step, on the same inputs.
    synthetic = SyntheticBatch(
        batch.input_ids,
        batch.token_type_ids,
        batch.mlm_positions,
        batch.mlm_labels,
        batch.sentence_labels,
        batch.attention_mask,
    )
    _, measured = training_loss(trainer.model, synthetic)
    assert measured.item() == pytest.approx(mlm + nsp, rel=1e-6)
    # evaluate(): the held-out scores of the same batch (no dropout: eval == train mode).
    metrics = evaluate(trainer.model, [batch], trainer.device, task="nsp")
    assert metrics.mlm_loss == pytest.approx(mlm, rel=1e-6)
    assert metrics.sentence_loss == pytest.approx(nsp, rel=1e-6)
    # The trainer's step reports the loss of the weights before its update.
    stats = trainer.train_step([batch])
    assert stats.mlm_loss == pytest.approx(mlm, rel=1e-6)
    assert stats.sentence_loss == pytest.approx(nsp, rel=1e-6)
    assert stats.loss == pytest.approx(mlm + nsp, rel=1e-6)


def test_trainer_takes_any_model_and_loss_function(corpus, tokenizers):
    """The Trainer only steps: a model built elsewhere and a wrapped loss function."""
    config = tiny("bert", steps=2)
    data = prepare_data(
        config, [corpus / "train.txt"], [corpus / "heldout.txt"], tokenizer=tokenizers["bert"]
    )
    model = build_pretraining_model(config, config.model_config(data.tokenizer))
    calls: list[tuple[int | None, int | None]] = []

    def loss_fn(model, batch, precision, mlm_count=None, sentence_count=None) -> Losses:
        calls.append((mlm_count, sentence_count))
        return pretraining_loss(model, batch, precision, mlm_count, sentence_count)

    trainer = Trainer(model, data.train, config, loss_fn)
    assert trainer.model is model
    result = trainer.run()
    assert result.steps == 2 and len(calls) == 2  # one micro-batch per step
    assert all(n_seq == config.batch_size and n_masked > 0 for n_masked, n_seq in calls)
    assert result.checkpoint is None and result.final_model is None  # no listener, no files


# -- listeners ----------------------------------------------------------------------------------
def test_a_listener_sees_what_the_log_and_the_folders_hold(corpus, tokenizers, tmp_path):
    trainer = make(corpus, tokenizers, tiny("albert", save_every=2, eval_every=2), tmp_path)
    got = []
    trainer.add_listener(got.append)
    result = trainer.run()
    kinds = [e.kind for e in got]
    assert kinds == ["step", "step", "eval", "checkpoint", "step", "step", "eval", "done"]
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log == [e.to_dict() for e in got]  # the same numbers, field for field
    saved = got[kinds.index("checkpoint")]
    assert saved.checkpoint == str(tmp_path / ckpt.checkpoint_name(2))
    state = ckpt.load_trainer_state(tmp_path / ckpt.checkpoint_name(2))
    assert state["step"] == 2 and state["tokens_seen"] == saved.tokens_seen
    assert got[-1].checkpoint == str(tmp_path / "final")
    assert result.final_model == tmp_path / "final"
    assert result.checkpoint == tmp_path / ckpt.checkpoint_name(4)
    summary = json.loads((tmp_path / "final" / ckpt.SUMMARY_FILE).read_text())
    assert summary["tokens_seen"] == got[-1].tokens_seen == trainer.tokens_seen
    assert summary["eval"] == got[-1].metrics.to_dict()
    steps = [e for e in got if e.kind == "step"]
    assert [e.tokens_seen for e in steps] == sorted({e.tokens_seen for e in steps})


def test_events_pulled_without_run_still_reach_the_listeners(corpus, tokenizers, tmp_path):
    """The window's worker drives events(); checkpoints and the log are written all the same."""
    trainer = make(corpus, tokenizers, tiny("bert", steps=2, save_every=1), tmp_path)
    pulled = list(trainer.events())
    assert [e.kind for e in pulled] == ["step", "checkpoint", "step", "eval", "done"]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        ckpt.checkpoint_name(1),
        ckpt.checkpoint_name(2),
    ]
    log = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in log] == [e.to_dict() for e in pulled]


def test_a_listener_can_complete_an_event_for_those_after_it(corpus, tokenizers):
    trainer = make(corpus, tokenizers, tiny("bert", steps=1, warmup=0))
    seen = []
    trainer.add_listener(lambda ev: dataclasses.replace(ev, message=f"step {ev.step} noted"))
    trainer.add_listener(seen.append)
    pulled = list(trainer.events())
    assert [e.message for e in seen] == ["step 1 noted", "step 1 noted", "step 1 noted"]
    assert pulled == seen


# -- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"batch_size": -1}, "batch size must be a positive integer"),
        ({"lr": float("nan")}, "learning rate must be > 0"),
        ({"precision": "fp8"}, "unknown precision 'fp8'"),
        ({"save_dtype": "int8"}, "unknown save dtype 'int8'"),
        ({"preset": "albert-tiny"}, "preset 'albert-tiny' belongs to albert, not bert"),
    ],
)
def test_a_bad_setting_fails_where_the_config_is_made(changes, message):
    with pytest.raises(InputError, match=message):
        tiny("bert", **changes)


def test_config_is_frozen_and_derived_copies_are_checked_again():
    config = tiny("bert")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 10
    longer = dataclasses.replace(config, steps=10)
    assert (longer.steps, config.steps) == (10, 4) and longer.warmup_steps == 1
    with pytest.raises(InputError, match="warm-up must be in"):
        dataclasses.replace(config, steps=1)  # warm-up 1 no longer fits
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.adam_betas == (0.9, 0.999) and isinstance(config.adam_betas, tuple)


def test_the_cli_checks_the_settings_once(corpus, tmp_path, monkeypatch):
    calls = []
    original = ConfigClass._validate

    def counted(self):
        calls.append(self.steps)
        original(self)

    monkeypatch.setattr(ConfigClass, "_validate", counted)
    tokenizer = word_tokenizer("bert")
    tokenizer.save(tmp_path)
    args = [
        "train",
        "--arch",
        "bert",
        "--preset",
        "bert-tiny",
        "--corpus",
        str(corpus / "train.txt"),
        "--eval-corpus",
        str(corpus / "heldout.txt"),
        "--tokenizer",
        str(tmp_path / "tokenizer.json"),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "1",
        "--warmup",
        "0",
        "--seq-len",
        "32",
        "--batch-size",
        "2",
        "--max-positions",
        "32",
        "--device",
        "cpu",
        "--eval-examples",
        "4",
        "--quiet",
    ]
    assert main(args) == 0
    assert calls == [1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_kernel_choice_keeps_the_result(dtype):
    """bf16 on the CPU takes SDPA's math kernel (faster there); the outputs and gradients
    match the flash kernel's within the dtype's rounding, float32 is SDPA's default exactly."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from core.blocks import attention

    torch.manual_seed(0)
    base = [torch.randn(2, 4, 16, 8) for _ in range(3)]
    mask = torch.zeros(2, 1, 1, 16, dtype=dtype)
    mask[1, ..., 12:] = torch.finfo(dtype).min  # the second sequence is padded
    ours = [t.to(dtype).requires_grad_() for t in base]
    flash = [t.to(dtype).requires_grad_() for t in base]
    out = attention(*ours, mask, 0.0)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        ref = torch.nn.functional.scaled_dot_product_attention(*flash, attn_mask=mask)
    out.float().square().sum().backward()
    ref.float().square().sum().backward()
    tol = {"rtol": 0, "atol": 0} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    if dtype == torch.float32:
        default = torch.nn.functional.scaled_dot_product_attention(*base, attn_mask=mask)
        torch.testing.assert_close(out.detach(), default, **tol)
    else:
        torch.testing.assert_close(out.float(), ref.float(), **tol)
        for a, b in zip(ours, flash, strict=True):
            torch.testing.assert_close(a.grad.float(), b.grad.float(), **tol)
    assert out.dtype == dtype
