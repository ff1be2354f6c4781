"""The trainer: learning, exact resume, accumulation, events, cancel, NaN/OOM handling,
checkpoints, optimizers and schedule. Tiny models on a toy corpus, CPU, a few seconds."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from core.config import Heads
from core.errors import CheckpointError, InputError, TrainingError
from core.loaded_model import load_model
from core.precision import resolve_precision
from core.training import (
    Lamb,
    TrainConfig,
    build_optimizer,
    prepare_data,
    prepare_training,
    warmup_linear,
)
from core.training import run_checkpoints as ckpt
from tests.core.training_text import word_tokenizer, write_corpus

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def tiny(arch: str = "bert", **changes) -> TrainConfig:
    overrides = dict(TINY)
    if arch == "albert":
        overrides["embedding_size"] = 16
    overrides.update(changes.pop("config_overrides", {}))
    base = {
        "arch": arch,
        "preset": f"{arch}-tiny",
        "steps": 6,
        "batch_size": 4,
        "seq_len": 32,
        "lr": 2e-3,
        "warmup": 1,
        "device": "cpu",
        "eval_examples": 16,
        "config_overrides": overrides,
    }
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    write_corpus(folder / "train.txt", n_docs=16, seed=1)
    write_corpus(folder / "heldout.txt", n_docs=10, seed=2)
    return folder


@pytest.fixture(scope="module")
def tokenizers():
    # Word-level vocabularies: trained ones differ from process to process (the tokenizers
    # library breaks ties in hash order), which would make these tests' data vary by run.
    # The CLI tests train real tokenizers.
    return {arch: word_tokenizer(arch) for arch in ("bert", "albert")}


def make_trainer(corpus, tokenizers, config, out=None, resume=None, eval_corpus=True):
    return prepare_training(
        config,
        [corpus / "train.txt"],
        [corpus / "heldout.txt"] if eval_corpus else None,
        tokenizer=tokenizers[config.arch],
        out_dir=out,
        resume=resume,
    )


def step_losses(trainer) -> list[dict]:
    return [ev.losses for ev in trainer.events() if ev.kind == "step"]


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- learning -----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("arch", "optimizer"), [("bert", "adamw"), ("albert", "lamb")])
def test_model_learns_context_beyond_word_frequencies(corpus, tokenizers, arch, optimizer):
    """On the toy grammar the held-out MLM loss falls from chance (ln V) to below the
    unigram entropy of the masked words: the model uses the context, not just frequencies."""
    lr = 5e-3 if optimizer == "adamw" else 2e-2  # LAMB steps are lr * ||w|| per tensor
    config = tiny(
        arch, steps=300, batch_size=8, lr=lr, warmup=10, optimizer=optimizer, eval_examples=None
    )
    tokenizer = tokenizers[arch]
    trainer = make_trainer(corpus, tokenizers, config)
    labels = np.concatenate(
        [b.mlm_labels.numpy() for b in trainer.eval_data.eval_batches(8, seed=config.seed + 1234)]
    )
    freq = np.bincount(labels)[np.bincount(labels) > 0] / len(labels)
    unigram_entropy = float(-(freq * np.log(freq)).sum())
    before = trainer.evaluate()
    losses = step_losses(trainer)
    after = trainer.evaluate()
    assert before.mlm_loss == pytest.approx(math.log(tokenizer.vocab_size), rel=0.1)
    assert after.mlm_loss < unigram_entropy - 0.15 < before.mlm_loss - 0.5
    assert after.mlm_accuracy > before.mlm_accuracy + 0.2
    assert after.perplexity == pytest.approx(math.exp(after.mlm_loss))
    assert after.sentence_task == ("nsp" if arch == "bert" else "sop")
    assert after.n_masked > 50
    assert set(losses[0]) == {"mlm", after.sentence_task, "total"}
    assert losses[0]["total"] == pytest.approx(losses[0]["mlm"] + losses[0][after.sentence_task])


# -- resume -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_resume_after_a_crash_is_exact(corpus, tokenizers, tmp_path, arch):
    """2n steps straight == n steps, a crash, a restart from the checkpoint, n more steps."""
    dropout = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
    config = tiny(arch, steps=6, save_every=3, config_overrides=dropout)
    straight = make_trainer(corpus, tokenizers, config, tmp_path / "a")
    expected = step_losses(straight)
    interrupted = make_trainer(corpus, tokenizers, config, tmp_path / "b")
    first = []
    for ev in interrupted.events():
        if ev.kind == "step":
            first.append(ev.losses)
        if ev.step == 4:  # crash during step 5's preparation: checkpoint-3 is the last one
            break
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b")] == ["checkpoint-0000003"]
    resumed = make_trainer(corpus, tokenizers, config, tmp_path / "b", resume=True)
    assert resumed.step == 3
    rest = step_losses(resumed)
    assert first[:3] + rest == expected  # bit-identical floats
    final_a, final_b = weights(straight.model), weights(resumed.model)
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    # The log keeps one line per step, the crashed run's step 4 replaced by the resumed one.
    log = [
        json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    ]
    assert [e["step"] for e in log if e["kind"] == "step"] == [1, 2, 3, 4, 5, 6]
    assert [e["losses"] for e in log if e["kind"] == "step"] == expected


def test_cancel_saves_a_checkpoint_that_resumes_exactly(corpus, tokenizers, tmp_path):
    config = tiny("bert", steps=5)
    expected = step_losses(make_trainer(corpus, tokenizers, config))
    trainer = make_trainer(corpus, tokenizers, config, tmp_path)
    seen = []

    def stop_at_two(ev):
        seen.append(ev.kind)
        if ev.kind == "step" and ev.step == 2:
            trainer.cancel()

    trainer.add_listener(stop_at_two)
    result = trainer.run()
    assert result.cancelled and result.steps == 2 and seen[-1] == "cancelled"
    assert result.checkpoint == tmp_path / "checkpoint-0000002"
    assert not (tmp_path / "final").exists()
    resumed = make_trainer(corpus, tokenizers, config, tmp_path, resume=True)
    assert [e.losses for e in resumed.events() if e.kind == "step"] == expected[2:]


def test_gradient_accumulation_equals_a_larger_batch(corpus, tokenizers):
    still = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    one = make_trainer(
        corpus, tokenizers, tiny("bert", steps=3, batch_size=8, config_overrides=still)
    )
    two = make_trainer(
        corpus,
        tokenizers,
        tiny("bert", steps=3, batch_size=4, grad_accum=2, config_overrides=still),
    )
    a, b = step_losses(one), step_losses(two)
    for x, y in zip(a, b, strict=True):
        assert x["mlm"] == pytest.approx(y["mlm"], rel=1e-5)
        assert x["nsp"] == pytest.approx(y["nsp"], rel=1e-5)
    wa, wb = weights(one.model), weights(two.model)
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5


# -- events and control -------------------------------------------------------------------------
def test_events_reach_every_listener_with_progress_fields(corpus, tokenizers, tmp_path):
    config = tiny("albert", steps=4, eval_every=2, warmup=2, lr=1e-3)
    trainer = make_trainer(corpus, tokenizers, config, tmp_path)
    got_a, got_b = [], []
    trainer.add_listener(got_a.append)
    trainer.add_listener(got_b.append)
    result = trainer.run()
    assert got_a == got_b
    assert [e.kind for e in got_a] == ["step", "step", "eval", "step", "step", "eval", "done"]
    steps = [e for e in got_a if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    # Warm-up over 2 steps then linear decay to 0 after step 4: 0.5, 1, 2/3, 1/3 of the peak.
    assert [e.lr for e in steps] == pytest.approx([5e-4, 1e-3, 2e-3 / 3, 1e-3 / 3])
    assert all(e.tokens_per_s > 0 and e.elapsed_s > 0 and e.total_steps == 4 for e in steps)
    assert steps[-1].eta_s == 0 and steps[0].eta_s > 0
    assert all(e.grad_norm is not None and e.grad_norm > 0 for e in steps)
    assert all(e.memory_bytes is None or e.memory_bytes > 0 for e in steps)
    done = got_a[-1]
    assert done.metrics is not None and done.metrics.sentence_task == "sop"
    assert result.final_model == tmp_path / "final" and result.steps == 4
    assert result.metrics == done.metrics and not result.cancelled
    summary = json.loads((tmp_path / "final" / ckpt.SUMMARY_FILE).read_text())
    assert summary["eval"]["mlm_accuracy"] == pytest.approx(done.metrics.mlm_accuracy)
    assert summary["steps"] == 4 and summary["arch"] == "albert"


def test_final_model_loads_in_core_and_transformers(corpus, tokenizers, tmp_path):
    trainer = make_trainer(corpus, tokenizers, tiny("bert", steps=2), tmp_path)
    trainer.run()
    loaded = load_model(tmp_path / "final")
    assert loaded.heads == Heads.pretraining("bert")
    assert loaded.tokenizer.vocab_size == tokenizers["bert"].vocab_size
    enc = loaded.encode("the old captain [MASK] the whale .")
    assert loaded.tokenizer.mask_token in enc.tokens
    ours = loaded.run(enc, output_attentions=False)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name])
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertForPreTraining.from_pretrained(tmp_path / "final").eval()
    with torch.no_grad():
        theirs = ref(**enc.tensors())
    torch.testing.assert_close(theirs.prediction_logits, ours.mlm_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        theirs.seq_relationship_logits, ours.nsp_logits, atol=1e-5, rtol=1e-4
    )


def test_init_from_continues_a_model_at_another_sequence_length(corpus, tokenizers, tmp_path):
    """A second phase (BERT's recipe: short sequences first, then long ones) starts from the
    first phase's final weights and tokenizer, with a fresh optimizer, schedule and data."""
    first = make_trainer(corpus, tokenizers, tiny("bert", steps=3, seq_len=16), tmp_path / "a")
    first.run()
    final = tmp_path / "a" / "final"
    config = tiny("bert", steps=2, seq_len=32, init_from=str(final))
    second = prepare_training(
        config, [corpus / "train.txt"], [corpus / "heldout.txt"], out_dir=tmp_path / "b"
    )
    assert second.step == 0 and second.scheduler.last_epoch == 0
    assert second.model.config.vocab_size == tokenizers["bert"].vocab_size
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    start = weights(second.model)
    assert second.run().steps == 2
    exported = load_model(tmp_path / "b" / "final")
    # The first phase's tokenizer carried over (the embeddings are indexed by it).
    assert exported.tokenizer.backend.to_str() == tokenizers["bert"].backend.to_str()
    moved = exported.model.state_dict()["embeddings.word_embeddings.weight"]
    assert not torch.equal(moved, start["embeddings.word_embeddings.weight"])


@pytest.mark.parametrize(
    ("arch", "tokenizer", "message"),
    [
        ("albert", False, "is a bert model, not albert"),
        ("bert", True, "uses that model's own tokenizer; drop --tokenizer"),
    ],
)
def test_init_from_refuses_a_mismatch_before_any_work(
    corpus, tokenizers, tmp_path, arch, tokenizer, message
):
    folder = tmp_path / "model"
    trainer = make_trainer(corpus, tokenizers, tiny("bert", steps=2), tmp_path / "run")
    trainer.run()
    (tmp_path / "run" / "final").rename(folder)
    config = tiny(arch, init_from=str(folder))
    with pytest.raises(InputError, match=message):
        prepare_training(
            config,
            [corpus / "train.txt"],
            tokenizer=tokenizers[arch] if tokenizer else None,
            out_dir=tmp_path / "out",
        )
    with pytest.raises(InputError, match=r"no config\.json there"):
        prepare_training(tiny("bert", init_from=str(tmp_path)), [corpus / "train.txt"])
    assert not (tmp_path / "out").exists()


def test_float16_export_halves_the_file_and_loads_as_float32(corpus, tokenizers, tmp_path):
    trainer = make_trainer(
        corpus, tokenizers, tiny("albert", steps=1, warmup=0, save_dtype="float16"), tmp_path
    )
    trainer.run()
    full = (tmp_path / "checkpoint-0000001" / "model.safetensors").stat().st_size
    half = (tmp_path / "final" / "model.safetensors").stat().st_size
    assert half < 0.55 * full
    loaded = load_model(tmp_path / "final")
    for name, tensor in trainer.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor.half().float())


