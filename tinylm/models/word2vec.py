"""word2vec: skip-gram and CBOW word vectors, trained with negative sampling or hierarchical softmax.

Derivation: derivations/word2vec.md.  Kernels: tinylm/models/word2vec_numba.py.  Queries:
tinylm/models/keyed_vectors.py.  Tests: tests/test_word2vec.py.  Examples: examples/word_vectors.py,
examples/bench_word2vec_gensim.py (side by side with gensim).

Every training example is one prediction of a center word ``w`` from its context:

* skip-gram (``sg=1``): each context word ``c`` in the window predicts ``w`` on its own: ``h = W_in[c]``
  (word2vec.c's order: the context word's input vector, the center word's output vector);
* CBOW (``sg=0``): all context words together: ``h = mean_i W_in[c_i]`` (gensim's ``cbow_mean=1``).

and the prediction is scored by one or both output layers, each a set of binary logistic outputs
``x_j = h . u_j`` with labels ``y_j``:

* negative sampling (``negative=K``): ``u = W_ns[w]`` with label 1, and K noise words drawn from the
  unigram distribution raised to ``ns_exponent`` (0.75) with label 0;
* hierarchical softmax (``hs=1``): the inner nodes ``n`` on ``w``'s path in a Huffman tree over the
  vocabulary, ``u = W_hs[n]`` with label ``1 - code`` (``p(w | h)`` is the product of the branch
  probabilities ``sigmoid(+-x_j)``).

The loss of an example is ``L = sum_j softplus(x_j) - y_j x_j = -sum_j log sigmoid(+-x_j)``, and its
gradient is ``dL/dx_j = sigmoid(x_j) - y_j``; :func:`word2vec_loss_forward` /
:func:`word2vec_loss_backward` compute both for a batch.

Training is word2vec.c's: per epoch, per sentence, drop frequent words at random (subsampling, keep
probability ``(sqrt(f / sample) + 1) sample / f`` for a word of corpus frequency ``f``), shrink the
window at random for each center word (the "dynamic window", uniform in ``[1, window]``), take one
SGD step per example (CBOW's context vectors each move by ``alpha * dh``, n times their gradient,
as in word2vec.c), and let the learning rate fall linearly from ``alpha`` to ``min_alpha`` over all
epochs. Two engines run the same loop and draw the same random numbers:

* ``"numba"`` (default): :func:`tinylm.models.word2vec_numba.train_epoch`, lock-free over
  ``workers`` threads;
* ``"numpy"``: :func:`train_epoch_reference`, one example at a time through the NumPy loss and
  gradient: the version to read, and the one the kernel is tested against (tiny corpora only).

The model trains on the host: arrays are NumPy float32, whatever the active backend. The loss
functions are written against ``xp`` and run on any backend.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from heapq import heapify, heappop, heappush
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from tinylm._checks import (check_choice, check_flag, check_float, check_index_range, check_positive_int,
                            check_probability, check_shape, is_real)
from tinylm.backend import array_module
from tinylm.models import word2vec_numba as kernels
from tinylm.models.keyed_vectors import KeyedVectors
from tinylm.ops.activations import sigmoid
from tinylm.ops.embedding import EmbeddingCache, embedding_backward, embedding_forward
from tinylm.ops.matmul import matmul
from tinylm.random import make_rng

__all__ = ["Word2Vec", "TrainReport", "Vocabulary", "HuffmanTree", "EncodedCorpus", "Word2VecLossCache",
           "build_vocabulary", "keep_probabilities", "noise_distribution", "huffman_tree", "encode_corpus",
           "split_jobs", "word2vec_loss_forward", "word2vec_loss_backward", "sgd_step_reference",
           "train_epoch_reference", "check_corpus", "check_number", "NOISE_DOMAIN", "JOB_WORDS"]

NOISE_DOMAIN = 2**31 - 1        # the noise table's integer range (gensim's cum_table domain)
JOB_WORDS = 10_000              # words per job: the unit of work a thread takes (gensim's batch size)


# ----------------------------------------------------------------------------------------------
# Vocabulary and the tables derived from the counts
# ----------------------------------------------------------------------------------------------

class Vocabulary(NamedTuple):
    words: list          # (V,) the words with count >= min_count, most frequent first
    counts: np.ndarray   # (V,) int64 their corpus counts
    n_sentences: int     # sentences read
    n_tokens: int        # tokens read, rare words included


def build_vocabulary(sentences: Iterable[Sequence[str]], min_count: int) -> Vocabulary:
    """Count every token; keep those seen at least ``min_count`` times, most frequent first (ties in
    order of first appearance, as gensim). Raises a ``ValueError`` for an empty corpus or when no
    word is frequent enough."""
    check_corpus(sentences)
    counts: Counter = Counter()
    n_sentences = 0
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError(f"sentences: each sentence must be a list of tokens, got the str {sentence[:40]!r} "
                            "(split it: sentence.split())")
        counts.update(sentence)
        n_sentences += 1
    n_tokens = sum(counts.values())
    if n_tokens == 0:
        raise ValueError(f"sentences: the corpus is empty ({n_sentences} sentences, no tokens)")
    bad = next((w for w in counts if not isinstance(w, str)), None)
    if bad is not None:
        raise TypeError(f"sentences: tokens must be str, got {type(bad).__name__} {bad!r}")
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=counts.__getitem__, reverse=True)
    if not kept:
        top, c = counts.most_common(1)[0]
        raise ValueError(f"min_count: no word occurs {min_count} times or more (the most frequent, {top!r}, "
                         f"occurs {c} times); lower min_count or give a larger corpus")
    return Vocabulary(kept, np.array([counts[w] for w in kept], np.int64), n_sentences, n_tokens)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of each word under frequent-word subsampling.

    word2vec.c's formula (also gensim's): with ``t = sample * sum(counts)``,
    ``keep = (sqrt(count / t) + 1) * t / count``, capped at 1; ``sample = 0`` keeps everything.
    Shapes: counts (V,) -> (V,) float64.
    """
    counts = np.asarray(counts, np.float64)
    if sample == 0:
        return np.ones_like(counts)
    t = sample * counts.sum()
    return np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1.0)


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """Cumulative noise table: word ``w`` is drawn when ``r`` (uniform in ``[0, NOISE_DOMAIN)``)
    falls in ``[cum[w - 1], cum[w])``, so with probability ``count^exponent / sum(count^exponent)``
    (to 1 part in 2^31). Shapes: counts (V,) -> (V,) int64, ``cum[-1] == NOISE_DOMAIN``."""
    p = np.asarray(counts, np.float64) ** exponent
    cum = np.round(np.cumsum(p / p.sum()) * NOISE_DOMAIN).astype(np.int64)
    cum[-1] = NOISE_DOMAIN
    return cum


