"""Optional: our word2vec text files load in gensim's KeyedVectors, and gensim's load in ours
(skipped when gensim is not installed; it is not a tinylm dependency)."""
import numpy as np
import pytest

from tinylm.models.keyed_vectors import KeyedVectors
from tinylm.models.word2vec import Word2Vec

gensim_models = pytest.importorskip("gensim.models")


def corpus(seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "mat", "dog", "café", "naïve"]
    return [list(rng.choice(words, size=rng.integers(3, 9))) for _ in range(60)]


def test_our_text_file_loads_in_gensim(tmp_path):
    m = Word2Vec(corpus(), vector_size=8, min_count=1, epochs=2, seed=1)
    m.wv.save_word2vec_format(tmp_path / "ours.txt")
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "ours.txt"), binary=False)
    assert list(theirs.index_to_key) == m.wv.index_to_key
    np.testing.assert_array_equal(theirs.vectors, m.wv.vectors)
    assert theirs.similarity("cat", "dog") == pytest.approx(m.wv.similarity("cat", "dog"), rel=1e-5)
    assert [w for w, _ in theirs.most_similar("cat", topn=3)] == [w for w, _ in m.wv.most_similar("cat", topn=3)]


@pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")   # inside gensim
def test_gensim_text_file_loads_in_ours(tmp_path):
    g = gensim_models.Word2Vec(corpus(1), vector_size=8, min_count=1, epochs=2, seed=1, workers=1)
    g.wv.save_word2vec_format(str(tmp_path / "gensim.txt"), binary=False)
    ours = KeyedVectors.load_word2vec_format(tmp_path / "gensim.txt")
    assert ours.index_to_key == list(g.wv.index_to_key)
    np.testing.assert_allclose(ours.vectors, g.wv.vectors, rtol=1e-6)
    query = dict(positive=["cat", "mat"], negative=["dog"], topn=3)
    for got, want in ((ours.most_similar(**query), g.wv.most_similar(**query)),
                      (ours.most_similar(**query, method="3cosmul"), g.wv.most_similar_cosmul(**query))):
        assert [w for w, _ in got] == [w for w, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4)
