"""Numba training kernels of word2vec: the loop of :func:`tinylm.models.word2vec.train_epoch_reference`,
compiled, and run lock-free over worker threads.

Derivation: derivations/word2vec.md.  Model and NumPy reference: tinylm/models/word2vec.py.
Tests: tests/test_word2vec.py (one kernel step == one NumPy reference step; one kernel epoch on one
thread == the reference epoch).

Version history
---------------
v1  one example at a time (word2vec.c's design): :func:`sgd_step` is one SGD step on the loss of one
    example, exactly the gradient of derivations/word2vec.md; :func:`train_epoch` runs it over the
    corpus with ``prange`` over jobs of about 10,000 words. Threads update the shared weights without
    locks ("Hogwild", as word2vec.c and gensim do): two threads rarely touch the same row at the same
    moment, and a lost update costs nothing measurable.

Differences from word2vec.c, kept on purpose so that a kernel step is exactly a gradient step:

* the sigmoid is computed exactly, not looked up in a 1000-entry table clipped at |x| = 6;
* within one example every score is computed from the weights as they were before the example
  (word2vec.c updates an output row before it reads the next one, which differs only when a noise
  word is drawn twice for the same example).

Like word2vec.c and gensim, CBOW moves each of its ``n`` context vectors by ``alpha * dh``: ``n``
times their gradient ``dh / n`` (the hidden vector is their mean), i.e. input vectors learn at
``n * alpha``. With the plain gradient they learn ``n`` times slower and CBOW falls well behind
gensim's (derivations/word2vec.md).

Randomness is a 48-bit linear congruential generator, as in word2vec.c and gensim, seeded per job
(``job_seeds``), so results do not depend on which thread runs which job; with one worker a run is
repeatable bit for bit. Draws, in order, for each sentence: one uniform number per word when
subsampling, then for each kept position one window shrink ``b`` and, with negative sampling, ``K``
noise words per example.
"""
from __future__ import annotations

import contextlib
import math

import numba
import numpy as np
from numba import njit, prange

__all__ = ["LCG_MULTIPLIER", "LCG_INCREMENT", "LCG_MASK", "MAX_SENTENCE_LEN", "sgd_step", "train_epoch",
           "lcg_next", "sample_noise",
           "numba_threads"]

# word2vec.c's generator (the constants of java.util.Random), kept to 48 bits as gensim does.
LCG_MULTIPLIER = 25214903917
LCG_INCREMENT = 11
LCG_MASK = (1 << 48) - 1
MAX_SENTENCE_LEN = 10_000       # longer sentences are split (gensim: MAX_WORDS_IN_BATCH)

_MUL, _INC, _MASK48, _SHIFT = np.uint64(LCG_MULTIPLIER), np.uint64(LCG_INCREMENT), np.uint64(LCG_MASK), np.uint64(16)
_TWO_TO_MINUS_32 = 1.0 / 4294967296.0

# Reassociation lets LLVM vectorise the dot products; no flag that assumes finite values.
_FAST = {"reassoc", "contract", "nsz"}


@njit(cache=True)
def lcg_next(state):
    """The next state of the 48-bit generator (``state`` is a uint64)."""
    return (state * _MUL + _INC) & _MASK48


@njit(cache=True)
def _high32(state):
    """The 32 high bits of the 48-bit state, the part word2vec.c uses (the low bits are weak)."""
    return state >> _SHIFT


@njit(cache=True)
def sample_noise(noise_cum, state):
    """The noise word for generator ``state``: the first ``w`` with ``noise_cum[w] > r``,
    ``r = high32(state) mod noise_cum[-1]`` (a binary search in the cumulative table)."""
    r = np.int64(_high32(state) % np.uint64(noise_cum[-1]))
    lo, hi = 0, noise_cum.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if noise_cum[mid] > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, fastmath=_FAST)
