"""tinylm.nn.recurrent: module gradient checks (every input, initial state and parameter) for the
cells and the stacked / bidirectional / variable-length / batch-first layers, PyTorch's parameter
names and init, dropout between layers, properties of padding, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_module
from tinylm.nn.module import Module
from tinylm.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class FlatStates(Module):
    """Wraps a layer (or cell) so that every initial state is its own float input, which is what
    check_module perturbs: forward(x, h0[, c0]) and a flat output tuple."""

    def __init__(self, layer, lengths=None):
        super().__init__()
        self.layer = layer
        self.lengths = lengths
        self.lstm = isinstance(layer, (LSTM, LSTMCell))
        self.cell = isinstance(layer, (RNNCell, LSTMCell, GRUCell))

    def forward(self, x, *states):
        hx = tuple(states) if self.lstm else states[0]
        out = self.layer(x, hx) if self.cell else self.layer(x, hx, lengths=self.lengths)
        if self.cell:
            return out
        output, final = out
        return (output, *final) if self.lstm else (output, final)

    def backward(self, g):
        if self.cell:
            dx, dhx = self.layer.backward(g)
        else:
            dx, dhx = self.layer.backward(g[0], *g[1:])
        return (dx, *dhx) if self.lstm else (dx, dhx)


def layer_input(rng, layer, T=3, B=2):
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    return rng.standard_normal(shape)


def initial_states(rng, layer, B=2):
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    n = 2 if isinstance(layer, LSTM) else 1
    return [rng.standard_normal(shape) * 0.5 for _ in range(n)]


# --- gradient checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("config", [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, batch_first=True, bias=False),
], ids=["plain", "2layer-bidir", "2layer-batchfirst-nobias"])
@pytest.mark.parametrize("lengths", [None, (3, 1)], ids=["full", "lengths"])
def test_layer_gradcheck_with_initial_state(rng, kind, config, lengths):
    layer = LAYERS[kind](3, 2, **config).double()
    lengths = None if lengths is None else np.array(lengths)
    m = FlatStates(layer, lengths)
    check_module(m, layer_input(rng, layer), *initial_states(rng, layer), tol=1e-6)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_gradcheck_default_state_and_tuple_upstream(rng, kind):
    layer = LAYERS[kind](2, 3, num_layers=2, bidirectional=True, batch_first=True).double()
    check_module(layer, layer_input(rng, layer), forward_kwargs={"lengths": np.array([2, 3])}, tol=1e-6)


def test_rnn_relu_gradcheck(rng):
    layer = RNN(3, 2, num_layers=2, nonlinearity="relu", bidirectional=True).double()
    check_module(FlatStates(layer), layer_input(rng, layer), *initial_states(rng, layer), tol=1e-6)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_between_layers_gradcheck(rng, kind):
    layer = LAYERS[kind](3, 2, num_layers=3, dropout=0.5, bidirectional=True).double()
    layer.rng = 7                                            # an int seed: the same masks on every call
    check_module(FlatStates(layer), layer_input(rng, layer), *initial_states(rng, layer), tol=1e-6)


@pytest.mark.parametrize("cls", [RNNCell, LSTMCell, GRUCell])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradcheck(rng, cls, bias):
    cell = cls(3, 2, bias=bias).double()
    x = rng.standard_normal((2, 3))
    states = [rng.standard_normal((2, 2)) for _ in range(2 if cls is LSTMCell else 1)]
    check_module(FlatStates(cell), x, *states, tol=1e-6)
    check_module(cell, x, tol=1e-6)                          # hx=None: zeros, and only dinput comes back


def test_relu_cell_gradcheck(rng):
    cell = RNNCell(3, 2, nonlinearity="relu").double()
    check_module(cell, rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), tol=1e-6)


# --- PyTorch's names, shapes, init ---------------------------------------------------------------

def test_parameter_names_and_shapes_are_pytorchs():
    lstm = LSTM(5, 3, num_layers=2, bidirectional=True)
    names = [f"{w}_l{layer}{sfx}" for layer in (0, 1) for sfx in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(lstm.state_dict()) == names
    shapes = dict((n, p.shape) for n, p in lstm.named_parameters())
    assert shapes["weight_ih_l0"] == (12, 5) and shapes["weight_ih_l1_reverse"] == (12, 6)
    assert shapes["weight_hh_l1"] == (12, 3) and shapes["bias_hh_l0_reverse"] == (12,)
    assert list(GRU(4, 2, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert list(GRUCell(4, 2).state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert GRUCell(4, 2).weight_hh.shape == (6, 2) and RNNCell(4, 2).weight_ih.shape == (2, 4)


@pytest.mark.parametrize("make", [lambda: GRU(3, 16, num_layers=2), lambda: LSTMCell(3, 16), lambda: RNN(3, 16)])
def test_init_is_uniform_one_over_sqrt_hidden(make):
    m = make()
    values = np.concatenate([p.data.ravel() for p in m.parameters()])
    bound = 1 / math.sqrt(16)
    assert values.dtype == np.float32
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.9 * bound and abs(values.mean()) < 0.1 * bound   # spread over the range


def test_load_state_dict_roundtrip(rng):
    a, b = GRU(3, 2, num_layers=2, bidirectional=True), GRU(3, 2, num_layers=2, bidirectional=True)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


# --- properties ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(LAYERS))
def test_padded_batch_equals_sequences_alone(rng, kind):
    """Stacked, bidirectional, batch-first: each sequence of a padded batch gives what it gives alone."""
    layer = LAYERS[kind](3, 2, num_layers=2, bidirectional=True, batch_first=True).double()
    lengths = np.array([5, 2, 4])
    x = rng.standard_normal((3, 5, 3))
    x[1, 2:] = 50.0                                          # padding content must not matter
    output, final = layer(x, lengths=lengths)
    dout = rng.standard_normal(output.shape)
    dx = layer.backward(dout)
    h_n = final[0] if kind == "lstm" else final
    for b, n in enumerate(lengths):
        out_b, final_b = layer(x[b:b + 1, :n])
        np.testing.assert_allclose(output[b, :n], out_b[0], rtol=1e-12, atol=1e-13)
        np.testing.assert_array_equal(output[b, n:], 0.0)
        np.testing.assert_allclose(h_n[:, b], (final_b[0] if kind == "lstm" else final_b)[:, 0], rtol=1e-12)
        dx_b = layer.backward(dout[b:b + 1, :n])
        np.testing.assert_allclose(dx[b, :n], dx_b[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(dx[b, n:], 0.0)        # padded steps receive no gradient


def test_batch_first_is_a_transpose(rng):
    a = LSTM(3, 2, num_layers=2, bidirectional=True).double()
    b = LSTM(3, 2, num_layers=2, bidirectional=True, batch_first=True).double()
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((4, 2, 3))
    (ya, (ha, ca)), (yb, (hb, cb)) = a(x), b(x.transpose(1, 0, 2))
    np.testing.assert_allclose(ya, yb.transpose(1, 0, 2), rtol=1e-13)
    np.testing.assert_allclose(ha, hb, rtol=1e-13)           # h_n is never batch first
    np.testing.assert_allclose(ca, cb, rtol=1e-13)


def test_stacked_layers_compose(rng):
    """A 2-layer GRU equals two 1-layer GRUs, the second fed the first's output."""
    two = GRU(3, 2, num_layers=2).double()
    first, second = GRU(3, 2).double(), GRU(2, 2).double()
    sd = two.state_dict()
    first.load_state_dict({k: v for k, v in sd.items() if k.endswith("l0")})
    second.load_state_dict({k.replace("l1", "l0"): v for k, v in sd.items() if k.endswith("l1")})
    x = rng.standard_normal((4, 2, 3))
    y, h = two(x)
    y1, h1 = first(x)
    y2, h2 = second(y1)
    np.testing.assert_allclose(y, y2, rtol=1e-13)
    np.testing.assert_allclose(h, np.concatenate([h1, h2]), rtol=1e-13)


