"""GloVe: word vectors from a weighted least-squares fit to the logarithm of co-occurrence counts.

Derivation: derivations/glove.md.  Tests: tests/test_glove.py.  Example: examples/word_vectors.py.
Queries: tinylm/models/keyed_vectors.py (``GloVe.wv``).

1. Count (:func:`cooccurrence_matrix`). ``X[i, j]`` sums ``1/d`` over every occurrence of word ``j``
   at distance ``d <= window`` from an occurrence of word ``i`` in the same sentence, on either side
   (GloVe's symmetric window), so ``X`` is symmetric. It is a ``scipy.sparse`` CSR matrix (V, V).
2. Fit (Pennington et al. 2014) over the non-zeros of ``X``:

       J = 1/2 sum_{X_ij > 0} f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,   f(x) = min(1, (x / x_max)^alpha)

   with AdaGrad, one step per non-zero, the non-zeros in a fresh random order each epoch. Each
   parameter ``p`` keeps the sum ``s`` of its squared gradients and steps ``p -= lr g / sqrt(s)``
   (``s`` starts at 1, as in the reference C code, so the first steps are not ``lr * sign(g)``).
3. The word vectors are ``W + W~`` (the paper's choice: the two are equivalent up to noise).

Two engines run the same loop: ``"numba"`` (default), :func:`train_epoch` over ``workers`` threads
without locks (Hogwild, as the reference C code); and ``"numpy"``, :func:`train_epoch_reference`,
one non-zero at a time through :func:`glove_loss_forward` / :func:`glove_loss_backward` and
:func:`adagrad_step_reference`: the version to read, and the one the kernel is tested against.

Differences from glove.c, kept so that a kernel step is exactly an AdaGrad step on the gradient
of J: the squared gradient is added before the step (glove.c adds it after, and accumulates the
gradient already multiplied by the learning rate); biases start at 0 (glove.c: random).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import scipy.sparse
from numba import njit, prange

from tinylm._checks import check_choice, check_float, check_index_range, check_positive_int, check_shape
from tinylm.backend import array_module
from tinylm.models.keyed_vectors import KeyedVectors
from tinylm.models.word2vec import build_vocabulary, check_corpus, check_number, encode_corpus
from tinylm.models.word2vec_numba import numba_threads
from tinylm.ops.embedding import embedding_backward, embedding_forward, scatter_add
from tinylm.ops.matmul import matmul
from tinylm.random import make_rng

__all__ = ["GloVe", "GloVeLossCache", "cooccurrence_matrix", "glove_weight", "glove_loss_forward",
           "glove_loss_backward", "adagrad_step_reference", "train_epoch_reference", "adagrad_step", "train_epoch"]

_CHUNK = 4096                    # non-zeros per parallel task
_FAST = {"reassoc", "contract", "nsz"}


# ----------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------

def cooccurrence_matrix(words: np.ndarray, sent_bounds: np.ndarray, vocab_size: int, window: int):
    """Distance-weighted co-occurrence counts in a symmetric window, as a CSR matrix (V, V) float64.

    Shapes: words (N,) integer ids, sentence s is ``words[sent_bounds[s]:sent_bounds[s + 1]]``;
    windows stop at sentence boundaries. ``X[i, j] = sum over pairs (t, t + d), 1 <= d <= window,
    of 1/d``, counted both ways: ``X[words[t], words[t + d]]`` and ``X[words[t + d], words[t]]``.
    """
    check_positive_int("window", window)
    words = np.asarray(words, np.int64)
    sentence = np.repeat(np.arange(len(sent_bounds) - 1), np.diff(sent_bounds))      # (N,) sentence of each token
    X = scipy.sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]             # (N - d,) pairs inside one sentence
        left, right = words[:-d][same], words[d:][same]
        weight = np.full(len(left), 1.0 / d)
        pairs = scipy.sparse.coo_matrix((np.concatenate([weight, weight]),
                                         (np.concatenate([left, right]), np.concatenate([right, left]))),
                                        shape=(vocab_size, vocab_size))
        X = X + pairs.tocsr()                            # duplicates are summed
    return X


def glove_weight(x, x_max: float, alpha: float):
    """GloVe's weighting ``f(x) = min(1, (x / x_max)^alpha)``: rare pairs count less, none count more than 1."""
    xp = array_module(("x", x))
    return xp.minimum(1.0, (x / x_max) ** alpha)