def _output_layer_step(h, w_out, rows, labels, n, alpha, dh, dscore, compute_loss):
    """SGD on the rows ``w_out[rows[:n]]`` of ``L = sum_j softplus(x_j) - y_j x_j``, ``x_j = h . u_j``.

    Adds ``dL/dh`` into ``dh``; returns ``L`` (0.0 unless ``compute_loss``).
    """
    C = h.shape[0]
    loss = 0.0
    for j in range(n):                                   # pass 1: scores from the current weights
        r = rows[j]
        x = np.float32(0.0)
        for c in range(C):
            x += h[c] * w_out[r, c]                      # x_j = h . u_j
        e = math.exp(-abs(x))                            # in (0, 1]: no overflow
        sig = 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
        g = np.float32(sig - labels[j])                  # dL/dx_j = sigmoid(x_j) - y_j
        dscore[j] = g
        for c in range(C):
            dh[c] += g * w_out[r, c]                     # dL/dh += dL/dx_j u_j
        if compute_loss:
            loss += max(x, 0.0) + math.log1p(e) - labels[j] * x   # softplus(x_j) - y_j x_j
    for j in range(n):                                   # pass 2: update the output rows
        r = rows[j]
        step = np.float32(alpha * dscore[j])
        for c in range(C):
            w_out[r, c] -= step * h[c]                   # dL/du_j = dL/dx_j h
    return loss


@njit(cache=True, fastmath=_FAST)
def sgd_step(w_in, in_rows, n_in, w_ns, ns_rows, ns_labels, n_ns, w_hs, hs_rows, hs_labels, n_hs,
             alpha, compute_loss, h, dh, dscore):
    """One SGD step on the loss of one example; returns that loss (before the step). Output rows
    move by ``alpha`` times their gradient, input rows by ``n_in * alpha`` times theirs (``alpha * dh``).

    Shapes: w_in (V, C); in_rows (>= n_in,) input words (skip-gram: the one context word; CBOW:
    the context words); w_ns (V, C) and ns_rows / ns_labels (>= n_ns,) the negative-sampling
    outputs (target with label 1, noise words with label 0); w_hs (V - 1, C) and hs_rows /
    hs_labels (>= n_hs,) the hierarchical-softmax outputs (the target's Huffman path, label
    ``1 - code``). ``n_ns = 0`` or ``n_hs = 0`` switches that output layer off. ``h``, ``dh``
    (C,) and ``dscore`` (at least the longest output list) are scratch buffers.
    """
    C = w_in.shape[1]
    inv_n = 1.0 / n_in
    for c in range(C):
        h[c] = 0.0
        dh[c] = 0.0
    for i in range(n_in):                                # h = mean of the input rows      (C,)
        r = in_rows[i]
        for c in range(C):
            h[c] += w_in[r, c]
    for c in range(C):
        h[c] *= np.float32(inv_n)
    loss = 0.0
    if n_ns > 0:
        loss += _output_layer_step(h, w_ns, ns_rows, ns_labels, n_ns, alpha, dh, dscore, compute_loss)
    if n_hs > 0:
        loss += _output_layer_step(h, w_hs, hs_rows, hs_labels, n_hs, alpha, dh, dscore, compute_loss)
    step = np.float32(alpha)                             # dL/dw_in[row] = dh / n; the rate is n alpha (word2vec.c)
    for i in range(n_in):
        r = in_rows[i]
        for c in range(C):
            w_in[r, c] -= step * dh[c]
    return loss


@njit(cache=True)
def _draw_outputs(state, target, negative, noise_cum, ns_rows):
    """Fill ``ns_rows`` with the target and ``negative`` noise words (a noise word equal to the
    target is dropped, as in word2vec.c); return ``(state, count)``."""
    ns_rows[0] = target
    n = 1
    for _ in range(negative):
        state = lcg_next(state)
        w = sample_noise(noise_cum, state)
        if w != target:
            ns_rows[n] = w
            n += 1
    return state, n


