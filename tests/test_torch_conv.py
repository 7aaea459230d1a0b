"""Cross-check against PyTorch (optional: skipped without torch): Conv1d (stride, padding,
dilation, bias or not) and MaxPool1d outputs and every gradient with the same weights in float64
to 1e-10, and the masked global pools against their PyTorch one-liners.

Run: PYTHONPATH=. /work/torchenv/bin/python -m pytest tests/test_torch_conv.py -p no:cacheprovider
"""
import numpy as np
import pytest

from tinylm.nn.conv import Conv1d, GlobalAvgPool1d, GlobalMaxPool1d, MaxPool1d

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

TOL = 1e-10


def close(a, b, what):
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=TOL, atol=TOL, err_msg=what)


@pytest.mark.parametrize("config", [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, stride=1, padding=3, dilation=2, bias=False),
    dict(kernel_size=4, stride=3, dilation=2),
])
def test_conv1d_matches_torch(config):
    torch.manual_seed(0)
    tm = torch.nn.Conv1d(3, 5, **config).double()
    m = Conv1d(3, 5, **config).double()
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11))
    xt = torch.tensor(x, requires_grad=True)
    y, yt = m(x), tm(xt)
    close(y, yt, "output")
    dy = rng.standard_normal(y.shape)
    (yt * torch.tensor(dy)).sum().backward()
    close(m.backward(dy), xt.grad, "dinput")
    for name, p in tm.named_parameters():
        close(dict(m.named_parameters())[name].grad, p.grad, name)


@pytest.mark.parametrize("kernel_size, stride", [(2, None), (3, 1), (3, 2), (4, 3)])
def test_max_pool1d_matches_torch(kernel_size, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 10))
    xt = torch.tensor(x, requires_grad=True)
    m = MaxPool1d(kernel_size, stride)
    y, yt = m(x), torch.nn.MaxPool1d(kernel_size, stride)(xt)
    close(y, yt, "output")
    dy = rng.standard_normal(y.shape)
    (yt * torch.tensor(dy)).sum().backward()
    close(m.backward(dy), xt.grad, "dinput")


def test_masked_global_pools_match_torch():
    rng = np.random.default_rng(2)
    lengths = np.array([7, 3, 1])
    x = rng.standard_normal((3, 4, 7))
    xt = torch.tensor(x, requires_grad=True)
    real = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    ymax_t = xt.masked_fill(~real[:, None, :], float("-inf")).amax(dim=2)
    yavg_t = (xt * real[:, None, :]).sum(dim=2) / torch.tensor(lengths)[:, None]
    pmax, pavg = GlobalMaxPool1d(), GlobalAvgPool1d()
    close(pmax(x, lengths=lengths), ymax_t, "max")
    close(pavg(x, mask=real.numpy()), yavg_t, "mean")
    gmax, gavg = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ((ymax_t * torch.tensor(gmax)).sum() + (yavg_t * torch.tensor(gavg)).sum()).backward()
    close(pmax.backward(gmax) + pavg.backward(gavg), xt.grad, "dinput")