class HuffmanTree(NamedTuple):
    points: np.ndarray   # (V, L) int32: the inner nodes (rows of W_hs) on each word's path, root first
    codes: np.ndarray    # (V, L) uint8: the branch taken at each of them (0 or 1); both padded with 0
    lengths: np.ndarray  # (V,) int64: each word's code length L_w <= L


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """The Huffman tree of the counts, numbered as in word2vec.c.

    Leaves are words ``0..V-1``; merging the two lightest nodes creates inner node ``V + k`` (the
    lighter one takes branch 0), so the root is ``2V - 2`` and inner node ``V + k`` owns row ``k`` of
    ``W_hs`` (V - 1 rows). Ties are broken by node number, so the tree is deterministic.
    """
    V = len(counts)
    parent = np.zeros(2 * V - 1, np.int64)
    branch = np.zeros(2 * V - 1, np.uint8)
    heap = [(int(c), w) for w, c in enumerate(counts)]
    heapify(heap)
    for node in range(V, 2 * V - 1):
        c0, a = heappop(heap)                            # the two lightest nodes ...
        c1, b = heappop(heap)
        parent[a], parent[b] = node, node                # ... become the children of a new node
        branch[b] = 1
        heappush(heap, (c0 + c1, node))
    paths = []
    for w in range(V):                                   # walk up from each leaf to the root
        nodes, bits, n = [], [], w
        while n != 2 * V - 2 and V > 1:
            nodes.append(parent[n] - V)
            bits.append(branch[n])
            n = parent[n]
        paths.append((nodes[::-1], bits[::-1]))
    L = max(len(p) for p, _ in paths)
    points = np.zeros((V, L), np.int32)
    codes = np.zeros((V, L), np.uint8)
    lengths = np.zeros(V, np.int64)
    for w, (p, b) in enumerate(paths):
        points[w, :len(p)], codes[w, :len(b)], lengths[w] = p, b, len(p)
    return HuffmanTree(points, codes, lengths)


