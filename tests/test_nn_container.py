"""Sequential and ModuleList: naming, list behaviour, chained forward/backward gradient checks."""
import copy
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinylm.gradcheck import check_module
from tinylm.nn.activation import GELU, ReLU, Sigmoid, Tanh
from tinylm.nn.container import ModuleList, Sequential
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.normalization import LayerNorm
from tinylm.nn.module import Parameter


class _FixedMaskDropout(Dropout):
    """The same mask on every call, so finite differences see one function."""

    def forward(self, x):
        self.rng = np.random.default_rng(5)
        return super().forward(x)


def test_sequential_linear_layernorm_dropout_gradcheck(rng):
    model = Sequential(Linear(5, 6), LayerNorm(6), _FixedMaskDropout(0.3), Linear(6, 3)).double()
    for p in model.parameters():
        p.data = p.data + 0.5 * rng.standard_normal(p.shape)  # LayerNorm away from ones/zeros
    report = check_module(model, rng.standard_normal((2, 3, 5)), tol=1e-7)
    assert set(report.errors) == {"input0", "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"}


def test_sequential_embedding_first_gradcheck(rng):
    model = Sequential(Embedding(7, 4, padding_idx=0), LayerNorm(4), Linear(4, 2)).double()
    ids = np.array([[1, 2, 2], [6, 5, 1]])                   # repeated ids, no padding id
    report = check_module(model, ids, tol=1e-6)
    assert set(report.errors) == {"0.weight", "1.weight", "1.bias", "2.weight", "2.bias"}
    model.zero_grad()
    out = model(ids)
    assert model.backward(np.ones_like(out)) is None


def test_sequential_runs_in_order_and_back_in_reverse(rng):
    a, b = Linear(3, 4).double(), Linear(4, 2).double()
    model = Sequential(a, b)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    y = model(x)
    np.testing.assert_allclose(y, (x @ a.weight.data.T + a.bias.data) @ b.weight.data.T + b.bias.data)
    dx = model.backward(dy)
    np.testing.assert_allclose(dx, dy @ b.weight.data @ a.weight.data)
    np.testing.assert_allclose(a.weight.grad, (dy @ b.weight.data).T @ x)



# --- property tests (hypothesis): random stacks of Linear / activations / LayerNorm ----------------

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU, "gelu_tanh": lambda: GELU("tanh")}


@st.composite
def _stacks(draw):
    """(layers, input width, seed): 1-5 float64 layers with random widths, every parameter random
    (LayerNorm's ones and zeros too, so that an identity-like layer cannot hide an error)."""
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    width = first = draw(st.integers(1, 5))
    layers = []
    for kind in draw(st.lists(st.sampled_from(["linear", "layernorm"] + list(_ACTIVATIONS)), min_size=1, max_size=5)):
        if kind == "linear":
            out = draw(st.integers(1, 5))
            layers.append(Linear(width, out, bias=draw(st.booleans()), rng=rng))
            width = out
        else:
            layers.append(LayerNorm(width) if kind == "layernorm" else _ACTIVATIONS[kind]())
    for layer in layers:
        layer.double()
        for p in layer.parameters():
            p.data = rng.standard_normal(p.shape)
    return layers, first, seed


@settings(max_examples=40, deadline=None)
@given(_stacks(), st.integers(1, 3))
def test_property_sequential_is_composition_and_reverse_chain(stack, B):
    """Sequential(l0, .., ln)(x) = ln(..l0(x)), and its backward equals ln.backward, .., l0.backward
    run by hand on an identical copy of the layers: same input gradient, same parameter gradients."""
    layers, width, seed = stack
    copies = copy.deepcopy(layers)                          # the hand-run chain: its own caches and grads
    model = Sequential(*layers)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((B, 2, width))
    y = model(x)
    h = x
    for layer in copies:
        h = layer(h)
    assert y.shape == h.shape and y.dtype == np.float64
    np.testing.assert_array_equal(y, h)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    g = dy
    for layer in reversed(copies):
        g = layer.backward(g)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, g)
    by_hand = {f"{i}.{name}": p.grad for i, layer in enumerate(copies) for name, p in layer.named_parameters()}
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert grads.keys() == by_hand.keys()
    for name, grad in grads.items():
        np.testing.assert_array_equal(grad, by_hand[name], err_msg=name)