def test_dropout_train_eval_and_seed(rng):
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    a = LSTM(3, 4, num_layers=2, dropout=0.5, rng=3)
    b = LSTM(3, 4, num_layers=2, dropout=0.5, rng=3)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])          # same seed: same weights and masks
    y_train = a(x)[0]
    a.eval()
    y_eval1, y_eval2 = a(x)[0], a(x)[0]
    np.testing.assert_array_equal(y_eval1, y_eval2)          # no dropout at eval
    assert not np.allclose(y_train, y_eval1)
    plain = LSTM(3, 4, num_layers=2)
    plain.load_state_dict(a.state_dict())
    np.testing.assert_allclose(plain(x)[0], y_eval1, rtol=1e-6)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers=1"):
        GRU(3, 2, dropout=0.2)


def test_backward_accumulates_and_frozen_parameters_pass_gradient(rng):
    layer = GRU(3, 2).double()
    x = rng.standard_normal((3, 2, 3))
    dy = rng.standard_normal((3, 2, 2))
    layer(x)
    layer.backward(dy)
    g1 = layer.weight_hh_l0.grad.copy()
    layer(x)
    dx = layer.backward(dy)
    np.testing.assert_allclose(layer.weight_hh_l0.grad, 2 * g1)
    layer.zero_grad()
    layer.requires_grad_(False)
    layer(x)
    np.testing.assert_allclose(layer.backward(dy), dx)
    assert all(p.grad is None for p in layer.parameters())