# ----------------------------------------------------------------------------------------------
# The objective: loss and gradients for a batch of examples
# ----------------------------------------------------------------------------------------------

class Word2VecLossCache(NamedTuple):
    in_lookup: EmbeddingCache    # the gather of the input rows: its backward scatters into dw_in
    in_weight: object            # (B, I) in_mask / n_b: d h_b / d w_in[inputs[b, i]] (0 for padding)
    h: object                    # (B, C) hidden vectors: dL/du_j = dL/dx_j h
    out_lookup: EmbeddingCache   # the gather of the output rows: its backward scatters into dw_out
    u: object                    # (B, J, C) the output vectors: dL/dh = sum_j dL/dx_j u_j
    dx: object                   # (B, J) dL/dx = out_mask (sigmoid(x) - labels), computed in the forward


def word2vec_loss_forward(w_in, w_out, inputs, outputs, labels, in_mask=None, out_mask=None):
    """Loss of a batch of B examples, summed.

        h_b  = sum_i in_mask[b,i] w_in[inputs[b,i]] / sum_i in_mask[b,i]      (mean of the inputs)
        x_bj = h_b . w_out[outputs[b,j]]
        L    = sum_bj out_mask[b,j] (softplus(x_bj) - labels[b,j] x_bj)

    Skip-gram has I = 1; CBOW has the context words (padding masked out). Negative sampling has
    J = 1 + K outputs (the target, label 1; noise words, label 0); hierarchical softmax the
    target's Huffman path (label 1 - code). Shapes: w_in (V, C), w_out (R, C) (R = V for negative
    sampling, V - 1 for hierarchical softmax), inputs (B, I) and outputs (B, J) integer,
    labels (B, J) float in {0, 1}, in_mask (B, I) and out_mask (B, J) bool (default: all True).
    Returns ``(loss, cache)``, loss a scalar of w_in's dtype.
    """
    xp = array_module(("w_in", w_in), ("w_out", w_out), ("inputs", inputs), ("outputs", outputs),
                      ("labels", labels), ("in_mask", in_mask), ("out_mask", out_mask))
    check_float("w_in", w_in)
    check_float("w_out", w_out)
    if w_out.dtype != w_in.dtype:
        raise TypeError(f"w_out: expected the dtype of w_in ({w_in.dtype}), got {w_out.dtype}")
    dims = check_shape("w_in", w_in, ("V", "C"))
    check_shape("w_out", w_out, ("R", "C"), dims)
    check_shape("inputs", inputs, ("B", "I"), dims)
    check_shape("outputs", outputs, ("B", "J"), dims)
    check_shape("labels", labels, ("B", "J"), dims)
    check_float("labels", labels)
    check_index_range("inputs", inputs, dims["V"], what="word ids")
    check_index_range("outputs", outputs, dims["R"], what="output rows")
    in_mask = xp.ones(inputs.shape, bool) if in_mask is None else _check_mask("in_mask", in_mask, inputs.shape)
    out_mask = xp.ones(outputs.shape, bool) if out_mask is None else _check_mask("out_mask", out_mask, outputs.shape)
    n_in = in_mask.sum(axis=1, keepdims=True)                           # (B, 1)
    if bool((n_in == 0).any()):
        raise ValueError("in_mask: every example needs at least one input word, "
                         f"example {int(xp.argmin(n_in))} has none")
    in_weight = (in_mask / n_in).astype(w_in.dtype)                     # (B, I)  1/n_b per real input
    rows_in, in_lookup = embedding_forward(inputs, w_in)                # (B, I) -> (B, I, C)
    h = matmul(in_weight[:, None, :], rows_in)[:, 0]                     # (B, 1, I) @ (B, I, C) -> (B, C)
    u, out_lookup = embedding_forward(outputs, w_out)                   # (B, J) -> (B, J, C)
    x = matmul(u, h[:, :, None])[..., 0]                                # (B, J, C) @ (B, C, 1) -> (B, J)
    labels = labels.astype(w_in.dtype)
    loss = (out_mask * (xp.logaddexp(0, x) - labels * x)).sum()         # softplus(x) - y x = -log sigmoid(+-x)
    dx = out_mask * (sigmoid(x) - labels)                               # dL/dx, kept for the backward
    return loss, Word2VecLossCache(in_lookup, in_weight, h, out_lookup, u, dx)


