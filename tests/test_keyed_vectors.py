"""KeyedVectors: lookups, cosine similarity, nearest neighbours, 3CosAdd / 3CosMul analogies
(against brute-force loops), the word2vec text format, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.models.keyed_vectors import KeyedVectors, UnknownWordError


def cos(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


@pytest.fixture
def kv(rng):
    words = [f"w{i}" for i in range(20)]
    return KeyedVectors(words, rng.standard_normal((20, 6)).astype(np.float32))


def test_lookups(kv):
    assert len(kv) == 20 and kv.vector_size == 6 and "w3" in kv and "x" not in kv
    np.testing.assert_array_equal(kv["w3"], kv.vectors[3])
    np.testing.assert_array_equal(kv[["w3", "w0"]], kv.vectors[[3, 0]])
    assert kv.get_index("w7") == 7 and kv.index_to_key[7] == "w7"


def test_similarity_is_the_cosine(kv):
    assert kv.similarity("w1", "w2") == pytest.approx(cos(kv["w1"].astype(np.float64), kv["w2"].astype(np.float64)))
    assert kv.similarity("w4", "w4") == pytest.approx(1.0)


def test_nearest_neighbours_match_brute_force(kv):
    got = kv.most_similar("w5", topn=4)
    ranked = sorted((w for w in kv.index_to_key if w != "w5"), key=lambda w: -cos(kv["w5"], kv[w]))
    assert [w for w, _ in got] == ranked[:4]
    assert [s for _, s in got] == pytest.approx([cos(kv["w5"], kv[w]) for w in ranked[:4]], rel=1e-5)


def test_3cosadd_solves_a_planted_analogy():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8))
    gender, royal = rng.standard_normal(8), rng.standard_normal(8)
    person = rng.standard_normal(8)
    words = ["man", "woman", "king", "queen"] + [f"n{i}" for i in range(6)]
    vectors = np.vstack([person, person + gender, person + royal, person + gender + royal, base])
    kv = KeyedVectors(words, vectors)
    assert kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    assert kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1, method="3cosmul")[0][0] == "queen"


def test_3cosadd_and_3cosmul_rankings_match_their_formulas(kv):
    a, b, c = "w1", "w2", "w3"
    cands = [w for w in kv.index_to_key if w not in (a, b, c)]
    add = {d: cos(kv[d], kv[b]) - cos(kv[d], kv[a]) + cos(kv[d], kv[c]) for d in cands}
    cp = lambda d, x: (1 + cos(kv[d], kv[x])) / 2
    mul = {d: cp(d, b) * cp(d, c) / (cp(d, a) + 1e-6) for d in cands}
    got_add = kv.most_similar(positive=[b, c], negative=[a], topn=5)
    got_mul = kv.most_similar(positive=[b, c], negative=[a], topn=5, method="3cosmul")
    assert [w for w, _ in got_add] == sorted(cands, key=lambda d: -add[d])[:5]
    assert [w for w, _ in got_mul] == sorted(cands, key=lambda d: -mul[d])[:5]
    assert [s for _, s in got_mul] == pytest.approx([mul[w] for w, _ in got_mul], rel=1e-5)
    assert kv.most_similar_cosmul([b, c], [a], topn=5) == got_mul


def test_restrict_vocab_limits_the_candidates(kv):
    got = kv.most_similar("w0", topn=10, restrict_vocab=5)
    assert {w for w, _ in got} == {"w1", "w2", "w3", "w4"}


@given(st.integers(0, 2**31), st.integers(1, 12), st.integers(0, 2))
def test_query_words_are_never_returned_and_scores_fall(seed, topn, n_neg):
    rng = np.random.default_rng(seed)
    kv = KeyedVectors([f"w{i}" for i in range(10)], rng.standard_normal((10, 4)))
    pos, neg = ["w0", "w1"][: 2 - (n_neg == 2)], ["w2", "w3"][:n_neg]
    for method in ("3cosadd", "3cosmul"):
        got = kv.most_similar(positive=pos, negative=neg, topn=topn, method=method)
        assert len(got) == min(topn, 10 - len(pos) - len(neg))
        assert not {w for w, _ in got} & set(pos + neg)
        scores = [s for _, s in got]
        assert scores == sorted(scores, reverse=True)


def test_word2vec_text_format_round_trip(kv, tmp_path):
    path = tmp_path / "vectors.txt"
    kv.save_word2vec_format(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "20 6" and lines[1].split()[0] == "w0" and len(lines) == 21
    back = KeyedVectors.load_word2vec_format(path)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(back.vectors, kv.vectors)                 # 9 digits restore float32 exactly


def test_text_format_keeps_unicode_words(tmp_path):
    kv = KeyedVectors(["café", "東京"], np.eye(2, dtype=np.float32))
    kv.save_word2vec_format(tmp_path / "v.txt")
    assert KeyedVectors.load_word2vec_format(tmp_path / "v.txt").index_to_key == ["café", "東京"]


@pytest.mark.parametrize("text, match", [
    ("2 3\na 1 2 3\n", r"the header announces 2 words, the file has 1"),
    ("1 3\na 1 2\n", r"line 2 has 2 numbers after the word, the header says C=3"),
    ("a b\n", r"line 1 must be the header 'V C'"),
    ("1 2\na 1 2\nb 3 4\n", r"more than the 1 words the header announces"),
])
def test_malformed_text_files(tmp_path, text, match):
    (tmp_path / "bad.txt").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        KeyedVectors.load_word2vec_format(tmp_path / "bad.txt")


def test_unknown_word_error_is_a_key_error_and_a_value_error(kv):
    for query in (lambda: kv["nope"], lambda: kv.similarity("w1", "nope"), lambda: kv.most_similar("nope"),
                  lambda: kv.most_similar(positive=["w1"], negative=["nope"])):
        with pytest.raises(UnknownWordError, match=r"word 'nope' is not in the vocabulary \(20 words\)") as e:
            query()
        assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("call, error, match", [
    (lambda kv: kv.most_similar(), ValueError, r"give at least one word"),
    (lambda kv: kv.most_similar("w1", method="3cosdiv"), ValueError,
     r"method: expected one of \('3cosadd', '3cosmul'\)"),
    (lambda kv: kv.most_similar("w1", topn=0), ValueError, r"topn: expected a positive int, got 0"),
    (lambda kv: kv.most_similar(positive=["w1", 3]), TypeError, r"positive: expected words \(str\), got int"),
    (lambda kv: KeyedVectors(["a", "a"], np.zeros((2, 3))), ValueError, r"'a' appears more than once"),
    (lambda kv: KeyedVectors(["a"], np.zeros((2, 3))), ValueError, r"vectors: expected shape \(1, C\)"),
    (lambda kv: KeyedVectors(["a"], np.zeros((1, 3), int)), TypeError, r"vectors: expected a floating-point"),
    (lambda kv: KeyedVectors(["a b"], np.zeros((1, 3))).save_word2vec_format("x"), ValueError, r"contains whitespace"),
])
def test_bad_input(kv, call, error, match):
    with pytest.raises(error, match=match):
        call(kv)
