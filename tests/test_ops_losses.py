import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from tinylm.gradcheck import check_module, check_op, numerical_grad, rel_error
from tinylm.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinylm.ops.losses import (bce_with_logits_backward, bce_with_logits_forward, cross_entropy_backward,
                               cross_entropy_forward, mse_backward, mse_forward)
from tinylm.ops.softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward

REDUCTIONS = ["mean", "sum", "none"]


def _ce_targets(rng, shape, V, ignore_index=None):
    t = rng.integers(0, V, shape)
    if ignore_index is not None:
        t.reshape(-1)[::3] = ignore_index                      # every third position ignored
    return t


def _ce_reference(logits, target, ignore_index=-100, eps=0.0, reduction="mean"):
    """Cross-entropy row by row with math's scalar functions: l = -sum_c q_c log p_c."""
    V = logits.shape[-1]
    rows, ts = logits.reshape(-1, V), target.reshape(-1)
    losses = []
    for z, t in zip(rows, ts):
        if t == ignore_index:
            losses.append(0.0)
            continue
        m = max(z)
        logsumexp = m + math.log(sum(math.exp(v - m) for v in z))
        q = [eps / V + (1 - eps) * (c == t) for c in range(V)]
        losses.append(-sum(qc * (zc - logsumexp) for qc, zc in zip(q, z)))
    n = sum(t != ignore_index for t in ts)
    if reduction == "none":
        return np.array(losses).reshape(target.shape)
    return sum(losses) / n if reduction == "mean" else sum(losses)


# --- gradient checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2, 1.0])      # 1.0: q uniform, the target id plays no part
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_gradcheck(rng, reduction, label_smoothing, ignore):
    logits = rng.standard_normal((2, 3, 5))
    target = _ce_targets(rng, (2, 3), 5, ignore_index=-100 if ignore else None)
    check_op(cross_entropy_forward, cross_entropy_backward, {"logits": logits, "target": target},
             kwargs={"label_smoothing": label_smoothing, "reduction": reduction}, tol=1e-7)


def test_cross_entropy_gradcheck_with_ignore_index_a_class(rng):
    logits, target = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    check_op(cross_entropy_forward, cross_entropy_backward, {"logits": logits, "target": target},
             kwargs={"ignore_index": 0, "label_smoothing": 0.1}, tol=1e-7)


# Targets and pos_weight are data: the backward differentiates the logits (pred) only, hence wrt;
# unlike PyTorch, a float target gets no gradient (test_targets_get_no_gradient).
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_gradcheck(rng, reduction, with_pos_weight):
    logits, target = rng.standard_normal((3, 4)) * 3, rng.uniform(0, 1, (3, 4))
    pw = rng.uniform(0.2, 3.0, 4) if with_pos_weight else None
    check_op(bce_with_logits_forward, bce_with_logits_backward,
             {"logits": logits, "target": target, "pos_weight": pw}, kwargs={"reduction": reduction},
             wrt=["logits"], tol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_gradcheck(rng, reduction):
    check_op(mse_forward, mse_backward, {"pred": rng.standard_normal((3, 4)), "target": rng.standard_normal((3, 4))},
             kwargs={"reduction": reduction}, wrt=["pred"], tol=1e-7)


def test_targets_get_no_gradient(rng):
    """mse_backward / bce_with_logits_backward return one array, dpred / dlogits: the float target
    is treated as data. A caller who needs dtarget has it in closed form (checked here against
    finite differences): MSE dtarget = -dpred; BCE dtarget = dl (-x + (pos_weight - 1) softplus(-x))."""
    x, y, pw = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.2, 3.0, 4)
    loss, cache = mse_forward(x, y, "sum")
    dpred = mse_backward(np.array(1.0), cache)
    assert isinstance(dpred, np.ndarray) and dpred.shape == x.shape
    numeric = numerical_grad(lambda: float(mse_forward(x, y, "sum")[0]), y)
    assert rel_error(-dpred, numeric) < 1e-7
    loss, cache = bce_with_logits_forward(x, y, "sum", pw)
    dlogits = bce_with_logits_backward(np.array(1.0), cache)
    assert isinstance(dlogits, np.ndarray) and dlogits.shape == x.shape
    numeric = numerical_grad(lambda: float(bce_with_logits_forward(x, y, "sum", pw)[0]), y)
    softplus = np.logaddexp(0, -x)
    assert rel_error(-x + (pw - 1) * softplus, numeric) < 1e-7