# ----------------------------------------------------------------------------------------------
# The objective: loss and gradients for a batch of non-zeros
# ----------------------------------------------------------------------------------------------

class GloVeLossCache(NamedTuple):
    w_lookup: object      # EmbeddingCache of w[rows]: its backward scatters into dw
    wt_lookup: object     # EmbeddingCache of w_tilde[cols]: its backward scatters into dw_tilde
    wi: object            # (B, C) w[rows]: d diff / d w~_j
    wj: object            # (B, C) w_tilde[cols]: d diff / d w_i
    rows: object          # (B,) i: where db collects
    cols: object          # (B,) j: where db_tilde collects
    fdiff: object         # (B,) f(X) diff = dJ/d diff
    vocab_size: int


def glove_loss_forward(w, w_tilde, b, b_tilde, rows, cols, counts, x_max: float = 100.0, alpha: float = 0.75):
    """``J = 1/2 sum_k f(X_k) (w[i_k] . w_tilde[j_k] + b[i_k] + b_tilde[j_k] - log X_k)^2`` over a batch.

    Shapes: w, w_tilde (V, C); b, b_tilde (V,); rows (i), cols (j) (B,) integer; counts (X) (B,)
    positive. Returns ``(J, cache)``, J a scalar of w's dtype.
    """
    xp = array_module(("w", w), ("w_tilde", w_tilde), ("b", b), ("b_tilde", b_tilde), ("rows", rows),
                      ("cols", cols), ("counts", counts))
    for name, a in (("w", w), ("w_tilde", w_tilde), ("b", b), ("b_tilde", b_tilde), ("counts", counts)):
        check_float(name, a)
    dims = check_shape("w", w, ("V", "C"))
    check_shape("w_tilde", w_tilde, ("V", "C"), dims)
    check_shape("b", b, ("V",), dims)
    check_shape("b_tilde", b_tilde, ("V",), dims)
    check_shape("rows", rows, ("B",), dims)
    check_shape("cols", cols, ("B",), dims)
    check_shape("counts", counts, ("B",), dims)
    check_index_range("rows", rows, dims["V"], what="word ids")
    check_index_range("cols", cols, dims["V"], what="word ids")
    if counts.size and not bool((counts > 0).all()):
        raise ValueError(f"counts: co-occurrence counts must be positive (log X), got {float(counts.min())}")
    wi, w_lookup = embedding_forward(rows, w)                            # (B,) -> (B, C)
    wj, wt_lookup = embedding_forward(cols, w_tilde)                     # (B,) -> (B, C)
    dot = matmul(wi[:, None, :], wj[:, :, None])[:, 0, 0]                # (B, 1, C) @ (B, C, 1) -> (B,)
    diff = dot + b[rows] + b_tilde[cols] - xp.log(counts).astype(w.dtype)   # (B,)
    f = glove_weight(counts, x_max, alpha).astype(w.dtype)               # (B,)
    loss = 0.5 * (f * diff * diff).sum()
    return loss, GloVeLossCache(w_lookup, wt_lookup, wi, wj, rows, cols, f * diff, dims["V"])


def glove_loss_backward(dloss, cache: GloVeLossCache):
    """Gradients of J.

    Shapes: dloss () (a float; 1.0 for J itself) -> dw (V, C), dw_tilde (V, C), db (V,), db_tilde (V,).
    """
    w_lookup, wt_lookup, wi, wj, rows, cols, fdiff, V = cache
    xp = array_module(("fdiff", fdiff))
    g = (fdiff * dloss).astype(wi.dtype)                                 # J = f diff^2 / 2  =>  dJ/d diff = f diff
    dw = embedding_backward(g[:, None] * wj, w_lookup)                   # diff = w_i . w~_j  =>  dw_i = g w~_j
    dw_tilde = embedding_backward(g[:, None] * wi, wt_lookup)            #                   =>  dw~_j = g w_i
    db = scatter_add(xp.zeros(V, wi.dtype), rows, g)                     # diff = ... + b_i   =>  db_i = g
    db_tilde = scatter_add(xp.zeros(V, wi.dtype), cols, g)               # diff = ... + b~_j  =>  db~_j = g
    return dw, dw_tilde, db, db_tilde


