"""Recurrent layers: the Elman RNN (tanh or relu), the LSTM and the GRU, with PyTorch's weight
layouts and gate orders, as single steps (the cells) and over whole sequences (backpropagation
through time, BPTT).

Derivation: derivations/recurrent.md.  Modules: tinylm.nn.recurrent (``RNN``, ``LSTM``, ``GRU``,
``RNNCell``, ``LSTMCell``, ``GRUCell``).  Tests: tests/test_ops_recurrent.py,
tests/test_nn_recurrent.py, tests/test_torch_recurrent.py.

Shapes: T time steps, B batch, I input size, H hidden size (here H is NOT a head count), G gates
(1 for the RNN, 4 for the LSTM, 3 for the GRU). Sequences are time-major, x (T, B, I), like
PyTorch's default ``batch_first=False``. Weights: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H),
``bias_ih`` and ``bias_hh`` (G*H,), each optional bias ``None`` for ``bias=False``. The G blocks
of H rows are, in order: LSTM i, f, g, o; GRU r, z, n.

One step splits into two halves. The input half ``gi = x W_ih^T + b_ih`` does not depend on the
previous state, so the sequence ops compute it for all T steps in ONE matmul before the time
loop (and its gradients in one matmul after the backward loop). Only the hidden half
``gh = h W_hh^T + b_hh`` and the gate arithmetic run inside the loop, in the ``_<cell>_step``
functions, which the cells and the sequences share:

    _rnn_step   h' = f(gi + gh)                                        f = tanh or relu
    _lstm_step  i, f, g, o = sig, sig, tanh, sig (gi + gh)             c' = f*c + i*g,  h' = o*tanh(c')
    _gru_step   r, z = sig(gi_r + gh_r), sig(gi_z + gh_z)              n = tanh(gi_n + r*gh_n)
                h' = (1 - z)*n + z*h

Variable lengths: ``lengths`` (B,) marks steps t >= lengths[b] as padding. A padded step keeps
the previous state (so h_n is the state at each sequence's last real step, and the reverse
direction starts from h0 at each sequence's last real step, as PyTorch's packed sequences do),
outputs zero, and receives zero gradient.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_choice, check_flag, check_float, check_grad, check_lengths, check_shape
from tinylm.backend import array_module
from tinylm.ops.activations import sigmoid
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward
from tinylm.ops.matmul import matmul

__all__ = [
    "RNNStep", "LSTMStep", "GRUStep", "CellCache", "SequenceCache",
    "rnn_cell_forward", "rnn_cell_backward", "lstm_cell_forward", "lstm_cell_backward",
    "gru_cell_forward", "gru_cell_backward",
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
]

NONLINEARITIES = ("tanh", "relu")


# --------------------------------------------------------------------------------------------
# Step caches: what one time step keeps for its backward
# --------------------------------------------------------------------------------------------

class RNNStep(NamedTuple):
    h_prev: object      # (B,H) h_{t-1}: needed for dW_hh = sum_t da_t^T h_{t-1}
    h: object           # (B,H) h_t = f(a_t): both derivatives read off it, tanh' = 1 - h^2, relu' = [h > 0]
    nonlinearity: str   # "tanh" or "relu"


class LSTMStep(NamedTuple):
    h_prev: object      # (B,H) h_{t-1}: for dW_hh
    c_prev: object      # (B,H) c_{t-1}: df = dc_t * c_{t-1}
    i: object           # (B,H) input gate sigmoid(a_i): di = dc_t * g, and sigmoid' = i (1 - i)
    f: object           # (B,H) forget gate: dc_{t-1} = dc_t * f
    g: object           # (B,H) candidate tanh(a_g): di = dc_t * g, and tanh' = 1 - g^2
    o: object           # (B,H) output gate: the path h_t -> c_t is scaled by o
    tanh_c: object      # (B,H) tanh(c_t): do = dh_t * tanh(c_t), and tanh' = 1 - tanh_c^2


class GRUStep(NamedTuple):
    h_prev: object      # (B,H) h_{t-1}: for dW_hh, and dz = dh_t * (h_{t-1} - n)
    r: object           # (B,H) reset gate sigmoid(a_r): scales hn inside the candidate
    z: object           # (B,H) update gate sigmoid(a_z): h_t = (1 - z) n + z h_{t-1}
    n: object           # (B,H) candidate tanh(a_n): tanh' = 1 - n^2
    hn: object          # (B,H) W_hn h_{t-1} + b_hn, the hidden part of a_n: dr = da_n * hn


class CellCache(NamedTuple):
    proj: LinearCache   # the input projection gi = x W_ih^T + b_ih (for dx, dW_ih, db_ih)
    step: tuple         # the RNNStep / LSTMStep / GRUStep of the one step
    weight_hh: object   # (G*H,H) for the gradient into h_{t-1}
    has_bias_hh: bool   # whether a dbias_hh is returned


class SequenceCache(NamedTuple):
    proj: LinearCache   # the input projection of ALL steps, gi = x W_ih^T + b_ih, (T,B,I) -> (T,B,G*H)
    steps: list         # T step caches, indexed by time t (whichever way the loop ran)
    weight_hh: object   # (G*H,H) for the gradient into h_{t-1}
    has_bias_hh: bool   # whether a dbias_hh is returned
    mask: object        # (T,B,1) bool, True at real steps (t < lengths[b]); None without lengths
    reverse: bool       # whether the loop ran from t = T-1 down to 0


# --------------------------------------------------------------------------------------------
# Argument checks shared by every op here
# --------------------------------------------------------------------------------------------

def _check_args(gates: int, x_spec: tuple, x, states: dict, weight_ih, weight_hh, bias_ih, bias_hh) -> dict:
    """Backend, dtypes and shapes of one cell's or sequence's arguments; returns the bound sizes.

    Weights first (they fix H and I), so that a wrong input is the one the error names.
    """
    arrays = {"x": x, **states, "weight_ih": weight_ih, "weight_hh": weight_hh,
              "bias_ih": bias_ih, "bias_hh": bias_hh}
    array_module(*arrays.items())
    for name, a in arrays.items():
        if a is not None:
            check_float(name, a)
            if a.dtype != x.dtype:
                raise TypeError(f"{name}: dtype {a.dtype} differs from x's {x.dtype}; cast them to one dtype")
    gh = "H" if gates == 1 else f"{gates}H"                  # the symbol for G*H in messages: "4H"
    dims = check_shape("weight_hh", weight_hh, (None, "H"))
    dims[gh] = gates * dims["H"]
    check_shape("weight_hh", weight_hh, (gh, "H"), dims)
    check_shape("weight_ih", weight_ih, (gh, "I"), dims)
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if b is not None:
            check_shape(name, b, (gh,), dims)
    check_shape("x", x, x_spec, dims)
    for name, s in states.items():
        check_shape(name, s, ("B", "H"), dims)
    return dims


def _length_mask(lengths, T: int, B: int, xp):
    """(T,B,1) bool, True where step t is real for sequence b (t < lengths[b]); None for no lengths."""
    if lengths is None:
        return None
    lengths = check_lengths("lengths", lengths, T, B)                      # host int64 (B,)
    return (xp.arange(T)[:, None] < xp.asarray(lengths)[None, :])[:, :, None]


# --------------------------------------------------------------------------------------------
# One step of each cell: the hidden half gh = h W_hh^T + b_hh and the gate arithmetic
# --------------------------------------------------------------------------------------------

def _hidden_proj(h, weight_hh, bias_hh):
    gh = matmul(h, weight_hh.T)                              # (B,H) @ (H,G*H) -> (B,G*H)
    return gh if bias_hh is None else gh + bias_hh


def _rnn_step(gi, state, weight_hh, bias_hh, nonlinearity):
    (h_prev,) = state
    xp = array_module(("gi", gi))
    a = gi + _hidden_proj(h_prev, weight_hh, bias_hh)        # (B,H) pre-activation a_t
    h = xp.tanh(a) if nonlinearity == "tanh" else xp.maximum(a, 0)
    return (h,), RNNStep(h_prev, h, nonlinearity)


def _rnn_step_backward(dstate, step: RNNStep, weight_hh):
    (dh,) = dstate
    h_prev, h, nonlinearity = step
    if nonlinearity == "tanh":
        da = dh * (1 - h * h)                                # h = tanh(a)  =>  da = dh (1 - h^2)
    else:
        da = dh * (h > 0)                                    # h = relu(a)  =>  da = dh [a > 0]
    dh_prev = matmul(da, weight_hh)                          # a = ... + h_prev W_hh^T  =>  dh_prev = da W_hh
    return da, da, (dh_prev,)                                # gi and gh enter a alike: dgi = dgh = da


def _lstm_step(gi, state, weight_hh, bias_hh):
    h_prev, c_prev = state
    xp = array_module(("gi", gi))
    a = gi + _hidden_proj(h_prev, weight_hh, bias_hh)        # (B,4H) pre-activations of i, f, g, o
    a_i, a_f, a_g, a_o = xp.split(a, 4, axis=-1)             # 4 x (B,H), PyTorch's gate order
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), xp.tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g                                   # (B,H) new cell state
    tanh_c = xp.tanh(c)
    h = o * tanh_c                                           # (B,H) new hidden state
    return (h, c), LSTMStep(h_prev, c_prev, i, f, g, o, tanh_c)


def _lstm_step_backward(dstate, step: LSTMStep, weight_hh):
    dh, dc = dstate                                          # dL/dh_t and dL/dc_t from above (output, later steps)
    h_prev, c_prev, i, f, g, o, tanh_c = step
    xp = array_module(("dh", dh))
    do = dh * tanh_c                                         # h = o tanh(c)
    dc = dc + dh * o * (1 - tanh_c * tanh_c)                 # c reaches L directly and through h = o tanh(c)
    di, df, dg = dc * g, dc * c_prev, dc * i                 # c = f c_prev + i g
    dc_prev = dc * f                                         #   ... and the gradient into c_{t-1}
    da = xp.concatenate([di * i * (1 - i),                   # i = sigmoid(a_i)
                         df * f * (1 - f),                   # f = sigmoid(a_f)
                         dg * (1 - g * g),                   # g = tanh(a_g)
                         do * o * (1 - o)], axis=-1)         # o = sigmoid(a_o)          (B,4H)
    dh_prev = matmul(da, weight_hh)                          # a = ... + h_prev W_hh^T  =>  dh_prev = da W_hh
    return da, da, (dh_prev, dc_prev)                        # gi and gh enter a alike: dgi = dgh = da


def _gru_step(gi, state, weight_hh, bias_hh):
    (h_prev,) = state
    xp = array_module(("gi", gi))
    gh = _hidden_proj(h_prev, weight_hh, bias_hh)            # (B,3H)
    gi_r, gi_z, gi_n = xp.split(gi, 3, axis=-1)              # 3 x (B,H), PyTorch's gate order r, z, n
    gh_r, gh_z, hn = xp.split(gh, 3, axis=-1)
    r = sigmoid(gi_r + gh_r)                                 # reset gate
    z = sigmoid(gi_z + gh_z)                                 # update gate
    n = xp.tanh(gi_n + r * hn)                               # candidate: r gates only the hidden part
    h = (1 - z) * n + z * h_prev                             # (B,H)
    return (h,), GRUStep(h_prev, r, z, n, hn)


def _gru_step_backward(dstate, step: GRUStep, weight_hh):
    (dh,) = dstate
    h_prev, r, z, n, hn = step
    xp = array_module(("dh", dh))
    dn = dh * (1 - z)                                        # h = (1 - z) n + z h_prev
    dz = dh * (h_prev - n)                                   #   ... =>  dz = dh (h_prev - n)
    da_n = dn * (1 - n * n)                                  # n = tanh(a_n), a_n = gi_n + r hn
    da_r = da_n * hn * r * (1 - r)                           # dr = da_n hn; r = sigmoid(a_r)
    da_z = dz * z * (1 - z)                                  # z = sigmoid(a_z)
    dgi = xp.concatenate([da_r, da_z, da_n], axis=-1)        # (B,3H) gi enters a_r, a_z, a_n with coefficient 1
    dgh = xp.concatenate([da_r, da_z, da_n * r], axis=-1)    # (B,3H) ... but hn enters a_n scaled by r
    dh_prev = dh * z + matmul(dgh, weight_hh)                # directly (z h_prev) and through gh = h_prev W_hh^T
    return dgi, dgh, (dh_prev,)


_STEPS = {"rnn": (_rnn_step, _rnn_step_backward), "lstm": (_lstm_step, _lstm_step_backward),
          "gru": (_gru_step, _gru_step_backward)}


# --------------------------------------------------------------------------------------------
# Cells: one step from x, with the input half as its own matmul
# --------------------------------------------------------------------------------------------

def _cell_forward(kind, x, state, weight_ih, weight_hh, bias_ih, bias_hh, **step_kwargs):
    step_forward, _ = _STEPS[kind]
    gi, proj = linear_forward(x, weight_ih, bias_ih)                       # (B,I) -> (B,G*H)
    new_state, step = step_forward(gi, state, weight_hh, bias_hh, **step_kwargs)
    return new_state, CellCache(proj, step, weight_hh, bias_hh is not None)


def _cell_backward(kind, dstate, cache: CellCache):
    _, step_backward = _STEPS[kind]
    proj, step, weight_hh, has_bias_hh = cache
    shape = tuple(step.h_prev.shape)                                       # (B,H), every state's shape
    dstate = tuple(_upstream(name, d, shape, step.h_prev) for name, d in zip(("dh'", "dc'"), dstate))
    dgi, dgh, dstate_prev = step_backward(dstate, step, weight_hh)        # new_state = step_forward(gi, state, ...)
    dx, dweight_ih, dbias_ih = linear_backward(dgi, proj)                 # gi = x W_ih^T + b_ih
    dweight_hh = matmul(dgh.T, step.h_prev)                              # gh = h W_hh^T + b_hh  =>  dW_hh = dgh^T h
    dbias_hh = dgh.sum(axis=0) if has_bias_hh else None                  # gh = ... + b_hh  =>  db_hh = sum_B dgh
    return (dx, *dstate_prev, dweight_ih, dweight_hh, dbias_ih, dbias_hh)


def _upstream(name, d, shape, like):
    """The upstream gradient ``d`` checked against ``shape`` and ``like``'s dtype (the forward's);
    None stands for zeros (an output L ignores)."""
    xp = array_module((name, d))
    if d is None:
        return xp.zeros(shape, dtype=like.dtype)
    check_grad(name, d, shape, like.dtype)
    return d


def _split_dout(dout, names: tuple):
    """``dout`` must be a tuple (or list) of one upstream gradient per output, named ``names``
    (each array or None): unpacking it blindly would split a bare array along its first axis."""
    if not isinstance(dout, (tuple, list)) or len(dout) != len(names):
        got = (f"a {type(dout).__name__} of {len(dout)}" if isinstance(dout, (tuple, list))
               else type(dout).__name__ + (f" of shape {tuple(dout.shape)}" if hasattr(dout, "shape") else ""))
        raise TypeError(f"dout: expected a tuple ({', '.join(names)}) of {len(names)} gradients "
                        f"(each an array or None), got {got}")
    return tuple(dout)


def rnn_cell_forward(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """One Elman RNN step, ``h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh)`` with f = tanh or relu.

    Shapes: x (B,I), h (B,H), weight_ih (H,I), weight_hh (H,H), biases (H,) or None -> h' (B,H).
    Returns ``(h', cache)``.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    _check_args(1, ("B", "I"), x, {"h": h}, weight_ih, weight_hh, bias_ih, bias_hh)
    (h_new,), cache = _cell_forward("rnn", x, (h,), weight_ih, weight_hh, bias_ih, bias_hh,
                                    nonlinearity=nonlinearity)
    return h_new, cache


def rnn_cell_backward(dh_new, cache: CellCache):
    """Gradients of one RNN step. Shapes: dh' (B,H) -> dx (B,I), dh (B,H), dweight_ih (H,I),
    dweight_hh (H,H), dbias_ih (H,) or None, dbias_hh (H,) or None."""
    return _cell_backward("rnn", (dh_new,), cache)


def lstm_cell_forward(x, h, c, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step (gates i, f, g, o in PyTorch's order)::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x W_ih^T + b_ih + h W_hh^T + b_hh)
        c' = f * c + i * g,   h' = o * tanh(c')

    Shapes: x (B,I), h and c (B,H), weight_ih (4H,I), weight_hh (4H,H), biases (4H,) or None
    -> h' (B,H), c' (B,H). Returns ``((h', c'), cache)``.
    """
    _check_args(4, ("B", "I"), x, {"h": h, "c": c}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _cell_forward("lstm", x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)


def lstm_cell_backward(dout, cache: CellCache):
    """Gradients of one LSTM step. ``dout = (dh', dc')``, either may be None (zero).

    Shapes: dh', dc' (B,H) -> dx (B,I), dh (B,H), dc (B,H), dweight_ih (4H,I), dweight_hh (4H,H),
    dbias_ih (4H,) or None, dbias_hh (4H,) or None.
    """
    return _cell_backward("lstm", _split_dout(dout, ("dh'", "dc'")), cache)


def gru_cell_forward(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step (gates r, z, n in PyTorch's order)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h

    Shapes: x (B,I), h (B,H), weight_ih (3H,I), weight_hh (3H,H), biases (3H,) or None -> h' (B,H).
    Returns ``(h', cache)``.
    """
    _check_args(3, ("B", "I"), x, {"h": h}, weight_ih, weight_hh, bias_ih, bias_hh)
    (h_new,), cache = _cell_forward("gru", x, (h,), weight_ih, weight_hh, bias_ih, bias_hh)
    return h_new, cache


def gru_cell_backward(dh_new, cache: CellCache):
    """Gradients of one GRU step. Shapes: dh' (B,H) -> dx (B,I), dh (B,H), dweight_ih (3H,I),
    dweight_hh (3H,H), dbias_ih (3H,) or None, dbias_hh (3H,) or None."""
    return _cell_backward("gru", (dh_new,), cache)


# --------------------------------------------------------------------------------------------
# Sequences: the time loop (forward) and backpropagation through time (backward)
# --------------------------------------------------------------------------------------------

def _sequence_forward(kind, x, state, weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse, **step_kwargs):
    """Run one direction of one layer over the sequence; ``state`` is (h0,) or (h0, c0)."""
    xp = array_module(("x", x))
    reverse = check_flag("reverse", reverse)
    step_forward, _ = _STEPS[kind]
    T, B = x.shape[:2]
    if T == 0:
        raise ValueError(f"x: expected a sequence of at least one step, got shape {tuple(x.shape)} (T=0)")
    mask = _length_mask(lengths, T, B, xp)                                 # (T,B,1) or None
    gi, proj = linear_forward(x, weight_ih, bias_ih)         # (T,B,I) -> (T,B,G*H): all steps in one matmul
    y = xp.zeros((T,) + state[0].shape, dtype=x.dtype)                     # (T,B,H)
    steps = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        new, steps[t] = step_forward(gi[t], state, weight_hh, bias_hh, **step_kwargs)
        if mask is None:
            state = new
            y[t] = new[0]
        else:                                                # a padded step keeps the old state and outputs 0
            state = tuple(xp.where(mask[t], s_new, s) for s_new, s in zip(new, state))
            y[t] = xp.where(mask[t], new[0], 0)
    cache = SequenceCache(proj, steps, weight_hh, bias_hh is not None, mask, reverse)
    return (y, *state), cache


def _sequence_backward(kind, dy, dfinal, cache: SequenceCache):
    """BPTT: the forward loop run backwards in time. ``dfinal`` is (dh_n,) or (dh_n, dc_n)."""
    proj, steps, weight_hh, has_bias_hh, mask, reverse = cache
    _, step_backward = _STEPS[kind]
    xp = array_module(("x", proj.x))
    T, B, _ = proj.x.shape
    G_H, H = weight_hh.shape
    dy = _upstream("dy", dy, (T, B, H), proj.x)                            # (T,B,H), None: zeros
    dstate = [_upstream(name, d, (B, H), proj.x) for name, d in zip(("dh_n", "dc_n"), dfinal)]   # each (B,H)
    dgi = xp.empty((T, B, G_H), dtype=proj.x.dtype)                        # (T,B,G*H), filled step by step
    dgh = xp.empty_like(dgi)                                               # (T,B,G*H)
    for t in (range(T) if reverse else range(T - 1, -1, -1)):             # the forward's order, reversed
        dnew = [dstate[0] + dy[t], *dstate[1:]]              # y_t = h_t: L reaches h_t through both
        if mask is not None:                                 # state_t = where(m_t, new_t, state_{t-1}):
            dcarry = [xp.where(mask[t], 0, d) for d in dstate]   # padded step: passes to state_{t-1} untouched
            dnew = [xp.where(mask[t], d, 0) for d in dnew]       # real step: all of it enters the step
        dgi[t], dgh[t], dprev = step_backward(tuple(dnew), steps[t], weight_hh)   # new = step(gi[t], state)
        # state = new, or where(mask[t], new, state): the padded steps' share passes through in dcarry
        dstate = list(dprev) if mask is None else [p + c for p, c in zip(dprev, dcarry)]
    dx, dweight_ih, dbias_ih = linear_backward(dgi, proj)                 # gi = x W_ih^T + b_ih, all steps at once
    h_prev = xp.stack([s.h_prev for s in steps])                          # (T,B,H) h_{t-1} of every step
    dweight_hh = matmul(dgh.reshape(-1, G_H).T,                           # gh_t = h_{t-1} W_hh^T + b_hh, all t:
                        h_prev.reshape(-1, h_prev.shape[-1]))             # (G*H,T*B) @ (T*B,H) -> (G*H,H)
    dbias_hh = dgh.sum(axis=(0, 1)) if has_bias_hh else None              # gh_t = ... + b_hh  =>  db_hh = sum dgh
    return (dx, *dstate, dweight_ih, dweight_hh, dbias_ih, dbias_hh)


def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh", *,
                lengths=None, reverse=False):
    """One layer, one direction of an Elman RNN over a sequence.

    Shapes: x (T,B,I), h0 (B,H), weight_ih (H,I), weight_hh (H,H), biases (H,) or None,
    lengths (B,) ints in [1, T] or None -> y (T,B,H) (zero at padded steps), h_n (B,H) (the state
    at each sequence's last real step). ``reverse`` runs from t = T-1 down to 0.
    Returns ``((y, h_n), cache)``.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    _check_args(1, ("T", "B", "I"), x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _sequence_forward("rnn", x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse,
                             nonlinearity=nonlinearity)


def rnn_backward(dout, cache: SequenceCache):
    """BPTT for ``rnn_forward``. ``dout = (dy, dh_n)``, either may be None (zero).

    Shapes: dy (T,B,H), dh_n (B,H) -> dx (T,B,I), dh0 (B,H), dweight_ih (H,I), dweight_hh (H,H),
    dbias_ih (H,) or None, dbias_hh (H,) or None.
    """
    dy, dh_n = _split_dout(dout, ("dy", "dh_n"))
    return _sequence_backward("rnn", dy, (dh_n,), cache)


def lstm_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, lengths=None, reverse=False):
    """One layer, one direction of an LSTM over a sequence (the step is ``lstm_cell_forward``'s).

    Shapes: x (T,B,I), h0 and c0 (B,H), weight_ih (4H,I), weight_hh (4H,H), biases (4H,) or None,
    lengths (B,) ints in [1, T] or None -> y (T,B,H) (zero at padded steps), h_n and c_n (B,H)
    (the states at each sequence's last real step). Returns ``((y, h_n, c_n), cache)``.
    """
    _check_args(4, ("T", "B", "I"), x, {"h0": h0, "c0": c0}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _sequence_forward("lstm", x, (h0, c0), weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse)


def lstm_backward(dout, cache: SequenceCache):
    """BPTT for ``lstm_forward``. ``dout = (dy, dh_n, dc_n)``, any may be None (zero).

    Shapes: dy (T,B,H), dh_n and dc_n (B,H) -> dx (T,B,I), dh0 (B,H), dc0 (B,H),
    dweight_ih (4H,I), dweight_hh (4H,H), dbias_ih (4H,) or None, dbias_hh (4H,) or None.
    """
    dy, dh_n, dc_n = _split_dout(dout, ("dy", "dh_n", "dc_n"))
    return _sequence_backward("lstm", dy, (dh_n, dc_n), cache)


def gru_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, lengths=None, reverse=False):
    """One layer, one direction of a GRU over a sequence (the step is ``gru_cell_forward``'s).

    Shapes: x (T,B,I), h0 (B,H), weight_ih (3H,I), weight_hh (3H,H), biases (3H,) or None,
    lengths (B,) ints in [1, T] or None -> y (T,B,H) (zero at padded steps), h_n (B,H).
    Returns ``((y, h_n), cache)``.
    """
    _check_args(3, ("T", "B", "I"), x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _sequence_forward("gru", x, (h0,), weight_ih, weight_hh, bias_ih, bias_hh, lengths, reverse)


def gru_backward(dout, cache: SequenceCache):
    """BPTT for ``gru_forward``. ``dout = (dy, dh_n)``, either may be None (zero).

    Shapes: dy (T,B,H), dh_n (B,H) -> dx (T,B,I), dh0 (B,H), dweight_ih (3H,I), dweight_hh (3H,H),
    dbias_ih (3H,) or None, dbias_hh (3H,) or None.
    """
    dy, dh_n = _split_dout(dout, ("dy", "dh_n"))
    return _sequence_backward("gru", dy, (dh_n,), cache)
