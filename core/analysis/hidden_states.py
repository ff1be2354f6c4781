"""How token representations change with depth.

Per layer and token: the hidden-state norm; between consecutive layers the L2 distance, the
cosine similarity and the angle (degrees) between each token's input and output
representation; each token's cosine similarity to its own embedding-layer representation; and
a 2-D PCA of any layer's tokens.

The transitions follow Lan et al. (2020), ALBERT, Figure 1 ("L2 distances and cosine
similarity of the input and output embeddings for each layer"), with two caveats. That
figure's right panel plots an *angle in degrees* (0-45), not the cosine: ``angle_deg`` and
``angle_mean_deg`` are that quantity, ``cosine`` is kept beside it. And the paper does not say
how tokens are aggregated (nor over which sentences); here, per sentence: ``angle_deg[l, i] =
degrees(arccos(clip(cos(h[l, i], h[l+1, i]), -1, 1)))`` per token, and ``angle_mean_deg`` is
the *mean of those angles* (not the angle of the mean cosine) over all T tokens of the
unpadded sentence, [CLS] and [SEP] included; likewise ``l2_mean`` and ``cosine_mean``.
The ``*_words`` averages leave special tokens out, since those behave unlike words (Clark et
al. 2019) and can dominate a short sentence. All maths is vectorised over layers and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.analysis._threads import single_threaded
from core.analysis.probe import ProbeResult
from core.errors import InputError

_EPS = 1e-12


@dataclass
class LayerStats:
    norms: np.ndarray  # (L+1, T) L2 norm of each token's hidden state, layer 0 = embeddings
    l2_distance: np.ndarray  # (L, T) ||h[l+1] - h[l]|| per token
    cosine: np.ndarray  # (L, T) cos(h[l], h[l+1]) per token
    l2_mean: np.ndarray  # (L,) mean of l2_distance over all tokens
    cosine_mean: np.ndarray  # (L,) mean of cosine over all tokens
    similarity_to_embedding: np.ndarray  # (L+1, T) cos(h[l], h[0]) per token; row 0 is 1
    l2_mean_words: np.ndarray  # (L,) mean over non-special tokens (all tokens if none)
    cosine_mean_words: np.ndarray  # (L,)
    angle_deg: np.ndarray  # (L, T) degrees(arccos(cosine)) per token, 0..180
    angle_mean_deg: np.ndarray  # (L,) mean of angle_deg over all tokens (ALBERT Fig. 1, right)
    angle_mean_deg_words: np.ndarray  # (L,) mean of angle_deg over non-special tokens

    @property
    def num_layers(self) -> int:
        return int(self.l2_distance.shape[0])

    def table_rows(self, tokens: list[str] | None = None) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per layer and token (named when
        ``tokens`` is given), then one per layer transition."""
        rows = []
        n_layers, n_tokens = self.norms.shape
        for layer in range(n_layers):
            for i in range(n_tokens):
                row = {"table": "layer_tokens", "layer": layer, "token_index": i}
                if tokens is not None:
                    row["token"] = tokens[i]
                row["norm"] = self.norms[layer, i]
                row["similarity_to_embedding"] = self.similarity_to_embedding[layer, i]
                if layer > 0:
                    row["l2_from_previous"] = self.l2_distance[layer - 1, i]
                    row["cosine_from_previous"] = self.cosine[layer - 1, i]
                    row["angle_deg_from_previous"] = self.angle_deg[layer - 1, i]
                rows.append(row)
        for layer in range(self.num_layers):
            rows.append(
                {
                    "table": "transitions",
                    "layer": layer + 1,
                    "l2_mean": self.l2_mean[layer],
                    "cosine_mean": self.cosine_mean[layer],
                    "l2_mean_words": self.l2_mean_words[layer],
                    "cosine_mean_words": self.cosine_mean_words[layer],
                    "angle_mean_deg": self.angle_mean_deg[layer],
                    "angle_mean_deg_words": self.angle_mean_deg_words[layer],
                }
            )
        return rows


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis; 0 where either vector is zero."""
    dot = np.einsum("...h,...h->...", a, b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1).astype(np.float64)
    nb = np.linalg.norm(b, axis=-1).astype(np.float64)
    denom = na * nb
    out = np.where(denom > _EPS, dot / np.maximum(denom, _EPS), 0.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


@single_threaded
def hidden_state_stats(hidden: np.ndarray, word_mask: np.ndarray | None = None) -> LayerStats:
    """Layer statistics of hidden states ``(L+1, T, H)``; ``word_mask`` (T,) selects the tokens
    of the ``*_words`` averages (default: all)."""
    hidden = np.asarray(hidden, dtype=np.float32)
    if hidden.ndim != 3 or hidden.shape[0] < 1 or hidden.shape[1] < 1:
        raise InputError(f"hidden states must be (layers+1, tokens, hidden), got {hidden.shape}")
    norms = np.linalg.norm(hidden, axis=-1)  # (L+1, T)
    l2 = np.linalg.norm(hidden[1:] - hidden[:-1], axis=-1)  # (L, T)
    cos = _cosine(hidden[:-1], hidden[1:])  # (L, T)
    to_embedding = _cosine(hidden, hidden[:1])  # (L+1, T)
    if word_mask is None or not np.any(word_mask):
        word_mask = np.ones(hidden.shape[1], dtype=bool)
    word_mask = np.asarray(word_mask, dtype=bool)
    angle = np.degrees(np.arccos(cos.astype(np.float64)))  # cos is already clipped to [-1, 1]
    return LayerStats(
        norms=norms.astype(np.float32),
        l2_distance=l2.astype(np.float32),
        cosine=cos,
        l2_mean=l2.mean(axis=1).astype(np.float32),
        cosine_mean=cos.mean(axis=1).astype(np.float32),
        similarity_to_embedding=to_embedding,
        l2_mean_words=l2[:, word_mask].mean(axis=1).astype(np.float32),
        cosine_mean_words=cos[:, word_mask].mean(axis=1).astype(np.float32),
        angle_deg=angle.astype(np.float32),
        angle_mean_deg=angle.mean(axis=1).astype(np.float32),
        angle_mean_deg_words=angle[:, word_mask].mean(axis=1).astype(np.float32),
    )


def layer_stats(result: ProbeResult) -> LayerStats:
    """Norms, consecutive-layer L2/cosine/angle (per token and averaged) and similarity to the
    embedding layer for a probed sentence."""
    return hidden_state_stats(result.hidden_states, ~result.special_mask)


@single_threaded
def _pca(hidden: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Batched PCA of ``(N, T, H)``: projections (N, T, components) and explained-variance
    ratios (N, components). Each basis vector's sign is fixed so that its largest-|loading|
    coordinate is positive (as scikit-learn's ``svd_flip`` fixes signs), so the picture does
    not flip between sentences or runs.

    Computed from the eigenvectors of the smaller of the T x T Gram matrix and the H x H
    covariance (a sentence has far fewer tokens than a model has dimensions): the same
    components as an SVD, at a fraction of the cost. Computed in float32."""
    # float32 keeps four significant digits of the two leading components (tested against
    # float64 at 512 tokens) at a fraction of the time
    x = hidden.astype(np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    n, t, h = x.shape
    k = min(components, t, h)
    if t <= h:
        evals, evecs = np.linalg.eigh(x @ x.transpose(0, 2, 1))  # ascending, (N, T), (N, T, T)
        evals, u = evals[:, ::-1][:, :k], evecs[:, :, ::-1][:, :, :k]
        sing = np.sqrt(np.clip(evals, 0.0, None))  # singular values (N, k)
        proj = u * sing[:, None, :]  # (N, T, k): x @ v_k = u_k s_k
        v = (x.transpose(0, 2, 1) @ u) / np.where(sing > _EPS, sing, 1.0)[:, None, :]  # (N, H, k)
    else:
        evals, evecs = np.linalg.eigh(x.transpose(0, 2, 1) @ x)  # (N, H), (N, H, H)
        evals, v = evals[:, ::-1][:, :k], evecs[:, :, ::-1][:, :, :k]
        proj = x @ v
    biggest = np.take_along_axis(v, np.abs(v).argmax(axis=1)[:, None, :], axis=1)[:, 0, :]
    signs = np.where(biggest < 0, -1.0, 1.0)  # (N, k)
    proj = proj * signs[:, None, :]
    total = (x**2).sum(axis=(1, 2))[:, None]  # = sum of all eigenvalues
    ratio = np.where(total > _EPS, np.clip(evals, 0.0, None) / np.maximum(total, _EPS), 0.0)
    if k < components:  # fewer tokens than components: pad with zeros
        proj = np.concatenate([proj, np.zeros((n, t, components - k))], axis=2)
        ratio = np.concatenate([ratio, np.zeros((n, components - k))], axis=1)
    return proj.astype(np.float32), ratio.astype(np.float32)


def pca_all_layers(result: ProbeResult) -> np.ndarray:
    """(L+1, T, 2): each layer's tokens on that layer's first two principal components."""
    return _pca(result.hidden_states)[0]


def pca_projection(result: ProbeResult, layer: int) -> np.ndarray:
    """(T, 2): layer ``layer``'s tokens (0 = embeddings) on its first two principal components."""
    n = result.hidden_states.shape[0]
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
        raise InputError(f"layer {layer!r} is out of range: the model has layers 0..{n - 1}")
    return _pca(result.hidden_states[layer][None])[0][0]


def pca_explained_variance(result: ProbeResult) -> np.ndarray:
    """(L+1, 2): share of the variance of each layer's tokens that the two components explain."""
    return _pca(result.hidden_states)[1]
