"""Pretraining data: plain-text corpus -> MLM + NSP (BERT) or MLM + SOP (ALBERT) batches.

Follows Google's ``create_pretraining_data.py`` for BERT (Devlin et al. 2019) and ALBERT
(Lan et al. 2020), with three deliberate changes, one per module, each explained there:

- :mod:`core.data.corpus_cache`, the *corpus*: streamed through the tokenizer once into
  memory-mapped arrays in a cache folder, so it costs disk, not RAM, and any document can
  still be read at random;
- :mod:`core.data.examples`, the *pairs*: a shorter target length drawn per sequence, long
  sentences cut inside, over-long pairs trimmed away from the A|B junction; the pairs of an
  epoch form one stream, identical on every rank, cut into each step's and rank's batches;
- :mod:`core.data.masking`, the *masking*: drawn when a batch is made, from a generator
  seeded by (seed, epoch, example index), so masks differ every epoch and every example's
  is the same whichever rank or step builds it.

:mod:`core.data.config` holds the settings all three read. Every public name is importable
from ``core.data`` itself.
"""

from core.data.config import TASKS, DataConfig
from core.data.corpus_cache import (
    CheckedCorpus,
    PairExample,
    PairSpan,
    TokenizedCorpus,
    check_corpus,
    iter_documents,
)
from core.data.examples import Batch, DataPosition, PretrainingData, collate, truncate_pair
from core.data.masking import MaskedExample, Masker

__all__ = [
    "TASKS",
    "Batch",
    "CheckedCorpus",
    "DataConfig",
    "DataPosition",
    "MaskedExample",
    "Masker",
    "PairExample",
    "PairSpan",
    "PretrainingData",
    "TokenizedCorpus",
    "check_corpus",
    "collate",
    "iter_documents",
    "truncate_pair",
]