def word2vec_loss_backward(dloss, cache: Word2VecLossCache):
    """Gradients of the loss with respect to ``w_in`` (V, C) and ``w_out`` (R, C).

    Shapes: dloss () (the scalar upstream gradient, 1.0 for the loss itself) -> dw_in (V, C), dw_out (R, C).
    """
    in_lookup, in_weight, h, out_lookup, u, dx = cache
    dx = (dx * dloss).astype(u.dtype)                                   # L = sum mask (softplus(x) - y x)  (B, J)
    du = dx[:, :, None] * h[:, None, :]                                 # x = u . h  =>  du_j = dx_j h        (B, J, C)
    dh = matmul(dx[:, None, :], u)[:, 0]                                # x = u . h  =>  dh = sum_j dx_j u_j  (B, C)
    drows_in = in_weight[:, :, None] * dh[:, None, :]                   # h = sum_i in_weight_i w_in[row_i]   (B, I, C)
    dw_out = embedding_backward(du, out_lookup)                         # u = w_out[outputs]: scatter-add   (R, C)
    dw_in = embedding_backward(drows_in, in_lookup)                     # rows = w_in[inputs]: scatter-add  (V, C)
    return dw_in, dw_out


def _check_mask(name, mask, shape):
    check_shape(name, mask, tuple(shape))
    if mask.dtype != bool:
        raise TypeError(f"{name}: expected a bool array, got {mask.dtype}")
    return mask


# ----------------------------------------------------------------------------------------------
# The NumPy reference training loop (what the Numba kernel compiles)
# ----------------------------------------------------------------------------------------------

def sgd_step_reference(w_in, inputs, outputs, alpha: float) -> float:
    """One SGD step on the loss of one example; returns that loss (before the step).

    ``inputs``: the input word ids (I,); ``outputs``: one ``(w_out, rows, labels)`` per output
    layer in use (negative sampling, hierarchical softmax). Both layers score the same ``h``, so
    their losses add, and so do their gradients with respect to ``w_in``. Output rows step by
    ``alpha`` times their gradient; input rows by ``I * alpha`` times theirs, word2vec.c's CBOW rule
    (each context vector moves by ``alpha * dh``; for skip-gram I = 1).
    """
    inputs = np.asarray(inputs)[None]                                   # a batch of one: (1, I)
    loss, dw_in = 0.0, 0
    for w_out, rows, labels in outputs:
        layer_loss, cache = word2vec_loss_forward(w_in, w_out, inputs, np.asarray(rows)[None],
                                                  np.asarray(labels, w_in.dtype)[None])
        g_in, g_out = word2vec_loss_backward(1.0, cache)
        w_out -= alpha * g_out                                          # SGD on the output rows
        dw_in = dw_in + g_in
        loss += float(layer_loss)
    w_in -= alpha * inputs.shape[1] * dw_in                             # last: every layer scored the same h
    return loss


def _lcg_next(state: int) -> int:
    return (state * kernels.LCG_MULTIPLIER + kernels.LCG_INCREMENT) & kernels.LCG_MASK


