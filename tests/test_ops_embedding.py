"""Embedding: gather forward, scatter-add backward, padding_idx, bad ids (derivations/embedding.md)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_module, check_op, numerical_grad, rel_error
from tinylm.nn.embedding import Embedding
from tinylm.ops.embedding import embedding_backward, embedding_forward, scatter_add


def test_embedding_gradcheck_repeated_ids(rng):
    ids = np.array([[1, 3, 1], [0, 1, 4]])                   # id 1 three times, id 2 never
    check_op(embedding_forward, embedding_backward, {"ids": ids, "weight": rng.standard_normal((5, 4))}, tol=1e-7)


def test_embedding_padding_row_gets_zero_gradient(rng):
    # The padding row is read by the forward, so its true derivative is not zero: PyTorch (and
    # tinylm) deliberately drop it. Every other row must match finite differences.
    ids, w, pad = np.array([[2, 0, 2], [1, 2, 3]]), rng.standard_normal((5, 3)), 2
    dout = rng.standard_normal((2, 3, 3))
    _, cache = embedding_forward(ids, w, padding_idx=pad)
    dw = embedding_backward(dout, cache)
    numeric = numerical_grad(lambda: float(np.sum(embedding_forward(ids, w, pad)[0] * dout)), w)
    assert np.all(dw[pad] == 0) and np.abs(numeric[pad]).max() > 0.1
    keep = np.arange(5) != pad
    assert rel_error(dw[keep], numeric[keep]) < 1e-7


def test_negative_padding_idx_counts_from_the_end(rng):
    ids, w = np.array([0, 4, 4]), rng.standard_normal((5, 2))
    _, cache = embedding_forward(ids, w, padding_idx=-1)
    dw = embedding_backward(np.ones((3, 2)), cache)
    np.testing.assert_array_equal(dw[4], 0.0)
    np.testing.assert_array_equal(dw[0], 1.0)


def test_module_gradcheck_and_layout(rng):
    m = Embedding(6, 3, padding_idx=0).double()
    assert [n for n, _ in m.named_parameters()] == ["weight"] and m.weight.shape == (6, 3)
    np.testing.assert_array_equal(m.weight.data[0], 0.0)
    ids = np.array([[1, 2, 2], [5, 1, 3]])                   # padding id absent: plain gradcheck applies
    check_module(m, ids, tol=1e-7)


def test_module_init_is_standard_normal():
    w = Embedding(2000, 50).weight.data
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01   # 1e5 draws: std errors ~0.003


def test_module_backward_returns_none_and_accumulates(rng):
    m = Embedding(4, 2, padding_idx=3)
    ids = np.array([0, 3, 0])
    out = m(ids)
    assert m.backward(np.ones_like(out)) is None
    m(ids); m.backward(np.ones_like(out))
    np.testing.assert_array_equal(m.weight.grad, [[4, 4], [0, 0], [0, 0], [0, 0]])
    assert repr(m) == "Embedding(4, 2, padding_idx=3)"


def test_scatter_add_accumulates_repeated_indices():
    target, idx, vals = np.zeros((3, 2)), np.array([1, 1, 2]), np.ones((3, 2))
    naive = target.copy()
    naive[idx] += vals                                        # keeps one of the two writes to row 1
    assert scatter_add(target, idx, vals) is target
    np.testing.assert_array_equal(target, [[0, 0], [2, 2], [1, 1]])
    np.testing.assert_array_equal(naive, [[0, 0], [1, 1], [1, 1]])


@given(V=st.integers(1, 8), C=st.integers(1, 5), shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_rows_equal_weight_rows_and_gradients_sum(V, C, shape, dtype, seed):
    r = np.random.default_rng(seed)
    ids = r.integers(0, V, size=shape)
    w = r.standard_normal((V, C)).astype(dtype)
    out, cache = embedding_forward(ids, w)
    assert out.shape == tuple(shape) + (C,) and out.dtype == dtype
    for pos in np.ndindex(*shape):
        np.testing.assert_array_equal(out[pos], w[ids[pos]])
    dout = r.standard_normal(out.shape).astype(dtype)
    dw = embedding_backward(dout, cache)
    assert dw.shape == (V, C) and dw.dtype == dtype
    expected = np.zeros((V, C))
    for pos in np.ndindex(*shape):                            # an explicit loop, not the op's scatter
        expected[ids[pos]] += dout[pos]
    np.testing.assert_allclose(dw, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad, err, match", [
    (lambda w: embedding_forward(np.array([0, 5]), w), ValueError, r"ids: ids must lie in \[0, 5\), got 5"),
    (lambda w: embedding_forward(np.array([[-1, 2]]), w), ValueError, r"ids: ids must lie in \[0, 5\), got -1"),
    (lambda w: embedding_forward(np.array([0.0, 1.0]), w), TypeError, r"ids: expected an integer array, got float64"),
    (lambda w: embedding_forward(np.array([0, 1]), w.astype(np.int64)), TypeError,
     r"weight: expected a floating-point array"),
    (lambda w: embedding_forward(np.array([0, 1]), w[0]), ValueError, r"weight: expected shape \(V, C\)"),
    (lambda w: embedding_forward(np.array([0]), w, padding_idx=5), ValueError,
     r"padding_idx: expected None or an int in \[-5, 5\)"),
    (lambda w: embedding_backward(np.ones((2, 4)), embedding_forward(np.array([0, 1]), w)[1]), ValueError,
     r"dout: expected shape \(2, 3\), got shape \(2, 4\)"),
    (lambda w: Embedding(5, 3)(np.array([7])), ValueError, r"ids: ids must lie in \[0, 5\), got 7"),
    (lambda w: Embedding(5, 3, padding_idx=-6), ValueError, r"padding_idx: .* got -6"),
    (lambda w: Embedding(0, 3), ValueError, r"num_embeddings: expected a positive int, got 0"),
    (lambda w: embedding_backward(np.ones((2, 3), int), embedding_forward(np.array([0, 1]), w)[1]), TypeError,
     r"dout: expected a floating-point array .*got int64"),
    (lambda w: embedding_backward(np.ones((2, 3)), embedding_forward(np.array([0, 1]), w.astype(np.float32))[1]),
     TypeError, r"dout: expected dtype float32 \(the forward's output\), got float64"),
    # scatter_add (public): indices int and in range (no negative wrap-around), values exactly (N,) + target row
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([0, 3]), np.ones((2, 2))), ValueError,
     r"indices: row indices must lie in \[0, 3\), got 3"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([-1, 0]), np.ones((2, 2))), ValueError,
     r"indices: row indices must lie in \[0, 3\), got -1"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([0.0, 1.0]), np.ones((2, 2))), TypeError,
     r"indices: expected an integer array, got float64"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([[0, 1]]), np.ones((2, 2))), ValueError,
     r"indices: expected shape \(N,\), got shape \(1, 2\)"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([0, 1]), np.ones((3, 2))), ValueError,
     r"values: expected shape \(2, 2\), got shape \(3, 2\)"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([0, 1]), np.ones((2, 1))), ValueError,
     r"values: expected shape \(2, 2\), got shape \(2, 1\)"),
    (lambda w: scatter_add(np.zeros((3, 2)), np.array([0, 1]), np.ones((2, 2), np.float32)), TypeError,
     r"values: expected dtype float64 \(that of target\), got float32"),
    (lambda w: scatter_add(np.zeros((3, 2), int), np.array([0, 1]), np.ones((2, 2), int)), TypeError,
     r"target: expected a floating-point array .*got int64"),
    (lambda w: scatter_add(np.float64(0.0), np.array([0]), np.ones(1)), ValueError,
     r"target: expected an array of at least 1 dim"),
])
def test_embedding_bad_input(rng, bad, err, match):
    with pytest.raises(err, match=match):
        bad(rng.standard_normal((5, 3)))


def test_padding_idx_may_be_a_numpy_integer():
    from tinylm.models.textcnn import TextCNN
    assert Embedding(6, 3, padding_idx=np.int64(-1)).padding_idx == 5      # e.g. vocab.pad_id from an array
    assert TextCNN(12, num_classes=2, padding_idx=np.int64(0)).embedding.padding_idx == 0
