"""tinylm.ops.recurrent: gradient checks of every cell and sequence op (every input, initial state
and weight), an independent NumPy reference, variable-length properties, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_op
from tinylm.ops.recurrent import (gru_backward, gru_cell_backward, gru_cell_forward, gru_forward, lstm_backward,
                                  lstm_cell_backward, lstm_cell_forward, lstm_forward, rnn_backward, rnn_cell_backward,
                                  rnn_cell_forward, rnn_forward)

GATES = {"tanh": 1, "relu": 1, "lstm": 4, "gru": 3}
KINDS = list(GATES)


# --- an independent reference: PyTorch's documented equations, one sequence at a time ---------

def _sig(a):
    return 1 / (1 + np.exp(-a))


def ref_step(kind, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if kind in ("tanh", "relu"):
        a = gi + gh
        return (np.tanh(a) if kind == "tanh" else np.maximum(a, 0)), None
    if kind == "lstm":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        return _sig(o) * np.tanh(c), c
    (ir, iz, i_n), (hr, hz, hn) = np.split(gi, 3, axis=-1), np.split(gh, 3, axis=-1)
    r, z = _sig(ir + hr), _sig(iz + hz)
    n = np.tanh(i_n + r * hn)
    return (1 - z) * n + z * h, None


def ref_sequence(kind, x, h, c, w, reverse=False):
    """One unpadded sequence x (T, I) -> outputs (T, H), final h, final c."""
    ys = [None] * len(x)
    for t in (reversed(range(len(x))) if reverse else range(len(x))):
        h, c = ref_step(kind, x[t], h, c, *w)
        ys[t] = h
    return np.stack(ys), h, c


# --- helpers ---------------------------------------------------------------------------------

def make_weights(rng, kind, I, H, bias=True):
    G = GATES[kind] * H
    w = {"weight_ih": rng.standard_normal((G, I)) * 0.7, "weight_hh": rng.standard_normal((G, H)) * 0.7}
    if bias:
        w.update(bias_ih=rng.standard_normal(G) * 0.5, bias_hh=rng.standard_normal(G) * 0.5)
    return w


def seq_ops(kind):
    """(forward, backward, kwargs, has_cell_state) of the sequence op for ``kind``."""
    if kind in ("tanh", "relu"):
        return rnn_forward, rnn_backward, {"nonlinearity": kind}, False
    return {"lstm": (lstm_forward, lstm_backward, {}, True), "gru": (gru_forward, gru_backward, {}, False)}[kind]


def cell_ops(kind):
    if kind in ("tanh", "relu"):
        return rnn_cell_forward, rnn_cell_backward, {"nonlinearity": kind}, False
    return {"lstm": (lstm_cell_forward, lstm_cell_backward, {}, True),
            "gru": (gru_cell_forward, gru_cell_backward, {}, False)}[kind]


def seq_inputs(rng, kind, T=4, B=3, I=3, H=2, bias=True):
    _, _, _, has_c = seq_ops(kind)
    inputs = {"x": rng.standard_normal((T, B, I)), "h0": rng.standard_normal((B, H)) * 0.5}
    if has_c:
        inputs["c0"] = rng.standard_normal((B, H)) * 0.5
    inputs.update(make_weights(rng, kind, I, H, bias))
    return inputs


def run_seq(kind, inputs, **kw):
    fwd, _, extra, _ = seq_ops(kind)
    return fwd(**inputs, **extra, **kw)


# --- gradient checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradcheck(rng, kind, bias):
    fwd, bwd, extra, has_c = cell_ops(kind)
    inputs = {"x": rng.standard_normal((3, 4)), "h": rng.standard_normal((3, 2))}
    if has_c:
        inputs["c"] = rng.standard_normal((3, 2))
    inputs.update(make_weights(rng, kind, 4, 2, bias))
    wrt = None if bias else [*inputs, None, None]            # no-bias: the two None gradients are skipped
    check_op(fwd, bwd, inputs, kwargs=extra, wrt=wrt, tol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, (4, 2, 1)], ids=["full", "lengths"])
def test_sequence_gradcheck(rng, kind, reverse, lengths):
    fwd, bwd, extra, _ = seq_ops(kind)
    inputs = seq_inputs(rng, kind)
    lengths = None if lengths is None else np.array(lengths)
    check_op(fwd, bwd, inputs, kwargs=dict(extra, lengths=lengths, reverse=reverse), tol=1e-7)


@pytest.mark.parametrize("kind", ["tanh", "lstm", "gru"])
def test_sequence_gradcheck_without_bias(rng, kind):
    fwd, bwd, extra, _ = seq_ops(kind)
    inputs = seq_inputs(rng, kind, bias=False)
    check_op(fwd, bwd, inputs, kwargs=extra, wrt=[*inputs, None, None], tol=1e-7)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_missing_upstream_gradients_are_zeros(rng, kind):
    _, bwd, _, _ = seq_ops(kind)
    out, cache = run_seq(kind, seq_inputs(rng, kind))
    dy = rng.standard_normal(out[0].shape)
    given = bwd((dy,) + tuple(np.zeros_like(o) for o in out[1:]), cache)
    implied = bwd((dy,) + (None,) * (len(out) - 1), cache)
    for a, b in zip(given, implied):
        np.testing.assert_array_equal(a, b)


# --- against the independent reference ---------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_matches_reference_per_sequence(rng, kind, reverse):
    """Every sequence of a padded batch gives what it gives when run alone, unpadded."""
    inputs = seq_inputs(rng, kind, T=5, B=3)
    inputs["x"][3:, 1] = 1e3                                 # garbage in padded steps must not matter
    inputs["x"][1:, 2] = -1e3
    lengths = np.array([5, 3, 1])
    (y, h_n, *c_n), _ = run_seq(kind, inputs, lengths=lengths, reverse=reverse)
    w = [inputs[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    for b, n in enumerate(lengths):
        c0 = inputs["c0"][b] if c_n else None
        y_ref, h_ref, c_ref = ref_sequence(kind, inputs["x"][:n, b], inputs["h0"][b], c0, w, reverse)
        np.testing.assert_allclose(y[:n, b], y_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(y[n:, b], 0.0)         # padded outputs are zero
        np.testing.assert_allclose(h_n[b], h_ref, rtol=1e-12, atol=1e-12)
        if c_n:
            np.testing.assert_allclose(c_n[0][b], c_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_reference(rng, kind):
    fwd, _, extra, has_c = cell_ops(kind)
    w = make_weights(rng, kind, 3, 4)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    out, _ = fwd(x, h, c, **w) if has_c else fwd(x, h, **w, **extra)
    h_ref, c_ref = ref_step(kind, x, h, c, *w.values())
    np.testing.assert_allclose(out[0] if has_c else out, h_ref, rtol=1e-12)
    if has_c:
        np.testing.assert_allclose(out[1], c_ref, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_padded_steps_get_zero_gradient_and_match_alone(rng, kind, reverse):
    """Gradients of a padded batch equal those of each sequence run alone; padding gets exactly 0."""
    _, bwd, _, has_c = seq_ops(kind)
    inputs = seq_inputs(rng, kind, T=5, B=2)
    lengths = np.array([5, 2])
    out, cache = run_seq(kind, inputs, lengths=lengths, reverse=reverse)
    douts = tuple(rng.standard_normal(o.shape) for o in out)
    dx, dh0, *rest = bwd(douts, cache)
    np.testing.assert_array_equal(dx[2:, 1], 0.0)
    alone = dict(inputs, x=inputs["x"][:2, 1:], h0=inputs["h0"][1:])
    if has_c:
        alone["c0"] = inputs["c0"][1:]
    out1, cache1 = run_seq(kind, alone, reverse=reverse)
    dx1, dh01, *rest1 = bwd((douts[0][:2, 1:],) + tuple(d[1:] for d in douts[1:]), cache1)
    np.testing.assert_allclose(dx[:2, 1:], dx1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0[1:], dh01, rtol=1e-10, atol=1e-12)
    if has_c:
        np.testing.assert_allclose(rest[0][1:], rest1[0], rtol=1e-10, atol=1e-12)


# --- properties over shapes and dtypes ----------------------------------------------------------

@given(kind=st.sampled_from(KINDS), T=st.integers(1, 4), B=st.integers(1, 3), I=st.integers(1, 4),
       H=st.integers(1, 3), reverse=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data())
def test_sequence_shapes_dtypes_and_lengths(kind, T, B, I, H, reverse, dtype, data):
    rng = np.random.default_rng(T * 100 + B * 10 + I)
    _, bwd, _, has_c = seq_ops(kind)
    inputs = {k: v.astype(dtype) for k, v in seq_inputs(rng, kind, T, B, I, H).items()}
    lengths = np.array(data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B)))
    out, cache = run_seq(kind, inputs, lengths=lengths, reverse=reverse)
    y = out[0]
    assert y.shape == (T, B, H) and all(o.shape == (B, H) for o in out[1:])
    assert all(o.dtype == dtype for o in out)
    real = np.arange(T)[:, None] < lengths[None, :]
    assert np.all(y[~real] == 0)
    grads = bwd(tuple(np.ones_like(o) for o in out), cache)
    assert grads[0].shape == (T, B, I) and all(g.dtype == dtype for g in grads)
    assert np.all(grads[0][~real] == 0)
    (y_full, *_), _ = run_seq(kind, inputs, reverse=reverse)   # lengths == T everywhere changes nothing
    (y_same, *_), _ = run_seq(kind, inputs, lengths=np.full(B, T), reverse=reverse)
    np.testing.assert_array_equal(y_full, y_same)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    (lambda a: dict(a, x=a["x"][0]), r"x: expected shape \(T, B, I\).*2 dims, expected 3"),
    (lambda a: dict(a, x=a["x"][..., :2]), r"x: expected shape \(T, B, I\) with .*I=3.*I=2, not 3"),
    (lambda a: dict(a, h0=a["h0"][:2]), r"h0: expected shape \(B, H\) with .*B=3.*B=2, not 3"),
    (lambda a: dict(a, weight_hh=a["weight_hh"][:7]),
     r"weight_hh: expected shape \(4H, H\) with 4H=8, H=2.*4H=7, not 8"),
    (lambda a: dict(a, bias_ih=a["bias_ih"][:4]), r"bias_ih: expected shape \(4H,\)"),
    (lambda a: dict(a, c0=a["c0"].astype(np.float32)), r"c0: dtype float32 differs from x's float64"),
    (lambda a: dict(a, x=a["x"].astype(np.int64)), r"x: expected a floating-point array"),
])
def test_lstm_bad_input(rng, change, match):
    inputs = seq_inputs(rng, "lstm")
    with pytest.raises((ValueError, TypeError), match=match):
        lstm_forward(**change(inputs))


@pytest.mark.parametrize("lengths, err, match", [
    ([4, 5, 1], ValueError, r"lengths: every length must lie in \[1, 4\].*got 5"),
    ([4, 0, 1], ValueError, r"lengths: every length must lie in \[1, 4\].*got 0"),
    ([4, 2], ValueError, r"lengths: expected shape \(B,\) with B=3"),
    ([4.0, 2.0, 1.0], TypeError, r"lengths: expected an integer array"),
])
def test_bad_lengths(rng, lengths, err, match):
    with pytest.raises(err, match=match):
        run_seq("gru", seq_inputs(rng, "gru"), lengths=np.array(lengths))


def test_bad_nonlinearity_and_upstream(rng):
    inputs = seq_inputs(rng, "tanh")
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of \('tanh', 'relu'\), got 'sigmoid'"):
        rnn_forward(**inputs, nonlinearity="sigmoid")
    (y, h_n), cache = rnn_forward(**inputs)
    with pytest.raises(ValueError, match=r"dh_n: expected shape \(3, 2\)"):
        rnn_backward((y, h_n[:, :1]), cache)
    with pytest.raises(ValueError, match=r"dy: expected shape \(4, 3, 2\)"):
        rnn_backward((y[:2], h_n), cache)


# --- the upstream gradient: a tuple of one array (or None) per output, float, the forward's dtype ---

def _seq_and_cell(rng):
    """Forward outputs and caches: an RNN over T=2 steps (a bare dy of shape (2, B, H) would unpack
    along time into two arrays), an LSTM, and one RNN cell step."""
    (y, h_n), cache = rnn_forward(**seq_inputs(rng, "tanh", T=2))
    (ly, lh, lc), lcache = lstm_forward(**seq_inputs(rng, "lstm"))
    cell_in = {k: v for k, v in seq_inputs(rng, "tanh").items() if k not in ("x", "h0")}
    h_new, ccache = rnn_cell_forward(rng.standard_normal((3, 3)), rng.standard_normal((3, 2)), **cell_in)
    return dict(y=y, h_n=h_n, cache=cache, ly=ly, lh=lh, lc=lc, lcache=lcache, h_new=h_new, ccache=ccache)


@pytest.mark.parametrize("call, err, match", [
    (lambda o: rnn_backward(o["y"], o["cache"]), TypeError,
     r"dout: expected a tuple \(dy, dh_n\) of 2 gradients \(each an array or None\), got ndarray of shape \(2, 3, 2\)"),
    (lambda o: rnn_backward(None, o["cache"]), TypeError, r"dout: expected a tuple \(dy, dh_n\) .*got NoneType"),
    (lambda o: rnn_backward(o["y"].tolist(), o["cache"]), TypeError, r"dy: expected a numpy array, got list"),
    (lambda o: rnn_backward([o["y"]], o["cache"]), TypeError, r"dout: expected a tuple \(dy, dh_n\).*got a list of 1"),
    (lambda o: gru_backward((o["y"], o["h_n"], o["h_n"]), o["cache"]), TypeError,
     r"dout: expected a tuple \(dy, dh_n\) of 2 .*got a tuple of 3"),
    (lambda o: lstm_backward((o["ly"], o["lh"]), o["lcache"]), TypeError,
     r"dout: expected a tuple \(dy, dh_n, dc_n\) of 3 gradients .*got a tuple of 2"),
    (lambda o: lstm_cell_backward(o["lh"], o["ccache"]), TypeError,
     r"dout: expected a tuple \(dh', dc'\) of 2 gradients .*got ndarray"),
    (lambda o: rnn_backward((o["y"].astype(int), None), o["cache"]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda o: rnn_backward((None, o["h_n"].astype(np.float32)), o["cache"]), TypeError,
     r"dh_n: expected dtype float64 \(the forward's output\), got float32"),
    (lambda o: lstm_backward((None, None, o["lc"].astype(int)), o["lcache"]), TypeError,
     r"dc_n: expected a floating-point array .*got int64"),
    (lambda o: rnn_cell_backward(np.ones((3, 2), int), o["ccache"]), TypeError,
     r"dh': expected a floating-point array .*got int64"),
    (lambda o: rnn_cell_backward(o["h_new"].astype(np.float32), o["ccache"]), TypeError,
     r"dh': expected dtype float64 \(the forward's output\), got float32"),
])
def test_bad_upstream(rng, call, err, match):
    with pytest.raises(err, match=match):
        call(_seq_and_cell(rng))


def test_reverse_must_be_a_bool(rng):
    with pytest.raises(TypeError, match=r"reverse: expected a bool, got 'yes'"):
        run_seq("gru", seq_inputs(rng, "gru"), reverse="yes")