def train_epoch_reference(words, sent_bounds, job_bounds, job_seeds, w_in, w_ns, w_hs, keep, subsample, noise_cum,
                          points, hs_labels, code_lens, sg, window, negative, hs, alpha_start, alpha_end,
                          progress_start, progress_per_word, compute_loss=True):
    """The loop of :func:`tinylm.models.word2vec_numba.train_epoch` (same arguments, same random
    draws, jobs one after the other), written in Python around :func:`sgd_step_reference`.

    Returns per-job ``(losses, examples)``. For reading and tests: it is slow (a dense V x C
    gradient per example).
    """
    losses, examples = np.zeros(len(job_bounds) - 1), np.zeros(len(job_bounds) - 1, np.int64)
    for k in range(len(job_bounds) - 1):
        state = int(job_seeds[k])
        for s in range(job_bounds[k], job_bounds[k + 1]):
            start, stop = int(sent_bounds[s]), int(sent_bounds[s + 1])
            alpha = alpha_start - (alpha_start - alpha_end) * (progress_start + progress_per_word * start)
            kept = []
            for w in words[start:stop]:                                 # frequent-word subsampling
                if subsample:
                    state = _lcg_next(state)
                    if (state >> 16) * 2.0**-32 >= keep[w]:
                        continue
                kept.append(int(w))
            for i, target in enumerate(kept):
                state = _lcg_next(state)
                reach = window - (state >> 16) % window                  # dynamic window in [1, window]
                context = kept[max(0, i - reach):i] + kept[i + 1:i + reach + 1]
                groups = [[c] for c in context] if sg else ([context] if context else [])
                for inputs in groups:                                   # skip-gram: one example per context word
                    layers = []
                    if negative > 0:
                        rows = [target]
                        for _ in range(negative):
                            state = _lcg_next(state)
                            noise = int(np.searchsorted(noise_cum, (state >> 16) % int(noise_cum[-1]), side="right"))
                            if noise != target:                         # word2vec.c drops a noise word == target
                                rows.append(noise)
                        layers.append((w_ns, rows, [1.0] + [0.0] * (len(rows) - 1)))
                    if hs:
                        n = int(code_lens[target])
                        layers.append((w_hs, points[target, :n], hs_labels[target, :n]))
                    loss = sgd_step_reference(w_in, inputs, layers, alpha)
                    losses[k] += loss if compute_loss else 0.0
                    examples[k] += 1
    return losses, examples


# ----------------------------------------------------------------------------------------------
# The corpus as arrays
# ----------------------------------------------------------------------------------------------

class EncodedCorpus(NamedTuple):
    words: np.ndarray        # (N,) int32 ids of the in-vocabulary tokens, sentence after sentence
    sent_bounds: np.ndarray  # (S + 1,) int64: sentence s is words[sent_bounds[s]:sent_bounds[s + 1]]


def encode_corpus(sentences: Iterable[Sequence[str]], key_to_index: dict,
                  max_sentence_len: int = kernels.MAX_SENTENCE_LEN) -> EncodedCorpus:
    """Word ids of every in-vocabulary token (out-of-vocabulary tokens are dropped before windows
    are taken, as in word2vec.c); sentences longer than ``max_sentence_len`` are split."""
    ids: list = []
    bounds = [0]
    get = key_to_index.get
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError(f"sentences: each sentence must be a list of tokens, got the str {sentence[:40]!r}")
        sent = [i for i in map(get, sentence) if i is not None]
        for a in range(0, len(sent), max_sentence_len):
            ids.extend(sent[a:a + max_sentence_len])
            bounds.append(len(ids))
    return EncodedCorpus(np.array(ids, np.int32), np.array(bounds, np.int64))


def split_jobs(sent_bounds: np.ndarray, job_words: int = JOB_WORDS) -> np.ndarray:
    """Group consecutive sentences into jobs of about ``job_words`` words: sentence s goes to job
    ``sent_bounds[s] // job_words`` (empty jobs removed). Returns (J + 1,) int64 sentence indices."""
    starts = np.asarray(sent_bounds[:-1]) // job_words                 # (S,) job of each sentence
    first = np.flatnonzero(np.diff(starts, prepend=-1))               # first sentence of each job
    return np.append(first, len(starts)).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

class TrainReport(NamedTuple):
    words: int                # corpus words seen (in-vocabulary, before subsampling), all epochs
    examples: int             # SGD steps taken (skip-gram: (context, center) pairs; CBOW: windows)
    seconds: float            # wall time of the epochs
    epoch_losses: list        # mean loss per example of each epoch (empty unless compute_loss)