# -- failures -----------------------------------------------------------------------------------
def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(
    corpus, tokenizers, tmp_path
):
    trainer = make_trainer(corpus, tokenizers, tiny("bert", steps=6, save_every=2), tmp_path)
    good = None

    def poison_after_save():
        nonlocal good
        for ev in trainer.events():
            if ev.kind == "checkpoint":
                good = weights(trainer.model)
                with torch.no_grad():
                    trainer.model.embeddings.LayerNorm.weight.fill_(float("nan"))

    with pytest.raises(TrainingError, match=r"loss became nan at step 3.*checkpoint-0000002"):
        poison_after_save()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-0000002"]
    kept = load_model(tmp_path / "checkpoint-0000002")
    assert all(torch.equal(kept.model.state_dict()[k], good[k]) for k in good)


def test_out_of_memory_suggests_smaller_batches(corpus, tokenizers, monkeypatch):
    trainer = make_trainer(corpus, tokenizers, tiny("bert"))

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer.model, "forward", oom)
    with pytest.raises(TrainingError, match=r"out of memory.*--batch-size.*--grad-accum"):
        next(trainer.events())


def test_a_failed_save_leaves_the_previous_checkpoint(corpus, tokenizers, tmp_path, monkeypatch):
    trainer = make_trainer(corpus, tokenizers, tiny("bert", steps=4, save_every=2), tmp_path)
    events = trainer.events()
    while next(events).kind != "checkpoint":
        pass
    before = (tmp_path / "checkpoint-0000002" / ckpt.STATE_FILE).read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(CheckpointError) as caught:
        for _ in events:
            pass
    assert str(caught.value) == (
        f"could not write {tmp_path / 'checkpoint-0000004'}: No space left on device; "
        "checkpoint-0000002 is intact (--resume continues from it)"
    )
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-0000002"]
    assert (tmp_path / "checkpoint-0000002" / ckpt.STATE_FILE).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cache", "checkpoint-0000002", "train_log.jsonl"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"preset": "bert-huge"}, "unknown preset 'bert-huge'"),
        ({"preset": "albert-tiny"}, "belongs to albert, not bert"),
        ({"seq_len": 1024}, "longer than the model's 512 positions"),
        ({"seq_len": 64, "max_positions": 32}, "longer than the model's 32 positions"),
        ({"warmup": 6}, "warm-up must be in"),
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"lr": 0.0}, "learning rate must be > 0"),
        ({"precision": "int8"}, "unknown precision"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path, changes, message):
    missing = tmp_path / "no-such-corpus.txt"  # never reached: settings are checked first
    with pytest.raises(InputError, match=message):
        prepare_data(tiny("bert", **changes), [missing], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_default_preset_follows_the_family():
    """TrainConfig(arch="albert") is an albert-mini run, not a complaint about a bert-mini
    preset nobody named; an explicit preset of the other family is still refused."""
    assert TrainConfig(arch="albert").preset == "albert-mini"
    assert TrainConfig(arch="bert").preset == "bert-mini"
    assert TrainConfig().preset == "bert-mini"
    saved = TrainConfig(arch="albert").to_dict()
    assert TrainConfig.from_dict(saved).preset == "albert-mini"
    with pytest.raises(InputError, match="preset 'bert-mini' belongs to bert, not albert"):
        TrainConfig(arch="albert", preset="bert-mini")
    with pytest.raises(InputError, match="preset 'albert-base' belongs to albert, not bert"):
        TrainConfig(arch="bert", preset="albert-base")


def test_precision_choice():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(InputError):
        resolve_precision("fp8", cpu)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_when_asked(corpus, tokenizers, tmp_path, precision):
    config = tiny("bert", steps=2, precision=precision)
    trainer = make_trainer(corpus, tokenizers, config, tmp_path)
    assert trainer.precision == precision
    assert trainer.scaler.is_enabled() == (precision == "fp16")  # fp16 needs loss scaling
    losses = step_losses(trainer)
    assert all(math.isfinite(x["total"]) for x in losses)
    assert next(trainer.model.parameters()).dtype == torch.float32  # master weights stay fp32
    state = ckpt.load_trainer_state(tmp_path / "checkpoint-0000002")
    assert bool(state["scaler"]) == (precision == "fp16")


# -- optimizers and schedule --------------------------------------------------------------------
def test_warmup_then_linear_decay():
    values = [warmup_linear(s, 4, 12) for s in range(12)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4:] == pytest.approx([(12 - s) / 9 for s in range(4, 12)])
    assert warmup_linear(0, 0, 10) == 1.0


def test_lamb_matches_the_paper_update():
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    b0 = torch.randn(3)
    grads = [(torch.randn(5, 3), torch.randn(3)) for _ in range(3)]
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = Lamb(
        [
            {"params": [w], "weight_decay": 0.1, "adapt": True},
            {"params": [b], "weight_decay": 0.0, "adapt": False},
        ],
        lr=0.01,
        eps=1e-6,
    )
    ref_w, ref_b = w0.double().clone(), b0.double().clone()
    m = [torch.zeros_like(ref_w), torch.zeros_like(ref_b)]
    v = [torch.zeros_like(ref_w), torch.zeros_like(ref_b)]
    for t, (gw, gb) in enumerate(grads, start=1):
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        for i, (p, g, decay, adapt) in enumerate(
            [(ref_w, gw.double(), 0.1, True), (ref_b, gb.double(), 0.0, False)]
        ):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            r = (m[i] / (1 - 0.9**t)) / ((v[i] / (1 - 0.999**t)).sqrt() + 1e-6) + decay * p
            ratio = (p.norm() / r.norm()).item() if adapt else 1.0
            p -= 0.01 * ratio * r
    torch.testing.assert_close(w.detach().double(), ref_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b.detach().double(), ref_b, atol=1e-6, rtol=1e-5)
    # The trust ratio makes every adapted step exactly lr * ||w|| long, whatever the gradient.
    for scale in (1e-3, 1e3):
        p = w0.clone().requires_grad_()
        one = Lamb([p], lr=0.01, weight_decay=0.0)
        p.grad = grads[0][0] * scale
        one.step()
        assert (p.detach() - w0).norm().item() == pytest.approx(0.01 * w0.norm().item(), rel=1e-5)


def test_no_weight_decay_on_biases_and_layer_norms(tokenizers):
    config = tiny("bert")
    from core.loaded_model import build_model

    model = build_model(config.model_config(tokenizers["bert"]))
    opt = build_optimizer(model, "adamw", 1e-3, weight_decay=0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in opt.param_groups[0]["params"]}
    plain = {names[id(p)] for p in opt.param_groups[1]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.param_groups[1]["weight_decay"] == 0
    assert all("bias" in n or "LayerNorm" in n for n in plain)
    assert "embeddings.word_embeddings.weight" in decayed
    assert "encoder.layer.0.attention.qkv.weight" in decayed
    assert len(decayed) + len(plain) == len(list(model.parameters()))
    lamb = build_optimizer(model, "lamb", 1e-3)
    assert [g["adapt"] for g in lamb.param_groups] == [True, False]


def test_resume_refuses_a_run_that_already_has_checkpoints(corpus, tokenizers, tmp_path):
    make_trainer(corpus, tokenizers, tiny("bert", steps=1, warmup=0), tmp_path).run()
    with pytest.raises(InputError, match="already holds checkpoints; pass --resume"):
        make_trainer(corpus, tokenizers, tiny("bert", steps=1, warmup=0), tmp_path)
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        make_trainer(
            corpus, tokenizers, tiny("bert", steps=1, warmup=0), tmp_path / "empty", resume=True
        )


def test_trainer_without_eval_data_or_output(corpus, tokenizers):
    config = tiny("bert", steps=2, heldout_every=0)
    trainer = make_trainer(corpus, tokenizers, config, eval_corpus=False)
    assert trainer.eval_data is None
    result = trainer.run()
    assert result.metrics is None and result.final_model is None and result.steps == 2
    assert result.checkpoint is None and trainer.last_checkpoint is None  # nothing written
    assert result.tokens_seen == trainer.tokens_seen > 0


# -- parity with transformers -------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_training_steps_match_transformers_pretraining_model(corpus, tokenizers, tmp_path, arch):
    """Three optimizer steps of our trainer == the same steps of transformers'
    *ForPreTraining (full-vocabulary decoder, labels -100 elsewhere), AdamW, clipping and
    schedule included: same losses and same weights afterwards."""
    transformers = pytest.importorskip("transformers")
    no_dropout = {
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "classifier_dropout_prob": 0.0,
    }
    config = tiny(
        arch,
        steps=3,
        batch_size=6,
        lr=3e-3,
        warmup=0,
        max_grad_norm=0.5,
        config_overrides=no_dropout,
    )
    trainer = make_trainer(corpus, tokenizers, config)
    ckpt.write_model_folder(
        tmp_path / "init", trainer.model, trainer.model.config, tokenizers[arch]
    )
    cls = transformers.BertForPreTraining if arch == "bert" else transformers.AlbertForPreTraining
    ref = cls.from_pretrained(tmp_path / "init", attn_implementation="eager").train()
    opt = build_optimizer(
        ref, "adamw", config.lr, config.weight_decay, config.adam_betas, config.adam_eps
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_linear(s, 0, 3))
    ours, theirs = [], []
    for _ in range(3):
        (batch,), _ = next(trainer._batches)
        stats = trainer.train_step([batch])
        ours.append((stats.mlm_loss, stats.sentence_loss))
        labels = torch.full_like(batch.input_ids, -100)
        labels[batch.mlm_positions] = batch.mlm_labels
        sentence = "next_sentence_label" if arch == "bert" else "sentence_order_label"
        out = ref(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
            labels=labels,
            **{sentence: batch.sentence_labels},
        )
        logits = out.prediction_logits[batch.mlm_positions]
        mlm = torch.nn.functional.cross_entropy(logits, batch.mlm_labels).item()
        theirs.append((mlm, out.loss.item() - mlm))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), config.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad()
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)
    from core.hf_checkpoint import engine_to_hf

    expected = engine_to_hf(trainer.model.state_dict(), trainer.model.config)
    actual = ref.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, atol=2e-6, rtol=1e-4, msg=key)
