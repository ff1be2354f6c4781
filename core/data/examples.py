"""The example stream: NSP/SOP pairs from the corpus, in epochs, masked into batches.

Segments fill up to ``seq_len - 3`` tokens; 10% of the time a shorter target length is drawn
(per sequence here; per document in Google's code). A chunk is split into A and B at a
sentence boundary. BERT's NSP replaces B with text from another document half the time
(label 1 = random, as transformers' ``next_sentence_label``); ALBERT's SOP swaps A and B half
the time (label 1 = swapped, as ``sentence_order_label``). A chunk of a single long sentence is
cut inside the sentence, so both segments are real consecutive text, and over-long pairs are
trimmed away from the A|B junction, which is what NSP/SOP look at.

Examples of an epoch form one stream, identical on every rank; a training step takes the
next ``batch x grad_accum x world_size`` of them and rank r keeps its own slice. The stream
position (epoch, index) is all a checkpoint needs to resume exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.data.config import DataConfig
from core.data.corpus_cache import PairExample, PairSpan, TokenizedCorpus
from core.data.masking import MaskedExample, Masker
from core.errors import InputError
from core.tokenizer import Tokenizer


@dataclass(frozen=True)
class DataPosition:
    """Where the example stream stands: the next example is number ``index`` of ``epoch``."""

    epoch: int = 0
    index: int = 0


@dataclass
class Batch:
    """Model inputs and targets; ``mlm_labels`` follow ``mlm_positions`` in row-major order."""

    input_ids: torch.Tensor  # (B, T) long
    token_type_ids: torch.Tensor  # (B, T) long
    attention_mask: torch.Tensor | None  # (B, T) long, 0 on padding; None: no padding
    mlm_positions: torch.Tensor  # (B, T) bool, or (N,) int64 flat indices (for a GPU)
    mlm_labels: torch.Tensor  # (N,) long; -100 pads a fixed-size index
    sentence_labels: torch.Tensor  # (B,) long
    n_tokens: int  # non-padding tokens
    n_masked: int  # positions to predict (not counting -100 padding)

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return self._map_tensors(lambda value: value.to(device, non_blocking=nb))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory, so that copies to a GPU run asynchronously."""
        return self._map_tensors(lambda value: value.pin_memory())

    def _map_tensors(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(
            **{
                name: fn(value) if isinstance(value, torch.Tensor) else value
                for name, value in self.__dict__.items()
            }
        )

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


def collate(examples: Sequence[MaskedExample], pad_id: int) -> Batch:
    """Pad to the longest example of the batch."""
    B = len(examples)
    T = max(len(e.input_ids) for e in examples)
    ids = np.full((B, T), pad_id, dtype=np.int64)
    types = np.zeros((B, T), dtype=np.int64)
    attn = np.zeros((B, T), dtype=np.int64)
    where = np.zeros((B, T), dtype=np.bool_)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = e.input_ids
        types[i, :n] = e.token_type_ids
        attn[i, :n] = 1
        where[i, e.positions] = True
    labels = np.concatenate([e.labels for e in examples]).astype(np.int64)
    return Batch(
        input_ids=torch.from_numpy(ids),
        token_type_ids=torch.from_numpy(types),
        attention_mask=torch.from_numpy(attn),
        mlm_positions=torch.from_numpy(where),
        mlm_labels=torch.from_numpy(labels),
        sentence_labels=torch.tensor([e.sentence_label for e in examples], dtype=torch.long),
        n_tokens=int(attn.sum()),
        n_masked=len(labels),
    )


def truncate_pair(la: int, lb: int, total: int) -> tuple[int, int]:
    """Lengths after BERT's rule (trim the longer segment, one token at a time) in closed form."""
    if la + lb <= total:
        return la, lb
    na = min(la, max(total - lb, (total + 1) // 2))
    return na, min(lb, total - na)


class PretrainingData:
    """Examples and batches for one model family from a :class:`TokenizedCorpus`."""

    def __init__(
        self, corpus: TokenizedCorpus, tokenizer: Tokenizer, config: DataConfig, seed: int = 0
    ):
        self.corpus = corpus
        self.config = config
        self.seed = int(seed)
        self.masker = Masker(tokenizer, config, self.seed)
        self.pad_id = tokenizer.token_id("pad")
        if config.task == "nsp" and corpus.n_documents < 2:
            raise InputError(
                "next-sentence prediction needs at least 2 documents (the random B segment "
                "comes from another one); separate documents by blank lines"
            )
        if corpus.n_documents < 1:
            raise InputError("the corpus has no documents")

    @property
    def examples_per_epoch_estimate(self) -> int:
        """Roughly how many sequences one pass makes (tokens / (seq_len - 3))."""
        docs = self.corpus.documents
        first = self.corpus.document_offsets[docs]
        last = self.corpus.document_offsets[docs + 1]
        tokens = int(
            (self.corpus.sentence_offsets[last] - self.corpus.sentence_offsets[first]).sum()
        )
        return max(
            1, round(tokens / (self.config.seq_len - 3) / (1 - self.config.short_seq_prob / 2))
        )

    # -- pairs -------------------------------------------------------------------------------
    def _target_length(self, rng: np.random.Generator) -> int:
        max_tokens = self.config.seq_len - 3
        if rng.random() < self.config.short_seq_prob:
            return int(rng.integers(2, max_tokens + 1))
        return max_tokens

    def _random_segment(self, doc: int, target: int, rng: np.random.Generator):
        docs = self.corpus.documents
        k = int(rng.integers(len(docs) - 1))
        other = int(docs[k])
        if other == doc:  # uniform over the other documents
            other = int(docs[-1])
        first, end = self.corpus.sentences_of(other)
        start = int(rng.integers(first, end))
        stop = start
        length = 0
        while stop < end and length < target:
            length += self.corpus.sentence_length(stop)
            stop += 1
        offsets = self.corpus.sentence_offsets
        return int(offsets[start]), int(offsets[stop])

    def _document_pairs(self, doc: int, rng: np.random.Generator) -> Iterator[PairSpan]:
        corpus = self.corpus
        offsets = corpus.sentence_offsets
        max_tokens = self.config.seq_len - 3
        first, end = corpus.sentences_of(doc)
        target = self._target_length(rng)
        chunk_start = first
        length = 0
        i = first
        while i < end:
            length += corpus.sentence_length(i)
            if i == end - 1 or length >= target:
                n_chunk = i + 1 - chunk_start
                a = None  # (lo, hi) token offsets of segment A, then B
                if n_chunk == 1:
                    lo, hi = int(offsets[i]), int(offsets[i + 1])
                    if hi - lo >= 2:
                        # One long sentence: cut inside it so A and B are consecutive text.
                        cut = lo + int(rng.integers(1, hi - lo))
                        a, b = (lo, cut), (cut, hi)
                        unused = 0
                else:
                    a_end = chunk_start + int(rng.integers(1, n_chunk))
                    a = (int(offsets[chunk_start]), int(offsets[a_end]))
                    b = (int(offsets[a_end]), int(offsets[i + 1]))
                    unused = i + 1 - a_end
                if a is not None:
                    label = 0
                    len_a = a[1] - a[0]
                    if self.config.task == "nsp" and rng.random() < 0.5:
                        label = 1
                        b = self._random_segment(doc, max(1, target - len_a), rng)
                        i -= unused  # the real continuation is used for the next pair
                    la, lb = truncate_pair(len_a, b[1] - b[0], max_tokens)
                    # Keep the tokens next to the A|B junction: trim A's front, B's back.
                    a, b = (a[1] - la, a[1]), (b[0], b[0] + lb)
                    if self.config.task == "sop" and rng.random() < 0.5:
                        label = 1  # swapped after trimming, so the real junction survives
                        a, b = b, a
                    if la > 0 and lb > 0:
                        yield PairSpan(a[0], a[1], b[0], b[1], label)
                chunk_start = i + 1
                length = 0
                target = self._target_length(rng)
            i += 1

    def examples(self, epoch: int, seed: int | None = None) -> Iterator[PairExample]:
        """The unmasked pairs of one epoch, in order; the same for a given (seed, epoch)."""
        for span in self.pair_spans(epoch, seed):
            yield self.corpus.pair(span)

    def pair_spans(self, epoch: int, seed: int | None = None) -> Iterator[PairSpan]:
        """:meth:`examples` as token offsets (no arrays made)."""
        rng = np.random.default_rng([self.seed if seed is None else seed, epoch, 0])
        docs = self.corpus.documents.copy()
        rng.shuffle(docs)
        size = max(1, self.config.shuffle_buffer)
        buffer: list[PairSpan] = []
        for doc in docs:
            for example in self._document_pairs(int(doc), rng):
                if len(buffer) < size:
                    buffer.append(example)
                    continue
                k = int(rng.integers(size))
                yield buffer[k]
                buffer[k] = example
        rng.shuffle(buffer)
        yield from buffer

    # -- streams -----------------------------------------------------------------------------
    def stream(self, position: DataPosition) -> Iterator[tuple[int, int, PairSpan]]:
        """(epoch, index, pair span) from ``position`` on, through as many epochs as asked."""
        epoch, skip = position.epoch, position.index
        while True:
            produced = 0
            for index, example in enumerate(self.pair_spans(epoch)):
                produced += 1
                if index >= skip:
                    yield epoch, index, example
            if produced == 0:
                raise InputError("the corpus yields no training examples (every line is empty?)")
            epoch, skip = epoch + 1, 0

    def step_batches(
        self,
        position: DataPosition,
        batch_size: int,
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
        every: int = 1,
        offset: int = 0,
    ) -> Iterator[tuple[list[Batch], DataPosition]]:
        """For each optimizer step: this rank's ``grad_accum`` micro-batches and the position
        after the step. The step takes the next ``batch_size * grad_accum * world_size``
        examples of the stream; micro-batch m of rank r is slice (m * world_size + r).

        With ``every`` > 1 only steps s (counted from ``position``) with s % every == offset
        are built and yielded; the others' examples are walked past unmasked (worker
        ``offset`` of ``every`` in :class:`core.training.batch_loader.StepBatchLoader`)."""
        per_step = batch_size * grad_accum * world_size
        stream = self.stream(position)
        step = -1
        while True:
            group = [next(stream) for _ in range(per_step)]
            step += 1
            if step % every != offset:
                continue
            micro = []
            for m in range(grad_accum):
                lo = (m * world_size + rank) * batch_size
                masked = [
                    self.masker.mask(self.corpus.pair(span), ep, idx)
                    for ep, idx, span in group[lo : lo + batch_size]
                ]
                micro.append(collate(masked, self.pad_id))
            ep, idx, _ = group[-1]
            yield micro, DataPosition(ep, idx + 1)

    def eval_batches(
        self,
        batch_size: int,
        max_examples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 1234,
    ) -> Iterator[Batch]:
        """A fixed evaluation set: epoch 0 under ``seed`` (one pass), examples i with
        i % world_size == rank, masks drawn from the same seed: the same numbers every time."""
        batch: list[MaskedExample] = []
        for index, example in enumerate(self.examples(0, seed=seed)):
            if max_examples is not None and index >= max_examples:
                break
            if index % world_size != rank:
                continue
            batch.append(self.masker.mask(example, 0, index, seed=seed))
            if len(batch) == batch_size:
                yield collate(batch, self.pad_id)
                batch = []
        if batch:
            yield collate(batch, self.pad_id)
