"""Pretraining data: corpus checks, tokenized corpus, NSP/SOP pairs, MLM and n-gram masking,
sharding and resumable positions."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import (
    DataConfig,
    DataPosition,
    PairExample,
    PretrainingData,
    TokenizedCorpus,
    check_corpus,
    truncate_pair,
)
from core.errors import InputError
from core.tokenizer_train import train_tokenizer
from tests.core.training_text import counting_tokenizer, write_corpus, write_counting_corpus


def _corpus(tmp_path, doc_sentences, name="c.txt", **build):
    n = write_counting_corpus(tmp_path / name, doc_sentences)
    tok = counting_tokenizer(n)
    return TokenizedCorpus.build([tmp_path / name], tok, **build), tok


@pytest.fixture
def counting(tmp_path):
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(3, 13, size=30)) for _ in range(8)]
    corpus, tok = _corpus(tmp_path, docs)
    return corpus, tok, docs


def _doc_of(corpus: TokenizedCorpus, token_id: int) -> int:
    pos = token_id - 5
    sent = np.searchsorted(corpus.sentence_offsets, pos, side="right") - 1
    return int(np.searchsorted(corpus.document_offsets, sent, side="right") - 1)


def _rows(batch) -> list[list[int]]:
    return [
        row[mask.bool()].tolist()
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    ]


# -- files ------------------------------------------------------------------------------------
def test_check_corpus_rejects_bad_files_with_clear_messages(tmp_path):
    with pytest.raises(InputError, match=r"corpus .*missing\.txt: no such file"):
        check_corpus([tmp_path / "missing.txt"])
    with pytest.raises(InputError, match="not a file"):
        check_corpus([tmp_path])
    (tmp_path / "blank.txt").write_text("  \n\n\t\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"blank\.txt: empty"):
        check_corpus([tmp_path / "blank.txt"])
    (tmp_path / "latin1.txt").write_bytes(b"hello\nworld \xff\xfe\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xff at offset 12, line 2\)"):
        check_corpus([tmp_path / "latin1.txt"])
    with pytest.raises(InputError, match="no corpus files"):
        check_corpus([])
    # A multi-byte character split across the 1 MiB read boundary is fine.
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * ((1 << 20) - 1) + "é\n".encode())
    assert check_corpus([big]) == [big]


def test_tokenized_corpus_boundaries_streaming_and_cache(tmp_path, counting):
    corpus, tok, docs = counting
    lengths = [n for doc in docs for n in doc]
    assert corpus.n_documents == 8 and corpus.meta["n_sentences"] == len(lengths)
    np.testing.assert_array_equal(
        corpus.sentence_offsets, np.concatenate([[0], np.cumsum(lengths)])
    )
    np.testing.assert_array_equal(corpus.document_offsets, 30 * np.arange(9))
    np.testing.assert_array_equal(corpus.tokens, np.arange(sum(lengths)) + 5)
    assert corpus.word_starts.all()
    # Streaming a few lines at a time gives the same arrays.
    small = TokenizedCorpus.build([tmp_path / "c.txt"], tok, batch_lines=7)
    for name in TokenizedCorpus.FILES:
        np.testing.assert_array_equal(getattr(small, name), getattr(corpus, name))
    # Cached: the second build reuses the folder.
    cache = tmp_path / "cache"
    first = TokenizedCorpus.build([tmp_path / "c.txt"], tok, cache_dir=cache)
    second = TokenizedCorpus.build([tmp_path / "c.txt"], tok, cache_dir=cache)
    assert first.folder == second.folder and len(list(cache.iterdir())) == 1
    np.testing.assert_array_equal(second.tokens, corpus.tokens)


def test_documents_are_blank_line_blocks_or_whole_files(tmp_path):
    tok = counting_tokenizer(20)
    (tmp_path / "a.txt").write_text("t0 t1\nt2\n   \nt3 t4\n\n\n\nt5\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("t6 t7\nt8\nt9", encoding="utf-8")  # no blank line: one doc
    corpus = TokenizedCorpus.build([tmp_path / "a.txt", tmp_path / "b.txt"], tok)
    assert corpus.n_documents == 4
    spans = [corpus.span(*corpus.sentences_of(d))[0].tolist() for d in range(4)]
    assert spans == [[5, 6, 7], [8, 9], [10], [11, 12, 13, 14]]


def test_word_starts_follow_wordpiece_and_unigram_words(tmp_path):
    path = write_corpus(tmp_path / "text.txt", n_docs=20)
    for model_type, is_start in (
        ("bert", lambda t: not t.startswith("##")),
        ("albert", lambda t: t.startswith("▁")),
    ):
        tok = train_tokenizer([path], model_type, vocab_size=60)
        corpus = TokenizedCorpus.build([path], tok)
        tokens = [tok.id_to_token(int(i)) for i in corpus.tokens]
        expected = np.array([is_start(t) for t in tokens])
        np.testing.assert_array_equal(corpus.word_starts, expected)
        assert not expected.all()  # the tiny vocabulary splits words into pieces


# -- pairs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["nsp", "sop"])
def test_pairs_are_real_continuations_or_labelled(counting, task):
    corpus, tok, _ = counting
    data = PretrainingData(corpus, tok, DataConfig(seq_len=40, task=task), seed=3)
    labels = []
    for epoch in range(20):
        for ex in data.examples(epoch):
            a, b = ex.a.astype(int), ex.b.astype(int)
            assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) <= 37
            np.testing.assert_array_equal(a, np.arange(a[0], a[0] + len(a)))  # contiguous text
            np.testing.assert_array_equal(b, np.arange(b[0], b[0] + len(b)))
            if ex.label == 0:
                assert b[0] == a[-1] + 1  # B is the text right after A
            elif task == "sop":
                assert a[0] == b[-1] + 1  # swapped: A is the text right after B
            else:
                assert _doc_of(corpus, b[0]) != _doc_of(corpus, a[-1])  # another document
                assert b[0] - 5 in corpus.sentence_offsets  # starting at a sentence
            labels.append(ex.label)
    assert len(labels) > 800
    assert abs(np.mean(labels) - 0.5) < 0.05


def test_short_sequences_ten_percent(tmp_path):
    corpus, tok = _corpus(tmp_path, [[1] * 10000, [1] * 10000])
    data = PretrainingData(corpus, tok, DataConfig(seq_len=64, task="sop"), seed=0)
    lengths = [len(ex.a) + len(ex.b) for epoch in range(3) for ex in data.examples(epoch)]
    assert len(lengths) > 900
    short = np.mean(np.array(lengths) < 61)
    assert abs(short - 0.1) < 0.03
    assert max(lengths) == 61


def test_nsp_needs_two_documents(tmp_path):
    corpus, tok = _corpus(tmp_path, [[5] * 10])
    with pytest.raises(InputError, match="at least 2 documents"):
        PretrainingData(corpus, tok, DataConfig(task="nsp"))
    PretrainingData(corpus, tok, DataConfig(task="sop"))  # SOP needs only one


def test_truncate_pair_matches_bert_loop():
    for la in range(0, 40, 3):
        for lb in range(0, 40, 4):
            for total in (5, 16, 37):
                a, b = la, lb
                while a + b > total:  # BERT: trim the longer one (B on ties)
                    if a > b:
                        a -= 1
                    else:
                        b -= 1
                assert truncate_pair(la, lb, total) == (a, b)


# -- masking ----------------------------------------------------------------------------------
def _random_examples(n, la, lb, vocab, word_start_prob=1.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        aw = rng.random(la) < word_start_prob
        bw = rng.random(lb) < word_start_prob
        aw[0] = bw[0] = True
        out.append(PairExample(rng.integers(5, vocab, la), rng.integers(5, vocab, lb), aw, bw, 0))
    return out


def test_mlm_masking_statistics_on_1e5_positions(counting):
    corpus, _, _ = counting
    tok = counting_tokenizer(3000)
    data = PretrainingData(corpus, tok, DataConfig(seq_len=128, task="sop"), seed=0)
    examples = _random_examples(810, 62, 62, 3005)
    n_positions = n_selected = n_mask = n_same = n_random = 0
    for i, ex in enumerate(examples):
        m = data.masker.mask(ex, 0, i)
        original = np.concatenate([[2], ex.a, [3], ex.b, [3]])
        n_positions += 124
        n_selected += len(m.positions)
        assert len(m.positions) == 19  # round(0.15 * 124), under the cap of 20
        assert not set(m.positions.tolist()) & {0, 63, 126}  # never [CLS]/[SEP]
        np.testing.assert_array_equal(m.labels, original[m.positions])
        untouched = np.ones(127, bool)
        untouched[m.positions] = False
        np.testing.assert_array_equal(m.input_ids[untouched], original[untouched])
        new = m.input_ids[m.positions]
        n_mask += int((new == 4).sum())
        n_same += int((new == m.labels).sum())
        replaced = new[(new != 4) & (new != m.labels)]
        assert (replaced >= 5).all()  # random tokens are never special tokens
        n_random += len(replaced)
    assert n_positions >= 100_000
    assert abs(n_selected / n_positions - 0.15) < 0.01
    assert abs(n_mask / n_selected - 0.8) < 0.01
    assert abs(n_random / n_selected - 0.1) < 0.01
    assert abs(n_same / n_selected - 0.1) < 0.01


def test_masks_are_deterministic_per_epoch_and_redrawn_each_epoch(counting):
    corpus, tok, _ = counting
    data = PretrainingData(corpus, tok, DataConfig(seq_len=64, task="nsp", max_predictions=5))
    examples = _random_examples(50, 30, 30, 200)
    same = differ = 0
    for i, ex in enumerate(examples):
        m0, again, m1 = (
            data.masker.mask(ex, 0, i),
            data.masker.mask(ex, 0, i),
            data.masker.mask(ex, 1, i),
        )
        np.testing.assert_array_equal(m0.input_ids, again.input_ids)
        assert len(m0.positions) == 5  # max_predictions caps round(0.15 * 60) = 9
        same += np.array_equal(m0.positions, m1.positions)
        differ += not np.array_equal(m0.positions, m1.positions)
    assert differ == 50 and same == 0


def test_albert_ngram_lengths_and_whole_words_on_1e5_positions(counting):
    corpus, _, _ = counting
    tok = counting_tokenizer(3000)
    config = DataConfig.for_model("albert", seq_len=512)
    assert config.max_ngram == 3 and config.whole_word and config.task == "sop"
    np.testing.assert_allclose(config.ngram_probs, [6 / 11, 3 / 11, 2 / 11])
    data = PretrainingData(corpus, tok, config, seed=0)
    examples = _random_examples(200, 254, 255, 3005, word_start_prob=0.6)
    spans: list[int] = []
    n_positions = n_selected = 0
    for i, ex in enumerate(examples):
        m = data.masker.mask(ex, 0, i, spans=spans)
        n_positions += 509
        n_selected += len(m.positions)
        starts = np.concatenate([[True], ex.a_words, [True], ex.b_words, [True]])
        word_id = np.cumsum(starts)
        masked = np.zeros(512, bool)
        masked[m.positions] = True
        for w in np.unique(word_id[masked]):
            assert masked[word_id == w].all()  # every piece of a masked word is masked
        assert not masked[[0, 255, 511]].any()
    assert n_positions >= 100_000
    assert abs(n_selected / n_positions - 0.15) < 0.01
    freq = np.bincount(spans, minlength=4)[1:] / len(spans)
    assert len(spans) > 5000
    np.testing.assert_allclose(freq, [6 / 11, 3 / 11, 2 / 11], atol=0.02)


# -- streams ----------------------------------------------------------------------------------
def test_ranks_and_accumulation_split_the_same_global_batch(counting):
    corpus, tok, _ = counting
    data = PretrainingData(corpus, tok, DataConfig(seq_len=48, task="nsp"), seed=1)
    single = data.step_batches(DataPosition(), batch_size=8)
    rank0 = data.step_batches(DataPosition(), batch_size=4, rank=0, world_size=2)
    rank1 = data.step_batches(DataPosition(), batch_size=4, rank=1, world_size=2)
    accum = data.step_batches(DataPosition(), batch_size=4, grad_accum=2)
    for _ in range(3):
        (full,), pos = next(single)
        (r0,), p0 = next(rank0)
        (r1,), p1 = next(rank1)
        (m0, m1), pa = next(accum)
        assert pos == p0 == p1 == pa
        assert _rows(r0) + _rows(r1) == _rows(full) == _rows(m0) + _rows(m1)
        assert r0.n_masked + r1.n_masked == full.n_masked
        labels = full.mlm_labels.tolist()
        assert r0.mlm_labels.tolist() + r1.mlm_labels.tolist() == labels
        orig = full.input_ids.clone()
        orig[full.mlm_positions] = full.mlm_labels
        assert (full.input_ids[~full.mlm_positions] == orig[~full.mlm_positions]).all()
        assert ((full.attention_mask == 0) == (full.input_ids == 0)).all()  # pad id 0


def test_stream_resumes_exactly_across_epochs(tmp_path):
    corpus, tok = _corpus(tmp_path, [[6] * 12, [7] * 10, [5] * 9])
    data = PretrainingData(corpus, tok, DataConfig(seq_len=32, task="sop"), seed=2)
    per_epoch = sum(1 for _ in data.examples(0))
    assert per_epoch < 12  # so five steps of 4 cross epochs
    it = data.step_batches(DataPosition(), batch_size=4)
    steps = [next(it) for _ in range(6)]
    assert steps[-1][1].epoch >= 1
    resumed = data.step_batches(steps[2][1], batch_size=4)
    for batches, position in steps[3:]:
        again, again_pos = next(resumed)
        assert again_pos == position
        assert _rows(again[0]) == _rows(batches[0])
        assert again[0].mlm_positions.equal(batches[0].mlm_positions)


def test_eval_batches_are_fixed_and_partitioned(counting):
    corpus, tok, _ = counting
    data = PretrainingData(corpus, tok, DataConfig(seq_len=48, task="sop"), seed=5)
    one = [r for b in data.eval_batches(8) for r in _rows(b)]
    assert one == [r for b in data.eval_batches(8) for r in _rows(b)]
    capped = [r for b in data.eval_batches(8, max_examples=10) for r in _rows(b)]
    assert capped == one[:10]
    halves = [
        [r for b in data.eval_batches(8, rank=k, world_size=2) for r in _rows(b)] for k in range(2)
    ]
    assert halves[0] == one[0::2] and halves[1] == one[1::2]


def test_labels_restore_the_original_text_in_row_major_order(tmp_path):
    """``mlm_labels`` follow the True cells of ``mlm_positions`` row by row, which is the
    order in which the model gathers the hidden states it decodes."""
    corpus, tok = _corpus(tmp_path, [[7] * 40, [6] * 40, [5] * 30])
    for task in ("nsp", "sop"):
        data = PretrainingData(corpus, tok, DataConfig(seq_len=48, task=task))
        (batch,), _ = next(data.step_batches(DataPosition(), 8))
        restored = batch.input_ids.clone()
        restored[batch.mlm_positions] = batch.mlm_labels
        for row, types, keep in zip(
            restored, batch.token_type_ids, batch.attention_mask, strict=True
        ):
            row, types = row[keep.bool()], types[keep.bool()]
            n_a = int((types == 0).sum())
            a, b = row[1 : n_a - 1], row[n_a:-1]
            if task == "nsp" or b[0] != a[-1] + 1:  # random B, or swapped
                assert (a.diff() == 1).all() and (b.diff() == 1).all()
            else:
                assert (row[1:-1][row[1:-1] != 3].diff() == 1).all()