def adagrad_step_reference(params, grads, sums, lr: float) -> None:
    """AdaGrad, in place: ``s += g^2; p -= lr g / sqrt(s)`` for each (parameter, gradient, sum)."""
    for p, g, s in zip(params, grads, sums):
        s += g * g
        p -= lr * g / np.sqrt(s)


def train_epoch_reference(order, rows, cols, counts, x_max, alpha, params, sums, lr) -> np.ndarray:
    """One epoch, one non-zero at a time in ``order``: the loop :func:`train_epoch` compiles.

    ``params`` = (w, w_tilde, b, b_tilde), ``sums`` their AdaGrad sums, updated in place.
    Returns the loss of each non-zero before its step (in ``order``). Tiny problems only.
    """
    losses = np.zeros(len(order))
    for t, k in enumerate(order):
        loss, cache = glove_loss_forward(*params, rows[k:k + 1], cols[k:k + 1], counts[k:k + 1], x_max, alpha)
        adagrad_step_reference(params, glove_loss_backward(1.0, cache), sums, lr)
        losses[t] = loss
    return losses


# ----------------------------------------------------------------------------------------------
# The Numba kernels
# ----------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=_FAST)
def adagrad_step(w, w_tilde, b, b_tilde, s_w, s_wt, s_b, s_bt, i, j, log_x, f, lr):
    """One AdaGrad step on one non-zero ``(i, j)`` with ``log X_ij = log_x``, ``f(X_ij) = f``;
    returns its loss before the step. Every gradient is taken at the weights before the step."""
    C = w.shape[1]
    dot = np.float32(0.0)
    for c in range(C):
        dot += w[i, c] * w_tilde[j, c]
    diff = dot + b[i] + b_tilde[j] - log_x                     # w_i . w~_j + b_i + b~_j - log X_ij
    g = np.float32(f * diff)                                   # dJ/d diff
    for c in range(C):
        gi = g * w_tilde[j, c]                                 # dJ/dw_i
        gj = g * w[i, c]                                       # dJ/dw~_j (w_i before its update)
        s_w[i, c] += gi * gi
        s_wt[j, c] += gj * gj
        w[i, c] -= lr * gi / math.sqrt(s_w[i, c])
        w_tilde[j, c] -= lr * gj / math.sqrt(s_wt[j, c])
    s_b[i] += g * g
    s_bt[j] += g * g
    b[i] -= lr * g / math.sqrt(s_b[i])                         # dJ/db_i = dJ/db~_j = g
    b_tilde[j] -= lr * g / math.sqrt(s_bt[j])
    return 0.5 * f * diff * diff


@njit(parallel=True, cache=True)
def train_epoch(order, rows, cols, log_x, f, w, w_tilde, b, b_tilde, s_w, s_wt, s_b, s_bt, lr):
    """One epoch over the non-zeros in ``order``, chunks of 4096 in parallel (Hogwild).

    Shapes: order (M,) int64 a permutation of the non-zeros; rows, cols (M,) int32; log_x, f (M,)
    float32; w, w_tilde, s_w, s_wt (V, C) and b, b_tilde, s_b, s_bt (V,) float32, updated in place.
    Returns the loss of each chunk (the sum of its non-zeros' losses before their steps).
    """
    n_chunks = (order.shape[0] + _CHUNK - 1) // _CHUNK
    losses = np.zeros(n_chunks)
    lr32 = np.float32(lr)
    for k in prange(n_chunks):
        loss = 0.0
        for t in range(k * _CHUNK, min((k + 1) * _CHUNK, order.shape[0])):
            e = order[t]
            loss += adagrad_step(w, w_tilde, b, b_tilde, s_w, s_wt, s_b, s_bt, rows[e], cols[e], log_x[e], f[e], lr32)
        losses[k] = loss
    return losses


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

