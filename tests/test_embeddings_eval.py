"""Word-similarity and analogy evaluation: readers (on files in the real formats, CRLF included),
Spearman against scipy on hand-computed cosines, analogy accuracy against a per-question loop,
out-of-vocabulary accounting, case folding, and the real data sets' published sizes."""
import types

import numpy as np
import pytest
from scipy.stats import spearmanr

from tinylm import embeddings_eval as ev
from tinylm.models.keyed_vectors import KeyedVectors

DATA = ev.default_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"evaluation data not found at {DATA}")


def write_fixture_dir(root):
    """A miniature copy of shared/data/embeddings, in the original formats and line endings."""
    (root / "wordsim353").mkdir(parents=True)
    (root / "simlex999").mkdir()
    (root / "men").mkdir()
    (root / "analogy").mkdir()
    (root / "wordsim353/combined.csv").write_bytes(
        b"Word 1,Word 2,Human (mean)\r\nking,queen,8.5\r\nking,man,5.0\r\nParis,France,9.0\r\nking,zzz,1.0\r\n")
    (root / "wordsim353/wordsim_similarity_goldstandard.txt").write_bytes(b"king\tqueen\t8.5\nking\tman\t5.0\n")
    (root / "wordsim353/wordsim_relatedness_goldstandard.txt").write_bytes(b"paris\tfrance\t9.0\nking\tman\t5.0\n")
    (root / "simlex999/SimLex-999.txt").write_bytes(
        b"word1\tword2\tPOS\tSimLex999\tconc(w1)\tconc(w2)\tconcQ\tAssoc(USF)\tSimAssoc333\tSD(SimLex)\r\n"
        b"king\tqueen\tN\t7.5\t5\t5\t4\t1\t1\t0.5\r\nman\twoman\tN\t6.0\t5\t5\t4\t1\t1\t0.5\r\n")
    (root / "men/MEN_dataset_natural_form_full").write_bytes(b"king queen 45.000000\nman queen 20.000000\n")
    (root / "analogy/questions-words.txt").write_bytes(
        b": family\nman woman king queen\nMan Woman King Queen\nman woman zzz queen\n"
        b": gram-test\nking queen man woman\n")


def planted_kv():
    """man : woman :: king : queen holds exactly; Paris/France and distractors added."""
    rng = np.random.default_rng(1)
    person, gender, royal = rng.standard_normal((3, 10))
    words = ["man", "woman", "king", "queen", "Paris", "france"] + [f"n{i}" for i in range(6)]
    vectors = np.vstack([person, person + gender, person + royal, person + gender + royal,
                         rng.standard_normal((8, 10))])
    return KeyedVectors(words, vectors.astype(np.float32))


# --- readers -------------------------------------------------------------------------------------------

def test_readers_handle_each_format(tmp_path):
    write_fixture_dir(tmp_path)
    ws = ev.read_similarity_set("wordsim353", tmp_path)
    assert ws[0] == ev.WordPair("king", "queen", 8.5) and len(ws) == 4          # header skipped, CRLF stripped
    assert ev.read_similarity_set("wordsim353_rel", tmp_path)[0] == ev.WordPair("paris", "france", 9.0)
    assert ev.read_similarity_set("simlex999", tmp_path) == [ev.WordPair("king", "queen", 7.5),
                                                             ev.WordPair("man", "woman", 6.0)]
    assert ev.read_similarity_set("men", tmp_path)[1] == ev.WordPair("man", "queen", 20.0)
    qs = ev.read_analogies(tmp_path / ev.ANALOGY_SET)
    assert qs[0] == ev.AnalogyQuestion("family", "man", "woman", "king", "queen") and qs[-1].section == "gram-test"


@needs_data
def test_real_data_sets_have_their_published_sizes():
    sizes = {"wordsim353": 353, "wordsim353_sim": 203, "wordsim353_rel": 252, "simlex999": 999, "men": 3000}
    for name, n in sizes.items():
        pairs = ev.read_similarity_set(name, DATA)
        assert len(pairs) == n, name
        assert all(isinstance(p.score, float) and not p.word2.endswith("\r") for p in pairs)
    questions = ev.read_analogies(DATA / ev.ANALOGY_SET)
    sections = {}
    for q in questions:
        sections[q.section] = sections.get(q.section, 0) + 1
    assert len(questions) == 19544 and len(sections) == 14
    assert sections["capital-common-countries"] == 506 and sections["gram8-plural"] == 1332
    assert sum(v for k, v in sections.items() if not k.startswith("gram")) == 8869


# --- similarity ----------------------------------------------------------------------------------------

def test_similarity_spearman_matches_scipy_on_hand_computed_cosines(rng):
    kv = KeyedVectors([f"w{i}" for i in range(8)], rng.standard_normal((8, 5)))
    pairs = [ev.WordPair(f"w{i}", f"w{j}", float(rng.uniform(0, 10))) for i in range(8) for j in range(i + 1, 8)]
    pairs.append(ev.WordPair("w1", "unknown", 3.0))
    res = ev.evaluate_similarity(kv, pairs)
    unit = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    cosines = [unit[int(p.word1[1:])] @ unit[int(p.word2[1:])] for p in pairs[:-1]]
    assert res.spearman == pytest.approx(spearmanr(cosines, [p.score for p in pairs[:-1]]).statistic)
    assert (res.n_pairs, res.n_oov, res.oov) == (28, 1, [("w1", "unknown")])


