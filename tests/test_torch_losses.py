"""Cross-check activations, softmax and losses against PyTorch in float64: values and gradients to 1e-10.

Run with the torch venv:
PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_torch_losses.py -p no:cacheprovider
"""
import numpy as np
import pytest

from tinylm.ops.activations import (gelu_backward, gelu_forward, relu_backward, relu_forward, sigmoid_backward,
                                    sigmoid_forward, tanh_backward, tanh_forward)
from tinylm.ops.losses import (bce_with_logits_backward, bce_with_logits_forward, cross_entropy_backward,
                               cross_entropy_forward, mse_backward, mse_forward)
from tinylm.ops.softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

TOL = dict(rtol=1e-10, atol=1e-10)


def _torch_value_and_grad(fn, x, *args, dout):
    """``fn(x, *args)`` in torch and the gradient of ``sum(out * dout)`` with respect to x."""
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, *args)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


def _compare(ours_fwd, ours_bwd, torch_fn, x, *torch_args, rng, **kwargs):
    y, cache = ours_fwd(x, **kwargs)
    dy = rng.standard_normal(np.shape(y))
    y_t, dx_t = _torch_value_and_grad(torch_fn, x, *torch_args, dout=dy)
    np.testing.assert_allclose(y, y_t, **TOL)
    np.testing.assert_allclose(ours_bwd(np.asarray(dy), cache), dx_t, **TOL)


@pytest.mark.parametrize("ours_fwd, ours_bwd, torch_fn", [
    (relu_forward, relu_backward, F.relu),
    (tanh_forward, tanh_backward, torch.tanh),
    (sigmoid_forward, sigmoid_backward, torch.sigmoid),
], ids=["relu", "tanh", "sigmoid"])
def test_elementwise_activations_match_torch(rng, ours_fwd, ours_bwd, torch_fn):
    x = np.concatenate([rng.standard_normal(20) * 4, [-800.0, -30.0, 30.0, 800.0]])
    _compare(ours_fwd, ours_bwd, torch_fn, x, rng=rng)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(rng, approximate):
    x = np.concatenate([rng.standard_normal((3, 7)).ravel() * 3, [-40.0, -6.0, 6.0, 40.0]])
    _compare(gelu_forward, gelu_backward, lambda t: F.gelu(t, approximate=approximate), x, rng=rng,
             approximate=approximate)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_match_torch(rng, axis):
    x = rng.standard_normal((3, 4, 5)) * 5
    _compare(softmax_forward, softmax_backward, lambda t: F.softmax(t, dim=axis), x, rng=rng, axis=axis)
    _compare(log_softmax_forward, log_softmax_backward, lambda t: F.log_softmax(t, dim=axis), x, rng=rng, axis=axis)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_matches_torch(rng, reduction, label_smoothing, ignore_index):
    B, T, V = 3, 4, 6
    logits = rng.standard_normal((B, T, V)) * 3
    target = rng.integers(0, V, (B, T))
    target[0, 1] = target[2, 3] = ignore_index

    def torch_ce(z, t):   # torch wants the class axis at 1: flatten (B, T) into rows
        out = F.cross_entropy(z.reshape(-1, V), t.reshape(-1), ignore_index=ignore_index,
                              label_smoothing=label_smoothing, reduction=reduction)
        return out.reshape(B, T) if reduction == "none" else out

    kwargs = dict(ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)
    _compare(lambda z, **kw: cross_entropy_forward(z, target, **kw), cross_entropy_backward, torch_ce,
             logits, torch.tensor(target), rng=rng, **kwargs)


def test_cross_entropy_all_ignored_matches_torch(rng):
    logits, target = rng.standard_normal((4, 5)), np.full(4, -100)
    loss, cache = cross_entropy_forward(logits, target, label_smoothing=0.1)
    y_t, dx_t = _torch_value_and_grad(lambda z: F.cross_entropy(z, torch.tensor(target), label_smoothing=0.1),
                                      logits, dout=np.array(1.0))
    assert np.isnan(loss) and np.isnan(y_t)
    np.testing.assert_array_equal(cross_entropy_backward(np.array(1.0), cache), dx_t)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_matches_torch(rng, reduction, with_pos_weight):
    logits = rng.standard_normal((4, 5)) * 4
    logits[0, :2] = [-60.0, 60.0]                     # far into the tails, where a naive log(sigmoid) fails
    target = rng.uniform(0, 1, (4, 5))
    pw = rng.uniform(0.2, 3.0, 5) if with_pos_weight else None
    torch_fn = lambda z: F.binary_cross_entropy_with_logits(
        z, torch.tensor(target), reduction=reduction, pos_weight=None if pw is None else torch.tensor(pw))
    _compare(lambda z, **kw: bce_with_logits_forward(z, target, pos_weight=pw, **kw), bce_with_logits_backward,
             torch_fn, logits, rng=rng, reduction=reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(rng, reduction):
    pred, target = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    _compare(lambda p, **kw: mse_forward(p, target, **kw), mse_backward,
             lambda p: F.mse_loss(p, torch.tensor(target), reduction=reduction), pred, rng=rng, reduction=reduction)