class Word2Vec:
    """``Word2Vec(sentences=None, vector_size=100, window=5, min_count=5, sg=1, hs=0, negative=5,
    sample=1e-3, alpha=0.025, min_alpha=1e-4, epochs=5, workers=2, seed=1)``, gensim's parameters.

    ``sentences``: a re-iterable corpus (a list of token lists); when given, the vocabulary is built
    and the model trained at once. ``vector_size`` C; ``window`` the largest distance between center
    and context word; ``min_count`` rarer words are dropped; ``sg`` 1 skip-gram, 0 CBOW (mean of the
    context vectors); ``hs`` 1 adds a hierarchical-softmax output layer; ``negative`` K noise words
    per example (0: no negative sampling; at least one of hs and negative must be on); ``sample``
    subsampling threshold (0: off); ``alpha`` -> ``min_alpha`` the learning rate's linear decay;
    ``epochs`` passes over the corpus; ``workers`` threads; ``seed`` seeds initialisation and every
    random draw. ``ns_exponent`` the noise distribution's exponent; ``compute_loss`` records the
    mean loss of each epoch in ``TrainReport.epoch_losses`` and ``loss_history`` (costs ~10%).

    After training: ``wv`` (:class:`KeyedVectors` over the input vectors W_in, shape (V, C)),
    ``syn1neg`` (V, C) negative-sampling output vectors, ``syn1`` (V - 1, C) hierarchical-softmax
    node vectors (gensim's names; ``None`` when that layer is off), ``counts`` (V,), ``huffman``.
    """

    def __init__(self, sentences=None, vector_size: int = 100, window: int = 5, min_count: int = 5, sg: int = 1,
                 hs: int = 0, negative: int = 5, sample: float = 1e-3, alpha: float = 0.025,
                 min_alpha: float = 1e-4, epochs: int = 5, workers: int = 2, seed: int = 1, *,
                 ns_exponent: float = 0.75, compute_loss: bool = False):
        self.vector_size = check_positive_int("vector_size", vector_size)
        self.window = check_positive_int("window", window)
        self.min_count = check_positive_int("min_count", min_count)
        self.sg = check_choice("sg", sg, (0, 1))
        self.hs = check_choice("hs", hs, (0, 1))
        if isinstance(negative, bool) or not isinstance(negative, int) or negative < 0:
            raise ValueError(f"negative: expected a non-negative int (noise words per example), got {negative!r}")
        if negative == 0 and hs == 0:
            raise ValueError("negative=0 and hs=0: no output layer to train; set negative > 0 or hs=1")
        self.negative = negative
        self.sample = check_probability("sample", sample)
        self.alpha = check_number("alpha", alpha, positive=True)
        self.min_alpha = check_number("min_alpha", min_alpha, positive=False)
        self.epochs = check_positive_int("epochs", epochs)
        self.workers = check_positive_int("workers", workers)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
        self.seed = int(seed)
        if not (is_real(ns_exponent) and math.isfinite(ns_exponent)):
            raise ValueError(f"ns_exponent: expected a finite number (noise distribution ~ count ** ns_exponent), "
                             f"got {ns_exponent!r}")
        self.ns_exponent = float(ns_exponent)
        self.compute_loss = check_flag("compute_loss", compute_loss)
        self.wv: KeyedVectors | None = None
        self.syn1neg = self.syn1 = None
        self.counts = self.keep = self.noise_cum = self.huffman = None
        self.loss_history: list = []
        self._epochs_done = 0
        if sentences is not None:
            self.build_vocab(sentences)
            self.train(sentences)

    def build_vocab(self, sentences) -> Word2Vec:
        """Count the corpus, keep words with ``count >= min_count``, build the subsampling and noise
        tables and the Huffman tree, and initialise the weights (gensim: W_in ~ U(-0.5, 0.5) / C,
        output layers zero)."""
        vocab = build_vocabulary(sentences, self.min_count)
        V, C = len(vocab.words), self.vector_size
        rng = make_rng(self.seed)
        # Drawn on the host with tinylm's generator: the kernels train NumPy arrays.
        w_in = ((2 * rng.random((V, C)) - 1) / C).astype(np.float32)
        self.wv = KeyedVectors(vocab.words, w_in)
        self.counts = vocab.counts
        self.keep = keep_probabilities(vocab.counts, self.sample)
        self.noise_cum = noise_distribution(vocab.counts, self.ns_exponent)
        self.huffman = huffman_tree(vocab.counts)
        self.syn1neg = np.zeros((V, C), np.float32) if self.negative else None
        self.syn1 = np.zeros((max(V - 1, 1), C), np.float32) if self.hs else None
        return self

    def train(self, sentences, *, engine: str = "numba") -> TrainReport:
        """Train ``epochs`` epochs on ``sentences`` (building the vocabulary first if needed).

        ``engine``: "numba" (default, ``workers`` threads) or "numpy" (the reference loop, tiny
        corpora only). Returns a :class:`TrainReport`.
        """
        check_choice("engine", engine, ("numba", "numpy"))
        check_corpus(sentences)
        if self.wv is None:
            self.build_vocab(sentences)
        corpus = encode_corpus(sentences, self.wv.key_to_index)
        n_words = len(corpus.words)
        if n_words == 0:
            raise ValueError("sentences: no token of the corpus is in the vocabulary; nothing to train on")
        jobs = split_jobs(corpus.sent_bounds)
        C = self.vector_size
        hs_on = bool(self.hs)
        tree = self.huffman
        points = tree.points if hs_on else np.zeros((len(self.wv), 0), np.int32)
        hs_labels = (1 - tree.codes).astype(np.float32) if hs_on else np.zeros((len(self.wv), 0), np.float32)
        code_lens = tree.lengths if hs_on else np.zeros(len(self.wv), np.int64)
        w_ns = self.syn1neg if self.negative else np.zeros((0, C), np.float32)
        w_hs = self.syn1 if hs_on else np.zeros((0, C), np.float32)
        epoch_fn = kernels.train_epoch if engine == "numba" else train_epoch_reference
        report_losses, examples = [], 0
        t0 = time.perf_counter()
        with kernels.numba_threads(self.workers):
            for epoch in range(self.epochs):
                seeds = np.random.default_rng([self.seed, self._epochs_done]).integers(
                    0, 2**48, size=len(jobs) - 1, dtype=np.uint64)
                losses, counts = epoch_fn(
                    corpus.words, corpus.sent_bounds, jobs, seeds, self.wv.vectors, w_ns, w_hs, self.keep,
                    self.sample > 0, self.noise_cum, points, hs_labels, code_lens, bool(self.sg), self.window,
                    self.negative, hs_on, self.alpha, self.min_alpha, epoch / self.epochs,
                    1.0 / (self.epochs * n_words), self.compute_loss)
                self._epochs_done += 1
                examples += int(counts.sum())
                if self.compute_loss:
                    report_losses.append(float(losses.sum()) / max(int(counts.sum()), 1))
        seconds = time.perf_counter() - t0
        self.loss_history.extend(report_losses)
        return TrainReport(n_words * self.epochs, examples, seconds, report_losses)

    def __repr__(self) -> str:
        size = "untrained" if self.wv is None else f"vocab={len(self.wv)}"
        return (f"Word2Vec({size}, vector_size={self.vector_size}, window={self.window}, sg={self.sg}, "
                f"hs={self.hs}, negative={self.negative}, epochs={self.epochs})")


def check_corpus(sentences) -> None:
    """``sentences`` must be a re-iterable collection (read twice: counting, then training)."""
    if sentences is None or isinstance(sentences, (str, bytes)):
        raise TypeError(f"sentences: expected a list of token lists, got {type(sentences).__name__}")
    if iter(sentences) is sentences:
        raise TypeError("sentences: expected a re-iterable corpus (a list of token lists, or an object whose "
                        "__iter__ starts over), got a one-shot iterator; pass list(sentences)")


def check_number(name: str, v, *, positive: bool) -> float:
    """A real number, > 0 (``positive``) or >= 0, as a float; else a ValueError naming ``name``."""
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and (v > 0 if positive else v >= 0)
    if not ok:
        raise ValueError(f"{name}: expected a {'positive' if positive else 'non-negative'} number, got {v!r}")
    return float(v)
