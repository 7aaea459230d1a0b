"""Recurrent modules with PyTorch's signatures, parameter names, layouts and numerics: ``RNN``,
``LSTM``, ``GRU`` (stacked, bidirectional, variable lengths) and the one-step ``RNNCell``,
``LSTMCell``, ``GRUCell``, over tinylm.ops.recurrent.

A PyTorch ``state_dict`` (converted to NumPy) loads with ``load_state_dict`` and gives the same
outputs and gradients. Variable-length batches take a ``lengths`` argument (B,) instead of a
``PackedSequence``; the results are those of ``pack_padded_sequence`` (padded outputs are zero).

Derivation: derivations/recurrent.md.  Tests: tests/test_nn_recurrent.py, tests/test_torch_recurrent.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from tinylm._checks import (check_choice, check_flag, check_float, check_grad, check_positive_int, check_probability,
                            check_shape)
from tinylm.backend import array_module
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.dropout import dropout_backward, dropout_forward
from tinylm.ops.recurrent import (NONLINEARITIES, gru_backward, gru_cell_backward, gru_cell_forward, gru_forward,
                                  lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward, rnn_backward,
                                  rnn_cell_backward, rnn_cell_forward, rnn_forward)
from tinylm.random import module_rng

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


def _uniform_hidden(shape, hidden_size, dtype, rng):
    # PyTorch initialises every recurrent weight and bias U(-1/sqrt(hidden), 1/sqrt(hidden)).
    return Parameter(init.uniform(shape, 1.0 / math.sqrt(hidden_size), dtype, rng))


def _check_dtype(input, weight: Parameter) -> None:
    if input.dtype != weight.dtype:
        raise TypeError(f"input: dtype {input.dtype} differs from the parameters' {weight.dtype}; "
                        f"cast the input, or the module with .to(dtype)")


class _RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: parameters, stacking, directions, dropout, BPTT.

    A subclass sets ``_gates`` (G), ``_state_names`` and the sequence ops; ``forward`` and ``backward``
    here serve the h-only RNN and GRU, the LSTM wraps ``_forward``/``_backward`` for its (h, c).
    Layer ``l``'s direction ``d`` (0 forward, 1 reverse) is run ``k = l * D + d``; its states are
    ``h_0[k]`` (and ``c_0[k]``), and its output fills features ``d*H : (d+1)*H`` of the layer output.

    Shapes (L = num_layers, D = 2 if bidirectional else 1, H = hidden_size, I = input_size; batch first
    with ``batch_first``): ``forward``: input (T, B, I), each state of hx (L*D, B, H) or None, lengths
    (B,) or None -> output (T, B, D*H), each final state (L*D, B, H). ``backward``: doutput (T, B, D*H),
    each of dh_n (and dc_n) (L*D, B, H) or None -> dinput (T, B, I), plus each dstate_0 (L*D, B, H) when hx was given.
    """

    _gates = 1
    _state_names = ("h_0",)                                  # LSTM: ("h_0", "c_0")
    _op_forward = None
    _op_backward = None

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.bias = check_flag("bias", bias)
        self.batch_first = check_flag("batch_first", batch_first)
        self.dropout = check_probability("dropout", dropout)
        self.bidirectional = check_flag("bidirectional", bidirectional)
        if self.dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout={dropout} acts between stacked layers only, so with num_layers=1 it does "
                          "nothing (as in PyTorch)", UserWarning, stacklevel=2)
        # One generator for init and the between-layer dropout masks; None: tinylm's global one.
        self.rng = module_rng(rng)
        G, D = self._gates * hidden_size, self.num_directions

        def new(shape):
            return _uniform_hidden(shape, hidden_size, dtype, self.rng)

        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else D * hidden_size
            for suffix in self._suffixes():
                setattr(self, f"weight_ih_l{layer}{suffix}", new((G, layer_input)))
                setattr(self, f"weight_hh_l{layer}{suffix}", new((G, hidden_size)))
                for name in (f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"):
                    self.register_parameter(name, new((G,)) if bias else None)
        self._cache = None

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[:self.num_directions]

    def _params(self, layer: int, direction: int) -> list:
        """weight_ih, weight_hh, bias_ih, bias_hh of one layer and direction (biases None without bias)."""
        suffix = self._suffixes()[direction]
        return [getattr(self, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def _op_kwargs(self) -> dict:
        return {}

    # --- forward -------------------------------------------------------------------------------
    def forward(self, input, hx=None, lengths=None):
        output, (h_n,) = self._forward(input, None if hx is None else (hx,), lengths)
        return output, h_n

    def _initial_states(self, hx, x):
        """(h_0,) or (h_0, c_0), each (L*D, B, H): zeros when ``hx`` is None, else checked."""
        xp = array_module(("input", x))
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        if hx is None:
            return tuple(xp.zeros(shape, dtype=x.dtype) for _ in self._state_names)
        for name, s in zip(self._state_names, hx):
            array_module((name, s))
            check_float(name, s)
            check_shape(name, s, shape)
        return tuple(hx)

    def _forward(self, input, hx, lengths):
        xp = array_module(("input", input))
        check_float("input", input)
        check_shape("input", input, ("B", "T", "input_size") if self.batch_first else ("T", "B", "input_size"),
                    {"input_size": self.input_size})
        _check_dtype(input, self.weight_ih_l0)
        x = input.swapaxes(0, 1) if self.batch_first else input              # (T,B,I)
        states0 = self._initial_states(hx, x)
        D = self.num_directions
        caches, dropout_caches, finals = [], [], [[] for _ in self._state_names]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for d in range(D):
                k = layer * D + d
                params = [None if p is None else p.data for p in self._params(layer, d)]
                (y, *final), cache = self._op_forward(layer_input, *(s[k] for s in states0), *params,
                                                      lengths=lengths, reverse=d == 1, **self._op_kwargs())
                outputs.append(y)                                            # (T,B,H)
                caches.append(cache)
                for f_list, f in zip(finals, final):
                    f_list.append(f)                                         # (B,H)
            layer_input = outputs[0] if D == 1 else xp.concatenate(outputs, axis=-1)    # (T,B,D*H)
            if layer < self.num_layers - 1:                                  # between layers, not after the last
                layer_input, dcache = dropout_forward(layer_input, self.dropout, self.training, self.rng)
                dropout_caches.append(dcache)
        output = layer_input.swapaxes(0, 1) if self.batch_first else layer_input
        self._cache = (caches, dropout_caches, tuple(output.shape), tuple(states0[0].shape), hx is not None)
        return output, tuple(xp.stack(f) for f in finals)                    # each (L*D,B,H)

    # --- backward ------------------------------------------------------------------------------
    def backward(self, doutput, dh_n=None):
        if isinstance(doutput, tuple):                       # one argument shaped like the output (output, h_n)
            if len(doutput) != 2:
                raise TypeError(f"doutput: a tuple must be shaped like the output, (doutput, dh_n), "
                                f"got a tuple of {len(doutput)}")
            doutput, dh_n = doutput
        dinput, (dh_0,), hx_given = self._backward(doutput, (dh_n,))  # output, (h_n,) = _forward(input, (hx,), lengths)
        return (dinput, dh_0) if hx_given else dinput

    def _backward(self, doutput, dfinals):
        """BPTT through every layer, top to bottom. Returns (dinput, (dh_0,) or (dh_0, dc_0), hx_given)."""
        caches, dropout_caches, output_shape, state_shape, hx_given = self._need_cache(self._cache)
        xp = array_module(("doutput", doutput))
        dtype = caches[0].proj.x.dtype                       # the forward's: input, output and states share it
        check_grad("doutput", doutput, output_shape, dtype)
        for name, df in zip(("dh_n", "dc_n"), dfinals):
            if df is not None:
                array_module((name, df))
                check_grad(name, df, state_shape, dtype)
        H, D = self.hidden_size, self.num_directions
        dy = doutput.swapaxes(0, 1) if self.batch_first else doutput        # (T,B,D*H)
        dstates0 = [[None] * (self.num_layers * D) for _ in self._state_names]   # per state: L*D x (B,H)
        for layer in reversed(range(self.num_layers)):
            if layer < self.num_layers - 1:
                dy = dropout_backward(dy, dropout_caches[layer])            # layer_input = dropout(layer_input)
            dx = None                                                        # sum of the D directions' dinput
            for d in range(D):
                k = layer * D + d
                dfinal = tuple(None if df is None else df[k] for df in dfinals)  # h_n[k] = run k's final h  (B,H)
                # (y, *final) = op(layer_input, *states0[k], ...); layer_input = concat(outputs): y is d*H:(d+1)*H
                grads = self._op_backward((dy[..., d * H:(d + 1) * H], *dfinal), caches[k])
                dx_d, dstate, dparams = grads[0], grads[1:-4], grads[-4:]     # dx, d states, 4 param grads
                dx = dx_d if dx is None else dx + dx_d                       # both directions read the same input
                for ds_list, ds in zip(dstates0, dstate):
                    ds_list[k] = ds                                          # of states0[k]  (B,H)
                for p, g in zip(self._params(layer, d), dparams):
                    if p is not None:
                        p.accumulate(g)
            dy = dx                                                          # this layer's dinput: dy of the one below
        dinput = dy.swapaxes(0, 1) if self.batch_first else dy              # x = input.swapaxes(0, 1) if batch_first
        return dinput, tuple(xp.stack(ds) for ds in dstates0), hx_given     # each dstate_0 (L*D,B,H)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Elman RNN, ``h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (G = 1).

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``, PyTorch's argument order.

    ``output, h_n = rnn(input, hx=None, lengths=None)``. Shapes (L layers, D = 2 if bidirectional
    else 1, H hidden_size): input (T, B, input_size), or (B, T, input_size) with ``batch_first``;
    hx (L*D, B, H) or None (zeros); lengths (B,) ints in [1, T] or None -> output (T, B, D*H), batch
    first with ``batch_first``, zero at padded steps; h_n (L*D, B, H), never batch first (as in
    PyTorch), the state at each sequence's last real step.

    ``rnn.backward(doutput, dh_n=None)`` (or one tuple shaped like the output) returns dinput, or
    ``(dinput, dhx)`` when ``hx`` was given.

    Parameters, for each layer ``l`` and suffix ``""`` or ``"_reverse"``: ``weight_ih_l{l}`` (G*H, in)
    with in = input_size for l = 0 and D*H above, ``weight_hh_l{l}`` (G*H, H), ``bias_ih_l{l}`` and
    ``bias_hh_l{l}`` (G*H,), all U(-1/sqrt(H), 1/sqrt(H)). ``dropout`` acts on the output of every
    layer but the last, in training mode, with masks from ``rng`` (or ``tinylm.manual_seed``'s).
    """

    _gates = 1
    _op_forward, _op_backward = staticmethod(rnn_forward), staticmethod(rnn_backward)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, dtype=np.float32, rng=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, rng=rng)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)

    def _op_kwargs(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class LSTM(_RNNBase):
    """Long short-term memory, gates i, f, g, o (G = 4) in PyTorch's order::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``. (PyTorch's ``proj_size`` is not supported.)

    ``output, (h_n, c_n) = lstm(input, hx=None, lengths=None)`` with ``hx = (h_0, c_0)``, each
    (L*D, B, H), or None (zeros); c_n is (L*D, B, H) like h_n; everything else as in ``RNN``.
    ``lstm.backward(doutput, dh_n=None, dc_n=None)`` (or one tuple shaped like the output) returns
    dinput, or ``(dinput, (dh_0, dc_0))`` when ``hx`` was given. Parameters as in ``RNN``, with G = 4.
    """

    _gates = 4
    _state_names = ("h_0", "c_0")
    _op_forward, _op_backward = staticmethod(lstm_forward), staticmethod(lstm_backward)

    def forward(self, input, hx=None, lengths=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"hx: expected a tuple (h_0, c_0) for an LSTM, got {type(hx).__name__}")
        output, (h_n, c_n) = self._forward(input, hx, lengths)
        return output, (h_n, c_n)

    def backward(self, doutput, dh_n=None, dc_n=None):
        if isinstance(doutput, tuple):                       # one argument shaped like the output (output, (h_n, c_n))
            if len(doutput) != 2 or not (isinstance(doutput[1], tuple) and len(doutput[1]) == 2):
                raise TypeError("doutput: a tuple must be shaped like the output, (doutput, (dh_n, dc_n)), "
                                f"got a tuple of {len(doutput)}")
            doutput, (dh_n, dc_n) = doutput
        # output, (h_n, c_n) = self._forward(input, hx, lengths)
        dinput, (dh_0, dc_0), hx_given = self._backward(doutput, (dh_n, dc_n))
        return (dinput, (dh_0, dc_0)) if hx_given else dinput


class GRU(_RNNBase):
    """Gated recurrent unit, gates r, z, n (G = 3) in PyTorch's order::

        r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),   z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)),   h_t = (1 - z) * n + z * h_{t-1}

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``; ``output, h_n = gru(input, hx=None, lengths=None)`` and
    ``gru.backward(doutput, dh_n=None)`` exactly as in ``RNN``. Parameters as in ``RNN``, with G = 3.
    """

    _gates = 3
    _op_forward, _op_backward = staticmethod(gru_forward), staticmethod(gru_backward)


# --------------------------------------------------------------------------------------------
# Cells: one time step, the caller runs the loop
# --------------------------------------------------------------------------------------------

class _CellBase(Module):
    """What ``RNNCell``, ``LSTMCell`` and ``GRUCell`` share: parameters ``weight_ih`` (G*H, I),
    ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,), all U(-1/sqrt(H), 1/sqrt(H)).
    ``forward`` and ``backward`` here serve the h-only RNNCell and GRUCell; LSTMCell wraps them.

    Shapes (I = input_size, H = hidden_size): ``forward``: input (B, I), each state of hx (B, H) or None
    -> each new state (B, H). ``backward``: each dstate' (B, H) -> dinput (B, I), plus each dstate (B, H)
    when hx was given.
    """

    _gates = 1
    _state_names = ("hx",)                                   # LSTMCell: ("h", "c")
    _op_forward = None
    _op_backward = None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype=np.float32, rng=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = check_flag("bias", bias)
        rng = module_rng(rng)
        G = self._gates * hidden_size
        self.weight_ih = _uniform_hidden((G, input_size), hidden_size, dtype, rng)
        self.weight_hh = _uniform_hidden((G, hidden_size), hidden_size, dtype, rng)
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, _uniform_hidden((G,), hidden_size, dtype, rng) if bias else None)
        self._cache = None

    def _params(self) -> list:
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def _op_kwargs(self) -> dict:
        return {}

    def forward(self, input, hx=None):
        return self._forward(input, None if hx is None else (hx,))

    def _forward(self, input, hx):
        xp = array_module(("input", input))
        check_float("input", input)
        check_shape("input", input, ("B", "input_size"), {"input_size": self.input_size})
        _check_dtype(input, self.weight_ih)
        shape = (input.shape[0], self.hidden_size)
        if hx is None:
            hx = tuple(xp.zeros(shape, dtype=input.dtype) for _ in self._state_names)
        for name, s in zip(self._state_names, hx):
            array_module((name, s))
            check_shape(name, s, shape)
        params = [None if p is None else p.data for p in self._params()]
        new, cache = self._op_forward(input, *hx, *params, **self._op_kwargs())
        self._cache = (cache, hx is not None)
        return new

    def backward(self, dh):
        dinput, (dhx,), hx_given = self._backward(dh)        # h' = self._forward(input, (hx,))
        return (dinput, dhx) if hx_given else dinput

    def _backward(self, dnew):
        cache, hx_given = self._need_cache(self._cache)
        grads = self._op_backward(dnew, cache)               # new = op(input, *hx, *params): dx, dstates, 4 dparams
        for p, g in zip(self._params(), grads[-4:]):
            if p is not None:
                p.accumulate(g)
        return grads[0], grads[1:-4], hx_given               # dinput (B,I), each dstate (B,H)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One Elman RNN step, ``h' = nonlinearity(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh")``. ``h' = cell(input, hx=None)``
    with input (B, input_size), hx (B, H) or None (zeros) -> h' (B, H). ``cell.backward(dh')`` returns
    dinput, or ``(dinput, dhx)`` when ``hx`` was given.
    """

    _gates = 1
    _op_forward, _op_backward = staticmethod(rnn_cell_forward), staticmethod(rnn_cell_backward)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *,
                 dtype=np.float32, rng=None):
        super().__init__(input_size, hidden_size, bias, dtype=dtype, rng=rng)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)

    def _op_kwargs(self) -> dict:
        return {"nonlinearity": self.nonlinearity}


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o): ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    ``LSTMCell(input_size, hidden_size, bias=True)``. ``h', c' = cell(input, hx=None)`` with input
    (B, input_size), hx = (h, c), each (B, H), or None (zeros). ``cell.backward(dh', dc'=None)`` (or
    one tuple ``(dh', dc')``) returns dinput, or ``(dinput, (dh, dc))`` when ``hx`` was given.
    """

    _gates = 4
    _state_names = ("h", "c")
    _op_forward, _op_backward = staticmethod(lstm_cell_forward), staticmethod(lstm_cell_backward)

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"hx: expected a tuple (h, c) for an LSTMCell, got {type(hx).__name__}")
        h, c = self._forward(input, hx)
        return h, c

    def backward(self, dh, dc=None):
        if isinstance(dh, tuple):                            # one argument shaped like the output (h', c')
            if len(dh) != 2:
                raise TypeError(f"dh: a tuple must be shaped like the output, (dh', dc'), got a tuple of {len(dh)}")
            dh, dc = dh
        dinput, (dh_prev, dc_prev), hx_given = self._backward((dh, dc))   # h', c' = self._forward(input, hx)
        return (dinput, (dh_prev, dc_prev)) if hx_given else dinput


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n): ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``.

    ``GRUCell(input_size, hidden_size, bias=True)``; ``h' = cell(input, hx=None)`` and
    ``cell.backward(dh')`` as in ``RNNCell``.
    """

    _gates = 3
    _op_forward, _op_backward = staticmethod(gru_cell_forward), staticmethod(gru_cell_backward)