def test_similarity_is_one_when_cosines_rank_like_humans():
    angles = np.linspace(0, 3, 7)
    kv = KeyedVectors([f"w{i}" for i in range(7)], np.stack([np.cos(angles), np.sin(angles)], 1))
    pairs = [ev.WordPair("w0", f"w{i}", 10.0 - i) for i in range(1, 7)]   # farther = less similar
    assert ev.evaluate_similarity(kv, pairs).spearman == pytest.approx(1.0)


def test_case_folding_finds_the_most_frequent_variant():
    kv = KeyedVectors(["paris", "Paris", "france", "x"], np.array([[1.0, 0], [0, 1.0], [1.0, 0.1], [0.5, 0.5]]))
    pairs = [ev.WordPair("PARIS", "France", 9.0), ev.WordPair("x", "france", 1.0)]
    folded = ev.evaluate_similarity(kv, pairs)
    assert folded.n_pairs == 2 and folded.spearman == pytest.approx(1.0)    # "paris" (row 0) is used
    exact = ev.evaluate_similarity(kv, pairs, lowercase=False)
    assert exact.n_oov == 1 and np.isnan(exact.spearman)                     # fewer than 2 pairs: no correlation


# --- analogies --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogies_on_planted_vectors(tmp_path, method):
    write_fixture_dir(tmp_path)
    res = ev.evaluate_analogies(planted_kv(), ev.read_analogies(tmp_path / ev.ANALOGY_SET), method=method)
    assert (res.correct, res.n_questions, res.n_oov) == (3, 3, 1)           # "zzz" is out of vocabulary
    assert res.accuracy == 1.0 and res.sections == {"family": (2, 2), "gram-test": (1, 1)}
    assert res.semantic == 1.0 and res.syntactic == 1.0


def test_restrict_vocab_turns_rare_words_out_of_vocabulary():
    q = [ev.AnalogyQuestion("family", "man", "woman", "king", "queen")]
    res = ev.evaluate_analogies(planted_kv(), q, restrict_vocab=3)
    assert (res.n_questions, res.n_oov) == (0, 1) and np.isnan(res.accuracy)


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_batched_analogies_agree_with_most_similar(rng, method):
    words = [f"w{i}" for i in range(15)]
    kv = KeyedVectors(words, rng.standard_normal((15, 4)).astype(np.float32))
    questions = [ev.AnalogyQuestion("s", *[words[k] for k in rng.choice(15, 4, replace=False)]) for _ in range(60)]
    expected = sum(kv.most_similar(positive=[q.b, q.c], negative=[q.a], topn=1, method=method)[0][0] == q.d
                   for q in questions)
    res = ev.evaluate_analogies(kv, questions, method=method)
    assert res.correct == expected and res.n_questions == 60


def test_any_object_with_index_to_key_and_vectors_works(tmp_path):
    write_fixture_dir(tmp_path)
    kv = planted_kv()
    duck = types.SimpleNamespace(index_to_key=kv.index_to_key, vectors=kv.vectors)     # like gensim's
    results = ev.evaluate_all(duck, tmp_path)
    assert set(results) == {"wordsim353", "wordsim353_sim", "wordsim353_rel", "simlex999", "men", "analogy"}
    assert results["wordsim353"].n_oov == 1 and results["analogy"].accuracy == 1.0
    table = ev.format_results({"planted": results, "again": results})
    assert "planted" in table and "analogy (acc.)" in table and "(3/4)" in table


def test_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_EMBEDDINGS_DATA", str(tmp_path))
    assert ev.default_data_dir() == tmp_path


# --- bad input ----------------------------------------------------------------------------------------------

def test_bad_input(tmp_path):
    kv = planted_kv()
    with pytest.raises(ValueError, match=r"method: expected '3cosadd' or '3cosmul', got 'x'"):
        ev.evaluate_analogies(kv, [], method="x")
    with pytest.raises(ValueError, match=r"restrict_vocab: expected a positive int, got 0"):
        ev.evaluate_analogies(kv, [], restrict_vocab=0)
    with pytest.raises(ValueError, match=r"name: expected one of"):
        ev.read_similarity_set("wordsim", tmp_path)
    (tmp_path / "q.txt").write_text("man woman king queen\n")
    with pytest.raises(ValueError, match=r"line 1: expected 'a b c d' after a ': section' line"):
        ev.read_analogies(tmp_path / "q.txt")
    (tmp_path / "s.txt").write_text("a\tb\tC\n")
    with pytest.raises(ValueError, match=r"expected SimLex-999's header"):
        ev.read_simlex999(tmp_path / "s.txt")
    (tmp_path / "m.txt").write_text("a b high\n")
    with pytest.raises(ValueError, match=r"line 1: the score 'high' is not a number"):
        ev.read_men(tmp_path / "m.txt")
    with pytest.raises(FileNotFoundError, match=r"is not a folder"):
        ev.evaluate_all(kv, tmp_path / "missing")