def _finite_gradcheck(forward, backward, x, rng):
    """FD gradient check of ``out = forward(x)`` where some entries of x (and of out) are -inf:
    the upstream gradient is zero at the -inf outputs (their only sensible value: -inf * 0 is
    meaningless), so L = sum over the finite outputs; the -inf inputs have zero numerical
    gradient (-inf +- eps = -inf) and must get zero analytic gradient. Returns the max relative
    error over x."""
    out, cache = forward(x)
    finite = np.isfinite(out)
    g = np.where(finite, rng.standard_normal(np.shape(out)), 0.0)
    dx = backward(g, cache)
    numeric = numerical_grad(lambda: float(np.sum(np.where(finite, forward(x)[0], 0.0) * g)), x)
    assert np.all(dx[np.isneginf(x)] == 0) and np.abs(numeric[np.isfinite(x)]).min() > 0
    return rel_error(dx, numeric)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "cross_entropy"])
def test_gradcheck_with_partly_masked_rows(rng, op):
    """Rows with some -inf logits (masked entries: a vocabulary or key mask) still have a well
    defined gradient over their finite entries, checked by FD over exactly those."""
    x = rng.standard_normal((3, 5))
    x[0, [1, 3]] = -np.inf
    x[1, 0] = -np.inf
    x[2, [0, 2, 4]] = -np.inf
    target = np.array([0, 2, 3])                               # classes with finite logits
    pairs = {"softmax": (softmax_forward, softmax_backward),
             "log_softmax": (log_softmax_forward, log_softmax_backward),
             "cross_entropy": (lambda z: cross_entropy_forward(z, target, reduction="none"), cross_entropy_backward)}
    assert _finite_gradcheck(*pairs[op], x, rng) < 1e-7


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_modules_gradcheck(rng, reduction):
    logits = rng.standard_normal((2, 3, 4))
    ce = CrossEntropyLoss(ignore_index=1, label_smoothing=0.1, reduction=reduction)
    check_module(ce, logits, rng.integers(0, 4, (2, 3)), tol=1e-7)        # integer target: not checked
    bce = BCEWithLogitsLoss(reduction=reduction, pos_weight=rng.uniform(0.5, 2.0, 4))
    check_module(bce, logits, forward_kwargs={"target": rng.uniform(0, 1, (2, 3, 4))}, tol=1e-7)
    check_module(MSELoss(reduction), logits, forward_kwargs={"target": rng.standard_normal((2, 3, 4))}, tol=1e-7)


# --- semantics, against independent scalar references ---------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index, label_smoothing", [(-100, 0.0), (-100, 0.3), (2, 0.0), (2, 1.0)])
def test_cross_entropy_matches_reference(rng, reduction, ignore_index, label_smoothing):
    logits = rng.standard_normal((3, 4, 6)) * 3
    target = _ce_targets(rng, (3, 4), 6, ignore_index)
    loss, _ = cross_entropy_forward(logits, target, ignore_index, label_smoothing, reduction)
    np.testing.assert_allclose(loss, _ce_reference(logits, target, ignore_index, label_smoothing, reduction),
                               rtol=1e-12)
    assert loss.shape == (() if reduction != "none" else target.shape)


