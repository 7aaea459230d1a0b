"""Cross-check against PyTorch (optional: skipped without torch). The same state dict, float64:
outputs, final states, input / initial-state gradients and every parameter gradient agree to 1e-10,
for RNN (tanh, relu), LSTM and GRU, stacked, bidirectional, batch first or not, with variable
lengths through ``pack_padded_sequence``, and for the three cells.

Run: PYTHONPATH=. /work/torchenv/bin/python -m pytest tests/test_torch_recurrent.py -p no:cacheprovider
"""
import numpy as np
import pytest

import tinylm.nn.recurrent as ours

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

TOL = 1e-10


def close(a, b, what):
    b = b.detach().numpy() if hasattr(b, "detach") else b
    np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=what)


def twin(torch_module, our_module):
    """Our module, float64, loaded with the torch module's state dict."""
    our_module.double()
    our_module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})
    return our_module


@pytest.mark.parametrize("kind", ["RNN-tanh", "RNN-relu", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("lengths", [None, (5, 2, 4)], ids=["full", "packed"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
def test_layer_matches_torch(kind, batch_first, lengths, with_hx):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    name, _, nonlinearity = kind.partition("-")
    kw = dict(num_layers=2, bidirectional=True, batch_first=batch_first)
    if nonlinearity:
        kw["nonlinearity"] = nonlinearity
    tm = getattr(torch.nn, name)(3, 4, **kw).double()
    m = twin(tm, getattr(ours, name)(3, 4, **kw))
    T, B, lstm = 5, 3, name == "LSTM"
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    hx = [rng.standard_normal((4, B, 4)) for _ in range(2 if lstm else 1)] if with_hx else None

    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx] if with_hx else None
    hx_arg = None if hxt is None else (tuple(hxt) if lstm else hxt[0])
    if lengths is None:
        out_t, final_t = tm(xt, hx_arg)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                         enforce_sorted=False)
        out_p, final_t = tm(packed, hx_arg)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=batch_first, total_length=T)
    finals_t = final_t if lstm else (final_t,)

    out, final = m(x, None if hx is None else (tuple(hx) if lstm else hx[0]),
                   lengths=None if lengths is None else np.array(lengths))
    finals = final if lstm else (final,)
    close(out, out_t, "output")
    for f, ft in zip(finals, finals_t):
        close(f, ft, "final state")

    dout = rng.standard_normal(out.shape)
    dfinals = [rng.standard_normal(f.shape) for f in finals]
    loss = (out_t * torch.tensor(dout)).sum() + sum((ft * torch.tensor(d)).sum() for ft, d in zip(finals_t, dfinals))
    loss.backward()
    grads = m.backward(dout, *dfinals)
    dx = grads[0] if with_hx else grads
    close(dx, xt.grad, "dinput")
    if with_hx:
        dhx = grads[1] if lstm else (grads[1],)
        for d, ht in zip(dhx, hxt):
            close(d, ht.grad, "d initial state")
    ours_params = dict(m.named_parameters())
    for pname, p in tm.named_parameters():
        close(ours_params[pname].grad, p.grad, pname)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_dropout_layers_agree_in_eval_mode(name):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 4, num_layers=3, dropout=0.4).double().eval()
    m = twin(tm, getattr(ours, name)(3, 4, num_layers=3, dropout=0.4)).eval()
    x = np.random.default_rng(2).standard_normal((6, 2, 3))
    close(m(x)[0], tm(torch.tensor(x))[0], "output")


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch(name, bias):
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    tm = getattr(torch.nn, name)(3, 4, bias=bias).double()
    m = twin(tm, getattr(ours, name)(3, 4, bias=bias))
    lstm = name == "LSTMCell"
    x = rng.standard_normal((2, 3))
    hx = [rng.standard_normal((2, 4)) for _ in range(2 if lstm else 1)]
    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    out_t = tm(xt, tuple(hxt) if lstm else hxt[0])
    out = m(x, tuple(hx) if lstm else hx[0])
    outs_t, outs = (out_t, out) if lstm else ((out_t,), (out,))
    douts = [rng.standard_normal(o.shape) for o in outs]
    for o, ot in zip(outs, outs_t):
        close(o, ot, "output")
    sum((ot * torch.tensor(d)).sum() for ot, d in zip(outs_t, douts)).backward()
    dx, dhx = m.backward(*douts)
    close(dx, xt.grad, "dinput")
    for d, ht in zip(dhx if lstm else (dhx,), hxt):
        close(d, ht.grad, "dhx")
    ours_params = dict(m.named_parameters())
    for pname, p in tm.named_parameters():
        close(ours_params[pname].grad, p.grad, pname)
