"""Cross-check of tinylm's corpus BLEU (tinylm/bleu.py) against sacrebleu (skipped without it):
the same hypotheses and references give the same score (to 1e-6), n-gram counts and lengths,
with and without smoothing, lowercased, untokenised, with several references, and the same
13a tokenisation of punctuation-heavy text.

Run: python3 -m pytest tests/test_sacrebleu.py   (pip install sacrebleu)
"""
import numpy as np
import pytest

from tinylm.bleu import corpus_bleu, tokenize_13a

sacrebleu = pytest.importorskip("sacrebleu")

WORDS = ["the", "The", "cat", "sat", "on", "mat", "a", "dog", "is", "don't", "it's", "3.5", "1,000", "2-3",
         "well-known", "(x)", "end.", "yes,", "no!", "what?", '"quoted"', "&amp;", "a/b", "$5", "50%"]


def _corpus(rng, n=40):
    """References of 1..12 words and hypotheses made from them by dropping, repeating and replacing words."""
    refs, hyps = [], []
    for _ in range(n):
        ref = list(rng.choice(WORDS, size=rng.integers(1, 13)))
        hyp = []
        for w in ref:
            r = rng.random()
            if r < 0.15:
                continue                                     # dropped
            hyp.append(str(rng.choice(WORDS)) if r < 0.3 else w)
            if rng.random() < 0.05:
                hyp.append(w)                                # repeated
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return hyps, refs


def _same(ours, theirs):
    assert ours.score == pytest.approx(theirs.score, abs=1e-6)
    assert list(ours.counts) == list(theirs.counts) and list(ours.totals) == list(theirs.totals)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)


@pytest.mark.parametrize("smooth", ["none", "exp"])
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("tokenize", ["13a", "none"])
def test_single_reference(smooth, lowercase, tokenize):
    for seed in range(5):
        hyps, refs = _corpus(np.random.default_rng(seed))
        ours = corpus_bleu(hyps, refs, tokenize=tokenize, lowercase=lowercase, smooth=smooth)
        theirs = sacrebleu.corpus_bleu(hyps, [refs], smooth_method=smooth, lowercase=lowercase, tokenize=tokenize)
        _same(ours, theirs)


@pytest.mark.parametrize("smooth", ["none", "exp"])
def test_several_references(smooth):
    rng = np.random.default_rng(7)
    hyps, refs1 = _corpus(rng)
    _, refs2 = _corpus(rng)
    _, refs3 = _corpus(rng)
    ours = corpus_bleu(hyps, [list(r) for r in zip(refs1, refs2, refs3)], smooth=smooth)
    theirs = sacrebleu.corpus_bleu(hyps, [refs1, refs2, refs3], smooth_method=smooth)   # reference streams
    _same(ours, theirs)


def test_tiny_and_degenerate_corpora():
    for hyps, refs in [(["a"], ["a"]), ([""], ["a b c"]), (["a b"], ["a b c d e"]), (["x y z w v"], ["a"])]:
        for smooth in ("none", "exp"):
            _same(corpus_bleu(hyps, refs, smooth=smooth), sacrebleu.corpus_bleu(hyps, [refs], smooth_method=smooth))


def test_13a_tokenisation_matches():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    theirs = Tokenizer13a()
    rng = np.random.default_rng(3)
    chars = list("abcXYZ019 .,-'\"!?;:()[]{}<>@#$%^&*_+=/\\|~`") + ["&quot;", "&amp;", "&lt;", "&gt;", "<skipped>"]
    for _ in range(300):
        text = "".join(rng.choice(chars, size=rng.integers(0, 30)))
        assert tokenize_13a(text) == theirs(text), repr(text)