def test_sequential_names_indexing_and_iteration():
    l0, n1, l2 = Linear(2, 3), LayerNorm(3), Linear(3, 1)
    model = Sequential(l0, n1, l2)
    assert len(model) == 3 and list(model) == [l0, n1, l2]
    assert model[0] is l0 and model[-1] is l2 and model[1] is n1
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    tail = model[1:]
    assert isinstance(tail, Sequential) and list(tail) == [n1, l2]
    assert list(tail.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]   # names kept, as PyTorch
    model.append(Dropout(0.1))
    assert len(model) == 4 and [n for n, _ in model.named_modules()][1:] == ["0", "1", "2", "3"]
    assert repr(model).splitlines()[1] == "  (0): Linear(in_features=2, out_features=3, bias=True)"


def test_sequential_from_ordered_dict():
    model = Sequential(OrderedDict([("proj", Linear(2, 2)), ("norm", LayerNorm(2))]))
    assert list(model.state_dict()) == ["proj.weight", "proj.bias", "norm.weight", "norm.bias"]
    assert model.proj is model[0]


def test_train_eval_reaches_children():
    model = Sequential(Linear(4, 4), Dropout(0.99))
    x = np.ones((3, 4), np.float32)
    assert model.eval()[1].training is False
    np.testing.assert_array_equal(model(x), model[0](x))        # dropout is off
    assert model.train()[1].training is True


def test_empty_sequential_is_identity():
    x = np.ones(3)
    assert Sequential()(x) is x and Sequential().backward(x) is x


def test_module_list():
    layers = ModuleList([Linear(2, 2), Linear(2, 2)])
    layers.append(LayerNorm(2)).extend([Dropout(0.2)])
    assert len(layers) == 4 and isinstance(layers[-2], LayerNorm) and isinstance(layers[3], Dropout)
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    sub = layers[:2]
    assert isinstance(sub, ModuleList) and list(sub) == list(layers)[:2]
    assert ModuleList().num_parameters() == 0
    with pytest.raises(NotImplementedError, match="ModuleList has no forward: iterate over it"):
        layers(np.ones(2))


def test_module_list_inside_a_module_registers_parameters():
    from tinylm.nn.module import Module

    class Stack(Module):
        def __init__(self):
            super().__init__()
            self.blocks = ModuleList([Linear(3, 3) for _ in range(2)])

    assert [n for n, _ in Stack().named_parameters()] == ["blocks.0.weight", "blocks.0.bias",
                                                         "blocks.1.weight", "blocks.1.bias"]


@pytest.mark.parametrize("bad, err, match", [
    (lambda: Sequential(Linear(2, 2), 3), TypeError, r"Sequential: entry 1 must be a tinylm Module, got int"),
    (lambda: ModuleList([Linear(2, 2), "x"]), TypeError, r"ModuleList: entry 1 must be a tinylm Module, got str"),
    (lambda: ModuleList(Linear(2, 2)), TypeError, r"ModuleList.extend: expected an iterable of modules"),
    (lambda: Sequential(Linear(2, 2))[1], IndexError, r"index 1 is out of range for a Sequential of length 1"),
    (lambda: ModuleList([Linear(2, 2)])[-2], IndexError, r"index -2 is out of range for a ModuleList of length 1"),
    (lambda: Sequential(Linear(2, 2))["0"], TypeError, r"Sequential indices must be ints or slices, got str"),
    (lambda: Sequential(Linear(2, 2)).backward(np.ones((1, 2), np.float32)), RuntimeError,
     r"Linear.backward called before forward"),
])
def test_container_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        bad()


def test_gradient_stopped_midway_is_a_clear_error():
    model = Sequential(Linear(2, 5), Embedding(5, 2))
    model[1](np.array([0, 1]))                               # run the part that can run
    with pytest.raises(RuntimeError, match=r"module '1' returned no input gradient, so module '0' before it"):
        model.backward(np.ones((2, 2), np.float32))


