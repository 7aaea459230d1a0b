"""N-gram language model: count word sequences, then smooth the counts into probabilities.

Derivation: derivations/ngram.md.  Example: examples/ngram.py.  Tests: tests/test_ngram.py and
tests/test_ngram_nltk.py (cross-check against ``nltk.lm``).

An n-gram model predicts a word from the ``n - 1`` words before it, ``p(w | h)``. It has no
parameters to train and no forward or backward pass: :meth:`NGramLM.fit` counts, :meth:`NGramLM.prob`
looks counts up and combines them with one of four smoothings:

====================  =========================================================================
``"mle"``             relative frequency ``c(h w) / c(h)``; an unseen word gets probability 0
``"add_k"``           ``(c(h w) + k) / (c(h) + k V)``: every word gets ``k`` pseudo-counts
``"kneser_ney"``      interpolated Kneser-Ney: absolute discounts, lower orders from continuation
                      counts. ``discount=None`` is modified KN (three discounts per order,
                      Chen & Goodman 1998); a float ``d`` is the single-discount variant of
                      ``nltk.lm.KneserNeyInterpolated(n, discount=d)``, reproduced exactly
``"stupid_backoff"``  ``c(h w) / c(h)``, else ``alpha`` times the score of the shorter context
                      (Brants et al. 2007): a score, NOT a probability (it does not sum to 1)
====================  =========================================================================

Sentences. Each training sentence is padded with ``n - 1`` start symbols ``<s>`` and one end
symbol ``</s>``: ``<s> <s> the cat sat </s>`` for ``n = 3``. Every real word and ``</s>`` is
predicted once; ``<s>`` is only ever context. Words seen fewer than ``min_count`` times (NLTK's
``unk_cutoff``) become ``<unk>``, and so does every word unseen at training time.

Vocabulary. ``model.vocab`` lists the V words the model predicts: ``<unk>``, ``</s>``, then the
training words by decreasing count. For every smoothing except stupid backoff,
``sum(model.prob(w, h) for w in model.vocab) == 1`` for every context ``h``, seen or not.

Counts. For each order ``k = 1..n`` the model keeps the counts ``c_k(h, w)`` its smoothing reads,
grouped by the context ``h`` (a tuple of ``k - 1`` words): ``next_counts[k][h]`` is a dict
``{w: c_k(h, w)}`` of the words that followed ``h``, ``context_stats[k][h]`` its totals. So a query
is at most ``n`` dictionary lookups per order, never a loop over the vocabulary. Kneser-Ney
stores raw counts at order ``n`` and continuation counts (the number of distinct words seen
before ``h w``) below it; the other smoothings store raw counts at every order.

The model lives on the host (dicts keyed by word tuples); NumPy is used only to build a whole
distribution over the vocabulary, which :meth:`NGramLM.generate` samples from.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from tinylm._checks import check_choice, check_positive_int, check_probability, is_real
from tinylm.random import make_rng

__all__ = ["NGramLM", "ContextStats", "modified_kn_discounts", "BOS", "EOS", "UNK", "SMOOTHINGS",
           "DISCOUNT_FALLBACK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHINGS = ("kneser_ney", "add_k", "mle", "stupid_backoff")
# Modified-KN discounts used when the count-of-counts estimate is undefined or out of range
# (tiny corpora): the same defaults as KenLM's --discount_fallback.
DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)


class ContextStats(NamedTuple):
    """Totals of the counts ``c_k(h, .)`` that followed one context ``h``."""
    total: int   # c_k(h) = sum_w c_k(h, w): the denominator of every estimate at this context
    n1: int      # N_1(h .): words seen exactly once after h     (Kneser-Ney's gamma)
    n2: int      # N_2(h .): words seen exactly twice after h    (Kneser-Ney's gamma)
    n3: int      # N_3+(h .): words seen three times or more     (Kneser-Ney's gamma)


def modified_kn_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float]:
    """Chen & Goodman's discounts ``(D1, D2, D3+)`` from the count-of-counts of one order.

    ``n_c`` is the number of n-grams of that order whose count is exactly ``c``. With
    ``Y = n1 / (n1 + 2 n2)``, ``D_c = c - (c + 1) Y n_{c+1} / n_c``. When a count-of-count is 0
    or a discount falls outside ``[0, c]`` (tiny corpora), returns :data:`DISCOUNT_FALLBACK`.
    """
    if min(n1, n2, n3, n4) == 0:
        return DISCOUNT_FALLBACK
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0.0 <= dc <= c for c, dc in zip((1, 2, 3), d)):
        return DISCOUNT_FALLBACK
    return d


class NGramLM:
    """An n-gram language model of any order ``n >= 1``.

    Args:
        n: the order: ``p(w | h)`` conditions on the ``n - 1`` previous words.
        smoothing: ``"kneser_ney"`` (default), ``"add_k"``, ``"mle"`` or ``"stupid_backoff"``.
        k: the pseudo-count of ``add_k`` (``k = 1`` is Laplace smoothing); must be > 0.
        discount: ``kneser_ney`` only. ``None``: modified KN, three discounts per order estimated
            from the data. A float in ``[0, 1]``: one discount at every order >= 2 and an
            undiscounted continuation unigram, exactly ``nltk.lm.KneserNeyInterpolated``.
        alpha: ``stupid_backoff``'s factor for each step back to a shorter context, in (0, 1].
        min_count: training words seen fewer times become ``<unk>`` (NLTK's ``unk_cutoff``).

    ``model.fit(sentences)`` (a list of lists of str) counts; then ``prob``, ``logprob``,
    ``distribution``, ``perplexity`` and ``generate`` query the counts.
    """

    def __init__(self, n: int, smoothing: str = "kneser_ney", k: float = 1.0, *,
                 discount: float | None = None, alpha: float = 0.4, min_count: int = 1):
        self.n = check_positive_int("n", n)
        self.smoothing = check_choice("smoothing", smoothing, SMOOTHINGS)
        if not is_real(k) or not k > 0 or math.isinf(k):
            raise ValueError(f"k: expected a finite number > 0 (add-k pseudo-count), got {k!r}")
        self.k = float(k)
        if discount is not None:
            if smoothing != "kneser_ney":
                raise ValueError(f"discount: only used by smoothing='kneser_ney', got smoothing={smoothing!r}")
            check_probability("discount", discount, allow_one=True)
        self.discount = discount
        if not is_real(alpha) or not 0 < alpha <= 1:
            raise ValueError(f"alpha: expected a number in (0, 1] (stupid-backoff factor), got {alpha!r}")
        self.alpha = float(alpha)
        self.min_count = check_positive_int("min_count", min_count)
        self.vocab: list[str] = []                            # the V predicted words, set by fit

    # ------------------------------------------------------------------ counting
    def fit(self, sentences: Iterable[Sequence[str]]) -> "NGramLM":
        """Count the n-grams of ``sentences`` (lists of str tokens), replacing earlier counts."""
        sentences = _check_sentences("sentences", sentences)
        n = self.n
        word_counts = Counter(w for s in sentences for w in s)
        kept = sorted((w for w, c in word_counts.items() if c >= self.min_count and w != UNK),
                      key=lambda w: (-word_counts[w], w))
        self.vocab = [UNK, EOS] + kept
        self._index = {w: i for i, w in enumerate(self.vocab)}

        # Order n: one n-gram per predicted position (every word and </s>) of each padded sentence.
        grams = {n: Counter()}
        for s in sentences:
            padded = (BOS,) * (n - 1) + self._lookup(s) + (EOS,)
            grams[n].update(zip(*(padded[j:] for j in range(n))))
        # Lower orders from the order above, by dropping each n-gram's first word: the raw count
        # c(g) sums c(v g) over v; the continuation count N1+(. g) counts the distinct v.
        raw_below = self.smoothing != "kneser_ney"
        for order in range(n - 1, 0, -1):
            grams[order] = Counter()
            for g, c in grams[order + 1].items():
                grams[order][g[1:]] += c if raw_below else 1

        # Group by context: next_counts[k][h][w] = c_k(h, w), context_stats[k][h] its totals.
        self.next_counts: dict[int, dict[tuple[str, ...], dict[str, int]]] = {}
        self.context_stats: dict[int, dict[tuple[str, ...], ContextStats]] = {}
        self.discounts: dict[int, tuple[float, float, float]] = {}
        for order, counts in grams.items():
            nxt: dict[tuple[str, ...], dict[str, int]] = {}
            for g, c in counts.items():
                nxt.setdefault(g[:-1], {})[g[-1]] = c
            self.next_counts[order] = nxt
            self.context_stats[order] = {h: _stats(ws.values()) for h, ws in nxt.items()}
            self.discounts[order] = self._discounts_for(order, counts.values())
        return self

    def _discounts_for(self, order: int, counts) -> tuple[float, float, float]:
        """Kneser-Ney's (D1, D2, D3+) at one order (unused by the other smoothings)."""
        if self.discount is None:                             # modified KN: from count-of-counts
            n_c = Counter(c for c in counts if c <= 4)
            return modified_kn_discounts(n_c[1], n_c[2], n_c[3], n_c[4])
        d = 0.0 if order == 1 else float(self.discount)       # NLTK: the unigram is not discounted
        return (d, d, d)

    # ------------------------------------------------------------------ queries
    def prob(self, word: str, context: Sequence[str] | None = None) -> float:
        """``p(word | context)``: O(n) dictionary lookups.

        ``context`` is the preceding words (a list or tuple of str; ``None`` = no context). Only
        its last ``n - 1`` words count; a shorter context queries the lower-order estimate, so
        pass ``"<s>"`` explicitly for a sentence start. Unknown words become ``<unk>``.
        """
        return self._prob(self._word(word), self._context(context))

    def logprob(self, word: str, context: Sequence[str] | None = None) -> float:
        """Natural log of :meth:`prob`; ``-inf`` where the probability is 0 (``mle``, unseen event)."""
        p = self.prob(word, context)
        return math.log(p) if p > 0 else -math.inf

    def distribution(self, context: Sequence[str] | None = None) -> np.ndarray:
        """``[prob(w, context) for w in self.vocab]`` as a float64 array of shape (V,), built from
        the followers of each context rather than by V separate queries."""
        return self._distribution(self._context(context))

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """``exp(-mean log p)`` over every word and ``</s>`` of ``sentences`` (padded like training).

        ``mle`` gives an unseen event probability 0, and then the perplexity is ``inf``: one
        impossible word makes the whole text impossible. Every other smoothing gives each word
        of the vocabulary a positive probability. With ``stupid_backoff`` the result is computed
        from scores that do not sum to 1, so it is not a true perplexity.
        """
        sentences = _check_sentences("sentences", sentences)
        self._check_fitted()
        n, log_sum, count = self.n, 0.0, 0
        for s in sentences:
            padded = (BOS,) * (n - 1) + self._lookup(s) + (EOS,)
            for i in range(n - 1, len(padded)):
                p = self._prob(padded[i], padded[i - n + 1:i])
                if p <= 0:
                    return math.inf
                log_sum += math.log(p)
                count += 1
        return math.exp(-log_sum / count)

    def generate(self, max_len: int = 20, context: Sequence[str] | None = None, seed=None) -> list[str]:
        """Sample one sentence: words are drawn from ``p(. | last n-1 words)`` until ``</s>`` or
        ``max_len`` words. ``context`` gives the sentence's first words (``<s>`` is prepended);
        they are not repeated in the output. ``seed``: None (tinylm's global generator), an int,
        or a numpy Generator. Stupid-backoff scores are normalised before sampling.
        """
        max_len = check_positive_int("max_len", max_len)
        history = list((BOS,) * (self.n - 1) + self._context(context))
        rng = make_rng(seed)
        out: list[str] = []
        for _ in range(max_len):
            h = tuple(history[len(history) - self.n + 1:]) if self.n > 1 else ()
            cdf = np.cumsum(self._distribution(h))            # (V,)
            i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))   # inverse CDF
            word = self.vocab[min(i, len(self.vocab) - 1)]
            if word == EOS:
                break
            out.append(word)
            history.append(word)
        return out

    # ------------------------------------------------------------------ smoothings, one word
    def _prob(self, w: str, h: tuple[str, ...]) -> float:
        if self.smoothing == "kneser_ney":
            return self._kneser_ney(w, h)
        if self.smoothing == "add_k":
            return self._add_k(w, h)
        if self.smoothing == "mle":
            return self._mle(w, h)
        return self._stupid_backoff(w, h)

    def _mle(self, w, h):
        """c(h w) / c(h) at the longest suffix of h that was seen (h itself if it was)."""
        for start in range(len(h) + 1):
            ctx = h[start:]
            stats = self.context_stats[len(ctx) + 1].get(ctx)
            if stats is not None:
                return self.next_counts[len(ctx) + 1][ctx].get(w, 0) / stats.total
        return 0.0                                            # not reached after fit: () is seen

    def _add_k(self, w, h):
        """(c(h w) + k) / (c(h) + k V); an unseen context gives the uniform 1/V."""
        order = len(h) + 1
        stats = self.context_stats[order].get(h)
        if stats is None:
            return 1.0 / len(self.vocab)
        return (self.next_counts[order][h].get(w, 0) + self.k) / (stats.total + self.k * len(self.vocab))

    def _kneser_ney(self, w, h):
        """p_k(w|h) = (c_k(h,w) - D(c_k(h,w))) / c_k(h) + gamma_k(h) p_{k-1}(w|h[1:]),
        from the uniform p_0 = 1/V up to k = len(h) + 1; an unseen context passes p_{k-1} on."""
        p = 1.0 / len(self.vocab)                             # order 0: uniform
        for order in range(1, len(h) + 2):
            ctx = h[len(h) - order + 1:]                      # the last order-1 words of h
            stats = self.context_stats[order].get(ctx)
            if stats is None:
                continue                                      # alpha = 0, gamma = 1
            d1, d2, d3 = self.discounts[order]
            c = self.next_counts[order][ctx].get(w, 0)
            d = (0.0, d1, d2, d3)[min(c, 3)]                  # D(c): 0 for unseen words
            gamma = (d1 * stats.n1 + d2 * stats.n2 + d3 * stats.n3) / stats.total
            p = (c - d) / stats.total + gamma * p
        return p

    def _stupid_backoff(self, w, h):
        """c(h w) / c(h) at the longest suffix of h with c(h w) > 0, times alpha per word dropped."""
        for start in range(len(h) + 1):
            ctx = h[start:]
            c = self.next_counts[len(ctx) + 1].get(ctx, {}).get(w, 0)
            if c > 0:
                return self.alpha ** start * c / self.context_stats[len(ctx) + 1][ctx].total
        return 0.0                                            # w never seen: score 0

    # ------------------------------------------------------------------ smoothings, all words
    def _followers(self, order: int, ctx: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary ids and counts of the words seen after ctx: (F,), (F,)."""
        nxt = self.next_counts[order][ctx]
        ids = np.fromiter((self._index[w] for w in nxt), dtype=np.int64, count=len(nxt))
        return ids, np.fromiter(nxt.values(), dtype=np.float64, count=len(nxt))

    def _distribution(self, h: tuple[str, ...]) -> np.ndarray:
        V = len(self.vocab)
        if self.smoothing == "kneser_ney":                    # same recursion as _kneser_ney
            p = np.full(V, 1.0 / V)                           # (V,)
            for order in range(1, len(h) + 2):
                ctx = h[len(h) - order + 1:]
                stats = self.context_stats[order].get(ctx)
                if stats is None:
                    continue
                d1, d2, d3 = self.discounts[order]
                ids, c = self._followers(order, ctx)
                d = np.array([0.0, d1, d2, d3])[np.minimum(c, 3).astype(np.int64)]
                p *= (d1 * stats.n1 + d2 * stats.n2 + d3 * stats.n3) / stats.total   # gamma p_{k-1}
                p[ids] += (c - d) / stats.total
            return p
        if self.smoothing == "add_k":
            order = len(h) + 1
            stats = self.context_stats[order].get(h)
            if stats is None:
                return np.full(V, 1.0 / V)
            p = np.full(V, self.k)
            ids, c = self._followers(order, h)
            p[ids] += c
            return p / (stats.total + self.k * V)
        if self.smoothing == "mle":
            for start in range(len(h) + 1):
                ctx = h[start:]
                stats = self.context_stats[len(ctx) + 1].get(ctx)
                if stats is not None:
                    p = np.zeros(V)
                    ids, c = self._followers(len(ctx) + 1, ctx)
                    p[ids] = c / stats.total
                    return p
            return np.zeros(V)
        s = np.zeros(V)                                       # stupid backoff, shortest context first
        for order in range(1, len(h) + 2):
            ctx = h[len(h) - order + 1:]
            s *= self.alpha                                   # words unseen after ctx back off
            if ctx in self.context_stats[order]:
                ids, c = self._followers(order, ctx)
                s[ids] = c / self.context_stats[order][ctx].total
        return s

    # ------------------------------------------------------------------ input handling
    def _check_fitted(self):
        if not self.vocab:
            raise RuntimeError("NGramLM: call fit(sentences) before querying the model")

    def _lookup(self, words: Sequence[str]) -> tuple[str, ...]:
        """Map words outside the vocabulary to <unk>."""
        index = self._index
        return tuple(w if w in index else UNK for w in words)

    def _word(self, word) -> str:
        self._check_fitted()
        if not isinstance(word, str):
            raise TypeError(f"word: expected a str, got {type(word).__name__}")
        if word == BOS:
            raise ValueError(f"word: {BOS!r} is only ever context, the model never predicts it")
        return word if word in self._index else UNK

    def _context(self, context) -> tuple[str, ...]:
        """The last n-1 words of context, unknown words mapped to <unk> (<s> is kept)."""
        self._check_fitted()
        if context is None:
            return ()
        if not isinstance(context, (list, tuple)) or not all(isinstance(w, str) for w in context):
            got = type(context).__name__ if not isinstance(context, (list, tuple)) else "a non-str token"
            raise TypeError(f"context: expected None or a list/tuple of str, got {got}")
        tail = tuple(context)[max(len(context) - self.n + 1, 0):] if self.n > 1 else ()
        return tuple(w if (w in self._index or w == BOS) else UNK for w in tail)

    def __repr__(self) -> str:
        extra = {"add_k": f", k={self.k}", "stupid_backoff": f", alpha={self.alpha}",
                 "kneser_ney": f", discount={self.discount}"}.get(self.smoothing, "")
        fitted = f", V={len(self.vocab)}" if self.vocab else ", unfitted"
        return f"NGramLM(n={self.n}, smoothing={self.smoothing!r}{extra}, min_count={self.min_count}{fitted})"


def _stats(counts) -> ContextStats:
    total = n1 = n2 = n3 = 0
    for c in counts:
        total += c
        if c == 1:
            n1 += 1
        elif c == 2:
            n2 += 1
        else:
            n3 += 1
    return ContextStats(total, n1, n2, n3)


def _check_sentences(name: str, sentences) -> list[Sequence[str]]:
    """A non-empty list of sentences, each a list/tuple of str without <s> or </s>."""
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise TypeError(f"{name}: expected a list of sentences (lists of str), got {type(sentences).__name__}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError(f"{name}: expected at least one sentence, got an empty corpus")
    for i, s in enumerate(sentences):
        if not isinstance(s, (list, tuple)):
            raise TypeError(f"{name}[{i}]: expected a list of str tokens, got {type(s).__name__}")
        if not all(isinstance(w, str) for w in s):
            j = next(j for j, w in enumerate(s) if not isinstance(w, str))
            raise TypeError(f"{name}[{i}][{j}]: expected a str token, got {type(s[j]).__name__}")
        if BOS in s or EOS in s:
            raise ValueError(f"{name}[{i}]: contains the reserved boundary token {BOS!r} or {EOS!r}; "
                             f"the model adds sentence boundaries itself")
    return sentences