def test_cross_entropy_gradient_is_softmax_minus_smoothed_onehot(rng):
    logits, target = rng.standard_normal((5, 4)), np.array([0, 3, -100, 1, 3])
    eps, V = 0.2, 4
    _, cache = cross_entropy_forward(logits, target, label_smoothing=eps)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    q = np.full((5, V), eps / V)
    for i, t in enumerate(target):
        if t != -100:
            q[i, t] += 1 - eps
    want = (p - q) / 4                                         # mean over the 4 non-ignored targets
    want[2] = 0.0                                              # ignored: no gradient
    np.testing.assert_allclose(cross_entropy_backward(np.array(1.0), cache), want, rtol=1e-13)


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient(rng):
    logits, target = rng.standard_normal((3, 4)), np.full(3, -100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = cross_entropy_forward(logits, target, label_smoothing=0.1)
        dlogits = cross_entropy_backward(np.array(1.0), cache)
    assert np.isnan(loss)                                      # PyTorch: mean over no targets is NaN
    np.testing.assert_array_equal(dlogits, 0.0)
    assert cross_entropy_forward(logits, target, reduction="sum")[0] == 0.0


@pytest.mark.parametrize("pos_weight", [None, np.array([0.5, 1.0, 2.0])])
def test_bce_matches_naive_formula(rng, pos_weight):
    x, y = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    pw = np.ones(3) if pos_weight is None else pos_weight
    s = 1 / (1 + np.exp(-x))
    naive = -(pw * y * np.log(s) + (1 - y) * np.log(1 - s))
    np.testing.assert_allclose(bce_with_logits_forward(x, y, "none", pos_weight)[0], naive, rtol=1e-12)
    np.testing.assert_allclose(bce_with_logits_forward(x, y, "mean", pos_weight)[0], naive.mean(), rtol=1e-12)


def test_mse_matches_formula(rng):
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(mse_forward(p, t)[0], np.mean((p - t) ** 2), rtol=1e-14)
    np.testing.assert_allclose(mse_forward(p, t, "sum")[0], np.sum((p - t) ** 2), rtol=1e-14)


# --- properties --------------------------------------------------------------------------------

@given(V=st.integers(2, 8), n=st.integers(1, 5), seed=st.integers(0, 2 ** 16))
def test_cross_entropy_of_confident_correct_prediction_is_near_zero(V, n, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, V, n)
    logits = 40.0 * np.eye(V)[target]                          # p_target = 1 - (V-1) e^{-40}
    loss, cache = cross_entropy_forward(logits, target)
    assert 0 <= loss < 1e-15
    assert np.abs(cross_entropy_backward(np.array(1.0), cache)).max() < 1e-15


@given(logits=arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 6)),
                     elements=st.floats(-50, 50, allow_nan=False)),
       eps=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 16))