def test_sequential_backward_checks_dout_against_its_output(rng):
    seq = Sequential(Linear(3, 4), Linear(4, 2))
    seq(rng.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(TypeError, match=r"dout: expected a floating-point array .*got NoneType"):
        seq.backward(None)
    with pytest.raises(ValueError, match=r"dout: expected shape \(4, 2\), got shape \(4, 3\)"):
        seq.backward(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"dout: expected dtype float32 \(the forward's output\), got float64"):
        seq.backward(np.ones((4, 2)))


# --- Module and Parameter: arrays in, float dtypes, named errors --------------------------------

@pytest.mark.parametrize("bad, err, match", [
    (lambda m: Parameter([1.0, 2.0]), TypeError, r"data: expected a floating-point array .*got list"),
    (lambda m: Parameter(None), TypeError, r"data: expected a floating-point array .*got NoneType"),
    (lambda m: Parameter(np.ones(3, int)), TypeError, r"data: expected a floating-point array .*got int64"),
    (lambda m: Parameter(np.ones(3), requires_grad="yes"), TypeError, r"requires_grad: expected a bool, got 'yes'"),
    (lambda m: m.weight.accumulate(None), TypeError,
     r"accumulate: g: expected a floating-point gradient array for Parameter\(shape=\(3, 2\).*got NoneType"),
    (lambda m: m.weight.accumulate(np.ones((3, 2), int)), TypeError, r"accumulate: g: .*got int64"),
    (lambda m: m.weight.accumulate(np.ones((2, 3), np.float32)), ValueError,
     r"accumulate: g: expected the shape of Parameter\(shape=\(3, 2\), dtype=float32.*got shape \(2, 3\)"),
    (lambda m: m.load_state_dict(None), TypeError, r"state: expected a mapping \{name: array\} .*got NoneType"),
    (lambda m: m.load_state_dict([("weight", np.ones((3, 2)))]), TypeError, r"state: expected a mapping .*got list"),
    (lambda m: m.load_state_dict({"weight": np.ones((3, 2)).tolist(), "bias": np.ones(3)}), TypeError,
     r"state\['weight'\]: expected a floating-point array, got list"),
    (lambda m: m.load_state_dict({"weight": np.ones((3, 2), int), "bias": np.ones(3)}), TypeError,
     r"state\['weight'\]: expected a floating-point array, got int64"),
    (lambda m: m.load_state_dict(m.state_dict(), strict="no"), TypeError, r"strict: expected a bool, got 'no'"),
    (lambda m: m.to(np.int32), TypeError, r"dtype: expected a floating dtype \(float32 or float64\), got int32"),
    (lambda m: m.to("float33"), TypeError, r"dtype: expected a floating dtype .*got 'float33'"),
    (lambda m: m.train("no"), TypeError, r"mode: expected a bool, got 'no'"),
    (lambda m: m.requires_grad_(0), TypeError, r"flag: expected a bool, got 0"),
])
def test_module_and_parameter_bad_input(bad, err, match):
    m = Linear(2, 3)
    before = {n: p.copy() for n, p in m.state_dict().items()}
    with pytest.raises(err, match=match):
        bad(m)
    for n, p in m.state_dict().items():                      # nothing changed on the way to the error
        np.testing.assert_array_equal(p, before[n])
        assert p.dtype == np.float32


def test_load_state_dict_still_casts_between_float_dtypes():
    m = Linear(2, 3)
    m.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)})      # float64 into float32
    assert m.weight.data.dtype == np.float32 and m.weight.data[0, 0] == 1.0


def test_load_state_dict_non_strict_reports_unexpected_entries_of_any_kind():
    m = Linear(2, 3)
    state = {"weight": np.ones((3, 2)), "bias": np.zeros(3), "num_batches_tracked": np.array(3)}  # an int buffer
    assert m.load_state_dict(state, strict=False) == ([], ["num_batches_tracked"])
    assert m.weight.data[0, 0] == 1.0


def test_a_frozen_parameter_drops_its_gradient_but_still_checks_it():
    m = Linear(2, 3)
    m.weight.requires_grad = False
    m.weight.accumulate(np.ones((3, 2), np.float32))
    assert m.weight.grad is None                                         # frozen: nothing accumulates
    with pytest.raises(ValueError, match=r"accumulate: g: expected the shape of"):
        m.weight.accumulate(np.ones((2, 3), np.float32))                 # but a wrong gradient is still a bug