@given(kind=st.sampled_from(list(LAYERS)), T=st.integers(1, 4), B=st.integers(1, 3), layers=st.integers(1, 2),
       bidir=st.booleans(), batch_first=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_layer_shapes_and_dtypes(kind, T, B, layers, bidir, batch_first, dtype):
    layer = LAYERS[kind](3, 2, num_layers=layers, bidirectional=bidir, batch_first=batch_first).to(dtype)
    x = np.ones((B, T, 3) if batch_first else (T, B, 3), dtype)
    output, final = layer(x)
    D = 2 if bidir else 1
    assert output.shape == x.shape[:2] + (D * 2,) and output.dtype == dtype
    for f in (final if kind == "lstm" else (final,)):
        assert f.shape == (layers * D, B, 2) and f.dtype == dtype
    dx = layer.backward(np.ones_like(output))
    assert dx.shape == x.shape and dx.dtype == dtype
    assert all(p.grad.dtype == dtype and p.grad.shape == p.shape for p in layer.parameters())


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, err, match", [
    (lambda m, x: m(x[0]), ValueError, r"input: expected shape \(T, B, input_size\).*2 dims, expected 3"),
    (lambda m, x: m(x[..., :2]), ValueError, r"input: expected shape \(T, B, input_size\) with input_size=3.*"
                                             r"input_size=2, not 3"),
    (lambda m, x: m(x, lengths=np.array([5, 1])), ValueError, r"lengths: every length must lie in \[1, 4\].*got 5"),
    (lambda m, x: m(x, hx=np.zeros((4, 2, 3))), TypeError, r"hx: expected a tuple \(h_0, c_0\)"),
    (lambda m, x: m(x, hx=(np.zeros((4, 2, 3)), np.zeros((2, 2, 3)))), ValueError,
     r"c_0: expected shape \(4, 2, 3\), got shape \(2, 2, 3\)"),
    (lambda m, x: m(x.astype(np.float32)), TypeError, r"input: dtype float32 differs from the parameters' float64"),
    (lambda m, x: m.backward(np.zeros((4, 2, 6))), RuntimeError, r"LSTM.backward called before forward"),
])
def test_lstm_bad_input(rng, call, err, match):
    m = LSTM(3, 3, num_layers=2, bidirectional=True).double()
    with pytest.raises(err, match=match):
        call(m, rng.standard_normal((4, 2, 3)))


def test_bad_input_messages_cells_and_config(rng):
    with pytest.raises(ValueError, match=r"input: expected shape \(B, input_size\) with input_size=4"):
        GRUCell(4, 2)(rng.standard_normal((3, 5)).astype(np.float32))
    with pytest.raises(ValueError, match=r"hx: expected shape \(3, 2\)"):
        RNNCell(4, 2)(np.zeros((3, 4), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.5"):
        RNN(3, 2, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of \('tanh', 'relu'\), got 'gelu'"):
        RNN(3, 2, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"hidden_size: expected a positive int, got 0"):
        LSTM(3, 0)
    m = GRU(3, 2, batch_first=True)
    y, _ = m(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"doutput: expected shape \(2, 4, 2\)"):
        m.backward(np.zeros((4, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"dh_n: expected shape \(1, 2, 2\)"):
        m.backward(y, np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("make, match", [
    (lambda: LSTM(3, 4, bidirectional="yes"), r"bidirectional: expected a bool, got 'yes'"),
    (lambda: LSTM(3, 4, batch_first=1.5), r"batch_first: expected a bool, got 1.5"),
    (lambda: GRU(3, 4, bias=None), r"bias: expected a bool, got None"),
    (lambda: LSTMCell(3, 4, bias="no"), r"bias: expected a bool, got 'no'"),
    (lambda: RNN(3, 4, rng="abc"), r"rng: expected None, a non-negative int .*got 'abc'"),
    (lambda: RNN(3, 4, dtype=np.int32), r"dtype: expected a floating dtype .*got int32"),
])
def test_bad_flags_and_dtype(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_backward_checks_the_upstream_gradients_dtype(rng):
    m = RNN(3, 4)
    y, h_n = m(rng.standard_normal((4, 2, 3)).astype(np.float32))
    with pytest.raises(TypeError, match=r"doutput: expected a floating-point array .*got int64"):
        m.backward(np.ones((4, 2, 4), int))
    with pytest.raises(TypeError, match=r"doutput: expected dtype float32 \(the forward's output\), got float64"):
        m.backward(y.astype(np.float64))
    with pytest.raises(TypeError, match=r"dh_n: expected dtype float32 \(the forward's output\), got float64"):
        m.backward(y, h_n.astype(np.float64))
    with pytest.raises(TypeError, match=r"doutput: a tuple must be shaped like the output, \(doutput, dh_n\), "
                                        r"got a tuple of 3"):
        m.backward((y, h_n, h_n))
    lstm = LSTM(3, 4)
    out, (h, c) = lstm(rng.standard_normal((4, 2, 3)).astype(np.float32))
    with pytest.raises(TypeError, match=r"doutput: a tuple must be shaped like the output, "
                                        r"\(doutput, \(dh_n, dc_n\)\)"):
        lstm.backward((out, h))
    cell = LSTMCell(3, 4)
    h, c = cell(rng.standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(TypeError, match=r"dh: a tuple must be shaped like the output, \(dh', dc'\), got a tuple of 3"):
        cell.backward((h, c, c))
    with pytest.raises(TypeError, match=r"dh': expected a floating-point array .*got int64"):
        cell.backward(np.ones((2, 4), int))