@njit(cache=True)
def _train_job(first, last, words, sent_bounds, seed, w_in, w_ns, w_hs, keep, subsample, noise_cum,
               points, hs_labels, code_lens, sg, window, negative, hs, alpha_start, alpha_end,
               progress_start, progress_per_word, compute_loss):
    """Train on sentences ``first .. last - 1``; return ``(loss, examples)``."""
    C = w_in.shape[1]
    h = np.empty(C, np.float32)
    dh = np.empty(C, np.float32)
    dscore = np.empty(max(negative + 1, points.shape[1]), np.float32)
    longest = 0
    for s in range(first, last):
        longest = max(longest, sent_bounds[s + 1] - sent_bounds[s])
    kept = np.empty(longest, np.int32)                   # the words of a sentence that survive subsampling
    in_rows = np.empty(2 * window, np.int32)
    ns_rows = np.empty(negative + 1, np.int32)
    ns_labels = np.zeros(negative + 1, np.float32)
    ns_labels[0] = 1.0                                   # the target; the rest are noise (label 0)
    state = seed
    loss = 0.0
    examples = 0
    for s in range(first, last):
        start, stop = sent_bounds[s], sent_bounds[s + 1]
        progress = progress_start + progress_per_word * start
        alpha = alpha_start - (alpha_start - alpha_end) * progress    # linear decay over all epochs
        n = 0
        for t in range(start, stop):                     # frequent-word subsampling
            w = words[t]
            if subsample:
                state = lcg_next(state)
                if _high32(state) * _TWO_TO_MINUS_32 >= keep[w]:
                    continue
            kept[n] = w
            n += 1
        for i in range(n):
            state = lcg_next(state)
            reach = window - np.int64(_high32(state) % np.uint64(window))   # dynamic window in [1, window]
            lo, hi = max(0, i - reach), min(n, i + reach + 1)
            target = kept[i]
            n_hs = code_lens[target] if hs else 0
            if sg:                                       # each context word predicts the center word
                for j in range(lo, hi):
                    if j == i:
                        continue
                    in_rows[0] = kept[j]
                    n_ns = 0
                    if negative > 0:
                        state, n_ns = _draw_outputs(state, target, negative, noise_cum, ns_rows)
                    loss += sgd_step(w_in, in_rows, 1, w_ns, ns_rows, ns_labels, n_ns, w_hs, points[target],
                                     hs_labels[target], n_hs, alpha, compute_loss, h, dh, dscore)
                    examples += 1
            else:                                        # the mean of the context predicts the center word
                n_in = 0
                for j in range(lo, hi):
                    if j != i:
                        in_rows[n_in] = kept[j]
                        n_in += 1
                if n_in == 0:
                    continue
                n_ns = 0
                if negative > 0:
                    state, n_ns = _draw_outputs(state, target, negative, noise_cum, ns_rows)
                loss += sgd_step(w_in, in_rows, n_in, w_ns, ns_rows, ns_labels, n_ns, w_hs, points[target],
                                 hs_labels[target], n_hs, alpha, compute_loss, h, dh, dscore)
                examples += 1
    return loss, examples


@njit(parallel=True, cache=True)
def train_epoch(words, sent_bounds, job_bounds, job_seeds, w_in, w_ns, w_hs, keep, subsample, noise_cum,
                points, hs_labels, code_lens, sg, window, negative, hs, alpha_start, alpha_end,
                progress_start, progress_per_word, compute_loss):
    """One epoch over the corpus, jobs in parallel (Hogwild); returns per-job ``(losses, examples)``.

    Shapes: words (N,) int32 word ids of the whole corpus; sent_bounds (S + 1,) int64, sentence s
    is ``words[sent_bounds[s]:sent_bounds[s + 1]]``; job_bounds (J + 1,) int64, job k trains on
    sentences ``job_bounds[k] .. job_bounds[k + 1] - 1`` with generator seed ``job_seeds[k]``
    (uint64); w_in, w_ns (V, C) float32 and w_hs (V - 1, C) float32, updated in place (w_ns is
    (0, C) when ``negative = 0``, w_hs (0, C) when ``hs`` is off); keep (V,) float64 keep
    probabilities; noise_cum (V,) int64; points (V, L) int32, hs_labels (V, L) float32 (``1 - code``),
    code_lens (V,) int64: the Huffman paths (L = 0 when ``hs`` is off).
    The learning rate at a sentence starting at corpus position ``t`` is
    ``alpha_start - (alpha_start - alpha_end) * (progress_start + progress_per_word * t)``.
    """
    n_jobs = job_bounds.shape[0] - 1
    losses = np.zeros(n_jobs)
    examples = np.zeros(n_jobs, np.int64)
    for k in prange(n_jobs):
        losses[k], examples[k] = _train_job(
            job_bounds[k], job_bounds[k + 1], words, sent_bounds, job_seeds[k], w_in, w_ns, w_hs, keep,
            subsample, noise_cum, points, hs_labels, code_lens, sg, window, negative, hs, alpha_start,
            alpha_end, progress_start, progress_per_word, compute_loss)
    return losses, examples


@contextlib.contextmanager
def numba_threads(n: int):
    """Run Numba's parallel loops on ``min(n, NUMBA_NUM_THREADS)`` threads inside the block, each
    thread taking the next job when it is free (chunk size 1) rather than a fixed share: jobs
    then run in corpus order, and a thread slowed down by other processes does not hold the
    others back."""
    old_threads, old_chunk = numba.get_num_threads(), numba.get_parallel_chunksize()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old_chunk)
        numba.set_num_threads(old_threads)