class GloVe:
    """``GloVe(vector_size=50, window=15, x_max=100, alpha=0.75, epochs=25, learning_rate=0.05,
    min_count=5, workers=2, seed=1)`` (defaults of the reference C code; ``min_count`` of its demo).

    ``fit(sentences)`` counts, trains and sets: ``wv`` (:class:`KeyedVectors` of ``W + W~``),
    ``cooccurrence`` (CSR (V, V)), ``w``, ``w_tilde`` (V, C), ``b``, ``b_tilde`` (V,), ``counts`` (V,)
    word counts, ``loss_history`` (mean loss per non-zero of each epoch), ``seconds`` (training time).
    """

    def __init__(self, vector_size: int = 50, window: int = 15, x_max: float = 100.0, alpha: float = 0.75,
                 epochs: int = 25, learning_rate: float = 0.05, min_count: int = 5, workers: int = 2, seed: int = 1):
        self.vector_size = check_positive_int("vector_size", vector_size)
        self.window = check_positive_int("window", window)
        self.x_max = check_number("x_max", x_max, positive=True)
        self.alpha = check_number("alpha", alpha, positive=False)
        self.epochs = check_positive_int("epochs", epochs)
        self.learning_rate = check_number("learning_rate", learning_rate, positive=True)
        self.min_count = check_positive_int("min_count", min_count)
        self.workers = check_positive_int("workers", workers)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self.wv: KeyedVectors | None = None
        self.cooccurrence = self.counts = None
        self.w = self.w_tilde = self.b = self.b_tilde = None
        self.loss_history: list = []
        self.seconds = 0.0

    def fit(self, sentences, *, engine: str = "numba") -> GloVe:
        """Build the vocabulary and co-occurrence matrix of ``sentences`` (a list of token lists),
        then train ``epochs`` epochs. ``engine``: "numba" or "numpy" (reference, tiny corpora)."""
        check_choice("engine", engine, ("numba", "numpy"))
        check_corpus(sentences)
        vocab = build_vocabulary(sentences, self.min_count)
        corpus = encode_corpus(sentences, {w: i for i, w in enumerate(vocab.words)}, max_sentence_len=2**62)
        V, C = len(vocab.words), self.vector_size
        self.counts = vocab.counts
        self.cooccurrence = cooccurrence_matrix(corpus.words, corpus.sent_bounds, V, self.window)
        nz = self.cooccurrence.tocoo()
        if nz.nnz == 0:
            raise ValueError(f"sentences: no two vocabulary words occur within window={self.window} of each "
                             "other; nothing to fit")
        rows, cols, counts = nz.row.astype(np.int32), nz.col.astype(np.int32), nz.data
        rng = make_rng(self.seed)
        self.w = ((rng.random((V, C)) - 0.5) / C).astype(np.float32)
        self.w_tilde = ((rng.random((V, C)) - 0.5) / C).astype(np.float32)
        self.b, self.b_tilde = np.zeros(V, np.float32), np.zeros(V, np.float32)
        params = (self.w, self.w_tilde, self.b, self.b_tilde)
        sums = tuple(np.ones_like(p) for p in params)    # AdaGrad sums start at 1 (glove.c)
        log_x = np.log(counts).astype(np.float32)
        f = glove_weight(counts, self.x_max, self.alpha).astype(np.float32)
        self.loss_history = []
        t0 = time.perf_counter()
        with numba_threads(self.workers):
            for _ in range(self.epochs):
                order = rng.permutation(nz.nnz)
                if engine == "numba":
                    losses = train_epoch(order, rows, cols, log_x, f, *params, *sums, self.learning_rate)
                else:
                    losses = train_epoch_reference(order, rows, cols, counts, self.x_max, self.alpha, params, sums,
                                                   self.learning_rate)
                self.loss_history.append(float(losses.sum()) / nz.nnz)
        self.seconds = time.perf_counter() - t0
        self.wv = KeyedVectors(vocab.words, self.w + self.w_tilde)
        return self

    def __repr__(self) -> str:
        size = "unfitted" if self.wv is None else f"vocab={len(self.wv)}"
        return (f"GloVe({size}, vector_size={self.vector_size}, window={self.window}, x_max={self.x_max}, "
                f"alpha={self.alpha}, epochs={self.epochs})")
