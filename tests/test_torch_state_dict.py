"""PyTorch cross-check: a torch module's state_dict, exported as NumPy arrays, loads into the tinylm
module of the same name, and outputs and every gradient then agree (float64, to 1e-10).

Run with the torch venv:
    PYTHONPATH=. /work/torchenv/bin/python -m pytest tests/test_torch_state_dict.py -p no:cacheprovider
The load_state_dict error tests at the end need no torch and run everywhere.
"""
from collections import OrderedDict

import numpy as np
import pytest

from tinylm.nn.container import Sequential
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.normalization import LayerNorm

TOL = 1e-10


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


def _export(torch_module) -> dict:
    """A torch state_dict as plain NumPy arrays, which is all tinylm ever sees."""
    return OrderedDict((k, v.detach().cpu().numpy().copy()) for k, v in torch_module.state_dict().items())


def _randomize(torch, torch_module) -> None:
    """Move parameters off their init values (LayerNorm's ones/zeros would hide a swap of weight and bias)."""
    with torch.no_grad():
        for p in torch_module.parameters():
            p.normal_()


def _assert_close(name, ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL, err_msg=name)


def _cross_check(torch, torch_module, ours, x, rng):
    """Load torch's weights into ``ours``, run both on ``x`` with one upstream gradient, compare all."""
    torch_module = torch_module.double()
    _randomize(torch, torch_module)
    ours.double().load_state_dict(_export(torch_module))
    is_ids = x.dtype.kind in "iu"
    xt = torch.tensor(x, requires_grad=not is_ids)
    yt = torch_module(xt)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))

    y = ours(x)
    dx = ours.backward(dy)
    _assert_close("output", y, yt.detach().numpy())
    if is_ids:
        assert dx is None
    else:
        _assert_close("input gradient", dx, xt.grad.numpy())
    torch_grads = {n: p.grad.numpy() for n, p in torch_module.named_parameters()}
    our_grads = {n: p.grad for n, p in ours.named_parameters()}
    assert list(our_grads) == list(torch_grads)
    for n, g in torch_grads.items():
        _assert_close(f"gradient of {n}", our_grads[n], g)


@pytest.mark.torch
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(torch, rng, bias):
    _cross_check(torch, torch.nn.Linear(5, 3, bias=bias), Linear(5, 3, bias=bias), rng.standard_normal((2, 4, 5)), rng)


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", [{}, {"eps": 1e-2}, {"bias": False}, {"elementwise_affine": False}])
def test_layernorm_matches_torch(torch, rng, kwargs):
    x = 3.0 * rng.standard_normal((2, 3, 6)) + 1.0
    _cross_check(torch, torch.nn.LayerNorm(6, **kwargs), LayerNorm(6, **kwargs), x, rng)


@pytest.mark.torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(torch, rng, padding_idx):
    ids = np.array([[1, 2, 2, 9], [0, 9, 1, 1]])             # repeated ids, and both padding choices present
    _cross_check(torch, torch.nn.Embedding(10, 4, padding_idx=padding_idx),
                 Embedding(10, 4, padding_idx=padding_idx), ids, rng)


@pytest.mark.torch
def test_sequential_names_match_torch(torch, rng):
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 2))
    ours = Sequential(Linear(4, 6), LayerNorm(6), Linear(6, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _cross_check(torch, theirs, ours, rng.standard_normal((3, 4)), rng)


@pytest.mark.torch
def test_embedding_init_matches_torch_statistics(torch):
    # Same distribution as PyTorch's default (N(0, 1), padding row zero), not the same numbers.
    theirs = torch.nn.Embedding(1000, 64, padding_idx=3).weight.detach().numpy()
    ours = Embedding(1000, 64, padding_idx=3).weight.data
    assert np.all(theirs[3] == 0) and np.all(ours[3] == 0)
    assert abs(ours.std() - theirs.std()) < 0.02 and abs(ours.mean() - theirs.mean()) < 0.02


# --- load_state_dict errors (no torch needed) ---

def _linear_state(rng, out=3, inp=5):
    return OrderedDict(weight=rng.standard_normal((out, inp)), bias=rng.standard_normal(out))


def test_wrong_shape_is_listed_and_nothing_changes(rng):
    m = Sequential(Linear(5, 3), LayerNorm(3))
    before = {k: v.copy() for k, v in m.state_dict().items()}
    state = OrderedDict(("0." + k, v) for k, v in _linear_state(rng, inp=4).items())
    state["1.weight"], state["1.bias"] = np.ones(4), np.zeros(3)
    with pytest.raises(ValueError, match=r"shape mismatch for 0.weight: checkpoint \(3, 4\) vs model \(3, 5\); "
                                         r"1.weight: checkpoint \(4,\) vs model \(3,\)"):
        m.load_state_dict(state)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_missing_and_unexpected_keys_are_listed(rng):
    m = LayerNorm(5)
    with pytest.raises(KeyError, match=r"missing keys \['bias'\], unexpected keys \['running_mean'\]"):
        m.load_state_dict({"weight": np.ones(5), "running_mean": np.zeros(5)})
    missing, unexpected = m.load_state_dict({"weight": np.full(5, 2.0), "extra": np.zeros(1)}, strict=False)
    assert missing == ["bias"] and unexpected == ["extra"]
    np.testing.assert_array_equal(m.weight.data, 2.0)
    assert m.weight.dtype == np.float32                       # converted to the parameter's dtype


def test_embedding_vocab_mismatch_is_listed(rng):
    with pytest.raises(ValueError, match=r"weight: checkpoint \(11, 4\) vs model \(10, 4\)"):
        Embedding(10, 4).load_state_dict({"weight": rng.standard_normal((11, 4))})
