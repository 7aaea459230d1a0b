"""Corpus BLEU (tinylm/bleu.py) on cases worked out by hand, its 13a tokenisation, invariants and errors.
Cross-check against sacrebleu: tests/test_sacrebleu.py."""
import math

import pytest
from hypothesis import given, strategies as st

from tinylm.bleu import corpus_bleu, tokenize_13a


def test_perfect_translation_scores_100():
    refs = ["The cat is on the mat.", "I don't know what to say!"]
    r = corpus_bleu(refs, refs)
    assert r.score == pytest.approx(100.0) and r.bp == 1.0 and r.precisions == (100.0,) * 4


def test_no_four_gram_match_scores_0_without_smoothing():
    # the cat sat on the mat / the cat is on the mat: 1-grams 5/6 (not "sat"), 2-grams "the cat",
    # "on the", "the mat": 3/5, 3-grams "on the mat": 1/4, 4-grams: every one contains "sat": 0/3
    hyp, ref = ["the cat sat on the mat"], ["the cat is on the mat"]
    r = corpus_bleu(hyp, ref)
    assert r.counts == (5, 3, 1, 0) and r.totals == (6, 5, 4, 3)
    assert r.score == 0.0
    # sacrebleu's default "exp" smoothing: the first zero precision becomes 1 / (2 * total)
    smoothed = corpus_bleu(hyp, ref, smooth="exp")
    assert smoothed.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / (2 * 3)) ** 0.25)


def test_hand_worked_score():
    # hyp a b c d e f vs ref a b c d x f (no punctuation, so 13a changes nothing):
    # 1-grams 5/6; 2-grams ab bc cd match, de ef do not: 3/5; 3-grams abc bcd: 2/4; 4-grams abcd: 1/3
    r = corpus_bleu(["a b c d e f"], ["a b c d x f"])
    assert r.counts == (5, 3, 2, 1) and r.totals == (6, 5, 4, 3) and r.bp == 1.0
    assert r.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)   # = 100 (1/12)^(1/4) = 53.73
    assert r.score == pytest.approx(53.7284965911771)


def test_brevity_penalty_value():
    # hypothesis = the first 8 of the reference's 10 tokens: every precision is 1, so BLEU = BP
    ref = "one two three four five six seven eight nine ten"
    r = corpus_bleu([" ".join(ref.split()[:8])], [ref])
    assert r.precisions == (100.0,) * 4 and (r.sys_len, r.ref_len) == (8, 10)
    assert r.bp == pytest.approx(math.exp(1 - 10 / 8))
    assert r.score == pytest.approx(100 * math.exp(-0.25))                # 77.88
    assert corpus_bleu([ref + " eleven"], [ref]).bp == 1.0              # longer: no penalty


def test_clipping_and_multiple_references():
    # Papineni et al.'s example: "the" 7 times; it occurs at most twice in one reference -> 2/7
    hyp = ["the the the the the the the"]
    refs = [["the cat is on the mat", "there is a cat on the mat"]]
    r = corpus_bleu(hyp, refs)
    assert r.counts[0] == 2 and r.totals[0] == 7
    assert corpus_bleu(hyp, [["the cat is on the mat"]]).counts[0] == 2
    # each n-gram may match in either reference: "a cat" only in the second, "cat is on the"
    # and "is on the mat" only in the first; the 3-gram "a cat is" and 4-gram "a cat is on" nowhere
    r2 = corpus_bleu(["a cat is on the mat"], refs)
    assert r2.counts == (6, 5, 3, 2) and r2.totals == (6, 5, 4, 3)
    assert corpus_bleu(["a cat is on the mat"], [refs[0][0]]).counts == (5, 4, 3, 2)


def test_closest_reference_length():
    # hypothesis of 4 tokens, references of 3 and 5: equally close -> the shorter one (3)
    assert corpus_bleu(["a b c d"], [["a b c", "a b c d e"]]).ref_len == 3
    assert corpus_bleu(["a b c d"], [["a b", "a b c d e"]]).ref_len == 5


def test_statistics_are_summed_over_the_corpus():
    """Corpus BLEU is not the mean of sentence BLEUs: the counts add up first."""
    hyps, refs = ["a b c d", "x y"], ["a b c d", "x z"]
    r = corpus_bleu(hyps, refs)
    assert r.counts == (5, 3, 2, 1) and r.totals == (6, 4, 2, 1)
    assert r.score == pytest.approx(100 * (5 / 6 * 3 / 4 * 2 / 2 * 1 / 1) ** 0.25)
    assert corpus_bleu(hyps[1:], refs[1:]).score == 0.0


@pytest.mark.parametrize("text, tokens", [
    ("Hello, world!", "Hello , world !"),
    ("It's 3.14 or 1,000.", "It's 3.14 or 1,000 ."),          # no split inside numbers; apostrophe kept
    ("pages 2-3, well-known", "pages 2 - 3 , well-known"),      # hyphen split only after a digit
    ('&quot;Yes&quot; &amp; (no)', '" Yes " & ( no )'),
    ("end.Next a/b $5 50%", "end . Next a / b $ 5 50 %"),
    ("  spaced \t out  ", "spaced out"),
])
def test_tokenize_13a(text, tokens):
    assert tokenize_13a(text) == tokens


def test_lowercase_and_tokenize_none():
    assert corpus_bleu(["The Cat sat."], ["the cat sat."], lowercase=True).score == pytest.approx(100)
    assert corpus_bleu(["The Cat sat ."], ["the cat sat ."]).counts[0] == 2
    # without tokenisation "sat." and "sat" differ
    assert corpus_bleu(["a b c sat."], ["a b c sat"], tokenize="none").counts[0] == 3


_WORDS = st.sampled_from(["the", "cat", "sat", "on", "mat", "a", ".", ","])
_SENT = st.lists(_WORDS, min_size=0, max_size=9).map(" ".join)


@given(st.lists(st.tuples(_SENT, _SENT), min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_range_and_order_invariance(pairs, random):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    s = corpus_bleu(hyps, refs).score
    assert 0.0 <= s <= 100.0 + 1e-9
    random.shuffle(pairs)
    assert corpus_bleu([h for h, _ in pairs], [r for _, r in pairs]).score == pytest.approx(s)


@given(st.lists(_SENT.filter(lambda s: len(s.split()) >= 4), min_size=1, max_size=4))
def test_identical_corpora_score_100(sents):
    assert corpus_bleu(sents, sents).score == pytest.approx(100.0)


def test_bad_input():
    with pytest.raises(ValueError, match=r"references: expected one entry per hypothesis \(2\), got 1"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="hypotheses: expected a list of str"):
        corpus_bleu("a b c", ["a b c"])
    with pytest.raises(TypeError, match=r"references\[0\]: expected a str or a non-empty list of str"):
        corpus_bleu(["a"], [[]])
    with pytest.raises(ValueError, match="tokenize: expected one of"):
        corpus_bleu(["a"], ["a"], tokenize="intl")
    with pytest.raises(ValueError, match="smooth: expected one of"):
        corpus_bleu(["a"], ["a"], smooth="floor")
    assert corpus_bleu([""], ["a b"]).score == 0.0                    # empty output: 0, no error
