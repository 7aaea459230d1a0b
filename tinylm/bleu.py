"""Corpus BLEU (Papineni et al. 2002), the standard BLEU-4 that sacrebleu reports.

For a corpus of hypotheses (system outputs) and one or more references per hypothesis:

1. Tokenise every sentence (``"13a"``, the mteval-v13a rules sacrebleu applies by default, or
   ``"none"``: split on whitespace).
2. Modified n-gram precision, n = 1..4: each hypothesis n-gram counts as matched at most as many
   times as it occurs in the reference where it occurs most (clipping, so "the the the" cannot
   score on one "the"); matches and hypothesis n-gram totals are summed over the whole corpus
   before dividing: ``p_n = sum matches_n / sum totals_n``.
3. Brevity penalty: with c the total hypothesis length and r the total reference length (for
   each sentence the reference length closest to the hypothesis's, the shorter one on a tie),
   ``BP = 1`` if c > r, else ``exp(1 - r / c)``.
4. ``BLEU = 100 * BP * exp(mean_n log p_n)`` (geometric mean). Without smoothing any p_n = 0 makes
   BLEU 0. ``smooth="exp"`` is sacrebleu's default for corpus BLEU: the k-th zero precision
   becomes ``1 / (2^k totals_n)`` (no match at all still gives 0); it only matters for tiny corpora.

Test: tests/test_bleu.py (hand-worked cases), tests/test_sacrebleu.py (against sacrebleu).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

__all__ = ["BLEUScore", "corpus_bleu", "tokenize_13a", "TOKENIZERS", "SMOOTHING"]

TOKENIZERS = ("13a", "none")
SMOOTHING = ("none", "exp")
MAX_ORDER = 4

# mteval-v13a's punctuation rule, one pass each, in this order:
_13A_RULES = [
    # Every ASCII symbol except the apostrophe, hyphen, period and comma becomes its own token.
    # The class, range by range: { | } ~   [ \ ] ^ _ `   space ! " # $ % &   ( ) * +   : ; < = > ? @   /
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),     # period and comma, unless after a digit ...
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),     # ... or unless before one (keeps 3.14, 1,000)
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),          # a hyphen after a digit (2-3 -> 2 - 3)
]


def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenisation (sacrebleu's default ``"13a"``); returns the tokens joined by spaces.

    First the SGML clean-up of the NIST script (drop ``<skipped>``, join hyphenated line breaks
    and lines, unescape ``&quot; &amp; &lt; &gt;``), then the punctuation rules above, then
    whitespace is collapsed. Case is kept.
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


@dataclass(frozen=True)
class BLEUScore:
    """The score (0..100) and the statistics it is made of (``counts[n-1]``/``totals[n-1]``: matched
    and total hypothesis n-grams over the corpus; ``precisions`` in percent)."""

    score: float
    counts: tuple[int, ...]
    totals: tuple[int, ...]
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        ratio = self.sys_len / self.ref_len if self.ref_len else 0.0
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} ratio = {ratio:.3f} "
                f"hyp_len = {self.sys_len} ref_len = {self.ref_len})")


def _references(references, n_hyp: int) -> list[list[str]]:
    if not isinstance(references, (list, tuple)):
        raise TypeError(f"references: expected a list with one entry per hypothesis, got {type(references).__name__}")
    if len(references) != n_hyp:
        raise ValueError(f"references: expected one entry per hypothesis ({n_hyp}), got {len(references)}")
    out = []
    for i, r in enumerate(references):
        refs = [r] if isinstance(r, str) else list(r)
        if not refs or not all(isinstance(x, str) for x in refs):
            raise TypeError(f"references[{i}]: expected a str or a non-empty list of str, got {r!r}")
        out.append(refs)
    return out


def corpus_bleu(hypotheses: Sequence[str], references, tokenize: str = "13a", lowercase: bool = False,
                smooth: str = "none") -> BLEUScore:
    """Corpus BLEU-4 of ``hypotheses`` against ``references``.

    ``hypotheses``: a list of N strings (detokenised system outputs). ``references``: a list of N
    entries, each a string or a list of strings (several references for that hypothesis; their
    number may vary). Note that sacrebleu takes references the other way round, as reference
    *streams*: ``sacrebleu.corpus_bleu(hyps, [[r1_of_each], [r2_of_each], ...])``.
    ``tokenize``: "13a" (default, as sacrebleu) or "none". ``lowercase``: case-insensitive BLEU.
    ``smooth``: "none" (standard BLEU; default) or "exp" (sacrebleu's default). Returns a
    :class:`BLEUScore`; ``float(result.score)`` is the number usually reported.
    """
    if isinstance(hypotheses, str) or not all(isinstance(h, str) for h in hypotheses):
        raise TypeError("hypotheses: expected a list of str (one detokenised sentence each)")
    refs = _references(references, len(hypotheses))
    if tokenize not in TOKENIZERS:
        raise ValueError(f"tokenize: expected one of {TOKENIZERS}, got {tokenize!r}")
    if smooth not in SMOOTHING:
        raise ValueError(f"smooth: expected one of {SMOOTHING}, got {smooth!r}")

    def words(s: str) -> list[str]:
        s = s.lower() if lowercase else s
        return (tokenize_13a(s) if tokenize == "13a" else s).split()

    counts, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    sys_len = ref_len = 0
    for hyp, rs in zip(hypotheses, refs):
        h = words(hyp)
        r_tokens = [words(r) for r in rs]
        sys_len += len(h)
        # the reference length closest to the hypothesis length; on a tie the shorter one
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in r_tokens)[1]
        for n in range(1, MAX_ORDER + 1):
            hyp_ngrams = _ngrams(h, n)
            max_ref = Counter()
            for r in r_tokens:
                max_ref |= _ngrams(r, n)                     # | keeps the larger count of each n-gram
            counts[n - 1] += sum(min(c, max_ref[g]) for g, c in hyp_ngrams.items())   # clipped matches
            totals[n - 1] += max(len(h) - n + 1, 0)
    return _score(counts, totals, sys_len, ref_len, smooth)


def _score(counts: list[int], totals: list[int], sys_len: int, ref_len: int, smooth: str) -> BLEUScore:
    precisions, log_sum, zeros_seen = [], 0.0, 0
    for m, t in zip(counts, totals):
        if t == 0:                                           # hypotheses shorter than n: no n-grams at all
            p = 0.0
        elif m > 0:
            p = m / t
        elif smooth == "exp":
            zeros_seen += 1
            p = 1.0 / (2 ** zeros_seen * t)
        else:
            p = 0.0
        precisions.append(100.0 * p)
        log_sum += math.log(p) if p > 0 else -math.inf
    bp = 1.0 if sys_len > ref_len else (math.exp(1.0 - ref_len / sys_len) if sys_len > 0 else 0.0)
    # no match at all is 0 even with smoothing (as sacrebleu): smoothing fills gaps, not nothing
    nothing = log_sum == -math.inf or sys_len == 0 or not any(counts)
    score = 0.0 if nothing else 100.0 * bp * math.exp(log_sum / MAX_ORDER)
    return BLEUScore(score, tuple(counts), tuple(totals), tuple(precisions), bp, sys_len, ref_len)