def test_label_smoothed_cross_entropy_is_at_least_its_minimum(logits, eps, seed):
    """l = H(q) + KL(q || p) >= H(q), the entropy of the smoothed target, with equality at p = q."""
    N, V = logits.shape
    target = np.random.default_rng(seed).integers(0, V, N)
    q_hit, q_miss = 1 - eps + eps / V, eps / V
    entropy = -q_hit * math.log(q_hit) - ((V - 1) * q_miss * math.log(q_miss) if q_miss > 0 else 0.0)
    loss, _ = cross_entropy_forward(logits, target, label_smoothing=eps)
    assert loss >= entropy - 1e-9
    if q_miss > 0:                                             # logits = log q reach the minimum
        q = np.full((N, V), q_miss)
        q[np.arange(N), target] = q_hit
        np.testing.assert_allclose(cross_entropy_forward(np.log(q), target, label_smoothing=eps)[0], entropy,
                                   rtol=1e-10, atol=1e-12)


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), V=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), reduction=st.sampled_from(REDUCTIONS))
def test_shapes_and_dtypes_preserved(lead, V, dtype, reduction):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(lead + [V]).astype(dtype)
    want = tuple(lead + [V]) if reduction == "none" else ()
    cases = [
        (cross_entropy_forward, cross_entropy_backward, rng.integers(0, V, lead), tuple(lead)),
        (bce_with_logits_forward, bce_with_logits_backward, rng.uniform(0, 1, x.shape).astype(dtype), want),
        (mse_forward, mse_backward, rng.standard_normal(x.shape).astype(dtype), want),
    ]
    for fwd, bwd, target, shape in cases:
        loss, cache = fwd(x, target, reduction=reduction)
        assert loss.shape == (shape if reduction == "none" else ()) and loss.dtype == dtype
        dx = bwd(np.ones(loss.shape, dtype), cache)
        assert dx.shape == x.shape and dx.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_finite_without_warnings(rng, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, -1e4, -1e4]], dtype)
    target = np.array([0, 1, 2])
    masked = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [5.0, 5.0, 5.0]], dtype)   # a vocab mask
    probs = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2], [0.5, 0.5, 1.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for eps in (0.0, 0.1):
            loss, cache = cross_entropy_forward(logits, target, label_smoothing=eps)
            assert np.isfinite(loss) and np.isfinite(cross_entropy_backward(np.array(1.0, dtype), cache)).all()
        loss, cache = cross_entropy_forward(masked, np.array([2, 1, 0]))
        assert np.isfinite(loss) and np.isfinite(cross_entropy_backward(np.array(1.0, dtype), cache)).all()
        loss, cache = bce_with_logits_forward(logits, probs, pos_weight=np.full(3, 2.0, dtype))
        assert np.isfinite(loss) and np.isfinite(bce_with_logits_backward(np.array(1.0, dtype), cache)).all()
    np.testing.assert_allclose(cross_entropy_forward(logits, target, reduction="none")[0], [0, 2e4, math.log(3)],
                               rtol=1e-6)


# --- modules -----------------------------------------------------------------------------------

def test_modules_return_floats_and_scale_by_dloss(rng):
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    for crit, target in [(CrossEntropyLoss(), rng.integers(0, 3, 4)),
                         (BCEWithLogitsLoss(pos_weight=np.array([1.0, 2.0, 3.0])),   # float64 weight: cast
                          rng.uniform(0, 1, (4, 3)).astype(np.float32)),
                         (MSELoss(), rng.standard_normal((4, 3)).astype(np.float32))]:
        loss = crit(logits, target)
        assert type(loss) is float
        g1 = crit.backward()
        assert g1.dtype == np.float32 and g1.shape == logits.shape
        np.testing.assert_allclose(crit.backward(dloss=2.5), 2.5 * g1, rtol=1e-6)


def test_module_reduction_none_takes_an_array_dloss(rng):
    crit = CrossEntropyLoss(reduction="none")
    logits, target = rng.standard_normal((2, 5, 3)), rng.integers(0, 3, (2, 5))
    losses = crit(logits, target)
    assert losses.shape == (2, 5)
    total = CrossEntropyLoss(reduction="sum")
    np.testing.assert_allclose(losses.sum(), total(logits, target), rtol=1e-14)
    np.testing.assert_allclose(crit.backward(np.ones((2, 5))), total.backward(), rtol=1e-14)
    with pytest.raises(TypeError, match=r"dloss: with reduction='none' .* got 1.0"):
        crit.backward()


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, err, match", [
    (lambda z, t: cross_entropy_forward(z, t[:, :2]), ValueError,
     r"target: expected shape \(2, 3\), got shape \(2, 2\)"),
    (lambda z, t: cross_entropy_forward(z, t.astype(np.float64)), TypeError,
     r"target: expected an integer array, got float64"),
    (lambda z, t: cross_entropy_forward(z, t + 4), ValueError,
     r"target: class ids must lie in \[0, 5\) \(or -100 to ignore\), got [5-8]"),
    (lambda z, t: cross_entropy_forward(z, t - 4), ValueError, r"target: class ids must lie in \[0, 5\).*got -[1-4]"),
    (lambda z, t: cross_entropy_forward(z, t, reduction="avg"), ValueError,
     r"reduction: expected one of \('mean', 'sum', 'none'\), got 'avg'"),
    (lambda z, t: cross_entropy_forward(z, t, label_smoothing=1.5), ValueError,
     r"label_smoothing: expected a probability in \[0, 1\], got 1.5"),
    (lambda z, t: cross_entropy_forward(z, t, label_smoothing=-0.1), ValueError, r"label_smoothing: .* got -0.1"),
    (lambda z, t: cross_entropy_forward(z, t, ignore_index=None), TypeError, r"ignore_index: expected an int"),
    (lambda z, t: cross_entropy_forward(z.astype(np.int64), t), TypeError, r"logits: expected a floating-point"),
    (lambda z, t: cross_entropy_backward(np.ones(6), cross_entropy_forward(z, t)[1]), ValueError,
     r"dloss: expected shape \(\), got shape \(6,\)"),
    (lambda z, t: cross_entropy_backward(np.ones(3), cross_entropy_forward(z, t, reduction="none")[1]), ValueError,
     r"dloss: expected shape \(2, 3\), got shape \(3,\)"),
    (lambda z, t: bce_with_logits_forward(z, z[:1]), ValueError,
     r"target: expected shape \(2, 3, 5\), got shape \(1, 3, 5\)"),
    (lambda z, t: bce_with_logits_forward(z, z.astype(np.float32)), TypeError,
     r"target: expected dtype float64 \(that of logits\), got float32"),
    (lambda z, t: bce_with_logits_forward(z, t), TypeError, r"target: expected a floating-point array"),
    (lambda z, t: bce_with_logits_forward(z, z, pos_weight=np.ones(3)), ValueError,
     r"pos_weight: expected shape \(5,\), got shape \(3,\)"),
    (lambda z, t: bce_with_logits_forward(z, z, reduction="max"), ValueError, r"reduction: expected one of"),
    (lambda z, t: mse_forward(z, z[0]), ValueError, r"target: expected shape \(2, 3, 5\), got shape \(3, 5\)"),
    (lambda z, t: mse_forward(z, z.tolist()), TypeError, r"target: expected a numpy array, got list"),
    (lambda z, t: CrossEntropyLoss(label_smoothing=2), ValueError, r"label_smoothing: .* got 2"),
    (lambda z, t: MSELoss(reduction="Mean"), ValueError, r"reduction: expected one of .* got 'Mean'"),
    (lambda z, t: CrossEntropyLoss().backward(), RuntimeError, r"CrossEntropyLoss.backward called before forward"),
    # targets of BCE are probabilities: a label of 2 or -1 would give a finite, meaningless loss
    (lambda z, t: bce_with_logits_forward(z, np.full_like(z, 2.0)), ValueError,
     r"target: expected probabilities in \[0, 1\], got 2.0"),
    (lambda z, t: bce_with_logits_forward(z, np.full_like(z, -1.0)), ValueError,
     r"target: expected probabilities in \[0, 1\], got -1.0"),
    (lambda z, t: bce_with_logits_forward(z, np.full_like(z, np.nan)), ValueError,
     r"target: expected probabilities in \[0, 1\], got nan"),
    # the upstream gradient: float and the loss's dtype (an int dloss was silently accepted)
    (lambda z, t: cross_entropy_backward(np.ones((2, 3), int), cross_entropy_forward(z, t, reduction="none")[1]),
     TypeError, r"dloss: expected a floating-point array .*got int64"),
    (lambda z, t: cross_entropy_backward(np.array(1.0, np.float32), cross_entropy_forward(z, t)[1]), TypeError,
     r"dloss: expected dtype float64 \(the forward's output\), got float32"),
    (lambda z, t: bce_with_logits_backward(np.ones((2, 3, 5), int), bce_with_logits_forward(z, 0 * z, "none")[1]),
     TypeError, r"dloss: expected a floating-point array .*got int64"),
    (lambda z, t: mse_backward(np.ones((2, 3, 5), int), mse_forward(z, z, "none")[1]), TypeError,
     r"dloss: expected a floating-point array .*got int64"),
    (lambda z, t: mse_backward(None, mse_forward(z, z)[1]), TypeError, r"dloss: expected a floating-point array"),
    # modules: a reduced loss's dloss is a real number or a 0-d array (None gave all-NaN gradients)
    (lambda z, t: (c := CrossEntropyLoss(), c(z, t), c.backward(None)), TypeError,
     r"dloss: expected a real number \(the upstream gradient of the reduced loss\), got None"),
    (lambda z, t: (c := CrossEntropyLoss(), c(z, t), c.backward("one")), TypeError,
     r"dloss: expected a real number .*got 'one'"),
    (lambda z, t: (c := MSELoss(reduction="sum"), c(z, z), c.backward(np.ones(2))), ValueError,
     r"dloss: expected shape \(\), got shape \(2,\)"),
    (lambda z, t: BCEWithLogitsLoss(pos_weight=np.ones((2, 2))), ValueError,
     r"pos_weight: expected shape \(C,\), got shape \(2, 2\)"),
])
def test_bad_input(rng, bad, err, match):
    logits, target = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    with pytest.raises(err, match=match):
        bad(logits, target)
